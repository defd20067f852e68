// Rootless runs, as users the test makes (and removes): the user namespace and its maps, seen from
// inside; a caller without subordinate ranges; the lifecycle of detached sandboxes; that one user
// can never see, exec into, stop or remove another's; the located errors for limits on this hybrid
// host; and that nothing is left on the host after any of it.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, chownSync } from 'node:fs';
import { join } from 'node:path';
import { needs, hasEngine, cgroupLayout } from '../helpers/sandbox';
import { asUser, canMakeUsers, defaultRouteForPasta, ext4For, hasUidmap, holdsUserXattrs, makeUser, pidsOf, removeAllUsers, repoForUsers, sandboxAs, tunForUsers, userTmp, type TestUser } from '../helpers/users';

const ready = hasEngine && canMakeUsers && hasUidmap;
let alice: TestUser, bob: TestUser, dir: string;
const mounts = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).sort().join('\n');
let mountsBefore = '';

before(() => {
  if (!ready) return;
  mountsBefore = mounts();
  alice = makeUser('rla');
  bob = makeUser('rlb');
  dir = userTmp(alice);
});
after(() => { if (ready) removeAllUsers(); });

/** A config file the user owns, in its scratch folder. */
function config(u: TestUser, name: string, text: string): string {
  const f = join(dir, `${name}.yml`);
  writeFileSync(f, text);
  chownSync(f, u.uid, u.gid);
  return f;
}

/** Everything of the user's that a finished run could leave: processes, sandbox state folders. */
function leftovers(u: TestUser): string[] {
  // A finished supervisor waits as a zombie until the host's init reaps it: it holds nothing.
  const live = pidsOf(u.uid).filter((p) => { try { return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${p}/stat`, 'utf8')); } catch { return false; } });
  // A process may end between the two reads: only one still there counts.
  const out = live.flatMap((p) => { try { return [`process ${p}: ${readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ')}`]; } catch { return []; } });
  const root = join(u.runtimeDir, 'sandbox');
  if (existsSync(root)) for (const n of readdirSync(root).filter((x) => !x.startsWith('.'))) out.push(`state folder ${join(root, n)}`);
  return out;
}

test('rootless up: the caller is root inside, its ranges are mapped above it, and the isolation holds', (t) => {
  if (!needs(t, 'root (to make users), newuidmap and libsbx', ready)) return;
  const f = config(alice, 'ids', 'version: 1\nname: ids\nrootfs: host\nnetwork: none\nhostname: inside\ncommand: [sh, -c, "id -u; cat /proc/self/uid_map /proc/self/gid_map; hostname; grep -E \'^(CapEff|NoNewPrivs|Seccomp):\' /proc/self/status; cat /proc/self/mountinfo | head -1; touch /usr/x 2>&1 || echo ro"]\n');
  const plan = sandboxAs(alice, ['plan', f]);
  assert.equal(plan.code, 0, plan.err);
  assert.match(plan.out, /rootless: you, rla\S*, are root inside; 1 and up are your ranges/);
  const r = sandboxAs(alice, ['up', '-q', f]);
  assert.equal(r.code, 0, r.err);
  const [uid, ...lines] = r.out.trim().split('\n');
  assert.equal(uid, '0');
  const range = readFileSync('/etc/subuid', 'utf8').split('\n').find((l) => l.startsWith(`${alice.name}:`))!.split(':');
  const maps = lines.slice(0, 4).map((l) => l.trim().split(/\s+/).join(' '));
  assert.deepEqual(maps, [`0 ${alice.uid} 1`, `1 ${range[1]} ${range[2]}`, `0 ${alice.gid} 1`, `1 ${readFileSync('/etc/subgid', 'utf8').split('\n').find((l) => l.startsWith(`${alice.name}:`))!.split(':')[1]} 65536`]);
  assert.equal(lines[4], 'inside');
  assert.match(r.out, /CapEff:\s+00000000800405fb/, 'the default capability set, held in the user namespace only');
  assert.match(r.out, /NoNewPrivs:\s+1/);
  assert.match(r.out, /Seccomp:\s+2/);
  assert.match(r.out, /^\d+ \d+ \S+ \/ \/ rw,nosuid,nodev\S* - tmpfs /m, 'the root is a fresh tmpfs, not the host\'s');
  assert.match(r.out, /Read-only file system\n|ro\n/);
  assert.deepEqual(leftovers(alice), []);
});

test('rootless, a caller without subordinate ranges gets a one-id map, and the plan says so', (t) => {
  if (!needs(t, 'root (to make users), newuidmap and libsbx', ready)) return;
  const u = makeUser('rln');
  const [, start, count] = readFileSync('/etc/subuid', 'utf8').split('\n').find((l) => l.startsWith(`${u.name}:`))!.split(':');
  const end = Number(start) + Number(count) - 1;
  execFileSync('usermod', ['--del-subuids', `${start}-${end}`, '--del-subgids', `${start}-${end}`, u.name]);
  const d = userTmp(u);
  const f = join(d, 'one.yml');
  writeFileSync(f, 'version: 1\nname: one\nrootfs: host\nnetwork: none\ncommand: [sh, -c, "id -u; cat /proc/self/uid_map /proc/self/setgroups"]\n');
  chownSync(f, u.uid, u.gid);
  const plan = sandboxAs(u, ['plan', f]);
  assert.match(plan.out, /no range, so only your own id is mapped/);
  // A file that names another user (samples/web.yml runs as nobody) says why it is not mapped and how to get a range.
  const other = sandboxAs(u, ['plan', join(repoForUsers(), 'samples/web.yml')]);
  assert.equal(other.code, 2);
  assert.match(other.err, /web\.yml:19:7: error: uid 65534 is outside the user namespace's uid_map \(0-0\); without root only your own id is mapped, as \/etc\/subuid and \/etc\/subgid give you no range: `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 \$USER` gives you one/);
  const r = sandboxAs(u, ['up', '-q', f]);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(r.out.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' ')), ['0', `0 ${u.uid} 1`, 'deny']);
  assert.deepEqual(leftovers(u), []);
});

test('rootless lifecycle: up -d, ps, logs, exec, top, inspect, stop, restart policy, down and gc, all as the user', async (t) => {
  if (!needs(t, 'root (to make users), newuidmap and libsbx', ready)) return;
  const f = config(alice, 'bg', 'version: 1\nname: bg\nrootfs: host\nnetwork: none\ndetach: true\ncommand: [sh, -c, "echo started; trap \'exit 0\' TERM; while true; do sleep 0.1; done"]\n');
  const up = sandboxAs(alice, ['up', '-q', f]);
  assert.equal(up.code, 0, up.err);
  const ps = sandboxAs(alice, ['ps']);
  assert.match(ps.out, /^bg\s+running\s+(\d+)/m);
  const pid = Number(/^bg\s+running\s+(\d+)/m.exec(ps.out)![1]);
  // The host sees the command as the caller: its uid is the user's, not root's.
  assert.match(readFileSync(`/proc/${pid}/status`, 'utf8'), new RegExp(`^Uid:\\s+${alice.uid}\\s`, 'm'));
  for (let i = 0; i < 50 && !sandboxAs(alice, ['logs', 'bg']).out.includes('started'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(sandboxAs(alice, ['logs', 'bg']).out, /started/);
  const ex = sandboxAs(alice, ['exec', 'bg', '--', 'sh', '-c', 'id -u; cat /proc/self/uid_map | head -1; cat /proc/1/cmdline | tr "\\0" " "']);
  assert.equal(ex.code, 0, ex.err);
  assert.match(ex.out, new RegExp(`^0\\n\\s*0\\s+${alice.uid}\\s+1\\nsh -c echo started`));
  assert.match(sandboxAs(alice, ['top', 'bg']).out, /sh -c echo started/);
  assert.match(sandboxAs(alice, ['inspect', 'bg']).out, /status\s+running/);
  const stop = sandboxAs(alice, ['stop', 'bg']);
  assert.equal(stop.code, 0, stop.err);
  assert.match(sandboxAs(alice, ['ps', '-a']).out, /^bg\s+exited \(0\)/m);
  assert.equal(sandboxAs(alice, ['down', 'bg']).code, 0);
  assert.equal(sandboxAs(alice, ['ps', '-a']).out.includes('bg'), false);

  // A restart policy is applied by the CLI from outside the sandbox (sbx_respawn in the held user namespace), rootless as with root.
  const again = config(alice, 'again', 'version: 1\nname: again\nrootfs: host\nnetwork: none\nrestart: on-failure:2\ncommand: [sh, -c, "echo run; exit 3"]\n');
  const r = sandboxAs(alice, ['up', again]);
  assert.equal(r.code, 3);
  assert.equal(r.out.match(/^run$/gm)?.length, 3, r.out);
  assert.deepEqual(leftovers(alice), []);
});

test('one user can never see, exec into, stop or remove another user\'s sandboxes', async (t) => {
  if (!needs(t, 'root (to make users), newuidmap and libsbx', ready)) return;
  const f = config(alice, 'mine', 'version: 1\nname: mine\nrootfs: host\nnetwork: none\ndetach: true\ncommand: [sleep, "60"]\n');
  assert.equal(sandboxAs(alice, ['up', '-q', f]).code, 0);
  try {
    assert.match(sandboxAs(alice, ['ps']).out, /^mine\s+running/m);
    assert.equal(sandboxAs(bob, ['ps', '-a']).out.includes('mine'), false, 'bob sees none of alice\'s');
    for (const args of [['exec', 'mine', '--', 'true'], ['stop', 'mine'], ['down', 'mine'], ['logs', 'mine'], ['inspect', 'mine'], ['top', 'mine']]) {
      const r = sandboxAs(bob, args);
      assert.notEqual(r.code, 0, `bob: sandbox ${args.join(' ')}`);
      assert.match(r.err, /no sandbox named mine/, `bob: sandbox ${args.join(' ')}`);
    }
    // Nor can bob reach her state behind the CLI's back: her runtime folder is hers alone.
    const peek = asUser(bob, ['ls', join(alice.runtimeDir, 'sandbox')]);
    assert.notEqual(peek.code, 0);
    assert.match(peek.err, /Permission denied/);
    // Nor can root's own CLI, which keeps its state elsewhere, see it as one of root's.
    assert.match(sandboxAs(alice, ['ps']).out, /^mine\s+running/m, 'still running after bob\'s tries');
    const pid = Number(/^mine\s+running\s+(\d+)/m.exec(sandboxAs(alice, ['ps']).out)![1]);
    const kill = asUser(bob, ['kill', '-9', String(pid)]);
    assert.notEqual(kill.code, 0, 'the kernel refuses bob\'s signal to alice\'s sandbox');
    // A state root another user made first is refused, never used.
    const trap = makeUser('rlt');
    execFileSync('mkdir', ['-p', '-m', '0777', `/tmp/sandbox-${trap.uid}`]);
    const env = { XDG_RUNTIME_DIR: '' };
    const cfg = join(userTmp(trap), 'x.yml');
    writeFileSync(cfg, 'version: 1\nname: x\nrootfs: host\nnetwork: none\ncommand: [/bin/true]\n');
    chownSync(cfg, trap.uid, trap.gid);
    const refused = sandboxAs(trap, ['up', '-q', cfg], { env });
    assert.equal(refused.code, 125);
    assert.match(refused.err, new RegExp(`/tmp/sandbox-${trap.uid} is (owned by uid 0, not you|open to others)`));
    execFileSync('rm', ['-rf', `/tmp/sandbox-${trap.uid}`]);
  } finally {
    assert.equal(sandboxAs(alice, ['down', 'mine']).code, 0);
  }
  assert.deepEqual(leftovers(alice), []);
});

test('kill -9 of a rootless CLI: the sandbox dies with it, and gc removes its state', async (t) => {
  if (!needs(t, 'root (to make users), newuidmap and libsbx', ready)) return;
  const f = config(alice, 'fg', 'version: 1\nname: fg\nrootfs: host\nnetwork: none\ncommand: [sleep, "60"]\n');
  const cli = spawn('setpriv', ['--reuid', String(alice.uid), '--regid', String(alice.gid), '--init-groups', '--', process.execPath, join(repoForUsers(), 'bin/sandbox.js'), 'up', '-q', f], {
    cwd: repoForUsers(), stdio: 'ignore', env: { PATH: process.env.PATH, HOME: alice.home, XDG_RUNTIME_DIR: alice.runtimeDir, CI: 'true' },
  });
  for (let i = 0; i < 100 && !/^fg\s+running/m.test(sandboxAs(alice, ['ps']).out); i++) await new Promise((r) => setTimeout(r, 50));
  const pid = Number(/^fg\s+running\s+(\d+)/m.exec(sandboxAs(alice, ['ps']).out)?.[1]);
  assert.ok(pid > 0, 'the sandbox runs');
  // setpriv execs node: the CLI is the spawned PID itself.
  process.kill(cli.pid!, 'SIGKILL');
  await new Promise((r) => cli.once('exit', r));
  for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(existsSync(`/proc/${pid}`), false, 'the sandbox ended with its CLI');
  const gc = sandboxAs(alice, ['gc']);
  assert.equal(gc.code, 0, gc.err);
  assert.match(gc.out, /fg: state folder/);
  assert.deepEqual(leftovers(alice), []);
});

test('rootless on this host: limits are located errors that say why and how to get delegation; doctor says so', (t) => {
  if (!needs(t, 'root (to make users), newuidmap and libsbx', ready)) return;
  if (cgroupLayout() === 'v2') { t.skip('this host runs pure cgroup v2: the delegated path is tested in rootless-cgroup'); return; }
  const r = sandboxAs(alice, ['plan', 'samples/limits.yml']);
  assert.equal(r.code, 2);
  const lines = readFileSync(join(repoForUsers(), 'samples/limits.yml'), 'utf8').split('\n');
  for (const key of ['memory', 'memory_reservation', 'memory_swap', 'cpus', 'cpu_shares', 'cpuset', 'pids']) {
    const line = lines.findIndex((l) => l.startsWith(`  ${key}:`)) + 1;
    assert.match(r.err, new RegExp(`samples/limits\\.yml:${line}:\\d+: error: cgroup hybrid cannot be delegated to a user`), key);
  }
  assert.match(r.err, /Delegate=yes/);
  assert.doesNotMatch(r.err, /at .*\.js:\d+/, 'no stack trace');
  const doctor = sandboxAs(alice, ['doctor']);
  assert.match(doctor.out, /not root/);
  assert.match(doctor.out, /limits?.*(hybrid|cannot be delegated)/i);
  assert.equal(mounts(), mountsBefore, 'no mount was left on the host');
  accessSync('/etc/subuid', constants.R_OK);
});

/** A page fetched by a node client, from the host or from inside the network namespace ns; '' on failure. */
function httpGet(url: string, ns?: string): string {
  const js = `require('http').get(${JSON.stringify(url)}, { timeout: 2000 }, (r) => r.pipe(process.stdout)).on('error', () => process.exit(1))`;
  const argv = ns ? ['ip', 'netns', 'exec', ns, process.execPath, '-e', js] : [process.execPath, '-e', js];
  return spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 5000 }).stdout ?? '';
}

test('as a user: samples/web.yml serves its page, and a detached sandbox publishes a port that keeps the client\'s address; down leaves nothing', async (t) => {
  if (!needs(t, 'root (to make users), newuidmap, pasta and libsbx', ready && existsSync('/usr/bin/pasta'))) return;
  // pasta opens /dev/net/tun inside the user's namespace; udev makes it 0666 on a fresh Debian.
  const tun = tunForUsers();
  if (tun.changed) t.diagnostic(`set-up: ${tun.changed}`);
  // pasta needs a routable interface to copy; a VM without a network (the v2 VM) has none.
  const route = defaultRouteForPasta('rldef0');
  t.after(() => route.undo());
  if (route.changed) t.diagnostic(`set-up: ${route.changed}`);
  const k = (process.pid % 60) * 4;
  const ns = `rlcli${process.pid}`, hostIf = `rlch${process.pid}`, hostIp = `198.51.100.${k + 1}`, clientIp = `198.51.100.${k + 2}`;
  try {
    const web = sandboxAs(alice, ['up', '-d', '-q', 'samples/web.yml']);
    assert.equal(web.code, 0, web.err);
    let page = '';
    for (let i = 0; i < 50 && !page.includes('Served from inside a sandbox'); i++) {
      page = httpGet('http://127.0.0.1:8080/');
      if (!page) await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(page, /Served from inside a sandbox/);
    const logs = (name: string) => { const r = sandboxAs(alice, ['logs', name]); return r.out + r.err; };
    for (let i = 0; i < 40 && !logs('web').includes('response:200'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(logs('web'), /127\.0\.0\.1\]?:\d+: response:200/, 'httpd saw the client on 127.0.0.1');
    assert.equal(sandboxAs(alice, ['down', 'web']).code, 0);

    // A client in a network namespace of the test's own, behind a veth pair to the host.
    execFileSync('sh', ['-c', `ip netns add ${ns} && ip link add ${hostIf} type veth peer name eth0 netns ${ns} && ip addr add ${hostIp}/30 dev ${hostIf} && ip link set ${hostIf} up && ip -n ${ns} addr add ${clientIp}/30 dev eth0 && ip -n ${ns} link set eth0 up && ip -n ${ns} link set lo up`]);
    const f = config(alice, 'pub', 'version: 1\nname: pub\nrootfs: host\ndetach: true\nports: ["18093:8080"]\nvolumes: ["/work:/srv:ro"]\ncommand: [busybox, httpd, -f, -v, -p, "8080", -h, /srv]\n'.replace('/work:/srv:ro', `${join(repoForUsers(), 'samples/web/site')}:/srv:ro`));
    const up = sandboxAs(alice, ['up', '-q', f]);
    assert.equal(up.code, 0, up.err);
    let got = '';
    for (let i = 0; i < 50 && !got; i++) {
      got = httpGet(`http://${hostIp}:18093/`, ns);
      if (!got) await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(got, /Served from inside a sandbox/);
    for (let i = 0; i < 40 && !logs('pub').includes(clientIp); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(logs('pub'), new RegExp(`${clientIp.replace(/\./g, '\\.')}\\]?:\\d+: response:200`), 'the sandbox saw the client\'s own address');
    assert.match(sandboxAs(alice, ['ps']).out, /^pub\s+running.*18093->8080\/tcp/m);
    const down = sandboxAs(alice, ['down', 'pub']);
    assert.equal(down.code, 0, down.err);
    assert.deepEqual(leftovers(alice), [], 'pasta and its watcher end with down');
    // The host port is free again.
    assert.doesNotMatch(execFileSync('ss', ['-Hltn'], { encoding: 'utf8' }), /:18093\s/);
  } finally {
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    spawnSync('ip', ['link', 'del', hostIf], { stdio: 'ignore' });
    tun.undo();
  }
});

test('as a user, detached with restart: the port answers across a restart, and pasta ends with the command, so the port is refused at once', async (t) => {
  if (!needs(t, 'root (to make users), newuidmap, pasta and libsbx', ready && existsSync('/usr/bin/pasta'))) return;
  const tun = tunForUsers();
  const route = defaultRouteForPasta('rldef1');
  t.after(() => { sandboxAs(alice, ['down', 'rsp']); route.undo(); tun.undo(); });
  const site = join(repoForUsers(), 'samples/web/site');
  const f = config(alice, 'rsp', `version: 1\nname: rsp\nrootfs: host\ndetach: true\nrestart: on-failure:1\nports: ["127.0.0.1:18434:8080"]\nvolumes: ["${site}:/srv:ro"]\ncommand: [sh, -c, "busybox httpd -f -p 8080 -h /srv & sleep 6; exit 3"]\n`);
  const up = sandboxAs(alice, ['up', '-q', f]);
  assert.equal(up.code, 0, up.err);
  const logs = () => { const r = sandboxAs(alice, ['logs', 'rsp']); return r.out + r.err; };
  for (let i = 0; i < 100 && !logs().includes('restart 1 of 1'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(logs(), /the command exited with code 3; restart 1 of 1 in 100 ms/);
  // The second run: a new PID 1 in the same network namespace, which pasta still serves. Each run
  // serves for 6 s, which leaves room for the v2 VM, where each `sandbox logs` above takes a second.
  let page = '';
  for (let i = 0; i < 100 && !page.includes('Served from inside a sandbox'); i++) { page = httpGet('http://127.0.0.1:18434/'); if (!page) await new Promise((r) => setTimeout(r, 50)); }
  assert.match(page, /Served from inside a sandbox/);
  for (let i = 0; i < 100 && !/^rsp\s+exited \(3\)/m.test(sandboxAs(alice, ['ps', '-a']).out); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(sandboxAs(alice, ['ps', '-a']).out, /^rsp\s+exited \(3\)\s+\d+\s+-\s+.*\s-$/m, 'no port once the command ended for good');
  // pasta's watcher looks every 0.5 s: the port is refused within a second.
  let free = false;
  for (let i = 0; i < 40 && !(free = !/127\.0\.0\.1:18434\s/.test(execFileSync('ss', ['-Hltn'], { encoding: 'utf8' }))); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(free, 'pasta still holds 127.0.0.1:18434 after the command ended for good');
  assert.equal(sandboxAs(alice, ['down', 'rsp']).code, 0);
  assert.deepEqual(leftovers(alice), []);
});

test('as a user: samples/busybox.yml on a real terminal (script), its image pulled into the user\'s store; /bin/sh is PID 1', (t) => {
  if (!needs(t, 'root (to make users), newuidmap, script and libsbx', ready && existsSync('/usr/bin/script'))) return;
  const cmd = `${process.execPath} ${join(repoForUsers(), 'bin/sandbox.js')} up samples/busybox.yml -- /bin/sh -c 'ps; id -u; cat /proc/self/uid_map | tail -1; ls -ln /bin/busybox'`;
  // The store is the user's default one, where its home holds user xattrs; where it does not (the
  // v2 VM: an overlay on a tmpfs, Linux 6.1), an ext4 file system of the test's own.
  const store = join(alice.home, '.local/share/sandbox');
  mkdirSync(store, { recursive: true });
  execFileSync('chown', ['-R', `${alice.uid}:${alice.gid}`, join(alice.home, '.local')]);
  let ext4: ReturnType<typeof ext4For> | undefined;
  if (!holdsUserXattrs(store)) {
    ext4 = ext4For(alice, store);
    t.diagnostic(`set-up: ${ext4.what} (the home folder holds no user xattrs here)`);
  }
  let r;
  try { r = asUser(alice, ['script', '-qec', cmd, '/dev/null'], { timeout: 120_000 }); } finally {
    // The store's layers belong to the user's subordinate ids: removed inside its namespace first.
    if (ext4) {
      for (const i of JSON.parse(sandboxAs(alice, ['images', '--json']).out || '[]') as { reference: string }[]) sandboxAs(alice, ['rmi', i.reference]);
      sandboxAs(alice, ['image', 'prune']);
      ext4.undo();
    }
  }
  assert.equal(r.code, 0, r.out + r.err);
  // script's own stdin is not a terminal: when it ends, script writes the terminal's end-of-file
  // character into the pty, a NUL in the raw mode the CLI sets, which the sandbox's terminal
  // echoes as ^@ wherever the output happens to be by then.
  r = { ...r, out: r.out.replace(/\^@/g, '') };
  assert.match(r.out, /^\s+1 root\s+\/bin\/sh -c ps/m, 'the command is PID 1');
  assert.match(r.out, /\r?\n0\r?\n/, 'root inside');
  // The image's files are root's inside: on the host they belong to the user itself.
  assert.match(r.out, /-rwx\S* +1 0 +0 .*\/bin\/busybox/);
  // A terminal that reports no size still gets whole lines of progress, not one character a line
  // (plain ones here: the user's environment has CI set).
  assert.match(r.out, /^9\. exec  \d+ steps?  \d+\.\d ms\r?$/m);
  if (!ext4) assert.ok(existsSync(join(store, 'images')), 'the store is in the user\'s XDG data folder');
  assert.deepEqual(leftovers(alice), []);
});

test('rootless: a failure at every step of web.yml exits 125, names the step and leaves nothing behind', (t) => {
  if (!needs(t, 'root (to make users), newuidmap, pasta and libsbx', ready && existsSync('/usr/bin/pasta'))) return;
  // SANDBOX_FAULT_CONFIGS narrows the sweeps where each run is slow (the emulated v2 VM in CI).
  const only = process.env.SANDBOX_FAULT_CONFIGS?.split(',');
  if (only && !only.includes('samples/web.yml')) { t.skip('SANDBOX_FAULT_CONFIGS leaves samples/web.yml out'); return; }
  const tun = tunForUsers();
  try {
    const plan = JSON.parse(sandboxAs(alice, ['plan', '--json', 'samples/web.yml']).out) as { steps: { id: string; kind: string }[] };
    assert.ok(plan.steps.some((s) => s.kind === 'net.usernet') && plan.steps.some((s) => s.kind === 'idmap'));
    const failures: string[] = [];
    const before = mounts();
    for (const step of plan.steps) {
      const r = sandboxAs(alice, ['up', '-q', 'samples/web.yml', '--', '/bin/true'], { env: { SANDBOX_TEST_FAIL_AT: step.id } });
      const expected = step.kind === 'exec' ? 126 : 125;
      if (r.code !== expected) failures.push(`${step.id}: exit ${r.code}, expected ${expected}: ${r.err}`);
      else if (!r.err.includes(`${step.id} (`)) failures.push(`${step.id}: the message does not name the step: ${r.err}`);
      const left = leftovers(alice);
      if (left.length) failures.push(`${step.id}: left ${left.join('; ')}`);
    }
    assert.deepEqual(failures, []);
    assert.equal(mounts(), before);
  } finally { tun.undo(); }
});
