// sbx_netprobe (native/src/netprobe.c) through its wrapper (src/engine/netprobe.ts), against
// network namespaces this test makes with `unshare`: one with a TCP listener (a DNS-over-TCP
// server), a UDP DNS responder (python3), a closed port and a port whose packets nftables drops;
// one with IPv6 turned off; one owned by a new user namespace. Each outcome is checked against
// what only that namespace holds (the responder's answers exist nowhere else; the host has no
// listener on those ports). Traffic stays inside the namespaces (loopback, TEST-NET addresses with
// no route). Timings are reported as medians, never asserted.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { netprobe, type NetProbe, type NetProbeResult } from '../../src/engine/netprobe';
import { hasEngine, hasNft, isRoot, needs } from '../helpers/sandbox';
import { ROOT } from '../helpers/load';
import { asUser, canMakeUsers, makeUser, PYTHON3, removeUser, repoForUsers, spawnAsUser } from '../helpers/users';

// The tests run the engine from build/, not from the bundle: the library is the tree's.
process.env.SANDBOX_LIBSBX ??= join(ROOT, 'native/build/libsbx.so');

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const ready = (t: import('node:test').TestContext) => needs(t, 'root', isRoot) && needs(t, 'the native engine', hasEngine)
  && needs(t, 'python3, unshare and ip', has('python3') && has('unshare') && has('ip')) && needs(t, 'nftables (apt-get install nftables)', hasNft);

// A DNS server over UDP and TCP (the TCP listener is dual-stack), inside the namespace: CH TXT
// id.sandbox. answers the nonce, IN A a.test answers 198.18.0.10, anything else NXDOMAIN. It prints
// its ports and a closed one, then serves until its stdin closes.
const RESPONDER = String.raw`
import socket, struct, sys, threading
NONCE = b'nonce-5b7e'
def answer(q):
    qid, flags, qd = struct.unpack('>HHH', q[:6])
    o, labels = 12, []
    while q[o]:
        labels.append(q[o + 1:o + 1 + q[o]].decode().lower()); o += 1 + q[o]
    qtype, qclass = struct.unpack('>HH', q[o + 1:o + 5])
    question = q[12:o + 5]
    name = '.'.join(labels)
    if (name, qtype, qclass) == ('id.sandbox', 16, 3):
        rr = b'\xc0\x0c' + struct.pack('>HHIH', 16, 3, 0, len(NONCE) + 1) + bytes([len(NONCE)]) + NONCE
    elif (name, qtype, qclass) == ('a.test', 1, 1):
        rr = b'\xc0\x0c' + struct.pack('>HHIH', 1, 1, 60, 4) + bytes([198, 18, 0, 10])
    else:
        return struct.pack('>HHHHHH', qid, 0x8183, 1, 0, 0, 0) + question
    return struct.pack('>HHHHHH', qid, 0x8180, 1, 1, 0, 0) + question + rr
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(('127.0.0.1', 0))
tcp = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); tcp.bind(('::', 0)); tcp.listen(64)
closed = socket.socket(); closed.bind(('127.0.0.1', 0)); closed_port = closed.getsockname()[1]; closed.close()
def serve_udp():
    while True:
        q, peer = udp.recvfrom(4096); udp.sendto(answer(q), peer)
def serve_tcp():
    while True:
        c, _ = tcp.accept()
        try:
            data = b''
            while len(data) < 2 or len(data) < 2 + struct.unpack('>H', data[:2])[0]:
                chunk = c.recv(4096)
                if not chunk: break
                data += chunk
            if len(data) >= 2:
                a = answer(data[2:]); c.sendall(struct.pack('>H', len(a)) + a)
        except Exception:
            pass
        c.close()
for f in (serve_udp, serve_tcp): threading.Thread(target=f, daemon=True).start()
print('READY', tcp.getsockname()[1], udp.getsockname()[1], closed_port, flush=True)
sys.stdin.read()
`;

const started: ChildProcess[] = [];
after(() => { for (const c of started) if (c.exitCode === null) c.kill('SIGKILL'); });

/** A process in new namespaces (unshare's flags) that runs script after bringing lo up; resolves with its pid and its first line. */
function namespace(flags: string[], setup: string, exec: string[]): Promise<{ pid: number; line: string; proc: ChildProcess }> {
  const proc = spawn('unshare', [...flags, '--', 'sh', '-c', `set -e; ${setup}; ip link set lo up; exec "$@"`, 'sh', ...exec], { stdio: ['pipe', 'pipe', 'inherit'] });
  started.push(proc);
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: proc.stdout! });
    lines.once('line', (line) => resolve({ pid: proc.pid!, line, proc }));
    proc.once('exit', (code) => reject(new Error(`the namespace's process ended (status ${code}) before it was ready`)));
  });
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };
const show = (r: NetProbeResult) => `${r.outcome}${r.code ? ` ${r.code}` : ''}${r.rcode !== undefined ? ` rcode ${r.rcode}` : ''}${r.text ? ` "${r.text}"` : ''}`;

/** Whether the host (this process's namespace) accepts a TCP connection on 127.0.0.1:port. */
function hostAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

test('each probe\'s outcome, from inside a namespace with a listener, a DNS responder, a closed port and a dropped one', async (t) => {
  if (!ready(t)) return;
  // Port 9 (discard) is dropped on input, so a connect or a query to it gets no answer at all.
  const drop = "nft add table inet probe_test; nft add chain inet probe_test in '{ type filter hook input priority 0; }'; nft add rule inet probe_test in meta l4proto '{ tcp, udp }' th dport 9 drop";
  const ns = await namespace(['-n'], drop, ['python3', '-u', '-c', RESPONDER]);
  const [, tcp, udp, closed] = ns.line.split(' ').map(Number) as [number, number, number, number];
  assert.ok(tcp && udp && closed, `the responder is ready: ${ns.line}`);
  const cases: [string, NetProbe, (r: NetProbeResult) => void][] = [
    ['TCP to the listener', { kind: 'tcp', addr: '127.0.0.1', port: tcp }, (r) => assert.equal(r.outcome, 'connected')],
    ['TCP to a closed port', { kind: 'tcp', addr: '127.0.0.1', port: closed }, (r) => { assert.equal(r.outcome, 'refused'); assert.equal(r.code, 'ECONNREFUSED'); }],
    ['TCP to a dropped port', { kind: 'tcp', addr: '127.0.0.1', port: 9, timeoutMs: 50 }, (r) => { assert.equal(r.outcome, 'timeout'); assert.ok(r.us >= 50_000, `${r.us} µs`); }],
    ['TCP to an address with no route', { kind: 'tcp', addr: '198.18.255.254', port: 443 }, (r) => { assert.equal(r.outcome, 'unreachable'); assert.equal(r.code, 'ENETUNREACH'); }],
    ['IPv6 TCP to the listener', { kind: 'tcp', addr: '::1', port: tcp }, (r) => assert.equal(r.outcome, 'connected')],
    ['IPv6 TCP with no route', { kind: 'tcp', addr: '2001:db8::1', port: 443 }, (r) => assert.equal(r.outcome, 'unreachable')],
    ['DNS/UDP CH TXT id.sandbox.', { kind: 'dns', transport: 'udp', addr: '127.0.0.1', port: udp, name: 'id.sandbox.', type: 'TXT', class: 'CH' }, (r) => { assert.equal(r.outcome, 'answered'); assert.equal(r.rcode, 0); assert.equal(r.answers, 1); assert.equal(r.text, 'nonce-5b7e'); }],
    ['DNS/UDP A a.test', { kind: 'dns', transport: 'udp', addr: '127.0.0.1', port: udp, name: 'a.test' }, (r) => { assert.equal(r.outcome, 'answered'); assert.equal(r.rcode, 0); assert.equal(r.text, '198.18.0.10'); }],
    ['DNS/UDP A of an unknown name', { kind: 'dns', transport: 'udp', addr: '127.0.0.1', port: udp, name: 'canary-0123.invalid' }, (r) => { assert.equal(r.outcome, 'answered'); assert.equal(r.rcode, 3); assert.equal(r.answers, 0); assert.equal(r.text, ''); }],
    ['DNS/TCP CH TXT id.sandbox.', { kind: 'dns', transport: 'tcp', addr: '127.0.0.1', port: tcp, name: 'id.sandbox', type: 'TXT', class: 'CH' }, (r) => { assert.equal(r.outcome, 'answered'); assert.equal(r.text, 'nonce-5b7e'); }],
    ['DNS/TCP A of an unknown name', { kind: 'dns', transport: 'tcp', addr: '127.0.0.1', port: tcp, name: 'evil.test' }, (r) => { assert.equal(r.outcome, 'answered'); assert.equal(r.rcode, 3); }],
    ['DNS/UDP to a closed port', { kind: 'dns', transport: 'udp', addr: '127.0.0.1', port: closed, name: 'a.test' }, (r) => { assert.equal(r.outcome, 'refused'); assert.equal(r.code, 'ECONNREFUSED'); }],
    ['DNS/UDP to a dropped port', { kind: 'dns', transport: 'udp', addr: '127.0.0.1', port: 9, name: 'a.test', timeoutMs: 50 }, (r) => assert.equal(r.outcome, 'timeout')],
    ['DNS/UDP with no route', { kind: 'dns', transport: 'udp', addr: '198.18.255.254', name: 'a.test' }, (r) => { assert.equal(r.outcome, 'unreachable'); assert.equal(r.code, 'ENETUNREACH'); }],
    ['DNS/TCP to a closed port', { kind: 'dns', transport: 'tcp', addr: '127.0.0.1', port: closed, name: 'a.test' }, (r) => assert.equal(r.outcome, 'refused')],
    ['the IPv6 addresses: ::1 only', { kind: 'inet6-addrs' }, (r) => { assert.equal(r.outcome, 'counted'); assert.equal(r.answers, 1); assert.equal(r.text, ''); }],
  ];
  const results = await netprobe(ns.pid, cases.map(([, p]) => p));
  cases.forEach(([what, , check], i) => { t.diagnostic(`${what}: ${show(results[i]!)}, ${results[i]!.us} µs`); check(results[i]!); });
  // Controls: the listener is in the namespace only, and the host's own view differs.
  assert.equal(await hostAccepts(tcp), false, 'the host has no listener on the namespace\'s port');
  const host = await netprobe(process.pid, [{ kind: 'tcp', addr: '127.0.0.1', port: tcp }]);
  assert.equal(host[0]!.outcome, 'refused', 'the same probe in the host\'s own namespace');

  // Cost: the whole set again, 30 times, with its timeouts left out.
  const quick = cases.filter(([, p]) => !('timeoutMs' in p)).map(([, p]) => p);
  const walls: number[] = [], each: number[][] = quick.map(() => []);
  for (let i = 0; i < 30; i++) {
    const t0 = process.hrtime.bigint();
    const rs = await netprobe(ns.pid, quick);
    walls.push(Number(process.hrtime.bigint() - t0) / 1000);
    rs.forEach((r, j) => { assert.equal(r.outcome, results[cases.findIndex(([, p]) => p === quick[j])]!.outcome, 'the same outcome each time'); each[j]!.push(r.us); });
  }
  t.diagnostic(`median of 30 calls of ${quick.length} probes: ${Math.round(median(walls))} µs per call (clone, setns, probes, wait)`);
  quick.forEach((p, j) => t.diagnostic(`  median ${median(each[j]!)} µs: ${cases.find(([, c]) => c === p)![0]}`));
  const one: number[] = [];
  for (let i = 0; i < 30; i++) { const t0 = process.hrtime.bigint(); await netprobe(ns.pid, [quick[0]!]); one.push(Number(process.hrtime.bigint() - t0) / 1000); }
  t.diagnostic(`median of 30 calls of one probe: ${Math.round(median(one))} µs per call`);
  ns.proc.stdin!.end();
});

test('a namespace with IPv6 turned off: no address, and IPv6 is unreachable', async (t) => {
  if (!ready(t)) return;
  const ns = await namespace(['-n'], 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/lo/disable_ipv6', ['sh', '-c', 'echo READY; exec cat']);
  const [addrs, v6, v4] = await netprobe(ns.pid, [{ kind: 'inet6-addrs' }, { kind: 'tcp', addr: '2001:db8::1', port: 443 }, { kind: 'tcp', addr: '::1', port: 443 }]);
  assert.equal(addrs!.outcome, 'counted');
  assert.equal(addrs!.answers, 0, 'no IPv6 address in the namespace');
  assert.equal(v6!.outcome, 'unreachable', `IPv6 to the world: ${show(v6!)}`);
  assert.equal(v4!.outcome, 'unreachable', `IPv6 loopback: ${show(v4!)}`);
  // Control: the host's own namespace has IPv6 addresses when IPv6 is on here.
  const [hostAddrs] = await netprobe(process.pid, [{ kind: 'inet6-addrs' }]);
  t.diagnostic(`the host's namespace: ${hostAddrs!.answers} IPv6 addresses`);
  ns.proc.stdin!.end();
});

test('as root: joining a user namespace first, and the errors once the process is gone', async (t) => {
  if (!ready(t)) return;
  const ns = await namespace(['-U', '-r', '-n'], 'true', ['python3', '-u', '-c', 'import socket,sys\ns=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(1)\nprint("READY", s.getsockname()[1], flush=True)\nsys.stdin.read()']);
  const port = Number(ns.line.split(' ')[1]);
  const [r] = await netprobe(ns.pid, [{ kind: 'tcp', addr: '127.0.0.1', port }], { joinUserns: true });
  assert.equal(r!.outcome, 'connected', show(r!));
  ns.proc.stdin!.end();
  await new Promise((resolve) => ns.proc.once('exit', resolve));
  // The process is gone: its namespaces cannot be opened, and the error says which.
  await assert.rejects(netprobe(ns.pid, [{ kind: 'tcp', addr: '127.0.0.1', port }]), (e: Error & { errno: number }) => /\/proc\/\d+\/ns\/net/.test(e.message) && e.errno === 2);
  await assert.rejects(netprobe(ns.pid, [{ kind: 'tcp', addr: '127.0.0.1', port }], { joinUserns: true }), /\/proc\/\d+\/ns\/user/);
  await assert.rejects(netprobe(1, [{ kind: 'tcp', addr: 'not-an-ip', port: 1 }]), /not an IP address/);
});

test('more probes than one call takes are run in several, in order', async (t) => {
  if (!ready(t)) return;
  const ns = await namespace(['-n'], 'true', ['sh', '-c', 'echo READY; exec cat']);
  const probes: NetProbe[] = Array.from({ length: 100 }, (_, i) => (i % 2 ? { kind: 'tcp', addr: '127.0.0.1', port: 1 + i } : { kind: 'inet6-addrs' }));
  const rs = await netprobe(ns.pid, probes);
  assert.equal(rs.length, 100);
  rs.forEach((r, i) => assert.equal(r.outcome, i % 2 ? 'refused' : 'counted', `probe ${i}`));
  ns.proc.stdin!.end();
});

test('a rootless caller reaches its sandbox\'s network namespace through the user namespace it owns, and only so', async (t) => {
  if (!ready(t) || !needs(t, 'useradd', canMakeUsers)) return;
  const u = makeUser('nprobe');
  const holder = spawnAsUser(u, ['unshare', '-U', '-r', '-n', '--', 'sh', '-c', `ip link set lo up && exec ${PYTHON3} -u -c 'import socket,sys\ns=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(1)\nprint(s.getsockname()[1], flush=True)\nsys.stdin.read()'`]);
  started.push(holder);
  try {
    const port = await new Promise<number>((resolve, reject) => {
      createInterface({ input: holder.stdout! }).once('line', (l) => resolve(Number(l)));
      holder.once('exit', (code) => reject(new Error(`the user's namespace holder ended (status ${code})`)));
    });
    // The user's own node, with the tree's engine: as the CLI of a rootless sandbox runs it.
    const repo = repoForUsers();
    const script = `const { netprobe } = require(${JSON.stringify(join(repo, 'build/src/engine/netprobe.js'))});
      const [pid, port] = process.argv.slice(1).map(Number);
      const p = [{ kind: 'tcp', addr: '127.0.0.1', port }];
      (async () => {
        const joined = (await netprobe(pid, p, { joinUserns: true }))[0];
        const without = await netprobe(pid, p).then(() => null, (e) => ({ errno: e.errno, message: e.message }));
        console.log(JSON.stringify({ joined, without }));
      })();`;
    const r = asUser(u, [process.execPath, '-e', script, String(holder.pid), String(port)], { env: { SANDBOX_LIBSBX: join(repo, 'native/build/libsbx.so') } });
    assert.equal(r.code, 0, r.err);
    const out = JSON.parse(r.out) as { joined: NetProbeResult; without: { errno: number; message: string } | null };
    assert.equal(out.joined.outcome, 'connected', show(out.joined));
    assert.ok(out.without, 'without its user namespace, the user cannot join the network namespace');
    assert.equal(out.without.errno, 1, out.without.message);
    assert.match(out.without.message, /join the network namespace of process \d+/);
  } finally {
    holder.stdin!.end();
    removeUser(u);
  }
});
