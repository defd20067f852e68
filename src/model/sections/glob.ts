// Globs of `paths` rules, expanded against the host's files before normalize (by the loader,
// through the PathFs callbacks it is given): `*` and `?` within a name, `[...]` a class (`[!...]`
// its complement), `**` any number of folders. Names starting with a dot match as any other (a
// deny of `./secrets/*` must hide `.key` files too). `**` does not descend through symbolic links.
import type { PathKind } from './context';

/** What the walk reads of the host: a path's kind (following links), a folder's entries (`dir`:
 * a folder itself, not a link to one); undefined when it cannot be read. */
export interface PathFs {
  stat(path: string): PathKind;
  list(dir: string): { name: string; dir: boolean }[] | undefined;
}

/** How many folders one glob may read before the walk stops (and the rule says so). */
export const GLOB_MAX_DIRS = 10000;

export const hasGlob = (p: string) => /[*?[]/.test(p);

/** A name pattern as a regular expression over one name. */
function segmentRegex(seg: string): RegExp {
  let re = '';
  for (let i = 0; i < seg.length; i++) {
    const ch = seg[i]!;
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else if (ch === '[' && seg.indexOf(']', i + 2) > i) {
      const end = seg.indexOf(']', i + 2);
      const body = seg.slice(i + 1, end).replace(/\\/g, '\\\\');
      re += body.startsWith('!') ? `[^${body.slice(1)}]` : `[${body.replace(/^\^/, '\\^')}]`;
      i = end;
    } else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Every existing path an absolute pattern matches, sorted; `capped` when more than GLOB_MAX_DIRS folders were to be read. */
export function expandGlob(pattern: string, fs: PathFs): { matches: string[]; capped: boolean } {
  const segs = pattern.split('/').filter(Boolean);
  const out = new Set<string>();
  let read = 0, capped = false;
  const list = (dir: string) => {
    if (++read > GLOB_MAX_DIRS) { capped = true; return []; }
    return fs.list(dir || '/') ?? [];
  };
  const walk = (dir: string, i: number): void => {
    if (capped) return;
    if (i === segs.length) { out.add(dir || '/'); return; }
    const seg = segs[i]!;
    const last = i === segs.length - 1;
    // A rule on a folder holds everything under it: `dir/**` is `dir`.
    if (seg === '**' && last) { out.add(dir || '/'); return; }
    if (seg === '**') {
      walk(dir, i + 1);
      for (const e of list(dir)) if (e.dir) walk(`${dir}/${e.name}`, i);
      return;
    }
    if (!hasGlob(seg)) {
      const p = `${dir}/${seg}`;
      const kind = fs.stat(p);
      if (last ? kind !== 'missing' : kind === 'dir') walk(p, i + 1);
      return;
    }
    const re = segmentRegex(seg);
    for (const e of list(dir)) {
      if (!re.test(e.name)) continue;
      const p = `${dir}/${e.name}`;
      if (last || e.dir || fs.stat(p) === 'dir') walk(p, i + 1);
    }
  };
  walk('', 0);
  return { matches: [...out].sort(), capped };
}
