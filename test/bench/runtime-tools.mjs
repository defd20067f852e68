// The OCI runtime-tools validation suite against sandbox-runtime, runc and crun, in one run, as
// root. The suite is not part of this repository: build it yourself (its Makefile's
// runtimetest and validation-executables) and name its folder, the one that holds runtimetest,
// rootfs-amd64.tar.gz and validation/*/*.t:
//   RUNTIME_TOOLS_DIR=/path/to/runtime-tools node test/bench/runtime-tools.mjs [PROGRAM...]
// Without RUNTIME_TOOLS_DIR it says so and exits 0. Each program is run as the suite's Makefile
// runs it (RUNTIME=<runtime>, from the suite's folder) and counts as passed when it exits 0 with
// a TAP plan that its results match and no `not ok` but TODO and SKIP ones (prove's rule). crun
// runs through ../shared/tools/crun-hybrid where that exists (crun 1.8 refuses a hybrid cgroup
// host otherwise); a runtime not installed is left out. Prints one row per program and the counts.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const suite = process.env.RUNTIME_TOOLS_DIR;
if (!suite) {
  console.log('skipped: set RUNTIME_TOOLS_DIR to a folder where the runtime-tools validation suite is built');
  process.exit(0);
}
const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const onPath = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const scratch = mkdtempSync(join(tmpdir(), 'sandbox-bench-rtt-'));
const runtimes = { 'sandbox-runtime': join(root, 'bin/sandbox-runtime') };
if (onPath('runc')) runtimes.runc = 'runc';
if (onPath('crun')) {
  // RUNTIME is one program for the suite: a two-line wrapper puts crun-hybrid in front.
  const hybrid = join(root, '../shared/tools/crun-hybrid');
  const wrapper = join(scratch, 'crun');
  writeFileSync(wrapper, existsSync(hybrid) ? `#!/bin/sh\nexec ${hybrid} crun "$@"\n` : '#!/bin/sh\nexec crun "$@"\n');
  chmodSync(wrapper, 0o755);
  runtimes.crun = wrapper;
}

/** prove's verdict on one program's output and exit status. */
function verdict(tap, status) {
  let plan, n = 0, bad = 0;
  for (const line of tap.split('\n')) {
    const p = /^1\.\.([0-9]+)/.exec(line);
    if (p) { plan = Number(p[1]); continue; }
    const m = /^(not ok|ok)\b(.*)$/.exec(line);
    if (!m) continue;
    n++;
    if (m[1] === 'not ok' && !/#\s*(TODO|SKIP)/i.test(m[2])) bad++;
  }
  return status === 0 && plan !== undefined && plan === n && bad === 0;
}

const programs = process.argv.slice(2).length ? process.argv.slice(2)
  : readdirSync(join(suite, 'validation')).filter((p) => existsSync(join(suite, 'validation', p, `${p}.t`))).sort();
const names = Object.keys(runtimes);
const passed = Object.fromEntries(names.map((n) => [n, 0]));
console.log(['program', ...names].join('\t'));
try {
  for (const p of programs) {
    const row = [p];
    for (const n of names) {
      const r = spawnSync(join(suite, 'validation', p, `${p}.t`), [], { cwd: suite, env: { ...process.env, RUNTIME: runtimes[n] }, encoding: 'utf8', timeout: 150_000, killSignal: 'SIGKILL' });
      const ok = verdict(r.stdout ?? '', r.status);
      if (ok) passed[n]++;
      row.push(ok ? 'pass' : 'FAIL');
    }
    console.log(row.join('\t'));
  }
  console.log(['passed', ...names.map((n) => `${passed[n]}/${programs.length}`)].join('\t'));
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
