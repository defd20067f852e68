// Located, user-facing problems found in a config file, and how they are printed.
// Pure: no I/O. Every stage from parse to rules reports through this one type.

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  file: string;
  line: number; // 1-based
  col: number; // 1-based
  endLine?: number;
  endCol?: number;
  /** JSON-pointer-like path of the config value, '' for the whole file. */
  path: string;
  /** Stable machine-readable code, e.g. `unknown-key`, `duplicate-key`, `port-conflict`. */
  code: string;
  message: string;
  severity: Severity;
}

export interface Span {
  line: number;
  col: number;
  endLine: number;
  endCol: number;
}

/** Formats a JSON-pointer path as people write it: resources.memory, ports[1]. */
export function displayPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out;
}

export function pointer(path: readonly (string | number)[]): string {
  return path.map((s) => '/' + String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

export function sortDiagnostics(list: Diagnostic[]): Diagnostic[] {
  return [...list].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col || a.message.localeCompare(b.message));
}

/**
 * FILE:LINE:COL: error: message, then the line before, the line itself and a caret run under the
 * span, as compilers print them. `text` is the file's content when it is known.
 */
export function formatDiagnostic(d: Diagnostic, text: string | undefined, color = false): string {
  const paint = (code: string, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const sev = d.severity === 'error' ? paint('1;31', 'error') : paint('1;33', 'warning');
  const head = `${paint('1', `${d.file}:${d.line}:${d.col}`)}: ${sev}: ${d.message}`;
  if (text === undefined) return head;
  const lines = text.split(/\r?\n/);
  if (d.line < 1 || d.line > lines.length) return head;
  const width = String(Math.min(lines.length, d.line + 1)).length;
  const row = (n: number, mark: string) => `${mark} ${String(n).padStart(width)} | ${visible(lines[n - 1] ?? '')}`;
  const out = [head];
  if (d.line > 1) out.push(row(d.line - 1, ' '));
  out.push(row(d.line, '>'));
  const src = lines[d.line - 1] ?? '';
  const end = d.endLine === d.line && d.endCol && d.endCol > d.col ? d.endCol : Math.max(d.col + 1, Math.min(src.length + 1, d.col + 1));
  const pad = visible(src.slice(0, d.col - 1)).replace(/[^\t]/g, ' ');
  out.push(`  ${' '.repeat(width)} | ${pad}${paint('1;31', '^'.repeat(Math.max(1, end - d.col)))}`);
  return out.join('\n');
}

/** Control characters would corrupt a terminal: show them as escapes. Tabs are kept. */
function visible(s: string): string {
  return s.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function summary(list: Diagnostic[]): string {
  const e = list.filter((d) => d.severity === 'error').length;
  const w = list.length - e;
  const parts = [];
  if (e) parts.push(`${e} error${e === 1 ? '' : 's'}`);
  if (w) parts.push(`${w} warning${w === 1 ? '' : 's'}`);
  return parts.join(', ');
}

/** Damerau-free Levenshtein distance, small inputs only (key names, enum values). */
export function distance(a: string, b: string): number {
  const m = a.length, n = b.length;
  const prev = new Array<number>(n + 1);
  for (let j = 0; j <= n; j++) prev[j] = j;
  for (let i = 1; i <= m; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= n; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[n]!;
}

/** The closest candidate, when it is close enough to be a likely typo. */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = distance(w, c.toLowerCase());
    if (d < bestD) { bestD = d; best = c; }
  }
  if (best === undefined) return undefined;
  const limit = Math.max(1, Math.floor(Math.max(word.length, best.length) / 3));
  return bestD <= limit ? best : undefined;
}
