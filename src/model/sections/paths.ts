// `paths`: what the command may read and write of the host's files, on top of the root and the
// volumes, and the protected defaults of a writable host folder. A rule names a host path or a
// glob (relative to the file's folder, ~ for the caller's home); the command sees it where the
// sandbox shows that host path: at the same path (`rootfs: host`, or a rule's own bind), or under
// a bind volume's target. Pure: globs are expanded and paths looked at before normalize, by
// gatherPathFacts, which the loader calls with the file system's callbacks (as it reads env files).
//
// The resolved list (PathsSpec.rules) is what the plan's mount steps are made of, and what a
// Landlock ruleset would be made of too (issue 25, part 3): each rule's host path, its access and
// its place in the sandbox, already reduced to one rule per path by precedence.
import { posix } from 'node:path';
import type { UserConfig } from '../../config/types';
import type { MountSpec, PathAccess, PathExposure, PathKind, PathRule, PathsSpec, RootfsSpec, Source } from '../types';
import { HOST_ROOT_DIRS } from '../tables';
import { resolveHostPath, type NormalizeContext, type PathFacts, type Problem } from './context';
import { expandGlob, hasGlob, type PathFs } from './glob';
import type { SpecInputs } from './inputs';
import { normalizeMounts } from './mounts';

export type { PathFs } from './glob';

const ACCESSES: readonly PathAccess[] = ['deny', 'read_only', 'read_write'];
/** Of two rules on one path, the stricter wins. */
const STRICTNESS: Record<PathAccess, number> = { deny: 3, read_only: 2, read_write: 1 };

/** Start-up files of git, shells and editors: what a later command on the host runs or reads as
 * settings. In a writable host folder they stay read-only (sandbox-runtime's list, with the other
 * shells' files, vim's and direnv's). Only those that exist are protected, but in the caller's own
 * home, where the missing HOME_STARTUP files get an empty placeholder for the run (see README). */
export const PROTECTED_FILES = [
  '.git/hooks', '.git/config', '.gitconfig', '.gitmodules', '.bashrc', '.bash_profile', '.bash_login', '.profile',
  '.zshrc', '.zshenv', '.zprofile', '.zlogin', '.vimrc', '.envrc', '.ripgreprc', '.mcp.json', '.vscode', '.idea',
] as const;
/** The start-up files of PROTECTED_FILES that the caller's shells, vim and git read from its home. */
export const HOME_STARTUP = ['.bashrc', '.bash_profile', '.bash_login', '.profile', '.zshrc', '.zshenv', '.zprofile', '.zlogin', '.vimrc', '.gitconfig'] as const;
/** The caller's credentials, relative to its home: hidden wherever the home is visible. */
export const CREDENTIALS = [
  '.ssh', '.aws', '.config/gcloud', '.azure', '.kube', '.docker/config.json', '.npmrc', '.netrc', '.gnupg', '.git-credentials',
] as const;

/** One entry of the file's lists, before precedence. */
interface Entry { access: PathAccess; pattern: string; abs: string; glob: boolean; src: Source }
/** A match of an entry. */
interface Candidate { access: PathAccess; path: string; literal: boolean; pattern: string; src: Source }

const inside = (p: string, dir: string) => dir === '/' || p === dir || p.startsWith(`${dir}/`);
const depth = (p: string) => p.split('/').filter(Boolean).length;
const lineOf = (s: Source) => (typeof s === 'object' ? `line ${s.line}` : s);

/** The file's entries, each resolved to an absolute pattern; a relative one climbing out of the file's folder is refused. */
function entriesOf(cfg: Pick<UserConfig, 'paths'>, ctx: Pick<NormalizeContext, 'dir' | 'home' | 'where'>, problem?: Problem): Entry[] {
  const out: Entry[] = [];
  for (const access of ACCESSES) {
    (cfg.paths?.[access] ?? []).forEach((pattern, i) => {
      const src = ctx.where(['paths', access, i]);
      const relative = !pattern.startsWith('/') && pattern !== '~' && !pattern.startsWith('~/');
      if (relative && posix.normalize(pattern).split('/')[0] === '..') {
        problem?.(src, 'path-escapes', `\`${pattern}\` climbs out of this file's folder with ..: rules relative to the file stay inside it; write the path as absolute (${resolveHostPath(pattern, ctx.dir, ctx.home)}) or from ~`);
        return;
      }
      out.push({ access, pattern, abs: resolveHostPath(pattern, ctx.dir, ctx.home).replace(/(.)\/+$/, '$1'), glob: hasGlob(pattern), src });
    });
  }
  return out;
}

/** The host folders the sandbox may write: read_write rules' folders and writable bind volumes (their host source, and where the command sees it). */
function writableFolders(rules: readonly { access: PathAccess; path: string; at?: string; kind?: PathKind }[], mounts: readonly MountSpec[]): string[] {
  const rw = rules.filter((r) => r.access === 'read_write' && r.kind === 'dir').map((r) => r.path);
  const vols = mounts.flatMap((m) => (m.kind === 'bind' && !m.readOnly ? [m.source] : []));
  return [...new Set([...rw, ...vols])];
}

/**
 * Before normalize (the loader, with the file system): the kind of each path the rules, their
 * folders and the defaults name, and each glob's matches.
 */
export function gatherPathFacts(cfg: UserConfig, ctx: NormalizeContext, inputs: SpecInputs, fs: PathFs): PathFacts {
  // The volumes as normalize will make them (their problems are normalize's to say).
  const { mounts } = normalizeMounts(cfg, ctx, inputs, () => {});
  const facts: PathFacts = { kinds: {}, globs: {} };
  const kind = (p: string) => (facts.kinds[p] ??= fs.stat(p));
  const named: { access: PathAccess; path: string; kind: PathKind }[] = [];
  for (const e of entriesOf(cfg, ctx)) {
    const paths = e.glob ? (facts.globs[e.abs] ??= expandGlob(e.abs, fs)).matches : [e.abs];
    for (const p of paths) named.push({ access: e.access, path: p, kind: kind(p) });
    if (!e.glob) kind(posix.dirname(e.abs));
  }
  for (const w of writableFolders(named, mounts)) for (const f of PROTECTED_FILES) kind(posix.join(w, f));
  for (const c of CREDENTIALS) kind(posix.join(ctx.home, c));
  return facts;
}

/** The file's entries as one candidate per path: globs expanded (one matching nothing is a warning), then precedence. */
function candidatesOf(entries: readonly Entry[], facts: PathFacts | undefined, problem: Problem): Candidate[] {
  const all: Candidate[] = [];
  for (const e of entries) {
    if (!e.glob) { all.push({ access: e.access, path: e.abs, literal: true, pattern: e.pattern, src: e.src }); continue; }
    const found = facts?.globs[e.abs];
    if (!found) continue;
    if (found.capped) problem(e.src, 'path-glob-too-broad', `\`${e.pattern}\` reaches more than ${found.matches.length} files and folders, more than sandbox walks; name a narrower folder before the **`, 'warning');
    if (!found.matches.length) problem(e.src, 'path-glob-empty', `\`${e.pattern}\` matches nothing under ${e.abs.split(/[*?[]/)[0]}: the rule does nothing this run; check the pattern, or remove it`, 'warning');
    for (const m of found.matches) all.push({ access: e.access, path: m, literal: false, pattern: e.pattern, src: e.src });
  }
  // The most specific rule wins: a path named as it is beats a glob's match; of two alike, the stricter.
  const best = new Map<string, Candidate>();
  for (const c of all) {
    const b = best.get(c.path);
    if (!b || (c.literal && !b.literal) || (c.literal === b.literal && STRICTNESS[c.access] > STRICTNESS[b.access])) best.set(c.path, c);
  }
  return [...best.values()];
}

/**
 * Every place the sandbox shows a host path: under each bind volume that holds it, and, where the
 * root is the host's, at the same path when a system folder or a read rule bound there shows it.
 * A deny is applied at each of them (a folder bound twice is hidden twice); a read rule that no
 * volume holds is bound at its own path (`bindHere`).
 */
function locator(rootfs: RootfsSpec, mounts: readonly MountSpec[], hereReads: readonly string[]) {
  const binds = mounts.filter((m): m is Extract<MountSpec, { kind: 'bind' }> => m.kind === 'bind');
  return (h: string, bindHere = false): string[] => {
    const out = binds.filter((m) => inside(h, m.source)).map((m) => posix.join(posix.normalize(m.target), posix.relative(m.source, h)));
    if (rootfs.type === 'host' && (HOST_ROOT_DIRS.some((d) => inside(h, d)) || hereReads.some((r) => inside(h, r)) || (bindHere && !out.length))) out.push(h);
    return [...new Set(out)];
  };
}

/** A rule against a volume: one naming exactly a bind volume's folder must agree with it; on the
 * host's root, a rule bound at its own path must not land where a volume shows another folder. */
function volumeConflict(c: Candidate, rootfs: RootfsSpec, mounts: readonly MountSpec[], problem: Problem): 'drop' | 'keep' | 'error' {
  const same = mounts.find((m) => m.kind === 'bind' && m.source === c.path);
  if (same) {
    const wantRo = c.access !== 'read_write';
    if (c.access !== 'deny' && wantRo === same.readOnly) { problem(c.src, 'path-rule-redundant', `the volume on ${lineOf(same.src)} already mounts ${c.path} ${wantRo ? 'read-only' : 'writable'}; remove this rule`, 'warning'); return 'drop'; }
    const fix = c.access === 'deny' ? 'remove the volume, or this rule' : wantRo ? 'append :ro to the volume, or remove this rule' : 'remove :ro from the volume, or this rule';
    problem(c.src, 'path-contradicts-volume', `\`${c.pattern}\` makes ${c.path} ${c.access.replace('_', '-')}, but the volume on ${lineOf(same.src)} mounts it ${same.readOnly ? 'read-only' : 'writable'}; ${fix}`);
    return 'error';
  }
  if (rootfs.type !== 'host' || mounts.some((m) => m.kind === 'bind' && inside(c.path, m.source))) return 'keep';
  const over = mounts.find((m) => inside(c.path, posix.normalize(m.target)));
  if (!over) return 'keep';
  const what = over.kind === 'bind' ? over.source : over.kind === 'volume' ? `the volume ${over.name}` : 'a tmpfs';
  problem(c.src, 'path-contradicts-volume', `the volume on ${lineOf(over.src)} mounts ${what} on ${over.target}, so the host's ${c.path} is not at ${c.path} in the sandbox; name the path under the volume's folder, or move the volume`);
  return 'error';
}

/** `paths`, resolved: one rule per host path, with where the sandbox shows it and how, then the protected defaults. */
export function normalizePaths(cfg: UserConfig, ctx: NormalizeContext, rootfs: RootfsSpec, mounts: readonly MountSpec[], problem: Problem): PathsSpec {
  const facts = ctx.pathFacts;
  const kindOf = (p: string): PathKind | undefined => facts?.kinds[p];
  const cands = candidatesOf(entriesOf(cfg, ctx, problem), facts, problem).filter((c) => volumeConflict(c, rootfs, mounts, problem) === 'keep');
  // On the host's root a read rule that no volume holds is bound at its own path; on another root only a volume shows it.
  const binds = mounts.filter((m) => m.kind === 'bind');
  const hereReads = rootfs.type === 'host' ? cands.filter((c) => c.access !== 'deny' && !binds.some((m) => m.kind === 'bind' && inside(c.path, m.source))).map((c) => c.path) : [];
  const locate = locator(rootfs, mounts, hereReads);
  const rules: PathRule[] = [];
  for (const c of cands) {
    const kind = kindOf(c.path) ?? 'dir';
    const ats = locate(c.path, c.access !== 'deny');
    if (!checkRule(c, kind, ats[0], rootfs, kindOf, problem)) continue;
    // One placeholder on the host, however many places show it.
    const placeholder = c.access === 'deny' && kind === 'missing' ? (c.pattern.endsWith('/') ? 'dir' : 'file') : undefined;
    ats.forEach((at, i) => rules.push({ access: c.access, path: c.path, at, kind, how: c.access === 'deny' ? 'mask' : 'bind', origin: 'rule', pattern: c.pattern, src: c.src, ...(placeholder && i === 0 ? { placeholder } : {}) }));
  }
  // A denied folder that holds other rules is covered before pivot_root, so that theirs go on top.
  for (const r of rules) if (r.how === 'mask' && r.kind === 'dir' && rules.some((o) => o !== r && o.how === 'bind' && inside(o.at, r.at))) r.how = 'cover';
  const exposed = defaults(ctx, rules, mounts, locate, kindOf);
  return { rules: rules.sort((a, b) => depth(a.at) - depth(b.at)), exposed };
}

/** A rule's problems: a path the sandbox does not show, a read rule on a path that does not exist, a deny whose folder does not exist. */
function checkRule(c: Candidate, kind: PathKind, at: string | undefined, rootfs: RootfsSpec, kindOf: (p: string) => PathKind | undefined, problem: Problem): boolean {
  if (at === undefined) {
    if (c.access === 'deny') problem(c.src, 'path-not-in-sandbox', `nothing in the sandbox shows ${c.path}${rootfs.type === 'host' ? ' (the host\'s root shows only its system folders, and no volume or read rule holds it)' : ' (no volume binds a folder holding it)'}: it is hidden already; remove the rule, or keep it for when a volume shows it`, 'warning');
    else problem(c.src, 'path-outside-sandbox', `${c.path} is outside every mount of the sandbox: its root is ${rootfs.type === 'image' ? 'an image' : 'a folder'}, and no volume binds a folder holding it; add a volume such as \`${c.path}:/work\` and name paths under it, or use \`rootfs: host\``);
    return false;
  }
  if (kind === 'missing' && c.access !== 'deny') {
    problem(c.src, 'path-missing', `${c.path} does not exist, so it cannot be ${c.access === 'read_only' ? 'shown read-only' : 'made writable'}; create it first (${c.access === 'read_write' ? 'mkdir -p' : 'touch or mkdir'} ${c.path}), or remove the rule`);
    return false;
  }
  if (kind === 'missing' && kindOf(posix.dirname(c.path)) === 'missing') {
    problem(c.src, 'path-parent-missing', `neither ${c.path} nor its folder exists: nothing to hide now; create the folder, or remove the rule`, 'warning');
    return false;
  }
  return true;
}

/** A .git whose hooks or config are kept read-only is bound on itself (writable): a mount point
 * cannot be renamed or removed (EBUSY), so the command cannot move it aside and make a new .git
 * with hooks of its own, which git on the host would then run. Not when a rule names .git. */
function pinGit(w: string, rules: readonly PathRule[], locate: (h: string) => string[], add: (r: PathRule) => void): void {
  const git = posix.join(w, '.git');
  if (!rules.some((r) => r.origin === 'protect' && inside(r.path, git)) || rules.some((r) => r.origin === 'rule' && r.path === git)) return;
  for (const at of locate(git)) add({ access: 'read_write', path: git, at, kind: 'dir', how: 'bind', origin: 'protect', pattern: '.git', src: 'default' });
}

/**
 * The protected defaults, added to `rules`: in each writable host folder, the start-up files of
 * PROTECTED_FILES that exist stay read-only (in the caller's home, the missing start-up files too,
 * by a placeholder); wherever the sandbox shows the caller's home, the
 * CREDENTIALS that exist are hidden. A rule naming one (or a path inside it) takes its place:
 * if that rule lets the command read a credential or write a protected file, it is an exposure.
 */
function defaults(ctx: NormalizeContext, rules: PathRule[], mounts: readonly MountSpec[], locate: (h: string) => string[], kindOf: (p: string) => PathKind | undefined): PathExposure[] {
  const exposed: PathExposure[] = [];
  const named = (p: string) => rules.find((r) => r.origin === 'rule' && inside(r.path, p));
  const hiddenBy = (p: string) => rules.some((r) => r.origin === 'rule' && r.access === 'deny' && inside(p, r.path));
  const taken = new Set(rules.map((r) => r.at));
  const add = (r: PathRule) => { if (!taken.has(r.at)) { taken.add(r.at); rules.push(r); } };
  for (const w of writableFolders(rules.filter((r) => r.origin === 'rule'), mounts)) {
    for (const f of PROTECTED_FILES) {
      const p = posix.join(w, f);
      const kind = kindOf(p);
      // In the caller's own home, where shells, vim and git read them, one that does not exist
      // yet gets a placeholder made on the host before the clone (an empty file, removed after
      // the run while still empty), so that the sandbox cannot create it: a .bashrc made there
      // would run in the caller's next shell, outside the sandbox.
      const placeholder = kind === 'missing' && w === ctx.home && (HOME_STARTUP as readonly string[]).includes(f) ? 'file' : undefined;
      if (kind === undefined || (kind === 'missing' && !placeholder) || hiddenBy(p)) continue;
      const rule = named(p);
      if (rule) { if (rule.access === 'read_write') exposed.push({ path: p, what: 'protected', access: rule.access, pattern: rule.pattern, src: rule.src }); continue; }
      if (rules.some((r) => r.origin === 'rule' && r.access === 'read_only' && inside(p, r.path) && r.path.length > w.length)) continue;
      locate(p).forEach((at, i) => add({ access: 'read_only', path: p, at, kind, how: 'readonly', origin: 'protect', pattern: f, src: 'default', ...(placeholder && i === 0 ? { placeholder } : {}) }));
    }
    pinGit(w, rules, locate, add);
  }
  for (const c of CREDENTIALS) {
    const p = posix.join(ctx.home, c);
    const kind = kindOf(p);
    const ats = locate(p);
    if (kind === undefined || kind === 'missing' || !ats.length || hiddenBy(p)) continue;
    const rule = named(p);
    if (rule) { if (rule.access !== 'deny') exposed.push({ path: p, what: 'credential', access: rule.access, pattern: rule.pattern, src: rule.src }); continue; }
    for (const at of ats) add({ access: 'deny', path: p, at, kind, how: 'mask', origin: 'hide', pattern: `~/${c}`, src: 'default' });
  }
  return exposed;
}
