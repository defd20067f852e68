// What `up`, `up --dry-run` and `doctor FILE` check before changing anything: a host program that
// is missing (compile, from the probe's list), and the pre-flight checks (engine/preflight.ts),
// which report every problem at once, each at its line. Real folders and loopback sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as httpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compile } from '../../src/plan/compile';
import { checkJoined, checkWritable, mayWrite, preflight, type PreflightProblem } from '../../src/engine/preflight';
import { probeRegistry, unreachable } from '../../src/image/pull';
import { HYBRID_HOST, ROOTLESS_HOST, loadText } from '../helpers/load';
import type { HostFeatures } from '../../src/plan/types';

const listen = (s: Server | ReturnType<typeof httpServer>) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)));
const close = (s: Server | ReturnType<typeof httpServer>) => new Promise<void>((r) => s.close(() => r()));
const at = (p: PreflightProblem) => (typeof p.src === 'object' ? `${p.src.line}:${p.src.col} ${p.code}` : `${p.src} ${p.code}`);

test('a private network on a host without nft or ip: an error at the network line naming each Debian package', () => {
  const host: HostFeatures = { ...HYBRID_HOST, programs: { ...HYBRID_HOST.programs, nft: undefined, ip: undefined } };
  const r = loadText('version: 1\ncommand: [x]\nnetwork: private\n');
  const problems = compile(r.spec!, host).problems.filter((p) => p.code === 'missing-program');
  assert.deepEqual(problems.map((p) => (typeof p.src === 'object' ? p.src.line : p.src)), [3, 3]);
  assert.match(problems[0]!.message, /^`ip` is not on PATH, and `network: private` as root \(the veth pair to the host\) needs it; install Debian's iproute2 package \(apt-get install iproute2\); or set `network: none`/);
  assert.match(problems[1]!.message, /^`nft` is not on PATH.*install Debian's nftables package/);
  // The default network says it is the default; no network needs neither.
  const dflt = compile(loadText('version: 1\ncommand: [x]\n').spec!, host).problems.filter((p) => p.code === 'missing-program');
  assert.equal(dflt.length, 2);
  assert.match(dflt[1]!.message, /the file has no `network`, and private is the default/);
  assert.deepEqual(compile(loadText('version: 1\ncommand: [x]\nnetwork: none\n').spec!, host).problems, []);
  // Rootless, pasta's package from the same table.
  const rl: HostFeatures = { ...ROOTLESS_HOST, rootless: { ...ROOTLESS_HOST.rootless!, pasta: undefined, slirp4netns: undefined } };
  const u = compile(loadText('version: 1\ncommand: [x]\nnetwork: private\n', { rootless: rl.rootless }).spec!, rl).problems;
  assert.ok(u.some((p) => p.code === 'no-usernet' && /Debian's passt package/.test(p.message)), JSON.stringify(u));
});

test('pre-flight says every problem at once, each at its line: bind sources, a device, a port in use, an unreachable registry', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-preflight-'));
  const taken = createServer();
  const port = await listen(taken);
  // A registry port that nothing listens on: taken and let go.
  const gone = createServer();
  const regPort = await listen(gone);
  await close(gone);
  try {
    mkdirSync(join(dir, 'there'));
    const yaml = `version: 1\nname: pf\nimage: 127.0.0.1:${regPort}/team/app:1\nvolumes:\n  - ${dir}/missing-a:/a\n  - ${dir}/there:/ok:ro\n  - ${dir}/missing-b:/b:ro\n  - {type: tmpfs, target: /t}\ndevices: [/dev/no-such-device]\nports: ["127.0.0.1:${port}:80"]\n`;
    const r = loadText(yaml);
    assert.ok(r.spec, JSON.stringify(r.diagnostics));
    const plan = compile(r.spec, HYBRID_HOST).plan;
    const found = await preflight({ spec: r.spec, plan, host: HYBRID_HOST, haveImage: false });
    assert.deepEqual(found.map(at), ['5:5 missing-source', '7:5 missing-source', '9:11 missing-source', '10:9 port-in-use', '3:8 registry-unreachable']);
    assert.ok(found.every((p) => p.severity === 'error'));
    assert.match(found[0]!.message, new RegExp(`^the bind source ${dir}/missing-a does not exist on the host; create it first \\(mkdir -p ${dir}/missing-a\\)`));
    assert.match(found[3]!.message, new RegExp(`host port ${port}/tcp on 127\\.0\\.0\\.1 is already in use`));
    assert.match(found[4]!.message, new RegExp(`^the image 127\\.0\\.0\\.1:${regPort}/team/app:1 cannot be pulled: cannot reach http://127\\.0\\.0\\.1:${regPort}: nothing listens there \\(connection refused\\)`));
    // The image in the store: its registry is not asked.
    assert.deepEqual((await preflight({ spec: r.spec, plan, host: HYBRID_HOST, haveImage: true })).map((p) => p.code).filter((c) => c === 'registry-unreachable'), []);
  } finally {
    await close(taken);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a writable bind its user cannot write is a warning with the chown that fixes it; read-only, or a user who may, is not', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-preflight-'));
  try {
    mkdirSync(join(dir, 'home'));
    chmodSync(join(dir, 'home'), 0o755);
    const run = (yaml: string) => {
      const r = loadText(`version: 1\ncommand: [x]\nnetwork: none\n${yaml}`);
      assert.ok(r.spec, JSON.stringify(r.diagnostics));
      return checkWritable({ spec: r.spec, plan: compile(r.spec, HYBRID_HOST).plan, host: HYBRID_HOST }) as PreflightProblem[];
    };
    const w = run(`user: "12345:12345"\nvolumes: ["${dir}/home:/home"]\n`);
    assert.deepEqual(w.map(at), ['5:11 bind-not-writable']);
    assert.equal(w[0]!.severity, 'warning');
    assert.match(w[0]!.message, new RegExp(`^the sandbox's user \\(uid 12345\\) cannot write ${dir}/home \\(owner \\d+:\\d+, mode 0755\\), which is mounted writable; let it \\(chown 12345:12345 ${dir}/home\\), or mount it read-only \\(:ro\\)$`));
    assert.deepEqual(run(`user: "12345:12345"\nvolumes: ["${dir}/home:/home:ro"]\n`), []);
    // root inside, with CAP_DAC_OVERRIDE of the default set, writes anywhere.
    assert.deepEqual(run(`user: "0:0"\nvolumes: ["${dir}/home:/home"]\n`), []);
    assert.equal(run(`user: "0:0"\ncap_drop: [DAC_OVERRIDE]\nvolumes: ["${dir}/home:/home"]\n`).length, process.getuid?.() === 0 ? 0 : 1);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('mayWrite reads owner, group and other bits as the kernel does, and CAP_DAC_OVERRIDE only over mapped owners', () => {
  const folder = { uid: 1000, gid: 1000, mode: 0o40755 };
  assert.equal(mayWrite(folder, { uid: 1000, gid: 5, groups: [], dacOverride: false }), true);
  assert.equal(mayWrite(folder, { uid: 1001, gid: 1000, groups: [], dacOverride: false }), false);
  assert.equal(mayWrite({ ...folder, mode: 0o40775 }, { uid: 1001, gid: 5, groups: [1000], dacOverride: false }), true);
  assert.equal(mayWrite({ ...folder, mode: 0o40757 }, { uid: 1000, gid: 1000, groups: [], dacOverride: false }), true);
  assert.equal(mayWrite({ ...folder, mode: 0o40555 }, { uid: 1000, gid: 1000, groups: [], dacOverride: false }), false);
  assert.equal(mayWrite(folder, { uid: 0, gid: 0, groups: [], dacOverride: true }), true);
  // In a user namespace mapping 0 → 100000: its root's ids are 100000 on the host, and its
  // CAP_DAC_OVERRIDE does not reach a folder whose owner is not mapped there.
  const map = [{ container: 0, host: 100000, size: 65536 }];
  assert.equal(mayWrite(folder, { uid: 0, gid: 0, groups: [], dacOverride: true, uidMap: map, gidMap: map }), false);
  assert.equal(mayWrite({ uid: 100000, gid: 100000, mode: 0o40755 }, { uid: 0, gid: 0, groups: [], dacOverride: false, uidMap: map, gidMap: map }), true);
  assert.equal(mayWrite({ uid: 101000, gid: 101000, mode: 0o40700 }, { uid: 5, gid: 5, groups: [], dacOverride: true, uidMap: map, gidMap: map }), true);
});

test('a registry error is said once, in words: plain HTTP asked in HTTPS, HTTPS asked in plain HTTP, nothing listening', async () => {
  // A plain HTTP server asked in HTTPS (a registry not on loopback and not named insecure).
  const plain = httpServer((_q, s) => { s.end('{}'); });
  const p1 = await listen(plain);
  // What Go's net/http (the Distribution registry) answers a plain request on a TLS port.
  const tlsOnly = httpServer((_q, s) => { s.writeHead(400); s.end('Client sent an HTTP request to an HTTPS server.\n'); });
  const p2 = await listen(tlsOnly);
  try {
    const e = await fetch(`https://127.0.0.1:${p1}/v2/`).then(() => undefined, (x: unknown) => x);
    const said = unreachable(e, { base: `https://127.0.0.1:${p1}`, registry: `10.0.0.9:${p1}`, plain: false, timeoutMs: 5000 });
    assert.equal(said, `cannot reach https://127.0.0.1:${p1}: it answers in plain HTTP, not HTTPS: name it with --insecure-registry 10.0.0.9:${p1} or in insecure_registries`);
    assert.equal(await probeRegistry(`127.0.0.1:${p1}`, []), undefined, 'a loopback registry is plain HTTP');
    assert.equal(await probeRegistry(`localhost:${p2}`, []), `cannot reach http://localhost:${p2}: it answers only in HTTPS, and a registry on loopback is reached over plain HTTP; serve it over plain HTTP on loopback`);
    // A port nothing listens on (taken and let go, with no connection ever made to it).
    const gone = createServer();
    const p3 = await listen(gone);
    await close(gone);
    const refused = await probeRegistry(`127.0.0.1:${p3}`, []);
    assert.equal(refused, `cannot reach http://127.0.0.1:${p3}: nothing listens there (connection refused); start the registry, or check the host and port in the image's name`);
    for (const s of [said, refused]) assert.doesNotMatch(s!, /ERR_|cannot be fetched.*cannot be fetched/);
  } finally {
    plain.closeAllConnections();
    tlsOnly.closeAllConnections();
    await close(plain);
    await close(tlsOnly);
  }
});

test('each way a registry cannot be reached has its words and its way out', () => {
  const o = { base: 'https://reg.test:5000', registry: 'reg.test:5000', plain: false, timeoutMs: 5000 };
  const fail = (code: string, message = code) => Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error(message), { code }) });
  assert.equal(unreachable(fail('ENOTFOUND', 'getaddrinfo ENOTFOUND reg.test'), o), "cannot reach https://reg.test:5000: the name reg.test does not resolve (no such host, or no DNS here); check the image's name, or pull it where the registry is reachable and bring it with `sandbox pull oci:PATH`");
  assert.equal(unreachable(Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' }), o), 'cannot reach https://reg.test:5000: it did not answer within 5 s');
  assert.match(unreachable(fail('DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate'), o), /: its TLS certificate is not trusted \(self-signed certificate\); give sandbox its CA: NODE_EXTRA_CA_CERTS=/);
  assert.equal(unreachable(fail('ECONNRESET'), o), 'cannot reach https://reg.test:5000: it closed the connection; if it serves plain HTTP, name it with --insecure-registry reg.test:5000 or in insecure_registries');
  assert.equal(unreachable(fail('ECONNRESET'), { ...o, plain: true, base: 'http://reg.test:5000' }), 'cannot reach http://reg.test:5000: it closed the connection');
});

test('a namespace joined by path must be there, and the host\'s own mount namespace cannot be joined', () => {
  const r = loadText(`version: 1\ncommand: [x]\nnetwork: none\nnamespaces:\n  mount: /proc/${process.pid}/ns/mnt\n  ipc: /proc/self/ns/nothing\n  uts: /proc/self/ns/uts\n`);
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), []);
  const found = checkJoined({ spec: r.spec!, plan: compile(r.spec!, HYBRID_HOST).plan, host: HYBRID_HOST }) as PreflightProblem[];
  assert.deepEqual(found.map(at), ['5:10 join-host-mount-namespace', '6:8 missing-source']);
  assert.match(found[0]!.message, /is the host's own mount namespace: the sandbox's root would be pivoted for the whole host/);
  assert.match(found[1]!.message, /^the ipc namespace \/proc\/self\/ns\/nothing does not exist; name a live process's \/proc\/PID\/ns\/ipc/);
});
