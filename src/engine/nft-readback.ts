// The attestation's reading of an nftables table: `nft -j list table` (JSON) and the table compile
// emitted (plan/egress.ts's NftTable) both brought to one canonical form, a few strings per rule,
// for the expression kinds these tables use; anything else in the readback is kept as `?<json>`
// and so is a mismatch. Pure.
import type { NftTable, Stmt } from '../plan/egress';

export interface CanonTable { counters: string[]; sets: { name: string; elements?: string[] }[]; chains: { name: string; hook: string; rules: string[][] }[] }

const cidr = (s: string) => (s.startsWith('@') || s.includes('/') ? s : `${s}/32`);

function canonStmt(s: Stmt, relay?: number): string {
  switch (s.k) {
    case 'iif': return `iif=${s.v}`;
    case 'oif': return `oif=${s.v}`;
    case 'daddr': return `daddr=${cidr(s.v)}`;
    case 'l4': return `l4=${[...s.v].sort().join(',')}`;
    case 'dport': return `dport=${s.v}`;
    case 'mark': return `mark=${s.v}`;
    case 'counter': return `counter=${s.v}`;
    case 'log': return `log=${s.v}/${s.group}`;
    case 'jump': return `jump=${s.v}`;
    case 'redirect': return relay === undefined ? 'redirect' : `redirect=${relay}`;
    default: return s.k;
  }
}

/** The canonical form of what compile emitted; relay: the relay's port standing for @RELAY@. */
export function canonOfTable(t: NftTable, relay?: number): CanonTable {
  return {
    counters: [...t.counters].sort(),
    sets: t.sets.map((s) => ({ name: s.name, ...(s.flags.includes('timeout') ? {} : { elements: s.elements.map((e) => (s.type === 'ipv4_addr' ? cidr(e) : e)) }) })),
    chains: t.chains.map((c) => ({ name: c.name, hook: c.hook ? `${c.hook.type}/${c.hook.hook}/${c.hook.priority}/accept` : '', rules: c.rules.map((r) => r.map((x) => canonStmt(x, relay))) })),
  };
}

type J = Record<string, unknown>;
const obj = (x: unknown): J => (x && typeof x === 'object' ? (x as J) : {});

/** A port value of a match: a number, a range, a set of them, or a named set. */
function portValue(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'string') return String(v);
  const o = obj(v);
  if (Array.isArray(o.range)) return `${o.range[0]}-${o.range[1]}`;
  if (Array.isArray(o.set)) return o.set.map(portValue).join(',');
  return `?${JSON.stringify(v)}`;
}
function addrValue(v: unknown): string {
  if (typeof v === 'string') return cidr(v);
  const p = obj(obj(v).prefix);
  return p.addr !== undefined ? `${p.addr}/${p.len}` : `?${JSON.stringify(v)}`;
}

/** One match expression of nft's JSON, as canonical strings (a `tcp dport` is a protocol and a port). */
function canonMatch(m: J): string[] {
  const left = obj(m.left), right = m.right;
  const meta = obj(left.meta).key, pay = obj(left.payload);
  if (m.op !== '==' && m.op !== 'in') return [`?${JSON.stringify(m)}`];
  if (meta === 'iifname') return [`iif=${right}`];
  if (meta === 'oifname') return [`oif=${right}`];
  if (meta === 'nfproto' && right === 'ipv6') return ['v6'];
  if (meta === 'l4proto') return [`l4=${(typeof right === 'string' ? [right] : (obj(right).set as string[] ?? [])).slice().sort().join(',')}`];
  if (meta === 'mark') return [`mark=${right}`];
  if (pay.protocol === 'ip' && pay.field === 'daddr') return [`daddr=${addrValue(right)}`];
  if (pay.field === 'dport' && pay.protocol === 'th') return [`dport=${portValue(right)}`];
  if (pay.field === 'dport' && (pay.protocol === 'tcp' || pay.protocol === 'udp')) return [`l4=${pay.protocol}`, `dport=${portValue(right)}`];
  if (obj(left.ct).key === 'state' && Array.isArray(right) && [...right].sort().join(',') === 'established,related') return ['ct'];
  if (obj(left.fib).result === 'type' && right === 'local') return ['local'];
  return [`?${JSON.stringify(m)}`];
}

function canonExpr(e: J): string[] {
  const [k, v] = Object.entries(e)[0] ?? ['', undefined];
  const o = obj(v);
  switch (k) {
    case 'match': return canonMatch(o);
    case 'counter': return typeof v === 'string' ? [`counter=${v}`] : [`?${JSON.stringify(e)}`];
    case 'log': return [`log=${o.prefix}/${o.group}`];
    case 'accept': return ['accept'];
    case 'reject': return o.type === 'icmpx' && o.expr === 'admin-prohibited' ? ['reject'] : o.type === 'tcp reset' ? ['reset'] : [`?${JSON.stringify(e)}`];
    case 'jump': return [`jump=${o.target}`];
    case 'redirect': return [`redirect=${o.port}`];
    default: return [`?${JSON.stringify(e)}`];
  }
}

/** The canonical form of `nft -j list table` output. */
export function canonOfJson(json: unknown): CanonTable {
  const items = (obj(json).nftables as J[] | undefined) ?? [];
  const out: CanonTable = { counters: [], sets: [], chains: [] };
  for (const it of items) {
    if (it.counter) out.counters.push(String(obj(it.counter).name));
    else if (it.set) {
      const s = obj(it.set);
      const flags = (s.flags as string[] | undefined) ?? [];
      const elem = (s.elem as unknown[] | undefined) ?? [];
      out.sets.push({ name: String(s.name), ...(flags.includes('timeout') ? {} : { elements: elem.map((e) => (s.type === 'ipv4_addr' ? addrValue(e) : portValue(e))) }) });
    } else if (it.chain) {
      const c = obj(it.chain);
      out.chains.push({ name: String(c.name), hook: c.hook ? `${c.type}/${c.hook}/${c.prio}/${c.policy}` : '', rules: [] });
    } else if (it.rule) {
      const r = obj(it.rule);
      out.chains.find((c) => c.name === r.chain)?.rules.push(((r.expr as J[] | undefined) ?? []).flatMap(canonExpr));
    }
  }
  out.counters.sort();
  return out;
}

/** The packets a named counter of `nft -j list table` output has counted (0 when it is absent). */
export function counterPackets(json: unknown, name: string): number {
  const c = ((obj(json).nftables as J[] | undefined) ?? []).map((it) => obj(it.counter)).find((c) => c.name === name);
  return typeof c?.packets === 'number' ? c.packets : 0;
}

/** The first difference between what was emitted and what was read back, in words; undefined when equal. The rule's counter (rN) names the egress rule it enforces. */
export function tableDifference(want: CanonTable, got: CanonTable): { what: string; rule?: number } | undefined {
  if (want.counters.join() !== got.counters.join()) return { what: `counters ${got.counters.join(', ') || 'none'}, expected ${want.counters.join(', ')}` };
  for (const s of want.sets) {
    const g = got.sets.find((x) => x.name === s.name);
    if (!g) return { what: `no set ${s.name}` };
    if (s.elements && s.elements.join() !== (g.elements ?? []).join()) return { what: `set ${s.name} holds ${(g.elements ?? []).join(', ') || 'nothing'}, expected ${s.elements.join(', ')}` };
  }
  if (got.sets.length !== want.sets.length) return { what: `sets ${got.sets.map((s) => s.name).join(', ')}, expected ${want.sets.map((s) => s.name).join(', ')}` };
  if (got.chains.map((c) => c.name).join() !== want.chains.map((c) => c.name).join()) return { what: `chains ${got.chains.map((c) => c.name).join(', ')}, expected ${want.chains.map((c) => c.name).join(', ')}` };
  for (const [i, c] of want.chains.entries()) {
    const g = got.chains[i]!;
    if (g.hook !== c.hook) return { what: `chain ${c.name} hooked as ${g.hook || 'none'}, expected ${c.hook || 'none'}` };
    const n = Math.max(c.rules.length, g.rules.length);
    for (let k = 0; k < n; k++) {
      const w = c.rules[k]?.join(' '), h = g.rules[k]?.join(' ');
      if (w === h) continue;
      const counter = /counter=r(\d+)/.exec(w ?? h ?? '')?.[1];
      return { what: `chain ${c.name} rule ${k + 1}: ${h ?? 'missing'}${w ? `, expected ${w}` : ' (not emitted)'}`, ...(counter ? { rule: Number(counter) } : {}) };
    }
  }
  return undefined;
}
