// containerd (Debian's 1.6) driving sandbox-runtime through its runc shim: the test starts its own
// containerd with root, state and socket under a temporary folder (restrict_oom_score_adj, as
// root here lacks CAP_SYS_RESOURCE), imports the busybox image, and runs `ctr run --runc-binary`:
// in the foreground, the isolation read from inside by the container's own output; detached, then
// `ctr task kill` and `ctr task delete`; nothing of either left on the host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/load';
import { hasEngine, isRoot, leftovers, needs } from '../helpers/sandbox';

const RUNTIME = join(ROOT, 'bin/sandbox-runtime');
const IMAGE = join(ROOT, 'samples/images/busybox');
const has = (c: string) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('ctr run --runc-binary sandbox-runtime: foreground and detached, isolation from inside, nothing left', async (t) => {
  if (!(needs(t, 'root', isRoot) && needs(t, 'the native engine', hasEngine) && needs(t, 'containerd and ctr (apt-get install containerd)', has('containerd') && has('ctr')) && needs(t, 'the busybox image (npm run build)', existsSync(join(IMAGE, 'index.json'))))) return;
  const dir = mkdtempSync(join(tmpdir(), 'sbx-ctrd-'));
  const sock = join(dir, 'c.sock');
  writeFileSync(join(dir, 'config.toml'), `version = 2\nroot = "${dir}/root"\nstate = "${dir}/state"\n[grpc]\n  address = "${sock}"\n[plugins."io.containerd.grpc.v1.cri"]\n  restrict_oom_score_adj = true\n`);
  const daemon = spawn('containerd', ['--config', join(dir, 'config.toml')], { stdio: 'ignore' });
  const ctr = (...args: string[]) => {
    const r = spawnSync('ctr', ['-a', sock, ...args], { encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
  };
  try {
    for (const end = Date.now() + 10_000; !existsSync(sock) && Date.now() < end; ) await sleep(50);
    spawnSync('tar', ['-cf', join(dir, 'bb.tar'), '-C', IMAGE, '.']);
    const imp = ctr('images', 'import', '--base-name', 'localhost/busybox', join(dir, 'bb.tar'));
    assert.equal(imp.code, 0, imp.err);
    const id = `ctr-${process.pid}`;
    const fg = ctr('run', '--rm', '--runc-binary', RUNTIME, 'localhost/busybox:latest', id, 'sh', '-c', 'echo "pid=$$"; hostname; grep -E "^(CapEff|NoNewPrivs):" /proc/self/status; cat /proc/self/mountinfo');
    assert.equal(fg.code, 0, fg.err);
    // Read from inside: PID 1 of its own pid namespace, the hostname containerd gives (its id),
    // Docker's 14 capabilities (ctr's default spec), its own /proc and its root from the snapshot.
    assert.match(fg.out, /^pid=1$/m);
    assert.match(fg.out, new RegExp(`^${id}$`, 'm'));
    assert.match(fg.out, /^CapEff:\s+00000000a80425fb$/m);
    assert.match(fg.out, / \/proc \S+ - proc /);
    assert.match(fg.out, /^[0-9]+ [0-9]+ [0-9:]+ \S+ \/ \S+ .*- overlay /m);
    assert.deepEqual(leftovers(id), []);

    const bg = `${id}-d`;
    assert.equal(ctr('run', '-d', '--runc-binary', RUNTIME, 'localhost/busybox:latest', bg, 'sleep', '600').code, 0);
    const ls = ctr('task', 'ls').out;
    assert.match(ls, new RegExp(`${bg}\\s+[0-9]+\\s+RUNNING`));
    const init = Number(new RegExp(`${bg}\\s+([0-9]+)`).exec(ls)![1]);
    // exec: the shim's `exec --process F --detach --pid-file P`; the process joins the container.
    const ex = ctr('task', 'exec', '--exec-id', 'e1', bg, 'sh', '-c', 'echo "pid=$$"; cat /proc/1/cmdline; echo; grep -E "^(CapEff|NSpid):" /proc/self/status; exit 4');
    assert.equal(ex.code, 4, ex.err);
    assert.doesNotMatch(ex.out, /^pid=1$/m);
    assert.match(ex.out, /^sleep\x00600/m);
    assert.match(ex.out, /^CapEff:\s+00000000a80425fb$/m);
    assert.match(ex.out, /^NSpid:\s+[0-9]+$/m);
    const ps = ctr('task', 'ps', bg);
    assert.equal(ps.code, 0, ps.err);
    assert.match(ps.out, new RegExp(`^${init}\\s`, 'm'));
    assert.equal(ctr('task', 'pause', bg).code, 0);
    assert.match(ctr('task', 'ls').out, new RegExp(`${bg}\\s+[0-9]+\\s+PAUSED`));
    assert.equal(ctr('task', 'resume', bg).code, 0);
    assert.match(ctr('task', 'ls').out, new RegExp(`${bg}\\s+[0-9]+\\s+RUNNING`));
    assert.equal(ctr('task', 'kill', '-s', 'SIGKILL', bg).code, 0);
    for (const end = Date.now() + 10_000; !/STOPPED/.test(ctr('task', 'ls').out) && Date.now() < end; ) await sleep(50);
    assert.match(ctr('task', 'ls').out, new RegExp(`${bg}\\s+[0-9]+\\s+STOPPED`));
    assert.equal(ctr('task', 'delete', bg).code, 0);
    assert.equal(ctr('containers', 'rm', bg).code, 0);
    assert.deepEqual(leftovers(bg), []);
    // -t: ctr wants a terminal of its own; script(1) gives it one. The container's terminal comes
    // from sandbox-runtime over the shim's console socket.
    if (has('script')) {
      const tid = `${id}-t`;
      const r = spawnSync('script', ['-qec', `ctr -a ${sock} run --rm -t --runc-binary ${RUNTIME} localhost/busybox:latest ${tid} tty`, '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, r.stderr);
      // (ctr's terminal echoes a NUL before the output: `^@`.)
      assert.match(r.stdout, /\/dev\/pts\/0\r*$/m);
      assert.deepEqual(leftovers(tid), []);
    }
    assert.deepEqual(readdirSync(join(dir, 'state')).filter((d) => d.includes('runtime.v2')).flatMap((d) => readdirSync(join(dir, 'state', d)).flatMap((ns) => readdirSync(join(dir, 'state', d, ns)))), []);
  } finally {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
    spawnSync('umount', ['-R', join(dir, 'root')], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  }
});
