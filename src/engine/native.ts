// The native engine: applies a plan for real. Host steps (state folder, cgroup, id maps, the
// network's host side; engine/host-steps.ts) run here, in the CLI process, as its user (root);
// everything inside the sandbox runs in the child that libsbx clones, which reports each step back
// (engine/events.ts). Each host change is recorded in the sandbox's undo list (host/undo.ts) as it
// is made; a failure anywhere replays that list in reverse, so a failed run leaves nothing behind.
import { closeSync, existsSync, openSync, readlinkSync, rmdirSync, unlinkSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { Store } from '../image/store';
import type { RestartPolicy } from '../model/types';
import type { HostFeatures, Plan, Step, StepOf, Verdict } from '../plan/types';
import { findStep } from '../plan/steps';
import { loadLibSbx, NativeError, type LibSbx } from '../ffi/libsbx';
import { ABI_VERSION } from '../ffi/generated/abi';
import { directLink, initPath, respawnLink, supervisedLink, type ChildLink } from './link';
import { Cgroup } from '../host/cgroup';
import { CLONE, encodeProgram, RESTART, UnsupportedStep, type Program, type ProgramInput } from './ops';
import { cachedFilter } from '../host/seccomp-cache';
import { stopRequested, writePid, writeSaved, writeState } from '../host/state';
import { hostOps } from '../host/teardown';
import { UndoList } from '../host/undo';
import type { Ids } from '../host/users';
import { errnoText, readEvents, type ChildFailure } from './events';
import { attest } from './attest';
import { readHostFacts, readView } from './attest-view';
import { readEgressView } from './egress-view';
import { stopEgress } from '../host/egress';
import { applyHostStep, isHostStep, type HostContext } from './host-steps';
import { checkImageStore, fileSources, overlayOptions, planIds, portHolders, PreflightError, reservePorts, rootEtc } from './preflight';
import { exitStatus, failedStepStatus, Session, type ConsoleSocket } from './session';
import type { SignalNote } from './signals';
import type { Engine, EngineEvent, RunOptions, RunResult, StepError } from './types';

export interface NativeRunOptions extends RunOptions {
  host: HostFeatures;
  /** Called when setup is over and before the command starts: progress output ends here. */
  beforeExec?: () => Promise<void>;
  /** Foreground: called once the command has ended for good and, with egress, sbx-egress has
   * been stopped (so its last denial records are written), before anything of the run is removed:
   * the CLI reads the denials for the line a foreground `up` ends with. */
  afterCommand?: () => void | Promise<void>;
  /** The config file, as shown by `ps`. */
  file?: string;
  /** What became of a signal the CLI passed on (PID 1 cannot get it; the command was killed). */
  onSignal?: (n: SignalNote) => void;
  /** Test-only: freeze the CLI when this step starts (see SANDBOX_TEST_STALL_AT). */
  stallAt?: string;
  /** Test-only: apply this step wrongly, so that the attestation must catch it (SANDBOX_TEST_CORRUPT). */
  corruptAt?: string;
  /** Detached only: what the supervisor runs once the command has ended for good (the CLI's
   * `down` of run -d --rm); the engine passes it on as it is. */
  onExit?: string[];
  /** sandbox-runtime create: the child waits on this fifo before its exec (SBX_F_WAIT_START), and
   * run() returns once it waits, leaving everything set up, as a detached sandbox: the child is
   * then this process's only, and the caller's subreaper's once this process exits. */
  startFifo?: string;
  /** Run by the library (src/api) inside someone else's process: the process's signals are left
   * alone (the caller's own), the command is waited for by the reaper (many at once), and its
   * stdio and an AbortSignal are the caller's. */
  library?: LibraryRun;
  /** sandbox-runtime's --console-socket: the terminal's master (process.terminal) goes there. */
  consoleSocket?: ConsoleSocket;
}

/** Each of the command's stdio: the process's own (as the CLI's), a pipe to the caller, or /dev/null. */
export type StdioMode = 'inherit' | 'pipe' | 'ignore';
export interface StdioStreams { stdin?: Writable; stdout?: Readable; stderr?: Readable }
export interface LibraryRun {
  stdio: readonly [StdioMode, StdioMode, StdioMode];
  /** The caller's ends of the pipes, as soon as they exist (before the child does). */
  onStdio(streams: StdioStreams): void;
  /** Aborted during setup: the setup stops and everything is undone, as on a signal to the CLI. */
  abort?: AbortSignal;
}

/** What `exec` takes: `sandbox exec`'s relay and terminal by default; sandbox-runtime exec's shape with `runtime`. */
export interface ExecOptions {
  host: HostFeatures; etc: string; pauseAt?: string; onSignal?: (n: SignalNote) => void;
  /** Called in the CLI just before the command is exec'd, with the pid of the process this one
   * cloned: the command itself where the plan has no fork (reduced mode), the relay otherwise. */
  beforeExec?: (pid: number) => Promise<void>;
  /** sandbox-runtime exec, as runc's: no relay (the command is this process's own child, and does
   * not die with it); `onPid` hears its host pid once it runs; with `detach` this returns then,
   * leaving it to this process's parent's subreaper; a terminal goes to `consoleSocket`. */
  runtime?: { detach: boolean; onPid: (pid: number) => void; consoleSocket?: ConsoleSocket };
  /** The library's exec (src/api): the process's signals are left to its owner, and the command is waited for by the reaper. */
  library?: boolean;
}

class StepFailure extends Error {
  constructor(readonly step: Step, readonly errno: number, message: string, readonly exitCode?: number) { super(message); }
}

/** A host step's error as an errno and words: a failed system call names its path. */
function hostError(e: unknown): { errno: number; message: string } {
  const code = (e as NodeJS.ErrnoException).code;
  const errno = typeof code === 'string' ? (constants.errno as Record<string, number>)[code] ?? 5 : 5;
  const path = (e as NodeJS.ErrnoException).path;
  return { errno, message: typeof code === 'string' && code.startsWith('E') ? `${errnoText(errno)}${path ? `: ${path}` : ''}` : (e as Error).message };
}

/** A seccomp filter's BPF: from the cache, or compiled by libseccomp (and then cached). */
function seccompFilter(lib: LibSbx, program: string): Buffer {
  return cachedFilter(program, `libsbx ${ABI_VERSION} libseccomp ${lib.seccompVersion()}`, (p) => lib.seccompCompile(p));
}

/** The child's program, for `run` and `exec`: what cannot be encoded fails its own step (an
 * unsupported step, a seccomp filter libseccomp refuses) before anything is set up. */
function encode(input: ProgramInput): Program {
  try { return encodeProgram(input); } catch (e) {
    if (e instanceof UnsupportedStep) throw new StepFailure(e.step, 95, e.message);
    const sc = findStep(input.plan.steps, 'seccomp');
    if (sc && e instanceof NativeError) throw new StepFailure(sc, e.errno, e.message);
    throw e;
  }
}

/** The host's names of a private network (the veth pair's host end, the nftables table), as the
 * plan records them in the undo of its net.veth and net.nat steps; '' where it has none. */
function networkNames(plan: Plan): { veth: string; table: string } {
  const v = findStep(plan.steps, 'net.veth')?.undo;
  const n = findStep(plan.steps, 'net.nat')?.undo;
  return { veth: v?.kind === 'net.veth.remove' ? v.args.interface ?? '' : '', table: n?.kind === 'net.nat.remove' ? n.args.table ?? '' : '' };
}

/** A preflight refusal as the failure of the step it concerns. */
function asStepFailure(e: unknown): never {
  if (e instanceof PreflightError) throw new StepFailure(e.step, e.errno, e.message);
  throw e;
}

export class NativeEngine implements Engine {
  readonly name = 'native';
  private readonly lib: LibSbx;
  constructor() { this.lib = loadLibSbx(); }

  async run(plan: Plan, report: (e: EngineEvent) => void, opts: NativeRunOptions): Promise<RunResult> {
    const run = new NativeRun(this.lib, plan, report, opts);
    try { return await run.execute(); } catch (e) {
      if (!(e instanceof StepFailure)) throw e;
      return run.failed(e);
    } finally {
      await run.cleanup();
    }
  }

  /** sandbox-runtime create's start fifo (opts.startFifo of run), owner-only; in this process
   * (Node has no mkfifo, and a spawn of mkfifo costs ~10 ms of the event loop). */
  makeFifo(path: string): void { this.lib.mkfifo(path, 0o600); }

  /** The exit status (docker run's convention) of a child of this process that a run left
   * running: sandbox-runtime run's container, started by this process's own create. */
  async waitPid(pid: number): Promise<number> { return exitStatus(await this.lib.wait(pid)); }

  /**
   * `sandbox exec`: runs a plan made by compileExec (plan/exec.ts) against a running sandbox. No
   * host state is made: the new process joins the sandbox's cgroup (born in it on v2, moved on
   * v1) and namespaces, and forks into its pid namespace; the CLI waits for it like `up` does.
   */
  async exec(plan: Plan, onEvent: (e: EngineEvent) => void, opts: ExecOptions): Promise<RunResult> {
    const session = new Session(this.lib);
    const rt = opts.runtime;
    if (rt?.consoleSocket) session.sendTerminalTo(rt.consoleSocket);
    let link: ChildLink | undefined;
    let failure: ChildFailure | undefined;
    /** sandbox-runtime: the command's host pid, which the process that forked it reports. */
    let forked = 0;
    const exec = findStep(plan.steps, 'exec')!;
    const fail = (s: Step, errno: number, message: string): RunResult => {
      const err: StepError = { step: s.id, errno, message };
      onEvent({ type: 'step', id: s.id, phase: 'failed', error: err });
      return { exitCode: failedStepStatus(s, errno), failed: err };
    };
    const killForked = () => { if (forked) try { process.kill(forked, 'SIGKILL'); } catch { /* gone */ } };
    try {
      let program;
      try {
        const ids = planIds(plan, opts.etc);
        program = encode({ plan, rootDir: '/', uid: ids.uid, gid: ids.gid, groups: ids.groups, fileSources: new Set(), tty: false, pauseAt: opts.pauseAt, compileSeccomp: (p) => seccompFilter(this.lib, p), forkParent: !!rt });
      } catch (e) {
        if (e instanceof StepFailure || e instanceof PreflightError) return fail(e.step, e.errno, e.message);
        throw e;
      }
      const cgStep = findStep(plan.steps, 'cgroup.attach');
      const cgroup = cgStep ? new Cgroup({ ...opts.host.cgroup, controllers: cgStep.args.controllers ?? opts.host.cgroup.controllers }, cgStep.args.path) : undefined;
      const cgroupFd = cgroup ? cgroup.openForClone() : -1;
      try { link = directLink(this.lib, program, cgroupFd, !!opts.library); } catch (e) { return fail(plan.steps[0]!, (e as NativeError).errno ?? 5, (e as Error).message); } finally { if (cgroupFd >= 0) closeSync(cgroupFd); }
      const child = link;
      // The relay passes each signal on to the command (not a PID 1: it gets them all); without a
      // relay, this process does, once the command's pid is known. Not in the library, whose
      // process's signals are its owner's.
      if (!opts.library) session.onSignals(() => undefined);
      if (!rt) session.forwardTo({ pid: child.pid, pid1: false, graceMs: exec.args.stopGraceMs ?? 10_000, note: opts.onSignal ?? (() => undefined) });
      if (cgStep && cgroup) {
        onEvent({ type: 'step', id: cgStep.id, phase: 'start' });
        if (!child.inCgroup) {
          try { cgroup.attach(child.pid); } catch (e) { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } await child.wait().catch(() => 0); return fail(cgStep, 2, `the sandbox's cgroup cannot be joined: ${(e as Error).message}; is it still running?`); }
        }
        onEvent({ type: 'step', id: cgStep.id, phase: 'done' });
      }
      const eof = readEvents(child, plan, {
        onEvent, onFail: (f) => { failure = f; killForked(); }, onConsole: () => session.receiveTerminal(child),
        onForked: (pid) => { forked = pid; if (failure) killForked(); },
        onExecStart: async () => { if (failure) { killForked(); return; } await opts.beforeExec?.(child.pid); child.send('E'); },
      });
      child.send('G');
      await eof;
      child.close();
      if (rt) await child.wait().catch(() => 0); // the process that forked, which has exited
      if (failure) {
        if (rt) { killForked(); if (forked) await this.lib.wait(forked).catch(() => 0); } else await child.wait().catch(() => 0);
        return fail(plan.steps[failure.index] ?? exec, failure.errno, failure.message);
      }
      if (rt && !forked) return fail(exec, 3, 'the command\'s process was not reported; it did not start');
      onEvent({ type: 'running', pid: forked || child.pid });
      onEvent({ type: 'step', id: exec.id, phase: 'done' });
      if (!rt) {
        session.wireTerminal(exec.args.stdin);
        return { exitCode: await session.waitCommand(child) };
      }
      rt.onPid(forked);
      if (rt.detach) return { exitCode: 0, detached: true };
      session.forwardTo({ pid: forked, pid1: false, graceMs: exec.args.stopGraceMs ?? 10_000, note: opts.onSignal ?? (() => undefined) });
      if (!rt.consoleSocket) session.wireTerminal(exec.args.stdin);
      return { exitCode: await session.waitCommand({ ...child, pid: forked, wait: () => this.lib.wait(forked) }) };
    } finally {
      session.close();
      link?.close();
    }
  }
}

/** The pid namespace of a process (its /proc/PID/ns/pid link), or undefined once it is gone. */
function pidNamespace(pid: number): string | undefined {
  try { return readlinkSync(`/proc/${pid}/ns/pid`); } catch { return undefined; }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a restart says on stderr (the log, when detached, where sbx-supervise writes the same words). */
export function restartLine(code: number, n: number, max: number, delayMs: number): string {
  return `sandbox: the command exited with code ${code}; restart ${n}${max ? ` of ${max}` : ''} in ${delayMs} ms`;
}

/** Milliseconds on the monotonic clock. The `performance` global would load perf_hooks (2-3 ms of
 * every start); process.hrtime is there already. */
const msNow = () => Number(process.hrtime.bigint()) / 1e6;

/** f, remembering its result for each argument (the seccomp filter is compiled once per run). */
function once<A, R>(f: (a: A) => R): (a: A) => R {
  const seen = new Map<A, R>();
  return (a) => { if (!seen.has(a)) seen.set(a, f(a)); return seen.get(a)!; };
}

/**
 * One `up` of a plan in the CLI process, phase by phase: what is refused before the host is
 * touched, the host steps, the clone, the child's steps and the attestation, the record of the
 * running sandbox, the foreground wait with its restart policy, and the undo of it all. A failure
 * in any phase is a StepFailure; cleanup() then replays the undo list (host/undo.ts).
 */
class NativeRun {
  /** What was applied, with each step's time, kept beside the plan for `sandbox inspect`. A step
   * of several ops reports done once per op: their times add up. */
  private readonly applied = new Map<string, number>();
  private readonly ctx: HostContext;
  private readonly session: Session;
  private readonly exec: StepOf<'exec'>;
  private readonly restart: RestartPolicy;
  private readonly image: ReturnType<typeof overlayOptions>;
  private readonly t0 = process.hrtime.bigint();
  private link?: ChildLink;
  /** The command runs (setup is over): signals go to it, and a detached sandbox stays as it is. */
  private running = false;
  /** A signal to the CLI once the command runs ends the restart policy, as docker stop does. */
  private stopSignalled = false;
  /** A signal during setup: it stops the setup, and everything is undone. */
  private pendingSignal?: NodeJS.Signals;
  /** The library's AbortSignal during setup: the same. */
  private aborted = false;
  private readonly onAbort = () => { if (this.running) return; this.aborted = true; if (this.link) { try { process.kill(this.link.pid, 'SIGKILL'); } catch { /* gone */ } } };
  /** The child's ends of the library's stdio (-1: the process's own), closed here once it has them. */
  private childStdio?: [number, number, number];
  /** Foreground with a restart policy: the child's user and network namespaces, held open. */
  private readonly held = { user: -1, net: -1 };
  private ids!: Ids;
  private program!: Program;
  /** The first run's program, with the leased address; the program a restart replays. */
  private encodeFirst!: () => Program;
  private encodeRestart!: () => Program;
  private seccompCompileMs = 0;
  private attestation: Verdict[] = [];
  private attestMs = 0;
  private execNs = 0n;

  constructor(private readonly lib: LibSbx, private readonly plan: Plan, private readonly report: (e: EngineEvent) => void, private readonly opts: NativeRunOptions) {
    const host = opts.host;
    this.exec = findStep(plan.steps, 'exec')!;
    this.restart = this.exec.args.restart ?? { policy: 'no', max: 0 };
    const state = findStep(plan.steps, 'state.create')!.args.path;
    // A rootless sandbox without a delegated cgroup has none: the empty path stands for it.
    const cgStep = findStep(plan.steps, 'cgroup.create');
    const store = new Store();
    this.image = overlayOptions(plan, store, host);
    this.ctx = {
      plan, host, lib, state, rootDir: join(state, 'root'), store,
      // The hierarchies the plan joins (all of them on v2).
      cgroup: new Cgroup({ ...host.cgroup, controllers: cgStep?.args.controllers ?? [] }, cgStep?.args.path ?? ''),
      container: this.image.container, layers: this.image.layers, imageReadOnly: this.image.readOnly,
      undo: new UndoList(), ports: [], corruptAt: opts.corruptAt,
      names: networkNames(plan),
    };
    this.session = new Session(lib);
    opts.library?.abort?.addEventListener('abort', this.onAbort, { once: true });
    if (opts.consoleSocket) this.session.sendTerminalTo(opts.consoleSocket);
    // From the start: a signal during setup stops it (and everything is undone); once the command
    // runs, signals are forwarded to it (by the session, with the grace period, in the foreground).
    // Not in the library: the process's signals are its owner's.
    if (!opts.library) this.session.onSignals((sig) => {
      if (this.running && this.link) { this.stopSignalled = true; try { process.kill(this.link.pid, sig); } catch { /* gone */ } return; }
      this.pendingSignal ??= sig;
      if (this.link) { try { process.kill(this.link.pid, 'SIGKILL'); } catch { /* gone */ } }
    });
  }

  async execute(): Promise<RunResult> {
    const { opts } = this;
    this.refuseEarly();
    // Published host ports are taken first: a port in use is an error before anything is set up.
    try { this.ctx.ports = await reservePorts(this.plan, this.ctx.undo, (s) => this.started(s), portHolders(this.opts.host, this.plan)); } catch (e) { asStepFailure(e); }
    // 1-2. rootfs and cgroup, on the host.
    await this.hostSteps(['rootfs', 'cgroup']);
    // 3. namespaces: the clone creates them; the child is held until the parent says go.
    const child = await this.clone();
    this.holdNamespaces(child);
    // 3-5. what the clone made, the cgroup and id maps before the child may go on, the network's host side.
    await this.hostSteps(['namespaces', 'attach', 'network']);
    // 5-9. the child runs its ops and reports each one; the attestation reads them back.
    await this.childSteps(child);
    this.running = true;
    this.ctx.undo.commandRuns();
    this.record(child);
    const timing = this.timing(child);
    if (this.exec.args.detach || opts.startFifo) {
      // The supervisor is the sandbox's parent now (sandbox-runtime create: the caller's subreaper,
      // once this process exits); what was set up stays until `sandbox down` (or `delete`), and
      // its live processes, not this CLI, say that it runs.
      unlinkSync(join(this.ctx.state, 'owner'));
      this.onEvent({ type: 'running', pid: child.pid, attestation: this.attestation });
      this.done(this.exec);
      return { exitCode: 0, timing, detached: true, attestation: this.attestation, supervisorExit: child.supervisorPid ? () => child.wait() : undefined };
    }
    this.onEvent({ type: 'running', pid: child.pid, attestation: this.attestation });
    this.done(this.exec);
    const code = await this.foreground(child);
    const oom = this.oomError(code);
    return { exitCode: code, timing, attestation: this.attestation, ...(oom ? { failed: oom } : {}) };
  }

  private onEvent(e: EngineEvent): void {
    if (e.type === 'step' && e.phase === 'done') this.applied.set(e.id, (this.applied.get(e.id) ?? 0) + (e.ms ?? 0));
    this.report(e);
    // Test-only: freeze this process as the step starts, for a test to kill -9 it right there.
    if (this.opts.stallAt && e.type === 'step' && e.phase === 'start' && e.id === this.opts.stallAt) {
      writeSync(2, `sandbox: stalled at ${e.id} (SANDBOX_TEST_STALL_AT)\n`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    }
  }
  private started(s: Step): void { this.onEvent({ type: 'step', id: s.id, phase: 'start' }); }
  private done(s: Step, ms?: number): void { this.onEvent({ type: 'step', id: s.id, phase: 'done', ms }); }
  private interrupted(s: Step): void {
    if (this.aborted) throw new StepFailure(s, constants.errno.ECANCELED, 'the start was aborted by its AbortSignal; nothing was left behind', 125);
    const sig = this.pendingSignal;
    if (sig) throw new StepFailure(s, 4, `interrupted by ${sig}; nothing was left behind`, 128 + constants.signals[sig]);
  }

  /** Everything that can be refused without touching the host: the ids, the bind sources, the
   * image store, and the child's program (encoded here with a placeholder address for a private
   * network, so that anything unsupported is refused now). */
  private refuseEarly(): void {
    const { plan, opts, ctx } = this;
    let files: Set<string>;
    try {
      this.ids = planIds(plan, rootEtc(plan));
      files = fileSources(plan);
      checkImageStore(plan, ctx.store, opts.host, (p, n, v) => this.lib.lsetxattr(p, n, v));
    } catch (e) { asStepFailure(e); }
    ctx.ids = this.ids;
    ctx.fileSources = files;
    const compileSeccomp = once((p: string) => { const t = msNow(); const b = seccompFilter(this.lib, p); this.seccompCompileMs += msNow() - t; return b; });
    const init = this.exec.args.init ? initPath() : undefined;
    const stdio = this.openStdio();
    const base = { stdio, plan, rootDir: ctx.rootDir, uid: this.ids.uid, gid: this.ids.gid, groups: this.ids.groups, fileSources: files, tty: this.exec.args.tty, overlay: this.image.options, compileSeccomp, init, startFifo: opts.startFifo };
    const first = (address?: string) => encode({ ...base, failAt: opts.failAt, pauseAt: opts.pauseAt, corruptAt: opts.corruptAt, address });
    // A restart replays the program the first run was attested with, less the network's own
    // steps, which persist in the held network namespace (and without the test-only faults).
    this.encodeRestart = () => encode({ ...base, address: ctx.address, restart: true });
    const privateNet = findStep(plan.steps, 'net.veth');
    this.program = first(privateNet ? '0.0.0.0' : undefined);
    // The real address, once state.create has leased it (before the clone).
    this.encodeFirst = () => (privateNet ? first(ctx.address) : this.program);
  }

  /** The host steps of these stages, in plan order; each failure names its step. */
  private async hostSteps(stages: readonly Step['stage'][]): Promise<void> {
    for (const s of this.plan.steps) {
      if (!stages.includes(s.stage) || !isHostStep(s)) continue;
      this.interrupted(s);
      this.started(s);
      const t0 = msNow();
      if (this.opts.failAt === s.id) throw new StepFailure(s, 1, `${errnoText(1)} (injected)`);
      try { await applyHostStep(this.ctx, s); } catch (e) {
        if (e instanceof StepFailure) throw e;
        const { errno, message } = hostError(e);
        throw new StepFailure(s, errno, message);
      }
      this.done(s, msNow() - t0);
    }
  }

  /** The clone: directly (foreground), or by sbx-supervise (detached), which then runs the restart
   * policy and deletes the port maps' table when the command ends for good. */
  private async clone(): Promise<ChildLink> {
    const { plan, ctx, opts } = this;
    this.program = this.encodeFirst();
    const detach = this.exec.args.detach;
    const cgroupFd = detach ? -1 : ctx.cgroup.openForClone();
    const policy = RESTART[this.restart.policy];
    try {
      // A rootless network has no table (its tool ends with the supervisor, whom its watcher watches).
      const wall = findStep(plan.steps, 'net.egress.wall');
      const tables = !opts.host.rootless && findStep(plan.steps, 'net.nat') ? [`ip ${ctx.names.table}`, ...(wall ? [`inet ${wall.args.table}`] : [])] : [];
      this.link = detach
        ? await supervisedLink(this.program, ctx.state, ctx.cgroup.v2Dir(), { policy, max: this.restart.max, program: policy ? this.encodeRestart() : undefined, procs: ctx.cgroup.procsFiles(), tables, holds: (ctx.ports ?? []).filter((p) => p.step.args.path === 'kernel').map((p) => p.hold.fd), onExit: opts.onExit })
        : directLink(this.lib, this.program, cgroupFd, !!opts.library);
    } catch (e) {
      // The clone makes the namespaces; a reduced plan has none, and then its failure is exec's.
      const ns = plan.steps.find((s) => s.stage === 'namespaces') ?? this.exec;
      this.started(ns);
      throw new StepFailure(ns, (e as NativeError).errno ?? 5, (e as Error).message);
    } finally {
      if (cgroupFd >= 0) closeSync(cgroupFd);
      // A restart dups them again (the same program): they stay until the run ends.
      if (!RESTART[this.restart.policy]) this.closeChildStdio();
    }
    const child = this.link;
    ctx.child = { pid: child.pid, bornInCgroup: child.inCgroup, holder: child.supervisorPid ?? process.pid };
    return child;
  }

  /** Foreground with a restart policy: this CLI holds the child's user and network namespaces
   * open (before "G": the child is still dumpable and waits), so that a restart finds its id maps,
   * address, veth and port maps there (sbx_respawn). Detached, the supervisor does. The child (and
   * its supervisor) are killed by the undo: a setup that fails ends them. */
  private holdNamespaces(child: ChildLink): void {
    const { held } = this;
    if (!this.exec.args.detach && RESTART[this.restart.policy]) {
      if (this.program.cloneFlags & BigInt(CLONE.NEWUSER)) held.user = openSync(`/proc/${child.pid}/ns/user`, 'r');
      if (this.program.cloneFlags & BigInt(CLONE.NEWNET)) held.net = openSync(`/proc/${child.pid}/ns/net`, 'r');
      this.ctx.undo.local(() => { for (const fd of [held.user, held.net]) if (fd >= 0) try { closeSync(fd); } catch { /* closed */ } });
    }
    this.ctx.undo.local(() => { try { process.kill(child.supervisorPid ?? child.pid, 'SIGKILL'); } catch { /* gone */ } try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } });
  }

  /** The child's steps, each reported as it goes; before its command starts, every step is read
   * back from /proc (the attestation), and a mismatch ends the child there. */
  private async childSteps(child: ChildLink): Promise<void> {
    const { plan } = this;
    let failure: ChildFailure | undefined;
    const eofSeen = readEvents(child, plan, {
      onEvent: (e) => this.onEvent(e), onFail: (f) => { failure = f; }, onConsole: () => this.session.receiveTerminal(child),
      onExecStart: async (ns) => {
        this.execNs = ns;
        const mismatch = await this.attest(child);
        // A child that reported a failure of its own while the attestation read it has exited,
        // and /proc no longer shows what it applied: its own report stands.
        if (failure) return;
        failure = mismatch;
        if (failure) { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } return; }
        await this.opts.beforeExec?.();
        child.send('E');
      },
    });
    // A stop that came during the host steps ends the child here, before it is told to go.
    if (this.aborted || this.pendingSignal) { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } } else {
      child.send('G');
      // The child works now and this process waits: the host's side of the attestation meanwhile.
      readHostFacts(plan);
    }
    await eofSeen;
    child.close();
    if (failure || this.pendingSignal || this.aborted) {
      try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
      await child.wait().catch(() => 0);
      const at = failure ? plan.steps[failure.index] ?? this.exec : this.exec;
      this.interrupted(at);
      throw new StepFailure(at, failure!.errno, failure!.message);
    }
  }

  /** The attestation, and the failure of the first step it found not applied (the step that
   * applied a thing before the ones that only name it: cap.keep, cap.drop). */
  private async attest(child: ChildLink): Promise<ChildFailure | undefined> {
    const { plan, ctx } = this;
    const a0 = msNow();
    // Egress: the probes from inside and the tables read back, before the command can run.
    const egress = ctx.egress && findStep(plan.steps, 'net.egress.start') ? await readEgressView(child.pid, plan, ctx.egress, ctx.state, this.lib) : undefined;
    const facts = (want: number, paths: readonly string[]) => this.lib.procFacts(child.pid, want, paths);
    this.attestation = attest(plan, readView(child.pid, plan, { facts, cgroup: (c, f) => ctx.cgroup.read(c, f), cgroupExists: (c) => ctx.cgroup.hasFolder(c), stateDir: ctx.state }), this.ids, egress);
    this.attestMs = msNow() - a0;
    const bad = this.attestation.find((v) => v.verdict === 'mismatch' && !/^cap(-drop)?:/.test(v.step)) ?? this.attestation.find((v) => v.verdict === 'mismatch');
    if (!bad) return undefined;
    const step = plan.steps.find((x) => x.id === bad.step) ?? this.exec;
    return { index: plan.steps.indexOf(step), errno: 1, message: `the attestation found it not applied: ${bad.detail}` };
  }

  /** The running sandbox's record in its state folder: the plan and what was applied (inspect,
   * exec), and state.json (ps, stop, down). */
  private record(child: ChildLink): void {
    const { plan, ctx, exec, opts } = this;
    writeSaved(ctx.state, { plan, applied: [...this.applied].map(([id, ms]) => ({ id, ms: Math.round(ms * 1000) / 1000 })), address: ctx.address ?? null, ids: this.ids, attestation: this.attestation });
    writeState(ctx.state, {
      name: plan.name, pid: child.pid, command: exec.args.args, file: opts.file ?? '', digest: plan.digest,
      startedAt: new Date().toISOString(), ports: ctx.ports.map((p) => p.rule),
      detached: exec.args.detach, supervisorPid: child.supervisorPid, stopSignal: exec.args.stopSignal ?? 15, stopGraceMs: exec.args.stopGraceMs ?? 10_000,
      // Without a cgroup, the processes are tracked by the pid namespace, or (reduced mode, none) by the child's session.
      ...(plan.reduced ? { session: child.pid } : findStep(plan.steps, 'cgroup.create') ? {} : { pidNs: pidNamespace(child.pid) }),
    });
  }

  /** hrtime and the child's CLOCK_MONOTONIC are the same clock on Linux. */
  private timing(child: ChildLink): NonNullable<RunResult['timing']> {
    return {
      setupMs: Number(this.execNs - this.t0) / 1e6, spawnToExecMs: Number(this.execNs - child.spawnNs) / 1e6,
      // What the capability sets and the seccomp filter cost: compiling the filter here, and the
      // child's caps and filter-loading steps, as it timed them.
      seccompCompileMs: this.seccompCompileMs, capsAndFilterMs: (this.applied.get('caps') ?? 0) + (this.applied.get('seccomp') ?? 0), attestMs: this.attestMs,
    };
  }

  /** The command runs: signals go to it, the terminal is wired, and we wait; then its restart policy. */
  private async foreground(child: ChildLink): Promise<number> {
    this.forward(child.pid);
    this.session.wireTerminal(this.exec.args.stdin);
    const code = await this.session.waitCommand(child);
    return RESTART[this.restart.policy] ? this.restarts(code) : code;
  }

  private forward(pid: number): void {
    this.session.forwardTo({ pid, pid1: true, graceMs: this.exec.args.stopGraceMs ?? 10_000, note: this.opts.onSignal ?? (() => undefined) });
  }

  /** The restart policy, from here, outside the sandbox's pid namespace: the command is PID 1 of
   * each run, and each run is a new child in the held namespaces and the same cgroup. */
  private async restarts(first: number): Promise<number> {
    const { restart } = this;
    const again = this.encodeRestart();
    let code = first, n = 0, delay = 100, started = Date.now();
    const stop = () => this.stopSignalled || this.session.signalled || stopRequested(this.ctx.state);
    for (;;) {
      if (stop() || (restart.policy === 'on-failure' && code === 0) || (restart.max > 0 && n >= restart.max)) return code;
      if (Date.now() - started >= 10_000) delay = 100;
      n++;
      writeSync(2, `${restartLine(code, n, restart.max, delay)}\n`);
      for (const until = Date.now() + delay; Date.now() < until && !stop(); ) await sleep(Math.min(50, until - Date.now()));
      if (stop()) return code;
      delay = Math.min(delay * 2, 10_000);
      started = Date.now();
      const next = await this.respawn(again, n, stop);
      if (next.end) return next.code ?? code;
      code = next.code!;
    }
  }

  /** One more run of the command: its setup in the held namespaces, then its wait. `end`: the
   * policy is over (the restart could not be made; or a stop came during its setup, and the last
   * run's status stands: no code). */
  private async respawn(program: Program, n: number, stop: () => boolean): Promise<{ code?: number; end?: boolean }> {
    const { plan, session, ctx } = this;
    let next: ChildLink;
    try { next = respawnLink(this.lib, program, ctx.cgroup.procsFiles(), this.held.user, this.held.net); } catch (e) {
      writeSync(2, `sandbox: the restart failed: ${(e as Error).message}\n`);
      return { code: 125, end: true };
    }
    this.link = next;
    let failed: ChildFailure | undefined;
    const eof = readEvents(next, plan, { onEvent: () => undefined, onFail: (f) => { failed = f; }, onConsole: () => session.receiveTerminal(next), onExecStart: async () => { next.send('E'); } });
    next.send('G');
    await eof;
    next.close();
    if (failed) {
      writeSync(2, `sandbox: the restart failed at ${plan.steps[failed.index]?.id ?? 'a step'}: ${failed.message}\n`);
      return { code: exitStatus(await next.wait().catch(() => 125 << 8)) };
    }
    // A signal or a stop during this run's setup went to the last run: this one ends too.
    if (stop()) { try { process.kill(next.pid, 'SIGKILL'); } catch { /* gone */ } await next.wait().catch(() => 0); return { end: true }; }
    writePid(ctx.state, next.pid, n);
    this.forward(next.pid);
    session.wireTerminal(this.exec.args.stdin);
    return { code: await session.waitCommand(next) };
  }

  /** 137 with an OOM kill counted in the cgroup: the memory limit's step is named. */
  private oomError(code: number): StepError | undefined {
    if (code !== 137 || this.ctx.cgroup.oomKills() <= 0) return undefined;
    const mem = this.plan.steps.find((s) => s.id === 'cgroup:memory');
    return { step: mem?.id ?? 'cgroup', errno: 12, message: `the command was killed by the kernel's OOM killer: it reached its memory limit of ${mem?.kind === 'cgroup.set' ? mem.args.value : '?'} bytes` };
  }

  /** The library's pipes (or /dev/null) for the command's stdio: the caller gets its ends now; the
   * child's are encoded into the exec op by number (SBX_F_STDIO) and closed here once it is cloned. */
  private openStdio(): readonly [number, number, number] | undefined {
    const l = this.opts.library;
    // Detached, sbx-supervise clones the child (these fds are not its) and keeps its output in the log.
    if (!l || l.stdio.every((m) => m === 'inherit') || this.exec.args.detach) return undefined;
    const child: [number, number, number] = [-1, -1, -1];
    this.childStdio = child;
    const streams: StdioStreams = {};
    l.stdio.forEach((mode, i) => {
      if (mode === 'inherit') return;
      if (mode === 'ignore') { child[i] = openSync('/dev/null', i === 0 ? 'r' : 'w'); return; }
      const [r, w] = this.lib.pipe();
      child[i] = i === 0 ? r : w;
      // An error on the caller's end (EPIPE once the command is gone) is not this process's death.
      const end = new Socket({ fd: i === 0 ? w : r, readable: i !== 0, writable: i === 0 }).on('error', () => undefined);
      if (i === 0) streams.stdin = end; else if (i === 1) streams.stdout = end; else streams.stderr = end;
    });
    l.onStdio(streams);
    return child;
  }

  private closeChildStdio(): void {
    const c = this.childStdio;
    if (!c) return;
    for (const fd of c) if (fd >= 0) try { closeSync(fd); } catch { /* closed */ }
    this.childStdio = undefined;
  }

  failed(e: StepFailure): RunResult {
    const err: StepError = { step: e.step.id, errno: e.errno, message: e.message };
    this.onEvent({ type: 'step', id: e.step.id, phase: 'failed', error: err });
    return { exitCode: e.exitCode ?? failedStepStatus(e.step, e.errno), failed: err };
  }

  /** The undo list in reverse: the child first, then the network, the cgroup, the state folder;
   * not for a detached sandbox that runs: that is `sandbox down`'s work, from the recorded list. */
  async cleanup(): Promise<void> {
    this.session.close();
    this.opts.library?.abort?.removeEventListener('abort', this.onAbort);
    this.closeChildStdio();
    if ((this.exec.args.detach || this.opts.startFifo) && this.running) return;
    const { state } = this.ctx;
    if (this.running && this.opts.afterCommand) {
      // sbx-egress writes what it still holds (records coalesced over a second) when it stops;
      // stopping it again by the undo list then finds no record and does nothing.
      if (this.ctx.egress) await stopEgress(state).catch(() => false);
      try { await this.opts.afterCommand(); } catch { /* the summary is the CLI's; the clean-up goes on */ }
    }
    await this.ctx.undo.replay(hostOps(this.opts.host), (step, e) => this.onEvent({ type: 'undo', id: step, ok: false, message: e.message }));
    // A setup stopped before the child's steps never closed its line to the child (the CLI's exit
    // would; a library's process goes on).
    this.link?.close();
    if (existsSync(state) && this.link) { try { rmdirSync(state); } catch { /* reported by gc */ } }
  }
}
