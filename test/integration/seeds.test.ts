// The seeds' examples end to end, offline, as a user runs them with the README's commands:
//   - samples/jenkins.yml, copied into a fresh folder, with JENKINS_IMAGE naming a Jenkins-shaped
//     image (Debian's JRE, tini as entrypoint, USER jenkins 1000, VOLUME /var/jenkins_home,
//     EXPOSE 8080 50000: test/fixtures/images) in Debian's docker-registry on 127.0.0.1: `up`
//     detaches, 8080 and 50000 answer, `exec` runs as uid 1000, tini is PID 1, `stop` frees the
//     host's ports, a second `up` finds what the first wrote in the named volume, `down` keeps the
//     volume, `volume rm` removes it, and nothing else is left;
//   - the same as a user who is not root (rootless: a user namespace, pasta, the user's store and
//     volumes), less the file's limits where cgroups cannot be delegated to a user (this host);
//   - `docker run -it ubuntu /bin/bash`: a Debian bookworm image on a real terminal (script),
//     bash is PID 1 and apt-get runs.
// Every check is made with real clients (HTTP, a TCP socket, the host's /proc) or from inside.
// The images are built once into a cache outside the repository (test/helpers/seed-images.ts).
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BIN, cgroupLayout, hasEngine, hasNft, hostSnapshot, isRoot, leftovers, needs } from '../helpers/sandbox';
import { hasRegistry, startRegistry } from '../helpers/image';
import { hasSeedTools, pushSeedImages, seedImages } from '../helpers/seed-images';
import { ROOT } from '../helpers/load';
import { canMakeUsers, hasUidmap, makeUser, pidsOf, removeAllUsers, sandboxAs, subRanges, tunForUsers, userTmp } from '../helpers/users';

const ready = (t: TestContext) => needs(t, 'root', isRoot) && needs(t, 'the native engine', hasEngine) && needs(t, 'nftables', hasNft)
  && needs(t, 'docker-registry (apt-get install docker-registry)', hasRegistry)
  && needs(t, 'debootstrap, javac and jar to build the seed images (apt-get install debootstrap openjdk-17-jdk-headless)', hasSeedTools)
  // Built once from the Debian mirror: offline with no cache, they cannot be (a failure in CI).
  && needs(t, `the seed images, which could not be built: ${buildError?.message}`, !buildError);

let registry: Awaited<ReturnType<typeof startRegistry>> | undefined;
let images: { jenkins: string; ubuntu: string } | undefined;
let setupError: Error | undefined;
let buildError: Error | undefined;

before(async () => {
  if (!isRoot || !hasEngine || !hasRegistry || !hasSeedTools) return;
  let built;
  try { built = await seedImages(); } catch (e) { buildError = e as Error; return; }
  try {
    registry = await startRegistry();
    const t0 = Date.now();
    images = await pushSeedImages(built.layout, registry.host);
    process.stderr.write(`seed images: ${built.layout} in ${built.seconds.toFixed(1)} s, pushed in ${((Date.now() - t0) / 1000).toFixed(1)} s${built.log ? `\n${built.log}` : ''}\n`);
  } catch (e) { setupError = e as Error; }
}, { timeout: 1_800_000 });

// The registry's folder holds a copy of both images (130 MB): removed with it.
after(async () => { removeAllUsers(); await registry?.stop(); if (registry) rmSync(dirname(registry.storage), { recursive: true, force: true }); });

/** The CLI as a user runs it in `cwd`. */
function cli(cwd: string, args: string[], env: Record<string, string> = {}, timeout = 120_000) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', input: '', env: { ...process.env, NO_COLOR: '1', CI: 'true', ...env }, timeout });
  return { code: r.status, out: r.stdout ?? '', err: r.stderr ?? '', all: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** The body of http://127.0.0.1:PORT/, waiting up to `ms` for something to answer. */
async function get(port: number, ms = 90_000): Promise<string> {
  const until = Date.now() + ms;
  let last = '';
  while (Date.now() < until) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5000) });
      if (r.ok) return await r.text();
      last = `HTTP ${r.status}`;
    } catch (e) { last = String((e as Error).cause ?? e); }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`nothing answered on 127.0.0.1:${port} in ${ms / 1000} s (${last})`);
}

/** The first line the server at 127.0.0.1:PORT sends. */
function firstLine(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.setTimeout(10_000, () => { s.destroy(); reject(new Error(`no line from 127.0.0.1:${port}`)); });
    s.on('data', (b) => { got += b; if (got.includes('\n')) { s.destroy(); resolve(got.split('\n')[0]!); } });
    s.on('error', reject);
    s.on('end', () => resolve(got));
  });
}

/** A host server on 127.0.0.1:PORT that answers every connection with `body` as HTTP. */
function listen(port: number, body: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer((c) => {
      open.add(c);
      c.on('close', () => open.delete(c));
      c.end(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    });
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}
const open = new Set<Socket>();

/** Closes a server of listen(): fetch's pool may keep its end of a connection the server has
 * ended, and close() waits for every connection, so what is still open is destroyed first. */
const close = (s: Server) => new Promise<void>((r) => { for (const c of open) c.destroy(); s.close(() => r()); });

/** The file publishes 127.0.0.1:8080 and :50000: anything of the host's already there is named. */
async function portsFree(): Promise<void> {
  for (const port of [8080, 50000]) {
    const s = await listen(port, '').catch((e: Error) => { throw new Error(`127.0.0.1:${port}, which jenkins.yml publishes, is taken on this host (${e.message}): ${spawnSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' }).stdout.trim()}`); });
    await close(s);
  }
}

test('samples/jenkins.yml in a fresh folder: up, both ports, exec as 1000, tini PID 1, stop frees the port, the volume outlives up and down, volume rm', { timeout: 900_000 }, async (t) => {
  if (!ready(t)) return;
  if (setupError) throw setupError;
  const folder = mkdtempSync(join(tmpdir(), 'sbx-seeds-'));
  const store = mkdtempSync(join(tmpdir(), 'sbx-seeds-store-'));
  copyFileSync(join(ROOT, 'samples/jenkins.yml'), join(folder, 'jenkins.yml'));
  const env = { JENKINS_IMAGE: images!.jenkins, SANDBOX_STORE: store };
  const run = (args: string[], timeout?: number) => cli(folder, args, env, timeout);
  // The names `sandbox volume ls` lists (one a line, the name first).
  const volumes = () => run(['volume', 'ls']).out.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter(Boolean);
  const before = hostSnapshot();
  t.after(() => {
    run(['down', 'jenkins']);
    run(['volume', 'rm', 'jenkins_home']);
    rmSync(folder, { recursive: true, force: true });
    rmSync(store, { recursive: true, force: true });
  });
  assert.deepEqual(leftovers('jenkins'), [], 'a sandbox named jenkins is there already');
  await portsFree();

  // up: detached (the file says so); the image is pulled from the loopback registry over plain
  // HTTP with no flag, as Docker does for 127.0.0.0/8.
  const up = run(['up', 'jenkins.yml'], 300_000);
  assert.equal(up.code, 0, up.all);
  assert.match(up.out, /^jenkins$/m, 'up -d prints the name');
  const page = await get(8080);
  assert.match(page, /^Jenkins-shaped fixture$/m);
  assert.match(page, /^uid: 1000$/m, 'the server runs as the image\'s user');
  assert.match(page, /^home: \/var\/jenkins_home$/m);
  assert.match(page, /^starts: 1$/m, 'a new volume: the first start');
  assert.equal(await firstLine(50000), 'Jenkins-Agent-Protocols: JNLP4-connect, Ping');

  // exec runs as the sandbox's user (the image's jenkins, uid 1000).
  const id = run(['exec', 'jenkins', 'id']);
  assert.equal(id.code, 0, id.all);
  assert.match(id.out, /^uid=1000\(jenkins\) gid=1000\(jenkins\)/);
  // tini (the image's entrypoint) is PID 1, the server its child, seen from inside and from the host.
  const procs = run(['exec', 'jenkins', 'sh', '-c', 'for p in /proc/[0-9]*; do printf "%s %s %s\\n" "${p#/proc/}" "$(cut -d" " -f4 $p/stat)" "$(tr "\\0" " " < $p/cmdline)"; done']);
  assert.equal(procs.code, 0, procs.all);
  assert.match(procs.out, /^1 0 \/usr\/bin\/tini -- \/usr\/local\/bin\/jenkins\.sh $/m, `tini is not PID 1:\n${procs.out}`);
  assert.match(procs.out, /^\d+ 1 java .*-jar \/usr\/share\/jenkins\/jenkins\.war $/m, `the server is not tini's child:\n${procs.out}`);
  const row = (JSON.parse(run(['ps', '--json']).out) as { name: string; pid: number }[]).find((r) => r.name === 'jenkins');
  assert.ok(row, 'ps does not list jenkins');
  assert.equal(readFileSync(`/proc/${row.pid}/cmdline`, 'utf8').split('\0')[0], '/usr/bin/tini', 'the host PID ps gives is tini');
  assert.match(readFileSync(`/proc/${row.pid}/status`, 'utf8'), /^NSpid:\s+\d+\s+1$/m);
  // The named volume was seeded from the image's /var/jenkins_home (the skeleton useradd put
  // there, owned by 1000), and jenkins.sh copied the reference files into it.
  const home = run(['exec', 'jenkins', 'sh', '-c', 'stat -c "%u:%g %n" /var/jenkins_home /var/jenkins_home/.bashrc /var/jenkins_home/init.groovy.d/fixture.groovy; cat /var/jenkins_home/copy_reference_file.log']);
  assert.equal(home.code, 0, home.all);
  assert.match(home.out, /^1000:1000 \/var\/jenkins_home$/m);
  assert.match(home.out, /^1000:1000 \/var\/jenkins_home\/\.bashrc$/m, 'the volume was not seeded from the image');
  assert.match(home.out, /^copied \.\/init\.groovy\.d\/fixture\.groovy$/m);

  // stop frees the host's ports: a server of the host's can listen on them and serve.
  const stop = run(['stop', 'jenkins'], 120_000);
  assert.equal(stop.code, 0, stop.all);
  const servers = [await listen(8080, 'the host\'s own\n'), await listen(50000, 'agent port of the host\n')];
  try {
    // Listening is not enough: a port map left in nftables would still take the connections.
    const host = await get(8080, 5000).catch((e: Error) => `${e.message}; left by the stopped sandbox: ${leftovers('jenkins').join(', ')}`);
    assert.equal(host, 'the host\'s own\n');
    const agent = await firstLine(50000).catch((e: Error) => e.message);
    assert.equal(agent, 'HTTP/1.1 200 OK\r', 'the host\'s server on 50000 does not get the connection');
  } finally { for (const s of servers) await close(s); }

  // up again: the volume holds what the first run wrote.
  const again = run(['up', 'jenkins.yml'], 300_000);
  assert.equal(again.code, 0, again.all);
  assert.match(await get(8080), /^starts: 2$/m, 'the second run did not find the first run\'s file in the volume');
  assert.equal(await firstLine(50000), 'Jenkins-Agent-Protocols: JNLP4-connect, Ping');
  const log = run(['exec', 'jenkins', 'cat', '/var/jenkins_home/copy_reference_file.log']);
  assert.equal(log.out.match(/^--- Copying files at /gm)?.length, 2, log.all);

  // down removes the sandbox and keeps the named volume; volume rm removes that.
  const down = run(['down', 'jenkins'], 120_000);
  assert.equal(down.code, 0, down.all);
  assert.deepEqual(leftovers('jenkins'), []);
  assert.ok(volumes().includes('jenkins_home'), `down removed the volume: ${run(['volume', 'ls']).all}`);
  const rm = run(['volume', 'rm', 'jenkins_home']);
  assert.equal(rm.code, 0, rm.all);
  assert.ok(!volumes().includes('jenkins_home'), 'volume rm left the volume');

  // Nothing else: no sandbox, nothing on the host, nothing in the folder but the file.
  assert.deepEqual((JSON.parse(run(['ps', '-a', '--json']).out) as { name: string }[]).filter((r) => r.name === 'jenkins'), []);
  assert.deepEqual(readdirSync(folder), ['jenkins.yml'], 'a named volume is not a folder beside the file');
  assert.equal(hostSnapshot(), before);
});

test('as a user (rootless): samples/jenkins.yml, less its limits off pure cgroup v2: the same run, in the user\'s namespace, store and volume', { timeout: 900_000 }, async (t) => {
  if (!ready(t) || !needs(t, 'root to make users (useradd), newuidmap (uidmap) and pasta (passt)', canMakeUsers && hasUidmap && existsSync('/usr/bin/pasta'))) return;
  if (setupError) throw setupError;
  const u = makeUser('sbxseed');
  const sub = subRanges(u);
  const folder = userTmp(u);
  const tun = tunForUsers();
  if (tun.changed) t.diagnostic(`set-up: ${tun.changed}`);
  // A user's limits need a cgroup v2 subtree delegated by systemd; where there is none (cgroup v1
  // or hybrid, as here) every resource key is refused at its line, so the file's go.
  let text = readFileSync(join(ROOT, 'samples/jenkins.yml'), 'utf8');
  if (cgroupLayout() !== 'v2') {
    text = text.replace(/^resources:\n(?: {2}.*\n)+/m, '');
    t.diagnostic('cgroup v1/hybrid: resources left out of the user\'s copy of jenkins.yml');
  }
  writeFileSync(join(folder, 'jenkins.yml'), text);
  chownSync(join(folder, 'jenkins.yml'), u.uid, u.gid);
  const run = (args: string[]) => { const r = sandboxAs(u, args, { cwd: folder, env: { JENKINS_IMAGE: images!.jenkins }, timeout: 300_000 }); return { ...r, all: r.out + r.err }; };
  const volumes = () => run(['volume', 'ls']).out.split('\n').map((l) => l.trim().split(/\s+/)[0]).filter(Boolean);
  const mounts = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).sort().join('\n');
  const links = () => readdirSync('/sys/class/net').sort().join(' ');
  const before = { mounts: mounts(), links: links() };
  await portsFree();
  t.after(() => { run(['down', 'jenkins']); run(['volume', 'rm', 'jenkins_home']); tun.undo(); });

  const up = run(['up', 'jenkins.yml']);
  assert.equal(up.code, 0, up.all);
  assert.match(up.out, /^jenkins$/m);
  const page = await get(8080);
  assert.match(page, /^uid: 1000$/m);
  assert.match(page, /^starts: 1$/m);
  assert.equal(await firstLine(50000), 'Jenkins-Agent-Protocols: JNLP4-connect, Ping');
  const id = run(['exec', 'jenkins', 'id']);
  assert.match(id.out, /^uid=1000\(jenkins\) gid=1000\(jenkins\)/, id.all);
  // tini is PID 1, and on the host it runs as the user's subordinate id that uid 1000 maps to.
  const row = (JSON.parse(run(['ps', '--json']).out) as { name: string; pid: number }[]).find((r) => r.name === 'jenkins');
  assert.ok(row, 'ps does not list jenkins');
  assert.equal(readFileSync(`/proc/${row.pid}/cmdline`, 'utf8').split('\0')[0], '/usr/bin/tini');
  assert.match(readFileSync(`/proc/${row.pid}/status`, 'utf8'), /^NSpid:\s+\d+\s+1$/m);
  assert.match(readFileSync(`/proc/${row.pid}/status`, 'utf8'), new RegExp(`^Uid:\\s+${sub.uid!.start + 999}\\s`, 'm'), 'uid 1000 inside is not the user\'s subordinate id');

  const stop = run(['stop', 'jenkins']);
  assert.equal(stop.code, 0, stop.all);
  const server = await listen(8080, 'the host\'s own\n');
  try { assert.equal(await get(8080, 5000).catch((e: Error) => e.message), 'the host\'s own\n', 'stop did not free the port'); } finally { await close(server); }
  const again = run(['up', 'jenkins.yml']);
  assert.equal(again.code, 0, again.all);
  assert.match(await get(8080), /^starts: 2$/m, 'the second run did not find the first run\'s file in the user\'s volume');

  const down = run(['down', 'jenkins']);
  assert.equal(down.code, 0, down.all);
  assert.ok(volumes().includes('jenkins_home'), 'down removed the volume');
  const rm = run(['volume', 'rm', 'jenkins_home']);
  assert.equal(rm.code, 0, rm.all);
  assert.ok(!volumes().includes('jenkins_home'), 'volume rm left the volume');
  // A process that has ended waits as a zombie until the host's init reaps it: it holds nothing.
  const alive = () => [...pidsOf(u.uid), ...pidsOf(sub.uid!.start + 999)].filter((p) => { try { return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${p}/stat`, 'utf8')); } catch { return false; } });
  assert.deepEqual(alive(), [], 'a process of the user is left');
  assert.deepEqual(readdirSync(folder), ['jenkins.yml']);
  assert.equal(mounts(), before.mounts);
  assert.equal(links(), before.links);
});

test('docker run -it ubuntu /bin/bash: a Debian image on a real terminal, bash is PID 1, apt-get runs', { timeout: 300_000 }, async (t) => {
  if (!ready(t) || !needs(t, 'script (util-linux)', existsSync('/usr/bin/script'))) return;
  if (setupError) throw setupError;
  const folder = mkdtempSync(join(tmpdir(), 'sbx-seeds-'));
  const store = mkdtempSync(join(tmpdir(), 'sbx-seeds-store-'));
  t.after(() => { rmSync(folder, { recursive: true, force: true }); rmSync(store, { recursive: true, force: true }); });
  writeFileSync(join(folder, 'sandbox.yml'), `version: 1\nname: ubuntu\nimage: ${images!.ubuntu}\ntty: true\nstdin_open: true\ncommand: [/bin/bash]\n`);
  const before = hostSnapshot();
  const typed = 'echo "pid $$"; test -t 0 && echo "on a terminal: $(tty)"; apt-get --version | head -n 1; exit 7\n';
  // The two ways in: `up` of a file (found in the folder as sandbox.yml), and docker's command line.
  for (const argv of [['up'], ['run', '-it', images!.ubuntu, '/bin/bash']]) {
    const cmd = [process.execPath, BIN, ...argv].map((a) => `'${a}'`).join(' ');
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { cwd: folder, encoding: 'utf8', input: typed, env: { ...process.env, SANDBOX_STORE: store, NO_COLOR: '1', TERM: 'xterm' }, timeout: 240_000 });
    // What the terminal got, less its control sequences (bash's bracketed paste, listr2's cursor).
    const out = (r.stdout ?? '').replace(/\r/g, '').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    const what = `sandbox ${argv.join(' ')}`;
    assert.equal(r.status, 7, `${what}: bash's exit status is the run's\n${out}${r.stderr}`);
    assert.match(out, /^pid 1$/m, `${what}: bash is not PID 1\n${out}`);
    assert.match(out, /^on a terminal: \/dev\/pts\/\d+$/m, `${what}: no terminal\n${out}`);
    assert.match(out, /^apt 2\.6\.\d+ \(amd64\)$/m, `${what}: apt-get did not run\n${out}`);
    assert.deepEqual(leftovers('ubuntu'), [], what);
  }
  assert.equal(hostSnapshot(), before);
});
