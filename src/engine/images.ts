// The image store as the CLI uses it: an image's config and layers for normalize, pulled first
// when `up` or `pull` needs it. Runs in the CLI process, as its user; the unpacker's file
// operations (mknod, xattrs, owners) go through libsbx, which only the engine loads.
import type { ImageInput } from '../model/image';
import { imageKey, pull, type PullEvent } from '../image/pull';
import { Store } from '../image/store';
import { loadLibSbx } from '../ffi/libsbx';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { HostFeatures } from '../plan/types';
import { findStep } from '../plan/steps';
import { readSaved } from '../host/state';
import { beforePull } from './extra-ca';

export interface ImageLookup {
  /** Fetch the image when the store has not got it (else: undefined, and the plan says so). */
  pull: boolean;
  insecure?: string[];
  /** Fetch it again even when the store has it (`sandbox pull`). */
  refresh?: boolean;
  onEvent?: (e: PullEvent) => void;
}

/** The store's key for a reference (`busybox` → `docker.io/library/busybox:latest`). */
export function imageName(ref: string): string { return imageKey(ref).key; }

/** Whether the store holds the image whole. */
export function haveImage(ref: string): boolean { return !!new Store().complete(imageKey(ref).key); }

/** The image as normalize takes it: from the store, pulled first if asked to. */
export async function lookupImage(ref: string, o: ImageLookup): Promise<ImageInput | undefined> {
  const have = !o.refresh && haveImage(ref);
  if (!o.pull && !have) return undefined;
  if (!have) beforePull(ref, o.insecure ?? []);
  const pulled = await pull(ref, { store: new Store(), ops: loadLibSbx(), insecure: o.insecure ?? [], onEvent: o.onEvent, refresh: o.refresh });
  return { config: pulled.config, layerDirs: pulled.layerDirs, digest: pulled.record.manifest };
}

/** The layers of sandboxes that still exist (running, or exited and not yet down): `image prune` keeps them. */
export function layersInUse(host: HostFeatures): string[] {
  let names: string[] = [];
  try { names = readdirSync(host.stateRoot).filter((n) => !n.startsWith('.')); } catch { /* none */ }
  return names.flatMap((n) => {
    const plan = readSaved(join(host.stateRoot, n))?.plan;
    return (plan && findStep(plan.steps, 'rootfs.image')?.args.layers) ?? [];
  });
}
