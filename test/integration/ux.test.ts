// What a user sees of real sandboxes (issue 22): the progress view of `up` without a terminal (and
// under CI) is one line per stage, ended before the command's first byte; on a pseudo-terminal
// (script(1)) the stage list; a port in use drawn at its port step, not at the first step of the
// rootfs stage. `ps` shows the restart count and ends a cut command with ….
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, hasEngine, isRoot, leftovers, needs, sandbox } from '../helpers/sandbox';

const STAGE_LINE = /^\d\. [a-z]+  \d+ steps?  \d+\.\d ms$/;

test('up samples/limits.yml without a terminal: one line per stage, then the command\'s output', (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
  for (const env of [{ CI: 'true' }, { CI: '' }]) {
    const r = sandbox(['up', 'samples/limits.yml'], { env });
    assert.equal(r.code, 0, r.err);
    const lines = r.err.trimEnd().split('\n');
    assert.ok(lines.length <= 9, `${lines.length} lines of progress:\n${r.err}`);
    for (const l of lines) assert.match(l, STAGE_LINE);
    assert.match(r.err, /^1\. rootfs /);
    assert.match(r.err, /\n8\. security  \d+ steps/);
    assert.match(r.out, /NoNewPrivs:\s+1/);
  }
  // --verbose adds every step; -q prints nothing.
  const v = sandbox(['up', '--verbose', 'samples/limits.yml']);
  assert.equal(v.code, 0, v.err);
  assert.match(v.err, /^ {3}✔ cgroup:memory  limit memory to 256 MiB/m);
  assert.ok(v.err.split('\n').length > 80);
  const q = sandbox(['up', '-q', 'samples/limits.yml']);
  assert.equal(q.code, 0, q.err);
  assert.equal(q.err, '');
});

test('on a terminal: the stage list, ended before the command writes', (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
  if (!needs(t, 'script (util-linux)', spawnSync('sh', ['-c', 'command -v script']).status === 0)) return;
  const r = spawnSync('script', ['-qec', `${process.execPath} ${BIN} up samples/locked-down.yml`, '/dev/null'], { encoding: 'utf8', env: { ...process.env, CI: '', NO_COLOR: '1' } });
  assert.equal(r.status, 0, r.stdout);
  const out = r.stdout.replace(/\r/g, '');
  const view = out.slice(0, out.indexOf('uid=65534'));
  assert.ok(view.length > 0, out);
  const lines = view.replace(/\x1b\[\d+F\x1b\[J/g, '').trimEnd().split('\n');
  // The last drawing: each stage with its title, done.
  const final = lines.slice(-9);
  assert.match(final[0]!, /^✔ 1\. rootfs: prepare the root filesystem  \d+ steps?  \d+\.\d ms$/);
  assert.match(final.at(-2)!, /^✔ 8\. security: capabilities, no_new_privs, seccomp, rlimits  \d+ steps  /);
  assert.match(out, /NoNewPrivs:\s+1/);
  assert.doesNotMatch(out.slice(out.indexOf('uid=65534')), /✔|❯/, 'nothing of the view after the command began');
});

test('a port in use is blamed on its port step, never on the first step of the rootfs stage; nothing is left behind', async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  const port = (busy.address() as { port: number }).port;
  const dir = mkdtempSync(join(tmpdir(), 'sandbox-progress-'));
  try {
    const file = join(dir, 'busyport.yml');
    writeFileSync(file, `version: 1\nname: busyport\nrootfs: host\ncommand: [/bin/true]\nports: ["127.0.0.1:${port}:80"]\n`);
    const id = `port:127.0.0.1:${port}/tcp`.replace(/[.]/g, '\\.');
    const r = sandbox(['up', file]);
    assert.equal(r.code, 125, r.err);
    // Where the engine finds it (the host's pre-flight may find it before, as a located error):
    // drawn at the port step under 5. network, in full.
    if (/✖/.test(r.err)) {
      const lines = r.err.trimEnd().split('\n');
      assert.match(lines[0]!, new RegExp(`^5\\. network  failed at ${id} \\(0 of \\d+ steps done\\)$`), r.err);
      assert.match(lines[1]!, new RegExp(`^ {3}✖ ${id} \\(publish 127\\.0\\.0\\.1:${port}/tcp .*\\): host port ${port}/tcp on 127\\.0\\.0\\.1 is already in use`));
    }
    assert.doesNotMatch(r.err, /rootfs|create \/run\/sandbox/);
    assert.match(r.err, /busyport\.yml:5:9/);
    assert.match(r.err, new RegExp(`host port ${port}/tcp on 127\\.0\\.0\\.1 is already in use`));
    assert.deepEqual(leftovers('busyport'), []);
  } finally {
    busy.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a failure at the port step of a real run: the stages before it done, ✖ at the port step', (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
  const dir = mkdtempSync(join(tmpdir(), 'sandbox-progress-'));
  try {
    const file = join(dir, 'failport.yml');
    writeFileSync(file, 'version: 1\nname: failport\nrootfs: host\ncommand: [/bin/true]\nports: ["127.0.0.1:18766:80"]\n');
    const id = 'port:127.0.0.1:18766/tcp';
    const r = sandbox(['up', file], { env: { SANDBOX_TEST_FAIL_AT: id } });
    assert.equal(r.code, 125, r.err);
    const lines = r.err.trimEnd().split('\n');
    const at = lines.findIndex((l) => l.startsWith('5. network'));
    assert.ok(at > 0, r.err);
    // Before it: stages done, or (namespaces, whose last step the child takes) begun and cut short.
    for (const l of lines.slice(0, at)) assert.match(l, /^\d\. [a-z]+  (\d+ steps?|\d+ of \d+ steps)  \d+\.\d ms$/);
    assert.match(lines[0]!, STAGE_LINE);
    assert.match(lines[at]!, /^5\. network  failed at port:127\.0\.0\.1:18766\/tcp \(\d+ of \d+ steps done\)$/);
    assert.equal(lines[at + 1], `   ✖ ${id} (${/publish [^\n]*?\)\)/.exec(r.err)![0]}: operation not permitted (EPERM) (injected)`);
    assert.match(lines.at(-1)!, /^sandbox could not be set up: step port:127\.0\.0\.1:18766\/tcp .*failport\.yml:5:9\)$/);
    assert.deepEqual(leftovers('failport'), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ps: the restart count, and a command cut at 40 characters ends with …', (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
  const name = 'ux-ps';
  const long = `sleep 30; echo ${'a'.repeat(60)}`;
  const up = sandbox(['up', '-d', '-q', '--name', name, 'samples/locked-down.yml', '--', '/bin/sh', '-c', long]);
  try {
    assert.equal(up.code, 0, up.err);
    const ps = sandbox(['ps']);
    assert.equal(ps.code, 0, ps.err);
    const lines = ps.out.trimEnd().split('\n');
    assert.match(lines[0]!, /^NAME +STATUS +PID +UP +RESTARTS +COMMAND +PORTS$/);
    const row = lines.find((l) => l.startsWith(`${name} `));
    assert.ok(row, ps.out);
    const cmd = `/bin/sh -c ${long}`;
    assert.ok(row.includes(` 0 `), row);
    assert.ok(row.includes(`${cmd.slice(0, 39)}…`), row);
    assert.ok(!row.includes(cmd.slice(0, 41)), row);
    const j = (JSON.parse(sandbox(['ps', '--format', 'json']).out) as { name: string; restarts: number; command: string[] }[]).find((r) => r.name === name)!;
    assert.equal(j.restarts, 0);
    assert.deepEqual(j.command, ['/bin/sh', '-c', long]);
    assert.ok(sandbox(['ps', '-q']).out.split('\n').includes(name));
  } finally {
    sandbox(['down', name]);
  }
  assert.deepEqual(leftovers(name), []);
});
