// A recording engine: applies nothing, reports every step as the real engine would, and keeps a
// log of what it was asked to do and undo. Used by unit tests and by `sandbox up --dry-run`.
import type { Plan } from '../plan/types';
import { undoOrder, type Engine, type EngineEvent, type RunOptions, type RunResult } from './types';

export class RecordingEngine implements Engine {
  readonly name = 'dry-run';
  readonly log: string[] = [];

  async run(plan: Plan, onEvent: (e: EngineEvent) => void, opts: RunOptions = {}): Promise<RunResult> {
    const done = new Set<string>();
    for (const step of plan.steps) {
      onEvent({ type: 'step', id: step.id, phase: 'start' });
      if (opts.failAt === step.id) {
        const error = { step: step.id, errno: 1, message: 'Operation not permitted (injected)' };
        this.log.push(`fail ${step.id}`);
        onEvent({ type: 'step', id: step.id, phase: 'failed', error, ms: 0 });
        for (const u of undoOrder(plan.steps, done)) {
          this.log.push(`undo ${u.id}`);
          onEvent({ type: 'undo', id: u.id, ok: true });
        }
        return { exitCode: 125, failed: error };
      }
      this.log.push(`do ${step.id}`);
      done.add(step.id);
      onEvent({ type: 'step', id: step.id, phase: 'done', ms: 0 });
      // Yield, as a real engine's events arrive asynchronously.
      await Promise.resolve();
    }
    return { exitCode: 0 };
  }
}
