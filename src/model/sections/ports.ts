// Published ports: Docker's short form [HOST_IP:][HOST:]CONTAINER[/PROTO] with ranges and IPv6
// in brackets, or the long form; every address and a free host port by default, tcp by default.
// `up -p` replaces the file's port for the same container port and protocol.
import type { UserConfig } from '../../config/types';
import type { PortSpec, Source } from '../types';
import { isIP } from '../ip';
import type { NormalizeContext, Problem, SpecInputs } from './context';

type PortEntry = NonNullable<UserConfig['ports']>[number];

function parseRange(s: string | number): [number, number] | undefined {
  const m = /^([0-9]+)(?:-([0-9]+))?$/.exec(String(s));
  if (!m) return undefined;
  const a = Number(m[1]), b = Number(m[2] ?? m[1]);
  return a >= 0 && b <= 65535 && a <= b ? [a, b] : undefined;
}

interface Parsed { ip: string; host?: [number, number]; ctr?: [number, number]; proto: 'tcp' | 'udp' }

/** The entry's parts, unchecked; undefined (with the problem said) when it has too many colons. */
function parsePort(p: PortEntry, src: Source, problem: Problem): Parsed | undefined {
  if (typeof p === 'object') {
    return { ip: p.host_ip ?? '', ctr: parseRange(p.target), host: p.published === undefined ? [0, 0] : parseRange(p.published), proto: p.protocol ?? 'tcp' };
  }
  let s = String(p), ip = '', proto: 'tcp' | 'udp' = 'tcp';
  const slash = s.lastIndexOf('/');
  if (slash >= 0) { proto = s.slice(slash + 1) as 'tcp' | 'udp'; s = s.slice(0, slash); }
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    ip = s.slice(1, close);
    s = s.slice(close + 2);
  }
  const parts = s.split(':');
  if (parts.length > 3 || (parts.length === 3 && ip)) { problem(src, 'invalid-port', `\`${p}\` has too many colons; write an IPv6 address in brackets, as [::1]:8080:80`); return undefined; }
  if (parts.length === 3) ip = parts.shift()!;
  const ctr = parseRange(parts.pop()!);
  const host: [number, number] | undefined = parts.length ? (parts[0] === '' ? [0, 0] : parseRange(parts[0]!)) : [0, 0];
  return { ip, host, ctr, proto };
}

/** Which part of an entry is not a port, in the user's words: `abc` is no port at all, 99999 is out of range. */
function badPortMessage(p: PortEntry): string {
  const shown = typeof p === 'object' ? JSON.stringify(p) : p;
  const parts = typeof p === 'object' ? [p.published ?? '', p.target] : String(p).replace(/\/(tcp|udp)$/, '').replace(/^\[[^\]]*\]:/, '').split(':').slice(-2);
  const bad = parts.map(String).find((x) => x !== '' && !/^[0-9]+(-[0-9]+)?$/.test(x));
  const high = parts.map(String).flatMap((x) => x.split('-')).find((x) => /^[0-9]+$/.test(x) && (Number(x) > 65535));
  const reversed = parts.map(String).find((x) => /^([0-9]+)-([0-9]+)$/.test(x) && Number(x.split('-')[0]) > Number(x.split('-')[1]));
  return bad !== undefined ? `\`${shown}\`: \`${bad}\` is not a port; write a number from 1 to 65535, or a range such as 8000-8010`
    : high !== undefined ? `\`${shown}\`: ${high} is not a port: ports go from 1 to 65535`
    : reversed !== undefined ? `\`${shown}\`: the range ${reversed} goes backwards; write the lower port first`
    : `\`${shown}\` has a port outside 1-65535`;
}

/** One entry as the ports it publishes (a range is one port each), or none with its problem said. */
function portsOf(p: PortEntry, src: Source, problem: Problem): PortSpec[] {
  const parsed = parsePort(p, src, problem);
  if (!parsed) return [];
  const { ip, host, ctr, proto } = parsed;
  if (ip && !isIP(ip)) { problem(src, 'invalid-address', `\`${ip}\` is not an IP address; use an address such as 127.0.0.1 or [::1]`); return []; }
  if (!ctr || !host || ctr[0] === 0) { problem(src, 'invalid-port', badPortMessage(p)); return []; }
  const n = ctr[1] - ctr[0];
  if (host[0] !== 0 && host[1] - host[0] !== n) { problem(src, 'invalid-port', `\`${typeof p === 'object' ? `${p.published}:${p.target}` : p}\`: the host range has ${host[1] - host[0] + 1} ports and the container range ${n + 1}; make them the same length`); return []; }
  const out: PortSpec[] = [];
  for (let k = 0; k <= n; k++) out.push({ hostIp: ip, hostPort: host[0] === 0 ? 0 : host[0] + k, containerPort: ctr[0] + k, protocol: proto, src });
  return out;
}

export function normalizePorts(cfg: UserConfig, ctx: NormalizeContext, inputs: SpecInputs, problem: Problem): PortSpec[] {
  const ports = (cfg.ports ?? []).flatMap((p, i) => portsOf(p, ctx.where(['ports', i]), problem));
  const cliPorts = (inputs.overrides?.ports ?? []).flatMap((o) => portsOf(o.value, o.src, problem));
  const replaced = (f: PortSpec) => cliPorts.some((q) => q.containerPort === f.containerPort && q.protocol === f.protocol);
  return [...ports.filter((f) => !replaced(f)), ...cliPorts];
}
