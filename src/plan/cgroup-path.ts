// Where a sandbox's cgroup lives, as a path relative to the cgroup mount(s): the same answer for
// compile (the plan's cgroup.create/attach steps) and for the engine's lookups of a sandbox by
// name (state, lifecycle). Pure: the host's features are the input.
import type { HostFeatures } from './types';

/** `sandbox/NAME` for root; `DELEGATED/sandbox/NAME` for a caller with a delegated cgroup v2
 * subtree (HostFeatures.cgroup.delegated), the only place it may create cgroups. */
export function cgroupPathFor(host: HostFeatures, name: string): string {
  const d = host.cgroup.delegated;
  return d !== undefined && !host.root ? `${d}/sandbox/${name}` : `sandbox/${name}`;
}

/** Why a caller's sandbox can have no cgroup of its own, or undefined when it can: root always
 * can; any other caller only on pure cgroup v2 with a delegated subtree. For compile's located
 * error on a limit the file asks for. */
export function cgroupUnavailable(host: HostFeatures): string | undefined {
  if (host.root) return undefined;
  const cg = host.cgroup;
  if (cg.layout === 'v1' || cg.layout === 'hybrid') return `this host has cgroup ${cg.layout}, which cannot be delegated to a user: limits without root need pure cgroup v2, or run sandbox as root`;
  if (cg.layout === 'none') return 'this host has no cgroup file system mounted';
  if (cg.delegated === undefined) return 'no cgroup v2 subtree is delegated to you (`sandbox doctor` says why): run sandbox under a unit with Delegate=yes, e.g. `systemd-run --user --scope sandbox …`, or as root';
  return undefined;
}
