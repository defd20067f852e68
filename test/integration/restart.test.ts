// Restarts and ports, checked with real clients and from inside: the command is PID 1 of every
// run, with or without `restart:` (a restart is a new pid namespace made from outside, in the same
// network namespace, so the port keeps answering); when the command ends for good, or on `stop`,
// its port maps go at once (a client is refused, a host server can take the port, another sandbox
// can publish it); a port a running sandbox holds is refused to another, naming it; `down` leaves
// nothing. Host ports 18430-18439 on 127.0.0.1 only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasEngine, hasNft, hostSnapshot, isRoot, needs, sandbox } from '../helpers/sandbox';
import { ROOT } from '../helpers/load';

const ready = (t: import('node:test').TestContext) => needs(t, 'root', isRoot) && needs(t, 'the native engine', hasEngine) && needs(t, 'nftables', hasNft);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Row { name: string; status: string; exitCode: number | null; pid: number; restarts: number; ports: { hostPort: number }[] }
const ps = (): Row[] => JSON.parse(sandbox(['ps', '--json', '-a']).out) as Row[];
const row = (name: string) => ps().find((r) => r.name === name);

/** A TCP connect to 127.0.0.1:port with a short timeout: refused, connected, or timeout. */
function connectTo(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => { s.destroy(); resolve('timeout'); }, 1500);
    s.on('connect', () => { clearTimeout(timer); s.destroy(); resolve('connected'); });
    s.on('error', (e) => { clearTimeout(timer); resolve((e as NodeJS.ErrnoException).code === 'ECONNREFUSED' ? 'refused' : String((e as NodeJS.ErrnoException).code)); });
  });
}

/** The HTTP status of GET http://127.0.0.1:port/ (0: no answer within a second). */
async function httpStatus(port: number): Promise<number> {
  try { return (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) })).status; } catch { return 0; }
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) if (await ok()) return;
  assert.fail(`timed out waiting for ${what}`);
}

/** Whether a host program can bind 127.0.0.1:port now: 'bound' (and let go at once), or the error code. */
function hostBind(port: number): Promise<string> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve('bound')));
  });
}

/** A host server on 127.0.0.1:port (python3's http.server), which must bind and answer. */
async function hostServer(port: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-host-'));
  const srv = spawn('python3', ['-m', 'http.server', String(port), '--bind', '127.0.0.1'], { cwd: dir, stdio: 'ignore' });
  try {
    // python3 starts in well under a second here, and in several on the emulated cgroup v2 VM.
    await until(`a host server on ${port}`, async () => (await httpStatus(port)) === 200, 60_000);
  } finally {
    srv.kill('SIGKILL');
    await new Promise((r) => srv.on('exit', r));
  }
}

function configFile(dir: string, name: string, lines: string[]): string {
  const file = join(dir, `${name}.yml`);
  writeFileSync(file, ['version: 1', `name: ${name}`, 'rootfs: host', ...lines, ''].join('\n'));
  return file;
}

/** A shell line (its $ doubled: the file is interpolated as Compose does) that records, in /out/runs, what PID 1 is in this run: its PID as it reads itself
 * (/proc/self/stat of the shell, the command), its command line and its executable. */
const RECORD = 'read self rest < /proc/self/stat; printf "%s|%s|%s|%s\\n" "$$$$" "$$self" "$(tr "\\0" " " < /proc/1/cmdline)" "$(readlink /proc/1/exe)" >> /out/runs';
const SERVE = 'python3 -m http.server 8080 --bind 0.0.0.0 >/dev/null 2>&1 &';
/** Waits (at most 30 s) until the server SERVE started answers: a run then lasts its server's start
 * plus a fixed time, however slow the machine (python takes seconds to start in the TCG VM). One
 * line: RECORD writes the command line as one line of /out/runs. */
const SERVING = 'python3 -c "import socket,time; any(socket.socket().connect_ex((\'127.0.0.1\',8080)) == 0 or time.sleep(0.05) for _ in range(600))";';

test('detached, restart: on-failure:2: PID 1 is the command in each of 3 runs, the port answers across restarts, and is released when the command ends for good; stop releases it too; a port held by a running sandbox is refused naming it', async (t) => {
  if (!ready(t)) return;
  const before = hostSnapshot();
  t.after(() => { for (const n of ['rs-web', 'rs-two', 'rs-three']) sandbox(['down', n]); });
  const dir = mkdtempSync(join(tmpdir(), 'sbx-restart-'));
  mkdirSync(join(dir, 'out'));
  const web = configFile(dir, 'rs-web', ['detach: true', 'restart: on-failure:2', 'ports: ["127.0.0.1:18431:8080"]', 'volumes: ["./out:/out"]',
    `command: ${JSON.stringify(['sh', '-c', `${RECORD}; ${SERVE} ${SERVING} sleep 2; exit 3`])}`]);
  const up = sandbox(['up', '-q', web]);
  assert.equal(up.code, 0, up.err);
  const runs = () => { try { return readFileSync(join(dir, 'out', 'runs'), 'utf8').trim().split('\n'); } catch { return []; } };
  // A restart keeps the port: it answers in the second run (a new pid namespace in the same network one).
  await until('the second run', () => runs().length >= 2, 60_000);
  await until('the port to answer in the second run', async () => (await httpStatus(18431)) === 200, 60_000);
  // The CLI is gone, and the host's port is still taken (the supervisor holds it), across restarts:
  // a host program cannot bind it and be shadowed by the port map, as under Docker.
  assert.equal(await hostBind(18431), 'EADDRINUSE', 'a host program cannot take a port the detached sandbox publishes');
  // exec joins the current run (its PID 1 is the one the supervisor recorded last).
  const inRun = sandbox(['exec', 'rs-web', 'sh', '-c', 'wc -l < /out/runs; tr "\\0" " " < /proc/1/cmdline']);
  assert.equal(inRun.code, 0, inRun.err);
  assert.match(inRun.out, /^[23]\nsh -c read self rest/);
  assert.equal(row('rs-web')?.ports.length, 1, 'a running sandbox shows its port');
  await until('the command to end for good', () => row('rs-web')?.status === 'exited', 90_000);
  assert.equal(row('rs-web')?.exitCode, 3);
  assert.equal(row('rs-web')?.restarts, 2, 'ps counts the restarts');
  assert.equal(runs().length, 3, runs().join('\n'));
  for (const r of runs()) {
    const [pid, self, cmdline, exe] = r.split('|');
    assert.equal(pid, '1', `the command is PID 1 in every run: ${r}`);
    assert.equal(self, '1', `/proc/self/stat of PID 1: ${r}`);
    assert.match(cmdline!, /^sh -c read self rest/, `/proc/1/cmdline is the command: ${r}`);
    assert.ok(!cmdline!.includes(ROOT) && !/sbx-|node/.test(cmdline!), `no host path of sandbox's own in /proc/1/cmdline: ${r}`);
    assert.ok(!exe!.includes(ROOT) && !/sbx-|node/.test(exe!), `/proc/1/exe: ${r}`);
  }
  assert.match(sandbox(['logs', 'rs-web']).err, /restart 1 of 2 in 100 ms[\s\S]*restart 2 of 2 in 200 ms/);
  // Ended for good: the port maps are gone at once.
  assert.equal(await connectTo(18431), 'refused', 'a client is refused, not left to time out');
  assert.deepEqual(row('rs-web')?.ports, [], 'ps shows no port once it is released');
  assert.ok(!execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }).includes('sbx_rs_web'), 'the nftables table is gone');
  await hostServer(18431);
  // A port a host program holds is still found by the bind test (the host server here is python's).
  const dir2 = mkdtempSync(join(tmpdir(), 'sbx-host-'));
  const holder = spawn('python3', ['-m', 'http.server', '18433', '--bind', '127.0.0.1'], { cwd: dir2, stdio: 'ignore' });
  try {
    await until('a host server on 18433', async () => (await httpStatus(18433)) === 200, 60_000);
    const busy = sandbox(['up', '-q', configFile(dir, 'rs-busy', ['detach: true', 'ports: ["127.0.0.1:18433:8080"]', 'command: [sleep, "600"]'])]);
    assert.equal(busy.code, 125, busy.err);
    assert.match(busy.err, /rs-busy\.yml:5:9: error: host port 18433\/tcp on 127\.0\.0\.1 is already in use \(by another program or sandbox\); pick another host port/);
  } finally {
    holder.kill('SIGKILL');
    await new Promise((r) => holder.on('exit', r));
  }

  // Another sandbox may publish it now; while that one runs, a third is refused at its ports line.
  const two = configFile(dir, 'rs-two', ['detach: true', 'ports: ["127.0.0.1:18431:8080"]', `command: ${JSON.stringify(['sh', '-c', `${SERVE} exec sleep 600`])}`, 'init: true']);
  assert.equal(sandbox(['up', '-q', two]).code, 0);
  await until('the second sandbox to answer', async () => (await httpStatus(18431)) === 200);
  assert.equal(await hostBind(18431), 'EADDRINUSE', 'a detached sandbox without restarts holds its port too');
  const three = configFile(dir, 'rs-three', ['detach: true', 'ports: ["18431:8080"]', 'command: [sleep, "600"]']);
  const refused = sandbox(['up', '-q', three]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.err, /rs-three\.yml:5:9: error: port 127\.0\.0\.1:18431\/tcp is published by running sandbox "rs-two"; stop it with sandbox stop rs-two/, refused.err);
  assert.equal(row('rs-three'), undefined, 'the refused sandbox left no state');

  // stop: the port goes at once too; state and log stay until down.
  assert.equal(sandbox(['stop', '-t', '2', 'rs-two']).code, 0);
  assert.equal(row('rs-two')?.status, 'exited');
  assert.equal(await connectTo(18431), 'refused');
  assert.deepEqual(row('rs-two')?.ports, []);
  await hostServer(18431);
  assert.equal(sandbox(['up', '-q', three]).code, 0, 'an exited sandbox holds no port');
  assert.equal(sandbox(['down', 'rs-three']).code, 0);

  for (const n of ['rs-web', 'rs-two']) assert.equal(sandbox(['down', n]).code, 0);
  assert.equal(hostSnapshot(), before);
});

test('foreground, restart: tini as the entrypoint is PID 1 in each run (no warning), in the same network namespace; init: true is sandbox-init from a memfd, with no host path', async (t) => {
  if (!ready(t)) return;
  const before = hostSnapshot();
  t.after(() => { sandbox(['down', 'rs-tini']); sandbox(['down', 'rs-init']); });
  const dir = mkdtempSync(join(tmpdir(), 'sbx-restart-'));
  mkdirSync(join(dir, 'out'));
  // Debian's static tini: it warns "Tini is not running as PID 1" whenever it is not.
  const tini = configFile(dir, 'rs-tini', ['restart: on-failure:1', 'ports: ["127.0.0.1:18432:8080"]', 'volumes: ["./out:/out"]',
    `command: ${JSON.stringify(['/usr/bin/tini-static', '--', 'sh', '-c', `${RECORD}; ip -o -4 addr show eth0 | tr -s " " | cut -d" " -f4 >> /out/addr; echo ran; exit 1`])}`]);
  const r = sandbox(['up', '-q', tini]);
  assert.equal(r.code, 1, r.err);
  assert.equal(r.out, 'ran\nran\n');
  assert.doesNotMatch(r.err, /Tini is not running as PID 1/);
  assert.match(r.err, /sandbox: the command exited with code 1; restart 1 of 1 in 100 ms/);
  const runs = readFileSync(join(dir, 'out', 'runs'), 'utf8').trim().split('\n');
  assert.equal(runs.length, 2);
  for (const line of runs) assert.match(line, /^\d+\|\d+\|\/usr\/bin\/tini-static -- sh -c read self rest/, `tini is PID 1: ${line}`);
  const addrs = readFileSync(join(dir, 'out', 'addr'), 'utf8').trim().split('\n');
  assert.equal(addrs.length, 2);
  assert.equal(addrs[0], addrs[1], 'a restart keeps the address (the same network namespace)');
  assert.match(addrs[0]!, /^\d+\.\d+\.\d+\.\d+\/\d+$/);

  // init: true with a restart: PID 1 is sandbox-init, exec'd from its sealed memfd.
  const init = configFile(dir, 'rs-init', ['init: true', 'restart: on-failure:1', 'network: none', 'volumes: ["./out:/out"]',
    `command: ${JSON.stringify(['sh', '-c', 'tr "\\0" " " < /proc/1/cmdline >> /out/init; echo >> /out/init; readlink /proc/1/exe >> /out/init; exit 2'])}`]);
  const i = sandbox(['up', '-q', init]);
  assert.equal(i.code, 2, i.err);
  const seen = readFileSync(join(dir, 'out', 'init'), 'utf8').trim().split('\n').map((l) => l.trim());
  const once = ['sandbox-init -- sh -c tr "\\0" " " < /proc/1/cmdline >> /out/init; echo >> /out/init; readlink /proc/1/exe >> /out/init; exit 2', '/memfd:sandbox-init (deleted)'];
  assert.deepEqual(seen, [...once, ...once]);
  assert.equal(hostSnapshot(), before);
});
