// Isolation read from inside: for each runnable sample and for a config that uses every key, the
// sandbox's own view (/proc/self/status, mountinfo, cgroup files, id, hostname, /dev, rlimits)
// must match its plan step by step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cgroupLayout, hasBusyboxRoot, hasEngine, isRoot, leftovers, needs, sandbox } from '../helpers/sandbox';
import { cgroupFiles, mismatches, parseProbe, PROBE } from './inside';
import type { Plan } from '../../src/plan/types';

const cases = [
  { file: 'samples/limits.yml', name: 'limits' },
  { file: 'samples/locked-down.yml', name: 'locked-down' },
  { file: 'samples/busybox.yml', name: 'busybox', busybox: true },
  { file: 'test/integration/fixtures/every-key.yml', name: 'every-key' },
];

for (const c of cases) {
  test(`isolation from inside matches the plan: ${c.file}`, (t) => {
    if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine (npm run build)', hasEngine)) return;
    if (c.busybox && !needs(t, 'the busybox root (apt-get install busybox-static)', hasBusyboxRoot)) return;
    const planOut = sandbox(['plan', '--json', c.file]);
    assert.equal(planOut.code, 0, planOut.err);
    const plan = JSON.parse(planOut.out) as Plan;
    const layout = cgroupLayout();
    const script = `CGFILES='${cgroupFiles(plan, layout)}'\n${PROBE}`;
    // -T: busybox.yml asks for a terminal with stdin open, which a pipe cannot give (the probe needs none).
    const r = sandbox(['up', '-q', ...(c.busybox ? ['-T'] : []), c.file, '--', '/bin/sh', '-c', script]);
    assert.equal(r.code, 0, `exit ${r.code}\n${r.err}\n${r.out}`);
    const inside = parseProbe(r.out);
    const bad = mismatches(plan, inside, layout);
    assert.deepEqual(bad, [], `${bad.length} mismatches with the plan:\n${bad.join("\n")}\n--- probe output ---\n${r.out}`);
    assert.deepEqual(leftovers(c.name), []);
  });
}

test('every-key: environment, volumes and sysctls from inside', (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
  const f = 'test/integration/fixtures/every-key.yml';
  const r = sandbox(['up', '-q', f, '--', '/bin/sh', '-c', [
    'echo "env $GREETING $FROM_FILE $HOSTNAME"',
    'cat /data/file.txt',
    'touch /data/x 2>/dev/null && echo data-writable || echo data-readonly',
    'touch /work/x && echo work-writable',
    'touch /etc/x 2>/dev/null && echo etc-writable || echo etc-readonly',
    'cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni',
    'wc -c < /proc/cpuinfo',
    'ls -l /dev/fuse | cut -c1',
    'cat /proc/self/uid_map',
  ].join('; ')]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(r.out.trim().split('\n'), ['env hello yes every-key-box', 'read-only data', 'data-readonly', 'work-writable', 'etc-readonly', '1024', '1024', '0', 'c', '         0     200000      65536']);
});

test('exit codes: the command\'s own, 127 not found, 126 not executable, 128+signal with init', (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
  assert.equal(sandbox(['up', '-q', 'samples/limits.yml', '--', '/bin/sh', '-c', 'exit 7']).code, 7);
  const nf = sandbox(['up', '-q', 'samples/limits.yml', '--', 'no-such-command']);
  assert.equal(nf.code, 127);
  assert.match(nf.err, /cannot run the command: exec .*: no such file or directory \(ENOENT\)/);
  assert.equal(sandbox(['up', '-q', 'samples/limits.yml', '--', '/etc/passwd']).code, 126);
  assert.deepEqual(leftovers('limits'), []);
});

test('an OOM kill exits 137 and names the memory limit and its line', (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
  const r = sandbox(['up', '-q', 'test/integration/fixtures/oom.yml']);
  assert.equal(r.code, 137, r.err);
  assert.match(r.err, /killed by the kernel's OOM killer: it reached its memory limit of 33554432 bytes \(test\/integration\/fixtures\/oom\.yml:7:11\)/);
  assert.deepEqual(leftovers('oom-test'), []);
});

test('signals are forwarded: with init, SIGTERM to the CLI ends the command with 143', async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
  const { spawn } = await import('node:child_process');
  const { BIN } = await import('../helpers/sandbox');
  const child = spawn(process.execPath, [BIN, 'up', '-q', 'test/integration/fixtures/init.yml'], { stdio: 'ignore' });
  t.after(() => { child.kill('SIGKILL'); });
  // Wait until the command runs (a process in the sandbox's cgroup): the VM is ten times slower.
  for (let i = 0; i < 300 && !leftovers('init-test').some((l) => l.startsWith('process')); i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 100));
  child.kill('SIGTERM');
  const code = await new Promise((r) => child.on('exit', (c) => r(c)));
  assert.equal(code, 143);
  assert.deepEqual(leftovers('init-test'), []);
});

test('tty: true gives the command a terminal of its own devpts; ps shows /bin/sh as PID 1', async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine) || !needs(t, 'the busybox root', hasBusyboxRoot)) return;
  const { spawnSync } = await import('node:child_process');
  const { BIN } = await import('../helpers/sandbox');
  // busybox.yml is `docker run -it`: from a pipe it is refused; script(1) gives the CLI a real terminal.
  assert.equal(sandbox(['up', '-q', 'samples/busybox.yml'], { input: 'exit 4\n' }).code, 1);
  const s = spawnSync('script', ['-qec', `${process.execPath} ${BIN} up -q samples/busybox.yml`, '/dev/null'], { encoding: 'utf8', input: 'tty; ps -o pid,args; readlink /proc/self/fd/0; exit 4\n', timeout: 60_000 });
  const r = { code: s.status, out: (s.stdout ?? '').replace(/\r/g, ''), err: s.stderr };
  assert.equal(r.code, 4, r.err);
  const out = r.out.split('\n').map((l) => l.trim());
  assert.ok(out.includes('/dev/pts/0'), r.out);
  assert.ok(out.some((l) => /^1 \/bin\/sh$/.test(l)), r.out);
  assert.deepEqual(leftovers('busybox'), []);
});

test('device read/write bps and iops limits, read from inside on a loop device the test makes', async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
  const { execFileSync } = await import('node:child_process');
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'sandbox-loop-'));
  execFileSync('truncate', ['-s', '8M', join(dir, 'disk')]);
  try { execFileSync('modprobe', ['loop'], { stdio: 'ignore' }); } catch { /* built in */ }
  const dev = execFileSync('losetup', ['-f', '--show', join(dir, 'disk')], { encoding: 'utf8' }).trim();
  try {
    const majmin = readFileSync(`/sys/block/${dev.split('/').pop()}/dev`, 'utf8').trim();
    const files = cgroupLayout() === 'v2' ? 'io.max' : 'blkio/blkio.throttle.read_bps_device blkio/blkio.throttle.write_bps_device blkio/blkio.throttle.read_iops_device blkio/blkio.throttle.write_iops_device';
    const r = sandbox(['up', '-q', 'test/integration/fixtures/device-limits.yml', '--', '/bin/sh', '-c', `for f in ${files}; do cat /sys/fs/cgroup/$f; done`], { env: { LOOPDEV: dev } });
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trim().split('\n');
    if (cgroupLayout() === 'v2') assert.ok(lines.includes(`${majmin} rbps=1048576 wbps=2097152 riops=100 wiops=200`), r.out);
    else assert.deepEqual(lines, [`${majmin} 1048576`, `${majmin} 2097152`, `${majmin} 100`, `${majmin} 200`]);
    assert.deepEqual(leftovers('device-limits'), []);
  } finally {
    execFileSync('losetup', ['-d', dev]);
    rmSync(dir, { recursive: true, force: true });
  }
});
