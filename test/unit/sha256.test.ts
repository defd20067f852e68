// The in-process SHA-256 (src/util/sha256.ts, a WebAssembly module of this project's own text)
// against node:crypto's, and its committed bytes against its text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256Hex } from '../../src/util/sha256';
import { ROOT } from '../helpers/load';
import { needs } from '../helpers/sandbox';

const ref = (d: string | Buffer) => createHash('sha256').update(d).digest('hex');

test('sha256Hex is FIPS 180-4 SHA-256: the standard vectors, every length around the padding boundaries, large inputs, and strings as UTF-8', () => {
  assert.equal(sha256Hex(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(sha256Hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'), '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  for (let n = 0; n <= 300; n++) { const b = randomBytes(n); assert.equal(sha256Hex(b), ref(b), `${n} bytes`); }
  // Larger than the module's first page of memory: it grows.
  for (const n of [65_536 - 1024 - 9, 65_536, 1_000_003]) { const b = randomBytes(n); assert.equal(sha256Hex(b), ref(b), `${n} bytes`); }
  const s = 'plan ✓ ünïcode 𝔸 '.repeat(1000);
  assert.equal(sha256Hex(s), ref(s));
  assert.equal(sha256Hex(Buffer.from('abc')), sha256Hex('abc'), 'a Buffer and its string alike');
});

test('the committed module is what src/util/sha256.wat assembles to (scripts/gen-sha256-wasm.mjs)', (t) => {
  const have = spawnSync('sh', ['-c', 'command -v wat2wasm'], { stdio: 'ignore' }).status === 0;
  if (!needs(t, 'wat2wasm (apt-get install wabt)', have)) return;
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts/gen-sha256-wasm.mjs'), '--print'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, readFileSync(join(ROOT, 'src/util/sha256-wasm.ts'), 'utf8'), 'run node scripts/gen-sha256-wasm.mjs and commit src/util/sha256-wasm.ts');
});
