// The test command (`npm test`): build, then run every test file with Node's test runner.
//   npm test                     unit and e2e tests (and integration tests, where they exist)
//   npm test -- unit             only the files under test/unit (any folder name works)
//   npm test -- integration --skip export,image
//                                those files, less the ones named (the v2 VM's pass in .ci/run)
// In CI (CI=true) SANDBOX_MUST_WORK=1 is set, so that a test skipped for a missing host
// feature fails instead.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const skipAt = args.indexOf('--skip');
const skip = skipAt >= 0 ? (args[skipAt + 1] ?? '').split(',').filter(Boolean) : [];
const only = skipAt >= 0 ? args.filter((_, i) => i !== skipAt && i !== skipAt + 1) : args;
if (process.env.CI === 'true' && !process.env.SANDBOX_MUST_WORK) process.env.SANDBOX_MUST_WORK = '1';
if (!process.env.SANDBOX_SKIP_BUILD) execFileSync(process.execPath, [join(root, 'scripts/build.mjs')], { stdio: 'inherit' });

const files = [];
const walk = (dir) => {
  let entries = [];
  try { entries = readdirSync(dir); } catch { return; }
  for (const e of entries.sort()) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p);
    else if (e.endsWith('.test.js') && !skip.includes(e.slice(0, -'.test.js'.length))) files.push(p);
  }
};
for (const group of only.length ? only : ['unit', 'e2e', 'integration']) walk(join(root, 'build/test', group));
if (!files.length) { console.error('no test files found'); process.exit(1); }
// Integration tests create real namespaces and cgroups: one file at a time.
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
