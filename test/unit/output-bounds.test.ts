// Output stays bounded whatever the input: files the config names are capped and must be text,
// read no further than the cap; past 50 diagnostics the rest are counted; a code frame shows
// about 100 columns of a long line; values quoted in messages are clipped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatDiagnostic, formatDiagnostics, MAX_PRINTED, type Diagnostic } from '../../src/config/diagnostic';
import { readBounded, readConfig } from '../../src/config/find';
import { loadSpec } from '../../src/model/load';
import { LIMITS, parseConfig } from '../../src/config/parse';
import { PROFILE_MAX_BYTES } from '../../src/model/seccomp';
import { main } from '../../src/cli/main';
import { loadText } from '../helpers/load';

const V = 'version: 1\ncommand: [x]\n';

/** loadSpec with files given as strings or bytes; returns the errors and what readFile was asked. */
function load(yaml: string, files: Record<string, string | Uint8Array>) {
  const asked: [string, number][] = [];
  const r = loadSpec({
    file: 'sandbox.yml', absFile: '/project/sandbox.yml', bytes: Buffer.from(yaml), env: {}, home: '/home/user', hostCpus: 2,
    readFile: (p, max) => { asked.push([p, max]); return files[p]; },
  });
  return { r, asked, errors: r.diagnostics.map((d) => `${d.line}:${d.col} ${d.severity} ${d.code}: ${d.message}`) };
}

test('an env file over the config size cap is refused by size, located at its env_file entry', () => {
  const { errors, asked } = load(V + 'env_file: ./big.env\n', { '/project/big.env': 'A=' + 'x'.repeat(LIMITS.bytes) });
  assert.deepEqual(errors, ['3:11 error env-file-too-large: env file /project/big.env is more than 256 KiB, the most an env file may be (is this the right file?)']);
  assert.deepEqual(asked, [['/project/big.env', LIMITS.bytes]]);
  // At the cap exactly, it is read.
  assert.deepEqual(load(V + 'env_file: ./cap.env\n', { '/project/cap.env': 'A=' + 'x'.repeat(LIMITS.bytes - 3) + '\n' }).errors, []);
});

test('an env file with a NUL byte is not text: a located error naming it', () => {
  const { errors } = load(V + 'env_file: [./ok.env, ./bin.env]\n', { '/project/ok.env': 'A=1\n', '/project/bin.env': 'A=1\nB=\0\n' });
  assert.deepEqual(errors, ['3:22 error env-file-not-text: env file /project/bin.env is not text: it has a NUL byte at offset 6 (line 2); an env file holds NAME=value lines, saved as UTF-8']);
});

test('an env file that is not UTF-8 is not text: the byte, its offset and line', () => {
  const { errors } = load(V + 'env_file: ./latin1.env\n', { '/project/latin1.env': Buffer.from('A=1\nB=caf\xe9\n', 'latin1') });
  assert.deepEqual(errors, ['3:11 error env-file-not-text: env file /project/latin1.env is not text: byte 0xe9 at offset 9 (line 2) is not valid UTF-8; an env file holds NAME=value lines, saved as UTF-8']);
  // UTF-8 bytes are decoded.
  const ok = load(V + 'env_file: ./u.env\n', { '/project/u.env': Buffer.from('CAFE=café\n') });
  assert.deepEqual(ok.errors, []);
  assert.equal(ok.r.spec?.process.env.find((e) => e.name === 'CAFE')?.value, 'café');
});

test('a seccomp profile has its own cap, and must be text too', () => {
  const big = load(V + 'security: {seccomp: ./p.json}\n', { '/project/p.json': new Uint8Array(PROFILE_MAX_BYTES + 1) });
  assert.deepEqual(big.errors, ['3:21 error seccomp-profile-too-large: seccomp profile /project/p.json is more than 1024 KiB, the most a seccomp profile may be (is this the right file?)']);
  assert.deepEqual(big.asked, [['/project/p.json', PROFILE_MAX_BYTES]]);
  const bin = load(V + 'security: {seccomp: ./p.json}\n', { '/project/p.json': Buffer.from('{"a": "\xff"}', 'latin1') });
  assert.deepEqual(bin.errors, ['3:21 error seccomp-profile-not-text: seccomp profile /project/p.json is not text: byte 0xff at offset 7 (line 1) is not valid UTF-8; a seccomp profile holds JSON, saved as UTF-8']);
});

test('readBounded reads at most max + 1 bytes: /proc/self/exe and /dev/zero are refused quickly', () => {
  for (const p of ['/proc/self/exe', '/dev/zero']) {
    const t0 = performance.now();
    const b = readBounded(p, LIMITS.bytes);
    assert.equal(b.length, LIMITS.bytes + 1, p);
    assert.ok(performance.now() - t0 < 1000, p);
  }
  const dir = mkdtempSync(join(tmpdir(), 'sbx-bounded-'));
  try {
    writeFileSync(join(dir, 'a.env'), 'A=1\n');
    assert.equal(Buffer.from(readBounded(join(dir, 'a.env'), 10)).toString(), 'A=1\n');
    assert.throws(() => readBounded(dir, 10), { code: 'EISDIR' });
    assert.throws(() => readBounded(join(dir, 'none'), 10), { code: 'ENOENT' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a huge config file is read only to the cap, and refused by size', () => {
  const found = readConfig('/proc/self/exe');
  assert.equal(found.bytes.length, LIMITS.bytes + 1);
  const d = parseConfig(found.file, found.bytes).diagnostics;
  assert.deepEqual(d.map((x) => `${x.line}:${x.col} ${x.code}: ${x.message}`), ['1:1 too-large: the file is more than 256 KiB, the most a config may be (is this the right file?)']);
});

test('the CLI refuses `env_file: /proc/self/exe` by size, quickly', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-envexe-'));
  const file = join(dir, 'sandbox.yml');
  writeFileSync(file, 'version: 1\ncommand: [x]\nenv_file: /proc/self/exe\n');
  const write = process.stderr.write;
  let err = '';
  process.stderr.write = ((s: string | Uint8Array) => { err += String(s); return true; }) as typeof process.stderr.write;
  const t0 = performance.now();
  let code: number;
  try { code = await main(['validate', file]); } finally { process.stderr.write = write; rmSync(dir, { recursive: true, force: true }); }
  assert.equal(code, 2, err);
  assert.ok(performance.now() - t0 < 2000);
  assert.ok(err.includes(':3:11: error: env file /proc/self/exe is more than 256 KiB, the most an env file may be (is this the right file?)\n'), err);
});

test('a short line prints as before: the line above, the line, the carets under the span', () => {
  const yaml = 'version: 1\ncommand: [x]\n' + '\n'.repeat(8) + 'resources:\n    memroy: 2g\n';
  const r = loadText(yaml, { file: 'jenkins.yml' });
  assert.equal(formatDiagnostic(r.diagnostics[0]!, r.text), [
    'jenkins.yml:12:5: error: `memroy` is not a known key in `resources` (did you mean `memory`?)',
    '  11 | resources:',
    '> 12 |     memroy: 2g',
    '     |     ^^^^^^',
  ].join('\n'));
});

test('a long line shows about 100 columns around the error, with … marks, carets aligned', () => {
  const pad = 'p'.repeat(200);
  const r = loadText(`{"version": 1, "command": ["x"], "x-pad": "${pad}", "memroy": 1}\n`);
  const frame = formatDiagnostic(r.diagnostics[0]!, r.text).split('\n').slice(1);
  assert.deepEqual(frame, [
    `> 1 | …${'p'.repeat(85)}", "memroy": 1}`,
    `    | ${' '.repeat(89)}^^^^^^^^`,
  ]);
  // Near the start of the line: the start, and a … where the line goes on.
  const s = loadText(`{"version": 1, "comand": ["x"], "x-pad": "${pad}"}\n`);
  assert.deepEqual(formatDiagnostic(s.diagnostics[0]!, s.text).split('\n').slice(1), [
    `> 1 | {"version": 1, "comand": ["x"], "x-pad": "${'p'.repeat(58)}…`,
    '    |                ^^^^^^^^',
  ]);
});

// Issue 22: the line before the error was cut to the error line's length (`3 | comm…` above a
// short line): it shows the same ~100 columns, whatever the error line's length.
test('the line above the error shows about 100 columns too, not the width of the error line', () => {
  const long = `command: [${Array.from({ length: 40 }, (_, i) => `arg${i}`).join(', ')}]`;
  const r = loadText(`version: 1\n${long}\nnetwork: x y: z\n`);
  const frame = formatDiagnostic(r.diagnostics[0]!, r.text).split('\n').slice(1);
  assert.equal(frame[0], `  2 | ${long.slice(0, 100)}…`);
  assert.equal(frame[1], '> 3 | network: x y: z');
  // The error far to the right of a long line: a short line above is shown whole, a long one at
  // the error line's columns.
  const json = (above: string) => loadText(`{"version": 1, "command": ["x"],\n"x-a": "${above}",\n"x-pad": "${'p'.repeat(150)}", "memroy": 1}\n`);
  const short = json('short');
  assert.deepEqual(formatDiagnostic(short.diagnostics[0]!, short.text).split('\n').slice(1, 3), ['  2 | "x-a": "short",', `> 3 | …${'p'.repeat(85)}", "memroy": 1}`]);
  const wide = json('q'.repeat(300));
  assert.equal(formatDiagnostic(wide.diagnostics[0]!, wide.text).split('\n')[1], `  2 | …${'q'.repeat(100)}…`);
});

test('values quoted in messages are clipped; control characters are escaped when printed', () => {
  const r = loadText(V + 'name: ' + 'x'.repeat(30000) + '\n');
  assert.deepEqual(r.diagnostics.map((d) => d.message), [`\`${'x'.repeat(80)}… (30000 characters)\` is not valid for \`name\`: expected a name of letters, digits, _, . and -, starting with a letter or digit, at most 63 characters`]);
  const c = loadText(V + 'hostname: "a\\x07b\\x1b[2J"\n');
  assert.equal(formatDiagnostic(c.diagnostics[0]!, c.text).split('\n')[0], 'sandbox.yml:3:11: error: `a\\x07b\\x1b[2J` is not valid for `hostname`: expected a host name of letters, digits and -, such as web-1');
});

test(`past ${MAX_PRINTED} diagnostics the rest are counted, not printed`, () => {
  const d = (i: number, severity: Diagnostic['severity']): Diagnostic => ({ file: 'f.yml', line: i + 1, col: 1, path: '', code: 'x', message: `problem number ${i}`, severity });
  const list = [...Array.from({ length: 120 }, (_, i) => d(i, 'error')), d(120, 'warning'), d(121, 'warning')];
  const out = formatDiagnostics(list, () => undefined);
  assert.equal(out.split('\n\n').filter((b) => b.startsWith('f.yml:')).length, 50);
  assert.ok(out.includes('f.yml:50:1: error: problem number 49\n\n'));
  assert.ok(!out.includes('problem number 50'));
  assert.ok(out.endsWith('… and 70 more errors and 2 more warnings (not shown; `sandbox validate --format json` lists them all)\n\n'), out.slice(-200));
  assert.ok(formatDiagnostics(list.slice(0, 51), () => undefined).endsWith('… and 1 more error (not shown; `sandbox validate --format json` lists them all)\n\n'));
  assert.ok(!formatDiagnostics(list.slice(0, 50), () => undefined).includes('… and'));
});

test('a 27 KB one-line file with 53 errors prints about 27 KB, not 3 MB', () => {
  const keys = Array.from({ length: 53 }, (_, i) => `"k${i}": ${i}`).join(', ');
  let text = `{"version": 1, "command": ["x"], "x-pad": "PAD", ${keys}}`;
  text = text.replace('PAD', 'p'.repeat(27 * 1024 - text.length + 3)) + '\n';
  const r = loadText(text);
  assert.equal(r.diagnostics.length, 53);
  const out = formatDiagnostics(r.diagnostics, () => r.text);
  assert.ok(out.length < 32_000, `${out.length} characters`);
  // The longest line is the unknown-key message listing the ~37 known top-level keys (~440 characters); the 27 KB line is never echoed.
  for (const line of out.split('\n')) assert.ok(line.length < 500, `a printed line of ${line.length} characters`);
  assert.ok(out.endsWith('… and 3 more errors (not shown; `sandbox validate --format json` lists them all)\n\n'));
});

test('the biggest one-line file, 20 000 unknown keys, is refused with bounded output', () => {
  let text = '{"version": 1, "command": ["x"]';
  let n = 0;
  while (text.length < LIMITS.bytes - 16) text += `, "k${n++}": 1`;
  text += '}\n';
  const t0 = performance.now();
  const r = loadText(text);
  const out = formatDiagnostics(r.diagnostics, () => r.text);
  assert.equal(r.diagnostics.length, n);
  assert.ok(out.length < 32_000, `${out.length} characters`);
  // Once quadratic in the keys (each one located by a scan of the mapping): a hang guard only.
  assert.ok(performance.now() - t0 < 10_000);
});
