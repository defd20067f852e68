// What the CLI reads of a process's signal disposition from /proc, on real processes of this
// host: a handler, a signal left at its default, and a process that blocks a signal and waits
// for it in sigtimedwait (tini's way), whose /proc mask reads 0 while it waits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { disposition, droppedByPid1 } from '../../src/engine/signals';

/** A python3 that has set itself up as `code` says, then printed "ready". */
async function start(code: string) {
  const p = spawn('python3', ['-c', `import signal, sys\n${code}\nprint("ready", flush=True)\nsignal.sigtimedwait({signal.SIGTERM}, 30) if WAIT else __import__("time").sleep(30)`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => p.stdout.on('data', (d) => { if (String(d).includes('ready')) resolve(); }));
  // sigtimedwait is entered just after the line is printed.
  for (let i = 0; i < 100 && !readFileSync(`/proc/${p.pid}/wchan`, 'utf8').includes('sig'); i++) await new Promise((r) => setTimeout(r, 10));
  return p;
}

test('a signal waited for in sigtimedwait reaches PID 1, though /proc shows it neither caught nor blocked', async (t) => {
  if (!existsSync('/usr/bin/python3')) return t.skip('python3');
  const p = await start('WAIT = True\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})\nsignal.signal(signal.SIGUSR1, lambda *a: None)');
  try {
    const status = readFileSync(`/proc/${p.pid}/status`, 'utf8');
    assert.match(status, /^SigBlk:\s+0+$/m, 'the kernel lifts the waited set from SigBlk while it waits');
    assert.equal(disposition(p.pid!, 15), 'blocked');
    assert.equal(disposition(p.pid!, 10), 'caught');
    assert.equal(disposition(p.pid!, 1), 'default', 'SIGHUP is neither caught nor waited for');
    assert.equal(droppedByPid1(p.pid!, 15), undefined, 'a signal waited for reaches PID 1');
    assert.equal(droppedByPid1(p.pid!, 1), 'default', 'a signal at its default is dropped');
    assert.equal(droppedByPid1(p.pid!, 9), undefined, 'SIGKILL reaches it whatever it does');
  } finally { p.kill('SIGKILL'); }
});

test('a process asleep elsewhere with a signal at its default: default', async (t) => {
  if (!existsSync('/usr/bin/python3')) return t.skip('python3');
  const p = await start('WAIT = False\nsignal.signal(signal.SIGTERM, signal.SIG_DFL)');
  try { assert.equal(disposition(p.pid!, 15), 'default'); } finally { p.kill('SIGKILL'); }
});
