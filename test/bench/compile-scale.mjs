// Compile-time scaling (issue 13): the pure pipeline, load (parse → validate → normalize → rules)
// and compile, in this process, for configs of 10, 100, 1000 and 3000 volumes (half read-only
// binds of /usr/share, half tmpfs mounts). Uses the typed build (build/src), so run the build first.
// Prints the median ms per size and per volume: a linear pipeline keeps ms per volume flat.
// Goal: 1000 volumes ≤ 50 ms, and linear.   Run: node test/bench/compile-scale.mjs [RUNS]
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir, homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);
const { loadSpec } = require(join(root, 'build/src/model/load.js'));
const { compile } = require(join(root, 'build/src/plan/compile.js'));
const { probeHost } = require(join(root, 'build/src/engine/probe.js'));
const runs = Number(process.argv[2] ?? 15);
const host = probeHost();
const dir = mkdtempSync(join(tmpdir(), 'sandbox-scale-'));
const yaml = (n) => {
  const lines = ['version: 1', 'name: scale', 'rootfs: {type: dir, path: /}', 'command: [/bin/true]', 'network: none', 'volumes:'];
  for (let i = 0; i < n; i++) lines.push(i % 2 ? `  - {type: tmpfs, target: /mnt/t${i}, size: 1m}` : `  - /usr/share:/mnt/b${i}:ro`);
  return lines.join('\n') + '\n';
};
const once = (file) => {
  const t0 = process.hrtime.bigint();
  const res = loadSpec({ file, absFile: file, bytes: readFileSync(file), env: process.env, home: homedir(), hostCpus: host.cpus, readFile: () => undefined });
  if (!res.spec) throw new Error(`${file}: ${res.diagnostics.map((d) => `${d.line}:${d.col} ${d.message}`).slice(0, 3).join('; ')}`);
  const t1 = process.hrtime.bigint();
  const { plan, problems } = compile(res.spec, host);
  const t2 = process.hrtime.bigint();
  if (!plan || problems.some((p) => !p.atRun)) throw new Error(`${file}: ${problems.map((p) => p.message).slice(0, 3).join('; ')}`);
  return [Number(t1 - t0) / 1e6, Number(t2 - t1) / 1e6];
};
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const rows = [];
try {
  for (const n of [10, 100, 1000, 3000]) {
    const file = join(dir, `scale-${n}.yml`);
    writeFileSync(file, yaml(n));
    for (let i = 0; i < 3; i++) once(file); // warm the JIT
    const l = [], c = [];
    for (let i = 0; i < runs; i++) { const [a, b] = once(file); l.push(a); c.push(b); }
    rows.push({ n, load: med(l), compile: med(c), total: med(l.map((x, i) => x + c[i])) });
  }
} finally { rmSync(dir, { recursive: true, force: true }); }
console.log(`load + compile in process, ${runs} runs each; median ms`);
console.log(`${'volumes'.padStart(8)} ${'load'.padStart(8)} ${'compile'.padStart(8)} ${'total'.padStart(8)} ${'µs/volume'.padStart(10)}`);
for (const r of rows) console.log(`${String(r.n).padStart(8)} ${r.load.toFixed(2).padStart(8)} ${r.compile.toFixed(2).padStart(8)} ${r.total.toFixed(2).padStart(8)} ${(1000 * r.total / r.n).toFixed(1).padStart(10)}`);
const at = (n) => rows.find((r) => r.n === n).total;
const growth = (at(3000) / 3000) / (at(1000) / 1000);
console.log(`\n1000 volumes: ${at(1000).toFixed(1)} ms (goal ≤ 50): ${at(1000) <= 50 ? 'met' : 'NOT met'}`);
console.log(`per-volume cost 3000 / 1000 = ${growth.toFixed(2)} (linear ≈ 1; goal ≤ 1.3): ${growth <= 1.3 ? 'met' : 'NOT met'}`);
