// The egress policy (network.egress) as the enforcement needs it, pure: which component enforces
// each rule (design 4.1), the policy text sbx-egress reads on its stdin (EGRESS-CONTRACT 3), the
// in-namespace nftables table it loads (design 3.2) and the host's wall table (design 3.3), with
// the structure the attestation compares nft's JSON readback against.
//
// What only a run knows comes in as arguments, so that compile and these functions stay pure: the
// nonce (random per run, made by the engine), the NFLOG group and the relay mark (picked by the
// engine among those other live sandboxes use), the host's resolvers when the file has no `dns:`,
// and the host's own addresses. The plan's net.egress.start carries policyDigest: the sha256 of
// this text with those values left as @NAME@ placeholders, the same for every run of the plan; the
// exact text's digest (what egress.status reports) is the run's, recorded in egress.json.
import { sha256Hex } from '../util/sha256';
import { intToIp, parseSubnet } from '../model/ip';
import { decidable as decidableRules } from '../model/egress';
import type { EgressRule, EgressTarget, PortRange, Source } from '../model/types';
import { sourceText } from './render';
import type { Enforcer } from './types';

/** The resolver's address inside the sandbox (resolv.conf names only it). */
export const EGRESS_DNS = '127.0.0.53';
/** The in-namespace table's name (family inet), in the sandbox's network namespace. */
export const INSIDE_TABLE = 'sbx_egress';
/** Without root, the NFLOG group the wall in the sandbox's own namespace logs its refusals to.
 * Groups are per network namespace, so every rootless sandbox can use the same one: only
 * sbx-egress (whose helper binds it there, as the owner of the sandbox's user namespace) reads it. */
export const INSIDE_NFLOG_GROUP = 1;
/** Seconds an answered address stays usable past its clamped TTL (design 3.4, open). */
export const EGRESS_GRACE_S = 300;
/** Where the attestation's TCP canary goes: the first of these that no cidr rule allows and that is not on a network the host is connected to (the engine decides that). */
export const CANARY_ADDRESSES = ['198.18.255.254', '203.0.113.254', '198.51.100.254'];
/** The addresses refused whatever the rules say, unless an allow cidr rule inside one names them (contract 4); the run adds the subnet and the host's own addresses. */
export const FIXED_CLASSES = ['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '255.255.255.255/32'];

/** A rule as the plan's net.egress.rule step keeps it (its source is the step's). */
export interface PlannedRule { index: number; action: 'allow' | 'deny'; target: EgressTarget; ports: PortRange[]; protocols: EgressRule['protocols']; text: string; src: Source }

// ---- ports, ranges, decidability ----

export const portsText = (ports: readonly PortRange[]) => ports.map((p) => (p.from === p.to ? `${p.from}` : `${p.from}-${p.to}`)).join(',');
const allPorts = (ports: readonly PortRange[]) => ports.length === 1 && ports[0]!.from === 1 && ports[0]!.to === 65535;
const hasPort = (ports: readonly PortRange[], n: number) => ports.some((p) => p.from <= n && n <= p.to);

/** An IPv4 range as [first, last] integers. */
export function range4(cidr: string): [number, number] {
  const { base, prefix } = parseSubnet(cidr.includes('/') ? cidr : `${cidr}/32`);
  return [base, base + 2 ** (32 - prefix) - 1];
}
const cidrOf = (t: EgressTarget) => (t.type === 'cidr' ? `${t.network}/${t.prefix}` : '');
const rangesOverlap = (a: [number, number], b: [number, number]) => a[0] <= b[1] && b[0] <= a[1];
const inside = (a: [number, number], b: [number, number]) => b[0] <= a[0] && a[1] <= b[1];

/** The IPv4 cidr rules, the only ones the kernel applies (IPv6 ones are warnings in normalize and never get here). */
const cidr4 = (rules: readonly PlannedRule[]) => rules.filter((r) => r.target.type === 'cidr' && r.target.family === 4);

/** Whether the kernel can decide each cidr rule's TCP traffic alone (design 3.2; model/egress.ts
 * decides, for the resolver's model and the plan alike), by rule index. */
export function decidable(rules: readonly PlannedRule[]): Map<number, boolean> {
  const d = decidableRules(rules);
  return new Map(rules.map((r, i) => [r.index, d[i]!]));
}

/** The union of host rules' ports: the TCP ports the sandbox's table sends to the relay. */
export function relayPorts(rules: readonly PlannedRule[]): PortRange[] {
  const all = rules.filter((r) => r.target.type === 'host').flatMap((r) => r.ports).sort((a, b) => a.from - b.from);
  const out: PortRange[] = [];
  for (const p of all) {
    const last = out.at(-1);
    if (last && p.from <= last.to + 1) last.to = Math.max(last.to, p.to); else out.push({ ...p });
  }
  return out;
}

/** IPv4 ranges merged (an nftables interval set refuses overlapping elements), as nft prints them. */
export function mergeRanges(cidrs: readonly string[]): string[] {
  const rs = cidrs.map(range4).sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const r of rs) {
    const last = merged.at(-1);
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]); else merged.push([r[0], r[1]]);
  }
  return merged.flatMap(([a, b]) => rangeToCidrs(a, b));
}

/** The fewest cidrs covering [a, b]. */
function rangeToCidrs(a: number, b: number): string[] {
  const out: string[] = [];
  while (a <= b) {
    let size = 1;
    while (a % (size * 2) === 0 && a + size * 2 - 1 <= b && size < 2 ** 32) size *= 2;
    out.push(`${intToIp(a)}/${32 - Math.log2(size)}`);
    a += size;
  }
  return out;
}

/** Where the attestation may send its TCP canary: the candidates no allow cidr rule contains (the engine drops those on a network the host is connected to). */
export function canaryCandidates(rules: readonly PlannedRule[]): string[] {
  return CANARY_ADDRESSES.filter((a) => !namedByAllow(rules, a));
}

/** An allow cidr rule contains this IPv4 address: the attestation may not expect it refused. */
export const namedByAllow = (rules: readonly PlannedRule[], addr: string): boolean => cidr4(rules).some((r) => r.action === 'allow' && inside(range4(addr), range4(cidrOf(r.target))));

/** The attestation's canary name: no rule may let it resolve (compile refuses a rule that could). */
export const canaryName = (nonce: string) => `canary-${nonce}.invalid`;

// ---- which component enforces a rule (design 4.1) ----


/** Where the wall is without root, and what it rests on (design 3.3, "Why the rootless wall holds"). */
export const WEAKER_WALL = 'enforced inside the sandbox\'s namespace (weaker: holds while nothing inside has NET_ADMIN or NET_RAW)';

/** The components that enforce a rule, and the plan's sentence for it. */
export function enforcement(rules: readonly PlannedRule[], r: PlannedRule, wallTable: string, rootless = false): { enforcedBy: Enforcer[]; title: string } {
  if (r.target.type === 'host') return hostRuleTitle(r, rootless);
  const dec = decidable(rules).get(r.index) ?? true;
  const where = rootless ? `nftables, ${WEAKER_WALL}` : `nftables on the host (${wallTable})`;
  const wall: Enforcer = rootless ? 'wall-inside' : 'wall-host';
  const what = `${r.action} ${cidrOf(r.target)}${cidrRuleWhat(r)}`;
  const dns = r.action === 'allow' && r.ports.some((p) => hasPort([p], 53) || hasPort([p], 853)) && !allPorts(r.ports) ? '; DNS to it is allowed because the rule names port 53 or 853' : '';
  if (dec) return { enforcedBy: [wall], title: `${what}: ${where}${dns}` };
  return { enforcedBy: ['relay', wall], title: `${what}: the relay for addresses the resolver answered (an earlier name rule of the other action shares its ports), ${where} for the rest${dns}` };
}

function cidrRuleWhat(r: PlannedRule): string {
  const protos = r.protocols.filter((p) => p !== 'icmp');
  if (allPorts(r.ports)) return r.protocols.includes('icmp') ? ' (every protocol and port)' : ` (every ${protos.join(' and ').toUpperCase()} port)`;
  return ` port${r.ports.length === 1 && r.ports[0]!.from === r.ports[0]!.to ? '' : 's'} ${portsText(r.ports)}/${protos.join(',')}`;
}

function hostRuleTitle(r: PlannedRule, rootless: boolean): { enforcedBy: Enforcer[]; title: string } {
  const t = r.target as Extract<EgressTarget, { type: 'host' }>;
  const name = t.wildcard ? `*.${t.name} (any name under ${t.name})` : t.name;
  const defaultPorts = portsText(r.ports) === '1-52,54-852,854-65535';
  const ports = defaultPorts ? 'on every TCP port but 53 and 853' : `on TCP port${r.ports.length === 1 && r.ports[0]!.from === r.ports[0]!.to ? '' : 's'} ${portsText(r.ports)}`;
  const onlyWeb = r.ports.every((p) => (p.from === 80 || p.from === 443) && p.from === p.to);
  const byAddress = onlyWeb ? '' : r.ports.length === 1 && r.ports[0]!.from === r.ports[0]!.to && r.ports[0]!.from !== 80 && r.ports[0]!.from !== 443 ? ' (unless it speaks TLS or HTTP: by address only)' : ' (other protocols: by address only)';
  const dnsPorts = hasPort(r.ports, 53) || hasPort(r.ports, 853) ? '; port 53/853 to it is carried by the relay by address only' : '';
  const zone = t.wildcard ? '; lookups of names under it reach that zone\'s servers' : '';
  // Without root, what keeps the sandbox on the resolver and the relay is the wall in its own namespace.
  const weaker = rootless ? `; the way around them is shut by nftables, ${WEAKER_WALL}` : '';
  const by: Enforcer[] = rootless ? ['resolver', 'relay', 'wall-inside'] : ['resolver', 'relay'];
  if (r.action === 'allow') return { enforcedBy: by, title: `allow ${name} ${ports}: the sandbox's resolver answers it; the relay checks the TLS name or HTTP Host${byAddress}; UDP (QUIC) to it needs a cidr rule${zone}${dnsPorts}${weaker}` };
  return { enforcedBy: by, title: `deny ${name} ${ports}: lookups get NXDOMAIN unless a later rule allows the name; the relay refuses its connections${weaker}` };
}

// ---- the policy text (EGRESS-CONTRACT 3) ----

/** What a run gives sbx-egress, besides the plan's rules. */
export interface PolicyRun {
  /** 32 hex digits, random per run. */
  nonce: string;
  mark: number;
  group: number;
  /** The file's `dns:`, else the host's resolvers (loopback ones too: sbx-egress asks from the host). */
  upstream: string[];
  /** Refused classes: FIXED_CLASSES, the sandbox's subnet, the host's own addresses as /32. */
  classes: string[];
}

export interface PolicyRules {
  rules: PlannedRule[];
  /** The `egress` key's source: what "no rule allowed it" cites. */
  defaultSrc: Source;
  /** extra_hosts entries, "IP NAME". */
  extra: string[];
  /** Rootless: the wall goes in the sandbox's own table, with the run's classes. */
  insideWall?: boolean;
}

/** The policy text, exactly as sbx-egress reads it (contract 3). */
export function policyText(p: PolicyRules, run: PolicyRun): string {
  const lines = [`v1 nonce=${run.nonce} grace=${EGRESS_GRACE_S} mark=0x${run.mark.toString(16)} group=${run.group}`];
  for (const u of run.upstream) lines.push(`upstream ${u}`);
  for (const c of run.classes) lines.push(`class ${c}`);
  for (const e of p.extra) { const [ip, name] = e.split(' '); lines.push(`extra ${name!.toLowerCase()} ${ip}`); }
  for (const r of p.rules) lines.push(policyRule(r));
  lines.push(`default ${sourceText(p.defaultSrc)}`);
  for (const l of insideTableText(p.rules, p.insideWall ? run.classes : undefined).split('\n')) if (l.trim()) lines.push(`nft ${l}`);
  lines.push('end');
  return lines.join('\n') + '\n';
}

function policyRule(r: PlannedRule): string {
  const t = r.target;
  const target = t.type === 'host' ? `host ${t.wildcard ? 'suffix' : 'exact'} ${t.name}` : `cidr ${t.network}/${t.prefix}`;
  return `rule ${r.index} ${r.action} ${target} ${r.protocols.join(',')} ${portsText(r.ports)} ${sourceText(r.src)}`;
}

/** The policy with the run's values as placeholders: its digest is the plan's policyDigest. */
export function policyTemplate(p: PolicyRules, upstream: string[]): string {
  const classes = [...FIXED_CLASSES, p.insideWall ? '@USERNET@' : '@SUBNET@', '@HOST-ADDRESSES@'];
  const text = policyText(p, { nonce: '@NONCE@', mark: 0, group: 0, upstream: upstream.length ? upstream : ['@HOST-RESOLVERS@'], classes });
  return text.replace(/ mark=0x0 group=0$/m, ' mark=@MARK@ group=@GROUP@');
}

export const sha256 = (text: string) => sha256Hex(text);

/** The classes of a run: the fixed ones, the sandbox's subnet (its gateway with it; rootless: the
 * user-mode stack's gateway, or slirp4netns's whole 10.0.2.0/24 with its DNS) and the host's own
 * IPv4 addresses (pasta copies them into the sandbox). */
export function runClasses(subnet: string, hostAddresses: readonly string[]): string[] {
  return [...FIXED_CLASSES, subnet, ...hostAddresses.map((a) => `${a}/32`)];
}

// ---- nftables: the rules as data (rendered to text, compared with nft's JSON) ----

/** One statement of a rule, in the few kinds these tables use; the attestation's normalizer reads nft's JSON into the same. */
export type Stmt =
  | { k: 'iif'; v: string } | { k: 'oif'; v: string } | { k: 'daddr'; v: string } | { k: 'l4'; v: string[] } | { k: 'dport'; v: string }
  | { k: 'v6' } | { k: 'ct' } | { k: 'mark'; v: number } | { k: 'local' }
  | { k: 'counter'; v: string } | { k: 'log'; v: string; group: number }
  | { k: 'accept' } | { k: 'reject' } | { k: 'reset' } | { k: 'jump'; v: string } | { k: 'redirect' };
export interface NftChain { name: string; hook?: { type: 'filter' | 'nat'; hook: 'forward' | 'input' | 'output'; priority: number }; rules: Stmt[][] }
export interface NftTable { family: 'inet'; name: string; counters: string[]; sets: { name: string; type: string; flags: string[]; elements: string[] }[]; chains: NftChain[] }

/** One statement as nft text. */
export function stmtText(s: Stmt): string {
  switch (s.k) {
    case 'iif': return `iifname "${s.v}"`;
    case 'oif': return `oifname "${s.v}"`;
    case 'daddr': return `ip daddr ${s.v}`;
    case 'l4': return s.v.length === 1 ? `meta l4proto ${s.v[0]}` : `meta l4proto { ${s.v.join(', ')} }`;
    case 'dport': return s.v.startsWith('@') ? `th dport ${s.v}` : `th dport { ${s.v.split(',').join(', ')} }`;
    case 'v6': return 'meta nfproto ipv6';
    case 'ct': return 'ct state established,related';
    case 'mark': return `meta mark 0x${s.v.toString(16)}`;
    case 'local': return 'fib daddr type local';
    case 'counter': return `counter name "${s.v}"`;
    case 'log': return `log prefix "${s.v}" group ${s.group}`;
    case 'accept': return 'accept';
    case 'reject': return 'reject with icmpx admin-prohibited';
    case 'reset': return 'reject with tcp reset';
    case 'jump': return `jump ${s.v}`;
    case 'redirect': return 'redirect to :@RELAY@';
  }
}

/** A table as the text `nft -f` loads. */
export function tableText(t: NftTable): string {
  const out = [`table ${t.family} ${t.name} {`];
  for (const c of t.counters) out.push(`  counter ${c} { }`);
  for (const s of t.sets) out.push(`  set ${s.name} { type ${s.type};${s.flags.length ? ` flags ${s.flags.join(', ')};` : ''}${s.elements.length ? ` elements = { ${s.elements.join(', ')} }` : ''} }`);
  for (const c of t.chains) {
    out.push(`  chain ${c.name} {`);
    if (c.hook) out.push(`    type ${c.hook.type} hook ${c.hook.hook} priority ${c.hook.priority}; policy accept;`);
    for (const r of c.rules) out.push(`    ${r.map(stmtText).join(' ')}`);
    out.push('  }');
  }
  out.push('}');
  return out.join('\n') + '\n';
}

/** What a cidr rule matches: its range, then its protocols and ports where it names them. */
function cidrMatch(r: PlannedRule, only?: 'dns'): Stmt[] {
  const out: Stmt[] = [{ k: 'daddr', v: cidrOf(r.target) }];
  const protos = r.protocols.filter((p) => p !== 'icmp');
  if (only === 'dns') return [...out, { k: 'l4', v: protos }, { k: 'dport', v: portsText(dnsPortsOf(r.ports)) }];
  if (allPorts(r.ports) && r.protocols.includes('icmp')) return out;
  out.push({ k: 'l4', v: protos });
  if (!allPorts(r.ports)) out.push({ k: 'dport', v: portsText(r.ports) });
  return out;
}
const dnsPortsOf = (ports: readonly PortRange[]): PortRange[] => [53, 853].filter((n) => hasPort(ports, n)).map((n) => ({ from: n, to: n }));

// ---- the sandbox's own table (design 3.2) ----

/** The table sbx-egress's helper loads in the sandbox's namespace, @RELAY@ standing for the relay's port. */
export function insideTable(rules: readonly PlannedRule[], wallClasses?: readonly string[]): NftTable {
  const dec = decidable(rules);
  const ports = relayPorts(rules);
  const nat: Stmt[][] = [[{ k: 'daddr', v: '127.0.0.0/8' }, { k: 'accept' }]];
  // Decidable cidr rules' TCP goes straight to the wall (allowed or refused there), never to the relay.
  for (const r of cidr4(rules)) if (dec.get(r.index) && r.protocols.includes('tcp')) nat.push([{ k: 'daddr', v: cidrOf(r.target) }, { k: 'l4', v: ['tcp'] }, ...(allPorts(r.ports) ? [] : [{ k: 'dport', v: portsText(r.ports) } as Stmt]), { k: 'accept' }]);
  if (ports.length) nat.push([{ k: 'daddr', v: '@answered4' }, { k: 'l4', v: ['tcp'] }, { k: 'dport', v: '@relay_ports' }, { k: 'redirect' }]);
  // Rootless: the wall too (wallClasses: the run's refused classes).
  const wall = wallClasses ? insideWall(rules, wallClasses) : { counters: [], sets: [], chains: [] };
  return {
    family: 'inet', name: INSIDE_TABLE, counters: wall.counters,
    sets: [{ name: 'answered4', type: 'ipv4_addr', flags: ['timeout'], elements: [] }, ...(ports.length ? [{ name: 'relay_ports', type: 'inet_service', flags: ['interval'], elements: portsText(ports).split(',') }] : []), ...wall.sets],
    chains: [{ name: 'nat_out', hook: { type: 'nat', hook: 'output', priority: -100 }, rules: nat }, ...wall.chains],
  };
}
export const insideTableText = (rules: readonly PlannedRule[], wallClasses?: readonly string[]) => tableText(insideTable(rules, wallClasses));

// ---- the wall on the host (design 3.3) ----

export interface WallRun { table: string; hostIf: string; group: number; mark: number; classes: string[] }

/**
 * A refusing rule as the wall loads it: TCP gets a reset and everything else an ICMP
 * admin-prohibited, so that a client is refused at once either way. The host sends ICMP errors to
 * one address at most 6 at once and then 1 a second (net.ipv4.icmp_ratelimit, per peer), so a run
 * of refused connections would otherwise see timeouts where it should see refusals; a reset is not
 * limited. A rule naming only TCP gets the reset alone, one naming no TCP the ICMP alone.
 */
function withResets(rule: Stmt[]): Stmt[][] {
  if (rule.at(-1)?.k !== 'reject') return [rule];
  const l4 = rule.findIndex((s) => s.k === 'l4');
  const protos = l4 >= 0 ? (rule[l4] as Extract<Stmt, { k: 'l4' }>).v : undefined;
  const reset = (r: Stmt[]): Stmt[] => [...r.slice(0, -1), { k: 'reset' }];
  if (protos && !protos.includes('tcp')) return [rule];
  if (protos && protos.length === 1) return [reset(rule)];
  const tcp: Stmt[] = l4 >= 0 ? rule.map((s, i) => (i === l4 ? { k: 'l4', v: ['tcp'] } : s)) : [...rule.slice(0, rule.findIndex((s) => s.k === 'counter')), { k: 'l4', v: ['tcp'] }, ...rule.slice(rule.findIndex((s) => s.k === 'counter'))];
  return [reset(tcp), rule];
}

/** The wall's judgement of what leaves the sandbox, shared by the host's from_sandbox chain (root)
 * and the sandbox's own output chain (rootless): cidr rules in order, the rest refused, counted and
 * logged to NFLOG group `group` (0: counted only). */
interface WallBody { from: Stmt[][]; classSection: Stmt[][]; opened: string[]; counters: string[]; refuse: (name: string) => Stmt[] }
function wallBody(rules: readonly PlannedRule[], classes: readonly string[], group: number): WallBody {
  const cidrs = cidr4(rules);
  const refuse = (name: string): Stmt[] => [{ k: 'counter', v: name }, ...(group ? [{ k: 'log', v: name, group } as Stmt] : []), { k: 'reject' }];
  const verdict = (r: PlannedRule): Stmt[] => (r.action === 'allow' ? [{ k: 'counter', v: `r${r.index}` }, { k: 'accept' }] : refuse(`r${r.index}`));
  const classRanges = classes.filter((c) => !c.startsWith('@')).map(range4);
  // Allow rules inside a class open that class's addresses for their range (contract 4); the rules
  // are then applied to those addresses in order, before the class is refused.
  const insideAllows = cidrs.filter((r) => r.action === 'allow' && classRanges.some((c) => inside(range4(cidrOf(r.target)), c))).map((r) => cidrOf(r.target));
  const opened = mergeRanges(insideAllows);
  const classSection = opened.length ? cidrs.filter((r) => opened.some((o) => rangesOverlap(range4(o), range4(cidrOf(r.target)))) && (r.action === 'deny' || insideAllows.includes(cidrOf(r.target))))
    .map((r) => [{ k: 'daddr', v: '@opened4' } as Stmt, ...cidrMatch(r), ...verdict(r)]) : [];
  // DNS to any server but the resolver is refused unless a cidr rule names port 53 or 853 itself.
  const dnsSection = cidrs.filter((r) => dnsPortsOf(r.ports).length && (r.action === 'deny' || !allPorts(r.ports))).map((r) => [...cidrMatch(r, 'dns'), ...verdict(r)]);
  const from: Stmt[][] = [
    [{ k: 'ct' }, { k: 'accept' }],
    [{ k: 'v6' }, ...refuse('v6')],
    // The classes before DNS: a cidr rule that lists port 53 (say 0.0.0.0/0:53) must not open
    // another sandbox's or the gateway's DNS, as it does not in sbx-egress's verdict.
    ...classSection,
    [{ k: 'daddr', v: '@class4' }, ...refuse('class')],
    ...dnsSection,
    [{ k: 'l4', v: ['tcp', 'udp'] }, { k: 'dport', v: '53,853' }, ...refuse('dns')],
    ...cidrs.map((r) => [...cidrMatch(r), ...verdict(r)]),
    refuse('none'),
  ];
  return { from, classSection, opened, counters: [...cidrs.map((r) => `r${r.index}`), 'none', 'dns', 'v6', 'class'], refuse };
}

/** The refused classes as an interval set: the real ones merged, a plan's @PLACEHOLDER@s as they are. */
const classSet = (classes: readonly string[]) => [...mergeRanges(classes.filter((c) => !c.startsWith('@'))), ...classes.filter((c) => c.startsWith('@'))];

/** The host's wall: everything from the sandbox's veth is judged here, cidr rules in order, the rest refused and logged to NFLOG. */
export function wallTable(rules: readonly PlannedRule[], run: WallRun): NftTable {
  const { from, classSection, opened, counters, refuse } = wallBody(rules, run.classes, run.group);
  const toHost: Stmt[][] = [[{ k: 'ct' }, { k: 'accept' }], [{ k: 'v6' }, ...refuse('v6')], ...classSection, refuse('class')];
  const relay: Stmt[][] = [
    ...(opened.length ? [[{ k: 'mark', v: run.mark }, { k: 'daddr', v: '@opened4' }, { k: 'accept' }] as Stmt[]] : []),
    [{ k: 'mark', v: run.mark }, { k: 'local' }, { k: 'reject' }],
    [{ k: 'mark', v: run.mark }, { k: 'daddr', v: '@class4' }, { k: 'reject' }],
  ];
  const filter = (hook: 'forward' | 'input' | 'output') => ({ type: 'filter' as const, hook, priority: -5 });
  return {
    family: 'inet', name: run.table, counters,
    sets: [{ name: 'class4', type: 'ipv4_addr', flags: ['interval'], elements: mergeRanges(run.classes) }, ...(opened.length ? [{ name: 'opened4', type: 'ipv4_addr', flags: ['interval'], elements: opened }] : [])],
    chains: [
      { name: 'forward', hook: filter('forward'), rules: [[{ k: 'iif', v: run.hostIf }, { k: 'jump', v: 'from_sandbox' }]] },
      { name: 'input', hook: filter('input'), rules: [[{ k: 'iif', v: run.hostIf }, { k: 'jump', v: 'to_host' }]] },
      { name: 'from_sandbox', rules: from.flatMap(withResets) },
      { name: 'to_host', rules: toHost.flatMap(withResets) },
      { name: 'relay_out', hook: filter('output'), rules: relay },
    ],
  };
}

/**
 * Without root, the wall in the sandbox's own namespace (design 3.3, "Rootless"): an output chain
 * of its table, after the redirect. Loopback stays open (the resolver and the relay are there; a
 * packet the nat chain redirected still names eth0 as its device, hence the 127.0.0.0/8 match),
 * and the rest is judged as the host's wall judges it. It holds while nothing inside has NET_ADMIN
 * or NET_RAW (normalize refuses those in cap_add with egress). Its refusals go to NFLOG group
 * INSIDE_NFLOG_GROUP of that namespace, where sbx-egress reads them as it does the host wall's.
 */
export function insideWall(rules: readonly PlannedRule[], classes: readonly string[]): Pick<NftTable, 'counters' | 'sets' | 'chains'> {
  const { from, opened, counters } = wallBody(rules, classes, INSIDE_NFLOG_GROUP);
  const wall: Stmt[][] = [[{ k: 'oif', v: 'lo' }, { k: 'accept' }], [{ k: 'daddr', v: '127.0.0.0/8' }, { k: 'accept' }], ...from];
  return {
    counters,
    sets: [{ name: 'class4', type: 'ipv4_addr', flags: ['interval'], elements: classSet(classes) }, ...(opened.length ? [{ name: 'opened4', type: 'ipv4_addr', flags: ['interval'], elements: opened }] : [])],
    chains: [{ name: 'wall', hook: { type: 'filter', hook: 'output', priority: 0 }, rules: wall.flatMap(withResets) }],
  };
}

/** The NFLOG group and the relay's mark for a sandbox: derived from its name, the engine moves to the next free one when another live sandbox has it. */
export function egressIds(name: string, taken: { groups: number[]; marks: number[] }): { group: number; mark: number } {
  const h = Buffer.from(sha256Hex(name), 'hex');
  let g = h[0]!, m = h.readUInt16BE(1);
  for (let i = 0; i < 256 && taken.groups.includes(0x5b00 + g); i++) g = (g + 1) % 256;
  for (let i = 0; i < 65536 && taken.marks.includes(0x5b7e0000 + m); i++) m = (m + 1) % 65536;
  return { group: 0x5b00 + g, mark: 0x5b7e0000 + m };
}
