// The plan compiler: snapshots of every sample on both cgroup layouts, visible defaults,
// the ordering rules (each one shown to catch a broken order), stable ids and digest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadSpec } from '../../src/model/load';
import { compileExec } from '../../src/plan/exec';
import { compile } from '../../src/plan/compile';
import { cpuWeight } from '../../src/plan/sections/resources';
import { findStep, stepsOf } from '../../src/plan/steps';
import { checkOrder, ORDER_RULES } from '../../src/plan/order';
import { renderPlan } from '../../src/plan/render';
import type { HostFeatures, Step } from '../../src/plan/types';
import { HYBRID_HOST, V2_HOST, ROOT, ROOTLESS_HOST, ROOTLESS_V2_HOST, fakeFs, loadText } from '../helpers/load';

/** The sample folder workspace.yml is planned against: a git checkout with hooks and a secret. */
const WORKSPACE_FILES = ['/project/samples/.git/hooks/', '/project/samples/.git/config', '/project/samples/.bashrc', '/project/samples/rootfs/busybox/', '/project/samples/images/busybox/', '/project/samples/images/index.json', '/home/user/.ssh/id_ed25519'];

const SNAP = join(ROOT, 'test/unit/snapshots');
const samples = readdirSync(join(ROOT, 'samples')).filter((f) => f.endsWith('.yml')).sort();

function planOf(sample: string, host: HostFeatures) {
  const r = loadSpec({
    file: `samples/${sample}`, absFile: `/project/samples/${sample}`, bytes: readFileSync(join(ROOT, 'samples', sample)),
    env: {}, home: '/home/user', hostCpus: 2, readFile: () => undefined,
    // workspace.yml's rules and defaults look at the host's files: a fixed folder of them.
    ...(sample === 'workspace.yml' ? { paths: fakeFs(WORKSPACE_FILES) } : {}),
  }, { rootless: host.rootless });
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), [], `${sample} is valid`);
  return compile(r.spec!, host);
}

function snapshot(name: string, actual: string) {
  const file = join(SNAP, name);
  if (process.env.UPDATE_SNAPSHOTS === '1' || !existsSync(file)) {
    if (process.env.CI === 'true' && !existsSync(file)) assert.fail(`snapshot ${name} is missing; run UPDATE_SNAPSHOTS=1 npm test -- unit and commit it`);
    mkdirSync(SNAP, { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  assert.equal(actual, readFileSync(file, 'utf8'), `plan differs from ${name} (UPDATE_SNAPSHOTS=1 to accept)`);
}

test('seven samples exist and each starts with the $schema comment', () => {
  assert.deepEqual(samples, ['busybox.yml', 'egress.yml', 'jenkins.yml', 'limits.yml', 'locked-down.yml', 'web.yml', 'workspace.yml']);
  for (const s of samples) assert.match(readFileSync(join(ROOT, 'samples', s), 'utf8'), /^# yaml-language-server: \$schema=\.\.\/schema\/sandbox\.schema\.json\n/);
});

for (const sample of samples) {
  // Rootless: as a user on this hybrid host, every sample without limits (those are refused there).
  const rootless = ['busybox.yml', 'web.yml', 'egress.yml'].includes(sample) ? [['rootless', ROOTLESS_HOST] as const] : [];
  for (const [layout, host] of [['hybrid', HYBRID_HOST], ['v2', V2_HOST], ...rootless] as const) {
    test(`plan snapshot: ${sample} on cgroup ${layout}`, () => {
      const { plan, problems } = planOf(sample, host);
      assert.deepEqual(problems.map((p) => p.code), []);
      snapshot(`${sample.replace(/\.yml$/, '')}.${layout}.txt`, renderPlan(plan) + '\n' + JSON.stringify(plan.steps.map((s) => [s.id, s.kind, s.args]), null, 1) + '\n');
    });
  }
}

test('defaults are steps: 11 capabilities, 12 masked paths, 5 read-only paths, 6 devices, each sourced as default', () => {
  const { plan } = compile(loadText('version: 1\ncommand: [x]\n').spec!, HYBRID_HOST);
  const count = (kind: string) => plan.steps.filter((s) => s.kind === kind && s.source === 'default').length;
  assert.equal(count('cap.keep'), 11);
  assert.ok(plan.steps.find((s) => s.id === 'sysctl:net.ipv4.ping_group_range' && s.source === 'default'));
  assert.equal(count('mount.mask'), 12);
  assert.equal(count('mount.readonly'), 5);
  assert.equal(count('dev.node'), 6);
  assert.ok(plan.steps.find((s) => s.kind === 'seccomp' && s.source === 'default'));
  assert.ok(plan.steps.find((s) => s.kind === 'nnp' && s.source === 'default'));
});

test('each step cites its config line', () => {
  const { plan } = compile(loadText('version: 1\ncommand: [x]\nresources:\n  memory: 1g\ncap_add: [NET_ADMIN]\nvolumes: ["./d:/d"]\n').spec!, V2_HOST);
  const src = (id: string) => plan.steps.find((s) => s.id === id)!.source;
  assert.deepEqual(src('cgroup:memory'), { file: 'sandbox.yml', line: 4, col: 11 });
  assert.deepEqual(src('cap:NET_ADMIN'), { file: 'sandbox.yml', line: 5, col: 11 });
  assert.deepEqual(src('mount:/d'), { file: 'sandbox.yml', line: 6, col: 11 });
  assert.deepEqual(src('exec'), { file: 'sandbox.yml', line: 2, col: 10 });
  assert.equal(stepsOf(plan.steps, 'cgroup.set').find((s) => s.id === 'cgroup:memory')!.args.file, 'memory.max');
});

test('limits map to v1 and v2 files', () => {
  const spec = loadText('version: 1\ncommand: [x]\nresources: {memory: 1g, memory_swap: 2g, cpus: 1.5, cpu_shares: 512, pids: 10, io_weight: 500}\n').spec!;
  const files = (h: HostFeatures) => compile(spec, h).plan.steps.filter((s) => s.kind === 'cgroup.set').map((s) => `${s.args.file}=${s.args.value}`);
  assert.deepEqual(files(V2_HOST), ['memory.max=1073741824', 'memory.swap.max=1073741824', 'cpu.max=150000 100000', 'cpu.weight=20', 'pids.max=10', 'io.weight=default 500']);
  assert.deepEqual(files(HYBRID_HOST), ['memory.limit_in_bytes=1073741824', 'memory.memsw.limit_in_bytes=2147483648', 'cpu.cfs_period_us=100000', 'cpu.cfs_quota_us=150000', 'cpu.shares=512', 'pids.max=10', 'blkio.weight=500']);
});

test('cpu_shares becomes the v2 weight by the integer conversion runc uses (1024, the default, is 39, not 40)', () => {
  assert.deepEqual([2, 512, 1024, 262144].map(cpuWeight), [1, 20, 39, 10000]);
});

test('what the host cannot apply is reported against the config line', () => {
  const spec = loadText('version: 1\ncommand: [x]\nresources: {memory: 1g, memory_swap: 2g}\nnamespaces: {user: true}\n').spec!;
  const host: HostFeatures = { ...HYBRID_HOST, userns: false, cgroup: { ...HYBRID_HOST.cgroup, swap: false } };
  assert.deepEqual(compile(spec, host).problems.map((p) => [p.code, typeof p.src === 'object' ? p.src.line : p.src]), [['no-swap-accounting', 3], ['no-user-namespaces', 4]]);
});

test('rootless: the user namespace is private by default, the caller root inside and its ranges above, written by newuidmap', () => {
  const spec = loadText('version: 1\ncommand: [x]\nnetwork: none\n', { rootless: ROOTLESS_HOST.rootless }).spec!;
  const { plan, problems } = compile(spec, ROOTLESS_HOST);
  assert.deepEqual(problems, []);
  assert.equal(findStep(plan.steps, 'ns.new')?.args.type, 'user');
  const idmap = findStep(plan.steps, 'idmap')!;
  assert.deepEqual(idmap.args, { uid: [{ container: 0, host: 1000, size: 1 }, { container: 1, host: 100000, size: 65536 }], gid: [{ container: 0, host: 1000, size: 1 }, { container: 1, host: 100000, size: 65536 }], tool: 'newidmap' });
  assert.match(idmap.title, /rootless: you, dev, are root inside/);
  // No cgroup is delegated on a hybrid host: the plan has none, and says nothing it cannot do.
  assert.deepEqual(plan.steps.filter((s) => s.stage === 'cgroup' || s.kind === 'cgroup.attach' || s.kind === 'mount.cgroup'), []);
  // user: false cannot run without root, and is refused at its line.
  const off = compile(loadText('version: 1\ncommand: [x]\nnetwork: none\nnamespaces: {user: false}\n', { rootless: ROOTLESS_HOST.rootless }).spec!, ROOTLESS_HOST).problems;
  assert.deepEqual(off.map((p) => [p.code, typeof p.src === 'object' ? p.src.line : p.src]), [['rootless-needs-userns', 4]]);
});

test('rootless with no subordinate range: a one-id map the CLI writes itself, and the plan says so', () => {
  const rl = { ...ROOTLESS_HOST.rootless!, subuid: [], subgid: [] };
  const host: HostFeatures = { ...ROOTLESS_HOST, rootless: rl };
  const { plan, problems } = compile(loadText('version: 1\ncommand: [x]\nnetwork: none\n', { rootless: rl }).spec!, host);
  assert.deepEqual(problems, []);
  const idmap = findStep(plan.steps, 'idmap')!;
  assert.deepEqual([idmap.args.uid, idmap.args.tool], [[{ container: 0, host: 1000, size: 1 }], 'write']);
  assert.match(idmap.title, /no range, so only your own id is mapped/);
  const groups = compile(loadText('version: 1\ncommand: [x]\nnetwork: none\ngroup_add: [0]\n', { rootless: rl }).spec!, host).problems;
  assert.deepEqual(groups.map((p) => [p.code, typeof p.src === 'object' ? p.src.line : p.src]), [['rootless-one-id-groups', 4]]);
});

test('rootless: a map outside the caller\'s id and ranges is refused at its line', () => {
  const spec = loadText('version: 1\ncommand: [x]\nnetwork: none\nnamespaces:\n  user: {uid_map: ["0:0:1"], gid_map: ["0:1000:1"]}\n', { rootless: ROOTLESS_HOST.rootless }).spec!;
  const { problems } = compile(spec, ROOTLESS_HOST);
  assert.deepEqual(problems.map((p) => [p.code, typeof p.src === 'object' ? p.src.line : p.src]), [['rootless-map-not-yours', 5]]);
  assert.match(problems[0]!.message, /uid map 0:0:1 is outside what dev may map \(its own uid 1000 and 100000-165535/);
});

test('rootless: a limit is refused at its line where no cgroup is delegated, and applies in a delegated v2 subtree', () => {
  const text = 'version: 1\ncommand: [x]\nnetwork: none\nresources:\n  memory: 64m\n  pids: 32\n';
  const hybrid = compile(loadText(text, { rootless: ROOTLESS_HOST.rootless }).spec!, ROOTLESS_HOST).problems;
  assert.deepEqual(hybrid.map((p) => [p.code, typeof p.src === 'object' ? p.src.line : p.src]), [['rootless-no-cgroup', 5], ['rootless-no-cgroup', 6]]);
  assert.match(hybrid[0]!.message, /cgroup hybrid cannot be delegated to a user/);
  const v2NoDelegation: HostFeatures = { ...ROOTLESS_V2_HOST, cgroup: { ...ROOTLESS_V2_HOST.cgroup, delegated: undefined } };
  assert.match(compile(loadText(text, { rootless: ROOTLESS_HOST.rootless }).spec!, v2NoDelegation).problems[0]!.message, /Delegate=yes/);
  const { plan, problems } = compile(loadText(text, { rootless: ROOTLESS_HOST.rootless }).spec!, ROOTLESS_V2_HOST);
  assert.deepEqual(problems, []);
  assert.equal(findStep(plan.steps, 'cgroup.create')?.args.path, 'user.slice/user-1000.slice/user@1000.service/sandbox/sandbox');
  assert.deepEqual(plan.steps.filter((s) => s.kind === 'cgroup.set').map((s) => s.kind === 'cgroup.set' && `${s.args.file}=${s.args.value}`), ['memory.max=67108864', 'memory.swap.max=67108864', 'pids.max=32']);
});

test('rootless: a private network goes through pasta, or slirp4netns where pasta is missing or asked for; each port says which', () => {
  const text = (extra = '') => `version: 1\ncommand: [x]\nnetwork: {mode: private${extra}}\nports: ["127.0.0.1:8080:80"]\n`;
  const run = (host: HostFeatures, extra?: string) => compile(loadText(text(extra), { rootless: host.rootless }).spec!, host);
  const pasta = run(ROOTLESS_HOST);
  assert.deepEqual(pasta.problems, []);
  assert.deepEqual(pasta.plan.steps.filter((s) => s.stage === 'network').map((s) => s.kind), ['net.loopback', 'net.usernet', 'net.port', 'net.hosts', 'net.resolv']);
  assert.deepEqual(findStep(pasta.plan.steps, 'net.usernet')?.args, { tool: 'pasta', binary: '/usr/bin/pasta', mtu: 65520 });
  assert.match(findStep(pasta.plan.steps, 'net.port')!.title, /pasta: the sandbox sees the client's own address/);
  const noPasta: HostFeatures = { ...ROOTLESS_HOST, rootless: { ...ROOTLESS_HOST.rootless!, pasta: undefined } };
  assert.equal(findStep(run(noPasta).plan.steps, 'net.usernet')?.args.tool, 'slirp4netns');
  // A host with no default route (an offline laptop) cannot start pasta: auto takes slirp4netns, and says why.
  const offline = run({ ...ROOTLESS_HOST, rootless: { ...ROOTLESS_HOST.rootless!, route: false } });
  assert.match(findStep(offline.plan.steps, 'net.usernet')!.title, /through slirp4netns.*this host has no default route, which pasta copies/);
  assert.match(findStep(run(ROOTLESS_HOST, ', rootless_cmd: slirp4netns').plan.steps, 'net.port')!.title, /slirp4netns: the sandbox sees connections from the host's loopback come from 10.0.2.2/);
  const neither: HostFeatures = { ...ROOTLESS_HOST, rootless: { ...ROOTLESS_HOST.rootless!, pasta: undefined, slirp4netns: undefined } };
  assert.deepEqual(run(neither).problems.map((p) => [p.code, typeof p.src === 'object' ? p.src.line : p.src]), [['no-usernet', 3]]);
  // /dev/net/tun closed to the caller (a host without udev): refused by up at the network line, with the way out.
  const noTun: HostFeatures = { ...ROOTLESS_HOST, rootless: { ...ROOTLESS_HOST.rootless!, tun: false } };
  assert.deepEqual(run(noTun).problems.map((p) => [p.code, typeof p.src === 'object' ? p.src.line : p.src, p.atRun]), [['no-tun', 3, true]]);
  assert.match(run(noTun).problems[0]!.message, /chmod 0666 \/dev\/net\/tun/);
  // What only root can do is refused where it is written.
  assert.deepEqual(run(ROOTLESS_HOST, ', proxy: kernel, subnet: 10.9.0.0/24').problems.map((p) => [p.code, typeof p.src === 'object' ? p.src.line : p.src]), [['rootless-proxy', 3], ['rootless-subnet', 3]]);
});

test('up refuses, at their lines, what detached sandboxes cannot do yet: a terminal, user-space ports', () => {
  const r = compile(loadText('version: 1\ncommand: [x]\ndetach: true\nrestart: always\ntty: true\nports: ["[::1]:80:80"]\n').spec!, HYBRID_HOST);
  assert.deepEqual(r.problems.map((p) => [p.code, typeof p.src === 'object' ? p.src.line : p.src, p.atRun]), [['detach-tty', 3, true], ['detach-userspace-ports', 3, true]]);
  assert.deepEqual(compile(loadText('version: 1\ncommand: [x]\ndetach: true\n').spec!, HYBRID_HOST).problems, []);
});

test('io_weight on a host whose disks have no weighting scheduler is refused at its line', () => {
  const spec = loadText('version: 1\ncommand: [x]\nresources:\n  io_weight: 300\n').spec!;
  const host: HostFeatures = { ...HYBRID_HOST, cgroup: { ...HYBRID_HOST.cgroup, ioWeightFile: undefined } };
  assert.deepEqual(compile(spec, host).problems.map((p) => [p.code, typeof p.src === 'object' ? p.src.line : p.src]), [['no-io-weight', 4]]);
  const bfq: HostFeatures = { ...HYBRID_HOST, cgroup: { ...HYBRID_HOST.cgroup, ioWeightFile: 'blkio.bfq.weight' } };
  assert.deepEqual(compile(spec, bfq).plan.steps.filter((s) => s.kind === 'cgroup.set').map((s) => s.args.file), ['blkio.bfq.weight']);
});

test('ids are stable when unrelated lines move; the digest ignores titles and lines', () => {
  const a = compile(loadText('version: 1\ncommand: [x]\nhostname: h\n').spec!, V2_HOST).plan;
  const b = compile(loadText('version: 1\n\n# moved\nhostname: h\ncommand: [x]\n').spec!, V2_HOST).plan;
  assert.deepEqual(a.steps.map((s) => s.id), b.steps.map((s) => s.id));
  assert.equal(a.digest, b.digest);
  const c = compile(loadText('version: 1\ncommand: [y]\nhostname: h\n').spec!, V2_HOST).plan;
  assert.notEqual(a.digest, c.digest);
});

test('every compiled plan passes the ordering rules', () => {
  for (const sample of samples) for (const h of [HYBRID_HOST, V2_HOST]) assert.deepEqual(checkOrder(planOf(sample, h).plan.steps), []);
});

test('each ordering rule catches the disorder it is there for', () => {
  const { plan } = compile(loadText('version: 1\ncommand: [x]\nworkdir: /w\nnamespaces: {user: true}\nsysctls: {net.ipv4.ip_forward: 0}\nresources: {memory: 1g}\nsecurity: {read_only: true}\n').spec!, HYBRID_HOST);
  const steps = plan.steps;
  const move = (id: string, beforeId: string): Step[] => {
    const s = steps.filter((x) => x.id !== id);
    const i = s.findIndex((x) => x.id === beforeId);
    return [...s.slice(0, i), steps.find((x) => x.id === id)!, ...s.slice(i)];
  };
  const broken = (list: Step[], rule: string) => assert.ok(checkOrder(list).some((m) => m.startsWith(rule)), `${rule}: ${checkOrder(list).join('; ')}`);
  broken(move('seccomp', 'nnp'), 'no_new_privs before seccomp');
  broken([...steps.slice(0, -1).filter((s) => s.id !== 'fds'), { ...steps.find((s) => s.id === 'seccomp')!, id: 'seccomp2' }, steps.at(-1)!], 'seccomp last before exec');
  broken(move('caps', 'pivot'), 'caps dropped after mounts');
  broken(move('mask:/proc/kcore', 'pivot'), 'masked and read-only paths, and the working directory, after pivot_root');
  broken(move('sysctl:net.ipv4.ip_forward', 'mount:/proc'), 'sysctls before /proc/sys');
  broken(move('cgroup:memory', 'cgroup'), 'cgroup created before limits');
  broken([...steps.slice(1), steps[0]!].filter((s): boolean => s.kind !== 'exec').concat([steps.at(-1)!]), 'stages in order');
  broken(steps.slice(0, -1), 'exec is last');
  broken([...steps.slice(0, 2), steps[1]!, ...steps.slice(2)], 'unique ids');
  broken(move('mount:/:ro', 'pivot'), 'masked and read-only paths, and the working directory, after pivot_root');
  broken(move('workdir', 'pivot'), 'masked and read-only paths, and the working directory, after pivot_root');
  broken(move('mount:/:ro', 'workdir'), 'root read-only last among mounts');
  broken(move('mount:private', 'mount:/proc').filter(() => true).slice(0), 'mounts private first');
  broken(move('ns:pid', 'ns:user'), 'user namespace first');
  assert.equal(ORDER_RULES.length, 19);
});

test('a restart policy is carried by the exec step; the command stays PID 1 unless init is asked for', () => {
  const exec = (yml: string) => compile(loadText(`version: 1\ncommand: [x]\n${yml}`).spec!, HYBRID_HOST).plan.steps.find((s) => s.kind === 'exec')!.args;
  assert.deepEqual([exec('restart: on-failure:3\n').restart, exec('restart: on-failure:3\n').init, exec('restart: always\ninit: true\n').init], [{ policy: 'on-failure', max: 3 }, false, true]);
  assert.deepEqual([exec('restart: always\n').restart, exec('').restart, exec('').init], [{ policy: 'always', max: 0 }, { policy: 'no', max: 0 }, false]);
});

test('exec joins every namespace of the sandbox (mount last), its cgroup, forks, and keeps its user and security steps', () => {
  const plan = compile(loadText('version: 1\ncommand: [x]\nuser: "1000:1000"\nenv: {A: "1", B: "2"}\nnamespaces: {user: true}\n').spec!, V2_HOST).plan;
  const e = compileExec(plan, { pid: 42, args: ['sh'], env: ['B=3', 'C=4'], tty: true, stdin: true });
  const made: string[] = plan.steps.filter((s) => s.kind === 'ns.new').map((s) => s.args.type);
  const entered = e.steps.filter((s) => s.kind === 'ns.enter');
  assert.deepEqual(entered.map((s) => s.args.type), ['user', 'uts', 'ipc', 'net', 'cgroup', 'pid', 'time', 'mount'].filter((t) => made.includes(t)));
  assert.ok(made.length >= 6);
  assert.equal(entered.find((s) => s.args.type === 'mount')!.args.path, '/proc/42/ns/mnt');
  assert.deepEqual(e.steps[0]!.kind === 'ns.enter' && e.steps[0]!.args.type, 'user');
  assert.equal(e.steps.filter((s) => s.kind === 'ns.enter').at(-1)!.args.type, 'mount');
  assert.deepEqual(e.steps.map((s) => s.kind).filter((k) => ['cgroup.attach', 'proc.fork', 'console', 'user.ids', 'caps.apply', 'nnp', 'seccomp', 'exec'].includes(k)), ['cgroup.attach', 'proc.fork', 'console', 'user.ids', 'caps.apply', 'nnp', 'seccomp', 'exec']);
  assert.ok(!e.steps.some((s) => s.kind.startsWith('mount.') || s.kind === 'hostname' || s.kind === 'cgroup.set'));
  const x = e.steps.find((s) => s.kind === 'exec')!.args;
  assert.deepEqual([x.args, (x.env as string[]).filter((v) => /^[ABC]=/.test(v)), x.init], [['sh'], ['A=1', 'B=3', 'C=4'], false]);
  const root = compileExec(plan, { pid: 42, args: ['id'], env: [], user: 'root:0', tty: false, stdin: false });
  assert.deepEqual(root.steps.find((s) => s.kind === 'user.ids')!.args, { user: 'root', group: 0 });
  assert.ok(!root.steps.some((s) => s.kind === 'console'));
});

test('capability sets: bounding for every uid, cap_add alone for a non-root one; the plan names each set', () => {
  const { plan } = compile(loadText('version: 1\ncommand: [x]\nuser: "1000:1000"\ncap_add: [NET_BIND_SERVICE, NET_RAW]\ncap_drop: [CHOWN]\n').spec!, V2_HOST);
  const caps = plan.steps.find((s) => s.kind === 'caps.apply')!;
  assert.deepEqual(caps.args.ambient, ['NET_BIND_SERVICE', 'NET_RAW']);
  assert.deepEqual(caps.args.bounding, ['DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'NET_BIND_SERVICE', 'NET_RAW', 'SYS_CHROOT', 'SETFCAP']);
  assert.match(caps.title, /as any other uid: permitted = effective = ambient = NET_BIND_SERVICE NET_RAW \(cap_add\)/);
  assert.match(caps.title, /this sandbox runs as uid 1000$/);
  const root = compile(loadText('version: 1\ncommand: [x]\n').spec!, V2_HOST).plan.steps.find((s) => s.kind === 'caps.apply')!;
  assert.deepEqual(root.args.ambient, []);
  assert.match(root.title, /as uid 0: permitted = effective = the bounding set, inheritable = ambient = none/);
  assert.match(root.title, /as any other uid: permitted = effective = ambient = none, inheritable = none/);
});

test('without no_new_privileges the filter is installed before the capabilities are dropped; the rule holds it there', () => {
  const { plan } = compile(loadText('version: 1\ncommand: [x]\nsecurity: {no_new_privileges: false}\n').spec!, HYBRID_HOST);
  const ids = plan.steps.filter((s) => s.stage === 'security' && !s.kind.startsWith('cap.')).map((s) => s.id);
  assert.deepEqual(ids, ['seccomp', 'caps', 'nnp']);
  assert.deepEqual(checkOrder(plan.steps), []);
  const s = plan.steps.filter((x) => x.id !== 'seccomp');
  const at = s.findIndex((x) => x.id === 'user:ids');
  assert.ok(checkOrder([...s.slice(0, at), plan.steps.find((x) => x.id === 'seccomp')!, ...s.slice(at)]).some((m) => m.startsWith('seccomp last before exec')));
});

test('the default seccomp filter is moby\'s allow list, resolved for the sandbox\'s capabilities, as a program in the plan', () => {
  const program = (cfg: string) => compile(loadText(`version: 1\ncommand: [x]\n${cfg}`).spec!, V2_HOST).plan.steps.find((s) => s.kind === 'seccomp')!.args.program as string[];
  const p = program('');
  assert.equal(p[0], 'default errno 1');
  assert.deepEqual(p.filter((l) => l.startsWith('arch ')), ['arch x86_64', 'arch x86', 'arch x32']);
  assert.ok(p.includes('rule allow 0 read'));
  assert.ok(p.includes('rule errno 38 clone3'));
  assert.ok(p.some((l) => l.startsWith('rule allow 0 clone 0 masked_eq 2114060288 0')));
  for (const refused of ['mount', 'umount2', 'unshare', 'setns', 'bpf', 'keyctl', 'kexec_load', 'init_module', 'pivot_root', 'open_by_handle_at']) assert.ok(!p.some((l) => l.split(' ')[3] === refused), refused);
  // CAP_SYS_ADMIN brings moby's SYS_ADMIN rules: mount and unshare allowed, clone unmasked.
  const admin = program('cap_add: [SYS_ADMIN]\n');
  assert.ok(admin.includes('rule allow 0 mount') && admin.includes('rule allow 0 unshare') && admin.includes('rule allow 0 clone'));
});

test('ping works without NET_RAW: ping_group_range is opened in a private network namespace, within the mapped gids', () => {
  const step = (cfg: string) => compile(loadText(`version: 1\ncommand: [x]\n${cfg}`).spec!, V2_HOST).plan.steps.filter((s) => s.kind === 'sysctl').find((s) => s.args.name === 'net.ipv4.ping_group_range');
  assert.equal(step('')!.args.value, '0 2147483647');
  assert.equal(step('namespaces: {user: true}\n')!.args.value, '0 65535');
  assert.equal(step('network: host\n'), undefined);
  // The file's own value wins, as one step.
  assert.deepEqual(step('sysctls: {net.ipv4.ping_group_range: "0 0"}\n')!.args.value, '0 0');
});

test('resources.cpuset_mems: cpuset.mems on both layouts; on v1 (this hybrid host) the CPUs are the parent\'s when cpuset is not given, and the nodes the parent\'s when only cpuset is', () => {
  const sets = (resources: string, layout: 'v1' | 'v2') => {
    const { plan } = compile(loadText(`version: 1\ncommand: [x]\nnetwork: none\nresources: {${resources}}\n`).spec!, layout === 'v2' ? V2_HOST : HYBRID_HOST);
    return plan.steps.filter((s) => s.kind === 'cgroup.set' && s.args.controller === 'cpuset').map((s) => `${s.id} ${(s.args as { file: string }).file}=${(s.args as { value: string }).value} @${typeof s.source === 'object' ? s.source.line : s.source}`);
  };
  assert.deepEqual(sets('cpuset_mems: "0-1"', 'v2'), ['cgroup:cpuset-mems cpuset.mems=0-1 @4']);
  assert.deepEqual(sets('cpuset_mems: "0-1"', 'v1'), ['cgroup:cpuset cpuset.cpus=inherit @4', 'cgroup:cpuset-mems cpuset.mems=0-1 @4']);
  assert.deepEqual(sets('cpuset: "0", cpuset_mems: "0"', 'v1'), ['cgroup:cpuset cpuset.cpus=0 @4', 'cgroup:cpuset-mems cpuset.mems=0 @4']);
  assert.deepEqual(sets('cpuset: "0"', 'v1'), ['cgroup:cpuset cpuset.cpus=0 @4', 'cgroup:cpuset-mems cpuset.mems=inherit @4']);
});

test('cgroup_parent and cgroup_path: where the cgroup is made, cited at their line; refused where they cannot be honoured', () => {
  const at = (res: string, host: HostFeatures = HYBRID_HOST) => {
    const { plan, problems } = compile(loadText(`version: 1\nname: web\ncommand: [x]\nresources:\n  ${res}\n`, { rootless: host.rootless }).spec!, host);
    const create = findStep(plan.steps, 'cgroup.create');
    return { path: create?.args.path, line: typeof create?.source === 'object' ? create.source.line : create?.source, undo: create?.undo, attach: findStep(plan.steps, 'cgroup.attach')?.args.path, problems: problems.map((p) => p.code) };
  };
  assert.deepEqual(at('cgroup_parent: ci'), { path: 'sandbox/ci/web', line: 5, undo: { kind: 'cgroup.remove', args: { path: 'sandbox/ci/web' } }, attach: 'sandbox/ci/web', problems: [] });
  assert.equal(at('cgroup_parent: /batch/jobs/', V2_HOST).path, 'batch/jobs/web');
  assert.equal(at('cgroup_path: /default/c1').path, 'default/c1');
  assert.equal(at('cgroup_path: x/y').path, 'sandbox/x/y');
  assert.equal(at('memory: 1g').line, 'default');
  // Without root: a relative one lies in the delegated subtree; an absolute one, or none delegated, is refused at the line.
  assert.equal(at('cgroup_parent: ci', ROOTLESS_V2_HOST).path, 'user.slice/user-1000.slice/user@1000.service/sandbox/ci/web');
  assert.deepEqual(at('cgroup_path: /default/c1', ROOTLESS_V2_HOST).problems, ['rootless-cgroup-root']);
  assert.deepEqual(at('cgroup_parent: ci', ROOTLESS_HOST).problems, ['rootless-no-cgroup']);
});

test('cgroup_parent and cgroup_path: a malformed path, a climb out with .., or both at once, each said at its line', () => {
  const errs = (res: string) => loadText(`version: 1\ncommand: [x]\nresources:\n${res}`).diagnostics.map((d) => `${d.line} ${d.code}`);
  assert.deepEqual(errs('  cgroup_parent: a/../b\n'), ['4 invalid-cgroup-path']);
  assert.deepEqual(errs('  cgroup_parent: a\n  cgroup_path: /b\n'), ['5 cgroup-path-and-parent']);
  assert.equal(errs('  cgroup_path: "a b"\n').length, 1);
});

test('device_cgroup_rules: on v1 deny all, then the rules, the devices and the default /dev, each cited; refused on v2 at the line', () => {
  const text = 'version: 1\ncommand: [x]\ndevices: [/dev/fuse]\nresources:\n  device_cgroup_rules: ["c 10:200 rw", "b 7:* r"]\n';
  const { plan, problems } = compile(loadText(text).spec!, HYBRID_HOST);
  assert.deepEqual(problems, []);
  assert.ok(findStep(plan.steps, 'cgroup.create')!.args.controllers!.includes('devices'));
  const sets = stepsOf(plan.steps, 'cgroup.set').filter((s) => s.args.controller === 'devices').map((s) => `${s.args.file} ${s.args.value} @${typeof s.source === 'object' ? s.source.line : s.source}`);
  assert.equal(sets[0], 'devices.deny a @5');
  assert.ok(sets.includes('devices.allow c 1:3 rwm @5') && sets.includes('devices.allow c 136:* rwm @5'));
  assert.deepEqual(sets.slice(1, 4), ['devices.allow c 10:200 rw @5', 'devices.allow b 7:* r @5', 'devices.allow /dev/fuse rwm @3']);
  assert.deepEqual(compile(loadText(text).spec!, V2_HOST).problems.map((p) => [p.code, typeof p.src === 'object' ? p.src.line : p.src]), [['device-rules-v2', 5]]);
  // Without it, no devices hierarchy is joined and nothing is written.
  assert.ok(!findStep(compile(loadText('version: 1\ncommand: [x]\n').spec!, HYBRID_HOST).plan.steps, 'cgroup.create')!.args.controllers!.includes('devices'));
  const errs = loadText('version: 1\ncommand: [x]\nresources:\n  device_cgroup_rules: ["c 10 rw", "c 1:3 rr", "q 1:3 r", "a *:* rwm"]\n').diagnostics.map((d) => `${d.line}:${d.col} ${d.code}`);
  assert.deepEqual(errs, ['4:25 invalid-device-rule', '4:36 invalid-device-rule', '4:48 invalid-device-rule']);
});
