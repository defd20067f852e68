// The command and how it runs: entrypoint and command, user, environment (sections/env.ts),
// working directory, groups, umask, terminal and stdin, init, detach, restart policy and how it
// is stopped. Defaults: root in /, umask 022, no terminal, SIGTERM then 10 s, never restarted.
import type { UserConfig } from '../../config/types';
import type { RestartPolicy, SandboxSpec, Source, UserSpec, Val } from '../types';
import { SIGNALS } from '../tables';
import { D, own, val, valOr, type NormalizeContext, type Problem, type SpecInputs } from './context';
import { normalizeEnv } from './env';

/** `no`, `always`, `on-failure[:N]` (the schema's pattern) → the policy and its maximum. */
export function restartPolicy(s: string): RestartPolicy {
  const [policy, max] = s.split(':');
  return { policy: policy === 'always' ? 'always' : policy === 'on-failure' ? 'on-failure' : 'no', max: Number(max ?? 0) || 0 };
}

/** 10s, 1m30s, 500ms → milliseconds. */
export function parseDuration(s: string): number | undefined {
  const unit: Record<string, number> = { h: 3600e3, m: 60e3, s: 1e3, ms: 1, us: 1e-3 };
  let total = 0;
  const re = /([0-9]+(?:\.[0-9]+)?)(h|ms|m|s|us)/g;
  let used = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) { total += Number(m[1]) * unit[m[2]!]!; used += m[0].length; }
  return used === s.length && used > 0 ? Math.round(total) : undefined;
}

/** Splits a command string as a POSIX shell would split words (quotes and backslashes), without running one. */
export function shellSplit(s: string): string[] | undefined {
  const out: string[] = [];
  let cur = '';
  let has = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "'") { const j = s.indexOf("'", i + 1); if (j < 0) return undefined; cur += s.slice(i + 1, j); i = j; has = true; }
    else if (c === '"') {
      let j = i + 1;
      for (; j < s.length && s[j] !== '"'; j++) { if (s[j] === '\\' && '"\\$`'.includes(s[j + 1] ?? '')) j++; cur += s[j]; }
      if (j >= s.length) return undefined;
      i = j; has = true;
    } else if (c === '\\') { if (i + 1 < s.length) cur += s[++i]; has = true; }
    else if (/\s/.test(c)) { if (has) out.push(cur); cur = ''; has = false; }
    else { cur += c; has = true; }
  }
  if (has) out.push(cur);
  return out;
}

export function signalNumber(v: string | number): number | undefined {
  if (typeof v === 'number') return v >= 1 && v <= 64 ? v : undefined;
  if (/^[0-9]+$/.test(v)) return signalNumber(Number(v));
  const name = v.toUpperCase().replace(/^SIG/, '');
  const rt = /^RTMIN(\+([0-9]+))?$/.exec(name);
  if (rt) return 34 + Number(rt[2] ?? 0) <= 64 ? 34 + Number(rt[2] ?? 0) : undefined;
  return own(SIGNALS, name);
}

type Command = Pick<SandboxSpec['process'], 'args' | 'argsSrc' | 'entrypoint' | 'command'>;

/** Entrypoint and command, kept apart too: an image's Entrypoint and Cmd are replaced one by one,
 * as docker run does. `up -- CMD` needs no --entrypoint as docker run does: one is enough. */
function commandOf(cfg: UserConfig, ctx: NormalizeContext, inputs: SpecInputs, problem: Problem): Command {
  const words = (v: string | string[] | undefined, key: string): string[] => {
    if (v === undefined) return [];
    if (Array.isArray(v)) return v;
    const w = shellSplit(v);
    if (!w) { problem(ctx.where([key]), 'unbalanced-quote', `\`${key}\` has a quote that is not closed; close it, or write the command as a list`); return []; }
    return w;
  };
  const entrypoint = inputs.command ? [] : cfg.entrypoint !== undefined ? words(cfg.entrypoint, 'entrypoint') : undefined;
  const command = inputs.command ?? (cfg.command !== undefined ? words(cfg.command, 'command') : undefined);
  const args = [...(entrypoint ?? []), ...(command ?? [])];
  const argsSrc: Source = inputs.command ? 'cli' : cfg.command !== undefined ? ctx.where(['command']) : cfg.entrypoint !== undefined ? ctx.where(['entrypoint']) : D;
  return { args, argsSrc, entrypoint, command };
}

/** `user: NAME[:GROUP]` or ids: numbers are kept as numbers, names are looked up inside at run time. */
function userOf(cfg: UserConfig, ctx: NormalizeContext): UserSpec {
  if (cfg.user === undefined) return { user: 0, group: 0, src: D };
  const [u, g] = String(cfg.user).split(':') as [string, string | undefined];
  const num = (s: string | undefined) => (s !== undefined && /^[0-9]+$/.test(s) ? Number(s) : s);
  return { user: num(u)!, group: num(g), src: ctx.where(['user']) };
}

/** `up -d`/`-i`/`-T` win over the file's detach, stdin_open and tty. */
const cliOr = (cli: boolean | undefined, cliValue: boolean, ctx: NormalizeContext, value: boolean | undefined, key: string): Val<boolean> =>
  cli ? val(cliValue, 'cli') : valOr(ctx, value, [key], false);

/** The process section; `hostname` is the identity's, which HOSTNAME carries. */
export function normalizeProcess(cfg: UserConfig, ctx: NormalizeContext, inputs: SpecInputs, problem: Problem, hostname: Val<string>): SandboxSpec['process'] {
  const at = (key: string) => ctx.where([key]);
  const { args, argsSrc, entrypoint, command } = commandOf(cfg, ctx, inputs, problem);
  const user = userOf(cfg, ctx);
  const tty = cliOr(inputs.noTty, false, ctx, cfg.tty, 'tty');
  const env = normalizeEnv(cfg, ctx, inputs, problem, { hostname, user, tty });
  const stopSignal = cfg.stop_signal !== undefined ? signalNumber(cfg.stop_signal) : 15;
  if (stopSignal === undefined) problem(at('stop_signal'), 'unknown-signal', `\`${cfg.stop_signal}\` is not a signal; use a name such as SIGTERM or SIGQUIT`);
  const grace = cfg.stop_grace_period !== undefined ? parseDuration(cfg.stop_grace_period) : 10_000;
  return {
    args, argsSrc, entrypoint, command, env,
    cwd: valOr(ctx, cfg.workdir, ['workdir'], '/'),
    user,
    groups: (cfg.group_add ?? []).map((g, i) => val(typeof g === 'string' && /^[0-9]+$/.test(g) ? Number(g) : g, ctx.where(['group_add', i]))),
    umask: cfg.umask !== undefined ? val(parseInt(cfg.umask, 8), at('umask')) : val(0o022, D),
    tty,
    stdin: cliOr(inputs.interactive, true, ctx, cfg.stdin_open, 'stdin_open'),
    init: valOr(ctx, cfg.init, ['init'], false),
    detach: cliOr(inputs.detach, true, ctx, cfg.detach, 'detach'),
    restart: cfg.restart !== undefined ? val(restartPolicy(cfg.restart), at('restart')) : val({ policy: 'no', max: 0 }, D),
    stopSignal: val(stopSignal ?? 15, cfg.stop_signal !== undefined ? at('stop_signal') : D),
    stopGraceMs: val(grace ?? 10_000, cfg.stop_grace_period !== undefined ? at('stop_grace_period') : D),
  };
}
