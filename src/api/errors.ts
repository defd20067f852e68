// The library's typed errors (src/api): what a caller catches, as data, where the CLI prints and
// exits. A config error carries every located problem; a setup error the step that failed, its
// errno and the config line behind it. Pure: no I/O.
import { formatDiagnostics, summary, type Diagnostic } from '../config/diagnostic';
import type { Plan } from '../plan/types';

/** The base of every error the library throws on purpose; `exitCode` is what the CLI exits with
 * for it (docker run's conventions: 1 usage, 2 invalid config, 125 setup failed). */
export class SandboxError extends Error {
  constructor(message: string, readonly exitCode: number) { super(message); this.name = new.target.name; }
}

/** The config cannot run: every problem found, each located (FILE:LINE:COL), errors and warnings.
 * `exitCode` 2 for the file's own problems; for the host's present state alone (a port in use, a
 * missing bind source) the status the caller asked for; 1 for a usage problem. */
export class ConfigError extends SandboxError {
  constructor(
    readonly diagnostics: Diagnostic[],
    /** The text of the file (or the YAML an object was written as), for code frames. */
    readonly text: string,
    exitCode = 2,
    /** Other files the diagnostics point into (a seccomp profile), by the name they show. */
    readonly texts: Record<string, string> = {},
    /** The config's name as its diagnostics show it. */
    readonly file?: string,
    /** The plan, when one could be compiled (a reduced plan's table says what each line gets). */
    readonly plan?: Plan,
  ) {
    super(`${summary(diagnostics)}:\n${formatDiagnostics(diagnostics, (d) => texts[d.file] ?? (d.file === diagnostics[0]?.file ? text : undefined))}`.trimEnd(), exitCode);
  }
}

/** Where a step came from: a line of the file, `default`, the image's config, the command line. */
export type StepSource = { file: string; line: number; col: number } | string;

/** A step of the plan failed: nothing of the sandbox is left on the host (the undo ran). */
export class SetupError extends SandboxError {
  constructor(
    /** The plan step's id (`cgroup:memory`, `port:127.0.0.1:8080/tcp`, `exec`). */
    readonly step: string,
    readonly errno: number,
    /** The engine's words for it (strerror, or its own message). */
    readonly reason: string,
    /** The config line behind the step, or `default`. */
    readonly source: StepSource | undefined,
    exitCode = 125,
  ) {
    super(`step ${step} failed: ${reason}${typeof source === 'object' ? ` (${source.file}:${source.line}:${source.col})` : ''}`, exitCode);
  }
}

/** The caller's AbortSignal stopped a start; what it had set up was undone. */
export class AbortError extends SandboxError {
  constructor(message = 'the start was aborted; nothing was left behind') { super(message, 125); }
}

/** An image could not be fetched or read (the registry's or the store's words). */
export class ImageError extends SandboxError {
  constructor(readonly image: string, message: string, readonly source?: StepSource) { super(message, 125); }
}

/** A sandbox named was not found, or is not running when that is needed. */
export class NotFoundError extends SandboxError {
  constructor(message: string) { super(message, 1); }
}
