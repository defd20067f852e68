// The CLI as a user runs it: exit codes, where output goes, config discovery, every sample.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/load';

const BIN = join(ROOT, 'bin/sandbox.js');
const run = (args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', ...opts.env }, timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const tmp = () => mkdtempSync(join(tmpdir(), 'sandbox-e2e-'));
const samples = readdirSync(join(ROOT, 'samples')).filter((f) => f.endsWith('.yml'));

for (const s of samples) {
  test(`validate and plan samples/${s}`, () => {
    const v = run(['validate', `samples/${s}`]);
    assert.equal(v.code, 0, v.err);
    assert.match(v.err, new RegExp(`samples/${s}: valid`));
    const p = run(['plan', `samples/${s}`]);
    assert.equal(p.code, 0, p.err);
    assert.match(p.out, /^plan for /);
    for (const stage of ['1. rootfs', '2. cgroup', '3. namespaces', '6. mounts', '8. security', '9. exec']) assert.ok(p.out.includes(stage), stage);
    const j = JSON.parse(run(['plan', '--json', `samples/${s}`]).out);
    assert.equal(j.version, 1);
    assert.ok(j.steps.length > 50);
    assert.ok(j.steps.every((st: { id: string; stage: string; kind: string; source: unknown }) => st.id && st.stage && st.kind && st.source));
  });
}

// bin/sandbox.js loads a bundle of one command for validate, plan and up (scripts/build.mjs):
// each says what the whole CLI's bundle says, for good input and bad, and holds less than it.
test('the bundles of one command answer as the whole CLI does, and leave the other commands out', () => {
  const whole = (args: string[]) => {
    // The whole CLI's bundle, loaded as bin/sandbox.js loads it for any other command.
    const r = spawnSync(process.execPath, ['-e', `process.argv.splice(1, 0, '-'); require(${JSON.stringify(join(ROOT, 'bin/launch.js'))})('sandbox.js')`, ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 30_000 });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  const dir = tmp();
  try {
    writeFileSync(join(dir, 'bad.yml'), 'version: 1\ncommand: [/bin/true]\nresources: {memory: lots}\nnetwork: nowhere\n');
    for (const args of [['plan', 'samples/web.yml'], ['plan', '--json', 'samples/jenkins.yml'], ['plan', '-e', 'A=1', 'samples/web.yml'], ['validate', 'samples/web.yml'], ['validate', '--json', join(dir, 'bad.yml')],
      ['plan', join(dir, 'bad.yml')], ['plan', '--bogus'], ['plan', '--help'], ['validate', '--help'], ['up', '--help'], ['up', '--dry-run', 'samples/web.yml'], ['up', '--dry-run', join(dir, 'bad.yml')], ['up', '--bogus'], ['up', '--json']]) {
      assert.deepEqual(run(args), whole(args), args.join(' '));
    }
  } finally { rmSync(dir, { recursive: true, force: true }); }
  const size = (f: string) => readFileSync(join(ROOT, 'dist', f), 'latin1');
  const [all, plan, up] = [size('sandbox.js'), size('sandbox-plan.js'), size('sandbox-up.js')];
  // The engine's run (its test hook's variable) is up's, not plan's; the image commands are neither's.
  assert.ok(all.includes('SANDBOX_TEST_FAIL_AT') && up.includes('SANDBOX_TEST_FAIL_AT') && !plan.includes('SANDBOX_TEST_FAIL_AT'));
  assert.ok(all.includes('remove blobs and unpacked layers no image uses') && !up.includes('remove blobs and unpacked layers no image uses') && !plan.includes('remove blobs and unpacked layers no image uses'));
  assert.ok(plan.length < all.length * 0.8 && up.length < all.length * 0.9, `${plan.length} and ${up.length} of ${all.length} bytes`);
});

test('jenkins.yml: its plan shows the image and the restart policy; an image that cannot be fetched stops up before anything is set up', () => {
  const p = run(['plan', 'samples/jenkins.yml']);
  assert.equal(p.code, 0, p.err);
  assert.doesNotMatch(p.err, /warning/);
  assert.match(p.out, /use the image jenkins\/jenkins:lts \(pulled by up if the store has not got it\)/);
  assert.match(p.out, /, detached; the supervisor runs it again when it fails, at most 3 times, until stopped: a new PID 1/);
  // Its home is a named volume (the store's, not a folder beside the file), made on first use.
  assert.match(p.out, /volume:jenkins_home +volume jenkins_home on \/var\/jenkins_home: (created and seeded from the image on first use|exists)/);
  if (process.getuid?.() !== 0) return;
  // A registry nobody listens on (port 2 of this host): offline, as jenkins.yml is without the internet.
  const dir = tmp();
  writeFileSync(join(dir, 'far.yml'), 'version: 1\nname: far\nimage: 127.0.0.1:2/team/app:2\n');
  const u = run(['up', join(dir, 'far.yml')], { env: { SANDBOX_STORE: join(dir, 'store') } });
  assert.equal(u.code, 125);
  assert.match(u.err, /far\.yml:3:8: error: the image 127\.0\.0\.1:2\/team\/app:2 cannot be pulled: cannot reach http:\/\/127\.0\.0\.1:2: nothing listens there \(connection refused\)/);
  assert.equal((u.err.match(/cannot/g) ?? []).length, 2, `said once: ${u.err}`);
  assert.equal(existsSync('/run/sandbox/far'), false);
});

test('pre-flight, before any pull: a bind to a missing folder and an unreachable registry, both located, in up, up --dry-run and doctor', () => {
  const dir = tmp();
  const store = join(dir, 'store');
  // A fresh folder, as jenkins.yml's: its bind source is not made yet, and its registry (a loopback port nothing listens on) is down.
  writeFileSync(join(dir, 'app.yml'), 'version: 1\nname: e2e-preflight\nimage: 127.0.0.1:2/team/app:2\nvolumes:\n  - ./data:/var/data\n');
  for (const args of [['up', '--dry-run', 'app.yml'], ['doctor', 'app.yml'], ['up', 'app.yml']]) {
    const r = run(args, { cwd: dir, env: { SANDBOX_STORE: store } });
    assert.equal(r.code, args[0] === 'doctor' ? 2 : 125, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, new RegExp(`^app\\.yml:5:5: error: the bind source ${dir}/data does not exist on the host; create it first \\(mkdir -p ${dir}/data\\)`, 'm'), args.join(' '));
    assert.match(r.err, /^app\.yml:3:8: error: the image 127\.0\.0\.1:2\/team\/app:2 cannot be pulled: cannot reach http:\/\/127\.0\.0\.1:2: nothing listens there/m, args.join(' '));
    assert.match(r.err, /2 errors; nothing was run/);
    assert.doesNotMatch(r.err, /pull |\n\s+at /, 'no pull started, no stack trace');
    assert.equal(existsSync(store) && readdirSync(store).some((e) => e !== 'tmp' && readdirSync(join(store, e)).length > 0), false, `${args.join(' ')} wrote to the store`);
    assert.equal(existsSync('/run/sandbox/e2e-preflight'), false);
  }
  // Made, the folder is fine; only the registry is left.
  mkdirSync(join(dir, 'data'));
  const r = run(['up', '--dry-run', 'app.yml'], { cwd: dir, env: { SANDBOX_STORE: store } });
  assert.equal(r.code, 125);
  assert.match(r.err, /^1 error; nothing was run$/m);
  rmSync(dir, { recursive: true });
});

test('pre-flight: a user or group name the root filesystem does not have is an error at its line with the other problems, before any step', () => {
  const dir = tmp();
  const root = join(ROOT, 'samples/rootfs/busybox');
  writeFileSync(join(dir, 'app.yml'), `version: 1\nname: e2e-nouser\nrootfs: {type: dir, path: ${root}}\nnetwork: none\nuser: "nosuchuser:nosuchgroup"\nvolumes:\n  - ./data:/data\ncommand: [id]\n`);
  for (const args of [['up', '--dry-run', 'app.yml'], ['up', 'app.yml']]) {
    const r = run(args, { cwd: dir });
    assert.equal(r.code, 125, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, new RegExp(`^app\\.yml:5:7: error: user nosuchuser is not in ${root}/etc/passwd; use a number, or add the user to the root filesystem`, 'm'), args.join(' '));
    assert.match(r.err, /^app\.yml:7:5: error: the bind source .*\/data does not exist/m);
    assert.match(r.err, /2 errors; nothing was run/);
    assert.doesNotMatch(r.err, /could not be set up|\n\s+at /);
    assert.equal(existsSync('/run/sandbox/e2e-nouser'), false);
  }
  rmSync(dir, { recursive: true });
});

test('a host program that is missing is an error at the line that needs it, naming its Debian package; doctor lists it', () => {
  // PATH with none of the programs sandbox runs: the CLI itself needs only node.
  const empty = tmp();
  const plan = run(['plan', 'samples/web.yml'], { env: { PATH: empty } });
  assert.equal(plan.code, 2, plan.err);
  assert.match(plan.err, /samples\/web\.yml:1:1: error: `ip` is not on PATH, and `network: private` as root \(the veth pair to the host\) needs it; install Debian's iproute2 package/);
  assert.match(plan.err, /samples\/web\.yml:1:1: error: `nft` is not on PATH.*install Debian's nftables package \(apt-get install nftables\); or set `network: none` or `network: host` \(the file has no `network`, and private is the default\)/);
  assert.doesNotMatch(plan.err, /ENOENT/);
  const d = run(['doctor'], { env: { PATH: empty } });
  assert.match(d.out, /^programs +none; not installed: ip \(iproute2\), nft \(nftables\), newuidmap \(uidmap\)/m);
  assert.equal(run(['plan', 'samples/limits.yml'], { env: { PATH: empty } }).code, 0, 'network: none needs neither');
  rmSync(empty, { recursive: true });
});

test('an invalid file: every error located on stderr, exit 2, nothing on stdout', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'bad.yml'), 'version: 1\ncomand: [x]\nnetwork: privat\nresources:\n  memroy: 1g\n');
  const r = run(['validate', 'bad.yml'], { cwd: dir });
  assert.equal(r.code, 2);
  assert.equal(r.out, '');
  assert.match(r.err, /^bad\.yml:2:1: error: `comand` is not a known key \(did you mean `command`\?\)\n  1 \| version: 1\n> 2 \| comand: \[x\]\n    \| \^\^\^\^\^\^/m);
  assert.match(r.err, /bad\.yml:3:10: error: `privat` is not a valid value for `network`/);
  assert.match(r.err, /bad\.yml:5:3: error: `memroy` is not a known key in `resources`/);
  assert.match(r.err, /3 errors; nothing was run/);
  assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
  assert.equal(run(['plan', 'bad.yml'], { cwd: dir }).code, 2);
  assert.equal(run(['up', '--dry-run', 'bad.yml'], { cwd: dir }).code, 2);
});

test('--format json gives [{file, line, col, path, code, message}]', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'bad.yml'), 'version: 1\ncommand: [x]\nresources: {memroy: 1g}\n');
  const r = run(['validate', '--format', 'json', 'bad.yml'], { cwd: dir });
  assert.equal(r.code, 2);
  assert.deepEqual(JSON.parse(r.out), [{ file: 'bad.yml', line: 3, col: 13, path: '/resources/memroy', code: 'unknown-key', message: '`memroy` is not a known key in `resources` (did you mean `memory`?)', severity: 'error' }]);
});

test('warnings pass, and fail with --strict', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'w.yml'), 'version: 1\ncommand: [x]\nports: ["8080:80"]\n');
  const ok = run(['validate', 'w.yml'], { cwd: dir });
  assert.equal(ok.code, 0);
  assert.match(ok.err, /w\.yml:3:9: warning: port 8080 is published on every address/);
  assert.equal(run(['validate', '--strict', 'w.yml'], { cwd: dir }).code, 2);
});

test('usage errors exit 1; --help and --version exit 0', () => {
  assert.equal(run(['frobnicate']).code, 1);
  assert.equal(run(['plan', '--bogus']).code, 1);
  assert.equal(run(['validate', '--format', 'xml', 'samples/web.yml']).code, 1);
  assert.equal(run(['--help']).code, 0);
  assert.match(run(['--version']).out, /^\d+\.\d+\.\d+/);
  // logs --denials: in the help, and its --json is refused without --denials (no sandbox needed to tell).
  const help = run(['logs', '--help']);
  assert.match(help.out, /--denials +the lookups and connections its egress policy refused/);
  assert.match(help.out, /--json +with --denials, print the records as JSON lines/);
});

test('a missing file or a folder is a clear error, exit 2', () => {
  const r = run(['validate', 'nope.yml']);
  assert.equal(r.code, 2);
  assert.match(r.err, /nope\.yml: cannot read the config: no such file/);
  assert.match(run(['validate', 'samples']).err, /it is a folder/);
});

test('discovery: sandbox.yml found upward from the cwd; explicit path wins', () => {
  const dir = tmp();
  mkdirSync(join(dir, 'a/b'), { recursive: true });
  writeFileSync(join(dir, 'sandbox.yml'), 'version: 1\nname: found\ncommand: [x]\n');
  const r = run(['plan', '--json'], { cwd: join(dir, 'a/b') });
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).name, 'found');
  writeFileSync(join(dir, 'other.yml'), 'version: 1\nname: explicit\ncommand: [x]\n');
  assert.equal(JSON.parse(run(['plan', '--json', join(dir, 'other.yml')], { cwd: join(dir, 'a/b') }).out).name, 'explicit');
});

test('discovery: .sandboxrc.json, and a sandbox key in package.json with located errors', () => {
  const dir = tmp();
  writeFileSync(join(dir, '.sandboxrc.json'), '{"version": 1, "name": "rc", "command": ["x"]}');
  assert.equal(JSON.parse(run(['plan', '--json'], { cwd: dir }).out).name, 'rc');
  const pkg = tmp();
  writeFileSync(join(pkg, 'package.json'), '{\n  "name": "app",\n  "sandbox": {\n    "version": 1,\n    "comand": ["x"]\n  }\n}\n');
  const r = run(['validate'], { cwd: pkg });
  assert.equal(r.code, 2);
  assert.match(r.err, /^package\.json:5:5: error: `comand` is not a known key/m);
});

test('JavaScript configs are never loaded, found or named', () => {
  const dir = tmp();
  const marker = join(dir, 'ran');
  writeFileSync(join(dir, 'sandbox.config.js'), `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x'); module.exports = {version: 1, command: ['x']};`);
  writeFileSync(join(dir, '.sandboxrc.js'), `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x'); module.exports = {version: 1, command: ['x']};`);
  const found = run(['validate'], { cwd: dir });
  assert.equal(found.code, 2);
  assert.match(found.err, /no config found/);
  const named = run(['validate', 'sandbox.config.js'], { cwd: dir });
  assert.equal(named.code, 2);
  assert.match(named.err, /YAML and JSON configs only/);
  assert.equal(existsSync(marker), false, 'the JavaScript file ran');
});

test('schema prints the JSON Schema', () => {
  const r = run(['schema']);
  assert.equal(r.code, 0);
  assert.equal(JSON.parse(r.out).$schema, 'https://json-schema.org/draft/2020-12/schema');
});

test('a reader that goes away (sandbox schema | head -c1) ends the command quietly with 141, as SIGPIPE ends a C program: no stack trace', () => {
  // The schema is larger than a pipe holds: the CLI is still writing when head has gone.
  const b = spawnSync('bash', ['-c', `"${process.execPath}" "${BIN}" schema | head -c1 >/dev/null; echo "\${PIPESTATUS[0]}"`], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(b.stderr, '', 'nothing on stderr');
  assert.equal(b.stdout.trim(), '141', 'the CLI\'s own status (bash\'s PIPESTATUS)');
});

test('bin/sandbox, the package\'s bin, starts Node on bin/sandbox.js without NODE_EXTRA_CA_CERTS but for pull and doctor, puts it back for what the CLI starts, and keeps --env-file for sandbox run', (t) => {
  const bin = join(ROOT, 'bin/sandbox');
  if (!existsSync(bin)) { t.skip('native/build/sbx-cli is not built'); return; }
  const dir = tmp();
  // Loaded by Node before the bundle: says what Node's environment holds at its start, and what
  // the CLI's process.env holds at its end (what the programs it starts get).
  writeFileSync(join(dir, 'probe.js'), "const fs = require('fs'); fs.writeSync(2, `CA=${process.env.NODE_EXTRA_CA_CERTS ?? 'unset'}\\n`); process.on('exit', () => fs.writeSync(2, `CA at exit=${process.env.NODE_EXTRA_CA_CERTS ?? 'unset'} ${process.env.SANDBOX_NODE_EXTRA_CA_CERTS ?? ''}\\n`));\n");
  const ca = join(dir, 'ca.pem');
  writeFileSync(ca, '');
  const run2 = (args: string[]) => {
    const r = spawnSync(bin, args, { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', NODE_EXTRA_CA_CERTS: ca, NODE_OPTIONS: `--require=${join(dir, 'probe.js')}` }, timeout: 30_000 });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  writeFileSync(join(dir, 'sandbox.yml'), 'version: 1\nname: e2e-bin\nrootfs: host\ncommand: [/bin/true]\n');
  const plan = run2(['plan']);
  assert.equal(plan.code, 0, plan.err);
  assert.match(plan.err, /^CA=unset$/m, 'plan opens no TLS connection: Node starts without the CA file');
  assert.match(plan.err, new RegExp(`^CA at exit=${ca} $`, 'm'), 'and the CLI puts it back for what it starts');
  assert.match(plan.out, /^plan for e2e-bin/);
  assert.match(run2(['up', '--help']).err, /^CA=unset$/m, 'up restarts itself with the CA file only to reach a registry over TLS (integration: image.test.ts)');
  assert.match(run2(['pull', '--help']).err, new RegExp(`^CA=${ca}$`, 'm'), 'pull reaches a registry at once: the CA file stays');
  assert.equal(run2(['plan', 'missing.yml']).code, 2, 'the exit code passes through');
  const r = run2(['run', '--env-file', 'missing.env', '--rootfs', 'host', '/bin/true']);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /env file \S*missing\.env cannot be read/, 'run\'s --env-file is sandbox\'s, not Node\'s');
  rmSync(dir, { recursive: true });
});

test('up --dry-run of published UDP and TCP ports holds them for the check and says nothing else on stderr (no Node deprecation warning)', (t) => {
  if (process.getuid?.() !== 0) { t.skip('the port check binds as root'); return; }
  const dir = tmp();
  writeFileSync(join(dir, 'ports.yml'), 'version: 1\nname: e2e-dry-ports\nrootfs: host\nports: ["127.0.0.1:18997:53/udp", "127.0.0.1:18998:80"]\ncommand: [/bin/true]\n');
  const r = run(['up', '--dry-run', 'ports.yml'], { cwd: dir, env: { CI: 'true' } });
  assert.equal(r.code, 0, r.err);
  assert.equal(r.err, 'dry run: nothing was changed\n');
  rmSync(dir, { recursive: true });
});

test('up --dry-run prints the plan it would apply on stdout, no ticks, and changes nothing', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'dry.yml'), 'version: 1\nname: e2e-dry-run\ncommand: [x]\n');
  const r = run(['up', '--dry-run', 'dry.yml'], { cwd: dir, env: { CI: 'true' } });
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^plan for /);
  for (const stage of ['1. rootfs', '5. network', '9. exec']) assert.ok(r.out.includes(stage), `${stage} in ${r.out}`);
  assert.match(r.out, /install the default seccomp filter/);
  assert.equal(r.out, run(['plan', 'dry.yml'], { cwd: dir }).out, 'the same plan as sandbox plan');
  assert.equal(r.err, 'dry run: nothing was changed\n');
  assert.doesNotMatch(r.out + r.err, /✔|❯/);
  assert.equal(existsSync('/run/sandbox/e2e-dry-run'), false);
  assert.equal(existsSync('/sys/fs/cgroup/memory/sandbox/e2e-dry-run') || existsSync('/sys/fs/cgroup/sandbox/e2e-dry-run'), false);
  rmSync(dir, { recursive: true });
});

test('up -- CMD with no FILE: the sandbox.yml of the folder runs CMD; the first word after -- is never a file', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'sandbox.yml'), 'version: 1\nname: e2e-dashdash\nrootfs: host\nnetwork: none\ncommand: [/bin/false]\n');
  for (const args of [['up', '--dry-run', '--', 'echo', 'hi'], ['up', '--dry-run', '--name', 'e2e-dd2', '--', 'echo', 'hi'], ['up', '--name=e2e-dd3', '--dry-run', '--', 'echo', 'hi']]) {
    const r = run(args, { cwd: dir });
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.err}`);
    assert.match(r.out, /run echo hi\b/, r.out);
  }
  // A FILE before -- is still the file.
  const f = run(['up', '--dry-run', 'sandbox.yml', '--', 'echo', 'hi'], { cwd: dir });
  assert.equal(f.code, 0, f.err);
  assert.match(f.out, /run echo hi\b/);
  if (process.getuid?.() === 0) {
    const r = run(['up', '-q', '--', 'echo', 'hi'], { cwd: dir });
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'hi\n');
  }
  rmSync(dir, { recursive: true });
});

test('doctor prints the host, and which lines of a file it cannot apply', () => {
  const r = run(['doctor']);
  assert.equal(r.code, 0, r.err);
  for (const k of ['kernel', 'privilege', 'cgroups', 'user namespaces', 'seccomp', 'native engine']) assert.match(r.out, new RegExp(`^${k} `, 'm'));
  const ok = run(['doctor', 'samples/locked-down.yml']);
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /samples\/locked-down\.yml: this host can apply every line/);
  const dir = tmp();
  writeFileSync(join(dir, 'far.yml'), 'version: 1\ncommand: [x]\nresources: {cpuset: "0-63"}\n');
  const far = run(['doctor', 'far.yml'], { cwd: dir });
  assert.equal(far.code, 0);
  assert.match(far.err, /far\.yml:3:21: warning: `cpuset` names CPU 63, and this host has CPUs 0-/);
});

// Issue 22: `--json` on some commands and `--format json` on others. Each command that prints
// data takes both, and they print the same.
test('every command that prints data takes both --json and --format json, with the same output', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'a.yml'), 'version: 1\nname: e2e-fmt\ncommand: [x]\nnetwork: none\n');
  writeFileSync(join(dir, 'b.yml'), 'version: 1\nname: e2e-fmt\ncommand: [x]\ncap_add: [NET_ADMIN]\n');
  const cases: [string[], number][] = [
    [['validate', 'a.yml'], 0], [['plan', 'a.yml'], 0], [['audit', 'a.yml'], 0], [['diff', 'a.yml', 'b.yml'], 1],
    [['doctor'], 0], [['doctor', 'a.yml'], 0], [['version'], 0], [['ps', '-a'], 0], [['images'], 0],
    // up prints data only with --dry-run: the plan, as plan --json.
    [['up', '--dry-run', 'a.yml'], 0],
  ];
  for (const [args, code] of cases) {
    const a = run([...args, '--json'], { cwd: dir });
    const b = run([...args, '--format', 'json'], { cwd: dir });
    assert.equal(a.code, code, `${args.join(' ')} --json: ${a.err}`);
    assert.equal(b.code, code, `${args.join(' ')} --format json: ${b.err}`);
    assert.doesNotThrow(() => JSON.parse(a.out), `${args.join(' ')} --json prints JSON: ${a.out}`);
    // ps, images: what another sandbox does meanwhile may differ; the rest is the same bytes.
    if (!['ps', 'images', 'doctor'].includes(args[0]!)) assert.equal(a.out, b.out, args.join(' '));
    else {
      const [x, y] = [JSON.parse(a.out), JSON.parse(b.out)];
      assert.equal(Array.isArray(x), Array.isArray(y));
      if (!Array.isArray(x)) assert.deepEqual(Object.keys(x), Object.keys(y));
    }
  }
  // top and inspect name a sandbox: both spellings are accepted (no usage error), and say there is none.
  for (const cmd of ['top', 'inspect']) for (const f of [['--json'], ['--format', 'json']]) {
    const r = run([cmd, 'e2e-no-such-sandbox', ...f]);
    assert.equal(r.code, 1, r.err);
    assert.doesNotMatch(r.err, /unknown option/);
  }
  // Two different formats at once is a usage error.
  const both = run(['audit', 'a.yml', '--json', '--format', 'sarif'], { cwd: dir });
  assert.equal(both.code, 1);
  assert.match(both.err, /--json and --format sarif ask for two formats; give one/);
  rmSync(dir, { recursive: true });
});

test('version: sandbox, Node, the libsbx ABI, libseccomp and the kernel', () => {
  const r = run(['version']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^sandbox {5}\d+\.\d+\.\d+\nnode {8}\d+\.\d+\.\d+\nlibsbx {6}ABI \d+ \(.*libsbx\.so\)\nlibseccomp {2}\d+\.\d+\.\d+\nkernel {6}\S+ \S+\n$/);
  const j = JSON.parse(run(['version', '--json']).out);
  assert.equal(j.node, process.versions.node);
  assert.equal(typeof j.libsbx.abi, 'number');
  assert.match(j.libseccomp, /^\d+\.\d+\.\d+$/);
  assert.equal(j.kernel.split(' ')[0], release());
});

test('completion: bash, zsh and fish scripts that their shells accept, made from the commands', (t) => {
  const has = (sh: string) => spawnSync('sh', ['-c', `command -v ${sh}`]).status === 0;
  const script = (sh: string) => { const r = run(['completion', sh]); assert.equal(r.code, 0, r.err); return r.out; };
  const dir = tmp();
  const bash = script('bash');
  writeFileSync(join(dir, 'c.bash'), bash);
  const n = spawnSync('bash', ['-n', join(dir, 'c.bash')], { encoding: 'utf8' });
  assert.equal(n.status, 0, n.stderr);
  // Completing as bash would: commands, an option's choices, sandbox names from `sandbox ps -aq`.
  const complete = (...words: string[]) => spawnSync('bash', ['-c', `source ${join(dir, 'c.bash')}
sandbox() { [[ "$1 $2" == "ps -aq" ]] && printf 'web\\nlimits\\n'; }
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _sandbox; echo "\${COMPREPLY[*]}"`], { encoding: 'utf8' }).stdout.trim();
  assert.equal(complete('sandbox', 'ver'), 'version');
  assert.ok(complete('sandbox', '').split(' ').includes('completion'));
  assert.equal(complete('sandbox', 'up', '--progress', ''), 'auto tty plain quiet');
  assert.equal(complete('sandbox', 'logs', ''), 'web limits');
  assert.equal(complete('sandbox', 'completion', ''), 'bash zsh fish');
  assert.equal(complete('sandbox', 'image', ''), 'prune');
  assert.match(complete('sandbox', 'ps', '--'), /--json/);
  assert.match(complete('sandbox', 'logs', '--'), /--denials/);
  assert.equal(run(['completion', 'tcsh']).code, 1);
  for (const [sh, args] of [['zsh', ['-n']], ['fish', ['--no-execute']]] as const) {
    const text = script(sh);
    assert.match(text, sh === 'zsh' ? /^#compdef sandbox\n/ : /^# fish completion/);
    assert.ok(text.includes('--progress') && text.includes('ps -aq'), sh);
    if (!has(sh)) { if (process.env.SANDBOX_MUST_WORK === '1') assert.fail(`${sh} is not installed`); t.diagnostic(`${sh} not installed: its syntax is not checked`); continue; }
    writeFileSync(join(dir, `c.${sh}`), text);
    const c = spawnSync(sh, [...args, join(dir, `c.${sh}`)], { encoding: 'utf8' });
    assert.equal(c.status, 0, `${sh}: ${c.stderr}`);
    // Loaded as each shell loads it: zsh registers _sandbox for sandbox; fish completes from it.
    const env = { ...process.env, HOME: dir, XDG_CONFIG_HOME: dir, XDG_DATA_HOME: dir };
    if (sh === 'zsh') {
      const z = spawnSync('zsh', ['-f', '-c', `autoload -Uz compinit && compinit -u -d ${dir}/.zcd; source ${dir}/c.zsh; print -r -- \${_comps[sandbox]}; whence -w _sandbox_up _sandbox_image_prune`], { encoding: 'utf8', env });
      assert.equal(z.stdout, '_sandbox\n_sandbox_up: function\n_sandbox_image_prune: function\n', z.stderr);
    } else {
      const f = (line: string) => spawnSync('fish', ['--no-config', '-c', `source ${dir}/c.fish; complete -C ${JSON.stringify(line)}`], { encoding: 'utf8', env }).stdout.split('\n').filter(Boolean).map((l) => l.split('\t')[0]);
      assert.deepEqual(f('sandbox up --progress '), ['auto', 'plain', 'quiet', 'tty']);
      assert.deepEqual(f('sandbox ver'), ['version']);
      assert.deepEqual(f('sandbox image '), ['prune']);
    }
  }
  rmSync(dir, { recursive: true });
});
