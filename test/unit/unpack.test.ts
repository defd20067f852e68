// The layer unpacker against hostile and odd layers. Each case is a hand-made layer unpacked into
// a store folder inside a scratch folder that also holds sentinels "outside" it (a folder with a
// file, a subfolder and a tmp folder, a lone file, a symlink); the layer's symlinks point at them
// by absolute path and by ../../. A case ends either in a clean UnpackError (naming the entry,
// with nothing left in the store) or in the right result, and in both the sentinels keep their
// content, mode, owner, times and link count, and nothing new appears outside the store.
// The cases are ours, written from reading the breakout and edge-case tests of containerd
// (pkg/archive/tar_test.go: TestBreakouts), moby (pkg/archive: TestUntarInvalidFilenames,
// TestUntarInvalidHardlink, TestUntarInvalidSymlink, TestUntarHardlinkToSymlink,
// TestApplyLayerWhiteouts, TestImpliedDirectoryPermissions, TestXGlobalNoParent, ...) and umoci
// (oci/layer/tar_extract_test.go), adapted where this unpacker's rules differ: it refuses what
// would be written through a symlink and absolute names, where those resolve them in the root.
// Every case runs twice: through the root writer, and through the rootless one (the owners of a
// user namespace's maps, user.overlay.opaque), which must hold the same guarantees.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { tar, type Entry } from '../helpers/image';
import { hasEngine, isRoot, needs } from '../helpers/sandbox';
import { ROOT } from '../helpers/load';
import { unpackLayer, UnpackError, type NodeOps } from '../../src/image/unpack';
import { callerOwners, hostId, singleMapNote, subordinateRanges, type LayerOwners } from '../../src/image/owners';
import { checkUserXattrs, Store, StoreError } from '../../src/image/store';
import { checkImageStore, overlayOptions, PreflightError } from '../../src/engine/preflight';
import type { Plan } from '../../src/plan/types';

// The real whiteouts and xattrs (libsbx) where this runs as root with the engine built; else a
// stand-in that records them (a whiteout is then an empty file it remembers).
process.env.SANDBOX_LIBSBX ??= join(ROOT, 'native/build/libsbx.so');
const real = isRoot && hasEngine;
const fakeWhiteouts = new Set<string>();
const fakeXattrs = new Map<string, string>();
const untmp = (p: string) => p.replace(/\.tmp-\d+-\d+(?=\/|$)/, '');
const ops: NodeOps = real
  ? (require('../../src/ffi/libsbx') as typeof import('../../src/ffi/libsbx')).loadLibSbx()
  : {
    whiteout(p) { writeFileSync(p, '', { flag: 'wx' }); fakeWhiteouts.add(untmp(p)); },
    lsetxattr(p, k, v) { fakeXattrs.set(`${untmp(p)}\0${k}`, v.toString()); },
  };

function isWhiteout(p: string): boolean {
  const st = lstatSync(p, { throwIfNoEntry: false });
  if (!st) return false;
  return real ? st.isCharacterDevice() && st.rdev === 0 : st.isFile() && fakeWhiteouts.has(p);
}

/** Every extended attribute under dest (symlinks not followed), as {relative path: {name: value}}. */
function xattrs(dest: string): Record<string, Record<string, string>> {
  if (!real) {
    const out: Record<string, Record<string, string>> = {};
    for (const [key, v] of fakeXattrs) {
      const [p, k] = key.split('\0') as [string, string];
      if (p !== dest && !p.startsWith(`${dest}/`)) continue;
      (out[p.slice(dest.length + 1)] ??= {})[k] = v;
    }
    return out;
  }
  const py = 'import os, sys, json\nd = sys.argv[1]\nout = {}\nfor r, ds, fs in os.walk(d):\n  for n in [r] + [os.path.join(r, x) for x in ds + fs]:\n    try: ks = os.listxattr(n, follow_symlinks=False)\n    except OSError: continue\n    for k in ks: out.setdefault(os.path.relpath(n, d) if n != d else "", {})[k] = os.getxattr(n, k, follow_symlinks=False).decode()\nprint(json.dumps(out))';
  const r = spawnSync(existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3', ['-c', py, dest], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, Record<string, string>>;
  for (const v of Object.values(out)) for (const k of Object.keys(v)) if (k.startsWith('security.')) delete v[k]; // SELinux and friends
  for (const [k, v] of Object.entries(out)) if (!Object.keys(v).length) delete out[k];
  return out;
}

// The rootless writer's maps: as root, a caller (0 → host 0) with a subordinate range whose uids
// and gids start at different host ids, so that a swap or an off-by-one shows; the owner pass
// then applies the host ids directly. Without root, only the caller itself (a one-id map).
const SUBUID = 100000, SUBGID = 300000;
const mapped: LayerOwners = isRoot
  ? { uid: [{ container: 0, host: 0, size: 1 }, { container: 1, host: SUBUID, size: 65536 }], gid: [{ container: 0, host: 0, size: 1 }, { container: 1, host: SUBGID, size: 65536 }], user: 'tester' }
  : { uid: [{ container: 0, host: process.geteuid!(), size: 1 }], gid: [{ container: 0, host: process.getegid!(), size: 1 }], user: 'tester', single: 'a test without root' };
/** The writer the current case runs through: undefined is root's. */
let writer: LayerOwners | undefined;
const opaqueName = () => (writer ? 'user.overlay.opaque' : 'trusted.overlay.opaque');
const opaque = (dest: string, rel: string) => {
  const x = xattrs(dest)[rel] ?? {};
  // The other mode's attribute is never written: overlayfs would read one or the other.
  assert.equal(x[writer ? 'trusted.overlay.opaque' : 'user.overlay.opaque'], undefined, `${rel} has only ${opaqueName()}`);
  return x[opaqueName()] === 'y';
};

interface Ctx {
  base: string;
  /** The sentinel folder: file, sub/, sub/deep, tmp/ */
  outside: string;
  /** A sentinel file, mode 0600. */
  outsideFile: string;
  store: string;
  dest: string;
}

interface Case {
  name: string;
  /** The peer test it comes from. */
  from: string;
  layer: (c: Ctx) => Entry[] | Buffer;
  /** A refusal: the message must match and name this entry; or a check of the unpacked folder. */
  refused?: RegExp;
  entry?: string;
  check?: (dest: string, c: Ctx) => void;
  /** Where dest goes, relative to the store (default "x"). */
  destIn?: string;
}

const OLD = 1_000_000_000; // the sentinels' times

function sentinels(base: string): Ctx {
  const outside = join(base, 'outside');
  mkdirSync(join(outside, 'sub'), { recursive: true });
  mkdirSync(join(outside, 'tmp'));
  writeFileSync(join(outside, 'file'), 'sentinel');
  writeFileSync(join(outside, 'sub', 'deep'), 'deep sentinel');
  const outsideFile = join(base, 'outside-file');
  writeFileSync(outsideFile, 'sentinel file');
  chmodSync(outsideFile, 0o600);
  chmodSync(join(outside, 'sub'), 0o750);
  symlinkSync('outside', join(base, 'outside-link'));
  for (const p of [join(outside, 'file'), join(outside, 'sub', 'deep'), join(outside, 'sub'), join(outside, 'tmp'), outside, outsideFile]) utimesSync(p, OLD, OLD);
  const store = join(base, 'store');
  mkdirSync(store);
  return { base, outside, outsideFile, store, dest: join(store, 'x') };
}

/** Everything under base but the store: type, mode, owner, size, times, inode, links, content. */
function snapshot(base: string, store: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (p: string) => {
    const st = lstatSync(p);
    const what = st.isSymbolicLink() ? `symlink -> ${readlinkSync(p)}` : st.isFile() ? `file ${createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16)}` : st.isDirectory() ? 'folder' : 'other';
    out.set(p, `${what} mode ${st.mode.toString(8)} owner ${st.uid}:${st.gid} size ${st.size} mtime ${st.mtimeMs} ctime ${st.ctimeMs} inode ${st.ino} links ${st.nlink}`);
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) if (join(p, n) !== store) walk(join(p, n));
  };
  walk(base);
  return out;
}

async function run(c: Case): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'sbx-unpack-unit-'));
  try {
    const ctx = sentinels(base);
    const dest = c.destIn ? join(ctx.store, c.destIn) : ctx.dest;
    const layer = c.layer({ ...ctx, dest });
    const blob = join(base, 'layer.tar.gz');
    writeFileSync(blob, gzipSync(Buffer.isBuffer(layer) ? layer : tar(layer)));
    const before = snapshot(base, ctx.store);
    let error: Error | undefined;
    try { await unpackLayer(blob, dest, undefined, ops, undefined, writer); } catch (e) { error = e as Error; }
    // Whatever happened, nothing outside the store changed, appeared or went.
    assert.deepEqual(snapshot(base, ctx.store), before, `${c.name}: something outside the store changed`);
    if (c.refused) {
      assert.ok(error instanceof UnpackError, `${c.name}: ${error ? `not a clean refusal: ${error.stack}` : 'accepted'}`);
      assert.match(error.message, c.refused, c.name);
      if (c.entry !== undefined) assert.ok(error.message.includes(JSON.stringify(c.entry)), `${c.name}: the refusal names ${JSON.stringify(c.entry)}: ${error.message}`);
      assert.deepEqual(readdirSync(ctx.store), [], `${c.name}: the store was left changed`);
      assert.equal(existsSync(dest), false);
    } else {
      assert.equal(error, undefined, `${c.name}: refused: ${error?.stack}`);
      assert.deepEqual(readdirSync(ctx.store), [(c.destIn ?? 'x').split('/')[0]], `${c.name}: something beside dest was left in the store`);
      c.check?.(dest, { ...ctx, dest });
    }
  } finally {
    if (!isRoot) spawnSync('chmod', ['-R', 'u+rwx', base]);
    rmSync(base, { recursive: true, force: true });
  }
}

// Checks on the unpacked folder.
const st = (p: string) => lstatSync(p);
const isDir = (p: string) => assert.ok(lstatSync(p, { throwIfNoEntry: false })?.isDirectory(), `${p} is a folder`);
const isLink = (p: string, to: string) => { assert.ok(st(p).isSymbolicLink(), `${p} is a symlink`); assert.equal(readlinkSync(p), to); };
const content = (p: string, s: string) => { assert.ok(st(p).isFile(), `${p} is a file`); assert.equal(readFileSync(p, 'utf8'), s); };
const same = (a: string, b: string) => assert.equal(st(a).ino, st(b).ino, `${a} and ${b} are one inode`);
const gone = (p: string) => assert.equal(lstatSync(p, { throwIfNoEntry: false }), undefined, `${p} does not exist`);
const perm = (p: string, m: number) => assert.equal(st(p).mode & 0o7777, m, `${p} has mode ${m.toString(8)}`);
const mtime = (p: string, s: number) => assert.equal(st(p).mtimeMs, s * 1000, `${p} has mtime ${s}`);
/** Owned by uid:gid as the layer says: on disk, as root's writer keeps them or as the rootless
 * writer's maps give them. */
const owner = (p: string, uid: number, gid: number) => {
  if (!isRoot) return;
  const want = writer ? [hostId(writer.uid, uid), hostId(writer.gid, gid)] : [uid, gid];
  assert.deepEqual([st(p).uid, st(p).gid], want, `${p} is owned by ${uid}:${gid} (${want.join(':')} on the host)`);
};
const wh = (p: string) => assert.ok(isWhiteout(p), `${p} is a whiteout`);

const dir = (name: string, o: Partial<Entry> = {}): Entry => ({ name, type: '5', ...o });
const file = (name: string, body = '', o: Partial<Entry> = {}): Entry => ({ name, body, ...o });
const sym = (name: string, linkname: string, o: Partial<Entry> = {}): Entry => ({ name, type: '2', linkname, mode: 0o777, ...o });
const hard = (name: string, linkname: string, o: Partial<Entry> = {}): Entry => ({ name, type: '1', linkname, ...o });
/** A folder entry whose pending metadata would be harmful anywhere but on itself. */
const loud = (name: string) => dir(name, { mode: 0o777, uid: 4242, gid: 4242, pax: { mtime: '123' } });

/** A tar whose first header has its type flag changed (the helper writes only the usual ones). */
function retyped(t: Buffer, type: string): Buffer {
  const b = Buffer.from(t);
  b.write(type, 156, 'latin1');
  b.fill(' ', 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i]!;
  b.write(`${sum.toString(8).padStart(6, '0')}\0`, 148, 'latin1');
  return b;
}

const throughLink = /through the symlink/;
const climbs = /climbs out with \.\./;
const absolute = /absolute path/;

const cases: Case[] = [
  // ---- The hole: a folder's pending metadata applied through what replaced it (issue 11).
  {
    name: 'a folder replaced by a symlink to an absolute host folder: its owner, mode and times land nowhere',
    from: 'issue 11 (containerd SymlinkOverrideDirectory, umoci tar_extract TODO on parent metadata)',
    layer: (c) => [loud('a/'), sym('a', c.outside)],
    check: (d, c) => { isLink(join(d, 'a'), c.outside); },
  },
  {
    name: 'a folder replaced by a relative ../../ symlink out: nothing applied through it',
    from: 'issue 11; moby TestUntarInvalidSymlink (loophole-victim)',
    layer: () => [loud('a/'), sym('a', '../../outside')],
    check: (d) => isLink(join(d, 'a'), '../../outside'),
  },
  {
    name: 'a parent folder replaced by a symlink: the pending metadata of the folders under it is dropped too',
    from: 'issue 11 (rm of a parent); containerd SymlinkOverridePath',
    layer: (c) => [dir('p/'), loud('p/sub/'), loud('p/tmp/'), file('p/tmp/f', 'x'), sym('p', c.outside)],
    check: (d, c) => { isLink(join(d, 'p'), c.outside); },
  },
  {
    name: 'a folder replaced by a file: the folder\'s mode and mtime are not applied to the file',
    from: 'issue 11 (stale list)',
    layer: () => [dir('a/', { mode: 0o700, pax: { mtime: '111' } }), file('a/child', 'c'), file('a', 'file', { mode: 0o640, pax: { mtime: '222' } })],
    check: (d) => { content(join(d, 'a'), 'file'); perm(join(d, 'a'), 0o640); mtime(join(d, 'a'), 222); },
  },
  {
    name: 'a folder replaced by a hard link to a symlink out: nothing applied through it',
    from: 'issue 11; containerd HardlinkSymlinkChmod',
    layer: (c) => [sym('l', c.outsideFile), loud('a/'), hard('a', 'l')],
    check: (d, c) => { isLink(join(d, 'a'), c.outsideFile); same(join(d, 'a'), join(d, 'l')); },
  },
  {
    name: 'a folder, a symlink over it, the folder again: the last folder entry\'s metadata, on the new folder',
    from: 'issue 11; containerd SymlinkOverridePath (re-created after the symlink)',
    layer: (c) => [loud('a/'), sym('a', c.outside), dir('a/', { mode: 0o750, uid: 7, gid: 8, pax: { mtime: '333' } })],
    check: (d) => { isDir(join(d, 'a')); perm(join(d, 'a'), 0o750); owner(join(d, 'a'), 7, 8); mtime(join(d, 'a'), 333); },
  },
  {
    name: 'a file written through a symlink over a folder is refused',
    from: 'containerd SymlinkOverridePath',
    layer: (c) => [dir('foo/'), dir('foo/tmp/'), file('foo/tmp/breakout', '012'), sym('foo', c.outside), file('foo/tmp/breakout', '345'), dir('foo/'), dir('foo/tmp/'), file('foo/tmp/breakout', '678')],
    refused: throughLink, entry: 'foo/tmp/breakout',
  },
  {
    name: 'the folders re-created after the symlink: the last entries win, inside',
    from: 'containerd SymlinkOverridePath',
    layer: (c) => [dir('foo/'), loud('foo/tmp/'), file('foo/tmp/breakout', '012'), sym('foo', c.outside), dir('foo/'), dir('foo/tmp/', { mode: 0o711 }), file('foo/tmp/breakout', '678')],
    check: (d) => { isDir(join(d, 'foo')); perm(join(d, 'foo/tmp'), 0o711); owner(join(d, 'foo/tmp'), 0, 0); content(join(d, 'foo/tmp/breakout'), '678'); },
  },

  // ---- containerd TestBreakouts.
  { name: 'SymlinkAbsolute', from: 'containerd TestBreakouts/SymlinkAbsolute', layer: (c) => [dir('etc/'), sym('localetc', c.outside), file('localetc/unbroken', 'broken')], refused: throughLink, entry: 'localetc/unbroken' },
  { name: 'SymlinkAbsolute, with the leading slash it has there', from: 'containerd TestBreakouts/SymlinkAbsolute', layer: (c) => [dir('etc/'), sym('localetc', c.outside), file('/localetc/unbroken', 'broken')], refused: absolute, entry: '/localetc/unbroken' },
  { name: 'SymlinkUpAndOut', from: 'containerd TestBreakouts/SymlinkUpAndOut', layer: () => [dir('etc/'), dir('dummy/'), sym('localetc', 'dummy/../../../outside'), file('localetc/unbroken', 'broken')], refused: throughLink, entry: 'localetc/unbroken' },
  { name: 'SymlinkMultipleAbsolute', from: 'containerd TestBreakouts/SymlinkMultipleAbsolute', layer: (c) => [dir('etc/'), dir('dummy/'), sym('dummy/etc', c.outside), sym('localetc', `${c.dest}/dummy/etc`), file('dummy/etc/unbroken', 'broken')], refused: /through the symlink "dummy\/etc"/, entry: 'dummy/etc/unbroken' },
  { name: 'SymlinkMultipleRelative', from: 'containerd TestBreakouts/SymlinkMultipleRelative', layer: (c) => [dir('etc/'), dir('dummy/'), sym('dummy/etc', c.outside), sym('localetc', './dummy/etc'), file('localetc/unbroken', 'broken')], refused: throughLink, entry: 'localetc/unbroken' },
  { name: 'SymlinkEmptyFile', from: 'containerd TestBreakouts/SymlinkEmptyFile', layer: (c) => [dir('etc/'), file('etc/emptied', 'notempty'), sym('localetc', c.outside), file('localetc/file', '')], refused: throughLink, entry: 'localetc/file' },
  { name: 'HardlinkRelative', from: 'containerd TestBreakouts/HardlinkRelative', layer: () => [dir('etc/', { mode: 0o770 }), file('etc/passwd', 'inside'), dir('breakouts/'), sym('breakouts/d1', '../../outside'), hard('breakouts/mypasswd', 'breakouts/d1/file')], refused: /through the symlink "breakouts\/d1"/, entry: 'breakouts/mypasswd' },
  { name: 'HardlinkDownAndOut', from: 'containerd TestBreakouts/HardlinkDownAndOut', layer: () => [dir('etc/'), file('etc/passwd', 'inside'), dir('breakouts/'), dir('downandout/'), sym('breakouts/d1', '../downandout/../../outside'), hard('breakouts/mypasswd', 'breakouts/d1/file')], refused: throughLink, entry: 'breakouts/mypasswd' },
  { name: 'HardlinkAbsolute', from: 'containerd TestBreakouts/HardlinkAbsolute', layer: (c) => [dir('etc/'), file('etc/passwd', 'inside'), sym('localetc', c.outside), hard('localpasswd', 'localetc/file')], refused: throughLink, entry: 'localpasswd' },
  { name: 'HardlinkRelativeLong', from: 'containerd TestBreakouts/HardlinkRelativeLong', layer: () => [dir('etc/'), file('etc/passwd', 'inside'), sym('localetc', '../../../../../../../outside'), hard('localpasswd', 'localetc/file')], refused: throughLink, entry: 'localpasswd' },
  { name: 'HardlinkRelativeUpAndOut', from: 'containerd TestBreakouts/HardlinkRelativeUpAndOut', layer: () => [dir('etc/'), file('etc/passwd', 'inside'), sym('localetc', 'upandout/../../../outside'), hard('localpasswd', 'localetc/file')], refused: throughLink, entry: 'localpasswd' },
  { name: 'HardlinkDirectRelative', from: 'containerd TestBreakouts/HardlinkDirectRelative', layer: () => [dir('etc/'), file('etc/passwd', 'inside'), hard('localpasswd', '../../../../../outside/file')], refused: climbs, entry: '../../../../../outside/file' },
  { name: 'HardlinkDirectAbsolute', from: 'containerd TestBreakouts/HardlinkDirectAbsolute', layer: (c) => [dir('etc/'), file('etc/passwd', 'inside'), hard('localpasswd', c.outsideFile)], refused: absolute },
  { name: 'SymlinkParentDirectory', from: 'containerd TestBreakouts/SymlinkParentDirectory', layer: (c) => [dir('etc/'), file('etc/passwd', 'inside'), sym('..', c.outside), hard('localpasswd', 'etc/passwd')], refused: climbs, entry: '..' },
  { name: 'SymlinkEmptyFilename', from: 'containerd TestBreakouts/SymlinkEmptyFilename', layer: (c) => [dir('etc/'), file('etc/passwd', 'inside'), sym('', c.outside), hard('localpasswd', 'etc/passwd')], refused: /own folder/, entry: '' },
  { name: 'a symlink named ./ replaces nothing', from: 'containerd TestBreakouts/SymlinkEmptyFilename; umoci UnpackEntry root type check', layer: (c) => [sym('./', c.outside)], refused: /own folder/, entry: './' },
  { name: 'SymlinkParentRelative (localetc/sub/.. is localetc)', from: 'containerd TestBreakouts/SymlinkParentRelative', layer: (c) => [dir('etc/'), file('etc/passwd', 'inside'), sym('localetc/sub/..', c.outside), hard('localetc/localpasswd', 'etc/passwd')], refused: /through the symlink "localetc"/, entry: 'localetc/localpasswd' },
  {
    name: 'SymlinkSlashEnded', from: 'containerd TestBreakouts/SymlinkSlashEnded',
    layer: () => [dir('etc/', { mode: 0o770 }), file('etc/passwd', 'inside'), dir('localetc/', { mode: 0o770 }), hard('localetc/localpasswd', 'etc/passwd')],
    check: (d) => { same(join(d, 'localetc/localpasswd'), join(d, 'etc/passwd')); perm(join(d, 'localetc'), 0o770); },
  },
  { name: 'SymlinkOverrideDirectory', from: 'containerd TestBreakouts/SymlinkOverrideDirectory', layer: (c) => [dir('etc/'), file('etc/passwd', 'inside'), dir('localetc/'), sym('localetc', c.outside), hard('localetc/localpasswd', 'etc/passwd')], refused: throughLink, entry: 'localetc/localpasswd' },
  { name: 'SymlinkOverrideDirectoryRelative', from: 'containerd TestBreakouts/SymlinkOverrideDirectoryRelative', layer: () => [dir('etc/'), file('etc/passwd', 'inside'), dir('localetc/'), sym('localetc', '../../outside'), hard('localetc/localpasswd', 'etc/passwd')], refused: throughLink, entry: 'localetc/localpasswd' },
  {
    name: 'DirectoryOverrideSymlink', from: 'containerd TestBreakouts/DirectoryOverrideSymlink',
    layer: (c) => [dir('etc/'), file('etc/passwd', 'inside'), sym('localetc', c.outside), dir('localetc/'), hard('localetc/localpasswd', 'etc/passwd')],
    check: (d) => { isDir(join(d, 'localetc')); same(join(d, 'localetc/localpasswd'), join(d, 'etc/passwd')); },
  },
  {
    name: 'DirectoryOverrideSymlinkAndHardlink', from: 'containerd TestBreakouts/DirectoryOverrideSymlinkAndHardlink',
    layer: () => [dir('etc/'), file('etc/passwd', 'inside'), sym('localetc', 'etc'), dir('localetc/'), file('localetc/localpasswd', 'different')],
    check: (d) => { content(join(d, 'etc/passwd'), 'inside'); content(join(d, 'localetc/localpasswd'), 'different'); assert.notEqual(st(join(d, 'etc/passwd')).ino, st(join(d, 'localetc/localpasswd')).ino); },
  },
  { name: 'WhiteoutRootParent (.wh...)', from: 'containerd TestBreakouts/WhiteoutRootParent', layer: () => [dir('etc/'), file('etc/passwd', 'inside'), file('.wh...')], refused: /whiteout/, entry: '.wh...' },
  { name: 'WhiteoutParent (etc/.wh...)', from: 'containerd TestBreakouts/WhiteoutParent', layer: () => [dir('etc/'), file('etc/passwd', 'inside'), file('etc/.wh...')], refused: /whiteout/, entry: 'etc/.wh...' },
  { name: 'WhiteoutRoot (.wh..)', from: 'containerd TestBreakouts/WhiteoutRoot', layer: () => [file('.wh..')], refused: /whiteout/, entry: '.wh..' },
  { name: 'WhiteoutCurrentDirectory (etc/.wh..)', from: 'containerd TestBreakouts/WhiteoutCurrentDirectory', layer: () => [dir('etc/'), file('etc/passwd', 'inside'), file('etc/.wh..')], refused: /whiteout/, entry: 'etc/.wh..' },
  { name: 'an empty whiteout name (.wh.)', from: 'umoci TestUnpackEntryWhiteout/EmptyWhiteoutName-Root', layer: () => [file('.wh.')], refused: /whiteout of nothing/, entry: '.wh.' },
  { name: 'an empty whiteout name in a folder (some/path/.wh.)', from: 'umoci TestUnpackEntryWhiteout/EmptyWhiteoutName', layer: () => [dir('some/'), dir('some/path/'), file('some/path/.wh.')], refused: /whiteout of nothing/, entry: 'some/path/.wh.' },
  { name: 'WhiteoutSymlink: a whiteout only (the symlink is in a lower layer)', from: 'containerd TestBreakouts/WhiteoutSymlink', layer: () => [file('.wh.localetc')], check: (d) => wh(join(d, 'localetc')) },
  {
    name: 'WhiteoutSymlink: a symlink of this layer stays (a whiteout hides only lower layers)', from: 'containerd TestBreakouts/WhiteoutSymlink; OCI image spec, whiteouts',
    layer: (c) => [sym('localetc', c.outside), file('.wh.localetc')],
    check: (d, c) => isLink(join(d, 'localetc'), c.outside),
  },
  { name: 'WhiteoutSymlinkPath', from: 'containerd TestBreakouts/WhiteoutSymlinkPath', layer: (c) => [sym('localetc', c.outside), file('localetc/.wh.file')], refused: throughLink, entry: 'localetc/.wh.file' },
  { name: 'WhiteoutDirectoryName (.wh.etc/somefile is a plain folder and file)', from: 'containerd TestBreakouts/WhiteoutDirectoryName', layer: () => [file('.wh.etc/somefile', 'non-empty')], check: (d) => { content(join(d, '.wh.etc/somefile'), 'non-empty'); gone(join(d, 'etc')); } },
  { name: 'WhiteoutDeadSymlinkParent', from: 'containerd TestBreakouts/WhiteoutDeadSymlinkParent', layer: () => [sym('localetc', '/nonexistent-sbx-test'), file('localetc/.wh.etc')], refused: throughLink, entry: 'localetc/.wh.etc' },
  { name: 'WhiteoutRelativePath (dne/../.wh.etc is .wh.etc)', from: 'containerd TestBreakouts/WhiteoutRelativePath', layer: () => [file('dne/../.wh.etc')], check: (d) => { wh(join(d, 'etc')); gone(join(d, 'dne')); } },
  {
    name: 'HardlinkSymlinkBeforeCreateTarget', from: 'containerd TestBreakouts/HardlinkSymlinkBeforeCreateTarget',
    layer: (c) => [dir('etc/', { mode: 0o770 }), sym('localpasswd', c.outsideFile), hard('localpasswd-dup', 'localpasswd'), file('etc/passwd', 'after')],
    check: (d, c) => { isLink(join(d, 'localpasswd-dup'), c.outsideFile); same(join(d, 'localpasswd-dup'), join(d, 'localpasswd')); content(join(d, 'etc/passwd'), 'after'); },
  },
  {
    name: 'HardlinkSymlinkRelative', from: 'containerd TestBreakouts/HardlinkSymlinkRelative',
    layer: () => [dir('etc/'), file('etc/passwd', 'inside'), sym('passwdlink', '../../../../../etc/passwd'), hard('localpasswd', 'passwdlink')],
    check: (d) => { isLink(join(d, 'localpasswd'), '../../../../../etc/passwd'); same(join(d, 'localpasswd'), join(d, 'passwdlink')); },
  },
  {
    name: 'HardlinkSymlinkAbsolute', from: 'containerd TestBreakouts/HardlinkSymlinkAbsolute',
    layer: (c) => [dir('etc/'), file('etc/passwd', 'inside'), sym('passwdlink', c.outsideFile), hard('localpasswd', 'passwdlink')],
    check: (d, c) => { isLink(join(d, 'localpasswd'), c.outsideFile); same(join(d, 'localpasswd'), join(d, 'passwdlink')); },
  },
  {
    name: 'HardlinkSymlinkChmod: a hard link\'s mode is never applied, least of all through a symlink', from: 'containerd TestBreakouts/HardlinkSymlinkChmod',
    layer: (c) => [sym('also-exists', c.outsideFile), hard('sketchylink', 'also-exists', { mode: 0o777, uid: 4242 })],
    check: (d, c) => isLink(join(d, 'sketchylink'), c.outsideFile),
  },
  { name: 'HardlinkSymlinkChmod, with the absolute symlink name it has there', from: 'containerd TestBreakouts/HardlinkSymlinkChmod', layer: (c) => [sym(c.outsideFile, join(c.outside, 'file')), hard('sketchylink', c.outsideFile)], refused: absolute },

  // ---- moby pkg/archive.
  { name: 'a file named ../victim/dotdot', from: 'moby TestUntarInvalidFilenames, TestApplyLayerInvalidFilenames', layer: () => [file('../outside/dotdot', 'x')], refused: climbs, entry: '../outside/dotdot' },
  { name: 'a file named /../victim/slash-dotdot', from: 'moby TestUntarInvalidFilenames', layer: () => [file('/../outside/slash-dotdot', 'x')], refused: absolute, entry: '/../outside/slash-dotdot' },
  { name: 'a hard link to ../victim/hello', from: 'moby TestUntarInvalidHardlink', layer: () => [hard('dotdot', '../../outside/file')], refused: climbs },
  { name: 'a hard link to /../victim/hello', from: 'moby TestUntarInvalidHardlink', layer: () => [hard('slash-dotdot', '/../outside/file')], refused: absolute },
  { name: 'a hard link to the victim folder, then a file in it', from: 'moby TestUntarInvalidHardlink', layer: () => [hard('loophole-victim', '../../outside', { mode: 0o755 }), file('loophole-victim/file', 'x')], refused: climbs },
  { name: 'a hard link to the victim folder, then a symlink through it', from: 'moby TestUntarInvalidHardlink', layer: () => [hard('loophole-victim', '../../outside'), sym('symlink', 'loophole-victim/file')], refused: climbs },
  { name: 'a hard link to the victim folder, then a hard link through it', from: 'moby TestUntarInvalidHardlink', layer: () => [hard('loophole-victim', '../../outside'), hard('hardlink', 'loophole-victim/file')], refused: climbs },
  { name: 'a hard link to the victim folder, then a file over it', from: 'moby TestUntarInvalidHardlink', layer: () => [hard('loophole-victim', '../../outside'), file('loophole-victim', 'x')], refused: climbs },
  { name: 'a symlink to ../victim/hello is stored, not followed', from: 'moby TestUntarInvalidSymlink', layer: () => [sym('dotdot', '../../outside/file')], check: (d) => isLink(join(d, 'dotdot'), '../../outside/file') },
  { name: 'a symlink to /../victim/hello is stored, not followed', from: 'moby TestUntarInvalidSymlink', layer: () => [sym('slash-dotdot', '/../outside/file')], check: (d) => isLink(join(d, 'slash-dotdot'), '/../outside/file') },
  { name: 'a symlink to the victim folder, then a file in it', from: 'moby TestUntarInvalidSymlink', layer: () => [sym('loophole-victim', '../../outside'), file('loophole-victim/file', 'x')], refused: throughLink, entry: 'loophole-victim/file' },
  { name: 'a symlink to the victim folder, then a symlink through it', from: 'moby TestUntarInvalidSymlink', layer: () => [sym('loophole-victim', '../../outside'), sym('symlink', 'loophole-victim/file')], check: (d) => { isLink(join(d, 'loophole-victim'), '../../outside'); isLink(join(d, 'symlink'), 'loophole-victim/file'); } },
  { name: 'a symlink to the victim folder, then a hard link through it', from: 'moby TestUntarInvalidSymlink', layer: () => [sym('loophole-victim', '../../outside'), hard('hardlink', 'loophole-victim/file')], refused: throughLink, entry: 'hardlink' },
  { name: 'a symlink to the victim folder, then a file over it: the symlink goes, not the folder', from: 'moby TestUntarInvalidSymlink', layer: () => [sym('loophole-victim', '../../outside'), file('loophole-victim', 'mine')], check: (d) => content(join(d, 'loophole-victim'), 'mine') },
  { name: 'a symlink in a folder, then a file deep through it', from: 'moby TestUntarInvalidSymlink', layer: () => [sym('dir/loophole', '../../../outside'), file('dir/loophole/newdir/newfile', 'x')], refused: /through the symlink "dir\/loophole"/, entry: 'dir/loophole/newdir/newfile' },
  {
    name: 'a hard link to a symlink links the symlink, before its target exists', from: 'moby TestUntarHardlinkToSymlink',
    layer: () => [sym('symlink1', 'regfile', { mode: 0o644 }), hard('symlink2', 'symlink1'), file('regfile', 'r')],
    check: (d) => { isLink(join(d, 'symlink2'), 'regfile'); same(join(d, 'symlink1'), join(d, 'symlink2')); content(join(d, 'regfile'), 'r'); },
  },
  {
    name: 'whiteouts, hidden names and an opaque folder in one layer', from: 'moby TestApplyLayerWhiteouts (its second and third layers)',
    layer: () => [file('.bay'), file('.wh.baz'), file('.wh..baz'), dir('foo/'), file('foo/.bce'), file('foo/.wh..wh..opq'), dir('foo/cde/'), file('foo/cde/efg'), file('.wh.foobar')],
    check: (d) => {
      assert.deepEqual(readdirSync(d).sort(), ['.bay', '.baz', 'baz', 'foo', 'foobar']);
      wh(join(d, 'baz')); wh(join(d, '.baz')); wh(join(d, 'foobar'));
      assert.deepEqual(readdirSync(join(d, 'foo')).sort(), ['.bce', 'cde']);
      assert.ok(opaque(d, 'foo'), 'foo is opaque');
    },
  },
  {
    name: 'implied folders get 0755, explicit ones their own mode', from: 'moby TestImpliedDirectoryPermissions, TestUntarParentPathPermissions',
    layer: () => [file('deeply/nested/and/implied'), dir('explicit/', { mode: 0o644 }), dir('explicit/permissions/', { mode: 0o600 }), file('explicit/permissions/specified', 'x', { mode: 0o400 }), file('foo/bar')],
    check: (d) => {
      for (const p of ['deeply', 'deeply/nested', 'deeply/nested/and', 'foo']) perm(join(d, p), 0o755);
      perm(join(d, 'explicit'), 0o644);
      if (!isRoot) chmodSync(join(d, 'explicit'), 0o755); // to look inside it
      perm(join(d, 'explicit/permissions'), 0o600);
      if (!isRoot) chmodSync(join(d, 'explicit/permissions'), 0o700);
      perm(join(d, 'explicit/permissions/specified'), 0o400);
    },
  },
  { name: 'a global pax header makes no parent folders', from: 'moby TestXGlobalNoParent', layer: () => retyped(tar([{ name: 'foo/bar', body: '' }]), 'g'), check: (d) => assert.deepEqual(readdirSync(d), []) },

  // ---- umoci oci/layer/tar_extract_test.go.
  { name: 'a file under the garbage prefix /..', from: 'umoci TestUnpackEntrySanitiseScoping/GarbagePrefix', layer: () => [file('/../file', 'container content')], refused: absolute },
  { name: 'a file under the prefix ..', from: 'umoci TestUnpackEntrySanitiseScoping/DotDotPrefix', layer: () => [file('../file', 'container content')], refused: climbs },
  ...['/', '/../', '/../../../../../../../../../../../../../../../', '/./.././.././.././.././.././.././.././.././../', '..', '../..'].map((prefix): Case => ({
    name: `a file through a symlink to ${prefix}`, from: 'umoci TestUnpackEntrySymlinkScoping',
    layer: () => [sym('link', prefix), file('link/file', 'container content')], refused: throughLink, entry: 'link/file',
  })),
  {
    name: 'a path under a file makes that file a folder', from: 'umoci TestUnpackEntryNonDirParent',
    layer: () => [file('nondir', 'x'), file('nondir/foo/bar/baz', 'baz')],
    check: (d) => { isDir(join(d, 'nondir')); isDir(join(d, 'nondir/foo/bar')); content(join(d, 'nondir/foo/bar/baz'), 'baz'); },
  },
  { name: 'missing parent folders are made', from: 'umoci TestUnpackEntryParentDir', layer: () => [file('a/b/c/file', 'creating parentdirs')], check: (d) => content(join(d, 'a/b/c/file'), 'creating parentdirs') },
  {
    name: 'whiteouts of files and folders, hidden or not, keep their folder\'s metadata', from: 'umoci TestUnpackEntryWhiteout',
    layer: () => [
      file('.wh.rootpath'), file('.wh..hiddenroot'),
      dir('some/'), dir('some/path/', { mode: 0o751, pax: { mtime: '456' } }), file('some/path/.wh.file'), file('some/path/.wh.dir'),
      dir('another/'), dir('another/path/', { pax: { mtime: '789' } }), file('another/path/.wh..hiddenfile'),
    ],
    check: (d) => {
      for (const p of ['rootpath', '.hiddenroot', 'some/path/file', 'some/path/dir', 'another/path/.hiddenfile']) wh(join(d, p));
      perm(join(d, 'some/path'), 0o751); mtime(join(d, 'some/path'), 456); mtime(join(d, 'another/path'), 789);
    },
  },
  {
    name: 'an opaque folder keeps what this layer put in it', from: 'umoci TestUnpackOpaqueWhiteout (upper entries)',
    layer: () => [dir('test-subdir/'), file('test-subdir/file'), sym('test-subdir/link', '..'), sym('test-subdir/verybadlink', '../../../../../../../../etc/shadow'), dir('test-subdir/dir/'), file('test-subdir/dir/file'), file('test-subdir/.wh..wh..opq')],
    check: (d) => {
      assert.deepEqual(readdirSync(join(d, 'test-subdir')).sort(), ['dir', 'file', 'link', 'verybadlink']);
      assert.ok(opaque(d, 'test-subdir'));
      isLink(join(d, 'test-subdir/verybadlink'), '../../../../../../../../etc/shadow');
    },
  },
  {
    name: 'whiteouts under an opaque folder are not made (they hide nothing, and overlayfs would list them)', from: 'umoci TestUnpackOpaqueWhiteout (overlayfs whiteouts in an opaque folder)',
    layer: () => [dir('d/'), file('d/.wh.before'), dir('d/sub/'), file('d/sub/.wh.deep'), file('d/.wh..wh..opq'), file('d/.wh.after'), file('d/sub/.wh.later'), file('d/kept')],
    check: (d) => { assert.deepEqual(readdirSync(join(d, 'd')).sort(), ['kept', 'sub']); assert.deepEqual(readdirSync(join(d, 'd/sub')), []); assert.ok(opaque(d, 'd')); },
  },
  {
    name: 'whiteouts of this layer\'s own files are ignored, in either order', from: 'umoci TestUnpackOpaqueWhiteout/UpperWhiteout; OCI image spec, whiteouts',
    layer: () => [file('.wh.fileB'), file('fileA', 'a'), file('fileB', 'b'), file('.wh.fileA'), file('.wh.fileC')],
    check: (d) => { content(join(d, 'fileA'), 'a'); content(join(d, 'fileB'), 'b'); wh(join(d, 'fileC')); },
  },
  {
    name: 'a whiteout of this layer\'s folder makes it opaque; a folder over a whiteout is opaque', from: 'umoci TestUnpackOpaqueWhiteout/UpperDirWhiteout',
    layer: () => [file('.wh.dir2'), dir('dir1/'), file('dir1/file'), sym('dir1/verybadlink', '../../../../etc/shadow'), file('.wh.dir1'), dir('dir2/'), file('dir2/file'), file('.wh.dir3'), file('dir3/implied')],
    check: (d) => {
      for (const p of ['dir1/file', 'dir2/file', 'dir3/implied']) content(join(d, p), '');
      for (const p of ['dir1', 'dir2', 'dir3']) { isDir(join(d, p)); assert.ok(opaque(d, p), `${p} is opaque`); }
    },
  },
  {
    name: 'hard links to a file and to a symlink; their own owner is never applied', from: 'umoci TestUnpackHardlink',
    layer: () => [file('regular', 'some content', { uid: 11, gid: 12 }), hard('hard link', 'regular', { uid: 1337, gid: 2020 }), sym('link', '../../../regular', { uid: 13, gid: 14 }), hard('hard link to symlink', 'link', { uid: 1337, gid: 2020 })],
    check: (d) => {
      same(join(d, 'regular'), join(d, 'hard link')); same(join(d, 'link'), join(d, 'hard link to symlink'));
      assert.notEqual(st(join(d, 'regular')).ino, st(join(d, 'link')).ino);
      isLink(join(d, 'hard link to symlink'), '../../../regular');
      owner(join(d, 'regular'), 11, 12); owner(join(d, 'link'), 13, 14);
    },
  },
  { name: 'a hard link target that climbs out after cleaning', from: 'umoci TestUnpackHardlink (../../../ prefixes, refused here)', layer: () => [sym('link', 'x'), hard('h', '../../../link')], refused: climbs },

  // ---- Cleaning, replacing and repeating (what the peers and the OCI spec accept).
  { name: './a/../b is b', from: 'containerd/moby path.Clean of names', layer: () => [file('./a/../b', 'b'), file('c/./d/../e', 'e')], check: (d) => { content(join(d, 'b'), 'b'); content(join(d, 'c/e'), 'e'); gone(join(d, 'a')); gone(join(d, 'c/d')); } },
  { name: 'a/../../x still climbs out', from: 'containerd/moby path.Clean of names', layer: () => [dir('a/'), file('a/../../outside/evil', 'x')], refused: climbs, entry: 'a/../../outside/evil' },
  { name: 'a whiteout, then the same name again: the later entry wins', from: 'OCI image spec, whiteouts; umoci UpperWhiteout', layer: () => [file('.wh.x'), file('x', 'back'), file('.wh.y'), sym('y', 'x')], check: (d) => { content(join(d, 'x'), 'back'); isLink(join(d, 'y'), 'x'); } },
  { name: 'a folder replacing a file', from: 'containerd applyNaive (replace unless both folders)', layer: () => [file('a', 'x'), dir('a/', { mode: 0o705 }), file('a/b', 'b')], check: (d) => { isDir(join(d, 'a')); perm(join(d, 'a'), 0o705); content(join(d, 'a/b'), 'b'); } },
  { name: 'a file replacing a symlink to a host file leaves the host file', from: 'moby TestUntarInvalidSymlink (removing victim)', layer: (c) => [sym('a', c.outsideFile), file('a', 'mine', { mode: 0o600 })], check: (d) => content(join(d, 'a'), 'mine') },
  {
    name: 'repeated entries: the last one wins', from: 'containerd applyNaive; umoci MultiLevel (repeated level4)',
    layer: () => [file('f', 'one'), file('f', 'two', { mode: 0o600 }), dir('d/', { mode: 0o700 }), file('d/in'), dir('d/', { mode: 0o750, pax: { mtime: '42' } }), sym('l', 'one'), sym('l', 'two'), hard('h', 'f'), hard('h', 'f'), hard('f2', 'f')],
    check: (d) => { content(join(d, 'f'), 'two'); perm(join(d, 'f'), 0o600); perm(join(d, 'd'), 0o750); mtime(join(d, 'd'), 42); content(join(d, 'd/in'), ''); isLink(join(d, 'l'), 'two'); same(join(d, 'h'), join(d, 'f')); same(join(d, 'f2'), join(d, 'f')); },
  },
  { name: 'a hard link to itself', from: 'repeated entries', layer: () => [file('f', 'x'), hard('f', 'f')], check: (d) => content(join(d, 'f'), 'x') },
  { name: 'a hard link to a skipped device is skipped too', from: 'moby skipped device types', layer: () => [{ name: 'dev/null', type: '3' }, hard('dev/null2', 'dev/null')], check: (d) => assert.deepEqual(readdirSync(join(d, 'dev')), []) },

  // ---- Hard links to the layer's own folder, and other clean refusals.
  ...['./', '.', '', 'a/..', '/'].map((linkname): Case => ({ name: `a hard link to ${JSON.stringify(linkname)}`, from: 'issue 11 (TypeError before)', layer: () => [dir('a/'), hard('h', linkname)], refused: linkname === '/' ? absolute : /the layer's own folder/, entry: 'h' })),
  { name: 'a hard link to a folder', from: 'containerd hardlinkRootPath', layer: () => [dir('a/'), hard('h', 'a')], refused: /points to the folder "a"/, entry: 'h' },
  { name: 'a hard link to nothing', from: 'moby TestUntarInvalidHardlink', layer: () => [hard('h', 'missing')], refused: /not in the layer before it/, entry: 'h' },
  { name: 'a hard link to a whited-out name', from: 'OCI image spec, whiteouts', layer: () => [file('.wh.x'), hard('h', 'x')], refused: /not in the layer before it/, entry: 'h' },
  { name: 'a file through a hard link to a symlink out', from: 'moby TestUntarInvalidHardlink + TestUntarHardlinkToSymlink', layer: (c) => [sym('s', c.outside), hard('h', 's'), file('h/evil', 'x')], refused: /through the symlink "h"/, entry: 'h/evil' },
  { name: 'a whiteout through a symlink', from: 'containerd TestBreakouts/WhiteoutSymlinkPath', layer: (c) => [sym('s', c.outside), file('s/.wh.file')], refused: throughLink },
  { name: 'an opaque marker through a symlink', from: 'containerd TestBreakouts/WhiteoutSymlinkPath', layer: (c) => [sym('s', c.outside), file('s/.wh..wh..opq')], refused: throughLink, entry: 's/.wh..wh..opq' },
  { name: 'a NUL byte in a pax path', from: 'moby TestUntarInvalidFilenames', layer: () => [file('innocent', 'x', { pax: { path: 'a\0b' } })], refused: /NUL/ },
  { name: 'the layer\'s own folder replaced by a file', from: 'umoci UnpackEntry (refusing to change the root\'s type)', layer: () => [file('./', 'x')], refused: /own folder/, entry: './' },
  { name: 'a name the file system does not take is a clean refusal naming it', from: 'moby TestUntarInvalidFilenames', layer: () => [file(`${'n'.repeat(300)}/f`, 'x', { pax: { path: `${'n'.repeat(300)}/f` } })], refused: /cannot be unpacked: ENAMETOOLONG/, entry: `${'n'.repeat(300)}/f` },
  { name: 'a layer that ends in the middle of a file', from: 'moby/containerd truncated archives', layer: () => tar([file('a', 'x'.repeat(2000))]).subarray(0, 1024), refused: /truncated/ },
  { name: 'a refusal leaves no folder above dest that the unpack made', from: 'issue 11, point 5', destIn: 'new/deeper/x', layer: () => [file('../x', 'x')], refused: climbs },
  {
    name: 'overlayfs attributes come only from whiteouts, never from pax records', from: 'umoci xattr filters (trusted.overlay.*), and the user.overlay.* a rootless overlayfs reads',
    layer: () => [
      file('f', 'x', { pax: { 'SCHILY.xattr.trusted.overlay.opaque': 'y', 'SCHILY.xattr.trusted.overlay.redirect': '/etc', 'SCHILY.xattr.user.overlay.opaque': 'y', 'SCHILY.xattr.user.overlay.redirect': '/etc' } }),
      dir('d/', { pax: { 'SCHILY.xattr.trusted.overlay.redirect': '/etc', 'SCHILY.xattr.user.overlay.opaque': 'y', 'SCHILY.xattr.user.overlay.metacopy': '' } }),
    ],
    check: (d) => assert.deepEqual(xattrs(d), {}),
  },
];

test('layers unpack inside their folder or are refused cleanly, and nothing outside changes', async (t) => {
  writer = undefined;
  for (const c of cases) await t.test(`${c.name} [${c.from}]`, () => run(c));
});

test('the rootless writer: the same layers, the same refusals, nothing outside changes', async (t) => {
  writer = mapped;
  try {
    for (const c of cases) await t.test(`${c.name} [${c.from}]`, () => run(c));
  } finally { writer = undefined; }
});

test('the rootless writer gives each entry the host id its user namespace maps the owner to', async (t) => {
  if (!needs(t, 'root (to chown to the test\'s subordinate ids)', isRoot && real)) return;
  writer = mapped;
  try {
    await run({
      name: 'owners', from: 'ours',
      layer: () => [
        dir('etc/', { pax: { mtime: '500' } }), file('etc/passwd', 'root', { mode: 0o644 }),
        dir('home/user/', { mode: 0o700, uid: 1000, gid: 1000, pax: { mtime: '600' } }), file('home/user/notes', 'mine', { mode: 0o400, uid: 1000, gid: 1000, pax: { mtime: '700' } }),
        file('bin/su', 'x', { mode: 0o4755, uid: 0, gid: 0 }), file('bin/wall', 'x', { mode: 0o2755, uid: 0, gid: 5 }), file('bin/setuid-user', 'x', { mode: 0o6750, uid: 1, gid: 65536 }),
        sym('home/user/link', 'notes', { uid: 1000, gid: 1001 }),
        file('var/nobody', '', { uid: 65534, gid: 65534, pax: { 'SCHILY.xattr.user.origin': 'layer' } }),
        hard('home/user/hard', 'home/user/notes', { uid: 42, gid: 42 }),
      ],
      check: (d) => {
        owner(join(d, 'etc/passwd'), 0, 0); assert.deepEqual([st(join(d, 'etc/passwd')).uid, st(join(d, 'etc/passwd')).gid], [0, 0]);
        owner(join(d, 'home/user'), 1000, 1000); assert.equal(st(join(d, 'home/user')).uid, SUBUID + 999);
        owner(join(d, 'home/user/notes'), 1000, 1000); perm(join(d, 'home/user/notes'), 0o400); mtime(join(d, 'home/user/notes'), 700);
        perm(join(d, 'home/user'), 0o700); mtime(join(d, 'home/user'), 600); mtime(join(d, 'etc'), 500);
        // A hard link is its target's inode: the target's owner, not its own.
        same(join(d, 'home/user/hard'), join(d, 'home/user/notes'));
        owner(join(d, 'home/user/link'), 1000, 1001); isLink(join(d, 'home/user/link'), 'notes');
        // The chown of the owner pass clears set-id bits; the mode is applied again after it.
        owner(join(d, 'bin/su'), 0, 0); perm(join(d, 'bin/su'), 0o4755);
        owner(join(d, 'bin/wall'), 0, 5); perm(join(d, 'bin/wall'), 0o2755); assert.equal(st(join(d, 'bin/wall')).gid, SUBGID + 4);
        owner(join(d, 'bin/setuid-user'), 1, 65536); perm(join(d, 'bin/setuid-user'), 0o6750); assert.deepEqual([st(join(d, 'bin/setuid-user')).uid, st(join(d, 'bin/setuid-user')).gid], [SUBUID, SUBGID + 65535]);
        owner(join(d, 'var/nobody'), 65534, 65534);
        assert.deepEqual(xattrs(d), { 'var/nobody': { 'user.origin': 'layer' } });
      },
    });
  } finally { writer = undefined; }
});

test('the rootless writer: whiteouts are 0/0 devices, opaque folders user.overlay.opaque, trusted.* never written', async () => {
  writer = mapped;
  try {
    await run({
      name: 'rootless overlay attributes', from: 'overlayfs userxattr',
      layer: () => [
        file('d/.wh.a'), dir('e/'), file('e/.wh..wh..opq'), file('e/y', 'y'),
        file('t', 'x', { pax: { 'SCHILY.xattr.trusted.sandbox': 'no', 'SCHILY.xattr.trusted.overlay.opaque': 'y', 'SCHILY.xattr.user.kept': 'yes' } }),
        dir('u/', { mode: 0o555, pax: { 'SCHILY.xattr.user.kept': 'on a read-only folder', 'SCHILY.xattr.trusted.x': 'no' } }),
        file('ro', 'x', { mode: 0o444, pax: { 'SCHILY.xattr.user.kept': 'on a read-only file' } }),
      ],
      check: (d) => {
        wh(join(d, 'd/a'));
        assert.ok(opaque(d, 'e'), 'e is opaque');
        assert.deepEqual(readdirSync(join(d, 'e')), ['y']);
        const x = xattrs(d);
        assert.deepEqual(x, { e: { 'user.overlay.opaque': 'y' }, t: { 'user.kept': 'yes' }, u: { 'user.kept': 'on a read-only folder' }, ro: { 'user.kept': 'on a read-only file' } });
        perm(join(d, 'u'), 0o555); perm(join(d, 'ro'), 0o444);
      },
    });
  } finally { writer = undefined; }
});

test('the rootless writer refuses an owner its user namespace cannot hold, naming the entry, the id and the way out', async (t) => {
  if (!needs(t, 'root (a subordinate range to map into)', isRoot)) return;
  writer = mapped;
  try {
    await run({ name: 'uid beyond the range', from: 'podman: potentially insufficient UIDs', layer: () => [dir('a/'), file('a/big', 'x', { uid: 65537, gid: 0 })], refused: /belongs to uid 65537, which tester's user namespace does not map \(it maps 0 to 65536.*usermod --add-subuids/, entry: 'a/big' });
    await run({ name: 'gid beyond the range', from: 'podman: potentially insufficient GIDs', layer: () => [dir('g/', { uid: 0, gid: 100000 })], refused: /belongs to gid 100000.*\/etc\/subgid.*--add-subgids/, entry: 'g/' });
  } finally { writer = undefined; }
  // With a one-id map (no range), every file is the caller's, whatever the layer says.
  writer = { uid: [{ container: 0, host: 0, size: 1 }], gid: [{ container: 0, host: 0, size: 1 }], user: 'tester', single: 'tester has no range in /etc/subuid' };
  try {
    await run({ name: 'one-id map', from: 'podman ignore_chown_errors', layer: () => [file('big', 'x', { uid: 70000, gid: 70000, mode: 0o4755 })], check: (d) => { assert.deepEqual([st(join(d, 'big')).uid, st(join(d, 'big')).gid], [0, 0]); perm(join(d, 'big'), 0o4755); } });
  } finally { writer = undefined; }
});

test('the caller\'s maps: itself as 0, then its first subordinate range from 1; one id without a range', () => {
  assert.deepEqual(subordinateRanges('other:1:2\nme:100000:65536\n1234:200000:10\nme:bad:1\nme:5:0\n', 'me', 1234), [{ start: 100000, count: 65536 }, { start: 200000, count: 10 }]);
  const uid = process.geteuid!(), gid = process.getegid!();
  const name = require('node:os').userInfo().username as string;
  const o = callerOwners({ subuid: `${name}:100000:65536\n`, subgid: `${uid}:200000:1000\n` });
  if (!o.single) {
    assert.deepEqual(o.uid, [{ container: 0, host: uid, size: 1 }, { container: 1, host: 100000, size: 65536 }]);
    assert.deepEqual(o.gid, [{ container: 0, host: gid, size: 1 }, { container: 1, host: 200000, size: 1000 }]);
    assert.equal(hostId(o.uid, 0), uid); assert.equal(hostId(o.uid, 1), 100000); assert.equal(hostId(o.uid, 65536), 165535); assert.equal(hostId(o.uid, 65537), undefined);
  } else assert.match(o.single, /newuidmap/);
  const none = callerOwners({ subuid: 'someone-else:1:2\n', subgid: '' });
  assert.deepEqual([none.uid, none.gid], [[{ container: 0, host: uid, size: 1 }], [{ container: 0, host: gid, size: 1 }]]);
  assert.match(singleMapNote(none), /has no range in \/etc\/subuid: every file of the image belongs to .* \(root in the sandbox\).*usermod --add-subuids/);
});

test('a store whose file system refuses user xattrs is an error naming the folder and SANDBOX_STORE', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-xattr-'));
  try {
    assert.throws(() => checkUserXattrs(dir, () => { throw Object.assign(new Error('lsetxattr: Operation not supported (EOPNOTSUPP)'), { errno: 95 }); }),
      (e: Error) => e instanceof StoreError && e.message.includes(dir) && /cannot hold user extended attributes \(Operation not supported \(EOPNOTSUPP\)\)/.test(e.message) && /SANDBOX_STORE to a folder on ext4, xfs or btrfs/.test(e.message));
    // The scratch file goes, whatever happened.
    assert.deepEqual(readdirSync(dir), []);
    if (real) { checkUserXattrs(dir, ops.lsetxattr); assert.deepEqual(readdirSync(dir), []); }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('the folder metadata of a big layer lands on the right folders, deepest first', async () => {
  // Folders made unwritable and unsearchable by their entries, with files in them: the
  // metadata pass must reach every one before its parent is closed off.
  const entries: Entry[] = [];
  for (let i = 0; i < 20; i++) {
    entries.push(dir(`d${i}/`, { mode: 0o500, pax: { mtime: String(1000 + i) } }));
    for (let j = 0; j < 5; j++) entries.push(dir(`d${i}/s${j}/`, { mode: 0o000, pax: { mtime: String(2000 + j) } }), file(`d${i}/s${j}/f`, 'x', { mode: 0o444 }));
  }
  for (const w of [undefined, mapped]) {
    writer = w;
    await run({
      name: `deep (${w ? 'rootless' : 'root'} writer)`, from: 'ours', layer: () => entries,
      check: (d) => {
        for (let i = 0; i < 20; i++) {
          perm(join(d, `d${i}`), 0o500); mtime(join(d, `d${i}`), 1000 + i);
          for (let j = 0; j < 5; j++) { perm(join(d, `d${i}/s${j}`), 0o000); mtime(join(d, `d${i}/s${j}`), 2000 + j); }
        }
      },
    });
  }
  writer = undefined;
});

test('overlay options: userxattr without root of the host, the root path as it was', () => {
  const plan = (readOnly: boolean, layers = ['/s/layers/a', '/s/layers/b']) => ({ name: 'web', steps: [{ kind: 'rootfs.image', id: 'rootfs', args: { layers } }, { kind: 'mount.root', id: 'mount:/', args: { fstype: 'overlay', readOnly } }] }) as unknown as Plan;
  const store = new Store('/s');
  assert.equal(overlayOptions(plan(false), store, { root: true }).options, 'lowerdir=/s/layers/b:/s/layers/a,upperdir=/s/containers/web/upper,workdir=/s/containers/web/work');
  assert.equal(overlayOptions(plan(false), store, { root: false }).options, 'lowerdir=/s/layers/b:/s/layers/a,upperdir=/s/containers/web/upper,workdir=/s/containers/web/work,userxattr');
  // Read-only: no upper layer, and the init layer (engine/init-layer.ts) on top of the image's.
  assert.equal(overlayOptions(plan(true, ['/s/layers/a']), store, { root: true }).options, 'lowerdir=/s/containers/web/init:/s/layers/a');
  assert.equal(overlayOptions(plan(true, ['/s/layers/a']), store, { root: false }).options, 'lowerdir=/s/containers/web/init:/s/layers/a,userxattr');
  assert.equal(overlayOptions(plan(true), store, { root: true }).options, 'lowerdir=/s/containers/web/init:/s/layers/b:/s/layers/a');
  // Without a host given, this process decides: root of the host here, or not.
  assert.equal(overlayOptions(plan(false), store).options?.endsWith(',userxattr'), !isRoot || !/^\s*0\s+0\s+4294967295\s*$/.test(readFileSync('/proc/self/uid_map', 'utf8')));

  // The store's file system is tried for user xattrs before anything changes, and only without root.
  const dir = mkdtempSync(join(tmpdir(), 'sbx-xattr-'));
  try {
    const refuse = () => { throw new Error('lsetxattr: Operation not supported (EOPNOTSUPP)'); };
    checkImageStore(plan(false), new Store(dir), { root: true }, refuse);
    assert.throws(() => checkImageStore(plan(false), new Store(dir), { root: false }, refuse), (e: Error) => e instanceof PreflightError && e.step.id === 'rootfs' && e.errno === 95 && e.message.includes(`the image store ${dir} is on a file system that cannot hold user extended attributes`));
    assert.deepEqual(readdirSync(dir), []);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
