// Networking from both sides: what the sandbox sees (interfaces, address, routes, /etc files)
// and what the host reaches (TCP and UDP through each kind of port map). Traffic goes only to
// loopback and to addresses of this machine; every loop is bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostInterface } from '../../src/plan/paths';
import { networkInterfaces } from 'node:os';
import { BIN, hasEngine, hasNft, hostSnapshot, isRoot, leftovers, needs, sandbox } from '../helpers/sandbox';
import { ROOT } from '../helpers/load';

const ready = (t: import('node:test').TestContext) => needs(t, 'root', isRoot) && needs(t, 'the native engine', hasEngine) && needs(t, 'nftables (apt-get install nftables)', hasNft);

function echoTcp(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    let got = '';
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`tcp ${host}:${port}: no echo within 3 s`)); }, 3000);
    s.on('connect', () => s.end('ping-tcp'));
    s.on('data', (d) => { got += d; });
    s.on('close', () => { clearTimeout(timer); resolve(got); });
    s.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

function echoUdp(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    let tries = 0;
    // UDP may be lost; 10 tries over 5 s, for the emulated cgroup v2 VM of CI, about 10× slower.
    const send = () => { if (tries++ >= 10) { s.close(); reject(new Error(`udp ${host}:${port}: no echo after 10 tries`)); return; } s.send('ping-udp', port, host); };
    const timer = setInterval(send, 500);
    s.on('message', (m) => { clearInterval(timer); s.close(); resolve(String(m)); });
    send();
  });
}

/** Runs an echo sandbox in the foreground until it prints `ready`; stop() ends it with SIGTERM (init forwards it). */
async function startEcho(file: string): Promise<{ stop(): Promise<void> }> {
  const child = spawn(process.execPath, [BIN, 'up', '-q', file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((r) => child.on('exit', r));
  const stop = async () => { child.kill('SIGTERM'); await exited; };
  let out = '', err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  for (let i = 0; i < 600 && !out.includes('ready'); i++) await new Promise((r) => setTimeout(r, 50));
  if (!out.includes('ready')) { await stop(); assert.fail(`the echo sandbox ${file} did not start: ${err}`); }
  return { stop };
}

/** An address of this machine other than loopback; the test adds one on a dummy link where there is none (a VM). */
function hostAddress(): { ip: string; cleanup(): void } {
  for (const [name, list] of Object.entries(networkInterfaces())) {
    if (name.startsWith('sbx')) continue;
    const a = list?.find((x) => x.family === 'IPv4' && !x.internal);
    if (a) return { ip: a.address, cleanup: () => undefined };
  }
  execFileSync('ip', ['-batch', '-'], { input: 'link add sbxtest0 type dummy\naddr add 192.0.2.200/32 dev sbxtest0\nlink set sbxtest0 up\n' });
  return { ip: '192.0.2.200', cleanup: () => execFileSync('ip', ['link', 'del', 'sbxtest0']) };
}

test('network: none has only lo; host sees the host\'s interfaces; private has eth0, its route and its /etc files', (t) => {
  if (!ready(t)) return;
  const none = sandbox(['up', '-q', 'samples/locked-down.yml', '--', '/bin/sh', '-c', 'cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "']);
  assert.equal(none.code, 0, none.err);
  assert.deepEqual(none.out.trim().split('\n'), ['lo']);
  const hostIfs = require('node:fs').readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).map((l: string) => l.split(':')[0]!.trim()).filter(Boolean).sort();
  const host = sandbox(['up', '-q', 'test/integration/fixtures/host-network.yml', '--', '/bin/sh', '-c', 'cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "']);
  assert.equal(host.code, 0, host.err);
  assert.deepEqual(host.out.trim().split('\n').sort(), hostIfs);
  const priv = sandbox(['up', '-q', 'test/integration/fixtures/private-network.yml']);
  assert.equal(priv.code, 0, priv.err);
  const lines = priv.out.trim().split('\n');
  assert.match(lines[0]!, /^eth0 lo$/);
  assert.match(lines[1]!, /^inet 10\.89\.0\.2\/24/);
  assert.match(lines[2]!, /^default via 10\.89\.0\.1 dev eth0/);
  assert.ok(lines.includes('10.89.0.2\tpriv-box'), priv.out);
  assert.ok(lines.includes('10.1.2.3\tdb'), priv.out);
  assert.ok(lines.includes('nameserver 192.0.2.53'), priv.out);
  assert.ok(lines.includes('gateway reachable'), priv.out);
  assert.deepEqual(leftovers('private-net'), []);
});

/** The EUI-64 link-local address the kernel gives an interface of this MAC address. */
function linkLocal(mac: string): string {
  const b = mac.split(':').map((x) => parseInt(x, 16));
  const e = [b[0]! ^ 2, b[1]!, b[2]!, 0xff, 0xfe, b[3]!, b[4]!, b[5]!];
  return `fe80::${[0, 2, 4, 6].map((i) => ((e[i]! << 8) | e[i + 1]!).toString(16)).join(':')}`;
}

test('the private network is IPv4 only: no IPv6 address on either end of the veth, and a host service on :: is not reached by link-local from inside', async (t) => {
  if (!ready(t)) return;
  if (!require('node:fs').existsSync('/proc/sys/net/ipv6')) { t.skip('this kernel has no IPv6'); return; }
  const server = createServer((c) => c.end('host service\n'));
  await new Promise<void>((r) => server.listen({ host: '::', port: 0 }, r));
  const port = (server.address() as import('node:net').AddressInfo).port;
  const dir = mkdtempSync(join(tmpdir(), 'sbx-v6-'));
  const file = join(dir, 'v6.yml');
  writeFileSync(file, 'version: 1\nname: v6-off\nnetwork: private\ndetach: true\ncommand: [sleep, "120"]\n');
  t.after(() => { sandbox(['down', 'v6-off']); server.close(); });
  const up = sandbox(['up', '-q', file]);
  assert.equal(up.code, 0, up.err);
  const hostIf = hostInterface('v6-off');
  assert.equal(readFileSync(`/proc/sys/net/ipv6/conf/${hostIf}/disable_ipv6`, 'utf8').trim(), '1', 'the host end has IPv6 off');
  assert.equal(execFileSync('ip', ['-6', '-o', 'addr', 'show', 'dev', hostIf], { encoding: 'utf8' }).trim(), '', 'the host end has no IPv6 address');
  // The address the host end would have had: what a sandbox would dial to reach the host on ::.
  const target = linkLocal(readFileSync(`/sys/class/net/${hostIf}/address`, 'utf8').trim());
  const probe = `import socket
print(open('/proc/sys/net/ipv6/conf/eth0/disable_ipv6').read().strip())
print(sorted(l.split()[5] for l in open('/proc/net/if_inet6')))
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM); s.settimeout(3)
try:
    s.connect(('${target}', ${port}, 0, socket.if_nametoindex('eth0'))); print('reached', s.recv(64).decode().strip())
except OSError as e:
    print('refused', e.errno)`;
  const r = sandbox(['exec', 'v6-off', 'python3', '-c', probe]);
  assert.equal(r.code, 0, r.err);
  const [off, addrs, result] = r.out.trim().split('\n');
  assert.equal(off, '1', r.out);
  assert.equal(addrs, "['lo']", `only lo has an IPv6 address inside: ${r.out}`);
  assert.match(result!, /^refused \d+$/, `the host service on :: is not reached: ${r.out}`);
  assert.equal(sandbox(['down', 'v6-off']).code, 0);
});

test('TCP and UDP reach the sandbox through each kind of port map, from 127.0.0.1 and the host\'s own address', async (t) => {
  if (!ready(t)) return;
  const before = hostSnapshot();
  const addr = hostAddress();
  const echo = await startEcho('test/integration/fixtures/echo.yml');
  try {
    assert.equal(await echoTcp('127.0.0.1', 17000), 'ping-tcp');
    assert.equal(await echoUdp('127.0.0.1', 17000), 'ping-udp');
    assert.equal(await echoTcp('127.0.0.1', 17001), 'ping-tcp');
    assert.equal(await echoTcp(addr.ip, 17001), 'ping-tcp');
    assert.equal(await echoUdp(addr.ip, 17001), 'ping-udp');
    assert.equal(await echoTcp('127.0.0.1', 17010), 'ping-tcp');
    assert.equal(await echoTcp('127.0.0.1', 17011), 'ping-tcp');
    // Loopback-only maps are not on the host's other addresses.
    await assert.rejects(echoTcp(addr.ip, 17000));
    // A second sandbox asking for a port the first holds: a clear error, naming the first, before anything is set up.
    const clash = sandbox(['up', '-q', 'test/integration/fixtures/echo-clash.yml']);
    assert.equal(clash.code, 125, clash.err);
    assert.match(clash.err, /test\/integration\/fixtures\/echo-clash\.yml:6:5: error: port 127\.0\.0\.1:17000\/tcp is published by running sandbox "echo"; stop it with sandbox stop echo, or pick another host port/);
    assert.deepEqual(leftovers('echo-clash'), []);
  } finally {
    await echo.stop();
    addr.cleanup();
  }
  assert.deepEqual(leftovers('echo'), []);
  assert.equal(hostSnapshot(), before, 'the host\'s links, nftables rules, listening sockets or ip_forward changed');
});

test('the user-space forwarder (splice) carries TCP, UDP, and IPv6 on the host to the sandbox\'s IPv4', async (t) => {
  if (!ready(t)) return;
  const hasV6 = (() => { try { return require('node:fs').readFileSync('/proc/net/if_inet6', 'utf8').includes('00000000000000000000000000000001'); } catch { return false; } })();
  if (!needs(t, 'IPv6 on lo', hasV6)) return;
  const before = hostSnapshot();
  const plan = sandbox(['plan', 'test/integration/fixtures/echo-userspace.yml']);
  assert.match(plan.out, /publish \[::1\]:18001\/tcp on the host to port 7000 inside \(userspace: network\.proxy asks for it\)/);
  const echo = await startEcho('test/integration/fixtures/echo-userspace.yml');
  try {
    assert.equal(await echoTcp('127.0.0.1', 18000), 'ping-tcp');
    assert.equal(await echoUdp('127.0.0.1', 18000), 'ping-udp');
    assert.equal(await echoTcp('::1', 18001), 'ping-tcp');
    // Nothing of this path is in nftables: the forwarder is all there is.
    assert.doesNotMatch(execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8' }), /dport 18000/);
  } finally {
    await echo.stop();
  }
  assert.deepEqual(leftovers('echo-userspace'), []);
  assert.equal(hostSnapshot(), before);
});

test('outbound traffic is masqueraded: an outside host (a namespace the test makes) sees the host\'s address', async (t) => {
  if (!ready(t)) return;
  const before = hostSnapshot();
  const sh = (script: string) => execFileSync('sh', ['-c', script], { stdio: 'pipe' });
  sh('ip netns add sbxtest-out && ip link add sbxto0 type veth peer name eth0 netns sbxtest-out && ip addr add 198.51.100.1/24 dev sbxto0 && ip link set sbxto0 up '
    + '&& ip -n sbxtest-out addr add 198.51.100.2/24 dev eth0 && ip -n sbxtest-out link set eth0 up && ip -n sbxtest-out link set lo up');
  // The outside host answers each connection with the address it came from.
  const server = spawn('ip', ['netns', 'exec', 'sbxtest-out', 'python3', '-c',
    "import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('198.51.100.2', 9000)); s.listen(4); print('ready', flush=True)\nwhile True:\n  c, a = s.accept(); c.sendall(a[0].encode()); c.close()"], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise((r) => server.stdout!.once('data', r));
    const r = sandbox(['up', '-q', 'test/integration/fixtures/nat-client.yml']);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.trim(), '198.51.100.1');
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.on('exit', r));
    sh('ip link del sbxto0; ip netns del sbxtest-out');
  }
  assert.deepEqual(leftovers('nat-client'), []);
  assert.equal(hostSnapshot(), before);
});

test('after kill -9 of the CLI the sandbox dies with it, and the next up leaves the host as it was', async (t) => {
  if (!ready(t)) return;
  const before = hostSnapshot();
  const child = spawn(process.execPath, [BIN, 'up', '-q', 'samples/web.yml'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let said = '';
  child.stdout!.on('data', (d) => { said += d; });
  child.stderr!.on('data', (d) => { said += d; });
  let code: number | null | undefined;
  const exited = new Promise((r) => child.on('exit', (c) => { code = c; r(c); }));
  try {
    // Running: its state is written once the command has started, after every setup step.
    let ps = '';
    for (const until = Date.now() + 20_000; Date.now() < until && code === undefined && !/\nweb +running/.test(ps = sandbox(['ps', '-a']).out); ) await new Promise((r) => setTimeout(r, 50));
    assert.ok(/\nweb +running/.test(ps) && leftovers('web').some((l) => l.startsWith('interface')), `the web sandbox did not start (exit ${code}): ${said}\n${ps}\n${leftovers('web').join('\n')}`);
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
  // Its processes die with the CLI (parent-death signal); the host-side pieces wait for the next run.
  for (let i = 0; i < 100 && leftovers('web').some((l) => l.startsWith('process')); i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(leftovers('web').filter((l) => l.startsWith('process')), []);
  const next = sandbox(['up', 'samples/web.yml', '--', '/bin/true']);
  assert.equal(next.code, 0, `exit ${next.code}\n${next.out}\n${next.err}`);
  assert.deepEqual(leftovers('web'), []);
  assert.equal(hostSnapshot(), before);
});

test('up/down cycles with a private network and port maps leave the host as it was', (t) => {
  if (!ready(t)) return;
  const cycles = Number(process.env.SANDBOX_NET_CYCLES ?? 200);
  const before = hostSnapshot();
  for (let i = 0; i < cycles; i++) {
    const r = sandbox(['up', '-q', 'samples/web.yml', '--', '/bin/true']);
    assert.equal(r.code, 0, `cycle ${i}: ${r.err}`);
  }
  assert.equal(hostSnapshot(), before);
  assert.deepEqual(leftovers('web'), []);
});
