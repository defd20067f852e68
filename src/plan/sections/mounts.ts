// The mounts (the root, `volumes`, `paths` (sections/paths.ts), `devices`, `sysctls`, `shm_size`, `security.masked_paths`,
// `readonly_paths` and `read_only`): the mounts stage, applied by the child in its new mount
// namespace. Everything before pivot_root may reach host paths; what follows is resolved in the new root.
import { posix } from 'node:path';
import { DEFAULT_DEVICES } from '../../model/tables';
import type { MountFlag, MountSpec } from '../../model/types';
import { mib, type Compilation } from './context';
import { volumeData } from './root';
import { pathBinds, pathsAfterPivot } from './paths';

/** 6. mounts, in the new mount namespace; everything before pivot_root may reach host paths. */
export function mountSteps(ctx: Compilation): void {
  rootMounts(ctx);
  systemMounts(ctx);
  networkMounts(ctx);
  volumeMounts(ctx);
  afterPivot(ctx);
}

/** The new root: a tmpfs with the host's folders bound read-only, a folder, or an image's layers. */
function rootMounts(ctx: Compilation): void {
  const { spec, host, add } = ctx;
  const rf = spec.rootfs;
  add('mounts', 'mount:private', 'mount.private', 'make every mount private, so that nothing propagates to the host', 'default', {});
  if (rf.type === 'host') {
    add('mounts', 'mount:/', 'mount.root', 'mount a fresh tmpfs as the new root', rf.src, { fstype: 'tmpfs', mode: 0o755 });
    for (const entry of host.rootDirs) {
      const [d, link] = entry.split('->') as [string, string | undefined];
      if (link) add('mounts', `link:${d}`, 'mount.link', `link ${d} to ${link}, as on the host`, rf.src, { path: d, target: link });
      else add('mounts', `mount:${d}`, 'mount.bind', `bind the host's ${d} read-only`, rf.src, { source: d, target: d, readOnly: true, recursive: true, flags: ['nodev'] });
    }
  } else if (rf.type === 'dir') add('mounts', 'mount:/', 'mount.root', `bind ${rf.path} as the new root`, rf.src, { fstype: 'bind', source: rf.path, flags: ['nodev'] });
  else add('mounts', 'mount:/', 'mount.root', `mount the layers of ${rf.image} with overlayfs${rf.readOnly.value ? ', read-only (no upper layer)' : ' and a private upper layer (removed by down)'}`, rf.src, { fstype: 'overlay', image: rf.image, readOnly: rf.readOnly.value, ...(rf.layers ? { layers: rf.layers } : {}) });
}

/** /proc, /dev and its devices, /dev/shm, /sys, the sandbox's own cgroup, and /tmp and /run for the host's folders. */
function systemMounts(ctx: Compilation): void {
  const { spec, add, ns } = ctx;
  const rf = spec.rootfs;
  const cg = ctx.host.cgroup;
  const v2 = cg.layout === 'v2';
  const { path: cgPath, joined } = ctx.cgroup;
  const withCgroup = cgPath !== '';
  add('mounts', 'mount:/proc', 'mount.proc', 'mount a new /proc (nosuid, nodev, noexec)', 'default', { target: '/proc', flags: ['nosuid', 'nodev', 'noexec'] });
  add('mounts', 'mount:/dev', 'mount.dev', 'mount a tmpfs on /dev (nosuid, nodev: a device node made inside cannot be opened)', 'default', { target: '/dev', mode: 0o755, sizeBytes: 65536, flags: ['nosuid', 'nodev', 'noexec'] });
  for (const d of DEFAULT_DEVICES) add('mounts', `dev:${d.name}`, 'dev.node', `/dev/${d.name} (${d.major}:${d.minor}) from the host`, 'default', { name: d.name, major: d.major, minor: d.minor });
  add('mounts', 'mount:/dev/pts', 'mount.devpts', 'mount a private devpts on /dev/pts, with /dev/ptmx pointing at it', 'default', { target: '/dev/pts', options: 'newinstance,ptmxmode=0666,mode=0620' });
  // A volume on one of these targets replaces the default mount there.
  const volumeTargets = new Set(spec.mounts.map((m) => posix.normalize(m.target)));
  if (!volumeTargets.has('/dev/shm')) add('mounts', 'mount:/dev/shm', 'mount.tmpfs.dev', `mount a ${mib(spec.shmSize.value)} tmpfs on /dev/shm (nosuid, nodev, noexec)`, spec.shmSize.src, { target: '/dev/shm', sizeBytes: spec.shmSize.value, mode: 0o1777, flags: ['nosuid', 'nodev', 'noexec'] });
  if (spec.mqueue?.value) {
    // An mqueue file system shows the queues of the IPC namespace of the process that mounts it:
    // the sandbox's own, or one it joined in the namespaces stage (a CRI Pod's containers join
    // the Pod's), never the host's.
    const ipc = ns('ipc');
    if (ipc.mode === 'host') ctx.problems.push({ src: spec.mqueue.src, code: 'mqueue-needs-ipc', message: '/dev/mqueue would show the host\'s message queues: `mqueue` needs the sandbox\'s own IPC namespace (namespaces.ipc: true) or one it joins' });
    const whose = ipc.mode === 'join' ? `the POSIX message queues of the IPC namespace at ${ipc.path}` : 'the sandbox\'s POSIX message queues';
    add('mounts', 'mount:/dev/mqueue', 'mount.mqueue', `mount ${whose} on /dev/mqueue (nosuid, nodev, noexec)`, spec.mqueue.src, { target: '/dev/mqueue', flags: ['nosuid', 'nodev', 'noexec'] });
  }
  add('mounts', 'dev:links', 'dev.links', 'link /dev/fd, stdin, stdout, stderr to /proc/self/fd', 'default', {});
  for (const d of spec.devices) {
    if (!d.node) { add('mounts', `device:${d.target}`, 'dev.bind', `give access to ${d.source} as ${d.target} (${d.permissions})`, d.src, { source: d.source, target: d.target, permissions: d.permissions }); continue; }
    // A new user namespace cannot make device nodes (the kernel refuses mknod there).
    if (ctx.spec.userns && d.node.type !== 'p') ctx.problems.push({ src: d.src, code: 'device-node-userns', message: `${d.target} cannot be made in a new user namespace (the kernel refuses mknod of a device there); give the host's device as \`source\` instead` });
    const n = d.node, what = n.type === 'p' ? 'a FIFO' : `${n.type === 'c' ? 'a character' : 'a block'} device ${n.major}:${n.minor}`;
    add('mounts', `device:${d.target}`, 'dev.make', `make ${d.target}, ${what}, mode ${n.mode.toString(8).padStart(4, '0')}, owner ${n.uid}:${n.gid}${n.type === 'p' ? '' : ` (${d.permissions}; this node alone is not nodev)`}`, d.src, { target: d.target, ...n, permissions: d.permissions });
  }
  const sysRo = ns('net').mode === 'private' ? 'a new sysfs' : 'the host\'s /sys';
  add('mounts', 'mount:/sys', 'mount.sys', `mount ${sysRo} read-only on /sys`, 'default', { target: '/sys', fresh: ns('net').mode === 'private' });
  if (ns('cgroup').mode === 'private' && cg.layout !== 'none' && withCgroup) {
    // In its own cgroup namespace the sandbox sees its cgroup as the root, read-only, as under Docker.
    const hierarchies = v2 ? [] : joined;
    add('mounts', 'mount:/sys/fs/cgroup', 'mount.cgroup', `mount the sandbox's own cgroup read-only on /sys/fs/cgroup${v2 ? '' : ` (${hierarchies.join(', ')})`}`, 'default', { target: '/sys/fs/cgroup', layout: v2 ? 'v2' : 'v1', controllers: hierarchies });
  }
  if (rf.type === 'host') {
    if (!volumeTargets.has('/tmp')) add('mounts', 'mount:/tmp', 'mount.tmpfs.dev', 'mount a tmpfs on /tmp (nosuid, nodev)', rf.src, { target: '/tmp', mode: 0o1777, flags: ['nosuid', 'nodev'] });
    if (!volumeTargets.has('/run')) add('mounts', 'mount:/run', 'mount.tmpfs.dev', 'mount a tmpfs on /run (nosuid, nodev)', rf.src, { target: '/run', mode: 0o755, flags: ['nosuid', 'nodev'] });
  }
}

/** The network's files written on the host, and the sysctls. */
function networkMounts(ctx: Compilation): void {
  const { spec, add, ns, stateDir } = ctx;
  const mode = spec.network.mode;
  if (mode.value === 'private' && ns('net').mode === 'private') {
    for (const f of ['hosts', 'resolv.conf']) add('mounts', `mount:/etc/${f}`, 'mount.netfile', `bind the sandbox's own /etc/${f} (written in the network stage)`, 'default', { source: `${stateDir}/${f}`, target: `/etc/${f}` });
  }
  // Without CAP_NET_RAW, ping works through ICMP datagram sockets, which the kernel allows to the
  // groups in ping_group_range (a per-network-namespace setting; in a user namespace only mapped gids).
  if (ns('net').mode === 'private' && !spec.sysctls.some((s) => s.name === 'net.ipv4.ping_group_range')) {
    const top = spec.userns ? Math.max(...spec.userns.gidMap.map((m) => m.container + m.size - 1)) : 2147483647;
    add('mounts', 'sysctl:net.ipv4.ping_group_range', 'sysctl', `set net.ipv4.ping_group_range = 0 ${top}, so that ping works without CAP_NET_RAW`, 'default', { name: 'net.ipv4.ping_group_range', value: `0 ${top}` });
  }
  // The veth network is IPv4 only (addresses, NAT, port maps, the host's firewall rules): left on,
  // IPv6 would give eth0 a link-local address from which the host's services listening on :: are
  // reached directly, around all of them. The host's end is turned off too (host/network.ts).
  const v6 = 'net.ipv6.conf.eth0.disable_ipv6';
  if (mode.value === 'private' && ns('net').mode === 'private' && !ctx.host.rootless && !spec.sysctls.some((s) => s.name === v6)) {
    add('mounts', `sysctl:${v6}`, 'sysctl', `turn IPv6 off on eth0: the private network is IPv4 only, and a link-local address would reach the host's services on :: around its rules`, 'default', { name: v6, value: '1' });
  }
  for (const s of spec.sysctls) add('mounts', `sysctl:${s.name}`, 'sysctl', `set ${s.name} = ${s.value}`, s.src, { name: s.name, value: s.value });
}

/** The file's volumes, binds and tmpfs mounts, and the binds of `paths` rules: shallow targets
 * first, so that /a is mounted before /a/b (the most specific on top). */
function volumeMounts(ctx: Compilation): void {
  const { spec, host, add } = ctx;
  const volume = (m: MountSpec) => () => {
    const t = posix.normalize(m.target);
    const flags = m.kind !== 'tmpfs' ? uniq<MountFlag>(['nodev', ...m.flags]) : m.flags;
    if (m.kind === 'volume') add('mounts', `mount:${t}`, 'mount.volume', `bind the ${m.anonymous ? 'anonymous ' : ''}volume ${m.name} on ${t}${m.readOnly ? ' read-only' : ''} (${flags.join(', ')})`, m.src, { name: m.name, source: volumeData(host, m.name), target: t, readOnly: m.readOnly, flags });
    else if (m.kind === 'bind') add('mounts', `mount:${t}`, 'mount.bind', `bind ${m.source} on ${t}${m.readOnly ? ' read-only' : ''}${m.propagation ? `, ${m.propagation}` : ''}${flags.length ? ` (${flags.join(', ')})` : ''}`, m.src, { source: m.source, target: t, readOnly: m.readOnly, recursive: true, propagation: m.propagation ?? 'rprivate', flags });
    else add('mounts', `mount:${t}`, 'mount.tmpfs', `mount a tmpfs on ${t}${m.sizeBytes ? ` of ${mib(m.sizeBytes)}` : ''}, mode ${(m.mode ?? 0o1777).toString(8)}${m.readOnly ? ', read-only' : ''}${m.propagation ? `, ${m.propagation}` : ''} (${flags.join(', ')})`, m.src, { target: t, sizeBytes: m.sizeBytes, mode: m.mode ?? 0o1777, readOnly: m.readOnly, ...(m.propagation ? { propagation: m.propagation } : {}), flags });
  };
  const all = [...spec.mounts.map((m) => ({ target: m.target, add: volume(m) })), ...pathBinds(ctx)];
  for (const m of all.sort((a, b) => depth(a.target) - depth(b.target))) m.add();
}

/** pivot_root, then what is resolved in the new root: masks, read-only paths, the root read-only. */
function afterPivot(ctx: Compilation): void {
  const { spec, add } = ctx;
  const rf = spec.rootfs;
  add('mounts', 'pivot', 'mount.pivot', 'pivot_root into the new root and detach the old one', 'default', {});
  // Made private before anything was mounted, the root joins no peer group of the host's: shared
  // here starts a group of the sandbox's own, so its mounts reach its own bind mounts of /, only.
  if (rf.propagation) add('mounts', 'mount:/:propagation', 'mount.root-propagation', `make the root ${rf.propagation.value}${rf.propagation.value.includes('shared') ? ' (a peer group of the sandbox\'s own)' : ''}`, rf.propagation.src, { propagation: rf.propagation.value });
  for (const p of spec.security.maskedPaths) add('mounts', `mask:${p.value}`, 'mount.mask', `hide ${p.value}`, p.src, { path: p.value });
  for (const p of spec.security.readonlyPaths) add('mounts', `ro:${p.value}`, 'mount.readonly', `make ${p.value} read-only`, p.src, { path: p.value });
  pathsAfterPivot(ctx);
  workdirStep(ctx);
  if (rf.readOnly.value) add('mounts', 'mount:/:ro', 'mount.root-readonly', 'make the root file system read-only', rf.readOnly.src, {});
}

/** A working directory the root lacks is made before the command starts, as docker run -w does:
 * after every mount (so that one inside a volume is made there) and before the root turns
 * read-only. Where it cannot be made the preflight says so first (engine/preflight.ts); a read-only
 * image has it in its init layer (engine/init-layer.ts). */
function workdirStep(ctx: Compilation): void {
  const cwd = ctx.spec.process.cwd;
  const path = posix.normalize(cwd.value);
  if (path === '/') return;
  ctx.add('mounts', 'workdir', 'mount.workdir', `make the working directory ${path} if the root lacks it (mode 755, owned by the sandbox's root, as docker run -w)`, cwd.src, { path });
}

function depth(p: string): number { return posix.normalize(p).split('/').filter(Boolean).length; }
function uniq<T>(a: T[]): T[] { return [...new Set(a)]; }
