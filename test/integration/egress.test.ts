// Egress policy from inside, with real clients (curl, python3, node), as root: docs/egress-design.md
// section 8, cases 1-16. The outside world is fixtures/egress-net.ts (a namespace on 198.18.K.0/24
// with its own DNS, HTTP/HTTPS, UDP echo and metadata servers, each logging what it received), so
// a refusal is proven twice: the client saw it refused, and the server never saw the request.
// Every refusal has its control: the same probe from a sandbox without `egress` reaches the
// target, so a broken fixture cannot pass for a policy. Rootless (pasta, slirp4netns) is not in
// this round (the contract's P3); its cases are left out here rather than skipped.
// Traffic goes only to the fixture's namespace and to this host; every probe has a 5 s timeout.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostInterface, nftTable } from '../../src/plan/paths';
import { BIN, hasEngine, hasNft, isRoot, leftovers, needs, sandbox } from '../helpers/sandbox';
import { startEgressWorld, type EgressNet, type EgressWorld } from './fixtures/egress-net';

const ready = (t: import('node:test').TestContext) => needs(t, 'root', isRoot) && needs(t, 'the native engine', hasEngine) && needs(t, 'nftables (apt-get install nftables)', hasNft)
  && needs(t, 'curl (apt-get install curl)', has('curl')) && needs(t, 'openssl (apt-get install openssl)', has('openssl'));
function has(cmd: string): boolean { try { execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }); return true; } catch { return false; } }

let net: EgressNet;
let dir: string;
/** A TCP service on every address of the host: the gateway and the host's own addresses reach it. */
let hostPort = 0;

let world: EgressWorld | undefined;

before(async () => {
  if (!isRoot || !hasEngine || !hasNft || !has('curl') || !has('openssl')) return;
  world = await startEgressWorld('sbx-egress-', 240);
  ({ net, dir, hostPort } = world);
});

after(async () => { await world?.close(); });

const C = 'python3 /egress/client.py';
const CURL = 'curl -sS --max-time 5 --cacert /egress/ca.pem';

interface Box { egress?: string[]; capAdd?: string[]; detach?: boolean; volumes?: string[]; restart?: string; detachCommand?: string }
let subnetIndex = 0;

/** Writes NAME.yml: rootfs host, a private network (with these egress rules, or none: the
 * control), dns at the fixture, the fixture's folder at /egress; the command runs the probes. The
 * `egress:` key is on line 6, its rules from line 7. */
function file(name: string, probes: [string, string][] | string[], o: Box = {}): string {
  const script = probes.length && typeof probes[0] === 'string' ? (probes as string[]).join('\n')
    : (probes as [string, string][]).map(([label, cmd]) => `printf '@@%s %s\\n' ${label} "$(${cmd} 2>&1 | tail -n 3 | tr '\\n' ' ')"`).join('\n');
  const lines = [
    'version: 1',
    `name: ${name}`,
    'rootfs: host',
    'network:',
    '  mode: private',
    ...(o.egress ? ['  egress:', ...o.egress.map((r) => `    - ${r}`)] : []),
    // A subnet of its own: the host rate-limits the ICMP errors it sends to one address (6 at
    // once, then 1 a second), and sandboxes run back to back would otherwise share the one address.
    `  subnet: 10.66.${subnetIndex++ % 250}.0/24`,
    `dns: [${net.dns}]`,
    `volumes: ${JSON.stringify([`${net.certDir}:/egress:ro`, ...(o.volumes ?? [])])}`,
    ...(o.restart ? [`restart: ${o.restart}`] : []),
    'env: {NODE_EXTRA_CA_CERTS: /egress/ca.pem}',
    ...(o.capAdd ? [`cap_add: [${o.capAdd.join(', ')}]`] : []),
    ...(o.detach ? ['detach: true', 'init: true', `command: ${o.detachCommand ? JSON.stringify(['/bin/sh', '-c', o.detachCommand]) : '[sleep, "600"]'}`] : [`command: ["/bin/sh", "-c", ${JSON.stringify(script)}]`]),
    '',
  ];
  const path = join(dir, `${name}.yml`);
  writeFileSync(path, lines.join('\n'));
  return path;
}

interface Ran { code: number | null; out: string; err: string; raw(label: string): string; j(label: string): { ok: boolean; error?: string; ms?: number; rcode?: number; answers?: number; a?: string[]; got?: unknown } }

function results(out: string, err: string, code: number | null): Ran {
  const raw = (label: string) => {
    const line = out.split('\n').find((l) => l.startsWith(`@@${label} `));
    if (line === undefined) assert.fail(`no result for ${label} (exit ${code}):\n${out}\n${err}`);
    return line.slice(label.length + 3).trim();
  };
  return {
    code, out, err, raw,
    j: (label) => { const r = raw(label); try { return JSON.parse(r.slice(r.indexOf('{'))); } catch { return assert.fail(`${label}: not a result: ${r}\n${err}`); } },
  };
}

/** Runs the probes in a foreground sandbox; checks that it left nothing, egress pieces included. */
function run(name: string, probes: [string, string][], o: Box = {}): Ran {
  const f = file(name, probes, o);
  const r = sandbox(['up', '-q', f], { timeout: 120_000 });
  assert.equal(r.code, 0, `${name}: exit ${r.code}\n${r.out}\n${r.err}`);
  assert.deepEqual(egressLeftovers(name), [], `${name} left something behind`);
  return results(r.out, r.err, r.code);
}

/** Everything of a sandbox, plus its egress table and any sbx-egress still running for it. */
function egressLeftovers(name: string, pid?: number): string[] {
  const out = leftovers(name);
  const tables = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });
  if (tables.includes(`${nftTable(name)}_eg\n`)) out.push(`nftables table ${nftTable(name)}_eg`);
  for (const p of readdirProcs()) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes('sbx-egress') && cmd.includes(`/${name}\0`)) out.push(`sbx-egress ${p} for ${name}`);
    } catch { /* gone */ }
  }
  if (pid && existsSync(`/proc/${pid}`)) {
    try { if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('sbx-egress')) out.push(`sbx-egress ${pid} (its record)`); } catch { /* gone */ }
  }
  return out;
}
const readdirProcs = () => require('node:fs').readdirSync('/proc').filter((p: string) => /^\d+$/.test(p)) as string[];

const refusedAtOnce = (r: Ran['j'] extends (l: string) => infer R ? R : never, what: string) => {
  assert.equal(r.ok, false, `${what}: it got through: ${JSON.stringify(r)}`);
  assert.notEqual(r.error, 'timeout', `${what}: refused only by a timeout, not at once: ${JSON.stringify(r)}`);
};
const hello = (name: string) => new RegExp(`hello ${name.replace(/\./g, '\\.')}`);

test('1. an allowed name works over HTTP and HTTPS, from curl, python3 and node', (t) => {
  if (!ready(t)) return;
  const m = net.mark();
  const r = run('eg-allow', [
    ['curl-https', `${CURL} https://allowed.test/`], ['curl-http', `${CURL} http://allowed.test/`],
    ['python', `python3 -c "import urllib.request, ssl; print(urllib.request.urlopen('https://allowed.test/', context=ssl.create_default_context(cafile='/egress/ca.pem'), timeout=5).read().decode())"`],
    ['node', `node -e "fetch('https://allowed.test/').then((r) => r.text()).then((t) => console.log(t), (e) => console.log('failed', e.cause?.code ?? e.message))"`],
  ], { egress: ['allow allowed.test'] });
  for (const l of ['curl-https', 'curl-http', 'python', 'node']) assert.match(r.raw(l), hello('allowed.test'), `${l}: ${r.raw(l)}`);
  assert.ok(net.since(m).includes('sni allowed.test'), 'the server saw the TLS name');
  assert.deepEqual(net.since(m).filter((e) => /^(sni|host) /.test(e) && !e.includes('allowed.test')), []);
});

test('2. a denied name gets NXDOMAIN and is never forwarded: a long subdomain of it, and a subdomain of an exactly allowed name, too', (t) => {
  if (!ready(t)) return;
  const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(20)}.evil.test`;
  const probes: [string, string][] = [
    ['evil', `${C} dns evil.test`], ['long', `${C} dns ${long}`], ['sub', `${C} dns sub.allowed.test`], ['allowed', `${C} dns allowed.test`],
    ['curl', `${CURL} https://evil.test/`],
  ];
  const m = net.mark();
  const r = run('eg-deny', probes, { egress: ['allow allowed.test'] });
  for (const l of ['evil', 'long', 'sub']) assert.equal(r.j(l).rcode, 3, `${l}: ${r.raw(l)}`);
  assert.equal(r.j('allowed').rcode, 0);
  assert.deepEqual(r.j('allowed').a, [net.web]);
  assert.match(r.raw('curl'), /Could not resolve host/);
  assert.deepEqual(net.queried(m).filter((q) => q !== 'allowed.test'), [], 'only the allowed name reached the DNS server');
  // The one-line summary on stderr, after the command ended.
  assert.match(r.err, /sandbox: \d+ lookups? refused: evil\.test, no rule allowed it \(.*eg-deny\.yml:6\)/);
  // Control: without egress the same lookups reach the server and answer.
  const m2 = net.mark();
  const c = run('eg-deny-control', probes);
  assert.equal(c.j('evil').rcode, 0);
  assert.match(c.raw('curl'), hello('evil.test'));
  assert.ok(net.queried(m2).includes(long) && net.queried(m2).includes('sub.allowed.test'), net.since(m2).join('\n'));
});

test('3. an allowed name on another port is refused at once (not a timeout)', (t) => {
  if (!ready(t)) return;
  const probes: [string, string][] = [['443', `${CURL} https://allowed.test/`], ['8443', `${C} connect allowed.test 8443`], ['8080', `${C} connect allowed.test 8080`], ['9000', `${C} connect allowed.test 9000`]];
  const r = run('eg-port', probes, { egress: ['allow allowed.test:443'] });
  assert.match(r.raw('443'), hello('allowed.test'));
  for (const l of ['8443', '8080', '9000']) { refusedAtOnce(r.j(l), l); assert.ok(r.j(l).ms! < 1000, `${l}: ${r.raw(l)}`); }
  const c = run('eg-port-control', probes);
  for (const l of ['8443', '8080', '9000']) assert.equal(c.j(l).ok, true, `control ${l}: ${c.raw(l)}`);
});

test('4. IP literals are refused: an address never answered, and an answered one named by no allowed name', (t) => {
  if (!ready(t)) return;
  const probes: [string, string][] = [
    // Before any lookup: the kernel has no answer for the address.
    ['https-literal', `${CURL} -k https://${net.web}/`], ['udp-addr', `${C} connect ${net.udp} 80`],
    ['lookup', `${C} dns allowed.test`],
    // After it: the relay sees no name (TLS without SNI to an IP) or a Host that is an address.
    ['https-literal-2', `${CURL} -k https://${net.web}/`], ['http-literal', `${CURL} http://${net.web}/`],
  ];
  const m = net.mark();
  const r = run('eg-literal', probes, { egress: ['allow allowed.test'] });
  for (const l of ['https-literal', 'https-literal-2', 'http-literal']) assert.doesNotMatch(r.raw(l), /hello/, `${l}: ${r.raw(l)}`);
  refusedAtOnce(r.j('udp-addr'), 'an address never answered');
  assert.deepEqual(net.since(m).filter((e) => /^(sni|host) /.test(e)), [], 'no request reached the server');
  const c = run('eg-literal-control', probes);
  for (const l of ['https-literal', 'https-literal-2', 'http-literal']) assert.match(c.raw(l), /hello/, `control ${l}: ${c.raw(l)}`);
});

test('5. TLS to an allowed address with a denied SNI, or with none, is refused; the server never sees the name', (t) => {
  if (!ready(t)) return;
  const probes: [string, string][] = [
    ['lookup', `${C} dns allowed.test`],
    ['spoof', `${CURL} --resolve evil.test:443:${net.web} https://evil.test/`],
    ['nosni', `${C} tls allowed.test 443 -`],
    ['good', `${CURL} https://allowed.test/`],
  ];
  const m = net.mark();
  const r = run('eg-sni', probes, { egress: ['allow allowed.test'] });
  assert.doesNotMatch(r.raw('spoof'), /hello/);
  assert.equal(r.j('nosni').ok, false, r.raw('nosni'));
  assert.match(r.raw('good'), hello('allowed.test'));
  assert.deepEqual(net.since(m).filter((e) => e.startsWith('sni ') && e !== 'sni allowed.test'), [], 'the server saw another TLS name');
  const m2 = net.mark();
  const c = run('eg-sni-control', probes);
  assert.match(c.raw('spoof'), hello('evil.test'));
  assert.equal(c.j('nosni').ok, true, c.raw('nosni'));
  assert.ok(net.since(m2).includes('sni evil.test') && net.since(m2).includes('sni -'));
});

test('6. a ClientHello cut into two TLS records and two TCP segments is judged right both ways', (t) => {
  if (!ready(t)) return;
  const probes: [string, string][] = [['lookup', `${C} dns allowed.test`], ['good', `${C} tls-split allowed.test 443 allowed.test`], ['evil', `${C} tls-split ${net.web} 443 evil.test`]];
  const m = net.mark();
  const r = run('eg-split', probes, { egress: ['allow allowed.test'] });
  assert.deepEqual(r.j('good'), { ok: true, got: 'hello allowed.test' });
  assert.equal(r.j('evil').ok, false, r.raw('evil'));
  assert.ok(!net.since(m).includes('sni evil.test'));
  const c = run('eg-split-control', probes);
  assert.deepEqual(c.j('evil'), { ok: true, got: 'hello evil.test' });
});

test('7. plain HTTP: a spoofed Host, a second keep-alive request for another Host, CONNECT to a denied name and h2c are refused', (t) => {
  if (!ready(t)) return;
  const probes: [string, string][] = [
    ['lookup', `${C} dns allowed.test`],
    ['spoof', `${C} http allowed.test 80 evil.test`],
    ['keepalive', `${C} http allowed.test 80 allowed.test evil.test`],
    ['connect', `${C} connect-proxy allowed.test 80 evil.test:443`],
    ['h2c', `${C} h2c allowed.test 80`],
  ];
  const m = net.mark();
  const r = run('eg-http', probes, { egress: ['allow allowed.test'] });
  assert.equal(r.j('spoof').ok, false, r.raw('spoof'));
  const ka = r.j('keepalive');
  assert.equal(ka.ok, false, r.raw('keepalive'));
  assert.equal((ka.got as string[])[0], 'hello allowed.test', `the first request passes: ${r.raw('keepalive')}`);
  assert.equal(r.j('connect').ok, false, r.raw('connect'));
  assert.equal(r.j('h2c').ok, false, r.raw('h2c'));
  const seen = net.since(m);
  assert.deepEqual(seen.filter((e) => /^(host|connect|http-error) /.test(e)), ['host allowed.test 80 /'], 'the server saw only the first keep-alive request');
  const c = run('eg-http-control', probes);
  for (const l of ['spoof', 'keepalive', 'connect', 'h2c']) assert.equal(c.j(l).ok, true, `control ${l}: ${c.raw(l)}`);
});

test('8. the metadata address, the gateway and the host\'s own address are refused', (t) => {
  if (!ready(t)) return;
  const probes: [string, string][] = [
    ['metadata', `${C} connect 169.254.169.254 80`], ['metadata-http', 'curl -sS --max-time 5 http://169.254.169.254/'],
    ['gateway', `${C} connect gw ${hostPort}`], ['host', `${C} connect ${net.host} ${hostPort}`],
  ];
  for (const n of ['eg-meta', 'eg-meta-control']) net.routeMetadata(hostInterface(n));
  const m = net.mark();
  const r = run('eg-meta', probes, { egress: ['allow allowed.test', 'allow 198.18.0.0/15'] });
  for (const l of ['metadata', 'gateway', 'host']) refusedAtOnce(r.j(l), l);
  assert.doesNotMatch(r.raw('metadata-http'), /metadata-secret/);
  assert.deepEqual(net.since(m).filter((e) => e.startsWith('meta')), [], 'the fake metadata service saw nothing');
  const c = run('eg-meta-control', probes);
  for (const l of ['metadata', 'gateway', 'host']) assert.equal(c.j(l).ok, true, `control ${l}: ${c.raw(l)}`);
  assert.match(c.raw('metadata-http'), /metadata-secret/);
  // The host's [::] listener over the veth's link-local address: network.test.ts ("IPv4 only") covers it, with and without egress alike.
});

/** A host rule dropping (and counting) what a sandbox sends to the host's real resolver, behind the
 * wall (a later priority): if the wall lets a query through, it is caught here and never leaves. */
function resolverTrap(ifname: string, resolver: string): { hits(): number; remove(): void } {
  const table = `sbxegtrap${net.k}`;
  execFileSync('nft', ['-f', '-'], { input: `table inet ${table} {\n chain forward { type filter hook forward priority filter + 10; policy accept;\n  iifname "${ifname}" ip daddr ${resolver} counter drop\n }\n}\n` });
  return {
    hits: () => Number(/packets (\d+)/.exec(execFileSync('nft', ['list', 'table', 'inet', table], { encoding: 'utf8' }))?.[1] ?? 0),
    remove: () => execFileSync('nft', ['delete', 'table', 'inet', table]),
  };
}

test('9. DNS to any other server is refused: the fixture\'s over UDP and TCP, DoT, and the host\'s real resolver', (t) => {
  if (!ready(t)) return;
  const real = /^nameserver\s+(\d+\.\d+\.\d+\.\d+)/m.exec(readFileSync('/etc/resolv.conf', 'utf8'))?.[1];
  const probes: [string, string][] = [
    ['udp', `${C} dns allowed.test 1 ${net.dns}`], ['tcp', `${C} dns allowed.test 1 ${net.dns} tcp`], ['dot', `${C} connect ${net.dns} 853`],
  ];
  const realProbe: [string, string][] = real && !real.startsWith('127.') && !real.startsWith('192.0.2.') ? [['real', `${C} dns allowed.test 1 ${real}`]] : [];
  const trap = realProbe.length ? resolverTrap(hostInterface('eg-dns'), real!) : undefined;
  const m = net.mark();
  let r: Ran;
  try {
    r = run('eg-dns', [...probes, ...realProbe], { egress: ['allow allowed.test', 'allow 198.18.0.0/15'] });
    if (trap) assert.equal(trap.hits(), 0, `a query to the host's resolver ${real} got past the wall (caught by the test's trap)`);
  } finally { trap?.remove(); }
  for (const l of ['udp', 'tcp', 'dot', ...realProbe.map((p) => p[0])]) refusedAtOnce(r.j(l), l);
  assert.deepEqual(net.since(m).filter((e) => /^(dns|dot)/.test(e) && !e.startsWith('dns udp allowed.test') && !e.startsWith('dns tcp allowed.test')), []);
  assert.ok(!net.since(m).includes('dot'));
  // Only sbx-egress's own upstream query reached the server (from the host), none of the sandbox's three.
  assert.ok(net.queried(m).filter((q) => q === 'allowed.test').length <= 1, net.since(m).join('\n'));
  const c = run('eg-dns-control', probes);
  for (const l of ['udp', 'tcp', 'dot']) assert.equal(c.j(l).ok, true, `control ${l}: ${c.raw(l)}`);
  if (!realProbe.length) t.diagnostic('the host\'s resolver is on loopback or this machine\'s uplink: that probe was not sent');
});

test('10. an ordered exception: allow jira.corp.test above deny *.corp.test; reversed, load warns that the allow is shadowed', (t) => {
  if (!ready(t)) return;
  const m = net.mark();
  const r = run('eg-order', [['jira', `${CURL} https://jira.corp.test/`], ['wiki', `${C} dns wiki.corp.test`], ['wiki-curl', `${CURL} https://wiki.corp.test/`]],
    { egress: ['allow jira.corp.test', 'deny *.corp.test'] });
  assert.match(r.raw('jira'), hello('jira.corp.test'));
  assert.equal(r.j('wiki').rcode, 3, r.raw('wiki'));
  assert.match(r.raw('wiki-curl'), /Could not resolve host/);
  assert.ok(!net.queried(m).includes('wiki.corp.test'), 'the denied name was forwarded');
  const c = run('eg-order-control', [['wiki', `${C} dns wiki.corp.test`], ['wiki-curl', `${CURL} https://wiki.corp.test/`]]);
  assert.deepEqual(c.j('wiki').a, [net.web]);
  assert.match(c.raw('wiki-curl'), hello('wiki.corp.test'));
  const reversed = file('eg-order-rev', [['x', 'true']], { egress: ['deny *.corp.test', 'allow jira.corp.test'] });
  const v = sandbox(['validate', reversed]);
  assert.equal(v.code, 0, v.err);
  assert.match(v.err, /eg-order-rev\.yml:8:\d+: warning: .*(shadow|never match|can never)/i);
});

test('11. DNS rebinding: answers pointing at loopback or the metadata address are withheld, and nothing connects', (t) => {
  if (!ready(t)) return;
  net.routeMetadata(hostInterface('eg-rebind'));
  const probes: [string, string][] = [
    ['lo', `${C} dns rebind-lo.test`], ['md', `${C} dns rebind-md.test`], ['md-connect', `${C} connect rebind-md.test 80`],
  ];
  const m = net.mark();
  const r = run('eg-rebind', probes, { egress: ['allow rebind-lo.test', 'allow rebind-md.test'] });
  for (const l of ['lo', 'md']) { assert.equal(r.j(l).rcode, 0, r.raw(l)); assert.equal(r.j(l).answers, 0, `${l}: the answer was not withheld: ${r.raw(l)}`); }
  assert.equal(r.j('md-connect').ok, false, r.raw('md-connect'));
  assert.deepEqual(net.since(m).filter((e) => e.startsWith('meta')), []);
  assert.match(r.err, /rebind-lo\.test/, `the summary names the withheld answer: ${r.err}`);
  const c = run('eg-rebind-control', probes);
  assert.deepEqual(c.j('lo').a, ['127.0.0.1']);
  assert.deepEqual(c.j('md').a, ['169.254.169.254']);
});

test('12. UDP: echo to a cidr-allowed address works; UDP/443 to an allowed name\'s address (QUIC) is refused', (t) => {
  if (!ready(t)) return;
  const probes: [string, string][] = [['echo', `${C} udp ${net.udp} 7`], ['lookup', `${C} dns allowed.test`], ['quic', `${C} udp allowed.test 443`]];
  const m = net.mark();
  const r = run('eg-udp', probes, { egress: ['allow allowed.test', `{action: allow, cidr: ${net.udp}/32, ports: [7], protocol: udp}`] });
  assert.deepEqual(r.j('echo'), { ok: true, got: 'ping-udp' });
  assert.equal(r.j('quic').ok, false, r.raw('quic'));
  assert.ok(!net.since(m).some((e) => e.startsWith(`udp ${net.web}:443`)), 'the QUIC datagram reached the server');
  const c = run('eg-udp-control', probes);
  assert.deepEqual(c.j('quic'), { ok: true, got: 'ping-udp' });
});

test('13. root with NET_ADMIN and NET_RAW inside: nft flush ruleset, then any egress is refused at the host wall; a raw frame does not get out', (t) => {
  if (!ready(t)) return;
  const probes: [string, string][] = [
    ['lookup', `${C} dns allowed.test`], ['flush', 'nft flush ruleset && echo flushed'],
    ['tcp', `${C} connect ${net.web} 443`], ['udp', `${C} udp ${net.udp} 7`], ['frame', `${C} rawframe ${net.udp} 7`],
  ];
  const m = net.mark();
  const r = run('eg-caps', probes, { egress: ['allow allowed.test'], capAdd: ['NET_ADMIN', 'NET_RAW'] });
  assert.match(r.raw('flush'), /flushed/);
  refusedAtOnce(r.j('tcp'), 'TCP after the flush');
  assert.equal(r.j('udp').ok, false, r.raw('udp'));
  assert.equal(r.j('frame').ok, false, r.raw('frame'));
  assert.deepEqual(net.since(m).filter((e) => /^(udp|host|sni) /.test(e)), [], 'something got out');
  const c = run('eg-caps-control', probes, { capAdd: ['NET_ADMIN', 'NET_RAW'] });
  for (const l of ['tcp', 'udp', 'frame']) assert.equal(c.j(l).ok, true, `control ${l}: ${c.raw(l)}`);
});

/** `sandbox exec NAME sh -c …` with the probes; its results. */
function execProbes(name: string, probes: [string, string][]): Ran {
  const script = probes.map(([label, cmd]) => `printf '@@%s %s\\n' ${label} "$(${cmd} 2>&1 | tail -n 3 | tr '\\n' ' ')"`).join('\n');
  const r = sandbox(['exec', name, '/bin/sh', '-c', script], { timeout: 60_000 });
  return results(r.out, r.err, r.code);
}

/** sbx-egress's PID from the record the CLI keeps (egress.json: `proc: {pid, start}`). */
function egressRecord(name: string): { pid: number } {
  const r = JSON.parse(readFileSync(`/run/sandbox/${name}/egress.json`, 'utf8'));
  return { pid: r.proc?.pid ?? r.pid };
}

test('14. detached: the policy holds after the CLI is gone and after a restart, logs --denials [-f] lists the refusals with their lines, and down leaves nothing', async (t) => {
  if (!ready(t)) return;
  const name = 'eg-detached';
  const out = mkdtempSync(join(dir, 'out-'));
  t.after(() => { sandbox(['down', name]); });
  // The first run exits 1 at once; its restart (on-failure:1) stays: the policy must hold in both.
  const up = sandbox(['up', '-q', file(name, [], { egress: ['allow allowed.test', 'deny *.corp.test'], detach: true, volumes: [`${out}:/out`], restart: 'on-failure:1',
    detachCommand: 'if [ -e /out/once ]; then exec sleep 600; fi; touch /out/once; exit 1' })]);
  assert.equal(up.code, 0, up.err);
  let restarts = 0;
  for (let i = 0; i < 100 && restarts < 1; i++) { restarts = JSON.parse(sandbox(['ps', '--json']).out).find((r: { name: string }) => r.name === name)?.restarts ?? 0; if (restarts < 1) await new Promise((r) => setTimeout(r, 100)); }
  assert.equal(restarts, 1, 'the command ran again');
  const rec = egressRecord(name);
  assert.ok(readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').includes('sbx-egress'), 'the recorded PID is sbx-egress');
  // Each curl says its PID in the sandbox first (the shell's, which exec makes curl's).
  const r = execProbes(name, [['good', `${CURL} https://allowed.test/`], ['evil', `sh -c 'echo pid=$$; exec ${CURL} https://evil.test/'`], ['wiki', `${C} dns wiki.corp.test`],
    ['spoof', `sh -c 'echo pid=$$; exec ${CURL} --resolve evil.test:443:${net.web} https://evil.test/'`]]);
  assert.match(r.raw('good'), hello('allowed.test'));
  assert.match(r.raw('evil'), /Could not resolve host/);
  assert.equal(r.j('wiki').rcode, 3);
  assert.doesNotMatch(r.raw('spoof'), /hello/);
  const pidOf = (label: string) => Number(/pid=(\d+)/.exec(r.raw(label))?.[1]);
  const [lookupPid, relayPid] = [pidOf('evil'), pidOf('spoof')];
  assert.ok(lookupPid > 1 && relayPid > 1, `${r.raw('evil')} / ${r.raw('spoof')}`);
  // Records are coalesced for up to a second before sbx-egress writes them.
  let logs = '';
  for (let i = 0; i < 40 && !/wiki\.corp\.test/.test(logs); i++) { logs = sandbox(['logs', '--denials', name]).out; if (!/wiki\.corp\.test/.test(logs)) await new Promise((res) => setTimeout(res, 100)); }
  // Each refusal names the process that asked, when it was still there to be found: curl, by the
  // PID it has in the sandbox (as the sandbox's own ps shows it).
  assert.match(logs, new RegExp(`^\\d\\d:\\d\\d:\\d\\d curl\\[${lookupPid}\\] evil\\.test \\(lookup\\) refused: no rule allowed it \\(.*eg-detached\\.yml:6\\)( \\(\\d+ times\\))?$`, 'm'), logs);
  assert.match(logs, new RegExp(`^\\d\\d:\\d\\d:\\d\\d curl\\[${relayPid}\\] evil\\.test:443 \\(TLS name, at 198\\.18\\.\\d+\\.10\\) refused: no rule allowed it`, 'm'), logs);
  // The attestation's canaries are refused too, before the command started, and say so (their
  // process is the CLI's probe, outside the sandbox's PID namespace: "node[host N]").
  assert.match(logs, /^\d\d:\d\d:\d\d (\S+\[[^\]]+\] )?canary-[0-9a-f]+\.invalid \(lookup\) refused: no rule allowed it .*\(the attestation's probe, before the command started\)$/m);
  assert.match(logs, /^\d\d:\d\d:\d\d python3\[\d+\] wiki\.corp\.test \(lookup\) denied by rule 2 "deny \*\.corp\.test" \(.*eg-detached\.yml:8:7\)$/m);
  const json = sandbox(['logs', '--denials', '--json', name]).out.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(json.some((d) => d.kind === 'lookup' && d.name === 'wiki.corp.test' && d.rule === 2 && /eg-detached\.yml:8:7$/.test(d.src)), JSON.stringify(json));
  // The records: the PID in the sandbox, the PID on the host (a live or gone process whose own
  // namespace PID is that one), the name.
  for (const [kind, seen, pid] of [['lookup', 'dns', lookupPid], ['connect', 'sni', relayPid]] as const) {
    const d = json.find((x) => x.kind === kind && x.seen === seen && x.name === 'evil.test' && x.pid === pid);
    assert.ok(d && d.comm === 'curl' && Number.isInteger(d.hostPid) && d.hostPid > 1, `${kind}: ${JSON.stringify(json)}`);
  }
  const inspect = JSON.parse(sandbox(['inspect', '--json', name]).out);
  assert.equal(inspect.egress.rules, 2);
  assert.ok(inspect.egress.refused.lookups >= 2, JSON.stringify(inspect.egress));
  assert.equal(inspect.egress.relay.pid, rec.pid);
  assert.match(sandbox(['inspect', name]).out, /^egress +2 rules; refused \d+ lookups/m);
  // -f: a new refusal shows up as it is written, and the follower ends when the sandbox is removed.
  const follow = spawn(process.execPath, [BIN, 'logs', '--denials', '-f', name], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let followed = '';
  follow.stdout!.on('data', (d) => { followed += d; });
  const ended = new Promise<number | null>((res) => follow.on('exit', (c) => res(c)));
  try {
    for (let i = 0; i < 50 && !followed.includes('wiki.corp.test'); i++) await new Promise((res) => setTimeout(res, 100));
    assert.match(followed, /wiki\.corp\.test/, 'what was there is printed first');
    execProbes(name, [['late', `${C} dns late.corp.test`]]);
    for (let i = 0; i < 50 && !followed.includes('late.corp.test'); i++) await new Promise((res) => setTimeout(res, 100));
    assert.match(followed, /late\.corp\.test \(lookup\) denied by rule 2/, 'a new refusal is followed');
    const down = sandbox(['down', name]);
    assert.equal(down.code, 0, down.err);
    assert.equal(await Promise.race([ended, new Promise((res) => setTimeout(() => res('still running'), 5000))]), 0, 'logs -f ends once the sandbox is removed');
  } finally { follow.kill('SIGKILL'); }
  assert.deepEqual(egressLeftovers(name, rec.pid), []);
});

test('14b. detached: kill -9 of the supervisor, then gc, leaves nothing of egress either', (t) => {
  if (!ready(t)) return;
  const name = 'eg-detached-gc';
  t.after(() => { sandbox(['down', name]); sandbox(['gc']); });
  const up = sandbox(['up', '-q', file(name, [], { egress: ['allow allowed.test'], detach: true })]);
  assert.equal(up.code, 0, up.err);
  const rec = egressRecord(name);
  const state = JSON.parse(readFileSync(`/run/sandbox/${name}/state.json`, 'utf8'));
  process.kill(state.supervisorPid, 'SIGKILL');
  for (let i = 0; i < 100 && existsSync(`/proc/${state.pid}`); i++) execFileSync('sleep', ['0.05']);
  const gc = sandbox(['gc']);
  assert.equal(gc.code, 0, gc.err);
  assert.deepEqual(egressLeftovers(name, rec.pid), []);
});

test('15. fail closed: with sbx-egress killed, allowed names no longer resolve and connections are refused, and the log says so', (t) => {
  if (!ready(t)) return;
  const name = 'eg-failclosed';
  t.after(() => { sandbox(['down', name]); });
  const up = sandbox(['up', '-q', file(name, [], { egress: ['allow allowed.test'], detach: true })]);
  assert.equal(up.code, 0, up.err);
  const before = execProbes(name, [['good', `${CURL} https://allowed.test/`]]);
  assert.match(before.raw('good'), hello('allowed.test'));
  const rec = egressRecord(name);
  // egress.status is written within a second of the start.
  for (let i = 0; i < 30 && !existsSync(`/run/sandbox/${name}/egress.status`); i++) execFileSync('sleep', ['0.1']);
  assert.equal(JSON.parse(sandbox(['inspect', '--json', name]).out).egress.relay.running, true);
  process.kill(rec.pid, 'SIGKILL');
  for (let i = 0; i < 100 && existsSync(`/proc/${rec.pid}`) && !readFileSync(`/proc/${rec.pid}/stat`, 'utf8').includes(') Z'); i++) execFileSync('sleep', ['0.05']);
  // ps and inspect say that the policy's helper is gone and the sandbox is closed.
  assert.equal(JSON.parse(sandbox(['inspect', '--json', name]).out).egress.relay.running, false);
  assert.match(sandbox(['inspect', name]).out, new RegExp(`^egress .*sbx-egress pid ${rec.pid} has ended: names no longer resolve and host rules refuse everything \\(fail closed\\)`, 'm'));
  assert.equal(JSON.parse(sandbox(['ps', '--json']).out).find((x: { name: string }) => x.name === name)?.egress, 'ended');
  assert.match(sandbox(['ps']).out, new RegExp(`^${name} +running \\(egress ended, closed\\)`, 'm'));
  const m = net.mark();
  const r = execProbes(name, [['dns', `${C} dns allowed.test`], ['tcp', `${C} connect ${net.web} 443`], ['curl', `${CURL} https://allowed.test/`]]);
  assert.equal(r.j('dns').ok, false, r.raw('dns'));
  assert.equal(r.j('tcp').ok, false, r.raw('tcp'));
  assert.doesNotMatch(r.raw('curl'), /hello/);
  assert.deepEqual(net.since(m).filter((e) => /^(sni|host) /.test(e)), []);
  let log = '';
  for (let i = 0; i < 40 && !/egress/.test(log); i++) { log = sandbox(['logs', name]).err + sandbox(['logs', name]).out; if (!/egress/.test(log)) execFileSync('sleep', ['0.1']); }
  assert.match(log, /sandbox: the egress resolver and relay ended/);
  assert.equal(sandbox(['down', name]).code, 0);
  assert.deepEqual(egressLeftovers(name, rec.pid), []);
});

test('16. attestation: a wall written wrong makes up exit 125, naming the rule, and leaves nothing', (t) => {
  if (!ready(t)) return;
  const name = 'eg-attest';
  const f = file(name, [['x', 'echo ran']], { egress: ['allow allowed.test'] });
  const plan = JSON.parse(sandbox(['plan', '--json', f]).out);
  const wall = plan.steps.find((s: { kind: string }) => s.kind === 'net.egress.wall');
  assert.ok(wall, `the plan has no net.egress.wall step: ${plan.steps.map((s: { kind: string }) => s.kind).join(' ')}`);
  const r = sandbox(['up', '-q', f], { env: { SANDBOX_TEST_CORRUPT: wall.id }, timeout: 120_000 });
  assert.equal(r.code, 125, `${r.out}\n${r.err}`);
  assert.doesNotMatch(r.out, /ran/);
  assert.match(r.err, /attestation/);
  assert.match(r.err, new RegExp(`${wall.id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}|rule|eg-attest\\.yml:\\d+`));
  assert.deepEqual(egressLeftovers(name), []);
});
