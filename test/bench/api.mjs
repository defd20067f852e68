// The library's start-up (issue 27), as root: in-process `up()` of /bin/true through the public
// API (`import { up } from 'sandbox'`, package.json's exports), repeated in one Node process,
// against `crun run` of the same busybox root with the same namespaces, alternating in one run.
// Each `up()` is the whole of it: the file read and checked, the plan compiled, the engine's host
// steps, the clone, the child's steps, the attestation, the command, its wait and the undo.
//   ../shared/tools/crun-hybrid node test/bench/api.mjs [RUNS]   (crun 1.8 refuses hybrid cgroups without it)
// Goal: up() ≤ 1.5 × crun run (stretch 1.0).
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { load, up } from 'sandbox';
import { busyboxBundle, repoRoot as root } from './busybox-bundle.mjs';

const runs = Number(process.argv[2] ?? 20);
const { dir, rootfs } = busyboxBundle('sandbox-bench-api-', ['/bin/true']);
const file = join(dir, 'bench.yml');
const name = process.env.BENCH_NAME ?? `bench-api-${process.pid}`;
writeFileSync(file, `version: 1\nname: ${name}\nrootfs: {type: dir, path: ${rootfs}}\ncommand: [/bin/true]\nnetwork: none\n`);

let n = 0;
const crunWorks = spawnSync('crun', ['run', '--bundle', dir, `bench-api-probe-${process.pid}`], { stdio: 'ignore' }).status === 0;
if (!crunWorks) { console.log('crun does not run here: run this bench through ../shared/tools/crun-hybrid (or on a cgroup v2 host)'); process.exit(1); }
const loaded = await load(file);
const cases = {
  'crun run': async () => { const r = spawnSync('crun', ['run', '--bundle', dir, `bench-api-crun-${process.pid}-${n++}`], { stdio: 'ignore' }); if (r.status !== 0) throw new Error(`crun exited ${r.status}`); },
  'up(file) in-process': async () => { const code = await (await up(file, { stdio: 'ignore' })).wait(); if (code !== 0) throw new Error(`exit ${code}`); },
  'up(load()) in-process': async () => { const code = await (await up(loaded, { stdio: 'ignore' })).wait(); if (code !== 0) throw new Error(`exit ${code}`); },
};
const times = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
try {
  for (const k of Object.keys(cases)) await cases[k](); // warm: caches, the code's first compile
  for (let i = 0; i < runs; i++) for (const k of Object.keys(cases)) {
    const t0 = process.hrtime.bigint();
    await cases[k]();
    times[k].push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(`in-process up() of /bin/true vs crun run, ${runs} runs each, alternating; median ms`);
for (const [k, t] of Object.entries(times)) console.log(`  ${k.padEnd(24)} ${med(t).toFixed(1).padStart(7)}`);
const ratio = med(times['up(file) in-process']) / med(times['crun run']);
console.log(`  up(file) / crun run     ${ratio.toFixed(2)}×  (goal ≤ 1.5, stretch 1.0)`);
console.log(`  up(load()) / crun run   ${(med(times['up(load()) in-process']) / med(times['crun run'])).toFixed(2)}×`);
console.log(`  RSS after ${runs * 3 + 3} runs: ${(process.memoryUsage().rss / 1048576).toFixed(1)} MB`);
