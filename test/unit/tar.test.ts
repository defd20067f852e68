import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TarParser, TarError, type TarEntry } from '../../src/image/tar';
import { tar } from '../helpers/image';

/** Feeds bytes in pieces of `step` and collects each entry with its body. */
function parse(bytes: Buffer, step = bytes.length) {
  const out: (TarEntry & { body: string })[] = [];
  const p = new TarParser((e) => {
    const item = { ...e, body: '' };
    out.push(item);
    return { data: (c) => { item.body += c.toString(); }, end: () => undefined };
  });
  for (let i = 0; i < bytes.length; i += step) p.push(bytes.subarray(i, i + step));
  p.finish();
  return { out, done: p.done };
}

test('tar: entries, bodies, links and pax records come through whatever the chunk size', () => {
  const long = `${'d'.repeat(120)}/${'f'.repeat(120)}`;
  const bytes = tar([
    { name: 'dir/', type: '5', mode: 0o750, uid: 7, gid: 8 },
    { name: 'dir/file', body: 'hello' },
    { name: 'link', type: '2', linkname: 'dir/file' },
    { name: 'hard', type: '1', linkname: 'dir/file' },
    { name: 'short', body: 'x'.repeat(1000), pax: { path: long, 'SCHILY.xattr.user.k': 'v' } },
  ]);
  for (const step of [1, 7, 512, 100_000]) {
    const { out, done } = parse(bytes, step);
    assert.equal(done, true);
    assert.deepEqual(out.map((e) => [e.name, e.type, e.body.length, e.linkname]), [['dir/', '5', 0, ''], ['dir/file', '0', 5, ''], ['link', '2', 0, 'dir/file'], ['hard', '1', 0, 'dir/file'], [long, '0', 1000, '']]);
    assert.deepEqual([out[0]!.mode, out[0]!.uid, out[0]!.gid], [0o750, 7, 8]);
    assert.equal(out[1]!.body, 'hello');
    assert.equal(out[4]!.xattrs['user.k']!.toString(), 'v');
  }
});

test('tar: a corrupt header and a truncated archive are errors, not guesses', () => {
  const bytes = tar([{ name: 'a', body: 'abc' }]);
  const bad = Buffer.from(bytes);
  bad[10] ^= 1;
  assert.throws(() => parse(bad), (e: unknown) => e instanceof TarError && /bad checksum/.test((e as Error).message));
  assert.throws(() => parse(bytes.subarray(0, 600)), (e: unknown) => e instanceof TarError && /truncated/.test((e as Error).message));
});
