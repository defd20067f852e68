// A sandbox started by the library (src/api): a child of the caller's process, as the command of
// a foreground `sandbox up` is of the CLI's, set up by the native engine with the caller's signals
// left alone, its stdio the caller's choice, and its exit reaped without a worker thread each (so
// that one process can run many). The handle says its pid, name, plan and attestation, streams
// its progress, and waits, execs, stops and removes it. Runs as the caller's user (root, or
// rootless in a user namespace, as the CLI). The CLI's `up` and `run` start through here too, in
// the engine's CLI mode (an internal option: see CliRun).
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import type { Plan, HostFeatures, Verdict } from '../plan/types';
import { compileExec } from '../plan/exec';
import { findStep } from '../plan/steps';
import type { EngineEvent, RunResult } from '../engine/types';
import type { ExecOptions as ExecEngineOptions, NativeEngine, NativeRunOptions, StdioMode } from '../engine/native';
import { AbortError, SandboxError, SetupError, NotFoundError } from './errors';
import { MSG } from '../ui/messages';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How the handle learns of its run: set once by up(). */
export interface RunWiring { result: Promise<RunResult>; pid: number }

/**
 * A running sandbox. Events: `progress` (each step as it is applied: an EngineEvent), `exit`
 * (the command's status, once everything it set up is removed; not for a detached one, whose
 * wait() waits for its supervisor).
 */
export class Sandbox extends EventEmitter {
  /** The sandbox's PID 1, in the host's pid namespace. */
  pid = 0;
  /** What was read back from inside before the command ran: one verdict per step. */
  attestation: Verdict[] = [];
  /** The command's stdio when up() was asked for pipes (`stdio: 'pipe'`); else undefined. */
  stdin?: Writable;
  stdout?: Readable;
  stderr?: Readable;
  /** Run on under sbx-supervise (`detach: true` in the file): not a child of this process. */
  detached = false;
  private result!: Promise<RunResult>;
  private exitCode?: number;

  constructor(readonly name: string, readonly plan: Plan, readonly file: string, private readonly host: HostFeatures) { super(); }

  /** @internal: up() hands the run over once its command runs. */
  wire(result: Promise<RunResult>, pid: number, detached: boolean, attestation: Verdict[]): void {
    this.pid = pid;
    this.detached = detached;
    this.attestation = attestation;
    this.result = result;
    // A detached one runs on after this process: only wait() watches it (it does not keep the process alive otherwise).
    if (!detached) void this.wait().then((code) => this.emit('exit', code), () => undefined);
  }

  /** @internal: the engine's result of the run, once it has ended (a detached one's once its
   * command runs): what the CLI prints after it (the failed step, the timing, the attestation,
   * whether it detached). */
  outcome(): Promise<RunResult> { return this.result; }

  /** The command's exit status (docker run's: its code, or 128 + the signal; 137 when killed),
   * once it has ended and what the sandbox set up is gone (a foreground run's undo). */
  async wait(): Promise<number> {
    if (this.exitCode !== undefined) return this.exitCode;
    const r = await this.result;
    if (!r.detached) return (this.exitCode = r.exitCode);
    // Detached: its supervisor, this process's child, writes the status as the command ends for
    // good, then exits; the state says the status (a poll where the supervisor is not known).
    const { findSandbox, exitCode } = await import('../engine/lifecycle');
    if (r.supervisorExit) {
      // The supervisor's handle does not keep this process alive (it outlives the CLI): a wait does.
      const alive = setInterval(() => undefined, 1 << 30);
      try { await r.supervisorExit().catch(() => 0); } finally { clearInterval(alive); }
    }
    for (;;) {
      let row;
      try { row = findSandbox(this.host, this.name); } catch { return (this.exitCode = 0); }
      if (!row.running) return (this.exitCode = row.exit !== undefined ? exitCode(row.exit) : 0);
      await sleep(50);
    }
  }

  /** Runs one more command inside (every namespace, its cgroup, user, capabilities and seccomp
   * filter, as `sandbox exec`), with this process's stdio; resolves with its status. */
  async exec(args: string[], o: { env?: string[]; user?: string; cwd?: string } = {}): Promise<number> {
    if (this.exitCode !== undefined) throw new NotFoundError(`${this.name} is not running`);
    const { plan, result } = await execAt(this.host, this.plan, this.pid, args, o);
    if (result.failed) throw setupError(plan, result);
    return result.exitCode;
  }

  /** Its stop_signal, then SIGKILL after `timeout` ms (default: its stop_grace_period), as docker
   * stop; resolves with the exit status once it has ended and its set-up is removed. */
  async stop(o: { timeout?: number } = {}): Promise<number> {
    if (this.exitCode === undefined) {
      const { stopSandbox } = await import('../engine/lifecycle');
      try { await stopSandbox(this.host, this.name, o.timeout); } catch (e) { if (!(e instanceof Error) || !/no sandbox named/.test(e.message)) throw e; }
    }
    return this.wait();
  }

  /** Stops it and removes everything it set up (a detached one's too, as `sandbox down`); with
   * `volumes`, its anonymous volumes. Resolves with the exit status. */
  async down(o: { timeout?: number; volumes?: boolean } = {}): Promise<number> {
    const code = await this.stop(o);
    const { downSandbox, removeAnonymousVolumes } = await import('../engine/lifecycle');
    if (this.detached) await downSandbox(this.host, this.name, o.timeout, undefined, { volumes: o.volumes ? 'anonymous' : false }).catch(() => undefined);
    else if (o.volumes) removeAnonymousVolumes(this.host, this.plan);
    for (const s of [this.stdin, this.stdout, this.stderr]) s?.destroy();
    return code;
  }
}

/** `sandbox exec`'s (src/cli/lifecycle.ts), which the handle's must not be: the engine's relay (this
 * process's signals go to the command, each said through `onSignal`), a terminal made in the
 * sandbox's devpts (-t) and this stdin (-i), `beforeExec` (a reduced-mode exec's session is
 * recorded there, so that down ends it) and the test-only pause. @internal */
export type CliExec = Pick<ExecEngineOptions, 'beforeExec' | 'pauseAt' | 'onSignal'> & { tty: boolean; stdin: boolean };

/** Runs one more command in the sandbox whose PID 1 is `pid`, in this process: the handle's exec
 * (the library's: its caller's signals left alone, the command waited for by the reaper, no
 * terminal and no stdin), or with `cli` `sandbox exec`'s. Resolves with the exec's plan and the
 * engine's result, a failed step's too (the caller says it in its own words). @internal */
export async function execAt(host: HostFeatures, plan: Plan, pid: number, args: string[], o: { env?: string[]; user?: string; cwd?: string }, cli?: CliExec): Promise<{ plan: Plan; result: RunResult }> {
  const exec = compileExec(plan, { pid, args, env: o.env ?? [], user: o.user, cwd: o.cwd, tty: cli?.tty ?? false, stdin: cli?.stdin ?? false });
  const engine = await nativeEngine();
  const where = { host, etc: `/proc/${pid}/root/etc` };
  const result = await engine.exec(exec, () => undefined, cli ? { ...where, beforeExec: cli.beforeExec, pauseAt: cli.pauseAt, onSignal: cli.onSignal } : { ...where, library: true });
  return { plan: exec, result };
}

/** `sandbox exec NAME`: execAt in the sandbox of that name (any: detached, or another process's),
 * with the plan its `up` saved. A sandbox with a restart policy changes its PID 1 between runs:
 * the one its state named may end while this joins its namespaces (ENOENT/ESRCH before anything
 * ran inside); then the state is read again and the next run is joined, waiting between runs as
 * long as a restart delay lasts rather than fail. In reduced mode the command leads a session out
 * of the sandbox's, recorded in its state before it runs, so that down ends it. @internal */
export async function execNamed(name: string, args: string[], o: { env?: string[]; user?: string; cwd?: string }, cli: CliExec): Promise<{ plan: Plan; result: RunResult }> {
  const { findSandbox, recordExec, savedRun } = await import('../engine/lifecycle');
  const host = (await import('../engine/probe')).probeHost();
  const deadline = Date.now() + 15_000;
  for (let tried = -1; ;) {
    let row;
    try { row = findSandbox(host, name); } catch (e) { throw lifecycleError(e); }
    if (!row.running || !row.state) throw new NotFoundError(MSG.notRunning(name));
    const pid = row.state.pid;
    if (pid === tried || !existsSync(`/proc/${pid}`)) {
      if (Date.now() > deadline) throw new SandboxError(MSG.restarting(name), 1);
      await sleep(50);
      continue;
    }
    const plan = savedRun(host, name)?.plan;
    if (!plan) throw new SandboxError(MSG.noPlan(name), 1);
    const reduced = !!plan.reduced;
    const r = await execAt(host, plan, pid, args, o, { ...cli, beforeExec: async (p) => { if (reduced) recordExec(host, name, p); await cli.beforeExec?.(p); } });
    const at = r.result.failed && r.plan.steps.find((s) => s.id === r.result.failed!.step);
    const gone = at && (at.kind === 'ns.enter' || at.kind === 'cgroup.attach') && (r.result.failed!.errno === 2 || r.result.failed!.errno === 3);
    if (!gone || existsSync(`/proc/${pid}`)) return r;
    tried = pid;
  }
}

/** The engine lifecycle's error (its `code` the CLI's exit status) as the library's: NotFoundError
 * for 1 (no sandbox of that name), else SandboxError with that status. @internal */
export function lifecycleError(e: unknown): unknown {
  const code = (e as { code?: unknown }).code;
  return e instanceof Error && typeof code === 'number' ? (code === 1 ? new NotFoundError(e.message) : new SandboxError(e.message, code)) : e;
}

/** A run's failure as the error up() rejects with: the step, its errno, and its config line. */
export function setupError(plan: Plan, r: RunResult): SandboxError {
  const f = r.failed!;
  if (f.errno === 125 && /aborted by its AbortSignal/.test(f.message)) return new AbortError(f.message);
  const step = plan.steps.find((s) => s.id === f.step);
  return new SetupError(f.step, f.errno, f.message, step?.source, r.exitCode);
}

/** The CLI's run (src/cli/main.ts `start`, for `up` and `run`), which the library's must not be:
 * the engine's CLI mode, in which the process's signals are relayed to the sandbox, the command
 * has the terminal, and its exit is reaped by a worker thread; with the CLI's hooks (the progress
 * view's end, the egress denial line, a detached --rm's `down`) and its test-only faults.
 * @internal */
export type CliRun = Pick<NativeRunOptions, 'beforeExec' | 'afterCommand' | 'onSignal' | 'onExit' | 'failAt' | 'pauseAt' | 'stallAt' | 'corruptAt'>;

export interface StartOptions {
  /** The library's: the command's stdio (absent: this process's own). */
  stdio?: readonly [StdioMode, StdioMode, StdioMode];
  signal?: AbortSignal;
  onProgress?: (e: EngineEvent) => void;
  /** @internal: the CLI's run. start() then resolves with the handle whether the setup failed or
   * not (a failed one's pid is 0): the CLI says the failure from handle.outcome(). */
  cli?: CliRun;
}

/** The native engine (libsbx, through koffi, loaded once per process); throws when it cannot be
 * loaded, before anything is set up (the CLI says so before its progress view starts). @internal */
export async function nativeEngine(): Promise<NativeEngine> {
  const { NativeEngine } = await import('../engine/native');
  return new NativeEngine();
}

/** The engine's options: the library's (its caller's signals left alone, its stdio and
 * AbortSignal), or the CLI's. */
function runOptions(sb: Sandbox, host: HostFeatures, file: string, o: StartOptions): NativeRunOptions {
  if (o.cli) return { host, file, ...o.cli };
  const stdio = o.stdio ?? ['inherit', 'inherit', 'inherit'];
  return { host, file, library: { stdio, abort: o.signal, onStdio: (s) => { sb.stdin = s.stdin; sb.stdout = s.stdout; sb.stderr = s.stderr; } } };
}

/** Applies the plan and resolves with the handle once the command runs; rejects with SetupError
 * (nothing left: the engine's undo ran) or AbortError. */
export async function start(plan: Plan, host: HostFeatures, file: string, o: StartOptions): Promise<Sandbox> {
  if (o.signal?.aborted) throw new AbortError();
  const engine = await nativeEngine();
  const sb = new Sandbox(plan.name, plan, file, host);
  let running: ((e: { pid: number; attestation?: Verdict[] }) => void) | undefined;
  const started = new Promise<{ pid: number; attestation?: Verdict[] }>((r) => { running = r; });
  const result = engine.run(plan, (e) => {
    sb.emit('progress', e);
    o.onProgress?.(e);
    if (e.type === 'running') running!(e);
  }, runOptions(sb, host, file, o));
  const detached = !!findStep(plan.steps, 'exec')?.args.detach;
  // Whichever comes first: the command runs, or the run ends (a setup failure, or a command
  // that ended before its start was seen).
  const first = await Promise.race([started.then(() => ({})), result.then((r) => ({ r }))]);
  if ('r' in first && first.r.failed && first.r.exitCode !== 137) {
    // The CLI's: the handle of a run that never ran, whose outcome says why.
    if (o.cli) { sb.wire(result, 0, detached, first.r.attestation ?? []); return sb; }
    for (const s of [sb.stdin, sb.stdout, sb.stderr]) s?.destroy();
    throw setupError(plan, first.r);
  }
  const { pid, attestation } = await started;
  sb.wire(result, pid, detached, attestation ?? []);
  // Once it runs, the signal stops it, as child_process.spawn's kills its child.
  const signal = o.signal;
  if (signal) {
    const stop = () => { void sb.stop().catch(() => undefined); };
    signal.addEventListener('abort', stop, { once: true });
    sb.once('exit', () => signal.removeEventListener('abort', stop));
  }
  return sb;
}
