// Capabilities: the default set (Podman's 11), then cap_drop, then cap_add, so that
// `cap_drop: [ALL], cap_add: [X]` keeps X. Each kept or dropped one says which line put it there.
import type { UserConfig } from '../../config/types';
import { didYouMean } from '../../config/diagnostic';
import type { CapSpec, SandboxSpec, Source } from '../types';
import { CAPABILITIES, DEFAULT_CAPABILITIES } from '../tables';
import { D, type NormalizeContext, type Problem } from './context';

export type Capabilities = Pick<SandboxSpec, 'capabilities' | 'capsDropped' | 'capSets'>;

export function capName(raw: string): string {
  return raw.toUpperCase().replace(/^CAP_/, '');
}

/** The name without CAP_, or ALL; undefined (with the problem said) for a name that is no capability. */
function checkCap(raw: string, src: Source, problem: Problem): string | undefined {
  const n = capName(raw);
  if (n === 'ALL' || (CAPABILITIES as readonly string[]).includes(n)) return n;
  const guess = didYouMean(n, CAPABILITIES);
  problem(src, 'unknown-capability', `\`${raw}\` is not a capability${guess ? ` (did you mean \`${guess}\`?)` : '; see capabilities(7) for the names'}`);
  return undefined;
}

export function normalizeCapabilities(cfg: UserConfig, ctx: NormalizeContext, problem: Problem): Capabilities {
  const caps = new Map<string, CapSpec>(DEFAULT_CAPABILITIES.map((c) => [c, { name: c, src: D }]));
  const capsDropped: CapSpec[] = [];
  (cfg.cap_drop ?? []).forEach((raw, i) => {
    const src = ctx.where(['cap_drop', i]);
    const n = checkCap(raw, src, problem);
    if (!n) return;
    const names = n === 'ALL' ? [...caps.keys()] : [n];
    // Named twice (MKNOD and CAP_MKNOD, or after ALL): dropped once, cited at its first mention.
    for (const c of names) { caps.delete(c); if (!capsDropped.some((d) => d.name === c)) capsDropped.push({ name: c, src }); }
  });
  const droppedByName = new Map((cfg.cap_drop ?? []).map((raw, i) => [capName(raw), ctx.where(['cap_drop', i])] as const));
  (cfg.cap_add ?? []).forEach((raw, i) => {
    const src = ctx.where(['cap_add', i]);
    const n = checkCap(raw, src, problem);
    if (!n) return;
    // `cap_drop: [ALL]` with `cap_add: [X]` keeps only X; naming X in both lists is a mistake.
    const both = n !== 'ALL' ? droppedByName.get(n) : undefined;
    if (both) problem(src, 'cap-add-and-drop', `CAP_${n} is both added and dropped (dropped on ${typeof both === 'object' ? `line ${both.line}` : 'the command line'}); keep it in one list`);
    for (const c of n === 'ALL' ? CAPABILITIES : [n]) if (!caps.has(c) || caps.get(c)!.src === D) caps.set(c, { name: c, src });
  });
  const capabilities = [...caps.values()].sort((a, b) => CAPABILITIES.indexOf(a.name as never) - CAPABILITIES.indexOf(b.name as never));
  // What cap_add brought back (after `cap_drop: [ALL]`) is kept, not dropped: the plan shows it once.
  const capSets = cfg.security?.capabilities !== undefined ? exactSets(cfg, ctx, problem, caps) : undefined;
  return { capabilities, capsDropped: capsDropped.filter((d) => !caps.has(d.name)), ...(capSets ? { capSets } : {}) };
}

/** security.capabilities: each set within the bounding set, and ambient within inheritable. */
function exactSets(cfg: UserConfig, ctx: NormalizeContext, problem: Problem, bounding: Map<string, CapSpec>): NonNullable<Capabilities['capSets']> {
  const set = (key: 'inheritable' | 'ambient'): CapSpec[] => {
    const out: CapSpec[] = [];
    (cfg.security?.capabilities?.[key] ?? []).forEach((raw, i) => {
      const src = ctx.where(['security', 'capabilities', key, i]);
      const n = checkCap(raw, src, problem);
      if (!n || out.some((c) => c.name === n)) return;
      if (n === 'ALL') { problem(src, 'cap-set-all', `\`security.capabilities.${key}\` names each capability; ALL is for cap_add and cap_drop`); return; }
      if (!bounding.has(n)) { problem(src, 'cap-not-bounding', `CAP_${n} is not in the set the command keeps (the default set, cap_add and cap_drop); add it with cap_add, or remove it here`); return; }
      out.push({ name: n, src });
    });
    return out;
  };
  const inheritable = set('inheritable'), ambient = set('ambient');
  for (const a of ambient) if (!inheritable.some((c) => c.name === a.name)) problem(a.src, 'cap-ambient-not-inheritable', `CAP_${a.name} is ambient but not inheritable: the kernel keeps an ambient capability only while it is inheritable; add it to security.capabilities.inheritable`);
  return { inheritable, ambient: ambient.filter((a) => inheritable.some((c) => c.name === a.name)) };
}
