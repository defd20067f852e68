// What normalize is given besides the file: the command line's words, the image, the caller's
// ids. Types only, apart from context.ts, which the spec's own types import (through the sections
// that define parts of the spec) and which must not import them back.
import type { ImageInput } from '../image';
import type { CallerIds, Source } from '../types';

/**
 * What the command line and the image add, given to normalize rather than applied afterwards, so
 * that the rules see the spec that runs. The CLI's words win over the file's; the file's over the image's.
 */
export interface SpecInputs {
  /** `up --name`. */
  name?: string;
  /** `up -d`. */
  detach?: boolean;
  /** `up -i`: the caller's stdin reaches the command, as stdin_open does. */
  interactive?: boolean;
  /** `up -T`: no terminal, whatever the file's `tty` says (docker compose run -T), for a script that runs an interactive file. */
  noTty?: boolean;
  /** `up FILE -- CMD ARGS`: exactly CMD ARGS, replacing the file's and the image's entrypoint and command. */
  command?: string[];
  /** The image's config and unpacked layers, once the store has it. */
  image?: ImageInput;
  /** Without root: the caller's ids. The user namespace is then private by default, mapping the
   * caller to root inside and its subordinate ranges above it, as rootless Podman does. */
  rootless?: CallerIds;
  /** `up FILE -e K=V -v SRC:DST -p HOST:CTR`: added to the file's, or replacing the file's variable
   * of that name, mount on that target, port of that container port; relative paths start at `cwd`. */
  overrides?: { env: CliValue[]; volumes: CliValue[]; ports: CliValue[]; cwd: string };
}

/** One value given on the command line, as written, and where it is there. */
export interface CliValue { value: string; src: Source }
