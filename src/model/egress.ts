// Egress rules (`network.egress`): the parser of a rule's short form ("allow registry.npmjs.org:443",
// "deny 169.254.0.0/16", "allow [2001:db8::/32]:443") and long form ({action, host|cidr, ports,
// protocol}) into EgressRule, each error located on its token; and the pure functions that
// normalize's rules, compile, the tests and the C resolver's model share (design 4.2): covers and
// shadowing, nameAllowed (the resolver's answer), verdict (a connection's), decidable (which cidr
// rules the kernel alone can judge), and the Public Suffix List check of wildcards.
// Pure: no file system, no environment. The list is a module generated at build (data/).
import { domainToASCII } from 'node:url';
import { ICANN_SUFFIXES, PRIVATE_SUFFIXES } from './generated/public-suffixes';
import { isIP, ipToInt } from './ip';
import type { EgressRule, EgressTarget, PortRange, Source } from './types';

/** How the parser reports a problem: where, a stable code, the sentence. */
export type Say = (at: Source, code: string, message: string) => void;

/** Where a character of a rule is: `offset` into the short-form string (no key), or into the
 * string value of a long-form key (`index`: an item of a `ports` list). */
export type RuleAt = (offset: number, key?: 'host' | 'cidr' | 'ports' | 'protocol', index?: number) => Source;

/** A rule's long form, as the schema admits it. */
export interface LongRule {
  action: 'allow' | 'deny';
  host?: string;
  cidr?: string;
  ports?: number | string | (number | string)[];
  protocol?: 'tcp' | 'udp';
}

type CidrTarget = Extract<EgressTarget, { type: 'cidr' }>;
type HostTarget = Extract<EgressTarget, { type: 'host' }>;
type Proto = EgressRule['protocols'][number];

export const ALL_PORTS: readonly PortRange[] = [{ from: 1, to: 65535 }];
/** A host rule without `ports`: every TCP port but DNS (53) and DNS over TLS (853), which must be
 * listed to be allowed (design 4.3). */
export const HOST_PORTS: readonly PortRange[] = [{ from: 1, to: 52 }, { from: 54, to: 852 }, { from: 854, to: 65535 }];
/** Addresses refused unless an allow cidr rule inside the class names them (contract 4): the
 * fixed ones. The caller adds the sandbox's subnet and the host's own addresses. */
export const REFUSED_CLASSES: readonly string[] = ['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '255.255.255.255/32'];

// ---- ports ----

/** Sorted, overlapping and adjacent ranges merged. */
export function mergePorts(list: readonly PortRange[]): PortRange[] {
  const out: PortRange[] = [];
  for (const r of [...list].sort((a, b) => a.from - b.from)) {
    const last = out.at(-1);
    if (last && r.from <= last.to + 1) last.to = Math.max(last.to, r.to);
    else out.push({ ...r });
  }
  return out;
}
export const portsText = (ports: readonly PortRange[]): string => ports.map((r) => (r.from === r.to ? `${r.from}` : `${r.from}-${r.to}`)).join(',');
const inPorts = (ports: readonly PortRange[], p: number) => ports.some((r) => p >= r.from && p <= r.to);
/** Every port of `b` is in `a`. */
export const portsContain = (a: readonly PortRange[], b: readonly PortRange[]): boolean => {
  const m = mergePorts(a);
  return b.every((r) => m.some((x) => x.from <= r.from && r.to <= x.to));
};
export const portsOverlap = (a: readonly PortRange[], b: readonly PortRange[]): boolean => a.some((x) => b.some((y) => x.from <= y.to && y.from <= x.to));
/** The ports of `a` that are not in `b`. */
export function portsMinus(a: readonly PortRange[], b: readonly PortRange[]): PortRange[] {
  let out = mergePorts(a);
  for (const y of b) out = out.flatMap((x) => (y.to < x.from || y.from > x.to ? [x] : [
    ...(x.from < y.from ? [{ from: x.from, to: y.from - 1 }] : []),
    ...(y.to < x.to ? [{ from: y.to + 1, to: x.to }] : []),
  ]));
  return out;
}

/** Ports as written: "443", "80,443", "8000-8100"; each token's error at its own offset. */
export function parsePorts(text: string, at: (offset: number) => Source, say: Say): PortRange[] | undefined {
  const out: PortRange[] = [];
  let ok = true;
  let offset = 0;
  for (const tok of text.split(',')) {
    const here = at(offset + (tok.length - tok.trimStart().length));
    offset += tok.length + 1;
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(tok);
    const range = m ? { from: Number(m[1]), to: m[2] === undefined ? Number(m[1]) : Number(m[2]) } : undefined;
    const bad = range && [range.from, range.to].find((p) => p < 1 || p > 65535);
    if (!range) say(here, 'invalid-port', tok.trim() ? `\`${tok.trim()}\` is not a port: write a number from 1 to 65535, or a range such as 8000-8100` : 'a port is missing here: write ports as 443, 80,443 or 8000-8100');
    else if (bad !== undefined) say(here, 'port-out-of-range', `port ${bad} is out of range: ports run from 1 to 65535`);
    else if (range.to < range.from) say(here, 'reversed-port-range', `the range ${range.from}-${range.to} runs backwards: write ${range.to}-${range.from}`);
    else { out.push(range); continue; }
    ok = false;
  }
  return ok ? mergePorts(out) : undefined;
}

// ---- addresses ----

/** An address of either family as a number (IPv4 in the low 32 bits). */
function addrValue(addr: string, family: 4 | 6): bigint {
  if (family === 4) return BigInt(ipToInt(addr));
  let s = addr;
  const dot = s.lastIndexOf(':');
  if (s.includes('.')) { const v4 = ipToInt(s.slice(dot + 1)); s = `${s.slice(0, dot + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`; }
  const [head = '', tail] = s.split('::');
  const part = (h: string) => (h ? h.split(':') : []);
  const groups = tail === undefined ? part(head) : [...part(head), ...Array(8 - part(head).length - part(tail).length).fill('0'), ...part(tail)];
  return groups.reduce((v, g) => (v << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** The canonical text of an address (RFC 5952 for IPv6: lowercase, the longest zero run as ::). */
function addrText(v: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join('.');
  const g = Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = -1, len = 0;
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > len && j - i > 1) { best = i; len = j - i; }
  }
  const hex = g.map((x) => x.toString(16));
  return best < 0 ? hex.join(':') : `${hex.slice(0, best).join(':')}::${hex.slice(best + len).join(':')}`;
}

const bits = (family: 4 | 6) => (family === 4 ? 32 : 128);
const MASKS = { 4: Array.from({ length: 33 }, (_, p) => ((1n << BigInt(p)) - 1n) << BigInt(32 - p)), 6: Array.from({ length: 129 }, (_, p) => ((1n << BigInt(p)) - 1n) << BigInt(128 - p)) };
const maskOf = (prefix: number, family: 4 | 6): bigint => MASKS[family][prefix]!;

/** A range's network as a number, worked out once per target: shadowing and decidable compare
 * every pair of up to 1024 rules. */
const networks = new WeakMap<CidrTarget, bigint>();
function networkOf(t: CidrTarget): bigint {
  let v = networks.get(t);
  if (v === undefined) networks.set(t, (v = addrValue(t.network, t.family)));
  return v;
}

/** `addr` lies inside the range. */
export function cidrContains(t: CidrTarget, addr: string): boolean {
  const family = isIP(addr);
  if (family !== t.family || addr.includes('%')) return false;
  return (addrValue(addr, family) & maskOf(t.prefix, family)) === networkOf(t);
}
/** Range `b` lies inside range `a`. */
export const cidrInside = (a: CidrTarget, b: CidrTarget): boolean => a.family === b.family && a.prefix <= b.prefix && (networkOf(b) & maskOf(a.prefix, a.family)) === networkOf(a);
const cidrOverlap = (a: CidrTarget, b: CidrTarget) => cidrInside(a, b) || cidrInside(b, a);

/** "10.0.0.0/8", "192.0.2.7" (a /32), "2001:db8::/32": a cidr target, or the problem said at its token. */
export function parseCidr(text: string, at: (offset: number) => Source, say: Say): CidrTarget | undefined {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const family = addr.includes('%') ? 0 : isIP(addr);
  if (!family) {
    const why = addr.includes(':') ? 'an IPv6 address' : /^[0-9.]*$/.test(addr) ? 'an IPv4 address' : 'an address';
    say(at(0), 'invalid-address', `\`${addr}\` is not ${why}${/[a-z]/i.test(addr) && !addr.includes(':') ? `; a name is written as a host rule (\`host: ${addr}\`, or "allow ${addr}")` : ''}`);
    return undefined;
  }
  let prefix = bits(family);
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > bits(family)) { say(at(slash + 1), 'invalid-prefix', `\`/${p}\` is not a prefix length of an IPv${family} range: write /0 to /${bits(family)}`); return undefined; }
    prefix = Number(p);
  }
  const value = addrValue(addr, family);
  const network = value & maskOf(prefix, family);
  if (network !== value) { say(at(0), 'host-bits-set', `${text} has host bits set; did you mean ${addrText(network, family)}/${prefix}?`); return undefined; }
  return { type: 'cidr', family, network: addrText(network, family), prefix };
}

// ---- host names and public suffixes ----

interface Psl { exact: Map<string, 'icann' | 'private'>; wild: Map<string, 'icann' | 'private'>; except: Set<string> }
let psl: Psl | undefined;
/** The list's rules as Sets, made the first time a wildcard is checked (about 2 ms). */
function publicSuffixes(): Psl {
  if (psl) return psl;
  const p: Psl = { exact: new Map(), wild: new Map(), except: new Set() };
  for (const [section, text] of [['icann', ICANN_SUFFIXES], ['private', PRIVATE_SUFFIXES]] as const) {
    for (const rule of text.split('\n')) {
      if (rule.startsWith('!')) p.except.add(rule.slice(1));
      else if (rule.startsWith('*.')) { if (!p.wild.has(rule.slice(2))) p.wild.set(rule.slice(2), section); }
      else if (!p.exact.has(rule)) p.exact.set(rule, section);
    }
  }
  return (psl = p);
}

/**
 * Whether `name` is itself a public suffix, by the list's algorithm (the longest matching rule
 * wins, an exception `!` beats a wildcard, no rule means `*`): through a rule of the ICANN or the
 * PRIVATE section, or the default rule (a top-level label no one lists, such as `test`);
 * undefined when it is not one (it is a registrable domain, or under one).
 */
export function publicSuffixKind(name: string): 'icann' | 'private' | 'default' | undefined {
  const p = publicSuffixes();
  const labels = name.split('.');
  for (let k = 0; k < labels.length; k++) if (p.except.has(labels.slice(k).join('.'))) return undefined;
  const exact = p.exact.get(name);
  if (exact) return exact;
  const wild = labels.length > 1 ? p.wild.get(labels.slice(1).join('.')) : undefined;
  if (wild) return wild;
  return labels.length === 1 ? 'default' : undefined;
}

/** A host name (or `*.suffix`) as a target, lowercase and without a trailing dot; or the
 * problem said at its token (design 2.4). */
export function parseHost(text: string, at: (offset: number) => Source, say: Say): HostTarget | undefined {
  if (/[^\x00-\x7f]/.test(text)) {
    const wild = text.startsWith('*.');
    const ascii = domainToASCII(wild ? text.slice(2) : text);
    say(at(0), 'idn-host', `\`${text}\` is not ASCII: write it as ${ascii ? `${wild ? '*.' : ''}${ascii}` : 'its xn--… (punycode) form'}`);
    return undefined;
  }
  let name = text.toLowerCase();
  if (name.length > 1 && name.endsWith('.')) name = name.slice(0, -1);
  const wildcard = name.startsWith('*.');
  const bare = wildcard ? name.slice(2) : name;
  if (!name) { say(at(0), 'invalid-host', 'the rule names no host: write a name such as registry.npmjs.org, *.example.com, or an address'); return undefined; }
  if (bare.includes('*') || name === '*') {
    say(at(name === '*' ? 0 : (wildcard ? 2 : 0) + bare.indexOf('*')), 'misplaced-wildcard', 'a wildcard is only `*.` at the front (`*.example.com`); to allow every address write `allow 0.0.0.0/0` (an audit finding)');
    return undefined;
  }
  if (isIP(bare)) { say(at(0), 'host-is-address', `${bare} is an address: write \`cidr: ${bare}${isIP(bare) === 4 ? '/32' : '/128'}\``); return undefined; }
  if (bare === 'localhost' || bare.endsWith('.localhost')) { say(at(0), 'host-is-loopback', `${bare} is the sandbox's own loopback, which always works: remove the rule`); return undefined; }
  if (!hostLabelsOk(text, bare, wildcard ? 2 : 0, at, say)) return undefined;
  if (wildcard) {
    const kind = publicSuffixKind(bare);
    if (kind === 'icann' || kind === 'default') {
      say(at(0), 'wildcard-public-suffix', `\`*.${bare}\` covers every name under the public suffix ${bare}, owned by unrelated people; name the hosts, or a registrable domain such as *.example.${bare}`);
      return undefined;
    }
  }
  return { type: 'host', name: bare, wildcard };
}

/** Labels of 1-63 letters, digits, - and _, not starting or ending with -; at most 253 in all;
 * the last not a number (that would be an address written wrong). */
function hostLabelsOk(text: string, bare: string, start: number, at: (offset: number) => Source, say: Say): boolean {
  const bad = (offset: number, why: string) => { say(at(offset), 'invalid-host', `\`${text}\` is not a host name: ${why}`); return false; };
  if (bare.length > 253) return bad(start, `it is ${bare.length} characters long, and a name has at most 253`);
  const labels = bare.split('.');
  let offset = start;
  for (const [i, l] of labels.entries()) {
    const n = i + 1;
    if (!l) return bad(offset, `label ${n} is empty`);
    if (l.length > 63) return bad(offset, `label ${n} is ${l.length} characters long, and a label has at most 63`);
    const c = /[^a-z0-9_-]/.exec(l);
    if (c) return bad(offset + c.index, `label ${n} holds \`${c[0]}\`; a name is made of letters, digits, - and _${c[0] === ':' || c[0] === '/' ? ' (ports follow the name as :443, a protocol as /tcp)' : ''}`);
    if (l.startsWith('-') || l.endsWith('-')) return bad(offset + (l.startsWith('-') ? 0 : l.length - 1), `label ${n} ${l.startsWith('-') ? 'starts' : 'ends'} with -`);
    offset += l.length + 1;
  }
  if (/^[0-9]+$/.test(labels.at(-1)!)) return bad(start, 'its last label is a number (an address is written as four numbers from 0 to 255, or as a range such as 10.0.0.0/8)');
  return true;
}

// ---- rules ----

/** What the parser of either form gives before the defaults: the target and what was written. */
interface Draft { action: 'allow' | 'deny'; target: EgressTarget; ports?: PortRange[]; protocol?: 'tcp' | 'udp'; protoAt: Source }

/**
 * One item of `network.egress` (a short-form string or a long-form mapping), at `src`, → its rule
 * with the defaults of design 2.1; undefined when it is wrong, every problem said at its token.
 */
export function parseRule(item: string | LongRule, index: number, src: Source, at: RuleAt, say: Say): EgressRule | undefined {
  const d = typeof item === 'string' ? parseShort(item, at, say) : parseLong(item, at, say);
  if (!d) return undefined;
  const host = d.target.type === 'host';
  if (host && d.protocol === 'udp') {
    say(d.protoAt, 'udp-host-rule', 'a host rule carries TCP only: UDP has no name the relay can check; for QUIC or other UDP add a cidr rule');
    return undefined;
  }
  const ports = d.ports ?? [...(host ? HOST_PORTS : ALL_PORTS)].map((r) => ({ ...r }));
  const protocols: Proto[] = host ? ['tcp'] : d.protocol ? [d.protocol] : d.ports ? ['tcp', 'udp'] : ['tcp', 'udp', 'icmp'];
  const target = targetText(d.target, d.ports !== undefined);
  const proto = host ? (d.ports ? '/tcp' : '') : d.protocol ? `/${d.protocol}` : '';
  return { index, action: d.action, target: d.target, ports, protocols, text: `${d.action} ${target}${d.ports ? `:${portsText(ports)}` : ''}${proto}`, src };
}

/** A target as the short form writes it (an IPv6 range in brackets when ports follow). */
export function targetText(t: EgressTarget, withPorts = false): string {
  if (t.type === 'host') return t.wildcard ? `*.${t.name}` : t.name;
  const full = t.prefix === bits(t.family) ? t.network : `${t.network}/${t.prefix}`;
  return t.family === 6 && withPorts ? `[${full}]` : full;
}

/** ACTION TARGET[:PORTS][/PROTO], with offsets into the string for every problem. */
function parseShort(text: string, loc: RuleAt, say: Say): Draft | undefined {
  const m = /^(\s*)(allow|deny)(\s+)(\S+)\s*$/.exec(text);
  if (!m) { say(loc(0), 'invalid-rule', `\`${text}\` is not a rule: write ACTION TARGET[:PORTS][/PROTO], such as "allow registry.npmjs.org:443" or "deny 169.254.0.0/16"`); return undefined; }
  const base = m[1]!.length + m[2]!.length + m[3]!.length;
  const at = (o: number) => loc(base + o);
  let body = m[4]!;
  let protocol: Draft['protocol'];
  let protoAt = loc(0);
  const p = /\/([A-Za-z]+)$/.exec(body);
  if (p) {
    protoAt = at(p.index + 1);
    const word = p[1]!.toLowerCase();
    if (word !== 'tcp' && word !== 'udp') { say(protoAt, 'invalid-protocol', `\`${p[1]}\` is not a protocol: write /tcp or /udp (a cidr rule without one carries both, and ICMP when it names no ports)`); return undefined; }
    protocol = word;
    body = body.slice(0, p.index);
  }
  const split = splitTarget(body, at, say);
  if (!split) return undefined;
  const { target: t, targetAt, ports: pt, portsAt } = split;
  const asCidr = split.v6 || /^[0-9.]+(\/.*)?$/.test(t);
  const target = asCidr ? parseCidr(t, (o) => at(targetAt + o), say) : parseHost(t, (o) => at(targetAt + o), say);
  if (target && split.v6 && target.type === 'cidr' && target.family !== 6 && split.bracket) { say(at(0), 'invalid-address', `brackets are for IPv6 addresses: write ${t}${pt !== undefined ? `:${pt}` : ''}`); return undefined; }
  const ports = pt === undefined ? undefined : parsePorts(pt, (o) => at(portsAt + o), say);
  if (!target || (pt !== undefined && !ports)) return undefined;
  return { action: m[2] as Draft['action'], target, ...(ports ? { ports } : {}), ...(protocol ? { protocol } : {}), protoAt };
}

/** TARGET[:PORTS] apart: an IPv6 address in brackets when ports follow, bare without them. */
function splitTarget(body: string, at: (o: number) => Source, say: Say): { target: string; targetAt: number; ports?: string; portsAt: number; v6: boolean; bracket: boolean } | undefined {
  if (body.startsWith('[')) {
    const close = body.indexOf(']');
    if (close < 0) { say(at(0), 'invalid-address', 'the `[` of an IPv6 address is not closed: write it as [2001:db8::/32]:443'); return undefined; }
    const after = body.slice(close + 1);
    if (after && !after.startsWith(':')) { say(at(close + 1), 'invalid-rule', `after the \`]\` of an address come :PORTS and /tcp or /udp, not \`${after}\``); return undefined; }
    return { target: body.slice(1, close), targetAt: 1, ...(after ? { ports: after.slice(1) } : {}), portsAt: close + 2, v6: true, bracket: true };
  }
  const colons = body.split(':').length - 1;
  if (colons > 1) {
    const addr = body.split('/')[0]!;
    if (!isIP(addr)) { say(at(0), 'invalid-address', `\`${body}\` is not an IPv6 address; when ports follow one, write it in brackets: [2001:db8::1]:443`); return undefined; }
    return { target: body, targetAt: 0, portsAt: 0, v6: true, bracket: false };
  }
  const c = body.indexOf(':');
  return c < 0 ? { target: body, targetAt: 0, portsAt: 0, v6: false, bracket: false } : { target: body.slice(0, c), targetAt: 0, ports: body.slice(c + 1), portsAt: c + 1, v6: false, bracket: false };
}

/** {action, host | cidr, ports?, protocol?}: exactly one of host and cidr. */
function parseLong(item: LongRule, loc: RuleAt, say: Say): Draft | undefined {
  if ((item.host === undefined) === (item.cidr === undefined)) {
    say(loc(0), 'egress-target', item.host === undefined ? 'a rule names a `host` (a name, or *.suffix) or a `cidr` (an address or range): give one' : 'a rule gives both `host` and `cidr`: give exactly one (write two rules for both)');
    return undefined;
  }
  const target = item.host !== undefined ? parseHost(item.host, (o) => loc(o, 'host'), say) : parseCidr(item.cidr!, (o) => loc(o, 'cidr'), say);
  let ports: PortRange[] | undefined;
  let ok = true;
  if (item.ports !== undefined) {
    const list = Array.isArray(item.ports) ? item.ports : [item.ports];
    const parts = list.map((p, j) => parsePorts(String(p), (o) => loc(o, 'ports', Array.isArray(item.ports) ? j : undefined), say));
    if (parts.some((x) => !x)) ok = false;
    else ports = mergePorts(parts.flatMap((x) => x!));
    if (ok && !list.length) { say(loc(0, 'ports'), 'invalid-port', '`ports` is an empty list: leave it out for every port, or list them'); ok = false; }
  }
  if (!target || !ok) return undefined;
  return { action: item.action, target, ...(ports ? { ports } : {}), ...(item.protocol ? { protocol: item.protocol } : {}), protoAt: loc(0, 'protocol') };
}

// ---- how rules relate, and what they decide ----

/** A name as the resolver and the relay compare it: lowercase, no trailing dot. */
const canonical = (name: string) => name.toLowerCase().replace(/\.$/, '');

/** Whether a host rule matches `name` (an exact name, or any name under a wildcard's suffix, at any
 * depth, not the suffix itself); a cidr rule matches no name. */
export function matchName(rule: EgressRule, name: string): boolean {
  const t = rule.target;
  if (t.type !== 'host') return false;
  const n = canonical(name);
  return t.wildcard ? n.endsWith(`.${t.name}`) : n === t.name;
}

/**
 * Rule `a`'s target includes rule `b`'s (design 2.5): names by equality or suffix, ranges by
 * containment, and a cidr rule over the whole IPv4 space includes every host rule (the sandbox
 * reaches nothing else). A host rule never includes a range.
 */
export const covers = (a: EgressRule, b: EgressRule): boolean => targetCovers(a.target, b.target);

/** Target `x` includes target `y` (covers, on targets alone). */
export function targetCovers(x: EgressTarget, y: EgressTarget): boolean {
  if (x.type === 'cidr') return y.type === 'cidr' ? cidrInside(x, y) : x.family === 4 && x.prefix === 0;
  if (y.type === 'cidr') return false;
  if (!x.wildcard) return !y.wildcard && x.name === y.name;
  return y.name === x.name ? y.wildcard : y.name.endsWith(`.${x.name}`);
}

/** A rule no connection can reach, and the earlier rules that match every connection it would. */
export interface Shadow { rule: EgressRule; by: EgressRule[] }

/**
 * The rules that can never match (design 2.5): for each protocol of rule j, the ports of the
 * earlier rules that carry it and cover j's target hold all of j's ports. Conservative: unions
 * of ranges (two /9s) are not seen. IPv6 ranges are left out (they never match at all, a warning
 * of their own). A whole-space cidr rule stands for a host rule only when it denies and the host
 * rule allows: a host rule's lookups are answered by host rules alone (nameAllowed), so an
 * earlier `allow 0.0.0.0/0` leaves a host rule its effect on names.
 */
export function shadowed(rules: readonly EgressRule[]): Shadow[] {
  const out: Shadow[] = [];
  const live = rules.filter((r) => r.target.type === 'host' || r.target.family === 4);
  live.forEach((j, n) => {
    const earlier = live.slice(0, n).filter((i) => covers(i, j) && (i.target.type === 'host' || j.target.type === 'cidr' || (i.action === 'deny' && j.action === 'allow')));
    const full = j.protocols.every((p) => portsContain(earlier.filter((i) => i.protocols.includes(p)).flatMap((i) => i.ports), p === 'icmp' ? ALL_PORTS : j.ports));
    if (!full) return;
    const by = earlier.filter((i) => i.protocols.some((p) => j.protocols.includes(p)) && portsOverlap(i.ports, j.ports));
    out.push({ rule: j, by });
  });
  return out;
}

/** The resolver's decision on a name, and the deny rule that refused it (null: no rule allowed it). */
export function nameDecision(rules: readonly EgressRule[], name: string): { allowed: boolean; rule: EgressRule | null } {
  // Walk the host rules that match, with the TCP ports still undecided: an allow that meets one
  // of them answers; a deny takes its ports away; none left, or none answered, is NXDOMAIN.
  let left: PortRange[] = [...ALL_PORTS];
  let last: EgressRule | null = null;
  for (const r of rules) {
    if (!matchName(r, name)) continue;
    if (r.action === 'allow' && portsOverlap(left, r.ports)) return { allowed: true, rule: r };
    if (r.action === 'deny') { left = portsMinus(left, r.ports); last = r; }
    if (!left.length) return { allowed: false, rule: last };
  }
  return { allowed: false, rule: null };
}

/** Whether the sandbox's resolver answers `name` (design 4.2); otherwise NXDOMAIN, never forwarded. */
export const nameAllowed = (rules: readonly EgressRule[], name: string): boolean => nameDecision(rules, name).allowed;

/** A connection or datagram to judge: the SNI or Host name when one was seen, and the names the
 * resolver answered this address for (live answers). */
export interface Query { addr: string; port: number; proto: Proto; name?: string; answered?: readonly string[] }
/** allowed or not, by which rule (null: a refused class, IPv6, or no rule allowed it). */
export interface Verdict { allowed: boolean; rule: EgressRule | null; reason: 'rule' | 'class' | 'ipv6' | 'default' }

/**
 * A connection's verdict (design 4.2): an address in a refused class is refused unless an allow
 * cidr rule inside that class contains it; then the rules in order, first match; no match is
 * refused (the `egress` key's line). `classes`: REFUSED_CLASSES plus the sandbox's subnet and the
 * host's own addresses. The network is IPv4 only: an IPv6 address is refused.
 */
export function verdict(rules: readonly EgressRule[], q: Query, classes: readonly string[] = REFUSED_CLASSES): Verdict {
  if (isIP(q.addr) !== 4) return { allowed: false, rule: null, reason: 'ipv6' };
  // An address in a refused class is reached only through an allow whose own range lies inside
  // that class, on that rule's ports: `allow 169.254.169.254:80` opens port 80 of the metadata
  // address and nothing else, and a wider allow (0.0.0.0/0, a host rule) never opens a class.
  const inClasses = classes.map((c) => classRange(c)).filter((c) => cidrContains(c, q.addr));
  const answered = (q.answered ?? []).map(canonical);
  for (const r of rules) {
    if (!r.protocols.includes(q.proto) || (q.proto !== 'icmp' && !inPorts(r.ports, q.port))) continue;
    const t = r.target;
    const hit = t.type === 'cidr'
      ? cidrContains(t, q.addr)
      : q.name !== undefined ? matchName(r, q.name) && answered.includes(canonical(q.name)) : answered.some((n) => matchName(r, n));
    if (!hit) continue;
    if (r.action === 'allow' && inClasses.some((c) => t.type !== 'cidr' || !cidrInside(c, t))) return { allowed: false, rule: null, reason: 'class' };
    return { allowed: r.action === 'allow', rule: r, reason: 'rule' };
  }
  if (inClasses.length) return { allowed: false, rule: null, reason: 'class' };
  return { allowed: false, rule: null, reason: 'default' };
}

/** A class as written ("127.0.0.0/8", or an address alone), host bits ignored. */
function classRange(c: string): CidrTarget {
  const [addr = '', p] = c.split('/');
  const prefix = p === undefined ? 32 : Number(p);
  return { type: 'cidr', family: 4, network: addrText(addrValue(addr, 4) & maskOf(prefix, 4), 4), prefix };
}

/**
 * Which cidr rules the kernel can judge alone, keeping their traffic off the relay while first
 * match stays exact (design 3.2): rule i when no earlier host rule of the other action shares a
 * TCP port with it, and every earlier cidr rule it overlaps (addresses, protocols and ports) is
 * itself decidable. Host rules: false. Aligned with `rules`.
 */
export function decidable(rules: readonly EgressRule[]): boolean[] {
  const out: boolean[] = [];
  rules.forEach((r, n) => {
    const t = r.target;
    if (t.type !== 'cidr') { out.push(false); return; }
    const ok = rules.slice(0, n).every((e, m) => {
      if (e.target.type === 'host') return e.action === r.action || !r.protocols.includes('tcp') || !portsOverlap(e.ports, r.ports);
      const meets = cidrOverlap(e.target, t) && e.protocols.some((p) => r.protocols.includes(p)) && portsOverlap(e.ports, r.ports);
      return !meets || out[m]!;
    });
    out.push(ok);
  });
  return out;
}
