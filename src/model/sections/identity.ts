// The sandbox's identity: its name, its hostname, and the namespaces it gets (with the user
// namespace's id maps). Defaults: the name from the file's name, the hostname from the name,
// every namespace private but user and time (user is private too without root), net as `network`.
import { basename, extname } from 'node:path';
import type { UserConfig } from '../../config/types';
import type { CallerIds, IdMap, NsSpec, SandboxSpec, Source, Val } from '../types';
import { NAMESPACES } from '../types';
import { D, val, type NormalizeContext, type SpecInputs } from './context';

export type Identity = Pick<SandboxSpec, 'name' | 'hostname' | 'namespaces' | 'userns'>;

/** `up --name`, else the file's `name`, else the file's name (less its extension) made a valid one. */
export function sandboxName(cfg: UserConfig, ctx: NormalizeContext, inputs: SpecInputs): Val<string> {
  const stem = basename(ctx.file, extname(ctx.file)).replace(/^\.+/, '').replace(/[^a-zA-Z0-9_.-]/g, '-') || 'sandbox';
  if (inputs.name !== undefined) return val(inputs.name, 'cli');
  if (cfg.name !== undefined) return val(cfg.name, ctx.where(['name']));
  return val(/^[a-zA-Z0-9]/.test(stem) ? stem : `s-${stem}`, D);
}

/** Name, hostname and namespaces; `net` is the network's mode and where it was said, which the
 * net namespace follows unless `namespaces.net` is set on its own. */
export function normalizeIdentity(cfg: UserConfig, ctx: NormalizeContext, inputs: SpecInputs, net: Val<string>): Identity {
  const name = sandboxName(cfg, ctx, inputs);
  const hostname = cfg.hostname !== undefined ? val(cfg.hostname, ctx.where(['hostname'])) : val(name.value.slice(0, 63), D);
  const namespaces = namespacesOf(cfg, ctx, inputs, net);
  return { name, hostname, namespaces, userns: userNamespace(cfg, ctx, inputs, namespaces) };
}

function namespacesOf(cfg: UserConfig, ctx: NormalizeContext, inputs: SpecInputs, net: Val<string>): NsSpec[] {
  const nsDefaults: Record<string, 'private' | 'host'> = { user: inputs.rootless ? 'private' : 'host', pid: 'private', mount: 'private', uts: 'private', ipc: 'private', net: net.value === 'host' ? 'host' : 'private', cgroup: 'private', time: 'host' };
  return NAMESPACES.map((type) => {
    const raw = (cfg.namespaces as Record<string, unknown> | undefined)?.[type];
    const src: Source = raw === undefined ? (type === 'net' ? net.src : D) : ctx.where(['namespaces', type]);
    if (raw === undefined) return { type, mode: nsDefaults[type]!, src };
    if (raw === true || raw === 'private' || (typeof raw === 'object' && raw !== null)) return { type, mode: 'private', src };
    if (raw === false || raw === 'host') return { type, mode: 'host', src };
    return { type, mode: 'join', path: String(raw), src };
  });
}

/** A private user namespace's maps: the file's, or the caller's ids without root, or 100000+65536 as root. */
function userNamespace(cfg: UserConfig, ctx: NormalizeContext, inputs: SpecInputs, namespaces: NsSpec[]): SandboxSpec['userns'] {
  const userNs = namespaces.find((n) => n.type === 'user')!;
  if (userNs.mode !== 'private') return undefined;
  const u = cfg.namespaces?.user;
  const maps = (key: 'uid_map' | 'gid_map'): IdMap[] => {
    const list = typeof u === 'object' ? u[key] : undefined;
    if (!list) return inputs.rootless ? rootlessMap(inputs.rootless, key) : [{ container: 0, host: 100000, size: 65536 }];
    return list.map((m) => {
      if (typeof m !== 'string') return m;
      const [c, h, s] = m.split(':').map(Number) as [number, number, number];
      return { container: c, host: h, size: s };
    });
  };
  const src = typeof u === 'object' ? ctx.where(['namespaces', 'user']) : D;
  const rootless = inputs.rootless !== undefined && !(typeof u === 'object' && (u.uid_map || u.gid_map));
  return { uidMap: maps('uid_map'), gidMap: maps('gid_map'), src: userNs.src === D ? D : src, ...(rootless ? { rootless } : {}) };
}

/** The caller as root inside, then its subordinate ranges from id 1 up, in the order the files list them. */
function rootlessMap(c: CallerIds, key: 'uid_map' | 'gid_map'): IdMap[] {
  const out: IdMap[] = [{ container: 0, host: key === 'uid_map' ? c.uid : c.gid, size: 1 }];
  let next = 1;
  for (const r of key === 'uid_map' ? c.subuid : c.subgid) {
    const size = Math.min(r.count, 4294967295 - next);
    if (size <= 0) break;
    out.push({ container: next, host: r.start, size });
    next += size;
  }
  return out;
}
