// Where a sandbox's host-side things are, as the compiler names them in the plan (the steps'
// arguments and their undo data); the engine records what it made in the sandbox's undo list,
// from which ps, stop, down and gc find them again (host/undo.ts). Pure.
import { sha256Hex } from '../util/sha256';
import type { HostFeatures } from './types';

/** The sandbox's cgroup, relative to the hierarchies' mounts: sandbox/NAME as root; in a rootless
 * run, the same under the caller's delegated v2 subtree, or '' (none) where nothing is delegated.
 * `at`: the file's `cgroup_path` (the whole path) or `cgroup_parent` (the level above NAME); a
 * relative one lies where sandbox/ lies, an absolute one from the root (runc's rule for an OCI
 * bundle's cgroupsPath). The compiler refuses an absolute one without root (cgroupSteps). */
export function cgroupPathFor(host: HostFeatures, name: string, at: { path?: string; parent?: string } = {}): string {
  const given = at.path ?? (at.parent !== undefined ? `${at.parent.replace(/\/+$/, '')}/${name}` : undefined);
  const trim = (p: string) => p.split('/').filter(Boolean).join('/');
  if (given?.startsWith('/') && !host.rootless) return trim(given);
  const own = given !== undefined ? trim(given) : name;
  if (!host.rootless) return `sandbox/${own}`;
  return host.cgroup.layout === 'v2' && host.cgroup.delegated !== undefined ? `${host.cgroup.delegated.replace(/^\/+|\/+$/g, '')}/sandbox/${own}`.replace(/^\//, '') : '';
}

/** The veth pair's host end: short (IFNAMSIZ is 16) and stable for a sandbox name. */
export function hostInterface(name: string): string { return `sbx${sha256Hex(name).slice(0, 8)}`; }

/** The nftables table that holds a sandbox's NAT and its kernel port maps. */
export function nftTable(name: string): string { return `sbx_${name.replace(/[^a-zA-Z0-9_]/g, '_')}`; }
