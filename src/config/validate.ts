// Schema validation with the precompiled (ajv standalone) validator, and the translation of ajv's
// errors into plain, located sentences. Pure.
import type { ErrorObject } from 'ajv';
import validateSchema from './generated/validate-schema';
import { clip, didYouMean, displayPath, lineAt, type Diagnostic } from './diagnostic';
import type { ParsedConfig, PathSeg } from './parse';
import type { UserConfig } from './types';

/** Names people bring from Docker and Compose that sandbox spells another way. */
const SYNONYMS: ReadonlyMap<string, string> = new Map(Object.entries({
  environment: 'env', working_dir: 'workdir', mem_limit: '`resources.memory`', memswap_limit: '`resources.memory_swap`',
  mem_reservation: '`resources.memory_reservation`', pids_limit: '`resources.pids`', cpu_count: '`resources.cpus`', cpuset_cpus: '`resources.cpuset`',
  network_mode: 'network', networks: 'network', privileged: '`cap_add: [ALL]` and `security: {seccomp: unconfined}`',
  security_opt: 'security', read_only: '`security.read_only`', tmpfs: 'a `{type: tmpfs, target: …}` item in `volumes`', container_name: 'name',
  deploy: 'resources', blkio_config: 'resources (`io_weight`, `device_read_bps`, …)', cpu_quota: '`resources.cpus`', entry_point: 'entrypoint',
  cmd: 'command', args: 'command', expose: 'ports', userns_mode: '`namespaces.user`', pid: '`namespaces.pid`', ipc: '`namespaces.ipc`',
  uts: '`namespaces.uts`', cgroup: '`namespaces.cgroup`', cgroup_parent: '`resources.cgroup_parent`', device_cgroup_rules: '`resources.device_cgroup_rules`', services: 'one file per sandbox, with its keys at the top level', bind: '`propagation` directly in the volume',
}));

const TYPE_WORDS: ReadonlyMap<string, string> = new Map(Object.entries({
  string: 'a string', integer: 'a whole number', number: 'a number', boolean: 'true or false', object: 'a mapping (key: value)', array: 'a list', null: 'null',
}));

export function kindOf(v: unknown): string {
  if (v === null || v === undefined) return 'empty';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'boolean') return `\`${v}\``;
  if (typeof v === 'number') return `the number ${v}`;
  return `the string "${clip(String(v))}"`;
}

function ptrToPath(ptr: string): PathSeg[] {
  if (!ptr) return [];
  return ptr.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')).map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function show(v: unknown): string {
  return clip(typeof v === 'string' ? v : JSON.stringify(v) ?? String(v));
}

/** Where a string is wanted and YAML read a boolean, a number or null from the file's text (true,
 * 1.10, ~): the way out is to quote it, shown with the text as written. */
function quoteIt(parsed: ParsedConfig, path: PathSeg[], data: unknown): string {
  if (typeof data !== 'boolean' && typeof data !== 'number' && data !== null) return '';
  const span = parsed.locate(path);
  if (span.endLine !== span.line) return '';
  const raw = (lineAt(parsed.text, span.line) ?? '').slice(span.col - 1, span.endCol - 1).trim();
  if (!raw || /^["']/.test(raw) || raw.length > 40) return '';
  const as = typeof data === 'boolean' ? 'a boolean' : typeof data === 'number' ? (String(data) === raw ? 'a number' : `the number ${data}`) : 'null (no value)';
  return `: YAML reads \`${raw}\` as ${as}; quote it, as "${raw}"`;
}

/** Whether a value is a valid sandbox file: the schema's check, which makes it a UserConfig (the
 * type generated from the same schema) without a cast. */
export function isUserConfig(value: unknown): value is UserConfig {
  return validateSchema(value);
}

/** One check against the schema: the value as a UserConfig when it is valid, otherwise where each
 * error is, as paths into the value (an unknown key's own path): the parts of the file a tolerant
 * reader leaves out. An `if` error is left out: the errors of its `then` say which part of the
 * mapping is wrong. */
export function checkConfig(value: unknown): { config: UserConfig; failed?: undefined } | { config?: undefined; failed: PathSeg[][] } {
  if (validateSchema(value)) return { config: value };
  return {
    failed: (validateSchema.errors ?? []).filter((e) => e.keyword !== 'if' && e.keyword !== 'allOf').map((e) => {
      const path = ptrToPath(e.instancePath);
      return e.keyword === 'additionalProperties' ? [...path, String((e.params as { additionalProperty: string }).additionalProperty)] : path;
    }),
  };
}

type SchemaError = ErrorObject & { parentSchema?: Record<string, unknown>; data?: unknown };

/** One schema error in words: where it points (the value, or an unknown key itself) and what it says. */
interface Described { at: PathSeg[]; part: 'key' | 'value'; code: string; message: string }

/** Validates against the schema; returns located diagnostics and the paths that failed, or the
 * value as a UserConfig when nothing failed. */
export function validate(parsed: ParsedConfig, value: unknown): { diagnostics: Diagnostic[]; failed: PathSeg[][]; config?: UserConfig } {
  if (validateSchema(value)) return { diagnostics: [], failed: [], config: value };
  const diagnostics: Diagnostic[] = [];
  const failed: PathSeg[][] = [];
  const seen = new Set<string>();
  const errors = (validateSchema.errors ?? []) as SchemaError[];
  // A type error at a path explains everything else reported at the same path.
  const typeAt = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath));
  for (const e of errors) {
    if (e.keyword === 'if' || e.keyword === 'allOf') continue;
    if (e.keyword !== 'type' && typeAt.has(e.instancePath) && e.keyword !== 'additionalProperties' && e.keyword !== 'required') continue;
    const path = ptrToPath(e.instancePath);
    const d = describe(e, path, parsed);
    if (!d) continue;
    const key = `${d.at.join('/')}|${d.code}|${d.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    failed.push(d.at);
    const span = d.at.length === 0 ? { line: 1, col: 1, endLine: 1, endCol: 2 } : parsed.locate(d.at, d.part);
    diagnostics.push({ file: parsed.file, ...span, path: e.instancePath + (d.at.length > path.length ? '/' + String(d.at.at(-1)) : ''), code: d.code, message: d.message, severity: 'error' });
  }
  return { diagnostics, failed };
}

/** A schema error at `path`, in words; undefined for one that another error already says. */
function describe(e: SchemaError, path: PathSeg[], parsed: ParsedConfig): Described | undefined {
  const where = displayPath(path);
  const inWhere = where ? ` in \`${where}\`` : '';
  const value = (code: string, message: string): Described => ({ at: path, part: 'value', code, message });
  switch (e.keyword) {
    case 'additionalProperties': return unknownKey(e, path, inWhere);
    case 'propertyNames': return unknownName(e, path, inWhere);
    case 'enum': {
      // An enum under propertyNames is reported by the propertyNames error above.
      if ((e as { propertyName?: string }).propertyName !== undefined) return undefined;
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
      const guess = typeof e.data === 'string' ? didYouMean(e.data, allowed.map(String)) : undefined;
      return value(e.keyword, `\`${show(e.data)}\` is not a valid value for \`${where}\`; expected ${allowed.map(show).join(', ')}${guess ? ` (did you mean \`${guess}\`?)` : ''}`);
    }
    case 'type': return value(e.keyword, wrongType(e, path, where, parsed));
    case 'pattern': {
      const expect = (e.parentSchema?.['x-message'] as string | undefined) ?? `text matching ${(e.params as { pattern: string }).pattern}`;
      return value('invalid-value', `\`${show(e.data)}\` is not valid for \`${where}\`: expected ${expect}`);
    }
    case 'required': {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      const message = where ? `\`${where}\` is missing \`${missing}\`` : `the file has no \`${missing}\`${missing === 'version' ? '; add `version: 1` at the top' : ''}`;
      return { at: where ? path : [], part: 'key', code: e.keyword, message };
    }
    case 'minimum': case 'maximum': case 'exclusiveMinimum': case 'exclusiveMaximum': {
      const limit = (e.params as { limit: number }).limit;
      const word = { minimum: 'at least', maximum: 'at most', exclusiveMinimum: 'more than', exclusiveMaximum: 'less than' }[e.keyword];
      return value('out-of-range', `\`${where}\` must be ${word} ${limit}, not ${show(e.data)}`);
    }
    case 'maxItems': return value('too-many', `\`${where}\` has ${Array.isArray(e.data) ? e.data.length : 'too many'} items; at most ${(e.params as { limit: number }).limit} are allowed`);
    case 'minLength': return value('empty-value', `\`${where}\` must not be empty`);
    case 'maxLength': return value('too-long', `\`${where}\` is too long: at most ${(e.params as { limit: number }).limit} characters`);
    default: return value(e.keyword, `\`${where}\` ${e.message ?? 'is not valid'}`);
  }
}

/** A key the schema does not know, at the key, with the key meant (or sandbox's word for it). */
function unknownKey(e: SchemaError, path: PathSeg[], inWhere: string): Described {
  const key = String((e.params as { additionalProperty: string }).additionalProperty);
  const known = Object.keys((e.parentSchema?.properties as object | undefined) ?? {});
  const guess = didYouMean(key, known);
  const syn = SYNONYMS.get(key);
  const hint = guess ? ` (did you mean \`${guess}\`?)` : syn ? ` (sandbox calls it ${syn.startsWith('`') || syn.includes(' ') ? syn : `\`${syn}\``})` : known.length ? `; known keys: ${known.join(', ')}` : '';
  return { at: [...path, key], part: 'key', code: 'unknown-key', message: `\`${key}\` is not a known key${inWhere}${hint}` };
}

/** A name (a map's key) outside the names allowed there, or not a valid name. */
function unknownName(e: SchemaError, path: PathSeg[], inWhere: string): Described {
  const key = String((e.params as { propertyName: string }).propertyName);
  const allowed = ((e.parentSchema?.propertyNames as { enum?: string[] } | undefined)?.enum) ?? [];
  const guess = didYouMean(key, allowed);
  const message = allowed.length
    ? `\`${key}\` is not a known name${inWhere}${guess ? ` (did you mean \`${guess}\`?)` : `; known names: ${allowed.join(', ')}`}`
    : `\`${key}\` is not a valid name${inWhere}: it must not contain = or spaces`;
  return { at: [...path, key], part: 'key', code: 'unknown-key', message };
}

/** A value of the wrong kind: what it must be, and how to quote it where a string is wanted. */
function wrongType(e: SchemaError, path: PathSeg[], where: string, parsed: ParsedConfig): string {
  const want = ([] as string[]).concat((e.params as { type: string | string[] }).type);
  const words = want.filter((t) => !(t === 'integer' && want.includes('number'))).map((t) => (t === 'boolean' && want.length > 1 ? 'a boolean' : TYPE_WORDS.get(t) ?? t));
  if (!where) return `the file must be a mapping of keys such as \`version: 1\`, not ${kindOf(e.data)}`;
  const message = `\`${where}\` must be ${words.length > 1 ? words.slice(0, -1).join(', ') + ' or ' + words.at(-1) : words[0]}, not ${kindOf(e.data)}`;
  return want.includes('string') ? message + quoteIt(parsed, path, e.data) : message;
}
