// Named and anonymous volumes for real: seeded once from an image's files (owners, modes, xattrs,
// symlinks, hard links), written by a non-root user inside, kept across runs and by `down`,
// removed by `down -v` and `volume rm` (refused while a running sandbox uses one), and never left
// half-made by a failed run. Checked from inside the sandbox and on the host's disk.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasBusyboxRoot, hasEngine, isRoot, leftovers, needs, sandbox } from '../helpers/sandbox';
import { buildImage, busyboxEntries, tar, writeLayout } from '../helpers/image';
import { canMakeUsers, ext4For, hasMkfsExt4, hasUidmap, holdsUserXattrs, makeUser, removeAllUsers, sandboxAs, subRanges, userTmp } from '../helpers/users';

const ready = (t: import('node:test').TestContext) => needs(t, 'root', isRoot) && needs(t, 'the native engine', hasEngine) && needs(t, 'the busybox root (npm install)', hasBusyboxRoot);
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

/** busybox, and a layer with a folder of uid 1000 holding a file (mode 0640, a user xattr), a
 * symlink that points at the host's /etc/passwd if followed, and a hard link; a VOLUME at /cache. */
function image(): string {
  const top = tar([
    { name: 'srv/', type: '5' },
    { name: 'srv/data/', type: '5', uid: 1000, gid: 1000, mode: 0o750 },
    { name: 'srv/data/seed.txt', body: 'seed\n', uid: 1000, gid: 1000, mode: 0o640, pax: { 'SCHILY.xattr.user.origin': 'image' } },
    { name: 'srv/data/hard', type: '1', linkname: 'srv/data/seed.txt' },
    { name: 'srv/data/passwd', type: '2', linkname: '/etc/passwd' },
    { name: 'cache/', type: '5', mode: 0o755 },
    { name: 'cache/c.txt', body: 'cached\n' },
  ]);
  return writeLayout(buildImage([tar(busyboxEntries()), top], { Cmd: ['/bin/sh'], Env: ['PATH=/bin:/sbin'], Volumes: { '/cache': {} } }), 'v1');
}

const xattr = (p: string, name: string) => execFileSync('python3', ['-c', 'import os,sys; print(os.getxattr(sys.argv[1], sys.argv[2], follow_symlinks=False).decode())', p, name], { encoding: 'utf8' }).trim();

test('a named volume is seeded once from the image, written by uid 1000, kept by down and removed by down -v; rm refuses one in use', { timeout: 300_000 }, async (t) => {
  if (!ready(t)) return;
  const layout = image();
  const store = tmp('sbx-store-');
  const dir = tmp('sbx-cfg-');
  const env = { SANDBOX_STORE: store };
  const vols = join(store, 'volumes');
  const cfg = join(dir, 'vol.yml');
  const inside = "id -u; stat -c '%u:%g %a %n' /srv/data /srv/data/seed.txt /srv/empty; cat /srv/data/seed.txt; ls /srv/empty; echo more >> /srv/data/seed.txt; echo e > /srv/empty/f; cat /cache/c.txt";
  writeFileSync(cfg, `version: 1\nname: voltest\nimage: oci:${layout}:v1\nnetwork: none\nuser: "1000:1000"\nvolumes:\n  - vdata:/srv/data\n  - vempty:/srv/empty:nocopy\ncommand: [/bin/sh, -c, "${inside}"]\n`);
  try {
    const plan = sandbox(['plan', cfg], { env });
    assert.match(plan.out, /volume vdata on \/srv\/data: created and seeded from the image on first use/);

    // First up: seeded from the image; the image's owner and mode, as inside as on disk.
    const r1 = sandbox(['up', '-q', cfg], { env });
    assert.equal(r1.code, 0, r1.err);
    const lines = r1.out.trim().split('\n');
    assert.equal(lines[0], '1000');
    assert.deepEqual(lines.slice(1, 4), ['1000:1000 750 /srv/data', '1000:1000 640 /srv/data/seed.txt', '1000:1000 755 /srv/empty']);
    assert.equal(lines[4], 'seed');
    assert.equal(lines[5], 'cached', 'the image\'s VOLUME is an anonymous volume seeded from the image');
    const data = join(vols, 'vdata', '_data');
    assert.equal(readFileSync(join(data, 'seed.txt'), 'utf8'), 'seed\nmore\n', 'uid 1000 wrote into the volume');
    assert.equal(xattr(join(data, 'seed.txt'), 'user.origin'), 'image');
    assert.equal(lstatSync(join(data, 'hard')).ino, lstatSync(join(data, 'seed.txt')).ino, 'a hard link stays one');
    assert.equal(readlinkSync(join(data, 'passwd')), '/etc/passwd', 'a symlink is copied, not followed');
    assert.equal(lstatSync(join(vols, 'vempty', '_data', 'f')).uid, 1000);
    assert.deepEqual(readdirSync(join(vols, 'vdata')).sort(), ['_data', 'meta.json']);
    const meta = JSON.parse(readFileSync(join(vols, 'vdata', 'meta.json'), 'utf8'));
    assert.equal(meta.seeded.from, 'image');
    assert.equal(JSON.parse(readFileSync(join(vols, 'vempty', 'meta.json'), 'utf8')).seeded.from, 'empty');
    const anon = readdirSync(vols).filter((n) => n.startsWith('voltest-anon-'));
    assert.equal(anon.length, 1);
    assert.deepEqual(readdirSync(vols).filter((n) => n.startsWith('.')), [], 'nothing half-made is left');
    assert.deepEqual(leftovers('voltest'), []);

    // Second up: the data is there, not seeded again; the plan says it exists.
    assert.match(sandbox(['plan', cfg], { env }).out, /volume vdata on \/srv\/data: exists; used as it is, never seeded again/);
    const r2 = sandbox(['up', '-q', cfg], { env });
    assert.equal(r2.code, 0, r2.err);
    assert.match(r2.out, /^seed\nmore$/m);
    assert.match(r2.out, /^f$/m, 'the nocopy volume keeps what the first run wrote');
    assert.equal(JSON.parse(readFileSync(join(vols, 'vdata', 'meta.json'), 'utf8')).createdAt, meta.createdAt);
    assert.equal(readFileSync(join(data, 'seed.txt'), 'utf8'), 'seed\nmore\nmore\n');

    // Detached: rm refuses a volume in use, naming the sandbox; down keeps the volumes; down -v removes them.
    const detached = join(dir, 'det.yml');
    writeFileSync(detached, `version: 1\nname: voltest\nimage: oci:${layout}:v1\nnetwork: none\nuser: "1000:1000"\nvolumes: [vdata:/srv/data]\ncommand: [/bin/sleep, "1000"]\n`);
    assert.equal(sandbox(['up', '-d', '-q', detached], { env }).code, 0);
    const rm = sandbox(['volume', 'rm', 'vdata'], { env });
    assert.equal(rm.code, 1);
    assert.match(rm.err, /the volume vdata is in use by the running sandbox voltest; stop it first/);
    const ls = JSON.parse(sandbox(['volume', 'ls', '--json'], { env }).out) as { name: string; usedBy: { sandbox: string; running: boolean }[] }[];
    assert.deepEqual(ls.find((v) => v.name === 'vdata')?.usedBy, [{ sandbox: 'voltest', running: true }]);
    assert.match(sandbox(['volume', 'inspect', 'vdata'], { env }).out, new RegExp(`data +${data}`));
    assert.equal(sandbox(['down', 'voltest'], { env }).code, 0);
    assert.ok(existsSync(data), 'down keeps a named volume');
    assert.ok(existsSync(join(vols, anon[0]!)), 'down keeps an anonymous volume');
    assert.equal(sandbox(['up', '-d', '-q', detached], { env }).code, 0);
    const down = sandbox(['down', '-v', 'voltest'], { env });
    assert.equal(down.code, 0, down.err);
    assert.match(down.err, /removed volume vdata/);
    assert.match(down.err, /removed anonymous volume voltest-anon-/);
    assert.ok(!existsSync(join(vols, 'vdata')));
    assert.ok(!existsSync(join(vols, anon[0]!)));
    assert.ok(existsSync(join(vols, 'vempty')), 'down -v removes the volumes of the run it stops, not another file\'s');

    // volume rm, and the messages for a name that is not there.
    assert.equal(sandbox(['volume', 'rm', 'vempty'], { env }).code, 0);
    assert.ok(!existsSync(join(vols, 'vempty')));
    assert.match(sandbox(['volume', 'rm', 'vempty'], { env }).err, /no volume named vempty/);
    assert.deepEqual(leftovers('voltest'), []);
  } finally {
    sandbox(['down', 'voltest'], { env });
    for (const p of [store, dir, layout]) rmSync(p, { recursive: true, force: true });
  }
});

test('run --rm removes the anonymous volumes it made, foreground and detached (-d: once the command ends), and keeps the named ones, as docker run --rm', { timeout: 300_000 }, async (t) => {
  if (!ready(t)) return;
  const layout = image();
  const store = tmp('sbx-store-');
  const env = { SANDBOX_STORE: store };
  const vols = join(store, 'volumes');
  const anon = () => (existsSync(vols) ? readdirSync(vols) : []).filter((n) => n.startsWith('volrm-anon-'));
  const listed = () => (JSON.parse(sandbox(['ps', '-a', '--json'], { env }).out) as { name: string }[]).some((r) => r.name === 'volrm');
  const line = (...cmd: string[]) => ['--name', 'volrm', '-q', '--network', 'none', '-v', 'vkeep:/srv/data', `oci:${layout}:v1`, ...cmd];
  try {
    // Without --rm the image's VOLUME (an anonymous volume) stays, as Docker's.
    const keep = sandbox(['run', ...line('/bin/sh', '-c', 'cat /cache/c.txt')], { env });
    assert.equal(keep.code, 0, keep.err);
    assert.equal(keep.out, 'cached\n');
    assert.equal(anon().length, 1, 'run without --rm keeps the anonymous volume');
    assert.equal(sandbox(['volume', 'rm', anon()[0]!], { env }).code, 0);

    const fg = sandbox(['run', '--rm', ...line('/bin/sh', '-c', 'cat /cache/c.txt; echo fg > /srv/data/fg')], { env });
    assert.equal(fg.code, 0, fg.err);
    assert.equal(fg.out, 'cached\n');
    assert.deepEqual(anon(), [], 'run --rm removed its anonymous volume');
    assert.equal(readFileSync(join(vols, 'vkeep', '_data', 'fg'), 'utf8'), 'fg\n', 'the named volume stays, with what the run wrote');
    assert.deepEqual(leftovers('volrm'), []);

    const d = sandbox(['run', '-d', '--rm', ...line('/bin/sh', '-c', 'echo d > /srv/data/d; sleep 1')], { env });
    assert.equal(d.code, 0, d.err);
    assert.equal(anon().length, 1, 'the detached run has its anonymous volume while it runs');
    for (const end = Date.now() + 10_000; Date.now() < end && (listed() || anon().length); ) await new Promise((r) => setTimeout(r, 100));
    assert.equal(listed(), false, 'ps -a no longer lists it');
    assert.deepEqual(anon(), [], 'its supervisor\'s down removed the anonymous volume');
    assert.equal(readFileSync(join(vols, 'vkeep', '_data', 'd'), 'utf8'), 'd\n', 'and kept the named one');
    assert.deepEqual(leftovers('volrm'), []);
  } finally {
    sandbox(['down', 'volrm'], { env });
    for (const p of [store, layout]) rmSync(p, { recursive: true, force: true });
  }
});

test('a failed first up leaves no volume, half-made or not; a volume that existed keeps its data', { timeout: 120_000 }, async (t) => {
  if (!ready(t)) return;
  const layout = image();
  const store = tmp('sbx-store-');
  const dir = tmp('sbx-cfg-');
  const env = { SANDBOX_STORE: store };
  const vols = join(store, 'volumes');
  const cfg = join(dir, 'fail.yml');
  writeFileSync(cfg, `version: 1\nname: volfail\nimage: oci:${layout}:v1\nnetwork: none\nvolumes: [vfail:/srv/data]\ncommand: [/bin/sh, -c, "echo kept > /srv/data/mine"]\n`);
  try {
    // A failure at every step, before the volume is made or after (its mount, the exec): nothing of it is left.
    const plan = JSON.parse(sandbox(['plan', '--json', cfg], { env }).out) as { steps: { id: string }[] };
    const failures: string[] = [];
    for (const { id } of plan.steps) {
      const r = sandbox(['up', '-q', cfg], { env: { ...env, SANDBOX_TEST_FAIL_AT: id } });
      if (r.code !== 125 && r.code !== 126) failures.push(`${id}: exit ${r.code} ${r.err}`);
      const left = [...(existsSync(vols) ? readdirSync(vols) : []), ...leftovers('volfail')];
      if (left.length) failures.push(`${id}: left ${left.join(', ')}`);
    }
    assert.deepEqual(failures, []);
    assert.ok(plan.steps.length > 60);
    // The mount applied wrongly (writable where the plan says read-only, and the reverse): the attestation stops the run, and the new volume goes.
    const corrupt = sandbox(['up', '-q', cfg], { env: { ...env, SANDBOX_TEST_CORRUPT: 'mount:/srv/data' } });
    assert.equal(corrupt.code, 125, corrupt.err);
    assert.match(corrupt.err, /mount:\/srv\/data .*the attestation found it not applied/);
    assert.deepEqual(existsSync(vols) ? readdirSync(vols) : [], []);
    // Made by a run that worked, it stays when a later run fails.
    assert.equal(sandbox(['up', '-q', cfg], { env }).code, 0);
    const r = sandbox(['up', '-q', cfg], { env: { ...env, SANDBOX_TEST_FAIL_AT: 'mount:/srv/data' } });
    assert.equal(r.code, 125);
    assert.equal(readFileSync(join(vols, 'vfail', '_data', 'mine'), 'utf8'), 'kept\n');
    assert.equal(readFileSync(join(vols, 'vfail', '_data', 'seed.txt'), 'utf8'), 'seed\n');
    // An external volume that does not exist is refused before anything is made, at its line.
    const ext = join(dir, 'ext.yml');
    writeFileSync(ext, `version: 1\nname: volfail\nimage: oci:${layout}:v1\nnetwork: none\nvolumes: [nothere:/x]\nnamed_volumes:\n  nothere: {external: true}\ncommand: [/bin/true]\n`);
    const e = sandbox(['up', '-q', ext], { env });
    assert.equal(e.code, 2, e.err);
    assert.match(e.err, /ext\.yml:5:\d+: error: the external volume nothere does not exist/);
    assert.ok(!existsSync(join(vols, 'nothere')));
    assert.deepEqual(leftovers('volfail'), []);
  } finally {
    for (const p of [store, dir, layout]) rmSync(p, { recursive: true, force: true });
  }
});

after(() => removeAllUsers());

test('rootless: a user\'s volume is seeded with the image\'s owners through its subordinate ranges, written by uid 1000 inside, removed by volume rm', { timeout: 300_000 }, async (t) => {
  if (!needs(t, 'root, to make users (useradd)', canMakeUsers) || !needs(t, 'newuidmap/newgidmap (uidmap)', hasUidmap) || !ready(t)) return;
  const u = makeUser('sbxvol');
  const layout = image();
  // Every user reads the layout (writeLayout makes it 0700).
  execFileSync('chmod', ['-R', 'a+rX', layout]);
  chmodSync(layout, 0o755);
  let fs: { dir: string; undo(): void } | undefined;
  let store = userTmp(u);
  // A rootless store needs user xattrs (overlayfs reads the layers' with userxattr): ext4 of its own where the scratch file system has none.
  if (!holdsUserXattrs(store) && hasMkfsExt4) { fs = ext4For(u, join(store, 'fs')); store = fs.dir; }
  const cfgDir = userTmp(u);
  const cfg = join(cfgDir, 'rl.yml');
  writeFileSync(cfg, `version: 1\nname: volrl\nimage: oci:${layout}:v1\nnetwork: none\nuser: "1000:1000"\nvolumes:\n  - vdata:/srv/data\n  - vempty:/srv/empty:nocopy\ncommand: [/bin/sh, -c, "stat -c '%u:%g %a %n' /srv/data /srv/data/seed.txt /srv/empty; echo mine > /srv/data/new; echo e > /srv/empty/f"]\n`);
  chmodSync(cfg, 0o644);
  const env = { SANDBOX_STORE: store };
  try {
    const { uid: su, gid: sg } = subRanges(u);
    const r = sandboxAs(u, ['up', '-q', cfg], { env });
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(r.out.trim().split('\n'), ['1000:1000 750 /srv/data', '1000:1000 640 /srv/data/seed.txt', '1000:1000 755 /srv/empty']);
    // On disk: uid 1000 inside is the user's subordinate id start + 999.
    const data = join(store, 'volumes', 'vdata', '_data');
    const host = (p: string) => { const st = lstatSync(p); return [st.uid, st.gid]; };
    assert.deepEqual(host(data), [su!.start + 999, sg!.start + 999]);
    assert.deepEqual(host(join(data, 'seed.txt')), [su!.start + 999, sg!.start + 999]);
    assert.deepEqual(host(join(data, 'new')), [su!.start + 999, sg!.start + 999], 'written from inside by uid 1000');
    assert.equal(xattr(join(data, 'seed.txt'), 'user.origin'), 'image');
    assert.deepEqual(host(join(store, 'volumes', 'vempty', '_data')), [su!.start + 999, sg!.start + 999], 'nocopy: owned by the sandbox\'s user');
    assert.deepEqual(host(join(store, 'volumes', 'vdata')), [u.uid, u.gid], 'the volume\'s folder is the user\'s');
    // Files of its subordinate ids, which the user cannot unlink itself, go with volume rm.
    const rm = sandboxAs(u, ['volume', 'rm', 'vdata', 'vempty'], { env });
    assert.equal(rm.code, 0, rm.err);
    assert.deepEqual(readdirSync(join(store, 'volumes')).filter((n) => !n.startsWith('volrl-anon-')), []);
    assert.equal(sandboxAs(u, ['volume', 'prune'], { env }).code, 0);
    assert.deepEqual(readdirSync(join(store, 'volumes')), [], 'prune removed the anonymous volume no sandbox uses');
  } finally {
    fs?.undo();
    rmSync(layout, { recursive: true, force: true });
  }
});

test('samples/jenkins.yml runs from a fresh folder: its home is a named volume owned as the image has it (uid 1000), kept by down, removed by down -v', { timeout: 300_000 }, async (t) => {
  if (!ready(t)) return;
  // A stand-in for jenkins/jenkins:lts (no registry here): busybox with /var/jenkins_home of uid 1000, as the real image has it.
  const home = tar([{ name: 'var/', type: '5' }, { name: 'var/jenkins_home/', type: '5', uid: 1000, gid: 1000, mode: 0o755 }, { name: 'var/jenkins_home/.seeded', body: 'from the image\n', uid: 1000, gid: 1000 }]);
  const layout = writeLayout(buildImage([tar(busyboxEntries()), home], { Entrypoint: ['/bin/sh', '-c', 'id -u > /var/jenkins_home/who; exec sleep 1000'], Env: ['PATH=/bin:/sbin'], Volumes: { '/var/jenkins_home': {} } }), 'lts');
  const store = tmp('sbx-store-');
  const dir = tmp('sbx-fresh-');
  const file = join(dir, 'jenkins.yml');
  writeFileSync(file, readFileSync(join(__dirname, '../../../samples/jenkins.yml')));
  const env = { SANDBOX_STORE: store, JENKINS_IMAGE: `oci:${layout}:lts` };
  try {
    const up = sandbox(['up', '-d', '-q', file], { env });
    assert.equal(up.code, 0, up.err);
    const data = join(store, 'volumes', 'jenkins_home', '_data');
    for (let i = 0; i < 100 && !existsSync(join(data, 'who')); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(readFileSync(join(data, 'who'), 'utf8'), '1000\n', 'jenkins (uid 1000) wrote its home');
    assert.equal(lstatSync(data).uid, 1000);
    assert.equal(readFileSync(join(data, '.seeded'), 'utf8'), 'from the image\n');
    assert.deepEqual(readdirSync(dir), ['jenkins.yml'], 'nothing is made beside the file');
    assert.equal(readdirSync(join(store, 'volumes')).filter((n) => n.includes('-anon-')).length, 0, 'the VOLUME the file mounts is not an anonymous one too');
    assert.equal(sandbox(['down', file], { env }).code, 0);
    assert.ok(existsSync(join(data, 'who')));
    assert.equal(sandbox(['up', '-d', '-q', file], { env }).code, 0);
    assert.equal(sandbox(['down', '-v', file], { env }).code, 0);
    assert.ok(!existsSync(join(store, 'volumes', 'jenkins_home')));
    assert.deepEqual(leftovers('jenkins'), []);
  } finally {
    sandbox(['down', 'jenkins'], { env });
    for (const p of [store, dir, layout]) rmSync(p, { recursive: true, force: true });
  }
});

test('the CLI killed with -9 while it seeds a volume: no volume is left marked made; gc removes the half copy, and the next up seeds afresh', { timeout: 300_000 }, async (t) => {
  if (!ready(t)) return;
  const { spawn } = await import('node:child_process');
  const { BIN } = await import('../helpers/sandbox');
  // Enough files that the copy takes a while (seconds on this machine's ext4).
  const many = [{ name: 'big/', type: '5' as const }, ...Array.from({ length: 3000 }, (_, i) => ({ name: `big/f${i}`, body: `file ${i}\n` }))];
  const layout = writeLayout(buildImage([tar(busyboxEntries()), tar(many)], { Cmd: ['/bin/true'], Env: ['PATH=/bin:/sbin'] }), 'v1');
  const store = tmp('sbx-store-');
  const dir = tmp('sbx-cfg-');
  const env = { SANDBOX_STORE: store };
  const vols = join(store, 'volumes');
  const cfg = join(dir, 'kill.yml');
  writeFileSync(cfg, `version: 1\nname: volkill\nimage: oci:${layout}:v1\nnetwork: none\nvolumes: [vbig:/big]\ncommand: [/bin/sh, -c, "ls /big | wc -l"]\n`);
  try {
    assert.equal(sandbox(['pull', '-q', `oci:${layout}:v1`], { env }).code, 0);
    const cli = spawn(process.execPath, [BIN, 'up', '-q', cfg], { env: { ...process.env, ...env }, stdio: 'ignore' });
    const half = () => (existsSync(vols) ? readdirSync(vols).filter((n) => n.startsWith('.new-vbig-')) : []);
    for (let i = 0; i < 400 && !half().length; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(half().length, 1, 'the copy began');
    cli.kill('SIGKILL');
    await new Promise((r) => cli.on('exit', r));
    // The copying helper is another process: it ends by itself; wait for it before looking.
    const copying = () => readdirSync('/proc').filter((p) => /^\d+$/.test(p)).some((p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('.new-vbig-'); } catch { return false; } });
    for (let i = 0; i < 600 && copying(); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(!existsSync(join(vols, 'vbig')), 'no volume is marked made');
    assert.deepEqual(JSON.parse(sandbox(['volume', 'ls', '--json'], { env }).out), []);
    const gc = sandbox(['gc'], { env });
    assert.match(gc.out, /removed unfinished volume vbig/);
    assert.deepEqual(readdirSync(vols), []);
    assert.deepEqual(leftovers('volkill'), []);
    const r = sandbox(['up', '-q', cfg], { env });
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.trim(), '3000');
  } finally {
    for (const p of [store, dir, layout]) rmSync(p, { recursive: true, force: true });
  }
});
