// The plan: the ordered isolation steps `sandbox up` applies, as data. `sandbox plan` prints it;
// the engine executes it. Pure types, no behaviour (plan/steps.ts makes and finds steps).
import type { HostProgram } from '../model/tables';
import type { CallerIds, EgressRule, EgressTarget, IdMap as IdRange, MountFlag, NsName as NsType, PortRange, Propagation, RestartPolicy, Source } from '../model/types';

/** The nine stages of DESIGN.md, in the order they run. */
export const STAGES = ['rootfs', 'cgroup', 'namespaces', 'attach', 'network', 'mounts', 'identity', 'security', 'exec'] as const;
export type Stage = (typeof STAGES)[number];

export const STAGE_TITLES: Record<Stage, string> = {
  rootfs: 'prepare the root filesystem',
  cgroup: 'create the cgroup and write the limits',
  namespaces: 'clone new namespaces',
  attach: 'put the child in the cgroup; write uid/gid maps',
  network: 'loopback, the sandbox\'s interface, port maps',
  mounts: 'mounts, then pivot_root',
  identity: 'hostname, user and groups',
  security: 'capabilities, no_new_privs, seccomp, rlimits',
  exec: 'run the command',
};


/** Which component enforces an egress rule (design 4.1): sbx-egress's resolver or relay, or the wall (on the host as root; inside the sandbox's namespace rootless). */
export type Enforcer = 'resolver' | 'relay' | 'wall-host' | 'wall-inside';

/** Each kind of step and its arguments: what `plan --json` prints and the engine applies. */
export interface StepArgs {
  // rootfs (host)
  'state.create': { path: string };
  'rootfs.host': { dirs: string[] };
  'rootfs.dir': { path: string };
  'rootfs.image': { ref: string; layers?: string[]; digest?: string };
  'image.note': { expose?: string; volume?: string };
  /** A denied host path that does not exist yet: an empty file (or folder) made there before the
   * clone, so that the child's mask has something to cover and the sandbox cannot create it;
   * removed after the run if it is still empty. Nothing is made when the path exists by then. */
  'path.placeholder': { path: string; type: 'file' | 'dir' };
  /** A volume sandbox keeps, made ready on the host before the clone: created (and seeded from the
   * image's files at the target, unless `seed` is 'none') if `path` does not exist, used as it is if it does. */
  'volume.create': { name: string; path: string; target: string; seed: 'image' | 'none'; external: boolean; anonymous: boolean };
  // cgroup (host)
  'cgroup.create': { path: string; layout: HostFeatures['cgroup']['layout']; controllers: string[] };
  'cgroup.set': { controller: string; file: string; value: string };
  // namespaces: made by the clone (host), or unshared by the child (cgroup, time); `sandbox exec` enters them
  'ns.new': { type: NsType };
  'ns.join': { type: NsType; path: string };
  'ns.host': { type: NsType };
  'ns.enter': { type: NsType; path: string };
  // attach (host), and exec's fork (child)
  'cgroup.attach': { path: string; controllers?: string[] };
  /** tool: newuidmap/newgidmap (setuid helpers that check /etc/subuid and /etc/subgid) for a
   * rootless map of more than the caller's own id; write: the CLI writes the files itself (as
   * root, or a rootless one-id map of the caller, after `deny` to setgroups as the kernel asks). */
  'idmap': { uid: IdRange[]; gid: IdRange[]; tool: 'newidmap' | 'write' };
  'proc.fork': Record<string, never>;
  // network: the host's side, then the child's
  'net.host': Record<string, never>;
  'net.joined': Record<string, never>;
  'net.none': Record<string, never>;
  'net.loopback': Record<string, never>;
  'net.veth': { subnet: string; gateway: string; inside: string; mtu: number };
  'net.address': { subnet: string; gateway: string; interface: string };
  'net.nat': { subnet: string };
  'net.port': { hostIp: string; hostPort: number; containerPort: number; protocol: 'tcp' | 'udp'; path: 'kernel' | 'userspace' | 'pasta' | 'slirp4netns' };
  /** Rootless: a user-mode network stack (pasta or slirp4netns, run as the caller) attached to the
   * child's namespaces, carrying its traffic and the published ports. */
  'net.usernet': { tool: 'pasta' | 'slirp4netns'; binary: string; mtu: number;
    /** Under egress: IPv4 only (pasta -4) and no DNS forwarder of the tool's own (pasta's
     * --dns-forward, slirp4netns's 10.0.2.3), which would be a DNS path around the sandbox's resolver. */
    egress?: true };
  'net.hosts': { extra: string[] };
  /** options: resolv.conf's options line (under egress: edns0, for the resolver's large answers). */
  'net.resolv': { servers: string[]; options?: string[] };
  /** One rule of network.egress (its source is the rule's line): which components enforce it
   * (design 4.1); applied by sbx-egress and the wall, read back by the attestation. */
  'net.egress.rule': { index: number; action: 'allow' | 'deny'; target: EgressTarget; ports: PortRange[]; protocols: EgressRule['protocols']; text: string; enforcedBy: Enforcer[] };
  /** What no rule allows is refused, with these always refused besides (source: the `egress` key). */
  'net.egress.default': { refused: ('ipv6' | 'dns-elsewhere' | 'classes' | 'unmatched')[] };
  /** sbx-egress, the sandbox's resolver and relay (EGRESS-CONTRACT 2). upstream: the file's `dns:`,
   * or [] for the host's resolvers read at run time. policyDigest: sha256 of the policy text with
   * the run's values as placeholders (plan/egress.ts); the run's exact digest is in egress.json. */
  'net.egress.start': { dns: string; upstream: string[]; policyDigest: string; where: 'host' | 'usernet' };
  /** The host's wall (root): the inet table on the veth's host end, loaded in net.nat's transaction. */
  'net.egress.wall': { table: string; interface: string; ipv6: 'refused' };
  // mounts (child)
  'mount.private': Record<string, never>;
  'mount.root': { fstype: 'tmpfs'; mode: number } | { fstype: 'bind'; source: string; flags: MountFlag[] } | { fstype: 'overlay'; image: string; readOnly: boolean; layers?: string[] };
  'mount.link': { path: string; target: string };
  'mount.bind': { source: string; target: string; readOnly: boolean; recursive: boolean; propagation?: Propagation; flags: MountFlag[] };
  'mount.proc': { target: '/proc'; flags: MountFlag[] };
  'mount.dev': { target: '/dev'; mode: number; sizeBytes: number; flags: MountFlag[] };
  'dev.node': { name: string; major: number; minor: number };
  'mount.devpts': { target: '/dev/pts'; options: string };
  'console': Record<string, never>;
  'mount.tmpfs.dev': { target: string; mode: number; sizeBytes?: number; flags: MountFlag[] };
  'mount.mqueue': { target: '/dev/mqueue'; flags: MountFlag[] };
  'dev.links': Record<string, never>;
  'dev.bind': { source: string; target: string; permissions: string };
  'dev.make': { target: string; type: 'c' | 'b' | 'p'; major: number; minor: number; mode: number; uid: number; gid: number; permissions: string };
  'mount.sys': { target: '/sys'; fresh: boolean };
  'mount.cgroup': { target: '/sys/fs/cgroup'; layout: 'v1' | 'v2'; controllers: string[] };
  'mount.netfile': { source: string; target: string };
  'sysctl': { name: string; value: string };
  'mount.tmpfs': { target: string; sizeBytes?: number; mode: number; readOnly: boolean; propagation?: Propagation; flags: MountFlag[] };
  /** A volume's data folder (made by volume.create), bound on the target. */
  'mount.volume': { name: string; source: string; target: string; readOnly: boolean; flags: MountFlag[] };
  'mount.pivot': Record<string, never>;
  'mount.mask': { path: string };
  'mount.readonly': { path: string };
  'mount.root-readonly': Record<string, never>;
  'mount.root-propagation': { propagation: Propagation };
  /** The command's working directory, made in the new root if it is missing (native SBX_OP_WORKDIR). */
  'mount.workdir': { path: string };
  // identity (child)
  'hostname': { hostname: string };
  /** inherited: a rootless one-id map denies setgroups, so the caller's own groups stay (unmapped
   * inside, where they show as nobody) and cannot be dropped. */
  'user.groups': { groups: (string | number)[]; inherited?: boolean };
  'user.ids': { user: string | number; group: string | number | null };
  'umask': { umask: number };
  // security (child)
  'rlimit': { name: string; soft: number; hard: number };
  'cap.keep': { cap: string };
  'cap.drop': { cap: string };
  /** sets: the exact inheritable and ambient sets (security.capabilities), for any uid. */
  'caps.apply': { bounding: string[]; ambient: string[]; sets?: { inheritable: string[]; ambient: string[] } };
  'nnp': Record<string, never>;
  'nnp.off': Record<string, never>;
  'seccomp': { profile: string; allowed: number; arches: string[]; program: string[] };
  'seccomp.off': Record<string, never>;
  /** The path rules as a Landlock ruleset (native/src/landlock.c): handled and readOnly are rights masks; probe, a folder
   * the mounts let the command make and the ruleset does not, which the child tries to make after restricting itself. */
  'landlock': {
    abi: number; handled: number; readOnly: number; rules: { path: string; access: 'ro' | 'rw' }[]; probe?: string;
    /** ABI 4 and later: the TCP rights handled (1 bind, 2 connect), and the ports each is allowed to. */
    net?: { handled: number; connect: number[]; bind: number[] };
    /** ABI 6 and later: the scopes (1 abstract Unix sockets, 2 signals) kept to the sandbox's own domain. */
    scoped?: number;
  };
  // exec (child)
  'fds.close': Record<string, never>;
  'exec': {
    args: string[]; env: string[]; cwd: string; tty: boolean;
    /** The caller's stdin reaches the command (stdin_open, -i); otherwise it reads /dev/null, as under docker run without -i. */
    stdin: boolean;
    init: boolean; detach: boolean;
    /** Whether the command runs again when it ends: by the CLI or the supervisor, from outside the sandbox (a new PID 1 each run). */
    restart?: RestartPolicy;
    stopSignal?: number; stopGraceMs?: number;
  };
}

export type StepKind = keyof StepArgs;

/** How a host step is reverted: what `sandbox down` and a failed run undo, in reverse. The plan
 * states it for each step; the engine records the same kinds in the sandbox's state as it applies
 * them (host/undo.ts), with the names it used where the plan leaves them out (optional here). */
export interface UndoArgs {
  /** The state folder, with the files the engine and the supervisor write in it. */
  'state.remove': { path: string };
  'cgroup.remove': { path: string; keep?: string };
  /** interface: the veth pair's host end. */
  'net.veth.remove': { interface?: string };
  /** table: the nftables table that holds the NAT and the kernel port maps. */
  'net.nat.remove': { subnet: string; table?: string };
  'net.port.remove': { hostIp: string; hostPort: number; protocol: 'tcp' | 'udp' };
  /** state: the state folder where the tool's record (its processes) is kept. */
  'net.usernet.stop': { tool: 'pasta' | 'slirp4netns'; state?: string };
  /** sbx-egress, stopped by its record (egress.json in the state folder: PID and start time). */
  'net.egress.stop': { state?: string };
  /** The wall's inet table (its rules were loaded with the NAT table's). */
  'net.egress.wall.remove': { table: string };
  /** Only a volume this run created, if the run fails: one that existed (or a later run's) stays; `down -v` removes it otherwise. root: its folder's parent. */
  'volume.remove-new': { name: string; root?: string };
  /** An image's private upper layer (beside the store), made by rootfs.image. */
  'upper.remove': { path: string };
  /** A placeholder made by path.placeholder: removed only while it is still an empty file or folder. */
  'path.placeholder.remove': { path: string; type: 'file' | 'dir' };
  /** ip_forward back to what it was, once no sandbox with a private network is left (net.veth turned it on). */
  'net.forwarding.restore': { state: string };
}
export type Undo = { [K in keyof UndoArgs]: { kind: K; args: UndoArgs[K] } }[keyof UndoArgs];

interface StepCommon {
  /** Stable across runs and edits elsewhere in the file, e.g. `mount:/data`, `cap:CHOWN`. */
  id: string;
  stage: Stage;
  /** Which process applies it: the CLI on the host (as root), or the cloned child inside its namespaces. */
  side: 'host' | 'child';
  title: string;
  source: Source;
  /** How the step is reverted, when it changes the host (outside the sandbox's own namespaces). */
  undo?: Undo;
}

/** One step of the plan: a discriminated union on `kind`, each kind with its own arguments. */
export type StepOf<K extends StepKind> = StepCommon & { kind: K; args: StepArgs[K] };
export type Step = { [K in StepKind]: StepOf<K> }[StepKind];

export interface Plan {
  version: 1;
  name: string;
  /** sha256 of what the steps do (ids, kinds and arguments), independent of titles and lines. */
  digest: string;
  host: string;
  steps: Step[];
  /** Reduced mode (a caller that cannot make a user namespace): why, and what each line of the file
   * gets without namespaces (plan/reduced.ts). Absent in the usual modes, where every line is held. */
  reduced?: { why: string; table: EnforcementRow[] };
}

/** How far a line of the file is held in reduced mode: as written; weaker (how); or not at all,
 * and then `up` stops unless --allow-weaker (unless `blocking`: then nothing lets it run). */
export type Enforcement = 'enforced' | 'weaker' | 'refused';
export interface EnforcementRow { key: string; src: Source; status: Enforcement; how: string; blocking?: boolean }

/** What the host offers; gathered once by the probe and passed in, so compile stays pure. */
export interface HostFeatures {
  kernel: string;
  arch: string;
  cpus: number;
  /** Effective uid 0 in the initial user namespace. */
  root: boolean;
  /** Effective capabilities held by the caller, without CAP_. */
  caps: string[];
  /** A user namespace can be made (root: the sysctl; others: the probe tried one). */
  userns: boolean;
  /** Not root and no user namespace can be made: `up` runs in the reduced mode, and why. */
  reduced?: { why: string };
  seccomp: boolean;
  /** The kernel's Landlock ABI version (landlock_create_ruleset's VERSION query); absent where it has none. */
  landlock?: number;
  overlayfs: boolean;
  cgroup: {
    /** v1: only v1 hierarchies; hybrid: v1 controllers plus an empty v2; v2: unified only. */
    layout: 'v1' | 'hybrid' | 'v2' | 'none';
    /** Controllers the sandbox can use: as root, the host's; for any other caller, those of its
     * delegated subtree (its cgroup.controllers), none without one. */
    controllers: string[];
    /** v1: memory.memsw.* exist (swap accounting is on); v2: memory.swap.max exists. */
    swap: boolean;
    /** Where each controller's hierarchy is mounted (v1), or the unified one under 'unified'. */
    mounts: Record<string, string>;
    /** The IO weight file this host has: blkio.weight, or BFQ's blkio.bfq.weight / io.bfq.weight. */
    ioWeightFile?: string;
    /** Pure v2 and not root: the caller's delegated subtree (what systemd's Delegate=yes gives),
     * relative to the unified mount, e.g. `user.slice/user-1000.slice/user@1000.service`: the
     * topmost folder above the caller's own cgroup, and every one between, that the caller owns
     * and whose cgroup.procs and cgroup.subtree_control it may write. Undefined on v1/hybrid, for
     * root, and where nothing is delegated. */
    delegated?: string;
  };
  /** The host folders `rootfs: host` binds, those that exist here; `/bin->usr/bin` for a symlink. */
  rootDirs: string[];
  /** Where per-sandbox state lives: /run/sandbox for root, $XDG_RUNTIME_DIR/sandbox otherwise. */
  stateRoot: string;
  /** The volumes sandbox keeps: their folder (the store's volumes/, /var/lib/sandbox/volumes for
   * root) and the names that exist there now, so that the plan says which ones `up` will create. */
  volumes: { root: string; existing: string[] };
  /** Without root: who the caller is and what a rootless run can use. */
  rootless?: RootlessHost;
  /** The absolute path of each program of HOST_PROGRAMS found on PATH; absent: not installed. */
  programs: Partial<Record<HostProgram, string>>;
}

export interface IdRangeHost { start: number; count: number }
/** The caller's ids and subordinate ranges (empty: only a one-id map), and its helpers. */
export interface RootlessHost extends CallerIds {
  user: string;
  /** Absolute paths of the helpers found on PATH. */
  newuidmap?: string;
  newgidmap?: string;
  pasta?: string;
  slirp4netns?: string;
  /** /dev/net/tun opens for the caller (pasta and slirp4netns make the sandbox's interface with it). */
  tun: boolean;
  /** The host has an IPv4 default route: pasta copies that interface, and refuses to start without one. */
  route?: boolean;
}

/** What the attestation found for one step, read back from inside the sandbox before its command ran (engine/attest.ts); saved in the state. */
export interface Verdict { step: string; verdict: 'verified' | 'not checkable' | 'mismatch'; detail: string }
