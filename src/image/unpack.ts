// Unpacks one image layer (a tar, gzip- or zstd-compressed) into its own folder, for overlayfs.
// Runs in the CLI process, as root. A layer is untrusted input: every entry's path is checked
// component by component from the layer's folder, and nothing is ever written through a symlink
// or outside it — `..`, absolute paths, entries under a symlink and hard links that point out are
// refused with the entry named, and the half-written folder is removed. No other process writes
// in the folder while it is unpacked (a fresh temporary one), so a check stays true until the
// write. Whiteouts become overlayfs whiteouts (0/0 character devices) and opaque folders get
// overlay's opaque xattr. The uncompressed stream's sha256 must equal the image's diff ID.
import { createHash } from 'node:crypto';
import { closeSync, constants, createReadStream, fchmodSync, fchownSync, futimesSync, linkSync, lchownSync, lstatSync, lutimesSync, mkdirSync, openSync, readSync, renameSync, rmSync, symlinkSync, unlinkSync, writeSync, chmodSync, chownSync, utimesSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { TarError, TarParser, type TarEntry, type TarSink } from './tar';

export class UnpackError extends Error {}

/** What the unpacker needs from libsbx (mknod and lsetxattr have no Node API). */
export interface NodeOps { whiteout(path: string): void; lsetxattr(path: string, name: string, value: Buffer): void }

export interface UnpackResult { diffId: string; entries: number; bytes: number; skipped: string[] }

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** The entry's path as components inside the layer, or an error naming why it would land outside. */
function components(name: string, what = 'entry'): string[] {
  if (name.startsWith('/')) throw new UnpackError(`${what} ${JSON.stringify(name)} is an absolute path; a layer may only write inside itself`);
  const parts = name.split('/').filter((p) => p && p !== '.');
  if (parts.includes('..')) throw new UnpackError(`${what} ${JSON.stringify(name)} climbs out with ..; a layer may only write inside itself`);
  return parts;
}

class LayerWriter {
  private readonly checked = new Set<string>();
  private readonly dirs: { path: string; e: TarEntry }[] = [];
  /** Every path this unpack made: the folder is fresh and nothing else writes in it, so a path
   * not here does not exist, and is not asked about. */
  private readonly made = new Set<string>();
  readonly skipped: string[] = [];
  entries = 0;
  private readonly root: boolean = process.geteuid?.() === 0;

  constructor(private readonly dir: string, private readonly ops: NodeOps) {}

  /** Creates (or checks) each parent folder: none may be a symlink or anything but a folder. */
  private parent(parts: string[], name: string): string {
    let p = this.dir;
    for (const c of parts.slice(0, -1)) {
      p = join(p, c);
      if (this.checked.has(p)) continue;
      const st = this.made.has(p) ? lstatSync(p, { throwIfNoEntry: false }) : undefined;
      if (!st) { mkdirSync(p, 0o755); this.checked.add(p); this.made.add(p); continue; }
      if (st.isSymbolicLink()) throw new UnpackError(`entry ${JSON.stringify(name)} would be written through the symlink ${JSON.stringify(p.slice(this.dir.length + 1))}; refused`);
      if (!st.isDirectory()) throw new UnpackError(`entry ${JSON.stringify(name)} is under ${JSON.stringify(p.slice(this.dir.length + 1))}, which is not a folder`);
      this.checked.add(p);
    }
    return join(p, parts[parts.length - 1]!);
  }

  /** Removes what an earlier entry of this layer left at path (a later entry replaces it). */
  private clear(path: string, keepDir = false): void {
    if (!this.made.has(path)) { this.made.add(path); return; }
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isDirectory()) {
      if (keepDir) return;
      rmSync(path, { recursive: true, force: true });
      for (const set of [this.checked, this.made]) for (const c of set) if (c.startsWith(`${path}/`)) set.delete(c);
      this.checked.delete(path);
    } else unlinkSync(path);
  }

  private meta(path: string, e: TarEntry, fd?: number): void {
    // A file is created with its mode (the umask is 0 while unpacking) and owned by root: only
    // another owner needs a chown, and then its mode again, since chown clears set-id bits.
    const chown = this.root && (e.uid !== 0 || e.gid !== 0);
    if (chown) { if (fd !== undefined) fchownSync(fd, e.uid, e.gid); else lchownSync(path, e.uid, e.gid); }
    if (fd !== undefined && (chown || !this.root)) fchmodSync(fd, e.mode & 0o7777);
    for (const [k, v] of Object.entries(e.xattrs)) {
      try { this.ops.lsetxattr(path, k, v); } catch { /* a namespace this file system does not take: left out, as Docker does */ }
    }
    if (fd !== undefined) futimesSync(fd, e.mtime, e.mtime);
    else lutimesSync(path, e.mtime, e.mtime);
  }

  entry(e: TarEntry): TarSink | null {
    this.entries++;
    const parts = components(e.name);
    if (!parts.length) { if (e.type === '5') this.dirs.push({ path: this.dir, e }); return null; }
    const base = parts[parts.length - 1]!;
    const path = this.parent(parts, e.name);
    if (base === OPAQUE) {
      this.ops.lsetxattr(join(path, '..'), 'trusted.overlay.opaque', Buffer.from('y'));
      return null;
    }
    if (base.startsWith(WH)) {
      const target = join(path, '..', base.slice(WH.length));
      this.clear(target);
      try { this.ops.whiteout(target); } catch (e) {
        // overlayfs itself refuses 0/0 devices: a store on an overlay root (in a container, say) cannot hold layers.
        throw new UnpackError(`an overlayfs whiteout cannot be made in ${this.dir} (${(e as Error).message}): the image store must be on a file system that allows it, not on overlayfs; set SANDBOX_STORE to a folder elsewhere`);
      }
      return null;
    }
    switch (e.type) {
      case '5':
        this.clear(path, true);
        if (!existsSync(path)) mkdirSync(path, 0o700);
        this.checked.add(path);
        this.dirs.push({ path, e });
        return null;
      case '2':
        this.clear(path);
        // The target is stored as it is and never followed here.
        symlinkSync(e.linkname, path);
        this.meta(path, e);
        return null;
      case '1': {
        const target = this.parent(components(e.linkname, 'hard link target'), e.linkname);
        let st;
        st = lstatSync(target, { throwIfNoEntry: false });
        if (!st) throw new UnpackError(`hard link ${JSON.stringify(e.name)} points to ${JSON.stringify(e.linkname)}, which is not in the layer before it`);
        if (st.isDirectory()) throw new UnpackError(`hard link ${JSON.stringify(e.name)} points to the folder ${JSON.stringify(e.linkname)}`);
        this.clear(path);
        linkSync(target, path);
        return null;
      }
      case '0': {
        this.clear(path);
        const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | 0o2000000 /* O_CLOEXEC */, this.root ? e.mode & 0o7777 : 0o600);
        return {
          data: (chunk) => { for (let off = 0; off < chunk.length;) off += writeSync(fd, chunk, off); },
          end: () => { try { this.meta(path, e, fd); } finally { closeSync(fd); } },
        };
      }
      default:
        // Device nodes and fifos: not made (a sandbox's /dev is its own); listed for the caller.
        this.skipped.push(e.name);
        return null;
    }
  }

  /** Folders last, deepest first: their times and modes, once nothing more is written in them. */
  finish(): void {
    for (const { path, e } of this.dirs.reverse()) {
      if (this.root) chownSync(path, e.uid, e.gid);
      chmodSync(path, e.mode & 0o7777);
      for (const [k, v] of Object.entries(e.xattrs)) { try { this.ops.lsetxattr(path, k, v); } catch { /* not taken here */ } }
      utimesSync(path, e.mtime, e.mtime);
    }
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

/**
 * Unpacks blob into dest (which must not exist yet), through a temporary folder beside it that is
 * renamed into place only once every entry is written and the diff ID matched. On any error the
 * temporary folder is removed and dest is not created.
 */
export async function unpackLayer(blob: string, dest: string, expectedDiffId: string | undefined, ops: NodeOps, onBytes?: (n: number) => void): Promise<UnpackResult> {
  const tmp = `${dest}.tmp-${process.pid}-${Date.now()}`;
  mkdirSync(dirname(dest), { recursive: true });
  mkdirSync(tmp, 0o755);
  const writer = new LayerWriter(tmp, ops);
  const hash = createHash('sha256');
  let bytes = 0;
  holdUmask();
  try {
    const parser = new TarParser((e) => writer.entry(e));
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
    try { renameSync(tmp, dest); } catch (e) {
      // Another pull unpacked the same layer first: its copy is the same, keep it.
      if (!['EEXIST', 'ENOTEMPTY'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
      rmSync(tmp, { recursive: true, force: true });
    }
    releaseUmask();
    return { diffId, entries: writer.entries, bytes, skipped: writer.skipped };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    releaseUmask();
    if (e instanceof TarError) throw new UnpackError(e.message);
    if ((e as NodeJS.ErrnoException).code === 'Z_DATA_ERROR' || (e as Error).message?.includes('zstd')) throw new UnpackError(`the layer cannot be decompressed: ${(e as Error).message}`);
    throw e;
  }
}
