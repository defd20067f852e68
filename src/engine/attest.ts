// Attestation: once the child has applied every step and waits to exec, the CLI (root, on the
// host) reads back what the child really has, from /proc/PID and the host's own files, and gives
// each plan step a verdict: verified, not checkable (and why), or a mismatch, which aborts the run
// before the command starts. Nothing here trusts the child's own reports. readView gathers the
// facts (a dozen small /proc files); attest is pure, so its rules are unit-tested on made-up views.
import { lstatSync, readFileSync, readlinkSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { IdMap } from '../model/types';
import { capabilityNumber, RLIMITS } from '../model/tables';
import type { Plan, Step, Verdict } from '../plan/types';
import { hostInterface } from '../host/network';

export interface MountEntry { point: string; opts: string[]; optional: string[]; fstype: string }
export type PathKind = { type: 'file' | 'dir' | 'other' } | { type: 'link'; target: string } | { type: 'char' | 'block'; rdev: number } | { type: 'unreadable'; why: string };

/** What the host reads of the child once it waits to exec. */
export interface ProcView {
  /** /proc/PID/status, field by field. */
  status: Record<string, string>;
  uidMap: string;
  gidMap: string;
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
  /** The child's open descriptors, and whether each closes on exec (/proc/PID/fdinfo's flags). */
  fds: { fd: number; cloexec: boolean }[];
  /** Whether the child's root is another file system object than the host's. */
  rootIsHosts: boolean;
  /** A path inside the sandbox with its symlinks resolved there (an absolute link starts again at the sandbox's root). */
  realPath(p: string): string;
  /** What a path inside the sandbox is, through /proc/PID/root; undefined when absent. */
  path(p: string): PathKind | undefined;
  /** A cgroup file's content, read on the host; undefined when absent. */
  cgroupFile(controller: string, file: string): string | undefined;
  /** A file in the state folder. */
  stateFile(name: string): string | undefined;
  /** The inode of a namespace file given by path (a joined namespace). */
  nsInode(path: string): number | undefined;
  hostInterface(name: string): boolean;
}

/** What the child runs as, in its own namespace (the engine resolved names in its /etc). */
export interface AttestIds { uid: number; gid: number; groups: number[] }

const O = (v: boolean) => (v ? 'on' : 'off');
const NS_FILE: Record<string, string> = { mount: 'mnt' };
/** The rows of /proc/PID/limits, in RLIMIT_* order. */
const LIMIT_ROWS = 16;

/** An id inside the namespace as the host sees it, through a map; undefined when unmapped. */
function hostId(id: number, map: IdMap[] | undefined): number | undefined {
  if (!map) return id;
  const r = map.find((m) => id >= m.container && id < m.container + m.size);
  return r ? r.host + (id - r.container) : undefined;
}

const parseMap = (text: string): string => text.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' ')).filter(Boolean).join(',');
const capMask = (caps: string[]) => caps.reduce((m, c) => m | (1n << BigInt(capabilityNumber(c))), 0n);
const cpuList = (s: string) => {
  const out = new Set<number>();
  for (const part of s.trim().split(',').filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    for (let i = a!; i <= (b ?? a!); i++) out.add(i);
  }
  return [...out].sort((x, y) => x - y).join(',');
};

export function attest(plan: Plan, view: ProcView, ids: AttestIds): Verdict[] {
  const out: Verdict[] = [];
  const ok = (s: Step, detail: string) => out.push({ step: s.id, verdict: 'verified', detail });
  const unchecked = (s: Step, why: string) => out.push({ step: s.id, verdict: 'not checkable', detail: why });
  const check = (s: Step, good: boolean, want: string, found: string) => out.push(good ? { step: s.id, verdict: 'verified', detail: want } : { step: s.id, verdict: 'mismatch', detail: `expected ${want}, found ${found}` });
  const idmap = plan.steps.find((s) => s.kind === 'idmap');
  const uidMap = idmap?.args.uid, gidMap = idmap?.args.gid;
  const at = (p: string) => view.mounts.filter((m) => m.point === p).at(-1);
  const mountCheck = (s: Step, target: string, want: { fstype?: string; ro?: boolean; flags?: readonly string[] }) => {
    // A target reached through a symlink inside the root is mounted where the link leads (in the root).
    const m = at(target) ?? at(view.realPath(target));
    if (!m) { check(s, false, `a mount on ${target}`, 'none'); return; }
    const bad: string[] = [];
    if (want.fstype && m.fstype !== want.fstype) bad.push(`type ${m.fstype}`);
    if (want.ro !== undefined && m.opts.includes('ro') !== want.ro) bad.push(m.opts.includes('ro') ? 'read-only' : 'writable');
    for (const f of want.flags ?? []) if (!m.opts.includes(f)) bad.push(`no ${f}`);
    const wanted = [want.fstype, want.ro === undefined ? '' : want.ro ? 'ro' : 'rw', ...(want.flags ?? [])].filter(Boolean).join(',');
    check(s, bad.length === 0, `${target} mounted (${wanted})`, `${target} ${bad.join(', ')}`);
  };
  /** A path inside the sandbox; null (and the step not checkable) when the host cannot read it. */
  const pathOf = (s: Step, p: string): PathKind | undefined | null => {
    const k = view.path(p);
    if (k?.type !== 'unreadable') return k;
    unchecked(s, `the sandbox's ${p} cannot be read from the host (${k.why})`);
    return null;
  };
  const status = view.status;
  const uid0 = Number(status.Uid?.split(/\s+/)[0]);
  const root = ids.uid === 0;
  const nsView = (type: string) => ({ inside: view.ns[NS_FILE[type] ?? type], host: view.hostNs[NS_FILE[type] ?? type] });

  for (const s of plan.steps) {
    switch (s.kind) {
      case 'state.create': check(s, view.stateFile('owner') !== undefined || view.stateFile('.') !== undefined, `${s.args.path} exists`, 'no state folder'); break;
      case 'rootfs.host': case 'rootfs.dir': case 'rootfs.image': unchecked(s, 'preparation on the host, checked as it was applied; the mount step that uses it is checked'); break;
      case 'image.note': unchecked(s, 'a note about the image: nothing is applied'); break;
      case 'volume.create': unchecked(s, 'the volume\'s folder, made on the host (whole, or not at all) before the clone; its mount step is checked'); break;
      case 'cgroup.create': check(s, view.cgroupFile('pids', 'cgroup.procs') !== undefined || view.cgroupFile('memory', 'cgroup.procs') !== undefined, `the cgroup ${s.args.path}`, 'no cgroup folder'); break;
      case 'cgroup.set': {
        const { controller, file, value } = s.args;
        const got = view.cgroupFile(controller, file);
        if (got === undefined) { check(s, false, `${file} = ${value}`, `no ${file}`); break; }
        const g = got.trim();
        if (/^(io\.max|blkio\.throttle\.)/.test(file)) { unchecked(s, `${file} names devices by major:minor and lists every device's limits; written in one write that fails whole`); break; }
        let good: boolean;
        if (value === 'inherit') good = g !== '';
        else if (file === 'cpuset.cpus') good = cpuList(g) === cpuList(value);
        else if (/^[0-9]+$/.test(value) && /^[0-9]+$/.test(g)) good = Math.abs(Number(g) - Number(value)) < 4096 && Number(g) <= Number(value); // memory limits are rounded down to pages
        // A weight file may read `default N` (io.weight, BFQ's).
        else good = g.split('\n')[0]!.trim().replace(/^default /, '') === value.trim().replace(/^default /, '');
        check(s, good, `${file} = ${value}`, `${file} = ${g.split('\n')[0]}`);
        break;
      }
      case 'cgroup.attach': {
        const path = `/${s.args.path}`;
        const lines = view.cgroups.filter((l) => l.split(':')[2] === path || l.split(':')[2]?.startsWith(`${path}/`));
        check(s, lines.length > 0, `the child in ${path}`, view.cgroups.join('; ') || 'no cgroup');
        break;
      }
      case 'idmap': {
        const want = (m: IdMap[]) => m.map((x) => `${x.container} ${x.host} ${x.size}`).join(',');
        check(s, parseMap(view.uidMap) === want(s.args.uid) && parseMap(view.gidMap) === want(s.args.gid), `uid_map ${want(s.args.uid)}, gid_map ${want(s.args.gid)}`, `uid_map ${parseMap(view.uidMap)}, gid_map ${parseMap(view.gidMap)}`);
        break;
      }
      case 'ns.new': case 'ns.host': {
        const { inside, host } = nsView(s.args.type);
        if (!inside || !host) { unchecked(s, `this kernel has no ${s.args.type} namespace file`); break; }
        if (s.kind === 'ns.new') check(s, inside !== host, `a new ${s.args.type} namespace`, `the host's (${host})`);
        else check(s, inside === host, `the host's ${s.args.type} namespace`, `${inside}, not the host's ${host}`);
        break;
      }
      case 'ns.join': case 'ns.enter': {
        const inside = nsView(s.args.type).inside;
        const want = view.nsInode(s.args.path);
        check(s, inside !== undefined && want !== undefined && inside === `${NS_FILE[s.args.type] ?? s.args.type}:[${want}]`, `the namespace at ${s.args.path}`, inside ?? 'none');
        break;
      }
      case 'proc.fork': case 'console': unchecked(s, 'a process and a terminal of `sandbox exec`: what they set up is checked by the steps that follow'); break;
      case 'net.host': case 'net.joined': unchecked(s, 'the network namespace step says which one it is, and is checked'); break;
      case 'net.none': check(s, view.interfaces.join(',') === 'lo', 'only lo', view.interfaces.join(', ')); break;
      case 'net.loopback': check(s, view.interfaces.includes('lo') && view.localAddresses.includes('127.0.0.1'), 'lo up with 127.0.0.1', `${view.interfaces.join(', ')}; local ${view.localAddresses.join(', ') || 'none'}`); break;
      case 'net.veth': {
        const hostEnd = hostInterface(plan.name);
        check(s, view.interfaces.includes(s.args.inside) && view.hostInterface(hostEnd), `${s.args.inside} in the sandbox, ${hostEnd} on the host`, `${view.interfaces.join(', ')} in the sandbox${view.hostInterface(hostEnd) ? '' : `, no ${hostEnd} on the host`}`);
        break;
      }
      case 'net.address': {
        const route = view.routes.find((r) => r.iface === s.args.interface && r.destination === '0.0.0.0');
        check(s, route?.gateway === s.args.gateway && view.localAddresses.some((a) => a !== '127.0.0.1'), `${s.args.interface} with an address and a default route through ${s.args.gateway}`, route ? `a default route through ${route.gateway}` : 'no default route');
        break;
      }
      case 'net.usernet': {
        const route = view.routes.find((r) => r.destination === '0.0.0.0' && r.iface !== 'lo');
        check(s, route !== undefined && view.interfaces.some((i) => i !== 'lo'), `an interface of ${s.args.tool} with a default route`, route ? `a default route through ${route.gateway} on ${route.iface}` : `no default route (${view.interfaces.join(', ')})`);
        break;
      }
      case 'net.nat': unchecked(s, 'nftables rules are applied in one transaction that fails whole; reading them back would run nft (milliseconds)'); break;
      case 'net.port': unchecked(s, s.args.path === 'pasta' || s.args.path === 'slirp4netns' ? `${s.args.path} publishes the port; the run waits until it accepts connections` : 'nftables rules are applied in one transaction that fails whole; reading them back would run nft (milliseconds)'); break;
      case 'net.hosts': check(s, (view.stateFile('hosts') ?? '').includes('localhost'), 'the sandbox\'s /etc/hosts written', 'none'); break;
      case 'net.resolv': check(s, view.stateFile('resolv.conf') !== undefined, 'the sandbox\'s /etc/resolv.conf written', 'none'); break;
      case 'mount.private': {
        const shared = new Set(plan.steps.flatMap((x) => (x.kind === 'mount.bind' && x.args.propagation?.includes('shared') ? [x.args.target] : [])));
        const leaks = view.mounts.filter((m) => m.optional.some((o) => o.startsWith('shared:')) && !shared.has(m.point));
        check(s, leaks.length === 0, 'no mount shared with the host', `shared: ${leaks.map((m) => m.point).join(', ')}`);
        break;
      }
      case 'mount.root': mountCheck(s, '/', s.args.fstype === 'bind' ? {} : { fstype: s.args.fstype }); break;
      case 'mount.pivot': check(s, !view.rootIsHosts, 'a root other than the host\'s', 'the host\'s root'); break;
      case 'mount.proc': mountCheck(s, '/proc', { fstype: 'proc', flags: s.args.flags }); break;
      case 'mount.dev': mountCheck(s, '/dev', { fstype: 'tmpfs', flags: s.args.flags }); break;
      case 'mount.devpts': {
        const ptmx = pathOf(s, '/dev/ptmx');
        if (ptmx === null) break;
        const m = at('/dev/pts');
        check(s, m?.fstype === 'devpts' && ptmx?.type === 'link' && ptmx.target === 'pts/ptmx', 'a devpts on /dev/pts, /dev/ptmx → pts/ptmx', `${m?.fstype ?? 'nothing'} on /dev/pts`);
        break;
      }
      case 'mount.tmpfs.dev': mountCheck(s, s.args.target, { fstype: 'tmpfs', flags: s.args.flags }); break;
      case 'mount.tmpfs': mountCheck(s, s.args.target, { fstype: 'tmpfs', ro: s.args.readOnly, flags: s.args.flags }); break;
      case 'mount.bind': case 'mount.volume': mountCheck(s, s.args.target, { ro: s.args.readOnly, flags: s.args.flags }); break;
      case 'mount.netfile': mountCheck(s, s.args.target, { flags: ['nosuid', 'nodev', 'noexec'] }); break;
      case 'mount.sys': mountCheck(s, '/sys', { ro: true }); break;
      case 'mount.cgroup': mountCheck(s, '/sys/fs/cgroup', { ro: true }); break;
      case 'mount.link': {
        const p = pathOf(s, s.args.path);
        if (p === null) break;
        check(s, p?.type === 'link' && p.target === s.args.target, `${s.args.path} → ${s.args.target}`, p ? p.type : 'absent');
        break;
      }
      case 'dev.links': {
        const links: [string, string][] = [['/dev/fd', '/proc/self/fd'], ['/dev/stdin', '/proc/self/fd/0'], ['/dev/stdout', '/proc/self/fd/1'], ['/dev/stderr', '/proc/self/fd/2']];
        const bad = links.filter(([l, t]) => { const p = view.path(l); return !(p?.type === 'link' && p.target === t); });
        if (links.some(([l]) => view.path(l)?.type === 'unreadable')) { unchecked(s, 'the sandbox\'s /dev cannot be read from the host'); break; }
        check(s, bad.length === 0, '/dev/fd, stdin, stdout, stderr linked to /proc/self/fd', `${bad.map((b) => b[0]).join(', ')} missing`);
        break;
      }
      case 'dev.node': {
        const p = pathOf(s, `/dev/${s.args.name}`);
        if (p === null) break;
        const want = s.args.major * 256 + s.args.minor;
        check(s, p?.type === 'char' && p.rdev === want, `/dev/${s.args.name} a character device ${s.args.major}:${s.args.minor}`, p ? p.type : 'absent');
        break;
      }
      case 'dev.bind': {
        const p = pathOf(s, s.args.target);
        if (p === null) break;
        check(s, p?.type === 'char' || p?.type === 'block', `${s.args.target} a device`, p ? p.type : 'absent');
        break;
      }
      case 'sysctl': unchecked(s, 'a namespaced sysctl reads as the reader\'s namespace, so the host cannot read the sandbox\'s value; the write to the sandbox\'s /proc/sys was checked'); break;
      case 'mount.mask': case 'mount.readonly': {
        // The mount table first; the path itself only when nothing is mounted there.
        const m = at(s.args.path);
        if (m) {
          // A file is masked by /dev/null bound on it, a folder by an empty read-only tmpfs.
          const good = s.kind === 'mount.mask' ? m.fstype !== 'tmpfs' || m.opts.includes('ro') : m.opts.includes('ro');
          check(s, good, `${s.args.path} ${s.kind === 'mount.mask' ? 'covered' : 'read-only'}`, `${s.args.path} ${s.kind === 'mount.mask' ? 'visible' : 'writable'}`);
          break;
        }
        const p = view.path(s.args.path);
        if (!p) ok(s, `${s.args.path} is absent`);
        else if (p.type === 'unreadable') unchecked(s, `the sandbox's ${s.args.path} cannot be read from the host (${p.why})`);
        else check(s, false, `${s.args.path} ${s.kind === 'mount.mask' ? 'covered' : 'read-only'}`, `${s.args.path} ${s.kind === 'mount.mask' ? 'visible' : 'not a mount'}`);
        break;
      }
      case 'mount.root-readonly': mountCheck(s, '/', { ro: true }); break;
      case 'hostname': unchecked(s, 'the hostname is held by the sandbox\'s uts namespace and reads as the reader\'s; sethostname\'s result was checked'); break;
      case 'user.ids': {
        const u = hostId(ids.uid, uidMap), g = hostId(ids.gid, gidMap);
        const gid0 = Number(status.Gid?.split(/\s+/)[0]);
        check(s, uid0 === u && gid0 === g, `uid ${ids.uid}, gid ${ids.gid}${idmap ? ` (host ${u}, ${g})` : ''}`, `uid ${status.Uid}, gid ${status.Gid}`);
        break;
      }
      case 'user.groups': {
        if (s.args.inherited) {
          // What this CLI holds is what the child was cloned with, and cannot drop.
          const mine = [...new Set(process.getgroups?.() ?? [])].sort((a, b) => a - b).join(' ');
          const got = (status.Groups ?? '').trim().split(/\s+/).filter(Boolean).map(Number).sort((a, b) => a - b).join(' ');
          check(s, mine === got, `the caller's groups ${mine || 'none'}`, `groups ${got || 'none'}`);
          break;
        }
        const want = ids.groups.map((x) => hostId(x, gidMap)).sort((a, b) => (a ?? 0) - (b ?? 0)).join(' ');
        const got = (status.Groups ?? '').trim().split(/\s+/).filter(Boolean).map(Number).sort((a, b) => a - b).join(' ');
        check(s, want === got, `groups ${want || 'none'}`, `groups ${got || 'none'}`);
        break;
      }
      case 'umask': check(s, parseInt(status.Umask ?? '', 8) === s.args.umask, `umask ${s.args.umask.toString(8).padStart(4, '0')}`, `umask ${status.Umask}`); break;
      case 'rlimit': {
        const row = Object.hasOwn(RLIMITS, s.args.name) ? view.limits[RLIMITS[s.args.name]!] : undefined;
        check(s, !!row && row[0] === s.args.soft && row[1] === s.args.hard, `${s.args.name} ${s.args.soft}/${s.args.hard}`, row ? `${row[0]}/${row[1]}` : 'no such limit');
        break;
      }
      case 'caps.apply': {
        const bounding = capMask(s.args.bounding), ambient = capMask(s.args.ambient) & bounding;
        const want: Record<string, bigint> = root
          ? { CapBnd: bounding, CapPrm: bounding, CapEff: bounding, CapInh: 0n, CapAmb: 0n }
          : { CapBnd: bounding, CapPrm: ambient, CapEff: ambient, CapInh: ambient, CapAmb: ambient };
        const bad = Object.entries(want).filter(([k, m]) => BigInt(`0x${status[k] ?? 'x'}`) !== m);
        check(s, bad.length === 0, Object.entries(want).map(([k, m]) => `${k} ${m.toString(16)}`).join(', '), bad.map(([k]) => `${k} ${status[k]}`).join(', '));
        break;
      }
      case 'cap.keep': case 'cap.drop': {
        const has = (BigInt(`0x${status.CapBnd ?? '0'}`) >> BigInt(capabilityNumber(s.args.cap))) & 1n;
        check(s, (has === 1n) === (s.kind === 'cap.keep'), `CAP_${s.args.cap} ${s.kind === 'cap.keep' ? 'in' : 'out of'} the bounding set`, has ? 'in it' : 'out of it');
        break;
      }
      case 'nnp': case 'nnp.off': check(s, status.NoNewPrivs === (s.kind === 'nnp' ? '1' : '0'), `no_new_privs ${O(s.kind === 'nnp')}`, `NoNewPrivs ${status.NoNewPrivs}`); break;
      case 'seccomp': check(s, status.Seccomp === '2' && Number(status.Seccomp_filters ?? 1) >= 1, 'a seccomp filter (mode 2)', `Seccomp ${status.Seccomp}, ${status.Seccomp_filters ?? '?'} filters`); break;
      case 'seccomp.off': check(s, status.Seccomp === '0', 'no seccomp filter', `Seccomp ${status.Seccomp}`); break;
      case 'fds.close': {
        // Until exec the child holds its setup sockets: every descriptor above 2 must close on exec.
        const open = view.fds.filter((f) => f.fd > 2 && !f.cloexec).map((f) => f.fd);
        check(s, open.length === 0, 'no descriptor above 2 that survives exec', `descriptors ${open.join(', ')} without O_CLOEXEC`);
        break;
      }
      case 'exec': unchecked(s, 'the command itself, which starts once the attestation passes; its working folder is entered then (a failure there is exit 126)'); break;
      default: {
        const unplaced: never = s;
        throw new Error(`internal error: no attestation rule for ${(unplaced as Step).kind}`);
      }
    }
  }
  return out;
}

/** The child's facts, read by the host from /proc/PID (and its cgroup and state folders). */
export function readView(pid: number, o: { cgroup: (controller: string, file: string) => string | undefined; stateDir?: string }): ProcView {
  const read = (p: string) => { try { return readFileSync(p, 'utf8'); } catch { return undefined; } };
  const proc = `/proc/${pid}`;
  const status: Record<string, string> = {};
  for (const l of (read(`${proc}/status`) ?? '').split('\n')) { const i = l.indexOf(':'); if (i > 0) status[l.slice(0, i)] = l.slice(i + 1).trim(); }
  const mounts = (read(`${proc}/mountinfo`) ?? '').split('\n').filter(Boolean).map((l) => {
    const [pre, post = ''] = l.split(' - ');
    const f = pre!.split(' ');
    return { point: unescape(f[4]!), opts: f[5]!.split(','), optional: f.slice(6), fstype: post.split(' ')[0]! };
  });
  const nsOf = (base: string) => {
    const out: Record<string, string> = {};
    try { for (const n of readdirSync(`${base}/ns`)) { try { out[n] = readlinkSync(`${base}/ns/${n}`); } catch { /* gone */ } } } catch { /* none */ }
    return out;
  };
  const limits: [number, number][] = (read(`${proc}/limits`) ?? '').split('\n').slice(1, 1 + LIMIT_ROWS).map((l) => {
    const [soft, hard] = l.slice(26).trim().split(/\s+/);
    const n = (v: string | undefined) => (v === 'unlimited' ? -1 : Number(v));
    return [n(soft), n(hard)];
  });
  const interfaces = (read(`${proc}/net/dev`) ?? '').split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter(Boolean).sort();
  const hex = (h: string) => [0, 1, 2, 3].map((i) => parseInt(h.slice(6 - 2 * i, 8 - 2 * i), 16)).join('.');
  const routes = (read(`${proc}/net/route`) ?? '').split('\n').slice(1).filter(Boolean).map((l) => { const f = l.split(/\s+/); return { iface: f[0]!, destination: hex(f[1]!), gateway: hex(f[2]!) }; });
  // /proc/PID/net/fib_trie's local table: each address of the namespace is a "/32 host LOCAL" leaf.
  const localAddresses: string[] = [];
  const trie = (read(`${proc}/net/fib_trie`) ?? '').split('\n');
  for (let i = 1; i < trie.length; i++) if (/\/32 host LOCAL/.test(trie[i]!)) { const m = /([0-9.]+)\s*$/.exec(trie[i - 1]!.replace(/^[\s|+-]+/, '')); if (m && !localAddresses.includes(m[1]!)) localAddresses.push(m[1]!); }
  const fds: { fd: number; cloexec: boolean }[] = [];
  try {
    for (const n of readdirSync(`${proc}/fd`)) {
      const flags = /^flags:\s+([0-7]+)/m.exec(read(`${proc}/fdinfo/${n}`) ?? '')?.[1];
      if (flags !== undefined) fds.push({ fd: Number(n), cloexec: (parseInt(flags, 8) & 0o2000000) !== 0 });
    }
  } catch { /* unreadable: the fds.close step finds none open */ }
  let rootIsHosts = true;
  try { const a = statSync(`${proc}/root/`), b = statSync('/'); rootIsHosts = a.dev === b.dev && a.ino === b.ino; } catch { /* unreadable: counted as the host's */ }
  return {
    status, uidMap: read(`${proc}/uid_map`) ?? '', gidMap: read(`${proc}/gid_map`) ?? '', mounts, ns: nsOf(proc), hostNs: nsOf('/proc/self'), limits,
    cgroups: (read(`${proc}/cgroup`) ?? '').split('\n').filter(Boolean), interfaces, routes, localAddresses, rootIsHosts, fds,
    path: pathOf,
    realPath: (p) => {
      const parts = p.split('/').filter(Boolean);
      const done: string[] = [];
      for (let hops = 0; parts.length && hops < 40;) {
        const part = parts.shift()!;
        if (part === '.') continue;
        if (part === '..') { done.pop(); continue; }
        let link: string | undefined;
        try { link = readlinkSync(join(`${proc}/root`, ...done, part)); } catch { /* not a link, or absent */ }
        if (link === undefined) { done.push(part); continue; }
        hops++;
        if (link.startsWith('/')) done.length = 0;
        parts.unshift(...link.split('/').filter(Boolean));
      }
      return `/${done.join('/')}`;
    },
    cgroupFile: o.cgroup,
    stateFile: (name) => (o.stateDir ? (name === '.' ? (statSafe(o.stateDir) ? '' : undefined) : read(join(o.stateDir, name))) : undefined),
    nsInode: (path) => { try { return statSync(path).ino; } catch { return undefined; } },
    hostInterface: (name) => statSafe(`/sys/class/net/${name}`),
  };
  function pathOf(p: string): PathKind | undefined {
      try {
        const st = lstatSync(join(`${proc}/root`, p));
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
}

const statSafe = (p: string) => { try { statSync(p); return true; } catch { return false; } };
/** mountinfo escapes space, tab, newline and backslash as octal. */
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
