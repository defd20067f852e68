// SandboxSpec: what the program uses, as opposed to UserConfig (what people write). Every value
// is resolved (units are numbers, paths absolute, short forms expanded) and says where it came
// from, so that the plan can cite the config line behind each step.
import type { SeccompProfile } from './seccomp';
import type { Source, Val } from './val';
export type { Source, Val } from './val';
export type { DeviceLimit, DeviceRule, ResourcesSpec } from './sections/resources';
import type { ResourcesSpec } from './sections/resources';
import type { PathKind } from './sections/context';
export type { PathFacts, PathKind } from './sections/context';


/** The file name of a location on the command line (`up -p`, `sandbox run`): line 1, the column of the word. */
export const COMMAND_LINE = 'command line';


export const NAMESPACES = ['user', 'pid', 'mount', 'uts', 'ipc', 'net', 'cgroup', 'time'] as const;
export type NsName = (typeof NAMESPACES)[number];

/** An inclusive port range of an egress rule. */
export interface PortRange { from: number; to: number }
/** What an egress rule names: a host name (exact, or every name under `name` when wildcard), or
 * an address range (network with its host bits zero). Names are lowercase, without a trailing dot. */
export type EgressTarget =
  | { type: 'host'; name: string; wildcard: boolean }
  | { type: 'cidr'; family: 4 | 6; network: string; prefix: number };
/** One rule of `network.egress`, normalized from its short ("allow registry.npmjs.org:443") or long form. */
export interface EgressRule {
  /** 1-based position in the list: "rule 3" in the plan, the denials and the attestation. */
  index: number;
  action: 'allow' | 'deny';
  target: EgressTarget;
  /** Sorted and merged. Without `ports`: every port, except that a host rule leaves out 53 and 853. */
  ports: PortRange[];
  /** A host rule: ['tcp']. A cidr rule: its `protocol`, or tcp and udp, plus icmp when it names no ports either. */
  protocols: ('tcp' | 'udp' | 'icmp')[];
  /** The canonical short form, e.g. "allow jira.corp.test:443/tcp". */
  text: string;
  src: Source;
}

export type NsSpec = { type: NsName; mode: 'private' | 'host'; src: Source } | { type: NsName; mode: 'join'; path: string; src: Source };
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

export const MOUNT_FLAGS = ['nosuid', 'nodev', 'noexec', 'noatime', 'relatime', 'strictatime'] as const;
export type MountFlag = (typeof MOUNT_FLAGS)[number];
export const PROPAGATIONS = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave', 'unbindable', 'runbindable'] as const;
export type Propagation = (typeof PROPAGATIONS)[number];
/** A volume's name, as Docker allows them: also the name of its folder in the store. */
export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

interface MountCommon {
  /** Absolute path inside the sandbox. */
  target: string;
  readOnly: boolean;
  flags: MountFlag[];
  src: Source;
}
export type MountSpec =
  | (MountCommon & { kind: 'bind'; /** Absolute host path. */ source: string; propagation?: Propagation })
  | (MountCommon & { kind: 'tmpfs'; sizeBytes?: number; mode: number; propagation?: Propagation })
  | (MountCommon & VolumeSpec & { kind: 'volume' });

/** What a `paths` rule lets the command do with a host path. */
export type PathAccess = 'deny' | 'read_only' | 'read_write';
/**
 * One rule as the sandbox applies it. `how`: `bind` the host path on `at` before pivot_root
 * (read_only, read_write); `mask` it in the new root (deny: an empty read-only tmpfs over a
 * folder, /dev/null over a file); `cover` a denied folder that holds other rules with an empty
 * tmpfs before pivot_root, made read-only after it (so that the deeper rules' binds go on top);
 * `readonly`: remount it read-only in the new root (a protected default).
 */
export interface PathRule {
  access: PathAccess;
  /** The host's absolute path (a glob gives one rule per match). */
  path: string;
  /** Where the command sees it. */
  at: string;
  kind: PathKind;
  how: 'bind' | 'mask' | 'cover' | 'readonly';
  /** A deny of a path that does not exist yet (its folder does): what is made there on the host
   * before the clone for the mask to cover (a folder when the rule ends with /). */
  placeholder?: 'file' | 'dir';
  /** rule: the file's; protect: a start-up file of a writable folder; hide: a credential. */
  origin: 'rule' | 'protect' | 'hide';
  /** As written (a default: the name of the list entry). */
  pattern: string;
  src: Source;
}

/** A rule that lets the command reach what the defaults would protect: audit's finding. */
export interface PathExposure { path: string; what: 'credential' | 'protected'; access: PathAccess; pattern: string; src: Source }

export interface PathsSpec { rules: PathRule[]; exposed: PathExposure[] }


/** A volume that sandbox keeps in its store (Docker's named and anonymous volumes). */
export interface VolumeSpec {
  /** Its name in the store: the file's key, or `named_volumes.KEY.name`, or made from the sandbox's name and the target for an anonymous one. */
  name: string;
  /** Must exist already (`external: true`): never created, seeded or removed by sandbox. */
  external: boolean;
  /** Not seeded from the image (`nocopy`): a new volume starts empty, owned by the sandbox's user. */
  nocopy: boolean;
  /** An image's VOLUME the file does not mount: kept per sandbox, removed by `down -v` with the named ones. */
  anonymous: boolean;
}


export interface CapSpec { name: string; src: Source }
export interface EnvVar { name: string; value: string; src: Source }
export interface RlimitSpec { name: string; soft: number; hard: number; src: Source }
/** A device of `devices`: a host device bound in (source), or a node made by its numbers (node, no source). */
export interface DeviceSpec { source: string; target: string; permissions: string; node?: DeviceNodeSpec; src: Source }
/** A node `devices` makes in /dev: mknod's type and numbers, its mode and owner as the sandbox sees them. */
export interface DeviceNodeSpec { type: 'c' | 'b' | 'p'; major: number; minor: number; mode: number; uid: number; gid: number }
export interface HostEntry { host: string; ip: string; src: Source }

export interface UserSpec {
  /** As written: numbers, or names resolved inside the root filesystem at run time. */
  user: string | number;
  group?: string | number;
  src: Source;
}

interface RootfsCommon {
  readOnly: Val<boolean>;
  /** `root_propagation`: the new root's propagation once pivoted (private when left out). */
  propagation?: Val<Propagation>;
  src: Source;
}
export type RootfsSpec =
  | (RootfsCommon & { type: 'host' })
  | (RootfsCommon & { type: 'dir'; path: string })
  | (RootfsCommon & {
    type: 'image'; image: string;
    /** Filled from the store once the image is there: its unpacked layers, bottom first, and what it is. */
    layers?: string[];
    digest?: string;
    exposed?: string[];
    volumes?: string[];
    /** Registries pulled from over plain HTTP (insecure_registries). */
    insecure: string[];
    /** The registry a pull fetches it from (host[:port], docker.io for Docker Hub); none for oci: and docker-archive:. */
    registry?: string;
    /** Why that registry is reached over plain HTTP, if it is: it is on loopback, or insecure_registries names it. */
    plainHttp?: 'loopback' | 'insecure';
  });

export interface RestartPolicy { policy: 'no' | 'on-failure' | 'always'; max: number }

export interface SandboxSpec {
  version: 1;
  name: Val<string>;
  /** Absolute path of the config file, and its folder (the base of relative paths). */
  file: string;
  dir: string;
  rootfs: RootfsSpec;
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
    /** What PID 1 does when the command ends: `on-failure:3` is { policy: 'on-failure', max: 3 }; 0 is no maximum. */
    restart: Val<RestartPolicy>;
    stopSignal: Val<number>;
    stopGraceMs: Val<number>;
  };
  hostname: Val<string>;
  /** Bytes of the sandbox's /dev/shm tmpfs (unless a volume is mounted there). */
  shmSize: Val<number>;
  /** `mqueue`: an mqueue file system on /dev/mqueue. */
  mqueue?: Val<boolean>;
  namespaces: NsSpec[];
  /** rootless: the maps are the caller's own id and subordinate ranges (made by normalize). */
  userns?: { uidMap: IdMap[]; gidMap: IdMap[]; src: Source; rootless?: boolean };
  network: {
    mode: Val<'none' | 'private' | 'host'>;
    subnet: Val<string>;
    proxy: Val<'auto' | 'kernel' | 'userspace'>;
    /** Without root, the user-mode stack that carries a private network, as Podman's rootless_network_cmd. */
    cmd: Val<'auto' | 'pasta' | 'slirp4netns'>;
    dns: Val<string>[];
    extraHosts: HostEntry[];
    ports: PortSpec[];
    /** `network.egress`: where the sandbox may connect, ordered, first match wins; absent: anywhere
     * (no policy). src is the `egress` key's: the line a refusal by "no rule allowed it" cites. */
    egress?: { rules: EgressRule[]; src: Source };
  };
  mounts: MountSpec[];
  /** `paths` and the protected defaults, one rule per host path, shallow first. */
  paths: PathsSpec;
  devices: DeviceSpec[];
  resources: ResourcesSpec;
  /** The capability set the command keeps, each with the reason it is there. */
  capabilities: CapSpec[];
  /** Capabilities removed by cap_drop (for the plan to show). */
  capsDropped: CapSpec[];
  /** `security.capabilities`: the exact inheritable and ambient sets (an OCI bundle's);
   * absent: root holds neither, any other user the names cap_add brought. */
  capSets?: { inheritable: CapSpec[]; ambient: CapSpec[] };
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

/** A rootless caller's ids and its subordinate ranges (/etc/subuid, /etc/subgid): what its user
 * namespace may map. An input of normalize, read by the host probe. */
export interface CallerIds {
  uid: number;
  gid: number;
  subuid: { start: number; count: number }[];
  subgid: { start: number; count: number }[];
}

/** A device node of the host, by stat(2): its type and numbers, as an OCI bundle lists it. */
export interface DeviceNode { type: 'c' | 'b'; major: number; minor: number; mode: number; uid: number; gid: number }

/** What an OCI bundle's rootfs/ is made of: links to the host's folders, a folder as it is, or an image's layers merged. */
export type BundleRoot =
  | { kind: 'host'; links: { path: string; target: string }[] }
  | { kind: 'dir'; path: string }
  | { kind: 'image'; layers: string[] };
