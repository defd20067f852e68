// Resource limits: memory (and its reservation and swap), CPUs, CPU shares and set, pids, block
// IO weight and per-device rates. None by default, but one: with only `memory`, memory plus swap is
// capped at twice memory, as Docker does (memorySwapDefault, cited at the memory line).
import type { UserConfig } from '../../config/types';
import type { DeviceLimit, ResourcesSpec, Val } from '../types';
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
  const given = <T>(key: 'cpu_shares' | 'cpuset' | 'pids' | 'io_weight', value: T | undefined): Val<T> | undefined => (value !== undefined ? val(value, at(key)) : undefined);
  const memory = size('memory'), memoryReservation = size('memory_reservation'), memorySwap = size('memory_swap');
  const cpuMillis = r.cpus !== undefined ? parseCpus(r.cpus) : undefined;
  if (r.cpus !== undefined && cpuMillis === undefined) problem(at('cpus'), 'invalid-cpus', `\`${r.cpus}\` is not a CPU amount; write 1.5 or "1500m"`);
  return {
    memory, memoryReservation, memorySwap,
    cpuMillis: cpuMillis !== undefined ? val(cpuMillis, at('cpus')) : undefined,
    cpuShares: given('cpu_shares', r.cpu_shares),
    cpuset: given('cpuset', r.cpuset),
    pids: given('pids', r.pids),
    ioWeight: given('io_weight', r.io_weight),
    deviceReadBps: limits('device_read_bps'), deviceWriteBps: limits('device_write_bps'),
    deviceReadIops: limits('device_read_iops'), deviceWriteIops: limits('device_write_iops'),
    // Docker's: memory plus swap is twice memory. The same source object as memory's, so that the
    // step it makes is cited at the memory line, and refused once with it where limits cannot be set.
    ...(memory && !memorySwap ? { memorySwapDefault: val(2 * memory.value, memory.src) } : {}),
  };
}
