// One service of a Compose file → the config a person would write for it. Most of sandbox's keys
// are Compose's own names, so most values are copied; the rest are renamed, or reported at their
// line with the reason they have no key. Pure: the file's bytes and folders are parameters.
import { isAbsolute, join, normalize as normPath, relative } from 'node:path';
import { parseConfig, type PathSeg } from '../config/parse';
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

export function fromCompose(file: string, bytes: Uint8Array, service: string | undefined, opts: ComposeOptions): ComposeImport {
  const parsed = parseConfig(file, bytes);
  const notes: ImportNote[] = [];
  const origin: { path: PathSeg[]; at: Loc }[] = [];
  const c: Record<string, unknown> = { version: 1 };
  const out: ComposeImport = { config: c as ComposeImport['config'], notes, origin, text: parsed.text, errors: [...parsed.diagnostics], services: [] };
  const error = (path: PathSeg[], code: string, message: string) => out.errors.push({ file, ...parsed.locate(path, 'key'), path: '', code, message, severity: 'error' });
  if (out.errors.length) return out;
  const top = parsed.value as Record<string, unknown> | undefined;
  const services = top && typeof top === 'object' && !Array.isArray(top) ? top.services : undefined;
  if (!services || typeof services !== 'object' || Array.isArray(services)) { error([], 'no-services', `${file} has no \`services\` mapping: it is not a Compose file`); return out; }
  out.services = Object.keys(services);
  if (service === undefined && out.services.length === 1) service = out.services[0];
  if (service === undefined) { error(['services'], 'which-service', `${file} has ${out.services.length} services (${out.services.join(', ')}); name the one to import: sandbox import ${file} SERVICE`); return out; }
  if (!Object.hasOwn(services, service)) { error(['services'], 'no-such-service', `${file} has no service \`${service}\`; it has ${out.services.join(', ') || 'none'}`); return out; }
  out.service = service;
  const raw = (services as Record<string, unknown>)[service] ?? {};
  if (!isObj(raw)) { error(['services', service], 'not-a-service', `service \`${service}\` must be a mapping of keys such as \`image:\`, not ${Array.isArray(raw) ? 'a list' : typeof raw}`); return out; }
  const s = raw;
  const base: PathSeg[] = ['services', service];
  const at = (...p: PathSeg[]): Loc => { const l = parsed.locate([...base, ...p], 'key'); return { file, line: l.line, col: l.col, endCol: l.line === l.endLine ? l.endCol : undefined }; };
  const note = (kind: ImportNote['kind'], where: Loc, code: string, message: string, path?: PathSeg[]) => notes.push({ kind, at: where, code, message, ...(path ? { path } : {}) });
  const set = (path: PathSeg[], value: unknown, from: PathSeg[]) => {
    let o = c;
    for (const k of path.slice(0, -1)) o = (o[k as string] ??= {}) as Record<string, unknown>;
    o[path.at(-1) as string] = value;
    origin.push({ path, at: at(...from) });
  };
  const push = (key: string, value: unknown, from: PathSeg[]): number => {
    const list = (c[key] ??= []) as unknown[];
    list.push(value);
    origin.push({ path: [key, list.length - 1], at: at(...from) });
    return list.length - 1;
  };
  const hostPath = (p: string): string => {
    if (isAbsolute(p) || p === '~' || p.startsWith('~/') || p.includes('${')) return p;
    const rel = relative(opts.outDir, normPath(join(opts.composeDir, p))) || '.';
    return rel.startsWith('..') || rel === '.' ? rel : `./${rel}`;
  };
  const nsKey = (key: string, ns: string) => {
    const v = String(s[key]);
    if (v === 'host') set(['namespaces', ns], 'host', [key]);
    else if (v === 'private' || v === '') set(['namespaces', ns], 'private', [key]);
    else if (v === 'shareable') set(['namespaces', ns], 'private', [key]);
    else note('dropped', at(key), 'ns-join', `\`${key}: ${v}\`: join another sandbox's namespace by path: \`namespaces: {${ns}: /proc/PID/ns/${ns}}\``);
  };

  for (const key of Object.keys(s)) {
    const v = s[key];
    // A key of a shape Compose does not allow is refused at its line; values of keys copied as they
    // are meet the schema once written, and its errors are shown at their Compose line too.
    const shape = SHAPES[key];
    if (shape && !shape.ok(v)) { note('refused', at(key), 'compose-shape', `\`${key}\` must be ${shape.what}, as Compose writes it`); continue; }
    if ((SAME as readonly string[]).includes(key)) set([key], v, [key]);
    else if (key.startsWith('x-')) set([key], v, [key]);
    else if (key === 'container_name') set(['name'], v, [key]);
    else if (key === 'environment') set(['env'], v, [key]);
    else if (key === 'working_dir') set(['workdir'], v, [key]);
    else if (key === 'env_file') {
      for (const [i, f] of ([] as unknown[]).concat(v).entries()) {
        const path = typeof f === 'string' ? f : (f as { path?: string }).path;
        if (typeof path === 'string') push('env_file', hostPath(path), Array.isArray(v) ? [key, i] : [key]);
        if (typeof f === 'object' && (f as { required?: boolean }).required === false) note('changed', at(key, i), 'env-file-required', 'an env file sandbox cannot read is an error; `required: false` has no counterpart', ['env_file']);
      }
    } else if (key === 'restart') {
      const r = String(v);
      if (r === 'unless-stopped' || r === 'always') {
        set(['restart'], 'always', [key]);
        note('changed', at(key), 'restart-always', `\`restart: ${r}\`: PID 1 inside the sandbox runs the command again until it is stopped; there is no daemon to start it again after a reboot`, ['restart']);
      } else set(['restart'], r, [key]);
    } else if (key === 'read_only') set(['security', 'read_only'], v, [key]);
    else if (key === 'privileged') { if (v) note('refused', at(key), 'privileged', '`privileged: true` gives the command every capability, every device and no seccomp filter: it is not a sandbox. Name what it needs instead (`cap_add`, `devices`, `security.seccomp`)'); }
    else if (key === 'security_opt') {
      for (const [i, o] of ([] as string[]).concat(v as string[]).entries()) {
        const m = /^([a-z-]+)(?:[=:](.*))?$/.exec(o);
        if (m?.[1] === 'no-new-privileges') set(['security', 'no_new_privileges'], m[2] !== 'false', [key, i]);
        else if (m?.[1] === 'seccomp' && m[2]) set(['security', 'seccomp'], m[2] === 'unconfined' || m[2] === 'default' ? m[2] : hostPath(m[2]), [key, i]);
        else note('dropped', at(key, i), 'lsm', `\`${o}\`: sandbox sets no AppArmor or SELinux label; its seccomp filter, capabilities and masked paths stay`);
      }
    } else if (key === 'ulimits') set(['ulimits'], v, [key]);
    else if (key === 'ports') {
      (v as unknown[]).forEach((p, i) => {
        let item = p;
        if (p && typeof p === 'object') {
          const { mode, name, app_protocol, ...rest } = p as Record<string, unknown>;
          void mode; void name; void app_protocol;
          item = rest;
        }
        const n = push('ports', item, [key, i]);
        const ip = typeof p === 'object' && p ? (p as { host_ip?: string }).host_ip : /^(\[[^\]]*\]|[0-9.]+:[0-9-]*:)/.test(String(p)) ? 'x' : undefined;
        if (!ip) note('changed', at(key, i), 'port-every-address', 'published on every address of this host, as Compose does; add 127.0.0.1: in front to keep it on this machine', ['ports', n]);
      });
    } else if (key === 'volumes') {
      (v as unknown[]).forEach((m, i) => {
        if (typeof m === 'string') {
          const parts = m.split(':');
          if (parts.length === 1) { const n = push('volumes', { type: 'tmpfs', target: m }, [key, i]); note('changed', at(key, i), 'anonymous-volume', 'an anonymous volume: a tmpfs (memory, gone when the sandbox ends) is the nearest sandbox has; give it a name to keep it', ['volumes', n]); return; }
          const [src, ...rest] = parts as [string, ...string[]];
          push('volumes', [/^[./~]/.test(src) ? hostPath(src) : src, ...rest].join(':'), [key, i]);
          return;
        }
        const o = m as Record<string, unknown>;
        const target = o.target as string;
        if (o.type === 'bind' && !isStr(o.source)) note('refused', at(key, i), 'mount-no-source', 'a bind mount needs a `source`');
        else if (o.type === 'bind') push('volumes', { type: 'bind', source: hostPath(String(o.source)), target, ...(o.read_only ? { read_only: true } : {}), ...((o.bind as { propagation?: string } | undefined)?.propagation ? { propagation: (o.bind as { propagation: string }).propagation } : {}) }, [key, i]);
        else if (o.type === 'tmpfs') {
          const t = (o.tmpfs ?? {}) as { size?: unknown; mode?: unknown };
          // Compose reads a number as the mode itself (0o1777, or 1023) and a string as octal digits.
          const mode = typeof t.mode === 'number' ? t.mode.toString(8) : t.mode !== undefined ? String(t.mode) : undefined;
          push('volumes', { type: 'tmpfs', target, ...(t.size !== undefined ? { size: t.size } : {}), ...(mode !== undefined ? { mode } : {}) }, [key, i]);
        }
        else if (o.type === 'volume' && o.source) {
          const opts = [...(o.read_only ? ['ro'] : []), ...((o.volume as { nocopy?: boolean } | undefined)?.nocopy ? ['nocopy'] : [])];
          push('volumes', `${o.source}:${target}${opts.length ? `:${opts.join(',')}` : ''}`, [key, i]);
        }
        else note('dropped', at(key, i), 'mount-type', `a \`${String(o.type)}\` mount: sandbox mounts binds, named volumes and tmpfs`);
      });
    } else if (key === 'tmpfs') {
      for (const [i, t] of ([] as string[]).concat(v as string[]).entries()) {
        const [target, opts = ''] = t.split(/:(.*)/s) as [string, string?];
        const size = /(?:^|,)size=([^,]+)/.exec(opts)?.[1];
        const mode = /(?:^|,)mode=([^,]+)/.exec(opts)?.[1];
        // Docker's tmpfs mounts are noexec unless told exec.
        const exec = opts.split(',').includes('exec');
        push('volumes', { type: 'tmpfs', target, ...(size ? { size } : {}), ...(mode ? { mode } : {}), ...(exec ? {} : { options: ['noexec'] }) }, Array.isArray(v) ? [key, i] : [key]);
      }
    } else if (key === 'network_mode') {
      const m = String(v);
      if (m === 'none' || m === 'host') set(['network'], m, [key]);
      else if (m === 'bridge') { set(['network'], 'private', [key]); note('changed', at(key), 'network-bridge', '`bridge`: a private network is this sandbox\'s own (a veth to the host, outbound NAT); other sandboxes reach it only through published ports', ['network']); }
      else note('dropped', at(key), 'network-join', `\`network_mode: ${m}\`: join a running sandbox's network by path: \`namespaces: {net: /proc/PID/ns/net}\``);
    } else if (key === 'networks') {
      const names = Array.isArray(v) ? v.map(String) : Object.keys(v as object);
      if (names.some((n) => n !== 'default')) note('dropped', at(key), 'networks', `networks ${names.join(', ')}: sandbox has no shared networks; the sandbox gets a private network of its own, reached through published ports`);
    } else if (key === 'mem_limit') set(['resources', 'memory'], v, [key]);
    else if (key === 'mem_reservation') set(['resources', 'memory_reservation'], v, [key]);
    else if (key === 'memswap_limit') set(['resources', 'memory_swap'], v, [key]);
    else if (key === 'cpus') set(['resources', 'cpus'], v, [key]);
    else if (key === 'cpu_shares') set(['resources', 'cpu_shares'], v, [key]);
    else if (key === 'cpuset') set(['resources', 'cpuset'], v, [key]);
    else if (key === 'cpuset_mems') set(['resources', 'cpuset_mems'], v, [key]);
    else if (key === 'pids_limit') set(['resources', 'pids'], Number(v) <= 0 ? -1 : v, [key]);
    else if (key === 'blkio_config') {
      const b = v as Record<string, unknown>;
      for (const [k, val] of Object.entries(b)) {
        if (k === 'weight') set(['resources', 'io_weight'], val, [key, k]);
        else if (['device_read_bps', 'device_write_bps', 'device_read_iops', 'device_write_iops'].includes(k)) set(['resources', k], val, [key, k]);
        else note('dropped', at(key, k), 'no-key', `\`blkio_config.${k}\`: sandbox has no key for it`);
      }
    } else if (key === 'deploy') {
      const d = v as { resources?: { limits?: Record<string, unknown>; reservations?: Record<string, unknown> } } & Record<string, unknown>;
      const lim = d.resources?.limits ?? {};
      for (const [k, val] of Object.entries(lim)) {
        const to = { cpus: 'cpus', memory: 'memory', pids: 'pids' }[k];
        if (to) set(['resources', to], val, [key, 'resources', 'limits', k]);
        else note('dropped', at(key, 'resources', 'limits', k), 'no-key', `\`deploy.resources.limits.${k}\`: sandbox has no key for it`);
      }
      const res = d.resources?.reservations ?? {};
      for (const [k, val] of Object.entries(res)) {
        if (k === 'memory') set(['resources', 'memory_reservation'], val, [key, 'resources', 'reservations', k]);
        else note('dropped', at(key, 'resources', 'reservations', k), 'no-key', `\`deploy.resources.reservations.${k}\`: a reservation other than memory has no key`);
      }
      for (const k of Object.keys(d)) if (k !== 'resources') note('dropped', at(key, k), 'no-key', `\`deploy.${k}\`: one sandbox per file, run by \`sandbox up\`; there is no orchestrator`);
    } else if (key === 'ipc') nsKey(key, 'ipc');
    else if (key === 'pid') nsKey(key, 'pid');
    else if (key === 'uts') nsKey(key, 'uts');
    else if (key === 'cgroup') nsKey(key, 'cgroup');
    else if (key === 'userns_mode') nsKey(key, 'user');
    else note('dropped', at(key), 'no-key', `\`${key}\`: ${Object.hasOwn(DROPPED, key) ? DROPPED[key] : 'sandbox has no key for it'}`);
  }

  // Top-level keys. Named volumes are made on first use: a declaration is written (as
  // `named_volumes`, since the top level here is the sandbox, whose `volumes` are its mounts) only
  // for a volume this service mounts that has another store name or is external.
  const used = new Set(((c.volumes ?? []) as unknown[]).filter((m): m is string => typeof m === 'string').map((m) => m.split(':')[0]!));
  for (const [k, v] of Object.entries(top!)) {
    if (k === 'volumes' && v && typeof v === 'object') {
      for (const [name, decl] of Object.entries(v)) {
        const d = (decl ?? {}) as Record<string, unknown>;
        const l = parsed.locate(['volumes', name], 'key');
        const keep = Object.fromEntries(Object.entries(d).filter(([x]) => x === 'name' || x === 'external'));
        if (used.has(name) && Object.keys(keep).length) { ((c.named_volumes ??= {}) as Record<string, unknown>)[name] = keep; origin.push({ path: ['named_volumes', name], at: { file, line: l.line, col: l.col } }); }
        const extra = Object.keys(d).filter((x) => x !== 'name' && x !== 'external');
        if (extra.length) note('dropped', { file, line: l.line, col: l.col }, 'volume-options', `volume \`${name}\`: ${extra.join(', ')} ha${extra.length > 1 ? 've' : 's'} no key: a named volume is a folder sandbox keeps in its store`);
      }
    } else if (['configs', 'secrets', 'networks'].includes(k) && v && typeof v === 'object' && Object.keys(v).length) {
      const l = parsed.locate([k], 'key');
      if (k !== 'networks' || Object.keys(v).some((n) => n !== 'default')) note('dropped', { file, line: l.line, col: l.col }, 'no-key', `top-level \`${k}\`: ${k === 'networks' ? 'sandbox has no shared networks' : 'mount the files with `volumes` instead'}`);
    }
  }
  if (c.name === undefined) c.name = nameFrom(service);
  out.config = ordered(c);
  finishImport(out);
  out.config = ordered(out.config);
  return out;
}
