// The README's "Using sandbox from Node" runs as written: each ```js (CommonJS) and ```mjs (ES
// module) block of that section is saved inside this package (so that `require('sandbox')` and
// `import 'sandbox'` resolve through package.json's exports, as for a user) and run with node from
// the package's folder; what each prints is checked, and that its sandboxes left nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/load';
import { hasEngine, isRoot, leftovers, needs } from '../helpers/sandbox';

function examples(): { lang: 'js' | 'mjs'; code: string }[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Using sandbox from Node\n');
  assert.ok(start >= 0, 'the README has its section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end);
  return [...section.matchAll(/```(js|mjs)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1] as 'js' | 'mjs', code: m[2]! }));
}

/** What each example must print (in order of the blocks), and the sandboxes it starts. */
const EXPECT: { out: RegExp[]; names: string[] }[] = [
  { out: [/^config\.yml:5:3 unknown-key: `memroy` is not a known key in `resources` \(did you mean `memory`\?\)$/m, /^\d+ steps;/m, /^score \d/m, /^loosened: true /m], names: [] },
  { out: [/^pid \d+: \d+ steps verified$/m, /^hello Node from hello-api, pid 1$/m, /^exit status 0$/m, /^exec 2 config\.yml 6 127$/m], names: ['hello-api', 'broken-api'] },
  { out: [/worker-0 \d+/, /worker-4 \d+/, /\[ 0, 0, 0, 0, 0 \]/], names: ['worker-0', 'worker-1', 'worker-2', 'worker-3', 'worker-4'] },
];

test('the README\'s examples of the library run as written', (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine)) return;
  const blocks = examples();
  assert.equal(blocks.length, EXPECT.length, 'one expectation per example');
  const dir = join(ROOT, 'build', 'readme-api');
  mkdirSync(dir, { recursive: true });
  try {
    blocks.forEach((b, i) => {
      const file = join(dir, `example-${i}.${b.lang === 'js' ? 'cjs' : 'mjs'}`);
      writeFileSync(file, b.code);
      const r = spawnSync(process.execPath, [file], { cwd: ROOT, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NO_COLOR: '1' } });
      assert.equal(r.status, 0, `example ${i + 1} (${b.lang}) exited ${r.status}: ${r.stderr}`);
      for (const re of EXPECT[i]!.out) assert.match(r.stdout, re, `example ${i + 1}`);
      for (const name of EXPECT[i]!.names) assert.deepEqual(leftovers(name), [], `example ${i + 1}: ${name}`);
    });
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
