// The host side of `network: private`, in the CLI process as root: an address lease, the veth
// pair (the sandbox's end goes into its network namespace as eth0), and one nftables table per
// sandbox holding its outbound NAT and its port maps, so that removing the table removes them all.
import { mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync, existsSync, unlinkSync } from 'node:fs';
import type { Server } from 'node:net';
import type { Socket as UdpSocket } from 'node:dgram';
import { join } from 'node:path';
import { intToIp, parseSubnet } from '../model/ip';
import { missingProgram, type HostProgram } from '../model/tables';
import { withLock } from './lock';

/** node:child_process, loaded when a program is first run: a sandbox with no network runs none, and the module costs ms at start-up. */
const childProcess = () => require('node:child_process') as typeof import('node:child_process');
/** Runs ip or nft; one that is not installed (compile refuses the plan then, so only if PATH
 * changed since the probe) is said with its package, not as a bare ENOENT. */
function run(program: HostProgram, args: string[], opts: import('node:child_process').ExecFileSyncOptions): void {
  try { childProcess().execFileSync(program, args, opts); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(missingProgram(program));
    throw e;
  }
}
/** node:dgram and node:net's servers, loaded when a port is published. */
const dgram = () => require('node:dgram') as typeof import('node:dgram');
const net = () => require('node:net') as typeof import('node:net');

/** The names compile gives the host end and the table (the plan records them in its undo data). */
export { hostInterface, nftTable } from '../plan/paths';

/** Leases and the forwarding switch are shared by every sandbox: one lock for both. */
export const netLock = (stateRoot: string) => join(stateRoot, '.net.lock');

/** Takes the lowest free address of the subnet: leases are the `ip` files of live state folders. */
export async function leaseAddress(stateRoot: string, stateDir: string, cidr: string): Promise<string> {
  return withLock(netLock(stateRoot), () => {
    const taken = new Set<string>();
    for (const d of readdirSync(stateRoot)) {
      try { taken.add(readFileSync(join(stateRoot, d, 'ip'), 'utf8').trim()); } catch { /* no lease */ }
    }
    const { base, prefix } = parseSubnet(cidr);
    const size = 2 ** (32 - prefix);
    for (let i = 2; i < size - 1; i++) {
      const ip = intToIp(base + i);
      if (!taken.has(ip)) { writeFileSync(join(stateDir, 'ip'), ip); return ip; }
    }
    throw Object.assign(new Error(`every address of ${cidr} is taken; give this sandbox another subnet`), { code: 'EADDRNOTAVAIL' });
  });
}

export function createVeth(pid: number, hostIf: string, gateway: string, ip: string, localnet: boolean, mtu: number): void {
  // One `ip` process for the whole host side; the sandbox's end is configured by the child itself.
  run('ip', ['-batch', '-'], { input: [
    `link add ${hostIf} mtu ${mtu} type veth peer name eth0 mtu ${mtu} netns ${pid}`,
    `addr add ${gateway}/32 dev ${hostIf}`,
    `link set ${hostIf} up`,
    `route add ${ip}/32 dev ${hostIf}`,
  ].join('\n') + '\n', stdio: ['pipe', 'ignore', 'pipe'] });
  // Traffic to a published port on 127.0.0.1 leaves through this interface with a loopback source.
  if (localnet) writeFileSync(`/proc/sys/net/ipv4/conf/${hostIf}/route_localnet`, '1');
  // The network is IPv4 only: no link-local IPv6 address on the host's end for the sandbox to reach
  // the host's services on :: through (the child turns eth0's off too). Absent without IPv6.
  const v6 = `/proc/sys/net/ipv6/conf/${hostIf}/disable_ipv6`;
  if (existsSync(v6)) writeFileSync(v6, '1');
}

export function removeVeth(hostIf: string): void {
  if (!existsSync(`/sys/class/net/${hostIf}`)) return;
  try { childProcess().execFileSync('ip', ['link', 'del', hostIf], { stdio: 'ignore' }); } catch { /* gone with the namespace */ }
}

export interface PortRule { hostIp: string; hostPort: number; containerPort: number; protocol: 'tcp' | 'udp' }

export function nft(script: string): void {
  run('nft', ['-f', '-'], { input: script, stdio: ['pipe', 'ignore', 'pipe'] });
}

export function natTable(table: string, hostIf: string, ip: string): string {
  return [
    `table ip ${table} {`,
    `  chain prerouting { type nat hook prerouting priority dstnat; policy accept; }`,
    `  chain output { type nat hook output priority -100; policy accept; }`,
    `  chain postrouting { type nat hook postrouting priority srcnat; policy accept;`,
    `    ip saddr ${ip} oifname != "${hostIf}" masquerade`,
    `    oifname "${hostIf}" ip saddr 127.0.0.0/8 masquerade`,
    `  }`,
    `  chain forward { type filter hook forward priority filter; policy accept;`,
    `    iifname "${hostIf}" accept`,
    `    oifname "${hostIf}" ip daddr ${ip} accept`,
    `  }`,
    `}`,
  ].join('\n') + '\n';
}

export function portRules(table: string, ip: string, ports: PortRule[]): string {
  const lines: string[] = [];
  for (const p of ports) {
    const dst = p.hostIp ? `ip daddr ${p.hostIp}` : 'fib daddr type local';
    for (const chain of ['prerouting', 'output']) lines.push(`add rule ip ${table} ${chain} ${dst} ${p.protocol} dport ${p.hostPort} dnat to ${ip}:${p.containerPort}`);
  }
  return lines.join('\n') + '\n';
}

export function removeTable(table: string): void {
  try { childProcess().execFileSync('nft', ['delete', 'table', 'ip', table], { stdio: 'ignore' }); } catch { /* not there */ }
}

/** Outbound NAT needs forwarding; it is turned on only if it was off, and back off when the last sandbox leaves. */
export async function enableForwarding(stateRoot: string): Promise<void> {
  await withLock(netLock(stateRoot), () => {
    if (readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() === '0') {
      writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
      writeFileSync(join(stateRoot, '.ip_forward'), '0');
    }
  });
}

export async function restoreForwarding(stateRoot: string, stateDir: string): Promise<void> {
  await withLock(netLock(stateRoot), () => {
    const marker = join(stateRoot, '.ip_forward');
    if (!existsSync(marker)) return;
    const others = readdirSync(stateRoot).some((d) => join(stateRoot, d) !== stateDir && existsSync(join(stateRoot, d, 'ip')));
    if (others) return;
    writeFileSync('/proc/sys/net/ipv4/ip_forward', readFileSync(marker, 'utf8').trim());
    unlinkSync(marker);
  });
}

/** The descriptor under a Node socket or server (libuv's, on Linux), for handing it to another
 * process; -1 where Node does not say. A UDP socket keeps its handle in Node's state (under the
 * symbol described 'state symbol'): its `_handle` getter is deprecated (DEP0112) and would print
 * a warning on the user's stderr. A TCP server's is its `_handle`. */
const fdOf = (o: object): number => {
  const state = Object.getOwnPropertySymbols(o).find((k) => k.description === 'state symbol');
  const handle = state ? (o as Record<symbol, { handle?: { fd?: number } } | undefined>)[state]?.handle : (o as { _handle?: { fd?: number } })._handle;
  return handle?.fd ?? -1;
};

/** Binds a published port on the host for as long as the sandbox publishes it, so that no host
 * program can take it and be shadowed by the port map: `fd` is the socket's descriptor, which the
 * supervisor of a detached sandbox inherits and keeps until the command ends for good. */
export async function reservePort(p: PortRule): Promise<{ port: number; fd: number; close(): Promise<void> }> {
  if (p.protocol === 'udp') {
    const s: UdpSocket = dgram().createSocket({ type: p.hostIp.includes(':') ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => { s.once('error', reject); s.bind({ port: p.hostPort, address: p.hostIp || '0.0.0.0', exclusive: true }, () => resolve()); });
    s.unref();
    let closed: Promise<void> | undefined;
    return { port: s.address().port, fd: fdOf(s), close: () => (closed ??= new Promise<void>((r) => s.close(() => r()))) };
  }
  const srv: Server = net().createServer();
  await new Promise<void>((resolve, reject) => { srv.once('error', reject); srv.listen({ port: p.hostPort, host: p.hostIp || '0.0.0.0', exclusive: true, backlog: 1 }, () => resolve()); });
  srv.unref();
  let closed: Promise<void> | undefined;
  return { port: (srv.address() as { port: number }).port, fd: fdOf(srv), close: () => (closed ??= new Promise<void>((r) => srv.close(() => r()))) };
}

export function hostsFile(hostname: string, ip: string | undefined, extra: string[]): string {
  return ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', ...(ip ? [`${ip}\t${hostname}`] : []), ...extra.map((e) => e.replace(' ', '\t')), ''].join('\n');
}

export function resolvConf(servers: string[], options?: string[]): string {
  let list = servers;
  if (!list.length) {
    // The host's own name servers, less loopback ones, which mean something else inside.
    try { list = readFileSync('/etc/resolv.conf', 'utf8').split('\n').map((l) => /^nameserver\s+(\S+)/.exec(l)?.[1]).filter((x): x is string => !!x && !x.startsWith('127.') && x !== '::1'); } catch { list = []; }
  }
  return [...list.map((s) => `nameserver ${s}`), ...(options?.length ? [`options ${options.join(' ')}`] : [])].join('\n') + '\n';
}
