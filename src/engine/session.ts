// What `up` and `exec` share once a child is cloned, in the CLI process: the signals the CLI
// takes (each one stops the setup, then goes on to the command), the terminal the child sends
// over its sync socket, waiting for the command, and docker run's exit statuses.
import type { LibSbx } from '../ffi/libsbx';
import type { Step } from '../plan/types';
import type { ChildLink } from './link';

/** node:tty, loaded when the command has a terminal. */
const tty = () => require('node:tty') as typeof import('node:tty');

export const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

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

  constructor(private readonly lib: LibSbx) {}

  /** Every signal the CLI would die of goes to `on` instead, until close(). */
  onSignals(on: (sig: NodeJS.Signals) => void): void {
    for (const sig of SIGNALS) {
      const h = () => on(sig);
      process.on(sig, h);
      this.handlers.push([sig, h]);
    }
  }

  /** The child made its terminal: the master comes over the sync socket. */
  receiveTerminal(link: ChildLink): void {
    this.master = this.lib.recvFd(link.syncFd!);
    if (process.stdout.isTTY) this.lib.setWinsize(this.master, process.stdout.rows, process.stdout.columns);
  }

  /** Relays the user's terminal to the pty master (raw mode, window size), once the command runs. */
  wireTerminal(): void {
    const master = this.master;
    if (master === undefined) return;
    // The pty master is a TTY fd, which net.Socket refuses; tty.ReadStream is a duplex over it.
    const term = new (tty().ReadStream)(master);
    this.ttyDone = new Promise((r) => { term.on('close', () => r()); term.on('error', () => r()); });
    term.pipe(process.stdout, { end: false });
    if (process.stdin.isTTY) { process.stdin.setRawMode(true); this.raw = true; }
    process.stdin.pipe(term);
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
    if (this.raw) process.stdin.setRawMode(false);
    if (this.master !== undefined) { process.stdin.unpipe(); process.stdin.pause(); }
  }
}
