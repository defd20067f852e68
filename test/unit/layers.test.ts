// The layers of src/ and which may import which (README, "How it works"), checked on every import
// of every source file: static, dynamic and require. A new import that breaks the rule fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { ROOT } from '../helpers/load';

/** Each folder of src/ and the folders it may import from (itself always). */
const MAY_IMPORT: Record<string, string[]> = {
  util: [],
  config: ['util'],
  image: ['util'],
  ffi: ['util'],
  model: ['config', 'image', 'util'],
  plan: ['model', 'util'],
  audit: ['plan', 'model', 'config', 'util'],
  export: ['model', 'config', 'util'],
  import: ['model', 'config', 'util'],
  host: ['plan', 'model', 'image', 'util'],
  engine: ['host', 'plan', 'model', 'image', 'ffi', 'util'],
  ui: ['plan', 'engine', 'image', 'util'],
  api: ['config', 'model', 'plan', 'audit', 'engine', 'image', 'ui', 'util'],
  cli: ['api', 'config', 'model', 'plan', 'audit', 'export', 'import', 'engine', 'image', 'ui', 'util'],
  runtime: ['cli', 'config', 'model', 'plan', 'import', 'engine', 'util'],
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? (e === 'generated' ? [] : sources(p)) : e.endsWith('.ts') ? [p] : [];
  });
}

/** [file's folder, imported folder, the import] for every relative import of src/. */
function imports(): [string, string, string][] {
  const src = join(ROOT, 'src');
  const out: [string, string, string][] = [];
  for (const file of sources(src)) {
    const from = relative(src, file).split('/')[0]!;
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\(\s*|require\(\s*)'(\.{1,2}\/[^']+)'/g)) {
      const target = relative(src, resolve(dirname(file), m[1]!)).split('/')[0]!;
      out.push([from, target, `${relative(ROOT, file)}: ${m[1]}`]);
    }
  }
  return out;
}

test('every folder of src/ is placed in the layer rule', () => {
  const folders = readdirSync(join(ROOT, 'src')).filter((e) => statSync(join(ROOT, 'src', e)).isDirectory());
  assert.deepEqual(folders.filter((f) => !Object.hasOwn(MAY_IMPORT, f)), []);
});

test('each layer imports only the layers below it: no circle, and only the engine loads the FFI', () => {
  const all = imports();
  assert.ok(all.length > 100, `only ${all.length} imports were found: the scan is broken`);
  const bad = all.filter(([from, to]) => from !== to && !(MAY_IMPORT[from] ?? []).includes(to)).map(([from, to, where]) => `${from} → ${to} (${where})`);
  assert.deepEqual(bad, []);
  assert.deepEqual(all.filter(([from, to]) => to === 'ffi' && from !== 'engine' && from !== 'ffi').map((x) => x[2]), []);
});

test('the rule itself has no circle', () => {
  const seen = new Set<string>();
  const visit = (f: string, path: string[]) => {
    assert.ok(!path.includes(f), `circle: ${[...path, f].join(' → ')}`);
    if (seen.has(f)) return;
    for (const t of MAY_IMPORT[f] ?? []) visit(t, [...path, f]);
    seen.add(f);
  };
  for (const f of Object.keys(MAY_IMPORT)) visit(f, []);
});

test('no two source files import each other, directly or through others', () => {
  const src = join(ROOT, 'src');
  const graph = new Map<string, string[]>();
  for (const file of sources(src)) {
    const text = readFileSync(file, 'utf8');
    const deps = [...text.matchAll(/(?:from\s+|import\(\s*|require\(\s*)'(\.{1,2}\/[^']+)'/g)].map((m) => relative(src, resolve(dirname(file), m[1]!)) + '.ts');
    graph.set(relative(src, file), deps.filter((d) => !d.includes('generated/')));
  }
  const circles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') { circles.push([...path.slice(path.indexOf(f)), f].join(' → ')); return; }
    state.set(f, 'open');
    for (const d of graph.get(f) ?? []) visit(d, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f, []);
  assert.deepEqual(circles, []);
});
