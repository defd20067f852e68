// sbx-egress on its own, without the CLI or the plan: the test makes three network namespaces,
// H (plays the host: sbx-egress runs there, with a wall on its forward hook that logs to NFLOG and
// rejects, as egress-engine's host wall does), S (the sandbox: real clients run there) and F (the
// outside: a DNS server and HTTP/HTTPS servers on 198.18.77.0/24, names only it knows). H-S and
// H-F are veth pairs made inside H, so nothing is added to the machine's own namespace. The policy
// is hand-written in the contract's shape, with an in-S table that redirects answered addresses
// to @RELAY@. Refusals are checked from inside S with curl and python3 sockets, each with a
// control (the same client reaching the same server from H, with no policy in the way).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { hasNft, hostSnapshot, isRoot, needs } from '../helpers/sandbox';
import { ROOT } from '../helpers/load';

const EGRESS = join(ROOT, 'native/build/sbx-egress');
const NET = '198.18.77';              // F's subnet: .10 web, .11 nobody answers it, .53 DNS
const SNET = '198.18.78';             // S's subnet (a refused class, as the CLI writes it)
const NONCE = '0123456789abcdef0123456789abcdef';
const GROUP = 23297;
const tag = `egc${process.pid % 100000}`;
const H = `${tag}h`, S = `${tag}s`, F = `${tag}f`;
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

const DNS_SERVER = String.raw`
import socket, struct, sys, threading
addr, logf = sys.argv[1], sys.argv[2]
base = addr.rsplit('.', 1)[0]
A = {'allowed.test': [base + '.10'], 'evil.test': [base + '.10'], 'jira.corp.test': [base + '.10'],
     'wiki.corp.test': [base + '.10'], 'rebind.test': ['127.0.0.1', base + '.10'], 'meta.test': ['169.254.169.254'],
     'bulk.test': [base + '.10'], 'short.test': [base + '.13'], 'big.test': [base + '.%d' % i for i in range(20, 60)]}
CNAME = {'alias.test': 'allowed.test'}
lock = threading.Lock()
def name_at(m, o):
    labels = []
    while m[o]:
        l = m[o]; labels.append(m[o+1:o+1+l].decode('latin1')); o += 1 + l
    return '.'.join(labels), o + 1
def answer(m, tcp):
    qid, flags = struct.unpack('>HH', m[:4])
    name, o = name_at(m, 12)
    qt, qc = struct.unpack('>HH', m[o:o+4])
    with lock:
        with open(logf, 'a') as f: f.write('%s %d\n' % (name.lower(), qt))
    q = m[12:o+4]; n = name.lower(); ans = b''; cnt = 0; rcode = 0
    def rr(ptr, t, data, ttl=60): return struct.pack('>HHHIH', ptr, t, 1, ttl, len(data)) + data
    if n in CNAME and qt == 1:
        target = CNAME[n]
        ans += rr(0xc00c, 5, b''.join(bytes([len(x)]) + x.encode() for x in target.split('.')) + b'\0'); cnt += 1
        for a in A[target]: ans += rr(0xc000 | (12 + len(q) + 12), 1, socket.inet_aton(a), 30); cnt += 1
    elif n in A and qt == 1:
        for a in A[n]: ans += rr(0xc00c, 1, socket.inet_aton(a), 5 if n == 'short.test' else 60); cnt += 1
    elif n in A and qt == 16:
        ans += rr(0xc00c, 16, b'\x05hello'); cnt += 1
    elif n not in A and n not in CNAME:
        rcode = 3
    tc = 0
    if not tcp and n == 'big.test': tc = 0x200; ans = b''; cnt = 0
    return struct.pack('>HHHHHH', qid, 0x8400 | tc | (flags & 0x100) | rcode, 1, cnt, 0, 0) + q + ans
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((addr, 53))
    while True:
        m, peer = s.recvfrom(4096); s.sendto(answer(m, False), peer)
def tcp_conn(c):
    try:
        while True:
            h = c.recv(2)
            if len(h) < 2: return
            l = struct.unpack('>H', h)[0]; m = b''
            while len(m) < l: m += c.recv(l - len(m))
            r = answer(m, True); c.sendall(struct.pack('>H', len(r)) + r)
    finally: c.close()
def tcp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((addr, 53)); s.listen(16)
    print('ready', flush=True)
    while True:
        c, _ = s.accept(); threading.Thread(target=tcp_conn, args=(c,), daemon=True).start()
threading.Thread(target=udp, daemon=True).start()
tcp()
`;

const WEB_SERVER = String.raw`
import http.server, ssl, sys, threading, socketserver
addr, cert, key, logf = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        with lock:
            with open(logf, 'a') as f: f.write('%s %s\n' % (self.headers.get('Host'), self.headers.get('User-Agent')))
        body = ('hello %s\n' % self.headers.get('Host')).encode()
        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True; allow_reuse_address = True; request_queue_size = 512
plain = S((addr, 80), H); tls = S((addr, 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)
tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
threading.Thread(target=plain.serve_forever, daemon=True).start()
print('ready', flush=True)
tls.serve_forever()
`;

// One DNS query: prints "rcode=N", "tc" when truncated, then each answer ("A addr ttl", "TXT text").
const DNSQ = String.raw`
import socket, struct, sys, random
name, qt, qc, tcp, server = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == 'tcp', sys.argv[5]
qid = random.randrange(65536)
q = struct.pack('>HHHHHH', qid, 0x100, 1, 0, 0, 0) + b''.join(bytes([len(l)]) + l.encode() for l in name.split('.') if l) + b'\0' + struct.pack('>HH', qt, qc)
if tcp:
    s = socket.create_connection((server, 53), timeout=5); s.sendall(struct.pack('>H', len(q)) + q)
    l = struct.unpack('>H', s.recv(2))[0]; m = b''
    while len(m) < l: m += s.recv(l - len(m))
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5); s.sendto(q, (server, 53)); m = s.recv(4096)
rid, flags, qd, an = struct.unpack('>HHHH', m[:8])
assert rid == qid
out = ['rcode=%d' % (flags & 15)] + (['tc'] if flags & 0x200 else [])
def skip(o):
    while True:
        l = m[o]
        if l >= 0xc0: return o + 2
        if l == 0: return o + 1
        o += 1 + l
o = 12
for _ in range(qd): o = skip(o) + 4
for _ in range(an):
    o = skip(o); t, c, ttl, rl = struct.unpack('>HHIH', m[o:o+10]); d = m[o+10:o+10+rl]; o += 10 + rl
    if t == 1: out.append('A %s %d' % (socket.inet_ntoa(d), ttl))
    elif t == 16: out.append('TXT %s' % d[1:1+d[0]].decode())
print(' '.join(out))
`;

// Two requests on one kept-alive connection: the second names another host. Prints what came back.
const KEEPALIVE = String.raw`
import socket, sys
def response(s):
    m = b''
    while True:
        d = s.recv(4096)
        if not d: return m.decode(errors='replace') or 'EOF'
        m += d
        if b'\r\n\r\n' in m:
            head, body = m.split(b'\r\n\r\n', 1)
            n = [int(l.split(b':')[1]) for l in head.split(b'\r\n') if l.lower().startswith(b'content-length:')]
            if n and len(body) >= n[0]: return m.decode(errors='replace')
s = socket.create_connection((sys.argv[1], 80), timeout=5)
s.sendall(b'GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n')
first = response(s)
try:
    s.sendall(b'GET / HTTP/1.1\r\nHost: ' + sys.argv[2].encode() + b'\r\n\r\n')
    second = response(s)
except ConnectionResetError:
    second = 'RESET'
print(repr(first.split('\r\n')[0]), repr(first.split('\r\n\r\n')[-1]), second if second in ('RESET', 'EOF') else repr(second.split('\r\n\r\n')[-1]))
`;

// A client that sends its first bytes one at a time (TCP_NODELAY): an HTTP request head, or a TLS
// ClientHello (made by python's ssl over memory BIOs, then the handshake finished over the socket).
const TRICKLE = String.raw`
import socket, ssl, sys, time
mode, host, cafile = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.create_connection((host, 443 if mode == 'tls' else 80), timeout=5)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def trickle(b):
    for i in range(len(b)): s.send(b[i:i+1]); time.sleep(0.0005)
if mode == 'http':
    trickle(b'GET / HTTP/1.1\r\nHost: ' + host.encode() + b'\r\nUser-Agent: trickle\r\n\r\n')
    print(s.recv(4096).decode().split('\r\n\r\n')[-1] or s.recv(4096).decode(), end='')
    sys.exit(0)
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ssl.create_default_context(cafile=cafile).wrap_bio(inc, out, server_hostname=host)
first = True
while True:
    try:
        obj.do_handshake(); break
    except ssl.SSLWantReadError:
        data = out.read()
        if first: trickle(data); first = False
        elif data: s.sendall(data)
        got = s.recv(65536)
        if not got: raise SystemExit('closed')
        inc.write(got)
s.sendall(out.read())
obj.write(b'GET / HTTP/1.1\r\nHost: ' + host.encode() + b'\r\nConnection: close\r\n\r\n'); s.sendall(out.read())
resp = b''
while True:
    got = s.recv(65536)
    if not got: break
    inc.write(got)
    try:
        while True: resp += obj.read(65536)
    except (ssl.SSLWantReadError, ssl.SSLZeroReturnError): pass
print(resp.decode().split('\r\n\r\n')[-1], end='')
`;

// Holds N connections to allowed.test open (TLS handshake done, or one HTTP request answered),
// prints "held N" and waits for stdin to close.
const HOLD = String.raw`
import socket, ssl, sys
n, mode, cafile = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
held = []
for i in range(n):
    if mode == 'tls':
        s = ctx.wrap_socket(socket.create_connection(('allowed.test', 443), timeout=10), server_hostname='allowed.test')
    else:
        s = socket.create_connection(('allowed.test', 80), timeout=10)
        s.sendall(b'GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n'); s.recv(4096)
    held.append(s)
print('held', len(held), flush=True)
sys.stdin.read()
`;

function policy(grace = 300, upstreams = [`${NET}.53`]): string {
  return [
    `v1 nonce=${NONCE} grace=${grace} mark=0x5b7e0001 group=${GROUP}`,
    ...upstreams.map((u) => `upstream ${u}`),
    ...['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '255.255.255.255/32', `${SNET}.0/24`].map((c) => `class ${c}`),
    `extra jira.corp.test ${NET}.10`,
    'rule 1 allow host exact jira.corp.test tcp 1-52,54-852,854-65535 sandbox.yml:9:7',
    'rule 2 deny host suffix corp.test tcp 1-52,54-852,854-65535 sandbox.yml:10:7',
    'rule 3 allow host exact allowed.test tcp 80,443 sandbox.yml:11:7',
    'rule 4 allow host exact rebind.test tcp 80,443 sandbox.yml:12:7',
    'rule 5 allow host exact alias.test tcp 443 sandbox.yml:13:7',
    'rule 6 allow host exact meta.test tcp 80,443 sandbox.yml:14:7',
    'rule 7 allow host exact big.test tcp 443 sandbox.yml:15:7',
    'rule 8 allow host exact bulk.test tcp 5201 sandbox.yml:16:7',
    'rule 10 allow host exact short.test tcp 443 sandbox.yml:18:7',
    'rule 11 allow cidr 169.254.169.254/32 tcp 8080 sandbox.yml:19:7',
    `rule 9 allow cidr ${NET}.12/32 udp 7 sandbox.yml:17:7`,
    'default sandbox.yml:8:3',
    'nft table inet sbx_egress {',
    'nft   set answered4 { type ipv4_addr; flags timeout; }',
    'nft   chain nat_out { type nat hook output priority -100; policy accept;',
    'nft     ip daddr 127.0.0.0/8 accept',
    'nft     ip daddr @answered4 tcp dport { 1-52, 54-852, 854-65535 } redirect to :@RELAY@',
    'nft   }',
    'nft }',
    'end',
    '',
  ].join('\n');
}

const sh = (cmd: string, args: string[], input?: string) => execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 60_000 });
const inNs = (ns: string, args: string[], timeout = 20_000) => {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8', timeout });
  return { code: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
};

interface World { dir: string; state: string; dnsLog: string; cert: string; servers: ChildProcess[]; etcNetns: boolean }

function makeWorld(): World {
  const dir = mkdtempSync(join(tmpdir(), 'egress-core-'));
  const w: World = { dir, state: join(dir, 'state'), dnsLog: join(dir, 'dns.log'), cert: join(dir, 'cert.pem'), servers: [], etcNetns: existsSync('/etc/netns') };
  mkdirSync(w.state);
  for (const [f, body] of Object.entries({ 'dns_server.py': DNS_SERVER, 'web_server.py': WEB_SERVER, 'dnsq.py': DNSQ, 'keepalive.py': KEEPALIVE, 'hold.py': HOLD, 'trickle.py': TRICKLE })) writeFileSync(join(dir, f), body);
  writeFileSync(w.dnsLog, '');
  for (const n of [H, S, F]) sh('ip', ['netns', 'add', n]);
  const batch = [
    `link set lo up`,
    `link add hs type veth peer name eth0 netns ${S}`,
    `link add hf type veth peer name eth0 netns ${F}`,
    `addr add ${SNET}.1/24 dev hs`, `link set hs up`,
    `addr add ${NET}.1/24 dev hf`, `link set hf up`,
  ].join('\n');
  sh('ip', ['-n', H, '-batch', '-'], batch + '\n');
  sh('ip', ['-n', S, '-batch', '-'], [`addr add ${SNET}.2/24 dev eth0`, 'link set eth0 up', `route add default via ${SNET}.1`].join('\n') + '\n');
  sh('ip', ['-n', F, '-batch', '-'], ['link set lo up', ...['10', '11', '12', '53'].map((a) => `addr add ${NET}.${a}/24 dev eth0`), 'link set eth0 up', `route add default via ${NET}.1`].join('\n') + '\n');
  sh('ip', ['netns', 'exec', H, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  // The host wall's stand-in: whatever S sends through H that the relay did not carry is refused and logged.
  sh('ip', ['netns', 'exec', H, 'nft', '-f', '-'], `table inet wall {\n chain forward {\n type filter hook forward priority filter - 5; policy accept;\n iifname "hs" log group ${GROUP} prefix "none" reject with icmpx admin-prohibited\n }\n`
    + ` chain marked {\n type filter hook output priority filter; policy accept;\n meta mark 0x5b7e0001 counter\n }\n}\n`);
  // ip netns exec binds /etc/netns/NAME/resolv.conf over /etc/resolv.conf: S's resolver is ours.
  mkdirSync(`/etc/netns/${S}`, { recursive: true });
  writeFileSync(`/etc/netns/${S}/resolv.conf`, 'nameserver 127.0.0.53\n');
  sh('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', w.cert, '-days', '2', '-subj', '/CN=allowed.test',
    '-addext', 'subjectAltName=DNS:allowed.test,DNS:evil.test,DNS:jira.corp.test,DNS:wiki.corp.test,DNS:alias.test,DNS:big.test,DNS:bulk.test']);
  return w;
}

async function startServer(w: World, args: string[]): Promise<void> {
  const p = spawn('ip', ['netns', 'exec', F, ...args], { cwd: w.dir, stdio: ['ignore', 'pipe', 'pipe'] });
  w.servers.push(p);
  let out = '', err = '';
  p.stdout!.on('data', (d) => { out += d; });
  p.stderr!.on('data', (d) => { err += d; });
  for (let i = 0; i < 200 && !out.includes('ready'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(out.includes('ready'), `${args.join(' ')} did not start: ${err}`);
}

function destroyWorld(w: World): void {
  for (const p of w.servers) p.kill('SIGKILL');
  for (const n of [H, S, F]) {
    // Processes the test left in a namespace (servers, iperf3) go first, then the namespace.
    try { for (const pid of sh('ip', ['netns', 'pids', n]).split('\n').filter(Boolean)) try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ } } catch { /* no namespace */ }
    spawnSync('ip', ['netns', 'del', n]);
  }
  rmSync(`/etc/netns/${S}`, { recursive: true, force: true });
  if (!w.etcNetns) spawnSync('rmdir', ['/etc/netns']);
  rmSync(w.dir, { recursive: true, force: true });
}

interface Egress { proc: ChildProcess; holder: ChildProcess; line: string; exited: Promise<number | null> }

/** Starts sbx-egress in H with a fresh `sleep` as its holder; resolves once it printed its line (or ended). */
async function startEgress(w: World, text: string, ns = S): Promise<Egress> {
  const holder = spawn('sleep', ['1000'], { stdio: 'ignore' });
  const proc = spawn('ip', ['netns', 'exec', H, EGRESS, '--state', w.state, '--holder', String(holder.pid), '--netns', `/run/netns/${ns}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  let line = '';
  proc.stdout!.on('data', (d) => { line += d; });
  proc.stdin!.end(text);
  for (let i = 0; i < 200 && !line.includes('\n'); i++) await Promise.race([new Promise((r) => setTimeout(r, 25)), exited]);
  return { proc, holder, line, exited };
}

const dnsq = (w: World, name: string, type = 1, cls = 1, tcp = false) =>
  inNs(S, ['python3', join(w.dir, 'dnsq.py'), name, String(type), String(cls), tcp ? 'tcp' : 'udp', '127.0.0.53']).out.trim();
const curlS = (args: string[]) => inNs(S, ['curl', '-sS', '-m', '5', ...args]);
const curlH = (args: string[]) => inNs(H, ['curl', '-sS', '-m', '5', '-A', 'control', ...args]);
const asked = (w: World) => readFileSync(w.dnsLog, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ')[0]);
const rss = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);

function denials(w: World): Record<string, unknown>[] {
  const f = join(w.state, 'denials.jsonl');
  return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
}

test('sbx-egress: resolver, relay, denials and status, from inside a namespace with real clients', { timeout: 300_000 }, async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'sbx-egress (make -C native)', existsSync(EGRESS)) || !needs(t, 'nftables', hasNft)
    || !needs(t, 'curl, python3 and openssl', has('curl') && has('python3') && has('openssl'))) return;
  const before = hostSnapshot();
  const w = makeWorld();
  let eg: Egress | undefined;
  try {
    await startServer(w, ['python3', join(w.dir, 'dns_server.py'), `${NET}.53`, w.dnsLog]);
    await startServer(w, ['python3', join(w.dir, 'web_server.py'), `${NET}.10`, w.cert, join(w.dir, 'key.pem'), join(w.dir, 'web.log')]);

    await t.test('a policy it cannot use: one ERROR line, exit 1, nothing loaded in the namespace', async () => {
      const bad = await startEgress(w, policy().replace('rule 3 allow host exact allowed.test', 'rule 3 allow host exact Allowed.test'));
      assert.equal(await bad.exited, 1);
      assert.equal(bad.line, 'ERROR policy line 12: a host rule\'s name is not a valid lowercase name\n');
      bad.holder.kill();
      const nft = await startEgress(w, policy().replace('redirect to', 'redirect too'));
      assert.equal(await nft.exited, 1);
      assert.match(nft.line, /^ERROR nft -f - in the sandbox's namespace failed: .*syntax error.*\n$/);
      nft.holder.kill();
      assert.equal(inNs(S, ['nft', 'list', 'tables']).out, '', 'no table is left in S');
      const noSet = await startEgress(w, policy().replace('nft   set answered4 { type ipv4_addr; flags timeout; }\n', '').replace('ip daddr @answered4 ', ''));
      assert.equal(await noSet.exited, 1);
      assert.equal(noSet.line, 'ERROR the policy\'s nft lines give no set answered4 in table inet sbx_egress: No such file or directory\n');
      noSet.holder.kill();
      inNs(S, ['nft', 'delete', 'table', 'inet', 'sbx_egress']);     // it was loaded; a real sandbox's goes with its namespace
    });

    eg = await startEgress(w, policy());
    const relayPort = Number(/^READY relay=(\d+)\n$/.exec(eg.line)?.[1]);
    assert.ok(relayPort > 0, `READY relay=<port> and nothing else on stdout: ${JSON.stringify(eg.line)}`);
    const pid = eg.proc.pid!;

    await t.test('the helper set S up: lo up, the table loaded with the relay port, the extra host answered', () => {
      assert.match(inNs(S, ['ip', '-br', 'link', 'show', 'lo']).out, /UNKNOWN|UP/);
      const table = inNs(S, ['nft', 'list', 'table', 'inet', 'sbx_egress']).out;
      assert.match(table, new RegExp(`redirect to :${relayPort}\\b`));
      assert.match(table, new RegExp(`elements = \\{ ${NET.replace(/\./g, '\\.')}\\.10 \\}`), 'extra jira.corp.test is in answered4 for good');
      // Nothing of sbx-egress listens in H (its sockets are S's), and the resolver is S's 127.0.0.53.
      assert.doesNotMatch(inNs(H, ['ss', '-Hlntu']).out, new RegExp(`:${relayPort}\\b|:53\\b`));
      assert.match(inNs(S, ['ss', '-Hlntu']).out, /127\.0\.0\.53:53/);
    });

    await t.test('DNS: allowed names answered, refused names NXDOMAIN and never forwarded', () => {
      assert.equal(dnsq(w, 'allowed.test'), `rcode=0 A ${NET}.10 60`);
      assert.match(dnsq(w, 'allowed.test', 1, 1, true), new RegExp(`^rcode=0 A ${NET.replace(/\./g, '\\.')}\\.10 \\d+$`), 'TCP, from the cache');
      assert.equal(dnsq(w, 'evil.test'), 'rcode=3');
      assert.equal(dnsq(w, 'wiki.corp.test'), 'rcode=3', 'deny *.corp.test');
      assert.equal(dnsq(w, 'jira.corp.test'), `rcode=0 A ${NET}.10 3600`, 'allow jira.corp.test before the deny (extra_hosts entry, answered here)');
      const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.exfil.corp.test`;
      assert.equal(dnsq(w, long), 'rcode=3');
      assert.equal(dnsq(w, `canary-${NONCE}.invalid`), 'rcode=3');
      assert.equal(dnsq(w, 'allowed.test', 28), 'rcode=0', 'AAAA: NODATA');
      assert.equal(dnsq(w, 'allowed.test', 65), 'rcode=0', 'HTTPS: NODATA');
      assert.equal(dnsq(w, 'allowed.test', 255), 'rcode=4', 'ANY: NOTIMP');
      assert.equal(dnsq(w, 'allowed.test', 12), 'rcode=3', 'PTR: NXDOMAIN');
      assert.equal(dnsq(w, 'allowed.test', 16), 'rcode=0 TXT hello', 'TXT of an allowed name is forwarded');
      assert.equal(dnsq(w, 'id.sandbox', 16, 3), `rcode=0 TXT ${NONCE}`, 'CH TXT id.sandbox. holds the nonce');
      assert.equal(dnsq(w, 'version.bind', 16, 3), 'rcode=5', 'any other CH query: REFUSED');
      assert.equal(dnsq(w, 'rebind.test'), `rcode=0 A ${NET}.10 60`, '127.0.0.1 withheld from the answer');
      assert.equal(dnsq(w, 'meta.test'), 'rcode=0 A 169.254.169.254 60', 'kept: an allow cidr inside its class names it (rule 11)');
      assert.equal(dnsq(w, 'alias.test'), `rcode=0 A ${NET}.10 30`, 'the CNAME chain followed inside the answer');
      const big = dnsq(w, 'big.test').split(' ');
      assert.equal(big[0], 'rcode=0');
      assert.equal(big.filter((x) => x === 'A').length, 16, 'truncated over UDP upstream: asked again over TCP, 16 addresses kept');
      const seen = asked(w);
      for (const n of ['evil.test', 'wiki.corp.test', long, `canary-${NONCE}.invalid`, 'jira.corp.test', 'id.sandbox']) assert.ok(!seen.includes(n), `${n} reached the upstream`);
      assert.ok(seen.includes('allowed.test') && seen.includes('big.test'));
      assert.equal(seen.filter((n) => n === 'allowed.test').length, 2, 'A once (then cached) and TXT once');
      // Control: the fixture server itself knows evil.test.
      assert.match(inNs(H, ['python3', join(w.dir, 'dnsq.py'), 'evil.test', '1', '1', 'udp', `${NET}.53`]).out, /rcode=0 A/);
    });

    await t.test('TCP: the allowed name over HTTP and HTTPS; SNI, Host, IP literals and other ports refused', () => {
      assert.equal(curlS([`http://allowed.test/`]).out, 'hello allowed.test\n');
      assert.equal(curlS(['--cacert', w.cert, 'https://allowed.test/']).out, 'hello allowed.test\n');
      assert.equal(curlS(['--cacert', w.cert, 'https://alias.test/']).out, 'hello alias.test\n');
      assert.equal(curlS(['--cacert', w.cert, 'https://jira.corp.test/']).out, 'hello jira.corp.test\n');
      // Refusals, each with its control from H (no policy in the way).
      const sni = curlS(['--cacert', w.cert, '--resolve', `evil.test:443:${NET}.10`, 'https://evil.test/']);
      assert.notEqual(sni.code, 0);
      assert.match(sni.err, /reset/i);
      assert.equal(curlH(['--cacert', w.cert, '--resolve', `evil.test:443:${NET}.10`, 'https://evil.test/']).out, 'hello evil.test\n');
      const host = curlS(['-H', 'Host: evil.test', 'http://allowed.test/']);
      assert.notEqual(host.code, 0);
      assert.equal(curlH(['-H', 'Host: evil.test', `http://${NET}.10/`]).out, 'hello evil.test\n');
      assert.notEqual(curlS([`http://${NET}.10/`]).code, 0, 'an IP literal of an answered address (relay: the Host is no answered name)');
      assert.notEqual(curlS(['-k', `https://${NET}.10/`]).code, 0, 'TLS to an IP literal: no SNI');
      const unanswered = curlS([`http://${NET}.11/`]);
      assert.notEqual(unanswered.code, 0, 'an address no one answered: not redirected, refused by the wall in H');
      assert.match(unanswered.err, /Couldn't connect|No route/);
      assert.notEqual(curlS(['http://allowed.test:8080/']).code, 0, 'allowed.test on a port its rule does not list');
      assert.equal(curlS(['http://rebind.test/']).out, 'hello rebind.test\n', 'the address left in a rebinding answer works');
      const ka = inNs(S, ['python3', join(w.dir, 'keepalive.py'), 'allowed.test', 'evil.test']).out.trim();
      assert.match(ka, /^'HTTP\/1.1 200 OK' 'hello allowed.test\\n' (RESET|EOF)$/, `the second request on a kept-alive connection names evil.test: ${ka}`);
      const ok = inNs(S, ['python3', join(w.dir, 'keepalive.py'), 'allowed.test', 'allowed.test']).out.trim();
      assert.equal(ok, `'HTTP/1.1 200 OK' 'hello allowed.test\\n' 'hello allowed.test\\n'`, 'control: two requests for the allowed name');
      // rule 11 opens port 8080 of the metadata address, nothing else: rule 6 (a host rule) matching
      // meta.test:80 first does not open its class.
      assert.notEqual(curlS(['http://meta.test/']).code, 0);
      curlS(['http://meta.test:8080/']);         // allowed by rule 11; nothing answers there (H has no route to it)
      // A CRLF before the request line (servers skip it) must not turn the Host check into an address check.
      const crlf = inNs(S, ['python3', '-c', "import socket\ns = socket.create_connection(('allowed.test', 80), timeout=5)\n"
        + "s.sendall(b'\\r\\nGET / HTTP/1.1\\r\\nHost: evil.test\\r\\n\\r\\n')\ntry:\n    print(s.recv(4096) or b'EOF')\nexcept ConnectionResetError:\n    print('RESET')\n"]);
      assert.equal(crlf.out, 'RESET\n', crlf.err);
      // Clients that send their first bytes one at a time are judged once the head or hello is whole.
      assert.equal(inNs(S, ['python3', join(w.dir, 'trickle.py'), 'http', 'allowed.test', w.cert]).out, 'hello allowed.test\n');
      assert.equal(inNs(S, ['python3', join(w.dir, 'trickle.py'), 'tls', 'allowed.test', w.cert]).out, 'hello allowed.test\n');
      // No byte of a refused connection reached the server: only the controls asked it for evil.test.
      const web = readFileSync(join(w.dir, 'web.log'), 'utf8').split('\n').filter(Boolean);
      assert.deepEqual(web.filter((l) => l.startsWith('evil.test ')).map((l) => l.split(' ')[1]), ['control', 'control']);
      assert.ok(web.filter((l) => l.startsWith('allowed.test curl/')).length >= 2);
      // The relay's upstream sockets carry the policy's mark (the host wall's relay_out keys on it).
      assert.match(inNs(H, ['nft', 'list', 'chain', 'inet', 'wall', 'marked']).out, /meta mark 0x5b7e0001 counter packets [1-9]/);
      // A direct connection to the relay's own port from inside S is refused.
      const direct = curlS([`http://127.0.0.1:${relayPort}/`]);
      assert.notEqual(direct.code, 0);
    });

    await t.test('denials.jsonl has the records with their rules and lines; the status counts', async () => {
      await new Promise((r) => setTimeout(r, 1500));       // coalescing holds a record for 1 s
      const d = denials(w);
      const find = (f: Record<string, unknown>) => d.find((x) => Object.entries(f).every(([k, v]) => x[k] === v));
      assert.ok(find({ kind: 'lookup', name: 'evil.test', seen: 'dns', rule: null, src: 'sandbox.yml:8:3' }), JSON.stringify(d));
      assert.ok(find({ kind: 'lookup', name: 'wiki.corp.test', rule: 2, src: 'sandbox.yml:10:7' }));
      assert.ok(find({ kind: 'answer-withheld', name: 'rebind.test', addr: '127.0.0.1', class: true }));
      assert.ok(find({ kind: 'connect', name: 'meta.test', addr: '169.254.169.254', port: 80, seen: 'host', rule: null, class: true }), JSON.stringify(d.filter((x) => String(x.addr).startsWith('169'))));
      assert.ok(!find({ addr: '169.254.169.254', port: 8080 }), 'port 8080 of it is rule 11\'s: no refusal');
      assert.ok(find({ kind: 'connect', name: 'evil.test', seen: 'sni', addr: `${NET}.10`, port: 443, rule: null }));
      assert.ok(find({ kind: 'connect', name: 'evil.test', seen: 'host', port: 80 }));
      assert.ok(find({ kind: 'connect', name: `${NET}.10`, seen: 'host' }));
      assert.ok(find({ kind: 'protocol', seen: 'sni', port: 443 }), 'TLS without SNI');
      assert.ok(find({ kind: 'connect', name: 'allowed.test', port: 8080 }));
      assert.ok(find({ kind: 'protocol', seen: 'address', port: 80, why: 'neither TLS nor HTTP/1.x on port 80 or 443' }));
      assert.ok(find({ kind: 'connect', addr: `${NET}.11`, port: 80, seen: 'kernel', rule: null }), `the wall's refusal, through NFLOG: ${JSON.stringify(d)}`);
      for (const x of d) assert.match(String(x.t), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const st = JSON.parse(readFileSync(join(w.state, 'egress.status'), 'utf8'));
      assert.equal(st.pid, pid);
      assert.equal(st.nonce, NONCE);
      assert.equal(st.digest, createHash('sha256').update(policy()).digest('hex'));
      assert.ok(st.lookups.refused >= 4 && st.lookups.withheld >= 1 && st.lookups.forwarded >= 5 && st.lookups.answered >= 10, JSON.stringify(st));
      assert.ok(st.connections.relayed >= 5 && st.connections.refused >= 6 && st.kernel.refused >= 1, JSON.stringify(st));
      assert.equal(st.connections.open, 0);
    });

    await t.test('cost: resident memory idle and with 100 open relayed connections; throughput relayed vs direct', async (tt) => {
      const idle = rss(pid);
      const held: Record<string, number> = {};
      for (const mode of ['tls', 'http']) {
        const h = spawn('ip', ['netns', 'exec', S, 'python3', join(w.dir, 'hold.py'), '100', mode, w.cert], { stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        h.stdout!.on('data', (d) => { out += d; });
        for (let i = 0; i < 600 && !out.includes('held'); i++) await new Promise((r) => setTimeout(r, 50));
        assert.match(out, /held 100/);
        held[mode] = rss(pid);
        h.stdin!.end();
        await new Promise((r) => h.on('exit', r));
      }
      let thr = 'iperf3 missing';
      if (has('iperf3')) {
        const srv = spawn('ip', ['netns', 'exec', F, 'iperf3', '-s', '-B', `${NET}.10`, '-p', '5201'], { stdio: 'ignore' });
        w.servers.push(srv);
        await new Promise((r) => setTimeout(r, 500));
        const gbps = (r: { out: string }) => { try { return JSON.parse(r.out).end.sum_received.bits_per_second / 1e9; } catch { return NaN; } };
        const parts = [];
        for (const [dir, flag] of [['download', ['-R']], ['upload', []]] as const) {
          const relayed = gbps(inNs(S, ['iperf3', '-J', '-c', 'bulk.test', '-p', '5201', '-t', '3', ...flag], 30_000));
          const direct = gbps(inNs(H, ['iperf3', '-J', '-c', `${NET}.10`, '-p', '5201', '-t', '3', ...flag], 30_000));
          parts.push(`${dir} relayed ${relayed.toFixed(2)} Gbit/s, direct ${direct.toFixed(2)} Gbit/s (${(relayed / direct).toFixed(2)}x)`);
          assert.ok(relayed > 0, `iperf3 ${dir} through the relay carried data`);
        }
        thr = parts.join('; ');
      }
      // Set-up: the time to the first response byte of one HTTP GET (curl -w), median of 21, with
      // the name pinned by --resolve on both sides so that only the relay's share differs.
      const median = (ns: string) => {
        const times = [];
        for (let i = 0; i < 21; i++) times.push(Number(inNs(ns, ['curl', '-s', '-o', '/dev/null', '-w', '%{time_starttransfer}', '--resolve', `allowed.test:80:${NET}.10`, 'http://allowed.test/']).out) * 1000);
        return times.sort((a, b) => a - b)[10]!;
      };
      const ttfbRelayed = median(S), ttfbDirect = median(H);
      const msg = `VmRSS idle ${idle} kB, 100 TLS connections ${held.tls} kB, 100 kept-alive HTTP connections ${held.http} kB; ${thr}; `
        + `HTTP GET first byte (median of 21) relayed ${ttfbRelayed.toFixed(2)} ms, direct ${ttfbDirect.toFixed(2)} ms`;
      tt.diagnostic(msg);
      console.log(`# egress-core cost: ${msg}`);
    });

    await t.test('denials.jsonl is capped at 1 MiB and rotated once to denials.1.jsonl', async () => {
      // 8000 distinct refused names (distinct records: nothing to coalesce), about 1.3 MiB of records.
      const flood = "import socket, struct\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)\n"
        + "for i in range(8000):\n    n = ('x%d.evil.test' % i).encode().split(b'.')\n"
        + "    s.sendto(struct.pack('>HHHHHH', i, 0x100, 1, 0, 0, 0) + b''.join(bytes([len(l)]) + l for l in n) + b'\\0\\0\\1\\0\\1', ('127.0.0.53', 53)); s.recv(512)\n"
        + "print('done')\n";
      assert.equal(inNs(S, ['python3', '-c', flood], 60_000).out, 'done\n');
      await new Promise((r) => setTimeout(r, 1500));
      const cur = readFileSync(join(w.state, 'denials.jsonl'), 'utf8'), old = readFileSync(join(w.state, 'denials.1.jsonl'), 'utf8');
      assert.ok(cur.length <= 1 << 20 && old.length <= 1 << 20 && old.length > (1 << 20) - 4096, `${cur.length} + ${old.length} bytes`);
      const names = [...old.split('\n'), ...cur.split('\n')].filter(Boolean).map((l) => JSON.parse(l).name);
      assert.ok(names.includes('x7999.evil.test') && names.length > 5000, `${names.length} records kept`);
    });

    await t.test('a second sbx-egress cannot take the same NFLOG group: ERROR, and it loaded nothing', async () => {
      const again = await startEgress(w, policy());
      assert.equal(await again.exited, 1);
      assert.match(again.line, /^ERROR NFLOG group 23297 on the host: .*another process holds that group/);
      again.holder.kill();
    });

    await t.test('SIGTERM: exits 0 and writes its status a last time; a holder that ends ends it too', async () => {
      rmSync(join(w.state, 'egress.status'));
      eg!.proc.kill('SIGTERM');
      assert.equal(await eg!.exited, 0);
      assert.ok(existsSync(join(w.state, 'egress.status')), 'status written at exit');
      eg!.holder.kill();
      assert.match(readFileSync(join(w.state, 'egress.log'), 'utf8'), /stopping \(Terminated\)/);
      // A fresh namespace for the second run (the first one's table stays with S).
      inNs(S, ['nft', 'delete', 'table', 'inet', 'sbx_egress']);
      // This run has grace=2: short.test (TTL 5) lives 7 s in answered4; asked again after its
      // cache ran out (5.5 s, 1.5 s left, less than half), the element is deleted and added anew.
      // Its first upstream answers nothing: the first lookup waits 2 s and is asked of the next
      // one, which is then asked first.
      const second = await startEgress(w, policy(2, [`${NET}.99`, `${NET}.53`]));
      assert.match(second.line, /^READY relay=\d+\n$/);
      let t0 = Date.now();
      assert.equal(dnsq(w, 'allowed.test'), `rcode=0 A ${NET}.10 60`);
      assert.ok(Date.now() - t0 >= 1900, 'answered after the first upstream timed out');
      t0 = Date.now();
      assert.equal(dnsq(w, 'allowed.test', 16), 'rcode=0 TXT hello');
      assert.ok(Date.now() - t0 < 1500, 'the upstream that answered is asked first');
      const expires = () => Number(/198\.18\.77\.13 timeout 7s expires (\d+)s/.exec(inNs(S, ['nft', 'list', 'set', 'inet', 'sbx_egress', 'answered4']).out)?.[1] ?? -1);
      assert.equal(dnsq(w, 'short.test'), `rcode=0 A ${NET}.13 5`);
      assert.ok(expires() >= 5, 'answered4 holds short.test\'s address for TTL + grace');
      await new Promise((r) => setTimeout(r, 5500));
      assert.equal(dnsq(w, 'short.test'), `rcode=0 A ${NET}.13 5`);
      assert.ok(expires() >= 5, `refreshed, not left to expire: ${inNs(S, ['nft', 'list', 'set', 'inet', 'sbx_egress', 'answered4']).out}`);
      second.holder.kill('SIGKILL');
      assert.equal(await Promise.race([second.exited, new Promise((r) => setTimeout(() => r('still running'), 3000))]), 0);
      assert.match(readFileSync(join(w.state, 'egress.log'), 'utf8'), /stopping \(its holder ended\)/);
      eg = undefined;
    });
  } finally {
    if (eg) { eg.proc.kill('SIGKILL'); eg.holder.kill('SIGKILL'); await eg.exited; }
    destroyWorld(w);
  }
  assert.equal(hostSnapshot(), before, 'the machine is as it was: no process, namespace, link, rule or listener left');
});
