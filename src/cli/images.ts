// Commands about the image store: pull, images, rmi, image prune. They run in the CLI process;
// pull writes the store (root: /var/lib/sandbox, else the XDG data folder).
import type { Command } from 'commander';
import { table } from '../ui/table';
import { LifecycleError } from './lifecycle';
import { formatOf, withFormat, type FormatOpts } from './format';

const mb = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`);


export function registerImages(program: Command): void {
  program.command('pull').argument('<image>', 'a reference (busybox, ubuntu:24.04, host:5000/name:tag, name@sha256:…) or oci:PATH[:TAG]')
    .description('fetch an image into the store: every blob checked against its digest, every layer unpacked safely')
    .option('--insecure-registry <host>', 'reach this registry over plain HTTP (repeatable; one on loopback always is)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('-q, --quiet', 'print only the image\'s digest')
    .action(async (image: string, o: { insecureRegistry: string[]; quiet?: boolean }) => {
      const { imageName, lookupImage } = await import('../engine/images');
      const { pullProgress } = await import('../ui/progress');
      let key: string;
      try { key = imageName(image); } catch (e) { throw new LifecycleError((e as Error).message, 1); }
      const view = pullProgress({ quiet: !!o.quiet, plain: !process.stderr.isTTY || !!process.env.CI, title: `pull ${key}` });
      try {
        const r = (await lookupImage(image, { pull: true, refresh: true, insecure: o.insecureRegistry, onEvent: view.onEvent }))!;
        await view.finish();
        process.stdout.write(`${r.digest}\n`);
      } catch (e) {
        await view.finish(e as Error);
        throw new LifecycleError(`cannot pull ${key}: ${(e as Error).message}`, 1);
      }
    });

  withFormat(program.command('images'), ['text', 'json'], 'print the list as JSON').description('list the images in the store')
    .action(async (o: FormatOpts) => {
      const json = formatOf(o) === 'json';
      const { Store } = await import('../image/store');
      const records = new Store().records();
      if (json) { process.stdout.write(JSON.stringify(records, null, 2) + '\n'); return; }
      process.stdout.write(table([['IMAGE', 'DIGEST', 'LAYERS', 'SIZE', 'PULLED'], ...records.map((r) => [r.reference, r.manifest.slice(0, 19), String(r.layers.length), mb(r.size), r.pulledAt.replace(/\.\d+Z$/, 'Z')])]));
    });

  program.command('rmi').argument('<image...>', 'images to forget')
    .description('remove images from the store (their blobs and layers go with sandbox image prune)')
    .action(async (images: string[]) => {
      const { Store } = await import('../image/store');
      const { imageKey } = await import('../image/pull');
      const store = new Store();
      for (const i of images) {
        const key = imageKey(i).key;
        if (!store.removeRecord(key)) throw new LifecycleError(`no image ${key} in the store (sandbox images lists them)`, 1);
        process.stdout.write(`untagged ${key}\n`);
      }
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
