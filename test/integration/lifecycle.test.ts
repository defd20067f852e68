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
  let rows: Row[] = [];
  for (let i = 0; i < 300 && !(rows = ps(false)).some((r) => r.name === 'web'); i++) await new Promise((r) => setTimeout(r, 50));
  const web = rows.find((r) => r.name === 'web');
  assert.ok(web, 'web is not listed');
  assert.equal(web.status, 'running');
  assert.deepEqual(web.command, ['busybox', 'httpd', '-f', '-v', '-p', '8080', '-h', '/srv']);
  assert.deepEqual(web.ports.map((p) => [p.hostPort, p.containerPort]), [[8080, 8080]]);
  // The PID is a real host process, and PID 1 of the sandbox's own pid namespace.
  assert.match(readFileSync(`/proc/${web.pid}/status`, 'utf8'), /^NSpid:\s+\d+\s+1$/m);

  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
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
