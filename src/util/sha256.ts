// SHA-256 in the process that asks for it (the CLI's, or a library caller's), through a small
// WebAssembly module (src/util/sha256.wat) rather than node:crypto: loading node:crypto, with the
// node:stream it requires, costs a cold `sandbox plan` about 4.5 ms, more than parsing and
// checking the config; compiling this module costs under 0.1 ms, and hashing a plan (about
// 16 KiB) about as much. Pure: no file, no syscall; the module imports nothing.
import { SHA256_WASM } from './sha256-wasm';

interface Sha256Module { memory: { buffer: ArrayBuffer; grow(pages: number): number }; blocks(n: number): void }

/** The part of WebAssembly this uses (Node's global; the project's TypeScript libs do not declare it). */
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
};

/** Where the module reads the padded message, and writes the digest (see sha256.wat). */
const MESSAGE = 1024, DIGEST = 512;

let mod: Sha256Module | undefined;

/** The hex SHA-256 of data (a string is hashed as its UTF-8 bytes, as node:crypto's update does). */
export function sha256Hex(data: string | Uint8Array): string {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  mod ??= new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(SHA256_WASM, 'base64'))).exports as Sha256Module;
  // FIPS 180-4 padding: 0x80, zeros, then the length in bits as a 64-bit big-endian number.
  const n = bytes.length, total = Math.ceil((n + 9) / 64) * 64;
  const need = MESSAGE + total - mod.memory.buffer.byteLength;
  if (need > 0) mod.memory.grow(Math.ceil(need / 65536));
  const mem = new Uint8Array(mod.memory.buffer);
  mem.set(bytes, MESSAGE);
  mem.fill(0, MESSAGE + n, MESSAGE + total);
  mem[MESSAGE + n] = 0x80;
  const view = new DataView(mod.memory.buffer);
  view.setUint32(MESSAGE + total - 8, Math.floor(n / 0x20000000));
  view.setUint32(MESSAGE + total - 4, (n * 8) >>> 0);
  mod.blocks(total / 64);
  return Buffer.from(mod.memory.buffer, DIGEST, 32).toString('hex');
}
