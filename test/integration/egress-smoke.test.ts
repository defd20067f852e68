// An egress sandbox end to end, as root (egress-engine's smoke test; the full suite is egress.test.ts):
// from inside, with python3's sockets, resolv.conf names only the resolver, a name no rule allows
// does not resolve, an address no rule allows and the gateway are refused at once and DNS straight
// to the upstream never gets an answer, each refusal beside a control without egress; the wall
// loaded without its final refusal (SANDBOX_TEST_CORRUPT) stops the run with 125 before the
// command; a detached sandbox's sbx-egress is held by its supervisor, which logs its end; and
// nothing is left on the host afterwards (no table, no sbx-egress, no state).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasEngine, hasNft, isRoot, leftovers, needs, sandbox } from '../helpers/sandbox';
import { ROOT } from '../helpers/load';
import { egressIds } from '../../src/plan/egress';

const ready = (t: import('node:test').TestContext) => needs(t, 'root', isRoot) && needs(t, 'the native engine', hasEngine) && needs(t, 'nftables (apt-get install nftables)', hasNft)
  && needs(t, 'sbx-egress (node scripts/build.mjs)', readdirSync(join(ROOT, 'native/build')).includes('sbx-egress')) && needs(t, 'python3 in /usr/bin', readdirSync('/usr/bin').includes('python3'));

const SUBNET = '10.233.0.0/24', GATEWAY = '10.233.0.1', UPSTREAM = '198.18.251.53';
/** The client, as the sandbox sees it (the fixtures folder is bound at /fixtures). */
const CLIENT = '/fixtures/egress-smoke-client.py';

function file(name: string, egress: boolean, command: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-egress-smoke-'));
  const f = join(dir, 'sandbox.yml');
  writeFileSync(f, [
    'version: 1', `name: ${name}`, 'rootfs: host', `command: ${JSON.stringify(command)}`, `volumes: ["${join(ROOT, 'test/integration/fixtures')}:/fixtures:ro"]`,
    'network:', '  mode: private', `  subnet: ${SUBNET}`,
    ...(egress ? ['  egress:', '    - allow allowed.test:443', '    - {action: allow, cidr: 198.18.250.7/32, ports: [7], protocol: udp}'] : []),
    `dns: [${UPSTREAM}]`, '',
  ].join('\n'));
  return f;
}

/** What of an egress sandbox is on the host besides leftovers(): its wall and any sbx-egress. */
function egressLeft(name: string): string[] {
  const out = leftovers(name);
  const tables = execFileSync('nft', ['list', 'tables', 'inet'], { encoding: 'utf8' });
  if (tables.includes(`table inet sbx_${name.replace(/[^a-zA-Z0-9_]/g, '_')}_eg\n`)) out.push(`nftables table inet sbx_${name}_eg`);
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try { if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`/run/sandbox/${name}\0`) && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sbx-egress') out.push(`sbx-egress ${pid}`); } catch { /* gone */ }
  }
  return out;
}

const listen = (): Promise<Server> => new Promise((resolve) => { const s = createServer((c) => c.end()); s.listen(0, '0.0.0.0', () => resolve(s)); });

test('from inside: only the resolver in resolv.conf, a denied name unresolved, an unallowed address and the gateway refused at once, DNS to the upstream refused; without egress the gateway connects', async (t) => {
  if (!ready(t)) return;
  const srv = await listen();
  const port = (srv.address() as { port: number }).port;
  try {
    const run = (name: string, egress: boolean) => {
      const r = sandbox(['up', '-q', file(name, egress, ['/usr/bin/python3', CLIENT, GATEWAY, String(port), UPSTREAM])]);
      assert.equal(r.code, 0, r.err);
      return JSON.parse(r.out.trim().split('\n').at(-1)!) as Record<string, { result: string; ms: number } | string>;
    };
    const got = run('egsmoke', true);
    assert.equal(got.resolv, 'nameserver 127.0.0.53\noptions edns0\n');
    assert.match(String(got.lookup), /^gaierror/);
    for (const k of ['canary', 'gateway'] as const) {
      const c = got[k] as { result: string; ms: number };
      assert.equal(c.result, 'errno 111', `${k}: ECONNREFUSED from the wall's reset, got ${c.result}`);
      assert.ok(c.ms < 50, `${k} refused at once (${c.ms} ms)`);
    }
    assert.match(String(got.dns_direct), /^errno (111|113)$/);
    assert.deepEqual(egressLeft('egsmoke'), []);
    // The control: the same client, no egress: the gateway's listener accepts.
    const ctl = run('egsmoke-ctl', false);
    assert.equal((ctl.gateway as { result: string }).result, 'connected');
    assert.deepEqual(egressLeft('egsmoke-ctl'), []);
  } finally { srv.close(); }
});

test('a wall loaded without its final refusal is caught by the attestation: 125 before the command, naming the default\'s line, and nothing is left', (t) => {
  if (!ready(t)) return;
  const f = file('egsmoke-bad', true, ['/bin/sh', '-c', 'echo the command ran']);
  const r = sandbox(['up', '-q', f], { env: { SANDBOX_TEST_CORRUPT: 'net:egress:wall' } });
  assert.equal(r.code, 125, r.err);
  assert.doesNotMatch(r.out, /the command ran/);
  assert.match(r.err, /net:egress:wall.*expected the wall \(table inet sbx_egsmoke_bad_eg\) as compiled, found chain from_sandbox rule \d+: missing, expected counter=none .*it enforces the default refusal \(.*sandbox\.yml:9:3\)/s);
  assert.deepEqual(egressLeft('egsmoke-bad'), []);
});

test('detached: sbx-egress is held by the supervisor, which logs its end; down leaves nothing', async (t) => {
  if (!ready(t)) return;
  const name = 'egsmoke-d';
  const r = sandbox(['up', '-d', '-q', file(name, true, ['/bin/sleep', '60'])]);
  assert.equal(r.code, 0, r.err);
  try {
    const state = JSON.parse(readFileSync(`/run/sandbox/${name}/state.json`, 'utf8')) as { supervisorPid: number };
    const rec = JSON.parse(readFileSync(`/run/sandbox/${name}/egress.json`, 'utf8')) as { pid: number };
    const argv = readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8').split('\0');
    assert.equal(argv[argv.indexOf('--holder') + 1], String(state.supervisorPid));
    assert.match(execFileSync('nft', ['list', 'tables', 'inet'], { encoding: 'utf8' }), /table inet sbx_egsmoke_d_eg\n/);
    process.kill(rec.pid, 'SIGKILL');
    let log = '';
    for (let i = 0; i < 100 && !/the egress resolver and relay ended/.test(log); i++) { await new Promise((res) => setTimeout(res, 20)); log = readFileSync(`/run/sandbox/${name}/log`, 'utf8'); }
    assert.match(log, /sandbox: the egress resolver and relay ended .*names no longer resolve and host rules refuse everything/);
  } finally {
    const d = sandbox(['down', name]);
    assert.equal(d.code, 0, d.err);
  }
  assert.deepEqual(egressLeft(name), []);
});

/** Holds NFLOG group argv[1] on the host as a log daemon (ulogd) would: a netfilter netlink socket
 * bound to it; says "bound" once the kernel agreed, then waits to be killed. */
const HOLD_GROUP = `import socket, struct, sys, time
g = int(sys.argv[1])
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12); s.bind((0, 0))
body = struct.pack('BB', 0, 0) + struct.pack('!H', g) + struct.pack('HH', 5, 1) + b'\\x01\\0\\0\\0'
s.send(struct.pack('IHHII', 16 + len(body), (4 << 8) | 1, 1 | 4, 1, 0) + body)
err = struct.unpack('i', s.recv(4096)[16:20])[0]
print('bound' if err == 0 else 'error %d' % err, flush=True)
time.sleep(600)`;

const nflogGroups = () => readFileSync('/proc/net/netfilter/nfnetlink_log', 'utf8').split('\n').map((l) => /^\s*(\d+)\s/.exec(l)?.[1]).filter(Boolean).map(Number);

test('the NFLOG group a sandbox would log to is held by another process: the run takes the next free one, and the wall\'s refusals still reach its denials', async (t) => {
  if (!ready(t)) return;
  const name = 'egsmoke-grp';
  const want = egressIds(name, { groups: [], marks: [] }).group;
  const holder = spawn('/usr/bin/python3', ['-c', HOLD_GROUP, String(want)], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const said = await new Promise<string>((res) => { let s = ''; holder.stdout!.on('data', (d) => { s += d; if (s.includes('\n')) res(s.trim()); }); holder.once('exit', () => res(s.trim() || 'exited')); });
    assert.equal(said, 'bound', `the test could not hold NFLOG group ${want}`);
    const r = sandbox(['up', '-d', '-q', file(name, true, ['/bin/sleep', '60'])]);
    assert.equal(r.code, 0, r.err);
    const rec = JSON.parse(readFileSync(`/run/sandbox/${name}/egress.json`, 'utf8')) as { group: number };
    assert.notEqual(rec.group, want);
    assert.ok(nflogGroups().includes(rec.group) && nflogGroups().includes(want), `both groups bound: ${nflogGroups().join(' ')}`);
    // An address no rule allows, refused by the wall, which logs it to the group the run took (not
    // the attestation's canary 198.18.255.254: its record would be coalesced with the canary's).
    const e = sandbox(['exec', name, '/usr/bin/python3', '-c', 'import socket\ntry: socket.create_connection(("198.18.255.253", 443), timeout=2)\nexcept OSError as e: print(e.errno)']);
    assert.equal(e.out.trim(), '111', e.out + e.err);
    let logs = '';
    for (let i = 0; i < 40 && !/198\.18\.255\.253:443 \(refused by the kernel\)/.test(logs); i++) { await new Promise((res) => setTimeout(res, 100)); logs = sandbox(['logs', '--denials', name]).out; }
    assert.match(logs, /^\d\d:\d\d:\d\d (\S+\[[^\]]+\] )?198\.18\.255\.253:443 \(refused by the kernel\) refused: no rule allowed it \(.*sandbox\.yml:9\)$/m, logs);
  } finally {
    holder.kill('SIGKILL');
    const d = sandbox(['down', name]);
    assert.equal(d.code, 0, d.err);
  }
  assert.deepEqual(egressLeft(name), []);
});
