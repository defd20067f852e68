// The fidelity report of an export: every part of a sandbox that the target format (a Kubernetes
// Pod, an OCI bundle, a Compose service) cannot express, located at the config line behind it,
// with what to do about it. Pure: the caller says where a default lives in the file.
import type { PathSeg } from '../config/parse';
import { displayPath } from '../config/diagnostic';
import type { SandboxSpec, Source } from '../model/types';
import { SIGNALS } from '../model/tables';

export type Target = 'kube' | 'oci' | 'compose';

/** How findings name each target. */
export const TARGET_NAME: Record<Target, string> = { kube: 'a Kubernetes Pod', oci: 'an OCI bundle', compose: 'a Compose service' };

/** A location in the config file: a key's own line, or (for a default) the key that would change it. */
export interface Located { file: string; line: number; col: number }
/** `src` when it is a line of the file; else the nearest key of `key` the file has (its parent, …, 1:1). */
export type Locate = (src: Source, key: readonly PathSeg[]) => Located;

export interface Finding extends Located {
  /** The config key, as people write it: resources.pids, ulimits.nofile, volumes[1]. */
  key: string;
  /** Stable: `export-<what>`. */
  code: string;
  message: string;
  /** No document can be made without a change (a missing --image, a user name where a number is
   * needed): stays an error even under --lossy. */
  blocking?: boolean;
}

export interface Exported<T> {
  doc: T;
  findings: Finding[];
}

/** Collects the findings of one export, in the order they are found (the CLI sorts them by line). */
export class Report {
  readonly findings: Finding[] = [];
  constructor(readonly target: Target, private readonly locate: Locate) {}

  /** `what` has no equivalent in the target; `instead` says what to do (a sentence after a semicolon). */
  none(src: Source, key: PathSeg[], code: string, what: string, instead: string): void {
    this.add(src, key, code, `${what} has no equivalent in ${TARGET_NAME[this.target]}; ${instead}`);
  }

  add(src: Source, key: PathSeg[], code: string, message: string, blocking = false): void {
    const at = this.locate(src, key);
    this.findings.push({ ...at, key: displayPath(key) || '(file)', code: `export-${code}`, message, ...(blocking ? { blocking } : {}) });
  }
}

/** A line of the file: what the user wrote, as opposed to a default, the image's or the command line's. */
export const written = (src: Source): src is Located => typeof src === 'object';

/** The sentence every lossy finding ends with. */
export const LOSSY = 'remove it, or pass --lossy to export without it';

/** A DNS-1123 label (Kubernetes names, Compose project names): lower case, digits and -, at most 63. */
export function dnsLabel(name: string): string {
  const s = name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+/, '').slice(0, 63).replace(/-+$/, '');
  return s || 'sandbox';
}

/** The user and group as numbers, or the key that holds a name (which only the root file system can resolve). */
export function numericIds(spec: SandboxSpec): { uid?: number; gid?: number; names: ('user' | 'group')[] } {
  const u = spec.process.user;
  const num = (v: string | number | undefined) => (typeof v === 'number' ? v : v !== undefined && /^[0-9]+$/.test(v) ? Number(v) : undefined);
  const uid = u.user === 'root' ? 0 : num(u.user);
  const gid = u.group === 'root' ? 0 : num(u.group);
  const names: ('user' | 'group')[] = [];
  if (uid === undefined) names.push('user');
  if (u.group !== undefined && gid === undefined) names.push('group');
  return { uid, gid, names };
}

/** SIGTERM for 15: the names Compose and docker take. */
export function signalName(n: number): string {
  const found = Object.entries(SIGNALS).find(([, v]) => v === n);
  return found ? `SIG${found[0]}` : String(n);
}

/** The environment the file (or env_file) set, in order: not the defaults, nor the image's. HOSTNAME
 * is left out: every target sets it from the hostname itself. */
export function writtenEnv(spec: SandboxSpec): { name: string; value: string }[] {
  return spec.process.env.filter((e) => written(e.src) && e.name !== 'HOSTNAME').map(({ name, value }) => ({ name, value }));
}

/** `network.egress` where the format cannot say it at all (Compose, an OCI bundle): one finding at the key. */
export function egressFinding(spec: SandboxSpec, r: Report, instead: string): void {
  const eg = spec.network.egress;
  if (eg) r.none(eg.src, ['network', 'egress'], 'egress', `an egress policy (\`network.egress\`, ${eg.rules.length} rule${eg.rules.length === 1 ? '' : 's'})`, `${instead}; ${LOSSY}`);
}

/** Findings common to the formats that run an image on a container engine (Pod, Compose): the
 * root file system, the keys only sandbox has, and the namespaces the engine always makes. */
export function imageFindings(spec: SandboxSpec, r: Report, image: string | undefined, rootDirs: readonly string[]): { image?: string; hostDirs: string[] } {
  const rf = spec.rootfs;
  const dirs = rootDirs.map((d) => d.split('->')[0]!);
  if (rf.type === 'host') {
    if (!image) {
      r.add(rf.src, ['rootfs'], 'rootfs-host', `\`rootfs: host\` has no equivalent in ${TARGET_NAME[r.target]}, which runs an image; pass --image IMAGE (any image with what the command needs, such as localhost/busybox:latest): the host's ${dirs.join(', ')} are then mounted read-only over it, as rootfs: host does`, true);
      return { hostDirs: [] };
    }
    r.add(rf.src, ['rootfs'], 'rootfs-host', `\`rootfs: host\` has no exact equivalent in ${TARGET_NAME[r.target]}: it runs ${image} with the host's ${dirs.join(', ')} mounted read-only over it (hostPath${r.target === 'compose' ? '-like bind' : ''} volumes), so the image's other folders show where sandbox has an empty root, and the file runs only on hosts laid out as this one; pass --lossy to accept that`);
    return { image, hostDirs: dirs };
  }
  if (rf.type === 'dir') {
    if (!image) {
      r.add(rf.src, ['rootfs', 'path'], 'rootfs-dir', `a folder as the root (\`rootfs: {type: dir}\`) has no equivalent in ${TARGET_NAME[r.target]}, which runs an image; make one from it (\`tar -C ${rf.path} -c . | podman import - localhost/NAME\`) and pass --image localhost/NAME`, true);
      return { hostDirs: [] };
    }
    return { image, hostDirs: [] };
  }
  if (image) return { image, hostDirs: [] };
  if (/^(oci|docker-archive):/.test(rf.image)) {
    const kind = rf.image.startsWith('oci:') ? 'oci' : 'docker-archive';
    r.add(rf.src, ['image'], 'image-local', `\`${kind}:\` names an image on this host, which ${TARGET_NAME[r.target]} cannot pull; copy it into a registry or the engine's store (\`skopeo copy ${rf.image.replace(/^(oci|docker-archive):/, `${kind}:`)} containers-storage:localhost/NAME:TAG\`) and pass --image localhost/NAME:TAG`, true);
    return { hostDirs: [] };
  }
  return { image: rf.image, hostDirs: [] };
}

/** Keys no container engine has: umask, ulimits on a Pod, masked and read-only paths, … The ones
 * every export checks the same way. */
export function commonFindings(spec: SandboxSpec, r: Report, has: { ulimits: boolean; maskedPaths: boolean; umask: boolean; timeNs: boolean; registries: boolean }): void {
  const p = spec.process;
  if (!has.umask && p.umask.value !== 0o022) r.none(p.umask.src, ['umask'], 'umask', '`umask`', `the command can set its own (\`sh -c 'umask ${p.umask.value.toString(8).padStart(4, '0')}; exec …'\`); ${LOSSY}`);
  if (!has.ulimits) for (const l of spec.rlimits) r.none(l.src, ['ulimits', l.name], 'ulimit', `\`ulimits.${l.name}\``, r.target === 'kube' ? `the node's container runtime sets the ulimits of every Pod; ${LOSSY}` : LOSSY);
  if (!has.maskedPaths) {
    for (const m of spec.security.maskedPaths.filter((x) => written(x.src))) r.none(m.src, ['security', 'masked_paths'], 'masked-path', `masking ${m.value} (\`security.masked_paths\`)`, `the runtime masks only its default list; ${LOSSY}`);
    for (const m of spec.security.readonlyPaths.filter((x) => written(x.src))) r.none(m.src, ['security', 'readonly_paths'], 'readonly-path', `making ${m.value} read-only (\`security.readonly_paths\`)`, `mount a read-only volume there instead, or ${LOSSY}`);
  }
  if (!has.timeNs) {
    const t = spec.namespaces.find((n) => n.type === 'time')!;
    if (t.mode !== 'host') r.none(t.src, ['namespaces', 'time'], 'time-namespace', 'a time namespace (`namespaces.time`)', r.target === 'oci' ? `runtime-spec 1.0.2, which runc 1.1 reads, has none; ${LOSSY}` : LOSSY);
  }
  // `paths` and its protected defaults: not carried into any target yet, so said for each rule.
  for (const rule of spec.paths.rules) {
    const what = rule.origin === 'rule' ? `the \`paths\` rule ${rule.access} ${rule.path}` : `${rule.origin === 'hide' ? 'hiding' : 'keeping read-only'} ${rule.path} (a protected default of \`paths\`)`;
    r.none(rule.src, ['paths'], 'path-rule', what, `sandbox export does not carry path rules yet: mount a volume there instead, or ${LOSSY}`);
  }
  if (!has.registries && spec.rootfs.type === 'image') for (const [i] of spec.rootfs.insecure.entries()) r.none('default', ['insecure_registries', i], 'insecure-registry', '`insecure_registries`', `configure the registry on the engine (registries.conf, the daemon's insecure-registries); ${LOSSY}`);
}
