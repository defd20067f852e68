// Two exposure fact records → the isolation changes between them, grouped by stage, each with the
// lines behind it on both sides and whether it loosens isolation. Pure.
//
// What loosens, per kind of change: a capability, bind, device, port, sysctl or insecure registry
// added; a limit removed or raised; a namespace, network or seccomp moved towards the host's
// (private → joined → host; none → private → joined → host; a filter → another profile →
// unconfined); no_new_privileges or a read-only root turned off; a bind made writable or shared
// or moved to a host folder that is not inside its old one,
// a port moved onto every address; a masked path removed; the command moved to root; the egress
// policy removed, an allow rule added or widened or moved above a deny it meets, a deny rule
// removed or narrowed. The opposite tightens. A change that does neither (a new image, another unprivileged user) is shown as neutral.
import type { Stage } from '../plan/types';
import { STAGES } from '../plan/types';
import type { At, ExposureFacts, Limit } from './facts';
import { audit } from './score';
import { DIFF_MSG as M, LABEL as L, count, cpus, size } from './messages';
import { portsContain, portsOverlap, portsText, targetCovers, targetText } from '../model/egress';

export type Effect = 'looser' | 'tighter' | 'neutral';
export interface Change { stage: Stage; kind: string; text: string; effect: Effect; before?: At; after?: At }
export interface Diff {
  before: { file: string; score: number };
  after: { file: string; score: number };
  changes: Change[];
  loosened: boolean;
}

const rank = <T>(order: readonly T[], v: T) => order.indexOf(v);
const towards = <T>(order: readonly T[], a: T, b: T): Effect => (rank(order, b) > rank(order, a) ? 'looser' : rank(order, b) < rank(order, a) ? 'tighter' : 'neutral');

type Push = (stage: Stage, kind: string, text: string, effect: Effect, before?: At, after?: At) => void;

/** The changes found so far, in the order they are found; diffFacts sorts them by stage. */
class Changes {
  readonly list: Change[] = [];

  readonly push: Push = (stage, kind, text, effect, before, after) => {
    this.list.push({ stage, kind, text, effect, ...(before ? { before } : {}), ...(after ? { after } : {}) });
  };

  /** Items keyed on both sides: added, removed, and (through `changed`) changed in place. */
  keyed<T extends { at: At }>(stage: Stage, kind: string, xs: T[], ys: T[], key: (x: T) => string, label: (x: T) => string, addEffect: Effect, changed?: (x: T, y: T) => void): void {
    const A = new Map(xs.map((x) => [key(x), x]));
    const B = new Map(ys.map((y) => [key(y), y]));
    for (const [k, x] of A) if (!B.has(k)) this.push(stage, `${kind}.removed`, M.removed(label(x)), flip(addEffect), x.at);
    for (const [k, y] of B) {
      const x = A.get(k);
      if (!x) this.push(stage, `${kind}.added`, M.added(label(y)), addEffect, undefined, y.at);
      else changed?.(x, y);
    }
  }
}

/** The root: another root file system (neutral), and insecure registries. */
function rootfsChanges(a: ExposureFacts, b: ExposureFacts, ch: Changes): void {
  if (a.rootfs.type !== b.rootfs.type || a.rootfs.what !== b.rootfs.what) {
    const show = (f: ExposureFacts) => (f.rootfs.type === 'host' ? 'host' : `${f.rootfs.type} ${f.rootfs.what}`);
    ch.push('rootfs', 'rootfs', M.changed(L.rootfs, show(a), show(b)), 'neutral', a.rootfs.at, b.rootfs.at);
  }
  ch.keyed('rootfs', 'insecure-registry', a.insecureRegistries, b.insecureRegistries, (r) => r.host, (r) => L.insecure(r.host), 'looser');
}

/** The cgroup: limits, where none is the loosest; every other value it writes, neutral. */
function cgroupChanges(a: ExposureFacts, b: ExposureFacts, ch: Changes): void {
  const limit = (kind: string, label: string, x: Limit, y: Limit, show: (v: number | null) => string) => {
    if (x.value === y.value) return;
    const effect: Effect = x.value === null ? 'tighter' : y.value === null ? 'looser' : y.value > x.value ? 'looser' : 'tighter';
    ch.push('cgroup', kind, M.changed(label, show(x.value), show(y.value)), effect, x.at, y.at);
  };
  limit('memory', L.memory, a.limits.memory, b.limits.memory, size);
  limit('pids', L.pids, a.limits.pids, b.limits.pids, count);
  limit('cpus', L.cpus, a.limits.cpuMillis, b.limits.cpuMillis, cpus);
  // Weights, reservations and rates share CPU, memory and IO rather than open anything: neutral.
  ch.keyed('cgroup', 'cgroup-write', a.cgroupWrites, b.cgroupWrites, (w) => w.id, (w) => L.cgroupWrite(w.file, w.value), 'neutral', (x, y) => {
    if (x.value !== y.value || x.file !== y.file) ch.push('cgroup', 'cgroup-write.changed', M.changed(L.cgroupFile(y.file), x.value, y.value), 'neutral', x.at, y.at);
  });
}

/** Namespaces: moved towards the host's (private → joined → host) loosens; another path to join too. */
function namespaceChanges(a: ExposureFacts, b: ExposureFacts, ch: Changes): void {
  for (const x of a.namespaces) {
    const y = b.namespaces.find((n) => n.type === x.type)!;
    if (x.mode === y.mode && x.path === y.path) continue;
    const show = (n: typeof x) => (n.mode === 'join' ? `joined (${n.path})` : n.mode);
    ch.push('namespaces', 'namespace', M.changed(L.namespace(x.type), show(x), show(y)), x.mode === y.mode ? 'looser' : towards(['private', 'join', 'host'] as const, x.mode, y.mode), x.at, y.at);
  }
}

/** The network's mode (none → private → joined → host loosens), and the published ports: added,
 * removed, or moved onto every address or off it. */
function networkChanges(a: ExposureFacts, b: ExposureFacts, ch: Changes): void {
  if (a.network.mode !== b.network.mode) ch.push('network', 'network', M.changed(L.network, a.network.mode, b.network.mode), towards(['none', 'private', 'joined', 'host'] as const, a.network.mode, b.network.mode), a.network.at, b.network.at);
  type Port = ExposureFacts['ports'][number];
  const portLabel = (p: Port) => `${L.port(p.hostPort, p.containerPort, p.protocol)} ${L.portOn(p.everyAddress, p.hostIp)}`;
  ch.keyed('network', 'port', a.ports, b.ports, (p) => `${p.hostPort}:${p.containerPort}/${p.protocol}`, portLabel, 'looser', (x, y) => {
    if (x.hostIp === y.hostIp) return;
    const effect: Effect = y.everyAddress && !x.everyAddress ? 'looser' : x.everyAddress && !y.everyAddress ? 'tighter' : 'neutral';
    ch.push('network', 'port.address', M.changed(L.port(y.hostPort, y.containerPort, y.protocol), L.portOn(x.everyAddress, x.hostIp), L.portOn(y.everyAddress, y.hostIp)), effect, x.at, y.at);
  });
}

/** The binds of host folders: added, removed, moved to another folder, made writable or shared. */
function bindChanges(a: ExposureFacts, b: ExposureFacts, ch: Changes): void {
  ch.keyed('mounts', 'bind', a.binds, b.binds, (m) => m.target, (m) => L.bindDesc(m.source, m.target, m.readOnly), 'looser', (x, y) => {
    // Another host folder is exposed, unless the new one lies inside the old (a narrower bind).
    if (x.source !== y.source) ch.push('mounts', 'bind.source', M.changed(L.bind(y.target), x.source, y.source), inside(y.source, x.source) ? 'tighter' : 'looser', x.at, y.at);
    if (x.readOnly !== y.readOnly) ch.push('mounts', 'bind.writable', M.made(L.bindOf(y.source, y.target), y.readOnly ? L.readOnly : L.writable), y.readOnly ? 'tighter' : 'looser', x.at, y.at);
    if (x.propagation !== y.propagation) {
      const shared = (p: string) => p === 'shared' || p === 'rshared';
      ch.push('mounts', 'bind.propagation', M.changed(`${L.bind(y.target)} propagation`, x.propagation, y.propagation), shared(y.propagation) && !shared(x.propagation) ? 'looser' : shared(x.propagation) && !shared(y.propagation) ? 'tighter' : 'neutral', x.at, y.at);
    }
  });
}

/** Mounts: the read-only root, binds, volumes, devices, masked and protected paths, and the file's sysctls. */
function mountChanges(a: ExposureFacts, b: ExposureFacts, ch: Changes): void {
  if (a.rootfs.readOnly !== b.rootfs.readOnly) {
    const show = (ro: boolean) => (ro ? L.readOnly : L.writable);
    ch.push('mounts', 'root-readonly', M.changed(L.rootReadOnly, show(a.rootfs.readOnly), show(b.rootfs.readOnly)), b.rootfs.readOnly ? 'tighter' : 'looser', a.rootfs.readOnlyAt, b.rootfs.readOnlyAt);
  }
  bindChanges(a, b, ch);
  // A volume holds the sandbox's own data in the store, not a host folder: adding one loosens
  // nothing; making one writable lets what the command writes outlive it, as for a bind.
  ch.keyed('mounts', 'volume', a.volumes, b.volumes, (m) => m.target, (m) => L.volumeDesc(m.name, m.target, m.readOnly, m.anonymous), 'neutral', (x, y) => {
    if (x.name !== y.name) ch.push('mounts', 'volume.name', M.changed(L.volume(y.target), x.name, y.name), 'neutral', x.at, y.at);
    if (x.readOnly !== y.readOnly) ch.push('mounts', 'volume.writable', M.made(L.volumeDesc(y.name, y.target, undefined, y.anonymous), y.readOnly ? L.readOnly : L.writable), y.readOnly ? 'tighter' : 'looser', x.at, y.at);
  });
  ch.keyed('mounts', 'device', a.devices, b.devices, (d) => d.target, (d) => L.device(d.source, d.target, d.permissions), 'looser', (x, y) => {
    if (x.source === y.source && x.permissions === y.permissions) return;
    const more = x.source !== y.source || [...y.permissions].some((c) => !x.permissions.includes(c));
    ch.push('mounts', 'device.changed', M.changed(`device on ${y.target}`, `${x.source} (${x.permissions})`, `${y.source} (${y.permissions})`), more ? 'looser' : 'tighter', x.at, y.at);
  });
  ch.keyed('mounts', 'masked-path', a.maskedPaths, b.maskedPaths, (m) => m.path, (m) => L.masked(m.path), 'tighter');
  ch.keyed('mounts', 'protected-path', a.protectedPaths, b.protectedPaths, (m) => m.path, (m) => L.protectedPath(m.path), 'tighter');
  // The sysctls sandbox sets itself (ping without CAP_NET_RAW, IPv6 off on eth0) come and go with
  // the network and only tighten: the file's own are compared.
  const own = (f: ExposureFacts) => f.sysctls.filter((x) => x.at.origin !== 'default');
  ch.keyed('mounts', 'sysctl', own(a), own(b), (s) => s.name, (s) => L.sysctl(s.name, s.value), 'looser', (x, y) => {
    if (x.value !== y.value) ch.push('mounts', 'sysctl.changed', M.changed(L.sysctlName(y.name), x.value, y.value), 'looser', x.at, y.at);
  });
}

/** Identity: the user, which loosens when it becomes the host's root. */
function identityChanges(a: ExposureFacts, b: ExposureFacts, ch: Changes): void {
  if (a.user.user === b.user.user && a.user.group === b.user.group && a.user.root === b.user.root) return;
  const show = (u: ExposureFacts['user']) => `${u.user}${u.group !== null && u.group !== undefined ? `:${u.group}` : ''}${u.root ? ' (root of the host)' : ''}`;
  ch.push('identity', 'user', M.changed(L.user, show(a.user), show(b.user)), b.user.root && !a.user.root ? 'looser' : a.user.root && !b.user.root ? 'tighter' : 'neutral', a.user.at, b.user.at);
}

/** Security: capabilities, no_new_privileges and the seccomp filter. */
function securityChanges(a: ExposureFacts, b: ExposureFacts, ch: Changes): void {
  ch.keyed('security', 'capability', a.caps, b.caps, (c) => c.name, (c) => L.cap(c.name), 'looser');
  if (a.noNewPrivileges.on !== b.noNewPrivileges.on) {
    const show = (on: boolean) => (on ? L.on : L.off);
    ch.push('security', 'nnp', M.changed(L.nnp, show(a.noNewPrivileges.on), show(b.noNewPrivileges.on)), b.noNewPrivileges.on ? 'tighter' : 'looser', a.noNewPrivileges.at, b.noNewPrivileges.at);
  }
  if (a.seccomp.profile !== b.seccomp.profile) {
    // A profile of one's own may allow more than the default: that needs a review too.
    const level = (p: string) => (p === 'default' ? 0 : p === 'unconfined' ? 2 : 1);
    const la = level(a.seccomp.profile), lb = level(b.seccomp.profile);
    ch.push('security', 'seccomp', M.changed(L.seccomp, a.seccomp.profile, b.seccomp.profile), lb > la || (la === 1 && lb === 1) ? 'looser' : 'tighter', a.seccomp.at, b.seccomp.at);
  }
}

export function diffFacts(a: ExposureFacts, b: ExposureFacts): Diff {
  const ch = new Changes();
  rootfsChanges(a, b, ch);
  cgroupChanges(a, b, ch);
  namespaceChanges(a, b, ch);
  networkChanges(a, b, ch);
  egressChanges(a, b, ch.push);
  mountChanges(a, b, ch);
  identityChanges(a, b, ch);
  securityChanges(a, b, ch);
  const changes = ch.list.map((c, i) => [c, i] as const).sort(([x, i], [y, j]) => STAGES.indexOf(x.stage) - STAGES.indexOf(y.stage) || i - j).map(([c]) => c);
  return {
    before: { file: a.file, score: audit(a).score },
    after: { file: b.file, score: audit(b).score },
    changes,
    loosened: changes.some((c) => c.effect === 'looser'),
  };
}

type Rule = NonNullable<ExposureFacts['egress']>['rules'][number];

/** Egress: the policy added (tighter) or removed (looser); each rule by action and target (the
 * n-th of a repeated one by n): added, removed, its ports or protocols changed, or an allow moved
 * above a deny it meets (or the reverse). */
function egressChanges(a: ExposureFacts, b: ExposureFacts, push: Push): void {
  if (!a.egress || !b.egress) {
    if (a.egress) push('network', 'egress.removed', M.removed(L.egress(a.egress.rules.length)), 'looser', a.egress.at);
    if (b.egress) push('network', 'egress.added', M.added(L.egress(b.egress.rules.length)), 'tighter', undefined, b.egress.at);
    return;
  }
  const keyed = (rules: Rule[]) => {
    const seen = new Map<string, number>();
    return new Map(rules.map((r) => {
      const k = `${r.action} ${targetText(r.target)}`;
      seen.set(k, (seen.get(k) ?? 0) + 1);
      return [`${k}#${seen.get(k)}`, r] as const;
    }));
  };
  const A = keyed(a.egress.rules), B = keyed(b.egress.rules);
  const loosens = (r: Rule, added: boolean): Effect => ((r.action === 'allow') === added ? 'looser' : 'tighter');
  for (const [k, x] of A) if (!B.has(k)) push('network', 'egress-rule.removed', M.removed(L.egressRule(x.text)), loosens(x, false), x.at);
  for (const [k, y] of B) {
    const x = A.get(k);
    if (!x) { push('network', 'egress-rule.added', M.added(L.egressRule(y.text)), loosens(y, true), undefined, y.at); continue; }
    const wider = !portsContain(x.ports, y.ports) || y.protocols.some((p) => !x.protocols.includes(p));
    const narrower = !portsContain(y.ports, x.ports) || x.protocols.some((p) => !y.protocols.includes(p));
    if (wider || narrower) {
      const show = (r: Rule) => `${portsText(r.ports)}/${r.protocols.join(',')}`;
      push('network', 'egress-rule.ports', M.changed(L.egressPorts(targetText(y.target)), show(x), show(y)), wider ? loosens(y, true) : loosens(y, false), x.at, y.at);
    }
  }
  // Order: first match wins, so a rule that now comes before another it meets (and did not) decides
  // what that one decided.
  const meets = (x: Rule, y: Rule) => x.action !== y.action && (targetCovers(x.target, y.target) || targetCovers(y.target, x.target)) && portsOverlap(x.ports, y.ports) && x.protocols.some((p) => y.protocols.includes(p));
  const pos = (m: Map<string, Rule>) => new Map([...m.keys()].map((k, i) => [k, i]));
  const pa = pos(A), pb = pos(B);
  for (const [k, y] of B) for (const [k2, z] of B) {
    if (!A.has(k) || !A.has(k2) || !meets(y, z)) continue;
    if (pb.get(k)! < pb.get(k2)! && pa.get(k)! > pa.get(k2)!) push('network', 'egress-rule.moved', M.moved(L.egressRule(y.text), L.egressRule(z.text)), y.action === 'allow' ? 'looser' : 'tighter', A.get(k)!.at, y.at);
  }
}

function inside(p: string, dir: string): boolean { return dir === '/' || p === dir || p.startsWith(`${dir}/`); }
function flip(e: Effect): Effect { return e === 'looser' ? 'tighter' : e === 'tighter' ? 'looser' : 'neutral'; }
