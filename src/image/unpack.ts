// Unpacks one image layer (a tar, gzip- or zstd-compressed) into its own folder, for overlayfs.
// Runs in the CLI process, as root or as the caller of a rootless run. A layer is untrusted input, so nothing it says is ever
// followed: an entry's path is cleaned as path.Clean does (`a/../b` is `b`) and refused if it is
// absolute or still climbs out with `..`; it is then walked in a tree of what this unpack made
// (the folder is fresh and no other process writes in it), so a symlink on the way is refused
// with the entry named, and a path the tree does not hold does not exist and is not asked about
// (no lstat per new file). A later entry replaces an earlier one, taking the earlier one's whole
// subtree with it: nothing pending for it (a folder's owner, mode and times, set last) can then
// land on what replaced it. Metadata calls never follow a link: files and folders are changed
// through descriptors opened with O_NOFOLLOW (folders checked against the device and inode
// recorded when they were made), symlinks with the l* calls. Whiteouts become overlayfs
// whiteouts (0/0 character devices) and opaque folders get overlay's opaque xattr; as the OCI
// spec says, a whiteout hides only what lower layers hold, never what this layer wrote. On a
// refusal the half-written folder is removed. The uncompressed stream's sha256 must equal the
// image's diff ID.
//
// As root, entries get the tar's owners and the opaque xattr is trusted.overlay.opaque. Rootless
// (a LayerOwners given: the maps of the caller's user namespace, see owners.ts), the same writer
// makes everything as the caller, marks opaque folders with user.overlay.opaque (what overlayfs
// reads when mounted with userxattr in a user namespace; trusted.* needs root of the host), makes
// whiteouts the same way (the kernel lets anyone mknod a 0/0 character device), checks each
// owner against the maps, and leaves the owners to one pass in a namespace with those maps once
// every entry is written. The layer's own overlayfs attributes (trusted.overlay.* and
// user.overlay.*) are never written, in either mode.
import { createHash } from 'node:crypto';
import { closeSync, constants, createReadStream, fchmodSync, fchownSync, fstatSync, futimesSync, linkSync, lchownSync, lstatSync, lutimesSync, mkdirSync, openSync, readSync, renameSync, rmdirSync, rmSync, symlinkSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { TarError, TarParser, type TarEntry, type TarSink } from './tar';
import { applyOwners, callerOwners, hostId, removeTree, runsAsRoot, type LayerOwners, type PendingOwner } from './owners';

export class UnpackError extends Error {}

/** What the unpacker needs from libsbx (mknod and lsetxattr have no Node API). */
export interface NodeOps { whiteout(path: string): void; lsetxattr(path: string, name: string, value: Buffer): void }

export interface UnpackResult { diffId: string; entries: number; bytes: number; skipped: string[] }

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';
const O_CLOEXEC = 0o2000000;
const FILE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | O_CLOEXEC;
const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW | O_CLOEXEC;

/** What this unpack made at a path: a folder, or 'f' a file, 'l' a symlink, 'w' a whiteout, or
 * 's' an entry it skipped (a device or fifo), which is not on disk. A hard link is what it links. */
interface Dir { dev: bigint; ino: bigint; children: Map<string, Node>; meta?: TarEntry; opaque?: boolean }
type Node = Dir | 'f' | 'l' | 'w' | 's';

const q = JSON.stringify;

/** The entry's path as clean components inside the layer (none: the layer's own folder), or an
 * error naming why it would land outside; what names the path in that error. */
function components(name: string, what = `entry ${q(name)}`): string[] {
  if (name.includes('\0')) throw new UnpackError(`${what} has a NUL byte in its name; refused`);
  if (name.startsWith('/')) throw new UnpackError(`${what} is an absolute path; a layer may only write inside itself`);
  const out: string[] = [];
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue;
    if (p !== '..') out.push(p);
    else if (out.pop() === undefined) throw new UnpackError(`${what} climbs out with ..; a layer may only write inside itself`);
  }
  return out;
}

class LayerWriter {
  private readonly top: Dir;
  readonly skipped: string[] = [];
  entries = 0;
  /** Root of the host: the tar's owners applied as they are. Otherwise owners is set. */
  private readonly root: boolean;
  private readonly uid = process.geteuid?.() ?? 0;
  private readonly gid = process.getegid?.() ?? 0;
  /** The file being written, closed by abort() if the layer ends in the middle of it. */
  private fd: number | undefined;
  /** Rootless: the owners left to the owner pass, by path in the layer (a later entry at a path,
   * or its removal, drops what was listed for it). */
  readonly pending = new Map<string, PendingOwner>();
  private readonly opaqueXattr: string;

  constructor(private readonly dir: string, private readonly ops: NodeOps, private readonly owners?: LayerOwners) {
    this.root = owners === undefined;
    this.opaqueXattr = this.root ? 'trusted.overlay.opaque' : 'user.overlay.opaque';
    // The folder's set-group-ID bit, inherited from a store that has one, would hand its group
    // to everything made in it: cleared, and its owner made ours.
    const fd = openSync(dir, DIR_FLAGS);
    try {
      if (this.root) fchownSync(fd, this.uid, this.gid);
      fchmodSync(fd, 0o755);
      const st = fstatSync(fd, { bigint: true });
      this.top = { dev: st.dev, ino: st.ino, children: new Map() };
    } finally { closeSync(fd); }
  }

  private rel(parts: string[], n = parts.length): string { return parts.slice(0, n).join('/'); }
  private abs(parts: string[], n = parts.length): string { return n ? `${this.dir}/${parts.slice(0, n).join('/')}` : this.dir; }

  private newDir(path: string, mode: number): Dir {
    mkdirSync(path, mode);
    const st = lstatSync(path, { bigint: true });
    return { dev: st.dev, ino: st.ino, children: new Map() };
  }

  /** The folder holding parts' last component, made on the way where missing: each one a folder
   * this layer made, none a symlink. A file or whiteout in the way becomes a folder, as umoci
   * does (a whiteout an opaque one: the lower layers' folder is gone, this one is new). */
  private parent(parts: string[], name: string): { dir: Dir; hidden: boolean } {
    let dir = this.top;
    let hidden = false;
    for (let i = 0; i < parts.length - 1; i++) {
      const c = parts[i]!;
      const next = dir.children.get(c);
      if (typeof next === 'object') { dir = next; hidden ||= next.opaque === true; continue; }
      if (next === 'l') throw new UnpackError(`entry ${q(name)} would be written through the symlink ${q(this.rel(parts, i + 1))}; refused`);
      const path = this.abs(parts, i + 1);
      if (next !== undefined) this.remove(dir, c, next, path);
      const made = this.newDir(path, 0o755);
      dir.children.set(c, made);
      if (next === 'w') this.opaque(made, path);
      hidden ||= made.opaque === true;
      dir = made;
    }
    return { dir, hidden };
  }

  /** What an earlier entry made at parts (for a hard link), never made or changed here. */
  private find(parts: string[], e: TarEntry): { node: 'f' | 'l' | 's'; path: string } {
    let dir = this.top;
    for (let i = 0; ; i++) {
      const next = dir.children.get(parts[i]!);
      if (next === undefined || next === 'w' || (i < parts.length - 1 && (next === 'f' || next === 's'))) throw new UnpackError(`hard link ${q(e.name)} points to ${q(e.linkname)}, which is not in the layer before it`);
      if (next === 'l' && i < parts.length - 1) throw new UnpackError(`hard link ${q(e.name)} would reach ${q(e.linkname)} through the symlink ${q(this.rel(parts, i + 1))}; refused`);
      if (i === parts.length - 1) {
        if (typeof next === 'object') throw new UnpackError(`hard link ${q(e.name)} points to the folder ${q(e.linkname)}`);
        return { node: next, path: this.abs(parts) };
      }
      dir = next as Dir;
    }
  }

  /** Removes what an earlier entry of this layer left at path, which a later entry replaces; a
   * folder goes with everything under it, and so does all that was pending for them. */
  private remove(parent: Dir, name: string, node: Node, path: string): void {
    parent.children.delete(name);
    if (this.pending.size) {
      const rel = path.slice(this.dir.length + 1);
      this.pending.delete(rel);
      if (typeof node === 'object') for (const k of this.pending.keys()) if (k.startsWith(`${rel}/`)) this.pending.delete(k);
    }
    if (node === 's') return;
    if (typeof node === 'object') {
      const st = lstatSync(path, { bigint: true, throwIfNoEntry: false });
      if (!st?.isDirectory() || st.dev !== node.dev || st.ino !== node.ino) throw new UnpackError(`the folder ${q(path.slice(this.dir.length + 1))} changed while its layer was unpacked; refused`);
      rmSync(path, { recursive: true, force: true });
    } else unlinkSync(path);
  }

  /** Marks a folder of this layer opaque: the lower layers' folder at its path is hidden, so
   * whiteouts under it hide nothing, and overlayfs would list them: they go. */
  private opaque(dir: Dir, path: string): void {
    this.ops.lsetxattr(path, this.opaqueXattr, Buffer.from('y'));
    if (dir === this.top) return; // overlayfs does not read a layer's own folder as opaque
    dir.opaque = true;
    const stack: [Dir, string][] = [[dir, path]];
    while (stack.length) {
      const [d, p] = stack.pop()!;
      for (const [n, c] of d.children) {
        if (c === 'w') { unlinkSync(`${p}/${n}`); d.children.delete(n); } else if (typeof c === 'object') stack.push([c, `${p}/${n}`]);
      }
    }
  }

  private xattrs(path: string, e: TarEntry): void {
    for (const k in e.xattrs) {
      // overlayfs's own attributes (opaque, redirect, metacopy, origin), in either namespace it
      // reads them from, come only from whiteouts.
      if (k.startsWith('trusted.overlay.') || k.startsWith('user.overlay.')) continue;
      // Without root of the host, trusted.* is refused by the kernel: not asked for.
      if (!this.root && k.startsWith('trusted.')) continue;
      try { this.ops.lsetxattr(path, k, e.xattrs[k]!); } catch { /* a namespace this file system does not take: left out, as Docker does */ }
    }
  }

  private meta(path: string, e: TarEntry, fd?: number): void {
    if (!this.root) return this.rootlessMeta(path, e, fd);
    // A file is created with its mode (the umask is 0 while unpacking) and owned by us: only
    // another owner needs a chown, and then its mode again, since chown clears set-id bits.
    const chown = this.root && (e.uid !== this.uid || e.gid !== this.gid);
    if (chown) { if (fd !== undefined) fchownSync(fd, e.uid, e.gid); else lchownSync(path, e.uid, e.gid); }
    if (fd !== undefined && (chown || !this.root)) fchmodSync(fd, e.mode & 0o7777);
    this.xattrs(path, e);
    if (fd !== undefined) futimesSync(fd, e.mtime, e.mtime);
    else lutimesSync(path, e.mtime, e.mtime);
  }

  /** Rootless: xattrs first (a read-only mode would refuse user.* to the owner), the mode, the
   * owner listed for the owner pass, then the times (which a chown does not change). */
  private rootlessMeta(path: string, e: TarEntry, fd?: number): void {
    this.xattrs(path, e);
    if (fd !== undefined) fchmodSync(fd, e.mode & 0o7777);
    const ino = fd !== undefined ? fstatSync(fd, { bigint: true }).ino : lstatSync(path, { bigint: true }).ino;
    this.own(path, e, fd !== undefined ? 'f' : 'l', ino);
    if (fd !== undefined) futimesSync(fd, e.mtime, e.mtime);
    else lutimesSync(path, e.mtime, e.mtime);
  }

  /** Rootless: checks the entry's owner against the namespace's maps and lists it for the owner
   * pass, unless it is the caller's (0:0 inside) or the maps hold only the caller. */
  private own(path: string, e: TarEntry, kind: 'f' | 'd' | 'l', ino: bigint): void {
    const o = this.owners!;
    if (o.single) return;
    for (const [what, id, map, file] of [['uid', e.uid, o.uid, '/etc/subuid'], ['gid', e.gid, o.gid, '/etc/subgid']] as const) {
      if (hostId(map, id) === undefined) {
        const top = map.reduce((n, m) => Math.max(n, m.container + m.size), 0) - 1;
        throw new UnpackError(`entry ${q(e.name)} belongs to ${what} ${id}, which ${o.user}'s user namespace does not map (it maps 0 to ${top}: ${o.user} and its first range in ${file}); give ${o.user} a larger range (as root: usermod --add-sub${what}s START-END ${o.user}), or pull the image as root`);
      }
    }
    const rel = path === this.dir ? '' : path.slice(this.dir.length + 1);
    if (e.uid === 0 && e.gid === 0) { this.pending.delete(rel); return; }
    this.pending.set(rel, [rel, kind, e.uid, e.gid, e.mode & 0o7777, String(ino)]);
  }

  /** An error from the file system, named with the entry it happened on. */
  private named(e: TarEntry, err: unknown): Error {
    if (err instanceof UnpackError) return err;
    return new UnpackError(`entry ${q(e.name)} cannot be unpacked: ${(err as Error).message}`, { cause: err });
  }

  entry(e: TarEntry): TarSink | null {
    this.entries++;
    try { return this.place(e); } catch (err) { throw this.named(e, err); }
  }

  private place(e: TarEntry): TarSink | null {
    const parts = components(e.name);
    if (!parts.length) {
      if (e.type === '5') { this.top.meta = e; return null; }
      throw new UnpackError(`entry ${q(e.name)} would replace the layer's own folder with something other than a folder; refused`);
    }
    const base = parts[parts.length - 1]!;
    if (base.startsWith(WH)) return this.whiteout(parts, base, e);
    // A hard link's target is found before anything is changed for it.
    const target = e.type === '1' ? this.linkTarget(e) : undefined;
    const { dir } = this.parent(parts, e.name);
    const path = this.abs(parts);
    const there = dir.children.get(base);
    switch (e.type) {
      case '5': {
        if (typeof there === 'object') { there.meta = e; return null; } // a folder again: merged, its last entry's metadata wins
        if (there !== undefined) this.remove(dir, base, there, path);
        const made = this.newDir(path, 0o700);
        made.meta = e;
        dir.children.set(base, made);
        if (there === 'w') this.opaque(made, path);
        return null;
      }
      case '2':
        if (there !== undefined) this.remove(dir, base, there, path);
        // The target is stored as it is and never followed here.
        symlinkSync(e.linkname, path);
        dir.children.set(base, 'l');
        this.meta(path, e);
        return null;
      case '1': {
        if (target!.path === path) return null; // a link to itself: already there
        if (there !== undefined) this.remove(dir, base, there, path);
        if (target!.node === 's') { dir.children.set(base, 's'); this.skipped.push(e.name); return null; }
        // link(2) does not follow a symlink: a hard link to one links the symlink itself. The
        // link shares its target's inode, owner and mode: the entry's own are not applied.
        linkSync(target!.path, path);
        dir.children.set(base, target!.node);
        return null;
      }
      case '0': {
        if (there !== undefined) this.remove(dir, base, there, path);
        const fd = openSync(path, FILE_FLAGS, this.root ? e.mode & 0o7777 : 0o600);
        dir.children.set(base, 'f');
        this.fd = fd;
        return {
          data: (chunk) => {
            try { for (let off = 0; off < chunk.length;) off += writeSync(fd, chunk, off); } catch (err) { throw this.named(e, err); }
          },
          end: () => {
            this.fd = undefined;
            try { this.meta(path, e, fd); } catch (err) { throw this.named(e, err); } finally { closeSync(fd); }
          },
        };
      }
      default:
        // Device nodes and fifos: not made (a sandbox's /dev is its own); listed for the caller.
        if (there !== undefined) this.remove(dir, base, there, path);
        dir.children.set(base, 's');
        this.skipped.push(e.name);
        return null;
    }
  }

  private linkTarget(e: TarEntry): { node: 'f' | 'l' | 's'; path: string } {
    const parts = components(e.linkname, `the target ${q(e.linkname)} of hard link ${q(e.name)}`);
    if (!parts.length) throw new UnpackError(`hard link ${q(e.name)} points to ${q(e.linkname)}, the layer's own folder; refused`);
    return this.find(parts, e);
  }

  private whiteout(parts: string[], base: string, e: TarEntry): null {
    const { dir, hidden } = this.parent(parts, e.name);
    const at = this.abs(parts, parts.length - 1);
    if (base === OPAQUE) { this.opaque(dir, at); return null; }
    const name = base.slice(WH.length);
    if (name === '' || name === '.' || name === '..') throw new UnpackError(`entry ${q(e.name)} is a whiteout of ${name ? q(name) : 'nothing'}: it names its own folder or the one above, not an entry in it; refused`);
    const there = dir.children.get(name);
    const target = `${at}/${name}`;
    // Only what lower layers hold is whited out: what this layer made stays (a folder becomes
    // opaque, so that the lower layers' one is hidden all the same).
    if (typeof there === 'object') { this.opaque(there, target); return null; }
    if (there !== undefined && there !== 's') return null;
    if (hidden) { dir.children.delete(name); return null; } // under an opaque folder: nothing lower shows through
    try { this.ops.whiteout(target); } catch (err) {
      // overlayfs itself refuses 0/0 devices: a store on an overlay root (in a container, say) cannot hold layers.
      throw new UnpackError(`an overlayfs whiteout cannot be made in ${this.dir} (${(err as Error).message}): the image store must be on a file system that allows it, not on overlayfs; set SANDBOX_STORE to a folder elsewhere`);
    }
    dir.children.set(name, 'w');
    return null;
  }

  /** Closes the file being written, if the layer ended in the middle of one. */
  abort(): void {
    if (this.fd !== undefined) { try { closeSync(this.fd); } catch { /* already closed */ } this.fd = undefined; }
  }

  /** Folders last, deepest first: their owners, modes and times, once nothing more is written in
   * them; each through a descriptor that does not follow a link, checked to be the folder made. */
  finish(): void {
    const order: [Dir, string][] = [];
    const stack: [Dir, string][] = [[this.top, this.dir]];
    while (stack.length) {
      const item = stack.pop()!;
      order.push(item);
      for (const [n, c] of item[0].children) if (typeof c === 'object') stack.push([c, `${item[1]}/${n}`]);
    }
    // Every folder comes after its parent in order: backwards, children come first.
    for (let i = order.length - 1; i >= 0; i--) {
      const [d, path] = order[i]!;
      if (d.meta) this.folderMeta(d, path, d.meta);
    }
  }

  private folderMeta(d: Dir, path: string, e: TarEntry): void {
    let fd: number | undefined;
    try {
      fd = openSync(path, DIR_FLAGS);
      const st = fstatSync(fd, { bigint: true });
      if (st.dev !== d.dev || st.ino !== d.ino) throw new UnpackError(`the folder ${q(path.slice(this.dir.length + 1))} changed while its layer was unpacked; refused`);
      // The path's last component is this folder (checked above) and every one above it a folder of this layer.
      if (this.root) {
        fchownSync(fd, e.uid, e.gid);
        fchmodSync(fd, e.mode & 0o7777);
        this.xattrs(path, e);
      } else {
        this.xattrs(path, e);
        fchmodSync(fd, e.mode & 0o7777);
        this.own(path, e, 'd', d.ino);
      }
      futimesSync(fd, e.mtime, e.mtime);
    } catch (err) { throw this.named(e, err); } finally { if (fd !== undefined) closeSync(fd); }
  }
}

/** gzip (1f 8b), zstd (28 b5 2f fd), or a plain tar. */
function decompressed(blob: string): AsyncIterable<Buffer> {
  const head = Buffer.alloc(4);
  const fd = openSync(blob, 'r');
  try { readSync(fd, head, 0, 4, 0); } finally { closeSync(fd); }
  const raw = createReadStream(blob, { highWaterMark: 1 << 20 });
  if (head[0] === 0x1f && head[1] === 0x8b) return raw.pipe(createGunzip({ chunkSize: 1 << 20 })) as Readable;
  if (head.readUInt32LE(0) === 0xfd2fb528) return zstd(raw);
  return raw;
}

async function* zstd(raw: Readable): AsyncIterable<Buffer> {
  const { Decompress } = require('fzstd') as typeof import('fzstd');
  const out: Buffer[] = [];
  const d = new Decompress((chunk: Uint8Array) => { out.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)); });
  for await (const c of raw) {
    d.push(c as Buffer);
    while (out.length) yield out.shift()!;
  }
  d.push(new Uint8Array(0), true);
  while (out.length) yield out.shift()!;
}

// Modes come from the layer exactly: the umask is 0 while any layer unpacks (pulls unpack
// several at once, so the first in saves it and the last out restores it).
let unpacking = 0;
let savedUmask = 0;
function holdUmask(): void { if (unpacking++ === 0) savedUmask = process.umask(0); }
function releaseUmask(): void { if (--unpacking === 0) process.umask(savedUmask); }

/** How a layer's owners land on disk when the caller says nothing: as the tar says for root of the
 * host, else through the caller's user namespace maps (owners.ts). */
export function defaultOwners(): LayerOwners | undefined { return runsAsRoot() ? undefined : callerOwners(); }

/**
 * Unpacks blob into dest (which must not exist yet), through a temporary folder beside it that is
 * renamed into place only once every entry is written, the diff ID matched and (rootless) the
 * owners applied. On any error the temporary folder is removed, dest is not created, and neither
 * are the folders above it that this call made. owners: undefined as root of the host (the tar's
 * owners as they are), else the maps the layer will be mounted with (default: the caller's).
 */
export async function unpackLayer(blob: string, dest: string, expectedDiffId: string | undefined, ops: NodeOps, onBytes?: (n: number) => void, owners: LayerOwners | undefined = defaultOwners()): Promise<UnpackResult> {
  const tmp = `${dest}.tmp-${process.pid}-${Date.now()}`;
  const above = mkdirSync(dirname(dest), { recursive: true });
  mkdirSync(tmp, 0o755);
  const hash = createHash('sha256');
  let bytes = 0;
  let writer: LayerWriter | undefined;
  holdUmask();
  try {
    writer = new LayerWriter(tmp, ops, owners);
    const parser = new TarParser((e) => writer!.entry(e));
    for await (const chunk of decompressed(blob)) {
      hash.update(chunk);
      bytes += chunk.length;
      if (!parser.done) parser.push(chunk);
      onBytes?.(chunk.length);
    }
    parser.finish();
    writer.finish();
    const diffId = `sha256:${hash.digest('hex')}`;
    if (expectedDiffId && diffId !== expectedDiffId) throw new UnpackError(`the layer's content is ${diffId}, not the ${expectedDiffId} its image names: it was changed or corrupted`);
    if (owners && writer.pending.size) {
      try { await applyOwners(tmp, [...writer.pending.values()], owners); } catch (e) { throw new UnpackError((e as Error).message); }
    }
    try { renameSync(tmp, dest); } catch (e) {
      // Another pull unpacked the same layer first: its copy is the same, keep it.
      if (!['EEXIST', 'ENOTEMPTY'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
      removeTree(tmp, owners);
    }
    releaseUmask();
    return { diffId, entries: writer.entries, bytes, skipped: writer.skipped };
  } catch (e) {
    writer?.abort();
    // Rootless, what the owner pass gave to subordinate ids is removed in the namespace.
    try { removeTree(tmp, owners); } catch { /* left for sandbox image prune, which removes unpacks that died */ }
    // The folders this call made above dest, while empty (another pull may be using them).
    if (above) for (let d = dirname(dest); d.length >= above.length; d = dirname(d)) { try { rmdirSync(d); } catch { break; } }
    releaseUmask();
    if (e instanceof TarError) throw new UnpackError(e.message);
    if ((e as NodeJS.ErrnoException).code === 'Z_DATA_ERROR' || (e as Error).message?.includes('zstd')) throw new UnpackError(`the layer cannot be decompressed: ${(e as Error).message}`);
    throw e;
  }
}
