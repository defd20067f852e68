// Interpolation as Compose does it: an unset variable becomes an empty string, with a located
// warning that says so and how to keep a literal $ ($$); defaults and required forms keep their
// meaning; --strict turns the warning into a failure; arguments after -- are never interpolated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interpolate } from '../../src/config/interpolate';
import { compile } from '../../src/plan/compile';
import { buildProgram, main } from '../../src/cli/main';
import { HYBRID_HOST, loadText } from '../helpers/load';

const at = (r: ReturnType<typeof loadText>) => r.diagnostics.map((d) => `${d.line}:${d.col} ${d.severity} ${d.code}: ${d.message}`);
const unsetM = (written: string, inCommand = true) =>
  `\`${written}\`: M is not set, so it became an empty string; write \`$${written}\` to pass a literal \`${written}\`${inCommand ? ' to the command' : ''}, or \`\${M:-}\` if empty is meant`;

test('an unset $M in a command is a located warning, and becomes an empty string', () => {
  const r = loadText('version: 1\ncommand: [sh, -c, \'echo $M\']\n');
  assert.deepEqual(at(r), [`2:19 warning unset-variable: ${unsetM('$M')}`]);
  assert.ok(r.spec, 'a warning does not refuse the file');
  assert.deepEqual(r.spec.process.args, ['sh', '-c', 'echo ']);
  assert.deepEqual(r.diagnostics[0]!.path, '/command/2');
});

test('the warning quotes the form as written: ${M}; one warning per string, each string located', () => {
  const r = loadText('version: 1\ncommand: [sh, -c, "echo ${M} $M ${M}", "$M"]\n');
  assert.deepEqual(at(r), [`2:19 warning unset-variable: ${unsetM('${M}')}`, `2:40 warning unset-variable: ${unsetM('$M')}`]);
});

test('outside the command the warning does not speak of the command', () => {
  const r = loadText('version: 1\ncommand: [x]\nenv:\n  GREETING: "hi $M"\n');
  assert.deepEqual(at(r), [`4:13 warning unset-variable: ${unsetM('$M', false)}`]);
  assert.equal(r.spec?.process.env.find((e) => e.name === 'GREETING')?.value, 'hi ');
});

test('$$ passes a literal $ to the command, with no warning', () => {
  const r = loadText('version: 1\ncommand: [sh, -c, \'echo $$M $${M} cost: 5$$\']\n');
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(r.spec?.process.args, ['sh', '-c', 'echo $M ${M} cost: 5$']);
});

test('defaults, alternatives and set-but-empty variables give no warning', () => {
  const r = loadText('version: 1\ncommand: ["${M:-dflt}|${M-dash}|${M:-}|${E}|${E-kept}|${E:-colon}|${S:+alt}|${M:+no}|${S:-unused}"]\n', { env: { E: '', S: 's' } });
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(r.spec?.process.args, ['dflt|dash||||colon|alt||s']);
});

test('nested defaults: ${A:-${B}} takes B when A is unset, and warns about B when both are', () => {
  assert.deepEqual(loadText('version: 1\ncommand: ["${A:-${B}}"]\n', { env: { B: 'b' } }).spec?.process.args, ['b']);
  const r = loadText('version: 1\ncommand: ["${A:-${B}}"]\n');
  assert.deepEqual(at(r), ['2:11 warning unset-variable: `${B}`: B is not set, so it became an empty string; write `$${B}` to pass a literal `${B}` to the command, or `${B:-}` if empty is meant']);
});

test('${M:?message} is still an error when M is unset or empty, located at its string', () => {
  for (const env of [{}, { M: '' }] as Record<string, string>[]) {
    const r = loadText('version: 1\ncommand: [sh, -c, "echo ${M:?set M to a word}"]\n', { env });
    assert.deepEqual(at(r), ['2:19 error required-variable: `M` must be set: set M to a word (export M=… before running)']);
    assert.equal(r.spec, undefined);
  }
  // Without the colon only unset counts.
  assert.deepEqual(loadText('version: 1\ncommand: ["a${M?needed}b"]\n', { env: { M: '' } }).spec?.process.args, ['ab']);
});

test('a ${ that is never closed is an error, not a literal', () => {
  const r = loadText('version: 1\ncommand: [sh, -c, "echo ${X"]\n');
  assert.deepEqual(at(r), ['2:19 error bad-interpolation: `${X` has no closing }; write ${NAME}, ${NAME:-default} or ${NAME:?message}, or $$ for a literal $']);
});

test('a $ before anything else is kept as written, as Compose keeps it', () => {
  const r = loadText('version: 1\ncommand: [sh, -c, "echo $(date) $ 5$ $1"]\n');
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(r.spec?.process.args, ['sh', '-c', 'echo $(date) $ 5$ $1']);
});

test('variables named like Object.prototype members are ordinary names', () => {
  const r = loadText('version: 1\ncommand: ["${constructor}", "$toString", "${valueOf:-d}"]\n');
  assert.deepEqual(r.spec?.process.args, ['', '', 'd']);
  assert.deepEqual(r.diagnostics.map((d) => `${d.line}:${d.col} ${d.code}`), ['2:11 unset-variable', '2:29 unset-variable']);
  assert.deepEqual(loadText('version: 1\ncommand: ["${constructor}"]\n', { env: { constructor: 'c' } }).spec?.process.args, ['c']);
});

test('a warning does not drop the key: the rest of the file still counts, x- keys are never interpolated', () => {
  const r = loadText('version: 1\nx-note: "$UNSET"\nhostname: "web$M"\ncommand: [x]\n');
  assert.deepEqual(r.diagnostics.map((d) => `${d.line}:${d.col} ${d.severity} ${d.code}`), ['3:11 warning unset-variable']);
  assert.equal(r.spec?.hostname.value, 'web');
});

test('interpolate(): problems carry their severity', () => {
  const r = interpolate({ a: '$U', b: '${U:?m}', c: '${1x}' }, {});
  assert.deepEqual(r.problems.map((p) => [p.path.join('.'), p.code, p.severity]), [['a', 'unset-variable', 'warning'], ['b', 'required-variable', 'error'], ['c', 'bad-interpolation', 'error']]);
});

test('deep nesting is refused, not recursed into', () => {
  const deep = '${A:-'.repeat(40) + 'x' + '}'.repeat(40);
  const r = interpolate({ a: deep }, {});
  assert.deepEqual(r.problems.map((p) => p.code), ['bad-interpolation']);
  assert.match(r.problems[0]!.message, /^substitutions nest deeper than 16 levels here;/);
});

/** Runs the CLI's main() on a file with stderr captured; the variable M is unset meanwhile. */
async function cli(args: string[], text: string): Promise<{ code: number; err: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-interp-'));
  const file = join(dir, 'sandbox.yml');
  writeFileSync(file, text);
  const saved = process.env.SBX_TEST_UNSET_M;
  delete process.env.SBX_TEST_UNSET_M;
  const write = process.stderr.write;
  let err = '';
  process.stderr.write = ((s: string | Uint8Array) => { err += String(s); return true; }) as typeof process.stderr.write;
  try {
    const code = await main([...args, file]);
    return { code, err };
  } finally {
    process.stderr.write = write;
    if (saved !== undefined) process.env.SBX_TEST_UNSET_M = saved;
    rmSync(dir, { recursive: true, force: true });
  }
}

test('validate: the warning is printed and the file is valid; with --strict it fails (exit 2)', async () => {
  const text = 'version: 1\ncommand: [sh, -c, \'echo $SBX_TEST_UNSET_M\']\n';
  const warning = ':2:19: warning: `$SBX_TEST_UNSET_M`: SBX_TEST_UNSET_M is not set, so it became an empty string; write `$$SBX_TEST_UNSET_M` to pass a literal `$SBX_TEST_UNSET_M` to the command, or `${SBX_TEST_UNSET_M:-}` if empty is meant';
  const plain = await cli(['validate'], text);
  assert.equal(plain.code, 0, plain.err);
  assert.ok(plain.err.includes(warning), plain.err);
  const strict = await cli(['validate', '--strict'], text);
  assert.equal(strict.code, 2, strict.err);
  assert.ok(strict.err.includes(warning), strict.err);
  assert.match(strict.err, /nothing was run \(warnings count as errors with --strict\)\n$/);
});

test('arguments after -- reach `up` exactly as written: never interpolated', async () => {
  const program = buildProgram();
  const up = program.commands.find((c) => c.name() === 'up')!;
  let got: string[] | undefined;
  up.action(async (_file: string, cmd: string[]) => { got = cmd; });
  const argv = ['sh', '-c', 'echo $M ${M} ${M:?required} ${M:-d} $$ ${'];
  await program.parseAsync(['up', 'sandbox.yml', '--', ...argv], { from: 'user' });
  assert.deepEqual(got, argv);
  // They reach normalize as an input (after interpolation, which reads only the file); the plan
  // runs them as they are.
  const r = loadText('version: 1\ncommand: [sh, -c, "echo $$M"]\n', { command: argv });
  assert.equal(r.spec!.process.argsSrc, 'cli');
  const exec = compile(r.spec!, HYBRID_HOST).plan.steps.find((s) => s.kind === 'exec')!;
  assert.deepEqual(exec.args.args, argv);
});
