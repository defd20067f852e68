// A failure injected at every step of a full sample (the test-only SANDBOX_TEST_FAIL_AT switch)
// must exit 125, name the step and its config line, and leave nothing on the host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Plan } from '../../src/plan/types';
import { hasEngine, isRoot, leftovers, needs, sandbox } from '../helpers/sandbox';

// SANDBOX_FAULT_CONFIGS narrows the list where each run is slow (the emulated cgroup v2 VM in CI).
const only = process.env.SANDBOX_FAULT_CONFIGS?.split(',');
const configs = ([['samples/limits.yml', 'limits'], ['test/integration/fixtures/every-key.yml', 'every-key']] as const).filter(([f]) => !only || only.includes(f));

for (const [file, name] of configs) {
  test(`a failure at every step of ${file} leaves nothing behind`, (t) => {
    if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
    const plan = JSON.parse(sandbox(['plan', '--json', file]).out) as Plan;
    assert.ok(plan.steps.length > 80);
    const failures: string[] = [];
    for (const step of plan.steps) {
      const r = sandbox(['up', '-q', file, '--', '/bin/true'], { env: { SANDBOX_TEST_FAIL_AT: step.id } });
      const expected = step.kind === 'exec' ? 126 : 125;
      if (r.code !== expected) failures.push(`${step.id}: exit ${r.code}, expected ${expected}: ${r.err}`);
      else if (!r.err.includes(`${step.id} (`) || !/operation not permitted \(EPERM\)/.test(r.err)) failures.push(`${step.id}: message does not name the step and errno: ${r.err}`);
      // The exec step's source is the command line here (`-- /bin/true`); every other step cites the file.
      else if (step.kind !== 'exec' && typeof step.source === 'object' && !r.err.includes(`${step.source.file}:${step.source.line}:${step.source.col}`)) failures.push(`${step.id}: message does not cite ${step.source.file}:${step.source.line}: ${r.err}`);
      const left = leftovers(name);
      if (left.length) failures.push(`${step.id}: left ${left.join('; ')}`);
    }
    assert.deepEqual(failures, []);
  });
}
