// The attestation of network.egress (design 6), pure: verdicts for the egress steps and the
// resolv.conf under egress, from an EgressView that readEgressView (engine/egress-view.ts) gathers
// before exec: the kernel's answers to probes run from inside the sandbox's network namespace,
// both tables read back with `nft -j`, sbx-egress's status file and the sandbox's resolv.conf.
import { sourceText } from '../plan/render';
import type { Plan, Step, StepOf, Verdict } from '../plan/types';
import type { CanonTable } from './nft-readback';
import { tableDifference } from './nft-readback';

/** A TCP connect's result, as the probe saw it from inside. */
export interface ConnectOutcome { outcome: 'connected' | 'refused' | 'unreachable' | 'timeout' | 'error'; errno?: number; us?: number }
/** A DNS query's result: the answer's rcode (and first TXT), or why none came; refused: the kernel refused it at once (an ICMP error or a reset), so it never reached a server. */
export interface DnsOutcome { rcode?: number; txt?: string; error?: string; refused?: boolean;
  /** A UDP query that got no answer, which the wall's `dns` counter shows it refused: the host
   * sends ICMP errors to one address at most 6 at once then 1 a second, so a refusal may be silent. */
  walled?: boolean }

export interface EgressProbes {
  /** CH TXT id.sandbox. to 127.0.0.53: the run's nonce. */
  identity: DnsOutcome;
  /** A canary-<nonce>.invalid to 127.0.0.53: NXDOMAIN. */
  canaryName: DnsOutcome;
  /** DNS straight to the resolver's upstream (a non-loopback one), over UDP and TCP: refused. */
  upstream?: { addr: string; udp: DnsOutcome; tcp: DnsOutcome };
  /** TCP to an address no rule allows: refused at once. */
  canary?: { addr: string; port: number } & ConnectOutcome;
  /** TCP to 169.254.169.254:80 and to the gateway: refused. */
  metadata?: ConnectOutcome;
  gateway?: { addr: string } & ConnectOutcome;
  /** When a probe got through: the allow rules whose wall counters counted packets (nothing else has run yet), by index. */
  through?: number[];
  /** IPv6 addresses in the sandbox's namespace when one is not lo's ::1 (all of them, ::1 too), else 0; -1: not counted. */
  ipv6: number;
}

export type Read<T> = T | { error: string };
const failed = <T extends object>(x: Read<T> | undefined): x is { error: string } => !!x && 'error' in x;

export interface EgressView {
  /** The run's nonce and exact policy digest (egress.json). */
  nonce: string;
  digest: string;
  /** egress.status as sbx-egress wrote it. */
  status?: { digest?: string; nonce?: string };
  /** The sandbox's /etc/resolv.conf, read through /proc/PID/root. */
  resolvConf?: string;
  wall?: Read<{ want: CanonTable; got: CanonTable }>;
  inside?: Read<{ want: CanonTable; got: CanonTable }>;
  probes?: Read<EgressProbes>;
}

export const EGRESS_RESOLV = 'nameserver 127.0.0.53\noptions edns0\n';
/** A refusal seen from inside within this many µs counts as "at once"; a slower one means a drop or a reply from further away. */
const QUICK_US = 50_000;

type Out = (s: Step, verdict: Verdict['verdict'], detail: string) => void;

const ruleName = (plan: Plan, index: number | undefined) => {
  const r = plan.steps.find((s): s is StepOf<'net.egress.rule'> => s.kind === 'net.egress.rule' && s.args.index === index);
  const d = plan.steps.find((s) => s.kind === 'net.egress.default');
  return r ? `rule ${index} "${r.args.text}" (${sourceText(r.source)})` : `the default refusal (${d ? sourceText(d.source) : 'egress'})`;
};

function tableVerdict(plan: Plan, s: Step, t: EgressView['wall'], what: string, out: Out): { rule?: number } | undefined {
  if (!t) { out(s, 'mismatch', `expected ${what} read back, found nothing to read`); return {}; }
  if (failed(t)) { out(s, 'mismatch', `expected ${what} read back, found ${t.error}`); return {}; }
  const d = tableDifference(t.want, t.got);
  if (!d) { out(s, 'verified', `${what} as compiled`); return undefined; }
  out(s, 'mismatch', `expected ${what} as compiled, found ${d.what}; it enforces ${ruleName(plan, d.rule)}`);
  return d;
}

export function attestEgressWall(plan: Plan, s: StepOf<'net.egress.wall'>, v: EgressView | undefined, out: Out): void {
  tableVerdict(plan, s, v?.wall, `the wall (table inet ${s.args.table})`, out);
}

export function attestEgressRule(plan: Plan, s: StepOf<'net.egress.rule'>, v: EgressView | undefined, out: Out): void {
  if (!v) { out(s, 'mismatch', 'expected the egress enforcement read back, found no egress state'); return; }
  const parts: string[] = [];
  const wall = !failed(v.wall) && v.wall ? tableDifference(v.wall.want, v.wall.got) : { what: failed(v.wall) ? v.wall.error : 'no wall read', rule: undefined };
  if (s.args.enforcedBy.includes('wall-host')) {
    if (wall && (wall.rule === s.args.index || wall.rule === undefined)) { out(s, 'mismatch', `expected rule ${s.args.index} in the wall as compiled, found ${wall.what}`); return; }
    parts.push(`in the wall as counter r${s.args.index}`);
  }
  const inS = s.args.enforcedBy.includes('wall-inside');
  if (inS || s.args.enforcedBy.includes('resolver') || s.args.enforcedBy.includes('relay')) {
    const inside = !failed(v.inside) && v.inside ? tableDifference(v.inside.want, v.inside.got) : { what: failed(v.inside) ? v.inside.error : 'no table read' };
    if (inside) { out(s, 'mismatch', `expected the sandbox's table ${'sbx_egress'} as compiled, found ${inside.what}`); return; }
    if (inS && s.args.target.type === 'cidr') parts.push(`in the sandbox's own wall (table inet sbx_egress, chain wall) as counter r${s.args.index}`);
    if (!s.args.enforcedBy.includes('resolver') && !s.args.enforcedBy.includes('relay')) { out(s, 'verified', parts.join('; ')); return; }
    if (v.status?.digest !== v.digest) { out(s, 'mismatch', `expected sbx-egress to run the policy ${v.digest.slice(0, 12)}, found ${v.status?.digest?.slice(0, 12) ?? 'no status'}`); return; }
    parts.push(`in the policy sbx-egress runs (sha256 ${v.digest.slice(0, 12)}) and the sandbox's redirect table`);
  }
  out(s, 'verified', parts.join('; '));
}

export function attestEgressStart(s: StepOf<'net.egress.start'>, v: EgressView | undefined, out: Out): void {
  if (!v) { out(s, 'mismatch', 'expected sbx-egress running, found no record of it'); return; }
  if (v.status?.digest !== v.digest) { out(s, 'mismatch', `expected egress.status to report the policy's digest ${v.digest}, found ${v.status?.digest ?? 'no status file'}`); return; }
  if (failed(v.probes) || !v.probes) { out(s, 'mismatch', `expected the resolver to answer for the run, found the probe failed: ${failed(v.probes) ? v.probes.error : 'not run'}`); return; }
  const id = v.probes.identity;
  out(s, id.txt === v.nonce ? 'verified' : 'mismatch', id.txt === v.nonce ? `127.0.0.53 answers id.sandbox with the run's nonce; egress.status reports policy ${v.digest.slice(0, 12)}` : `expected 127.0.0.53 to answer id.sandbox (CH TXT) with the run's nonce, found ${id.error ?? (id.txt !== undefined ? `"${id.txt}"` : `rcode ${id.rcode}`)}`);
}

const refusedQuickly = (c: ConnectOutcome) => (c.outcome === 'refused' || c.outcome === 'unreachable') && (c.us === undefined || c.us <= QUICK_US);
const connText = (c: ConnectOutcome) => `${c.outcome}${c.errno ? ` (errno ${c.errno})` : ''}${c.us !== undefined ? ` in ${(c.us / 1000).toFixed(2)} ms` : ''}`;
const dnsText = (d: DnsOutcome) => d.error ?? (d.rcode !== undefined ? `an answer (rcode ${d.rcode})` : 'no answer');

/** The canaries of the default refusal, each a way out that must be shut; one that got through names the rule whose counter counted it. */
export function attestEgressDefault(plan: Plan, s: StepOf<'net.egress.default'>, v: EgressView | undefined, out: Out): void {
  const p = v?.probes;
  if (!p || failed(p)) { out(s, 'mismatch', `expected the canaries run from inside the sandbox, found ${p ? p.error : 'none run'}`); return; }
  const bad: string[] = [];
  if (p.canaryName.rcode !== 3) bad.push(`canary-<nonce>.invalid got ${dnsText(p.canaryName)}, expected NXDOMAIN`);
  if (p.upstream) for (const [proto, d] of [['UDP', p.upstream.udp], ['TCP', p.upstream.tcp]] as const) if (!d.refused && !d.walled) bad.push(`DNS over ${proto} straight to ${p.upstream.addr} got ${dnsText(d)}, expected it refused at once`);
  const via = p.through?.length ? ` through ${p.through.map((i) => ruleName(plan, i)).join(', ')}` : '';
  if (p.canary && !refusedQuickly(p.canary)) bad.push(`${p.canary.addr}:${p.canary.port} ${connText(p.canary)} from inside the sandbox${p.canary.outcome === 'connected' ? via : ''}, expected it refused at once`);
  if (p.metadata && !refusedQuickly(p.metadata)) bad.push(`169.254.169.254:80 ${connText(p.metadata)}${p.metadata.outcome === 'connected' ? via : ''}, expected it refused`);
  if (p.gateway && !refusedQuickly(p.gateway)) bad.push(`the gateway ${p.gateway.addr}:22 ${connText(p.gateway)}${p.gateway.outcome === 'connected' ? via : ''}, expected it refused`);
  if (p.ipv6 < 0) bad.push('the IPv6 addresses of the sandbox could not be counted, expected none');
  if (p.ipv6 > 0) bad.push(`${p.ipv6} IPv6 address${p.ipv6 > 1 ? 'es' : ''} in the sandbox, expected none`);
  const ok = ['canary name NXDOMAIN', p.upstream ? `DNS to ${p.upstream.addr} refused` : '', p.canary ? `${p.canary.addr}:${p.canary.port} refused` : '', p.metadata ? 'metadata refused' : '', p.gateway ? 'gateway refused' : '', 'no IPv6'].filter(Boolean).join(', ');
  out(s, bad.length ? 'mismatch' : 'verified', bad.length ? bad.join('; ') : ok);
}

/** resolv.conf under egress: exactly the resolver, so that no other server is asked. */
export function attestEgressResolv(s: StepOf<'net.resolv'>, v: EgressView | undefined, out: Out): void {
  const got = v?.resolvConf;
  out(s, got === EGRESS_RESOLV ? 'verified' : 'mismatch', got === EGRESS_RESOLV ? 'the sandbox\'s /etc/resolv.conf names only 127.0.0.53' : `expected the sandbox's /etc/resolv.conf to be exactly "${EGRESS_RESOLV.trim().replace('\n', '; ')}", found ${got === undefined ? 'none' : `"${got.trim().replace(/\n/g, '; ')}"`}`);
}
