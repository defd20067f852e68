// Normalization: short forms, units, paths and interpolation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HYBRID_HOST, loadText, V2_HOST } from '../helpers/load';
import { compile } from '../../src/plan/compile';
import type { HostFeatures } from '../../src/plan/types';
import { parseCpus, parseDuration, parseSize, shellSplit, signalNumber } from '../../src/model/normalize';
import { interpolate } from '../../src/config/interpolate';
import { isIP } from '../../src/model/ip';

const spec = (yaml: string, opts: Parameters<typeof loadText>[1] = {}) => {
  const r = loadText('version: 1\ncommand: [x]\n' + yaml, opts);
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), []);
  return r.spec!;
};

test('sizes: binary units, any case, with or without B/iB, plain bytes', () => {
  assert.equal(parseSize('512m'), 512 * 2 ** 20);
  assert.equal(parseSize('2g'), 2 * 2 ** 30);
  assert.equal(parseSize('1.5GiB'), 1.5 * 2 ** 30);
  assert.equal(parseSize('64MB'), 64 * 2 ** 20);
  assert.equal(parseSize('10k'), 10240);
  assert.equal(parseSize(4096), 4096);
  assert.equal(parseSize('4096'), 4096);
  assert.equal(parseSize('12q'), undefined);
});

test('CPUs: decimals and millicpus', () => {
  assert.equal(parseCpus(1.5), 1500);
  assert.equal(parseCpus('1500m'), 1500);
  assert.equal(parseCpus('0.25'), 250);
  assert.equal(parseCpus('x'), undefined);
});

test('durations and signals', () => {
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('10 s'), undefined);
  assert.equal(signalNumber('SIGTERM'), 15);
  assert.equal(signalNumber('quit'), 3);
  assert.equal(signalNumber(9), 9);
  assert.equal(signalNumber('RTMIN+2'), 36);
  assert.equal(signalNumber('SIGNOPE'), undefined);
});

test('command strings split as a shell splits words, without a shell', () => {
  assert.deepEqual(shellSplit(`httpd -f -p "80 80" 'a b' c\\ d ""`), ['httpd', '-f', '-p', '80 80', 'a b', 'c d', '']);
  assert.equal(shellSplit('echo "open'), undefined);
  assert.deepEqual(spec('entrypoint: /bin/sh -c\n').process.args, ['/bin/sh', '-c', 'x']);
});

test('ports: Docker short syntax, ranges, IPv6 in brackets, long form', () => {
  const ports = spec('ports: ["80", "8080:80", "127.0.0.1:9000-9001:9000-9001/udp", "[::1]:443:443", "127.0.0.1::53/udp", {target: 22, published: 2222, host_ip: "::1"}]\n').network.ports;
  assert.deepEqual(ports.map((p) => [p.hostIp, p.hostPort, p.containerPort, p.protocol]), [
    ['', 0, 80, 'tcp'], ['', 8080, 80, 'tcp'], ['127.0.0.1', 9000, 9000, 'udp'], ['127.0.0.1', 9001, 9001, 'udp'],
    ['::1', 443, 443, 'tcp'], ['127.0.0.1', 0, 53, 'udp'], ['::1', 2222, 22, 'tcp'],
  ]);
});

test('volumes: paths relative to the file, ~, options; tmpfs sizes and modes', () => {
  const m = spec('volumes: ["./data:/data:ro,nosuid", "~/cache:/cache:rslave", "/abs:/abs", {type: tmpfs, target: /t, size: 1m, mode: "0700"}]\n').mounts;
  assert.deepEqual(m.map((x) => (x.kind === 'bind' ? [x.kind, x.source, x.target, x.readOnly, x.propagation, x.flags, undefined, undefined] : x.kind === 'tmpfs' ? [x.kind, undefined, x.target, x.readOnly, undefined, x.flags, x.sizeBytes, x.mode] : [])), [
    ['bind', '/project/data', '/data', true, undefined, ['nosuid'], undefined, undefined],
    ['bind', '/home/user/cache', '/cache', false, 'rslave', [], undefined, undefined],
    ['bind', '/abs', '/abs', false, undefined, [], undefined, undefined],
    ['tmpfs', undefined, '/t', false, undefined, ['nosuid', 'nodev'], 1048576, 0o700],
  ]);
});

test('capabilities: any case, with or without CAP_, ALL; drop then add', () => {
  assert.deepEqual(spec('cap_drop: [all]\ncap_add: [cap_net_admin, Chown]\n').capabilities.map((c) => c.name), ['CHOWN', 'NET_ADMIN']);
  const s = spec('cap_drop: [CHOWN, cap_kill]\n');
  assert.equal(s.capabilities.length, 9);
  assert.ok(!s.capabilities.some((c) => c.name === 'CHOWN' || c.name === 'KILL'));
  assert.equal(spec('cap_add: [ALL]\n').capabilities.length, 41);
  // Podman's 11: Docker's 14 without NET_RAW, MKNOD and AUDIT_WRITE.
  assert.deepEqual(spec('').capabilities.map((c) => c.name), ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'SETFCAP']);
  assert.deepEqual(spec('cap_add: [NET_RAW]\n').capabilities.filter((c) => c.src !== 'default').map((c) => c.name), ['NET_RAW']);
});

test('ulimits: n, soft:hard, objects, unlimited', () => {
  assert.deepEqual(spec('ulimits: {nofile: "1024:4096", nproc: 64, core: {soft: 0, hard: 0}, memlock: "unlimited"}\n').rlimits.map((r) => [r.name, r.soft, r.hard]),
    [['nofile', 1024, 4096], ['nproc', 64, 64], ['core', 0, 0], ['memlock', -1, -1]]);
});

test('env: defaults, env_file, map and list, pass-through, later wins', () => {
  const s = spec('env_file: ./app.env\nenv: {A: "1", B: null, N: 3, T: true}\nhostname: h\n', { env: { B: 'from-caller' }, files: { '/project/app.env': '# c\nA=0\nexport C="q"\n' } });
  const env = Object.fromEntries(s.process.env.map((e) => [e.name, e.value]));
  assert.deepEqual(env, { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOSTNAME: 'h', HOME: '/root', A: '1', C: 'q', B: 'from-caller', N: '3', T: 'true' });
  const l = spec('env: ["X=1", "Y"]\n', { env: { Y: 'y' } });
  assert.deepEqual(l.process.env.slice(3).map((e) => `${e.name}=${e.value}`), ['X=1', 'Y=y']);
});

test('interpolation: ${VAR}, defaults, required, $$, bare $VAR; keys untouched', () => {
  const r = interpolate({ a: '${A}', b: '${B:-dflt}', c: '${C-x}', d: '$$HOME', e: '$A/x', 'x-k': '${Z:?no}', n: 5 }, { A: 'aa', C: '' });
  assert.deepEqual(r.value, { a: 'aa', b: 'dflt', c: '', d: '$HOME', e: 'aa/x', 'x-k': '${Z:?no}', n: 5 });
  assert.deepEqual(r.problems, []);
  assert.equal(spec('hostname: ${H:-box}\n').hostname.value, 'box');
  assert.equal(spec('resources: {memory: "${MEM}"}\n', { env: { MEM: '2g' } }).resources.memory?.value, 2 * 2 ** 30);
});

test('defaults are visible and sourced as defaults; config values cite their line', () => {
  const s = spec('hostname: web\n');
  assert.equal(s.name.value, 'sandbox');
  assert.equal(s.name.src, 'default');
  assert.deepEqual(s.hostname.src, { file: 'sandbox.yml', line: 3, col: 11 });
  assert.equal(s.security.noNewPrivileges.value, true);
  assert.equal(s.security.maskedPaths.length, 12);
  assert.equal(s.security.readonlyPaths.length, 5);
  assert.equal(s.network.mode.value, 'private');
  assert.deepEqual(s.namespaces.map((n) => `${n.type}:${n.mode}`), ['user:host', 'pid:private', 'mount:private', 'uts:private', 'ipc:private', 'net:private', 'cgroup:private', 'time:host']);
});

test('swap: with only memory, normalize caps memory plus swap at twice memory (Docker), cited at the memory line', () => {
  const only = spec('resources: {memory: 1g}\n').resources;
  assert.deepEqual(only.memorySwapDefault, { value: 2 * 2 ** 30, src: { file: 'sandbox.yml', line: 3, col: 21 } });
  // The very source of memory: a rootless refusal of both is said once, at that line.
  assert.equal(only.memorySwapDefault!.src, only.memory!.src);
  assert.equal(only.memorySwap, undefined);
  // memory_swap given (or no memory at all): no default.
  assert.equal(spec('resources: {memory: 1g, memory_swap: 3g}\n').resources.memorySwapDefault, undefined);
  assert.equal(spec('resources: {memory: 1g, memory_swap: -1}\n').resources.memorySwapDefault, undefined);
  assert.equal(spec('resources: {pids: 10}\n').resources.memorySwapDefault, undefined);
});

test('swap: compile applies the default only where the host accounts swap, and never refuses it', () => {
  const s = spec('resources: {memory: 1g}\n');
  const swapStep = (host: HostFeatures) => compile(s, host).plan.steps.find((x) => x.id === 'cgroup:memory-swap');
  const v1 = swapStep(HYBRID_HOST)!, v2 = swapStep(V2_HOST)!;
  assert.deepEqual([v1.kind === 'cgroup.set' && v1.args.file, v1.kind === 'cgroup.set' && v1.args.value, v1.source], ['memory.memsw.limit_in_bytes', String(2 * 2 ** 30), s.resources.memory!.src]);
  assert.deepEqual([v2.kind === 'cgroup.set' && v2.args.file, v2.kind === 'cgroup.set' && v2.args.value, v2.source], ['memory.swap.max', String(2 ** 30), s.resources.memory!.src]);
  const noSwap: HostFeatures = { ...HYBRID_HOST, cgroup: { ...HYBRID_HOST.cgroup, swap: false } };
  assert.equal(swapStep(noSwap), undefined);
  assert.deepEqual(compile(s, noSwap).problems, []);
  // Asked for in the file, swap on such a host is an error at its line.
  assert.deepEqual(compile(spec('resources: {memory: 1g, memory_swap: 2g}\n'), noSwap).problems.map((p) => p.code), ['no-swap-accounting']);
});

test('network host shares the net namespace; joined namespaces keep their path', () => {
  const s = spec('network: host\nnamespaces: {ipc: /proc/1/ns/ipc, time: true}\n');
  assert.deepEqual(s.namespaces.map((n) => `${n.type}:${n.mode}${n.mode === 'join' ? `:${n.path}` : ''}`), ['user:host', 'pid:private', 'mount:private', 'uts:private', 'ipc:join:/proc/1/ns/ipc', 'net:host', 'cgroup:private', 'time:private']);
});

test('IP syntax agrees with node:net', () => {
  const { isIP: nodeIsIP } = require('node:net') as typeof import('node:net');
  for (const s of ['127.0.0.1', '255.255.255.255', '256.1.1.1', '1.2.3', '::1', '::', 'fe80::1%eth0', '2001:db8::1', '1::2::3', '::ffff:1.2.3.4', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9', 'x', '', '01.2.3.4', ':::']) {
    assert.equal(isIP(s), nodeIsIP(s), s);
  }
});
