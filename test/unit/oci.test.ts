// The OCI adapter (src/import/oci.ts): every field of a bundle's config.json that it maps, to the
// config key it becomes; every field the engine cannot honour, refused by name at its line of
// config.json; and the configs `runc spec` and `crun spec` write, through the whole pure pipeline
// (normalize, rules, compile) with no error. Fixtures: test/unit/fixtures/oci, made by `runc spec`
// and `crun spec` (runc 1.1.5, crun 1.8.1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromOciConfig, type OciImported } from '../../src/import/oci';
import { toYaml } from '../../src/import/write';
import { compile } from '../../src/plan/compile';
import { findStep } from '../../src/plan/steps';
import { HYBRID_HOST, ROOT, loadText } from '../helpers/load';
import { parseSignal, sandboxName, statusOf } from '../../src/runtime/main';

const BUNDLE = '/b';
const fixture = (name: string) => JSON.parse(readFileSync(join(ROOT, 'test/unit/fixtures/oci', name), 'utf8')) as Record<string, any>;
const adapt = (cfg: unknown, text = JSON.stringify(cfg, null, 2)) => fromOciConfig('config.json', Buffer.from(text), { bundle: BUNDLE, name: 'c1' });
/** The smallest bundle config that maps: every test changes one part of it. */
const base = () => ({
  ociVersion: '1.2.0',
  process: { user: { uid: 0, gid: 0 }, args: ['/bin/true'], cwd: '/', env: ['PATH=/bin'], capabilities: { bounding: ['CAP_KILL'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'] }, noNewPrivileges: true },
  root: { path: 'rootfs' },
  linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'ipc' }, { type: 'uts' }, { type: 'network' }] },
} as Record<string, any>);
const refused = (imp: OciImported) => imp.notes.filter((n) => n.kind === 'refused');

/** The mapped config through the pipeline, as `plan --oci` loads it. */
function pipeline(imp: OciImported) {
  const yaml = toYaml(imp, { schema: 'x', header: [] });
  const res = loadText(yaml, { files: imp.seccomp ? { [imp.seccomp.path]: imp.seccomp.text } : {} });
  return { res, plan: res.spec ? compile(res.spec, HYBRID_HOST).plan : undefined };
}

test('the configs of runc spec and crun spec map with nothing refused, and compile', () => {
  for (const f of ['runc-spec.json', 'crun-spec.json']) {
    const imp = adapt(fixture(f));
    assert.deepEqual(imp.errors, [], f);
    assert.deepEqual(refused(imp), [], f);
    const c = imp.config as Record<string, any>;
    assert.deepEqual(c.command, ['sh']);
    assert.deepEqual(c.entrypoint, []);
    assert.equal(c.tty, true);
    assert.equal(c.user, '0:0');
    assert.deepEqual(c.rootfs, { type: 'dir', path: '/b/rootfs' });
    assert.equal(c.security.read_only, true);
    assert.equal(c.security.no_new_privileges, true);
    assert.equal(c.security.seccomp, 'unconfined');
    assert.deepEqual(c.ulimits, { nofile: { soft: 1024, hard: 1024 } });
    assert.deepEqual(c.cap_add, ['AUDIT_WRITE']);
    assert.ok(c.cap_drop.includes('CHOWN') && !c.cap_drop.includes('KILL'));
    assert.equal(c.network, 'none');
    assert.deepEqual({ user: c.namespaces.user, cgroup: c.namespaces.cgroup, time: c.namespaces.time, pid: c.namespaces.pid }, { user: false, cgroup: false, time: false, pid: true });
    assert.equal(c.shm_size, '65536k');
    const { res, plan } = pipeline(imp);
    assert.deepEqual(res.diagnostics.filter((d) => d.severity === 'error'), [], f);
    assert.ok(plan && findStep(plan.steps, 'hostname')?.args.hostname === f.slice(0, 4));
    // What sandbox does not mount is said, not skipped: /sys/fs/cgroup without a cgroup namespace.
    // Both specs name ambient capabilities they do not make inheritable: the kernel cannot hold them.
    assert.deepEqual(imp.notes.filter((n) => n.kind === 'dropped').map((n) => n.code).sort(), ['oci-ambient-not-inheritable', 'oci-cgroup-mount']);
    assert.equal(c.security.capabilities, undefined);
    assert.equal(c.mqueue, true);
    assert.ok(plan && findStep(plan.steps, 'mount.mqueue')?.args.target === '/dev/mqueue');
  }
});

test('each field that maps becomes its key, cited at its line of config.json', () => {
  const cfg = base();
  Object.assign(cfg.process, { terminal: true, cwd: '/work', env: ['PATH=/bin', 'A=1'], rlimits: [{ type: 'RLIMIT_NPROC', soft: 10, hard: 20 }] });
  Object.assign(cfg.process.user, { uid: 1000, gid: 100, additionalGids: [5, 6], umask: 0o27 });
  cfg.process.capabilities = { bounding: ['CAP_KILL', 'CAP_NET_RAW'], ambient: ['CAP_NET_RAW'] };
  cfg.hostname = 'h1';
  cfg.root.readonly = false;
  cfg.mounts = [
    { destination: '/data', type: 'bind', source: 'data', options: ['rbind', 'ro', 'nosuid', 'rprivate'] },
    { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'size=1m', 'mode=1777'] },
  ];
  cfg.linux.namespaces.push({ type: 'user' }, { type: 'cgroup' }, { type: 'time', path: '/proc/1/ns/time' });
  cfg.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  cfg.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  cfg.linux.resources = { memory: { limit: 67108864, reservation: 1048576, swap: 134217728 }, cpu: { quota: 50000, period: 100000, shares: 512, cpus: '0', mems: '0' }, pids: { limit: 32 }, blockIO: { weight: 300 }, devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }] };
  cfg.linux.sysctl = { 'net.ipv4.ip_forward': '0' };
  cfg.linux.maskedPaths = ['/proc/kcore', '/proc/extra'];
  cfg.linux.readonlyPaths = ['/proc/sys'];
  cfg.linux.devices = [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229 }];
  cfg.linux.cgroupsPath = '/default/c1';
  const imp = adapt(cfg);
  assert.deepEqual(refused(imp), []);
  const c = imp.config as Record<string, any>;
  assert.deepEqual(
    { workdir: c.workdir, env: c.env, tty: c.tty, user: c.user, group_add: c.group_add, umask: c.umask, hostname: c.hostname, ulimits: c.ulimits, read_only: c.security.read_only },
    { workdir: '/work', env: ['PATH=/bin', 'A=1'], tty: true, user: '1000:100', group_add: [5, 6], umask: '0027', hostname: 'h1', ulimits: { nproc: { soft: 10, hard: 20 } }, read_only: false },
  );
  assert.deepEqual(c.cap_add, ['NET_RAW']);
  assert.deepEqual(c.volumes, [
    { type: 'bind', source: '/b/data', target: '/data', read_only: true, propagation: 'rprivate', options: ['nosuid'] },
    { type: 'tmpfs', target: '/tmp', size: '1m', mode: '1777', options: ['nosuid'] },
  ]);
  assert.deepEqual(c.namespaces, { user: { uid_map: ['0:100000:65536'], gid_map: ['0:100000:65536'] }, pid: true, mount: true, uts: true, ipc: true, cgroup: true, time: '/proc/1/ns/time' });
  assert.deepEqual(c.resources, { cgroup_path: '/default/c1', memory: 67108864, memory_reservation: 1048576, memory_swap: 134217728, cpus: 0.5, cpu_shares: 512, cpuset: '0', cpuset_mems: '0', pids: 32, io_weight: 300 });
  assert.deepEqual(c.sysctls, { 'net.ipv4.ip_forward': '0' });
  assert.deepEqual(c.security.masked_paths, ['/proc/kcore', '/proc/extra']);
  assert.deepEqual(c.security.readonly_paths, ['/proc/sys']);
  // In the new user namespace, the host's node is bound (mknod is refused there).
  assert.deepEqual(c.devices, [{ source: '/dev/fuse', target: '/dev/fuse', permissions: 'rwm' }]);
  // Where each key came from: its field's line in config.json.
  const text = JSON.stringify(cfg, null, 2).split('\n');
  const lineOf = (needle: string) => text.findIndex((l) => l.includes(needle)) + 1;
  const origin = (key: string) => imp.origin.find((o) => o.path.join('.') === key)?.at.line;
  assert.equal(origin('hostname'), lineOf('"hostname"'));
  assert.equal(origin('resources.memory'), lineOf('"limit": 67108864'));
  assert.equal(origin('volumes.1'), lineOf('"destination": "/tmp"') - 1);
  assert.equal(origin('resources.cgroup_path'), lineOf('"cgroupsPath"'));
  // sandbox keeps no device rules: said once, as a change.
  assert.deepEqual(imp.notes.filter((n) => n.kind === 'changed').map((n) => n.code).sort(), ['oci-device-rule']);
});

test('every field the engine cannot honour is refused, named, at its line', () => {
  const cases: [string, (c: Record<string, any>) => void][] = [
    ['ociVersion', (c) => { c.ociVersion = '2.0.0'; }],
    ['hooks.createContainer', (c) => { c.hooks = { createContainer: [{ path: '/bin/true' }] }; }],
    ['hooks.startContainer', (c) => { c.hooks = { startContainer: [{ path: '/bin/true' }] }; }],
    ['hooks.prestart[0]', (c) => { c.hooks = { prestart: [{ path: 'bin/true' }] }; }],
    ['hooks.poststop[0]', (c) => { c.hooks = { poststop: [{ path: '/bin/true', timeout: 0 }] }; }],
    ['domainname', (c) => { c.domainname = 'example'; }],
    ['windows', (c) => { c.windows = { layerFolders: [] }; }],
    ['process.args', (c) => { c.process.args = []; }],
    ['process.oomScoreAdj', (c) => { c.process.oomScoreAdj = 1001; }],
    ['process.apparmorProfile', (c) => { c.process.apparmorProfile = 'p'; }],
    ['process.consoleSize', (c) => { c.process.consoleSize = { height: -1, width: 1 }; }],
    ['process.scheduler', (c) => { c.process.scheduler = { policy: 'SCHED_OTHER' }; }],
    ['process.ioPriority', (c) => { c.process.ioPriority = { class: 'IOPRIO_CLASS_IDLE' }; }],
    ['process.rlimits[0]', (c) => { c.process.rlimits = [{ type: 'RLIMIT_BOGUS', soft: 1, hard: 1 }]; }],
    ['process.capabilities.effective', (c) => { c.process.capabilities.effective = []; c.process.capabilities.effective = ['CAP_KILL', 'CAP_CHOWN']; }],
    ['process.capabilities.permitted', (c) => { c.process.capabilities.bounding = ['CAP_KILL', 'CAP_CHOWN']; c.process.capabilities.effective = ['CAP_KILL', 'CAP_CHOWN']; }],
    ['root', (c) => { delete c.root; }],
    ['mounts[0].type', (c) => { c.mounts = [{ destination: '/x', type: 'nfs', source: 'h:/x' }]; }],
    ['mounts[0].options', (c) => { c.mounts = [{ destination: '/x', type: 'bind', source: '/x', options: ['rbind', 'idmap'] }]; }],
    ['mounts[0].uidMappings', (c) => { c.mounts = [{ destination: '/x', type: 'bind', source: '/x', uidMappings: [{ containerID: 0, hostID: 1, size: 1 }] }]; }],
    ['linux.namespaces', (c) => { c.linux.namespaces = c.linux.namespaces.filter((n: any) => n.type !== 'mount'); }],
    ['linux.namespaces[5]', (c) => { c.linux.namespaces.push({ type: 'bogus' }); }],
    ['linux.uidMappings', (c) => { c.linux.uidMappings = [{ containerID: 0, hostID: 1, size: 1 }]; }],
    ['linux.gidMappings', (c) => { c.linux.namespaces.push({ type: 'user' }); c.linux.uidMappings = [{ containerID: 0, hostID: 1, size: 1 }]; }],
    ['linux.timeOffsets', (c) => { c.linux.timeOffsets = { monotonic: { secs: 1 } }; }],
    ['linux.rootfsPropagation', (c) => { c.linux.rootfsPropagation = 'sideways'; }],
    ['linux.intelRdt', (c) => { c.linux.intelRdt = { closID: 'x' }; }],
    ['linux.personality', (c) => { c.linux.personality = { domain: 'LINUX32' }; }],
    ['linux.resources.hugepageLimits', (c) => { c.linux.resources = { hugepageLimits: [{ pageSize: '2MB', limit: 1 }] }; }],
    ['linux.resources.memory.swappiness', (c) => { c.linux.resources = { memory: { swappiness: 10 } }; }],
    ['linux.resources.memory.kernel', (c) => { c.linux.resources = { memory: { kernel: 10 } }; }],
    ['linux.resources.cpu.realtimeRuntime', (c) => { c.linux.resources = { cpu: { realtimeRuntime: 10 } }; }],
    ['linux.resources.blockIO.throttleReadBpsDevice', (c) => { c.linux.resources = { blockIO: { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1 }] } }; }],
    ['linux.resources.devices[0]', (c) => { c.linux.resources = { devices: [{ allow: false, type: 'c', major: 1, minor: 3, access: 'rwm' }] }; }],
    ['linux.resources.unified', (c) => { c.linux.resources = { unified: { 'memory.high': '1' } }; }],
    ['linux.resources.network', (c) => { c.linux.resources = { network: { classID: 1 } }; }],
    ['linux.resources.rdma', (c) => { c.linux.resources = { rdma: { mlx: { hcaHandles: 1 } } }; }],
    ['linux.seccomp.flags', (c) => { c.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_LOG'] }; }],
    ['linux.seccomp.listenerPath', (c) => { c.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/x.sock' }; }],
    ['linux.devices[0].fileMode', (c) => { c.linux.namespaces.push({ type: 'user' }); c.linux.devices = [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o600 }]; }],
    ['linux.devices[0]', (c) => { c.linux.devices = [{ path: '/dev/x', type: 'c', major: 10 }]; }],
    ['linux.devices[0]', (c) => { c.linux.devices = [{ path: '/x', type: 'c' }]; }],
  ];
  for (const [field, change] of cases) {
    const cfg = base();
    change(cfg);
    const text = JSON.stringify(cfg, null, 2);
    const imp = adapt(cfg, text);
    const r = refused(imp);
    assert.ok(r.some((n) => n.message.startsWith(`${field}: `)), `${field}: ${JSON.stringify(imp.notes.map((n) => n.message))}`);
    // Located at a line of config.json that holds a part of the field.
    const n = r.find((x) => x.message.startsWith(`${field}: `))!;
    assert.equal(n.at.file, 'config.json');
    assert.ok(n.at.line >= 1 && n.at.line <= text.split('\n').length, field);
  }
});

test('hooks: prestart, createRuntime, poststart and poststop are kept for the runtime, in order, with argv, env and timeout', () => {
  const cfg = base();
  cfg.hooks = {
    prestart: [{ path: '/bin/sh', args: ['sh', '-c', 'echo 1'], env: ['A=1'], timeout: 5 }, { path: '/bin/true' }],
    createRuntime: [{ path: '/usr/bin/env' }],
    poststart: [{ path: '/bin/echo', args: ['echo', 'up'] }],
    poststop: [{ path: '/bin/echo', args: ['echo', 'down'] }],
  };
  const imp = adapt(cfg);
  assert.deepEqual(refused(imp), []);
  assert.deepEqual(imp.hooks, {
    prestart: [{ path: '/bin/sh', args: ['sh', '-c', 'echo 1'], env: ['A=1'], timeout: 5 }, { path: '/bin/true', args: ['/bin/true'], env: [] }],
    createRuntime: [{ path: '/usr/bin/env', args: ['/usr/bin/env'], env: [] }],
    poststart: [{ path: '/bin/echo', args: ['echo', 'up'], env: [] }],
    poststop: [{ path: '/bin/echo', args: ['echo', 'down'], env: [] }],
  });
  // When the early hooks run is said once, as a change, at the first of them.
  assert.deepEqual(imp.notes.filter((n) => n.code === 'oci-hook-timing').map((n) => n.kind), ['changed']);
  // process.oomScoreAdj is the runtime's to write too; user.username (Windows) is ignored, and said.
  const o = base();
  o.process.oomScoreAdj = 500;
  o.process.user.username = 'x';
  const oi = adapt(o);
  assert.deepEqual([oi.oomScoreAdj, refused(oi).length, oi.notes.map((n) => n.code)], [500, 0, ['oci-windows-field']]);
  // A bundle without hooks has none, and no note.
  const none = adapt(base());
  assert.deepEqual(none.hooks, { prestart: [], createRuntime: [], poststart: [], poststop: [] });
  assert.equal(none.notes.some((n) => n.code === 'oci-hook-timing'), false);
});

test('runtime-spec 1.3 is read; the five capability sets map to the bounding set and security.capabilities', () => {
  const cfg = base();
  cfg.ociVersion = '1.3.0';
  const all = ['CAP_KILL', 'CAP_CHOWN', 'CAP_NET_RAW'];
  cfg.process.capabilities = { bounding: all, effective: all, permitted: all, inheritable: all, ambient: ['CAP_KILL'] };
  const imp = adapt(cfg);
  assert.deepEqual(refused(imp), []);
  const c = imp.config as Record<string, any>;
  assert.deepEqual(c.security.capabilities, { inheritable: ['KILL', 'CHOWN', 'NET_RAW'], ambient: ['KILL'] });
  const { res, plan } = pipeline(imp);
  assert.deepEqual(res.diagnostics.filter((d) => d.severity === 'error'), []);
  const caps = plan && findStep(plan.steps, 'caps.apply');
  assert.deepEqual(caps?.args.sets, { inheritable: ['KILL', 'CHOWN', 'NET_RAW'], ambient: ['KILL'] });
  // A user other than root holds its ambient set after exec: effective must say that.
  const user = base();
  user.process.user = { uid: 1000, gid: 1000 };
  user.process.capabilities = { bounding: all, effective: ['CAP_NET_RAW'], permitted: ['CAP_NET_RAW'], inheritable: ['CAP_NET_RAW'], ambient: ['CAP_NET_RAW'] };
  assert.deepEqual(refused(adapt(user)), []);
  user.process.capabilities.effective = all;
  assert.deepEqual(refused(adapt(user)).map((n) => n.message.split(':')[0]), ['process.capabilities.effective']);
  // Ambient outside inheritable cannot be held: said, and left out.
  const bad = base();
  bad.process.capabilities = { bounding: all, effective: all, permitted: all, inheritable: ['CAP_KILL'], ambient: ['CAP_CHOWN'] };
  const bi = adapt(bad);
  assert.deepEqual(bi.notes.map((n) => n.code), ['oci-ambient-not-inheritable']);
  assert.deepEqual((bi.config as Record<string, any>).security.capabilities, { inheritable: ['KILL'] });
  // In a sandbox file the rules refuse it, at its line.
  const r = loadText('version: 1\nname: x\nrootfs: {type: dir, path: /tmp}\ncommand: [sh]\nsecurity: {capabilities: {inheritable: [KILL], ambient: [CHOWN]}}\n').diagnostics.filter((d) => d.severity === 'error');
  assert.deepEqual(r.map((d) => [d.code, d.line]), [['cap-ambient-not-inheritable', 5]]);
  assert.equal(cfg.ociVersion, '1.3.0');
  assert.ok(refused(adapt({ ...base(), ociVersion: '1.4.0' })).length === 1);
});

test('config.json\'s strings are literal: a $ is not interpolated as a file\'s ${VAR}', () => {
  const cfg = base();
  cfg.process.args = ['sh', '-c', 'echo $$ ${HOME} $1'];
  cfg.process.env = ['A=${B}'];
  const { res, plan } = pipeline(adapt(cfg));
  assert.deepEqual(res.diagnostics.filter((d) => d.severity === 'error'), []);
  const exec = plan && findStep(plan.steps, 'exec');
  assert.deepEqual(exec?.args.args, ['sh', '-c', 'echo $$ ${HOME} $1']);
  assert.ok(exec?.args.env.includes('A=${B}'));
});

test('linux.rootfsPropagation and the propagation and atime options of tmpfs and bind mounts map to their keys, and the plan applies them', () => {
  const cfg = base();
  cfg.linux.rootfsPropagation = 'shared';
  const data = ['nosuid', 'strictatime', 'mode=755', 'size=1k'];
  cfg.mounts = [
    { destination: '/tmp/s', type: 'tmpfs', source: 'tmpfs', options: [...data, 'slave'] },
    { destination: '/mnt/u', source: '/etc', options: [...data, 'rbind', 'runbindable'] },
  ];
  const imp = adapt(cfg);
  assert.deepEqual(refused(imp), []);
  const c = imp.config as Record<string, any>;
  assert.equal(c.root_propagation, 'shared');
  assert.deepEqual(c.volumes, [
    { type: 'tmpfs', target: '/tmp/s', size: '1k', mode: '755', propagation: 'slave', options: ['nosuid', 'strictatime'] },
    { type: 'bind', source: '/etc', target: '/mnt/u', propagation: 'runbindable', options: ['nosuid', 'strictatime'] },
  ]);
  // A bind mount has no file system options: the kernel ignores them, and the adapter says so.
  assert.ok(imp.notes.some((n) => n.kind === 'dropped' && n.message === 'mounts[1].options: mode=755, size=1k: a file system\'s options, which a bind mount has none of; ignored, as the kernel does'));
  const { res, plan } = pipeline(imp);
  assert.deepEqual(res.diagnostics.filter((d) => d.severity === 'error'), []);
  const steps = plan!.steps;
  const root = findStep(steps, 'mount.root-propagation')!;
  assert.equal(root.args.propagation, 'shared');
  // Applied once pivoted: the tree was made private first, so the root's peer group is the sandbox's own.
  assert.ok(steps.indexOf(root) > steps.findIndex((x) => x.kind === 'mount.pivot'));
  const tmp = steps.find((x) => x.kind === 'mount.tmpfs' && x.args.target === '/tmp/s');
  assert.deepEqual(tmp && tmp.kind === 'mount.tmpfs' && [tmp.args.propagation, tmp.args.flags], ['slave', ['nosuid', 'strictatime', 'nodev']]);
  const bind = steps.find((x) => x.kind === 'mount.bind' && x.args.target === '/mnt/u');
  assert.deepEqual(bind && bind.kind === 'mount.bind' && [bind.args.propagation, bind.args.flags], ['runbindable', ['nodev', 'nosuid', 'strictatime']]);
});

test('linux.devices: each node is made by its numbers, mode and owner (runc\'s mknod), allowed by the device cgroup, and the default nodes are sandbox\'s own; in a new user namespace the host\'s node is bound', () => {
  const cfg = base();
  cfg.linux.devices = [
    { path: '/dev/test1', type: 'c', major: 10, minor: 666, fileMode: 0o660, uid: 0, gid: 5 },
    { path: '/dev/test2', type: 'b', major: 8, minor: 666 },
    { path: '/dev/test3', type: 'p', fileMode: 0o600 },
    { path: '/dev/null', type: 'c', major: 1, minor: 3 },
  ];
  const imp = adapt(cfg);
  assert.deepEqual(refused(imp), []);
  assert.deepEqual((imp.config as Record<string, any>).devices, [
    { target: '/dev/test1', type: 'c', major: 10, minor: 666, mode: '0660', uid: 0, gid: 5 },
    { target: '/dev/test2', type: 'b', major: 8, minor: 666 },
    { target: '/dev/test3', type: 'p', mode: '0600' },
  ]);
  assert.ok(imp.notes.some((n) => n.kind === 'changed' && n.message.startsWith('linux.devices[3]: sandbox\'s own /dev/null (1:3) is there already')));
  const { res, plan } = pipeline(imp);
  assert.deepEqual(res.diagnostics.filter((d) => d.severity === 'error'), []);
  const made = plan!.steps.filter((s) => s.kind === 'dev.make').map((s) => s.args);
  assert.deepEqual(made, [
    { target: '/dev/test1', type: 'c', major: 10, minor: 666, mode: 0o660, uid: 0, gid: 5, permissions: 'rwm' },
    { target: '/dev/test2', type: 'b', major: 8, minor: 666, mode: 0o666, uid: 0, gid: 0, permissions: 'rwm' },
    { target: '/dev/test3', type: 'p', major: 0, minor: 0, mode: 0o600, uid: 0, gid: 0, permissions: 'rwm' },
  ]);
  // With device cgroup rules (v1), each device node is allowed by its numbers.
  cfg.linux.resources = { devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 4, minor: 1, access: 'rw' }] };
  const allowed = pipeline(adapt(cfg)).plan!.steps.flatMap((s) => (s.kind === 'cgroup.set' && s.args.file === 'devices.allow' ? [s.args.value] : []));
  assert.ok(allowed.includes('c 10:666 rwm') && allowed.includes('b 8:666 rwm'), JSON.stringify(allowed));
  // A new user namespace cannot mknod: the host's node is bound, as runc does there.
  const u = base();
  u.linux.namespaces.push({ type: 'user' });
  u.linux.uidMappings = u.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  u.linux.devices = [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229 }];
  assert.deepEqual((adapt(u).config as Record<string, any>).devices, [{ source: '/dev/fuse', target: '/dev/fuse', permissions: 'rwm' }]);
});

test('SELinux labels: refused where SELinux is on, said and ignored where it is off (no runtime can label anything there)', () => {
  const cfg = base();
  cfg.process.selinuxLabel = 'system_u:system_r:svirt_lxc_net_t:s0:c1,c2';
  cfg.linux.mountLabel = 'system_u:object_r:svirt_sandbox_file_t:s0:c715,c811';
  const on = fromOciConfig('config.json', Buffer.from(JSON.stringify(cfg, null, 2)), { bundle: BUNDLE, name: 'c1', selinux: true });
  assert.deepEqual(refused(on).map((n) => n.message.split(':')[0]), ['process.selinuxLabel', 'linux.mountLabel']);
  const off = adapt(cfg);
  assert.deepEqual(refused(off), []);
  assert.deepEqual(off.notes.filter((n) => n.code === 'oci-no-selinux').map((n) => [n.kind, n.message.split(':')[0]]), [['dropped', 'process.selinuxLabel'], ['dropped', 'linux.mountLabel']]);
});

test('a field the runtime-spec does not define is ignored, as the spec says, and said; bad JSON is an error', () => {
  const cfg = base();
  cfg.process.bogus = 1;
  const imp = adapt(cfg);
  assert.deepEqual(refused(imp), []);
  assert.deepEqual(imp.notes.filter((n) => n.kind === 'dropped').map((n) => n.message.split(':')[0]), ['process.bogus']);
  const bad = adapt(null, '{"ociVersion": "1.0.0",\n  "process": }');
  assert.ok(bad.errors.length > 0 && bad.errors[0]!.line === 2);
  // Tab indentation (runc spec writes it) is read, each tab one column: the value of `\tdomainname` is at 16.
  const tabs = adapt(null, JSON.stringify({ ...base(), domainname: 'x' }, null, '\t'));
  assert.equal(refused(tabs)[0]!.at.col, 16);
});

test('linux.seccomp becomes the profile security.seccomp reads, and the plan loads it', () => {
  const cfg = base();
  cfg.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['mkdirat', 'mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] };
  const imp = adapt(cfg);
  assert.deepEqual(refused(imp), []);
  assert.equal((imp.config as Record<string, any>).security.seccomp, '/b/config.json#seccomp');
  const { res, plan } = pipeline(imp);
  assert.deepEqual(res.diagnostics.filter((d) => d.severity === 'error'), []);
  const sc = plan && findStep(plan.steps, 'seccomp');
  assert.ok(sc && /mkdir/.test(JSON.stringify(sc.args)), JSON.stringify(sc?.args).slice(0, 200));
  // Without linux.seccomp there is no filter, as the runtime-spec means it.
  assert.equal((adapt(base()).config as Record<string, any>).security.seccomp, 'unconfined');
});

test('runtime: signals by name and number, container names, and a status read from the process', () => {
  assert.equal(parseSignal('KILL'), 9);
  assert.equal(parseSignal('SIGTERM'), 15);
  assert.equal(parseSignal('9'), 9);
  assert.equal(parseSignal('RTMIN+2'), 36);
  assert.throws(() => parseSignal('NOPE'), /unknown signal/);
  assert.equal(sandboxName('abc'), 'abc');
  const long = 'a'.repeat(64);
  assert.match(sandboxName(long), /^oci-[0-9a-f]{32}$/);
  assert.equal(statusOf({ pid: process.pid, startTime: 'not-its-start', started: true }), 'stopped');
  assert.equal(statusOf({ pid: 0, startTime: '', started: false }), 'stopped');
});

test('linux.resources.devices: allow rules beyond the default nodes become device_cgroup_rules at their line; a malformed or deny rule is refused there', () => {
  const cfg = base() as Record<string, any>;
  cfg.linux = { ...(cfg.linux ?? {}), resources: { devices: [
    { allow: false, access: 'rwm' },
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
    { allow: true, type: 'c', major: 10, minor: 229, access: 'r' },
    { allow: true, type: 'b', major: 7, access: 'rw' },
    { allow: true, type: 'x', major: 1, minor: 1, access: 'r' },
    { allow: false, type: 'c', major: 10, minor: 200, access: 'rw' },
  ] } };
  const imp = adapt(cfg);
  assert.deepEqual((imp.config as Record<string, any>).resources.device_cgroup_rules, ['c 10:229 r', 'b 7:* rw']);
  const text = JSON.stringify(cfg, null, 2).split('\n');
  assert.equal(imp.origin.find((o) => o.path.join('.') === 'resources.device_cgroup_rules.1')?.at.line, text.findIndex((l) => l.includes('"major": 7')) - 2);
  assert.deepEqual(refused(imp).map((n) => n.message.split(':')[0]), ['linux.resources.devices[4]', 'linux.resources.devices[5]']);
  assert.deepEqual(imp.notes.filter((n) => n.kind === 'changed').map((n) => n.code), ['oci-device-rule']);
});

test('/dev/mqueue with the IPC namespace joined by path (a CRI Pod\'s container) mounts that namespace\'s queues; with the host\'s it is an error', () => {
  const cfg = base();
  cfg.mounts = [{ destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] }];
  cfg.linux.namespaces = cfg.linux.namespaces.map((n: { type: string }) => (n.type === 'ipc' ? { type: 'ipc', path: '/proc/42/ns/ipc' } : n));
  // The problems compile finds on the host's side of the spec (the plan's, not the file's).
  const problems = () => { const { res } = pipeline(adapt(cfg)); assert.deepEqual(res.diagnostics.filter((d) => d.severity === 'error'), []); return compile(res.spec!, HYBRID_HOST); };
  const joined = problems();
  assert.deepEqual(joined.problems, []);
  assert.equal(findStep(joined.plan.steps, 'mount.mqueue')?.title, 'mount the POSIX message queues of the IPC namespace at /proc/42/ns/ipc on /dev/mqueue (nosuid, nodev, noexec)');
  cfg.linux.namespaces = cfg.linux.namespaces.filter((n: { type: string }) => n.type !== 'ipc');
  assert.deepEqual(problems().problems.map((p) => p.code), ['mqueue-needs-ipc']);
});
