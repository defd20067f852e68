// A failure injected at every step of a full sample (the test-only SANDBOX_TEST_FAIL_AT switch)
// must exit 125, name the step and its config line, and leave nothing on the host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Plan } from '../../src/plan/types';
import { hasEngine, hasNft, isRoot, leftovers, needs, sandbox } from '../helpers/sandbox';

// SANDBOX_FAULT_CONFIGS narrows the list where each run is slow (the emulated cgroup v2 VM in CI).
const only = process.env.SANDBOX_FAULT_CONFIGS?.split(',');
const configs = ([['samples/limits.yml', 'limits'], ['test/integration/fixtures/every-key.yml', 'every-key'], ['samples/web.yml', 'web'], ['samples/egress.yml', 'fetch']] as const).filter(([f]) => !only || only.includes(f));

for (const [file, name] of configs) {
  test(`a failure at every step of ${file} leaves nothing behind`, (t) => {
    if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
    // web.yml's private network is made with nft (and ip): without it up refuses the file.
    if ((name === 'web' || name === 'fetch') && !needs(t, 'nftables (apt-get install nftables)', hasNft)) return;
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

test('SIGINT during setup stops it, exits 130 and leaves nothing behind', async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
  const { spawn } = await import('node:child_process');
  const { existsSync } = await import('node:fs');
  const { BIN } = await import('../helpers/sandbox');
  const codes: (number | null)[] = [];
  // The signal comes once setup has begun (its state folder exists), a little later each time.
  for (const extra of [0, 2, 5, 10]) {
    const child = spawn(process.execPath, [BIN, 'up', '-q', 'samples/limits.yml', '--', '/bin/sleep', '2'], { stdio: 'ignore' });
    const t0 = Date.now();
    while (!existsSync('/run/sandbox/limits') && Date.now() - t0 < 20_000) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, extra));
    child.kill('SIGINT');
    codes.push(await new Promise((r) => child.on('exit', (c) => r(c))));
    assert.deepEqual(leftovers('limits'), [], `after a signal ${extra} ms into setup`);
  }
  // Interrupted during setup: 130. When the signal came after setup, sleep as PID 1 without an
  // init has no handler for SIGINT, which the kernel would drop: it is killed at once, 137.
  for (const c of codes) assert.ok(c === 130 || c === 137, `exit ${c}`);
  assert.ok(codes.includes(130), `no run was interrupted during setup: ${codes}`);
});
