// The child's reports during setup: struct sbx_event records (native/include/sbx.h) read from the
// events socket in the CLI process, decoded into step events, and what a failure's errno means.
import { getSystemErrorMap } from 'node:util';
import { EV, EVENT_OFFSET as EO, EVENT_SIZE, OP } from '../ffi/generated/abi';
import type { Plan, Step } from '../plan/types';
import type { ChildLink } from './link';
import type { EngineEvent } from './types';

export function errnoText(errno: number): string {
  const e = getSystemErrorMap().get(-errno);
  return e ? `${e[1]} (${e[0]})` : `errno ${errno}`;
}

/** What a failed child step means, where the errno alone would mislead: the child reports these
 * errnos for checks of its own (mount.c, sysctl.c, console.c), not for a failed system call. */
export function childFailureText(step: Step, errno: number): string {
  if (step.kind === 'mount.mask' && errno === 25) return `the sandbox's /dev/null is not the null device (character device 1:3), so it cannot hide ${step.args.path}; mount nothing on /dev/null`;
  if (step.kind === 'mount.workdir' && errno === 20) return `${step.args.path} is there and is not a folder, so it cannot be the working directory; choose another (workdir, -w)`;
  if (step.kind === 'sysctl' && errno === 18) return `/proc/sys/${step.args.name.replace(/\./g, '/')} is not a file of the sandbox's own /proc; refused`;
  if ((step.kind === 'console' || step.kind === 'mount.devpts') && errno === 25) return 'the sandbox\'s /dev/pts/ptmx is not the multiplexer of a devpts file system; refused';
  return errnoText(errno);
}

/** A step the child reported as failed: its index in the plan, the errno and what it means. */
export interface ChildFailure { index: number; errno: number; message: string }

export interface EventHandlers {
  onEvent(e: EngineEvent): void;
  onFail(f: ChildFailure): void;
  /** The child made its terminal and is sending the master over the sync socket. */
  onConsole(): void;
  /** sandbox-runtime exec (SBX_F_FORK_PARENT): the command's host pid, a child of this process. */
  onForked?(pid: number): void;
  /** The child is about to exec (CLOCK_MONOTONIC ns); it waits for 'E'. */
  onExecStart(ns: bigint): Promise<void>;
}

/** Reads struct sbx_event records until EOF (exec, or the child's death). */
export function readEvents(link: ChildLink, plan: Plan, h: EventHandlers): Promise<void> {
  return new Promise((resolve) => {
    const sock = link.events;
    let buf = Buffer.alloc(0);
    const started = new Map<number, bigint>();
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= EVENT_SIZE) {
        const step = buf.readUInt32LE(EO.step), phase = buf.readUInt32LE(EO.phase), err = buf.readInt32LE(EO.err), kind = buf.readUInt32LE(EO.op), ns = buf.readBigUInt64LE(EO.ns);
        buf = buf.subarray(EVENT_SIZE);
        const s = plan.steps[step];
        if (!s) continue;
        if (phase === EV.START) {
          if (!started.has(step)) { started.set(step, ns); h.onEvent({ type: 'step', id: s.id, phase: 'start' }); }
          if (s.kind === 'exec') void h.onExecStart(ns).catch(() => undefined);
        } else if (phase === EV.DONE) {
          if (kind === OP.CONSOLE) {
            // The terminal could not be received or passed on: the console step fails, and the
            // child that made it is ended (it would wait for the exec's go-ahead otherwise).
            try { h.onConsole(); } catch (e) {
              h.onFail({ index: step, errno: (e as { errno?: number }).errno ?? 5, message: (e as Error).message });
              try { process.kill(link.pid, 'SIGKILL'); } catch { /* gone */ }
              continue;
            }
          }
          // The process that forked reports the command's pid in err, and exits; the command
          // reports the step done itself.
          if (kind === OP.FORK && err > 0) { h.onForked?.(err); continue; }
          // A step of several ops reports done once per op: each time is its own.
          if (s.kind !== 'exec') h.onEvent({ type: 'step', id: s.id, phase: 'done', ms: Number(ns - (started.get(step) ?? ns)) / 1e6 });
        } else if (phase === EV.FAILED) {
          h.onFail({ index: step, errno: err, message: childFailureText(s, err) });
        }
      }
    };
    sock.on('data', onData);
    sock.on('end', () => resolve());
    sock.on('error', () => resolve());
    if (link.initial.length) onData(link.initial);
    sock.resume();
  });
}
