// The Engine interface: a plan goes in, step events come out. The native engine (libsbx) and
// the recording fake used by unit tests and `up --dry-run` both implement it.
import type { Plan } from '../plan/types';

export interface StepError {
  step: string;
  errno: number;
  /** strerror-style words for errno, or the engine's own message. */
  message: string;
}

export type EngineEvent =
  | { type: 'step'; id: string; phase: 'start' | 'done'; ms?: number }
  | { type: 'step'; id: string; phase: 'failed'; error: StepError; ms?: number }
  | { type: 'undo'; id: string; ok: boolean; message?: string }
  /** Setup is over; the command is running. Progress output must end here. */
  | { type: 'running'; pid: number; attestation?: import('../plan/types').Verdict[] };

export interface RunOptions {
  /** Test-only fault injection: fail this step id as if its system call had failed. */
  failAt?: string;
  /** Test-only: the child stops itself (SIGSTOP) just before this step, until it gets a SIGCONT,
   * so that a test can attack it from inside the sandbox at that moment. */
  pauseAt?: string;
}

export interface RunResult {
  /** docker run's conventions: 125 setup failed, 126/127 exec failed, else the command's status or 128+signal. */
  exitCode: number;
  failed?: StepError;
  /** Setup time, measured by the engine: from its first host step, and from the clone call, to exec. */
  timing?: { setupMs: number; spawnToExecMs: number; seccompCompileMs?: number; capsAndFilterMs?: number; attestMs?: number };
  /** Each step's verdict, read back from the child before its command started (engine/attest.ts). */
  attestation?: import('../plan/types').Verdict[];
  /** The sandbox runs on under its supervisor; the CLI may exit. */
  detached?: boolean;
  /** Detached: the supervisor's exit (a child of this process), which comes once the command has
   * ended for good and its status is written; waiting for it does not keep this process alive. */
  supervisorExit?: () => Promise<number>;
}

export interface Engine {
  readonly name: string;
  run(plan: Plan, onEvent: (e: EngineEvent) => void, opts?: RunOptions): Promise<RunResult>;
}
