// Where a sandbox's host-side things are, as the compiler names them and the engine finds them
// again later (ps, stop, down, gc): one function each, so the two never disagree. Pure.
import type { HostFeatures } from './types';

/** The sandbox's cgroup, relative to the hierarchies' mounts: sandbox/NAME as root; in a rootless
 * run, the same under the caller's delegated v2 subtree, or '' (none) where nothing is delegated. */
export function cgroupPathFor(host: HostFeatures, name: string): string {
  if (!host.rootless) return `sandbox/${name}`;
  return host.cgroup.layout === 'v2' && host.cgroup.delegated !== undefined ? `${host.cgroup.delegated.replace(/^\/+|\/+$/g, '')}/sandbox/${name}`.replace(/^\//, '') : '';
}
