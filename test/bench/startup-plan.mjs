// Start-up benchmark (issues 3, 27): `sandbox plan samples/jenkins.yml` as a cold process against
// `node -e 0`, measured alternately in the same run so that both see the same machine.
// Goal: median at most 1.2 × node -e 0.   Run: node test/bench/startup-plan.mjs [RUNS]
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const runs = Number(process.argv[2] ?? 40);
const cases = {
  'node -e 0': [process.execPath, ['-e', '0']],
  'sandbox plan samples/jenkins.yml': [process.execPath, [join(root, 'bin/sandbox.js'), 'plan', join(root, 'samples/jenkins.yml')]],
  'sandbox validate samples/web.yml': [process.execPath, [join(root, 'bin/sandbox.js'), 'validate', join(root, 'samples/web.yml')]],
};
const times = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
const once = ([cmd, args]) => {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
};
for (const c of Object.values(cases)) once(c); // warm the page cache
for (let i = 0; i < runs; i++) for (const [k, c] of Object.entries(cases)) times[k].push(once(c));
const q = (a, p) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))];
const base = q(times['node -e 0'], 0.5);
console.log(`start-up, ${runs} runs each, alternating (ms)`);
console.log(`${'command'.padEnd(36)} ${'median'.padStart(7)} ${'p90'.padStart(7)} ${'ratio'.padStart(6)}`);
for (const [k, t] of Object.entries(times)) console.log(`${k.padEnd(36)} ${q(t, 0.5).toFixed(1).padStart(7)} ${q(t, 0.9).toFixed(1).padStart(7)} ${(q(t, 0.5) / base).toFixed(2).padStart(6)}`);
const ratio = q(times['sandbox plan samples/jenkins.yml'], 0.5) / base;
console.log(`\nplan / node -e 0 = ${ratio.toFixed(2)} (goal ≤ 1.20): ${ratio <= 1.2 ? 'met' : 'NOT met'}`);
