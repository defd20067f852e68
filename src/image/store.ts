// The image store: content-addressed blobs (manifests, configs, compressed layers), unpacked
// layers, and one record per image name. Under /var/lib/sandbox (root) or the XDG data folder.
// Runs in the CLI process. Nothing enters blobs/ before its sha256 matched its name: a blob is
// written to a temporary file and renamed into place only after the check, so an interrupted or
// failed pull leaves no blob a later run trusts, and two pulls of one image both succeed and keep
// one copy (the second rename replaces identical bytes).
import { createHash } from 'node:crypto';
import { sha256Hex } from '../util/sha256';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { removeTree } from './owners';

export interface ImageConfig {
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Env?: string[] | null;
  WorkingDir?: string;
  User?: string;
  ExposedPorts?: Record<string, unknown> | null;
  Volumes?: Record<string, unknown> | null;
  StopSignal?: string;
}

export interface ImageRecord {
  /** The normalised reference it was pulled as. */
  reference: string;
  /** Where from: a registry URL, an OCI layout folder, or a docker save archive. */
  source: string;
  manifest: string;
  config: string;
  /** Compressed layer blobs, bottom first, and the uncompressed diff IDs the config names. */
  layers: { digest: string; size: number; mediaType: string }[];
  diffIds: string[];
  size: number;
  pulledAt: string;
}

export class StoreError extends Error {}

/**
 * Whether a folder's file system holds user.* extended attributes, which a rootless overlayfs
 * (mounted with userxattr) needs on its layers and its upper layer: tried on a scratch file made
 * there and removed at once. tmpfs takes them only since Linux 6.6; a store there (or on a file
 * system mounted without xattrs) is an error naming the folder and the way out. lsetxattr is
 * libsbx's (Node has none).
 */
export function checkUserXattrs(dir: string, lsetxattr: (path: string, name: string, value: Buffer) => void, what = 'the image store'): void {
  mkdirSync(dir, { recursive: true });
  const probe = join(dir, `.xattr-probe-${process.pid}-${Math.random().toString(36).slice(2)}`);
  writeFileSync(probe, '', { flag: 'wx', mode: 0o600 });
  try { lsetxattr(probe, 'user.sandbox.probe', Buffer.from('1')); } catch (e) {
    const m = (e as Error).message;
    // EPERM, ENOTSUP, EOPNOTSUPP: the file system refuses the user namespace of attributes.
    throw new StoreError(`${what} ${dir} is on a file system that cannot hold user extended attributes (${m.replace(/^.*?: /, '')}), which overlayfs needs for a sandbox without root (whiteouts and opaque folders of its layers, and of its upper layer); tmpfs holds them only since Linux 6.6: set SANDBOX_STORE to a folder on ext4, xfs or btrfs`);
  } finally { try { unlinkSync(probe); } catch { /* gone */ } }
}

export function defaultStoreRoot(): string {
  if (process.env.SANDBOX_STORE) return process.env.SANDBOX_STORE;
  if (process.geteuid?.() === 0) return '/var/lib/sandbox';
  return join(process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'sandbox');
}

const hex = (digest: string) => {
  const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!m) throw new StoreError(`${digest} is not a sha256 digest`);
  return m[1]!;
};

export class Store {
  constructor(readonly root: string = defaultStoreRoot()) {}

  blobPath(digest: string): string { return join(this.root, 'blobs', 'sha256', hex(digest)); }
  layerPath(diffId: string): string { return join(this.root, 'layers', hex(diffId)); }
  /** A sandbox's private upper layer and overlay work folder. */
  containerPath(name: string): string { return join(this.root, 'containers', name); }
  private recordPath(reference: string): string { return join(this.root, 'images', `${sha256Hex(reference)}.json`); }

  has(digest: string): boolean { return existsSync(this.blobPath(digest)); }

  /** The record of an image whose every layer is unpacked here: one that runs without a pull. */
  complete(reference: string): ImageRecord | undefined {
    const r = this.record(reference);
    return r && r.diffIds.every((d) => existsSync(this.layerPath(d))) ? r : undefined;
  }

  readBlob(digest: string): Buffer {
    const b = readFileSync(this.blobPath(digest));
    // Checked again on every read of small blobs (manifests, configs): cheap, and a changed file
    // in the store is caught before it is used.
    if (sha256Hex(b) !== hex(digest)) throw new StoreError(`the stored blob ${digest} does not match its digest: the store was changed; remove it with sandbox rmi and pull again`);
    return b;
  }

  /** A temporary file to stream a blob into; commit() checks and renames it, abort() removes it. */
  writer(digest: string, size?: number) {
    const dir = join(this.root, 'blobs', 'sha256');
    mkdirSync(dir, { recursive: true });
    const tmp = join(this.root, 'blobs', `.tmp-${hex(digest)}-${process.pid}-${Math.random().toString(36).slice(2)}`);
    const fd = openSync(tmp, 'wx', 0o644);
    const hash = createHash('sha256');
    let written = 0;
    let open = true;
    const close = () => { if (open) { open = false; closeSync(fd); } };
    return {
      write(chunk: Buffer) { hash.update(chunk); for (let off = 0; off < chunk.length;) off += writeSync(fd, chunk, off); written += chunk.length; },
      commit: (): void => {
        fsyncSync(fd);
        close();
        const got = `sha256:${hash.digest('hex')}`;
        if (got !== digest || (size !== undefined && size >= 0 && written !== size)) {
          unlinkSync(tmp);
          throw new StoreError(`the blob served as ${digest} is ${got} (${written} bytes${size !== undefined ? `, ${size} expected` : ''}): it was changed on the way or at the source; nothing was kept`);
        }
        renameSync(tmp, this.blobPath(digest));
      },
      abort: (): void => { close(); try { unlinkSync(tmp); } catch { /* gone */ } },
    };
  }

  put(digest: string, bytes: Buffer): void {
    const w = this.writer(digest, bytes.length);
    try { w.write(bytes); w.commit(); } catch (e) { w.abort(); throw e; }
  }

  saveRecord(r: ImageRecord): void {
    const p = this.recordPath(r.reference);
    mkdirSync(join(this.root, 'images'), { recursive: true });
    const tmp = `${p}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(r, null, 2) + '\n');
    renameSync(tmp, p);
  }

  record(reference: string): ImageRecord | undefined {
    try { return JSON.parse(readFileSync(this.recordPath(reference), 'utf8')) as ImageRecord; } catch { return undefined; }
  }

  records(): ImageRecord[] {
    let names: string[] = [];
    try { names = readdirSync(join(this.root, 'images')).filter((n) => n.endsWith('.json')); } catch { return []; }
    return names.map((n) => { try { return JSON.parse(readFileSync(join(this.root, 'images', n), 'utf8')) as ImageRecord; } catch { return undefined; } })
      .filter((r): r is ImageRecord => !!r).sort((a, b) => a.reference.localeCompare(b.reference));
  }

  removeRecord(reference: string): boolean {
    try { unlinkSync(this.recordPath(reference)); return true; } catch { return false; }
  }

  /** Removes blobs and unpacked layers that no image record (nor a sandbox) uses, and temporary files of pulls that died; returns the bytes freed. */
  prune(inUse: string[] = []): { removed: string[]; bytes: number } {
    const keepBlobs = new Set<string>();
    // Layers a sandbox still has mounted (given by the caller) stay even if their image went.
    const keepLayers = new Set<string>(inUse.map((p) => p.slice(p.lastIndexOf('/') + 1)));
    for (const r of this.records()) {
      for (const d of [r.manifest, r.config, ...r.layers.map((l) => l.digest)]) keepBlobs.add(hex(d));
      for (const d of r.diffIds) keepLayers.add(hex(d));
      // An index pulled for a multi-arch image is kept beside its platform's manifest.
      if ((r as ImageRecord & { index?: string }).index) keepBlobs.add(hex((r as ImageRecord & { index: string }).index));
    }
    const removed: string[] = [];
    let bytes = 0;
    const sweep = (dir: string, keep: Set<string>, what: string) => {
      let names: string[] = [];
      try { names = readdirSync(dir); } catch { return; }
      for (const n of names) {
        if (keep.has(n)) continue;
        const p = join(dir, n);
        try { bytes += statSync(p).isFile() ? statSync(p).size : 0; } catch { /* gone */ }
        // A rootless store's layers hold files of the caller's subordinate ids: removed in its namespace.
        removeTree(p);
        removed.push(`${what} ${n.startsWith('.tmp') || n.includes('.tmp-') ? n : `sha256:${n}`}`);
      }
    };
    sweep(join(this.root, 'blobs', 'sha256'), keepBlobs, 'blob');
    sweep(join(this.root, 'layers'), keepLayers, 'layer');
    // Temporary blobs of pulls whose process is gone (their names carry no live pid check: prune
    // is run by hand, not during a pull).
    try { for (const n of readdirSync(join(this.root, 'blobs')).filter((x) => x.startsWith('.tmp-'))) { rmSync(join(this.root, 'blobs', n), { force: true }); removed.push(`partial download ${n}`); } } catch { /* none */ }
    return { removed, bytes };
  }
}
