// Cross-field rules over a SandboxSpec: things no single key can be wrong about. Pure; the
// facts about the host that warnings need (CPU count) are parameters.
import { isAbsolute, posix } from 'node:path';
import type { EgressRule, NsName, SandboxSpec, Source } from './types';
import { HOST_ROOT_DIRS, namespacedSysctl } from './tables';
import { cidrContains, nameAllowed, publicSuffixKind, shadowed } from './egress';

export interface RuleFinding { src: Source; code: string; message: string; severity: 'error' | 'warning' }
export interface RuleContext {
  hostCpus: number;
  /** Top-level keys rejected by the schema were left out; rules about absent keys would be guesses. */
  partial?: boolean;
}

/** Where the rules of each part of the spec say what they find, in order. */
interface Say {
  error(src: Source, code: string, message: string): void;
  warn(src: Source, code: string, message: string): void;
}

/** A place as a message names it. */
const line = (s: Source) => (typeof s === 'object' ? `line ${s.line}` : s === 'cli' ? 'the command line' : 'the default');
const nsOf = (spec: SandboxSpec, t: NsName) => spec.namespaces.find((n) => n.type === t)!;

export function checkRules(spec: SandboxSpec, ctx: RuleContext): RuleFinding[] {
  const out: RuleFinding[] = [];
  const say: Say = {
    error: (src, code, message) => { out.push({ src, code, message, severity: 'error' }); },
    warn: (src, code, message) => { out.push({ src, code, message, severity: 'warning' }); },
  };
  if (spec.process.args.length === 0 && spec.rootfs.type !== 'image' && !ctx.partial) {
    say.error(spec.process.argsSrc, 'no-command', 'nothing to run: add `command:` (for example `command: [/bin/sh]`), or use an `image` that has one');
  }
  checkPorts(spec, say);
  checkNetwork(spec, say);
  checkEgress(spec, say);
  checkMounts(spec, say);
  if (!spec.process.cwd.value.startsWith('/')) say.error(spec.process.cwd.src, 'relative-workdir', '`workdir` must be an absolute path');
  checkDevices(spec, say);
  checkResources(spec, ctx, say);
  checkUserns(spec, say);
  checkNamespaces(spec, say);
  checkKernel(spec, say);
  if (spec.process.detach.value && spec.process.tty.value && spec.process.stdin.value) say.warn(spec.process.detach.src, 'detach-interactive', 'a detached sandbox has no terminal to read from; `stdin_open` and `tty` are kept for `sandbox exec`');
  return out;
}

/** Ports: only from a private network, each host port once, each free-port mapping once. */
function checkPorts(spec: SandboxSpec, say: Say): void {
  const mode = spec.network.mode.value;
  const ports = spec.network.ports;
  if (ports.length && mode !== 'private') {
    say.error(ports[0]!.src, 'ports-need-private-network', `ports are published only from a private network, and \`network\` is ${mode} (${line(spec.network.mode.src)}); set \`network: private\` or remove \`ports\``);
  }
  const taken = new Map<string, Source>();
  for (const p of ports) {
    if (p.hostPort === 0) continue;
    for (const [key, src] of taken) {
      const [ip, port, proto] = key.split('|');
      if (Number(port) === p.hostPort && proto === p.protocol && (ip === '' || p.hostIp === '' || ip === p.hostIp)) {
        say.error(p.src, 'port-conflict', `host port ${p.hostPort}/${p.protocol} is already published on ${line(src)}; pick another host port`);
        break;
      }
    }
    taken.set(`${p.hostIp}|${p.hostPort}|${p.protocol}`, p.src);
  }
  // A port with no host port (a free one is picked) can still be published twice: the same mapping.
  const anyPort = new Map<string, Source>();
  const reported = new Set<Source>();
  for (const p of ports) {
    if (p.hostPort !== 0) continue;
    const key = `${p.hostIp}|${p.containerPort}|${p.protocol}`;
    const first = anyPort.get(key);
    if (!first) { anyPort.set(key, p.src); continue; }
    if (!reported.has(p.src)) say.error(p.src, 'port-conflict', `container port ${p.containerPort}/${p.protocol} is already published${p.hostIp ? ` on ${p.hostIp}` : ''} on ${line(first)}; remove one of them`);
    reported.add(p.src);
  }
  const allIfaces = ports.find((p) => p.hostIp === '' && mode === 'private');
  if (allIfaces) say.warn(allIfaces.src, 'port-on-all-interfaces', `port ${allIfaces.hostPort || '(any)'} is published on every address of the host; write 127.0.0.1:${allIfaces.hostPort || ''}:${allIfaces.containerPort} to keep it on this machine`);
}

/** `network` against `namespaces.net`, dns without a private network, the subnet. */
function checkNetwork(spec: SandboxSpec, say: Say): void {
  const mode = spec.network.mode.value;
  const net = nsOf(spec, 'net');
  if (mode === 'host' && net.mode !== 'host') say.error(net.src, 'network-conflict', '`network: host` shares the host\'s network namespace, but `namespaces.net` asks for another one; keep one of them');
  if (mode !== 'host' && net.mode === 'host' && net.src !== 'default') say.error(net.src, 'network-conflict', `\`namespaces.net\` is host, but \`network\` is ${mode}; write \`network: host\` instead`);
  if (mode !== 'private' && spec.network.dns.length) say.warn(spec.network.dns[0]!.src, 'dns-unused', `\`dns\` is only written for a private network, and \`network\` is ${mode}`);
  const [, prefix] = spec.network.subnet.value.split('/');
  if (Number(prefix) > 30 || spec.network.subnet.value.split('/')[0]!.split('.').some((o) => Number(o) > 255)) {
    say.error(spec.network.subnet.src, 'invalid-subnet', `\`${spec.network.subnet.value}\` is not a usable IPv4 subnet; use one such as 10.88.0.0/24 (prefix /30 or shorter)`);
  }
}

/** Egress: only over the sandbox's own private network, kept IPv4-only; warnings for rules that
 * never match, wildcards over a private-section public suffix, hosts entries no rule allows. */
function checkEgress(spec: SandboxSpec, say: Say): void {
  const eg = spec.network.egress;
  if (!eg) return;
  const mode = spec.network.mode;
  const net = nsOf(spec, 'net');
  if (mode.value !== 'private') say.error(eg.src, 'egress-needs-private-network', `egress filters the sandbox's own private network, and \`network\` is ${mode.value} (${line(mode.src)}); set \`mode: private\` or remove \`egress\``);
  else if (net.mode === 'join') say.error(eg.src, 'egress-needs-private-network', `egress filters the sandbox's own private network, and \`namespaces.net\` joins the one at ${net.path} (${line(net.src)}), whose way out sandbox does not hold; remove one of them`);
  for (const s of spec.sysctls) {
    if (/^net\.ipv6\.conf\.[^.]+\.disable_ipv6$/.test(s.name) && s.value.trim() === '0') say.error(s.src, 'egress-ipv6-sysctl', `egress keeps the sandbox IPv4-only (IPv6 is refused at the wall), and \`${s.name}=0\` turns IPv6 on; remove it`);
  }
  const quoted = (r: EgressRule) => `rule ${r.index} "${r.text}"`;
  for (const r of eg.rules) {
    const t = r.target;
    if (t.type === 'cidr' && t.family === 6) say.warn(r.src, 'egress-ipv6-rule', `${quoted(r)} can never match: the sandbox's network is IPv4 only; IPv6 is refused`);
    if (t.type === 'host' && t.wildcard && publicSuffixKind(t.name) === 'private') say.warn(r.src, 'egress-wildcard-private-suffix', `\`*.${t.name}\` covers every site on ${t.name}, whose owners are unrelated; name the sites`);
  }
  for (const { rule, by } of shadowed(eg.rules)) {
    const names = by.length === 1 ? `rule ${by[0]!.index} "${by[0]!.text}" (${line(by[0]!.src)})` : `rules ${by.map((b) => `${b.index} (${line(b.src)})`).join(', ')}`;
    if (by.every((b) => b.action === rule.action)) say.warn(rule.src, 'egress-rule-shadowed', `${quoted(rule)} has no effect: ${names} already ${rule.action === 'allow' ? 'allow' : 'refuse'}${by.length === 1 ? 's' : ''} every connection it would`);
    else say.warn(rule.src, 'egress-rule-shadowed', `${quoted(rule)} can never match: ${names} match${by.length === 1 ? 'es' : ''} every connection it would; move it above rule ${by[0]!.index} to make an exception`);
  }
  for (const h of spec.network.extraHosts) {
    const byAddress = eg.rules.some((r) => r.action === 'allow' && r.target.type === 'cidr' && cidrContains(r.target, h.ip));
    if (!byAddress && !nameAllowed(eg.rules, h.host)) say.warn(h.src, 'egress-extra-host-refused', `${h.host} resolves through /etc/hosts, but no egress rule allows connections to it`);
  }
}

/** Mount targets: absolute, not over what sandbox mounts itself, each once. */
function checkMounts(spec: SandboxSpec, say: Say): void {
  const privateNet = spec.network.mode.value === 'private' && nsOf(spec, 'net').mode === 'private';
  const targets = new Map<string, Source>();
  for (const m of spec.mounts) {
    if (!isAbsolute(m.target)) { say.error(m.src, 'relative-target', `mount target \`${m.target}\` is relative; targets are paths inside the sandbox, such as /${m.target.replace(/^\.?\/*/, '')}`); continue; }
    const t = posix.normalize(m.target).replace(/(.)\/$/, '$1');
    if (t === '/') { say.error(m.src, 'root-target', 'a volume cannot be mounted on /; use `rootfs` to choose the root filesystem'); continue; }
    if (t === '/proc' || t.startsWith('/proc/') || t === '/dev' || t === '/sys') say.error(m.src, 'reserved-target', `mounting over ${t} would hide the sandbox's own ${t.split('/')[1]}; pick another target`);
    else if (t === '/dev/pts' || t === '/sys/fs/cgroup') say.error(m.src, 'reserved-target', `mounting over ${t} would hide the sandbox's own ${t === '/dev/pts' ? 'terminals (devpts)' : 'cgroup'}; pick another target`);
    else if ((t === '/etc/hosts' || t === '/etc/resolv.conf') && privateNet) say.error(m.src, 'reserved-target', `${t} is written by sandbox for its private network; set ${t === '/etc/hosts' ? '`extra_hosts`' : '`dns`'} instead of mounting over it`);
    else if (spec.rootfs.type === 'host' && HOST_ROOT_DIRS.includes(t)) say.error(m.src, 'reserved-target', `\`rootfs: host\` binds the host's ${t} there read-only; mount the volume below it (such as ${t}/data), or use a \`dir\` rootfs or an image`);
    const first = targets.get(t);
    if (first) say.error(m.src, 'duplicate-target', `two volumes are mounted on ${t}; the first is on ${line(first)}`);
    else targets.set(t, m.src);
  }
}

/** Devices: one per target. */
function checkDevices(spec: SandboxSpec, say: Say): void {
  const devTargets = new Map<string, Source>();
  for (const d of spec.devices) {
    const first = devTargets.get(d.target);
    if (first) say.error(d.src, 'duplicate-device', `two devices are given as ${d.target}; the first is on ${line(first)}`);
    else devTargets.set(d.target, d.src);
  }
}

/** Limits against each other and against the host's CPUs. */
function checkResources(spec: SandboxSpec, ctx: RuleContext, say: Say): void {
  const r = spec.resources;
  for (const [key, list] of [['device_read_bps', r.deviceReadBps], ['device_write_bps', r.deviceWriteBps], ['device_read_iops', r.deviceReadIops], ['device_write_iops', r.deviceWriteIops]] as const) {
    const seen = new Map<string, Source>();
    for (const l of list) {
      const first = seen.get(l.path);
      if (first) say.error(l.src, 'duplicate-device-limit', `\`${key}\` limits ${l.path} twice; the first is on ${line(first)} (keep one)`);
      else seen.set(l.path, l.src);
    }
  }
  if (r.memorySwap && r.memory && r.memorySwap.value !== -1 && r.memorySwap.value < r.memory.value) {
    say.error(r.memorySwap.src, 'swap-below-memory', `\`memory_swap\` (${r.memorySwap.value} bytes) is memory plus swap, so it cannot be below \`memory\` (${r.memory.value} bytes); set it to at least the memory limit, or -1`);
  }
  if (r.memorySwap && !r.memory) say.error(r.memorySwap.src, 'swap-without-memory', '`memory_swap` needs `memory` to be set too');
  if (r.memoryReservation && r.memory && r.memoryReservation.value > r.memory.value) say.error(r.memoryReservation.src, 'reservation-above-memory', '`memory_reservation` is above `memory`; the soft limit must be lower than the hard one');
  if (r.memory && r.memory.value < 6 * 1024 * 1024) say.error(r.memory.src, 'memory-too-low', `\`memory\` of ${r.memory.value} bytes is below Docker's minimum of 6m; a sandboxed process cannot start in less`);
  if (r.cpuMillis && r.cpuMillis.value > ctx.hostCpus * 1000) say.warn(r.cpuMillis.src, 'cpus-above-host', `\`cpus\` is ${r.cpuMillis.value / 1000}, and this host has ${ctx.hostCpus}; the limit will never bite`);
  if (r.cpuset) {
    const max = Math.max(...r.cpuset.value.split(/[,-]/).map(Number));
    if (max >= ctx.hostCpus) say.warn(r.cpuset.src, 'cpuset-above-host', `\`cpuset\` names CPU ${max}, and this host has CPUs 0-${ctx.hostCpus - 1}`);
  }
}

/** Why an id is not mapped when the CLI runs without root and /etc/subuid or /etc/subgid gives its
 * caller no range (a one-id map of the caller alone), and how to get one; undefined otherwise. */
function oneIdHint(userns: NonNullable<SandboxSpec['userns']>, maps: { size: number }[]): string | undefined {
  if (!userns.rootless || maps.reduce((n, m) => n + m.size, 0) !== 1) return undefined;
  return '; without root only your own id is mapped, as /etc/subuid and /etc/subgid give you no range: `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $USER` gives you one (any free range of 65536), or run as uid 0, which is you';
}

/** User namespace maps: the user and groups mapped, ranges apart, at most the kernel's 340. */
function checkUserns(spec: SandboxSpec, say: Say): void {
  const userns = spec.userns;
  if (!userns) return;
  const inMap = (id: number, maps: { container: number; size: number }[]) => maps.some((m) => id >= m.container && id < m.container + m.size);
  const u = spec.process.user;
  const ranges = (maps: { container: number; size: number }[]) => maps.map((m) => `${m.container}-${m.container + m.size - 1}`).join(', ');
  const how = (kind: 'uid' | 'gid', maps: { size: number }[]) => oneIdHint(userns, maps) ?? `; map it or run as a mapped ${kind}`;
  if (typeof u.user === 'number' && !inMap(u.user, userns.uidMap)) say.error(u.src, 'uid-not-mapped', `uid ${u.user} is outside the user namespace's uid_map (${ranges(userns.uidMap)})${how('uid', userns.uidMap)}`);
  if (typeof u.group === 'number' && !inMap(u.group, userns.gidMap)) say.error(u.src, 'gid-not-mapped', `gid ${u.group} is outside the user namespace's gid_map (${ranges(userns.gidMap)})${how('gid', userns.gidMap)}`);
  for (const g of spec.process.groups) if (typeof g.value === 'number' && !inMap(g.value, userns.gidMap)) say.error(g.src, 'gid-not-mapped', `group ${g.value} is outside the user namespace's gid_map (${ranges(userns.gidMap)})${oneIdHint(userns, userns.gidMap) ?? ''}`);
  for (const [which, maps] of [['uid_map', userns.uidMap], ['gid_map', userns.gidMap]] as const) {
    const sorted = [...maps].sort((a, b) => a.container - b.container);
    for (let i = 1; i < sorted.length; i++) if (sorted[i]!.container < sorted[i - 1]!.container + sorted[i - 1]!.size) say.error(userns.src, 'overlapping-map', `two ranges of \`${which}\` overlap inside the namespace (${ranges(sorted.slice(i - 1, i + 1))})`);
    if (maps.length > 340) say.error(userns.src, 'too-many-ranges', `\`${which}\` has ${maps.length} ranges; the kernel takes at most 340`);
  }
}

/** What needs a namespace other than the host's (private, or joined by path): the mount one
 * always, uts for a hostname; and pid for init. */
function checkNamespaces(spec: SandboxSpec, say: Say): void {
  const ns = (t: NsName) => nsOf(spec, t);
  if (ns('mount').mode === 'host') say.error(ns('mount').src, 'mount-namespace-required', 'the mount namespace must be the sandbox\'s own (or one joined by path): the root filesystem, /proc and the volumes are set up inside it');
  if (spec.hostname.src !== 'default' && ns('uts').mode === 'host') say.error(spec.hostname.src, 'hostname-needs-uts', '`hostname` needs a uts namespace other than the host\'s; remove `namespaces.uts` or the hostname');
  if (ns('pid').mode === 'host' && spec.process.init.value) say.warn(spec.process.init.src, 'init-without-pid-namespace', '`init` is useful only as PID 1 of a private pid namespace');
}

/** Sysctls only of a namespace the sandbox does not share with the host; ulimits soft ≤ hard. */
function checkKernel(spec: SandboxSpec, say: Say): void {
  for (const s of spec.sysctls) {
    const kind = namespacedSysctl(s.name);
    if (!kind) { say.error(s.src, 'sysctl-not-namespaced', `\`${s.name}\` is not a namespaced sysctl, so setting it would change the whole host; allowed: net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*`); continue; }
    if (nsOf(spec, kind).mode === 'host') say.error(s.src, 'sysctl-host-namespace', `\`${s.name}\` belongs to the ${kind} namespace, which is shared with the host here; setting it would change the host`);
  }
  for (const l of spec.rlimits) {
    if (l.hard !== -1 && (l.soft === -1 || l.soft > l.hard)) say.error(l.src, 'ulimit-soft-above-hard', `the soft limit of \`${l.name}\` (${l.soft === -1 ? 'unlimited' : l.soft}) is above its hard limit (${l.hard}); write SOFT:HARD with SOFT ≤ HARD`);
  }
}
