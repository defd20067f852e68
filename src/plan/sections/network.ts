// The network (`network`, `ports`, `dns`, `extra_hosts`): the network stage. A private network's
// host side (a veth pair, NAT and port maps in nftables; without root, a user-mode stack) is made
// by the CLI on the host; the child brings up its loopback and its address.
import { gatewayOf } from '../../model/ip';
import { HOST_PROGRAMS, missingProgram } from '../../model/tables';
import type { HostFeatures } from '../types';
import type { Compilation } from './context';
import { hostInterface, nftTable } from '../paths';
import { egressProblems, egressSteps, egressWallStep } from './egress';
import { EGRESS_DNS } from '../egress';

const VETH_MTU = 65520;

/** 5. network. */
export function networkSteps(ctx: Compilation): void {
  const { spec, add, ns } = ctx;
  const rootless = ctx.host.rootless;
  const mode = spec.network.mode;
  if (mode.value === 'host') add('network', 'net:host', 'net.host', 'use the host\'s network as it is (every interface and port of the host)', mode.src, {});
  else if (ns('net').mode === 'join') add('network', 'net:joined', 'net.joined', 'use the network of the joined namespace', ns('net').src, {});
  else {
    add('network', 'net:lo', 'net.loopback', 'bring up lo', 'default', {});
    if (mode.value === 'private' && rootless) userNet(ctx, rootless);
    else if (mode.value === 'private') vethNet(ctx);
    if (mode.value === 'private') {
      egressProblems(ctx);
      egressSteps(ctx);
      const hosts = spec.network.extraHosts.map((h) => `${h.ip} ${h.host}`);
      add('network', 'net:hosts', 'net.hosts', `write /etc/hosts (localhost, ${spec.hostname.value}${hosts.length ? `, ${spec.network.extraHosts.map((h) => h.host).join(', ')}` : ''})`, spec.network.extraHosts[0]?.src ?? 'default', { extra: hosts });
      const dns = spec.network.dns.map((d) => d.value);
      // Under egress the sandbox asks only its resolver; the file's dns: becomes that resolver's upstream.
      if (spec.network.egress) add('network', 'net:resolv', 'net.resolv', `write /etc/resolv.conf naming only the sandbox's resolver (${EGRESS_DNS}), with options edns0`, spec.network.egress.src, { servers: [EGRESS_DNS], options: ['edns0'] });
      else add('network', 'net:resolv', 'net.resolv', dns.length ? `write /etc/resolv.conf with ${dns.join(', ')}` : 'write /etc/resolv.conf from the host\'s', spec.network.dns[0]?.src ?? 'default', { servers: dns });
    } else add('network', 'net:none', 'net.none', 'no network but loopback', mode.src, {});
  }
}

/** A private network as root: a veth pair to the host, NAT, and the published ports. */
function vethNet(ctx: Compilation): void {
  const { spec, host, add, problems } = ctx;
  const mode = spec.network.mode;
  // The host's side is made with ip (the veth pair) and nft (NAT and port maps).
  for (const p of ['ip', 'nft'] as const) if (!host.programs[p]) problems.push({ src: mode.src, code: 'missing-program', message: `${missingProgram(p)}; or set \`network: none\` or \`network: host\`${mode.src === 'default' ? ' (the file has no `network`, and private is the default)' : ''}` });
  const sub = spec.network.subnet;
  const gateway = gatewayOf(sub.value);
  // A 64 KiB MTU, as loopback's (and pasta's): with 1500 the pair carries a sixth less than loopback.
  add('network', 'net:veth', 'net.veth', `join the sandbox to the host with a veth pair (${gateway} on the host's end, MTU ${VETH_MTU}), and lease an address from ${sub.value}`, mode.src, { subnet: sub.value, gateway, inside: 'eth0', mtu: VETH_MTU }, { kind: 'net.veth.remove', args: { interface: hostInterface(ctx.name) } });
  add('network', 'net:address', 'net.address', `give eth0 the leased address, with a default route through ${gateway}`, mode.src, { subnet: sub.value, gateway, interface: 'eth0' });
  add('network', 'net:nat', 'net.nat', `masquerade traffic from ${sub.value} leaving the host`, mode.src, { subnet: sub.value }, { kind: 'net.nat.remove', args: { subnet: sub.value, table: nftTable(ctx.name) } });
  egressWallStep(ctx);
  const proxy = spec.network.proxy;
  for (const p of spec.network.ports) {
    const hostSide = `${p.hostIp ? (p.hostIp.includes(':') ? `[${p.hostIp}]` : p.hostIp) : '*'}:${p.hostPort || '(free port)'}`;
    // The kernel path (nftables DNAT) is the fast one; it cannot turn IPv6 into the sandbox's IPv4.
    const v6 = p.hostIp.includes(':');
    const path = proxy.value === 'userspace' || v6 ? 'userspace' : 'kernel';
    const why = proxy.value === 'userspace' ? 'network.proxy asks for it' : v6 ? 'an IPv6 host address in front of the sandbox\'s IPv4' : 'nftables DNAT, the fast path';
    if (proxy.value === 'kernel' && v6) problems.push({ src: p.src, code: 'kernel-path-ipv6', message: `\`network.proxy: kernel\` cannot publish on the IPv6 address ${p.hostIp}: the sandbox's network is IPv4; use proxy: auto` });
    add('network', `port:${p.hostIp || '*'}:${p.hostPort || `any-${p.containerPort}`}/${p.protocol}`, 'net.port', `publish ${hostSide}/${p.protocol} on the host to port ${p.containerPort} inside (${path}: ${why})`, p.src,
      { hostIp: p.hostIp, hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol, path },
      { kind: 'net.port.remove', args: { hostIp: p.hostIp, hostPort: p.hostPort, protocol: p.protocol } });
  }
}

/** What a user-mode stack's port map does not do, on the versions this was measured with (passt
 * 2023-03-09, slirp4netns 1.2.0 with libslirp 4.7); undefined where it works whole. */
export function userNetPortCaveat(tool: 'pasta' | 'slirp4netns', p: { hostIp: string; hostPort: number; containerPort: number; protocol: 'tcp' | 'udp' }): string | undefined {
  const loopbackToo = !p.hostIp || p.hostIp === '0.0.0.0' || p.hostIp === '::' || p.hostIp.startsWith('127.') || p.hostIp === '::1';
  if (p.protocol !== 'udp' || !loopbackToo || (tool === 'pasta' && p.hostPort === p.containerPort)) return undefined;
  return tool === 'pasta'
    ? `UDP port ${p.hostPort}→${p.containerPort}: pasta does not send the sandbox's replies back to clients on the host's loopback when the port number changes; publish it as ${p.containerPort}:${p.containerPort}, or reach it on another address of the host`
    : `UDP port ${p.hostPort}→${p.containerPort}: slirp4netns does not send the sandbox's replies back to clients on the host's loopback (the sandbox may not reach the host's loopback); reach it on another address of the host, or use pasta`;
}

/** A rootless private network: a user-mode stack run as the caller (pasta, or slirp4netns where
 * pasta is missing or asked for), which also carries the published ports. */
function userNet(ctx: Compilation, rl: NonNullable<HostFeatures['rootless']>): void {
  const { spec, add, problems } = ctx;
  const { mode, cmd, proxy, subnet } = spec.network;
  // auto: pasta, unless it is missing or cannot start here (no default route to copy).
  const pastaCannot = !rl.pasta ? 'pasta is not installed' : rl.route === false ? 'this host has no default route, which pasta copies' : undefined;
  const tool = cmd.value === 'slirp4netns' || (cmd.value === 'auto' && pastaCannot && rl.slirp4netns) ? 'slirp4netns' : 'pasta';
  const binary = tool === 'pasta' ? rl.pasta : rl.slirp4netns;
  if (!binary) problems.push({ src: cmd.src === 'default' ? mode.src : cmd.src, code: 'no-usernet', message: cmd.value === 'auto' ? `a private network without root needs pasta (Debian's ${HOST_PROGRAMS.pasta.package} package) or slirp4netns, and neither is on PATH; install ${HOST_PROGRAMS.pasta.package}, or use \`network: none\` or \`network: host\`` : `\`${tool}\` is not on PATH; install Debian's ${HOST_PROGRAMS[tool].package} package, or set \`network.rootless_cmd: auto\`` });
  if (binary && !rl.tun) problems.push({ src: mode.src, code: 'no-tun', message: `${tool} makes the sandbox's interface with /dev/net/tun, which you cannot open; udev makes it mode 0666 on a usual host: run \`chmod 0666 /dev/net/tun\` as root, or use \`network: none\``, atRun: true });
  if (proxy.src !== 'default' && proxy.value !== 'auto') problems.push({ src: proxy.src, code: 'rootless-proxy', message: `\`network.proxy: ${proxy.value}\` needs root (nftables, or the CLI's forwarder on the host's veth end); without root ${tool} carries the ports: remove it` });
  if (subnet.src !== 'default') problems.push({ src: subnet.src, code: 'rootless-subnet', message: `without root the sandbox takes its address from ${tool === 'pasta' ? 'pasta, which copies the host\'s own' : 'slirp4netns (10.0.2.100/24)'}; remove \`network.subnet\`` });
  const why = cmd.value === 'auto' ? (tool === 'pasta' ? 'pasta is installed' : pastaCannot!) : 'network.rootless_cmd asks for it';
  const what = (tool === 'pasta' ? 'pasta copies the host\'s addresses and routes into it' : 'slirp4netns gives it 10.0.2.100/24, gateway 10.0.2.2')
    + (spec.network.egress ? (tool === 'pasta' ? ', IPv4 only (-4), no DNS forwarder' : ', its DNS at 10.0.2.3 off (--disable-dns)') : '');
  add('network', 'net:usernet', 'net.usernet', `join the sandbox to the host's network through ${tool}, run as you (${what}; ${why})`, mode.src, { tool, binary: binary ?? tool, mtu: VETH_MTU, ...(spec.network.egress ? { egress: true as const } : {}) }, { kind: 'net.usernet.stop', args: { tool } });
  for (const p of spec.network.ports) {
    const hostSide = `${p.hostIp ? (p.hostIp.includes(':') ? `[${p.hostIp}]` : p.hostIp) : '*'}:${p.hostPort || '(free port)'}`;
    if (!p.hostPort) problems.push({ src: p.src, code: 'rootless-free-port', message: 'without root a published port needs its host port written out (pasta and slirp4netns pick none themselves); write HOST:CONTAINER' });
    const caveat = userNetPortCaveat(tool, p);
    const carried = (tool === 'pasta' ? 'pasta: the sandbox sees the client\'s own address' : 'slirp4netns: the sandbox sees connections from the host\'s loopback come from 10.0.2.2, other clients with their own address') + (caveat ? `; ${caveat}` : '');
    add('network', `port:${p.hostIp || '*'}:${p.hostPort || `any-${p.containerPort}`}/${p.protocol}`, 'net.port', `publish ${hostSide}/${p.protocol} on the host to port ${p.containerPort} inside (${carried})`, p.src,
      { hostIp: p.hostIp, hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol, path: tool });
  }
}
