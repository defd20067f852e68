// A recording engine: applies nothing, reports every step as the real engine would, and keeps a
// log of what it was asked to do and undo. A failure replays the plan's undo data through the
// native engine's own function (host/undo.ts) against a recording double of the host operations.
// Used by unit tests and by `sandbox up --dry-run`.
import type { Plan } from '../plan/types';
import { replayUndo, type HostOps, type Recorded } from '../host/undo';
import type { Engine, EngineEvent, RunOptions, RunResult } from './types';

/** Host operations that only write what they are asked into `log` (and say they removed it). */
export function recordingOps(log: string[]): HostOps {
  const note = (op: string, ...args: string[]) => { const line = `${op} ${args.join(' ')}`; log.push(line); return line; };
  return {
    removeState: (path) => note('removeState', path),
    removeUpper: (path) => note('removeUpper', path),
    removePlaceholder: (path, type) => note('removePlaceholder', path, type),
    removeVolume: (name, root) => note('removeVolume', name, root),
    removeCgroup: async (path) => note('removeCgroup', path),
    removeVeth: (name) => note('removeVeth', name),
    restoreForwarding: async (dir) => { note('restoreForwarding', dir); },
    removeTable: (name) => note('removeTable', name),
    stopUsernet: async (dir) => note('stopUsernet', dir),
    stopEgress: async (dir) => note('stopEgress', dir),
    removeWall: (table) => note('removeWall', table),
  };
}

export class RecordingEngine implements Engine {
  readonly name = 'dry-run';
  readonly log: string[] = [];

  async run(plan: Plan, onEvent: (e: EngineEvent) => void, opts: RunOptions = {}): Promise<RunResult> {
    const undo: Recorded[] = [];
    for (const step of plan.steps) {
      onEvent({ type: 'step', id: step.id, phase: 'start' });
      if (opts.failAt === step.id) {
        const error = { step: step.id, errno: 1, message: 'Operation not permitted (injected)' };
        this.log.push(`fail ${step.id}`);
        onEvent({ type: 'step', id: step.id, phase: 'failed', error, ms: 0 });
        await replayUndo(undo, recordingOps(this.log), (u, e) => {
          this.log.push(`undo ${u.step}`);
          onEvent({ type: 'undo', id: u.step, ok: !e, ...(e ? { message: e.message } : {}) });
        });
        return { exitCode: 125, failed: error };
      }
      this.log.push(`do ${step.id}`);
      if (step.undo) undo.push({ ...step.undo, step: step.id } as Recorded);
      onEvent({ type: 'step', id: step.id, phase: 'done', ms: 0 });
      // Yield, as a real engine's events arrive asynchronously.
      await Promise.resolve();
    }
    return { exitCode: 0 };
  }
}
