// Plan (and spec) → exposure facts: a plain, typed record of what a sandbox exposes, which the
// audit rules, the score and the diff read. This is the one module that reads `step.args`, so
// that a change to the step type is followed here only. The plan comes first, because it is what
// `up` applies; the spec fills in what the plan does not carry (insecure registries, the CPU limit
// in CPUs rather than a quota). Pure.
import type { HostFeatures, Plan } from '../plan/types';
import { compile } from '../plan/compile';
import { findStep, stepsOf } from '../plan/steps';
import type { EgressRule, NsName, SandboxSpec, Source } from '../model/types';
import { NAMESPACES } from '../model/types';
import { isLoopbackRegistry } from '../model/image';
import { parseConfig, type PathSeg } from '../config/parse';

/** Where a fact comes from: a config line, or (for a default, the image or the command line) the
 * nearest key of the file that would change it: its parent key, or the top of the file. */
export interface At { file: string; line: number; col: number; origin: 'file' | 'default' | 'image' | 'cli' }

/** Finds the key nearest to a path that the file has: the key itself, its parent, …, or 1:1. */
export interface Locator { file: string; locate(path: readonly PathSeg[]): { line: number; col: number } }

/** A limit; `value` null when there is none. */
export interface Limit { value: number | null; at: At }

export interface ExposureFacts {
  file: string;
  name: string;
  rootfs: { type: 'host' | 'dir' | 'image'; what: string; at: At; readOnly: boolean; readOnlyAt: At };
  network: { mode: 'none' | 'private' | 'host' | 'joined'; at: At };
  /** `network.egress`, the rules in order; absent without a policy (the network reaches anywhere).
   * `subnet`: the sandbox's own, whose gateway is the host. */
  egress?: { at: At; subnet: string; rules: (Pick<EgressRule, 'index' | 'action' | 'target' | 'ports' | 'protocols' | 'text'> & { at: At })[] };
  ports: { hostIp: string; hostPort: number; containerPort: number; protocol: string; everyAddress: boolean; at: At }[];
  namespaces: { type: NsName; mode: 'private' | 'host' | 'join'; path?: string; at: At }[];
  user: { user: string | number; group: string | number | null; root: boolean; at: At };
  /** Volumes bound from the host (not the read-only system folders of `rootfs: host`). */
  binds: { source: string; target: string; readOnly: boolean; propagation: string; at: At }[];
  /** Volumes sandbox keeps (named and anonymous): not host paths, so not binds. */
  volumes: { name: string; target: string; readOnly: boolean; anonymous: boolean; external: boolean; at: At }[];
  devices: { source: string; target: string; permissions: string; at: At }[];
  /** The capabilities the command keeps; `added` when the file asked for it (cap_add). */
  caps: { name: string; added: boolean; at: At }[];
  noNewPrivileges: { on: boolean; at: At };
  /** 'default', 'unconfined', or a profile's path. */
  seccomp: { profile: string; at: At };
  limits: { memory: Limit; pids: Limit; cpuMillis: Limit };
  /** Every other value the plan writes to the sandbox's cgroup (weights, reservations, swap, IO
   * rates), by step: a new resources key shows here, and in diff, with no code of its own. */
  cgroupWrites: { id: string; file: string; value: string; at: At }[];
  sysctls: { name: string; value: string; at: At }[];
  maskedPaths: { path: string; at: At }[];
  /** Paths kept read-only in a writable host folder (`paths`' protected defaults: git hooks, start-up files). */
  protectedPaths: { path: string; at: At }[];
  /** `paths` rules that show a credential of the caller's, or make a protected start-up file writable. */
  pathExposures: { path: string; what: 'credential' | 'protected'; access: string; pattern: string; at: At }[];
  insecureRegistries: { host: string; at: At }[];
}

/** The config key behind each kind of default, for locating it (or its parent) in the file. */
const KEY: Record<string, PathSeg[]> = {
  readOnly: ['security', 'read_only'], network: ['network'], user: ['user'], nnp: ['security', 'no_new_privileges'],
  seccomp: ['security', 'seccomp'], memory: ['resources', 'memory'], pids: ['resources', 'pids'], cpus: ['resources', 'cpus'],
  caps: ['cap_drop'], sysctls: ['sysctls'], masked: ['security', 'masked_paths'], rootfs: ['rootfs'], ports: ['ports'], volumes: ['volumes'],
};

/** Two step sources that are the same place: the swap cap Docker derives from `memory` cites the
 * memory line, and follows the memory limit `limits` shows already. */
const sameSource = (a: Source, b: Source | undefined) => typeof a === 'object' && typeof b === 'object' && a.file === b.file && a.line === b.line && a.col === b.col;

/** The cgroup writes that `limits` holds already (CPUs as a quota in two files on v1). */
const LIMIT_STEPS = new Set(['cgroup:memory', 'cgroup:pids', 'cgroup:cpus', 'cgroup:cpus-period']);

/** A fact's place: its config line, or (for a default) the nearest key of the file that would change it. */
type AtOf = (src: Source, key: PathSeg[]) => At;
type Steps = Plan['steps'];

const one = (steps: Steps, id: string) => steps.find((s) => s.id === id);

/** The root: what it is (the host's, a folder, an image) and whether it is read-only. */
function rootfsFacts(steps: Steps, spec: SandboxSpec, at: AtOf): ExposureFacts['rootfs'] {
  const rootStep = one(steps, 'rootfs')!;
  const roStep = one(steps, 'mount:/:ro');
  const mountRoot = findStep(steps, 'mount.root');
  return {
    type: rootStep.kind === 'rootfs.host' ? 'host' : rootStep.kind === 'rootfs.dir' ? 'dir' : 'image',
    what: rootStep.kind === 'rootfs.dir' ? rootStep.args.path : rootStep.kind === 'rootfs.image' ? rootStep.args.ref : 'host',
    at: at(rootStep.source, KEY.rootfs!),
    readOnly: !!roStep || (mountRoot?.args.fstype === 'overlay' && mountRoot.args.readOnly),
    readOnlyAt: at(roStep?.source ?? spec.rootfs.readOnly.src, KEY.readOnly!),
  };
}

/** The network's mode, its egress policy (when there is one) and the published ports. */
function networkFacts(steps: Steps, spec: SandboxSpec, at: AtOf): Pick<ExposureFacts, 'network' | 'egress' | 'ports'> {
  const netStep = steps.find((s) => s.stage === 'network' && ['net.host', 'net.joined', 'net.none', 'net.veth'].includes(s.kind));
  const netMode = netStep?.kind === 'net.host' ? 'host' : netStep?.kind === 'net.joined' ? 'joined' : netStep?.kind === 'net.veth' ? 'private' : 'none';
  return {
    network: { mode: netMode, at: at(netStep?.source ?? spec.network.mode.src, KEY.network!) },
    // The rules as normalize gave them, each at its item of the list.
    ...(spec.network.egress ? { egress: {
      at: at(spec.network.egress.src, ['network', 'egress']),
      subnet: spec.network.subnet.value,
      rules: spec.network.egress.rules.map(({ index, action, target, ports, protocols, text, src }) => ({ index, action, target, ports, protocols, text, at: at(src, ['network', 'egress', index - 1]) })),
    } } : {}),
    ports: stepsOf(steps, 'net.port').map((s) => {
      const { hostIp, hostPort, containerPort, protocol } = s.args;
      return { hostIp, hostPort, containerPort, protocol, everyAddress: hostIp === '' || hostIp === '0.0.0.0' || hostIp === '::', at: at(s.source, KEY.ports!) };
    }),
  };
}

/** Each namespace: the sandbox's own, joined by path, or the host's; and the user the command runs
 * as, which is the host's root only outside a user namespace of its own. */
function identityFacts(steps: Steps, at: AtOf): Pick<ExposureFacts, 'namespaces' | 'user'> {
  const userStep = findStep(steps, 'user.ids')!;
  const user = userStep.args.user;
  const userNsPrivate = one(steps, 'ns:user')?.kind === 'ns.new';
  return {
    namespaces: NAMESPACES.map((type) => {
      const s = one(steps, `ns:${type}`);
      const mode = s?.kind === 'ns.new' ? 'private' : s?.kind === 'ns.join' ? 'join' : 'host';
      return { type, mode, ...(s?.kind === 'ns.join' ? { path: s.args.path } : {}), at: at(s?.source ?? 'default', ['namespaces', type]) };
    }),
    user: { user, group: userStep.args.group, root: (user === 0 || user === '0' || user === 'root') && !userNsPrivate, at: at(userStep.source, KEY.user!) },
  };
}

/** What is mounted from outside the root: binds of host folders, volumes and devices. */
function mountFacts(steps: Steps, at: AtOf): Pick<ExposureFacts, 'binds' | 'volumes' | 'devices'> {
  const rootStep = one(steps, 'rootfs')!;
  const rootDirs = new Set(rootStep.kind === 'rootfs.host' ? rootStep.args.dirs.map((d) => d.split('->')[0]!) : []);
  return {
    binds: stepsOf(steps, 'mount.bind')
      // The system folders of rootfs: host, and a .git bound on itself to pin it (paths' defaults), are no binds of the file's.
      .filter((s) => !(rootDirs.has(s.args.target) && s.args.source === s.args.target) && !s.id.startsWith('pin:'))
      .map((s) => ({ source: s.args.source, target: s.args.target, readOnly: s.args.readOnly, propagation: s.args.propagation ?? 'rprivate', at: at(s.source, KEY.volumes!) })),
    volumes: stepsOf(steps, 'mount.volume').map((s) => {
      const made = stepsOf(steps, 'volume.create').find((v) => v.args.name === s.args.name);
      return { name: s.args.name, target: s.args.target, readOnly: s.args.readOnly, anonymous: made?.args.anonymous ?? false, external: made?.args.external ?? false, at: at(s.source, KEY.volumes!) };
    }),
    devices: [
      ...stepsOf(steps, 'dev.bind').map((s) => ({ source: s.args.source, target: s.args.target, permissions: s.args.permissions, at: at(s.source, ['devices']) })),
      ...stepsOf(steps, 'dev.make').map((s) => ({ source: s.args.type === 'p' ? 'a FIFO' : `${s.args.type} ${s.args.major}:${s.args.minor}`, target: s.args.target, permissions: s.args.permissions, at: at(s.source, ['devices']) })),
    ],
  };
}

/** The capabilities the command keeps, no_new_privileges and the seccomp profile. */
function privilegeFacts(steps: Steps, at: AtOf): Pick<ExposureFacts, 'caps' | 'noNewPrivileges' | 'seccomp'> {
  const seccompStep = steps.find((s) => s.id === 'seccomp')!;
  const nnpStep = one(steps, 'nnp')!;
  return {
    caps: stepsOf(steps, 'cap.keep').map((s) => ({ name: s.args.cap, added: s.source !== 'default', at: at(s.source, KEY.caps!) })),
    noNewPrivileges: { on: nnpStep.kind === 'nnp', at: at(nnpStep.source, KEY.nnp!) },
    seccomp: { profile: seccompStep.kind === 'seccomp' ? seccompStep.args.profile : 'unconfined', at: at(seccompStep.source, KEY.seccomp!) },
  };
}

/** The cgroup: the memory, pids and CPU limits, and every other value the plan writes there. */
function cgroupFacts(steps: Steps, spec: SandboxSpec, at: AtOf): Pick<ExposureFacts, 'limits' | 'cgroupWrites'> {
  const cg = (id: string) => stepsOf(steps, 'cgroup.set').find((s) => s.id === `cgroup:${id}`);
  const num = (s: { args: { value: string } } | undefined): number | null => {
    const v = s ? s.args.value : 'max';
    return v === 'max' || v === '-1' ? null : Number(v);
  };
  const r = spec.resources;
  return {
    limits: {
      memory: { value: num(cg('memory')), at: at(cg('memory')?.source ?? 'default', KEY.memory!) },
      pids: { value: num(cg('pids')), at: at(cg('pids')?.source ?? 'default', KEY.pids!) },
      // The plan holds a quota per period, whose form differs by cgroup layout; the spec holds CPUs.
      cpuMillis: { value: r.cpuMillis?.value ?? null, at: at(r.cpuMillis?.src ?? 'default', KEY.cpus!) },
    },
    cgroupWrites: stepsOf(steps, 'cgroup.set').filter((s) => !LIMIT_STEPS.has(s.id) && !(s.id === 'cgroup:memory-swap' && sameSource(s.source, cg('memory')?.source))).map((s) => ({ id: s.id, file: s.args.file, value: s.args.value, at: at(s.source, ['resources']) })),
  };
}

/** Kernel settings, the paths hidden, kept read-only or shown by `paths`, and insecure registries. */
function pathFacts(steps: Steps, spec: SandboxSpec, where: Locator, at: AtOf): Pick<ExposureFacts, 'sysctls' | 'maskedPaths' | 'protectedPaths' | 'pathExposures' | 'insecureRegistries'> {
  const insecure = spec.rootfs.type === 'image' ? spec.rootfs.insecure : [];
  return {
    sysctls: stepsOf(steps, 'sysctl').map((s) => ({ name: s.args.name, value: s.args.value, at: at(s.source, KEY.sysctls!) })),
    maskedPaths: stepsOf(steps, 'mount.mask').map((s) => ({ path: s.args.path, at: at(s.source, s.id.startsWith('hide:') || s.id.startsWith('deny:') ? ['paths'] : KEY.masked!) })),
    protectedPaths: stepsOf(steps, 'mount.readonly').filter((s) => s.id.startsWith('protect:')).map((s) => ({ path: s.args.path, at: at(s.source, ['paths']) })),
    pathExposures: spec.paths.exposed.map((e) => ({ path: e.path, what: e.what, access: e.access, pattern: e.pattern, at: at(e.src, ['paths']) })),
    // The spec keeps the list without locations: each entry is found in the file.
    // A loopback registry is plain HTTP whether it is listed or not, and no one else is on its path.
    insecureRegistries: insecure.flatMap((host, i) => (isLoopbackRegistry(host) ? [] : [{ host, at: { file: where.file, ...where.locate(['insecure_registries', i]), origin: 'file' as const } }])),
  };
}

export function exposureFacts(plan: Plan, spec: SandboxSpec, where: Locator): ExposureFacts {
  const at: AtOf = (src, key) => {
    if (typeof src === 'object') return { ...src, origin: 'file' };
    return { file: where.file, ...where.locate(key), origin: src };
  };
  const steps = plan.steps;
  return {
    file: where.file,
    name: plan.name,
    rootfs: rootfsFacts(steps, spec, at),
    ...networkFacts(steps, spec, at),
    ...identityFacts(steps, at),
    ...mountFacts(steps, at),
    ...privilegeFacts(steps, at),
    ...cgroupFacts(steps, spec, at),
    ...pathFacts(steps, spec, where, at),
  };
}

/** A Locator over a config's parsed value: the key at `path` if the file has it, else the
 * nearest parent key it has, else the top of the file, or of the config in a file that holds
 * more (`rooted`: the `sandbox` key of package.json). */
export function locatorOf(file: string, value: unknown, locate: (path: readonly PathSeg[], part?: 'key' | 'value') => { line: number; col: number }, rooted = false): Locator {
  return {
    file,
    locate(path) {
      let node: unknown = value;
      let have = 0;
      for (const seg of path) {
        if (node === null || typeof node !== 'object' || !Object.hasOwn(node, seg)) break;
        node = (node as Record<string | number, unknown>)[seg];
        have++;
      }
      if (!have) return rooted ? locate([], 'value') : { line: 1, col: 1 };
      const s = locate(path.slice(0, have), 'key');
      return { line: s.line, col: s.col };
    },
  };
}

/** A loaded config as audit and diff read it: its plan and spec, its text for locating defaults,
 * and the host it was compiled for. */
export interface AuditLoaded { plan: Plan; spec: SandboxSpec; file: string; absFile: string; root: PathSeg[]; text: string; host?: HostFeatures }

/** The facts of a loaded config; a default is located at its parent key in the file, or 1:1. */
export function factsOf(l: AuditLoaded): ExposureFacts {
  const parsed = parseConfig(l.file, Buffer.from(l.text), { root: l.root });
  // A reduced plan (this host makes no namespace) lacks the steps the facts are read from: the
  // file is scored as it asks to run, and the reduced mode's table follows the findings.
  let plan = l.plan;
  if (l.plan.reduced && l.host) { const { reduced: _, ...host } = l.host; plan = compile(l.spec, { ...host, userns: true }).plan; }
  return exposureFacts(plan, l.spec, locatorOf(l.file, parsed.value, parsed.locate, l.root.length > 0));
}
