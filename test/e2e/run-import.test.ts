// sandbox run and sandbox import as a user runs them: the file import writes and its plan, run
// --plan and --save giving one plan, errors located on the command line, up's -e/-v/-p in the
// plan, and a Compose file given where a sandbox file belongs. Nothing here starts a sandbox.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/load';

const BIN = join(ROOT, 'bin/sandbox.js');
const run = (args: string[], cwd: string) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 30_000, input: '' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const tmp = () => mkdtempSync(join(tmpdir(), 'sandbox-e2e-run-'));
type Step = { id: string; stage: string; kind: string; args: unknown; source: unknown };
const bare = (steps: Step[]) => steps.map(({ source: _s, ...rest }) => rest);

test('import -- docker run … writes a commented file that validates, and says what it could not map', () => {
  const dir = tmp();
  const r = run(['import', '--', 'docker', 'run', '-d', '--name', 'web', '-p', '8080:80', '-v', './site:/srv:ro', '--label', 'team=a', '--restart', 'always', '--rootfs', 'host', 'busybox', 'httpd', '-f'], dir);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /command line:1:\d+: warning: not mapped: `--label team=a`: sandbox has no labels/);
  assert.match(r.err, /sandbox: wrote web\.yml \(3 comments where the meaning differs\)/);
  const text = readFileSync(join(dir, 'web.yml'), 'utf8');
  assert.match(text, /^# yaml-language-server: \$schema=\/.*\/schema\/sandbox\.schema\.json\n#\n# Imported by `sandbox import` from: docker run -d --name web/);
  assert.match(text, /\nversion: 1\nname: web\nrootfs: host\ncommand: \[busybox, httpd, -f\]\ndetach: true\n/);
  assert.match(text, /restart: always # `--restart always`: PID 1 inside the sandbox runs the command again/);
  assert.match(text, /- 8080:80 # published on every address of this host/);
  const p = run(['plan', 'web.yml'], dir);
  assert.equal(p.code, 0, p.err);
  assert.match(p.out, /bind .*\/site on \/srv read-only|\/site.*\/srv/);
  // It is not replaced without --force; -o - prints it.
  assert.equal(run(['import', '--', 'docker', 'run', '--name', 'web', 'busybox'], dir).code, 1);
  const o = run(['import', '-o', '-', '--', 'docker', 'run', '--name', 'web', 'busybox'], dir);
  assert.equal(o.code, 0, o.err);
  assert.match(o.out, /\nversion: 1\nname: web\nimage: busybox\n$/);
});

test('import of a Compose service; several services and none named lists them; an unknown flag is a usage error', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'compose.yml'), 'services:\n  web:\n    image: nginx\n    ports: ["127.0.0.1:8080:80"]\n    healthcheck: {test: [CMD, "true"]}\n    read_only: true\n  db:\n    image: postgres\n');
  // Without a file named, the folder's Compose file.
  const none = run(['import'], dir);
  assert.equal(none.code, 2);
  assert.match(none.err, /compose\.yml:1:1: error: compose\.yml has 2 services \(web, db\); name the one to import/);
  const r = run(['import', 'compose.yml', 'web', '-o', 'deploy/web.yml'], dir);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /compose\.yml:5:5: warning: not mapped: `healthcheck`: sandbox has no health checks/);
  assert.match(readFileSync(join(dir, 'deploy/web.yml'), 'utf8'), /\nname: web\nimage: nginx\nports: \[127\.0\.0\.1:8080:80\]\nsecurity:\n  read_only: true\n/);
  const bad = run(['import', '--', 'docker', 'run', '--gpus', 'all', '--frobnicate', '--privileged', 'img'], dir);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /command line:1:23: error: `--frobnicate` is not a docker run flag that sandbox knows/);
  assert.match(bad.err, /error: `--privileged` gives the command every capability/);
  assert.match(bad.err, /warning: not mapped: `--gpus all`/);
  assert.equal(existsSync(join(dir, 'img.yml')), false);
});

test('run: a mistyped flag is refused with the flag it most likely meant; a cluster with an unknown letter applies none of its letters', () => {
  const dir = tmp();
  const r = run(['run', '--rmm', '--nmae', 'web', 'busybox', 'true'], dir);
  assert.equal(r.code, 1);
  assert.match(r.err, /command line:1:13: error: `--rmm` is not a docker run flag that sandbox knows \(nor --nmae\) \(did you mean `--rm`\?\)/);
  assert.match(r.err, /command line:1:19: error: `--nmae` is not a docker run flag that sandbox knows \(nor --rmm\) \(did you mean `--name`\?\)/);
  // Docker's own single-dash habit from find(1): `-name x` is not -n -a -m -e, and nothing of it is applied.
  const single = run(['run', '-rm', '-name', 'web', 'busybox', 'true'], dir);
  assert.equal(single.code, 1);
  assert.match(single.err, /command line:1:13: error: `-rm` is not a docker run flag that sandbox knows \(nor -name\) \(did you mean `--rm`\?\)/);
  assert.match(single.err, /command line:1:17: error: `-name` is not a docker run flag that sandbox knows \(nor -rm\) \(did you mean `--name`\?\)/);
  assert.doesNotMatch(single.err, /not mapped|memory/);
  // No guess where nothing is close, nor from a short cluster of letters.
  assert.doesNotMatch(run(['run', '--frobnicate', 'busybox'], dir).err, /did you mean/);
  assert.doesNotMatch(run(['run', '-ix', 'busybox'], dir).err, /did you mean/);
});

test('run without --name, as docker run: a name no sandbox of the caller has (NAME-2 beside NAME), shown by --plan; --save keeps the image\'s', (t) => {
  if (process.getuid?.() !== 0) { t.skip('needs root, to run the CLI as a user of its own'); return; }
  // A user's own state root (XDG_RUNTIME_DIR/sandbox) in which a sandbox named sleep is kept.
  const dir = tmp();
  chmodSync(dir, 0o755);
  const xdg = join(dir, 'xdg');
  mkdirSync(join(xdg, 'sandbox', 'sleep'), { recursive: true });
  spawnSync('chown', ['-R', '12345:12345', xdg]);
  spawnSync('chmod', ['-R', '0700', xdg]);
  const asUser = (args: string[]) => {
    const r = spawnSync('setpriv', ['--reuid=12345', '--regid=12345', '--clear-groups', 'env', `XDG_RUNTIME_DIR=${xdg}`, `HOME=${xdg}`, 'NO_COLOR=1', process.execPath, BIN, ...args], { cwd: '/', encoding: 'utf8', timeout: 30_000, input: '' });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  const plan = asUser(['run', '--plan', '--json', '--network', 'none', '--rootfs', 'host', 'sleep', '1']);
  assert.equal(plan.code, 0, plan.err);
  assert.equal((JSON.parse(plan.out) as { name: string }).name, 'sleep-2');
  mkdirSync(join(xdg, 'sandbox', 'sleep-2'));
  assert.equal((JSON.parse(asUser(['run', '--plan', '--json', '--network', 'none', '--rootfs', 'host', 'sleep', '1']).out) as { name: string }).name, 'sleep-3');
  // A name given is kept (and refused at run time if taken); a saved file has the image's name.
  assert.equal((JSON.parse(asUser(['run', '--plan', '--json', '--name', 'sleep', '--network', 'none', '--rootfs', 'host', 'sleep', '1']).out) as { name: string }).name, 'sleep');
  const saved = asUser(['run', '--save', '-', '--network', 'none', '--rootfs', 'host', 'sleep', '1']);
  assert.match(saved.out, /\nname: sleep\n/);
});

test('run --plan and run --save: the same plan; run\'s steps cite the command line, the saved file\'s its lines', () => {
  const dir = tmp();
  const line = ['--rm', '-p', '127.0.0.1:8080:8000', '-e', 'GREETING=hi $USER', '-m', '256m', '--rootfs', 'host', 'python3', '-m', 'http.server', '8000'];
  const p = run(['run', '--plan', '--json', ...line], dir);
  assert.equal(p.code, 0, p.err);
  const planned = JSON.parse(p.out) as { name: string; steps: Step[] };
  assert.equal(planned.name, 'python3');
  const mem = planned.steps.find((s) => s.id === 'cgroup:memory')!;
  // At the `-m` of `sandbox run --plan --json … -m 256m`, as the shell would quote the line.
  const shown = `sandbox run --plan --json --rm -p 127.0.0.1:8080:8000 -e 'GREETING=hi $USER' -m 256m`;
  assert.deepEqual(mem.source, { file: 'command line', line: 1, col: shown.indexOf(' -m ') + 2 });
  const s = run(['run', '--save', 'deploy/py.yml', ...line], dir);
  assert.equal(s.code, 0, s.err);
  assert.match(s.err, /sandbox: wrote deploy\/py\.yml/);
  const text = readFileSync(join(dir, 'deploy/py.yml'), 'utf8');
  assert.match(text, /Written by `sandbox run --save` from: sandbox run --rm -p/);
  assert.match(text, /GREETING: hi \$\$USER/);
  const f = run(['plan', '--json', 'deploy/py.yml'], dir);
  assert.equal(f.code, 0, f.err);
  const filed = JSON.parse(f.out) as { steps: Step[] };
  assert.deepEqual(bare(filed.steps), bare(planned.steps));
  assert.deepEqual((filed.steps.find((x) => x.id === 'cgroup:memory')!.source as { file: string }).file, 'deploy/py.yml');
  // The text plan says where each value came from.
  const t = run(['run', '--plan', ...line], dir);
  assert.match(t.out, /← command line:1:\d+/);
});

test('run: a problem is shown on the command line; -it without a terminal is refused as docker run refuses it', () => {
  const dir = tmp();
  const r = run(['run', '--plan', '-p', '99999:80', '--rootfs', 'host', 'true'], dir);
  assert.equal(r.code, 2);
  assert.match(r.err, /^command line:1:20: error: `99999:80`: 99999 is not a port: ports go from 1 to 65535\n> 1 \| sandbox run --plan -p 99999:80 --rootfs host true\n {4}\| {20}\^/m);
  const it = run(['run', '-it', '--rootfs', 'host', 'sh'], dir);
  assert.equal(it.code, 1);
  assert.match(it.err, /the input device is not a TTY/);
  const no = run(['run', '-d'], dir);
  assert.equal(no.code, 1);
  assert.match(no.err, /name an image \(as docker run does\), or `--rootfs host`/);
});

test('run --plan takes --json and --format json; up --dry-run takes them too and prints plan --json\'s plan', () => {
  const dir = tmp();
  const line = ['-p', '127.0.0.1:38291:8000', '-m', '256m', '--rootfs', 'host', 'python3', '-m', 'http.server', '8000'];
  const j = run(['run', '--plan', '--json', ...line], dir);
  assert.equal(j.code, 0, j.err);
  const f = run(['run', '--plan', '--format', 'json', ...line], dir);
  assert.equal(f.code, 0, f.err);
  const eq = run(['run', '--plan', '--format=json', ...line], dir);
  assert.equal(eq.code, 0, eq.err);
  const planned = JSON.parse(j.out) as { name: string; steps: Step[] };
  assert.deepEqual(bare((JSON.parse(f.out) as { steps: Step[] }).steps), bare(planned.steps));
  assert.deepEqual(bare((JSON.parse(eq.out) as { steps: Step[] }).steps), bare(planned.steps));
  assert.ok(planned.steps.some((s) => s.id === 'cgroup:memory'));
  // --format text is the plan as text; another word, or two formats, is refused at its column.
  const t = run(['run', '--plan', '--format', 'text', ...line], dir);
  assert.equal(t.code, 0, t.err);
  assert.match(t.out, /← command line:1:\d+/);
  const bad = run(['run', '--plan', '--format', 'yaml', ...line], dir);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /^command line:1:20: error: `--format yaml`: write --format json or --format text/m);
  const two = run(['run', '--plan', '--json', '--format', 'text', ...line], dir);
  assert.equal(two.code, 1);
  assert.match(two.err, /`--json` and `--format text` ask for two formats; give one/);

  writeFileSync(join(dir, 'web.yml'), 'version: 1\nname: w\nrootfs: host\ncommand: [python3, -m, http.server, "8000"]\nports: ["127.0.0.1:38291:8000"]\n');
  const plan = run(['plan', '--json', 'web.yml'], dir);
  assert.equal(plan.code, 0, plan.err);
  const expected = bare((JSON.parse(plan.out) as { steps: Step[] }).steps);
  for (const flags of [['--json'], ['--format', 'json'], ['--format=json']]) {
    const u = run(['up', '--dry-run', ...flags, 'web.yml'], dir);
    assert.equal(u.code, 0, u.err);
    const got = JSON.parse(u.out) as { name: string; steps: Step[] };
    assert.equal(got.name, 'w');
    assert.deepEqual(bare(got.steps), expected);
    assert.match(u.err, /dry run: nothing was changed/);
  }
  // Without --dry-run up prints no JSON: refused before anything is set up.
  const noDry = run(['up', '--json', 'web.yml'], dir);
  assert.equal(noDry.code, 1);
  assert.match(noDry.err, /^sandbox: up prints JSON only with --dry-run/m);
  assert.equal(noDry.out, '');
  const upTwo = run(['up', '--dry-run', '--json', '--format', 'text', 'web.yml'], dir);
  assert.equal(upTwo.code, 1);
  assert.match(upTwo.err, /--json and --format text ask for two formats/);
});

test('up -e/-v/-p (and plan\'s): the plan shows them as the command line\'s', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'web.yml'), 'version: 1\nname: w\ncommand: [busybox, httpd, -f]\nports: ["127.0.0.1:8080:80"]\nenv: {A: file}\n');
  const args = ['web.yml', '-p', '127.0.0.1:9090:80', '-e', 'A=cli', '-v', './d:/d:ro'];
  const p = run(['plan', '--json', ...args], dir);
  assert.equal(p.code, 0, p.err);
  const steps = (JSON.parse(p.out) as { steps: Step[] }).steps;
  const port = steps.filter((s) => s.kind === 'net.port');
  assert.equal(port.length, 1);
  assert.match(port[0]!.id, /9090/);
  // `sandbox plan --json web.yml -p …`: at the -p.
  assert.deepEqual(port[0]!.source, { file: 'command line', line: 1, col: 'sandbox plan --json web.yml '.length + 1 });
  const mount = steps.find((s) => s.stage === 'mounts' && JSON.stringify(s.args).includes(`"${join(dir, 'd')}"`));
  assert.ok(mount, 'the mount of ./d, from the current folder');
  const env = JSON.stringify(steps.find((s) => s.kind === 'exec')!.args);
  assert.match(env, /A=cli/);
  // up checks the host first: a -v source is looked for from the current folder.
  const missing = run(['up', '--dry-run', ...args], dir);
  assert.equal(missing.code, 125);
  assert.match(missing.err, /^command line:1:60: error: the bind source .*\/d does not exist on the host; .*relative paths on the command line start at the current folder/m);
  mkdirSync(join(dir, 'd'));
  const r = run(['up', '--dry-run', ...args], dir);
  assert.equal(r.code, 0, r.err);
  // The plan up would apply, on stdout.
  assert.match(r.out, /9090/);
  const bad = run(['up', '--dry-run', 'web.yml', '-p', '127.0.0.1:99999:80'], dir);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /^command line:1:30: error: `127\.0\.0\.1:99999:80`: 99999 is not a port: ports go from 1 to 65535\n> 1 \| sandbox up --dry-run web\.yml -p 127\.0\.0\.1:99999:80/m);
});

test('a Compose file given to validate or up: try sandbox import', () => {
  const dir = tmp();
  writeFileSync(join(dir, 'docker-compose.yml'), 'services:\n  web:\n    image: nginx\n');
  for (const cmd of ['validate', 'plan', 'up']) {
    const r = run([cmd, 'docker-compose.yml'], dir);
    assert.equal(r.code, 2);
    assert.match(r.err, /^docker-compose\.yml:1:1: error: this is a Compose file: try `sandbox import docker-compose\.yml`/);
    assert.doesNotMatch(r.err, /not a known key/);
  }
});
