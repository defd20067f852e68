// What a sandbox looks like from inside, and whether that matches its plan step by step. The
// probe is a POSIX shell script run as the sandbox's command; nothing the engine reports is used.
import { readFileSync, readlinkSync } from 'node:fs';
import type { Plan } from '../../src/plan/types';
import { stepsOf } from '../../src/plan/steps';
import { capabilityNumber } from '../../src/model/tables';

/** Prints one section per fact, between "== name" lines. */
export const PROBE = [
  'echo "== pid1"; tr "\\0" " " < /proc/1/cmdline; echo',
  'echo "== self"; echo $$',
  'echo "== hostname"; hostname',
  'echo "== ids"; id -u; id -g; id -G',
  'echo "== status"; grep -E "^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):" /proc/self/status',
  'echo "== dev"; ls -A /dev | sort | tr "\\n" " "; echo',
  'echo "== ns"; for n in user pid mnt uts ipc net cgroup time; do echo "$n $(readlink /proc/self/ns/$n)"; done',
  'echo "== limits"; cat /proc/self/limits',
  'echo "== umask"; umask',
  'echo "== cwd"; pwd',
  'echo "== kcore"; wc -c < /proc/kcore 2>&1',
  'echo "== mountinfo"; cat /proc/self/mountinfo',
  'echo "== cgroup"; for f in $CGFILES; do printf "%s=" "$f"; cat "/sys/fs/cgroup/$f" 2>&1 | head -n 1; done',
  'echo "== end"',
].join('\n');

export interface Inside { sections: Record<string, string[]> }

export function parseProbe(out: string): Inside {
  const sections: Record<string, string[]> = {};
  let cur = '';
  for (const line of out.split('\n')) {
    const m = /^== (\w+)$/.exec(line);
    if (m) { cur = m[1]!; sections[cur] = []; } else if (cur) sections[cur]!.push(line);
  }
  return { sections };
}

interface Mount { point: string; opts: string[]; fstype: string; source: string; superOpts: string[] }
function mounts(inside: Inside): Mount[] {
  return (inside.sections.mountinfo ?? []).filter(Boolean).map((l) => {
    const [pre, post = ''] = l.split(' - ');
    const f = pre!.split(' ');
    const [fstype = '', source = '', superOpts = ''] = post.split(' ');
    return { point: f[4]!, opts: f[5]!.split(','), fstype, source, superOpts: superOpts.split(',') };
  });
}

/** The cgroup files to read inside, as paths under /sys/fs/cgroup, for the plan's limits. */
export function cgroupFiles(plan: Plan, layout: 'v1' | 'v2'): string {
  return stepsOf(plan.steps, 'cgroup.set').filter((s) => s.args.value !== 'inherit' && !s.args.file.startsWith('io.max') && !s.args.file.startsWith('blkio.throttle'))
    .map((s) => (layout === 'v2' ? s.args.file : `${s.args.controller}/${s.args.file}`)).join(' ');
}

/** Every way the inside differs from what the plan says; [] when it matches line by line. */
export function mismatches(plan: Plan, inside: Inside, layout: 'v1' | 'v2'): string[] {
  const bad: string[] = [];
  const sec = (n: string) => inside.sections[n] ?? [];
  const status = Object.fromEntries(sec('status').map((l) => l.split(':\t') as [string, string]));
  const ms = mounts(inside);
  const at = (p: string) => ms.filter((m) => m.point === p).at(-1);
  const expect = (ok: boolean, what: string) => { if (!ok) bad.push(what); };
  if (!sec('end')) bad.push('the probe did not finish');

  for (const s of plan.steps) {
    switch (s.kind) {
      case 'hostname': expect(sec('hostname')[0] === s.args.hostname, `${s.id}: hostname is ${sec('hostname')[0]}`); break;
      case 'user.ids': {
        const [uid, gid] = sec('ids');
        if (typeof s.args.user === 'number') expect(Number(uid) === s.args.user, `${s.id}: uid is ${uid}`);
        if (typeof s.args.group === 'number') expect(Number(gid) === s.args.group, `${s.id}: gid is ${gid}`);
        break;
      }
      case 'user.groups': {
        const groups = (sec('ids')[2] ?? '').split(' ').map(Number);
        for (const g of s.args.groups) if (typeof g === 'number') expect(groups.includes(g), `${s.id}: group ${g} missing from ${groups}`);
        break;
      }
      case 'caps.apply': {
        // The kernel's and OCI's rules: bounding for every uid; root holds it as permitted and
        // effective; any other uid holds only cap_add's, in permitted, effective and ambient.
        const mask = (l: string[]) => l.reduce((m, c) => m | (1n << BigInt(capabilityNumber(c))), 0n);
        const bounding = mask(s.args.bounding), ambient = mask(s.args.ambient) & bounding;
        const root = Number(sec('ids')[0]) === 0;
        const want: Record<string, bigint> = root
          ? { CapBnd: bounding, CapPrm: bounding, CapEff: bounding, CapInh: 0n, CapAmb: 0n }
          : { CapBnd: bounding, CapPrm: ambient, CapEff: ambient, CapInh: ambient, CapAmb: ambient };
        for (const [set, m] of Object.entries(want)) expect(BigInt('0x' + (status[set] ?? 'x')) === m, `${s.id}: ${set} is ${status[set]}, the plan means ${m.toString(16).padStart(16, '0')}`);
        break;
      }
      case 'nnp': expect(status.NoNewPrivs === '1', `${s.id}: NoNewPrivs is ${status.NoNewPrivs}`); break;
      case 'nnp.off': expect(status.NoNewPrivs === '0', `${s.id}: NoNewPrivs is ${status.NoNewPrivs}`); break;
      case 'seccomp': expect(status.Seccomp === '2', `${s.id}: Seccomp is ${status.Seccomp}`); break;
      case 'seccomp.off': expect(status.Seccomp === '0', `${s.id}: Seccomp is ${status.Seccomp}`); break;
      case 'ns.new': case 'ns.host': {
        const name = s.args.type === 'mount' ? 'mnt' : String(s.args.type);
        const line = sec('ns').find((l) => l.startsWith(name + ' '));
        const insideNs = line?.split(' ')[1];
        let host = '';
        try { host = readlinkSync(`/proc/self/ns/${name}`); } catch { /* no such namespace on this kernel */ }
        if (s.kind === 'ns.new') expect(insideNs !== host, `${s.id}: the ${name} namespace is the host's`);
        else expect(insideNs === host, `${s.id}: the ${name} namespace is not the host's (${insideNs} vs ${host})`);
        break;
      }
      case 'dev.node': expect(sec('dev')[0]!.split(' ').includes(String(s.args.name)), `${s.id}: /dev/${s.args.name} missing`); break;
      case 'mount.proc': expect(at('/proc')?.fstype === 'proc', `${s.id}: /proc is not a fresh proc`); break;
      case 'mount.sys': expect(at('/sys')?.opts.includes('ro') === true, `${s.id}: /sys is not read-only`); break;
      case 'mount.cgroup': expect(at('/sys/fs/cgroup')?.opts.includes('ro') === true || ms.some((m) => m.point.startsWith('/sys/fs/cgroup/') && m.opts.includes('ro')), `${s.id}: /sys/fs/cgroup is not read-only`); break;
      case 'mount.mask': {
        // What exists must be covered: by /dev/null for a file, an empty read-only tmpfs for a folder.
        if (s.args.path === '/proc/kcore' && existsOnHost('/proc/kcore')) expect(sec('kcore')[0]?.trim() === '0', `${s.id}: /proc/kcore is readable`);
        const m = at(String(s.args.path));
        expect(!existsOnHost(String(s.args.path)) || (!!m && (m.fstype === 'tmpfs' ? m.opts.includes('ro') : true)), `${s.id}: ${s.args.path} is not masked`);
        break;
      }
      case 'mount.readonly': {
        const m = at(String(s.args.path));
        expect(!existsOnHost(String(s.args.path)) || (m?.opts.includes('ro') ?? false), `${s.id}: ${s.args.path} is not read-only`);
        break;
      }
      case 'mount.root-readonly': expect(at('/')?.opts.includes('ro') === true, `${s.id}: / is not read-only`); break;
      case 'mount.bind': {
        const m = at(String(s.args.target));
        expect(!!m, `${s.id}: nothing mounted on ${s.args.target}`);
        if (m) {
          expect(m.opts.includes(s.args.readOnly ? 'ro' : 'rw'), `${s.id}: ${s.args.target} is ${m.opts[0]}, plan says ${s.args.readOnly ? 'ro' : 'rw'}`);
          for (const f of s.args.flags) expect(m.opts.includes(f), `${s.id}: ${s.args.target} lacks ${f}`);
        }
        break;
      }
      case 'mount.tmpfs': case 'mount.tmpfs.dev': case 'mount.dev': {
        const target = String(s.args.target);
        const m = at(target);
        expect(m?.fstype === 'tmpfs', `${s.id}: ${target} is not a tmpfs`);
        if (m && s.args.sizeBytes) expect(m.superOpts.includes(`size=${Number(s.args.sizeBytes) / 1024}k`), `${s.id}: ${target} size is ${m.superOpts}`);
        if (m) for (const f of s.args.flags) expect(m.opts.includes(f), `${s.id}: ${target} lacks ${f}`);
        if (m && s.kind === 'mount.tmpfs' && s.args.readOnly) expect(m.opts.includes('ro'), `${s.id}: ${target} is not read-only`);
        break;
      }
      case 'rlimit': {
        const names: Record<string, string> = { nofile: 'Max open files', nproc: 'Max processes', core: 'Max core file size', fsize: 'Max file size', stack: 'Max stack size', memlock: 'Max locked memory', cpu: 'Max cpu time', as: 'Max address space' };
        const line = sec('limits').find((l) => l.startsWith(names[String(s.args.name)] ?? '?'));
        const [soft, hard] = line ? line.slice(26).trim().split(/\s+/) : [];
        const want = (n: unknown) => (n === -1 ? 'unlimited' : String(n));
        expect(soft === want(s.args.soft) && hard === want(s.args.hard), `${s.id}: ${line}`);
        break;
      }
      case 'umask': expect(parseInt(sec('umask')[0] ?? '', 8) === s.args.umask, `${s.id}: umask is ${sec('umask')[0]}`); break;
      case 'exec': expect(sec('cwd')[0] === s.args.cwd, `${s.id}: cwd is ${sec('cwd')[0]}`); break;
      case 'cgroup.set': {
        if (s.args.value === 'inherit' || /^(io\.max|blkio\.throttle)/.test(String(s.args.file))) break;
        const key = layout === 'v2' ? String(s.args.file) : `${s.args.controller}/${s.args.file}`;
        const line = sec('cgroup').find((l) => l.startsWith(key + '='));
        const got = line?.slice(key.length + 1).trim();
        expect(got === String(s.args.value), `${s.id}: ${key} is ${got}, plan says ${s.args.value}`);
        break;
      }
      default: break;
    }
  }
  expect(sec('self')[0] === '1', `the probe is not PID 1 (it is ${sec('self')[0]})`);
  return bad;
}

function existsOnHost(p: string): boolean {
  try { readFileSync(p, { flag: 'r' }); return true; } catch (e) { return (e as NodeJS.ErrnoException).code !== 'ENOENT'; }
}
