// sandbox-runtime pause, resume and update on the container's cgroup, on either layout (v1's
// freezer hierarchy on this hybrid host, cgroup.freeze on v2: this file runs in the v2 VM too).
// A running container counts on its stdout; while paused the count stands still (and an exec is
// refused), after resume it goes on. update writes memory, cpu and pids limits, which are read
// back from the kernel's cgroup files, and the pids limit is felt from inside by a process that
// cannot fork past it. Nothing is left on the host after delete, not the freezer's folder either.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroupLayout, leftovers } from '../helpers/sandbox';
import { bundle, ready, rt, rtOut, sleep, state, until } from '../helpers/runtime';

/** The folder of the container's cgroup for a controller (v2: the one folder). */
const cgDir = (id: string, controller: string) => (cgroupLayout() === 'v2' ? `/sys/fs/cgroup/sandbox/${id}` : `/sys/fs/cgroup/${controller}/sandbox/${id}`);
const lines = (f: string) => readFileSync(f, 'utf8').trim().split('\n').length;

test('pause freezes every process of the container (state paused, exec refused), resume thaws it; update sets memory, cpu and pids, read back', async (t) => {
  if (!ready(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'sbx-rtg-'));
  const id = `rtg-${process.pid}`;
  const out = join(dir, 'count');
  try {
    const b = bundle(dir, 'i=0; while :; do i=$((i+1)); echo $i; sleep 0.02; done');
    assert.equal(rt(dir, ['create', '--bundle', b, id], out).code, 0, readFileSync(join(dir, 'rt.err'), 'utf8'));
    assert.equal(rt(dir, ['start', id]).code, 0);
    await until('the count', () => existsSync(out) && lines(out) > 3);

    assert.equal(rt(dir, ['pause', id]).code, 0, readFileSync(join(dir, 'rt.err'), 'utf8'));
    assert.equal(state(dir, id).json.status, 'paused');
    const at = lines(out);
    await sleep(300);
    assert.equal(lines(out), at, 'nothing of it runs while paused');
    const e = rt(dir, ['exec', id, 'true']);
    assert.equal(e.code, 1);
    assert.match(e.err, /cannot exec in a paused container/);
    assert.match(rt(dir, ['pause', id]).err, /container already paused/);
    assert.equal(rt(dir, ['resume', id]).code, 0, readFileSync(join(dir, 'rt.err'), 'utf8'));
    assert.equal(state(dir, id).json.status, 'running');
    await until('the count to go on', () => lines(out) > at + 3);
    assert.match(rt(dir, ['resume', id]).err, /container not paused/);

    // update: linux.resources on stdin, as containerd's shim gives it; flags, as podman's.
    const u = rt(dir, ['update', '--resources', '-', id], undefined, JSON.stringify({ memory: { limit: 64 << 20 }, cpu: { quota: 50000, period: 100000 }, pids: { limit: 40 } }));
    assert.equal(u.code, 0, u.err);
    const v2 = cgroupLayout() === 'v2';
    assert.equal(readFileSync(join(cgDir(id, 'memory'), v2 ? 'memory.max' : 'memory.limit_in_bytes'), 'utf8').trim(), String(64 << 20));
    assert.equal(readFileSync(join(cgDir(id, 'cpu'), v2 ? 'cpu.max' : 'cpu.cfs_quota_us'), 'utf8').trim(), v2 ? '50000 100000' : '50000');
    assert.equal(readFileSync(join(cgDir(id, 'pids'), 'pids.max'), 'utf8').trim(), '40');
    assert.equal(rt(dir, ['update', '--memory', '32m', '--pids-limit', '6', id]).code, 0);
    assert.equal(readFileSync(join(cgDir(id, 'memory'), v2 ? 'memory.max' : 'memory.limit_in_bytes'), 'utf8').trim(), String(32 << 20));
    // From inside: the counter, its sleep and this shell leave room for few more processes; the
    // shell's eight background sleeps cannot all be forked.
    const f = rtOut(dir, ['exec', id, 'sh', '-c', 'n=0; for i in 1 2 3 4 5 6 7 8; do sleep 5 & [ $? = 0 ] && n=$((n+1)); done; echo "forked=$n"']);
    const forked = Number(/forked=([0-9]+)/.exec(f.out)?.[1] ?? -1);
    assert.ok((forked >= 0 && forked < 8) || /can't fork: Resource temporarily unavailable/.test(f.err), `${f.out}${f.err}`);
    assert.match(rt(dir, ['update', '--resources', '-', id], undefined, '{"memory": ').err, /decode resources/);

    // A paused container is killed and removed by delete --force (thawed so that SIGKILL lands).
    assert.equal(rt(dir, ['pause', id]).code, 0);
    assert.match(rt(dir, ['delete', id]).err, /not stopped: paused/);
    assert.equal(rt(dir, ['delete', '--force', id]).code, 0, readFileSync(join(dir, 'rt.err'), 'utf8'));
    assert.deepEqual(leftovers(id), []);
  } finally {
    rt(dir, ['delete', '--force', id]);
    rmSync(dir, { recursive: true, force: true });
  }
});
