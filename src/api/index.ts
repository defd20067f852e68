// The library: what `require('sandbox')` and `import … from 'sandbox'` give (package.json
// `exports`; the README's "Using sandbox from Node" is its manual and its stability promise).
// Everything exported here is public; everything else under src/ is internal. The same pipeline
// as the CLI's (src/cli is a client of load.ts, of these functions and of sandbox.ts's start, which
// its up and run call; its ps, stop, down, rm and images of list, stop, down and images, with what
// only it wants in @internal options and fields, and its exec and pull of what the handle's exec
// and images.pull are made of): a config is loaded into a plan whose problems are data, reviewed
// (audit, diff), and started in this process.
import type { Diagnostic } from '../config/diagnostic';
import type { FoundConfig } from '../config/find';
import type { SandboxSpec } from '../model/types';
import type { Plan, HostFeatures, Step, Verdict } from '../plan/types';
import { planJson, renderPlan } from '../plan/render';
import { audit as scoreOf, type Audit, type Finding } from '../audit/score';
import { diffFacts, type Diff, type Change } from '../audit/diff';
import { factsOf } from '../audit/facts';
import type { EngineEvent } from '../engine/types';
import type { StdioMode } from '../engine/native';
import type { PullEvent } from '../image/pull';
import type { ImageRecord } from '../image/store';
import type { StopNote } from '../engine/signals';
import { MSG } from '../ui/messages';
import { join } from 'node:path';
import { objectSource, prepare, pullImage, type PrepareOpts, type Prepared } from './load';
import { lifecycleError, start, Sandbox } from './sandbox';
import { NotFoundError, SandboxError } from './errors';

export { AbortError, ConfigError, ImageError, NotFoundError, SandboxError, SetupError, type StepSource } from './errors';
export { Sandbox };
export type { Audit, Change, Diagnostic, Diff, EngineEvent as ProgressEvent, Finding, Plan, PullEvent, SandboxSpec, Step, StdioMode, Verdict };

/** What to load: a file's path (relative to `cwd`), a config object (the file's schema, as
 * parsed YAML would give it), or a config load() returned. Absent: found upward from `cwd`. */
export type ConfigSource = string | Record<string, unknown> | Config | undefined;

export interface LoadOptions {
  /** The folder a path (and an object's relative paths) is taken from; default process.cwd(). */
  cwd?: string;
  /** What `${VAR}` reads; default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** The sandbox's name, over the file's (`--name`): to run one config more than once. */
  name?: string;
  /** The command and its arguments, over the file's and the image's (`up -- CMD`). */
  command?: string[];
  /** Warnings are errors. */
  strict?: boolean;
  /** Image configs: fetch the image when the store lacks it (default: true for up(), false otherwise). */
  pull?: boolean;
  /** Registries reached over plain HTTP (one on loopback always is). */
  insecureRegistries?: string[];
  /** Each layer's progress while an image is pulled. */
  onPull?: (e: PullEvent & { image: string }) => void;
}

/** A loaded config: its plan and spec, and its warnings. Errors are thrown (ConfigError). */
export interface Config {
  readonly kind: 'sandbox-config';
  /** The file as its diagnostics name it, and its absolute path. */
  file: string; absFile: string;
  plan: Plan; spec: SandboxSpec;
  /** Warnings, each located; empty when there are none. */
  diagnostics: Diagnostic[];
  /** The plan as `sandbox plan` prints it. */
  render(o?: { color?: boolean }): string;
  /** The plan as `sandbox plan --json` prints it. */
  toJSON(): unknown;
  /** @internal */
  readonly source: FoundConfig;
  /** @internal */
  readonly prepared: Prepared;
}

function sourceOf(config: ConfigSource, cwd: string): { fileArg?: string; source?: FoundConfig } {
  if (config === undefined || typeof config === 'string') return { fileArg: config };
  if (isConfig(config)) return { source: config.source };
  return { source: objectSource(config, cwd) };
}

const isConfig = (c: unknown): c is Config => typeof c === 'object' && c !== null && (c as Config).kind === 'sandbox-config';

function toPrepareOpts(o: LoadOptions, pullByDefault: boolean): PrepareOpts {
  const onPull = o.onPull;
  return {
    cwd: o.cwd, env: o.env, name: o.name, command: o.command, strict: o.strict,
    image: { mode: (o.pull ?? pullByDefault) ? 'pull' : 'store', insecure: o.insecureRegistries, view: onPull && ((image) => ({ onEvent: (e) => onPull({ ...e, image }), finish: async () => undefined })) },
  };
}

function asConfig(p: Prepared, source: FoundConfig): Config {
  return {
    kind: 'sandbox-config', file: p.file, absFile: p.absFile, plan: p.plan, spec: p.spec, diagnostics: p.diagnostics, source, prepared: p,
    render: (o = {}) => renderPlan(p.plan, { file: p.file, color: o.color }),
    toJSON: () => JSON.parse(planJson(p.plan)) as unknown,
  };
}

async function loadWith(config: ConfigSource, o: LoadOptions, extra: PrepareOpts, pullByDefault: boolean): Promise<Config> {
  const cwd = o.cwd ?? process.cwd();
  const { fileArg, source } = sourceOf(config, cwd);
  const p = await prepare(fileArg, { ...toPrepareOpts({ ...o, cwd }, pullByDefault), ...extra, source });
  return asConfig(p, source ?? { file: p.file, absFile: p.absFile, bytes: Buffer.from(p.text), root: p.root });
}

/** Reads, validates and compiles a config: every problem at once, located, in a ConfigError; the
 * host's problems (a limit it cannot apply) are warnings here, as `sandbox validate` says them. */
export function load(config?: ConfigSource, o: LoadOptions = {}): Promise<Config> {
  return loadWith(config, o, { hostProblems: 'warning' }, false);
}

/** The plan `up` would apply on this host: its problems on this host are errors, as `sandbox plan`. */
export async function plan(config?: ConfigSource, o: LoadOptions = {}): Promise<Plan> {
  return (await loadWith(config, o, {}, false)).plan;
}

/** The exposure score (0 locked down … 10 the host itself) and each finding, with its line, as `sandbox audit`. */
export async function audit(config?: ConfigSource, o: LoadOptions = {}): Promise<Audit> {
  const c = await loadWith(config, o, { hostProblems: 'warning' }, false);
  return scoreOf(factsOf({ ...c.prepared }));
}

/** What going from `before` to `after` loosens or tightens, stage by stage, as `sandbox diff`. */
export async function diff(before: ConfigSource, after: ConfigSource, o: LoadOptions = {}): Promise<Diff> {
  const [a, b] = await Promise.all([loadWith(before, o, { hostProblems: 'warning' }, false), loadWith(after, o, { hostProblems: 'warning' }, false)]);
  return diffFacts(factsOf(a.prepared), factsOf(b.prepared));
}

export interface UpOptions extends LoadOptions {
  /** The command's stdin, stdout and stderr: `inherit` (this process's, the default), `pipe`
   * (streams on the handle), or `ignore` (/dev/null); one word for all three, or one each. A
   * detached sandbox (`detach: true`) runs on under sbx-supervise, which keeps its output in its
   * log: this does not apply to it. */
  stdio?: StdioMode | readonly [StdioMode, StdioMode, StdioMode];
  /** Aborted while it starts: the start stops, everything it set up is undone, and up() rejects
   * with AbortError. Aborted once it runs: it is stopped, as handle.stop(). */
  signal?: AbortSignal;
  /** Each step as it is applied (also the handle's `progress` events, from the command's start on). */
  onProgress?: (e: EngineEvent) => void;
  /** Where no user namespace can be made (reduced mode), run even if some lines cannot be held
   * (`up --allow-weaker`); the plan's `reduced` table says what each line gets. */
  allowWeaker?: boolean;
}

/** Sets up the sandbox and starts its command; resolves once the command runs (setup and
 * attestation done). Rejects with ConfigError (the config, or the host's state: a port in use),
 * ImageError, SetupError (a step failed: nothing is left on the host) or AbortError. */
export async function up(config?: ConfigSource, o: UpOptions = {}): Promise<Sandbox> {
  const stdio = typeof o.stdio === 'string' || o.stdio === undefined ? [o.stdio ?? 'inherit', o.stdio ?? 'inherit', o.stdio ?? 'inherit'] as const : o.stdio;
  const c = await loadWith(config, o, { forRun: true, preflight: { exit: 125 }, allowWeaker: o.allowWeaker, stdinIsTTY: () => stdio[0] === 'inherit' && process.stdin.isTTY === true }, true);
  return start(c.plan, c.prepared.host, c.file, { stdio, signal: o.signal, onProgress: o.onProgress });
}

/** A sandbox as `sandbox ps -a` lists it. */
export interface SandboxInfo {
  name: string;
  /** `starting` (being set up), `running`, `exited` (a detached one whose command has ended, kept
   * until it is removed), or `dead` (what a crashed run left: `sandbox gc` removes it). */
  status: 'starting' | 'running' | 'exited' | 'dead';
  running: boolean;
  /** Its PID 1 on the host, while it runs. */
  pid?: number;
  /** The exit status of a detached one that has ended. */
  exitCode?: number;
  file?: string; command?: string[]; startedAt?: string; detached: boolean;
  ports: { hostIp: string; hostPort: number; containerPort: number; protocol: string }[];
  /** How many times its restart policy has run the command again. */
  restarts: number;
  /** @internal: what `sandbox ps` shows beside (not enumerable). */
  readonly ps?: PsColumns;
}

/** `sandbox ps`'s columns that the library's fields do not give. @internal */
export interface PsColumns {
  /** Its last PID 1 (an exited one's too), or while it starts its first process. */
  pid?: number;
  /** Its processes on the host. */
  pids: number[];
  /** Its published ports while it holds them (a sandbox whose command ended released them). */
  held: SandboxInfo['ports'];
  /** A running one whose sbx-egress has ended: closed to the network (it fails closed). */
  egressEnded: boolean;
}

async function host(): Promise<HostFeatures> { return (await import('../engine/probe')).probeHost(); }

/** The sandboxes of this user: running ones, and exited detached ones not yet removed. */
export async function list(): Promise<SandboxInfo[]> {
  const { listSandboxes, exitCode, heldPorts, statusOf } = await import('../engine/lifecycle');
  const { egressAlive } = await import('../engine/egress');
  const h = await host();
  return listSandboxes(h).map((r) => {
    const info: SandboxInfo = {
      name: r.name, status: statusOf(r),
      running: r.running, pid: r.running ? r.state?.pid : undefined, exitCode: r.exit !== undefined ? exitCode(r.exit) : undefined,
      file: r.state?.file, command: r.state?.command, startedAt: r.state?.startedAt, detached: !!r.state?.detached, ports: r.state?.ports ?? [],
      restarts: r.state?.restarts ?? 0,
    };
    const ps: PsColumns = { pid: r.state?.pid ?? r.pids[0], pids: r.pids, held: heldPorts(r), egressEnded: r.running && egressAlive(join(h.stateRoot, r.name)) === false };
    return Object.defineProperty(info, 'ps', { value: ps, enumerable: false });
  });
}

/** The CLI's part in stop, down and rm (src/cli/lifecycle.ts). @internal */
export interface CliRemoval {
  /** Hears at once when its PID 1 cannot get the stop signal, and of the kill (said on stderr). */
  say?: (n: StopNote) => void;
  /** Which volumes go: `true` named and anonymous ones (down -v), `anonymous` only those (rm -v,
   * and run --rm's, as docker run --rm); over the public `volumes`. */
  volumes?: boolean | 'anonymous';
  /** down --rm, run by the supervisor of `run -d --rm`: wait first for the CLI that started it to let go of it. */
  handover?: boolean;
  /** rm without -f: refuse a sandbox that still runs. */
  ended?: boolean;
}

/** Stops a sandbox by name (any: detached, or another process's), as `sandbox stop`. */
export async function stop(name: string, o: {
  timeout?: number;
  /** @internal */
  cli?: CliRemoval;
} = {}): Promise<{ running: boolean; killed: boolean }> {
  const { stopSandbox } = await import('../engine/lifecycle');
  try { return await stopSandbox(await host(), name, o.timeout, o.cli?.say); } catch (e) { throw lifecycleError(e); }
}

/** Stops a sandbox by name and removes everything it set up, as `sandbox down`; returns what was removed. */
export async function down(name: string, o: {
  timeout?: number; volumes?: boolean;
  /** @internal */
  cli?: CliRemoval;
} = {}): Promise<string[]> {
  const { downSandbox, findSandbox } = await import('../engine/lifecycle');
  const h = await host();
  const c = o.cli ?? {};
  try {
    if (c.ended && findSandbox(h, name).running) throw new SandboxError(MSG.rmRunning(name), 1);
    return await downSandbox(h, name, o.timeout, c.say, { volumes: c.volumes ?? o.volumes, handover: c.handover });
  } catch (e) { throw lifecycleError(e); }
}

/** An image in the store. */
export interface ImageInfo {
  reference: string; digest: string; layers: number; size: number; pulledAt: string;
  /** @internal: the store's record, as `sandbox images --json` prints it (not enumerable). */
  readonly record?: ImageRecord;
}

/** The image store: what `sandbox pull`, `images` and `rmi` do. */
export const images = {
  /** Fetches an image into the store (again, if it is there), each layer's progress to `onProgress`; resolves with its digest. */
  pull(ref: string, o: { insecureRegistries?: string[]; onProgress?: (e: PullEvent) => void } = {}): Promise<{ reference: string; digest: string }> {
    return pullImage(ref, o);
  },
  async list(): Promise<ImageInfo[]> {
    const { Store } = await import('../image/store');
    return new Store().records().map((r) => Object.defineProperty({ reference: r.reference, digest: r.manifest, layers: r.layers.length, size: r.size, pulledAt: r.pulledAt }, 'record', { value: r, enumerable: false }));
  },
  /** Forgets an image (its blobs and layers go with `sandbox image prune`); resolves with the reference it was stored as. */
  async remove(ref: string): Promise<{ reference: string }> {
    const { Store } = await import('../image/store');
    const { imageKey } = await import('../image/pull');
    const key = imageKey(ref).key;
    if (!new Store().removeRecord(key)) throw new NotFoundError(`no image ${key} in the store (sandbox images lists them)`);
    return { reference: key };
  },
};
