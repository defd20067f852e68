// sandbox run as docker run is used (as root): `sandbox run --rm -p 18080:8000 --rootfs host
// python3 -m http.server 8000` serves a page to a real client (curl) on the host, ends on Ctrl-C,
// and leaves nothing: no state folder, cgroup, interface, nftables table or process. Also `up`
// with a port given on the command line: the page is served on that port, not the file's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasEngine, hasNft, hostSnapshot, isRoot, leftovers, needs, BIN, sandbox } from '../helpers/sandbox';
import { ROOT } from '../helpers/load';

const python = spawnSync('sh', ['-c', 'test -x /usr/bin/python3']).status === 0;

/** The page at url by curl, polled until it answers or `ms` pass; '' if it never did. */
async function curlUntil(url: string, child: ChildProcess, ms = 15_000): Promise<string> {
  const end = Date.now() + ms;
  while (Date.now() < end && child.exitCode === null) {
    const r = spawnSync('curl', ['-s', '--max-time', '2', url], { encoding: 'utf8' });
    if (r.status === 0) return r.stdout;
    await new Promise((res) => setTimeout(res, 200));
  }
  return '';
}

/** Ctrl-C as a terminal sends it, then the CLI's exit status. */
async function interrupt(child: ChildProcess): Promise<number | null> {
  const done = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await done;
  clearTimeout(timer);
  return code;
}

test('sandbox run --rm -p 18080:8000 --rootfs host python3 -m http.server 8000 serves, ends on Ctrl-C, and leaves nothing', async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine) || !needs(t, 'nftables', hasNft) || !needs(t, '/usr/bin/python3', python)) return;
  const dir = mkdtempSync(join(tmpdir(), 'sandbox-run-'));
  writeFileSync(join(dir, 'index.html'), 'hello from sandbox run\n');
  // Served from the folder given with -v: the page is the host's file, read through the mount.
  const child = spawn(process.execPath, [BIN, 'run', '--rm', '-q', '-p', '18080:8000', '-v', `${dir}:/www:ro`, '-w', '/www', '--rootfs', 'host', 'python3', '-m', 'http.server', '8000'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', CI: 'true' } });
  let err = '';
  child.stderr!.on('data', (c) => (err += c));
  try {
    const page = await curlUntil('http://127.0.0.1:18080/index.html', child);
    assert.equal(page, 'hello from sandbox run\n', err);
    assert.ok(existsSync('/run/sandbox/python3'), 'it runs as the sandbox python3, named after its command');
  } finally {
    const code = await interrupt(child);
    // http.server ends on SIGINT (KeyboardInterrupt) and says so; its status is 0.
    assert.equal(code, 0, err);
  }
  assert.deepEqual(leftovers('python3'), []);
  assert.doesNotMatch(sandbox(['ps', '-a']).out, /python3/);
});

test('up FILE -p: the port given on the command line replaces the file\'s', async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine) || !needs(t, 'nftables', hasNft) || !needs(t, '/usr/bin/python3', python)) return;
  const dir = mkdtempSync(join(tmpdir(), 'sandbox-up-p-'));
  writeFileSync(join(dir, 'py.yml'), 'version: 1\nname: up-override\nrootfs: host\ncommand: [python3, -m, http.server, "8000"]\nworkdir: /www\nports: ["127.0.0.1:18081:8000"]\n');
  const child = spawn(process.execPath, [BIN, 'up', '-q', 'py.yml', '-p', '127.0.0.1:18082:8000', '-v', `${dir}:/www:ro`, '-e', 'X=1'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', CI: 'true' } });
  let err = '';
  child.stderr!.on('data', (c) => (err += c));
  try {
    const page = await curlUntil('http://127.0.0.1:18082/py.yml', child);
    assert.match(page, /name: up-override/, err);
    assert.notEqual(spawnSync('curl', ['-s', '--max-time', '1', 'http://127.0.0.1:18081/']).status, 0, 'the file\'s port is not published');
  } finally {
    assert.equal(await interrupt(child), 0, err);
  }
  assert.deepEqual(leftovers('up-override'), []);
});

type PsRow = { name: string; status: string; exitCode: number | null };
const psRow = (name: string) => (JSON.parse(sandbox(['ps', '-a', '--json']).out) as PsRow[]).find((r) => r.name === name);
/** Polls until `ok` holds or `ms` pass; whether it held. */
async function until(ok: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (ok()) return true;
  return ok();
}

test('run -d --rm: once the command has ended for good its supervisor removes the sandbox, as docker run -d --rm; without --rm it stays, exited', { timeout: 120_000 }, async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine) || !needs(t, 'nftables', hasNft)) return;
  try {
    // A private network and a published port: a table and a veth for the removal to take away.
    const r = sandbox(['run', '-d', '--rm', '-q', '--name', 'rmtest', '-p', '127.0.0.1:18082:80', '--rootfs', 'host', 'sh', '-c', 'sleep 1']);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'rmtest\n');
    assert.ok(await until(() => psRow('rmtest') === undefined, 10_000), `ps -a still lists rmtest: ${JSON.stringify(psRow('rmtest'))}`);
    assert.ok(await until(() => leftovers('rmtest').length === 0, 5_000), leftovers('rmtest').join('\n'));

    // The restart policy first: removed once no restart is left.
    const re = sandbox(['run', '-d', '--rm', '-q', '--name', 'rmtest', '--restart', 'on-failure:1', '--rootfs', 'host', 'sh', '-c', 'exit 3']);
    assert.equal(re.code, 0, re.err);
    assert.ok(await until(() => psRow('rmtest') === undefined, 10_000), `ps -a still lists rmtest: ${JSON.stringify(psRow('rmtest'))}`);
    assert.deepEqual(leftovers('rmtest'), []);

    // sandbox stop ends it for good: it is removed too.
    const s = sandbox(['run', '-d', '--rm', '-q', '--name', 'rmtest', '--rootfs', 'host', 'sleep', '1000']);
    assert.equal(s.code, 0, s.err);
    assert.equal(psRow('rmtest')?.status, 'running');
    const stop = sandbox(['stop', '-t', '5', 'rmtest']);
    assert.deepEqual([stop.code, stop.out], [0, 'rmtest\n'], stop.err);
    assert.ok(await until(() => psRow('rmtest') === undefined, 10_000), `ps -a still lists rmtest after stop: ${JSON.stringify(psRow('rmtest'))}`);
    assert.ok(await until(() => leftovers('rmtest').length === 0, 5_000), leftovers('rmtest').join('\n'));

    // Without --rm a detached sandbox is kept, exited, for its logs until down.
    const k = sandbox(['run', '-d', '-q', '--name', 'rmtest', '--rootfs', 'host', 'sh', '-c', 'echo kept; exit 4']);
    assert.equal(k.code, 0, k.err);
    assert.ok(await until(() => psRow('rmtest')?.status === 'exited', 10_000), JSON.stringify(psRow('rmtest')));
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual([psRow('rmtest')?.status, psRow('rmtest')?.exitCode], ['exited', 4], 'still listed well after it exited');
    assert.match(sandbox(['logs', 'rmtest']).out, /kept/);
    assert.equal(sandbox(['down', 'rmtest']).code, 0);
    assert.deepEqual(leftovers('rmtest'), []);
  } finally {
    sandbox(['down', 'rmtest']);
  }
});

test('run without --name, as docker run: a second run of one command gets a name of its own and runs beside the first', { timeout: 60_000 }, async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
  const names: string[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const r = sandbox(['run', '-d', '-q', '--network', 'none', '--rootfs', 'host', 'sleep', '1000']);
      assert.equal(r.code, 0, r.err);
      names.push(r.out.trim());
    }
    assert.match(names[0]!, /^sleep(-\d+)?$/);
    assert.match(names[1]!, /^sleep-\d+$/);
    assert.notEqual(names[0], names[1]);
    for (const n of names) assert.equal(psRow(n)?.status, 'running', n);
  } finally {
    for (const n of names) sandbox(['down', '-t', '1', n]);
  }
  for (const n of names) assert.deepEqual(leftovers(n), []);
});

test('-w of a folder the root lacks: made before the command starts (755, owned by the sandbox\'s root, as docker run -w), in an image, a read-only image, rootfs: host\'s own tmpfs root and a writable bind', { timeout: 120_000 }, (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine) || !needs(t, 'the busybox OCI layout (npm run build)', existsSync(join(ROOT, 'samples/images/busybox/index.json')))) return;
  // Seen from inside: where the command runs, and the folder's mode, owner and type.
  const show = ['sh', '-c', 'pwd; stat -c "%a %u:%g %F" . ..'];
  const image = 'oci:samples/images/busybox';
  for (const [what, args] of [
    ['an image', ['-w', '/srv/app', image]],
    ['an image, as a user that is not root', ['-u', '1000', '-w', '/srv/app', image]],
    ['a read-only image (its init layer)', ['--read-only', '-w', '/srv/app', image]],
    ['rootfs: host (the sandbox\'s own tmpfs root)', ['-w', '/srv/app', '--rootfs', 'host']],
  ] as const) {
    const r = sandbox(['run', '--rm', '-q', '--network', 'none', '--name', 'wd', ...args, ...show]);
    assert.deepEqual([r.code, r.out], [0, '/srv/app\n755 0:0 directory\n755 0:0 directory\n'], `${what}: ${r.err}`);
    assert.deepEqual(leftovers('wd'), []);
  }
  // Inside a writable bind it is made in the host's folder, as runc makes it; the host sees it.
  const dir = mkdtempSync(join(tmpdir(), 'sandbox-wd-'));
  const bound = sandbox(['run', '--rm', '-q', '--network', 'none', '--name', 'wd', '-v', `${dir}:/data`, '-w', '/data/sub', '--rootfs', 'host', 'pwd']);
  assert.deepEqual([bound.code, bound.out], [0, '/data/sub\n'], bound.err);
  assert.ok(existsSync(join(dir, 'sub')));
  // The plan says so, citing the flag.
  const plan = sandbox(['run', '--plan', '-w', '/srv/app', '--rootfs', 'host', 'pwd']);
  assert.match(plan.out, /^ +workdir +make the working directory \/srv\/app if the root lacks it \(mode 755, owned by the sandbox's root, as docker run -w\) +← command line:1:\d+$/m);
  assert.deepEqual(leftovers('wd'), []);
});

test('-w (or workdir) where the folder cannot be made: refused before anything is set up, at the flag or the line, with why and what to do', (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
  const before = hostSnapshot();
  const flag = sandbox(['run', '--rm', '-q', '--name', 'wd-ro', '-w', '/usr/no-such-dir', '--rootfs', 'host', 'pwd']);
  assert.equal(flag.code, 125, flag.err);
  assert.equal(flag.out, '');
  assert.match(flag.err, /^command line:1:\d+: error: the working directory \/usr\/no-such-dir does not exist, and the sandbox cannot make it: \/usr is the host's own, which `rootfs: host` shows read-only; create it on the host first \(mkdir -p \/usr\/no-such-dir\), mount a volume or a tmpfs on \/usr\/no-such-dir, or choose a working directory that exists$/m);
  assert.match(flag.err, /^> 1 \| sandbox run .* -w \/usr\/no-such-dir /m);
  // A file: at its workdir line; a read-only bind names its host folder.
  const dir = mkdtempSync(join(tmpdir(), 'sandbox-wd-'));
  writeFileSync(join(dir, 'wd.yml'), `version: 1\nname: wd-ro\nrootfs: host\nvolumes: ["${dir}:/data:ro"]\nworkdir: /data/sub\ncommand: [pwd]\n`);
  const file = sandbox(['up', '-q', join(dir, 'wd.yml')]);
  assert.equal(file.code, 125, file.err);
  assert.match(file.err, new RegExp(`wd\\.yml:5:10: error: the working directory /data/sub does not exist, and the sandbox cannot make it: /data is bound read-only from the host's ${dir}; create it there first \\(mkdir -p ${dir}/sub\\), mount /data writable, or choose a working directory that exists`));
  assert.match(file.err, /^> 5 \| workdir: \/data\/sub$/m);
  // Once it is there, it runs there.
  mkdirSync(join(dir, 'sub'));
  assert.deepEqual([sandbox(['up', '-q', join(dir, 'wd.yml')]).out], ['/data/sub\n']);
  assert.deepEqual(leftovers('wd-ro'), []);
  assert.equal(hostSnapshot(), before);
});

test('run --name over a sandbox that has ended and is kept: refused at --name, as docker run refuses a name in use; --replace (podman\'s) removes it first, running or not; up FILE replaces it, as compose up', { timeout: 120_000 }, async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
  const name = 'kept-name';
  const base = ['--network', 'none', '--rootfs', 'host'];
  const exited = async () => {
    const k = sandbox(['run', '-d', '-q', '--name', name, ...base, 'sh', '-c', 'echo old; exit 4']);
    assert.equal(k.code, 0, k.err);
    assert.ok(await until(() => psRow(name)?.status === 'exited', 10_000), JSON.stringify(psRow(name)));
  };
  try {
    await exited();
    const refused = sandbox(['run', '--rm', '-q', '--name', name, ...base, 'echo', 'new']);
    assert.deepEqual([refused.code, refused.out], [125, ''], refused.err);
    assert.match(refused.err, /^command line:1:\d+: error: a sandbox named kept-name has exited \(4\) and is kept, for its logs and sandbox ps -a; remove it first \(sandbox rm kept-name\), or add --replace to remove it and run this one in its place \(--rm keeps nothing of a run once it ends\)$/m);
    assert.match(refused.err, /^> 1 \| sandbox run --rm -q --name kept-name /m);
    // Left as it was: its status and its log.
    assert.deepEqual([psRow(name)?.status, psRow(name)?.exitCode], ['exited', 4]);
    assert.match(sandbox(['logs', name]).out, /^old$/m);

    // --replace: the kept one goes, the new one runs under its name.
    const replaced = sandbox(['run', '--rm', '-q', '--replace', '--name', name, ...base, 'echo', 'new']);
    assert.deepEqual([replaced.code, replaced.out, replaced.err], [0, 'new\n', '']);
    assert.equal(psRow(name), undefined);
    // A running one is stopped first (sleep lets SIGTERM drop: killed at once, said so).
    assert.equal(sandbox(['run', '-d', '-q', '--name', name, ...base, 'sleep', '1000']).code, 0);
    const t0 = Date.now();
    const over = sandbox(['run', '--rm', '-q', '--replace', '--name', name, ...base, 'echo', 'newer']);
    assert.deepEqual([over.code, over.out], [0, 'newer\n'], over.err);
    assert.match(over.err, /^sandbox: PID 1 of kept-name \(sleep\) does not handle SIGTERM/m);
    assert.ok(Date.now() - t0 < 5000, `--replace of a running one took ${Date.now() - t0} ms`);

    // up FILE replaces a kept one of its name, as docker compose up recreates its container.
    await exited();
    const dir = mkdtempSync(join(tmpdir(), 'sandbox-kept-'));
    writeFileSync(join(dir, 'kept.yml'), `version: 1\nname: ${name}\nrootfs: host\nnetwork: none\ncommand: [echo, from-up]\n`);
    const up = sandbox(['up', '-q', join(dir, 'kept.yml')]);
    assert.deepEqual([up.code, up.out], [0, 'from-up\n'], up.err);
    assert.equal(psRow(name), undefined);
  } finally {
    sandbox(['down', name]);
  }
  assert.deepEqual(leftovers(name), []);
});

test('run -d prints the name alone, as docker run -d prints the id: no stages unless --progress asks; a pull is still shown', { timeout: 120_000 }, (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine) || !needs(t, 'the busybox OCI layout (npm run build)', existsSync(join(ROOT, 'samples/images/busybox/index.json')))) return;
  const base = ['--network', 'none', '--rootfs', 'host', 'sleep', '1000'];
  try {
    const plain = sandbox(['run', '-d', '--name', 'rund', ...base]);
    assert.deepEqual([plain.code, plain.out, plain.err], [0, 'rund\n', '']);
    assert.equal(psRow('rund')?.status, 'running');
    // Asked for: the stages, on stderr; stdout is still the name alone.
    const shown = sandbox(['run', '-d', '--progress', 'plain', '--name', 'rund-p', ...base]);
    assert.deepEqual([shown.code, shown.out], [0, 'rund-p\n'], shown.err);
    assert.match(shown.err, /^1\. rootfs {2}\d+ steps? /m);
    assert.match(shown.err, /^9\. exec /m);
    // An image not in the store: its pull is shown (as docker run -d shows one), the stages are not.
    const store = mkdtempSync(join(tmpdir(), 'sandbox-rund-store-'));
    const pulled = sandbox(['run', '-d', '--name', 'rund-i', '--network', 'none', 'oci:samples/images/busybox', 'sleep', '1000'], { env: { SANDBOX_STORE: store } });
    assert.deepEqual([pulled.code, pulled.out], [0, 'rund-i\n'], pulled.err);
    assert.match(pulled.err, /^pull oci:.*busybox:latest {2}1 layer /m);
    assert.doesNotMatch(pulled.err, /^\d\. (rootfs|exec)/m);
    sandbox(['rm', '-f', 'rund-i'], { env: { SANDBOX_STORE: store } });
  } finally {
    for (const n of ['rund', 'rund-p', 'rund-i']) sandbox(['rm', '-f', n]);
  }
  for (const n of ['rund', 'rund-p', 'rund-i']) assert.deepEqual(leftovers(n), []);
});
