// One service of a Compose file → the config a person would write for it. Most of sandbox's keys
// are Compose's own names, so most values are copied; the rest are renamed, or reported at their
// line with the reason they have no key. Pure: the file's bytes and folders are parameters.
import { isAbsolute, join, normalize as normPath, relative } from 'node:path';
import { parseConfig, type ParsedConfig, type PathSeg } from '../config/parse';
import type { Diagnostic } from '../config/diagnostic';
import { ordered, nameFrom, finishImport, type ImportNote, type Imported, type Loc } from './types';

export interface ComposeOptions {
  /** The Compose file's folder: its relative paths start there. */
  composeDir: string;
  /** The folder of the file that will hold the config. */
  outDir: string;
}

export interface ComposeImport extends Imported {
  /** The file could not be read as Compose (YAML errors, no services, no such service). */
  errors: Diagnostic[];
  /** Every service of the file, for a caller that named none or the wrong one. */
  services: string[];
  service?: string;
}

/** Keys copied as they are: the same name and the same meaning. */
const SAME = ['image', 'command', 'entrypoint', 'user', 'hostname', 'group_add', 'tty', 'stdin_open', 'init', 'stop_signal', 'stop_grace_period', 'shm_size', 'dns', 'extra_hosts', 'cap_add', 'cap_drop', 'sysctls', 'devices'] as const;

/** Keys with no counterpart, and why. */
const DROPPED: Record<string, string> = {
  build: 'sandbox runs an image or a root filesystem; build it first (docker build -t NAME .) and name it in `image`',
  depends_on: 'one sandbox per file: start the others first, each with its own `sandbox up -d`',
  healthcheck: 'sandbox has no health checks',
  labels: 'sandbox has no labels', annotations: 'sandbox has no annotations',
  logging: 'a detached sandbox writes its output to its own log (`sandbox logs NAME`)',
  profiles: 'one sandbox per file', scale: 'one sandbox per file: `up --name` runs it again under another name',
  links: 'sandboxes have no shared networks to name each other on; publish a port instead', external_links: 'sandboxes have no shared networks',
  expose: 'exposing a port only documents it; `ports` publishes it',
  configs: 'mount the file with `volumes` instead', secrets: 'mount the file read-only with `volumes` instead',
  pull_policy: '`up` pulls an image when the store has not got it', platform: 'images are pulled for this host\'s architecture',
  extends: 'write the merged service', develop: 'sandbox has no watch mode', dns_search: 'only name servers (`dns`) are written', dns_opt: 'only name servers (`dns`) are written',
  domainname: 'only `hostname` is set', mac_address: 'a private network leases the sandbox its address',
  volumes_from: 'name the same host folders in `volumes` instead', oom_score_adj: 'sandbox has no key for it', oom_kill_disable: 'the OOM killer always applies at the memory limit',
  runtime: 'sandbox is the runtime', storage_opt: 'sandbox has no key for it', cgroup_parent: 'sandbox places its own cgroup', device_cgroup_rules: 'sandbox has no key for it',
  credential_spec: 'Windows only', isolation: 'Windows only', attach: 'sandbox has no key for it', mem_swappiness: 'sandbox has no key for it',
  cpu_rt_period: 'sandbox has no key for it', cpu_rt_runtime: 'sandbox has no key for it', cpu_period: 'write `cpus` instead', cpu_quota: 'write `cpus` instead', cpu_count: 'write `cpus` instead', cpu_percent: 'write `cpus` instead',
  use_api_socket: 'sandbox gives no Docker socket', gpus: 'sandbox has no key for it', post_start: 'sandbox has no hooks', pre_stop: 'sandbox has no hooks', label_file: 'sandbox has no labels',
};

const isObj = (x: unknown): x is Record<string, unknown> => !!x && typeof x === 'object' && !Array.isArray(x);
const isStr = (x: unknown): x is string => typeof x === 'string';

/** The shapes the importer reads a key in: anything else is refused, never guessed at. */
const SHAPES: Record<string, { what: string; ok: (v: unknown) => boolean }> = {
  ports: { what: 'a list of "HOST:CONTAINER" strings or port mappings', ok: (v) => Array.isArray(v) && v.every((p) => isStr(p) || typeof p === 'number' || isObj(p)) },
  volumes: { what: 'a list of "SOURCE:TARGET" strings or mount mappings', ok: (v) => Array.isArray(v) && v.every((m) => isStr(m) || (isObj(m) && isStr(m.target))) },
  tmpfs: { what: 'a path or a list of paths', ok: (v) => isStr(v) || (Array.isArray(v) && v.every(isStr)) },
  security_opt: { what: 'a list of strings', ok: (v) => Array.isArray(v) && v.every(isStr) },
  env_file: { what: 'a path, or a list of paths or {path, required} mappings', ok: (v) => isStr(v) || (Array.isArray(v) && v.every((f) => isStr(f) || (isObj(f) && isStr(f.path)))) },
  networks: { what: 'a list of names or a mapping', ok: (v) => isObj(v) || (Array.isArray(v) && v.every(isStr)) },
  blkio_config: { what: 'a mapping', ok: isObj },
  deploy: { what: 'a mapping', ok: (v) => isObj(v) && (v.resources === undefined || (isObj(v.resources) && [v.resources.limits, v.resources.reservations].every((x) => x === undefined || isObj(x)))) },
};

/**
 * One service as it is read: the config its keys write, the notes on them, and where each key of
 * the config came from (a place in the Compose file). The keys' handlers write through it.
 */
class ServiceReading {
  readonly c: Record<string, unknown>;
  private readonly base: PathSeg[];

  constructor(readonly file: string, readonly parsed: ParsedConfig, service: string, readonly s: Record<string, unknown>, private readonly opts: ComposeOptions, readonly out: ComposeImport) {
    this.c = out.config;
    this.base = ['services', service];
  }

  /** The line of a key under the service, as a place to cite. */
  at(...p: PathSeg[]): Loc {
    const l = this.parsed.locate([...this.base, ...p], 'key');
    return { file: this.file, line: l.line, col: l.col, endCol: l.line === l.endLine ? l.endCol : undefined };
  }

  /** The line of a top-level key of the file. */
  top(path: PathSeg[]): Loc {
    const l = this.parsed.locate(path, 'key');
    return { file: this.file, line: l.line, col: l.col };
  }

  note(kind: ImportNote['kind'], where: Loc, code: string, message: string, path?: PathSeg[]): void {
    this.out.notes.push({ kind, at: where, code, message, ...(path ? { path } : {}) });
  }

  /** Writes `value` at `path` of the config, from the service's key at `from`. */
  set(path: PathSeg[], value: unknown, from: PathSeg[]): void {
    let o = this.c;
    for (const k of path.slice(0, -1)) o = (o[k as string] ??= {}) as Record<string, unknown>;
    o[path.at(-1) as string] = value;
    this.out.origin.push({ path, at: this.at(...from) });
  }

  /** Appends to the list at `key`; gives the item's index, for a note's path. */
  push(key: string, value: unknown, from: PathSeg[]): number {
    const list = (this.c[key] ??= []) as unknown[];
    list.push(value);
    this.out.origin.push({ path: [key, list.length - 1], at: this.at(...from) });
    return list.length - 1;
  }

  /** A host path as the config's file will hold it: relative paths from that file's folder, so that
   * they still name the folder the Compose file meant; an interpolated one is left as it is. */
  hostPath(p: string): string {
    if (isAbsolute(p) || p === '~' || p.startsWith('~/') || p.includes('${')) return p;
    const rel = relative(this.opts.outDir, normPath(join(this.opts.composeDir, p))) || '.';
    return rel.startsWith('..') || rel === '.' ? rel : `./${rel}`;
  }
}

/** What a key of the service does with its value: writes into the config, or says why it cannot. */
type KeyHandler = (r: ServiceReading, key: string, v: unknown) => void;

/** A key with another name in sandbox's config, and the same meaning. */
const rename = (...path: PathSeg[]): KeyHandler => (r, key, v) => r.set([...path], v, [key]);

/** ipc, pid, uts, cgroup, userns_mode: the host's namespace or a private one; another
 * container's (service:NAME, container:NAME) has no counterpart, as sandboxes join by path. */
const nsKey = (ns: string): KeyHandler => (r, key) => {
  const v = String(r.s[key]);
  if (v === 'host') r.set(['namespaces', ns], 'host', [key]);
  else if (v === 'private' || v === '') r.set(['namespaces', ns], 'private', [key]);
  else if (v === 'shareable') r.set(['namespaces', ns], 'private', [key]);
  else r.note('dropped', r.at(key), 'ns-join', `\`${key}: ${v}\`: join another sandbox's namespace by path: \`namespaces: {${ns}: /proc/PID/ns/${ns}}\``);
};

/** env_file: a path, or a list of paths and {path, required} mappings. */
function readEnvFile(r: ServiceReading, key: string, v: unknown): void {
  for (const [i, f] of ([] as unknown[]).concat(v).entries()) {
    const path = typeof f === 'string' ? f : (f as { path?: string }).path;
    if (typeof path === 'string') r.push('env_file', r.hostPath(path), Array.isArray(v) ? [key, i] : [key]);
    if (typeof f === 'object' && (f as { required?: boolean }).required === false) r.note('changed', r.at(key, i), 'env-file-required', 'an env file sandbox cannot read is an error; `required: false` has no counterpart', ['env_file']);
  }
}

/** restart: always and unless-stopped both become `always`, which lasts while the sandbox does. */
function readRestart(r: ServiceReading, key: string, v: unknown): void {
  const policy = String(v);
  if (policy === 'unless-stopped' || policy === 'always') {
    r.set(['restart'], 'always', [key]);
    r.note('changed', r.at(key), 'restart-always', `\`restart: ${policy}\`: PID 1 inside the sandbox runs the command again until it is stopped; there is no daemon to start it again after a reboot`, ['restart']);
  } else r.set(['restart'], policy, [key]);
}

/** security_opt: no-new-privileges and seccomp have keys; LSM labels do not. */
function readSecurityOpt(r: ServiceReading, key: string, v: unknown): void {
  for (const [i, o] of ([] as string[]).concat(v as string[]).entries()) {
    const m = /^([a-z-]+)(?:[=:](.*))?$/.exec(o);
    if (m?.[1] === 'no-new-privileges') r.set(['security', 'no_new_privileges'], m[2] !== 'false', [key, i]);
    else if (m?.[1] === 'seccomp' && m[2]) r.set(['security', 'seccomp'], m[2] === 'unconfined' || m[2] === 'default' ? m[2] : r.hostPath(m[2]), [key, i]);
    else r.note('dropped', r.at(key, i), 'lsm', `\`${o}\`: sandbox sets no AppArmor or SELinux label; its seccomp filter, capabilities and masked paths stay`);
  }
}

/** ports: strings and mappings as they are, less what only Swarm reads (mode, name, app_protocol). */
function readPorts(r: ServiceReading, key: string, v: unknown): void {
  (v as unknown[]).forEach((p, i) => {
    let item = p;
    if (p && typeof p === 'object') {
      const { mode, name, app_protocol, ...rest } = p as Record<string, unknown>;
      void mode; void name; void app_protocol;
      item = rest;
    }
    const n = r.push('ports', item, [key, i]);
    const ip = typeof p === 'object' && p ? (p as { host_ip?: string }).host_ip : /^(\[[^\]]*\]|[0-9.]+:[0-9-]*:)/.test(String(p)) ? 'x' : undefined;
    if (!ip) r.note('changed', r.at(key, i), 'port-every-address', 'published on every address of this host, as Compose does; add 127.0.0.1: in front to keep it on this machine', ['ports', n]);
  });
}

/** A volume in the short form: SOURCE:TARGET[:OPTIONS], a host path or a name; a target alone is an anonymous volume. */
function readShortVolume(r: ServiceReading, key: string, m: string, i: number): void {
  const parts = m.split(':');
  if (parts.length === 1) {
    const n = r.push('volumes', { type: 'tmpfs', target: m }, [key, i]);
    r.note('changed', r.at(key, i), 'anonymous-volume', 'an anonymous volume: a tmpfs (memory, gone when the sandbox ends) is the nearest sandbox has; give it a name to keep it', ['volumes', n]);
    return;
  }
  const [src, ...rest] = parts as [string, ...string[]];
  r.push('volumes', [/^[./~]/.test(src) ? r.hostPath(src) : src, ...rest].join(':'), [key, i]);
}

/** A volume in the long form: a bind, a tmpfs or a named volume. */
function readLongVolume(r: ServiceReading, key: string, o: Record<string, unknown>, i: number): void {
  const target = o.target as string;
  if (o.type === 'bind' && !isStr(o.source)) r.note('refused', r.at(key, i), 'mount-no-source', 'a bind mount needs a `source`');
  else if (o.type === 'bind') r.push('volumes', { type: 'bind', source: r.hostPath(String(o.source)), target, ...(o.read_only ? { read_only: true } : {}), ...((o.bind as { propagation?: string } | undefined)?.propagation ? { propagation: (o.bind as { propagation: string }).propagation } : {}) }, [key, i]);
  else if (o.type === 'tmpfs') {
    const t = (o.tmpfs ?? {}) as { size?: unknown; mode?: unknown };
    // Compose reads a number as the mode itself (0o1777, or 1023) and a string as octal digits.
    const mode = typeof t.mode === 'number' ? t.mode.toString(8) : t.mode !== undefined ? String(t.mode) : undefined;
    r.push('volumes', { type: 'tmpfs', target, ...(t.size !== undefined ? { size: t.size } : {}), ...(mode !== undefined ? { mode } : {}) }, [key, i]);
  }
  else if (o.type === 'volume' && o.source) {
    const opts = [...(o.read_only ? ['ro'] : []), ...((o.volume as { nocopy?: boolean } | undefined)?.nocopy ? ['nocopy'] : [])];
    r.push('volumes', `${o.source}:${target}${opts.length ? `:${opts.join(',')}` : ''}`, [key, i]);
  }
  else r.note('dropped', r.at(key, i), 'mount-type', `a \`${String(o.type)}\` mount: sandbox mounts binds, named volumes and tmpfs`);
}

/** tmpfs: a path or a list of paths, each TARGET[:OPTIONS]; size and mode have keys. */
function readTmpfs(r: ServiceReading, key: string, v: unknown): void {
  for (const [i, t] of ([] as string[]).concat(v as string[]).entries()) {
    const [target, opts = ''] = t.split(/:(.*)/s) as [string, string?];
    const size = /(?:^|,)size=([^,]+)/.exec(opts)?.[1];
    const mode = /(?:^|,)mode=([^,]+)/.exec(opts)?.[1];
    // Docker's tmpfs mounts are noexec unless told exec.
    const exec = opts.split(',').includes('exec');
    r.push('volumes', { type: 'tmpfs', target, ...(size ? { size } : {}), ...(mode ? { mode } : {}), ...(exec ? {} : { options: ['noexec'] }) }, Array.isArray(v) ? [key, i] : [key]);
  }
}

/** network_mode: none and host as they are; bridge becomes a private network of the sandbox's own;
 * another service's or container's network is joined by path. */
function readNetworkMode(r: ServiceReading, key: string, v: unknown): void {
  const m = String(v);
  if (m === 'none' || m === 'host') r.set(['network'], m, [key]);
  else if (m === 'bridge') { r.set(['network'], 'private', [key]); r.note('changed', r.at(key), 'network-bridge', '`bridge`: a private network is this sandbox\'s own (a veth to the host, outbound NAT); other sandboxes reach it only through published ports', ['network']); }
  else r.note('dropped', r.at(key), 'network-join', `\`network_mode: ${m}\`: join a running sandbox's network by path: \`namespaces: {net: /proc/PID/ns/net}\``);
}

/** blkio_config: the weight and the device rates have keys. */
function readBlkio(r: ServiceReading, key: string, v: unknown): void {
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (k === 'weight') r.set(['resources', 'io_weight'], val, [key, k]);
    else if (['device_read_bps', 'device_write_bps', 'device_read_iops', 'device_write_iops'].includes(k)) r.set(['resources', k], val, [key, k]);
    else r.note('dropped', r.at(key, k), 'no-key', `\`blkio_config.${k}\`: sandbox has no key for it`);
  }
}

/** deploy: the resources' limits and the memory reservation; the rest is an orchestrator's. */
function readDeploy(r: ServiceReading, key: string, v: unknown): void {
  const d = v as { resources?: { limits?: Record<string, unknown>; reservations?: Record<string, unknown> } } & Record<string, unknown>;
  for (const [k, val] of Object.entries(d.resources?.limits ?? {})) {
    const to = { cpus: 'cpus', memory: 'memory', pids: 'pids' }[k];
    if (to) r.set(['resources', to], val, [key, 'resources', 'limits', k]);
    else r.note('dropped', r.at(key, 'resources', 'limits', k), 'no-key', `\`deploy.resources.limits.${k}\`: sandbox has no key for it`);
  }
  for (const [k, val] of Object.entries(d.resources?.reservations ?? {})) {
    if (k === 'memory') r.set(['resources', 'memory_reservation'], val, [key, 'resources', 'reservations', k]);
    else r.note('dropped', r.at(key, 'resources', 'reservations', k), 'no-key', `\`deploy.resources.reservations.${k}\`: a reservation other than memory has no key`);
  }
  for (const k of Object.keys(d)) if (k !== 'resources') r.note('dropped', r.at(key, k), 'no-key', `\`deploy.${k}\`: one sandbox per file, run by \`sandbox up\`; there is no orchestrator`);
}

/** The keys that are renamed or read, by Compose's name (those copied as they are are in SAME). */
const KEYS: ReadonlyMap<string, KeyHandler> = new Map<string, KeyHandler>([
  ['container_name', rename('name')],
  ['environment', rename('env')],
  ['working_dir', rename('workdir')],
  ['env_file', readEnvFile],
  ['restart', readRestart],
  ['read_only', rename('security', 'read_only')],
  ['privileged', (r, key, v) => { if (v) r.note('refused', r.at(key), 'privileged', '`privileged: true` gives the command every capability, every device and no seccomp filter: it is not a sandbox. Name what it needs instead (`cap_add`, `devices`, `security.seccomp`)'); }],
  ['security_opt', readSecurityOpt],
  ['ulimits', rename('ulimits')],
  ['ports', readPorts],
  ['volumes', (r, key, v) => (v as unknown[]).forEach((m, i) => (typeof m === 'string' ? readShortVolume(r, key, m, i) : readLongVolume(r, key, m as Record<string, unknown>, i)))],
  ['tmpfs', readTmpfs],
  ['network_mode', readNetworkMode],
  ['networks', (r, key, v) => {
    const names = Array.isArray(v) ? v.map(String) : Object.keys(v as object);
    if (names.some((n) => n !== 'default')) r.note('dropped', r.at(key), 'networks', `networks ${names.join(', ')}: sandbox has no shared networks; the sandbox gets a private network of its own, reached through published ports`);
  }],
  ['mem_limit', rename('resources', 'memory')],
  ['mem_reservation', rename('resources', 'memory_reservation')],
  ['memswap_limit', rename('resources', 'memory_swap')],
  ['cpus', rename('resources', 'cpus')],
  ['cpu_shares', rename('resources', 'cpu_shares')],
  ['cpuset', rename('resources', 'cpuset')],
  ['cpuset_mems', rename('resources', 'cpuset_mems')],
  ['pids_limit', (r, key, v) => r.set(['resources', 'pids'], Number(v) <= 0 ? -1 : v, [key])],
  ['blkio_config', readBlkio],
  ['deploy', readDeploy],
  ['ipc', nsKey('ipc')],
  ['pid', nsKey('pid')],
  ['uts', nsKey('uts')],
  ['cgroup', nsKey('cgroup')],
  ['userns_mode', nsKey('user')],
]);

/** One key of the service: copied, renamed, read by its handler, or reported with the reason it has no key. */
function readKey(r: ServiceReading, key: string, v: unknown): void {
  // A key of a shape Compose does not allow is refused at its line; values of keys copied as they
  // are meet the schema once written, and its errors are shown at their Compose line too.
  const shape = SHAPES[key];
  if (shape && !shape.ok(v)) { r.note('refused', r.at(key), 'compose-shape', `\`${key}\` must be ${shape.what}, as Compose writes it`); return; }
  const handler = KEYS.get(key);
  if ((SAME as readonly string[]).includes(key) || key.startsWith('x-')) r.set([key], v, [key]);
  else if (handler) handler(r, key, v);
  else r.note('dropped', r.at(key), 'no-key', `\`${key}\`: ${Object.hasOwn(DROPPED, key) ? DROPPED[key] : 'sandbox has no key for it'}`);
}

/** Top-level keys. Named volumes are made on first use: a declaration is written (as
 * `named_volumes`, since the top level here is the sandbox, whose `volumes` are its mounts) only
 * for a volume this service mounts that has another store name or is external. */
function readTopLevel(r: ServiceReading, top: Record<string, unknown>): void {
  const c = r.c;
  const used = new Set(((c.volumes ?? []) as unknown[]).filter((m): m is string => typeof m === 'string').map((m) => m.split(':')[0]!));
  for (const [k, v] of Object.entries(top)) {
    if (k === 'volumes' && v && typeof v === 'object') {
      for (const [name, decl] of Object.entries(v)) {
        const d = (decl ?? {}) as Record<string, unknown>;
        const keep = Object.fromEntries(Object.entries(d).filter(([x]) => x === 'name' || x === 'external'));
        if (used.has(name) && Object.keys(keep).length) { ((c.named_volumes ??= {}) as Record<string, unknown>)[name] = keep; r.out.origin.push({ path: ['named_volumes', name], at: r.top(['volumes', name]) }); }
        const extra = Object.keys(d).filter((x) => x !== 'name' && x !== 'external');
        if (extra.length) r.note('dropped', r.top(['volumes', name]), 'volume-options', `volume \`${name}\`: ${extra.join(', ')} ha${extra.length > 1 ? 've' : 's'} no key: a named volume is a folder sandbox keeps in its store`);
      }
    } else if (['configs', 'secrets', 'networks'].includes(k) && v && typeof v === 'object' && Object.keys(v).length) {
      if (k !== 'networks' || Object.keys(v).some((n) => n !== 'default')) r.note('dropped', r.top([k]), 'no-key', `top-level \`${k}\`: ${k === 'networks' ? 'sandbox has no shared networks' : 'mount the files with `volumes` instead'}`);
    }
  }
}

/** The file's top level and the service to import, or undefined with the reason in `out.errors`:
 * the file did not parse, is not Compose, has several services and none was named, or not the one named. */
function pickService(file: string, parsed: ParsedConfig, service: string | undefined, out: ComposeImport): { top: Record<string, unknown>; service: string; s: Record<string, unknown> } | undefined {
  const error = (path: PathSeg[], code: string, message: string) => out.errors.push({ file, ...parsed.locate(path, 'key'), path: '', code, message, severity: 'error' });
  if (out.errors.length) return undefined;
  const top = parsed.value as Record<string, unknown> | undefined;
  const services = top && typeof top === 'object' && !Array.isArray(top) ? top.services : undefined;
  if (!services || typeof services !== 'object' || Array.isArray(services)) { error([], 'no-services', `${file} has no \`services\` mapping: it is not a Compose file`); return undefined; }
  out.services = Object.keys(services);
  if (service === undefined && out.services.length === 1) service = out.services[0];
  if (service === undefined) { error(['services'], 'which-service', `${file} has ${out.services.length} services (${out.services.join(', ')}); name the one to import: sandbox import ${file} SERVICE`); return undefined; }
  if (!Object.hasOwn(services, service)) { error(['services'], 'no-such-service', `${file} has no service \`${service}\`; it has ${out.services.join(', ') || 'none'}`); return undefined; }
  out.service = service;
  const raw = (services as Record<string, unknown>)[service] ?? {};
  if (!isObj(raw)) { error(['services', service], 'not-a-service', `service \`${service}\` must be a mapping of keys such as \`image:\`, not ${Array.isArray(raw) ? 'a list' : typeof raw}`); return undefined; }
  return { top: top!, service, s: raw };
}

export function fromCompose(file: string, bytes: Uint8Array, service: string | undefined, opts: ComposeOptions): ComposeImport {
  const parsed = parseConfig(file, bytes);
  const c: Record<string, unknown> = { version: 1 };
  const out: ComposeImport = { config: c as ComposeImport['config'], notes: [], origin: [], text: parsed.text, errors: [...parsed.diagnostics], services: [] };
  const picked = pickService(file, parsed, service, out);
  if (!picked) return out;
  const r = new ServiceReading(file, parsed, picked.service, picked.s, opts, out);
  for (const key of Object.keys(picked.s)) readKey(r, key, picked.s[key]);
  readTopLevel(r, picked.top);
  if (c.name === undefined) c.name = nameFrom(picked.service);
  out.config = ordered(c);
  finishImport(out);
  out.config = ordered(out.config);
  return out;
}
