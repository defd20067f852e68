// What a process does with a signal, read from the host's /proc, in the CLI process: used where a
// signal is sent to a sandbox's PID 1 (`up` forwarding Ctrl-C, `stop`), because the kernel drops
// any signal that PID 1 of a pid namespace has left at its default action when it comes from
// outside the namespace. Such a signal has no effect at all, so no grace period can end the command
// gracefully: the CLI kills it at once and says why.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { constants } from 'node:os';

/**
 * caught: a handler; blocked: held for sigwait (as the init reaper and tini take signals), so it
 * is delivered; ignored: SIG_IGN; default: the default action, which a PID 1 never gets from
 * outside its namespace. undefined: the process is gone, or its status cannot be read.
 */
export type Disposition = 'caught' | 'blocked' | 'ignored' | 'default';

/** The bit of signal `sig` in a /proc/PID/status mask (SigCgt, SigBlk, SigIgn: hexadecimal, bit sig-1). */
function hasBit(mask: string | undefined, sig: number): boolean {
  if (!mask) return false;
  return ((BigInt(`0x${mask}`) >> BigInt(sig - 1)) & 1n) === 1n;
}

export function disposition(pid: number, sig: number): Disposition | undefined {
  let status: string;
  try { status = readFileSync(`/proc/${pid}/status`, 'utf8'); } catch { return undefined; }
  const mask = (k: string) => new RegExp(`^${k}:\\s*([0-9a-f]+)$`, 'm').exec(status)?.[1];
  if (hasBit(mask('SigCgt'), sig)) return 'caught';
  if (hasBit(mask('SigBlk'), sig)) return 'blocked';
  if (hasBit(mask('SigIgn'), sig)) return 'ignored';
  if (waitsFor(pid, sig)) return 'blocked';
  return 'default';
}

/** rt_sigtimedwait's number, where this CLI knows it. */
const SIGTIMEDWAIT: Partial<Record<string, number>> = { x64: 128, arm64: 137 };

/**
 * Whether the process sleeps in rt_sigtimedwait on a set holding `sig`. While it waits, the kernel
 * unblocks the set it waits on (SigBlk then reads 0 for them) and keeps the process's own mask
 * aside, where /proc does not show it, yet a signal it waits for is delivered: tini and most
 * small inits block every signal and spend their life there. The set is read from the process's
 * memory at the call's first argument (the CLI may: it is root, or the sandbox's owner and the
 * process is dumpable); a set it cannot read counts as holding the signal, since a process does
 * not sit in sigtimedwait for signals it then lets drop.
 */
function waitsFor(pid: number, sig: number): boolean {
  const nr = SIGTIMEDWAIT[process.arch];
  if (nr === undefined) return false;
  let call: string[];
  try { call = readFileSync(`/proc/${pid}/syscall`, 'utf8').trim().split(' '); } catch { return false; }
  if (Number(call[0]) !== nr) return false;
  try {
    const fd = openSync(`/proc/${pid}/mem`, 'r');
    try {
      const set = Buffer.alloc(8);
      if (readSync(fd, set, 0, 8, Number(BigInt(call[1]!))) !== 8) return true;
      return ((set.readBigUInt64LE(0) >> BigInt(sig - 1)) & 1n) === 1n;
    } finally { closeSync(fd); }
  } catch { return true; }
}

/** The two signals the kernel gives a PID 1 from an ancestor pid namespace whatever it does with them. */
const FORCED: ReadonlySet<number> = new Set([constants.signals.SIGKILL, constants.signals.SIGSTOP]);

/**
 * Whether the kernel drops `sig` sent to `pid`, PID 1 of its pid namespace, from outside it, and
 * why: it ignores it, or leaves it at its default action (its SigCgt lacks it). Read before
 * sending, since a signal that ends it takes its status with it. undefined: the signal reaches it
 * (a handler, a sigwait, SIGKILL or SIGSTOP), or its status cannot be read (gone, or between two
 * runs of a restart), where the caller waits as for one it got.
 */
export function droppedByPid1(pid: number, sig: number): 'ignored' | 'default' | undefined {
  if (FORCED.has(sig)) return undefined;
  const d = disposition(pid, sig);
  return d === 'ignored' || d === 'default' ? d : undefined;
}

/** The process's name as ps shows it (its comm), or undefined once it is gone. */
export function commandName(pid: number): string | undefined {
  try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { return undefined; }
}

/** SIGTERM for 15, and so on; `signal N` for a number Node has no name for. */
export function signalName(sig: number): string {
  return Object.entries(constants.signals).find(([, n]) => n === sig)?.[0] ?? `signal ${sig}`;
}

/** What happened to a signal sent to a sandbox's PID 1, for the CLI to say in its words. */
export type SignalNote =
  /** PID 1 does not handle `signal`, so the kernel dropped it: no wait can end it gracefully, so the CLI killed it at once. */
  | { kind: 'dropped'; signal: string; command: string; disposition: 'ignored' | 'default'; graceMs: number }
  /** The CLI killed the command: the grace ran out, or a second signal came. */
  | { kind: 'killed'; why: 'grace'; signal: string; graceMs: number }
  | { kind: 'killed'; why: 'again'; signal: string };

/** What `sandbox stop` (and `down`) did beyond sending the stop signal. */
export type StopNote =
  /** PID 1 does not handle the stop signal, so the kernel dropped it: killed at once, without the grace period. */
  | { kind: 'dropped'; name: string; signal: string; command: string; disposition: 'ignored' | 'default'; graceMs: number }
  /** Said at the end: it outlived its grace period and was killed. */
  | { kind: 'killed'; name: string; signal: string; graceMs: number };
