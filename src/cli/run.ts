// `sandbox run` (docker run's flags, run through the same pipeline as a file) and `sandbox import`
// (a docker run line or a Compose service written as a reviewed file). Both turn their input into
// a config with src/import, write it as YAML in memory, and load that text as `up` loads a file:
// the spec, the rules, the plan and the attestation are the file's. Runs in the CLI process as
// the caller; the only file written is the one --save or import names.
// Exit codes: run as up (its command's status, 125 setup failed), 1 usage (a flag sandbox does not
// know, or cannot map safely), 2 invalid; import 0 written, 1 usage, 2 invalid (nothing written).
import type { Command } from 'commander';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { formatDiagnostics } from '../config/diagnostic';
import { readBounded, type FoundConfig } from '../config/find';
import { LIMITS } from '../config/parse';
import type { CliValue } from '../model/normalize';
import { planJson, renderPlan } from '../plan/render';
import { commandLine, COMMAND_LINE, fromDockerRun, shellQuote } from '../import/docker';
import { fromCompose } from '../import/compose';
import type { Imported, Loc } from '../import/types';
import { toYaml } from '../import/write';
import { runsAsRoot } from '../image/owners';
import { probeHost, rootlessStateRoot } from '../engine/probe';
import { downSandbox, findSandbox } from '../engine/lifecycle';
import { MSG } from '../ui/messages';
import { progressMode } from '../ui/progress';
import { isTerminal } from './output';
import type { CommandLine, Loaded, LoadOpts, UpOpts } from './options';
export type { CommandLine };
import { LifecycleError } from './lifecycle';
import { locator, noteDiagnostic } from './imported';


type Load = (file: string | undefined, opts: LoadOpts) => Promise<Loaded>;
type Start = (l: Loaded, o: UpOpts) => Promise<void>;

const fail = (message: string, code: number): never => { throw new LifecycleError(message, code); };
const exit = (code: number): never => { throw new LifecycleError('', code); };
const color = () => !process.env.NO_COLOR && process.stderr.isTTY === true;

/** The installed schema, as the written file's first line names it for editors: relative from a
 * file inside this installation (as the samples), else its absolute path. */
const schemaFor = (outDir: string) => {
  const root = join(__dirname, '..');
  const abs = join(root, 'schema', 'sandbox.schema.json');
  const inside = relative(root, outDir);
  return inside.startsWith('..') || isAbsolute(inside) ? abs : relative(outDir, abs);
};

/** Writes a file the user named, making its folder first. */
function writeOut(file: string, text: string) {
  mkdirSync(dirname(resolve(file)), { recursive: true });
  writeFileSync(file, text);
}



/** Prints what was not mapped (warnings) and what cannot be (errors); exits `code` on any error. */
function printNotes(imp: Imported, file: string, code: number) {
  const shown = imp.notes.filter((n) => n.kind !== 'changed').map((n) => noteDiagnostic(n, 'not mapped')).sort((a, b) => a.line - b.line || a.col - b.col);
  if (!shown.length) return;
  process.stderr.write(formatDiagnostics(shown, (d) => (d.file === file ? imp.text : undefined), color()));
  const errors = shown.filter((d) => d.severity === 'error').length;
  if (errors) fail(`${errors} problem${errors === 1 ? '' : 's'} on the ${file === COMMAND_LINE ? 'command line' : `lines of ${file}`}; nothing was ${code === 1 ? 'run or written' : 'written'}`, code);
}

/** Lines of a header comment, each at most about 100 columns: long words kept whole. */
function wrap(text: string, width = 96, indent = ''): string[] {
  const out: string[] = [];
  let cur = '';
  for (const w of text.split(' ')) {
    if (cur && cur.length + 1 + w.length > width) { out.push(cur); cur = indent + w; } else cur = cur ? `${cur} ${w}` : w;
  }
  if (cur) out.push(cur);
  return out;
}

const DEFAULTS_NOTE = 'Tighter than docker run by default: 11 capabilities (Docker\'s 14 less NET_RAW, MKNOD and AUDIT_WRITE), no_new_privileges, a seccomp allow list, a private network; `sandbox plan` shows every step and where it comes from.';

/** Where `up -e/-v/-p` values are on the command line, in order, with the line for code frames. */
export function commandLineValues(argv: readonly string[]): { env: CliValue[]; volumes: CliValue[]; ports: CliValue[]; line: CommandLine } {
  const words = ['sandbox', ...argv];
  const { text, cols } = commandLine(words);
  const out = { env: [] as CliValue[], volumes: [] as CliValue[], ports: [] as CliValue[], line: { file: COMMAND_LINE, text } as CommandLine };
  const lists: Record<string, CliValue[]> = { '-e': out.env, '--env': out.env, '-v': out.volumes, '--volume': out.volumes, '-p': out.ports, '--publish': out.ports };
  const at = (i: number) => ({ file: COMMAND_LINE, line: 1, col: cols[i]! + 1 });
  for (let i = 1; i < words.length; i++) {
    const w = words[i]!;
    if (w === '--') break;
    const eq = w.indexOf('=');
    const long = w.startsWith('--') && eq > 0 ? w.slice(0, eq) : undefined;
    if (long && lists[long]) lists[long].push({ value: w.slice(eq + 1), src: at(i) });
    else if (lists[w] && i + 1 < words.length) { lists[w].push({ value: words[i + 1]!, src: at(i) }); i++; }
    else if (/^-[evp]./.test(w)) lists[w.slice(0, 2)]!.push({ value: w.slice(2).replace(/^=/, ''), src: at(i) });
  }
  return out;
}

const RUN_HELP = `
Flags, with docker run's meaning (each becomes a key of the file \`--save\` writes):
  -d, -i, -t, --rm, --name N, -e K[=V], --env-file F, -v SRC:DST[:ro] | NAME:DST, --mount, --tmpfs DST,
  -p [IP:]HOST:CTR[/PROTO], -m SIZE, --memory-reservation, --memory-swap, --cpus N, -c/--cpu-shares,
  --cpuset-cpus, --pids-limit N, --blkio-weight, --device-read-bps…, -u USER, -w DIR, -h NAME,
  --group-add, --network none|private|host|bridge, --dns, --add-host, --cap-add X, --cap-drop X,
  --read-only, --security-opt no-new-privileges|seccomp=…, --ulimit N=S[:H], --sysctl K=V,
  --device, --init, --restart, --stop-signal, --stop-timeout, --entrypoint, --shm-size,
  --ipc/--pid/--uts/--userns/--cgroupns host
sandbox's own:
  --rootfs host|DIR   run on the host's root filesystem (read-only) or a folder, instead of an IMAGE
  --replace           with --name, remove the sandbox of that name first, as podman run --replace
                      (stopped first if it runs); without it a name in use is refused, as docker run
  --save FILE         write the equivalent reviewed file instead of running
  --plan [--json | --format json]
                      print the plan (as JSON) instead of running
  -q                  print no progress
  --progress MODE     auto, tty, plain or quiet, as up's (run -d shows no stages unless asked,
                      as docker run -d prints the id alone; a pull is shown all the same)
  --allow-weaker      where no user namespace can be made (reduced mode), run even if some lines
                      cannot be held (the table says which), as \`sandbox up --allow-weaker\`
Flags docker run has and sandbox cannot say are reported with the reason; --privileged is refused.`;

export function registerRun(program: Command, load: Load, start: Start): void {
  program.command('run')
    .usage('[FLAGS] IMAGE|--rootfs host [COMMAND [ARG…]]')
    .description('run a command as docker run would, through the same plan as a file: --save writes that file, --plan shows the plan')
    // -h is docker run's --hostname.
    .helpOption('--help')
    .allowUnknownOption().allowExcessArguments().passThroughOptions()
    .argument('[args...]')
    .addHelpText('after', RUN_HELP)
    .action((args: string[]) => runCommand(args, load, start));

  program.command('import')
    .usage('[-o FILE] [--force] -- docker run [FLAGS] IMAGE [COMMAND…]  |  [-o FILE] [--force] [COMPOSE_FILE [SERVICE]]')
    .description('write a sandbox file from a docker run command line or a Compose service, with comments where the meaning differs')
    .helpOption('--help')
    .allowUnknownOption().allowExcessArguments().passThroughOptions()
    .argument('[args...]')
    .addHelpText('after', '\n  -o, --output FILE   where to write (default: NAME.yml here; - for stdout)\n  --force             replace FILE if it exists\nWhat cannot be mapped is printed with the reason; the file is written only if it is valid.')
    .action((args: string[]) => importCommand(args, load));
}

/** Without --name, the name made from the image (or command), or the first of NAME-2, NAME-3, …
 * that no sandbox of this caller has: as docker run makes up a name, so that a second
 * `sandbox run -it busybox sh` runs beside the first, and a detached one kept for its logs is not
 * replaced. Two runs started in the same instant may still pick one name: the second is then
 * refused as a taken name is. */
function freeName(base: string): string {
  const root = runsAsRoot() ? '/run/sandbox' : rootlessStateRoot();
  let name = base;
  for (let n = 2; existsSync(join(root, name)); n++) name = `${base}-${n}`;
  return name;
}

/** --replace (podman run's): the sandbox of that name, if there is one, is removed first as
 * `sandbox down` removes it (stopped with its grace period if it runs; its named volumes kept). */
async function replaceNamed(name: string): Promise<void> {
  const host = probeHost();
  try { findSandbox(host, name); } catch { return; }
  await downSandbox(host, name, undefined, (n) => { process.stderr.write(`${MSG.stop(n)}\n`); });
}

/** `sandbox run ARGS`: docker run's line made a config in memory, then saved (--save), shown
 * (--plan) or started as `up` starts a file. */
async function runCommand(args: string[], load: Load, start: Start): Promise<void> {
  const argv = ['sandbox', 'run', ...args];
  const cwd = process.cwd();
  const first = fromDockerRun(argv, { cwd, outDir: cwd });
  // Relative paths in a saved file start at its folder: written again from there.
  const imp = first.save ? fromDockerRun(argv, { cwd, outDir: dirname(resolve(first.save)) }) : first;
  // --save writes a file for the repository: its name is the image's, whatever runs here now.
  if (!imp.named && !imp.save) imp.config.name = freeName(String(imp.config.name));
  printNotes(imp, COMMAND_LINE, 1);
  const outDir = imp.save ? dirname(resolve(imp.save)) : cwd;
  const text = toYaml(imp, {
    schema: schemaFor(outDir),
    header: [...wrap(`Written by \`sandbox run --save\` from: ${argv.filter((w, i) => !(w === '--save' || argv[i - 1] === '--save' || w.startsWith('--save='))).map(shellQuote).join(' ')}`, 96, '  '), '', ...wrap(DEFAULTS_NOTE)],
  });
  const line: CommandLine = { file: COMMAND_LINE, text: imp.text, locate: locator(imp.origin, { file: COMMAND_LINE, line: 1, col: imp.cols[1]! + 1, endCol: imp.cols[1]! + 4 }) };
  const source: FoundConfig = { file: COMMAND_LINE, absFile: imp.save ? resolve(imp.save) : join(cwd, 'sandbox-run.yml'), bytes: Buffer.from(text), root: [] };
  const planOnly = !!(imp.save || imp.plan);
  if (imp.replace && imp.named && !planOnly) await replaceNamed(String(imp.config.name));
  // --name over a sandbox that has ended and is kept: refused, as docker run refuses a name in use.
  // --progress, as up's: for the pull and the stages.
  const asked = imp.progress ? progressMode(imp.progress, { quiet: imp.quiet, isTTY: isTerminal(2), env: process.env }) : undefined;
  const l = await load(undefined, { source, commandLine: line, forRun: !planOnly, hostProblems: imp.save ? 'warning' : undefined, stops: imp.save ? 'written' : undefined, image: { mode: planOnly ? 'store' : 'pull', quiet: imp.quiet, progress: asked }, allowWeaker: imp.allowWeaker, ...(planOnly ? {} : { preflight: { exit: 125, refuseKept: imp.named } }) });
  if (imp.save) {
    if (existsSync(imp.save) && imp.save !== '-') fail(`${imp.save} exists; remove it or name another file`, 1);
    if (imp.save === '-') process.stdout.write(text);
    else { writeOut(imp.save, text); process.stderr.write(`sandbox: wrote ${imp.save}; \`sandbox plan ${imp.save}\` shows its plan and \`sandbox up ${imp.save}\` runs it\n`); }
    return;
  }
  if (imp.plan) { process.stdout.write(imp.json ? planJson(l.plan) : renderPlan(l.plan, { file: l.file, color: !process.env.NO_COLOR && process.stdout.isTTY === true })); return; }
  // As docker run: a terminal for the command needs one to read from.
  if (imp.config.tty && imp.config.stdin_open && !process.stdin.isTTY) fail('the input device is not a TTY; leave out -t to run without a terminal, or -i to give the command no input', 1);
  // --rm: a foreground sandbox keeps nothing once it ends but its anonymous volumes; a detached
  // one is removed by its supervisor, which runs `down` once the command has ended for good.
  // As docker run -d, which prints the container's id alone: a detached run prints its name and,
  // unless a progress mode is asked for, no stages (a pull is still shown, as docker shows one).
  await start(l, { detach: imp.config.detach, quiet: imp.quiet, rm: imp.rm, progress: asked ?? (imp.config.detach ? 'quiet' : undefined) });
}

/** import's own arguments: -o FILE, --force, then a docker run line (after -- or from its first
 * word) or a Compose file and service. */
function importArgs(args: string[]): { output?: string; force: boolean; rest: string[]; docker?: string[] } {
  let output: string | undefined;
  let force = false;
  let rest: string[] = [];
  let docker: string[] | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') { docker = args.slice(i + 1); break; }
    if (a === '-o' || a === '--output') { output = args[++i] ?? fail(`${a} needs a file name`, 1); continue; }
    if (a.startsWith('--output=')) { output = a.slice(9); continue; }
    if (a === '--force' || a === '-f') { force = true; continue; }
    if (a.startsWith('-')) fail(`import does not know ${a}; put a docker run line after --: sandbox import -- docker run …`, 1);
    if (['docker', 'podman', 'nerdctl', 'run'].includes(a)) { docker = args.slice(i); break; }
    rest.push(a);
  }
  // With nothing named, the Compose file of this folder, by the names Compose looks for.
  if (!docker && rest.length === 0) {
    const here = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'].find((f) => existsSync(f));
    if (!here) fail('name what to import: sandbox import -- docker run IMAGE …, or sandbox import compose.yml [SERVICE] (no compose.yaml or docker-compose.yml here)', 1);
    rest = [here!];
  }
  if (!docker && rest.length > 2) fail(`import takes a Compose file and at most one service, not ${rest.slice(2).join(' ')}`, 1);
  return { output, force, rest, docker };
}

/** What import read: the config made, the file's header, the name its problems are shown under,
 * where a problem with no place of its own points, and the exit code of an unmappable flag. */
interface ImportSource { imp: Imported; header: string[]; fileShown: string; fallback: Loc; usage: number }

/** A docker run line or a Compose service made a config (a Compose file's errors are printed,
 * and exit 2). */
function importSource(a: { rest: string[]; docker?: string[] }, cwd: string, outDir: string): ImportSource {
  const { docker, rest } = a;
  if (docker) {
    const d = fromDockerRun(docker, { cwd, outDir });
    const fallback = { file: COMMAND_LINE, line: 1, col: 1, endCol: 2 };
    if (d.rm) d.notes.push({ kind: 'dropped', at: d.origin[0]?.at ?? fallback, code: 'rm', message: '`--rm`: a sandbox run by `sandbox up` keeps nothing once it ends (a detached one until `sandbox down`)' });
    return { imp: d, fileShown: COMMAND_LINE, usage: 1, fallback, header: [...wrap(`Imported by \`sandbox import\` from: ${docker.map(shellQuote).join(' ')}`, 96, '  ')] };
  }
  const file = rest[0]!;
  let bytes: Uint8Array;
  try { bytes = readBounded(file, LIMITS.bytes); } catch (e) { return fail(`${file} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 2); }
  const c = fromCompose(file, bytes, rest[1], { composeDir: dirname(resolve(file)), outDir });
  if (c.errors.length) {
    process.stderr.write(formatDiagnostics(c.errors, () => c.text, color()));
    return exit(2);
  }
  return { imp: c, fileShown: file, usage: 2, fallback: { file, line: 1, col: 1 }, header: [`Imported by \`sandbox import\` from service \`${c.service}\` of ${file}.`] };
}

/** `sandbox import …`: the config written as a reviewed file, after it is checked as `validate`
 * checks one; nothing invalid is written. */
async function importCommand(args: string[], load: Load): Promise<void> {
  const a = importArgs(args);
  const cwd = process.cwd();
  const outDir = a.output && a.output !== '-' ? dirname(resolve(a.output)) : cwd;
  const { imp, header, fileShown, fallback, usage } = importSource(a, cwd, outDir);
  printNotes(imp, fileShown, usage);
  const name = String(imp.config.name);
  const target = a.output ?? `${name}.yml`;
  if (target !== '-' && existsSync(target) && !a.force) fail(`${target} exists; use --force to replace it, or -o to name another file`, 1);
  const text = toYaml(imp, { schema: schemaFor(outDir), header: [...header, '', ...wrap(DEFAULTS_NOTE)] });
  // Checked as `validate` checks a file, problems shown where they came from: nothing invalid is written.
  const source: FoundConfig = { file: fileShown, absFile: target === '-' ? join(cwd, `${name}.yml`) : resolve(target), bytes: Buffer.from(text), root: [] };
  await load(undefined, { source, commandLine: { file: fileShown, text: imp.text, locate: locator(imp.origin, fallback) }, hostProblems: 'warning', stops: 'written' });
  if (target === '-') { process.stdout.write(text); return; }
  writeOut(target, text);
  const changed = imp.notes.filter((n) => n.kind === 'changed').length;
  process.stderr.write(`sandbox: wrote ${target}${changed ? ` (${changed} comment${changed === 1 ? '' : 's'} where the meaning differs)` : ''}; \`sandbox plan ${target}\` shows its plan\n`);
}
