// Detached-lifecycle benchmark (issue 6), as root, in one run on one host:
//   - resident memory of what stays beside a detached sandbox: sbx-supervise, against conmon
//     (podman's monitor, driving runc or crun) and against crun/runc themselves in the foreground
//     (where the runtime stays as the container's parent);
//   - the time of `sandbox up -d` + `sandbox down` against `crun run -d` + `crun delete -f` and
//     `runc run -d` + `runc delete -f`, of the same busybox root with the same namespaces,
//     running `sleep 3600`, alternating.
// Installs conmon, crun and runc with apt-get when missing.
//   node test/bench/lifecycle.mjs [RUNS]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxBundle, repoRoot as root } from './busybox-bundle.mjs';

const runs = Number(process.argv[2] ?? 20);
const have = (c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;
if (!['crun', 'runc', 'conmon'].every(have)) execFileSync('sh', ['-c', 'apt-get install -y -qq crun runc conmon >/dev/null'], { stdio: 'inherit' });
const runcPath = execFileSync('sh', ['-c', 'command -v runc'], { encoding: 'utf8' }).trim();
const crunPath = execFileSync('sh', ['-c', 'command -v crun'], { encoding: 'utf8' }).trim();

const { dir, rootfs } = busyboxBundle('sandbox-bench-', ['/bin/sleep', '3600']);
writeFileSync(join(dir, 'bench.yml'), `version: 1\nname: bench\nrootfs: {type: dir, path: ${rootfs}}\ncommand: [/bin/sleep, "3600"]\ninit: true\nnetwork: none\ndetach: true\n`);
// Its own name, so that it never meets another run's sandbox on a shared host (BENCH_NAME to choose it).
const benchName = process.env.BENCH_NAME ?? `bench-${process.pid}`;
// As a user runs it: bin/sandbox, the package's bin (native/src/cli.c, which starts Node on bin/sandbox.js).
const sandbox = (...args) => spawnSync(join(root, 'bin/sandbox'), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const rssKb = (pid) => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ok = (r, what) => { if (r.status !== 0) throw new Error(`${what} exited ${r.status}: ${r.stderr}`); return r; };

// crun (1.8) refuses hybrid hosts whose v2 hierarchy holds any controller: there it is left out.
const crunWorks = spawnSync('crun', ['run', '--bundle', dir, '-d', `bench-probe-${process.pid}`], { stdio: 'ignore' }).status === 0;
if (crunWorks) spawnSync('crun', ['delete', '-f', `bench-probe-${process.pid}`]);
else console.log('note: crun does not run on this host (hybrid cgroups); run this bench on a cgroup v2 host (or in ../shared/tools/v2vm) for crun');
const runtimes = [['runc', runcPath], ...(crunWorks ? [['crun', crunPath]] : [])];

const memory = {};
let n = 0;
try {
  // 1. Resident memory, once each.
  ok(sandbox('up', '-q', '--name', benchName, join(dir, 'bench.yml')), 'sandbox up -d');
  const pid = JSON.parse(sandbox('ps', '--json').stdout).find((r) => r.name === benchName).pid;
  memory['sbx-supervise'] = rssKb(Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]));
  ok(sandbox('down', benchName), 'sandbox down');
  for (const [name, path] of runtimes) {
    // conmon as podman runs it: it creates the container with the runtime, stays as its monitor, and
    // its first process exits once the container exists.
    const id = `bench-conmon-${process.pid}-${n++}`;
    const d = join(dir, id);
    mkdirSync(d);
    ok(spawnSync('conmon', ['--api-version', '1', '-c', id, '-u', id, '-n', id, '-r', path, '-b', dir, '-p', join(d, 'pid'), '--conmon-pidfile', join(d, 'conmon.pid'),
      '--exit-dir', d, '--socket-dir-path', d, '-l', `k8s-file:${join(d, 'log')}`, '--log-level', 'error', '--runtime-arg', '--log-format=json'], { encoding: 'utf8' }), `conmon with ${name}`);
    // Its first process returns before the runtime has created the container: wait for the pid file.
    for (let i = 0; i < 200 && !existsSync(join(d, 'pid')); i++) await sleep(10);
    ok(spawnSync(path, ['start', id], { encoding: 'utf8' }), `${name} start`);
    await sleep(200);
    memory[`conmon (${name})`] = rssKb(Number(readFileSync(join(d, 'conmon.pid'), 'utf8')));
    spawnSync(path, ['delete', '-f', id]);
    // The runtime in the foreground stays as the container's parent: its own resident memory.
    const fg = spawn(path, ['run', '--bundle', dir, `bench-fg-${process.pid}-${n++}`], { stdio: 'ignore' });
    await sleep(300);
    memory[`${name} run (foreground)`] = rssKb(fg.pid);
    spawnSync(path, ['delete', '-f', `bench-fg-${process.pid}-${n - 1}`]);
    fg.kill('SIGKILL');
  }

  // 2. up -d + down against run -d + delete -f, alternating.
  const cases = {
    'sandbox up -d + down': () => { ok(sandbox('up', '-q', '--name', benchName, join(dir, 'bench.yml')), 'sandbox up -d'); ok(sandbox('down', '-t', '2', benchName), 'sandbox down'); },
    ...Object.fromEntries(runtimes.map(([name, path]) => [`${name} run -d + delete -f`, () => {
      const id = `bench-${name}-${process.pid}-${n++}`;
      // No pipes: the detached container would hold them open, and spawnSync would wait for it.
      ok(spawnSync(path, ['run', '-d', '--bundle', dir, id], { stdio: 'ignore' }), `${name} run -d`);
      ok(spawnSync(path, ['delete', '-f', id], { encoding: 'utf8' }), `${name} delete`);
    }])),
  };
  const times = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  for (const k of Object.keys(cases)) cases[k]();
  for (let i = 0; i < runs; i++) for (const [k, f] of Object.entries(cases)) { const t0 = process.hrtime.bigint(); f(); times[k].push(Number(process.hrtime.bigint() - t0) / 1e6); }

  const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  console.log('resident memory of what stays beside a running container (VmRSS, MB)');
  for (const [k, kb] of Object.entries(memory)) console.log(`  ${k.padEnd(24)} ${(kb / 1024).toFixed(2).padStart(6)}`);
  for (const [k, kb] of Object.entries(memory)) if (k !== 'sbx-supervise') console.log(`  sbx-supervise / ${k.padEnd(22)} = ${(memory['sbx-supervise'] / kb).toFixed(2)}`);
  console.log(`\nstart detached + remove, ${runs} runs each, alternating; median ms`);
  for (const [k, t] of Object.entries(times)) console.log(`  ${k.padEnd(26)} ${med(t).toFixed(1).padStart(7)}`);
  for (const [name] of runtimes) console.log(`  sandbox / ${name} = ${(med(times['sandbox up -d + down']) / med(times[`${name} run -d + delete -f`])).toFixed(2)}`);
} finally {
  sandbox('down', benchName);
  rmSync(dir, { recursive: true, force: true });
}
