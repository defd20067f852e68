// What every section of normalize shares: its inputs (the file's place and the caller's
// environment, the command line's words, the image), how a section reports a problem, and the
// small helpers for values that say where they came from. Pure, as normalize is.
import { isAbsolute, join, normalize as normPath } from 'node:path';
import type { PathSeg } from '../../config/parse';
import type { ImageInput } from '../image';
import type { CallerIds, Source, Val } from '../types';

export interface NormalizeContext {
  /** Absolute path of the config file and its folder. */
  file: string;
  dir: string;
  home: string;
  /** The caller's environment, for variables passed through by name. */
  env: Readonly<Record<string, string | undefined>>;
  /** Contents of the env_file entries, by absolute path; undefined when unreadable. */
  envFiles: Readonly<Record<string, FileRead>>;
  /** Contents of a seccomp profile file named by security.seccomp, by absolute path. */
  seccompFiles?: Readonly<Record<string, FileRead>>;
  /** Where a config path is in the file. */
  where(path: readonly PathSeg[], part?: 'key' | 'value'): Source;
}

/** A file's text; undefined when it cannot be read; a problem when it was refused (too big, not text). */
export type FileRead = string | undefined | { code: string; message: string };

export interface SpecProblem { src: Source; code: string; message: string }

/** How a section reports a problem: every one is kept, and the section goes on with the rest. */
export type Problem = (src: Source, code: string, message: string) => void;

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

/** The source of a built-in default. */
export const D = 'default' as const;

export const val = <T>(value: T, src: Source): Val<T> => ({ value, src });

/** The file's value at `path` if it is there, else the default: the one shape of most keys. */
export const valOr = <T>(ctx: NormalizeContext, value: T | undefined, path: readonly PathSeg[], fallback: T): Val<T> =>
  value !== undefined ? val(value, ctx.where(path)) : val(fallback, D);

export const lineOf = (s: Source) => (typeof s === 'object' ? s.line : 0);

/** `table[key]` for the table's own keys only: a key spelled `constructor` is never Object's. */
export const own = <T>(table: Readonly<Record<string, T>> | undefined, key: string): T | undefined => (table && Object.hasOwn(table, key) ? table[key] : undefined);

/** `word` is one of `list`'s members: a type guard over a const list. */
export const isOneOf = <T extends string>(list: readonly T[], word: string): word is T => (list as readonly string[]).includes(word);

/** A host path as written in the file: `~` is the home folder, relative paths start at the file's folder. */
export function resolveHostPath(p: string, dir: string, home: string): string {
  return normPath(p === '~' ? home : p.startsWith('~/') ? join(home, p.slice(2)) : isAbsolute(p) ? p : join(dir, p));
}
