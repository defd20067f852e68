// `sandbox export --format kube|oci|compose [FILE]`: the sandbox as a Kubernetes Pod (YAML on
// stdout), an OCI bundle (--output DIR: config.json and rootfs/) or a Compose file (YAML on
// stdout), and the fidelity report on stderr: every key the format cannot say, located and
// printed as validate prints errors. Runs in the CLI process as the caller; only an OCI bundle of
// an image writes more than one file (engine/bundle.ts merges its layers, which needs root).
// Exit codes: 0 exported; 1 usage; 2 an invalid file, or findings that are errors (--lossy makes
// them warnings, except those no document can be made without).
import type { Command } from 'commander';
import { Option } from 'commander';
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Document, Scalar, isScalar, visit } from 'yaml';
import { formatDiagnostics, sortDiagnostics, summary, type Diagnostic } from '../config/diagnostic';
import { parseConfig } from '../config/parse';
import { locatorOf } from '../audit/facts';
import type { HostFeatures } from '../plan/types';
import type { Source } from '../model/types';
import { TARGET_NAME, type Finding, type Locate, type Target } from '../export/fidelity';
import { exportKube } from '../export/kube';
import { exportCompose } from '../export/compose';
import { bundleJson, exportOci } from '../export/oci';
import { deviceNode, makeBundleRoot } from '../engine/bundle';
import type { AuditLoaded } from './audit';
import { LifecycleError } from './lifecycle';

export type ExportLoad = (file: string | undefined, opts: { hostProblems?: 'error' | 'warning' }) => Promise<AuditLoaded & { host: HostFeatures }>;

const fail = (message: string, code: number): never => { throw new LifecycleError(message, code); };

/** YAML as kubectl and compose write it: no folded lines, file modes in octal. */
function yamlText(doc: unknown): string {
  const d = new Document(doc);
  visit(d, { Pair(_k, pair) { if (isScalar(pair.key) && pair.key.value === 'mode' && isScalar(pair.value) && typeof pair.value.value === 'number') (pair.value as Scalar).format = 'OCT'; } });
  return d.toString({ lineWidth: 0 });
}

export function registerExport(program: Command, load: ExportLoad): void {
  program.command('export').argument('[file]', 'config file; found upward from the cwd when left out')
    .description('write the sandbox as a Kubernetes Pod, an OCI bundle or a Compose service, and report each key the format has no equivalent for')
    .addOption(new Option('--format <format>', 'kube (a Pod), oci (a runtime bundle) or compose').choices(['kube', 'oci', 'compose']).makeOptionMandatory())
    .option('--image <image>', 'the image a Pod or a Compose service runs (rootfs: host runs it with the host\'s folders mounted over it)')
    .option('-o, --output <path>', 'oci: the bundle\'s folder, made new (config.json and rootfs/); kube, compose: a file instead of stdout')
    .option('--lossy', 'export without what the format cannot say, reported as warnings instead of errors')
    .action(async (file: string | undefined, o: { format: Target; image?: string; output?: string; lossy?: boolean }) => {
      if (o.format === 'oci' && !o.output) fail('an OCI bundle is a folder: name it with --output DIR', 1);
      if (o.format === 'oci' && o.image) fail('--image is for kube and compose: an OCI bundle is made from the file\'s own root (an image in the store, a folder, or the host\'s)', 1);
      let out: string | undefined;
      if (o.output) {
        out = resolve(o.output);
        if (o.format === 'oci') { let entries: string[] | undefined; try { entries = readdirSync(out); } catch { /* made below */ } if (entries?.length) fail(`${o.output} is not empty; name a new folder for the bundle`, 1); }
      }
      const l = await load(file, { hostProblems: 'warning' });
      const parsed = parseConfig(l.file, Buffer.from(l.text), { root: l.root });
      const where = locatorOf(l.file, parsed.value, parsed.locate, l.root.length > 0);
      const locate: Locate = (src: Source, key) => (typeof src === 'object' ? src : { file: l.file, ...where.locate(key) });
      const rootDirs = l.host.rootDirs;
      const result = o.format === 'kube' ? exportKube(l.spec, { image: o.image, rootDirs }, locate)
        : o.format === 'compose' ? exportCompose(l.spec, { image: o.image, rootDirs }, locate)
          : exportOci(l.spec, { rootDirs, arch: l.host.arch, kernel: l.host.kernel, device: deviceNode }, locate);
      const diagnostics = sortDiagnostics(result.findings.map((f: Finding): Diagnostic => ({
        file: f.file, line: f.line, col: f.col, path: f.key, code: f.code, message: f.message, severity: o.lossy && !f.blocking ? 'warning' : 'error',
      })));
      const color = !process.env.NO_COLOR && process.stderr.isTTY === true;
      process.stderr.write(formatDiagnostics(diagnostics, (d) => (d.file === l.file ? l.text : undefined), color));
      const what = TARGET_NAME[o.format];
      if (diagnostics.some((d) => d.severity === 'error')) {
        const lossyHelps = !o.lossy && result.findings.some((f) => !f.blocking);
        fail(`${l.file} cannot be exported as ${what}: ${summary(diagnostics)}${lossyHelps ? ' (--lossy exports it without what is marked lossy, as warnings)' : ''}; nothing was written`, 2);
      }
      if (o.format === 'oci') {
        const bundle = result.doc as ReturnType<typeof exportOci>['doc'];
        const made = !statSafe(out!);
        mkdirSync(out!, { recursive: true });
        try {
          writeFileSync(join(out!, 'config.json'), bundleJson(bundle.config));
          makeBundleRoot(out!, bundle.root);
        } catch (e) {
          if (made) rmSync(out!, { recursive: true, force: true });
          else for (const e2 of readdirSync(out!)) rmSync(join(out!, e2), { recursive: true, force: true });
          const why = String((e as { stderr?: Buffer }).stderr ?? '').trim() || (e as Error).message;
          fail(`the bundle could not be written in ${o.output}: ${why}${/permission|not permitted/i.test(why) ? ' (merging an image\'s layers needs root)' : ''}`, 125);
        }
        process.stderr.write(`sandbox: wrote the OCI bundle ${o.output} (config.json, root ${bundle.root.kind === 'dir' ? bundle.root.path : 'rootfs/'})${diagnostics.length ? `, with ${summary(diagnostics)}: what it leaves out is listed above` : ''}; run it with \`runc run -b ${o.output} NAME\`\n`);
        return;
      }
      const text = yamlText(result.doc);
      if (out) writeFileSync(out, text); else process.stdout.write(text);
      if (diagnostics.length) process.stderr.write(`sandbox: exported ${l.file} as ${what} with ${summary(diagnostics)}: what it leaves out is listed above\n`);
    });
}

function statSafe(p: string): boolean { try { statSync(p); return true; } catch { return false; } }
