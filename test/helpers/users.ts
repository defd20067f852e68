// Rootless tests run the CLI as users they create themselves (useradd, which gives each one a
// 65536-id range in /etc/subuid and /etc/subgid, as on a fresh Debian) and remove afterwards.
// Made and removed by the test process, as root; the commands run with setpriv as the user, with
// the environment a login gives (HOME, USER, XDG_RUNTIME_DIR made as logind makes it).
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, chownSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT } from './load';

export interface TestUser { name: string; uid: number; gid: number; home: string; runtimeDir: string }

const made: TestUser[] = [];

/** A new user with its own subordinate id ranges (none with subids: false, as for a user made
 * before a distribution gave ranges) and a logind-style XDG_RUNTIME_DIR. With `fixed`, the user is
 * named `prefix` itself, and one of that name left by an earlier run of the same test that was
 * killed before its after() hook is removed first, with its processes and folders. */
export function makeUser(prefix = 'sbxt', opts: { subids?: boolean; fixed?: boolean } = {}): TestUser {
  const name = opts.fixed ? prefix : `${prefix}${process.pid % 10000}${made.length}${Math.floor(Math.random() * 1000)}`.slice(0, 31);
  if (opts.fixed) removeLeftUser(name);
  execFileSync('useradd', ['-m', '-s', '/bin/sh', ...(opts.subids === false ? ['-K', 'SUB_UID_COUNT=0', '-K', 'SUB_GID_COUNT=0'] : []), name], { stdio: 'pipe' });
  const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
  const runtimeDir = `/run/user/${uid}`;
  mkdirSync(runtimeDir, { recursive: true, mode: 0o700 });
  chownSync(runtimeDir, uid, gid);
  chmodSync(runtimeDir, 0o700);
  const u = { name, uid, gid, home: `/home/${name}`, runtimeDir };
  made.push(u);
  return u;
}

/** Removes the user, its home, its runtime folder, its subordinate ranges (userdel does those) and
 * its scratch folders. */
export function removeUser(u: TestUser): void {
  // Any process of the user left by a failed test would keep userdel from working: end them, by PID.
  for (const pid of pidsOf(u.uid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  rmSync(u.runtimeDir, { recursive: true, force: true });
  spawnSync('userdel', ['-r', '-f', u.name], { stdio: 'ignore' });
  for (const d of tmps.get(u) ?? []) rmSync(d, { recursive: true, force: true });
  tmps.delete(u);
  const i = made.indexOf(u);
  if (i >= 0) made.splice(i, 1);
}

/** A user named `name` that an earlier, killed run left: its processes (by PID), runtime folder,
 * home, subordinate ranges and scratch folders (userTmp's, named after it). Nothing if there is none. */
function removeLeftUser(name: string): void {
  const id = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  if (id.status !== 0) return;
  const uid = Number(id.stdout.trim());
  for (const pid of pidsOf(uid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  rmSync(`/run/user/${uid}`, { recursive: true, force: true });
  spawnSync('userdel', ['-r', '-f', name], { stdio: 'ignore' });
  for (const d of require('node:fs').readdirSync(tmpdir()) as string[]) if (d.startsWith(`sbx-user-${name}-`)) rmSync(join(tmpdir(), d), { recursive: true, force: true });
}

/** PIDs of processes whose real uid is `uid` (from /proc/PID/status). */
export function pidsOf(uid: number): number[] {
  const out: number[] = [];
  for (const p of require('node:fs').readdirSync('/proc') as string[]) {
    if (!/^\d+$/.test(p)) continue;
    try { if (new RegExp(`^Uid:\\s+${uid}\\s`, 'm').test(readFileSync(`/proc/${p}/status`, 'utf8'))) out.push(Number(p)); } catch { /* gone */ }
  }
  return out;
}

/** The repository as the user can reach it: ROOT itself when every folder above it lets others
 * through, otherwise a bind of it under a world-traversable temporary folder (removed by release). */
let reach: { path: string; release(): void } | undefined;
export function repoForUsers(): string {
  if (reach) return reach.path;
  let ok = true;
  for (let d = ROOT; d !== '/'; d = dirname(d)) if ((statSync(d).mode & 0o001) === 0) ok = false;
  if (ok) { reach = { path: ROOT, release: () => undefined }; return ROOT; }
  const dir = mkdtempSync(join('/tmp', 'sbx-repo-'));
  chmodSync(dir, 0o755);
  const path = join(dir, 'repo');
  mkdirSync(path);
  execFileSync('mount', ['--bind', ROOT, path]);
  reach = { path, release: () => { spawnSync('umount', ['-l', path]); rmSync(dir, { recursive: true, force: true }); } };
  return path;
}

export function releaseRepo(): void { reach?.release(); reach = undefined; }

export interface UserRun { code: number | null; signal: NodeJS.Signals | null; out: string; err: string }

function loginEnv(u: TestUser, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', HOME: u.home, USER: u.name, LOGNAME: u.name,
    XDG_RUNTIME_DIR: u.runtimeDir, NO_COLOR: '1', CI: 'true', LANG: 'C.UTF-8', ...extra,
  };
}

const setprivArgs = (u: TestUser, argv: string[]) => ['--reuid', String(u.uid), '--regid', String(u.gid), '--init-groups', '--', ...argv];

/** Runs argv as the user, with a login's environment, in the repository (as the user reaches it).
 * With `cgroup` (a cgroup v2 folder), the command starts there: the root shell moves itself in
 * before setpriv drops to the user, as a login's processes start in the cgroup systemd gives them. */
export function asUser(u: TestUser, argv: string[], opts: { env?: Record<string, string>; input?: string; timeout?: number; cwd?: string; cgroup?: string } = {}): UserRun {
  const [cmd, ...args] = opts.cgroup ? ['sh', '-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', opts.cgroup, 'setpriv', ...setprivArgs(u, argv)] : ['setpriv', ...setprivArgs(u, argv)];
  const r = spawnSync(cmd!, args, {
    cwd: opts.cwd ?? repoForUsers(), encoding: 'utf8', input: opts.input ?? '', env: loginEnv(u, opts.env), timeout: opts.timeout ?? 60_000,
  });
  return { code: r.status, signal: r.signal, out: (r.stdout ?? '').replace(/\r/g, ''), err: r.stderr ?? '' };
}

/** Starts argv as the user and returns at once (a long-running process the test talks to over its stdin and stdout). */
export function spawnAsUser(u: TestUser, argv: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): ChildProcess {
  return spawn('setpriv', setprivArgs(u, argv), { cwd: opts.cwd ?? repoForUsers(), env: loginEnv(u, opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
}

/** The CLI as the user runs it. */
export function sandboxAs(u: TestUser, args: string[], opts: Parameters<typeof asUser>[2] = {}): UserRun {
  return asUser(u, [process.execPath, join(repoForUsers(), 'bin/sandbox.js'), ...args], opts);
}

/** What this host lacks that a fresh Debian has: udev makes /dev/net/tun 0666 (pasta and
 * slirp4netns open it inside the user's namespace); nothing runs udev here, so it is 0600.
 * Returns an undo that puts the mode back. */
export function tunForUsers(): { changed: string | undefined; undo(): void } {
  const tun = '/dev/net/tun';
  if (!existsSync(tun)) return { changed: undefined, undo: () => undefined };
  const mode = statSync(tun).mode & 0o777;
  if (mode === 0o666) return { changed: undefined, undo: () => undefined };
  chmodSync(tun, 0o666);
  return { changed: `${tun} was ${mode.toString(8)}, made 666 as udev makes it`, undo: () => chmodSync(tun, mode) };
}

/** What a VM without a network lacks that every host pasta runs on has: a default route. pasta
 * copies the host's addresses and routes into the sandbox and refuses to start with no routable
 * interface ("No external routable interface"); the v2 VM has only lo. Where there is no IPv4
 * default route, a dummy interface (named after `name`, an address from TEST-NET-1) carries one,
 * which is enough for pasta's port maps and loopback splicing; nothing leaves through it. Made as
 * root by the test process; undo() removes the interface and with it the route. */
export function defaultRouteForPasta(name = 'sbxtdef0'): { changed: string | undefined; undo(): void } {
  // One left by an earlier run of the same test that was killed: the name is the caller's own.
  spawnSync('ip', ['link', 'del', name], { stdio: 'ignore' });
  const routes = spawnSync('ip', ['-4', 'route', 'show', 'default'], { encoding: 'utf8' });
  if (routes.status !== 0 || routes.stdout.trim()) return { changed: undefined, undo: () => undefined };
  const undo = () => { spawnSync('ip', ['link', 'del', name], { stdio: 'ignore' }); };
  try {
    execFileSync('sh', ['-ec', `ip link add "$1" type dummy; ip addr add 192.0.2.1/24 dev "$1"; ip link set "$1" up; ip route add default via 192.0.2.254 dev "$1"`, 'sh', name], { stdio: 'pipe' });
  } catch (e) { undo(); throw e; }
  return { changed: `no IPv4 default route here: ${name}, a dummy interface with 192.0.2.1/24, carries one for pasta`, undo };
}

/** The system's python3 where there is one: a shim earlier in PATH (pyenv's, on the development
 * host) is a shell script that takes about 18 s to start in the TCG-emulated v2 VM. */
export const PYTHON3 = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/** Whether the file system of `dir` holds user.* extended attributes, which a rootless image
 * store and an upper layer need (overlayfs with userxattr): set by root on a scratch file there
 * and removed. tmpfs holds them only since Linux 6.6; an overlay holds them where its upper does. */
export function holdsUserXattrs(dir: string): boolean {
  const probe = join(dir, `.xattr-probe-${process.pid}`);
  const py = 'import os,sys\ntry: os.setxattr(sys.argv[1], "user.sbxt.probe", b"1"); print("yes")\nexcept OSError as e:\n  if e.errno in (1, 95): print("no")\n  else: raise';
  writeFileSync(probe, '');
  try {
    const r = spawnSync(PYTHON3, ['-c', py, probe], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cannot tell whether ${dir} holds user xattrs: python3 ${r.error?.message ?? r.stderr}`);
    return r.stdout.trim() === 'yes';
  } finally { rmSync(probe, { force: true }); }
}

export const hasMkfsExt4 = spawnSync('mkfs.ext4', ['-V'], { stdio: 'ignore' }).status === 0;

/** An ext4 file system of the test's own on `dir` (made if missing), its root the user's: where
 * the host's folders hold no user xattrs (the v2 VM: / is an overlay on a tmpfs, /dev/shm a
 * tmpfs, Linux 6.1), a user's image store and scratch folders go there. A file on TMPDIR,
 * mkfs.ext4 (e2fsprogs), mounted through a loop device (mount -o loop, which sets autoclear, so
 * unmounting frees it; modprobe loop first where no loop-control exists). Made as root by the
 * test process; undo() unmounts it (lazily where a process of a failed test still holds it) and
 * removes the file. `what` says it all, for a t.diagnostic. */
export function ext4For(u: TestUser, dir: string, size = '128M'): { dir: string; what: string; undo(): void } {
  if (!existsSync('/dev/loop-control')) spawnSync('modprobe', ['loop'], { stdio: 'ignore' });
  const base = mkdtempSync(join(tmpdir(), 'sbxt-ext4-'));
  const img = join(base, 'fs.img');
  mkdirSync(dir, { recursive: true });
  let mounted = false;
  const undo = () => {
    if (mounted && spawnSync('umount', [dir], { stdio: 'ignore' }).status !== 0) spawnSync('umount', ['-l', dir], { stdio: 'ignore' });
    mounted = false;
    rmSync(base, { recursive: true, force: true });
  };
  try {
    execFileSync('truncate', ['-s', size, img]);
    execFileSync('mkfs.ext4', ['-q', '-F', img], { stdio: 'pipe' });
    execFileSync('mount', ['-o', 'loop', img, dir], { stdio: 'pipe' });
    mounted = true;
    chownSync(dir, u.uid, u.gid);
    chmodSync(dir, 0o755);
  } catch (e) { undo(); throw e; }
  const src = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === dir)?.split(' - ')[1]?.split(' ')[1];
  return { dir, what: `${dir} is an ext4 file system of ${size} in ${img} on ${src ?? 'a loop device'}, ${u.name}'s`, undo };
}

/** True where the tools of rootless runs are installed: newuidmap/newgidmap (uidmap). */
export const hasUidmap = (() => { try { accessSync('/usr/bin/newuidmap', constants.X_OK); return true; } catch { return false; } })();
/** The user's first ranges in /etc/subuid and /etc/subgid (what its sandboxes map from id 1). */
export function subRanges(u: TestUser): { uid?: { start: number; count: number }; gid?: { start: number; count: number } } {
  const first = (file: string) => {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const [who, start, count] = line.split(':');
      if (who === u.name || who === String(u.uid)) return { start: Number(start), count: Number(count) };
    }
    return undefined;
  };
  return { uid: first('/etc/subuid'), gid: first('/etc/subgid') };
}

export const canMakeUsers = process.geteuid?.() === 0 && (() => { try { execFileSync('useradd', ['--help'], { stdio: 'ignore' }); return true; } catch { return false; } })();

/** Scratch folders made by userTmp, removed with their user. */
const tmps = new Map<TestUser, string[]>();

/** A scratch folder the user owns, on TMPDIR; removeUser removes it (as root: it may hold files
 * of the user's subordinate ids). */
export function userTmp(u: TestUser): string {
  const d = mkdtempSync(join(tmpdir(), `sbx-user-${u.name}-`));
  chownSync(d, u.uid, u.gid);
  tmps.set(u, [...(tmps.get(u) ?? []), d]);
  return d;
}

/** Removes every user this process made (for an after() hook). */
export function removeAllUsers(): void { for (const u of [...made]) removeUser(u); releaseRepo(); }
