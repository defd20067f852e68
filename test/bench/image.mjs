// Image benchmark (issue 7), as root, in one run against one local registry and one image:
//   - `sandbox pull` (download, verify, unpack) against `skopeo copy` + `umoci unpack`;
//   - layer unpack throughput against `tar -xzf` of the same gzip layer;
//   - `sandbox up` of the image running /bin/true against `runc run` (and `crun run` where it
//     works) of the same unpacked root.
// The image: the busybox root plus a layer of the host's /usr/lib/python3 (about 100 MB unpacked).
// Needs `npm install` (the build and the busybox root) and installs docker-registry, skopeo and
// umoci with apt-get when missing.
//   node test/bench/image.mjs [RUNS]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const runs = Number(process.argv[2] ?? 5);
const have = (c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;
if (!['docker-registry', 'skopeo', 'umoci', 'runc'].every(have)) execFileSync('sh', ['-c', 'apt-get install -y -qq docker-registry skopeo umoci runc >/dev/null'], { stdio: 'inherit' });
const h = await import(join(root, 'build/test/helpers/image.js'));
const { unpackLayer } = await import(join(root, 'build/src/image/unpack.js'));
const { loadLibSbx } = await import(join(root, 'build/src/ffi/libsbx.js'));
process.env.SANDBOX_LIBSBX ??= join(root, 'native/build/libsbx.so');

const dir = mkdtempSync(join(tmpdir(), 'sandbox-bench-image-'));
const reg = await h.startRegistry();
const sandbox = (args, env = {}) => {
  const r = spawnSync(process.execPath, [join(root, 'bin/sandbox.js'), ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`sandbox ${args.join(' ')}: ${r.stderr}`);
  return r;
};
const run = (cmd, args) => { const r = spawnSync(cmd, args, { encoding: 'utf8' }); if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`); };
const time = (f) => { const t0 = process.hrtime.bigint(); f(); return Number(process.hrtime.bigint() - t0) / 1e6; };
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
try {
  const base = h.tar(h.busyboxEntries());
  const big = execFileSync('tar', ['--sort=name', '-C', '/usr/lib', '-cf', '-', 'python3'], { maxBuffer: 1 << 30 });
  const img = h.buildImage([base, big], { Cmd: ['/bin/sh'], Env: ['PATH=/bin'] });
  await h.push(reg.host, 'bench/image', '1', img);
  const ref = `${reg.host}/bench/image:1`;
  const bigBlob = [...img.blobs.entries()].sort((a, b) => b[1].length - a[1].length)[0];
  console.log(`image: 2 layers, ${(big.length / 1e6).toFixed(0)} MB + ${(base.length / 1e6).toFixed(1)} MB unpacked, ${([...img.blobs.values()].reduce((t, b) => t + b.length, 0) / 1e6).toFixed(0)} MB compressed`);

  const times = { 'sandbox pull': [], 'skopeo copy + umoci unpack': [], 'sandbox unpack (big layer)': [], 'tar -xzf (big layer)': [], 'sandbox up /bin/true': [], 'runc run /bin/true': [], 'node -e 0': [] };
  writeFileSync(join(dir, 'layer.tar.gz'), bigBlob[1]);
  let bundle;
  for (let i = 0; i < runs; i++) {
    const store = join(dir, `store-${i}`);
    times['sandbox pull'].push(time(() => sandbox(['pull', '-q', '--insecure-registry', reg.host, ref], { SANDBOX_STORE: store })));
    const oci = join(dir, `oci-${i}`);
    bundle = join(dir, `bundle-${i}`);
    times['skopeo copy + umoci unpack'].push(time(() => { run('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${ref}`, `oci:${oci}:1`]); run('umoci', ['unpack', '--image', `${oci}:1`, bundle]); }));
    // Each unpack starts with nothing of the previous one still being written back.
    run('sync', []);
    const t0 = process.hrtime.bigint();
    await unpackLayer(join(dir, 'layer.tar.gz'), join(dir, `ours-${i}`), bigBlob[0] === undefined ? undefined : h.sha256(big), loadLibSbx());
    times['sandbox unpack (big layer)'].push(Number(process.hrtime.bigint() - t0) / 1e6);
    const tdir = join(dir, `tar-${i}`);
    run('mkdir', [tdir]);
    run('sync', []);
    times['tar -xzf (big layer)'].push(time(() => run('tar', ['-xzf', join(dir, 'layer.tar.gz'), '-C', tdir])));
    if (i < runs - 1) for (const d of [oci, join(dir, `ours-${i}`), tdir]) rmSync(d, { recursive: true, force: true });
  }

  // Start-up: the image from the last store, against runc on umoci's unpacked root (the same files).
  const store = join(dir, `store-${runs - 1}`);
  writeFileSync(join(dir, 'up.yml'), `version: 1\nname: benchimg\nimage: ${ref}\ninsecure_registries: ["${reg.host}"]\nnetwork: none\ncommand: [/bin/true]\n`);
  const cfg = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  cfg.process.terminal = false;
  cfg.process.args = ['/bin/true'];
  cfg.linux.namespaces = ['pid', 'mount', 'uts', 'ipc', 'network', 'cgroup'].map((type) => ({ type }));
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(cfg));
  let n = 0;
  sandbox(['up', '-q', join(dir, 'up.yml')], { SANDBOX_STORE: store });
  for (let i = 0; i < runs * 4; i++) {
    times['sandbox up /bin/true'].push(time(() => sandbox(['up', '-q', join(dir, 'up.yml')], { SANDBOX_STORE: store })));
    times['runc run /bin/true'].push(time(() => run('runc', ['run', '--bundle', bundle, `bench-img-${process.pid}-${n++}`])));
    times['node -e 0'].push(time(() => run(process.execPath, ['-e', '0'])));
  }

  console.log(`\nmedian ms, ${runs} runs (start-up: ${runs * 4}), alternating`);
  for (const [k, t] of Object.entries(times)) console.log(`  ${k.padEnd(30)} ${med(t).toFixed(1).padStart(8)}`);
  const mbs = (ms) => (big.length / 1e6) / (ms / 1000);
  console.log(`\npull + unpack: sandbox / (skopeo + umoci) = ${(med(times['sandbox pull']) / med(times['skopeo copy + umoci unpack'])).toFixed(2)} (goal ≤ 1.00)`);
  console.log(`unpack: sandbox ${mbs(med(times['sandbox unpack (big layer)'])).toFixed(0)} MB/s, tar ${mbs(med(times['tar -xzf (big layer)'])).toFixed(0)} MB/s = ${(med(times['tar -xzf (big layer)']) / med(times['sandbox unpack (big layer)'])).toFixed(2)} of tar's speed (goal ≥ 0.80)`);
  console.log(`start-up: sandbox up / (node -e 0 + runc run) = ${(med(times['sandbox up /bin/true']) / (med(times['node -e 0']) + med(times['runc run /bin/true']))).toFixed(2)} (crun ${spawnSync('crun', ['--version']).status === 0 ? 'refuses this hybrid-cgroup host; compare in the v2 VM' : 'not installed'})`);
} finally {
  await reg.stop();
  rmSync(dir, { recursive: true, force: true });
}
