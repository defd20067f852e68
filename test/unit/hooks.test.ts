// runHooks as sandbox-runtime calls it: a hook that exits without reading the state on its stdin is
// judged by its exit status, never by the broken pipe of the write (it raced with the hook's exit).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runHooks } from '../../src/runtime/hooks';

// A state larger than a pipe's buffer, so that the write always meets the hook's exit.
const state = JSON.stringify({ ociVersion: '1.2.0', id: 'x', status: 'created', pad: 'x'.repeat(1 << 20) });
const hook = (path: string) => ({ path, args: [path], env: [] });

test('a hook that ignores its stdin is judged by its exit status', () => {
  assert.equal(runHooks('prestart', [hook('/bin/true')], state), undefined);
  assert.equal(runHooks('prestart', [hook('/bin/true'), hook('/bin/false')], state), 'prestart hook 1 (/bin/false) exited with status 1');
});

test('a hook that cannot be started says why', () => {
  assert.match(runHooks('poststop', [hook('/nonexistent/hook')], state) ?? '', /^poststop hook 0 \(\/nonexistent\/hook\) cannot be run: ENOENT/);
});
