// SandboxSpec: what the program uses, as opposed to UserConfig (what people write). Every value
// is resolved (units are numbers, paths absolute, short forms expanded) and says where it came
// from, so that the plan can cite the config line behind each step.
import type { SeccompProfile } from './seccomp';

/** A config location, or the built-in default, or the command line. */
export type Source = { file: string; line: number; col: number } | 'default' | 'cli' | 'image';

export interface Val<T> { value: T; src: Source }

export const NAMESPACES = ['user', 'pid', 'mount', 'uts', 'ipc', 'net', 'cgroup', 'time'] as const;
export type NsName = (typeof NAMESPACES)[number];

export interface NsSpec { type: NsName; mode: 'private' | 'host' | 'join'; path?: string; src: Source }
export interface IdMap { container: number; host: number; size: number }

export interface PortSpec {
  /** '' means every address of the host, as Docker's default. */
  hostIp: string;
  /** 0 means a free port picked at run time. */
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
  src: Source;
}

export interface MountSpec {
  kind: 'bind' | 'tmpfs';
  /** Absolute host path (bind only). */
  source?: string;
  /** Absolute path inside the sandbox. */
  target: string;
  readOnly: boolean;
  propagation?: 'private' | 'rprivate' | 'shared' | 'rshared' | 'slave' | 'rslave';
  /** nosuid, nodev, noexec, noatime, … */
  flags: string[];
  sizeBytes?: number;
  mode?: number;
  src: Source;
}

export interface DeviceLimit { path: string; rate: number; src: Source }

export interface ResourcesSpec {
  memory?: Val<number>;
  memoryReservation?: Val<number>;
  /** -1: unlimited swap. */
  memorySwap?: Val<number>;
  /** Thousandths of a CPU. */
  cpuMillis?: Val<number>;
  cpuShares?: Val<number>;
  cpuset?: Val<string>;
  /** -1: unlimited. */
  pids?: Val<number>;
  ioWeight?: Val<number>;
  deviceReadBps: DeviceLimit[];
  deviceWriteBps: DeviceLimit[];
  deviceReadIops: DeviceLimit[];
  deviceWriteIops: DeviceLimit[];
}

export interface CapSpec { name: string; src: Source }
export interface EnvVar { name: string; value: string; src: Source }
export interface RlimitSpec { name: string; soft: number; hard: number; src: Source }
export interface DeviceSpec { source: string; target: string; permissions: string; src: Source }
export interface HostEntry { host: string; ip: string; src: Source }

export interface UserSpec {
  /** As written: numbers, or names resolved inside the root filesystem at run time. */
  user: string | number;
  group?: string | number;
  src: Source;
}

export interface SandboxSpec {
  version: 1;
  name: Val<string>;
  /** Absolute path of the config file, and its folder (the base of relative paths). */
  file: string;
  dir: string;
  rootfs: {
    type: 'host' | 'dir' | 'image'; path?: string; image?: string; readOnly: Val<boolean>; src: Source;
    /** Filled from the store once the image is there: its unpacked layers, bottom first, and what it is. */
    layers?: string[];
    digest?: string;
    exposed?: string[];
    volumes?: string[];
    /** Registries pulled from over plain HTTP (insecure_registries). */
    insecure?: string[];
  };
  process: {
    /** entrypoint + command; empty only when an image will supply them. */
    args: string[];
    argsSrc: Source;
    /** What the file (or `up -- CMD`) said for each, if anything: an image's own fill the rest. */
    entrypoint?: string[];
    command?: string[];
    env: EnvVar[];
    cwd: Val<string>;
    user: UserSpec;
    groups: Val<string | number>[];
    umask: Val<number>;
    tty: Val<boolean>;
    stdin: Val<boolean>;
    init: Val<boolean>;
    detach: Val<boolean>;
    restart: Val<string>;
    stopSignal: Val<number>;
    stopGraceMs: Val<number>;
  };
  hostname: Val<string>;
  /** Bytes of the sandbox's /dev/shm tmpfs (unless a volume is mounted there). */
  shmSize: Val<number>;
  namespaces: NsSpec[];
  userns?: { uidMap: IdMap[]; gidMap: IdMap[]; src: Source };
  network: {
    mode: Val<'none' | 'private' | 'host'>;
    subnet: Val<string>;
    proxy: Val<'auto' | 'kernel' | 'userspace'>;
    dns: Val<string>[];
    extraHosts: HostEntry[];
    ports: PortSpec[];
  };
  mounts: MountSpec[];
  devices: DeviceSpec[];
  resources: ResourcesSpec;
  /** The capability set the command keeps, each with the reason it is there. */
  capabilities: CapSpec[];
  /** Capabilities removed by cap_drop (for the plan to show). */
  capsDropped: CapSpec[];
  security: {
    noNewPrivileges: Val<boolean>;
    /** 'default', 'unconfined', or the absolute path of a profile. */
    seccomp: Val<string>;
    /** The profile file's content, parsed (when seccomp names a file). */
    seccompProfile?: SeccompProfile;
    maskedPaths: Val<string>[];
    readonlyPaths: Val<string>[];
  };
  rlimits: RlimitSpec[];
  sysctls: { name: string; value: string; src: Source }[];
}
