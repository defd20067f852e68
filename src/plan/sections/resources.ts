// The limits (`resources`): the sandbox's cgroup, created and its limit files written on the host
// (the cgroup stage), and the child moved into it before it goes on (the attach stage).
import type { SandboxSpec, Source } from '../../model/types';
import { deviceRuleText } from '../../model/sections/resources';
import { DEFAULT_DEVICE_RULES } from '../../model/tables';
import { cgroupPathFor } from '../paths';
import type { HostFeatures } from '../types';
import { mib, type Compilation } from './context';

const CFS_PERIOD = 100_000;

/** Writes one limit file in the sandbox's cgroup; where it has none, refuses the key where it is. */
type SetLimit = (id: string, controller: string, file: string, value: string | number, title: string, source: Source) => void;

/** The sandbox's cgroup and the controllers it joins, for the sections that create, attach and mount it. */
export function cgroupOf(spec: SandboxSpec, host: HostFeatures): Compilation['cgroup'] {
  const cg = host.cgroup;
  const v2 = cg.layout === 'v2';
  // On v1 each hierarchy joined costs the kernel an RCU grace period (a few ms): the sandbox joins
  // memory and pids (accounting, OOM reports, process tracking) and the ones its limits use.
  const r = spec.resources;
  const used = new Set(['memory', 'pids']);
  if (r.cpuMillis || r.cpuShares) used.add('cpu');
  if (r.cpuset || r.cpusetMems) used.add('cpuset');
  if (r.ioWeight || r.deviceReadBps.length || r.deviceWriteBps.length || r.deviceReadIops.length || r.deviceWriteIops.length) used.add('blkio');
  if (r.deviceRules.length) used.add('devices');
  const joined = v2 ? cg.controllers : cg.controllers.filter((c) => used.has(c));
  return { path: cgroupPathFor(host, spec.name.value, { path: r.cgroupPath?.value, parent: r.cgroupParent?.value }), joined };
}

// 2. cgroup: always one as root, so the sandbox's processes can be counted, limited and killed
// together. Without root, one only in a delegated cgroup v2 subtree (systemd's Delegate=yes);
// elsewhere a rootless sandbox has none, and every limit in the file is refused where it is.
export function cgroupSteps(ctx: Compilation): void {
  const { host, add, problems } = ctx;
  const cg = host.cgroup;
  const rootless = host.rootless;
  const { path: cgPath, joined } = ctx.cgroup;
  const withCgroup = cgPath !== '';
  const v2 = cg.layout === 'v2';
  if (cg.layout === 'none' && withCgroup) problems.push({ src: 'default', code: 'no-cgroups', message: 'this host has no cgroup file system mounted; mount cgroup2 on /sys/fs/cgroup' });
  const r = ctx.spec.resources;
  const at = r.cgroupPath ?? r.cgroupParent;
  if (at?.value.startsWith('/') && rootless) problems.push({ src: at.src, code: 'rootless-cgroup-root', message: 'a cgroup path from the hierarchy\'s root needs root; without root write a relative one, which lies in your delegated subtree, or remove this key' });
  if (at && rootless && !withCgroup) problems.push({ src: at.src, code: 'rootless-no-cgroup', message: ctx.host.cgroup.layout === 'v2' ? 'no cgroup v2 subtree is delegated to you, so the sandbox gets no cgroup of its own without root; get one with systemd\'s Delegate=yes, run as root, or remove this key' : `cgroup ${cg.layout} cannot be delegated to a user, so the sandbox gets no cgroup of its own without root; run as root, or remove this key` });
  if (withCgroup) add('cgroup', 'cgroup', 'cgroup.create', `create the cgroup ${cgPath} (${v2 ? `cgroup v2${rootless ? ', in your delegated subtree' : ''}` : `cgroup v1: ${joined.join(', ')}`})`, at?.src ?? 'default', { path: cgPath, layout: cg.layout, controllers: joined }, { kind: 'cgroup.remove', args: { path: cgPath } });
  const set = limitSetter(ctx);
  memoryLimits(ctx, set);
  cpuLimits(ctx, set);
  pidsAndIoLimits(ctx, set);
  deviceRuleSteps(ctx, set);
}

function limitSetter(ctx: Compilation): SetLimit {
  const { host, add, problems } = ctx;
  const cg = host.cgroup;
  const withCgroup = ctx.cgroup.path !== '';
  const ctl = (controller: string) => cg.controllers.includes(controller);
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
  return set;
}

/** memory, memory_reservation and memory_swap. */
function memoryLimits(ctx: Compilation, set: SetLimit): void {
  const { problems } = ctx;
  const r = ctx.spec.resources;
  const cg = ctx.host.cgroup;
  const v2 = cg.layout === 'v2';
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
}

/** cgroup v2's CPU weight (1..10000) for v1 shares (2..262144): runc's integer conversion, so that
 * a file, a config.json and `sandbox-runtime update` give the same weight as runc would. */
export const cpuWeight = (shares: number): number => 1 + Math.floor(((shares - 2) * 9999) / 262142);

/** cpus, cpu_shares, cpuset and cpuset_mems. */
function cpuLimits(ctx: Compilation, set: SetLimit): void {
  const r = ctx.spec.resources;
  const v2 = ctx.host.cgroup.layout === 'v2';
  if (r.cpuMillis) {
    const quota = Math.round((r.cpuMillis.value * CFS_PERIOD) / 1000);
    if (v2) set('cpus', 'cpu', 'cpu.max', `${quota} ${CFS_PERIOD}`, `limit CPU time to ${r.cpuMillis.value / 1000} CPUs (${quota}µs every ${CFS_PERIOD}µs)`, r.cpuMillis.src);
    else {
      set('cpus-period', 'cpu', 'cpu.cfs_period_us', CFS_PERIOD, `set the CPU period to ${CFS_PERIOD}µs`, r.cpuMillis.src);
      set('cpus', 'cpu', 'cpu.cfs_quota_us', quota, `limit CPU time to ${r.cpuMillis.value / 1000} CPUs (${quota}µs every period)`, r.cpuMillis.src);
    }
  }
  if (r.cpuShares) {
    const w = cpuWeight(r.cpuShares.value);
    set('cpu-shares', 'cpu', v2 ? 'cpu.weight' : 'cpu.shares', v2 ? w : r.cpuShares.value, `weigh CPU at ${r.cpuShares.value} shares${v2 ? ` (weight ${w})` : ''}`, r.cpuShares.src);
  }
  // cpuset v1 admits no task until both cpus and mems are set: the one not given is the parent's.
  if (r.cpuset) set('cpuset', 'cpuset', 'cpuset.cpus', r.cpuset.value, `run on CPUs ${r.cpuset.value}`, r.cpuset.src);
  else if (r.cpusetMems && !v2) set('cpuset', 'cpuset', 'cpuset.cpus', 'inherit', 'use the parent\'s CPUs (cpuset v1 needs them set)', r.cpusetMems.src);
  if (r.cpusetMems) set('cpuset-mems', 'cpuset', 'cpuset.mems', r.cpusetMems.value, `allocate memory on nodes ${r.cpusetMems.value}`, r.cpusetMems.src);
  else if (r.cpuset && !v2) set('cpuset-mems', 'cpuset', 'cpuset.mems', 'inherit', 'use the parent\'s memory nodes (cpuset v1 needs them set)', r.cpuset.src);
}

/** pids, io_weight and the devices' rates. */
function pidsAndIoLimits(ctx: Compilation, set: SetLimit): void {
  const { problems } = ctx;
  const r = ctx.spec.resources;
  const cg = ctx.host.cgroup;
  const v2 = cg.layout === 'v2';
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
}

/** `device_cgroup_rules`: on v1 the devices controller denies every device, then allows the
 * rules in order, the `devices` (by path: the engine writes the host node's numbers) and the
 * default nodes (allows add up, in any order; devices.list lists them in the order written, the
 * file's first, as runc does and runtime-tools checks). On v2 the same needs a BPF device program, which the engine does not load: refused
 * at the line (there /dev is a nodev tmpfs with only the default nodes and `devices` in it). */
function deviceRuleSteps(ctx: Compilation, set: SetLimit): void {
  const rules = ctx.spec.resources.deviceRules;
  if (!rules.length) return;
  if (ctx.host.cgroup.layout === 'v2') {
    ctx.problems.push({ src: rules[0]!.src, code: 'device-rules-v2', message: 'device cgroup rules need a BPF device program on cgroup v2, which sandbox does not load; /dev already holds only the default nodes and `devices`: name the device in `devices` instead, or remove this key' });
    return;
  }
  const first = rules[0]!.src;
  set('devices.deny', 'devices', 'devices.deny', 'a', 'deny every device but those allowed below', first);
  for (const r of rules) set(`devices.allow:${deviceRuleText(r)}`, 'devices', 'devices.allow', deviceRuleText(r), `allow ${deviceRuleText(r)}`, r.src);
  for (const d of ctx.spec.devices) {
    if (d.node?.type === 'p') continue; // a FIFO is no device: the controller does not see it
    const what = d.node ? `${d.node.type} ${d.node.major}:${d.node.minor}` : d.source;
    set(`devices.allow:${d.node ? d.target : d.source}`, 'devices', 'devices.allow', d.node ? `${what} ${d.permissions}` : `${d.source} ${d.permissions}`, `allow ${what} (${d.permissions})`, d.src);
  }
  DEFAULT_DEVICE_RULES.forEach((rule) => set(`devices.allow:${rule}`, 'devices', 'devices.allow', rule, `allow ${rule} (the default /dev)`, first));
}

/** 4. attach: the child waits until it is limited (and mapped: sections/namespaces.ts). */
export function cgroupAttachStep(ctx: Compilation): void {
  const { add } = ctx;
  const cgPath = ctx.cgroup.path;
  const withCgroup = cgPath !== '';
  if (withCgroup) add('attach', 'cgroup-attach', 'cgroup.attach', `move the child into ${cgPath}`, ctx.spec.resources.cgroupPath?.src ?? ctx.spec.resources.cgroupParent?.src ?? 'default', { path: cgPath });
}
