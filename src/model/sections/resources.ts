// Resource limits: memory (and its reservation and swap), CPUs, CPU shares and set, pids, block
// IO weight and per-device rates. None by default, but one: with only `memory`, memory plus swap is
// capped at twice memory, as Docker does (memorySwapDefault, cited at the memory line).
import type { UserConfig } from '../../config/types';
import type { Source, Val } from '../val';
import { parseSize } from '../size';
import { val, type NormalizeContext, type Problem } from './context';

/** 1.5 or "1500m" → millicpus. */
export function parseCpus(v: number | string): number | undefined {
  if (typeof v === 'number') return v > 0 ? Math.round(v * 1000) : undefined;
  const s = v.trim();
  if (/^[0-9]+m$/.test(s)) return Number(s.slice(0, -1)) || undefined;
  const n = Number(s);
  return Number.isFinite(n) && n > 0 ? Math.round(n * 1000) : undefined;
}

/** The limits as the engine applies them: a new key is a field here, read in normalizeResources. */
export interface DeviceLimit { path: string; rate: number; src: Source }

export interface ResourcesSpec {
  memory?: Val<number>;
  memoryReservation?: Val<number>;
  /** Memory plus swap, as `memory_swap` says it; -1: unlimited swap. */
  memorySwap?: Val<number>;
  /** Docker's default where `memory` is set and `memory_swap` is not: memory plus swap capped at
   * twice memory, cited at the memory line. Applied only where the host accounts swap (elsewhere
   * there is nothing to cap, and the file asked for nothing); exports leave it to the runtime. */
  memorySwapDefault?: Val<number>;
  /** Thousandths of a CPU. */
  cpuMillis?: Val<number>;
  cpuShares?: Val<number>;
  cpuset?: Val<string>;
  /** Memory nodes, as cpuset.mems takes them. */
  cpusetMems?: Val<string>;
  /** -1: unlimited. */
  pids?: Val<number>;
  ioWeight?: Val<number>;
  deviceReadBps: DeviceLimit[];
  deviceWriteBps: DeviceLimit[];
  deviceReadIops: DeviceLimit[];
  deviceWriteIops: DeviceLimit[];
  /** The cgroup the sandbox's is made in (`cgroup_parent`), or the sandbox's own in full
   * (`cgroup_path`): '/'-separated, no '.' or '..' level; absolute from the hierarchy's root. */
  cgroupParent?: Val<string>;
  cgroupPath?: Val<string>;
  /** `device_cgroup_rules`: allowed on top of the default nodes and `devices`, all else denied. */
  deviceRules: DeviceRule[];
}

/** One device cgroup allow rule; major and minor undefined: any (*). */
export interface DeviceRule { type: 'a' | 'b' | 'c'; major?: number; minor?: number; access: string; src: Source }

/** Parses `c 1:3 mr` (Docker's --device-cgroup-rule); the problem's message, or the rule. */
export function parseDeviceRule(text: string, src: Source): DeviceRule | string {
  const m = /^([abc]) (\*|[0-9]+):(\*|[0-9]+) ([rwm]{1,3})$/.exec(text.trim());
  if (!m || new Set(m[4]).size !== m[4]!.length) return `\`${text}\` is not a device rule; write TYPE MAJOR:MINOR ACCESS, as \`c 1:3 mr\` (type a, b or c; a number or * each; access of r, w and m)`;
  const num = (s: string) => (s === '*' ? undefined : Number(s));
  return { type: m[1] as DeviceRule['type'], ...(num(m[2]!) !== undefined ? { major: num(m[2]!) } : {}), ...(num(m[3]!) !== undefined ? { minor: num(m[3]!) } : {}), access: m[4]!, src };
}

/** A rule as the devices controller takes it: `c 1:3 mr`. */
export function deviceRuleText(r: { type: string; major?: number; minor?: number; access: string }): string {
  return `${r.type} ${r.major ?? '*'}:${r.minor ?? '*'} ${r.access}`;
}

type Resources = NonNullable<UserConfig['resources']>;

export function normalizeResources(cfg: UserConfig, ctx: NormalizeContext, problem: Problem): ResourcesSpec {
  const r: Resources = cfg.resources ?? {};
  const at = (...p: (string | number)[]) => ctx.where(['resources', ...p]);
  const size = (key: 'memory' | 'memory_reservation' | 'memory_swap'): Val<number> | undefined => {
    const raw = r[key];
    if (raw === undefined) return undefined;
    const n = raw === -1 || raw === '-1' ? -1 : parseSize(raw);
    if (n === undefined) { problem(at(key), 'invalid-size', `\`${raw}\` is not a size; write bytes or a unit, as 512m or 2g`); return undefined; }
    return val(n, at(key));
  };
  const limits = (key: 'device_read_bps' | 'device_write_bps' | 'device_read_iops' | 'device_write_iops'): DeviceLimit[] =>
    (r[key] ?? []).map((d, i) => ({ path: d.path, rate: typeof d.rate === 'number' ? d.rate : parseSize(d.rate) ?? 0, src: at(key, i) }));
  const given = <T>(key: 'cpu_shares' | 'cpuset' | 'cpuset_mems' | 'pids' | 'io_weight', value: T | undefined): Val<T> | undefined => (value !== undefined ? val(value, at(key)) : undefined);
  const cgroup = (key: 'cgroup_parent' | 'cgroup_path'): Val<string> | undefined => {
    const raw = r[key];
    if (raw === undefined) return undefined;
    if (raw.split('/').some((l) => l === '.' || l === '..')) { problem(at(key), 'invalid-cgroup-path', `\`${raw}\` climbs out of its place with . or ..; name the levels, as /batch/jobs`); return undefined; }
    return val(raw, at(key));
  };
  if (r.cgroup_parent !== undefined && r.cgroup_path !== undefined) problem(at('cgroup_path'), 'cgroup-path-and-parent', '`cgroup_path` names the whole cgroup and `cgroup_parent` the one above it: keep one of them');
  const memory = size('memory'), memoryReservation = size('memory_reservation'), memorySwap = size('memory_swap');
  const cpuMillis = r.cpus !== undefined ? parseCpus(r.cpus) : undefined;
  if (r.cpus !== undefined && cpuMillis === undefined) problem(at('cpus'), 'invalid-cpus', `\`${r.cpus}\` is not a CPU amount; write 1.5 or "1500m"`);
  return {
    memory, memoryReservation, memorySwap,
    cpuMillis: cpuMillis !== undefined ? val(cpuMillis, at('cpus')) : undefined,
    cpuShares: given('cpu_shares', r.cpu_shares),
    cpuset: given('cpuset', r.cpuset),
    cpusetMems: given('cpuset_mems', r.cpuset_mems),
    pids: given('pids', r.pids),
    ioWeight: given('io_weight', r.io_weight),
    deviceReadBps: limits('device_read_bps'), deviceWriteBps: limits('device_write_bps'),
    deviceReadIops: limits('device_read_iops'), deviceWriteIops: limits('device_write_iops'),
    cgroupParent: cgroup('cgroup_parent'), cgroupPath: cgroup('cgroup_path'),
    deviceRules: (r.device_cgroup_rules ?? []).flatMap((text, i) => {
      const rule = parseDeviceRule(text, at('device_cgroup_rules', i));
      if (typeof rule === 'string') { problem(at('device_cgroup_rules', i), 'invalid-device-rule', rule); return []; }
      return [rule];
    }),
    // Docker's: memory plus swap is twice memory. The same source object as memory's, so that the
    // step it makes is cited at the memory line, and refused once with it where limits cannot be set.
    ...(memory && !memorySwap ? { memorySwapDefault: val(2 * memory.value, memory.src) } : {}),
  };
}
