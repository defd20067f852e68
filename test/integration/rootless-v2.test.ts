// The rootless "done when" on pure cgroup v2, with limits: a user the test makes, given a
// subtree delegated as systemd's Delegate=yes gives one, runs samples/busybox.yml (its image
// pulled into a store of the user's own and run on overlayfs with userxattr), samples/web.yml
// detached with its port reached from the host, and a detached sandbox with a published port,
// each with memory and pids limits read back from inside; down leaves no process, cgroup, mount,
// interface or state folder. A store on a file system without user xattrs (tmpfs before Linux
// 6.6, as /dev/shm in the v2 VM) is refused with the way out. Pure cgroup v2 only: on this hybrid
// host the same runs without limits are rootless.test.ts and rootless-image.test.ts; .ci/run runs
// this file in the v2 VM.
import { test, after, before, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/load';
import { cgroupLayout, hasEngine, isRoot, needs } from '../helpers/sandbox';
import { canMakeUsers, defaultRouteForPasta, ext4For, hasMkfsExt4, hasUidmap, holdsUserXattrs, makeUser, pidsOf, removeAllUsers, repoForUsers, tunForUsers, userTmp, type TestUser } from '../helpers/users';
import { delegate, pidsIn, removeAllDelegations, type Delegation } from '../helpers/delegation';

const v2 = cgroupLayout() === 'v2';
const hasImage = existsSync(join(ROOT, 'samples/images/busybox/index.json'));
const hasPasta = existsSync('/usr/bin/pasta') || existsSync('/usr/bin/slirp4netns');

/** Skips plainly off pure cgroup v2 (the host's CI run is hybrid); needs() for everything else. */
function ready(t: TestContext): boolean {
  if (!v2) { t.skip('pure cgroup v2 only: .ci/run runs this file in the v2 VM'); return false; }
  return needs(t, 'root, to make users (useradd)', isRoot && canMakeUsers) && needs(t, 'newuidmap/newgidmap (uidmap)', hasUidmap)
    && needs(t, 'the native engine', hasEngine) && needs(t, 'the busybox image (npm install)', hasImage);
}

let user: TestUser | undefined;
let deleg: Delegation | undefined;
let scratch = '';
const cleanups: (() => void)[] = [];
after(() => {
  removeAllDelegations();
  removeAllUsers();
  // The store's folders may hold files of the user's subordinate ids: removed as root, once its processes are gone.
  for (const c of cleanups.reverse()) try { c(); } catch { /* best effort; the mount table check reports a leftover */ }
});

before(() => {
  if (!v2 || !isRoot || !canMakeUsers || !hasUidmap) return;
  repoForUsers();
  user = makeUser('rlvm');
  deleg = delegate(user);
  scratch = userTmp(user);
  cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
});

/** What the host must look like again after each sandbox: mount points, network links. */
const mounts = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => { const f = l.split(' '); return `${f[4]} ${l.split(' - ')[1] ?? ''}`; }).sort().join('\n');
const links = () => readdirSync('/sys/class/net').sort().join(' ');

/** The user's image store: an ext4 file system of the test's own, since the v2 VM's / is an
 * overlay and its /dev/shm a tmpfs, neither of which holds user xattrs on Linux 6.1. */
let ext4: string | undefined;
function ext4Store(t: TestContext, u: TestUser): string {
  if (ext4) return ext4;
  const base = mkdtempSync(join(tmpdir(), 'rlvm-store-'));
  chmodSync(base, 0o755);
  cleanups.push(() => rmSync(base, { recursive: true, force: true }));
  const fs = ext4For(u, join(base, 'store'));
  cleanups.push(fs.undo);
  t.diagnostic(`set-up: the user's SANDBOX_STORE: ${fs.what} (TMPDIR ${tmpdir()} and / hold no user xattrs here)`);
  ext4 = fs.dir;
  return fs.dir;
}

/** The CLI as the user, started in the delegated leaf (as a login's processes start in the user
 * manager's cgroup), with the user's own store; a long limit, since the VM is ten times slower. */
function sbx(args: string[], opts: { store?: string; input?: string } = {}) {
  const env: Record<string, string> = opts.store ? { SANDBOX_STORE: opts.store } : {};
  const t0 = Date.now();
  const r = deleg!.run([process.execPath, join(repoForUsers(), 'bin/sandbox.js'), ...args], { env, cwd: scratch, input: opts.input, timeout: 240_000 });
  return { ...r, ms: Date.now() - t0 };
}

/** A config the user owns in its scratch folder. */
function config(name: string, text: string): string {
  const f = join(scratch, `${name}.yml`);
  writeFileSync(f, text);
  chownSync(f, user!.uid, user!.gid);
  return f;
}

/** A sample, copied with its name prefixed, its relative paths made absolute (they are relative
 * to the sample's own folder) and limits appended. */
function sample(file: string, name: string, resources: string): string {
  const repo = repoForUsers();
  const text = readFileSync(join(repo, 'samples', file), 'utf8')
    .replace(/^name: .*$/m, `name: ${name}`)
    .replace('oci:./images/busybox:latest', `oci:${join(repo, 'samples/images/busybox')}:latest`)
    .replace('./web/site:/srv:ro', `${join(repo, 'samples/web/site')}:/srv:ro`);
  assert.doesNotMatch(text, /^resources:/m, `${file} has limits of its own`);
  return config(name, `${text}\nresources: ${resources}\n`);
}

/** What a finished sandbox could leave: the user's processes (a zombie supervisor waiting for the
 * VM's init holds nothing), cgroup folders under the delegation beside the leaf, processes in the
 * delegation, its state folder, its upper layer in the store. */
function leftovers(name: string, store?: string): string[] {
  const u = user!, d = deleg!;
  const out: string[] = [];
  for (const p of pidsOf(u.uid)) {
    try { if (!/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${p}/stat`, 'utf8'))) out.push(`process ${p}: ${readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ')}`); } catch { /* gone */ }
  }
  for (const e of readdirSync(d.dir)) if (e !== 'init.scope' && statSync(join(d.dir, e)).isDirectory()) out.push(`cgroup ${join(d.dir, e)}`);
  for (const e of readdirSync(d.start)) if (statSync(join(d.start, e)).isDirectory()) out.push(`cgroup ${join(d.start, e)}`);
  for (const p of pidsIn(d.dir)) out.push(`process ${p} in the delegation`);
  if (existsSync(join(u.runtimeDir, 'sandbox', name))) out.push(`state folder ${join(u.runtimeDir, 'sandbox', name)}`);
  if (store && existsSync(join(store, 'containers', name))) out.push(`upper layer ${join(store, 'containers', name)}`);
  return out;
}

/** The cgroup of a running sandbox, read as root from the host: under the delegated folder. */
const hostCgroup = (name: string) => join(deleg!.dir, 'sandbox', name);

/** A page fetched by a node client in the test's own process tree (the host side); '' on failure. */
function httpGet(url: string): string {
  const js = `require('http').get(${JSON.stringify(url)}, { timeout: 3000 }, (r) => r.pipe(process.stdout)).on('error', () => process.exit(1))`;
  return spawnSync(process.execPath, ['-e', js], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
}
async function fetchPage(url: string): Promise<string> {
  let page = '';
  for (let i = 0; i < 100 && !page.includes('Served from inside a sandbox'); i++) {
    page = httpGet(url);
    if (!page) await new Promise((r) => setTimeout(r, 100));
  }
  return page;
}
async function logsUntil(name: string, re: RegExp): Promise<string> {
  let text = '';
  for (let i = 0; i < 60; i++) {
    const r = sbx(['logs', name]);
    text = r.out + r.err;
    if (re.test(text)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return text;
}

/** What pasta needs of the host, as a fresh Debian has it: /dev/net/tun open to users (udev makes
 * it 0666; the VM's static node is already) and a default route (the VM has none: a dummy
 * interface carries one). Each is put back after the test. */
function netForUsers(t: TestContext): void {
  const tun = tunForUsers();
  t.after(() => tun.undo());
  t.diagnostic(`set-up: ${tun.changed ?? `/dev/net/tun is already ${(statSync('/dev/net/tun').mode & 0o777).toString(8)}, as udev makes it`}`);
  const route = defaultRouteForPasta('rlvmdef0');
  t.after(() => route.undo());
  if (route.changed) t.diagnostic(`set-up: ${route.changed}`);
}

/** The processes of the user while a sandbox runs, by name (which network helper runs, among them). */
const userComms = () => pidsOf(user!.uid).map((p) => { try { return readFileSync(`/proc/${p}/comm`, 'utf8').trim(); } catch { return ''; } }).filter(Boolean).sort().join(' ');

test('a store on a file system without user xattrs is refused before anything runs, naming it and the way out', (t) => {
  if (!ready(t)) return;
  // Where TMPDIR's file system takes user xattrs (tmpfs since Linux 6.6) there is nothing to refuse
  // here: rootless-image.test.ts refuses a ramfs store on any kernel.
  if (holdsUserXattrs(scratch)) { t.diagnostic(`${tmpdir()} holds user xattrs on Linux ${require('node:os').release()}: no refusal to see`); return; }
  const store = join(scratch, 'tmpfs-store');
  const file = sample('busybox.yml', 'rlvm-nostore', '{memory: 64m, pids: 32}');
  const r = sbx(['up', '-q', '-T', file, '--', '/bin/true'], { store });
  t.diagnostic(`refused in ${r.ms} ms with exit status ${r.code}: ${r.err.trim()}`);
  assert.ok(r.code === 1 || r.code === 125, `exit status ${r.code}: ${r.err}`);
  assert.ok(r.err.includes(`the image store ${store} is on a file system that cannot hold user extended attributes`), r.err);
  assert.match(r.err, /set SANDBOX_STORE to a folder on ext4, xfs or btrfs/);
  assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
  // Refused before the first layer is unpacked (the blobs fetched until then stay, for a later pull).
  const has = (sub: string) => existsSync(join(store, sub)) ? readdirSync(join(store, sub)) : [];
  assert.deepEqual([...has('layers'), ...has('containers'), ...has('images')], [], 'nothing was unpacked or recorded in it');
  t.diagnostic(`left in the refused store: ${existsSync(store) ? readdirSync(store).join(' ') : 'nothing'}`);
  assert.deepEqual(leftovers('rlvm-nostore'), []);
});

test('as a user: samples/busybox.yml with memory and pids limits, in its own store, pulled and run on overlayfs; /bin/sh is PID 1, root inside, the limits hold; nothing left', (t) => {
  if (!ready(t) || !needs(t, 'mkfs.ext4 (e2fsprogs) for the user\'s store', hasMkfsExt4)) return;
  const u = user!;
  const store = ext4Store(t, u);
  const m0 = mounts(), l0 = links();
  const name = 'rlvm-busybox';
  const file = sample('busybox.yml', name, '{memory: 64m, pids: 32}');
  t.after(() => { sbx(['down', name], { store }); });

  // busybox.yml asks for a terminal with stdin open (docker run -it), so the CLI needs one too:
  // script(1) gives it one, as a person's has, and the image's /bin/sh reads what is typed.
  const typed = 'id -u; ps; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; tty\nexit 7\n';
  const upArgv = (...args: string[]) => [process.execPath, join(repoForUsers(), 'bin/sandbox.js'), 'up', '-q', ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const s0 = Date.now();
  const shell = deleg!.run(['script', '-qec', upArgv(file), '/dev/null'], { env: { SANDBOX_STORE: store }, cwd: scratch, input: typed, timeout: 240_000 });
  t.diagnostic(`up (pull included) of the image's /bin/sh, typed to: ${Date.now() - s0} ms`);
  assert.equal(shell.code, 7, `${shell.out}${shell.err}`);
  assert.match(shell.out, /^0$/m, shell.out);
  assert.match(shell.out, /^\s*1 root\s+\/bin\/sh$/m, `/bin/sh is PID 1: ${shell.out}`);
  assert.match(shell.out, /^67108864\n32\n\/dev\/pts\/0$/m, shell.out);
  assert.equal(readdirSync(join(store, 'layers')).length, 1, 'the image was pulled into the user\'s store');

  // With a real terminal on the CLI's side too (script(1) gives it one, as a person's has), and
  // `--` in place of the image's command.
  const t0 = Date.now();
  const viaPty = deleg!.run(['script', '-qec', upArgv(file, '--', '/bin/sh', '-c', 'id -u; ps; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; [ -t 0 ] && echo terminal'), '/dev/null'], { env: { SANDBOX_STORE: store }, cwd: scratch, timeout: 240_000 });
  t.diagnostic(`up -- /bin/sh -c … under script: ${Date.now() - t0} ms`);
  assert.equal(viaPty.code, 0, `${viaPty.out}${viaPty.err}`);
  assert.match(viaPty.out, /^0\n/, viaPty.out);
  assert.match(viaPty.out, /^\s*1 root\s+\/bin\/sh -c id -u/m, viaPty.out);
  assert.match(viaPty.out, /^67108864\n32\nterminal$/m, viaPty.out);

  // The kernel enforces them: a shell keeping 100 MB in a variable is killed by the OOM killer.
  const hog = sbx(['up', '-q', '-T', file, '--', '/bin/sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived ${#x}'], { store });
  assert.equal(hog.code, 137, `${hog.out}${hog.err}`);
  assert.doesNotMatch(hog.out, /survived/);

  assert.deepEqual(leftovers(name, store), []);
  assert.equal(mounts(), m0, 'the mount table is as before');
  assert.equal(links(), l0, 'the network links are as before');
});

test('as a user: samples/web.yml with limits, detached, serves the host on 127.0.0.1:8080; exec reads its limits from inside; down leaves nothing', async (t) => {
  if (!ready(t) || !needs(t, 'pasta (passt) or slirp4netns', hasPasta)) return;
  netForUsers(t);
  const m0 = mounts(), l0 = links();
  const name = 'rlvm-web';
  const file = sample('web.yml', name, '{memory: 64m, pids: 32}');
  t.after(() => { sbx(['down', name]); });

  const up = sbx(['up', '-d', '-q', file]);
  t.diagnostic(`up -d: ${up.ms} ms`);
  assert.equal(up.code, 0, up.err);
  t.diagnostic(`the user's processes while it runs: ${userComms()}`);
  const page = await fetchPage('http://127.0.0.1:8080/');
  assert.match(page, /Served from inside a sandbox/);
  assert.match(await logsUntil(name, /response:200/), /127\.0\.0\.1\]?:\d+: response:200/, 'httpd saw the client on 127.0.0.1');

  const ex = sbx(['exec', name, '--', 'cat', '/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/pids.max', '/proc/self/cgroup']);
  assert.equal(ex.code, 0, ex.err);
  assert.equal(ex.out, '67108864\n32\n0::/\n', ex.err);
  // And from the host, as root: the sandbox's cgroup is in the user's delegation, its httpd there.
  assert.equal(readFileSync(join(hostCgroup(name), 'memory.max'), 'utf8'), '67108864\n');
  assert.equal(readFileSync(join(hostCgroup(name), 'pids.max'), 'utf8'), '32\n');
  assert.ok(pidsIn(hostCgroup(name)).length >= 2, 'its init and httpd are in the sandbox\'s cgroup');

  const down = sbx(['down', name]);
  assert.equal(down.code, 0, down.err);
  assert.deepEqual(leftovers(name), []);
  assert.equal(httpGet('http://127.0.0.1:8080/'), '', 'nothing serves on port 8080 any more');
  assert.equal(mounts(), m0, 'the mount table is as before');
  assert.equal(links(), l0, 'the network links are as before');
});

test('as a user: a detached sandbox with a published port and a memory limit is reached from 127.0.0.1 through it; down frees the port and leaves nothing', async (t) => {
  if (!ready(t) || !needs(t, 'pasta (passt) or slirp4netns', hasPasta)) return;
  netForUsers(t);
  const m0 = mounts(), l0 = links();
  const name = 'rlvm-pub';
  const site = join(repoForUsers(), 'samples/web/site');
  const file = config(name, `version: 1\nname: ${name}\nrootfs: host\ndetach: true\nports: ["18094:8080"]\nresources: {memory: 32m}\nvolumes: ["${site}:/srv:ro"]\ncommand: [busybox, httpd, -f, -v, -p, "8080", -h, /srv]\n`);
  t.after(() => { sbx(['down', name]); });

  const up = sbx(['up', '-q', file]);
  t.diagnostic(`up (detach: true): ${up.ms} ms`);
  assert.equal(up.code, 0, up.err);
  assert.match(await fetchPage('http://127.0.0.1:18094/'), /Served from inside a sandbox/);
  assert.match(await logsUntil(name, /response:200/), /127\.0\.0\.1\]?:\d+: response:200/, 'httpd saw the client on 127.0.0.1');
  assert.match(sbx(['ps']).out, new RegExp(`^${name}\\s+running.*18094->8080/tcp`, 'm'));
  const ex = sbx(['exec', name, '--', 'cat', '/sys/fs/cgroup/memory.max']);
  assert.equal(ex.code, 0, ex.err);
  assert.equal(ex.out, '33554432\n');
  assert.equal(readFileSync(join(hostCgroup(name), 'memory.max'), 'utf8'), '33554432\n');

  const down = sbx(['down', name]);
  assert.equal(down.code, 0, down.err);
  assert.deepEqual(leftovers(name), []);
  assert.doesNotMatch(execFileSync('ss', ['-Hltn'], { encoding: 'utf8' }), /:18094\s/, 'the host port is free again');
  assert.equal(mounts(), m0, 'the mount table is as before');
  assert.equal(links(), l0, 'the network links are as before');
});
