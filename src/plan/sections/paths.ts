// `paths` and its protected defaults (spec.paths, resolved by normalize: one rule per host path,
// shallow first): the mounts stage. A read_only or read_write rule is a bind of the host path
// before pivot_root, ordered by depth among the volumes (the most specific mount lands on top); a
// deny is masked in the new root after it (an empty read-only tmpfs over a folder, /dev/null over
// a file), or, for a denied folder that holds other rules, covered by an empty tmpfs before
// pivot_root and made read-only after it; a protected start-up file is remounted read-only in the
// new root. Each step cites its rule's line, or `default` for the protected ones.
// A Landlock ruleset (issue 25, part 3) would be made from the same spec.paths.rules, in the
// security stage, after these mounts: path → access, beside these steps, not instead of them.
import { hasGlob } from '../../model/sections/glob';
import type { PathRule } from '../../model/types';
import type { Compilation } from './context';

const where = (r: PathRule) => (r.at === r.path ? r.path : `${r.path} (at ${r.at})`);

/** 1. rootfs, on the host before the clone: a placeholder where a denied path does not exist yet. */
export function pathPlaceholders(ctx: Compilation): void {
  for (const r of ctx.spec.paths.rules) {
    if (!r.placeholder) continue;
    const what = r.placeholder === 'dir' ? 'folder' : 'file';
    ctx.add('rootfs', `placeholder:${r.path}`, 'path.placeholder', (r.access === 'deny'
      ? `make an empty ${what} at ${r.path}, which does not exist yet, for the deny of it to cover: the sandbox cannot create it, nor see one the host writes there (removed after the run while still empty)`
      : `make an empty ${what} at ${r.path}, which does not exist yet, to keep read-only: the sandbox cannot create this start-up file in its writable folder (removed after the run while still empty)`), r.src,
      { path: r.path, type: r.placeholder }, { kind: 'path.placeholder.remove', args: { path: r.path, type: r.placeholder } });
  }
}

/** The rules bound before pivot_root, each with its target, for the mounts stage to order among the volumes. */
export function pathBinds(ctx: Compilation): { target: string; add(): void }[] {
  return ctx.spec.paths.rules.flatMap((r) => {
    if (r.how === 'bind' && r.origin === 'protect') {
      const title = `bind ${r.at} on itself, so that it cannot be moved aside and replaced by a .git with hooks of its own (a mount point cannot be renamed): its hooks and config stay read-only`;
      return [{ target: r.at, add: () => ctx.add('mounts', `pin:${r.at}`, 'mount.bind', title, r.src, { source: r.path, target: r.at, readOnly: false, recursive: true, propagation: 'rprivate', flags: ['nosuid', 'nodev'] }) }];
    }
    if (r.how === 'bind') {
      const ro = r.access === 'read_only';
      const title = `${ro ? 'show' : 'let the command write'} the host's ${where(r)}${ro ? ' read-only' : ''} (nosuid, nodev)${r.pattern !== r.path ? `: \`${r.pattern}\`` : ''}`;
      return [{ target: r.at, add: () => ctx.add('mounts', `path:${r.at}`, 'mount.bind', title, r.src, { source: r.path, target: r.at, readOnly: ro, recursive: true, propagation: 'rprivate', flags: ['nosuid', 'nodev'] }) }];
    }
    if (r.how === 'cover') {
      const title = `hide the host's ${where(r)} under an empty tmpfs, read-only once the rules inside it are bound (after pivot_root)`;
      return [{ target: r.at, add: () => ctx.add('mounts', `path:${r.at}`, 'mount.tmpfs', title, r.src, { target: r.at, sizeBytes: 65536, mode: 0o755, readOnly: false, flags: ['nosuid', 'nodev', 'noexec'] }) }];
    }
    return [];
  });
}

/** After pivot_root, in the new root: denies masked, covered folders made read-only, protected files read-only. */
export function pathsAfterPivot(ctx: Compilation): void {
  for (const r of ctx.spec.paths.rules) {
    if (r.how === 'mask') ctx.add('mounts', `${r.origin === 'hide' ? 'hide' : 'deny'}:${r.at}`, 'mount.mask', maskTitle(r), r.src, { path: r.at });
    else if (r.how === 'cover') ctx.add('mounts', `deny:${r.at}`, 'mount.readonly', `make the empty tmpfs over ${r.at} read-only: the denied folder stays empty`, r.src, { path: r.at });
    else if (r.how === 'readonly') ctx.add('mounts', `protect:${r.at}`, 'mount.readonly', `keep ${r.at} read-only: in a writable host folder, ${r.pattern} is ${r.pattern.startsWith('.git/') ? 'run or read by git' : 'read or run by shells and editors'} on the host later (name it in \`paths\` to change this)`, r.src, { path: r.at });
  }
}

function maskTitle(r: PathRule): string {
  const how = r.kind === 'dir' ? 'an empty read-only tmpfs over the folder' : r.kind === 'missing' ? `it does not exist yet: ${r.placeholder === 'dir' ? 'an empty read-only tmpfs' : '/dev/null'} over the placeholder made before the clone` : '/dev/null over the file';
  if (r.origin === 'hide') return `hide ${where(r)}, the caller's credentials (${r.pattern}), wherever the home is visible (${how}; name it in \`paths.read_only\` to show it)`;
  // A glob is expanded once, as the sandbox starts (model/sections/paths.ts): a mount can only
  // cover what exists, and no Landlock rule denies; the plan says so at each match.
  const glob = hasGlob(r.pattern) ? ', a match as the sandbox starts: a file made later that matches it is not hidden' : '';
  return `hide the host's ${where(r)} (${how})${r.pattern !== r.path ? `: \`${r.pattern}\`${glob}` : ''}`;
}
