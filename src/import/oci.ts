// An OCI bundle's config.json (runtime-spec 1.0 to 1.3) → the config people write, so that a
// container started by containerd, podman or the runtime-tools gets the same normalize, rules,
// plan, engine and attestation as a sandbox file (`sandbox-runtime`, `plan --oci`, `audit --oci`).
// One pure function: the file's bytes and the bundle's folder in, the config, where each key came
// from in config.json (line and column), and every field the engine cannot honour out, each a
// located `refused` note naming the field. Nothing is skipped silently: a field the runtime-spec
// says runtimes must ignore (one it does not define) is a `dropped` note, shown as a warning.
import { isAbsolute, join } from 'node:path';
import type { Diagnostic } from '../config/diagnostic';
import { parseConfig, type PathSeg } from '../config/parse';
import { deviceRuleText } from '../model/sections/resources';
import { DEFAULT_CAPABILITIES, DEFAULT_DEVICE_RULES, DEFAULT_DEVICES } from '../model/tables';
import { ordered, type Imported, type ImportNote, type Loc } from './types';

export interface OciImported extends Imported {
  /** config.json could not be read as JSON: nothing else is said. */
  errors: Diagnostic[];
  annotations: Record<string, string>;
  /** linux.seccomp as profile text (the runtime-spec's seccomp object is the profile format
   * security.seccomp reads); the config names it at `seccompPath`, which the loader serves. */
  seccomp?: { path: string; text: string };
  /** The hooks sandbox-runtime runs itself, on the host, in its own namespaces, each with the
   * container's state on stdin: prestart and createRuntime when `create` has made the container,
   * poststart after `start`, poststop at `delete`. */
  hooks: OciHooks;
  /** process.oomScoreAdj, which sandbox-runtime writes for the created process before start. */
  oomScoreAdj?: number;
}

/** One hook of config.json: an absolute program, its argv (argv[0] included), env and timeout. */
export interface OciHook { path: string; args: string[]; env: string[]; timeout?: number }
export type OciHooks = Record<'prestart' | 'createRuntime' | 'poststart' | 'poststop', OciHook[]>;

export interface OciOptions {
  /** The bundle's folder, absolute: root.path and bind sources are relative to it. */
  bundle: string;
  /** The sandbox's name (the container's id). */
  name: string;
  /** Whether SELinux is enabled on this host (the caller reads /sys/fs/selinux): without it, a
   * label can be given to nothing, by any runtime. */
  selinux?: boolean;
}

type J = Record<string, unknown>;
const isObj = (v: unknown): v is J => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The namespaces of the runtime-spec → the config's `namespaces` keys. */
const NS: Record<string, string> = { pid: 'pid', mount: 'mount', uts: 'uts', ipc: 'ipc', network: 'net', cgroup: 'cgroup', user: 'user', time: 'time' };
const RLIMITS = new Set(['as', 'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack']);
/** Bind options the config's `volumes` say (or that every bind here has: rbind, rprivate). */
const PROPAGATION = new Set(['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave', 'unbindable', 'runbindable']);
const BIND_OPTS = new Set(['bind', 'rbind', 'ro', 'rw', 'nosuid', 'nodev', 'noexec', 'suid', 'dev', 'exec', 'noatime', 'relatime', 'strictatime', ...PROPAGATION]);

/** The whole adapter: config.json's bytes → the config, its origins and its notes. */
export function fromOciConfig(file: string, bytes: Uint8Array, opts: OciOptions): OciImported {
  // JSON read by the YAML parser that locates every value (JSON is YAML, but for tab indentation:
  // a tab outside a string is whitespace, and inside a JSON string it is always escaped, so each
  // one becomes a space of the same column).
  const parsed = parseConfig(file, Uint8Array.from(bytes, (b) => (b === 9 ? 32 : b)));
  const out: OciImported = { config: { version: 1 } as OciImported['config'], notes: [], origin: [], text: parsed.text, errors: parsed.diagnostics, annotations: {}, hooks: { prestart: [], createRuntime: [], poststart: [], poststop: [] } };
  if (parsed.diagnostics.length) return out;
  // YAML reads more than JSON (`{"a": }` is a null there): config.json must be JSON itself.
  try { JSON.parse(parsed.text); } catch (e) {
    const pos = jsonErrorAt(parsed.text, (e as Error).message);
    const before = parsed.text.slice(0, pos).split('\n');
    out.errors.push({ file, line: before.length, col: before.at(-1)!.length + 1, path: '', code: 'oci-json', message: `not JSON: ${(e as Error).message.replace(/ in JSON at position [0-9]+.*$/, '').replace(/, .*$/s, '')}`, severity: 'error' });
    return out;
  }
  const at = (path: readonly PathSeg[]): Loc => { const s = parsed.locate(path); return { file, line: s.line, col: s.col, endCol: s.endLine === s.line ? s.endCol : undefined }; };
  const m = new Mapper(out, at);
  const v = parsed.value;
  if (!isObj(v)) { m.refuse([], 'config.json holds no object: an OCI bundle\'s config.json is a JSON object with ociVersion, process and root'); return out; }
  m.top(v, opts);
  m.selinux(v, opts.selinux === true);
  // config.json's strings are literal: none is interpolated as the file's ${VAR} are.
  out.config = literal(ordered(out.config)) as OciImported['config'];
  return out;
}

/** The walk over config.json: each method maps one object of the runtime-spec. */
class Mapper {
  readonly c: J;
  constructor(private readonly out: OciImported, private readonly at: (p: readonly PathSeg[]) => Loc) { this.c = out.config as J; }

  note(kind: ImportNote['kind'], path: readonly PathSeg[], code: string, message: string): void {
    this.out.notes.push({ kind, at: this.at(path), code, message: `${show(path)}: ${message}` });
  }
  refuse(path: readonly PathSeg[], message: string): void { this.note('refused', path, 'oci-unsupported', message); }
  /** Sets a key of the config, citing the field of config.json it came from. */
  set(key: PathSeg[], value: unknown, from: readonly PathSeg[]): void {
    let node = this.c;
    for (const k of key.slice(0, -1)) node = (node[k as string] ??= {}) as J;
    node[key.at(-1) as string] = value;
    this.out.origin.push({ path: key, at: this.at(from) });
  }
  /** Appends to a list of the config, citing the field of config.json the item came from. */
  push(key: PathSeg[], value: unknown, from: readonly PathSeg[]): void {
    let node = this.c;
    for (const k of key.slice(0, -1)) node = (node[k as string] ??= {}) as J;
    const list = ((node[key.at(-1) as string] ??= []) as unknown[]);
    list.push(value);
    this.out.origin.push({ path: [...key, list.length - 1], at: this.at(from) });
  }
  /** Fields the runtime-spec defines that this object may hold, with which ones are mapped: any
   * other field is ignored as the spec says, but said (dropped). */
  known(obj: J, path: PathSeg[], keys: string[]): void {
    for (const k of Object.keys(obj)) if (!keys.includes(k)) this.note('dropped', [...path, k], 'oci-unknown-field', 'not a field of the runtime-spec here; ignored, as the spec says runtimes do');
  }
  /** A field the engine cannot honour, when it says anything. */
  unsupported(obj: J, path: PathSeg[], keys: string[], why: string): void {
    for (const k of keys) {
      const v = obj[k];
      if (v === undefined || v === null || v === '' || v === false || v === 0 || (Array.isArray(v) && !v.length) || (isObj(v) && !Object.keys(v).length)) continue;
      this.refuse([...path, k], why);
    }
  }

  top(v: J, opts: OciOptions): void {
    this.known(v, [], ['ociVersion', 'process', 'root', 'hostname', 'domainname', 'mounts', 'hooks', 'annotations', 'linux', 'solaris', 'windows', 'vm', 'zos']);
    const ver = v.ociVersion;
    if (typeof ver !== 'string' || !/^1\.[0-3]\.[0-9]+(-.*)?$/.test(ver)) this.refuse(['ociVersion'], `${JSON.stringify(ver)} is not a runtime-spec version sandbox reads (1.0.0 to 1.3.x)`);
    this.set(['name'], opts.name, ['ociVersion']);
    this.unsupported(v, [], ['solaris', 'windows', 'vm', 'zos'], 'this runtime runs Linux containers only');
    if (v.hooks !== undefined) this.hooks(v.hooks);
    this.unsupported(v, [], ['domainname'], 'sandbox sets no NIS domain name');
    if (isObj(v.annotations)) for (const [k, a] of Object.entries(v.annotations)) if (typeof a === 'string') this.out.annotations[k] = a;
    this.root(v.root, opts.bundle);
    if (isObj(v.process)) this.process(v.process);
    else this.refuse(['process'], 'a container needs a process to run');
    if (typeof v.hostname === 'string' && v.hostname) this.set(['hostname'], v.hostname, ['hostname']);
    const linux = isObj(v.linux) ? v.linux : {};
    this.namespaces(linux);
    if (Array.isArray(v.mounts)) v.mounts.forEach((mt, i) => this.mount(mt, i, opts.bundle, linux));
    this.linux(linux, opts.bundle);
  }

  /** SELinux labels: refused where SELinux is on (sandbox applies none); where it is off, no
   * process or mount can carry one, with any runtime (runc and crun leave them off there): said. */
  selinux(v: J, enabled: boolean): void {
    const at: [J | undefined, PathSeg[], string][] = [[isObj(v.process) ? v.process : undefined, ['process'], 'selinuxLabel'], [isObj(v.linux) ? v.linux : undefined, ['linux'], 'mountLabel']];
    for (const [obj, path, key] of at) {
      if (!obj || typeof obj[key] !== 'string' || !obj[key]) continue;
      if (enabled) this.refuse([...path, key], 'sandbox applies no SELinux label; remove it, or use a runtime that does');
      else this.note('dropped', [...path, key], 'oci-no-selinux', 'SELinux is not enabled on this host, so nothing can carry this label (runc and crun leave it off too); ignored');
    }
  }

  hooks(h: unknown): void {
    if (!isObj(h)) { this.refuse(['hooks'], 'hooks is an object of lists (prestart, createRuntime, poststart, poststop)'); return; }
    this.known(h, ['hooks'], ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']);
    this.unsupported(h, ['hooks'], ['createContainer', 'startContainer'], 'these hooks run inside the container\'s namespaces, which sandbox-runtime does not do; run the program from the container\'s command, or make it a createRuntime or poststart hook');
    for (const kind of ['prestart', 'createRuntime', 'poststart', 'poststop'] as const) {
      const list = h[kind];
      if (list === undefined || list === null) continue;
      if (!Array.isArray(list)) { this.refuse(['hooks', kind], 'a list of hooks ({path, args, env, timeout})'); continue; }
      list.forEach((x, i) => {
        const P = ['hooks', kind, i];
        const strings = (v: unknown) => v === undefined || (Array.isArray(v) && v.every((a) => typeof a === 'string'));
        if (!isObj(x) || typeof x.path !== 'string' || !x.path.startsWith('/') || !strings(x.args) || !strings(x.env) || (x.timeout !== undefined && (typeof x.timeout !== 'number' || !Number.isInteger(x.timeout) || x.timeout <= 0))) {
          this.refuse(P, 'a hook is {path: an absolute program, args: [strings], env: [strings], timeout: seconds above 0}');
          return;
        }
        this.known(x, P, ['path', 'args', 'env', 'timeout']);
        this.out.hooks[kind].push({ path: x.path, args: (x.args as string[] | undefined) ?? [x.path], env: (x.env as string[] | undefined) ?? [], ...(x.timeout !== undefined ? { timeout: x.timeout as number } : {}) });
      });
    }
    // runc calls prestart and createRuntime hooks before pivot_root; sandbox's engine pivots and
    // waits for start in one go, so they run once the container exists, with its root pivoted.
    const early = (['prestart', 'createRuntime'] as const).find((k) => this.out.hooks[k].length);
    if (early) this.note('changed', ['hooks', early], 'oci-hook-timing', 'run by sandbox-runtime on the host once the container is created (its namespaces, cgroup and pivoted root made, its process waiting for start), not before pivot_root');
  }

  root(r: unknown, bundle: string): void {
    if (!isObj(r) || typeof r.path !== 'string' || !r.path) { this.refuse(['root'], 'root.path names the container\'s root filesystem; it is needed'); return; }
    this.known(r, ['root'], ['path', 'readonly']);
    this.set(['rootfs'], { type: 'dir', path: isAbsolute(r.path) ? r.path : join(bundle, r.path) }, ['root', 'path']);
    if (typeof r.readonly === 'boolean') this.set(['security', 'read_only'], r.readonly, ['root', 'readonly']);
  }

  process(p: J): void {
    const P = ['process'];
    this.known(p, P, ['terminal', 'consoleSize', 'cwd', 'env', 'args', 'commandLine', 'rlimits', 'apparmorProfile', 'capabilities', 'noNewPrivileges', 'oomScoreAdj', 'selinuxLabel', 'ioPriority', 'scheduler', 'execCPUAffinity', 'user']);
    if (Array.isArray(p.args) && p.args.length && p.args.every((a) => typeof a === 'string')) {
      this.set(['entrypoint'], [], [...P, 'args']);
      this.set(['command'], p.args, [...P, 'args']);
    } else this.refuse([...P, 'args'], 'a list of strings with the program first is needed');
    if (Array.isArray(p.env)) this.set(['env'], p.env.filter((e) => typeof e === 'string'), [...P, 'env']);
    // Without PATH in env, a bare program name is not searched for (as runc, which execs args[0]
    // as given when it has a slash, and looks it up in the process's own PATH otherwise).
    if (typeof p.cwd === 'string') this.set(['workdir'], p.cwd, [...P, 'cwd']);
    if (p.terminal === true) this.set(['tty'], true, [...P, 'terminal']);
    // The process reads the runtime's stdin, as runc gives it (containerd passes a pipe or /dev/null).
    this.set(['stdin_open'], true, P);
    // Set by sandbox-runtime on the terminal's master before it goes over the console socket.
    if (p.consoleSize !== undefined) {
      const s = p.consoleSize, dim = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 65535;
      if (!isObj(s) || !dim(s.height) || !dim(s.width)) this.refuse([...P, 'consoleSize'], '{height, width}: the terminal\'s rows and columns, 0 to 65535');
      else if (p.terminal !== true) this.note('dropped', [...P, 'consoleSize'], 'oci-console-size', 'the size of a terminal, and process.terminal gives none; ignored');
    }
    this.unsupported(p, P, ['commandLine'], 'a Windows field');
    this.unsupported(p, P, ['apparmorProfile'], 'sandbox applies no LSM label; remove it, or use a runtime that does');
    // Written by sandbox-runtime into /proc/PID/oom_score_adj of the created process, before start.
    if (p.oomScoreAdj !== undefined) {
      if (typeof p.oomScoreAdj !== 'number' || !Number.isInteger(p.oomScoreAdj) || p.oomScoreAdj < -1000 || p.oomScoreAdj > 1000) this.refuse([...P, 'oomScoreAdj'], 'an integer from -1000 to 1000');
      else this.out.oomScoreAdj = p.oomScoreAdj;
    }
    this.unsupported(p, P, ['ioPriority', 'scheduler', 'execCPUAffinity'], 'sandbox does not set it; remove it');
    this.set(['security', 'no_new_privileges'], p.noNewPrivileges === true, p.noNewPrivileges === undefined ? P : [...P, 'noNewPrivileges']);
    const uid = this.user(p.user);
    if (Array.isArray(p.rlimits)) p.rlimits.forEach((r, i) => this.rlimit(r, [...P, 'rlimits', i]));
    this.capabilities(p.capabilities, uid);
  }

  user(u: unknown): number {
    const P = ['process', 'user'];
    if (!isObj(u)) { this.refuse(P, 'process.user with uid and gid is needed'); return 0; }
    this.known(u, P, ['uid', 'gid', 'umask', 'additionalGids', 'username']);
    const uid = typeof u.uid === 'number' ? u.uid : 0, gid = typeof u.gid === 'number' ? u.gid : 0;
    this.set(['user'], `${uid}:${gid}`, P);
    if (Array.isArray(u.additionalGids) && u.additionalGids.length) this.set(['group_add'], u.additionalGids, [...P, 'additionalGids']);
    if (typeof u.umask === 'number') this.set(['umask'], u.umask.toString(8).padStart(4, '0'), [...P, 'umask']);
    if (typeof u.username === 'string' && u.username) this.note('dropped', [...P, 'username'], 'oci-windows-field', 'a Windows field; ignored on Linux, as the runtime-spec says (uid and gid name the user)');
    return uid;
  }

  rlimit(r: unknown, path: PathSeg[]): void {
    const name = isObj(r) && typeof r.type === 'string' ? r.type.replace(/^RLIMIT_/, '').toLowerCase() : '';
    if (!isObj(r) || !RLIMITS.has(name) || typeof r.soft !== 'number' || typeof r.hard !== 'number') { this.refuse(path, 'an rlimit is {type: RLIMIT_NAME, soft, hard} with a Linux limit name'); return; }
    const big = (n: number) => (n >= 2 ** 63 - 1 || n < 0 ? -1 : n);
    this.set(['ulimits', name], { soft: big(r.soft), hard: big(r.hard) }, path);
  }

  /**
   * The bounding set becomes the change from sandbox's default set (cap_add, cap_drop). sandbox
   * gives root its whole bounding set, and a user other than root exactly what cap_add names
   * (ambient); other shapes of the five sets cannot be said, and are refused.
   */
  capabilities(c: unknown, uid: number): void {
    const P = ['process', 'capabilities'];
    const names = (k: string) => (isObj(c) && Array.isArray(c[k]) ? (c[k] as unknown[]).map((x) => String(x).toUpperCase().replace(/^CAP_/, '')) : undefined);
    const bounding = names('bounding') ?? [];
    if (isObj(c)) this.known(c, P, ['bounding', 'effective', 'permitted', 'inheritable', 'ambient']);
    const defaults = DEFAULT_CAPABILITIES as readonly string[];
    const drop = defaults.filter((d) => !bounding.includes(d)), add = [...new Set(bounding.filter((b) => !defaults.includes(b)))];
    const from = isObj(c) && c.bounding !== undefined ? [...P, 'bounding'] : isObj(c) ? P : ['process'];
    if (drop.length === defaults.length) this.set(['cap_drop'], ['ALL'], from);
    else if (drop.length) this.set(['cap_drop'], drop, from);
    if (add.length) this.set(['cap_add'], drop.length === defaults.length ? bounding : add, from);
    const same = (a: string[], b: string[]) => a.length === new Set(b).size && a.every((x) => b.includes(x));
    // inheritable and ambient are set as they are (security.capabilities); effective and
    // permitted are what exec leaves: root's the bounding set, another uid's its ambient set.
    // An ambient capability that is not inheritable cannot be held (runc warns and goes on): said, left out.
    const inh = names('inheritable') ?? [], amb = (names('ambient') ?? []).filter((a) => inh.includes(a));
    const notInh = [...new Set((names('ambient') ?? []).filter((a) => !inh.includes(a) && bounding.includes(a)))];
    if (notInh.length) this.note('dropped', [...P, 'ambient'], 'oci-ambient-not-inheritable', `${notInh.join(', ')}: not in inheritable, so the kernel cannot keep ${notInh.length > 1 ? 'them' : 'it'} ambient`);
    const exact = inh.length > 0 || amb.length > 0;
    for (const k of ['effective', 'permitted', 'inheritable', 'ambient']) {
      const set = names(k);
      if (!set || !set.length) continue;
      const extra = set.filter((x) => !bounding.includes(x));
      if (extra.length) { this.refuse([...P, k], `${extra.join(', ')} is not in the bounding set`); continue; }
      if (k === 'inheritable' || k === 'ambient') {
        if (exact && (k === 'inheritable' || amb.length)) this.set(['security', 'capabilities', k], [...new Set(k === 'inheritable' ? set : amb)], [...P, k]);
        continue;
      }
      if (uid === 0 && !same([...new Set(set)], bounding)) this.refuse([...P, k], 'exec gives root the whole bounding set: make it the same list as bounding');
      const held = exact ? amb : drop.length === defaults.length ? bounding : add;
      if (uid !== 0 && !same([...new Set(set)], held)) this.refuse([...P, k], exact ? `exec leaves a user other than root exactly its ambient set (${[...new Set(amb)].join(', ') || 'none'}): make ${k} that list` : `a user other than root holds exactly the capabilities added to sandbox's default set (${add.join(', ') || 'none'}): make ${k} that list, or empty`);
    }
    if (exact && !inh.length) this.set(['security', 'capabilities', 'inheritable'], [], isObj(c) && c.inheritable !== undefined ? [...P, 'inheritable'] : P);
  }

  namespaces(linux: J): void {
    const L = ['linux', 'namespaces'];
    const list = Array.isArray(linux.namespaces) ? linux.namespaces : [];
    const seen = new Map<string, { path?: string; i: number }>();
    list.forEach((n, i) => {
      const key = isObj(n) && typeof n.type === 'string' ? NS[n.type] : undefined;
      if (!isObj(n) || !key) { this.refuse([...L, i], `not a namespace type of Linux (${Object.keys(NS).join(', ')})`); return; }
      if (n.path !== undefined && (typeof n.path !== 'string' || !n.path.startsWith('/'))) { this.refuse([...L, i, 'path'], 'the path of a namespace to join is absolute'); return; }
      seen.set(key, { path: n.path as string | undefined, i });
    });
    for (const key of Object.values(NS)) {
      const n = seen.get(key);
      const from = n ? [...L, n.i] : Array.isArray(linux.namespaces) ? L : ['linux'];
      if (key === 'mount' && !n) { this.refuse(from, 'sandbox always makes a mount namespace (its root is pivoted): add {"type": "mount"}'); continue; }
      if (key === 'user' && n && !n.path) continue; // with its maps, below
      const val = !n ? (key === 'net' ? undefined : false) : n.path ?? true;
      if (key === 'net') this.set(['network'], !n ? 'host' : 'none', from);
      if (val !== undefined && !(key === 'net' && val === true)) this.set(['namespaces', key], val, from);
    }
    const user = seen.get('user');
    if (user && !user.path) this.userMaps(linux, [...L, user.i]);
    else for (const k of ['uidMappings', 'gidMappings']) if (Array.isArray(linux[k]) && linux[k].length) this.refuse(['linux', k], 'id maps need a new user namespace: add {"type": "user"} to linux.namespaces');
  }

  userMaps(linux: J, from: PathSeg[]): void {
    const maps: J = {};
    for (const [k, key] of [['uidMappings', 'uid_map'], ['gidMappings', 'gid_map']] as const) {
      const list = linux[k];
      if (!Array.isArray(list) || !list.length) { this.refuse(['linux', k], 'a new user namespace needs its id maps here'); continue; }
      maps[key] = list.map((r, i) => {
        if (!isObj(r) || typeof r.containerID !== 'number' || typeof r.hostID !== 'number' || typeof r.size !== 'number') { this.refuse(['linux', k, i], '{containerID, hostID, size} is needed'); return '0:0:1'; }
        return `${r.containerID}:${r.hostID}:${r.size}`;
      });
    }
    this.set(['namespaces', 'user'], maps, from);
  }

  mount(mt: unknown, i: number, bundle: string, linux: J): void {
    const P: PathSeg[] = ['mounts', i];
    if (!isObj(mt) || typeof mt.destination !== 'string' || !mt.destination.startsWith('/')) { this.refuse(P, 'a mount needs an absolute destination'); return; }
    this.known(mt, P, ['destination', 'source', 'options', 'type', 'uidMappings', 'gidMappings']);
    this.unsupported(mt, P, ['uidMappings', 'gidMappings'], 'id-mapped mounts are not made by sandbox');
    const dest = mt.destination.replace(/\/+$/, '') || '/', type = typeof mt.type === 'string' ? mt.type : '';
    const o = Array.isArray(mt.options) ? mt.options.map(String) : [];
    const cgroupNs = Array.isArray(linux.namespaces) && linux.namespaces.some((n) => isObj(n) && n.type === 'cgroup');
    // What sandbox mounts by itself on every sandbox (the plan's mounts stage shows each).
    const own: Record<string, string[]> = { '/proc': ['proc'], '/dev': ['tmpfs'], '/dev/pts': ['devpts'], '/sys': ['sysfs'], '/sys/fs/cgroup': ['cgroup', 'cgroup2'] };
    if (own[dest]?.includes(type)) {
      if (dest === '/sys/fs/cgroup' && !cgroupNs) this.note('dropped', P, 'oci-cgroup-mount', 'sandbox mounts the container\'s own cgroup on /sys/fs/cgroup only with a cgroup namespace (add {"type": "cgroup"}); without, nothing is mounted there');
      else if (dest === '/sys' && !o.includes('ro')) this.note('changed', P, 'oci-sys-ro', '/sys is mounted read-only');
      return;
    }
    if (dest === '/dev/shm' && type === 'tmpfs') { const size = sizeOpt(o); if (size !== undefined) this.set(['shm_size'], size, P); return; }
    if (dest === '/dev/mqueue' && type === 'mqueue') { this.set(['mqueue'], true, P); return; }
    const list = (this.c.volumes ??= []) as unknown[];
    if (type === 'bind' || o.includes('bind') || o.includes('rbind')) {
      // A file system's data options (tmpfs's size=, mode=) mean nothing to a bind mount: the kernel
      // ignores them there, as runc's bind mounts do; said, not applied.
      const data = o.filter((x) => /^(size|mode|uid|gid|nr_inodes)=/.test(x));
      if (data.length) this.note('dropped', [...P, 'options'], 'oci-bind-data', `${data.join(', ')}: a file system's options, which a bind mount has none of; ignored, as the kernel does`);
      const bad = o.filter((x) => !BIND_OPTS.has(x) && !data.includes(x));
      if (bad.length) { this.refuse([...P, 'options'], `${bad.join(', ')}: not an option sandbox applies to a bind mount`); return; }
      if (typeof mt.source !== 'string' || !mt.source) { this.refuse([...P, 'source'], 'a bind mount needs its source'); return; }
      const flags = o.filter((x) => ['nosuid', 'nodev', 'noexec', 'noatime', 'relatime', 'strictatime'].includes(x));
      const prop = o.filter((x) => PROPAGATION.has(x)).at(-1);
      list.push({ type: 'bind', source: isAbsolute(mt.source) ? mt.source : join(bundle, mt.source), target: dest, ...(o.includes('ro') ? { read_only: true } : {}), ...(prop ? { propagation: prop } : {}), ...(flags.length ? { options: flags } : {}) });
    } else if (type === 'tmpfs') {
      const size = sizeOpt(o), mode = o.find((x) => x.startsWith('mode='))?.slice(5);
      const bad = o.filter((x) => !/^(size|mode)=/.test(x) && !PROPAGATION.has(x) && !['nosuid', 'nodev', 'noexec', 'strictatime', 'relatime', 'noatime', 'rw', 'ro'].includes(x));
      if (bad.length) { this.refuse([...P, 'options'], `${bad.join(', ')}: not an option sandbox applies to a tmpfs`); return; }
      const flags = o.filter((x) => ['nosuid', 'nodev', 'noexec', 'noatime', 'relatime', 'strictatime', 'ro'].includes(x));
      const prop = o.filter((x) => PROPAGATION.has(x)).at(-1);
      list.push({ type: 'tmpfs', target: dest, ...(size !== undefined ? { size } : {}), ...(mode ? { mode } : {}), ...(prop ? { propagation: prop } : {}), ...(flags.length ? { options: flags } : {}) });
    } else { this.refuse([...P, 'type'], `a ${type || 'typeless'} mount on ${dest} is not made by sandbox (binds and tmpfs are)`); return; }
    this.out.origin.push({ path: ['volumes', list.length - 1], at: this.at(P) });
  }

  linux(l: J, bundle: string): void {
    const L = ['linux'];
    this.known(l, L, ['namespaces', 'uidMappings', 'gidMappings', 'timeOffsets', 'devices', 'cgroupsPath', 'resources', 'unified', 'rootfsPropagation', 'seccomp', 'sysctl', 'maskedPaths', 'readonlyPaths', 'mountLabel', 'intelRdt', 'personality', 'memoryPolicy', 'netDevices']);
    this.unsupported(l, L, ['timeOffsets', 'unified', 'intelRdt', 'personality', 'memoryPolicy', 'netDevices'], 'sandbox does not set it; remove it');
    // Applied once pivoted (runc's order): the tree was made private first, so a shared root
    // shares with the container's own bind mounts of it, never with the host.
    if (l.rootfsPropagation !== undefined && l.rootfsPropagation !== '') {
      if (typeof l.rootfsPropagation === 'string' && PROPAGATION.has(l.rootfsPropagation)) this.set(['root_propagation'], l.rootfsPropagation, [...L, 'rootfsPropagation']);
      else this.refuse([...L, 'rootfsPropagation'], `one of ${[...PROPAGATION].join(', ')}`);
    }
    // The container's cgroup is where the bundle says (runc's rule: absolute from the root,
    // relative under sandbox/); `delete` removes the levels the run made and keeps the others.
    if (typeof l.cgroupsPath === 'string' && l.cgroupsPath) this.set(['resources', 'cgroup_path'], l.cgroupsPath, [...L, 'cgroupsPath']);
    if (isObj(l.resources)) this.resources(l.resources);
    if (isObj(l.sysctl) && Object.keys(l.sysctl).length) this.set(['sysctls'], l.sysctl, [...L, 'sysctl']);
    for (const [k, key] of [['maskedPaths', 'masked_paths'], ['readonlyPaths', 'readonly_paths']] as const) {
      if (Array.isArray(l[k]) && l[k].length) this.set(['security', key], l[k], [...L, k]);
    }
    const userns = Array.isArray(l.namespaces) && l.namespaces.some((n) => isObj(n) && n.type === 'user');
    if (Array.isArray(l.devices)) l.devices.forEach((d, i) => this.device(d, [...L, 'devices', i], userns));
    if (isObj(l.seccomp)) this.seccomp(l.seccomp, bundle);
    else this.set(['security', 'seccomp'], 'unconfined', L);
  }

  device(d: unknown, path: PathSeg[], userns: boolean): void {
    if (!isObj(d) || typeof d.path !== 'string' || !d.path.startsWith('/dev/')) { this.refuse(path, 'a device is {path: /dev/…, type, major, minor}'); return; }
    const type = d.type === 'u' ? 'c' : d.type;
    const num = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0;
    const dflt = DEFAULT_DEVICES.find((x) => `/dev/${x.name}` === d.path);
    if (dflt && type === 'c' && d.major === dflt.major && d.minor === dflt.minor) { this.note('changed', path, 'oci-default-device', `sandbox's own ${d.path} (${dflt.major}:${dflt.minor}) is there already, bound from the host`); return; }
    // Made by its numbers, as the runtime-spec says (runc's mknod); in a new user namespace, where
    // the kernel refuses mknod, the host's node of that path is bound in (as runc does there).
    if (!userns && (type === 'p' || ((type === 'c' || type === 'b') && num(d.major) && num(d.minor)))) {
      if ([d.fileMode, d.uid, d.gid].some((v) => v !== undefined && !num(v))) { this.refuse(path, 'fileMode, uid and gid are numbers'); return; }
      const node = { target: d.path, type, ...(type === 'p' ? {} : { major: d.major, minor: d.minor }), ...(d.fileMode !== undefined ? { mode: ((d.fileMode as number) & 0o7777).toString(8).padStart(4, '0') } : {}), ...(d.uid !== undefined ? { uid: d.uid } : {}), ...(d.gid !== undefined ? { gid: d.gid } : {}) };
      this.push(['devices'], node, path);
      return;
    }
    if (!userns) { this.refuse(path, 'a device is made by its type (c, b, u or p) and, but for p, its major and minor numbers'); return; }
    // The host's node of that path is bound in: its type and numbers must be the host's.
    ((this.c.devices ??= []) as unknown[]).push({ source: d.path, target: d.path, permissions: 'rwm' });
    this.out.origin.push({ path: ['devices', (this.c.devices as unknown[]).length - 1], at: this.at(path) });
    this.unsupported(d, path, ['fileMode', 'uid', 'gid'], 'the node is the host\'s, with the host\'s mode and owner');
  }

  seccomp(s: J, bundle: string): void {
    const P = ['linux', 'seccomp'];
    this.unsupported(s, P, ['listenerPath', 'listenerMetadata', 'flags'], 'sandbox loads the filter with no flags and no listener');
    const path = join(bundle, 'config.json#seccomp');
    this.out.seccomp = { path, text: JSON.stringify({ defaultAction: s.defaultAction, ...(s.defaultErrnoRet !== undefined ? { defaultErrnoRet: s.defaultErrnoRet } : {}), ...(s.architectures ? { architectures: s.architectures } : {}), syscalls: s.syscalls ?? [] }, null, 1) };
    this.set(['security', 'seccomp'], path, P);
  }

  resources(r: J): void {
    const R = ['linux', 'resources'];
    this.known(r, R, ['devices', 'memory', 'cpu', 'pids', 'blockIO', 'hugepageLimits', 'network', 'rdma', 'unified']);
    this.unsupported(r, R, ['hugepageLimits', 'network', 'rdma', 'unified'], 'sandbox does not set this limit; remove it');
    // sandbox denies every device but its /dev's (the default nodes and linux.devices): a leading
    // deny-all says the same; an allow rule those already cover is said once, as a change; any
    // other allow rule becomes one of device_cgroup_rules. A deny rule after it is refused.
    let covered = -1;
    if (Array.isArray(r.devices)) r.devices.forEach((d, i) => {
      if (isObj(d) && d.allow === false && (d.type === undefined || d.type === 'a') && d.major === undefined && d.minor === undefined && i === 0) return;
      const rule = isObj(d) && d.allow === true ? ociDeviceRule(d) : undefined;
      if (rule === undefined) { this.refuse([...R, 'devices', i], 'sandbox keeps device cgroup allow rules after one deny-all, as {allow: true, type, major, minor, access}'); return; }
      if (DEFAULT_DEVICE_RULES.includes(rule)) { if (covered < 0) covered = i; return; }
      this.push(['resources', 'device_cgroup_rules'], rule, [...R, 'devices', i]);
    });
    if (covered >= 0) this.note('changed', [...R, 'devices', covered], 'oci-device-rule', 'the rules for the default nodes are sandbox\'s own: /dev holds them and the devices controller allows them');
    const mem = isObj(r.memory) ? r.memory : {}, M = [...R, 'memory'];
    const num = (v: unknown) => (typeof v === 'number' && v > 0 ? v : undefined);
    if (num(mem.limit)) this.set(['resources', 'memory'], mem.limit, [...M, 'limit']);
    if (num(mem.reservation)) this.set(['resources', 'memory_reservation'], mem.reservation, [...M, 'reservation']);
    if (typeof mem.swap === 'number' && mem.swap !== 0) this.set(['resources', 'memory_swap'], mem.swap, [...M, 'swap']);
    this.unsupported(mem, M, ['kernel', 'kernelTCP', 'swappiness', 'disableOOMKiller', 'checkBeforeUpdate'], 'sandbox does not set it; remove it');
    const cpu = isObj(r.cpu) ? r.cpu : {}, C = [...R, 'cpu'];
    if (num(cpu.quota)) this.set(['resources', 'cpus'], Math.round(((cpu.quota as number) / (num(cpu.period) ?? 100000)) * 1000) / 1000, [...C, 'quota']);
    if (num(cpu.shares)) this.set(['resources', 'cpu_shares'], cpu.shares, [...C, 'shares']);
    if (typeof cpu.cpus === 'string' && cpu.cpus) this.set(['resources', 'cpuset'], cpu.cpus, [...C, 'cpus']);
    if (typeof cpu.mems === 'string' && cpu.mems) this.set(['resources', 'cpuset_mems'], cpu.mems, [...C, 'mems']);
    this.unsupported(cpu, C, ['realtimeRuntime', 'realtimePeriod', 'idle', 'burst'], 'sandbox does not set it; remove it');
    if (isObj(r.pids) && typeof r.pids.limit === 'number' && r.pids.limit !== 0) this.set(['resources', 'pids'], r.pids.limit < 0 ? -1 : r.pids.limit, [...R, 'pids', 'limit']);
    const io = isObj(r.blockIO) ? r.blockIO : {}, B = [...R, 'blockIO'];
    if (num(io.weight)) this.set(['resources', 'io_weight'], io.weight, [...B, 'weight']);
    this.unsupported(io, B, ['leafWeight', 'weightDevice', 'throttleReadBpsDevice', 'throttleWriteBpsDevice', 'throttleReadIOPSDevice', 'throttleWriteIOPSDevice'], 'sandbox names devices by path, not by major:minor: say it in a sandbox file');
  }
}

/** size=… of a tmpfs as a number of bytes or the size grammar (64k → 64k). */
function sizeOpt(o: string[]): string | number | undefined {
  const s = o.find((x) => x.startsWith('size='))?.slice(5);
  if (s === undefined) return undefined;
  return /^[0-9]+$/.test(s) ? Number(s) : s.replace(/^([0-9]+)([kmg])$/i, '$1$2');
}

/** A path of config.json as people write it: process.capabilities.bounding, mounts[3]. */
function show(path: readonly PathSeg[]): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out || 'config.json';
}

/** Where JSON.parse stopped: its position when it says one, else the snippet it quotes
 * (Node 20: `Unexpected token '}', ..."a": }" is not valid JSON`), found in the text. */
function jsonErrorAt(text: string, message: string): number {
  const pos = /position ([0-9]+)/.exec(message);
  if (pos) return Number(pos[1]);
  const m = /^Unexpected token '(.)', "?(?:\.\.\.)?(.*?)(?:\.\.\.)?" is not valid JSON$/s.exec(message);
  if (!m) return 0;
  const at = text.indexOf(m[2]!);
  return at < 0 ? 0 : at + Math.max(0, m[2]!.lastIndexOf(m[1]!));
}

/** A copy with each `$` of a string written `$$`, which interpolation reads back as one `$`. */
function literal(v: unknown): unknown {
  if (typeof v === 'string') return v.replace(/\$/g, '$$$$');
  if (Array.isArray(v)) return v.map(literal);
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, literal(x)]));
  return v;
}

/** A runtime-spec device cgroup rule as Docker's text (`c 1:3 rwm`); undefined when malformed (a
 * type but a, b or c; a negative or fractional number; an access but r, w and m). */
function ociDeviceRule(d: J): string | undefined {
  const type = d.type ?? 'a', access = d.access ?? 'rwm';
  const num = (v: unknown) => v === undefined || v === null || v === -1 ? true : Number.isInteger(v) && (v as number) >= 0;
  if (!['a', 'b', 'c'].includes(type as string) || typeof access !== 'string' || !/^[rwm]{1,3}$/.test(access) || !num(d.major) || !num(d.minor)) return undefined;
  const n = (v: unknown) => (v === undefined || v === null || v === -1 ? undefined : (v as number));
  return deviceRuleText({ type: type as string, major: n(d.major), minor: n(d.minor), access });
}
