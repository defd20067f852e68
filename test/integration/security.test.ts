// Capabilities as the kernel and the OCI runtime spec mean them, read from inside: what root and
// a non-root user hold, with and without cap_add, through a set-uid-root binary and a binary with
// file capabilities (with and without no_new_privileges), for `up` and for `exec -u`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasBusyboxRoot, hasEngine, isRoot, leftovers, needs, sandbox } from '../helpers/sandbox';
import { ROOT } from '../helpers/load';
import { CAPABILITIES, DEFAULT_CAPABILITIES } from '../../src/model/tables';

const bit = (c: string) => 1n << BigInt(CAPABILITIES.indexOf(c as never));
const mask = (l: readonly string[]) => l.reduce((m, c) => m | bit(c), 0n);
const hex = (m: bigint) => m.toString(16).padStart(16, '0');
const DEFAULTS = mask(DEFAULT_CAPABILITIES);

const hasCc = (() => { try { execFileSync('cc', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; } })();
const ready = (t: import('node:test').TestContext) => needs(t, 'root', isRoot) && needs(t, 'the native engine', hasEngine)
  && needs(t, 'the busybox root (apt-get install busybox-static)', hasBusyboxRoot) && needs(t, 'a C compiler (apt-get install gcc libc6-dev)', hasCc);

/** A busybox root with the probe as /capprobe, a set-uid-root copy, a copy with the file
 * capability NET_BIND_SERVICE (effective), and a root-only /secret; on a tmpfs of its own,
 * because the temporary folder may be on a nosuid mount (the VM's /dev/shm), where neither
 * set-uid bits nor file capabilities take effect. */
function probeRoot(t: import('node:test').TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-caps-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', dir]);
  t.after(() => { execFileSync('umount', ['-l', dir]); rmSync(dir, { recursive: true, force: true }); });
  const root = join(dir, 'root');
  execFileSync('cp', ['-a', join(ROOT, 'samples/rootfs/busybox'), root]);
  execFileSync('cc', ['-static', '-O2', '-o', join(root, 'capprobe'), join(ROOT, 'test/integration/fixtures/probes/capprobe.c')]);
  copyFileSync(join(root, 'capprobe'), join(root, 'suidprobe'));
  chmodSync(join(root, 'suidprobe'), 0o4755);
  copyFileSync(join(root, 'capprobe'), join(root, 'fcapprobe'));
  // struct vfs_cap_data, revision 2: magic | effective, then permitted/inheritable (low, high words).
  const cap = Buffer.alloc(20);
  cap.writeUInt32LE(0x02000001, 0);
  cap.writeUInt32LE(Number(bit('NET_BIND_SERVICE')), 4);
  execFileSync('python3', ['-c', `import os,sys; os.setxattr(sys.argv[1], 'security.capability', bytes.fromhex(sys.argv[2]))`, join(root, 'fcapprobe'), cap.toString('hex')]);
  writeFileSync(join(root, 'secret'), 's3cret\n', { mode: 0o600 });
  return dir;
}

interface Probe { euid: number; sets: Record<string, string>; secret: string; bind80: string }
function parse(out: string): Probe[] {
  return out.split(/^(?=euid )/m).filter((b) => b.startsWith('euid ')).map((b) => {
    const sets: Record<string, string> = {};
    for (const m of b.matchAll(/^(Cap\w+|NoNewPrivs):\s+(\S+)$/gm)) sets[m[1]!] = m[2]!;
    return { euid: Number(/^euid (\d+)/m.exec(b)![1]), sets, secret: /^secret (.*)$/m.exec(b)![1]!, bind80: /^bind80 (.*)$/m.exec(b)![1]! };
  });
}

function run(dir: string, name: string, opts: { user?: string; capAdd?: string[]; nnp?: boolean; run: string[] }): Probe[] {
  const file = join(dir, `${name}.yml`);
  writeFileSync(file, [
    'version: 1', `name: ${name}`, 'rootfs: {type: dir, path: ./root}', 'network: none',
    ...(opts.user ? [`user: "${opts.user}"`] : []),
    ...(opts.capAdd ? [`cap_add: [${opts.capAdd.join(', ')}]`] : []),
    ...(opts.nnp === false ? ['security: {no_new_privileges: false}'] : []),
    `command: [/bin/sh, -c, "${opts.run.join('; ')}"]`, '',
  ].join('\n'));
  const r = sandbox(['up', '-q', file]);
  assert.equal(r.code, 0, `${name}: exit ${r.code}\n${r.err}\n${r.out}`);
  assert.deepEqual(leftovers(name), []);
  return parse(r.out);
}

const sets = (p: Probe) => ({ Inh: p.sets.CapInh, Prm: p.sets.CapPrm, Eff: p.sets.CapEff, Bnd: p.sets.CapBnd, Amb: p.sets.CapAmb });
const want = (o: { prm: bigint; bnd?: bigint; amb?: bigint; inh?: bigint }) => ({ Inh: hex(o.inh ?? 0n), Prm: hex(o.prm), Eff: hex(o.prm), Bnd: hex(o.bnd ?? DEFAULTS), Amb: hex(o.amb ?? 0n) });

test('root holds the default set as bounding, permitted and effective; inheritable and ambient are empty', (t) => {
  if (!ready(t)) return;
  const dir = probeRoot(t);
  const [p] = run(dir, 'caps-root', { run: ['/capprobe'] });
  assert.deepEqual(sets(p!), want({ prm: DEFAULTS }));
  assert.equal(p!.euid, 0);
  assert.equal(p!.secret, 'readable');
  assert.equal(p!.bind80, 'ok');
  // Podman's 11: no NET_RAW, MKNOD or AUDIT_WRITE.
  for (const c of ['NET_RAW', 'MKNOD', 'AUDIT_WRITE']) assert.equal(DEFAULTS & bit(c), 0n, c);
});

test('a non-root user holds no capability, cannot read a root-only file or bind port 80', (t) => {
  if (!ready(t)) return;
  const dir = probeRoot(t);
  const [p] = run(dir, 'caps-user', { user: '1000:1000', run: ['/capprobe'] });
  assert.deepEqual(sets(p!), want({ prm: 0n }));
  assert.equal(p!.euid, 1000);
  assert.equal(p!.secret, 'Permission denied');
  assert.equal(p!.bind80, 'Permission denied');
});

test('a non-root user with cap_add holds exactly that, in permitted, effective and ambient', (t) => {
  if (!ready(t)) return;
  const dir = probeRoot(t);
  const nbs = bit('NET_BIND_SERVICE');
  const [p] = run(dir, 'caps-add', { user: '1000:1000', capAdd: ['NET_BIND_SERVICE'], run: ['/capprobe'] });
  assert.deepEqual(sets(p!), want({ prm: nbs, amb: nbs, inh: nbs }));
  assert.equal(p!.bind80, 'ok');
  assert.equal(p!.secret, 'Permission denied');
  // A capability outside the default set joins the bounding set too.
  const [q] = run(dir, 'caps-add-raw', { user: '1000:1000', capAdd: ['NET_RAW'], run: ['/capprobe'] });
  assert.deepEqual(sets(q!), want({ prm: bit('NET_RAW'), amb: bit('NET_RAW'), inh: bit('NET_RAW'), bnd: DEFAULTS | bit('NET_RAW') }));
});

test('without no_new_privileges a set-uid-root binary gains the bounding set and a file capability is granted; with it neither', (t) => {
  if (!ready(t)) return;
  const dir = probeRoot(t);
  const nbs = bit('NET_BIND_SERVICE');
  const [suid, fcap] = run(dir, 'caps-suid', { user: '1000:1000', nnp: false, run: ['/suidprobe', '/fcapprobe'] });
  assert.equal(suid!.euid, 0);
  assert.deepEqual({ Prm: suid!.sets.CapPrm, Eff: suid!.sets.CapEff, Bnd: suid!.sets.CapBnd }, { Prm: hex(DEFAULTS), Eff: hex(DEFAULTS), Bnd: hex(DEFAULTS) });
  assert.equal(suid!.secret, 'readable');
  assert.equal(fcap!.euid, 1000);
  assert.deepEqual(sets(fcap!), want({ prm: nbs }));
  assert.equal(fcap!.bind80, 'ok');
  assert.equal(fcap!.secret, 'Permission denied');

  const [suid2, fcap2] = run(dir, 'caps-nnp', { user: '1000:1000', run: ['/suidprobe', '/fcapprobe'] });
  for (const p of [suid2!, fcap2!]) {
    assert.equal(p.euid, 1000);
    assert.deepEqual(sets(p), want({ prm: 0n }));
    assert.equal(p.sets.NoNewPrivs, '1');
    assert.equal(p.secret, 'Permission denied');
    assert.equal(p.bind80, 'Permission denied');
  }
});

test('exec -u follows the same rules: a non-root user entering a root sandbox holds nothing', (t) => {
  if (!ready(t)) return;
  t.after(() => { sandbox(['down', 'caps-exec']); });
  const dir = probeRoot(t);
  const file = join(dir, 'caps-exec.yml');
  writeFileSync(file, 'version: 1\nname: caps-exec\nrootfs: {type: dir, path: ./root}\nnetwork: none\ndetach: true\ninit: true\ncommand: [sleep, "3600"]\n');
  const up = sandbox(['up', '-q', file]);
  assert.equal(up.code, 0, up.err);
  const [asRoot] = parse(sandbox(['exec', 'caps-exec', '/capprobe']).out);
  assert.deepEqual(sets(asRoot!), want({ prm: DEFAULTS }));
  const [asUser] = parse(sandbox(['exec', '-u', '1000:1000', 'caps-exec', '/capprobe']).out);
  assert.equal(asUser!.euid, 1000);
  assert.deepEqual(sets(asUser!), want({ prm: 0n }));
  assert.equal(asUser!.secret, 'Permission denied');
  assert.equal(sandbox(['down', 'caps-exec']).code, 0);
  assert.deepEqual(leftovers('caps-exec'), []);
});

/** A config on the host's root filesystem, in a folder of its own, run with `up -q`. */
function hostRun(t: import('node:test').TestContext, name: string, lines: string[], files: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), `sbx-${name}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
  const file = join(dir, `${name}.yml`);
  writeFileSync(file, ['version: 1', `name: ${name}`, 'rootfs: host', 'network: none', ...lines, ''].join('\n'));
  return { ...sandbox(['up', '-q', file]), file };
}

test('the default seccomp filter is an allow list: each refused class fails from inside, unknown calls get EPERM, clone3 ENOSYS', (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
  const probe = join(ROOT, 'test/integration/fixtures/probes/syscalls.py');
  const r = hostRun(t, 'seccomp-classes', [`volumes: ["${probe}:/probe.py:ro"]`, 'command: [python3, /probe.py]']);
  assert.equal(r.code, 0, r.err);
  const got = Object.fromEntries(r.out.trim().split('\n').map((l) => { const i = l.indexOf(' '); return [l.slice(0, i), l.slice(i + 1)]; }));
  const EPERM = 'Operation not permitted';
  for (const k of ['mount', 'umount2', 'unshare', 'setns', 'pivot_root', 'bpf', 'keyctl', 'add_key', 'kexec_load', 'init_module', 'reboot', 'swapon',
    'open_by_handle_at', 'perf_event_open', 'userfaultfd', 'io_uring_setup', 'clone-newuser', 'clone-newns', 'personality-exec', 'socket-vsock', 'unknown-1000']) assert.equal(got[k], EPERM, `${k}: ${got[k]}`);
  assert.equal(got.clone3, 'Function not implemented');
  assert.equal(got.getpid, 'allowed');
  assert.equal(got['personality-query'], 'allowed');
  assert.equal(got.threads, '140');
  assert.deepEqual(leftovers('seccomp-classes'), []);
});

test('real programs run normally under the default filter: python3 threads, node workers, Debian\'s tools', (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
  const script = [
    'python3 -c "import threading, subprocess; t = threading.Thread(target=print, args=(\'py-thread\',)); t.start(); t.join(); print(subprocess.run([\'true\']).returncode)"',
    `node -e "const { Worker } = require('worker_threads'); new Worker('require(\\\\'worker_threads\\\\').parentPort.postMessage(6*7)', { eval: true }).on('message', (m) => { console.log('node-worker', m); process.exit(0); })"`,
    'ls / > /dev/null && echo ls', 'ps -e > /dev/null && echo ps', 'tar -cf - /etc/hostname 2>/dev/null | tar -tf - > /dev/null && echo tar',
    'echo x | gzip | gunzip > /dev/null && echo gzip', 'apt-get --version > /dev/null && echo apt-get', 'dpkg --version > /dev/null && echo dpkg',
    // ping as iputils does it without CAP_NET_RAW: an ICMP datagram socket (net.ipv4.ping_group_range).
    `python3 -c "import socket, struct; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP); s.settimeout(2); s.sendto(struct.pack('!BBHHH', 8, 0, 0, 0, 1), ('127.0.0.1', 0)); s.recv(64); print('ping')"`,
    'busybox ping -c 1 127.0.0.1 > /dev/null 2>&1 || echo no-raw-ping',
  ].join('\n');
  const r = hostRun(t, 'seccomp-programs', ['command: [/bin/sh, /script.sh]', 'volumes: ["./script.sh:/script.sh:ro"]'], { 'script.sh': script + '\n' });
  assert.equal(r.code, 0, r.err + r.out);
  const lines = r.out.trim().split('\n');
  for (const want of ['py-thread', '0', 'node-worker 42', 'ls', 'ps', 'tar', 'gzip', 'apt-get', 'dpkg', 'ping', 'no-raw-ping']) assert.ok(lines.includes(want), `${want} missing:\n${r.out}\n${r.err}`);
  assert.deepEqual(leftovers('seccomp-programs'), []);
});

test('security.seccomp: PATH loads a Docker profile beside the file; a bad profile is an error at its own line and column', (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
  const profile = JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] }, null, 2);
  const r = hostRun(t, 'seccomp-file', ['security: {seccomp: ./no-mkdir.json}', 'command: [sh, -c, "touch /tmp/f && echo touched; mkdir /tmp/d || echo refused"]'], { 'no-mkdir.json': profile });
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^touched\n/);
  assert.match(r.out, /refused\n$/);
  assert.match(r.err, /Permission denied/);
  const bad = '{\n  "defaultAction": "SCMP_ACT_ALLOW",\n  "syscalls": [\n    {"names": ["mkdir"], "action": "SCMP_ACT_NOPE"}\n  ]\n}\n';
  const b = hostRun(t, 'seccomp-bad', ['security: {seccomp: ./bad.json}', 'command: [/bin/true]'], { 'bad.json': bad });
  assert.equal(b.code, 2, b.err);
  assert.match(b.err, /bad\.json:4:36: error: `syscalls\[0\]\.action`: unknown action "SCMP_ACT_NOPE"/);
  assert.match(b.err, /named at .*seccomp-bad\.yml:5:21\)/);
  assert.match(b.err, /^1 error; nothing was run$/m);
  const missing = hostRun(t, 'seccomp-missing', ['security: {seccomp: ./nowhere.json}', 'command: [/bin/true]']);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /seccomp-missing\.yml:5:21: error: the seccomp profile .*nowhere\.json cannot be read/);
});
