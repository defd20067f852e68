// Configs generated from the schema itself: for every property of schema/sandbox.schema.json, valid
// values (its examples, enums, numbers in range) and hostile ones (wrong types, huge and negative
// numbers, empty, very long and unicode strings, ${…} forms, keys named like Object.prototype's
// members at every level). Seeded and deterministic. Each case runs through the pipeline the CLI
// uses (loadSpec, compile with a fixed host, the text formatter) and must end in a spec and a plan
// or in located diagnostics: never a throw, never an internal error, never seconds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadSpec } from '../../src/model/load';
import { formatDiagnostics, MAX_PRINTED } from '../../src/config/diagnostic';
import { compile } from '../../src/plan/compile';
import { planJson, renderPlan } from '../../src/plan/render';
import { HYBRID_HOST, ROOT } from '../helpers/load';

const SEED = Number(process.env.FUZZ_SEED ?? 20261124);
const RUNS = Number(process.env.FUZZ_RUNS ?? 3000);

type Schema = Record<string, unknown> & {
  type?: string | string[]; properties?: Record<string, Schema>; patternProperties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema; propertyNames?: Schema; items?: Schema; required?: string[];
  enum?: unknown[]; const?: unknown; examples?: unknown[]; allOf?: { if?: Schema; then?: Schema }[];
  minimum?: number; maximum?: number; exclusiveMinimum?: number; minLength?: number; maxLength?: number; pattern?: string;
};

const SCHEMA = JSON.parse(readFileSync(join(ROOT, 'schema/sandbox.schema.json'), 'utf8')) as Schema;
const PROTO_KEYS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];
const INTERP = ['${SET}', '${UNSET}', '$UNSET', '${UNSET:-dflt}', '${UNSET-d}', '${UNSET:?give it}', '${EMPTY:?}', '${SET:+alt}', '$$', '$$UNSET', '${', '${}', '${1X}', '${constructor}', '$toString', '${A:-${B:-${C}}}', 'a$', '$(x)', '${'.repeat(40), '${X:-'.repeat(30) + '}'.repeat(30)];
const UNICODE = ['é', '日本語', '💥', '\u200b', '\u202e', 'e\u0301', '\ud83d', '\u0000', '\t', '\r', '\u2028', '\ufeff', 'İ', 'ß'];

function rng(seed: number) {
  let s = seed >>> 0;
  return () => { s = (s + 0x6d2b79f5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}

class Gen {
  /** How often a value is hostile instead of what the schema asks for: set per case. */
  rate = 0.12;
  constructor(readonly r: () => number) {}
  chance(p: number) { return this.r() < p; }
  int(n: number) { return Math.floor(this.r() * n); }
  pick<T>(list: readonly T[]): T { return list[this.int(list.length)]!; }

  /** A key set on an object so that __proto__ stays an own key, never the prototype. */
  static put(o: Record<string, unknown>, k: string, v: unknown) { Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true }); }

  types(s: Schema): string[] {
    if (s.type) return ([] as string[]).concat(s.type);
    if (s.properties || s.additionalProperties !== undefined || s.propertyNames) return ['object'];
    if (s.items) return ['array'];
    return ['string', 'integer', 'boolean', 'object', 'array'];
  }

  /** `s` with the `then` of each allOf entry whose `if` is about `type`. */
  resolved(s: Schema, type: string): Schema {
    let out: Schema = s;
    for (const c of s.allOf ?? []) if (c.if?.type === type && c.then) out = { ...out, ...c.then, properties: { ...(out.properties ?? {}), ...(c.then.properties ?? {}) } };
    return out;
  }

  string(): string {
    switch (this.int(9)) {
      case 0: return '';
      case 1: return 'x'.repeat(1 + this.int(this.chance(0.1) ? 5000 : 300));
      case 2: return Array.from({ length: 1 + this.int(8) }, () => this.pick(UNICODE)).join('');
      case 3: return this.pick(INTERP);
      case 4: return `/${this.pick(['tmp', 'proc', 'dev', 'sys', '..', '.'])}/${this.pick(PROTO_KEYS)}`;
      case 5: return this.pick(PROTO_KEYS);
      case 6: return String(this.pick([-1, 0, 1, 65535, 65536, 2 ** 31, 2 ** 53 + 1, 1e308]));
      case 7: return `${this.pick(['a', '1', '-', ':', '=', ' '])}${this.pick([':', '=', '/', ',', '-'])}${this.pick(['b', '2', '', ' ', ':'])}`;
      default: return `word${this.int(100)}`;
    }
  }

  number(): number {
    return this.pick([0, -0, -1, -2, 1, 2, 7, 63, 64, 65, 1000, 65535, 65536, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, Number.MAX_VALUE, -Number.MAX_VALUE, 1e-300, 0.5, 1.5, Infinity, -Infinity, NaN]);
  }

  /** A value of any type, not what `s` wants (or only by chance). */
  hostile(depth: number): unknown {
    switch (this.int(8)) {
      case 0: return this.string();
      case 1: return this.number();
      case 2: return this.chance(0.5);
      case 3: return null;
      case 4: return depth > 4 ? [] : Array.from({ length: this.int(4) }, () => this.hostile(depth + 1));
      case 5: { const o: Record<string, unknown> = {}; for (let i = this.int(4); i > 0; i--) Gen.put(o, this.key(), depth > 4 ? 1 : this.hostile(depth + 1)); return o; }
      case 6: return this.pick(INTERP);
      default: return this.chance(0.2) ? 'y'.repeat(30000 + this.int(30000)) : this.pick(['-1', '0', '', ' ', '~', 'null']);
    }
  }

  key(): string {
    return this.chance(0.5) ? this.pick(PROTO_KEYS) : this.pick(['x-note', 'a', 'A_B', 'k=v', 'with space', '', '💥', 'x'.repeat(300), '${K}', 'memroy', 'NET_ADMIN']);
  }

  /** A value for `s`: mostly what it asks for, sometimes hostile. */
  value(s: Schema, depth: number): unknown {
    if (depth > 8 || this.chance(this.rate)) return this.hostile(depth);
    if (s.const !== undefined && this.chance(0.9)) return s.const;
    if (s.examples?.length && this.chance(this.rate < 0.05 ? 0.8 : 0.35)) return structuredClone(this.pick(s.examples));
    const type = this.pick(this.types(s));
    const t = this.resolved(s, type);
    if (t.enum && this.chance(0.85)) {
      const e = this.pick(t.enum);
      return typeof e === 'string' && this.chance(this.rate) ? e.slice(1) + e[0] : e;
    }
    switch (type) {
      case 'string': {
        if (t.examples?.length && this.chance(this.rate < 0.05 ? 0.95 : 0.6)) { const e = this.pick(t.examples); if (typeof e === 'string') return this.chance(this.rate + 0.05) ? e + this.pick(INTERP) : e; }
        return this.string();
      }
      case 'integer': case 'number': {
        const lo = t.minimum ?? t.exclusiveMinimum ?? -5, hi = t.maximum ?? lo + 100000;
        if (this.chance(0.7)) { const n = lo + this.int(Math.min(hi - lo + 1, 1e9)); return type === 'integer' ? Math.floor(n) : n + (this.chance(0.3) ? 0.5 : 0); }
        return this.number();
      }
      case 'boolean': return this.chance(0.5);
      case 'null': return null;
      case 'array': {
        const n = this.chance(0.05) ? 60 + this.int(200) : this.int(4);
        return Array.from({ length: n }, () => this.value(t.items ?? {}, depth + 1));
      }
      case 'object': return this.object(t, depth);
      default: return this.hostile(depth);
    }
  }

  object(s: Schema, depth: number): Record<string, unknown> {
    const o: Record<string, unknown> = {};
    const props = s.properties ?? {};
    const required = new Set(s.required ?? []);
    const share = depth === 0 ? (this.rate < 0.05 ? 0.15 : 0.25) : 0.5;
    for (const [k, sub] of Object.entries(props)) if ((required.has(k) && this.chance(0.95)) || this.chance(share)) Gen.put(o, k, this.value(sub, depth + 1));
    // Conditional requirements (rootfs type dir needs path, bind volumes need source).
    for (const c of s.allOf ?? []) {
      const cond = c.if?.properties;
      if (!cond || !c.then?.required) continue;
      if (Object.entries(cond).every(([k, v]) => Object.hasOwn(o, k) && o[k] === (v as Schema).const)) for (const k of c.then.required) if (!Object.hasOwn(o, k) && props[k] && this.chance(0.9)) Gen.put(o, k, this.value(props[k]!, depth + 1));
    }
    const extra = s.additionalProperties;
    if (typeof extra === 'object') {
      const names = (s.propertyNames?.enum as string[] | undefined) ?? ['A', 'B_1', 'PATH', 'net.ipv4.ip_forward', 'kernel.shmmax', 'db', 'with space', 'k=v'];
      for (let i = this.int(4); i > 0; i--) Gen.put(o, this.chance(0.3) ? this.pick(PROTO_KEYS) : this.pick(names), this.value(extra, depth + 1));
    }
    if (s.patternProperties && this.chance(0.1)) Gen.put(o, 'x-ignored', this.hostile(depth + 1));
    // Keys named like Object.prototype's members, at every level.
    if (this.chance(this.rate * 1.2)) Gen.put(o, this.pick(PROTO_KEYS), this.chance(0.5) ? this.value(props[this.pick(Object.keys(props).concat('none'))] ?? {}, depth + 1) : this.hostile(depth + 1));
    if (this.chance(this.rate / 2)) Gen.put(o, this.key(), this.hostile(depth + 1));
    return o;
  }

  config(): Record<string, unknown> {
    // Half the cases stay close to the schema, so that plans are compiled too; half are hostile.
    this.rate = this.pick([0, 0.01, 0.03, 0.12, 0.2, 0.3]);
    const c = this.object(SCHEMA, 0);
    if (this.chance(0.9)) Gen.put(c, 'version', this.chance(0.95) ? 1 : this.hostile(1));
    if (!Object.hasOwn(c, 'command') && !Object.hasOwn(c, 'image') && this.chance(0.8)) Gen.put(c, 'command', ['/bin/true']);
    return c;
  }

  /** The config as a file: block YAML, flow YAML or one-line JSON. */
  text(c: Record<string, unknown>): string {
    switch (this.int(3)) {
      case 0: return JSON.stringify(c);
      case 1: return stringify(c, { lineWidth: 0 });
      default: return stringify(c, { collectionStyle: 'flow', lineWidth: 0 });
    }
  }
}

const ENV = { SET: 'v', EMPTY: '', HOME: '/home/user' };
/** env files and seccomp profiles, as the CLI's bounded reader would return them. */
function files(g: Gen): (p: string, max: number) => string | Uint8Array | undefined {
  const kind = g.rate < 0.05 ? g.pick([1, 4]) : g.int(5);
  return (_p, max) => {
    switch (kind) {
      case 0: return undefined;
      case 1: return 'A=1\nexport B="two"\n# c\nconstructor=x\n__proto__=y\n';
      case 2: return Uint8Array.from([0x41, 0x3d, 0x00, 0xff, 0x7f, 0x45, 0x4c, 0x46]);
      case 3: return new Uint8Array(max + 1);
      default: return '{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "constructor"], "action": "SCMP_ACT_ALLOW"}]}';
    }
  };
}

test(`fuzz from the schema: ${RUNS} generated configs (seed ${SEED}) end in a plan or located diagnostics`, (t) => {
  const g = new Gen(rng(SEED));
  let specs = 0, slowest = 0, slowestAt = -1, warned = 0;
  const codes = new Map<string, number>();
  for (let i = 0; i < RUNS; i++) {
    const cfg = g.config();
    const text = g.text(cfg);
    const bytes = Buffer.from(text);
    const readFile = files(g);
    const t0 = performance.now();
    let res: ReturnType<typeof loadSpec>, out = '';
    try {
      res = loadSpec({ file: 'f.yml', absFile: '/p/f.yml', bytes, env: ENV, home: '/home/user', hostCpus: 2, readFile });
      // What `sandbox plan` prints: the plan as text and as JSON, or the diagnostics.
      if (res.spec) {
        const { plan, problems } = compile(res.spec, HYBRID_HOST);
        renderPlan(plan, { file: 'f.yml' });
        planJson(plan);
        for (const p of problems) assert.ok(!/internal error/i.test(p.message), `case ${i}: ${p.message}`);
      }
      out = formatDiagnostics(res.diagnostics, () => res.text);
    } catch (e) {
      assert.fail(`case ${i} threw ${(e as Error).stack}\ninput: ${JSON.stringify(text.slice(0, 2000))}`);
    }
    const ms = performance.now() - t0;
    if (ms > slowest) { slowest = ms; slowestAt = i; }
    assert.ok(ms < 2000, `case ${i} took ${ms.toFixed(0)} ms`);
    const lines = text.split('\n').length;
    for (const d of res.diagnostics) {
      codes.set(d.code, (codes.get(d.code) ?? 0) + 1);
      assert.ok(!/internal error|is not a function|Cannot read propert|undefined is not/i.test(d.message), `case ${i}: ${d.message}`);
      assert.ok(d.message.length > 10 && d.message.length <= 1200, `case ${i}: message of ${d.message.length} characters: ${d.message.slice(0, 200)}`);
      if (d.file === 'f.yml') assert.ok(d.line >= 1 && d.line <= lines + 1 && d.col >= 1, `case ${i}: ${d.line}:${d.col} outside the file (${lines} lines): ${d.message}`);
    }
    if (res.diagnostics.some((d) => d.severity === 'warning')) warned++;
    // Bounded output: at most MAX_PRINTED frames of about 100 columns each, however big the file.
    assert.ok(out.length <= (MAX_PRINTED + 1) * 3000, `case ${i}: ${out.length} characters of diagnostics`);
    const long = out.split('\n').find((l) => l.length > 1300);
    assert.equal(long, undefined, `case ${i}: a printed line of ${long?.length} characters: ${long?.slice(0, 200)}`);
    if (res.spec) { specs++; continue; }
    assert.ok(res.diagnostics.some((d) => d.severity === 'error'), `case ${i}: no spec and no error\ninput: ${JSON.stringify(text.slice(0, 2000))}`);
  }
  t.diagnostic(`${specs} plans, ${RUNS - specs} refused, ${warned} with warnings; slowest case ${slowestAt}: ${slowest.toFixed(1)} ms; codes: ${[...codes].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ')}`);
  assert.ok(slowest < 2000, `slowest case ${slowestAt} took ${slowest.toFixed(0)} ms`);
  // The generator must reach both ends: valid plans, and the errors of every stage.
  assert.ok(specs >= RUNS / 50, `only ${specs} of ${RUNS} cases were valid`);
  assert.ok(warned > 0, 'some cases have warnings');
  for (const c of ['unknown-key', 'type', 'proto-key', 'unset-variable', 'bad-interpolation', 'required-variable', 'invalid-value', 'out-of-range', 'enum']) assert.ok(codes.has(c), `no case reached \`${c}\` (codes: ${[...codes.keys()].join(', ')})`);
});
