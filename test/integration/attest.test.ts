// Attestation, seen from outside the engine: every step of every sample that runs offline, and of
// the every-key fixture, is read back from /proc before the command starts and verified (or marked
// not checkable, with the reason); a step applied wrongly on purpose (SANDBOX_TEST_CORRUPT) stops
// the run with exit 125, naming the step, what was expected and what was found, and leaves nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Plan } from '../../src/plan/types';
import type { Verdict } from '../../src/plan/types';
import { hasBusyboxRoot, hasEngine, hasNft, isRoot, leftovers, needs, sandbox } from '../helpers/sandbox';

const ready = (t: import('node:test').TestContext) => needs(t, 'root', isRoot) && needs(t, 'the native engine', hasEngine) && needs(t, 'the busybox root (busybox-static)', hasBusyboxRoot);
const dir = mkdtempSync(join(tmpdir(), 'sbx-attest-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

/** Steps whose kinds the host can read back: each of these must be verified wherever it appears. */
const MUST_VERIFY = ['cgroup.set', 'cgroup.attach', 'idmap', 'ns.new', 'ns.host', 'net.none', 'net.loopback', 'net.veth', 'net.address', 'mount.private', 'mount.root',
  'mount.pivot', 'mount.proc', 'mount.dev', 'mount.devpts', 'mount.tmpfs.dev', 'mount.tmpfs', 'mount.bind', 'mount.netfile', 'mount.sys', 'mount.cgroup', 'mount.link',
  'dev.links', 'dev.node', 'mount.mask', 'mount.readonly', 'mount.root-readonly', 'fds.close', 'user.ids', 'user.groups', 'umask', 'rlimit', 'caps.apply', 'cap.keep', 'nnp', 'nnp.off', 'seccomp', 'seccomp.off'];

const PRIVATE_NETWORK = new Set(['samples/web.yml', 'test/integration/fixtures/private-network.yml']);
for (const file of ['samples/busybox.yml', 'samples/limits.yml', 'samples/locked-down.yml', 'samples/web.yml', 'test/integration/fixtures/every-key.yml', 'test/integration/fixtures/private-network.yml']) {
  test(`every step of ${file} is verified from /proc before its command starts, or not checkable with a reason`, (t) => {
    // A private network's host side is made with nft (and ip): without it up refuses the file.
    if (!ready(t) || (PRIVATE_NETWORK.has(file) && !needs(t, 'nftables (apt-get install nftables)', hasNft))) return;
    const out = join(dir, 'attest.json');
    const plan = JSON.parse(sandbox(['plan', '--json', file]).out) as Plan;
    // -T: busybox.yml asks for a terminal with stdin open, which the test's pipe cannot give.
    const r = sandbox(['up', '-q', '-T', '--name', 'attest', '--attest', out, file, '--', '/bin/true']);
    assert.equal(r.code, 0, r.err);
    const a = JSON.parse(readFileSync(out, 'utf8')) as { digest: string; attestation: Verdict[] };
    // The run's own plan (its name and command are the command line's), by its digest.
    assert.match(a.digest, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(a.attestation.map((v) => v.step), plan.steps.map((s) => s.id), 'one verdict for each step, in order');
    assert.deepEqual(a.attestation.filter((v) => v.verdict === 'mismatch'), []);
    for (const v of a.attestation) assert.ok(v.detail.length > 5, `${v.step}: says what`);
    for (const v of a.attestation.filter((x) => x.verdict === 'not checkable')) assert.ok(v.detail.length > 30, `${v.step}: says why not`);
    const kindOf = new Map(plan.steps.map((s) => [s.id, s.kind]));
    const notVerified = a.attestation.filter((v) => v.verdict !== 'verified' && MUST_VERIFY.includes(kindOf.get(v.step)!)).map((v) => `${v.step}: ${v.detail}`);
    assert.deepEqual(notVerified, []);
    assert.deepEqual(leftovers('attest'), []);
  });
}

const UNCONFINED = `version: 1\nname: attest-nnp\nrootfs: {type: dir, path: ../../../samples/rootfs/busybox}\ncommand: [/bin/true]\nnetwork: none\nsecurity: {seccomp: unconfined}\n`;

// One step of each kind the engine can apply wrongly on purpose, in a config that has it.
const CORRUPT: [string, string, RegExp][] = [
  ['cgroup:pids', 'samples/locked-down.yml', /expected pids\.max = 16, found pids\.max = 32/],
  ['net:lo', 'samples/locked-down.yml', /expected lo up with 127\.0\.0\.1/],
  ['mount:/usr', 'samples/locked-down.yml', /expected \/usr mounted \(ro,nodev\), found \/usr writable/],
  ['mount:/proc', 'samples/locked-down.yml', /found \/proc no nosuid/],
  ['mount:/dev', 'samples/locked-down.yml', /found \/dev no nosuid/],
  ['dev:zero', 'samples/locked-down.yml', /expected \/dev\/zero a character device 1:5, found absent/],
  ['link:/bin', 'samples/locked-down.yml', /expected \/bin → usr\/bin, found absent/],
  ['mount:/dev/pts', 'samples/locked-down.yml', /found nothing on \/dev\/pts/],
  ['mount:/dev/shm', 'samples/locked-down.yml', /found \/dev\/shm no nosuid/],
  ['dev:links', 'samples/locked-down.yml', /expected \/dev\/fd, stdin, stdout, stderr linked/],
  ['mount:/tmp', 'samples/locked-down.yml', /found \/tmp no nosuid/],
  ['mask:/proc/keys', 'samples/locked-down.yml', /expected \/proc\/keys covered, found \/proc\/keys visible/],
  ['ro:/proc/sys', 'samples/locked-down.yml', /expected \/proc\/sys read-only/],
  ['mount:/:ro', 'samples/locked-down.yml', /expected \/ mounted \(ro\), found \/ writable/],
  ['user:groups', 'samples/locked-down.yml', /expected groups none, found groups 4242/],
  ['user:ids', 'samples/locked-down.yml', /expected uid 65534, gid 65534, found uid 65535/],
  ['umask', 'samples/locked-down.yml', /expected umask 0022, found umask 0055/],
  ['rlimit:nofile', 'samples/locked-down.yml', /expected nofile 64\/64, found 63\/64/],
  ['caps', 'samples/locked-down.yml', /CAP_CHOWN out of the bounding set, found in it|expected CapBnd/],
  ['seccomp', 'samples/locked-down.yml', /expected a seccomp filter \(mode 2\), found Seccomp 0/],
  ['nnp', 'UNCONFINED', /expected no_new_privs on, found NoNewPrivs 0/],
];

test('a step applied wrongly is caught before the command starts: exit 125, the step, expected and found, nothing left', (t) => {
  if (!ready(t)) return;
  const unconfined = join(process.cwd(), 'test/integration/fixtures/.attest-unconfined.yml');
  writeFileSync(unconfined, UNCONFINED);
  t.after(() => rmSync(unconfined, { force: true }));
  const failures: string[] = [];
  for (const [id, cfg, found] of CORRUPT) {
    const file = cfg === 'UNCONFINED' ? unconfined : cfg;
    const r = sandbox(['up', '-q', '--name', 'attest-bad', file, '--', '/bin/sh', '-c', 'echo the command ran'], { env: { SANDBOX_TEST_CORRUPT: id } });
    if (r.code !== 125) failures.push(`${id}: exit ${r.code}: ${r.err}`);
    else if (r.out.includes('the command ran')) failures.push(`${id}: the command ran`);
    else if (!r.err.includes(`step ${id} (`) || !/the attestation found it not applied: expected /.test(r.err) || !found.test(r.err)) failures.push(`${id}: ${r.err.trim()}`);
    const left = leftovers('attest-bad');
    if (left.length) failures.push(`${id}: left ${left.join('; ')}`);
  }
  assert.deepEqual(failures, []);
});

test('inspect shows the attestation of a detached sandbox', (t) => {
  if (!ready(t)) return;
  t.after(() => { sandbox(['down', 'attest-d']); });
  const up = sandbox(['up', '-q', '-d', '--name', 'attest-d', 'samples/locked-down.yml', '--', '/bin/sleep', '30']);
  assert.equal(up.code, 0, up.err);
  const text = sandbox(['inspect', 'attest-d']);
  assert.match(text.out, /^attested  \d+ steps verified from \/proc before the command started, \d+ not checkable/m);
  const json = JSON.parse(sandbox(['inspect', '--json', 'attest-d']).out) as { attestation: Verdict[] };
  assert.ok(json.attestation.some((v) => v.step === 'caps' && v.verdict === 'verified'));
});
