// What this host offers, read once from /proc and /sys by the CLI process (no privilege needed,
// nothing changed). The result is a HostFeatures value that the pure compiler takes as input.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, readlinkSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { availableParallelism, arch, release, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import type { HostFeatures, IdRangeHost, RootlessHost } from '../plan/types';
import { libraryPath, loadLibSbx } from '../ffi/libsbx';
import { CAPABILITIES, HOST_PROGRAMS, HOST_ROOT_DIRS, type HostProgram } from '../model/tables';
import { onPath, subordinateRanges } from '../image/owners';
import { volumeNames, volumeRoot } from '../image/volumes';

export { onPath };

const read = (p: string) => { try { return readFileSync(p, 'utf8'); } catch { return undefined; } };

export function capsFromMask(hex: string): string[] {
  const mask = BigInt('0x' + hex.trim());
  return CAPABILITIES.filter((_, i) => (mask >> BigInt(i)) & 1n);
}

export function probeHost(): HostFeatures {
  const status = read('/proc/self/status') ?? '';
  const capEff = /^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0';
  const uidMap = (read('/proc/self/uid_map') ?? '').trim().split(/\s+/);
  const initialNs = uidMap[0] === '0' && uidMap[1] === '0' && uidMap[2] === '4294967295';
  const root = process.geteuid?.() === 0 && initialNs;
  // Each program of the table, looked up once on PATH (a few stat calls each): without root now,
  // for the rootless probe; as root when first read, since only a compile of a private network
  // reads them (`down`, `stop` and `ps` never do).
  const rootlessPrograms = root ? undefined : hostPrograms();

  const host = {
    kernel: release().split('-')[0]!,
    arch: arch() === 'x64' ? 'x86_64' : arch(),
    cpus: availableParallelism(),
    root,
    caps: capsFromMask(capEff),
    ...usernsProbe(root, root ? undefined : onPath('unshare')),
    seccomp: /^Seccomp:/m.test(status),
    overlayfs: /\toverlay$/m.test(read('/proc/filesystems') ?? '') || existsSync('/sys/module/overlay'),
    cgroup: probeCgroups(root),
    rootDirs: probeRootDirs(),
    stateRoot: root ? '/run/sandbox' : rootlessStateRoot(),
    volumes: { root: volumeRoot(), existing: volumeNames() },
    ...(rootlessPrograms ? { rootless: probeRootless(rootlessPrograms) } : {}),
  } as HostFeatures;
  lazyField(host, 'programs', () => rootlessPrograms ?? hostPrograms());
  // The Landlock ABI, asked of the kernel through libsbx: loading koffi and the library costs
  // about 3 ms, which only a compile of a file with `paths:` rules (or doctor, or the engine, which
  // loads it anyway) needs; `plan` of other files, `ps`, `stop` and `down` never read it.
  return lazyField(host, 'landlock', () => landlockAbi().landlock);
}

/** Defines key on obj as an enumerable property computed when first read, and once (so that the
 * object prints and spreads as a plain one): what only some commands read is not probed by all. */
function lazyField<T extends object, K extends keyof T>(obj: T, key: K, compute: () => T[K]): T {
  let box: { value: T[K] } | undefined;
  return Object.defineProperty(obj, key, { enumerable: true, configurable: true, get: () => (box ??= { value: compute() }).value });
}

function hostPrograms(): HostFeatures['programs'] {
  const out: Partial<Record<HostProgram, string>> = {};
  for (const p of Object.keys(HOST_PROGRAMS) as HostProgram[]) { const at = onPath(p); if (at) out[p] = at; }
  return out;
}

/** Whether this caller can make a user namespace, and if not why. Root is told by the sysctl (its
 * sandboxes need none); any other caller is asked by trying: a child (`unshare --user --mount`,
 * which makes a user and a mount namespace and makes / private in it, as the engine's clone does)
 * fails where the kernel or an LSM refuses (user.max_user_namespaces = 0, Ubuntu's AppArmor
 * restriction, a container's seccomp), whatever the sysctls say. Then a rootless `up` runs in the
 * reduced mode (plan/reduced.ts). Runs in the CLI process; the child changes nothing and exits. */
function usernsProbe(root: boolean, unshare: string | undefined): Pick<HostFeatures, 'userns' | 'reduced'> {
  const max = Number(read('/proc/sys/user/max_user_namespaces') ?? '0');
  if (root) return { userns: max > 0 };
  if (!unshare) return max > 0 ? { userns: true } : { userns: false, reduced: { why: 'user.max_user_namespaces is 0' } };
  const r = spawnSync(unshare, ['--user', '--mount', 'true'], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], timeout: 5000 });
  if (r.status === 0) return { userns: true };
  const said = (r.stderr ?? '').trim().split('\n').pop()?.replace(/^unshare: /, '') || (r.error?.message ?? `unshare exited with ${r.status}`);
  return { userns: false, reduced: { why: `creating a user namespace failed: ${said}${max === 0 ? ' (user.max_user_namespaces is 0)' : ''}` } };
}

/** The cgroup hierarchies mounted here (/proc/self/mountinfo): each v1 controller's, and the unified one. */
function cgroupMounts(): { mounts: Record<string, string>; v1: boolean; v2root: boolean } {
  const mounts: Record<string, string> = {};
  let v1 = false, v2root = false;
  for (const line of (read('/proc/self/mountinfo') ?? '').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const mountPoint = pre.split(' ')[4]!;
    const [fstype, , opts = ''] = post.split(' ');
    if (fstype === 'cgroup2') {
      mounts.unified = mountPoint;
      if (mountPoint === '/sys/fs/cgroup') v2root = true;
    } else if (fstype === 'cgroup') {
      v1 = true;
      for (const o of opts.split(',')) if (['memory', 'cpu', 'cpuacct', 'cpuset', 'pids', 'blkio', 'devices', 'freezer'].includes(o)) mounts[o] = mountPoint;
    }
  }
  return { mounts, v1, v2root };
}

/** The layout, the controllers the sandbox can use (for a caller that is not root, those of its delegated subtree), swap accounting and the IO weight file. */
function probeCgroups(root: boolean): HostFeatures['cgroup'] {
  const { mounts, v1, v2root } = cgroupMounts();
  let layout: HostFeatures['cgroup']['layout'] = 'none';
  let controllers: string[] = [];
  let swap = false;
  if (v2root && !v1) {
    layout = 'v2';
    controllers = (read('/sys/fs/cgroup/cgroup.controllers') ?? '').trim().split(/\s+/).filter(Boolean);
    // memory.swap.max exists in every non-root cgroup unless swap accounting is off (Linux ≥ 5.8
    // accounts by default; these boot options turn it off).
    const cmdline = read('/proc/cmdline') ?? '';
    swap = controllers.includes('memory') && !/\b(cgroup\.memory=[^ ]*noswap|swapaccount=0)\b/.test(cmdline);
  } else if (v1) {
    layout = mounts.unified ? 'hybrid' : 'v1';
    controllers = ['memory', 'cpu', 'cpuset', 'pids', 'blkio', 'devices', 'freezer'].filter((c) => mounts[c]);
    swap = mounts.memory !== undefined && existsSync(`${mounts.memory}/memory.memsw.limit_in_bytes`);
  }

  // Only root may write the host's cgroup tree; any other caller can limit a sandbox only inside
  // a subtree delegated to it, and only with the controllers enabled down to it.
  let delegated: string | undefined;
  if (!root) {
    if (layout === 'v2') {
      const own = ownCgroup(read('/proc/self/cgroup') ?? '');
      delegated = own === undefined ? undefined : walkDelegation(own, process.geteuid?.() ?? -1, cgroupFsReader(mounts.unified!)).root;
    }
    controllers = delegated === undefined ? [] : (read(join(mounts.unified!, delegated, 'cgroup.controllers')) ?? '').trim().split(/\s+/).filter(Boolean);
    swap = swap && controllers.includes('memory');
  }
  // The IO weight file, looked for when first read: on a v1 host that reads every disk's scheduler
  // (about 0.4 ms of each start), which only a file with `io_weight`, doctor and an OCI bundle's
  // blockIO weight need.
  const cgroup = lazyField({ layout, controllers, swap, mounts } as HostFeatures['cgroup'], 'ioWeightFile', () => ioWeightFile(layout, mounts));
  return delegated !== undefined ? Object.assign(cgroup, { delegated }) : cgroup;
}

function ioWeightFile(layout: HostFeatures['cgroup']['layout'], mounts: Record<string, string>): string | undefined {
  if (layout === 'v2') return hasChildFile('/sys/fs/cgroup', 'io.weight') || !hasChildFile('/sys/fs/cgroup', 'io.bfq.weight') ? 'io.weight' : 'io.bfq.weight';
  if (!mounts.blkio) return undefined;
  // v1 weights come from CFQ (blkio.weight, gone since Linux 5.0) or BFQ (blkio.bfq.weight, only
  // where a disk's active scheduler is bfq); with neither, a weight has no effect.
  if (existsSync(`${mounts.blkio}/blkio.weight`)) return 'blkio.weight';
  if (activeSchedulers().includes('bfq')) return 'blkio.bfq.weight';
  return undefined;
}

/** The folders of HOST_ROOT_DIRS this host has, a symlink as `/bin->usr/bin`. */
function probeRootDirs(): string[] {
  const rootDirs: string[] = [];
  for (const d of HOST_ROOT_DIRS) {
    try {
      const st = lstatSync(d, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isSymbolicLink()) rootDirs.push(`${d}->${readlinkSync(d)}`);
      else if (st.isDirectory()) rootDirs.push(d);
    } catch { /* absent on this host */ }
  }
  return rootDirs;
}

/** A rootless caller's state (sandboxes, leases, logs, locks) lives in its XDG_RUNTIME_DIR, which
 * only it can enter (logind makes it 0700); without one, in /tmp/sandbox-UID, which the engine
 * makes 0700 and refuses unless the caller owns it. */
export function rootlessStateRoot(env: NodeJS.ProcessEnv = process.env): string {
  const run = env.XDG_RUNTIME_DIR;
  return run && run.startsWith('/') ? join(run, 'sandbox') : `/tmp/sandbox-${process.geteuid?.()}/sandbox`;
}

function probeRootless(programs: HostFeatures['programs']): RootlessHost {
  const uid = process.geteuid?.() ?? 0, gid = process.getegid?.() ?? 0;
  let user = String(uid);
  try { user = userInfo().username; } catch { /* no passwd entry: ranges by number only */ }
  return {
    uid, gid, user,
    subuid: subordinateRanges(read('/etc/subuid') ?? '', user, uid),
    subgid: subordinateRanges(read('/etc/subgid') ?? '', user, uid),
    newuidmap: programs.newuidmap, newgidmap: programs.newgidmap,
    pasta: programs.pasta, slirp4netns: programs.slirp4netns,
    tun: (() => { try { accessSync('/dev/net/tun', constants.R_OK | constants.W_OK); return true; } catch { return false; } })(),
    route: /^\S+\t00000000\t/m.test(read('/proc/net/route') ?? ''),
  };
}

/** The IO schedulers in use on the host's block devices ([bfq] in /sys/block/X/queue/scheduler). */
function activeSchedulers(): string[] {
  try {
    return readdirSync('/sys/block').map((d) => /\[(\w[\w-]*)\]/.exec(read(`/sys/block/${d}/queue/scheduler`) ?? '')?.[1] ?? '').filter(Boolean);
  } catch { return []; }
}

/** The root cgroup has no memory.swap.max; any child that has the memory controller does. */
function hasChildFile(dir: string, file: string): boolean {
  try {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory() && existsSync(`${dir}/${e.name}/${file}`)) return true;
  } catch { /* unreadable */ }
  return false;
}

/** The kernel's Landlock ABI, asked of the kernel by libsbx (a query that changes nothing); none
 * where the kernel has no Landlock, it is off (lsm=), or libsbx cannot load. */
function landlockAbi(): { landlock?: number } {
  try { const v = loadLibSbx().landlockAbi(); return v > 0 ? { landlock: v } : {}; } catch { return {}; }
}

/** Where libsbx is, once it loaded and its ABI matched (for `doctor`); throws why it cannot load. */
export function engineLibrary(): string {
  loadLibSbx();
  return libraryPath();
}

/** The caller's cgroup on the unified hierarchy, from /proc/self/cgroup's `0::/…` line, as a path
 * relative to the unified mount ('' for its root); undefined without one. */
export function ownCgroup(procSelfCgroup: string): string | undefined {
  const m = /^0::\/(.*)$/m.exec(procSelfCgroup);
  return m ? m[1]!.replace(/\/+$/, '') : undefined;
}

/** What the delegation walk needs of the cgroup file system, so that it can be run on a fake one. */
export interface CgroupFsReader {
  /** The uid owning the folder at this path (relative to the unified mount); undefined if absent. */
  owner(path: string): number | undefined;
  /** Whether the caller may write this file (a path relative to the unified mount). */
  writable(path: string): boolean;
}

/** The result of the walk: the delegation root, and the first folder above it that is not
 * delegated with the reason (for `doctor`). */
export interface DelegationWalk {
  root?: string;
  stop?: { path: string; why: string };
}

/** Why `path` is not a folder delegated to `uid`, or undefined when it is one: owned by the caller,
 * with cgroup.procs (to move processes in) and cgroup.subtree_control (to enable controllers for
 * its children) writable by it. */
function notDelegated(path: string, uid: number, r: CgroupFsReader): string | undefined {
  const owner = r.owner(path);
  if (owner === undefined) return 'does not exist';
  if (owner !== uid) return `is owned by uid ${owner}, not by you (uid ${uid})`;
  for (const f of ['cgroup.procs', 'cgroup.subtree_control']) if (!r.writable(join(path, f))) return `is yours, but its ${f} is not writable by you`;
  return undefined;
}

/** From the caller's own cgroup upwards, the topmost folder such that it and every one below it
 * down to the caller's are delegated to `uid`: what systemd's Delegate=yes gives (a unit's folder
 * chowned with its cgroup.procs, cgroup.subtree_control and cgroup.threads). The root cgroup is
 * never a delegation. Pure over the reader. */
export function walkDelegation(own: string, uid: number, r: CgroupFsReader): DelegationWalk {
  let root: string | undefined;
  for (let path = own; path !== ''; path = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '') {
    const why = notDelegated(path, uid, r);
    if (why !== undefined) return { root, stop: { path, why } };
    root = path;
  }
  return { root, ...(root === undefined ? { stop: { path: '', why: 'is the root cgroup, which only root may write' } } : {}) };
}

/** The real cgroup file system under the unified mount, as the caller sees it (access(2) with its
 * real uid, which is its effective one: sandbox is never setuid). */
export function cgroupFsReader(mount: string): CgroupFsReader {
  return {
    owner: (p) => { try { return statSync(join(mount, p)).uid; } catch { return undefined; } },
    writable: (p) => { try { accessSync(join(mount, p), constants.W_OK); return true; } catch { return false; } },
  };
}

/** `doctor`'s row for a caller that is not root: whether a sandbox's limits can apply, and if not,
 * why and what to do. Reads /proc/self/cgroup and the unified hierarchy again for the reason
 * (or what `io` gives, for the tests). */
export function describeDelegation(h: HostFeatures, io: { own?: string; uid: number; reader: CgroupFsReader } = {
  own: ownCgroup(read('/proc/self/cgroup') ?? ''), uid: process.geteuid?.() ?? -1, reader: cgroupFsReader(h.cgroup.mounts.unified ?? '/sys/fs/cgroup'),
}): string {
  const cg = h.cgroup;
  if (cg.layout === 'v1' || cg.layout === 'hybrid') return `cgroup ${cg.layout} cannot be delegated to a user: limits need a host booted with pure cgroup v2 (systemd.unified_cgroup_hierarchy=1)`;
  if (cg.layout === 'none') return 'no cgroup file system is mounted: limits cannot apply';
  if (cg.delegated !== undefined) return `cgroup v2, delegated at /${cg.delegated}, controllers ${cg.controllers.length ? cg.controllers.join(' ') : 'none (enable them in the parent\'s cgroup.subtree_control)'}`;
  const { own, uid, reader } = io;
  if (own === undefined) return 'no delegated subtree: /proc/self/cgroup names no cgroup v2 folder';
  const walk = walkDelegation(own, uid, reader);
  const service = `user.slice/user-${uid}.slice/user@${uid}.service`;
  // A login shell sits in session-N.scope, beside the user manager's delegated folder, not in it.
  const hint = walkDelegation(service, uid, reader).root !== undefined
    ? `; your user manager's /${service} is delegated to you: run sandbox under it with \`systemd-run --user --scope sandbox …\``
    : '; ask for Delegate=yes (systemd: `systemctl edit user@.service`, [Service] Delegate=yes), or run sandbox in a unit that has it';
  return `no delegated subtree: your cgroup /${walk.stop?.path ?? own} ${walk.stop?.why ?? 'is not yours'}${hint}`;
}
