// Taking a sandbox off the host: the real host operations behind the undo kinds (host/undo.ts),
// and reclaim, which replays the undo list a sandbox's state folder records once nothing of it
// is alive, for `down`, gc and the next `up` of a name whose last run crashed (its CLI killed
// with -9). Nothing here works a name out again: what is removed is what the run recorded. Runs
// in the CLI process, as root or (rootless) as the caller.
import { existsSync, lstatSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { removeTree } from '../image/owners';
import { removeVolume } from '../image/volumes';
import type { HostFeatures } from '../plan/types';
import { Cgroup } from './cgroup';
import { ownerAlive, readOwner, withLock } from './lock';
import { removeTable, removeVeth, restoreForwarding } from './network';
import { stopRecorded } from './rootless-net';
import { removeWall, stopEgress } from './egress';
import { nameLock, readState, sandboxPids, STATE_FILES } from './state';
import { readUndo, replayUndo, type HostOps } from './undo';

/** node:child_process, loaded when a table is looked for: only a private network's clean-up runs nft. */
const childProcess = () => require('node:child_process') as typeof import('node:child_process');

/** The host operations themselves, on this host's cgroup hierarchies. */
export function hostOps(host: HostFeatures): HostOps {
  return {
    removeState: (dir) => {
      if (!existsSync(dir)) return undefined;
      for (const f of STATE_FILES) try { unlinkSync(join(dir, f)); } catch { /* absent */ }
      try { rmdirSync(join(dir, 'root')); } catch { /* absent */ }
      // Something else in it (not a file of ours) is left for a person to look at.
      try { rmdirSync(dir); return `state folder ${dir}`; } catch { return undefined; }
    },
    // Rootless, what the sandbox wrote there may belong to the caller's subordinate ids:
    // removeTree removes it inside the caller's user namespace where the caller itself cannot.
    removeUpper: (path) => { if (!existsSync(path)) return undefined; removeTree(path); return `upper layer ${path}`; },
    // Only what is still the empty placeholder: a file or folder the host's programs filled meanwhile is theirs.
    removePlaceholder: (path, type) => {
      try {
        const st = lstatSync(path);
        if (type === 'file' && st.isFile() && st.size === 0) unlinkSync(path);
        else if (type === 'dir' && st.isDirectory()) rmdirSync(path);
        else return undefined;
        return `placeholder ${path}`;
      } catch { return undefined; }
    },
    removeVolume: (name, root) => (removeVolume(name, root) ? `volume ${name}` : undefined),
    removeCgroup: async (path, keep) => {
      const cg = new Cgroup(host.cgroup, path, keep);
      if (!cg.exists()) return undefined;
      await cg.remove();
      return `cgroup ${path}`;
    },
    removeVeth: (name) => { if (!existsSync(`/sys/class/net/${name}`)) return undefined; removeVeth(name); return `interface ${name}`; },
    restoreForwarding: (dir) => restoreForwarding(dirname(dir), dir),
    removeTable: (table) => { if (!tableExists(table)) return undefined; removeTable(table); return `nftables table ${table}`; },
    stopUsernet: async (dir) => ((await stopRecorded(dir)) ? 'network process (pasta or slirp4netns)' : undefined),
    stopEgress: async (dir) => ((await stopEgress(dir)) ? 'egress resolver and relay (sbx-egress)' : undefined),
    removeWall: (table) => { if (!tableExists(table, 'inet')) return undefined; removeWall(table); return `nftables table inet ${table}`; },
  };
}

/** Removes what a run of `name` left on the host, if nothing of it is alive; returns what it removed. */
export async function reclaim(host: HostFeatures, name: string, ops = hostOps(host)): Promise<string[]> {
  return withLock(nameLock(host, name), () => reclaimLocked(host, name, ops));
}

/** reclaim, for a caller that holds the name's lock: the recorded list, newest first, then the
 * state folder itself, which a CLI killed between making it and recording it leaves unlisted.
 * A volume that a crashed setup made stays (`volume prune` removes it): by now another sandbox
 * may have started with it, which would not have recorded it, having found it there. */
export async function reclaimLocked(host: HostFeatures, name: string, ops = hostOps(host)): Promise<string[]> {
  const dir = join(host.stateRoot, name);
  if (sandboxPids(host, name, readState(dir)).length || ownerAlive(readOwner(join(dir, 'owner')))) return [];
  const removed = await replayUndo(readUndo(dir).filter((r) => r.kind !== 'volume.remove-new'), ops);
  const last = ops.removeState(dir);
  return last ? [...removed, last] : removed;
}

/** `nft list tables FAMILY`: one `table FAMILY NAME` line each; '' when nft cannot say. */
function nftTables(family: 'ip' | 'inet'): string {
  try { return childProcess().execFileSync('nft', ['list', 'tables', family], { encoding: 'utf8' }); } catch { return ''; }
}

const tableExists = (table: string, family: 'ip' | 'inet' = 'ip') => nftTables(family).includes(`table ${family} ${table}\n`);

/** Our nftables tables (ip sbx_*, and the egress walls inet sbx_*_eg) that no state folder's undo
 * list records (a table is recorded before it is made, so a sandbox being set up keeps its own);
 * a wall is named `inet NAME`, as `nft delete table` takes it. */
export function orphanTables(host: HostFeatures): string[] {
  // Without root there are no tables of ours (a rootless network has none), and nft would refuse.
  if (host.rootless) return [];
  let names: string[] = [];
  try { names = readdirSync(host.stateRoot).filter((n) => !n.startsWith('.')); } catch { /* none */ }
  const owned = new Set(names.flatMap((n) => readUndo(join(host.stateRoot, n)).flatMap((r) => (r.kind === 'net.nat.remove' && r.args.table ? [r.args.table] : r.kind === 'net.egress.wall.remove' ? [`inet ${r.args.table}`] : []))));
  const ip = [...nftTables('ip').matchAll(/^table ip (sbx_\S+)$/gm)].map((m) => m[1]!);
  const inet = [...nftTables('inet').matchAll(/^table inet (sbx_\S+_eg)$/gm)].map((m) => `inet ${m[1]!}`);
  return [...ip, ...inet].filter((t) => !owned.has(t));
}
