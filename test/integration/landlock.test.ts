// Landlock as a second wall behind the `paths` mounts (issue 25, part 3), from inside a
// `rootfs: host` sandbox: a normal run still works (sh, python3, curl, writes where the file
// allows them), a write outside the writable paths is refused; and with one read-only bind made
// writable by the test-only switch SANDBOX_TEST_WRITABLE (the mount rule "forgotten", as the
// attestation confirms), a write there is still refused, by Landlock alone: EACCES, where the
// mount says EROFS. Rootless too. The folders are under /var/tmp: the sandbox's /tmp is a
// writable tmpfs, under which a Landlock rule would grant everything.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Verdict } from '../../src/plan/types';
import { loadLibSbx } from '../../src/ffi/libsbx';
import { hasEngine, isRoot, leftovers, needs, sandbox } from '../helpers/sandbox';
import { ROOT } from '../helpers/load';
import { canMakeUsers, hasUidmap, makeUser, removeAllUsers, sandboxAs } from '../helpers/users';

// The kernel's own answer (landlock_create_ruleset's version query, as the probe asks it), not
// securityfs's lsm list, which is not mounted on every host.
process.env.SANDBOX_LIBSBX ??= join(ROOT, 'native/build/libsbx.so');
const landlockAbi = (() => { try { return loadLibSbx().landlockAbi(); } catch { return 0; } })();
const ready = (t: import('node:test').TestContext) => needs(t, 'root', isRoot) && needs(t, 'the native engine', hasEngine) && needs(t, 'Landlock in the kernel (landlock_create_ruleset)', landlockAbi > 0);

/** Each line: `LABEL: what the shell said` (empty when it worked). */
const SCRIPT = (dir: string) => [
  'w() { printf "%s: " "$1"; ( echo changed > "$2" ) 2>&1 | sed "s/.*: //" | tr -d "\\n"; echo; }',
  `w rw ${dir}/w/out.txt`,
  `w ro ${dir}/r/out.txt`,
  'w tmp /tmp/out.txt',
  'printf "root: "; ( mkdir /made ) 2>&1 | sed "s/.*: //" | tr -d "\\n"; echo',
  `echo "read: $(cat ${dir}/r/data)"`,
  'echo "python: $(python3 -c "print(6 * 7)")"',
  'echo "curl: $(curl -s file:///etc/hostname | wc -c)"',
  `echo "mv: $(mkdir ${dir}/w/a ${dir}/w/b && echo x > ${dir}/w/a/f && mv ${dir}/w/a/f ${dir}/w/b/f && cat ${dir}/w/b/f)"`,
].join('\n');

const FILE = (dir: string, name: string) => [
  'version: 1', `name: ${name}`, 'rootfs: host', 'network: none',
  'paths:', '  read_write: [./w]', '  read_only: [./r]',
  `command: [/bin/sh, -c, ${JSON.stringify(SCRIPT(dir))}]`, '',
].join('\n');

function project(parent: string): string {
  const dir = mkdtempSync(join(parent, 'sbx-landlock-'));
  for (const d of ['w', 'r']) mkdirSync(join(dir, d));
  writeFileSync(join(dir, 'r/data'), 'DATA');
  return dir;
}
const said = (out: string) => Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
const NORMAL = { rw: '', tmp: '', root: 'Permission denied', read: 'DATA', python: '42', mv: 'x' };

test('Landlock with the mounts: a normal run works; a write outside the writable paths is refused; the plan says which rules Landlock holds', { timeout: 120_000 }, (t) => {
  if (!ready(t)) return;
  const dir = project('/var/tmp');
  const file = join(dir, 'sandbox.yml');
  writeFileSync(file, FILE(dir, 'landlock-it'));
  try {
    const plan = sandbox(['plan', file]);
    assert.equal(plan.code, 0, plan.err);
    assert.match(plan.out, new RegExp(`landlock +Landlock ABI \\d+, .*write only under /proc /dev /dev/shm /tmp /run ${dir}/w; .*also refuses writes to ${dir}/r\\.`));
    const attest = join(dir, 'attest.json');
    const r = sandbox(['up', '-q', '-T', '--attest', attest, file]);
    assert.equal(r.code, 0, `${r.err}\n${r.out}`);
    const out = said(r.out);
    // The read-only bind refuses first (EROFS); the tmpfs root's mount would let root make /made: Landlock refuses it.
    assert.deepEqual(out, { ...NORMAL, ro: 'Read-only file system', curl: out.curl });
    assert.ok(Number(out.curl) > 0, r.out);
    const verdicts = (JSON.parse(readFileSync(attest, 'utf8')) as { attestation: Verdict[] }).attestation;
    assert.deepEqual(verdicts.find((v) => v.step === 'landlock'), { step: 'landlock', verdict: 'verified', detail: 'the child, once restricted, was refused /.sbx-landlock-probe (EACCES), which its mounts allow: its report' });
    assert.equal(readFileSync(join(dir, 'w/out.txt'), 'utf8'), 'changed\n');
    assert.equal(existsSync(join(dir, 'r/out.txt')), false);
    assert.deepEqual(leftovers('landlock-it'), []);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('with the read-only bind made writable (SANDBOX_TEST_WRITABLE), Landlock alone refuses the write: EACCES, not EROFS', { timeout: 120_000 }, (t) => {
  if (!ready(t)) return;
  const dir = project('/var/tmp');
  const file = join(dir, 'sandbox.yml');
  writeFileSync(file, FILE(dir, 'landlock-skip'));
  try {
    const attest = join(dir, 'attest.json');
    const r = sandbox(['up', '-q', '-T', '--attest', attest, file], { env: { SANDBOX_TEST_WRITABLE: `path:${dir}/r` } });
    assert.equal(r.code, 0, `${r.err}\n${r.out}`);
    const out = said(r.out);
    assert.deepEqual(out, { ...NORMAL, ro: 'Permission denied', curl: out.curl });
    // The mount was writable indeed: the attestation read it back from the sandbox's mountinfo.
    const verdicts = (JSON.parse(readFileSync(attest, 'utf8')) as { attestation: Verdict[] }).attestation;
    assert.match(verdicts.find((v) => v.step === `path:${dir}/r`)!.detail, /mounted \(rw,/);
    assert.equal(existsSync(join(dir, 'r/out.txt')), false);
    // A control without Landlock's rule: the switch alone, on a file without `paths:`, is refused.
    const bad = sandbox(['up', '-q', '-T', file], { env: { SANDBOX_TEST_WRITABLE: 'mount:/proc' } });
    assert.notEqual(bad.code, 0);
    assert.match(bad.err, /SANDBOX_TEST_WRITABLE: mount:\/proc is not a read-only bind/);
    assert.deepEqual(leftovers('landlock-skip'), []);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

after(() => { if (canMakeUsers && hasUidmap) removeAllUsers(); });

test('rootless: the same file, the same wall', { timeout: 180_000 }, (t) => {
  if (!ready(t) || !needs(t, 'users and newuidmap', canMakeUsers && hasUidmap)) return;
  const u = makeUser('sll');
  const dir = join(`/home/${u.name}`, 'proj');
  for (const d of [dir, join(dir, 'w'), join(dir, 'r')]) { mkdirSync(d, { recursive: true }); chownSync(d, u.uid, u.gid); }
  writeFileSync(join(dir, 'r/data'), 'DATA');
  const file = join(dir, 'sandbox.yml');
  writeFileSync(file, FILE(dir, 'landlock-rl'));
  chownSync(file, u.uid, u.gid);
  const r = sandboxAs(u, ['up', '-q', '-T', file], { env: { SANDBOX_TEST_WRITABLE: `path:${dir}/r` } });
  assert.equal(r.code, 0, `${r.err}\n${r.out}`);
  const out = said(r.out);
  assert.deepEqual(out, { ...NORMAL, ro: 'Permission denied', curl: out.curl });
  assert.equal(existsSync(join(dir, 'r/out.txt')), false);
});
