// Attestation: once the child has applied every step and waits to exec, the CLI (root, on the
// host) reads back what the child really has, from /proc/PID and the host's own files, and gives
// each plan step a verdict: verified, not checkable (and why), or a mismatch, which aborts the run
// before the command starts. Nothing here trusts the child's own reports. readView (attest-view.ts)
// gathers the facts; attest is pure, so its rules are unit-tested on made-up views.
import type { IdMap, Propagation } from '../model/types';
import { capabilityNumber, RLIMITS } from '../model/tables';
import type { Plan, Step, StepKind, StepOf, Verdict } from '../plan/types';
import { findStep } from '../plan/steps';
import { hostInterface } from '../host/network';
import { MNT } from '../ffi/generated/abi';
import { attestEgressDefault, attestEgressResolv, attestEgressRule, attestEgressStart, attestEgressWall, type EgressView } from './attest-egress';

/** A mount of mountinfo: its per-mount options and propagation as MNT bits, its peer group
 * (shared:N) and master (master:N), 0 when none. */
export interface MountEntry { point: string; fstype: string; flags: number; shared: number; master: number }
/** The fields of /proc/PID/status the rules compare: -1 where the kernel shows none (a capability set: all bits). */
export interface ProcStatus {
  uid: number; gid: number; groups: number[]; umask: number; noNewPrivs: number; seccomp: number; seccompFilters: number;
  CapInh: bigint; CapPrm: bigint; CapEff: bigint; CapBnd: bigint; CapAmb: bigint;
}
export type PathKind = { type: 'file' | 'dir' | 'other' } | { type: 'link'; target: string } | { type: 'char' | 'block'; rdev: number } | { type: 'unreadable'; why: string };

/** What the host reads of the child once it waits to exec. */
export interface ProcView {
  /** /proc/PID/status's ids, umask, capabilities and security fields. */
  status: ProcStatus;
  /** /proc/PID/uid_map and gid_map, row by row. */
  uidMap: IdMap[];
  gidMap: IdMap[];
  mounts: MountEntry[];
  /** readlink of /proc/PID/ns/* and /proc/self/ns/*, by file name (mnt, net, …). */
  ns: Record<string, string>;
  hostNs: Record<string, string>;
  /** /proc/PID/limits rows, in RLIMIT_* order: [soft, hard], -1 for unlimited. */
  limits: [number, number][];
  /** /proc/PID/cgroup's lines. */
  cgroups: string[];
  /** Interfaces of the child's network namespace (/proc/PID/net/dev) and its IPv4 routes and local addresses. */
  interfaces: string[];
  routes: { iface: string; destination: string; gateway: string }[];
  localAddresses: string[];
  /** The child's open descriptors above 2 that do not close on exec (no O_CLOEXEC in /proc/PID/fdinfo's flags). */
  inheritedFds: number[];
  /** Whether the child's root is another file system object than the host's. */
  rootIsHosts: boolean;
  /** A path inside the sandbox with its symlinks resolved there (an absolute link starts again at the sandbox's root). */
  realPath(p: string): string;
  /** What a path inside the sandbox is, through /proc/PID/root; undefined when absent. */
  path(p: string): PathKind | undefined;
  /** A cgroup file's content, read on the host; undefined when absent. */
  cgroupFile(controller: string, file: string): string | undefined;
  /** Whether the sandbox's cgroup folder of a controller exists on the host. */
  cgroupExists(controller: string): boolean;
  /** A file in the state folder. */
  stateFile(name: string): string | undefined;
  /** The peer group ids of the host's shared mounts (the CLI's /proc/self/mountinfo). */
  hostPeerGroups(): Set<number>;
  /** The inode of a namespace file given by path (a joined namespace). */
  nsInode(path: string): number | undefined;
  hostInterface(name: string): boolean;
}

/** What the child runs as, in its own namespace (the engine resolved names in its /etc). */
export interface AttestIds { uid: number; gid: number; groups: number[] }

const O = (v: boolean) => (v ? 'on' : 'off');
const octal = (n: number) => n.toString(8).padStart(4, '0');
type CapSet = 'CapInh' | 'CapPrm' | 'CapEff' | 'CapBnd' | 'CapAmb';
const NS_FILE: Record<string, string> = { mount: 'mnt' };

/** An id inside the namespace as the host sees it, through a map; undefined when unmapped. */
function hostId(id: number, map: IdMap[] | undefined): number | undefined {
  if (!map) return id;
  const r = map.find((m) => id >= m.container && id < m.container + m.size);
  return r ? r.host + (id - r.container) : undefined;
}

const mapText = (m: IdMap[]) => m.map((x) => `${x.container} ${x.host} ${x.size}`).join(',');
/** The per-mount options a plan asks for, as mountinfo's bits (strictatime is the absence of relatime and noatime). */
const FLAG_BITS: Record<string, number> = { nosuid: MNT.NOSUID, nodev: MNT.NODEV, noexec: MNT.NOEXEC, noatime: MNT.NOATIME, relatime: MNT.RELATIME, strictatime: 0 };
const hasFlag = (m: MountEntry, f: string) => (f === 'strictatime' ? (m.flags & (MNT.RELATIME | MNT.NOATIME)) === 0 : (m.flags & (FLAG_BITS[f] ?? 0)) !== 0);
const readOnly = (m: MountEntry) => (m.flags & MNT.RO) !== 0;
const capMask = (caps: string[]) => caps.reduce((m, c) => m | (1n << BigInt(capabilityNumber(c))), 0n);
const cpuList = (s: string) => {
  const out = new Set<number>();
  for (const part of s.trim().split(',').filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    for (let i = a!; i <= (b ?? a!); i++) out.add(i);
  }
  return [...out].sort((x, y) => x - y).join(',');
};

/** The verdicts as they are given, and what every rule reads: the plan, the child's facts and ids. */
class Attestation {
  readonly out: Verdict[] = [];
  readonly idmap: StepOf<'idmap'> | undefined;
  readonly status: ProcStatus;
  /** The child's uid as the host sees it. */
  readonly uid0: number;
  /** The command runs as uid 0 in its namespace. */
  readonly root: boolean;

  constructor(readonly plan: Plan, readonly view: ProcView, readonly ids: AttestIds, readonly egress?: EgressView) {
    this.idmap = findStep(plan.steps, 'idmap');
    this.status = view.status;
    this.uid0 = this.status.uid;
    this.root = ids.uid === 0;
  }

  /** A verdict as the egress rules give it. */
  readonly record = (s: Step, verdict: Verdict['verdict'], detail: string): void => { this.out.push({ step: s.id, verdict, detail }); };
  ok(s: Step, detail: string): void { this.out.push({ step: s.id, verdict: 'verified', detail }); }
  unchecked(s: Step, why: string): void { this.out.push({ step: s.id, verdict: 'not checkable', detail: why }); }
  check(s: Step, good: boolean, want: string, found: string): void {
    this.out.push(good ? { step: s.id, verdict: 'verified', detail: want } : { step: s.id, verdict: 'mismatch', detail: `expected ${want}, found ${found}` });
  }

  private topmost?: Map<string, MountEntry>;
  /** The topmost mount on a point (the table indexed once: every mount step asks). */
  at(p: string): MountEntry | undefined {
    this.topmost ??= new Map(this.view.mounts.map((m) => [m.point, m]));
    return this.topmost.get(p);
  }

  mountCheck(s: Step, target: string, want: { fstype?: string; ro?: boolean; flags?: readonly string[]; propagation?: Propagation }): void {
    // A target reached through a symlink inside the root is mounted where the link leads (in the root).
    const m = this.at(target) ?? this.at(this.view.realPath(target));
    if (!m) { this.check(s, false, `a mount on ${target}`, 'none'); return; }
    const bad: string[] = [];
    if (want.fstype && m.fstype !== want.fstype) bad.push(`type ${m.fstype}`);
    if (want.ro !== undefined && readOnly(m) !== want.ro) bad.push(readOnly(m) ? 'read-only' : 'writable');
    // strictatime shows as the absence of relatime and noatime, which the kernel's default adds.
    for (const f of want.flags ?? []) if (!hasFlag(m, f)) bad.push(`no ${f}`);
    const seen = propagationOf(m);
    // A slave of a private mount has no master: it reads as private, which is what it is.
    if (want.propagation && !samePropagation(want.propagation, seen)) bad.push(seen);
    const wanted = [want.fstype, want.ro === undefined ? '' : want.ro ? 'ro' : 'rw', ...(want.flags ?? []), want.propagation ?? ''].filter(Boolean).join(',');
    this.check(s, bad.length === 0, `${target} mounted (${wanted})`, `${target} ${bad.join(', ')}`);
  }

  /** A path inside the sandbox; null (and the step not checkable) when the host cannot read it. */
  pathOf(s: Step, p: string): PathKind | undefined | null {
    const k = this.view.path(p);
    if (k?.type !== 'unreadable') return k;
    this.unchecked(s, `the sandbox's ${p} cannot be read from the host (${k.why})`);
    return null;
  }

  /** A namespace of the child and the host's of the same type, as readlink shows them. */
  nsView(type: string): { inside?: string; host?: string } {
    return { inside: this.view.ns[NS_FILE[type] ?? type], host: this.view.hostNs[NS_FILE[type] ?? type] };
  }
}

/** egress: what readEgressView gathered for a sandbox with network.egress. */
export function attest(plan: Plan, view: ProcView, ids: AttestIds, egress?: EgressView): Verdict[] {
  const a = new Attestation(plan, view, ids, egress);
  for (const s of plan.steps) attestStep(a, s);
  return a.out;
}

function attestStep<K extends StepKind>(a: Attestation, s: StepOf<K>): void {
  if (!Object.hasOwn(RULES, s.kind)) throw new Error(`internal error: no attestation rule for ${s.kind}`);
  RULES[s.kind](a, s);
}

/** One rule per kind: the compiler checks that every kind has one. */
type Rules = { [K in StepKind]: (a: Attestation, s: StepOf<K>) => void };

const RULES: Rules = {
  // The host's preparation: the state folder, the root and volumes, the cgroup, the id maps.
  'state.create': (a, s) => a.check(s, a.view.stateFile('owner') !== undefined || a.view.stateFile('.') !== undefined, `${s.args.path} exists`, 'no state folder'),
  'rootfs.host': preparedOnHost, 'rootfs.dir': preparedOnHost, 'rootfs.image': preparedOnHost,
  'image.note': (a, s) => a.unchecked(s, 'a note about the image: nothing is applied'),
  'path.placeholder': (a, s) => a.unchecked(s, `the placeholder at ${s.args.path}, made on the host before the clone; its deny step is checked in the sandbox's mount table`),
  'volume.create': (a, s) => a.unchecked(s, 'the volume\'s folder, made on the host (whole, or not at all) before the clone; its mount step is checked'),
  'cgroup.create': (a, s) => a.check(s, a.view.cgroupExists('pids') || a.view.cgroupExists('memory'), `the cgroup ${s.args.path}`, 'no cgroup folder'),
  'cgroup.set': cgroupSet,
  'cgroup.attach': (a, s) => {
    const path = `/${s.args.path}`;
    const lines = a.view.cgroups.filter((l) => l.split(':')[2] === path || l.split(':')[2]?.startsWith(`${path}/`));
    a.check(s, lines.length > 0, `the child in ${path}`, a.view.cgroups.join('; ') || 'no cgroup');
  },
  'idmap': (a, s) => {
    const uid = mapText(a.view.uidMap), gid = mapText(a.view.gidMap);
    a.check(s, uid === mapText(s.args.uid) && gid === mapText(s.args.gid), `uid_map ${mapText(s.args.uid)}, gid_map ${mapText(s.args.gid)}`, `uid_map ${uid}, gid_map ${gid}`);
  },
  // Namespaces and `sandbox exec`'s process.
  'ns.new': newOrHostNs, 'ns.host': newOrHostNs, 'ns.join': joinedNs, 'ns.enter': joinedNs,
  'proc.fork': execProcess, 'console': execProcess,
  // The network.
  'net.host': namedByNs, 'net.joined': namedByNs,
  'net.none': (a, s) => a.check(s, a.view.interfaces.join(',') === 'lo', 'only lo', a.view.interfaces.join(', ')),
  'net.loopback': (a, s) => a.check(s, a.view.interfaces.includes('lo') && a.view.localAddresses.includes('127.0.0.1'), 'lo up with 127.0.0.1', `${a.view.interfaces.join(', ')}; local ${a.view.localAddresses.join(', ') || 'none'}`),
  'net.veth': (a, s) => {
    // The host's end as the plan names it (its undo removes it by that name).
    const hostEnd = (s.undo?.kind === 'net.veth.remove' ? s.undo.args.interface : undefined) ?? hostInterface(a.plan.name);
    a.check(s, a.view.interfaces.includes(s.args.inside) && a.view.hostInterface(hostEnd), `${s.args.inside} in the sandbox, ${hostEnd} on the host`, `${a.view.interfaces.join(', ')} in the sandbox${a.view.hostInterface(hostEnd) ? '' : `, no ${hostEnd} on the host`}`);
  },
  'net.address': (a, s) => {
    const route = a.view.routes.find((r) => r.iface === s.args.interface && r.destination === '0.0.0.0');
    a.check(s, route?.gateway === s.args.gateway && a.view.localAddresses.some((x) => x !== '127.0.0.1'), `${s.args.interface} with an address and a default route through ${s.args.gateway}`, route ? `a default route through ${route.gateway}` : 'no default route');
  },
  'net.usernet': (a, s) => {
    const route = a.view.routes.find((r) => r.destination === '0.0.0.0' && r.iface !== 'lo');
    a.check(s, route !== undefined && a.view.interfaces.some((i) => i !== 'lo'), `an interface of ${s.args.tool} with a default route`, route ? `a default route through ${route.gateway} on ${route.iface}` : `no default route (${a.view.interfaces.join(', ')})`);
  },
  'net.nat': (a, s) => a.unchecked(s, NFT_WHOLE),
  'net.port': (a, s) => a.unchecked(s, s.args.path === 'pasta' || s.args.path === 'slirp4netns' ? `${s.args.path} publishes the port; the run waits until it accepts connections` : NFT_WHOLE),
  'net.hosts': (a, s) => a.check(s, (a.view.stateFile('hosts') ?? '').includes('localhost'), 'the sandbox\'s /etc/hosts written', 'none'),
  'net.resolv': (a, s) => (s.args.options ? attestEgressResolv(s, a.egress, a.record) : a.check(s, a.view.stateFile('resolv.conf') !== undefined, 'the sandbox\'s /etc/resolv.conf written', 'none')),
  'net.egress.rule': (a, s) => attestEgressRule(a.plan, s, a.egress, a.record),
  'net.egress.default': (a, s) => attestEgressDefault(a.plan, s, a.egress, a.record),
  'net.egress.start': (a, s) => attestEgressStart(s, a.egress, a.record),
  'net.egress.wall': (a, s) => attestEgressWall(a.plan, s, a.egress, a.record),
  // Mounts, read from the child's mount table.
  'mount.private': mountsPrivate,
  'mount.root': (a, s) => a.mountCheck(s, '/', s.args.fstype === 'bind' ? {} : { fstype: s.args.fstype }),
  'mount.pivot': (a, s) => a.check(s, !a.view.rootIsHosts, 'a root other than the host\'s', 'the host\'s root'),
  'mount.proc': (a, s) => a.mountCheck(s, '/proc', { fstype: 'proc', flags: s.args.flags }),
  'mount.dev': (a, s) => a.mountCheck(s, '/dev', { fstype: 'tmpfs', flags: s.args.flags }),
  'mount.devpts': (a, s) => {
    const ptmx = a.pathOf(s, '/dev/ptmx');
    if (ptmx === null) return;
    const m = a.at('/dev/pts');
    a.check(s, m?.fstype === 'devpts' && ptmx?.type === 'link' && ptmx.target === 'pts/ptmx', 'a devpts on /dev/pts, /dev/ptmx → pts/ptmx', `${m?.fstype ?? 'nothing'} on /dev/pts`);
  },
  'mount.tmpfs.dev': (a, s) => a.mountCheck(s, s.args.target, { fstype: 'tmpfs', flags: s.args.flags }),
  'mount.mqueue': (a, s) => a.mountCheck(s, s.args.target, { fstype: 'mqueue', flags: s.args.flags }),
  // A denied folder holding other rules is covered writable, then made read-only after pivot_root (plan/sections/paths.ts).
  'mount.tmpfs': (a, s) => a.mountCheck(s, s.args.target, { fstype: 'tmpfs', ro: s.args.readOnly || a.plan.steps.some((x) => x.kind === 'mount.readonly' && x.args.path === s.args.target), flags: s.args.flags, propagation: s.args.propagation }),
  'mount.bind': (a, s) => a.mountCheck(s, s.args.target, { ro: s.args.readOnly, flags: s.args.flags, propagation: s.args.propagation }),
  'mount.volume': (a, s) => a.mountCheck(s, s.args.target, { ro: s.args.readOnly, flags: s.args.flags }),
  'mount.netfile': (a, s) => a.mountCheck(s, s.args.target, { flags: ['nosuid', 'nodev', 'noexec'] }),
  'mount.sys': (a, s) => a.mountCheck(s, '/sys', { ro: true }),
  'mount.cgroup': (a, s) => a.mountCheck(s, '/sys/fs/cgroup', { ro: true }),
  'mount.link': (a, s) => {
    const p = a.pathOf(s, s.args.path);
    if (p === null) return;
    a.check(s, p?.type === 'link' && p.target === s.args.target, `${s.args.path} → ${s.args.target}`, p ? p.type : 'absent');
  },
  'mount.mask': maskedOrReadOnly, 'mount.readonly': maskedOrReadOnly,
  'mount.root-readonly': (a, s) => a.mountCheck(s, '/', { ro: true }),
  'mount.root-propagation': (a, s) => a.mountCheck(s, '/', { propagation: s.args.propagation }),
  // A symbolic link there (to a folder: the child refused anything else) is read as a link.
  'mount.workdir': (a, s) => {
    const p = a.pathOf(s, s.args.path);
    if (p === null) return;
    a.check(s, p?.type === 'dir' || p?.type === 'link', `${s.args.path} a folder`, p ? p.type : 'absent');
  },
  'sysctl': (a, s) => a.unchecked(s, 'a namespaced sysctl reads as the reader\'s namespace, so the host cannot read the sandbox\'s value; the write to the sandbox\'s /proc/sys was checked'),
  // Devices, read through /proc/PID/root.
  'dev.links': devLinks,
  'dev.node': (a, s) => {
    const p = a.pathOf(s, `/dev/${s.args.name}`);
    if (p === null) return;
    a.check(s, p?.type === 'char' && p.rdev === makedev(s.args.major, s.args.minor), `/dev/${s.args.name} a character device ${s.args.major}:${s.args.minor}`, p ? p.type : 'absent');
  },
  'dev.make': (a, s) => {
    const p = a.pathOf(s, s.args.target);
    if (p === null) return;
    const { type, major, minor } = s.args;
    const want = type === 'p' ? 'a FIFO' : `a ${type === 'c' ? 'character' : 'block'} device ${major}:${minor}`;
    const good = type === 'p' ? p?.type === 'other' : p?.type === (type === 'c' ? 'char' : 'block') && p.rdev === makedev(major, minor);
    a.check(s, good, `${s.args.target} ${want}`, p ? p.type : 'absent');
  },
  'dev.bind': (a, s) => {
    const p = a.pathOf(s, s.args.target);
    if (p === null) return;
    a.check(s, p?.type === 'char' || p?.type === 'block', `${s.args.target} a device`, p ? p.type : 'absent');
  },
  // Identity, read from /proc/PID/status.
  'hostname': (a, s) => a.unchecked(s, 'the hostname is held by the sandbox\'s uts namespace and reads as the reader\'s; sethostname\'s result was checked'),
  'user.ids': (a, s) => {
    const { ids, status } = a;
    const u = hostId(ids.uid, a.idmap?.args.uid), g = hostId(ids.gid, a.idmap?.args.gid);
    a.check(s, a.uid0 === u && status.gid === g, `uid ${ids.uid}, gid ${ids.gid}${a.idmap ? ` (host ${u}, ${g})` : ''}`, `uid ${status.uid}, gid ${status.gid}`);
  },
  'user.groups': userGroups,
  'umask': (a, s) => a.check(s, a.status.umask === s.args.umask, `umask ${octal(s.args.umask)}`, `umask ${a.status.umask < 0 ? 'none' : octal(a.status.umask)}`),
  // Security, read from /proc/PID/status and limits.
  'rlimit': (a, s) => {
    const row = Object.hasOwn(RLIMITS, s.args.name) ? a.view.limits[RLIMITS[s.args.name]!] : undefined;
    a.check(s, !!row && row[0] === s.args.soft && row[1] === s.args.hard, `${s.args.name} ${s.args.soft}/${s.args.hard}`, row ? `${row[0]}/${row[1]}` : 'no such limit');
  },
  'caps.apply': capsApplied,
  'cap.keep': boundingHas, 'cap.drop': boundingHas,
  'nnp': noNewPrivs, 'nnp.off': noNewPrivs,
  // Seccomp_filters (Linux 5.9) absent: the mode alone says a filter is there.
  'seccomp': (a, s) => a.check(s, a.status.seccomp === 2 && (a.status.seccompFilters < 0 || a.status.seccompFilters >= 1), 'a seccomp filter (mode 2)', `Seccomp ${a.status.seccomp}, ${a.status.seccompFilters < 0 ? '?' : a.status.seccompFilters} filters`),
  // Landlock has no trace in /proc (no status field, no mount): the child checked it from inside,
  // right after landlock_restrict_self, and reported the step done only if the kernel refused it a
  // folder its mounts allow and its ruleset does not (EACCES).
  'landlock': (a, s) => (s.args.probe
    ? a.ok(s, `the child, once restricted, was refused ${s.args.probe} (EACCES), which ${a.plan.reduced ? 'your user may make (reduced mode)' : 'its mounts allow'}: its report`)
    : a.unchecked(s, 'Landlock leaves no trace in /proc, and this sandbox has no folder its mounts let it make and its ruleset does not (a non-root user or a writable image root), for the child to try')),
  'seccomp.off': (a, s) => a.check(s, a.status.seccomp === 0, 'no seccomp filter', `Seccomp ${a.status.seccomp}`),
  // Exec.
  'fds.close': (a, s) => {
    // Until exec the child holds its setup sockets: every descriptor above 2 must close on exec.
    const open = a.view.inheritedFds;
    a.check(s, open.length === 0, 'no descriptor above 2 that survives exec', `descriptors ${open.join(', ')} without O_CLOEXEC`);
  },
  'exec': (a, s) => a.unchecked(s, 'the command itself, which starts once the attestation passes; its working folder is entered then (a failure there is exit 126)'),
};

const NFT_WHOLE = 'nftables rules are applied in one transaction that fails whole; reading them back would run nft (milliseconds)';

function preparedOnHost(a: Attestation, s: Step): void {
  a.unchecked(s, 'preparation on the host, checked as it was applied; the mount step that uses it is checked');
}

function cgroupSet(a: Attestation, s: StepOf<'cgroup.set'>): void {
  const { controller, file, value } = s.args;
  // The devices controller's files are write-only: its rules read back in devices.list.
  if (file === 'devices.deny' || file === 'devices.allow') { deviceRuleRead(a, s); return; }
  const got = a.view.cgroupFile(controller, file);
  if (got === undefined) { a.check(s, false, `${file} = ${value}`, `no ${file}`); return; }
  const g = got.trim();
  if (/^(io\.max|blkio\.throttle\.)/.test(file)) { a.unchecked(s, `${file} names devices by major:minor and lists every device's limits; written in one write that fails whole`); return; }
  let good: boolean;
  if (value === 'inherit') good = g !== '';
  // CPU and memory node lists read back in the kernel's form (0,1 as 0-1): compared as sets.
  else if (file === 'cpuset.cpus' || file === 'cpuset.mems') good = cpuList(g) === cpuList(value);
  else if (/^[0-9]+$/.test(value) && /^[0-9]+$/.test(g)) good = Math.abs(Number(g) - Number(value)) < 4096 && Number(g) <= Number(value); // memory limits are rounded down to pages
  // A weight file may read `default N` (io.weight, BFQ's).
  else good = g.split('\n')[0]!.trim().replace(/^default /, '') === value.trim().replace(/^default /, '');
  a.check(s, good, `${file} = ${value}`, `${file} = ${g.split('\n')[0]}`);
}

/** The devices controller reads back its rules in devices.list: denying all leaves no `a` line;
 * an allowed rule is covered by a line of its type and numbers with at least its access. A rule
 * by path (a `devices` entry) is the host node's numbers, which the host resolved at the write. */
function deviceRuleRead(a: Attestation, s: StepOf<'cgroup.set'>): void {
  const list = (a.view.cgroupFile('devices', 'devices.list') ?? '').trim().split('\n').filter(Boolean);
  const { file, value } = s.args;
  if (file === 'devices.deny') { a.check(s, list.length > 0 && !list.some((l) => l.startsWith('a ')), 'devices.list without `a *:* rwm`', list.join('; ') || 'no devices.list'); return; }
  if (value.startsWith('/')) { a.unchecked(s, 'the rule names the host node by path; its numbers are read at the write'); return; }
  const [type, nums, access] = value.split(' ');
  const ok = list.some((l) => { const [t, n, acc] = l.split(' '); return t === type && n === nums && [...access!].every((c) => acc!.includes(c)); });
  a.check(s, ok, `devices.list allows ${value}`, list.join('; '));
}

function newOrHostNs(a: Attestation, s: StepOf<'ns.new'> | StepOf<'ns.host'>): void {
  const { inside, host } = a.nsView(s.args.type);
  if (!inside || !host) { a.unchecked(s, `this kernel has no ${s.args.type} namespace file`); return; }
  if (s.kind === 'ns.new') a.check(s, inside !== host, `a new ${s.args.type} namespace`, `the host's (${host})`);
  else a.check(s, inside === host, `the host's ${s.args.type} namespace`, `${inside}, not the host's ${host}`);
}

function joinedNs(a: Attestation, s: StepOf<'ns.join'> | StepOf<'ns.enter'>): void {
  const inside = a.nsView(s.args.type).inside;
  const want = a.view.nsInode(s.args.path);
  a.check(s, inside !== undefined && want !== undefined && inside === `${NS_FILE[s.args.type] ?? s.args.type}:[${want}]`, `the namespace at ${s.args.path}`, inside ?? 'none');
}

function execProcess(a: Attestation, s: Step): void {
  a.unchecked(s, 'a process and a terminal of `sandbox exec`: what they set up is checked by the steps that follow');
}

function namedByNs(a: Attestation, s: Step): void {
  a.unchecked(s, 'the network namespace step says which one it is, and is checked');
}

/** No mount of the sandbox is in a peer group of the host's: a mount the plan makes shared after
 * the tree was made private starts a group of the sandbox's own (peer group ids are global). */
function mountsPrivate(a: Attestation, s: StepOf<'mount.private'>): void {
  const shared = a.view.mounts.filter((m) => m.shared > 0);
  // The host's mount table is read only when the sandbox has a shared mount at all.
  const host = shared.length ? a.view.hostPeerGroups() : new Set<number>();
  const leaks = shared.filter((m) => host.has(m.shared));
  a.check(s, leaks.length === 0, 'no mount shared with the host', `shared with the host: ${leaks.map((m) => m.point).join(', ')}`);
}

/** A mount's propagation as mountinfo's optional fields say it. */
function propagationOf(m: MountEntry): string {
  if (m.flags & MNT.UNBINDABLE) return 'unbindable';
  const shared = m.shared > 0, slave = m.master > 0;
  return shared && slave ? 'shared and slave' : shared ? 'shared' : slave ? 'slave' : 'private';
}

/** Whether what mountinfo shows is the propagation asked for (r… applies the same to the mount). */
function samePropagation(want: Propagation, seen: string): boolean {
  const w = want.replace(/^r/, '');
  return w === 'slave' ? seen !== 'shared' && seen !== 'unbindable' : seen === w;
}

/** The mount table first; the path itself only when nothing is mounted there. */
function maskedOrReadOnly(a: Attestation, s: StepOf<'mount.mask'> | StepOf<'mount.readonly'>): void {
  const mask = s.kind === 'mount.mask';
  const m = a.at(s.args.path);
  if (m) {
    // A file is masked by /dev/null bound on it, a folder by an empty read-only tmpfs.
    const good = mask ? m.fstype !== 'tmpfs' || readOnly(m) : readOnly(m);
    a.check(s, good, `${s.args.path} ${mask ? 'covered' : 'read-only'}`, `${s.args.path} ${mask ? 'visible' : 'writable'}`);
    return;
  }
  const p = a.view.path(s.args.path);
  if (!p) a.ok(s, `${s.args.path} is absent`);
  else if (p.type === 'unreadable') a.unchecked(s, `the sandbox's ${s.args.path} cannot be read from the host (${p.why})`);
  else a.check(s, false, `${s.args.path} ${mask ? 'covered' : 'read-only'}`, `${s.args.path} ${mask ? 'visible' : 'not a mount'}`);
}

/** glibc's makedev: the st_rdev that stat(2) gives a node of these numbers. */
function makedev(major: number, minor: number): number {
  return (major & 0xfff) * 256 + (minor & 0xff) + (minor & ~0xff) * 4096 + (major & ~0xfff) * 2 ** 32;
}

function devLinks(a: Attestation, s: StepOf<'dev.links'>): void {
  const links: [string, string][] = [['/dev/fd', '/proc/self/fd'], ['/dev/stdin', '/proc/self/fd/0'], ['/dev/stdout', '/proc/self/fd/1'], ['/dev/stderr', '/proc/self/fd/2']];
  const bad = links.filter(([l, t]) => { const p = a.view.path(l); return !(p?.type === 'link' && p.target === t); });
  if (links.some(([l]) => a.view.path(l)?.type === 'unreadable')) { a.unchecked(s, 'the sandbox\'s /dev cannot be read from the host'); return; }
  a.check(s, bad.length === 0, '/dev/fd, stdin, stdout, stderr linked to /proc/self/fd', `${bad.map((b) => b[0]).join(', ')} missing`);
}

function userGroups(a: Attestation, s: StepOf<'user.groups'>): void {
  const got = [...a.status.groups].sort((x, y) => x - y).join(' ');
  if (s.args.inherited) {
    // What this CLI holds is what the child was cloned with, and cannot drop.
    const mine = [...new Set(process.getgroups?.() ?? [])].sort((x, y) => x - y).join(' ');
    a.check(s, mine === got, `the caller's groups ${mine || 'none'}`, `groups ${got || 'none'}`);
    return;
  }
  const want = a.ids.groups.map((x) => hostId(x, a.idmap?.args.gid)).sort((x, y) => (x ?? 0) - (y ?? 0)).join(' ');
  a.check(s, want === got, `groups ${want || 'none'}`, `groups ${got || 'none'}`);
}

function capsApplied(a: Attestation, s: StepOf<'caps.apply'>): void {
  const { status } = a;
  const bounding = capMask(s.args.bounding), ambient = capMask(s.args.ambient) & bounding;
  // With the exact sets (security.capabilities), as op_caps_sets leaves them before exec.
  const inh = s.args.sets ? capMask(s.args.sets.inheritable) & bounding : 0n, amb = s.args.sets ? capMask(s.args.sets.ambient) & inh : 0n;
  const want: Record<CapSet, bigint> = s.args.sets
    ? { CapBnd: bounding, CapPrm: a.root ? bounding : inh | amb, CapEff: a.root ? bounding : inh | amb, CapInh: inh, CapAmb: amb }
    : a.root
      ? { CapBnd: bounding, CapPrm: bounding, CapEff: bounding, CapInh: 0n, CapAmb: 0n }
      : { CapBnd: bounding, CapPrm: ambient, CapEff: ambient, CapInh: ambient, CapAmb: ambient };
  const bad = Object.entries(want).filter(([k, m]) => status[k as CapSet] !== m);
  a.check(s, bad.length === 0, Object.entries(want).map(([k, m]) => `${k} ${m.toString(16)}`).join(', '), bad.map(([k]) => `${k} ${status[k as CapSet].toString(16)}`).join(', '));
}

function boundingHas(a: Attestation, s: StepOf<'cap.keep'> | StepOf<'cap.drop'>): void {
  const has = (a.status.CapBnd >> BigInt(capabilityNumber(s.args.cap))) & 1n;
  a.check(s, (has === 1n) === (s.kind === 'cap.keep'), `CAP_${s.args.cap} ${s.kind === 'cap.keep' ? 'in' : 'out of'} the bounding set`, has ? 'in it' : 'out of it');
}

function noNewPrivs(a: Attestation, s: StepOf<'nnp'> | StepOf<'nnp.off'>): void {
  a.check(s, a.status.noNewPrivs === (s.kind === 'nnp' ? 1 : 0), `no_new_privs ${O(s.kind === 'nnp')}`, `NoNewPrivs ${a.status.noNewPrivs}`);
}
