// The attestation's reading of a child (src/engine/attest-view.ts): the records of
// sbx_proc_facts decoded as the rules expect them, on a made-up buffer, and, where the engine is
// built, libsbx's own reading of this test's process compared with Node's reading of the same files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { hasEngine } from '../helpers/sandbox';
import { ROOT } from '../helpers/load';
import { FACT, FACT_MOUNT_SIZE, FACT_ROUTE_SIZE, FACT_STATUS_OFFSET as SO, FACT_STATUS_SIZE, MNT } from '../../src/ffi/generated/abi';
import { decodeFacts, hostPeerGroups, wantedFacts } from '../../src/engine/attest-view';
import type { Plan } from '../../src/plan/types';

/** One record as libsbx writes it: kind, result, length (little-endian int32), then the bytes. */
function record(kind: number, result: number, body: string | Buffer = ''): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const head = Buffer.alloc(12);
  head.writeUInt32LE(kind, 0);
  head.writeInt32LE(result, 4);
  head.writeUInt32LE(b.length, 8);
  return Buffer.concat([head, b]);
}

const u32 = (...v: number[]) => Buffer.from(new Uint32Array(v).buffer);
const i64 = (...v: number[]) => Buffer.from(new BigInt64Array(v.map(BigInt)).buffer);
function status(): Buffer {
  const b = Buffer.alloc(FACT_STATUS_SIZE);
  for (const [k, v] of [['uid', 1000], ['gid', 1001], ['umask', 0o22], ['no_new_privs', 1], ['seccomp', 2], ['seccomp_filters', -1]] as const) b.writeBigInt64LE(BigInt(v), SO[k]);
  b.writeBigUInt64LE(0x1ffffffffffn, SO.cap_bnd);
  b.writeBigUInt64LE(0xffffffffffffffffn, SO.cap_amb);
  b.writeUInt32LE(2, SO.ngroups);
  return Buffer.concat([b, u32(10, 20)]);
}
function mount(point: string, fstype: string, flags: number, shared = 0, master = 0): Buffer {
  const p = Buffer.from(point, 'utf8');
  const head = Buffer.alloc(FACT_MOUNT_SIZE);
  head.writeUInt32LE(flags, 0); head.writeUInt32LE(shared, 4); head.writeUInt32LE(master, 8); head.writeUInt16LE(p.length, 12); head.writeUInt16LE(fstype.length, 14);
  return Buffer.concat([head, p, Buffer.from(fstype)]);
}
function route(iface: string, dst: number[], gw: number[]): Buffer {
  const b = Buffer.alloc(FACT_ROUTE_SIZE);
  b.write(iface, 0);
  Buffer.from([...dst, ...gw]).copy(b, 16);
  return b;
}

test('the records decode into the facts the rules compare: status, limits, maps, mounts, the network, ns links, fds, the root, each path asked', () => {
  const asked = ['/dev/null', '/gone', '/secret', '/dev/fd', '/etc', '/bin/x', '/run/s'];
  const buf = Buffer.concat([
    record(FACT.STATUS, 0, status()),
    record(FACT.LIMITS, 0, i64(-1, -1, 64, 128)),
    record(FACT.UID_MAP, 0, u32(0, 100000, 65536, 65536, 1000, 1)),
    record(FACT.MOUNTINFO, 0, Buffer.concat([mount('/caf\u00e9 x', 'ext4', MNT.RO | MNT.NOSUID, 7), mount('/proc', 'proc', MNT.NODEV, 0, 3)])),
    record(FACT.GID_MAP, -constants.errno.EACCES),
    record(FACT.CGROUP, 0, '12:pids:/sandbox/x\n0::/\n'),
    record(FACT.NET_DEV, 0, 'lo\0eth0\0'),
    record(FACT.NET_ROUTE, 0, route('eth0', [0, 0, 0, 0], [10, 0, 0, 1])),
    record(FACT.FIB_TRIE, 0, Buffer.from([127, 0, 0, 1, 10, 0, 0, 2])),
    record(FACT.NS, 0, 'mnt mnt:[4026531840]\nnet net:[4026531992]\n'),
    record(FACT.FDS, 0, u32(7)),
    record(FACT.ROOT, 0),
    record(FACT.PATH, 0, `c${(1 << 8) | 3}`),
    record(FACT.PATH, -constants.errno.ENOENT),
    record(FACT.PATH, -constants.errno.EACCES),
    record(FACT.PATH, 0, 'l/proc/self/fd'),
    record(FACT.PATH, 0, 'd'),
    record(FACT.PATH, 0, 'f'),
    record(FACT.PATH, 0, 'o'),
  ]);
  const f = decodeFacts(buf, asked);
  assert.deepEqual(f.status, { uid: 1000, gid: 1001, groups: [10, 20], umask: 0o22, noNewPrivs: 1, seccomp: 2, seccompFilters: -1, CapInh: 0n, CapPrm: 0n, CapEff: 0n, CapBnd: 0x1ffffffffffn, CapAmb: 0xffffffffffffffffn });
  assert.deepEqual(f.limits, [[-1, -1], [64, 128]]);
  assert.deepEqual(f.uidMap, [{ container: 0, host: 100000, size: 65536 }, { container: 65536, host: 1000, size: 1 }]);
  // A file that could not be read is empty, never a reading.
  assert.deepEqual(f.gidMap, []);
  // A mount point with UTF-8 in it reads as such, not byte by byte.
  assert.deepEqual(f.mounts, [{ point: '/caf\u00e9 x', fstype: 'ext4', flags: MNT.RO | MNT.NOSUID, shared: 7, master: 0 }, { point: '/proc', fstype: 'proc', flags: MNT.NODEV, shared: 0, master: 3 }]);
  assert.deepEqual(f.cgroups, ['12:pids:/sandbox/x', '0::/']);
  assert.deepEqual(f.interfaces, ['eth0', 'lo']);
  assert.deepEqual(f.routes, [{ iface: 'eth0', destination: '0.0.0.0', gateway: '10.0.0.1' }]);
  assert.deepEqual(f.localAddresses, ['127.0.0.1', '10.0.0.2']);
  assert.deepEqual(f.ns, { mnt: 'mnt:[4026531840]', net: 'net:[4026531992]' });
  assert.deepEqual(f.inheritedFds, [7]);
  assert.equal(f.rootIsHosts, false);
  assert.deepEqual(f.paths.get('/dev/null'), { type: 'char', rdev: 259 });
  assert.equal(f.paths.has('/gone'), true);
  assert.equal(f.paths.get('/gone'), undefined);
  assert.deepEqual(f.paths.get('/secret'), { type: 'unreadable', why: 'EACCES' });
  assert.deepEqual(f.paths.get('/dev/fd'), { type: 'link', target: '/proc/self/fd' });
  assert.deepEqual([f.paths.get('/etc'), f.paths.get('/bin/x'), f.paths.get('/run/s')], [{ type: 'dir' }, { type: 'file' }, { type: 'other' }]);
  // A root that could not be compared counts as the host's (the pivot step then fails its check).
  assert.equal(decodeFacts(record(FACT.ROOT, -constants.errno.EACCES), []).rootIsHosts, true);
  assert.equal(decodeFacts(record(FACT.ROOT, 1), []).rootIsHosts, true);
  // Status unread: every field absent, which no rule takes for what it wants.
  assert.equal(decodeFacts(record(FACT.STATUS, -constants.errno.EACCES), []).status.uid, -1);
});

test('the facts and paths asked ahead are every one a rule looks at, once each', () => {
  const step = (kind: string, args: object) => ({ id: kind, kind, args }) as unknown as Plan['steps'][number];
  const plan = { steps: [
    step('mount.devpts', {}), step('dev.links', {}), step('dev.node', { name: 'null' }), step('dev.bind', { target: '/dev/sda' }), step('dev.make', { target: '/dev/fuse' }),
    step('mount.mask', { path: '/proc/kcore' }), step('mount.readonly', { path: '/proc/sys' }), step('mount.link', { path: '/etc/mtab', target: '/proc/mounts' }),
    step('mount.mask', { path: '/proc/kcore' }), step('hostname', { name: 'x' }), step('net.loopback', {}), step('nnp', {}),
  ] } as unknown as Plan;
  const { want, paths } = wantedFacts(plan);
  assert.deepEqual(paths, ['/dev/ptmx', '/dev/fd', '/dev/stdin', '/dev/stdout', '/dev/stderr', '/dev/null', '/dev/sda', '/dev/fuse', '/proc/kcore', '/proc/sys', '/etc/mtab']);
  const kinds = Object.entries(FACT).filter(([, v]) => want & (1 << v)).map(([k]) => k).sort();
  assert.deepEqual(kinds, ['FIB_TRIE', 'MOUNTINFO', 'NET_DEV', 'STATUS']);
});

test('the host\'s peer groups are read from its mount table\'s optional fields', () => {
  const text = '22 1 0:21 / /a rw shared:5 master:1 - ext4 /dev/x rw\n23 1 0:22 / /b rw - tmpfs t rw\n24 1 0:23 / /c\\040d rw shared:9 - tmpfs t rw\n';
  assert.deepEqual([...hostPeerGroups(text)], [5, 9]);
});

/** /proc/self/mountinfo as the rules read it, parsed here on its own. */
function mountsOf(text: string) {
  const bits: Record<string, number> = { ro: MNT.RO, nosuid: MNT.NOSUID, nodev: MNT.NODEV, noexec: MNT.NOEXEC, noatime: MNT.NOATIME, nodiratime: MNT.NODIRATIME, relatime: MNT.RELATIME };
  return text.split('\n').filter(Boolean).map((l) => {
    const [pre, post] = l.split(' - ');
    const w = pre!.split(' ');
    const opt = w.slice(6);
    const num = (p: string) => Number(opt.find((o) => o.startsWith(p))?.slice(p.length) ?? 0);
    const flags = w[5]!.split(',').reduce((m, o) => m | (bits[o] ?? 0), opt.includes('unbindable') ? MNT.UNBINDABLE : 0);
    return { point: w[4]!.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))), fstype: post!.split(' ')[0]!, flags, shared: num('shared:'), master: num('master:') };
  });
}

test('libsbx reads a process as Node reads it: its status, limits, maps, mounts, network, ns links, descriptors and paths through its root', { skip: !hasEngine && 'the native engine is not built' }, () => {
  process.env.SANDBOX_LIBSBX ??= join(ROOT, 'native/build/libsbx.so');
  const lib = (require('../../src/ffi/libsbx') as typeof import('../../src/ffi/libsbx')).loadLibSbx();
  const asked = ['/proc', '/dev/null', `/proc/${process.pid}/ns/net`, '/no/such/path'];
  const all = Object.values(FACT).reduce((m, k) => m | (1 << k), 0);
  const f = decodeFacts(lib.procFacts(process.pid, all, asked), asked);
  const st = readFileSync('/proc/self/status', 'utf8');
  const field = (k: string) => new RegExp(`^${k}:[ \\t]*(.*)$`, 'm').exec(st)?.[1] ?? '';
  assert.equal(f.status.uid, Number(field('Uid').split(/\s+/)[0]));
  assert.equal(f.status.gid, Number(field('Gid').split(/\s+/)[0]));
  assert.deepEqual(f.status.groups, field('Groups').split(/\s+/).filter(Boolean).map(Number));
  assert.equal(f.status.umask, parseInt(field('Umask'), 8));
  assert.equal(f.status.noNewPrivs, Number(field('NoNewPrivs')));
  assert.equal(f.status.seccomp, Number(field('Seccomp')));
  for (const k of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'] as const) assert.equal(f.status[k], BigInt(`0x${field(k)}`), k);
  const limits = readFileSync('/proc/self/limits', 'utf8').split('\n').slice(1).filter(Boolean).map((l) => l.slice(26).trim().split(/\s+/).slice(0, 2).map((v) => (v === 'unlimited' ? -1 : Number(v))));
  assert.deepEqual(f.limits, limits);
  const map = (t: string) => t.trim().split('\n').map((l) => { const [container, host, size] = l.trim().split(/\s+/).map(Number); return { container, host, size }; });
  assert.deepEqual(f.uidMap, map(readFileSync('/proc/self/uid_map', 'utf8')));
  assert.deepEqual(f.gidMap, map(readFileSync('/proc/self/gid_map', 'utf8')));
  assert.deepEqual(f.mounts, mountsOf(readFileSync('/proc/self/mountinfo', 'utf8')));
  assert.deepEqual(f.cgroups, readFileSync('/proc/self/cgroup', 'utf8').split('\n').filter(Boolean));
  assert.deepEqual(f.interfaces, readFileSync('/proc/self/net/dev', 'utf8').split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter(Boolean).sort());
  assert.equal(f.routes.length, readFileSync('/proc/self/net/route', 'utf8').split('\n').slice(1).filter(Boolean).length);
  assert.ok(f.localAddresses.includes('127.0.0.1'));
  for (const n of readdirSync('/proc/self/ns')) assert.equal(f.ns[n], readlinkSync(`/proc/self/ns/${n}`), n);
  // Descriptors above 2 open across the call without O_CLOEXEC are listed, and only they.
  // (the listing's own descriptor is closed by the time its fdinfo is read: counted as closing on exec)
  const flags = (n: number) => { try { return /flags:\s*([0-7]+)/.exec(readFileSync(`/proc/self/fdinfo/${n}`, 'utf8'))?.[1] ?? '2000000'; } catch { return '2000000'; } };
  const cloexec = (n: number) => (parseInt(flags(n), 8) & 0o2000000) !== 0;
  const inherited = readdirSync('/proc/self/fd').map(Number).filter((n) => n > 2 && !cloexec(n));
  for (const n of f.inheritedFds) assert.ok(n > 2, `fd ${n}`);
  for (const n of inherited) assert.ok(f.inheritedFds.includes(n), `fd ${n} is inherited across exec`);
  assert.equal(f.rootIsHosts, true);
  assert.deepEqual(f.paths.get('/proc'), { type: 'dir' });
  assert.deepEqual(f.paths.get('/dev/null'), { type: 'char', rdev: statSync('/dev/null').rdev });
  assert.deepEqual(f.paths.get(`/proc/${process.pid}/ns/net`), { type: 'link', target: readlinkSync('/proc/self/ns/net') });
  assert.equal(f.paths.has('/no/such/path'), true);
  assert.equal(f.paths.get('/no/such/path'), undefined);
  // Only the facts asked for are read.
  const some = decodeFacts(lib.procFacts(process.pid, 1 << FACT.MOUNTINFO, []), []);
  assert.deepEqual([some.status.uid, some.limits.length, some.interfaces.length, some.mounts.length > 0], [-1, 0, 0, true]);
});
