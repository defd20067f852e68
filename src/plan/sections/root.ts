// The root filesystem and the volumes (`rootfs`, `image`, `volumes`, `named_volumes`): the rootfs
// stage, on the host before the clone. Their mounts are the mounts stage's (sections/mounts.ts).
import { posix } from 'node:path';
import type { HostFeatures } from '../types';
import type { Compilation } from './context';

/** 1. rootfs: a private folder for the new root, owned by this run; the image or folder it uses. */
export function rootfsSteps(ctx: Compilation): void {
  const { spec, host, add, problems } = ctx;
  stateStep(ctx);
  const rf = spec.rootfs;
  if (rf.type === 'host') add('rootfs', 'rootfs', 'rootfs.host', `use the host's ${host.rootDirs.map((d) => d.split('->')[0]).join(' ')} read-only`, rf.src, { dirs: host.rootDirs });
  else if (rf.type === 'dir') add('rootfs', 'rootfs', 'rootfs.dir', `use the directory ${rf.path}`, rf.src, { path: rf.path });
  else {
    add('rootfs', 'rootfs', 'rootfs.image', rf.layers ? `use the image ${rf.image} (${rf.digest}, ${rf.layers.length} layers, in the store)` : `use the image ${rf.image} (pulled by up if the store has not got it${rf.plainHttp === 'loopback' ? `, over plain HTTP: its registry ${rf.registry} is on this host's loopback` : rf.plainHttp === 'insecure' ? `, over plain HTTP: insecure_registries names ${rf.registry}` : ''})`, rf.src,
      { ref: rf.image, ...(rf.layers ? { layers: rf.layers, digest: rf.digest } : {}) });
    // What the image declares and the file does not act on, shown so that a reviewer sees it.
    for (const port of rf.exposed ?? []) add('rootfs', `image:expose:${port}`, 'image.note', `the image exposes ${port}${spec.network.ports.some((p) => `${p.containerPort}/${p.protocol}` === port) ? '' : ' (not published: add it to ports to reach it)'}`, 'image', { expose: port });
    // A VOLUME the file does not mount is an anonymous volume (below); one it mounts is noted.
    for (const v of rf.volumes ?? []) {
      const m = spec.mounts.find((x) => posix.normalize(x.target) === posix.normalize(v) && !(x.kind === 'volume' && x.anonymous));
      if (m) add('rootfs', `image:volume:${v}`, 'image.note', `the image declares a volume at ${v}; the file mounts ${m.kind === 'bind' ? m.source : m.kind === 'volume' ? `the volume ${m.name}` : 'a tmpfs'} there${typeof m.src === 'object' ? ` (line ${m.src.line})` : ''}`, 'image', { volume: v });
    }
    if (!host.overlayfs) problems.push({ src: rf.src, code: 'no-overlayfs', message: 'this host has no overlayfs, which images need' });
  }
  volumeSteps(ctx);
}

/** The sandbox's state folder on the host, first of every plan. */
export function stateStep(ctx: Compilation): void {
  ctx.add('rootfs', 'state', 'state.create', `create ${ctx.stateDir}`, 'default', { path: ctx.stateDir }, { kind: 'state.remove', args: { path: ctx.stateDir } });
}

/** Where a volume's files are: its folder's _data (beside its meta.json), as Docker keeps them. */
export function volumeData(host: Pick<HostFeatures, 'volumes'>, name: string): string { return `${host.volumes.root}/${name}/_data`; }

/** One volume.create step per volume the sandbox uses (a volume mounted twice is made once, for
 * its first target), in the rootfs stage: after the image (its files seed a new volume), before
 * the clone. What it will do is read from the host's list of volumes, for the plan to say. */
function volumeSteps(ctx: Compilation): void {
  const { spec, host, add, problems } = ctx;
  const made = new Set<string>();
  const image = spec.rootfs.type === 'image';
  for (const m of spec.mounts) {
    if (m.kind !== 'volume' || made.has(m.name)) continue;
    made.add(m.name);
    const t = posix.normalize(m.target);
    const path = `${host.volumes.root}/${m.name}`;
    const exists = host.volumes.existing.includes(m.name);
    const seed = image && !m.nocopy ? 'image' : 'none';
    const what = m.anonymous ? `anonymous volume ${m.name} for the image's VOLUME ${t}` : `${m.external ? 'external ' : ''}volume ${m.name} on ${t}`;
    const fresh = seed === 'image'
      ? 'created and seeded from the image on first use (its files there, with owners, modes and xattrs; if it has none, empty and owned by the sandbox\'s user)'
      : `created empty on first use, owned by the sandbox's user${m.nocopy ? ' (nocopy)' : image ? '' : ' (no image to seed it from)'}`;
    const title = `${what}: ${exists ? 'exists; used as it is, never seeded again' : m.external ? 'does not exist (external: up refuses to start)' : fresh} (${path})`;
    if (m.external && !exists) problems.push({ src: m.src, code: 'volume-external-missing', message: `the external volume ${m.name} does not exist (\`sandbox volume ls\` lists them); create it by running the file that owns it, or remove \`external: true\``, atRun: true });
    add('rootfs', `volume:${m.name}`, 'volume.create', title, m.src, { name: m.name, path, target: t, seed, external: m.external, anonymous: m.anonymous },
      m.external ? undefined : { kind: 'volume.remove-new', args: { name: m.name } });
  }
}
