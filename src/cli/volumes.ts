// Commands about the volumes sandbox keeps: volume ls, inspect, rm, prune. They run in the CLI
// process, as root (volumes under /var/lib/sandbox/volumes) or as a user (under its data folder).
import type { Command } from 'commander';
import { table } from '../ui/table';
import { MSG } from '../ui/messages';
import { LifecycleError } from './lifecycle';

export function registerVolumes(program: Command): void {
  const volume = program.command('volume').description('manage the volumes sandbox keeps (named volumes, and the anonymous ones of images\' VOLUME)');

  volume.command('ls').description('list the volumes: name, how it was seeded, who uses it')
    .option('--json', 'print the list as JSON')
    .action(async (o: { json?: boolean }) => {
      const { volumes } = await import('../engine/lifecycle');
      const { probeHost } = await import('../engine/probe');
      const rows = volumes(probeHost());
      if (o.json) { process.stdout.write(JSON.stringify(rows, null, 2) + '\n'); return; }
      process.stdout.write(table([['VOLUME', 'KIND', 'SEEDED', 'CREATED', 'USED BY'], ...rows.map((v) => [v.name, v.anonymous ? `anonymous (${v.anonymous.sandbox} ${v.anonymous.target})` : 'named', MSG.volumeSeed(v.seeded), v.createdAt.replace(/\.\d+Z$/, 'Z'), MSG.volumeUsers(v.usedBy)])]));
    });

  volume.command('inspect').argument('<name>', 'a volume')
    .description('a volume: where its files are, how it was seeded, which sandboxes use it')
    .option('--json', 'print it as JSON')
    .action(async (name: string, o: { json?: boolean }) => {
      const { inspectVolume } = await import('../engine/lifecycle');
      const { probeHost } = await import('../engine/probe');
      const v = inspectVolume(probeHost(), name);
      if (o.json) { process.stdout.write(JSON.stringify(v, null, 2) + '\n'); return; }
      process.stdout.write(table([
        ['volume', v.name], ['kind', v.anonymous ? `anonymous, of ${v.anonymous.sandbox} at ${v.anonymous.target}` : 'named'],
        ['data', v.data], ['created', v.createdAt], ['seeded', MSG.volumeSeed(v.seeded)], ['used by', MSG.volumeUsers(v.usedBy)],
      ]));
    });

  volume.command('rm').argument('<name...>', 'volumes to remove, with their files')
    .description('remove volumes and their files; refused for a volume a running sandbox uses')
    .action(async (names: string[]) => {
      const { removeVolumes } = await import('../engine/lifecycle');
      const { probeHost } = await import('../engine/probe');
      try { for (const n of removeVolumes(probeHost(), names)) process.stdout.write(`${n}\n`); } catch (e) {
        if (e instanceof LifecycleError) throw e;
        throw new LifecycleError(`cannot remove ${names.join(', ')}: ${(e as Error).message}`, 1);
      }
    });

  volume.command('prune').description('remove anonymous volumes no sandbox uses (with -a, named ones too), and what interrupted volume makings left')
    .option('-a, --all', 'remove unused named volumes too')
    .action(async (o: { all?: boolean }) => {
      const { pruneVolumes } = await import('../engine/lifecycle');
      const { probeHost } = await import('../engine/probe');
      const removed = pruneVolumes(probeHost(), !!o.all);
      process.stdout.write(removed.length ? `${removed.map((x) => `removed ${x}`).join('\n')}\n` : 'nothing to remove\n');
    });
}
