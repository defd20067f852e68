// Seccomp profiles: read a Docker/OCI/Podman profile file (every problem located by line:col),
// resolve its conditional rules for one sandbox (capabilities, host arch, kernel version), and
// write the small text program that the C side turns into libseccomp calls.
//
// Semantics follow moby (profiles/seccomp/seccomp_linux.go: includes/excludes, archMap) and runc
// (libcontainer/seccomp: actions, errno defaults, redundant rules, same-index argument split).
// Pure: no file system, no environment, no native calls.
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { CAPABILITIES } from './tables';
import type { SeccompProfile, SeccompRule } from './seccomp-profile';

export { DEFAULT_PROFILE } from './seccomp-default';

export type { SeccompArg, SeccompFilterCond, SeccompProfile, SeccompRule } from './seccomp-profile';

// ---------------------------------------------------------------------------------------------
// Vocabulary

export type Action = 'allow' | 'errno' | 'kill_process' | 'kill_thread' | 'trap' | 'log';
export type CmpOp = 'ne' | 'lt' | 'le' | 'eq' | 'ge' | 'gt' | 'masked_eq';

const ACTIONS: Record<string, Action> = {
  SCMP_ACT_ALLOW: 'allow',
  SCMP_ACT_ERRNO: 'errno',
  SCMP_ACT_KILL: 'kill_thread',
  SCMP_ACT_KILL_THREAD: 'kill_thread',
  SCMP_ACT_KILL_PROCESS: 'kill_process',
  SCMP_ACT_TRAP: 'trap',
  SCMP_ACT_LOG: 'log',
};

const UNSUPPORTED_ACTIONS: Record<string, string> = {
  SCMP_ACT_TRACE: 'SCMP_ACT_TRACE is not supported by sandbox (it needs a ptrace tracer attached to the sandbox); use SCMP_ACT_ERRNO, SCMP_ACT_LOG or SCMP_ACT_KILL_PROCESS',
  SCMP_ACT_NOTIFY: 'SCMP_ACT_NOTIFY is not supported by sandbox (it needs a seccomp agent on listenerPath); use SCMP_ACT_ERRNO, SCMP_ACT_LOG or SCMP_ACT_KILL_PROCESS',
};

const OPS: Record<string, CmpOp> = {
  SCMP_CMP_NE: 'ne',
  SCMP_CMP_LT: 'lt',
  SCMP_CMP_LE: 'le',
  SCMP_CMP_EQ: 'eq',
  SCMP_CMP_GE: 'ge',
  SCMP_CMP_GT: 'gt',
  SCMP_CMP_MASKED_EQ: 'masked_eq',
};

/** Profile arch names → libseccomp's (seccomp_arch_resolve_name). SCMP_ARCH_NATIVE is Podman's. */
const ARCHES: Record<string, string> = {
  SCMP_ARCH_NATIVE: 'native',
  SCMP_ARCH_X86: 'x86',
  SCMP_ARCH_X86_64: 'x86_64',
  SCMP_ARCH_X32: 'x32',
  SCMP_ARCH_ARM: 'arm',
  SCMP_ARCH_AARCH64: 'aarch64',
  SCMP_ARCH_LOONGARCH64: 'loongarch64',
  SCMP_ARCH_M68K: 'm68k',
  SCMP_ARCH_MIPS: 'mips',
  SCMP_ARCH_MIPSEL: 'mipsel',
  SCMP_ARCH_MIPS64: 'mips64',
  SCMP_ARCH_MIPSEL64: 'mipsel64',
  SCMP_ARCH_MIPS64N32: 'mips64n32',
  SCMP_ARCH_MIPSEL64N32: 'mipsel64n32',
  SCMP_ARCH_PARISC: 'parisc',
  SCMP_ARCH_PARISC64: 'parisc64',
  SCMP_ARCH_PPC: 'ppc',
  SCMP_ARCH_PPC64: 'ppc64',
  SCMP_ARCH_PPC64LE: 'ppc64le',
  SCMP_ARCH_S390: 's390',
  SCMP_ARCH_S390X: 's390x',
  SCMP_ARCH_RISCV64: 'riscv64',
  SCMP_ARCH_SH: 'sh',
  SCMP_ARCH_SHEB: 'sheb',
};
// Looked up by names a profile file supplies: no prototype behind them, so that `constructor`
// or `toString` is an unknown name like any other.
for (const t of [ACTIONS, UNSUPPORTED_ACTIONS, OPS, ARCHES]) Object.setPrototypeOf(t, null);

interface HostArch {
  /** libseccomp's name, which the filter program uses. */
  lib: string;
  scmp: string;
  /** The names an `includes`/`excludes` arches list may use for this host: moby's first
   * (its GOARCH-derived names: amd64, arm64, ...), then libseccomp's. */
  names: string[];
  /** What `ctx.arch` may say: uname -m, GOARCH, Node's os.arch(), libseccomp's name. Node says
   * ppc64 for both endians: pass ppc64le on a little-endian host. */
  aliases: string[];
}

const HOSTS: HostArch[] = [
  { lib: 'x86_64', scmp: 'SCMP_ARCH_X86_64', names: ['amd64', 'x86_64'], aliases: ['x86_64', 'amd64', 'x64'] },
  { lib: 'x86', scmp: 'SCMP_ARCH_X86', names: ['x86'], aliases: ['x86', 'i386', 'i486', 'i586', 'i686', '386', 'ia32'] },
  { lib: 'aarch64', scmp: 'SCMP_ARCH_AARCH64', names: ['arm64', 'aarch64'], aliases: ['aarch64', 'arm64'] },
  { lib: 'arm', scmp: 'SCMP_ARCH_ARM', names: ['arm'], aliases: ['arm', 'armv5l', 'armv5tel', 'armv6l', 'armv7l', 'armv8l', 'armhf', 'armel'] },
  { lib: 'loongarch64', scmp: 'SCMP_ARCH_LOONGARCH64', names: ['loongarch64', 'loong64'], aliases: ['loongarch64', 'loong64'] },
  { lib: 'mips', scmp: 'SCMP_ARCH_MIPS', names: ['mips'], aliases: ['mips'] },
  { lib: 'mipsel', scmp: 'SCMP_ARCH_MIPSEL', names: ['mipsel', 'mipsle'], aliases: ['mipsel', 'mipsle'] },
  { lib: 'mips64', scmp: 'SCMP_ARCH_MIPS64', names: ['mips64'], aliases: ['mips64'] },
  { lib: 'mipsel64', scmp: 'SCMP_ARCH_MIPSEL64', names: ['mipsel64', 'mips64le'], aliases: ['mipsel64', 'mips64le'] },
  { lib: 'mips64n32', scmp: 'SCMP_ARCH_MIPS64N32', names: ['mips64n32'], aliases: ['mips64n32', 'mips64p32'] },
  // moby spells this one mips3l64n32.
  { lib: 'mipsel64n32', scmp: 'SCMP_ARCH_MIPSEL64N32', names: ['mips3l64n32', 'mipsel64n32'], aliases: ['mipsel64n32', 'mips64p32le'] },
  { lib: 'ppc', scmp: 'SCMP_ARCH_PPC', names: ['ppc'], aliases: ['ppc'] },
  { lib: 'ppc64', scmp: 'SCMP_ARCH_PPC64', names: ['ppc64'], aliases: ['ppc64'] },
  { lib: 'ppc64le', scmp: 'SCMP_ARCH_PPC64LE', names: ['ppc64le'], aliases: ['ppc64le'] },
  { lib: 's390', scmp: 'SCMP_ARCH_S390', names: ['s390'], aliases: ['s390'] },
  { lib: 's390x', scmp: 'SCMP_ARCH_S390X', names: ['s390x'], aliases: ['s390x'] },
  { lib: 'riscv64', scmp: 'SCMP_ARCH_RISCV64', names: ['riscv64'], aliases: ['riscv64'] },
];

/** Every name an `includes`/`excludes` arches list may hold. */
const CONDITION_ARCHES = new Set([...HOSTS.flatMap((h) => h.names), 'x32', 'm68k', 'parisc', 'parisc64', 'sh', 'sheb']);

const FLAGS = ['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'];

/** Linux errno names (asm-generic numbering, as on x86_64 and arm64), for Podman's `errno`/`defaultErrno`. */
export const ERRNO: Readonly<Record<string, number>> = {
  EPERM: 1, ENOENT: 2, ESRCH: 3, EINTR: 4, EIO: 5, ENXIO: 6, E2BIG: 7, ENOEXEC: 8, EBADF: 9, ECHILD: 10,
  EAGAIN: 11, EWOULDBLOCK: 11, ENOMEM: 12, EACCES: 13, EFAULT: 14, ENOTBLK: 15, EBUSY: 16, EEXIST: 17,
  EXDEV: 18, ENODEV: 19, ENOTDIR: 20, EISDIR: 21, EINVAL: 22, ENFILE: 23, EMFILE: 24, ENOTTY: 25,
  ETXTBSY: 26, EFBIG: 27, ENOSPC: 28, ESPIPE: 29, EROFS: 30, EMLINK: 31, EPIPE: 32, EDOM: 33, ERANGE: 34,
  EDEADLK: 35, ENAMETOOLONG: 36, ENOLCK: 37, ENOSYS: 38, ENOTEMPTY: 39, ELOOP: 40, ENOMSG: 42, EIDRM: 43,
  ENOSTR: 60, ENODATA: 61, ETIME: 62, ENOSR: 63, ENOLINK: 67, EPROTO: 71, EMULTIHOP: 72, EBADMSG: 74,
  EOVERFLOW: 75, EILSEQ: 84, ENOTSOCK: 88, EDESTADDRREQ: 89, EMSGSIZE: 90, EPROTOTYPE: 91,
  ENOPROTOOPT: 92, EPROTONOSUPPORT: 93, ESOCKTNOSUPPORT: 94, ENOTSUP: 95, EOPNOTSUPP: 95,
  EPFNOSUPPORT: 96, EAFNOSUPPORT: 97, EADDRINUSE: 98, EADDRNOTAVAIL: 99, ENETDOWN: 100,
  ENETUNREACH: 101, ENETRESET: 102, ECONNABORTED: 103, ECONNRESET: 104, ENOBUFS: 105, EISCONN: 106,
  ENOTCONN: 107, ESHUTDOWN: 108, ETOOMANYREFS: 109, ETIMEDOUT: 110, ECONNREFUSED: 111, EHOSTDOWN: 112,
  EHOSTUNREACH: 113, EALREADY: 114, EINPROGRESS: 115, ESTALE: 116, EDQUOT: 122, ECANCELED: 125,
  ENOKEY: 126,
};
Object.setPrototypeOf(ERRNO, null);

/** The name of an errno number, for the plan to show (EPERM for 1); the first name wins where two share one. */
export function errnoNameOf(n: number): string {
  for (const k in ERRNO) if (ERRNO[k] === n) return k;
  return `errno ${n}`;
}

const EPERM = 1;
/** The kernel clamps a filter's errno to MAX_ERRNO. */
const MAX_ERRNO = 4095;
const U64_MAX = (1n << 64n) - 1n;
/** The most a profile file may weigh; moby's default is about 20 KiB. */
export const PROFILE_MAX_BYTES = 1024 * 1024;
/** How deep objects and lists may nest; moby's default goes 5 deep. */
export const PROFILE_MAX_DEPTH = 32;

// ---------------------------------------------------------------------------------------------
// Parsing

export interface SeccompDiagnostic { line: number; col: number; message: string } // 1-based, in the profile file

type YNode = unknown;

/** Reads one value at `path` (as messages name it); undefined when it is wrong, with the problem said. */
type Read<T> = (node: YNode, path: string) => T | undefined;

interface Field {
  required?: boolean;
  /** Reads the value; null is taken as absent for optional fields (Go's encoding/json does so). */
  read: Read<unknown>;
}

/** The problems of one profile file, each located by line:col in its text. */
class Problems {
  readonly errors: SeccompDiagnostic[] = [];
  readonly lc = new LineCounter();
  constructor(private readonly text: string) {
    this.lc.addNewLine(0);
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) this.lc.addNewLine(i + 1);
  }
  at(offset: number, message: string): void {
    const p = this.lc.linePos(Math.max(0, Math.min(offset, this.text.length)));
    this.errors.push({ line: Math.max(1, p.line), col: Math.max(1, p.col), message });
  }
  on(node: YNode, message: string): void {
    this.at(rangeStart(node), message);
  }
}

/** Parses a profile file's text (JSON). Every problem at once, located by line:col in that text. Unknown actions/ops/arches, a missing defaultAction, wrong types, bad arg indexes (0..5) and unknown fields are errors; syscall names are not checked (unknown names are skipped when the filter is built, as moby does). */
export function parseProfile(text: string): { profile?: SeccompProfile; errors: SeccompDiagnostic[] } {
  const p = new Problems(text);
  const root = readDocument(text, p);
  if (p.errors.length) return { errors: p.errors };
  const profile = profileReader(p)(root, '') as SeccompProfile | undefined;
  if (isMap(root)) {
    const a = root.items.find((x) => isScalar(x.key) && x.key.value === 'architectures');
    const m = root.items.find((x) => isScalar(x.key) && x.key.value === 'archMap');
    const len = (x: typeof a) => (x && isSeq(x.value) ? x.value.items.length : 0);
    if (a && m && len(a) > 0 && len(m) > 0) {
      const later = rangeStart(a.key) > rangeStart(m.key) ? a : m;
      p.on(later.key, 'the profile has both `architectures` and `archMap`; use one of them');
    }
  }
  p.errors.sort((x, y) => x.line - y.line || x.col - y.col);
  return p.errors.length ? { errors: p.errors } : { profile, errors: p.errors };
}

/** The text as a JSON document's root: refused first by size and depth, then as JSON; undefined
 * (with the problem said) when there is no document to read. */
function readDocument(text: string, p: Problems): YNode {
  if (text.length > PROFILE_MAX_BYTES) {
    p.at(0, `the profile is ${Math.ceil(text.length / 1024)} KiB; a seccomp profile may be at most ${PROFILE_MAX_BYTES / 1024} KiB`);
    return undefined;
  }
  const deep = deepNesting(text, PROFILE_MAX_DEPTH);
  if (deep >= 0) {
    p.at(deep, `brackets nest deeper than ${PROFILE_MAX_DEPTH} levels here; a seccomp profile needs no more than 5`);
    return undefined;
  }
  let doc: Document;
  try {
    doc = parseDocument(text, { schema: 'json', intAsBigInt: true, uniqueKeys: false, prettyErrors: false, strict: true, keepSourceTokens: false });
  } catch (e) {
    p.at(0, `the profile cannot be read as JSON (${(e as Error).message.split('\n')[0]})`);
    return undefined;
  }
  // yaml reports knock-on errors at the same place; the first one there says it best.
  const places = new Set<number>();
  for (const e of doc.errors) {
    if (places.has(e.pos[0])) continue;
    places.add(e.pos[0]);
    p.at(e.pos[0], `the profile is not valid JSON: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+.*$/, '')}`);
  }
  if (p.errors.length) return undefined;
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null && text.trim() === '')) {
    p.at(0, 'the profile is empty; it needs at least a `defaultAction`');
    return undefined;
  }
  return root;
}

// -- readers; each reports its own problems and returns undefined on any

/** How a message names what it found instead. */
function kindOf(n: YNode): string {
  if (isMap(n)) return 'an object';
  if (isSeq(n)) return 'a list';
  if (isScalar(n)) {
    const v = n.value;
    if (v === null) return 'null';
    if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
    if (typeof v === 'boolean') return String(v);
    return `the number ${String(v)}`;
  }
  return 'something else';
}

function intOf(n: YNode): bigint | undefined {
  if (!isScalar(n)) return undefined;
  const v = n.value;
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v); // 1e3 and friends
  return undefined;
}

const strOf = (p: Problems): Read<string> => (n, path) => {
  if (isScalar(n) && typeof n.value === 'string') return n.value;
  p.on(n, `\`${path}\` must be a string, not ${kindOf(n)}`);
  return undefined;
};

/** A string that `ok` accepts; `refuse` words the problem with it. */
const checked = (p: Problems, ok: (s: string) => boolean, refuse: (s: string, path: string) => string): Read<string> => (n, path) => {
  const s = strOf(p)(n, path);
  if (s === undefined) return undefined;
  if (!ok(s)) { p.on(n, refuse(s, path)); return undefined; }
  return s;
};

/** An integer from `min` to `max`, as a number, or a bigint past 2^53 when `big`. */
const intIn = (p: Problems, min: bigint, max: bigint, refuse: (found: string, path: string) => string, big = false): Read<number | bigint> => (n, path) => {
  const v = intOf(n);
  if (v === undefined || v < min || v > max) { p.on(n, refuse(kindOf(n), path)); return undefined; }
  return big && v > BigInt(Number.MAX_SAFE_INTEGER) ? v : Number(v);
};

const listOf = <T>(p: Problems, item: Read<T>): Read<T[]> => (n, path) => {
  if (!isSeq(n)) { p.on(n, `\`${path}\` must be a list, not ${kindOf(n)}`); return undefined; }
  const out: T[] = [];
  let ok = true;
  n.items.forEach((it, i) => {
    const v = item(it, `${path}[${i}]`);
    if (v === undefined) ok = false;
    else out.push(v);
  });
  return ok ? out : undefined;
};

/** One of a table's names; `extra` names the known ones sandbox refuses, with why. */
const oneOf = (p: Problems, table: Record<string, unknown>, what: string, extra: Record<string, string> = {}): Read<string> => (n, path) => {
  const s = strOf(p)(n, path);
  if (s === undefined) return undefined;
  if (Object.hasOwn(extra, s)) { p.on(n, `\`${path}\`: ${extra[s]}`); return undefined; }
  if (!Object.hasOwn(table, s)) { p.on(n, `\`${path}\`: unknown ${what} ${JSON.stringify(s)}; expected one of ${Object.keys(table).join(', ')}`); return undefined; }
  return s;
};

/** Reads a JSON object field by field: unknown, duplicate and missing fields are errors. */
const objectOf = (p: Problems, fields: Record<string, Field>, what: string): Read<Record<string, unknown>> => (n, path) => {
  const where = path || 'the profile';
  if (!isMap(n)) {
    p.on(n, path ? `\`${path}\` must be an object, not ${kindOf(n)}` : `a seccomp profile is a JSON object ({ ... }), not ${kindOf(n)}`);
    return undefined;
  }
  const out: Record<string, unknown> = {};
  const seen = new Map<string, number>();
  let ok = true;
  for (const pair of n.items) if (!readField(p, pair, { fields, what, where, path, seen, out })) ok = false;
  for (const [key, f] of Object.entries(fields)) {
    if (f.required && !seen.has(key)) {
      p.on(n, path ? `\`${path}\` has no \`${key}\`` : `the profile has no \`${key}\`; write "defaultAction": "SCMP_ACT_ERRNO" for an allow list`);
      ok = false;
    }
  }
  return ok ? out : undefined;
};

interface ObjectRead { fields: Record<string, Field>; what: string; where: string; path: string; seen: Map<string, number>; out: Record<string, unknown> }

/** One key and value of an object into `o.out`; false when either is wrong. */
function readField(p: Problems, pair: unknown, o: ObjectRead): boolean {
  if (!isPair(pair) || !isScalar(pair.key) || typeof pair.key.value !== 'string') {
    p.on(isPair(pair) ? pair.key : pair, `the keys of ${o.where} must be strings`);
    return false;
  }
  const key = pair.key.value;
  const at = rangeStart(pair.key);
  const first = o.seen.get(key);
  if (first !== undefined) {
    p.at(at, `\`${key}\` appears twice in ${o.where}; the first is on line ${p.lc.linePos(first).line}`);
    return false;
  }
  o.seen.set(key, at);
  const f = Object.hasOwn(o.fields, key) ? o.fields[key] : undefined;
  if (!f) {
    const hint = suggest(key, Object.keys(o.fields));
    p.at(at, `unknown field \`${key}\` in ${o.what}${hint ? `; did you mean \`${hint}\`?` : ''}`);
    return false;
  }
  const value = pair.value;
  if (!f.required && (value === null || (isScalar(value) && value.value === null))) return true;
  const v = f.read(value, o.path ? `${o.path}.${key}` : key);
  if (v === undefined) return false;
  o.out[key] = v;
  return true;
}

/** The readers of a profile's values, from the leaves up: each says its own problems. */
function valueReaders(p: Problems) {
  const errnoNum = intIn(p, 0n, BigInt(MAX_ERRNO), (found, path) => `\`${path}\` must be an errno number from 0 to ${MAX_ERRNO}, not ${found}`);
  const errnoName = checked(p, (s) => (/^\d+$/.test(s) ? Number(s) <= MAX_ERRNO : s in ERRNO), (s, path) => `\`${path}\`: unknown errno ${JSON.stringify(s)}; write a name such as EPERM or ENOSYS, or a number from 0 to ${MAX_ERRNO}`);
  const u64 = intIn(p, 0n, U64_MAX, (found, path) => `\`${path}\` must be an unsigned 64-bit integer, not ${found}`, true);
  const condArch = checked(p, (s) => CONDITION_ARCHES.has(s), (s, path) => `\`${path}\`: unknown architecture ${JSON.stringify(s)}; expected one of ${[...CONDITION_ARCHES].join(', ')}`);
  const cap = checked(p, (s) => (CAPABILITIES as readonly string[]).includes(capName(s)), (s, path) => `\`${path}\`: unknown capability ${JSON.stringify(s)}; write it as CAP_SYS_ADMIN or SYS_ADMIN`);
  const kernel = checked(p, (s) => {
    const m = /^(\d+)\.(\d+)$/.exec(s);
    return s === '' || (!!m && Number(m[1]) <= 255 && Number(m[2]) <= 255 && !(Number(m[1]) === 0 && Number(m[2]) === 0));
  }, (s, path) => `\`${path}\` must be a kernel version as major.minor, e.g. "4.8", not ${JSON.stringify(s)}`);
  const argIndex = intIn(p, 0n, 5n, (found, path) => `\`${path}\` must be 0..5 (a syscall has six arguments), not ${found}`);
  return {
    str: strOf(p), errnoNum, errnoName, u64, condArch, cap, kernel, argIndex,
    action: oneOf(p, ACTIONS, 'action', UNSUPPORTED_ACTIONS),
    arch: oneOf(p, ARCHES, 'architecture'),
    op: oneOf(p, OPS, 'operator'),
    flag: oneOf(p, Object.fromEntries(FLAGS.map((f) => [f, 1])), 'flag'),
  };
}

/** A syscall rule: the object's fields, and exactly one of `names` and `name`. */
function ruleReader(p: Problems, v: ReturnType<typeof valueReaders>): Read<SeccompRule> {
  const list = <T>(item: Read<T>) => listOf(p, item);
  const cond = objectOf(p, { caps: { read: list(v.cap) }, arches: { read: list(v.condArch) }, minKernel: { read: v.kernel } }, 'includes/excludes (caps, arches, minKernel)');
  const arg = objectOf(p, {
    index: { required: true, read: v.argIndex },
    value: { required: true, read: v.u64 },
    valueTwo: { read: v.u64 },
    op: { required: true, read: v.op },
  }, 'an argument condition (index, value, valueTwo, op)');
  const ruleObj = objectOf(p, {
    names: { read: list(v.str) },
    name: { read: v.str },
    action: { required: true, read: v.action },
    errnoRet: { read: v.errnoNum },
    errno: { read: v.errnoName },
    args: { read: list(arg) },
    comment: { read: v.str },
    includes: { read: cond },
    excludes: { read: cond },
  }, 'a syscall rule (names, action, errnoRet, args, includes, excludes, comment)');
  return (n, path) => {
    const r = ruleObj(n, path) as SeccompRule | undefined;
    if (!isMap(n)) return undefined;
    const names = n.items.find((x) => isScalar(x.key) && x.key.value === 'names');
    const name = n.items.find((x) => isScalar(x.key) && x.key.value === 'name');
    if (names && name) { p.on(name.key, `\`${path}\` has both \`name\` and \`names\`; use \`names\``); return undefined; }
    if (!names && !name) { p.on(n, `\`${path}\` has no \`names\``); return undefined; }
    return r;
  };
}

/** The whole profile's reader. */
function profileReader(p: Problems): Read<Record<string, unknown>> {
  const v = valueReaders(p);
  const list = <T>(item: Read<T>) => listOf(p, item);
  const archEntry = objectOf(p, { architecture: { required: true, read: v.arch }, subArchitectures: { read: list(v.arch) } }, 'an archMap entry (architecture, subArchitectures)');
  return objectOf(p, {
    defaultAction: { required: true, read: v.action },
    defaultErrnoRet: { read: v.errnoNum },
    defaultErrno: { read: v.errnoName },
    architectures: { read: list(v.arch) },
    archMap: { read: list(archEntry) },
    flags: { read: list(v.flag) },
    listenerPath: { read: v.str },
    listenerMetadata: { read: v.str },
    syscalls: { read: list(ruleReader(p, v)) },
  }, 'the profile');
}

/** Offset where [ or { nesting first exceeds `max` outside strings, or -1. Checked before
 * parsing: a deep enough nest exhausts the parser's memory. */
function deepNesting(text: string, max: number): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '[' || c === '{') { if (++depth > max) return i; }
    else if (c === ']' || c === '}') depth = Math.max(0, depth - 1);
  }
  return -1;
}

function rangeStart(n: unknown): number {
  const r = (n as { range?: [number, number, number] | null } | null)?.range;
  return r ? r[0] : 0;
}

/** The closest known name, for "did you mean": same letters ignoring case, or one or two edits away. */
function suggest(word: string, known: string[]): string | undefined {
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestD = 3;
  for (const k of known) {
    if (k.toLowerCase() === lower) return k;
    const d = distance(lower, k.toLowerCase());
    if (d < bestD) { bestD = d; best = k; }
  }
  return best;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

// ---------------------------------------------------------------------------------------------
// Resolution for one sandbox

export interface ResolvedRule {
  name: string;
  action: Action;
  /** 0 where the action has none. */
  errno: number;
  /** ANDed, except that filterProgram splits a rule with several conditions on one index. */
  args: { index: number; op: CmpOp; value: bigint; valueTwo: bigint }[];
}

/** The filter for one sandbox: the profile with includes/excludes resolved against the sandbox's capability set (bounding set, names without CAP_, e.g. 'SYS_ADMIN'), the host arch ('x86_64') and kernel version ('6.1.0' style). */
export interface ResolvedFilter {
  defaultAction: Action;
  defaultErrno: number;
  /** libseccomp names: 'x86_64', 'x86', 'x32'; the native arch first. */
  arches: string[];
  rules: ResolvedRule[];
  /** How many distinct syscall names end up allowed (unconditionally or with args) by a rule;
   * under a default action of allow, rules that only repeat it are dropped and not counted. */
  allowed: number;
}

export interface ResolveContext {
  caps: string[];
  arch: string;
  kernel: string;
}

/** Resolves a profile for one sandbox, as moby's setupSeccomp and runc's InitSeccomp would. Throws
 * on an unknown host arch or kernel version, and on a profile that parseProfile would refuse
 * (only possible for one built in code). */
export function resolveProfile(p: SeccompProfile, ctx: ResolveContext): ResolvedFilter {
  const host = hostArch(ctx.arch);
  const kv = kernelVersion(ctx.kernel);
  if (!kv) throw new Error(`seccomp: cannot read the kernel version ${JSON.stringify(ctx.kernel)}`);
  const caps = new Set(ctx.caps.map(capName));

  const defaultAction = actionOf(p.defaultAction);
  const defaultErrnoRet = p.defaultErrno !== undefined ? errnoValue(p.defaultErrno) : p.defaultErrnoRet;
  const defaultErrno = defaultAction === 'errno' ? defaultErrnoRet ?? EPERM : 0;
  const arches = filterArches(p, host);

  const collected: ResolvedRule[] = [];
  for (const r of p.syscalls ?? []) {
    if (r.name !== undefined && r.names !== undefined) throw new Error('seccomp: a rule has both `name` and `names`');
    if (!ruleApplies(r, host, caps, kv)) continue;
    const action = actionOf(r.action);
    const errno = action === 'errno' ? (r.errno !== undefined ? errnoValue(r.errno) : r.errnoRet ?? defaultErrnoRet ?? EPERM) : 0;
    // Same action and errno as the default: nothing to add (runc skips these too).
    if (action === defaultAction && errno === defaultErrno) continue;
    const args = (r.args ?? []).map(resolvedArg);
    for (const name of r.names ?? (r.name !== undefined ? [r.name] : [])) collected.push({ name, action, errno, args });
  }
  const rules = withoutMootRules(collected);
  const allowed = new Set(rules.filter((r) => r.action === 'allow').map((r) => r.name)).size;
  return { defaultAction, defaultErrno, arches, rules, allowed };
}

/** Architectures: archMap's entry for the host (moby), else the OCI list; the native one first,
 * as libseccomp always has it. */
function filterArches(p: SeccompProfile, host: HostArch): string[] {
  let listed: string[] = [];
  if (p.archMap?.length) {
    const entry = p.archMap.find((a) => a.architecture === host.scmp);
    if (entry) listed = [entry.architecture, ...(entry.subArchitectures ?? [])];
  } else if (p.architectures?.length) listed = p.architectures;
  const arches = [host.lib];
  for (const a of listed) {
    const lib = ARCHES[a];
    if (lib === undefined) throw new Error(`seccomp: unknown architecture ${JSON.stringify(a)}`);
    const name = lib === 'native' ? host.lib : lib;
    if (!arches.includes(name)) arches.push(name);
  }
  return arches;
}

/** A rule's includes and excludes against the host's arch, the sandbox's capabilities and the kernel. */
function ruleApplies(r: SeccompRule, host: HostArch, caps: Set<string>, kv: [number, number]): boolean {
  const archMatches = (list: string[]) => list.some((a) => host.names.includes(a));
  const kernelAtLeast = (min: string) => {
    const m = kernelVersion(min);
    if (!m) throw new Error(`seccomp: bad minKernel ${JSON.stringify(min)}`);
    return kv[0] > m[0] || (kv[0] === m[0] && kv[1] >= m[1]);
  };
  const ex = r.excludes;
  if (ex) {
    if (ex.arches?.length && archMatches(ex.arches)) return false;
    if (ex.caps?.length && ex.caps.some((c) => caps.has(capName(c)))) return false;
    if (ex.minKernel && kernelAtLeast(ex.minKernel)) return false;
  }
  const inc = r.includes;
  if (inc) {
    if (inc.arches?.length && !archMatches(inc.arches)) return false;
    if (inc.caps?.length && !inc.caps.every((c) => caps.has(capName(c)))) return false;
    if (inc.minKernel && !kernelAtLeast(inc.minKernel)) return false;
  }
  return true;
}

function resolvedArg(a: NonNullable<SeccompRule['args']>[number]): ResolvedRule['args'][number] {
  const o = OPS[a.op];
  if (!o) throw new Error(`seccomp: unknown operator ${JSON.stringify(a.op)}`);
  if (!Number.isInteger(a.index) || a.index < 0 || a.index > 5) throw new Error(`seccomp: argument index ${a.index} is not 0..5`);
  return { index: a.index, op: o, value: BigInt.asUintN(64, BigInt(a.value)), valueTwo: BigInt.asUintN(64, BigInt(a.valueTwo ?? 0)) };
}

/** An unconditional rule makes conditional ones with the same outcome for that name moot; exact
 * duplicates (ptrace listed twice, ...) are kept once. Profile order is kept otherwise. */
function withoutMootRules(collected: ResolvedRule[]): ResolvedRule[] {
  const outcome = (r: ResolvedRule) => `${r.name} ${r.action} ${r.errno}`;
  const unconditional = new Set(collected.filter((r) => r.args.length === 0).map(outcome));
  const seen = new Set<string>();
  const rules: ResolvedRule[] = [];
  for (const r of collected) {
    if (r.args.length && unconditional.has(outcome(r))) continue;
    const key = `${outcome(r)} ${r.args.map((a) => `${a.index}:${a.op}:${a.value}:${a.valueTwo}`).join(',')}`;
    if (seen.has(key)) continue;
    seen.add(key);
    rules.push(r);
  }
  return rules;
}

function actionOf(s: string): Action {
  const a = ACTIONS[s];
  if (a) return a;
  throw new Error(`seccomp: ${UNSUPPORTED_ACTIONS[s] ?? `unknown action ${JSON.stringify(s)}`}`);
}

function errnoValue(s: string): number {
  const v = /^\d+$/.test(s) ? Number(s) : ERRNO[s];
  if (v === undefined || v > MAX_ERRNO) throw new Error(`seccomp: unknown errno ${JSON.stringify(s)}`);
  return v;
}

/** CAP_SYS_ADMIN and SYS_ADMIN are the same capability here. */
function capName(c: string): string {
  return c.startsWith('CAP_') ? c.slice(4) : c;
}

function hostArch(arch: string): HostArch {
  const h = HOSTS.find((x) => x.aliases.includes(arch));
  if (!h) throw new Error(`seccomp: unknown host architecture ${JSON.stringify(arch)}`);
  return h;
}

/** [major, minor] of "6.1.0-13-amd64", "3.12-rc5", "4.8"; moby ignores the rest too. */
function kernelVersion(v: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(v);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

// ---------------------------------------------------------------------------------------------
// The program for the C side

/** The text program the C side (libseccomp, in native/) reads. One directive per line, each ended
 * by a newline, fields separated by one space:
 *   default <action> <errno>
 *   arch <libseccomp arch name>            (one line per arch; the native arch first)
 *   rule <action> <errno> <syscall name> [<index> <op> <value> <valueTwo>]...   (values as unsigned decimal, u64)
 * `errno` is 0 where the action has none. One `rule` line per syscall name per condition set. As
 * in runc, a rule with several conditions on one argument index cannot be one libseccomp rule
 * (libseccomp cannot AND two comparisons on one argument), so each of its conditions becomes a
 * line of its own (OR semantics), those on other indexes included. */
export function filterProgram(f: ResolvedFilter): string {
  const out = [`default ${f.defaultAction} ${f.defaultErrno}`];
  for (const a of f.arches) out.push(`arch ${a}`);
  for (const r of f.rules) {
    const head = `rule ${r.action} ${r.errno} ${r.name}`;
    const cond = (a: ResolvedRule['args'][number]) => ` ${a.index} ${a.op} ${BigInt.asUintN(64, a.value)} ${BigInt.asUintN(64, a.valueTwo)}`;
    const indexes = r.args.map((a) => a.index);
    if (new Set(indexes).size < indexes.length) for (const a of r.args) out.push(head + cond(a));
    else out.push(head + r.args.map(cond).join(''));
  }
  return out.join('\n') + '\n';
}
