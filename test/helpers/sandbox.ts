// Helpers for tests that run the real engine: the CLI as a user runs it, host features a test
// needs (a skip fails under SANDBOX_MUST_WORK=1), and a scan for anything a run left behind.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { ROOT } from './load';

export const BIN = join(ROOT, 'bin/sandbox.js');

export function sandbox(args: string[], opts: { env?: Record<string, string>; input?: string; timeout?: number } = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', input: opts.input ?? '', env: { ...process.env, NO_COLOR: '1', CI: 'true', ...opts.env }, timeout: opts.timeout ?? 60_000 });
  return { code: r.status, signal: r.signal, out: (r.stdout ?? '').replace(/\r/g, ''), err: r.stderr ?? '' };
}

/** Skips a test whose host lacks a feature; with SANDBOX_MUST_WORK=1 (CI) a missing feature fails instead. */
export function needs(t: TestContext, feature: string, present: boolean): boolean {
  if (present) return true;
  if (process.env.SANDBOX_MUST_WORK === '1') assert.fail(`this host lacks ${feature}, which the test needs (SANDBOX_MUST_WORK=1)`);
  t.skip(`needs ${feature}`);
  return false;
}

export const isRoot = process.geteuid?.() === 0;
export const hasEngine = existsSync(join(ROOT, 'native/build/libsbx.so'));
export const hasBusyboxRoot = existsSync(join(ROOT, 'samples/rootfs/busybox/bin/busybox'));

export function cgroupLayout(): 'v1' | 'v2' {
  return existsSync('/sys/fs/cgroup/cgroup.controllers') ? 'v2' : 'v1';
}

/** Everything a sandbox named `name` could leave on the host: state folder, cgroups, mounts, processes. */
export function leftovers(name: string): string[] {
  const out: string[] = [];
  if (existsSync(`/run/sandbox/${name}`)) out.push(`state folder /run/sandbox/${name}`);
  const roots = cgroupLayout() === 'v2' ? ['/sys/fs/cgroup'] : readdirSync('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c));
  for (const r of roots) {
    if (existsSync(join(r, 'sandbox', name))) out.push(`cgroup ${join(r, 'sandbox', name)}`);
  }
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) if (line.includes(`/run/sandbox/${name}`)) out.push(`mount ${line}`);
  // Network: the host end of the veth pair and the sandbox's nftables table.
  const hostIf = `sbx${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
  if (existsSync(`/sys/class/net/${hostIf}`)) out.push(`interface ${hostIf}`);
  try {
    const tables = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });
    if (tables.includes(`sbx_${name.replace(/[^a-zA-Z0-9_]/g, '_')}\n`)) out.push(`nftables table sbx_${name}`);
  } catch { /* no nft on this host */ }
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cg = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
      if (cg.includes(`/sandbox/${name}\n`)) out.push(`process ${pid} in the sandbox's cgroup`);
    } catch { /* gone */ }
  }
  return out;
}
