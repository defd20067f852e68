// Two sandboxes starting and ending at once share the parent cgroup sandbox/: one's remove()
// takes the parent away when its own leaf was the last child, possibly between the other's mkdir
// of that parent and of its leaf. Two processes (as two `sandbox up`s are) create and remove
// sibling cgroups through Cgroup in a tight loop, as root on this host's real hierarchies; every
// create must succeed, and nothing may be left. Runs on both layouts (the v2 VM runs it too).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot, needs } from '../helpers/sandbox';

const build = join(__dirname, '../..');
const LOOP = `const {probeHost}=require(${JSON.stringify(join(build, 'src/engine/probe.js'))});
const {Cgroup}=require(${JSON.stringify(join(build, 'src/host/cgroup.js'))});
const h=probeHost();const cg=new Cgroup(h.cgroup,'sandbox/race-'+process.argv[1]);
(async()=>{let fails=0;for(let i=0;i<Number(process.argv[2]);i++){try{cg.create();}catch(e){fails++;console.error(e.message);}await cg.remove();}
console.log(JSON.stringify({fails,dirs:cg.dirs()}));})();`;

function run(tag: string, n: number): Promise<{ fails: number; dirs: string[] }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['-e', LOOP, tag, String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.on('error', reject);
    c.on('close', (code) => code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`exit ${code}`)));
  });
}

test('two sandboxes creating and removing cgroups under one parent at once never fail', async (t) => {
  if (!needs(t, 'root', isRoot)) return;
  const n = Number(process.env.SANDBOX_RACE_CYCLES ?? 300);
  const [a, b] = await Promise.all([run('a', n), run('b', n)]);
  assert.equal(a.fails, 0, 'creates of race-a that failed');
  assert.equal(b.fails, 0, 'creates of race-b that failed');
  for (const d of [...a.dirs, ...b.dirs]) assert.ok(!existsSync(d), `${d} left behind`);
});
