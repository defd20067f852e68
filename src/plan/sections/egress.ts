// network.egress: the rules as steps (each with its line and the components that enforce it), the
// default refusal, sbx-egress's start and, as root, the host's wall, which net.nat's nftables
// transaction loads with the NAT table. Pure, like compile: what only a run knows (the nonce, the
// host's resolvers and addresses) is filled in by the engine (plan/egress.ts says how).
import type { Compilation } from './context';
import { EGRESS_DNS, enforcement, INSIDE_TABLE, policyTemplate, sha256, WEAKER_WALL, type PlannedRule } from '../egress';
import { hostInterface, nftTable } from '../paths';

/** The wall's table on the host: the NAT table's name with _eg. */
export const wallTableName = (name: string) => `${nftTable(name)}_eg`;

/** A refusal at plan time for what the attestation could not prove. */
export function egressProblems(ctx: Compilation): void {
  const eg = ctx.spec.network.egress;
  if (!eg) return;
  // The attestation asks for canary-<nonce>.invalid and expects NXDOMAIN: no rule may let it resolve.
  for (const r of eg.rules) if (r.action === 'allow' && r.target.type === 'host' && r.target.wildcard && r.target.name === 'invalid') ctx.problems.push({ src: r.src, code: 'egress-canary', message: '`*.invalid` would let the attestation\'s canary name resolve (.invalid is reserved and never exists): remove the rule' });
}

/** The wall step, right after net.nat (its rules go in the same nft transaction). */
export function egressWallStep(ctx: Compilation): void {
  const eg = ctx.spec.network.egress;
  if (!eg) return;
  const table = wallTableName(ctx.name);
  ctx.add('network', 'net:egress:wall', 'net.egress.wall', `refuse at the host's end of the veth (nftables table inet ${table}, loaded with the NAT table): IPv6, DNS to any other server, the refused addresses, and what no cidr rule allows; each refusal is logged for \`sandbox logs --denials\``, eg.src,
    { table, interface: hostInterface(ctx.name), ipv6: 'refused' }, { kind: 'net.egress.wall.remove', args: { table } });
}

/** The rules, the default and sbx-egress's start; the policy's placeholders digest goes in the start step. */
export function egressSteps(ctx: Compilation): void {
  const { spec, add } = ctx;
  const eg = spec.network.egress;
  if (!eg) return;
  const table = wallTableName(ctx.name);
  const rules: PlannedRule[] = eg.rules.map((r) => ({ index: r.index, action: r.action, target: r.target, ports: r.ports, protocols: r.protocols, text: r.text, src: r.src }));
  for (const r of rules) {
    const { enforcedBy, title } = enforcement(rules, r, table, !!ctx.host.rootless);
    add('network', `net:egress:${r.index}`, 'net.egress.rule', title, r.src, { index: r.index, action: r.action, target: r.target, ports: r.ports, protocols: r.protocols, text: r.text, enforcedBy });
  }
  const where = ctx.host.rootless ? `: ${WEAKER_WALL}, chain wall of table inet ${INSIDE_TABLE}` : '';
  add('network', 'net:egress:default', 'net.egress.default', `refuse what no rule allows, IPv6, DNS to other servers, the metadata, link-local, loopback, gateway and host addresses (unless an allow cidr rule inside them names them)${where}`, eg.src, { refused: ['ipv6', 'dns-elsewhere', 'classes', 'unmatched'] });
  const upstream = spec.network.dns.map((d) => d.value);
  const extra = spec.network.extraHosts.map((h) => `${h.ip} ${h.host}`);
  const policyDigest = `sha256:${sha256(policyTemplate({ rules, defaultSrc: eg.src, extra, ...(ctx.host.rootless ? { insideWall: true } : {}) }, upstream))}`;
  const asks = upstream.length ? `asks ${upstream.join(', ')}` : 'asks the host\'s resolvers';
  add('network', 'net:egress:start', 'net.egress.start', `run sbx-egress: resolver ${EGRESS_DNS} (${asks}), relay for name rules; lives as long as the sandbox`, eg.src,
    { dns: EGRESS_DNS, upstream, policyDigest, where: 'host' }, { kind: 'net.egress.stop', args: {} });
}
