// One list of Debian packages (scripts/debian-packages.sh), called by the README's first command
// and by .ci/run, and one table of the host programs sandbox runs (HOST_PROGRAMS): each program's
// package is in the list's `run` part, and no second list exists to drift from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HOST_PROGRAMS } from '../../src/model/tables';
import { ROOT } from '../helpers/load';

const list = (...args: string[]) => execFileSync('sh', [join(ROOT, 'scripts/debian-packages.sh'), '--list', ...args], { encoding: 'utf8' }).split('\n').filter(Boolean);

test('every host program sandbox runs comes in a package of the list that the README installs', () => {
  const run = list();
  const all = list('--test');
  assert.ok(run.length >= 5 && all.length > run.length, `${run} / ${all}`);
  assert.deepEqual(run.filter((p) => !all.includes(p)), [], '--test adds to the run list');
  assert.deepEqual(Object.entries(HOST_PROGRAMS).filter(([, v]) => !run.includes(v.package)).map(([k, v]) => `${k}: ${v.package}`), []);
});

test('the README\'s first command and .ci/run both call the list, and neither names packages itself', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const first = /```sh\n(.*)\n```/.exec(readme)![1]!;
  assert.match(first, /^sh scripts\/debian-packages\.sh && npm install && /);
  assert.match(readme, /sh scripts\/debian-packages\.sh --test && npm test/);
  const ci = readFileSync(join(ROOT, '.ci/run'), 'utf8');
  assert.match(ci, /^scripts\/debian-packages\.sh --test$/m);
  assert.doesNotMatch(ci, /apt-get install/);
  assert.doesNotMatch(readme, /apt-get install -y/);
});
