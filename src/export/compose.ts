// SandboxSpec → a Compose file with one service, with the fidelity report. Pure. The config's keys
// follow Compose's already, so most map one to one; what differs is what sandbox adds by default
// (no_new_privs, Podman's smaller capability set), written out so that the engine's own defaults
// do not apply, and what Compose has no key for.
import { deviceRuleText } from '../model/sections/resources';
import type { SandboxSpec } from '../model/types';
import { RESOURCE_EXPORTS, setPath } from './resources';
import { commonFindings, dnsLabel, egressFinding, imageFindings, LOSSY, Report, signalName, written, writtenEnv, type Exported, type Locate } from './fidelity';
import { flagFindings } from './kube';

export interface ComposeOptions {
  image?: string;
  rootDirs: readonly string[];
}

type Obj = Record<string, unknown>;

/** Milliseconds as a Compose duration: 30s, 1500ms. */
const duration = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);

/** How the sandbox has namespace `t`: private, the host's, or joined. */
const nsMode = (spec: SandboxSpec, t: string) => spec.namespaces.find((n) => n.type === t)!.mode;

/** The command, its folder, identity, environment and terminal, and its life (init, restarts,
 * stop signal and grace); the hostname in a uts namespace of its own. An image keeps its own
 * entrypoint unless the file names one; another root runs exactly the file's words. */
function serviceProcess(spec: SandboxSpec, opts: ComposeOptions, svc: Obj): void {
  const p = spec.process;
  if (spec.rootfs.type === 'image' && !opts.image) {
    if (p.entrypoint !== undefined) svc.entrypoint = p.entrypoint;
    if (p.command !== undefined) svc.command = p.command;
  } else if (p.args.length) svc.entrypoint = p.args;
  if (written(p.cwd.src) || spec.rootfs.type !== 'image') svc.working_dir = p.cwd.value;
  const u = p.user;
  if (written(u.src) || spec.rootfs.type !== 'image') svc.user = u.group !== undefined ? `${u.user}:${u.group}` : String(u.user);
  if (p.groups.length) svc.group_add = p.groups.map((g) => g.value);
  const env = writtenEnv(spec);
  if (env.length) svc.environment = Object.fromEntries(env.map((e) => [e.name, e.value]));
  if (p.tty.value) svc.tty = true;
  if (p.stdin.value) svc.stdin_open = true;
  if (p.init.value) svc.init = true;
  const rs = p.restart.value;
  if (rs.policy !== 'no') svc.restart = rs.policy === 'on-failure' && rs.max ? `on-failure:${rs.max}` : rs.policy;
  if (written(p.stopSignal.src)) svc.stop_signal = signalName(p.stopSignal.value);
  if (written(p.stopGraceMs.src)) svc.stop_grace_period = duration(p.stopGraceMs.value);
  if (written(spec.shmSize.src)) svc.shm_size = spec.shmSize.value;
  if (nsMode(spec, 'uts') === 'private' && spec.network.mode.value !== 'host') svc.hostname = spec.hostname.value;
}

/** Network: the mode (private is Compose's own default), ports, name servers and extra hosts; what
 * a service cannot say, as findings. */
function serviceNetwork(spec: SandboxSpec, r: Report, svc: Obj): void {
  const net = spec.network;
  if (net.mode.value !== 'private') svc.network_mode = net.mode.value;
  if (written(net.subnet.src)) r.none(net.subnet.src, ['network', 'subnet'], 'subnet', '`network.subnet` on a service', `declare a network with that subnet under the file's top-level networks; ${LOSSY}`);
  if (written(net.proxy.src) && net.proxy.value !== 'auto') r.none(net.proxy.src, ['network', 'proxy'], 'proxy', '`network.proxy`', LOSSY);
  if (written(net.cmd.src) && net.cmd.value !== 'auto') r.none(net.cmd.src, ['network', 'rootless_cmd'], 'rootless-cmd', '`network.rootless_cmd`', `rootless Podman reads it from containers.conf (rootless_network_cmd); ${LOSSY}`);
  if (net.ports.length) svc.ports = net.ports.map((pt) => ({ target: pt.containerPort, ...(pt.hostPort ? { published: String(pt.hostPort) } : {}), ...(pt.hostIp ? { host_ip: pt.hostIp } : {}), protocol: pt.protocol }));
  egressFinding(spec, r, 'a Compose service reaches whatever its network does (an egress proxy service in front of it comes closest)');
  if (net.dns.length) svc.dns = net.dns.map((d) => d.value);
  if (net.extraHosts.length) svc.extra_hosts = net.extraHosts.map((h) => `${h.host}=${h.ip}`);
}

/** Namespaces: Compose shares the host's by key; a user namespace is the daemon's setting. */
function serviceNamespaces(spec: SandboxSpec, r: Report, svc: Obj): void {
  for (const n of spec.namespaces) {
    const key = ['namespaces', n.type];
    if (n.mode === 'join') { r.none(n.src, key, 'namespace-join', `joining the ${n.type} namespace at ${n.path}`, `Compose joins another service's or container's (\`${n.type === 'net' ? 'network_mode' : n.type}: container:NAME\`), not a path; ${LOSSY}`); continue; }
    if (n.mode !== 'host') {
      if (n.type === 'user' && written(n.src)) r.none(n.src, key, 'user-namespace', 'a user namespace for one service (`namespaces.user`)', `the engine's daemon maps every container (dockerd --userns-remap), or rootless Podman does; ${LOSSY}`);
      continue;
    }
    if (n.type === 'pid' || n.type === 'ipc' || n.type === 'uts') svc[n.type] = 'host';
    else if (n.type === 'cgroup') svc.cgroup = 'host';
    else if (n.type === 'mount') r.none(n.src, key, 'namespace-host', 'the host\'s mount namespace (`namespaces.mount: host`)', `a container always has its own; ${LOSSY}`);
  }
  if (nsMode(spec, 'cgroup') === 'private') svc.cgroup = 'private';
}

/** Volumes: long forms, read-only where the file says, the host's folders for rootfs: host; then
 * the devices bound from the host. Gives the file's top-level declarations of named volumes. */
function serviceVolumes(spec: SandboxSpec, r: Report, svc: Obj, hostDirs: readonly string[]): Obj {
  const named: Obj = {};
  const vols: Obj[] = hostDirs.map((d) => ({ type: 'bind', source: d, target: d, read_only: true }));
  const targets = new Set(spec.mounts.map((m) => m.target));
  if (hostDirs.length) for (const t of ['/tmp', '/run']) if (!targets.has(t)) vols.push({ type: 'tmpfs', target: t });
  spec.mounts.forEach((m, i) => {
    flagFindings(m, i, r);
    if (m.kind === 'bind') vols.push({ type: 'bind', source: m.source, target: m.target, ...(m.readOnly ? { read_only: true } : {}), ...(m.propagation ? { bind: { propagation: m.propagation } } : {}) });
    // An anonymous volume is the image's VOLUME: Compose makes one itself, as sandbox does.
    else if (m.kind === 'volume') {
      if (m.anonymous) return;
      vols.push({ type: 'volume', source: m.name, target: m.target, ...(m.readOnly ? { read_only: true } : {}), ...(m.nocopy ? { volume: { nocopy: true } } : {}) });
      // The same name in the store and in Compose's project-less `name:`, so that both mean one volume.
      named[m.name] = m.external ? { external: true } : { name: m.name };
    } else vols.push({ type: 'tmpfs', target: m.target, ...(m.readOnly ? { read_only: true } : {}), tmpfs: { ...(m.sizeBytes ? { size: m.sizeBytes } : {}), mode: m.mode } });
  });
  if (vols.length) svc.volumes = vols;
  for (const d of spec.devices) if (d.node) r.none(d.src, ['devices'], 'device-node', `the node ${d.target} made by its numbers`, `Compose gives a host device (HOST:CONTAINER); ${LOSSY}`);
  const bound = spec.devices.filter((d) => !d.node);
  if (bound.length) svc.devices = bound.map((d) => `${d.source}:${d.target}:${d.permissions}`);
  return named;
}

/** Limits: Compose has a key for each; then ulimits and sysctls. */
function serviceLimits(spec: SandboxSpec, r: Report, svc: Obj): void {
  const res = spec.resources;
  for (const row of RESOURCE_EXPORTS) {
    const v = res[row.key];
    if (!v) continue;
    const c = row.compose(v.value);
    if ('none' in c) r.none(v.src, ['resources', row.config], row.config.replace(/_/g, '-'), `\`resources.${row.config}\``, c.none);
    else for (const [path, value] of c) setPath(svc, path, value);
  }
  const blkio = (svc.blkio_config ?? {}) as Obj;
  for (const [key, list] of [['device_read_bps', res.deviceReadBps], ['device_write_bps', res.deviceWriteBps], ['device_read_iops', res.deviceReadIops], ['device_write_iops', res.deviceWriteIops]] as const)
    if (list.length) blkio[key] = list.map((d) => ({ path: d.path, rate: d.rate }));
  if (Object.keys(blkio).length) svc.blkio_config = blkio;
  if (res.deviceRules.length) svc.device_cgroup_rules = res.deviceRules.map(deviceRuleText);
  if (spec.rlimits.length) svc.ulimits = Object.fromEntries(spec.rlimits.map((l) => [l.name, l.soft === l.hard ? l.soft : { soft: l.soft, hard: l.hard }]));
  if (spec.sysctls.length) svc.sysctls = Object.fromEntries(spec.sysctls.map((s) => [s.name, s.value]));
}

/** Security: the whole capability set (the engines' default has 3 more), no_new_privs, seccomp,
 * the read-only root. */
function serviceSecurity(spec: SandboxSpec, svc: Obj): void {
  svc.cap_drop = ['ALL'];
  if (spec.capabilities.length) svc.cap_add = spec.capabilities.map((c) => c.name);
  const sec = spec.security;
  const opt: string[] = [];
  if (sec.noNewPrivileges.value) opt.push('no-new-privileges:true');
  if (sec.seccomp.value !== 'default') opt.push(`seccomp=${sec.seccomp.value}`);
  if (opt.length) svc.security_opt = opt;
  if (spec.rootfs.readOnly.value) svc.read_only = true;
}

export function exportCompose(spec: SandboxSpec, opts: ComposeOptions, locate: Locate): Exported<Obj> {
  const r = new Report('compose', locate);
  const name = dnsLabel(spec.name.value);
  const svc: Obj = {};
  const { image, hostDirs } = imageFindings(spec, r, opts.image, opts.rootDirs);
  commonFindings(spec, r, { ulimits: true, maskedPaths: false, umask: false, timeNs: false, registries: false });
  svc.image = image ?? '';
  serviceProcess(spec, opts, svc);
  serviceNetwork(spec, r, svc);
  serviceNamespaces(spec, r, svc);
  const named = serviceVolumes(spec, r, svc, hostDirs);
  serviceLimits(spec, r, svc);
  serviceSecurity(spec, svc);
  return { doc: { name, services: { [name]: svc }, ...(Object.keys(named).length ? { volumes: named } : {}) }, findings: r.findings };
}
