// The init layer of a read-only image root (src/engine/init-layer.ts), over layers made here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeInitLayer, mountPoints } from '../../src/engine/init-layer';
import { fileSources } from '../../src/engine/preflight';
import type { Plan } from '../../src/plan/types';

const step = (kind: string, args: Record<string, unknown>) => ({ id: `x:${String(args.target)}`, kind, stage: 'mounts', title: '', source: 'default', args });

test('the init layer holds the mount points the image lacks, each folder on the way as the image has it, and nothing behind a link', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-init-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const bottom = join(dir, 'l0');
  const top = join(dir, 'l1');
  const src = join(dir, 'src');
  mkdirSync(join(bottom, 'etc'), { recursive: true });
  writeFileSync(join(bottom, 'etc/hosts'), '127.0.0.1 localhost\n');
  writeFileSync(join(bottom, 'etc/hostname'), 'image\n');
  mkdirSync(join(bottom, 'home/u'), { recursive: true });
  chmodSync(join(bottom, 'home/u'), 0o700);
  mkdirSync(join(bottom, 'run'));
  symlinkSync('/run', join(bottom, 'var'));
  mkdirSync(join(top, 'etc'), { recursive: true });
  mkdirSync(src);
  writeFileSync(join(dir, 'file-src'), '');
  // A whiteout in the top layer hides the bottom layer's /etc/hosts (a 0/0 character device, as
  // the unpack writes it; mknod of one needs no privilege since Linux 5.8 only as root here).
  let whiteout = false;
  try { execFileSync('mknod', [join(top, 'etc/hosts'), 'c', '0', '0'], { stdio: 'ignore' }); whiteout = true; } catch { /* not root: checked below without it */ }
  const plan = { steps: [
    step('mount.proc', { target: '/proc', flags: [] }),
    step('mount.dev', { target: '/dev', flags: [] }),
    step('mount.tmpfs.dev', { target: '/dev/shm', flags: [] }),
    step('mount.netfile', { source: '/x', target: '/etc/hosts' }),
    step('mount.netfile', { source: '/x', target: '/etc/resolv.conf' }),
    step('mount.volume', { name: 'v', source: src, target: '/home/u/data' }),
    step('mount.bind', { source: src, target: '/var/cache' }),
    step('mount.bind', { source: join(dir, 'file-src'), target: '/opt/app/conf.ini' }),
    step('mount.tmpfs', { target: '/etc/hostname' }),
  ] } as unknown as Plan;
  const files = fileSources(plan);
  assert.deepEqual(mountPoints(plan, files).map((m) => `${m.target}${m.file ? ' file' : ''}`), ['/proc', '/dev', '/etc/hosts file', '/etc/resolv.conf file', '/home/u/data', '/var/cache', '/opt/app/conf.ini file', '/etc/hostname']);
  const init = join(dir, 'init');
  const made = makeInitLayer(plan, [bottom, top], init, files);
  assert.deepEqual(made, [...['/proc', '/dev'], ...(whiteout ? ['/etc/hosts'] : []), '/etc/resolv.conf', '/home/u/data', '/opt/app/conf.ini']);
  assert.ok(lstatSync(join(init, 'etc/resolv.conf')).isFile());
  assert.ok(lstatSync(join(init, 'opt/app/conf.ini')).isFile());
  assert.ok(lstatSync(join(init, 'home/u/data')).isDirectory());
  assert.equal(lstatSync(join(init, 'home/u')).mode & 0o7777, 0o700, 'a folder on the way keeps the image\'s mode');
  assert.equal(existsSync(join(init, 'var')), false, 'nothing is made behind /var, a link in the image');
  assert.equal(existsSync(join(init, 'etc/hostname')), false, 'what the image has is not made');
  assert.deepEqual(readdirSync(init).sort(), ['dev', 'etc', 'home', 'opt', 'proc']);
});
