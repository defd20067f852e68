// A `docker run` command line → the config a person would write for it, with a note wherever
// Docker's meaning and sandbox's differ or a flag has no key. Pure: the caller's folder and the
// folder of the file that will hold the config are parameters; nothing is read.
// Used by `sandbox import -- docker run …` (which writes the config) and by `sandbox run` (which
// feeds the same config to the pipeline a file goes through).
import { isAbsolute, join, normalize as normPath, relative } from 'node:path';
import type { PathSeg } from '../config/parse';
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
  /** sandbox run's own flags: --save FILE, --plan, -q, --allow-weaker. */
  save?: string;
  plan?: boolean;
  /** --plan --json (or --format json). */
  json?: boolean;
  quiet?: boolean;
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

/** What a flag does with its value: writes into the config, or says why it cannot. */
type Apply = (v: string, at: Loc) => void;
interface Flag { names: string[]; value: boolean; apply: Apply }

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

export function fromDockerRun(argv: readonly string[], opts: DockerRunOptions): DockerRunImport {
  const { text, cols } = commandLine(argv);
  const c: Record<string, unknown> = { version: 1 };
  const notes: ImportNote[] = [];
  const origin: { path: PathSeg[]; at: Loc }[] = [];
  const out: DockerRunImport = { config: c as DockerRunImport['config'], notes, origin, text, cols, rm: false };
  const loc = (i: number, j = i): Loc => ({ file: COMMAND_LINE, line: 1, col: cols[i]! + 1, endCol: cols[j]! + shellQuote(argv[j]!).length + 1 });
  const note = (kind: ImportNote['kind'], at: Loc, code: string, message: string, path?: PathSeg[]) => notes.push({ kind, at, code, message, ...(path ? { path } : {}) });
  const set = (path: PathSeg[], value: unknown, at: Loc) => {
    let o = c;
    for (const k of path.slice(0, -1)) o = (o[k as string] ??= {}) as Record<string, unknown>;
    o[path.at(-1) as string] = value;
    origin.push({ path, at });
  };
  const push = (key: string, value: unknown, at: Loc): number => {
    const list = (c[key] ??= []) as unknown[];
    list.push(value);
    origin.push({ path: [key, list.length - 1], at });
    return list.length - 1;
  };
  // A host path as the file will hold it: relative paths from the file's folder, so that they
  // still name the folder the command line meant.
  const hostPath = (p: string): string => {
    if (isAbsolute(p) || p === '~' || p.startsWith('~/')) return p;
    const rel = relative(opts.outDir, normPath(join(opts.cwd, p))) || '.';
    return rel.startsWith('..') || rel === '.' ? rel : `./${rel}`;
  };
  const num = (v: string) => (/^-?[0-9]+(\.[0-9]+)?$/.test(v) ? Number(v) : v);
  const nsFlag = (ns: string, flag: string): Apply => (v, at) => {
    if (v === 'host') set(['namespaces', ns], 'host', at);
    else if (v === '' || v === 'private') set(['namespaces', ns], 'private', at);
    else if (v === 'shareable') { set(['namespaces', ns], 'private', at); note('changed', at, 'ns-shareable', `\`${flag} shareable\`: sandboxes join one another's namespaces by path, such as /proc/PID/ns/${ns}`, ['namespaces', ns]); }
    else note('dropped', at, 'ns-join', `\`${flag} ${v}\`: sandboxes have no names to join; write \`namespaces: {${ns}: /proc/PID/ns/${ns}}\` with the process's PID`);
  };
  const bool = (key: PathSeg[]): Apply => (v, at) => set(key, v !== 'false', at);

  const flags: Flag[] = [
    { names: ['-d', '--detach'], value: false, apply: bool(['detach']) },
    { names: ['-i', '--interactive'], value: false, apply: bool(['stdin_open']) },
    { names: ['-t', '--tty'], value: false, apply: bool(['tty']) },
    { names: ['--init'], value: false, apply: bool(['init']) },
    { names: ['--read-only'], value: false, apply: bool(['security', 'read_only']) },
    { names: ['--rm'], value: false, apply: (v) => { out.rm = v !== 'false'; } },
    {
      names: ['--privileged'], value: false, apply: (v, at) => {
        if (v === 'false') return;
        note('refused', at, 'privileged', '`--privileged` gives the command every capability, every device, no seccomp filter and the host\'s /sys to write: it is not a sandbox. Name what the command needs instead: `cap_add: [SYS_ADMIN]`, `devices: [/dev/fuse]`, `security: {seccomp: unconfined}`');
      },
    },
    { names: ['--name'], value: true, apply: (v, at) => set(['name'], v, at) },
    { names: ['--rootfs'], value: true, apply: (v, at) => set(['rootfs'], v === 'host' ? 'host' : { type: 'dir', path: hostPath(v) }, at) },
    { names: ['--save'], value: true, apply: (v) => { out.save = v; } },
    { names: ['--plan'], value: false, apply: (v) => { out.plan = v !== 'false'; } },
    {
      names: ['--json'], value: false, apply: (v, at) => {
        if (out.json === false && v !== 'false') note('refused', at, 'two-formats', '`--json` and `--format text` ask for two formats; give one');
        else out.json = v !== 'false';
      },
    },
    // As plan's and the other commands' --format: sandbox run's own, not docker run's.
    {
      names: ['--format'], value: true, apply: (v, at) => {
        if (v !== 'json' && v !== 'text') note('refused', at, 'invalid-format', `\`--format ${v}\`: write --format json or --format text (how --plan prints the plan)`);
        else if (out.json === true && v === 'text') note('refused', at, 'two-formats', '`--json` and `--format text` ask for two formats; give one');
        else out.json = v === 'json';
      },
    },
    { names: ['-q', '--quiet'], value: false, apply: (v) => { out.quiet = v !== 'false'; } },
    { names: ['--allow-weaker'], value: false, apply: (v) => { out.allowWeaker = v !== 'false'; } },
    {
      names: ['-e', '--env'], value: true, apply: (v, at) => {
        const eq = v.indexOf('=');
        // `-e NAME` passes the caller's value through, as `env: {NAME: null}` does when `up` runs.
        set(['env', eq < 0 ? v : v.slice(0, eq)], eq < 0 ? null : v.slice(eq + 1), at);
      },
    },
    {
      names: ['--env-file'], value: true, apply: (v, at) => {
        const i = push('env_file', hostPath(v), at);
        note('changed', at, 'env-file-quotes', 'read as Compose reads it: quotes around a value are removed, where docker run keeps them', ['env_file', i]);
      },
    },
    { names: ['-u', '--user'], value: true, apply: (v, at) => set(['user'], v, at) },
    { names: ['-w', '--workdir'], value: true, apply: (v, at) => set(['workdir'], v, at) },
    { names: ['-h', '--hostname'], value: true, apply: (v, at) => set(['hostname'], v, at) },
    { names: ['--group-add'], value: true, apply: (v, at) => { push('group_add', num(v), at); } },
    { names: ['--entrypoint'], value: true, apply: (v, at) => set(['entrypoint'], v === '' ? [] : [v], at) },
    { names: ['--shm-size'], value: true, apply: (v, at) => set(['shm_size'], num(v), at) },
    { names: ['--stop-signal'], value: true, apply: (v, at) => set(['stop_signal'], v, at) },
    { names: ['--stop-timeout'], value: true, apply: (v, at) => set(['stop_grace_period'], /^[0-9]+$/.test(v) ? `${v}s` : v, at) },
    {
      names: ['--restart'], value: true, apply: (v, at) => {
        if (v === 'unless-stopped' || v === 'always') {
          set(['restart'], 'always', at);
          note('changed', at, 'restart-always', `\`--restart ${v}\`: PID 1 inside the sandbox runs the command again until it is stopped; there is no daemon to start it again after a reboot`, ['restart']);
        } else set(['restart'], v, at);
      },
    },
    {
      names: ['--network', '--net'], value: true, apply: (v, at) => {
        if (v === 'none' || v === 'host' || v === 'private') set(['network'], v, at);
        else if (v === 'bridge' || v === 'default') {
          set(['network'], 'private', at);
          note('changed', at, 'network-bridge', `\`--network ${v}\`: a private network is this sandbox's own (its own namespace, a veth to the host, outbound NAT); other sandboxes reach it only through published ports`, ['network']);
        } else if (v.startsWith('container:')) note('dropped', at, 'network-container', `\`--network ${v}\`: join a running sandbox's network by path: \`namespaces: {net: /proc/PID/ns/net}\``);
        else { set(['network'], 'private', at); note('changed', at, 'network-named', `\`--network ${v}\`: sandbox has no named networks; each sandbox gets a private network of its own, reached through published ports`, ['network']); }
      },
    },
    {
      names: ['-p', '--publish'], value: true, apply: (v, at) => {
        const i = push('ports', num(v), at);
        if (!/^(\[[^\]]*\]|[0-9.]+:[0-9-]*:)/.test(v)) note('changed', at, 'port-every-address', `published on every address of this host, as docker run does; write 127.0.0.1:${v} to keep it on this machine`, ['ports', i]);
      },
    },
    { names: ['--dns'], value: true, apply: (v, at) => { push('dns', v, at); } },
    { names: ['--add-host'], value: true, apply: (v, at) => { push('extra_hosts', v.replace('=', ':'), at); } },
    { names: ['--device'], value: true, apply: (v, at) => { push('devices', v, at); } },
    { names: ['--cap-add'], value: true, apply: (v, at) => { push('cap_add', v, at); } },
    { names: ['--cap-drop'], value: true, apply: (v, at) => { push('cap_drop', v, at); } },
    {
      names: ['--ulimit'], value: true, apply: (v, at) => {
        const eq = v.indexOf('=');
        if (eq < 0) { note('refused', at, 'invalid-ulimit', `\`--ulimit ${v}\`: write NAME=SOFT[:HARD], such as nofile=1024:4096`); return; }
        set(['ulimits', v.slice(0, eq)], num(v.slice(eq + 1)), at);
      },
    },
    {
      names: ['--sysctl'], value: true, apply: (v, at) => {
        const eq = v.indexOf('=');
        if (eq < 0) { note('refused', at, 'invalid-sysctl', `\`--sysctl ${v}\`: write NAME=VALUE`); return; }
        set(['sysctls', v.slice(0, eq)], v.slice(eq + 1), at);
      },
    },
    {
      names: ['--security-opt'], value: true, apply: (v, at) => {
        const m = /^([a-z-]+)(?:[=:](.*))?$/.exec(v);
        const [k, val] = m ? [m[1]!, m[2]] : [v, undefined];
        if (k === 'no-new-privileges') {
          set(['security', 'no_new_privileges'], val !== 'false', at);
          if (val !== 'false') note('changed', at, 'nnp-default', 'no_new_privileges is on in every sandbox; this line only says so', ['security', 'no_new_privileges']);
        } else if (k === 'seccomp' && val) set(['security', 'seccomp'], val === 'unconfined' || val === 'default' ? val : hostPath(val), at);
        else if (k === 'apparmor' || k === 'label') note('dropped', at, 'lsm', `\`--security-opt ${v}\`: sandbox sets no AppArmor or SELinux label; its seccomp filter, capabilities and masked paths stay`);
        else if (k === 'systempaths') note('dropped', at, 'systempaths', `\`--security-opt ${v}\`: /proc and /sys paths are always masked and read-only as docker run's default; name more in \`security.masked_paths\``);
        else note('refused', at, 'unknown-security-opt', `\`--security-opt ${v}\` is not one docker run has; use no-new-privileges, seccomp=PROFILE, apparmor= or label=`);
      },
    },
    {
      names: ['-v', '--volume'], value: true, apply: (v, at) => {
        const parts = v.split(':');
        if (parts.length === 1) {
          // An anonymous volume: a fresh, empty folder that docker run removes with --rm.
          const i = push('volumes', { type: 'tmpfs', target: v }, at);
          note('changed', at, 'anonymous-volume', `\`-v ${v}\` makes an anonymous volume; a tmpfs (memory, gone when the sandbox ends) is the nearest sandbox has: give it a name (NAME:${v}) to keep it`, ['volumes', i]);
          return;
        }
        const [src, dst, o = ''] = parts as [string, string, string?];
        const named = !/^[./~]/.test(src);
        // nocopy (a named volume left empty, not seeded from the image) means nothing for a bind.
        const keep = o.split(',').filter((x) => x && !['consistent', 'cached', 'delegated'].includes(x) && (named || x !== 'nocopy'));
        if (!named && o.split(',').includes('nocopy')) note('dropped', at, 'volume-nocopy', '`nocopy` applies to named volumes only: a bind shows the host folder as it is');
        const i = push('volumes', `${named ? src : hostPath(src)}:${dst}${keep.length ? `:${keep.join(',')}` : ''}`, at);
        if (!named) note('changed', at, 'bind-must-exist', 'docker run makes a missing host folder (owned by root); sandbox refuses to start without it: create it first', ['volumes', i]);
      },
    },
    {
      names: ['--tmpfs'], value: true, apply: (v, at) => {
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
        push('volumes', t, at);
      },
    },
    {
      names: ['--mount'], value: true, apply: (v, at) => {
        const kv = new Map(v.split(',').map((x) => { const eq = x.indexOf('='); return eq < 0 ? [x, 'true'] : [x.slice(0, eq), x.slice(eq + 1)]; }));
        const type = kv.get('type') ?? 'volume';
        const source = kv.get('source') ?? kv.get('src');
        const target = kv.get('target') ?? kv.get('destination') ?? kv.get('dst');
        const ro = ['true', '1'].includes(kv.get('readonly') ?? kv.get('ro') ?? 'false');
        if (!target) { note('refused', at, 'mount-no-target', `\`--mount ${v}\` has no target; add target=/path`); return; }
        if (type === 'bind' && source) push('volumes', { type: 'bind', source: hostPath(source), target: target, ...(ro ? { read_only: true } : {}), ...(kv.has('bind-propagation') ? { propagation: kv.get('bind-propagation') } : {}) }, at);
        else if (type === 'tmpfs') push('volumes', { type: 'tmpfs', target: target, ...(kv.has('tmpfs-size') ? { size: num(kv.get('tmpfs-size')!) } : {}), ...(kv.has('tmpfs-mode') ? { mode: kv.get('tmpfs-mode') } : {}) }, at);
        else if (type === 'volume' && source) {
          const o = [...(ro ? ['ro'] : []), ...(['true', '1'].includes(kv.get('volume-nocopy') ?? 'false') ? ['nocopy'] : [])];
          push('volumes', `${source}:${target}${o.length ? `:${o.join(',')}` : ''}`, at);
        }
        else if (type === 'volume') {
          const i = push('volumes', { type: 'tmpfs', target: target }, at);
          note('changed', at, 'anonymous-volume', `an anonymous volume: a tmpfs (memory, gone when the sandbox ends) is the nearest sandbox has; give it a source= name to keep it`, ['volumes', i]);
        } else note('dropped', at, 'mount-type', `\`--mount type=${type}\`: sandbox mounts binds, named volumes and tmpfs`);
      },
    },
    {
      names: ['-m', '--memory'], value: true, apply: (v, at) => {
        set(['resources', 'memory'], num(v), at);
        note('changed', at, 'memory-swap', 'docker run -m also allows as much swap again; sandbox leaves swap to the host\'s default: add `memory_swap` to cap memory plus swap', ['resources', 'memory']);
      },
    },
    { names: ['--memory-reservation'], value: true, apply: (v, at) => set(['resources', 'memory_reservation'], num(v), at) },
    { names: ['--memory-swap'], value: true, apply: (v, at) => set(['resources', 'memory_swap'], num(v), at) },
    { names: ['--cpus'], value: true, apply: (v, at) => set(['resources', 'cpus'], num(v), at) },
    { names: ['-c', '--cpu-shares'], value: true, apply: (v, at) => set(['resources', 'cpu_shares'], num(v), at) },
    { names: ['--cpuset-cpus'], value: true, apply: (v, at) => set(['resources', 'cpuset'], v, at) },
    { names: ['--cpuset-mems'], value: true, apply: (v, at) => set(['resources', 'cpuset_mems'], v, at) },
    { names: ['--pids-limit'], value: true, apply: (v, at) => set(['resources', 'pids'], /^-?[0-9]+$/.test(v) && Number(v) <= 0 ? -1 : num(v), at) },
    { names: ['--blkio-weight'], value: true, apply: (v, at) => set(['resources', 'io_weight'], num(v), at) },
    ...(['read-bps', 'write-bps', 'read-iops', 'write-iops'] as const).map((k): Flag => ({
      names: [`--device-${k}`], value: true, apply: (v, at) => {
        const i = v.lastIndexOf(':');
        const key = `device_${k.replace('-', '_')}`;
        const r = ((c.resources ??= {}) as Record<string, unknown[]>)[key] ??= [];
        r.push({ path: v.slice(0, i), rate: k.endsWith('iops') ? num(v.slice(i + 1)) : v.slice(i + 1) });
        origin.push({ path: ['resources', key, r.length - 1], at });
      },
    })),
    { names: ['--cpu-period'], value: true, apply: (v) => { cpuPeriod = Number(v); } },
    { names: ['--cpu-quota'], value: true, apply: (v, at) => { cpuQuota = { v: Number(v), at }; } },
    { names: ['--ipc'], value: true, apply: nsFlag('ipc', '--ipc') },
    { names: ['--pid'], value: true, apply: nsFlag('pid', '--pid') },
    { names: ['--uts'], value: true, apply: nsFlag('uts', '--uts') },
    { names: ['--cgroupns'], value: true, apply: nsFlag('cgroup', '--cgroupns') },
    { names: ['--userns'], value: true, apply: nsFlag('user', '--userns') },
    ...DROPPED.flatMap(([names, value, why]) => names.map((n): Flag => ({ names: [n], value, apply: (v, at) => note('dropped', at, 'no-key', `\`${n}${value ? ` ${v}` : ''}\`: ${why}`) }))),
  ];
  let cpuPeriod = 100_000;
  let cpuQuota: { v: number; at: Loc } | undefined;
  const byName = new Map(flags.flatMap((f) => f.names.map((n) => [n, f] as const)));

  // The words before the flags: docker run, docker container run, podman run, sandbox run.
  let i = 0;
  const lead = argv.slice(0, 3).indexOf('run');
  if (lead >= 0 && argv.slice(0, lead).every((w) => ['docker', 'podman', 'nerdctl', 'sandbox', 'container'].includes(w))) i = lead + 1;
  const unknown: number[] = [];
  for (; i < argv.length; i++) {
    const w = argv[i]!;
    if (w === '--') { i++; break; }
    if (!w.startsWith('-') || w === '-') break;
    // --name=value, --name value; -abc (clustered booleans), -p8080:80, -p 8080:80.
    const pairs: [string, string | undefined][] = [];
    if (w.startsWith('--')) {
      const eq = w.indexOf('=');
      pairs.push(eq < 0 ? [w, undefined] : [w.slice(0, eq), w.slice(eq + 1)]);
    } else {
      for (let k = 1; k < w.length; k++) {
        const name = `-${w[k]}`;
        const f = byName.get(name);
        if (f?.value && k + 1 < w.length) { pairs.push([name, w.slice(k + 1).replace(/^=/, '')]); break; }
        pairs.push([name, undefined]);
      }
    }
    const start = i;
    for (const [name, attached] of pairs) {
      const f = byName.get(name);
      if (!f) { unknown.push(start); continue; }
      let v = attached;
      if (f.value && v === undefined) {
        if (i + 1 >= argv.length) { note('refused', loc(start), 'flag-needs-value', `\`${name}\` needs a value`); continue; }
        v = argv[++i]!;
      }
      f.apply(v ?? 'true', loc(start, i));
    }
  }
  if (unknown.length) {
    const names = [...new Set(unknown.map((k) => argv[k]!.split('=')[0]!))];
    for (const k of unknown) note('refused', loc(k), 'unknown-flag', `\`${argv[k]!.split('=')[0]}\` is not a docker run flag that sandbox knows${names.length > 1 ? ` (nor ${names.filter((n) => n !== argv[k]!.split('=')[0]).join(', ')})` : ''}; \`sandbox run --help\` lists the ones it maps`);
  }
  if (cpuQuota && cpuQuota.v > 0 && c.resources && (c.resources as Record<string, unknown>).cpus === undefined) set(['resources', 'cpus'], Math.round((cpuQuota.v / cpuPeriod) * 1000) / 1000, cpuQuota.at);

  // IMAGE [COMMAND [ARG…]], or with --rootfs only the command.
  if (c.rootfs === undefined) {
    if (i >= argv.length) note('refused', { file: COMMAND_LINE, line: 1, col: text.length + 1 }, 'no-image', 'name an image (as docker run does), or `--rootfs host` to run on the host\'s own root filesystem, read-only');
    else { set(['image'], argv[i]!, loc(i)); i++; }
  }
  if (i < argv.length) set(['command'], argv.slice(i), loc(i, argv.length - 1));
  else if (c.rootfs !== undefined) note('refused', { file: COMMAND_LINE, line: 1, col: text.length + 1 }, 'no-command', 'with `--rootfs`, name the command to run after it, such as `--rootfs host sh`');
  if (c.name === undefined) c.name = nameFrom(typeof c.image === 'string' ? c.image : (c.command as string[] | undefined)?.[0]);
  out.config = ordered(literal(c) as Record<string, unknown>);
  finishImport(out);
  out.config = ordered(out.config);
  return out;
}
