// `sandbox exec NAME CMD…`: the plan of a running sandbox (saved by `up`) → the steps that put one
// more process into it, as data, like the plan itself. Pure: the engine applies the result.
//
// The new process joins every namespace the sandbox has (by its PID 1's /proc/PID/ns files),
// its cgroup, then forks once so that the joined pid namespace applies, and takes the sandbox's
// own user, groups, umask, rlimits, capabilities, no_new_privs and seccomp filter: the same
// steps, copied from the saved plan, so that an exec'd shell can do no more than the command.
import type { Source } from '../model/types';
import { findStep, makeStep, type StepInit } from './steps';
import type { Plan, Step, StepKind, StepOf } from './types';

export interface ExecRequest {
  /** The sandbox's PID 1, as the host sees it. */
  pid: number;
  args: string[];
  /** KEY=VALUE pairs added to (or replacing in) the sandbox's environment; the CLI resolves a bare KEY. */
  env: string[];
  user?: string;
  cwd?: string;
  tty: boolean;
  /** -i: the caller's stdin reaches the command; otherwise it reads /dev/null, as docker exec without -i. */
  stdin: boolean;
}

/** Namespaces in the order they are entered: the ones the host's user namespace owns (joined by
 * path in the config) before the sandbox's user namespace, which owns all the others; the mount
 * namespace last, since the host's /proc, where the others are found, is not visible from it. */
const ORDER = ['user', 'uts', 'ipc', 'net', 'cgroup', 'pid', 'time', 'mount'];
/** The names of the files in /proc/PID/ns. */
const NS_FILE: Partial<Record<string, string>> = { mount: 'mnt' };

export function compileExec(plan: Plan, req: ExecRequest): Plan {
  const steps: Step[] = [];
  const add = <K extends StepKind>(s: Omit<StepInit<K>, 'source'> & { source?: Source }) => steps.push(makeStep({ source: 'default', ...s }));
  const nsSteps = plan.steps.filter((s) => s.kind === 'ns.new' || s.kind === 'ns.join');
  const enter = (s: StepOf<'ns.new'> | StepOf<'ns.join'>) => add({
    id: `ns:${s.args.type}`, stage: 'namespaces', kind: 'ns.enter', title: `enter the sandbox's ${s.args.type} namespace`, source: s.source,
    args: { type: s.args.type, path: `/proc/${req.pid}/ns/${NS_FILE[s.args.type] ?? s.args.type}` },
  });
  const sorted = ORDER.flatMap((t) => nsSteps.filter((s) => s.args.type === t).slice(0, 1));
  for (const s of sorted) if (s.kind === 'ns.join') enter(s);
  for (const s of sorted) if (s.kind === 'ns.new') enter(s);

  const cg = findStep(plan.steps, 'cgroup.create');
  // The hierarchies the sandbox's PID 1 joined (every one on v2).
  if (cg) add({ id: 'cgroup-attach', stage: 'attach', kind: 'cgroup.attach', title: `join ${cg.args.path}`, args: { path: cg.args.path, controllers: cg.args.controllers } });
  // Reduced mode has no pid namespace to fork into: the process the CLI cloned runs the command
  // itself, so that its pid (the session it leads) is known to the CLI, which records it for `down`.
  if (!plan.reduced) add({ id: 'fork', stage: 'attach', kind: 'proc.fork', title: 'fork into the pid namespace; this process waits and passes signals on', args: {} });
  if (req.tty) add({ id: 'console', stage: 'mounts', kind: 'console', title: 'open a terminal in the sandbox\'s devpts', args: {} });

  for (const s of plan.steps) {
    if (s.stage !== 'identity' && s.stage !== 'security') continue;
    if (s.kind === 'hostname') continue;
    if (s.kind === 'user.ids' && req.user !== undefined) {
      const [user, group] = req.user.split(':');
      const num = (v: string) => (/^\d+$/.test(v) ? Number(v) : v);
      steps.push({ ...s, title: `run as user ${user}${group ? `, group ${group}` : ''} (--user)`, args: { user: num(user!), group: group ? num(group) : null }, source: 'cli' });
      continue;
    }
    steps.push(s);
  }

  const exec = findStep(plan.steps, 'exec')!;
  const env = new Map<string, string>();
  for (const kv of [...exec.args.env, ...req.env]) {
    const i = kv.indexOf('=');
    if (i > 0) env.set(kv.slice(0, i), kv.slice(i + 1));
  }
  add({ id: 'fds', stage: 'exec', kind: 'fds.close', title: 'close every file descriptor above 2', args: {} });
  add({
    id: 'exec', stage: 'exec', kind: 'exec', title: `run ${req.args.join(' ')} in ${req.cwd ?? exec.args.cwd}`, source: 'cli',
    args: { args: req.args, env: [...env].map(([k, v]) => `${k}=${v}`), cwd: req.cwd ?? exec.args.cwd, tty: req.tty, stdin: req.stdin, init: false, detach: false, stopGraceMs: exec.args.stopGraceMs },
  });
  return { ...plan, steps };
}
