// Rootless `network: private`, in the CLI process as the calling (non-root) user: a user-mode
// network tool (pasta from Debian's passt, or slirp4netns) attached to the sandbox child's user and
// network namespaces. The child is already in both (the caller is root in its user namespace) and
// waits for the CLI; the tool makes its eth0, configures it, and publishes the ports on the host.
//
// The tool must outlive the CLI (a detached sandbox goes on without it, and a CLI killed with -9
// cleans nothing) yet end with the sandbox. Neither tool does that by itself on the versions this
// targets (passt 2023-03-09, slirp4netns 1.2.0): pasta holds the network namespace open and quits
// only when a *file-bound* namespace path is deleted (it watches the path's folder with inotify,
// which /proc/PID/ns does not feed); slirp4netns quits only when its --exit-fd hangs up (its tap
// fd also holds the namespace). So each tool gets a watcher, a detached `tail --pid` of the
// sandbox's child, started before the tool:
//   pasta       --netns is a symlink in stateDir to /proc/PID/ns/net; when the child is gone the
//               watcher deletes the link, and pasta's own netns-quit ends it;
//   slirp4netns --exit-fd is one end of a socket pair whose other end only the watcher holds;
//               when the watcher ends, for any reason, slirp4netns sees the hang-up and ends.
// Neither path signals a PID that may have been reused. The tool's and the watcher's PIDs (with
// their start times) are recorded in stateDir for `down` and gc (stopRecorded).
import { accessSync, closeSync, constants, mkdirSync, openSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { userNetPortCaveat } from '../plan/compile';

/** node:child_process and node:net, loaded when a rootless network is first started. */
const childProcess = () => require('node:child_process') as typeof import('node:child_process');
const net = () => require('node:net') as typeof import('node:net');

export interface UserNetPort { hostIp: string; hostPort: number; containerPort: number; protocol: 'tcp' | 'udp' }
export interface UserNet {
  tool: 'pasta' | 'slirp4netns';
  /** The tool's PID on the host. */
  pid: number;
  /** What the sandbox sees: its eth0's IPv4 address, its default gateway, its name servers. */
  address: string;
  gateway: string;
  dns: string[];
  /** The interface inside and its prefix length. */
  interface: string;
  prefixLength: number;
  /** The watcher that ends the tool when the sandbox's child ends. */
  watcherPid: number;
  /** Port maps that work only in part with this tool, in words for the user. */
  warnings: string[];
  /** Ends the tool and its watcher and removes their files from stateDir; safe to call twice. */
  stop(): Promise<void>;
}

export interface UserNetOptions {
  pid: number; ports: UserNetPort[]; mtu: number; stateDir: string; binary: string;
  /** The process whose end ends the tool (default: pid): the one that holds the sandbox's network
   * namespace across restarts and runs its restart policy (the CLI, or the supervisor when
   * detached), so that the ports go when the command ends for good, and stay across a restart. */
  holder?: number;
  /** Under egress: IPv4 only and no DNS forwarder of the tool's own (a path around the sandbox's resolver). */
  egress?: boolean;
}

/** The name of the sandbox's interface, for both tools (as in Docker). */
export const USERNET_IFNAME = 'eth0';
/** The record of a started tool, in stateDir. */
export const USERNET_RECORD = 'usernet.json';
/** How long a tool has to attach and publish its ports. */
const START_TIMEOUT_MS = 10_000;
/** How often the watcher looks for the sandbox's child (tail --pid polls with kill(pid, 0)). */
const WATCH_INTERVAL_S = '0.1';


// ---- processes, named by PID and start time ----

/** A process as recorded: its start time (clock ticks since boot, field 22 of /proc/PID/stat) tells it from a later one given the same PID. */
export interface Proc { pid: number; start: string }

function procStat(pid: number): { state: string; start: string; pgrp: number } | undefined {
  let stat: string;
  try { stat = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return undefined; }
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: f[0]!, pgrp: Number(f[2]), start: f[19]! };
}

export function procOf(pid: number): Proc | undefined {
  const s = procStat(pid);
  return s && s.state !== 'Z' ? { pid, start: s.start } : undefined;
}

/** True while the recorded process runs (a zombie has ended: it holds no socket and no namespace). */
export function running(p: Proc): boolean {
  const s = procStat(p.pid);
  return !!s && s.start === p.start && s.state !== 'Z';
}

export function signal(p: Proc, sig: NodeJS.Signals, group = false): void {
  if (!running(p)) return;
  try { process.kill(group ? -p.pid : p.pid, sig); } catch { /* ended meanwhile, or the group is gone */ }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function gone(p: Proc, ms: number): Promise<boolean> {
  // Polled from 1 ms up to 20: pasta quits within a millisecond of its link going, and the
  // teardown of every rootless run waits on this.
  for (let end = Date.now() + ms, wait = 1; Date.now() < end; await sleep(wait), wait = Math.min(20, wait * 2)) if (!running(p)) return true;
  return !running(p);
}

/** Ends a process: what `gently` does first (the tool's own way out), then SIGTERM, then SIGKILL. */
async function end(p: Proc, gently?: () => void): Promise<void> {
  if (gently) { gently(); if (await gone(p, 2000)) return; }
  signal(p, 'SIGTERM');
  if (await gone(p, 1000)) return;
  signal(p, 'SIGKILL');
  await gone(p, 1000);
}

// ---- the record in stateDir ----

interface Recorded { tool: 'pasta' | 'slirp4netns'; target: Proc; watcher: Proc; proc?: Proc; link?: string; files: string[] }

function writeRecord(stateDir: string, r: Recorded): void {
  const tmp = join(stateDir, `.${USERNET_RECORD}.tmp`);
  writeFileSync(tmp, JSON.stringify(r) + '\n', { mode: 0o600 });
  renameSync(tmp, join(stateDir, USERNET_RECORD));
}

function readRecord(stateDir: string): Recorded | undefined {
  try { return JSON.parse(readFileSync(join(stateDir, USERNET_RECORD), 'utf8')) as Recorded; } catch { return undefined; }
}

/** Ends what a record names, in the order that lets each tool quit by its own means, and removes its files. */
async function stopRecord(stateDir: string, r: Recorded): Promise<void> {
  // pasta's PID file, in case the CLI ended between pasta daemonizing and the record naming it.
  let proc = r.proc;
  if (!proc && r.tool === 'pasta') {
    const pid = Number(readText(join(stateDir, 'pasta.pid')).trim());
    if (pid > 0) proc = procOf(pid);
  }
  if (r.tool === 'pasta') {
    // Deleting the link is pasta's netns-quit; the watcher would do the same once the child ends.
    const unlink = () => { if (r.link) rmSync(r.link, { force: true }); };
    if (proc) await end(proc, unlink); else unlink();
    signal(r.watcher, 'SIGTERM', true);
  } else {
    // Ending the watcher hangs up slirp4netns' exit fd.
    signal(r.watcher, 'SIGTERM', true);
    if (proc) await end(proc);
  }
  await gone(r.watcher, 1000);
  signal(r.watcher, 'SIGKILL', true);
  for (const f of [...r.files, USERNET_RECORD]) rmSync(join(stateDir, f), { force: true });
}

/** Ends a user-net process recorded in stateDir by an earlier run (for `down` and gc after the CLI is gone); true if one was found. */
export async function stopRecorded(stateDir: string): Promise<boolean> {
  const r = readRecord(stateDir);
  if (!r) return false;
  await stopRecord(stateDir, r);
  return true;
}

function readText(path: string): string { try { return readFileSync(path, 'utf8'); } catch { return ''; } }

// ---- shared start-up ----

/** The watcher, detached from the CLI (its own session): it waits for the holder of the sandbox (see UserNetOptions.holder), then runs `then`. */
function startWatcher(target: Proc, then: string, args: string[], extraStdio: ('pipe' | 'ignore')[] = []) {
  const script = `tail --pid="$1" -s ${WATCH_INTERVAL_S} -f /dev/null; ${then}`;
  const child = childProcess().spawn('/bin/sh', ['-c', script, 'sbx-usernet-watch', String(target.pid), ...args], {
    detached: true, stdio: ['ignore', 'ignore', 'ignore', ...extraStdio],
  });
  child.unref();
  const proc = child.pid !== undefined ? procOf(child.pid) : undefined;
  if (!proc) throw new Error('could not start the watcher that ends the network tool with the sandbox (/bin/sh and tail, from coreutils)');
  return { child, proc };
}

function checkOptions(tool: string, o: UserNetOptions): { target: Proc; watch: Proc } {
  if (!o.binary.startsWith('/')) throw new Error(`${tool}: the tool's path must be absolute (got ${o.binary})`);
  if (!Number.isInteger(o.mtu) || o.mtu < 576 || o.mtu > 65520) throw new Error(`${tool}: an MTU of ${o.mtu} is outside 576-65520`);
  for (const p of o.ports) {
    if (!(p.hostPort > 0 && p.hostPort < 65536 && p.containerPort > 0 && p.containerPort < 65536)) throw new Error(`${tool}: port ${p.hostPort}:${p.containerPort}/${p.protocol} is out of range: rootless port maps need a fixed host port of 1-65535`);
    if (p.hostIp && net().isIP(p.hostIp) === 0) throw new Error(`${tool}: ${p.hostIp} is not an IP address`);
  }
  const target = procOf(o.pid);
  if (!target) throw new Error(`${tool}: the sandbox's process ${o.pid} has already ended`);
  const watch = o.holder !== undefined ? procOf(o.holder) : target;
  if (!watch) throw new Error(`${tool}: the process ${o.holder} that holds the sandbox has already ended`);
  mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
  return { target, watch };
}

/** Waits until each published TCP port accepts a connection (UDP has nothing to wait for). */
async function portsAccept(ports: UserNetPort[], deadline: number): Promise<void> {
  for (const p of ports.filter((x) => x.protocol === 'tcp')) {
    const host = !p.hostIp || p.hostIp === '0.0.0.0' ? '127.0.0.1' : p.hostIp === '::' ? '::1' : p.hostIp;
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = net().connect({ host, port: p.hostPort });
        s.once('connect', () => { s.destroy(); resolve(true); });
        s.once('error', () => { s.destroy(); resolve(false); });
      });
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`port ${host}:${p.hostPort}/tcp does not accept connections`);
      await sleep(20);
    }
  }
}

/** The sandbox's view of its network, from /proc/PID/net (the namespace of the sandbox's child). */
function insideView(pid: number, ifname: string): { address: string; gateway: string; prefixLength: number } {
  const hex = (h: string) => [0, 2, 4, 6].map((i) => parseInt(h.slice(i, i + 2), 16)).reverse().join('.');
  let gateway = '', prefixLength = 0, address = '';
  for (const line of readText(`/proc/${pid}/net/route`).split('\n').slice(1)) {
    const [iface, dest, gw, , , , , mask] = line.trim().split(/\s+/);
    if (iface !== ifname) continue;
    if (dest === '00000000' && gw && gw !== '00000000') gateway = hex(gw);
    else if (mask && gw === '00000000') prefixLength = hex(mask).split('.').reduce((n, o) => n + (Number(o).toString(2).match(/1/g)?.length ?? 0), 0);
  }
  // fib_trie lists each local address as "|-- A.B.C.D" followed by "/32 host LOCAL".
  const trie = readText(`/proc/${pid}/net/fib_trie`).split('\n');
  for (let i = 1; i < trie.length; i++) {
    const ip = /\|--\s+(\d+\.\d+\.\d+\.\d+)/.exec(trie[i - 1]!)?.[1];
    if (ip && /\/32 host LOCAL/.test(trie[i]!) && !ip.startsWith('127.')) { address = ip; break; }
  }
  return { address, gateway, prefixLength };
}

/** The tool's words without its noise (pasta reports each message it could not send to a missing syslog). */
function toolMessage(text: string): string {
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !/^Failed to send \d+ bytes to syslog/.test(l)).slice(-6).join('; ');
}

/** What to do about a tool's failure, from its message. */
function wayOut(tool: string, msg: string): string {
  if (/\/dev\/net\/tun/.test(msg) || /tun/i.test(msg) && /permi|denied|EACCES|EPERM|open tun/i.test(msg)) return 'the caller cannot open /dev/net/tun: it must be mode 0666 (udev makes it so; on a host without udev, run `chmod 0666 /dev/net/tun` as root)';
  if (/in use|bind|add_hostfwd/i.test(msg)) return 'a published host port is taken, or below the unprivileged port start (sysctl net.ipv4.ip_unprivileged_port_start): pick another host port';
  if (/routable interface/i.test(msg)) return 'pasta copies the host\'s own network into the sandbox, and this host has no interface with a default route: connect it to a network, use slirp4netns (`network.rootless_cmd: slirp4netns`), or `network: none`';
  if (/namespace|setns|Operation not permitted/i.test(msg)) return `${tool} could not join the sandbox's namespaces: check that unprivileged user namespaces are allowed (sysctl user.max_user_namespaces)`;
  return `fix what ${tool} reports, use the other tool (${tool === 'pasta' ? 'slirp4netns' : 'pasta'}), or run with \`network: none\``;
}

function failure(tool: string, what: string, msg: string): Error {
  return new Error(`${tool} could not ${what}: ${msg || 'it gave no reason'}; ${wayOut(tool, msg)}`);
}

// ---- pasta ----

/** pasta's -t/-u options: one per port, each with its own bound address. */
export function pastaPortArgs(ports: UserNetPort[]): string[] {
  const args: string[] = [];
  for (const proto of ['tcp', 'udp'] as const) {
    const flag = proto === 'tcp' ? '-t' : '-u';
    const mine = ports.filter((p) => p.protocol === proto);
    if (!mine.length) args.push(flag, 'none');
    for (const p of mine) args.push(flag, `${p.hostIp ? `${p.hostIp}/` : ''}${p.hostPort}:${p.containerPort}`);
  }
  return args;
}

/** The host's name servers from /etc/resolv.conf. */
function hostResolvers(): string[] {
  return readText('/etc/resolv.conf').split('\n').map((l) => /^\s*nameserver\s+([^\s%]+)/.exec(l)?.[1]).filter((x): x is string => !!x && net().isIPv4(x));
}

/** Where the sandbox sends DNS when the host's resolvers are all on its loopback: pasta forwards queries sent there to the host's first resolver (UDP only). */
const PASTA_DNS_FORWARD = '169.254.1.1';

export async function startPasta(o: UserNetOptions): Promise<UserNet> {
  const { target, watch } = checkOptions('pasta', o);
  const link = join(o.stateDir, 'netns');
  const pidFile = join(o.stateDir, 'pasta.pid');
  rmSync(link, { force: true });
  rmSync(pidFile, { force: true });
  symlinkSync(`/proc/${o.pid}/ns/net`, link);

  const resolvers = hostResolvers();
  const usable = resolvers.filter((r) => !r.startsWith('127.'));
  // Under egress the sandbox asks only its own resolver (sbx-egress asks the host's from the host).
  const dns = o.egress ? [] : usable.length ? usable : resolvers.length ? [PASTA_DNS_FORWARD] : [];
  const args = [
    '--config-net', '--quiet', '--ns-ifname', USERNET_IFNAME, '--mtu', String(o.mtu),
    // The sandbox reaches the host as any outside client does: the gateway is not mapped onto the
    // host's loopback, and no port bound inside or on the host is forwarded unless published.
    '--no-map-gw', '-T', 'none', '-U', 'none', ...pastaPortArgs(o.ports),
    // Under egress: no IPv6 at all (the wall inside is IPv4's), so a host listener on [::] is out of reach.
    ...(o.egress ? ['-4'] : []),
    ...(dns[0] === PASTA_DNS_FORWARD ? ['--dns-forward', PASTA_DNS_FORWARD] : []),
    '--pid', pidFile, '--netns', link, '--userns', `/proc/${o.pid}/ns/user`,
  ];
  const files = ['netns', 'pasta.pid'];
  const watcher = startWatcher(watch, 'exec rm -f -- "$2"', [link]);
  const record: Recorded = { tool: 'pasta', target, watcher: watcher.proc, link, files };
  writeRecord(o.stateDir, record);
  const abandon = async (e: Error) => { await stopRecord(o.stateDir, record); throw e; };

  // pasta attaches, configures eth0 and binds every published port, then forks into its own
  // session and the first process exits: its status is the outcome.
  const launched = await new Promise<{ code: number | null; err: string }>((resolve) => {
    const c = childProcess().spawn(o.binary, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: START_TIMEOUT_MS });
    let err = '';
    c.stdout!.on('data', (d: Buffer) => { err += d; });
    c.stderr!.on('data', (d: Buffer) => { err += d; });
    c.once('error', (e) => resolve({ code: -1, err: e.message }));
    c.once('close', (code) => resolve({ code, err }));
  });
  const pid = Number(readText(pidFile).trim());
  const proc = pid > 0 ? procOf(pid) : undefined;
  if (proc) { record.proc = proc; writeRecord(o.stateDir, record); }
  if (launched.code !== 0 || !proc) return abandon(failure('pasta', "attach to the sandbox's network", toolMessage(launched.err) || (launched.code === null ? `it did not finish within ${START_TIMEOUT_MS / 1000} s` : `it exited with status ${launched.code}`)));
  try { await portsAccept(o.ports, Date.now() + START_TIMEOUT_MS); } catch (e) { return abandon(failure('pasta', 'publish the ports', (e as Error).message)); }

  return made('pasta', o, record, dns);
}

/** What each tool's port maps do not do (the plan says it at each port: plan/compile.ts). */
export function portWarnings(tool: 'pasta' | 'slirp4netns', ports: UserNetPort[]): string[] {
  return ports.map((p) => userNetPortCaveat(tool, p)).filter((w): w is string => w !== undefined);
}

function made(tool: 'pasta' | 'slirp4netns', o: UserNetOptions, record: Recorded, dns: string[]): UserNet {
  const view = insideView(o.pid, USERNET_IFNAME);
  let stopping: Promise<void> | undefined;
  return {
    tool, pid: record.proc!.pid, ...view, dns, interface: USERNET_IFNAME, watcherPid: record.watcher.pid, warnings: portWarnings(tool, o.ports),
    stop: () => (stopping ??= stopRecord(o.stateDir, record)),
  };
}

// ---- slirp4netns ----

/** slirp4netns' fixed addresses for its default network 10.0.2.0/24 (--configure gives eth0 the .100). */
const SLIRP_DNS = '10.0.2.3';

/** One request on slirp4netns' API socket (it answers one request per connection). */
function slirpApi(socket: string, request: object): Promise<{ return?: unknown; error?: { desc?: string } }> {
  return new Promise((resolve, reject) => {
    const s = net().connect(socket);
    let data = '';
    s.setTimeout(START_TIMEOUT_MS, () => s.destroy(new Error('no answer from its API socket')));
    s.once('connect', () => s.write(JSON.stringify(request)));
    s.on('data', (d) => { data += d; });
    s.once('error', reject);
    s.once('close', () => { try { resolve(JSON.parse(data)); } catch { reject(new Error(`unreadable answer from its API socket: ${data || '(none)'}`)); } });
  });
}

export async function startSlirp4netns(o: UserNetOptions): Promise<UserNet> {
  const { target, watch } = checkOptions('slirp4netns', o);
  for (const p of o.ports) if (p.hostIp.includes(':')) throw new Error(`slirp4netns: port ${p.hostPort}/${p.protocol} is published on ${p.hostIp}, but its port maps are IPv4 only; use pasta or an IPv4 host_ip`);
  const api = join(o.stateDir, 'slirp4netns.sock');
  if (Buffer.byteLength(api) > 107) throw new Error(`slirp4netns: the state folder's path is too long for its API socket (${api}); use a shorter XDG_RUNTIME_DIR`);
  const logPath = join(o.stateDir, 'slirp4netns.log');
  rmSync(api, { force: true });
  const files = ['slirp4netns.sock', 'slirp4netns.log'];

  // fd 3 of the watcher is one end of a socket pair; slirp4netns gets the other as its exit fd.
  const watcher = startWatcher(watch, ':', [], ['pipe']);
  const record: Recorded = { tool: 'slirp4netns', target, watcher: watcher.proc, files };
  writeRecord(o.stateDir, record);
  const abandon = async (e: Error) => { await stopRecord(o.stateDir, record); throw e; };

  const log = openSync(logPath, 'w', 0o600);
  const args = [
    '--configure', `--mtu=${o.mtu}`, '--disable-host-loopback', '--enable-sandbox', '--enable-seccomp', ...(o.egress ? ['--disable-dns'] : []),
    '--exit-fd=3', '--ready-fd=4', `--api-socket=${api}`, String(o.pid), USERNET_IFNAME,
  ];
  const c = childProcess().spawn(o.binary, args, { detached: true, stdio: ['ignore', log, log, watcher.child.stdio[3] as import('node:net').Socket, 'pipe'] });
  closeSync(log);
  (watcher.child.stdio[3] as import('node:net').Socket).destroy(); // only the watcher holds its end now
  c.unref();
  const ready = await new Promise<string | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(`it did not report ready within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    const fd4 = c.stdio[4] as import('node:net').Socket;
    fd4.once('data', () => { clearTimeout(timer); resolve(undefined); });
    c.once('error', (e) => { clearTimeout(timer); resolve(e.message); });
    c.once('exit', (code, sig) => { clearTimeout(timer); resolve(`it exited (${sig ?? `status ${code}`})`); });
  });
  (c.stdio[4] as import('node:net').Socket).destroy();
  const proc = c.pid !== undefined ? procOf(c.pid) : undefined;
  if (proc) { record.proc = proc; writeRecord(o.stateDir, record); }
  if (ready !== undefined || !proc) return abandon(failure('slirp4netns', "attach to the sandbox's network", toolMessage(readText(logPath).split('\n').filter((l) => !/^(\*|Starting slirp|WARNING)/.test(l)).join('\n')) || ready || 'it ended'));

  for (const p of o.ports) {
    const r = await slirpApi(api, { execute: 'add_hostfwd', arguments: { proto: p.protocol, host_addr: p.hostIp || '0.0.0.0', host_port: p.hostPort, guest_port: p.containerPort } }).catch((e: Error) => ({ return: undefined, error: { desc: e.message } }));
    if (r.error || r.return === undefined) return abandon(failure('slirp4netns', `publish port ${p.hostIp || '0.0.0.0'}:${p.hostPort}/${p.protocol}`, r.error?.desc ?? 'no answer'));
  }
  try { await portsAccept(o.ports, Date.now() + START_TIMEOUT_MS); } catch (e) { return abandon(failure('slirp4netns', 'publish the ports', (e as Error).message)); }
  return made('slirp4netns', o, record, o.egress ? [] : [SLIRP_DNS]);
}
