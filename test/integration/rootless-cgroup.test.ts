// Limits without root: a made user in a cgroup v2 subtree delegated to it (as systemd's
// Delegate=yes gives one) creates a sandbox's cgroup through Cgroup, writes its limits and moves
// its own processes in; the host's /proc and cgroup files, read as root from outside, show that
// it worked, and that the kernel enforces them. Where nothing is delegated (this hybrid host; a
// user in the v2 root cgroup) the probe says so, and so does doctor. The delegated tests need pure
// cgroup v2: .ci/run runs this file again in the v2 VM.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupLayout, hasBusyboxRoot, isRoot, needs } from '../helpers/sandbox';
import { asUser, canMakeUsers, hasUidmap, makeUser, removeAllUsers, repoForUsers, sandboxAs, userTmp, type TestUser } from '../helpers/users';
import { canDelegate, delegate, pidsIn, removeAllDelegations, UNIFIED, type Delegation } from '../helpers/delegation';

after(() => { removeAllDelegations(); removeAllUsers(); });

const v2 = cgroupLayout() === 'v2';
const skipUnlessV2 = (t: { skip(m: string): void }) => { if (!v2) t.skip('pure cgroup v2 only: .ci/run runs this file in the v2 VM'); return v2; };

/** Node, as the user, running `code` with the build's modules at hand (B is the build folder). */
function nodeAs(run: (argv: string[]) => ReturnType<typeof asUser>, code: string) {
  const build = join(repoForUsers(), 'build');
  const prelude = `const B=${JSON.stringify(build)};const {probeHost}=require(B+'/src/engine/probe.js');const {Cgroup}=require(B+'/src/host/cgroup.js');const {cgroupPathFor}=require(B+'/src/plan/paths.js');`;
  return run([process.execPath, '-e', prelude + code]);
}

const probeAs = (run: (argv: string[]) => ReturnType<typeof asUser>) => {
  const r = nodeAs(run, 'const h=probeHost();console.log(JSON.stringify({root:h.root,layout:h.cgroup.layout,delegated:h.cgroup.delegated??null,controllers:h.cgroup.controllers}))');
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out) as { root: boolean; layout: string; delegated: string | null; controllers: string[] };
};

const limitsRow = (out: string) => /^limits\s+(.*)$/m.exec(out)?.[1];

test('without a delegated subtree the probe gives a user none, no controllers, and doctor says why', (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'useradd', canMakeUsers)) return;
  const u = makeUser('rlcg');
  const p = probeAs((argv) => asUser(u, argv));
  assert.equal(p.root, false);
  assert.equal(p.delegated, null);
  assert.deepEqual(p.controllers, []);
  const doctor = sandboxAs(u, ['doctor']);
  assert.equal(doctor.code, 0, doctor.err);
  const row = limitsRow(doctor.out);
  if (p.layout === 'v2') {
    // The test's processes (and so the user's) are in a cgroup that is root's.
    const own = readFileSync('/proc/self/cgroup', 'utf8').trim().replace(/^0::/, '');
    assert.ok(row?.startsWith(`no delegated subtree: your cgroup ${own} `), doctor.out);
    assert.match(row!, /Delegate=yes/);
  } else {
    assert.match(p.layout, /^(v1|hybrid)$/);
    assert.match(row ?? '', new RegExp(`^cgroup ${p.layout} cannot be delegated to a user`), doctor.out);
  }
});

/** The user's side: creates the sandbox's cgroup with limits, starts a sleep and moves it in. */
const CREATE = `const h=probeHost();const path=cgroupPathFor(h,process.argv[1]);const cg=new Cgroup(h.cgroup,path);cg.create();
cg.set('memory','memory.max','33554432');cg.set('pids','pids.max','16');cg.set('cpu','cpu.max','50000 100000');
const c=require('node:child_process').spawn('sleep',['120'],{detached:true,stdio:'ignore'});cg.attach(c.pid);c.unref();
console.log(JSON.stringify({delegated:h.cgroup.delegated,controllers:h.cgroup.controllers,path,pid:c.pid}));`;

test('a user with a delegated subtree creates a cgroup there with memory, pids and cpu limits, and its processes are held to them', (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'useradd', canMakeUsers) || !skipUnlessV2(t)) return;
  assert.ok(canDelegate, 'pure cgroup v2 as root, yet no subtree can be delegated');
  const u: TestUser = makeUser('rlcg');
  const d: Delegation = delegate(u);
  t.after(() => d.undo());

  const p = probeAs((argv) => d.run(argv));
  assert.equal(p.delegated, d.rel);
  assert.deepEqual([...p.controllers].sort(), ['cpu', 'io', 'memory', 'pids'].filter((c) => readFileSync(join(d.dir, 'cgroup.controllers'), 'utf8').includes(c)).sort());
  const doctor = sandboxAs(u, ['doctor'], { cgroup: d.start });
  assert.equal(limitsRow(doctor.out), `cgroup v2, delegated at /${d.rel}, controllers ${p.controllers.join(' ')}`, doctor.out);

  const name = 'rlcg-limits';
  const r = nodeAs((argv) => d.run([...argv, name]), CREATE);
  assert.equal(r.code, 0, r.err);
  const made = JSON.parse(r.out) as { path: string; pid: number };
  assert.equal(made.path, `${d.rel}/sandbox/${name}`);
  const dir = join(UNIFIED, made.path);

  // Read back as root, from the host: where the process is, who it is, and the limit files.
  assert.equal(readFileSync(`/proc/${made.pid}/cgroup`, 'utf8'), `0::/${made.path}\n`);
  assert.match(readFileSync(`/proc/${made.pid}/status`, 'utf8'), new RegExp(`^Uid:\\s+${u.uid}\\s`, 'm'));
  assert.equal(readFileSync(join(dir, 'memory.max'), 'utf8'), '33554432\n');
  assert.equal(readFileSync(join(dir, 'pids.max'), 'utf8'), '16\n');
  assert.equal(readFileSync(join(dir, 'cpu.max'), 'utf8'), '50000 100000\n');
  // Nothing above the delegated folder was written: the slice's controllers are what the harness set.
  assert.deepEqual(readFileSync(join(d.slice, 'cgroup.subtree_control'), 'utf8').trim().split(' ').sort(), p.controllers.filter((c) => ['cpu', 'io', 'memory', 'pids'].includes(c)).sort());
  assert.ok(!existsSync(join(UNIFIED, 'sandbox', name)), 'a cgroup was made at the root');

  // The kernel holds the user's processes to pids.max: a shell that moves itself in and starts
  // sleeps gets 14 of them (beside the first sleep and itself), then its fork fails (dash stops).
  const forks = d.run(['sh', '-c', `echo $$ > ${dir}/cgroup.procs || exit 9; i=0; while [ $i -lt 30 ]; do sleep 300 >/dev/null 2>&1 & i=$((i+1)); echo $i; done`]);
  assert.match(forks.err, /fork/i, `no fork was refused: ${forks.out}`);
  assert.equal(forks.out.trim().split('\n').pop(), '14', forks.err);
  assert.equal(pidsIn(dir).length, 15);
  assert.notEqual(/^max (\d+)/m.exec(readFileSync(join(dir, 'pids.events'), 'utf8'))?.[1] ?? '0', '0', 'pids.events counts no refusal');

  // The user removes it again (once its processes are ended by PID), leaving the delegated folder.
  for (const pid of pidsIn(dir)) process.kill(pid, 'SIGKILL');
  const rm = nodeAs((argv) => d.run([...argv, made.path]), 'const h=probeHost();new Cgroup(h.cgroup,process.argv[1]).remove().then(()=>console.log("removed"))');
  assert.equal(rm.code, 0, rm.err);
  assert.ok(!existsSync(join(d.dir, 'sandbox')), `left: ${readdirSync(d.dir).join(' ')}`);
  assert.ok(existsSync(d.dir));
});

test('a user that runs from its delegation root itself is told why controllers cannot be enabled there, and what to do', (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'useradd', canMakeUsers) || !skipUnlessV2(t)) return;
  const u = makeUser('rlcg');
  const d = delegate(u, { inRoot: true });
  t.after(() => d.undo());
  const r = nodeAs((argv) => d.run([...argv, 'rlcg-busy']), CREATE);
  assert.notEqual(r.code, 0, r.out);
  assert.match(r.err, new RegExp(`cannot enable the .*memory.* in ${d.dir.replace(/[.@]/g, '\\$&')}: this delegated cgroup holds processes, this sandbox command among them.*EBUSY.*systemd-run --user --scope`));
  assert.ok(!existsSync(join(d.dir, 'sandbox')), 'a folder was left');
});

test('sandbox up without root, in a delegated subtree: the limits hold inside, a memory hog is killed (137), and nothing is left', (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'useradd', canMakeUsers) || !needs(t, 'newuidmap', hasUidmap) || !needs(t, 'the busybox root', hasBusyboxRoot) || !skipUnlessV2(t)) return;
  const u = makeUser('rlcg');
  const d = delegate(u);
  t.after(() => d.undo());
  const name = 'rlcg-up';
  const tmp = userTmp(u);
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  const file = join(tmp, 'sandbox.yml');
  writeFileSync(file, ['version: 1', `name: ${name}`, `rootfs: {type: dir, path: ${join(repoForUsers(), 'samples/rootfs/busybox')}}`, 'network: none',
    'command: [/bin/true]', 'resources: {memory: 32m, pids: 16}', ''].join('\n'));
  chownSync(file, u.uid, u.gid);
  const up = (cmd: string) => sandboxAs(u, ['up', '-q', file, '--', '/bin/sh', '-c', cmd], { cgroup: d.start, cwd: tmp, timeout: 120_000 });

  // Inside its own cgroup namespace the sandbox sees its cgroup as the root, with the limits.
  const seen = up('cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /proc/self/cgroup');
  assert.equal(seen.code, 0, seen.err);
  assert.equal(seen.out, '33554432\n16\n0::/\n', seen.err);

  // The kernel holds it to them: forks stop short of 16 processes, and a shell that keeps 100 MB
  // of output in a variable is killed by the OOM killer.
  const forks = up('i=0; while [ $i -lt 30 ]; do sleep 5 >/dev/null 2>&1 & i=$((i+1)); echo $i; done');
  const started = Number(forks.out.trim().split('\n').pop());
  assert.ok(started >= 10 && started < 16, `${started} background processes started under pids.max 16: ${forks.err}`);
  const hog = up('x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived ${#x}');
  assert.equal(hog.code, 137, `${hog.out}${hog.err}`);
  assert.doesNotMatch(hog.out, /survived/);

  // Nothing left: no cgroup folder under the delegated one, no process, no state.
  assert.deepEqual(readdirSync(d.dir).filter((e) => statSync(join(d.dir, e)).isDirectory()), ['init.scope']);
  assert.deepEqual(pidsIn(d.dir), []);
  assert.ok(!existsSync(join(u.runtimeDir, 'sandbox', name)), 'the state folder was left');
});
