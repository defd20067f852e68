// A `docker run` command line → the config a person would write for it, with a note wherever
// Docker's meaning and sandbox's differ or a flag has no key. Pure: the caller's folder and the
// folder of the file that will hold the config are parameters; nothing is read.
// Used by `sandbox import -- docker run …` (which writes the config) and by `sandbox run` (which
// feeds the same config to the pipeline a file goes through).
import { isAbsolute, join, normalize as normPath, relative } from 'node:path';
import type { PathSeg } from '../config/parse';
import { didYouMean } from '../config/diagnostic';
import { COMMAND_LINE } from '../model/types';
import { ordered, nameFrom, finishImport, type ImportNote, type Imported, type Loc } from './types';

export interface DockerRunOptions {
  /** The folder relative paths on the command line start from (the caller's cwd). */
  cwd: string;
  /** The folder of the file that will hold the config: its relative paths start from there. */
  outDir: string;
}

export interface DockerRunImport extends Imported {
  /** --rm: nothing of the sandbox is kept once it ends. */
  rm: boolean;
  /** --name: the name is the caller's, not made from the image or the command. */
  named?: boolean;
  /** --replace (podman's): a sandbox of the --name given is removed first (stopped, if it runs). */
  replace?: boolean;
  /** sandbox run's own flags: --save FILE, --plan, -q, --allow-weaker. */
  save?: string;
  plan?: boolean;
  /** --plan --json (or --format json). */
  json?: boolean;
  quiet?: boolean;
  /** --progress auto|tty|plain|quiet, as up's: the stage view asked for (run -d shows none unless asked). */
  progress?: 'auto' | 'tty' | 'plain' | 'quiet';
  /** --allow-weaker, as up's: in reduced mode (no user namespaces), run without the lines that cannot be held. */
  allowWeaker?: boolean;
  /** Where each word of the command line starts in `text` (0-based). */
  cols: number[];
}

export { COMMAND_LINE };

/** A word as a POSIX shell would need it written: bare when it can be, else single-quoted. */
export function shellQuote(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/** The command line as one line of text, and where each word starts in it. */
export function commandLine(argv: readonly string[]): { text: string; cols: number[] } {
  const cols: number[] = [];
  let text = '';
  for (const w of argv) {
    if (text) text += ' ';
    cols.push(text.length);
    text += shellQuote(w);
  }
  return { text, cols };
}

/** Flags docker run has and sandbox has no key for, with the reason (printed as a note). */
const DROPPED: [string[], boolean, string][] = [
  [['-l', '--label'], true, 'sandbox has no labels; keep the text in an `x-labels:` key if you want it in the file'],
  [['--label-file'], true, 'sandbox has no labels'],
  [['--log-driver', '--log-opt'], true, 'a detached sandbox writes its output to its own log (`sandbox logs NAME`); there are no log drivers'],
  [['--health-cmd', '--health-interval', '--health-retries', '--health-timeout', '--health-start-period', '--health-start-interval'], true, 'sandbox has no health checks'],
  [['--no-healthcheck'], false, 'sandbox has no health checks'],
  [['--pull'], true, '`up` pulls an image when the store has not got it; `sandbox pull` fetches it again'],
  [['--platform'], true, 'images are pulled for this host\'s architecture'],
  [['--expose'], true, 'exposing a port only documents it; `ports` publishes it'],
  [['--mac-address', '--ip', '--ip6', '--link-local-ip'], true, 'a private network leases the sandbox its address; `network: {mode: private, subnet: …}` chooses the subnet'],
  [['--link', '--network-alias'], true, 'sandboxes have no shared networks to name each other on; publish a port instead'],
  [['--dns-search', '--dns-option', '--dns-opt'], true, 'only name servers (`dns`) are written to the sandbox\'s resolv.conf'],
  [['--domainname'], true, 'only `hostname` is set'],
  [['--volumes-from'], true, 'name the same host folders in `volumes` instead'],
  [['--gpus', '--runtime', '--isolation', '--storage-opt', '--cgroup-parent', '--device-cgroup-rule', '--cidfile', '--detach-keys', '--disable-content-trust', '--attach', '-a', '--kernel-memory', '--memory-swappiness', '--oom-score-adj', '--cpu-rt-period', '--cpu-rt-runtime', '--blkio-weight-device', '--annotation'], true, 'sandbox has no key for it'],
  [['--oom-kill-disable'], false, 'the kernel\'s OOM killer always applies at the memory limit'],
  [['--sig-proxy'], false, 'the CLI always forwards signals to the command'],
  [['-P', '--publish-all'], false, 'write each port in `ports`: the plan lists the ports the image declares'],
];

/** The command line's words are final: a `$` in them is literal, so every value is written with
 * `$$`, which the file's interpolation turns back into `$`. Keys (variable names) are not interpolated. */
function literal(v: unknown): unknown {
  if (typeof v === 'string') return v.replace(/\$/g, '$$$$');
  if (Array.isArray(v)) return v.map(literal);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, literal(x)]));
  return v;
}

/**
 * One command line as it is read: the config its flags write, the notes on them, and where each
 * key came from. The flags' handlers write through it, so that each handler is a function of its
 * own and the table of flags is built once.
 */
class Reading {
  readonly c: Record<string, unknown> = { version: 1 };
  readonly notes: ImportNote[] = [];
  readonly origin: { path: PathSeg[]; at: Loc }[] = [];
  readonly out: DockerRunImport;
  /** --cpu-period and --cpu-quota: `resources.cpus` is their ratio, made once every flag is read. */
  cpuPeriod = 100_000;
  cpuQuota: { v: number; at: Loc } | undefined;

  constructor(readonly argv: readonly string[], readonly opts: DockerRunOptions) {
    const { text, cols } = commandLine(argv);
    this.out = { config: this.c as DockerRunImport['config'], notes: this.notes, origin: this.origin, text, cols, rm: false };
  }

  /** Words i to j of the command line, as a place in its text. */
  loc(i: number, j = i): Loc {
    const cols = this.out.cols;
    return { file: COMMAND_LINE, line: 1, col: cols[i]! + 1, endCol: cols[j]! + shellQuote(this.argv[j]!).length + 1 };
  }

  /** The place just past the end of the command line, for what it lacks. */
  end(): Loc {
    return { file: COMMAND_LINE, line: 1, col: this.out.text.length + 1 };
  }

  note(kind: ImportNote['kind'], at: Loc, code: string, message: string, path?: PathSeg[]): void {
    this.notes.push({ kind, at, code, message, ...(path ? { path } : {}) });
  }

  set(path: PathSeg[], value: unknown, at: Loc): void {
    let o = this.c;
    for (const k of path.slice(0, -1)) o = (o[k as string] ??= {}) as Record<string, unknown>;
    o[path.at(-1) as string] = value;
    this.origin.push({ path, at });
  }

  /** Appends to the list at `key`; gives the item's index, for a note's path. */
  push(key: string, value: unknown, at: Loc): number {
    const list = (this.c[key] ??= []) as unknown[];
    list.push(value);
    this.origin.push({ path: [key, list.length - 1], at });
    return list.length - 1;
  }

  /** A host path as the file will hold it: relative paths from the file's folder, so that they
   * still name the folder the command line meant. */
  hostPath(p: string): string {
    if (isAbsolute(p) || p === '~' || p.startsWith('~/')) return p;
    const rel = relative(this.opts.outDir, normPath(join(this.opts.cwd, p))) || '.';
    return rel.startsWith('..') || rel === '.' ? rel : `./${rel}`;
  }
}

/** What a flag does with its value: writes into the config, or says why it cannot. */
type Apply = (r: Reading, v: string, at: Loc) => void;
interface Flag { names: string[]; value: boolean; apply: Apply }

/** A number where the word is one, as the config's numeric keys take it; else the word. */
const num = (v: string) => (/^-?[0-9]+(\.[0-9]+)?$/.test(v) ? Number(v) : v);

/** A flag without a value that turns a key on (`--flag=false` turns it off). */
const bool = (key: readonly PathSeg[]): Apply => (r, v, at) => r.set([...key], v !== 'false', at);

/** A flag that writes its value, as it is, at one key. */
const setTo = (key: readonly PathSeg[]): Apply => (r, v, at) => r.set([...key], v, at);

/** A flag that writes its value, as a number where it is one, at one key. */
const setNum = (key: readonly PathSeg[]): Apply => (r, v, at) => r.set([...key], num(v), at);

/** A flag whose value is one more item of a list. */
const pushTo = (key: string): Apply => (r, v, at) => { r.push(key, v, at); };

/** --ipc, --pid, --uts, --cgroupns, --userns: the host's namespace or a private one; docker run's
 * names of containers to join have no counterpart, as sandboxes join by path. */
const nsFlag = (ns: string, flag: string): Apply => (r, v, at) => {
  if (v === 'host') r.set(['namespaces', ns], 'host', at);
  else if (v === '' || v === 'private') r.set(['namespaces', ns], 'private', at);
  else if (v === 'shareable') { r.set(['namespaces', ns], 'private', at); r.note('changed', at, 'ns-shareable', `\`${flag} shareable\`: sandboxes join one another's namespaces by path, such as /proc/PID/ns/${ns}`, ['namespaces', ns]); }
  else r.note('dropped', at, 'ns-join', `\`${flag} ${v}\`: sandboxes have no names to join; write \`namespaces: {${ns}: /proc/PID/ns/${ns}}\` with the process's PID`);
};

/** sandbox run's --json: the plan as JSON, unless --format text asked for text. */
function applyJson(r: Reading, v: string, at: Loc): void {
  if (r.out.json === false && v !== 'false') r.note('refused', at, 'two-formats', '`--json` and `--format text` ask for two formats; give one');
  else r.out.json = v !== 'false';
}

/** As plan's and the other commands' --format: sandbox run's own, not docker run's. */
function applyFormat(r: Reading, v: string, at: Loc): void {
  if (v !== 'json' && v !== 'text') r.note('refused', at, 'invalid-format', `\`--format ${v}\`: write --format json or --format text (how --plan prints the plan)`);
  else if (r.out.json === true && v === 'text') r.note('refused', at, 'two-formats', '`--json` and `--format text` ask for two formats; give one');
  else r.out.json = v === 'json';
}

/** --progress, as up's. */
function applyProgress(r: Reading, v: string, at: Loc): void {
  if (v === 'auto' || v === 'tty' || v === 'plain' || v === 'quiet') r.out.progress = v;
  else r.note('refused', at, 'invalid-progress', `\`--progress ${v}\`: write auto, tty, plain or quiet (how the stages of the set-up are shown)`);
}

/** How the sandbox runs, and sandbox run's own flags (which write the result, not the config). */
const RUN_FLAGS: Flag[] = [
  { names: ['-d', '--detach'], value: false, apply: bool(['detach']) },
  { names: ['-i', '--interactive'], value: false, apply: bool(['stdin_open']) },
  { names: ['-t', '--tty'], value: false, apply: bool(['tty']) },
  { names: ['--init'], value: false, apply: bool(['init']) },
  { names: ['--read-only'], value: false, apply: bool(['security', 'read_only']) },
  { names: ['--rm'], value: false, apply: (r, v) => { r.out.rm = v !== 'false'; } },
  {
    names: ['--privileged'], value: false, apply: (r, v, at) => {
      if (v === 'false') return;
      r.note('refused', at, 'privileged', '`--privileged` gives the command every capability, every device, no seccomp filter and the host\'s /sys to write: it is not a sandbox. Name what the command needs instead: `cap_add: [SYS_ADMIN]`, `devices: [/dev/fuse]`, `security: {seccomp: unconfined}`');
    },
  },
  { names: ['--name'], value: true, apply: setTo(['name']) },
  { names: ['--rootfs'], value: true, apply: (r, v, at) => r.set(['rootfs'], v === 'host' ? 'host' : { type: 'dir', path: r.hostPath(v) }, at) },
  { names: ['--save'], value: true, apply: (r, v) => { r.out.save = v; } },
  { names: ['--plan'], value: false, apply: (r, v) => { r.out.plan = v !== 'false'; } },
  { names: ['--json'], value: false, apply: applyJson },
  { names: ['--format'], value: true, apply: applyFormat },
  { names: ['-q', '--quiet'], value: false, apply: (r, v) => { r.out.quiet = v !== 'false'; } },
  { names: ['--allow-weaker'], value: false, apply: (r, v) => { r.out.allowWeaker = v !== 'false'; } },
  { names: ['--replace'], value: false, apply: (r, v) => { r.out.replace = v !== 'false'; } },
  { names: ['--progress'], value: true, apply: applyProgress },
];

/** --restart: always and unless-stopped both become `always`, which lasts while the sandbox does. */
function applyRestart(r: Reading, v: string, at: Loc): void {
  if (v === 'unless-stopped' || v === 'always') {
    r.set(['restart'], 'always', at);
    r.note('changed', at, 'restart-always', `\`--restart ${v}\`: PID 1 inside the sandbox runs the command again until it is stopped; there is no daemon to start it again after a reboot`, ['restart']);
  } else r.set(['restart'], v, at);
}

/** The command's process: its environment, identity, entrypoint and how it is stopped. */
const PROCESS_FLAGS: Flag[] = [
  {
    names: ['-e', '--env'], value: true, apply: (r, v, at) => {
      const eq = v.indexOf('=');
      // `-e NAME` passes the caller's value through, as `env: {NAME: null}` does when `up` runs.
      r.set(['env', eq < 0 ? v : v.slice(0, eq)], eq < 0 ? null : v.slice(eq + 1), at);
    },
  },
  {
    names: ['--env-file'], value: true, apply: (r, v, at) => {
      const i = r.push('env_file', r.hostPath(v), at);
      r.note('changed', at, 'env-file-quotes', 'read as Compose reads it: quotes around a value are removed, where docker run keeps them', ['env_file', i]);
    },
  },
  { names: ['-u', '--user'], value: true, apply: setTo(['user']) },
  { names: ['-w', '--workdir'], value: true, apply: setTo(['workdir']) },
  { names: ['-h', '--hostname'], value: true, apply: setTo(['hostname']) },
  { names: ['--group-add'], value: true, apply: (r, v, at) => { r.push('group_add', num(v), at); } },
  { names: ['--entrypoint'], value: true, apply: (r, v, at) => r.set(['entrypoint'], v === '' ? [] : [v], at) },
  { names: ['--shm-size'], value: true, apply: setNum(['shm_size']) },
  { names: ['--stop-signal'], value: true, apply: setTo(['stop_signal']) },
  { names: ['--stop-timeout'], value: true, apply: (r, v, at) => r.set(['stop_grace_period'], /^[0-9]+$/.test(v) ? `${v}s` : v, at) },
  { names: ['--restart'], value: true, apply: applyRestart },
];

/** --network: none, host and private as they are; docker's bridge and named networks become a
 * private network of the sandbox's own; another container's network is joined by path. */
function applyNetwork(r: Reading, v: string, at: Loc): void {
  if (v === 'none' || v === 'host' || v === 'private') r.set(['network'], v, at);
  else if (v === 'bridge' || v === 'default') {
    r.set(['network'], 'private', at);
    r.note('changed', at, 'network-bridge', `\`--network ${v}\`: a private network is this sandbox's own (its own namespace, a veth to the host, outbound NAT); other sandboxes reach it only through published ports`, ['network']);
  } else if (v.startsWith('container:')) r.note('dropped', at, 'network-container', `\`--network ${v}\`: join a running sandbox's network by path: \`namespaces: {net: /proc/PID/ns/net}\``);
  else { r.set(['network'], 'private', at); r.note('changed', at, 'network-named', `\`--network ${v}\`: sandbox has no named networks; each sandbox gets a private network of its own, reached through published ports`, ['network']); }
}

/** The network, its published ports and its names. */
const NETWORK_FLAGS: Flag[] = [
  { names: ['--network', '--net'], value: true, apply: applyNetwork },
  {
    names: ['-p', '--publish'], value: true, apply: (r, v, at) => {
      const i = r.push('ports', num(v), at);
      if (!/^(\[[^\]]*\]|[0-9.]+:[0-9-]*:)/.test(v)) r.note('changed', at, 'port-every-address', `published on every address of this host, as docker run does; write 127.0.0.1:${v} to keep it on this machine`, ['ports', i]);
    },
  },
  { names: ['--dns'], value: true, apply: pushTo('dns') },
  { names: ['--add-host'], value: true, apply: (r, v, at) => { r.push('extra_hosts', v.replace('=', ':'), at); } },
];

/** --ulimit and --sysctl: NAME=VALUE into the mapping at `key`, refused without the `=`. */
const nameValue = (flag: string, key: string, code: string, form: string, value: (v: string) => unknown): Apply => (r, v, at) => {
  const eq = v.indexOf('=');
  if (eq < 0) { r.note('refused', at, code, `\`${flag} ${v}\`: write ${form}`); return; }
  r.set([key, v.slice(0, eq)], value(v.slice(eq + 1)), at);
};

/** --security-opt: no-new-privileges and seccomp have keys; LSM labels and systempaths do not. */
function applySecurityOpt(r: Reading, v: string, at: Loc): void {
  const m = /^([a-z-]+)(?:[=:](.*))?$/.exec(v);
  const [k, val] = m ? [m[1]!, m[2]] : [v, undefined];
  if (k === 'no-new-privileges') {
    r.set(['security', 'no_new_privileges'], val !== 'false', at);
    if (val !== 'false') r.note('changed', at, 'nnp-default', 'no_new_privileges is on in every sandbox; this line only says so', ['security', 'no_new_privileges']);
  } else if (k === 'seccomp' && val) r.set(['security', 'seccomp'], val === 'unconfined' || val === 'default' ? val : r.hostPath(val), at);
  else if (k === 'apparmor' || k === 'label') r.note('dropped', at, 'lsm', `\`--security-opt ${v}\`: sandbox sets no AppArmor or SELinux label; its seccomp filter, capabilities and masked paths stay`);
  else if (k === 'systempaths') r.note('dropped', at, 'systempaths', `\`--security-opt ${v}\`: /proc and /sys paths are always masked and read-only as docker run's default; name more in \`security.masked_paths\``);
  else r.note('refused', at, 'unknown-security-opt', `\`--security-opt ${v}\` is not one docker run has; use no-new-privileges, seccomp=PROFILE, apparmor= or label=`);
}

/** Devices, capabilities, kernel settings and the seccomp filter. */
const SECURITY_FLAGS: Flag[] = [
  { names: ['--device'], value: true, apply: pushTo('devices') },
  { names: ['--cap-add'], value: true, apply: pushTo('cap_add') },
  { names: ['--cap-drop'], value: true, apply: pushTo('cap_drop') },
  { names: ['--ulimit'], value: true, apply: nameValue('--ulimit', 'ulimits', 'invalid-ulimit', 'NAME=SOFT[:HARD], such as nofile=1024:4096', num) },
  { names: ['--sysctl'], value: true, apply: nameValue('--sysctl', 'sysctls', 'invalid-sysctl', 'NAME=VALUE', (x) => x) },
  { names: ['--security-opt'], value: true, apply: applySecurityOpt },
];

/** -v: a bind (a path), a named volume (a name), or an anonymous volume (a target alone). */
function applyVolume(r: Reading, v: string, at: Loc): void {
  const parts = v.split(':');
  if (parts.length === 1) {
    // An anonymous volume: a fresh, empty folder that docker run removes with --rm.
    const i = r.push('volumes', { type: 'tmpfs', target: v }, at);
    r.note('changed', at, 'anonymous-volume', `\`-v ${v}\` makes an anonymous volume; a tmpfs (memory, gone when the sandbox ends) is the nearest sandbox has: give it a name (NAME:${v}) to keep it`, ['volumes', i]);
    return;
  }
  const [src, dst, o = ''] = parts as [string, string, string?];
  const named = !/^[./~]/.test(src);
  // nocopy (a named volume left empty, not seeded from the image) means nothing for a bind.
  const keep = o.split(',').filter((x) => x && !['consistent', 'cached', 'delegated'].includes(x) && (named || x !== 'nocopy'));
  if (!named && o.split(',').includes('nocopy')) r.note('dropped', at, 'volume-nocopy', '`nocopy` applies to named volumes only: a bind shows the host folder as it is');
  const i = r.push('volumes', `${named ? src : r.hostPath(src)}:${dst}${keep.length ? `:${keep.join(',')}` : ''}`, at);
  if (!named) r.note('changed', at, 'bind-must-exist', 'docker run makes a missing host folder (owned by root); sandbox refuses to start without it: create it first', ['volumes', i]);
}

/** --tmpfs TARGET[:OPTIONS]: size, mode and ro have keys; other options are the mount's own. */
function applyTmpfs(r: Reading, v: string, at: Loc): void {
  const [target, o = ''] = v.split(/:(.*)/s) as [string, string?];
  const t: Record<string, unknown> = { type: 'tmpfs', target: target };
  // docker run's --tmpfs is noexec unless told exec.
  const options = ['noexec'];
  for (const x of o.split(',').filter(Boolean)) {
    const [k, val] = x.split('=') as [string, string?];
    if (k === 'size') t.size = num(val ?? '');
    else if (k === 'mode') t.mode = val;
    else if (k === 'ro') t.read_only = true;
    else if (k === 'exec') options.splice(options.indexOf('noexec'), 1);
    else if (k === 'noexec' || k === 'rw' || k === 'nosuid' || k === 'nodev') continue;
    else options.push(k);
  }
  if (options.length) t.options = options;
  r.push('volumes', t, at);
}

/** --mount type=…,source=…,target=…: a bind, a tmpfs, or a named or anonymous volume. */
function applyMount(r: Reading, v: string, at: Loc): void {
  const kv = new Map(v.split(',').map((x) => { const eq = x.indexOf('='); return eq < 0 ? [x, 'true'] : [x.slice(0, eq), x.slice(eq + 1)]; }));
  const type = kv.get('type') ?? 'volume';
  const source = kv.get('source') ?? kv.get('src');
  const target = kv.get('target') ?? kv.get('destination') ?? kv.get('dst');
  const ro = ['true', '1'].includes(kv.get('readonly') ?? kv.get('ro') ?? 'false');
  if (!target) { r.note('refused', at, 'mount-no-target', `\`--mount ${v}\` has no target; add target=/path`); return; }
  if (type === 'bind' && source) r.push('volumes', { type: 'bind', source: r.hostPath(source), target: target, ...(ro ? { read_only: true } : {}), ...(kv.has('bind-propagation') ? { propagation: kv.get('bind-propagation') } : {}) }, at);
  else if (type === 'tmpfs') r.push('volumes', { type: 'tmpfs', target: target, ...(kv.has('tmpfs-size') ? { size: num(kv.get('tmpfs-size')!) } : {}), ...(kv.has('tmpfs-mode') ? { mode: kv.get('tmpfs-mode') } : {}) }, at);
  else if (type === 'volume' && source) {
    const o = [...(ro ? ['ro'] : []), ...(['true', '1'].includes(kv.get('volume-nocopy') ?? 'false') ? ['nocopy'] : [])];
    r.push('volumes', `${source}:${target}${o.length ? `:${o.join(',')}` : ''}`, at);
  }
  else if (type === 'volume') {
    const i = r.push('volumes', { type: 'tmpfs', target: target }, at);
    r.note('changed', at, 'anonymous-volume', `an anonymous volume: a tmpfs (memory, gone when the sandbox ends) is the nearest sandbox has; give it a source= name to keep it`, ['volumes', i]);
  } else r.note('dropped', at, 'mount-type', `\`--mount type=${type}\`: sandbox mounts binds, named volumes and tmpfs`);
}

/** What is mounted in the sandbox. */
const MOUNT_FLAGS: Flag[] = [
  { names: ['-v', '--volume'], value: true, apply: applyVolume },
  { names: ['--tmpfs'], value: true, apply: applyTmpfs },
  { names: ['--mount'], value: true, apply: applyMount },
];

/** --device-read-bps and the like: PATH:RATE, one more item of the resources' list; IOPS are numbers. */
const deviceRate = (k: 'read-bps' | 'write-bps' | 'read-iops' | 'write-iops'): Apply => (r, v, at) => {
  const i = v.lastIndexOf(':');
  const key = `device_${k.replace('-', '_')}`;
  const list = ((r.c.resources ??= {}) as Record<string, unknown[]>)[key] ??= [];
  list.push({ path: v.slice(0, i), rate: k.endsWith('iops') ? num(v.slice(i + 1)) : v.slice(i + 1) });
  r.origin.push({ path: ['resources', key, list.length - 1], at });
};

/** The cgroup's limits. */
const RESOURCE_FLAGS: Flag[] = [
  {
    names: ['-m', '--memory'], value: true, apply: (r, v, at) => {
      r.set(['resources', 'memory'], num(v), at);
      r.note('changed', at, 'memory-swap', 'docker run -m also allows as much swap again; sandbox leaves swap to the host\'s default: add `memory_swap` to cap memory plus swap', ['resources', 'memory']);
    },
  },
  { names: ['--memory-reservation'], value: true, apply: setNum(['resources', 'memory_reservation']) },
  { names: ['--memory-swap'], value: true, apply: setNum(['resources', 'memory_swap']) },
  { names: ['--cpus'], value: true, apply: setNum(['resources', 'cpus']) },
  { names: ['-c', '--cpu-shares'], value: true, apply: setNum(['resources', 'cpu_shares']) },
  { names: ['--cpuset-cpus'], value: true, apply: setTo(['resources', 'cpuset']) },
  { names: ['--cpuset-mems'], value: true, apply: setTo(['resources', 'cpuset_mems']) },
  { names: ['--pids-limit'], value: true, apply: (r, v, at) => r.set(['resources', 'pids'], /^-?[0-9]+$/.test(v) && Number(v) <= 0 ? -1 : num(v), at) },
  { names: ['--blkio-weight'], value: true, apply: setNum(['resources', 'io_weight']) },
  ...(['read-bps', 'write-bps', 'read-iops', 'write-iops'] as const).map((k): Flag => ({ names: [`--device-${k}`], value: true, apply: deviceRate(k) })),
  { names: ['--cpu-period'], value: true, apply: (r, v) => { r.cpuPeriod = Number(v); } },
  { names: ['--cpu-quota'], value: true, apply: (r, v, at) => { r.cpuQuota = { v: Number(v), at }; } },
];

/** The namespaces docker run lets a container share with the host. */
const NAMESPACE_FLAGS: Flag[] = [
  { names: ['--ipc'], value: true, apply: nsFlag('ipc', '--ipc') },
  { names: ['--pid'], value: true, apply: nsFlag('pid', '--pid') },
  { names: ['--uts'], value: true, apply: nsFlag('uts', '--uts') },
  { names: ['--cgroupns'], value: true, apply: nsFlag('cgroup', '--cgroupns') },
  { names: ['--userns'], value: true, apply: nsFlag('user', '--userns') },
];

/** Every flag sandbox knows, by each of its names. */
const BY_NAME: ReadonlyMap<string, Flag> = new Map([
  ...RUN_FLAGS, ...PROCESS_FLAGS, ...NETWORK_FLAGS, ...SECURITY_FLAGS, ...MOUNT_FLAGS, ...RESOURCE_FLAGS, ...NAMESPACE_FLAGS,
  ...DROPPED.flatMap(([names, value, why]) => names.map((n): Flag => ({ names: [n], value, apply: (r, v, at) => r.note('dropped', at, 'no-key', `\`${n}${value ? ` ${v}` : ''}\`: ${why}`) }))),
].flatMap((f) => f.names.map((n) => [n, f] as const)));

/** The index of the first flag: past the words before them (docker run, docker container run,
 * podman run, sandbox run), or 0 when the line starts with the flags. */
function firstFlag(argv: readonly string[]): number {
  const lead = argv.slice(0, 3).indexOf('run');
  if (lead >= 0 && argv.slice(0, lead).every((w) => ['docker', 'podman', 'nerdctl', 'sandbox', 'container'].includes(w))) return lead + 1;
  return 0;
}

/** One word of flags as name and value pairs: --name=value, --name (value in the next word),
 * -abc (clustered booleans), -p8080:80; the value undefined where the next word may hold it. */
function flagPairs(w: string): [string, string | undefined][] {
  if (w.startsWith('--')) {
    const eq = w.indexOf('=');
    return [eq < 0 ? [w, undefined] : [w.slice(0, eq), w.slice(eq + 1)]];
  }
  const pairs: [string, string | undefined][] = [];
  for (let k = 1; k < w.length; k++) {
    const name = `-${w[k]}`;
    if (BY_NAME.get(name)?.value && k + 1 < w.length) { pairs.push([name, w.slice(k + 1).replace(/^=/, '')]); break; }
    pairs.push([name, undefined]);
  }
  return pairs;
}

/** The long flag a mistyped word most likely meant (`--rmm`, `-rm`, `-name`), or undefined. A
 * single dash before a long name is a habit (find's `-name`), but a short cluster such as `-ix`
 * is letters, not a name: it is guessed from only when its letters are a long name's or four or more. */
function typoOf(word: string): string | undefined {
  const long = [...BY_NAME.keys()].filter((n) => n.startsWith('--'));
  if (word.startsWith('--')) return didYouMean(word, long);
  const asLong = `-${word}`;
  if (BY_NAME.has(asLong)) return asLong;
  return word.length > 4 ? didYouMean(asLong, long) : undefined;
}

/** Applies the flags from word `i` on, up to the first word that is not one (or past `--`); gives
 * the index of that word. Unknown flags are noted together once all are read, each naming the others. */
function readFlags(r: Reading, i: number): number {
  const argv = r.argv;
  const unknown: number[] = [];
  for (; i < argv.length; i++) {
    const w = argv[i]!;
    if (w === '--') { i++; break; }
    if (!w.startsWith('-') || w === '-') break;
    const start = i;
    const pairs = flagPairs(w);
    // A word with a letter or name sandbox does not know applies none of it: `-name x` is a typo of
    // --name, not -n -a -m taking `e` and the next word as values.
    if (pairs.some(([name]) => !BY_NAME.has(name))) { unknown.push(start); continue; }
    for (const [name, attached] of pairs) {
      const f = BY_NAME.get(name)!;
      let v = attached;
      if (f.value && v === undefined) {
        if (i + 1 >= argv.length) { r.note('refused', r.loc(start), 'flag-needs-value', `\`${name}\` needs a value`); continue; }
        v = argv[++i]!;
      }
      f.apply(r, v ?? 'true', r.loc(start, i));
    }
  }
  if (unknown.length) {
    const names = [...new Set(unknown.map((k) => argv[k]!.split('=')[0]!))];
    for (const k of unknown) {
      const word = argv[k]!.split('=')[0]!;
      const others = names.length > 1 ? ` (nor ${names.filter((n) => n !== word).join(', ')})` : '';
      const guess = typoOf(word);
      r.note('refused', r.loc(k), 'unknown-flag', `\`${word}\` is not a docker run flag that sandbox knows${others}${guess ? ` (did you mean \`${guess}\`?)` : ''}; \`sandbox run --help\` lists the ones it maps`);
    }
  }
  return i;
}

/** The words after the flags: IMAGE [COMMAND [ARG…]], or with --rootfs only the command. */
function readImageAndCommand(r: Reading, i: number): void {
  const argv = r.argv;
  if (r.c.rootfs === undefined) {
    if (i >= argv.length) r.note('refused', r.end(), 'no-image', 'name an image (as docker run does), or `--rootfs host` to run on the host\'s own root filesystem, read-only');
    else { r.set(['image'], argv[i]!, r.loc(i)); i++; }
  }
  if (i < argv.length) r.set(['command'], argv.slice(i), r.loc(i, argv.length - 1));
  else if (r.c.rootfs !== undefined) r.note('refused', r.end(), 'no-command', 'with `--rootfs`, name the command to run after it, such as `--rootfs host sh`');
}

export function fromDockerRun(argv: readonly string[], opts: DockerRunOptions): DockerRunImport {
  const r = new Reading(argv, opts);
  const { c, out } = r;
  const i = readFlags(r, firstFlag(argv));
  // --cpu-quota is a share of --cpu-period (docker's default 100 ms): `cpus`, unless --cpus says it.
  if (r.cpuQuota && r.cpuQuota.v > 0 && c.resources && (c.resources as Record<string, unknown>).cpus === undefined) r.set(['resources', 'cpus'], Math.round((r.cpuQuota.v / r.cpuPeriod) * 1000) / 1000, r.cpuQuota.at);
  readImageAndCommand(r, i);
  out.named = c.name !== undefined;
  if (c.name === undefined) c.name = nameFrom(typeof c.image === 'string' ? c.image : (c.command as string[] | undefined)?.[0]);
  out.config = ordered(literal(c) as Record<string, unknown>);
  finishImport(out);
  out.config = ordered(out.config);
  return out;
}
