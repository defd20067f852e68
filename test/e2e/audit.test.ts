// sandbox audit and sandbox diff as a CI job runs them: exit codes, where output goes, SARIF
// located relative to the repository, diff --against a git revision.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/load';

const BIN = join(ROOT, 'bin/sandbox.js');
const run = (args: string[], cwd = ROOT) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const noTrace = (s: string) => assert.doesNotMatch(s, /\n\s+at /, 'no stack trace');
const LOCKED = 'version: 1\ncommand: [x]\nuser: "1000:1000"\nnetwork: none\nsecurity: {read_only: true}\nresources: {memory: 64m, pids: 32, cpus: 1}\n';
const tmp = () => mkdtempSync(join(tmpdir(), 'sandbox-audit-e2e-'));

test('audit: the score and findings on stdout, exit 0; --threshold exits 3 above it, 0 at or below', () => {
  const a = run(['audit', 'samples/locked-down.yml']);
  assert.equal(a.code, 0, a.err);
  assert.equal(a.out, 'samples/locked-down.yml: exposure 0.0/10 (0 is locked down, 10 is the host itself), no findings\n');
  const b = run(['audit', 'samples/busybox.yml', '--threshold', '4']);
  assert.equal(b.code, 3);
  assert.match(b.out, /^samples\/busybox\.yml: exposure 4\.8\/10/);
  assert.match(b.out, /\nsamples\/busybox\.yml:1:1  high  SBX403  /);
  assert.match(b.err, /the exposure score 4\.8 is above the threshold 4/);
  assert.equal(run(['audit', 'samples/busybox.yml', '--threshold', '4.8']).code, 0);
  const bad = run(['audit', 'samples/busybox.yml', '--threshold', 'high']);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /--threshold "high" is not a number from 0 to 10/);
});

test('audit: json and sarif on stdout; the SARIF result uris are relative to the repository root', () => {
  const j = run(['audit', '--format', 'json', 'samples/jenkins.yml']);
  assert.equal(j.code, 0, j.err);
  const audits = JSON.parse(j.out);
  assert.equal(audits[0].score, 1);
  assert.deepEqual(audits[0].findings.map((f: { id: string; line: number }) => `${f.id}@${f.line}`), ['SBX103@1', 'SBX210@1']);
  // From another folder, the uri is still relative to the repository's root.
  const s = run(['audit', '--format', 'sarif', join(ROOT, 'samples/jenkins.yml')], join(ROOT, 'test'));
  assert.equal(s.code, 0, s.err);
  const log = JSON.parse(s.out);
  assert.equal(log.version, '2.1.0');
  assert.deepEqual(log.runs[0].results.map((r: { ruleId: string; locations: { physicalLocation: { artifactLocation: { uri: string }; region: { startLine: number; startColumn: number } } }[] }) =>
    `${r.ruleId} ${r.locations[0]!.physicalLocation.artifactLocation.uri}:${r.locations[0]!.physicalLocation.region.startLine}:${r.locations[0]!.physicalLocation.region.startColumn}`),
  ['SBX103 samples/jenkins.yml:1:1', 'SBX210 samples/jenkins.yml:1:1']);
});

test('audit and diff of an invalid file: the errors located, exit 2, no stack trace', () => {
  const dir = tmp();
  try {
    writeFileSync(join(dir, 'bad.yml'), 'version: 1\nnetwork: privat\n');
    writeFileSync(join(dir, 'ok.yml'), LOCKED);
    const a = run(['audit', 'bad.yml'], dir);
    assert.equal(a.code, 2);
    assert.equal(a.out, '');
    assert.match(a.err, /bad\.yml:2:10: error: `privat` is not a valid value for `network`/);
    noTrace(a.err);
    const d = run(['diff', 'ok.yml', 'bad.yml'], dir);
    assert.equal(d.code, 2);
    noTrace(d.err);
    assert.equal(run(['audit', 'missing.yml'], dir).code, 2);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('diff A B: exit 1 when something loosened, 0 when it only tightened or nothing changed; markdown for a pull request', () => {
  const dir = tmp();
  try {
    writeFileSync(join(dir, 'a.yml'), LOCKED);
    writeFileSync(join(dir, 'b.yml'), LOCKED.replace('network: none', 'network: private') + 'ports: ["8080:80"]\ncap_add: [NET_ADMIN]\n');
    const l = run(['diff', 'a.yml', 'b.yml'], dir);
    assert.equal(l.code, 1, l.err);
    assert.match(l.out, /^isolation changes from a\.yml to b\.yml\nexposure score 0\.0 → 4\.3 \(looser\)\n/);
    assert.match(l.out, /   \+ network none → private \(a\.yml:4 → b\.yml:4\)\n   \+ port 8080→80\/tcp on every address added \(b\.yml:7\)\n/);
    assert.match(l.out, /   \+ capability NET_ADMIN added \(b\.yml:8\)\n/);
    const t = run(['diff', 'b.yml', 'a.yml', '--format', 'markdown'], dir);
    assert.equal(t.code, 0, t.err);
    assert.match(t.out, /^### sandbox: isolation changes in `a\.yml` \(from `b\.yml`\)\n\n\*\*exposure score 4\.3 → 0\.0 \(tighter\)\*\*\n/);
    assert.match(t.out, /\| 🔒 \| capability NET_ADMIN removed \| `b\.yml:8` \|  \|/);
    const same = run(['diff', 'a.yml', 'a.yml', '--format', 'json'], dir);
    assert.equal(same.code, 0);
    assert.deepEqual(JSON.parse(same.out).changes, []);
    const usage = run(['diff', 'a.yml'], dir);
    assert.equal(usage.code, 1);
    assert.match(usage.err, /diff takes two files \(sandbox diff A B\), or one file and --against REV/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('diff FILE --against REV: the old version from git; exit 1 when the working copy loosened it', () => {
  const dir = tmp();
  try {
    const g = (...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'init.defaultBranch=main', ...args], { cwd: dir, stdio: 'pipe' });
    g('init', '-q');
    writeFileSync(join(dir, 'sandbox.yml'), LOCKED);
    g('add', '.');
    g('commit', '-qm', 'locked');
    assert.equal(run(['diff', 'sandbox.yml', '--against', 'HEAD'], dir).code, 0);
    writeFileSync(join(dir, 'sandbox.yml'), LOCKED.replace('resources: {memory: 64m, pids: 32, cpus: 1}', 'resources: {pids: 32, cpus: 1}'));
    const d = run(['diff', 'sandbox.yml', '--against', 'HEAD', '--format', 'markdown'], dir);
    assert.equal(d.code, 1, d.err);
    assert.match(d.out, /\| 🔓 \| memory limit 64 MiB → none \| `HEAD:sandbox\.yml:6` \| `default` \|/);
    const bad = run(['diff', 'sandbox.yml', '--against', 'nope'], dir);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /cannot read sandbox\.yml from git: nope:sandbox\.yml/);
    noTrace(bad.err);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('audit of a package.json config: a default is located at its `sandbox` key, not at the top of package.json', () => {
  const dir = tmp();
  try {
    writeFileSync(join(dir, 'package.json'), '{\n  "name": "x",\n  "sandbox": {\n    "version": 1,\n    "command": ["x"],\n    "network": "host"\n  }\n}\n');
    const r = run(['audit', '--format', 'json'], dir);
    assert.equal(r.code, 0, r.err);
    const at = Object.fromEntries(JSON.parse(r.out)[0].findings.map((f: { id: string; line: number; col: number }) => [f.id, `${f.line}:${f.col}`]));
    assert.equal(at.SBX101, '6:16');
    assert.equal(at.SBX403, '3:14');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
