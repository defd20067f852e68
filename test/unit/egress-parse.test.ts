// The relay's parsers (native/src/egress/parse.h): the server name of a TLS ClientHello and the
// host and framing of HTTP/1.x request heads, on bytes a sandboxed client chose. The harness
// native/test/egress-parse-test.c is built here with the address and undefined-behaviour
// sanitizers and given each input in an exactly-sized heap copy, so a read past the bytes, an
// overflow or a crash fails the test. Inputs: ClientHellos captured from curl, openssl, python3
// and node on this machine (fixtures/clienthello/capture.py), re-framed over several records and
// cut at every length; hand-made hellos and requests for each refusal; seeded random mutations.
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from '../helpers/sandbox';

const root = join(__dirname, '..', '..', '..');
const fixtures = join(root, 'test/unit/fixtures/clienthello');
const hasCc = spawnSync('sh', ['-c', 'command -v cc'], { stdio: 'ignore' }).status === 0;
let dir = '';
let harness = '';
let buildError = '';

before(() => {
  if (!hasCc) return;
  dir = mkdtempSync(join(tmpdir(), 'egress-parse-'));
  harness = join(dir, 'egress-parse-test');
  const src = ['native/test/egress-parse-test.c', 'native/src/egress/tls.c', 'native/src/egress/http.c', 'native/src/egress/name.c'].map((f) => join(root, f));
  const r = spawnSync('cc', ['-std=gnu11', '-g', '-O1', '-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-fno-omit-frame-pointer', '-Wall', '-Wextra', '-Werror', '-o', harness, ...src], { encoding: 'utf8' });
  if (r.status !== 0) buildError = `${r.stderr}${r.error ?? ''}`;
});
after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

type Input = [cmd: string, arg: number, bytes: Buffer];

/** One output line per input; a sanitizer report or a crash fails the test with its text. */
function run(inputs: Input[]): string[] {
  assert.equal(buildError, '', `the harness did not build:\n${buildError}`);
  const stdin = Buffer.concat(inputs.flatMap(([c, a, b]) => [Buffer.from(`${c} ${a} ${b.length}\n`), b]));
  const r = spawnSync(harness, [], { input: stdin, maxBuffer: 1 << 28, env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=0', UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1' } });
  assert.equal(r.status, 0, `the harness failed (status ${r.status}, signal ${r.signal}):\n${r.stderr?.toString().slice(0, 4000)}`);
  const lines = r.stdout.toString('latin1').split('\n');
  lines.pop();
  assert.equal(lines.length, inputs.length, 'one line per input');
  return lines;
}
const ready = (t: TestContext) => needs(t, 'a C compiler (cc) with the address sanitizer', hasCc);

// ---- TLS: building and re-framing hellos ----
const u16 = (n: number) => Buffer.from([(n >> 8) & 255, n & 255]);
const u24 = (n: number) => Buffer.from([(n >> 16) & 255, (n >> 8) & 255, n & 255]);
const ext = (type: number, body: Buffer) => Buffer.concat([u16(type), u16(body.length), body]);
const sniExt = (names: [number, string | Buffer][]) => {
  const list = Buffer.concat(names.map(([t, n]) => { const b = Buffer.from(n); return Buffer.concat([Buffer.from([t]), u16(b.length), b]); }));
  return ext(0, Buffer.concat([u16(list.length), list]));
};
/** A ClientHello handshake message (type, 24-bit length, body) with these extensions. */
function hello(exts: Buffer[] | null, o: { sid?: number; suites?: number; comp?: number } = {}): Buffer {
  const parts = [Buffer.from([3, 3]), Buffer.alloc(32, 7), Buffer.from([o.sid ?? 32]), Buffer.alloc(o.sid ?? 32, 1), u16(o.suites ?? 4), Buffer.alloc(o.suites ?? 4, 0x13), Buffer.from([o.comp ?? 1]), Buffer.alloc(o.comp ?? 1)];
  if (exts) { const e = Buffer.concat(exts); parts.push(u16(e.length), e); }
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([1]), u24(body.length), body]);
}
/** The handshake bytes framed as TLS records of these sizes (the last one takes the rest). */
function records(hs: Buffer, sizes: number[] = []): Buffer {
  const out: Buffer[] = [];
  let off = 0;
  for (const s of [...sizes, Infinity]) {
    if (off >= hs.length) break;
    const part = hs.subarray(off, Math.min(hs.length, off + s));
    out.push(Buffer.from([0x16, 3, 1]), u16(part.length), part);
    off += part.length;
  }
  return Buffer.concat(out);
}
/** The handshake bytes of a captured hello (its record headers taken out). */
function handshake(bin: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let off = 0; off + 5 <= bin.length; off += 5 + bin.readUInt16BE(off + 3)) parts.push(bin.subarray(off + 5, off + 5 + bin.readUInt16BE(off + 3)));
  return Buffer.concat(parts);
}
const captured = readdirSync(fixtures).filter((f) => f.endsWith('.bin')).sort().map((f) => ({ name: f, bin: readFileSync(join(fixtures, f)) }));
const expectOf = (file: string) => (file.includes('-nosni') ? /^NONAME TLS without a server name$/ : /^OK allowed\.test$/);

/** Seeded, so that a failure is reproduced by its seed (SBX_FUZZ_SEED overrides it). */
function prng(seed: number) {
  let s = seed >>> 0;
  return () => { s = (s + 0x6d2b79f5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}
const SEED = Number(process.env.SBX_FUZZ_SEED ?? 24024);
function mutate(b: Buffer, rnd: () => number): Buffer {
  let out = Buffer.from(b);
  const int = (n: number) => Math.floor(rnd() * n);
  for (let k = 1 + int(4); k > 0; k--) {
    const at = int(out.length + 1);
    switch (int(7)) {
      case 0: if (out.length) out[Math.min(at, out.length - 1)] = int(256); break;
      case 1: if (out.length) out[Math.min(at, out.length - 1)] = [0, 0xff, 0x7f, 0x80, 1][int(5)]!; break;
      case 2: out = Buffer.concat([out.subarray(0, at), out.subarray(at + 1 + int(8))]); break;
      case 3: out = Buffer.concat([out.subarray(0, at), Buffer.from(Array.from({ length: 1 + int(8) }, () => int(256))), out.subarray(at)]); break;
      case 4: out = out.subarray(0, at); break;
      case 5: { const from = int(out.length + 1); out = Buffer.concat([out.subarray(0, at), out.subarray(from, from + 1 + int(40)), out.subarray(at)]); break; }
      default: if (out.length > 1) { const i = Math.min(at, out.length - 2); out.writeUInt16BE(int(65536), i); } break;
    }
  }
  return out;
}

test('the ClientHellos of curl, openssl, python3 and node give their server name, or none', (t) => {
  if (!ready(t)) return;
  assert.ok(captured.length >= 6, 'the captured hellos are there');
  const out = run(captured.map(({ bin }) => ['tls', 0, bin] as Input));
  captured.forEach(({ name }, i) => assert.match(out[i]!, expectOf(name), name));
});

test('a hello over two records, over many small ones, and cut at every length: more until whole, then the same answer', (t) => {
  if (!ready(t)) return;
  const inputs: Input[] = [];
  const expect: [string, RegExp][] = [];
  for (const { name, bin } of captured) {
    const hs = handshake(bin);
    const framings: [string, Buffer][] = [
      ['as captured', bin],
      ['2 records', records(hs, [Math.floor(hs.length / 2)])],
      ['header split over records', records(hs, [2])],
      ['records of 1..7 bytes', records(hs, Array.from({ length: hs.length }, (_, i) => 1 + (i % 7)))],
    ];
    for (const [how, b] of framings) { inputs.push(['tlsprefix', 0, b]); expect.push([`${name}, ${how}`, expectOf(name)]); }
  }
  run(inputs).forEach((line, i) => {
    const [letters, ...rest] = line.split(' ');
    const [what, want] = expect[i]!;
    assert.match(letters!, /^M+[ON]$/, `${what}: every cut short of the whole hello is EG_MORE`);
    assert.match(rest.join(' '), want, what);
  });
});

test('hand-made hellos: each shape the relay refuses, and the names it accepts', (t) => {
  if (!ready(t)) return;
  const alpn = ext(16, Buffer.from('\x00\x03\x02h2', 'latin1'));
  const cases: [string, Buffer, RegExp][] = [
    ['one host_name', records(hello([alpn, sniExt([[0, 'Allowed.TEST']])])), /^OK allowed\.test$/],
    ['a trailing dot', records(hello([sniExt([[0, 'allowed.test.']])])), /^OK allowed\.test$/],
    ['underscore and hyphen', records(hello([sniExt([[0, '_a-b.test']])])), /^OK _a-b\.test$/],
    ['no extensions at all (TLS 1.0 style)', records(hello(null)), /^NONAME/],
    ['extensions without server_name', records(hello([alpn])), /^NONAME/],
    ['two names', records(hello([sniExt([[0, 'a.test'], [0, 'b.test']])])), /^BAD several server names$/],
    ['a type other than host_name', records(hello([sniExt([[1, 'a.test']])])), /^BAD a server name of a type other than host_name$/],
    ['two server_name extensions', records(hello([sniExt([[0, 'a.test']]), sniExt([[0, 'b.test']])])), /^BAD an extension twice$/],
    ['a slash in the name', records(hello([sniExt([[0, 'a.test/x']])])), /^BAD a server name that is not a host name$/],
    ['a NUL in the name', records(hello([sniExt([[0, Buffer.from('allowed.test\0.evil.test', 'latin1')]])])), /^BAD a server name that is not a host name$/],
    ['a byte over 0x7f in the name', records(hello([sniExt([[0, Buffer.from('a\xe9.test', 'latin1')]])])), /^BAD a server name that is not a host name$/],
    ['an empty label', records(hello([sniExt([[0, 'a..test']])])), /^BAD a server name that is not a host name$/],
    ['an empty name', records(hello([sniExt([[0, '']])])), /^BAD a server name that is not a host name$/],
    ['a 64-byte label', records(hello([sniExt([[0, `${'a'.repeat(64)}.test`]])])), /^BAD a server name that is not a host name$/],
    ['a 254-byte name', records(hello([sniExt([[0, `${'a.'.repeat(126)}ab`]])])), /^BAD a server name that is not a host name$/],
    ['a 253-byte name', records(hello([sniExt([[0, `${'a.'.repeat(126)}a`]])])), /^OK (a\.){126}a$/],
    ['an empty server_name extension', records(hello([ext(0, Buffer.alloc(0))])), /^BAD malformed server_name extension$/],
    ['a server_name list longer than its extension', records(hello([ext(0, Buffer.from([0, 9, 0, 0, 1, 0x61]))])), /^BAD malformed server_name extension$/],
    ['an extension longer than the extensions', records(hello([sniExt([[0, 'a.test']]), Buffer.concat([u16(16), u16(50), Buffer.from('abc')])])), /^BAD malformed extension$/],
    ['extensions longer than the hello', records((() => { const h = hello([sniExt([[0, 'a.test']])]); h.writeUInt16BE(h.readUInt16BE(4 + 2 + 32 + 33 + 6 + 2) + 1, 4 + 2 + 32 + 33 + 6 + 2); return h; })()), /^BAD malformed extensions$/],
    ['a session id over 32 bytes', records(hello([sniExt([[0, 'a.test']])], { sid: 33 })), /^BAD malformed session id$/],
    ['an odd cipher suites length', records(hello([sniExt([[0, 'a.test']])], { suites: 3 })), /^BAD malformed cipher suites$/],
    ['no compression method', records(hello([sniExt([[0, 'a.test']])], { comp: 0 })), /^BAD malformed compression methods$/],
    ['a hello shorter than its random', records(Buffer.from([1, 0, 0, 10, 3, 3, 1, 2, 3, 4, 5, 6, 7, 8])), /^BAD truncated ClientHello$/],
    ['an SSLv2 CLIENT-HELLO', Buffer.from('802e0103010015000000100000030000060000040000ff01020304050607080910111213141516', 'hex'), /^BAD an SSLv2 hello$/],
    ['an application-data record first', Buffer.concat([Buffer.from([0x17, 3, 3]), u16(5), Buffer.alloc(5)]), /^BAD/],
    ['a change-cipher-spec record between the hello\'s records', (() => { const hs = hello([sniExt([[0, 'a.test']])]); return Buffer.concat([records(hs.subarray(0, 10)), Buffer.from([0x14, 3, 3, 0, 1, 1]), records(hs.subarray(10))]); })(), /^BAD a record other than handshake/],
    ['an empty handshake record', Buffer.concat([Buffer.from([0x16, 3, 1, 0, 0]), records(hello([sniExt([[0, 'a.test']])]))]), /^BAD an empty handshake record$/],
    ['a record over 16 KiB', Buffer.from([0x16, 3, 1, 0x40, 0x01, 1]), /^BAD a record over 16 KiB$/],
    ['a hello announced over 16 KiB', Buffer.from([0x16, 3, 1, 0, 4, 1, 0, 0x40, 0]), /^BAD a ClientHello over 16 KiB$/],
    ['a ServerHello', Buffer.from([0x16, 3, 3, 0, 4, 2, 0, 0, 0]), /^BAD a first handshake message other than ClientHello$/],
    ['record version 2.0', Buffer.from([0x16, 2, 0, 0, 4]), /^BAD a record of an unknown version$/],
    ['plain text', Buffer.from('GET / HTTP/1.1\r\n'), /^BAD not a TLS handshake record$/],
    ['nothing yet', Buffer.alloc(0), /^MORE$/],
    ['a record header only', Buffer.from([0x16, 3, 1, 0, 200]), /^MORE$/],
  ];
  const out = run(cases.map(([, b]) => ['tls', 0, b] as Input));
  cases.forEach(([what, , want], i) => assert.match(out[i]!, want, what));
  // Bytes after a whole hello (a 0-RTT record, the next flight) do not change the answer.
  const after = run(cases.filter(([, , w]) => !/MORE/.test(String(w))).map(([, b]) => ['tls', 0, Buffer.concat([b, Buffer.from([0x17, 3, 3, 0, 2, 9, 9])])] as Input));
  cases.filter(([, , w]) => !/MORE/.test(String(w))).forEach(([what, , want], i) => assert.match(after[i]!, want, `${what}, more bytes after it`));
});

test('eg_looks_tls and eg_looks_http tell the first bytes apart', (t) => {
  if (!ready(t)) return;
  const cases: [string, string][] = [
    ['', '-1 -1'], ['16', '-1 0'], ['1603', '1 0'], ['1602', '0 0'], ['802e01', '1 0'], ['802e', '-1 0'],
    [Buffer.from('GET ').toString('hex'), '0 1'], [Buffer.from('GET').toString('hex'), '0 -1'], [Buffer.from('M-SEARCH ').toString('hex'), '0 1'],
    [Buffer.from(' GET').toString('hex'), '0 0'], [Buffer.from('GE(T ').toString('hex'), '0 0'], [Buffer.from('SSH-2.0-OpenSSH\r\n').toString('hex'), '0 0'],
    [Buffer.from('A'.repeat(33)).toString('hex'), '0 0'], [Buffer.from(`${'A'.repeat(32)} `).toString('hex'), '0 1'],
  ];
  const out = run(cases.map(([h]) => ['looks', 0, Buffer.from(h, 'hex')] as Input));
  cases.forEach(([h, want], i) => assert.equal(out[i], want, h));
});

test(`10000 random mutations of the captured hellos: never a crash, only the four answers, and stable once decided (seed ${SEED})`, (t) => {
  if (!ready(t)) return;
  const rnd = prng(SEED);
  const bases = captured.flatMap(({ bin }) => [bin, records(handshake(bin), [40, 100])]);
  const inputs: Input[] = [];
  for (let i = 0; i < 10000; i++) {
    const m = mutate(bases[i % bases.length]!, rnd);
    inputs.push(['tls', 0, m], ['tls', 0, Buffer.concat([m, Buffer.from([0x16, 3, 3, 0, 1, 2])])]);
  }
  const out = run(inputs);
  const counts: Record<string, number> = {};
  for (let i = 0; i < out.length; i += 2) {
    const a = out[i]!;
    assert.match(a, /^(MORE|OK [a-z0-9._-]{1,253}|NONAME .+|BAD .+)$/, `mutation ${i / 2}: ${inputs[i]![2].toString('hex')}`);
    if (a !== 'MORE') assert.equal(out[i + 1], a, `mutation ${i / 2}: bytes after a decided hello changed the answer: ${inputs[i]![2].toString('hex')}`);
    const k = a.split(' ')[0]!;
    counts[k] = (counts[k] ?? 0) + 1;
  }
  t.diagnostic(`answers: ${JSON.stringify(counts)}`);
  assert.ok((counts.OK ?? 0) > 100 && (counts.BAD ?? 0) > 1000 && (counts.MORE ?? 0) > 100, 'the mutations reach every answer');
});

// ---- HTTP ----
const crlf = (s: string) => Buffer.from(s.replace(/\n/g, '\r\n'), 'latin1');

test('HTTP request heads: the name, its port and the framing; each smuggling shape refused with its reason', (t) => {
  if (!ready(t)) return;
  const cases: [string, Buffer, RegExp][] = [
    ['origin-form', crlf('GET /x HTTP/1.1\nHost: Allowed.Test\nAccept: */*\n\n'), /^OK allowed\.test 0 \d+ 0 0 0$/],
    ['Host with a port', crlf('GET / HTTP/1.1\nHost: allowed.test:8080\n\n'), /^OK allowed\.test 8080 /],
    ['HTTP/1.0 with a Host', crlf('GET / HTTP/1.0\nHost: a.test\n\n'), /^OK a\.test 0 /],
    ['Content-Length', crlf('POST / HTTP/1.1\nHost: a.test\nContent-Length: 12\n\n'), /^OK a\.test 0 \d+ 0 0 12$/],
    ['chunked', crlf('POST / HTTP/1.1\nHost: a.test\nTransfer-Encoding: Chunked\n\n'), /^OK a\.test 0 \d+ 0 1 0$/],
    ['absolute-form agreeing with Host', crlf('GET http://A.test/p?q HTTP/1.1\nHost: a.test\n\n'), /^OK a\.test 0 /],
    ['absolute-form with the default port spelled in Host', crlf('GET http://a.test/ HTTP/1.1\nHost: a.test:80\n\n'), /^OK a\.test 80 /],
    ['CONNECT agreeing with Host', crlf('CONNECT a.test:443 HTTP/1.1\nHost: a.test:443\n\n'), /^OK a\.test 443 \d+ 1 0 0$/],
    ['absolute-form https with its default port in Host', crlf('GET https://a.test/ HTTP/1.1\nHost: a.test:443\n\n'), /^OK a\.test 443 /],
    ['absolute-form https against Host port 80', crlf('GET https://a.test/ HTTP/1.1\nHost: a.test:80\n\n'), /^BAD a request target whose port differs/],
    ['spaces and tabs around a value', crlf('GET / HTTP/1.1\nHost: \t a.test \t\n\n'), /^OK a\.test 0 /],
    ['OPTIONS *', crlf('OPTIONS * HTTP/1.1\nHost: a.test\n\n'), /^OK a\.test /],
    ['the head length', crlf('GET / HTTP/1.1\nHost: a\n\nBODY'), /^OK a 0 27 /],
    ['no Host', crlf('GET / HTTP/1.1\nAccept: */*\n\n'), /^BAD no Host header$/],
    ['two Hosts', crlf('GET / HTTP/1.1\nHost: a.test\nHost: evil.test\n\n'), /^BAD several Host headers$/],
    ['an empty Host', crlf('GET / HTTP/1.1\nHost: \n\n'), /^BAD an empty host$/],
    ['an IPv6 literal Host', crlf('GET / HTTP/1.1\nHost: [::1]:80\n\n'), /^BAD an IPv6 literal host$/],
    ['a Host with user information', crlf('GET / HTTP/1.1\nHost: a.test@evil.test\n\n'), /^BAD a host that is not a host name$/],
    ['a Host with a bad port', crlf('GET / HTTP/1.1\nHost: a.test:99999\n\n'), /^BAD a malformed port$/],
    ['absolute-form naming another host', crlf('GET http://evil.test/ HTTP/1.1\nHost: allowed.test\n\n'), /^BAD a request target whose host differs from the Host$/],
    ['absolute-form on another port', crlf('GET http://a.test:8080/ HTTP/1.1\nHost: a.test\n\n'), /^BAD a request target whose port differs/],
    ['absolute-form with user information', crlf('GET http://a.test@evil.test/ HTTP/1.1\nHost: evil.test\n\n'), /^BAD user information in the request target$/],
    ['absolute-form of another scheme', crlf('GET ftp://a.test/ HTTP/1.1\nHost: a.test\n\n'), /^BAD a request target of an unknown form$/],
    ['CONNECT to another host', crlf('CONNECT evil.test:443 HTTP/1.1\nHost: allowed.test:443\n\n'), /^BAD a request target whose host differs from the Host$/],
    ['CONNECT to another port', crlf('CONNECT a.test:22 HTTP/1.1\nHost: a.test:443\n\n'), /^BAD a request target whose port differs/],
    ['CONNECT without a port', crlf('CONNECT a.test HTTP/1.1\nHost: a.test\n\n'), /^BAD CONNECT without a port$/],
    ['CONNECT with a body', crlf('CONNECT a.test:443 HTTP/1.1\nHost: a.test:443\nContent-Length: 5\n\n'), /^BAD CONNECT with a body$/],
    ['Content-Length and Transfer-Encoding', crlf('POST / HTTP/1.1\nHost: a\nContent-Length: 4\nTransfer-Encoding: chunked\n\n'), /^BAD both Content-Length and Transfer-Encoding$/],
    ['two Content-Length, equal', crlf('POST / HTTP/1.1\nHost: a\nContent-Length: 4\nContent-Length: 4\n\n'), /^BAD several Content-Length headers$/],
    ['a Content-Length list', crlf('POST / HTTP/1.1\nHost: a\nContent-Length: 4, 4\n\n'), /^BAD a malformed Content-Length$/],
    ['a signed Content-Length', crlf('POST / HTTP/1.1\nHost: a\nContent-Length: +4\n\n'), /^BAD a malformed Content-Length$/],
    ['a Content-Length over 19 digits', crlf(`POST / HTTP/1.1\nHost: a\nContent-Length: ${'9'.repeat(20)}\n\n`), /^BAD a malformed Content-Length$/],
    ['Transfer-Encoding: gzip, chunked', crlf('POST / HTTP/1.1\nHost: a\nTransfer-Encoding: gzip, chunked\n\n'), /^BAD a Transfer-Encoding other than chunked alone$/],
    ['Transfer-Encoding: xchunked', crlf('POST / HTTP/1.1\nHost: a\nTransfer-Encoding: xchunked\n\n'), /^BAD a Transfer-Encoding other than chunked alone$/],
    ['two Transfer-Encoding', crlf('POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\nTransfer-Encoding: chunked\n\n'), /^BAD several Transfer-Encoding headers$/],
    ['Transfer-Encoding in HTTP/1.0', crlf('POST / HTTP/1.0\nHost: a\nTransfer-Encoding: chunked\n\n'), /^BAD Transfer-Encoding in an HTTP\/1\.0 request$/],
    ['a space before the colon', crlf('POST / HTTP/1.1\nHost: a\nContent-Length : 4\n\n'), /^BAD a malformed header line$/],
    ['a tab before the colon', crlf('POST / HTTP/1.1\nHost: a\nTransfer-Encoding\t: chunked\n\n'), /^BAD a malformed header line$/],
    ['obs-fold', crlf('GET / HTTP/1.1\nHost: a\nX-A: 1\n Transfer-Encoding: chunked\n\n'), /^BAD a folded header line \(obs-fold\)$/],
    ['a bare LF between headers', Buffer.from('GET / HTTP/1.1\r\nHost: a\nHost: b\r\n\r\n'), /^BAD a bare LF in the request head$/],
    ['a bare LF ending the head', Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\n'), /^BAD a bare LF in the request head$/],
    ['a bare CR', Buffer.from('GET / HTTP/1.1\r\nHost: a\rX: 1\r\n\r\n'), /^BAD a bare CR in the request head$/],
    ['a NUL in a header value', crlf('GET / HTTP/1.1\nHost: a\nX: a\0b\n\n'), /^BAD a control byte in a header value$/],
    ['Upgrade: websocket', crlf('GET / HTTP/1.1\nHost: a\nConnection: Upgrade\nUpgrade: websocket\n\n'), /^BAD a protocol upgrade \(websocket, h2c\): use TLS \(wss:\/\/, https:\/\/\)$/],
    ['Upgrade: h2c', crlf('GET / HTTP/1.1\nHost: a\nUpgrade: h2c\nHTTP2-Settings: AAA\n\n'), /^BAD a protocol upgrade/],
    ['the HTTP/2 preface', Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), /^BAD the HTTP\/2 preface \(h2c\): use TLS \(https:\/\/\)$/],
    ['HTTP/2.0 otherwise', crlf('GET / HTTP/2.0\nHost: a\n\n'), /^BAD not an HTTP\/1\.x request line$/],
    ['HTTP/0.9', Buffer.from('GET /\r\n\r\n'), /^BAD a malformed request line$/],
    ['two spaces in the request line', crlf('GET  / HTTP/1.1\nHost: a\n\n'), /^BAD a malformed request line$/],
    ['a space in the target', crlf('GET /a b HTTP/1.1\nHost: a\n\n'), /^BAD (a malformed request line|not an HTTP\/1\.x request line)$/],
    ['lowercase version', crlf('GET / http/1.1\nHost: a\n\n'), /^BAD not an HTTP\/1\.x request line$/],
    ['`*` for GET', crlf('GET * HTTP/1.1\nHost: a\n\n'), /^BAD `\*` as the target/],
    ['an empty line first', crlf('\nGET / HTTP/1.1\nHost: a\n\n'), /^BAD an empty line before the request line$/],
    ['a head over 16 KiB', crlf(`GET / HTTP/1.1\nHost: a\nX: ${'a'.repeat(16400)}\n\n`), /^BAD a request head over 16 KiB$/],
    ['16 KiB without a blank line', crlf(`GET / HTTP/1.1\nHost: a\nX: ${'a'.repeat(16400)}`), /^BAD a request head over 16 KiB$/],
    ['not whole yet', crlf('GET / HTTP/1.1\nHost: a\n'), /^MORE$/],
  ];
  const out = run(cases.map(([, b]) => ['http', 0, b] as Input));
  cases.forEach(([what, , want], i) => assert.match(out[i]!, want, what));
});

test('a request head cut at every length is EG_MORE (or refused early), never a crash', (t) => {
  if (!ready(t)) return;
  const heads = [
    crlf('GET http://allowed.test:8080/path?q=1 HTTP/1.1\nHost: allowed.test:8080\nUser-Agent: curl/7.88.1\nAccept: */*\n\n'),
    crlf('POST /upload HTTP/1.1\nHost: a.test\nTransfer-Encoding: chunked\nContent-Type: text/plain\n\n'),
    crlf('CONNECT a.test:443 HTTP/1.1\nHost: a.test:443\nProxy-Connection: Keep-Alive\n\n'),
  ];
  const out = run(heads.map((h) => ['httpprefix', 0, h] as Input));
  out.forEach((line, i) => {
    const [letters, ...rest] = line.split(' ');
    assert.match(letters!, /^M+O$/, `head ${i}: EG_MORE until its blank line`);
    assert.match(rest.join(' '), /^OK /);
  });
  // A bare LF is refused as soon as it arrives, before the head is whole.
  const [early] = run([['httpprefix', 0, Buffer.from('GET / HTTP/1.1\nHost: a\r\n\r\n')]]);
  assert.match(early!, /^M{15}B+ BAD a bare LF/);
});

test('pipelined requests and chunked bodies: each head is read where the last body ended, in any segmentation', (t) => {
  if (!ready(t)) return;
  const conn = (s: string) => crlf(s);
  const cases: [string, Buffer, string][] = [
    ['keep-alive with bodies of both framings',
      conn('POST /a HTTP/1.1\nHost: a.test\nTransfer-Encoding: chunked\n\n5;name=v\nhello\n1A\nabcdefghijklmnopqrstuvwxyz\n0\nX-Trailer: 1\n\nPOST /b HTTP/1.1\nHost: b.test:81\nContent-Length: 5\n\nGET /GET / HTTP/1.1\nHost: c.test\n\n'),
      'REQ a.test 0 | REQ b.test 81 | REQ c.test 0 | END idle'],
    ['a second request with another Host is read and named', conn('GET / HTTP/1.1\nHost: allowed.test\n\nGET / HTTP/1.1\nHost: evil.test\n\n'), 'REQ allowed.test 0 | REQ evil.test 0 | END idle'],
    ['a request hidden in a body by a Content-Length the relay honours', conn('POST / HTTP/1.1\nHost: a.test\nContent-Length: 35\n\nGET / HTTP/1.1\nHost: evil.test\n\n'), 'REQ a.test 0 | END idle'],
    ['a CONNECT turns the rest into a tunnel', conn('CONNECT a.test:443 HTTP/1.1\nHost: a.test:443\n\n\x16\x03\x01garbage'), 'REQ a.test 443 | TUNNEL'],
    ['a smuggled second head is refused', conn('GET / HTTP/1.1\nHost: a.test\n\nPOST / HTTP/1.1\nHost: a.test\nContent-Length: 3\nTransfer-Encoding: chunked\n\n'), 'REQ a.test 0 | BAD both Content-Length and Transfer-Encoding'],
    ['a chunk size with a sign', conn('POST / HTTP/1.1\nHost: a.test\nTransfer-Encoding: chunked\n\n+5\nhello\n0\n\n'), 'REQ a.test 0 | BAD chunked body'],
    ['a chunk size with a space before the extension', conn('POST / HTTP/1.1\nHost: a.test\nTransfer-Encoding: chunked\n\n5 ;x\nhello\n0\n\n'), 'REQ a.test 0 | BAD chunked body'],
    ['a chunk size over 64 bits', conn(`POST / HTTP/1.1\nHost: a.test\nTransfer-Encoding: chunked\n\n1${'0'.repeat(16)}\nx`), 'REQ a.test 0 | BAD chunked body'],
    ['chunk data longer than its size', conn('POST / HTTP/1.1\nHost: a.test\nTransfer-Encoding: chunked\n\n2\nhello\n0\n\n'), 'REQ a.test 0 | BAD chunked body'],
    ['a bare LF after a chunk size', Buffer.from('POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n'), 'REQ a.test 0 | BAD chunked body'],
    ['a control byte in a chunk extension', conn('POST / HTTP/1.1\nHost: a.test\nTransfer-Encoding: chunked\n\n5;a=\x01\nhello\n0\n\n'), 'REQ a.test 0 | BAD chunked body'],
    ['a folded trailer', conn('POST / HTTP/1.1\nHost: a.test\nTransfer-Encoding: chunked\n\n0\nA: 1\n B\n\n'), 'REQ a.test 0 | BAD chunked body'],
    ['a chunk-size line over 4 KiB', conn(`POST / HTTP/1.1\nHost: a.test\nTransfer-Encoding: chunked\n\n1;${'x'.repeat(5000)}\nx\n0\n\n`), 'REQ a.test 0 | BAD chunked body'],
    ['a body not finished', conn('POST / HTTP/1.1\nHost: a.test\nTransfer-Encoding: chunked\n\n5\nhel'), 'REQ a.test 0 | END partial'],
  ];
  const segs = [0, 1, 2, 3, 7, 64];
  const out = run(cases.flatMap(([, b]) => segs.map((s) => ['stream', s, b] as Input)));
  cases.forEach(([what, , want], i) => segs.forEach((s, j) => assert.equal(out[i * segs.length + j], want, `${what}, segments of ${s || 'all'} bytes`)));
});

test(`5000 random mutations of request streams: never a crash, names well-formed, answers stable once decided (seed ${SEED})`, (t) => {
  if (!ready(t)) return;
  const rnd = prng(SEED + 1);
  const bases = [
    crlf('GET http://allowed.test/x HTTP/1.1\nHost: allowed.test\nAccept: */*\n\n'),
    crlf('POST / HTTP/1.1\nHost: a.test:8080\nTransfer-Encoding: chunked\n\n5\nhello\n0\n\nGET / HTTP/1.1\nHost: b.test\nContent-Length: 2\n\nhi'),
    crlf('CONNECT a.test:443 HTTP/1.1\nHost: a.test:443\n\n'),
  ];
  const inputs: Input[] = [];
  for (let i = 0; i < 5000; i++) {
    const m = mutate(bases[i % bases.length]!, rnd);
    inputs.push(['http', 0, m], ['http', 0, Buffer.concat([m, crlf('GET / HTTP/1.1\n\n')])], ['stream', 1 + (i % 5), m]);
  }
  const out = run(inputs);
  for (let i = 0; i < out.length; i += 3) {
    const [a, b, s] = [out[i]!, out[i + 1]!, out[i + 2]!];
    const what = `mutation ${i / 3}: ${JSON.stringify(inputs[i]![2].toString('latin1'))}`;
    assert.match(a, /^(MORE|OK [a-z0-9._-]{1,253} \d+ \d+ [01] [01] \d+|BAD .+)$/, what);
    if (a.startsWith('OK')) assert.ok(Number(a.split(' ')[3]) <= inputs[i]![2].length, `${what}: head length within the bytes`);
    if (a !== 'MORE') assert.equal(b, a, `${what}: bytes after a decided head changed the answer`);
    assert.match(s, /(END (idle|partial)|BAD .+|TUNNEL)$/, what);
  }
});

/** The requests Node's own HTTP parser (llhttp, strict) reads from these bytes on one connection:
 * each one's Host as the relay spells names, or null when it refused the bytes. */
async function nodeReads(servers: { port: number; seen: Map<string, string[]> }, bytes: Buffer): Promise<string[] | null> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port: servers.port, allowHalfOpen: true });
    let got = '', key = '';
    s.on('connect', () => { key = `${s.localPort}`; servers.seen.set(key, []); s.end(bytes); });
    s.on('data', (d) => { got += d.toString('latin1'); });
    s.on('error', () => {});
    // Node waiting for more bytes than the relay counted would be a disagreement: it shows as
    // fewer requests once the wait is cut short here.
    s.setTimeout(2000, () => s.destroy());
    s.on('close', () => {
      const hosts = servers.seen.get(key) ?? [];
      servers.seen.delete(key);
      resolve(/HTTP\/1\.1 400/.test(got) ? null : hosts);
    });
  });
}

test('differential: whenever the relay reads a stream of requests whole, Node\'s HTTP parser reads the same requests with the same hosts, or refuses the bytes', async (t) => {
  if (!ready(t)) return;
  const { createServer } = await import('node:http');
  const seen = new Map<string, string[]>();
  const server = createServer((req, res) => {
    const host = String(req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
    seen.get(`${req.socket.remotePort}`)?.push(host);
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  server.keepAliveTimeout = 200;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  try {
    const rnd = prng(SEED + 2);
    const bases = [
      crlf('POST /a HTTP/1.1\nHost: a.test\nTransfer-Encoding: chunked\n\n5\nhello\n0\n\nGET /b HTTP/1.1\nHost: b.test\n\n'),
      crlf('POST /a HTTP/1.1\nHost: a.test\nContent-Length: 5\n\nhelloGET /b HTTP/1.1\nHost: b.test\n\n'),
      crlf('GET /a HTTP/1.1\nHost: a.test\nX-A: 1\n\nGET /b HTTP/1.1\nHost: b.test\n\n'),
    ];
    // One small edit each, with the bytes parsers disagree on: most streams stay whole.
    const tricky = [' ', '\t', '\r', '\n', ':', ';', ',', '0', '9', 'f', 'A', 'a', '.', '-', '_', '@', '/', '\0', '\x7f', '\x80', '\xff'];
    const edit = (b: Buffer) => {
      const at = Math.floor(rnd() * b.length), c = Buffer.from(tricky[Math.floor(rnd() * tricky.length)]!, 'latin1');
      const k = Math.floor(rnd() * 3);
      return Buffer.concat([b.subarray(0, at), k === 2 ? Buffer.alloc(0) : c, b.subarray(k === 1 ? at : at + 1)]);
    };
    const streams = Array.from({ length: 3000 }, (_, i) => edit(bases[i % bases.length]!));
    const ours = run(streams.map((b) => ['stream', 0, b] as Input));
    let compared = 0, nodeRefused = 0;
    for (let i = 0; i < streams.length; i++) {
      if (!ours[i]!.endsWith('END idle')) continue;     // the relay refused it, or it is not whole
      const hosts = ours[i]!.split(' | ').filter((x) => x.startsWith('REQ ')).map((x) => x.split(' ')[1]!);
      const theirs = await nodeReads({ port, seen }, streams[i]!);
      if (theirs === null) { nodeRefused++; if (process.env.SBX_SHOW_REFUSED) t.diagnostic(`Node refused: ${JSON.stringify(streams[i]!.toString('latin1'))}`); continue; }
      compared++;
      assert.deepEqual(theirs, hosts, `the relay and Node read ${JSON.stringify(streams[i]!.toString('latin1'))} differently`);
    }
    t.diagnostic(`${compared} streams read alike by both, ${nodeRefused} accepted by the relay and refused by Node`);
    assert.ok(compared > 100, 'enough streams reach the comparison');
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

// A TLS server's own reading of a ClientHello: Python's ssl (OpenSSL) as a server over memory
// BIOs, which reports the server name its SNI callback gets. Frames on stdin: a 4-byte length,
// then the bytes; per frame one line: "CB name", "CB -" (a hello without a name) or "NOCB"
// (OpenSSL refused the hello before naming it).
const OPENSSL_SNI = String.raw`
import ssl, sys, struct
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
seen = []
ctx.sni_callback = lambda obj, name, c: seen.append(name)
data = sys.stdin.buffer.read()
o = 0
while o < len(data):
    n = struct.unpack('>I', data[o:o + 4])[0]; b = data[o + 4:o + 4 + n]; o += 4 + n
    seen.clear()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    try:
        s = ctx.wrap_bio(inc, out, server_side=True); inc.write(b); s.do_handshake()
    except Exception:
        pass
    print('NOCB' if not seen else 'CB ' + (seen[0] if seen[0] is not None else '-'))
`;
const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const hasPython = spawnSync(python, ['-c', 'import ssl'], { stdio: 'ignore' }).status === 0;

test(`differential: whenever the relay reads a server name, OpenSSL as a server reads the same one or refuses the hello (seed ${SEED})`, (t) => {
  if (!ready(t) || !needs(t, 'python3 with ssl', hasPython)) return;
  const rnd = prng(SEED + 3);
  const bases = captured.map(({ bin }) => bin);
  // Heavy mutations, and one-byte edits inside the name (case, dots, bytes OpenSSL might take).
  const inputs = Array.from({ length: 4000 }, (_, i) => {
    const b = bases[i % bases.length]!;
    if (i % 2) return mutate(b, rnd);
    const at = b.indexOf('allowed.test');
    if (at < 0) return mutate(b, rnd);
    const c = Buffer.from(b);
    c[at + Math.floor(rnd() * 12)] = [0x41, 0x2e, 0x00, 0x5f, 0x2d, 0x2f, 0x80, 0x20, 0x5a][Math.floor(rnd() * 9)]!;
    return c;
  });
  const ours = run(inputs.map((b) => ['tls', 0, b] as Input));
  const r = spawnSync(python, ['-c', OPENSSL_SNI], { input: Buffer.concat(inputs.flatMap((b) => [Buffer.from([b.length >>> 24, (b.length >>> 16) & 255, (b.length >>> 8) & 255, b.length & 255]), b])), maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, r.stderr?.toString());
  const theirs = r.stdout.toString().trimEnd().split('\n');
  assert.equal(theirs.length, inputs.length);
  const tally: Record<string, number> = {};
  inputs.forEach((b, i) => {
    const [mine, openssl] = [ours[i]!, theirs[i]!];
    const k = `${mine.split(' ')[0]}/${openssl.split(' ')[0]}${openssl === 'CB -' ? '-' : ''}`;
    tally[k] = (tally[k] ?? 0) + 1;
    // A name OpenSSL reads where the relay sees none would be a name the relay misses.
    if (mine.startsWith('NONAME')) assert.ok(openssl === 'NOCB' || openssl === 'CB -', `the relay saw no name, OpenSSL ${openssl}: ${b.toString('hex')}`);
    if (!mine.startsWith('OK ')) return;                 // the relay refuses it: nothing to agree on
    if (openssl === 'NOCB') return;                      // OpenSSL refuses it too
    const name = openssl.slice(3).toLowerCase().replace(/\.$/, '');
    assert.equal(name, mine.slice(3), `the relay read ${mine}, OpenSSL ${openssl}: ${b.toString('hex')}`);
  });
  t.diagnostic(`relay/OpenSSL: ${JSON.stringify(tally)}`);
  assert.ok((tally['OK/CB'] ?? 0) > 500, 'enough hellos are named by both');
});
