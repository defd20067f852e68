// find → parse → validate → (image) → normalize with the caller's overrides → rules → compile,
// with the host's pre-flight checks when asked: the one loader of the library (src/api) and of the
// CLI (src/cli/main.ts), which prints what this returns or throws. Every problem comes back as
// data, located: a ConfigError carries them all. Runs in the caller's process, as its user; reads
// the config and the files it names, probes the host, and looks images up in the store (pulling
// them only when asked).
import { homedir } from 'node:os';
import { readdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Diagnostic } from '../config/diagnostic';
import { findConfig, FindError, readBounded, type FoundConfig } from '../config/find';
import type { PathSeg } from '../config/parse';
import type { PathKind, SandboxSpec, Source } from '../model/types';
import type { PathFs, SpecInputs } from '../model/normalize';
import { buildSpec, readConfig } from '../model/load';
import { compile } from '../plan/compile';
import { REFUSED_IN_REDUCED } from '../plan/reduced';
import { sourceText } from '../plan/render';
import type { Plan, HostFeatures } from '../plan/types';
import { probeHost } from '../engine/probe';
import type { PullEvent } from '../image/pull';
import { MSG } from '../ui/messages';
import { ConfigError, ImageError, SandboxError } from './errors';

/** The schema's rule for `name`, which an override of it follows too. */
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

/** Where a config's problems are shown when it was not written by hand: the command line, or the
 * Compose file it was imported from. `locate` maps a path of the config to the words behind it. */
export interface CommandLine {
  file: string;
  text: string;
  locate?: (path: readonly PathSeg[]) => { file: string; line: number; col: number; endLine: number; endCol: number };
}

/** How a pull is shown (the CLI's listr2 view), made when one starts. */
export interface PullView { onEvent(e: PullEvent): void; finish(e?: Error): Promise<void> }

export interface PrepareOpts {
  strict?: boolean; command?: string[]; hostProblems?: 'error' | 'warning'; forRun?: boolean; detach?: boolean; name?: string;
  /** `-i`: stdin reaches the command, as stdin_open does. `-T`: no terminal, whatever `tty` says. */
  interactive?: boolean; noTty?: boolean;
  /** `pull`: fetch the image when the store lacks it (after the checks); `store`: the store only. */
  image?: { mode: 'pull' | 'store'; insecure?: string[]; view?: (image: string) => PullView };
  /** The file's bytes, given instead of reading it (diff --against reads them from git). */
  source?: FoundConfig;
  overrides?: SpecInputs['overrides'];
  /** The command line, for code frames of problems located on it; with `locate`, the whole config
   * came from it (`sandbox run`), and every location in the file is moved to the word behind it. */
  commandLine?: CommandLine;
  /** Files the config names that are not on the disk, by absolute path (an OCI bundle's seccomp profile). */
  files?: Record<string, string>;
  /** Check the host before any pull (up, run, doctor FILE); its own problems throw with `exit`. */
  preflight?: { exit: number; refuseKept?: boolean };
  /** Whether stdin is a terminal: `tty` with stdin open is refused otherwise, as docker run -it is.
   * Asked only then: reading process.stdin makes its stream, which a command that reads no input need not pay for. */
  stdinIsTTY?: () => boolean;
  env?: Readonly<Record<string, string | undefined>>;
  cwd?: string;
  /** The host, when the caller probed it already. */
  host?: HostFeatures;
  /** In reduced mode (no user namespace can be made), a line that cannot be held is a warning, not an error (`up --allow-weaker`). */
  allowWeaker?: boolean;
}

export interface Prepared {
  plan: Plan; spec: SandboxSpec; host: HostFeatures;
  /** The warnings (and, with hostProblems: 'warning', the host's problems), located. */
  diagnostics: Diagnostic[];
  /** As shown in messages; the absolute path; where the config sits in the document (['sandbox'] in package.json). */
  file: string; absFile: string; root: PathSeg[];
  /** The file's text, and other files its diagnostics point into. */
  text: string; texts: Record<string, string>;
}

/** What `paths` rules look at on the host, as the caller sees it (its own permissions). */
const HOST_PATHS: PathFs = {
  stat: (p): PathKind => { try { const st = statSync(p); return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other'; } catch (e) { return (e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR' ? 'missing' : 'other'; } },
  list: (d) => { try { return readdirSync(d, { withFileTypes: true }).map((e) => ({ name: e.name, dir: e.isDirectory() })); } catch { return undefined; } },
};

/** A config given as an object: written as YAML (so that its problems have lines to point at),
 * its relative paths taken from `cwd`, as a file's are from its folder. */
export function objectSource(config: object, cwd: string, name = 'config.yml'): FoundConfig {
  const { stringify } = require('yaml') as typeof import('yaml');
  return { file: name, absFile: resolve(cwd, name), bytes: Buffer.from(stringify(config)), root: [] };
}

/** An image config's image: from the store, pulled first when asked. */
async function imageInput(image: { ref: string; insecure: string[] }, src: string, o: NonNullable<PrepareOpts['image']>, mode: 'pull' | 'store') {
  const { haveImage, imageName, lookupImage } = await import('../engine/images');
  const have = haveImage(image.ref);
  if (!have && mode === 'store') return undefined;
  const insecure = [...image.insecure, ...(o.insecure ?? [])];
  if (!have) (await import('../engine/extra-ca')).beforePull(image.ref, insecure);
  const view = have ? undefined : o.view?.(imageName(image.ref));
  try {
    const got = await lookupImage(image.ref, { pull: true, insecure, onEvent: view?.onEvent });
    await view?.finish();
    return got;
  } catch (e) {
    await view?.finish(e as Error);
    throw new ImageError(image.ref, `${MSG.pullFailed(image.ref, (e as Error).message).replace(/^sandbox: /, '')}${src ? ` (${src})` : ''}`, src || undefined);
  }
}

/** The image store's pull of one reference, again if it is there: the library's images.pull, and
 * `sandbox pull`'s with its view (listr2's, made once the reference is known, ended before this
 * resolves or rejects). Rejects with ImageError: a reference that cannot be read, or the pull's
 * failure. @internal */
export async function pullImage(ref: string, o: { insecureRegistries?: string[]; onProgress?: (e: PullEvent) => void }, view?: (reference: string) => PullView): Promise<{ reference: string; digest: string }> {
  const { imageName, lookupImage } = await import('../engine/images');
  let reference: string;
  try { reference = imageName(ref); } catch (e) { throw new ImageError(ref, (e as Error).message); }
  const v = view?.(reference);
  const { onProgress } = o;
  const onEvent = v && onProgress ? (e: PullEvent) => { v.onEvent(e); onProgress(e); } : v ? v.onEvent : onProgress;
  try {
    const r = (await lookupImage(ref, { pull: true, refresh: true, insecure: o.insecureRegistries, onEvent }))!;
    await v?.finish();
    return { reference, digest: r.digest };
  } catch (e) {
    await v?.finish(e as Error);
    throw new ImageError(ref, `cannot pull ${reference}: ${(e as Error).message}`);
  }
}

/** A diagnostic's JSON-pointer path as the config's path. */
function pathOf(ptr: string): PathSeg[] {
  return ptr ? ptr.slice(1).split('/').map((x) => x.replace(/~1/g, '/').replace(/~0/g, '~')).map((x) => (/^[0-9]+$/.test(x) ? Number(x) : x)) : [];
}

/** The config found (or named, or given) and read; the command line's locations put in. */
async function readFound(fileArg: string | undefined, opts: PrepareOpts, host: HostFeatures) {
  let found = opts.source;
  if (!found) try { found = await findConfig(fileArg, opts.cwd); } catch (e) {
    if (e instanceof FindError) throw new SandboxError(e.message, e.exitCode);
    throw e;
  }
  const read = readConfig({
    file: found.file, absFile: found.absFile, bytes: found.bytes, root: found.root, env: opts.env ?? process.env, home: homedir(), hostCpus: host.cpus,
    // Bounded: a file over the cap is refused by its size, and never read whole (/proc/self/exe).
    readFile: (p, max) => { if (opts.files && Object.hasOwn(opts.files, p)) return opts.files[p]; try { return readBounded(p, max); } catch { return undefined; } },
    paths: HOST_PATHS,
  });
  // `sandbox run`: the config is the command line's, written as YAML; its problems and the plan's
  // sources point at the words they came from.
  const locate = opts.commandLine?.locate;
  if (locate) {
    read.diagnostics.splice(0, read.diagnostics.length, ...read.diagnostics.map((d) => (d.file === found!.file ? { ...d, ...locate(pathOf(d.path)) } : d)));
    if (read.ctx) read.ctx = { ...read.ctx, where: (p) => { const { file, line, col } = locate(p); return { file, line, col } as Source; } };
  }
  return { found, read };
}

/** The plan of a config, every problem located; throws ConfigError (all of them), ImageError, or
 * SandboxError (usage: a bad name, no config found). */
export async function prepare(fileArg: string | undefined, opts: PrepareOpts = {}): Promise<Prepared> {
  if (opts.name !== undefined && !NAME.test(opts.name)) throw new SandboxError(`--name ${JSON.stringify(opts.name)} is not a valid name: use letters, digits, _, . and -, starting with a letter or digit, at most 63 characters`, 1);
  const host = opts.host ?? probeHost();
  const { found, read } = await readFound(fileArg, opts, host);
  const file = found.file;
  const cl = opts.commandLine;
  // Errors in the file come first: an invalid file pulls nothing.
  const valid = !read.diagnostics.some((d) => d.severity === 'error');
  const imageOpts = opts.image ?? { mode: 'store' as const };
  const imageSrc = read.image ? sourceText(read.ctx!.where(['image'])) : '';
  const located = (src: Source | 'cli' | undefined) => (typeof src === 'object' ? src : { file, line: 1, col: 1 });
  const build = (image: Awaited<ReturnType<typeof imageInput>>) => {
    const res = buildSpec(read, { command: opts.command, detach: opts.detach, interactive: opts.interactive, noTty: opts.noTty, name: opts.name, image, rootless: host.rootless, overrides: opts.overrides });
    if (cl) res.texts[cl.file] = cl.text;
    const diagnostics = [...res.diagnostics];
    let plan: Plan | undefined;
    if (res.spec) {
      const compiled = compile(res.spec, host);
      plan = compiled.plan;
      for (const p of compiled.problems) {
        const severity = (p.atRun && !opts.forRun) || (p.code === REFUSED_IN_REDUCED && opts.allowWeaker) ? 'warning' : opts.hostProblems ?? 'error';
        diagnostics.push({ ...located(p.src as Source), path: '', code: p.code, message: p.message, severity });
      }
    }
    return { res, plan, diagnostics };
  };
  // First from the store alone: the checks run before any pull.
  let image = valid && read.image ? await imageInput(read.image, imageSrc, imageOpts, 'store') : undefined;
  let b = build(image);
  let checked: Diagnostic[] = [];
  if (opts.preflight && b.plan && b.res.spec) {
    const { preflight } = await import('../engine/preflight');
    const found = await preflight({ spec: b.res.spec, plan: b.plan, host, insecure: imageOpts.insecure, haveImage: image !== undefined, refuseKept: opts.preflight.refuseKept });
    checked = found.map((p) => ({ ...located(p.src === 'cli' ? undefined : p.src as Source), path: '', code: p.code, message: p.src === 'cli' ? `${p.message} (--name)` : p.message, severity: p.severity }));
  }
  const terminal = valid && opts.forRun && !opts.source && read.cfg ? terminalProblem(read, opts, file) : [];
  const isError = (d: Diagnostic) => d.severity === 'error' || !!opts.strict;
  if (b.diagnostics.some(isError) || checked.some(isError) || terminal.length || !b.plan) {
    // The file's own errors (or the host's, that compile found) say 2; only the host's present state, the caller's status.
    const status = b.diagnostics.some(isError) || !b.plan ? 2 : checked.some(isError) ? opts.preflight!.exit : 1;
    throw new ConfigError([...b.diagnostics, ...checked, ...terminal], b.res.text, status, b.res.texts, file, b.plan);
  }
  if (valid && read.image && !image && imageOpts.mode === 'pull') {
    image = await imageInput(read.image, imageSrc, imageOpts, 'pull');
    b = build(image);
    if (b.diagnostics.some(isError) || !b.plan) throw new ConfigError([...b.diagnostics, ...checked], b.res.text, 2, b.res.texts, file, b.plan);
  }
  return { plan: b.plan!, spec: b.res.spec!, host, diagnostics: [...b.diagnostics, ...checked], file, absFile: found.absFile, root: found.root, text: b.res.text, texts: b.res.texts };
}

/** A terminal with stdin open relays the user's keys in raw mode: from a pipe or a file that
 * would garble both ways (the input echoed, \r\n), so it is refused as docker run -it does, with
 * the other problems and before any pull. */
function terminalProblem(read: ReturnType<typeof readConfig>, opts: PrepareOpts, file: string): Diagnostic[] {
  const cfg = read.cfg!;
  if (opts.noTty || cfg.tty !== true || !(opts.interactive || cfg.stdin_open === true) || opts.detach || cfg.detach || opts.stdinIsTTY?.()) return [];
  const at = read.ctx!.where(['tty']);
  const message = opts.interactive ? MSG.notATerminal('`tty: true` with -i', 'drop -i, or `tty: true` (-T drops it for one run),') : MSG.notATerminal('`tty: true` with `stdin_open: true`', 'drop `tty: true` (-T drops it for one run)');
  return [{ ...(typeof at === 'object' ? at : { file, line: 1, col: 1 }), path: 'tty', code: 'not-a-terminal', message, severity: 'error' }];
}

