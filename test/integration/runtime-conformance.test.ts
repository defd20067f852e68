// What the runtime-tools validation suite asks of sandbox-runtime, read from inside the container
// and from the hooks' own output: the five capability sets as config.json names them, /dev/mqueue
// and /dev/shm as runc mounts them, process.oomScoreAdj, and the hooks (prestart, poststart,
// poststop) run in order with the container's state on stdin; a failing prestart hook fails
// create and leaves nothing. Bundles are `runc spec`'s config.json over the busybox root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/load';
import { hasBusyboxRoot, hasEngine, isRoot, leftovers, needs } from '../helpers/sandbox';

const RUNTIME = join(ROOT, 'bin/sandbox-runtime');
const BUSYBOX = join(ROOT, 'samples/rootfs/busybox');
const ready = (t: Parameters<typeof needs>[0]) => needs(t, 'root', isRoot) && needs(t, 'the native engine', hasEngine) && needs(t, 'the busybox root (busybox-static)', hasBusyboxRoot);

function bundle(dir: string, script: string, change: (c: Record<string, any>) => void): string {
  const b = join(dir, 'bundle');
  mkdirSync(b);
  const c = JSON.parse(readFileSync(join(ROOT, 'test/unit/fixtures/oci/runc-spec.json'), 'utf8'));
  c.ociVersion = '1.3.0';
  c.root.path = BUSYBOX;
  c.process.terminal = false;
  c.process.args = ['sh', '-c', script];
  change(c);
  writeFileSync(join(b, 'config.json'), JSON.stringify(c, null, '\t'));
  return b;
}

/** One runtime command, its stdout and stderr files the container inherits (as runtime-tools gives them). */
function rt(dir: string, args: string[]) {
  const o = openSync(join(dir, 'ctr.out'), 'a');
  const e = openSync(join(dir, 'rt.err'), 'a');
  try {
    const r = spawnSync(RUNTIME, ['--root', join(dir, 'root'), ...args], { stdio: ['ignore', o, e], timeout: 30_000 });
    return r.status;
  } finally { closeSync(o); closeSync(e); }
}

/** A capability set as /proc/PID/status shows it. */
const mask = (nums: number[]) => nums.reduce((m, n) => m | (1n << BigInt(n)), 0n).toString(16).padStart(16, '0');
const CAP = { KILL: 5, NET_BIND_SERVICE: 10, NET_RAW: 13, AUDIT_WRITE: 29 };

test('root: the five capability sets, /dev/mqueue and /dev/shm, the OOM score, and the hooks with the state on stdin, in order', async (t) => {
  if (!ready(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'sbx-rtc-'));
  const id = `rtc-${process.pid}`;
  const hook = (name: string) => ({ path: join(BUSYBOX, 'bin/sh'), args: ['sh', '-c', `cat > ${join(dir, name)}; echo ${name} >> ${join(dir, 'order')}`], timeout: 5 });
  try {
    const caps = ['CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW'];
    const b = bundle(dir, 'grep -E "^Cap(Inh|Prm|Eff|Bnd|Amb):" /proc/self/status; cat /proc/self/oom_score_adj; grep -E " /dev/(mqueue|shm) " /proc/self/mountinfo', (c) => {
      c.process.capabilities = { bounding: caps, effective: caps, permitted: caps, inheritable: caps, ambient: ['CAP_NET_RAW'] };
      c.process.oomScoreAdj = 500;
      c.annotations = { 'org.example': 'yes' };
      c.hooks = { prestart: [hook('prestart')], poststart: [hook('poststart')], poststop: [hook('poststop')] };
    });
    assert.equal(rt(dir, ['create', '--bundle', b, id]), 0, readFileSync(join(dir, 'rt.err'), 'utf8'));
    const created = JSON.parse(readFileSync(join(dir, 'prestart'), 'utf8'));
    assert.deepEqual([created.id, created.status, created.bundle, created.annotations], [id, 'created', b, { 'org.example': 'yes' }]);
    assert.ok(created.pid > 0 && existsSync(`/proc/${created.pid}`));
    assert.equal(rt(dir, ['start', id]), 0);
    const running = JSON.parse(readFileSync(join(dir, 'poststart'), 'utf8'));
    assert.deepEqual([running.status, running.pid], ['running', created.pid]);
    for (let i = 0; i < 250 && existsSync(`/proc/${created.pid}`) && !/^[0-9]+ .*\(sh\) Z/.test(readFileSync(`/proc/${created.pid}/stat`, 'utf8')); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(rt(dir, ['delete', id]), 0, readFileSync(join(dir, 'rt.err'), 'utf8'));
    assert.equal(JSON.parse(readFileSync(join(dir, 'poststop'), 'utf8')).id, id);
    assert.equal(readFileSync(join(dir, 'order'), 'utf8'), 'prestart\npoststart\npoststop\n');
    // From inside: root holds bounding | inheritable after exec, and the ambient set it was given.
    const seen = readFileSync(join(dir, 'ctr.out'), 'utf8');
    const all = mask([CAP.KILL, CAP.NET_BIND_SERVICE, CAP.NET_RAW]);
    for (const [set, want] of [['Inh', all], ['Prm', all], ['Eff', all], ['Bnd', all], ['Amb', mask([CAP.NET_RAW])]]) assert.match(seen, new RegExp(`^Cap${set}:\\s+${want}$`, 'm'), `Cap${set} in\n${seen}`);
    assert.match(seen, /^500$/m);
    assert.match(seen, / \/dev\/mqueue \S+ .*- mqueue mqueue /);
    assert.match(seen, / \/dev\/shm \S+ .*- tmpfs shm /);
    assert.deepEqual(leftovers(id), []);
  } finally {
    rt(dir, ['delete', '--force', id]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('another uid holds its ambient set; a failing prestart hook fails create and leaves nothing', (t) => {
  if (!ready(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'sbx-rtc-'));
  const id = `rtc2-${process.pid}`;
  try {
    const caps = ['CAP_KILL', 'CAP_NET_BIND_SERVICE', 'CAP_AUDIT_WRITE'];
    const amb = ['CAP_NET_BIND_SERVICE'];
    const b = bundle(dir, 'id -u; grep -E "^Cap(Inh|Prm|Eff|Amb):" /proc/self/status', (c) => {
      c.process.user = { uid: 1000, gid: 1000 };
      c.process.capabilities = { bounding: caps, effective: amb, permitted: amb, inheritable: caps, ambient: amb };
    });
    assert.equal(rt(dir, ['run', '--bundle', b, id]), 0, readFileSync(join(dir, 'rt.err'), 'utf8'));
    const seen = readFileSync(join(dir, 'ctr.out'), 'utf8');
    assert.match(seen, /^1000$/m);
    const a = mask([CAP.NET_BIND_SERVICE]);
    for (const [set, want] of [['Inh', mask([CAP.KILL, CAP.NET_BIND_SERVICE, CAP.AUDIT_WRITE])], ['Prm', a], ['Eff', a], ['Amb', a]]) assert.match(seen, new RegExp(`^Cap${set}:\\s+${want}$`, 'm'), `Cap${set} in\n${seen}`);
    assert.deepEqual(leftovers(id), []);

    rmSync(b, { recursive: true });
    // The container's /out is the test's folder: a process that ran would leave /out/ran there.
    const fail = bundle(dir, 'touch /out/ran', (c) => {
      c.hooks = { prestart: [{ path: join(BUSYBOX, 'bin/false'), args: ['false'] }] };
      c.mounts.push({ destination: '/out', type: 'bind', source: dir, options: ['rbind', 'rw'] });
    });
    assert.equal(rt(dir, ['create', '--bundle', fail, id]), 1);
    assert.match(readFileSync(join(dir, 'rt.err'), 'utf8'), /prestart hook 0 \(.*\/bin\/false\) exited with status 1/);
    assert.ok(!existsSync(join(dir, 'root', id)), 'no record of the container');
    assert.ok(!existsSync(join(dir, 'ran')), 'its process never ran');
    assert.deepEqual(leftovers(id), []);
  } finally {
    rt(dir, ['delete', '--force', id]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('linux.rootfsPropagation and mount propagation, read in the container\'s mountinfo and by what a mount made inside reaches', (t) => {
  if (!ready(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'sbx-rtc-'));
  const id = `rtc3-${process.pid}`;
  const admin = (c: Record<string, any>) => {
    const caps = ['CAP_SYS_ADMIN'];
    c.process.capabilities = { bounding: caps, effective: caps, permitted: caps };
    c.mounts.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=1m', 'shared'] });
    c.mounts.push({ destination: '/var', source: dir, options: ['rbind', 'runbindable'] });
  };
  // A bind of / at /tmp/r, then a tmpfs on /home: with a shared root the tmpfs shows at /tmp/r/home too.
  const script = 'awk \'$5 == "/" || $5 == "/tmp" || $5 == "/var"\' /proc/self/mountinfo; mkdir /tmp/r; mount --bind / /tmp/r || echo bind-refused; mount -t tmpfs x /home && touch /home/seen; ls /tmp/r/home/seen 2>/dev/null && echo propagated; true';
  try {
    const shared = bundle(dir, script, (c) => { admin(c); c.linux.rootfsPropagation = 'shared'; });
    assert.equal(rt(dir, ['run', '--bundle', shared, id]), 0, readFileSync(join(dir, 'rt.err'), 'utf8'));
    let seen = readFileSync(join(dir, 'ctr.out'), 'utf8');
    const line = (point: string) => seen.split('\n').find((l) => l.split(' ')[4] === point) ?? '';
    assert.match(line('/'), / shared:[0-9]+ /, seen);
    assert.match(line('/tmp'), / shared:[0-9]+ (.* )?- tmpfs tmpfs /, seen);
    assert.doesNotMatch(line('/tmp').split(' ')[5]!, /relatime|noatime/, 'strictatime');
    assert.match(line('/var'), / unbindable /, seen);
    assert.match(seen, /^propagated$/m);
    assert.deepEqual(leftovers(id), []);

    rmSync(shared, { recursive: true });
    rmSync(join(dir, 'ctr.out'));
    const unbindable = bundle(dir, script, (c) => { admin(c); c.linux.rootfsPropagation = 'unbindable'; });
    assert.equal(rt(dir, ['run', '--bundle', unbindable, id]), 0, readFileSync(join(dir, 'rt.err'), 'utf8'));
    seen = readFileSync(join(dir, 'ctr.out'), 'utf8');
    assert.match(line('/'), / unbindable /, seen);
    assert.match(seen, /^bind-refused$/m);
    assert.doesNotMatch(seen, /^propagated$/m);
    assert.deepEqual(leftovers(id), []);
  } finally {
    rt(dir, ['delete', '--force', id]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('namespaces joined by path (mount, pid, ipc, uts): the container\'s /proc/self/ns links are the joined ones; the host\'s own mount namespace is refused', async (t) => {
  if (!ready(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'sbx-rtc-'));
  const id = `rtc4-${process.pid}`;
  // The namespaces' holder: unshare's child, PID 1 of the new pid namespace, waiting.
  const holder = spawn('unshare', ['--mount', '--pid', '--ipc', '--uts', '--fork', 'sleep', '1000'], { stdio: 'ignore', detached: true });
  try {
    let target = 0;
    for (let i = 0; i < 100 && !target; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const kids = readFileSync(`/proc/${holder.pid}/task/${holder.pid}/children`, 'utf8').trim();
      if (kids) target = Number(kids.split(' ')[0]);
    }
    assert.ok(target > 0, 'unshare forked its child');
    const paths: Record<string, string> = { mount: `/proc/${target}/ns/mnt`, pid: `/proc/${target}/ns/pid`, ipc: `/proc/${target}/ns/ipc`, uts: `/proc/${target}/ns/uts` };
    const b = bundle(dir, 'for n in mnt pid ipc uts; do echo "$n $(readlink /proc/self/ns/$n)"; done; hostname', (c) => {
      c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) => (paths[n.type] ? { type: n.type, path: paths[n.type] } : n));
      c.hostname = 'joined';
    });
    assert.equal(rt(dir, ['run', '--bundle', b, id]), 0, readFileSync(join(dir, 'rt.err'), 'utf8'));
    const seen = readFileSync(join(dir, 'ctr.out'), 'utf8');
    for (const n of ['mnt', 'pid', 'ipc', 'uts']) assert.match(seen, new RegExp(`^${n} ${readlinkSync(`/proc/${target}/ns/${n}`).replace(/[[\]]/g, '\\$&')}$`, 'm'), seen);
    assert.notEqual(readlinkSync(`/proc/${target}/ns/mnt`), readlinkSync('/proc/self/ns/mnt'));
    // The hostname is set in the joined uts namespace, where its holder sees it.
    assert.match(seen, /^joined$/m);
    assert.equal(spawnSync('nsenter', ['-t', String(target), '-u', 'hostname'], { encoding: 'utf8' }).stdout.trim(), 'joined');
    assert.deepEqual(leftovers(id), []);

    rmSync(b, { recursive: true });
    // The host's own mount namespace (this test's): the root would be pivoted for the whole host.
    const own = `/proc/${process.pid}/ns/mnt`;
    const host = bundle(dir, 'true', (c) => { c.linux.namespaces = c.linux.namespaces.map((n: { type: string }) => (n.type === 'mount' ? { type: 'mount', path: own } : n)); });
    assert.equal(rt(dir, ['run', '--bundle', host, id]), 1);
    assert.match(readFileSync(join(dir, 'rt.err'), 'utf8'), new RegExp(`${own} is the host's own mount namespace`));
    assert.deepEqual(leftovers(id), []);
  } finally {
    rt(dir, ['delete', '--force', id]);
    try { process.kill(-holder.pid!, 'SIGKILL'); } catch { /* gone */ }
    rmSync(dir, { recursive: true, force: true });
  }
});

test('linux.devices: nodes made by their numbers, mode and owner, read with ls -l from inside; a made node opens while /dev stays nodev', (t) => {
  if (!ready(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'sbx-rtc-'));
  const id = `rtc5-${process.pid}`;
  try {
    const b = bundle(dir, 'ls -ln /dev/test1 /dev/test2 /dev/test3 /dev/mynull; echo x > /dev/mynull && echo opened; awk \'$5 == "/dev"\' /proc/self/mountinfo', (c) => {
      c.linux.devices = [
        { path: '/dev/test1', type: 'c', major: 10, minor: 666, fileMode: 0o660, uid: 0, gid: 5 },
        { path: '/dev/test2', type: 'b', major: 8, minor: 666, fileMode: 0o600 },
        { path: '/dev/test3', type: 'p', fileMode: 0o640 },
        { path: '/dev/mynull', type: 'c', major: 1, minor: 3, fileMode: 0o666 },
      ];
    });
    assert.equal(rt(dir, ['run', '--bundle', b, id]), 0, readFileSync(join(dir, 'rt.err'), 'utf8'));
    const seen = readFileSync(join(dir, 'ctr.out'), 'utf8');
    assert.match(seen, /^crw-rw---- +1 0 +5 +10, 666 .* \/dev\/test1$/m, seen);
    assert.match(seen, /^brw------- +1 0 +0 +8, 666 .* \/dev\/test2$/m, seen);
    assert.match(seen, /^prw-r----- +1 0 +0 +0 .* \/dev\/test3$/m, seen);
    assert.match(seen, /^crw-rw-rw- +1 0 +0 +1, +3 .* \/dev\/mynull$/m, seen);
    assert.match(seen, /^opened$/m);
    // /dev itself stays nodev: a node made there by the container's own mknod cannot be opened.
    assert.match(seen.split('\n').find((l) => l.split(' ')[4] === '/dev') ?? '', / [^ ]*nodev[^ ]* /, seen);
    assert.deepEqual(leftovers(id), []);
  } finally {
    rt(dir, ['delete', '--force', id]);
    rmSync(dir, { recursive: true, force: true });
  }
});
