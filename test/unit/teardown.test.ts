// Teardown is one recorded list: the undo entries a run records in its state folder are replayed
// newest first by one function (host/undo.ts), which the fake engine runs against a recording
// double; down, gc and ps use what the list records, never a name worked out again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordingOps, RecordingEngine } from '../../src/engine/fake';
import { compile } from '../../src/plan/compile';
import { cgroupPathFor, hostInterface } from '../../src/plan/paths';
import type { HostFeatures } from '../../src/plan/types';
import { sandboxPids } from '../../src/host/state';
import { hostOps, orphanTables, reclaim } from '../../src/host/teardown';
import { appendUndo, readUndo, replayUndo, UndoList, UNDO_FILE, type Recorded } from '../../src/host/undo';
import { HYBRID_HOST, loadText, V2_HOST } from '../helpers/load';

const LIST: Recorded[] = [
  { step: 'state', kind: 'state.remove', args: { path: '/run/sandbox/a' } },
  { step: 'rootfs', kind: 'upper.remove', args: { path: '/var/lib/sandbox/containers/a' } },
  { step: 'volume:/data', kind: 'volume.remove-new', args: { name: 'data', root: '/var/lib/sandbox/volumes' } },
  { step: 'cgroup', kind: 'cgroup.remove', args: { path: 'sandbox/a' } },
  { step: 'net:veth', kind: 'net.veth.remove', args: { interface: 'sbx01234567' } },
  { step: 'net:veth', kind: 'net.forwarding.restore', args: { state: '/run/sandbox/a' } },
  { step: 'net:nat', kind: 'net.nat.remove', args: { subnet: '10.88.0.0/16', table: 'sbx_a' } },
  { step: 'net:port:8080', kind: 'net.port.remove', args: { hostIp: '', hostPort: 8080, protocol: 'tcp' } },
  { step: 'net:usernet', kind: 'net.usernet.stop', args: { tool: 'pasta', state: '/run/sandbox/a' } },
];

/** A host whose state root and cgroup mount are scratch folders of the test. */
function scratchHost(): { host: HostFeatures; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-teardown-'));
  mkdirSync(join(dir, 'state'));
  mkdirSync(join(dir, 'cgroup'));
  return { dir, host: { ...V2_HOST, stateRoot: join(dir, 'state'), cgroup: { ...V2_HOST.cgroup, mounts: { unified: join(dir, 'cgroup') } } } };
}

test('one function replays a recorded list newest first, each kind onto its host operation', async () => {
  const log: string[] = [];
  const seen: string[] = [];
  const removed = await replayUndo(LIST, recordingOps(log), (r) => seen.push(r.step));
  assert.deepEqual(log, [
    'stopUsernet /run/sandbox/a',
    'removeTable sbx_a',
    'restoreForwarding /run/sandbox/a',
    'removeVeth sbx01234567',
    'removeCgroup sandbox/a',
    'removeVolume data /var/lib/sandbox/volumes',
    'removeUpper /var/lib/sandbox/containers/a',
    'removeState /run/sandbox/a',
  ]);
  // Every entry is heard of, the port's too (its maps go with the table: no host operation of its own).
  assert.deepEqual(seen, [...LIST].reverse().map((r) => r.step));
  assert.ok(!removed.some((r) => r.startsWith('restoreForwarding')), 'restoring ip_forward removes nothing');
});

test('a failing entry is reported and the older ones still run', async () => {
  const log: string[] = [];
  const ops = { ...recordingOps(log), removeCgroup: async () => { throw new Error('EBUSY'); } };
  const failed: string[] = [];
  await replayUndo(LIST.slice(0, 4), ops, (r, e) => { if (e) failed.push(`${r.step}: ${e.message}`); });
  assert.deepEqual(failed, ['cgroup: EBUSY']);
  assert.deepEqual(log, ['removeVolume data /var/lib/sandbox/volumes', 'removeUpper /var/lib/sandbox/containers/a', 'removeState /run/sandbox/a']);
});

test('a run\'s list: written to the state folder as each change is recorded, replayed with the CLI\'s own actions in one order; once the command runs a new volume leaves it', async () => {
  const { dir } = scratchHost();
  const state = join(dir, 'state', 'a');
  mkdirSync(state);
  const order: string[] = [];
  const list = new UndoList();
  list.local(() => { order.push('release port'); });
  list.keepIn(state);
  for (const r of LIST.slice(0, 4)) list.record(r.step, r);
  list.local(() => { order.push('kill child'); });
  // Written before any change is made: a CLI killed now leaves the whole list for gc.
  assert.deepEqual(readUndo(state), LIST.slice(0, 4));
  list.commandRuns();
  assert.deepEqual(readUndo(state).map((r) => r.kind), ['state.remove', 'upper.remove', 'cgroup.remove']);
  const ops = recordingOps(order);
  await list.replay(ops, (step, e) => order.push(`failed ${step}: ${e.message}`));
  assert.deepEqual(order, ['kill child', 'removeCgroup sandbox/a', 'removeUpper /var/lib/sandbox/containers/a', 'removeState /run/sandbox/a', 'release port']);
  rmSync(dir, { recursive: true, force: true });
});

test('a line cut short by a kill is skipped; the entries before it stand', () => {
  const { dir } = scratchHost();
  appendUndo(dir, LIST[0]!);
  writeFileSync(join(dir, UNDO_FILE), readFileSync(join(dir, UNDO_FILE), 'utf8') + '{"step":"cgroup","kind":"cgroup.rem');
  assert.deepEqual(readUndo(dir), [LIST[0]]);
  rmSync(dir, { recursive: true, force: true });
});

test('down and gc replay the recorded list: a cgroup recorded elsewhere than the name would give is the one removed, its live process keeps the sandbox, a new volume stays', async () => {
  const { dir, host } = scratchHost();
  const state = join(host.stateRoot, 'a');
  mkdirSync(state);
  const recorded = 'elsewhere/a';
  assert.notEqual(recorded, cgroupPathFor(host, 'a'));
  for (const r of [LIST[0]!, LIST[2]!, { step: 'cgroup', kind: 'cgroup.remove', args: { path: recorded } } as Recorded, LIST[6]!]) appendUndo(state, { ...r, ...(r.kind === 'state.remove' ? { args: { path: state } } : {}) } as Recorded);
  // A live process in the recorded cgroup: the sandbox runs, and nothing is removed.
  mkdirSync(join(host.cgroup.mounts.unified!, recorded), { recursive: true });
  writeFileSync(join(host.cgroup.mounts.unified!, recorded, 'cgroup.procs'), `${process.pid}\n`);
  assert.deepEqual(sandboxPids(host, 'a'), [process.pid]);
  let log: string[] = [];
  assert.deepEqual(await reclaim(host, 'a', recordingOps(log)), []);
  assert.deepEqual(log, []);
  // Once it is empty, the list is replayed as recorded; the state folder itself comes last again,
  // for a CLI killed between making it and recording it. The volume the crashed setup made stays
  // (another sandbox may have found it since): only the failed start itself removes it.
  writeFileSync(join(host.cgroup.mounts.unified!, recorded, 'cgroup.procs'), '');
  log = [];
  await reclaim(host, 'a', recordingOps(log));
  assert.deepEqual(log, ['removeTable sbx_a', `removeCgroup ${recorded}`, `removeState ${state}`, `removeState ${state}`]);
  rmSync(dir, { recursive: true, force: true });
});

test('reclaim with the real operations removes what the list records, and says what it removed', async () => {
  const { dir, host } = scratchHost();
  const state = join(host.stateRoot, 'a');
  const upper = join(dir, 'containers', 'a');
  mkdirSync(join(state, 'root'), { recursive: true });
  mkdirSync(join(upper, 'upper', 'etc'), { recursive: true });
  writeFileSync(join(upper, 'upper', 'etc', 'x'), 'x');
  writeFileSync(join(state, 'hosts'), '');
  appendUndo(state, { step: 'state', kind: 'state.remove', args: { path: state } });
  appendUndo(state, { step: 'rootfs', kind: 'upper.remove', args: { path: upper } });
  assert.deepEqual(await reclaim(host, 'a', hostOps(host)), [`upper layer ${upper}`, `state folder ${state}`]);
  assert.equal(existsSync(upper), false);
  assert.equal(existsSync(state), false);
  assert.deepEqual(await reclaim(host, 'a', hostOps(host)), [], 'nothing is left to remove the second time');
  rmSync(dir, { recursive: true, force: true });
});

test('a table is ours while a state folder\'s list records it (orphanTables never maps names to tables)', () => {
  const { dir, host } = scratchHost();
  const state = join(host.stateRoot, 'a');
  mkdirSync(state);
  appendUndo(state, { step: 'net:nat', kind: 'net.nat.remove', args: { subnet: '10.88.0.0/16', table: 'sbx_recorded' } });
  // Without root no table is ever ours (and nft is not asked).
  assert.deepEqual(orphanTables({ ...host, rootless: { ...HYBRID_HOST.rootless!, uid: 1000, gid: 1000, user: 'dev', subuid: [], subgid: [], tun: false } }), []);
  rmSync(dir, { recursive: true, force: true });
});

test('the fake engine replays the plan\'s undo data through the same function: the host operations, newest first, on the names the plan records', async () => {
  const plan = compile(loadText('version: 1\nname: fk\ncommand: [x]\nports: ["127.0.0.1:80:80"]\n').spec!, HYBRID_HOST).plan;
  const engine = new RecordingEngine();
  const last = [...plan.steps].reverse().find((s) => s.undo)!;
  await engine.run(plan, () => undefined, { failAt: plan.steps[plan.steps.indexOf(last) + 1]!.id });
  assert.deepEqual(engine.log.filter((l) => /^(remove|stop|restore)/.test(l)), [
    'removeTable sbx_fk',
    `removeVeth ${hostInterface('fk')}`,
    'removeCgroup sandbox/fk',
    'removeState /run/sandbox/fk',
  ]);
});
