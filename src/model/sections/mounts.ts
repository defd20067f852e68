// What is mounted in the sandbox: volumes (binds, named volumes, tmpfs), devices added to the
// minimal /dev, and the size of /dev/shm (64m by default). A source that starts with ., / or ~ is
// a host path (a bind); a bare name is a named volume, as Docker reads `-v NAME:/path`.
// `up -v` mounts replace the file's on the same target.
import type { UserConfig } from '../../config/types';
import { didYouMean } from '../../config/diagnostic';
import type { DeviceNodeSpec, DeviceSpec, MountFlag, MountSpec, Propagation, SandboxSpec, Source } from '../types';
import { MOUNT_FLAGS, PROPAGATIONS, VOLUME_NAME } from '../types';
import { parseSize } from '../size';
import { D, isOneOf, own, resolveHostPath, val, type NormalizeContext, type Problem } from './context';
import type { SpecInputs } from './inputs';

type VolumeEntry = NonNullable<UserConfig['volumes']>[number];
type LongVolume = Exclude<VolumeEntry, string>;

export type Mounts = Pick<SandboxSpec, 'mounts' | 'devices' | 'shmSize' | 'mqueue'>;

const PROPAGATION_BIND_ONLY = 'propagation applies to bind and tmpfs mounts only: nothing is mounted below a named volume on the host';

/** A named volume, as `named_volumes` declares its key (store name, external) or not at all. */
function volumeOf(cfg: UserConfig, key: string, src: Source, target: string, readOnly: boolean, flags: MountFlag[], nocopy: boolean): MountSpec {
  const decl = own(cfg.named_volumes, key) ?? undefined;
  return { kind: 'volume', name: decl?.name ?? key, external: decl?.external ?? false, nocopy, anonymous: false, target, readOnly, flags, src };
}

/** SRC:DST[:OPTIONS]; `path` resolves a host path from the file's folder, or from the caller's for `up -v`. */
function shortVolume(cfg: UserConfig, v: string, src: Source, path: (p: string) => string, problem: Problem): MountSpec | undefined {
  const [source, target, opts = ''] = v.split(':') as [string, string, string?];
  if (target === undefined) { problem(src, 'invalid-volume', `\`${v}\` names no target; write SRC:DST[:ro], such as ./data:/data:ro`); return undefined; }
  const named = !/^[./~]/.test(source);
  if (named && !VOLUME_NAME.test(source)) { problem(src, 'invalid-volume-name', `\`${source}\` is neither a host path nor a volume name; write a path as ./${source.replace(/^[^a-zA-Z0-9]+/, '')}, or a volume name of letters, digits, _, . and - that starts with a letter or digit`); return undefined; }
  let readOnly = false, nocopy = false, propagation: Propagation | undefined;
  const flags: MountFlag[] = [];
  for (const o of opts.split(',').filter(Boolean)) {
    if (o === 'ro') readOnly = true;
    else if (o === 'rw') readOnly = false;
    else if (o === 'nocopy' && named) nocopy = true;
    else if (isOneOf(PROPAGATIONS, o) && !named) propagation = o;
    else if (isOneOf(MOUNT_FLAGS, o)) flags.push(o);
    else if (o === 'z' || o === 'Z') continue; // SELinux relabelling: nothing to do without SELinux.
    else if (o === 'nocopy') problem(src, 'nocopy-on-bind', '`nocopy` applies to named volumes only: a bind shows the host folder as it is');
    else if (isOneOf(PROPAGATIONS, o)) problem(src, 'volume-propagation', PROPAGATION_BIND_ONLY);
    else {
      const guess = didYouMean(o, ['ro', 'rw', 'nosuid', 'nodev', 'noexec', 'rprivate', 'rshared', 'rslave', ...(named ? ['nocopy'] : [])]);
      problem(src, 'invalid-mount-option', `\`${o}\` is not a mount option${guess ? ` (did you mean \`${guess}\`?)` : `; use ro, rw, nosuid, nodev, noexec or ${named ? 'nocopy' : 'a propagation such as rslave'}`}`);
    }
  }
  if (named) return volumeOf(cfg, source, src, target, readOnly, flags, nocopy);
  return { kind: 'bind', source: path(source), target, readOnly, flags, src, ...(propagation ? { propagation } : {}) };
}

/** The long form: {type: bind|volume|tmpfs, source, target, ...}; only the file has it, as entry `i`. */
function longVolume(cfg: UserConfig, ctx: NormalizeContext, v: LongVolume, i: number, src: Source, problem: Problem): MountSpec {
  const at = (key: string) => ctx.where(['volumes', i, key]);
  // The schema allows only these words in the long form's options.
  const flags = (v.options ?? []).filter((o): o is MountFlag => isOneOf(MOUNT_FLAGS, o));
  const readOnly = v.read_only ?? (v.options ?? []).includes('ro');
  if (v.type !== 'volume' && v.volume) problem(at('volume'), 'volume-options-not-volume', `\`volume\` options apply to \`type: volume\` only; remove them, or make this a named volume`);
  if (v.type === 'bind') return { kind: 'bind', source: resolveHostPath(v.source!, ctx.dir, ctx.home), target: v.target, readOnly, flags, src, ...(v.propagation ? { propagation: v.propagation } : {}) };
  if (v.type === 'volume') {
    if (v.propagation) problem(at('propagation'), 'volume-propagation', PROPAGATION_BIND_ONLY);
    return volumeOf(cfg, v.source!, src, v.target, readOnly, flags, v.volume?.nocopy ?? false);
  }
  for (const f of ['nosuid', 'nodev'] as const) if (!flags.includes(f)) flags.push(f);
  return { kind: 'tmpfs', target: v.target, readOnly, flags, src, mode: v.mode !== undefined ? parseInt(v.mode, 8) : 0o1777, ...(v.size !== undefined ? { sizeBytes: parseSize(v.size) } : {}), ...(v.propagation ? { propagation: v.propagation } : {}) };
}

function volumesOf(cfg: UserConfig, ctx: NormalizeContext, inputs: SpecInputs, problem: Problem): MountSpec[] {
  const filePath = (p: string) => resolveHostPath(p, ctx.dir, ctx.home);
  // `up -v` mounts: relative paths from the caller's folder, as docker run reads them.
  const cliPath = (p: string) => resolveHostPath(p, inputs.overrides?.cwd ?? ctx.dir, ctx.home);
  const fromFile = (cfg.volumes ?? []).map((v, i) => {
    const src = ctx.where(['volumes', i]);
    return typeof v === 'string' ? shortVolume(cfg, v, src, filePath, problem) : longVolume(cfg, ctx, v, i, src, problem);
  });
  const fromCli = (inputs.overrides?.volumes ?? []).map((o) => shortVolume(cfg, o.value, o.src, cliPath, problem));
  // Two keys of named_volumes given one store name are one volume: as in Compose, allowed.
  for (const key of Object.keys(cfg.named_volumes ?? {})) {
    if (!key.startsWith('x-') && !VOLUME_NAME.test(key)) problem(ctx.where(['named_volumes', key], 'key'), 'invalid-volume-name', `\`${key}\` is not a volume name: use letters, digits, _, . and -, starting with a letter or digit (at least 2 characters)`);
  }
  const cli = fromCli.filter((m): m is MountSpec => m !== undefined);
  const file = fromFile.filter((m): m is MountSpec => m !== undefined && !cli.some((x) => x.target === m.target));
  return [...file, ...cli];
}

function devicesOf(cfg: UserConfig, ctx: NormalizeContext, problem: Problem): DeviceSpec[] {
  return (cfg.devices ?? []).map((d, i) => {
    const src = ctx.where(['devices', i]);
    if (typeof d === 'object' && d.type !== undefined) {
      // A node made by its numbers: the schema asks for the target; a source would be a second device.
      if (d.source !== undefined) problem(ctx.where(['devices', i, 'source']), 'device-node-source', 'a device made by its numbers (type, major, minor) has no host source: remove `source`, or `type` to bind the host\'s device');
      if (d.type !== 'p' && (d.major === undefined || d.minor === undefined)) problem(ctx.where(['devices', i, 'type']), 'device-node-numbers', `a ${d.type === 'c' ? 'character' : 'block'} device is made by its numbers: give \`major\` and \`minor\``);
      const node: DeviceNodeSpec = { type: d.type, major: d.major ?? 0, minor: d.minor ?? 0, mode: d.mode !== undefined ? parseInt(d.mode, 8) : 0o666, uid: d.uid ?? 0, gid: d.gid ?? 0 };
      if (d.target === undefined) problem(src, 'device-node-target', 'a device made by its numbers needs its `target` in the sandbox, such as /dev/fuse');
      return { source: '', target: d.target ?? '/dev/null', permissions: d.permissions ?? 'rwm', node, src };
    }
    if (typeof d === 'object' && d.source === undefined) problem(src, 'device-source', 'a device is a host device (`source`) or a node made by its numbers (`type`, `major`, `minor`): give one of them');
    if (typeof d === 'object') return { source: d.source!, target: d.target ?? d.source!, permissions: d.permissions ?? 'rwm', src };
    const [s, t, p] = d.split(':') as [string, string?, string?];
    const perms = t && /^[rwm]+$/.test(t) ? t : p ?? 'rwm';
    return { source: s, target: t && !/^[rwm]+$/.test(t) ? t : s, permissions: perms, src };
  });
}

export function normalizeMounts(cfg: UserConfig, ctx: NormalizeContext, inputs: SpecInputs, problem: Problem): Mounts {
  const mounts = volumesOf(cfg, ctx, inputs, problem);
  const devices = devicesOf(cfg, ctx, problem);
  const shm = cfg.shm_size !== undefined ? parseSize(cfg.shm_size) : undefined;
  if (shm !== undefined && shm < 4096) problem(ctx.where(['shm_size']), 'shm-too-small', `\`shm_size\` is ${shm} bytes; /dev/shm needs at least one page (4096 bytes): write a size such as 64m`);
  return { mounts, devices, shmSize: shm !== undefined ? val(shm, ctx.where(['shm_size'])) : val(64 * 1048576, D), ...(cfg.mqueue ? { mqueue: val(true, ctx.where(['mqueue'])) } : {}) };
}
