// A value of the spec and where it came from: the two types every other type of the spec is made
// of, in a file of their own so that the sections (src/model/sections) that define parts of the
// spec and model/types.ts, which gathers them, need not import each other.

/** A config location, or the built-in default, or the command line. */
export type Source = { file: string; line: number; col: number } | 'default' | 'cli' | 'image';

export interface Val<T> { value: T; src: Source }
