// The delegation probe's walk over a fake cgroup tree, doctor's row, the path a rootless sandbox's
// cgroup gets, and Cgroup.create/remove on a delegated path, on a scratch folder standing in for the mount.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeDelegation, ownCgroup, walkDelegation, type CgroupFsReader } from '../../src/engine/probe';
import { Cgroup } from '../../src/host/cgroup';
import { cgroupPathFor } from '../../src/plan/paths';
import { HYBRID_HOST, ROOTLESS_HOST, V2_HOST } from '../helpers/load';
import type { HostFeatures } from '../../src/plan/types';

/** A cgroup tree as [path, owner uid, files the caller may write]. */
function fakeTree(rows: [string, number, string[]][]): CgroupFsReader {
  const byPath = new Map(rows.map(([p, uid, w]) => [p, { uid, w }]));
  return {
    owner: (p) => byPath.get(p)?.uid,
    writable: (p) => {
      const i = p.lastIndexOf('/');
      return byPath.get(p.slice(0, i))?.w.includes(p.slice(i + 1)) ?? false;
    },
  };
}
const ALL = ['cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads'];
const SVC = 'user.slice/user-1000.slice/user@1000.service';

/** What systemd makes: user.slice and user-1000.slice are root's, user@1000.service is chowned
 * (Delegate=yes) and everything the user manager makes below it is the user's. */
const systemd = fakeTree([
  ['user.slice', 0, []],
  ['user.slice/user-1000.slice', 0, []],
  ['user.slice/user-1000.slice/session-2.scope', 0, []],
  [SVC, 1000, ALL],
  [`${SVC}/app.slice`, 1000, ALL],
  [`${SVC}/app.slice/run-r1.scope`, 1000, ALL],
  [`${SVC}/init.scope`, 1000, ALL],
]);

test('delegation: from a scope of the user manager up to user@UID.service, and no higher', () => {
  const w = walkDelegation(`${SVC}/app.slice/run-r1.scope`, 1000, systemd);
  assert.equal(w.root, SVC);
  assert.deepEqual(w.stop, { path: 'user.slice/user-1000.slice', why: 'is owned by uid 0, not by you (uid 1000)' });
  assert.equal(walkDelegation(SVC, 1000, systemd).root, SVC);
});

test('delegation: none from a login session, whose scope is root\'s, though the user manager\'s is delegated beside it', () => {
  const w = walkDelegation('user.slice/user-1000.slice/session-2.scope', 1000, systemd);
  assert.equal(w.root, undefined);
  assert.equal(w.stop?.path, 'user.slice/user-1000.slice/session-2.scope');
  assert.match(w.stop!.why, /uid 0/);
});

test('delegation: another user is given nothing in the first one\'s subtree', () => {
  assert.equal(walkDelegation(`${SVC}/app.slice/run-r1.scope`, 1001, systemd).root, undefined);
});

test('delegation: a folder that is owned but whose subtree_control is not writable ends the walk below it', () => {
  const r = fakeTree([
    ['a', 0, []],
    ['a/b', 1000, ['cgroup.procs']],
    ['a/b/c', 1000, ALL],
    ['a/b/c/d', 1000, ALL],
  ]);
  const w = walkDelegation('a/b/c/d', 1000, r);
  assert.equal(w.root, 'a/b/c');
  assert.deepEqual(w.stop, { path: 'a/b', why: 'is yours, but its cgroup.subtree_control is not writable by you' });
  // Nor does cgroup.procs alone make a delegation, nor ownership alone.
  assert.equal(walkDelegation('x', 1000, fakeTree([['x', 1000, ['cgroup.subtree_control']]])).root, undefined);
  assert.equal(walkDelegation('x', 1000, fakeTree([['x', 1000, []]])).root, undefined);
});

test('delegation: the walk never skips a folder that is not the caller\'s to reach one above that is', () => {
  const r = fakeTree([['a', 1000, ALL], ['a/b', 0, []], ['a/b/c', 1000, ALL]]);
  assert.equal(walkDelegation('a/b/c', 1000, r).root, 'a/b/c');
  assert.equal(walkDelegation('a/b', 1000, r).root, undefined);
});

test('delegation: the root cgroup is never one, even for a reader that says it is the caller\'s', () => {
  const w = walkDelegation('', 1000, fakeTree([['', 1000, ALL]]));
  assert.equal(w.root, undefined);
  assert.match(w.stop!.why, /root cgroup/);
  // A top-level folder can be the delegation root.
  assert.equal(walkDelegation('top/leaf', 1000, fakeTree([['top', 1000, ALL], ['top/leaf', 1000, ALL]])).root, 'top');
});

test('delegation: a folder that does not exist (a cgroup removed under the caller) is none', () => {
  assert.equal(walkDelegation('gone/x', 1000, fakeTree([])).root, undefined);
});

test('own cgroup: the 0:: line of /proc/self/cgroup, on v2 and on a hybrid host', () => {
  assert.equal(ownCgroup(`0::/${SVC}/app.slice/run-r1.scope\n`), `${SVC}/app.slice/run-r1.scope`);
  assert.equal(ownCgroup('0::/\n'), '');
  assert.equal(ownCgroup('9:name=systemd:/x\n4:memory:/process_api/4f\n0::/y.scope\n'), 'y.scope');
  assert.equal(ownCgroup('4:memory:/a\n1:cpu:/\n'), undefined);
});

const rootless = (cgroup: Partial<HostFeatures['cgroup']>): HostFeatures => ({ ...ROOTLESS_HOST, cgroup: { ...V2_HOST.cgroup, controllers: [], ...cgroup } });

test('cgroup path: sandbox/NAME for root, under the delegation root without root, none without a delegation', () => {
  assert.equal(cgroupPathFor(V2_HOST, 'web'), 'sandbox/web');
  assert.equal(cgroupPathFor(HYBRID_HOST, 'web'), 'sandbox/web');
  assert.equal(cgroupPathFor(rootless({ delegated: SVC }), 'web'), `${SVC}/sandbox/web`);
  assert.equal(cgroupPathFor(rootless({}), 'web'), '');
});

test('doctor: the limits row names the delegation, or why there is none and what to do', () => {
  assert.equal(describeDelegation(rootless({ delegated: SVC, controllers: ['cpu', 'memory', 'pids'] }), { own: `${SVC}/app.slice/run-r1.scope`, uid: 1000, reader: systemd }),
    `cgroup v2, delegated at /${SVC}, controllers cpu memory pids`);
  // From a login session beside the user manager: the way out is to run under the user manager.
  assert.equal(describeDelegation(rootless({}), { own: 'user.slice/user-1000.slice/session-2.scope', uid: 1000, reader: systemd }),
    'no delegated subtree: your cgroup /user.slice/user-1000.slice/session-2.scope is owned by uid 0, not by you (uid 1000); ' +
    'your user manager\'s /user.slice/user-1000.slice/user@1000.service is delegated to you: run sandbox under it with `systemd-run --user --scope sandbox …`');
  // Without a user manager that has it: ask for Delegate=yes.
  assert.match(describeDelegation(rootless({}), { own: 'system.slice/cron.service', uid: 1001, reader: systemd }),
    /^no delegated subtree: your cgroup \/system.slice\/cron.service does not exist; ask for Delegate=yes \(systemd: `systemctl edit user@.service`, \[Service\] Delegate=yes\)/);
  assert.match(describeDelegation(ROOTLESS_HOST, { own: '', uid: 1000, reader: systemd }), /^cgroup hybrid cannot be delegated to a user/);
  assert.match(describeDelegation(rootless({}), { own: '', uid: 1001, reader: systemd }), /^no delegated subtree: your cgroup \/ is the root cgroup, which only root may write; ask for Delegate=yes/);
});

/** A scratch folder standing in for the unified mount: folders with cgroup.subtree_control files. */
function scratchMount(levels: string[]): string {
  const m = mkdtempSync(join(tmpdir(), 'rlcg-unit-'));
  for (const l of ['', ...levels]) {
    mkdirSync(join(m, l), { recursive: true });
    writeFileSync(join(m, l, 'cgroup.subtree_control'), '');
  }
  return m;
}

test('Cgroup.create on a delegated path enables controllers from the delegation root down, never above it', async (t) => {
  const m = scratchMount(['a', 'a/d', 'a/d/leaf']);
  t.after(() => rmSync(m, { recursive: true, force: true }));
  const cg = new Cgroup({ layout: 'v2', controllers: ['memory', 'pids', 'hugetlb'], swap: false, mounts: { unified: m }, delegated: 'a/d' }, 'a/d/sandbox/web');
  cg.create();
  assert.ok(existsSync(join(m, 'a/d/sandbox/web')));
  assert.equal(readFileSync(join(m, 'a/d/cgroup.subtree_control'), 'utf8'), '+memory +pids');
  assert.equal(readFileSync(join(m, 'cgroup.subtree_control'), 'utf8'), '');
  assert.equal(readFileSync(join(m, 'a/cgroup.subtree_control'), 'utf8'), '');
  // A second sandbox beside it reuses sandbox/; an existing leaf is an error, as for root.
  new Cgroup({ layout: 'v2', controllers: ['memory'], swap: false, mounts: { unified: m }, delegated: 'a/d' }, 'a/d/sandbox/db').create();
  assert.throws(() => cg.create(), /EEXIST/);
  await cg.remove();
  assert.ok(!existsSync(join(m, 'a/d/sandbox/web')));
  assert.ok(existsSync(join(m, 'a/d/sandbox/db')));
});

test('Cgroup.remove of a delegated path stops below the delegation root, even when it is left empty', async (t) => {
  const m = mkdtempSync(join(tmpdir(), 'rlcg-unit-'));
  t.after(() => rmSync(m, { recursive: true, force: true }));
  mkdirSync(join(m, 'a/d'), { recursive: true });
  const cg = new Cgroup({ layout: 'v2', controllers: ['memory'], swap: false, mounts: { unified: m }, delegated: 'a/d' }, 'a/d/sandbox/web');
  cg.create();
  await cg.remove();
  assert.ok(!existsSync(join(m, 'a/d/sandbox')), 'the shared sandbox/ folder goes once empty');
  assert.ok(existsSync(join(m, 'a/d')), 'the delegation root stays');
  // Root's path on the same layout still removes its sandbox/ parent and nothing above.
  const asRoot = new Cgroup({ layout: 'v2', controllers: ['memory'], swap: false, mounts: { unified: m } }, 'sandbox/web');
  asRoot.create();
  await asRoot.remove();
  assert.ok(!existsSync(join(m, 'sandbox')) && existsSync(m));
});

test('Cgroup.remove with a kept level: the levels the run made go, the one that was there and those above stay (v1 and v2)', async (t) => {
  const m = mkdtempSync(join(tmpdir(), 'keepcg-unit-'));
  t.after(() => rmSync(m, { recursive: true, force: true }));
  mkdirSync(join(m, 'memory/batch'), { recursive: true });
  mkdirSync(join(m, 'pids'), { recursive: true });
  const v1 = { layout: 'hybrid' as const, controllers: ['memory', 'pids'], swap: false, mounts: { memory: join(m, 'memory'), pids: join(m, 'pids') } };
  const made = new Cgroup(v1, 'batch/jobs/web');
  // memory has batch/, pids has nothing: the deepest level there in either is kept.
  const keep = made.existingAncestor();
  assert.equal(keep, 'batch');
  made.create();
  await new Cgroup(v1, 'batch/jobs/web', keep).remove();
  assert.ok(existsSync(join(m, 'memory/batch')) && !existsSync(join(m, 'memory/batch/jobs')));
  assert.ok(existsSync(join(m, 'pids/batch')), 'kept in every hierarchy: the undo record has one level');
  // The shared sandbox/ parent is never a kept level: it goes with the last sandbox in it.
  mkdirSync(join(m, 'memory/sandbox'));
  assert.equal(new Cgroup(v1, 'sandbox/web').existingAncestor(), '');
  mkdirSync(join(m, 'u/a/d/sandbox'), { recursive: true });
  assert.equal(new Cgroup({ layout: 'v2', controllers: ['memory'], swap: false, mounts: { unified: join(m, 'u') }, delegated: 'a/d' }, 'a/d/sandbox/web').existingAncestor(), '');
  const v2 = { layout: 'v2' as const, controllers: ['memory'], swap: false, mounts: { unified: join(m, 'u') } };
  mkdirSync(join(m, 'u/default'), { recursive: true });
  const c2 = new Cgroup(v2, 'default/c1');
  assert.equal(c2.existingAncestor(), 'default');
  c2.create();
  await new Cgroup(v2, 'default/c1', 'default').remove();
  assert.ok(existsSync(join(m, 'u/default')) && !existsSync(join(m, 'u/default/c1')));
});
