// Host-wide locks and owners between concurrent CLIs, as files under the state root: no daemon
// arbitrates, so each claim names its process (PID and start time, so that a reused PID is not
// mistaken for it), and a claim whose process is gone — a CLI killed with -9 — is taken over.
// Runs in the CLI process as root.
import { mkdirSync, openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import { dirname } from 'node:path';

/** The fields of /proc/PID/stat after the command name (state first, so field N is [N - 3]), or undefined once it is gone. */
export function procStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch { return undefined; }
}

/** A process's start time in clock ticks since boot (field 22), or undefined. */
function startTime(pid: number): string | undefined { return procStat(pid)?.[19]; }

/** "PID STARTTIME" of this process: read once, as neither changes while it runs (a library that
 * starts many sandboxes claims locks several times per start, and /proc/self/stat of a Node
 * process sums all its threads' times at each read). */
let self: string | undefined;
export function selfOwner(): string { return (self ??= `${process.pid} ${startTime(process.pid) ?? 0}`); }

/** Whether the process an owner line names still runs. */
export function ownerAlive(owner: string | undefined): boolean {
  if (!owner) return false;
  const [pid, start] = owner.trim().split(' ');
  return !!pid && startTime(Number(pid)) === start;
}

export function readOwner(path: string): string | undefined {
  try { return readFileSync(path, 'utf8'); } catch { return undefined; }
}

/** Runs fn while holding the lock file at path; waits up to timeoutMs for a live holder. */
export async function withLock<T>(path: string, fn: () => T | Promise<T>, timeoutMs = 10_000): Promise<T> {
  mkdirSync(dirname(path), { recursive: true });
  for (const until = Date.now() + timeoutMs; ;) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      try { writeSync(fd, selfOwner()); } finally { closeSync(fd); }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = readOwner(path);
      // An empty file is a holder between its open and its write: wait for it like a live one.
      if (holder && !ownerAlive(holder)) { try { unlinkSync(path); } catch { /* another waiter took it over */ } continue; }
      if (Date.now() > until) throw new Error(`${path} is held by process ${holder?.split(' ')[0] ?? '?'}; try again once it has finished`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  try { return await fn(); } finally { try { unlinkSync(path); } catch { /* gone */ } }
}
