// UserConfig → SandboxSpec. The one place where defaults live and short forms are expanded.
// Pure: the caller's environment, home folder and env-file contents are parameters.
import { parseReference, plainHttp } from '../image/reference';
import { applyImage, type ImageInput } from './image';
import { isAbsolute, join, normalize as normPath, basename, dirname, extname } from 'node:path';
import type { UserConfig } from '../config/types';
import type { PathSeg } from '../config/parse';
import { didYouMean } from '../config/diagnostic';
import { envValue } from '../config/interpolate';
import { isIP } from './ip';
import type { CallerIds, CapSpec, EnvVar, IdMap, MountSpec, NsSpec, PortSpec, SandboxSpec, Source, Val, DeviceLimit } from './types';
import { MOUNT_FLAGS, NAMESPACES, PROPAGATIONS, VOLUME_NAME, type MountFlag, type Propagation, type RestartPolicy } from './types';
import { parseProfile, type SeccompProfile } from './seccomp';
import { CAPABILITIES, DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS, DEFAULT_PATH, DEFAULT_READONLY_PATHS, DEFAULT_SUBNET, RLIMITS, SIGNALS } from './tables';

export interface NormalizeContext {
  /** Absolute path of the config file and its folder. */
  file: string;
  dir: string;
  home: string;
  /** The caller's environment, for variables passed through by name. */
  env: Readonly<Record<string, string | undefined>>;
  /** Contents of the env_file entries, by absolute path; undefined when unreadable. */
  envFiles: Readonly<Record<string, FileRead>>;
  /** Contents of a seccomp profile file named by security.seccomp, by absolute path. */
  seccompFiles?: Readonly<Record<string, FileRead>>;
  /** Where a config path is in the file. */
  where(path: readonly PathSeg[], part?: 'key' | 'value'): Source;
}

/** A file's text; undefined when it cannot be read; a problem when it was refused (too big, not text). */
export type FileRead = string | undefined | { code: string; message: string };

/** `table[key]` for the table's own keys only: a key spelled `constructor` is never Object's. */
/** `word` is one of `list`'s members: a type guard over a const list. */
const isOneOf = <T extends string>(list: readonly T[], word: string): word is T => (list as readonly string[]).includes(word);

const own = <T>(table: Readonly<Record<string, T>> | undefined, key: string): T | undefined => (table && Object.hasOwn(table, key) ? table[key] : undefined);

export interface SpecProblem { src: Source; code: string; message: string }

const D = 'default' as const;
const val = <T>(value: T, src: Source): Val<T> => ({ value, src });
const lineOf = (s: Source) => (typeof s === 'object' ? s.line : 0);

/** How messages name a seccomp profile file: beside the config file as the config is shown. */
export function seccompShownPath(raw: string, ctx: Pick<NormalizeContext, 'dir' | 'home' | 'where'>): string {
  const abs = resolveHostPath(raw, ctx.dir, ctx.home);
  const cfg = ctx.where([]);
  if (typeof cfg !== 'object' || isAbsolute(raw) || raw.startsWith('~')) return abs;
  return join(dirname(cfg.file), raw);
}

/** 512m, 2g, 1.5GiB, 1024 → bytes. Units are binary, as Docker's. */
export function parseSize(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= -1 ? v : undefined;
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(v);
  if (!m) return undefined;
  const pow = ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  return Math.round(Number(m[1]) * 1024 ** pow);
}

/** 1.5 or "1500m" → millicpus. */
export function parseCpus(v: number | string): number | undefined {
  if (typeof v === 'number') return v > 0 ? Math.round(v * 1000) : undefined;
  const s = v.trim();
  if (/^[0-9]+m$/.test(s)) return Number(s.slice(0, -1)) || undefined;
  const n = Number(s);
  return Number.isFinite(n) && n > 0 ? Math.round(n * 1000) : undefined;
}

/** `no`, `always`, `on-failure[:N]` (the schema's pattern) → the policy and its maximum. */
export function restartPolicy(s: string): RestartPolicy {
  const [policy, max] = s.split(':');
  return { policy: policy === 'always' ? 'always' : policy === 'on-failure' ? 'on-failure' : 'no', max: Number(max ?? 0) || 0 };
}

/** 10s, 1m30s, 500ms → milliseconds. */
export function parseDuration(s: string): number | undefined {
  const unit: Record<string, number> = { h: 3600e3, m: 60e3, s: 1e3, ms: 1, us: 1e-3 };
  let total = 0;
  const re = /([0-9]+(?:\.[0-9]+)?)(h|ms|m|s|us)/g;
  let used = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) { total += Number(m[1]) * unit[m[2]!]!; used += m[0].length; }
  return used === s.length && used > 0 ? Math.round(total) : undefined;
}

/** Splits a command string as a POSIX shell would split words (quotes and backslashes), without running one. */
export function shellSplit(s: string): string[] | undefined {
  const out: string[] = [];
  let cur = '';
  let has = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "'") { const j = s.indexOf("'", i + 1); if (j < 0) return undefined; cur += s.slice(i + 1, j); i = j; has = true; }
    else if (c === '"') {
      let j = i + 1;
      for (; j < s.length && s[j] !== '"'; j++) { if (s[j] === '\\' && '"\\$`'.includes(s[j + 1] ?? '')) j++; cur += s[j]; }
      if (j >= s.length) return undefined;
      i = j; has = true;
    } else if (c === '\\') { if (i + 1 < s.length) cur += s[++i]; has = true; }
    else if (/\s/.test(c)) { if (has) out.push(cur); cur = ''; has = false; }
    else { cur += c; has = true; }
  }
  if (has) out.push(cur);
  return out;
}

export function capName(raw: string): string {
  return raw.toUpperCase().replace(/^CAP_/, '');
}

export function signalNumber(v: string | number): number | undefined {
  if (typeof v === 'number') return v >= 1 && v <= 64 ? v : undefined;
  if (/^[0-9]+$/.test(v)) return signalNumber(Number(v));
  const name = v.toUpperCase().replace(/^SIG/, '');
  const rt = /^RTMIN(\+([0-9]+))?$/.exec(name);
  if (rt) return 34 + Number(rt[2] ?? 0) <= 64 ? 34 + Number(rt[2] ?? 0) : undefined;
  return own(SIGNALS, name);
}

function parseRange(s: string | number): [number, number] | undefined {
  const m = /^([0-9]+)(?:-([0-9]+))?$/.exec(String(s));
  if (!m) return undefined;
  const a = Number(m[1]), b = Number(m[2] ?? m[1]);
  return a >= 0 && b <= 65535 && a <= b ? [a, b] : undefined;
}

function parseEnvFile(text: string): { name: string; value: string; line: number }[] {
  const out: { name: string; value: string; line: number }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const name = (eq < 0 ? line : line.slice(0, eq)).replace(/^export\s+/, '').trim();
    let value = eq < 0 ? '' : line.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0]) value = value.slice(1, -1);
    out.push({ name, value, line: i + 1 });
  });
  return out;
}

/** The first of each value, in order. */
function uniqueVals<T>(list: Val<T>[]): Val<T>[] {
  const seen = new Set<T>();
  return list.filter((v) => !seen.has(v.value) && (seen.add(v.value), true));
}

/** A host path as written in the file: `~` is the home folder, relative paths start at the file's folder. */
export function resolveHostPath(p: string, dir: string, home: string): string {
  return normPath(p === '~' ? home : p.startsWith('~/') ? join(home, p.slice(2)) : isAbsolute(p) ? p : join(dir, p));
}

/**
 * What the command line and the image add, given to normalize rather than applied afterwards, so
 * that the rules see the spec that runs. The CLI's words win over the file's; the file's over the image's.
 */
export interface SpecInputs {
  /** `up --name`. */
  name?: string;
  /** `up -d`. */
  detach?: boolean;
  /** `up -i`: the caller's stdin reaches the command, as stdin_open does. */
  interactive?: boolean;
  /** `up -T`: no terminal, whatever the file's `tty` says (docker compose run -T), for a script that runs an interactive file. */
  noTty?: boolean;
  /** `up FILE -- CMD ARGS`: exactly CMD ARGS, replacing the file's and the image's entrypoint and command. */
  command?: string[];
  /** The image's config and unpacked layers, once the store has it. */
  image?: ImageInput;
  /** Without root: the caller's ids. The user namespace is then private by default, mapping the
   * caller to root inside and its subordinate ranges above it, as rootless Podman does. */
  rootless?: CallerIds;
  /** `up FILE -e K=V -v SRC:DST -p HOST:CTR`: added to the file's, or replacing the file's variable
   * of that name, mount on that target, port of that container port; relative paths start at `cwd`. */
  overrides?: { env: CliValue[]; volumes: CliValue[]; ports: CliValue[]; cwd: string };
}

/** One value given on the command line, as written, and where it is there. */
export interface CliValue { value: string; src: Source }

/**
 * The image a config names, as the store and the puller know it: oci:PATH[:TAG] names an OCI image
 * layout folder and docker-archive:FILE.tar[:NAME] a docker save archive, relative to the file's
 * folder like every path. Known before normalize, so that the image can be one of its inputs.
 */
export function imageOf(cfg: Pick<UserConfig, 'image'>, ctx: Pick<NormalizeContext, 'dir' | 'home'>): string | undefined {
  if (cfg.image === undefined) return undefined;
  const hostPath = (p: string) => resolveHostPath(p, ctx.dir, ctx.home);
  const oci = /^oci:(.+?)(?::([\w][\w.-]{0,127}))?$/.exec(cfg.image);
  const arc = /^docker-archive:(.+?\.tar)(?::(.+))?$/.exec(cfg.image);
  return oci ? `oci:${hostPath(oci[1]!)}${oci[2] ? `:${oci[2]}` : ''}` : arc ? `docker-archive:${hostPath(arc[1]!)}${arc[2] ? `:${arc[2]}` : ''}` : cfg.image;
}

/** The caller as root inside, then its subordinate ranges from id 1 up, in the order the files list them. */
function rootlessMap(c: CallerIds, key: 'uid_map' | 'gid_map'): IdMap[] {
  const out: IdMap[] = [{ container: 0, host: key === 'uid_map' ? c.uid : c.gid, size: 1 }];
  let next = 1;
  for (const r of key === 'uid_map' ? c.subuid : c.subgid) {
    const size = Math.min(r.count, 4294967295 - next);
    if (size <= 0) break;
    out.push({ container: next, host: r.start, size });
    next += size;
  }
  return out;
}

export function normalize(cfg: UserConfig, ctx: NormalizeContext, inputs: SpecInputs = {}): { spec: SandboxSpec; problems: SpecProblem[] } {
  const problems: SpecProblem[] = [];
  const at = (...p: PathSeg[]) => ctx.where(p);
  const problem = (src: Source, code: string, message: string) => problems.push({ src, code, message });
  const hostPath = (p: string) => resolveHostPath(p, ctx.dir, ctx.home);

  // Identity of the sandbox.
  const stem = basename(ctx.file, extname(ctx.file)).replace(/^\.+/, '').replace(/[^a-zA-Z0-9_.-]/g, '-') || 'sandbox';
  const name = inputs.name !== undefined ? val(inputs.name, 'cli') : cfg.name !== undefined ? val(cfg.name, at('name')) : val(/^[a-zA-Z0-9]/.test(stem) ? stem : `s-${stem}`, D);

  // Root filesystem.
  const ro = cfg.security?.read_only;
  const readOnly = ro !== undefined ? val(ro, at('security', 'read_only')) : val(false, D);
  let rootfs: SandboxSpec['rootfs'];
  if (cfg.image !== undefined && cfg.rootfs !== undefined) problem(ctx.where(['image'], 'key'), 'image-and-rootfs', `\`image\` and \`rootfs\` both choose the root filesystem (rootfs is on line ${lineOf(at('rootfs'))}); keep one of them`);
  if (cfg.image !== undefined) {
    const image = imageOf(cfg, ctx)!;
    rootfs = { type: 'image', image, readOnly, src: at('image'), insecure: cfg.insecure_registries ?? [] };
    if (!/^(oci|docker-archive):/.test(image)) {
      try {
        const registry = parseReference(cfg.image).registry;
        const plain = plainHttp(registry, rootfs.insecure);
        rootfs.registry = registry;
        if (plain) rootfs.plainHttp = plain;
      } catch (e) { problem(at('image'), 'bad-image-reference', `${(e as Error).message}; write it as Docker does, such as busybox, ubuntu:24.04 or host:5000/name:tag`); }
    }
  }
  else if (cfg.rootfs === undefined || cfg.rootfs === 'host' || cfg.rootfs.type === 'host') rootfs = { type: 'host', readOnly, src: cfg.rootfs === undefined ? D : at('rootfs') };
  else rootfs = { type: 'dir', path: hostPath(cfg.rootfs.path ?? '.'), readOnly, src: at('rootfs', 'path') };

  // The command.
  const words = (v: string | string[] | undefined, key: string): string[] => {
    if (v === undefined) return [];
    if (Array.isArray(v)) return v;
    const w = shellSplit(v);
    if (!w) { problem(at(key), 'unbalanced-quote', `\`${key}\` has a quote that is not closed; close it, or write the command as a list`); return []; }
    return w;
  };
  // Kept apart too: an image's Entrypoint and Cmd are replaced one by one, as docker run does.
  // `up -- CMD` needs no --entrypoint as docker run does: one is enough.
  const entrypoint = inputs.command ? [] : cfg.entrypoint !== undefined ? words(cfg.entrypoint, 'entrypoint') : undefined;
  const command = inputs.command ?? (cfg.command !== undefined ? words(cfg.command, 'command') : undefined);
  const args = [...(entrypoint ?? []), ...(command ?? [])];
  const argsSrc = inputs.command ? 'cli' : cfg.command !== undefined ? at('command') : cfg.entrypoint !== undefined ? at('entrypoint') : D;

  // User and environment.
  let user: SandboxSpec['process']['user'] = { user: 0, group: 0, src: D };
  if (cfg.user !== undefined) {
    const [u, g] = String(cfg.user).split(':') as [string, string | undefined];
    const num = (s: string | undefined) => (s !== undefined && /^[0-9]+$/.test(s) ? Number(s) : s);
    user = { user: num(u)!, group: num(g), src: at('user') };
  }
  const tty = inputs.noTty ? val(false, 'cli') : cfg.tty !== undefined ? val(cfg.tty, at('tty')) : val(false, D);
  const hostname = cfg.hostname !== undefined ? val(cfg.hostname, at('hostname')) : val(name.value.slice(0, 63), D);
  const env = new Map<string, EnvVar>();
  const setEnv = (n: string, v: string, src: Source) => { env.delete(n); env.set(n, { name: n, value: v, src }); };
  setEnv('PATH', DEFAULT_PATH, D);
  setEnv('HOSTNAME', hostname.value, hostname.src);
  setEnv('HOME', user.user === 0 || user.user === 'root' ? '/root' : '/', D);
  if (tty.value) setEnv('TERM', 'xterm', tty.src);
  const envFiles = cfg.env_file === undefined ? [] : ([] as string[]).concat(cfg.env_file);
  envFiles.forEach((f, i) => {
    const abs = hostPath(f);
    const src = Array.isArray(cfg.env_file) ? at('env_file', i) : at('env_file');
    const text = own(ctx.envFiles, abs);
    if (text === undefined) { problem(src, 'env-file-missing', `env file ${abs} cannot be read; create it or remove it from \`env_file\``); return; }
    if (typeof text === 'object') { problem(src, text.code, text.message); return; }
    for (const e of parseEnvFile(text)) {
      if (!/^[^=\s]+$/.test(e.name)) problem(src, 'env-file-invalid', `${abs}:${e.line}: \`${e.name}\` is not a valid variable name`);
      else setEnv(e.name, e.value, typeof src === 'object' ? { file: abs, line: e.line, col: 1 } : src);
    }
  });
  if (Array.isArray(cfg.env)) {
    cfg.env.forEach((item, i) => {
      const eq = item.indexOf('=');
      if (eq >= 0) setEnv(item.slice(0, eq), item.slice(eq + 1), at('env', i));
      else { const got = envValue(ctx.env, item); if (got !== undefined) setEnv(item, got, at('env', i)); }
    });
  } else if (cfg.env) {
    for (const [k, v] of Object.entries(cfg.env)) {
      if (v === null) { const got = envValue(ctx.env, k); if (got !== undefined) setEnv(k, got, at('env', k)); }
      else setEnv(k, String(v), at('env', k));
    }
  }

  for (const e of inputs.overrides?.env ?? []) {
    const eq = e.value.indexOf('=');
    if (eq > 0) setEnv(e.value.slice(0, eq), e.value.slice(eq + 1), e.src);
    else if (eq < 0) { const got = envValue(ctx.env, e.value); if (got !== undefined) setEnv(e.value, got, e.src); }
    else problem(e.src, 'invalid-env', `\`-e ${e.value}\` has no name; write NAME=value`);
  }

  const stopSignal = cfg.stop_signal !== undefined ? signalNumber(cfg.stop_signal) : 15;
  if (stopSignal === undefined) problem(at('stop_signal'), 'unknown-signal', `\`${cfg.stop_signal}\` is not a signal; use a name such as SIGTERM or SIGQUIT`);
  const grace = cfg.stop_grace_period !== undefined ? parseDuration(cfg.stop_grace_period) : 10_000;

  // Namespaces. The net namespace follows `network` unless set on its own.
  const netMode = typeof cfg.network === 'object' ? cfg.network.mode : cfg.network ?? 'private';
  const netSrc = cfg.network === undefined ? D : typeof cfg.network === 'object' ? at('network', 'mode') : at('network');
  const nsDefaults: Record<string, 'private' | 'host'> = { user: inputs.rootless ? 'private' : 'host', pid: 'private', mount: 'private', uts: 'private', ipc: 'private', net: netMode === 'host' ? 'host' : 'private', cgroup: 'private', time: 'host' };
  const namespaces: NsSpec[] = NAMESPACES.map((type) => {
    const raw = (cfg.namespaces as Record<string, unknown> | undefined)?.[type];
    const src = raw === undefined ? (type === 'net' ? netSrc : D) : at('namespaces', type);
    if (raw === undefined) return { type, mode: nsDefaults[type]!, src };
    if (raw === true || raw === 'private' || (typeof raw === 'object' && raw !== null)) return { type, mode: 'private', src };
    if (raw === false || raw === 'host') return { type, mode: 'host', src };
    return { type, mode: 'join', path: String(raw), src };
  });
  let userns: SandboxSpec['userns'];
  const userNs = namespaces.find((n) => n.type === 'user')!;
  if (userNs.mode === 'private') {
    const u = cfg.namespaces?.user;
    const maps = (key: 'uid_map' | 'gid_map'): IdMap[] => {
      const list = typeof u === 'object' ? u[key] : undefined;
      if (!list) return inputs.rootless ? rootlessMap(inputs.rootless, key) : [{ container: 0, host: 100000, size: 65536 }];
      return list.map((m) => {
        if (typeof m !== 'string') return m;
        const [c, h, s] = m.split(':').map(Number) as [number, number, number];
        return { container: c, host: h, size: s };
      });
    };
    const src = typeof u === 'object' ? at('namespaces', 'user') : D;
    const rootless = inputs.rootless !== undefined && !(typeof u === 'object' && (u.uid_map || u.gid_map));
    userns = { uidMap: maps('uid_map'), gidMap: maps('gid_map'), src: userNs.src === D ? D : src, ...(rootless ? { rootless } : {}) };
  }

  // Network.
  const subnet = typeof cfg.network === 'object' && cfg.network.subnet ? val(cfg.network.subnet, at('network', 'subnet')) : val(DEFAULT_SUBNET, D);
  const dnsList = cfg.dns === undefined ? [] : ([] as string[]).concat(cfg.dns);
  const dns = dnsList.map((d, i) => {
    const src = Array.isArray(cfg.dns) ? at('dns', i) : at('dns');
    if (!isIP(d)) problem(src, 'invalid-address', `\`${d}\` is not an IP address; a name server is written as an address such as 1.1.1.1`);
    return val(d, src);
  });
  const extraHosts = (Array.isArray(cfg.extra_hosts)
    ? cfg.extra_hosts.map((e, i) => { const k = e.search(/[:=]/); return { host: e.slice(0, k), ip: e.slice(k + 1), src: at('extra_hosts', i) }; })
    : Object.entries(cfg.extra_hosts ?? {}).map(([host, ip]) => ({ host, ip, src: at('extra_hosts', host) })));
  for (const h of extraHosts) {
    const ip = h.ip.replace(/^\[(.*)\]$/, '$1');
    if (h.ip !== 'host-gateway' && !isIP(ip)) problem(h.src, 'invalid-address', `\`${h.ip}\` is not an IP address (in \`${h.host}\`)`);
    h.ip = ip;
  }
  const ports: PortSpec[] = [];
  const addPort = (p: NonNullable<UserConfig['ports']>[number], src: Source) => {
    let ip = '', host: [number, number] | undefined, ctr: [number, number] | undefined, proto: 'tcp' | 'udp' = 'tcp';
    if (typeof p === 'object') {
      ip = p.host_ip ?? '';
      ctr = parseRange(p.target);
      host = p.published === undefined ? [0, 0] : parseRange(p.published);
      proto = p.protocol ?? 'tcp';
    } else {
      let s = String(p);
      const slash = s.lastIndexOf('/');
      if (slash >= 0) { proto = s.slice(slash + 1) as 'tcp' | 'udp'; s = s.slice(0, slash); }
      if (s.startsWith('[')) {
        const close = s.indexOf(']');
        ip = s.slice(1, close);
        s = s.slice(close + 2);
      }
      const parts = s.split(':');
      if (parts.length > 3 || (parts.length === 3 && ip)) { problem(src, 'invalid-port', `\`${p}\` has too many colons; write an IPv6 address in brackets, as [::1]:8080:80`); return; }
      if (parts.length === 3) ip = parts.shift()!;
      ctr = parseRange(parts.pop()!);
      host = parts.length ? (parts[0] === '' ? [0, 0] : parseRange(parts[0]!)) : [0, 0];
    }
    if (ip && !isIP(ip)) { problem(src, 'invalid-address', `\`${ip}\` is not an IP address; use an address such as 127.0.0.1 or [::1]`); return; }
    if (!ctr || !host || ctr[0] === 0) {
      // Which part is wrong, in the user's words: `abc` is no port at all, 99999 is out of range.
      const shown = typeof p === 'object' ? JSON.stringify(p) : p;
      const parts = typeof p === 'object' ? [p.published ?? '', p.target] : String(p).replace(/\/(tcp|udp)$/, '').replace(/^\[[^\]]*\]:/, '').split(':').slice(-2);
      const bad = parts.map(String).find((x) => x !== '' && !/^[0-9]+(-[0-9]+)?$/.test(x));
      const high = parts.map(String).flatMap((x) => x.split('-')).find((x) => /^[0-9]+$/.test(x) && (Number(x) > 65535));
      const reversed = parts.map(String).find((x) => /^([0-9]+)-([0-9]+)$/.test(x) && Number(x.split('-')[0]) > Number(x.split('-')[1]));
      problem(src, 'invalid-port', bad !== undefined ? `\`${shown}\`: \`${bad}\` is not a port; write a number from 1 to 65535, or a range such as 8000-8010`
        : high !== undefined ? `\`${shown}\`: ${high} is not a port: ports go from 1 to 65535`
        : reversed !== undefined ? `\`${shown}\`: the range ${reversed} goes backwards; write the lower port first`
        : `\`${shown}\` has a port outside 1-65535`);
      return;
    }
    const n = ctr[1] - ctr[0];
    if (host[0] !== 0 && host[1] - host[0] !== n) { problem(src, 'invalid-port', `\`${typeof p === 'object' ? `${p.published}:${p.target}` : p}\`: the host range has ${host[1] - host[0] + 1} ports and the container range ${n + 1}; make them the same length`); return; }
    for (let k = 0; k <= n; k++) ports.push({ hostIp: ip, hostPort: host[0] === 0 ? 0 : host[0] + k, containerPort: ctr[0] + k, protocol: proto, src });
  };
  (cfg.ports ?? []).forEach((p, i) => addPort(p, at('ports', i)));
  // A port given with `up -p` replaces the file's for the same container port and protocol.
  const fileCount = ports.length;
  for (const o of inputs.overrides?.ports ?? []) addPort(o.value, o.src);
  const cliPorts = ports.slice(fileCount);
  for (let k = fileCount - 1; k >= 0; k--) if (cliPorts.some((q) => q.containerPort === ports[k]!.containerPort && q.protocol === ports[k]!.protocol)) ports.splice(k, 1);

  // Mounts. A source that starts with ., / or ~ is a host path (a bind); a bare name is a named
  // volume, as Docker reads `-v NAME:/path`.
  const mounts: MountSpec[] = [];
  const volumeOf = (key: string, src: Source, target: string, readOnly: boolean, flags: MountFlag[], nocopy: boolean): MountSpec => {
    const decl = own(cfg.named_volumes, key) ?? undefined;
    return { kind: 'volume', name: decl?.name ?? key, external: decl?.external ?? false, nocopy, anonymous: false, target, readOnly, flags, src };
  };
  // `up -v` mounts: relative paths from the caller's folder, as docker run reads them.
  const cliPath = (p: string) => resolveHostPath(p, inputs.overrides?.cwd ?? ctx.dir, ctx.home);
  const volumes: { v: NonNullable<UserConfig['volumes']>[number]; src: Source; path: (p: string) => string }[] = (cfg.volumes ?? []).map((v, i) => ({ v, src: at('volumes', i), path: hostPath }));
  for (const o of inputs.overrides?.volumes ?? []) volumes.push({ v: o.value, src: o.src, path: cliPath });
  // The file's entries come first, so i is their index in `volumes` (the command line's are strings).
  volumes.forEach(({ v, src, path: hostPath }, i) => {
    if (typeof v === 'string') {
      const [source, target, opts = ''] = v.split(':') as [string, string, string?];
      if (target === undefined) { problem(src, 'invalid-volume', `\`${v}\` names no target; write SRC:DST[:ro], such as ./data:/data:ro`); return; }
      const named = !/^[./~]/.test(source);
      if (named && !VOLUME_NAME.test(source)) { problem(src, 'invalid-volume-name', `\`${source}\` is neither a host path nor a volume name; write a path as ./${source.replace(/^[^a-zA-Z0-9]+/, '')}, or a volume name of letters, digits, _, . and - that starts with a letter or digit`); return; }
      let readOnly = false, nocopy = false, propagation: Propagation | undefined;
      const flags: MountFlag[] = [];
      for (const o of opts.split(',').filter(Boolean)) {
        if (o === 'ro') readOnly = true;
        else if (o === 'rw') readOnly = false;
        else if (o === 'nocopy' && named) nocopy = true;
        else if (isOneOf(PROPAGATIONS, o) && !named) propagation = o;
        else if (isOneOf(MOUNT_FLAGS, o)) flags.push(o);
        else if (o === 'z' || o === 'Z') continue; // SELinux relabelling: nothing to do without SELinux.
        else if (o === 'nocopy') problem(src, 'nocopy-on-bind', '`nocopy` applies to named volumes only: a bind shows the host folder as it is');
        else if (isOneOf(PROPAGATIONS, o)) problem(src, 'volume-propagation', `propagation applies to bind mounts only: nothing is mounted below a named volume on the host`);
        else {
          const guess = didYouMean(o, ['ro', 'rw', 'nosuid', 'nodev', 'noexec', 'rprivate', 'rshared', 'rslave', ...(named ? ['nocopy'] : [])]);
          problem(src, 'invalid-mount-option', `\`${o}\` is not a mount option${guess ? ` (did you mean \`${guess}\`?)` : `; use ro, rw, nosuid, nodev, noexec or ${named ? 'nocopy' : 'a propagation such as rslave'}`}`);
        }
      }
      if (named) mounts.push(volumeOf(source, src, target, readOnly, flags, nocopy));
      else mounts.push({ kind: 'bind', source: hostPath(source), target, readOnly, flags, src, ...(propagation ? { propagation } : {}) });
    } else {
      // The schema allows only these words in the long form's options.
      const flags = (v.options ?? []).filter((o): o is MountFlag => isOneOf(MOUNT_FLAGS, o));
      const readOnly = v.read_only ?? (v.options ?? []).includes('ro');
      if (v.type !== 'volume' && v.volume) problem(at('volumes', i, 'volume'), 'volume-options-not-volume', `\`volume\` options apply to \`type: volume\` only; remove them, or make this a named volume`);
      if (v.type === 'bind') mounts.push({ kind: 'bind', source: hostPath(v.source!), target: v.target, readOnly, flags, src, ...(v.propagation ? { propagation: v.propagation } : {}) });
      else if (v.type === 'volume') {
        if (v.propagation) problem(at('volumes', i, 'propagation'), 'volume-propagation', 'propagation applies to bind mounts only: nothing is mounted below a named volume on the host');
        mounts.push(volumeOf(v.source!, src, v.target, readOnly, flags, v.volume?.nocopy ?? false));
      } else {
        if (v.propagation) problem(src, 'tmpfs-propagation', 'propagation applies to bind mounts only');
        for (const f of ['nosuid', 'nodev'] as const) if (!flags.includes(f)) flags.push(f);
        mounts.push({ kind: 'tmpfs', target: v.target, readOnly, flags, src, mode: v.mode !== undefined ? parseInt(v.mode, 8) : 0o1777, ...(v.size !== undefined ? { sizeBytes: parseSize(v.size) } : {}) });
      }
    }
  });
  // Two keys of named_volumes given one store name are one volume: as in Compose, allowed.
  for (const key of Object.keys(cfg.named_volumes ?? {})) {
    if (!key.startsWith('x-') && !VOLUME_NAME.test(key)) problem(ctx.where(['named_volumes', key], 'key'), 'invalid-volume-name', `\`${key}\` is not a volume name: use letters, digits, _, . and -, starting with a letter or digit (at least 2 characters)`);
  }

  // A mount given with `up -v` replaces the file's on the same target.
  const cliSrcs = new Set<Source>((inputs.overrides?.volumes ?? []).map((o) => o.src));
  for (let k = mounts.length - 1; k >= 0; k--) {
    const m = mounts[k]!;
    if (!cliSrcs.has(m.src) && mounts.some((x) => cliSrcs.has(x.src) && x.target === m.target)) mounts.splice(k, 1);
  }

  // Devices added on top of the minimal /dev.
  const devices = (cfg.devices ?? []).map((d, i) => {
    const src = at('devices', i);
    if (typeof d === 'object') return { source: d.source, target: d.target ?? d.source, permissions: d.permissions ?? 'rwm', src };
    const [s, t, p] = d.split(':') as [string, string?, string?];
    const perms = t && /^[rwm]+$/.test(t) ? t : p ?? 'rwm';
    return { source: s, target: t && !/^[rwm]+$/.test(t) ? t : s, permissions: perms, src };
  });

  // Resources.
  const r = cfg.resources ?? {};
  const size = (key: 'memory' | 'memory_reservation' | 'memory_swap'): Val<number> | undefined => {
    const raw = r[key];
    if (raw === undefined) return undefined;
    const n = raw === -1 || raw === '-1' ? -1 : parseSize(raw);
    if (n === undefined) { problem(at('resources', key), 'invalid-size', `\`${raw}\` is not a size; write bytes or a unit, as 512m or 2g`); return undefined; }
    return val(n, at('resources', key));
  };
  const limits = (key: 'device_read_bps' | 'device_write_bps' | 'device_read_iops' | 'device_write_iops'): DeviceLimit[] =>
    (r[key] ?? []).map((d, i) => ({ path: d.path, rate: typeof d.rate === 'number' ? d.rate : parseSize(d.rate) ?? 0, src: at('resources', key, i) }));
  const cpuMillis = r.cpus !== undefined ? parseCpus(r.cpus) : undefined;
  if (r.cpus !== undefined && cpuMillis === undefined) problem(at('resources', 'cpus'), 'invalid-cpus', `\`${r.cpus}\` is not a CPU amount; write 1.5 or "1500m"`);
  const resources: SandboxSpec['resources'] = {
    memory: size('memory'), memoryReservation: size('memory_reservation'), memorySwap: size('memory_swap'),
    cpuMillis: cpuMillis !== undefined ? val(cpuMillis, at('resources', 'cpus')) : undefined,
    cpuShares: r.cpu_shares !== undefined ? val(r.cpu_shares, at('resources', 'cpu_shares')) : undefined,
    cpuset: r.cpuset !== undefined ? val(r.cpuset, at('resources', 'cpuset')) : undefined,
    pids: r.pids !== undefined ? val(r.pids, at('resources', 'pids')) : undefined,
    ioWeight: r.io_weight !== undefined ? val(r.io_weight, at('resources', 'io_weight')) : undefined,
    deviceReadBps: limits('device_read_bps'), deviceWriteBps: limits('device_write_bps'),
    deviceReadIops: limits('device_read_iops'), deviceWriteIops: limits('device_write_iops'),
  };

  // Capabilities: the default set (Podman's), then cap_drop, then cap_add (so `drop: [ALL], add: [X]` keeps X).
  const caps = new Map<string, CapSpec>(DEFAULT_CAPABILITIES.map((c) => [c, { name: c, src: D }]));
  const capsDropped: CapSpec[] = [];
  const checkCap = (raw: string, src: Source): string | undefined => {
    const n = capName(raw);
    if (n === 'ALL' || (CAPABILITIES as readonly string[]).includes(n)) return n;
    const guess = didYouMean(n, CAPABILITIES);
    problem(src, 'unknown-capability', `\`${raw}\` is not a capability${guess ? ` (did you mean \`${guess}\`?)` : '; see capabilities(7) for the names'}`);
    return undefined;
  };
  (cfg.cap_drop ?? []).forEach((raw, i) => {
    const src = at('cap_drop', i);
    const n = checkCap(raw, src);
    if (!n) return;
    const names = n === 'ALL' ? [...caps.keys()] : [n];
    // Named twice (MKNOD and CAP_MKNOD, or after ALL): dropped once, cited at its first mention.
    for (const c of names) { caps.delete(c); if (!capsDropped.some((d) => d.name === c)) capsDropped.push({ name: c, src }); }
  });
  const droppedByName = new Map((cfg.cap_drop ?? []).map((raw, i) => [capName(raw), at('cap_drop', i)] as const));
  (cfg.cap_add ?? []).forEach((raw, i) => {
    const src = at('cap_add', i);
    const n = checkCap(raw, src);
    if (!n) return;
    // `cap_drop: [ALL]` with `cap_add: [X]` keeps only X; naming X in both lists is a mistake.
    const both = n !== 'ALL' ? droppedByName.get(n) : undefined;
    if (both) problem(src, 'cap-add-and-drop', `CAP_${n} is both added and dropped (dropped on ${typeof both === 'object' ? `line ${both.line}` : 'the command line'}); keep it in one list`);
    for (const c of n === 'ALL' ? CAPABILITIES : [n]) if (!caps.has(c) || caps.get(c)!.src === D) caps.set(c, { name: c, src });
  });
  const capabilities = [...caps.values()].sort((a, b) => CAPABILITIES.indexOf(a.name as never) - CAPABILITIES.indexOf(b.name as never));
  // What cap_add brought back (after `cap_drop: [ALL]`) is kept, not dropped: the plan shows it once.
  for (let i = capsDropped.length - 1; i >= 0; i--) if (caps.has(capsDropped[i]!.name)) capsDropped.splice(i, 1);

  // Security.
  const s = cfg.security ?? {};
  const seccomp = s.seccomp === undefined ? val('default', D)
    : ['default', 'unconfined'].includes(s.seccomp) ? val(s.seccomp, at('security', 'seccomp')) : val(hostPath(s.seccomp), at('security', 'seccomp'));
  // A profile file is Docker's or OCI's seccomp JSON; its own errors are located in it.
  let seccompProfile: SeccompProfile | undefined;
  if (!['default', 'unconfined'].includes(seccomp.value)) {
    const text = own(ctx.seccompFiles, seccomp.value);
    const shown = seccompShownPath(s.seccomp!, ctx);
    if (text === undefined) problem(seccomp.src, 'seccomp-profile-missing', `the seccomp profile ${seccomp.value} cannot be read; create it, or use \`seccomp: default\``);
    else if (typeof text === 'object') problem(seccomp.src, text.code, text.message);
    else {
      const parsed = parseProfile(text);
      for (const e of parsed.errors) problem({ file: shown, line: e.line, col: e.col }, 'seccomp-profile-invalid', `${e.message} (in the seccomp profile named at ${typeof seccomp.src === 'object' ? `${seccomp.src.file}:${seccomp.src.line}:${seccomp.src.col}` : 'security.seccomp'})`);
      if (!parsed.errors.length) seccompProfile = parsed.profile;
    }
  }
  const security: SandboxSpec['security'] = {
    ...(seccompProfile ? { seccompProfile } : {}),
    noNewPrivileges: s.no_new_privileges !== undefined ? val(s.no_new_privileges, at('security', 'no_new_privileges')) : val(true, D),
    seccomp,
    // A path named twice, or one of the defaults named again, is masked (or made read-only) once.
    maskedPaths: uniqueVals([...DEFAULT_MASKED_PATHS.map((p) => val(p, D)), ...(s.masked_paths ?? []).map((p, i) => val(p, at('security', 'masked_paths', i)))]),
    readonlyPaths: uniqueVals([...DEFAULT_READONLY_PATHS.map((p) => val(p, D)), ...(s.readonly_paths ?? []).map((p, i) => val(p, at('security', 'readonly_paths', i)))]),
  };

  // Ulimits.
  const rlimits = Object.entries(cfg.ulimits ?? {}).map(([n, v]) => {
    const src = at('ulimits', n);
    const num = (x: string | number) => (x === 'unlimited' || x === -1 || x === '-1' ? -1 : Number(x));
    let soft: number, hard: number;
    if (typeof v === 'object') { soft = v.soft; hard = v.hard; }
    else { const [a, b = a] = String(v).split(':') as [string, string?]; soft = num(a); hard = num(b!); }
    if (own(RLIMITS, n) === undefined) problem(src, 'unknown-ulimit', `\`${n}\` is not a ulimit`);
    return { name: n, soft, hard, src };
  });

  const sysctls = (Array.isArray(cfg.sysctls)
    ? cfg.sysctls.map((e, i) => { const k = e.indexOf('='); return { name: e.slice(0, k), value: e.slice(k + 1), src: at('sysctls', i) }; })
    : Object.entries(cfg.sysctls ?? {}).map(([name, v]) => ({ name, value: String(v), src: at('sysctls', name) })));
  // The list form can name one twice; the mapping form cannot (duplicate keys are parse errors).
  const firstSysctl = new Map<string, Source>();
  for (const sc of sysctls) {
    const first = firstSysctl.get(sc.name);
    if (first) problem(sc.src, 'duplicate-sysctl', `\`${sc.name}\` is set twice; the first is on line ${lineOf(first)} (keep one)`);
    else firstSysctl.set(sc.name, sc.src);
  }

  const shm = cfg.shm_size !== undefined ? parseSize(cfg.shm_size) : undefined;
  if (shm !== undefined && shm < 4096) problem(at('shm_size'), 'shm-too-small', `\`shm_size\` is ${shm} bytes; /dev/shm needs at least one page (4096 bytes): write a size such as 64m`);
  const spec: SandboxSpec = {
    version: 1, name, file: ctx.file, dir: ctx.dir, rootfs,
    process: {
      args, argsSrc, entrypoint, command, env: [...env.values()],
      cwd: cfg.workdir !== undefined ? val(cfg.workdir, at('workdir')) : val('/', D),
      user,
      groups: (cfg.group_add ?? []).map((g, i) => val(typeof g === 'string' && /^[0-9]+$/.test(g) ? Number(g) : g, at('group_add', i))),
      umask: cfg.umask !== undefined ? val(parseInt(cfg.umask, 8), at('umask')) : val(0o022, D),
      tty,
      stdin: inputs.interactive ? val(true, 'cli') : cfg.stdin_open !== undefined ? val(cfg.stdin_open, at('stdin_open')) : val(false, D),
      init: cfg.init !== undefined ? val(cfg.init, at('init')) : val(false, D),
      detach: inputs.detach ? val(true, 'cli') : cfg.detach !== undefined ? val(cfg.detach, at('detach')) : val(false, D),
      restart: cfg.restart !== undefined ? val(restartPolicy(cfg.restart), at('restart')) : val({ policy: 'no', max: 0 }, D),
      stopSignal: val(stopSignal ?? 15, cfg.stop_signal !== undefined ? at('stop_signal') : D),
      stopGraceMs: val(grace ?? 10_000, cfg.stop_grace_period !== undefined ? at('stop_grace_period') : D),
    },
    hostname, namespaces, userns,
    shmSize: shm !== undefined ? val(shm, at('shm_size')) : val(64 * 1048576, D),
    network: {
      mode: val(netMode, netSrc), subnet, dns, extraHosts, ports,
      proxy: typeof cfg.network === 'object' && cfg.network.proxy ? val(cfg.network.proxy, at('network', 'proxy')) : val('auto', D),
      cmd: typeof cfg.network === 'object' && cfg.network.rootless_cmd ? val(cfg.network.rootless_cmd, at('network', 'rootless_cmd')) : val('auto', D),
    },
    mounts, devices, resources, capabilities, capsDropped, security, rlimits, sysctls,
  };
  return { spec: inputs.image && rootfs.type === 'image' ? applyImage(spec, inputs.image) : spec, problems };
}
