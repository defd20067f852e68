// Reduced mode (issue 25, part 4), from inside: a test user whose user-namespace creation is
// refused, made so by the test set-up (the CLI runs as the user inside a user namespace, mapped
// one to one, where user.max_user_namespaces is 0: unshare fails with ENOSPC there, as it fails
// under Ubuntu's AppArmor restriction or in a container without the right). The probe finds it,
// `doctor`, `plan` and `audit` print the per-line table, and `up` runs the command with no
// namespaces: from inside, Landlock refuses a write outside the writable paths (and to a
// read_only one the user owns), a TCP listener and a signal to the user's other processes;
// NoNewPrivs is 1 and Seccomp 2; a line that cannot be held (a port map, a memory limit) stops
// `up` with the table unless --allow-weaker. Also (part 3): as root, a start-up file that does
// not exist in a writable home cannot be created by the sandbox, and nothing of it is left.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync, chownSync } from 'node:fs';
import { join } from 'node:path';
import type { Verdict } from '../../src/plan/types';
import { loadLibSbx } from '../../src/ffi/libsbx';
import { hasEngine, isRoot, leftovers, needs, sandbox } from '../helpers/sandbox';
import { ROOT } from '../helpers/load';
import { canMakeUsers, makeUser, pidsOf, removeAllUsers, repoForUsers, userTmp, type TestUser, type UserRun } from '../helpers/users';

process.env.SANDBOX_LIBSBX ??= join(ROOT, 'native/build/libsbx.so');
const landlockAbi = (() => { try { return loadLibSbx().landlockAbi(); } catch { return 0; } })();
const hasUnshare = spawnSync('unshare', ['--version'], { stdio: 'ignore' }).status === 0;
const ready = (t: import('node:test').TestContext) => needs(t, 'root', isRoot) && needs(t, 'the native engine', hasEngine) && needs(t, 'useradd', canMakeUsers)
  && needs(t, 'unshare (util-linux)', hasUnshare) && needs(t, 'Landlock in the kernel (landlock_create_ruleset)', landlockAbi > 0);

after(() => removeAllUsers());

/** The CLI as the user runs it where no user namespace can be made: unshare makes one (as root,
 * mapped one to one by this process, which writes its maps as root of the host), whose root sets
 * user.max_user_namespaces to 0 there, and becomes the user. `sh -c` runs twice: the first was
 * exec'd before its maps existed and holds no capability in the namespace; the second, exec'd as
 * its mapped root, does. */
async function reducedAs(u: TestUser, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<UserRun> {
  const inner = 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"';
  const outer = `read go && exec sh -c '${inner}' inner "$@"`;
  const argv = ['setpriv', '--reuid', String(u.uid), '--regid', String(u.gid), '--init-groups', '--', process.execPath, join(repoForUsers(), 'bin/sandbox.js'), ...args];
  const env = { PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', HOME: u.home, USER: u.name, LOGNAME: u.name, XDG_RUNTIME_DIR: u.runtimeDir, NO_COLOR: '1', CI: 'true', LANG: 'C.UTF-8', ...opts.env };
  const child = spawn('unshare', ['--user', '--', 'sh', '-c', outer, 'outer', ...argv], { cwd: opts.cwd ?? repoForUsers(), env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
  child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const self = readlinkSync('/proc/self/ns/user');
  for (let i = 0; i < 500; i++) {
    let ns = self;
    try { ns = readlinkSync(`/proc/${child.pid}/ns/user`); } catch { /* not yet */ }
    if (ns !== self) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  writeFileSync(`/proc/${child.pid}/uid_map`, '0 0 4294967295');
  writeFileSync(`/proc/${child.pid}/gid_map`, '0 0 4294967295');
  child.stdin.end('go\n');
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const { code, signal } = await closed;
  clearTimeout(timer);
  return { code, signal, out, err };
}

const said = (out: string) => Object.fromEntries(out.trim().split('\n').filter((l) => l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));

/** A project the user owns: w (read_write), r (read_only, with a file), and the file. */
function project(u: TestUser, name: string, extra = '', script: string | ((dir: string) => string) = 'true'): { dir: string; file: string } {
  const dir = userTmp(u);
  for (const d of ['w', 'r']) { mkdirSync(join(dir, d)); chownSync(join(dir, d), u.uid, u.gid); }
  writeFileSync(join(dir, 'r/data'), 'DATA');
  chownSync(join(dir, 'r/data'), u.uid, u.gid);
  const file = join(dir, 'sandbox.yml');
  writeFileSync(file, ['version: 1', `name: ${name}`, 'rootfs: host', 'paths:', '  read_write: [./w]', '  read_only: [./r]', `command: [/bin/sh, -c, ${JSON.stringify(typeof script === 'string' ? script : script(dir))}]`, extra, ''].join('\n'));
  return { dir, file };
}

const SCRIPT = (dir: string, home: string, pid: number) => [
  'w() { printf "%s: " "$1"; ( echo changed > "$2" ) 2>&1 | sed "s/.*: //" | tr -d "\\n"; echo; }',
  `w rw ${dir}/w/out.txt`,
  `w ro ${dir}/r/out.txt`,
  `w beside ${dir}/out.txt`,
  `w home ${home}/.sbx-new`,
  'echo "status: $(grep -E "^(NoNewPrivs|Seccomp):" /proc/self/status | tr -s "\\t " " " | tr "\\n" " ")"',
  'echo "listen: $(python3 -c "import socket\ntry:\n  socket.socket().bind((\'127.0.0.1\', 0)); print(\'bound\')\nexcept OSError as e: print(e.strerror)")"',
  `echo "signal: $( (kill -0 ${pid}) 2>&1 | sed "s/.*: //")"`,
  `echo "read: $(cat ${dir}/r/data)"`,
  'echo "uid: $(id -u)"',
].join('\n');

test('where no user namespace can be made: doctor, plan and audit print each line of the file as enforced, weaker or refused', { timeout: 180_000 }, async (t) => {
  if (!ready(t)) return;
  const u = makeUser('sbxr');
  const { file } = project(u, 'reduced-table');
  const doctor = await reducedAs(u, ['doctor', file]);
  assert.equal(doctor.code, 0, doctor.err + doctor.out);
  assert.match(doctor.out, /user namespaces +no: creating a user namespace failed: .*No space left on device/);
  assert.match(doctor.out, /reduced mode \(.*\): no namespaces; .*\n(.*\n)*.*sandbox\.yml:5:\d+ +paths\.read_write \.\/w +enforced +writable by Landlock/);
  const plan = await reducedAs(u, ['plan', file]);
  assert.equal(plan.code, 0, plan.err);
  assert.match(plan.out, /host: .*rootless, reduced mode \(no user namespaces\)/);
  assert.doesNotMatch(plan.out, /ns:|mount\.|pivot|idmap/);
  assert.match(plan.out, /landlock +Landlock ABI \d+, the wall in reduced mode/);
  assert.match(plan.out, /default +namespaces \(user pid mount uts ipc net cgroup\) +weaker/);
  const audit = await reducedAs(u, ['audit', file]);
  assert.match(audit.out, /reduced mode .*\n(.*\n)*.*paths\.read_only \.\/r +enforced +read-only by Landlock/);
  // The same user with user namespaces: the usual rootless plan, no table.
  const usual = spawnSync('setpriv', ['--reuid', String(u.uid), '--regid', String(u.gid), '--init-groups', '--', process.execPath, join(repoForUsers(), 'bin/sandbox.js'), 'plan', file], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: u.home, XDG_RUNTIME_DIR: u.runtimeDir, NO_COLOR: '1' }, cwd: repoForUsers() });
  assert.equal(usual.status, 0, usual.stderr);
  assert.match(usual.stdout, /ns:user/);
  assert.doesNotMatch(usual.stdout, /reduced mode/);
});

test('reduced up, from inside: Landlock refuses writes outside the writable paths, a TCP listener and signals out; NoNewPrivs 1, Seccomp 2; attested; nothing left', { timeout: 180_000 }, async (t) => {
  if (!ready(t)) return;
  const u = makeUser('sbxr');
  // A process of the same user outside the sandbox, for the signal the sandbox must not send.
  const outside = spawn('setpriv', ['--reuid', String(u.uid), '--regid', String(u.gid), '--init-groups', '--', 'sleep', '120'], { stdio: 'ignore' });
  try {
    const { dir, file } = project(u, 'reduced-up', '', (d) => SCRIPT(d, u.home, outside.pid!));
    const attest = join(dir, 'attest.json');
    const r = await reducedAs(u, ['up', '-T', '--attest', attest, file]);
    assert.equal(r.code, 0, `${r.err}\n${r.out}`);
    assert.match(r.err, /reduced mode \(creating a user namespace failed/);
    const out = said(r.out);
    assert.equal(out.rw, '');
    // The user owns r/ and the project folder, and its home: only Landlock refuses these writes.
    assert.equal(out.ro, 'Permission denied');
    assert.equal(out.beside, 'Permission denied');
    assert.equal(out.home, 'Permission denied');
    assert.match(out.status!, /NoNewPrivs: 1 Seccomp: 2/);
    if (landlockAbi >= 4) assert.equal(out.listen, 'Permission denied');
    if (landlockAbi >= 6) assert.equal(out.signal, 'Operation not permitted');
    assert.equal(out.read, 'DATA');
    assert.equal(out.uid, String(u.uid));
    assert.equal(readFileSync(join(dir, 'w/out.txt'), 'utf8'), 'changed\n');
    assert.equal(existsSync(join(dir, 'r/out.txt')) || existsSync(join(dir, 'out.txt')) || existsSync(join(u.home, '.sbx-new')), false);
    const verdicts = (JSON.parse(readFileSync(attest, 'utf8')) as { attestation: Verdict[] }).attestation;
    const v = (id: string) => verdicts.find((x) => x.step === id)?.verdict;
    assert.deepEqual([v('nnp'), v('landlock'), v('seccomp')], ['verified', 'verified', 'verified']);
    assert.equal(existsSync(join(u.runtimeDir, 'sandbox', 'reduced-up')), false);
    assert.ok(outside.exitCode === null, 'the process outside the sandbox is still alive');
  } finally { outside.kill('SIGKILL'); }
});

test('a line that cannot be held (a port map, a memory limit) stops up with the table, at its line; --allow-weaker runs without it', { timeout: 180_000 }, async (t) => {
  if (!ready(t)) return;
  const u = makeUser('sbxr');
  const { dir, file } = project(u, 'reduced-refused', 'ports: ["127.0.0.1:18089:80"]\nresources: {memory: 64m}', 'echo ran');
  const r = await reducedAs(u, ['up', '-q', '-T', file]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /sandbox\.yml:8:\d+: error: ports: 18089:80\/tcp cannot be held without user namespaces \(reduced mode\)/);
  assert.match(r.err, /sandbox\.yml:9:\d+: error: resources cannot be held/);
  assert.match(r.err, /sandbox\.yml:8:\d+ +ports: 18089:80\/tcp +refused/);
  assert.match(r.err, /A refused line stops `up` unless --allow-weaker/);
  assert.equal(r.out, '');
  const w = await reducedAs(u, ['up', '-q', '-T', '--allow-weaker', file]);
  assert.equal(w.code, 0, w.err);
  assert.equal(w.out.trim(), 'ran');
  assert.match(w.err, /warning: ports: 18089:80\/tcp cannot be held/);
  assert.equal(existsSync(join(u.runtimeDir, 'sandbox', 'reduced-refused')), false);
  rmSync(dir, { recursive: true, force: true });
});

test('samples/workspace.yml where no user namespace can be made: the plan\'s table line by line; up stops at the lines Landlock cannot hold; --allow-weaker runs it, writable only where it says', { timeout: 180_000 }, async (t) => {
  if (!ready(t)) return;
  const u = makeUser('sbxr');
  // The sample in a folder of the user's, with what its rules name: ./rootfs and an ./images/* match.
  const dir = userTmp(u);
  const file = join(dir, 'workspace.yml');
  copyFileSync(join(ROOT, 'samples/workspace.yml'), file);
  for (const d of ['rootfs', 'images', 'images/a']) { mkdirSync(join(dir, d)); chownSync(join(dir, d), u.uid, u.gid); }
  chownSync(file, u.uid, u.gid);
  const plan = await reducedAs(u, ['plan', file], { cwd: dir });
  assert.equal(plan.code, 0, plan.err);
  const rows = plan.out.split('\n').filter((l) => /^ {2}(workspace\.yml:\d+:\d+|default) /.test(l)).map((l) => l.trim().split(/ {2,}/).slice(0, 3));
  assert.deepEqual(rows.filter((r) => r[0] !== 'default'), [
    ['workspace.yml:8:9', 'rootfs: host', 'weaker'],
    ['workspace.yml:9:10', 'network: none', 'weaker'],
    ['workspace.yml:12:16', 'paths.read_write .', 'enforced'],
    ['workspace.yml:13:15', 'paths.read_only ./rootfs', 'refused'],
    ['workspace.yml:14:10', 'paths.deny ./.env', 'refused'],
    ['workspace.yml:14:18', 'paths.deny ./images/*', 'refused'],
  ]);
  // Each row says how, on the same line.
  assert.match(plan.out, /workspace\.yml:9:10 +network: none +weaker +no network namespace: Landlock refuses every TCP connect and bind/);
  assert.match(plan.out, /workspace\.yml:13:15 +paths\.read_only \.\/rootfs +refused +inside the writable .*: a Landlock rule gives its rights to everything beneath it/);
  assert.match(plan.out, /workspace\.yml:14:10 +paths\.deny \.\/\.env +refused +Landlock only allows: it cannot hide a path/);
  assert.deepEqual(rows.filter((r) => r[0] === 'default').map((r) => [r[1]!.replace(/ \(.*/, ''), r[2]]), [
    ['namespaces', 'weaker'], ['credentials hidden by default', 'weaker'], ['/dev, /proc, /sys', 'weaker'], ['no_new_privileges', 'enforced'], ['seccomp: default', 'enforced'],
  ]);
  assert.match(plan.out, /\(3 enforced, 5 weaker, 3 refused\)/);
  const refused = await reducedAs(u, ['up', '-q', '-T', file], { cwd: dir });
  assert.equal(refused.code, 2, refused.err);
  for (const at of ['13:15', '14:10', '14:18']) assert.match(refused.err, new RegExp(`workspace\\.yml:${at}: error: paths\\.(read_only|deny) .* cannot be held without user namespaces`));
  assert.equal(existsSync(join(u.runtimeDir, 'sandbox', 'workspace')), false);
  // Run with what can be held, and checked from inside: the folder writable, the home not, the sample's own command after.
  const script = `w() { printf "%s: " "$1"; ( echo x > "$2" ) 2>&1 | sed "s/.*: //" | tr -d "\\n"; echo; }; w here ${dir}/out.txt; w home ${u.home}/.sbx-new; w rootfs ${dir}/rootfs/x; echo "mounts: $(grep -c . /proc/self/mountinfo)"`;
  const ran = await reducedAs(u, ['up', '-q', '-T', '--allow-weaker', file, '--', '/bin/sh', '-c', script], { cwd: dir });
  assert.equal(ran.code, 0, ran.err);
  assert.match(ran.err, /warning: paths\.read_only \.\/rootfs cannot be held/);
  const out = said(ran.out);
  // ./rootfs is writable: the refused rule is not there (which is what the table said).
  assert.deepEqual([out.here, out.home, out.rootfs], ['', 'Permission denied', '']);
  assert.match(out.mounts!, /^\d+$/);
  assert.equal(existsSync(join(u.home, '.sbx-new')), false);
  // `sandbox run`, the docker-run-like command, takes --allow-weaker as up does.
  const run = ['run', '--rootfs', 'host', '-p', '127.0.0.1:18091:80', '--name', 'reduced-run'];
  const stopped = await reducedAs(u, [...run, 'sh', '-c', 'echo ran'], { cwd: dir });
  assert.equal(stopped.code, 2, stopped.err);
  assert.match(stopped.err, /command line:1:\d+: error: ports: 18091:80\/tcp cannot be held without user namespaces \(reduced mode\)/);
  assert.equal(stopped.out, '');
  const weaker = await reducedAs(u, [...run.slice(0, 1), '--allow-weaker', ...run.slice(1), '-q', 'sh', '-c', 'echo ran'], { cwd: dir });
  assert.equal(weaker.code, 0, weaker.err);
  assert.equal(weaker.out.trim(), 'ran');
  assert.equal(existsSync(join(u.runtimeDir, 'sandbox', 'reduced-run')), false);
  rmSync(dir, { recursive: true, force: true });
});

test('as root, a writable home: a start-up file it does not have cannot be created by the sandbox, and its placeholder is gone after', { timeout: 120_000 }, (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
  const dir = mkdtempSync('/var/tmp/sbx-home-');
  const home = join(dir, 'home');
  mkdirSync(home);
  writeFileSync(join(home, '.bashrc'), '# mine\n');
  const file = join(dir, 'sandbox.yml');
  const script = 'for f in .bashrc .profile .zshrc; do printf "%s: " "$$f"; ( echo "curl x | sh" >> ~/"$$f" ) 2>&1 | sed "s/.*: //" | tr -d "\\n"; echo; done; echo ok > ~/work.txt && echo "work: ok"';
  writeFileSync(file, ['version: 1', 'name: home-placeholders', 'rootfs: host', 'network: none', 'paths:', '  read_write: ["~/"]', `env: {HOME: ${home}}`, `command: [/bin/sh, -c, ${JSON.stringify(script)}]`, ''].join('\n'));
  try {
    const plan = sandbox(['plan', file], { env: { HOME: home } });
    assert.match(plan.out, new RegExp(`placeholder:${home}/\\.profile +make an empty file at ${home}/\\.profile, which does not exist yet, to keep read-only`));
    const r = sandbox(['up', '-q', '-T', file], { env: { HOME: home } });
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(said(r.out), { '.bashrc': 'Read-only file system', '.profile': 'Read-only file system', '.zshrc': 'Read-only file system', work: 'ok' });
    assert.equal(readFileSync(join(home, '.bashrc'), 'utf8'), '# mine\n');
    assert.equal(existsSync(join(home, '.profile')) || existsSync(join(home, '.zshrc')), false);
    assert.equal(readFileSync(join(home, 'work.txt'), 'utf8'), 'ok\n');
    assert.deepEqual(leftovers('home-placeholders'), []);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('reduced, detached: ps, exec and down work without a pid namespace; down ends what the command left in its session', { timeout: 180_000 }, async (t) => {
  if (!ready(t)) return;
  const u = makeUser('sbxr');
  const { file } = project(u, 'reduced-det', '', 'sleep 300 & exec sleep 301');
  const up = await reducedAs(u, ['up', '-q', '-d', file]);
  assert.equal(up.code, 0, up.err);
  assert.equal(up.out.trim(), 'reduced-det');
  const ps = await reducedAs(u, ['ps']);
  assert.match(ps.out, /reduced-det +running/);
  const ex = await reducedAs(u, ['exec', 'reduced-det', 'id', '-u']);
  assert.equal(ex.out.trim(), String(u.uid), ex.err);
  const sleeps = () => pidsOf(u.uid).filter((p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('sleep\0'); } catch { return false; } });
  assert.equal(sleeps().length, 2);
  // An exec'd command leads a session of its own, out of the sandbox's, and leaves a child in it: down ends both.
  const running = reducedAs(u, ['exec', 'reduced-det', 'sh', '-c', 'sleep 302 & exec sleep 303']);
  for (let i = 0; i < 500 && sleeps().length < 4; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(sleeps().length, 4);
  const sids = new Set(sleeps().map((p) => { const st = readFileSync(`/proc/${p}/stat`, 'utf8'); return st.slice(st.lastIndexOf(')') + 2).split(' ')[3]; }));
  assert.equal(sids.size, 2, 'the exec\'d command has a session of its own');
  const top = await reducedAs(u, ['top', 'reduced-det']);
  assert.equal(top.out.split('\n').filter((l) => / sleep 30[0-3]$/.test(l)).length, 4, top.out);
  const down = await reducedAs(u, ['down', 'reduced-det']);
  assert.equal(down.code, 0, down.err);
  assert.deepEqual(sleeps(), []);
  const ended = await running;
  assert.equal(ended.code, 137, ended.err);
  assert.equal(existsSync(join(u.runtimeDir, 'sandbox', 'reduced-det')), false);
});

test('reduced, an egress of ports only: Landlock lets TCP connect only to those ports (the rest is refused before it leaves)', { timeout: 180_000 }, async (t) => {
  if (!ready(t) || !needs(t, 'Landlock ABI 4 (TCP ports)', landlockAbi >= 4)) return;
  const u = makeUser('sbxr');
  const connect = (port: number) => `echo "p${port}: $(python3 -c "import socket\ntry:\n  socket.create_connection(('127.0.0.1', ${port}), 2); print('connected')\nexcept OSError as e: print(e.strerror)")"`;
  const { file } = project(u, 'reduced-egress', 'network:\n  mode: private\n  egress:\n    - allow 0.0.0.0/0:443', [connect(443), connect(9)].join('\n'));
  const plan = await reducedAs(u, ['plan', file]);
  assert.match(plan.out, /landlock .*TCP connect only to ports 443/);
  assert.match(plan.out, /network\.egress +weaker +Landlock holds TCP connect to ports 443/);
  const r = await reducedAs(u, ['up', '-q', '-T', file]);
  assert.equal(r.code, 0, r.err);
  // Nothing listens on either: 443 is let through (refused by the host), 9 is refused by Landlock.
  assert.deepEqual(said(r.out), { p443: 'Connection refused', p9: 'Permission denied' });
});
