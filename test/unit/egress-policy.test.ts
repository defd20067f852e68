// sbx-egress's policy.c against src/model/egress.ts, the reference the plan, the attestation and
// the CLI's messages use: random rule sets go through the engine's policy text (policyText, what
// the CLI writes on sbx-egress's stdin) into the harness native/test/egress-policy-test.c (built
// here with the address and undefined-behaviour sanitizers), and every name's answer
// (nameDecision) and every connection's verdict (verdict) must be the same on both sides: allowed
// or not, the rule cited, and a refused class told from "no rule allowed it". One difference, on
// purpose: a refused name cites the last deny that matched it (the denial record's "denied by
// rule 2"), where nameDecision cites a deny only when it closed every port.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from '../helpers/sandbox';
import { HOST_PORTS, REFUSED_CLASSES, matchName, nameDecision, verdict } from '../../src/model/egress';
import { policyText } from '../../src/plan/egress';
import type { EgressRule } from '../../src/model/types';

const root = join(__dirname, '..', '..', '..');
const hasCc = spawnSync('sh', ['-c', 'command -v cc'], { stdio: 'ignore' }).status === 0;
const SEED = Number(process.env.SBX_FUZZ_SEED ?? 24024);
let dir = '';
let harness = '';
let buildError = '';

before(() => {
  if (!hasCc) return;
  dir = mkdtempSync(join(tmpdir(), 'egress-policy-'));
  harness = join(dir, 'egress-policy-test');
  const src = ['native/test/egress-policy-test.c', 'native/src/egress/policy.c'].map((f) => join(root, f));
  const r = spawnSync('cc', ['-std=gnu11', '-g', '-O1', '-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-Wall', '-Wextra', '-Werror', '-Wno-unused-parameter', '-o', harness, ...src], { encoding: 'utf8' });
  if (r.status !== 0) buildError = `${r.stderr}${r.error ?? ''}`;
});
after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

/** Runs the harness on one policy text and these query lines; one answer line per query. */
function run(text: string, queries: string[]): string[] {
  assert.equal(buildError, '', `the harness did not build:\n${buildError}`);
  const file = join(dir, 'policy.txt');
  writeFileSync(file, text);
  const r = spawnSync(harness, [file], { input: queries.join('\n') + '\n', encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' } });
  assert.equal(r.status, 0, `the harness failed (status ${r.status}, signal ${r.signal}):\n${r.stderr.slice(0, 4000)}`);
  const lines = r.stdout.split('\n');
  lines.pop();
  return lines;
}

function prng(seed: number) {
  let s = seed >>> 0;
  return () => { s = (s + 0x6d2b79f5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}

const NAMES = ['a.test', 'b.a.test', 'c.b.a.test', 'x.test', 'corp.test', 'jira.corp.test', 'wiki.corp.test', 'deep.wiki.corp.test'];
const CIDRS = ['198.18.7.0/24', '198.18.7.12/32', '0.0.0.0/0', '169.254.169.254/32', '169.254.0.0/16', '127.0.0.1/32', '10.0.0.0/8', '198.18.0.0/15'];
const ADDRS = ['198.18.7.12', '198.18.7.5', '198.19.1.1', '169.254.169.254', '169.254.1.1', '127.0.0.1', '10.1.2.3', '8.8.8.8', '0.1.2.3', '224.0.0.1'];
const PORTS = [[{ from: 1, to: 65535 }], [{ from: 80, to: 80 }], [{ from: 443, to: 443 }, { from: 8000, to: 8100 }], HOST_PORTS, [{ from: 22, to: 22 }], [{ from: 53, to: 53 }, { from: 853, to: 853 }]];
const QPORTS = [22, 53, 80, 443, 853, 8050, 9999];
const PROTOS: EgressRule['protocols'][] = [['tcp'], ['udp'], ['tcp', 'udp'], ['tcp', 'udp', 'icmp']];

function randomRules(rnd: () => number): EgressRule[] {
  const pick = <T>(a: readonly T[]) => a[Math.floor(rnd() * a.length)]!;
  const n = 1 + Math.floor(rnd() * 7);
  return Array.from({ length: n }, (_, i): EgressRule => {
    const action = rnd() < 0.6 ? 'allow' : 'deny';
    const src = { file: 'sandbox.yml', line: 10 + i, col: 7 };
    if (rnd() < 0.55) {
      const wildcard = rnd() < 0.4;
      const name = pick(wildcard ? ['test', 'a.test', 'corp.test', 'b.a.test'] : NAMES);
      return { index: i + 1, action, target: { type: 'host', name, wildcard }, ports: [...pick(PORTS)], protocols: ['tcp'], text: `${action} ${wildcard ? '*.' : ''}${name}`, src };
    }
    const [network, prefix] = pick(CIDRS).split('/');
    return { index: i + 1, action, target: { type: 'cidr', family: 4, network: network!, prefix: Number(prefix) }, ports: [...pick(PORTS)], protocols: [...pick(PROTOS)], text: `${action} ${network}/${prefix}`, src } as EgressRule;
  });
}

test('the policy text the engine writes is read back by policy.c, and a broken one is refused with its line', (t) => {
  if (!needs(t, 'a C compiler (cc) with the address sanitizer', hasCc)) return;
  const rules = randomRules(prng(SEED));
  const text = policyText({ rules, defaultSrc: { file: 'sandbox.yml', line: 8, col: 3 }, extra: ['198.18.7.10 jira.corp.test'] },
    { nonce: 'ab'.repeat(16), mark: 0x5b7e0001, group: 23297, upstream: ['198.18.7.53'], classes: [...REFUSED_CLASSES] });
  assert.deepEqual(run(text, ['n a.test']).length, 1);
  assert.match(run(text.replace(/^rule 1 .*$/m, 'rule 1 allow host exact A.test tcp 80 x:1:1'), ['n a.test'])[0]!, /^error policy line \d+: a host rule's name is not a valid lowercase name$/);
  assert.equal(run(text.replace(/^end\n$/m, ''), [])[0], 'error policy: no `end` line: the policy text was cut short');
  assert.equal(run(text.replace(/^upstream .*\n/m, ''), [])[0], 'error policy: no upstream line: the resolver would have nowhere to ask');
});

test(`policy.c decides as src/model/egress.ts on 400 random rule sets (seed ${SEED})`, (t) => {
  if (!needs(t, 'a C compiler (cc) with the address sanitizer', hasCc)) return;
  const rnd = prng(SEED);
  const pick = <T>(a: readonly T[]) => a[Math.floor(rnd() * a.length)]!;
  let compared = 0;
  for (let round = 0; round < 400; round++) {
    const rules = randomRules(rnd);
    const text = policyText({ rules, defaultSrc: { file: 'sandbox.yml', line: 8, col: 3 }, extra: [] },
      { nonce: 'ab'.repeat(16), mark: 1, group: 1, upstream: ['198.18.7.53'], classes: [...REFUSED_CLASSES] });
    const queries: string[] = [];
    const expected: string[] = [];
    for (const name of NAMES) {
      const d = nameDecision(rules, name);
      const lastDeny = rules.filter((r) => r.action === 'deny' && matchName(r, name)).pop();
      queries.push(`n ${name}`);
      expected.push(`n ${d.allowed ? 1 : 0} ${(d.rule ?? lastDeny)?.index ?? 0}`);
    }
    for (let q = 0; q < 40; q++) {
      const addr = pick(ADDRS), port = pick(QPORTS), proto = pick(['tcp', 'udp', 'icmp'] as const);
      const answered = NAMES.filter(() => rnd() < 0.3);
      const name = rnd() < 0.5 ? pick(NAMES) : undefined;
      const v = verdict(rules, { addr, port, proto, name, answered });
      queries.push(`v ${addr} ${port} ${proto} ${name ?? '-'} ${answered.length ? answered.join(',') : '-'}`);
      expected.push(`v ${v.allowed ? 1 : 0} ${v.rule?.index ?? 0} ${v.reason === 'class' ? 1 : 0}`);
    }
    const got = run(text, queries);
    for (let i = 0; i < queries.length; i++) {
      assert.equal(got[i], expected[i], `${queries[i]}\nrules:\n${rules.map((r) => `  ${r.index} ${r.action} ${JSON.stringify(r.target)} ${JSON.stringify(r.ports)} ${r.protocols}`).join('\n')}`);
      compared++;
    }
  }
  assert.equal(compared, 400 * (NAMES.length + 40));
});
