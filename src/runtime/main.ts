// sandbox-runtime: runc's command line over an OCI bundle, for containerd's shim, podman and the
// runtime-tools. Each command is one short process run as root by its caller. `create` turns the
// bundle's config.json into a plan through the same adapter, rules, compile, engine and
// attestation as `sandbox up` (src/cli/oci.ts), and returns while the container's process waits
// before its exec on a fifo (the engine's startFifo: SBX_F_WAIT_START); that process is then the
// caller's (or its subreaper's) with nothing in between. `start` writes the fifo; `delete` runs
// `sandbox down`'s undo of everything create set up. The runtime's own record of a container is
// ROOT/ID/state.json beside the fifo (ROOT: --root, /run/sandbox-runtime by default); the
// sandbox's host state stays where the engine keeps it (/run/sandbox/NAME).
// Exit status as runc: 0, or 1 with the error on stderr (and as a JSON line on --log with
// --log-format json); `run` exits with the container's status.
import { createHash } from 'node:crypto';
import { appendFileSync, closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { VERSION } from '../cli/version';
import { freezerFile, isFrozen } from '../engine/container-cgroup';
import type { OciHooks } from '../import/oci';
import { runHooks } from './hooks';
// The pipeline, the engine and the host probe are loaded by the commands that use them: `start`,
// `state` and `kill` (each a process of its own, called often by the shim) need none of them.
const probe = async () => (await import('../engine/probe')).probeHost();

export class RuntimeError extends Error { constructor(message: string, readonly code = 1) { super(message); } }

/** The globals every command takes, as runc names them. */
export interface Globals { root: string; log?: string; logFormat: 'text' | 'json'; debug: boolean }

/** What the runtime keeps of a container: ROOT/ID/state.json, JSON.stringify of this object (one
 * compact line, keys in this order), beside ROOT/ID/exec.fifo. The native front-end
 * (native/src/runtime.c, what the installed command runs) reads it for start, state, kill and
 * delete, prints state's strings as they are written here, and rewrites only `started` (false to
 * true) at start: a field added here that changes what those commands do must be taught to it too
 * (or make it hand the command to Node); test/integration/runtime-native.test.ts checks both agree. */
interface Record_ {
  id: string; bundle: string; rootfs: string; created: string; annotations: Record<string, string>;
  pid: number; /** /proc/PID/stat's start time: a pid reused by another process is not ours. */ startTime: string;
  sandbox: string; started: boolean;
  /** The file that says whether its cgroup is frozen (freezer.state on v1, cgroup.freeze on v2): `paused`. */
  freezer?: string;
  /** config.json's hooks that run after create: poststart at start, poststop at delete. */
  hooks?: Pick<OciHooks, 'poststart' | 'poststop'>;
}

const SIGNALS: Record<string, number> = { HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11, USR2: 12, PIPE: 13, ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22, URG: 23, XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, IO: 29, POLL: 29, PWR: 30, SYS: 31 };

/** A signal as runc reads it: a number, or a name with or without SIG (RTMIN+N too). */
export function parseSignal(s: string): number {
  if (/^[0-9]+$/.test(s)) { const n = Number(s); if (n >= 1 && n <= 64) return n; }
  const name = s.toUpperCase().replace(/^SIG/, '');
  if (Object.hasOwn(SIGNALS, name)) return SIGNALS[name]!;
  const rt = /^RTMIN(\+([0-9]+))?$/.exec(name);
  if (rt && 34 + Number(rt[2] ?? 0) <= 64) return 34 + Number(rt[2] ?? 0);
  throw new RuntimeError(`unknown signal "${s}"`);
}

/** The sandbox name of a container id: the id itself when it is a valid name, else a digest of it
 * (containerd's CRI ids are 64 hex digits; a name is at most 63 characters). */
export function sandboxName(id: string): string {
  return /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(id) ? id : `oci-${createHash('sha256').update(id).digest('hex').slice(0, 32)}`;
}

const dirOf = (g: Globals, id: string) => join(g.root, id);
const validId = (id: string) => /^[a-zA-Z0-9][a-zA-Z0-9_+.-]*$/.test(id) && id.length <= 1024;

function readRecord(g: Globals, id: string): Record_ {
  if (!validId(id)) throw new RuntimeError(`invalid container id: ${JSON.stringify(id)}`);
  try { return JSON.parse(readFileSync(join(dirOf(g, id), 'state.json'), 'utf8')) as Record_; } catch {
    throw new RuntimeError(`container ${id} does not exist`);
  }
}

/** The 22nd field of /proc/PID/stat (its start time), and its state letter; undefined when gone. */
function procStat(pid: number): { start: string; state: string } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: f[0]!, start: f[19]! };
  } catch { return undefined; }
}

/** created, running or stopped, from the process itself: alive (not a zombie) with the start time
 * recorded at create. */
export function statusOf(r: Pick<Record_, 'pid' | 'startTime' | 'started' | 'freezer'>): 'created' | 'running' | 'paused' | 'stopped' {
  const st = r.pid > 0 ? procStat(r.pid) : undefined;
  if (!st || st.state === 'Z' || st.state === 'X' || st.start !== r.startTime) return 'stopped';
  if (r.freezer && isFrozen(r.freezer)) return 'paused';
  return r.started ? 'running' : 'created';
}

function stateJson(r: Record_): string {
  const status = statusOf(r);
  return `${JSON.stringify({ ociVersion: '1.2.0', id: r.id, pid: status === 'stopped' ? 0 : r.pid, status, bundle: r.bundle, rootfs: r.rootfs, created: r.created, owner: '', ...(Object.keys(r.annotations).length ? { annotations: r.annotations } : {}) }, null, 2)}\n`;
}

/** create: the plan of the bundle, applied up to the exec, where the process waits for start. */
async function create(g: Globals, id: string, o: { bundle: string; pidFile?: string; consoleSocket?: string; detach?: boolean }): Promise<number> {
  if (!validId(id)) throw new RuntimeError(`invalid container id: ${JSON.stringify(id)}`);
  const dir = dirOf(g, id);
  mkdirSync(g.root, { recursive: true, mode: 0o711 });
  try { mkdirSync(dir, { mode: 0o711 }); } catch { throw new RuntimeError(`container with id exists: ${id}`); }
  try {
    const fifo = join(dir, 'exec.fifo');
    const name = sandboxName(id);
    const [{ load }, { loadOci }] = await Promise.all([import('../cli/main'), import('../cli/oci')]);
    const l = await loadOci(load, o.bundle, name, { forRun: true, preflight: { exit: 1 } }, (t) => note(g, t));
    const tty = l.plan.steps.some((s) => s.kind === 'exec' && s.args.tty);
    if (tty && !o.consoleSocket) throw new RuntimeError('cannot allocate tty if runc will detach without setting console socket');
    if ((!tty || o.detach === false) && o.consoleSocket) throw new RuntimeError('cannot use console socket if runc will not detach or allocate tty');
    // On cgroup v1, the kernel's grace period that the cgroup's attach would wait for passes
    // while the engine loads (engine/prewarm.ts, as `up` does).
    (await import('../engine/prewarm')).prewarmCgroupAttach(l.host);
    const { NativeEngine } = await import('../engine/native');
    const engine = new NativeEngine();
    engine.makeFifo(fifo);
    const consoleSocket = tty ? { path: resolve(o.consoleSocket!), size: consoleSize(l.oci.text) } : undefined;
    const res = await engine.run(l.plan, () => undefined, { host: l.host, file: join(l.bundle, 'config.json'), startFifo: fifo, consoleSocket });
    if (res.failed || res.exitCode !== 0) {
      const step = l.plan.steps.find((s) => s.id === res.failed?.step);
      const where = step && typeof step.source === 'object' ? ` (${step.source.file}:${step.source.line}:${step.source.col})` : '';
      throw new RuntimeError(`container_linux.go: starting container process caused: step ${res.failed?.step ?? '?'} failed: ${res.failed?.message ?? `exit ${res.exitCode}`}${where}`);
    }
    const { findSandbox } = await import('../engine/lifecycle');
    const pid = findSandbox(l.host, name).state?.pid ?? 0;
    const rootfs = l.spec.rootfs.type === 'dir' ? l.spec.rootfs.path : '';
    const cgPath = l.plan.steps.find((s) => s.kind === 'cgroup.create')?.args as { path?: string } | undefined;
    const { poststart, poststop, prestart, createRuntime } = l.oci.hooks;
    const rec: Record_ = { id, bundle: l.bundle, rootfs, created: new Date().toISOString(), annotations: l.oci.annotations, pid, startTime: procStat(pid)?.start ?? '', sandbox: name, started: false, freezer: freezerFile(l.host, cgPath?.path ?? ''), hooks: { poststart, poststop } };
    writeFileSync(join(dir, 'state.json'), JSON.stringify(rec));
    // The OOM score is the created process's, set before it execs (lowering it needs
    // CAP_SYS_RESOURCE); a failed prestart or createRuntime hook ends the container. Either
    // failure undoes it as `delete --force`.
    const failed = oomScore(pid, l.oci.oomScoreAdj) ?? runHooks('prestart', prestart, stateJson(rec)) ?? runHooks('createRuntime', createRuntime, stateJson(rec));
    if (failed) {
      await del(g, id, true, false);
      throw new RuntimeError(failed);
    }
    // runtime-tools reads the pid file as digits without a newline; containerd as a number.
    if (o.pidFile) writeFileSync(resolve(o.pidFile), String(pid));
    return 0;
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** process.oomScoreAdj written for the created process; why it could not be, or undefined. */
function oomScore(pid: number, adj: number | undefined): string | undefined {
  if (adj === undefined) return undefined;
  try { writeFileSync(`/proc/${pid}/oom_score_adj`, String(adj)); return undefined; } catch (e) {
    return `process.oomScoreAdj ${adj} cannot be set (${(e as NodeJS.ErrnoException).code}): a value below the caller's own needs CAP_SYS_RESOURCE`;
  }
}

/** start: the byte the created process waits for; it then execs its command. */
function start(g: Globals, id: string): number {
  const r = readRecord(g, id);
  const status = statusOf(r);
  if (status === 'stopped') throw new RuntimeError('cannot start a container that has stopped');
  if (status === 'running') throw new RuntimeError('cannot start an already running container');
  let fd: number;
  // Non-blocking: with no reader (the process is gone) the open fails at once (ENXIO).
  try { fd = openSync(join(dirOf(g, id), 'exec.fifo'), constants.O_WRONLY | constants.O_NONBLOCK); } catch { throw new RuntimeError('cannot start a container that has stopped'); }
  try { writeSync(fd, '0'); } finally { closeSync(fd); }
  const started = { ...r, started: true };
  writeFileSync(join(dirOf(g, id), 'state.json'), JSON.stringify(started));
  // A poststart hook that fails is a warning: the container runs on (runtime-spec).
  const failed = runHooks('poststart', r.hooks?.poststart ?? [], stateJson(started));
  if (failed) warn(g, failed);
  return 0;
}

/** kill: a signal to the container's process, or with --all to every process of its cgroup. */
async function kill(g: Globals, id: string, sig: string | undefined, all: boolean): Promise<number> {
  const r = readRecord(g, id);
  const n = parseSignal(sig ?? 'TERM');
  const stopped = statusOf(r) === 'stopped';
  // --all of a stopped container signals what is left of it and succeeds, as runc's: containerd
  // sends `kill --all ID 9` once a Pod's sandbox container has exited, then `delete`.
  if (stopped && !all) throw new RuntimeError('container not running');
  const pids = stopped ? [] : [r.pid];
  if (all) {
    const { processes } = await import('../engine/lifecycle');
    for (const p of processes(await probe(), r.sandbox)) if (!pids.includes(p.hostPid)) pids.push(p.hostPid);
  }
  for (const p of pids) {
    try { process.kill(p, n); } catch (e) { if (p === r.pid && (e as NodeJS.ErrnoException).code === 'ESRCH') throw new RuntimeError('container not running'); }
  }
  // A frozen process takes SIGKILL only once thawed (as runc, which resumes a paused container it kills).
  if (n === 9 && r.freezer && isFrozen(r.freezer)) await thaw(r);
  return 0;
}

/** The cgroup of a paused container thawed (delete and kill of one). */
async function thaw(r: Record_): Promise<void> {
  const { freeze } = await import('../engine/container-cgroup');
  await freeze(await probe(), r.sandbox, false);
}

/** delete: everything create set up, undone (as `sandbox down`), then the runtime's record. */
async function del(g: Globals, id: string, force: boolean, poststop = true): Promise<number> {
  let r: Record_;
  try { r = readRecord(g, id); } catch (e) {
    // --force of a container that is not there succeeds, as runc's.
    if (force && validId(id)) return 0;
    throw e;
  }
  const status = statusOf(r);
  if ((status === 'running' || status === 'paused') && !force) throw new RuntimeError(`cannot delete container ${id} that is not stopped: ${status}`);
  if (status !== 'stopped') { try { process.kill(r.pid, 'SIGKILL'); } catch { /* gone */ } }
  if (r.freezer && isFrozen(r.freezer)) await thaw(r);
  const host = await probe();
  const { downSandbox, listSandboxes } = await import('../engine/lifecycle');
  if (listSandboxes(host).some((s) => s.name === r.sandbox)) await downSandbox(host, r.sandbox, 0);
  // A poststop hook that fails is a warning: the container is deleted all the same.
  const failed = poststop ? runHooks('poststop', r.hooks?.poststop ?? [], stateJson({ ...r, pid: 0 })) : undefined;
  rmSync(dirOf(g, id), { recursive: true, force: true });
  if (failed) warn(g, failed);
  return 0;
}

/** run: create, start, and wait for the process (this process is its parent). */
async function run(g: Globals, id: string, o: { bundle: string; pidFile?: string; consoleSocket?: string; detach: boolean }): Promise<number> {
  await create(g, id, o);
  const r = readRecord(g, id);
  start(g, id);
  if (o.detach) return 0;
  const { NativeEngine } = await import('../engine/native');
  const code = await new NativeEngine().waitPid(r.pid);
  await del(g, id, true);
  return code;
}

function list(g: Globals, format: string): number {
  const ids = existsSync(g.root) ? readdirSync(g.root).filter((d) => existsSync(join(g.root, d, 'state.json'))) : [];
  const recs = ids.map((id) => readRecord(g, id));
  if (format === 'json') { process.stdout.write(`${JSON.stringify(recs.map((r) => ({ ociVersion: '1.2.0', id: r.id, pid: statusOf(r) === 'stopped' ? 0 : r.pid, status: statusOf(r), bundle: r.bundle, rootfs: r.rootfs, created: r.created, owner: 'root' })))}\n`); return 0; }
  const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], ...recs.map((r) => [r.id, String(statusOf(r) === 'stopped' ? 0 : r.pid), statusOf(r), r.bundle, r.created, 'root'])];
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((x) => x[i]!.length)));
  process.stdout.write(rows.map((x) => x.map((c, i) => c.padEnd(w[i]!)).join('   ').trimEnd()).join('\n') + '\n');
  return 0;
}

/** What this runtime can do, as `runc features` prints it (containerd's go-runc reads it). */
function features(): number {
  const caps = ['CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF', 'CHECKPOINT_RESTORE'].map((c) => `CAP_${c}`);
  const f = {
    ociVersionMin: '1.0.0', ociVersionMax: '1.2.0', hooks: [],
    mountOptions: ['bind', 'rbind', 'ro', 'rw', 'nosuid', 'nodev', 'noexec', 'suid', 'dev', 'exec', 'noatime', 'relatime', 'strictatime', 'private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave', 'unbindable', 'runbindable'],
    linux: {
      namespaces: ['cgroup', 'ipc', 'mount', 'network', 'pid', 'time', 'user', 'uts'], capabilities: caps,
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false },
      seccomp: { enabled: true, actions: ['SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_LOG'], operators: ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'], archs: ['SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'] },
      apparmor: { enabled: false }, selinux: { enabled: false },
    },
    annotations: { 'org.opencontainers.runtime-spec.features.sandbox': 'sandbox-runtime' },
  };
  process.stdout.write(`${JSON.stringify(f, null, 2)}\n`);
  return 0;
}

/** process.consoleSize of config.json ({height, width}), which the terminal gets before it is sent. */
function consoleSize(text: string): { rows: number; cols: number } | undefined {
  try {
    const c = (JSON.parse(text) as { process?: { consoleSize?: { height?: unknown; width?: unknown } } }).process?.consoleSize;
    return typeof c?.height === 'number' && typeof c.width === 'number' ? { rows: c.height, cols: c.width } : undefined;
  } catch { return undefined; }
}

/** A warning of the adapter, or an error: to --log as JSON lines when asked (containerd reads the
 * last error there), and to stderr. */
function note(g: Globals, text: string): void {
  process.stderr.write(text);
  if (g.log && g.logFormat === 'json') for (const line of text.split('\n').filter((l) => / (error|warning): /.test(l))) logLine(g, line.includes(' error: ') ? 'error' : 'warning', line);
}

/** A warning of the runtime itself: on stderr, and on --log. */
function warn(g: Globals, msg: string): void {
  process.stderr.write(`sandbox-runtime: warning: ${msg}\n`);
  logLine(g, 'warning', msg);
}

export function logLine(g: Globals, level: 'error' | 'warning', msg: string): void {
  if (!g.log) return;
  const line = g.logFormat === 'json' ? JSON.stringify({ level: level === 'warning' ? 'warning' : 'error', msg, time: new Date().toISOString() }) : `time="${new Date().toISOString()}" level=${level} msg=${JSON.stringify(msg)}`;
  try { appendFileSync(g.log, `${line}\n`); } catch { /* the log is the caller's; stderr has it too */ }
}

export const COMMANDS = { create, start, kill, del, run, list, features, stateJson, readRecord };
export { probe, procStat, type Record_ };
export { VERSION };
