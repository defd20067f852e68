// 80 broken configs: each gives exactly one error, at its exact line:col, with its exact words.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { INVALID_CASES } from './fixtures/invalid-cases';
import { loadText } from '../helpers/load';

test('there are at least 50 invalid cases', () => assert.ok(INVALID_CASES.length >= 50));

for (const c of INVALID_CASES) {
  test(`invalid: ${c.name}`, () => {
    const r = loadText(c.yaml, { env: c.env });
    const errors = r.diagnostics.filter((d) => d.severity === 'error');
    assert.equal(r.spec, undefined, 'no spec for an invalid config');
    assert.deepEqual(errors.map((d) => ({ at: `${d.line}:${d.col}`, code: d.code, message: d.message })), [{ at: `${c.line}:${c.col}`, code: c.code, message: c.message }]);
  });
}

test('every error of a file comes at once, in file order', () => {
  const yaml = 'version: 1\ncomand: [x]\nnetwork: privat\nresources: {memroy: 1g}\ncap_add: [NET_ADMN]\nulimits: {nofle: 1}\nports: ["1:1", "1:2"]\n';
  const r = loadText(yaml);
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.line}:${d.code}`), ['2:unknown-key', '3:enum', '4:unknown-key', '5:unknown-capability', '6:unknown-key', '7:port-conflict']);
});

test('warnings do not fail: ports on every address, more CPUs than the host has', () => {
  const r = loadText('version: 1\ncommand: [x]\nports: ["8080:80"]\nresources: {cpus: 8}\n', { cpus: 2 });
  assert.ok(r.spec);
  assert.deepEqual(r.diagnostics.map((d) => [d.severity, d.code, d.line]), [['warning', 'port-on-all-interfaces', 3], ['warning', 'cpus-above-host', 4]]);
});

test('x- keys are accepted anywhere and ignored', () => {
  const r = loadText('version: 1\ncommand: [x]\nx-team: infra\nresources: {x-note: hi, memory: 1g}\n');
  assert.deepEqual(r.diagnostics, []);
});

test('package.json: the config lives under the sandbox key, located in the file', () => {
  const r = loadText('{\n  "name": "app",\n  "sandbox": {\n    "version": 1,\n    "comand": ["x"]\n  }\n}\n', { root: ['sandbox'], file: 'package.json' });
  const d = r.diagnostics[0]!;
  assert.equal(d.code, 'unknown-key');
  assert.deepEqual([d.file, d.line, d.col], ['package.json', 5, 5]);
});
