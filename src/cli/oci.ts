// An OCI bundle loaded as a sandbox file is: its config.json through the one adapter
// (src/import/oci.ts), written as YAML in memory and loaded as `up` loads a file, with every
// location moved back to the field of config.json behind it. Used by `plan --oci`, `audit --oci`
// and sandbox-runtime's create and run. Runs in the CLI process as the caller; writes nothing.
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { formatDiagnostics } from '../config/diagnostic';
import { readBounded, type FoundConfig } from '../config/find';
import { LIMITS } from '../config/parse';
import { fromOciConfig, type OciImported } from '../import/oci';
import { nameFrom } from '../import/types';
import { toYaml } from '../import/write';
import type { Loaded, LoadOpts } from './options';
import { LifecycleError } from './lifecycle';
import { locator, noteDiagnostic } from './imported';

type Load<L> = (file: string | undefined, opts: LoadOpts) => Promise<L>;

export type OciLoaded<L = Loaded> = L & { oci: OciImported; bundle: string };

const color = () => !process.env.NO_COLOR && process.stderr.isTTY === true;



/**
 * BUNDLE → the plan its config.json gets. Every field that cannot be honoured is printed at its
 * line of config.json, all at once, and ends it with status 2 (`say` receives the lines too, for
 * sandbox-runtime's --log); warnings (fields ignored or changed) are printed and it goes on.
 */
export async function loadOci<L = Loaded>(load: Load<L>, bundleArg: string, name: string, opts: LoadOpts = {}, say: (text: string) => void = (t) => process.stderr.write(t)): Promise<OciLoaded<L>> {
  const bundle = resolve(bundleArg);
  const absFile = join(bundle, 'config.json');
  const file = bundleArg === '.' ? 'config.json' : join(bundleArg, 'config.json');
  let bytes: Uint8Array;
  try { bytes = readBounded(absFile, LIMITS.bytes); } catch (e) { throw new LifecycleError(`${file} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; --bundle names the folder that holds config.json`, 2); }
  const imp = fromOciConfig(file, bytes, { bundle, name, selinux: existsSync('/sys/fs/selinux/enforce') });
  const shown = [...imp.errors, ...imp.notes.map((n) => noteDiagnostic(n, 'not applied'))].sort((a, b) => a.line - b.line || a.col - b.col);
  if (shown.length) say(formatDiagnostics(shown, () => imp.text, color()));
  const errors = shown.filter((d) => d.severity === 'error').length;
  if (errors) throw new LifecycleError(`${errors} field${errors === 1 ? '' : 's'} of ${file} cannot be honoured by sandbox; nothing was run`, 2);
  const text = toYaml(imp, { schema: 'sandbox.schema.json', header: [`Made by sandbox from the OCI bundle ${bundle}.`] });
  const source: FoundConfig = { file, absFile, bytes: Buffer.from(text), root: [] };
  const locate = locator(imp.origin, { file, line: 1, col: 1 });
  const l = await load(undefined, { ...opts, source, commandLine: { file, text: imp.text, locate }, files: imp.seccomp ? { [imp.seccomp.path]: imp.seccomp.text } : undefined });
  return { ...l, oci: imp, bundle };
}

/** The sandbox name `plan --oci` and `audit --oci` give a bundle: its folder's name. */
export const bundleName = (bundle: string) => nameFrom(basename(resolve(bundle)));
