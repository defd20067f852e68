// Images without root: users made by the test pull OCI layouts into their own stores, and each
// layer's files belong on disk to the host ids that the user's namespace maps the tar's owners to.
// The checks are made from inside such a namespace (unshare with the user's newuidmap maps, as a
// rootless sandbox has them): the layers mounted with overlayfs and userxattr show the owners of
// the image, whiteouts and opaque folders hide what they hide, and a lower folder can be removed.
// Malicious layers are refused as they are for root, with nothing written outside; a store on a
// file system without user xattrs is an error naming it; a user without subordinate ranges gets
// every file as its own and one note; the store's layers go with image prune.
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { hasBusyboxRoot, hasEngine, needs } from '../helpers/sandbox';
import { buildImage, busyboxEntries, maliciousLayers, tar, writeLayout, type Entry } from '../helpers/image';
import { ROOT } from '../helpers/load';
import { asUser, canMakeUsers, ext4For, hasMkfsExt4, hasUidmap, holdsUserXattrs, makeUser, PYTHON3, removeAllUsers, repoForUsers, sandboxAs, subRanges, userTmp, type TestUser } from '../helpers/users';

const hasBusyboxImage = existsSync(join(ROOT, 'samples/images/busybox/index.json'));
const ready = (t: TestContext) => {
  const ok = needs(t, 'root, to make users (useradd)', canMakeUsers) && needs(t, 'newuidmap/newgidmap (uidmap)', hasUidmap)
    && needs(t, 'the native engine', hasEngine) && needs(t, 'the busybox image (npm install)', hasBusyboxImage);
  if (ok && setupNote) { t.diagnostic(setupNote); setupNote = undefined; }
  return ok;
};

let user: TestUser | undefined;
const made: string[] = [];
const mounted: { undo(): void }[] = [];
/** Where TMPDIR's file system holds no user xattrs (the v2 VM's /dev/shm, a tmpfs on Linux 6.1),
 * the scratch folders (stores, upper layers) go on an ext4 file system of the test's own. */
let scratchRoot: string | undefined;
let setupNote: string | undefined;
before(() => {
  if (!canMakeUsers || !hasUidmap) return;
  user = makeUser('rlimg');
  repoForUsers();
  if (!holdsUserXattrs(tmpdir()) && hasMkfsExt4) {
    const base = mkdtempSync(join(tmpdir(), 'rlimg-scratch-'));
    chmodSync(base, 0o755);
    made.push(base);
    const fs = ext4For(user, join(base, 'fs'));
    mounted.push(fs);
    scratchRoot = fs.dir;
    setupNote = `set-up: ${tmpdir()} holds no user xattrs: scratch folders on ${fs.what}`;
  }
});
after(() => {
  for (const m of mounted.reverse()) m.undo();
  for (const p of made) rmSync(p, { recursive: true, force: true });
  removeAllUsers();
});

/** A scratch folder for the user, removed at the end (as root: it may hold subordinate ids' files). */
const scratch = (u: TestUser) => {
  if (!scratchRoot) { const d = userTmp(u); made.push(d); return d; }
  const d = mkdtempSync(join(scratchRoot, 'sbx-user-'));
  chownSync(d, u.uid, u.gid);
  return d;
};

/** The user's default store (~/.local/share/sandbox), on an ext4 file system of the test's own
 * where the home's holds no user xattrs (the v2 VM's /, an overlay on a tmpfs). */
function homeStore(t: TestContext, u: TestUser): string {
  const store = storeOf(u);
  if (existsSync(store) || holdsUserXattrs(u.home) || !hasMkfsExt4) return store;
  for (const d of [join(u.home, '.local'), join(u.home, '.local/share')]) { mkdirSync(d, { recursive: true }); chownSync(d, u.uid, u.gid); }
  const fs = ext4For(u, store);
  mounted.push(fs);
  t.diagnostic(`set-up: ${u.home} holds no user xattrs: the default store ${fs.what}`);
  return store;
}

/** An OCI layout of these layers that every user can read. */
function layout(layers: Entry[][], config: Record<string, unknown> = { Cmd: ['/bin/sh'] }): { dir: string; diffIds: string[] } {
  const img = buildImage(layers.map((l) => tar(l)), config, (b) => gzipSync(b));
  const dir = writeLayout(img, 'latest');
  chmodSync(dir, 0o755);
  made.push(dir);
  return { dir, diffIds: img.diffIds };
}

const storeOf = (u: TestUser) => join(u.home, '.local/share/sandbox');
const layerDir = (store: string, diffId: string) => join(store, 'layers', diffId.slice(7));

/** Every path under dir with its owner and mode, as the host sees them. */
function owners(dir: string): Map<string, { uid: number; gid: number; mode: number; type: string }> {
  const out = new Map<string, { uid: number; gid: number; mode: number; type: string }>();
  const walk = (p: string, rel: string) => {
    const st = lstatSync(p);
    out.set(rel, { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, type: st.isSymbolicLink() ? 'l' : st.isDirectory() ? 'd' : st.isCharacterDevice() ? `c${st.rdev}` : 'f' });
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(join(p, n), rel ? `${rel}/${n}` : n);
  };
  walk(dir, '');
  return out;
}

/** A shell script run as the user, as root of a user namespace with the user's maps (0 → the
 * user, 1… → its first subordinate ranges) and a mount namespace of its own, which goes with it. */
function inUserNs(u: TestUser, script: string) {
  const r = subRanges(u);
  return asUser(u, ['unshare', '--map-user=0', '--map-group=0', `--map-users=${r.uid!.start},1,${r.uid!.count}`, `--map-groups=${r.gid!.start},1,${r.gid!.count}`, '--mount', '--', 'sh', '-ec', script]);
}

test('a user pulls busybox without root: every file is its own (the image\'s root), and it runs as root inside its namespace', async (t) => {
  if (!ready(t)) return;
  const u = user!;
  homeStore(t, u);
  const t0 = Date.now();
  const r = sandboxAs(u, ['pull', 'oci:samples/images/busybox:latest']);
  const ms = Date.now() - t0;
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^sha256:[0-9a-f]{64}\n$/);
  const layers = readdirSync(join(storeOf(u), 'layers'));
  assert.equal(layers.length, 1, `one layer: ${layers}`);
  const dir = join(storeOf(u), 'layers', layers[0]!);
  const all = owners(dir);
  assert.ok(all.size > 100, `the busybox root is there (${all.size} entries)`);
  for (const [p, o] of all) assert.deepEqual([o.uid, o.gid], [u.uid, u.gid], `${p || '.'} belongs to ${u.name}`);
  // From inside: the layer under overlayfs (userxattr) in the user's namespace, and busybox run in it.
  const work = scratch(u);
  const inside = inUserNs(u, `cd ${work}; mkdir up wk m
mount -t overlay overlay -o lowerdir=${dir},upperdir=${work}/up,workdir=${work}/wk,userxattr m
chroot m /bin/sh -c 'echo "id $(id -u):$(id -g)"; ls -ln /bin/busybox | awk "{print \\"owner\\", \\$3\\":\\"\\$4}"; echo hello > /tmp/from-inside; cat /tmp/from-inside'
umount m`);
  assert.equal(inside.code, 0, inside.err);
  assert.match(inside.out, /^id 0:0\nowner 0:0\nhello\n$/);
  // What the sandbox wrote went to the upper layer, as the user (root inside).
  assert.equal(lstatSync(join(work, 'up/tmp/from-inside')).uid, u.uid);
  t.diagnostic(`rootless pull of the busybox layout: ${ms} ms, the CLI start included`);
});

test('an image with owners, whiteouts and opaque folders: owners mapped, and from inside /d/a is gone, /e holds only y, a lower folder can be removed', async (t) => {
  if (!ready(t)) return;
  const u = user!;
  const { uid: su, gid: sg } = subRanges(u);
  const lower: Entry[] = [
    { name: 'd/', type: '5' }, { name: 'd/a', body: 'a' }, { name: 'd/b', body: 'b' },
    { name: 'e/', type: '5' }, { name: 'e/x', body: 'x' },
    { name: 'home/', type: '5' }, { name: 'home/u/', type: '5', mode: 0o700, uid: 1000, gid: 1000 }, { name: 'home/u/f', body: 'mine', mode: 0o600, uid: 1000, gid: 1000 },
    { name: 'home/u/link', type: '2', linkname: 'f', uid: 1000, gid: 1000 },
    { name: 'usr/', type: '5' }, { name: 'usr/bin/', type: '5' }, { name: 'usr/bin/passwd', body: '#!/bin/sh\n', mode: 0o4755 },
    { name: 'var/', type: '5' }, { name: 'var/mail/', type: '5', mode: 0o2775, uid: 0, gid: 8 },
    { name: 'nobody', body: '', uid: 65534, gid: 65534 },
  ];
  const upper: Entry[] = [
    { name: 'd/', type: '5' }, { name: 'd/.wh.a', body: '' },
    { name: 'e/', type: '5' }, { name: 'e/.wh..wh..opq', body: '' }, { name: 'e/y', body: 'y' },
    { name: 'home/', type: '5' }, { name: 'home/u/', type: '5', mode: 0o700, uid: 1000, gid: 1000 }, { name: 'home/u/g', body: 'new', uid: 1000, gid: 1000 },
  ];
  const img = layout([lower, upper]);
  const store = join(scratch(u), 'store');
  const r = sandboxAs(u, ['pull', `oci:${img.dir}:latest`], { env: { SANDBOX_STORE: store } });
  assert.equal(r.code, 0, r.err);
  const [l1, l2] = img.diffIds.map((d) => layerDir(store, d)) as [string, string];
  // On the host: the tar's owners as the user's namespace maps them.
  const host = owners(l1);
  assert.deepEqual([host.get('d/a')!.uid, host.get('d/a')!.gid], [u.uid, u.gid]);
  assert.deepEqual([host.get('home/u')!.uid, host.get('home/u')!.gid, host.get('home/u')!.mode], [su!.start + 999, sg!.start + 999, 0o700]);
  assert.deepEqual([host.get('home/u/f')!.uid, host.get('home/u/f')!.gid, host.get('home/u/f')!.mode], [su!.start + 999, sg!.start + 999, 0o600]);
  assert.deepEqual([host.get('home/u/link')!.uid, host.get('home/u/link')!.type], [su!.start + 999, 'l']);
  assert.deepEqual([host.get('usr/bin/passwd')!.uid, host.get('usr/bin/passwd')!.mode], [u.uid, 0o4755]);
  assert.deepEqual([host.get('var/mail')!.gid, host.get('var/mail')!.mode], [sg!.start + 7, 0o2775]);
  assert.deepEqual([host.get('nobody')!.uid, host.get('nobody')!.gid], [su!.start + 65533, sg!.start + 65533]);
  assert.equal(owners(l2).get('d/a')!.type, 'c0', 'd/a is a 0/0 whiteout in the upper layer');
  const xattr = spawnSync(PYTHON3, ['-c', 'import os,sys; print(sorted(os.listxattr(sys.argv[1], follow_symlinks=False)))', join(l2, 'e')], { encoding: 'utf8' });
  assert.equal(xattr.stdout.trim(), "['user.overlay.opaque']", xattr.stderr);
  // From inside.
  const work = scratch(u);
  const inside = inUserNs(u, `cd ${work}; mkdir up wk m
mount -t overlay overlay -o lowerdir=${l2}:${l1},upperdir=${work}/up,workdir=${work}/wk,userxattr m
echo "d: $(ls -A m/d | tr '\\n' ' ')"
echo "e: $(ls -A m/e | tr '\\n' ' ')"
echo "home/u: $(stat -c %u:%g:%a m/home/u) f: $(stat -c %u:%g:%a m/home/u/f) g: $(stat -c %u:%g m/home/u/g) link: $(stat -c %u:%g m/home/u/link)"
echo "passwd: $(stat -c %u:%a m/usr/bin/passwd) mail: $(stat -c %u:%g:%a m/var/mail) nobody: $(stat -c %u:%g m/nobody)"
cat m/home/u/f; echo
rm -r m/d m/e/y
echo "after rm: $(ls -A m | tr '\\n' ' ')e: $(ls -A m/e | wc -l)"
umount m
echo "lower: $(ls -A ${l1}/d | tr '\\n' ' ')"`);
  assert.equal(inside.code, 0, inside.err);
  assert.equal(inside.out, [
    'd: b ', 'e: y ', 'home/u: 1000:1000:700 f: 1000:1000:600 g: 1000:1000 link: 1000:1000', 'passwd: 0:4755 mail: 0:8:2775 nobody: 65534:65534', 'mine',
    'after rm: e home nobody usr var e: 0', 'lower: a b ', '',
  ].join('\n'));
  // The removal is a whiteout in the sandbox's upper layer; the lower layers did not change.
  assert.equal(owners(join(work, 'up')).get('d')!.type, 'c0');
  assert.deepEqual(readdirSync(join(l1, 'd')).sort(), ['a', 'b']);
});

test('malicious layers pulled without root write nothing outside their folder, and nothing at all', async (t) => {
  if (!ready(t)) return;
  const u = user!;
  const cases: [string, Entry[], RegExp][] = [
    ...maliciousLayers('/tmp/evil-rlimg'),
    ['a folder\'s owner applied through a symlink that replaced it', [{ name: 'a/', type: '5', uid: 1000, gid: 1000, mode: 0o777 }, { name: 'a', type: '2', linkname: '../../outside' }, { name: 'a/x', body: 'x' }], /through the symlink "a"/],
    ['an owner beyond the user\'s range', [{ name: 'f', body: 'x', uid: 70000 }], /belongs to uid 70000, which .* does not map/],
  ];
  const base = scratch(u);
  const outside = join(base, 'outside');
  mkdirSync(outside);
  chownSync(outside, u.uid, u.gid);
  for (const [what, entries, why] of cases) {
    const img = layout([entries]);
    const store = join(base, 'store');
    const r = sandboxAs(u, ['pull', `oci:${img.dir}:latest`], { env: { SANDBOX_STORE: store } });
    assert.equal(r.code, 1, `${what}: ${r.err}`);
    assert.match(r.err, why, what);
    assert.doesNotMatch(r.err, /\n\s+at /, `${what}: no stack trace`);
    assert.deepEqual(readdirSync(outside), [], `${what}: something was written outside`);
    assert.deepEqual(existsSync(join(store, 'layers')) ? readdirSync(join(store, 'layers')) : [], [], `${what}: a half-unpacked folder was left`);
  }
  // The symlink-over-a-folder case: nothing of the folder's (owner, mode) landed on outside/.
  assert.deepEqual([lstatSync(outside).uid, lstatSync(outside).mode & 0o777], [u.uid, 0o755]);
  for (const p of ['/etc/evil-from-layer', '/tmp/evil-rlimg', join(base, 'evil')]) assert.equal(existsSync(p), false, p);
});

test('a store on a file system without user xattrs is refused at pull, naming it and SANDBOX_STORE; a tmpfs store works from Linux 6.6', async (t) => {
  if (!ready(t)) return;
  const u = user!;
  // ramfs takes no user xattrs; tmpfs takes them since Linux 6.6 (the v2 VM's 6.1 refuses it too).
  // Each is mounted in a mount namespace of the test's own, which goes when the pull ends.
  const pullOn = (fstype: string) => {
    const dir = join(scratch(u), 'store');
    mkdirSync(dir);
    const env = ['env', '-i', 'PATH=/usr/bin:/bin', `HOME=${u.home}`, `USER=${u.name}`, 'CI=true', 'NO_COLOR=1', `SANDBOX_STORE=${dir}`];
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-ec', `mount -t ${fstype} none "$1"; chown ${u.uid}:${u.gid} "$1"; shift; exec "$@"`, 'sh', dir,
      'setpriv', '--reuid', String(u.uid), '--regid', String(u.gid), '--init-groups', '--', ...env, process.execPath, join(repoForUsers(), 'bin/sandbox.js'), 'pull', 'oci:samples/images/busybox:latest'], { cwd: repoForUsers(), encoding: 'utf8', timeout: 60_000 });
    return { ...r, dir };
  };
  const ramfs = pullOn('ramfs');
  assert.equal(ramfs.status, 1, ramfs.stderr);
  assert.ok(ramfs.stderr.includes(`the image store ${ramfs.dir} is on a file system that cannot hold user extended attributes`), ramfs.stderr);
  assert.match(ramfs.stderr, /set SANDBOX_STORE to a folder on ext4, xfs or btrfs/);
  assert.doesNotMatch(ramfs.stderr, /\n\s+at /);
  const tmpfs = pullOn('tmpfs');
  const [major, minor] = release().split('.').map(Number) as [number, number];
  if (major > 6 || (major === 6 && minor >= 6)) assert.equal(tmpfs.status, 0, `a tmpfs store on Linux ${release()}: ${tmpfs.stderr}`);
  else {
    assert.equal(tmpfs.status, 1, `a tmpfs store on Linux ${release()}: ${tmpfs.stderr}`);
    assert.ok(tmpfs.stderr.includes(`the image store ${tmpfs.dir} is on a file system that cannot hold user extended attributes`), tmpfs.stderr);
    assert.match(tmpfs.stderr, /tmpfs holds them only since Linux 6\.6/);
  }
});

test('a user without subordinate ranges gets every file as its own and one note saying so', async (t) => {
  if (!ready(t)) return;
  const u = makeUser('rlimg', { subids: false });
  homeStore(t, u);
  const img = layout([[{ name: 'home/', type: '5' }, { name: 'home/u/', type: '5', uid: 1000, gid: 1000 }, { name: 'home/u/f', body: 'x', uid: 1000, gid: 1000, mode: 0o4750 }], [{ name: 'big', body: 'x', uid: 70000, gid: 70000 }]]);
  const r = sandboxAs(u, ['pull', `oci:${img.dir}:latest`]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.err.match(/has no range in \/etc\/subuid/g)?.length, 1, `one note: ${r.err}`);
  assert.match(r.err, /every file of the image belongs to .* \(root in the sandbox\).*usermod --add-subuids/);
  for (const d of img.diffIds) for (const [p, o] of owners(layerDir(storeOf(u), d))) assert.deepEqual([o.uid, o.gid], [u.uid, u.gid], `${p || '.'} belongs to ${u.name}`);
  assert.equal(owners(layerDir(storeOf(u), img.diffIds[0]!)).get('home/u/f')!.mode, 0o4750);
});

test('image prune removes a rootless store\'s layers, files of subordinate ids included', async (t) => {
  if (!ready(t)) return;
  const u = user!;
  const img = layout([[{ name: 'home/', type: '5' }, { name: 'home/u/', type: '5', mode: 0o700, uid: 1000, gid: 1000 }, { name: 'home/u/sub/', type: '5', mode: 0o500, uid: 1000, gid: 1000 }, { name: 'home/u/sub/f', body: 'x', uid: 1000, gid: 1000 }]]);
  const store = join(scratch(u), 'store');
  const env = { SANDBOX_STORE: store };
  assert.equal(sandboxAs(u, ['pull', `oci:${img.dir}:latest`], { env }).code, 0);
  assert.equal(lstatSync(join(layerDir(store, img.diffIds[0]!), 'home/u/sub/f')).uid, subRanges(u).uid!.start + 999);
  const rmi = sandboxAs(u, ['rmi', `oci:${img.dir}:latest`], { env });
  assert.equal(rmi.code, 0, rmi.err);
  const prune = sandboxAs(u, ['image', 'prune'], { env });
  assert.equal(prune.code, 0, prune.err);
  assert.deepEqual(readdirSync(join(store, 'layers')), []);
});

test('sandbox up of an image without root: from inside, the image\'s owners, its whiteouts and opaque folders, a removable lower folder; nothing left after', async (t) => {
  if (!ready(t) || !needs(t, 'the busybox root (npm install)', hasBusyboxRoot)) return;
  const u = user!;
  const lower: Entry[] = [
    ...busyboxEntries(),
    { name: 'd/', type: '5' }, { name: 'd/a', body: 'a' }, { name: 'd/b', body: 'b' }, { name: 'e/', type: '5' }, { name: 'e/x', body: 'x' },
    { name: 'home/', type: '5' }, { name: 'home/u/', type: '5', mode: 0o700, uid: 1000, gid: 1000 }, { name: 'home/u/f', body: 'mine', mode: 0o600, uid: 1000, gid: 1000 },
    { name: 'usr/', type: '5' }, { name: 'usr/bin/', type: '5' }, { name: 'usr/bin/passwd', body: '#!/bin/sh\n', mode: 0o4755 },
  ];
  const upper: Entry[] = [{ name: 'd/', type: '5' }, { name: 'd/.wh.a', body: '' }, { name: 'e/', type: '5' }, { name: 'e/.wh..wh..opq', body: '' }, { name: 'e/y', body: 'y' }];
  const img = layout([lower, upper], { Cmd: ['/bin/sh'] });
  const dir = scratch(u);
  const name = `rlimg-up-${process.pid}`;
  const file = join(dir, 'sandbox.yml');
  writeFileSync(file, `version: 1\nname: ${name}\nimage: oci:${img.dir}:latest\nnetwork: none\n`);
  chmodSync(file, 0o644);
  const store = join(dir, 'store');
  const script = [
    'echo "d: $(ls -A /d | tr "\\n" " ")"', 'echo "e: $(ls -A /e | tr "\\n" " ")"',
    'echo "home/u: $(stat -c %u:%g:%a /home/u) f: $(stat -c %u:%g:%a /home/u/f) passwd: $(stat -c %u:%a /usr/bin/passwd)"',
    'rm -r /d', 'echo "d after rm: $(ls -d /d 2>&1 | grep -c "No such")"',
    // Written by the sandbox into a folder of a subordinate id: the upper layer gets its files.
    'echo new > /home/u/new && chown 1000:1000 /home/u/new && cat /home/u/new',
    'echo "id: $(id -u):$(id -g)"',
  ].join('; ');
  const r = sandboxAs(u, ['up', '-q', file, '--', '/bin/sh', '-c', script], { env: { SANDBOX_STORE: store } });
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, ['d: b ', 'e: y ', 'home/u: 1000:1000:700 f: 1000:1000:600 passwd: 0:4755', 'd after rm: 1', 'new', 'id: 0:0', ''].join('\n'));
  // Nothing of the sandbox is left: its upper layer (with files of the user's subordinate ids), its state.
  assert.deepEqual(existsSync(join(store, 'containers')) ? readdirSync(join(store, 'containers')) : [], [], `the upper layer was removed: ${r.err}`);
  assert.deepEqual(existsSync(join(u.runtimeDir, 'sandbox')) ? readdirSync(join(u.runtimeDir, 'sandbox')).filter((n) => !n.startsWith('.')) : [], []);
});
