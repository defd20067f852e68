// Fixed tables: Linux capability and signal numbers (x86_64), rlimit names, and Docker's
// defaults that sandbox matches. Data only.

/** Capability names without CAP_, indexed by their number. */
export const CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
  'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
  'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE',
  'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP',
  'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
] as const;

/** The default capability set: Podman's 11 (containers.conf), which is Docker's 14 (moby's
 * oci/caps/defaults.go) without NET_RAW (raw sockets: packet spoofing and sniffing on the
 * sandbox's network), MKNOD (device nodes) and AUDIT_WRITE. Ping keeps working without NET_RAW
 * through net.ipv4.ping_group_range, opened in a private network namespace. */
export const DEFAULT_CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP',
  'SETUID', 'SYS_CHROOT',
] as const;

/** Docker's three defaults that sandbox leaves out, for the plan and `doctor` to name. */
export const DOCKER_ONLY_CAPABILITIES = ['MKNOD', 'NET_RAW', 'AUDIT_WRITE'] as const;

export const SIGNALS: Record<string, number> = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11, USR2: 12,
  PIPE: 13, ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22, URG: 23,
  XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, IO: 29, POLL: 29, PWR: 30, SYS: 31,
};

/** setrlimit resources, by the names Docker's --ulimit uses. */
export const RLIMITS: Record<string, number> = {
  cpu: 0, fsize: 1, data: 2, stack: 3, core: 4, rss: 5, nproc: 6, nofile: 7, memlock: 8, as: 9, locks: 10,
  sigpending: 11, msgqueue: 12, nice: 13, rtprio: 14, rttime: 15,
};

/** Docker's masked paths (moby's oci/defaults.go), hidden from the command. */
export const DEFAULT_MASKED_PATHS = [
  '/proc/acpi', '/proc/asound', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
  '/proc/sched_debug', '/proc/scsi', '/proc/timer_list', '/proc/timer_stats', '/sys/devices/virtual/powercap', '/sys/firmware',
];

/** Docker's read-only paths. */
export const DEFAULT_READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** The minimal /dev: character devices with their major:minor, as Docker creates them. */
export const DEFAULT_DEVICES = [
  { name: 'null', major: 1, minor: 3 }, { name: 'zero', major: 1, minor: 5 }, { name: 'full', major: 1, minor: 7 },
  { name: 'random', major: 1, minor: 8 }, { name: 'urandom', major: 1, minor: 9 }, { name: 'tty', major: 5, minor: 0 },
] as const;

/** What the sandbox's /dev holds, allowed by the devices controller before a file's
 * device_cgroup_rules once all else is denied: Docker's list (mknod of any node, which /dev's nodev
 * makes useless; the default nodes; the terminal's console, ptmx and pts). */
export const DEFAULT_DEVICE_RULES: readonly string[] = ['c *:* m', 'b *:* m', ...DEFAULT_DEVICES.map((d) => `c ${d.major}:${d.minor} rwm`), 'c 5:1 rwm', 'c 5:2 rwm', 'c 136:* rwm'];

/** Host folders that `rootfs: host` binds read-only, when they exist (bubblewrap's usual set). */
export const HOST_ROOT_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc', '/opt'];

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const DEFAULT_SUBNET = '10.88.0.0/16';

/** Sysctls that are namespaced, hence allowed inside a sandbox (Docker's rule). */
export function namespacedSysctl(name: string): 'net' | 'ipc' | 'uts' | undefined {
  if (name.startsWith('net.')) return 'net';
  if (['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'].includes(name) || name.startsWith('fs.mqueue.')) return 'ipc';
  if (name === 'kernel.domainname' || name === 'kernel.hostname') return 'uts';
  return undefined;
}

/** A capability's number (CAP_CHOWN is 0), or -1 for a name this table lacks. */
export const capabilityNumber = (name: string): number => (CAPABILITIES as readonly string[]).indexOf(name);

/** The host programs sandbox runs, the Debian package that has each, and which keys of the file
 * need it: the one table behind the probe (which looks for each on PATH), compile (a missing one
 * is an error at the key that needs it, naming the package) and `doctor`.
 * scripts/debian-packages.sh installs them (test/unit/host-programs.test.ts checks that its list
 * has every package named here). */
export const HOST_PROGRAMS = {
  ip: { package: 'iproute2', neededBy: '`network: private` as root (the veth pair to the host)' },
  nft: { package: 'nftables', neededBy: '`network: private` as root (outbound NAT and published ports)' },
  newuidmap: { package: 'uidmap', neededBy: 'a user namespace mapping more than your own uid without root' },
  newgidmap: { package: 'uidmap', neededBy: 'a user namespace mapping more than your own gid without root' },
  pasta: { package: 'passt', neededBy: '`network: private` without root' },
  slirp4netns: { package: 'slirp4netns', neededBy: '`network: private` without root, where pasta is missing or cannot start' },
} as const;
export type HostProgram = keyof typeof HOST_PROGRAMS;

/** The words for a program that is not on PATH: what needs it and the package to install. */
export function missingProgram(p: HostProgram): string {
  return `\`${p}\` is not on PATH, and ${HOST_PROGRAMS[p].neededBy} needs it; install Debian's ${HOST_PROGRAMS[p].package} package (apt-get install ${HOST_PROGRAMS[p].package})`;
}
