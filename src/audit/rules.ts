// The audit rules, as a table: each reads the exposure facts and returns what it found, located.
// Ids are stable: a rule is never renumbered, and a removed rule's id is never reused, so that
// code-scanning alerts and `--threshold` policies keep their meaning across versions.
// SBX1xx network, SBX2xx file system and devices, SBX3xx capabilities, SBX4xx privilege and
// system calls, SBX5xx namespaces, SBX6xx resource limits, SBX7xx kernel settings and images.
import type { At, ExposureFacts } from './facts';
import { parseCidr, portsOverlap, targetCovers } from '../model/egress';
import { gatewayOf } from '../model/ip';
import type { EgressTarget } from '../model/types';

export type Severity = 'critical' | 'high' | 'medium' | 'low';
export const SEVERITIES: readonly Severity[] = ['critical', 'high', 'medium', 'low'];

/** One thing a rule found: where, and what (a short phrase naming the value). */
export interface Hit { at: At; what: string }

export interface Rule {
  id: string;
  name: string;
  /** What it fires on, for the README's table and SARIF's short description. */
  title: string;
  severity: Severity;
  /** The share of the remaining isolation this gives away, 0–1 (see score.ts). */
  weight: number;
  test(f: ExposureFacts): Hit[];
  /** Why it matters, one sentence. */
  why: string;
  fix: string;
}

const RUNTIME_SOCKETS = ['docker.sock', 'containerd.sock', 'podman.sock', 'crio.sock', 'cri-dockerd.sock', 'buildkitd.sock'];
/** Folders that hold a container runtime's socket: binding one binds the socket. */
const RUNTIME_DIRS = ['/run', '/var/run', '/run/docker', '/run/containerd', '/run/podman', '/run/crio', '/var/run/docker', '/var/run/containerd', '/var/run/crio', '/run/user'];

const under = (p: string, dir: string) => p === dir || p.startsWith(`${dir}/`);
const isHome = (p: string) => p === '/home' || p === '/root' || /^\/home\/[^/]+\/?$/.test(p) || /^\/Users\/[^/]+\/?$/.test(p) || p === '/Users';

/** Sysctls Kubernetes counts as safe (namespaced and without effect outside the sandbox). */
export const SAFE_SYSCTLS = [
  'kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range',
  'net.ipv4.ip_unprivileged_port_start', 'net.ipv4.ip_local_reserved_ports', 'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_keepalive_intvl', 'net.ipv4.tcp_keepalive_probes',
];

type EgressFact = NonNullable<ExposureFacts['egress']>['rules'][number];
const allows = (f: ExposureFacts): EgressFact[] => (f.egress?.rules ?? []).filter((r) => r.action === 'allow');
const cidr = (text: string): EgressTarget => parseCidr(text, () => 'default', () => undefined)!;

/** Well-known DNS-over-HTTPS endpoints (design 3.4): HTTPS to them cannot be told from DoH. */
export const DOH_ENDPOINTS = ['dns.google', 'cloudflare-dns.com', '*.cloudflare-dns.com', 'dns.quad9.net', 'doh.opendns.com', 'dns.nextdns.io', 'one.one.one.one'];
const DOH: EgressTarget[] = DOH_ENDPOINTS.map((n) => ({ type: 'host', name: n.replace(/^\*\./, ''), wildcard: n.startsWith('*.') }));

/** The refused classes an allow cidr rule opens when it lies inside one (contract 4), by what they
 * hold, the narrowest first. */
function internalRanges(f: ExposureFacts): { range: EgressTarget; what: string }[] {
  const subnet = f.egress?.subnet;
  return [
    { range: cidr('169.254.169.254/32'), what: 'the cloud metadata address 169.254.169.254, which hands out the host\'s credentials' },
    { range: cidr('169.254.0.0/16'), what: 'link-local addresses (the cloud metadata address among them)' },
    { range: cidr('127.0.0.0/8'), what: 'the host\'s loopback, reached through the relay when an allowed name answers 127.0.0.1' },
    ...(subnet ? [
      { range: cidr(`${gatewayOf(subnet)}/32`), what: `the host itself (${gatewayOf(subnet)}, the sandbox's gateway)` },
      { range: cidr(subnet), what: 'the sandbox\'s own subnet: the host and other sandboxes' },
    ] : []),
  ];
}

const bindRule = (id: string, name: string, title: string, severity: Severity, weight: number, match: (source: string) => boolean, why: string, fix: string): Rule => ({
  id, name, title, severity, weight, why, fix,
  test: (f) => f.binds.filter((b) => match(b.source)).map((b) => ({ at: b.at, what: `bind of the host's ${b.source} on ${b.target}${b.readOnly ? ' (read-only)' : ''}` })),
});

const capRule = (id: string, cap: string, severity: Severity, weight: number, why: string): Rule => ({
  id, name: `cap-${cap.toLowerCase().replace(/_/g, '-')}`, title: `CAP_${cap} kept (\`cap_add\`)`, severity, weight, why,
  fix: `remove ${cap} from \`cap_add\` (or the ALL there), and grant the command the one operation it needs another way`,
  test: (f) => f.caps.filter((c) => c.name === cap).map((c) => ({ at: c.at, what: `CAP_${cap} kept${c.added ? ' (cap_add)' : ''}` })),
});

const hostNsRule = (id: string, ns: 'pid' | 'ipc' | 'uts' | 'cgroup', severity: Severity, weight: number, why: string): Rule => ({
  id, name: `namespace-host-${ns}`, title: `\`namespaces.${ns}: host\``, severity, weight, why,
  fix: `remove \`namespaces.${ns}\` (a private ${ns} namespace is the default)`,
  test: (f) => f.namespaces.filter((n) => n.type === ns && n.mode === 'host').map((n) => ({ at: n.at, what: `the host's ${ns} namespace is shared` })),
});

export const RULES: readonly Rule[] = [
  // Network.
  { id: 'SBX101', name: 'network-host', title: '`network: host`', severity: 'critical', weight: 0.6,
    test: (f) => (f.network.mode === 'host' ? [{ at: f.network.at, what: '`network: host`' }] : []),
    why: 'the command sees every interface of the host and can listen on, or connect to, any of its ports, including services bound to 127.0.0.1 only',
    fix: 'use `network: private` with `ports` for what must be reached, or `network: none`' },
  { id: 'SBX102', name: 'port-every-address', title: 'a port published on every address (no host IP, 0.0.0.0 or ::)', severity: 'medium', weight: 0.15,
    test: (f) => f.ports.filter((p) => p.everyAddress).map((p) => ({ at: p.at, what: `port ${p.hostPort || '(any)'}/${p.protocol} published on every address of the host` })),
    why: 'anyone who can reach the host on any of its networks reaches the sandbox\'s port, past the firewall rules written for the host\'s own services',
    fix: 'publish on one address, such as 127.0.0.1:HOST:CONTAINER' },
  { id: 'SBX103', name: 'network-outbound', title: '`network: private` without `egress` (a route out of the host)', severity: 'low', weight: 0.05,
    test: (f) => (f.network.mode === 'private' && !f.egress ? [{ at: f.network.at, what: 'a private network with a route out of the host' }] : []),
    why: 'the command can open connections to the host\'s networks and the internet, so code that runs there can exfiltrate data or fetch more code',
    fix: 'list the hosts it needs in `network.egress` (everything else is then refused), or use `network: none` if it needs no network' },
  { id: 'SBX104', name: 'egress-allow-all', title: 'an egress rule that allows every address (0.0.0.0/0 or ::/0)', severity: 'low', weight: 0.05,
    test: (f) => allows(f).filter((r) => r.target.type === 'cidr' && r.target.prefix === 0).map((r) => ({ at: r.at, what: `rule ${r.index} "${r.text}" allows every address` })),
    why: 'every address outside the refused classes is reachable, so the policy keeps only names from resolving: code in the sandbox connects to any address it knows',
    fix: 'allow the hosts (`allow registry.npmjs.org:443`) or the ranges the command needs instead' },
  { id: 'SBX105', name: 'egress-wildcard', title: 'an egress rule that allows a wildcard (`*.suffix`)', severity: 'low', weight: 0.03,
    test: (f) => allows(f).filter((r) => r.target.type === 'host' && r.target.wildcard).map((r) => ({ at: r.at, what: `rule ${r.index} "${r.text}" allows every name under ${r.target.type === 'host' ? r.target.name : ''}` })),
    why: 'whoever can make a name under the suffix (a bucket, a user\'s site, a forgotten subdomain) receives what the sandbox sends, and lookups of made-up names under it carry data to that zone\'s servers',
    fix: 'name the hosts the command needs' },
  { id: 'SBX106', name: 'egress-allow-internal', title: 'an egress rule that allows the metadata address, link-local or loopback addresses, the host or the sandbox\'s subnet', severity: 'high', weight: 0.3,
    test: (f) => allows(f).flatMap((r) => {
      // Only a rule inside a class opens it: `allow 0.0.0.0/0` does not (contract 4).
      const hit = internalRanges(f).find((c) => r.target.type === 'cidr' && targetCovers(c.range, r.target));
      return hit ? [{ at: r.at, what: `rule ${r.index} "${r.text}" allows ${hit.what}` }] : [];
    }),
    why: 'these addresses are refused unless a rule names them because they reach past the sandbox: the cloud\'s credentials, services of the host bound to its own addresses, other sandboxes',
    fix: 'remove the rule; if the command needs one service there, allow that address and port alone' },
  { id: 'SBX107', name: 'egress-doh', title: 'an egress rule that allows a DNS-over-HTTPS endpoint (dns.google, cloudflare-dns.com, …)', severity: 'medium', weight: 0.1,
    test: (f) => allows(f).filter((r) => r.target.type === 'host' && portsOverlap(r.ports, [{ from: 443, to: 443 }]) && DOH.some((d) => targetCovers(d, r.target) || targetCovers(r.target, d))).map((r) => ({ at: r.at, what: `rule ${r.index} "${r.text}" allows a DNS-over-HTTPS endpoint` })),
    why: 'DNS over HTTPS cannot be told from HTTPS to that host, so the sandbox can look up any name through it: a channel out that the sandbox\'s resolver never sees',
    fix: 'remove the rule, unless the command itself is a DNS client' },
  { id: 'SBX108', name: 'egress-dns-port', title: 'an egress rule that lists port 53 or 853 (DNS, DNS over TLS)', severity: 'medium', weight: 0.1,
    test: (f) => allows(f).filter((r) => !(r.ports.length === 1 && r.ports[0]!.from === 1 && r.ports[0]!.to === 65535) && portsOverlap(r.ports, [{ from: 53, to: 53 }, { from: 853, to: 853 }])).map((r) => ({ at: r.at, what: `rule ${r.index} "${r.text}" allows DNS to a server the sandbox names` })),
    why: 'a name server the sandbox may ask directly answers any lookup past the sandbox\'s resolver, and its recursive lookups carry data out',
    fix: 'remove 53 and 853 from the rule: the sandbox\'s resolver answers every name the rules allow' },

  // File system and devices.
  { id: 'SBX120', name: 'path-credential-exposed', title: 'a `paths` rule that shows a credential of the caller (~/.ssh, ~/.aws, ~/.kube, …), hidden by default', severity: 'high', weight: 0.4,
    test: (f) => f.pathExposures.filter((e) => e.what === 'credential').map((e) => ({ at: e.at, what: `${e.access.replace('_', '-')} ${e.path} (\`${e.pattern}\`)` })),
    why: 'keys and tokens there let the command act as you on other machines and services, long after it ends',
    fix: 'remove the rule (the credential is then hidden), or give the command a token of its own made for this job' },
  { id: 'SBX121', name: 'path-protected-writable', title: 'a `paths.read_write` rule that makes a git hook, git config or shell start-up file writable, read-only by default', severity: 'medium', weight: 0.2,
    test: (f) => f.pathExposures.filter((e) => e.what === 'protected').map((e) => ({ at: e.at, what: `writable ${e.path} (\`${e.pattern}\`)` })),
    why: 'what the command writes there runs later on the host, outside the sandbox: at the next git commit, or the next shell',
    fix: 'remove the rule, so that the file stays read-only, or name a narrower folder' },
  bindRule('SBX201', 'bind-host-root', 'a bind of the host\'s /', 'critical', 0.9, (s) => s === '/', 'the whole host file system is in the sandbox: its secrets, and with write access its binaries and boot files', 'bind only the folder the command needs'),
  bindRule('SBX202', 'bind-proc', 'a bind of the host\'s /proc (or below)', 'high', 0.5, (s) => under(s, '/proc'), 'the host\'s /proc shows every host process, their environments and memory maps, and holds kernel switches such as /proc/sysrq-trigger', 'remove the volume: the sandbox mounts a /proc of its own'),
  bindRule('SBX203', 'bind-sys', 'a bind of the host\'s /sys (or below)', 'high', 0.4, (s) => under(s, '/sys'), 'the host\'s /sys exposes kernel and device settings that the sandbox\'s own read-only /sys hides, such as firmware, power and cgroup files', 'remove the volume: the sandbox mounts /sys read-only'),
  bindRule('SBX204', 'bind-dev', 'a bind of the host\'s /dev (or below)', 'high', 0.5, (s) => under(s, '/dev'), 'host device nodes in the sandbox give raw access to disks, memory or terminals of the host', 'remove the volume; give a single device with `devices` if one is needed'),
  bindRule('SBX205', 'bind-runtime-socket', 'a bind of docker.sock, containerd.sock, podman.sock, crio.sock or the folder holding one', 'critical', 0.9, (s) => RUNTIME_SOCKETS.some((n) => s.endsWith(`/${n}`)) || RUNTIME_DIRS.includes(s), 'whoever can talk to a container runtime\'s socket can start a privileged container with the host\'s / mounted, which is root on the host', 'remove the volume; if the command must build or run containers, give it a rootless runtime of its own'),
  bindRule('SBX206', 'bind-home', 'a bind of a home folder (/home/NAME, /root, /home)', 'high', 0.4, isHome, 'a home folder holds SSH keys, cloud credentials, shell history and the dotfiles that run at the next login', 'bind only the project folder the command needs, read-only if it only reads'),
  { id: 'SBX207', name: 'bind-writable', title: 'a bind volume without `:ro`', severity: 'medium', weight: 0.15,
    test: (f) => f.binds.filter((b) => !b.readOnly).map((b) => ({ at: b.at, what: `writable bind of the host's ${b.source} on ${b.target}` })),
    why: 'what the command writes there stays on the host after it ends, where the host\'s own programs may read or run it',
    fix: 'append :ro (or `read_only: true`) unless the command must write there' },
  { id: 'SBX208', name: 'bind-shared-propagation', title: 'a bind with shared or rshared propagation', severity: 'medium', weight: 0.15,
    test: (f) => f.binds.filter((b) => b.propagation === 'shared' || b.propagation === 'rshared').map((b) => ({ at: b.at, what: `bind of ${b.source} with ${b.propagation} propagation` })),
    why: 'mounts made inside the sandbox under this volume appear on the host too',
    fix: 'remove the propagation option (rprivate is the default), or use rslave to receive the host\'s mounts only' },
  { id: 'SBX209', name: 'device', title: 'an entry of `devices`', severity: 'high', weight: 0.3,
    test: (f) => f.devices.map((d) => ({ at: d.at, what: `host device ${d.source} as ${d.target} (${d.permissions})` })),
    why: 'a host device gives the command direct access to hardware or kernel interfaces that no namespace isolates',
    fix: 'remove the device, or give it read-only permissions (r) if the command only reads' },
  { id: 'SBX210', name: 'root-writable', title: 'no `security.read_only: true`', severity: 'low', weight: 0.05,
    test: (f) => (f.rootfs.readOnly ? [] : [{ at: f.rootfs.readOnlyAt, what: f.rootfs.type === 'dir' ? `a writable root file system (the host folder ${f.rootfs.what})` : 'a writable root file system' }]),
    why: 'the command can replace its own programs and libraries, so a compromise persists across restarts and is hard to see',
    fix: 'set `security.read_only: true` and give writable tmpfs or volumes only where it writes' },

  // Capabilities.
  capRule('SBX301', 'SYS_ADMIN', 'critical', 0.7, 'CAP_SYS_ADMIN allows mount, namespace and many device operations: most container escapes start from it'),
  capRule('SBX302', 'SYS_PTRACE', 'high', 0.4, 'CAP_SYS_PTRACE lets the command trace and inject code into any process it can see, and read their memory'),
  capRule('SBX303', 'SYS_MODULE', 'critical', 0.9, 'CAP_SYS_MODULE loads kernel modules: code in the host\'s kernel, outside every namespace'),
  capRule('SBX304', 'DAC_READ_SEARCH', 'high', 0.4, 'CAP_DAC_READ_SEARCH allows open_by_handle_at, which reads host files outside the sandbox\'s root (the "shocker" escape)'),
  capRule('SBX305', 'NET_ADMIN', 'high', 0.3, 'CAP_NET_ADMIN changes interfaces, routes and firewall rules, and with the host\'s network namespace, the host\'s'),
  capRule('SBX306', 'BPF', 'high', 0.4, 'CAP_BPF loads eBPF programs and maps, a large kernel attack surface that can read kernel memory'),
  capRule('SBX307', 'PERFMON', 'medium', 0.2, 'CAP_PERFMON opens performance monitoring that observes other processes and the kernel'),
  capRule('SBX308', 'SYS_RAWIO', 'critical', 0.6, 'CAP_SYS_RAWIO allows raw I/O ports and /dev/mem access, which can read and write the host\'s memory'),
  capRule('SBX309', 'SYS_BOOT', 'high', 0.3, 'CAP_SYS_BOOT can reboot the host or load a new kernel with kexec'),
  capRule('SBX310', 'SYS_TIME', 'high', 0.3, 'CAP_SYS_TIME sets the host\'s clock, which breaks TLS, logs and token expiry for every service'),
  capRule('SBX311', 'NET_RAW', 'medium', 0.1, 'CAP_NET_RAW opens raw sockets: spoofed packets and sniffing on the sandbox\'s network'),
  capRule('SBX312', 'MKNOD', 'medium', 0.1, 'CAP_MKNOD creates device nodes, which give raw device access wherever a mount lacks nodev'),
  capRule('SBX313', 'SYS_RESOURCE', 'medium', 0.1, 'CAP_SYS_RESOURCE raises hard rlimits and overrides disk quotas and reserved space'),
  capRule('SBX314', 'MAC_ADMIN', 'high', 0.3, 'CAP_MAC_ADMIN changes the host\'s AppArmor or SELinux policy'),
  capRule('SBX315', 'MAC_OVERRIDE', 'high', 0.3, 'CAP_MAC_OVERRIDE bypasses the host\'s mandatory access control'),
  capRule('SBX316', 'SYSLOG', 'medium', 0.15, 'CAP_SYSLOG reads and clears the kernel log, which shows kernel addresses that help an exploit'),
  capRule('SBX317', 'LINUX_IMMUTABLE', 'medium', 0.1, 'CAP_LINUX_IMMUTABLE changes the immutable and append-only flags that protect logs and binaries'),
  capRule('SBX318', 'AUDIT_CONTROL', 'medium', 0.15, 'CAP_AUDIT_CONTROL changes or turns off the host\'s kernel audit rules'),
  capRule('SBX319', 'CHECKPOINT_RESTORE', 'medium', 0.15, 'CAP_CHECKPOINT_RESTORE picks process ids and reads other processes\' state for checkpointing'),

  // Privilege and system calls.
  { id: 'SBX401', name: 'seccomp-unconfined', title: '`security.seccomp: unconfined`', severity: 'critical', weight: 0.5,
    test: (f) => (f.seccomp.profile === 'unconfined' ? [{ at: f.seccomp.at, what: '`seccomp: unconfined`' }] : []),
    why: 'every system call reaches the kernel, including the rarely used ones behind most kernel exploits (keyctl, bpf, userfaultfd, …)',
    fix: 'use `seccomp: default`, or a profile that allows what the command needs' },
  { id: 'SBX402', name: 'no-new-privileges-off', title: '`security.no_new_privileges: false`', severity: 'medium', weight: 0.15,
    test: (f) => (f.noNewPrivileges.on ? [] : [{ at: f.noNewPrivileges.at, what: '`no_new_privileges: false`' }]),
    why: 'a setuid program or a file capability inside the sandbox can raise the command\'s privileges, up to the bounding set',
    fix: 'remove `no_new_privileges: false` (on is the default)' },
  { id: 'SBX403', name: 'root-without-userns', title: 'uid 0 (the default user) without a private user namespace', severity: 'high', weight: 0.3,
    test: (f) => (f.user.root ? [{ at: f.user.at, what: `the command runs as uid 0 of the host${f.user.at.origin === 'file' ? '' : ' (the default user)'}` }] : []),
    why: 'uid 0 in the host\'s user namespace is the host\'s root: one escape from the sandbox, or a writable host path, and it owns the host',
    fix: 'set `user:` to an unprivileged uid such as "1000:1000", or set `namespaces: {user: true}` so that uid 0 inside maps to an unprivileged uid outside' },

  // Namespaces.
  hostNsRule('SBX501', 'pid', 'high', 0.4, 'with the host\'s pid namespace the command sees, signals and (as the same uid) traces every process of the host'),
  hostNsRule('SBX502', 'ipc', 'medium', 0.2, 'with the host\'s ipc namespace the command reads and writes the shared memory and message queues of host processes'),
  hostNsRule('SBX503', 'uts', 'low', 0.05, 'with the host\'s uts namespace the command can change the host\'s hostname'),
  hostNsRule('SBX504', 'cgroup', 'medium', 0.1, 'with the host\'s cgroup namespace the command sees the host\'s whole cgroup tree and the paths of other workloads'),
  { id: 'SBX505', name: 'namespace-join', title: 'a namespace joined by path', severity: 'medium', weight: 0.2,
    test: (f) => f.namespaces.filter((n) => n.mode === 'join').map((n) => ({ at: n.at, what: `joins the ${n.type} namespace at ${n.path}` })),
    why: 'a joined namespace is shared with whatever created it, which may be the host or another, less isolated workload',
    fix: `remove the path from \`namespaces\`, so that the sandbox gets a namespace of its own` },

  // Resource limits.
  { id: 'SBX601', name: 'no-memory-limit', title: 'no `resources.memory`', severity: 'medium', weight: 0.1,
    test: (f) => (f.limits.memory.value === null ? [{ at: f.limits.memory.at, what: 'no memory limit' }] : []),
    why: 'the command can use all of the host\'s memory, and the kernel\'s OOM killer then picks among the host\'s own processes',
    fix: 'set `resources.memory`, such as 512m' },
  { id: 'SBX602', name: 'no-pids-limit', title: 'no `resources.pids`, or -1', severity: 'medium', weight: 0.1,
    test: (f) => (f.limits.pids.value === null ? [{ at: f.limits.pids.at, what: 'no limit on the number of processes' }] : []),
    why: 'a fork bomb in the sandbox exhausts the host\'s process table, and nothing new can start on the host',
    fix: 'set `resources.pids`, such as 256' },
  { id: 'SBX603', name: 'no-cpu-limit', title: 'no `resources.cpus`', severity: 'low', weight: 0.03,
    test: (f) => (f.limits.cpuMillis.value === null ? [{ at: f.limits.cpuMillis.at, what: 'no CPU limit' }] : []),
    why: 'the command can take every CPU of the host and starve the host\'s own services',
    fix: 'set `resources.cpus`, such as 1.5' },

  // Kernel settings and images.
  { id: 'SBX701', name: 'unsafe-sysctl', title: 'a sysctl outside the safe list', severity: 'medium', weight: 0.15,
    test: (f) => f.sysctls.filter((s) => s.at.origin === 'file' && !SAFE_SYSCTLS.includes(s.name)).map((s) => ({ at: s.at, what: `sysctl ${s.name} = ${s.value}` })),
    why: 'outside the short list of safe sysctls, a kernel setting can weaken the network stack or the kernel for the sandbox (routing to localhost, forwarding, shared memory sizes)',
    fix: `remove the sysctl, or keep to the safe ones: ${SAFE_SYSCTLS.join(', ')}` },
  { id: 'SBX702', name: 'insecure-registry', title: 'an entry of `insecure_registries`', severity: 'high', weight: 0.3,
    test: (f) => f.insecureRegistries.map((r) => ({ at: r.at, what: `images from ${r.host} are pulled over plain HTTP` })),
    why: 'anyone on the path to the registry can replace the image, and so choose the code that runs in the sandbox',
    fix: 'serve the registry over HTTPS and remove it from `insecure_registries`' },
];

export const RULE_BY_ID: ReadonlyMap<string, Rule> = new Map(RULES.map((r) => [r.id, r]));
