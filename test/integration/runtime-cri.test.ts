// A Kubernetes Pod through containerd's CRI plugin (Debian's containerd 1.6) with the runtime
// handler `sandbox`: the test starts its own containerd (root, state, socket and the runtime's
// --root under a temporary folder; restrict_oom_score_adj, as root here lacks CAP_SYS_RESOURCE),
// imports the busybox image and a pause image made from it, and drives the CRI socket as the
// kubelet does (test/helpers/cri.ts): RunPodSandbox with host network, CreateContainer and
// StartContainer, ExecSync, StopPodSandbox and RemovePodSandbox. The isolation is read from inside
// (the container's log and ExecSync); what ran it is read from the host (sandbox-runtime's record,
// the engine's state, the shim as the process's parent); nothing is left on the host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { criClient } from '../helpers/cri';
import { ROOT } from '../helpers/load';
import { cgroupLayout, hasEngine, isRoot, leftovers, needs } from '../helpers/sandbox';
import { sandboxName } from '../../src/runtime/main';

const RUNTIME = join(ROOT, 'bin/sandbox-runtime');
const IMAGE = join(ROOT, 'samples/images/busybox');
const has = (c: string) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The Pod's sandbox (pause) image, offline: the busybox image's layer with `sleep` as its command. */
function pauseImage(dest: string): void {
  const blob = (d: string) => join(IMAGE, 'blobs/sha256', d.slice(7));
  const index = JSON.parse(readFileSync(join(IMAGE, 'index.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
  const config = JSON.parse(readFileSync(blob(manifest.config.digest), 'utf8'));
  config.config.Cmd = ['sleep', '2147483647'];
  mkdirSync(join(dest, 'blobs/sha256'), { recursive: true });
  const put = (b: Buffer) => { const digest = `sha256:${createHash('sha256').update(b).digest('hex')}`; writeFileSync(join(dest, 'blobs/sha256', digest.slice(7)), b); return { digest, size: b.length }; };
  copyFileSync(blob(manifest.layers[0].digest), join(dest, 'blobs/sha256', manifest.layers[0].digest.slice(7)));
  const m = put(Buffer.from(JSON.stringify({ ...manifest, config: { ...manifest.config, ...put(Buffer.from(JSON.stringify(config))) } })));
  writeFileSync(join(dest, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dest, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: index.manifests[0].mediaType, ...m, annotations: { 'org.opencontainers.image.ref.name': '3.6' } }] }));
}

/** containerd's config: the CRI plugin with the `sandbox` handler (runc stays the default), no CNI. */
function config(dir: string): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return `version = 2\nroot = "${dir}/root"\nstate = "${dir}/state"\n[grpc]\n  address = "${dir}/c.sock"\n`
    + `[${cri}]\n  restrict_oom_score_adj = true\n  sandbox_image = "localhost/pause:3.6"\n`
    + `[${cri}.cni]\n  bin_dir = "/usr/lib/cni"\n  conf_dir = "${dir}/cni"\n`
    + `[${cri}.containerd.runtimes.runc]\n  runtime_type = "io.containerd.runc.v2"\n`
    + `[${cri}.containerd.runtimes.sandbox]\n  runtime_type = "io.containerd.runc.v2"\n`
    + `[${cri}.containerd.runtimes.sandbox.options]\n  BinaryName = "${RUNTIME}"\n  Root = "${dir}/runc"\n`;
}

/** The lines a container wrote, from its CRI log (`TIME stdout F LINE`). */
const logLines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8') : '').split('\n').map((l) => /^\S+ std(?:out|err) [FP] (.*)$/.exec(l)?.[1]).filter((l): l is string => l !== undefined).join('\n');
const alive = (pid: number) => { try { return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8')); } catch { return false; } };
const field = (pid: number, k: string) => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];

test('a CRI Pod with the sandbox runtime handler: isolation from inside, the shim as parent, nothing left', async (t) => {
  if (!(needs(t, 'root', isRoot) && needs(t, 'the native engine', hasEngine) && needs(t, 'containerd and ctr (apt-get install containerd)', has('containerd') && has('ctr')) && needs(t, 'the busybox image (npm run build)', existsSync(join(IMAGE, 'index.json'))))) return;
  const dir = mkdtempSync(join(tmpdir(), 'sbx-cri-'));
  mkdirSync(join(dir, 'cni'));
  writeFileSync(join(dir, 'config.toml'), config(dir));
  const daemon = spawn('containerd', ['--config', join(dir, 'config.toml')], { stdio: 'ignore' });
  const sock = join(dir, 'c.sock');
  const ctr = (...args: string[]) => spawnSync('ctr', ['-a', sock, '-n', 'k8s.io', ...args], { encoding: 'utf8', timeout: 60_000 });
  let cri: ReturnType<typeof criClient> | undefined;
  let pod = '';
  try {
    for (const end = Date.now() + 10_000; !existsSync(sock) && Date.now() < end; ) await sleep(50);
    // The CRI plugin's namespace is k8s.io; an image imported there is one it runs from.
    pauseImage(join(dir, 'pause'));
    for (const [src, name] of [[IMAGE, 'localhost/busybox'], [join(dir, 'pause'), 'localhost/pause']] as const) {
      spawnSync('tar', ['-cf', join(dir, 'img.tar'), '-C', src, '.']);
      const imp = ctr('images', 'import', '--base-name', name, join(dir, 'img.tar'));
      assert.equal(imp.status, 0, imp.stderr);
    }
    cri = criClient(sock);
    const { call } = cri;
    assert.equal((await call('Version', {})).runtime_api_version, 'v1');

    // The kubelet's Pod: host network (no CNI), its own IPC namespace, a pid namespace per
    // container (the Kubernetes default without shareProcessNamespace).
    const ns = { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' };
    const sandboxConfig = { metadata: { name: 'cri-test', uid: `uid-${process.pid}`, namespace: 'default', attempt: 0 }, log_directory: join(dir, 'logs'), linux: { security_context: { namespace_options: ns } } };
    const podId = (await call('RunPodSandbox', { config: sandboxConfig, runtime_handler: 'sandbox' })).pod_sandbox_id as string;
    pod = podId;
    const container = async (name: string, script: string, linux: Record<string, unknown>) => (await call('CreateContainer', {
      pod_sandbox_id: podId, sandbox_config: sandboxConfig,
      config: { metadata: { name }, image: { image: 'localhost/busybox:latest' }, command: ['sh', '-c', script], log_path: `${name}.log`, linux },
    })).container_id as string;
    const script = 'echo "pid=$$"; echo "host=$(hostname)"; grep -E "^(CapEff|NoNewPrivs):" /proc/self/status; echo "oom=$(cat /proc/self/oom_score_adj)"; for n in ipc net pid; do echo "$n=$(readlink /proc/self/ns/$n)"; done; cat /proc/self/mountinfo; echo end; exec sleep 600';
    // oom_score_adj 500 is above the shim's, so restrict_oom_score_adj keeps it: process.oomScoreAdj.
    const id = await container('app', script, { resources: { oom_score_adj: 500 }, security_context: { namespace_options: ns, no_new_privs: true } });
    await call('StartContainer', { container_id: id });
    const log = join(dir, 'logs', 'app.log');
    for (const end = Date.now() + 20_000; !/^end$/m.test(logLines(log)) && Date.now() < end; ) await sleep(100);
    const out = logLines(log);
    // From inside: PID 1 of its own pid namespace, the node's hostname and network (host
    // network), the Pod's IPC namespace (not the host's), CRI's 14 capabilities, no_new_privs as
    // asked, the OOM score asked, its root the snapshot's overlay.
    const self = (n: string) => readlinkSync(`/proc/self/ns/${n}`);
    assert.match(out, /^pid=1$/m);
    assert.match(out, new RegExp(`^host=${hostname()}$`, 'm'));
    assert.match(out, /^CapEff:\s+00000000a80425fb$/m);
    assert.match(out, /^NoNewPrivs:\s+1$/m);
    assert.match(out, /^oom=500$/m);
    assert.match(out, new RegExp(`^net=${self('net').replace(/[[\]]/g, '\\$&')}$`, 'm'));
    const ipc = /^ipc=(.*)$/m.exec(out)?.[1];
    assert.ok(ipc && ipc !== self('ipc'), out);
    assert.ok(!out.includes(`pid=${self('pid')}`), out);
    assert.match(out, /^[0-9]+ [0-9]+ [0-9:]+ \S+ \/ \S+ .*- overlay /m);
    assert.match(out, / \/proc \S+ .*- proc /m);

    // ExecSync joins it: not PID 1, the init (sleep) as PID 1, the same IPC namespace and capabilities.
    const ex = await call('ExecSync', { container_id: id, cmd: ['sh', '-c', 'echo "pid=$$"; cat /proc/1/cmdline; echo; echo "ipc=$(readlink /proc/self/ns/ipc)"; grep -E "^(CapEff|NoNewPrivs):" /proc/self/status; exit 3'], timeout: 60 });
    const exOut = Buffer.from(ex.stdout).toString();
    assert.equal(ex.exit_code, 3, Buffer.from(ex.stderr).toString());
    assert.doesNotMatch(exOut, /^pid=1$/m);
    assert.match(exOut, /^sleep\x00600/m);
    assert.match(exOut, new RegExp(`^ipc=${ipc!.replace(/[[\]]/g, '\\$&')}$`, 'm'));
    assert.match(exOut, /^CapEff:\s+00000000a80425fb$/m);
    assert.match(exOut, /^NoNewPrivs:\s+1$/m);

    // What ran it, from the host: sandbox-runtime's record under the handler's Root, the engine's
    // state naming the same process, whose parent is the shim itself (nothing in between).
    const status = await call('ContainerStatus', { container_id: id, verbose: true });
    assert.equal(status.status.state, 'CONTAINER_RUNNING');
    const pid = JSON.parse(status.info.info).pid as number;
    const record = (cid: string) => JSON.parse(readFileSync(join(dir, 'runc/k8s.io', cid, 'state.json'), 'utf8'));
    assert.equal(record(id).sandbox, sandboxName(id));
    assert.equal(JSON.parse(readFileSync(`/run/sandbox/${sandboxName(id)}/state.json`, 'utf8')).pid, pid);
    assert.equal(record(podId).sandbox, sandboxName(podId));
    assert.match(readFileSync(`/proc/${field(pid, 'PPid')}/cmdline`, 'utf8'), /^\/usr\/bin\/containerd-shim-runc-v2\x00/);

    // A container sharing the Pod's pid namespace (shareProcessNamespace): it joins the pause
    // container's pid namespace by path, so from inside it the pause's `sleep` is PID 1 and its
    // own shell is not; its pid namespace is the pause's, read from the host.
    const shared = await container('shared', 'sleep 600', { security_context: { namespace_options: { ...ns, pid: 'POD' } } });
    await call('StartContainer', { container_id: shared });
    const sh = await call('ExecSync', { container_id: shared, cmd: ['sh', '-c', 'echo "pid=$$"; cat /proc/1/cmdline; echo; echo "pidns=$(readlink /proc/self/ns/pid)"'], timeout: 60 });
    const shOut = Buffer.from(sh.stdout).toString();
    assert.equal(sh.exit_code, 0, Buffer.from(sh.stderr).toString());
    assert.doesNotMatch(shOut, /^pid=1$/m);
    assert.match(shOut, /^sleep\x002147483647/m);
    const pausePid = JSON.parse(readFileSync(`/run/sandbox/${sandboxName(podId)}/state.json`, 'utf8')).pid as number;
    assert.match(shOut, new RegExp(`^pidns=${readlinkSync(`/proc/${pausePid}/ns/pid`).replace(/[[\]]/g, '\\$&')}$`, 'm'));

    await call('StopPodSandbox', { pod_sandbox_id: podId });
    await call('RemovePodSandbox', { pod_sandbox_id: podId });
    pod = '';
    for (const end = Date.now() + 10_000; alive(pid) && Date.now() < end; ) await sleep(50);
    assert.ok(!alive(pid), 'the container\'s process is gone');
    for (const cid of [id, shared, podId]) assert.deepEqual(leftovers(sandboxName(cid)), []);
    assert.deepEqual(readdirSync(join(dir, 'runc/k8s.io')), []);
    const cgroupRoots = cgroupLayout() === 'v2' ? ['/sys/fs/cgroup'] : readdirSync('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c));
    assert.deepEqual(cgroupRoots.flatMap((r) => [id, shared, podId].map((cid) => join(r, 'k8s.io', cid))).filter((p) => existsSync(p)), []);
    assert.deepEqual(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir)), []);
  } finally {
    if (pod && cri) {
      await cri.call('StopPodSandbox', { pod_sandbox_id: pod }).catch(() => undefined);
      await cri.call('RemovePodSandbox', { pod_sandbox_id: pod }).catch(() => undefined);
    }
    cri?.close();
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
    spawnSync('umount', ['-R', join(dir, 'root')], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  }
});
