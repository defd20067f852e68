// The native engine: applies a plan for real. Host-side steps (state folder, cgroup, id maps) run
// here, in the CLI process, as its user (root); everything inside the sandbox runs in the child
// that libsbx clones, which reports each step back. A failure anywhere undoes every earlier host
// change in reverse, so a failed run leaves nothing behind.
import { closeSync, mkdirSync, rmdirSync, rmSync, statSync, statfsSync, unlinkSync, writeFileSync, writeSync, existsSync } from 'node:fs';
import { Store } from '../image/store';
import { Socket } from 'node:net';
import { ReadStream } from 'node:tty';
import { constants } from 'node:os';
import { join } from 'node:path';
import { getSystemErrorMap } from 'node:util';
import type { HostFeatures, Plan, Step } from '../plan/types';
import type { IdMap } from '../model/types';
import { loadLibSbx, NativeError, type LibSbx } from '../ffi/libsbx';
import { ABI_VERSION, EV, EVENT_OFFSET as EO, EVENT_SIZE, OP } from '../ffi/generated/abi';
import { directLink, supervisedLink, type ChildLink } from './link';
import { Cgroup } from './cgroup';
import { encodeProgram, UnsupportedStep, type Program, type ProgramInput } from './ops';
import { cachedFilter } from './seccomp-cache';
import { resolveIds } from './users';
import { nameLock, reclaimLocked, STATE_FILES, writeSaved, writeState } from './state';
import { ownerAlive, readOwner, selfOwner, withLock } from './lock';
import { createVeth, enableForwarding, hostInterface, hostsFile, leaseAddress, natTable, nft, nftTable, portRules, removeTable, removeVeth, reservePort, resolvConf, restoreForwarding, type PortRule } from './network';
import type { Engine, EngineEvent, RunOptions, RunResult, StepError } from './types';

export interface NativeRunOptions extends RunOptions {
  host: HostFeatures;
  /** Called when setup is over and before the command starts: progress output ends here. */
  beforeExec?: () => Promise<void>;
  /** Give the command a pseudo-terminal. */
  tty?: boolean;
  /** The config file, as shown by `ps`. */
  file?: string;
  /** Test-only: freeze the CLI when this step starts (see SANDBOX_TEST_STALL_AT). */
  stallAt?: string;
}

export function errnoText(errno: number): string {
  const e = getSystemErrorMap().get(-errno);
  return e ? `${e[1]} (${e[0]})` : `errno ${errno}`;
}

/** What a failed child step means, where the errno alone would mislead: the child reports these
 * errnos for checks of its own (mount.c, child.c), not for a failed system call. */
export function childFailureText(step: Step, errno: number): string {
  if (step.kind === 'mount.mask' && errno === 25) return `the sandbox's /dev/null is not the null device (character device 1:3), so it cannot hide ${String(step.args.path)}; mount nothing on /dev/null`;
  if (step.kind === 'sysctl' && errno === 18) return `/proc/sys/${String(step.args.name).replace(/\./g, '/')} is not a file of the sandbox's own /proc; refused`;
  if ((step.kind === 'console' || step.kind === 'mount.devpts') && errno === 25) return 'the sandbox\'s /dev/pts/ptmx is not the multiplexer of a devpts file system; refused';
  return errnoText(errno);
}

class StepFailure extends Error {
  constructor(readonly step: Step, readonly errno: number, message: string, readonly exitCode?: number) { super(message); }
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

export class NativeEngine implements Engine {
  readonly name = 'native';
  private readonly lib: LibSbx;
  constructor() { this.lib = loadLibSbx(); }

  /** The child's program, for `run` and `exec`: what cannot be encoded fails its own step (an
   * unsupported step, a seccomp filter libseccomp refuses) before anything is set up. */
  private encode(input: ProgramInput): Program {
    try { return encodeProgram(input); } catch (e) {
      if (e instanceof UnsupportedStep) throw new StepFailure(e.step, 95, e.message);
      const sc = input.plan.steps.find((x) => x.kind === 'seccomp');
      if (sc && e instanceof NativeError) throw new StepFailure(sc, e.errno, e.message);
      throw e;
    }
  }

  /** A seccomp filter's BPF: from the cache, or compiled by libseccomp (and then cached). */
  private filter(program: string): Buffer {
    return cachedFilter(program, `libsbx ${ABI_VERSION} libseccomp ${this.lib.seccompVersion()}`, (p) => this.lib.seccompCompile(p));
  }

  async run(plan: Plan, report: (e: EngineEvent) => void, options?: RunOptions): Promise<RunResult> {
    const opts = options as NativeRunOptions;
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
    const byId = new Map(plan.steps.map((s) => [s.id, s]));
    const state = plan.steps.find((s) => s.kind === 'state.create')!.args.path as string;
    const rootDir = join(state, 'root');
    const cgStep = plan.steps.find((s) => s.kind === 'cgroup.create')!;
    // The hierarchies the plan joins (all of them on v2).
    const cgroup = new Cgroup({ ...host.cgroup, controllers: cgStep.args.controllers as string[] }, cgStep.args.path as string);
    const undo: (() => void | Promise<void>)[] = [];
    let child: ChildLink | undefined;
    /** A failure the child reported: the index of its step in the plan, and the errno. */
    let failure: { index: number; errno: number; message: string } | undefined;
    const forward: [NodeJS.Signals, () => void][] = [];
    let master: number | undefined;
    let restoreRaw = false;

    // From the start: a signal during setup stops it (and everything is undone); once the command
    // runs, signals are forwarded to it.
    let pendingSignal: NodeJS.Signals | undefined;
    let running = false;
    for (const sig of SIGNALS) {
      const h = () => {
        if (running && child) { try { process.kill(child.pid, sig); } catch { /* gone */ } return; }
        pendingSignal ??= sig;
        if (child) { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }
      };
      process.on(sig, h);
      forward.push([sig, h]);
    }
    const interrupted = (s: Step) => {
      if (pendingSignal) throw new StepFailure(s, 4, `interrupted by ${pendingSignal}; nothing was left behind`, 128 + constants.signals[pendingSignal]);
    };
    const started = (s: Step) => onEvent({ type: 'step', id: s.id, phase: 'start' });
    const done = (s: Step, ms?: number) => onEvent({ type: 'step', id: s.id, phase: 'done', ms });
    const hostStep = async (s: Step, fn: () => void | Promise<void>) => {
      interrupted(s);
      started(s);
      const t0 = performance.now();
      if (opts.failAt === s.id) throw new StepFailure(s, 1, `${errnoText(1)} (injected)`);
      try { await fn(); } catch (e) {
        if (e instanceof StepFailure) throw e;
        const code = (e as NodeJS.ErrnoException).code;
        const errno = typeof code === 'string' ? (constants.errno as Record<string, number>)[code] ?? 5 : 5;
        const path = (e as NodeJS.ErrnoException).path;
        throw new StepFailure(s, errno, typeof code === 'string' && code.startsWith('E') ? `${errnoText(errno)}${path ? `: ${path}` : ''}` : (e as Error).message);
      }
      done(s, performance.now() - t0);
    };

    const t0 = process.hrtime.bigint();
    const detach = plan.steps.find((s) => s.kind === 'exec')!.args.detach === true;
    try {
      // Everything that can be refused without touching the host is refused first.
      const exec = plan.steps.find((s) => s.kind === 'exec')!;
      const rootfs = plan.steps.find((s) => s.stage === 'rootfs' && s.id === 'rootfs')!;
      // Users and groups are named in the new root's /etc: an image's is in its top-most layer that has one.
      const layers = (rootfs.args.layers as string[] | undefined) ?? [];
      const etc = rootfs.kind === 'rootfs.dir' ? join(rootfs.args.path as string, 'etc')
        : rootfs.kind === 'rootfs.image' ? join([...layers].reverse().find((l) => existsSync(join(l, 'etc', 'passwd'))) ?? layers[layers.length - 1] ?? '/nonexistent', 'etc') : '/etc';
      // An image: its layers under a private upper layer kept beside the store (not in /run, which is memory).
      const rootStep = plan.steps.find((s) => s.kind === 'mount.root');
      const imageRo = rootStep?.args.readOnly === true;
      const store = new Store();
      const container = store.containerPath(plan.name);
      let overlay: string | undefined;
      if (rootfs.kind === 'rootfs.image' && layers.length) {
        const lower = [...layers].reverse();
        // overlayfs needs two lower layers when it has no upper one.
        if (imageRo && lower.length === 1) lower.push(join(container, 'empty'));
        overlay = `lowerdir=${lower.join(':')}${imageRo ? '' : `,upperdir=${join(container, 'upper')},workdir=${join(container, 'work')}`}`;
      }
      const idsStep = plan.steps.find((s) => s.kind === 'user.ids')!;
      const groupsStep = plan.steps.find((s) => s.kind === 'user.groups')!;
      let ids;
      try { ids = resolveIds(etc, idsStep.args.user as string | number, idsStep.args.group as string | number | null, groupsStep.args.groups as (string | number)[]); } catch (e) { throw new StepFailure(idsStep, 22, (e as Error).message); }
      const fileSources = new Set<string>();
      for (const s of plan.steps) if (s.kind === 'mount.bind') {
        try { if (!statSync(s.args.source as string).isDirectory()) fileSources.add(s.args.source as string); } catch { throw new StepFailure(s, 2, `${s.args.source} does not exist on the host; create it first`); }
      }
      let program;
      let seccompCompileMs = 0;
      const compileSeccomp = once((p: string) => { const t = process.hrtime.bigint(); const b = this.filter(p); seccompCompileMs += Number(process.hrtime.bigint() - t) / 1e6; return b; });
      const encode = (address?: string) => this.encode({ plan, rootDir, uid: ids.uid, gid: ids.gid, groups: ids.groups, fileSources, tty: !!opts.tty, failAt: opts.failAt, pauseAt: opts.pauseAt, address, overlay, compileSeccomp });
      const privateNet = plan.steps.find((s) => s.kind === 'net.veth');
      // Encoded once here (with a placeholder address) so that anything unsupported is refused before the host is touched.
      program = encode(privateNet ? '0.0.0.0' : undefined);

      // Published host ports are taken first: a port in use is an error before anything is set up.
      const portSteps = plan.steps.filter((s) => s.kind === 'net.port');
      const published: PortRule[] = [];
      const holds: { close(): Promise<void> }[] = [];
      for (const s of portSteps) {
        const a = s.args as unknown as PortRule;
        try {
          const held = await reservePort(a);
          undo.push(() => held.close());
          holds.push(held);
          published.push({ ...a, hostPort: held.port });
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          started(s);
          throw new StepFailure(s, code === 'EADDRINUSE' ? 98 : 99, code === 'EADDRINUSE'
            ? `host port ${a.hostPort}/${a.protocol}${a.hostIp ? ` on ${a.hostIp}` : ''} is already in use (by another program or sandbox); pick another host port`
            : `host address ${a.hostIp} cannot be used: ${(e as Error).message}`);
        }
      }
      let address: string | undefined;

      // 1-2. rootfs and cgroup, on the host.
      for (const s of plan.steps.filter((x) => x.stage === 'rootfs' || x.stage === 'cgroup')) {
        await hostStep(s, async () => {
          if (s.kind === 'state.create') {
            // Under the name's lock, so that of two `up`s of one name exactly one wins; the folder
            // names its owner (this CLI) from its first moment, so that gc leaves a starting sandbox be.
            await withLock(nameLock(host, plan.name), async () => {
              try { mkdirSync(state); } catch (e) {
                if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
                // A folder left by a crashed run (the CLI killed with -9) is recognised, not trusted: with
                // no live process in its cgroup and no live owner, what that run made on the host is removed first.
                const owner = readOwner(join(state, 'owner'));
                if (cgroup.pids().length || ownerAlive(owner)) throw new Error(`a sandbox named ${plan.name} is already ${cgroup.pids().length ? 'running' : `being started (by process ${owner!.split(' ')[0]})`}; stop it first, or pick another name with --name`);
                await reclaimLocked(host, plan.name);
                mkdirSync(state);
              }
              writeFileSync(join(state, 'owner'), selfOwner());
            });
            undo.push(() => { try { rmdirSync(state); } catch { /* not empty: leave it for gc */ } });
            // Files written here (lease, network files, state.json) go with the folder.
            undo.push(() => { for (const f of STATE_FILES) try { unlinkSync(join(state, f)); } catch { /* absent */ } });
            if (privateNet) address = await leaseAddress(host.stateRoot, state, privateNet.args.subnet as string);
            mkdirSync(rootDir);
            undo.push(() => { try { rmdirSync(rootDir); } catch { /* already gone */ } });
          } else if (s.kind === 'rootfs.image') {
            for (const l of layers) if (!statSync(l).isDirectory()) throw new Error(`the image's layer ${l} is missing from the store; pull the image again`);
            // overlayfs cannot take an upper layer that is itself on overlayfs (EINVAL at the mount).
            if (!imageRo && statfsSync(store.root).type === 0x794c7630) throw new Error(`the image store ${store.root} is on overlayfs, which cannot hold a sandbox's upper layer; set SANDBOX_STORE to a folder on another file system, or use security.read_only`);
            rmSync(container, { recursive: true, force: true });
            undo.push(() => rmSync(container, { recursive: true, force: true }));
            mkdirSync(imageRo ? join(container, 'empty') : join(container, 'upper'), { recursive: true, mode: 0o755 });
            if (!imageRo) mkdirSync(join(container, 'work'));
          } else if (s.kind === 'rootfs.dir') {
            if (!statSync(s.args.path as string).isDirectory()) throw new Error(`${s.args.path} is not a folder`);
          } else if (s.kind === 'cgroup.create') {
            if (cgroup.exists()) {
              if (cgroup.pids().length) throw new Error(`a sandbox named ${plan.name} is already running (cgroup ${cgroup.path} has processes); stop it first`);
              await cgroup.remove();
            }
            undo.push(() => cgroup.remove());
            cgroup.create();
          } else if (s.kind === 'cgroup.set') cgroup.set(s.args.controller as string, s.args.file as string, s.args.value as string);
        });
      }

      // 3. namespaces: the clone creates them; the child is held until the parent says go.
      if (privateNet) program = encode(address);
      const cgroupFd = detach ? -1 : cgroup.openForClone();
      try {
        child = detach ? await supervisedLink(program, state, cgroup.v2Dir()) : directLink(this.lib, program, cgroupFd);
      } catch (e) {
        const ns = plan.steps.find((s) => s.stage === 'namespaces')!;
        started(ns);
        throw new StepFailure(ns, (e as NativeError).errno ?? 5, (e as Error).message);
      } finally {
        if (cgroupFd >= 0) closeSync(cgroupFd);
      }
      const link = child;
      const pid = link.pid;
      const bornInCgroup = link.inCgroup;
      undo.push(() => { try { process.kill(link.supervisorPid ?? pid, 'SIGKILL'); } catch { /* gone */ } try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } });
      for (const s of plan.steps.filter((x) => x.stage === 'namespaces' && !program.childSteps.has(x.id))) await hostStep(s, () => undefined);

      // 4. attach: into the cgroup, then the id maps, before the child may go on.
      for (const s of plan.steps.filter((x) => x.stage === 'attach')) {
        await hostStep(s, () => {
          // On v2 the child was born in its cgroup (clone3); elsewhere it is moved there now.
          if (s.kind === 'cgroup.attach') { if (!bornInCgroup) cgroup.attach(pid); }
          else if (s.kind === 'idmap') {
            const fmt = (m: unknown) => (m as IdMap[]).map((x) => `${x.container} ${x.host} ${x.size}\n`).join('');
            writeFileSync(`/proc/${pid}/uid_map`, fmt(s.args.uid));
            writeFileSync(`/proc/${pid}/gid_map`, fmt(s.args.gid));
          }
        });
      }

      // 5. network, host side: the veth pair, NAT, port maps, and the files the sandbox's /etc gets.
      const hostIf = hostInterface(plan.name);
      const table = nftTable(plan.name);
      for (const s of plan.steps.filter((x) => x.stage === 'network' && !program.childSteps.has(x.id))) {
        await hostStep(s, async () => {
          const a = s.args;
          if (s.kind === 'net.veth') {
            undo.push(() => removeVeth(hostIf));
            createVeth(pid, hostIf, a.gateway as string, address!, published.length > 0, a.mtu as number);
            undo.push(() => restoreForwarding(host.stateRoot, state));
            await enableForwarding(host.stateRoot);
          } else if (s.kind === 'net.nat') {
            undo.push(() => removeTable(table));
            nft(natTable(table, hostIf, address!));
          } else if (s.kind === 'net.port') {
            // Kernel maps go in with the first port step, in one nft transaction.
            if (s === portSteps[0]) {
              const kernel = published.filter((p, i) => portSteps[i]!.args.path === 'kernel');
              if (kernel.length) nft(portRules(table, address!, kernel));
            }
            // A user-space map: the CLI's hold on the port passes to a forwarder thread.
            if (a.path === 'userspace') {
              const i = portSteps.indexOf(s);
              const p = published[i]!;
              await holds[i]!.close();
              const f = this.lib.forward(p.protocol === 'udp', p.hostIp || '0.0.0.0', p.hostPort, address!, p.containerPort, -1);
              undo.push(() => f.stop());
            }
          } else if (s.kind === 'net.hosts') {
            writeFileSync(join(state, 'hosts'), hostsFile(plan.steps.find((x) => x.kind === 'hostname')?.args.hostname as string ?? plan.name, address, a.extra as string[]));
          } else if (s.kind === 'net.resolv') writeFileSync(join(state, 'resolv.conf'), resolvConf(a.servers as string[]));
        });
      }

      // 5-9. the child runs its ops and reports each one.
      let execNs = 0n;
      const eofSeen = this.readEvents(link, plan, onEvent, (f) => { failure = f; }, () => {
        // The child made its terminal and sent the master over the sync socket.
        master = this.lib.recvFd(link.syncFd!);
        if (process.stdout.isTTY) this.lib.setWinsize(master, process.stdout.rows, process.stdout.columns);
      }, async (ns) => {
        execNs = ns;
        await opts.beforeExec?.();
        link.send('E');
      });
      link.send('G');
      await eofSeen;
      link.close();

      if (failure || pendingSignal) {
        // A reaper with a restart policy would run a command that failed to start again: end it.
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
        await link.wait().catch(() => 0);
        const at = failure ? plan.steps[failure.index] ?? exec : exec;
        interrupted(at);
        throw new StepFailure(at, failure!.errno, failure!.message);
      }
      running = true;
      writeSaved(state, { plan, applied: [...applied].map(([id, ms]) => ({ id, ms: Math.round(ms * 1000) / 1000 })), address: address ?? null, ids });
      writeState(state, {
        name: plan.name, pid, command: exec.args.args as string[], file: opts.file ?? '', digest: plan.digest,
        startedAt: new Date().toISOString(), ports: published.map((p) => ({ hostIp: p.hostIp, hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol })),
        detached: detach, supervisorPid: link.supervisorPid, stopSignal: exec.args.stopSignal as number, stopGraceMs: exec.args.stopGraceMs as number,
      });
      // hrtime and the child's CLOCK_MONOTONIC are the same clock on Linux.
      const timing = {
        setupMs: Number(execNs - t0) / 1e6, spawnToExecMs: Number(execNs - link.spawnNs) / 1e6,
        // What the capability sets and the seccomp filter cost: compiling the filter here, and the
        // child's caps and filter-loading steps, as it timed them.
        seccompCompileMs, capsAndFilterMs: (applied.get('caps') ?? 0) + (applied.get('seccomp') ?? 0),
      };
      if (detach) {
        // The supervisor is the sandbox's parent now; what was set up stays until `sandbox down`,
        // and its live processes, not this CLI, say that it runs.
        unlinkSync(join(state, 'owner'));
        onEvent({ type: 'running', pid });
        done(exec);
        return { exitCode: 0, timing, detached: true };
      }
      onEvent({ type: 'running', pid });
      done(exec);

      // The command runs: the terminal is wired, signals are forwarded (above), and we wait.
      if (master !== undefined) restoreRaw = this.wireTerminal(master, forward);
      const status = await this.waitCommand(link, master);
      const code = (status & 0x7f) === 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
      let oom: StepError | undefined;
      if (code === 137 && cgroup.oomKills() > 0) {
        const mem = byId.get('cgroup:memory');
        oom = { step: mem?.id ?? 'cgroup', errno: 12, message: `the command was killed by the kernel's OOM killer: it reached its memory limit of ${mem?.args.value ?? '?'} bytes` };
      }
      return { exitCode: code, timing, ...(oom ? { failed: oom } : {}) };
    } catch (e) {
      if (!(e instanceof StepFailure)) throw e;
      const err: StepError = { step: e.step.id, errno: e.errno, message: e.message };
      onEvent({ type: 'step', id: e.step.id, phase: 'failed', error: err });
      const exitCode = e.exitCode ?? (e.step.kind === 'exec' ? (e.errno === 2 ? 127 : 126) : 125);
      return { exitCode, failed: err };
    } finally {
      for (const [sig, h] of forward) process.removeListener(sig, h);
      if (restoreRaw) process.stdin.setRawMode(false);
      if (master !== undefined) { process.stdin.unpipe(); process.stdin.pause(); }
      child?.close();
      // Undo in reverse: the child first, then the cgroup, then the state folder; not for a
      // detached sandbox that runs: that is `sandbox down`'s work.
      if (!(detach && running)) {
        for (const u of undo.reverse()) {
          try { await u(); } catch (e) { onEvent({ type: 'undo', id: 'cleanup', ok: false, message: (e as Error).message }); }
        }
        if (existsSync(state) && child) { try { rmdirSync(state); } catch { /* reported by gc */ } }
      }
    }
  }

  /** Relays the user's terminal to the pty master the child sent; returns whether stdin was put in raw mode. */
  private wireTerminal(master: number, forward: [NodeJS.Signals, () => void][]): boolean {
    // The pty master is a TTY fd, which net.Socket refuses; tty.ReadStream is a duplex over it.
    const term = new ReadStream(master);
    this.ttyDone = new Promise((r) => { term.on('close', () => r()); term.on('error', () => r()); });
    term.pipe(process.stdout, { end: false });
    let raw = false;
    if (process.stdin.isTTY) { process.stdin.setRawMode(true); raw = true; }
    process.stdin.pipe(term);
    if (process.stdout.isTTY) {
      const w = () => { try { this.lib.setWinsize(master, process.stdout.rows, process.stdout.columns); } catch { /* closed */ } };
      process.on('SIGWINCH', w);
      forward.push(['SIGWINCH', w]);
    }
    return raw;
  }

  private ttyDone: Promise<void> = Promise.resolve();

  /** The command's wait status, once the terminal (if any) has drained what it wrote last. */
  private async waitCommand(link: ChildLink, master: number | undefined): Promise<number> {
    const status = await link.wait();
    if (master !== undefined) {
      // Briefly: the timer must not keep Node alive.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.ttyDone, new Promise((r) => { timer = setTimeout(r, 200); })]);
      clearTimeout(timer);
    }
    return status;
  }

  /**
   * `sandbox exec`: runs a plan made by compileExec (plan/exec.ts) against a running sandbox. No
   * host state is made: the new process joins the sandbox's cgroup (born in it on v2, moved on
   * v1) and namespaces, and forks into its pid namespace; the CLI waits for it like `up` does.
   */
  async exec(plan: Plan, onEvent: (e: EngineEvent) => void, opts: { host: HostFeatures; tty: boolean; etc: string; beforeExec?: () => Promise<void>; pauseAt?: string }): Promise<RunResult> {
    const forward: [NodeJS.Signals, () => void][] = [];
    let link: ChildLink | undefined;
    let master: number | undefined;
    let restoreRaw = false;
    let failure: { index: number; errno: number; message: string } | undefined;
    const exec = plan.steps.find((s) => s.kind === 'exec')!;
    const fail = (s: Step, errno: number, message: string): RunResult => {
      const err: StepError = { step: s.id, errno, message };
      onEvent({ type: 'step', id: s.id, phase: 'failed', error: err });
      return { exitCode: s.kind === 'exec' ? (errno === 2 ? 127 : 126) : 125, failed: err };
    };
    try {
      const idsStep = plan.steps.find((s) => s.kind === 'user.ids')!;
      const groupsStep = plan.steps.find((s) => s.kind === 'user.groups')!;
      let ids;
      try { ids = resolveIds(opts.etc, idsStep.args.user as string | number, idsStep.args.group as string | number | null, groupsStep.args.groups as (string | number)[]); } catch (e) { return fail(idsStep, 22, (e as Error).message); }
      let program;
      try { program = this.encode({ plan, rootDir: '/', uid: ids.uid, gid: ids.gid, groups: ids.groups, fileSources: new Set(), tty: false, pauseAt: opts.pauseAt, compileSeccomp: (p) => this.filter(p) }); } catch (e) {
        if (e instanceof StepFailure) return fail(e.step, e.errno, e.message);
        throw e;
      }
      const cgStep = plan.steps.find((s) => s.kind === 'cgroup.attach');
      const cgroup = cgStep ? new Cgroup({ ...opts.host.cgroup, controllers: cgStep.args.controllers as string[] }, cgStep.args.path as string) : undefined;
      const cgroupFd = cgroup ? cgroup.openForClone() : -1;
      try { link = directLink(this.lib, program, cgroupFd); } catch (e) { return fail(plan.steps[0]!, (e as NativeError).errno ?? 5, (e as Error).message); } finally { if (cgroupFd >= 0) closeSync(cgroupFd); }
      const child = link;
      for (const sig of SIGNALS) {
        const h = () => { try { process.kill(child.pid, sig); } catch { /* gone */ } };
        process.on(sig, h);
        forward.push([sig, h]);
      }
      if (cgStep && cgroup) {
        onEvent({ type: 'step', id: cgStep.id, phase: 'start' });
        if (!child.inCgroup) {
          try { cgroup.attach(child.pid); } catch (e) { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } await child.wait().catch(() => 0); return fail(cgStep, 2, `the sandbox's cgroup cannot be joined: ${(e as Error).message}; is it still running?`); }
        }
        onEvent({ type: 'step', id: cgStep.id, phase: 'done' });
      }
      const eof = this.readEvents(child, plan, onEvent, (f) => { failure = f; }, () => {
        master = this.lib.recvFd(child.syncFd!);
        if (process.stdout.isTTY) this.lib.setWinsize(master, process.stdout.rows, process.stdout.columns);
      }, async () => { await opts.beforeExec?.(); child.send('E'); });
      child.send('G');
      await eof;
      child.close();
      if (failure) {
        await child.wait().catch(() => 0);
        return fail(plan.steps[failure.index] ?? exec, failure.errno, failure.message);
      }
      onEvent({ type: 'running', pid: child.pid });
      onEvent({ type: 'step', id: exec.id, phase: 'done' });
      if (master !== undefined) restoreRaw = this.wireTerminal(master, forward);
      const status = await this.waitCommand(child, master);
      return { exitCode: (status & 0x7f) === 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f) };
    } finally {
      for (const [sig, h] of forward) process.removeListener(sig, h);
      if (restoreRaw) process.stdin.setRawMode(false);
      if (master !== undefined) { process.stdin.unpipe(); process.stdin.pause(); }
      link?.close();
    }
  }

  /** Reads struct sbx_event records until EOF (exec, or the child's death). */
  private readEvents(link: ChildLink, plan: Plan, onEvent: (e: EngineEvent) => void, onFail: (f: { index: number; errno: number; message: string }) => void, onConsole: () => void, onExecStart: (ns: bigint) => Promise<void>): Promise<void> {
    return new Promise((resolve) => {
      const sock = link.events;
      let buf = Buffer.alloc(0);
      const started = new Map<number, bigint>();
      const onData = (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= EVENT_SIZE) {
          const step = buf.readUInt32LE(EO.step), phase = buf.readUInt32LE(EO.phase), err = buf.readInt32LE(EO.err), kind = buf.readUInt32LE(EO.op), ns = buf.readBigUInt64LE(EO.ns);
          buf = buf.subarray(EVENT_SIZE);
          const s = plan.steps[step];
          if (!s) continue;
          if (phase === EV.START) {
            if (!started.has(step)) { started.set(step, ns); onEvent({ type: 'step', id: s.id, phase: 'start' }); }
            if (s.kind === 'exec') void onExecStart(ns).catch(() => undefined);
          } else if (phase === EV.DONE) {
            if (kind === OP.CONSOLE) onConsole();
            if (s.kind !== 'exec') onEvent({ type: 'step', id: s.id, phase: 'done', ms: Number(ns - (started.get(step) ?? ns)) / 1e6 });
          } else if (phase === EV.FAILED) {
            onFail({ index: step, errno: err, message: s ? childFailureText(s, err) : errnoText(err) });
          }
        }
      };
      sock.on('data', onData);
      sock.on('end', () => resolve());
      sock.on('error', () => resolve());
      if (link.initial.length) onData(link.initial);
      sock.resume();
    });
  }
}

/** f, remembering its result for each argument (the seccomp filter is compiled once per run). */
function once<A, R>(f: (a: A) => R): (a: A) => R {
  const seen = new Map<A, R>();
  return (a) => { if (!seen.has(a)) seen.set(a, f(a)); return seen.get(a)!; };
}
