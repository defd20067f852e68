// sandbox-runtime's commands on the cgroup of a sandbox it created, in the runtime's process, as
// root: pause and resume (the freezer: v1's freezer hierarchy, which the sandbox joins on its first
// pause; v2's cgroup.freeze), update (memory, cpu, pids, IO weight, each read back after it is
// written), and whether it is frozen. A v1 hierarchy the plan did not use (freezer, or cpu for a
// container made without a CPU limit) gets the sandbox's folder now, at the same path, and every
// process of the sandbox is moved into it; `delete` removes it with the others (host/teardown.ts
// removes the path in every hierarchy).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { HostFeatures } from '../plan/types';
import { sandboxCgroup } from '../host/state';
import { cpuWeight } from '../plan/sections/resources';

export class CgroupError extends Error {}

/** The runtime-spec's linux.resources, the part `update` writes. */
export interface Resources {
  memory?: { limit?: number; reservation?: number; swap?: number };
  cpu?: { shares?: number; quota?: number; period?: number; cpus?: string; mems?: string };
  pids?: { limit?: number };
  blockIO?: { weight?: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const v2 = (host: HostFeatures) => host.cgroup.layout === 'v2';
const unified = (host: HostFeatures) => host.cgroup.mounts.unified ?? '/sys/fs/cgroup';
const read = (f: string) => { try { return readFileSync(f, 'utf8').trim(); } catch { return undefined; } };
const procsOf = (dir: string) => (read(join(dir, 'cgroup.procs')) ?? '').split('\n').filter(Boolean).map(Number);

function cgroupPath(host: HostFeatures, name: string): string {
  const path = sandboxCgroup(host, name).path;
  if (!path) throw new CgroupError('the container has no cgroup of its own (a rootless sandbox without a delegated subtree)');
  return path;
}

/** The file that says whether a sandbox of this cgroup path is frozen (the runtime records it at create). */
export function freezerFile(host: HostFeatures, path: string): string | undefined {
  if (!path) return undefined;
  if (v2(host)) return join(unified(host), path, 'cgroup.freeze');
  const m = host.cgroup.mounts.freezer;
  return m ? join(m, path, 'freezer.state') : undefined;
}

/** Frozen or freezing, as that file says now (a missing file: never paused). */
export function isFrozen(file: string | undefined): boolean {
  const t = file ? read(file) : undefined;
  return t === '1' || t === 'FROZEN' || t === 'FREEZING';
}

/** v1: the sandbox's folder in this controller's hierarchy, made if the plan made none, with every
 * process of the sandbox in it. A process forked by one not yet moved is found on the next pass;
 * once a pass finds none missing, every later child is born inside. */
function joinHierarchy(host: HostFeatures, name: string, controller: string): string {
  const mount = host.cgroup.mounts[controller];
  if (!mount) throw new CgroupError(`the ${controller} controller is not mounted on this host`);
  const cg = sandboxCgroup(host, name);
  const dir = join(mount, cgroupPath(host, name));
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true });
    // A v1 cpuset admits no process until cpus and mems are set: each new level takes its parent's.
    if (controller === 'cpuset') {
      const parts = cgroupPath(host, name).split('/');
      for (let i = 1; i <= parts.length; i++) {
        const level = join(mount, ...parts.slice(0, i));
        for (const f of ['cpuset.cpus', 'cpuset.mems']) if (!read(join(level, f))) writeFileSync(join(level, f), read(join(dirname(level), f)) ?? '');
      }
    }
  }
  for (let pass = 0; pass < 100; pass++) {
    const inside = new Set(procsOf(dir));
    const missing = cg.pids().filter((p) => !inside.has(p));
    if (!missing.length) return dir;
    for (const p of missing) { try { writeFileSync(join(dir, 'cgroup.procs'), String(p)); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e; } }
  }
  throw new CgroupError(`the container's processes could not all be moved into its ${controller} cgroup (they fork faster than they can be moved)`);
}

/** v2: the controller enabled on the way down to the sandbox's folder (the plan enabled only those it used). */
function enableV2(host: HostFeatures, path: string, controller: string): void {
  const parts = path.split('/');
  let dir = unified(host);
  for (let i = 0; i < parts.length; i++) {
    const have = (read(join(dir, 'cgroup.subtree_control')) ?? '').split(/\s+/);
    if (!have.includes(controller)) writeFileSync(join(dir, 'cgroup.subtree_control'), `+${controller}`);
    dir = join(dir, parts[i]!);
  }
}

/** The folder of a controller for this sandbox, ready to be written. */
function dirFor(host: HostFeatures, name: string, controller: string): string {
  const path = cgroupPath(host, name);
  if (!v2(host)) return joinHierarchy(host, name, controller);
  enableV2(host, path, controller);
  return join(unified(host), path);
}

/** pause (on) and resume: returns once the kernel says the whole cgroup is frozen (or thawed). */
export async function freeze(host: HostFeatures, name: string, on: boolean): Promise<void> {
  const path = cgroupPath(host, name);
  if (v2(host)) {
    const dir = join(unified(host), path);
    writeFileSync(join(dir, 'cgroup.freeze'), on ? '1' : '0');
    for (const end = Date.now() + 10_000; Date.now() < end; await sleep(2)) if (new RegExp(`^frozen ${on ? 1 : 0}$`, 'm').test(read(join(dir, 'cgroup.events')) ?? '')) return;
    throw new CgroupError(`the cgroup did not become ${on ? 'frozen' : 'thawed'} within 10 s`);
  }
  const file = freezerFile(host, path);
  if (!on && (!file || !existsSync(file))) return;
  const dir = on ? joinHierarchy(host, name, 'freezer') : dirname(file!);
  const want = on ? 'FROZEN' : 'THAWED';
  for (const end = Date.now() + 10_000; Date.now() < end; await sleep(2)) {
    // v1 may stay FREEZING while a task will not stop: writing FROZEN again retries it.
    writeFileSync(join(dir, 'freezer.state'), want);
    if (read(join(dir, 'freezer.state')) === want) return;
  }
  throw new CgroupError(`the cgroup did not become ${want.toLowerCase()} within 10 s`);
}

/** One write of `update`: controller, file, value, and how its reading back compares. */
interface Write { controller: string; file: string; value: string; same: (read: string) => boolean }

const num = (v: string) => (v === 'max' || v === '-1' ? Infinity : Number(v));
/** The kernel keeps a memory limit in whole pages, and -1 as its largest value. */
const bytes = (want: number) => (r: string) => (want < 0 ? num(r) >= 2 ** 62 : Math.abs(num(r) - want) < 4096);
const exact = (want: string) => (r: string) => r === want;
const cpuList = (s: string) => s.split(',').flatMap((p) => { const [a, b] = p.split('-').map(Number); return b === undefined ? [a] : Array.from({ length: b - a! + 1 }, (_, i) => a! + i); }).join(',');

/** The writes of linux.resources on this host's layout, in the order the kernel accepts them. */
function writesOf(host: HostFeatures, r: Resources, current: (c: string, f: string) => string | undefined): Write[] {
  const w: Write[] = [];
  const m = r.memory ?? {}, c = r.cpu ?? {};
  const max = (n: number) => (n < 0 ? 'max' : String(n));
  if (v2(host)) {
    if (m.limit !== undefined) w.push({ controller: 'memory', file: 'memory.max', value: max(m.limit), same: bytes(m.limit) });
    // The runtime-spec's swap is memory + swap (v1's memsw); v2 keeps the swap alone.
    if (m.swap !== undefined) { const s = m.swap < 0 ? -1 : m.swap - (m.limit ?? num(current('memory', 'memory.max') ?? 'max')); w.push({ controller: 'memory', file: 'memory.swap.max', value: max(s), same: bytes(s) }); }
    if (m.reservation !== undefined) w.push({ controller: 'memory', file: 'memory.low', value: String(Math.max(0, m.reservation)), same: bytes(Math.max(0, m.reservation)) });
    if (c.quota !== undefined || c.period !== undefined) {
      const [q0, p0] = (current('cpu', 'cpu.max') ?? 'max 100000').split(' ');
      const v = `${c.quota === undefined ? q0 : max(c.quota)} ${c.period ?? p0}`;
      w.push({ controller: 'cpu', file: 'cpu.max', value: v, same: exact(v) });
    }
    if (c.shares !== undefined) { const v = String(cpuWeight(c.shares)); w.push({ controller: 'cpu', file: 'cpu.weight', value: v, same: exact(v) }); }
    if (r.blockIO?.weight !== undefined) { const v = String(r.blockIO.weight); w.push({ controller: 'io', file: 'io.weight', value: v, same: (x) => x === v || x === `default ${v}` }); }
  } else {
    // memsw must stay at least the limit: it goes first when it grows, last when it shrinks.
    const limit = m.limit !== undefined ? { controller: 'memory', file: 'memory.limit_in_bytes', value: String(m.limit), same: bytes(m.limit) } : undefined;
    const swap = m.swap !== undefined ? { controller: 'memory', file: 'memory.memsw.limit_in_bytes', value: String(m.swap), same: bytes(m.swap) } : undefined;
    const grows = swap && (m.swap! < 0 || m.swap! > num(current('memory', 'memory.memsw.limit_in_bytes') ?? '-1'));
    w.push(...[grows ? swap : limit, grows ? limit : swap].filter((x): x is Write => !!x));
    if (m.reservation !== undefined) w.push({ controller: 'memory', file: 'memory.soft_limit_in_bytes', value: String(m.reservation), same: bytes(m.reservation) });
    if (c.period !== undefined) w.push({ controller: 'cpu', file: 'cpu.cfs_period_us', value: String(c.period), same: exact(String(c.period)) });
    if (c.quota !== undefined) w.push({ controller: 'cpu', file: 'cpu.cfs_quota_us', value: String(c.quota < 0 ? -1 : c.quota), same: exact(String(c.quota < 0 ? -1 : c.quota)) });
    if (c.shares !== undefined) w.push({ controller: 'cpu', file: 'cpu.shares', value: String(c.shares), same: exact(String(c.shares)) });
    if (r.blockIO?.weight !== undefined) w.push({ controller: 'blkio', file: host.cgroup.ioWeightFile ?? 'blkio.weight', value: String(r.blockIO.weight), same: (x) => x === String(r.blockIO!.weight) || x.endsWith(` ${r.blockIO!.weight}`) });
  }
  if (c.cpus) w.push({ controller: 'cpuset', file: 'cpuset.cpus', value: c.cpus, same: (x) => cpuList(x) === cpuList(c.cpus!) });
  if (c.mems) w.push({ controller: 'cpuset', file: 'cpuset.mems', value: c.mems, same: (x) => cpuList(x) === cpuList(c.mems!) });
  if (r.pids?.limit !== undefined) { const v = r.pids.limit <= 0 ? 'max' : String(r.pids.limit); w.push({ controller: 'pids', file: 'pids.max', value: v, same: exact(v) }); }
  return w;
}

/** update: each limit written to the sandbox's cgroup and read back; the files written, as `file=value`. */
export function updateResources(host: HostFeatures, name: string, r: Resources): string[] {
  const dirs = new Map<string, string>();
  const dir = (c: string) => { if (!dirs.has(c)) dirs.set(c, dirFor(host, name, c)); return dirs.get(c)!; };
  const current = (c: string, f: string) => { try { return read(join(dir(c), f)); } catch { return undefined; } };
  const done: string[] = [];
  for (const x of writesOf(host, r, current)) {
    const file = join(dir(x.controller), x.file);
    try { writeFileSync(file, x.value); } catch (e) {
      throw new CgroupError(`cannot set ${x.file} to ${x.value}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}${done.length ? ` (${done.join(', ')} were set)` : ''}`);
    }
    const back = read(file) ?? '';
    if (!x.same(back)) throw new CgroupError(`${x.file} reads ${back} after ${x.value} was written`);
    done.push(`${x.file}=${x.value}`);
  }
  return done;
}

/** The pids in the sandbox's cgroup now (every hierarchy on v1). */
export function cgroupPids(host: HostFeatures, name: string): number[] {
  return sandboxCgroup(host, name).pids().sort((a, b) => a - b);
}
