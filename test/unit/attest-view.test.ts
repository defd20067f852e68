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
import { FACT } from '../../src/ffi/generated/abi';
import { askedPaths, decodeFacts } from '../../src/engine/attest-view';
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

test('the records decode into the facts the rules compare: files, ns links, fd flags, the root, each path asked', () => {
  const asked = ['/dev/null', '/gone', '/secret', '/dev/fd', '/etc', '/bin/x', '/run/s'];
  const buf = Buffer.concat([
    record(FACT.STATUS, 0, 'Name:\tsh\nUid:\t0\t0\t0\t0\n'),
    record(FACT.MOUNTINFO, 0, '1 0 8:1 / /caf\u00e9 rw - ext4 /dev/sda1 rw\n'),
    record(FACT.LIMITS, -constants.errno.EACCES),
    record(FACT.NS, 0, 'mnt mnt:[4026531840]\nnet net:[4026531992]\n'),
    record(FACT.FDS, 0, '0 0100002\n3 02000000\n'),
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
  assert.equal(f.files.get(FACT.STATUS), 'Name:\tsh\nUid:\t0\t0\t0\t0\n');
  // A mount point with UTF-8 in it reads as such, not byte by byte.
  assert.equal(f.files.get(FACT.MOUNTINFO), '1 0 8:1 / /caf\u00e9 rw - ext4 /dev/sda1 rw\n');
  // A file that could not be read is absent, never an empty reading.
  assert.equal(f.files.has(FACT.LIMITS), false);
  assert.deepEqual(f.ns, { mnt: 'mnt:[4026531840]', net: 'net:[4026531992]' });
  assert.deepEqual(f.fds, [{ fd: 0, cloexec: false }, { fd: 3, cloexec: true }]);
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
});

test('the paths asked ahead are every path a rule looks at, once each', () => {
  const step = (kind: string, args: object) => ({ id: kind, kind, args }) as unknown as Plan['steps'][number];
  const plan = { steps: [
    step('mount.devpts', {}), step('dev.links', {}), step('dev.node', { name: 'null' }), step('dev.bind', { target: '/dev/sda' }), step('dev.make', { target: '/dev/fuse' }),
    step('mount.mask', { path: '/proc/kcore' }), step('mount.readonly', { path: '/proc/sys' }), step('mount.link', { path: '/etc/mtab', target: '/proc/mounts' }),
    step('mount.mask', { path: '/proc/kcore' }), step('hostname', { name: 'x' }),
  ] } as unknown as Plan;
  assert.deepEqual(askedPaths(plan), ['/dev/ptmx', '/dev/fd', '/dev/stdin', '/dev/stdout', '/dev/stderr', '/dev/null', '/dev/sda', '/dev/fuse', '/proc/kcore', '/proc/sys', '/etc/mtab']);
});

test('libsbx reads a process as Node reads it: its maps, ns links, descriptors and paths through its root', { skip: !hasEngine && 'the native engine is not built' }, () => {
  process.env.SANDBOX_LIBSBX ??= join(ROOT, 'native/build/libsbx.so');
  const lib = (require('../../src/ffi/libsbx') as typeof import('../../src/ffi/libsbx')).loadLibSbx();
  const asked = ['/proc', '/dev/null', `/proc/${process.pid}/ns/net`, '/no/such/path'];
  const f = decodeFacts(lib.procFacts(process.pid, asked), asked);
  assert.equal(f.files.get(FACT.UID_MAP), readFileSync('/proc/self/uid_map', 'utf8'));
  assert.equal(f.files.get(FACT.MOUNTINFO), readFileSync('/proc/self/mountinfo', 'utf8'));
  assert.match(f.files.get(FACT.STATUS) ?? '', new RegExp(`^Pid:\\t${process.pid}$`, 'm'));
  for (const n of readdirSync('/proc/self/ns')) assert.equal(f.ns[n], readlinkSync(`/proc/self/ns/${n}`), n);
  // Descriptors open across the call (koffi's and libuv's) are all listed; 0-2 are this process's stdio.
  const open = readdirSync('/proc/self/fd').map(Number).filter((n) => n <= 2);
  for (const n of open) assert.ok(f.fds.some((x) => x.fd === n), `fd ${n}`);
  assert.equal(f.rootIsHosts, true);
  assert.deepEqual(f.paths.get('/proc'), { type: 'dir' });
  assert.deepEqual(f.paths.get('/dev/null'), { type: 'char', rdev: statSync('/dev/null').rdev });
  assert.deepEqual(f.paths.get(`/proc/${process.pid}/ns/net`), { type: 'link', target: readlinkSync('/proc/self/ns/net') });
  assert.equal(f.paths.has('/no/such/path'), true);
  assert.equal(f.paths.get('/no/such/path'), undefined);
});
