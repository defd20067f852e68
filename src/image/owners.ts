// Who owns an unpacked layer's files on disk when the store is not root's. Runs in the CLI process,
// as the caller (no privilege), except the short helper below, which runs as root of a user
// namespace of its own.
//
// A rootless sandbox mounts its image in its own user namespace, where the caller is root and the
// caller's first /etc/subuid and /etc/subgid ranges are ids 1 and up (newuidmap/newgidmap). A file
// a layer gives to uid N must therefore belong on disk to the host id that map gives N: the
// caller for 0, subuid_start + N - 1 for 1 ≤ N ≤ the range's size, so that the sandbox sees N. An
// id outside the map is an error naming the entry, as podman makes it ("potentially insufficient
// UIDs"). A caller with no range, or without newuidmap, has a one-id map: every file is its own
// (root inside), as podman's ignore_chown_errors does, and the pull says so once.
//
// The caller cannot chown to its subordinate ids; a process that is root in a user namespace with
// that map can. The layer writer (unpack.ts) makes everything as the caller, with its checks, in
// the CLI process, and lists the entries it made whose owner is not the caller; then one helper
// process applies those owners: `unshare --map-user=0 --map-group=0 --map-users=… --map-groups=…`
// (util-linux 2.38 and later, which runs newuidmap/newgidmap itself and then executes the helper,
// so there is no handshake of ours) runs this Node on a small function that chowns each entry,
// named by its path in the writer's private folder, opened without following a link and checked
// to be the inode the writer made. Running the whole writer in the namespace instead would need a
// second entry point with libsbx loaded there, for a gain of nothing the layer can reach.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { userInfo } from 'node:os';
import { delimiter, join } from 'node:path';

/** One line of a uid_map or gid_map: `size` ids from `container` inside are `host` and up outside. */
export interface IdMap { container: number; host: number; size: number }

/** The maps of the user namespace a rootless store's layers are mounted in. */
export interface LayerOwners {
  uid: IdMap[];
  gid: IdMap[];
  /** The caller's name, for messages. */
  user: string;
  /** Set when the maps hold only the caller: why, for the note a pull prints once. */
  single?: string;
}

/** A change the writer leaves to the owner pass: [path in the layer, kind, uid, gid, mode, inode]
 * with ids as they are inside the namespace (the layer's own). */
export type PendingOwner = [rel: string, kind: 'f' | 'd' | 'l', uid: number, gid: number, mode: number, ino: string];

/** Whether this process is root of the host (euid 0 in the initial user namespace): then the store
 * is root's and layers keep the tar's owners as they are. */
export function runsAsRoot(): boolean {
  if (process.geteuid?.() !== 0) return false;
  try { return fs.readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/).join(' ') === '0 0 4294967295'; } catch { return true; }
}

/** The caller's ranges in /etc/subuid or /etc/subgid: lines NAME:START:COUNT or UID:START:COUNT. */
export function subordinateRanges(text: string, user: string, id: number): { start: number; count: number }[] {
  const out: { start: number; count: number }[] = [];
  for (const line of text.split('\n')) {
    const [who, start, count] = line.trim().split(':');
    if (!who || (who !== user && who !== String(id)) || !/^\d+$/.test(start ?? '') || !/^\d+$/.test(count ?? '')) continue;
    if (Number(count) > 0) out.push({ start: Number(start), count: Number(count) });
  }
  return out;
}

/** An executable of that name on PATH (absolute entries only: a relative one would depend on the
 * caller's cwd), or undefined. */
export function onPath(name: string, path = process.env.PATH ?? '/usr/bin:/bin'): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir.startsWith('/')) continue;
    // Most folders do not have it: an absent file is an answer, not an exception (the host probe
    // looks up every program of HOST_PROGRAMS along PATH on each start).
    try { const p = join(dir, name); if (((fs.statSync(p, { throwIfNoEntry: false })?.mode ?? 0) & 0o111) !== 0) return p; } catch { /* unreadable: not here */ }
  }
  return undefined;
}

const readText = (p: string) => { try { return fs.readFileSync(p, 'utf8'); } catch { return ''; } };

/** The caller's maps: itself as 0, then its first subordinate range from 1 (what the sandbox's user
 * namespace maps); only itself when it has no range or no newuidmap/newgidmap. */
export function callerOwners(files: { subuid?: string; subgid?: string } = {}): LayerOwners {
  const uid = process.geteuid?.() ?? 0, gid = process.getegid?.() ?? 0;
  let user = String(uid);
  try { user = userInfo().username; } catch { /* no passwd entry: ranges by number only */ }
  const self = { uid: [{ container: 0, host: uid, size: 1 }], gid: [{ container: 0, host: gid, size: 1 }], user };
  const su = subordinateRanges(files.subuid ?? readText('/etc/subuid'), user, uid)[0];
  const sg = subordinateRanges(files.subgid ?? readText('/etc/subgid'), user, uid)[0];
  if (!su || !sg) return { ...self, single: `${user} has no range in ${!su ? '/etc/subuid' : '/etc/subgid'}` };
  if (!onPath('newuidmap') || !onPath('newgidmap')) return { ...self, single: 'newuidmap and newgidmap (Debian package uidmap) are not installed' };
  return { uid: [self.uid[0]!, { container: 1, host: su.start, size: su.count }], gid: [self.gid[0]!, { container: 1, host: sg.start, size: sg.count }], user };
}

/** The note a pull prints once for a one-id map. */
export function singleMapNote(o: LayerOwners): string {
  return `${o.single}: every file of the image belongs to ${o.user} (root in the sandbox), whatever owner the image gives it; `
    + `for the image's own owners, give ${o.user} a range (as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${o.user}), then remove the image (sandbox rmi, sandbox image prune) and pull it again`;
}

/** The host id that an id inside maps to, or undefined outside the map. */
export function hostId(map: IdMap[], id: number): number | undefined {
  const r = map.find((m) => id >= m.container && id < m.container + m.size);
  return r ? r.host + (id - r.container) : undefined;
}

/** The unshare(1) arguments that make a user namespace with these maps (util-linux ≥ 2.38 takes
 * --map-users=OUTER,INNER,COUNT; later versions take that form too). */
export function unshareArgs(o: LayerOwners): string[] {
  const range = (m: IdMap[]) => m.find((r) => r.container === 1)!;
  return ['--map-user=0', '--map-group=0', `--map-users=${range(o.uid).host},1,${range(o.uid).size}`, `--map-groups=${range(o.gid).host},1,${range(o.gid).size}`];
}

/**
 * Applies each entry's owner and then its mode again (a chown clears set-id bits), never through a
 * link: a symlink with lchown, anything else through a descriptor opened with O_NOFOLLOW, and only
 * if it is still the inode the writer made. Self-contained (it runs in the helper process too,
 * from its source text), with the ids it is given: host ids when root applies them, ids inside
 * when the namespace's root does.
 */
function chownAll(fsm: typeof fs, root: string, list: PendingOwner[]): void {
  const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = fsm.constants;
  for (const [rel, kind, uid, gid, mode, ino] of list) {
    const p = rel ? `${root}/${rel}` : root;
    const changed = () => new Error(`${JSON.stringify(rel || '.')} changed while its layer was unpacked; refused`);
    if (kind === 'l') {
      const st = fsm.lstatSync(p, { bigint: true });
      if (!st.isSymbolicLink() || String(st.ino) !== ino) throw changed();
      fsm.lchownSync(p, uid, gid);
      continue;
    }
    const fd = fsm.openSync(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | 0o2000000 | (kind === 'd' ? O_DIRECTORY : 0));
    try {
      const st = fsm.fstatSync(fd, { bigint: true });
      if (String(st.ino) !== ino || st.isDirectory() !== (kind === 'd')) throw changed();
      fsm.fchownSync(fd, uid, gid);
      fsm.fchmodSync(fd, mode);
    } finally { fsm.closeSync(fd); }
  }
}

/** Gives the entries under root the owners the writer listed (ids inside). As root (a test of the
 * rootless writer), directly with the host ids; otherwise in the helper, in the namespace. */
export async function applyOwners(root: string, list: PendingOwner[], o: LayerOwners): Promise<void> {
  if (!list.length) return;
  if (process.geteuid?.() === 0) {
    const host = list.map(([rel, kind, uid, gid, mode, ino]): PendingOwner => [rel, kind, hostId(o.uid, uid)!, hostId(o.gid, gid)!, mode, ino]);
    chownAll(fs, root, host);
    return;
  }
  // In the helper: `node -e SOURCE ROOT` reads the list as JSON on its stdin.
  const script = `const fs = require('fs'); (${chownAll.toString()})(fs, process.argv[1], JSON.parse(fs.readFileSync(0, 'utf8')))`;
  const child = spawn('unshare', [...unshareArgs(o), '--', process.execPath, '-e', script, root], { stdio: ['pipe', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => { if (err.length < 4000) err += d; });
  child.stdin.on('error', () => { /* the helper ended early: its status says why */ });
  child.stdin.end(JSON.stringify(list));
  const code = await new Promise<number | null>((resolve, reject) => { child.on('error', reject); child.on('close', resolve); });
  if (code === 0) return;
  const why = err.trim().split('\n').filter((l) => !/^\s+at /.test(l)).slice(-3).join('; ');
  if (/unrecognized option/.test(err)) throw new Error(`the owners of the layer's files cannot be set: this unshare (util-linux) has no --map-users, which came in util-linux 2.38; install a newer util-linux, or pull as root`);
  throw new Error(`the owners of the layer's files cannot be set in ${o.user}'s user namespace (${why || `status ${code}`}); check ${o.user}'s ranges in /etc/subuid and /etc/subgid`);
}

/**
 * Removes a folder of a rootless store whose files may belong to the caller's subordinate ids
 * (which the caller cannot remove from their folders): what the caller can remove goes at once,
 * the rest with rm -rf as root of a namespace with the caller's maps. Used for layers, sandboxes'
 * upper layers and whatever a failed unpack left.
 */
export function removeTree(path: string, o?: LayerOwners): void {
  try { fs.rmSync(path, { recursive: true, force: true }); return; } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (!['EACCES', 'EPERM', 'ENOTEMPTY'].includes(code) || process.geteuid?.() === 0) throw e;
    o ??= callerOwners();
    if (o.single) throw e;
  }
  const r = spawnSync('unshare', [...unshareArgs(o), '--', 'rm', '-rf', '--one-file-system', '--', path], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot remove ${path} in ${o.user}'s user namespace: ${(r.stderr ?? '').trim() || r.error?.message || `status ${r.status}`}`);
}
