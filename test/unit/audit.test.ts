// sandbox audit: every rule fires on a config made for it, at its exact line and column; the
// samples' scores; the SARIF log against the official SARIF 2.1.0 schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import { audit, findingsOf, scoreOf } from '../../src/audit/score';
import { RULES } from '../../src/audit/rules';
import { toSarif, repoUri } from '../../src/audit/sarif';
import { auditText, auditJson } from '../../src/audit/render';
import { V2_HOST, HYBRID_HOST, ROOT } from '../helpers/load';
import { loadSpec } from '../../src/model/load';
import { compile } from '../../src/plan/compile';
import { parseConfig } from '../../src/config/parse';
import { exposureFacts, locatorOf } from '../../src/audit/facts';
import { diffFacts } from '../../src/audit/diff';
import { factsOf, locked, sampleText } from '../helpers/audit';

const at = (text: string, id: string) => findingsOf(factsOf(text)).filter((f) => f.id === id).map((f) => `${f.at.line}:${f.at.col}`);

test('the locked-down base config has no finding and scores 0', () => {
  const a = audit(factsOf(locked()));
  assert.deepEqual(a.findings.map((f) => f.id), []);
  assert.equal(a.score, 0);
});

// Each rule, the lines that make it fire (over the locked base, whose lines 1-6 are version,
// command, user, network, security, resources; added keys start at line 7), and where.
const CASES: [string, Record<string, string | null>, string[]][] = [
  ['SBX101', { network: 'network: host' }, ['4:10']],
  ['SBX102', { network: 'network: private', ports: 'ports: ["8080:80", "127.0.0.1:8081:81", {published: 8082, target: 82, host_ip: 0.0.0.0}]' }, ['7:9', '7:41']],
  ['SBX103', { network: 'network: {mode: private}' }, ['4:17']],
  ['SBX104', { network: 'network: {mode: private, egress: [allow 0.0.0.0/0, "allow [::/0]:443", allow 10.0.0.0/8]}' }, ['4:35', '4:52']],
  ['SBX105', { network: 'network: {mode: private, egress: [allow *.corp.test:443, deny *.evil.test, allow a.corp.test]}' }, ['4:35']],
  ['SBX106', { network: 'network: {mode: private, egress: [allow 169.254.169.254:80, allow 0.0.0.0/0, allow 10.88.0.1:22, allow 127.0.0.0/8, allow 10.0.0.0/8]}' }, ['4:35', '4:78', '4:98']],
  ['SBX107', { network: 'network: {mode: private, egress: [allow dns.google, allow chrome.cloudflare-dns.com:443, allow dns.quad9.net:80]}' }, ['4:35', '4:53']],
  ['SBX108', { network: 'network: {mode: private, egress: [allow dns.test:53, allow 10.0.0.0/8, "allow 10.0.0.0/8:853"]}' }, ['4:35', '4:72']],
  ['SBX120', { rootfs: 'rootfs: host', paths: 'paths: {read_only: ["~/.ssh"]}' }, ['8:21']],
  ['SBX121', { rootfs: 'rootfs: host', paths: 'paths: {read_write: [., ./.git/hooks]}' }, ['8:25']],
  ['SBX201', { volumes: 'volumes: ["/:/host:ro"]' }, ['7:11']],
  ['SBX202', { volumes: 'volumes: ["/proc:/hostproc:ro"]' }, ['7:11']],
  ['SBX203', { volumes: 'volumes: ["/sys/fs:/s:ro"]' }, ['7:11']],
  ['SBX204', { volumes: 'volumes: ["/dev:/d:ro"]' }, ['7:11']],
  ['SBX205', { volumes: 'volumes:\n  - /var/run/docker.sock:/var/run/docker.sock:ro\n  - /run/containerd/containerd.sock:/c.sock:ro\n  - /run/podman/podman.sock:/p.sock:ro\n  - /var/run/crio/crio.sock:/crio.sock:ro\n  - /run:/hostrun:ro' }, ['8:5', '9:5', '10:5', '11:5', '12:5']],
  ['SBX206', { volumes: 'volumes: ["~:/h:ro", "/root:/r:ro", "~/project:/p:ro"]' }, ['7:11', '7:22']],
  ['SBX207', { volumes: 'volumes: ["./d:/d", "./e:/e:ro", {type: bind, source: ./f, target: /f}]' }, ['7:11', '7:34']],
  ['SBX208', { volumes: 'volumes: ["./d:/d:ro,rshared", "./e:/e:ro,rslave"]' }, ['7:11']],
  ['SBX209', { devices: 'devices: ["/dev/fuse"]' }, ['7:11']],
  ['SBX210', { security: 'security: {no_new_privileges: true}' }, ['5:1']],
  ['SBX210', { security: null }, ['1:1']],
  ['SBX401', { security: 'security: {read_only: true, seccomp: unconfined}' }, ['5:38']],
  ['SBX402', { security: 'security: {read_only: true, no_new_privileges: false}' }, ['5:48']],
  ['SBX403', { user: 'user: "0:0"' }, ['3:7']],
  ['SBX403', { user: null }, ['1:1']],
  ['SBX403', { user: 'user: root' }, ['3:7']],
  ['SBX501', { namespaces: 'namespaces: {pid: host}' }, ['7:19']],
  ['SBX502', { namespaces: 'namespaces: {ipc: false}' }, ['7:19']],
  ['SBX503', { namespaces: 'namespaces: {uts: host}' }, ['7:19']],
  ['SBX504', { namespaces: 'namespaces: {cgroup: host}' }, ['7:22']],
  ['SBX505', { namespaces: 'namespaces: {ipc: /proc/1/ns/ipc}' }, ['7:19']],
  ['SBX601', { resources: 'resources: {pids: 32, cpus: 1}' }, ['6:1']],
  ['SBX601', { resources: null }, ['1:1']],
  ['SBX602', { resources: 'resources: {memory: 64m, cpus: 1}' }, ['6:1']],
  ['SBX602', { resources: 'resources: {memory: 64m, pids: -1, cpus: 1}' }, ['6:32']],
  ['SBX603', { resources: 'resources: {memory: 64m, pids: 32}' }, ['6:1']],
  ['SBX701', { network: 'network: private', sysctls: 'sysctls: {net.ipv4.ip_forward: 1, net.ipv4.tcp_syncookies: 1}' }, ['7:32']],
  ['SBX702', { command: null, image: 'image: registry.test:5000/app:1', insecure_registries: 'insecure_registries: [registry.test:5000]' }, ['7:23']],
];
const CAP_RULES = RULES.filter((r) => r.name.startsWith('cap-'));
for (const r of CAP_RULES) CASES.push([r.id, { cap_add: `cap_add: [CHOWN, ${r.name.slice(4).toUpperCase().replace(/-/g, '_')}]` }, ['7:18']]);

for (const [id, over, where] of CASES) {
  test(`${id} fires at ${where.join(', ')}: ${Object.values(over).filter(Boolean).join('; ').replace(/\n/g, ' ')}`, () => {
    assert.deepEqual(at(locked(over), id), where);
  });
}

test('every rule has a case, a unique id and name, a weight in (0, 1), and its why and fix', () => {
  assert.deepEqual(RULES.map((r) => r.id).filter((id) => !CASES.some(([c]) => c === id)), []);
  assert.equal(new Set(RULES.map((r) => r.id)).size, RULES.length);
  assert.equal(new Set(RULES.map((r) => r.name)).size, RULES.length);
  for (const r of RULES) {
    assert.match(r.id, /^SBX[1-7]\d\d$/);
    assert.ok(r.weight > 0 && r.weight < 1, r.id);
    assert.ok(r.why.length > 20 && !r.why.endsWith('.'), `${r.id}: why is one sentence, without the full stop the output adds`);
    assert.ok(r.fix.length > 10, r.id);
  }
});

test('cap_add: [ALL] fires every capability rule at the one line', () => {
  const ids = findingsOf(factsOf(locked({ cap_add: 'cap_add: [ALL]' }))).filter((f) => f.id.startsWith('SBX3'));
  assert.deepEqual(ids.map((f) => f.id).sort(), CAP_RULES.map((r) => r.id).sort());
  assert.ok(ids.every((f) => f.at.line === 7 && f.at.col === 11));
});

test('binds of the system folders of rootfs: host are not findings; the default sysctl is not either', () => {
  const f = factsOf(locked({ rootfs: 'rootfs: host', network: 'network: private' }));
  assert.deepEqual(f.binds, []);
  assert.ok(f.sysctls.some((s) => s.name === 'net.ipv4.ping_group_range' && s.at.origin === 'default'));
  assert.deepEqual(findingsOf(f).map((x) => x.id), ['SBX103']);
});

test('a registry on loopback is plain HTTP by default and reachable by no one else: naming it is no finding, and the others still are', () => {
  assert.deepEqual(at(locked({ command: null, image: 'image: 127.0.0.1:5000/app:1', insecure_registries: 'insecure_registries: [127.0.0.1:5000, localhost:5000]' }), 'SBX702'), []);
  assert.deepEqual(at(locked({ command: null, image: 'image: 127.0.0.1:5000/app:1', insecure_registries: 'insecure_registries: [127.0.0.1:5000, registry.test:5000]' }), 'SBX702'), ['7:39']);
  assert.deepEqual(at(locked({ command: null, image: 'image: 127.0.0.1:5000/app:1' }), 'SBX702'), []);
});

test('a private network with egress rules naming its hosts is no finding: SBX103 is the network without them', () => {
  const a = audit(factsOf(locked({ network: 'network: {mode: private, egress: [allow registry.npmjs.org:443, deny 169.254.0.0/16]}' })));
  assert.deepEqual(a.findings.map((f) => f.id), []);
  assert.equal(a.score, 0);
  assert.deepEqual(at(locked({ network: 'network: {mode: private, egress: []}' }), 'SBX103'), [], 'nothing leaves');
  const f = factsOf(locked({ network: 'network: {mode: private, egress: [allow a.test]}' }));
  assert.deepEqual(f.egress!.rules.map((r) => [r.index, r.text, `${r.at.line}:${r.at.col}`]), [[1, 'allow a.test', '4:35']]);
  assert.deepEqual([f.egress!.at.line, f.egress!.at.col], [4, 26]);
});

test('a user namespace makes uid 0 no finding', () => {
  assert.deepEqual(at(locked({ user: null, namespaces: 'namespaces: {user: true}' }), 'SBX403'), []);
});

test('the score: 0 locked down, compounding, at most 10; a rule counts once', () => {
  const one = audit(factsOf(locked({ network: 'network: host' }))).score;
  assert.equal(one, 6);
  const two = audit(factsOf(locked({ volumes: 'volumes: ["./a:/a", "./b:/b"]' })));
  assert.equal(two.findings.length, 2);
  assert.equal(two.score, 1.5);
  const host = locked({ user: null, network: 'network: host', resources: null, security: 'security: {seccomp: unconfined, no_new_privileges: false}',
    cap_add: 'cap_add: [ALL]', volumes: 'volumes: ["/:/host", "/var/run/docker.sock:/var/run/docker.sock"]', namespaces: 'namespaces: {pid: host, ipc: host, uts: host, cgroup: host}', devices: 'devices: ["/dev/mem"]' });
  const all = audit(factsOf(host)).score;
  assert.equal(all, 10);
  assert.ok(scoreOf([]) === 0);
});

test('the samples: locked-down scores lowest (0), and each sample its own score', () => {
  const scores = Object.fromEntries(['busybox.yml', 'jenkins.yml', 'limits.yml', 'locked-down.yml', 'web.yml'].map((s) => [s, audit(factsOf(sampleText(s), { file: `samples/${s}` })).score]));
  assert.deepEqual(scores, { 'busybox.yml': 4.8, 'jenkins.yml': 1, 'limits.yml': 3.4, 'locked-down.yml': 0, 'web.yml': 2.5 });
  assert.ok(Object.entries(scores).every(([s, v]) => s === 'locked-down.yml' || v > scores['locked-down.yml']!));
  // The same on a cgroup v2 host: the facts do not depend on the layout.
  assert.deepEqual(audit(factsOf(sampleText('limits.yml'), { file: 'samples/limits.yml', host: V2_HOST })).score, 3.4);
});

test('text output: the score, then findings by severity, each FILE:LINE:COL  severity  id  message — fix', () => {
  const out = auditText(audit(factsOf(locked({ network: 'network: private', cap_add: 'cap_add: [SYS_ADMIN]', resources: null }))));
  const lines = out.trimEnd().split('\n');
  assert.match(lines[0]!, /^sandbox\.yml: exposure 7\.8\/10 \(0 is locked down, 10 is the host itself\), 5 findings$/);
  assert.match(lines[1]!, /^sandbox\.yml:6:11  critical  SBX301  CAP_SYS_ADMIN kept \(cap_add\): CAP_SYS_ADMIN allows mount, .* — remove SYS_ADMIN from `cap_add`/);
  assert.deepEqual(lines.slice(1).map((l) => l.split('  ')[1]), ['critical', 'medium', 'medium', 'low', 'low']);
  assert.deepEqual(lines.slice(1).map((l) => l.split('  ')[0]), ['sandbox.yml:6:11', 'sandbox.yml:1:1', 'sandbox.yml:1:1', 'sandbox.yml:1:1', 'sandbox.yml:4:10']);
  const json = JSON.parse(auditJson([audit(factsOf(locked({ network: 'network: host' })))]));
  assert.deepEqual(json[0].findings.map((f: { id: string; line: number; col: number; severity: string }) => [f.id, f.line, f.col, f.severity]), [['SBX101', 4, 10, 'critical']]);
});

// The official SARIF 2.1.0 schema (draft-07), vendored: see fixtures/sarif-schema-2.1.0.SOURCE.md.
const schema = JSON.parse(readFileSync(join(ROOT, 'test/unit/fixtures/sarif-schema-2.1.0.json'), 'utf8'));

function sarifValidator() {
  const ajv = new Ajv({ allErrors: true, strict: false });
  // The formats the schema uses, checked rather than ignored (ajv-formats is not a dependency).
  ajv.addFormat('uri', (s: string) => { try { return !!new URL(s).protocol; } catch { return false; } });
  ajv.addFormat('uri-reference', (s: string) => !/\s/.test(s));
  ajv.addFormat('date-time', (s: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i.test(s));
  return ajv.compile(schema);
}

test('the vendored schema is the official SARIF 2.1.0 one, and it rejects what it should', () => {
  assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
  assert.equal(schema.title, 'Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema');
  const validate = sarifValidator();
  assert.equal(validate({ version: '2.1.0', runs: [] }), true);
  assert.equal(validate({ version: '2.0.0', runs: [] }), false);
  assert.equal(validate({ version: '2.1.0', runs: [{ tool: { driver: { name: 'x' } }, results: [{ message: { text: 'm' }, locations: [{ physicalLocation: { region: { startLine: 0 } } }] }] }] }), false, 'startLine starts at 1');
});

test('SARIF: valid against the official schema, every rule described, each result at its line, relative to the repository root', () => {
  const file = 'samples/host.yml';
  const text = locked({ network: 'network: host', cap_add: 'cap_add: [SYS_ADMIN, NET_RAW]', volumes: 'volumes: ["./d:/d"]', resources: null });
  const a = audit(factsOf(text, { file }));
  const log = toSarif([a], { version: '0.1.0', repoRoot: '/repo', absPath: (f) => `/repo/${f}` }) as {
    version: string; runs: { tool: { driver: { rules: { id: string; properties: Record<string, unknown> }[] } }; results: { ruleId: string; ruleIndex: number; level: string; locations: { physicalLocation: { artifactLocation: { uri: string }; region: { startLine: number; startColumn: number } } }[] }[] }[];
  };
  const validate = sarifValidator();
  assert.equal(validate(log), true, JSON.stringify(validate.errors, null, 1));
  const run = log.runs[0]!;
  assert.deepEqual(run.tool.driver.rules.map((r) => r.id), RULES.map((r) => r.id));
  assert.ok(run.tool.driver.rules.every((r) => Number(r.properties['security-severity']) > 0));
  assert.equal(run.results.length, a.findings.length);
  const placed = run.results.map((r) => `${r.ruleId} ${r.level} ${r.locations[0]!.physicalLocation.artifactLocation.uri}:${r.locations[0]!.physicalLocation.region.startLine}:${r.locations[0]!.physicalLocation.region.startColumn}`);
  assert.deepEqual(placed, [
    'SBX101 error samples/host.yml:4:10',
    'SBX301 error samples/host.yml:6:11',
    'SBX601 warning samples/host.yml:1:1',
    'SBX602 warning samples/host.yml:1:1',
    'SBX311 warning samples/host.yml:6:22',
    'SBX207 warning samples/host.yml:7:11',
    'SBX603 note samples/host.yml:1:1',
  ]);
  for (const r of run.results) assert.equal(RULES[r.ruleIndex]!.id, r.ruleId);
});

test('SARIF uris: relative with forward slashes and encoded segments; a file outside the repository as a file URI', () => {
  assert.equal(repoUri('/repo/conf/my box.yml', '/repo'), 'conf/my%20box.yml');
  assert.equal(repoUri('/elsewhere/a.yml', '/repo'), 'file:///elsewhere/a.yml');
});

test('the README\'s rule table is the rule table', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const m = /<!-- rules: [^\n]*-->\n([\s\S]*?)<!-- \/rules -->/.exec(readme);
  assert.ok(m, 'the README has the rules table between its markers');
  const expected = ['| id | name | fires on | severity | weight |', '| --- | --- | --- | --- | --- |',
    ...RULES.map((r) => `| ${r.id} | \`${r.name}\` | ${r.title.replace(/\|/g, '\\|')} | ${r.severity} | ${r.weight} |`)].join('\n') + '\n';
  assert.equal(m[1], expected, 'regenerate the README table from src/audit/rules.ts');
});

test('the every-key fixture: each fact and finding located inside the file, SARIF valid, a diff with the locked base', () => {
  const file = 'test/integration/fixtures/every-key.yml';
  const bytes = readFileSync(join(ROOT, file));
  const r = loadSpec({ file, absFile: join(ROOT, file), bytes, env: {}, home: '/home/user', hostCpus: 2, readFile: (p) => { try { return readFileSync(p); } catch { return undefined; } } });
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), []);
  const parsed = parseConfig(file, bytes);
  const f = exposureFacts(compile(r.spec!, HYBRID_HOST).plan, r.spec!, locatorOf(file, parsed.value, parsed.locate));
  const a = audit(f);
  const lines = bytes.toString().split('\n').length;
  assert.ok(a.findings.length > 0);
  for (const x of a.findings) assert.ok(x.at.file === file && x.at.line >= 1 && x.at.line <= lines && x.at.col >= 1, `${x.id} at ${x.at.line}:${x.at.col}`);
  assert.ok(a.findings.some((x) => x.id === 'SBX209' && x.what.includes('/dev/fuse')));
  assert.ok(!a.findings.some((x) => x.id === 'SBX403'), 'uid 1000 in a user namespace');
  assert.equal(sarifValidator()(toSarif([a], { version: '0.1.0', repoRoot: ROOT, absPath: (p) => join(ROOT, p) })), true);
  const d = diffFacts(factsOf(locked()), f);
  assert.ok(d.changes.length > 0);
  assert.deepEqual(diffFacts(f, f).changes, []);
});

test('facts.ts is the only reader of step.args among the audit modules', () => {
  const files = [...readdirSync(join(ROOT, 'src/audit')).map((f) => `src/audit/${f}`), 'src/cli/audit.ts'].filter((f) => f !== 'src/audit/facts.ts');
  for (const f of files) assert.doesNotMatch(readFileSync(join(ROOT, f), 'utf8'), /\.args\b|\bargs\[/, f);
});
