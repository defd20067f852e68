// The TypeScript mirror of native/include/sbx.h (src/ffi/generated/abi.ts, made by
// scripts/gen-abi.mjs) against the header itself. The test reads the header's names on its own,
// asks the C compiler for their values, sizes and offsets, and compares them with the built module;
// so it fails when the header changed and the mirror was not generated again, or was edited.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as abi from '../../src/ffi/generated/abi';

const root = join(__dirname, '..', '..', '..');
const header = join(root, 'native/include/sbx.h');
const source = readFileSync(header, 'utf8').replace(/\/\*[\s\S]*?\*\//g, ' ');

type Field = { offset: number; size: number };
type Layout = Record<string, Field>;
/** struct sbx_supervise_head → SUPERVISE_HEAD, the prefix of its _SIZE, _OFFSET and _FIELDS. */
const prefix = (s: string) => s.replace(/^sbx_/, '').toUpperCase();
const mirror = abi as unknown as Record<string, unknown>;

/** Every SBX_OP_*, SBX_EV_* and SBX_F_* name the header declares, and the structs with a body. */
function headerNames() {
  const enumNames = (name: string) => {
    const m = new RegExp(`enum\\s+${name}\\s*\\{([^}]*)\\}`).exec(source);
    assert.ok(m, `sbx.h declares enum ${name}`);
    return m[1]!.split(',').map((e) => e.split('=')[0]!.trim()).filter(Boolean);
  };
  return {
    ops: enumNames('sbx_op_kind'),
    phases: enumNames('sbx_event_phase'),
    probes: enumNames('sbx_probe_kind'),
    outcomes: enumNames('sbx_probe_outcome'),
    facts: enumNames('sbx_fact_kind'),
    mountFlags: enumNames('sbx_fact_mount_flag'),
    flags: [...source.matchAll(/^\s*#\s*define\s+(SBX_F_\w+)/gm)].map((m) => m[1]!),
    structs: [...source.matchAll(/struct\s+(sbx_\w+)\s*\{/g)].map((m) => m[1]!),
  };
}

/** The mirror's value for a header name, or undefined where it has none. */
function mirrored(name: string): unknown {
  if (name === 'SBX_ABI_VERSION') return abi.ABI_VERSION;
  if (name === 'SBX_OP_KIND_MAX') return abi.OP_KIND_MAX;
  if (name.startsWith('SBX_OP_')) return (abi.OP as Record<string, number>)[name.slice(7)];
  if (name.startsWith('SBX_EV_')) return (abi.EV as Record<string, number>)[name.slice(7)];
  if (name.startsWith('SBX_PROBE_')) return (abi.PROBE as Record<string, number>)[name.slice(10)];
  if (name.startsWith('SBX_OUTCOME_')) return (abi.OUTCOME as Record<string, number>)[name.slice(12)];
  if (name.startsWith('SBX_FACT_')) return (abi.FACT as Record<string, number>)[name.slice(9)];
  if (name.startsWith('SBX_MNT_')) return (abi.MNT as Record<string, number>)[name.slice(8)];
  return mirror[name.slice(4)];
}

/** Compiles and runs a C program that includes the header and prints each name's value, each
 * struct's size, and the offset and size of each field the mirror lists. */
function compilerValues(names: string[], structs: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-abi-test-'));
  try {
    const body: string[] = [];
    for (const n of names) body.push(`printf("const ${n} %llu\\n", (unsigned long long)(${n}));`);
    for (const s of structs) {
      body.push(`printf("size ${s} %zu\\n", sizeof(struct ${s}));`);
      for (const f of Object.keys((mirror[`${prefix(s)}_FIELDS`] ?? {}) as Layout))
        body.push(`printf("field ${s} ${f} %zu %zu\\n", offsetof(struct ${s}, ${f}), sizeof(((struct ${s} *)0)->${f}));`);
    }
    writeFileSync(join(dir, 'p.c'), `#include <stddef.h>\n#include <stdio.h>\n#include "${header}"\nint main(void) {\n${body.join('\n')}\nreturn 0;\n}\n`);
    execFileSync(process.env.CC || 'cc', ['-std=gnu11', '-o', join(dir, 'p'), join(dir, 'p.c')], { stdio: ['ignore', 'ignore', 'pipe'] });
    const consts = new Map<string, number>(), sizes = new Map<string, number>(), fields = new Map<string, Layout>();
    for (const line of execFileSync(join(dir, 'p'), { encoding: 'utf8' }).trim().split('\n')) {
      const w = line.split(' ');
      if (w[0] === 'const') consts.set(w[1]!, Number(w[2]));
      else if (w[0] === 'size') sizes.set(w[1]!, Number(w[2]));
      else { if (!fields.has(w[1]!)) fields.set(w[1]!, {}); fields.get(w[1]!)![w[2]!] = { offset: Number(w[3]), size: Number(w[4]) }; }
    }
    return { consts, sizes, fields };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('every op kind, event phase, probe kind and outcome, fact kind, mount flag and flag of sbx.h is in the mirror, with the value the compiler gives', () => {
  const h = headerNames();
  const names = ['SBX_ABI_VERSION', ...h.ops, ...h.phases, ...h.probes, ...h.outcomes, ...h.facts, ...h.mountFlags, ...h.flags];
  const { consts } = compilerValues(names, []);
  for (const n of names) assert.equal(mirrored(n), consts.get(n), `${n}: the mirror says ${String(mirrored(n))}, the compiler ${consts.get(n)}`);
  // Nothing the header no longer declares stays behind.
  assert.deepEqual(Object.keys(abi.OP).sort(), h.ops.filter((n) => n !== 'SBX_OP_KIND_MAX').map((n) => n.slice(7)).sort());
  assert.deepEqual(Object.keys(abi.EV).sort(), h.phases.map((n) => n.slice(7)).sort());
  assert.deepEqual(Object.keys(abi.PROBE).sort(), h.probes.map((n) => n.slice(10)).sort());
  assert.deepEqual(Object.keys(abi.OUTCOME).sort(), h.outcomes.map((n) => n.slice(12)).sort());
  assert.deepEqual(Object.keys(abi.FACT).sort(), h.facts.map((n) => n.slice(9)).sort());
  assert.deepEqual(Object.keys(abi.MNT).sort(), h.mountFlags.map((n) => n.slice(8)).sort());
  assert.deepEqual(Object.keys(abi).filter((k) => /^F_/.test(k)).sort(), h.flags.map((n) => n.slice(4)).sort());
  assert.ok(h.ops.includes('SBX_OP_BIND') && abi.OP.BIND === consts.get('SBX_OP_BIND'));
});

test('every struct of sbx.h has the compiler\'s size and field offsets in the mirror', () => {
  const h = headerNames();
  assert.ok(h.structs.includes('sbx_op') && h.structs.includes('sbx_event'));
  const { sizes, fields } = compilerValues([], h.structs);
  for (const s of h.structs) {
    const p = prefix(s);
    assert.equal(mirror[`${p}_SIZE`], sizes.get(s), `sizeof(struct ${s})`);
    const layout = mirror[`${p}_FIELDS`] as Record<string, Field & { type: string; count: number }>;
    const offsets = mirror[`${p}_OFFSET`] as Record<string, number>;
    for (const [f, v] of Object.entries(fields.get(s) ?? {})) {
      assert.equal(layout[f]!.offset, v.offset, `offsetof(struct ${s}, ${f})`);
      assert.equal(layout[f]!.size, v.size, `sizeof ${s}.${f}`);
      assert.equal(offsets[f], v.offset, `${p}_OFFSET.${f}`);
    }
    // The fields cover the struct, up to its tail padding: a field the header added would not.
    const end = Math.max(...Object.values(layout).map((f) => f.offset + f.size));
    assert.ok(end <= sizes.get(s)! && sizes.get(s)! - end < 8, `struct ${s}: the mirror's fields end at ${end} of ${sizes.get(s)} bytes`);
  }
});

test('the mirror is what the generator makes from the header now', () => {
  // A fresh parse and compile by scripts/gen-abi.mjs: its names and values equal the built module's.
  const fresh = JSON.parse(execFileSync(process.execPath, [join(root, 'scripts/gen-abi.mjs'), '--json'], { encoding: 'utf8' })) as {
    parsed: { ops: string[]; phases: string[]; probes: string[]; outcomes: string[]; flags: string[]; structs: Record<string, { name: string; type: string; count: number }[]> };
    values: { consts: Record<string, number>; structs: Record<string, { size: number; fields: Layout }> };
  };
  for (const [n, v] of Object.entries(fresh.values.consts)) assert.equal(mirrored(n), v, n);
  assert.deepEqual(Object.keys(fresh.parsed.structs).sort(), headerNames().structs.sort());
  for (const [s, fields] of Object.entries(fresh.parsed.structs)) {
    const layout = mirror[`${prefix(s)}_FIELDS`] as Record<string, Field & { type: string; count: number }>;
    assert.deepEqual(Object.keys(layout), fields.map((f) => f.name), `struct ${s}: fields`);
    for (const f of fields) assert.deepEqual(layout[f.name], { ...fresh.values.structs[s]!.fields[f.name]!, type: f.type, count: f.count }, `${s}.${f.name}`);
    assert.equal(mirror[`${prefix(s)}_SIZE`], fresh.values.structs[s]!.size);
  }
  // And the TypeScript source itself is current (the test runs from build/, compiled from it).
  execFileSync(process.execPath, [join(root, 'scripts/gen-abi.mjs'), '--check'], { stdio: ['ignore', 'ignore', 'pipe'] });
});
