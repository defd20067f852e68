// Safe YAML/JSON parsing with locations. Pure: takes the file's bytes, never reads the disk.
// Every failure becomes a located Diagnostic; nothing here throws to the caller.
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node, type Pair } from 'yaml';
import { displayPath, type Diagnostic, type Span } from './diagnostic';

/** Caps applied before or while parsing, so that hostile input cannot exhaust memory or time. */
export const LIMITS = {
  bytes: 256 * 1024,
  /** Nesting of mappings and lists; real configs need about 5. */
  depth: 32,
  /** Alias (*name) uses; a handful is normal, thousands is a billion-laughs attack. */
  aliases: 64,
};

export type PathSeg = string | number;

export interface ParsedConfig {
  file: string;
  text: string;
  /** The config value, or undefined when the file could not be parsed. */
  value: unknown;
  diagnostics: Diagnostic[];
  /** The span of the value (or its key) at `path`, or of the deepest part of it that exists. */
  locate(path: readonly PathSeg[], part?: 'key' | 'value'): Span;
}

export interface ParseOptions {
  /** Where the config lives in the document: ['sandbox'] for package.json. */
  root?: readonly PathSeg[];
}

/** What the phases of parseConfig report into: one file's diagnostics, located by its lines. */
interface Reporter {
  lc: LineCounter;
  err(span: Span, code: string, message: string, path?: readonly PathSeg[]): void;
  at(offset: number, len?: number): Span;
}

export function parseConfig(file: string, bytes: Uint8Array, opts: ParseOptions = {}): ParsedConfig {
  const diagnostics: Diagnostic[] = [];
  const lc = new LineCounter();
  let text = '';
  let doc: Document | undefined;
  const r: Reporter = {
    lc,
    err: (span, code, message, path = []) => { diagnostics.push({ file, ...span, path: path.length ? '/' + path.join('/') : '', code, message, severity: 'error' }); },
    at: (offset, len = 1) => spanOf(lc, offset, offset + len),
  };
  // Keys of each mapping by name, made on first use: a file of 20 000 keys is located in linear time.
  const keys = new WeakMap<object, Map<string, Pair>>();
  const result = (value: unknown): ParsedConfig => ({ file, text, value, diagnostics, locate: (p, part) => locate(doc, lc, [...(opts.root ?? []), ...p], part, keys) });

  const decoded = decode(bytes, r);
  text = decoded.text;
  if (!decoded.ok || !lexicallySound(text, r)) return result(undefined);
  doc = readDocument(text, r);
  if (!doc || doc.errors.length) return result(undefined);
  const walk = checkTree(doc.contents as Node, lc);
  for (const w of walk) r.err(w.span, w.code, w.message, w.path);
  if (walk.length) return result(undefined);

  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: LIMITS.aliases * 16 });
  } catch (e) {
    r.err(START, 'yaml-value', `the file's value cannot be built (${(e as Error).message.split('\n')[0]})`);
    return result(undefined);
  }
  for (const seg of opts.root ?? []) value = value === null || typeof value !== 'object' ? undefined : (value as Record<string, unknown>)[seg as string];
  return result(value);
}

/** The file's text, its lines indexed; not ok (and as much text as was valid) when it is too
 * large or not UTF-8. */
function decode(bytes: Uint8Array, r: Reporter): { ok: boolean; text: string } {
  if (bytes.length > LIMITS.bytes) {
    r.err(START, 'too-large', `the file is more than ${LIMITS.bytes / 1024} KiB, the most a config may be (is this the right file?)`);
    return { ok: false, text: '' };
  }
  const bad = firstInvalidUtf8(bytes);
  if (bad >= 0) {
    const text = new TextDecoder('utf-8').decode(bytes.subarray(0, bad));
    indexLines(r.lc, text);
    r.err(r.at(text.length), 'invalid-utf8', `byte 0x${bytes[bad]!.toString(16).padStart(2, '0')} at offset ${bad} is not valid UTF-8; save the file as UTF-8`);
    return { ok: false, text };
  }
  const text = new TextDecoder('utf-8', { ignoreBOM: false }).decode(bytes);
  indexLines(r.lc, text);
  return { ok: true, text };
}

/** No tab indents and no brackets nested too deep: what the YAML parser is not given. */
function lexicallySound(text: string, r: Reporter): boolean {
  let sound = true;
  for (const t of findIndentTabs(text)) {
    r.err(r.at(t), 'tab-indent', 'a tab is used for indentation; YAML indents with spaces only (replace the tab with spaces)');
    sound = false;
  }
  const deep = findDeepFlow(text, LIMITS.depth);
  if (deep >= 0) {
    r.err(r.at(deep), 'too-deep', `brackets nest deeper than ${LIMITS.depth} levels; a config never needs that many`);
    return false;
  }
  return sound;
}

/** The file's (first) YAML document, its syntax errors reported; undefined when there is none. */
function readDocument(text: string, r: Reporter): Document | undefined {
  let docs: Document[];
  try {
    const parsed = parseAllDocuments(text, { lineCounter: new LineCounter(), uniqueKeys: false, prettyErrors: false, strict: true, merge: false, keepSourceTokens: false });
    docs = Array.isArray(parsed) ? parsed : [];
  } catch (e) {
    r.err(START, 'yaml-syntax', `the file cannot be read as YAML (${(e as Error).message.split('\n')[0]})`);
    return undefined;
  }
  if (docs.length === 0 || docs[0]!.contents === null) {
    r.err(START, 'empty', 'the file is empty; a sandbox needs at least `version: 1` and a `command` or an `image`');
    return undefined;
  }
  if (docs.length > 1) {
    const second = docs[1]!;
    const off = second.contents?.range?.[0] ?? second.range?.[0] ?? 0;
    r.err(r.at(Math.max(0, off)), 'many-documents', `the file holds ${docs.length} YAML documents (separated by ---); put one sandbox in each file`);
  }
  const doc = docs[0]!;
  // A bracket or quote left open makes the parser complain lines later, in its own words: the
  // cause is named instead, at the bracket, and what the parser said after it is its consequence.
  const open = doc.errors.length ? unclosed(text) : undefined;
  for (const e of [...doc.errors, ...doc.warnings]) {
    if (open && e.pos[0] >= open.offset) continue;
    r.err(r.at(e.pos[0], Math.max(1, e.pos[1] - e.pos[0])), 'yaml-syntax', yamlMessage(e.code, e.message));
  }
  if (open) {
    const p = r.lc.linePos(open.offset);
    r.err(r.at(open.offset), 'yaml-syntax', unclosedMessage(open.char, p.line, p.col));
  }
  return doc;
}

const START: Span = { line: 1, col: 1, endLine: 1, endCol: 2 };

function indexLines(lc: LineCounter, text: string) {
  lc.addNewLine(0);
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lc.addNewLine(i + 1);
}

function spanOf(lc: LineCounter, start: number, end: number): Span {
  const a = lc.linePos(start);
  const b = lc.linePos(Math.max(start + 1, end));
  return { line: a.line, col: a.col, endLine: b.line, endCol: b.col };
}

/** Offset of the first byte that breaks UTF-8 (overlongs and surrogates included), or -1. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) { i++; continue; }
    let n: number, min: number;
    if (c >= 0xc2 && c <= 0xdf) { n = 1; min = 0x80; } else if (c >= 0xe0 && c <= 0xef) { n = 2; min = 0x800; } else if (c >= 0xf0 && c <= 0xf4) { n = 3; min = 0x10000; } else return i;
    if (i + n >= b.length) return i;
    let cp = c & (0x3f >> n);
    for (let k = 1; k <= n; k++) {
      const cc = b[i + k];
      if (cc === undefined || (cc & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += n + 1;
  }
  return -1;
}

/** Offsets of tabs in the leading whitespace of non-blank lines. */
function findIndentTabs(text: string): number[] {
  const out: number[] = [];
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    let i = start;
    while (i < end && (text[i] === ' ' || text[i] === '\t')) i++;
    if (i < end && text[i] !== '\r') {
      const tab = text.indexOf('\t', start);
      if (tab >= 0 && tab < i) out.push(tab);
    }
    start = end + 1;
  }
  return out;
}

/** Offset where [ or { nesting first exceeds `max` outside quotes and comments, or -1. */
function findDeepFlow(text: string, max: number): number {
  let depth = 0;
  let quote = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = '';
      else if (c === '\n' && quote === "'") continue;
      continue;
    }
    if (c === '#' && (i === 0 || /\s/.test(text[i - 1]!))) { const nl = text.indexOf('\n', i); if (nl < 0) break; i = nl; continue; }
    if ((c === '"' || c === "'") && (i === 0 || /[\s\[{,:]/.test(text[i - 1]!))) quote = c;
    else if (c === '[' || c === '{') { if (++depth > max) return i; }
    else if (c === ']' || c === '}') depth = Math.max(0, depth - 1);
  }
  return -1;
}

interface TreeProblem { span: Span; code: string; message: string; path: PathSeg[] }

/** Depth, aliases, keys that are not plain scalars, duplicate keys and __proto__, on the AST. */
function checkTree(root: Node, lc: LineCounter): TreeProblem[] {
  const out: TreeProblem[] = [];
  let aliases = 0;
  const rangeSpan = (n: { range?: [number, number, number] | null } | null | undefined): Span =>
    n?.range ? spanOf(lc, n.range[0], n.range[1]) : START;
  const visit = (node: unknown, depth: number, path: PathSeg[]) => {
    if (out.length > 100) return;
    if (isAlias(node)) {
      if (++aliases === LIMITS.aliases + 1) out.push({ span: rangeSpan(node), code: 'too-many-aliases', message: `more than ${LIMITS.aliases} aliases (*name) in one file; write the values out`, path });
      return;
    }
    if (!isMap(node) && !isSeq(node)) return;
    if (depth > LIMITS.depth) {
      out.push({ span: rangeSpan(node), code: 'too-deep', message: `values nest deeper than ${LIMITS.depth} levels; a config never needs that many`, path });
      return;
    }
    if (isSeq(node)) {
      node.items.forEach((item, i) => visit(item, depth + 1, [...path, i]));
      return;
    }
    const seen = new Map<string, Span>();
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const key = pair.key as Node | null;
      if (!isScalar(key)) {
        out.push({ span: rangeSpan(key as never), code: 'complex-key', message: 'keys must be plain words, not lists, mappings or aliases', path });
        continue;
      }
      const name = String(key.value);
      const span = rangeSpan(key);
      if (name === '__proto__') {
        out.push({ span, code: 'proto-key', message: '`__proto__` is not allowed as a key', path: [...path, name] });
      }
      const first = seen.get(name);
      if (first) {
        out.push({ span, code: 'duplicate-key', message: `\`${name}\` appears twice${path.length ? ` in \`${displayPath(path)}\`` : ''}; the first is on line ${first.line} (keep one)`, path: [...path, name] });
      } else seen.set(name, span);
      visit(pair.value, depth + 1, [...path, name]);
    }
  };
  visit(root, 1, []);
  return out;
}

function locate(doc: Document | undefined, lc: LineCounter, path: readonly PathSeg[], part: 'key' | 'value' = 'value', index = new WeakMap<object, Map<string, Pair>>()): Span {
  let node: unknown = doc?.contents;
  if (!node) return START;
  let best: Span = rangeOf(node, lc) ?? START;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    const last = i === path.length - 1;
    if (isMap(node)) {
      let byName = index.get(node);
      if (!byName) {
        byName = new Map();
        // The first of duplicate keys, as find() would give.
        for (const p of node.items) if (isScalar(p.key) && !byName.has(String(p.key.value))) byName.set(String(p.key.value), p as Pair);
        index.set(node, byName);
      }
      const pair = byName.get(String(seg));
      if (!pair) return best;
      const keySpan = rangeOf(pair.key, lc);
      if (last && part === 'key' && keySpan) return keySpan;
      node = pair.value;
      best = rangeOf(node, lc) ?? keySpan ?? best;
    } else if (isSeq(node) && typeof seg === 'number' && node.items[seg] !== undefined) {
      node = node.items[seg];
      best = rangeOf(node, lc) ?? best;
    } else return best;
  }
  return best;
}

function rangeOf(node: unknown, lc: LineCounter): Span | undefined {
  const r = (node as { range?: [number, number, number] } | null)?.range;
  return r ? spanOf(lc, r[0], r[1]) : undefined;
}

/** The words for a bracket or quote that is never closed, at its own line and column. */
function unclosedMessage(char: string, line: number, col: number): string {
  const at = `line ${line}, column ${col}`;
  switch (char) {
    case '[': return `the \`[\` at ${at} is not closed: end the list with \`]\` (a list that goes on to the next lines is indented more than its key)`;
    case '{': return `the \`{\` at ${at} is not closed: end the mapping with \`}\` (a mapping that goes on to the next lines is indented more than its key)`;
    case '"': return `the \`"\` at ${at} is not closed: end the string with \`"\``;
    default: return `the \`'\` at ${at} is not closed: end the string with \`'\` (write '' for a quote inside it)`;
  }
}

/**
 * The innermost bracket or quote the file leaves open: a `[` or `{` whose list goes on past a line
 * that is not indented more than the line it began on (where block YAML resumes), or that is open
 * at the end; a quote open at the end. A lexer of YAML's flow and quote rules only, to name the
 * cause of a syntax error the parser reports later. Block scalars (| and >) and comments are
 * skipped.
 */
export function unclosed(text: string): { char: string; offset: number } | undefined {
  const stack: { char: string; offset: number; indent: number }[] = [];
  let quote: { char: string; offset: number } | undefined;
  let lineStart = 0;
  let indent = 0;
  /** The line holds a block scalar header: lines indented more than `block` are its text. */
  let block = -1;
  const indentAt = (i: number) => { let k = i; while (text[k] === ' ') k++; return k - i; };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (quote.char === '"' && c === '\\') i++;
      else if (c === quote.char) {
        if (c === "'" && text[i + 1] === "'") i++;
        else quote = undefined;
      }
      continue;
    }
    if (c === '\n') {
      lineStart = i + 1;
      // Skip the text of a block scalar, and blank and comment lines.
      for (;;) {
        const nl = text.indexOf('\n', lineStart);
        const line = text.slice(lineStart, nl < 0 ? text.length : nl);
        const blank = /^\s*(#.*)?$/.test(line);
        if (lineStart >= text.length || !(blank || (block >= 0 && indentAt(lineStart) > block))) break;
        if (nl < 0) { lineStart = text.length; break; }
        lineStart = nl + 1;
      }
      block = -1;
      i = lineStart - 1;
      if (lineStart >= text.length) break;
      indent = indentAt(lineStart);
      // Block YAML resumes: a flow collection still open here was never closed.
      if (stack.length && indent <= stack[0]!.indent) return stack.at(-1)!;
      continue;
    }
    if (i === lineStart) indent = indentAt(i);
    const before = text.slice(lineStart, i).trimEnd();
    const prev = before.at(-1);
    if (c === '#' && (i === lineStart || /\s/.test(text[i - 1]!))) { const nl = text.indexOf('\n', i); if (nl < 0) break; i = nl - 1; continue; }
    // Where a value may begin: a quote or bracket there opens something; elsewhere it is text.
    const valueStart = before === '' || prev === ':' || prev === '-' || prev === '?' || (stack.length > 0 && (prev === '[' || prev === '{' || prev === ','));
    if ((c === '"' || c === "'") && valueStart) { quote = { char: c, offset: i }; continue; }
    if ((c === '[' || c === '{') && valueStart) { stack.push({ char: c, offset: i, indent: stack.length ? stack[0]!.indent : indent }); continue; }
    if ((c === ']' || c === '}') && stack.length) { stack.pop(); continue; }
    if ((c === '|' || c === '>') && valueStart && !stack.length && /^[|>][-+0-9]*\s*(#.*)?$/.test(text.slice(i, text.indexOf('\n', i) < 0 ? text.length : text.indexOf('\n', i)).trimEnd())) block = indent;
  }
  return quote ?? stack.at(-1);
}

/** yaml's messages in our words, with what to do; the rare rest kept, first line only. */
function yamlMessage(code: string, message: string): string {
  const first = message.split('\n')[0]!.replace(/ at line \d+, column \d+.*$/, '');
  const flow = /flow map/i.test(first) ? 'the { } mapping' : 'the [ ] list';
  switch (code) {
    case 'BAD_INDENT':
      if (/sequence items/.test(first)) return 'this list item is indented differently from the items above it: the items of one list start in the same column';
      if (/mapping items/.test(first)) return 'this key is indented differently from the keys above it: the keys of one mapping start in the same column';
      if (/^Flow (sequence|map)/.test(first)) return `${flow} goes on to a line that is not indented more than its key: indent it more, or close it on its own line`;
      return 'the indentation here does not line up with the lines around it: indent a value more than its key, and line up the keys of one mapping';
    case 'MISSING_CHAR':
      if (/quote/.test(first)) return 'a quote is not closed: end the string with the quote it began with';
      if (/Missing , or : between/.test(first)) return `a comma or a colon is missing between two items of ${flow}`;
      if (/Missing , between/.test(first)) return `a comma is missing between two items of ${flow}`;
      if (/Missing space after :/.test(first)) return `write a space after the colon in ${flow}, as \`{key: value}\``;
      if (/Implicit map keys need to be followed/.test(first)) return 'a key needs a colon and a value after it, as `key: value`';
      if (/Comments must be separated/.test(first)) return 'a # begins a comment only after a space: put a space before it, or quote the value that holds it';
      if (/Sequence item without -/.test(first)) return 'a list item begins with `- `';
      return `a bracket, quote or colon is missing here (${first})`;
    case 'MULTILINE_IMPLICIT_KEY': return 'a key and its colon must be on one line; is a quote or bracket left open above?';
    case 'BLOCK_AS_IMPLICIT_KEY':
      if (/compact mappings/.test(first)) return 'a value cannot hold `key: value` on the same line: quote it, or put the mapping on the next lines, indented';
      return 'a mapping is used as a key; is a colon missing after a key above?';
    case 'TAB_AS_INDENT': return 'a tab is used for indentation; YAML indents with spaces only (replace the tab with spaces)';
    case 'BAD_SCALAR_START': return `a plain value cannot begin with ${first.replace(/^Plain value cannot start with /, '')}: quote the value`;
    case 'BAD_DQ_ESCAPE': return `${first.replace(/^Invalid escape sequence /, '`')}\` is not an escape in a "double-quoted" string: write \\\\ for a backslash, or use 'single quotes'`;
    case 'UNEXPECTED_TOKEN': {
      const token: Record<string, string> = { 'flow-seq-end': ']', 'flow-map-end': '}', comma: ',' };
      const what = /^Unexpected (\S+) in /.exec(first)?.[1] ?? token[/^Unexpected ([\w-]+) token/.exec(first)?.[1] ?? ''];
      if (what === ']' || what === '}') return `a \`${what}\` here closes nothing: is its \`${what === ']' ? '[' : '{'}\` missing, or is it one too many?`;
      if (what === ',') return `a comma here separates nothing: remove it, or put the item it leaves out back`;
      return `unexpected text here: is a quote, bracket or colon missing? (${first})`;
    }
    case 'BAD_ALIAS': return 'an anchor (&name) or an alias (*name) needs a name of its own, not ending in a colon';
    case 'TAG_RESOLVE_FAILED': return `${first.replace(/^Unresolved tag: /, 'the tag ')} is not one sandbox reads: quote the value, or remove the tag`;
    case 'DUPLICATE_KEY': return first;
    case 'BLOCK_IN_FLOW': return 'inside [ ] or { }, a list or mapping is written with brackets too, not with `- ` or `key:` lines';
    case 'MULTIPLE_ANCHORS': return 'a value can have one anchor (&name) only';
    case 'MULTIPLE_TAGS': case 'BAD_COLLECTION_TYPE': return 'a tag (!name) here is not one sandbox reads: quote the value, or remove the tag';
    case 'ALIAS_PROPS': return 'an alias (*name) stands for a value written elsewhere: it cannot have an anchor or a tag of its own';
    case 'BAD_PROP_ORDER': return 'an anchor (&name) or a tag goes after the `-` or `?` of its item, not before';
    case 'BAD_DIRECTIVE': return 'a line beginning with % is a YAML directive, which a config never needs: remove it, or quote the value';
    case 'KEY_OVER_1024_CHARS': return 'a key of more than 1024 characters: no key of a config is that long';
    case 'NON_STRING_KEY': return 'keys must be plain words, not lists, mappings or aliases';
    case 'RESOURCE_EXHAUSTION': return `the file's aliases expand to too much: write the values out`;
    default: return `invalid YAML: ${first}`;
  }
}
