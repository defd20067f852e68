// What `sandbox run` (a docker command line, a Compose service) and `--oci` (a bundle's
// config.json) share after their import: where each key of the config came from, and the
// import's notes as located diagnostics. Runs in the CLI process; pure.
import type { Diagnostic } from '../config/diagnostic';
import type { Imported, ImportNote, Loc } from '../import/types';
import type { CommandLine } from './options';

/** A config path → the part of the input it came from: the most specific origin that contains it. */
export function locator(origin: Imported['origin'], fallback: Loc): NonNullable<CommandLine['locate']> {
  return (path) => {
    let best: Loc | undefined;
    let bestLen = -1;
    for (const o of origin) {
      if (o.path.length > path.length || o.path.length <= bestLen) continue;
      if (o.path.every((seg, k) => seg === path[k])) { best = o.at; bestLen = o.path.length; }
    }
    // A parent key (`resources`) is where its first value came from.
    if (!best && path.length) best = origin.find((o) => path.every((seg, k) => seg === o.path[k]))?.at;
    const at = best ?? fallback;
    return { file: at.file, line: at.line, col: at.col, endLine: at.line, endCol: at.endCol ?? at.col + 1 };
  };
}

/** An import note as a diagnostic at its place; `dropped` says what a dropped one was not (mapped, applied). */
export const noteDiagnostic = (n: ImportNote, dropped: string): Diagnostic => ({
  file: n.at.file, line: n.at.line, col: n.at.col, endLine: n.at.line, ...(n.at.endCol ? { endCol: n.at.endCol } : {}),
  path: '', code: n.code, message: n.kind === 'dropped' ? `${dropped}: ${n.message}` : n.message, severity: n.kind === 'refused' ? 'error' : 'warning',
});
