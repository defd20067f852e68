// Security settings beyond capabilities: no_new_privileges (on by default), the seccomp profile
// (moby's default; `unconfined`; or a Docker/OCI profile file, whose own errors are located in
// it), and the masked and read-only paths (Docker's, plus the file's).
import { dirname, isAbsolute, join } from 'node:path';
import type { UserConfig } from '../../config/types';
import type { SandboxSpec, Val } from '../types';
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from '../tables';
import { parseProfile, type SeccompProfile } from '../seccomp';
import { D, own, resolveHostPath, val, valOr, type NormalizeContext, type Problem } from './context';

type Security = SandboxSpec['security'];

/** How messages name a seccomp profile file: beside the config file as the config is shown. */
export function seccompShownPath(raw: string, ctx: Pick<NormalizeContext, 'dir' | 'home' | 'where'>): string {
  const abs = resolveHostPath(raw, ctx.dir, ctx.home);
  const cfg = ctx.where([]);
  if (typeof cfg !== 'object' || isAbsolute(raw) || raw.startsWith('~')) return abs;
  return join(dirname(cfg.file), raw);
}

/** The first of each value, in order. */
function uniqueVals<T>(list: Val<T>[]): Val<T>[] {
  const seen = new Set<T>();
  return list.filter((v) => !seen.has(v.value) && (seen.add(v.value), true));
}

/** A profile file's content, parsed; its problems are located in it and name the line that chose it. */
function profileOf(raw: string, seccomp: Val<string>, ctx: NormalizeContext, problem: Problem): SeccompProfile | undefined {
  const text = own(ctx.seccompFiles, seccomp.value);
  const shown = seccompShownPath(raw, ctx);
  if (text === undefined) problem(seccomp.src, 'seccomp-profile-missing', `the seccomp profile ${seccomp.value} cannot be read; create it, or use \`seccomp: default\``);
  else if (typeof text === 'object') problem(seccomp.src, text.code, text.message);
  else {
    const parsed = parseProfile(text);
    for (const e of parsed.errors) problem({ file: shown, line: e.line, col: e.col }, 'seccomp-profile-invalid', `${e.message} (in the seccomp profile named at ${typeof seccomp.src === 'object' ? `${seccomp.src.file}:${seccomp.src.line}:${seccomp.src.col}` : 'security.seccomp'})`);
    if (!parsed.errors.length) return parsed.profile;
  }
  return undefined;
}

export function normalizeSecurity(cfg: UserConfig, ctx: NormalizeContext, problem: Problem): Security {
  const s = cfg.security ?? {};
  const at = (...p: (string | number)[]) => ctx.where(['security', ...p]);
  const builtIn = s.seccomp === undefined || ['default', 'unconfined'].includes(s.seccomp);
  const seccomp = s.seccomp === undefined ? val('default', D) : val(builtIn ? s.seccomp : resolveHostPath(s.seccomp, ctx.dir, ctx.home), at('seccomp'));
  const seccompProfile = builtIn ? undefined : profileOf(s.seccomp!, seccomp, ctx, problem);
  return {
    ...(seccompProfile ? { seccompProfile } : {}),
    noNewPrivileges: valOr(ctx, s.no_new_privileges, ['security', 'no_new_privileges'], true),
    seccomp,
    // A path named twice, or one of the defaults named again, is masked (or made read-only) once.
    maskedPaths: uniqueVals([...DEFAULT_MASKED_PATHS.map((p) => val(p, D)), ...(s.masked_paths ?? []).map((p, i) => val(p, at('masked_paths', i)))]),
    readonlyPaths: uniqueVals([...DEFAULT_READONLY_PATHS.map((p) => val(p, D)), ...(s.readonly_paths ?? []).map((p, i) => val(p, at('readonly_paths', i)))]),
  };
}
