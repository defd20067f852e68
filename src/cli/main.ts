// argv → commands → exit codes. Runs in the CLI process, as the invoking user (root for `up`).
// Exit codes follow docker run: 0 ok, 1 usage, 2 invalid config, 125 setup failed,
// 126 cannot execute, 127 not found, else the command's own status or 128 + signal.
import { Command, CommanderError, Option } from 'commander';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { formatDiagnostics, summary, type Diagnostic } from '../config/diagnostic';
import { renderEnforcement } from '../ui/enforcement';
import { planJson, renderPlan, sourceText } from '../plan/render';
import type { Plan, HostFeatures, RootlessHost } from '../plan/types';
import { describeDelegation, probeHost } from '../engine/probe';
import { prewarmCgroupAttach } from '../engine/prewarm';
import { MSG } from '../ui/messages';
import { PROGRESS_CHOICES, progressMode, pullProgress, StageProgress } from '../ui/progress';
import { prepare } from '../api/load';
import { nativeEngine, start as startSandbox, type CliRun } from '../api/sandbox';
import type { RunResult } from '../engine/types';
import { ConfigError, SandboxError } from '../api/errors';
import { fileAndCommand } from './argv';
import { formatOf, withFormat, type FormatOpts } from './format';
import { registerVersion, VERSION } from './version';
import { registerCompletion } from './completion';
import { HOST_PROGRAMS, type HostProgram } from '../model/tables';
import { LifecycleError, registerLifecycle } from './lifecycle';
import { registerImages } from './images';
import { registerVolumes } from './volumes';
import { registerAudit } from './audit';
import { bundleName, loadOci } from './oci';
import { registerExport } from './export';
import { DENIALS, DenialFollower, hasEgress, rulesOf } from './denials';
import { denialSummary, type Denial } from '../ui/denials';
import { commandLineValues, registerRun } from './run';
import type { Loaded, LoadOpts, UpOpts } from './options';
export type { Loaded, LoadOpts, UpOpts };
import { join } from 'node:path';
import { isTerminal, writeErr, writeOut } from './output';

export const EXIT = { ok: 0, usage: 1, invalid: 2, setup: 125 } as const;


class Exit extends Error { constructor(readonly code: number) { super(`exit ${code}`); } }

const color = () => !process.env.NO_COLOR && isTerminal(2);





/** find → parse → validate → (image) → normalize with the CLI's overrides → rules → compile
 * (api/load.ts, the library's loader); prints every problem and exits 2 on any error. With
 * `preflight` (up, up --dry-run, run, doctor FILE), the host is checked too (engine/preflight.ts)
 * before any pull: everything found is said at once, and a problem only of the host's present
 * state exits with `preflight`'s status. */
export async function load(fileArg: string | undefined, opts: LoadOpts): Promise<Loaded> {
  const io = opts.image;
  // A pull is shown with listr2 (the progress mode of `up`, or auto).
  const view = (image: string) => {
    const mode = io?.progress ?? progressMode('auto', { quiet: io?.quiet, isTTY: isTerminal(2), env: process.env });
    return pullView({ quiet: mode === 'quiet', plain: mode === 'plain', title: `pull ${image}` });
  };
  try {
    const p = await prepare(fileArg, { ...opts, image: io && { mode: io.mode, insecure: io.insecure, view }, stdinIsTTY: () => process.stdin.isTTY === true });
    // Frames of a config made from the command line show the command line (report's `others`).
    report(p.diagnostics, p.text, opts.format, opts.commandLine?.locate ? undefined : p.file, p.texts);
    return { plan: p.plan, file: p.file, host: p.host, diagnostics: p.diagnostics, text: p.text, spec: p.spec, absFile: p.absFile, root: p.root };
  } catch (e) {
    if (e instanceof ConfigError) {
      const { diagnostics } = e;
      report(diagnostics, e.text, opts.format, opts.commandLine?.locate ? undefined : e.file, e.texts);
      // Reduced mode: the whole table beside the lines that stop it.
      if (e.plan?.reduced && opts.format !== 'json' && opts.format !== 'json-plan') writeErr(renderEnforcement(e.plan.reduced));
      if (opts.format !== 'json') writeErr(`${MSG.invalid(summary(diagnostics), opts.stops)}${opts.strict && diagnostics.some((d) => d.severity === 'warning') ? ` (${MSG.strictWarnings})` : ''}\n`);
      throw new Exit(e.exitCode);
    }
    if (e instanceof SandboxError) { writeErr(`sandbox: ${e.message}\n`); throw new Exit(e.exitCode); }
    throw e;
  }
}

/** listr2's view of a pull, loaded only when one starts. */
function pullView(o: { quiet: boolean; plain: boolean; title: string }) {
  return pullProgress(o);
}

export function report(diagnostics: Diagnostic[], text: string, format = 'text', file?: string, others: Record<string, string> = {}) {
  if (format === 'json') {
    writeOut(JSON.stringify(diagnostics.map(({ file, line, col, path, code, message, severity }) => ({ file, line, col, path, code, message, severity })), null, 2) + '\n');
    return;
  }
  if (!diagnostics.length) return;
  // At most MAX_PRINTED of them, each code frame cut to about 100 columns: output stays bounded.
  writeErr(formatDiagnostics(diagnostics, (d) => (Object.hasOwn(others, d.file) ? others[d.file] : file === undefined || d.file === file ? text : undefined), color()));
}

/** doctor's rows for a caller who is not root: what its sandboxes' ids and networks can be. */
function rootlessRows(r: RootlessHost): [string, string][] {
  const ranges = (l: { start: number; count: number }[], file: string) => (l.length ? l.map((x) => `${x.start}-${x.start + x.count - 1}`).join(', ') : `none in ${file}: only a one-id map`);
  const helpers = r.newuidmap && r.newgidmap ? 'newuidmap and newgidmap' : 'no newuidmap/newgidmap (install uidmap): only a one-id map';
  return [
    ['ids', `${r.user} (${r.uid}:${r.gid}); subuid ${ranges(r.subuid, '/etc/subuid')}; subgid ${ranges(r.subgid, '/etc/subgid')}; ${helpers}`],
    ['network', `${r.pasta ? `pasta (${r.pasta})` : 'no pasta (install passt)'}, ${r.slirp4netns ? `slirp4netns (${r.slirp4netns})` : 'no slirp4netns'}; /dev/net/tun ${r.tun ? 'usable' : 'not usable by you: `chmod 0666 /dev/net/tun` as root (udev does it on a usual host)'}`],
  ];
}


const collect = (v: string, all: string[]) => [...all, v];

/** The arguments main() was given, for locating `up -e/-v/-p` on the command line. */
let rawArgv: string[] = [];

interface OverrideOpts { env: string[]; volume: string[]; publish: string[] }

/** `up`'s and `plan`'s -e/-v/-p for normalize, each with where it is on the command line: the plan
 * cites it, and a bad one is shown there. */
function overridesOf(o: OverrideOpts): Pick<LoadOpts, 'overrides' | 'commandLine'> {
  if (!o.env.length && !o.volume.length && !o.publish.length) return {};
  const cl = commandLineValues(rawArgv);
  return { overrides: { env: cl.env, volumes: cl.volumes, ports: cl.ports, cwd: process.cwd() }, commandLine: cl.line };
}

/** Test-only (SANDBOX_TEST_WRITABLE=STEP-ID): the named read-only bind is made writable, in the
 * plan too, so that the attestation checks what is applied, as if its mount rule had been
 * forgotten. The Landlock ruleset, made when the plan was compiled, still grants it read only:
 * a write there then meets Landlock alone (EACCES, where the mount would have said EROFS). */
function writableForTest(plan: Plan, id: string): Plan {
  const step = plan.steps.find((s) => s.id === id);
  if (step?.kind !== 'mount.bind' || !step.args.readOnly) throw new Error(`SANDBOX_TEST_WRITABLE: ${id} is not a read-only bind of this plan`);
  return { ...plan, steps: plan.steps.map((s) => (s === step ? { ...step, args: { ...step.args, readOnly: false } } : s)) };
}

/** Sets up the sandbox of a loaded plan and runs its command, showing its stages (with
 * --dry-run, prints the plan it would apply instead); throws Exit with the command's status. */
export async function start(l: Loaded, o: UpOpts): Promise<void> {
  if (o.dryRun) {
    writeOut(o.json ? planJson(l.plan) : renderPlan(l.plan, { file: l.file, color: !process.env.NO_COLOR && isTerminal(1) }) + (l.plan.reduced ? `\n${renderEnforcement(l.plan.reduced)}` : ''));
    writeErr(`${MSG.dryRun}\n`);
    return;
  }
  // Reduced mode is never silent: what each line gets, before the command runs.
  if (l.plan.reduced && !o.quiet) writeErr(renderEnforcement(l.plan.reduced));
  if (process.env.SANDBOX_TEST_WRITABLE) l = { ...l, plan: writableForTest(l.plan, process.env.SANDBOX_TEST_WRITABLE) };
  // While the engine loads and checks the plan: see engine/prewarm.ts.
  prewarmCgroupAttach(l.host);
  try { await nativeEngine(); } catch (e) {
    writeErr(MSG.noEngine((e as Error).message) + '\n');
    throw new Exit(EXIT.setup);
  }
  const mode = o.progress ?? progressMode('auto', { quiet: o.quiet, isTTY: isTerminal(2), env: process.env });
  // The terminal view draws on stderr's stream (its width, its cursor); plain lines are written as any other.
  const view = new StageProgress(l.plan, { mode: o.verbose && mode === 'tty' ? 'plain' : mode, verbose: o.verbose, color: mode === 'tty' && color(), out: mode === 'tty' && !o.verbose ? process.stderr : { write: writeErr } });
  // An egress policy's refusals, read as sbx-egress records them, for the line a foreground run
  // ends with: only those after the command started (before it, the attestation's probes are refused on purpose).
  const egress: Egress | undefined = hasEgress(l.plan) ? { dir: join(l.host.stateRoot, l.plan.name), records: [], since: '' } : undefined;
  const follower = egress && new DenialFollower(egress.dir, (r) => { egress.records.push(...r); }).start(true);
  // The library's start, in the engine's CLI mode: this process's signals go to the sandbox, the
  // command has the terminal; the handle's outcome is the run's, a failed setup's too.
  const sandbox = await startSandbox(l.plan, l.host, l.file, { onProgress: view.onEvent, cli: cliRun(l, o, view, egress, follower) });
  const result = await sandbox.outcome();
  view.end();
  follower?.stop();
  await finish(l, o, result, egress);
}

/** The denials the line a foreground run ends with counts: sbx-egress's records of this sandbox,
 * and when its command started. */
interface Egress { dir: string; records: Denial[]; since: string }

/** The CLI's hooks into the run, and the test-only faults it takes from the environment. */
function cliRun(l: Loaded, o: UpOpts, view: StageProgress, egress: Egress | undefined, follower: DenialFollower | undefined): CliRun {
  return {
    // Test-only: fail the named step as if its system call had failed (exit 125, nothing left behind).
    failAt: process.env.SANDBOX_TEST_FAIL_AT,
    pauseAt: process.env.SANDBOX_TEST_PAUSE_AT,
    // Test-only: freeze when the named step starts, so that a test can kill -9 the CLI there.
    stallAt: process.env.SANDBOX_TEST_STALL_AT,
    // Test-only: apply the named step wrongly; the attestation must refuse to run the command.
    corruptAt: process.env.SANDBOX_TEST_CORRUPT,
    // The view ends before the command may write its first byte.
    // sbx-egress made denials.jsonl when it started, before this: opening it now, before the
    // command runs, keeps every record readable even after a short run's state folder is gone.
    beforeExec: async () => { if (egress) { egress.since = new Date().toISOString(); follower!.poll(); } view.end(); },
    // sbx-egress has written its last records and the state folder is still there: read them now.
    afterCommand: () => follower?.poll(),
    onSignal: (n) => { writeErr(`${MSG.signal(n)}\n`); },
    // Detached --rm: the supervisor runs this CLI's own `down` once the command has ended for
    // good (this same node and entry script, with the caller's privilege and environment).
    onExit: o.rm ? [process.execPath, ...process.execArgv, process.argv[1]!, 'down', '--rm', l.plan.name] : undefined,
  };
}

/** What a run ends with: the denial line, --rm's volumes, the timing line, the --attest file, a
 * detached one's name, or the failed step; throws Exit with the command's status. */
async function finish(l: Loaded, o: UpOpts, result: RunResult, egress: Egress | undefined): Promise<void> {
  if (egress && !result.detached && egress.since) {
    const line = denialSummary(egress.records.filter((r) => r.t >= egress.since), rulesOf(egress.dir, l.plan), l.plan.name, existsSync(join(egress.dir, DENIALS)));
    if (line) writeErr(`${line}\n`);
  }
  // Foreground --rm: the engine removed the rest as the command ended; the anonymous volumes go too.
  if (o.rm && !result.detached) {
    const { removeAnonymousVolumes } = await import('../engine/lifecycle');
    removeAnonymousVolumes(l.host, l.plan);
  }
  // For the start-up benchmark: the engine's own setup time, measured inside.
  if (process.env.SANDBOX_TIMING === '1' && result.timing) writeErr(`sandbox: setup ${result.timing.setupMs.toFixed(2)} ms, clone to exec ${result.timing.spawnToExecMs.toFixed(2)} ms, seccomp compile ${(result.timing.seccompCompileMs ?? 0).toFixed(3)} ms, caps and filter load ${(result.timing.capsAndFilterMs ?? 0).toFixed(3)} ms, attestation ${(result.timing.attestMs ?? 0).toFixed(3)} ms\n`);
  // Written whether the run was refused or not: a CI job keeps what the sandbox really had.
  if (o.attest && (result.attestation || result.failed)) writeFileSync(o.attest, `${JSON.stringify({ name: l.plan.name, digest: l.plan.digest, file: l.file, verified: !result.failed || result.exitCode !== 125, attestation: result.attestation ?? [], failed: result.failed ?? null }, null, 2)}\n`);
  if (result.detached) {
    writeOut(`${l.plan.name}\n`);
    return;
  }
  if (result.failed) {
    const step = l.plan.steps.find((s) => s.id === result.failed!.step);
    const where = step && typeof step.source === 'object' ? sourceText(step.source) : '';
    if (result.exitCode === 137) writeErr(`sandbox: ${result.failed.message}${where ? ` (${where})` : ''}\n`);
    else {
      const say = step?.kind === 'exec' ? MSG.execFailed : MSG.setupFailed;
      writeErr(`${say(`${result.failed.step}${step ? ` (${step.title})` : ''}`, result.failed.message, where)}\n`);
    }
  }
  throw new Exit(result.exitCode);
}

/** doctor's row of the host programs sandbox runs: those found, and the package of each missing one. */
function programsRow(h: HostFeatures): string {
  const names = Object.keys(HOST_PROGRAMS) as HostProgram[];
  const missing = names.filter((p) => !h.programs[p]);
  return `${names.filter((p) => h.programs[p]).join(' ') || 'none'}${missing.length ? `; not installed: ${missing.map((p) => `${p} (${HOST_PROGRAMS[p].package})`).join(', ')}` : ''}`;
}

export function buildProgram(): Command {
  const program = new Command('sandbox')
    .description('Run a command in a sandbox described by a YAML file: namespaces, cgroups, capabilities, no daemon.')
    .version(VERSION)
    .showSuggestionAfterError(true)
    // `sandbox exec NAME sh -c …`: options after the command belong to the command.
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeErr });
  // The bundles of one command (dist/sandbox-plan.js for `validate` and `plan`, dist/sandbox-up.js
  // for `up`, which bin/sandbox.js loads for them): the build sets SANDBOX_BUNDLE there, so that
  // the other commands, and every module only they import, are left out (a smaller bundle and code
  // cache to load). The commands keep their order, that of `sandbox --help`.
  if (process.env.SANDBOX_BUNDLE !== 'up') registerPlan(program);
  if (process.env.SANDBOX_BUNDLE !== 'plan') registerUp(program);
  if (process.env.SANDBOX_BUNDLE === undefined) registerOthers(program);
  return program;
}

/** `validate` and `plan`. */
function registerPlan(program: Command): void {
  withFormat(program.command('validate').argument('[file]', 'config file; found upward from the cwd when left out'), ['text', 'json'], 'print the problems as JSON on stdout')
    .description('check a config and print every problem in it, located')
    .option('--strict', 'treat warnings as errors')
    .action(async (file: string | undefined, o: FormatOpts & { strict?: boolean }) => {
      const format = formatOf(o);
      // A valid file stays valid on a host that cannot apply it: that is a warning here, an error for plan and up.
      const l = await load(file, { strict: o.strict, format, hostProblems: 'warning' });
      if (format === 'json') return;
      writeErr(MSG.valid(l.file, l.diagnostics.length) + '\n');
    });

  withFormat(program.command('plan').argument('[file]', 'config file; found upward from the cwd when left out'), ['text', 'json'], 'print the plan as JSON')
    .description('print the ordered isolation steps `up` would apply, each with the config line behind it')
    .option('--strict', 'treat warnings as errors')
    .option('-e, --env <NAME=VALUE>', 'as up -e: the plan of `up FILE -e …`', collect, [] as string[])
    .option('-v, --volume <SRC:DST[:ro]>', 'as up -v', collect, [] as string[])
    .option('-p, --publish <[IP:]HOST:CTR[/PROTO]>', 'as up -p', collect, [] as string[])
    .option('--oci <bundle>', 'the plan an OCI bundle\'s config.json gets under sandbox-runtime (no FILE then)')
    .action(async (file: string | undefined, o: FormatOpts & { strict?: boolean; oci?: string } & OverrideOpts) => {
      const json = formatOf(o) === 'json';
      if (o.oci && file) throw new LifecycleError('plan takes a FILE or --oci BUNDLE, not both', EXIT.usage);
      const l = o.oci
        ? await loadOci(load, o.oci, bundleName(o.oci), { strict: o.strict, format: json ? 'json-plan' : 'text' })
        : await load(file, { strict: o.strict, format: json ? 'json-plan' : 'text', ...overridesOf(o) });
      writeOut(json ? planJson(l.plan) : renderPlan(l.plan, { file: l.file, color: !process.env.NO_COLOR && isTerminal(1) }) + (l.plan.reduced ? `\n${renderEnforcement(l.plan.reduced)}` : ''));
    });
}

function registerUp(program: Command): void {
  // --json/--format json only with --dry-run: the plan it would apply, as plan --json prints it.
  withFormat(program.command('up').argument('[file]', 'config file; found upward from the cwd when left out')
    .argument('[command...]', 'command and arguments after --, replacing the config\'s command'), ['text', 'json'], 'with --dry-run, print the plan as JSON, as plan --json')
    .description('set up the sandbox and run its command')
    .option('--dry-run', 'print the plan up would apply, and change nothing')
    .option('-d, --detach', 'run in the background under a small supervisor, and print the name once the command runs')
    .option('-i, --interactive', 'pass this stdin to the command, as stdin_open: true does (without it the command reads /dev/null)')
    .option('-T, --no-tty', 'give the command no terminal, whatever the file\'s `tty` says (as docker compose run -T): to pipe input into an interactive sandbox')
    .option('--name <name>', 'name the sandbox (default: the config\'s name), to run one file more than once')
    .option('--insecure-registry <host>', 'pull from this registry over plain HTTP (repeatable; one on loopback always is)', (v: string, all: string[]) => [...all, v], [] as string[])
    .addOption(new Option('--progress <mode>', 'auto (a terminal view on a terminal, plain lines elsewhere and under CI), tty, plain or quiet').choices(PROGRESS_CHOICES).default('auto'))
    .option('-q, --quiet', 'print no progress (--progress quiet)')
    .option('--verbose', 'print every step as it is applied, one line each')
    .option('--strict', 'treat warnings as errors')
    .option('--allow-weaker', 'where no user namespace can be made (reduced mode), run even if some lines of the file cannot be held (the table says which)')
    .option('--attest <file>', 'write what was read back from the sandbox before its command started (each step verified or not checkable), with the plan\'s digest, as JSON')
    .option('-e, --env <NAME=VALUE>', 'set a variable, over the file\'s (repeatable)', collect, [] as string[])
    .option('-v, --volume <SRC:DST[:ro]>', 'mount a host path, replacing the file\'s mount on DST (repeatable; relative to the current folder)', collect, [] as string[])
    .option('-p, --publish <[IP:]HOST:CTR[/PROTO]>', 'publish a port, replacing the file\'s for the same container port (repeatable)', collect, [] as string[])
    .action(async (fileArg: string | undefined, words: string[], o: Omit<UpOpts, 'progress' | 'json'> & FormatOpts & OverrideOpts & { progress: string; name?: string; insecureRegistry: string[]; strict?: boolean; interactive?: boolean; tty: boolean; allowWeaker?: boolean }, self: Command) => {
      const json = formatOf(o) === 'json';
      if (json && !o.dryRun) throw new LifecycleError(MSG.jsonNeedsDryRun, 1);
      // `up -- CMD ARGS` with no FILE: the first word after -- is the command, never the file.
      const { file, command: cmd } = fileAndCommand(self, fileArg, words);
      const progress = progressMode(o.progress, { quiet: o.quiet, isTTY: isTerminal(2), env: process.env });
      const l = await load(file, { strict: o.strict, command: cmd.length ? cmd : undefined, forRun: !o.dryRun, detach: o.detach, interactive: o.interactive, noTty: !o.tty, name: o.name, image: { mode: o.dryRun ? 'store' : 'pull', insecure: o.insecureRegistry, progress }, preflight: { exit: EXIT.setup }, allowWeaker: o.allowWeaker, ...(json ? { format: 'json-plan' } : {}), ...overridesOf(o) });
      await start(l, { ...o, json, progress });
    });
}

/** Every command after `up`. */
function registerOthers(program: Command): void {
  withFormat(program.command('doctor').argument('[file]', 'a config to check against this host'))
    .description('print what this host offers, and which lines of FILE it cannot apply')
    .action(async (file: string | undefined, o: FormatOpts) => {
      const json = formatOf(o) === 'json';
      const h = probeHost();
      let engine = 'ok';
      try { const { engineLibrary } = await import('../engine/probe'); engine = `${engineLibrary()} (ABI ok)`; } catch (e) { engine = `missing: ${(e as Error).message}; build it with npm run build`; }
      const yes = (b: boolean) => (b ? 'yes' : 'no');
      const rows: [string, string][] = [
        ['kernel', `${h.kernel} ${h.arch}, ${h.cpus} CPUs`],
        ['privilege', h.root ? `root, ${h.caps.length} capabilities${h.caps.includes('SYS_RESOURCE') ? '' : ' (no SYS_RESOURCE: hard rlimits cannot be raised)'}` : 'not root: rootless, in a user namespace where you are root'],
        // Without root: the ids a user namespace may map, the network tools, and where limits apply.
        ...(h.rootless ? rootlessRows(h.rootless) : []),
        ...(h.root ? [] : [['limits', describeDelegation(h)] as [string, string]]),
        ['cgroups', `${h.cgroup.layout}${h.cgroup.controllers.length ? `: ${h.cgroup.controllers.join(' ')}` : ''}; swap accounting ${h.cgroup.swap ? 'on' : 'off'}${h.cgroup.ioWeightFile ? `; IO weight in ${h.cgroup.ioWeightFile}` : ''}`],
        ['user namespaces', h.reduced ? `no: ${h.reduced.why}; a sandbox runs in reduced mode (no namespaces: Landlock, seccomp, no_new_privs, rlimits), and \`doctor FILE\` shows what each line gets` : yes(h.userns)],
        ['landlock', h.landlock ? `ABI ${h.landlock}${h.landlock >= 4 ? ' (TCP ports)' : ''}${h.landlock >= 6 ? ' (signal and abstract socket scopes)' : ''}` : 'no'],
        ['seccomp', yes(h.seccomp)],
        ['overlayfs', yes(h.overlayfs)],
        ['programs', programsRow(h)],
        ['native engine', engine],
        ['state folder', h.stateRoot],
      ];
      if (json) {
        const l = file ? await load(file, { preflight: { exit: EXIT.invalid } }) : undefined;
        process.stdout.write(JSON.stringify({ host: Object.fromEntries(rows), ...(l ? { file: l.file, applies: true, steps: l.plan.steps.length, ...(l.plan.reduced ? { reduced: l.plan.reduced } : {}) } : {}) }, null, 2) + '\n');
        return;
      }
      process.stdout.write(rows.map(([k, v]) => `${k.padEnd(16)} ${v}`).join('\n') + '\n');
      if (!file) return;
      const l = await load(file, { preflight: { exit: EXIT.invalid }, allowWeaker: true });
      if (l.plan.reduced) process.stdout.write(`\n${l.file}: ${renderEnforcement(l.plan.reduced)}`);
      else process.stdout.write(`\n${l.file}: this host can apply every line (${l.plan.steps.length} steps)\n`);
    });

  registerLifecycle(program, async (file) => (await load(file, {})).plan.name);
  registerImages(program);
  registerVolumes(program);
  registerAudit(program, load);
  registerExport(program, load);
  registerVersion(program);
  registerCompletion(program);
  registerRun(program, load, start);

  program.command('schema').description('print the JSON Schema of the config file').action(() => {
    // Read at run time, not bundled: only this command needs it.
    process.stdout.write(readFileSync(join(__dirname, '..', 'schema', 'sandbox.schema.json'), 'utf8'));
  });
}

export async function main(argv: string[]): Promise<number> {
  try {
    rawArgv = argv;
    await buildProgram().parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (e) {
    if (e instanceof Exit) return e.code;
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : EXIT.usage;
    // An empty message carries only an exit status (sandbox exec passes the command's on).
    if (e instanceof LifecycleError) { if (e.message) writeErr(`sandbox: ${e.message}\n`); return e.code; }
    // The library's typed errors, from the commands that are its clients (stop, down, exec, rmi…): its words and status.
    if (e instanceof SandboxError) { writeErr(`sandbox: ${e.message}\n`); return e.exitCode; }
    writeErr(MSG.internal((e as Error)?.message ?? String(e)) + '\n');
    return EXIT.setup;
  }
}

