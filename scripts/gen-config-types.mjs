// The TypeScript type of a sandbox file as written (UserConfig), generated at build time
// (scripts/build.mjs) from schema/sandbox.schema.json into src/config/generated/config-types.ts,
// so that the schema ajv checks a file against and the type normalize reads it as are one
// definition: a key added to the schema is in the type, with its description as a doc comment.
//
// It knows exactly the constructs the schema uses, and nothing else: a keyword or a shape of
// `allOf`/`if` it does not know stops the build with the schema path, rather than becoming
// `unknown` in the type without anyone noticing. Value constraints that TypeScript cannot say
// (pattern, minimum, lengths, uniqueness) are checked by ajv only and left out of the type.
//
//   node scripts/gen-config-types.mjs                 writes src/config/generated/config-types.ts
//   node scripts/gen-config-types.mjs --check         exits 1 when that file differs from the schema's
//   node scripts/gen-config-types.mjs --stdout [FILE] prints the type of FILE (the schema by default)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const SCHEMA = join(root, 'schema/sandbox.schema.json');
export const OUTPUT = join(root, 'src/config/generated/config-types.ts');

/** Words for people and editors: carried into doc comments or left out. */
const ANNOTATIONS = new Set(['$schema', '$id', 'title', 'description', 'examples', 'x-message']);
/** Checked by ajv only: TypeScript has no way to say them. */
const VALUE_CHECKS = new Set(['pattern', 'minLength', 'maxLength', 'minimum', 'maximum', 'exclusiveMinimum', 'uniqueItems', 'maxItems']);
/** Shape keywords, each turned into the type below. */
const SHAPE = new Set(['type', 'enum', 'const', 'items', 'properties', 'required', 'additionalProperties', 'patternProperties', 'propertyNames', 'allOf']);
const TYPES = new Set(['string', 'integer', 'number', 'boolean', 'null', 'array', 'object']);
/** The one pattern of patternProperties: Compose's extension fields, ignored by sandbox. */
const EXTENSION = '^x-';

class SchemaError extends Error {}
const fail = (at, what) => { throw new SchemaError(`${at || '/'}: ${what}; scripts/gen-config-types.mjs does not know it, so the config type cannot be generated: teach it the construct or write the schema with known ones`); };
const ptr = (at, ...segs) => at + segs.map((s) => '/' + String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Every keyword of a schema object is one the generator knows, or the build stops. */
function checkKeywords(s, at) {
  if (!isObj(s)) fail(at, `a schema must be an object, not ${JSON.stringify(s)}`);
  for (const k of Object.keys(s)) if (!ANNOTATIONS.has(k) && !VALUE_CHECKS.has(k) && !SHAPE.has(k)) fail(at, `the keyword "${k}"`);
  if (s.type !== undefined) for (const t of [].concat(s.type)) if (!TYPES.has(t)) fail(ptr(at, 'type'), `the type "${t}"`);
}

const doc = (text, pad) => {
  if (typeof text !== 'string' || !text) return '';
  const lines = text.replace(/\*\//g, '*\\/').split('\n');
  return lines.length === 1 ? `${pad}/** ${lines[0]} */\n` : `${pad}/**\n${lines.map((l) => `${pad} * ${l}`.trimEnd()).join('\n')}\n${pad} */\n`;
};
const inlineDoc = (text) => (typeof text === 'string' && text ? `/** ${text.replace(/\*\//g, '*\\/').replace(/\n/g, ' ')} */ ` : '');
const literal = (v) => JSON.stringify(v);
const key = (k) => (/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k));
const jsType = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'number' ? (Number.isInteger(v) ? 'integer' : 'number') : typeof v);
const admits = (t, v) => { const j = jsType(v); return j === t || (t === 'number' && j === 'integer'); };
const union = (parts) => { const u = [...new Set(parts)]; return u.length ? u.join(' | ') : 'never'; };

/**
 * allOf's members as the generator knows them: `if: {type: T}` (the part of a multi-typed value
 * of that type, narrowed by `then`) or `if: {properties: {P: {const: V}}, required: [P]}` (a
 * mapping whose key P is V: `then` requires more keys, or narrows some). No `else`.
 */
function splitAllOf(s, at) {
  const byType = new Map();
  const byConst = [];
  if (s.allOf === undefined) return { byType, byConst };
  if (!Array.isArray(s.allOf)) fail(ptr(at, 'allOf'), 'an allOf that is not a list');
  s.allOf.forEach((m, i) => {
    const mAt = ptr(at, 'allOf', i);
    if (!isObj(m) || Object.keys(m).sort().join() !== 'if,then') fail(mAt, 'an allOf member other than {if, then}');
    const cond = m.if;
    checkKeywords(m.then, ptr(mAt, 'then'));
    if (isObj(cond) && Object.keys(cond).join() === 'type' && typeof cond.type === 'string' && TYPES.has(cond.type)) {
      if (byType.has(cond.type)) fail(mAt, `a second if {type: ${cond.type}}`);
      byType.set(cond.type, { then: m.then, at: ptr(mAt, 'then') });
      return;
    }
    const props = isObj(cond) && Object.keys(cond).sort().join() === 'properties,required' && isObj(cond.properties) ? Object.entries(cond.properties) : [];
    if (props.length === 1 && isObj(props[0][1]) && Object.keys(props[0][1]).join() === 'const' && JSON.stringify(cond.required) === JSON.stringify([props[0][0]])) {
      const t = m.then;
      for (const k of Object.keys(t)) if (!['required', 'properties'].includes(k)) fail(ptr(mAt, 'then', k), `the keyword "${k}" in the then of a key's value`);
      byConst.push({ prop: props[0][0], value: props[0][1].const, then: t, at: ptr(mAt, 'then') });
      return;
    }
    fail(ptr(mAt, 'if'), `the condition ${JSON.stringify(cond)}`);
  });
  return { byType, byConst };
}

/** Which JSON types each shape keyword applies to: one that applies to none of a value's types
 * would be dropped from the type without a word, so it stops the build. */
const APPLIES = {
  items: ['array'], properties: ['object'], required: ['object'], additionalProperties: ['object'], patternProperties: ['object'], propertyNames: ['object'],
};
function checkApplies(s, types, at) {
  for (const [k, to] of Object.entries(APPLIES)) if (s[k] !== undefined && !to.some((t) => types.includes(t))) fail(ptr(at, k), `"${k}" for a value of type ${types.join(' or ')}`);
}

/** The TypeScript type of a schema, at `pad` indentation. */
function typeOf(s, at, pad) {
  checkKeywords(s, at);
  const { byType, byConst } = splitAllOf(s, at);
  let types = s.type !== undefined ? [].concat(s.type) : undefined;
  if (types) checkApplies(s, types, at);
  for (const t of byType.keys()) if (!types || !types.includes(t)) fail(ptr(at, 'allOf'), `an if {type: ${t}} for a value that cannot be ${t}`);
  const values = s.const !== undefined ? [s.const] : s.enum;
  if (values !== undefined && !Array.isArray(values)) fail(ptr(at, 'enum'), 'an enum that is not a list');
  if (!types) {
    // No type: a list of values, or anything at all (an extension field).
    if (values) return union(values.map(literal));
    for (const k of ['items', 'properties', 'required', 'additionalProperties', 'patternProperties', 'propertyNames', 'allOf']) if (s[k] !== undefined) fail(ptr(at, k), `"${k}" without a type`);
    return 'unknown';
  }
  if (types.includes('integer') && types.includes('number')) types = types.filter((t) => t !== 'integer');
  if (byConst.length && !types.includes('object')) fail(ptr(at, 'allOf'), 'a condition on a key of a value that is not a mapping');
  const parts = [];
  for (const t of types) {
    // The value read as this one type: its own keywords and what `if: {type: t}` adds.
    const branch = byType.get(t);
    const then = branch?.then ?? {};
    if (then.type !== undefined && [].concat(then.type).join() !== t) fail(ptr(branch.at, 'type'), `a then whose type is not its if's (${t})`);
    const own = { ...s, ...then, type: t, description: then.description, allOf: undefined };
    // `then` of `if {type: object}` may carry an allOf of its own (conditions on a key).
    const allOf = [...(t === 'object' ? s.allOf?.filter((m) => !isObj(m.if) || m.if.type === undefined) ?? [] : []), ...(then.allOf ?? [])];
    if (allOf.length) own.allOf = allOf;
    const wAt = branch?.at ?? at;
    if (branch) checkApplies(then, [t], wAt);
    const vals = then.const !== undefined ? [then.const] : then.enum ?? values;
    let ty;
    if (vals) {
      const fit = vals.filter((v) => admits(t, v));
      if (!fit.length) continue;
      ty = union(fit.map(literal));
    } else if (t === 'string' || t === 'boolean' || t === 'null') ty = t;
    else if (t === 'integer' || t === 'number') ty = 'number';
    else if (t === 'array') ty = own.items === undefined ? 'unknown[]' : `(${inlineDoc(own.items.description)}${typeOf(own.items, ptr(then.items ? wAt : at, 'items'), pad)})[]`;
    else ty = objectOf(own, wAt, pad);
    parts.push(branch && then.description ? inlineDoc(then.description) + ty : ty);
  }
  return union(parts);
}

/** A mapping: its properties (required or not), the extension fields, and the values of any other
 * key (additionalProperties as a schema), as one object type; with conditions on a key's value,
 * that object and the union of what each value of the key adds. */
function objectOf(s, at, pad) {
  const { byType, byConst } = splitAllOf(s, at);
  if (byType.size) fail(ptr(at, 'allOf'), 'an if {type} inside the then of an if {type}');
  const inner = pad + '  ';
  const props = s.properties ?? {};
  if (!isObj(props)) fail(ptr(at, 'properties'), 'properties that are not a mapping');
  const required = new Set(s.required ?? []);
  for (const r of required) if (!Object.hasOwn(props, r)) fail(ptr(at, 'required'), `"${r}" required but not among the properties`);
  const pattern = Object.keys(s.patternProperties ?? {});
  for (const p of pattern) if (p !== EXTENSION) fail(ptr(at, 'patternProperties', p), `the key pattern ${p} (only ${EXTENSION}, extension fields, is known)`);
  if (pattern.length) typeOf(s.patternProperties[EXTENSION], ptr(at, 'patternProperties', EXTENSION), inner);
  let names;
  if (s.propertyNames !== undefined) {
    const pn = s.propertyNames;
    checkKeywords(pn, ptr(at, 'propertyNames'));
    const extra = Object.keys(pn).filter((k) => !ANNOTATIONS.has(k) && !VALUE_CHECKS.has(k) && k !== 'enum');
    if (extra.length) fail(ptr(at, 'propertyNames'), `the keyword "${extra[0]}" in propertyNames`);
    if (pn.enum) names = union(pn.enum.map(literal));
  }
  const lines = [];
  for (const [k, p] of Object.entries(props)) lines.push(`${doc(p.description, inner)}${inner}${key(k)}${required.has(k) ? '' : '?'}: ${typeOf(p, ptr(at, 'properties', k), inner)};`);
  const ap = s.additionalProperties;
  let rest;
  if (ap === false) rest = undefined;
  else if (ap === undefined || ap === true) rest = { type: 'unknown', doc: '' };
  else rest = { type: typeOf(ap, ptr(at, 'additionalProperties'), inner), doc: ap.description };
  if (names !== undefined) {
    // Keys from a list: each one optional, each value of the additionalProperties type.
    if (!rest || lines.length || pattern.length) fail(ptr(at, 'propertyNames'), 'a list of key names beside properties, extension fields or no additionalProperties');
    return `{\n${doc(rest.doc, inner)}${inner}[K in ${names}]?: ${rest.type};\n${pad}}`;
  }
  // An index signature for the extension fields would clash with one for every other key (its
  // values must fit both): there, `x-` keys are typed as the other keys and normalize skips them.
  if (pattern.length && !rest) lines.push(`${doc(s.patternProperties[EXTENSION].description, inner)}${inner}[key: \`x-\${string}\`]: unknown;`);
  if (rest) lines.push(`${doc(rest.doc, inner)}${inner}[key: string]: ${rest.type};`);
  const base = `{\n${lines.join('\n')}\n${pad}}`;
  if (!byConst.length) return base;
  return `${base} & (${discriminated(s, byConst, props, at, pad)})`;
}

/** Conditions on one key's value (`type: bind` requires `source`): one member per value of that key,
 * with the keys it requires made required and the keys it narrows narrowed; values with no
 * condition share one member. */
function discriminated(s, byConst, props, at, pad) {
  const prop = byConst[0].prop;
  if (byConst.some((c) => c.prop !== prop)) fail(ptr(at, 'allOf'), 'conditions on more than one key');
  const p = props[prop];
  if (!p || !Array.isArray(p.enum) || !(s.required ?? []).includes(prop)) fail(ptr(at, 'allOf'), `a condition on "${prop}", which is not a required key with an enum`);
  const inner = pad + '  ';
  const members = [];
  for (const v of p.enum) {
    const conds = byConst.filter((c) => c.value === v);
    if (!conds.length) continue;
    const lines = [`${inner}${key(prop)}: ${literal(v)};`];
    const req = new Set(conds.flatMap((c) => c.then.required ?? []));
    const narrowed = Object.assign({}, ...conds.map((c) => c.then.properties ?? {}));
    for (const k of new Set([...req, ...Object.keys(narrowed)])) {
      if (!Object.hasOwn(props, k)) fail(ptr(at, 'allOf'), `"${k}" required or narrowed when ${prop} is ${literal(v)}, but not among the properties`);
      const ps = narrowed[k] ?? props[k];
      const c = conds.find((x) => x.then.properties?.[k]) ?? conds[0];
      lines.push(`${doc(narrowed[k]?.description, inner)}${inner}${key(k)}${req.has(k) || (s.required ?? []).includes(k) ? '' : '?'}: ${typeOf(ps, narrowed[k] ? ptr(c.at, 'properties', k) : ptr(at, 'properties', k), inner)};`);
    }
    members.push(`{\n${lines.join('\n')}\n${pad}}`);
  }
  for (const c of byConst) if (!p.enum.includes(c.value)) fail(ptr(at, 'allOf'), `a condition on ${prop} = ${literal(c.value)}, which is not among its values`);
  const others = p.enum.filter((v) => !byConst.some((c) => c.value === v));
  if (others.length) members.push(`{ ${key(prop)}: ${union(others.map(literal))} }`);
  return members.join(' | ');
}

/** The module's text: UserConfig, the type of the schema's top level. */
export function generate(schema, from = 'schema/sandbox.schema.json') {
  checkKeywords(schema, '');
  if ([].concat(schema.type).join() !== 'object' || schema.allOf !== undefined) fail('', 'a top level that is not one mapping');
  const body = objectOf(schema, '', '');
  return `// Generated by scripts/gen-config-types.mjs from ${from} at build time: do not edit.\n` +
    '// The shape of a sandbox file as written (short and long forms side by side), as the schema\n' +
    '// accepts it; model/normalize.ts turns it into the SandboxSpec the program uses.\n\n' +
    doc(schema.description, '') +
    `export interface UserConfig ${body}\n`;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const file = args.find((a) => !a.startsWith('--')) ?? SCHEMA;
  let text;
  try {
    text = generate(JSON.parse(readFileSync(file, 'utf8')), relative(root, resolve(file)));
  } catch (e) {
    process.stderr.write(`gen-config-types: ${e instanceof SchemaError ? '' : `${file}: `}${e.message}\n`);
    process.exit(1);
  }
  if (args.includes('--stdout')) process.stdout.write(text);
  else if (args.includes('--check')) {
    let current = '';
    try { current = readFileSync(OUTPUT, 'utf8'); } catch { /* missing: differs */ }
    if (current !== text) { process.stderr.write(`gen-config-types: ${relative(root, OUTPUT)} is not what ${relative(root, file)} gives: run node scripts/build.mjs\n`); process.exit(1); }
  } else {
    mkdirSync(dirname(OUTPUT), { recursive: true });
    writeFileSync(OUTPUT, text);
  }
}
