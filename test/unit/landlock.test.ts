// Landlock as a second wall (issue 25, part 3), in the plan and in the child's program: the step
// only where the host has Landlock and the file has `paths:`, its rules made of what the mounts
// show, the rights per ABI, which read_only rules it holds too, its place in the security stage,
// and its op as the child reads it (native/src/landlock.c).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile } from '../../src/plan/compile';
import { checkOrder } from '../../src/plan/order';
import { handledRights } from '../../src/plan/sections/landlock';
import { encodeProgram } from '../../src/engine/ops';
import { OP, OP_OFFSET, OP_SIZE } from '../../src/ffi/generated/abi';
import type { HostFeatures, Step, StepOf } from '../../src/plan/types';
import { HYBRID_HOST, fakeFs, loadText } from '../helpers/load';

const FS = fakeFs(['/project/src/main.c', '/project/docs/', '/project/out/', '/project/.env', '/srv/tool/']);
const HOST = { ...HYBRID_HOST, landlock: 7 };
const FILE = 'version: 1\nrootfs: host\ncommand: [x]\npaths:\n  read_write: [./out]\n  read_only: [./docs, /srv/tool]\n  deny: [./.env]\n';
const planOf = (text: string, host: HostFeatures = HOST) => {
  const r = loadText(text, { fs: FS });
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), []);
  return compile(r.spec!, host).plan;
};
const landlockOf = (steps: readonly Step[]) => steps.find((s): s is StepOf<'landlock'> => s.kind === 'landlock');

test('a landlock step only where the host has Landlock and the file has `paths:`', () => {
  assert.equal(landlockOf(planOf(FILE, HYBRID_HOST).steps), undefined);
  assert.equal(landlockOf(planOf('version: 1\nrootfs: host\ncommand: [x]\n').steps), undefined);
  const s = landlockOf(planOf(FILE).steps)!;
  assert.ok(s);
  assert.equal(typeof s.source === 'object' && s.source.line, 5);
});

test('its rules are what the mounts show: read-only binds and the tmpfs root read, writable paths and /proc, /dev, /tmp written; nothing for a deny', () => {
  const s = landlockOf(planOf(FILE).steps)!;
  const access = Object.fromEntries(s.args.rules.map((r) => [r.path, r.access]));
  assert.equal(access['/'], 'ro');
  assert.equal(access['/usr'], 'ro');
  assert.equal(access['/etc'], 'ro');
  assert.equal(access['/project/docs'], 'ro');
  assert.equal(access['/srv/tool'], 'ro');
  assert.equal(access['/sys'], 'ro');
  for (const p of ['/project/out', '/proc', '/dev', '/dev/shm', '/tmp', '/run']) assert.equal(access[p], 'rw', p);
  assert.equal(access['/project/.env'], undefined);
  // Two read_only rules outside every writable path: Landlock holds them too, and the plan says so.
  assert.match(s.title, /Landlock ABI 7 also refuses writes to \/project\/docs \/srv\/tool\./);
  assert.match(s.title, /denies .* held by the mounts alone/);
  // Root, a tmpfs root: the child checks the ruleset by making a folder there, which it must be refused.
  assert.equal(s.args.probe, '/.sbx-landlock-probe');
  assert.equal(landlockOf(planOf(`${FILE}user: "1000"\n`).steps)!.args.probe, undefined);
  // A read_only rule inside a writable one is held by its mount alone (a Landlock rule covers what is beneath it).
  const inside = landlockOf(planOf('version: 1\nrootfs: host\ncommand: [x]\npaths:\n  read_write: [.]\n  read_only: [./docs]\n').steps)!;
  assert.doesNotMatch(inside.title, /also refuses/);
});

test('handled rights per ABI: the 13 of ABI 1, then refer (2), truncate (3), ioctl on devices (5)', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 7].map(handledRights), [0x1fff, 0x3fff, 0x7fff, 0x7fff, 0xffff, 0xffff]);
  assert.equal(landlockOf(planOf(FILE).steps)!.args.handled, 0xffff);
  assert.equal(landlockOf(planOf(FILE, { ...HYBRID_HOST, landlock: 1 }).steps)!.args.handled, 0x1fff);
  assert.equal(landlockOf(planOf(FILE).steps)!.args.readOnly, 1 | 4 | 8);
});

test('landlock comes after the mounts and no_new_privs and before seccomp; without no_new_privs, before the capabilities are dropped', () => {
  const kinds = (text: string) => planOf(text).steps.map((s) => s.kind).filter((k) => ['mount.pivot', 'caps.apply', 'nnp', 'nnp.off', 'landlock', 'seccomp'].includes(k));
  assert.deepEqual(kinds(FILE), ['mount.pivot', 'caps.apply', 'nnp', 'landlock', 'seccomp']);
  assert.deepEqual(kinds(`${FILE}security: {no_new_privileges: false}\n`), ['mount.pivot', 'landlock', 'seccomp', 'caps.apply', 'nnp.off']);
  const steps = planOf(FILE).steps;
  const move = (id: string, beforeId: string): Step[] => {
    const s = steps.filter((x) => x.id !== id);
    const i = s.findIndex((x) => x.id === beforeId);
    return [...s.slice(0, i), steps.find((x) => x.id === id)!, ...s.slice(i)];
  };
  for (const [id, at] of [['seccomp', 'landlock'], ['landlock', 'nnp'], ['landlock', 'pivot']] as const)
    assert.ok(checkOrder(move(id, at)).some((m) => m.startsWith('landlock after the mounts, before seccomp')), `${id} before ${at}`);
});

test('its op: handled and read-only rights, the read-only and the writable paths as lists, the probe', () => {
  const plan = planOf(FILE);
  const p = encodeProgram({ plan, rootDir: '/r', uid: 0, gid: 0, groups: [], fileSources: new Set(), tty: false, address: '10.88.0.2', compileSeccomp: () => Buffer.alloc(8) });
  let op: Buffer | undefined;
  for (let i = 0; i < p.nops; i++) { const r = p.ops.subarray(i * OP_SIZE, (i + 1) * OP_SIZE); if (r.readUInt32LE(OP_OFFSET.kind) === OP.LANDLOCK) op = r; }
  assert.ok(op);
  const str = (at: number) => { const ref = op!.readUInt32LE(at); return ref ? p.strings.subarray(ref - 1, p.strings.indexOf('\0\0', ref - 1) + 1).toString() : ''; };
  assert.equal(op.readBigInt64LE(OP_OFFSET.a), 0xffffn);
  assert.equal(op.readBigInt64LE(OP_OFFSET.b), 13n);
  assert.ok(str(OP_OFFSET.s1).split('\0').includes('/usr'));
  assert.ok(str(OP_OFFSET.s2).split('\0').includes('/project/out'));
  assert.ok(!str(OP_OFFSET.s1).split('\0').includes('/project/out'));
  assert.equal(p.strings.subarray(op.readUInt32LE(OP_OFFSET.s3) - 1, p.strings.indexOf(0, op.readUInt32LE(OP_OFFSET.s3) - 1)).toString(), '/.sbx-landlock-probe');
});
