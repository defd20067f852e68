// What a run needs to know, or to hold, before it changes anything on the host, in the CLI
// process, as its user. Two parts:
// - `preflight`: every check that can be made from the file, the plan and the host as they are,
//   before any pull and before any step: bind sources, folders the sandbox's user must write,
//   published host ports, the sandbox's name, the image's registry. Each check is independent and
//   returns every problem it finds, located at the config line behind it, so that `up`,
//   `up --dry-run` and `doctor FILE` say them all at once and the same way.
// - what the engine needs at run time: the ids the command runs as, which bind sources are files,
//   the image's overlayfs options and the published host ports (held from here on). A failure
//   there is the failure of the step it concerns.
import { existsSync, statSync, type Stats } from 'node:fs';
import { join, posix } from 'node:path';
import { checkUserXattrs, type Store } from '../image/store';
import { hostId, runsAsRoot } from '../image/owners';
import { imageKey, probeRegistry } from '../image/pull';
import { beforeRegistry } from './extra-ca';
import { COMMAND_LINE, type SandboxSpec, type Source } from '../model/types';
import type { HostFeatures, Plan, Step, StepOf } from '../plan/types';
import { findStep, stepsOf } from '../plan/steps';
import { reservePort, type PortRule } from '../host/network';
import { ownerAlive, readOwner } from '../host/lock';
import { exitCode, heldPorts, listedSandbox, listSandboxes, readState, sandboxPids } from '../host/state';
import type { UndoList } from '../host/undo';
import { resolveIds, type Ids } from '../host/users';

/** One thing found before anything changes: where it comes from, how grave, and what to do. */
export interface PreflightProblem { src: Source; code: string; severity: 'error' | 'warning'; message: string }

export interface PreflightInput {
  spec: SandboxSpec;
  /** The plan compiled from spec (before a pull: without the image's layers). */
  plan: Plan;
  host: HostFeatures;
  /** Registries the command line marks plain HTTP (--insecure-registry), beside the file's. */
  insecure?: string[];
  /** Whether the store holds the image: its registry is asked only when it does not. */
  haveImage?: boolean;
  /** `run --name`: a sandbox of that name that has ended and is kept (for its logs, ps -a) is
   * refused, as docker run refuses a name in use; `up` replaces it, as Compose's up recreates. */
  refuseKept?: boolean;
}

/** A check: every problem it finds, none when all is well. Each reads the host, changes nothing. */
export type PreflightCheck = (i: PreflightInput) => PreflightProblem[] | Promise<PreflightProblem[]>;

/** Runs every check (in parallel: the registry's answer may take a while) and returns all they
 * found, in the checks' order. */
export async function preflight(i: PreflightInput, checks: readonly PreflightCheck[] = PREFLIGHT_CHECKS): Promise<PreflightProblem[]> {
  return (await Promise.all(checks.map(async (c) => c(i)))).flat();
}

const statOf = (p: string): Stats | undefined => { try { return statSync(p); } catch { return undefined; } };

/** Bind volumes (the spec's `bind` mounts only: never a named volume), devices and a `rootfs.path`
 * must exist on the host: the mount would fail with ENOENT in the child. */
export const checkSources: PreflightCheck = ({ spec }) => {
  const out: PreflightProblem[] = [];
  const missing = (src: Source, path: string, what: string, fix: string) => out.push({ src, code: 'missing-source', severity: 'error', message: `${what} ${path} does not exist on the host; ${fix}` });
  for (const m of spec.mounts) {
    if (m.kind !== 'bind' || statOf(m.source)) continue;
    const base = typeof m.src === 'object' && m.src.file === COMMAND_LINE ? 'on the command line start at the current folder' : 'start at the config file\'s folder';
    missing(m.src, m.source, 'the bind source', `create it first (mkdir -p ${m.source}), or fix the path (relative paths ${base})`);
  }
  for (const d of spec.devices) if (!d.node && !statOf(d.source)) missing(d.src, d.source, 'the device', 'check its path (ls /dev), or remove it from `devices`');
  if (spec.rootfs.type === 'dir') {
    const st = statOf(spec.rootfs.path);
    if (!st) missing(spec.rootfs.src, spec.rootfs.path, 'the root filesystem', 'create it, or fix `rootfs.path`');
    else if (!st.isDirectory()) out.push({ src: spec.rootfs.src, code: 'missing-source', severity: 'error', message: `the root filesystem ${spec.rootfs.path} is not a folder; point \`rootfs.path\` at one` });
  }
  if (spec.rootfs.type === 'image' && /^(oci|docker-archive):/.test(spec.rootfs.image)) {
    // oci:PATH[:TAG] and docker-archive:PATH[:NAME], split as the pull splits them.
    const { layout, archive } = imageKey(spec.rootfs.image);
    if (layout && !statOf(layout.dir)) missing(spec.rootfs.src, layout.dir, 'the OCI image layout', 'check the path after oci:');
    if (archive && !statOf(archive.file)) missing(spec.rootfs.src, archive.file, 'the docker save archive', 'check the path after docker-archive:');
  }
  return out;
};

/** Who writes through a writable bind, as the host sees it: the command's ids through the
 * sandbox's id maps, and whether it holds CAP_DAC_OVERRIDE there. */
export interface Writer { uid: number; gid: number; groups: number[]; dacOverride: boolean; uidMap?: { container: number; host: number; size: number }[]; gidMap?: { container: number; host: number; size: number }[] }

/** Whether a writer may create files in a folder with this owner and mode, as the kernel decides
 * for a process of the sandbox (a file's bits are read the same way). Pure. */
export function mayWrite(st: { uid: number; gid: number; mode: number }, w: Writer): boolean {
  // CAP_DAC_OVERRIDE in a user namespace counts only for inodes whose owner and group are mapped there.
  const mappedIn = (map: Writer['uidMap'], id: number) => !map || map.some((m) => id >= m.host && id < m.host + m.size);
  if (w.dacOverride && mappedIn(w.uidMap, st.uid) && mappedIn(w.gidMap, st.gid)) return true;
  const hostUid = w.uidMap ? hostId(w.uidMap, w.uid) : w.uid;
  const hostGids = [w.gid, ...w.groups].map((g) => (w.gidMap ? hostId(w.gidMap, g) : g));
  if (hostUid === st.uid) return (st.mode & 0o200) !== 0;
  if (hostGids.includes(st.gid)) return (st.mode & 0o020) !== 0;
  return (st.mode & 0o002) !== 0;
}

/** A writable bind whose host folder the sandbox's user cannot write: a warning (a command that
 * only reads there, or that writes as another user it switches to, still works), with the chown
 * that fixes it. Only where the user's ids can be known before the image is pulled. */
export const checkWritable: PreflightCheck = ({ spec, plan }) => {
  let ids: Ids;
  try { ids = planIds(plan, rootEtc(plan)); } catch { return []; }
  const caps = findStep(plan.steps, 'caps.apply');
  const idmap = findStep(plan.steps, 'idmap');
  const w: Writer = {
    ...ids,
    // uid 0 holds the bounding set; any other uid only what cap_add names (ambient).
    dacOverride: (ids.uid === 0 ? caps?.args.bounding : caps?.args.ambient)?.includes('DAC_OVERRIDE') ?? false,
    ...(idmap ? { uidMap: idmap.args.uid, gidMap: idmap.args.gid } : {}),
  };
  const out: PreflightProblem[] = [];
  for (const m of spec.mounts) {
    if (m.kind !== 'bind' || m.readOnly) continue;
    const st = statOf(m.source);
    if (!st || !st.isDirectory() || mayWrite(st, w)) continue;
    const hostUid = w.uidMap ? hostId(w.uidMap, ids.uid) : ids.uid;
    const hostGid = w.gidMap ? hostId(w.gidMap, ids.gid) : ids.gid;
    const who = `the sandbox's user (uid ${ids.uid}${hostUid !== ids.uid ? `, ${hostUid ?? 'unmapped'} on the host` : ''})`;
    const fix = hostUid !== undefined && hostGid !== undefined ? `chown ${hostUid}:${hostGid} ${m.source}` : `chmod o+w ${m.source}`;
    out.push({ src: m.src, code: 'bind-not-writable', severity: 'warning', message: `${who} cannot write ${m.source} (owner ${st.uid}:${st.gid}, mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}), which is mounted writable; let it (${fix}), or mount it read-only (:ro)` });
  }
  return out;
};

/** A user or group given by name that the root filesystem does not have: an error at its line
 * before anything is set up, as the other problems are (not a failed step once the namespaces are
 * made). Not known yet for an image still to be pulled: its layers are read then. */
export const checkUser: PreflightCheck = ({ spec, plan }) => {
  const image = findStep(plan.steps, 'rootfs.image');
  if (image && !(image.args.layers ?? []).length) return [];
  try { planIds(plan, rootEtc(plan)); } catch (e) {
    if (e instanceof PreflightError) return [{ src: spec.process.user.src, code: 'user-unknown', severity: 'error', message: e.message }];
    throw e;
  }
  return [];
};

/** Each published host port, taken for a moment and let go: one in use now is an error at its
 * line. (`up` takes them again and holds them before the first step.) */
export const checkPorts: PreflightCheck = async ({ plan, host }) => {
  const out: PreflightProblem[] = [];
  const ports = stepsOf(plan.steps, 'net.port');
  // The ports other running sandboxes hold (nftables DNAT binds no socket: the bind test below
  // cannot see them); an exited sandbox holds none.
  const others = portHolders(host, plan);
  for (const step of ports) {
    const a = step.args;
    if (!a.hostPort) continue;
    const holder = portHolder(a, others);
    if (holder) { out.push({ src: step.source, code: 'port-held', severity: 'error', message: heldMessage(holder) }); continue; }
    try { await (await reservePort(a)).close(); } catch (e) { out.push({ src: step.source, code: 'port-in-use', severity: 'error', message: portError(a, e) }); }
  }
  return out;
};

/** The sandbox's name, if a sandbox of that name runs or is being started (or, for `run --name`,
 * has ended and is kept). */
export const checkName: PreflightCheck = ({ spec, plan, host, refuseKept }) => {
  const state = findStep(plan.steps, 'state.create')?.args.path;
  if (!state || !existsSync(state)) return [];
  const owner = readOwner(join(state, 'owner'));
  const running = sandboxPids(host, plan.name, readState(state)).length > 0;
  if (!running && !ownerAlive(owner)) {
    if (!refuseKept) return [];
    const exit = listedSandbox(host, plan.name)?.exit;
    const what = exit === undefined ? 'is left by a run that did not end cleanly (dead in sandbox ps -a)' : `has exited (${exitCode(exit)}) and is kept, for its logs and sandbox ps -a`;
    return [{ src: spec.name.src, code: 'name-kept', severity: 'error', message: `a sandbox named ${plan.name} ${what}; remove it first (sandbox rm ${plan.name}), or add --replace to remove it and run this one in its place (--rm keeps nothing of a run once it ends)` }];
  }
  const how = running ? 'running' : `being started (by process ${owner!.split(' ')[0]})`;
  return [{ src: spec.name.src, code: 'name-taken', severity: 'error', message: `a sandbox named ${plan.name} is already ${how}; stop it first, or pick another name with --name` }];
};

/** The image's registry, when the image must be pulled: asked once, briefly, before anything else. */
export const checkRegistry: PreflightCheck = async ({ spec, insecure, haveImage }) => {
  const rf = spec.rootfs;
  if (rf.type !== 'image' || haveImage || rf.layers || !rf.registry) return [];
  const all = [...rf.insecure, ...(insecure ?? [])];
  beforeRegistry(rf.registry, all);
  const why = await probeRegistry(rf.registry, all);
  return why ? [{ src: rf.src, code: 'registry-unreachable', severity: 'error', message: `the image ${rf.image} cannot be pulled: ${why}` }] : [];
};

/** Every check `up` makes before changing anything. Another check is one more entry here. */
/** A mount namespace joined by path gets the sandbox's root pivoted in it, for every process
 * there: the CLI's own (the host's) or init's must not be the one. Each joined path must name a
 * namespace file. */
export const checkJoined: PreflightCheck = ({ spec }) => {
  const out: PreflightProblem[] = [];
  const same = (a: Stats | undefined, b: Stats | undefined) => a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino;
  for (const n of spec.namespaces) {
    if (n.mode !== 'join') continue;
    let st: Stats | undefined, why = '';
    try { st = statSync(n.path); } catch (e) { why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(e as NodeJS.ErrnoException).code})`; }
    if (!st) out.push({ src: n.src, code: 'missing-source', severity: 'error', message: `the ${n.type} namespace ${n.path} ${why}; name a live process's /proc/PID/ns/${n.type === 'mount' ? 'mnt' : n.type} or a bind-mounted namespace file` });
    else if (n.type === 'mount' && (same(st, statOf('/proc/self/ns/mnt')) || same(st, statOf('/proc/1/ns/mnt')))) out.push({ src: n.src, code: 'join-host-mount-namespace', severity: 'error', message: `${n.path} is the host's own mount namespace: the sandbox's root would be pivoted for the whole host; join another one, or leave namespaces.mount private` });
  }
  return out;
};

/**
 * A working directory that is not there and that the sandbox cannot make (the mount.workdir step
 * makes a missing one, as docker run -w does): one under a read-only bind, volume or tmpfs, a
 * `rootfs: dir` with security.read_only (the file asks that the folder not be written), or the
 * host's own root in reduced mode. An image's root is always writable for it (its upper layer; read-only,
 * its init layer), as is the sandbox's own tmpfs root under `rootfs: host`.
 */
export const checkWorkdir: PreflightCheck = ({ spec, plan }) => {
  const cwd = spec.process.cwd;
  const path = posix.normalize(cwd.value);
  if (path === '/') return [];
  const blocked = workdirBlocked(plan, path);
  if (!blocked) return [];
  return [{ src: cwd.src, code: 'workdir-cannot-be-made', severity: 'error', message: `the working directory ${path} does not exist, and the sandbox cannot make it: ${blocked.why}; ${blocked.fix}, or choose a working directory that exists` }];
};

const isDir = (p: string) => statOf(p)?.isDirectory() === true;
const within = (p: string, dir: string) => dir === '/' || p === dir || p.startsWith(`${dir}/`);

/** Why the working directory `path` (normalized) cannot be made where the plan's mounts put it, and
 * what to do; undefined when it is there or can be made. */
function workdirBlocked(plan: Plan, path: string): { why: string; fix: string } | undefined {
  const root = findStep(plan.steps, 'mount.root');
  if (!root) return isDir(path) ? undefined : { why: 'in reduced mode (no mount namespace) the command runs in the host\'s own root, which the sandbox does not change', fix: `create it on the host (mkdir -p ${path})` };
  // As the sandbox sees it: under `rootfs: host`, /bin may be a link to usr/bin (mount.link).
  let seen = path;
  for (const l of stepsOf(plan.steps, 'mount.link')) if (within(seen, l.args.path)) seen = posix.join(posix.dirname(l.args.path), l.args.target, seen.slice(l.args.path.length));
  const home = workdirMount(plan, seen);
  if (home) {
    if (!home.readOnly) return undefined;
    const fix = home.hostRoot ? `mount a volume or a tmpfs on ${seen}` : `mount ${home.target} writable`;
    if (!home.source) return seen === home.target ? undefined : { why: `${home.target} is ${home.what}`, fix };
    const onHost = join(home.source, posix.relative(home.target, seen));
    return isDir(onHost) ? undefined : { why: `${home.target} is ${home.what}`, fix: `create it ${home.hostRoot ? 'on the host' : 'there'} first (mkdir -p ${onHost}), ${fix}` };
  }
  // The root itself: the sandbox's own tmpfs, or an image's layers, take it.
  if (root.args.fstype !== 'bind' || !findStep(plan.steps, 'mount.root-readonly')) return undefined;
  const onHost = join(root.args.source, seen);
  return isDir(onHost) ? undefined : { why: `the root ${root.args.source} is read-only (security.read_only)`, fix: `create it there first (mkdir -p ${onHost}), or drop read_only` };
}

/** The deepest mount of the plan that `path` (as the sandbox sees it) is in: a bind (hostRoot: one
 * of the host's folders that `rootfs: host` shows), a volume, a tmpfs; undefined for the root. */
function workdirMount(plan: Plan, path: string): { target: string; readOnly: boolean; source?: string; what: string; hostRoot?: boolean } | undefined {
  const hostRoot = findStep(plan.steps, 'rootfs.host');
  let home: ReturnType<typeof workdirMount>;
  for (const s of plan.steps) {
    const shown = s.kind === 'mount.bind' && hostRoot !== undefined && s.id === `mount:${s.args.target}` && hostRoot.args.dirs.includes(s.args.target);
    const m = s.kind === 'mount.bind' ? { target: s.args.target, readOnly: s.args.readOnly, source: s.args.source, hostRoot: shown, what: shown ? 'the host\'s own, which `rootfs: host` shows read-only' : `bound read-only from the host's ${s.args.source}` }
      : s.kind === 'mount.volume' ? { target: s.args.target, readOnly: s.args.readOnly, source: s.args.source, what: `the volume ${s.args.name}, mounted read-only` }
        : s.kind === 'mount.tmpfs' ? { target: s.args.target, readOnly: s.args.readOnly, what: 'a read-only tmpfs' } : undefined;
    if (m && within(path, m.target) && (!home || m.target.length > home.target.length)) home = m;
  }
  return home;
}

export const PREFLIGHT_CHECKS: readonly PreflightCheck[] = [checkSources, checkJoined, checkUser, checkWritable, checkWorkdir, checkPorts, checkName, checkRegistry];

const portError = (a: StepOf<'net.port'>['args'], e: unknown) => ((e as NodeJS.ErrnoException).code === 'EADDRINUSE'
  ? `host port ${a.hostPort}/${a.protocol}${a.hostIp ? ` on ${a.hostIp}` : ''} is already in use (by another program or sandbox); pick another host port`
  : `host address ${a.hostIp} cannot be used: ${(e as Error).message}`);

/** A preflight failure: the step it concerns, an errno and what to do. */
export class PreflightError extends Error {
  constructor(readonly step: Step, readonly errno: number, message: string) { super(message); }
}

/** The /etc that names the sandbox's users and groups: an image's is in its top-most layer that has one. */
export function rootEtc(plan: Plan): string {
  const image = findStep(plan.steps, 'rootfs.image');
  const dir = findStep(plan.steps, 'rootfs.dir');
  if (dir) return join(dir.args.path, 'etc');
  if (!image) return '/etc';
  const layers = image.args.layers ?? [];
  return join([...layers].reverse().find((l) => existsSync(join(l, 'etc', 'passwd'))) ?? layers[layers.length - 1] ?? '/nonexistent', 'etc');
}

/** The numeric ids of the plan's user, group and supplementary groups, named in `etc`. */
export function planIds(plan: Plan, etc: string): Ids {
  const ids = findStep(plan.steps, 'user.ids');
  const groups = findStep(plan.steps, 'user.groups');
  // A reduced plan (no user namespace) changes no id: the command runs as the caller.
  if (!ids) return { uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0, groups: [] };
  const image = findStep(plan.steps, 'rootfs.image');
  const shown = (file: string) => (image && etc !== '/etc' ? `the image's /etc/${file} (${image.args.ref})` : join(etc, file));
  try { return resolveIds(etc, ids.args.user, ids.args.group, groups?.args.groups ?? [], shown); } catch (e) { throw new PreflightError(ids, 22, (e as Error).message); }
}


/** Bind sources that are files, not folders (the child makes a file to mount them on). */
export function fileSources(plan: Plan): Set<string> {
  const files = new Set<string>();
  for (const s of stepsOf(plan.steps, 'mount.bind')) {
    try { if (!statSync(s.args.source).isDirectory()) files.add(s.args.source); } catch { throw new PreflightError(s, 2, `${s.args.source} does not exist on the host; create it first`); }
  }
  return files;
}

/** An image's overlayfs options: its layers under a private upper layer kept beside the store (not
 * in /run, which is memory). Without root of the host (host.root false), the child mounts it in
 * its own user namespace, where overlayfs reads and writes its whiteout and opaque attributes as
 * user.overlay.* (option userxattr: trusted.* needs root of the host), as the rootless unpack
 * wrote them. */
export function overlayOptions(plan: Plan, store: Store, host: Pick<HostFeatures, 'root'> = { root: runsAsRoot() }): { container: string; layers: string[]; readOnly: boolean; options?: string } {
  const image = findStep(plan.steps, 'rootfs.image');
  const root = findStep(plan.steps, 'mount.root');
  const readOnly = root?.args.fstype === 'overlay' && root.args.readOnly;
  const container = store.containerPath(plan.name);
  const layers = image?.args.layers ?? [];
  if (!layers.length) return { container, layers, readOnly };
  // Read-only, the init layer (engine/init-layer.ts: the mount points the image lacks) is on top;
  // so there are always the two lower layers overlayfs needs when it has no upper one.
  const lower = [...(readOnly ? [join(container, 'init')] : []), ...[...layers].reverse()];
  return { container, layers, readOnly, options: `lowerdir=${lower.join(':')}${readOnly ? '' : `,upperdir=${join(container, 'upper')},workdir=${join(container, 'work')}`}${host.root ? '' : ',userxattr'}` };
}

/** Without root of the host: the store (which holds the image's layers and the sandbox's upper
 * layer) must hold user.* xattrs, or overlayfs cannot read the layers' opaque folders nor write
 * its own. Tried before anything on the host changes; lsetxattr is libsbx's. */
export function checkImageStore(plan: Plan, store: Store, host: Pick<HostFeatures, 'root'>, lsetxattr: (path: string, name: string, value: Buffer) => void): void {
  const image = findStep(plan.steps, 'rootfs.image');
  if (!image || host.root) return;
  try { checkUserXattrs(store.root, lsetxattr); } catch (e) { throw new PreflightError(image, 95, (e as Error).message); }
}

/** Another sandbox and the host ports it holds now (state.ts's heldPorts: none once it has ended). */
export interface PortHolder { name: string; ports: readonly { hostIp: string; hostPort: number; protocol: string }[] }

/** The other sandboxes and the host ports each holds now, read from their state; none to read
 * when the plan publishes no port. */
export function portHolders(host: HostFeatures, plan: Plan): PortHolder[] {
  if (!stepsOf(plan.steps, 'net.port').length) return [];
  return listSandboxes(host).filter((r) => r.name !== plan.name).map((r) => ({ name: r.name, ports: heldPorts(r) }));
}

/** The running sandbox that holds this host port, if one does. nftables DNAT binds no socket, so the
 * bind test of reservePorts cannot see a sandbox's ports: they are read from the others' state.
 * A wildcard address (none, 0.0.0.0, ::) overlaps every address. */
export function portHolder(p: { hostIp: string; hostPort: number; protocol: string }, others: readonly PortHolder[]): { name: string; shown: string } | undefined {
  if (!p.hostPort) return undefined;
  const any = (ip: string) => ip === '' || ip === '0.0.0.0' || ip === '::';
  for (const o of others) {
    const q = o.ports.find((x) => x.hostPort === p.hostPort && x.protocol === p.protocol && (any(x.hostIp) || any(p.hostIp) || x.hostIp === p.hostIp));
    if (q) return { name: o.name, shown: `${q.hostIp ? (q.hostIp.includes(':') ? `[${q.hostIp}]` : q.hostIp) : '*'}:${q.hostPort}/${q.protocol}` };
  }
  return undefined;
}

const heldMessage = (h: { name: string; shown: string }) => `port ${h.shown} is published by running sandbox "${h.name}"; stop it with sandbox stop ${h.name}, or pick another host port`;

/** Takes every published host port, in the plan's order; `undo` gets each release (a socket of
 * this process). A port that a running sandbox of `others` publishes is refused first, naming it. */
export async function reservePorts(plan: Plan, undo: Pick<UndoList, 'local'>, started: (s: Step) => void, others: readonly PortHolder[] = []): Promise<{ step: StepOf<'net.port'>; rule: PortRule; hold: { fd: number; close(): Promise<void> } }[]> {
  const out = [];
  for (const step of stepsOf(plan.steps, 'net.port')) {
    const a = step.args;
    const holder = portHolder(a, others.filter((o) => o.name !== plan.name));
    if (holder) {
      started(step);
      throw new PreflightError(step, 98, heldMessage(holder));
    }
    try {
      const hold = await reservePort(a);
      undo.local(() => hold.close());
      out.push({ step, rule: { hostIp: a.hostIp, hostPort: hold.port, containerPort: a.containerPort, protocol: a.protocol }, hold });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      started(step);
      throw new PreflightError(step, code === 'EADDRINUSE' ? 98 : 99, portError(a, e));
    }
  }
  return out;
}
