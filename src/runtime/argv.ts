// sandbox-runtime's command line, read as runc reads its own: globals before the command, then the
// command's flags (`--flag value` or `--flag=value`) and the container id. The entry point of the
// second bin (bin/sandbox-runtime.js). Runs as its caller (root); prints, and returns the status.
import { COMMANDS, logLine, parseSignal, RuntimeError, VERSION, type Globals } from './main';
import { exec, pause, ps, update } from './running';

const USAGE = `usage: sandbox-runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND [FLAGS] ID
commands: create --bundle DIR [--pid-file F] [--console-socket S] ID | start ID | state ID |
          kill [--all] ID [SIGNAL] | delete [--force] ID | run --bundle DIR [--pid-file F] [-d] ID |
          exec [--process F | --cwd D -e K=V -u UID[:GID] -t ...] [-d] [--pid-file F] [--console-socket S] ID [CMD...] |
          ps [--format table|json] ID [PS OPTIONS] | pause ID | resume ID |
          update [--resources F|-] [--memory N --cpu-quota N --pids-limit N ...] ID |
          list [--format json] | features | --version
`;

/** Flags with a value, and boolean ones, of each command (runc's names and short forms). */
const VALUE = new Set(['bundle', 'b', 'pid-file', 'console-socket', 'format', 'f', 'process', 'p', 'resources', 'r', 'signal', 's',
  'cwd', 'env', 'e', 'user', 'u', 'additional-gids', 'g', 'cap', 'c', 'process-label', 'apparmor', 'preserve-fds', 'cgroup', 'pid-fd-socket',
  'memory', 'memory-swap', 'memory-reservation', 'cpu-quota', 'cpu-period', 'cpu-share', 'cpuset-cpus', 'cpuset-mems', 'pids-limit', 'blkio-weight',
  'kernel-memory', 'kernel-memory-tcp', 'cpu-rt-period', 'cpu-rt-runtime', 'l3-cache-schema', 'mem-bw-schema']);
/** Flags that may be given more than once (each value kept, in order). */
const MULTI = new Set(['env', 'e', 'additional-gids', 'g', 'cap', 'c']);

/** `stopAtId`: exec's command and ps's options follow the id, and are not this command's flags. */
function parseFlags(args: string[], stopAtId = false, boolean: ReadonlySet<string> = new Set()): { flags: Record<string, string | true>; multi: Record<string, string[]>; rest: string[] } {
  const flags: Record<string, string | true> = {};
  const multi: Record<string, string[]> = {};
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') { rest.push(...args.slice(i + 1)); break; }
    if (stopAtId && rest.length) { rest.push(...args.slice(i)); break; }
    const m = /^--?([a-z][a-z-]*)(=(.*))?$/.exec(a);
    if (!m || (rest.length && !a.startsWith('--'))) { rest.push(a); continue; }
    const k = m[1]!;
    let v: string | true = true;
    if (m[2] !== undefined) v = m[3]!;
    else if (VALUE.has(k) && !boolean.has(k)) { if (i + 1 >= args.length) throw new RuntimeError(`flag needs an argument: -${k.length > 1 ? '-' : ''}${k}`); v = args[++i]!; }
    flags[k] = v;
    if (MULTI.has(k) && typeof v === 'string') (multi[k] ??= []).push(v);
  }
  return { flags, multi, rest };
}

function globals(argv: string[]): { g: Globals; cmd?: string; args: string[] } {
  const g: Globals = { root: '/run/sandbox-runtime', logFormat: 'text', debug: false };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--([a-z-]+)(=(.*))?$/.exec(a);
    if (!m) break;
    const val = () => (m[2] !== undefined ? m[3]! : argv[++i] ?? '');
    switch (m[1]) {
      case 'root': g.root = val(); break;
      case 'log': g.log = val(); break;
      case 'log-format': { const f = val(); if (f !== 'text' && f !== 'json') throw new RuntimeError(`invalid log format ${JSON.stringify(f)}`); g.logFormat = f; break; }
      case 'debug': g.debug = true; break;
      case 'systemd-cgroup': throw new RuntimeError('--systemd-cgroup is not supported: sandbox-runtime manages cgroups itself (cgroupfs); set SystemdCgroup = false for it');
      case 'rootless': if (val() === 'true') throw new RuntimeError('--rootless true is not supported by sandbox-runtime yet'); break;
      case 'criu': val(); break;
      case 'version': return { g, cmd: '--version', args: [] };
      case 'help': return { g, cmd: '--help', args: [] };
      default: throw new RuntimeError(`flag provided but not defined: ${a}`);
    }
  }
  return { g, cmd: argv[i], args: argv.slice(i + 1) };
}

const oneId = (rest: string[], cmd: string): string => {
  if (rest.length < 1) throw new RuntimeError(`"${cmd}" requires a minimum of 1 argument`);
  return rest[0]!;
};

async function dispatch(g: Globals, cmd: string, args: string[]): Promise<number> {
  const { flags, multi, rest } = parseFlags(args, cmd === 'exec' || cmd === 'ps', cmd === 'delete' ? new Set(['f']) : undefined);
  const str = (...k: string[]) => { for (const x of k) if (typeof flags[x] === 'string') return flags[x] as string; return undefined; };
  const bool = (...k: string[]) => k.some((x) => flags[x] === true || flags[x] === 'true');
  const list = (...k: string[]) => k.flatMap((x) => multi[x] ?? []);
  switch (cmd) {
    case '--version': case 'version': process.stdout.write(`sandbox-runtime version ${VERSION}\nspec: 1.2.0\n`); return 0;
    case '--help': case 'help': process.stdout.write(USAGE); return 0;
    case 'create': return COMMANDS.create(g, oneId(rest, cmd), { bundle: str('bundle', 'b') ?? '.', pidFile: str('pid-file'), consoleSocket: str('console-socket') });
    case 'run': return COMMANDS.run(g, oneId(rest, cmd), { bundle: str('bundle', 'b') ?? '.', pidFile: str('pid-file'), consoleSocket: str('console-socket'), detach: flags.detach === true || flags.d === true });
    case 'start': COMMANDS.start(g, oneId(rest, cmd)); return 0;
    case 'state': process.stdout.write(COMMANDS.stateJson(COMMANDS.readRecord(g, oneId(rest, cmd)))); return 0;
    case 'kill': { const sig = rest[1] ?? str('signal', 's'); if (sig !== undefined) parseSignal(sig); return COMMANDS.kill(g, oneId(rest, cmd), sig, flags.all === true || flags.a === true); }
    case 'delete': return COMMANDS.del(g, oneId(rest, cmd), flags.force === true || flags.f === true);
    case 'list': case 'ls': return COMMANDS.list(g, str('format', 'f') ?? 'table');
    case 'features': return COMMANDS.features();
    case 'exec': {
      if (str('process-label', 'apparmor')) throw new RuntimeError('--process-label and --apparmor: sandbox applies no LSM label');
      if (str('preserve-fds') && str('preserve-fds') !== '0') throw new RuntimeError('--preserve-fds is not supported by sandbox-runtime: the new process gets stdio only');
      if (str('cgroup')) throw new RuntimeError('--cgroup is not supported by sandbox-runtime: the process joins the container\'s own cgroup');
      return exec(g, oneId(rest, cmd), {
        process: str('process', 'p'), detach: bool('detach', 'd'), pidFile: str('pid-file'), consoleSocket: str('console-socket'), ignorePaused: bool('ignore-paused'),
        args: rest.slice(1), cwd: str('cwd'), env: list('env', 'e'), user: str('user', 'u'), additionalGids: list('additional-gids', 'g').flatMap((x) => x.split(',')),
        caps: list('cap', 'c'), tty: bool('tty', 't'), noNewPrivs: bool('no-new-privs'),
      });
    }
    case 'ps': return ps(g, oneId(rest, cmd), str('format', 'f') ?? 'table', rest.slice(1));
    case 'pause': return pause(g, oneId(rest, cmd), true);
    case 'resume': return pause(g, oneId(rest, cmd), false);
    case 'update': {
      const unsupported = ['kernel-memory', 'kernel-memory-tcp', 'cpu-rt-period', 'cpu-rt-runtime', 'l3-cache-schema', 'mem-bw-schema'].filter((k) => str(k) !== undefined);
      if (unsupported.length) throw new RuntimeError(`${unsupported.map((k) => `--${k}`).join(', ')}: not a limit sandbox-runtime sets`);
      return update(g, oneId(rest, cmd), {
        resources: str('resources', 'r'), memory: str('memory'), memorySwap: str('memory-swap'), memoryReservation: str('memory-reservation'),
        cpuQuota: str('cpu-quota'), cpuPeriod: str('cpu-period'), cpuShare: str('cpu-share'), cpusetCpus: str('cpuset-cpus'), cpusetMems: str('cpuset-mems'),
        pidsLimit: str('pids-limit'), blkioWeight: str('blkio-weight'),
      });
    }
    case 'checkpoint': case 'restore': case 'events': case 'spec':
      throw new RuntimeError(`sandbox-runtime does not implement "${cmd}" yet`);
    default: throw new RuntimeError(`No help topic for '${cmd}'`);
  }
}

export async function main(argv: string[]): Promise<number> {
  let g: Globals = { root: '/run/sandbox-runtime', logFormat: 'text', debug: false };
  // The caller's stdout or stderr may not be writable (containerd's CRI plugin gives a Pod's
  // sandbox container /dev/null opened read-only): what cannot be written there is lost, as with
  // runc, and errors still reach --log, where containerd reads them.
  for (const s of [process.stdout, process.stderr]) s.on('error', () => undefined);
  try {
    const parsed = globals(argv);
    g = parsed.g;
    if (!parsed.cmd) { process.stderr.write(USAGE); return 1; }
    return await dispatch(g, parsed.cmd, parsed.args);
  } catch (e) {
    // load() and the lifecycle throw with an exit status of their own; to the caller all are runc's 1.
    const msg = e instanceof RuntimeError ? e.message : (e as Error)?.message && !/^exit [0-9]+$/.test((e as Error).message) ? (e as Error).message : 'the bundle cannot be run (see above)';
    process.stderr.write(`sandbox-runtime: ${msg}\n`);
    logLine(g, 'error', msg);
    return 1;
  }
}
