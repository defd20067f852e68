// SandboxSpec → an OCI runtime bundle (config.json, runtime-spec 1.0.2, as runc 1.1 and crun 1.8
// read it), with the fidelity report. Pure: what the bundle's root folder must hold comes back as
// data (`root`), and the CLI makes it. The same mounts, namespaces, identity, capability sets,
// no_new_privs, seccomp filter, masked paths, rlimits and cgroup limits as `sandbox up` applies;
// what a runtime does not do (a network beyond loopback, published ports, an init, restarts) is
// reported.
import { posix } from 'node:path';
import type { BundleRoot, DeviceNode, SandboxSpec } from '../model/types';
export type { BundleRoot, DeviceNode };
import { DEFAULT_PROFILE, resolveProfile, type ResolvedFilter } from '../model/seccomp';
import { RESOURCE_EXPORTS, setPath } from './resources';
import { commonFindings, egressFinding, LOSSY, numericIds, Report, written, type Exported, type Locate } from './fidelity';

/** A device node as stat(2) gives it. */

export interface OciHost {
  /** The folders `rootfs: host` binds (the probe's; `/bin->usr/bin` for a link). */
  rootDirs: readonly string[];
  /** For the seccomp filter: 'x86_64', and the kernel's version. */
  arch: string;
  kernel: string;
  /** A device node on this host (devices, device_*_bps); undefined when there is none. */
  device(path: string): DeviceNode | undefined;
}

/** What the bundle's root folder holds: nothing but mount points and links (rootfs: host), a
 * folder of this host (root.path names it), or the image's layers merged, bottom first. */

export interface OciBundle { config: Record<string, unknown>; root: BundleRoot }

const NS_TYPE: Record<string, string> = { user: 'user', pid: 'pid', mount: 'mount', uts: 'uts', ipc: 'ipc', net: 'network', cgroup: 'cgroup' };
const ACTION: Record<string, string> = { allow: 'SCMP_ACT_ALLOW', errno: 'SCMP_ACT_ERRNO', kill_process: 'SCMP_ACT_KILL_PROCESS', kill_thread: 'SCMP_ACT_KILL', trap: 'SCMP_ACT_TRAP', log: 'SCMP_ACT_LOG' };
const depth = (p: string) => posix.normalize(p).split('/').filter(Boolean).length;
/** RLIMIT_INFINITY, for an unlimited rlimit (-1 in the spec). */
const INFINITY = 18446744073709551615n;

/** The resolved filter in runtime-spec's seccomp form; rules of one action without arguments in a row share a list of names. */
export function ociSeccomp(f: ResolvedFilter): Record<string, unknown> {
  const syscalls: { names: string[]; action: string; errnoRet?: number; args?: unknown[] }[] = [];
  for (const rule of f.rules) {
    const action = ACTION[rule.action]!;
    const last = syscalls.at(-1);
    if (!rule.args.length && last && !last.args && last.action === action && (last.errnoRet ?? 0) === rule.errno) { last.names.push(rule.name); continue; }
    syscalls.push({
      names: [rule.name], action, ...(rule.action === 'errno' ? { errnoRet: rule.errno } : {}),
      ...(rule.args.length ? { args: rule.args.map((a) => ({ index: a.index, value: a.value, valueTwo: a.valueTwo, op: `SCMP_CMP_${a.op.toUpperCase()}` })) } : {}),
    });
  }
  return {
    defaultAction: ACTION[f.defaultAction], ...(f.defaultAction === 'errno' ? { defaultErrnoRet: f.defaultErrno } : {}),
    architectures: f.arches.map((a) => `SCMP_ARCH_${a.toUpperCase()}`), syscalls,
  };
}

/** JSON with the 64-bit values (bigint) written as plain numbers, as the runtimes' Go and C readers take them. */
export function bundleJson(config: unknown): string {
  const marks: string[] = [];
  const text = JSON.stringify(config, (_k, v: unknown) => (typeof v === 'bigint' ? (Number.isSafeInteger(Number(v)) ? Number(v) : `\u0000big${marks.push(v.toString()) - 1}`) : v), 2);
  return text.replace(/"\\u0000big(\d+)"/g, (_m, i: string) => marks[Number(i)]!) + '\n';
}

type Mount = Record<string, unknown>;
type Linux = Record<string, unknown>;

/** How the sandbox has namespace `t`: private, the host's, or joined. */
const nsMode = (spec: SandboxSpec, t: string) => spec.namespaces.find((n) => n.type === t)!.mode;

/** The bundle's root: for `rootfs: host`, the host's folders bound read-only (into `mounts`) and its
 * links made; a folder of this host; or the image's layers, which must be in the store. */
function ociRoot(spec: SandboxSpec, host: OciHost, r: Report, bind: (source: string, destination: string, opts: string[]) => void): BundleRoot {
  const rf = spec.rootfs;
  const p = spec.process;
  let root: BundleRoot;
  if (rf.type === 'host') {
    const links: { path: string; target: string }[] = [];
    for (const entry of host.rootDirs) {
      const [d, link] = entry.split('->') as [string, string | undefined];
      if (link) links.push({ path: d, target: link });
      else bind(d, d, ['ro', 'nodev', 'rprivate']);
    }
    root = { kind: 'host', links };
  } else if (rf.type === 'dir') root = { kind: 'dir', path: rf.path };
  else {
    if (!rf.layers) r.add(rf.src, ['image'], 'image-missing', `the image ${rf.image} is not in the store, and the bundle is made from its layers; pull it first (\`sandbox pull ${rf.image}\`)`, true);
    root = { kind: 'image', layers: rf.layers ?? [] };
  }
  if (!p.args.length && rf.type === 'image' && rf.layers) r.add(p.argsSrc, ['command'], 'no-command', 'neither the file nor the image names a command; add `command`', true);
  return root;
}

/** The kernel file systems, as sandbox mounts them: /proc first, then /dev, /dev/pts, /dev/shm (unless
 * a volume is there), /sys (its own for a private network, else the host's bound), the cgroup
 * tree, and for `rootfs: host` a /tmp and /run of the sandbox's own. */
function kernelMounts(spec: SandboxSpec, mounts: Mount[], bind: (source: string, destination: string, opts: string[]) => void): void {
  mounts.unshift({ destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'nodev', 'noexec'] });
  mounts.push({ destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'noexec', 'mode=755', 'size=64k'] });
  mounts.push({ destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] });
  const targets = new Set(spec.mounts.map((m) => posix.normalize(m.target)));
  if (!targets.has('/dev/shm')) mounts.push({ destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'nodev', 'noexec', 'mode=1777', `size=${spec.shmSize.value}`] });
  const freshSys = nsMode(spec, 'net') === 'private';
  if (freshSys) mounts.push({ destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'nodev', 'noexec', 'ro'] });
  else bind('/sys', '/sys', ['nosuid', 'nodev', 'noexec', 'ro', 'rprivate']);
  if (nsMode(spec, 'cgroup') === 'private') mounts.push({ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'nodev', 'noexec', 'relatime', 'ro'] });
  if (spec.rootfs.type === 'host') for (const [t, mode] of [['/tmp', '1777'], ['/run', '755']] as const) if (!targets.has(t)) mounts.push({ destination: t, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', `mode=${mode}`] });
}

/** The file's volumes, shallow targets first (as compile orders them): binds and tmpfs; a named
 * volume is a finding. */
function volumeMounts(spec: SandboxSpec, r: Report, mounts: Mount[], bind: (source: string, destination: string, opts: string[]) => void): void {
  for (const m of [...spec.mounts].sort((a, b) => depth(a.target) - depth(b.target))) {
    const t = posix.normalize(m.target);
    const ro = m.readOnly ? ['ro'] : [];
    if (m.kind === 'bind') bind(m.source, t, [...ro, ...new Set(['nodev', ...m.flags]), m.propagation ?? 'rprivate']);
    // A bundle has binds of host paths, not volumes: a named volume's folder is made and seeded by
    // `up` only. An anonymous one (the image's VOLUME) is the image's files in rootfs/, which the
    // bundle keeps across runs as a volume would.
    else if (m.kind === 'volume') { if (!m.anonymous) r.none(m.src, ['volumes', spec.mounts.indexOf(m)], 'named-volume', `the named volume ${m.name} on ${t} (made and seeded from the image by \`sandbox up\`)`, `bind a folder of the host there instead (\`./${m.name}:${t}\`), or ${LOSSY}`); }
    else mounts.push({ destination: t, type: 'tmpfs', source: 'tmpfs', options: [...ro, ...m.flags, `mode=${m.mode.toString(8)}`, ...(m.sizeBytes ? [`size=${m.sizeBytes}`] : [])] });
  }
}

/** config.json's process: the command, its identity in numbers (a name is a finding), the
 * capability sets as the kernel holds them under sandbox, rlimits and no_new_privs. */
function ociProcess(spec: SandboxSpec, r: Report): Record<string, unknown> {
  const p = spec.process;
  const ids = numericIds(spec);
  for (const k of ids.names) r.add(p.user.src, ['user'], 'user-name', `config.json takes the ${k} as a number, and a name is looked up in the root file system only when sandbox runs it; write the numeric id, as "65534:65534"`, true);
  const gids = p.groups.filter((g) => typeof g.value === 'number').map((g) => g.value as number);
  for (const g of p.groups.filter((x) => typeof x.value !== 'number')) r.add(g.src, ['group_add'], 'group-name', `config.json takes supplementary groups as numbers; write the gid of ${g.value}`, true);
  const uid = ids.uid ?? 0;
  // Without a group, sandbox takes the user's own from the root's /etc/passwd; config.json needs one: uid's number, as for the nobody user.
  const gid = ids.gid ?? (uid === 0 ? 0 : uid);
  if (p.user.group === undefined && uid !== 0) r.add(p.user.src, ['user'], 'user-group', `config.json needs the group as a number, and sandbox would take the user's own from /etc/passwd in the root; write "${uid}:GID"`, true);

  // Capabilities as the kernel holds them under sandbox: root holds the bounding set; another
  // user holds what cap_add names, as ambient (and inheritable, which ambient needs) ones.
  const bounding = spec.capabilities.map((c) => `CAP_${c.name}`);
  const ambient = spec.capabilities.filter((c) => c.src !== 'default').map((c) => `CAP_${c.name}`);
  const held = uid === 0 ? bounding : ambient;
  const capabilities = { bounding, effective: held, permitted: held, inheritable: uid === 0 ? [] : ambient, ambient: uid === 0 ? [] : ambient };

  return {
    terminal: p.tty.value,
    user: { uid, gid, umask: p.umask.value, ...(gids.length ? { additionalGids: gids } : {}) },
    args: p.args,
    env: p.env.map((e) => `${e.name}=${e.value}`),
    cwd: p.cwd.value,
    capabilities,
    rlimits: spec.rlimits.map((l) => ({ type: `RLIMIT_${l.name.toUpperCase()}`, soft: l.soft === -1 ? INFINITY : BigInt(l.soft), hard: l.hard === -1 ? INFINITY : BigInt(l.hard) })),
    noNewPrivileges: spec.security.noNewPrivileges.value,
  };
}

/** config.json's linux section as far as its namespaces: those the sandbox makes or joins, and
 * its user namespace's id maps. */
function ociNamespaces(spec: SandboxSpec): Linux {
  const namespaces: Record<string, string>[] = [];
  for (const n of spec.namespaces) {
    if (n.type === 'time') continue; // reported by commonFindings
    if (n.mode === 'private') namespaces.push({ type: NS_TYPE[n.type]! });
    else if (n.mode === 'join') namespaces.push({ type: NS_TYPE[n.type]!, path: n.path });
  }
  const linux: Linux = { namespaces };
  if (spec.userns) {
    const m = (l: typeof spec.userns.uidMap) => l.map((x) => ({ containerID: x.container, hostID: x.host, size: x.size }));
    linux.uidMappings = m(spec.userns.uidMap);
    linux.gidMappings = m(spec.userns.gidMap);
  }
  return linux;
}

/** The network as findings: a runtime makes the namespace and brings nothing up in it. */
function networkFindings(spec: SandboxSpec, r: Report): void {
  const net = spec.network;
  if (net.mode.value === 'private' && nsMode(spec, 'net') === 'private') r.none(net.mode.src, ['network'], 'network-private', 'a private network with a route out (`network: private`, the default)', `a runtime makes the network namespace with only loopback in it: attach one with CNI, pasta or slirp4netns after \`create\`, or write \`network: none\`; ${LOSSY}`);
  for (const [i, pt] of net.ports.entries()) r.none(pt.src, ['ports', i], 'port', `publishing port ${pt.hostPort || '(free)'}→${pt.containerPort}/${pt.protocol}`, `the network attached after \`create\` publishes it (CNI portmap, pasta -t); ${LOSSY}`);
  egressFinding(spec, r, 'a runtime filters no traffic: the network attached after `create` would have to (an nftables table of your own)');
  for (const d of net.dns) r.none(d.src, ['dns'], 'dns', '`dns`', `bind an /etc/resolv.conf of your own as a volume; ${LOSSY}`);
  for (const h of net.extraHosts) r.none(h.src, ['extra_hosts'], 'extra-hosts', '`extra_hosts`', `bind an /etc/hosts of your own as a volume; ${LOSSY}`);
}

/** Kernel settings: the file's, and ping for every group, as sandbox opens it in a private network. */
function ociSysctl(spec: SandboxSpec): Record<string, string> {
  const sysctl: Record<string, string> = {};
  if (nsMode(spec, 'net') === 'private' && !spec.sysctls.some((s) => s.name === 'net.ipv4.ping_group_range')) {
    const top = spec.userns ? Math.max(...spec.userns.gidMap.map((m) => m.container + m.size - 1)) : 2147483647;
    sysctl['net.ipv4.ping_group_range'] = `0 ${top}`;
  }
  for (const s of spec.sysctls) sysctl[s.name] = s.value;
  return sysctl;
}

/** Limits: each resources key's row (some under `linux` itself), and the IO rates of block devices,
 * which config.json names by their numbers on this host. */
function ociResources(spec: SandboxSpec, host: OciHost, r: Report, linux: Linux): Record<string, unknown> {
  const res = spec.resources;
  const resources: Record<string, unknown> = {};
  // sandbox caps memory plus swap at twice memory by default, as Docker (normalize's default).
  const swap = res.memorySwap ?? res.memorySwapDefault;
  for (const row of RESOURCE_EXPORTS) {
    const v = row.key === 'memorySwap' ? swap : res[row.key];
    if (v) for (const [path, value] of row.oci(v.value, spec.name.value)) setPath(row.ociUnder === 'linux' ? linux : resources, path, value);
  }
  const blockIO = (resources.blockIO ?? {}) as Record<string, unknown>;
  for (const [key, list, field] of [['device_read_bps', res.deviceReadBps, 'throttleReadBpsDevice'], ['device_write_bps', res.deviceWriteBps, 'throttleWriteBpsDevice'], ['device_read_iops', res.deviceReadIops, 'throttleReadIOPSDevice'], ['device_write_iops', res.deviceWriteIops, 'throttleWriteIOPSDevice']] as const) {
    const out: unknown[] = [];
    for (const d of list) {
      const node = host.device(d.path);
      if (!node || node.type !== 'b') { r.add(d.src, ['resources', key], 'device-limit', `${d.path} is not a block device on this host, and config.json names a device by its numbers; name one that exists here`, true); continue; }
      out.push({ major: node.major, minor: node.minor, rate: d.rate });
    }
    if (out.length) blockIO[field] = out;
  }
  if (Object.keys(blockIO).length) resources.blockIO = blockIO;
  return resources;
}

/** Devices: the node made in /dev (linux.devices) and allowed by the device cgroup (resources.devices),
 * after a rule that denies every other. */
function ociDevices(spec: SandboxSpec, host: OciHost, r: Report, linux: Linux, resources: Record<string, unknown>): void {
  const devices: unknown[] = [];
  const allow: unknown[] = [{ allow: false, access: 'rwm' }];
  for (const d of spec.devices) {
    if (d.node) {
      // A node made by its numbers is what config.json says already.
      const n = d.node;
      devices.push({ path: d.target, type: n.type, ...(n.type === 'p' ? {} : { major: n.major, minor: n.minor }), fileMode: n.mode, uid: n.uid, gid: n.gid });
      if (n.type !== 'p') allow.push({ allow: true, type: n.type, major: n.major, minor: n.minor, access: d.permissions });
      continue;
    }
    const node = host.device(d.source);
    if (!node) { r.add(d.src, ['devices'], 'device', `${d.source} is not a device on this host, and config.json names a device by its numbers; name one that exists here`, true); continue; }
    devices.push({ path: d.target, type: node.type, major: node.major, minor: node.minor, fileMode: node.mode & 0o777, uid: node.uid, gid: node.gid });
    allow.push({ allow: true, type: node.type, major: node.major, minor: node.minor, access: d.permissions });
  }
  for (const rule of spec.resources.deviceRules) allow.push({ allow: true, type: rule.type, ...(rule.major !== undefined ? { major: rule.major } : {}), ...(rule.minor !== undefined ? { minor: rule.minor } : {}), access: rule.access });
  if (devices.length) linux.devices = devices;
  if (allow.length > 1) resources.devices = allow;
}

/** Security: the same filter compile resolves for this host, and the same paths hidden. */
function ociSecurity(spec: SandboxSpec, host: OciHost, linux: Linux): void {
  const sc = spec.security.seccomp.value;
  if (sc !== 'unconfined') {
    const profile = sc === 'default' ? DEFAULT_PROFILE : spec.security.seccompProfile;
    if (profile) linux.seccomp = ociSeccomp(resolveProfile(profile, { caps: spec.capabilities.map((c) => c.name), arch: host.arch, kernel: host.kernel }));
  }
  linux.maskedPaths = spec.security.maskedPaths.map((m) => m.value);
  linux.readonlyPaths = spec.security.readonlyPaths.map((m) => m.value);
}

/** What sandbox does around the command that a runtime leaves to its caller, as findings. */
function supervisorFindings(spec: SandboxSpec, r: Report): void {
  const p = spec.process;
  if (p.init.value) r.none(p.init.src, ['init'], 'init', '`init: true`', `the command is PID 1 under a runtime: put an init in its place (\`command: [catatonit, --, …]\` or tini, when the root has one); ${LOSSY}`);
  if (p.restart.value.policy !== 'no') r.none(p.restart.src, ['restart'], 'restart', '`restart`', `a runtime runs the command once: restart it from a supervisor (a systemd unit); ${LOSSY}`);
  if (written(p.stopSignal.src) && p.stopSignal.value !== 15) r.none(p.stopSignal.src, ['stop_signal'], 'stop-signal', '`stop_signal`', `name the signal to \`runc kill\`; ${LOSSY}`);
  if (written(p.stopGraceMs.src)) r.none(p.stopGraceMs.src, ['stop_grace_period'], 'stop-grace', '`stop_grace_period`', `the caller of \`runc kill\` waits; ${LOSSY}`);
}

export function exportOci(spec: SandboxSpec, host: OciHost, locate: Locate): Exported<OciBundle> {
  const r = new Report('oci', locate);
  commonFindings(spec, r, { ulimits: true, maskedPaths: true, umask: true, timeNs: false, registries: true });

  const mounts: Mount[] = [];
  const bind = (source: string, destination: string, opts: string[]) => mounts.push({ destination, type: 'bind', source, options: ['rbind', ...opts] });
  const root = ociRoot(spec, host, r, bind);
  kernelMounts(spec, mounts, bind);
  volumeMounts(spec, r, mounts, bind);

  const process = ociProcess(spec, r);
  const linux = ociNamespaces(spec);
  networkFindings(spec, r);
  linux.sysctl = ociSysctl(spec);
  const resources = ociResources(spec, host, r, linux);
  ociDevices(spec, host, r, linux, resources);
  linux.resources = resources;
  ociSecurity(spec, host, linux);
  supervisorFindings(spec, r);

  const config: Record<string, unknown> = {
    ociVersion: '1.0.2',
    process,
    root: { path: root.kind === 'dir' ? root.path : 'rootfs', readonly: spec.rootfs.readOnly.value },
    ...(nsMode(spec, 'uts') === 'private' ? { hostname: spec.hostname.value } : {}),
    mounts,
    linux,
  };
  return { doc: { config, root }, findings: r.findings };
}
