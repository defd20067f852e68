// Seeded fuzzing of the whole pure pipeline: random and mutated YAML must never throw, never
// hang, and always end in either a spec or at least one error located inside the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSpec } from '../../src/model/load';
import { compile } from '../../src/plan/compile';
import { HYBRID_HOST, ROOT } from '../helpers/load';

const SEED = Number(process.env.FUZZ_SEED ?? 20261123);
const RUNS = Number(process.env.FUZZ_RUNS ?? 3000);

function rng(seed: number) {
  let s = seed >>> 0;
  return () => { s = (s + 0x6d2b79f5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}

const samples = readdirSync(join(ROOT, 'samples')).filter((f) => f.endsWith('.yml')).map((f) => readFileSync(join(ROOT, 'samples', f)));
const TOKENS = [':', '- ', '[', ']', '{', '}', ',', '&a ', '*a', '"', "'", '#', '\t', '\n', '  ', '---\n', '? ', '|', '>', '!!str ', '!!binary ', '%YAML 1.2\n', '${X}', '${X:?}', '$$', '__proto__: 1\n', 'version: 1\n', 'ports: [', 'memory: ', '\u0000', '\ufeff', '\r\n', '💥', '1e999', '-1', '0x10', '~', 'null', 'true'];

function mutate(r: () => number, input: Uint8Array): Uint8Array {
  const bytes = Array.from(input);
  const n = 1 + Math.floor(r() * 6);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(r() * (bytes.length + 1));
    const op = Math.floor(r() * 5);
    if (op === 0 && bytes.length) bytes[at % bytes.length] = Math.floor(r() * 256);
    else if (op === 1) bytes.splice(at, 0, ...Buffer.from(TOKENS[Math.floor(r() * TOKENS.length)]!));
    else if (op === 2) bytes.splice(at, Math.floor(r() * 40));
    else if (op === 3) { const lines = Buffer.from(bytes).toString('latin1').split('\n'); lines.splice(Math.floor(r() * lines.length), 1); return Buffer.from(lines.join('\n'), 'latin1'); }
    else { const from = Math.floor(r() * bytes.length); bytes.splice(at, 0, ...bytes.slice(from, from + Math.floor(r() * 60))); }
  }
  return Uint8Array.from(bytes);
}

function random(r: () => number): Uint8Array {
  let s = '';
  const n = Math.floor(r() * 60);
  for (let i = 0; i < n; i++) s += TOKENS[Math.floor(r() * TOKENS.length)]! + (r() < 0.3 ? 'k' + Math.floor(r() * 9) : '');
  return Buffer.from(s);
}

test(`fuzz: ${RUNS} random and mutated files (seed ${SEED}) end in a spec or a located error`, () => {
  const r = rng(SEED);
  let valid = 0, slowest = 0;
  for (let i = 0; i < RUNS; i++) {
    const bytes = i % 4 === 0 ? random(r) : mutate(r, samples[i % samples.length]!);
    const t0 = performance.now();
    let res;
    try {
      res = loadSpec({ file: 'f.yml', absFile: '/p/f.yml', bytes, env: {}, home: '/h', hostCpus: 2, readFile: () => undefined });
      if (res.spec) compile(res.spec, HYBRID_HOST);
    } catch (e) {
      assert.fail(`run ${i} threw ${(e as Error).stack}\ninput: ${JSON.stringify(Buffer.from(bytes).toString('latin1'))}`);
    }
    slowest = Math.max(slowest, performance.now() - t0);
    const lines = Buffer.from(bytes).toString('latin1').split('\n').length;
    if (res.spec) { valid++; continue; }
    const errors = res.diagnostics.filter((d) => d.severity === 'error');
    assert.ok(errors.length > 0, `run ${i}: no spec and no error`);
    for (const d of errors) {
      assert.ok(d.line >= 1 && d.line <= lines + 1 && d.col >= 1, `run ${i}: ${d.line}:${d.col} outside the file (${lines} lines): ${d.message}`);
      assert.ok(d.message.length > 10 && !/\bat \S+ \(/.test(d.message), `run ${i}: message looks like a stack: ${d.message}`);
    }
  }
  // A hang would show as one run taking seconds; 2 s is far above any honest parse of 256 KiB.
  assert.ok(slowest < 2000, `slowest run took ${slowest.toFixed(0)} ms`);
  assert.ok(valid > 0, 'some mutations stay valid');
});
