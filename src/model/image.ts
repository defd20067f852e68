// An image's config → the spec's defaults, as docker run applies them: the file's `entrypoint`
// replaces the image's Entrypoint (and then its Cmd too), `command` its Cmd; env adds to and
// overrides the image's Env; workdir and user replace WorkingDir and User. What came from the
// image is marked so ('image'), and the plan cites it so. Pure; called by normalize, before the
// rules run, so that the rules see the image's user, command and working directory.
import { sha256Hex } from '../util/sha256';
import { posix } from 'node:path';
import type { EnvVar, MountSpec, SandboxSpec, Source } from './types';
import type { ImageConfig } from '../image/store';

/** For the audit, which may not read the image layer: a registry on loopback is plain HTTP by
 * default and reachable by no one else, so naming it in insecure_registries exposes nothing. */
export { isLoopbackRegistry } from '../image/reference';

export interface ImageInput { config: ImageConfig; layerDirs: string[]; digest: string }

export function applyImage(spec: SandboxSpec, image: ImageInput): SandboxSpec {
  const p = spec.process;
  const c = image.config;
  const IMG: Source = 'image';
  const entrypoint = p.entrypoint ?? c.Entrypoint ?? [];
  const cmd = p.command ?? (p.entrypoint !== undefined ? [] : c.Cmd ?? []);
  const fromImage = p.command === undefined && p.entrypoint === undefined;
  const env = new Map<string, EnvVar>();
  // The file's defaults (PATH) give way to the image's values; what the file sets wins over both.
  for (const e of p.env) if (e.src === 'default') env.set(e.name, e);
  for (const kv of c.Env ?? []) {
    const i = kv.indexOf('=');
    if (i > 0) { env.delete(kv.slice(0, i)); env.set(kv.slice(0, i), { name: kv.slice(0, i), value: kv.slice(i + 1), src: IMG }); }
  }
  for (const e of p.env) if (e.src !== 'default') { env.delete(e.name); env.set(e.name, e); }
  let user = p.user;
  if (user.src === 'default' && c.User) {
    const [u, g] = c.User.split(':') as [string, string | undefined];
    const num = (s: string | undefined) => (s !== undefined && /^[0-9]+$/.test(s) ? Number(s) : s);
    user = { user: num(u)!, group: num(g), src: IMG };
  }
  // An image's VOLUME that the file does not mount becomes an anonymous volume, as docker run
  // makes one: kept per sandbox (its name is the sandbox's and the target's), removed by `down -v`.
  const mounted = new Set(spec.mounts.map((m) => posix.normalize(m.target).replace(/(.)\/$/, '$1')));
  const anonymous: MountSpec[] = Object.keys(c.Volumes ?? {})
    .filter((t) => t.startsWith('/') && !mounted.has(posix.normalize(t).replace(/(.)\/$/, '$1')))
    .map((t) => ({ kind: 'volume', name: anonymousVolumeName(spec.name.value, t), external: false, nocopy: false, anonymous: true, target: t, readOnly: false, flags: [], src: IMG }));
  return {
    ...spec,
    mounts: [...spec.mounts, ...anonymous],
    rootfs: spec.rootfs.type !== 'image' ? spec.rootfs : {
      ...spec.rootfs, layers: image.layerDirs, digest: image.digest,
      exposed: Object.keys(c.ExposedPorts ?? {}), volumes: Object.keys(c.Volumes ?? {}),
    },
    process: {
      ...p,
      args: [...entrypoint, ...cmd],
      argsSrc: fromImage ? IMG : p.argsSrc,
      env: [...env.values()],
      cwd: p.cwd.src === 'default' && c.WorkingDir ? { value: c.WorkingDir, src: IMG } : p.cwd,
      user,
    },
  };
}

/** The name of a sandbox's anonymous volume at a target: stable, so that the next `up` of the
 * sandbox finds the data its last run left there (as Compose reuses a service's anonymous volumes). */
export function anonymousVolumeName(sandbox: string, target: string): string {
  return `${sandbox}-anon-${sha256Hex(posix.normalize(target).replace(/(.)\/$/, '$1')).slice(0, 12)}`;
}
