// Start-up benchmark (issue 4), as root: `sandbox up` of /bin/true against `crun run` and
// `runc run` of the same busybox root with the same namespaces, `bwrap --unshare-all`, and
// `node -e 0`, alternating in one run. Also the engine's own setup time, measured inside (from
// the clone call to exec). Installs crun, runc and bubblewrap with apt-get when missing.
//   node test/bench/startup-up.mjs [RUNS]
// Goals: engine setup ≤ crun's whole run; sandbox up ≤ 1.3 × (node -e 0 + crun run).
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxBundle, repoRoot as root } from './busybox-bundle.mjs';

const runs = Number(process.argv[2] ?? 20);
const have = (c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;
if (!['crun', 'runc', 'bwrap'].every(have)) execFileSync('sh', ['-c', 'apt-get install -y -qq crun runc bubblewrap >/dev/null'], { stdio: 'inherit' });

const { dir, rootfs } = busyboxBundle('sandbox-bench-', ['/bin/true']);
writeFileSync(join(dir, 'bench.yml'), `version: 1\nname: bench\nrootfs: {type: dir, path: ${rootfs}}\ncommand: [/bin/true]\nnetwork: none\n`);

let n = 0;
// Its own name, so that it never meets another run's sandbox on a shared host (BENCH_NAME to choose it).
const benchName = process.env.BENCH_NAME ?? `bench-${process.pid}`;
// crun (1.8) refuses hybrid hosts whose v2 hierarchy holds any controller, whatever its options:
// there it is left out, and runc is the container peer.
const crunWorks = spawnSync('crun', ['run', '--bundle', dir, `bench-probe-${process.pid}`], { stdio: 'ignore' }).status === 0;
if (!crunWorks) console.log('note: crun does not run on this host (hybrid cgroups); run this bench on a cgroup v2 host, or in ../shared/tools/v2vm, for crun');
const inside = [];
// What the capability sets and the seccomp filter add to setup: compiling the filter (libseccomp, in the
// CLI before the clone) and the child's caps and filter-loading steps.
const security = { compile: [], load: [], attest: [] };
const cases = {
  'node -e 0': () => [process.execPath, ['-e', '0']],
  'bwrap --unshare-all': () => ['bwrap', ['--unshare-all', '--die-with-parent', '--ro-bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev', '/bin/true']],
  'crun run': () => ['crun', ['run', '--bundle', dir, `bench-crun-${process.pid}-${n++}`]],
  'runc run': () => ['runc', ['run', '--bundle', dir, `bench-runc-${process.pid}-${n++}`]],
  // As a user runs it: bin/sandbox, the package's bin (native/src/cli.c, which starts Node on bin/sandbox.js).
  'sandbox up': () => [join(root, 'bin/sandbox'), ['up', '-q', '--name', benchName, join(dir, 'bench.yml')]],
};
if (!crunWorks) delete cases['crun run'];
const times = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
const once = (name) => {
  const [cmd, args] = cases[name]();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SANDBOX_TIMING: '1' }, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${name} exited ${r.status}: ${r.stderr}`);
  const m = /clone to exec ([\d.]+) ms/.exec(r.stderr);
  if (m) inside.push(Number(m[1]));
  const sec = /seccomp compile ([\d.]+) ms, caps and filter load ([\d.]+) ms/.exec(r.stderr);
  if (sec) { security.compile.push(Number(sec[1])); security.load.push(Number(sec[2])); }
  const att = /attestation ([\d.]+) ms/.exec(r.stderr);
  if (att) security.attest.push(Number(att[1]));
  return ms;
};
try {
  for (const k of Object.keys(cases)) once(k); // warm caches
  inside.length = 0;
  security.compile.length = 0;
  security.load.length = 0;
  security.attest.length = 0;
  for (let i = 0; i < runs; i++) for (const k of Object.keys(cases)) times[k].push(once(k));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(`start-up of /bin/true, ${runs} runs each, alternating; median ms`);
for (const [k, t] of Object.entries(times)) console.log(`  ${k.padEnd(22)} ${med(t).toFixed(1).padStart(7)}`);
console.log(`  ${'sandbox engine setup'.padEnd(22)} ${med(inside).toFixed(1).padStart(7)}   (inside: clone call to exec)`);
const secMs = med(security.compile) + med(security.load);
console.log(`  ${'  seccomp compile'.padEnd(22)} ${med(security.compile).toFixed(3).padStart(7)}   (libseccomp, in the CLI)`);
console.log(`  ${'  caps + filter load'.padEnd(22)} ${med(security.load).toFixed(3).padStart(7)}   (in the child)`);
if (security.attest.length) console.log(`  ${'  attestation'.padEnd(22)} ${med(security.attest).toFixed(3).padStart(7)}   (every step read back from /proc, in the CLI; goal ≤ 1.5 ms: ${med(security.attest) <= 1.5 ? 'met' : 'NOT met'})`);
console.log(`capabilities and seccomp together: ${secMs.toFixed(3)} ms (goal < 1 ms): ${secMs < 1 ? 'met' : 'NOT met'}`);
const peer = crunWorks ? 'crun run' : 'runc run';
const base = med(times[peer]);
const r1 = med(inside) / base;
const r2 = med(times['sandbox up']) / (med(times['node -e 0']) + base);
console.log(`\nengine setup / ${peer}            = ${r1.toFixed(2)} (goal against crun ≤ 1.00): ${r1 <= 1 ? 'met' : 'NOT met'}`);
console.log(`sandbox up / (node -e 0 + ${peer}) = ${r2.toFixed(2)} (goal against crun ≤ 1.30): ${r2 <= 1.3 ? 'met' : 'NOT met'}`);
console.log(`sandbox up / bwrap                  = ${(med(times['sandbox up']) / med(times['bwrap --unshare-all'])).toFixed(2)}`);
console.log(`sandbox up / runc run               = ${(med(times['sandbox up']) / med(times['runc run'])).toFixed(2)}`);
