// The seeds' test images (a Jenkins-shaped jenkins/jenkins:lts and a Debian bookworm "ubuntu"),
// built once by test/fixtures/images/build.mjs into a cache outside the repository and pushed, at
// each run, to a registry the test started on 127.0.0.1. Building needs root, debootstrap and the
// Debian mirror (minutes the first time); later runs only read the cache.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { push, sha256, type BuiltImage } from './image';
import { ROOT } from './load';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

/** What building the images takes: debootstrap, javac and jar (openjdk-17-jdk-headless), gzip, python3. */
export const hasSeedTools = ['debootstrap', 'javac', 'jar', 'gzip', 'python3', 'flock'].every(has);

/** The OCI layout holding both images, built if the cache has not got it (under the cache's
 * lock); `seconds` is how long that took (a cached layout takes well under one). */
export async function seedImages(): Promise<{ layout: string; seconds: number; log: string }> {
  const t0 = Date.now();
  const p = spawn(process.execPath, [join(ROOT, 'test/fixtures/images/build.mjs')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (b: Buffer) => { out += b; });
  p.stderr.on('data', (b: Buffer) => { err += b; });
  const code = await new Promise<number | null>((r) => p.on('close', r));
  if (code !== 0) throw new Error(`building the seed images failed (exit ${code}):\n${err}`);
  return { layout: out.trim(), seconds: (Date.now() - t0) / 1000, log: err.trim() };
}

/** The image of the layout tagged `tag`, as image.ts's push() takes it. */
export function layoutImage(layout: string, tag: string): BuiltImage {
  const blob = (d: string) => readFileSync(join(layout, 'blobs', 'sha256', d.slice('sha256:'.length)));
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const desc = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!desc) throw new Error(`${layout} has no image tagged ${tag}`);
  const manifest = blob(desc.digest);
  const m = JSON.parse(manifest.toString()) as { config: { digest: string }; layers: { digest: string }[] };
  const config = blob(m.config.digest);
  const blobs = new Map<string, Buffer>([[m.config.digest, config]]);
  for (const l of m.layers) blobs.set(l.digest, blob(l.digest));
  for (const [d, b] of blobs) if (sha256(b) !== d) throw new Error(`${layout}: blob ${d} was changed; remove the folder to build it again`);
  const diffIds = (JSON.parse(config.toString()) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
  return { manifest, config, blobs, diffIds };
}

/** Pushes both images to the registry at host: jenkins/jenkins:lts and ubuntu:latest. */
export async function pushSeedImages(layout: string, host: string): Promise<{ jenkins: string; ubuntu: string }> {
  await push(host, 'jenkins/jenkins', 'lts', layoutImage(layout, 'jenkins/jenkins:lts'));
  await push(host, 'ubuntu', 'latest', layoutImage(layout, 'ubuntu:latest'));
  return { jenkins: `${host}/jenkins/jenkins:lts`, ubuntu: `${host}/ubuntu:latest` };
}
