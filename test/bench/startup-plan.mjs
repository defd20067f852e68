// Start-up benchmark (issues 3, 27): `sandbox plan samples/jenkins.yml` as a cold process, run as a
// user runs it (bin/sandbox, the package's bin), against `node -e 0`, measured alternately in the
// same run so that both see the same machine. Where NODE_EXTRA_CA_CERTS is set, Node parses that
// CA file at every start; bin/sandbox leaves it out for commands that open no TLS connection
// (native/src/cli.c), so plan's Node starts without it: the goal's floor is then `node -e 0`
// without it too, and the ratio to `node -e 0` as this environment starts it is printed beside.
// Goal: median at most 1.2 × the floor.   Run: node test/bench/startup-plan.mjs [RUNS]
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const runs = Number(process.argv[2] ?? 40);
const extraCa = !!process.env.NODE_EXTRA_CA_CERTS;
const { NODE_EXTRA_CA_CERTS: _, ...withoutCa } = process.env;
const cases = {
  'node -e 0': [process.execPath, ['-e', '0']],
  ...(extraCa ? { 'node -e 0, no NODE_EXTRA_CA_CERTS': [process.execPath, ['-e', '0'], withoutCa] } : {}),
  'sandbox plan samples/jenkins.yml': [join(root, 'bin/sandbox'), ['plan', join(root, 'samples/jenkins.yml')]],
  'sandbox validate samples/web.yml': [join(root, 'bin/sandbox'), ['validate', join(root, 'samples/web.yml')]],
};
const times = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
const once = ([cmd, args, env]) => {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: env ?? process.env });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
};
for (const c of Object.values(cases)) once(c); // warm the page cache
for (let i = 0; i < runs; i++) for (const [k, c] of Object.entries(cases)) times[k].push(once(c));
const q = (a, p) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))];
const floorName = extraCa ? 'node -e 0, no NODE_EXTRA_CA_CERTS' : 'node -e 0';
const base = q(times[floorName], 0.5);
console.log(`start-up, ${runs} runs each, alternating (ms)`);
console.log(`${'command'.padEnd(36)} ${'median'.padStart(7)} ${'p90'.padStart(7)} ${'ratio'.padStart(6)}`);
for (const [k, t] of Object.entries(times)) console.log(`${k.padEnd(36)} ${q(t, 0.5).toFixed(1).padStart(7)} ${q(t, 0.9).toFixed(1).padStart(7)} ${(q(t, 0.5) / base).toFixed(2).padStart(6)}`);
const plan = q(times['sandbox plan samples/jenkins.yml'], 0.5);
const ratio = plan / base;
if (extraCa) console.log(`\nplan / node -e 0 as this environment starts it (with NODE_EXTRA_CA_CERTS) = ${(plan / q(times['node -e 0'], 0.5)).toFixed(2)}`);
console.log(`${extraCa ? '' : '\n'}plan / ${floorName} = ${ratio.toFixed(2)} (goal ≤ 1.20): ${ratio <= 1.2 ? 'met' : 'NOT met'}`);
