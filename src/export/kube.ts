// SandboxSpec → a Kubernetes Pod (core/v1), with the fidelity report of what a Pod cannot say.
// Pure. The Pod names RuntimeClass `sandbox`, publishes the ports as hostPorts, binds volumes as
// hostPath and tmpfs as emptyDir (medium: Memory), and carries the identity, capabilities,
// no_new_privs, seccomp and read-only root in its securityContext. An egress policy becomes a
// NetworkPolicy beside it (the two in a v1 List): what one can say, the rest as findings.
import { deviceRuleText } from '../model/sections/resources';
import type { EgressRule, MountSpec, SandboxSpec } from '../model/types';
import { ALL_PORTS, cidrInside, parseCidr, portsContain, portsOverlap, REFUSED_CLASSES, targetText } from '../model/egress';
import { RESOURCE_EXPORTS } from './resources';
import { commonFindings, dnsLabel, imageFindings, LOSSY, numericIds, Report, written, writtenEnv, type Exported, type Locate } from './fidelity';

export interface KubeOptions {
  /** The image the Pod runs: needed for `rootfs: host` or a folder, and for an image a Pod cannot pull. */
  image?: string;
  /** The folders `rootfs: host` binds on this host (the probe's, `/bin->usr/bin` for a link). */
  rootDirs: readonly string[];
}

type Obj = Record<string, unknown>;

/** Bytes as a Kubernetes quantity: 256Mi, 1Gi, or the plain number. */
export function quantity(bytes: number): string {
  for (const [unit, size] of [['Gi', 2 ** 30], ['Mi', 2 ** 20], ['Ki', 2 ** 10]] as const) if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  return String(bytes);
}

const PROPAGATION: Record<string, string | undefined> = { private: undefined, rprivate: undefined, slave: 'HostToContainer', rslave: 'HostToContainer', shared: 'Bidirectional', rshared: 'Bidirectional' };

/** The command: an image keeps its own entrypoint unless the file names one; a root that is not
 * the image's (rootfs: host, a folder) runs exactly the file's words. Then its folder, environment
 * and terminal. */
function kubeContainer(spec: SandboxSpec, opts: KubeOptions, name: string, image: string | undefined): Obj {
  const p = spec.process;
  const container: Obj = { name, image: image ?? '' };
  if (spec.rootfs.type === 'image' && !opts.image) {
    if (p.entrypoint !== undefined) container.command = p.entrypoint;
    if (p.command !== undefined) container.args = p.command;
  } else if (p.args.length) container.command = p.args;
  if (written(p.cwd.src) || spec.rootfs.type !== 'image') container.workingDir = p.cwd.value;
  const env = writtenEnv(spec);
  if (env.length) container.env = env;
  if (p.tty.value) container.tty = true;
  if (p.stdin.value) container.stdin = true;
  return container;
}

/** Identity: numbers only, as a Pod's securityContext takes them (runAsUser, runAsGroup,
 * supplementalGroups); a name is a finding. Gives the ids, which the capabilities depend on. */
function podIdentity(spec: SandboxSpec, r: Report, podSec: Obj): ReturnType<typeof numericIds> {
  const p = spec.process;
  const ids = numericIds(spec);
  for (const k of ids.names) r.add(p.user.src, ['user'], 'user-name', `a Pod takes the ${k} as a number (runAsUser, runAsGroup), not a name; write the numeric id, as "65534:65534"`, true);
  // An image's own user stays the image's; a root of the host's or a folder's runs as the spec says.
  const explicit = written(p.user.src) || spec.rootfs.type !== 'image';
  if (ids.uid !== undefined && explicit) podSec.runAsUser = ids.uid;
  if (ids.gid !== undefined && explicit) podSec.runAsGroup = ids.gid;
  const groups = p.groups.filter((g) => typeof g.value === 'number').map((g) => g.value as number);
  for (const g of p.groups.filter((x) => typeof x.value !== 'number')) r.add(g.src, ['group_add'], 'group-name', `a Pod takes supplementary groups as numbers (supplementalGroups); write the gid of ${g.value}`, true);
  if (groups.length) podSec.supplementalGroups = groups;
  return ids;
}

/** Security: the capability set written out whole (drop ALL, add what sandbox keeps), so that the
 * runtime's own default set does not apply; no_new_privs and the read-only root in the container's
 * securityContext, which it gives; the seccomp profile and sysctls in the Pod's. */
function kubeSecurity(spec: SandboxSpec, r: Report, podSec: Obj, uid: number | undefined): Obj {
  const sec = spec.security;
  const containerSec: Obj = {
    allowPrivilegeEscalation: !sec.noNewPrivileges.value,
    capabilities: { drop: ['ALL'], ...(spec.capabilities.length ? { add: spec.capabilities.map((c) => c.name) } : {}) },
  };
  if (spec.rootfs.readOnly.value) containerSec.readOnlyRootFilesystem = true;
  const added = spec.capabilities.filter((c) => c.src !== 'default');
  if (added.length && uid !== undefined && uid !== 0) r.add(added[0]!.src, ['cap_add'], 'ambient-caps', `sandbox gives a non-root user the capabilities of cap_add (${added.map((c) => c.name).join(', ')}) as ambient ones, and a Pod does not: its user ${uid} would hold none; run as root inside, give the program file capabilities, or ${LOSSY}`);
  if (sec.seccomp.value === 'default') podSec.seccompProfile = { type: 'RuntimeDefault' };
  else if (sec.seccomp.value === 'unconfined') podSec.seccompProfile = { type: 'Unconfined' };
  else {
    const base = sec.seccomp.value.split('/').pop()!;
    podSec.seccompProfile = { type: 'Localhost', localhostProfile: base };
    r.add(sec.seccomp.src, ['security', 'seccomp'], 'seccomp-file', `a Pod reads a seccomp profile from each node's kubelet folder, not from this host: copy ${sec.seccomp.value} to /var/lib/kubelet/seccomp/${base} on every node, then pass --lossy`);
  }
  const sysctls = spec.sysctls.map((s) => ({ name: s.name, value: s.value }));
  if (sysctls.length) podSec.sysctls = sysctls;
  return containerSec;
}

/** Limits: what a container's resources say; the rest (IO rates, device rules, devices) only the
 * node can set, as findings. */
function kubeResources(spec: SandboxSpec, r: Report, container: Obj): void {
  const res = spec.resources;
  const limits: Obj = {}, requests: Obj = {};
  for (const row of RESOURCE_EXPORTS) {
    const v = res[row.key];
    if (!v) continue;
    const k = row.kube(v.value, quantity);
    if ('none' in k) r.none(v.src, ['resources', row.config], row.config.replace(/_/g, '-'), `\`resources.${row.config}\``, k.none);
    else (k.field === 'limits' ? limits : requests)[k.name] = k.value;
  }
  for (const [key, list] of [['device_read_bps', res.deviceReadBps], ['device_write_bps', res.deviceWriteBps], ['device_read_iops', res.deviceReadIops], ['device_write_iops', res.deviceWriteIops]] as const)
    for (const d of list) r.none(d.src, ['resources', key], 'device-limit', `\`resources.${key}\` (${d.path})`, LOSSY);
  if (Object.keys(limits).length || Object.keys(requests).length) container.resources = { ...(Object.keys(limits).length ? { limits } : {}), ...(Object.keys(requests).length ? { requests } : {}) };
  for (const d of res.deviceRules) r.none(d.src, ['resources', 'device_cgroup_rules'], 'device-rule', `the device rule \`${deviceRuleText(d)}\``, `a Pod gets devices from a device plugin; ${LOSSY}`);
  for (const d of spec.devices) r.none(d.src, ['devices'], 'device', `the device ${d.source || d.target}`, `a Pod gets devices from a device plugin; ${LOSSY}`);
}

/** Volumes: hostPath for binds, emptyDir in memory for tmpfs, a claim for a named volume; the
 * host's folders for rootfs: host. Gives the Pod's volumes; their mounts go on the container. */
function kubeVolumes(spec: SandboxSpec, r: Report, name: string, hostDirs: readonly string[], container: Obj): Obj[] {
  const volumes: Obj[] = [];
  const mounts: Obj[] = [];
  const vol = (source: Obj, mount: Obj) => {
    // Podman turns an emptyDir into a named volume of this name: scoped by the Pod's name.
    const vname = dnsLabel(`${name}-vol${volumes.length}`);
    volumes.push({ name: vname, ...source });
    mounts.push({ name: vname, ...mount });
  };
  for (const d of hostDirs) vol({ hostPath: { path: d } }, { mountPath: d, readOnly: true });
  const targets = new Set(spec.mounts.map((m) => m.target));
  if (hostDirs.length) for (const t of ['/tmp', '/run']) if (!targets.has(t)) vol({ emptyDir: { medium: 'Memory' } }, { mountPath: t });
  spec.mounts.forEach((m, i) => {
    flagFindings(m, i, r);
    if (m.kind === 'bind') {
      const prop = PROPAGATION[m.propagation ?? 'rprivate'];
      if (prop === 'Bidirectional') r.add(m.src, ['volumes', i], 'propagation', `a Pod allows shared propagation (Bidirectional) only to a privileged container, which would undo every other limit here; use rslave, or ${LOSSY}`);
      vol({ hostPath: { path: m.source } }, { mountPath: m.target, ...(m.readOnly ? { readOnly: true } : {}), ...(prop && prop !== 'Bidirectional' ? { mountPropagation: prop } : {}) });
    } else if (m.kind === 'volume') {
      // A Pod keeps data past its life only in a PersistentVolumeClaim, which it does not make nor
      // seed from the image; an anonymous volume (the image's VOLUME) lives as long as the Pod.
      if (m.anonymous) { vol({ emptyDir: {} }, { mountPath: m.target }); return; }
      r.add(m.src, ['volumes', i], 'named-volume', `the named volume ${m.name} becomes the PersistentVolumeClaim ${dnsLabel(m.name)}, which must exist in the namespace: a Pod does not make it, nor seed it from the image's files at ${m.target}; create the claim first, or ${LOSSY}`);
      vol({ persistentVolumeClaim: { claimName: dnsLabel(m.name), ...(m.readOnly ? { readOnly: true } : {}) } }, { mountPath: m.target, ...(m.readOnly ? { readOnly: true } : {}) });
    } else {
      if (m.mode !== 0o1777) r.none(m.src, ['volumes', i], 'tmpfs-mode', `a tmpfs mode (${m.mode.toString(8)})`, `an emptyDir is always 0777; ${LOSSY}`);
      vol({ emptyDir: { medium: 'Memory', ...(m.sizeBytes ? { sizeLimit: quantity(m.sizeBytes) } : {}) } }, { mountPath: m.target, ...(m.readOnly ? { readOnly: true } : {}) });
    }
  });
  // A /dev/shm of another size than the runtimes' 64 MiB: the usual emptyDir in memory over it.
  if (written(spec.shmSize.src) && !targets.has('/dev/shm')) vol({ emptyDir: { medium: 'Memory', sizeLimit: quantity(spec.shmSize.value) } }, { mountPath: '/dev/shm' });
  if (mounts.length) container.volumeMounts = mounts;
  return volumes;
}

/** Network and ports: the host's network by flag, published ports as hostPorts, name servers and
 * extra hosts as the Pod's DNS config and host aliases; what the cluster decides, as findings. */
function kubeNetwork(spec: SandboxSpec, r: Report, pod: Obj, container: Obj): void {
  const net = spec.network;
  if (net.mode.value === 'host') pod.hostNetwork = true;
  if (net.mode.value === 'none') r.none(net.mode.src, ['network'], 'network-none', '`network: none`', `a Pod always has a network interface: a NetworkPolicy that denies all ingress and egress comes closest; ${LOSSY}`);
  if (written(net.subnet.src)) r.none(net.subnet.src, ['network', 'subnet'], 'subnet', '`network.subnet`', `the cluster's network plugin assigns Pod addresses; ${LOSSY}`);
  if (written(net.proxy.src) && net.proxy.value !== 'auto') r.none(net.proxy.src, ['network', 'proxy'], 'proxy', '`network.proxy`', LOSSY);
  if (written(net.cmd.src) && net.cmd.value !== 'auto') r.none(net.cmd.src, ['network', 'rootless_cmd'], 'rootless-cmd', '`network.rootless_cmd`', LOSSY);
  if (net.ports.length) container.ports = net.ports.map((pt, i) => {
    if (!pt.hostPort) r.add(pt.src, ['ports', i], 'free-port', `a port published on a free host port has no equivalent in a Pod (a hostPort is a fixed number; without one the port is not published on the node); write HOST:CONTAINER, or ${LOSSY}`);
    return { containerPort: pt.containerPort, protocol: pt.protocol.toUpperCase(), ...(pt.hostPort ? { hostPort: pt.hostPort } : {}), ...(pt.hostPort && pt.hostIp ? { hostIP: pt.hostIp } : {}) };
  });
  if (net.dns.length) { pod.dnsPolicy = 'None'; pod.dnsConfig = { nameservers: net.dns.map((d) => d.value) }; }
  const aliases = new Map<string, string[]>();
  for (const h of net.extraHosts) {
    if (h.ip === 'host-gateway') { r.none(h.src, ['extra_hosts'], 'host-gateway', '`host-gateway` (in extra_hosts)', `write the node's address; ${LOSSY}`); continue; }
    aliases.set(h.ip, [...(aliases.get(h.ip) ?? []), h.host]);
  }
  if (aliases.size) pod.hostAliases = [...aliases].map(([ip, hostnames]) => ({ ip, hostnames }));
}

/** Namespaces: a Pod shares the host's pid, ipc and network ones by flag; the rest are always its
 * own. Its hostname is set in its own uts namespace, when it is a DNS label. */
function kubeNamespaces(spec: SandboxSpec, r: Report, pod: Obj): void {
  const net = spec.network;
  for (const n of spec.namespaces) {
    const key = ['namespaces', n.type];
    if (n.mode === 'join') { r.none(n.src, key, 'namespace-join', `joining the ${n.type} namespace at ${n.path}`, LOSSY); continue; }
    if (n.type === 'pid' && n.mode === 'host') pod.hostPID = true;
    else if (n.type === 'ipc' && n.mode === 'host') pod.hostIPC = true;
    else if (n.type === 'user' && n.mode === 'private' && written(n.src)) pod.hostUsers = false;
    else if (n.type === 'uts' && n.mode === 'host' && net.mode.value !== 'host') r.none(n.src, key, 'namespace-host', 'the host\'s uts namespace without its network (`namespaces.uts: host`)', `hostNetwork shares both; ${LOSSY}`);
    else if ((n.type === 'mount' || n.type === 'cgroup') && n.mode === 'host') r.none(n.src, key, 'namespace-host', `the host's ${n.type} namespace (\`namespaces.${n.type}: host\`)`, `a container always has its own; ${LOSSY}`);
  }
  if (spec.userns && written(spec.userns.src)) r.none(spec.userns.src, ['namespaces', 'user'], 'id-maps', 'the uid and gid maps of `namespaces.user`', `with hostUsers: false the kubelet picks the range; ${LOSSY}`);
  if (spec.namespaces.find((n) => n.type === 'uts')!.mode === 'private' && net.mode.value !== 'host') {
    const h = spec.hostname.value;
    if (dnsLabel(h) === h) pod.hostname = h;
    else r.none(spec.hostname.src, ['hostname'], 'hostname', `the hostname \`${h}\`, which is not a DNS label`, 'write lower-case letters, digits and -');
  }
}

/** The process's life: init as the Pod's pause process, restarts by the kubelet. */
function kubeLife(spec: SandboxSpec, r: Report, pod: Obj): void {
  const p = spec.process;
  if (p.init.value) pod.shareProcessNamespace = true; // the infra (pause) container is PID 1 and reaps, as init: true
  const rs = p.restart.value;
  pod.restartPolicy = rs.policy === 'always' ? 'Always' : rs.policy === 'on-failure' ? 'OnFailure' : 'Never';
  if (rs.max) r.none(p.restart.src, ['restart'], 'restart-max', `a maximum of restarts (on-failure:${rs.max})`, `the kubelet restarts with a back-off, without a maximum; write on-failure, or ${LOSSY}`);
  if (p.stopSignal.value !== 15) r.none(p.stopSignal.src, ['stop_signal'], 'stop-signal', '`stop_signal`', `the kubelet sends SIGTERM; ${LOSSY}`);
  if (written(p.stopGraceMs.src)) pod.terminationGracePeriodSeconds = Math.ceil(p.stopGraceMs.value / 1000);
}

export function exportKube(spec: SandboxSpec, opts: KubeOptions, locate: Locate): Exported<Obj> {
  const r = new Report('kube', locate);
  const name = dnsLabel(spec.name.value);
  const { image, hostDirs } = imageFindings(spec, r, opts.image, opts.rootDirs);
  commonFindings(spec, r, { ulimits: false, maskedPaths: false, umask: false, timeNs: false, registries: false });

  const container = kubeContainer(spec, opts, name, image);
  const podSec: Obj = {};
  const ids = podIdentity(spec, r, podSec);
  const containerSec = kubeSecurity(spec, r, podSec, ids.uid);
  kubeResources(spec, r, container);
  const volumes = kubeVolumes(spec, r, name, hostDirs, container);
  const pod: Obj = { runtimeClassName: 'sandbox' };
  kubeNetwork(spec, r, pod, container);
  kubeNamespaces(spec, r, pod);
  kubeLife(spec, r, pod);

  if (Object.keys(podSec).length) pod.securityContext = podSec;
  container.securityContext = containerSec;
  pod.containers = [container];
  if (volumes.length) pod.volumes = volumes;
  const doc = { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: name } }, spec: pod };
  const policy = egressPolicy(spec, name, r);
  return { doc: policy ? { apiVersion: 'v1', kind: 'List', items: [doc, policy] } : doc, findings: r.findings };
}

type Cidr = Extract<EgressRule['target'], { type: 'cidr' }>;
const blockOf = (t: Cidr) => `${t.network}/${t.prefix}`;

/**
 * `network.egress` as a NetworkPolicy that selects the Pod: one egress entry per IPv4 allow rule,
 * with its ports. A NetworkPolicy allows only, without order: a deny earlier than an allow is said
 * as an `except` of the allow's range when it refuses all the allow carries there; the refused
 * classes (metadata, loopback, …) as `except` too, unless the rule lies inside one. Names (host
 * rules) and a deny it cannot say are findings. IPv6 rules, which never match in the sandbox, are
 * left out, as the sandbox refuses IPv6.
 */
function egressPolicy(spec: SandboxSpec, name: string, r: Report): Obj | undefined {
  const eg = spec.network.egress;
  if (!eg) return undefined;
  const classes = REFUSED_CLASSES.map((c) => parseCidr(c, () => 'default', () => undefined)!);
  const egress: Obj[] = [];
  eg.rules.forEach((rule, n) => {
    const t = rule.target;
    const key = ['network', 'egress', rule.index - 1];
    if (t.type === 'host') {
      r.add(rule.src, key, 'egress-host', rule.action === 'allow'
        ? `a NetworkPolicy names no hosts, so the Pod would not reach ${targetText(t)} (\`${rule.text}\`); allow its addresses with a cidr rule, or ${LOSSY}`
        : `a NetworkPolicy cannot refuse a name (\`${rule.text}\`): the Pod would reach what the cidr rules allow, whatever its name; ${LOSSY}`);
      return;
    }
    if (t.family !== 4 || rule.action === 'deny') return;
    const except: string[] = [];
    for (const d of eg.rules.slice(0, n)) {
      const dt = d.target;
      if (d.action !== 'deny' || dt.type !== 'cidr' || dt.family !== 4 || !(cidrInside(t, dt) || cidrInside(dt, t)) || !portsOverlap(d.ports, rule.ports) || !d.protocols.some((p) => rule.protocols.includes(p))) continue;
      const whole = portsContain(d.ports, rule.ports) && rule.protocols.every((p) => d.protocols.includes(p));
      if (whole && cidrInside(dt, t)) return; // the deny refuses all of it: nothing to allow
      if (whole && dt.prefix > t.prefix) { except.push(blockOf(dt)); continue; }
      r.add(rule.src, key, 'egress-order', `a NetworkPolicy has no deny and no order, so \`${d.text}\` (line ${typeof d.src === 'object' ? d.src.line : '?'}), which refuses part of what \`${rule.text}\` allows, cannot be said: the Pod would reach it; ${LOSSY}`);
    }
    for (const c of classes) if (cidrInside(t, c) && c.prefix > t.prefix) except.push(blockOf(c));
    egress.push({ to: [{ ipBlock: { cidr: blockOf(t), ...(except.length ? { except } : {}) } }], ...portsOf(rule) });
  });
  return {
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: dnsLabel(`${name}-egress`) },
    spec: { podSelector: { matchLabels: { app: name } }, policyTypes: ['Egress'], egress },
  };
}

/** A rule's ports as a NetworkPolicy's (TCP and UDP; none at all carries ICMP too, as the rule does). */
function portsOf(rule: EgressRule): Obj {
  const all = portsContain(rule.ports, ALL_PORTS);
  if (all && rule.protocols.includes('icmp')) return {};
  const protos = rule.protocols.filter((p) => p !== 'icmp').map((p) => p.toUpperCase());
  return { ports: protos.flatMap((protocol) => (all ? [{ protocol }] : rule.ports.map((p) => ({ protocol, port: p.from, ...(p.to > p.from ? { endPort: p.to } : {}) })))) };
}

/** Mount options a volumeMount (or a Compose volume) cannot carry. */
export function flagFindings(m: MountSpec, i: number, r: Report): void {
  // normalize adds nosuid and nodev to every tmpfs: the engines do the same.
  const flags = m.kind === 'tmpfs' ? m.flags.filter((f) => f !== 'nosuid' && f !== 'nodev') : m.flags;
  if (flags.length) r.none(m.src, ['volumes', i], 'mount-option', `the mount option${flags.length > 1 ? 's' : ''} ${flags.join(', ')} on ${m.target}`, LOSSY);
}
