// Rootless network benchmark, as root, in one run: iperf3 TCP throughput into a rootless "sandbox"
// (iperf3 -s in a new user and network namespace of a user the bench makes and removes) through
// src/engine/rootless-net's pasta path, beside pasta's own `pasta -t` run by hand, slirp4netns
// through the same module, and plain loopback. Each is measured from the host's 127.0.0.1 (pasta
// splices that onto the sandbox's loopback) and from a client network namespace the bench makes
// with a veth pair to the host (pasta's tap path), against the veth path with no tool between.
// Traffic goes only to loopback and over that veth pair. Needs a build (node scripts/build.mjs).
//   node test/bench/rootless-net.mjs [SECONDS]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, chownSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);
const secs = Number(process.argv[2] ?? 3);
const { makeUser, removeAllUsers, tunForUsers, repoForUsers } = require(join(root, 'build/test/helpers/users.js'));
for (const c of ['iperf3', 'pasta', 'slirp4netns', 'ip']) if (spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0) { console.error(`the bench needs ${c}`); process.exit(1); }
if (process.geteuid() !== 0) { console.error('the bench runs as root: it makes a user, a network namespace and a veth pair'); process.exit(1); }

const user = makeUser('rlnetb');
const tun = tunForUsers();
const ns = `rlnetb${process.pid}`, hostIf = `rlnb${process.pid}`, hostIp = '203.0.113.249', clientIp = '203.0.113.250';
const children = [];
const sh = (s) => execFileSync('sh', ['-c', s], { stdio: 'pipe' });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const env = { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: user.home, USER: user.name, XDG_RUNTIME_DIR: user.runtimeDir };
const asUser = (argv) => { const c = spawn('setpriv', ['--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', '--', ...argv], { env, cwd: repoForUsers(), stdio: ['pipe', 'pipe', 'pipe'] }); children.push(c); return c; };
const lines = (c) => { let buf = ''; const waiting = []; c.stdout.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\n')) >= 0) { const l = buf.slice(0, i); buf = buf.slice(i + 1); waiting.shift()?.(l); } }); return () => new Promise((r) => waiting.push(r)); };

let cleaned = false;
function cleanup() {
  if (cleaned) return;
  cleaned = true;
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  removeAllUsers();
  tun.undo();
  spawnSync('ip', ['link', 'del', hostIf], { stdio: 'ignore' });
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}
process.on('exit', cleanup);

/** iperf3 TCP into host:port for `secs` seconds, from the host or from the client namespace, in Gbit/s; the first tries may meet a server still starting. */
async function iperf(host, port, from) {
  const argv = [...(from === 'outside' ? ['ip', 'netns', 'exec', ns] : []), 'iperf3', '-c', host, '-p', String(port), '-t', String(secs), '-J'];
  let last = '';
  for (let i = 0; i < 10; i++) {
    const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: (secs + 10) * 1000 });
    let j;
    try { j = JSON.parse(r.stdout); } catch { /* no report */ }
    const bps = j?.end?.sum_received?.bits_per_second;
    if (r.status === 0 && bps) return bps / 1e9;
    last = j?.error ?? r.stdout + r.stderr;
    await sleep(200);
  }
  throw new Error(`iperf3 to ${host}:${port}: ${last}`);
}

const serverInside = ['sh', '-c', 'iperf3 -s -p 5201 --forceflush | sed -u "s/^Server listening.*/ready/"'];

/** A sandbox with a network from src/engine/rootless-net, through the tests' driver; stop() ends both. */
async function viaModule(tool, ports) {
  const stateDir = mkdtempSync(join(tmpdir(), 'rlnetb-'));
  chownSync(stateDir, user.uid, user.gid);
  const d = asUser([process.execPath, join(repoForUsers(), 'build/test/helpers/usernet-driver.js'), JSON.stringify({ mode: 'start', tool, ports, stateDir, sandbox: serverInside })]);
  const next = lines(d);
  const s = JSON.parse(await next());
  if (s.event !== 'started') throw new Error(`${tool}: ${s.message}`);
  return { ms: s.ms, stop: async () => { d.stdin.write('stop\n'); await next(); process.kill(s.target, 'SIGKILL'); d.kill(); rmSync(stateDir, { recursive: true, force: true }); } };
}

const results = [];
const row = (path, from, gbit, extra = '') => { results.push({ path, from, gbit, extra }); process.stderr.write(`  ${path} from ${from}: ${gbit.toFixed(2)} Gbit/s\n`); };

try {
  sh(`ip netns add ${ns} && ip link add ${hostIf} type veth peer name eth0 netns ${ns} && ip addr add ${hostIp}/30 dev ${hostIf} && ip link set ${hostIf} up`
    + ` && ip -n ${ns} addr add ${clientIp}/30 dev eth0 && ip -n ${ns} link set eth0 up && ip -n ${ns} link set lo up`);

  // Plain paths: an iperf3 server of the user on the host.
  const plain = asUser(['iperf3', '-s', '-p', '15400']);
  row('plain (no tool)', '127.0.0.1', await iperf('127.0.0.1', 15400, 'host'));
  row('plain (no tool)', 'netns/veth', await iperf(hostIp, 15400, 'outside'));
  plain.kill();

  // pasta run by hand, in its own namespaces, as its manual shows.
  const byHand = asUser(['pasta', '--config-net', '--quiet', '-f', '-t', '15401:5201', '-u', 'none', '-T', 'none', '-U', 'none', '--', 'iperf3', '-s', '-p', '5201']);
  row('pasta -t by hand', '127.0.0.1', await iperf('127.0.0.1', 15401, 'host'));
  row('pasta -t by hand', 'netns/veth', await iperf(hostIp, 15401, 'outside'));
  byHand.kill('SIGTERM');

  for (const [tool, port] of [['pasta', 15402], ['slirp4netns', 15403]]) {
    const n = await viaModule(tool, [{ hostIp: '', hostPort: port, containerPort: 5201, protocol: 'tcp' }]);
    row(`rootless-net ${tool}`, '127.0.0.1', await iperf('127.0.0.1', port, 'host'), `attached in ${n.ms.toFixed(0)} ms`);
    row(`rootless-net ${tool}`, 'netns/veth', await iperf(hostIp, port, 'outside'));
    await n.stop();
  }

  const base = (from) => results.find((r) => r.path === 'plain (no tool)' && r.from === from).gbit;
  const hand = (from) => results.find((r) => r.path === 'pasta -t by hand' && r.from === from).gbit;
  console.log(`rootless networking, iperf3 TCP ${secs} s each, one run, ${require('node:os').availableParallelism()} CPUs`);
  console.log(`  ${'path'.padEnd(26)} ${'client'.padEnd(11)} ${'Gbit/s'.padStart(7)} ${'÷ plain'.padStart(8)} ${'÷ pasta by hand'.padStart(16)}  note`);
  for (const r of results) console.log(`  ${r.path.padEnd(26)} ${r.from.padEnd(11)} ${r.gbit.toFixed(2).padStart(7)} ${(r.gbit / base(r.from)).toFixed(2).padStart(8)} ${(r.gbit / hand(r.from)).toFixed(2).padStart(16)}  ${r.extra}`);
} finally {
  cleanup();
}
