// OCI runtime start-up, as root, in one run: `create` + `start` + `delete --force` of one bundle
// (the busybox root, the config.json `crun spec` writes, running `sleep 3600`: the shim's path,
// not Node's start alone) with sandbox-runtime, crun and runc, alternating, each with its own
// --root. crun drives this hybrid host's v1 controllers only through crun-hybrid, so run the
// whole benchmark under it (each crun call then costs only itself):
//   /work/shared/tools/crun-hybrid node test/bench/runtime.mjs [RUNS]
// Then `exec ID true` in the foreground (the process joins the running container and ends; the
// status is waited for) against one container of each runtime, alternating.
// Prints the median and the 90th percentile of each, and sandbox-runtime's ratio to each peer.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const runs = Number(process.argv[2] ?? 20);
const dir = mkdtempSync(join(tmpdir(), 'sandbox-bench-rt-'));
execFileSync('crun', ['spec'], { cwd: dir });
const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
spec.process.terminal = false;
spec.process.args = ['/bin/sleep', '3600'];
spec.root = { path: join(root, 'samples/rootfs/busybox'), readonly: true };
writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));

const runtimes = {
  'sandbox-runtime': [join(root, 'bin/sandbox-runtime')],
  crun: ['crun'],
  runc: ['runc'],
};
// stderr to a file, not a pipe: the container inherits it, and a pipe would stay open as long as it runs.
const errFile = join(dir, 'stderr');
const call = (rt, args) => {
  const [cmd, ...pre] = runtimes[rt];
  const err = openSync(errFile, 'w');
  const r = spawnSync(cmd, [...pre, '--root', join(dir, `root-${rt}`), ...args], { stdio: ['ignore', 'ignore', err] });
  closeSync(err);
  if (r.status !== 0) throw new Error(`${rt} ${args[0]} exited ${r.status}: ${readFileSync(errFile, 'utf8')}`);
};
const times = Object.fromEntries(Object.keys(runtimes).map((k) => [k, []]));
const execTimes = Object.fromEntries(Object.keys(runtimes).map((k) => [k, []]));
try {
  for (let i = 0; i < runs + 2; i++) {
    for (const rt of Object.keys(runtimes)) {
      const id = `bench-rt-${process.pid}-${i}`;
      const t0 = process.hrtime.bigint();
      call(rt, ['create', '--bundle', dir, id]);
      call(rt, ['start', id]);
      call(rt, ['delete', '--force', id]);
      // The first two rounds warm the page cache and the seccomp cache; they are not counted.
      if (i >= 2) times[rt].push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  const ids = Object.fromEntries(Object.keys(runtimes).map((rt) => [rt, `bench-exec-${process.pid}-${rt}`]));
  try {
    for (const rt of Object.keys(runtimes)) { call(rt, ['create', '--bundle', dir, ids[rt]]); call(rt, ['start', ids[rt]]); }
    for (let i = 0; i < runs + 2; i++) {
      for (const rt of Object.keys(runtimes)) {
        const t0 = process.hrtime.bigint();
        call(rt, ['exec', ids[rt], '/bin/true']);
        if (i >= 2) execTimes[rt].push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
  } finally { for (const rt of Object.keys(runtimes)) { try { call(rt, ['delete', '--force', ids[rt]]); } catch { /* reported above */ } } }
} finally { rmSync(dir, { recursive: true, force: true }); }
const q = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
for (const [rt, t] of Object.entries(times)) console.log(`${rt.padEnd(16)} create+start+delete  median ${q(t, 0.5).toFixed(1)} ms  p90 ${q(t, 0.9).toFixed(1)} ms  (${t.length} runs)`);
const m = (rt) => q(times[rt], 0.5);
console.log(`sandbox-runtime / crun ${(m('sandbox-runtime') / m('crun')).toFixed(2)}x, / runc ${(m('sandbox-runtime') / m('runc')).toFixed(2)}x`);
for (const [rt, t] of Object.entries(execTimes)) console.log(`${rt.padEnd(16)} exec true             median ${q(t, 0.5).toFixed(1)} ms  p90 ${q(t, 0.9).toFixed(1)} ms  (${t.length} runs)`);
const e = (rt) => q(execTimes[rt], 0.5);
console.log(`exec: sandbox-runtime / crun ${(e('sandbox-runtime') / e('crun')).toFixed(2)}x, / runc ${(e('sandbox-runtime') / e('runc')).toFixed(2)}x`);
