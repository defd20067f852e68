// The view of a run on stderr: one line per stage, drawn from engine events it only observes (it
// never acts). Three modes: `tty` redraws the stage list in place on a terminal, `plain` writes one
// line per stage as each ends (every step too with --verbose), `quiet` writes nothing. Runs in the
// CLI process; its output ends before the command's own output begins (the engine calls end()
// before it lets the command exec).
//
// The terminal view is drawn here, not by listr2's renderer: that one loads log-update, cli-truncate
// and wrap-ansi as ES modules at its first render (about 75 ms, measured) and listr2 itself costs
// about 15 ms to require, where the whole view may cost 10% of an `up -q` of about 180 ms
// (test/bench/progress-tty.mjs). Pulls, which take seconds, keep listr2 (pullProgress below).
import type { Plan, Stage, Step } from '../plan/types';
import { STAGES, STAGE_TITLES } from '../plan/types';
import type { EngineEvent, StepError } from '../engine/types';
import { MSG } from './messages';

export type ProgressMode = 'tty' | 'plain' | 'quiet';
export const PROGRESS_CHOICES = ['auto', 'tty', 'plain', 'quiet'] as const;

/** `auto` is the terminal view on a terminal, plain lines elsewhere and under CI; -q is quiet. */
export function progressMode(choice: string | undefined, o: { quiet?: boolean; isTTY: boolean; env: Readonly<Record<string, string | undefined>> }): ProgressMode {
  if (o.quiet || choice === 'quiet') return 'quiet';
  if (choice === 'tty' || choice === 'plain') return choice;
  const ci = o.env.CI !== undefined && o.env.CI !== '' && o.env.CI !== '0' && o.env.CI.toLowerCase() !== 'false';
  return o.isTTY && !ci ? 'tty' : 'plain';
}

type StepState = 'pending' | 'running' | 'done' | 'failed';
interface StepView { step: Step; state: StepState; ms: number; started?: number; error?: StepError }
interface StageView { stage: Stage; n: number; steps: StepView[]; printed: boolean; headed: boolean }

export interface ProgressOptions {
  mode: ProgressMode;
  /** Plain mode: a line for every step as well. */
  verbose?: boolean;
  out?: { write(s: string): unknown; columns?: number };
  color?: boolean;
  /** Milliseconds between redraws of the terminal view. */
  interval?: number;
  now?: () => number;
}

/** The view of one `up`. Feed it every engine event; end() draws the final state (idempotent). */
export class StageProgress {
  private readonly stages: StageView[];
  private readonly byId = new Map<string, { stage: StageView; view: StepView }>();
  private readonly out: { write(s: string): unknown; columns?: number };
  private readonly now: () => number;
  private ended = false;
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(plan: Plan, private readonly opts: ProgressOptions) {
    this.out = opts.out ?? process.stderr;
    this.now = opts.now ?? (() => performance.now());
    // The exec step ends when the command starts, after the view: it is shown only if it fails.
    this.stages = STAGES.map((stage, i) => ({ stage, n: i + 1, steps: [] as StepView[], printed: false, headed: false }));
    for (const s of plan.steps) {
      const stage = this.stages[STAGES.indexOf(s.stage)]!;
      const view: StepView = { step: s, state: 'pending', ms: 0 };
      if (s.kind !== 'exec') stage.steps.push(view);
      this.byId.set(s.id, { stage, view });
    }
  }

  onEvent = (e: EngineEvent): void => {
    if (this.ended || this.opts.mode === 'quiet') return;
    if (e.type === 'running') { this.end(); return; }
    if (e.type !== 'step') return;
    const at = this.byId.get(e.id);
    if (!at) return;
    const { stage, view } = at;
    if (e.phase === 'start') {
      if (view.state === 'pending') { view.state = 'running'; view.started = this.now(); }
      if (this.opts.mode === 'plain' && this.opts.verbose) this.head(stage);
    } else if (e.phase === 'done') {
      // A step of several ops reports done once per op: their times add up.
      view.ms += e.ms ?? (view.started !== undefined && view.state === 'running' ? this.now() - view.started : 0);
      if (view.state !== 'done' && this.opts.mode === 'plain' && this.opts.verbose) { this.head(stage); this.write(`   ${MSG.stepDone(view.step.id, view.step.title, view.ms)}\n`); }
      view.state = 'done';
    } else if (e.phase === 'failed') {
      view.state = 'failed';
      view.error = e.error;
      if (!stage.steps.includes(view)) stage.steps.push(view);
      this.end();
      return;
    }
    if (this.opts.mode === 'plain') this.flushPlain(false);
    else this.schedule();
  };

  /** Draws the final state: called when the command is about to start, and when the run failed. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    if (this.opts.mode === 'plain') this.flushPlain(true);
    else if (this.opts.mode === 'tty') this.draw(true);
  }

  /** The lines of the view as they stand (the terminal view without its cursor movements). */
  lines(): string[] {
    const out: string[] = [];
    for (const s of this.shown()) {
      out.push(this.stageLine(s, true));
      const f = s.steps.find((v) => v.state === 'failed');
      if (f) out.push(this.failLine(f));
    }
    return out;
  }

  private write(s: string) { this.out.write(s); }

  /** Stages that have begun; the view says nothing of those the run never reached. */
  private shown(): StageView[] {
    return this.stages.filter((s) => s.steps.some((v) => v.state !== 'pending'));
  }

  private paint(code: string, s: string) { return this.opts.color ? `\x1b[${code}m${s}\x1b[0m` : s; }

  private stageLine(s: StageView, tty: boolean): string {
    const done = s.steps.filter((v) => v.state === 'done');
    const ms = s.steps.reduce((t, v) => t + v.ms, 0);
    const failed = s.steps.find((v) => v.state === 'failed');
    const title = tty ? MSG.stageTitle(s.n, s.stage, STAGE_TITLES[s.stage]) : `${s.n}. ${s.stage}`;
    const total = s.steps.filter((v) => v.step.kind !== 'exec').length;
    if (failed) return `${tty ? `${this.paint('31', '✖')} ` : ''}${MSG.stageFailed(title, done.length, total, failed.step.id)}`;
    if (done.length === total) return `${tty ? `${this.paint('32', '✔')} ` : ''}${MSG.stageDone(title, total, ms)}`;
    const current = s.steps.find((v) => v.state === 'running') ?? s.steps.find((v) => v.state === 'pending');
    if (this.ended) return `${tty ? `${this.paint('33', '◼')} ` : ''}${MSG.stagePartial(title, done.length, total, ms)}`;
    return `${this.paint('33', '❯')} ${MSG.stageRunning(title, done.length, total, current?.step.title ?? '')}`;
  }

  private failLine(v: StepView): string {
    return `   ${this.paint('31', '✖')} ${MSG.stepFailed(v.step.id, v.step.title, v.error?.message ?? '')}`;
  }

  private head(s: StageView) {
    if (s.headed) return;
    s.headed = true;
    this.write(`${MSG.stageTitle(s.n, s.stage, STAGE_TITLES[s.stage])}\n`);
  }

  /** Plain: each stage's line once it has ended, in order; at the end, whatever began. */
  private flushPlain(final: boolean) {
    for (const s of this.stages) {
      if (s.printed) continue;
      const failed = s.steps.find((v) => v.state === 'failed');
      const begun = s.steps.some((v) => v.state !== 'pending');
      const finished = s.steps.length > 0 && s.steps.every((v) => v.state === 'done');
      if (failed) {
        s.printed = true;
        this.write(`${this.stageLine(s, false)}\n${this.failLine(failed)}\n`);
      } else if (finished || (final && begun)) {
        s.printed = true;
        this.write(`${this.stageLine(s, false)}\n`);
      } else if (!final && s.steps.length) return; // stages are printed in order: this one first
    }
  }

  private schedule() {
    if (this.timer) return;
    this.timer = setTimeout(() => { this.timer = undefined; if (!this.ended) this.draw(false); }, this.opts.interval ?? 50);
    this.timer.unref?.();
  }

  /** Redraws the terminal view in place: back over what was drawn, then the stage list. A line
   * wider than the terminal is cut while it may be redrawn; the final drawing is never erased, so
   * the failing step is shown in full there. */
  private draw(final: boolean) {
    const cols = Math.max(20, (this.out.columns ?? 80) - 1);
    const lines = this.lines().map((l) => (final ? l : cutVisible(l, cols)));
    const back = this.drawn ? `\x1b[${this.drawn}F\x1b[J` : '';
    this.drawn = final ? 0 : lines.length;
    if (!lines.length && !back) return;
    this.write(`${back}${lines.map((l) => `${l}\n`).join('')}`);
  }
}

/** A line cut to `cols` visible characters (colour escapes do not count), with … at the cut. */
function cutVisible(line: string, cols: number): string {
  const escapes = /\x1b\[[0-9;]*m/g;
  if (line.replace(escapes, '').length <= cols) return line;
  let seen = 0;
  let out = '';
  for (let i = 0; i < line.length && seen < cols - 1; i++) {
    const m = line[i] === '\x1b' ? /^\x1b\[[0-9;]*m/.exec(line.slice(i)) : null;
    if (m) { out += m[0]; i += m[0].length - 1; continue; }
    out += line[i];
    seen++;
  }
  return `${out}…${line.includes('\x1b') ? '\x1b[0m' : ''}`;
}

interface Waiter { promise: Promise<void>; resolve(): void; reject(e: Error): void }
function deferred(): Waiter {
  let resolve!: () => void, reject!: (e: Error) => void;
  const promise = new Promise<void>((a, b) => { resolve = a; reject = b; });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** A terminal that reports no size (a pseudo-terminal nobody sized, as `script` makes without a
 * terminal of its own) would have listr2 wrap every line at width 0, one character a line. */
function sizeTerminal(stream: NodeJS.WriteStream): void {
  if (stream.isTTY && !stream.columns) stream.columns = 80;
}

/** listr2 view of a pull: one line per layer under the image's task, with its bytes and rate while
 * it downloads, then its unpacking. The task only observes pull events. */
export function pullProgress(opts: { quiet: boolean; plain: boolean; title: string }): { onEvent(e: import('../image/pull').PullEvent): void; finish(error?: Error): Promise<void> } {
  if (opts.quiet) return { onEvent: () => undefined, finish: async () => undefined };
  if (opts.plain) return plainPull(opts.title);
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
    // At most ten updates a second: a fast local pull sends thousands of events.
    if (!task || (!force && performance.now() - shown < 100)) return;
    shown = performance.now();
    task.output = [...layers].map(([d, l]) => line(d, l)).join('\n');
  };
  const list = new Listr([{
    title: opts.title,
    task: async (_: unknown, t: { output: string; title: string }) => { task = t; render(true); await all.promise; render(true); },
    rendererOptions: { persistentOutput: true, outputBar: Infinity },
  }] as never, {
    concurrent: false, exitOnError: true, registerSignalListeners: false,
    renderer: 'default', rendererOptions: { logger, showErrorMessage: false },
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

/** A pull without a terminal (a CI log, a pipe): one line when it starts, one per layer once that
 * layer is in the store (downloaded and unpacked, or there already), one at the end; nothing is
 * redrawn, so each line is written once. */
function plainPull(title: string): { onEvent(e: import('../image/pull').PullEvent): void; finish(error?: Error): Promise<void> } {
  const started = new Map<string, number>();
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  const t0 = performance.now();
  const write = (l: string) => process.stderr.write(`${l}\n`);
  return {
    onEvent(e) {
      if (!started.size) write(MSG.pullStarted(title));
      if (!started.has(e.digest)) started.set(e.digest, performance.now());
      if (e.phase === 'cached') write(MSG.pullLayer(e.digest.slice(7, 19), mb(e.size), undefined));
      else if (e.phase === 'done') write(MSG.pullLayer(e.digest.slice(7, 19), mb(e.size), (performance.now() - started.get(e.digest)!) / 1000));
    },
    async finish(error) {
      // Why it failed is said once, by the command's own message after this view ends.
      if (!error && started.size) write(MSG.pullDone(title, started.size, (performance.now() - t0) / 1000));
    },
  };
}
