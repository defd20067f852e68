// A sandbox's undo list: how to revert each host change `up` made (the plan's undo kinds, with the
// names the engine used), recorded in its state folder as each change is made, and replayed newest
// first by one function, undoOne, for a failed start, `down` and gc alike. The host operations it
// calls come in as an interface: the real ones (host/teardown.ts), or the fake engine's recording
// double. Runs in the CLI process, as root or (rootless) as the caller.
import { appendFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Undo } from '../plan/types';

/** The list's file in the state folder: one JSON entry a line, appended, so that a CLI killed
 * between two changes leaves every entry before the cut whole (a cut line is skipped). */
export const UNDO_FILE = 'undo.jsonl';

/** One recorded undo: how to revert a change, and the plan step that made it. */
export type Recorded = Undo & { step: string };

export function appendUndo(stateDir: string, r: Recorded): void {
  appendFileSync(join(stateDir, UNDO_FILE), JSON.stringify(r) + '\n');
}

/** The list recorded in a state folder, oldest first; empty when there is none. */
export function readUndo(stateDir: string): Recorded[] {
  let text = '';
  try { text = readFileSync(join(stateDir, UNDO_FILE), 'utf8'); } catch { return []; }
  const out: Recorded[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try { out.push(JSON.parse(line) as Recorded); } catch { /* the line a kill cut short: its change was not made yet */ }
  }
  return out;
}

/** Replaces the list whole (written, then renamed: a reader never sees half of it). */
export function rewriteUndo(stateDir: string, list: readonly Recorded[]): void {
  const tmp = join(stateDir, `.${UNDO_FILE}.tmp`);
  writeFileSync(tmp, list.map((r) => JSON.stringify(r) + '\n').join(''));
  renameSync(tmp, join(stateDir, UNDO_FILE));
}

/** The cgroup a sandbox's list records ('' for none, as a rootless sandbox without a delegated subtree has). */
export function recordedCgroup(list: readonly Recorded[]): string {
  for (const r of list) if (r.kind === 'cgroup.remove') return r.args.path;
  return '';
}

/** The host operations the undo kinds map to. Each says what it removed, or undefined when there
 * was nothing (so that `down` and gc list only what was there); each may be called again. */
export interface HostOps {
  removeState(path: string): string | undefined;
  removeUpper(path: string): string | undefined;
  removePlaceholder(path: string, type: 'file' | 'dir'): string | undefined;
  removeVolume(name: string, root: string): string | undefined;
  /** `keep`: the deepest level of the path that was there before the run made it (undefined: none
   * but the shared sandbox/ parent); removal stops below it. */
  removeCgroup(path: string, keep?: string): Promise<string | undefined>;
  removeVeth(name: string): string | undefined;
  restoreForwarding(stateDir: string): Promise<void>;
  removeTable(name: string): string | undefined;
  stopUsernet(stateDir: string): Promise<string | undefined>;
  stopEgress(stateDir: string): Promise<string | undefined>;
  removeWall(table: string): string | undefined;
}

/** Reverts one change. An entry without the name it needs (the plan's own, which leaves some out)
 * has nothing to revert by: names are never worked out again here. */
export async function undoOne(u: Undo, ops: HostOps): Promise<string | undefined> {
  switch (u.kind) {
    case 'state.remove': return ops.removeState(u.args.path);
    case 'upper.remove': return ops.removeUpper(u.args.path);
    case 'path.placeholder.remove': return ops.removePlaceholder(u.args.path, u.args.type);
    case 'volume.remove-new': return u.args.root ? ops.removeVolume(u.args.name, u.args.root) : undefined;
    case 'cgroup.remove': return u.args.path ? ops.removeCgroup(u.args.path, u.args.keep) : undefined;
    case 'net.veth.remove': return u.args.interface ? ops.removeVeth(u.args.interface) : undefined;
    case 'net.forwarding.restore': await ops.restoreForwarding(u.args.state); return undefined;
    case 'net.nat.remove': return u.args.table ? ops.removeTable(u.args.table) : undefined;
    // The kernel's port maps are rules of the NAT table and go with it; a user-space forwarder and
    // the hold on a port are threads and sockets of the CLI, which end with it.
    case 'net.port.remove': return undefined;
    case 'net.usernet.stop': return u.args.state ? ops.stopUsernet(u.args.state) : undefined;
    case 'net.egress.stop': return u.args.state ? ops.stopEgress(u.args.state) : undefined;
    case 'net.egress.wall.remove': return ops.removeWall(u.args.table);
    default: { const never: never = u; throw new Error(`internal error: no undo for ${(never as Undo).kind}`); }
  }
}

/** Replays a list newest first; `each` hears of every entry once it ran (with its error, if it
 * failed: the others still run). What was removed, in the order it went. */
export async function replayUndo(list: readonly Recorded[], ops: HostOps, each: (r: Recorded, e?: Error) => void = () => undefined): Promise<string[]> {
  const removed: string[] = [];
  for (const r of [...list].reverse()) {
    try { const what = await undoOne(r, ops); if (what) removed.push(what); each(r); } catch (e) { each(r, e as Error); }
  }
  return removed;
}

/** A run's undo list in the CLI process: the host changes, each written to the state folder's list
 * as it is recorded (before the change is made), and the actions that end things of this process
 * (its holds on ports, forwarder threads, held namespace fds, the child), which a killed CLI takes
 * with it and so are never written. Replayed together, newest first. */
export class UndoList {
  private readonly entries: (Recorded | (() => void | Promise<void>))[] = [];
  private dir?: string;

  /** The state folder exists (state.create made it): the list is kept in it from now on. */
  keepIn(stateDir: string): void {
    this.dir = stateDir;
    for (const e of this.entries) if (typeof e !== 'function') appendUndo(stateDir, e);
  }

  record(step: string, u: Undo): void {
    const r = { ...u, step } as Recorded;
    if (this.dir) appendUndo(this.dir, r);
    this.entries.push(r);
  }

  local(f: () => void | Promise<void>): void { this.entries.push(f); }

  /** The command runs: what only a failed start reverts (a volume this run made) leaves the list,
   * here and in the state folder, so that neither this CLI nor `down` nor gc removes it. */
  commandRuns(): void {
    const keep = (e: Recorded | (() => void | Promise<void>)) => typeof e === 'function' || e.kind !== 'volume.remove-new';
    const kept = this.entries.filter(keep);
    this.entries.splice(0, this.entries.length, ...kept);
    if (this.dir) rewriteUndo(this.dir, kept.filter((e): e is Recorded => typeof e !== 'function'));
  }

  /** Everything undone, newest first; a failure is reported and the rest still run. */
  async replay(ops: HostOps, onError: (step: string, e: Error) => void): Promise<void> {
    for (const e of this.entries.splice(0).reverse()) {
      try { if (typeof e === 'function') await e(); else await undoOne(e, ops); } catch (err) { onError(typeof e === 'function' ? 'cleanup' : e.step, err as Error); }
    }
  }
}
