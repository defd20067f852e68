// The cache of compiled seccomp filters: one compile per program and library version; a damaged
// entry is compiled again; an unwritable folder only costs the compile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cachedFilter } from '../../src/host/seccomp-cache';

test('a compiled filter is cached under its program and salt, and a damaged entry is compiled again', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-sccache-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let compiles = 0;
  const compile = (p: string) => { compiles++; return Buffer.alloc(8 * p.length, 1); };
  assert.equal(cachedFilter('ab', 'v1', compile, dir).length, 16);
  assert.equal(cachedFilter('ab', 'v1', compile, dir).length, 16);
  assert.equal(compiles, 1);
  cachedFilter('ab', 'v2', compile, dir);
  cachedFilter('abc', 'v1', compile, dir);
  assert.equal(compiles, 3);
  const files = readdirSync(dir);
  assert.equal(files.length, 3);
  for (const f of files) writeFileSync(join(dir, f), Buffer.alloc(5));
  assert.equal(cachedFilter('ab', 'v1', compile, dir).length, 16);
  assert.equal(compiles, 4);
  // A cache folder that cannot be made (a file is in the way): the filter is still compiled.
  writeFileSync(join(dir, 'a-file'), '');
  assert.equal(cachedFilter('ab', 'v1', compile, join(dir, 'a-file', 'seccomp')).length, 16);
  assert.equal(cachedFilter('ab', 'v1', compile, '/proc/no-such-place/seccomp').length, 16);
  assert.equal(compiles, 6);
});
