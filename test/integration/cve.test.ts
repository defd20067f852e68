// Known container escapes, each run as an attack from inside a sandbox (or against one), with
// what the host must still look like afterwards:
//   CVE-2019-5736   a process inside opens /proc/PID/exe of a process entering with `exec`
//   CVE-2024-21626  a host descriptor or the host's cwd reaching the command (up and exec)
//   CVE-2021-30465  a mount target that is a symlink out of the root
//   CVE-2025-31133  a masked path hidden under something that is not the null device
//   CVE-2022-0492   cgroup v1 release_agent reachable from inside
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, hasBusyboxRoot, hasEngine, isRoot, leftovers, needs, sandbox } from '../helpers/sandbox';
import { ROOT } from '../helpers/load';

const ready = (t: import('node:test').TestContext) => needs(t, 'root', isRoot) && needs(t, 'the native engine', hasEngine)
  && needs(t, 'the busybox root (apt-get install busybox-static)', hasBusyboxRoot);

/** A folder with a copy of the busybox root and a config file in it; `extra` lines are appended. */
function box(name: string, extra: string[] = []): { dir: string; file: string; root: string } {
  const dir = mkdtempSync(join(tmpdir(), `sbx-${name}-`));
  const root = join(dir, 'root');
  execFileSync('cp', ['-a', join(ROOT, 'samples/rootfs/busybox'), root]);
  const file = join(dir, `${name}.yml`);
  writeFileSync(file, ['version: 1', `name: ${name}`, 'rootfs: {type: dir, path: ./root}', 'network: none', ...extra, ''].join('\n'));
  return { dir, file, root };
}

const hostMounts = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((p) => p && !p.startsWith('/run/sandbox/')).sort().join('\n');
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('CVE-2019-5736: a process entering with exec is not dumpable until it execs: its /proc/PID/exe, cwd and fds cannot be opened from inside', async (t) => {
  if (!ready(t)) return;
  const b = box('cve-5736', ['detach: true', 'init: true', 'command: [sleep, "3600"]']);
  t.after(() => { sandbox(['down', 'cve-5736']); rmSync(b.dir, { recursive: true, force: true }); });
  assert.equal(sandbox(['up', '-q', b.file]).code, 0);
  // The attacker, root inside: waits for a stopped process (the entering one, stopped by the
  // test-only switch just before its exec, after its capabilities and filter are set), tries
  // the CVE's first move on it, then lets it go on.
  const attack = [
    'echo ready',
    'i=0; while [ $i -lt 2000 ]; do i=$((i+1))',
    '  for s in /proc/[0-9]*/stat; do read -r p c st rest < $s 2>/dev/null || continue',
    '    [ "$st" = T ] || continue',
    // In a subshell: a shell whose exec redirection fails exits.
    '    if (exec 3</proc/$p/exe) 2>/dev/null; then echo "exe-open ok"; else echo "exe-open denied"; fi',
    '    if (exec 4<>/proc/$p/exe) 2>/dev/null; then echo "exe-write ok"; else echo "exe-write denied"; fi',
    '    if ls /proc/$p/cwd/ >/dev/null 2>&1; then echo "cwd ok"; else echo "cwd denied"; fi',
    '    if (exec 5</proc/$p/fd/0) 2>/dev/null; then echo "fd ok"; else echo "fd denied"; fi',
    '    kill -CONT $p; exit 0',
    '  done; usleep 5000',
    'done; echo "no stopped process"',
  ].join('\n');
  const attacker = spawn(process.execPath, [BIN, 'exec', 'cve-5736', 'sh', '-c', attack], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  attacker.stdout.on('data', (d) => { out += d; });
  const attackerDone = new Promise((r) => attacker.on('exit', r));
  for (let i = 0; i < 400 && !out.includes('ready'); i++) await wait(25);
  const victim = spawn(process.execPath, [BIN, 'exec', 'cve-5736', 'true'], { cwd: ROOT, stdio: 'ignore', env: { ...process.env, SANDBOX_TEST_PAUSE_AT: 'exec' } });
  const victimCode = new Promise<number | null>((r) => victim.on('exit', (c) => r(c)));
  t.after(() => { victim.kill('SIGKILL'); attacker.kill('SIGKILL'); });
  await attackerDone;
  // A victim left stopped would never end: it goes with its CLI (parent-death signals).
  const timer = setTimeout(() => victim.kill('SIGKILL'), 20_000);
  const code = await victimCode;
  clearTimeout(timer);
  assert.equal(code, 0, `the entering process did not go on after SIGCONT; the attacker said:\n${out}`);
  assert.deepEqual(out.trim().split('\n'), ['ready', 'exe-open denied', 'exe-write denied', 'cwd denied', 'fd denied']);
  assert.equal(sandbox(['down', 'cve-5736']).code, 0);
  assert.deepEqual(leftovers('cve-5736'), []);
});

test('CVE-2024-21626: no host descriptor and no host cwd reaches the command, through up or exec', async (t) => {
  if (!ready(t)) return;
  const b = box('cve-21626', ['detach: true', 'init: true', 'command: [sleep, "3600"]']);
  const secret = join(b.dir, 'host-only');
  mkdirSync(secret);
  writeFileSync(join(secret, 'marker'), 'host\n');
  t.after(() => { sandbox(['down', 'cve-21626']); rmSync(b.dir, { recursive: true, force: true }); });
  // What the command sees of its descriptors and cwd; and whether it can climb from either.
  writeFileSync(join(b.root, 'look.sh'), [
    'cd /',
    // What a fresh process the command starts holds, through a file: in a pipeline the shell
    // itself holds the pipe, and a shell's builtin ls would list the copies the shell keeps of
    // its own stdio while it redirects.
    '(exec ls -l /proc/self/fd/) > /tmp/fds; awk \'NF > 9 { print "fd", $9, $11 }\' /tmp/fds',
    'echo "cwd $(readlink /proc/self/cwd)"',
    'for f in /proc/$$/fd/*; do [ -e "$f/../host-only/marker" ] && echo "escaped via $f"; done',
    '[ -e /proc/1/cwd/host-only/marker ] && echo "escaped via cwd"',
    'echo done', ''].join('\n'));
  // The CLI runs with its cwd in the host folder and four extra descriptors open on host paths.
  const fds = [openSync(secret, 'r'), openSync(join(secret, 'marker'), 'r'), openSync(b.dir, 'r'), openSync('/', 'r')];
  t.after(() => fds.forEach((fd) => { try { closeSync(fd); } catch { /* closed */ } }));
  const runIn = (args: string[]) => new Promise<string>((resolve) => {
    const c = spawn(process.execPath, [BIN, ...args], { cwd: secret, stdio: ['ignore', 'pipe', 'inherit', ...fds] });
    let o = '';
    c.stdout!.on('data', (d) => { o += d; });
    c.on('exit', () => resolve(o));
  });
  const plain = box('cve-21626-up', ['command: [sh, /look.sh]']);
  execFileSync('cp', [join(b.root, 'look.sh'), join(plain.root, 'look.sh')]);
  t.after(() => rmSync(plain.dir, { recursive: true, force: true }));
  for (const out of [await runIn(['up', '-q', plain.file]), (sandbox(['up', '-q', b.file]), await runIn(['exec', 'cve-21626', 'sh', '/look.sh']))]) {
    const lines = out.trim().split('\n');
    assert.equal(lines.at(-1), 'done', out);
    assert.deepEqual(lines.filter((l) => l.startsWith('escaped')), [], out);
    assert.equal(lines.find((l) => l.startsWith('cwd ')), 'cwd /', out);
    // 0-2 are the caller's stdio, as docker run gives them; ls holds the folder it lists.
    const fdLines = lines.filter((l) => l.startsWith('fd '));
    assert.ok(fdLines.length >= 3, out);
    for (const l of fdLines) assert.ok(/^fd [012] /.test(l) || /^fd \d+ \/proc\/\d+\/fd$/.test(l), `a descriptor reached the command: ${l}`);
    assert.ok(!out.includes(b.dir), out);
  }
  assert.equal(sandbox(['down', 'cve-21626']).code, 0);
  assert.deepEqual(leftovers('cve-21626'), []);
  assert.deepEqual(leftovers('cve-21626-up'), []);
});

test('CVE-2021-30465: a volume target that is a symlink out of the root lands inside the root, never on the host', (t) => {
  if (!ready(t)) return;
  const b = box('cve-30465', ['volumes: [./data:/evil-abs/x, ./data:/evil-rel/y, ./data:/evil-dots/z]', 'command: [sh, -c, "cat /x/f /y/f /z/f"]']);
  t.after(() => rmSync(b.dir, { recursive: true, force: true }));
  mkdirSync(join(b.dir, 'data'));
  writeFileSync(join(b.dir, 'data', 'f'), 'volume\n');
  const outside = join(b.dir, 'outside');
  mkdirSync(outside);
  // Absolute, relative-climbing and deep-climbing symlinks, all meaning "out of the root".
  symlinkSync('/', join(b.root, 'evil-abs'));
  symlinkSync('../../../../../../../', join(b.root, 'evil-rel'));
  symlinkSync('../../../bin/../../../../', join(b.root, 'evil-dots'));
  const before = hostMounts();
  const onHost = () => ['/x', '/y', '/z', join(outside, 'x')].map((p) => existsSync(p));
  const hostBefore = onHost();
  const r = sandbox(['up', '-q', b.file]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, 'volume\nvolume\nvolume\n');
  // The mount points were made inside the root, at /x, /y and /z, and nothing at the host's.
  for (const p of ['x', 'y', 'z']) assert.ok(existsSync(join(b.root, p)), `${p} is not in the root`);
  assert.deepEqual(onHost(), hostBefore);
  assert.equal(hostMounts(), before);
  assert.deepEqual(leftovers('cve-30465'), []);
});

test('CVE-2025-31133: a masked path is hidden only under the real null device; anything else at /dev/null is refused', (t) => {
  if (!ready(t)) return;
  const b = box('cve-31133', ['volumes: [./not-null:/dev/null]', 'command: [sh, -c, "head -c 20 /proc/kcore; echo ran"]']);
  t.after(() => rmSync(b.dir, { recursive: true, force: true }));
  writeFileSync(join(b.dir, 'not-null'), 'a writable host file\n');
  const before = hostMounts();
  const r = sandbox(['up', '-q', b.file]);
  assert.equal(r.code, 125, `${r.out}\n${r.err}`);
  assert.match(r.err, /hide \/proc\/acpi|hide \/proc\/\w+/);
  assert.match(r.err, /the sandbox's \/dev\/null is not the null device \(character device 1:3\)/);
  assert.ok(!r.out.includes('ran'));
  assert.equal(readFileSync(join(b.dir, 'not-null'), 'utf8'), 'a writable host file\n');
  assert.equal(hostMounts(), before);
  assert.deepEqual(leftovers('cve-31133'), []);
});

test('CVE-2022-0492: root inside cannot reach a release_agent: no cgroup mount, no new user namespace, cgroup files read-only', (t) => {
  if (!ready(t)) return;
  const agents = ['/sys/fs/cgroup/memory/release_agent', '/sys/fs/cgroup/pids/release_agent', '/sys/fs/cgroup/rdma/release_agent'].filter(existsSync);
  const was = agents.map((a) => readFileSync(a, 'utf8'));
  const b = box('cve-0492', ['command: [sh, /attack.sh]']);
  t.after(() => rmSync(b.dir, { recursive: true, force: true }));
  writeFileSync(join(b.root, 'attack.sh'), [
    'mkdir -p /tmp/cg',
    'for c in rdma memory pids; do mount -t cgroup -o $c cgroup /tmp/cg 2>/dev/null && echo "mounted $c"; done',
    'unshare -UrmC true 2>/dev/null && echo "unshared a user namespace"',
    'unshare -m true 2>/dev/null && echo "unshared a mount namespace"',
    'for f in $(find /sys/fs/cgroup -name release_agent -o -name notify_on_release 2>/dev/null); do echo x 2>/dev/null > $f && echo "wrote $f"; done',
    'echo $$ 2>/dev/null > /sys/fs/cgroup/cgroup.procs && echo "wrote cgroup.procs"',
    'echo done',
  ].join('\n'));
  const r = sandbox(['up', '-q', b.file]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, 'done\n');
  assert.deepEqual(agents.map((a) => readFileSync(a, 'utf8')), was);
  assert.deepEqual(leftovers('cve-0492'), []);
});
