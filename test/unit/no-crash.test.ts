// Inputs that crashed the pipeline (an `internal error`, exit 125) are located errors now, or
// valid: keys named like Object.prototype's members at every level, and the duplicates the
// schema fuzzer found, which broke the plan's unique step ids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile } from '../../src/plan/compile';
import { HYBRID_HOST, loadText } from '../helpers/load';

const V = 'version: 1\ncommand: [/bin/true]\n';
const PROTO = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];
const KNOWN = 'version, name, image, insecure_registries, rootfs, root_propagation, command, entrypoint, env, env_file, workdir, user, group_add, umask, hostname, detach, tty, stdin_open, init, restart, stop_signal, stop_grace_period, shm_size, mqueue, ports, volumes, named_volumes, paths, network, dns, extra_hosts, namespaces, resources, cap_add, cap_drop, security, ulimits, sysctls, devices';

/** The pipeline as `sandbox plan` runs it: every diagnostic as LINE:COL CODE: MESSAGE, and the plan when there is one. */
function run(yaml: string, env: Record<string, string> = {}) {
  const r = loadText(yaml, { env });
  const plan = r.spec ? compile(r.spec, HYBRID_HOST).plan : undefined;
  return { r, plan, errors: r.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.line}:${d.col} ${d.code}: ${d.message}`) };
}

const CRASHES: [string, string[]][] = [
  ['ports: [{constructor: 1}]', ['3:9 required: `ports[0]` is missing `target`', '3:10 unknown-key: `constructor` is not a known key in `ports[0]`; known keys: target, published, host_ip, protocol']],
  ['resources: {constructor: 1}', ['3:13 unknown-key: `constructor` is not a known key in `resources`; known keys: memory, memory_reservation, memory_swap, cpus, cpu_shares, cpuset, cpuset_mems, pids, io_weight, device_read_bps, device_write_bps, device_read_iops, device_write_iops, cgroup_parent, cgroup_path, device_cgroup_rules']],
  ['volumes: [{constructor: 1}]', ['3:11 required: `volumes[0]` is missing `target`', '3:11 required: `volumes[0]` is missing `type`', '3:12 unknown-key: `constructor` is not a known key in `volumes[0]`; known keys: type, source, target, read_only, propagation, volume, size, mode, options']],
  ['namespaces: {constructor: true}', ['3:14 unknown-key: `constructor` is not a known key in `namespaces`; known keys: pid, mount, uts, ipc, net, cgroup, time, user']],
  ['security: {hasOwnProperty: 1}', ['3:12 unknown-key: `hasOwnProperty` is not a known key in `security`; known keys: no_new_privileges, seccomp, read_only, masked_paths, readonly_paths, capabilities']],
  ['network: {constructor: 1}', ['3:1 required: `network` is missing `mode`', '3:11 unknown-key: `constructor` is not a known key in `network`; known keys: mode, subnet, proxy, rootless_cmd, egress']],
];

for (const [yaml, errors] of CRASHES) {
  test(`once an internal error: ${yaml}`, () => assert.deepEqual(run(V + yaml + '\n').errors, errors));
}

test('prototype names as top-level keys: unknown keys, located', () => {
  for (const k of PROTO.slice(1)) assert.deepEqual(run(`${V}${k}: 1\n`).errors, [`3:1 unknown-key: \`${k}\` is not a known key; known keys: ${KNOWN}`]);
  assert.deepEqual(run(`${V}__proto__: 1\n`).errors, ['3:1 proto-key: `__proto__` is not allowed as a key']);
});

test('prototype names one level down and deeper: unknown keys or unknown names, located', () => {
  assert.deepEqual(run(V + 'ulimits: {valueOf: 1}\n').errors, ['3:11 unknown-key: `valueOf` is not a known name in `ulimits`; known names: as, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack']);
  assert.deepEqual(run(V + 'rootfs: {toString: 1}\n').errors, ['3:1 required: `rootfs` is missing `type`', '3:10 unknown-key: `toString` is not a known key in `rootfs`; known keys: type, path']);
  assert.deepEqual(run(V + 'namespaces: {user: {uid_map: [{container: 0, host: 1, size: 1, valueOf: 1}]}}\n').errors, ['3:64 unknown-key: `valueOf` is not a known key in `namespaces.user.uid_map[0]`; known keys: container, host, size']);
  assert.deepEqual(run(V + 'resources: {device_read_bps: [{path: /dev/sda, rate: 1m, hasOwnProperty: 1}]}\n').errors, ['3:58 unknown-key: `hasOwnProperty` is not a known key in `resources.device_read_bps[0]`; known keys: path, rate']);
  assert.deepEqual(run(V + 'env: {__proto__: x}\n').errors, ['3:7 proto-key: `__proto__` is not allowed as a key']);
  assert.deepEqual(run(V + 'stop_signal: constructor\n').errors, ['3:14 unknown-signal: `constructor` is not a signal; use a name such as SIGTERM or SIGQUIT']);
  assert.deepEqual(run(V + 'cap_add: [toString]\n').errors, ['3:11 unknown-capability: `toString` is not a capability; see capabilities(7) for the names']);
  assert.deepEqual(run(V + 'sysctls: {valueOf: 1}\n').errors, ['3:20 sysctl-not-namespaced: `valueOf` is not a namespaced sysctl, so setting it would change the whole host; allowed: net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*']);
});

test('where a name is the user\'s, prototype names are valid names: env, extra_hosts', () => {
  const { r, plan } = run(V + 'env: {constructor: x, toString: null, hasOwnProperty: 1, valueOf: true}\nextra_hosts: {constructor: 10.0.0.1}\n');
  assert.deepEqual(r.diagnostics, []);
  assert.ok(plan);
  const env = r.spec!.process.env.map((e) => `${e.name}=${e.value}`);
  assert.deepEqual(env.slice(3), ['constructor=x', 'hasOwnProperty=1', 'valueOf=true'], 'toString: null passes the caller\'s through, and the caller has none');
  assert.deepEqual(r.spec!.network.extraHosts.map((h) => `${h.host}=${h.ip}`), ['constructor=10.0.0.1']);
  // Passed through by name: only the caller's own variables count.
  assert.deepEqual(run(V + 'env: [constructor, toString]\n').r.spec!.process.env.slice(3), []);
  assert.deepEqual(run(V + 'env: [constructor]\n', { constructor: 'c' }).r.spec!.process.env.slice(3).map((e) => `${e.name}=${e.value}`), ['constructor=c']);
  // In an env file too.
  const f = loadText(V + 'env_file: ./a.env\n', { files: { '/project/a.env': 'constructor=1\nvalueOf=2\n' } });
  assert.deepEqual(f.spec!.process.env.slice(3).map((e) => `${e.name}=${e.value}`), ['constructor=1', 'valueOf=2']);
});

// Found by test/unit/fuzz-schema.test.ts: each once threw `the plan breaks its ordering rules: unique ids`.
test('a capability dropped twice is dropped once', () => {
  for (const y of ['cap_drop: [MKNOD, MKNOD]', 'cap_drop: [ALL, CHOWN]', 'cap_drop: [chown, CAP_CHOWN]']) {
    const { r, plan } = run(`${V}${y}\n`);
    assert.deepEqual(r.diagnostics, [], y);
    const drops = plan!.steps.filter((s) => s.kind === 'cap.drop').map((s) => s.id);
    assert.equal(new Set(drops).size, drops.length, y);
  }
});

test('a masked or read-only path named twice, or a default named again, is applied once', () => {
  const { r, plan } = run(V + 'security: {masked_paths: [/proc/kcore, /a, /a], readonly_paths: [/proc/sys]}\n');
  assert.deepEqual(r.diagnostics, []);
  assert.equal(plan!.steps.filter((s) => s.id === 'mask:/proc/kcore').length, 1);
  assert.equal(plan!.steps.filter((s) => s.id === 'mask:/a').length, 1);
  assert.equal(r.spec!.security.maskedPaths.find((p) => p.value === '/proc/kcore')!.src, 'default');
});

test('duplicates that cannot both apply are located errors', () => {
  assert.deepEqual(run(V + 'ports: ["80", "80"]\n').errors, ['3:15 port-conflict: container port 80/tcp is already published on line 3; remove one of them']);
  assert.deepEqual(run(V + 'ports:\n  - 127.0.0.1::80-81\n  - 127.0.0.1::80-81\n').errors, ['5:5 port-conflict: container port 80/tcp is already published on 127.0.0.1 on line 4; remove one of them']);
  assert.deepEqual(run(V + 'devices:\n  - /dev/fuse\n  - /dev/x:/dev/fuse\n').errors, ['5:5 duplicate-device: two devices are given as /dev/fuse; the first is on line 4']);
  assert.deepEqual(run(V + 'resources:\n  device_write_iops:\n    - {path: /dev/sda, rate: 1}\n    - {path: /dev/sda, rate: 2}\n').errors, ['6:7 duplicate-device-limit: `device_write_iops` limits /dev/sda twice; the first is on line 5 (keep one)']);
  assert.deepEqual(run(V + 'sysctls:\n  - net.ipv4.ip_forward=1\n  - net.ipv4.ip_forward=0\n').errors, ['5:5 duplicate-sysctl: `net.ipv4.ip_forward` is set twice; the first is on line 4 (keep one)']);
});

test('volumes over what sandbox mounts itself are located errors', () => {
  assert.deepEqual(run(V + 'volumes:\n  - ./a:/usr\n  - {type: tmpfs, target: /etc}\n').errors, [
    "4:5 reserved-target: `rootfs: host` binds the host's /usr there read-only; mount the volume below it (such as /usr/data), or use a `dir` rootfs or an image",
    "5:5 reserved-target: `rootfs: host` binds the host's /etc there read-only; mount the volume below it (such as /etc/data), or use a `dir` rootfs or an image",
  ]);
  assert.deepEqual(run(V + 'volumes:\n  - ./h:/etc/hosts\n  - ./r:/etc/resolv.conf\n  - ./p:/dev/pts\n  - ./c:/sys/fs/cgroup\n').errors, [
    '4:5 reserved-target: /etc/hosts is written by sandbox for its private network; set `extra_hosts` instead of mounting over it',
    '5:5 reserved-target: /etc/resolv.conf is written by sandbox for its private network; set `dns` instead of mounting over it',
    "6:5 reserved-target: mounting over /dev/pts would hide the sandbox's own terminals (devpts); pick another target",
    "7:5 reserved-target: mounting over /sys/fs/cgroup would hide the sandbox's own cgroup; pick another target",
  ]);
  // Where sandbox writes nothing there, the same volumes are fine.
  const ok = run('version: 1\ncommand: [/bin/true]\nrootfs: {type: dir, path: ./root}\nnetwork: host\nvolumes: [./a:/usr, ./h:/etc/hosts]\n');
  assert.deepEqual(ok.errors, []);
  assert.ok(ok.plan);
});
