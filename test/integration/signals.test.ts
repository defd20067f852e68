// Signals and stdin as a foreground sandbox meets them, with real signals, real terminals (tmux and
// script(1)) and real commands: a PID 1 that does not handle SIGTERM (python's http.server, sleep)
// never gets it, so it is killed at once under `timeout` and by Ctrl-C, rather than after a grace
// period that could only end in that kill, while one with a handler gets its grace and ends with
// its own status; `stop` does the same and says why; stdin reaches the command only with stdin_open or -i; a terminal
// with stdin open from a pipe is refused, as docker run -it refuses it. Each checks that nothing
// is left on the host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, hasEngine, hostSnapshot, isRoot, leftovers, needs, sandbox } from '../helpers/sandbox';
import { ROOT } from '../helpers/load';

const ready = (t: import('node:test').TestContext) => needs(t, 'root', isRoot) && needs(t, 'the native engine', hasEngine);
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const dir = mkdtempSync(join(tmpdir(), 'sbx-signals-'));
const file = (name: string, body: string, stem = name) => { const p = join(dir, `${stem}.yml`); writeFileSync(p, `version: 1\nname: ${name}\nrootfs: host\nnetwork: none\n${body}`); return p; };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const running = (name: string) => leftovers(name).some((l) => l.startsWith('process'));

/** `timeout 3 sandbox up FILE` as a CI job runs it: its elapsed time, status and stderr. */
function timeoutUp(f: string) {
  const t0 = Date.now();
  const r = spawnSync('timeout', ['3', process.execPath, BIN, 'up', '-q', f], { cwd: ROOT, encoding: 'utf8', input: '', timeout: 60_000 });
  return { ms: Date.now() - t0, code: r.status, err: r.stderr };
}

for (const [name, command, comm, does] of [
  ['sig-http', '[python3, -m, http.server, "18431"]', 'python3', 'does not handle'],
  ['sig-sleep', '[sleep, "1000"]', 'sleep', 'does not handle'],
  ['sig-ign', '[sh, -c, "trap \'\' TERM; while :; do sleep 0.1; done"]', 'sh', 'ignores'],
] as const) {
  test(`timeout 3 sandbox up of ${comm} as PID 1 that ${does} SIGTERM ends at 3 s, not after its 10 s grace: killed at once, said in one line, nothing left`, (t) => {
    if (!ready(t) || !needs(t, 'python3', has('python3'))) return;
    const before = hostSnapshot();
    const r = timeoutUp(file(name, `command: ${command}
`));
    t.diagnostic(`timeout 3 sandbox up of ${comm}: ${r.ms} ms`);
    // timeout(1) says 124 for a command it had to signal.
    assert.equal(r.code, 124, r.err);
    assert.ok(r.ms >= 3000 && r.ms < 4500, `ended after ${r.ms} ms; expected 3 s, well within the 10 s grace`);
    // One line: the signal is dropped (PID 1's SigCgt lacks SIGTERM), so it was killed at once, and how to stop it gracefully.
    assert.match(r.err, new RegExp(`^sandbox: the command \\(${comm}\\) is PID 1 and ${does} SIGTERM, so the kernel drops it and no wait can end it gracefully: killed it at once \\(SIGKILL\\) instead of waiting 10s \\(stop_grace_period\\); for a graceful stop, handle SIGTERM in the program, or set \`init: true\` \\(run --init\\): an init as PID 1 that passes signals on$`, 'm'));
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
    assert.deepEqual(leftovers(name), []);
    assert.equal(hostSnapshot(), before);
  });
}

test('a PID 1 that handles SIGTERM still gets its grace period: timeout ends it with its own status; one that outlives the grace is killed after it', (t) => {
  if (!ready(t)) return;
  // Handles TERM, then takes 1.5 s to end: within its grace of 3 s, so it ends as it chose (4).
  const slow = spawnSync('timeout', ['--preserve-status', '1', process.execPath, BIN, 'up', '-q', file('sig-slow', 'stop_grace_period: 3s\ncommand: [sh, -c, "trap \'sleep 1.5; exit 4\' TERM; while :; do sleep 0.05; done"]\n')], { cwd: ROOT, encoding: 'utf8', input: '' });
  assert.equal(slow.status, 4, slow.stderr);
  assert.equal(slow.stderr, '');
  // Handles TERM and goes on: killed when its grace of 1 s runs out, said in one line.
  const t0 = Date.now();
  const stubborn = spawnSync('timeout', ['--preserve-status', '1', process.execPath, BIN, 'up', '-q', file('sig-stubborn', 'stop_grace_period: 1s\ncommand: [sh, -c, "trap \'echo no\' TERM; while :; do sleep 0.05; done"]\n')], { cwd: ROOT, encoding: 'utf8', input: '' });
  const ms = Date.now() - t0;
  assert.equal(stubborn.status, 137, stubborn.stderr);
  assert.ok(ms >= 2000 && ms < 4000, `ended after ${ms} ms; expected 1 s + the 1 s grace`);
  assert.equal(stubborn.stderr, 'sandbox: the command did not end within 1s of SIGTERM (stop_grace_period): killed it (SIGKILL)\n');
  assert.deepEqual([...leftovers('sig-slow'), ...leftovers('sig-stubborn')], []);
});

test('with `--preserve-status` the status is the command\'s: 137 after the kill; a command that handles SIGTERM keeps its own', (t) => {
  if (!ready(t)) return;
  const killed = spawnSync('timeout', ['--preserve-status', '1', process.execPath, BIN, 'up', '-q', file('sig-kill', 'stop_grace_period: 1s\ncommand: [sleep, "1000"]\n')], { cwd: ROOT, encoding: 'utf8', input: '' });
  assert.equal(killed.status, 137, killed.stderr);
  // A shell that traps TERM and exits 3: the signal reaches it, nothing is said and nothing killed.
  const handled = spawnSync('timeout', ['--preserve-status', '1', process.execPath, BIN, 'up', '-q', file('sig-trap', 'command: [sh, -c, "trap \'exit 3\' TERM; while :; do sleep 0.05; done"]\n')], { cwd: ROOT, encoding: 'utf8', input: '' });
  assert.equal(handled.status, 3, handled.stderr);
  assert.equal(handled.stderr, '');
  assert.deepEqual([...leftovers('sig-kill'), ...leftovers('sig-trap')], []);
});

test('Ctrl-C in a real terminal (tmux): to a PID 1 that does not handle SIGINT it kills at once, said in one line; to one that does, the first is passed on and a second kills', async (t) => {
  if (!ready(t) || !needs(t, 'tmux', has('tmux'))) return;
  const socket = `sbx-signals-${process.pid}`;
  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
  const pane = () => tmux('capture-pane', '-p', '-J', '-t', 'sig');
  tmux('new-session', '-d', '-s', 'sig', '-x', '250', '-y', '50', 'sh');
  t.after(() => { try { tmux('kill-server'); } catch { /* gone */ } });
  const start = async (name: string, command: string) => {
    tmux('send-keys', '-t', 'sig', 'clear', 'Enter');
    tmux('send-keys', '-t', 'sig', `cd ${ROOT} && ${process.execPath} ${BIN} up -q ${file(name, `command: ${command}\n`)}; echo EXIT=$?`, 'Enter');
    for (let i = 0; i < 400 && !running(name); i++) await sleep(50);
    assert.ok(running(name), `${name} did not start`);
  };
  const ctrlC = async () => {
    const t0 = Date.now();
    tmux('send-keys', '-t', 'sig', 'C-c');
    for (let i = 0; i < 300 && !/EXIT=\d+/.test(pane()); i++) await sleep(10);
    return Date.now() - t0;
  };

  await start('sig-ctrlc', '[sleep, "1000"]');
  const ms = await ctrlC();
  t.diagnostic(`Ctrl-C to the shell prompt: ${ms} ms`);
  // The terminal echoes Ctrl-C as ^C before the CLI's line.
  assert.match(pane(), /^(\^C)?sandbox: the command \(sleep\) is PID 1 and does not handle SIGINT, so the kernel drops it and no wait can end it gracefully: killed it at once \(SIGKILL\) instead of waiting 10s \(stop_grace_period\); for a graceful stop, handle SIGINT in the program, or set `init: true`/m);
  assert.match(pane(), /^EXIT=137$/m);
  assert.ok(ms < 1500, `Ctrl-C took ${ms} ms`);
  assert.deepEqual(leftovers('sig-ctrlc'), []);

  // A shell that handles INT by saying so and going on: the first Ctrl-C reaches it, the second kills.
  await start('sig-ctrlc2', '[sh, -c, "trap \'echo got INT\' INT; while :; do sleep 0.05; done"]');
  tmux('send-keys', '-t', 'sig', 'C-c');
  for (let i = 0; i < 100 && !/^(\^C)?got INT$/m.test(pane()); i++) await sleep(50);
  assert.match(pane(), /^(\^C)?got INT$/m);
  assert.ok(running('sig-ctrlc2'), 'a command that handles SIGINT has its grace period');
  await sleep(200);
  const again = await ctrlC();
  assert.match(pane(), /^(\^C)?sandbox: SIGINT again: killed the command \(SIGKILL\)$/m);
  assert.match(pane(), /^EXIT=137$/m);
  assert.ok(again < 1500, `the second Ctrl-C took ${again} ms`);
  assert.deepEqual(leftovers('sig-ctrlc2'), []);
});

test('the terminal goes away (tmux kill-server: SIGHUP, then EIO on every write) under up -it, -t and a plain foreground run: the CLI still stops the sandbox and leaves nothing', async (t) => {
  if (!ready(t) || !needs(t, 'tmux', has('tmux'))) return;
  const before = hostSnapshot();
  for (const [name, body] of [['sig-hup-it', 'tty: true\nstdin_open: true\ncommand: [sleep, "1000"]\n'], ['sig-hup-t', 'tty: true\ncommand: [sleep, "1000"]\n'], ['sig-hup', 'command: [sh, -c, "while :; do echo x; sleep 0.1; done"]\n']] as const) {
    const socket = `sbx-hup-${process.pid}`;
    const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
    tmux('new-session', '-d', '-s', 'hup', '-x', '200', '-y', '50', 'sh');
    try {
      tmux('send-keys', '-t', 'hup', `cd ${ROOT} && ${process.execPath} ${BIN} up ${file(name, body)}`, 'Enter');
      for (let i = 0; i < 400 && !running(name); i++) await sleep(50);
      assert.ok(running(name), `${name} did not start`);
      await sleep(300);
    } finally { tmux('kill-server'); }
    // The note the CLI writes on SIGHUP fails with EIO: it must not end the CLI before its cleanup.
    for (let i = 0; i < 100 && leftovers(name).length; i++) await sleep(50);
    assert.deepEqual(leftovers(name), [], name);
    assert.equal((JSON.parse(sandbox(['ps', '-a', '--json']).out) as { name: string }[]).find((r) => r.name === name), undefined, `${name} is still listed (dead)`);
  }
  assert.equal(hostSnapshot(), before);
});

test('stop: a PID 1 that lets SIGTERM drop is killed at once (not after its 10 s grace), said in one line; one that handles it ends with its own status; of an exited one it exits 0', (t) => {
  if (!ready(t)) return;
  const before = hostSnapshot();
  const name = 'sig-stop';
  t.after(() => { sandbox(['down', name]); sandbox(['down', 'sig-stop-ign']); sandbox(['down', 'sig-stop-trap']); });
  for (const [n, command, does] of [[name, '[sleep, "1000"]', 'does not handle'], ['sig-stop-ign', '[sh, -c, "trap \'\' TERM; while :; do sleep 0.1; done"]', 'ignores']] as const) {
    assert.equal(sandbox(['up', '-d', '-q', file(n, `command: ${command}\n`)]).code, 0);
    const t0 = Date.now();
    const stop = sandbox(['stop', n]);
    const ms = Date.now() - t0;
    t.diagnostic(`stop of ${n}: ${ms} ms`);
    assert.equal(stop.code, 0, stop.err);
    assert.equal(stop.out, `${n}\n`);
    assert.ok(ms < 2000, `stop took ${ms} ms`);
    assert.equal(stop.err, `sandbox: PID 1 of ${n} (${command.startsWith('[sleep') ? 'sleep' : 'sh'}) ${does} SIGTERM, so the kernel drops it and no wait can stop ${n} gracefully: killed it at once (SIGKILL) instead of waiting 10s (stop_grace_period); for a graceful stop, handle SIGTERM in the program, or set \`init: true\` (run --init): an init as PID 1 that passes signals on\n`);
    const row = (JSON.parse(sandbox(['ps', '-a', '--json']).out) as { name: string; status: string; exitCode: number }[]).find((r) => r.name === n);
    assert.deepEqual([row?.status, row?.exitCode], ['exited', 137]);
  }
  // A handler: the signal arrives, it ends as it chose (3), and nothing is said.
  const trap = 'sig-stop-trap';
  assert.equal(sandbox(['up', '-d', '-q', file(trap, 'command: [sh, -c, "trap \'exit 3\' TERM; while :; do sleep 0.1; done"]\n')]).code, 0);
  const graceful = sandbox(['stop', trap]);
  assert.deepEqual([graceful.code, graceful.out, graceful.err], [0, `${trap}\n`, '']);
  const row = (JSON.parse(sandbox(['ps', '-a', '--json']).out) as { name: string; status: string; exitCode: number }[]).find((r) => r.name === trap);
  assert.deepEqual([row?.status, row?.exitCode], ['exited', 3]);
  // Stopping what has stopped is done, as docker stop says: 0, the name, nothing else.
  const again = sandbox(['stop', name]);
  assert.deepEqual([again.code, again.out, again.err], [0, `${name}\n`, '']);
  assert.equal(sandbox(['stop', 'no-such-sandbox']).code, 1);
  for (const n of [name, 'sig-stop-ign', trap]) assert.equal(sandbox(['down', n]).code, 0);
  assert.deepEqual([...leftovers(name), ...leftovers('sig-stop-ign'), ...leftovers(trap)], []);
  assert.equal(hostSnapshot(), before);
});

test('stdin reaches the command only with stdin_open or -i (up and exec); otherwise it reads /dev/null', (t) => {
  if (!ready(t)) return;
  const before = hostSnapshot();
  // What it read, and what its fd 0 is: the null device (1,3), or the test's own stdin.
  const show = '[sh, -c, "echo [$(cat)] $(stat -L -c %F:%t,%T /proc/self/fd/0)"]';
  const closed = sandbox(['up', '-q', file('sig-in', `command: ${show}\n`)], { input: 'hi\n' });
  assert.deepEqual([closed.code, closed.out], [0, '[] character special file:1,3\n'], closed.err);
  const open = sandbox(['up', '-q', file('sig-in', `stdin_open: true\ncommand: ${show}\n`, 'sig-in-open')], { input: 'hi\n' });
  // Node gives a child's stdin as a socket pair.
  assert.deepEqual([open.code, open.out], [0, '[hi] socket:0,0\n'], open.err);
  const dashI = sandbox(['up', '-q', '-i', file('sig-in', `command: ${show}\n`)], { input: 'hi\n' });
  assert.deepEqual([dashI.code, dashI.out], [0, '[hi] socket:0,0\n'], dashI.err);

  const name = 'sig-exec';
  t.after(() => { sandbox(['down', name]); });
  assert.equal(sandbox(['up', '-d', '-q', file(name, 'stop_grace_period: 1s\ncommand: [sleep, "1000"]\n')]).code, 0);
  const exec = (args: string[]) => sandbox(['exec', ...args, name, 'sh', '-c', 'echo [$(cat)]'], { input: 'hi\n' });
  assert.equal(exec([]).out, '[]\n');
  assert.equal(exec(['-i']).out, '[hi]\n');
  const it = sandbox(['exec', '-it', name, 'true'], { input: 'hi\n' });
  assert.equal(it.code, 1);
  assert.match(it.err, /^sandbox: the input device is not a TTY, and exec -it relays it as one .*: drop -t to pipe input, or run from a terminal$/m);
  assert.equal(sandbox(['down', name]).code, 0);
  assert.deepEqual([...leftovers('sig-in'), ...leftovers(name)], []);
  assert.equal(hostSnapshot(), before);
});

test('tty: with stdin open from a pipe it is refused at its line (as docker run -it); without stdin_open it is a terminal that shows output; under a real terminal both work', (t) => {
  if (!ready(t) || !needs(t, 'script (util-linux)', has('script'))) return;
  const before = hostSnapshot();
  const it = file('sig-tty', 'tty: true\nstdin_open: true\ncommand: [sh, -c, "tty; read x; echo got $$x"]\n');
  const refused = sandbox(['up', '-q', it], { input: 'hi\n' });
  assert.equal(refused.code, 1, refused.err);
  assert.equal(refused.out, '');
  assert.match(refused.err, new RegExp(`^${it.replace(/[.]/g, '\\.')}:5:6: error: the input device is not a TTY, and \`tty: true\` with \`stdin_open: true\` relays it as one \\(raw, echoed back\\): drop \`tty: true\` \\(-T drops it for one run\\) to pipe input, or run from a terminal$`, 'm'));
  assert.match(refused.err, /^> 5 \| tty: true$/m);
  assert.deepEqual(leftovers('sig-tty'), []);
  // -i on the command line is named as the cause.
  assert.match(sandbox(['up', '-q', '-i', file('sig-tty', 'tty: true\ncommand: [cat]\n', 'sig-tty-i')], { input: 'hi\n' }).err, /`tty: true` with -i relays it as one .*: drop -i, or `tty: true` \(-T drops it for one run\), to pipe input/);

  // Said with up's other pre-flight problems, before any pull (the host's problem sets the status).
  const far = join(dir, 'sig-far.yml');
  writeFileSync(far, 'version: 1\nname: sig-far\nimage: oci:./no-such-layout:latest\ntty: true\nstdin_open: true\n');
  const both = spawnSync(process.execPath, [BIN, 'up', '-q', far], { cwd: ROOT, encoding: 'utf8', input: '' });
  assert.equal(both.status, 125, both.stderr);
  assert.match(both.stderr, /sig-far\.yml:3:8: error: the OCI image layout .* does not exist[\s\S]*sig-far\.yml:4:6: error: the input device is not a TTY[\s\S]*2 errors; nothing was run/);

  // -T: no terminal for this run, so the pipe goes in as it is.
  const noTty = sandbox(['up', '-q', '-T', it], { input: 'hi\n' });
  assert.deepEqual([noTty.code, noTty.out], [0, 'not a tty\ngot hi\n'], noTty.err);

  // -t alone: the command has a terminal for its output; stdin is that terminal, which nobody types into.
  const shown = sandbox(['up', '-q', file('sig-tty', 'tty: true\ncommand: [sh, -c, "tty; [ -t 0 ] && echo stdin is the terminal"]\n', 'sig-tty-t')], { input: 'hi\n' });
  assert.deepEqual([shown.code, shown.out], [0, '/dev/pts/0\nstdin is the terminal\n'], shown.err);

  // Under a real terminal (script gives the CLI one) -it relays what is typed.
  const typed = spawnSync('script', ['-qec', `${process.execPath} ${BIN} up -q ${it}`, '/dev/null'], { cwd: ROOT, encoding: 'utf8', input: 'hi\n', timeout: 30_000 });
  assert.equal(typed.status, 0, typed.stderr);
  assert.match(typed.stdout, /^\/dev\/pts\/0\r?$/m);
  assert.match(typed.stdout, /^got hi\r?$/m);
  assert.deepEqual(leftovers('sig-tty'), []);
  assert.equal(hostSnapshot(), before);
});
