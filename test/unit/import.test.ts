// The docker run and Compose importers (src/import): each flag and key to the config people write,
// the notes for what differs or has no key, the YAML they are written as, and that the written
// file gives the plan the command line gives. Also `up`'s -e/-v/-p overrides and the Compose-file hint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { fromDockerRun, commandLine, COMMAND_LINE } from '../../src/import/docker';
import { fromCompose } from '../../src/import/compose';
import { toYaml } from '../../src/import/write';
import { loadSpec } from '../../src/model/load';
import type { SpecInputs } from '../../src/model/normalize';
import { compile } from '../../src/plan/compile';
import type { Step } from '../../src/plan/types';
import { HYBRID_HOST, ROOT, loadText } from '../helpers/load';

const CWD = '/home/user/proj';
const docker = (line: string[]) => fromDockerRun(['docker', 'run', ...line], { cwd: CWD, outDir: CWD });
const cfg = (line: string[]) => { const r = docker(line); return { ...r.config, version: undefined, name: undefined }; };

/** The pipeline over a text as a file at `abs`, with a fixed environment. */
function load(text: string, abs: string, inputs: SpecInputs = {}, env: Record<string, string> = {}) {
  return loadSpec({ file: abs, absFile: abs, bytes: Buffer.from(text), env, home: '/home/user', hostCpus: 2, readFile: () => undefined }, inputs);
}
/** Steps without where they came from: what a sandbox does, not who said so. */
const bare = (steps: Step[]) => steps.map(({ source: _s, ...rest }) => rest);

test('each docker run flag becomes its key', () => {
  const cases: [string[], Record<string, unknown>][] = [
    [['-d', 'img'], { image: 'img', detach: true }],
    [['-it', 'img'], { image: 'img', stdin_open: true, tty: true }],
    [['-dit', 'img', 'sh'], { image: 'img', detach: true, stdin_open: true, tty: true, command: ['sh'] }],
    [['--init', '--read-only', 'img'], { image: 'img', init: true, security: { read_only: true } }],
    [['-e', 'A=1', '--env=B=x=y', '-e', 'C', 'img'], { image: 'img', env: { A: '1', B: 'x=y', C: null } }],
    [['--env-file', 'app.env', 'img'], { image: 'img', env_file: ['./app.env'] }],
    [['-v', './d:/d:ro', '-v', '/abs:/x', '-v', 'vol:/data', 'img'], { image: 'img', volumes: ['./d:/d:ro', '/abs:/x', 'vol:/data'] }],
    [['-v', 'vol:/data:ro,nocopy', '--mount', 'type=volume,source=v2,target=/t,volume-nocopy', 'img'], { image: 'img', volumes: ['vol:/data:ro,nocopy', 'v2:/t:nocopy'] }],
    [['--tmpfs', '/run:size=64m,mode=1777', '--tmpfs', '/x:exec', 'img'], { image: 'img', volumes: [{ type: 'tmpfs', target: '/run', size: '64m', mode: '1777', options: ['noexec'] }, { type: 'tmpfs', target: '/x' }] }],
    [['--mount', 'type=bind,source=./s,target=/t,readonly', '--mount', 'type=tmpfs,dst=/tm,tmpfs-size=1024', 'img'], { image: 'img', volumes: [{ type: 'bind', source: './s', target: '/t', read_only: true }, { type: 'tmpfs', target: '/tm', size: 1024 }] }],
    [['-p', '8080:80', '-p8443:443/tcp', '--publish=127.0.0.1:53:53/udp', 'img'], { image: 'img', ports: ['8080:80', '8443:443/tcp', '127.0.0.1:53:53/udp'] }],
    [['-m', '512m', '--memory-reservation', '256m', '--memory-swap', '1g', '--cpus', '1.5', '-c', '512', '--cpuset-cpus', '0-1', '--cpuset-mems', '0', '--pids-limit', '100', '--blkio-weight', '300', 'img'],
      { image: 'img', resources: { memory: '512m', memory_reservation: '256m', memory_swap: '1g', cpus: 1.5, cpu_shares: 512, cpuset: '0-1', cpuset_mems: '0', pids: 100, io_weight: 300 } }],
    [['--pids-limit', '-1', '--cpu-quota', '50000', 'img'], { image: 'img', resources: { pids: -1, cpus: 0.5 } }],
    [['--device-read-bps', '/dev/sda:1mb', 'img'], { image: 'img', resources: { device_read_bps: [{ path: '/dev/sda', rate: '1mb' }] } }],
    [['-u', '1000:1000', '-w', '/srv', '-h', 'box', '--group-add', '100', 'img'], { image: 'img', user: '1000:1000', workdir: '/srv', hostname: 'box', group_add: [100] }],
    [['--network', 'none', 'img'], { image: 'img', network: 'none' }],
    [['--net=host', 'img'], { image: 'img', network: 'host' }],
    [['--network', 'bridge', 'img'], { image: 'img', network: 'private' }],
    [['--cap-add', 'NET_ADMIN', '--cap-drop', 'MKNOD', 'img'], { image: 'img', cap_add: ['NET_ADMIN'], cap_drop: ['MKNOD'] }],
    // Docker's way to name a whole set, written as the change from sandbox's default set.
    [['--cap-drop', 'ALL', '--cap-add', 'cap_chown', '--cap-add', 'NET_ADMIN', 'img'], { image: 'img', cap_add: ['NET_ADMIN'], cap_drop: ['DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT'] }],
    [['--security-opt', 'no-new-privileges', '--security-opt', 'seccomp=unconfined', 'img'], { image: 'img', security: { no_new_privileges: true, seccomp: 'unconfined' } }],
    [['--security-opt', 'seccomp=prof.json', 'img'], { image: 'img', security: { seccomp: './prof.json' } }],
    [['--ulimit', 'nofile=1024:4096', '--ulimit', 'nproc=512', '--sysctl', 'net.ipv4.ip_forward=1', 'img'], { image: 'img', ulimits: { nofile: '1024:4096', nproc: 512 }, sysctls: { 'net.ipv4.ip_forward': '1' } }],
    [['--device', '/dev/fuse', '--add-host', 'db:10.0.0.2', '--add-host', 'x=10.0.0.3', '--dns', '1.1.1.1', 'img'], { image: 'img', devices: ['/dev/fuse'], extra_hosts: ['db:10.0.0.2', 'x:10.0.0.3'], dns: ['1.1.1.1'] }],
    [['--restart', 'on-failure:3', '--stop-signal', 'SIGQUIT', '--stop-timeout', '30', 'img'], { image: 'img', restart: 'on-failure:3', stop_signal: 'SIGQUIT', stop_grace_period: '30s' }],
    [['--restart', 'unless-stopped', 'img'], { image: 'img', restart: 'always' }],
    [['--entrypoint', '/bin/sh', 'img', '-c', 'echo hi'], { image: 'img', entrypoint: ['/bin/sh'], command: ['-c', 'echo hi'] }],
    [['--shm-size', '64m', 'img'], { image: 'img', shm_size: '64m' }],
    [['--ipc', 'host', '--pid=host', '--uts', 'host', '--userns', 'host', '--cgroupns', 'private', 'img'], { image: 'img', namespaces: { ipc: 'host', pid: 'host', uts: 'host', user: 'host', cgroup: 'private' } }],
    [['--rootfs', 'host', 'python3', '-m', 'http.server'], { rootfs: 'host', command: ['python3', '-m', 'http.server'] }],
    [['--rootfs', './root', 'sh'], { rootfs: { type: 'dir', path: './root' }, command: ['sh'] }],
    [['--name', 'web', '--rm', 'img'], { image: 'img' }],
  ];
  for (const [line, want] of cases) {
    const r = docker(line);
    assert.deepEqual(r.notes.filter((n) => n.kind === 'refused'), [], line.join(' '));
    assert.deepEqual(JSON.parse(JSON.stringify({ ...r.config, version: undefined, name: undefined })), want, line.join(' '));
  }
  assert.equal(docker(['--name', 'web', 'img']).config.name, 'web');
  assert.equal(docker(['--rm', 'img']).rm, true);
  assert.equal(docker(['--rm=false', 'img']).rm, false);
  assert.equal(docker(['registry:5000/team/app:1.2@sha256:abc']).config.name, 'app');
  assert.equal(docker(['--rootfs', 'host', '/usr/bin/python3']).config.name, 'python3');
  // The first key is version, then name, as every sample.
  assert.deepEqual(Object.keys(docker(['-d', '--name', 'x', 'img']).config).slice(0, 3), ['version', 'name', 'image']);
});

test('a relative path is written from the file\'s folder, so that it names the same host folder', () => {
  const r = fromDockerRun(['docker', 'run', '-v', './data:/data', '--env-file', 'x.env', 'img'], { cwd: '/srv/app', outDir: '/srv/app/deploy' });
  assert.deepEqual(r.config.volumes, ['../data:/data']);
  assert.deepEqual(r.config.env_file, ['../x.env']);
});

test('a `$` on the command line stays a `$`: written as `$$`, it is not interpolated', () => {
  const r = docker(['-e', 'P=a$HOME', 'img', 'echo', '$x']);
  assert.deepEqual(r.config.env, { P: 'a$$HOME' });
  const text = toYaml(r, { schema: 's.json', header: [] });
  const spec = load(text, '/p/x.yml', {}, { HOME: '/root', x: 'no' }).spec!;
  assert.equal(spec.process.env.find((e) => e.name === 'P')?.value, 'a$HOME');
  assert.deepEqual(spec.process.args, ['echo', '$x']);
});

test('unknown flags are refused all at once, each located on the command line; --privileged is refused with what to write instead', () => {
  const r = docker(['--foo', '-p', '80:80', '--bar=1', '-Z', 'img']);
  const refused = r.notes.filter((n) => n.kind === 'refused');
  assert.deepEqual(refused.map((n) => n.code), ['unknown-flag', 'unknown-flag', 'unknown-flag']);
  const line = commandLine(['docker', 'run', '--foo', '-p', '80:80', '--bar=1', '-Z', 'img']).text;
  assert.equal(line.slice(refused[0]!.at.col - 1, refused[0]!.at.endCol! - 1), '--foo');
  assert.equal(line.slice(refused[1]!.at.col - 1, refused[1]!.at.endCol! - 1), '--bar=1');
  assert.match(refused[0]!.message, /`--foo` is not a docker run flag that sandbox knows \(nor --bar, -Z\)/);
  const p = docker(['--privileged', 'img']).notes;
  assert.equal(p[0]!.kind, 'refused');
  assert.match(p[0]!.message, /not a sandbox.*cap_add/);
  assert.equal(docker(['-p']).notes[0]!.code, 'flag-needs-value');
  assert.equal(docker([]).notes[0]!.code, 'no-image');
  assert.equal(docker(['--rootfs', 'host']).notes[0]!.code, 'no-command');
});

test('flags with no key are dropped with the reason; values whose meaning differs get a comment in the file', () => {
  const r = docker(['-l', 'a=b', '--pull', 'always', '--security-opt', 'apparmor=x', '-P', '-p', '8080:80', '-m', '1g', '--network', 'bridge', '-v', '/cache', 'img']);
  assert.deepEqual(r.notes.filter((n) => n.kind === 'dropped').map((n) => n.message.split(':')[0]), ['`-l a=b`', '`--pull always`', '`--security-opt apparmor=x`', '`-P`']);
  const text = toYaml(r, { schema: '../schema/sandbox.schema.json', header: ['from docker run'] });
  assert.match(text, /^# yaml-language-server: \$schema=\.\.\/schema\/sandbox\.schema\.json\n#\n# from docker run\nversion: 1\nname: img\n/);
  assert.match(text, /- 8080:80 # published on every address of this host, as docker run does; write 127\.0\.0\.1:8080:80/);
  assert.match(text, /memory: 1g # docker run -m also allows as much swap again/);
  assert.match(text, /network: private # `--network bridge`: a private network is this sandbox's own/);
  assert.match(text, /- \{type: tmpfs, target: \/cache\} # `-v \/cache` makes an anonymous volume/);
  // What it wrote is what it meant.
  assert.deepEqual(parse(text), JSON.parse(JSON.stringify(r.config)));
});

test('sandbox run and the file --save writes give the same plan; run\'s steps cite the command line', () => {
  const line = ['sandbox', 'run', '--rm', '-p', '8080:8000', '-v', './www:/www:ro', '-e', 'A=1', '-m', '256m', '--cap-drop', 'NET_RAW', '--rootfs', 'host', 'python3', '-m', 'http.server', '8000'];
  // run: the config written for the caller's folder and loaded from there, sources on the command line.
  const ran = fromDockerRun(line, { cwd: CWD, outDir: CWD });
  const fromRun = load(toYaml(ran, { schema: 's', header: [] }), `${CWD}/sandbox-run.yml`);
  assert.deepEqual(fromRun.diagnostics.filter((d) => d.severity === 'error'), []);
  // --save deploy/web.yml: written for another folder, loaded as a file from there.
  const saved = fromDockerRun(line, { cwd: CWD, outDir: `${CWD}/deploy` });
  const text = toYaml(saved, { schema: 's', header: [] });
  assert.match(text, /\.\.\/www:\/www:ro/);
  const fromFile = load(text, `${CWD}/deploy/web.yml`);
  assert.deepEqual(fromFile.diagnostics.filter((d) => d.severity === 'error'), []);
  const a = compile(fromRun.spec!, HYBRID_HOST).plan;
  const b = compile(fromFile.spec!, HYBRID_HOST).plan;
  assert.deepEqual(bare(a.steps), bare(b.steps));
  assert.ok(a.steps.length > 50);
  assert.ok(a.steps.some((s) => s.stage === 'mounts' && JSON.stringify(s.args).includes(`"${CWD}/www"`)), 'the volume names the caller\'s folder');
});

test('the seed line: docker run -d -p 8080:8080 -p 50000:50000 -v jenkins_home:/var/jenkins_home jenkins/jenkins', (t) => {
  const r = docker(['-d', '-p', '8080:8080', '-p', '50000:50000', '-v', 'jenkins_home:/var/jenkins_home', 'jenkins/jenkins']);
  assert.deepEqual(r.notes.filter((n) => n.kind !== 'changed'), []);
  assert.deepEqual(JSON.parse(JSON.stringify(r.config)), {
    version: 1, name: 'jenkins', image: 'jenkins/jenkins', detach: true, ports: ['8080:8080', '50000:50000'], volumes: ['jenkins_home:/var/jenkins_home'],
  });
  // No -u and no -e: the image's user and environment fill them, as the sample's comment says
  // (`user: "1000:1000"   # the image's jenkins user`); the plan marks them `← image` once pulled.
  const text = toYaml(r, { schema: '../schema/sandbox.schema.json', header: [] });
  const got = load(text, join(ROOT, 'samples/jenkins-imported.yml'));
  // NEEDS NAMED VOLUMES (the `vol` branch): until `NAME:/target` is a volume sandbox keeps, the
  // pipeline refuses it, and the comparison of plans below cannot run.
  if (got.diagnostics.some((d) => d.code === 'named-volume')) { t.skip('needs named volumes (`jenkins_home:/var/jenkins_home`), which the vol branch adds'); return; }
  assert.deepEqual(got.diagnostics.filter((d) => d.severity === 'error'), []);
  const sample = load(readFileSync(join(ROOT, 'samples/jenkins.yml'), 'utf8'), join(ROOT, 'samples/jenkins.yml'));
  const a = compile(got.spec!, HYBRID_HOST).plan;
  const b = compile(sample.spec!, HYBRID_HOST).plan;
  // Ports: the same host and container ports (the sample keeps them on 127.0.0.1; the seed line, as
  // docker run, publishes them on every address, and the file says so in a comment).
  const ports = (p: typeof a) => p.steps.filter((s) => s.stage === 'network' && /port/.test(s.kind)).map((s) => { const { hostIp: _ip, ...rest } = s.args as { hostIp?: string }; return JSON.stringify(rest); }).sort();
  assert.deepEqual(ports(a), ports(b));
  assert.equal(ports(a).length, 2);
  // The named volume on /var/jenkins_home.
  const home = (p: typeof a) => p.steps.filter((s) => s.stage === 'mounts' && s.kind !== 'mount.workdir' && JSON.stringify(s.args).includes('/var/jenkins_home')).map((s) => ({ kind: s.kind, args: s.args }));
  assert.deepEqual(home(a), home(b));
  assert.ok(home(a).length > 0);
  // Detached.
  const exec = (p: typeof a) => p.steps.find((s) => s.kind === 'exec')!.args as { detach?: boolean };
  assert.equal(exec(a).detach, true);
  assert.equal(exec(b).detach, true);
});

const COMPOSE = `name: proj
services:
  web:
    image: nginx:1.27
    container_name: web1
    command: ["nginx", "-g", "daemon off;"]
    entrypoint: /docker-entrypoint.sh
    environment:
      A: "1"
    env_file: ./web.env
    user: "101:101"
    working_dir: /srv
    hostname: web
    group_add: [100]
    tty: false
    stdin_open: false
    init: true
    restart: on-failure:3
    stop_signal: SIGQUIT
    stop_grace_period: 20s
    shm_size: 32m
    network_mode: bridge
    dns: [1.1.1.1]
    extra_hosts: ["db:10.0.0.2"]
    ports:
      - "127.0.0.1:8080:80"
      - {target: 443, published: 8443, host_ip: 127.0.0.1, protocol: tcp, mode: host}
    volumes:
      - ./html:/usr/share/nginx/html:ro
      - type: bind
        source: ./conf
        target: /etc/nginx/conf.d
        read_only: true
      - type: tmpfs
        target: /tmp
        tmpfs: {size: 1048576, mode: 0o1777}
    tmpfs: [/run]
    read_only: true
    cap_add: [NET_BIND_SERVICE]
    cap_drop: [ALL]
    security_opt: ["no-new-privileges:true"]
    ulimits:
      nofile: {soft: 1024, hard: 2048}
      nproc: 512
    sysctls: {net.ipv4.ip_unprivileged_port_start: 0}
    devices: [/dev/fuse]
    mem_limit: 512m
    mem_reservation: 256m
    memswap_limit: 1g
    cpus: 1.5
    cpu_shares: 512
    cpuset: "0-1"
    pids_limit: 100
    blkio_config: {weight: 300}
    ipc: private
    pid: host
    x-team: web
`;

/** The same sandbox, written by hand. */
const EXPECTED = `version: 1
name: web1
image: nginx:1.27
command: [nginx, -g, "daemon off;"]
entrypoint: /docker-entrypoint.sh
env: {A: "1"}
env_file: [./web.env]
user: "101:101"
workdir: /srv
hostname: web
group_add: [100]
tty: false
stdin_open: false
init: true
restart: on-failure:3
stop_signal: SIGQUIT
stop_grace_period: 20s
shm_size: 32m
network: private
dns: [1.1.1.1]
extra_hosts: ["db:10.0.0.2"]
ports: ["127.0.0.1:8080:80", {target: 443, published: 8443, host_ip: 127.0.0.1, protocol: tcp}]
volumes:
  - ./html:/usr/share/nginx/html:ro
  - {type: bind, source: ./conf, target: /etc/nginx/conf.d, read_only: true}
  - {type: tmpfs, target: /tmp, size: 1048576, mode: "1777"}
  - {type: tmpfs, target: /run, options: [noexec]}
security: {read_only: true, no_new_privileges: true}
# cap_drop: [ALL] and cap_add: [NET_BIND_SERVICE] in Compose: that one capability in the bounding
# set, which user 101 does not hold (docker run gives a user other than root none).
cap_drop: [CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT]
ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 512}
sysctls: {net.ipv4.ip_unprivileged_port_start: 0}
devices: [/dev/fuse]
resources: {memory: 512m, memory_reservation: 256m, memory_swap: 1g, cpus: 1.5, cpu_shares: 512, cpuset: "0-1", pids: 100, io_weight: 300}
namespaces: {ipc: private, pid: host}
`;

test('a Compose service with every key sandbox shares gives the plan of the same file written by hand', () => {
  const c = fromCompose('compose.yml', Buffer.from(COMPOSE), undefined, { composeDir: '/p', outDir: '/p' });
  assert.deepEqual(c.errors, []);
  assert.deepEqual(c.notes.filter((n) => n.kind !== 'changed'), []);
  assert.equal(c.config['x-team'], 'web');
  const text = toYaml(c, { schema: 's', header: [] });
  const files = { '/p/web.env': 'B=2\n' };
  const read = (t: string) => loadSpec({ file: '/p/x.yml', absFile: '/p/x.yml', bytes: Buffer.from(t), env: {}, home: '/h', hostCpus: 2, readFile: (p) => files[p as keyof typeof files] });
  const got = read(text);
  const want = read(EXPECTED);
  assert.deepEqual(got.diagnostics.filter((d) => d.severity === 'error'), []);
  assert.deepEqual(want.diagnostics.filter((d) => d.severity === 'error'), []);
  assert.deepEqual(bare(compile(got.spec!, HYBRID_HOST).plan.steps), bare(compile(want.spec!, HYBRID_HOST).plan.steps));
});

test('Compose keys with no counterpart are reported at their line, with the reason', () => {
  const text = `services:
  app:
    build: .
    image: app
    depends_on: [db]
    healthcheck: {test: [CMD, "true"]}
    networks: [back]
    privileged: false
    restart: unless-stopped
    ports: ["80:80"]
  db:
    image: postgres
volumes:
  data: {driver: local}
`;
  const c = fromCompose('c.yml', Buffer.from(text), 'app', { composeDir: '/p', outDir: '/p' });
  const dropped = c.notes.filter((n) => n.kind === 'dropped').map((n) => `${n.at.line}:${n.at.col} ${n.message.split(':')[0]}`);
  assert.deepEqual(dropped, ['3:5 `build`', '5:5 `depends_on`', '6:5 `healthcheck`', '7:5 networks back', '14:3 volume `data`']);
  const changed = c.notes.filter((n) => n.kind === 'changed').map((n) => `${n.at.line} ${n.code}`);
  assert.deepEqual(changed, ['9 restart-always', '10 port-every-address']);
  // Named volumes: Compose's top-level declaration of one the service mounts, as `named_volumes`.
  const vols = fromCompose('c.yml', Buffer.from('services:\n  a:\n    image: x\n    volumes: [data:/d, {type: volume, source: cache, target: /c, volume: {nocopy: true}}, ./b:/b:nocopy]\nvolumes:\n  data: {name: proj_data, external: true}\n  cache:\n  other: {name: o}\n'), undefined, { composeDir: '/p', outDir: '/p' });
  assert.deepEqual(JSON.parse(JSON.stringify({ v: vols.config.volumes, n: vols.config.named_volumes })), { v: ['data:/d', 'cache:/c:nocopy', './b:/b:nocopy'], n: { data: { name: 'proj_data', external: true } } });
  // Several services and none named: each is listed; a wrong name too.
  const none = fromCompose('c.yml', Buffer.from(text), undefined, { composeDir: '/p', outDir: '/p' });
  assert.match(none.errors[0]!.message, /c\.yml has 2 services \(app, db\); name the one to import: sandbox import c\.yml SERVICE/);
  assert.equal(none.errors[0]!.line, 1);
  assert.match(fromCompose('c.yml', Buffer.from(text), 'web', { composeDir: '/p', outDir: '/p' }).errors[0]!.message, /has no service `web`; it has app, db/);
  const priv = fromCompose('c.yml', Buffer.from('services:\n  a:\n    image: x\n    privileged: true\n'), undefined, { composeDir: '/p', outDir: '/p' });
  assert.deepEqual(priv.notes.map((n) => [n.kind, n.at.line]), [['refused', 4]]);
});

test('a Compose file given to validate, plan or up is named as one, at its services key', () => {
  const r = loadText('name: x\nservices:\n  web:\n    image: nginx\n    environment: {A: 1}\n', { file: 'compose.yml' });
  assert.equal(r.spec, undefined);
  assert.equal(r.diagnostics.length, 1);
  assert.deepEqual({ line: r.diagnostics[0]!.line, col: r.diagnostics[0]!.col, code: r.diagnostics[0]!.code }, { line: 2, col: 1, code: 'compose-file' });
  assert.match(r.diagnostics[0]!.message, /this is a Compose file: try `sandbox import compose\.yml`/);
});

test('up -e/-v/-p: added, or replacing the file\'s, and cited at the command line', () => {
  const at = (col: number) => ({ file: COMMAND_LINE, line: 1, col });
  const file = 'version: 1\ncommand: [x]\nenv: {A: file, B: keep}\nports: ["127.0.0.1:8080:80"]\nvolumes: ["./a:/data", "./b:/b"]\n';
  const r = loadText(file, {
    overrides: {
      env: [{ value: 'A=cli', src: at(10) }, { value: 'HOME2', src: at(20) }],
      volumes: [{ value: './c:/data:ro', src: at(30) }],
      ports: [{ value: '127.0.0.1:9090:80', src: at(40) }, { value: '53:53/udp', src: at(50) }],
      cwd: '/work',
    },
    env: { HOME2: '/h2' },
  });
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), []);
  const s = r.spec!;
  assert.deepEqual(s.process.env.filter((e) => ['A', 'B', 'HOME2'].includes(e.name)).map((e) => [e.name, e.value, typeof e.src === 'object' ? e.src.file : e.src]), [['B', 'keep', 'sandbox.yml'], ['A', 'cli', COMMAND_LINE], ['HOME2', '/h2', COMMAND_LINE]]);
  assert.deepEqual(s.mounts.filter((m) => m.kind === 'bind').map((m) => [m.kind === 'bind' && m.source, m.target, m.readOnly, typeof m.src === 'object' && m.src.file]), [['/project/b', '/b', false, 'sandbox.yml'], ['/work/c', '/data', true, COMMAND_LINE]]);
  assert.deepEqual(s.network.ports.map((p) => [p.hostPort, p.containerPort, p.protocol, typeof p.src === 'object' && p.src.col]), [[9090, 80, 'tcp', 40], [53, 53, 'udp', 50]]);
  const plan = compile(s, HYBRID_HOST).plan;
  assert.ok(plan.steps.some((st) => typeof st.source === 'object' && st.source.file === COMMAND_LINE && st.source.col === 40), 'the port step cites the command line');
  // A bad one is located where it was typed.
  const bad = loadText('version: 1\ncommand: [x]\n', { overrides: { env: [], volumes: [{ value: 'nocolon', src: at(7) }], ports: [{ value: '99999:1', src: at(12) }], cwd: '/w' } });
  assert.deepEqual(bad.diagnostics.filter((d) => d.severity === 'error').map((d) => [d.file, d.col, d.code]), [[COMMAND_LINE, 7, 'invalid-volume'], [COMMAND_LINE, 12, 'invalid-port']]);
});

test('cap_add for a user other than root: the file says that sandbox gives it to the command, where docker run does not', () => {
  const r = docker(['-u', '1000:1000', '--cap-add', 'NET_BIND_SERVICE', 'img']);
  assert.deepEqual(r.notes.map((n) => [n.kind, n.code]), [['changed', 'cap-add-ambient']]);
  assert.match(toYaml(r, { schema: 's', header: [] }), /cap_add: \[NET_BIND_SERVICE\] # user 1000 holds these capabilities \(ambient\)/);
  assert.deepEqual(docker(['--cap-add', 'NET_BIND_SERVICE', 'img']).notes, []);
  const c = fromCompose('c.yml', Buffer.from('services:\n  a:\n    image: x\n    user: app\n    cap_add: [CHOWN]\n'), undefined, { composeDir: '/p', outDir: '/p' });
  assert.deepEqual(c.notes.map((n) => [n.code, n.at.line]), [['cap-add-ambient', 5]]);
});

test('round trip: a sandbox exported as a Compose service and imported back has the same plan', async () => {
  const { exportCompose } = await import('../../src/export/compose');
  const { locatorOf } = await import('../../src/audit/facts');
  const { parseConfig } = await import('../../src/config/parse');
  const { stringify } = await import('yaml');
  const text = `version: 1
name: app
image: registry.example:5000/team/app:1.2
command: [serve, --port, "8000"]
user: "0:0"
workdir: /srv
hostname: app
env: {MODE: prod}
init: true
restart: on-failure:3
stop_signal: SIGQUIT
stop_grace_period: 20s
shm_size: 32m
dns: [1.1.1.1]
extra_hosts: ["db:10.0.0.2"]
ports: ["127.0.0.1:8000:8000", "127.0.0.1:5353:53/udp"]
volumes:
  - /srv/app/data:/data:ro
  - {type: tmpfs, target: /tmp, size: 64m}
resources: {memory: 512m, memory_reservation: 256m, cpus: 1.5, cpu_shares: 512, cpuset: "0-1", pids: 100}
cap_add: [NET_ADMIN]
cap_drop: [SETFCAP]
security: {read_only: true}
ulimits: {nofile: "1024:4096"}
sysctls: {net.ipv4.ip_unprivileged_port_start: 0}
`;
  const file = '/p/app.yml';
  const orig = load(text, file);
  assert.deepEqual(orig.diagnostics.filter((d) => d.severity === 'error'), []);
  const where = locatorOf(file, parseConfig(file, Buffer.from(text)).value, parseConfig(file, Buffer.from(text)).locate);
  const exported = exportCompose(orig.spec!, { rootDirs: HYBRID_HOST.rootDirs }, (src, key) => (typeof src === 'object' ? src : { file, ...where.locate(key) }));
  const composeText = stringify(exported.doc);
  const imp = fromCompose('compose.yml', Buffer.from(composeText), undefined, { composeDir: '/p', outDir: '/p' });
  assert.deepEqual(imp.errors, []);
  assert.deepEqual(imp.notes.filter((n) => n.kind !== 'changed'), [], composeText);
  const back = load(toYaml(imp, { schema: 's', header: [] }), '/p/app2.yml');
  assert.deepEqual(back.diagnostics.filter((d) => d.severity === 'error'), []);
  const steps = (s: typeof orig) => compile(s.spec!, HYBRID_HOST).plan.steps.map(({ source: _s, title: _t, ...rest }) => rest);
  assert.deepEqual(steps(back), steps(orig));
});

/** A small deterministic generator, so that a failure is found again by its seed. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0) / 4294967296; };
}

test('no docker run line makes the importer throw, and what it writes is YAML of what it meant', () => {
  const words = ['-d', '-it', '-p', '--publish=', '-v', '--mount', 'type=volume', 'type=bind,src=./a,dst=/b', '--tmpfs', '-e', '--env', 'A=$B', '-m', '--cpus', '--rm', '--name', '--network',
    'bridge', 'container:x', '--security-opt', 'seccomp=', 'no-new-privileges:false', '--ulimit', 'nofile=1', 'x', '--sysctl', '--restart', 'unless-stopped', '--cap-add', '--cap-drop', 'ALL',
    '--privileged', '--pid', 'host', '--ipc', 'shareable', '-P', '--label', '--', ':', '::', '/', '', '-', '--rootfs', 'host', '8080:80', '[::1]:1:2', '$', "'", '"', 'img', '-u', '-w', '--cpu-quota', '5000'];
  for (let seed = 1; seed <= 1500; seed++) {
    const r = rng(seed);
    const line = Array.from({ length: Math.floor(r() * 12) }, () => words[Math.floor(r() * words.length)]!);
    let got;
    try { got = fromDockerRun(['docker', 'run', ...line], { cwd: '/w', outDir: '/w/o' }); } catch (e) { assert.fail(`seed ${seed}: ${JSON.stringify(line)} threw ${(e as Error).stack}`); }
    const text = toYaml(got, { schema: 's', header: [] });
    assert.deepEqual(parse(text), JSON.parse(JSON.stringify(got.config)), `seed ${seed}: ${JSON.stringify(line)}`);
    for (const n of got.notes) assert.ok(n.at.col >= 1 && n.at.col <= got.text.length + 1, `seed ${seed}: a note off the line`);
  }
});

test('no Compose service makes the importer throw: a key of the wrong shape is refused at its line', () => {
  const values = ['x', 5, null, true, [], {}, ['a:b'], [5], [null], [{}], { a: 1 }, { resources: 5 }, { resources: { limits: 'x' } }, [{ type: 'bind' }], [{ type: 'volume', target: '/t' }], [{ path: 3 }]];
  const keys = ['image', 'ports', 'volumes', 'tmpfs', 'security_opt', 'env_file', 'networks', 'blkio_config', 'deploy', 'environment', 'restart', 'ulimits', 'ipc', 'network_mode', 'privileged', 'healthcheck', 'x-a', 'command'];
  for (let seed = 1; seed <= 1500; seed++) {
    const r = rng(seed);
    const svc: Record<string, unknown> = {};
    for (let k = Math.floor(r() * 5); k > 0; k--) svc[keys[Math.floor(r() * keys.length)]!] = values[Math.floor(r() * values.length)];
    const text = JSON.stringify({ services: { a: svc }, volumes: r() < 0.5 ? { v: values[Math.floor(r() * values.length)] } : undefined });
    try {
      const c = fromCompose('c.yml', Buffer.from(text), undefined, { composeDir: '/p', outDir: '/p' });
      toYaml(c, { schema: 's', header: [] });
    } catch (e) { assert.fail(`seed ${seed}: ${text} threw ${(e as Error).stack}`); }
  }
  const bad = fromCompose('c.yml', Buffer.from('services:\n  a:\n    image: x\n    ports: 8080\n    volumes: [{type: bind, target: /t}]\n'), undefined, { composeDir: '/p', outDir: '/p' });
  assert.deepEqual(bad.notes.map((n) => [n.kind, n.code, n.at.line]), [['refused', 'compose-shape', 4], ['refused', 'mount-no-source', 5]]);
});

test('sandbox run\'s --plan takes --json or --format json|text; another format, or two, is refused at its word', () => {
  const run = (line: string[]) => fromDockerRun(['sandbox', 'run', '--plan', ...line, '--rootfs', 'host', 'true'], { cwd: CWD, outDir: CWD });
  assert.equal(run(['--json']).json, true);
  assert.equal(run(['--format', 'json']).json, true);
  assert.equal(run(['--format=json']).json, true);
  assert.equal(run(['--format', 'text']).json, false);
  assert.equal(run([]).json, undefined);
  for (const r of [run(['--json', '--format', 'json']), run(['--format', 'json']), run(['--format', 'text'])]) assert.deepEqual(r.notes.filter((n) => n.kind === 'refused'), []);
  const bad = run(['--format', 'yaml']).notes.filter((n) => n.kind === 'refused');
  assert.deepEqual(bad.map((n) => [n.code, n.at.col]), [['invalid-format', 'sandbox run --plan '.length + 1]]);
  for (const two of [['--json', '--format', 'text'], ['--format', 'text', '--json']]) {
    const n = run(two).notes.filter((x) => x.kind === 'refused');
    assert.deepEqual(n.map((x) => x.code), ['two-formats'], two.join(' '));
  }
});
