// The recording engine: every step reported in order; an injected failure undoes exactly the
// host changes made before it, newest first, and exits 125.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordingEngine } from '../../src/engine/fake';
import { compile } from '../../src/plan/compile';
import type { EngineEvent } from '../../src/engine/types';
import { HYBRID_HOST, loadText } from '../helpers/load';

const plan = compile(loadText('version: 1\ncommand: [x]\nports: ["127.0.0.1:80:80"]\n').spec!, HYBRID_HOST).plan;

test('a run reports start and done for every step, in plan order', async () => {
  const events: EngineEvent[] = [];
  const r = await new RecordingEngine().run(plan, (e) => events.push(e));
  assert.equal(r.exitCode, 0);
  assert.deepEqual(events.filter((e) => e.type === 'step' && e.phase === 'done').map((e) => (e as { id: string }).id), plan.steps.map((s) => s.id));
});

test('a failure at any step undoes the earlier host changes in reverse, and nothing else', async () => {
  for (const step of plan.steps) {
    const engine = new RecordingEngine();
    const r = await engine.run(plan, () => undefined, { failAt: step.id });
    assert.equal(r.exitCode, 125);
    assert.equal(r.failed?.step, step.id);
    const index = plan.steps.indexOf(step);
    const expected = plan.steps.slice(0, index).filter((s) => s.undo).reverse().map((s) => `undo ${s.id}`);
    assert.deepEqual(engine.log.filter((l) => l.startsWith('undo ')), expected, step.id);
  }
});
