// listr2 view of a run: one task per stage, one subtask per step. The tasks only observe engine
// events; they never act. Output goes to stderr, and ends before the command's own output.
import type { Plan } from '../plan/types';
import { STAGES, STAGE_TITLES } from '../plan/types';
import type { EngineEvent } from '../engine/types';
import { MSG } from './messages';

interface Waiter { promise: Promise<void>; resolve(): void; reject(e: Error): void; ms?: number }

/** Collects engine events and exposes each step as a promise the listr tasks wait on. */
export class StepTracker {
  private readonly waiters = new Map<string, Waiter>();
  private readonly setupDone: Waiter;
  constructor(plan: Plan) {
    for (const s of plan.steps) this.waiters.set(s.id, deferred());
    this.setupDone = deferred();
  }
  onEvent = (e: EngineEvent): void => {
    if (e.type === 'running') return this.setupDone.resolve();
    if (e.type !== 'step') return;
    const w = this.waiters.get(e.id);
    if (!w) return;
    if (e.phase === 'done') { w.ms = e.ms; w.resolve(); }
    else if (e.phase === 'failed') w.reject(new Error(`${e.error.message}`));
  };
  step(id: string): Waiter { return this.waiters.get(id)!; }
  /** Fails every step still pending, so that the view ends when the engine does. */
  abort(why: string): void { for (const w of this.waiters.values()) w.reject(new Error(why)); }
}

function deferred(): Waiter {
  let resolve!: () => void, reject!: (e: Error) => void;
  const promise = new Promise<void>((a, b) => { resolve = a; reject = b; });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** listr2's terminal renderer, drawing at most every 40 ms. Its own redraws the whole tree on
 * every state change of every task, synchronously: about 16 ms each for a plan's 90 steps, so a
 * 30 ms setup took seconds to show, and the command waits until the view has ended. */
function throttledRenderer(listr2: typeof import('listr2')) {
  return class ThrottledRenderer extends listr2.DefaultRenderer {
    private timer: NodeJS.Timeout | undefined;
    override update(): void {
      if (this.timer) return;
      this.timer = setTimeout(() => { this.timer = undefined; super.update(); }, 40);
    }
    override end(): void {
      clearTimeout(this.timer);
      this.timer = undefined;
      super.end();
    }
  };
}

/** A terminal that reports no size (a pseudo-terminal nobody sized, as `script` makes without a
 * terminal of its own) would have listr2 wrap every line at width 0, one character a line. */
function sizeTerminal(stream: NodeJS.WriteStream): void {
  if (stream.isTTY && !stream.columns) stream.columns = 80;
}

export async function showProgress(plan: Plan, tracker: StepTracker, opts: { quiet: boolean; plain: boolean }): Promise<void> {
  if (opts.quiet) return;
  sizeTerminal(process.stdout);
  sizeTerminal(process.stderr);
  const listr2 = require('listr2') as typeof import('listr2');
  const { Listr, ListrLogger, ProcessOutput } = listr2;
  const logger = new ListrLogger({ processOutput: new ProcessOutput(process.stderr, process.stderr) });
  // The exec step ends when the command has started: the view is over by then.
  const tasks = STAGES.map((stage, i) => ({ stage, i, steps: plan.steps.filter((s) => s.stage === stage && s.kind !== 'exec') }))
    .filter((g) => g.steps.length)
    .map((g) => ({
      title: MSG.stageTitle(g.i + 1, g.stage, STAGE_TITLES[g.stage]),
      task: (_: unknown, task: { newListr: (t: unknown[], o: unknown) => unknown }) => task.newListr(g.steps.map((s) => ({
        title: s.title,
        task: async (_c: unknown, t: { title: string }) => {
          const w = tracker.step(s.id);
          await w.promise;
          if (w.ms !== undefined && w.ms >= 1) t.title = `${s.title} (${w.ms.toFixed(0)} ms)`;
        },
      })), { concurrent: false, exitOnError: true, rendererOptions: { collapseSubtasks: true } }),
    }));
  const list = new Listr(tasks as never, {
    concurrent: false, exitOnError: true, registerSignalListeners: false,
    renderer: throttledRenderer(listr2) as typeof listr2.DefaultRenderer, rendererOptions: { logger, collapseSubtasks: true, showErrorMessage: false },
    fallbackRenderer: 'simple', fallbackRendererOptions: { logger },
    fallbackRendererCondition: opts.plain,
  });
  try { await list.run(); } catch { /* the failure is reported by the caller, with its config line */ }
}

/** listr2 view of a pull: one line per layer under the image's task, with its bytes and rate while
 * it downloads, then its unpacking. The task only observes pull events. */
export function pullProgress(opts: { quiet: boolean; plain: boolean; title: string }): { onEvent(e: import('../image/pull').PullEvent): void; finish(error?: Error): Promise<void> } {
  if (opts.quiet) return { onEvent: () => undefined, finish: async () => undefined };
  sizeTerminal(process.stdout);
  sizeTerminal(process.stderr);
  const { Listr, ListrLogger, ProcessOutput } = require('listr2') as typeof import('listr2');
  const logger = new ListrLogger({ processOutput: new ProcessOutput(process.stderr, process.stderr) });
  const layers = new Map<string, { started: number; last: import('../image/pull').PullEvent }>();
  const all = deferred();
  let task: { output: string; title: string } | undefined;
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  const line = (d: string, l: { started: number; last: import('../image/pull').PullEvent }) => {
    const e = l.last;
    const s = (performance.now() - l.started) / 1000;
    return `${d.slice(7, 19)}  ${e.phase === 'cached' ? `${mb(e.size)}, already unpacked` : e.phase === 'download' ? `${mb(e.done)} / ${mb(e.size)}${s > 0.2 ? `, ${mb(e.done / s)}/s` : ''}` : e.phase === 'unpack' ? `${mb(e.size)} downloaded, unpacking` : `${mb(e.size)} in ${s.toFixed(1)} s, unpacked`}`;
  };
  let shown = 0;
  const render = (force = false) => {
    // At most ten updates a second: a fast local pull sends thousands of events. Without a
    // terminal each update is a new line: there, only a layer's start and end are shown.
    if (!task || (!force && (opts.plain || performance.now() - shown < 100))) return;
    shown = performance.now();
    task.output = [...layers].map(([d, l]) => line(d, l)).join('\n');
  };
  const list = new Listr([{
    title: opts.title,
    task: async (_: unknown, t: { output: string; title: string }) => { task = t; render(true); await all.promise; render(true); },
    rendererOptions: { persistentOutput: true, outputBar: Infinity },
  }] as never, {
    concurrent: false, exitOnError: true, registerSignalListeners: false,
    renderer: 'default', rendererOptions: { logger, showErrorMessage: false }, fallbackRenderer: 'simple', fallbackRendererOptions: { logger }, fallbackRendererCondition: opts.plain,
  });
  const running = list.run().catch(() => undefined);
  return {
    onEvent(e) {
      const l = layers.get(e.digest);
      if (!l) layers.set(e.digest, { started: performance.now(), last: e });
      else l.last = e;
      render(e.phase !== 'download' || !l);
    },
    async finish(error) {
      // Why it failed is said once, by the command's own message after this view ends.
      if (error) all.reject(new Error('not pulled')); else all.resolve();
      await running;
    },
  };
}
