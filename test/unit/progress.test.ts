// The progress view of `up` (src/ui/progress.ts), fed engine events: the mode chosen from the
// flags and the environment; plain output is one line per stage (every step with --verbose); a
// failure is drawn at the step that failed, not at the first step still pending; the terminal view
// redraws in place and ends when end() is called.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordingEngine } from '../../src/engine/fake';
import { compile } from '../../src/plan/compile';
import type { EngineEvent } from '../../src/engine/types';
import { progressMode, StageProgress, type ProgressMode } from '../../src/ui/progress';
import { HYBRID_HOST, loadText } from '../helpers/load';

const plan = compile(loadText('version: 1\nname: busyport\nrootfs: host\ncommand: [/bin/true]\nports: ["127.0.0.1:8085:80"]\nresources: {memory: 64m, pids: 16}\n').spec!, HYBRID_HOST).plan;
const portStep = plan.steps.find((s) => s.id.startsWith('port:'))!;

function view(mode: ProgressMode, opts: { verbose?: boolean; columns?: number; interval?: number } = {}) {
  let text = '';
  const out = { write: (s: string) => { text += s; }, columns: opts.columns };
  const v = new StageProgress(plan, { mode, verbose: opts.verbose, out, interval: opts.interval, now: () => 0 });
  return { v, text: () => text };
}

test('auto is the terminal view on a terminal, plain without one or under CI; -q and quiet print nothing', () => {
  assert.equal(progressMode('auto', { isTTY: true, env: {} }), 'tty');
  assert.equal(progressMode('auto', { isTTY: false, env: {} }), 'plain');
  assert.equal(progressMode('auto', { isTTY: true, env: { CI: 'true' } }), 'plain');
  assert.equal(progressMode('auto', { isTTY: true, env: { CI: 'false' } }), 'tty');
  assert.equal(progressMode('auto', { isTTY: true, env: {}, quiet: true }), 'quiet');
  assert.equal(progressMode('plain', { isTTY: true, env: {} }), 'plain');
  assert.equal(progressMode('tty', { isTTY: false, env: { CI: '1' } }), 'tty');
  assert.equal(progressMode('quiet', { isTTY: true, env: {} }), 'quiet');
});

test('plain: one line per stage, with its step count and time, in stage order', async () => {
  const { v, text } = view('plain');
  await new RecordingEngine().run(plan, v.onEvent);
  v.onEvent({ type: 'running', pid: 1 });
  const lines = text().trimEnd().split('\n');
  const stages = new Set(plan.steps.filter((s) => s.kind !== 'exec').map((s) => s.stage));
  assert.equal(lines.length, stages.size, text());
  assert.ok(lines.length <= 9);
  for (const l of lines) assert.match(l, /^\d\. [a-z]+  \d+ steps?  \d+\.\d ms$/);
  assert.deepEqual(lines.map((l) => Number(l[0])), [...lines.map((l) => Number(l[0]))].sort());
  const network = plan.steps.filter((s) => s.stage === 'network').length;
  assert.ok(lines.includes(`5. network  ${network} steps  0.0 ms`), text());
});

test('plain --verbose: every step as it is done, under its stage', async () => {
  const { v, text } = view('plain', { verbose: true });
  await new RecordingEngine().run(plan, v.onEvent);
  v.end();
  for (const s of plan.steps.filter((x) => x.kind !== 'exec')) assert.ok(text().includes(`✔ ${s.id}  ${s.title}`), s.id);
  assert.match(text(), /^1\. rootfs: prepare the root filesystem\n {3}✔ state /);
});

test('nothing at all in quiet mode', async () => {
  const { v, text } = view('quiet');
  await new RecordingEngine().run(plan, v.onEvent, { failAt: portStep.id });
  v.end();
  assert.equal(text(), '');
});

// A port in use is found before any step of the rootfs stage runs: the view must show the port
// step failing under 5. network, and nothing of stages that never ran.
const portInUse: EngineEvent[] = [
  { type: 'step', id: portStep.id, phase: 'start' },
  { type: 'step', id: portStep.id, phase: 'failed', error: { step: portStep.id, errno: 98, message: 'host port 8085/tcp on 127.0.0.1 is already in use' } },
];

test('plain: a failure is drawn at the step that failed, in full, and the stages never reached are not shown', () => {
  const { v, text } = view('plain');
  for (const e of portInUse) v.onEvent(e);
  v.end();
  const lines = text().trimEnd().split('\n');
  assert.equal(lines.length, 2, text());
  assert.match(lines[0]!, new RegExp(`^5\\. network  failed at ${portStep.id.replace(/[.*]/g, '\\$&')} \\(0 of \\d+ steps done\\)$`));
  assert.equal(lines[1], `   ✖ ${portStep.id} (${portStep.title}): host port 8085/tcp on 127.0.0.1 is already in use`);
  assert.doesNotMatch(text(), /rootfs|create \/run\/sandbox/);
});

test('tty: the failure is drawn at the failing step (the port step shows ✖), not at the first pending one', () => {
  const { v, text } = view('tty', { columns: 60 });
  for (const e of portInUse) v.onEvent(e);
  assert.deepEqual(v.lines(), [
    `✖ 5. network: loopback, the sandbox's interface, port maps  failed at ${portStep.id} (0 of ${plan.steps.filter((s) => s.stage === 'network').length} steps done)`,
    `   ✖ ${portStep.id} (${portStep.title}): host port 8085/tcp on 127.0.0.1 is already in use`,
  ]);
  // The last drawing is not cut to the terminal's width: the failing step is shown in full.
  assert.ok(text().includes(portStep.title), text());
});

test('tty: a failure in the middle of a run: the stages before it done, the failing one ✖ at its step', async () => {
  const { v } = view('tty');
  const mount = plan.steps.find((s) => s.stage === 'mounts')!;
  await new RecordingEngine().run(plan, v.onEvent, { failAt: mount.id });
  const lines = v.lines();
  assert.match(lines[0]!, /^✔ 1\. rootfs: .*  \d+ steps?  0\.0 ms$/);
  assert.match(lines.at(-2)!, new RegExp(`^✖ 6\\. mounts: .* failed at ${mount.id.replace(/[.*/]/g, '\\$&')} \\(0 of`));
  assert.equal(lines.at(-1), `   ✖ ${mount.id} (${mount.title}): Operation not permitted (injected)`);
  assert.ok(!lines.some((l) => /^. [7-9]\./.test(l)), 'a stage after the failure is not shown');
});

test('tty: redraws in place while steps run (cut to the terminal width), and the final drawing stays', async () => {
  const { v, text } = view('tty', { columns: 40, interval: 1 });
  const first = plan.steps[0]!;
  v.onEvent({ type: 'step', id: first.id, phase: 'start' });
  await new Promise((r) => setTimeout(r, 20));
  assert.match(text(), /^\S+ 1\. rootfs: prepare the root.*…/);
  for (const l of text().split('\n').filter(Boolean)) assert.ok(l.replace(/\x1b\[[0-9;]*m/g, '').length <= 39, l);
  v.onEvent({ type: 'step', id: first.id, phase: 'done', ms: 1.25 });
  await new Promise((r) => setTimeout(r, 20));
  assert.match(text(), /\x1b\[1F\x1b\[J/, 'moved back over the line it drew');
  const before = text().length;
  v.end();
  v.end();
  v.onEvent({ type: 'step', id: plan.steps[1]!.id, phase: 'done' });
  const final = text().slice(before);
  assert.match(final, /^\x1b\[1F\x1b\[J◼ 1\. rootfs: prepare the root filesystem  1 of 2 steps  1\.3 ms\n$/);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(text().length, before + final.length, 'nothing is drawn after end()');
});
