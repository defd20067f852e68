// Egress without root (docs/egress-design.md 3.3 "Rootless", P3): the CLI runs as a user this test
// makes, through pasta (IPv4 only, no DNS forwarder) or slirp4netns (its DNS at 10.0.2.3 off);
// sbx-egress runs as that user and joins the sandbox's user namespace; the wall is the output chain
// of the sandbox's own table. The outside world is fixtures/egress-net.ts, made by this test as
// root; the user's pasta reaches it through the host's route to 198.18.K.0/24. Checked from inside
// with real clients (curl, python3), and a refusal is proven three times where it can be: the
// client was refused, the server never got the request, and the run's denials name it with its
// line. Each refusal has its control, the same probe from a rootless sandbox without `egress`.
// Traffic goes only to the fixture's namespace and to this host; every probe has a 5 s timeout.
// The fixture (K = 243) and the user (sbxegrl) have fixed names: a run killed before its after()
// hook leaves them, and the next run's set-up removes them first.
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { hasEngine, isRoot, needs } from '../helpers/sandbox';
import { canMakeUsers, defaultRouteForPasta, makeUser, pidsOf, removeAllUsers, sandboxAs, tunForUsers, userTmp, type TestUser } from '../helpers/users';
import { startEgressNet, type EgressNet } from './fixtures/egress-net';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const hasPasta = existsSync('/usr/bin/pasta');
const hasSlirp = has('slirp4netns');

let net: EgressNet | undefined;
let user: TestUser | undefined;
let dir = '';
let tun: ReturnType<typeof tunForUsers> | undefined;
let route: ReturnType<typeof defaultRouteForPasta> | undefined;
/** A TCP listener on every IPv4 and IPv6 address of the host ([::], dual-stack). */
let hostService: Server | undefined;
let hostPort = 0;

const ready = (t: TestContext, tool: 'pasta' | 'slirp4netns' = 'pasta') => needs(t, 'root', isRoot) && needs(t, 'useradd', canMakeUsers) && needs(t, 'the native engine', hasEngine)
  && needs(t, 'curl and python3', has('curl') && has('python3')) && needs(t, tool === 'pasta' ? 'pasta (apt-get install passt)' : 'slirp4netns', tool === 'pasta' ? hasPasta : hasSlirp)
  && needs(t, 'the test set-up (a user, the fixture)', !!user && !!net);

before(async () => {
  if (!isRoot || !canMakeUsers || !hasEngine || !has('curl') || !has('python3')) return;
  tun = tunForUsers();
  route = defaultRouteForPasta('sbxegrl0');
  net = await startEgressNet({ k: 243 });
  user = makeUser('sbxegrl', { fixed: true });
  dir = userTmp(user);
  hostService = createServer((c) => c.end('host service\n'));
  await new Promise<void>((r) => hostService!.listen({ host: '::', port: 0 }, r));
  hostPort = (hostService.address() as import('node:net').AddressInfo).port;
});

after(async () => {
  // Everything is removed whatever failed; what was left is asserted afterwards.
  hostService?.close();
  const running = user ? pidsOf(user.uid) : [];
  removeAllUsers();
  const left = net ? await net.close() : [];
  tun?.undo();
  route?.undo();
  assert.deepEqual(running, [], 'the user still ran processes (pasta, sbx-egress, a sandbox)');
  assert.deepEqual(left, [], 'the fixture left something on the host');
});

const C = 'python3 /egress/client.py';
const CURL = 'curl -sS --max-time 5 --cacert /egress/ca.pem';

interface Box { egress?: string[]; capAdd?: string[]; tool?: 'pasta' | 'slirp4netns'; detach?: string }

/** NAME.yml in the user's folder: rootfs host, a private network through the tool (with these
 * egress rules, or none: the control), dns at the fixture, the fixture's folder at /egress. */
function file(name: string, probes: [string, string][], o: Box = {}): string {
  const script = probes.map(([label, cmd]) => `printf '@@%s %s\\n' ${label} "$(${cmd} 2>&1 | tail -n 3 | tr '\\n' ' ')"`).join('\n');
  const lines = [
    'version: 1', `name: ${name}`, 'rootfs: host',
    'network:', '  mode: private', ...(o.tool ? [`  rootless_cmd: ${o.tool}`] : []),
    ...(o.egress ? ['  egress:', ...o.egress.map((r) => `    - ${r}`)] : []),
    `dns: [${net!.dns}]`,
    `volumes: ${JSON.stringify([`${net!.certDir}:/egress:ro`, `${dir}:/out`])}`,
    ...(o.capAdd ? [`cap_add: [${o.capAdd.join(', ')}]`] : []),
    ...(o.detach !== undefined ? ['detach: true', 'init: true', `command: ${JSON.stringify(['/bin/sh', '-c', `{ ${script}\n} > /out/${name}.txt; ${o.detach}`])}`] : [`command: ["/bin/sh", "-c", ${JSON.stringify(script)}]`]),
    '',
  ];
  const path = join(dir, `${name}.yml`);
  writeFileSync(path, lines.join('\n'), { mode: 0o644 });
  return path;
}

function parse(out: string, label: string): string {
  const line = out.split('\n').find((l) => l.startsWith(`@@${label} `));
  if (line === undefined) assert.fail(`no result for ${label}:\n${out}`);
  return line.slice(label.length + 3).trim();
}
const json = (out: string, label: string): { ok: boolean; error?: string; rcode?: number; a?: string[]; got?: unknown; ms?: number } => {
  const r = parse(out, label);
  try { return JSON.parse(r.slice(r.indexOf('{'))); } catch { return assert.fail(`${label}: not a result: ${r}`); }
};

/** The user's sandboxes' state folders and processes: nothing once a run is over (a process
 * that is ending is given 3 s). */
function userLeftovers(name: string): string[] {
  for (let end = Date.now() + 3000; pidsOf(user!.uid).length && Date.now() < end;) spawnSync('sleep', ['0.05']);
  const out: string[] = [];
  const state = join(user!.runtimeDir, 'sandbox', name);
  if (existsSync(state)) out.push(`state ${state}: ${readdirSync(state).join(' ')}`);
  for (const p of pidsOf(user!.uid)) {
    try { out.push(`process ${p}: ${execFileSync('cat', [`/proc/${p}/cmdline`], { encoding: 'utf8' }).replace(/\0/g, ' ').trim()}`); } catch { /* gone */ }
  }
  return out;
}

/** A foreground run: its probes' output, and stderr (where the run's denials are summed up). */
function runErr(name: string, probes: [string, string][], o: Box = {}): { out: string; err: string } {
  const r = sandboxAs(user!, ['up', '-q', file(name, probes, o)], { timeout: 120_000 });
  assert.equal(r.code, 0, `${name}: exit ${r.code}\n${r.out}\n${r.err}`);
  assert.deepEqual(userLeftovers(name), [], `${name} left something behind`);
  return r;
}
const run = (name: string, probes: [string, string][], o: Box = {}) => runErr(name, probes, o).out;

// The web address is first asked before any lookup (the wall refuses an address the resolver never
// gave); once allowed.test is answered, a connection to it on a host rule's port reaches the relay,
// which accepts it and judges its first bytes: a TLS name or an HTTP Host no rule allows is refused.
const PROBES = (): [string, string][] => [
  ['literal', `${C} connect ${net!.web} 443`],
  ['http', `${CURL} -o /dev/null -w '%{http_code}' http://allowed.test/`],
  ['https', `${CURL} -o /dev/null -w '%{http_code}' https://allowed.test/`],
  ['evil', `${C} dns evil.test`],
  ['sni-spoof', `${C} tls ${net!.web} 443 evil.test`],
  ['host-spoof', `${C} http ${net!.web} 80 evil.test`],
  ['upstream-udp', `${C} dns allowed.test 1 ${net!.dns}`],
  ['upstream-tcp', `${C} dns allowed.test 1 ${net!.dns} tcp`],
  ['pasta-dns', `${C} dns allowed.test 1 169.254.1.1`],
  ['gw-dns', `${C} dns allowed.test 1 gw`],
  ['gw', `${C} connect gw ${hostPort}`],
];

test('rootless egress through pasta: an allowed name works over HTTP and HTTPS; a denied name, an IP literal, a spoofed TLS name or Host, DNS to the upstream, pasta\'s forwarder and the gateway are refused; each has its control', (t) => {
  if (!ready(t)) return;
  const n = net!;
  const mark = n.mark();
  const { out, err } = runErr('rleg', PROBES(), { egress: ['allow allowed.test'] });
  assert.equal(parse(out, 'http'), '200');
  assert.equal(parse(out, 'https'), '200');
  assert.equal(json(out, 'evil').rcode, 3, parse(out, 'evil'));
  assert.ok(!n.queried(mark).includes('evil.test'), `the fixture's DNS was asked for evil.test: ${n.queried(mark).join(' ')}`);
  const literal = json(out, 'literal');
  assert.equal(literal.ok, false, parse(out, 'literal'));
  assert.match(String(literal.error), /ECONNREFUSED|EHOSTUNREACH/);
  // The relay took both connections and closed them on their first bytes; the server saw neither name.
  for (const l of ['sni-spoof', 'host-spoof']) assert.equal(json(out, l).ok, false, `${l}: ${parse(out, l)}`);
  assert.deepEqual(n.since(mark).filter((e) => /^(sni|host) /.test(e) && !/ allowed\.test\b/.test(e)), [], 'the server saw a name no rule allows');
  // The wall is the output chain of the sandbox's own namespace: a refused datagram never leaves
  // the sender's send() (EPERM, the kernel's word for a packet its own netfilter dropped on the way
  // out), a refused TCP connect gets a reset.
  for (const l of ['upstream-udp', 'upstream-tcp', 'pasta-dns', 'gw-dns']) {
    const r = json(out, l);
    assert.equal(r.ok, false, `${l}: ${parse(out, l)}`);
    assert.match(String(r.error), /EPERM|ECONNREFUSED|EHOSTUNREACH|timeout/, `${l}: ${parse(out, l)}`);
  }
  assert.equal(json(out, 'gw').ok, false, parse(out, 'gw'));
  // Only allowed.test reached the fixture's DNS, and only from sbx-egress.
  assert.deepEqual([...new Set(n.queried(mark))], ['allowed.test'], n.since(mark).join('\n'));
  // The run ends with its denials, in the order first seen, each with the line that refused it: the
  // wall's (the literal address: the wall in the sandbox's namespace logs to NFLOG there, which
  // sbx-egress reads), the resolver's and the relay's, as with root.
  const summary = err.split('\n').find((l) => l.startsWith('sandbox: ')) ?? assert.fail(`no denial summary on stderr:\n${err}`);
  assert.match(summary, new RegExp(`^sandbox: 1 lookup and \\d+ connections refused: ${n.web.replace(/\./g, '\\.')}:443, no rule allowed it \\(.*rleg\\.yml:6\\); evil\\.test, no rule allowed it \\(.*rleg\\.yml:6\\); evil\\.test:443, no rule allowed it`), summary);

  // The control: the same probes from a rootless sandbox without egress reach what was refused.
  const mark2 = n.mark();
  const ctl = run('rlctl', PROBES());
  assert.equal(json(ctl, 'evil').rcode, 0, parse(ctl, 'evil'));
  assert.equal(json(ctl, 'literal').ok, true, parse(ctl, 'literal'));
  assert.equal(json(ctl, 'sni-spoof').ok, true, parse(ctl, 'sni-spoof'));
  assert.equal(json(ctl, 'host-spoof').ok, true, parse(ctl, 'host-spoof'));
  assert.equal(json(ctl, 'upstream-udp').rcode, 0, parse(ctl, 'upstream-udp'));
  assert.equal(json(ctl, 'upstream-tcp').rcode, 0, parse(ctl, 'upstream-tcp'));
  assert.ok(n.queried(mark2).includes('evil.test'));
});

test('rootless egress through slirp4netns: an allowed name works; its own DNS at 10.0.2.3 and a denied name are refused', (t) => {
  if (!ready(t, 'slirp4netns')) return;
  const out = run('rlegs', [
    ['literal', `${C} connect ${net!.web} 443`],
    ['https', `${CURL} -o /dev/null -w '%{http_code}' https://allowed.test/`],
    ['evil', `${C} dns evil.test`],
    ['slirp-dns', `${C} dns allowed.test 1 10.0.2.3`],
    ['sni-spoof', `${C} tls ${net!.web} 443 evil.test`],
  ], { egress: ['allow allowed.test'], tool: 'slirp4netns' });
  assert.equal(parse(out, 'https'), '200');
  assert.equal(json(out, 'evil').rcode, 3);
  assert.equal(json(out, 'slirp-dns').ok, false, parse(out, 'slirp-dns'));
  assert.equal(json(out, 'literal').ok, false, parse(out, 'literal'));
  assert.equal(json(out, 'sni-spoof').ok, false, parse(out, 'sni-spoof'));
});

test('rootless egress: cap_add NET_ADMIN or NET_RAW is refused at load, at its line (exit 2)', (t) => {
  if (!ready(t)) return;
  const r = sandboxAs(user!, ['up', '-q', file('rlcap', [['x', 'true']], { egress: ['allow allowed.test'], capAdd: ['NET_ADMIN', 'NET_RAW'] })]);
  assert.equal(r.code, 2, `${r.out}\n${r.err}`);
  assert.match(r.err, /rlcap\.yml:\d+:\d+.*NET_ADMIN would let it lift the wall/);
  assert.match(r.err, /NET_RAW would send frames under it/);
  assert.deepEqual(userLeftovers('rlcap'), []);
});

test('rootless egress, detached: the policy holds after the CLI is gone, `logs --denials` lists the refusals with their lines, and `down` leaves nothing', async (t) => {
  if (!ready(t)) return;
  t.after(() => { sandboxAs(user!, ['down', 'rlegd'], { timeout: 60_000 }); });
  const probes: [string, string][] = [
    ['literal', `${C} connect ${net!.web} 443`],
    ['https', `${CURL} -o /dev/null -w '%{http_code}' https://allowed.test/`],
    ['evil', `${C} dns evil.test`],
    ['sni-spoof', `${C} tls ${net!.web} 443 evil.test`],
  ];
  // The probes run 2 s after start, when the CLI that started the sandbox has long exited.
  const f = file('rlegd', probes, { egress: ['allow allowed.test'], detach: 'sleep 600' });
  writeFileSync(f, readFileSync(f, 'utf8').replace('command: ["/bin/sh","-c","', 'command: ["/bin/sh","-c","sleep 2; '));
  const up = sandboxAs(user!, ['up', '-q', f], { timeout: 60_000 });
  assert.equal(up.code, 0, `${up.out}\n${up.err}`);
  const result = join(dir, 'rlegd.txt');
  for (let i = 0; i < 300 && !(existsSync(result) && readFileSync(result, 'utf8').includes('@@sni-spoof')); i++) await new Promise((r) => setTimeout(r, 50));
  const out = readFileSync(result, 'utf8');
  assert.equal(json(out, 'literal').ok, false, parse(out, 'literal'));
  assert.equal(parse(out, 'https'), '200');
  assert.equal(json(out, 'evil').rcode, 3);
  assert.equal(json(out, 'sni-spoof').ok, false, parse(out, 'sni-spoof'));
  // What was refused, as the user reads it: the wall in the sandbox's own namespace logs to NFLOG
  // there, which sbx-egress reads, so a kernel refusal is a record with its address and port as
  // with root, beside the resolver's and the relay's. Records are written about 1 s after the first.
  const web = net!.web.replace(/\./g, '\\.');
  let logs = '';
  for (let i = 0; i < 50 && !(/evil\.test:443/.test(logs) && new RegExp(`${web}:443 \\(refused by the kernel\\)`).test(logs)); i++) {
    logs = sandboxAs(user!, ['logs', '--denials', 'rlegd']).out;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(logs, new RegExp(`^\\d\\d:\\d\\d:\\d\\d (\\S+\\[[^\\]]+\\] )?${web}:443 \\(refused by the kernel\\) refused: no rule allowed it \\(.*rlegd\\.yml:6\\)( \\(\\d+ times\\))?$`, 'm'), logs);
  // sbx-egress runs as the user, who owns the sandbox's user namespace: it finds the process too.
  assert.match(logs, /^\d\d:\d\d:\d\d python3\[\d+\] evil\.test \(lookup\) refused: no rule allowed it \(.*rlegd\.yml:6\)( \(\d+ times\))?$/m, logs);
  assert.match(logs, new RegExp(`^\\d\\d:\\d\\d:\\d\\d python3\\[\\d+\\] evil\\.test:443 \\(TLS name, at ${web}\\) refused: no rule allowed it \\(.*rlegd\\.yml:6\\)`, 'm'), logs);
  // The attestation's own probes of the wall are there too, and say so.
  assert.match(logs, /:53\/udp \(refused by the kernel\) refused: .* \(the attestation's probe, before the command started\)$/m, logs);
  const recs = sandboxAs(user!, ['logs', '--denials', '--json', 'rlegd']).out.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(recs.some((d) => d.kind === 'connect' && d.seen === 'kernel' && d.addr === net!.web && d.port === 443 && d.rule === null && /rlegd\.yml:6:\d+$/.test(d.src)), JSON.stringify(recs));
  const inspect = JSON.parse(sandboxAs(user!, ['inspect', '--json', 'rlegd']).out);
  assert.ok(inspect.egress.refused.kernel >= 1 && inspect.egress.refused.lookups >= 1 && inspect.egress.refused.connections >= 1, JSON.stringify(inspect.egress));
  const down = sandboxAs(user!, ['down', 'rlegd'], { timeout: 60_000 });
  assert.equal(down.code, 0, `${down.out}\n${down.err}`);
  assert.deepEqual(userLeftovers('rlegd'), []);
});

test('rootless IPv6: a host listener on [::] is out of reach of a pasta sandbox with egress (pasta -4: no IPv6 at all); without egress, says what it reaches', (t) => {
  if (!ready(t)) return;
  const v6 = execFileSync('ip', ['-6', '-o', 'addr', 'show', 'scope', 'global'], { encoding: 'utf8' }).split('\n').map((l) => /inet6 ([0-9a-f:]+)\//.exec(l)?.[1]).filter((x): x is string => !!x);
  const gw6 = /default via ([0-9a-f:]+)/.exec(execFileSync('ip', ['-6', 'route', 'show', 'default'], { encoding: 'utf8' }))?.[1];
  const targets = [...v6, ...(gw6 ? [gw6] : []), '::1'];
  const probes: [string, string][] = [['addrs', 'cat /proc/net/if_inet6 | wc -l'], ...targets.map((a, i) => [`v6-${i}`, `python3 -c "import socket,sys; s=socket.socket(socket.AF_INET6); s.settimeout(3)
try: s.connect(('${a}', ${hostPort})); print('connected', s.recv(20))
except Exception as e: print('refused', type(e).__name__, e)"`] as [string, string])];
  const eg = run('rleg6', probes, { egress: ['allow allowed.test'] });
  for (let i = 0; i < targets.length; i++) assert.doesNotMatch(parse(eg, `v6-${i}`), /connected/, `with egress, [${targets[i]}]:${hostPort}: ${parse(eg, `v6-${i}`)}`);
  assert.equal(parse(eg, 'addrs'), '1', 'with egress the sandbox has no IPv6 address but ::1');
  const ctl = run('rlctl6', probes);
  t.diagnostic(`without egress: ${targets.map((a, i) => `[${a}] ${parse(ctl, `v6-${i}`)}`).join('; ')}; IPv6 addresses inside: ${parse(ctl, 'addrs')}`);
  for (let i = 0; i < targets.length; i++) if (targets[i] !== gw6) assert.doesNotMatch(parse(ctl, `v6-${i}`), /host service/, `without egress, the host's [${targets[i]}]:${hostPort} was reached`);
});
