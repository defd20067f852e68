// The sandbox's cgroup on the host, on cgroup v1/hybrid (one folder per controller hierarchy) and
// on v2 (one folder). Runs in the CLI process as root; every write is to a file the plan names.
import { constants, existsSync, mkdirSync, openSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';

/** O_PATH on Linux (node:fs does not export it). */
const O_PATH = 0o10000000;
import { dirname, join } from 'node:path';
import type { HostFeatures } from '../plan/types';

export class Cgroup {
  constructor(private readonly host: HostFeatures['cgroup'], readonly path: string) {}

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

  create(): void {
    if (this.v2) {
      // Controllers must be enabled in every ancestor's subtree_control for the leaf to have them.
      const root = this.host.mounts.unified ?? '/sys/fs/cgroup';
      const wanted = this.host.controllers.filter((c) => ['cpu', 'cpuset', 'memory', 'pids', 'io'].includes(c));
      let dir = root;
      for (const part of dirname(this.path).split('/').filter(Boolean)) {
        enable(dir, wanted);
        dir = join(dir, part);
        mkdirSync(dir, { recursive: true });
      }
      enable(dir, wanted);
    }
    for (const d of this.dirs()) {
      const cpuset = !this.v2 && this.host.mounts.cpuset !== undefined && d.startsWith(this.host.mounts.cpuset + '/');
      const parts = this.path.split('/');
      for (let i = 1; i <= parts.length; i++) {
        const level = join(d.slice(0, d.length - this.path.length), ...parts.slice(0, i));
        const leaf = i === parts.length;
        try { mkdirSync(level); } catch (e) { if (leaf || (e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; }
        // A v1 cpuset starts empty, and nothing can join an empty one: each empty level copies its parent's.
        if (cpuset) for (const f of ['cpuset.cpus', 'cpuset.mems']) copyUp(level, f);
      }
    }
  }

  set(controller: string, file: string, value: string): void {
    const dir = this.dirOf(controller);
    if (file === 'cpuset.mems' && value === 'inherit') return copyUp(dir, file);
    writeFileSync(join(dir, file), deviceValue(file, value));
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
      // The shared parents (sandbox/) go too once no other sandbox uses them.
      for (let p = dirname(d); p.length > d.length - this.path.length; p = dirname(p)) {
        try { rmdirSync(p); } catch { break; }
      }
    }
  }
}

function enable(dir: string, controllers: string[]) {
  let have: string[] = [];
  try { have = readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/); } catch { return; }
  const missing = controllers.filter((c) => !have.includes(c));
  if (missing.length) writeFileSync(join(dir, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
}

function copyUp(dir: string, file: string) {
  if (readFileSync(join(dir, file), 'utf8').trim()) return;
  writeFileSync(join(dir, file), readFileSync(join(dirname(dir), file), 'utf8').trim());
}

/** io.max and blkio.throttle.* name devices by major:minor; the plan names them by path. */
function deviceValue(file: string, value: string): string {
  if (!/^(io\.max|blkio\.throttle\.)/.test(file)) return value;
  const [path, ...rest] = value.split(' ');
  const rdev = statSync(path!).rdev;
  const major = Math.floor(rdev / 256) & 0xfff;
  const minor = (rdev & 0xff) | ((Math.floor(rdev / 4096) & ~0xff) >>> 0);
  return `${major}:${minor} ${rest.join(' ')}`;
}
