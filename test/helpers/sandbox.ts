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
    // An egress policy's wall.
    if (tables.includes(`sbx_${name.replace(/[^a-zA-Z0-9_]/g, '_')}_eg\n`)) out.push(`nftables table inet sbx_${name}_eg`);
  } catch { /* no nft on this host */ }
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cg = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
      if (cg.includes(`/sandbox/${name}\n`)) out.push(`process ${pid} in the sandbox's cgroup`);
      // sbx-egress runs beside the sandbox, named by its state folder (a zombie holds nothing).
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`/run/sandbox/${name}\0`) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) out.push(`process ${pid} (${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()}) of the sandbox's state folder`);
    } catch { /* gone */ }
  }
  return out;
}

export const hasNft = (() => { try { execFileSync('nft', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; } })();

/** The host's view that a run must leave as it was: links, nftables rules, listening sockets,
 * ip_forward, mounts, the sandboxes' state root, cgroups, network namespaces in use, and
 * supervisors. */
export function hostSnapshot(): string {
  const links = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }).split('\n').map((l) => l.split(':')[1]?.trim().split('@')[0]).filter(Boolean).sort().join(' ');
  const rules = execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8' });
  const listening = execFileSync('ss', ['-Hlntu'], { encoding: 'utf8' }).split('\n').map((l) => l.split(/\s+/).slice(0, 5).join(' ')).sort().join('\n');
  // /run/netns is mounted by `ip netns add` (tests that make an outside host), once, and stays.
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => !m.startsWith('/run/netns')).sort().join('\n');
  let state: string[] = [];
  try { state = readdirSync('/run/sandbox').filter((n) => n !== '.ip_forward').sort(); } catch { /* none yet */ }
  const roots = cgroupLayout() === 'v2' ? ['/sys/fs/cgroup'] : readdirSync('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c));
  const cgroups = roots.flatMap((r) => { try { return readdirSync(join(r, 'sandbox')).filter((n) => !n.includes('.')).map((n) => `${r}/sandbox/${n}`); } catch { return []; } });
  const netns = new Set<string>();
  const supervisors: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try { netns.add(require('node:fs').readlinkSync(`/proc/${pid}/ns/net`)); } catch { /* gone, or a kernel thread */ }
    // A finished supervisor waits as a zombie until the host's init reaps it: it holds nothing.
    try { const st = readFileSync(`/proc/${pid}/stat`, 'utf8'); if (/^\d+ \(sbx-[^)]*\) [^Z]/.test(st)) supervisors.push(st.split(' ').slice(0, 2).join(' ')); } catch { /* gone */ }
  }
  return [links, rules, listening, readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), mounts, `state: ${state.join(' ')}`, `cgroups: ${cgroups.join(' ')}`, `netns: ${netns.size}`, `sbx processes: ${supervisors.join(', ')}`].join('\n');
}
