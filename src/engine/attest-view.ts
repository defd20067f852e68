// What the attestation reads of a child that waits to exec, in the CLI (root on the host, or the
// user of a rootless sandbox): one libsbx call (sbx_proc_facts) gathers and parses the child's
// /proc files, namespace links, descriptor flags and the paths the plan's rules ask about, as
// records of numbers in one buffer; this module decodes them into the ProcView that attest.ts
// compares. Only the facts some step of the plan looks at are read. Nothing is changed. A path a
// rule asks about that the plan did not name ahead is looked up here, as the rest were.
import { constants } from 'node:os';
import { lstatSync, readFileSync, readlinkSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FACT, FACT_MOUNT_OFFSET as MO, FACT_MOUNT_SIZE, FACT_ROUTE_OFFSET as RO, FACT_ROUTE_SIZE, FACT_STATUS_OFFSET as SO, FACT_STATUS_SIZE } from '../ffi/generated/abi';
import type { IdMap } from '../model/types';
import type { Plan, StepKind } from '../plan/types';
import type { MountEntry, PathKind, ProcStatus, ProcView } from './attest';

const DEV_LINKS = ['/dev/fd', '/dev/stdin', '/dev/stdout', '/dev/stderr'];

export interface ViewSources {
  /** sbx_proc_facts's records for the child: the facts of want (a bit per FACT kind) and these paths inside its root. */
  facts(want: number, paths: readonly string[]): Buffer;
  /** A cgroup file's content, read on the host; undefined when absent. */
  cgroup(controller: string, file: string): string | undefined;
  cgroupExists(controller: string): boolean;
  stateDir?: string;
}

/** Which of the child's facts each kind of step compares (attest.ts's rules); the mount table is
 * every mount step's, read always. */
const FACTS_OF: Partial<Record<StepKind, readonly number[]>> = {
  'idmap': [FACT.UID_MAP, FACT.GID_MAP], 'cgroup.attach': [FACT.CGROUP], 'rlimit': [FACT.LIMITS],
  'ns.new': [FACT.NS], 'ns.host': [FACT.NS], 'ns.join': [FACT.NS], 'ns.enter': [FACT.NS],
  'net.none': [FACT.NET_DEV], 'net.loopback': [FACT.NET_DEV, FACT.FIB_TRIE], 'net.veth': [FACT.NET_DEV],
  'net.address': [FACT.NET_ROUTE, FACT.FIB_TRIE], 'net.usernet': [FACT.NET_ROUTE, FACT.NET_DEV],
  'mount.pivot': [FACT.ROOT], 'fds.close': [FACT.FDS],
  'user.ids': [FACT.STATUS], 'user.groups': [FACT.STATUS], 'umask': [FACT.STATUS], 'caps.apply': [FACT.STATUS], 'cap.keep': [FACT.STATUS],
  'cap.drop': [FACT.STATUS], 'nnp': [FACT.STATUS], 'nnp.off': [FACT.STATUS], 'seccomp': [FACT.STATUS], 'seccomp.off': [FACT.STATUS],
};

const wanted = new WeakMap<Plan, { want: number; paths: string[] }>();

/** The facts the plan's rules compare (a bit per FACT kind), and the paths inside the sandbox they
 * look at (attest.ts: pathOf and the masks): worked out once per plan, and ahead (readHostFacts). */
export function wantedFacts(plan: Plan): { want: number; paths: string[] } {
  let w = wanted.get(plan);
  if (!w) wanted.set(plan, (w = factsOfPlan(plan)));
  return w;
}

function factsOfPlan(plan: Plan): { want: number; paths: string[] } {
  let want = 1 << FACT.MOUNTINFO;
  const out = new Set<string>();
  for (const s of plan.steps) {
    for (const k of FACTS_OF[s.kind] ?? []) want |= 1 << k;
    switch (s.kind) {
      case 'mount.devpts': out.add('/dev/ptmx'); break;
      case 'mount.link': out.add(s.args.path); break;
      case 'mount.mask': case 'mount.readonly': case 'mount.workdir': out.add(s.args.path); break;
      case 'dev.links': for (const l of DEV_LINKS) out.add(l); break;
      case 'dev.node': out.add(`/dev/${s.args.name}`); break;
      case 'dev.bind': case 'dev.make': out.add(s.args.target); break;
      default: break;
    }
  }
  return { want, paths: [...out] };
}

/** The facts as the rules read them; a fact not read (not wanted, or unreadable) is empty. */
export interface Facts {
  status: ProcStatus; limits: [number, number][]; uidMap: IdMap[]; gidMap: IdMap[]; mounts: MountEntry[]; cgroups: string[];
  interfaces: string[]; routes: ProcView['routes']; localAddresses: string[];
  ns: Record<string, string>; inheritedFds: number[]; rootIsHosts: boolean; paths: Map<string, PathKind | undefined>;
}

const NO_CAPS = 0xffffffffffffffffn;
const noStatus = (): ProcStatus => ({ uid: -1, gid: -1, groups: [], umask: -1, noNewPrivs: -1, seccomp: -1, seccompFilters: -1, CapInh: NO_CAPS, CapPrm: NO_CAPS, CapEff: NO_CAPS, CapBnd: NO_CAPS, CapAmb: NO_CAPS });

/** The records of sbx_proc_facts (native/include/sbx.h): kind, result, length, then a body of
 * numbers and a few strings. Numbers are read through a DataView and strings sliced from one
 * Latin-1 string of the buffer (byte i is character i): this runs once per start, mostly in V8's
 * interpreter, where Buffer's read methods and a decode per string cost several times as much. A
 * buffer with UTF-8 in it (a mount point) has its strings decoded as such. */
export function decodeFacts(buf: Buffer, asked: readonly string[]): Facts {
  const f: Facts = { status: noStatus(), limits: [], uidMap: [], gidMap: [], mounts: [], cgroups: [], interfaces: [], routes: [], localAddresses: [], ns: {}, inheritedFds: [], rootIsHosts: true, paths: new Map() };
  const d = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const latin1 = buf.toString('latin1');
  const text = /[^\x00-\x7f]/.test(latin1) ? (a: number, b: number) => buf.toString('utf8', a, b) : (a: number, b: number) => latin1.slice(a, b);
  let nextPath = 0;
  for (let at = 0; at + 12 <= buf.length;) {
    const kind = d.getUint32(at, true), result = d.getInt32(at + 4, true), from = at + 12;
    at = from + d.getUint32(at + 8, true);
    if (kind === FACT.PATH) { f.paths.set(asked[nextPath++]!, pathKind(result, result < 0 ? '' : text(from, at))); continue; }
    if (kind === FACT.ROOT) { f.rootIsHosts = result !== 0; continue; } // unreadable: counted as the host's
    if (result < 0) continue;
    switch (kind) {
      case FACT.STATUS: f.status = decodeStatus(d, from); break;
      case FACT.LIMITS: for (let i = from; i + 16 <= at; i += 16) f.limits.push([int64(d, i), int64(d, i + 8)]); break;
      case FACT.UID_MAP: case FACT.GID_MAP: {
        const rows = kind === FACT.UID_MAP ? f.uidMap : f.gidMap;
        for (let i = from; i + 12 <= at; i += 12) rows.push({ container: d.getUint32(i, true), host: d.getUint32(i + 4, true), size: d.getUint32(i + 8, true) });
        break;
      }
      case FACT.MOUNTINFO:
        for (let i = from; i + FACT_MOUNT_SIZE <= at;) {
          const p = i + FACT_MOUNT_SIZE, type = p + d.getUint16(i + MO.point_len, true), end = type + d.getUint16(i + MO.fstype_len, true);
          f.mounts.push({ point: text(p, type), fstype: text(type, end), flags: d.getUint32(i + MO.flags, true), shared: d.getUint32(i + MO.shared, true), master: d.getUint32(i + MO.master, true) });
          i = end;
        }
        break;
      case FACT.CGROUP: f.cgroups = lines(text(from, at)); break;
      case FACT.NET_DEV: f.interfaces = text(from, at).split('\0').filter(Boolean).sort(); break;
      case FACT.NET_ROUTE:
        for (let i = from; i + FACT_ROUTE_SIZE <= at; i += FACT_ROUTE_SIZE) {
          const name = text(i + RO.iface, i + RO.destination);
          f.routes.push({ iface: name.slice(0, name.indexOf('\0') >>> 0), destination: dotted(d, i + RO.destination), gateway: dotted(d, i + RO.gateway) });
        }
        break;
      case FACT.FIB_TRIE: for (let i = from; i + 4 <= at; i += 4) f.localAddresses.push(dotted(d, i)); break;
      case FACT.NS: for (const l of lines(text(from, at))) { const i = l.indexOf(' '); f.ns[l.slice(0, i)] = l.slice(i + 1); } break;
      case FACT.FDS: for (let i = from; i + 4 <= at; i += 4) f.inheritedFds.push(d.getInt32(i, true)); break;
      default: break;
    }
  }
  return f;
}

/** A little-endian int64 as a number: exact up to 2^53, and -1 for all bits set (unlimited). */
const int64 = (d: DataView, i: number) => d.getUint32(i, true) + d.getInt32(i + 4, true) * 4294967296;
const dotted = (d: DataView, i: number) => `${d.getUint8(i)}.${d.getUint8(i + 1)}.${d.getUint8(i + 2)}.${d.getUint8(i + 3)}`;

function decodeStatus(d: DataView, at: number): ProcStatus {
  const groups: number[] = [];
  const n = d.getUint32(at + SO.ngroups, true);
  for (let i = 0; i < n; i++) groups.push(d.getUint32(at + FACT_STATUS_SIZE + 4 * i, true));
  return {
    uid: int64(d, at + SO.uid), gid: int64(d, at + SO.gid), groups, umask: int64(d, at + SO.umask),
    noNewPrivs: int64(d, at + SO.no_new_privs), seccomp: int64(d, at + SO.seccomp), seccompFilters: int64(d, at + SO.seccomp_filters),
    CapInh: d.getBigUint64(at + SO.cap_inh, true), CapPrm: d.getBigUint64(at + SO.cap_prm, true), CapEff: d.getBigUint64(at + SO.cap_eff, true),
    CapBnd: d.getBigUint64(at + SO.cap_bnd, true), CapAmb: d.getBigUint64(at + SO.cap_amb, true),
  };
}

const lines = (t: string) => t.split('\n').filter(Boolean);
let errnoNames: Map<number, string> | undefined;

/** An lstat's record: absent (ENOENT, ENOTDIR), what it is, or why it could not be read (never taken for absent). */
function pathKind(result: number, text: string): PathKind | undefined {
  if (result < 0) {
    if (-result === constants.errno.ENOENT || -result === constants.errno.ENOTDIR) return undefined;
    errnoNames ??= new Map(Object.entries(constants.errno).map(([k, v]) => [v, k]));
    return { type: 'unreadable', why: errnoNames.get(-result) ?? `errno ${-result}` };
  }
  const rest = text.slice(1);
  switch (text[0]) {
    case 'l': return { type: 'link', target: rest };
    case 'c': return { type: 'char', rdev: Number(rest) };
    case 'b': return { type: 'block', rdev: Number(rest) };
    case 'd': return { type: 'dir' };
    case 'f': return { type: 'file' };
    default: return { type: 'other' };
  }
}

/** The child's facts, read by the host from /proc/PID (and its cgroup and state folders). */
export function readView(pid: number, plan: Plan, o: ViewSources): ProcView {
  const proc = `/proc/${pid}`;
  const { want, paths } = wantedFacts(plan);
  const f = decodeFacts(o.facts(want, paths), paths);
  return {
    status: f.status, uidMap: f.uidMap, gidMap: f.gidMap, mounts: f.mounts, ns: f.ns, hostNs: hostNamespaces(), limits: f.limits, cgroups: f.cgroups,
    interfaces: f.interfaces, routes: f.routes, localAddresses: f.localAddresses, rootIsHosts: f.rootIsHosts, inheritedFds: f.inheritedFds,
    // A path no rule was known to ask about is looked up when asked, once.
    path: (p) => { if (!f.paths.has(p)) f.paths.set(p, pathIn(proc, p)); return f.paths.get(p); },
    realPath: (p) => realPathIn(proc, p),
    cgroupFile: o.cgroup,
    cgroupExists: o.cgroupExists,
    stateFile: (name) => (o.stateDir ? (name === '.' ? (statSafe(o.stateDir) ? '' : undefined) : read(join(o.stateDir, name))) : undefined),
    hostPeerGroups: () => hostPeerGroups(readHostMountinfo()),
    nsInode: (path) => { try { return statSync(path, { throwIfNoEntry: false })?.ino; } catch { return undefined; } },
    hostInterface: (name) => statSafe(`/sys/class/net/${name}`),
  };
}

/** The peer groups (shared:N) of a mount table's text, read only when a sandbox mount is shared. */
export function hostPeerGroups(mountinfo: string): Set<number> {
  const out = new Set<number>();
  for (const l of mountinfo.split('\n')) {
    const optional = l.split(' - ')[0]!.split(' ').slice(6);
    for (const o of optional) if (o.startsWith('shared:')) out.add(Number(o.slice(7)));
  }
  return out;
}

const read = (p: string) => { try { return readFileSync(p, 'utf8'); } catch { return undefined; } };

/** The CLI's own namespaces, read once per process: it never leaves them (libsbx enters another
 * namespace only in a child or in a thread of its own, which /proc/self does not show). */
let ownNs: Record<string, string> | undefined;
const hostNamespaces = () => (ownNs ??= nsOf('/proc/self'));
/** The CLI's own mount table (the host's), for the peer groups of its shared mounts: read only
 * when a rule asks (a sandbox mount that is shared). */
const readHostMountinfo = () => { try { return readFileSync('/proc/self/mountinfo', 'utf8'); } catch { return ''; } };

/** What the attestation reads of the host alone (the CLI's namespaces), and what it will ask of
 * the child for this plan, worked out ahead: the engine calls it while the child applies its steps
 * and this process would only wait for its events. */
export function readHostFacts(plan: Plan): void { hostNamespaces(); wantedFacts(plan); }

/** readlink of each file of a process's ns folder, by name. */
function nsOf(base: string): Record<string, string> {
  const out: Record<string, string> = {};
  try { for (const n of readdirSync(`${base}/ns`)) { try { out[n] = readlinkSync(`${base}/ns/${n}`); } catch { /* gone */ } } } catch { /* none */ }
  return out;
}

/** A path inside the sandbox with its symlinks resolved there (an absolute link starts again at its root). */
function realPathIn(proc: string, p: string): string {
  const parts = p.split('/').filter(Boolean);
  const done: string[] = [];
  for (let hops = 0; parts.length && hops < 40;) {
    const part = parts.shift()!;
    if (part === '.') continue;
    if (part === '..') { done.pop(); continue; }
    let link: string | undefined;
    const at = join(`${proc}/root`, ...done, part);
    try { if (lstatSync(at, { throwIfNoEntry: false })?.isSymbolicLink()) link = readlinkSync(at); } catch { /* unreadable: taken as it is */ }
    if (link === undefined) { done.push(part); continue; }
    hops++;
    if (link.startsWith('/')) done.length = 0;
    parts.unshift(...link.split('/').filter(Boolean));
  }
  return `/${done.join('/')}`;
}

function pathIn(proc: string, p: string): PathKind | undefined {
  try {
    // An absent path is the common answer (masked paths this kernel has not): no exception for it.
    const st = lstatSync(join(`${proc}/root`, p), { throwIfNoEntry: false });
    if (!st) return undefined;
    if (st.isSymbolicLink()) return { type: 'link', target: readlinkSync(join(`${proc}/root`, p)) };
    if (st.isCharacterDevice()) return { type: 'char', rdev: st.rdev };
    if (st.isBlockDevice()) return { type: 'block', rdev: st.rdev };
    return { type: st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other' };
  } catch (e) {
    // Absent; any other failure (the child's root unreadable) is said, never taken for absent.
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? undefined : { type: 'unreadable', why: code ?? String(e) };
  }
}

const statSafe = (p: string) => { try { return statSync(p, { throwIfNoEntry: false }) !== undefined; } catch { return false; } };
