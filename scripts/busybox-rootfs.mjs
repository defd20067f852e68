// Builds samples/rootfs/busybox: a minimal root filesystem from Debian's busybox-static
// (/bin/busybox), for the samples and the tests; and the same root as a one-layer OCI image
// layout in samples/images/busybox (tag latest), which samples/busybox.yml runs as an image
// offline. Made at install time, never committed.
//   node scripts/busybox-rootfs.mjs [DEST]
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
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

// The OCI image: one gzip layer made by GNU tar with fixed owners, order and times, so that its
// digest is the same on every machine with the same busybox.
if (!process.argv[2]) {
  const layout = join(root, 'samples/images/busybox');
  rmSync(layout, { recursive: true, force: true });
  mkdirSync(join(layout, 'blobs/sha256'), { recursive: true });
  const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  const blob = (b) => { writeFileSync(join(layout, 'blobs/sha256', sha(b).slice(7)), b); return { digest: sha(b), size: b.length }; };
  const layer = execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', dest, '-cf', '-', '.'], { maxBuffer: 1 << 28 });
  const gz = gzipSync(layer, { level: 6 });
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'], WorkingDir: '/' }, rootfs: { type: 'layers', diff_ids: [sha(layer)] } }));
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...blob(config) }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...blob(gz) }] }));
  const m = blob(manifest);
  writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}\n');
  writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }] }) + '\n');
  process.stderr.write(`build: busybox OCI image ${m.digest.slice(0, 19)} in ${layout}\n`);
}
