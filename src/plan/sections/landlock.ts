// `paths` as a Landlock ruleset (issue 25, part 3): a second wall behind the mounts, applied by
// the child in the security stage, after every mount (its paths are opened in the new root) and
// before seccomp. Landlock allows only what its rules name, so the ruleset is made of what the
// mounts show, each with the access its mount gives: read and run where the sandbox shows a path
// read-only, every right where it is writable (read_write rules, tmpfs, volumes, /dev), /proc
// read and write (its /proc/self files). A tmpfs root (rootfs: host) holds only mount points and
// links, so it is granted read only, although its mount is writable. Only for a file with `paths:`.
//
// What Landlock holds: the writes. A write outside the writable paths is refused by the kernel
// (EACCES) even where a mount would allow it (a mount forgotten, a new mount API). What only the
// mounts hold: the denies and hidden credentials (Landlock is allow-only, and a denied path lies
// inside a folder the command must read), and a read-only path inside a writable one (a Landlock
// rule grants its rights to everything beneath it).
import { mergePorts, portsMinus, portsText } from '../../model/egress';
import type { EgressRule, PathRule, PortRange } from '../../model/types';
import type { Source } from '../../model/val';
import type { Step, StepArgs } from '../types';
import type { Compilation } from './context';

type Access = 'ro' | 'rw';

/** The kernel's rights (include/uapi/linux/landlock.h), by the ABI that brought them. */
const FS = { EXECUTE: 1, READ_FILE: 4, READ_DIR: 8, ALL_V1: 0x1fff, REFER: 0x2000, TRUNCATE: 0x4000, IOCTL_DEV: 0x8000 } as const;
const READ_ONLY = FS.EXECUTE | FS.READ_FILE | FS.READ_DIR;

/** The rights the ruleset handles on this ABI: every file right it has. REFER (ABI 2) is handled
 * and granted on the writable paths, as otherwise Landlock refuses every rename or link from one
 * folder to another (EXDEV), which editors, git and compilers do in a writable workspace. */
export function handledRights(abi: number): number {
  return FS.ALL_V1 | (abi >= 2 ? FS.REFER : 0) | (abi >= 3 ? FS.TRUNCATE : 0) | (abi >= 5 ? FS.IOCTL_DEV : 0);
}

const beneath = (p: string, dir: string) => dir === '/' || p === dir || p.startsWith(dir + '/');

/** Each path the mounts show, with the access its mount gives, from the mounts stage's steps. */
export function landlockRules(steps: readonly Step[]): { path: string; access: Access }[] {
  const denied = new Set(steps.filter((s) => s.kind === 'mount.readonly' && s.id.startsWith('deny:')).map((s) => (s.args as StepArgs['mount.readonly']).path));
  const rootRo = steps.some((s) => s.kind === 'mount.root-readonly');
  const out = new Map<string, Access>();
  const grant = (path: string, access: Access) => { if (!denied.has(path)) out.set(path, out.get(path) === 'rw' ? 'rw' : access); };
  for (const s of steps) {
    if (s.stage !== 'mounts') continue;
    if (s.kind === 'mount.root') grant('/', rootRo || s.args.fstype === 'tmpfs' || (s.args.fstype === 'overlay' && s.args.readOnly) ? 'ro' : 'rw');
    else if (s.kind === 'mount.bind' || s.kind === 'mount.volume' || s.kind === 'mount.tmpfs') grant(s.args.target, s.args.readOnly ? 'ro' : 'rw');
    else if (s.kind === 'mount.tmpfs.dev') grant(s.args.target, 'rw');
    else if (s.kind === 'mount.proc') grant('/proc', 'rw');
    else if (s.kind === 'mount.dev') grant('/dev', 'rw');
    else if (s.kind === 'mount.sys') grant('/sys', 'ro');
    else if (s.kind === 'mount.netfile') grant(s.args.target, 'ro');
  }
  return [...out].map(([path, access]) => ({ path, access }));
}

/** The read_only rules Landlock holds too: those not beneath a writable path of the ruleset. */
export function landlockHolds(rules: readonly PathRule[], granted: readonly { path: string; access: Access }[]): PathRule[] {
  const rw = granted.filter((g) => g.access === 'rw').map((g) => g.path);
  return rules.filter((r) => r.how === 'bind' && r.access === 'read_only' && r.origin === 'rule' && !rw.some((d) => beneath(r.at, d)));
}

/** The kernel's network rights (ABI 4) and scopes (ABI 6). */
export const NET = { BIND_TCP: 1, CONNECT_TCP: 2 } as const;
export const SCOPE = { ABSTRACT_UNIX: 1, SIGNAL: 2 } as const;
/** At most this many ports as Landlock rules: a range wider than that is left to the other walls. */
const MAX_PORTS = 200;

const anyAddress = (r: EgressRule) => r.target.type === 'cidr' && r.target.prefix === 0;

/** What Landlock can hold of `network.egress`: the TCP ports the command may connect to, where
 * every rule names any address (only ports: `allow 0.0.0.0/0:443`), first match winning as the
 * policy does; undefined where a rule names a host or an address range (Landlock knows only
 * ports) or the ports are too many to list. */
export function egressConnectPorts(rules: readonly EgressRule[]): number[] | undefined {
  if (!rules.every(anyAddress)) return undefined;
  let decided: PortRange[] = [];
  const allowed: PortRange[] = [];
  for (const r of rules) {
    if (!r.protocols.includes('tcp')) continue;
    if (r.action === 'allow') allowed.push(...portsMinus(r.ports, decided));
    decided = mergePorts([...decided, ...r.ports]);
  }
  const ranges = mergePorts(allowed);
  if (ranges.reduce((n, x) => n + x.to - x.from + 1, 0) > MAX_PORTS) return undefined;
  return ranges.flatMap((x) => Array.from({ length: x.to - x.from + 1 }, (_, i) => x.from + i));
}

const portList = (ports: number[]) => (ports.length ? portsText(mergePorts(ports.map((p) => ({ from: p, to: p })))) : 'none');

/** The network part of the ruleset on ABI 4 and later: TCP connect kept to the ports of an egress
 * policy that names only ports; in reduced mode (no network namespace) also TCP bind refused (no
 * listener on the host's ports), and connect refused altogether for `network: none`. */
function landlockNet(ctx: Compilation): { net: NonNullable<StepArgs['landlock']['net']>; says: string } | undefined {
  const { spec, host } = ctx;
  if ((host.landlock ?? 0) < 4) return undefined;
  const connect = spec.network.egress ? egressConnectPorts(spec.network.egress.rules) : undefined;
  const none = spec.network.mode.value === 'none';
  if (!host.reduced) return connect ? { net: { handled: NET.CONNECT_TCP, connect, bind: [] }, says: `TCP connect only to ports ${portList(connect)} (the egress rules name only ports)` } : undefined;
  const handled = NET.BIND_TCP | (connect || none ? NET.CONNECT_TCP : 0);
  const to = none ? [] : connect ?? [];
  return { net: { handled, connect: to, bind: [] }, says: `no TCP listener on the host's ports; ${handled & NET.CONNECT_TCP ? (to.length ? `TCP connect only to ports ${portList(to)}` : 'no TCP connect') : 'TCP connect anywhere'}` };
}

/** What the file makes writable on the host's own paths in reduced mode: read_write rules and
 * writable binds of a folder on itself, each with its line. */
function reducedWritable(ctx: Compilation): { path: string; src: Source }[] {
  const { spec } = ctx;
  return [
    ...spec.paths.rules.filter((r) => r.origin === 'rule' && r.access === 'read_write' && r.how === 'bind' && r.at === r.path).map((r) => ({ path: r.path, src: r.src })),
    ...spec.mounts.flatMap((m) => (m.kind === 'bind' && m.source === m.target && !m.readOnly ? [{ path: m.source, src: m.src }] : [])),
  ];
}

/** The reduced mode's ruleset (no mount namespace: the host's own paths): read and run anywhere,
 * write only where the file lets the command write (read_write rules, binds of a folder on
 * itself) and in /dev and /proc; the probe is a folder in the sandbox's state folder, which the
 * caller may write and the ruleset does not. */
export function reducedLandlockRules(ctx: Compilation): { path: string; access: Access }[] {
  const rw = [...reducedWritable(ctx).map((w) => w.path), '/dev', '/proc'];
  return [{ path: '/', access: 'ro' as Access }, ...[...new Set(rw)].map((path) => ({ path, access: 'rw' as Access }))];
}

/** The child checks its wall by a mkdir in the state folder that Landlock must refuse: a writable
 * path holding the state folder would let it succeed, and the run would stop at that check. */
function stateDirWritable(ctx: Compilation): void {
  const { stateDir } = ctx;
  const under = reducedWritable(ctx).find((w) => stateDir === w.path || stateDir.startsWith(w.path.endsWith('/') ? w.path : `${w.path}/`));
  if (under) ctx.problems.push({ src: under.src, code: 'reduced-state-writable', message: `the sandbox's state folder ${stateDir} is under ${under.path}, which this line makes writable, so the Landlock wall could not be checked from inside in reduced mode; set XDG_RUNTIME_DIR to a folder outside it (or make this path read_only)` });
}

function reducedLandlockStep(ctx: Compilation, abi: number): void {
  const net = landlockNet(ctx);
  const rules = reducedLandlockRules(ctx);
  stateDirWritable(ctx);
  const scoped = abi >= 6 ? SCOPE.ABSTRACT_UNIX | SCOPE.SIGNAL : 0;
  const title = `Landlock ABI ${abi}, the wall in reduced mode (no namespaces): read and run anywhere; write only under ${rules.filter((r) => r.access === 'rw').map((r) => r.path).join(' ')}`
    + (net ? `; ${net.says}` : '; the network is not limited (Landlock ABI 4 or later limits TCP)')
    + (scoped ? '; no signal to a process outside the sandbox, no abstract Unix socket outside it' : '');
  ctx.add('security', 'landlock', 'landlock', title, 'default', { abi, handled: handledRights(abi), readOnly: READ_ONLY, rules, probe: `${ctx.stateDir}/.sbx-landlock-probe`, ...(net ? { net: net.net } : {}), ...(scoped ? { scoped } : {}) });
}

/** The landlock step, where the kernel has Landlock and the file has `paths:` rules or an egress
 * policy of ports only (on ABI 4 and later); in reduced mode always (it is the wall there). */
export function landlockStep(ctx: Compilation): void {
  const { spec, host, add, steps } = ctx;
  const own = spec.paths.rules.filter((r) => r.origin === 'rule');
  // Reading host.landlock asks the kernel through libsbx (engine/probe.ts): only where a step can follow.
  if (!own.length && !host.reduced && !spec.network.egress) return;
  if (!host.landlock) return;
  if (host.reduced) { reducedLandlockStep(ctx, host.landlock); return; }
  const net = landlockNet(ctx);
  if (!own.length) {
    if (net) add('security', 'landlock', 'landlock', `Landlock ABI ${host.landlock}, a second wall behind the egress policy: ${net.says}`, spec.network.egress!.src, { abi: host.landlock, handled: 0, readOnly: 0, rules: [], net: net.net });
    return;
  }
  const abi = host.landlock;
  const rules = landlockRules(steps);
  const rw = rules.filter((r) => r.access === 'rw').map((r) => r.path);
  const held = landlockHolds(own, rules);
  const root = rules.find((r) => r.path === '/');
  // The check the child makes after restricting itself: a folder in the tmpfs root, which its
  // mount lets root make and the ruleset (read only there) does not, must be refused (EACCES).
  const u = spec.process.user.user;
  const rootUser = u === 0 || u === '0' || u === 'root';
  const tmpfsRoot = steps.some((s) => s.kind === 'mount.root' && s.args.fstype === 'tmpfs') && !steps.some((s) => s.kind === 'mount.root-readonly');
  const probe = rootUser && tmpfsRoot && root?.access === 'ro' ? '/.sbx-landlock-probe' : undefined;
  const title = `Landlock ABI ${abi}, a second wall behind the mounts: write only under ${rw.join(' ') || 'nothing'}; read and run ${root?.access === 'ro' ? 'anywhere the mounts show' : 'under the rest'}`
    + (held.length ? `; Landlock ABI ${abi} also refuses writes to ${held.map((r) => r.at).join(' ')}` : '')
    + (net ? `; ${net.says}` : '')
    + `. The denies and hidden paths, and read-only paths inside writable ones, are held by the mounts alone (Landlock only allows)`;
  // Cited at the file's first path rule.
  const first = own.reduce((a, r) => (typeof r.src === 'object' && typeof a.src === 'object' && (r.src.line < a.src.line || (r.src.line === a.src.line && r.src.col < a.src.col)) ? r : a));
  add('security', 'landlock', 'landlock', title, first.src, { abi, handled: handledRights(abi), readOnly: READ_ONLY, rules, ...(probe ? { probe } : {}), ...(net ? { net: net.net } : {}) });
}
