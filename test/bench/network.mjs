// Network benchmark (issue 5), as root, in one run: iperf3 throughput, connections per second and
// round-trip latency through host loopback, the kernel path (nftables DNAT into a sandbox), the
// user-space path (libsbx's splice forwarder) and socat (a user-space peer, loopback to loopback).
// Only loopback addresses are used. Installs iperf3, socat and nftables with apt-get when missing.
//   node test/bench/network.mjs [SECONDS]
// Goals: kernel ≥ 85 % of loopback throughput and ≥ 80 % of its connections per second, p50
// latency ≤ 1.2 × loopback; user-space throughput ≥ socat's.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const secs = Number(process.argv[2] ?? 3);
const have = (c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;
if (!['iperf3', 'socat', 'nft'].every(have)) execFileSync('sh', ['-c', 'apt-get install -y -qq iperf3 socat nftables >/dev/null'], { stdio: 'inherit' });

const dir = mkdtempSync(join(tmpdir(), 'sandbox-netbench-'));
const children = [];
const start = (cmd, args, opts = {}) => { const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts }); children.push(c); return c; };
const waitFor = (c, text) => new Promise((resolve, reject) => {
  let out = '';
  const t = setTimeout(() => reject(new Error(`no "${text}" from ${c.spawnargs.join(' ')}: ${out}`)), 20000);
  const on = (d) => { out += d; if (out.includes(text)) { clearTimeout(t); resolve(); } };
  c.stdout.on('data', on); c.stderr.on('data', on);
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The peers: iperf3 and a TCP echo server on the host, socat in front of them.
const echo = join(root, 'test/integration/fixtures/echo.py');
start('iperf3', ['-s', '-B', '127.0.0.1', '-p', '15300']);
const hostEcho = start('python3', [echo, '15310']);
start('socat', ['TCP-LISTEN:15303,bind=127.0.0.1,fork,reuseaddr', 'TCP:127.0.0.1:15300']);
start('socat', ['TCP-LISTEN:15313,bind=127.0.0.1,fork,reuseaddr', 'TCP:127.0.0.1:15310']);
// Two sandboxes running the same servers: one published by the kernel path, one by the forwarder.
const config = (name, proxy, iperf, echoPort) => {
  const f = join(dir, `${name}.yml`);
  writeFileSync(f, [
    'version: 1', `name: ${name}`, 'init: true',
    `command: [/bin/sh, -c, "iperf3 -s -p 5201 & exec python3 /srv/echo.py 7000"]`,
    `volumes: ["${echo}:/srv/echo.py:ro"]`,
    `network: {mode: private, proxy: ${proxy}}`,
    `ports: ["127.0.0.1:${iperf}:5201", "127.0.0.1:${echoPort}:7000"]`, '',
  ].join('\n'));
  return f;
};
const kernel = start(process.execPath, [join(root, 'bin/sandbox.js'), 'up', '-q', config('bench-kernel', 'kernel', 15301, 15311)]);
const user = start(process.execPath, [join(root, 'bin/sandbox.js'), 'up', '-q', config('bench-user', 'userspace', 15302, 15312)]);

function iperf(port) {
  const r = spawnSync('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', String(secs), '-J'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`iperf3 to ${port}: ${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout).end.sum_received.bits_per_second / 1e9;
}

async function connRate(port) {
  // Sequential connect, one byte there and back, close, for `secs` seconds.
  let n = 0;
  const until = Date.now() + secs * 1000;
  while (Date.now() < until) {
    await new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, noDelay: true });
      s.on('connect', () => s.write('x'));
      s.once('data', () => { s.end(); });
      s.on('close', resolve);
      s.on('error', reject);
    });
    n++;
  }
  return n / secs;
}

async function latency(port, rounds = 3000) {
  const s = connect({ host: '127.0.0.1', port, noDelay: true });
  await new Promise((r) => s.on('connect', r));
  const times = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = process.hrtime.bigint();
    await new Promise((r) => { s.once('data', r); s.write('x'); });
    times.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  s.destroy();
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

try {
  await Promise.all([waitFor(kernel, 'ready'), waitFor(user, 'ready'), waitFor(hostEcho, 'ready')]);
  await sleep(300);
  const paths = { loopback: [15300, 15310], kernel: [15301, 15311], userspace: [15302, 15312], socat: [15303, 15313] };
  const res = {};
  for (const [name, [ip, ep]] of Object.entries(paths)) res[name] = { gbit: iperf(ip), conns: await connRate(ep), p50: await latency(ep) };
  console.log(`network paths, ${secs} s each, one run (iperf3 TCP; Node client for conns/s and 1-byte round trips)`);
  console.log(`  ${'path'.padEnd(10)} ${'Gbit/s'.padStart(8)} ${'conns/s'.padStart(9)} ${'p50 µs'.padStart(8)}`);
  for (const [name, r] of Object.entries(res)) console.log(`  ${name.padEnd(10)} ${r.gbit.toFixed(2).padStart(8)} ${r.conns.toFixed(0).padStart(9)} ${r.p50.toFixed(1).padStart(8)}`);
  const L = res.loopback, K = res.kernel, U = res.userspace, S = res.socat;
  const line = (what, v, goal, ok) => console.log(`${what.padEnd(40)} ${v.toFixed(2)} (goal ${goal}): ${ok ? 'met' : 'NOT met'}`);
  console.log('');
  line('kernel / loopback throughput', K.gbit / L.gbit, '≥ 0.85', K.gbit / L.gbit >= 0.85);
  line('kernel / loopback connections per second', K.conns / L.conns, '≥ 0.80', K.conns / L.conns >= 0.8);
  line('kernel / loopback p50 latency', K.p50 / L.p50, '≤ 1.20', K.p50 / L.p50 <= 1.2);
  line('userspace / socat throughput', U.gbit / S.gbit, '≥ 1.00', U.gbit / S.gbit >= 1);
} finally {
  for (const c of children.reverse()) c.kill('SIGTERM');
  await sleep(1000);
  rmSync(dir, { recursive: true, force: true });
}
