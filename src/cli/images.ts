// Commands about the image store: pull, images, rmi, image prune. They run in the CLI process;
// pull writes the store (root: /var/lib/sandbox, else the XDG data folder). images and rmi call
// the library's `images` (src/api); pull calls what images.pull is made of (api/load.ts pullImage),
// with its listr2 view.
import type { Command } from 'commander';
import { table } from '../ui/table';
import { LifecycleError } from './lifecycle';
import { formatOf, withFormat, type FormatOpts } from './format';
import * as api from '../api/index';
import { pullImage } from '../api/load';

const mb = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`);


export function registerImages(program: Command): void {
  program.command('pull').argument('<image>', 'a reference (busybox, ubuntu:24.04, host:5000/name:tag, name@sha256:…) or oci:PATH[:TAG]')
    .description('fetch an image into the store: every blob checked against its digest, every layer unpacked safely')
    .option('--insecure-registry <host>', 'reach this registry over plain HTTP (repeatable; one on loopback always is)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('-q, --quiet', 'print only the image\'s digest')
    .action(async (image: string, o: { insecureRegistry: string[]; quiet?: boolean }) => {
      const { pullProgress } = await import('../ui/progress');
      const view = (key: string) => pullProgress({ quiet: !!o.quiet, plain: !process.stderr.isTTY || !!process.env.CI, title: `pull ${key}` });
      try {
        const r = await pullImage(image, { insecureRegistries: o.insecureRegistry }, view);
        process.stdout.write(`${r.digest}\n`);
      } catch (e) {
        // The library's ImageError (a bad reference, or the pull's failure, said once its view has
        // ended) exits 1 here, as a usage error: nothing was set up.
        if (e instanceof api.ImageError) throw new LifecycleError(e.message, 1);
        throw e;
      }
    });

  withFormat(program.command('images'), ['text', 'json'], 'print the list as JSON').description('list the images in the store')
    .action(async (o: FormatOpts) => {
      const json = formatOf(o) === 'json';
      const images = await api.images.list();
      if (json) { process.stdout.write(JSON.stringify(images.map((i) => i.record), null, 2) + '\n'); return; }
      process.stdout.write(table([['IMAGE', 'DIGEST', 'LAYERS', 'SIZE', 'PULLED'], ...images.map((i) => [i.reference, i.digest.slice(0, 19), String(i.layers), mb(i.size), i.pulledAt.replace(/\.\d+Z$/, 'Z')])]));
    });

  program.command('rmi').argument('<image...>', 'images to forget')
    .description('remove images from the store (their blobs and layers go with sandbox image prune)')
    .action(async (images: string[]) => {
      for (const i of images) process.stdout.write(`untagged ${(await api.images.remove(i)).reference}\n`);
    });

  const image = program.command('image').description('manage the image store');
  image.command('prune').description('remove blobs and unpacked layers no image uses, and what interrupted pulls left')
    .action(async () => {
      const { Store } = await import('../image/store');
      const { probeHost } = await import('../engine/probe');
      const { layersInUse } = await import('../engine/images');
      const inUse = layersInUse(probeHost());
      const r = new Store().prune(inUse);
      process.stdout.write(r.removed.length ? `${r.removed.map((x) => `removed ${x}`).join('\n')}\nfreed ${mb(r.bytes)}\n` : 'nothing to remove\n');
    });
}
