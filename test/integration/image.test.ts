// OCI images, offline: layers written by hand (malicious ones included) are unpacked safely;
// images built from the busybox root are served by Debian's docker-registry on 127.0.0.1, pulled
// (re-pulled from the store, refused when a blob was tampered with, left with no trusted half
// after a pull is killed), and run on overlayfs — checked from inside the sandbox.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, hasBusyboxRoot, hasEngine, isRoot, leftovers, needs, sandbox } from '../helpers/sandbox';
import { buildImage, busyboxEntries, dockerArchive, hasOpenssl, hasRegistry, maliciousLayers, push, pushIndex, sha256, startRegistry, tar, tokenFront, writeLayout, type Entry } from '../helpers/image';
import { ROOT } from '../helpers/load';
import { unpackLayer, UnpackError } from '../../src/image/unpack';
import { loadLibSbx } from '../../src/ffi/libsbx';

process.env.SANDBOX_LIBSBX ??= join(ROOT, 'native/build/libsbx.so');
const ready = (t: import('node:test').TestContext) => needs(t, 'root', isRoot) && needs(t, 'the native engine', hasEngine) && needs(t, 'the busybox root (npm install)', hasBusyboxRoot);
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

/** Unpacks entries as one gzip layer into a fresh folder beside a sentinel folder that must stay empty. */
async function unpack(entries: Entry[]) {
  const base = tmp('sbx-unpack-');
  const outside = join(base, 'outside');
  mkdirSync(outside);
  const blob = join(base, 'layer.tar');
  writeFileSync(blob, tar(entries));
  const dest = join(base, 'layers', 'x');
  mkdirSync(join(base, 'layers'));
  let error: Error | undefined;
  try { await unpackLayer(blob, dest, undefined, loadLibSbx()); } catch (e) { error = e as Error; }
  return { base, outside, dest, error, left: readdirSync(join(base, 'layers')) };
}

test('malicious layers write nothing outside their folder, and nothing at all', async (t) => {
  if (!ready(t)) return;
  const cases = maliciousLayers('/tmp/evil');
  writeFileSync(join(tmpdir(), 'sbx-sentinel'), 'unchanged');
  for (const [what, entries, why] of cases) {
    const r = await unpack(entries);
    assert.ok(r.error instanceof UnpackError, `${what}: ${r.error?.message ?? 'accepted'}`);
    assert.match(r.error.message, why, what);
    assert.deepEqual(readdirSync(r.outside), [], `${what}: something was written outside`);
    assert.deepEqual(r.left, [], `${what}: a half-unpacked folder was left`);
    rmSync(r.base, { recursive: true, force: true });
  }
  assert.equal(existsSync('/etc/evil-from-layer'), false);
  assert.equal(readFileSync('/etc/passwd', 'utf8').includes('evil'), false);
});

test('a layer unpacks modes, owners, links, whiteouts and opaque folders; gzip and zstd; its diff ID is checked', async (t) => {
  if (!ready(t)) return;
  const entries: Entry[] = [
    { name: 'bin/', type: '5', mode: 0o755 },
    { name: 'bin/tool', body: '#!/bin/sh\n', mode: 0o4755, uid: 0, gid: 0 },
    { name: 'home/', type: '5' },
    { name: 'home/user/', type: '5', mode: 0o700, uid: 1000, gid: 1000 },
    { name: 'home/user/file', body: 'data', mode: 0o600, uid: 1000, gid: 1000 },
    { name: 'bin/alias', type: '2', linkname: 'tool' },
    { name: 'bin/same', type: '1', linkname: 'bin/tool' },
    { name: 'gone/', type: '5' },
    { name: '.wh.removed', body: '' },
    { name: 'gone/.wh..wh..opq', body: '' },
    { name: 'dev/', type: '5' },
    { name: 'dev/null', type: '3' },
    { name: 'tagged', body: 'x', pax: { 'SCHILY.xattr.user.origin': 'layer' } },
    { name: 'replaced', body: 'first' },
    { name: 'replaced', body: 'second' },
  ];
  const layer = tar(entries);
  const base = tmp('sbx-good-');
  const zstdOk = spawnSync('zstd', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!needs(t, 'zstd (apt-get install zstd)', zstdOk)) return;
  writeFileSync(join(base, 'l.tar'), layer);
  spawnSync('zstd', ['-q', '-f', join(base, 'l.tar'), '-o', join(base, 'l.tar.zst')]);
  writeFileSync(join(base, 'l.tar.gz'), require('node:zlib').gzipSync(layer));
  for (const blob of ['l.tar.gz', 'l.tar.zst', 'l.tar']) {
    const dest = join(base, `out-${blob}`);
    const r = await unpackLayer(join(base, blob), dest, sha256(layer), loadLibSbx());
    assert.equal(r.diffId, sha256(layer));
    assert.deepEqual(r.skipped, ['dev/null']);
    const st = statSync(join(dest, 'bin/tool'));
    assert.equal(st.mode & 0o7777, 0o4755, 'set-uid bit kept (after chown)');
    const home = statSync(join(dest, 'home/user/file'));
    assert.deepEqual([home.uid, home.gid, home.mode & 0o777], [1000, 1000, 0o600]);
    assert.equal(statSync(join(dest, 'home/user')).mode & 0o777, 0o700);
    assert.equal(lstatSync(join(dest, 'bin/alias')).isSymbolicLink(), true);
    assert.equal(statSync(join(dest, 'bin/same')).ino, st.ino, 'hard link shares the inode');
    const wh = lstatSync(join(dest, 'removed'));
    assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'whiteout is a 0/0 character device');
    assert.equal(spawnSync('python3', ['-c', 'import os, sys; print(os.getxattr(sys.argv[1], "trusted.overlay.opaque").decode(), end="")', join(dest, 'gone')], { encoding: 'utf8' }).stdout, 'y');
    assert.equal(readFileSync(join(dest, 'replaced'), 'utf8'), 'second');
    // Extended attributes from pax records, where the file system takes them (user.* here;
    // tmpfs takes them only from Linux 6.6, and there the attribute is left out, not an error).
    const xattrs = spawnSync('python3', ['-c', 'import os, sys; os.setxattr(sys.argv[1], "user.probe", b"1")', join(dest, 'replaced')]).status === 0;
    assert.equal(spawnSync('python3', ['-c', 'import os, sys; print(os.getxattr(sys.argv[1], "user.origin").decode(), end="")', join(dest, 'tagged')], { encoding: 'utf8' }).stdout, xattrs ? 'layer' : '');
    assert.equal(statSync(join(dest, 'bin/tool')).mtimeMs, 1_700_000_000_000);
  }
  // A layer whose content is not what the image's config names is refused, and not kept.
  const dest = join(base, 'tampered');
  await assert.rejects(unpackLayer(join(base, 'l.tar.gz'), dest, sha256(Buffer.from('other')), loadLibSbx()), /was changed or corrupted/);
  assert.equal(existsSync(dest), false);
  assert.deepEqual(readdirSync(base).filter((n) => n.includes('.tmp-')), []);
});

/** An image from the busybox root, with a second layer that deletes a file and adds one. */
function busyboxImage() {
  const base = tar(busyboxEntries());
  const top = tar([{ name: 'etc/', type: '5' }, { name: 'etc/motd', body: 'from the second layer\n' }, { name: 'bin/.wh.vi', body: '' }, { name: 'home/', type: '5' }, { name: 'home/app/', type: '5', uid: 1000, gid: 1000 }]);
  return buildImage([base, top], { Cmd: ['/bin/sh'], Env: ['PATH=/bin:/sbin', 'FROM_IMAGE=yes'], WorkingDir: '/home/app', ExposedPorts: { '8080/tcp': {} } });
}

test('pull from a local registry, run on overlayfs, re-pull from the store; tampered blobs and killed pulls leave nothing trusted', { timeout: 300_000 }, async (t) => {
  if (!ready(t) || !needs(t, 'docker-registry (apt-get install docker-registry)', hasRegistry)) return;
  const reg = await startRegistry();
  t.after(() => reg.stop());
  const store = tmp('sbx-store-');
  const env = { SANDBOX_STORE: store };
  const img = busyboxImage();
  const digest = await push(reg.host, 'test/busybox', '1', img);
  const ref = `${reg.host}/test/busybox:1`;

  // A registry on loopback is reached over plain HTTP without being named anywhere, as Docker
  // does: the plan says so, and up pulls the image and runs it.
  const dir = tmp('sbx-cfg-');
  const cfg = join(dir, 'img.yml');
  writeFileSync(cfg, `version: 1\nname: imgtest\nimage: ${ref}\nnetwork: none\ncommand: [/bin/sh, -c, 'cat /proc/1/cmdline | tr "\\\\0" " "; echo; echo $$FROM_IMAGE; pwd; cat /etc/motd; ls /bin/vi 2>&1; grep " / " /proc/self/mountinfo; echo written > /newfile; ls /proc/self/ns >/dev/null']\n`);
  const firstStore = tmp('sbx-store-');
  assert.match(sandbox(['plan', cfg], { env: { SANDBOX_STORE: firstStore } }).out, new RegExp(`pulled by up if the store has not got it, over plain HTTP: its registry ${reg.host.replace(/\./g, '\\.')} is on this host's loopback`));
  const first = sandbox(['up', '-q', cfg], { env: { SANDBOX_STORE: firstStore } });
  assert.equal(first.code, 0, first.err);
  assert.equal(first.out.split('\n')[3], 'from the second layer');
  assert.deepEqual(leftovers('imgtest'), []);
  rmSync(firstStore, { recursive: true, force: true });
  const p = sandbox(['pull', ref], { env });
  assert.equal(p.code, 0, p.err);
  assert.equal(p.out, `${digest}\n`);
  // Without a terminal: a line when the pull starts, one per layer (written once), one at the end.
  const layerLines = p.err.split('\n').filter((l) => /^ {3}[0-9a-f]{12} {2}/.test(l));
  assert.equal(layerLines.length, 2, p.err);
  assert.equal(new Set(layerLines.map((l) => l.slice(3, 15))).size, 2, p.err);
  assert.match(p.err, /^pull \S+\n(?: {3}[0-9a-f]{12} {2}[0-9.]+ MB in [0-9.]+ s, unpacked\n){2}pull \S+ {2}2 layers {2}[0-9.]+ s\n$/, p.err);
  for (const d of img.blobs.keys()) assert.ok(existsSync(join(store, 'blobs/sha256', d.slice(7))), `blob ${d}`);
  const images = JSON.parse(sandbox(['images', '--json'], { env }).out) as { reference: string; manifest: string }[];
  assert.deepEqual(images.map((i) => [i.reference, i.manifest]), [[ref, digest]]);

  // Run it: PID 1 is the image's /bin/sh; the root is an overlay; the image's env, workdir and
  // second layer (a file added, one whited out) are seen from inside.
  const plan = sandbox(['plan', cfg], { env });
  assert.match(plan.out, /use the image .* \(sha256:[0-9a-f]{64}, 2 layers, in the store\)/);
  assert.match(plan.out, /the image exposes 8080\/tcp \(not published/);
  assert.match(plan.out, /run \/bin\/sh -c .* in \/home\/app .*← test|in \/home\/app/);
  const run = sandbox(['up', '-q', cfg], { env });
  assert.equal(run.code, 0, run.err);
  const lines = run.out.split('\n');
  assert.match(lines[0]!, /^\/bin\/sh -c /);
  assert.equal(lines[1], 'yes');
  assert.equal(lines[2], '/home/app');
  assert.equal(lines[3], 'from the second layer');
  assert.match(lines[4]!, /No such file or directory/);
  assert.match(lines[5]!, / - overlay overlay /);
  assert.deepEqual(leftovers('imgtest'), []);
  assert.equal(existsSync(join(store, 'containers', 'imgtest')), false, 'the upper layer outlived the run');

  // Re-pull: nothing is downloaded again.
  const again = sandbox(['up', '-q', cfg], { env });
  assert.equal(again.code, 0, again.err);
  assert.doesNotMatch(again.err, /pull/);

  // Tampered with at the source: the registry's copy of the top layer changes; a fresh store refuses it.
  const topLayer = [...img.blobs.keys()].find((d) => d !== sha256(img.config) && img.blobs.get(d)!.length < 10_000)!;
  const onDisk = join(reg.storage, 'docker/registry/v2/blobs/sha256', topLayer.slice(7, 9), topLayer.slice(7), 'data');
  const bytes = readFileSync(onDisk);
  bytes[bytes.length - 20] ^= 0xff;
  writeFileSync(onDisk, bytes);
  const fresh = tmp('sbx-store-');
  const bad = sandbox(['pull', '--insecure-registry', reg.host, ref], { env: { SANDBOX_STORE: fresh } });
  assert.equal(bad.code, 1);
  assert.match(bad.err, new RegExp(`the blob served as ${topLayer} is sha256:[0-9a-f]{64}.*nothing was kept`));
  assert.equal(existsSync(join(fresh, 'blobs/sha256', topLayer.slice(7))), false);
  assert.equal(JSON.parse(sandbox(['images', '--json'], { env: { SANDBOX_STORE: fresh } }).out).length, 0);
  // A sandbox asking for it changes nothing on the host.
  const refused = sandbox(['up', '-q', cfg], { env: { SANDBOX_STORE: fresh } });
  assert.equal(refused.code, 125);
  assert.match(refused.err, /the image .* cannot be fetched: .*nothing was set up/);
  assert.deepEqual(leftovers('imgtest'), []);
  writeFileSync(onDisk, readFileSync(onDisk).map((b, i, a) => (i === a.length - 20 ? b ^ 0xff : b)));

  // Killed in the middle of a pull (a big layer, served slowly enough to catch): nothing trusted is left.
  const big = buildImage([tar([{ name: 'big', body: require('node:crypto').randomBytes(64 << 20) }])], { Cmd: ['/big'] }, (b) => b);
  await push(reg.host, 'test/big', '1', big);
  const killed = tmp('sbx-store-');
  const puller = spawn(process.execPath, [BIN, 'pull', '-q', '--insecure-registry', reg.host, `${reg.host}/test/big:1`], { env: { ...process.env, SANDBOX_STORE: killed }, stdio: 'ignore' });
  const bigLayer = [...big.blobs.keys()].find((d) => big.blobs.get(d)!.length > 1e6)!;
  for (let i = 0; i < 400 && !(existsSync(join(killed, 'blobs')) && readdirSync(join(killed, 'blobs')).some((n) => n.startsWith('.tmp-') && n.includes(bigLayer.slice(7)))); i++) await new Promise((r) => setTimeout(r, 5));
  puller.kill('SIGKILL');
  await new Promise((r) => puller.on('exit', r));
  assert.equal(existsSync(join(killed, 'blobs/sha256', bigLayer.slice(7))), false, 'a half-downloaded blob is in the store under its digest');
  assert.equal(existsSync(join(killed, 'layers', big.diffIds[0]!.slice(7))), false);
  const resumed = sandbox(['pull', '-q', '--insecure-registry', reg.host, `${reg.host}/test/big:1`], { env: { SANDBOX_STORE: killed } });
  assert.equal(resumed.code, 0, resumed.err);
  assert.match(sandbox(['image', 'prune'], { env: { SANDBOX_STORE: killed } }).out, /nothing to remove|removed partial download/);
  assert.equal(readdirSync(join(killed, 'blobs')).filter((n) => n.startsWith('.tmp-')).length, 0);

  // Two pulls of one image at once both succeed and keep one copy.
  const twice = tmp('sbx-store-');
  const both = await Promise.all([0, 1].map(() => new Promise<number | null>((resolve) => spawn(process.execPath, [BIN, 'pull', '-q', '--insecure-registry', reg.host, ref], { env: { ...process.env, SANDBOX_STORE: twice }, stdio: 'ignore' }).on('exit', resolve))));
  assert.deepEqual(both, [0, 0]);
  assert.equal(readdirSync(join(twice, 'blobs/sha256')).length, img.blobs.size + 1);
  assert.equal(readdirSync(join(twice, 'layers')).length, 2);

  // rmi and prune: the store ends empty.
  assert.equal(sandbox(['rmi', ref], { env: { SANDBOX_STORE: twice } }).code, 0);
  assert.match(sandbox(['image', 'prune'], { env: { SANDBOX_STORE: twice } }).out, /freed/);
  assert.deepEqual(readdirSync(join(twice, 'blobs/sha256')), []);
  assert.deepEqual(readdirSync(join(twice, 'layers')), []);
  for (const s of [store, fresh, killed, twice]) rmSync(s, { recursive: true, force: true });
});

test('an OCI image layout folder is a source too; read_only drops the upper layer, and an init layer holds the mount points the image lacks', async (t) => {
  if (!ready(t)) return;
  const layout = writeLayout(busyboxImage(), 'v1');
  const store = tmp('sbx-store-');
  const dir = tmp('sbx-cfg-');
  const cfg = join(dir, 'ro.yml');
  writeFileSync(cfg, `version: 1\nname: imgro\nimage: oci:${layout}:v1\nnetwork: none\nsecurity: {read_only: true}\ncommand: [/bin/sh, -c, 'touch /x 2>&1; grep " / " /proc/self/mountinfo']\n`);
  const r = sandbox(['up', '-q', cfg], { env: { SANDBOX_STORE: store } });
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /Read-only file system/);
  assert.match(r.out, / ro,.* - overlay overlay .*lowerdir=/);
  assert.doesNotMatch(r.out, /upperdir=/);
  assert.deepEqual(leftovers('imgro'), []);
  // With a private network and a volume, as `sandbox run --read-only` gives: the image has no
  // /etc/resolv.conf and no /data, and a read-only root cannot make them; the init layer holds
  // them (Docker's init layer), so the binds land and the root stays read-only.
  const vol = tmp('sbx-vol-');
  writeFileSync(cfg, `version: 1\nname: imgro\nimage: oci:${layout}:v1\nsecurity: {read_only: true}\nvolumes: ["${vol}:/data/out"]\ncommand: [/bin/sh, -c, 'grep -c nameserver /etc/resolv.conf; grep -c localhost /etc/hosts; echo made > /data/out/f; touch /etc/x 2>&1; grep " / " /proc/self/mountinfo']\n`);
  const p = sandbox(['up', '-q', cfg], { env: { SANDBOX_STORE: store } });
  assert.equal(p.code, 0, p.err);
  assert.match(p.out, /^[1-9]\d*\n[1-9]\d*\n/, 'the sandbox\'s own resolv.conf and hosts are bound');
  assert.equal(readFileSync(join(vol, 'f'), 'utf8'), 'made\n');
  assert.match(p.out, /Read-only file system/);
  assert.match(p.out, / ro,.* - overlay overlay .*lowerdir=[^,]*\/init:/, 'the init layer is the top lower layer');
  assert.doesNotMatch(p.out, /upperdir=/);
  assert.deepEqual(leftovers('imgro'), []);
  rmSync(vol, { recursive: true, force: true });
  rmSync(store, { recursive: true, force: true });
});

test('oci:DIR and oci:DIR:latest (its one image\'s tag), relative or absolute, are one image in the store, as busybox and busybox:latest are', (t) => {
  if (!ready(t) || !needs(t, 'the busybox OCI layout (npm run build)', existsSync(join(ROOT, 'samples/images/busybox/index.json')))) return;
  const store = tmp('sbx-store-');
  const env = { SANDBOX_STORE: store };
  const abs = join(ROOT, 'samples/images/busybox');
  // A pull of the untagged, relative name, then runs of the tagged and absolute ones (sandbox() runs in ROOT).
  assert.equal(sandbox(['pull', '-q', 'oci:samples/images/busybox'], { env }).code, 0);
  for (const ref of ['oci:samples/images/busybox:latest', `oci:${abs}`, `oci:${abs}/:latest`]) {
    const r = sandbox(['run', '--rm', '-q', '--network', 'none', ref, 'true'], { env });
    assert.equal(r.code, 0, `${ref}: ${r.err}`);
  }
  const images = JSON.parse(sandbox(['images', '--json'], { env }).out) as { reference: string }[];
  assert.deepEqual(images.map((i) => i.reference), [`oci:${abs}:latest`]);
  assert.match(sandbox(['images'], { env }).out, new RegExp(`^oci:${abs}:latest +sha256:`, 'm'));
  // Removed by either name.
  const rmi = sandbox(['rmi', 'oci:samples/images/busybox'], { env });
  assert.equal(rmi.code, 0, rmi.err);
  assert.deepEqual(JSON.parse(sandbox(['images', '--json'], { env }).out), []);
  rmSync(store, { recursive: true, force: true });
});

test('a registry on loopback that speaks only HTTPS: said once, in words, by pull, and by up before any pull at its line', { timeout: 60_000 }, async (t) => {
  if (!needs(t, 'docker-registry (apt-get install docker-registry)', hasRegistry) || !needs(t, 'openssl', hasOpenssl)) return;
  const reg = await startRegistry({ tls: true });
  t.after(() => reg.stop());
  const store = tmp('sbx-store-');
  const host = reg.host.replace(/\./g, '\\.');
  const said = new RegExp(`cannot reach http://${host}: it answers only in HTTPS, and a registry on loopback is reached over plain HTTP; serve it over plain HTTP on loopback`);
  const p = sandbox(['pull', `${reg.host}/test/app:1`], { env: { SANDBOX_STORE: store } });
  assert.equal(p.code, 1, p.err);
  assert.match(p.err, said);
  assert.equal((p.err.match(/cannot/g) ?? []).length, 2, `said once: ${p.err}`);
  assert.doesNotMatch(p.err, /ERR_|HTTP 400|\n\s+at /);
  const dir = tmp('sbx-cfg-');
  writeFileSync(join(dir, 'tls.yml'), `version: 1\nname: tlsreg\nimage: ${reg.host}/test/app:1\nnetwork: none\n`);
  const up = sandbox(['up', '--dry-run', join(dir, 'tls.yml')], { env: { SANDBOX_STORE: store } });
  assert.equal(up.code, 125, up.err);
  assert.match(up.err, new RegExp(`tls\\.yml:3:8: error: the image ${host}/test/app:1 cannot be pulled: ${said.source}`));
  assert.match(up.err, /^1 error; nothing was run$/m);
  rmSync(store, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

/** The registry's storage served over HTTPS from a network namespace this test makes (198.18.77.2,
 * a benchmarking address, behind a veth pair): a registry that is not on loopback, so reached over
 * TLS, its certificate made here by openssl (trusted only through NODE_EXTRA_CA_CERTS). */
async function tlsRegistryInNetns(storage: string): Promise<{ host: string; cert: string; stop(): Promise<void> }> {
  const ns = `sbx-tls-${process.pid}`, hostIf = `sbxtls${process.pid % 100000}`, dir = tmp('sbx-tlsreg-');
  const ip = (...a: string[]) => execFileSync('ip', a, { stdio: 'pipe' });
  ip('netns', 'add', ns);
  const stopNs = () => { try { ip('netns', 'del', ns); } catch { /* gone */ } try { ip('link', 'del', hostIf); } catch { /* went with the namespace */ } };
  try {
    ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('addr', 'add', '198.18.77.1/30', 'dev', hostIf);
    ip('link', 'set', hostIf, 'up');
    ip('-n', ns, 'addr', 'add', '198.18.77.2/30', 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', cert, '-days', '1', '-subj', '/CN=198.18.77.2', '-addext', 'subjectAltName=IP:198.18.77.2'], { stdio: 'ignore' });
    writeFileSync(join(dir, 'config.yml'), `version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: ${storage}}}\nhttp: {addr: 198.18.77.2:5443, tls: {certificate: ${cert}, key: ${dir}/key.pem}}\n`);
    const p: ChildProcess = spawn('ip', ['netns', 'exec', ns, 'docker-registry', 'serve', join(dir, 'config.yml')], { stdio: 'ignore' });
    // Up when its port takes a connection (bounded: 5 s).
    for (let i = 0; i < 200 && spawnSync('ip', ['netns', 'exec', ns, 'sh', '-c', 'cat /proc/net/tcp | grep -q " 024D12C6:1543 .* 0A "']).status !== 0; i++) await new Promise((r) => setTimeout(r, 25));
    return {
      host: '198.18.77.2:5443', cert,
      stop: async () => { const gone = new Promise((r) => p.on('exit', r)); p.kill('SIGTERM'); await gone; stopNs(); rmSync(dir, { recursive: true, force: true }); },
    };
  } catch (e) { stopNs(); throw e; }
}

test('a registry over TLS behind a private CA: bin/sandbox starts Node without NODE_EXTRA_CA_CERTS, and a run that must pull restarts itself with it before it shows anything', { timeout: 120_000 }, async (t) => {
  if (!ready(t) || !needs(t, 'docker-registry (apt-get install docker-registry)', hasRegistry) || !needs(t, 'openssl', hasOpenssl)) return;
  const launcher = join(ROOT, 'bin/sandbox');
  if (!needs(t, 'bin/sandbox (native/build/sbx-cli)', existsSync(launcher))) return;
  // The image pushed over plain HTTP on loopback, then that storage served over TLS.
  const plain = await startRegistry();
  await push(plain.host, 'test/busybox', '1', busyboxImage());
  await plain.stop();
  const reg = await tlsRegistryInNetns(plain.storage);
  t.after(() => reg.stop());
  const dir = tmp('sbx-cfg-');
  // Loaded by each Node start, before the bundle: says whether Node started with the CA file.
  writeFileSync(join(dir, 'probe.js'), "require('fs').writeSync(2, `node started, CA=${process.env.NODE_EXTRA_CA_CERTS ?? 'unset'}\\n`);\n");
  writeFileSync(join(dir, 'tls.yml'), `version: 1\nname: tlsca\nimage: ${reg.host}/test/busybox:1\nnetwork: none\ncommand: [cat, /etc/motd]\n`);
  const store = tmp('sbx-store-');
  const run = (env: Record<string, string | undefined>) => {
    const r = spawnSync(launcher, ['up', '-q', join(dir, 'tls.yml')], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, SANDBOX_STORE: store, NODE_OPTIONS: `--require=${join(dir, 'probe.js')}`, ...env } });
    return { code: r.status, out: r.stdout, err: r.stderr, starts: r.stderr.match(/^node started, CA=.*$/gm) ?? [] };
  };
  const { NODE_EXTRA_CA_CERTS: _, ...withoutCa } = process.env;
  const untrusted = spawnSync(launcher, ['up', '-q', join(dir, 'tls.yml')], { encoding: 'utf8', timeout: 60_000, env: { ...withoutCa, SANDBOX_STORE: store } });
  assert.equal(untrusted.status, 125, untrusted.stderr);
  assert.match(untrusted.stderr, /tls\.yml:3:8: error: .*its TLS certificate is not trusted .*NODE_EXTRA_CA_CERTS=/);

  const first = run({ NODE_EXTRA_CA_CERTS: reg.cert });
  assert.equal(first.code, 0, first.err);
  assert.equal(first.out, 'from the second layer\n', `pulled over TLS and run: ${first.err}`);
  assert.deepEqual(first.starts, ['node started, CA=unset', `node started, CA=${reg.cert}`], 'started without the CA file, restarted once with it to pull');
  const again = run({ NODE_EXTRA_CA_CERTS: reg.cert });
  assert.equal(again.code, 0, again.err);
  assert.deepEqual(again.starts, ['node started, CA=unset'], 'the image in the store: no TLS, one start without the CA file');
  assert.deepEqual(leftovers('tlsca'), []);
  rmSync(store, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

test('a docker save archive is a source; a multi-arch index picks linux/amd64; a registry that wants a token gets an anonymous one', { timeout: 120_000 }, async (t) => {
  if (!ready(t) || !needs(t, 'docker-registry (apt-get install docker-registry)', hasRegistry)) return;
  const store = tmp('sbx-store-');
  const env = { SANDBOX_STORE: store };
  const base = tar(busyboxEntries());
  const archive = dockerArchive([base, tar([{ name: 'etc/', type: '5' }, { name: 'etc/motd', body: 'from an archive\n' }])], { Cmd: ['/bin/sh'], Env: ['PATH=/bin'] }, 'test/archived:1');
  const dir = tmp('sbx-cfg-');
  writeFileSync(join(dir, 'a.yml'), `version: 1\nname: archived\nimage: docker-archive:${archive}:test/archived:1\nnetwork: none\ncommand: [cat, /etc/motd]\n`);
  const a = sandbox(['up', '-q', join(dir, 'a.yml')], { env });
  assert.equal(a.code, 0, a.err);
  assert.equal(a.out, 'from an archive\n');
  assert.deepEqual(leftovers('archived'), []);

  const reg = await startRegistry();
  t.after(() => reg.stop());
  const amd = busyboxImage();
  const arm = buildImage([tar([{ name: 'not-this-one', body: 'arm64' }])], { Cmd: ['/not-this-one'] });
  const { amd64 } = await pushIndex(reg.host, 'test/multi', '1', amd, arm);
  const p = sandbox(['pull', '-q', '--insecure-registry', reg.host, `${reg.host}/test/multi:1`], { env });
  assert.equal(p.code, 0, p.err);
  assert.equal(p.out, `${amd64}\n`);

  await push(reg.host, 'test/busybox', '1', amd);
  const front = await tokenFront(reg.host);
  t.after(() => front.stop());
  // Not spawnSync: the token front is served by this process, whose event loop must keep running.
  const tok = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const c = spawn(process.execPath, [BIN, 'pull', '-q', '--insecure-registry', front.host, `${front.host}/test/busybox:1`], { env: { ...process.env, SANDBOX_STORE: tmp('sbx-store-') } });
    let out = '', err = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stderr.on('data', (d) => { err += d; });
    c.on('close', (code) => resolve({ code, out, err }));
  });
  assert.equal(tok.code, 0, tok.err);
  assert.equal(tok.out, `${sha256(amd.manifest)}\n`);
  assert.equal(front.tokens(), 1);
});
