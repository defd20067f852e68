// One size grammar: the schema's pattern for every size key is SIZE_PATTERN, and parseSize reads
// exactly the strings the schema lets through, with the value the spec then holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadText, ROOT } from '../helpers/load';
import { parseSize, SIZE_PATTERN } from '../../src/model/size';

const MiB = 2 ** 20;

test('parseSize: binary units in any case, with or without B or iB; numbers are bytes', () => {
  const cases: [string | number, number | undefined][] = [
    ['512m', 512 * MiB], ['2g', 2 * 2 ** 30], ['1.5GiB', 1.5 * 2 ** 30], ['64MB', 64 * MiB], ['10k', 10240], ['10KiB', 10240],
    ['1t', 2 ** 40], ['100b', 100], ['100B', 100], ['4096', 4096], [' 8 m ', 8 * MiB], ['0.5k', 512], ['1.0001k', 1024],
    [4096, 4096], [0, 0], [-1, -1],
    // Not sizes: no number, unknown units, a unit of two letters, iB without a unit, signs, fractions of a byte as numbers.
    ['12q', undefined], ['m', undefined], ['', undefined], ['1mm', undefined], ['100ib', undefined], ['100iB', undefined],
    ['-1', undefined], ['+5m', undefined], ['1e3', undefined], ['.5m', undefined], ['5.m', undefined], ['1 k b', undefined],
    [1.5, undefined], [-2, undefined],
  ];
  for (const [input, want] of cases) assert.equal(parseSize(input), want, `parseSize(${JSON.stringify(input)})`);
});

test('every size key of the schema checks strings with SIZE_PATTERN', () => {
  const schema = JSON.parse(readFileSync(join(ROOT, 'schema/sandbox.schema.json'), 'utf8'));
  const found: string[] = [];
  const walk = (node: unknown, path: string) => {
    if (Array.isArray(node)) node.forEach((x, i) => walk(x, `${path}/${i}`));
    else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (k === 'pattern' && typeof v === 'string' && /\[kK/.test(v)) { assert.equal(v, SIZE_PATTERN, path); found.push(path); }
        walk(v, `${path}/${k}`);
      }
    }
  };
  walk(schema, '');
  // shm_size, tmpfs size, memory, memory_reservation, memory_swap, device read and write rates.
  assert.ok(found.length >= 7, `only ${found.length} size patterns were found: ${found.join(', ')}`);
});

test('the pipeline takes a size string exactly when parseSize does, with its value', () => {
  const words = ['1m', '1M', '1mb', '1MiB', '1.5g', '  2k', '3 k', '7b', '7B', '9', '100ib', '1kk', '1mbb', 'm', '1.k', 'x1', '1,5m', '1_000', '0x10', '1m ', '\t2g'];
  for (const w of words) {
    const r = loadText(`version: 1\ncommand: [x]\nvolumes: [{type: tmpfs, target: /t, size: ${JSON.stringify(w)}}]\n`);
    const want = parseSize(w);
    const errors = r.diagnostics.filter((d) => d.severity === 'error');
    if (want === undefined) assert.ok(errors.length > 0, `${JSON.stringify(w)} should be refused`);
    else {
      assert.deepEqual(errors, [], JSON.stringify(w));
      const m = r.spec!.mounts[0]!;
      assert.equal(m.kind === 'tmpfs' ? m.sizeBytes : undefined, want, JSON.stringify(w));
    }
  }
});
