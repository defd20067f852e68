// A cgroup v2 subtree delegated to a test user, made the way systemd's Delegate=yes makes one for
// user@UID.service: a root-owned slice, in it a folder chowned to the user together with its
// cgroup.procs, cgroup.subtree_control and cgroup.threads, controllers enabled for it in the
// slice's subtree_control, and in it a leaf the user owns whole, where the user's processes start
// (as the user manager's own processes do in init.scope). Made and removed by the test process, as
// root, on a pure cgroup v2 host only (the v2 VM). undo() ends the processes left in it, by PID,
// and removes every folder, also the ones the user made inside (the sandboxes' cgroups).
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { asUser, type TestUser, type UserRun } from './users';

export const UNIFIED = '/sys/fs/cgroup';

export interface Delegation {
  user: TestUser;
  /** The slice above the delegation, root's: /sys/fs/cgroup/rlcg-PID-N.slice. */
  slice: string;
  /** The delegated folder, absolute, and relative to the unified mount (what the probe reports). */
  dir: string;
  rel: string;
  /** Where the user's commands start: the leaf below `dir`, or `dir` itself with `inRoot`. */
  start: string;
  /** Runs argv as the user, starting in `start`. */
  run(argv: string[], opts?: Parameters<typeof asUser>[2]): UserRun;
  undo(): void;
}

const made: Delegation[] = [];
let serial = 0;

const lines = (file: string) => { try { return readFileSync(file, 'utf8').split(/\s+/).filter(Boolean); } catch { return []; } };

/** Delegates a subtree to `u`. `controllers` are enabled for it (those the root offers, of
 * cpu, memory, pids, io by default, as systemd delegates). With `inRoot`, the user's commands
 * start in the delegated folder itself rather than in a leaf below it (to see the kernel refuse
 * controllers to a cgroup that holds processes). */
export function delegate(u: TestUser, opts: { controllers?: string[]; inRoot?: boolean } = {}): Delegation {
  const offered = lines(join(UNIFIED, 'cgroup.controllers'));
  const wanted = (opts.controllers ?? ['cpu', 'memory', 'pids', 'io']).filter((c) => offered.includes(c));
  const slice = join(UNIFIED, `rlcg-${process.pid}-${serial++}.slice`);
  const dir = join(slice, `user@${u.uid}.service`);
  const leaf = join(dir, 'init.scope');
  const enabledAtRoot: string[] = [];
  const d: Delegation = {
    user: u, slice, dir, rel: dir.slice(UNIFIED.length + 1), start: opts.inRoot ? dir : leaf,
    run: (argv, o = {}) => asUser(u, argv, { ...o, cgroup: d.start }),
    undo: () => {
      removeTree(slice);
      // Put back what this made the root offer its children, where nothing else uses it now.
      for (const c of enabledAtRoot) try { writeFileSync(join(UNIFIED, 'cgroup.subtree_control'), `-${c}`); } catch { /* in use */ }
      const i = made.indexOf(d);
      if (i >= 0) made.splice(i, 1);
    },
  };
  made.push(d);
  try {
    const rootHas = lines(join(UNIFIED, 'cgroup.subtree_control'));
    for (const c of wanted) if (!rootHas.includes(c)) { writeFileSync(join(UNIFIED, 'cgroup.subtree_control'), `+${c}`); enabledAtRoot.push(c); }
    mkdirSync(slice);
    if (wanted.length) writeFileSync(join(slice, 'cgroup.subtree_control'), wanted.map((c) => `+${c}`).join(' '));
    mkdirSync(dir);
    // Delegate=yes: the folder and the three files that let its owner move processes and give
    // its children controllers; its own limit files stay root's.
    for (const f of ['', 'cgroup.procs', 'cgroup.subtree_control', 'cgroup.threads']) chownSync(join(dir, f), u.uid, u.gid);
    // What the user manager makes below is the user's whole.
    mkdirSync(leaf);
    for (const f of ['', ...readdirSync(leaf)]) chownSync(join(leaf, f), u.uid, u.gid);
  } catch (e) { d.undo(); throw e; }
  return d;
}

/** Every folder below and including `top`, deepest first. */
function foldersOf(top: string): string[] {
  if (!existsSync(top)) return [];
  const out: string[] = [];
  const walk = (p: string) => {
    for (const e of readdirSync(p, { withFileTypes: true })) if (e.isDirectory()) walk(join(p, e.name));
    out.push(p);
  };
  walk(top);
  return out;
}

/** The PIDs in any cgroup of the tree. */
export function pidsIn(top: string): number[] {
  return foldersOf(top).flatMap((f) => lines(join(f, 'cgroup.procs')).map(Number));
}

/** Ends what the tree holds (the test's own processes, by PID), then removes its folders. */
function removeTree(top: string): void {
  for (let i = 0; i < 200; i++) {
    const pids = pidsIn(top);
    if (!pids.length) break;
    for (const pid of pids) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
  for (const f of foldersOf(top)) {
    // A killed process leaves its cgroup a moment after it is reaped.
    for (let i = 0; ; i++) {
      try { rmdirSync(f); break; } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') break;
        if (i > 200) throw e;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      }
    }
  }
}

/** Undoes every delegation this process made (for an after() hook, before removeAllUsers). */
export function removeAllDelegations(): void { for (const d of [...made]) d.undo(); }

/** True on a pure cgroup v2 host where this process may make cgroups (root). */
export const canDelegate = process.geteuid?.() === 0 && existsSync(join(UNIFIED, 'cgroup.controllers')) && !existsSync(join(UNIFIED, 'unified'));
