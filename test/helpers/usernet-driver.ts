// The CLI's part in the rootless network tests and bench, run as a made user (node
// build/test/helpers/usernet-driver.js JSON): it starts a "sandbox" (a process in a new user and
// network namespace, mapped to root inside, as the engine's child is) and attaches pasta or
// slirp4netns to it with src/engine/rootless-net, then does what the test says on stdin. Each
// report is one JSON line on stdout. The sandbox is left running when the driver ends, as a
// detached sandbox outlives the CLI.
import { spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { onPath } from '../../src/engine/probe';
import { startPasta, startSlirp4netns, stopRecorded, type UserNet, type UserNetPort } from '../../src/host/rootless-net';

export type DriverConfig =
  | { mode: 'start'; tool: 'pasta' | 'slirp4netns'; ports: UserNetPort[]; stateDir: string; mtu?: number; sandbox: string[] }
  | { mode: 'stop-recorded'; stateDir: string };

const say = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');

async function main(): Promise<void> {
  const c = JSON.parse(process.argv[2]!) as DriverConfig;
  if (c.mode === 'stop-recorded') { say({ event: 'stopRecorded', found: await stopRecorded(c.stateDir) }); return; }

  // The sandbox: unshare execs the command, so its PID is the one the tool attaches to.
  const box = spawn('unshare', ['--user', '--map-root-user', '--net', ...c.sandbox], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  box.unref();
  const ok = await new Promise<boolean>((resolve) => {
    let out = '';
    box.stdout!.on('data', (d) => { out += d; if (out.includes('ready')) resolve(true); });
    box.once('exit', () => resolve(false));
  });
  box.stdout!.destroy();
  if (!ok) { say({ event: 'error', message: `the sandbox ${c.sandbox.join(' ')} did not start` }); return; }
  const netns = readlinkSync(`/proc/${box.pid}/ns/net`);
  const binary = onPath(c.tool);
  if (!binary) { say({ event: 'error', message: `${c.tool} is not on PATH` }); return; }
  const t0 = process.hrtime.bigint();
  let net: UserNet;
  try {
    net = await (c.tool === 'pasta' ? startPasta : startSlirp4netns)({ pid: box.pid!, ports: c.ports, mtu: c.mtu ?? 65520, stateDir: c.stateDir, binary });
  } catch (e) {
    say({ event: 'error', message: (e as Error).message, target: box.pid, netns });
    return;
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  say({ event: 'started', ms, target: box.pid, netns, net: { ...net, stop: undefined } });
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'stop') {
      const t1 = process.hrtime.bigint();
      await net.stop();
      await net.stop(); // a second call does nothing
      say({ event: 'stopped', ms: Number(process.hrtime.bigint() - t1) / 1e6 });
    } else if (line === 'exit') break;
  }
}

main().then(() => process.exit(0), (e) => { say({ event: 'error', message: String(e?.stack ?? e) }); process.exit(1); });
