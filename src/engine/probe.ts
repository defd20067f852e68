// What this host offers, read once from /proc and /sys by the CLI process (no privilege needed,
// nothing changed). The result is a HostFeatures value that the pure compiler takes as input.
import { existsSync, readFileSync, readlinkSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { availableParallelism, arch, release, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import type { HostFeatures, IdRangeHost, RootlessHost } from '../plan/types';
import { libraryPath, loadLibSbx } from '../ffi/libsbx';
import { CAPABILITIES, HOST_ROOT_DIRS } from '../model/tables';
import { subordinateRanges } from '../image/owners';

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

  let ioWeightFile: string | undefined;
  if (layout === 'v2') ioWeightFile = hasChildFile('/sys/fs/cgroup', 'io.weight') || !hasChildFile('/sys/fs/cgroup', 'io.bfq.weight') ? 'io.weight' : 'io.bfq.weight';
  else if (mounts.blkio) {
    // v1 weights come from CFQ (blkio.weight, gone since Linux 5.0) or BFQ (blkio.bfq.weight, only
    // where a disk's active scheduler is bfq); with neither, a weight has no effect.
    if (existsSync(`${mounts.blkio}/blkio.weight`)) ioWeightFile = 'blkio.weight';
    else if (activeSchedulers().includes('bfq')) ioWeightFile = 'blkio.bfq.weight';
  }

  const rootDirs: string[] = [];
  for (const d of HOST_ROOT_DIRS) {
    try {
      const st = lstatSync(d);
      if (st.isSymbolicLink()) rootDirs.push(`${d}->${readlinkSync(d)}`);
      else if (st.isDirectory()) rootDirs.push(d);
    } catch { /* absent on this host */ }
  }

  return {
    kernel: release().split('-')[0]!,
    arch: arch() === 'x64' ? 'x86_64' : arch(),
    cpus: availableParallelism(),
    root,
    caps: capsFromMask(capEff),
    userns: Number(read('/proc/sys/user/max_user_namespaces') ?? '0') > 0,
    seccomp: /^Seccomp:/m.test(status),
    overlayfs: /\toverlay$/m.test(read('/proc/filesystems') ?? '') || existsSync('/sys/module/overlay'),
    cgroup: { layout, controllers, swap, mounts, ioWeightFile },
    rootDirs,
    stateRoot: root ? '/run/sandbox' : rootlessStateRoot(),
    ...(root ? {} : { rootless: probeRootless() }),
  };
}

/** A rootless caller's state (sandboxes, leases, logs, locks) lives in its XDG_RUNTIME_DIR, which
 * only it can enter (logind makes it 0700); without one, in /tmp/sandbox-UID, which the engine
 * makes 0700 and refuses unless the caller owns it. */
export function rootlessStateRoot(env: NodeJS.ProcessEnv = process.env): string {
  const run = env.XDG_RUNTIME_DIR;
  return run && run.startsWith('/') ? join(run, 'sandbox') : `/tmp/sandbox-${process.geteuid?.()}/sandbox`;
}

/** An executable of that name on PATH, or undefined. */
export function onPath(name: string, path = process.env.PATH ?? '/usr/bin:/bin'): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir.startsWith('/')) continue;
    try { const p = join(dir, name); if ((statSync(p).mode & 0o111) !== 0) return p; } catch { /* not here */ }
  }
  return undefined;
}

function probeRootless(): RootlessHost {
  const uid = process.geteuid?.() ?? 0, gid = process.getegid?.() ?? 0;
  let user = String(uid);
  try { user = userInfo().username; } catch { /* no passwd entry: ranges by number only */ }
  return {
    uid, gid, user,
    subuid: subordinateRanges(read('/etc/subuid') ?? '', user, uid),
    subgid: subordinateRanges(read('/etc/subgid') ?? '', user, uid),
    newuidmap: onPath('newuidmap'), newgidmap: onPath('newgidmap'),
    pasta: onPath('pasta'), slirp4netns: onPath('slirp4netns'),
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

/** Where libsbx is, once it loaded and its ABI matched (for `doctor`); throws why it cannot load. */
export function engineLibrary(): string {
  loadLibSbx();
  return libraryPath();
}
