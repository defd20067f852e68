// The shapes the CLI's commands pass between them: what the loader is asked and gives back, and
// how `up` is asked to start. Types only, so that main.ts and the commands it registers (run.ts)
// share them without importing each other.
import type { Diagnostic } from '../config/diagnostic';
import type { FoundConfig } from '../config/find';
import type { SandboxSpec } from '../model/types';
import type { SpecInputs } from '../model/normalize';
import type { Plan, HostFeatures } from '../plan/types';
import type { ProgressMode } from '../ui/progress';

import type { PathSeg } from '../config/parse';
import type { CommandLine } from '../api/load';
export type { CommandLine };

export interface ImageOpts { mode: 'pull' | 'store'; insecure?: string[]; quiet?: boolean; progress?: ProgressMode }

export interface Loaded { plan: Plan; file: string; host: HostFeatures; diagnostics: Diagnostic[]; text: string; spec: SandboxSpec; absFile: string; root: PathSeg[] }

/** The loader's options: how the CLI's words reach normalize, and how problems are reported. */
export interface LoadOpts {
  strict?: boolean; format?: string; command?: string[]; hostProblems?: 'error' | 'warning'; forRun?: boolean; detach?: boolean; name?: string;
  /** `up -i`: stdin reaches the command, as stdin_open does. `up -T`: no terminal, whatever `tty` says. */
  interactive?: boolean; noTty?: boolean;
  image?: ImageOpts; source?: FoundConfig;
  /** `up -e/-v/-p`. */
  overrides?: SpecInputs['overrides'];
  /** The command line, for code frames of problems located on it; with `locate`, the whole config
   * came from it (`sandbox run`), and every location in the file is moved to the word behind it. */
  commandLine?: CommandLine;
  /** What an invalid file stops: `run` (the default), or `written` (import, run --save). */
  stops?: string;
  /** Files the config names that are not on the disk, by absolute path: an OCI bundle's seccomp
   * profile, which is a part of its config.json (src/import/oci.ts). */
  files?: Record<string, string>;
  /** Check the host before any pull (up, up --dry-run, run, doctor FILE); its own problems exit with
   * `exit`. refuseKept: `run --name` refuses the name of a sandbox that has ended and is kept. */
  preflight?: { exit: number; refuseKept?: boolean };
  /** `up --allow-weaker`: in reduced mode, a line that cannot be held is dropped, not refused. */
  allowWeaker?: boolean;
}

/** `up`'s and `run`'s options once the plan is made: `progress` is the view's mode (from
 * --progress and -q; without it, auto, or quiet with `quiet`). */
export interface UpOpts {
  dryRun?: boolean; quiet?: boolean; detach?: boolean; attest?: string; progress?: ProgressMode; verbose?: boolean;
  /** With dryRun: the plan as JSON, as plan --json prints it. */
  json?: boolean;
  /** run --rm: nothing of the sandbox is kept once its command has ended for good, its anonymous
   * volumes included (named ones stay, as Docker's). */
  rm?: boolean;
}
