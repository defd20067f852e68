// Rootless private networking (src/engine/rootless-net), as a user this test makes: a "sandbox"
// (python3 in a new user and network namespace, as that user, answering each client with the
// source address it sees) gets pasta or slirp4netns attached by a node process of the same user,
// the driver, which plays the CLI. The test, as root, then checks from outside: the port maps from
// 127.0.0.1, and from a client in a network namespace the test makes with a veth pair to the host
// (traffic goes only there and to loopback); and that nothing is left running after stop(), after
// the sandbox ends on its own, and after the driver is killed with -9 while the sandbox goes on.
// /dev/net/tun is 0600 on hosts without udev: tunForUsers() makes it 0666 for the test, as udev
// does on a fresh Debian, and puts the mode back after.
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { isRoot, needs } from '../helpers/sandbox';
import { canMakeUsers, defaultRouteForPasta, makeUser, PYTHON3, pidsOf, removeAllUsers, repoForUsers, spawnAsUser, tunForUsers, userTmp, type TestUser } from '../helpers/users';
import type { DriverConfig } from '../helpers/usernet-driver';
import type { UserNet, UserNetPort } from '../../src/host/rootless-net';

const has = (cmd: string) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
const hasPython = has(PYTHON3);
const hasPasta = existsSync('/usr/bin/pasta');
const hasSlirp = has('slirp4netns');

let user: TestUser | undefined;
let tun: ReturnType<typeof tunForUsers> | undefined;
let route: ReturnType<typeof defaultRouteForPasta> | undefined;
const scratch: string[] = [];
const drivers: ChildProcess[] = [];

/** The client's network namespace, with a veth pair to the host: a /30 of TEST-NET-3 picked by this process's PID. */
const k = (process.pid % 60) * 4;
const outside = { ns: `rlnetc${process.pid}`, hostIf: `rlnh${process.pid}`, hostIp: `203.0.113.${k + 1}`, clientIp: `203.0.113.${k + 2}` };
let outsideMade = false;

function ready(t: TestContext, tool: 'pasta' | 'slirp4netns'): boolean {
  return needs(t, 'root', isRoot) && needs(t, 'useradd', canMakeUsers) && needs(t, 'python3', hasPython)
    && needs(t, tool === 'pasta' ? 'pasta (apt-get install passt)' : 'slirp4netns (apt-get install slirp4netns)', tool === 'pasta' ? hasPasta : hasSlirp)
    && needs(t, 'the test set-up (a user, a network namespace)', !!user && outsideMade);
}

before(() => {
  if (!isRoot || !canMakeUsers) return;
  user = makeUser('rlnet');
  tun = tunForUsers();
  // pasta needs a routable interface to copy; a VM without a network (the v2 VM) has none.
  route = defaultRouteForPasta('rlnetdef0');
  const sh = (s: string) => execFileSync('sh', ['-c', s], { stdio: 'pipe' });
  sh(`ip netns add ${outside.ns} && ip link add ${outside.hostIf} type veth peer name eth0 netns ${outside.ns}`
    + ` && ip addr add ${outside.hostIp}/30 dev ${outside.hostIf} && ip link set ${outside.hostIf} up`
    + ` && ip -n ${outside.ns} addr add ${outside.clientIp}/30 dev eth0 && ip -n ${outside.ns} link set eth0 up && ip -n ${outside.ns} link set lo up`);
  outsideMade = true;
});

after(() => {
  for (const d of drivers) if (d.exitCode === null && d.signalCode === null) d.kill('SIGKILL');
  removeAllUsers();
  tun?.undo();
  route?.undo();
  spawnSync('ip', ['link', 'del', outside.hostIf], { stdio: 'ignore' });
  spawnSync('ip', ['netns', 'del', outside.ns], { stdio: 'ignore' });
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

/** A port free on the host for both TCP and UDP (the kernel's pick). */
async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve) => { const s = createServer().listen(0, '0.0.0.0', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); }); });
    if (await bindable(port, 'udp', '0.0.0.0')) return port;
  }
}

/** True where root can bind the port now: no tool holds it any more. */
function bindable(port: number, protocol: 'tcp' | 'udp', host: string): Promise<boolean> {
  return new Promise((resolve) => {
    if (protocol === 'udp') {
      const s = createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind({ port, address: host, exclusive: true }, () => s.close(() => resolve(true)));
    } else {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
    }
  });
}

/** Asks the sandbox, through a port map, which source address it sees: from this host, or from the client's namespace. */
function seen(protocol: 'tcp' | 'udp', host: string, port: number, from: 'host' | 'outside', say = 'who'): string {
  const py = protocol === 'tcp'
    ? `import socket\ns=socket.create_connection(('${host}',${port}),timeout=3)\ns.sendall(b'${say}\\n')\nprint(s.recv(64).decode().strip())`
    // UDP may be lost: 10 tries over 5 s.
    : `import socket\nu=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nu.settimeout(0.5)\nfor i in range(10):\n  u.sendto(b'${say}',('${host}',${port}))\n  try:\n    print(u.recv(64).decode().strip()); break\n  except socket.timeout: pass\nelse: print('no answer')`;
  const argv = from === 'outside' ? ['ip', 'netns', 'exec', outside.ns, PYTHON3, '-c', py] : [PYTHON3, '-c', py];
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout.trim() : `failed: ${r.stderr.trim().split('\n').pop()}`;
}

interface Started { event: 'started'; ms: number; target: number; netns: string; net: Omit<UserNet, 'stop'> }

/** Runs the driver as the user; its JSON lines come back through next(). */
function driver(cfg: DriverConfig) {
  const child = spawnAsUser(user!, [process.execPath, join(repoForUsers(), 'build/test/helpers/usernet-driver.js'), JSON.stringify(cfg)]);
  drivers.push(child);
  const lines: Record<string, unknown>[] = [];
  const waiting: ((l: Record<string, unknown> | undefined) => void)[] = [];
  let err = '';
  child.stderr!.on('data', (d) => { err += d; });
  createInterface({ input: child.stdout! }).on('line', (l) => { const o = JSON.parse(l); const w = waiting.shift(); if (w) w(o); else lines.push(o); });
  child.once('exit', () => { for (const w of waiting.splice(0)) w(undefined); });
  const next = (ms = 20_000): Promise<Record<string, unknown>> => new Promise((resolve, reject) => {
    if (lines.length) { resolve(lines.shift()!); return; }
    const timer = setTimeout(() => reject(new Error(`the driver said nothing within ${ms} ms; stderr: ${err}`)), ms);
    waiting.push((l) => { clearTimeout(timer); if (l) resolve(l); else reject(new Error(`the driver ended; stderr: ${err}`)); });
  });
  return { child, next, send: (s: string) => child.stdin!.write(s + '\n'), err: () => err };
}

async function start(tool: 'pasta' | 'slirp4netns', ports: UserNetPort[], tcp: number[], udp: number[]) {
  const stateDir = userTmp(user!);
  scratch.push(stateDir);
  const peer = join(repoForUsers(), 'test/integration/fixtures/peer.py');
  const d = driver({ mode: 'start', tool, ports, stateDir, sandbox: ['python3', peer, ...tcp.map(String), '-u', ...udp.map(String)] });
  const s = await d.next();
  assert.equal(s.event, 'started', `the ${tool} network did not start: ${JSON.stringify(s)} ${d.err()}`);
  return { d, stateDir, ...(s as unknown as Started) };
}

/** A process that has not ended (a zombie has: it holds no socket and no namespace). */
function alive(pid: number): boolean {
  try { return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
}

/** Processes that hold the namespace (`net:[inode]`) by their namespace or an open file. */
function holders(netns: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      if (readlinkSync(`/proc/${p}/ns/net`) === netns) { out.push(Number(p)); continue; }
      if (readdirSync(`/proc/${p}/fd`).some((fd) => { try { return readlinkSync(`/proc/${p}/fd/${fd}`) === netns; } catch { return false; } })) out.push(Number(p));
    } catch { /* gone, or a kernel thread */ }
  }
  return out;
}

/** Waits until what must be gone is: the PIDs, the user's processes but `keep`, the namespace, the ports on the host. */
async function nothingLeft(o: { pids: number[]; keep?: number[]; netns?: string; ports?: UserNetPort[]; stateDir?: string; ms?: number }): Promise<void> {
  const left = async (): Promise<string[]> => {
    const out: string[] = [];
    // A process may end between the two reads: only one still there counts.
    for (const p of o.pids) if (alive(p)) { try { out.push(`process ${p} (${readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').trim()})`); } catch { /* gone */ } }
    for (const p of pidsOf(user!.uid)) if (alive(p) && !(o.keep ?? []).includes(p) && !drivers.some((d) => d.pid === p)) { try { out.push(`user process ${p} (${readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').trim()})`); } catch { /* gone */ } }
    if (o.netns) for (const p of holders(o.netns)) out.push(`process ${p} holds ${o.netns}`);
    for (const p of o.ports ?? []) if (!(await bindable(p.hostPort, p.protocol, p.hostIp || '0.0.0.0'))) out.push(`host port ${p.hostIp || '*'}:${p.hostPort}/${p.protocol} still bound`);
    if (o.stateDir) for (const f of readdirSync(o.stateDir)) out.push(`file ${f} in the state folder`);
    return out;
  };
  let found: string[] = [];
  // The watcher looks every 0.5 s; this host's init reaps orphans late.
  for (const end = Date.now() + (o.ms ?? 8000); Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (!(found = await left()).length) return;
  assert.deepEqual(found, [], 'left behind');
}

const tcpAt = (hostIp: string, hostPort: number, containerPort: number): UserNetPort => ({ hostIp, hostPort, containerPort, protocol: 'tcp' });
const udpAt = (hostIp: string, hostPort: number, containerPort: number): UserNetPort => ({ hostIp, hostPort, containerPort, protocol: 'udp' });

test('pasta: TCP and UDP port maps keep the client\'s source address, from loopback and from another namespace; stop() leaves nothing', async (t) => {
  if (!ready(t, 'pasta')) return;
  const [p1, p2, p3, p4] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const ports = [tcpAt('127.0.0.1', p1, 80), udpAt('', p2, p2), tcpAt('', p3, 81), udpAt('', p4, 5353)];
  const s = await start('pasta', ports, [80, 81], [p2, 5353]);
  t.diagnostic(`pasta up in ${s.ms.toFixed(0)} ms: ${JSON.stringify(s.net)}`);
  assert.equal(s.net.tool, 'pasta');
  assert.equal(s.net.interface, 'eth0');
  assert.match(s.net.address, /^\d+\.\d+\.\d+\.\d+$/);
  assert.match(s.net.gateway, /^\d+\.\d+\.\d+\.\d+$/);
  assert.ok(alive(s.net.pid) && alive(s.net.watcherPid));

  // From the host's loopback, pasta splices the connection onto the sandbox's own loopback.
  assert.equal(seen('tcp', '127.0.0.1', p1, 'host'), '127.0.0.1', 'TCP from 127.0.0.1');
  assert.equal(seen('udp', '127.0.0.1', p2, 'host'), '127.0.0.1', 'UDP from 127.0.0.1');
  // From another namespace, the sandbox sees the client's own address.
  assert.equal(seen('tcp', outside.hostIp, p3, 'outside'), outside.clientIp, 'TCP from the client namespace');
  assert.equal(seen('udp', outside.hostIp, p4, 'outside'), outside.clientIp, 'UDP from the client namespace, port number changed');
  // A port bound only on 127.0.0.1 is not reachable from outside.
  assert.match(seen('tcp', outside.hostIp, p1, 'outside'), /^failed/, 'a port published on 127.0.0.1 reached from outside');
  assert.deepEqual(s.net.warnings.length, 1, 'the remapped UDP port carries its warning');

  s.d.send('stop');
  const stopped = await s.d.next();
  assert.equal(stopped.event, 'stopped');
  t.diagnostic(`stop() took ${(stopped.ms as number).toFixed(0)} ms`);
  await nothingLeft({ pids: [s.net.pid, s.net.watcherPid], keep: [s.target], ports, stateDir: s.stateDir });
  assert.ok(alive(s.target), 'stop() must end the tool, not the sandbox');
  process.kill(s.target, 'SIGKILL');
  await nothingLeft({ pids: [s.target], netns: s.netns });
});

/** The driver ended as the test says: 'exit' (the CLI done, as after `up -d`) or SIGKILL (the CLI killed with -9). */
async function endDriver(d: ReturnType<typeof driver>, how: 'exit' | 'SIGKILL'): Promise<void> {
  const ended = new Promise((r) => d.child.once('exit', r));
  if (how === 'exit') d.send('exit'); else d.child.kill('SIGKILL');
  await ended;
}

for (const tool of ['pasta', 'slirp4netns'] as const) {
  test(`${tool}: after the CLI is done, the sandbox ending on its own ends ${tool} and its watcher, and its network namespace is gone`, async (t) => {
    if (!ready(t, tool)) return;
    const p = await freePort();
    const ports = [tcpAt('127.0.0.1', p, 80)];
    const s = await start(tool, ports, [80], []);
    await endDriver(s.d, 'exit');
    assert.match(seen('tcp', '127.0.0.1', p, 'host'), /^\d/, 'the network must outlive the CLI');
    seen('tcp', '127.0.0.1', p, 'host', 'exit'); // the sandbox's server ends itself
    await nothingLeft({ pids: [s.target, s.net.pid, s.net.watcherPid], netns: s.netns, ports });
  });

  test(`${tool}: the CLI killed with -9 leaves the network up while the sandbox runs; it ends when the sandbox ends`, async (t) => {
    if (!ready(t, tool)) return;
    const p = await freePort();
    const ports = [tcpAt('', p, 80)];
    const s = await start(tool, ports, [80], []);
    await endDriver(s.d, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 1000)); // a watcher tied to the CLI would have acted by now
    assert.ok(alive(s.net.pid), `${tool} must not die with the CLI: a detached sandbox outlives it`);
    assert.match(seen('tcp', outside.hostIp, p, 'outside'), /^\d/, 'the port map must work after the CLI is gone');
    process.kill(s.target, 'SIGTERM');
    await nothingLeft({ pids: [s.target, s.net.pid, s.net.watcherPid], netns: s.netns, ports });
  });

  test(`${tool}: stopRecorded() from a later process ends what a CLI killed with -9 started, and leaves the sandbox`, async (t) => {
    if (!ready(t, tool)) return;
    const p = await freePort();
    const ports = [tcpAt('127.0.0.1', p, 80)];
    const s = await start(tool, ports, [80], []);
    await endDriver(s.d, 'SIGKILL');
    const later = driver({ mode: 'stop-recorded', stateDir: s.stateDir });
    assert.deepEqual(await later.next(), { event: 'stopRecorded', found: true });
    await nothingLeft({ pids: [s.net.pid, s.net.watcherPid], keep: [s.target], ports, stateDir: s.stateDir });
    assert.ok(alive(s.target));
    const again = driver({ mode: 'stop-recorded', stateDir: s.stateDir });
    assert.deepEqual(await again.next(), { event: 'stopRecorded', found: false });
    process.kill(s.target, 'SIGKILL');
    await nothingLeft({ pids: [s.target], netns: s.netns });
  });

  test(`${tool}: a published port that is taken fails with the tool's message and a way out, and leaves nothing`, async (t) => {
    if (!ready(t, tool)) return;
    const p = await freePort();
    const taken = createServer();
    await new Promise<void>((r) => taken.listen({ port: p, host: '127.0.0.1' }, () => r()));
    try {
      const stateDir = userTmp(user!);
      scratch.push(stateDir);
      const d = driver({ mode: 'start', tool, ports: [tcpAt('127.0.0.1', p, 80)], stateDir, sandbox: ['python3', join(repoForUsers(), 'test/integration/fixtures/peer.py'), '80'] });
      const r = await d.next();
      assert.equal(r.event, 'error');
      t.diagnostic(String(r.message));
      assert.match(String(r.message), new RegExp(`^${tool} could not .*: .+; .*(port|fix)`));
      assert.doesNotMatch(String(r.message), /\n\s+at /, 'no stack trace');
      await nothingLeft({ pids: [], keep: [r.target as number], stateDir });
      process.kill(r.target as number, 'SIGKILL');
      await nothingLeft({ pids: [r.target as number], netns: r.netns as string });
    } finally { taken.close(); }
  });
}

test('slirp4netns: port maps through its API socket; a client on the host\'s loopback is seen as its gateway, others by their own address; stop() leaves nothing', async (t) => {
  if (!ready(t, 'slirp4netns')) return;
  const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
  const ports = [tcpAt('127.0.0.1', p1, 80), tcpAt('', p2, 81), udpAt('', p3, 5353)];
  const s = await start('slirp4netns', ports, [80, 81], [5353]);
  t.diagnostic(`slirp4netns up in ${s.ms.toFixed(0)} ms: ${JSON.stringify(s.net)}`);
  assert.deepEqual([s.net.address, s.net.gateway, s.net.dns, s.net.prefixLength], ['10.0.2.100', '10.0.2.2', ['10.0.2.3'], 24]);
  assert.equal(seen('tcp', '127.0.0.1', p1, 'host'), '10.0.2.2', 'TCP from 127.0.0.1');
  assert.equal(seen('tcp', outside.hostIp, p2, 'outside'), outside.clientIp, 'TCP from the client namespace');
  assert.equal(seen('udp', outside.hostIp, p3, 'outside'), outside.clientIp, 'UDP from the client namespace');
  assert.equal(s.net.warnings.length, 1, 'the UDP port carries its warning about loopback clients');
  s.d.send('stop');
  assert.equal((await s.d.next()).event, 'stopped');
  await nothingLeft({ pids: [s.net.pid, s.net.watcherPid], keep: [s.target], ports, stateDir: s.stateDir });
  process.kill(s.target, 'SIGKILL');
  await nothingLeft({ pids: [s.target], netns: s.netns });
});
