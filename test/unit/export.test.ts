// sandbox export: the Pod, the OCI config and the Compose service made from each sample and from
// edge keys, and the fidelity report: each key the format cannot say is a finding at its line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import { parseConfig } from '../../src/config/parse';
import { locatorOf } from '../../src/audit/facts';
import type { SandboxSpec } from '../../src/model/types';
import type { Finding, Locate } from '../../src/export/fidelity';
import { exportKube, quantity } from '../../src/export/kube';
import { exportCompose } from '../../src/export/compose';
import { bundleJson, exportOci, type DeviceNode } from '../../src/export/oci';
import { HYBRID_HOST, ROOT, loadText } from '../helpers/load';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function specOf(text: string, file = 'sandbox.yml'): { spec: SandboxSpec; locate: Locate } {
  const r = loadText(text, { file });
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.line}:${d.col} ${d.message}`), [], text);
  const parsed = parseConfig(file, Buffer.from(text));
  const where = locatorOf(file, parsed.value, parsed.locate);
  return { spec: r.spec!, locate: (src, key) => (typeof src === 'object' ? src : { file, ...where.locate(key) }) };
}
const sample = (name: string) => specOf(readFileSync(join(ROOT, 'samples', name), 'utf8'), `samples/${name}`);
const rootDirs = HYBRID_HOST.rootDirs;
const DEVICES: Record<string, DeviceNode> = { '/dev/fuse': { type: 'c', major: 10, minor: 229, mode: 0o20666, uid: 0, gid: 0 }, '/dev/sda': { type: 'b', major: 8, minor: 0, mode: 0o60660, uid: 0, gid: 6 } };
const ociHost = { rootDirs, arch: 'x86_64', kernel: '6.18.0', device: (p: string) => DEVICES[p] };
const kube = (s: ReturnType<typeof specOf>, image?: string) => exportKube(s.spec, { image, rootDirs }, s.locate);
const compose = (s: ReturnType<typeof specOf>, image?: string) => exportCompose(s.spec, { image, rootDirs }, s.locate);
const oci = (s: ReturnType<typeof specOf>) => exportOci(s.spec, ociHost, s.locate);
/** Each finding as `code line:col`, and every one located inside the file. */
function located(findings: Finding[], file: string, text?: string): string[] {
  const lines = text?.split('\n').length ?? Infinity;
  for (const f of findings) {
    assert.equal(f.file, file);
    assert.ok(f.line >= 1 && f.line <= lines && f.col >= 1, `${f.code} at ${f.line}:${f.col}`);
    assert.match(f.message, /;/, `${f.code} says what to do: ${f.message}`);
  }
  return findings.map((f) => `${f.code.replace(/^export-/, '')} ${f.line}:${f.col}${f.blocking ? ' blocking' : ''}`);
}

test('web.yml as a Pod: rootfs: host needs --image; with it, the host folders as read-only hostPath volumes and the rest exact', () => {
  const s = sample('web.yml');
  assert.deepEqual(located(kube(s).findings, 'samples/web.yml'), ['rootfs-host 12:9 blocking']);
  const { doc, findings } = kube(s, 'localhost/busybox:latest');
  assert.deepEqual(located(findings, 'samples/web.yml'), ['rootfs-host 12:9']);
  const pod = doc as Obj;
  assert.equal(pod.kind, 'Pod');
  assert.equal(pod.spec.runtimeClassName, 'sandbox');
  assert.equal(pod.spec.hostname, 'web');
  assert.equal(pod.spec.shareProcessNamespace, true, 'init: the pause process is PID 1');
  assert.deepEqual(pod.spec.securityContext, { runAsUser: 65534, runAsGroup: 65534, seccompProfile: { type: 'RuntimeDefault' } });
  const c = pod.spec.containers[0];
  assert.deepEqual(c.command, ['busybox', 'httpd', '-f', '-v', '-p', '8080', '-h', '/srv']);
  assert.equal(c.workingDir, '/srv');
  assert.deepEqual(c.ports, [{ containerPort: 8080, protocol: 'TCP', hostPort: 8080, hostIP: '127.0.0.1' }]);
  assert.deepEqual(c.securityContext, { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, readOnlyRootFilesystem: true });
  const byPath = Object.fromEntries(c.volumeMounts.map((m: Obj) => [m.mountPath, { ...m, volume: pod.spec.volumes.find((v: Obj) => v.name === m.name) }]));
  for (const d of ['/usr', '/bin', '/etc']) assert.deepEqual(byPath[d].volume.hostPath, { path: d }), assert.equal(byPath[d].readOnly, true);
  assert.deepEqual(byPath['/srv'].volume.hostPath, { path: '/project/samples/web/site' });
  assert.equal(byPath['/srv'].readOnly, true);
  assert.deepEqual(byPath['/tmp'].volume.emptyDir, { medium: 'Memory', sizeLimit: '16Mi' });
  assert.deepEqual(byPath['/run'].volume.emptyDir, { medium: 'Memory' });
});

test('every sample as a Pod: what a Pod cannot say, each at its line', () => {
  const cases: [string, string[]][] = [
    ['limits.yml', ['rootfs-host 7:9', 'network-none 16:10', 'memory-swap 21:16', 'cpuset 24:11', 'pids 25:9', 'ulimit 28:11', 'ulimit 29:10', 'ulimit 30:9']],
    ['locked-down.yml', ['rootfs-host 7:9', 'network-none 10:10', 'masked-path 17:18', 'masked-path 17:33', 'mount-option 20:5', 'memory-swap 24:16', 'pids 26:9', 'ulimit 29:11', 'ulimit 30:10', 'ulimit 31:9', 'ulimit 32:10']],
    ['busybox.yml', ['network-none 20:10']],
    ['jenkins.yml', ['named-volume 22:5', 'restart-max 9:10', 'pids 28:9', 'ulimit 32:11']],
  ];
  for (const [name, want] of cases) {
    const s = sample(name);
    const { findings } = kube(s, 'localhost/x:1');
    assert.deepEqual(located(findings, `samples/${name}`).sort(), want.sort(), name);
  }
  // An image on this host cannot be pulled by a Pod: --image names where it was copied.
  assert.deepEqual(located(kube(sample('busybox.yml')).findings, 'samples/busybox.yml'), ['image-local 12:8 blocking', 'network-none 20:10']);
  const j = kube(sample('jenkins.yml')).doc as Obj;
  const c = j.spec.containers[0];
  assert.equal(c.image, 'jenkins/jenkins:lts');
  assert.deepEqual(c.resources, { limits: { memory: '2Gi', cpu: '1500m' }, requests: { memory: '1Gi' } });
  assert.deepEqual(c.ports.map((p: Obj) => `${p.hostIP}:${p.hostPort}:${p.containerPort}`), ['127.0.0.1:8080:8080', '127.0.0.1:50000:50000']);
  assert.equal(j.spec.restartPolicy, 'OnFailure');
  assert.equal(j.spec.terminationGracePeriodSeconds, 30);
  assert.equal(c.command, undefined, 'the image keeps its entrypoint');
  assert.deepEqual(c.capabilities ?? c.securityContext.capabilities, { drop: ['ALL'], add: ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'SETFCAP'] });
  // The named volume: a claim of its name, which the Pod does not make (the finding above says so).
  const home = c.volumeMounts.find((m: Obj) => m.mountPath === '/var/jenkins_home');
  assert.deepEqual(j.spec.volumes.find((v: Obj) => v.name === home.name).persistentVolumeClaim, { claimName: 'jenkins-home' });
});

test('named volumes as Compose named volumes: the same name, nocopy, read-only, external; an image\'s anonymous one is left to Compose', () => {
  const image = { config: { Volumes: { '/cache': {} } }, layerDirs: ['/store/l1'], digest: 'sha256:abc' };
  const s = loadText('version: 1\nimage: app:1\nvolumes:\n  - data:/data\n  - {type: volume, source: cfg, target: /etc/app, read_only: true, volume: {nocopy: true}}\nnamed_volumes:\n  cfg: {name: shared-cfg, external: true}\n', { image });
  const r = exportCompose(s.spec!, { image: 'app:1', rootDirs }, () => ({ file: 'sandbox.yml', line: 1, col: 1 }));
  const svc = (r.doc as Obj).services.sandbox;
  assert.deepEqual(svc.volumes, [
    { type: 'volume', source: 'data', target: '/data' },
    { type: 'volume', source: 'shared-cfg', target: '/etc/app', read_only: true, volume: { nocopy: true } },
  ]);
  assert.deepEqual((r.doc as Obj).volumes, { data: { name: 'data' }, 'shared-cfg': { external: true } });
  assert.deepEqual(r.findings, []);
  // A Pod: a claim per named volume (a finding at its line: the claim must exist, unseeded), an emptyDir for the anonymous one.
  const k = exportKube(s.spec!, { image: 'app:1', rootDirs }, () => ({ file: 'sandbox.yml', line: 1, col: 1 }));
  const pod = k.doc as Obj;
  const by = Object.fromEntries(pod.spec.containers[0].volumeMounts.map((m: Obj) => [m.mountPath, pod.spec.volumes.find((v: Obj) => v.name === m.name)]));
  assert.deepEqual(by['/data'].persistentVolumeClaim, { claimName: 'data' });
  assert.deepEqual(by['/etc/app'].persistentVolumeClaim, { claimName: 'shared-cfg', readOnly: true });
  assert.deepEqual(by['/cache'].emptyDir, {});
  assert.deepEqual(k.findings.map((f) => f.code), ['export-named-volume', 'export-named-volume']);
  // An OCI bundle: a finding per named volume; the anonymous one is the image's files in rootfs/.
  const o = exportOci(s.spec!, ociHost, () => ({ file: 'sandbox.yml', line: 1, col: 1 }));
  assert.equal(o.findings.filter((f) => f.code === 'export-named-volume').length, 2);
  assert.ok(!bundleJson((o.doc as Obj).config).includes('/cache'));
});

test('edge keys as a Pod: namespaces, ids, caps, seccomp, devices, free ports', () => {
  const text = [
    'version: 1', 'name: Edge_Case', 'image: busybox', 'user: "nobody:1000"', 'umask: "0077"', 'stop_signal: SIGQUIT', 'cap_add: [NET_ADMIN]',
    'namespaces: {time: true, cgroup: host, pid: host, ipc: host}', 'ports: ["80"]', 'devices: [/dev/fuse]', 'security: {seccomp: unconfined}',
    'volumes: [{type: bind, source: ./d, target: /d, propagation: rshared}]', 'extra_hosts: {gw: host-gateway, db: 10.0.0.5}', 'dns: [1.1.1.1]', 'sysctls: {net.core.somaxconn: 1024}', 'shm_size: 128m', '',
  ].join('\n');
  const s = specOf(text);
  const { doc, findings } = kube(s);
  assert.deepEqual(located(findings, 'sandbox.yml', text).sort(), ['device 10:11', 'free-port 9:9', 'host-gateway 13:19', 'hostname 1:1', 'namespace-host 8:34', 'propagation 12:11', 'stop-signal 6:14', 'time-namespace 8:20', 'umask 5:8', 'user-name 4:7 blocking'].sort());
  const pod = doc as Obj;
  assert.equal(pod.metadata.name, 'edge-case');
  assert.equal(pod.spec.hostPID, true);
  assert.equal(pod.spec.hostIPC, true);
  assert.deepEqual(pod.spec.hostAliases, [{ ip: '10.0.0.5', hostnames: ['db'] }]);
  assert.deepEqual(pod.spec.dnsConfig, { nameservers: ['1.1.1.1'] });
  assert.deepEqual(pod.spec.securityContext.sysctls, [{ name: 'net.core.somaxconn', value: '1024' }]);
  assert.deepEqual(pod.spec.securityContext.seccompProfile, { type: 'Unconfined' });
  assert.ok(pod.spec.volumes.some((v: Obj) => v.emptyDir?.sizeLimit === '128Mi'), '/dev/shm of shm_size');
  // cap_add for a non-root user: sandbox makes them ambient, a Pod does not.
  const t2 = 'version: 1\nimage: busybox\nuser: "1000:1000"\ncap_add: [NET_BIND_SERVICE]\n';
  assert.deepEqual(located(kube(specOf(t2)).findings, 'sandbox.yml', t2), ['ambient-caps 4:11']);
  assert.equal(quantity(512 * 1024), '512Ki');
  assert.equal(quantity(1000), '1000');
});

test('every sample as an OCI config: locked-down.yml is exact; what a runtime leaves to its caller is reported', () => {
  const l = oci(sample('locked-down.yml'));
  assert.deepEqual(l.findings, []);
  const cfg = l.doc.config as Obj;
  assert.deepEqual(l.doc.root, { kind: 'host', links: [{ path: '/bin', target: 'usr/bin' }, { path: '/sbin', target: 'usr/sbin' }, { path: '/lib', target: 'usr/lib' }, { path: '/lib64', target: 'usr/lib64' }] });
  assert.deepEqual(cfg.root, { path: 'rootfs', readonly: true });
  assert.deepEqual(cfg.process.user, { uid: 65534, gid: 65534, umask: 0o22 });
  assert.deepEqual(cfg.process.capabilities, { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] });
  assert.equal(cfg.process.noNewPrivileges, true);
  assert.deepEqual(cfg.process.rlimits.map((r: Obj) => `${r.type}=${r.soft}:${r.hard}`), ['RLIMIT_NOFILE=64:64', 'RLIMIT_NPROC=16:16', 'RLIMIT_CORE=0:0', 'RLIMIT_FSIZE=1048576:1048576']);
  assert.deepEqual(cfg.linux.namespaces.map((n: Obj) => n.type), ['pid', 'mount', 'uts', 'ipc', 'network', 'cgroup']);
  assert.deepEqual(cfg.linux.resources, { memory: { limit: 33554432, swap: 33554432 }, cpu: { period: 100000, quota: 25000 }, pids: { limit: 16 } });
  assert.ok(cfg.linux.maskedPaths.includes('/proc/kcore') && cfg.linux.maskedPaths.includes('/proc/cpuinfo'));
  assert.ok(cfg.linux.readonlyPaths.includes('/proc/sys'));
  assert.equal(cfg.linux.seccomp.defaultAction, 'SCMP_ACT_ERRNO');
  assert.deepEqual(cfg.linux.seccomp.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  assert.ok(cfg.linux.seccomp.syscalls.some((r: Obj) => r.action === 'SCMP_ACT_ALLOW' && r.names.includes('read')));
  assert.ok(!cfg.linux.seccomp.syscalls.some((r: Obj) => r.action === 'SCMP_ACT_ALLOW' && r.names.includes('mount')), 'mount stays refused without SYS_ADMIN');
  const tmp = cfg.mounts.find((m: Obj) => m.destination === '/tmp');
  assert.deepEqual(tmp.options, ['noexec', 'nosuid', 'nodev', 'mode=1777', `size=${8 * 1048576}`]);
  for (const d of ['/usr', '/etc']) assert.deepEqual(cfg.mounts.find((m: Obj) => m.destination === d).options, ['rbind', 'ro', 'nodev', 'rprivate']);

  assert.deepEqual(located(oci(sample('web.yml')).findings, 'samples/web.yml').sort(), ['init 17:7', 'network-private 1:1', 'port 24:5']);
  assert.deepEqual(located(oci(sample('limits.yml')).findings, 'samples/limits.yml'), []);
  assert.deepEqual(located(oci(sample('busybox.yml')).findings, 'samples/busybox.yml'), ['image-missing 12:8 blocking']);
  assert.deepEqual(located(oci(sample('jenkins.yml')).findings, 'samples/jenkins.yml').sort(), ['image-missing 7:8 blocking', 'named-volume 22:5', 'network-private 1:1', 'port 18:5', 'port 19:5', 'restart 9:10', 'stop-grace 30:20'].sort());
  // A non-root user keeps what cap_add names, as ambient capabilities, as under sandbox.
  const s = specOf('version: 1\ncommand: [x]\nuser: "1000:1000"\nnetwork: none\ncap_drop: [ALL]\ncap_add: [NET_BIND_SERVICE]\n');
  assert.deepEqual((oci(s).doc.config as Obj).process.capabilities, { bounding: ['CAP_NET_BIND_SERVICE'], effective: ['CAP_NET_BIND_SERVICE'], permitted: ['CAP_NET_BIND_SERVICE'], inheritable: ['CAP_NET_BIND_SERVICE'], ambient: ['CAP_NET_BIND_SERVICE'] });
});

test('edge keys as an OCI config: devices by their numbers, time namespace, unlimited rlimits, user names', () => {
  const text = 'version: 1\ncommand: [x]\nuser: "1000"\nnetwork: none\nnamespaces: {time: true, user: {uid_map: ["0:100000:65536"], gid_map: ["0:100000:65536"]}}\ndevices: [/dev/fuse, /dev/nope]\nulimits: {memlock: -1}\nresources: {device_read_bps: [{path: /dev/sda, rate: 1m}]}\nsecurity: {seccomp: unconfined}\n';
  const s = specOf(text);
  const { doc, findings } = oci(s);
  assert.deepEqual(located(findings, 'sandbox.yml', text).sort(), ['device 6:22 blocking', 'time-namespace 5:20', 'user-group 3:7 blocking'].sort());
  const cfg = doc.config as Obj;
  assert.deepEqual(cfg.linux.devices, [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 }]);
  assert.deepEqual(cfg.linux.resources.devices, [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 10, minor: 229, access: 'rwm' }]);
  assert.deepEqual(cfg.linux.resources.blockIO, { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }] });
  assert.deepEqual(cfg.linux.uidMappings, [{ containerID: 0, hostID: 100000, size: 65536 }]);
  assert.equal(cfg.linux.seccomp, undefined);
  assert.match(bundleJson(cfg), /"soft": 18446744073709551615,\s*"hard": 18446744073709551615/);
  assert.ok(!cfg.linux.namespaces.some((n: Obj) => n.type === 'time'));
});

// The Compose specification's own JSON schema (draft-07), vendored: see fixtures/compose-spec.SOURCE.md.
const composeSchema = JSON.parse(readFileSync(join(ROOT, 'test/unit/fixtures/compose-spec.json'), 'utf8'));

test('every sample as a Compose file: valid against the compose-spec schema, each finding at its line', () => {
  const ajv = new Ajv({ allErrors: true, strict: false });
  // The schema names draft-07 by its https address, which ajv knows as http://…#.
  ajv.addMetaSchema(require('ajv/dist/refs/json-schema-draft-07.json'), 'https://json-schema.org/draft-07/schema');
  ajv.addFormat('duration', /^[0-9.]+(h|m|s|ms|us|ns)$/);
  const validate = ajv.compile(composeSchema);
  assert.equal(validate({ services: { a: { image: 'x', mem_limit: {} } } }), false, 'the schema refuses what it should');
  const want: Record<string, string[]> = {
    'web.yml': ['rootfs-host 12:9'],
    'limits.yml': ['rootfs-host 7:9'],
    'locked-down.yml': ['rootfs-host 7:9', 'masked-path 17:18', 'masked-path 17:33', 'mount-option 20:5'],
    'busybox.yml': [],
    'jenkins.yml': [],
  };
  for (const [name, codes] of Object.entries(want)) {
    const { doc, findings } = compose(sample(name), name === 'jenkins.yml' ? undefined : 'localhost/busybox:latest');
    assert.deepEqual(located(findings, `samples/${name}`), codes, name);
    assert.equal(validate(doc), true, `${name}: ${JSON.stringify(validate.errors, null, 1)}`);
  }
  const svc = (compose(sample('jenkins.yml')).doc as Obj).services.jenkins;
  assert.deepEqual(svc.ports, [{ target: 8080, published: '8080', host_ip: '127.0.0.1', protocol: 'tcp' }, { target: 50000, published: '50000', host_ip: '127.0.0.1', protocol: 'tcp' }]);
  assert.equal(svc.restart, 'on-failure:3');
  assert.deepEqual(svc.security_opt, ['no-new-privileges:true']);
  assert.deepEqual(svc.ulimits, { nofile: { soft: 4096, hard: 8192 } });
  assert.equal(svc.stop_grace_period, '30s');
  const l = (compose(sample('limits.yml'), 'localhost/busybox:latest').doc as Obj).services.limits;
  assert.deepEqual([l.mem_limit, l.memswap_limit, l.cpus, l.cpu_shares, l.cpuset, l.pids_limit, l.network_mode], [268435456, 536870912, 0.5, 512, '0', 64, 'none']);
  const t = 'version: 1\nimage: busybox\nnamespaces: {time: true, user: true}\numask: "0077"\n';
  assert.deepEqual(located(compose(specOf(t)).findings, 'sandbox.yml', t).sort(), ['time-namespace 3:20', 'umask 4:8', 'user-namespace 3:32'].sort());
});

test('egress as a Pod: a NetworkPolicy beside it (a v1 List) with what one can say; names and unsayable denies are findings at their rules', () => {
  const text = [
    'version: 1', 'command: [x]', 'user: "1000:1000"', 'network:', '  mode: private', '  egress:',
    '    - allow registry.npmjs.org:443', // 7: a name
    '    - deny 10.1.0.0/16', // 8: an exception inside rule 3's range
    '    - "allow 10.0.0.0/8:443,8000-8100"', // 9
    '    - allow 198.18.7.12:7/udp', // 10
    '    - deny 192.168.0.0/16:22', // 11: part of what rule 12 allows
    '    - allow 192.168.0.0/16', // 12
    '    - allow 0.0.0.0/0:80', // 13: the refused classes as except
    '    - allow 169.254.169.254:80', // 14: inside a class: allowed as written
    '    - deny *.corp.test', // 15: a name refused
    '    - allow 172.16.0.0/12/udp', // 16
    '',
  ].join('\n');
  const s = specOf(text);
  const { doc, findings: all0 } = kube(s, 'localhost/busybox:latest');
  const findings = all0.filter((f) => f.code.startsWith('export-egress'));
  assert.deepEqual(located(findings, 'sandbox.yml', text), ['egress-host 7:7', 'egress-order 12:7', 'egress-host 15:7']);
  assert.match(findings[0]!.message, /a NetworkPolicy names no hosts, so the Pod would not reach registry\.npmjs\.org/);
  const list = doc as Obj;
  assert.equal(list.kind, 'List');
  assert.equal(list.items[0].kind, 'Pod');
  const np = list.items[1];
  assert.deepEqual(np.metadata, { name: 'sandbox-egress' });
  assert.deepEqual(np.spec.podSelector, { matchLabels: { app: list.items[0].metadata.labels.app } });
  assert.deepEqual(np.spec.policyTypes, ['Egress']);
  assert.deepEqual(np.spec.egress, [
    { to: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } }], ports: [{ protocol: 'TCP', port: 443 }, { protocol: 'TCP', port: 8000, endPort: 8100 }, { protocol: 'UDP', port: 443 }, { protocol: 'UDP', port: 8000, endPort: 8100 }] },
    { to: [{ ipBlock: { cidr: '198.18.7.12/32' } }], ports: [{ protocol: 'UDP', port: 7 }] },
    { to: [{ ipBlock: { cidr: '192.168.0.0/16' } }] },
    { to: [{ ipBlock: { cidr: '0.0.0.0/0', except: ['10.1.0.0/16', '0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '255.255.255.255/32'] } }], ports: [{ protocol: 'TCP', port: 80 }, { protocol: 'UDP', port: 80 }] },
    { to: [{ ipBlock: { cidr: '169.254.169.254/32' } }], ports: [{ protocol: 'TCP', port: 80 }, { protocol: 'UDP', port: 80 }] },
    { to: [{ ipBlock: { cidr: '172.16.0.0/12' } }], ports: [{ protocol: 'UDP' }] },
  ]);
  // A deny over the whole of a later allow leaves nothing to allow; no egress key, no List.
  const all = kube(specOf('version: 1\ncommand: [x]\nnetwork: {mode: private, egress: [deny 10.0.0.0/8, allow 10.1.0.0/16]}\n'));
  assert.deepEqual((all.doc as Obj).items[1].spec.egress, []);
  assert.equal((kube(specOf('version: 1\ncommand: [x]\nnetwork: private\n')).doc as Obj).kind, 'Pod');
});

test('egress as a Compose service or an OCI bundle: one finding at the `egress` key', () => {
  const text = 'version: 1\ncommand: [x]\nuser: "1000:1000"\nnetwork:\n  mode: private\n  egress: [allow a.test:443, deny 10.0.0.0/8]\n';
  const s = specOf(text);
  const c = compose(s).findings.filter((f) => f.code === 'export-egress');
  assert.deepEqual(located(c, 'sandbox.yml', text), ['egress 6:3']);
  assert.match(c[0]!.message, /^an egress policy \(`network\.egress`, 2 rules\) has no equivalent in a Compose service; /);
  assert.deepEqual(located(oci(s).findings.filter((f) => f.code === 'export-egress'), 'sandbox.yml', text), ['egress 6:3']);
});
