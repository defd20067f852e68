// The host side of `sandbox export --format oci`: device nodes read by stat(2) for the bundle's
// config, and the bundle's rootfs/ written (an image's layers merged through a read-only overlay
// mount, then copied with cp -a). Runs in the CLI process as the caller; the overlay needs root.
import { mkdirSync, mkdtempSync, rmdirSync, statSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { BundleRoot, DeviceNode } from '../model/types';

const childProcess = () => require('node:child_process') as typeof import('node:child_process');

/** A device node of this host, by stat(2): its type and numbers (Linux's dev_t split). */
export function deviceNode(path: string): DeviceNode | undefined {
  try {
    const st = statSync(path, { bigint: true });
    if (!st.isCharacterDevice() && !st.isBlockDevice()) return undefined;
    const rdev = st.rdev;
    const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
    const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
    return { type: st.isBlockDevice() ? 'b' : 'c', major, minor, mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid) };
  } catch { return undefined; }
}

/** The bundle's root folder: mount points and links, or the image's layers merged into it. */
export function makeBundleRoot(dir: string, root: BundleRoot): void {
  if (root.kind === 'dir') return;
  const rootfs = join(dir, 'rootfs');
  mkdirSync(rootfs, { mode: 0o755 });
  if (root.kind === 'host') {
    for (const l of root.links) { mkdirSync(dirname(join(rootfs, l.path)), { recursive: true }); symlinkSync(l.target, join(rootfs, l.path)); }
    return;
  }
  const cp = (from: string) => childProcess().execFileSync('cp', ['-a', `${from}/.`, rootfs], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (root.layers.length === 1) { cp(root.layers[0]!); return; }
  // Several layers: overlayfs merges them (whiteouts and opaque folders as `up` sees them), read-only,
  // on a mount point of our own that is unmounted and removed whatever happens.
  const mnt = mkdtempSync(join(dir, '.layers-'));
  try {
    childProcess().execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${[...root.layers].reverse().join(':')}`, mnt], { stdio: ['ignore', 'ignore', 'pipe'] });
    try { cp(mnt); } finally { childProcess().execFileSync('umount', [mnt], { stdio: 'ignore' }); }
  } finally { rmdirSync(mnt); }
}

