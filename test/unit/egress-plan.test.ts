// Egress in the plan and the engine's pure parts: the steps and their order, the policy text of
// EGRESS-CONTRACT 3, the nftables tables (compared with what nft 1.0.6 read back on this machine),
// the attestation's verdicts on made-up views, and the undo kinds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compile } from '../../src/plan/compile';
import { checkOrder } from '../../src/plan/order';
import { findStep, stepsOf } from '../../src/plan/steps';
import type { Step } from '../../src/plan/types';
import { canaryCandidates, insideTable, insideTableText, mergeRanges, policyText, runClasses, tableText, wallTable, egressIds, INSIDE_NFLOG_GROUP, type PlannedRule } from '../../src/plan/egress';
import { canonOfJson, canonOfTable, tableDifference } from '../../src/engine/nft-readback';
import { attest, type ProcView } from '../../src/engine/attest';
import type { EgressView } from '../../src/engine/attest-egress';
import { policyRulesOf } from '../../src/engine/egress';
import { undoOne } from '../../src/host/undo';
import { parseNflogGroups } from '../../src/host/egress';
import { recordingOps } from '../../src/engine/fake';
import { HYBRID_HOST, ROOT, ROOTLESS_HOST, loadText } from '../helpers/load';

const YML = `version: 1
name: web
command: [x]
network:
  mode: private
  egress:
    - allow jira.corp.test
    - deny *.corp.test
    - {action: allow, cidr: 198.18.7.12/32, ports: [7], protocol: udp}
    - deny 169.254.0.0/16
    - {action: allow, cidr: 169.254.169.254/32, ports: [80], protocol: tcp}
    - allow 198.18.0.0/15
    - {action: allow, cidr: 198.18.7.53/32, ports: [53]}
extra_hosts: ["jira.corp.test:10.1.2.3"]
dns: [198.18.7.53]
`;
const planOf = (yml = YML, host = HYBRID_HOST) => {
  const r = loadText(yml);
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message), []);
  return compile(r.spec!, host);
};

test('egress steps: one per rule with its line, the default at the egress key, the wall after net.nat, sbx-egress before resolv.conf', () => {
  const { plan, problems } = planOf();
  assert.deepEqual(problems, []);
  const net = plan.steps.filter((s) => s.stage === 'network' && s.side === 'host').map((s) => s.id);
  assert.deepEqual(net, ['net:veth', 'net:nat', 'net:egress:wall', 'net:egress:1', 'net:egress:2', 'net:egress:3', 'net:egress:4', 'net:egress:5', 'net:egress:6', 'net:egress:7', 'net:egress:default', 'net:egress:start', 'net:hosts', 'net:resolv']);
  const rule = (i: number) => plan.steps.find((s) => s.id === `net:egress:${i}`)!;
  assert.deepEqual(rule(2).source, { file: 'sandbox.yml', line: 8, col: 7 });
  assert.deepEqual(findStep(plan.steps, 'net.egress.default')!.source, { file: 'sandbox.yml', line: 6, col: 3 });
  assert.match(rule(1).title, /^allow jira\.corp\.test on every TCP port but 53 and 853: the sandbox's resolver answers it; the relay checks the TLS name or HTTP Host/);
  assert.match(rule(3).title, /^allow 198\.18\.7\.12\/32 port 7\/udp: nftables on the host \(sbx_web_eg\)$/);
  // An allow of all TCP after a name deny on the same ports: the relay judges answered addresses.
  assert.deepEqual(stepsOf(plan.steps, 'net.egress.rule').map((s) => s.args.enforcedBy.join('+')), ['resolver+relay', 'resolver+relay', 'wall-host', 'relay+wall-host', 'relay+wall-host', 'relay+wall-host', 'relay+wall-host']);
  assert.deepEqual(findStep(plan.steps, 'net.resolv')!.args, { servers: ['127.0.0.53'], options: ['edns0'] });
  const start = findStep(plan.steps, 'net.egress.start')!;
  assert.deepEqual({ ...start.args, policyDigest: start.args.policyDigest.slice(0, 7) }, { dns: '127.0.0.53', upstream: ['198.18.7.53'], policyDigest: 'sha256:', where: 'host' });
  assert.deepEqual(start.undo, { kind: 'net.egress.stop', args: {} });
  assert.deepEqual(findStep(plan.steps, 'net.egress.wall')!.undo, { kind: 'net.egress.wall.remove', args: { table: 'sbx_web_eg' } });
  assert.deepEqual(checkOrder(plan.steps), []);
});

test('the plan digest and policyDigest are the same for every run of a file (the run\'s values are not in the plan)', () => {
  const a = planOf().plan, b = planOf().plan;
  assert.equal(a.digest, b.digest);
  assert.equal(findStep(a.steps, 'net.egress.start')!.args.policyDigest, findStep(b.steps, 'net.egress.start')!.args.policyDigest);
  const c = planOf(YML.replace('allow jira.corp.test', 'allow wiki.corp.test')).plan;
  assert.notEqual(findStep(a.steps, 'net.egress.start')!.args.policyDigest, findStep(c.steps, 'net.egress.start')!.args.policyDigest);
});

test('egress without root: pasta -4 without a DNS forwarder, no host wall, the wall in the sandbox\'s own table, every rule titled weaker', () => {
  const r = loadText(YML.replace('extra_hosts: ["jira.corp.test:10.1.2.3"]\n', ''), { rootless: ROOTLESS_HOST.rootless });
  const { plan, problems } = compile(r.spec!, ROOTLESS_HOST);
  assert.deepEqual(problems, []);
  assert.equal(findStep(plan.steps, 'net.egress.wall'), undefined);
  const usernet = findStep(plan.steps, 'net.usernet')!;
  assert.deepEqual({ tool: usernet.args.tool, egress: usernet.args.egress }, { tool: 'pasta', egress: true });
  assert.match(usernet.title, /IPv4 only \(-4\), no DNS forwarder/);
  for (const s of stepsOf(plan.steps, 'net.egress.rule')) {
    assert.match(s.title, /enforced inside the sandbox's namespace \(weaker: holds while nothing inside has NET_ADMIN or NET_RAW\)/, s.title);
    assert.ok(s.args.enforcedBy.includes('wall-inside') && !s.args.enforcedBy.includes('wall-host'), s.args.enforcedBy.join('+'));
  }
  // The policy's nft lines carry the wall: an output chain that lets loopback (and the redirect) by, then the host wall's body.
  const rules = policyRulesOf(plan);
  assert.equal(rules.insideWall, true);
  const text = policyText(rules, { nonce: 'ab'.repeat(16), mark: 1, group: INSIDE_NFLOG_GROUP, upstream: ['198.18.7.53'], classes: runClasses('10.0.0.1/32', ['10.0.0.5']) });
  const nft = text.split('\n').filter((l) => l.startsWith('nft ')).map((l) => l.slice(4).trim());
  const wall = nft.slice(nft.indexOf('chain wall {'));
  assert.deepEqual(wall.slice(0, 7), [
    'chain wall {', 'type filter hook output priority 0; policy accept;', 'oifname "lo" accept', 'ip daddr 127.0.0.0/8 accept',
    'ct state established,related accept', 'meta nfproto ipv6 meta l4proto tcp counter name "v6" log prefix "v6" group 1 reject with tcp reset', 'meta nfproto ipv6 counter name "v6" log prefix "v6" group 1 reject with icmpx admin-prohibited']);
  assert.ok(wall.includes('ip daddr @class4 counter name "class" log prefix "class" group 1 reject with icmpx admin-prohibited'), wall.join('\n'));
  assert.ok(wall.includes('meta l4proto { tcp, udp } th dport { 53, 853 } counter name "dns" log prefix "dns" group 1 reject with icmpx admin-prohibited'), wall.join('\n'));
  assert.ok(nft.some((l) => l.includes('set class4') && l.includes('10.0.0.1/32') && l.includes('10.0.0.5/32')), nft.join('\n'));
  // Its refusals go to NFLOG group 1 of the sandbox's own namespace, which sbx-egress reads; the policy names that group.
  assert.match(text, /^v1 .* group=1$/m);
  assert.equal(wall.at(-3), 'counter name "none" log prefix "none" group 1 reject with icmpx admin-prohibited');
  // slirp4netns: its DNS at 10.0.2.3 off, and its whole network refused.
  const slirp = compile(loadText(YML.replace('extra_hosts: ["jira.corp.test:10.1.2.3"]\n', '').replace('  mode: private\n', '  mode: private\n  rootless_cmd: slirp4netns\n'), { rootless: ROOTLESS_HOST.rootless }).spec!, ROOTLESS_HOST).plan;
  assert.match(findStep(slirp.steps, 'net.usernet')!.title, /--disable-dns/);
});

test('each egress ordering rule catches its disorder', () => {
  const steps = planOf().plan.steps;
  const move = (id: string, beforeId: string): Step[] => {
    const s = steps.filter((x) => x.id !== id);
    const i = s.findIndex((x) => x.id === beforeId);
    return [...s.slice(0, i), steps.find((x) => x.id === id)!, ...s.slice(i)];
  };
  const broken = (list: Step[], rule: string) => assert.ok(checkOrder(list).some((m) => m.startsWith(rule)), `${rule}: ${checkOrder(list).join('; ')}`);
  broken(move('net:egress:start', 'net:veth'), 'egress resolver after the sandbox\'s network');
  broken(move('net:resolv', 'net:egress:start'), 'egress resolver before resolv.conf');
  broken(move('net:egress:start', 'net:egress:default'), 'egress rules before sbx-egress');
  broken(move('net:egress:wall', 'net:nat'), 'egress wall with the NAT table');
});

const RUN = { nonce: '0123456789abcdef0123456789abcdef', mark: 0x5b7e0001, group: 23297, upstream: ['198.18.7.53'], classes: runClasses('10.88.0.0/24', ['192.0.2.2']) };

test('the policy text is contract 3\'s, line for line', () => {
  const text = policyText(policyRulesOf(planOf().plan), RUN);
  assert.equal(text, readFileSync(join(ROOT, 'test/unit/fixtures/egress-policy.txt'), 'utf8'));
  assert.match(text, /^v1 nonce=[0-9a-f]{32} grace=300 mark=0x5b7e0001 group=23297\n/);
  assert.match(text, /\nend\n$/);
});

test('the wall and the sandbox\'s table read back from nft 1.0.6 equal what compile emitted; a wall without its final reject does not', () => {
  const rules = policyRulesOf(planOf().plan).rules;
  const wall = wallTable(rules, { table: 'sbx_web_eg', hostIf: 'sbxdeadbeef', group: 23297, mark: 0x5b7e0001, classes: runClasses('10.88.0.0/24', ['192.0.2.2', '127.0.0.1']) });
  const json = JSON.parse(readFileSync(join(ROOT, 'test/unit/fixtures/egress-wall.nft.json'), 'utf8'));
  assert.equal(tableDifference(canonOfTable(wall), canonOfJson(json)), undefined);
  // The last rule of from_sandbox (the final refusal) gone, as SANDBOX_TEST_CORRUPT loads it.
  const last = json.nftables.findLastIndex((x: { rule?: { chain: string } }) => x.rule?.chain === 'from_sandbox');
  const cut = { nftables: json.nftables.filter((_x: unknown, i: number) => i !== last) };
  assert.match(tableDifference(canonOfTable(wall), canonOfJson(cut))!.what, /^chain from_sandbox rule \d+: missing, expected counter=none log=none\/23297 reject$/);
  const inside = JSON.parse(readFileSync(join(ROOT, 'test/unit/fixtures/egress-inside.nft.json'), 'utf8'));
  assert.equal(tableDifference(canonOfTable(insideTable(rules), 12345), canonOfJson(inside)), undefined);
  assert.match(tableDifference(canonOfTable(insideTable(rules), 999), canonOfJson(inside))!.what, /redirect=12345, expected .*redirect=999/);
  assert.match(tableText(wall), /\n    counter name "none" log prefix "none" group 23297 reject with icmpx admin-prohibited\n  }\n/);
  assert.match(insideTableText(rules), /ip daddr @answered4 meta l4proto tcp th dport @relay_ports redirect to :@RELAY@/);
});

test('refused classes merge for an interval set; canary addresses skip those an allow rule names; ids move past taken ones', () => {
  assert.deepEqual(mergeRanges(['127.0.0.0/8', '127.0.0.1/32', '10.0.0.0/25', '10.0.0.128/25']), ['10.0.0.0/24', '127.0.0.0/8']);
  const rules = policyRulesOf(planOf().plan).rules;
  assert.deepEqual(canaryCandidates(rules), ['203.0.113.254', '198.51.100.254']);
  const a = egressIds('web', { groups: [], marks: [] });
  assert.ok(a.group >= 0x5b00 && a.group < 0x5c00 && a.mark >= 0x5b7e0000 && a.mark <= 0x5b7effff);
  const b = egressIds('web', { groups: [a.group], marks: [a.mark] });
  assert.notEqual(b.group, a.group);
  assert.notEqual(b.mark, a.mark);
  // The groups bound on the host, as /proc/net/netfilter/nfnetlink_log lists them (group first), count as taken.
  const bound = parseNflogGroups(`    7  32152     0 2 65531    100  1\n${String(a.group).padStart(5)}   4411     0 2    80      0  1\n`);
  assert.deepEqual(bound, [7, a.group]);
  assert.notEqual(egressIds('web', { groups: bound, marks: [] }).group, a.group);
  assert.deepEqual(parseNflogGroups(''), []);
});

test('undo: sbx-egress is stopped by its record, the wall deleted by its table', async () => {
  const log: string[] = [];
  await undoOne({ kind: 'net.egress.stop', args: { state: '/run/sandbox/web' } }, recordingOps(log));
  await undoOne({ kind: 'net.egress.stop', args: {} }, recordingOps(log));
  await undoOne({ kind: 'net.egress.wall.remove', args: { table: 'sbx_web_eg' } }, recordingOps(log));
  assert.deepEqual(log, ['stopEgress /run/sandbox/web', 'removeWall sbx_web_eg']);
});

// ---- the attestation on made-up views ----

const VIEW: ProcView = {
  status: { uid: -1, gid: -1, groups: [], umask: -1, noNewPrivs: -1, seccomp: -1, seccompFilters: -1, CapBnd: 0n, CapPrm: 0n, CapEff: 0n, CapInh: 0n, CapAmb: 0n }, uidMap: [], gidMap: [], mounts: [], ns: {}, hostNs: {}, limits: [], cgroups: [], interfaces: [], routes: [], localAddresses: [], inheritedFds: [], rootIsHosts: false,
  realPath: (p) => p, path: () => undefined, cgroupFile: () => undefined, cgroupExists: () => false, stateFile: () => undefined, hostPeerGroups: () => new Set(), nsInode: () => undefined, hostInterface: () => true,
};

function goodView(): EgressView {
  const plan = planOf().plan;
  const rules = policyRulesOf(plan).rules;
  const wall = canonOfTable(wallTable(rules, { table: 'sbx_web_eg', hostIf: 'sbxdeadbeef', group: 1, mark: 2, classes: RUN.classes }));
  const inside = canonOfTable(insideTable(rules), 4000);
  return {
    nonce: RUN.nonce, digest: 'ab'.repeat(32), status: { digest: 'ab'.repeat(32) }, resolvConf: 'nameserver 127.0.0.53\noptions edns0\n',
    wall: { want: wall, got: structuredClone(wall) }, inside: { want: inside, got: structuredClone(inside) },
    probes: { identity: { rcode: 0, txt: RUN.nonce }, canaryName: { rcode: 3 }, upstream: { addr: '198.18.7.53', udp: { error: 'unreachable (EHOSTUNREACH)', refused: true }, tcp: { error: 'unreachable (EHOSTUNREACH)', refused: true } }, canary: { addr: '203.0.113.254', port: 443, outcome: 'unreachable', us: 120 }, metadata: { outcome: 'unreachable', us: 90 }, gateway: { addr: '10.88.0.1', outcome: 'unreachable', us: 80 }, ipv6: 0 },
  };
}
const egressVerdicts = (v: EgressView) => attest(planOf().plan, VIEW, { uid: 0, gid: 0, groups: [] }, v).filter((x) => x.step.startsWith('net:egress') || x.step === 'net:resolv');

test('attestation: every egress step verified on a good view', () => {
  const bad = egressVerdicts(goodView()).filter((v) => v.verdict !== 'verified');
  assert.deepEqual(bad, []);
});

test('attestation: each way out that is open is a mismatch naming what got through', () => {
  const mismatch = (change: (v: EgressView) => void, step: string, detail: RegExp) => {
    const v = goodView();
    change(v);
    const got = egressVerdicts(v).find((x) => x.step === step)!;
    assert.equal(got.verdict, 'mismatch', `${step}: ${got.detail}`);
    assert.match(got.detail, detail);
  };
  const p = (v: EgressView) => v.probes as Exclude<EgressView['probes'], { error: string } | undefined>;
  mismatch((v) => { p(v).canary = { addr: '203.0.113.254', port: 443, outcome: 'connected', us: 300 }; }, 'net:egress:default', /203\.0\.113\.254:443 connected .* expected it refused at once/);
  mismatch((v) => { p(v).canary = { addr: '203.0.113.254', port: 443, outcome: 'connected', us: 300 }; p(v).through = [6]; }, 'net:egress:default', /203\.0\.113\.254:443 connected in 0\.30 ms from inside the sandbox through rule 6 "allow 198\.18\.0\.0\/15" \(sandbox\.yml:12:7\), expected it refused at once/);
  mismatch((v) => { p(v).canary = { addr: '203.0.113.254', port: 443, outcome: 'timeout', us: 200_000 }; }, 'net:egress:default', /timeout/);
  mismatch((v) => { p(v).canaryName = { rcode: 0 }; }, 'net:egress:default', /canary-<nonce>\.invalid got an answer \(rcode 0\), expected NXDOMAIN/);
  mismatch((v) => { p(v).upstream!.tcp = { rcode: 0 }; }, 'net:egress:default', /DNS over TCP straight to 198\.18\.7\.53 got an answer/);
  mismatch((v) => { p(v).upstream!.udp = { error: 'timeout' }; }, 'net:egress:default', /DNS over UDP straight to 198\.18\.7\.53 got timeout, expected it refused at once/);
  // A silent UDP refusal (the host's ICMP rate limit) that the wall's dns counter shows: verified.
  const v = goodView();
  p(v).upstream!.udp = { error: 'timeout', walled: true };
  assert.equal(egressVerdicts(v).find((x) => x.step === 'net:egress:default')!.verdict, 'verified');
  mismatch((v) => { p(v).ipv6 = 1; }, 'net:egress:default', /1 IPv6 address in the sandbox/);
  mismatch((v) => { p(v).metadata = { outcome: 'connected', us: 10 }; }, 'net:egress:default', /169\.254\.169\.254:80 connected/);
  mismatch((v) => { p(v).identity = { rcode: 5 }; }, 'net:egress:start', /id\.sandbox .* found rcode 5/);
  mismatch((v) => { v.status = { digest: 'cd'.repeat(32) }; }, 'net:egress:start', /egress\.status to report/);
  mismatch((v) => { v.resolvConf = 'nameserver 127.0.0.53\nnameserver 8.8.8.8\n'; }, 'net:resolv', /found "nameserver 127\.0\.0\.53; nameserver 8\.8\.8\.8"/);
  mismatch((v) => { const w = v.wall as { got: { chains: { name: string; rules: string[][] }[] } }; w.got.chains.find((c) => c.name === 'from_sandbox')!.rules.pop(); }, 'net:egress:wall', /rule \d+: missing.*the default refusal \(sandbox\.yml:6:3\)/);
  mismatch((v) => { const w = v.wall as { got: { chains: { name: string; rules: string[][] }[] } }; const r = w.got.chains.find((c) => c.name === 'from_sandbox')!.rules; r.splice(r.findIndex((x) => x.includes('counter=r3')), 1); }, 'net:egress:3', /expected rule 3 in the wall as compiled/);
  mismatch((v) => { v.probes = { error: 'the probe helper could not enter the namespace' }; }, 'net:egress:default', /could not enter/);
});
