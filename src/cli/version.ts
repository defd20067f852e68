// `sandbox version`: this sandbox's version, and what it runs on: Node, the native engine's ABI,
// libseccomp and the kernel, so that a bug report says all of it at once. Runs in the CLI process
// as the caller; it changes nothing.
import type { Command } from 'commander';
import { arch, release } from 'node:os';
import { formatOf, withFormat, type FormatOpts } from './format';

export const VERSION = process.env.SANDBOX_VERSION ?? '0.1.0';

export function registerVersion(program: Command): void {
  withFormat(program.command('version'))
    .description('print the version of sandbox, Node, the native engine (libsbx ABI), libseccomp and the kernel')
    .action(async (o: FormatOpts) => {
      const json = formatOf(o) === 'json';
      let engine: { library: string; abi: number; libseccomp: string } | { error: string };
      try { engine = (await import('../engine/versions')).engineVersions(); } catch (e) { engine = { error: (e as Error).message }; }
      const kernel = `${release()} ${arch()}`;
      if (json) {
        const out = 'error' in engine
          ? { libsbx: null, libseccomp: null, engineError: engine.error }
          : { libsbx: { abi: engine.abi, path: engine.library }, libseccomp: engine.libseccomp };
        process.stdout.write(JSON.stringify({ sandbox: VERSION, node: process.versions.node, kernel, ...out }, null, 2) + '\n');
        return;
      }
      const rows: [string, string][] = [
        ['sandbox', VERSION], ['node', process.versions.node],
        ['libsbx', 'error' in engine ? `cannot be loaded: ${engine.error} (build it with npm run build)` : `ABI ${engine.abi} (${engine.library})`],
        ['libseccomp', 'error' in engine ? '-' : engine.libseccomp],
        ['kernel', kernel],
      ];
      process.stdout.write(rows.map(([k, v]) => `${k.padEnd(11)} ${v}`).join('\n') + '\n');
    });
}
