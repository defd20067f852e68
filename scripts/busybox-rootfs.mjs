// Builds samples/rootfs/busybox: a minimal root filesystem from Debian's busybox-static
// (/bin/busybox), for samples/busybox.yml and the tests. Made at install time, never committed.
//   node scripts/busybox-rootfs.mjs [DEST]
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dest = process.argv[2] ?? join(root, 'samples/rootfs/busybox');
const busybox = process.env.BUSYBOX ?? '/bin/busybox';
if (!existsSync(busybox)) {
  process.stderr.write(`build: ${busybox} not found; skipping the busybox root (apt-get install busybox-static)\n`);
  process.exit(0);
}
rmSync(dest, { recursive: true, force: true });
for (const d of ['bin', 'etc', 'root', 'tmp', 'proc', 'sys', 'dev', 'home', 'var/tmp']) mkdirSync(join(dest, d), { recursive: true });
copyFileSync(busybox, join(dest, 'bin/busybox'));
chmodSync(join(dest, 'bin/busybox'), 0o755);
chmodSync(join(dest, 'tmp'), 0o1777);
const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
for (const a of applets) symlinkSync('busybox', join(dest, 'bin', a));
writeFileSync(join(dest, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
writeFileSync(join(dest, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
process.stderr.write(`build: busybox root with ${applets.length} applets in ${dest}\n`);
