// sandbox-runtime's two sides agree: the native front-end (bin/sandbox-runtime → native/build/
// sbx-runtime), which serves start, state, kill, delete and ps --format json from the files
// `create` wrote, and the Node side (bin/sandbox-runtime.js, src/runtime), which writes them and
// serves everything. A
// container is created by Node and then driven by the front-end; at each state (created, running,
// paused, stopped) both print the same state JSON byte for byte; both give the same error texts,
// exit codes and --log lines; what the front-end does not do (a poststop hook) it hands to Node,
// which runs it; delete leaves nothing on the host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leftovers } from '../helpers/sandbox';
import { bundle, ready, RUNTIME, RUNTIME_NODE, until } from '../helpers/runtime';

/** One call through either side, with the shim's globals; stdout and stderr read back. */
function call(side: 'native' | 'node', dir: string, args: string[]) {
  const cmd = side === 'native' ? [RUNTIME] : [process.execPath, RUNTIME_NODE];
  const log = join(dir, `log-${side}.json`);
  rmSync(log, { force: true });
  const r = spawnSync(cmd[0]!, [...cmd.slice(1), '--root', join(dir, 'root'), '--log', log, '--log-format', 'json', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  const logLines = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').map((l) => { const j = JSON.parse(l); return { level: j.level, msg: j.msg, time: typeof j.time }; }) : [];
  return { code: r.status, out: r.stdout, err: r.stderr, log: logLines };
}

/** The same call through both sides gives the same status, output, error and log (for calls that change nothing). */
function same(dir: string, args: string[], what: string) {
  const a = call('node', dir, args);
  const b = call('native', dir, args);
  assert.deepEqual(b, a, `${what}: native front-end and Node differ`);
  return b;
}

test('a container created by Node is started, stated, killed and deleted by the native front-end, with the same output as Node', async (t) => {
  if (!ready(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'sbx-rtn-'));
  const id = `rtn-${process.pid}`;
  try {
    // Annotations that JSON escapes (a quote, a backslash, a newline, non-ASCII) must come out as JSON.stringify writes them.
    const b = bundle(dir, 'trap "exit 3" TERM; sleep 600 & wait', (c) => { c.annotations = { 'org.example/a': 'x "q" \\ \n ünï', b: '' }; });
    const c = call('native', dir, ['create', '--bundle', b, id]);
    assert.equal(c.code, 0, c.err);
    assert.match(same(dir, ['state', id], 'state (created)').out, /"status": "created"/);
    same(dir, ['state', 'nope'], 'state of a container that does not exist');
    same(dir, ['kill', 'nope', 'TERM'], 'kill of a container that does not exist');
    same(dir, ['delete', 'nope'], 'delete of a container that does not exist');
    same(dir, ['delete', '--force', 'nope'], 'delete --force of a container that does not exist');
    same(dir, ['kill', id, 'NOSUCH'], 'kill with an unknown signal');

    assert.equal(call('native', dir, ['start', id]).code, 0);
    const running = same(dir, ['state', id], 'state (running)');
    assert.match(running.out, /"status": "running"/);
    assert.deepEqual(JSON.parse(running.out).annotations, { 'org.example/a': 'x "q" \\ \n ünï', b: '' });
    same(dir, ['start', id], 'start of a running container');
    assert.match(same(dir, ['ps', '--format', 'json', id], 'ps --format json (running)').out, /^\[[0-9]+(,[0-9]+)*\]\n$/);
    same(dir, ['delete', id], 'delete of a running container without --force');
    // The record start rewrote is still Node's to read.
    assert.equal(JSON.parse(readFileSync(join(dir, 'root', id, 'state.json'), 'utf8')).started, true);

    // Paused by Node (the freezer), seen paused by both; kill -9 of a paused one thaws it.
    assert.equal(call('node', dir, ['pause', id]).code, 0);
    assert.match(same(dir, ['state', id], 'state (paused)').out, /"status": "paused"/);
    assert.equal(call('node', dir, ['resume', id]).code, 0);

    // Signals by number and by name; the process's trap makes TERM its exit 3 (its sleep, a
    // process of its own that ps lists, dies with PID 1). The set of processes stays the same
    // until then, so that both sides' ps list the same pids.
    assert.equal(call('native', dir, ['kill', id, '28']).code, 0);
    assert.equal(call('native', dir, ['kill', id, 'SIGWINCH']).code, 0);
    assert.equal(call('native', dir, ['kill', '--all', id, 'TERM']).code, 0);
    await until('the container to stop', () => call('node', dir, ['state', id]).out.includes('"stopped"'));
    assert.match(same(dir, ['state', id], 'state (stopped)').out, /"pid": 0,\n  "status": "stopped"/);
    same(dir, ['kill', id, 'KILL'], 'kill of a stopped container');
    same(dir, ['kill', '--all', id, 'KILL'], 'kill --all of a stopped container');
    assert.equal(same(dir, ['ps', '--format', 'json', id], 'ps --format json (stopped)').out, '[]\n');
    same(dir, ['start', id], 'start of a stopped container');

    const d = call('native', dir, ['delete', id]);
    assert.equal(d.code, 0, d.err);
    assert.equal(existsSync(join(dir, 'root', id)), false, 'the record is gone');
    assert.deepEqual(leftovers(id), []);
  } finally {
    call('node', dir, ['delete', '--force', id]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('delete --force of a paused container by the front-end; a poststop hook is Node\'s, and runs', async (t) => {
  if (!ready(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'sbx-rtn-'));
  const id = `rtnh-${process.pid}`;
  const mark = join(dir, 'poststop.out');
  try {
    const b = bundle(dir, 'exec sleep 600', (c) => { c.hooks = { poststop: [{ path: '/bin/sh', args: ['sh', '-c', `cat > ${mark}`] }] }; });
    assert.equal(call('native', dir, ['create', '--bundle', b, id]).code, 0);
    assert.equal(call('native', dir, ['start', id]).code, 0);
    const d = call('native', dir, ['delete', '--force', id]);
    assert.equal(d.code, 0, d.err);
    // The hook got the state JSON of the deleted container on its stdin.
    assert.equal(JSON.parse(readFileSync(mark, 'utf8')).id, id);
    assert.deepEqual(leftovers(id), []);

    const p = `${id}-p`;
    assert.equal(call('native', dir, ['create', '--bundle', bundle(dir, 'exec sleep 600', undefined, 'plain'), p]).code, 0);
    assert.equal(call('native', dir, ['start', p]).code, 0);
    assert.equal(call('node', dir, ['pause', p]).code, 0);
    const pid = JSON.parse(call('native', dir, ['state', p]).out).pid as number;
    const d2 = call('native', dir, ['delete', '--force', p]);
    assert.equal(d2.code, 0, d2.err);
    assert.equal(existsSync(`/proc/${pid}/stat`) && !/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')), false, 'the paused process was killed');
    assert.deepEqual(leftovers(p), []);
  } finally {
    call('node', dir, ['delete', '--force', id]);
    call('node', dir, ['delete', '--force', `${id}-p`]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the installed command is the front-end, and what it does not serve reaches Node', (t) => {
  if (!ready(t)) return;
  assert.match(realpathSync(RUNTIME), /native\/build\/sbx-runtime$/);
  const v = spawnSync(RUNTIME, ['--version'], { encoding: 'utf8' });
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^sandbox-runtime version /);
});
