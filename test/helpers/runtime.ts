// sandbox-runtime as its callers run it, for the runtime's integration tests: a bundle with the
// config.json `runc spec` writes (test/unit/fixtures/oci) over the busybox root, the runtime called
// with its own --root and a JSON --log in a scratch folder (stdout and stderr to files, which the
// container inherits, as the shim gives them), and its state read back.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './load';
import { hasBusyboxRoot, hasEngine, isRoot, needs } from './sandbox';

/** The installed command (package.json `bin`): the native front-end, which execs Node for what it does not serve. */
export const RUNTIME = join(ROOT, 'bin/sandbox-runtime');
/** The Node side alone (what the front-end execs), to compare the two. */
export const RUNTIME_NODE = join(ROOT, 'bin/sandbox-runtime.js');
export const BUSYBOX = join(ROOT, 'samples/rootfs/busybox');
export const ready = (t: Parameters<typeof needs>[0]) => needs(t, 'root', isRoot) && needs(t, 'the native engine', hasEngine) && needs(t, 'the busybox root (busybox-static)', hasBusyboxRoot);

/** A bundle as `runc spec` writes it, over the busybox root, running `script`. */
export function bundle(dir: string, script: string, change: (c: Record<string, any>) => void = () => undefined, name = 'bundle'): string {
  const b = join(dir, name);
  mkdirSync(b);
  const c = JSON.parse(readFileSync(join(ROOT, 'test/unit/fixtures/oci/runc-spec.json'), 'utf8'));
  c.root.path = BUSYBOX;
  c.process.terminal = false;
  c.process.args = ['sh', '-c', script];
  c.hostname = 'rt-test';
  change(c);
  writeFileSync(join(b, 'config.json'), JSON.stringify(c, null, '\t'));
  return b;
}

/** sandbox-runtime as the shim calls it, stdout and stderr to files the container inherits; `input` on its stdin. */
export function rt(dir: string, args: string[], out?: string, input?: string) {
  const o = openSync(out ?? join(dir, 'rt.out'), 'a');
  const e = openSync(join(dir, 'rt.err'), 'w');
  try {
    const r = spawnSync(RUNTIME, ['--root', join(dir, 'root'), '--log', join(dir, 'log.json'), '--log-format', 'json', ...args], { stdio: [input === undefined ? 'ignore' : 'pipe', o, e], input, timeout: 30_000 });
    return { code: r.status, err: readFileSync(join(dir, 'rt.err'), 'utf8') };
  } finally { closeSync(o); closeSync(e); }
}

/** A command whose stdout is wanted (ps, exec in the foreground): stdout to a file of its own. */
export function rtOut(dir: string, args: string[], input?: string) {
  const f = join(dir, `out-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  const r = rt(dir, args, f, input);
  return { ...r, out: readFileSync(f, 'utf8') };
}

export function state(dir: string, id: string) {
  const r = spawnSync(RUNTIME, ['--root', join(dir, 'root'), 'state', id], { encoding: 'utf8' });
  return { code: r.status, json: r.status === 0 ? JSON.parse(r.stdout) : undefined, err: r.stderr };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export async function until(what: string, f: () => boolean, ms = 5000) {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(20)) if (f()) return;
  assert.fail(`timed out waiting for ${what}`);
}

/** A field of /proc/PID/status. */
export const statusField = (pid: number, k: string) => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]?.trim();
