// The sandbox's cgroup on the host, on cgroup v1/hybrid (one folder per controller hierarchy) and
// on v2 (one folder). Runs in the CLI process: as root anywhere in the tree, or, for any other
// caller on v2, only inside the subtree delegated to it (HostFeatures.cgroup.delegated), which it
// owns. Every write is to a file the plan names, or to a subtree_control on the way down to it.
import { constants, existsSync, mkdirSync, openSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';

/** O_PATH on Linux (node:fs does not export it). */
const O_PATH = 0o10000000;
import { dirname, join } from 'node:path';
import type { HostFeatures } from '../plan/types';

export class Cgroup {
  /** `keep`: a level of the path that was there before this cgroup was made, which remove() keeps
   * with all above it; without it, remove() also takes the emptied shared parents (sandbox/). */
  constructor(private readonly host: HostFeatures['cgroup'], readonly path: string, private readonly keep?: string) {}

  private get v2(): boolean { return this.host.layout === 'v2'; }

  /** The folders that make up this cgroup: one on v2, one per controller on v1; none for the
   * empty path, which a rootless sandbox without a delegated subtree has. */
  dirs(): string[] {
    if (!this.path) return [];
    if (this.v2) return [join(this.host.mounts.unified ?? '/sys/fs/cgroup', this.path)];
    return this.host.controllers.filter((c) => this.host.mounts[c]).map((c) => join(this.host.mounts[c]!, this.path));
  }

  private dirOf(controller: string): string {
    if (this.v2) return this.dirs()[0]!;
    const m = this.host.mounts[controller];
    if (!m) throw Object.assign(new Error(`the ${controller} controller is not mounted`), { code: 'ENOENT' });
    return join(m, this.path);
  }

  /** Processes in the cgroup now; [] when it does not exist. */
  pids(): number[] {
    const out = new Set<number>();
    for (const d of this.dirs()) {
      try { for (const l of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (l) out.add(Number(l)); } catch { /* absent */ }
    }
    return [...out];
  }

  exists(): boolean { return this.dirs().some((d) => existsSync(d)); }

  /** The deepest level above the leaf that exists now in some hierarchy, for the undo record, so
   * that removal never takes a level this run did not make (a cgroup_parent that was there, or an
   * OCI bundle's cgroupsPath under another manager's tree). '' when none is, or when it is only the
   * shared sandbox/ parent (root's, or the one in a delegated subtree), which goes with the last
   * sandbox in it; remove() never goes above a delegation root anyway. */
  existingAncestor(): string {
    const parts = this.path.split('/');
    for (let i = parts.length - 1; i > 0; i--) {
      const level = parts.slice(0, i).join('/');
      if (this.dirs().some((d) => existsSync(join(d.slice(0, d.length - this.path.length), level)))) return level === 'sandbox' || level === `${this.base}/sandbox` ? '' : level;
    }
    return '';
  }

  /** The folder (relative to the unified mount) above which this cgroup's code never writes: the
   * delegation root when the path lies in the caller's delegated subtree, else the mount's root. */
  private get base(): string {
    const d = this.host.delegated;
    return this.v2 && d !== undefined && this.path.startsWith(d + '/') ? d : '';
  }

  /** Makes the folders from the top down. Another sandbox's remove() may take away a shared
   * parent (sandbox/) between this mkdir of it and the mkdir of the level below: the kernel then
   * says ENOENT (or ENODEV, for a file of a folder removed while it was read), and the whole path
   * is made again. The leaf cannot vanish that way once made (a
   * parent holding it is not empty), so a retry skips the hierarchies whose leaf it has made. */
  create(): void {
    const made = new Set<string>();
    for (let attempt = 0; ; attempt++) {
      try { return this.v2 ? this.createV2() : this.createV1(made); } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if ((code !== 'ENOENT' && code !== 'ENODEV') || attempt >= 20) throw e;
      }
    }
  }

  private createV1(made: Set<string>): void {
    for (const d of this.dirs()) {
      if (made.has(d)) continue;
      const cpuset = !this.v2 && this.host.mounts.cpuset !== undefined && d.startsWith(this.host.mounts.cpuset + '/');
      const parts = this.path.split('/');
      for (let i = 1; i <= parts.length; i++) {
        const level = join(d.slice(0, d.length - this.path.length), ...parts.slice(0, i));
        const leaf = i === parts.length;
        try { mkdirSync(level); } catch (e) { if (leaf || (e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; }
        // A v1 cpuset starts empty, and nothing can join an empty one: each empty level copies its parent's.
        if (cpuset) for (const f of ['cpuset.cpus', 'cpuset.mems']) copyUp(level, f);
      }
      made.add(d);
    }
  }

  /** Controllers must be enabled in every ancestor's subtree_control for the leaf to have them: from
   * the delegation root down (a non-root caller may write nothing above it; what is enabled above
   * is what its cgroup.controllers lists), or from the root for root. */
  private createV2(): void {
    const mount = this.host.mounts.unified ?? '/sys/fs/cgroup';
    const wanted = this.host.controllers.filter((c) => ['cpu', 'cpuset', 'memory', 'pids', 'io'].includes(c));
    const base = this.base;
    const parts = (base ? this.path.slice(base.length + 1) : this.path).split('/').filter(Boolean);
    let dir = join(mount, base);
    for (let i = 0; i < parts.length; i++) {
      enable(dir, wanted, { delegationRoot: base !== '' && i === 0, rootless: this.host.delegated !== undefined });
      dir = join(dir, parts[i]!);
      try { mkdirSync(dir); } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (i === parts.length - 1 || code !== 'EEXIST') throw code === 'EACCES' || code === 'EPERM' ? notYours(dirname(dir), e as Error) : e;
      }
    }
  }

  set(controller: string, file: string, value: string): void {
    const dir = this.dirOf(controller);
    // cpuset v1 admits no task until cpus and mems are set: `inherit` takes the parent's.
    if (file.startsWith('cpuset.') && value === 'inherit') return copyUp(dir, file);
    writeFileSync(join(dir, file), deviceValue(file, value));
  }

  /** Whether the controller's folder exists (a stat: no read of its process list). */
  hasFolder(controller: string): boolean {
    try { return statSync(this.dirOf(controller), { throwIfNoEntry: false })?.isDirectory() === true; } catch { return false; }
  }

  /** A file of the controller's folder, as it reads now; undefined when absent. */
  read(controller: string, file: string): string | undefined {
    try { return readFileSync(join(this.dirOf(controller), file), 'utf8'); } catch { return undefined; }
  }

  /** On v2, the folder (the supervisor opens it for clone3); undefined on v1. */
  v2Dir(): string | undefined { return this.v2 ? this.dirs()[0] : undefined; }

  /** On v2, an O_PATH fd of the folder, for clone3(CLONE_INTO_CGROUP); -1 on v1. */
  openForClone(): number {
    if (!this.v2) return -1;
    try { return openSync(this.dirs()[0]!, O_PATH | constants.O_DIRECTORY); } catch { return -1; }
  }

  /** The cgroup.procs files a restart's helper writes itself into (sbx_respawn); none without a cgroup. */
  procsFiles(): string[] {
    return this.path ? this.dirs().map((d) => join(d, 'cgroup.procs')) : [];
  }

  attach(pid: number): void {
    for (const d of this.dirs()) writeFileSync(join(d, 'cgroup.procs'), String(pid));
  }

  /** How many times the kernel's OOM killer acted in this cgroup. */
  oomKills(): number {
    try {
      const text = readFileSync(join(this.dirOf('memory'), this.v2 ? 'memory.events' : 'memory.oom_control'), 'utf8');
      return Number(/^oom_kill (\d+)/m.exec(text)?.[1] ?? 0);
    } catch { return 0; }
  }

  /** Removes the folders; the kernel refuses while a process is still leaving, so it retries briefly. */
  async remove(): Promise<void> {
    for (const d of this.dirs().reverse()) {
      for (let i = 0; ; i++) {
        try { rmdirSync(d); break; } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          if (code !== 'EBUSY' || i > 200) throw e;
          await new Promise((r) => setTimeout(r, 5));
        }
      }
      // The shared parents (sandbox/) go too once no other sandbox uses them, never the delegation
      // root nor anything above it.
      const kept = this.keep && this.path.startsWith(this.keep + '/') ? this.keep : this.v2 ? this.base : '';
      const floor = d.length - this.path.length + kept.length;
      for (let p = dirname(d); p.length > floor; p = dirname(p)) {
        try { rmdirSync(p); } catch { break; }
      }
    }
  }
}

/** Enables the controllers this level's children lack. The kernel refuses (EBUSY) in a cgroup that
 * holds processes itself (v2's no-internal-process rule), which is where a caller stands when it
 * runs sandbox from its delegation root: that error says so and how to move. */
function enable(dir: string, controllers: string[], where: { delegationRoot: boolean; rootless: boolean }) {
  let have: string[] = [];
  try { have = readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/); } catch { return; }
  const missing = controllers.filter((c) => !have.includes(c));
  if (!missing.length) return;
  try { writeFileSync(join(dir, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' ')); } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') throw notYours(dir, e as Error);
    if (code !== 'EBUSY') throw e;
    const procs = (() => { try { return readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim().split('\n').filter(Boolean); } catch { return []; } })();
    const who = procs.includes(String(process.pid)) ? ', this sandbox command among them' : procs.length ? ` (${procs.length}: ${procs.slice(0, 5).join(' ')}${procs.length > 5 ? ' …' : ''})` : '';
    throw new Error(`cannot enable the ${missing.join(' ')} controller${missing.length > 1 ? 's' : ''} in ${dir}: ` +
      `${where.delegationRoot ? 'this delegated cgroup' : 'this cgroup'} holds processes${who}, and cgroup v2 gives controllers only to the children of a cgroup with none (EBUSY). ` +
      (where.rootless
        ? 'Run sandbox from a child cgroup of it: `systemd-run --user --scope sandbox …`, or in a systemd unit with Delegate=yes'
        : `Move those processes into a child cgroup of ${dir}`));
  }
}

/** A write the caller may not make: above its delegated subtree, or with no subtree delegated. */
function notYours(dir: string, e: Error): Error {
  return new Error(`cannot write the cgroup ${dir}: it is not delegated to you (${(e as NodeJS.ErrnoException).code}); limits for a sandbox run without root need a cgroup v2 subtree delegated with systemd's Delegate=yes (\`sandbox doctor\` says what this host has)`);
}

function copyUp(dir: string, file: string) {
  if (readFileSync(join(dir, file), 'utf8').trim()) return;
  writeFileSync(join(dir, file), readFileSync(join(dirname(dir), file), 'utf8').trim());
}

/** io.max, blkio.throttle.* and devices.allow name devices by major:minor; the plan names them by
 * path (a devices.allow rule of the file is already in numbers). */
function deviceValue(file: string, value: string): string {
  const allow = file === 'devices.allow' && value.startsWith('/');
  if (!/^(io\.max|blkio\.throttle\.)/.test(file) && !allow) return value;
  const [path, ...rest] = value.split(' ');
  const st = statSync(path!);
  const major = Math.floor(st.rdev / 256) & 0xfff;
  const minor = (st.rdev & 0xff) | ((Math.floor(st.rdev / 4096) & ~0xff) >>> 0);
  return `${allow ? (st.isBlockDevice() ? 'b ' : 'c ') : ''}${major}:${minor} ${rest.join(' ')}`;
}
