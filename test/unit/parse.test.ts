// Safe parsing: caps, encodings, YAML traps; every failure located, none thrown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, LIMITS, firstInvalidUtf8 } from '../../src/config/parse';

const parse = (text: string | Uint8Array) => parseConfig('f.yml', typeof text === 'string' ? Buffer.from(text) : text);
const first = (text: string | Uint8Array) => { const d = parse(text).diagnostics[0]; assert.ok(d, 'expected a diagnostic'); return d; };

test('a plain mapping parses with no diagnostics', () => {
  const r = parse('version: 1\ncommand: [a, b]\n');
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(r.value, { version: 1, command: ['a', 'b'] });
});

test('a file over the size cap is refused before parsing', () => {
  const d = first('a: ' + 'x'.repeat(LIMITS.bytes));
  assert.equal(d.code, 'too-large');
  assert.equal(d.line, 1);
});

test('invalid UTF-8 is located at the bad byte', () => {
  const bytes = Buffer.concat([Buffer.from('version: 1\nname: ab'), Buffer.from([0xff]), Buffer.from('\n')]);
  const d = first(bytes);
  assert.equal(d.code, 'invalid-utf8');
  assert.deepEqual([d.line, d.col], [2, 9]);
  assert.match(d.message, /0xff/);
});

test('UTF-8 checker refuses overlongs, surrogates and truncation, accepts real text', () => {
  assert.equal(firstInvalidUtf8(Buffer.from('héllo ✓ 𝄞')), -1);
  assert.equal(firstInvalidUtf8(Uint8Array.from([0x41, 0xc0, 0x80])), 1);
  assert.equal(firstInvalidUtf8(Uint8Array.from([0xed, 0xa0, 0x80])), 0);
  assert.equal(firstInvalidUtf8(Uint8Array.from([0x41, 0xe2, 0x82])), 1);
});

test('an empty file, or one with only comments, is an error at 1:1', () => {
  for (const t of ['', '   \n', '# nothing\n']) {
    const d = first(t);
    assert.equal(d.code, 'empty');
    assert.deepEqual([d.line, d.col], [1, 1]);
  }
});

test('tabs used as indentation are located', () => {
  const d = first('version: 1\nresources:\n\tmemory: 1g\n');
  assert.equal(d.code, 'tab-indent');
  assert.deepEqual([d.line, d.col], [3, 1]);
});

test('several documents are refused at the second one', () => {
  const d = first('version: 1\n---\nversion: 1\n');
  assert.equal(d.code, 'many-documents');
  assert.equal(d.line, 3);
});

test('duplicate keys name the first occurrence', () => {
  const d = first('version: 1\nname: a\nname: b\n');
  assert.equal(d.code, 'duplicate-key');
  assert.deepEqual([d.line, d.col], [3, 1]);
  assert.match(d.message, /first is on line 2/);
});

test('__proto__ keys are refused', () => {
  const d = first('version: 1\nenv:\n  __proto__: {polluted: true}\n');
  assert.equal(d.code, 'proto-key');
  assert.deepEqual([d.line, d.col], [3, 3]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('an alias bomb stops at the alias cap', () => {
  let text = 'a: &a [x, x, x, x, x, x, x, x, x, x]\n';
  for (let i = 0; i < 12; i++) text += `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill('*' + String.fromCharCode(97 + i)).join(', ')}]\n`;
  const t0 = Date.now();
  const d = first(text);
  assert.equal(d.code, 'too-many-aliases');
  assert.ok(Date.now() - t0 < 1000);
});

test('deep flow nesting is refused before the parser recurses', () => {
  const d = first('a: ' + '['.repeat(100000) + ']'.repeat(100000) + '\n');
  assert.equal(d.code, 'too-deep');
  assert.equal(d.line, 1);
});

test('deep block nesting is refused', () => {
  let text = '';
  for (let i = 0; i < LIMITS.depth + 3; i++) text += ' '.repeat(i) + `k${i}:\n`;
  text += ' '.repeat(LIMITS.depth + 3) + 'v\n';
  assert.equal(first(text).code, 'too-deep');
});

test('YAML syntax errors are located', () => {
  const d = first('version: 1\ncommand: [a, b\n');
  assert.equal(d.code, 'yaml-syntax');
  assert.ok(d.line >= 2);
});

// Issue 22: an unclosed `[` on line 3 was reported on line 4 in the parser's words ("Flow sequence
// in block collection must be sufficiently indented and end with a ]").
const errorsOf = (text: string) => parse(text).diagnostics.map((d) => `${d.line}:${d.col} ${d.message}`);
test('a bracket or quote left open is named at its own line and column, in our words', () => {
  assert.deepEqual(errorsOf('version: 1\nname: x\ncommand: [/bin/sh, -c, "echo hi"\nnetwork: none\nresources:\n  memory: 1g\n'), [
    '3:10 the `[` at line 3, column 10 is not closed: end the list with `]` (a list that goes on to the next lines is indented more than its key)',
  ]);
  assert.deepEqual(errorsOf('version: 1\ncommand: {a: 1\nname: x\n'), ['2:10 the `{` at line 2, column 10 is not closed: end the mapping with `}` (a mapping that goes on to the next lines is indented more than its key)']);
  assert.deepEqual(errorsOf('version: 1\ncommand: "abc\nname: x\n'), ['2:10 the `"` at line 2, column 10 is not closed: end the string with `"`']);
  assert.deepEqual(errorsOf("version: 1\ncommand: ['it''s, x]\n"), ["2:11 the `'` at line 2, column 11 is not closed: end the string with `'` (write '' for a quote inside it)"]);
  // Open at the end of the file; inside a list that goes on over lines.
  assert.deepEqual(errorsOf('version: 1\ncommand: [a,\n  b, [c\n'), ['3:6 the `[` at line 3, column 6 is not closed: end the list with `]` (a list that goes on to the next lines is indented more than its key)']);
  // Brackets and quotes inside a block scalar, a comment or a plain word are text, not structure.
  assert.deepEqual(errorsOf('command:\n  - |\n    echo "[x {\n    it\'s\n  # a [ comment\nname: [a, b\nx: a[1\n'), ['6:7 the `[` at line 6, column 7 is not closed: end the list with `]` (a list that goes on to the next lines is indented more than its key)']);
});

test('other syntax errors in our words, with the way out; none of the parser\'s own sentences', () => {
  const cases: [string, RegExp][] = [
    ['version: 1\ncommand: [a,\n  b]\n ports: [1]\n', /^4:1 this key is indented differently from the keys above it: the keys of one mapping start in the same column$/],
    ['a:\n  - x\n  y: 1\n', /^3:1 this key is indented differently from the keys above it/],
    ['version: 1\ncommand: [a, b]]\n', /^2:16 a `]` here closes nothing: is its `\[` missing, or is it one too many\?$/],
    ['a: @x\n', /^1:4 a plain value cannot begin with .*@: quote the value$/],
    ['a: b: c\n', /^1:4 a value cannot hold `key: value` on the same line: quote it/],
    ['a: "\\q"\n', /^1:5 `\\q` is not an escape in a "double-quoted" string/],
    ['a: !foo x\n', /^1:4 the tag !foo is not one sandbox reads: quote the value/],
  ];
  for (const [text, want] of cases) {
    const got = errorsOf(text);
    assert.ok(got.length >= 1, text);
    assert.match(got[0]!, want, text);
    for (const g of got) assert.doesNotMatch(g, /Flow sequence|Implicit|Nested mappings|Plain value|must be sufficiently|Unexpected|YAML stream|Invalid escape|Unresolved/, g);
  }
});

test('complex keys are refused', () => {
  assert.equal(first('? [a, b]\n: 1\n').code, 'complex-key');
});

test('a byte-order mark is accepted', () => {
  assert.deepEqual(parse('\ufeffversion: 1\n').diagnostics, []);
});

test('locate finds keys and values, and falls back to the deepest part that exists', () => {
  const r = parse('version: 1\nresources:\n  memory: 2g\nports:\n  - 80:80\n');
  assert.deepEqual(pick(r.locate(['resources', 'memory'], 'key')), [3, 3]);
  assert.deepEqual(pick(r.locate(['resources', 'memory'])), [3, 11]);
  assert.deepEqual(pick(r.locate(['ports', 0])), [5, 5]);
  assert.deepEqual(pick(r.locate(['resources', 'nope'])), [3, 3]);
});

function pick(s: { line: number; col: number }) { return [s.line, s.col]; }
