// UserConfig: the shape people write, as schema/sandbox.schema.json accepts it (short and long
// forms side by side). model/normalize.ts turns it into the SandboxSpec the program uses.

type Size = string | number;
type Port = string | number;
type NsValue = boolean | string;
type IdMapEntry = string | { container: number; host: number; size: number };
type Rate<T> = { path: string; rate: T }[];

export interface UserConfig {
  version: 1;
  name?: string;
  image?: string;
  insecure_registries?: string[];
  rootfs?: 'host' | { type: 'host' | 'dir'; path?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  env?: Record<string, string | number | boolean | null> | string[];
  env_file?: string | string[];
  workdir?: string;
  user?: string | number;
  group_add?: (string | number)[];
  umask?: string;
  hostname?: string;
  detach?: boolean;
  tty?: boolean;
  stdin_open?: boolean;
  init?: boolean;
  restart?: string;
  stop_signal?: string | number;
  stop_grace_period?: string;
  shm_size?: string | number;
  ports?: (Port | { target: Port; published?: Port; host_ip?: string; protocol?: 'tcp' | 'udp' })[];
  volumes?: (string | {
    type: 'bind' | 'volume' | 'tmpfs'; source?: string; target: string; read_only?: boolean;
    propagation?: 'private' | 'rprivate' | 'shared' | 'rshared' | 'slave' | 'rslave';
    volume?: { nocopy?: boolean };
    size?: Size; mode?: string; options?: string[];
  })[];
  /** Compose's top-level `volumes:` map (the top level here is the sandbox, whose `volumes` are its mounts). */
  named_volumes?: Record<string, null | { name?: string; external?: boolean }>;
  network?: 'none' | 'private' | 'host' | { mode: 'none' | 'private' | 'host'; subnet?: string; proxy?: 'auto' | 'kernel' | 'userspace'; rootless_cmd?: 'auto' | 'pasta' | 'slirp4netns' };
  dns?: string | string[];
  extra_hosts?: string[] | Record<string, string>;
  namespaces?: Partial<Record<'pid' | 'mount' | 'uts' | 'ipc' | 'net' | 'cgroup' | 'time', NsValue>> & {
    user?: NsValue | { uid_map?: IdMapEntry[]; gid_map?: IdMapEntry[] };
  };
  resources?: {
    memory?: Size; memory_reservation?: Size; memory_swap?: Size; cpus?: number | string; cpu_shares?: number;
    cpuset?: string; pids?: number; io_weight?: number;
    device_read_bps?: Rate<Size>; device_write_bps?: Rate<Size>; device_read_iops?: Rate<number>; device_write_iops?: Rate<number>;
  };
  cap_add?: string[];
  cap_drop?: string[];
  security?: { no_new_privileges?: boolean; seccomp?: string; read_only?: boolean; masked_paths?: string[]; readonly_paths?: string[] };
  ulimits?: Record<string, number | string | { soft: number; hard: number }>;
  sysctls?: Record<string, string | number> | string[];
  devices?: (string | { source: string; target?: string; permissions?: string })[];
}
