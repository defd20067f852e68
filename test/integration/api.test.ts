// The library as a user loads it: `require('sandbox')`, resolved through package.json's `exports`
// (the package's own name, as a test runner or an agent would import it), against the real engine.
// What it starts is checked from inside (the command's own output through the pipes), and what it
// leaves from the host: this process's descriptors, the host's mounts, cgroups, listeners, state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { cgroupLayout, hasEngine, hasNft, isRoot, leftovers, needs } from '../helpers/sandbox';

// Through the package's exports, as a user: the types are the sources'.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const sbx = require('sandbox') as typeof import('../../src/api/index');

/** This process's descriptors, each as what it points at: a leak is named in the failure. */
const fdList = () => readdirSync('/proc/self/fd').map((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`).replace(/\[\d+\]$/, '[…]'); } catch { return 'gone'; } }).sort();
const mountPoints = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter(Boolean).sort();
const listeners = () => execFileSync('ss', ['-Hlntu'], { encoding: 'utf8' }).split('\n').map((l) => l.split(/\s+/).slice(0, 5).join(' ')).filter(Boolean).sort();
const rssMb = () => process.memoryUsage().rss / 1048576;
// A full collection before the heap is measured, so that what stays is what is still referenced.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapMb = () => { gc(); return process.memoryUsage().heapUsed / 1048576; };
const peakMb = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
const sandboxCgroups = (prefix: string) => {
  const roots = cgroupLayout() === 'v2' ? ['/sys/fs/cgroup'] : readdirSync('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c));
  return roots.flatMap((r) => { try { return readdirSync(join(r, 'sandbox')).filter((n) => n.startsWith(prefix)).map((n) => `${r}/sandbox/${n}`); } catch { return []; } });
};
const collect = (s: NodeJS.ReadableStream | undefined) => { let t = ''; s?.setEncoding('utf8'); s?.on('data', (d: string) => { t += d; }); return () => t; };
const freePort = () => new Promise<number>((resolve) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); }); });

function ready(t: import('node:test').TestContext): boolean {
  return needs(t, 'root', isRoot) && needs(t, 'the native engine', hasEngine);
}

test('load: an object and a file alike; every problem is data, located, in a ConfigError', async (t) => {
  if (!needs(t, 'the native engine', hasEngine)) return;
  const err = await sbx.load({ version: 1, command: ['/bin/true'], resources: { memroy: '1g' }, cap_add: ['NOT_A_CAP'] }).catch((e: unknown) => e);
  assert.ok(err instanceof sbx.ConfigError, String(err));
  assert.equal(err.exitCode, 2);
  // The object is written as YAML: `memroy` on its line 5, the capability on line 7; both at once.
  assert.deepEqual(err.diagnostics.map((d) => `${d.file}:${d.line}:${d.col} ${d.severity}`), ['config.yml:5:3 error', 'config.yml:7:5 error']);
  assert.match(err.message, /config\.yml:5:3: error: `memroy` is not a known key in `resources` \(did you mean `memory`\?\)/);
  // The same config from a file: the same codes, at the file's lines.
  const dir = mkdtempSync(join(tmpdir(), 'sbx-api-'));
  try {
    writeFileSync(join(dir, 'bad.yml'), 'version: 1\ncommand: [/bin/true]\nresources:\n  memroy: 1g\n');
    const e2 = await sbx.plan('bad.yml', { cwd: dir }).catch((e: unknown) => e);
    assert.ok(e2 instanceof sbx.ConfigError);
    assert.deepEqual(e2.diagnostics.map((d) => `${d.file}:${d.line}:${d.col} ${d.code}`), ['bad.yml:4:3 unknown-key']);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('plan, audit and diff through the API are what the CLI prints', async (t) => {
  if (!needs(t, 'the native engine', hasEngine)) return;
  const c = await sbx.load('samples/locked-down.yml');
  const p = await sbx.plan('samples/locked-down.yml');
  assert.equal(p.digest, c.plan.digest);
  assert.ok(p.steps.length > 50 && p.steps.every((s) => s.source !== undefined));
  const cli = JSON.parse(execFileSync(process.execPath, ['bin/sandbox.js', 'plan', '--json', 'samples/locked-down.yml'], { encoding: 'utf8' })) as { digest: string };
  assert.equal(cli.digest, p.digest);
  const a = await sbx.audit('samples/web.yml');
  const cliAudit = JSON.parse(execFileSync(process.execPath, ['bin/sandbox.js', 'audit', '--json', 'samples/web.yml'], { encoding: 'utf8' })) as { score: number; findings: unknown[] }[];
  assert.equal(a.score, cliAudit[0]!.score);
  assert.equal(a.findings.length, cliAudit[0]!.findings.length);
  const d = await sbx.diff('samples/locked-down.yml', 'samples/web.yml');
  assert.equal(d.loosened, true);
});

test('up: pipes, exec, the attestation, stop; a failed step is a SetupError at its line; nothing left', async (t) => {
  if (!ready(t)) return;
  const fds = fdList();
  const name = 'api-one';
  const h = await sbx.up({ version: 1, name, rootfs: 'host', network: 'none', resources: { memory: '64m', pids: 32 }, command: ['/bin/sh', '-c', 'read line; echo "got $$line as $(id -u) on $(hostname)"; echo oops >&2; exec sleep 600'] }, { stdio: 'pipe' });
  assert.equal(h.name, name);
  assert.ok(h.pid > 1);
  assert.ok(h.attestation.length > 20 && h.attestation.every((v) => v.verdict !== 'mismatch'), JSON.stringify(h.attestation.filter((v) => v.verdict === 'mismatch')));
  const out = collect(h.stdout), err = collect(h.stderr);
  h.stdin!.end('ping\n');
  for (const until = Date.now() + 10_000; !out().includes('\n') && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
  assert.equal(out(), `got ping as 0 on ${name}\n`);
  // Its cgroup, read from the host: the memory limit the file asked for.
  const listed = (await sbx.list()).find((s) => s.name === name);
  assert.equal(listed?.pid, h.pid);
  assert.deepEqual([listed?.status, listed?.restarts], ['running', 0]);
  // What only `sandbox ps` reads (internal) stays out of what a library user serialises.
  assert.ok(listed?.ps && !('ps' in JSON.parse(JSON.stringify(listed))), JSON.stringify(listed));
  assert.equal(await h.exec(['/bin/sh', '-c', 'test "$(cat /proc/1/cmdline | tr "\\0" " ")" = "sleep 600 "']), 0);
  // sleep as PID 1 does not get SIGTERM: killed after the timeout.
  assert.equal(await h.stop({ timeout: 300 }), 137);
  assert.equal(err(), 'oops\n');
  await h.down();
  assert.deepEqual(leftovers(name), []);

  // A command that is not there: the exec step, ENOENT, the line of `command`, 127.
  const e = await sbx.up({ version: 1, name, rootfs: 'host', network: 'none', command: ['/no/such/command'] }, { stdio: 'ignore' }).catch((x: unknown) => x);
  assert.ok(e instanceof sbx.SetupError, String(e));
  assert.equal(e.step, 'exec');
  assert.equal(e.errno, 2);
  assert.equal(e.exitCode, 127);
  // The object as YAML: `command:` on line 5, its first word on line 6.
  assert.deepEqual(typeof e.source === 'object' ? [e.source.file, e.source.line] : e.source, ['config.yml', 6]);
  assert.deepEqual(leftovers(name), []);

  // Detached: it runs on under sbx-supervise; wait() reads the status the supervisor wrote.
  const d = await sbx.up({ version: 1, name, rootfs: 'host', network: 'none', detach: true, command: ['/bin/sh', '-c', 'sleep 0.5; exit 3'] });
  assert.equal(d.detached, true);
  assert.equal((await sbx.list()).find((s) => s.name === name)?.detached, true);
  assert.equal(await d.wait(), 3);
  assert.deepEqual((await sbx.list()).filter((s) => s.name === name).map((s) => [s.status, s.exitCode, s.running]), [['exited', 3, false]]);
  assert.equal(await d.down(), 3);
  assert.deepEqual(leftovers(name), []);
  assert.deepEqual(fdList(), fds, 'descriptors of this process');
});

test('an AbortSignal stops a start at any point and leaves nothing', async (t) => {
  if (!ready(t)) return;
  const name = 'api-abort';
  const cfg = { version: 1, name, rootfs: 'host', network: 'none', resources: { memory: '64m', pids: 16 }, command: ['/bin/sleep', '600'] };
  const plan = await sbx.plan(cfg);
  // The baseline once this process has cloned a child (its first clone opens /dev/null once, for good).
  const warm = new AbortController();
  const firstNs = plan.steps.find((s) => s.stage === 'namespaces')!.id;
  await sbx.up(cfg, { stdio: 'ignore', signal: warm.signal, onProgress: (ev) => { if (ev.type === 'step' && ev.phase === 'start' && ev.id === firstNs) warm.abort(); } }).catch(() => undefined);
  const fds = fdList();
  // Aborted as each stage begins: up() rejects with AbortError, and the host is as it was.
  const stages = [...new Set(plan.steps.map((s) => s.stage))].filter((s) => s !== 'exec');
  for (const stage of stages) {
    const ac = new AbortController();
    const first = plan.steps.find((s) => s.stage === stage)!.id;
    const e = await sbx.up(cfg, { stdio: 'ignore', signal: ac.signal, onProgress: (ev) => { if (ev.type === 'step' && ev.phase === 'start' && ev.id === first) ac.abort(); } }).catch((x: unknown) => x);
    assert.ok(e instanceof sbx.AbortError, `aborted at ${stage} (${first}): ${String(e)}`);
    assert.deepEqual(leftovers(name), [], `aborted at ${stage}`);
  }
  // Aborted before it starts: nothing is done at all.
  const e = await sbx.up(cfg, { signal: AbortSignal.abort() }).catch((x: unknown) => x);
  assert.ok(e instanceof sbx.AbortError);
  // Aborted once it runs: it is stopped.
  const ac = new AbortController();
  const h = await sbx.up(cfg, { stdio: 'ignore', signal: ac.signal });
  const exited = new Promise<number>((r) => h.once('exit', r));
  ac.abort();
  assert.equal(await exited, 137);
  assert.deepEqual(leftovers(name), []);
  assert.deepEqual(fdList(), fds);
});

/** One round of `n` sandboxes started at once (the first `withPorts` with a private network and a
 * published port), each heard from through its pipe, then all taken down; what it left is checked
 * against the host as it was before. Returns its times and this process's memory. */
async function manyAtOnce(t: import('node:test').TestContext, n: number, withPorts: number, prefix: string) {
  const before = { fds: fdList(), mounts: mountPoints(), listeners: listeners(), rss: rssMb(), heap: heapMb() };
  const ports = await Promise.all(Array.from({ length: withPorts }, freePort));
  const t0 = Date.now();
  let peak = before.rss;
  const sampler = setInterval(() => { peak = Math.max(peak, rssMb()); }, 20);
  const handles = await Promise.allSettled(Array.from({ length: n }, (_, i) => sbx.up({
    version: 1, name: `${prefix}${i}`, rootfs: 'host', resources: { memory: '32m', pids: 16 },
    ...(i < withPorts ? { network: 'private', ports: [`127.0.0.1:${ports[i]}:8080`] } : { network: 'none' }),
    // A shell that handles SIGTERM as PID 1: `stop` ends it with its own exit status.
    command: ['/bin/sh', '-c', `trap 'exit 0' TERM; echo "up $(hostname)"; while :; do sleep 0.2; done`],
  }, { stdio: ['ignore', 'pipe', 'inherit'] })));
  const upMs = Date.now() - t0;
  const failed = handles.flatMap((r, i) => (r.status === 'rejected' ? [`${prefix}${i}: ${String((r.reason as Error)?.message ?? r.reason)}`] : []));
  const hs = handles.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  let downMs = 0;
  try {
    assert.deepEqual(failed, []);
    // Each says its own name from inside (its UTS namespace), through its own pipe.
    const outs = hs.map((h) => collect(h.stdout));
    for (const until = Date.now() + 20_000; outs.some((o) => !o().includes('\n')) && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(outs.map((o) => o()), hs.map((h) => `up ${h.name}\n`));
    assert.equal(new Set(hs.map((h) => h.pid)).size, n);
    const running = (await sbx.list()).filter((s) => s.name.startsWith(prefix) && s.running).length;
    assert.equal(running, n);
    t.diagnostic(`during: ${sandboxCgroups(prefix).length} cgroups, ${mountPoints().length - before.mounts.length} more host mounts`);
  } finally {
    const t1 = Date.now();
    const codes = await Promise.all(hs.map((h) => h.down({ timeout: 5000 })));
    downMs = Date.now() - t1;
    clearInterval(sampler);
    assert.deepEqual(codes, hs.map(() => 0), 'each stopped by its SIGTERM trap');
  }
  const after = { fds: fdList(), mounts: mountPoints(), listeners: listeners(), rss: rssMb(), heap: heapMb() };
  assert.deepEqual(after.fds, before.fds, 'descriptors of this process');
  assert.deepEqual(after.mounts.filter((m) => !before.mounts.includes(m)), [], 'host mounts');
  assert.deepEqual(sandboxCgroups(prefix), [], 'cgroups');
  const mine = (l: string[]) => l.filter((x) => ports.some((p) => x.includes(`:${p} `) || x.endsWith(`:${p}`)));
  assert.deepEqual(mine(after.listeners), mine(before.listeners), 'listeners');
  assert.deepEqual(readdirSync('/run/sandbox').filter((x) => x.startsWith(prefix)), [], 'state folders');
  for (let i = 0; i < n; i++) assert.deepEqual(leftovers(`${prefix}${i}`), []);
  return { upMs, downMs, before: before.rss, peak, after: after.rss, fds: after.fds.length, heapBefore: before.heap, heapAfter: after.heap };
}

test('50 sandboxes at once from one process, twice: all run, all stop, nothing left, memory bounded', async (t) => {
  if (!ready(t)) return;
  const N = Number(process.env.SANDBOX_API_MANY ?? 50);
  // Ten of them with a private network and a published port (nftables), the rest with none.
  const withPorts = hasNft ? Math.min(10, N) : 0;
  const rounds = [];
  for (let r = 1; r <= 2; r++) {
    const m = await manyAtOnce(t, N, withPorts, `api-many-${r}-`);
    rounds.push(m);
    const line = `round ${r}: ${N} sandboxes at once (${withPorts} with a port): up ${m.upMs} ms, down ${m.downMs} ms; RSS before ${m.before.toFixed(1)} MB, peak ${m.peak.toFixed(1)} MB, after ${m.after.toFixed(1)} MB (VmHWM ${peakMb().toFixed(1)} MB); JS heap after a full GC ${m.heapBefore.toFixed(1)} → ${m.heapAfter.toFixed(1)} MB; ${m.fds} fds before and after`;
    t.diagnostic(line);
    process.stderr.write(`api many: ${line}\n`);
  }
  // Bounded: the first round grows the heap once (the engine's code, the pipes' buffers); the
  // second starts as many again and does not add as much.
  assert.ok(rounds[0]!.after - rounds[0]!.before < 60, `round 1: RSS grew ${(rounds[0]!.after - rounds[0]!.before).toFixed(1)} MB`);
  assert.ok(rounds[1]!.after - rounds[0]!.after < 20, `round 2: RSS grew ${(rounds[1]!.after - rounds[0]!.after).toFixed(1)} MB more`);
  // Nothing of a round stays referenced: the live heap after a full collection is as it was.
  assert.ok(rounds[1]!.heapAfter - rounds[0]!.heapAfter < 2, `round 2: the live heap grew ${(rounds[1]!.heapAfter - rounds[0]!.heapAfter).toFixed(2)} MB`);
});

test('rootless: one process of a user starts 10 at once through the API, and leaves nothing', async (t) => {
  const { asUser, canMakeUsers, hasUidmap, makeUser, removeAllUsers } = await import('../helpers/users');
  if (!needs(t, 'root (to make a user)', canMakeUsers) || !needs(t, 'the native engine', hasEngine) || !needs(t, 'newuidmap (uidmap)', hasUidmap)) return;
  const u = makeUser('sbxapi');
  try {
    // `node -e` in the package's folder: require('sandbox') resolves through its exports.
    const script = `
      const sbx = require('sandbox');
      const fs = require('fs');
      const fds = () => fs.readdirSync('/proc/self/fd').length;
      (async () => {
        // The baseline once this process has cloned a child (its first clone opens /dev/null once, for good).
        await (await sbx.up({ version: 1, name: 'api-rl-warm', rootfs: 'host', network: 'none', command: ['/bin/true'] }, { stdio: 'ignore' })).wait();
        const before = fds();
        const hs = await Promise.all(Array.from({ length: 10 }, (_, i) => sbx.up({ version: 1, name: 'api-rl-' + i, rootfs: 'host', network: 'none',
          command: ['/bin/sh', '-c', "trap 'exit 0' TERM; echo \\"$(id -u) $(hostname)\\"; while :; do sleep 0.2; done"] }, { stdio: ['ignore', 'pipe', 'inherit'] })));
        const outs = hs.map((h) => { let s = ''; h.stdout.on('data', (d) => { s += d; }); return () => s; });
        for (const until = Date.now() + 20000; outs.some((o) => !o().includes('\\n')) && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
        const codes = await Promise.all(hs.map((h) => h.down({ timeout: 5000 })));
        console.log(JSON.stringify({ outs: outs.map((o) => o()), codes, before, after: fds(), left: (() => { try { return fs.readdirSync(process.env.XDG_RUNTIME_DIR + '/sandbox').filter((n) => n.startsWith('api-rl-')); } catch { return []; } })() }));
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const r = asUser(u, [process.execPath, '-e', script], { timeout: 120_000 });
    assert.equal(r.code, 0, r.err);
    const res = JSON.parse(r.out.trim().split('\n').pop()!) as { outs: string[]; codes: number[]; before: number; after: number; left: string[] };
    // Root inside its user namespace, its own hostname: from the command's own output.
    assert.deepEqual(res.outs, Array.from({ length: 10 }, (_, i) => `0 api-rl-${i}\n`));
    assert.deepEqual(res.codes, Array(10).fill(0));
    assert.equal(res.after, res.before, 'descriptors of the user\'s process');
    assert.deepEqual(res.left, [], 'state folders');
  } finally { removeAllUsers(); }
});

test('the image store: a pull with its progress events, the list, an up of the image, a remove', async (t) => {
  if (!ready(t)) return;
  const { buildImage, busyboxEntries, tar, writeLayout } = await import('../helpers/image');
  // A store of this test's own, so that nothing else's images are touched.
  const store = mkdtempSync(join(tmpdir(), 'sbx-api-store-'));
  const old = process.env.SANDBOX_STORE;
  process.env.SANDBOX_STORE = store;
  const layout = writeLayout(buildImage([tar(busyboxEntries())], { Cmd: ['/bin/sh', '-c', 'echo "from the image in $PWD"'], Env: ['PATH=/bin'], WorkingDir: '/tmp' }), 'v1');
  const ref = `oci:${layout}:v1`;
  try {
    const events: { phase: string; digest: string }[] = [];
    const r = await sbx.images.pull(ref, { onProgress: (e) => events.push(e) });
    assert.match(r.digest, /^sha256:[0-9a-f]{64}$/);
    assert.ok(events.some((e) => e.phase === 'done'), JSON.stringify(events));
    const [info] = (await sbx.images.list()).filter((i) => i.digest === r.digest);
    assert.deepEqual(JSON.parse(JSON.stringify(info)), { reference: r.reference, digest: r.digest, layers: 1, size: info!.size, pulledAt: info!.pulledAt });
    const h = await sbx.up({ version: 1, name: 'api-image', image: ref, network: 'none' }, { stdio: ['ignore', 'pipe', 'inherit'] });
    const out = collect(h.stdout);
    const ended = new Promise((res) => h.stdout!.on('end', res));
    assert.equal(await h.wait(), 0);
    await ended;
    assert.equal(out(), 'from the image in /tmp\n');
    assert.deepEqual(leftovers('api-image'), []);
    assert.deepEqual(await sbx.images.remove(ref), { reference: r.reference });
    assert.deepEqual((await sbx.images.list()).filter((i) => i.digest === r.digest), []);
    await assert.rejects(sbx.images.remove(ref), sbx.NotFoundError);
  } finally {
    if (old === undefined) delete process.env.SANDBOX_STORE; else process.env.SANDBOX_STORE = old;
    rmSync(store, { recursive: true, force: true });
    rmSync(layout, { recursive: true, force: true });
  }
});
