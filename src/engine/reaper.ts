// Waits for many children of this process at once (the library, src/api: one process may run
// fifty sandboxes), without a thread each: koffi's blocking sbx_wait holds one of libuv's four
// worker threads per child, so the fifth sandbox's wait, and the process's file and DNS work,
// would queue behind the first four. Here each SIGCHLD (and, in case one is missed while nothing
// listened, a slow timer) reaps whichever of the waited children have exited, with WNOHANG.
// Runs on the event loop of the process that cloned them.
import type { LibSbx } from '../ffi/libsbx';

interface Waiter { resolve(status: number): void; reject(e: unknown): void }

const waiting = new Map<number, Waiter>();
let lib: LibSbx | undefined;
let timer: NodeJS.Timeout | undefined;

function sweep(): void {
  for (const [pid, w] of waiting) {
    let status: number | undefined;
    try { status = lib!.tryWait(pid); } catch (e) { waiting.delete(pid); w.reject(e); continue; }
    if (status !== undefined) { waiting.delete(pid); w.resolve(status); }
  }
  if (!waiting.size) stop();
}

function stop(): void {
  process.removeListener('SIGCHLD', sweep);
  clearInterval(timer);
  timer = undefined;
}

/** The raw wait status of pid, a child of this process, once it exits. The timer keeps the
 * process alive while a child is waited for, as a pending waitpid would. */
export function reap(l: LibSbx, pid: number): Promise<number> {
  lib = l;
  return new Promise((resolve, reject) => {
    waiting.set(pid, { resolve, reject });
    if (!timer) {
      process.on('SIGCHLD', sweep);
      timer = setInterval(sweep, 200);
    }
    // It may have exited before the listener was there.
    sweep();
  });
}
