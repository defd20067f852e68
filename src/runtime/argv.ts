// sandbox-runtime's command line, read as runc reads its own: globals before the command, then the
// command's flags (`--flag value` or `--flag=value`) and the container id. The entry point of the
// second bin (bin/sandbox-runtime.js). Runs as its caller (root); prints, and returns the status.
import { COMMANDS, logLine, parseSignal, RuntimeError, VERSION, type Globals } from './main';

const USAGE = `usage: sandbox-runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND [FLAGS] ID
commands: create --bundle DIR [--pid-file F] [--console-socket S] ID | start ID | state ID |
          kill [--all] ID [SIGNAL] | delete [--force] ID | run --bundle DIR [--pid-file F] [-d] ID |
          list [--format json] | features | --version
`;

/** Flags with a value, and boolean ones, of each command (runc's names and short forms). */
const VALUE = new Set(['bundle', 'b', 'pid-file', 'console-socket', 'format', 'f', 'process', 'p', 'resources', 'r', 'signal', 's']);

function parseFlags(args: string[]): { flags: Record<string, string | true>; rest: string[] } {
  const flags: Record<string, string | true> = {};
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') { rest.push(...args.slice(i + 1)); break; }
    const m = /^--?([a-z][a-z-]*)(=(.*))?$/.exec(a);
    if (!m || (rest.length && !a.startsWith('--'))) { rest.push(a); continue; }
    const k = m[1]!;
    if (m[2] !== undefined) flags[k] = m[3]!;
    else if (VALUE.has(k)) { if (i + 1 >= args.length) throw new RuntimeError(`flag needs an argument: -${k.length > 1 ? '-' : ''}${k}`); flags[k] = args[++i]!; }
    else flags[k] = true;
  }
  return { flags, rest };
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
  const { flags, rest } = parseFlags(args);
  const str = (...k: string[]) => { for (const x of k) if (typeof flags[x] === 'string') return flags[x] as string; return undefined; };
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
    case 'exec': case 'ps': case 'pause': case 'resume': case 'update': case 'checkpoint': case 'restore': case 'events': case 'spec':
      throw new RuntimeError(`sandbox-runtime does not implement "${cmd}" yet`);
    default: throw new RuntimeError(`No help topic for '${cmd}'`);
  }
}

export async function main(argv: string[]): Promise<number> {
  let g: Globals = { root: '/run/sandbox-runtime', logFormat: 'text', debug: false };
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
