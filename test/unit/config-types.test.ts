// The config type (UserConfig, src/config/generated/config-types.ts, made by
// scripts/gen-config-types.mjs) against the schema it is generated from. The type is checked by the
// TypeScript compiler over documents made from the schema and judged by ajv's validator: every
// document the schema accepts must have the type, and every document the schema refuses for its
// shape (a wrong type, an unknown key, a missing required key, a value outside an enum) must not.
// So the test fails when a key of the schema is missing from the type, looser in it (unknown, an
// index signature) or stricter; and the generator must stop at a construct it does not know.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import type { ErrorObject } from 'ajv';
import validateSchema from '../../src/config/generated/validate-schema';
import { isUserConfig } from '../../src/config/validate';
import { ROOT } from '../helpers/load';

type Schema = Record<string, any>;
const SCHEMA = JSON.parse(readFileSync(join(ROOT, 'schema/sandbox.schema.json'), 'utf8')) as Schema;
const GENERATOR = join(ROOT, 'scripts/gen-config-types.mjs');
const TYPES = join(ROOT, 'src/config/generated/config-types.ts');

function rng(seed: number) {
  let s = seed >>> 0;
  return () => { s = (s + 0x6d2b79f5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}

/** Keys whose value the schema makes other keys depend on (`if: {properties: {type: {const}}}`). */
const CONDITION_KEYS = new Set<string>();
(function conditions(s: unknown): void {
  if (!s || typeof s !== 'object') return;
  const ifProps = (s as Schema).if?.properties;
  if (ifProps) for (const k of Object.keys(ifProps)) CONDITION_KEYS.add(k);
  for (const v of Object.values(s)) conditions(v);
})(SCHEMA);

const jsonType = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'number' ? (Number.isInteger(v) ? 'integer' : 'number') : typeof v);
const fits = (t: string) => (v: unknown) => jsonType(v) === t || (t === 'number' && jsonType(v) === 'integer');

/** Documents valid against the schema as far as their shape goes, made from its examples, enums
 * and properties (patterns are mostly kept by taking examples). */
class Docs {
  constructor(readonly r: () => number) {}
  chance(p: number) { return this.r() < p; }
  pick<T>(list: readonly T[]): T { return list[Math.floor(this.r() * list.length)]!; }

  /** `s` read as the one JSON type `t`, with what `if: {type: t}` adds. */
  resolved(s: Schema, t: string): Schema {
    let out = s;
    for (const c of s.allOf ?? []) if (c.if?.type === t) out = { ...out, ...c.then };
    return out;
  }

  value(s: Schema, depth: number): unknown {
    if (s.type === undefined) return s.enum ? this.pick(s.enum) : this.pick([1, 'note', true, null, { a: [1] }]);
    const t = this.pick(([] as string[]).concat(s.type));
    const x = this.resolved(s, t);
    const listed = (x.const !== undefined ? [x.const] : x.enum ?? []).filter(fits(t));
    if (listed.length) return this.pick(listed);
    const examples = [...(x.examples ?? []), ...(s.examples ?? [])].filter(fits(t));
    switch (t) {
      case 'string': case 'integer': case 'number': return examples.length ? structuredClone(this.pick(examples)) : t === 'string' ? 'x' : (x.minimum ?? 1);
      case 'boolean': return this.chance(0.5);
      case 'null': return null;
      case 'array': return Array.from({ length: Math.floor(this.r() * 3) }, () => this.value(x.items ?? {}, depth + 1));
      default: return examples.length && this.chance(0.3) ? structuredClone(this.pick(examples)) : this.object(x, depth);
    }
  }

  object(s: Schema, depth: number): Record<string, unknown> {
    const o: Record<string, unknown> = {};
    const props: Record<string, Schema> = s.properties ?? {};
    const required = new Set<string>(s.required ?? []);
    for (const [k, p] of Object.entries(props)) if (required.has(k) || this.chance(0.5)) o[k] = this.value(p, depth + 1);
    // What a key's value requires beside it (rootfs type dir: path; a bind: its source).
    for (const c of s.allOf ?? []) {
      const cond = c.if?.properties as Record<string, Schema> | undefined;
      if (!cond || !Object.entries(cond).every(([k, v]) => o[k] === v.const)) continue;
      for (const k of c.then.required ?? []) if (!Object.hasOwn(o, k)) o[k] = this.value(c.then.properties?.[k] ?? props[k]!, depth + 1);
    }
    if (typeof s.additionalProperties === 'object') {
      const names: string[] = s.propertyNames?.enum ?? ['A', 'B_1', 'db', 'net.core.somaxconn'];
      for (let i = Math.floor(this.r() * 3); i > 0; i--) o[this.pick(names)] = this.value(s.additionalProperties, depth + 1);
    } else if (s.patternProperties?.['^x-'] && this.chance(0.2)) {
      // Extension fields hold anything. (In a mapping whose other keys have a type of their own,
      // the generated type gives x- keys that type: see scripts/gen-config-types.mjs.)
      o['x-note'] = this.value(s.patternProperties['^x-'], depth + 1);
    }
    return o;
  }

  /** Every place in a document, as a path. */
  places(v: unknown, path: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
    if (path.length) out.push(path);
    if (Array.isArray(v)) v.forEach((x, i) => this.places(x, [...path, i], out));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) this.places(x, [...path, k], out);
    return out;
  }

  /** The document with one thing changed, in every way at every place: a value of each other
   * type, a string or number outside any list, an unknown key added, a key or item removed. Each comes with
   * a signature (the place with list indexes left out, the value of the keys other keys depend on
   * beside it, and the change) so that one case of each is enough. */
  *mutations(doc: Record<string, unknown>): Generator<{ sig: string; doc: Record<string, unknown> }> {
    for (const path of this.places(doc)) {
      const parentOf = path.slice(0, -1).reduce<any>((n, p) => n[p], doc);
      const when = Object.entries(parentOf).filter(([k, v]) => CONDITION_KEYS.has(k) && typeof v === 'string').map(([k, v]) => `(${k}=${v})`).join('');
      const sig = path.map((p) => (typeof p === 'number' ? '[]' : p)).join('.') + when;
      // Only `version` and the top-level key changed are kept: no key of the top level depends
      // on another, and short documents keep the compiler quick.
      const change = (what: string, edit: (parent: any, last: string | number) => void) => {
        const copy = structuredClone({ version: doc.version, [path[0]!]: doc[path[0]!] });
        const parent = path.slice(0, -1).reduce<any>((n, p) => n[p], copy);
        edit(parent, path.at(-1)!);
        return { sig: `${sig} ${what}`, doc: copy };
      };
      const old = path.reduce<any>((n, p) => n[p], doc);
      for (const v of ['text', 7, true, null, [], {}]) {
        if (jsonType(v) !== jsonType(old)) yield change(`= ${JSON.stringify(v)}`, (parent, last) => { parent[last] = v; });
      }
      if (typeof old === 'string') yield change('= a string outside its list', (parent, last) => { parent[last] = 'zz-not-listed'; });
      if (typeof old === 'number') yield change('= a number outside its list', (parent, last) => { parent[last] = old + 1000; });
      if (old && typeof old === 'object' && !Array.isArray(old)) yield change('+ an unknown key', (parent, last) => { parent[last].no_such_key = 1; });
      yield change('removed', (parent, last) => { if (Array.isArray(parent)) parent.splice(last as number, 1); else delete parent[last]; });
    }
    yield { sig: '+ an unknown key', doc: { version: doc.version, no_such_key: 1 } };
  }
}

/** Whether ajv refuses the document for its shape, which the type must refuse too (its patterns,
 * ranges and whole-number checks the type cannot say). */
function shapeErrors(doc: unknown): ErrorObject[] | undefined {
  if (validateSchema(doc)) return undefined;
  return (validateSchema.errors ?? []).filter((e) =>
    e.keyword === 'additionalProperties' || e.keyword === 'required' || e.keyword === 'const' ||
    e.keyword === 'enum' || (e.keyword === 'type' && !(typeof (e as { data?: unknown }).data === 'number' && ([] as string[]).concat((e.params as { type: string }).type).includes('integer'))));
}

/** The compiler's errors for a module, by line. */
function typeErrors(source: string): Map<number, string[]> {
  const file = join(ROOT, 'build', 'config-types-check.ts');
  const options: ts.CompilerOptions = { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, types: [], skipLibCheck: true };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) => (name === file ? ts.createSourceFile(name, source, lang) : getSourceFile(name, lang, ...rest));
  const exists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || exists(name);
  const program = ts.createProgram([file], options, host);
  const byLine = new Map<number, string[]>();
  for (const d of ts.getPreEmitDiagnostics(program)) {
    assert.equal(d.file?.fileName, file, `the generated type does not compile: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    const line = d.file!.getLineAndCharacterOfPosition(d.start!).line;
    byLine.set(line, [...(byLine.get(line) ?? []), `TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`]);
  }
  return byLine;
}

test('documents the schema accepts have the type UserConfig; documents it refuses by shape do not', () => {
  const g = new Docs(rng(Number(process.env.TYPES_SEED ?? 20261207)));
  const lines = [`import type { UserConfig } from ${JSON.stringify(TYPES.replace(/\.ts$/, ''))};`];
  const cases: { line: number; doc: unknown; refused?: ErrorObject[] }[] = [];
  const add = (doc: unknown, refused?: ErrorObject[]) => {
    if (refused) lines.push('// @ts-expect-error: the schema refuses it');
    cases.push({ line: lines.length, doc, refused });
    lines.push(`export const d${cases.length}: UserConfig = ${JSON.stringify(doc)};`);
  };
  // The schema's own examples of a whole file first.
  for (const e of SCHEMA.examples) add(e);
  let accepted = 0, refused = 0;
  const seen = new Set<string>();
  for (let i = 0; i < 150; i++) {
    const doc: Record<string, unknown> = { ...g.object(SCHEMA, 0), version: 1 };
    if (!isUserConfig(doc)) continue;
    add(doc);
    accepted++;
    for (const m of g.mutations(doc)) {
      if (seen.has(m.sig)) continue;
      const shape = shapeErrors(m.doc);
      if (!shape?.length) continue;
      seen.add(m.sig);
      add(m.doc, shape);
      refused++;
    }
  }
  assert.ok(accepted >= 100 && refused >= 500, `too few documents to judge the type by: ${accepted} accepted, ${refused} refused`);
  const errors = typeErrors(lines.join('\n') + '\n');
  const wrong: string[] = [];
  for (const c of cases) {
    const got = errors.get(c.line) ?? [];
    if (!c.refused && got.length) wrong.push(`the schema accepts ${JSON.stringify(c.doc)} but the type does not: ${got.join('; ')}`);
    // An unused @ts-expect-error is reported on its own line, the one above the document.
    if (c.refused && (errors.get(c.line - 1) ?? []).some((m) => m.startsWith('TS2578'))) {
      wrong.push(`the schema refuses ${JSON.stringify(c.doc)} (${c.refused.map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ')}) but the type accepts it`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('the built config type is what the schema gives, and names every key of the schema', () => {
  const r = spawnSync(process.execPath, [GENERATOR, '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const text = readFileSync(TYPES, 'utf8');
  // Every property at every depth, with its description as a doc comment just above it.
  const walk = (s: unknown, at: string): void => {
    if (Array.isArray(s)) { s.forEach((x, i) => walk(x, `${at}/${i}`)); return; }
    if (!s || typeof s !== 'object') return;
    for (const [k, v] of Object.entries(s as Schema)) {
      if (k === 'examples' || k === 'enum' || k === 'const' || k === 'if') continue;
      if (k === 'properties') {
        for (const [name, p] of Object.entries(v as Record<string, Schema>)) {
          const described = typeof p.description === 'string' ? `/\\*\\* ${p.description.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\*/\\n\\s*` : '\\s';
          assert.match(text, new RegExp(`${described}${name}\\??: `), `${at}/properties/${name} is in the type with its description`);
          walk(p, `${at}/properties/${name}`);
        }
      } else walk(v, `${at}/${k}`);
    }
  };
  walk(SCHEMA, '');
});

test('the generator stops at a construct it does not know, and types a new key it does', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandbox-config-types-'));
  try {
    const run = (edit: (s: Schema) => void) => {
      const s = structuredClone(SCHEMA);
      edit(s);
      const file = join(dir, 'schema.json');
      writeFileSync(file, JSON.stringify(s));
      return spawnSync(process.execPath, [GENERATOR, '--stdout', file], { encoding: 'utf8' });
    };
    const unknown: [string, (s: Schema) => void, RegExp][] = [
      ['a keyword', (s) => { s.properties.cap_add.minItems = 1; }, /\/properties\/cap_add: the keyword "minItems"/],
      ['oneOf', (s) => { s.properties.resources.properties.cpus.oneOf = [{ type: 'number' }, { type: 'string' }]; }, /\/properties\/resources\/properties\/cpus: the keyword "oneOf"/],
      ['$ref', (s) => { s.properties.security.properties.seccomp = { $ref: '#/$defs/seccomp' }; }, /seccomp: the keyword "\$ref"/],
      ['a type', (s) => { s.properties.tty.type = 'bool'; }, /\/properties\/tty\/type: the type "bool"/],
      ['an if on a pattern', (s) => { s.properties.user.allOf[0].if = { pattern: '^[0-9]' }; }, /\/properties\/user\/allOf\/0\/if: the condition/],
      ['an else', (s) => { s.properties.user.allOf[0].else = { minimum: 0 }; }, /\/properties\/user\/allOf\/0: an allOf member other than \{if, then\}/],
      ['a key pattern other than ^x-', (s) => { s.properties.security.patternProperties = { '^y-': {} }; }, /\/properties\/security\/patternProperties\/\^y-: the key pattern/],
      ['items on a string', (s) => { s.properties.workdir.items = { type: 'string' }; }, /\/properties\/workdir\/items: "items" for a value of type string/],
      ['a keyword inside a then', (s) => { s.properties.rootfs.allOf[1].then.properties.path.format = 'uri'; }, /\/properties\/rootfs\/allOf\/1\/then\/properties\/path: the keyword "format"/],
    ];
    for (const [what, edit, message] of unknown) {
      const r = run(edit);
      assert.equal(r.status, 1, `${what}: the generator fails`);
      assert.equal(r.stdout, '', `${what}: nothing is written`);
      assert.match(r.stderr, message, what);
    }
    const added = run((s) => { s.properties.resources.properties.cpu_quota = { type: ['integer', 'string'], description: 'A test key.', enum: [1, 'max'] }; });
    assert.equal(added.status, 0, added.stderr);
    assert.match(added.stdout, /\n {4}\/\*\* A test key\. \*\/\n {4}cpu_quota\?: 1 \| "max";\n/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
