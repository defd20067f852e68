// sandbox-runtime driven as runtime-tools and containerd's shim drive runc: a bundle with the
// config.json `runc spec` writes (test/unit/fixtures/oci) over the busybox root, then create
// (which returns while the process waits for start, already in its namespaces), state, start, the isolation read from inside by the container's own
// output, kill, state stopped, delete, and nothing left on the host. Also run's exit status, runc's
// error texts and exit codes, the JSON log, and a refused field named at its line of config.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leftovers } from '../helpers/sandbox';
import { bundle, ready, rt, state, until } from '../helpers/runtime';

test('create returns with the process waiting in its namespaces; start runs it; kill, state stopped, delete leaves nothing', async (t) => {
  if (!ready(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'sbx-rt-'));
  const id = `rt-${process.pid}`;
  try {
    const script = 'echo BEGIN; echo "pid=$$"; hostname; grep -E "^(NSpid|CapEff|NoNewPrivs):" /proc/self/status; cat /proc/self/mountinfo; echo END; exec sleep 600';
    const b = bundle(dir, script);
    const out = join(dir, 'ctr.out');
    const t0 = Date.now();
    const c = rt(dir, ['create', '--bundle', b, '--pid-file', join(dir, 'init.pid'), id], out);
    assert.equal(c.code, 0, c.err);
    const took = Date.now() - t0;
    const pidText = readFileSync(join(dir, 'init.pid'), 'utf8');
    assert.match(pidText, /^[0-9]+$/, 'the pid file holds digits only, no newline');
    const pid = Number(pidText);
    const s1 = state(dir, id);
    assert.equal(s1.json.status, 'created');
    assert.equal(s1.json.pid, pid);
    assert.equal(s1.json.id, id);
    assert.equal(s1.json.bundle, b);
    assert.equal(s1.json.ociVersion, '1.2.0');
    // Waiting before its exec: alive, already in its own pid namespace, and its command not run.
    assert.ok(existsSync(`/proc/${pid}`));
    assert.notEqual(readlinkSync(`/proc/${pid}/ns/pid`), readlinkSync('/proc/self/ns/pid'));
    assert.equal(readFileSync(out, 'utf8'), '', 'nothing ran before start');
    // No supervisor in between: its parent is not a process of sandbox-runtime (which has exited).
    const ppid = Number(/^PPid:\s*([0-9]+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    assert.ok(!readFileSync(`/proc/${ppid}/cmdline`, 'utf8').includes('sandbox-runtime'), `parent ${ppid}`);
    assert.equal(rt(dir, ['create', '--bundle', b, id]).code, 1);
    assert.match(readFileSync(join(dir, 'rt.err'), 'utf8'), /container with id exists: /);

    assert.equal(rt(dir, ['start', id]).code, 0);
    await until('the container\'s output', () => readFileSync(out, 'utf8').includes('END'));
    const seen = readFileSync(out, 'utf8');
    // Read from inside: its hostname, PID 1 of its own pid namespace, the spec's three capabilities
    // (KILL, NET_BIND_SERVICE, AUDIT_WRITE), no_new_privs, its own /proc and a read-only root.
    assert.match(seen, /^rt-test$/m);
    assert.match(seen, /^pid=1$/m);
    assert.match(seen, /^NSpid:\s+[0-9]+$/m, 'its /proc is its own pid namespace\'s');
    assert.match(seen, /^CapEff:\s+0000000020000420$/m);
    assert.match(seen, /^NoNewPrivs:\s+1$/m);
    assert.match(seen, /^[0-9]+ [0-9]+ [0-9:]+ \S+ \/ ro,/m);
    assert.match(seen, / \/proc \S+ - proc /);
    assert.equal(state(dir, id).json.status, 'running');
    assert.equal(rt(dir, ['start', id]).code, 1);

    assert.equal(rt(dir, ['kill', id, 'KILL']).code, 0);
    await until('state stopped', () => state(dir, id).json?.status === 'stopped');
    assert.equal(state(dir, id).json.pid, 0);
    const k = rt(dir, ['kill', id, '9']);
    assert.equal(k.code, 1);
    assert.match(k.err, /container not running/);
    assert.equal(rt(dir, ['delete', id]).code, 0);
    const gone = state(dir, id);
    assert.equal(gone.code, 1);
    assert.match(gone.err, new RegExp(`container ${id} does not exist`));
    assert.deepEqual(leftovers(id), []);
    assert.ok(!existsSync(join(dir, 'root', id)));
    // The errors said as JSON lines in --log, as containerd reads them.
    const log = readFileSync(join(dir, 'log.json'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(log.some((l) => l.level === 'error' && /container not running/.test(l.msg)));
    t.diagnostic(`create took ${took} ms`);
  } finally {
    rt(dir, ['delete', '--force', id]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('delete of a created container that never started kills it and leaves nothing; run gives the status', async (t) => {
  if (!ready(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'sbx-rt-'));
  const id = `rt2-${process.pid}`;
  try {
    const b = bundle(dir, 'exit 3');
    assert.equal(rt(dir, ['create', '--bundle', b, id]).code, 0);
    assert.equal(state(dir, id).json.status, 'created');
    assert.equal(rt(dir, ['delete', id]).code, 0);
    assert.deepEqual(leftovers(id), []);
    const r = rt(dir, ['run', '--bundle', b, id]);
    assert.equal(r.code, 3, r.err);
    assert.deepEqual(leftovers(id), []);
    assert.ok(!existsSync(join(dir, 'root', id)));
  } finally {
    rt(dir, ['delete', '--force', id]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a field the engine cannot honour is refused at its line of config.json, and nothing is made', (t) => {
  if (!ready(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'sbx-rt-'));
  const id = `rt3-${process.pid}`;
  try {
    const b = bundle(dir, 'true', (c) => { c.process.apparmorProfile = 'docker-default'; });
    const r = rt(dir, ['create', '--bundle', b, id]);
    assert.equal(r.code, 1);
    const line = readFileSync(join(b, 'config.json'), 'utf8').split('\n').findIndex((l) => l.includes('"apparmorProfile"')) + 1;
    assert.match(r.err, new RegExp(`config\\.json:${line}:[0-9]+: error: process\\.apparmorProfile: `));
    assert.ok(!existsSync(join(dir, 'root', id)));
    assert.deepEqual(leftovers(id), []);
    assert.equal(rt(dir, ['--systemd-cgroup', 'state', id]).code, 1);
    assert.match(readFileSync(join(dir, 'rt.err'), 'utf8'), /--systemd-cgroup is not supported/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
