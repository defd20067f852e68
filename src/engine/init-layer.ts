// The top lower layer of a read-only image root (an image with security.read_only), made in the
// CLI on the host (as root, or as the rootless caller) by the rootfs.image step, before the child
// mounts the overlay: an empty file or folder at each mount point of the plan that the image
// lacks, as Docker's init layer holds /etc/hosts and /etc/resolv.conf. A read-only root has no
// upper layer, so the child could not make a missing mount point itself (EROFS): the bind of the
// sandbox's /etc/resolv.conf, a volume's folder, /proc in an image that has none. The command's
// working directory too, where the image lacks it (the mount.workdir step would otherwise fail
// with EROFS): made as docker makes a missing one, mode 0755 and owned by the sandbox's root.
//
// What the image has is read from its layers, top first. A mount point behind a symbolic link in
// any layer is left alone (a folder made here would hide the link); a whiteout hides what lower
// layers hold. A folder made on the way to a mount point takes the mode and owner of the image's
// folder at that path, where the image has one, since overlayfs shows the top layer's.
import { chmodSync, chownSync, lstatSync, mkdirSync, writeFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { hostId } from '../image/owners';
import { findStep } from '../plan/steps';
import type { Plan } from '../plan/types';

/** Steps whose target is a mount point in the root itself (those under /dev, /proc and /sys are
 * in the file systems mounted there, which the engine makes). */
const MOUNT_POINTS = new Set(['mount.bind', 'mount.proc', 'mount.dev', 'mount.tmpfs.dev', 'mount.sys', 'mount.netfile', 'mount.tmpfs', 'mount.volume']);

/** The mount points of a plan in its root: path, and whether a file (not a folder) goes there, as
 * for the sandbox's own /etc files and a bind of one of `files` (preflight's fileSources). */
export function mountPoints(plan: Plan, files: ReadonlySet<string>): { target: string; file: boolean }[] {
  const out: { target: string; file: boolean }[] = [];
  for (const s of plan.steps) {
    if (!MOUNT_POINTS.has(s.kind)) continue;
    const a = s.args as { target: string; source?: string };
    if (/^\/(dev|proc|sys)\/./.test(a.target)) continue;
    out.push({ target: a.target, file: s.kind === 'mount.netfile' || (s.kind === 'mount.bind' && files.has(a.source!)) });
  }
  return out;
}

/** The working directory the plan makes (mount.workdir), as a folder to make where the image has none. */
function workdirOf(plan: Plan): { target: string; file: false; owner: boolean }[] {
  const w = findStep(plan.steps, 'mount.workdir');
  return w ? [{ target: w.args.path, file: false, owner: true }] : [];
}

const lstat = (p: string): Stats | undefined => { try { return lstatSync(p); } catch { return undefined; } };
const isWhiteout = (s: Stats) => s.isCharacterDevice() && s.rdev === 0;

/** What the image (layers bottom first) holds at path: its entry's stats, 'missing', or 'link'
 * when a component of the path is a symbolic link in some layer. */
function inImage(layers: readonly string[], path: string): Stats | 'missing' | 'link' {
  const parts = path.split('/').filter(Boolean);
  for (let i = layers.length - 1; i >= 0; i--) {
    for (let n = 1; n <= parts.length; n++) {
      const s = lstat(join(layers[i]!, ...parts.slice(0, n)));
      if (!s) break;
      if (isWhiteout(s)) return 'missing';
      if (s.isSymbolicLink()) return 'link';
      if (n === parts.length) return s;
      if (!s.isDirectory()) return 'missing';
    }
  }
  return 'missing';
}

/** Makes the init layer in dir for the plan's mount points that the image lacks; returns them. */
export function makeInitLayer(plan: Plan, layers: readonly string[], dir: string, files: ReadonlySet<string>): string[] {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const made: string[] = [];
  // The sandbox's root on the host: the owner of a working directory made here.
  const idmap = findStep(plan.steps, 'idmap');
  const root = idmap ? { uid: hostId(idmap.args.uid, 0), gid: hostId(idmap.args.gid, 0) } : { uid: 0, gid: 0 };
  for (const { target, file, owner } of [...mountPoints(plan, files).map((m) => ({ ...m, owner: false })), ...workdirOf(plan)]) {
    if (inImage(layers, target) !== 'missing') continue;
    const parts = target.split('/').filter(Boolean);
    let linked = false;
    for (let n = 1; n < parts.length && !linked; n++) {
      const at = '/' + parts.slice(0, n).join('/');
      const image = inImage(layers, at);
      if (image === 'link') { linked = true; break; }
      const p = join(dir, at);
      if (lstat(p)) continue;
      mkdirSync(p);
      // chmod, not mkdir's mode, which the umask would narrow (a 1777 folder).
      chmodSync(p, image === 'missing' ? 0o755 : image.mode & 0o7777);
      if (image !== 'missing') try { chownSync(p, image.uid, image.gid); } catch { /* rootless: the caller's own */ }
    }
    if (linked || lstat(join(dir, target))) continue;
    if (file) writeFileSync(join(dir, target), '', { mode: 0o644, flag: 'wx' });
    else {
      mkdirSync(join(dir, target));
      chmodSync(join(dir, target), 0o755);
      if (owner && root.uid !== undefined && root.gid !== undefined) try { chownSync(join(dir, target), root.uid, root.gid); } catch { /* rootless: the caller's own, its root */ }
    }
    made.push(target);
  }
  return made;
}
