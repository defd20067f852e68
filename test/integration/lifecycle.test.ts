// ps and gc: what runs is listed with its host PID, command and ports; what a crashed run left
// (its CLI killed with -9) is listed as dead and removed by gc, leaving the host as it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { BIN, hasEngine, isRoot, leftovers, needs, sandbox } from '../helpers/sandbox';
import { ROOT } from '../helpers/load';

const hasNft = (() => { try { execFileSync('nft', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; } })();

interface Row { name: string; status: string; pid: number; command: string[]; ports: { hostPort: number; containerPort: number }[] }
const ps = (all: boolean): Row[] => JSON.parse(sandbox(['ps', '--json', ...(all ? ['-a'] : [])]).out) as Row[];

test('ps lists a running sandbox with its host PID, command and ports; gc removes what a killed CLI left', async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine) || !needs(t, 'nftables', hasNft)) return;
  const links = () => execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }).split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0]).filter(Boolean).sort().join(' ');
  const before = `${links()}\n${execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8' })}`;
  const child = spawn(process.execPath, [BIN, 'up', '-q', 'samples/web.yml'], { cwd: ROOT, stdio: 'ignore' });
  const exited = new Promise((r) => child.on('exit', r));
  t.after(() => { child.kill('SIGKILL'); });
  let rows: Row[] = [];
  for (let i = 0; i < 300 && !(rows = ps(false)).some((r) => r.name === 'web' && r.status === 'running'); i++) await new Promise((r) => setTimeout(r, 50));
  const web = rows.find((r) => r.name === 'web');
  assert.ok(web, 'web is not listed');
  assert.equal(web.status, 'running');
  assert.deepEqual(web.command, ['busybox', 'httpd', '-f', '-v', '-p', '8080', '-h', '/srv']);
  assert.deepEqual(web.ports.map((p) => [p.hostPort, p.containerPort]), [[8080, 8080]]);
  // The PID is a real host process, and PID 1 of the sandbox's own pid namespace.
  assert.match(readFileSync(`/proc/${web.pid}/status`, 'utf8'), /^NSpid:\s+\d+\s+1$/m);

  child.kill('SIGKILL');
  await exited;
  for (let i = 0; i < 100 && ps(false).some((r) => r.name === 'web'); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(ps(false).some((r) => r.name === 'web'), false, 'the sandbox outlived its CLI');
  assert.equal(ps(true).find((r) => r.name === 'web')?.status, 'dead');
  assert.notDeepEqual(leftovers('web'), []);

  const gc = sandbox(['gc']);
  assert.equal(gc.code, 0, gc.err);
  assert.match(gc.out, /removed web: nftables table sbx_web/);
  assert.match(gc.out, /removed web: state folder \/run\/sandbox\/web/);
  assert.deepEqual(leftovers('web'), []);
  assert.equal(sandbox(['gc']).out, 'nothing to remove\n');
  assert.equal(`${links()}\n${execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8' })}`, before);
});

test('up -d: the sandbox outlives its CLI under a small supervisor; ps, logs, stop and down', async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine) || !needs(t, 'nftables', hasNft)) return;
  const links = () => execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }).split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0]).filter(Boolean).sort().join(' ');
  const before = `${links()}\n${execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8' })}`;
  // Whatever happens below, the detached sandbox does not outlive the test.
  t.after(() => { sandbox(['down', 'web']); });
  const up = sandbox(['up', '-d', '-q', 'samples/web.yml']);
  assert.equal(up.code, 0, up.err);
  assert.equal(up.out, 'web\n');
  const row = ps(false).find((r) => r.name === 'web');
  assert.equal(row?.status, 'running');
  // The supervisor, not the (gone) CLI, is the sandbox's parent; it stays small.
  const ppid = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${row!.pid}/status`, 'utf8'))![1]);
  assert.match(readFileSync(`/proc/${ppid}/cmdline`, 'utf8'), /sbx-supervise/);
  const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${ppid}/status`, 'utf8'))![1]);
  assert.ok(rssKb < 3 * 1024, `supervisor resident memory ${rssKb} KiB`);
  // Its output goes to its log: httpd logs each request on stderr.
  const page = execFileSync('curl', ['-s', '-m', '3', 'http://127.0.0.1:8080/'], { encoding: 'utf8' });
  assert.match(page, /Served from inside a sandbox/);
  let logs = '';
  for (let i = 0; i < 50 && !/response:200/.test(logs); i++) { await new Promise((r) => setTimeout(r, 50)); logs = sandbox(['logs', '--timestamps', 'web']).err; }
  assert.match(logs, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z .*response:200$/m);
  const stop = sandbox(['stop', '-t', '5', 'web']);
  assert.equal(stop.code, 0, stop.err);
  const exited = ps(true).find((r) => r.name === 'web') as Row & { exitCode: number };
  assert.equal(exited.status, 'exited');
  assert.equal(exited.exitCode, 143);
  assert.equal(sandbox(['gc']).out, 'nothing to remove\n', 'gc must keep an exited sandbox for its logs');
  const down = sandbox(['down', 'samples/web.yml']);
  assert.equal(down.code, 0, down.err);
  assert.deepEqual(leftovers('web'), []);
  assert.deepEqual(ps(true).filter((r) => r.name === 'web'), []);
  assert.equal(`${links()}\n${execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8' })}`, before);
});

test('kill -9 of a supervisor: the sandboxed processes die with it, ps says so, down cleans up', async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine) || !needs(t, 'nftables', hasNft)) return;
  t.after(() => { sandbox(['down', 'web']); });
  assert.equal(sandbox(['up', '-d', '-q', 'samples/web.yml']).code, 0);
  const row = ps(false).find((r) => r.name === 'web')!;
  const ppid = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${row.pid}/status`, 'utf8'))![1]);
  process.kill(ppid, 'SIGKILL');
  for (let i = 0; i < 100 && ps(false).some((r) => r.name === 'web'); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(ps(true).find((r) => r.name === 'web')?.status, 'dead');
  assert.equal(sandbox(['down', 'web']).code, 0);
  assert.deepEqual(leftovers('web'), []);
});
