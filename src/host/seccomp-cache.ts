// The compiled seccomp filters, cached on disk. In the CLI process, before the clone: compiling
// moby's default profile for three ABIs with libseccomp takes about 12 ms, more than the rest of
// the engine's setup, while the same program always compiles to the same instructions. A filter
// is kept under the sha256 of its text program, libsbx's ABI and libseccomp's version, in a
// folder only its owner can write (/var/cache/sandbox/seccomp for root, the XDG cache folder
// otherwise, or SANDBOX_CACHE), written to a temporary file and renamed into place; a file
// that is not a whole number of instructions is compiled again. A cache that cannot be written
// costs only the compile.
import { sha256Hex } from '../util/sha256';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function seccompCacheDir(): string {
  if (process.env.SANDBOX_CACHE) return join(process.env.SANDBOX_CACHE, 'seccomp');
  if (process.geteuid?.() === 0) return '/var/cache/sandbox/seccomp';
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'sandbox', 'seccomp');
}

const MAX_BYTES = 4096 * 8;

export function cachedFilter(program: string, salt: string, compile: (program: string) => Buffer, dir = seccompCacheDir()): Buffer {
  const file = join(dir, `${sha256Hex(`${salt}\n${program}`)}.bpf`);
  try {
    const b = readFileSync(file);
    if (b.length > 0 && b.length % 8 === 0 && b.length <= MAX_BYTES) return b;
  } catch { /* not cached yet */ }
  const bpf = compile(program);
  try {
    // Level by level: Node's recursive mkdir can loop forever where a file system refuses to make
    // a folder with ENOENT (as /proc does).
    let p = '';
    for (const c of dir.split('/').filter(Boolean)) {
      p += `/${c}`;
      try { mkdirSync(p, 0o700); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; }
    }
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, bpf, { mode: 0o600 });
    renameSync(tmp, file);
  } catch { /* a read-only or full disk: the next run compiles again */ }
  return bpf;
}
