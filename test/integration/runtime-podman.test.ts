// podman (Debian's 4.3, as root) driving sandbox-runtime through `--runtime`: its own storage and
// run folders under a temporary folder, the busybox image pulled from the repository's OCI layout,
// no network (`--network none`), and the explicit ulimits rootful podman needs here (root lacks
// CAP_SYS_RESOURCE). `podman run --rm` reads its isolation from inside, `run -t` its terminal; a detached container is
// joined by `podman exec` (its status, and -t's terminal) and removed by `podman rm -f`; nothing of
// either is left on the host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/load';
import { leftovers, needs } from '../helpers/sandbox';
import { ready, RUNTIME } from '../helpers/runtime';
import { sandboxName } from '../../src/runtime/main';

const IMAGE = join(ROOT, 'samples/images/busybox');
const has = (c: string) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;

test('podman --runtime sandbox-runtime: run --rm with the isolation from inside, run -t; exec into a running one; rm -f; nothing left', async (t) => {
  if (!ready(t) || !needs(t, 'podman (apt-get install podman)', has('podman')) || !needs(t, 'the busybox image (npm run build)', existsSync(join(IMAGE, 'index.json')))) return;
  const dir = mkdtempSync(join(tmpdir(), 'sbx-podman-'));
  const global = ['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--runtime', RUNTIME, '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
  const podman = (...args: string[]) => {
    const r = spawnSync('podman', [...global, ...args], { encoding: 'utf8', timeout: 120_000 });
    return { code: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
  };
  const opts = ['--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];
  let bg = '';
  try {
    const pull = podman('pull', '-q', `oci:${IMAGE}`);
    assert.equal(pull.code, 0, pull.err);
    const image = pull.out.trim();
    const fg = podman('run', '--rm', ...opts, '--hostname', 'pm-test', image, 'sh', '-c', 'echo "pid=$$"; hostname; grep -E "^(CapEff|NoNewPrivs):" /proc/self/status; grep "Max open files" /proc/self/limits; cat /proc/self/mountinfo');
    assert.equal(fg.code, 0, fg.err);
    // PID 1 of its own pid namespace, podman's hostname, podman's 11 default capabilities, the
    // ulimit asked for, its own /proc and its root from podman's overlay.
    assert.match(fg.out, /^pid=1$/m);
    assert.match(fg.out, /^pm-test$/m);
    assert.match(fg.out, /^CapEff:\s+00000000800405fb$/m);
    assert.match(fg.out, /^Max open files\s+1024\s+1024 /m);
    assert.match(fg.out, / \/proc \S+ - proc /);
    assert.match(fg.out, /^[0-9]+ [0-9]+ [0-9:]+ \S+ \/ \S+ .*- overlay /m);

    // -t: podman wants a terminal of its own (script(1) gives it one); the container's comes over
    // conmon's console socket.
    if (has('script')) {
      const r = spawnSync('script', ['-qec', ['podman', ...global, 'run', '--rm', '-t', ...opts, image, 'tty'].join(' '), '/dev/null'], { encoding: 'utf8', timeout: 120_000 });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /\/dev\/pts\/0\r*$/m);
    }
    const run = podman('run', '-d', ...opts, image, 'sleep', '600');
    assert.equal(run.code, 0, run.err);
    bg = run.out.trim();
    const e = podman('exec', bg, 'sh', '-c', 'echo "pid=$$"; cat /proc/1/cmdline; echo; grep CapEff /proc/self/status; exit 3');
    assert.equal(e.code, 3, e.err);
    assert.doesNotMatch(e.out, /^pid=1$/m);
    assert.match(e.out, /^sleep\x00600/m, 'the container\'s PID 1 is its sleep: the same pid namespace');
    assert.match(e.out, /^CapEff:\s+00000000800405fb$/m);
    const tty = podman('exec', '-t', bg, 'tty');
    assert.equal(tty.code, 0, tty.err);
    assert.match(tty.out, /^\/dev\/pts\/[0-9]+\r?$/m);
    assert.equal(podman('rm', '-f', '-t', '0', bg).code, 0);
    assert.deepEqual(leftovers(sandboxName(bg)), []);
    bg = '';
  } finally {
    if (bg) podman('rm', '-f', '-t', '0', bg);
    podman('rmi', '-a', '-f');
    spawnSync('umount', ['-R', join(dir, 'root')], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  }
});
