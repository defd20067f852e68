// Rootless start-up benchmark (issue 15), run by root for a user it makes and removes: that
// user's `sandbox up -q` of /bin/true (rootfs: host; network: none, and private through pasta)
// against the same user's `podman run --rm --runtime runc` of busybox (network none, and
// slirp4netns), `bwrap --unshare-all`, pasta running /bin/true by hand, and `unshare` (with and
// without newuidmap/newgidmap) as the floor, alternating in one run after one warm-up each.
// Every command is timed the same way, as a whole process from spawn to exit, started directly
// with the user's uid and gid (no setpriv or shell in between) and a login's environment.
// Needs a build (node scripts/build.mjs): the CLI, the OCI layout of samples/images/busybox and
// build/test/helpers/users.js.
//   node test/bench/rootless-up.mjs [RUNS]
// Goal: sandbox up faster than podman's run (ratio < 1).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);
const runs = Number(process.argv[2] ?? 20);
if (process.geteuid() !== 0) { console.error('the bench runs as root: it makes the user it runs everything as, and removes it'); process.exit(1); }
for (const c of ['podman', 'skopeo', 'runc', 'bwrap', 'unshare', 'pasta', 'slirp4netns', 'newuidmap']) {
  if (spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0) { console.error(`the bench needs ${c}`); process.exit(1); }
}
if (!existsSync(join(root, 'build/test/helpers/users.js')) || !existsSync(join(root, 'samples/images/busybox/index.json'))) {
  console.error('the bench needs a build: node scripts/build.mjs'); process.exit(1);
}
const { makeUser, removeAllUsers, tunForUsers, repoForUsers } = require(join(root, 'build/test/helpers/users.js'));

const user = makeUser('rlbn');
// pasta and slirp4netns open /dev/net/tun inside the user's namespace: 0666 as udev leaves it.
const tun = tunForUsers();
const repo = repoForUsers();
let cleaned = false;
function cleanup() {
  if (cleaned) return;
  cleaned = true;
  // removeAllUsers ends the user's processes by PID (podman's pause process among them), then
  // userdel -r takes its home with podman's storage and its runtime folder with sandbox's state.
  removeAllUsers();
  tun.undo();
}
process.on('exit', cleanup);
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => { cleanup(); process.exit(130); });

const env = {
  PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', HOME: user.home, USER: user.name, LOGNAME: user.name,
  XDG_RUNTIME_DIR: user.runtimeDir, LANG: 'C.UTF-8', SANDBOX_TIMING: '1',
};
const spawnOpts = { uid: user.uid, gid: user.gid, env, cwd: repo, encoding: 'utf8', timeout: 60_000 };
const asUser = (cmd, args, stdio = ['ignore', 'ignore', 'pipe']) => spawnSync(cmd, args, { ...spawnOpts, stdio });
const must = (what, r) => { if (r.status !== 0) throw new Error(`${what} exited ${r.status ?? r.signal}: ${r.stderr ?? ''}`); return r; };

// The configs, in a folder of the user's.
const cfgDir = join(user.home, 'bench');
mkdirSync(cfgDir);
const cfg = (name, network) => {
  const f = join(cfgDir, `${name}.yml`);
  writeFileSync(f, `version: 1\nname: ${name}\nrootfs: host\nnetwork: ${network}\ncommand: [/bin/true]\n`);
  return f;
};
const noneYml = cfg('rlbn-none', 'none');
const privYml = cfg('rlbn-priv', 'private');

// Rootless podman 4.3.1 with no storage.conf falls back to the vfs driver (a full copy of the
// image for every container); native overlayfs works for users on this kernel, so the user's
// storage.conf asks for it, as a rootless podman set up for speed has it.
mkdirSync(join(user.home, '.config/containers'), { recursive: true });
writeFileSync(join(user.home, '.config/containers/storage.conf'), '[storage]\ndriver = "overlay"\n');
execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, cfgDir, join(user.home, '.config')]);
const image = 'localhost/busybox:latest';
must('skopeo copy', asUser('skopeo', ['copy', '--quiet', `oci:${join(repo, 'samples/images/busybox')}:latest`, `containers-storage:${image}`]));
const driver = asUser('podman', ['info', '--format', '{{.Store.GraphDriverName}}'], ['ignore', 'pipe', 'pipe']).stdout?.trim();

const name = `rlbn-${process.pid}`;
const cases = {
  'unshare (map-root-user)': () => ['unshare', ['--user', '--map-root-user', '--mount', '--pid', '--fork', '--net', '--uts', '--ipc', '/bin/true']],
  'unshare + newuidmap': () => ['unshare', ['--user', '--map-user=0', '--map-group=0', '--map-users=auto', '--map-groups=auto', '--mount', '--pid', '--fork', '--net', '--uts', '--ipc', '/bin/true']],
  'bwrap --unshare-all': () => ['bwrap', ['--unshare-all', '--ro-bind', '/usr', '/usr', '--symlink', 'usr/bin', '/bin', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64', '--proc', '/proc', '--dev', '/dev', '/bin/true']],
  'pasta --config-net': () => ['pasta', ['--config-net', '--quiet', '-t', 'none', '-u', 'none', '-T', 'none', '-U', 'none', '--', '/bin/true']],
  'node -e 0': () => [process.execPath, ['-e', '0']],
  'sandbox up (none)': () => [process.execPath, [join(repo, 'bin/sandbox.js'), 'up', '-q', '--name', name, noneYml]],
  'sandbox up (pasta)': () => [process.execPath, [join(repo, 'bin/sandbox.js'), 'up', '-q', '--name', name, privYml]],
  'podman runc (none)': () => ['podman', ['run', '--rm', '--runtime', 'runc', '--network', 'none', image, '/bin/true']],
  'podman runc (slirp4netns)': () => ['podman', ['run', '--rm', '--runtime', 'runc', '--network', 'slirp4netns', image, '/bin/true']],
  'podman crun (none)': () => ['podman', ['run', '--rm', '--network', 'none', image, '/bin/true']],
};
// podman's default runtime, crun 1.8, refuses hybrid hosts whose v2 hierarchy has a controller
// (here hugetlb): it stays in only where it runs.
const crunProbe = asUser(...cases['podman crun (none)']());
if (crunProbe.status !== 0) {
  delete cases['podman crun (none)'];
  console.log(`note: podman with crun does not run here: ${(/crun: .*/.exec(crunProbe.stderr) ?? [crunProbe.stderr.trim()])[0]}`);
}

const times = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
const timing = Object.fromEntries(['sandbox up (none)', 'sandbox up (pasta)'].map((k) => [k, { setup: [], clone: [], attest: [] }]));
const once = (k) => {
  const [cmd, args] = cases[k]();
  const t0 = process.hrtime.bigint();
  const r = asUser(cmd, args);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  must(k, r);
  const m = /setup ([\d.]+) ms, clone to exec ([\d.]+) ms.*attestation ([\d.]+) ms/.exec(r.stderr);
  if (m && timing[k]) { timing[k].setup.push(Number(m[1])); timing[k].clone.push(Number(m[2])); timing[k].attest.push(Number(m[3])); }
  return ms;
};
try {
  for (const k of Object.keys(cases)) once(k); // warm caches (and podman's pause process)
  for (const t of Object.values(timing)) for (const a of Object.values(t)) a.length = 0;
  for (let i = 0; i < runs; i++) for (const k of Object.keys(cases)) times[k].push(once(k));
} finally {
  cleanup();
}

const sorted = (a) => [...a].sort((x, y) => x - y);
const med = (a) => sorted(a)[Math.floor(a.length / 2)];
const p90 = (a) => sorted(a)[Math.max(0, Math.ceil(a.length * 0.9) - 1)];
console.log(`rootless start-up of /bin/true as a new user, ${runs} runs each, alternating, ${availableParallelism()} CPUs; podman storage: ${driver}; ms, spawn to exit`);
console.log(`  ${'command'.padEnd(26)} ${'median'.padStart(7)} ${'p90'.padStart(7)}`);
for (const [k, t] of Object.entries(times)) console.log(`  ${k.padEnd(26)} ${med(t).toFixed(1).padStart(7)} ${p90(t).toFixed(1).padStart(7)}`);
for (const [k, t] of Object.entries(timing)) {
  console.log(`  ${`  ${k} inside`.padEnd(26)} setup ${med(t.setup).toFixed(1)} ms, clone to exec ${med(t.clone).toFixed(1)} ms, attestation ${med(t.attest).toFixed(1)} ms (the engine's own report, medians)`);
}
const m = (k) => med(times[k]);
const ratio = (a, b, goal) => {
  const r = m(a) / m(b);
  console.log(`${`${a} / ${b}`.padEnd(56)} = ${r.toFixed(2)}${goal ? ` (goal < 1.00): ${r < 1 ? 'met' : 'NOT met'}` : ''}`);
};
console.log('');
ratio('sandbox up (none)', 'podman runc (none)', true);
ratio('sandbox up (pasta)', 'podman runc (slirp4netns)', true);
if (times['podman crun (none)']) ratio('sandbox up (none)', 'podman crun (none)', true);
ratio('sandbox up (none)', 'bwrap --unshare-all');
ratio('sandbox up (none)', 'unshare + newuidmap');
ratio('sandbox up (pasta)', 'pasta --config-net');
console.log(`${'sandbox up (none) - node -e 0'.padEnd(56)} = ${(m('sandbox up (none)') - m('node -e 0')).toFixed(1)} ms (the CLI past node's own start)`);
console.log(`${'sandbox up (pasta) - sandbox up (none)'.padEnd(56)} = ${(m('sandbox up (pasta)') - m('sandbox up (none)')).toFixed(1)} ms (the private network)`);
