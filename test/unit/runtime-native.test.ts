// The native front-end of sandbox-runtime (native/src/runtime.c) removes a sandbox's state folder
// as src/host/teardown.ts does, unlinking only the files the TS side names: the two lists must be
// the same list (test/integration/runtime-native.test.ts checks the rest against real containers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { STATE_FILES } from '../../src/host/state';
import { ROOT } from '../helpers/load';

test('the front-end unlinks the same state files as the TS teardown', () => {
  const c = readFileSync(join(ROOT, 'native/src/runtime.c'), 'utf8');
  const m = /static const char \*const STATE_FILES\[\] = \{([^}]*)\};/.exec(c);
  assert.ok(m, 'STATE_FILES in native/src/runtime.c');
  const names = [...m[1]!.matchAll(/"([^"]*)"/g)].map((x) => x[1]);
  assert.deepEqual(names, [...STATE_FILES]);
});
