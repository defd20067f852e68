// Egress benchmark (issue 24, docs/egress-design.md section 9), as root, in one run: what an
// egress policy costs against the same sandbox without one, over the test fixture's network
// (test/integration/fixtures/egress-net.ts: its own namespace on 198.18.K.0/24, nothing else).
//   node test/bench/egress.mjs [RUNS] [--rootless] [--pairs=N]   (after node scripts/build.mjs; RUNS default 500)
// --rootless: both sandboxes are started by a user the bench makes (sbxegbench, removed at the
// end), through pasta: the policy's cost against pasta without one, the wall in the sandbox's own
// namespace and sbx-egress running as that user; `up` of each is timed too.
// - connection set-up to an allowed name: TCP connect + TLS handshake + one small GET, and the
//   same over plain HTTP; median and p90 over RUNS fresh connections (in four blocks, with and
//   without policy taking turns); with policy minus without;
// - DNS: a lookup through the sandbox's resolver (first, then cached hits; and misses, each
//   forwarded) against the fixture's server asked directly from the sandbox without policy;
// - throughput of one allowed connection: 128 MiB plain-HTTP and HTTPS downloads (curl), and raw
//   TCP through the relay (judged by address), PAIRS (default 15) pairs of each: within a pair one
//   download with policy and one without, the side that goes first alternating from pair to pair,
//   through one client process per sandbox kept open (bench.py serve); each side's median, the
//   median of the pairs' ratios and their spread; and the CPU time the parties spent per GiB (the
//   server, the client with its curl, sbx-egress), which load from elsewhere changes far less than
//   it changes the speed; beside the same raw download from the host directly and through socat
//   on loopback (user-space peers);
// - sbx-egress's resident memory (VmRSS), idle and with 100 relayed connections held open.
// Prints numbers and ratios; asserts nothing about time (the goals are the issue's: set-up ≤ +1 ms
// at the median, throughput ≥ 0.8×, ≤ 4 MB resident).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);
const { startEgressNet } = require(join(root, 'build/test/integration/fixtures/egress-net.js'));
const rootless = process.argv.includes('--rootless');
const runs = Number(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 500);
const pairs = Number(process.argv.find((a) => a.startsWith('--pairs='))?.slice(8) ?? 15);
const users = rootless ? require(join(root, 'build/test/helpers/users.js')) : undefined;
const SIZE = 128 << 20;
const have = (c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;
if (!have('socat') || !have('curl')) execFileSync('sh', ['-c', 'apt-get install -y -qq socat curl >/dev/null'], { stdio: 'inherit' });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const net = await startEgressNet({ k: 244 });
// Rootless: the user (its name fixed, so that one left by a killed run is removed first), and what a
// fresh Debian gives users that this host lacks (a 0666 /dev/net/tun; a default route where none is).
const tun = rootless ? users.tunForUsers() : undefined;
const route = rootless ? users.defaultRouteForPasta('sbxegbench0') : undefined;
const user = rootless ? users.makeUser('sbxegbench', { fixed: true }) : undefined;
const cli = () => join(rootless ? users.repoForUsers() : root, 'bin/sandbox.js');
const sandbox = (args, opts = {}) => {
  if (!rootless) return spawnSync(process.execPath, [cli(), ...args], { encoding: 'utf8', timeout: 600_000, env: { ...process.env, NO_COLOR: '1' }, ...opts });
  const r = users.sandboxAs(user, args, { timeout: 600_000 });
  return { status: r.code, stdout: r.out, stderr: r.err };
};
const spawnCli = (args, stdin = 'ignore') => (rootless ? users.spawnAsUser(user, [process.execPath, cli(), ...args]) : spawn(process.execPath, [cli(), ...args], { stdio: [stdin, 'pipe', 'pipe'] }));
const stateOf = (name) => join(rootless ? join(user.runtimeDir, 'sandbox') : '/run/sandbox', name);
const dir = rootless ? users.userTmp(user) : mkdtempSync(join(tmpdir(), 'sandbox-egress-bench-'));
const upMs = {};
copyFileSync(join(root, 'test/bench/egress-inside.py'), join(net.certDir, 'bench.py'));
const boxes = { policy: 'bench-egress', none: 'bench-noegress' };
const children = [];

function up(name, egress) {
  const f = join(dir, `${name}.yml`);
  writeFileSync(f, ['version: 1', `name: ${name}`, 'rootfs: host', 'init: true', 'detach: true', 'command: [sleep, "3600"]',
    'network:', '  mode: private', ...(egress ? ['  egress:', '    - allow allowed.test', '    - allow *.miss.allowed.test'] : []),
    `dns: [${net.dns}]`, `volumes: ["${net.certDir}:/egress:ro"]`, ''].join('\n'));
  const t0 = performance.now();
  const r = sandbox(['up', '-q', f]);
  upMs[name] = performance.now() - t0;
  if (r.status !== 0) throw new Error(`up ${name}: ${r.stdout}${r.stderr}`);
}

/** One JSON line from the inside half, run by sandbox exec. */
function inside(name, ...args) {
  const r = sandbox(['exec', name, 'python3', '/egress/bench.py', ...args]);
  if (r.status !== 0) throw new Error(`${name} ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1));
}

/** The inside half kept running in sandbox NAME (bench.py serve): ask(line) resolves with the JSON
 * line of that download; the process's end (a failed download) rejects what is pending. */
function client(name) {
  const p = spawnCli(['exec', '-i', name, 'python3', '/egress/bench.py', 'serve'], 'pipe');
  children.push(p);
  const pending = [];
  let out = '', err = '';
  p.stdout.on('data', (d) => {
    out += d;
    for (let i; (i = out.indexOf('\n')) >= 0; out = out.slice(i + 1)) pending.shift()?.resolve(JSON.parse(out.slice(0, i)));
  });
  p.stderr.on('data', (d) => { err += d; });
  p.on('exit', () => { for (const w of pending.splice(0)) w.reject(new Error(`bench.py serve in ${name}: ${err}`)); });
  return {
    ask: (line) => new Promise((resolve, reject) => { pending.push({ resolve, reject }); p.stdin.write(`${line}\n`); }),
    end: () => new Promise((r) => { p.on('exit', r); p.stdin.end(); }),
  };
}

/** CPU seconds of process PID and its threads so far, the ended ones included (clock ticks of 10 ms). */
const cpuOf = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) / 100; };
/** CPU seconds of the single-threaded PID so far, to the nanosecond. */
const cpuNs = (pid) => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e9;

/** The raw download from the host itself, to ADDR:PORT (direct, or socat's). */
function hostRaw(addr, port) {
  const r = spawnSync('python3', [join(root, 'test/bench/egress-inside.py'), 'raw', addr, String(port), String(SIZE)], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`raw ${addr}:${port}: ${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout.trim()).gbit;
}

const vmrss = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
const f1 = (x) => x.toFixed(1), f2 = (x) => x.toFixed(2);

try {
  up(boxes.policy, true);
  up(boxes.none, false);
  const record = JSON.parse(readFileSync(join(stateOf(boxes.policy), 'egress.json'), 'utf8'));
  const egressPid = record.proc?.pid ?? record.pid;
  const rssIdle = vmrss(egressPid);

  // Connection set-up; one warm-up run each first (the resolver's cache, the ARP entries), then
  // four blocks of RUNS/4 each, with and without policy taking turns (load from elsewhere on the
  // machine then falls on both), the times pooled.
  const setup = {};
  const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
  for (const [label, port, tls] of [['https', 443, '1'], ['http', 80, '0']]) {
    const times = { policy: [], none: [] };
    for (const name of Object.values(boxes)) inside(name, 'setup', '20', 'allowed.test', String(port), tls);
    for (let b = 0; b < 4; b++) {
      for (const [k, name] of Object.entries(boxes)) times[k].push(...inside(name, 'setup', String(Math.ceil(runs / 4)), 'allowed.test', String(port), tls).times_us);
    }
    for (const k of Object.keys(boxes)) setup[`${label}-${k}`] = { p50_us: pct(times[k], 0.5), p90_us: pct(times[k], 0.9) };
  }
  // DNS: through the resolver (first = a miss, then hits; and misses, each forwarded), against the server asked directly.
  const dns = {
    resolverHit: inside(boxes.policy, 'dns', String(runs), '127.0.0.53', 'allowed.test'),
    resolverMiss: inside(boxes.policy, 'dns', String(Math.min(runs, 200)), '127.0.0.53', '-'),
    direct: inside(boxes.none, 'dns', String(runs), net.dns, 'allowed.test'),
  };
  // Throughput: PAIRS pairs per kind, each a download with policy and one without back to back (a
  // burst of load from elsewhere on the machine then falls on both), the first of the two
  // alternating; one warm-up download per side first. CPU per GiB: the fixture's servers (one
  // process), the client (bench.py and its curl, as the client measures itself) and sbx-egress.
  const tput = {}, spread = {}, cost = {};
  const median = (xs) => pct(xs, 0.5);
  const serverPid = Number(execFileSync('ip', ['netns', 'pids', net.ns], { encoding: 'utf8' }).trim().split('\n')[0]);
  const clients = { policy: client(boxes.policy), none: client(boxes.none) };
  for (const [label, line] of [['http', `curl http://allowed.test/bytes/${SIZE} ${SIZE}`], ['https', `curl https://allowed.test/bytes/${SIZE} ${SIZE}`], ['raw', `raw allowed.test 9000 ${SIZE}`]]) {
    const got = { policy: [], none: [] }, cpu = { policy: { server: 0, client: 0, relay: 0 }, none: { server: 0, client: 0, relay: 0 } };
    for (const k of Object.keys(boxes)) await clients[k].ask(line);
    for (let i = 0; i < pairs; i++) {
      for (const k of i % 2 ? ['none', 'policy'] : ['policy', 'none']) {
        const s0 = cpuOf(serverPid), r0 = cpuNs(egressPid);
        const o = await clients[k].ask(line);
        got[k].push(o.gbit);
        cpu[k].server += cpuOf(serverPid) - s0;
        cpu[k].client += o.cpu;
        if (k === 'policy') cpu[k].relay += cpuNs(egressPid) - r0;
      }
    }
    const ratios = got.policy.map((p, i) => p / got.none[i]);
    for (const k of Object.keys(boxes)) tput[`${label}-${k}`] = median(got[k]);
    tput[`${label}-ratio`] = median(ratios);
    spread[label] = [pct(ratios, 0.25), pct(ratios, 0.75), Math.min(...ratios), Math.max(...ratios)];
    const gib = pairs * SIZE / 2 ** 30;
    for (const k of Object.keys(boxes)) cost[`${label}-${k}`] = Object.fromEntries(Object.entries(cpu[k]).map(([who, s]) => [who, s / gib]));
  }
  for (const k of Object.keys(boxes)) await clients[k].end();
  // Peers from the host: direct, and socat on loopback in front of the same source.
  const socat = spawn('socat', ['TCP-LISTEN:15390,bind=127.0.0.1,fork,reuseaddr', `TCP:${net.web}:9000`], { stdio: 'ignore' });
  children.push(socat);
  await sleep(300);
  tput['raw-host-direct'] = hostRaw(net.web, 9000);
  tput['raw-host-socat'] = hostRaw('127.0.0.1', 15390);

  // Memory with 100 relayed TLS connections held open.
  const holder = spawnCli(['exec', boxes.policy, 'python3', '/egress/bench.py', 'hold', '100', 'allowed.test', '443', '5']);
  children.push(holder);
  let said = '';
  holder.stdout.on('data', (d) => { said += d; });
  for (let i = 0; i < 200 && !said.includes('held'); i++) await sleep(50);
  const rssHeld = said.includes('held') ? vmrss(egressPid) : NaN;
  // egress.status is rewritten at most once a second.
  await sleep(1200);
  const status = JSON.parse(readFileSync(join(stateOf(boxes.policy), 'egress.status'), 'utf8'));
  await new Promise((r) => holder.on('exit', r));

  console.log(`egress policy against none, ${rootless ? 'rootless through pasta (the CLI as a user)' : 'as root (veth)'}, one run (${runs} set-ups and lookups each; ${pairs} pairs of 128 MiB downloads per kind)`);
  if (rootless) console.log('(rootless: a relayed connection leaves from sbx-egress, on the host, and not through pasta; "none" is pasta\'s path, so policy/none compares the relay with pasta)');
  console.log(`\nup -d (one each, ms): policy ${f1(upMs[boxes.policy])}, none ${f1(upMs[boxes.none])}, +${f1(upMs[boxes.policy] - upMs[boxes.none])}`);
  console.log('\nconnection set-up to allowed.test (µs)     p50 policy   p50 none   +p50     p90 policy   p90 none');
  for (const l of ['https', 'http']) {
    const p = setup[`${l}-policy`], n = setup[`${l}-none`];
    console.log(`  ${(l === 'https' ? 'TCP + TLS + GET' : 'TCP + GET').padEnd(40)} ${f1(p.p50_us).padStart(10)} ${f1(n.p50_us).padStart(10)} ${f1(p.p50_us - n.p50_us).padStart(7)} ${f1(p.p90_us).padStart(12)} ${f1(n.p90_us).padStart(10)}`);
  }
  console.log('\nDNS lookup (µs)                            first      p50      p90');
  console.log(`  ${'our resolver, allowed.test (hits)'.padEnd(40)} ${f1(dns.resolverHit.first_us).padStart(7)} ${f1(dns.resolverHit.p50_us).padStart(8)} ${f1(dns.resolverHit.p90_us).padStart(8)}`);
  console.log(`  ${'our resolver, distinct names (misses)'.padEnd(40)} ${'-'.padStart(7)} ${f1(dns.resolverMiss.p50_us).padStart(8)} ${f1(dns.resolverMiss.p90_us).padStart(8)}`);
  console.log(`  ${'the fixture\'s server directly'.padEnd(40)} ${f1(dns.direct.first_us).padStart(7)} ${f1(dns.direct.p50_us).padStart(8)} ${f1(dns.direct.p90_us).padStart(8)}`);
  const kinds = [['http', 'plain HTTP (curl)'], ['https', 'HTTPS (curl)'], ['raw', 'raw TCP (relay, by address)']];
  console.log('\nthroughput, one connection (Gbit/s,        policy     none    ratio   p25-p75 of ratios  min-max');
  console.log('  medians; ratio: median of the pairs\')');
  for (const [l, what] of kinds) {
    const [q1, q3, lo, hi] = spread[l];
    console.log(`  ${what.padEnd(40)} ${f2(tput[`${l}-policy`]).padStart(7)} ${f2(tput[`${l}-none`]).padStart(8)} ${f2(tput[`${l}-ratio`]).padStart(8)}   ${`${f2(q1)}-${f2(q3)}`.padStart(17)}  ${f2(lo)}-${f2(hi)}`);
  }
  console.log(`  ${'peers from the host: direct / socat'.padEnd(40)} ${f2(tput['raw-host-direct']).padStart(7)} ${f2(tput['raw-host-socat']).padStart(8)} ${f2(tput['raw-host-socat'] / tput['raw-host-direct']).padStart(8)}`);
  console.log('\nCPU per GiB downloaded (s)   server policy/none   client policy/none   sbx-egress   all policy/none');
  for (const [l, what] of kinds) {
    const p = cost[`${l}-policy`], n = cost[`${l}-none`];
    const all = (c) => c.server + c.client + c.relay;
    console.log(`  ${what.padEnd(28)} ${`${f2(p.server)} / ${f2(n.server)}`.padStart(18)} ${`${f2(p.client)} / ${f2(n.client)}`.padStart(20)} ${f2(p.relay).padStart(12)}   ${`${f2(all(p))} / ${f2(all(n))}`.padStart(15)}${rootless ? '' : ` ${f2(all(p) / all(n))}×`}`);
  }
  if (rootless) console.log('  (rootless: pasta\'s own CPU, on the path without policy, is not counted)');
  console.log(`\nsbx-egress VmRSS: ${f2(rssIdle)} MiB idle, ${f2(rssHeld)} MiB with 100 relayed connections open (status: ${status.connections?.open ?? '?'} open)`);
  console.log('\nratios (the issue\'s goals: set-up ≤ +1 ms at the median, throughput ≥ 0.8×, ≤ 4 MB resident):');
  console.log(`  set-up +p50 https ${f2((setup['https-policy'].p50_us - setup['https-none'].p50_us) / 1000)} ms, http ${f2((setup['http-policy'].p50_us - setup['http-none'].p50_us) / 1000)} ms`);
  console.log(`  throughput http ${f2(tput['http-ratio'])}×, https ${f2(tput['https-ratio'])}×, raw ${f2(tput['raw-ratio'])}× (the median pair; socat/direct from the host ${f2(tput['raw-host-socat'] / tput['raw-host-direct'])}×)`);
  console.log(`  resident ${f2(Math.max(rssIdle, rssHeld))} MiB`);
} finally {
  for (const c of children) c.kill('SIGTERM');
  for (const name of Object.values(boxes)) sandbox(['down', name]);
  if (rootless) { users.removeAllUsers(); tun.undo(); route.undo(); } else rmSync(dir, { recursive: true, force: true });
  const left = await net.close();
  if (left.length) console.error(`the fixture left: ${left.join(', ')}`);
}
