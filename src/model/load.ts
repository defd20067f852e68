// The one pipeline from a file's bytes to a SandboxSpec: parse → interpolate → validate
// (readConfig), then normalize, with the command line's overrides and the image's config as
// inputs, and the rules last (buildSpec). Between the two the caller may look the image up or pull
// it (imageOf names it). All problems come back together, located; nothing here touches the disk
// except through the readFile parameter (env_file and seccomp profile contents).
import { dirname } from 'node:path';
import { clipQuoted, type Diagnostic, pointer, sortDiagnostics } from '../config/diagnostic';
import { interpolate } from '../config/interpolate';
import { firstInvalidUtf8, LIMITS, parseConfig, type PathSeg } from '../config/parse';
import { checkConfig, validate } from '../config/validate';
import type { UserConfig } from '../config/types';
import { gatherPathFacts, imageOf, normalize, resolveHostPath, seccompShownPath, type FileRead, type NormalizeContext, type PathFs, type SpecInputs } from './normalize';
import { PROFILE_MAX_BYTES } from './seccomp';
import { checkRules } from './rules';
import type { SandboxSpec, Source } from './types';

export interface LoadInput {
  /** The path as shown in messages (relative to the cwd when it can be). */
  file: string;
  /** The absolute path: its folder is the base of relative paths in the file. */
  absFile: string;
  bytes: Uint8Array;
  env: Readonly<Record<string, string | undefined>>;
  home: string;
  hostCpus: number;
  /** Where the config sits inside the document (['sandbox'] in package.json). */
  root?: PathSeg[];
  /**
   * A file named by the config (env_file, a seccomp profile); undefined when it cannot be read.
   * It need not return more than `maxBytes + 1` bytes: anything longer is refused by size.
   */
  readFile(path: string, maxBytes: number): string | Uint8Array | undefined;
  /** The host's files as `paths` rules and their defaults need them (kinds, folders' entries for
   * globs); absent: nothing is looked at, so globs match nothing and no protected default applies. */
  paths?: PathFs;
}

export interface LoadResult {
  spec?: SandboxSpec;
  diagnostics: Diagnostic[];
  text: string;
  /** Other files that diagnostics point into (a seccomp profile), by the name they show. */
  texts: Record<string, string>;
}

/** A file read and checked against the schema, not yet normalized. */
export interface ConfigRead {
  input: LoadInput;
  diagnostics: Diagnostic[];
  text: string;
  texts: Record<string, string>;
  /** What normalize gets: absent when the file is not a version-1 mapping at all. */
  cfg?: UserConfig;
  ctx?: NormalizeContext;
  /** The image the file names, as the store and the puller know it. */
  image?: { ref: string; insecure: string[] };
}

export function loadSpec(input: LoadInput, inputs: SpecInputs = {}): LoadResult {
  return buildSpec(readConfig(input), inputs);
}

export function readConfig(input: LoadInput): ConfigRead {
  const parsed = parseConfig(input.file, input.bytes, { root: input.root });
  const diagnostics = [...parsed.diagnostics];
  const texts: Record<string, string> = {};
  const read: ConfigRead = { input, diagnostics, text: parsed.text, texts };
  if (parsed.diagnostics.length) return read;
  if (parsed.value === undefined) {
    diagnostics.push({ file: input.file, line: 1, col: 1, path: '', code: 'missing-key', message: `there is no \`${(input.root ?? []).join('.')}\` key in ${input.file}`, severity: 'error' });
    return read;
  }

  // A Compose file given where a sandbox file belongs: one error that says what it is, rather than
  // every Compose key reported as unknown.
  const v = parsed.value;
  if (v && typeof v === 'object' && !Array.isArray(v) && Object.hasOwn(v, 'services') && (v as Record<string, unknown>).version !== 1) {
    diagnostics.push({ file: input.file, ...parsed.locate(['services'], 'key'), path: '/services', code: 'compose-file', message: `this is a Compose file: try \`sandbox import ${input.file}\`, which writes a sandbox file for one of its services`, severity: 'error' });
    return read;
  }

  const interp = interpolate(parsed.value, input.env);
  for (const p of interp.problems) {
    const s = parsed.locate(p.path);
    diagnostics.push({ file: input.file, ...s, path: pointer(p.path), code: p.code, message: p.message, severity: p.severity });
  }
  const checked = validate(parsed, interp.value);
  diagnostics.push(...checked.diagnostics);
  if (!interp.value || typeof interp.value !== 'object' || Array.isArray(interp.value)) return read;

  // What the schema rejected is left out, value by value (an unknown key, a list item, a wrong
  // type), so that normalize and the rules still judge the rest of the file: every error at once,
  // without guessing at values known to be wrong. A list keeps its items' places in the file.
  // A file with nothing to leave out is used whole, as validate found it (a copy, as tolerate's).
  const failed = [...checked.failed, ...interp.problems.filter((p) => p.severity === 'error').map((p) => p.path)].map(wholeOf);
  const tolerant = checked.config && !failed.length
    ? { value: structuredClone(checked.config), original: (path: readonly PathSeg[]) => [...path] }
    : tolerate(interp.value, failed);
  if (!tolerant) return read;
  const value = tolerant.value;
  const where = (path: readonly PathSeg[], part?: 'key' | 'value'): Source => {
    const s = parsed.locate(tolerant.original(path), part);
    return { file: input.file, line: s.line, col: s.col };
  };
  // Where each line starts, made on the first token located inside a string (a file of 1024 rules).
  let starts: number[] | undefined;
  const lineText = (n: number) => {
    starts ??= [0, ...[...parsed.text.matchAll(/\n/g)].map((m) => m.index + 1)];
    const from = starts[n - 1];
    return from === undefined ? '' : parsed.text.slice(from, starts[n] ?? parsed.text.length);
  };
  const within = (path: readonly PathSeg[], offset: number): Source => {
    const s = parsed.locate(tolerant.original(path));
    const start = { file: input.file, line: s.line, col: s.col };
    const str = valueAt(value, path);
    const raw = lineText(s.line).slice(s.col - 1);
    const q = raw.startsWith('"') || raw.startsWith("'") ? 1 : 0;
    if (typeof str !== 'string' || s.endLine !== s.line || raw.slice(q, q + str.length) !== str) return start;
    return { ...start, col: s.col + q + Math.min(Math.max(offset, 0), str.length) };
  };
  const absDir = dirname(input.absFile);
  const envFiles: Record<string, FileRead> = {};
  const files = value.env_file === undefined ? [] : ([] as string[]).concat(value.env_file);
  for (const f of files) {
    const abs = resolveHostPath(f, absDir, input.home);
    if (!Object.hasOwn(envFiles, abs)) envFiles[abs] = readText(input, abs, 'env file', 'an env file', LIMITS.bytes, 'NAME=value lines');
  }
  const seccompFiles: Record<string, FileRead> = {};
  const sc = value.security?.seccomp;
  if (sc !== undefined && sc !== 'default' && sc !== 'unconfined') {
    const abs = resolveHostPath(sc, absDir, input.home);
    const text = readText(input, abs, 'seccomp profile', 'a seccomp profile', PROFILE_MAX_BYTES, 'JSON');
    seccompFiles[abs] = text;
    if (typeof text === 'string') texts[seccompShownPath(sc, { dir: absDir, home: input.home, where })] = text;
  }
  read.cfg = value;
  read.ctx = { file: input.absFile, dir: absDir, home: input.home, env: input.env, envFiles, seccompFiles, where, within };
  const ref = value.image !== undefined ? imageOf(read.cfg, read.ctx) : undefined;
  if (ref) read.image = { ref, insecure: read.cfg.insecure_registries ?? [] };
  return read;
}

/** normalize with its inputs, then the rules, over the spec that will run. */
export function buildSpec(read: ConfigRead, inputs: SpecInputs = {}): LoadResult {
  const { input, diagnostics: found, texts } = read;
  const diagnostics = [...found];
  // A value quoted in a message is clipped: a 200 KiB string in the file stays one line of output.
  const done = (spec?: SandboxSpec): LoadResult => ({ spec, diagnostics: sortDiagnostics(diagnostics).map((d) => ({ ...d, message: clipQuoted(d.message) })), text: read.text, texts });
  if (!read.cfg || !read.ctx) return done();
  // What came from the image is located at the file's `image` line, which chose it.
  const imageLine = read.cfg.image !== undefined ? read.ctx.where(['image']) : undefined;
  const fromSource = (src: Source, path: string, code: string, message: string, severity: 'error' | 'warning'): Diagnostic => {
    const at = src === 'image' && imageLine ? imageLine : src;
    return typeof at === 'object'
      ? { file: at.file, line: at.line, col: at.col, path, code, message: src === 'image' ? `${message} (from the image)` : message, severity }
      : { file: input.file, line: 1, col: 1, path, code, message, severity };
  };
  const ctx = input.paths ? { ...read.ctx, pathFacts: gatherPathFacts(read.cfg, read.ctx, inputs, input.paths) } : read.ctx;
  const { spec, problems } = normalize(read.cfg, ctx, inputs);
  const later: Diagnostic[] = problems.map((p) => fromSource(p.src, '', p.code, p.message, p.severity ?? 'error'));
  // Rules about absent values would only guess once an earlier stage has reported an error.
  for (const f of checkRules(spec, { hostCpus: input.hostCpus, partial: diagnostics.length + later.length > 0 })) later.push(fromSource(f.src, '', f.code, f.message, f.severity));
  // One problem per place: where the file could not be read or the schema refused a value, what
  // normalize and the rules say of that same place follows from it; and nothing is said twice.
  const place = (d: Diagnostic) => `${d.file}:${d.line}:${d.col}`;
  const refused = new Set(found.filter((d) => d.severity === 'error').map(place));
  const said = new Set<string>();
  for (const d of later) {
    const key = `${place(d)}|${d.code}|${d.message}`;
    if (refused.has(place(d)) || said.has(key)) continue;
    said.add(key);
    diagnostics.push(d);
  }
  return done(diagnostics.some((d) => d.severity === 'error') ? undefined : spec);
}

/**
 * A file the config names, as text: refused by size before anything else (only max + 1 bytes are
 * asked for), then unless it is UTF-8 text without NUL bytes. `what` names it in messages.
 */
function readText(input: LoadInput, abs: string, what: string, aWhat: string, max: number, holds: string): FileRead {
  let got: string | Uint8Array | undefined;
  try { got = input.readFile(abs, max); } catch { got = undefined; }
  if (got === undefined) return undefined;
  const bytes = typeof got === 'string' ? Buffer.from(got) : got;
  const kib = `${max / 1024} KiB`;
  if (bytes.length > max) return { code: `${what.replace(/ /g, '-')}-too-large`, message: `${what} ${abs} is more than ${kib}, the most ${aWhat} may be (is this the right file?)` };
  const nul = bytes.indexOf(0);
  const bad = firstInvalidUtf8(nul >= 0 ? bytes.subarray(0, nul) : bytes);
  if (nul >= 0 || bad >= 0) {
    const at = bad >= 0 ? bad : nul;
    const line = 1 + bytes.subarray(0, at).reduce((n, b) => n + (b === 10 ? 1 : 0), 0);
    const why = bad >= 0 ? `byte 0x${bytes[bad]!.toString(16).padStart(2, '0')} at offset ${bad} (line ${line}) is not valid UTF-8` : `it has a NUL byte at offset ${nul} (line ${line})`;
    return { code: `${what.replace(/ /g, '-')}-not-text`, message: `${what} ${abs} is not text: ${why}; ${aWhat} holds ${holds}, saved as UTF-8` };
  }
  return typeof got === 'string' ? got : new TextDecoder('utf-8').decode(bytes);
}

/** The value at `path` inside `root`, or undefined. */
function valueAt(root: unknown, path: readonly PathSeg[]): unknown {
  let node = root;
  for (const seg of path) node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[seg as string] : undefined;
  return node;
}

/** Parts of the file the rules judge as a whole (is the user's uid inside the uid_map?): with a
 * piece of one left out they would guess, so a failure anywhere in one leaves all of it out. */
const WHOLE: readonly PathSeg[][] = [['namespaces', 'user']];
const wholeOf = (path: PathSeg[]): PathSeg[] => WHOLE.find((w) => w.length <= path.length && w.every((s, i) => s === path[i])) ?? path;

/**
 * A copy of the file's value without the parts the schema rejected, valid against the schema so
 * that normalize may trust its types: each failed path is removed (a mapping's key, or a list's
 * item), then the copy is checked again and what the removals made invalid (an item left without
 * a required key) goes too, until nothing fails. `original` maps a path in the copy back to the
 * file, so that a list's later items keep their own lines. Undefined when what fails is the top
 * level itself (or `version`, which the file cannot be read without).
 */
export function tolerate(value: object, failed: readonly PathSeg[][]): { value: UserConfig; original(path: readonly PathSeg[]): PathSeg[] } | undefined {
  const copy = structuredClone(value);
  // For a list of the copy that lost items: the index in the file of each item it kept.
  const places = new WeakMap<unknown[], number[]>();
  const remove = (path: readonly PathSeg[]): boolean => {
    if (!path.length) return false;
    let node: unknown = copy;
    for (const seg of path.slice(0, -1)) {
      if (node === null || typeof node !== 'object') return true;
      node = (node as Record<string, unknown>)[seg as string];
    }
    const last = path.at(-1)!;
    if (Array.isArray(node) && typeof last === 'number') {
      if (last >= node.length) return true;
      const at = places.get(node) ?? node.map((_, i) => i);
      node.splice(last, 1);
      at.splice(last, 1);
      places.set(node, at);
    } else if (node !== null && typeof node === 'object') delete (node as Record<string, unknown>)[String(last)];
    return true;
  };
  let todo = deepestFirst(failed);
  let config: UserConfig | undefined;
  for (let round = 0; !config; round++) {
    // Each round only removes: a schema that kept failing would be a bug, never a reason to loop.
    if (round > 16) return undefined;
    for (const p of todo) if (!remove(p)) return undefined;
    const checked = checkConfig(copy);
    config = checked.config;
    todo = deepestFirst((checked.failed ?? []).map(wholeOf));
  }
  return {
    value: config,
    original(path) {
      const out: PathSeg[] = [];
      let node: unknown = copy;
      for (const seg of path) {
        if (Array.isArray(node) && typeof seg === 'number') { out.push(places.get(node)?.[seg] ?? seg); node = node[seg]; }
        else { out.push(seg); node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[seg as string] : undefined; }
      }
      return out;
    },
  };
}

/** Each path once; a path under another one dropped (removing the outer removes it); later list
 * items before earlier ones, so that removing one leaves the others' indexes true. */
function deepestFirst(list: readonly PathSeg[][]): PathSeg[][] {
  const unique = [...new Map(list.map((p) => [JSON.stringify(p), p])).values()];
  const under = (p: PathSeg[], q: PathSeg[]) => q.length < p.length && q.every((s, i) => s === p[i]);
  return unique.filter((p) => !unique.some((q) => under(p, q))).sort((a, b) => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      if (a[i] === b[i]) continue;
      if (typeof a[i] === 'number' && typeof b[i] === 'number') return (b[i] as number) - (a[i] as number);
      return String(a[i]).localeCompare(String(b[i]));
    }
    return b.length - a.length;
  });
}
