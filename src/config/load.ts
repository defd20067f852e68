// The pure pipeline from a file's bytes to a SandboxSpec: parse → interpolate → validate →
// normalize → rules. All problems come back together, located; nothing here touches the disk
// except through the readFile parameter (env_file contents).
import { dirname } from 'node:path';
import { type Diagnostic, pointer, sortDiagnostics } from './diagnostic';
import { interpolate } from './interpolate';
import { parseConfig, type PathSeg } from './parse';
import { validate } from './validate';
import type { UserConfig } from './types';
import { normalize, resolveHostPath, seccompShownPath } from '../spec/normalize';
import { checkRules } from '../spec/rules';
import type { SandboxSpec, Source } from '../spec/types';

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
  readFile(path: string): string | undefined;
}

export interface LoadResult {
  spec?: SandboxSpec;
  diagnostics: Diagnostic[];
  text: string;
  /** Other files that diagnostics point into (a seccomp profile), by the name they show. */
  texts: Record<string, string>;
}

export function loadSpec(input: LoadInput): LoadResult {
  const parsed = parseConfig(input.file, input.bytes, { root: input.root });
  const diagnostics = [...parsed.diagnostics];
  const texts: Record<string, string> = {};
  const done = (spec?: SandboxSpec): LoadResult => ({ spec, diagnostics: sortDiagnostics(diagnostics), text: parsed.text, texts });
  if (parsed.diagnostics.length) return done();
  if (parsed.value === undefined) {
    diagnostics.push({ file: input.file, line: 1, col: 1, path: '', code: 'missing-key', message: `there is no \`${(input.root ?? []).join('.')}\` key in ${input.file}`, severity: 'error' });
    return done();
  }

  const where = (path: readonly PathSeg[], part?: 'key' | 'value'): Source => {
    const s = parsed.locate(path, part);
    return { file: input.file, line: s.line, col: s.col };
  };
  const fromSource = (src: Source, path: string, code: string, message: string, severity: 'error' | 'warning'): Diagnostic =>
    typeof src === 'object'
      ? { file: src.file, line: src.line, col: src.col, path, code, message, severity }
      : { file: input.file, line: 1, col: 1, path, code, message, severity };

  const interp = interpolate(parsed.value, input.env);
  for (const p of interp.problems) {
    const s = parsed.locate(p.path);
    diagnostics.push({ file: input.file, ...s, path: pointer(p.path), code: p.code, message: p.message, severity: 'error' });
  }
  const checked = validate(parsed, interp.value);
  diagnostics.push(...checked.diagnostics);
  if (!interp.value || typeof interp.value !== 'object' || Array.isArray(interp.value)) return done();

  // Keys that failed the schema are left out, so that the rules can still report on the rest of
  // the file: every error at once, without guessing at values known to be wrong.
  const value = prune(interp.value as Record<string, unknown>, [...checked.failed, ...interp.problems.map((p) => p.path)]);
  if (value.version !== 1) return done();
  const absDir = dirname(input.absFile);
  const envFiles: Record<string, string | undefined> = {};
  const files = value.env_file === undefined ? [] : ([] as unknown[]).concat(value.env_file);
  for (const f of files) if (typeof f === 'string') { const abs = resolveHostPath(f, absDir, input.home); envFiles[abs] = input.readFile(abs); }
  const seccompFiles: Record<string, string | undefined> = {};
  const sc = (value.security as { seccomp?: unknown } | undefined)?.seccomp;
  if (typeof sc === 'string' && sc !== 'default' && sc !== 'unconfined') {
    const abs = resolveHostPath(sc, absDir, input.home);
    const text = seccompFiles[abs] = input.readFile(abs);
    if (text !== undefined) texts[seccompShownPath(sc, { dir: absDir, home: input.home, where })] = text;
  }
  const { spec, problems } = normalize(value as unknown as UserConfig, { file: input.absFile, dir: absDir, home: input.home, env: input.env, envFiles, seccompFiles, where });
  for (const p of problems) diagnostics.push(fromSource(p.src, '', p.code, p.message, 'error'));
  // Rules about absent values would only guess once an earlier stage has reported an error.
  for (const f of checkRules(spec, { hostCpus: input.hostCpus, partial: diagnostics.length > 0 })) diagnostics.push(fromSource(f.src, '', f.code, f.message, f.severity));
  return done(diagnostics.some((d) => d.severity === 'error') ? undefined : spec);
}

/** A copy without the top-level keys that failed, so that index-based locations stay true. */
function prune(value: Record<string, unknown>, failed: PathSeg[][]): Record<string, unknown> {
  const out: Record<string, unknown> = { ...value };
  for (const p of failed) if (p.length) delete out[String(p[0])];
  return out;
}
