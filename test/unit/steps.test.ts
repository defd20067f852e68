// Which process applies each kind of step is written once, in plan/steps.ts: the child's program
// (engine/ops.ts) encodes exactly the steps placed in the child, and the host's handler table
// (engine/host-steps.ts) covers exactly the kinds placed on the host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSpec } from '../../src/model/load';
import { compile } from '../../src/plan/compile';
import { compileExec } from '../../src/plan/exec';
import { isChildStep, isHostStep, makeStep, SIDE } from '../../src/plan/steps';
import type { HostFeatures, Plan } from '../../src/plan/types';
import { encodeProgram } from '../../src/engine/ops';
import { HYBRID_HOST, ROOT, ROOTLESS_HOST, V2_HOST } from '../helpers/load';

// A kind placed on the host without a handler does not compile: engine/host-steps.ts's handler
// table is a mapped type over this HostKind.

function samplePlans(): [string, Plan][] {
  const out: [string, Plan][] = [];
  for (const f of readdirSync(join(ROOT, 'samples')).filter((x) => x.endsWith('.yml')).sort()) {
    for (const [hostName, host] of [['hybrid', HYBRID_HOST], ['v2', V2_HOST], ['rootless', ROOTLESS_HOST]] as [string, HostFeatures][]) {
      const r = loadSpec({ file: `samples/${f}`, absFile: `/project/samples/${f}`, bytes: readFileSync(join(ROOT, 'samples', f)), env: {}, home: '/home/user', hostCpus: 2, readFile: () => undefined }, { rootless: host.rootless });
      const plan = compile(r.spec!, host).plan;
      out.push([`${f} (${hostName})`, plan]);
      out.push([`exec into ${f} (${hostName})`, compileExec(plan, { pid: 42, args: ['sh'], env: [], tty: true, stdin: true })]);
    }
  }
  return out;
}

test('the child\'s program has ops for exactly the steps placed in the child', () => {
  const plans = samplePlans();
  assert.ok(plans.length >= 30);
  for (const [name, plan] of plans) {
    const p = encodeProgram({
      plan, rootDir: '/run/sandbox/x/root', uid: 1000, gid: 1000, groups: [], fileSources: new Set(), tty: true,
      address: '10.88.0.2', overlay: 'lowerdir=/l,upperdir=/u,workdir=/w', init: '/sbx-init', compileSeccomp: () => Buffer.alloc(8),
    });
    assert.deepEqual([...p.childSteps], plan.steps.filter(isChildStep).map((s) => s.id), name);
    assert.ok(plan.steps.every((s) => isChildStep(s) !== isHostStep(s)), name);
    // A cgroup or time namespace is unshared by the child; the clone makes the others.
    for (const s of plan.steps) if (s.kind === 'ns.new') assert.equal(s.side, s.args.type === 'cgroup' || s.args.type === 'time' ? 'child' : 'host', `${name}: ${s.id}`);
  }
});

test('a step goes to the side its kind is placed on; only a new namespace may be moved to the child', () => {
  const base = { id: 'x', stage: 'namespaces', title: 't', source: 'default' } as const;
  assert.equal(makeStep({ ...base, kind: 'ns.new', args: { type: 'time' } }).side, SIDE['ns.new']);
  assert.equal(makeStep({ ...base, kind: 'ns.new', args: { type: 'time' }, side: 'child' }).side, 'child');
  assert.throws(() => makeStep({ ...base, kind: 'ns.join', args: { type: 'net', path: '/p' }, side: 'host' }), /internal error: a ns\.join step cannot be applied by the host/);
  assert.throws(() => makeStep({ ...base, stage: 'cgroup', kind: 'cgroup.set', args: { controller: 'pids', file: 'pids.max', value: '1' }, side: 'child' }), /cannot be applied by the child/);
});
