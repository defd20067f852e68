// The TypeScript mirror of native/include/sbx.h, generated at build time (scripts/build.mjs) into
// src/ffi/generated/abi.ts, so that the CLI never carries a hand-copied op number, flag, event
// phase, struct size or field offset.
//
// The header is read for names only: the op kinds (enum sbx_op_kind), the SBX_F_* flags, the event
// phases (enum sbx_event_phase), the netprobe kinds and outcomes (enum sbx_probe_kind,
// sbx_probe_outcome), the attestation's fact kinds and mount flags (enum sbx_fact_kind,
// sbx_fact_mount_flag), SBX_ABI_VERSION and the fields of every struct sbx_* with a body.
// Their values, sizes and offsets come from the C compiler itself: a small program that includes
// the header and prints them is compiled with the system cc and run, on the build machine, as the
// building user. The C layout rules are therefore the compiler's, never re-implemented here.
//
//   node scripts/gen-abi.mjs           writes src/ffi/generated/abi.ts
//   node scripts/gen-abi.mjs --check   exits 1 when that file differs from what the header gives
//   node scripts/gen-abi.mjs --json    prints the parsed names and the compiler's values
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const HEADER = join(root, 'native/include/sbx.h');
export const OUTPUT = join(root, 'src/ffi/generated/abi.ts');

const stripComments = (text) => text.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, ' ');

/** The names the mirror holds, from the header's text: nothing is evaluated here. */
export function parseHeader(text) {
  const src = stripComments(text);
  const enumBody = (name) => {
    const m = new RegExp(`enum\\s+${name}\\s*\\{([^}]*)\\}`).exec(src);
    if (!m) throw new Error(`sbx.h: no enum ${name}`);
    return m[1].split(',').map((e) => e.split('=')[0].trim()).filter(Boolean);
  };
  const ops = enumBody('sbx_op_kind');
  const phases = enumBody('sbx_event_phase');
  const probes = enumBody('sbx_probe_kind');
  const outcomes = enumBody('sbx_probe_outcome');
  const facts = enumBody('sbx_fact_kind');
  const mountFlags = enumBody('sbx_fact_mount_flag');
  const flags = [...src.matchAll(/^\s*#\s*define\s+(SBX_F_\w+)\b/gm)].map((m) => m[1]);
  if (!/^\s*#\s*define\s+SBX_ABI_VERSION\b/m.test(src)) throw new Error('sbx.h: no SBX_ABI_VERSION');
  const structs = {};
  for (const m of src.matchAll(/struct\s+(sbx_\w+)\s*\{([^}]*)\}\s*;/g)) {
    const fields = [];
    for (const decl of m[2].split(';').map((d) => d.trim().replace(/\s+/g, ' ')).filter(Boolean)) {
      const dm = /^((?:(?:const|unsigned|signed|struct)\s+)*\w+)\s+(.+)$/.exec(decl);
      if (!dm) throw new Error(`sbx.h: struct ${m[1]}: cannot read "${decl}"`);
      for (const part of dm[2].split(',').map((p) => p.trim())) {
        const fm = /^(\w+)(?:\s*\[\s*(\d+)\s*\])?$/.exec(part);
        if (!fm) throw new Error(`sbx.h: struct ${m[1]}: cannot read field "${part}"`);
        fields.push({ name: fm[1], type: dm[1], count: fm[2] ? Number(fm[2]) : 1 });
      }
    }
    structs[m[1]] = fields;
  }
  return { ops, phases, probes, outcomes, facts, mountFlags, flags, structs };
}

/** The compiler's values for the parsed names: { consts: {SBX_…: number}, structs: {name: {size, fields: {f: {offset, size}}}} }. */
export function probe(parsed, { header = HEADER, cc = process.env.CC || 'cc' } = {}) {
  const lines = ['#include <stddef.h>', '#include <stdio.h>', `#include "${resolve(header)}"`, 'int main(void) {'];
  for (const name of ['SBX_ABI_VERSION', ...parsed.ops, ...parsed.phases, ...parsed.probes, ...parsed.outcomes, ...parsed.facts, ...parsed.mountFlags, ...parsed.flags])
    lines.push(`\tprintf("const ${name} %llu\\n", (unsigned long long)(${name}));`);
  for (const [s, fields] of Object.entries(parsed.structs)) {
    lines.push(`\tprintf("size ${s} %zu\\n", sizeof(struct ${s}));`);
    for (const f of fields) lines.push(`\tprintf("field ${s} ${f.name} %zu %zu\\n", offsetof(struct ${s}, ${f.name}), sizeof(((struct ${s} *)0)->${f.name}));`);
  }
  lines.push('\treturn 0;', '}', '');
  const dir = mkdtempSync(join(tmpdir(), 'sbx-abi-'));
  try {
    writeFileSync(join(dir, 'probe.c'), lines.join('\n'));
    execFileSync(cc, ['-std=gnu11', '-Wall', '-Werror', '-o', join(dir, 'probe'), join(dir, 'probe.c')], { stdio: ['ignore', 'ignore', 'inherit'] });
    const out = execFileSync(join(dir, 'probe'), { encoding: 'utf8' });
    const consts = {}, structs = {};
    for (const line of out.trim().split('\n')) {
      const w = line.split(' ');
      if (w[0] === 'const') consts[w[1]] = Number(w[2]);
      else if (w[0] === 'size') structs[w[1]] = { size: Number(w[2]), fields: {} };
      else if (w[0] === 'field') structs[w[1]].fields[w[2]] = { offset: Number(w[3]), size: Number(w[4]) };
    }
    return { consts, structs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const hex = (n) => (n >= 0x10000 ? `0x${n.toString(16)}` : String(n));
/** struct sbx_op → OP, struct sbx_supervise_head → SUPERVISE_HEAD. */
const structPrefix = (s) => s.replace(/^sbx_/, '').toUpperCase();

/** The module's text: the same input always gives the same bytes (the --check mode relies on it). */
export function render(parsed, values) {
  const c = values.consts;
  const entries = (names, prefix) => names.map((n) => `  ${n.slice(prefix.length)}: ${hex(c[n])},`).join('\n');
  const ops = parsed.ops.filter((n) => n !== 'SBX_OP_KIND_MAX');
  const out = [
    '// Generated by scripts/gen-abi.mjs from native/include/sbx.h at build time: do not edit, and do not',
    '// commit (src/ffi/generated/ is ignored). Values, sizes and offsets are what the C compiler gives.',
    '',
    `/** SBX_ABI_VERSION: libsbx must report the same (sbx_abi_version). */`,
    `export const ABI_VERSION = ${c.SBX_ABI_VERSION};`,
    '',
    '/** enum sbx_op_kind: OP.BIND is SBX_OP_BIND. */',
    'export const OP = {',
    entries(ops, 'SBX_OP_'),
    '} as const;',
    '/** SBX_OP_KIND_MAX: one past the last op kind. */',
    `export const OP_KIND_MAX = ${c.SBX_OP_KIND_MAX};`,
    '',
    '/** SBX_F_*: bits of struct sbx_op\'s flags. */',
    ...parsed.flags.map((n) => `export const ${n.slice('SBX_'.length)} = ${hex(c[n])};`),
    '',
    '/** enum sbx_event_phase: EV.START is SBX_EV_START. */',
    'export const EV = {',
    entries(parsed.phases, 'SBX_EV_'),
    '} as const;',
    '',
    '/** enum sbx_probe_kind: PROBE.TCP is SBX_PROBE_TCP (sbx_netprobe). */',
    'export const PROBE = {',
    entries(parsed.probes, 'SBX_PROBE_'),
    '} as const;',
    '',
    '/** enum sbx_probe_outcome: OUTCOME.REFUSED is SBX_OUTCOME_REFUSED. */',
    'export const OUTCOME = {',
    entries(parsed.outcomes, 'SBX_OUTCOME_'),
    '} as const;',
    '',
    '/** enum sbx_fact_kind: FACT.STATUS is SBX_FACT_STATUS (the records of sbx_proc_facts). */',
    'export const FACT = {',
    entries(parsed.facts, 'SBX_FACT_'),
    '} as const;',
    '',
    '/** enum sbx_fact_mount_flag: MNT.RO is SBX_MNT_RO (struct sbx_fact_mount\'s flags). */',
    'export const MNT = {',
    entries(parsed.mountFlags, 'SBX_MNT_'),
    '} as const;',
    '',
    '/** One field of a struct: its byte offset, its size in bytes, its C type and, for an array, its length. */',
    'export interface Field { readonly offset: number; readonly size: number; readonly type: string; readonly count: number }',
    '',
  ];
  for (const [s, fields] of Object.entries(parsed.structs)) {
    const v = values.structs[s];
    const p = structPrefix(s);
    out.push(`/** struct ${s} */`);
    out.push(`export const ${p}_SIZE = ${v.size};`);
    out.push(`export const ${p}_OFFSET = { ${fields.map((f) => `${f.name}: ${v.fields[f.name].offset}`).join(', ')} } as const;`);
    out.push(`export const ${p}_FIELDS: { readonly [name in keyof typeof ${p}_OFFSET]: Field } = {`);
    for (const f of fields) out.push(`  ${f.name}: { offset: ${v.fields[f.name].offset}, size: ${v.fields[f.name].size}, type: '${f.type}', count: ${f.count} },`);
    out.push('};', '');
  }
  return out.join('\n');
}

/** Parses the header, asks the compiler, and writes (or, with check, compares) the module. Returns whether it was up to date. */
export function generate({ header = HEADER, output = OUTPUT, check = false } = {}) {
  const parsed = parseHeader(readFileSync(header, 'utf8'));
  const text = render(parsed, probe(parsed, { header }));
  const same = existsSync(output) && readFileSync(output, 'utf8') === text;
  if (!check && !same) {
    mkdirSync(dirname(output), { recursive: true });
    writeFileSync(output, text);
  }
  return same;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--json')) {
    const parsed = parseHeader(readFileSync(HEADER, 'utf8'));
    process.stdout.write(JSON.stringify({ parsed, values: probe(parsed) }) + '\n');
  } else if (process.argv.includes('--check')) {
    if (!generate({ check: true })) { process.stderr.write(`${OUTPUT} differs from native/include/sbx.h: run node scripts/gen-abi.mjs\n`); process.exit(1); }
  } else {
    generate();
  }
}
