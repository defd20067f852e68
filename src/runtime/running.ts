// sandbox-runtime's commands on a container that runs: exec (one more process in it, through the
// plan of `sandbox exec` narrowed by the process object: runtime/exec.ts), ps, pause and resume
// (the cgroup freezer), update (its limits, written and read back). Each is one short process run
// as root by its caller (containerd's shim, conmon, a person), with runc's flags and error texts.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { COMMANDS, probe, RuntimeError, statusOf, type Globals } from './main';
import { execPlan, ProcessError, readLimits, readProcess, type ExecFlags } from './exec';

export interface ExecOpts extends ExecFlags {
  process?: string; detach: boolean; pidFile?: string; consoleSocket?: string; ignorePaused: boolean;
}

/** exec: the process runs in the container's namespaces and cgroup with no more than its rights;
 * its status (the foreground), or 0 once it runs (--detach: it is then the caller's subreaper's). */
export async function exec(g: Globals, id: string, o: ExecOpts): Promise<number> {
  const r = COMMANDS.readRecord(g, id);
  const status = statusOf(r);
  if (status === 'stopped') throw new RuntimeError('cannot exec in a stopped container');
  if (status === 'paused' && !o.ignorePaused) throw new RuntimeError('cannot exec in a paused container (use --ignore-paused to override)');
  let proc;
  try { proc = readProcess(o.process, r.bundle, o); } catch (e) { throw e instanceof ProcessError ? new RuntimeError(e.message) : e; }
  const tty = proc.terminal === true;
  if (tty && o.detach && !o.consoleSocket) throw new RuntimeError('cannot allocate tty if runc will detach without setting console socket');
  if ((!o.detach || !tty) && o.consoleSocket) throw new RuntimeError('cannot use console socket if runc will not detach or allocate tty');
  setOomScore(proc.oomScoreAdj);
  const host = await probe();
  const { savedRun } = await import('../engine/lifecycle');
  const saved = savedRun(host, r.sandbox);
  if (!saved) throw new RuntimeError(`container ${id} has no plan on record (${host.stateRoot}/${r.sandbox}); it cannot be joined`);
  let plan;
  try { plan = execPlan({ plan: saved.plan, pid: r.pid, process: proc, containerLimits: readLimits(r.pid), ownLimits: readLimits('self') }).plan; } catch (e) { throw e instanceof ProcessError ? new RuntimeError(e.message) : e; }
  // The hierarchies the container is in now: pause (freezer) and update may have added some on v1
  // since create, and a process that joined only the plan's would escape the next pause.
  plan = { ...plan, steps: plan.steps.map((s) => (s.kind === 'cgroup.attach' && host.cgroup.layout !== 'v2' ? { ...s, args: { ...s.args, controllers: host.cgroup.controllers.filter((c) => host.cgroup.mounts[c] && existsSync(join(host.cgroup.mounts[c]!, s.args.path))) } } : s)) };
  const size = (proc.consoleSize ?? {}) as { height?: number; width?: number };
  const consoleSocket = o.consoleSocket ? { path: resolve(o.consoleSocket), size: typeof size.height === 'number' && typeof size.width === 'number' ? { rows: size.height, cols: size.width } : undefined } : undefined;
  const { NativeEngine } = await import('../engine/native');
  const res = await new NativeEngine().exec(plan, () => undefined, {
    host, etc: `/proc/${r.pid}/root/etc`,
    // runtime-tools and containerd read the pid file as digits without a newline.
    runtime: { detach: o.detach, consoleSocket, onPid: (pid) => { if (o.pidFile) writeFileSync(resolve(o.pidFile), String(pid)); } },
  });
  if (res.failed) {
    const step = plan.steps.find((s) => s.id === res.failed!.step);
    const what = step?.kind === 'exec' ? `exec: ${JSON.stringify(plan.steps.find((s) => s.kind === 'exec')?.args.args[0] ?? '')}: ${res.failed.message}` : `step ${res.failed.step}${step ? ` (${step.title})` : ''}: ${res.failed.message}`;
    throw new RuntimeError(`exec failed: unable to start container process: ${what}`, res.exitCode);
  }
  return res.exitCode;
}

/** process.oomScoreAdj: the new process inherits this process's score, so it is set here first;
 * lowering it needs CAP_SYS_RESOURCE, and a score that cannot be had is an error. */
function setOomScore(v: unknown): void {
  if (typeof v !== 'number') return;
  const file = '/proc/self/oom_score_adj';
  if (Number(readFileSync(file, 'utf8').trim()) === v) return;
  try { writeFileSync(file, String(v)); } catch (e) {
    throw new RuntimeError(`process.oomScoreAdj ${v} cannot be set (${(e as NodeJS.ErrnoException).code}): lowering the score needs CAP_SYS_RESOURCE; leave it out, or at ${readFileSync(file, 'utf8').trim()}`);
  }
}

/** ps: the pids in the container's cgroup, as JSON, or as `ps`'s table (runc ps's ps options after the id). */
export async function ps(g: Globals, id: string, format: string, psArgs: string[]): Promise<number> {
  const r = COMMANDS.readRecord(g, id);
  if (format !== 'json' && format !== 'table') throw new RuntimeError(`invalid format option ${JSON.stringify(format)}`);
  const { cgroupPids } = await import('../engine/container-cgroup');
  const pids = statusOf(r) === 'stopped' ? [] : cgroupPids(await probe(), r.sandbox);
  if (format === 'json') { process.stdout.write(`${JSON.stringify(pids)}\n`); return 0; }
  const out = spawnSync('ps', psArgs.length ? psArgs : ['-ef'], { encoding: 'utf8' });
  if (out.status !== 0) throw new RuntimeError(`ps: ${out.stderr.trim() || `exit ${out.status}`}`);
  const [head = '', ...lines] = out.stdout.split('\n');
  const col = head.trim().split(/\s+/).indexOf('PID');
  if (col < 0) throw new RuntimeError('couldn\'t find PID field in ps output');
  const mine = new Set(pids);
  process.stdout.write([head, ...lines.filter((l) => mine.has(Number(l.trim().split(/\s+/)[col])))].join('\n') + '\n');
  return 0;
}

/** pause and resume: the cgroup freezer; state says `paused` while it is frozen. */
export async function pause(g: Globals, id: string, on: boolean): Promise<number> {
  const r = COMMANDS.readRecord(g, id);
  const status = statusOf(r);
  if (on && status !== 'running' && status !== 'created') throw new RuntimeError(status === 'paused' ? 'container already paused' : 'container not running');
  if (!on && status !== 'paused') throw new RuntimeError('container not paused');
  const { freeze, CgroupError } = await import('../engine/container-cgroup');
  try { await freeze(await probe(), r.sandbox, on); } catch (e) { throw e instanceof CgroupError ? new RuntimeError(e.message) : e; }
  return 0;
}

/** runc update's flags for one limit each, beside --resources (the runtime-spec's linux.resources). */
export interface UpdateFlags { resources?: string; memory?: string; memorySwap?: string; memoryReservation?: string; cpuQuota?: string; cpuPeriod?: string; cpuShare?: string; cpusetCpus?: string; cpusetMems?: string; pidsLimit?: string; blkioWeight?: string }

/** update: the limits written to its cgroup and read back. */
export async function update(g: Globals, id: string, f: UpdateFlags): Promise<number> {
  const r = COMMANDS.readRecord(g, id);
  if (statusOf(r) === 'stopped') throw new RuntimeError('container not running');
  const { updateResources, CgroupError } = await import('../engine/container-cgroup');
  type Res = Parameters<typeof updateResources>[2];
  let res: Res = {};
  if (f.resources !== undefined) {
    let text: string;
    try { text = readFileSync(f.resources === '-' ? 0 : f.resources, 'utf8'); } catch (e) { throw new RuntimeError(`open ${f.resources}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); }
    try { res = JSON.parse(text) as Res; } catch (e) { throw new RuntimeError(`decode resources: ${(e as Error).message}`); }
    if (!res || typeof res !== 'object' || Array.isArray(res)) throw new RuntimeError('decode resources: not a JSON object (linux.resources of the runtime-spec)');
  }
  const n = (v: string | undefined, what: string) => {
    if (v === undefined) return undefined;
    const m = /^(-?[0-9]+)([kmg]?)b?$/i.exec(v.trim());
    if (!m) throw new RuntimeError(`invalid value for ${what}: ${v}`);
    return Number(m[1]) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as Record<string, number>)[m[2]!.toLowerCase()]!;
  };
  const set = <K extends keyof Res>(k: K, v: NonNullable<Res[K]>) => { res[k] = { ...(res[k] ?? {}), ...Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined)) } as Res[K]; };
  set('memory', { limit: n(f.memory, '--memory'), swap: n(f.memorySwap, '--memory-swap'), reservation: n(f.memoryReservation, '--memory-reservation') });
  set('cpu', { quota: n(f.cpuQuota, '--cpu-quota'), period: n(f.cpuPeriod, '--cpu-period'), shares: n(f.cpuShare, '--cpu-share'), cpus: f.cpusetCpus, mems: f.cpusetMems });
  set('pids', { limit: n(f.pidsLimit, '--pids-limit') });
  set('blockIO', { weight: n(f.blkioWeight, '--blkio-weight') });
  try { updateResources(await probe(), r.sandbox, res); } catch (e) { throw e instanceof CgroupError ? new RuntimeError(e.message) : e; }
  return 0;
}
