// The lifecycle of sandboxes that run (or ran), behind the engine: list, find, stop, down, gc, their
// processes and logs, from the state that the engine and the supervisor keep under /run/sandbox
// (host/state.ts); down and gc replay the undo list the run recorded there (host/teardown.ts).
// Runs in the CLI process as root; the CLI only prints what these return.
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { HostFeatures, Plan } from '../plan/types';
import { addExecSession, exitCode, heldPorts, listedSandbox, listSandboxes, readSaved, readState, requestStop, sandboxCgroup, sandboxPids, type Listed, type SavedRun } from '../host/state';
import { orphanTables, reclaim } from '../host/teardown';
import { ownerAlive, procStat, readOwner } from '../host/lock';
import { removeTable } from '../host/network';
import { removeWall } from '../host/egress';
import { stopRecorded } from '../host/rootless-net';
import { listVolumes, readVolume, removeUnfinished, removeVolume, type VolumeInfo } from '../image/volumes';
import { stepsOf } from '../plan/steps';
import type { StepOf } from '../plan/types';
import { commandName, droppedByPid1, signalName, type StopNote } from './signals';

export { exitCode, heldPorts, listSandboxes, type Listed };

/** A listed sandbox's status, as ps and the library's list() say it: starting (being set up: no
 * state.json yet), running, exited (a detached one whose command ended, kept until removed), or
 * dead (what a crashed run left: gc removes it). */
export function statusOf(r: Listed): 'starting' | 'running' | 'exited' | 'dead' {
  return r.running ? (r.state ? 'running' : 'starting') : r.exit !== undefined ? 'exited' : 'dead';
}

export class LifecycleError extends Error { constructor(message: string, readonly code: number) { super(message); } }

export function findSandbox(host: HostFeatures, name: string): Listed {
  const row = listedSandbox(host, name);
  if (!row) throw new LifecycleError(`no sandbox named ${name} (sandbox ps -a lists them)`, 1);
  return row;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * stop_signal, then SIGKILL after the grace period, as docker stop; resolves once nothing of it
 * runs, with whether it was running and had to be killed. A PID 1 that cannot get the stop signal
 * (it neither handles nor waits for it) is killed at once, since the wait could only end in that
 * kill; `say` hears of either kill, and why.
 */
export async function stopSandbox(host: HostFeatures, name: string, graceMs?: number, say: (n: StopNote) => void = () => undefined): Promise<{ running: boolean; killed: boolean }> {
  const row = findSandbox(host, name);
  if (!row.running || !row.state) return { running: false, killed: false };
  const state = row.state;
  // Read again at each look: after a restart, the current run's PID 1 (and, rootless without a cgroup, its pid namespace).
  const cgroup = sandboxCgroup(host, name);
  const cg = { pids: () => sandboxPids(host, name, readState(join(host.stateRoot, name)) ?? state, cgroup) };
  const pid = state.pid;
  const signal = row.state.stopSignal;
  const grace = graceMs ?? row.state.stopGraceMs;
  // First the word that the restart policy is over, which the CLI or the supervisor reads when
  // the command ends (or during a restart's delay), so that it does not run it again.
  try { requestStop(join(host.stateRoot, name)); } catch { /* removed meanwhile */ }
  // Read before sending: a PID 1 gets from outside its pid namespace only the signals it handles;
  // one it lets drop never arrives, so the grace period could only end in the kill: it comes now.
  // Reduced mode (no pid namespace): the command is no PID 1, and gets the signal as any process.
  const session = state.session !== undefined;
  const dropped = session ? undefined : droppedByPid1(pid, signal);
  const command = dropped ? commandName(pid) : undefined;
  if (!dropped) try { process.kill(pid, signal); } catch { /* gone, or between two runs */ }
  // A restart that was already under way when the word was written has a new PID 1: it gets the
  // signal too (the `pid` file names the current run's).
  const current = () => readState(join(host.stateRoot, name))?.pid ?? pid;
  let signalled = pid;
  // Short polls: a sandbox that ends at once should not cost a long sleep (no pidfd in Node).
  for (const until = Date.now() + (dropped ? 0 : grace); Date.now() < until && cg.pids().length; ) {
    const now = current();
    if (now !== signalled) { signalled = now; try { process.kill(now, signal); } catch { /* gone */ } }
    // Reduced mode: the command has ended; what it left in its session is killed now, as the
    // kernel kills a pid namespace's processes with its PID 1.
    if (session && !alive(now)) break;
    await sleep(2);
  }
  // PID 1 of its pid namespace: killing it kills every process in the sandbox.
  // (Reduced mode: the command's leftovers too, without a word once the command itself has ended.)
  const left = cg.pids();
  const killed = left.length > 0 && (!session || alive(current()));
  if (session) for (const p of left) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
  if (killed || dropped) try { process.kill(current(), 'SIGKILL'); } catch { /* gone */ }
  if (dropped) say({ kind: 'dropped', name, signal: signalName(signal), command: command ?? '?', disposition: dropped, graceMs: grace });
  else if (killed) say({ kind: 'killed', name, signal: signalName(signal), graceMs: grace });
  for (const until = Date.now() + 5000; Date.now() < until && cg.pids().length; ) await sleep(2);
  // The supervisor releases the ports and writes the exit status as it leaves.
  const sup = row.state.supervisorPid;
  for (const until = Date.now() + 2000; sup && Date.now() < until && alive(sup); ) await sleep(2);
  // A foreground sandbox's CLI does the same as it ends (it owns the state folder until then).
  const owner = join(host.stateRoot, name, 'owner');
  for (const until = Date.now() + 5000; !row.state.detached && Date.now() < until && ownerAlive(readOwner(owner)); ) await sleep(5);
  // Rootless, pasta or slirp4netns holds the published ports on the host; its watcher ends it once
  // the supervisor is gone, on a poll. stop ends it now, so that the ports are free as it returns.
  if (host.rootless) await stopRecorded(join(host.stateRoot, name));
  return { running: true, killed };
}

/** Whether pid runs: a zombie has finished (the supervisor's parent is the host's init once its
 * CLI exited, and some inits reap late). */
function alive(pid: number): boolean {
  const state = procStat(pid)?.[0];
  return state !== undefined && state !== 'Z';
}

export interface LogEntry { time: string; stream: 'stdout' | 'stderr'; text: string }

/** The whole lines of a detached sandbox's log from byte `from` (the last `tail` of them), and where the next read starts. */
export function readLog(path: string, from: number, tail?: number): { entries: LogEntry[]; next: number } {
  let fd: number;
  try { fd = openSync(path, 'r'); } catch { return { entries: [], next: from }; }
  const size = statSync(path).size;
  const buf = Buffer.alloc(Math.max(0, size - from));
  readSync(fd, buf, 0, buf.length, from);
  closeSync(fd);
  const text = buf.toString('utf8');
  const end = text.lastIndexOf('\n') + 1;
  let lines = text.slice(0, end).split('\n').filter(Boolean);
  if (tail !== undefined) lines = lines.slice(Math.max(0, lines.length - tail));
  const entries: LogEntry[] = [];
  for (const l of lines) {
    const m = /^(\S+) (stdout|stderr) (.*)$/s.exec(l);
    if (m) entries.push({ time: m[1]!, stream: m[2] === 'stderr' ? 'stderr' : 'stdout', text: m[3]! });
  }
  return { entries, next: from + Buffer.byteLength(text.slice(0, end)) };
}

/** The plan `up` applied and what it applied, kept in the state folder once the command ran. */
export function savedRun(host: HostFeatures, name: string): SavedRun | undefined {
  return readSaved(join(host.stateRoot, name));
}

/** Reduced mode: what `sandbox exec` runs in a sandbox leads a session of its own (host/state.ts,
 * addExecSession), recorded by the exec's CLI, as the caller, before it runs: `stop` and `down` end it too. */
export function recordExec(host: HostFeatures, name: string, pid: number): void {
  addExecSession(join(host.stateRoot, name), pid);
}

/** One process of a sandbox, from /proc: its PID on the host and in the sandbox's pid namespace. */
export interface Proc { hostPid: number; pid: number | null; ppid: number | null; uid: number; state: string; command: string }

export function processes(host: HostFeatures, name: string): Proc[] {
  const out: Proc[] = [];
  const row = listedSandbox(host, name);
  for (const hostPid of (row?.pids ?? []).sort((a, b) => a - b)) {
    let status: string;
    let cmd: string;
    try { status = readFileSync(`/proc/${hostPid}/status`, 'utf8'); cmd = readFileSync(`/proc/${hostPid}/cmdline`, 'utf8'); } catch { continue; }
    const field = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(status)?.[1]?.trim() ?? '';
    const nspid = field('NSpid').split(/\s+/).map(Number);
    // NSpid lists the PID in each pid namespace from the host's down; one entry means the process
    // is not in the sandbox's (an exec relay, which waits outside it).
    const inside = nspid.length > 1 ? nspid[nspid.length - 1]! : null;
    let ppid: number | null = null;
    const hostPpid = Number(field('PPid'));
    try { const p = readFileSync(`/proc/${hostPpid}/status`, 'utf8'); const n = /^NSpid:\s*(.*)$/m.exec(p)?.[1]?.trim().split(/\s+/).map(Number) ?? []; ppid = n.length > 1 && inside !== null ? n[n.length - 1]! : inside === 1 ? 0 : null; } catch { ppid = inside === 1 ? 0 : null; }
    // libsbx names the helper it leaves without exec, the exec relay (sandbox-init shows its own
    // command line: `sandbox-init -- CMD`).
    const helper = field('Name') === 'sbx-exec-relay';
    out.push({ hostPid, pid: inside, ppid, uid: Number(field('Uid').split(/\s+/)[0]), state: field('State').split(' ')[0] ?? '?', command: helper ? `[${field('Name')}]` : cmd.split('\0').filter(Boolean).join(' ') || `[${field('Name')}]` });
  }
  return out;
}


/** Stops a sandbox, then removes everything it set up on the host; what it removed. With
 * `volumes` (down -v), its volumes too, named and anonymous, but never an external one nor one
 * that another running sandbox uses; with 'anonymous' (what run --rm removes, as docker run --rm)
 * only its anonymous ones. */
export async function downSandbox(host: HostFeatures, name: string, graceMs?: number, say?: (n: StopNote) => void, opts: { volumes?: boolean | 'anonymous'; handover?: boolean } = {}): Promise<string[]> {
  findSandbox(host, name);
  // For the supervisor of run -d --rm, whose command may end before the CLI that started it has
  // written its state and let go of it (the `owner` file): reclaim leaves alone what a live CLI
  // owns, so the removal waits for that CLI first (which ends as soon as it has let go).
  const owner = join(host.stateRoot, name, 'owner');
  for (const until = Date.now() + 60_000; opts.handover && Date.now() < until && ownerAlive(readOwner(owner)); ) await sleep(10);
  // Read before the state goes: which volumes its plan made ready.
  const vols = opts.volumes ? stepsOf(savedRun(host, name)?.plan.steps ?? [], 'volume.create').filter((s) => !s.args.external && (opts.volumes === true || s.args.anonymous)) : [];
  await stopSandbox(host, name, graceMs, say);
  if (findSandbox(host, name).pids.length) throw new LifecycleError(`${name} would not stop; nothing was removed`, 1);
  const removed = await reclaim(host, name);
  return [...removed, ...removeVolumesOf(host, name, vols)];
}

/** Removes the volumes of a sandbox's plan, except one that another running sandbox uses; what it
 * removed and what it kept, and why. */
function removeVolumesOf(host: HostFeatures, name: string, vols: readonly StepOf<'volume.create'>[]): string[] {
  // Which sandboxes use which volume reads every sandbox's plan: only when there is one to remove.
  if (!vols.length) return [];
  const users = volumeUsers(host);
  const out: string[] = [];
  for (const v of vols) {
    const others = (users.get(v.args.name) ?? []).filter((u) => u.running && u.sandbox !== name);
    if (others.length) { out.push(`volume ${v.args.name} kept: ${others.map((u) => u.sandbox).join(', ')} uses it`); continue; }
    if (removeVolume(v.args.name, dirname(v.args.path))) out.push(`${v.args.anonymous ? 'anonymous ' : ''}volume ${v.args.name}`);
  }
  return out;
}

/** After a foreground run --rm: the anonymous volumes its plan made, as docker run --rm removes
 * them (named ones stay); one that another running sandbox uses is kept. What it removed. */
export function removeAnonymousVolumes(host: HostFeatures, plan: Plan): string[] {
  return removeVolumesOf(host, plan.name, stepsOf(plan.steps, 'volume.create').filter((v) => !v.args.external && v.args.anonymous));
}

/** Which sandboxes use each volume, as their saved plans say (a sandbox still starting has none yet). */
export function volumeUsers(host: HostFeatures): Map<string, { sandbox: string; running: boolean }[]> {
  const out = new Map<string, { sandbox: string; running: boolean }[]>();
  for (const row of listSandboxes(host)) {
    for (const s of stepsOf(savedRun(host, row.name)?.plan.steps ?? [], 'volume.create')) {
      out.set(s.args.name, [...(out.get(s.args.name) ?? []), { sandbox: row.name, running: row.running }]);
    }
  }
  return out;
}

export interface VolumeRow extends VolumeInfo { usedBy: { sandbox: string; running: boolean }[] }

export function volumes(host: HostFeatures): VolumeRow[] {
  const users = volumeUsers(host);
  return listVolumes(host.volumes.root).map((v) => ({ ...v, usedBy: users.get(v.name) ?? [] }));
}

export function inspectVolume(host: HostFeatures, name: string): VolumeRow {
  const v = readVolume(name, host.volumes.root);
  if (!v) throw new LifecycleError(`no volume named ${name} (sandbox volume ls lists them)`, 1);
  return { ...v, usedBy: volumeUsers(host).get(name) ?? [] };
}

/** Removes volumes by name; refuses (before removing any) one that a running sandbox uses. */
export function removeVolumes(host: HostFeatures, names: string[]): string[] {
  const users = volumeUsers(host);
  for (const n of names) {
    if (!readVolume(n, host.volumes.root)) throw new LifecycleError(`no volume named ${n} (sandbox volume ls lists them); nothing was removed`, 1);
    const running = (users.get(n) ?? []).filter((u) => u.running).map((u) => u.sandbox);
    if (running.length) throw new LifecycleError(`the volume ${n} is in use by the running sandbox ${running.join(', ')}; stop it first (sandbox down ${running[0]}); nothing was removed`, 1);
  }
  for (const n of names) removeVolume(n, host.volumes.root);
  return names;
}

/** Volumes no sandbox uses (with its state kept: running, or exited and detached): anonymous ones,
 * or every one with `all`, as docker volume prune; and what crashed volume makings left. */
export function pruneVolumes(host: HostFeatures, all: boolean): string[] {
  const users = volumeUsers(host);
  const removed = removeUnfinished(host.volumes.root);
  for (const v of listVolumes(host.volumes.root)) {
    if ((users.get(v.name) ?? []).length || (!all && !v.anonymous)) continue;
    removeVolume(v.name, host.volumes.root);
    removed.push(`${v.anonymous ? 'anonymous ' : ''}volume ${v.name}`);
  }
  return removed;
}

/** Removes what crashed runs left: state folders, cgroups, interfaces and nftables tables with no live process. */
export async function gc(host: HostFeatures): Promise<string[]> {
  const removed: string[] = [];
  // Exited detached sandboxes are kept for their logs until `down`; only crashed runs go.
  for (const r of listSandboxes(host)) if (!r.running && r.exit === undefined) removed.push(...(await reclaim(host, r.name)).map((x) => `${r.name}: ${x}`));
  for (const t of orphanTables(host)) {
    if (t.startsWith('inet ')) removeWall(t.slice(5)); else removeTable(t);
    removed.push(`nftables table ${t} (no state folder)`);
  }
  // A volume whose making was cut short (the CLI killed mid-seed) is a hidden folder no run uses.
  removed.push(...removeUnfinished(host.volumes.root));
  return removed;
}

/** Where a detached sandbox's supervisor writes what it prints. */
export function logPath(host: HostFeatures, name: string): string { return join(host.stateRoot, name, 'log'); }
