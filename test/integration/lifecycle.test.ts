// The lifecycle of sandboxes, checked from the host's /proc and from inside: ps, logs, exec, top,
// inspect, stop, down and gc; restart policies; names; kill -9 of the CLI at each stage of up -d
// and of a supervisor; and load (many cycles, many at once) with nothing leaked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, hasEngine, hasNft, hostSnapshot, isRoot, leftovers, needs, sandbox } from '../helpers/sandbox';
import { ROOT } from '../helpers/load';

interface Row { name: string; status: string; pid: number; command: string[]; ports: { hostPort: number; containerPort: number }[] }
const ps = (all: boolean): Row[] => JSON.parse(sandbox(['ps', '--json', ...(all ? ['-a'] : [])]).out) as Row[];

test('ps lists a running sandbox with its host PID, command and ports; gc removes what a killed CLI left', async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine) || !needs(t, 'nftables', hasNft)) return;
  const before = hostSnapshot();
  const child = spawn(process.execPath, [BIN, 'up', '-q', 'samples/web.yml'], { cwd: ROOT, stdio: 'ignore' });
  const exited = new Promise((r) => child.on('exit', r));
  t.after(() => { child.kill('SIGKILL'); });
  let rows: Row[] = [];
  for (let i = 0; i < 300 && !(rows = ps(false)).some((r) => r.name === 'web' && r.status === 'running'); i++) await new Promise((r) => setTimeout(r, 50));
  const web = rows.find((r) => r.name === 'web');
  assert.ok(web, 'web is not listed');
  assert.equal(web.status, 'running');
  assert.deepEqual(web.command, ['busybox', 'httpd', '-f', '-v', '-p', '8080', '-h', '/srv']);
  assert.deepEqual(web.ports.map((p) => [p.hostPort, p.containerPort]), [[8080, 8080]]);
  // The PID is a real host process, and PID 1 of the sandbox's own pid namespace.
  assert.match(readFileSync(`/proc/${web.pid}/status`, 'utf8'), /^NSpid:\s+\d+\s+1$/m);

  child.kill('SIGKILL');
  await exited;
  for (let i = 0; i < 100 && ps(false).some((r) => r.name === 'web'); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(ps(false).some((r) => r.name === 'web'), false, 'the sandbox outlived its CLI');
  assert.equal(ps(true).find((r) => r.name === 'web')?.status, 'dead');
  assert.notDeepEqual(leftovers('web'), []);

  const gc = sandbox(['gc']);
  assert.equal(gc.code, 0, gc.err);
  assert.match(gc.out, /removed web: nftables table sbx_web/);
  assert.match(gc.out, /removed web: state folder \/run\/sandbox\/web/);
  assert.deepEqual(leftovers('web'), []);
  assert.equal(sandbox(['gc']).out, 'nothing to remove\n');
  assert.equal(hostSnapshot(), before);
});

test('up -d: the sandbox outlives its CLI under a small supervisor; ps, logs, stop and down', async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine) || !needs(t, 'nftables', hasNft)) return;
  const before = hostSnapshot();
  // Whatever happens below, the detached sandbox does not outlive the test.
  t.after(() => { sandbox(['down', 'web']); });
  const up = sandbox(['up', '-d', '-q', 'samples/web.yml']);
  assert.equal(up.code, 0, up.err);
  assert.equal(up.out, 'web\n');
  const row = ps(false).find((r) => r.name === 'web');
  assert.equal(row?.status, 'running');
  // The supervisor, not the (gone) CLI, is the sandbox's parent; it stays small.
  const ppid = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${row!.pid}/status`, 'utf8'))![1]);
  assert.match(readFileSync(`/proc/${ppid}/cmdline`, 'utf8'), /sbx-supervise/);
  const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${ppid}/status`, 'utf8'))![1]);
  assert.ok(rssKb < 3 * 1024, `supervisor resident memory ${rssKb} KiB`);
  // Its output goes to its log: httpd logs each request on stderr.
  const page = execFileSync('curl', ['-s', '-m', '3', 'http://127.0.0.1:8080/'], { encoding: 'utf8' });
  assert.match(page, /Served from inside a sandbox/);
  let logs = '';
  for (let i = 0; i < 50 && !/response:200/.test(logs); i++) { await new Promise((r) => setTimeout(r, 50)); logs = sandbox(['logs', '--timestamps', 'web']).err; }
  assert.match(logs, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z .*response:200$/m);
  const stop = sandbox(['stop', '-t', '5', 'web']);
  assert.equal(stop.code, 0, stop.err);
  const exited = ps(true).find((r) => r.name === 'web') as Row & { exitCode: number };
  assert.equal(exited.status, 'exited');
  assert.equal(exited.exitCode, 143);
  assert.equal(sandbox(['gc']).out, 'nothing to remove\n', 'gc must keep an exited sandbox for its logs');
  const down = sandbox(['down', 'samples/web.yml']);
  assert.equal(down.code, 0, down.err);
  assert.deepEqual(leftovers('web'), []);
  assert.deepEqual(ps(true).filter((r) => r.name === 'web'), []);
  assert.equal(hostSnapshot(), before);
});

test('rm, as docker rm: an ended sandbox goes with what it set up; a running one is refused unless -f, which kills it at once; every name is tried', async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine) || !needs(t, 'nftables', hasNft)) return;
  const before = hostSnapshot();
  t.after(() => { sandbox(['down', 'web']); sandbox(['down', 'rm-ended']); });
  const dir = mkdtempSync(join(tmpdir(), 'sandbox-rm-'));
  writeFileSync(join(dir, 'ended.yml'), 'version: 1\nname: rm-ended\nrootfs: host\ndetach: true\ncommand: [/bin/sh, -c, "exit 3"]\n');
  assert.equal(sandbox(['up', '-d', '-q', 'samples/web.yml']).code, 0);
  assert.equal(sandbox(['up', '-q', join(dir, 'ended.yml')]).code, 0);
  for (let i = 0; i < 100 && ps(true).find((r) => r.name === 'rm-ended')?.status !== 'exited'; i++) await new Promise((r) => setTimeout(r, 50));
  // One running, one ended, one unknown: the ended one goes, the others are said, exit 1.
  const r = sandbox(['rm', 'web', 'rm-ended', 'no-such-sandbox']);
  assert.equal(r.code, 1, r.err);
  assert.equal(r.out, 'rm-ended\n');
  assert.match(r.err, /^sandbox: web is running: stop it first \(sandbox stop web\), remove it with rm -f/m);
  assert.match(r.err, /^sandbox: no sandbox named no-such-sandbox/m);
  assert.deepEqual(leftovers('rm-ended'), []);
  assert.equal(ps(false).find((r) => r.name === 'web')?.status, 'running', 'a refused rm leaves it running');
  const f = sandbox(['rm', '-f', 'web']);
  assert.equal(f.code, 0, f.err);
  assert.equal(f.out, 'web\n');
  assert.equal(f.err, '', 'rm -f says nothing of a grace period');
  assert.deepEqual(leftovers('web'), []);
  assert.deepEqual(ps(true).filter((r) => r.name === 'web' || r.name === 'rm-ended'), []);
  assert.equal(hostSnapshot(), before);
  rmSync(dir, { recursive: true });
});

test('kill -9 of a supervisor: the sandboxed processes die with it, ps says so, down cleans up', async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine) || !needs(t, 'nftables', hasNft)) return;
  t.after(() => { sandbox(['down', 'web']); });
  assert.equal(sandbox(['up', '-d', '-q', 'samples/web.yml']).code, 0);
  const row = ps(false).find((r) => r.name === 'web')!;
  const ppid = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${row.pid}/status`, 'utf8'))![1]);
  process.kill(ppid, 'SIGKILL');
  for (let i = 0; i < 100 && ps(false).some((r) => r.name === 'web'); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(ps(true).find((r) => r.name === 'web')?.status, 'dead');
  assert.equal(sandbox(['down', 'web']).code, 0);
  assert.deepEqual(leftovers('web'), []);
});

const IDLE = 'test/integration/fixtures/detached.yml';
const ready = (t: import('node:test').TestContext) => needs(t, 'root', isRoot) && needs(t, 'the native engine', hasEngine) && needs(t, 'nftables', hasNft);
const status = (pid: number) => readFileSync(`/proc/${pid}/status`, 'utf8');
const field = (text: string, key: string) => new RegExp(`^${key}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();

test('exec joins every namespace and the cgroup of a running sandbox, with its user, capabilities, no_new_privs and seccomp', async (t) => {
  if (!ready(t)) return;
  const before = hostSnapshot();
  t.after(() => { sandbox(['down', 'idle']); });
  const up = sandbox(['up', '-q', IDLE]);
  assert.equal(up.code, 0, up.err);
  const pid1 = ps(false).find((r) => r.name === 'idle')!.pid;
  const ns = ['mnt', 'uts', 'ipc', 'net', 'pid', 'cgroup', 'user'];
  // Read from inside the exec'd process, compared with the sandbox's PID 1 as the host sees it.
  const inside = sandbox(['exec', 'idle', 'sh', '-c', `cat /proc/self/status; for n in ${ns.join(' ')}; do echo "ns $n $(readlink /proc/self/ns/$n)"; done; echo "env $GREETING"; hostname; cat /proc/self/uid_map`]);
  assert.equal(inside.code, 0, inside.err);
  const host = status(pid1);
  for (const k of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp']) assert.equal(field(inside.out, k), field(host, k), k);
  assert.equal(field(inside.out, 'NoNewPrivs'), '1');
  assert.equal(field(inside.out, 'Seccomp'), '2');
  assert.equal(field(inside.out, 'Uid')!.split(/\s+/)[0], '1000');
  for (const n of ns) assert.equal(new RegExp(`^ns ${n} (.*)$`, 'm').exec(inside.out)?.[1], readlinkSync(`/proc/${pid1}/ns/${n}`), `${n} namespace`);
  assert.match(inside.out, /^env hello$/m);
  assert.match(inside.out, /^idle$/m);
  assert.match(inside.out, /^\s+0\s+100000\s+65536$/m);
  // Docker's options: user, environment, working folder; the command's own status comes back.
  const root = sandbox(['exec', '-u', '0', '-e', 'EXTRA=1', '-w', '/tmp', 'idle', 'sh', '-c', 'id -u; pwd; echo $EXTRA $GREETING']);
  assert.equal(root.out, '0\n/tmp\n1 hello\n');
  assert.equal(sandbox(['exec', 'idle', 'sh', '-c', 'exit 7']).code, 7);
  // `--` ends the options, as docker exec takes it.
  assert.equal(sandbox(['exec', 'idle', '--', 'sh', '-c', 'echo $GREETING']).out, 'hello\n');
  const missing = sandbox(['exec', 'idle', 'no-such-command']);
  assert.equal(missing.code, 127);
  assert.match(missing.err, /no-such-command.*ENOENT/);
  assert.equal(sandbox(['exec', 'nothing-by-this-name', 'true']).code, 1);
  // -t under a terminal (script(1) gives the CLI one): the command's terminal is made in the
  // sandbox's own devpts, and it is the controlling terminal of the exec'd process's session.
  const term = spawnSync('script', ['-qec', `${process.execPath} ${BIN} exec -t idle sh -c 'tty; ps -o tty,args'`, '/dev/null'], { encoding: 'utf8', input: '', cwd: ROOT, timeout: 30_000 });
  assert.equal(term.status, 0, term.stderr);
  // script(1) passes on a NUL when its own stdin ends, and the terminal may echo it (^@) first.
  assert.match(term.stdout, /^(\^@)?\/dev\/pts\/0\r*$/m);
  assert.match(term.stdout, /^pts\/0\s+sh -c tty; ps -o tty,args\r*$/m);

  // top: while an exec'd process runs, it is listed with its host PID beside its PID inside; the
  // host sees it in the sandbox's cgroup.
  const sleeper = spawn(process.execPath, [BIN, 'exec', 'idle', 'sleep', '30'], { cwd: ROOT, stdio: 'ignore' });
  t.after(() => { sleeper.kill('SIGKILL'); });
  let procs: { hostPid: number; pid: number | null; command: string }[] = [];
  for (let i = 0; i < 100 && !(procs = JSON.parse(sandbox(['top', '--json', 'idle']).out) as typeof procs).some((p) => p.command === 'sleep 30'); i++) await new Promise((r) => setTimeout(r, 30));
  const init = procs.find((p) => p.pid === 1)!;
  assert.equal(init.hostPid, pid1);
  assert.equal(init.command, 'sandbox-init -- sleep 3600');
  const s30 = procs.find((p) => p.command === 'sleep 30')!;
  assert.ok(s30.pid! > 1 && s30.hostPid !== s30.pid);
  assert.equal(field(status(s30.hostPid), 'NSpid')!.split(/\s+/).at(-1), String(s30.pid));
  assert.match(readFileSync(`/proc/${s30.hostPid}/cgroup`, 'utf8'), /\/sandbox\/idle$/m);
  const text = sandbox(['top', 'idle']).out;
  assert.match(text, /^HOST PID\s+PID\s+PPID\s+UID\s+STATE\s+COMMAND$/m);
  assert.match(text, new RegExp(`^${s30.hostPid}\\s+${s30.pid}\\s.*sleep 30$`, 'm'));
  // Ctrl-C on exec reaches the exec'd process through the relay.
  const done = new Promise<number | null>((r) => sleeper.on('exit', (c) => r(c)));
  sleeper.kill('SIGINT');
  assert.equal(await done, 130);

  // inspect: the plan it was started with, and the steps applied.
  const info = JSON.parse(sandbox(['inspect', '--json', 'idle']).out);
  assert.equal(info.status, 'running');
  assert.equal(info.state.pid, pid1);
  assert.deepEqual(info.ids, { uid: 1000, gid: 1000, groups: [] });
  const applied = new Set(info.applied.map((a: { id: string }) => a.id));
  for (const s of info.plan.steps as { id: string; kind: string }[]) if (s.kind !== 'exec') assert.ok(applied.has(s.id), `step ${s.id} not applied`);
  assert.match(sandbox(['inspect', 'idle']).out, /applied\s+\d+ of \d+ steps[\s\S]*✓\s+[\d.]+ pivot/);

  assert.equal(sandbox(['down', 'idle']).code, 0);
  assert.equal(sandbox(['exec', 'idle', 'true']).code, 1);
  assert.equal(hostSnapshot(), before);
});

test('restart: on-failure runs the command again at most N times with a growing delay; a stop ends always', async (t) => {
  if (!ready(t)) return;
  const before = hostSnapshot();
  t.after(() => { sandbox(['down', 'again']); sandbox(['down', 'forever']); });
  const failing = 'version: 1\nname: again\nrootfs: host\nnetwork: none\nrestart: on-failure:2\ncommand: [sh, -c, "echo run; exit 3"]\n';
  const file = (name: string, text: string) => { const p = join(mkdtempSync(join(tmpdir(), 'sbx-')), `${name}.yml`); writeFileSync(p, text); return p; };
  const r = sandbox(['up', '-q', file('again', failing)]);
  assert.equal(r.code, 3, r.err);
  assert.equal(r.out, 'run\nrun\nrun\n');
  assert.match(r.err, /restart 1 of 2 in 100 ms[\s\S]*restart 2 of 2 in 200 ms/);
  assert.equal(sandbox(['up', '-q', file('again', failing.replace('exit 3', 'exit 0'))]).out, 'run\n', 'on-failure must not restart a success');

  const always = 'version: 1\nname: forever\nrootfs: host\nnetwork: none\nrestart: always\ndetach: true\ncommand: [sh, -c, "echo run; sleep 0.1"]\n';
  assert.equal(sandbox(['up', '-q', file('forever', always)]).code, 0);
  let log = '';
  for (let i = 0; i < 100 && (log.match(/^run$/gm) ?? []).length < 3; i++) { await new Promise((res) => setTimeout(res, 50)); log = sandbox(['logs', 'forever']).out; }
  assert.ok((log.match(/^run$/gm) ?? []).length >= 3, log);
  assert.equal(sandbox(['stop', '-t', '2', 'forever']).code, 0);
  const row = ps(true).find((x) => x.name === 'forever');
  assert.equal(row?.status, 'exited');
  const runs = (sandbox(['logs', 'forever']).out.match(/^run$/gm) ?? []).length;
  await new Promise((res) => setTimeout(res, 500));
  assert.equal((sandbox(['logs', 'forever']).out.match(/^run$/gm) ?? []).length, runs, 'it ran again after stop');
  assert.equal(sandbox(['down', 'forever']).code, 0);
  assert.equal(hostSnapshot(), before);
});

test('down at once after up -d: init: true gets the stop signal though it came before sandbox-init waits for signals', async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
  // libsbx execs sandbox-init with every signal blocked, so a SIGTERM sent in the instant between
  // its exec and its sigwaitinfo stays pending; at the default action PID 1 would drop it, and
  // down would wait out the grace period and kill. The CLI's main() runs in this process, so that
  // down follows up within a millisecond, as a script's would on a fast machine.
  process.env.SANDBOX_LIBSBX = join(ROOT, 'native/build/libsbx.so');
  process.env.SANDBOX_SUPERVISOR = join(ROOT, 'native/build/sbx-supervise');
  const { main } = await import('../../src/cli/main');
  const said: string[] = [];
  const capture = async (argv: string[]) => {
    const out = process.stdout.write, err = process.stderr.write;
    process.stdout.write = (() => true) as typeof process.stdout.write;
    process.stderr.write = ((chunk: string | Uint8Array) => { said.push(String(chunk)); return true; }) as typeof process.stderr.write;
    try { return await main(argv); } finally { process.stdout.write = out; process.stderr.write = err; }
  };
  t.after(() => { sandbox(['down', 'race-0']); });
  for (let i = 0; i < 50; i++) {
    assert.equal(await capture(['up', '-q', '--name', 'race-0', join(ROOT, IDLE)]), 0);
    const t0 = performance.now();
    assert.equal(await capture(['down', 'race-0']), 0);
    assert.deepEqual(said.filter((l) => /does not handle|killed/.test(l)), [], `cycle ${i}`);
    assert.ok(performance.now() - t0 < 5000, `cycle ${i}: down took ${(performance.now() - t0).toFixed(0)} ms`);
  }
  assert.deepEqual(leftovers('race-0'), []);
});

test('names: --name runs one file twice; of concurrent ups of one name exactly one wins', async (t) => {
  if (!ready(t)) return;
  const before = hostSnapshot();
  t.after(() => { for (const n of ['idle', 'idle-2']) sandbox(['down', n]); });
  assert.equal(sandbox(['up', '-q', IDLE]).code, 0);
  const second = sandbox(['up', '-q', IDLE]);
  assert.equal(second.code, 125);
  assert.match(second.err, /a sandbox named idle is already running; stop it first, or pick another name with --name/);
  assert.equal(sandbox(['up', '-q', '--name', 'idle-2', IDLE]).out, 'idle-2\n');
  assert.deepEqual(ps(false).map((r) => r.name).filter((n) => n.startsWith('idle')).sort(), ['idle', 'idle-2']);
  assert.equal(sandbox(['up', '-q', '--name', '../x', IDLE]).code, 1);
  for (const n of ['idle', 'idle-2']) assert.equal(sandbox(['down', n]).code, 0);

  const runs = await Promise.all(Array.from({ length: 6 }, () => new Promise<{ code: number | null; err: string }>((resolve) => {
    const c = spawn(process.execPath, [BIN, 'up', '-q', IDLE], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d) => { err += d; });
    c.on('exit', (code) => resolve({ code, err }));
  })));
  assert.equal(runs.filter((r) => r.code === 0).length, 1, runs.map((r) => r.err).join('\n'));
  for (const r of runs.filter((x) => x.code !== 0)) assert.match(r.err, /a sandbox named idle is already (running|being started)/);
  assert.equal(sandbox(['down', 'idle']).code, 0);
  assert.equal(hostSnapshot(), before);
});

test('kill -9 of the CLI at each stage of up -d: gc leaves the host as it was', async (t) => {
  if (!ready(t)) return;
  const before = hostSnapshot();
  t.after(() => { sandbox(['down', 'web']); sandbox(['gc']); });
  // The first step of each of the nine stages of web.yml, run detached (a veth, NAT, a port map).
  const plan = JSON.parse(sandbox(['plan', '--json', 'samples/web.yml']).out) as { steps: { id: string; stage: string }[] };
  const firsts = [...new Map(plan.steps.map((s) => [s.stage, s.id])).keys()].map((stage) => plan.steps.find((s) => s.stage === stage)!.id);
  assert.equal(firsts.length, 9);
  for (const id of [...firsts, 'port:127.0.0.1:8080/tcp', 'pivot']) {
    const cli = spawn(process.execPath, [BIN, 'up', '-d', '-q', 'samples/web.yml'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SANDBOX_TEST_STALL_AT: id } });
    let err = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`never stalled at ${id}: ${err}`)), 20_000);
      cli.stderr.on('data', (d) => { err += d; if (err.includes('stalled at')) { clearTimeout(timer); resolve(); } });
    });
    const gone = new Promise((r) => cli.on('exit', r));
    cli.kill('SIGKILL');
    await gone;
    // The supervisor ends its half-set-up child once its CLI is gone; then gc removes the rest.
    let left: string[] = [];
    for (let i = 0; i < 100; i++) {
      const gc = sandbox(['gc']);
      assert.equal(gc.code, 0, gc.err);
      if (!(left = leftovers('web')).length && !ps(true).some((r) => r.name === 'web')) break;
      await new Promise((r) => setTimeout(r, 30));
    }
    assert.deepEqual(left, [], `after kill -9 at ${id}`);
    assert.equal(hostSnapshot(), before, `after kill -9 at ${id}`);
  }
});

const CYCLES = Number(process.env.SANDBOX_LOAD_CYCLES ?? 1000);

test(`load: ${CYCLES} up -d/down cycles in a row, then 50 sandboxes at once; nothing leaks and ps stays fast`, { timeout: 900_000 }, async (t) => {
  if (!ready(t)) return;
  const before = hostSnapshot();
  const names = Array.from({ length: 50 }, (_, i) => `load-${i}`);
  t.after(() => { for (const n of names) sandbox(['down', n]); });
  // The cycles run the CLI's own main() in this process, so that what the CLI code itself could
  // leak (descriptors, signal listeners) is counted here too, and no node start-up is paid per run.
  process.env.SANDBOX_LIBSBX = join(ROOT, 'native/build/libsbx.so');
  process.env.SANDBOX_SUPERVISOR = join(ROOT, 'native/build/sbx-supervise');
  const { main } = await import('../../src/cli/main');
  // main() prints the sandbox's name; the test reporter writes to the same stdout meanwhile, and
  // its lines must pass.
  const quiet = async (argv: string[]) => {
    const write = process.stdout.write;
    let out = '';
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
      if (chunk === 'load-0\n') { out += chunk; return true; }
      return write.call(process.stdout, chunk, ...rest);
    }) as typeof process.stdout.write;
    try { return { code: await main(argv), out }; } finally { process.stdout.write = write; }
  };
  // One cycle first: the engine's library and first-use state are loaded once, not leaked.
  assert.equal((await quiet(['up', '-q', '--name', 'load-0', join(ROOT, IDLE)])).code, 0);
  assert.equal((await quiet(['down', 'load-0'])).code, 0);
  const fds = readdirSync('/proc/self/fd').length;
  const listeners = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGWINCH'].map((s) => process.listenerCount(s));
  const t0 = performance.now();
  for (let i = 0; i < CYCLES; i++) {
    const up = await quiet(['up', '-q', '--name', 'load-0', join(ROOT, IDLE)]);
    assert.deepEqual(up, { code: 0, out: 'load-0\n' }, `cycle ${i}`);
    const down = await quiet(['down', 'load-0']);
    assert.equal(down.code, 0, `cycle ${i}`);
  }
  t.diagnostic(`${CYCLES} up -d/down cycles: ${((performance.now() - t0) / CYCLES).toFixed(1)} ms each`);
  // At most as many as before: one the test runner had open then may have closed since.
  const after = readdirSync('/proc/self/fd').length;
  assert.ok(after <= fds, `the CLI code leaked file descriptors: ${fds} before, ${after} after ${CYCLES} cycles`);
  assert.deepEqual(['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGWINCH'].map((s) => process.listenerCount(s)), listeners, 'the CLI code leaked signal listeners');
  assert.equal(hostSnapshot(), before, `after ${CYCLES} cycles`);

  // 50 at once, started 10 at a time.
  for (let i = 0; i < names.length; i += 10) {
    const batch = await Promise.all(names.slice(i, i + 10).map((n) => new Promise<number | null>((resolve) => spawn(process.execPath, [BIN, 'up', '-q', '--name', n, IDLE], { cwd: ROOT, stdio: 'ignore' }).on('exit', resolve))));
    assert.deepEqual(batch, batch.map(() => 0));
  }
  const rows = ps(false).filter((r) => r.name.startsWith('load-'));
  assert.equal(rows.length, 50);
  // Each supervisor holds a handful of descriptors, and stays small.
  for (const r of rows) {
    const sup = Number(field(status(r.pid), 'PPid'));
    assert.ok(readdirSync(`/proc/${sup}/fd`).length <= 8, `supervisor of ${r.name} holds ${readdirSync(`/proc/${sup}/fd`).length} fds`);
  }
  const psStart = performance.now();
  const list = sandbox(['ps']);
  const psMs = performance.now() - psStart;
  assert.equal(list.out.trim().split('\n').length, 51);
  t.diagnostic(`sandbox ps with 50 sandboxes: ${psMs.toFixed(0)} ms`);
  for (let i = 0; i < names.length; i += 10) {
    const batch = await Promise.all(names.slice(i, i + 10).map((n) => new Promise<number | null>((resolve) => spawn(process.execPath, [BIN, 'down', n], { cwd: ROOT, stdio: 'ignore' }).on('exit', resolve))));
    assert.deepEqual(batch, batch.map(() => 0));
  }
  assert.equal(hostSnapshot(), before, 'after 50 at once');
});
