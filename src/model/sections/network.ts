// The network: its mode (private by default), subnet, name servers, extra /etc/hosts entries,
// published ports (sections/ports.ts), how a rootless or proxied port is carried, and the egress
// rules (parsed by model/egress.ts, each problem on its token).
import type { UserConfig } from '../../config/types';
import type { HostEntry, SandboxSpec, Val } from '../types';
import { DEFAULT_SUBNET } from '../tables';
import { isIP } from '../ip';
import { parseRule } from '../egress';
import { D, val, type NormalizeContext, type Problem } from './context';
import { capName } from './capabilities';
import type { SpecInputs } from './inputs';
import { normalizePorts } from './ports';

type Network = SandboxSpec['network'];

/** `network: MODE` or `network: {mode: MODE}`; the net namespace follows it (sections/identity.ts). */
export function networkMode(cfg: UserConfig, ctx: NormalizeContext): Network['mode'] {
  const mode = typeof cfg.network === 'object' ? cfg.network.mode : cfg.network ?? 'private';
  return val(mode, cfg.network === undefined ? D : typeof cfg.network === 'object' ? ctx.where(['network', 'mode']) : ctx.where(['network']));
}

function dnsOf(cfg: UserConfig, ctx: NormalizeContext, problem: Problem): Val<string>[] {
  const dnsList = cfg.dns === undefined ? [] : ([] as string[]).concat(cfg.dns);
  return dnsList.map((d, i) => {
    const src = Array.isArray(cfg.dns) ? ctx.where(['dns', i]) : ctx.where(['dns']);
    if (!isIP(d)) problem(src, 'invalid-address', `\`${d}\` is not an IP address; a name server is written as an address such as 1.1.1.1`);
    return val(d, src);
  });
}

/** `extra_hosts` as HOST:IP / HOST=IP strings or a mapping; an IPv6 address may be in brackets. */
function extraHostsOf(cfg: UserConfig, ctx: NormalizeContext, problem: Problem): HostEntry[] {
  const extraHosts = (Array.isArray(cfg.extra_hosts)
    ? cfg.extra_hosts.map((e, i) => { const k = e.search(/[:=]/); return { host: e.slice(0, k), ip: e.slice(k + 1), src: ctx.where(['extra_hosts', i]) }; })
    : Object.entries(cfg.extra_hosts ?? {}).map(([host, ip]) => ({ host, ip, src: ctx.where(['extra_hosts', host]) })));
  for (const h of extraHosts) {
    const ip = h.ip.replace(/^\[(.*)\]$/, '$1');
    if (h.ip !== 'host-gateway' && !isIP(ip)) problem(h.src, 'invalid-address', `\`${h.ip}\` is not an IP address (in \`${h.host}\`)`);
    h.ip = ip;
  }
  return extraHosts;
}

/** `network.egress`: the rules in order, and the key's own place (what "no rule allowed it" cites). */
function egressOf(cfg: UserConfig, ctx: NormalizeContext, inputs: SpecInputs, problem: Problem): Network['egress'] {
  const list = typeof cfg.network === 'object' ? cfg.network.egress : undefined;
  if (list === undefined) return undefined;
  const base = ['network', 'egress'] as const;
  const rules = list.flatMap((item, i) => {
    const at = (offset: number, key?: string, index?: number) => ctx.within([...base, i, ...(key ? [key] : []), ...(index !== undefined ? [index] : [])], offset);
    const rule = parseRule(item, i + 1, ctx.where([...base, i]), at, problem);
    return rule ? [rule] : [];
  });
  // Without root the wall lives in the sandbox's own network namespace: NET_ADMIN could flush it,
  // NET_RAW send frames under it (design 3.3).
  if (inputs.rootless) (cfg.cap_add ?? []).forEach((raw, i) => {
    const n = capName(raw);
    if (n === 'NET_ADMIN' || n === 'NET_RAW' || n === 'ALL') problem(ctx.where(['cap_add', i]), 'egress-rootless-cap', `without root the egress wall lives in the sandbox's own network namespace, and ${n === 'NET_RAW' ? 'NET_RAW would send frames under it' : n === 'ALL' ? 'ALL holds NET_ADMIN, which would let it lift the wall, and NET_RAW, which sends frames under it' : 'NET_ADMIN would let it lift the wall'}; remove it, or run as root`);
  });
  return { rules, src: ctx.where(base, 'key') };
}

/** The network section; `mode` is networkMode's, shared with the net namespace. */
export function normalizeNetwork(cfg: UserConfig, ctx: NormalizeContext, inputs: SpecInputs, problem: Problem, mode: Network['mode']): Network {
  const n = typeof cfg.network === 'object' ? cfg.network : undefined;
  const subnet = n?.subnet ? val(n.subnet, ctx.where(['network', 'subnet'])) : val(DEFAULT_SUBNET, D);
  const dns = dnsOf(cfg, ctx, problem);
  const extraHosts = extraHostsOf(cfg, ctx, problem);
  const ports = normalizePorts(cfg, ctx, inputs, problem);
  const egress = egressOf(cfg, ctx, inputs, problem);
  return {
    mode, subnet, dns, extraHosts, ports, ...(egress ? { egress } : {}),
    proxy: n?.proxy ? val(n.proxy, ctx.where(['network', 'proxy'])) : val('auto', D),
    cmd: n?.rootless_cmd ? val(n.rootless_cmd, ctx.where(['network', 'rootless_cmd'])) : val('auto', D),
  };
}
