// Commands about the image store: pull, images, rmi, image prune. They run in the CLI process;
// pull writes the store (root: /var/lib/sandbox, else the XDG data folder).
import type { Command } from 'commander';
import { table } from '../ui/table';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { LifecycleError } from './lifecycle';

const mb = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`);


export function registerImages(program: Command): void {
  program.command('pull').argument('<image>', 'a reference (busybox, ubuntu:24.04, host:5000/name:tag, name@sha256:…) or oci:PATH[:TAG]')
    .description('fetch an image into the store: every blob checked against its digest, every layer unpacked safely')
    .option('--insecure-registry <host>', 'reach this registry over plain HTTP (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('-q, --quiet', 'print only the image\'s digest')
    .action(async (image: string, o: { insecureRegistry: string[]; quiet?: boolean }) => {
      const { Store } = await import('../image/store');
      const { imageKey, pull } = await import('../image/pull');
      const { loadLibSbx } = await import('../ffi/libsbx');
      const { pullProgress } = await import('../ui/progress');
      let key: string;
      try { key = imageKey(image).key; } catch (e) { throw new LifecycleError((e as Error).message, 1); }
      const view = pullProgress({ quiet: !!o.quiet, plain: !process.stderr.isTTY || !!process.env.CI, title: `pull ${key}` });
      try {
        const r = await pull(image, { store: new Store(), ops: loadLibSbx(), insecure: o.insecureRegistry, onEvent: view.onEvent, refresh: true });
        await view.finish();
        process.stdout.write(`${r.record.manifest}\n`);
      } catch (e) {
        await view.finish(e as Error);
        throw new LifecycleError(`cannot pull ${key}: ${(e as Error).message}`, 1);
      }
    });

  program.command('images').description('list the images in the store')
    .option('--json', 'print the list as JSON')
    .action(async (o: { json?: boolean }) => {
      const { Store } = await import('../image/store');
      const records = new Store().records();
      if (o.json) { process.stdout.write(JSON.stringify(records, null, 2) + '\n'); return; }
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
      const { readSaved } = await import('../engine/state');
      // Layers of sandboxes that still exist (running, or exited and not yet down) are in use.
      const root = probeHost().stateRoot;
      const inUse: string[] = [];
      let names: string[] = [];
      try { names = readdirSync(root).filter((n) => !n.startsWith('.')); } catch { /* none */ }
      for (const n of names) {
        const layers = readSaved(join(root, n))?.plan.steps.find((s) => s.kind === 'rootfs.image')?.args.layers as string[] | undefined;
        inUse.push(...(layers ?? []));
      }
      const r = new Store().prune(inUse);
      process.stdout.write(r.removed.length ? `${r.removed.map((x) => `removed ${x}`).join('\n')}\nfreed ${mb(r.bytes)}\n` : 'nothing to remove\n');
    });
}
