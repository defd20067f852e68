// Reading what a sandbox's egress policy refused, from its state folder: `sandbox logs --denials`
// (all of it, or following it), the summary a foreground `up`/`run` prints when it ends, and
// inspect's counts. sbx-egress writes STATE/denials.jsonl (rotated once, at 1 MiB, to
// denials.1.jsonl) and STATE/egress.status; this only reads them. Runs in the CLI process, as
// the caller (root for a root sandbox).
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Plan } from '../plan/types';
import { parseDenials, ruleTexts, type Denial, type EgressStatus } from '../ui/denials';

export const DENIALS = 'denials.jsonl';
export const DENIALS_OLD = 'denials.1.jsonl';
/** The two files are at most 2 MiB together; a read never takes more than this of one. */
const MAX_READ = 4 << 20;

/** A file's text, or '' when it is not there. */
function readText(path: string): string {
  try { return readFileSync(path, 'utf8').slice(0, MAX_READ); } catch { return ''; }
}

/** Every record of a state folder, oldest first (the rotated file, then the current one). */
export function readDenials(dir: string): Denial[] {
  return [...parseDenials(readText(join(dir, DENIALS_OLD))), ...parseDenials(readText(join(dir, DENIALS)))];
}

/** The rules' texts of a sandbox, for "denied by rule 2 "deny *.corp.test"". */
export function rulesOf(dir: string, plan: Plan | undefined): Map<number, string> {
  return ruleTexts(plan, readText(join(dir, 'egress.policy')) || undefined);
}

export function readStatus(dir: string): EgressStatus | undefined {
  try { return JSON.parse(readFileSync(join(dir, 'egress.status'), 'utf8')) as EgressStatus; } catch { return undefined; }
}

/** Whether a plan has an egress policy: any step of the egress family. */
export function hasEgress(plan: Plan): boolean {
  return plan.steps.some((s) => String(s.kind).startsWith('net.egress'));
}

/**
 * Follows STATE/denials.jsonl as sbx-egress appends to it: an fd kept open on the file, so that
 * what was written stays readable after the file is rotated (the fd then reads denials.1.jsonl to
 * its end, and the new file is opened) or removed with the state folder at the end of a
 * foreground run. Woken by fs.watch on the folder, with a poll every `pollMs` as the fallback
 * (fs.watch misses events on some file systems, and cannot watch a folder not yet made).
 */
export class DenialFollower {
  private fd: number | undefined;
  private ino = 0;
  private pos = 0;
  private rest = '';
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly dir: string, private readonly onRecords: (r: Denial[]) => void, private readonly pollMs = 250) {}

  /** From the start of the current file (`fromStart`), or from its end (only what comes next). */
  start(fromStart = true): this {
    this.open(fromStart);
    this.timer = setInterval(() => this.poll(), this.pollMs);
    this.timer.unref?.();
    this.tryWatch();
    return this;
  }

  private tryWatch(): void {
    if (this.watcher || !existsSync(this.dir)) return;
    try {
      this.watcher = watch(this.dir, () => this.poll());
      this.watcher.on('error', () => { this.watcher?.close(); this.watcher = undefined; });
    } catch { /* the poll goes on */ }
  }

  private open(fromStart: boolean): void {
    try {
      const fd = openSync(join(this.dir, DENIALS), 'r');
      const st = fstatSync(fd);
      this.fd = fd; this.ino = st.ino; this.pos = fromStart ? 0 : st.size; this.rest = '';
    } catch { /* not written yet */ }
  }

  private drain(): void {
    if (this.fd === undefined) return;
    const buf = Buffer.alloc(1 << 16);
    let text = '';
    for (let n = 0; (n = readSync(this.fd, buf, 0, buf.length, this.pos)) > 0 && text.length < MAX_READ; ) { this.pos += n; text += buf.toString('utf8', 0, n); }
    if (!text) return;
    const all = this.rest + text;
    const cut = all.lastIndexOf('\n') + 1;
    this.rest = all.slice(cut);
    const recs = parseDenials(all.slice(0, cut));
    if (recs.length) this.onRecords(recs);
  }

  /** Reads what is new; on rotation, finishes the old file and goes on with the new one. */
  poll(): void {
    this.tryWatch();
    this.drain();
    let ino = 0;
    try { ino = statSync(join(this.dir, DENIALS)).ino; } catch { /* gone or not yet */ }
    if (ino && ino !== this.ino) {
      if (this.fd !== undefined) closeSync(this.fd);
      this.fd = undefined;
      this.open(true);
      this.drain();
    }
  }

  /** A last read, then stops watching. */
  stop(): void {
    this.poll();
    if (this.timer) clearInterval(this.timer);
    this.watcher?.close();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
