// What the progress view costs on a terminal (issue 22): `sandbox up` against `sandbox up -q` of
// samples/locked-down.yml, both run under a real pseudo-terminal (`script -qec`), alternating in
// one run. As root. Also `--progress plain` on the same terminal, for comparison.
//   node test/bench/progress-tty.mjs [RUNS]
// Goal: the terminal view costs at most 1.1 × `up -q`.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const runs = Number(process.argv[2] ?? 20);
const file = join(root, 'samples/locked-down.yml');
const name = process.env.BENCH_NAME ?? `bench-progress-${process.pid}`;
if (spawnSync('sh', ['-c', 'command -v script']).status !== 0) { console.log('skip: no `script` (util-linux)'); process.exit(0); }
const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
const sandbox = `${q(process.execPath)} ${q(join(root, 'bin/sandbox.js'))} up --name ${q(name)}`;
const cases = {
  'up -q': `${sandbox} -q ${q(file)}`,
  'up (terminal view)': `${sandbox} ${q(file)}`,
  'up --progress plain': `${sandbox} --progress plain ${q(file)}`,
};
const times = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
let out = {};
const once = (k) => {
  const t0 = process.hrtime.bigint();
  // script gives the command a pseudo-terminal of its own as stdin, stdout and stderr.
  const r = spawnSync('script', ['-qec', cases[k], '/dev/null'], { encoding: 'utf8', env: { ...process.env, CI: '', COLUMNS: '100', LINES: '40' } });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0 || !/NoNewPrivs:\s+1/.test(r.stdout)) throw new Error(`${k} exited ${r.status}: ${r.stdout}${r.stderr}`);
  out[k] = r.stdout;
  return ms;
};
for (const k of Object.keys(cases)) once(k); // warm caches
for (let i = 0; i < runs; i++) for (const k of Object.keys(cases)) times[k].push(once(k));
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(`sandbox up of samples/locked-down.yml under script(1), ${runs} runs each, alternating; median ms`);
for (const [k, t] of Object.entries(times)) console.log(`  ${k.padEnd(22)} ${med(t).toFixed(1).padStart(7)}   (${(med(t) / med(times['up -q'])).toFixed(2)}× up -q)`);
const ratio = med(times['up (terminal view)']) / med(times['up -q']);
console.log(`terminal view / -q: ${ratio.toFixed(2)} (goal ≤ 1.10)`);
console.log(`the terminal view wrote ${out['up (terminal view)'].length} bytes`);
