// The command (`command`, `entrypoint`, `env`, `workdir`, `tty`, `stdin_open`, `init`, `restart`,
// `detach`, `stop_signal`, `stop_grace_period`): the exec stage, and what a detached sandbox cannot
// do yet.
import type { Compilation } from './context';

export function processSteps(ctx: Compilation): void {
  const { spec, add, problems, steps } = ctx;
  // What detached sandboxes do not do yet is refused by `up`, never silently dropped.
  const det = spec.process.detach;
  if (det.value && spec.process.tty.value) problems.push({ src: det.src, code: 'detach-tty', message: 'a detached sandbox with a terminal (tty: true) is not supported yet; remove `tty` or `detach`', atRun: true });
  if (det.value && steps.some((s) => s.kind === 'net.port' && s.args.path === 'userspace')) problems.push({ src: det.src, code: 'detach-userspace-ports', message: 'the user-space port forwarder lives in the CLI, so a detached sandbox cannot use it yet (IPv6 host addresses, network.proxy: userspace)', atRun: true });

  // 9. exec. The command is PID 1, with or without a restart policy; `init: true` puts a small
  // init (sandbox-init, as docker run --init) there instead. A pid namespace ends with its PID 1,
  // so a restart is run from outside the sandbox, by the process that waits for it (this CLI, or
  // the supervisor when detached), as a new child in the same cgroup and the same user and network
  // namespaces (held open across runs, so the address and port maps stay), with new others. It
  // replays the steps attested on the first run; the ports go when the command ends for good.
  const restart = spec.process.restart.value;
  const policy = restart.policy;
  const restarter = spec.process.detach.value ? 'the supervisor' : 'the CLI';
  const restartText = policy === 'no' ? '' : `; ${restarter} runs it again ${policy === 'always' ? 'whenever it ends' : 'when it fails'}${restart.max ? `, at most ${restart.max} times` : ''}, until stopped: a new PID 1 in the same cgroup and user and network namespaces, from the steps attested on the first run`;
  // Reduced mode has no pid namespace: the command is one more host process, leading a session of its own.
  const pid1 = ctx.host.reduced ? 'leading its own session (no pid namespace: not PID 1)' : 'PID 1';
  const initText = spec.process.init.value ? ` under sandbox-init (${pid1}, as docker run --init: it forwards signals and reaps orphans)` : ctx.host.reduced ? ` ${pid1}` : ' as PID 1';
  add('exec', 'fds', 'fds.close', 'close every file descriptor above 2', 'default', {});
  add('exec', 'exec', 'exec', (spec.process.args.length ? `run ${spec.process.args.map(quote).join(' ')} in ${spec.process.cwd.value}` : `run the image's command in ${spec.process.cwd.value}`) + initText + (spec.process.detach.value ? ', detached' : '') + restartText, spec.process.argsSrc,
    { args: spec.process.args, env: spec.process.env.map((e) => `${e.name}=${e.value}`), cwd: spec.process.cwd.value, tty: spec.process.tty.value, stdin: spec.process.stdin.value, init: spec.process.init.value, restart,
      detach: spec.process.detach.value, stopSignal: spec.process.stopSignal.value, stopGraceMs: spec.process.stopGraceMs.value });
}

function quote(s: string): string { return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`; }
