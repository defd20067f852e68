// Plan → the child's program: fixed-size ops (struct sbx_op) and a string arena, encoded in the
// CLI process before the clone. Every kind of step is placed here: a child step becomes ops, a
// host step (state folder, cgroup, id maps, the network's host side) none, and the compiler
// checks that the switch covers them all.
import type { MountFlag, NsName, Propagation } from '../model/types';
import type { Plan, Step } from '../plan/types';
import { capabilityNumber, RLIMITS } from '../model/tables';
import { F_FAIL, F_FILE, F_PAUSE, F_STDIN, OP, OP_OFFSET, OP_SIZE } from '../ffi/generated/abi';
import { ipToInt, parseSubnet } from '../model/ip';

const MS = { RDONLY: 1, NOSUID: 2, NODEV: 4, NOEXEC: 8, NOATIME: 1024, RELATIME: 1 << 21, REC: 16384, PRIVATE: 1 << 18, SLAVE: 1 << 19, SHARED: 1 << 20 };
const FLAG_BITS: Record<MountFlag, number> = { nosuid: MS.NOSUID, nodev: MS.NODEV, noexec: MS.NOEXEC, noatime: MS.NOATIME, relatime: MS.RELATIME };
const PROPAGATION: Record<Propagation, number> = { private: MS.PRIVATE, rprivate: MS.PRIVATE | MS.REC, shared: MS.SHARED, rshared: MS.SHARED | MS.REC, slave: MS.SLAVE, rslave: MS.SLAVE | MS.REC };

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
}

export interface Program { ops: Buffer; nops: number; strings: Buffer; cloneFlags: bigint; childSteps: Set<string> }

export class UnsupportedStep extends Error {
  constructor(readonly step: Step, why: string) { super(why); }
}

export function encodeProgram(input: ProgramInput): Program {
  const { plan } = input;
  const strings: Buffer[] = [];
  let strLen = 0;
  const str = (s: string | undefined): number => {
    if (s === undefined) return 0;
    const b = Buffer.from(s + '\0');
    strings.push(b);
    strLen += b.length;
    return strLen - b.length + 1;
  };
  /** Binary data in the arena, 8-byte aligned (BPF instructions). */
  const blob = (b: Buffer): number => {
    const gap = (8 - (strLen % 8)) % 8;
    if (gap) { strings.push(Buffer.alloc(gap)); strLen += gap; }
    strings.push(b);
    strLen += b.length;
    return strLen - b.length + 1;
  };
  const list = (items: string[]) => str(items.map((x) => x + '\0').join('') + '');
  const records: Buffer[] = [];
  const childSteps = new Set<string>();
  let cloneFlags = 0n;

  const op = (step: Step, kind: number, o: { flags?: number; mode?: number; a?: number | bigint; b?: number | bigint; s1?: number; s2?: number; s3?: number; s4?: number } = {}) => {
    const r = Buffer.alloc(OP_SIZE);
    const index = plan.steps.indexOf(step);
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
    records.push(r);
    childSteps.add(step.id);
  };
  const flagsOf = (names: readonly MountFlag[], step?: Step) => names.reduce((f, n) => f | FLAG_BITS[n], 0) & ~(step && input.corruptAt === step.id ? MS.NOSUID : 0);
  const tmpfsData = (a: { mode: number; sizeBytes?: number }) => [`mode=${a.mode.toString(8)}`, ...(a.sizeBytes ? [`size=${a.sizeBytes}`] : [])].join(',');

  for (const step of plan.steps) {
    // Test-only: what SANDBOX_TEST_CORRUPT does to a step, so that the attestation must catch it.
    const corrupt = input.corruptAt === step.id;
    if (corrupt && SKIPPED_WHEN_CORRUPT.has(step.kind)) { op(step, OP.NOTE); continue; }
    switch (step.kind) {
      // Applied on the host by the engine (engine/host-steps.ts), before the child goes on.
      case 'state.create': case 'rootfs.host': case 'rootfs.dir': case 'rootfs.image': case 'image.note': case 'volume.create':
      case 'cgroup.create': case 'cgroup.set': case 'cgroup.attach': case 'idmap': case 'ns.host':
      case 'net.veth': case 'net.nat': case 'net.port': case 'net.usernet': case 'net.hosts': case 'net.resolv':
        break;
      case 'ns.new':
        cloneFlags |= BigInt(NS_FLAG[step.args.type]);
        if (step.args.type === 'cgroup' || step.args.type === 'time') op(step, OP.UNSHARE, { a: NS_FLAG[step.args.type] });
        break;
      case 'ns.join':
        if (step.args.type === 'pid') throw new UnsupportedStep(step, 'joining a pid namespace is not supported yet: it needs a second fork');
        if (step.args.type === 'mount') throw new UnsupportedStep(step, 'the mount namespace cannot be joined');
        op(step, OP.JOIN_NS, { a: NS_FLAG[step.args.type], s1: str(step.args.path) });
        break;
      case 'ns.enter': op(step, OP.JOIN_NS, { a: NS_FLAG[step.args.type], s1: str(step.args.path) }); break;
      case 'proc.fork': op(step, OP.FORK); break;
      case 'console': op(step, OP.CONSOLE); break;
      case 'net.loopback': op(step, input.restart ? OP.NOTE : OP.LOOPBACK_UP); break;
      case 'net.address': {
        if (input.restart) { op(step, OP.NOTE); break; }
        if (!input.address) throw new UnsupportedStep(step, 'no address was leased for the private network');
        const be = (ip: string) => { const b = Buffer.alloc(4); b.writeUInt32BE(ipToInt(ip)); return b.readUInt32LE(); };
        op(step, OP.NET_IFUP, { s1: str(step.args.interface), a: be(input.address), b: be(step.args.gateway), mode: parseSubnet(step.args.subnet).prefix });
        break;
      }
      case 'mount.netfile': op(step, OP.BIND, { flags: F_FILE | MS.NOSUID | MS.NODEV | MS.NOEXEC, s1: str(step.args.source), s2: str(step.args.target) }); break;
      // Shown in the plan and reported in order; nothing to do in the child.
      case 'net.none': case 'net.host': case 'net.joined': case 'cap.keep': case 'cap.drop': case 'nnp.off': case 'seccomp.off':
        op(step, OP.NOTE); break;
      case 'mount.private': op(step, OP.MOUNT_PRIVATE); break;
      case 'mount.root': {
        const a = step.args;
        if (a.fstype === 'tmpfs') op(step, OP.ROOT_TMPFS, { s1: str(input.rootDir) });
        else if (a.fstype === 'bind') op(step, OP.ROOT_BIND, { s1: str(input.rootDir), s2: str(a.source) });
        else if (input.overlay) {
          // overlayfs takes its options in one page: about 40 layers with the store's path lengths.
          if (input.overlay.length > 4000) throw new UnsupportedStep(step, `the image has too many layers for one overlayfs mount (${a.layers?.length ?? 0})`);
          op(step, OP.ROOT_OVERLAY, { s1: str(input.rootDir), s2: str(input.overlay) });
        } else throw new UnsupportedStep(step, 'the image is not in the store: sandbox up pulls it first (or run sandbox pull)');
        break;
      }
      case 'mount.bind': {
        const a = step.args;
        op(step, OP.BIND, { flags: flagsOf(a.flags) | (input.fileSources.has(a.source) ? F_FILE : 0), a: a.readOnly !== corrupt ? 1 : 0, b: PROPAGATION[a.propagation ?? 'rprivate'], s1: str(a.source), s2: str(a.target) });
        break;
      }
      case 'mount.volume': {
        // A volume's data folder is always a folder, bound like a bind volume (never recursive: nothing is mounted in it).
        const a = step.args;
        op(step, OP.BIND, { flags: flagsOf(a.flags), a: a.readOnly !== corrupt ? 1 : 0, b: PROPAGATION.rprivate, s1: str(a.source), s2: str(a.target) });
        break;
      }
      case 'mount.link': op(step, OP.SYMLINK, { s1: str(step.args.path), s2: str(step.args.target) }); break;
      case 'mount.proc': op(step, OP.MOUNT_FS, { flags: flagsOf(step.args.flags, step), s1: str('/proc'), s2: str('proc') }); break;
      case 'mount.dev': op(step, OP.MOUNT_FS, { flags: flagsOf(step.args.flags, step), s1: str('/dev'), s2: str('tmpfs'), s3: str(tmpfsData(step.args)) }); break;
      case 'dev.node': op(step, OP.DEV_NODE, { s1: str(`/dev/${step.args.name}`), s2: str(`/dev/${step.args.name}`) }); break;
      case 'mount.devpts':
        op(step, OP.MOUNT_FS, { flags: MS.NOSUID | MS.NOEXEC, s1: str('/dev/pts'), s2: str('devpts'), s3: str(step.args.options) });
        op(step, OP.SYMLINK, { s1: str('/dev/ptmx'), s2: str('pts/ptmx') });
        if (input.tty) op(step, OP.CONSOLE);
        break;
      case 'mount.tmpfs.dev': op(step, OP.MOUNT_FS, { flags: flagsOf(step.args.flags, step), s1: str(step.args.target), s2: str('tmpfs'), s3: str(tmpfsData(step.args)) }); break;
      case 'dev.links':
        for (const [l, t] of [['/dev/fd', '/proc/self/fd'], ['/dev/stdin', '/proc/self/fd/0'], ['/dev/stdout', '/proc/self/fd/1'], ['/dev/stderr', '/proc/self/fd/2']]) op(step, OP.SYMLINK, { s1: str(l), s2: str(t) });
        break;
      case 'dev.bind': op(step, OP.DEV_NODE, { s1: str(step.args.source), s2: str(step.args.target) }); break;
      case 'mount.sys': op(step, OP.SYSFS, { a: step.args.fresh ? 1 : 0, s1: str('/sys') }); break;
      case 'mount.cgroup': {
        const ro = MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC;
        if (step.args.layout === 'v2') { op(step, OP.MOUNT_FS, { flags: ro, s1: str('/sys/fs/cgroup'), s2: str('cgroup2') }); break; }
        op(step, OP.MOUNT_FS, { flags: MS.NOSUID | MS.NODEV | MS.NOEXEC, s1: str('/sys/fs/cgroup'), s2: str('tmpfs'), s3: str('mode=755') });
        for (const c of step.args.controllers) op(step, OP.MOUNT_FS, { flags: ro, s1: str(`/sys/fs/cgroup/${c}`), s2: str('cgroup'), s3: str(c) });
        op(step, OP.READONLY, { s1: str('/sys/fs/cgroup') });
        break;
      }
      case 'sysctl': op(step, OP.SYSCTL, { s1: str(step.args.name), s2: str(step.args.value) }); break;
      case 'mount.tmpfs': op(step, OP.MOUNT_FS, { flags: flagsOf(step.args.flags, step) | (step.args.readOnly ? MS.RDONLY : 0), s1: str(step.args.target), s2: str('tmpfs'), s3: str(tmpfsData(step.args)) }); break;
      case 'mount.pivot': op(step, OP.PIVOT); break;
      case 'mount.mask': op(step, OP.MASK, { s1: str(step.args.path) }); break;
      case 'mount.readonly': op(step, OP.READONLY, { s1: str(step.args.path) }); break;
      case 'mount.root-readonly': op(step, OP.ROOT_READONLY); break;
      case 'hostname': op(step, OP.HOSTNAME, { s1: str(step.args.hostname) }); break;
      case 'user.groups': op(step, OP.GROUPS, { s1: list([...input.groups, ...(corrupt ? [4242] : [])].map(String)) }); break;
      case 'user.ids': op(step, OP.IDS, { a: input.uid + (corrupt ? 1 : 0), b: input.gid }); break;
      case 'umask': op(step, OP.UMASK, { mode: step.args.umask ^ (corrupt ? 0o077 : 0) }); break;
      case 'rlimit': {
        const resource = Object.hasOwn(RLIMITS, step.args.name) ? RLIMITS[step.args.name] : undefined;
        if (resource === undefined) throw new UnsupportedStep(step, `${step.args.name} is not a resource limit this engine knows`);
        const { soft, hard } = step.args;
        op(step, OP.RLIMIT, { mode: resource, a: corrupt ? (soft > 0 ? soft - 1 : hard > 1 || hard === -1 ? 1 : 0) : soft, b: hard });
        break;
      }
      case 'caps.apply': {
        const mask = (caps: string[]) => caps.reduce((m, c) => m | (1n << BigInt(capabilityNumber(c))), 0n);
        op(step, OP.CAPS, { a: mask(step.args.bounding) ^ (corrupt ? 1n : 0n), b: mask(step.args.ambient) });
        break;
      }
      case 'nnp': op(step, OP.NNP); break;
      case 'seccomp': {
        const bpf = input.compileSeccomp(`${step.args.program.join('\n')}\n`);
        op(step, OP.SECCOMP, { s1: blob(bpf), a: bpf.length });
        break;
      }
      case 'fds.close': op(step, OP.CLOSE_FDS); break;
      case 'exec': {
        const a = step.args;
        if (a.init && !input.init) throw new UnsupportedStep(step, 'init: true needs sbx-init, which was not built (npm run build)');
        op(step, OP.EXEC, { flags: a.stdin ? F_STDIN : 0, a: a.init ? 1 : 0, s1: list(a.args), s2: list(a.env), s3: str(a.cwd), s4: a.init ? str(input.init) : 0 });
        break;
      }
      default: {
        // Every kind is placed above: a new one fails to compile here until it is.
        const unplaced: never = step;
        throw new UnsupportedStep(unplaced, 'the native engine cannot apply this step');
      }
    }
  }
  return { ops: Buffer.concat(records), nops: records.length, strings: Buffer.concat([...strings, Buffer.from('\0')]), cloneFlags, childSteps };
}
