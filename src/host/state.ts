// Per-sandbox state on the host: /run/sandbox/NAME (state.json, the undo list, the address lease,
// the network files, the root mount point). Read by `ps`, stop and the preflight; whether a
// sandbox lives is read from the cgroup its undo list records (a state folder with no live process
// and no live owner is what a crashed run left: host/teardown.ts removes it). Runs in the CLI
// process as root, or (rootless) as the caller.
import { appendFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { HostFeatures, Plan, Verdict } from '../plan/types';
import { Cgroup } from './cgroup';
import { ownerAlive, readOwner } from './lock';
import { readUndo, recordedCgroup, UNDO_FILE } from './undo';

export interface SandboxState {
  name: string;
  /** The command's host PID (PID 1 inside); after a restart, the current run's (from the `pid` file). */
  pid: number;
  command: string[];
  file: string;
  digest: string;
  startedAt: string;
  ports: { hostIp: string; hostPort: number; containerPort: number; protocol: string }[];
  /** Detached: sbx-supervise is the sandbox's parent, and `down` removes what it set up. */
  detached?: boolean;
  supervisorPid?: number;
  stopSignal: number;
  stopGraceMs: number;
  /** The first run's pid namespace (readlink of /proc/PID/ns/pid), which tracks a rootless sandbox's processes where it has no cgroup (a restart's is read from its PID 1). */
  pidNs?: string;
  /** Reduced mode (no pid namespace): the session the child made with setsid (its id is the first
   * run's PID 1), which tracks the sandbox's processes where it has no cgroup: all of them but one
   * that makes a session of its own (the table says the command sees the host's processes). */
  session?: number;
  /** How many times the restart policy has run the command again; absent means none (`ps` shows 0). */
  restarts?: number;
}

/** Files the engine writes in a state folder; removed with it. */
export const STATE_FILES = ['owner', 'state.json', 'plan.json', 'ip', 'hosts', 'resolv.conf', 'log', 'exit', '.exit.tmp',
  // The current run's PID 1 (written at each restart), and stop's word that the policy is over.
  'pid', '.pid.tmp', 'stopping',
  // Reduced mode: the sessions `sandbox exec` started (addExecSession).
  'sessions',
  // A rootless network's record and files (engine/rootless-net.ts removes them when it stops the tool).
  'usernet.json', '.usernet.json.tmp', 'netns', 'pasta.pid', 'slirp4netns.sock', 'slirp4netns.log',
  // sbx-egress's record, policy, log, status and denials (host/egress.ts, EGRESS-CONTRACT 9).
  'egress.json', '.egress.json.tmp', 'egress.policy', 'egress.log', 'egress.status', 'egress.status.tmp', 'denials.jsonl', 'denials.1.jsonl',
  // The undo list of what the run changed on the host (host/undo.ts).
  UNDO_FILE, `.${UNDO_FILE}.tmp`];

export function writeState(dir: string, s: SandboxState): void {
  // Written whole, then renamed: a reader never sees half a file.
  const tmp = join(dir, `.state.json.${process.pid}`);
  writeFileSync(tmp, JSON.stringify(s, null, 2) + '\n');
  renameSync(tmp, join(dir, 'state.json'));
}

/** What `up` keeps beside state.json once the command runs: the plan it applied, each step's
 * time, the leased address and the resolved ids. Read by exec, inspect and image prune. */
export interface SavedRun { plan: Plan; applied: { id: string; ms?: number }[]; address: string | null; ids: { uid: number; gid: number; groups: number[] }; attestation?: Verdict[] }

export function writeSaved(dir: string, s: SavedRun): void {
  writeFileSync(join(dir, 'plan.json'), JSON.stringify(s) + '\n');
}

/** The saved run of a state folder, or undefined while it starts (or after a crash before it ran). */
export function readSaved(dir: string): SavedRun | undefined {
  try { return JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as SavedRun; } catch { return undefined; }
}

/** A sandbox's state.json, or undefined while it starts (or after a crash before it ran); its pid
 * is the current run's, which whoever restarts the command (the CLI, or sbx-supervise) writes in
 * the `pid` file. */
export function readState(dir: string): SandboxState | undefined {
  let s: SandboxState;
  try { s = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as SandboxState; } catch { return undefined; }
  try {
    const [pid, restarts] = readFileSync(join(dir, 'pid'), 'utf8').trim().split(' ').map(Number);
    if (pid! > 0) s.pid = pid!;
    if (restarts! > 0) s.restarts = restarts;
  } catch { /* the first run's */ }
  return s;
}

/** The current run's PID 1 and the restarts so far ("PID RESTARTS", as sbx-supervise writes it), for readState: written whole, then renamed. */
export function writePid(dir: string, pid: number, restarts: number): void {
  const tmp = join(dir, '.pid.tmp');
  writeFileSync(tmp, `${pid} ${restarts}\n`);
  renameSync(tmp, join(dir, 'pid'));
}

/** `sandbox stop` asked this sandbox to stop: its restart policy is over (sbx-supervise reads the same file). */
export function stopRequested(dir: string): boolean { return existsSync(join(dir, 'stopping')); }
export function requestStop(dir: string): void { writeFileSync(join(dir, 'stopping'), ''); }

/** A sandbox's cgroup, as its undo list records it (the run records it before making it): the
 * empty path when it has none (rootless without a delegated subtree, or not made yet). */
export function sandboxCgroup(host: HostFeatures, name: string): Cgroup {
  return new Cgroup(host.cgroup, recordedCgroup(readUndo(join(host.stateRoot, name))));
}

/** The processes of a sandbox: its cgroup's; for a rootless sandbox without one, those in the pid
 * namespace that state.json names (a process of another user's namespace is never matched: its
 * /proc/PID/ns links cannot be read). `cg`: its cgroup, for a caller that asks again and again. */
export function sandboxPids(host: HostFeatures, name: string, state?: SandboxState, cg = sandboxCgroup(host, name)): number[] {
  if (cg.path) return cg.pids();
  if (state?.session !== undefined) return sessionPids(new Set([state.session, ...execSessions(join(host.stateRoot, name))]));
  if (!state?.pidNs) return state && alive(state.pid) ? [state.pid] : [];
  // A restart's pid namespace is new: the current PID 1's, while it runs.
  let ns = state.pidNs;
  try { ns = readlinkSync(`/proc/${state.pid}/ns/pid`); } catch { /* ended: the recorded one */ }
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (p.charCodeAt(0) > 57) continue;
    try { if (readlinkSync(`/proc/${p}/ns/pid`) === ns) out.push(Number(p)); } catch { /* gone, or not ours */ }
  }
  return out;
}

/** The fields of /proc/PID/stat from the third (the state) on, after the command's parentheses; undefined once it is gone. */
function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch { return undefined; }
}

/** The processes of these sessions (the sixth field of /proc/PID/stat), in one pass over /proc. */
function sessionPids(sids: ReadonlySet<number>): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (p.charCodeAt(0) > 57) continue;
    if (sids.has(Number(statFields(p)?.[3]))) out.push(Number(p));
  }
  return out;
}

/**
 * Reduced mode: `sandbox exec` runs its command in a session of its own (it leads it, so that it
 * can own a terminal), out of the sandbox's, which tracks the sandbox's processes: the CLI of the
 * exec records it here, as the caller, before the command runs, so that `stop` and `down` end it
 * and what it starts. One "SID STARTTIME" a line: the start time tells a recorded leader from a
 * later process that got its pid (the kernel gives a session's number to no other process while
 * one of the session lives, so a leader gone with its pid reused means the session is over).
 */
export function addExecSession(dir: string, pid: number): void {
  appendFileSync(join(dir, 'sessions'), `${pid} ${statFields(pid)?.[19] ?? 0}\n`);
}

function execSessions(dir: string): number[] {
  let text = '';
  try { text = readFileSync(join(dir, 'sessions'), 'utf8'); } catch { return []; }
  return text.split('\n').filter(Boolean).map((l) => l.split(' ')).filter(([sid, start]) => {
    const now = statFields(sid!)?.[19];
    return now === undefined || now === start;
  }).map(([sid]) => Number(sid));
}

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

/** A rootless caller's state root: made 0700, and refused unless the caller owns every folder of
 * it that the engine made (another user could have made /tmp/sandbox-UID first, to watch or plant). */
export function ensureStateRoot(host: HostFeatures): void {
  if (!host.rootless) return;
  const root = host.stateRoot;
  const mine = (d: string) => {
    const st = lstatSync(d);
    if (!st.isDirectory() || st.uid !== host.rootless!.uid || (st.mode & 0o077) !== 0) {
      throw new Error(`${d} is ${st.isSymbolicLink() ? 'a symbolic link' : !st.isDirectory() ? 'not a folder' : st.uid !== host.rootless!.uid ? `owned by uid ${st.uid}, not you` : `open to others (mode ${(st.mode & 0o777).toString(8)})`}, so sandbox will not keep its state there; remove it, or set XDG_RUNTIME_DIR to a folder of yours (mode 700)`);
    }
  };
  const parent = dirname(root);
  if (!existsSync(parent) && parent.startsWith('/tmp/sandbox-')) mkdirSync(parent, { mode: 0o700 });
  if (parent.startsWith('/tmp/sandbox-')) mine(parent);
  if (!existsSync(root)) mkdirSync(root, { mode: 0o700 });
  mine(root);
}

export interface Listed {
  name: string;
  running: boolean;
  pids: number[];
  state?: SandboxState;
  /** The command's wait status, written by the supervisor of a detached sandbox when it exited. */
  exit?: number;
}

/** A wait status as an exit code: the code, or 128 + the signal. */
export function exitCode(status: number): number {
  return (status & 0x7f) === 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
}

export function listSandboxes(host: HostFeatures): Listed[] {
  let names: string[] = [];
  try { names = readdirSync(host.stateRoot).filter((n) => !n.startsWith('.')); } catch { return []; }
  return names.sort().map((name) => listed(host, name));
}

/** One sandbox's row as listSandboxes gives it, read from its folder alone (what stop, down and
 * exec need: the other sandboxes' cgroups and files are not read); undefined when there is none. */
export function listedSandbox(host: HostFeatures, name: string): Listed | undefined {
  // A name is an entry of the state root: never a path out of it, nor a hidden entry.
  if (!name || name.startsWith('.') || name.includes('/') || !existsSync(join(host.stateRoot, name))) return undefined;
  return listed(host, name);
}

function listed(host: HostFeatures, name: string): Listed {
  const state = readState(join(host.stateRoot, name));
  const pids = sandboxPids(host, name, state);
  let exit: number | undefined;
  // An exit status counts only for a command that ran (state.json is written then): a supervisor
  // whose CLI died during setup also writes one, and that run is a crashed one for gc.
  if (state) try { exit = Number(readFileSync(join(host.stateRoot, name, 'exit'), 'utf8').trim()); } catch { /* running, or not detached */ }
  // A sandbox being set up has no process in its cgroup yet, but a live owner (its CLI); a
  // detached one between two runs of its restart policy has none either, but a live supervisor
  // that has not written its exit status (and still holds its ports).
  const supervised = exit === undefined && state?.supervisorPid !== undefined && supervisorAlive(state.supervisorPid);
  return { name, running: pids.length > 0 || supervised || ownerAlive(readOwner(join(host.stateRoot, name, 'owner'))), pids, state, exit };
}

/** Whether pid is a live sbx-supervise (not a zombie, not a later process given its PID). */
function supervisorAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) === 'sbx-supervise' && stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch { return false; }
}

/** The host ports a sandbox holds: its published ones while it runs (a restart keeps them), none
 * once its command has ended for good (they were released then), as `ps` and the preflight of
 * another sandbox count them. */
export function heldPorts(row: Pick<Listed, 'running' | 'state'>): SandboxState['ports'] {
  return row.running && row.state ? row.state.ports : [];
}

/** The lock two CLIs take before they create, or remove, the state of one name. */
export function nameLock(host: HostFeatures, name: string): string { return join(host.stateRoot, `.${name}.lock`); }
