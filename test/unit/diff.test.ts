// sandbox diff: for each kind of key, a pair of configs that loosens it and, reversed, tightens
// it; the lines on both sides; grouping by stage; the text, JSON and Markdown forms; and reading
// the old version of a file from git.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diffFacts, type Effect } from '../../src/audit/diff';
import { diffMarkdown, diffText, diffJson, lines } from '../../src/audit/render';
import { readAtRevision } from '../../src/cli/audit';
import { factsOf, locked } from '../helpers/audit';

const PROFILE = JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read', 'write', 'exit_group'], action: 'SCMP_ACT_ALLOW' }] });
const files = { '/project/p.json': PROFILE };
const diff = (a: string, b: string) => diffFacts(factsOf(a, { file: 'a.yml', files }), factsOf(b, { file: 'b.yml', files }));

// [kind, the config before, the config after (as changes to the locked base), the change expected].
const LOOSER: [string, Record<string, string | null>, Record<string, string | null>, RegExp][] = [
  ['network none → private', {}, { network: 'network: private' }, /^network none → private \(a\.yml:4 → b\.yml:4\)$/],
  ['network private → host', { network: 'network: private' }, { network: 'network: host' }, /^network private → host \(a\.yml:4 → b\.yml:4\)$/],
  ['port added', { network: 'network: private' }, { network: 'network: private', ports: 'ports: ["8080:80"]' }, /^port 8080→80\/tcp on every address added \(b\.yml:7\)$/],
  ['port moved onto every address', { network: 'network: private', ports: 'ports: ["127.0.0.1:8080:80"]' }, { network: 'network: private', ports: 'ports: ["8080:80"]' }, /^port 8080→80\/tcp on 127\.0\.0\.1 → on every address \(a\.yml:7 → b\.yml:7\)$/],
  ['namespace private → host', {}, { namespaces: 'namespaces: {pid: host}' }, /^pid namespace private → host \(default → b\.yml:7\)$/],
  ['namespace private → joined', {}, { namespaces: 'namespaces: {ipc: /proc/1/ns/ipc}' }, /^ipc namespace private → joined \(\/proc\/1\/ns\/ipc\) \(default → b\.yml:7\)$/],
  ['user namespace removed', { user: null, namespaces: 'namespaces: {user: true}' }, { user: null }, /^user namespace private → host \(a\.yml:6 → default\)$/],
  ['user → root', {}, { user: null }, /^user 1000:1000 → 0:0 \(root of the host\) \(a\.yml:3 → default\)$/],
  ['bind added', {}, { volumes: 'volumes: ["./d:/d:ro"]' }, /^bind of \/project\/d on \/d \(read-only\) added \(b\.yml:7\)$/],
  ['bind made writable', { volumes: 'volumes: ["./d:/d:ro"]' }, { volumes: 'volumes: ["./d:/d"]' }, /^bind of \/project\/d on \/d made writable \(a\.yml:7 → b\.yml:7\)$/],
  ['bind source changed', { volumes: 'volumes: ["./d:/d:ro"]' }, { volumes: 'volumes: ["/:/d:ro"]' }, /^bind on \/d \/project\/d → \/ \(a\.yml:7 → b\.yml:7\)$/],
  ['bind made shared', { volumes: 'volumes: ["./d:/d:ro"]' }, { volumes: 'volumes: ["./d:/d:ro,rshared"]' }, /^bind on \/d propagation rprivate → rshared \(a\.yml:7 → b\.yml:7\)$/],
  ['device added', {}, { devices: 'devices: ["/dev/fuse"]' }, /^device \/dev\/fuse as \/dev\/fuse \(rwm\) added \(b\.yml:7\)$/],
  ['device gains write', { devices: 'devices: ["/dev/fuse:/dev/fuse:r"]' }, { devices: 'devices: ["/dev/fuse:/dev/fuse:rw"]' }, /^device on \/dev\/fuse \/dev\/fuse \(r\) → \/dev\/fuse \(rw\) \(a\.yml:7 → b\.yml:7\)$/],
  ['capability added', {}, { cap_add: 'cap_add: [NET_ADMIN]' }, /^capability NET_ADMIN added \(b\.yml:7\)$/],
  ['capability dropped no more', { cap_drop: 'cap_drop: [CHOWN]' }, {}, /^capability CHOWN added \(default\)$/],
  ['no_new_privileges off', {}, { security: 'security: {read_only: true, no_new_privileges: false}' }, /^no_new_privileges on → off \(default → b\.yml:5\)$/],
  ['seccomp default → unconfined', {}, { security: 'security: {read_only: true, seccomp: unconfined}' }, /^seccomp default → unconfined \(default → b\.yml:5\)$/],
  ['seccomp profile → unconfined', { security: 'security: {read_only: true, seccomp: ./p.json}' }, { security: 'security: {read_only: true, seccomp: unconfined}' }, /^seccomp \/project\/p\.json → unconfined \(a\.yml:5 → b\.yml:5\)$/],
  ['seccomp default → a profile of its own', {}, { security: 'security: {read_only: true, seccomp: ./p.json}' }, /^seccomp default → \/project\/p\.json \(default → b\.yml:5\)$/],
  ['root made writable', {}, { security: null }, /^root file system read-only → writable \(a\.yml:5 → default\)$/],
  ['memory limit removed', {}, { resources: 'resources: {pids: 32, cpus: 1}' }, /^memory limit 64 MiB → none \(a\.yml:6 → default\)$/],
  ['memory limit raised', {}, { resources: 'resources: {memory: 1g, pids: 32, cpus: 1}' }, /^memory limit 64 MiB → 1024 MiB \(a\.yml:6 → b\.yml:6\)$/],
  ['pids limit removed', {}, { resources: 'resources: {memory: 64m, pids: -1, cpus: 1}' }, /^pids limit 32 → none \(a\.yml:6 → b\.yml:6\)$/],
  ['pids limit raised', {}, { resources: 'resources: {memory: 64m, pids: 64, cpus: 1}' }, /^pids limit 32 → 64 \(a\.yml:6 → b\.yml:6\)$/],
  ['CPU limit raised', {}, { resources: 'resources: {memory: 64m, pids: 32, cpus: 2}' }, /^CPU limit 1 CPUs → 2 CPUs \(a\.yml:6 → b\.yml:6\)$/],
  ['sysctl added', { network: 'network: private' }, { network: 'network: private', sysctls: 'sysctls: {net.ipv4.ip_forward: 1}' }, /^sysctl net\.ipv4\.ip_forward = 1 added \(b\.yml:7\)$/],
  ['masked path removed', { security: 'security: {read_only: true, masked_paths: [/proc/cpuinfo]}' }, {}, /^masked path \/proc\/cpuinfo removed \(a\.yml:5\)$/],
  ['egress policy removed', { network: 'network: {mode: private, egress: [allow a.test]}' }, { network: 'network: private' }, /^egress policy \(1 rule; whatever no rule allows is refused\) removed \(a\.yml:4\)$/],
  ['egress allow rule added', { network: 'network: {mode: private, egress: [allow a.test]}' }, { network: 'network: {mode: private, egress: [allow a.test, allow b.test:443]}' }, /^egress rule "allow b\.test:443\/tcp" added \(b\.yml:4\)$/],
  ['egress deny rule removed', { network: 'network: {mode: private, egress: [deny 10.0.0.0/8, allow a.test]}' }, { network: 'network: {mode: private, egress: [allow a.test]}' }, /^egress rule "deny 10\.0\.0\.0\/8" removed \(a\.yml:4\)$/],
  ['egress allow widened', { network: 'network: {mode: private, egress: [allow a.test:443]}' }, { network: 'network: {mode: private, egress: ["allow a.test:443,8443"]}' }, /^egress rule on a\.test 443\/tcp → 443,8443\/tcp \(a\.yml:4 → b\.yml:4\)$/],
  ['egress allow moved above a deny', { network: 'network: {mode: private, egress: [deny *.corp.test, allow jira.corp.test]}' }, { network: 'network: {mode: private, egress: [allow jira.corp.test, deny *.corp.test]}' }, /^egress rule "allow jira\.corp\.test" moved above egress rule "deny \*\.corp\.test" \(a\.yml:4 → b\.yml:4\)$/],
  ['insecure registry added', { command: null, image: 'image: reg.test:5000/app:1' }, { command: null, image: 'image: reg.test:5000/app:1', insecure_registries: 'insecure_registries: [reg.test:5000]' }, /^insecure registry reg\.test:5000 added \(b\.yml:7\)$/],
];

for (const [kind, a, b, change] of LOOSER) {
  test(`diff: ${kind} loosens, and the reverse tightens`, () => {
    const d = diff(locked(a), locked(b));
    const shown = d.changes.map((c) => `${c.text} (${lines(c)})`);
    const hit = d.changes.filter((_, i) => change.test(shown[i]!));
    assert.equal(hit.length, 1, `one change matches ${change}; got:\n${shown.join('\n')}`);
    assert.equal(hit[0]!.effect, 'looser' satisfies Effect);
    assert.equal(d.loosened, true);
    const back = diff(locked(b), locked(a));
    assert.ok(back.changes.length > 0);
    assert.deepEqual(back.changes.filter((c) => c.kind.split('.')[0] === hit[0]!.kind.split('.')[0]).map((c) => c.effect).filter((e) => e !== 'tighter'),
      // Moving off a profile of one's own onto the default tightens too: only a move onto a custom
      // profile is taken as looser, since it may allow more.
      [], `the reverse of ${kind} tightens`);
    if (!back.changes.some((c) => c.effect === 'looser')) assert.equal(back.loosened, false);
  });
}

test('diff of a config with itself: nothing changed, nothing loosened', () => {
  const d = diff(locked({ network: 'network: private', cap_add: 'cap_add: [NET_ADMIN]' }), locked({ network: 'network: private', cap_add: 'cap_add: [NET_ADMIN]' }));
  assert.deepEqual(d.changes, []);
  assert.equal(d.loosened, false);
  assert.match(diffText(d), /no isolation change/);
});

test('a neutral change (another unprivileged user, another image) loosens nothing', () => {
  const d = diff(locked({ user: 'user: "1000:1000"' }), locked({ user: 'user: "2000:2000"' }));
  assert.deepEqual(d.changes.map((c) => [c.text, c.effect]), [['user 1000:1000 → 2000:2000', 'neutral']]);
  assert.equal(d.loosened, false);
});

test('every other cgroup write (a weight, a reservation) is shown at its line, neutral, with no code of its own per key', () => {
  const base = 'resources: {memory: 64m, pids: 32, cpus: 1';
  const d = diff(locked({ resources: `${base}, cpu_shares: 512}` }), locked({ resources: `${base}, cpu_shares: 2048, memory_reservation: 32m}` }));
  const shown = d.changes.map((c) => [c.text, c.effect, lines(c)]);
  assert.deepEqual(shown.filter(([t]) => /cpu\.shares|memory\.soft/.test(t)), [
    ['cgroup memory.soft_limit_in_bytes = 33554432 added', 'neutral', 'b.yml:6'],
    ['cgroup cpu.shares 512 → 2048', 'neutral', 'a.yml:6 → b.yml:6'],
  ]);
  assert.equal(d.loosened, false);
});

test('text: the score before → after, the changes grouped by stage in the stages\' order, a verdict', () => {
  const d = diff(locked(), locked({ network: 'network: private', ports: 'ports: ["8080:80"]', cap_add: 'cap_add: [NET_ADMIN]', resources: 'resources: {pids: 32, cpus: 1}' }));
  const out = diffText(d);
  assert.equal(out, [
    'isolation changes from a.yml to b.yml',
    'exposure score 0.0 → 4.9 (looser)',
    '',
    '2. cgroup: create the cgroup and write the limits',
    '   + memory limit 64 MiB → none (a.yml:6 → default)',
    '',
    '5. network: loopback, the sandbox\'s interface, port maps',
    '   + network none → private (a.yml:4 → b.yml:4)',
    '   + port 8080→80/tcp on every address added (b.yml:7)',
    '',
    '8. security: capabilities, no_new_privs, seccomp, rlimits',
    '   + capability NET_ADMIN added (b.yml:8)',
    '',
    '4 changes loosen isolation, 0 tighten it: ask for a second review',
    '',
  ].join('\n'));
  const j = JSON.parse(diffJson(d));
  assert.deepEqual([j.before.score, j.after.score, j.loosened, j.changes.length], [0, 4.9, true, 4]);
  assert.deepEqual(j.changes[0], { stage: 'cgroup', kind: 'memory', text: 'memory limit 64 MiB → none', effect: 'looser', before: { file: 'a.yml', line: 6, col: 21, origin: 'file' }, after: { file: 'b.yml', line: 6, col: 1, origin: 'default' } });
});

test('markdown: a title, the score in bold, a legend, and one table per stage with both lines', () => {
  const d = diff(locked({ cap_add: 'cap_add: [NET_ADMIN]' }), locked({ network: 'network: private', security: 'security: {read_only: true, seccomp: unconfined}' }));
  const md = diffMarkdown(d);
  const rows = md.split('\n');
  assert.equal(rows[0], '### sandbox: isolation changes in `b.yml` (from `a.yml`)');
  assert.match(rows[2]!, /^\*\*exposure score 3\.0 → 5\.3 \(looser\)\*\*$/);
  assert.ok(rows.includes('#### 5. network: loopback, the sandbox\'s interface, port maps'));
  assert.ok(rows.includes('#### 8. security: capabilities, no_new_privs, seccomp, rlimits'));
  assert.ok(rows.includes('| | change | before | after |'));
  assert.ok(rows.includes('| 🔓 | network none → private | `a.yml:4` | `b.yml:4` |'));
  assert.ok(rows.includes('| 🔒 | capability NET_ADMIN removed | `a.yml:7` |  |'));
  assert.ok(rows.includes('| 🔓 | seccomp default → unconfined | `default` | `b.yml:5` |'));
  // Every table row has four cells: a pipe in a value cannot break the table.
  for (const l of rows.filter((x) => x.startsWith('| '))) assert.equal(l.replace(/\\\|/g, '').split('|').length, 6, l);
  assert.match(diffMarkdown(diff(locked(), locked())), /no isolation change/);
});

test('readAtRevision: the file as committed, from its own repository, named REV:path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sandbox-diff-'));
  try {
    const g = (...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'init.defaultBranch=main', ...args], { cwd: dir, stdio: 'pipe' });
    g('init', '-q');
    execFileSync('mkdir', ['-p', join(dir, 'conf')]);
    writeFileSync(join(dir, 'conf/sandbox.yml'), locked());
    g('add', '.');
    g('commit', '-qm', 'first');
    writeFileSync(join(dir, 'conf/sandbox.yml'), locked({ network: 'network: host' }));
    const old = readAtRevision('conf/sandbox.yml', 'HEAD', dir);
    assert.equal(old.file, 'HEAD:conf/sandbox.yml');
    assert.equal(old.absFile, join(dir, 'conf/sandbox.yml'));
    assert.equal(Buffer.from(old.bytes).toString(), locked());
    assert.throws(() => readAtRevision('conf/sandbox.yml', 'no-such-rev', dir), /cannot read conf\/sandbox\.yml from git: no-such-rev:conf\/sandbox\.yml/);
    assert.throws(() => readAtRevision('conf/missing.yml', 'HEAD', dir), /no such file/);
    const out = mkdtempSync(join(tmpdir(), 'sandbox-nogit-'));
    writeFileSync(join(out, 'x.yml'), locked());
    assert.throws(() => readAtRevision('x.yml', 'HEAD', out), /not inside a git repository/);
    rmSync(out, { recursive: true });
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
