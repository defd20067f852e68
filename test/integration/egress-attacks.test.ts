// Runs every bypass attempt in test/integration/egress-attacks/ (see its README.md) inside a root
// sandbox that allows only allowed.test on 80 and 443, against fixtures/egress-net.ts. An attempt
// is refused when it prints no `REACHED` line and the fixture's servers saw nothing but
// allowed.test; one marked `control: reaches` must get through without egress, so that an
// attempt that does not work at all cannot pass. A new script in that folder runs with no change here.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { hostInterface, nftTable } from '../../src/plan/paths';
import { ROOT } from '../helpers/load';
import { hasEngine, hasNft, isRoot, leftovers, needs, sandbox } from '../helpers/sandbox';
import { startEgressWorld, type EgressNet, type EgressWorld } from './fixtures/egress-net';

const ATTACKS = join(ROOT, 'test/integration/egress-attacks');
const INTERPRETER: Record<string, string> = { '.sh': '/bin/sh', '.py': 'python3', '.js': 'node', '.mjs': 'node' };
/** A script by its extension, or any other file that is executable and starts with #! (run as it is). */
const runnable = (f: string) => Object.hasOwn(INTERPRETER, extname(f)) || (statSync(join(ATTACKS, f)).isFile() && (statSync(join(ATTACKS, f)).mode & 0o111) !== 0 && readFileSync(join(ATTACKS, f), 'utf8').startsWith('#!'));
const scripts = readdirSync(ATTACKS).filter(runnable).sort();
/** What a script prints when something got through (REACHED) or broke (FAIL). */
const FAILED = /^(REACHED|FAIL)\b/m;

let net: EgressNet;
let dir: string;
let hostPort = 0;
let runs = 0;

let world: EgressWorld | undefined;

before(async () => {
  if (!isRoot || !hasEngine || !hasNft) return;
  world = await startEgressWorld('sbx-egress-attacks-', 241);
  ({ net, dir, hostPort } = world);
});

after(async () => { await world?.close(); });

/** What the fixture may see while an attempt runs under the policy: allowed.test's lookups, TLS name and Host, nothing else. */
// A TCP connection that carried no byte ("tcp-empty") is the relay's upstream connection, opened
// while it judges the client's first bytes and closed on a refusal (design 3.5).
const legit = (e: string) => /^dns (udp|tcp) allowed\.test \d+$/.test(e) || e === 'sni allowed.test' || /^host allowed\.test (80|443) \/\S*$/.test(e) || /^tcp-empty \d+$/.test(e);

function header(text: string, key: string): string | undefined {
  return new RegExp(`^(?:#|//) ${key}: *(\\S+)`, 'm').exec(text)?.[1];
}

function attempt(script: string, name: string, egress: boolean): { out: string; err: string; events: string[] } {
  const lines = [
    'version: 1', `name: ${name}`, 'rootfs: host',
    'network:', '  mode: private',
    ...(egress ? ['  egress:', '    - allow allowed.test:443', '    - allow allowed.test:80'] : []),
    // A subnet of each run's own: the host rate-limits its ICMP errors to one address.
    `  subnet: 10.67.${runs++ % 250}.0/24`,
    `dns: [${net.dns}]`,
    `volumes: ["${net.certDir}:/egress:ro", "${ATTACKS}:/attacks:ro"]`,
    `env: {WEB: "${net.web}", UDP: "${net.udp}", DNS_UPSTREAM: "${net.dns}", HOST_ADDR: "${net.host}", HOST_PORT: "${hostPort}", ALLOWED: allowed.test, DENIED: evil.test, CA: /egress/ca.pem, CLIENT: /egress/client.py, NODE_EXTRA_CA_CERTS: /egress/ca.pem}`,
    `command: ${JSON.stringify(Object.hasOwn(INTERPRETER, extname(script)) ? [INTERPRETER[extname(script)], `/attacks/${script}`] : [`/attacks/${script}`])}`, '',
  ];
  const file = join(dir, `${name}.yml`);
  writeFileSync(file, lines.join('\n'));
  net.routeMetadata(hostInterface(name));
  const m = net.mark();
  const r = sandbox(['up', '-q', file], { timeout: 90_000 });
  assert.ok(r.code !== null, `${script}: timed out`);
  const left = leftovers(name);
  if (execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' }).includes(`${nftTable(name)}_eg\n`)) left.push(`nftables table ${nftTable(name)}_eg`);
  assert.deepEqual(left, [], `${script} left something behind`);
  return { out: r.out, err: r.err, events: net.since(m) };
}

for (const script of scripts) {
  test(`egress attack ${script}`, (t) => {
    if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine) || !needs(t, 'nftables', hasNft)) return;
    const text = readFileSync(join(ATTACKS, script), 'utf8');
    const expect = header(text, 'expect') ?? 'refused';
    const name = `eg-atk-${script.replace(/\.[^.]+$/, '').replace(/[^a-zA-Z0-9]/g, '-').slice(0, 40)}`;
    const r = attempt(script, name, true);
    if (r.out.trim()) t.diagnostic(`${script}: ${r.out.trim().replace(/\n/g, ' | ')}`);
    if (expect === 'allowed') {
      assert.match(r.out, /^OK$/m, `${script}: what the policy allows did not work:\n${r.out}\n${r.err}`);
    } else {
      assert.doesNotMatch(r.out, FAILED, `${script} got through:\n${r.out}`);
      assert.deepEqual(r.events.filter((e) => !legit(e)), [], `${script}: the fixture's servers saw these`);
    }
    if (header(text, 'control') === 'reaches') {
      const c = attempt(script, `${name}-c`.slice(0, 50), false);
      assert.ok(FAILED.test(c.out) || c.events.some((e) => !legit(e)), `${script} does not get through even without egress, so it proves nothing:\n${c.out}\n${c.err}\n${c.events.join('\n')}`);
    }
  });
}
