// What `up` and `exec` share once a child is cloned, in the CLI process: the signals the CLI
// takes (each one stops the setup, then goes on to the command, which is killed if it outlives
// its grace period), the terminal the child sends over its sync socket, waiting for the command,
// and docker run's exit statuses.
import { closeSync, readlinkSync } from 'node:fs';
import { constants } from 'node:os';
import type { LibSbx } from '../ffi/libsbx';
import type { Step } from '../plan/types';
import type { ChildLink } from './link';
import { commandName, droppedByPid1, type SignalNote } from './signals';

/** node:tty, loaded when the command has a terminal. */
const tty = () => require('node:tty') as typeof import('node:tty');

export const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
/** The signals that ask the command to end: the first starts its grace period, a second kills it.
 * SIGQUIT is only passed on (a JVM prints its threads on it). Any of them that PID 1 cannot get
 * kills it at once. */
const STOPS: ReadonlySet<NodeJS.Signals> = new Set(['SIGINT', 'SIGTERM', 'SIGHUP']);

/** Where the signals the CLI takes go once the command runs. */
export interface Forwarding {
  /** The sandbox's PID 1 (`up`), or the relay that `sandbox exec` leaves in the CLI's pid namespace. */
  pid: number;
  /** It is PID 1 of its pid namespace, which gets from outside only the signals it handles. */
  pid1: boolean;
  /** stop_grace_period: how long the command may take to end after a stop signal. */
  graceMs: number;
  /** What the CLI tells the user: a signal PID 1 cannot get, a kill. */
  note: (n: SignalNote) => void;
}

/** A unix socket a terminal's master is sent to (sandbox-runtime --console-socket), with the size
 * to give the terminal first (process.consoleSize). */
export interface ConsoleSocket { path: string; size?: { rows: number; cols: number } }

/** A wait status as a shell reports it: the exit code, or 128 + the signal. */
export function exitStatus(status: number): number {
  return (status & 0x7f) === 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
}

/** docker run's status for a failed step: 127 the command was not found, 126 it could not run, 125 setup failed. */
export function failedStepStatus(step: Step, errno: number): number {
  return step.kind === 'exec' ? (errno === 2 ? 127 : 126) : 125;
}

export class Session {
  private readonly handlers: [NodeJS.Signals, () => void][] = [];
  private master: number | undefined;
  private raw = false;
  private ttyDone: Promise<void> = Promise.resolve();
  private piped = false;
  private target: Forwarding | undefined;
  private kill: NodeJS.Timeout | undefined;
  /** The command was killed at once: PID 1 let the signal drop. */
  private killedAtOnce = false;
  /** The stop signal that started the grace period, and when. */
  private first: { sig: NodeJS.Signals; at: number } | undefined;
  /** sandbox-runtime's --console-socket: where the terminal's master goes instead of this process's stdio. */
  private consoleSocket: ConsoleSocket | undefined;

  constructor(private readonly lib: LibSbx) {}

  /** Every signal the CLI would die of goes to `on` instead, until forwardTo() or close(). */
  onSignals(on: (sig: NodeJS.Signals) => void): void {
    for (const sig of SIGNALS) {
      const h = () => (this.target ? this.forward(sig) : on(sig));
      process.on(sig, h);
      this.handlers.push([sig, h]);
    }
  }

  /** From now on the signals the CLI takes go to the command (docker run's sig-proxy), and the
   * command ends: a stop signal gives it its grace period, then SIGKILL; a second one kills it at
   * once, as does the first when PID 1 lets it drop. */
  forwardTo(target: Forwarding): void {
    this.target = target;
  }

  /** Whether a signal has been passed on to the command: it ends a restart policy, as docker stop does. */
  get signalled(): boolean { return this.passedOn; }
  private passedOn = false;

  private forward(sig: NodeJS.Signals): void {
    const t = this.target!;
    this.passedOn = true;
    const killNow = () => { try { process.kill(t.pid, 'SIGKILL'); } catch { /* gone */ } };
    // Killed already: what comes after (timeout's second copy, another Ctrl-C) changes nothing.
    if (this.killedAtOnce) return;
    // timeout(1) signals its command and then its process group, so the CLI gets the one signal
    // twice within microseconds: that is not a second Ctrl-C, which no hand repeats so fast.
    if (this.first && this.first.sig === sig && Date.now() - this.first.at < 100) return;
    if (this.kill) {
      // The command had its chance: Ctrl-C twice ends it at once.
      clearTimeout(this.kill);
      killNow();
      t.note({ kind: 'killed', why: 'again', signal: sig });
      return;
    }
    // Read before sending: once a signal ends it, PID 1's status is gone. A signal PID 1 lets
    // drop never arrives, so waiting its grace period could only end in the same kill: now.
    const dropped = t.pid1 ? droppedByPid1(t.pid, constants.signals[sig]) : undefined;
    if (dropped) {
      const command = commandName(t.pid);
      killNow();
      this.killedAtOnce = true;
      t.note({ kind: 'dropped', signal: sig, command: command ?? '?', disposition: dropped, graceMs: t.graceMs });
      return;
    }
    try { process.kill(t.pid, sig); } catch { return; }
    if (!STOPS.has(sig)) return;
    this.first = { sig, at: Date.now() };
    this.kill = setTimeout(() => { killNow(); t.note({ kind: 'killed', why: 'grace', signal: sig, graceMs: t.graceMs }); }, t.graceMs);
  }

  /** From now on the terminal's master is sent over this unix socket (SCM_RIGHTS, as runc's
   * --console-socket) and closed here; nothing of it is relayed by this process. */
  sendTerminalTo(socket: ConsoleSocket): void { this.consoleSocket = socket; }

  /** The child made its terminal: the master comes over the sync socket. A console socket that
   * cannot take it throws (the console step fails). */
  receiveTerminal(link: ChildLink): void {
    const master = this.lib.recvFd(link.syncFd!);
    if (this.consoleSocket) {
      const { path, size } = this.consoleSocket;
      try {
        if (size) this.lib.setWinsize(master, size.rows, size.cols);
        let name = '/dev/ptmx';
        try { name = readlinkSync(`/proc/self/fd/${master}`); } catch { /* the generic name */ }
        this.lib.sendFd(path, master, name);
      } finally { closeSync(master); }
      return;
    }
    this.master = master;
    if (process.stdout.isTTY) this.lib.setWinsize(this.master, process.stdout.rows, process.stdout.columns);
  }

  /** Relays the pty master to the user's terminal (and the window size), once the command runs;
   * with `stdin` (stdin_open, -i) also the user's keys, in raw mode, as docker run -it does. */
  wireTerminal(stdin: boolean): void {
    const master = this.master;
    if (master === undefined) return;
    // The pty master is a TTY fd, which net.Socket refuses; tty.ReadStream is a duplex over it.
    const term = new (tty().ReadStream)(master);
    this.ttyDone = new Promise((r) => { term.on('close', () => r()); term.on('error', () => r()); });
    term.pipe(process.stdout, { end: false });
    if (stdin) {
      if (process.stdin.isTTY) { process.stdin.setRawMode(true); this.raw = true; }
      process.stdin.pipe(term);
      this.piped = true;
    }
    if (process.stdout.isTTY) {
      const w = () => { try { this.lib.setWinsize(master, process.stdout.rows, process.stdout.columns); } catch { /* closed */ } };
      process.on('SIGWINCH', w);
      this.handlers.push(['SIGWINCH', w]);
    }
  }

  /** The command's exit status, once the terminal (if any) has drained what it wrote last. */
  async waitCommand(link: ChildLink): Promise<number> {
    const status = await link.wait();
    if (this.master !== undefined) {
      // Briefly: the timer must not keep Node alive.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.ttyDone, new Promise((r) => { timer = setTimeout(r, 200); })]);
      clearTimeout(timer);
    }
    return exitStatus(status);
  }

  close(): void {
    for (const [sig, h] of this.handlers) process.removeListener(sig, h);
    clearTimeout(this.kill);
    if (this.raw) process.stdin.setRawMode(false);
    if (this.piped) { process.stdin.unpipe(); process.stdin.pause(); }
  }
}
