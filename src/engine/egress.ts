// The host steps of network.egress, in the CLI as root: the wall's table (loaded in net.nat's nft
// transaction), sbx-egress's start with the run's policy, and the facts only a run knows (the
// nonce, the NFLOG group and relay mark, the host's resolvers and addresses) that the pure
// plan/egress.ts takes as arguments. The attestation reads the same run values back (egress.json).
import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { libraryPath } from '../ffi/libsbx';
import { withLock } from '../host/lock';
import { netLock } from '../host/network';
import { egressRunning, readEgressRecord, startEgress, takenEgressIds, writeEgressRecord, type EgressRecord } from '../host/egress';
import { egressIds, INSIDE_NFLOG_GROUP, policyText, runClasses, sha256, tableText, wallTable, type NftTable, type PlannedRule, type PolicyRules } from '../plan/egress';
import { findStep, stepsOf } from '../plan/steps';
import type { HostFeatures, Plan, StepOf } from '../plan/types';
import type { UndoList } from '../host/undo';

/** What these steps use of the run's host context (engine/host-steps.ts's HostContext). */
export interface EgressHost { plan: Plan; host: HostFeatures; state: string; undo: UndoList; corruptAt?: string; egress?: EgressRun;
  /** Rootless: the user-mode stack's gateway, a refused class. */
  gateway?: string }

/** sbx-egress, built beside libsbx (native/Makefile). */
export function egressPath(): string {
  return process.env.SANDBOX_EGRESS ?? join(dirname(libraryPath()), 'sbx-egress');
}

/** What a run of an egress sandbox decided, kept in the host context for the later steps and the attestation. */
export interface EgressRun {
  record: EgressRecord;
  classes: string[];
  /** Rootless: the user-mode stack's gateway (the attestation probes it). */
  gateway?: string;
  /** Rootless: the wall is in the sandbox's own table (the attestation joins its user namespace). */
  rootless?: boolean;
  /** The wall as loaded (root). */
  wall?: NftTable;
  policy?: string;
}

/** The plan's rules, default and extra hosts, as plan/egress.ts takes them. */
export function policyRulesOf(plan: Plan): PolicyRules {
  const rules: PlannedRule[] = stepsOf(plan.steps, 'net.egress.rule').map((s) => ({ index: s.args.index, action: s.args.action, target: s.args.target, ports: s.args.ports, protocols: s.args.protocols, text: s.args.text, src: s.source }));
  // Without root (a user-mode stack, no host wall) the wall goes in the sandbox's own table.
  const insideWall = !!findStep(plan.steps, 'net.usernet') && !findStep(plan.steps, 'net.egress.wall');
  return { rules, defaultSrc: findStep(plan.steps, 'net.egress.default')?.source ?? 'default', extra: findStep(plan.steps, 'net.hosts')?.args.extra ?? [], ...(insideWall ? { insideWall } : {}) };
}

/** The host's own IPv4 addresses, each refused to the sandbox unless a rule names it. */
export function hostAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((l) => (l ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address));
}

/** The host's resolvers from /etc/resolv.conf, loopback ones too: sbx-egress asks them from the host's namespace. */
export function hostResolvers(): string[] {
  let text = '';
  try { text = readFileSync('/etc/resolv.conf', 'utf8'); } catch { /* none */ }
  return text.split('\n').map((l) => /^\s*nameserver\s+([0-9.]+)\s*$/.exec(l)?.[1]).filter((x): x is string => !!x);
}

/** The sandbox's own network, a refused class: the veth's subnet (gateway included) as root;
 * without root pasta's gateway (pasta copies the host's addresses, which are classes already),
 * or slirp4netns's whole 10.0.2.0/24 (its gateway and its DNS at 10.0.2.3). */
function ownNetwork(ctx: EgressHost): string {
  const veth = findStep(ctx.plan.steps, 'net.veth');
  if (veth) return veth.args.subnet;
  const usernet = findStep(ctx.plan.steps, 'net.usernet');
  if (usernet?.args.tool === 'slirp4netns') return '10.0.2.0/24';
  return ctx.gateway ? `${ctx.gateway}/32` : '0.0.0.0/32';
}

/** The run's nonce, group and mark, recorded (without a process yet) under the network lock, so that two runs starting at once take different ones. */
export async function pickEgress(ctx: EgressHost): Promise<EgressRun> {
  if (ctx.egress) return ctx.egress;
  const classes = runClasses(ownNetwork(ctx), hostAddresses());
  const record = await withLock(netLock(ctx.host.stateRoot), () => {
    const ids = egressIds(ctx.plan.name, takenEgressIds(ctx.host.stateRoot, ctx.state));
    // Without root the wall logs in the sandbox's own namespace, where the group is its alone.
    if (ctx.host.rootless) ids.group = INSIDE_NFLOG_GROUP;
    const r: EgressRecord = { ...ids, nonce: randomBytes(16).toString('hex'), digest: '' };
    writeEgressRecord(ctx.state, r);
    return r;
  });
  ctx.egress = { record, classes, ...(ctx.host.rootless ? { rootless: true, ...(ctx.gateway ? { gateway: ctx.gateway } : {}) } : {}) };
  return ctx.egress;
}

/** The wall's text for net.nat's transaction (test-only SANDBOX_TEST_CORRUPT: without its final refusal, for the attestation to catch). */
export async function wallScript(ctx: EgressHost, step: StepOf<'net.egress.wall'>): Promise<string> {
  const eg = await pickEgress(ctx);
  const wall = wallTable(policyRulesOf(ctx.plan).rules, { table: step.args.table, hostIf: step.args.interface, group: eg.record.group, mark: eg.record.mark, classes: eg.classes });
  eg.wall = wall;
  if (ctx.corruptAt !== step.id) return tableText(wall);
  const chains = wall.chains.map((c) => (c.name === 'from_sandbox' ? { ...c, rules: c.rules.slice(0, -1) } : c));
  return tableText({ ...wall, chains });
}

/** Starts sbx-egress with the run's policy; its undo (stop by record) is recorded first. */
export async function startEgressStep(ctx: EgressHost, s: StepOf<'net.egress.start'>, pid: number, holder: number): Promise<void> {
  const eg = await pickEgress(ctx);
  const upstream = s.args.upstream.length ? s.args.upstream : hostResolvers();
  if (!upstream.length) throw new Error('the host names no resolver in /etc/resolv.conf for the sandbox\'s resolver to ask; give the file `dns:`');
  const { group, mark, nonce } = eg.record;
  const policy = policyText(policyRulesOf(ctx.plan), { nonce, group, mark, upstream, classes: eg.classes });
  eg.policy = policy;
  ctx.undo.record(s.id, { kind: 'net.egress.stop', args: { state: ctx.state } });
  // Without root sbx-egress runs as the caller and joins the sandbox's user namespace (which the
  // caller owns) before its network namespace.
  const userns = ctx.host.rootless ? { userns: `/proc/${pid}/ns/user` } : {};
  eg.record = await startEgress({ binary: egressPath(), stateDir: ctx.state, holder, netns: `/proc/${pid}/ns/net`, ...userns, policy, record: { ...eg.record, digest: sha256(policy) } });
}

/** The run's record, for a reader after the run (the attestation of a restart has none in memory). */
export const egressRecordOf = (stateDir: string) => readEgressRecord(stateDir);

/** For ps and inspect: whether the sandbox's sbx-egress (its resolver and relay) still runs;
 * undefined without one. Once it has ended the sandbox fails closed: names no longer resolve and
 * host rules refuse everything, until `down` and `up` start a new one. */
export function egressAlive(stateDir: string): boolean | undefined { return egressRunning(stateDir); }
