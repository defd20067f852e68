// What every section of normalize shares: its context (the file's place and the caller's
// environment; the command line's words and the image are in inputs.ts), how a section reports a problem, and the
// small helpers for values that say where they came from. Pure, as normalize is.
import { isAbsolute, join, normalize as normPath } from 'node:path';
import type { PathSeg } from '../../config/parse';
import type { Source, Val } from '../val';

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
  /** What the loader found of the paths `paths` and its defaults name (gatherPathFacts); absent: nothing was looked at, so globs match nothing and no default applies. */
  pathFacts?: PathFacts;
  /** Where a config path is in the file. */
  where(path: readonly PathSeg[], part?: 'key' | 'value'): Source;
  /** Where character `offset` of the string at `path` is (a token inside an egress rule): past an
   * opening quote; the string's own start when its text in the file is not its value as written
   * on one line (escapes, a variable, a folded scalar). */
  within(path: readonly PathSeg[], offset: number): Source;
}

/** What the file system holds at a path (stat(2), following links). */
export type PathKind = 'dir' | 'file' | 'other' | 'missing';

/** What the loader learnt of the host's files before normalize: the kind of each path a rule,
 * its folder or a protected default names, and each glob's matches (`capped`: the walk stopped). */
export interface PathFacts {
  kinds: Record<string, PathKind>;
  globs: Record<string, { matches: string[]; capped: boolean }>;
}

/** A file's text; undefined when it cannot be read; a problem when it was refused (too big, not text). */
export type FileRead = string | undefined | { code: string; message: string };

export interface SpecProblem { src: Source; code: string; message: string; severity?: 'warning' }

/** How a section reports a problem: every one is kept, and the section goes on with the rest. */
export type Problem = (src: Source, code: string, message: string, severity?: 'warning') => void;


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
