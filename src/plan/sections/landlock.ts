// `paths` as a Landlock ruleset (issue 25, part 3): a second wall behind the mounts, applied by
// the child in the security stage, after every mount (its paths are opened in the new root) and
// before seccomp. Landlock allows only what its rules name, so the ruleset is made of what the
// mounts show, each with the access its mount gives: read and run where the sandbox shows a path
// read-only, every right where it is writable (read_write rules, tmpfs, volumes, /dev), /proc
// read and write (its /proc/self files). A tmpfs root (rootfs: host) holds only mount points and
// links, so it is granted read only, although its mount is writable. Only for a file with `paths:`.
//
// What Landlock holds: the writes. A write outside the writable paths is refused by the kernel
// (EACCES) even where a mount would allow it (a mount forgotten, a new mount API). What only the
// mounts hold: the denies and hidden credentials (Landlock is allow-only, and a denied path lies
// inside a folder the command must read), and a read-only path inside a writable one (a Landlock
// rule grants its rights to everything beneath it).
import type { PathRule } from '../../model/types';
import type { Step, StepArgs } from '../types';
import type { Compilation } from './context';

type Access = 'ro' | 'rw';

/** The kernel's rights (include/uapi/linux/landlock.h), by the ABI that brought them. */
const FS = { EXECUTE: 1, READ_FILE: 4, READ_DIR: 8, ALL_V1: 0x1fff, REFER: 0x2000, TRUNCATE: 0x4000, IOCTL_DEV: 0x8000 } as const;
const READ_ONLY = FS.EXECUTE | FS.READ_FILE | FS.READ_DIR;

/** The rights the ruleset handles on this ABI: every file right it has. REFER (ABI 2) is handled
 * and granted on the writable paths, as otherwise Landlock refuses every rename or link from one
 * folder to another (EXDEV), which editors, git and compilers do in a writable workspace. */
export function handledRights(abi: number): number {
  return FS.ALL_V1 | (abi >= 2 ? FS.REFER : 0) | (abi >= 3 ? FS.TRUNCATE : 0) | (abi >= 5 ? FS.IOCTL_DEV : 0);
}

const beneath = (p: string, dir: string) => dir === '/' || p === dir || p.startsWith(dir + '/');

/** Each path the mounts show, with the access its mount gives, from the mounts stage's steps. */
export function landlockRules(steps: readonly Step[]): { path: string; access: Access }[] {
  const denied = new Set(steps.filter((s) => s.kind === 'mount.readonly' && s.id.startsWith('deny:')).map((s) => (s.args as StepArgs['mount.readonly']).path));
  const rootRo = steps.some((s) => s.kind === 'mount.root-readonly');
  const out = new Map<string, Access>();
  const grant = (path: string, access: Access) => { if (!denied.has(path)) out.set(path, out.get(path) === 'rw' ? 'rw' : access); };
  for (const s of steps) {
    if (s.stage !== 'mounts') continue;
    if (s.kind === 'mount.root') grant('/', rootRo || s.args.fstype === 'tmpfs' || (s.args.fstype === 'overlay' && s.args.readOnly) ? 'ro' : 'rw');
    else if (s.kind === 'mount.bind' || s.kind === 'mount.volume' || s.kind === 'mount.tmpfs') grant(s.args.target, s.args.readOnly ? 'ro' : 'rw');
    else if (s.kind === 'mount.tmpfs.dev') grant(s.args.target, 'rw');
    else if (s.kind === 'mount.proc') grant('/proc', 'rw');
    else if (s.kind === 'mount.dev') grant('/dev', 'rw');
    else if (s.kind === 'mount.sys') grant('/sys', 'ro');
    else if (s.kind === 'mount.netfile') grant(s.args.target, 'ro');
  }
  return [...out].map(([path, access]) => ({ path, access }));
}

/** The read_only rules Landlock holds too: those not beneath a writable path of the ruleset. */
export function landlockHolds(rules: readonly PathRule[], granted: readonly { path: string; access: Access }[]): PathRule[] {
  const rw = granted.filter((g) => g.access === 'rw').map((g) => g.path);
  return rules.filter((r) => r.how === 'bind' && r.access === 'read_only' && r.origin === 'rule' && !rw.some((d) => beneath(r.at, d)));
}

/** The landlock step, where the kernel has Landlock and the file has `paths:` rules. */
export function landlockStep(ctx: Compilation): void {
  const { spec, host, add, steps } = ctx;
  const own = spec.paths.rules.filter((r) => r.origin === 'rule');
  if (!host.landlock || !own.length) return;
  const abi = host.landlock;
  const rules = landlockRules(steps);
  const rw = rules.filter((r) => r.access === 'rw').map((r) => r.path);
  const held = landlockHolds(own, rules);
  const root = rules.find((r) => r.path === '/');
  // The check the child makes after restricting itself: a folder in the tmpfs root, which its
  // mount lets root make and the ruleset (read only there) does not, must be refused (EACCES).
  const u = spec.process.user.user;
  const rootUser = u === 0 || u === '0' || u === 'root';
  const tmpfsRoot = steps.some((s) => s.kind === 'mount.root' && s.args.fstype === 'tmpfs') && !steps.some((s) => s.kind === 'mount.root-readonly');
  const probe = rootUser && tmpfsRoot && root?.access === 'ro' ? '/.sbx-landlock-probe' : undefined;
  const title = `Landlock ABI ${abi}, a second wall behind the mounts: write only under ${rw.join(' ') || 'nothing'}; read and run ${root?.access === 'ro' ? 'anywhere the mounts show' : 'under the rest'}`
    + (held.length ? `; Landlock ABI ${abi} also refuses writes to ${held.map((r) => r.at).join(' ')}` : '')
    + `. The denies and hidden paths, and read-only paths inside writable ones, are held by the mounts alone (Landlock only allows)`;
  // Cited at the file's first path rule.
  const first = own.reduce((a, r) => (typeof r.src === 'object' && typeof a.src === 'object' && (r.src.line < a.src.line || (r.src.line === a.src.line && r.src.col < a.src.col)) ? r : a));
  add('security', 'landlock', 'landlock', title, first.src, { abi, handled: handledRights(abi), readOnly: READ_ONLY, rules, ...(probe ? { probe } : {}) });
}
