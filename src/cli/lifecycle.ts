// Commands about sandboxes that run (or ran): ps, logs, stop, down, gc. They read the state that
// the engine and the supervisor keep under /run/sandbox; they run in the CLI process as root.
import type { Command } from 'commander';
import { existsSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { HostFeatures } from '../plan/types';
import { probeHost } from '../engine/probe';
import { cgroupOf, exitCode, listSandboxes, orphanTables, reclaim, type Listed } from '../engine/state';
import { removeTable } from '../engine/network';

export class LifecycleError extends Error { constructor(message: string, readonly code: number) { super(message); } }

function find(host: HostFeatures, name: string): Listed {
  const row = listSandboxes(host).find((r) => r.name === name);
  if (!row) throw new LifecycleError(`no sandbox named ${name} (sandbox ps -a lists them)`, 1);
  return row;
}

/** running once its command has started (state.json is written then); starting while being set up. */
const word = (r: Listed) => (r.running ? (r.state ? 'running' : 'starting') : r.exit !== undefined ? 'exited' : 'dead');
const status = (r: Listed) => (word(r) === 'exited' ? `exited (${exitCode(r.exit!)})` : word(r) === 'dead' ? 'dead (sandbox gc)' : word(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** stop_signal, then SIGKILL after the grace period, as docker stop; resolves once nothing of it runs. */
export async function stop(host: HostFeatures, name: string, graceMs?: number): Promise<boolean> {
  const row = find(host, name);
  if (!row.running || !row.state) return false;
  const cg = cgroupOf(host, name);
  const pid = row.state.pid;
  const signal = row.state.stopSignal ?? 15;
  const grace = graceMs ?? row.state.stopGraceMs ?? 10_000;
  try { process.kill(pid, signal); } catch { /* gone */ }
  for (const until = Date.now() + grace; Date.now() < until && cg.pids().length; ) await sleep(20);
  // PID 1 of its pid namespace: killing it kills every process in the sandbox.
  if (cg.pids().length) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  for (const until = Date.now() + 5000; Date.now() < until && cg.pids().length; ) await sleep(20);
  // The supervisor writes the exit status as it leaves.
  const sup = row.state.supervisorPid;
  for (const until = Date.now() + 2000; sup && Date.now() < until && alive(sup); ) await sleep(10);
  return true;
}

function alive(pid: number): boolean { try { process.kill(pid, 0); return true; } catch { return false; } }

function printLog(path: string, from: number, opts: { timestamps?: boolean; tail?: number }): number {
  let fd: number;
  try { fd = openSync(path, 'r'); } catch { return from; }
  const size = statSync(path).size;
  const buf = Buffer.alloc(Math.max(0, size - from));
  readSync(fd, buf, 0, buf.length, from);
  closeSync(fd);
  const text = buf.toString('utf8');
  const end = text.lastIndexOf('\n') + 1;
  let lines = text.slice(0, end).split('\n').filter(Boolean);
  if (opts.tail !== undefined) lines = lines.slice(Math.max(0, lines.length - opts.tail));
  for (const l of lines) {
    const m = /^(\S+) (stdout|stderr) (.*)$/s.exec(l);
    if (!m) continue;
    const out = `${opts.timestamps ? `${m[1]} ` : ''}${m[3]}\n`;
    (m[2] === 'stderr' ? process.stderr : process.stdout).write(out);
  }
  return from + Buffer.byteLength(text.slice(0, end));
}

export function registerLifecycle(program: Command, nameOfFile: (file: string) => Promise<string>): void {
  program.command('ps').description('list sandboxes: their name, status, host PID, uptime, command and ports')
    .option('-a, --all', 'also list exited ones and what crashed runs left')
    .option('--json', 'print the list as JSON')
    .action((o: { all?: boolean; json?: boolean }) => {
      const rows = listSandboxes(probeHost()).filter((r) => o.all || r.running);
      if (o.json) {
        process.stdout.write(JSON.stringify(rows.map((r) => ({
          name: r.name, status: word(r), exitCode: r.exit !== undefined ? exitCode(r.exit) : null,
          pid: r.state?.pid ?? r.pids[0] ?? null, pids: r.pids, detached: r.state?.detached ?? false, startedAt: r.state?.startedAt ?? null,
          command: r.state?.command ?? null, file: r.state?.file ?? null, ports: r.state?.ports ?? [],
        })), null, 2) + '\n');
        return;
      }
      const age = (iso?: string) => {
        if (!iso) return '-';
        const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
        return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
      };
      const port = (p: { hostIp: string; hostPort: number; containerPort: number; protocol: string }) => `${p.hostIp.includes(':') ? `[${p.hostIp}]` : p.hostIp || '*'}:${p.hostPort}->${p.containerPort}/${p.protocol}`;
      const table = [['NAME', 'STATUS', 'PID', 'UP', 'COMMAND', 'PORTS'], ...rows.map((r) => [r.name, status(r), String(r.state?.pid ?? r.pids[0] ?? '-'), r.running ? age(r.state?.startedAt) : '-', (r.state?.command ?? []).join(' ').slice(0, 40) || '-', (r.state?.ports ?? []).map(port).join(', ') || '-'])];
      const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
      process.stdout.write(table.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n');
    });

  program.command('logs').argument('<name>', 'a sandbox started with up -d')
    .description('print what a detached sandbox wrote on stdout and stderr')
    .option('-f, --follow', 'keep printing until the sandbox exits')
    .option('-n, --tail <lines>', 'only the last N lines', (v) => Number(v))
    .option('-t, --timestamps', 'show when each line was written')
    .action(async (name: string, o: { follow?: boolean; tail?: number; timestamps?: boolean }) => {
      const host = probeHost();
      find(host, name);
      const path = join(host.stateRoot, name, 'log');
      let at = printLog(path, 0, o);
      while (o.follow) {
        const running = find(host, name).running;
        await sleep(100);
        at = printLog(path, at, { timestamps: o.timestamps });
        if (!running) break;
      }
    });

  program.command('stop').argument('<name>', 'a running sandbox')
    .description('send its stop_signal, then SIGKILL after the grace period')
    .option('-t, --time <seconds>', 'the grace period (default: its stop_grace_period)', (v) => Number(v))
    .action(async (name: string, o: { time?: number }) => {
      const host = probeHost();
      if (!(await stop(host, name, o.time !== undefined ? o.time * 1000 : undefined))) throw new LifecycleError(`${name} is not running`, 1);
      process.stdout.write(`${name}\n`);
    });

  program.command('down').argument('<name|file>', 'a sandbox name, or its config file')
    .description('stop a sandbox and remove everything it set up on the host')
    .option('-t, --time <seconds>', 'the grace period before SIGKILL', (v) => Number(v))
    .action(async (arg: string, o: { time?: number }) => {
      const host = probeHost();
      const name = /\.(ya?ml|json)$/.test(arg) || (existsSync(arg) && statSync(arg).isFile()) ? await nameOfFile(arg) : arg;
      find(host, name);
      await stop(host, name, o.time !== undefined ? o.time * 1000 : undefined);
      if (cgroupOf(host, name).pids().length) throw new LifecycleError(`${name} would not stop; nothing was removed`, 1);
      await reclaim(host, name);
      process.stdout.write(`${name}\n`);
    });

  program.command('gc').description('remove what crashed runs left: state folders, cgroups, interfaces and nftables tables with no live process')
    .action(async () => {
      const host = probeHost();
      const removed: string[] = [];
      // Exited detached sandboxes are kept for their logs until `down`; only crashed runs go.
      for (const r of listSandboxes(host)) if (!r.running && r.exit === undefined) removed.push(...(await reclaim(host, r.name)).map((x) => `${r.name}: ${x}`));
      for (const t of orphanTables(host)) { removeTable(t); removed.push(`nftables table ${t} (no state folder)`); }
      process.stdout.write(removed.length ? removed.map((x) => `removed ${x}`).join('\n') + '\n' : 'nothing to remove\n');
    });
}
