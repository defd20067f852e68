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

// Issue 22: eight schema errors hid five more that the rules and normalize find (a duplicate
// host port, port 99999, `abc:80`, a range mismatch, a bad IP): one run shows all of them, each
// once, at its own line, the rules running on every part of the file the schema accepted.
test('schema errors and the errors of normalize and the rules come in one run', () => {
  const yaml = [
    'version: 1', 'comand: [x]', 'command: [/bin/true]', 'network: privat', 'hostname: 42', 'resources:', '  memroy: 1g', '  memory: 4m',
    'cap_add: [NOT_A_CAP]', 'user: {}', 'ports:', '  - "127.0.0.1:8080:80"', '  - "127.0.0.1:8080:81"', '  - "99999:80"', '  - "abc:80"',
    '  - "8000-8002:80-81"', '  - "300.1.1.1:9000:80"', '  - {published: 7000, target: "x"}', '  - "127.0.0.1:9001:90"', '  - "127.0.0.1:9001:91"',
    'volumes:', '  - {type: tmpfs, target: /tmp, bogus: 1}', '  - {type: tmpfs, target: /tmp}', '  - {type: tmpfs, target: /tmp}', '',
  ].join('\n');
  const r = loadText(yaml);
  assert.equal(r.spec, undefined);
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.line}:${d.col} ${d.code}: ${d.message}`), [
    '2:1 unknown-key: `comand` is not a known key (did you mean `command`?)',
    '4:10 enum: `privat` is not a valid value for `network`; expected none, private, host (did you mean `private`?)',
    '5:11 type: `hostname` must be a string, not the number 42: YAML reads `42` as a number; quote it, as "42"',
    '7:3 unknown-key: `memroy` is not a known key in `resources` (did you mean `memory`?)',
    "8:11 memory-too-low: `memory` of 4194304 bytes is below Docker's minimum of 6m; a sandboxed process cannot start in less",
    '9:11 unknown-capability: `NOT_A_CAP` is not a capability; see capabilities(7) for the names',
    '10:7 type: `user` must be a string or a whole number, not a mapping',
    '13:5 port-conflict: host port 8080/tcp is already published on line 12; pick another host port',
    '14:5 invalid-port: `99999:80`: 99999 is not a port: ports go from 1 to 65535',
    '15:5 invalid-port: `abc:80`: `abc` is not a port; write a number from 1 to 65535, or a range such as 8000-8010',
    '16:5 invalid-port: `8000-8002:80-81`: the host range has 3 ports and the container range 2; make them the same length',
    '17:5 invalid-address: `300.1.1.1` is not an IP address; use an address such as 127.0.0.1 or [::1]',
    '18:31 invalid-value: `x` is not valid for `ports[6].target`: expected a port or a range such as 8000-8010',
    // After the item the schema refused, the list's items keep their own lines.
    '20:5 port-conflict: host port 9001/tcp is already published on line 19; pick another host port',
    // Only the unknown key is left out: the rest of its volume is judged with the others.
    '22:33 unknown-key: `bogus` is not a known key in `volumes[0]`; known keys: type, source, target, read_only, propagation, volume, size, mode, options',
    '23:5 duplicate-target: two volumes are mounted on /tmp; the first is on line 22',
    '24:5 duplicate-target: two volumes are mounted on /tmp; the first is on line 22',
  ]);
});

test('what the schema refused is not judged again by the rules, and nothing is said twice', () => {
  // `command: [true]`: the item is refused (a boolean); the rules do not add "nothing to run".
  const a = loadText('version: 1\ncommand: [true]\n');
  assert.deepEqual(a.diagnostics.map((d) => `${d.line}:${d.col} ${d.code}`), ['2:11 type']);
  // A uid_map with a bad item is left out whole: the rules do not guess that uid 0 is unmapped.
  const b = loadText('version: 1\ncommand: [x]\nnamespaces: {user: {uid_map: ["0:1", "1:100000:10"]}}\n');
  assert.deepEqual(b.diagnostics.map((d) => d.code), ['invalid-value']);
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

// The rules run on what the schema accepted of a file: whatever single value of a full config is
// wrong (each leaf and each mapping of every-key.yml and jenkins.yml, replaced by a value of each
// wrong kind), the pipeline ends in located errors, never a throw, and the schema's error is
// among them.
test('a wrong value anywhere: normalize and the rules judge the rest without crashing', () => {
  const { readFileSync } = require('node:fs') as typeof import('node:fs');
  const { parseDocument, isMap, isSeq, isScalar } = require('yaml') as typeof import('yaml');
  const { join } = require('node:path') as typeof import('node:path');
  const { ROOT } = require('../helpers/load') as typeof import('../helpers/load');
  const files = ['test/integration/fixtures/every-key.yml', 'samples/jenkins.yml'];
  const wrong: unknown[] = [{ bogus: 1 }, [1, [2]], -7, true, null];
  let cases = 0, refused = 0;
  for (const f of files) {
    const text = readFileSync(join(ROOT, f), 'utf8');
    const paths: (string | number)[][] = [];
    const walk = (node: unknown, path: (string | number)[]) => {
      if (path.length) paths.push(path);
      if (isMap(node)) for (const p of node.items) walk(p.value, [...path, String((p.key as { value: unknown }).value)]);
      else if (isSeq(node)) node.items.forEach((n, i) => walk(n, [...path, i]));
      else if (!isScalar(node)) return;
    };
    walk(parseDocument(text).contents, []);
    for (const p of paths) {
      if (p[0] === 'version') continue;
      for (const w of wrong) {
        const doc = parseDocument(text);
        doc.setIn(p, w);
        const r = loadText(doc.toString(), { files: { '/project/every-key.env': 'A=1\n' } });
        cases++;
        if (r.diagnostics.some((d) => d.severity === 'error')) refused++;
        // Some replacements are valid (a list where a list or a string is wanted); the rest must be located errors.
        for (const d of r.diagnostics) assert.ok(d.line >= 1 && d.col >= 1 && d.message && !/undefined|\[object Object\]|NaN/.test(d.message), `${f} ${p.join('.')} = ${JSON.stringify(w)}: ${d.message}`);
      }
    }
  }
  assert.ok(cases > 400 && refused > cases / 2, `${cases} cases, ${refused} refused`);
});
