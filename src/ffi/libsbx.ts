// koffi declarations of native/include/sbx.h's functions: the one place Node touches libsbx.
// Loaded lazily by the native engine; only src/engine imports this module. The constants and the
// struct layouts come from ./generated/abi, which the build generates from the header.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ABI_VERSION, CHILD_FIELDS, CHILD_SIZE, ERROR_FIELDS, ERROR_SIZE, type Field } from './generated/abi';

export interface SbxError { err: number; step: number; message: string }
export interface SbxChild { pid: number; events_fd: number; sync_fd: number; in_cgroup: number; spawn_ns: bigint }

export interface LibSbx {
  spawn(ops: Buffer, nops: number, strings: Buffer, cloneFlags: bigint, cgroupFd: number): SbxChild;
  /** A restart: the next child, in the cgroup of those cgroup.procs files and the held user and network namespaces (fds, or -1). */
  respawn(ops: Buffer, nops: number, strings: Buffer, cloneFlags: bigint, cgroupProcs: string[], usernsFd: number, netnsFd: number): SbxChild;
  wait(pid: number): Promise<number>;
  /** The raw wait status if pid has exited (and is reaped now), else undefined; never blocks. */
  tryWait(pid: number): number | undefined;
  /** A close-on-exec pipe: [read end, write end]. */
  pipe(): [number, number];
  setWinsize(fd: number, rows: number, cols: number): void;
  /** The terminal master the child sends after its console op. */
  recvFd(sock: number): number;
  /** sandbox-runtime's --console-socket: fd sent over the unix socket at path (SCM_RIGHTS), with name. */
  sendFd(path: string, fd: number, name: string): void;
  /** A user-space port forwarder on its own thread; stop() ends it. */
  forward(udp: boolean, listenIp: string, listenPort: number, targetIp: string, targetPort: number, netnsFd: number): { port: number; stop(): void };
  /** For the image unpacker: an overlayfs whiteout at path, and an xattr set without following a final symlink. */
  whiteout(path: string): void;
  lsetxattr(path: string, name: string, value: Buffer): void;
  /** For sandbox-runtime's create: the fifo the created process waits on for start. */
  mkfifo(path: string, mode: number): void;
  /** The child's events read into buf on koffi's worker thread, until the child waits on this
   * process (exec's start), EOF ('end'), cancelFd can be read ('cancelled'), or buf is full. */
  readEvents(fd: number, cancelFd: number, buf: Buffer): Promise<{ len: number; state: 'more' | 'end' | 'cancelled' }>;
  /** Replaces this process with path (argv, envp), keeping its pid: returns only by throwing. */
  execve(path: string, argv: readonly string[], envp: readonly string[]): never;
  /** A seccomp filter's text program (src/model/seccomp.ts) compiled to BPF by libseccomp, in this process. */
  seccompCompile(program: string): Buffer;
  /** libseccomp's version, as major.minor.micro: compiled filters are cached under it. */
  seccompVersion(): string;
  /** The kernel's Landlock ABI version, 0 where it has none. */
  landlockAbi(): number;
  /** The egress attestation's probes, run from inside pid's network namespace (and user namespace,
   * when asked) by a helper libsbx forks, on koffi's worker thread: n struct sbx_probe in probes,
   * n struct sbx_probe_result written into results (src/engine/netprobe.ts encodes and reads them). */
  netprobe(pid: number, joinUserns: boolean, probes: Buffer, n: number, results: Buffer): Promise<void>;
  /** The attestation's facts of pid (its /proc files, ns links, fd flags, and what each of paths
   * is inside its root), as sbx_proc_facts's records (src/engine/attest.ts decodes them). */
  procFacts(pid: number, want: number, paths: readonly string[]): Buffer;
}

export class NativeError extends Error {
  constructor(message: string, readonly errno: number) { super(message); }
}

let loaded: LibSbx | undefined;

/** Where the library is: SANDBOX_LIBSBX, or native/build next to this package. */
export function libraryPath(): string {
  return process.env.SANDBOX_LIBSBX ?? join(__dirname, '..', 'native', 'build', 'libsbx.so');
}

/**
 * koffi's native module. koffi's own entry point finds it by reading the ELF headers of node's
 * binary (to tell glibc from musl) and wraps it in deprecation shims: 5-10 ms of every `up`, more
 * than loading the module itself. Where node runs on glibc (its process maps libc.so.6), the glibc
 * build of the same koffi release is required directly; anywhere else, or when that build is not
 * there, koffi's entry point chooses.
 */
function koffiModule(): typeof import('koffi') {
  if (process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64')) {
    try {
      const glibc = /\/libc\.so\.6$/m.test(readFileSync('/proc/self/maps', 'latin1'));
      const pkg = `@koromix/koffi-linux-${process.arch}`;
      const native = glibc ? require(require.resolve(`${pkg}/linux_${process.arch}/koffi.node`)) as typeof import('koffi') & { version?: string } : undefined;
      if (native && native.version === (require(`${pkg}/package.json`) as { version: string }).version) return native;
    } catch { /* not installed this way: koffi's entry finds it */ }
  }
  return require('koffi') as typeof import('koffi');
}

export function loadLibSbx(): LibSbx {
  if (loaded) return loaded;
  const path = libraryPath();
  if (!existsSync(path)) throw new NativeError(`${path} does not exist`, 2);
  const koffi = koffiModule();
  const lib = koffi.load(path);
  checkLibrary(koffi, lib, path);
  const f = declare(koffi, lib);
  loaded = { ...processCalls(f), ...hostCalls(f) };
  return loaded;
}

type Koffi = typeof import('koffi');
type Declared = ReturnType<typeof declare>;

/** The library's ABI is this package's, and koffi lays out its structs as the C compiler did. */
function checkLibrary(koffi: Koffi, lib: ReturnType<Koffi['load']>, path: string): void {
  // The header's structs, field by field; a char array reads as a string. koffi lays them out by
  // C rules itself, and its layout must be the compiler's, or every call would misread them.
  const struct = (name: string, size: number, fields: Record<string, Field>) => {
    const t = koffi.struct(name, Object.fromEntries(Object.entries(fields).map(([n, f]) => [n, f.count > 1 ? koffi.array(f.type, f.count, f.type === 'char' ? 'String' : 'Array') : f.type])));
    const bad = koffi.sizeof(t) !== size || Object.entries(fields).some(([n, f]) => koffi.offsetof(t, n) !== f.offset);
    if (bad) throw new NativeError(`koffi lays out struct ${name} unlike the C compiler; rebuild with npm run build`, 22);
    return t;
  };
  struct('sbx_error', ERROR_SIZE, ERROR_FIELDS);
  struct('sbx_child', CHILD_SIZE, CHILD_FIELDS);
  const version = lib.func('int sbx_abi_version(void)')() as number;
  if (version !== ABI_VERSION) throw new NativeError(`${path} has ABI ${version}, and this sandbox needs ${ABI_VERSION}; rebuild it with npm run build`, 22);
}

/** Each function of sbx.h that the package calls, by its C prototype. */
function declare(koffi: Koffi, lib: ReturnType<Koffi['load']>) {
  koffi.opaque('sbx_forwarder');
  return {
    spawn: lib.func('int sbx_spawn(const void *ops, uint32_t nops, const void *strings, uint32_t len, uint64_t flags, int32_t cgroup, _Out_ sbx_child *out, _Out_ sbx_error *err)'),
    respawn: lib.func('int sbx_respawn(const void *ops, uint32_t nops, const void *strings, uint32_t len, uint64_t flags, const void *procs, int32_t userns, int32_t netns, _Out_ sbx_child *out, _Out_ sbx_error *err)'),
    wait: lib.func('int sbx_wait(int32_t pid, _Out_ int32_t *status, _Out_ sbx_error *err)'),
    tryWait: lib.func('int sbx_try_wait(int32_t pid, _Out_ int32_t *status, _Out_ int32_t *done, _Out_ sbx_error *err)'),
    pipe: lib.func('int sbx_pipe(_Out_ int32_t *rd, _Out_ int32_t *wr, _Out_ sbx_error *err)'),
    winsize: lib.func('int sbx_set_winsize(int32_t fd, uint16_t rows, uint16_t cols, _Out_ sbx_error *err)'),
    recvFd: lib.func('int sbx_recv_fd(int32_t sock, _Out_ int32_t *fd, _Out_ sbx_error *err)'),
    sendFd: lib.func('int sbx_send_fd(const char *path, int32_t fd, const char *name, _Out_ sbx_error *err)'),
    fwdStart: lib.func('int sbx_forward_start(int32_t udp, const char *lip, int32_t lport, const char *tip, int32_t tport, int32_t netns, _Out_ sbx_forwarder **out, _Out_ int32_t *port, _Out_ sbx_error *err)'),
    fwdStop: lib.func('int sbx_forward_stop(sbx_forwarder *f)'),
    whiteout: lib.func('int sbx_whiteout(const char *path, _Out_ sbx_error *err)'),
    mkfifo: lib.func('int sbx_mkfifo(const char *path, uint32_t mode, _Out_ sbx_error *err)'),
    readEvents: lib.func('int sbx_read_events(int32_t fd, int32_t cancel_fd, void *buf, uint32_t cap, _Out_ uint32_t *len, _Out_ int32_t *state, _Out_ sbx_error *err)'),
    execve: lib.func('int sbx_execve(const char *path, const char **argv, const char **envp, _Out_ sbx_error *err)'),
    lsetxattr: lib.func('int sbx_lsetxattr(const char *path, const char *name, const void *value, uint32_t len, _Out_ sbx_error *err)'),
    seccompVersion: lib.func('int sbx_seccomp_version(void)'),
    landlockAbi: lib.func('int sbx_landlock_abi(void)'),
    seccompCompile: lib.func('int sbx_seccomp_compile(const char *program, _Out_ uint8_t *out, uint32_t cap, _Out_ uint32_t *len, _Out_ sbx_error *err)'),
    netprobe: lib.func('int sbx_netprobe(int32_t pid, int32_t userns, const void *probes, uint32_t n, void *results, _Out_ sbx_error *err)'),
    procFacts: lib.func('int sbx_proc_facts(int32_t pid, uint32_t want, const char *paths, void *out, uint32_t cap, _Out_ uint32_t *len, _Out_ sbx_error *err)'),
  };
}

/** A call's status: 0, or the struct sbx_error it filled, thrown. */
const check = (r: number, e: SbxError) => { if (r !== 0) throw new NativeError(e.message, e.err); };

/** A blocking call on koffi's worker thread, never on the event loop; resolves once it returns 0. */
function onWorker(fn: Declared[keyof Declared], args: unknown[], err: SbxError): Promise<void> {
  return new Promise((resolve, reject) => {
    fn.async(...args, err, (e: unknown, r: number) => {
      if (e) reject(e);
      else if (r !== 0) reject(new NativeError(err.message, err.err));
      else resolve();
    });
  });
}

/** The sandbox's processes: its clone, waits, descriptors and terminal, and this process's exec. */
function processCalls(f: Declared): Pick<LibSbx, 'spawn' | 'respawn' | 'wait' | 'tryWait' | 'pipe' | 'readEvents' | 'setWinsize' | 'recvFd' | 'sendFd' | 'execve'> {
  return {
    spawn(ops, nops, strings, flags, cgroupFd) {
      const out = {} as SbxChild, err = {} as SbxError;
      check(f.spawn(ops, nops, strings, strings.length, flags, cgroupFd, out, err) as number, err);
      return out;
    },
    respawn(ops, nops, strings, flags, procs, userns, netns) {
      const out = {} as SbxChild, err = {} as SbxError;
      // A NUL-separated list that ends with an empty string.
      const list = Buffer.from(procs.map((p) => `${p}\0`).join('') + '\0');
      check(f.respawn(ops, nops, strings, strings.length, flags, list, userns, netns, out, err) as number, err);
      return out;
    },
    // waitpid blocks.
    async wait(pid) { const status = [0]; await onWorker(f.wait, [pid, status], {} as SbxError); return status[0]!; },
    tryWait(pid) { const status = [0], done = [0], err = {} as SbxError; check(f.tryWait(pid, status, done, err) as number, err); return done[0] ? status[0]! : undefined; },
    pipe() { const rd = [0], wr = [0], err = {} as SbxError; check(f.pipe(rd, wr, err) as number, err); return [rd[0]!, wr[0]!]; },
    async readEvents(fd, cancelFd, buf) {
      const len = [0], state = [0];
      await onWorker(f.readEvents, [fd, cancelFd, buf, buf.length, len, state], {} as SbxError);
      return { len: len[0]!, state: state[0] === 1 ? 'end' : state[0] === 2 ? 'cancelled' : 'more' };
    },
    setWinsize(fd, rows, cols) { const err = {} as SbxError; check(f.winsize(fd, rows, cols, err) as number, err); },
    recvFd(sock) { const fd = [0], err = {} as SbxError; check(f.recvFd(sock, fd, err) as number, err); return fd[0]!; },
    sendFd(path, fd, name) { const err = {} as SbxError; check(f.sendFd(path, fd, name, err) as number, err); },
    execve(path, argv, envp) { const err = {} as SbxError; check(f.execve(path, [...argv, null], [...envp, null], err) as number, err); throw new NativeError('execve returned', 0); },
  };
}

/** The host's side: image files, seccomp, Landlock, the attestation's reads and probes, port forwarders. */
function hostCalls(f: Declared): Omit<LibSbx, keyof ReturnType<typeof processCalls>> {
  return {
    whiteout(path) { const err = {} as SbxError; check(f.whiteout(path, err) as number, err); },
    mkfifo(path, mode) { const err = {} as SbxError; check(f.mkfifo(path, mode, err) as number, err); },
    lsetxattr(path, name, value) { const err = {} as SbxError; check(f.lsetxattr(path, name, value, value.length, err) as number, err); },
    seccompVersion() { const v = f.seccompVersion() as number; return `${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}`; },
    landlockAbi() { return f.landlockAbi() as number; },
    seccompCompile(program) {
      // A BPF program has at most 4096 instructions of 8 bytes.
      const out = Buffer.alloc(4096 * 8), len = [0], err = {} as SbxError;
      check(f.seccompCompile(program, out, out.length, len, err) as number, err);
      return out.subarray(0, len[0]!);
    },
    // Up to the sum of the probes' timeouts.
    netprobe(pid, joinUserns, probes, n, results) { return onWorker(f.netprobe, [pid, joinUserns ? 1 : 0, probes, n, results], {} as SbxError); },
    procFacts(pid, want, paths) {
      // A NUL-separated list that ends with an empty string.
      const list = Buffer.from(`${paths.map((p) => `${p}\0`).join('')}\0`);
      // A sandbox's parsed facts fit in 16 KiB but for a large mount table (a shared mount
      // namespace): then again with the size libsbx asked for.
      for (let cap = 16 * 1024; ; ) {
        const out = Buffer.allocUnsafe(cap), len = [0], err = {} as SbxError;
        const r = f.procFacts(pid, want, list, out, cap, len, err) as number;
        if (r === 0) return out.subarray(0, len[0]!);
        if (err.err !== 34 /* ERANGE */ || len[0]! <= cap) throw new NativeError(err.message, err.err);
        cap = len[0]! + 4096;
      }
    },
    forward(udp, lip, lport, tip, tport, netns) {
      const out = [null], port = [0], err = {} as SbxError;
      check(f.fwdStart(udp ? 1 : 0, lip, lport, tip, tport, netns, out, port, err) as number, err);
      let handle: unknown = out[0];
      return { port: port[0]!, stop: () => { if (handle) { f.fwdStop(handle); handle = null; } } };
    },
  };
}
