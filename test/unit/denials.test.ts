// The words of egress denials (src/ui/denials.ts) on made-up records, and the follower of
// denials.jsonl (src/cli/denials.ts) across appends, a half-written line and a rotation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressClass, denialLine, denialSummary, egressInfo, egressLine, parseDenials, ruleTexts, type Denial } from '../../src/ui/denials';
import { DenialFollower, readDenials } from '../../src/cli/denials';
import type { Plan } from '../../src/plan/types';

const POLICY = `v1 nonce=00112233445566778899aabbccddeeff grace=300 mark=0x5b7e0001 group=23297
upstream 198.18.7.53
rule 1 allow host exact jira.corp.test tcp 1-52,54-852,854-65535 sandbox.yml:9:7
rule 2 deny host suffix corp.test tcp 1-52,54-852,854-65535 sandbox.yml:10:7
rule 3 allow cidr 198.18.7.12/32 udp 7 sandbox.yml:13:7
rule 4 deny cidr 10.0.0.0/8 tcp,udp,icmp 1-65535 sandbox.yml:14:7
rule 5 allow host exact allowed.test tcp 443 sandbox.yml:15:7
default sandbox.yml:8:3
end
`;
const rules = ruleTexts(undefined, POLICY);
const rec = (r: Partial<Denial>): Denial => ({ t: '2026-12-07T10:01:02.123Z', kind: 'connect', proto: 'tcp', rule: null, src: 'sandbox.yml:8:3', count: 1, ...r });

test('rule texts come from the policy file, and the plan\'s own texts win', () => {
  assert.deepEqual([...rules], [[1, 'allow jira.corp.test'], [2, 'deny *.corp.test'], [3, 'allow 198.18.7.12/32:7/udp'], [4, 'deny 10.0.0.0/8'], [5, 'allow allowed.test:443']]);
  const plan = { steps: [{ kind: 'net.egress.rule', args: { index: 2, text: 'deny *.corp.test:1-52,54-852,854-65535/tcp' } }] } as unknown as Plan;
  assert.equal(ruleTexts(plan, POLICY).get(2), 'deny *.corp.test:1-52,54-852,854-65535/tcp');
  assert.equal(ruleTexts(plan, undefined).size, 1);
});

test('the human line of each kind of record names the target, how it was seen, and the rule or line', () => {
  const lines = [
    rec({ addr: '198.18.7.10', port: 443, name: 'evil.test', seen: 'sni' }),
    rec({ addr: '198.18.7.10', port: 443, name: 'wiki.corp.test', seen: 'sni', rule: 2, src: 'sandbox.yml:10:7', pid: 412, comm: 'curl' }),
    rec({ kind: 'lookup', name: 'evil.test', seen: 'dns', proto: 'udp', addr: null, port: null, count: 3 }),
    rec({ addr: '198.18.7.10', port: 80, name: 'evil.test', seen: 'host' }),
    rec({ addr: '169.254.169.254', port: 80, seen: 'kernel', class: true }),
    rec({ kind: 'datagram', proto: 'udp', addr: '198.18.7.10', port: 443, seen: 'kernel' }),
    rec({ kind: 'answer-withheld', name: 'rebind-lo.test', addr: '127.0.0.1', seen: 'dns', class: true }),
    rec({ kind: 'protocol', addr: '198.18.7.10', port: 443, seen: 'sni' }),
    rec({ kind: 'protocol', addr: '198.18.7.10', port: 80, name: 'allowed.test', seen: 'host', why: 'HTTP/2 without TLS (h2c)' }),
    rec({ addr: '10.1.2.3', port: 22, seen: 'kernel', rule: 4, src: 'sandbox.yml:14:7' }),
    rec({ kind: 'limit', addr: '198.18.7.10', port: 443, name: 'allowed.test', seen: 'address' }),
  ].map((r) => denialLine(r, rules));
  assert.deepEqual(lines, [
    '10:01:02 evil.test:443 (TLS name, at 198.18.7.10) refused: no rule allowed it (sandbox.yml:8)',
    '10:01:02 curl[412] wiki.corp.test:443 (TLS name, at 198.18.7.10) denied by rule 2 "deny *.corp.test" (sandbox.yml:10:7)',
    '10:01:02 evil.test (lookup) refused: no rule allowed it (sandbox.yml:8) (3 times)',
    '10:01:02 evil.test:80 (HTTP Host, at 198.18.7.10) refused: no rule allowed it (sandbox.yml:8)',
    '10:01:02 169.254.169.254:80 (refused by the kernel) refused: the cloud metadata address, which only a cidr rule naming it opens (sandbox.yml:8)',
    '10:01:02 198.18.7.10:443/udp (refused by the kernel) refused: no rule allowed it (sandbox.yml:8)',
    '10:01:02 rebind-lo.test (answer 127.0.0.1 withheld) refused: loopback, which only a cidr rule naming it opens (sandbox.yml:8)',
    '10:01:02 198.18.7.10:443 (TLS name) refused: TLS without a server name (sandbox.yml:8)',
    '10:01:02 allowed.test:80 (HTTP Host, at 198.18.7.10) refused: HTTP/2 without TLS (h2c) (sandbox.yml:8)',
    '10:01:02 10.1.2.3:22 (refused by the kernel) denied by rule 4 "deny 10.0.0.0/8" (sandbox.yml:14:7)',
    '10:01:02 allowed.test:443 (no name: by address, at 198.18.7.10) refused: too many connections at once',
  ]);
  // A rule the texts do not know is still named by its index and line.
  assert.equal(denialLine(rec({ addr: '10.0.0.1', port: 1, rule: 9, src: 'x.yml:20:7' }), new Map()), '10:01:02 10.0.0.1:1 denied by rule 9 (x.yml:20:7)');
  // Before the command started: the attestation's own probes.
  assert.match(denialLine(rec({ addr: '198.18.255.254', port: 443, seen: 'kernel' }), rules, '2026-12-07T10:01:03.000Z'), /\(the attestation's probe, before the command started\)$/);
  assert.doesNotMatch(denialLine(rec({}), rules, '2026-12-07T10:01:02.000Z'), /attestation/);
  // The process's name is the sandbox's choice: no control byte of it reaches the terminal.
  assert.equal(denialLine(rec({ kind: 'lookup', name: 'evil.test', seen: 'dns', pid: 7, hostPid: 4321, comm: 'x\u001b[2Jy\u00e9' }), rules), '10:01:02 x?[2Jy? evil.test (lookup) refused: no rule allowed it (sandbox.yml:8)'.replace('x?[2Jy?', 'x?[2Jy?[7]'));
  // A process outside any PID namespace of its own has a host PID only.
  assert.match(denialLine(rec({ kind: 'lookup', name: 'evil.test', seen: 'dns', pid: null, hostPid: 4321, comm: 'node' }), rules), /^10:01:02 node\[host 4321\] evil\.test \(lookup\)/);
});

test('refused classes are named by the address', () => {
  assert.deepEqual(['127.0.0.1', '169.254.169.254', '169.254.1.1', '0.1.2.3', '224.0.0.251', '255.255.255.255', '10.88.0.1'].map(addressClass),
    ['loopback', 'the cloud metadata address', 'link-local', 'this-network (0.0.0.0/8)', 'multicast', 'broadcast', 'the sandbox\'s gateway, subnet or a host address']);
});

test('the summary counts lookups and connections, lists three distinct refusals in order and how many more', () => {
  const recs = [
    rec({ addr: '198.18.7.10', port: 443, name: 'evil.test', seen: 'sni', count: 2 }),
    rec({ kind: 'lookup', name: 'evil.test', seen: 'dns', count: 1 }),
    rec({ addr: '198.18.7.10', port: 443, name: 'evil.test', seen: 'sni' }),
    rec({ addr: '10.1.2.3', port: 22, seen: 'kernel', rule: 4, src: 'sandbox.yml:14:7' }),
    rec({ kind: 'datagram', proto: 'udp', addr: '198.18.7.10', port: 443, seen: 'kernel' }),
  ];
  assert.equal(denialSummary(recs, rules, 'web', true),
    'sandbox: 1 lookup and 5 connections refused: evil.test:443, no rule allowed it (sandbox.yml:8); evil.test, no rule allowed it (sandbox.yml:8); 10.1.2.3:22, denied by rule 4 (sandbox.yml:14:7); and 1 more (sandbox logs --denials web)');
  // With the state gone (a foreground run removes it), no pointer to a command that would find nothing.
  assert.equal(denialSummary(recs.slice(0, 1), rules, 'web', false), 'sandbox: 2 connections refused: evil.test:443, no rule allowed it (sandbox.yml:8)');
  assert.equal(denialSummary([], rules, 'web', true), '');
});

test('inspect\'s egress block reads the status file\'s totals', () => {
  const info = egressInfo(5, { pid: 1234, lookups: { answered: 3, refused: 1, withheld: 1, forwarded: 3 }, connections: { relayed: 2, refused: 3, open: 1 }, kernel: { refused: 4 } });
  assert.deepEqual(info, { rules: 5, refused: { lookups: 1, answersWithheld: 1, connections: 3, kernel: 4 }, relay: { pid: 1234, open: 1, carried: 2 } });
  assert.equal(egressLine(info), '5 rules; refused 1 lookup (1 answer withheld), 3 connections in the relay, 4 in the kernel; sbx-egress pid 1234, 1 open, 2 carried');
  assert.equal(egressLine(egressInfo(1, undefined)), '1 rule; refused 0 lookups (0 answers withheld), 0 connections in the relay, 0 in the kernel; no status from sbx-egress');
  // sbx-egress ended while the sandbox runs: the status file's last counts stay, the line says it is closed.
  const ended = egressInfo(5, { pid: 1234, connections: { relayed: 2, open: 1 } }, false);
  assert.deepEqual(ended.relay, { pid: 1234, open: 0, carried: 2, running: false });
  assert.match(egressLine(ended), /; sbx-egress pid 1234 has ended: names no longer resolve and host rules refuse everything \(fail closed\); down and up again to restore the policy$/);
  assert.equal(egressInfo(5, { pid: 1234 }, true).relay?.running, true);
});

test('records: a half-written last line and noise are left out', () => {
  const text = `${JSON.stringify(rec({}))}\nnot json\n{"kind":1}\n${JSON.stringify(rec({ port: 1 })).slice(0, 20)}`;
  assert.equal(parseDenials(text).length, 1);
});

test('the follower reads appends, finishes a half line later, survives rotation, and keeps what a removed file held', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-denials-'));
  const got: Denial[] = [];
  const f = new DenialFollower(dir, (r) => got.push(...r), 20).start(true);
  try {
    const line = (port: number) => `${JSON.stringify(rec({ addr: '198.18.7.10', port }))}\n`;
    const file = join(dir, 'denials.jsonl');
    writeFileSync(file, line(1) + line(2).slice(0, 10));
    f.poll();
    assert.deepEqual(got.map((r) => r.port), [1]);
    appendFileSync(file, line(2).slice(10) + line(3));
    f.poll();
    assert.deepEqual(got.map((r) => r.port), [1, 2, 3]);
    // Rotation as sbx-egress does it: the last lines go to the old file, then a new file starts.
    appendFileSync(file, line(4));
    renameSync(file, join(dir, 'denials.1.jsonl'));
    writeFileSync(file, line(5));
    f.poll();
    assert.deepEqual(got.map((r) => r.port), [1, 2, 3, 4, 5]);
    assert.deepEqual(readDenials(dir).map((r) => r.port), [1, 2, 3, 4, 5]);
    // The state folder removed at the end of a foreground run: the open file still reads.
    appendFileSync(file, line(6));
    rmSync(file);
    f.stop();
    assert.deepEqual(got.map((r) => r.port), [1, 2, 3, 4, 5, 6]);
  } finally {
    f.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
