// Every sentence the CLI prints outside of config diagnostics, in one place.
import type { SignalNote, StopNote } from '../engine/signals';

const secs = (ms: number) => `${Math.round(ms / 100) / 10}s`;
/** How a PID 1 that lets the stop signal drop can be stopped gracefully instead. */
const gracefully = (signal: string) => `for a graceful stop, handle ${signal} in the program, or set \`init: true\` (run --init): an init as PID 1 that passes signals on`;
/** inspect, when a running sandbox's sbx-egress is gone (design 3.7: no restart; it fails closed). */
const egressEnded = (pid: number | null) => `sbx-egress${pid ? ` pid ${pid}` : ''} has ended: names no longer resolve and host rules refuse everything (fail closed); down and up again to restore the policy`;

export const MSG = {
  valid: (file: string, warnings: number) => `${file}: valid${warnings ? ` (${warnings} warning${warnings === 1 ? '' : 's'})` : ''}`,
  invalid: (summary: string, what = 'run') => `${summary}; nothing was ${what}`,
  strictWarnings: 'warnings count as errors with --strict',
  hostCannot: (file: string) => `${file}: this host cannot apply every line of the file:`,
  dryRun: 'dry run: nothing was changed',
  setupFailed: (step: string, why: string, where: string) => `sandbox could not be set up: step ${step} failed: ${why}${where ? ` (${where})` : ''}`,
  execFailed: (step: string, why: string, where: string) => `sandbox: cannot run the command: ${step}: ${why}${where ? ` (${where})` : ''}`,
  undone: (n: number) => `undid ${n} host change${n === 1 ? '' : 's'}; nothing is left behind`,
  noEngine: (why: string) => `the native engine cannot be loaded: ${why}\n  build it with: npm run build (needs make and a C compiler)`,
  internal: (what: string) => `sandbox: internal error: ${what}\n  please report it with the config that caused it`,
  restarting: (name: string) => `${name} is between two runs of its command and has not started the next; try again, or see sandbox logs ${name}`,
  notRunning: (name: string) => `${name} is not running (sandbox ps -a shows what it became)`,
  rmRunning: (name: string) => `${name} is running: stop it first (sandbox stop ${name}), remove it with rm -f (killed at once), or with sandbox down ${name} (stopped with its grace period, then removed)`,
  noPlan: (name: string) => `${name} has no saved plan: it is still starting, or was started by an older sandbox`,
  pullFailed: (image: string, why: string) => `sandbox: the image ${image} cannot be fetched: ${why}; nothing was set up`,
  stageTitle: (n: number, stage: string, title: string) => `${n}. ${stage}: ${title}`,
  volumeSeed: (s: { from: 'image'; image: string; target: string } | { from: 'empty'; uid: number; gid: number; why: string }) =>
    s.from === 'image' ? `from ${s.image} at ${s.target}` : `empty, owned by ${s.uid}:${s.gid} (${s.why})`,
  volumeUsers: (u: { sandbox: string; running: boolean }[]) => (u.length ? u.map((x) => `${x.sandbox}${x.running ? '' : ' (exited)'}`).join(', ') : '-'),
  twoFormats: (format: string) => `--json and --format ${format} ask for two formats; give one`,
  jsonNeedsDryRun: 'up prints JSON only with --dry-run (the plan, as plan --json); add --dry-run, or leave out --json',
  // The progress view's lines (src/ui/progress.ts): `title` is `5. network` in plain lines, the
  // stage's full title on a terminal.
  pullStarted: (title: string) => title,
  pullLayer: (digest: string, mb: string, seconds: number | undefined) => `   ${digest}  ${mb}${seconds === undefined ? ', already unpacked' : ` in ${seconds.toFixed(1)} s, unpacked`}`,
  pullDone: (title: string, layers: number, seconds: number) => `${title}  ${layers} layer${layers === 1 ? '' : 's'}  ${seconds.toFixed(1)} s`,
  stageDone: (title: string, steps: number, ms: number) => `${title}  ${steps} step${steps === 1 ? '' : 's'}  ${ms.toFixed(1)} ms`,
  stagePartial: (title: string, done: number, steps: number, ms: number) => `${title}  ${done} of ${steps} steps  ${ms.toFixed(1)} ms`,
  stageRunning: (title: string, done: number, steps: number, current: string) => `${title}  ${done}/${steps}  ${current}`,
  stageFailed: (title: string, done: number, steps: number, id: string) => `${title}  failed at ${id} (${done} of ${steps} steps done)`,
  stepDone: (id: string, title: string, ms: number) => `✔ ${id}  ${title}${ms >= 0.05 ? `  ${ms.toFixed(1)} ms` : ''}`,
  stepFailed: (id: string, title: string, why: string) => `${id} (${title}): ${why}`,
  signal: (n: SignalNote) => n.kind === 'dropped'
    ? `sandbox: the command (${n.command}) is PID 1 and ${n.disposition === 'ignored' ? 'ignores' : 'does not handle'} ${n.signal}, so the kernel drops it and no wait can end it gracefully: killed it at once (SIGKILL) instead of waiting ${secs(n.graceMs)} (stop_grace_period); ${gracefully(n.signal)}`
    : n.why === 'grace' ? `sandbox: the command did not end within ${secs(n.graceMs)} of ${n.signal} (stop_grace_period): killed it (SIGKILL)`
      : `sandbox: ${n.signal} again: killed the command (SIGKILL)`,
  stop: (n: StopNote) => n.kind === 'dropped'
    ? `sandbox: PID 1 of ${n.name} (${n.command}) ${n.disposition === 'ignored' ? 'ignores' : 'does not handle'} ${n.signal}, so the kernel drops it and no wait can stop ${n.name} gracefully: killed it at once (SIGKILL) instead of waiting ${secs(n.graceMs)} (stop_grace_period); ${gracefully(n.signal)}`
    : `sandbox: ${n.name} did not stop within ${secs(n.graceMs)} of ${n.signal}: killed it (SIGKILL)`,
  // Egress denials (src/ui/denials.ts): a record's verdict, the summary a foreground run ends
  // with, inspect's line, and what `logs --denials` says when there is nothing to show.
  denialRule: (i: number, text: string | undefined, src: string) => `denied by rule ${i}${text ? ` "${text}"` : ''} (${src})`,
  denialNoRule: (line: string) => `refused: no rule allowed it (${line})`,
  denialClass: (cls: string, line: string) => `refused: ${cls}, which only a cidr rule naming it opens (${line})`,
  denialProtocol: (why: string, line: string) => `refused: ${why} (${line})`,
  denialLimit: (why: string | undefined) => `refused: ${why ?? 'too many connections at once'}`,
  denialSummary: (n: { lookups: number; connections: number }, shown: string[], rest: number, name: string | undefined) => {
    const plural = (k: number, w: string) => `${k} ${w}${k === 1 ? '' : 's'}`;
    const counts = [n.lookups ? plural(n.lookups, 'lookup') : '', n.connections ? plural(n.connections, 'connection') : ''].filter(Boolean).join(' and ');
    return `sandbox: ${counts} refused: ${shown.join('; ')}${rest ? `; and ${rest} more` : ''}${name ? ` (sandbox logs --denials ${name})` : ''}`;
  },
  egressInspect: (e: { rules: number; refused: { lookups: number; answersWithheld: number; connections: number; kernel: number }; relay: { pid: number | null; open: number; carried: number; running?: boolean } | null }) =>
    `${e.rules} rule${e.rules === 1 ? '' : 's'}; refused ${e.refused.lookups} lookup${e.refused.lookups === 1 ? '' : 's'} (${e.refused.answersWithheld} answer${e.refused.answersWithheld === 1 ? '' : 's'} withheld), ${e.refused.connections} connection${e.refused.connections === 1 ? '' : 's'} in the relay, ${e.refused.kernel} in the kernel; ${!e.relay ? 'no status from sbx-egress' : e.relay.running === false ? egressEnded(e.relay.pid) : `sbx-egress pid ${e.relay.pid ?? '-'}, ${e.relay.open} open, ${e.relay.carried} carried`}`,
  egressEnded,
  egressEndedShort: 'egress ended, closed',
  denialProbe: ' (the attestation\'s probe, before the command started)',
  noEgress: (name: string) => `${name} has no egress policy (network.egress): nothing is refused there, so nothing is recorded`,
  noDenials: (name: string) => `${name}: nothing refused so far`,
  formatNeedsDenials: '--json and --format json are for --denials; sandbox logs prints the command\'s output as it wrote it',
  /** tty: true with stdin_open (or -i) when stdin is not a terminal, as docker run -it refuses. */
  notATerminal: (what: string, drop: string) => `the input device is not a TTY, and ${what} relays it as one (raw, echoed back): ${drop} to pipe input, or run from a terminal`,
};
