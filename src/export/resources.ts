// Each single-valued key of `resources` and what it becomes in each export format, in one table:
// the OCI bundle's linux.resources, the Compose service's keys, and a Pod's container resources or
// the reason a Pod cannot say it. A new resources key is one row here; the exporters walk the
// table in its order (the order of config.json's and the Compose file's keys). The per-device
// rates, lists with a device each, stay with each exporter. Pure.
import type { ResourcesSpec } from '../model/types';
import { LOSSY } from './fidelity';

/** The keys of ResourcesSpec that hold one value the file gave (memorySwapDefault is normalize's
 * default for memory_swap, which an exporter reads beside it where the format has no default). */
export type ScalarResource = Exclude<{ [K in keyof ResourcesSpec]-?: ResourcesSpec[K] extends { value: unknown } | undefined ? K : never }[keyof ResourcesSpec], 'memorySwapDefault'>;

type ValueOf<K extends ScalarResource> = NonNullable<ResourcesSpec[K]>['value'];

/** What a Pod does with a key: a container's limit or request, or nothing (`none`: what to do, a
 * sentence after the finding's semicolon). */
export type KubeResource = { field: 'limits' | 'requests'; name: 'memory' | 'cpu'; value: string } | { none: string };

export interface ResourceRow<K extends ScalarResource> {
  /** The config key under `resources`, as people write it. */
  config: string;
  /** Paths under config.json's linux.resources (under linux itself where `ociUnder` says so), and their values. */
  oci(v: ValueOf<K>, name: string): [string[], unknown][];
  ociUnder?: 'linux';
  /** Paths in the Compose service, and their values; or why Compose cannot say it. */
  compose(v: ValueOf<K>): [string[], unknown][] | { none: string };
  kube(v: ValueOf<K>, quantity: (bytes: number) => string): KubeResource;
}


/** runc's and the kubelet's CPU period, in microseconds. */
const PERIOD = 100_000;

/** Every single-valued key has its row: a new key of ResourcesSpec without one does not compile. */
const TABLE: { [K in ScalarResource]: ResourceRow<K> } = {
  memory: { config: 'memory', oci: (v) => [[['memory', 'limit'], v]], compose: (v) => [[['mem_limit'], v]], kube: (v, q) => ({ field: 'limits', name: 'memory', value: q(v) }) },
  memoryReservation: { config: 'memory_reservation', oci: (v) => [[['memory', 'reservation'], v]], compose: (v) => [[['mem_reservation'], v]], kube: (v, q) => ({ field: 'requests', name: 'memory', value: q(v) }) },
  // runtime-spec's swap is memory plus swap (cgroup v1's memsw), as memory_swap is.
  memorySwap: { config: 'memory_swap', oci: (v) => [[['memory', 'swap'], v]], compose: (v) => [[['memswap_limit'], v]], kube: () => ({ none: `a Pod's swap is the node's setting (memorySwap.swapBehavior); ${LOSSY}` }) },
  cpuMillis: { config: 'cpus', oci: (v) => [[['cpu', 'period'], PERIOD], [['cpu', 'quota'], Math.round((v * PERIOD) / 1000)]], compose: (v) => [[['cpus'], v / 1000]], kube: (v) => ({ field: 'limits', name: 'cpu', value: `${v}m` }) },
  // The kubelet turns a CPU request into shares as milliCPUs × 1024 / 1000: the inverse, rounded.
  cpuShares: { config: 'cpu_shares', oci: (v) => [[['cpu', 'shares'], v]], compose: (v) => [[['cpu_shares'], v]], kube: (v) => ({ field: 'requests', name: 'cpu', value: `${Math.max(1, Math.round((v * 1000) / 1024))}m` }) },
  cpuset: { config: 'cpuset', oci: (v) => [[['cpu', 'cpus'], v]], compose: (v) => [[['cpuset'], v]], kube: () => ({ none: `only the kubelet's static CPU manager pins CPUs; ${LOSSY}` }) },
  cpusetMems: { config: 'cpuset_mems', oci: (v) => [[['cpu', 'mems'], v]], compose: () => ({ none: `docker run has it (--cpuset-mems), Compose has no key for it; ${LOSSY}` }), kube: () => ({ none: `only the kubelet's memory manager places a Pod's memory on NUMA nodes; ${LOSSY}` }) },
  pids: { config: 'pids', oci: (v) => [[['pids', 'limit'], v]], compose: (v) => [[['pids_limit'], v]], kube: () => ({ none: `the kubelet limits processes per Pod for the whole node (podPidsLimit); ${LOSSY}` }) },
  // The sandbox's cgroup: runc's cgroupsPath is the whole path, absolute from the hierarchy's root
  // as sandbox makes it (a relative one is relative to runc's own cgroup, not under sandbox/).
  cgroupParent: { config: 'cgroup_parent', ociUnder: 'linux', oci: (v, name) => [[['cgroupsPath'], `${cgroupAbs(v)}/${name}`]], compose: (v) => [[['cgroup_parent'], cgroupAbs(v)]], kube: () => ({ none: `the kubelet places a Pod's cgroup under its own (kubepods); ${LOSSY}` }) },
  cgroupPath: { config: 'cgroup_path', ociUnder: 'linux', oci: (v) => [[['cgroupsPath'], cgroupAbs(v)]], compose: () => ({ none: `Compose names only the parent (cgroup_parent), the container's own level is its id; ${LOSSY}` }), kube: () => ({ none: `the kubelet places a Pod's cgroup under its own (kubepods); ${LOSSY}` }) },
  ioWeight: { config: 'io_weight', oci: (v) => [[['blockIO', 'weight'], v]], compose: (v) => [[['blkio_config', 'weight'], v]], kube: () => ({ none: LOSSY }) },
};

/** A cgroup path as sandbox makes it as root, from the hierarchy's root: a relative one is under sandbox/. */
function cgroupAbs(p: string): string {
  const levels = p.split('/').filter(Boolean).join('/');
  return p.startsWith('/') ? `/${levels}` : `/sandbox/${levels}`;
}

/** The rows in the order the exporters write them, each with the key of ResourcesSpec it reads. */
export const RESOURCE_EXPORTS = (Object.keys(TABLE) as ScalarResource[]).map((key) => ({ key, ...(TABLE[key] as unknown as ResourceRow<ScalarResource>) }));

/** Sets a value at a path of nested objects, making the objects on the way. */
export function setPath(into: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = into;
  for (const k of path.slice(0, -1)) node = (node[k] ??= {}) as Record<string, unknown>;
  node[path.at(-1)!] = value;
}
