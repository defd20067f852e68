// sandbox export, run by the engines it targets (as root): the Pod of samples/web.yml under
// `podman kube play` serves its page; the OCI bundle of a locked-down config runs under runc and
// under crun with the same isolation, read from inside, as `sandbox up` of the same file gives.
// Everything added is removed by name: the pod, its containers and volumes, the images.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/load';
import { hasEngine, isRoot, leftovers, needs, sandbox } from '../helpers/sandbox';
import { parseProbe } from './inside';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const CRUN_HYBRID = join(ROOT, '..', 'shared', 'tools', 'crun-hybrid');

function freePort(): Promise<number> {
  return new Promise((res) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => res(p)); }); });
}

function fetchText(url: string): Promise<string> {
  return new Promise((res, rej) => get(url, (r) => { let b = ''; r.on('data', (c) => (b += c)); r.on('end', () => res(b)); }).on('error', rej));
}

// Rootful podman publishes a Pod's hostPorts with netavark, which adds iptables rules and a bridge
// to the network namespace it runs in and leaves the chains behind: it runs in a namespace of the
// test's own (EXP_NETNS), which goes with everything in it.
const podman = (args: string[], input?: string) => {
  const ns = process.env.EXP_NETNS;
  // nsenter joins the network namespace alone: `ip netns exec` would also remount /sys, hiding the cgroups.
  const [file, argv] = ns ? ['nsenter', [`--net=/run/netns/${ns}`, 'podman', ...args]] : ['podman', args];
  return spawnSync(file, argv, { encoding: 'utf8', input, timeout: 120_000, env: { ...process.env, CONTAINERS_CONF: process.env.EXP_CONTAINERS_CONF ?? '' } });
};
/** A page fetched from inside the network namespace ns, by a node client there; '' on failure. */
function fetchIn(ns: string, url: string): string {
  const js = `require('http').get(${JSON.stringify(url)}, { timeout: 2000 }, (r) => r.pipe(process.stdout)).on('error', () => process.exit(1))`;
  return spawnSync('nsenter', [`--net=/run/netns/${ns}`, process.execPath, '-e', js], { encoding: 'utf8', timeout: 5000 }).stdout ?? '';
}
const imageIds = () => new Set(execFileSync('podman', ['images', '-q', '--no-trunc'], { encoding: 'utf8' }).split('\n').filter(Boolean));

test('the Pod of samples/web.yml runs under podman kube play and serves its page', async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'podman and skopeo', has('podman') && has('skopeo') && has('runc'))) return;
  if (!needs(t, 'the busybox OCI layout (npm run build)', existsSync(join(ROOT, 'samples/images/busybox/index.json')))) return;
  const dir = mkdtempSync(join(tmpdir(), 'exp-kube-'));
  const name = `exp-web-${process.pid}`;
  const image = `localhost/exp-busybox:${process.pid}`;
  const port = await freePort();
  // samples/web.yml as it is, but for its name and host port (other runs share this machine).
  const text = readFileSync(join(ROOT, 'samples/web.yml'), 'utf8').replace('name: web', `name: ${name}`).replace('127.0.0.1:8080:8080', `127.0.0.1:${port}:8080`);
  writeFileSync(join(dir, 'web.yml'), text);
  cpSync(join(ROOT, 'samples/web'), join(dir, 'web'), { recursive: true });
  // Rootful podman 4.3 raises nofile and nproc to its own maximum, which root without
  // CAP_SYS_RESOURCE (this machine) may not do; equal soft and hard values, since it swaps them
  // for the infra container.
  writeFileSync(join(dir, 'containers.conf'), '[containers]\ndefault_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]\n');
  process.env.EXP_CONTAINERS_CONF = join(dir, 'containers.conf');
  const before = imageIds();
  const pod = join(dir, 'pod.yml');
  const ns = `exp${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  process.env.EXP_NETNS = ns;
  try {
    execFileSync('skopeo', ['copy', '-q', 'oci:samples/images/busybox:latest', `containers-storage:${image}`], { cwd: ROOT, stdio: 'pipe' });
    const plain = sandbox(['export', '--format', 'kube', join(dir, 'web.yml')]);
    assert.equal(plain.code, 2, 'rootfs: host needs --image');
    assert.match(plain.err, /web\.yml:12:9: error: `rootfs: host` has no equivalent in a Kubernetes Pod, which runs an image; pass --image IMAGE/);
    assert.equal(plain.out, '');
    const e = sandbox(['export', '--format', 'kube', '--image', image, '--lossy', join(dir, 'web.yml')]);
    assert.equal(e.code, 0, e.err);
    assert.match(e.err, /web\.yml:12:9: warning: `rootfs: host` has no exact equivalent/);
    writeFileSync(pod, e.out);
    // crun 1.8 refuses this hybrid host: podman runs the Pod with runc. The YAML comes on stdin.
    const play = podman(['--runtime', 'runc', 'kube', 'play', '--replace', '-'], e.out);
    assert.equal(play.status, 0, `${play.stdout}\n${play.stderr}`);
    let page = '';
    for (let i = 0; i < 50 && !page; i++) { page = fetchIn(ns, `http://127.0.0.1:${port}/`); if (!page) await new Promise((r) => setTimeout(r, 100)); }
    assert.equal(page, readFileSync(join(ROOT, 'samples/web/site/index.html'), 'utf8'));
    const inside = podman(['exec', `${name}-${name}`, 'sh', '-c', 'id -u; id -g; hostname; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status; touch /x 2>/dev/null && echo rw || echo ro; touch /srv/x 2>/dev/null && echo rw || echo ro; tr "\\0" " " < /proc/1/cmdline']);
    assert.equal(inside.status, 0, inside.stderr);
    assert.deepEqual(inside.stdout.trim().split('\n').map((l) => l.trim()), ['65534', '65534', 'web', 'CapEff:\t0000000000000000', 'NoNewPrivs:\t1', 'Seccomp:\t2', 'ro', 'ro', '/catatonit -P']);
  } finally {
    if (existsSync(pod)) podman(['kube', 'down', pod]);
    podman(['pod', 'rm', '-f', name]);
    podman(['rmi', image]);
    // The infra image podman builds the first time (localhost/podman-pause), if it was not there.
    for (const id of imageIds()) if (!before.has(id)) podman(['rmi', '-f', id]);
    for (const v of podman(['volume', 'ls', '-q']).stdout.split('\n')) if (v.startsWith(name)) podman(['volume', 'rm', '-f', v]);
    rmSync(dir, { recursive: true, force: true });
    delete process.env.EXP_NETNS;
    spawnSync('ip', ['netns', 'del', ns]);
  }
  assert.equal(podman(['pod', 'exists', name]).status, 1, 'the pod is gone');
  assert.equal(podman(['image', 'exists', image]).status, 1, 'the image is gone');
});

/** What the command sees: identity, capability sets, no_new_privs, seccomp, masked and read-only
 * paths, rlimits, cgroup limits, and which namespaces are not the host's. */
const LOOK = [
  'echo "== hostname"; hostname',
  'echo "== ids"; id -u; id -g; id -G',
  'echo "== status"; grep -E "^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):" /proc/self/status',
  'echo "== ns"; for n in user pid mnt uts ipc net cgroup; do echo "$n $(readlink /proc/self/ns/$n)"; done',
  'echo "== umask"; umask',
  'echo "== cwd"; pwd',
  'echo "== masked"; for f in /proc/kcore /proc/cpuinfo /proc/keys /proc/version; do echo "$f $(cat $f 2>/dev/null | wc -c)"; done',
  'echo "== writable"; for d in / /usr /etc /tmp /proc/sys /sys /dev/shm; do touch $d/.exp 2>/dev/null && { echo "$d rw"; rm -f $d/.exp; } || echo "$d ro"; done',
  'echo "== limits"; ulimit -n; ulimit -Hn',
  'echo "== net"; ls /sys/class/net | tr "\\n" " "; echo',
  'echo "== cgroup"; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>&1',
  'echo "== end"',
].join('\n');

test('the OCI bundle runs under runc and crun with the isolation sandbox up gives, read from inside', (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine) || !needs(t, 'runc and crun', has('runc') && has('crun') && existsSync(CRUN_HYBRID))) return;
  const dir = mkdtempSync(join(tmpdir(), 'exp-oci-'));
  const name = `exp-oci-${process.pid}`;
  const file = join(dir, 'probe.yml');
  // JSON is YAML: the script goes in as one string, its $ written $$ (the file's own variables are interpolated).
  writeFileSync(file, JSON.stringify({
    version: 1, name, rootfs: 'host', command: ['/bin/sh', '-c', LOOK.replace(/\$/g, '$$$$')], user: '1000:1000', hostname: 'exp-oci', network: 'none', workdir: '/tmp',
    cap_drop: ['ALL'], cap_add: ['NET_BIND_SERVICE'], security: { read_only: true, masked_paths: ['/proc/cpuinfo'] },
    volumes: [{ type: 'tmpfs', target: '/tmp', size: '8m' }], resources: { memory: '64m', pids: 32 }, ulimits: { nofile: '256:512' },
  }, null, 2));
  const bundle = join(dir, 'bundle');
  const ids = [`${name}-runc`, `${name}-crun`];
  try {
    const e = sandbox(['export', '--format', 'oci', '-o', bundle, file]);
    assert.equal(e.code, 0, e.err);
    assert.doesNotMatch(e.err, /error|warning/, 'nothing is lost for this file');
    const up = sandbox(['up', '-q', file]);
    assert.equal(up.code, 0, up.err);
    const runc = spawnSync('runc', ['run', '-b', bundle, ids[0]!], { encoding: 'utf8', input: '', timeout: 30_000 });
    assert.equal(runc.status, 0, runc.stderr);
    const crun = spawnSync(CRUN_HYBRID, ['crun', 'run', '-b', bundle, ids[1]!], { encoding: 'utf8', input: '', timeout: 30_000 });
    assert.equal(crun.status, 0, crun.stderr);
    const hostNs = Object.fromEntries(['user', 'pid', 'mnt', 'uts', 'ipc', 'net', 'cgroup'].map((n) => [n, readlinkSync(`/proc/self/ns/${n}`)]));
    const view = (out: string): Record<string, string[]> => {
      const s = parseProbe(out).sections;
      // Namespace inodes differ run to run: what counts is whether each is the host's.
      const ns = (s.ns ?? []).filter(Boolean).map((l) => { const [n, link] = l.split(' '); return `${n} ${link === hostNs[n!] ? 'host' : 'own'}`; });
      return { ...s, ns };
    };
    const want = view(up.out);
    // The facts themselves, so that a run that saw nothing cannot match another.
    assert.deepEqual(want.ids, ['1000', '1000', '1000']);
    assert.deepEqual(want.ns, ['user host', 'pid own', 'mnt own', 'uts own', 'ipc own', 'net own', 'cgroup own']);
    assert.ok(want.status!.includes('CapEff:\t0000000000000400') && want.status!.includes('NoNewPrivs:\t1') && want.status!.includes('Seccomp:\t2'), want.status!.join('\n'));
    assert.deepEqual(want.writable, ['/ ro', '/usr ro', '/etc ro', '/tmp rw', '/proc/sys ro', '/sys ro', '/dev/shm rw']);
    assert.deepEqual(want.masked!.slice(0, 3), ['/proc/kcore 0', '/proc/cpuinfo 0', '/proc/keys 0']);
    assert.notEqual(want.masked![3], '/proc/version 0', 'an unmasked file reads');
    assert.deepEqual(want.cgroup, ['67108864', '32']);
    for (const [engine, r] of [['runc', runc], ['crun', crun]] as const) assert.deepEqual(view(r.stdout), want, `${engine} sees what sandbox up gives\n${r.stdout}`);
  } finally {
    for (const id of ids) { spawnSync('runc', ['delete', '-f', id]); spawnSync(CRUN_HYBRID, ['crun', 'delete', '-f', ids[1]!]); }
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(leftovers(name), []);
  assert.equal(spawnSync('runc', ['state', ids[0]!]).status, 1, 'runc keeps no container');
});
