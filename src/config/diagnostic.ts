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

/** At most this many diagnostics are printed as text; the rest are counted (JSON lists them all). */
export const MAX_PRINTED = 50;
/** A code frame shows about this many columns of a long line, around the error, with … marks. */
export const FRAME_COLS = 100;
/** A message longer than this is cut when printed (values in messages are clipped where they are made). */
const MAX_MESSAGE = 1000;

/** A user's value as a message quotes it: long ones are cut, with … and their length. */
export function clip(s: string, max = 80): string {
  if (s.length <= max) return s;
  // Clipped once already (a message clipped where it was made, then as a whole): left as it is.
  const done = /… \(\d+ characters\)$/.exec(s);
  if (done && s.length - done[0].length <= max) return s;
  let end = max;
  if (/[\ud800-\udbff]/.test(s[end - 1]!)) end--;
  return `${s.slice(0, end)}… (${s.length} characters)`;
}

/**
 * FILE:LINE:COL: error: message, then the line before, the line itself and a caret run under the
 * span, as compilers print them. `text` is the file's content when it is known. A long line shows
 * only about FRAME_COLS columns around the error, so that a one-line file cannot flood the terminal.
 */
export function formatDiagnostic(d: Diagnostic, text: string | undefined, color = false): string {
  const paint = (code: string, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  const sev = d.severity === 'error' ? paint('1;31', 'error') : paint('1;33', 'warning');
  // The message and the file name may quote the user's values: clipped, with control characters escaped.
  const message = visible(d.message.length > MAX_MESSAGE ? `${d.message.slice(0, MAX_MESSAGE)}…` : d.message);
  const head = `${paint('1', `${visible(clip(d.file, 4 * FRAME_COLS))}:${d.line}:${d.col}`)}: ${sev}: ${message}`;
  if (text === undefined || d.line < 1) return head;
  const src = lineAt(text, d.line);
  if (src === undefined) return head;
  const prev = d.line > 1 ? lineAt(text, d.line - 1) ?? '' : undefined;
  const width = String(lineAt(text, d.line + 1) === undefined ? d.line : d.line + 1).length;
  const end = d.endLine === d.line && d.endCol && d.endCol > d.col ? d.endCol : d.col + 1;
  const [from, to] = frameWindow(src, d.col);
  // The line above is shown whole when it fits in FRAME_COLS; a longer one shows the error line's
  // columns, FRAME_COLS of them, whatever the error line's own length.
  const cut = (s: string, end: number, context = false) => {
    if ((from === 0 || context) && s.length <= Math.max(end, context ? FRAME_COLS : 0)) return visible(s);
    const a = Math.min(from, s.length);
    return `${from > 0 ? (s.length > 0 ? '…' : ' ') : ''}${visible(clipPair(s, a, Math.max(a, end)))}${s.length > end ? '…' : ''}`;
  };
  const row = (n: number, s: string, mark: string, end: number, context = false) => `${mark} ${String(n).padStart(width)} | ${cut(s, end, context)}`;
  const out = [head];
  if (prev !== undefined) out.push(row(d.line - 1, prev, ' ', from + FRAME_COLS, true));
  out.push(row(d.line, src, '>', to));
  const start = Math.min(Math.max(d.col - 1, from), src.length);
  const pad = (from > 0 ? ' ' : '') + visible(src.slice(from, start)).replace(/[^\t]/g, ' ');
  const carets = Math.max(1, Math.min(end, to + 1) - Math.max(d.col, from + 1));
  out.push(`  ${' '.repeat(width)} | ${pad}${paint('1;31', '^'.repeat(carets))}`);
  return out.join('\n');
}

/** Every diagnostic of a list, each followed by a blank line; past `max`, a count of the rest. */
export function formatDiagnostics(list: readonly Diagnostic[], textOf: (d: Diagnostic) => string | undefined, color = false, max = MAX_PRINTED): string {
  let out = '';
  for (const d of list.slice(0, max)) out += formatDiagnostic(d, textOf(d), color) + '\n\n';
  const rest = list.slice(max);
  if (rest.length) {
    const e = rest.filter((d) => d.severity === 'error').length;
    const w = rest.length - e;
    const parts: string[] = [];
    if (e) parts.push(`${e} more error${e === 1 ? '' : 's'}`);
    if (w) parts.push(`${w} more warning${w === 1 ? '' : 's'}`);
    out += `… and ${parts.join(' and ')} (not shown; \`sandbox validate --format json\` lists them all)\n\n`;
  }
  return out;
}

/** Line `n` (1-based) of `text`, without splitting all of it; undefined past the end. */
export function lineAt(text: string, n: number): string | undefined {
  let start = 0;
  for (let k = 1; k < n; k++) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) return undefined;
    start = nl + 1;
  }
  const nl = text.indexOf('\n', start);
  if (nl < 0) return text.slice(start);
  return text.slice(start, nl > start && text[nl - 1] === '\r' ? nl - 1 : nl);
}

/** The columns [from, to) of a line that a frame shows: all of a short line; else FRAME_COLS around `col`. */
function frameWindow(src: string, col: number): [number, number] {
  if (src.length <= FRAME_COLS) return [0, src.length];
  // An error near the start shows the start; else 30 columns before it, and as many after as fit.
  let from = col - 1 < FRAME_COLS - 30 ? 0 : Math.max(0, Math.min(col - 1 - 30, src.length - FRAME_COLS));
  // Never split a surrogate pair at either edge.
  if (from > 0 && /[\udc00-\udfff]/.test(src[from]!)) from++;
  let to = Math.min(src.length, from + FRAME_COLS);
  if (to < src.length && /[\ud800-\udbff]/.test(src[to - 1]!)) to--;
  return [from, to];
}

/** s.slice(a, b), not splitting a surrogate pair at either edge. */
function clipPair(s: string, a: number, b: number): string {
  if (a > 0 && a < s.length && /[\udc00-\udfff]/.test(s[a]!)) a++;
  if (b < s.length && b > a && /[\ud800-\udbff]/.test(s[b - 1]!)) b--;
  return s.slice(a, b);
}

/** Control characters would corrupt a terminal: show them as escapes. Tabs are kept. */
function visible(s: string): string {
  return s.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * A message with the user's long values clipped: `quoted` spans over `max` characters, and any
 * other run without spaces (a path) over twice that. A message stays a line, whatever the file holds.
 */
export function clipQuoted(message: string, max = 80): string {
  if (message.length <= 2 * max) return message;
  return message
    .replace(/`([^`]*)`/g, (whole, inner: string) => (inner.length > max ? `\`${clip(inner, max)}\`` : whole))
    .replace(/[^\s`]+/g, (run) => (run.length > 2 * max ? clip(run, 2 * max) : run));
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
  // No typo of a known name is this long, and the distance would cost length × length.
  if (word.length > 64) return undefined;
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
