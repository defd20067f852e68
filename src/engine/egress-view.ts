// What the attestation of network.egress reads before exec (design 6), in the CLI as root: the
// probes from inside the sandbox's network namespace (libsbx's netprobe: the kernel's answers), both
// tables read back with `nft -j` (on the host, and in the sandbox's namespace through nsenter), all
// at once; sbx-egress's status file and the sandbox's resolv.conf. attest-egress.ts judges them.
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import type { LibSbx } from '../ffi/libsbx';
import { listTableJson, readEgressStatus } from '../host/egress';
import { canaryCandidates, canaryName, insideTable, namedByAllow, range4, type NftTable } from '../plan/egress';
import { findStep } from '../plan/steps';
import type { Plan } from '../plan/types';
import type { DnsOutcome, EgressProbes, EgressView, Read } from './attest-egress';
import type { EgressRun } from './egress';
import { canonOfJson, canonOfTable, counterPackets } from './nft-readback';
import { netprobe, type NetProbe, type NetProbeResult } from './netprobe';
import { policyRulesOf } from './egress';

/** A local answer's budget: sbx-egress answers from memory, inside the same host. */
const LOCAL_MS = 1000;
/** How long the UDP query to the upstream waits for its ICMP error before the wall's counter is asked. */
const UDP_MS = 20;

const inHostNetwork = (addr: string) => Object.values(networkInterfaces()).some((l) => (l ?? []).some((a) => a.family === 'IPv4' && a.cidr && range4(a.cidr)[0] <= range4(addr)[0] && range4(addr)[0] <= range4(a.cidr)[1]));

/** The probes, in the order probeView reads them. */
function probeList(plan: Plan, run: EgressRun): { list: NetProbe[]; upstream?: string; canary?: string; gateway?: string; metadata: boolean } {
  const rules = policyRulesOf(plan).rules;
  const nonce = run.record.nonce;
  const upstreamAll = (run.policy ?? '').split('\n').flatMap((l) => /^upstream (\S+)$/.exec(l)?.[1] ?? []);
  const canary = canaryCandidates(rules).find((a) => !inHostNetwork(a));
  // A loopback upstream would mean the sandbox's own loopback, and one an allow rule names may be
  // asked straight: the canary address on port 53 instead.
  const upstream = upstreamAll.find((u) => !u.startsWith('127.') && !namedByAllow(rules, u)) ?? canary;
  const gw = findStep(plan.steps, 'net.veth')?.args.gateway ?? run.gateway;
  const gateway = gw && !namedByAllow(rules, gw) ? gw : undefined;
  const metadata = !namedByAllow(rules, '169.254.169.254');
  const list: NetProbe[] = [
    { kind: 'dns', transport: 'udp', addr: '127.0.0.53', name: 'id.sandbox', type: 'TXT', class: 'CH', timeoutMs: LOCAL_MS },
    { kind: 'dns', transport: 'udp', addr: '127.0.0.53', name: canaryName(nonce), type: 'A', timeoutMs: LOCAL_MS },
    // UDP's refusal is an ICMP error, which the host may hold back (its rate limit per address):
    // a short wait, then the wall's counter says whether the query was caught there.
    ...(upstream ? [{ kind: 'dns', transport: 'udp', addr: upstream, name: canaryName(nonce), timeoutMs: UDP_MS } as NetProbe, { kind: 'dns', transport: 'tcp', addr: upstream, name: canaryName(nonce) } as NetProbe] : []),
    ...(canary ? [{ kind: 'tcp', addr: canary, port: 443 } as NetProbe] : []),
    ...(metadata ? [{ kind: 'tcp', addr: '169.254.169.254', port: 80 } as NetProbe] : []),
    ...(gateway ? [{ kind: 'tcp', addr: gateway, port: 22 } as NetProbe] : []),
    { kind: 'inet6-addrs' },
  ];
  return { list, upstream, canary, gateway, metadata };
}

const dnsOf = (r: NetProbeResult): DnsOutcome => (r.outcome === 'answered' ? { rcode: r.rcode, txt: r.text } : { error: `${r.outcome}${r.code ? ` (${r.code})` : ''}`, refused: r.outcome === 'refused' || r.outcome === 'unreachable' });
const connOf = (r: NetProbeResult) => ({ outcome: r.outcome === 'answered' || r.outcome === 'counted' ? 'error' as const : r.outcome, errno: r.errno, us: r.us });

async function probeView(pid: number, plan: Plan, run: EgressRun, lib: LibSbx): Promise<Read<EgressProbes>> {
  const p = probeList(plan, run);
  let res: NetProbeResult[];
  try { res = await netprobe(pid, p.list, { lib, joinUserns: !!run.rootless }); } catch (e) { return { error: `the probes could not run in the sandbox's network namespace: ${(e as Error).message}` }; }
  let i = 0;
  const next = () => res[i++]!;
  const identity = dnsOf(next()), canaryNameR = dnsOf(next());
  const upstream = p.upstream ? { addr: p.upstream, udp: dnsOf(next()), tcp: dnsOf(next()) } : undefined;
  const canary = p.canary ? { addr: p.canary, port: 443, ...connOf(next()) } : undefined;
  const metadata = p.metadata ? connOf(next()) : undefined;
  const gateway = p.gateway ? { addr: p.gateway, ...connOf(next()) } : undefined;
  // lo's ::1 is no way out: only a namespace with another address (the probe's text names the first) counts, then with all of them.
  const v6 = next();
  return { identity, canaryName: canaryNameR, ...(upstream ? { upstream } : {}), ...(canary ? { canary } : {}), ...(metadata ? { metadata } : {}), ...(gateway ? { gateway } : {}), ipv6: v6.outcome !== 'counted' ? -1 : v6.text ? v6.answers ?? 1 : 0 };
}

async function tableView(want: NftTable, relay: number | undefined, netns?: string, userns?: string): Promise<Read<{ want: ReturnType<typeof canonOfTable>; got: ReturnType<typeof canonOfTable> }>> {
  try { return { want: canonOfTable(want, relay), got: canonOfJson(await listTableJson(want.name, netns, userns)) }; } catch (e) { return { error: (e as Error).message }; }
}

/**
 * Everything the egress verdicts need, the probes and both tables read at once. A UDP query to the
 * upstream that got no ICMP error back is judged by the wall's `dns` counter, read again after the
 * probes: nothing else in the sandbox has run yet, so only the probes reach it (the TCP probe to
 * port 53 counts one packet, refused by a reset).
 */
export async function readEgressView(pid: number, plan: Plan, run: EgressRun, stateDir: string, lib: LibSbx): Promise<EgressView> {
  const { rules, insideWall } = policyRulesOf(plan);
  const wallJson = run.wall ? listTableJson(run.wall.name).catch((e: Error) => e) : undefined;
  // Without root the wall is the sandbox's own table's chain, read in its user and network namespaces.
  const netns = `/proc/${pid}/ns/net`, userns = run.rootless ? `/proc/${pid}/ns/user` : undefined;
  const [probes, inside, json] = await Promise.all([probeView(pid, plan, run, lib), tableView(insideTable(rules, insideWall ? run.classes : undefined), run.record.relay, netns, userns), wallJson]);
  const wall = !run.wall || json === undefined ? undefined : json instanceof Error ? { error: json.message } : { want: canonOfTable(run.wall), got: canonOfJson(json) };
  const up = 'upstream' in probes ? probes.upstream : undefined;
  const connected = 'ipv6' in probes && [probes.canary, probes.metadata, probes.gateway].some((c) => c?.outcome === 'connected');
  if ((run.wall || insideWall) && (up?.udp.error?.startsWith('timeout') || connected)) {
    try {
      const again = run.wall ? await listTableJson(run.wall.name) : await listTableJson(insideTable(rules).name, netns, userns);
      if (up?.udp.error?.startsWith('timeout')) up.udp.walled = counterPackets(again, 'dns') > (up.tcp.refused ? 1 : 0);
      // Only the probes have sent anything: an allow rule's counter that moved let one through.
      if (connected && 'ipv6' in probes) probes.through = rules.filter((r) => r.action === 'allow' && r.target.type === 'cidr' && counterPackets(again, `r${r.index}`) > 0).map((r) => r.index);
    } catch { /* the probe's own verdict stands */ }
  }
  let resolvConf: string | undefined;
  try { resolvConf = readFileSync(`/proc/${pid}/root/etc/resolv.conf`, 'utf8'); } catch { /* absent: a mismatch */ }
  return { nonce: run.record.nonce, digest: run.record.digest, status: readEgressStatus(stateDir), resolvConf, ...(wall ? { wall } : {}), inside, probes };
}
