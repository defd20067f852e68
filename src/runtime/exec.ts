// sandbox-runtime exec: the process to run (runc's --process FILE, a runtime-spec `process` object,
// or the container's own process from config.json with runc's flags over it) → the plan of
// `sandbox exec` (plan/exec.ts: the container's namespaces, cgroup, user, capabilities,
// no_new_privs, rlimits, seccomp filter and Landlock rules) narrowed by what the process asks:
// never more than the container has. Pure but for reading the files it is given.
import { readFileSync } from 'node:fs';
import { compileExec } from '../plan/exec';
import { findStep, makeStep } from '../plan/steps';
import type { Plan, Step } from '../plan/types';

type J = Record<string, unknown>;
const isObj = (v: unknown): v is J => v !== null && typeof v === 'object' && !Array.isArray(v);

export class ProcessError extends Error {}

/** runc exec's flags that change the process of config.json (the argv form). */
export interface ExecFlags {
  args: string[]; cwd?: string; env: string[]; user?: string; additionalGids: string[]; caps: string[];
  tty: boolean; noNewPrivs: boolean;
}

/** The process object: --process FILE (`-`: stdin), or config.json's with the flags over it, as runc builds it. */
export function readProcess(processFile: string | undefined, bundle: string, f: ExecFlags): J {
  if (processFile !== undefined) {
    let text: string;
    try { text = readFileSync(processFile === '-' ? 0 : processFile, 'utf8'); } catch (e) { throw new ProcessError(`open ${processFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
    try { const p = JSON.parse(text); if (isObj(p)) return p; } catch { /* below */ }
    throw new ProcessError(`${processFile}: not a JSON object (a runtime-spec process: args, env, cwd, user, …)`);
  }
  if (!f.args.length) throw new ProcessError('exec needs a command: exec [--process FILE] ID [COMMAND ARGS...]');
  let base: J = {};
  try { const c = JSON.parse(readFileSync(`${bundle}/config.json`, 'utf8')); if (isObj(c) && isObj(c.process)) base = c.process; } catch { /* the flags alone */ }
  const p: J = { ...base, args: f.args, terminal: f.tty };
  if (f.cwd) p.cwd = f.cwd;
  if (f.env.length) p.env = [...(Array.isArray(base.env) ? base.env : []), ...f.env];
  if (f.noNewPrivs) p.noNewPrivileges = true;
  if (f.user !== undefined || f.additionalGids.length) {
    const [u, g] = (f.user ?? '').split(':');
    const user = { ...(isObj(base.user) ? base.user : {}) };
    if (u) user.uid = Number(u);
    if (g) user.gid = Number(g);
    if (f.additionalGids.length) user.additionalGids = f.additionalGids.map(Number);
    if ([user.uid, user.gid].some((x) => x !== undefined && !Number.isInteger(x))) throw new ProcessError(`--user ${f.user}: uid[:gid] as numbers`);
    p.user = user;
  }
  if (f.caps.length && isObj(base.capabilities)) {
    const caps: J = { ...base.capabilities };
    for (const k of ['bounding', 'effective', 'permitted', 'ambient']) caps[k] = [...new Set([...(Array.isArray(caps[k]) ? caps[k] as string[] : []), ...f.caps])];
    p.capabilities = caps;
  }
  return p;
}

const strings = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined);
const capName = (c: string) => c.toUpperCase().replace(/^CAP_/, '');
/** An rlimit's value as the plan keeps it: -1 for unlimited. */
const limit = (n: number) => (n < 0 || n >= 2 ** 63 - 1 ? -1 : n);
const lower = (a: number, b: number) => (a < 0 ? b : b < 0 ? a : Math.min(a, b));

/** The runtime-spec's rlimit names (RLIMIT_NOFILE) → /proc/PID/limits' words. */
const LIMITS_WORDS: Record<string, string> = {
  cpu: 'Max cpu time', fsize: 'Max file size', data: 'Max data size', stack: 'Max stack size', core: 'Max core file size',
  rss: 'Max resident set', nproc: 'Max processes', nofile: 'Max open files', memlock: 'Max locked memory', as: 'Max address space',
  locks: 'Max file locks', sigpending: 'Max pending signals', msgqueue: 'Max msgqueue size', nice: 'Max nice priority',
  rtprio: 'Max realtime priority', rttime: 'Max realtime timeout',
};

/** /proc/PID/limits: each resource's soft and hard limit (-1 unlimited). */
export function readLimits(pid: number | 'self'): Map<string, { soft: number; hard: number }> {
  const out = new Map<string, { soft: number; hard: number }>();
  let text = '';
  try { text = readFileSync(`/proc/${pid}/limits`, 'utf8'); } catch { return out; }
  for (const [name, words] of Object.entries(LIMITS_WORDS)) {
    const m = new RegExp(`^${words}\\s+(\\S+)\\s+(\\S+)`, 'm').exec(text);
    if (m) out.set(name, { soft: m[1] === 'unlimited' ? -1 : Number(m[1]), hard: m[2] === 'unlimited' ? -1 : Number(m[2]) });
  }
  return out;
}

export interface ExecInput {
  /** The plan the container was created with (the sandbox's saved plan). */
  plan: Plan;
  /** Its process, as the host sees it. */
  pid: number;
  process: J;
  /** The container's process's limits (/proc/PID/limits), and this process's, which the new one would inherit. */
  containerLimits: Map<string, { soft: number; hard: number }>;
  ownLimits: Map<string, { soft: number; hard: number }>;
}

/** The exec plan, and whether it has a terminal. What the container does not allow is narrowed
 * silently to what it allows (as the kernel would: a capability outside its bounding set cannot be
 * had); what sandbox cannot apply (an LSM label) is refused. */
export function execPlan(i: ExecInput): { plan: Plan; tty: boolean } {
  const p = i.process;
  const args = strings(p.args);
  if (!args?.length) throw new ProcessError('process.args: the command to run is needed');
  for (const k of ['apparmorProfile', 'selinuxLabel']) if (typeof p[k] === 'string' && p[k]) throw new ProcessError(`process.${k}: sandbox applies no LSM label; remove it, or use a runtime that does`);
  const tty = p.terminal === true;
  const user = isObj(p.user) ? p.user : {};
  const uid = typeof user.uid === 'number' ? user.uid : undefined, gid = typeof user.gid === 'number' ? user.gid : undefined;
  const plan = compileExec(i.plan, {
    pid: i.pid, args, env: [], tty, stdin: true,
    cwd: typeof p.cwd === 'string' && p.cwd ? p.cwd : undefined,
    user: uid !== undefined ? `${uid}${gid !== undefined ? `:${gid}` : ''}` : undefined,
  });
  const steps: Step[] = [];
  const kept = capsOf(findStep(plan.steps, 'caps.apply')?.args ?? { bounding: [], ambient: [] }, p.capabilities);
  const security = narrowSecurity(i, plan.steps);
  const rlimits = security.rlimits;
  let nnp = security.nnp;
  for (const s of plan.steps) {
    // The limits where the container's were set (before its capabilities are dropped); no_new_privs
    // before the filter, or before the exec's own steps.
    if (s.stage === 'security' && rlimits.length) steps.push(...rlimits.splice(0));
    if (nnp && (s.kind === 'seccomp' || s.kind === 'seccomp.off' || s.stage === 'exec')) steps.push(nnp), nnp = undefined;
    if (s.kind === 'exec') steps.push({ ...s, args: { ...s.args, env: strings(p.env) ?? s.args.env } });
    else if (s.kind === 'user.groups' && Array.isArray(user.additionalGids)) steps.push({ ...s, args: { groups: user.additionalGids.filter((g): g is number => typeof g === 'number') } });
    else if (s.kind === 'umask' && typeof user.umask === 'number') steps.push({ ...s, args: { umask: user.umask } });
    else if (s.kind === 'caps.apply') steps.push({ ...s, args: kept });
    else if (s.kind === 'cap.keep' && !kept.bounding.includes(s.args.cap)) continue;
    else if (s.kind !== 'rlimit') steps.push(s);
  }
  return { plan: { ...plan, steps }, tty };
}

/** process.capabilities within the container's: its bounding set, and what a user other than root holds. */
function capsOf(container: { bounding: string[]; ambient: string[] }, caps: unknown): { bounding: string[]; ambient: string[] } {
  if (!isObj(caps)) return container;
  const bounding = strings(caps.bounding)?.map(capName).filter((c) => container.bounding.includes(c)) ?? container.bounding;
  const ambient = (strings(caps.ambient)?.map(capName) ?? container.ambient).filter((c) => bounding.includes(c));
  return { bounding, ambient };
}

/** The rlimits (each the process's, or this process's that it would inherit, never above the
 * container's hard limit) and no_new_privs when the process asks for it and the container has none. */
function narrowSecurity(i: ExecInput, steps: readonly Step[]): { rlimits: Step[]; nnp?: Step } {
  const rlimits: Step[] = [];
  const asked = new Map<string, { soft: number; hard: number }>();
  for (const r of Array.isArray(i.process.rlimits) ? i.process.rlimits : []) {
    if (!isObj(r) || typeof r.type !== 'string' || typeof r.soft !== 'number' || typeof r.hard !== 'number') throw new ProcessError('process.rlimits: each is {type: RLIMIT_NAME, soft, hard}');
    const name = r.type.replace(/^RLIMIT_/, '').toLowerCase();
    if (!LIMITS_WORDS[name]) throw new ProcessError(`process.rlimits: ${r.type} is not a Linux limit`);
    asked.set(name, { soft: limit(r.soft), hard: limit(r.hard) });
  }
  for (const name of Object.keys(LIMITS_WORDS)) {
    const c = i.containerLimits.get(name), own = i.ownLimits.get(name), want = asked.get(name);
    const base = want ?? own;
    if (!c || !base) continue;
    const hard = lower(base.hard, c.hard);
    const soft = lower(base.soft, hard);
    if (!want && own && own.hard === hard && own.soft === soft) continue;
    rlimits.push(makeStep({ id: `rlimit:${name}`, stage: 'security', kind: 'rlimit', title: `limit ${name} to ${soft}/${hard}`, source: 'cli', args: { name, soft, hard } }));
  }
  const nnp = i.process.noNewPrivileges === true && !steps.some((s) => s.kind === 'nnp')
    ? makeStep({ id: 'nnp', stage: 'security', kind: 'nnp', title: 'set no_new_privs (process.noNewPrivileges)', source: 'cli', args: {} })
    : undefined;
  return { rlimits, nnp };
}
