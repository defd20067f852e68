// (SandboxSpec, HostFeatures) → Plan. Pure: the same function backs `sandbox plan` and
// `sandbox up`, so the plan a reviewer reads is the one that runs.
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { MountFlag, SandboxSpec, Source } from '../model/types';
import { DEFAULT_CAPABILITIES, DEFAULT_DEVICES, HOST_PROGRAMS, missingProgram } from '../model/tables';
import { DEFAULT_PROFILE, errnoNameOf, filterProgram, resolveProfile } from '../model/seccomp';
import { checkOrder } from './order';
import { gatewayOf } from '../model/ip';
import { findStep, makeStep } from './steps';
import { cgroupPathFor, hostInterface, nftTable } from './paths';
import type { HostFeatures, Plan, Stage, Step, StepArgs, StepKind, Undo } from './types';

export interface HostProblem {
  src: Source; code: string; message: string;
  /** What only `up` refuses: the plan can still be shown and reviewed. */
  atRun?: boolean;
}

const CFS_PERIOD = 100_000;
const VETH_MTU = 65520;

export function describeHost(h: HostFeatures): string {
  return `linux ${h.kernel} ${h.arch}, cgroup ${h.cgroup.layout}${h.cgroup.controllers.length ? ` (${h.cgroup.controllers.join(' ')})` : ''}, ${h.root ? 'root' : 'rootless'}`;
}

export function compile(spec: SandboxSpec, host: HostFeatures): { plan: Plan; problems: HostProblem[] } {
  const steps: Step[] = [];
  const problems: HostProblem[] = [];
  const add = <K extends StepKind>(stage: Stage, id: string, kind: K, title: string, source: Source, args: StepArgs[K], undo?: Undo, side?: 'host' | 'child') =>
    steps.push(makeStep({ id, stage, kind, title, source, args, undo, side }));
  const name = spec.name.value;
  const stateDir = `${host.stateRoot}/${name}`;
  const ns = (t: string) => spec.namespaces.find((n) => n.type === t)!;

  // 1. rootfs: a private folder for the new root, owned by this run.
  add('rootfs', 'state', 'state.create', `create ${stateDir}`, 'default', { path: stateDir }, { kind: 'state.remove', args: { path: stateDir } });
  const rf = spec.rootfs;
  if (rf.type === 'host') add('rootfs', 'rootfs', 'rootfs.host', `use the host's ${host.rootDirs.map((d) => d.split('->')[0]).join(' ')} read-only`, rf.src, { dirs: host.rootDirs });
  else if (rf.type === 'dir') add('rootfs', 'rootfs', 'rootfs.dir', `use the directory ${rf.path}`, rf.src, { path: rf.path });
  else {
    add('rootfs', 'rootfs', 'rootfs.image', rf.layers ? `use the image ${rf.image} (${rf.digest}, ${rf.layers.length} layers, in the store)` : `use the image ${rf.image} (pulled by up if the store has not got it${rf.plainHttp === 'loopback' ? `, over plain HTTP: its registry ${rf.registry} is on this host's loopback` : rf.plainHttp === 'insecure' ? `, over plain HTTP: insecure_registries names ${rf.registry}` : ''})`, rf.src,
      { ref: rf.image, ...(rf.layers ? { layers: rf.layers, digest: rf.digest } : {}) });
    // What the image declares and the file does not act on, shown so that a reviewer sees it.
    for (const port of rf.exposed ?? []) add('rootfs', `image:expose:${port}`, 'image.note', `the image exposes ${port}${spec.network.ports.some((p) => `${p.containerPort}/${p.protocol}` === port) ? '' : ' (not published: add it to ports to reach it)'}`, 'image', { expose: port });
    // A VOLUME the file does not mount is an anonymous volume (below); one it mounts is noted.
    for (const v of rf.volumes ?? []) {
      const m = spec.mounts.find((x) => posix.normalize(x.target) === posix.normalize(v) && !(x.kind === 'volume' && x.anonymous));
      if (m) add('rootfs', `image:volume:${v}`, 'image.note', `the image declares a volume at ${v}; the file mounts ${m.kind === 'bind' ? m.source : m.kind === 'volume' ? `the volume ${m.name}` : 'a tmpfs'} there${typeof m.src === 'object' ? ` (line ${m.src.line})` : ''}`, 'image', { volume: v });
    }
    if (!host.overlayfs) problems.push({ src: rf.src, code: 'no-overlayfs', message: 'this host has no overlayfs, which images need' });
  }
  volumeSteps(spec, host, add, problems);

  // 2. cgroup: always one as root, so the sandbox's processes can be counted, limited and killed
  // together. Without root, one only in a delegated cgroup v2 subtree (systemd's Delegate=yes);
  // elsewhere a rootless sandbox has none, and every limit in the file is refused where it is.
  const cg = host.cgroup;
  const rootless = host.rootless;
  const cgPath = cgroupPathFor(host, name);
  const withCgroup = cgPath !== '';
  const ctl = (c: string) => cg.controllers.includes(c);
  const v2 = cg.layout === 'v2';
  if (cg.layout === 'none' && withCgroup) problems.push({ src: 'default', code: 'no-cgroups', message: 'this host has no cgroup file system mounted; mount cgroup2 on /sys/fs/cgroup' });
  // On v1 each hierarchy joined costs the kernel an RCU grace period (a few ms): the sandbox joins
  // memory and pids (accounting, OOM reports, process tracking) and the ones its limits use.
  const r = spec.resources;
  const used = new Set(['memory', 'pids']);
  if (r.cpuMillis || r.cpuShares) used.add('cpu');
  if (r.cpuset) used.add('cpuset');
  if (r.ioWeight || r.deviceReadBps.length || r.deviceWriteBps.length || r.deviceReadIops.length || r.deviceWriteIops.length) used.add('blkio');
  const joined = v2 ? cg.controllers : cg.controllers.filter((c) => used.has(c));
  if (withCgroup) add('cgroup', 'cgroup', 'cgroup.create', `create the cgroup ${cgPath} (${v2 ? `cgroup v2${rootless ? ', in your delegated subtree' : ''}` : `cgroup v1: ${joined.join(', ')}`})`, 'default', { path: cgPath, layout: cg.layout, controllers: joined }, { kind: 'cgroup.remove', args: { path: cgPath } });
  const noDelegation = cg.layout === 'v2'
    ? 'no cgroup v2 subtree is delegated to you, so a limit cannot be applied without root; get one with systemd\'s Delegate=yes (`systemctl edit user@.service`, then [Service] Delegate=yes, and log in again), run as root, or remove this key (`sandbox doctor` shows what this host delegates)'
    : `cgroup ${cg.layout} cannot be delegated to a user, so a limit cannot be applied without root; on cgroup v2 with systemd's Delegate=yes it can (boot with systemd.unified_cgroup_hierarchy=1), or run as root, or remove this key`;
  const set = (id: string, controller: string, file: string, value: string | number, title: string, source: Source) => {
    if (!withCgroup) {
      // One key may make several writes (memory and its swap cap): refused once, where it is.
      if (!problems.some((p) => p.code === 'rootless-no-cgroup' && p.src === source)) problems.push({ src: source, code: 'rootless-no-cgroup', message: noDelegation });
      return;
    }
    if (!ctl(controller)) problems.push({ src: source, code: 'controller-missing', message: `the ${controller} controller is not available on this host (cgroup ${cg.layout}), so this limit cannot be applied` });
    add('cgroup', `cgroup:${id}`, 'cgroup.set', title, source, { controller, file, value: String(value) });
  };
  const mib = (b: number) => (b % 1048576 === 0 ? `${b / 1048576} MiB` : `${b} bytes`);
  if (r.memory) set('memory', 'memory', v2 ? 'memory.max' : 'memory.limit_in_bytes', r.memory.value, `limit memory to ${mib(r.memory.value)}`, r.memory.src);
  if (r.memoryReservation) set('memory-reservation', 'memory', v2 ? 'memory.low' : 'memory.soft_limit_in_bytes', r.memoryReservation.value, `reserve ${mib(r.memoryReservation.value)} of memory`, r.memoryReservation.src);
  if (r.memorySwap && r.memory) {
    const v = r.memorySwap.value;
    if (!cg.swap) problems.push({ src: r.memorySwap.src, code: 'no-swap-accounting', message: `this host does not account swap (no ${v2 ? 'memory.swap.max' : 'memory.memsw.limit_in_bytes'}), so \`memory_swap\` cannot be applied; boot with swapaccount=1 or remove it` });
    if (v2) set('memory-swap', 'memory', 'memory.swap.max', v === -1 ? 'max' : v - r.memory.value, v === -1 ? 'allow unlimited swap' : `limit swap to ${mib(v - r.memory.value)}`, r.memorySwap.src);
    else set('memory-swap', 'memory', 'memory.memsw.limit_in_bytes', v, v === -1 ? 'allow unlimited swap' : `limit memory plus swap to ${mib(v)}`, r.memorySwap.src);
  } else if (r.memory && r.memorySwapDefault && cg.swap) {
    // normalize's default (Docker's): memory + swap = 2 × memory, cited at the memory line.
    const d = r.memorySwapDefault;
    if (v2) set('memory-swap', 'memory', 'memory.swap.max', d.value - r.memory.value, `limit swap to ${mib(d.value - r.memory.value)} (Docker's default: as much as memory)`, d.src);
    else set('memory-swap', 'memory', 'memory.memsw.limit_in_bytes', d.value, `limit memory plus swap to ${mib(d.value)} (Docker's default: twice memory)`, d.src);
  }
  if (r.cpuMillis) {
    const quota = Math.round((r.cpuMillis.value * CFS_PERIOD) / 1000);
    if (v2) set('cpus', 'cpu', 'cpu.max', `${quota} ${CFS_PERIOD}`, `limit CPU time to ${r.cpuMillis.value / 1000} CPUs (${quota}µs every ${CFS_PERIOD}µs)`, r.cpuMillis.src);
    else {
      set('cpus-period', 'cpu', 'cpu.cfs_period_us', CFS_PERIOD, `set the CPU period to ${CFS_PERIOD}µs`, r.cpuMillis.src);
      set('cpus', 'cpu', 'cpu.cfs_quota_us', quota, `limit CPU time to ${r.cpuMillis.value / 1000} CPUs (${quota}µs every period)`, r.cpuMillis.src);
    }
  }
  if (r.cpuShares) {
    // cgroup v2 has weights of 1..10000; this is the conversion runc and crun use.
    const w = Math.round(1 + ((r.cpuShares.value - 2) * 9999) / 262142);
    set('cpu-shares', 'cpu', v2 ? 'cpu.weight' : 'cpu.shares', v2 ? w : r.cpuShares.value, `weigh CPU at ${r.cpuShares.value} shares${v2 ? ` (weight ${w})` : ''}`, r.cpuShares.src);
  }
  if (r.cpuset) {
    set('cpuset', 'cpuset', 'cpuset.cpus', r.cpuset.value, `run on CPUs ${r.cpuset.value}`, r.cpuset.src);
    if (!v2) set('cpuset-mems', 'cpuset', 'cpuset.mems', 'inherit', 'use the parent\'s memory nodes (cpuset v1 needs them set)', r.cpuset.src);
  }
  if (r.pids) set('pids', 'pids', 'pids.max', r.pids.value === -1 ? 'max' : r.pids.value, r.pids.value === -1 ? 'allow any number of processes' : `allow at most ${r.pids.value} processes`, r.pids.src);
  if (r.ioWeight) {
    if (!cg.ioWeightFile) problems.push({ src: r.ioWeight.src, code: 'no-io-weight', message: 'this host has no IO scheduler that honours weights (its disks use none or mq-deadline; BFQ does), so `io_weight` would have no effect; remove it, or use device_read_bps/device_write_bps' });
    const file = cg.ioWeightFile ?? (v2 ? 'io.weight' : 'blkio.weight');
    set('io-weight', v2 ? 'io' : 'blkio', file, file === 'io.weight' ? `default ${r.ioWeight.value}` : r.ioWeight.value, `weigh block IO at ${r.ioWeight.value}${file.includes('bfq') ? ' (BFQ scheduler)' : ''}`, r.ioWeight.src);
  }
  const io = (list: typeof r.deviceReadBps, key: string, v1file: string, what: string) =>
    list.forEach((d) => set(`${key}:${d.path}`, v2 ? 'io' : 'blkio', v2 ? 'io.max' : v1file, `${d.path} ${v2 ? `${key}=${d.rate}` : d.rate}`, `limit ${what} of ${d.path} to ${d.rate}/s`, d.src));
  io(r.deviceReadBps, 'rbps', 'blkio.throttle.read_bps_device', 'reads');
  io(r.deviceWriteBps, 'wbps', 'blkio.throttle.write_bps_device', 'writes');
  io(r.deviceReadIops, 'riops', 'blkio.throttle.read_iops_device', 'read operations');
  io(r.deviceWriteIops, 'wiops', 'blkio.throttle.write_iops_device', 'write operations');

  // 3. namespaces: the user namespace first, so that it owns the others.
  for (const n of spec.namespaces) {
    // The clone makes each new namespace, but for cgroup and time ones, which the child unshares
    // itself: a cgroup namespace once it is in its cgroup, a time namespace for its children.
    if (n.mode === 'private') add('namespaces', `ns:${n.type}`, 'ns.new', `new ${n.type} namespace`, n.src, { type: n.type }, undefined, n.type === 'cgroup' || n.type === 'time' ? 'child' : 'host');
    else if (n.mode === 'join') add('namespaces', `ns:${n.type}`, 'ns.join', `join the ${n.type} namespace at ${n.path}`, n.src, { type: n.type, path: n.path });
    else add('namespaces', `ns:${n.type}`, 'ns.host', `share the host's ${n.type} namespace`, n.src, { type: n.type });
    if (n.type === 'user' && n.mode === 'private' && !host.userns) problems.push({ src: n.src, code: 'no-user-namespaces', message: 'this host does not allow user namespaces (see /proc/sys/user/max_user_namespaces)' });
    const [maj = 0, min = 0] = host.kernel.split('.').map((x) => parseInt(x, 10));
    if (n.type === 'time' && n.mode === 'private' && (maj < 5 || (maj === 5 && min < 6))) problems.push({ src: n.src, code: 'no-time-namespace', message: `time namespaces need Linux 5.6 or later; this host runs ${host.kernel}` });
  }
  if (!host.root && ns('user').mode !== 'private') problems.push({ src: ns('user').src, code: 'rootless-needs-userns', message: 'without root, sandbox needs a private user namespace: remove `namespaces.user`, or run as root' });

  // 4. attach: the child waits until it is limited and mapped.
  if (withCgroup) add('attach', 'cgroup-attach', 'cgroup.attach', `move the child into ${cgPath}`, 'default', { path: cgPath });
  if (spec.userns) {
    const { uidMap, gidMap } = spec.userns;
    const fmt = (m: { container: number; host: number; size: number }[]) => m.map((x) => `${x.container}:${x.host}:${x.size}`).join(',');
    let tool: 'newidmap' | 'write' = 'write';
    let why = '';
    if (rootless) {
      // The kernel lets a user write only a one-id map of itself; more goes through the setuid
      // newuidmap/newgidmap, which allow the ranges /etc/subuid and /etc/subgid give the caller.
      const own = (m: typeof uidMap, id: number) => m.length === 1 && m[0]!.host === id && m[0]!.size === 1;
      const oneId = own(uidMap, rootless.uid) && own(gidMap, rootless.gid);
      if (!oneId) {
        tool = 'newidmap';
        for (const [which, maps, ranges, self, helper] of [['uid', uidMap, rootless.subuid, rootless.uid, rootless.newuidmap], ['gid', gidMap, rootless.subgid, rootless.gid, rootless.newgidmap]] as const) {
          const allowed = (m: { host: number; size: number }) => (m.host === self && m.size === 1) || ranges.some((r) => m.host >= r.start && m.host + m.size <= r.start + r.count);
          const bad = maps.find((m) => !allowed(m));
          if (bad) problems.push({ src: spec.userns.src, code: 'rootless-map-not-yours', message: `the ${which} map ${bad.container}:${bad.host}:${bad.size} is outside what ${rootless.user} may map (its own ${which} ${self}${ranges.length ? ` and ${ranges.map((r) => `${r.start}-${r.start + r.count - 1}`).join(', ')} from /etc/sub${which}` : `; /etc/sub${which} gives it no range`}); remove the map to get the default` });
          if (!helper) problems.push({ src: spec.userns.src, code: 'no-newidmap', message: `mapping more than your own ${which} without root needs new${which}map, which is not on PATH; install Debian's ${HOST_PROGRAMS[`new${which}map`].package} package` });
        }
      }
      const noRanges = !rootless.subuid.length || !rootless.subgid.length;
      why = spec.userns.rootless
        ? noRanges
          ? ` (rootless: you, ${rootless.user}, are root inside; /etc/subuid or /etc/subgid gives you no range, so only your own id is mapped and files of other owners show as nobody; \`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${rootless.user}\` adds one)`
          : ` (rootless: you, ${rootless.user}, are root inside; 1 and up are your ranges from /etc/subuid and /etc/subgid${tool === 'newidmap' ? ', written by newuidmap and newgidmap' : ''})`
        : tool === 'newidmap' ? ' (written by newuidmap and newgidmap)' : '';
      if (tool === 'write' && spec.process.groups.length) problems.push({ src: spec.process.groups[0]!.src, code: 'rootless-one-id-groups', message: 'with a one-id map, supplementary groups cannot be set (the kernel requires setgroups to be denied); add a range to /etc/subgid, or remove group_add' });
    }
    add('attach', 'idmap', 'idmap', `map uids ${fmt(uidMap)} and gids ${fmt(gidMap)}${why}`, spec.userns.src, { uid: uidMap, gid: gidMap, tool });
  }

  // 5. network.
  const mode = spec.network.mode;
  if (mode.value === 'host') add('network', 'net:host', 'net.host', 'use the host\'s network as it is (every interface and port of the host)', mode.src, {});
  else if (ns('net').mode === 'join') add('network', 'net:joined', 'net.joined', 'use the network of the joined namespace', ns('net').src, {});
  else {
    add('network', 'net:lo', 'net.loopback', 'bring up lo', 'default', {});
    if (mode.value === 'private' && rootless) userNet(spec, rootless, add, problems);
    else if (mode.value === 'private') {
      // The host's side is made with ip (the veth pair) and nft (NAT and port maps).
      for (const p of ['ip', 'nft'] as const) if (!host.programs[p]) problems.push({ src: mode.src, code: 'missing-program', message: `${missingProgram(p)}; or set \`network: none\` or \`network: host\`${mode.src === 'default' ? ' (the file has no `network`, and private is the default)' : ''}` });
      const sub = spec.network.subnet;
      const gateway = gatewayOf(sub.value);
      // A 64 KiB MTU, as loopback's (and pasta's): with 1500 the pair carries a sixth less than loopback.
      add('network', 'net:veth', 'net.veth', `join the sandbox to the host with a veth pair (${gateway} on the host's end, MTU ${VETH_MTU}), and lease an address from ${sub.value}`, mode.src, { subnet: sub.value, gateway, inside: 'eth0', mtu: VETH_MTU }, { kind: 'net.veth.remove', args: { interface: hostInterface(name) } });
      add('network', 'net:address', 'net.address', `give eth0 the leased address, with a default route through ${gateway}`, mode.src, { subnet: sub.value, gateway, interface: 'eth0' });
      add('network', 'net:nat', 'net.nat', `masquerade traffic from ${sub.value} leaving the host`, mode.src, { subnet: sub.value }, { kind: 'net.nat.remove', args: { subnet: sub.value, table: nftTable(name) } });
      const proxy = spec.network.proxy;
      for (const p of spec.network.ports) {
        const hostSide = `${p.hostIp ? (p.hostIp.includes(':') ? `[${p.hostIp}]` : p.hostIp) : '*'}:${p.hostPort || '(free port)'}`;
        // The kernel path (nftables DNAT) is the fast one; it cannot turn IPv6 into the sandbox's IPv4.
        const v6 = p.hostIp.includes(':');
        const path = proxy.value === 'userspace' || v6 ? 'userspace' : 'kernel';
        const why = proxy.value === 'userspace' ? 'network.proxy asks for it' : v6 ? 'an IPv6 host address in front of the sandbox\'s IPv4' : 'nftables DNAT, the fast path';
        if (proxy.value === 'kernel' && v6) problems.push({ src: p.src, code: 'kernel-path-ipv6', message: `\`network.proxy: kernel\` cannot publish on the IPv6 address ${p.hostIp}: the sandbox's network is IPv4; use proxy: auto` });
        add('network', `port:${p.hostIp || '*'}:${p.hostPort || `any-${p.containerPort}`}/${p.protocol}`, 'net.port', `publish ${hostSide}/${p.protocol} on the host to port ${p.containerPort} inside (${path}: ${why})`, p.src,
          { hostIp: p.hostIp, hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol, path },
          { kind: 'net.port.remove', args: { hostIp: p.hostIp, hostPort: p.hostPort, protocol: p.protocol } });
      }
    }
    if (mode.value === 'private') {
      const hosts = spec.network.extraHosts.map((h) => `${h.ip} ${h.host}`);
      add('network', 'net:hosts', 'net.hosts', `write /etc/hosts (localhost, ${spec.hostname.value}${hosts.length ? `, ${spec.network.extraHosts.map((h) => h.host).join(', ')}` : ''})`, spec.network.extraHosts[0]?.src ?? 'default', { extra: hosts });
      const dns = spec.network.dns.map((d) => d.value);
      add('network', 'net:resolv', 'net.resolv', dns.length ? `write /etc/resolv.conf with ${dns.join(', ')}` : 'write /etc/resolv.conf from the host\'s', spec.network.dns[0]?.src ?? 'default', { servers: dns });
    } else add('network', 'net:none', 'net.none', 'no network but loopback', mode.src, {});
  }

  // 6. mounts, in the new mount namespace; everything before pivot_root may reach host paths.
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
  add('mounts', 'mount:/proc', 'mount.proc', 'mount a new /proc (nosuid, nodev, noexec)', 'default', { target: '/proc', flags: ['nosuid', 'nodev', 'noexec'] });
  add('mounts', 'mount:/dev', 'mount.dev', 'mount a tmpfs on /dev (nosuid, nodev: a device node made inside cannot be opened)', 'default', { target: '/dev', mode: 0o755, sizeBytes: 65536, flags: ['nosuid', 'nodev', 'noexec'] });
  for (const d of DEFAULT_DEVICES) add('mounts', `dev:${d.name}`, 'dev.node', `/dev/${d.name} (${d.major}:${d.minor}) from the host`, 'default', { name: d.name, major: d.major, minor: d.minor });
  add('mounts', 'mount:/dev/pts', 'mount.devpts', 'mount a private devpts on /dev/pts, with /dev/ptmx pointing at it', 'default', { target: '/dev/pts', options: 'newinstance,ptmxmode=0666,mode=0620' });
  // A volume on one of these targets replaces the default mount there.
  const volumeTargets = new Set(spec.mounts.map((m) => posix.normalize(m.target)));
  if (!volumeTargets.has('/dev/shm')) add('mounts', 'mount:/dev/shm', 'mount.tmpfs.dev', `mount a ${mib(spec.shmSize.value)} tmpfs on /dev/shm (nosuid, nodev, noexec)`, spec.shmSize.src, { target: '/dev/shm', sizeBytes: spec.shmSize.value, mode: 0o1777, flags: ['nosuid', 'nodev', 'noexec'] });
  add('mounts', 'dev:links', 'dev.links', 'link /dev/fd, stdin, stdout, stderr to /proc/self/fd', 'default', {});
  for (const d of spec.devices) add('mounts', `device:${d.target}`, 'dev.bind', `give access to ${d.source} as ${d.target} (${d.permissions})`, d.src, { source: d.source, target: d.target, permissions: d.permissions });
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
  if (mode.value === 'private' && ns('net').mode === 'private') {
    for (const f of ['hosts', 'resolv.conf']) add('mounts', `mount:/etc/${f}`, 'mount.netfile', `bind the sandbox's own /etc/${f} (written in the network stage)`, 'default', { source: `${stateDir}/${f}`, target: `/etc/${f}` });
  }
  // Without CAP_NET_RAW, ping works through ICMP datagram sockets, which the kernel allows to the
  // groups in ping_group_range (a per-network-namespace setting; in a user namespace only mapped gids).
  if (ns('net').mode === 'private' && !spec.sysctls.some((s) => s.name === 'net.ipv4.ping_group_range')) {
    const top = spec.userns ? Math.max(...spec.userns.gidMap.map((m) => m.container + m.size - 1)) : 2147483647;
    add('mounts', 'sysctl:net.ipv4.ping_group_range', 'sysctl', `set net.ipv4.ping_group_range = 0 ${top}, so that ping works without CAP_NET_RAW`, 'default', { name: 'net.ipv4.ping_group_range', value: `0 ${top}` });
  }
  for (const s of spec.sysctls) add('mounts', `sysctl:${s.name}`, 'sysctl', `set ${s.name} = ${s.value}`, s.src, { name: s.name, value: s.value });
  // Volumes: shallow targets first, so that /a is mounted before /a/b.
  const vols = [...spec.mounts].sort((a, b) => depth(a.target) - depth(b.target));
  for (const m of vols) {
    const t = posix.normalize(m.target);
    const flags = m.kind !== 'tmpfs' ? uniq<MountFlag>(['nodev', ...m.flags]) : m.flags;
    if (m.kind === 'volume') add('mounts', `mount:${t}`, 'mount.volume', `bind the ${m.anonymous ? 'anonymous ' : ''}volume ${m.name} on ${t}${m.readOnly ? ' read-only' : ''} (${flags.join(', ')})`, m.src, { name: m.name, source: volumeData(host, m.name), target: t, readOnly: m.readOnly, flags });
    else if (m.kind === 'bind') add('mounts', `mount:${t}`, 'mount.bind', `bind ${m.source} on ${t}${m.readOnly ? ' read-only' : ''}${m.propagation ? `, ${m.propagation}` : ''}${flags.length ? ` (${flags.join(', ')})` : ''}`, m.src, { source: m.source, target: t, readOnly: m.readOnly, recursive: true, propagation: m.propagation ?? 'rprivate', flags });
    else add('mounts', `mount:${t}`, 'mount.tmpfs', `mount a tmpfs on ${t}${m.sizeBytes ? ` of ${mib(m.sizeBytes)}` : ''}, mode ${(m.mode ?? 0o1777).toString(8)}${m.readOnly ? ', read-only' : ''} (${flags.join(', ')})`, m.src, { target: t, sizeBytes: m.sizeBytes, mode: m.mode ?? 0o1777, readOnly: m.readOnly, flags });
  }
  add('mounts', 'pivot', 'mount.pivot', 'pivot_root into the new root and detach the old one', 'default', {});
  for (const p of spec.security.maskedPaths) add('mounts', `mask:${p.value}`, 'mount.mask', `hide ${p.value}`, p.src, { path: p.value });
  for (const p of spec.security.readonlyPaths) add('mounts', `ro:${p.value}`, 'mount.readonly', `make ${p.value} read-only`, p.src, { path: p.value });
  if (rf.readOnly.value) add('mounts', 'mount:/:ro', 'mount.root-readonly', 'make the root file system read-only', rf.readOnly.src, {});

  // 7. identity.
  if (ns('uts').mode === 'private') add('identity', 'hostname', 'hostname', `set the hostname to ${spec.hostname.value}`, spec.hostname.src, { hostname: spec.hostname.value });
  const u = spec.process.user;
  const groups = spec.process.groups.map((g) => g.value);
  const inherited = rootless !== undefined && findStep(steps, 'idmap')?.args.tool === 'write';
  if (inherited) add('identity', 'user:groups', 'user.groups', 'keep your own supplementary groups: a one-id map denies setgroups, so they cannot be dropped (inside they show as nobody)', spec.userns?.src ?? 'default', { groups, inherited });
  else add('identity', 'user:groups', 'user.groups', groups.length ? `set supplementary groups to ${groups.join(', ')}` : 'clear supplementary groups', spec.process.groups[0]?.src ?? 'default', { groups });
  add('identity', 'user:ids', 'user.ids', `run as user ${u.user}, group ${u.group ?? '(the user\'s)'}`, u.src, { user: u.user, group: u.group ?? null });
  add('identity', 'umask', 'umask', `set the umask to ${spec.process.umask.value.toString(8).padStart(4, '0')}`, spec.process.umask.src, { umask: spec.process.umask.value });

  // 8. security: rlimits, then capabilities, then no_new_privs, then seccomp last. Without
  // no_new_privs a filter can only be installed while CAP_SYS_ADMIN is held, so then seccomp
  // comes before the capabilities are dropped (as runc does).
  for (const l of spec.rlimits) add('security', `rlimit:${l.name}`, 'rlimit', `limit ${l.name} to ${l.soft === -1 ? 'unlimited' : l.soft} (hard ${l.hard === -1 ? 'unlimited' : l.hard})`, l.src, { name: l.name, soft: l.soft, hard: l.hard });
  for (const c of spec.capabilities) add('security', `cap:${c.name}`, 'cap.keep', `keep CAP_${c.name}${c.src === 'default' ? ' (the default set)' : ''}`, c.src, { cap: c.name });
  for (const c of spec.capsDropped) add('security', `cap-drop:${c.name}`, 'cap.drop', `drop CAP_${c.name}${(DEFAULT_CAPABILITIES as readonly string[]).includes(c.name) ? '' : ' (not in the default set)'}`, c.src, { cap: c.name });
  const capList = spec.capabilities.map((c) => c.name);
  // What a non-root user holds: only what the file adds by name (cap_add), never the defaults.
  const ambient = spec.capabilities.filter((c) => c.src !== 'default').map((c) => c.name);
  const nnp = spec.security.noNewPrivileges;
  const sc = spec.security.seccomp;
  const capsStep = () => add('security', 'caps', 'caps.apply', capsTitle(capList, ambient, u.user), 'default', { bounding: capList, ambient });
  const seccompStep = () => {
    if (sc.value === 'unconfined') { add('security', 'seccomp', 'seccomp.off', 'no seccomp filter: every system call is allowed', sc.src, {}); return; }
    if (!host.seccomp) problems.push({ src: sc.src, code: 'no-seccomp', message: 'this kernel has no seccomp filter support; set `security.seccomp: unconfined` to run without one' });
    const profile = sc.value === 'default' ? DEFAULT_PROFILE : spec.security.seccompProfile;
    if (!profile) throw new Error(`internal error: the seccomp profile ${sc.value} was not loaded`);
    const filter = resolveProfile(profile, { caps: capList, arch: host.arch, kernel: host.kernel });
    const refused = filter.defaultAction === 'errno' ? `every other fails with ${errnoNameOf(filter.defaultErrno)}` : `every other: ${filter.defaultAction}`;
    add('security', 'seccomp', 'seccomp', `${sc.value === 'default' ? 'install the default seccomp filter (moby\'s default profile)' : `install the seccomp profile ${sc.value}`}: ${filter.allowed} system calls allowed for ${filter.arches.join(', ')}, ${refused}`, sc.src,
      // The filter as the text program libseccomp compiles (one line a rule): plain data, so that
      // the plan, its digest and `sandbox exec` carry exactly the filter that runs.
      { profile: sc.value, allowed: filter.allowed, arches: filter.arches, program: filterProgram(filter).split('\n').filter(Boolean) });
  };
  if (nnp.value) {
    capsStep();
    add('security', 'nnp', 'nnp', 'set no_new_privs: setuid programs and file capabilities cannot gain privileges', nnp.src, {});
    seccompStep();
  } else {
    seccompStep();
    capsStep();
    add('security', 'nnp', 'nnp.off', 'leave no_new_privs off: setuid programs and file capabilities can gain privileges, up to the bounding set', nnp.src, {});
  }

  // What detached sandboxes do not do yet is refused by `up`, never silently dropped.
  const det = spec.process.detach;
  if (det.value && spec.process.tty.value) problems.push({ src: det.src, code: 'detach-tty', message: 'a detached sandbox with a terminal (tty: true) is not supported yet; remove `tty` or `detach`', atRun: true });
  if (det.value && steps.some((s) => s.kind === 'net.port' && s.args.path === 'userspace')) problems.push({ src: det.src, code: 'detach-userspace-ports', message: 'the user-space port forwarder lives in the CLI, so a detached sandbox cannot use it yet (IPv6 host addresses, network.proxy: userspace)', atRun: true });

  // 9. exec. The command is PID 1, with or without a restart policy; `init: true` puts a small
  // init (sandbox-init, as docker run --init) there instead. A pid namespace ends with its PID 1,
  // so a restart is run from outside the sandbox, by the process that waits for it (this CLI, or
  // the supervisor when detached), as a new child in the same cgroup and the same user and network
  // namespaces (held open across runs, so the address and port maps stay), with new others. It
  // replays the steps attested on the first run; the ports go when the command ends for good.
  const restart = spec.process.restart.value;
  const policy = restart.policy;
  const restarter = spec.process.detach.value ? 'the supervisor' : 'the CLI';
  const restartText = policy === 'no' ? '' : `; ${restarter} runs it again ${policy === 'always' ? 'whenever it ends' : 'when it fails'}${restart.max ? `, at most ${restart.max} times` : ''}, until stopped: a new PID 1 in the same cgroup and user and network namespaces, from the steps attested on the first run`;
  const initText = spec.process.init.value ? ' under sandbox-init (PID 1, as docker run --init: it forwards signals and reaps orphans)' : ' as PID 1';
  add('exec', 'fds', 'fds.close', 'close every file descriptor above 2', 'default', {});
  add('exec', 'exec', 'exec', (spec.process.args.length ? `run ${spec.process.args.map(quote).join(' ')} in ${spec.process.cwd.value}` : `run the image's command in ${spec.process.cwd.value}`) + initText + (spec.process.detach.value ? ', detached' : '') + restartText, spec.process.argsSrc,
    { args: spec.process.args, env: spec.process.env.map((e) => `${e.name}=${e.value}`), cwd: spec.process.cwd.value, tty: spec.process.tty.value, stdin: spec.process.stdin.value, init: spec.process.init.value, restart,
      detach: spec.process.detach.value, stopSignal: spec.process.stopSignal.value, stopGraceMs: spec.process.stopGraceMs.value });

  const broken = checkOrder(steps);
  if (broken.length) throw new Error(`internal error: the plan breaks its ordering rules:\n${broken.join('\n')}`);
  const digest = createHash('sha256').update(JSON.stringify(steps.map((s) => [s.id, s.kind, s.args]))).digest('hex');
  return { plan: { version: 1, name, digest: `sha256:${digest}`, host: describeHost(host), steps }, problems };
}

/** The capability sets as the kernel will hold them, for the plan to show. The user may be a
 * name resolved at run time: the child applies the rule that fits the uid it then has. */
function capsTitle(bounding: string[], ambient: string[], user: string | number): string {
  const isRoot = user === 0 || user === '0' || user === 'root';
  const known = isRoot || /^[0-9]+$/.test(String(user));
  const list = (l: string[]) => (l.length ? l.join(' ') : 'none');
  return `set capabilities: bounding = ${list(bounding)}; as uid 0: permitted = effective = the bounding set, inheritable = ambient = none; `
    + `as any other uid: permitted = effective = ambient = ${ambient.length ? `${list(ambient)} (cap_add)` : 'none'}, inheritable = ${ambient.length ? 'the same (the kernel keeps an ambient capability only while it is inheritable)' : 'none'}`
    + (known ? ` — this sandbox runs as ${isRoot ? 'uid 0' : `uid ${user}`}` : ` — the user ${user} is resolved when it runs`);
}

/** What a user-mode stack's port map does not do, on the versions this was measured with (passt
 * 2023-03-09, slirp4netns 1.2.0 with libslirp 4.7); undefined where it works whole. */
export function userNetPortCaveat(tool: 'pasta' | 'slirp4netns', p: { hostIp: string; hostPort: number; containerPort: number; protocol: 'tcp' | 'udp' }): string | undefined {
  const loopbackToo = !p.hostIp || p.hostIp === '0.0.0.0' || p.hostIp === '::' || p.hostIp.startsWith('127.') || p.hostIp === '::1';
  if (p.protocol !== 'udp' || !loopbackToo || (tool === 'pasta' && p.hostPort === p.containerPort)) return undefined;
  return tool === 'pasta'
    ? `UDP port ${p.hostPort}→${p.containerPort}: pasta does not send the sandbox's replies back to clients on the host's loopback when the port number changes; publish it as ${p.containerPort}:${p.containerPort}, or reach it on another address of the host`
    : `UDP port ${p.hostPort}→${p.containerPort}: slirp4netns does not send the sandbox's replies back to clients on the host's loopback (the sandbox may not reach the host's loopback); reach it on another address of the host, or use pasta`;
}

/** A rootless private network: a user-mode stack run as the caller (pasta, or slirp4netns where
 * pasta is missing or asked for), which also carries the published ports. */
function userNet(spec: SandboxSpec, rl: NonNullable<HostFeatures['rootless']>, add: <K extends StepKind>(stage: Stage, id: string, kind: K, title: string, source: Source, args: StepArgs[K], undo?: Undo) => void, problems: HostProblem[]): void {
  const { mode, cmd, proxy, subnet } = spec.network;
  // auto: pasta, unless it is missing or cannot start here (no default route to copy).
  const pastaCannot = !rl.pasta ? 'pasta is not installed' : rl.route === false ? 'this host has no default route, which pasta copies' : undefined;
  const tool = cmd.value === 'slirp4netns' || (cmd.value === 'auto' && pastaCannot && rl.slirp4netns) ? 'slirp4netns' : 'pasta';
  const binary = tool === 'pasta' ? rl.pasta : rl.slirp4netns;
  if (!binary) problems.push({ src: cmd.src === 'default' ? mode.src : cmd.src, code: 'no-usernet', message: cmd.value === 'auto' ? `a private network without root needs pasta (Debian's ${HOST_PROGRAMS.pasta.package} package) or slirp4netns, and neither is on PATH; install ${HOST_PROGRAMS.pasta.package}, or use \`network: none\` or \`network: host\`` : `\`${tool}\` is not on PATH; install Debian's ${HOST_PROGRAMS[tool].package} package, or set \`network.rootless_cmd: auto\`` });
  if (binary && !rl.tun) problems.push({ src: mode.src, code: 'no-tun', message: `${tool} makes the sandbox's interface with /dev/net/tun, which you cannot open; udev makes it mode 0666 on a usual host: run \`chmod 0666 /dev/net/tun\` as root, or use \`network: none\``, atRun: true });
  if (proxy.src !== 'default' && proxy.value !== 'auto') problems.push({ src: proxy.src, code: 'rootless-proxy', message: `\`network.proxy: ${proxy.value}\` needs root (nftables, or the CLI's forwarder on the host's veth end); without root ${tool} carries the ports: remove it` });
  if (subnet.src !== 'default') problems.push({ src: subnet.src, code: 'rootless-subnet', message: `without root the sandbox takes its address from ${tool === 'pasta' ? 'pasta, which copies the host\'s own' : 'slirp4netns (10.0.2.100/24)'}; remove \`network.subnet\`` });
  const why = cmd.value === 'auto' ? (tool === 'pasta' ? 'pasta is installed' : pastaCannot!) : 'network.rootless_cmd asks for it';
  const what = tool === 'pasta' ? 'pasta copies the host\'s addresses and routes into it' : 'slirp4netns gives it 10.0.2.100/24, gateway 10.0.2.2';
  add('network', 'net:usernet', 'net.usernet', `join the sandbox to the host's network through ${tool}, run as you (${what}; ${why})`, mode.src, { tool, binary: binary ?? tool, mtu: VETH_MTU }, { kind: 'net.usernet.stop', args: { tool } });
  for (const p of spec.network.ports) {
    const hostSide = `${p.hostIp ? (p.hostIp.includes(':') ? `[${p.hostIp}]` : p.hostIp) : '*'}:${p.hostPort || '(free port)'}`;
    if (!p.hostPort) problems.push({ src: p.src, code: 'rootless-free-port', message: 'without root a published port needs its host port written out (pasta and slirp4netns pick none themselves); write HOST:CONTAINER' });
    const caveat = userNetPortCaveat(tool, p);
    const carried = (tool === 'pasta' ? 'pasta: the sandbox sees the client\'s own address' : 'slirp4netns: the sandbox sees connections from the host\'s loopback come from 10.0.2.2, other clients with their own address') + (caveat ? `; ${caveat}` : '');
    add('network', `port:${p.hostIp || '*'}:${p.hostPort || `any-${p.containerPort}`}/${p.protocol}`, 'net.port', `publish ${hostSide}/${p.protocol} on the host to port ${p.containerPort} inside (${carried})`, p.src,
      { hostIp: p.hostIp, hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol, path: tool });
  }
}

/** Where a volume's files are: its folder's _data (beside its meta.json), as Docker keeps them. */
export function volumeData(host: Pick<HostFeatures, 'volumes'>, name: string): string { return `${host.volumes.root}/${name}/_data`; }

/** One volume.create step per volume the sandbox uses (a volume mounted twice is made once, for
 * its first target), in the rootfs stage: after the image (its files seed a new volume), before
 * the clone. What it will do is read from the host's list of volumes, for the plan to say. */
function volumeSteps(spec: SandboxSpec, host: HostFeatures, add: <K extends StepKind>(stage: Stage, id: string, kind: K, title: string, source: Source, args: StepArgs[K], undo?: Undo) => void, problems: HostProblem[]): void {
  const made = new Set<string>();
  const image = spec.rootfs.type === 'image';
  for (const m of spec.mounts) {
    if (m.kind !== 'volume' || made.has(m.name)) continue;
    made.add(m.name);
    const t = posix.normalize(m.target);
    const path = `${host.volumes.root}/${m.name}`;
    const exists = host.volumes.existing.includes(m.name);
    const seed = image && !m.nocopy ? 'image' : 'none';
    const what = m.anonymous ? `anonymous volume ${m.name} for the image's VOLUME ${t}` : `${m.external ? 'external ' : ''}volume ${m.name} on ${t}`;
    const fresh = seed === 'image'
      ? 'created and seeded from the image on first use (its files there, with owners, modes and xattrs; if it has none, empty and owned by the sandbox\'s user)'
      : `created empty on first use, owned by the sandbox's user${m.nocopy ? ' (nocopy)' : image ? '' : ' (no image to seed it from)'}`;
    const title = `${what}: ${exists ? 'exists; used as it is, never seeded again' : m.external ? 'does not exist (external: up refuses to start)' : fresh} (${path})`;
    if (m.external && !exists) problems.push({ src: m.src, code: 'volume-external-missing', message: `the external volume ${m.name} does not exist (\`sandbox volume ls\` lists them); create it by running the file that owns it, or remove \`external: true\``, atRun: true });
    add('rootfs', `volume:${m.name}`, 'volume.create', title, m.src, { name: m.name, path, target: t, seed, external: m.external, anonymous: m.anonymous },
      m.external ? undefined : { kind: 'volume.remove-new', args: { name: m.name } });
  }
}

function depth(p: string): number { return posix.normalize(p).split('/').filter(Boolean).length; }
function uniq<T>(a: T[]): T[] { return [...new Set(a)]; }
function quote(s: string): string { return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`; }
