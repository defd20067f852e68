// Test helpers for audit and diff: a config's text → its exposure facts, through the same
// pure pipeline as the CLI (load, compile on a fixed host, locate defaults in the file).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/parse';
import { compile } from '../../src/plan/compile';
import { exposureFacts, locatorOf, type ExposureFacts } from '../../src/audit/facts';
import type { HostFeatures } from '../../src/plan/types';
import { HYBRID_HOST, ROOT, loadText, fakeFs } from './load';

export function factsOf(text: string, opts: { file?: string; host?: HostFeatures; files?: Record<string, string> } = {}): ExposureFacts {
  const file = opts.file ?? 'sandbox.yml';
  // A home with a credential and a project with git hooks, for `paths`' defaults and findings.
  const r = loadText(text, { file, files: opts.files, fs: fakeFs(['/home/user/.ssh/id_ed25519', '/project/.git/hooks/', '/project/src/']) });
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.line}:${d.col} ${d.message}`), [], `valid:\n${text}`);
  const { plan } = compile(r.spec!, opts.host ?? HYBRID_HOST);
  const parsed = parseConfig(file, Buffer.from(text));
  return exposureFacts(plan, r.spec!, locatorOf(file, parsed.value, parsed.locate));
}

export const sampleText = (name: string) => readFileSync(join(ROOT, 'samples', name), 'utf8');

/** A config with no finding at all: the lines each test replaces or adds to. */
export const LOCKED: Record<string, string> = {
  version: 'version: 1',
  command: 'command: [x]',
  user: 'user: "1000:1000"',
  network: 'network: none',
  security: 'security: {read_only: true}',
  resources: 'resources: {memory: 64m, pids: 32, cpus: 1}',
};

/** LOCKED with some lines replaced (by key) and others added after line 6, in order. */
export function locked(over: Record<string, string | null> = {}): string {
  const keys = [...Object.keys(LOCKED), ...Object.keys(over).filter((k) => !(k in LOCKED))];
  return keys.map((k) => (k in over ? over[k] : LOCKED[k])).filter((l): l is string => l !== null).join('\n') + '\n';
}
