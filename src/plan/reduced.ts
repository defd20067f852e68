// Reduced mode (issue 25, part 4): a caller that is not root and cannot make a user namespace
// (Ubuntu's AppArmor restriction, user.max_user_namespaces = 0, a container without the right)
// still gets a sandbox, made of what needs no namespace: Landlock for the paths (and, ABI 4 and
// later, TCP ports; ABI 6 and later, signals and abstract sockets), seccomp, no_new_privs and
// rlimits, and the cgroup where one is delegated. Never silently: `enforcementTable` says for each
// line of the file whether it is enforced, weaker (how) or refused; a refused line stops `up`
// unless --allow-weaker (a blocking one, such as an image root, stops it always). Pure, as compile.
import type { MountSpec, SandboxSpec, Source } from '../model/types';
import type { Compilation, HostProblem } from './sections/context';
import { stateStep } from './sections/root';
import { cgroupAttachStep, cgroupSteps } from './sections/resources';
import { securitySteps } from './sections/security';
import { processSteps } from './sections/process';
import { egressConnectPorts, reducedLandlockRules } from './sections/landlock';
import type { EnforcementRow, HostFeatures, Step } from './types';

/** The code of the problem a refused line raises: `up` stops on it unless --allow-weaker. */
export const REFUSED_IN_REDUCED = 'refused-in-reduced-mode';

/** The steps of a reduced plan: the state folder, the cgroup (where delegated), then in the child
 * the umask and the security stage (rlimits, no_new_privs, Landlock, seccomp) and exec. No
 * namespace, id map, network, mount or identity step: there is none of them to make. */
export function compileReduced(ctx: Compilation): EnforcementRow[] {
  const { spec, add, problems } = ctx;
  stateStep(ctx);
  if (spec.rootfs.type === 'host') add('rootfs', 'rootfs', 'rootfs.host', 'use the host\'s own root, as it is (reduced mode: no mount namespace); Landlock keeps it read-only', spec.rootfs.src, { dirs: ctx.host.rootDirs });
  // The limits' own problems (no delegated cgroup) become refused lines of the table.
  const limits: HostProblem[] = [];
  cgroupSteps({ ...ctx, problems: limits });
  cgroupAttachStep(ctx);
  add('identity', 'umask', 'umask', `set the umask to ${spec.process.umask.value.toString(8).padStart(4, '0')}`, spec.process.umask.src, { umask: spec.process.umask.value });
  securitySteps(ctx);
  processSteps(ctx);
  const table = enforcementTable(spec, ctx.host, ctx.steps, limits);
  for (const r of table) {
    if (r.status !== 'refused') continue;
    problems.push({ src: r.src, code: r.blocking ? 'cannot-run-in-reduced-mode' : REFUSED_IN_REDUCED, atRun: true,
      message: `${r.key} cannot be held without user namespaces (reduced mode): ${r.how}${r.blocking ? '' : '; `--allow-weaker` runs without it'}` });
  }
  return table;
}

type Rows = EnforcementRow[];
const written = (src: Source) => typeof src === 'object' || src === 'cli';

/** Each line of the file as the reduced mode holds it, in the file's order (defaults last). */
export function enforcementTable(spec: SandboxSpec, host: HostFeatures, steps: readonly Step[], limits: readonly HostProblem[] = []): EnforcementRow[] {
  const rows: Rows = [];
  const ll = host.landlock ?? 0;
  rootAndNamespaceRows(spec, ll, rows);
  pathRows(spec, steps, ll, rows);
  for (const m of spec.mounts) rows.push(mountRow(m));
  networkRows(spec, ll, rows);
  identityRows(spec, host, rows);
  securityRows(spec, rows);
  for (const p of limits) rows.push({ key: 'resources', src: p.src, status: 'refused', how: p.message });
  for (const s of steps) if (s.kind === 'cgroup.set') rows.push({ key: `resources (${s.args.file})`, src: s.source, status: 'enforced', how: 'in your delegated cgroup' });
  const order = (s: Source) => (typeof s === 'object' ? s.line * 1000 + s.col : 1e12);
  return rows.sort((a, b) => order(a.src) - order(b.src));
}

function rootAndNamespaceRows(spec: SandboxSpec, ll: number, rows: Rows): void {
  const rf = spec.rootfs;
  if (rf.type === 'host' && !ll) rows.push({ key: 'rootfs: host', src: rf.src, status: 'refused', how: 'this kernel has no Landlock: the command could write wherever you may' });
  else if (rf.type === 'host') rows.push({ key: 'rootfs: host', src: rf.src, status: 'weaker', how: 'the host\'s whole root is visible (read-only by Landlock), not only its system folders; /tmp is the host\'s, read-only' });
  else rows.push({ key: `rootfs: ${rf.type}`, src: rf.src, status: 'refused', blocking: true, how: 'another root needs a mount namespace (or chroot, which needs a privilege); use `rootfs: host`' });
  const priv = spec.namespaces.filter((n) => n.mode !== 'host');
  // The network namespace is the `network` line's (networkRows).
  for (const n of priv.filter((x) => written(x.src) && x.type !== 'net')) rows.push({ key: `namespaces.${n.type}`, src: n.src, status: 'refused', how: `no ${n.type} namespace can be made or joined` });
  for (const n of spec.namespaces.filter((x) => x.mode === 'host' && written(x.src))) rows.push({ key: `namespaces.${n.type}: host`, src: n.src, status: 'enforced', how: 'the host\'s, as written' });
  const dflt = priv.filter((x) => !written(x.src)).map((n) => n.type);
  if (dflt.length) rows.push({ key: `namespaces (${dflt.join(' ')})`, src: 'default', status: 'weaker', how: 'none: the command sees the host\'s processes, hostname, IPC and mounts; Landlock (ABI 6) keeps its signals and abstract sockets to itself' });
}

function pathRows(spec: SandboxSpec, steps: readonly Step[], ll: number, rows: Rows): void {
  const step = steps.find((s) => s.kind === 'landlock');
  const rw = step?.kind === 'landlock' ? step.args.rules.filter((r) => r.access === 'rw' && r.path !== '/dev' && r.path !== '/proc').map((r) => r.path) : [];
  const under = (p: string) => rw.find((d) => p === d || p.startsWith(d + '/'));
  const noLl = 'this kernel has no Landlock';
  for (const r of spec.paths.rules) {
    const key = `paths.${r.access} ${r.pattern}`;
    if (r.origin !== 'rule') continue;
    if (!ll) rows.push({ key, src: r.src, status: 'refused', how: noLl });
    else if (r.at !== r.path) rows.push({ key, src: r.src, status: 'refused', how: `showing ${r.path} at ${r.at} needs a mount` });
    else if (r.access === 'deny') rows.push({ key, src: r.src, status: 'refused', how: 'Landlock only allows: it cannot hide a path inside a folder the command may read' });
    else if (r.access === 'read_write') rows.push({ key, src: r.src, status: 'enforced', how: 'writable by Landlock' });
    else if (under(r.path) && under(r.path) !== r.path) rows.push({ key, src: r.src, status: 'refused', how: `inside the writable ${under(r.path)}: a Landlock rule gives its rights to everything beneath it` });
    else rows.push({ key, src: r.src, status: 'enforced', how: 'read-only by Landlock' });
  }
  // The host's whole root shows here, the caller's home too, even where the mounts would show
  // only the system folders: its credentials are readable, whether or not the file shows the home.
  if (spec.rootfs.type === 'host') rows.push({ key: 'credentials hidden by default (~/.ssh, ~/.aws, …)', src: 'default', status: 'weaker', how: 'readable, with the rest of your home: without a mount nothing can be hidden (name them in paths.deny to stop instead)' });
  const prot = spec.paths.rules.filter((r) => r.origin === 'protect').map((r) => r.at);
  if (prot.length) rows.push({ key: `start-up files kept read-only (${prot.length})`, src: 'default', status: 'weaker', how: `writable, inside a writable folder (${prot.slice(0, 3).join(' ')}${prot.length > 3 ? ' …' : ''})` });
}

function mountRow(m: MountSpec): EnforcementRow {
  const key = `volumes: ${m.kind === 'bind' ? `${m.source}:${m.target}` : m.kind === 'volume' ? `${m.name}:${m.target}` : `tmpfs ${m.target}`}`;
  if (m.kind === 'bind' && m.source === m.target) return { key, src: m.src, status: 'enforced', how: `the host's folder itself, ${m.readOnly ? 'read-only' : 'writable'} by Landlock` };
  if (m.kind === 'bind') return { key, src: m.src, status: 'refused', how: `showing ${m.source} at ${m.target} needs a mount; bind a folder on its own path to let Landlock hold it` };
  return { key, src: m.src, status: 'refused', how: `a ${m.kind === 'tmpfs' ? 'tmpfs' : 'volume'} needs a mount` };
}

function networkRows(spec: SandboxSpec, ll: number, rows: Rows): void {
  const net = spec.network;
  const mode = net.mode.value;
  const tcp = ll >= 4;
  if (mode === 'host') rows.push({ key: 'network: host', src: net.mode.src, status: 'enforced', how: 'the host\'s network, as written' });
  else if (mode === 'none') rows.push({ key: 'network: none', src: net.mode.src, status: tcp ? 'weaker' : 'refused', how: tcp ? 'no network namespace: Landlock refuses every TCP connect and bind; UDP and ICMP still reach the host\'s network' : 'no network namespace, and Landlock before ABI 4 cannot refuse TCP' });
  else {
    // Written, a private network is refused, unless an egress of ports only keeps TCP to them.
    const held = tcp && net.egress !== undefined && egressConnectPorts(net.egress.rules) !== undefined;
    rows.push({ key: `network: ${mode}`, src: net.mode.src, status: written(net.mode.src) && !held ? 'refused' : 'weaker', how: `the host's network, not a private one${tcp ? `; Landlock refuses TCP listeners on the host's ports${held ? ' and TCP connect outside the egress ports' : ''}` : ''}` });
  }
  for (const p of net.ports) rows.push({ key: `ports: ${p.hostPort}:${p.containerPort}/${p.protocol}`, src: p.src, status: 'refused', how: 'no network namespace to publish from: the command would listen on the host itself' });
  for (const e of net.extraHosts) rows.push({ key: `extra_hosts: ${e.host}`, src: e.src, status: 'refused', how: 'the host\'s /etc/hosts is the command\'s' });
  for (const d of net.dns.filter((x) => written(x.src))) rows.push({ key: `dns: ${d.value}`, src: d.src, status: 'refused', how: 'the host\'s resolv.conf is the command\'s' });
  const eg = net.egress;
  if (!eg) return;
  const ports = tcp ? egressConnectPorts(eg.rules) : undefined;
  if (ports) rows.push({ key: 'network.egress', src: eg.src, status: 'weaker', how: `Landlock holds TCP connect to ports ${ports.join(',') || 'none'} (any address); UDP, ICMP and names are not limited` });
  else for (const r of eg.rules) rows.push({ key: `egress: ${r.text}`, src: r.src, status: 'refused', how: tcp ? 'Landlock limits TCP ports, not hosts or address ranges' : 'the network cannot be limited: Landlock before ABI 4 has no network rights' });
}

function identityRows(spec: SandboxSpec, host: HostFeatures, rows: Rows): void {
  const u = spec.process.user;
  const uid = host.rootless?.uid;
  if (written(u.src) || u.src === 'image') {
    const same = String(u.user) === String(uid) && (u.group === undefined || String(u.group) === String(host.rootless?.gid));
    rows.push({ key: `user: ${u.user}${u.group !== undefined ? `:${u.group}` : ''}`, src: u.src, status: same ? 'enforced' : 'refused', how: same ? 'your own ids' : `the command runs as you (uid ${uid}): changing user needs a user namespace` });
  }
  for (const g of spec.process.groups) rows.push({ key: `group_add: ${g.value}`, src: g.src, status: 'refused', how: 'groups cannot be set without a privilege' });
  if (written(spec.hostname.src)) rows.push({ key: `hostname: ${spec.hostname.value}`, src: spec.hostname.src, status: 'refused', how: 'no UTS namespace: the command sees the host\'s' });
  if (written(spec.shmSize.src)) rows.push({ key: 'shm_size', src: spec.shmSize.src, status: 'refused', how: 'the host\'s /dev/shm' });
  for (const d of spec.devices) rows.push({ key: `devices: ${d.source || d.target}`, src: d.src, status: 'refused', how: 'the host\'s /dev as the caller may use it' });
  rows.push({ key: '/dev, /proc, /sys', src: 'default', status: 'weaker', how: 'the host\'s, as your user may use them (writable under /dev and /proc), with no masked paths' });
}

function securityRows(spec: SandboxSpec, rows: Rows): void {
  const sec = spec.security;
  for (const c of spec.capabilities.filter((x) => written(x.src))) rows.push({ key: `cap_add: ${c.name}`, src: c.src, status: 'refused', how: 'an unprivileged process holds no capability' });
  for (const c of spec.capsDropped.filter((x) => written(x.src))) rows.push({ key: `cap_drop: ${c.name}`, src: c.src, status: 'enforced', how: 'not held: an unprivileged process holds none' });
  rows.push({ key: 'no_new_privileges', src: sec.noNewPrivileges.src, status: sec.noNewPrivileges.value ? 'enforced' : 'refused', how: sec.noNewPrivileges.value ? 'set' : 'on anyway: without a privilege, Landlock and seccomp need it' });
  rows.push({ key: `seccomp: ${sec.seccomp.value}`, src: sec.seccomp.src, status: 'enforced', how: sec.seccomp.value === 'unconfined' ? 'no filter, as written' : 'the filter, as written' });
  for (const l of spec.rlimits) rows.push({ key: `ulimits: ${l.name}`, src: l.src, status: 'enforced', how: 'as written (a hard limit above yours is refused at run time)' });
  for (const s of spec.sysctls) rows.push({ key: `sysctls: ${s.name}`, src: s.src, status: 'refused', how: 'a sysctl of the host cannot be changed' });
  if (written(spec.rootfs.readOnly.src)) rows.push({ key: 'read_only', src: spec.rootfs.readOnly.src, status: 'enforced', how: 'the root is read-only by Landlock' });
}
