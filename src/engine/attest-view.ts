// What the attestation reads of a child that waits to exec, in the CLI (root on the host, or the
// user of a rootless sandbox): one libsbx call (sbx_proc_facts) gathers the child's /proc files,
// namespace links, descriptor flags and the paths the plan's rules ask about, as records in one
// buffer; this module decodes them into the ProcView that attest.ts compares. Nothing is changed.
// A path a rule asks about that the plan did not name ahead is looked up here, as the rest were.
import { constants } from 'node:os';
import { lstatSync, readFileSync, readlinkSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FACT } from '../ffi/generated/abi';
import type { Plan } from '../plan/types';
import type { MountEntry, PathKind, ProcView } from './attest';

/** The rows of /proc/PID/limits, in RLIMIT_* order. */
const LIMIT_ROWS = 16;
const DEV_LINKS = ['/dev/fd', '/dev/stdin', '/dev/stdout', '/dev/stderr'];

export interface ViewSources {
  /** sbx_proc_facts's records for the child and these paths inside its root. */
  facts(paths: readonly string[]): Buffer;
  /** A cgroup file's content, read on the host; undefined when absent. */
  cgroup(controller: string, file: string): string | undefined;
  cgroupExists(controller: string): boolean;
  stateDir?: string;
}

/** The paths inside the sandbox that the plan's rules look at (attest.ts: pathOf and the masks). */
export function askedPaths(plan: Plan): string[] {
  const out = new Set<string>();
  for (const s of plan.steps) {
    switch (s.kind) {
      case 'mount.devpts': out.add('/dev/ptmx'); break;
      case 'mount.link': out.add(s.args.path); break;
      case 'mount.mask': case 'mount.readonly': out.add(s.args.path); break;
      case 'dev.links': for (const l of DEV_LINKS) out.add(l); break;
      case 'dev.node': out.add(`/dev/${s.args.name}`); break;
      case 'dev.bind': case 'dev.make': out.add(s.args.target); break;
      default: break;
    }
  }
  return [...out];
}

interface Facts { files: Map<number, string>; ns: Record<string, string>; fds: ProcView['fds']; rootIsHosts: boolean; paths: Map<string, PathKind | undefined> }

/** The records of sbx_proc_facts (native/include/sbx.h): kind, result, length, then the bytes.
 * Read from one Latin-1 string of the buffer (byte i is character i), so that the numbers and
 * the bodies cost string operations only; a body with UTF-8 in it (a mount point) is decoded as such. */
export function decodeFacts(buf: Buffer, asked: readonly string[]): Facts {
  const f: Facts = { files: new Map(), ns: {}, fds: [], rootIsHosts: true, paths: new Map() };
  const s = buf.toString('latin1');
  const utf8 = /[^\x00-\x7f]/.test(s);
  const int32 = (i: number) => s.charCodeAt(i) | (s.charCodeAt(i + 1) << 8) | (s.charCodeAt(i + 2) << 16) | (s.charCodeAt(i + 3) << 24);
  let nextPath = 0;
  for (let at = 0; at + 12 <= s.length;) {
    const kind = int32(at), result = int32(at + 4), len = int32(at + 8), from = at + 12;
    at = from + len;
    const text = result < 0 || !len ? '' : utf8 ? buf.toString('utf8', from, at) : s.slice(from, at);
    if (kind === FACT.PATH) { f.paths.set(asked[nextPath++]!, pathKind(result, text)); continue; }
    if (kind === FACT.ROOT) { f.rootIsHosts = result !== 0; continue; } // unreadable: counted as the host's
    if (result < 0) continue;
    if (kind === FACT.NS) for (const l of lines(text)) { const i = l.indexOf(' '); f.ns[l.slice(0, i)] = l.slice(i + 1); }
    else if (kind === FACT.FDS) for (const l of lines(text)) { const i = l.indexOf(' '); f.fds.push({ fd: Number(l.slice(0, i)), cloexec: (parseInt(l.slice(i + 1), 8) & 0o2000000) !== 0 }); }
    else f.files.set(kind, text);
  }
  return f;
}

const lines = (t: string) => t.split('\n').filter(Boolean);
let errnoNames: Map<number, string> | undefined;

/** An lstat's record: absent (ENOENT, ENOTDIR), what it is, or why it could not be read (never taken for absent). */
function pathKind(result: number, text: string): PathKind | undefined {
  if (result < 0) {
    if (-result === constants.errno.ENOENT || -result === constants.errno.ENOTDIR) return undefined;
    errnoNames ??= new Map(Object.entries(constants.errno).map(([k, v]) => [v, k]));
    return { type: 'unreadable', why: errnoNames.get(-result) ?? `errno ${-result}` };
  }
  const rest = text.slice(1);
  switch (text[0]) {
    case 'l': return { type: 'link', target: rest };
    case 'c': return { type: 'char', rdev: Number(rest) };
    case 'b': return { type: 'block', rdev: Number(rest) };
    case 'd': return { type: 'dir' };
    case 'f': return { type: 'file' };
    default: return { type: 'other' };
  }
}

/** The child's facts, read by the host from /proc/PID (and its cgroup and state folders). */
export function readView(pid: number, plan: Plan, o: ViewSources): ProcView {
  const proc = `/proc/${pid}`;
  const asked = askedPaths(plan);
  const f = decodeFacts(o.facts(asked), asked);
  const file = (k: number) => f.files.get(k) ?? '';
  const status: Record<string, string> = {};
  for (const l of file(FACT.STATUS).split('\n')) { const i = l.indexOf(':'); if (i > 0) status[l.slice(0, i)] = l.slice(i + 1).trim(); }
  const limits: [number, number][] = file(FACT.LIMITS).split('\n').slice(1, 1 + LIMIT_ROWS).map((l) => {
    const [soft, hard] = l.slice(26).trim().split(/\s+/);
    const n = (v: string | undefined) => (v === 'unlimited' ? -1 : Number(v));
    return [n(soft), n(hard)];
  });
  return {
    status, uidMap: file(FACT.UID_MAP), gidMap: file(FACT.GID_MAP), mounts: parseMounts(file(FACT.MOUNTINFO)), ns: f.ns, hostNs: hostNamespaces(), limits,
    cgroups: file(FACT.CGROUP).split('\n').filter(Boolean), ...parseNetwork(file(FACT.NET_DEV), file(FACT.NET_ROUTE), file(FACT.FIB_TRIE)), rootIsHosts: f.rootIsHosts, fds: f.fds,
    // A path no rule was known to ask about is looked up when asked, once.
    path: (p) => { if (!f.paths.has(p)) f.paths.set(p, pathIn(proc, p)); return f.paths.get(p); },
    realPath: (p) => realPathIn(proc, p),
    cgroupFile: o.cgroup,
    cgroupExists: o.cgroupExists,
    stateFile: (name) => (o.stateDir ? (name === '.' ? (statSafe(o.stateDir) ? '' : undefined) : read(join(o.stateDir, name))) : undefined),
    hostPeerGroups: () => new Set(parseMounts(readHostMountinfo()).flatMap((m) => m.optional.filter((o) => o.startsWith('shared:')).map((o) => o.slice(7)))),
    nsInode: (path) => { try { return statSync(path, { throwIfNoEntry: false })?.ino; } catch { return undefined; } },
    hostInterface: (name) => statSafe(`/sys/class/net/${name}`),
  };
}

const read = (p: string) => { try { return readFileSync(p, 'utf8'); } catch { return undefined; } };

/** The CLI's own namespaces, read once per process: it never leaves them (libsbx enters another
 * namespace only in a child or in a thread of its own, which /proc/self does not show). */
let ownNs: Record<string, string> | undefined;
const hostNamespaces = () => (ownNs ??= nsOf('/proc/self'));
/** The CLI's own mount table (the host's), for the peer groups of its shared mounts: read only
 * when a rule asks (a sandbox mount that is shared). */
const readHostMountinfo = () => { try { return readFileSync('/proc/self/mountinfo', 'utf8'); } catch { return ''; } };

/** What the attestation reads of the host alone (the CLI's namespaces), read ahead: the engine
 * calls it while the child applies its steps and this process would only wait for its events. */
export function readHostFacts(): void { hostNamespaces(); }

function parseMounts(text: string): MountEntry[] {
  return text.split('\n').filter(Boolean).map((l) => {
    const [pre, post = ''] = l.split(' - ');
    const f = pre!.split(' ');
    return { point: unescape(f[4]!), opts: f[5]!.split(','), optional: f.slice(6), fstype: post.split(' ')[0]! };
  });
}

/** readlink of each file of a process's ns folder, by name. */
function nsOf(base: string): Record<string, string> {
  const out: Record<string, string> = {};
  try { for (const n of readdirSync(`${base}/ns`)) { try { out[n] = readlinkSync(`${base}/ns/${n}`); } catch { /* gone */ } } } catch { /* none */ }
  return out;
}

/** The interfaces, IPv4 routes and local addresses of the process's network namespace, from its net/dev, net/route and net/fib_trie. */
function parseNetwork(dev: string, route: string, fibTrie: string): Pick<ProcView, 'interfaces' | 'routes' | 'localAddresses'> {
  const interfaces = dev.split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter(Boolean).sort();
  const hex = (h: string) => [0, 1, 2, 3].map((i) => parseInt(h.slice(6 - 2 * i, 8 - 2 * i), 16)).join('.');
  const routes = route.split('\n').slice(1).filter(Boolean).map((l) => { const f = l.split(/\s+/); return { iface: f[0]!, destination: hex(f[1]!), gateway: hex(f[2]!) }; });
  // The local table: each address of the namespace is a "/32 host LOCAL" leaf.
  const localAddresses: string[] = [];
  const trie = fibTrie.split('\n');
  for (let i = 1; i < trie.length; i++) if (/\/32 host LOCAL/.test(trie[i]!)) { const m = /([0-9.]+)\s*$/.exec(trie[i - 1]!.replace(/^[\s|+-]+/, '')); if (m && !localAddresses.includes(m[1]!)) localAddresses.push(m[1]!); }
  return { interfaces, routes, localAddresses };
}

/** A path inside the sandbox with its symlinks resolved there (an absolute link starts again at its root). */
function realPathIn(proc: string, p: string): string {
  const parts = p.split('/').filter(Boolean);
  const done: string[] = [];
  for (let hops = 0; parts.length && hops < 40;) {
    const part = parts.shift()!;
    if (part === '.') continue;
    if (part === '..') { done.pop(); continue; }
    let link: string | undefined;
    const at = join(`${proc}/root`, ...done, part);
    try { if (lstatSync(at, { throwIfNoEntry: false })?.isSymbolicLink()) link = readlinkSync(at); } catch { /* unreadable: taken as it is */ }
    if (link === undefined) { done.push(part); continue; }
    hops++;
    if (link.startsWith('/')) done.length = 0;
    parts.unshift(...link.split('/').filter(Boolean));
  }
  return `/${done.join('/')}`;
}

function pathIn(proc: string, p: string): PathKind | undefined {
  try {
    // An absent path is the common answer (masked paths this kernel has not): no exception for it.
    const st = lstatSync(join(`${proc}/root`, p), { throwIfNoEntry: false });
    if (!st) return undefined;
    if (st.isSymbolicLink()) return { type: 'link', target: readlinkSync(join(`${proc}/root`, p)) };
    if (st.isCharacterDevice()) return { type: 'char', rdev: st.rdev };
    if (st.isBlockDevice()) return { type: 'block', rdev: st.rdev };
    return { type: st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other' };
  } catch (e) {
    // Absent; any other failure (the child's root unreadable) is said, never taken for absent.
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? undefined : { type: 'unreadable', why: code ?? String(e) };
  }
}

const statSafe = (p: string) => { try { return statSync(p, { throwIfNoEntry: false }) !== undefined; } catch { return false; } };
/** mountinfo escapes space, tab, newline and backslash as octal. */
const unescape = (s: string) => (s.includes('\\') ? s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))) : s);
