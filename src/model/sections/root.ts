// The root filesystem: an image, a folder, or the host's own folders (the default), read-only
// or not (`security.read_only`, false by default), and its propagation once pivoted (`root_propagation`).
import { parseReference, plainHttp } from '../../image/reference';
import type { UserConfig } from '../../config/types';
import type { SandboxSpec } from '../types';
import { D, lineOf, resolveHostPath, val, valOr, type NormalizeContext, type Problem } from './context';

/**
 * The image a config names, as the store and the puller know it: oci:PATH[:TAG] names an OCI image
 * layout folder and docker-archive:FILE.tar[:NAME] a docker save archive, relative to the file's
 * folder like every path. Known before normalize, so that the image can be one of its inputs.
 */
export function imageOf(cfg: Pick<UserConfig, 'image'>, ctx: Pick<NormalizeContext, 'dir' | 'home'>): string | undefined {
  if (cfg.image === undefined) return undefined;
  const hostPath = (p: string) => resolveHostPath(p, ctx.dir, ctx.home);
  const oci = /^oci:(.+?)(?::([\w][\w.-]{0,127}))?$/.exec(cfg.image);
  const arc = /^docker-archive:(.+?\.tar)(?::(.+))?$/.exec(cfg.image);
  return oci ? `oci:${hostPath(oci[1]!)}${oci[2] ? `:${oci[2]}` : ''}` : arc ? `docker-archive:${hostPath(arc[1]!)}${arc[2] ? `:${arc[2]}` : ''}` : cfg.image;
}

export function normalizeRoot(cfg: UserConfig, ctx: NormalizeContext, problem: Problem): SandboxSpec['rootfs'] {
  const at = ctx.where.bind(ctx);
  const readOnly = valOr(ctx, cfg.security?.read_only, ['security', 'read_only'], false);
  const prop = cfg.root_propagation !== undefined ? { propagation: val(cfg.root_propagation, at(['root_propagation'])) } : {};
  if (cfg.image !== undefined && cfg.rootfs !== undefined) problem(at(['image'], 'key'), 'image-and-rootfs', `\`image\` and \`rootfs\` both choose the root filesystem (rootfs is on line ${lineOf(at(['rootfs']))}); keep one of them`);
  if (cfg.image !== undefined) {
    const image = imageOf(cfg, ctx)!;
    const rootfs: SandboxSpec['rootfs'] = { type: 'image', image, readOnly, ...prop, src: at(['image']), insecure: cfg.insecure_registries ?? [] };
    // oci: and docker-archive: images are files: no registry is reached for them.
    if (/^(oci|docker-archive):/.test(image)) return rootfs;
    try {
      const registry = parseReference(cfg.image).registry;
      const plain = plainHttp(registry, rootfs.insecure);
      rootfs.registry = registry;
      if (plain) rootfs.plainHttp = plain;
    } catch (e) { problem(at(['image']), 'bad-image-reference', `${(e as Error).message}; write it as Docker does, such as busybox, ubuntu:24.04 or host:5000/name:tag`); }
    return rootfs;
  }
  if (cfg.rootfs === undefined || cfg.rootfs === 'host' || cfg.rootfs.type === 'host') return { type: 'host', readOnly, ...prop, src: cfg.rootfs === undefined ? D : at(['rootfs']) };
  return { type: 'dir', path: resolveHostPath(cfg.rootfs.path ?? '.', ctx.dir, ctx.home), readOnly, ...prop, src: at(['rootfs', 'path']) };
}
