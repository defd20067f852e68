// Finding and reading the config file: an explicit path wins; otherwise cosmiconfig looks upward
// from the cwd. YAML and JSON only: sandbox runs as root and must never execute a JS config.
import { closeSync, openSync, readSync } from 'node:fs';
import { basename, extname, relative, resolve } from 'node:path';
import { LIMITS, type PathSeg } from './parse';

export const SEARCH_PLACES = ['package.json', 'sandbox.yml', 'sandbox.yaml', '.sandboxrc', '.sandboxrc.yml', '.sandboxrc.yaml', '.sandboxrc.json'];

export interface FoundConfig {
  /** As shown in messages: relative to the cwd when inside it. */
  file: string;
  absFile: string;
  bytes: Uint8Array;
  /** ['sandbox'] for package.json. */
  root: PathSeg[];
}

export class FindError extends Error {
  constructor(message: string, readonly exitCode: number) { super(message); }
}

const CODE_EXTS = new Set(['.js', '.cjs', '.mjs', '.ts', '.cts', '.mts', '.jsx', '.tsx']);

export function displayName(abs: string, cwd = process.cwd()): string {
  const rel = relative(cwd, abs);
  return rel && !rel.startsWith('..') ? rel : abs;
}

/**
 * At most `max + 1` bytes of a file: enough to tell that it is over a cap of `max`, never all of
 * a huge one (/proc/self/exe, /dev/zero). Throws as readFileSync does (ENOENT, EISDIR, EACCES).
 */
export function readBounded(path: string, max: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(max + 1);
    let n = 0;
    while (n < buf.length) {
      const k = readSync(fd, buf, n, buf.length - n, null);
      if (k === 0) break;
      n += k;
    }
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

export function readConfig(absFile: string, cwd = process.cwd()): FoundConfig {
  if (CODE_EXTS.has(extname(absFile))) throw new FindError(`${displayName(absFile, cwd)}: sandbox reads YAML and JSON configs only; a JavaScript config would run code as root. Write it as YAML.`, 2);
  let bytes: Uint8Array;
  try {
    bytes = readBounded(absFile, LIMITS.bytes);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder; name a .yml file in it' : code === 'EACCES' ? 'permission denied' : String(code);
    throw new FindError(`${displayName(absFile, cwd)}: cannot read the config: ${why}`, 2);
  }
  return { file: displayName(absFile, cwd), absFile, bytes, root: basename(absFile) === 'package.json' ? ['sandbox'] : [] };
}

/** The explicit path, or the nearest config found upward from `cwd`. */
export async function findConfig(explicit: string | undefined, cwd = process.cwd()): Promise<FoundConfig> {
  if (explicit) return readConfig(resolve(cwd, explicit), cwd);
  // Loaded only here: most runs name their file and never pay for cosmiconfig.
  const { cosmiconfig } = require('cosmiconfig') as typeof import('cosmiconfig');
  const found = (_path: string, content: string) => ({ found: content.length >= 0 });
  const explorer = cosmiconfig('sandbox', {
    searchPlaces: SEARCH_PLACES,
    searchStrategy: 'global',
    packageProp: 'sandbox',
    // Every loader returns a marker only: the file is parsed again, with locations, by parse.ts.
    loaders: {
      '.json': (path: string, content: string) => (basename(path) === 'package.json' ? safeJson(content) : found(path, content)),
      '.yaml': found, '.yml': found, noExt: found,
      '.js': refuse, '.cjs': refuse, '.mjs': refuse, '.ts': refuse,
    },
  });
  let result;
  try {
    result = await explorer.search(cwd);
  } catch (e) {
    throw new FindError(`cannot look for a config: ${(e as Error).message}`, 2);
  }
  if (!result) throw new FindError(`no config found in ${cwd} or above it (looked for ${SEARCH_PLACES.join(', ')}); name a file: sandbox up FILE`, 2);
  return readConfig(result.filepath, cwd);
}

function safeJson(content: string): unknown {
  try { return JSON.parse(content); } catch { return {}; }
}

function refuse(): never {
  throw new Error('JavaScript configs are never loaded');
}
