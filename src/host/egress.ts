// sbx-egress, the sandbox's resolver and relay (EGRESS-CONTRACT 2), from the CLI's side, on the
// host as the caller (root, or without root the user who owns the sandbox's user namespace): started with the policy on its stdin, awaited until it says READY, recorded in the state
// folder (egress.json: PID and start time) before anything else can fail, and stopped by that
// record (SIGTERM, then SIGKILL after 2 s) by a failed start, `down` and gc. It lives in the host's
// namespaces and ends by itself when its holder (this CLI in the foreground, sbx-supervise for a
// detached sandbox) ends. Also the wall's table: which group and mark a run takes, and its removal.
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gone, procOf, running, signal, type Proc } from './rootless-net';

/** node:child_process, loaded when a sandbox with egress starts or is taken down. */
const childProcess = () => require('node:child_process') as typeof import('node:child_process');

export const EGRESS_RECORD = 'egress.json';
/** The files sbx-egress and the CLI keep in the state folder (contract 9). */
export const EGRESS_FILES = [EGRESS_RECORD, `.${EGRESS_RECORD}.tmp`, 'egress.policy', 'egress.log', 'egress.status', 'egress.status.tmp', 'denials.jsonl', 'denials.1.jsonl'];
/** The sbx-egress processes this CLI started, by PID: stopping one waits until this process has
 * reaped it, so that a foreground run leaves no zombie behind for init to collect. */
const started = new Map<number, import('node:child_process').ChildProcess>();

/** How long sbx-egress may take to bind its sockets and load its table before the start fails. */
const READY_TIMEOUT_MS = 5000;

/** The record of a run's sbx-egress (contract 2: `{pid, start}`, as usernet.json's processes):
 * the process once started (its start time, field 22 of /proc/PID/stat, tells it from a later one
 * given the same PID), and what the run gave it. */
export interface EgressRecord {
  pid?: number;
  start?: string;
  group: number;
  mark: number;
  /** 32 hex digits: what the resolver answers to CH TXT id.sandbox. */
  nonce: string;
  /** sha256 of the exact policy text, which egress.status must report. */
  digest: string;
  /** The relay's port inside the sandbox, once it said READY. */
  relay?: number;
}

export function writeEgressRecord(stateDir: string, r: EgressRecord): void {
  const tmp = join(stateDir, `.${EGRESS_RECORD}.tmp`);
  writeFileSync(tmp, JSON.stringify(r) + '\n', { mode: 0o600 });
  renameSync(tmp, join(stateDir, EGRESS_RECORD));
}

export function readEgressRecord(stateDir: string): EgressRecord | undefined {
  try { return JSON.parse(readFileSync(join(stateDir, EGRESS_RECORD), 'utf8')) as EgressRecord; } catch { return undefined; }
}

/** The NFLOG groups bound in the caller's network namespace, from the text of
 * /proc/net/netfilter/nfnetlink_log (one instance a line, its group number first). */
export function parseNflogGroups(text: string): number[] {
  return text.split('\n').map((l) => /^\s*(\d+)\s/.exec(l)?.[1]).filter((g): g is string => g !== undefined).map(Number);
}

/** The NFLOG groups some process holds on the host (another sandbox's sbx-egress, or a tool such as
 * ulogd): the kernel lets one socket bind a group, so sbx-egress would fail on any of them. */
function nflogGroupsBound(): number[] {
  try { return parseNflogGroups(readFileSync('/proc/net/netfilter/nfnetlink_log', 'utf8')); } catch { return []; }
}

/** The groups and marks other sandboxes' records hold, and the NFLOG groups any process has bound
 * on the host (a run picks one none of them has). */
export function takenEgressIds(stateRoot: string, self: string): { groups: number[]; marks: number[] } {
  const out = { groups: nflogGroupsBound(), marks: [] as number[] };
  let names: string[] = [];
  try { names = readdirSync(stateRoot).filter((n) => !n.startsWith('.')); } catch { /* none */ }
  for (const n of names) {
    const dir = join(stateRoot, n);
    if (dir === self) continue;
    const r = readEgressRecord(dir);
    if (r) { out.groups.push(r.group); out.marks.push(r.mark); }
  }
  return out;
}

export interface EgressStart {
  binary: string;
  stateDir: string;
  /** The process whose end ends sbx-egress. */
  holder: number;
  /** The sandbox's network namespace, /proc/PID/ns/net of its child. */
  netns: string;
  /** Without root: the sandbox's user namespace, which sbx-egress's helper joins first. */
  userns?: string;
  policy: string;
  /** The record so far (group, mark, nonce, digest): written with the PID as soon as it runs. */
  record: EgressRecord;
}

/** Starts sbx-egress and waits for its READY line; the record names it from its first moment, so that a failure here or later stops it by that record. */
export async function startEgress(o: EgressStart): Promise<EgressRecord> {
  writeFileSync(join(o.stateDir, 'egress.policy'), o.policy, { mode: 0o600 });
  const child = childProcess().spawn(o.binary, ['--state', o.stateDir, '--holder', String(o.holder), '--netns', o.netns, ...(o.userns ? ['--userns', o.userns] : [])], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const spawned = await new Promise<Error | undefined>((r) => { child.once('spawn', () => r(undefined)); child.once('error', (e) => r(e)); });
  if (spawned) throw new Error(`sbx-egress could not be started (${(spawned as NodeJS.ErrnoException).code ?? spawned.message}): ${o.binary}; rebuild with \`node scripts/build.mjs\``);
  started.set(child.pid!, child);
  child.once('exit', () => started.delete(child.pid!));
  const proc = procOf(child.pid!);
  const record: EgressRecord = { ...o.record, ...(proc ? { pid: proc.pid, start: proc.start } : {}) };
  writeEgressRecord(o.stateDir, record);
  child.stdin!.on('error', () => undefined);
  child.stdin!.end(o.policy);
  try {
    const relay = await readyLine(child);
    const done = { ...record, relay };
    writeEgressRecord(o.stateDir, done);
    return done;
  } finally {
    child.stdout!.destroy(); child.stderr!.destroy();
    child.unref();
  }
}

/** READY relay=<port>, or the ERROR line (or its exit, or the timeout) as the failure. */
function readyLine(child: import('node:child_process').ChildProcess): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let out = '', err = '';
    const timer = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } reject(new Error(`sbx-egress did not say READY within ${READY_TIMEOUT_MS / 1000} s${err ? `: ${err.trim()}` : ''}`)); }, READY_TIMEOUT_MS);
    const settle = () => {
      const line = `${out}\n${err}`.split('\n').map((l) => l.trim()).find((l) => /^(READY|ERROR)\b/.test(l));
      if (!line) return;
      clearTimeout(timer);
      const m = /^READY relay=(\d+)/.exec(line);
      if (m) resolve(Number(m[1])); else reject(new Error(`sbx-egress: ${line.replace(/^ERROR\s*/, '')}`));
    };
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); settle(); });
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); settle(); });
    child.once('exit', (code, sig) => {
      setImmediate(() => { clearTimeout(timer); reject(new Error(`sbx-egress ended before it was ready (${sig ?? `exit ${code}`})${err.trim() ? `: ${err.trim()}` : ''}`)); });
    });
  });
}

/** Whether a sandbox's recorded sbx-egress still runs (by PID and start time); undefined when
 * there is no record of one with a start time (no policy, or it was never started). */
export function egressRunning(stateDir: string): boolean | undefined {
  const r = readEgressRecord(stateDir);
  return r?.pid && r.start ? running({ pid: r.pid, start: r.start }) : undefined;
}

/** Stops a recorded sbx-egress (SIGTERM, SIGKILL after 2 s), by PID and start time, never by name, and drops its record; true if it was running. */
export async function stopEgress(stateDir: string): Promise<boolean> {
  const r = readEgressRecord(stateDir);
  if (!r) return false;
  const proc: Proc | undefined = r.pid && r.start ? { pid: r.pid, start: r.start } : undefined;
  const alive = !!proc && running(proc);
  if (proc && alive) {
    signal(proc, 'SIGTERM');
    if (!(await gone(proc, 2000))) { signal(proc, 'SIGKILL'); await gone(proc, 1000); }
  }
  const mine = r.pid ? started.get(r.pid) : undefined;
  if (mine && mine.exitCode === null && mine.signalCode === null) {
    await new Promise<void>((resolve) => { const t = setTimeout(resolve, 1000); mine.once('exit', () => { clearTimeout(t); resolve(); }); });
  }
  rmSync(join(stateDir, EGRESS_RECORD), { force: true });
  return alive;
}

/** Deletes the wall's inet table; true if it was there. */
export function removeWall(table: string): boolean {
  try { childProcess().execFileSync('nft', ['delete', 'table', 'inet', table], { stdio: 'ignore' }); return true; } catch { return false; }
}

/** `nft -j list table inet NAME`, on the host or (netns: /proc/PID/ns/net) in a sandbox's network
 * namespace, parsed; a failure is said, for the attestation to report. userns: without root, the
 * sandbox's user namespace, joined first (the caller owns it; in it nft has CAP_NET_ADMIN over S). */
export function listTableJson(name: string, netns?: string, userns?: string): Promise<unknown> {
  const enter = [...(userns ? [`--user=${userns}`, '--preserve-credentials'] : []), `--net=${netns}`];
  const [file, args] = netns ? ['nsenter', [...enter, '--', 'nft', '-j', 'list', 'table', 'inet', name]] as const : ['nft', ['-j', 'list', 'table', 'inet', name]] as const;
  return new Promise((resolve, reject) => childProcess().execFile(file, [...args], { encoding: 'utf8', timeout: 5000 }, (e, out, err) => {
    if (e) return reject(new Error(`${netns ? 'nsenter … ' : ''}nft -j list table inet ${name} failed: ${(err || e.message).trim().split('\n')[0]}`));
    try { resolve(JSON.parse(out)); } catch { reject(new Error(`nft -j list table inet ${name} printed no JSON`)); }
  }));
}

/**
 * Without root, IPv6 off in the sandbox's network namespace on every interface but lo, and for any
 * made later (`default`): the wall inside is IPv4's, and the kernel gives eth0 a link-local address
 * as soon as it is up, even when pasta runs with -4. lo keeps ::1, as with root (only eth0 is
 * turned off there): the sandbox's own loopback always works, and the wall lets lo by. As the
 * caller, through nsenter into the sandbox's user namespace (which the caller owns, so that it is
 * root there over the namespace's sysctls); /proc/sys/net is the writer's network namespace's.
 */
export function ipv6OffInside(pid: number): void {
  const script = 'for f in /proc/sys/net/ipv6/conf/*/disable_ipv6; do case "$f" in */conf/lo/*|*/conf/all/*) ;; *) echo 1 > "$f" || exit 1;; esac; done';
  try {
    childProcess().execFileSync('nsenter', [`--user=/proc/${pid}/ns/user`, `--net=/proc/${pid}/ns/net`, '--preserve-credentials', '--', 'sh', '-c', script], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 5000 });
  } catch (e) {
    throw new Error(`IPv6 could not be turned off in the sandbox's network namespace: ${String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim().split('\n')[0]}`);
  }
}

/** egress.status as sbx-egress last wrote it. */
export function readEgressStatus(stateDir: string): { digest?: string; nonce?: string } | undefined {
  try { return JSON.parse(readFileSync(join(stateDir, 'egress.status'), 'utf8')) as { digest?: string; nonce?: string }; } catch { return undefined; }
}
