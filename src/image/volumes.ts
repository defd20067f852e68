// The volumes sandbox keeps (Docker's named and anonymous volumes): one folder per volume under
// the store's volumes/ (/var/lib/sandbox/volumes for root, the caller's data folder otherwise, or
// SANDBOX_STORE), holding `_data` (what the sandbox sees) and `meta.json`. Runs in the CLI
// process, as root or as the caller of a rootless run.
//
// A volume is made whole or not at all: it is built in a hidden folder (`.new-NAME-PID-…`), seeded
// there, its meta.json written, and only then renamed to NAME, so a volume that exists is complete
// and a crash mid-seed leaves only a hidden folder that no run uses (the next `up` seeds a new one;
// `volume prune` removes it). A volume is seeded once, when it is made, never again.
//
// Seeding copies the image's files at the target as the sandbox would see them: the image's
// layers are mounted read-only with overlayfs (whiteouts and opaque folders applied by the kernel,
// as in the sandbox) in a helper process's own mount namespace, and `cp -a` copies owners, modes,
// times, xattrs, symlinks (never followed) and hard links from there; the mount goes with the
// helper's namespace whatever happens to it. The target is first resolved in the image's layers,
// component by component without following anything on the host, symlinks read and resolved
// inside the image's root, so that the copy starts at a folder of the image and nowhere else.
// Rootless, the helper is root of a user namespace with the caller's maps (as the owner pass of
// unpack), so the copies get the owners the image gives them, through the caller's ranges.
import { spawnSync } from 'node:child_process';
import { closeSync, chownSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync, rmdirSync, statSync, writeSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { defaultStoreRoot } from './store';
import { callerOwners, hostId, removeTree, unshareArgs, type IdMap, type LayerOwners } from './owners';

/** A volume's name, as Docker allows them: also its folder's name. */
export const VOLUME_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export interface VolumeMeta {
  name: string;
  createdAt: string;
  /** How it was first filled: from the image's files at a target, or empty (nocopy, no image, or nothing there). */
  seeded: { from: 'image'; image: string; target: string } | { from: 'empty'; uid: number; gid: number; why: string };
  /** An image's VOLUME the file did not mount: whose, and where. */
  anonymous?: { sandbox: string; target: string };
}

export interface VolumeInfo extends VolumeMeta { path: string; data: string }

export class VolumeError extends Error {}

export function volumeRoot(storeRoot = defaultStoreRoot()): string { return join(storeRoot, 'volumes'); }

/** The complete volumes under root (folders with a meta.json; the hidden ones are being made, or were left by a crash). */
export function volumeNames(root = volumeRoot()): string[] {
  let names: string[] = [];
  try { names = readdirSync(root); } catch { return []; }
  return names.filter((n) => VOLUME_NAME_RE.test(n) && isVolume(join(root, n))).sort();
}

function isVolume(dir: string): boolean {
  try { return lstatSync(dir).isDirectory() && lstatSync(join(dir, 'meta.json')).isFile(); } catch { return false; }
}

export function readVolume(name: string, root = volumeRoot()): VolumeInfo | undefined {
  if (!VOLUME_NAME_RE.test(name)) return undefined;
  const path = join(root, name);
  try {
    const meta = JSON.parse(readFileSync(join(path, 'meta.json'), 'utf8')) as VolumeMeta;
    return { ...meta, name, path, data: join(path, '_data') };
  } catch { return undefined; }
}

export function listVolumes(root = volumeRoot()): VolumeInfo[] {
  return volumeNames(root).map((n) => readVolume(n, root)).filter((v): v is VolumeInfo => !!v);
}

/** Removes a volume and everything in it (rootless: files of the caller's subordinate ids too); false if there was none. */
export function removeVolume(name: string, root = volumeRoot()): boolean {
  if (!VOLUME_NAME_RE.test(name)) return false;
  const path = join(root, name);
  try { lstatSync(path); } catch { return false; }
  removeTree(path);
  return true;
}

/** Hidden folders of volumes whose making died (the pid in the name is gone); returns what it removed. */
export function removeUnfinished(root = volumeRoot()): string[] {
  let names: string[] = [];
  try { names = readdirSync(root); } catch { return []; }
  const out: string[] = [];
  for (const n of names) {
    const m = /^\.new-(.+)-(\d+)-[a-z0-9]+$/.exec(n);
    if (!m) continue;
    let alive = true;
    try { process.kill(Number(m[2]), 0); } catch (e) { alive = (e as NodeJS.ErrnoException).code === 'EPERM'; }
    if (alive) continue;
    removeTree(join(root, n));
    out.push(`unfinished volume ${m[1]}`);
  }
  return out;
}

export interface CreateVolume {
  name: string;
  root?: string;
  /** The image's layers, bottom first, and the target to seed from; none (or empty): an empty volume. */
  seed?: { layers: readonly string[]; image: string; target: string };
  /** Not root of the host: files are given their owners in a user namespace with the caller's maps. */
  rootless: boolean;
  /** The sandbox's user and group inside: an empty volume's owner. */
  uid: number;
  gid: number;
  /** The user namespace's maps (ids inside → on disk); undefined when the sandbox shares the host's ids. */
  uidMap?: IdMap[];
  gidMap?: IdMap[];
  anonymous?: { sandbox: string; target: string };
  /** Rootless: the maps of the caller's user namespace (defaults to the caller's own). */
  owners?: LayerOwners;
}

/**
 * Makes a volume if it does not exist: seeded, described, then renamed into place. Returns
 * whether this call made it (false: it existed, or another run made it meanwhile, and it is
 * used as it is). Anything half-made is removed before an error is thrown.
 */
export function createVolume(c: CreateVolume): { created: boolean; info: VolumeInfo } {
  const root = c.root ?? volumeRoot();
  if (!VOLUME_NAME_RE.test(c.name)) throw new VolumeError(`\`${c.name}\` is not a volume name`);
  const final = join(root, c.name);
  const existing = readVolume(c.name, root);
  if (existing) return { created: false, info: existing };
  try { lstatSync(final); throw new VolumeError(`${final} exists but is not a volume sandbox made (no meta.json); move it away, or remove it with sandbox volume rm ${c.name}`); } catch (e) { if (e instanceof VolumeError) throw e; }
  // 0711: the sandbox's user (another uid, or a mapped one) must pass through to _data; only the
  // owner lists what is there.
  mkdirSync(root, { recursive: true, mode: 0o711 });
  const tmp = join(root, `.new-${c.name}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(tmp, { mode: 0o711 });
  try {
    const data = join(tmp, '_data');
    mkdirSync(data, { mode: 0o755 });
    let seeded: VolumeMeta['seeded'] | undefined;
    if (c.seed && c.seed.layers.length) {
      const rel = resolveInLayers(c.seed.layers, c.seed.target);
      if (rel !== undefined && rel !== '' && entryIn(c.seed.layers, rel)?.st.isDirectory()) {
        copyFromImage(tmp, c.seed.layers, rel, c.rootless, c.owners);
        seeded = { from: 'image', image: c.seed.image, target: c.seed.target };
      }
    }
    if (!seeded) {
      seeded = { from: 'empty', uid: c.uid, gid: c.gid, why: !c.seed ? 'nocopy, or no image to seed it from' : `the image has no folder at ${c.seed.target}` };
      ownEmpty(data, c);
    }
    // The seed's mount point (its mount went with the helper's namespace) and empty lower layer.
    for (const d of ['.image', '.empty']) try { rmdirSync(join(tmp, d)); } catch { /* not made */ }
    const meta: VolumeMeta = { name: c.name, createdAt: new Date().toISOString(), seeded, ...(c.anonymous ? { anonymous: c.anonymous } : {}) };
    const fd = openSync(join(tmp, 'meta.json'), 'wx', 0o644);
    try { writeSync(fd, JSON.stringify(meta, null, 2) + '\n'); fsyncSync(fd); } finally { closeSync(fd); }
    try { renameSync(tmp, final); } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // Another run made it first: that one is the volume, and ours goes.
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && readVolume(c.name, root)) { removeTree(tmp); return { created: false, info: readVolume(c.name, root)! }; }
      throw e;
    }
    return { created: true, info: readVolume(c.name, root)! };
  } catch (e) {
    try { removeTree(tmp); } catch { /* reported by volume prune */ }
    throw e;
  }
}

/** The sandbox's user owns an empty volume (on disk: the id its user namespace maps it to). */
function ownEmpty(data: string, c: CreateVolume): void {
  if (!c.rootless) {
    const uid = c.uidMap ? hostId(c.uidMap, c.uid) : c.uid;
    const gid = c.gidMap ? hostId(c.gidMap, c.gid) : c.gid;
    if (uid === undefined || gid === undefined) throw new VolumeError(`the sandbox's user ${c.uid}:${c.gid} is outside its user namespace's maps`);
    chownSync(data, uid, gid);
    return;
  }
  // Rootless: root inside is the caller, who owns it already; another id is one of the caller's
  // subordinate ones, which only root of a namespace with the caller's maps can give.
  if (c.uid === 0 && c.gid === 0) return;
  const o = c.owners ?? callerOwners();
  if (o.single) throw new VolumeError(`the volume cannot be given to the sandbox's user ${c.uid}:${c.gid}: ${o.single}; give yourself a range in /etc/subuid and /etc/subgid`);
  const r = spawnSync('unshare', [...unshareArgs(o), '--', 'chown', `${c.uid}:${c.gid}`, '--', data], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new VolumeError(`the volume cannot be given to ${c.uid}:${c.gid} in ${o.user}'s user namespace: ${(r.stderr ?? '').trim() || r.error?.message || `status ${r.status}`}`);
}

/**
 * The image's files at rel (a path of folders of the image, no symlink on the way) copied into
 * tmp/_data by a helper in a mount namespace of its own (rootless: also a user namespace with the
 * caller's maps), over a read-only overlayfs of the layers.
 */
function copyFromImage(tmp: string, layers: readonly string[], rel: string, rootless: boolean, owners?: LayerOwners): void {
  const mnt = join(tmp, '.image');
  mkdirSync(mnt, { mode: 0o700 });
  const lower = [...layers].reverse();
  // overlayfs needs two lower layers when it has no upper one.
  if (lower.length === 1) { mkdirSync(join(tmp, '.empty'), { mode: 0o700 }); lower.push(join(tmp, '.empty')); }
  const options = `lowerdir=${lower.join(':')}${rootless ? ',userxattr' : ''}`;
  if (options.length > 4000) throw new VolumeError(`the image has too many layers (${layers.length}) to seed a volume from one overlayfs mount`);
  let prefix: string[];
  if (rootless) {
    const o = owners ?? callerOwners();
    prefix = o.single ? ['--map-user=0', '--map-group=0'] : unshareArgs(o);
  } else prefix = [];
  // $1 options, $2 the mount point, $3 the folder in the image, $4 the volume's data.
  const script = 'set -e; mount -t overlay -o "$1" overlay "$2"; cp -a -- "$2/$3/." "$4/"';
  const r = spawnSync('unshare', [...prefix, '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', options, mnt, rel, join(tmp, '_data')], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') throw new VolumeError('seeding a volume from the image runs unshare (Debian\'s util-linux package), which is not on PATH; install it, or mark the volume `nocopy`');
  if (r.status !== 0) throw new VolumeError(`the volume cannot be seeded from the image's /${rel}: ${(r.stderr ?? '').trim().split('\n').slice(-3).join('; ') || r.error?.message || `status ${r.status}`}`);
}

const isWhiteout = (st: Stats) => st.isCharacterDevice() && st.rdev === 0;

/** What the image holds at rel (clean components joined by /), as overlayfs would show it, without
 * following a symlink: the top-most layer that has it decides, unless a layer above has a file,
 * a symlink or a whiteout on the way. */
export function entryIn(layers: readonly string[], rel: string): { st: Stats; layer: string } | undefined {
  const parts = rel.split('/').filter(Boolean);
  for (let l = layers.length - 1; l >= 0; l--) {
    let p = layers[l]!;
    for (let k = 0; k < parts.length; k++) {
      p = join(p, parts[k]!);
      let st: Stats;
      try { st = lstatSync(p); } catch { st = undefined as unknown as Stats; }
      if (!st) break; // not in this layer: a lower one may have it
      if (isWhiteout(st)) return undefined;
      if (k === parts.length - 1) return { st, layer: layers[l]! };
      if (!st.isDirectory()) return undefined; // a file or symlink above hides the rest below
    }
    if (!parts.length) return { st: statSync(layers[l]!), layer: layers[l]! };
  }
  return undefined;
}

/** The target path resolved in the image (symlinks read in the layers and resolved inside the
 * image's root, at most 40 of them, as the kernel allows): clean components joined by /, or
 * undefined if it does not exist there. */
export function resolveInLayers(layers: readonly string[], target: string): string | undefined {
  const queue = target.split('/');
  const cur: string[] = [];
  let hops = 0;
  while (queue.length) {
    const c = queue.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') { cur.pop(); continue; }
    const e = entryIn(layers, [...cur, c].join('/'));
    if (!e) return undefined;
    if (e.st.isSymbolicLink()) {
      if (++hops > 40) return undefined;
      // Read in the layer that has it, where every folder on the way was checked to be one.
      let link: string;
      try { link = readlinkSync(join(e.layer, ...cur, c)); } catch { return undefined; }
      if (link.startsWith('/')) cur.length = 0;
      queue.unshift(...link.split('/'));
      continue;
    }
    cur.push(c);
  }
  return cur.join('/');
}
