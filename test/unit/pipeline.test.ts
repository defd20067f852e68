// The one pipeline to the spec: the command line's overrides and the image's config are inputs of
// normalize, so the rules judge the spec that runs (an image's User included), and compile gets it whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile } from '../../src/plan/compile';
import { stepsOf } from '../../src/plan/steps';
import { HYBRID_HOST, loadText } from '../helpers/load';

const image = { config: { User: '1000:1000', Cmd: ['/bin/app'], WorkingDir: '/srv', Env: ['PATH=/opt/bin:/usr/bin'] }, layerDirs: ['/store/l1'], digest: 'sha256:abc' };
const userns = 'namespaces:\n  user: {uid_map: ["0:100000:1000"], gid_map: ["0:100000:1000"]}\n';

test("the rules see an image's user: outside the user namespace's maps is an error at the image line", () => {
  const r = loadText(`version: 1\nimage: app:1\n${userns}`, { image });
  const d = r.diagnostics.find((x) => x.code === 'uid-not-mapped');
  assert.ok(d, JSON.stringify(r.diagnostics));
  assert.equal(d.line, 2);
  assert.equal(d.col, 8);
  assert.match(d.message, /uid 1000 .*\(from the image\)$/);
  assert.equal(r.spec, undefined);
});

test('without the image in the store the same file is valid: the rules judge what is known', () => {
  const r = loadText(`version: 1\nimage: app:1\n${userns}`);
  assert.deepEqual(r.diagnostics.filter((x) => x.severity === 'error'), []);
});

test("the image's command, workdir and env are the spec's, marked as the image's; the file's own win", () => {
  const r = loadText('version: 1\nimage: app:1\nenv: {A: b}\n', { image });
  const p = r.spec!.process;
  assert.deepEqual(p.args, ['/bin/app']);
  assert.equal(p.argsSrc, 'image');
  assert.deepEqual(p.cwd, { value: '/srv', src: 'image' });
  assert.equal(p.env.find((e) => e.name === 'PATH')!.value, '/opt/bin:/usr/bin');
  assert.equal(typeof p.env.find((e) => e.name === 'A')!.src, 'object');
  const rootfs = r.spec!.rootfs;
  assert.ok(rootfs.type === 'image');
  assert.deepEqual(rootfs.layers, ['/store/l1']);
});

test('up -- CMD, -d and --name are inputs: the spec and the plan carry them, from the command line', () => {
  const r = loadText('version: 1\nname: web\nimage: app:1\nentrypoint: [/e]\ncommand: [c]\n', { image, command: ['sh', '-c', 'echo $M'], detach: true, name: 'web2' });
  const s = r.spec!;
  assert.deepEqual(s.process.args, ['sh', '-c', 'echo $M']);
  assert.equal(s.process.argsSrc, 'cli');
  assert.deepEqual(s.process.detach, { value: true, src: 'cli' });
  assert.deepEqual(s.name, { value: 'web2', src: 'cli' });
  const plan = compile(s, HYBRID_HOST).plan;
  assert.equal(plan.name, 'web2');
  assert.equal(plan.steps.find((x) => x.kind === 'state.create')!.args.path, '/run/sandbox/web2');
  const exec = plan.steps.find((x) => x.kind === 'exec')!;
  assert.equal(exec.source, 'cli');
  assert.equal(exec.args.detach, true);
});

test('a rule that depends on an override sees it: -d with a terminal and stdin warns as in the file', () => {
  const fromFile = loadText('version: 1\ncommand: [sh]\ntty: true\nstdin_open: true\ndetach: true\n');
  const fromCli = loadText('version: 1\ncommand: [sh]\ntty: true\nstdin_open: true\n', { detach: true });
  assert.deepEqual(fromFile.diagnostics.map((d) => d.code), ['detach-interactive']);
  assert.deepEqual(fromCli.diagnostics.map((d) => d.code), ['detach-interactive']);
});

test("shm_size sizes /dev/shm as Compose's key does, cited by the plan; 64 MiB by default; too small is located", () => {
  const step = (text: string) => stepsOf(compile(loadText(text).spec!, HYBRID_HOST).plan.steps, 'mount.tmpfs.dev').find((s) => s.id === 'mount:/dev/shm')!;
  const d = step('version: 1\ncommand: [sh]\n');
  assert.equal(d.args.sizeBytes, 64 * 1048576);
  assert.equal(d.source, 'default');
  const s = step('version: 1\ncommand: [sh]\nshm_size: 1g\n');
  assert.equal(s.args.sizeBytes, 1073741824);
  assert.deepEqual(s.source, { file: 'sandbox.yml', line: 3, col: 11 });
  assert.match(s.title, /1024 MiB tmpfs on \/dev\/shm/);
  const bad = loadText('version: 1\ncommand: [sh]\nshm_size: 0\n');
  assert.deepEqual(bad.diagnostics.map((x) => `${x.line}:${x.col} ${x.code}`), ['3:11 shm-too-small']);
});

test('cap_drop: [ALL] with cap_add: [X]: the plan keeps X and drops the rest, and shows X once', () => {
  const steps = compile(loadText('version: 1\ncommand: [sh]\ncap_drop: [ALL]\ncap_add: [CHOWN]\n').spec!, HYBRID_HOST).plan.steps;
  assert.ok(steps.some((s) => s.id === 'cap:CHOWN'));
  assert.ok(!steps.some((s) => s.id === 'cap-drop:CHOWN'));
  assert.ok(steps.some((s) => s.id === 'cap-drop:KILL'));
  assert.deepEqual(stepsOf(steps, 'caps.apply')[0]!.args.bounding, ['CHOWN']);
});
