// Plan → the child's program: fixed-size ops (struct sbx_op) and a string arena, encoded in the
// CLI process before the clone. Which steps the child applies is the plan's (plan/steps.ts places
// every kind once): each child kind has its encoder in the table below, which the compiler checks
// covers them all; a host step (state folder, cgroup, id maps, the network's host side) makes none.
import type { MountFlag, NsName, Propagation } from '../model/types';
import type { Plan, Step, StepOf } from '../plan/types';
import { isChildStep, SIDE, type ChildKind } from '../plan/steps';
import { capabilityNumber, RLIMITS } from '../model/tables';
import { F_FAIL, F_FILE, F_FORK_PARENT, F_PAUSE, F_STDIN, F_STDIO, F_WAIT_START, OP, OP_OFFSET, OP_SIZE } from '../ffi/generated/abi';
import { ipToInt, parseSubnet } from '../model/ip';

const MS = { RDONLY: 1, NOSUID: 2, NODEV: 4, NOEXEC: 8, NOATIME: 1024, RELATIME: 1 << 21, STRICTATIME: 1 << 24, REC: 16384, UNBINDABLE: 1 << 17, PRIVATE: 1 << 18, SLAVE: 1 << 19, SHARED: 1 << 20 };
const FLAG_BITS: Record<MountFlag, number> = { nosuid: MS.NOSUID, nodev: MS.NODEV, noexec: MS.NOEXEC, noatime: MS.NOATIME, relatime: MS.RELATIME, strictatime: MS.STRICTATIME };
/** mknod's file types (S_IFCHR, S_IFBLK, S_IFIFO). */
const NODE_TYPE = { c: 0o020000, b: 0o060000, p: 0o010000 } as const;
const PROPAGATION: Record<Propagation, number> = { private: MS.PRIVATE, rprivate: MS.PRIVATE | MS.REC, shared: MS.SHARED, rshared: MS.SHARED | MS.REC, slave: MS.SLAVE, rslave: MS.SLAVE | MS.REC, unbindable: MS.UNBINDABLE, runbindable: MS.UNBINDABLE | MS.REC };

export const CLONE = { NEWNS: 0x20000, NEWCGROUP: 0x2000000, NEWUTS: 0x4000000, NEWIPC: 0x8000000, NEWUSER: 0x10000000, NEWPID: 0x20000000, NEWNET: 0x40000000, NEWTIME: 0x80 } as const;
const NS_FLAG: Record<NsName, number> = { user: CLONE.NEWUSER, pid: CLONE.NEWPID, mount: CLONE.NEWNS, uts: CLONE.NEWUTS, ipc: CLONE.NEWIPC, net: CLONE.NEWNET, cgroup: CLONE.NEWCGROUP, time: CLONE.NEWTIME };
export const RESTART = { no: 0, 'on-failure': 1, always: 2 } as const;
/** Test-only: the kinds that SANDBOX_TEST_CORRUPT leaves undone (a note in their place). */
const SKIPPED_WHEN_CORRUPT = new Set<Step['kind']>(['nnp', 'seccomp', 'mount.readonly', 'mount.mask', 'mount.root-readonly', 'dev.node', 'mount.link', 'net.loopback', 'mount.devpts', 'dev.links']);

export interface ProgramInput {
  plan: Plan;
  /** The folder that becomes the new root (inside the state folder). */
  rootDir: string;
  /** Numeric ids, resolved from names in the root filesystem's /etc/passwd and /etc/group. */
  uid: number;
  gid: number;
  groups: number[];
  /** Bind sources that are files rather than folders. */
  fileSources: ReadonlySet<string>;
  /** Give the command a terminal made in its own devpts. */
  tty: boolean;
  /** The address leased for a private network. */
  address?: string;
  /** An image's overlayfs options (lowerdir=…[,upperdir=…,workdir=…]), made by the engine from the store. */
  overlay?: string;
  failAt?: string;
  /** Test-only: apply this step wrongly (SANDBOX_TEST_CORRUPT), so that the attestation must catch it. */
  corruptAt?: string;
  /** Test-only: the child stops itself (SIGSTOP) before this step, until it gets a SIGCONT. */
  pauseAt?: string;
  /** Compiles a seccomp filter's text program to BPF (libseccomp, in the CLI process). */
  compileSeccomp(program: string): Buffer;
  /** init: true: the host path of the static sbx-init, which the child copies into a sealed memfd. */
  init?: string;
  /** The program of a restart (sbx_respawn): the child joins the sandbox's user and network
   * namespaces, held since the first run, where the loopback and the address persist; their
   * steps are reported, with nothing to do. Everything else runs again as the first run did. */
  restart?: boolean;
  /** The library's stdio (src/api): fds of this process that become the child's 0, 1, 2 (-1: the
   * process's own, inherited as the CLI's are). */
  stdio?: readonly [number, number, number];
  /** sandbox-runtime create: the host path of the fifo the child waits on before its exec, until
   * `start` writes to it (SBX_F_WAIT_START). */
  startFifo?: string;
  /** sandbox-runtime exec: the fork into the joined pid namespace leaves no relay; the command is
   * this process's own child (SBX_F_FORK_PARENT), as runc's exec makes it. */
  forkParent?: boolean;
}

export interface Program { ops: Buffer; nops: number; strings: Buffer; cloneFlags: bigint; childSteps: Set<string> }

export class UnsupportedStep extends Error {
  constructor(readonly step: Step, why: string) { super(why); }
}

/** The fields of one op; the string fields are offsets into the arena (0: none). */
interface OpFields { flags?: number; mode?: number; a?: number | bigint; b?: number | bigint; s1?: number; s2?: number; s3?: number; s4?: number; stdio?: readonly [number, number, number] }

/** The program as it is written: the op records in order and the arena their strings point into. */
class ProgramWriter {
  private readonly strings: Buffer[] = [];
  private strLen = 0;
  private readonly records: Buffer[] = [];
  private readonly childSteps = new Set<string>();
  cloneFlags = 0n;

  constructor(readonly input: ProgramInput) {}

  /** A NUL-terminated string in the arena; its offset plus one (0 stands for none). */
  str(s: string | undefined): number {
    if (s === undefined) return 0;
    const b = Buffer.from(s + '\0');
    this.strings.push(b);
    this.strLen += b.length;
    return this.strLen - b.length + 1;
  }

  /** Binary data in the arena, 8-byte aligned (BPF instructions). */
  blob(b: Buffer): number {
    const gap = (8 - (this.strLen % 8)) % 8;
    if (gap) { this.strings.push(Buffer.alloc(gap)); this.strLen += gap; }
    this.strings.push(b);
    this.strLen += b.length;
    return this.strLen - b.length + 1;
  }

  /** A list of strings, each NUL-terminated, in one arena string. */
  list(items: string[]): number { return this.str(items.map((x) => x + '\0').join('') + ''); }

  op(step: Step, kind: number, o: OpFields = {}): void {
    const { input } = this;
    const r = Buffer.alloc(OP_SIZE);
    const index = input.plan.steps.indexOf(step);
    r.writeUInt32LE(kind, OP_OFFSET.kind);
    r.writeUInt32LE(index, OP_OFFSET.step);
    r.writeUInt32LE(((o.flags ?? 0) | (input.failAt === step.id ? F_FAIL : 0) | (input.pauseAt === step.id ? F_PAUSE : 0)) >>> 0, OP_OFFSET.flags);
    r.writeUInt32LE(o.mode ?? 0, OP_OFFSET.mode);
    r.writeBigInt64LE(BigInt(o.a ?? 0), OP_OFFSET.a);
    r.writeBigInt64LE(BigInt(o.b ?? 0), OP_OFFSET.b);
    r.writeUInt32LE(o.s1 ?? 0, OP_OFFSET.s1);
    r.writeUInt32LE(o.s2 ?? 0, OP_OFFSET.s2);
    r.writeUInt32LE(o.s3 ?? 0, OP_OFFSET.s3);
    r.writeUInt32LE(o.s4 ?? 0, OP_OFFSET.s4);
    o.stdio?.forEach((fd, i) => r.writeInt32LE(fd, OP_OFFSET.stdio + 4 * i));
    this.records.push(r);
    this.childSteps.add(step.id);
  }

  /** Mount flags; test-only, a corrupted step loses nosuid (SANDBOX_TEST_CORRUPT). */
  flagsOf(names: readonly MountFlag[], step?: Step): number {
    return names.reduce((f, n) => f | FLAG_BITS[n], 0) & ~(step && this.input.corruptAt === step.id ? MS.NOSUID : 0);
  }

  program(): Program {
    return { ops: Buffer.concat(this.records), nops: this.records.length, strings: Buffer.concat([...this.strings, Buffer.from('\0')]), cloneFlags: this.cloneFlags, childSteps: this.childSteps };
  }
}

export function encodeProgram(input: ProgramInput): Program {
  const w = new ProgramWriter(input);
  for (const step of input.plan.steps) {
    // Test-only: what SANDBOX_TEST_CORRUPT does to a step, so that the attestation must catch it.
    const corrupt = input.corruptAt === step.id;
    if (corrupt && SKIPPED_WHEN_CORRUPT.has(step.kind)) { w.op(step, OP.NOTE); continue; }
    if (!Object.hasOwn(SIDE, step.kind)) throw new UnsupportedStep(step, 'the native engine cannot apply this step');
    // Every new namespace's flag goes to libsbx, which leaves the cgroup and time ones out of the
    // clone (spawn.c): the child unshares those itself, by its op below.
    if (step.kind === 'ns.new') w.cloneFlags |= BigInt(NS_FLAG[step.args.type]);
    // A host step was applied by the CLI (engine/host-steps.ts) before the child goes on.
    if (isChildStep(step)) encodeStep(w, step, corrupt);
  }
  return w.program();
}

function encodeStep<K extends ChildKind>(w: ProgramWriter, step: StepOf<K>, corrupt: boolean): void {
  ENCODERS[step.kind](w, step, corrupt);
}

/** One encoder per kind the child applies; corrupt: test-only, apply it wrongly (SANDBOX_TEST_CORRUPT). */
type Encoders = { [K in ChildKind]: (w: ProgramWriter, step: StepOf<K>, corrupt: boolean) => void };

const tmpfsData = (a: { mode: number; sizeBytes?: number }) => [`mode=${a.mode.toString(8)}`, ...(a.sizeBytes ? [`size=${a.sizeBytes}`] : [])].join(',');
const note = (w: ProgramWriter, step: Step) => w.op(step, OP.NOTE);

const ENCODERS: Encoders = {
  // Namespaces and processes: a cgroup or time namespace unshared, one joined or entered by path.
  'ns.new': (w, s) => w.op(s, OP.UNSHARE, { a: NS_FLAG[s.args.type] }),
  'ns.join': (w, s) => {
    // A pid namespace applies to children only: sbx_spawn enters it on its own thread around the
    // clone (spawn.c), so that the child is born there; the child's own join is then a no-op.
    // A restart's clone is made by a helper process that does not.
    if (s.args.type === 'pid' && w.input.restart) throw new UnsupportedStep(s, 'a restarted sandbox cannot join a pid namespace by path');
    // mode 1: sbx_spawn enters it around the clone (not `sandbox exec`'s ns.enter, whose FORK op does).
    w.op(s, OP.JOIN_NS, { a: NS_FLAG[s.args.type], mode: s.args.type === 'pid' ? 1 : 0, s1: w.str(s.args.path) });
  },
  'ns.enter': (w, s) => w.op(s, OP.JOIN_NS, { a: NS_FLAG[s.args.type], s1: w.str(s.args.path) }),
  'proc.fork': (w, s) => w.op(s, OP.FORK, { flags: w.input.forkParent ? F_FORK_PARENT : 0 }),
  'console': (w, s) => w.op(s, OP.CONSOLE),
  // Network, the child's side. Shown in the plan and reported in order where nothing is to do.
  'net.none': note, 'net.host': note, 'net.joined': note,
  'net.loopback': (w, s) => w.op(s, w.input.restart ? OP.NOTE : OP.LOOPBACK_UP),
  'net.address': encodeAddress,
  // Mounts, in the new mount namespace.
  'mount.private': (w, s) => w.op(s, OP.MOUNT_PRIVATE),
  'mount.root': encodeRoot,
  'mount.netfile': (w, s) => w.op(s, OP.BIND, { flags: F_FILE | MS.NOSUID | MS.NODEV | MS.NOEXEC, s1: w.str(s.args.source), s2: w.str(s.args.target) }),
  'mount.bind': (w, s, corrupt) => {
    const a = s.args;
    w.op(s, OP.BIND, { flags: w.flagsOf(a.flags) | (w.input.fileSources.has(a.source) ? F_FILE : 0), a: a.readOnly !== corrupt ? 1 : 0, b: PROPAGATION[a.propagation ?? 'rprivate'], s1: w.str(a.source), s2: w.str(a.target) });
  },
  // A volume's data folder is always a folder, bound like a bind volume (never recursive: nothing is mounted in it).
  'mount.volume': (w, s, corrupt) => w.op(s, OP.BIND, { flags: w.flagsOf(s.args.flags), a: s.args.readOnly !== corrupt ? 1 : 0, b: PROPAGATION.rprivate, s1: w.str(s.args.source), s2: w.str(s.args.target) }),
  'mount.link': (w, s) => w.op(s, OP.SYMLINK, { s1: w.str(s.args.path), s2: w.str(s.args.target) }),
  'mount.proc': (w, s) => w.op(s, OP.MOUNT_FS, { flags: w.flagsOf(s.args.flags, s), s1: w.str('/proc'), s2: w.str('proc') }),
  'mount.dev': (w, s) => w.op(s, OP.MOUNT_FS, { flags: w.flagsOf(s.args.flags, s), s1: w.str('/dev'), s2: w.str('tmpfs'), s3: w.str(tmpfsData(s.args)) }),
  'mount.devpts': (w, s) => {
    w.op(s, OP.MOUNT_FS, { flags: MS.NOSUID | MS.NOEXEC, s1: w.str('/dev/pts'), s2: w.str('devpts'), s3: w.str(s.args.options) });
    w.op(s, OP.SYMLINK, { s1: w.str('/dev/ptmx'), s2: w.str('pts/ptmx') });
    if (w.input.tty) w.op(s, OP.CONSOLE);
  },
  // /dev/shm's source is named shm, as Docker's and runc's (what mountinfo and `df` show).
  'mount.tmpfs.dev': (w, s) => w.op(s, OP.MOUNT_FS, { flags: w.flagsOf(s.args.flags, s), s1: w.str(s.args.target), s2: w.str('tmpfs'), s3: w.str(tmpfsData(s.args)), s4: s.args.target === '/dev/shm' ? w.str('shm') : 0 }),
  'mount.mqueue': (w, s) => w.op(s, OP.MOUNT_FS, { flags: w.flagsOf(s.args.flags, s), s1: w.str(s.args.target), s2: w.str('mqueue') }),
  'mount.sys': (w, s) => w.op(s, OP.SYSFS, { a: s.args.fresh ? 1 : 0, s1: w.str('/sys') }),
  'mount.cgroup': encodeCgroupMount,
  'mount.tmpfs': (w, s) => w.op(s, OP.MOUNT_FS, { flags: w.flagsOf(s.args.flags, s) | (s.args.readOnly ? MS.RDONLY : 0), b: s.args.propagation ? PROPAGATION[s.args.propagation] : 0, s1: w.str(s.args.target), s2: w.str('tmpfs'), s3: w.str(tmpfsData(s.args)) }),
  'mount.pivot': (w, s) => w.op(s, OP.PIVOT),
  'mount.mask': (w, s) => w.op(s, OP.MASK, { s1: w.str(s.args.path) }),
  'mount.readonly': (w, s) => w.op(s, OP.READONLY, { s1: w.str(s.args.path) }),
  'mount.root-readonly': (w, s) => w.op(s, OP.ROOT_READONLY),
  'mount.root-propagation': (w, s) => w.op(s, OP.ROOT_PROPAGATION, { a: PROPAGATION[s.args.propagation] }),
  'mount.workdir': (w, s) => w.op(s, OP.WORKDIR, { s1: w.str(s.args.path) }),
  'sysctl': (w, s) => w.op(s, OP.SYSCTL, { s1: w.str(s.args.name), s2: w.str(s.args.value) }),
  // Devices.
  'dev.node': (w, s) => w.op(s, OP.DEV_NODE, { s1: w.str(`/dev/${s.args.name}`), s2: w.str(`/dev/${s.args.name}`) }),
  'dev.links': (w, s) => {
    for (const [l, t] of [['/dev/fd', '/proc/self/fd'], ['/dev/stdin', '/proc/self/fd/0'], ['/dev/stdout', '/proc/self/fd/1'], ['/dev/stderr', '/proc/self/fd/2']]) w.op(s, OP.SYMLINK, { s1: w.str(l), s2: w.str(t) });
  },
  'dev.bind': (w, s) => w.op(s, OP.DEV_NODE, { s1: w.str(s.args.source), s2: w.str(s.args.target) }),
  'dev.make': (w, s) => {
    const a = s.args;
    w.op(s, OP.DEV_MAKE, { s1: w.str(a.target), mode: NODE_TYPE[a.type] | a.mode, a: BigInt(a.major) | (BigInt(a.uid) << 32n), b: BigInt(a.minor) | (BigInt(a.gid) << 32n) });
  },
  // Identity: the numeric ids the engine resolved in the root filesystem.
  'hostname': (w, s) => w.op(s, OP.HOSTNAME, { s1: w.str(s.args.hostname) }),
  'user.groups': (w, s, corrupt) => w.op(s, OP.GROUPS, { s1: w.list([...w.input.groups, ...(corrupt ? [4242] : [])].map(String)) }),
  'user.ids': (w, s, corrupt) => w.op(s, OP.IDS, { a: w.input.uid + (corrupt ? 1 : 0), b: w.input.gid }),
  'umask': (w, s, corrupt) => w.op(s, OP.UMASK, { mode: s.args.umask ^ (corrupt ? 0o077 : 0) }),
  // Security: the bounding set is dropped by caps.apply; cap.keep and cap.drop only say what it holds.
  'rlimit': encodeRlimit,
  'cap.keep': note, 'cap.drop': note, 'nnp.off': note, 'seccomp.off': note,
  'caps.apply': (w, s, corrupt) => {
    const mask = (caps: string[]) => caps.reduce((m, c) => m | (1n << BigInt(capabilityNumber(c))), 0n);
    const sets = s.args.sets;
    if (!sets) { w.op(s, OP.CAPS, { a: mask(s.args.bounding) ^ (corrupt ? 1n : 0n), b: mask(s.args.ambient) }); return; }
    // The exact sets: mode 1, b the ambient set, s1 the inheritable one (8 bytes in the arena).
    const inh = Buffer.alloc(8);
    inh.writeBigUInt64LE(mask(sets.inheritable));
    w.op(s, OP.CAPS, { mode: 1, a: mask(s.args.bounding) ^ (corrupt ? 1n : 0n), b: mask(sets.ambient), s1: w.blob(inh) });
  },
  'nnp': (w, s) => w.op(s, OP.NNP),
  'seccomp': (w, s) => {
    const bpf = w.input.compileSeccomp(`${s.args.program.join('\n')}\n`);
    w.op(s, OP.SECCOMP, { s1: w.blob(bpf), a: bpf.length });
  },
  // The path rules as a Landlock ruleset (native/src/landlock.c): read-only paths, writable ones, and the probe.
  'landlock': (w, s) => {
    const paths = (a: 'ro' | 'rw') => w.list(s.args.rules.filter((r) => r.access === a).map((r) => r.path));
    // The network and scope part (ABI 4 and 6): handled rights, scopes, then the allowed ports.
    const { net, scoped } = s.args;
    const netList = net || scoped ? w.list([`n${net?.handled ?? 0}`, `s${scoped ?? 0}`, ...(net?.connect ?? []).map((p) => `c${p}`), ...(net?.bind ?? []).map((p) => `b${p}`)]) : 0;
    w.op(s, OP.LANDLOCK, { a: s.args.handled, b: s.args.readOnly, mode: s.args.abi, s1: paths('ro'), s2: paths('rw'), s3: w.str(s.args.probe), s4: netList });
  },
  // Exec.
  'fds.close': (w, s) => w.op(s, OP.CLOSE_FDS),
  'exec': encodeExec,
};

function encodeAddress(w: ProgramWriter, s: StepOf<'net.address'>): void {
  if (w.input.restart) { w.op(s, OP.NOTE); return; }
  if (!w.input.address) throw new UnsupportedStep(s, 'no address was leased for the private network');
  const be = (ip: string) => { const b = Buffer.alloc(4); b.writeUInt32BE(ipToInt(ip)); return b.readUInt32LE(); };
  w.op(s, OP.NET_IFUP, { s1: w.str(s.args.interface), a: be(w.input.address), b: be(s.args.gateway), mode: parseSubnet(s.args.subnet).prefix });
}

function encodeRoot(w: ProgramWriter, s: StepOf<'mount.root'>): void {
  const a = s.args, { input } = w;
  if (a.fstype === 'tmpfs') w.op(s, OP.ROOT_TMPFS, { s1: w.str(input.rootDir) });
  else if (a.fstype === 'bind') w.op(s, OP.ROOT_BIND, { s1: w.str(input.rootDir), s2: w.str(a.source) });
  else if (input.overlay) {
    // overlayfs takes its options in one page: about 40 layers with the store's path lengths.
    if (input.overlay.length > 4000) throw new UnsupportedStep(s, `the image has too many layers for one overlayfs mount (${a.layers?.length ?? 0})`);
    w.op(s, OP.ROOT_OVERLAY, { s1: w.str(input.rootDir), s2: w.str(input.overlay) });
  } else throw new UnsupportedStep(s, 'the image is not in the store: sandbox up pulls it first (or run sandbox pull)');
}

/** The sandbox's own cgroup, read-only: cgroup2 on v2; on v1 a tmpfs with one hierarchy a folder. */
function encodeCgroupMount(w: ProgramWriter, s: StepOf<'mount.cgroup'>): void {
  const ro = MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC;
  if (s.args.layout === 'v2') { w.op(s, OP.MOUNT_FS, { flags: ro, s1: w.str('/sys/fs/cgroup'), s2: w.str('cgroup2') }); return; }
  w.op(s, OP.MOUNT_FS, { flags: MS.NOSUID | MS.NODEV | MS.NOEXEC, s1: w.str('/sys/fs/cgroup'), s2: w.str('tmpfs'), s3: w.str('mode=755') });
  for (const c of s.args.controllers) w.op(s, OP.MOUNT_FS, { flags: ro, s1: w.str(`/sys/fs/cgroup/${c}`), s2: w.str('cgroup'), s3: w.str(c) });
  w.op(s, OP.READONLY, { s1: w.str('/sys/fs/cgroup') });
}

function encodeRlimit(w: ProgramWriter, s: StepOf<'rlimit'>, corrupt: boolean): void {
  const resource = Object.hasOwn(RLIMITS, s.args.name) ? RLIMITS[s.args.name] : undefined;
  if (resource === undefined) throw new UnsupportedStep(s, `${s.args.name} is not a resource limit this engine knows`);
  const { soft, hard } = s.args;
  w.op(s, OP.RLIMIT, { mode: resource, a: corrupt ? (soft > 0 ? soft - 1 : hard > 1 || hard === -1 ? 1 : 0) : soft, b: hard });
}

function encodeExec(w: ProgramWriter, s: StepOf<'exec'>): void {
  const a = s.args;
  if (a.init && !w.input.init) throw new UnsupportedStep(s, 'init: true needs sbx-init, which was not built (npm run build)');
  const fifo = w.input.startFifo;
  // The library's pipes (src/api): the child's ends, by their numbers in this process; a stdin
  // given so is the command's, whatever stdin_open says.
  const io = w.input.stdio;
  const stdin = a.stdin || (io !== undefined && io[0] >= 0);
  w.op(s, OP.EXEC, { flags: (stdin ? F_STDIN : 0) | (fifo ? F_WAIT_START : 0) | (io ? F_STDIO : 0), stdio: io, b: fifo ? w.str(fifo) : 0, a: a.init ? 1 : 0, s1: w.list(a.args), s2: w.list(a.env), s3: w.str(a.cwd), s4: a.init ? w.str(w.input.init) : 0 });
}
