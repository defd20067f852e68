// The native engine: applies a plan for real. Host steps (state folder, cgroup, id maps, the
// network's host side; engine/host-steps.ts) run here, in the CLI process, as its user (root);
// everything inside the sandbox runs in the child that libsbx clones, which reports each step back
// (engine/events.ts). A failure anywhere undoes every earlier host change in reverse, so a failed
// run leaves nothing behind.
import { closeSync, existsSync, openSync, readlinkSync, rmdirSync, unlinkSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { Store } from '../image/store';
import type { HostFeatures, Plan, Step } from '../plan/types';
import { findStep, stepsOf } from '../plan/steps';
import { loadLibSbx, NativeError, type LibSbx } from '../ffi/libsbx';
import { ABI_VERSION } from '../ffi/generated/abi';
import { directLink, initPath, respawnLink, supervisedLink, type ChildLink } from './link';
import { Cgroup } from '../host/cgroup';
import { CLONE, encodeProgram, RESTART, UnsupportedStep, type Program, type ProgramInput } from './ops';
import { cachedFilter } from '../host/seccomp-cache';
import { stopRequested, writePid, writeSaved, writeState } from '../host/state';
import { nftTable } from '../host/network';
import { errnoText, readEvents, type ChildFailure } from './events';
import { attest, readView } from './attest';
import type { Verdict } from '../plan/types';
import { applyHostStep, isHostStep, type HostContext } from './host-steps';
import { checkImageStore, fileSources, overlayOptions, planIds, portHolders, PreflightError, reservePorts, rootEtc } from './preflight';
import { exitStatus, failedStepStatus, Session } from './session';
import type { SignalNote } from './signals';
import type { Engine, EngineEvent, RunOptions, RunResult, StepError } from './types';

export interface NativeRunOptions extends RunOptions {
  host: HostFeatures;
  /** Called when setup is over and before the command starts: progress output ends here. */
  beforeExec?: () => Promise<void>;
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

export class NativeEngine implements Engine {
  readonly name = 'native';
  private readonly lib: LibSbx;
  constructor() { this.lib = loadLibSbx(); }

  /** The child's program, for `run` and `exec`: what cannot be encoded fails its own step (an
   * unsupported step, a seccomp filter libseccomp refuses) before anything is set up. */
  private encode(input: ProgramInput): Program {
    try { return encodeProgram(input); } catch (e) {
      if (e instanceof UnsupportedStep) throw new StepFailure(e.step, 95, e.message);
      const sc = findStep(input.plan.steps, 'seccomp');
      if (sc && e instanceof NativeError) throw new StepFailure(sc, e.errno, e.message);
      throw e;
    }
  }

  /** A seccomp filter's BPF: from the cache, or compiled by libseccomp (and then cached). */
  private filter(program: string): Buffer {
    return cachedFilter(program, `libsbx ${ABI_VERSION} libseccomp ${this.lib.seccompVersion()}`, (p) => this.lib.seccompCompile(p));
  }

  async run(plan: Plan, report: (e: EngineEvent) => void, opts: NativeRunOptions): Promise<RunResult> {
    // What was applied, with each step's time, is kept beside the plan for `sandbox inspect`.
    // A step of several ops reports done once per op: their times add up.
    const applied = new Map<string, number>();
    const onEvent = (e: EngineEvent) => {
      if (e.type === 'step' && e.phase === 'done') applied.set(e.id, (applied.get(e.id) ?? 0) + (e.ms ?? 0));
      report(e);
      // Test-only: freeze this process as the step starts, for a test to kill -9 it right there.
      if (opts.stallAt && e.type === 'step' && e.phase === 'start' && e.id === opts.stallAt) {
        writeSync(2, `sandbox: stalled at ${e.id} (SANDBOX_TEST_STALL_AT)\n`);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
      }
    };
    const host = opts.host;
    const exec = findStep(plan.steps, 'exec')!;
    const stateStep = findStep(plan.steps, 'state.create')!;
    // A rootless sandbox without a delegated cgroup has none: the empty path stands for it.
    const cgStep = findStep(plan.steps, 'cgroup.create');
    const state = stateStep.args.path;
    const store = new Store();
    const image = overlayOptions(plan, store, host);
    const ctx: HostContext = {
      plan, host, lib: this.lib, state, rootDir: join(state, 'root'), store,
      // The hierarchies the plan joins (all of them on v2).
      cgroup: new Cgroup({ ...host.cgroup, controllers: cgStep?.args.controllers ?? [] }, cgStep?.args.path ?? ''),
      container: image.container, layers: image.layers, imageReadOnly: image.readOnly, undo: [], ports: [],
    };
    const session = new Session(this.lib);
    const detach = exec.args.detach;
    const restart = exec.args.restart ?? { policy: 'no' as const, max: 0 };
    let link: ChildLink | undefined;
    // A signal to the CLI once the command runs ends the restart policy, as docker stop does.
    let stopSignalled = false;
    let failure: ChildFailure | undefined;
    let running = false;
    let attestation: Verdict[] = [];
    let attestMs = 0;

    // From the start: a signal during setup stops it (and everything is undone); once the command
    // runs, signals are forwarded to it (by the session, with the grace period, in the foreground).
    let pendingSignal: NodeJS.Signals | undefined;
    session.onSignals((sig) => {
      if (running && link) { stopSignalled = true; try { process.kill(link.pid, sig); } catch { /* gone */ } return; }
      pendingSignal ??= sig;
      if (link) { try { process.kill(link.pid, 'SIGKILL'); } catch { /* gone */ } }
    });
    const interrupted = (s: Step) => {
      if (pendingSignal) throw new StepFailure(s, 4, `interrupted by ${pendingSignal}; nothing was left behind`, 128 + constants.signals[pendingSignal]);
    };
    const started = (s: Step) => onEvent({ type: 'step', id: s.id, phase: 'start' });
    const done = (s: Step, ms?: number) => onEvent({ type: 'step', id: s.id, phase: 'done', ms });
    const hostSteps = async (stages: readonly Step['stage'][]) => {
      for (const s of plan.steps) {
        if (!stages.includes(s.stage) || !isHostStep(s)) continue;
        interrupted(s);
        started(s);
        const t0 = msNow();
        if (opts.failAt === s.id) throw new StepFailure(s, 1, `${errnoText(1)} (injected)`);
        try { await applyHostStep(ctx, s); } catch (e) {
          if (e instanceof StepFailure) throw e;
          const { errno, message } = hostError(e);
          throw new StepFailure(s, errno, message);
        }
        done(s, msNow() - t0);
      }
    };

    const t0 = process.hrtime.bigint();
    try {
      // Everything that can be refused without touching the host is refused first.
      let ids, files;
      try { ids = planIds(plan, rootEtc(plan)); files = fileSources(plan); checkImageStore(plan, store, host, (p, n, v) => this.lib.lsetxattr(p, n, v)); } catch (e) {
        if (e instanceof PreflightError) throw new StepFailure(e.step, e.errno, e.message);
        throw e;
      }
      ctx.ids = ids;
      let seccompCompileMs = 0;
      const compileSeccomp = once((p: string) => { const t = process.hrtime.bigint(); const b = this.filter(p); seccompCompileMs += Number(process.hrtime.bigint() - t) / 1e6; return b; });
      const init = exec.args.init ? initPath() : undefined;
      const encode = (address?: string) => this.encode({ plan, rootDir: ctx.rootDir, uid: ids.uid, gid: ids.gid, groups: ids.groups, fileSources: files, tty: exec.args.tty, failAt: opts.failAt, pauseAt: opts.pauseAt, corruptAt: opts.corruptAt, address, overlay: image.options, compileSeccomp, init });
      // A restart replays the program the first run was attested with, less the network's own
      // steps, which persist in the held network namespace (and without the test-only faults).
      const encodeRestart = () => this.encode({ plan, rootDir: ctx.rootDir, uid: ids.uid, gid: ids.gid, groups: ids.groups, fileSources: files, tty: exec.args.tty, address: ctx.address, overlay: image.options, compileSeccomp, init, restart: true });
      ctx.corruptAt = opts.corruptAt;
      const privateNet = findStep(plan.steps, 'net.veth');
      // Encoded once here (with a placeholder address) so that anything unsupported is refused before the host is touched.
      let program = encode(privateNet ? '0.0.0.0' : undefined);
      // Published host ports are taken first: a port in use is an error before anything is set up.
      try { ctx.ports = await reservePorts(plan, ctx.undo, started, portHolders(host, plan)); } catch (e) {
        if (e instanceof PreflightError) throw new StepFailure(e.step, e.errno, e.message);
        throw e;
      }

      // 1-2. rootfs and cgroup, on the host.
      await hostSteps(['rootfs', 'cgroup']);

      // 3. namespaces: the clone creates them; the child is held until the parent says go.
      if (privateNet) program = encode(ctx.address);
      const cgroupFd = detach ? -1 : ctx.cgroup.openForClone();
      const policy = RESTART[restart.policy];
      try {
        // The supervisor deletes the table of the port maps when the command ends for good; a
        // rootless network has none (its tool ends with the supervisor, whom its watcher watches).
        const table = !host.rootless && findStep(plan.steps, 'net.nat') ? nftTable(plan.name) : '';
        link = detach
          ? await supervisedLink(program, state, ctx.cgroup.v2Dir(), { policy, max: restart.max, program: policy ? encodeRestart() : undefined, procs: ctx.cgroup.procsFiles(), table, onExit: opts.onExit })
          : directLink(this.lib, program, cgroupFd);
      } catch (e) {
        const ns = plan.steps.find((s) => s.stage === 'namespaces')!;
        started(ns);
        throw new StepFailure(ns, (e as NativeError).errno ?? 5, (e as Error).message);
      } finally {
        if (cgroupFd >= 0) closeSync(cgroupFd);
      }
      const child = link;
      ctx.child = { pid: child.pid, bornInCgroup: child.inCgroup, holder: child.supervisorPid ?? process.pid };
      // Foreground with a restart policy: this CLI holds the child's user and network namespaces
      // open (before "G": the child is still dumpable and waits), so that a restart finds its id
      // maps, address, veth and port maps there (sbx_respawn). Detached, the supervisor does.
      const held = { user: -1, net: -1 };
      if (!detach && policy) {
        if (program.cloneFlags & BigInt(CLONE.NEWUSER)) held.user = openSync(`/proc/${child.pid}/ns/user`, 'r');
        if (program.cloneFlags & BigInt(CLONE.NEWNET)) held.net = openSync(`/proc/${child.pid}/ns/net`, 'r');
        ctx.undo.push(() => { for (const fd of [held.user, held.net]) if (fd >= 0) try { closeSync(fd); } catch { /* closed */ } });
      }
      ctx.undo.push(() => { try { process.kill(child.supervisorPid ?? child.pid, 'SIGKILL'); } catch { /* gone */ } try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } });

      // 3-5. what the clone made, the cgroup and id maps before the child may go on, the network's host side.
      await hostSteps(['namespaces', 'attach', 'network']);

      // 5-9. the child runs its ops and reports each one.
      let execNs = 0n;
      const eofSeen = readEvents(child, plan, {
        onEvent, onFail: (f) => { failure = f; }, onConsole: () => session.receiveTerminal(child),
        onExecStart: async (ns) => {
          execNs = ns;
          // Every step read back from /proc before the command starts; a mismatch ends the child here.
          const a0 = msNow();
          attestation = attest(plan, readView(child.pid, { cgroup: (c, f) => ctx.cgroup.read(c, f), stateDir: state }), ids);
          attestMs = msNow() - a0;
          // The step that applied a thing before the ones that only name it (cap.keep, cap.drop).
          const bad = attestation.find((v) => v.verdict === 'mismatch' && !/^cap(-drop)?:/.test(v.step)) ?? attestation.find((v) => v.verdict === 'mismatch');
          if (bad) {
            const step = plan.steps.find((x) => x.id === bad.step) ?? exec;
            failure = { index: plan.steps.indexOf(step), errno: 1, message: `the attestation found it not applied: ${bad.detail}` };
            try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
            return;
          }
          await opts.beforeExec?.();
          child.send('E');
        },
      });
      child.send('G');
      await eofSeen;
      child.close();

      if (failure || pendingSignal) {
        try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
        await child.wait().catch(() => 0);
        const at = failure ? plan.steps[failure.index] ?? exec : exec;
        interrupted(at);
        throw new StepFailure(at, failure!.errno, failure!.message);
      }
      running = true;
      ctx.commandRan = true;
      writeSaved(state, { plan, applied: [...applied].map(([id, ms]) => ({ id, ms: Math.round(ms * 1000) / 1000 })), address: ctx.address ?? null, ids, attestation });
      writeState(state, {
        name: plan.name, pid: child.pid, command: exec.args.args, file: opts.file ?? '', digest: plan.digest,
        startedAt: new Date().toISOString(), ports: ctx.ports.map((p) => p.rule),
        detached: detach, supervisorPid: child.supervisorPid, stopSignal: exec.args.stopSignal ?? 15, stopGraceMs: exec.args.stopGraceMs ?? 10_000,
        ...(cgStep ? {} : { pidNs: pidNamespace(child.pid) }),
      });
      // hrtime and the child's CLOCK_MONOTONIC are the same clock on Linux.
      const timing = {
        setupMs: Number(execNs - t0) / 1e6, spawnToExecMs: Number(execNs - child.spawnNs) / 1e6,
        // What the capability sets and the seccomp filter cost: compiling the filter here, and the
        // child's caps and filter-loading steps, as it timed them.
        seccompCompileMs, capsAndFilterMs: (applied.get('caps') ?? 0) + (applied.get('seccomp') ?? 0), attestMs,
      };
      if (detach) {
        // The supervisor is the sandbox's parent now; what was set up stays until `sandbox down`,
        // and its live processes, not this CLI, say that it runs.
        unlinkSync(join(state, 'owner'));
        onEvent({ type: 'running', pid: child.pid });
        done(exec);
        return { exitCode: 0, timing, detached: true, attestation };
      }
      onEvent({ type: 'running', pid: child.pid });
      done(exec);

      // The command runs: signals go to it, the terminal is wired, and we wait.
      const forward = (pid: number) => session.forwardTo({ pid, pid1: true, graceMs: exec.args.stopGraceMs ?? 10_000, note: opts.onSignal ?? (() => undefined) });
      forward(child.pid);
      session.wireTerminal(exec.args.stdin);
      let code = await session.waitCommand(child);
      // The restart policy, from here, outside the sandbox's pid namespace: the command is PID 1
      // of each run, and each run is a new child in the held namespaces and the same cgroup.
      if (policy) {
        const again = encodeRestart();
        let restarts = 0, delay = 100, started = Date.now();
        const stop = () => stopSignalled || session.signalled || stopRequested(state);
        for (;;) {
          if (stop() || (restart.policy === 'on-failure' && code === 0) || (restart.max > 0 && restarts >= restart.max)) break;
          if (Date.now() - started >= 10_000) delay = 100;
          restarts++;
          writeSync(2, `${restartLine(code, restarts, restart.max, delay)}\n`);
          for (const until = Date.now() + delay; Date.now() < until && !stop(); ) await sleep(Math.min(50, until - Date.now()));
          if (stop()) break;
          delay = Math.min(delay * 2, 10_000);
          started = Date.now();
          let next: ChildLink;
          try { next = respawnLink(this.lib, again, ctx.cgroup.procsFiles(), held.user, held.net); } catch (e) {
            writeSync(2, `sandbox: the restart failed: ${(e as Error).message}\n`);
            code = 125;
            break;
          }
          link = next;
          let failed: ChildFailure | undefined;
          const eof = readEvents(next, plan, { onEvent: () => undefined, onFail: (f) => { failed = f; }, onConsole: () => session.receiveTerminal(next), onExecStart: async () => { next.send('E'); } });
          next.send('G');
          await eof;
          next.close();
          if (failed) {
            writeSync(2, `sandbox: the restart failed at ${plan.steps[failed.index]?.id ?? 'a step'}: ${failed.message}\n`);
            code = exitStatus(await next.wait().catch(() => 125 << 8));
            continue;
          }
          // A signal or a stop during this run's setup went to the last run: this one ends too.
          if (stop()) { try { process.kill(next.pid, 'SIGKILL'); } catch { /* gone */ } await next.wait().catch(() => 0); break; }
          writePid(state, next.pid, restarts);
          forward(next.pid);
          session.wireTerminal(exec.args.stdin);
          code = await session.waitCommand(next);
        }
      }
      let oom: StepError | undefined;
      if (code === 137 && ctx.cgroup.oomKills() > 0) {
        const mem = plan.steps.find((s) => s.id === 'cgroup:memory');
        oom = { step: mem?.id ?? 'cgroup', errno: 12, message: `the command was killed by the kernel's OOM killer: it reached its memory limit of ${mem?.kind === 'cgroup.set' ? mem.args.value : '?'} bytes` };
      }
      return { exitCode: code, timing, attestation, ...(oom ? { failed: oom } : {}) };
    } catch (e) {
      if (!(e instanceof StepFailure)) throw e;
      const err: StepError = { step: e.step.id, errno: e.errno, message: e.message };
      onEvent({ type: 'step', id: e.step.id, phase: 'failed', error: err });
      return { exitCode: e.exitCode ?? failedStepStatus(e.step, e.errno), failed: err };
    } finally {
      session.close();
      // Undo in reverse: the child first, then the cgroup, then the state folder; not for a
      // detached sandbox that runs: that is `sandbox down`'s work.
      if (!(detach && running)) {
        for (const u of ctx.undo.reverse()) {
          try { await u(); } catch (e) { onEvent({ type: 'undo', id: 'cleanup', ok: false, message: (e as Error).message }); }
        }
        if (existsSync(state) && link) { try { rmdirSync(state); } catch { /* reported by gc */ } }
      }
    }
  }

  /**
   * `sandbox exec`: runs a plan made by compileExec (plan/exec.ts) against a running sandbox. No
   * host state is made: the new process joins the sandbox's cgroup (born in it on v2, moved on
   * v1) and namespaces, and forks into its pid namespace; the CLI waits for it like `up` does.
   */
  async exec(plan: Plan, onEvent: (e: EngineEvent) => void, opts: { host: HostFeatures; etc: string; beforeExec?: () => Promise<void>; pauseAt?: string; onSignal?: (n: SignalNote) => void }): Promise<RunResult> {
    const session = new Session(this.lib);
    let link: ChildLink | undefined;
    let failure: ChildFailure | undefined;
    const exec = findStep(plan.steps, 'exec')!;
    const fail = (s: Step, errno: number, message: string): RunResult => {
      const err: StepError = { step: s.id, errno, message };
      onEvent({ type: 'step', id: s.id, phase: 'failed', error: err });
      return { exitCode: failedStepStatus(s, errno), failed: err };
    };
    try {
      let program;
      try {
        const ids = planIds(plan, opts.etc);
        program = this.encode({ plan, rootDir: '/', uid: ids.uid, gid: ids.gid, groups: ids.groups, fileSources: new Set(), tty: false, pauseAt: opts.pauseAt, compileSeccomp: (p) => this.filter(p) });
      } catch (e) {
        if (e instanceof StepFailure || e instanceof PreflightError) return fail(e.step, e.errno, e.message);
        throw e;
      }
      const cgStep = findStep(plan.steps, 'cgroup.attach');
      const cgroup = cgStep ? new Cgroup({ ...opts.host.cgroup, controllers: cgStep.args.controllers ?? opts.host.cgroup.controllers }, cgStep.args.path) : undefined;
      const cgroupFd = cgroup ? cgroup.openForClone() : -1;
      try { link = directLink(this.lib, program, cgroupFd); } catch (e) { return fail(plan.steps[0]!, (e as NativeError).errno ?? 5, (e as Error).message); } finally { if (cgroupFd >= 0) closeSync(cgroupFd); }
      const child = link;
      // The relay passes each signal on to the command (not a PID 1: it gets them all).
      session.onSignals(() => undefined);
      session.forwardTo({ pid: child.pid, pid1: false, graceMs: exec.args.stopGraceMs ?? 10_000, note: opts.onSignal ?? (() => undefined) });
      if (cgStep && cgroup) {
        onEvent({ type: 'step', id: cgStep.id, phase: 'start' });
        if (!child.inCgroup) {
          try { cgroup.attach(child.pid); } catch (e) { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } await child.wait().catch(() => 0); return fail(cgStep, 2, `the sandbox's cgroup cannot be joined: ${(e as Error).message}; is it still running?`); }
        }
        onEvent({ type: 'step', id: cgStep.id, phase: 'done' });
      }
      const eof = readEvents(child, plan, {
        onEvent, onFail: (f) => { failure = f; }, onConsole: () => session.receiveTerminal(child),
        onExecStart: async () => { await opts.beforeExec?.(); child.send('E'); },
      });
      child.send('G');
      await eof;
      child.close();
      if (failure) {
        await child.wait().catch(() => 0);
        return fail(plan.steps[failure.index] ?? exec, failure.errno, failure.message);
      }
      onEvent({ type: 'running', pid: child.pid });
      onEvent({ type: 'step', id: exec.id, phase: 'done' });
      session.wireTerminal(exec.args.stdin);
      return { exitCode: await session.waitCommand(child) };
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
