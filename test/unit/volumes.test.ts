// Named and anonymous volumes through the pure pipeline (normalize, rules, compile, audit, diff),
// and the resolution of a volume's target in an image's layers (which a seed copies from).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compile } from '../../src/plan/compile';
import { findStep, stepsOf } from '../../src/plan/steps';
import { audit } from '../../src/audit/score';
import { diffFacts } from '../../src/audit/diff';
import { anonymousVolumeName } from '../../src/model/image';
import { createVolume, entryIn, listVolumes, removeUnfinished, resolveInLayers } from '../../src/image/volumes';
import { HYBRID_HOST, ROOTLESS_HOST, loadText } from '../helpers/load';
import { factsOf, locked } from '../helpers/audit';

const V = 'version: 1\ncommand: [x]\n';
const load = (yaml: string, opts: Parameters<typeof loadText>[1] = {}) => loadText(V + yaml, opts);
const spec = (yaml: string, opts: Parameters<typeof loadText>[1] = {}) => {
  const r = load(yaml, opts);
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.line}:${d.col} ${d.message}`), []);
  return r.spec!;
};
const image = { config: { User: '1000:1000', Volumes: { '/var/cache/app': {}, '/data': {} } }, layerDirs: ['/store/l1'], digest: 'sha256:abc' };

test('a bare name is a named volume; ./x, ../x, /x and ~/x are binds, as docker run -v reads them', () => {
  const m = spec('volumes: ["data:/a", "./d:/b", "../d:/c", "/d:/d", "~/d:/e", "my.vol_1-x:/f:ro,nocopy,noexec"]\n').mounts;
  assert.deepEqual(m.map((x) => [x.kind, x.kind === 'bind' ? x.source : x.kind === 'volume' ? x.name : '', x.target]), [
    ['volume', 'data', '/a'], ['bind', '/project/d', '/b'], ['bind', '/d', '/c'], ['bind', '/d', '/d'], ['bind', '/home/user/d', '/e'], ['volume', 'my.vol_1-x', '/f'],
  ]);
  const last = m[5]!;
  assert.ok(last.kind === 'volume' && last.readOnly && last.nocopy && !last.external && !last.anonymous);
  assert.deepEqual(last.flags, ['noexec']);
});

test('the long form and named_volumes: name and external as Compose; x- keys ignored; undeclared names allowed', () => {
  const m = spec('volumes:\n  - {type: volume, source: cfg, target: /etc/app, read_only: true, volume: {nocopy: true}}\n  - {type: volume, source: plain, target: /p}\n  - home:/home/app\nnamed_volumes:\n  cfg: {name: shared-cfg, external: true}\n  home:\n  x-note: {anything: 1}\n').mounts;
  assert.deepEqual(m.map((x) => (x.kind === 'volume' ? [x.name, x.target, x.readOnly, x.nocopy, x.external] : [])), [
    ['shared-cfg', '/etc/app', true, true, true], ['plain', '/p', false, false, false], ['home', '/home/app', false, false, false],
  ]);
});

test('volume mistakes are errors at their lines, all at once', () => {
  const r = load('volumes:\n  - "-x:/a"\n  - ./d:/b:nocopy\n  - v1:/c:rshared\nnamed_volumes:\n  "bad name": null\n');
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.line}:${d.col} ${d.code}`), [
    '4:5 invalid-volume-name', '5:5 nocopy-on-bind', '6:5 volume-propagation', '8:3 invalid-volume-name',
  ]);
  // The long form's name is checked by the schema, at the name.
  const long = load('volumes: [{type: volume, source: "a b", target: /d}]\n');
  assert.deepEqual(long.diagnostics.map((d) => `${d.line}:${d.col} ${d.code}`), ['3:34 invalid-value']);
});

test("an image's VOLUME the file does not mount becomes the sandbox's anonymous volume; one it mounts is only noted", () => {
  const r = loadText('version: 1\nname: app\nimage: app:1\nvolumes: ["./d:/data"]\n', { image });
  const m = r.spec!.mounts;
  assert.deepEqual(m.map((x) => [x.kind, x.target, x.kind === 'volume' ? x.anonymous : false]), [['bind', '/data', false], ['volume', '/var/cache/app', true]]);
  const name = anonymousVolumeName('app', '/var/cache/app');
  assert.match(name, /^app-anon-[0-9a-f]{12}$/);
  assert.equal(anonymousVolumeName('app', '/var/cache/app/'), name, 'stable, whatever the spelling of the target');
  const { plan } = compile(r.spec!, HYBRID_HOST);
  const create = stepsOf(plan.steps, 'volume.create');
  assert.deepEqual(create.map((s) => [s.args.name, s.args.anonymous, s.args.seed, s.source]), [[name, true, 'image', 'image']]);
  assert.deepEqual(stepsOf(plan.steps, 'image.note').map((s) => s.title), ['the image declares a volume at /data; the file mounts /project/d there (line 4)']);
  // With --name, another sandbox: another anonymous volume.
  const other = loadText('version: 1\nname: app\nimage: app:1\n', { image, name: 'app2' }).spec!.mounts;
  assert.ok(other.every((x) => x.kind === 'volume' && x.name.startsWith('app2-anon-')));
});

test('the plan: a volume step before the clone, created or existing, and its mount; the path follows the store (rootless: yours)', () => {
  const text = 'name: j\nimage: app:1\nvolumes: ["home:/home/app", "home:/srv/again:ro", "empty:/e:nocopy"]\n';
  const s = loadText('version: 1\n' + text, { image }).spec!;
  const { plan, problems } = compile(s, HYBRID_HOST);
  assert.deepEqual(problems, []);
  const create = stepsOf(plan.steps, 'volume.create').filter((x) => !x.args.anonymous);
  assert.deepEqual(create.map((x) => [x.id, x.stage, x.side, x.args.path, x.args.target, x.args.seed, x.undo?.kind]), [
    ['volume:home', 'rootfs', 'host', '/var/lib/sandbox/volumes/home', '/home/app', 'image', 'volume.remove-new'],
    ['volume:empty', 'rootfs', 'host', '/var/lib/sandbox/volumes/empty', '/e', 'none', 'volume.remove-new'],
  ]);
  assert.match(create[0]!.title, /^volume home on \/home\/app: created and seeded from the image on first use/);
  assert.match(create[1]!.title, /created empty on first use, owned by the sandbox's user \(nocopy\)/);
  assert.deepEqual(create[0]!.source, { file: 'sandbox.yml', line: 4, col: 11 });
  const mounts = stepsOf(plan.steps, 'mount.volume').filter((x) => !x.args.name.includes('-anon-'));
  assert.deepEqual(mounts.map((x) => [x.args.name, x.args.source, x.args.target, x.args.readOnly, x.side]), [
    ['empty', '/var/lib/sandbox/volumes/empty/_data', '/e', false, 'child'],
    ['home', '/var/lib/sandbox/volumes/home/_data', '/home/app', false, 'child'],
    ['home', '/var/lib/sandbox/volumes/home/_data', '/srv/again', true, 'child'],
  ]);
  assert.ok(plan.steps.indexOf(create[0]!) < plan.steps.findIndex((x) => x.stage === 'namespaces'));
  assert.equal(findStep(plan.steps, 'mount.bind'), undefined, 'a volume is not a bind of a host path');
  // Existing: the plan says so; the digest does not change (it is what the steps do, not what the host has).
  const again = compile(s, { ...HYBRID_HOST, volumes: { ...HYBRID_HOST.volumes, existing: ['home'] } }).plan;
  assert.match(findStep(again.steps, 'volume.create')!.title, /^volume home on \/home\/app: exists; used as it is, never seeded again/);
  assert.equal(again.digest, plan.digest);
  // Rootless: the caller's own store.
  const rl = compile(loadText('version: 1\n' + text, { image, rootless: ROOTLESS_HOST.rootless }).spec!, ROOTLESS_HOST).plan;
  assert.equal(findStep(rl.steps, 'volume.create')!.args.path, '/home/dev/.local/share/sandbox/volumes/home');
});

test('an external volume that does not exist is refused by up at its line; the plan still shows it', () => {
  const s = spec('volumes: [cache:/c]\nnamed_volumes:\n  cache: {external: true}\n');
  const { plan, problems } = compile(s, HYBRID_HOST);
  assert.deepEqual(problems.map((p) => [p.code, typeof p.src === 'object' ? p.src.line : p.src, p.atRun]), [['volume-external-missing', 3, true]]);
  const step = findStep(plan.steps, 'volume.create')!;
  assert.equal(step.undo, undefined, 'an external volume is never removed by sandbox');
  assert.match(step.title, /external volume cache on \/c: does not exist/);
  assert.deepEqual(compile(s, { ...HYBRID_HOST, volumes: { ...HYBRID_HOST.volumes, existing: ['cache'] } }).problems, []);
});

test('audit: a named volume is not a host bind (no SBX207); diff shows a volume added (neutral) and made writable (looser)', () => {
  const ids = (text: string) => audit(factsOf(text)).findings.map((f) => f.id);
  assert.ok(!ids(locked({ volumes: 'volumes: ["data:/d"]' })).includes('SBX207'));
  assert.ok(ids(locked({ volumes: 'volumes: ["./data:/d"]' })).includes('SBX207'));
  const added = diffFacts(factsOf(locked({})), factsOf(locked({ volumes: 'volumes: ["data:/d"]' })));
  assert.deepEqual(added.changes.map((c) => [c.kind, c.text, c.effect]), [['volume.added', 'volume data on /d (writable) added', 'neutral']]);
  const writable = diffFacts(factsOf(locked({ volumes: 'volumes: ["data:/d:ro"]' })), factsOf(locked({ volumes: 'volumes: ["data:/d"]' })));
  assert.deepEqual(writable.changes.map((c) => [c.kind, c.effect]), [['volume.writable', 'looser']]);
  const fromBind = diffFacts(factsOf(locked({ volumes: 'volumes: ["./data:/d"]' })), factsOf(locked({ volumes: 'volumes: ["data:/d"]' })));
  assert.deepEqual(fromBind.changes.map((c) => [c.kind, c.effect]).sort(), [['bind.removed', 'tighter'], ['volume.added', 'neutral']]);
});

test("a volume's target is resolved in the image's layers: symlinks inside the image's root, whiteouts, never the host's files", () => {
  const d = mkdtempSync(join(tmpdir(), 'sbx-vol-'));
  try {
    const l1 = join(d, 'l1'), l2 = join(d, 'l2');
    mkdirSync(join(l1, 'var/lib/app'), { recursive: true });
    writeFileSync(join(l1, 'var/lib/app/file'), 'x');
    mkdirSync(join(l1, 'run/real'), { recursive: true });
    mkdirSync(join(l2, 'var'), { recursive: true });
    symlinkSync('/run', join(l2, 'var/run'));          // absolute: inside the image's root
    symlinkSync('../../etc', join(l2, 'var/escape'));  // climbs to the image's root, no further
    symlinkSync('loop', join(l2, 'loop'));
    mkdirSync(join(l1, 'etc'), { recursive: true });
    assert.equal(resolveInLayers([l1, l2], '/var/lib/app'), 'var/lib/app');
    assert.equal(resolveInLayers([l1, l2], '/var/run/real'), 'run/real');
    assert.equal(resolveInLayers([l1, l2], '/var/escape'), 'etc');
    assert.equal(resolveInLayers([l1, l2], '/loop'), undefined, 'a symlink loop ends, not hangs');
    assert.equal(resolveInLayers([l1, l2], '/nothing/here'), undefined);
    assert.ok(entryIn([l1, l2], 'var/lib/app')!.st.isDirectory());
    // A file in an upper layer hides a lower folder and what is below it.
    mkdirSync(join(d, 'l3'));
    writeFileSync(join(d, 'l3', 'var'), 'not a folder');
    assert.equal(entryIn([l1, l2, join(d, 'l3')], 'var/lib/app'), undefined);
  } finally { rmSync(d, { recursive: true, force: true }); }
});

test('a volume is made whole or not at all: one left half-made by a dead process is not a volume, and is swept; a live one is left be', () => {
  const root = mkdtempSync(join(tmpdir(), 'sbx-vols-'));
  try {
    // A pid above pid_max (4194304 at most) runs nowhere.
    mkdirSync(join(root, '.new-half-4194399-abc123', '_data'), { recursive: true });
    mkdirSync(join(root, '.new-live-1-def456'), { recursive: true }); // pid 1 runs: a making in progress
    // The sandbox's user as root inside: the caller itself, rootless or not.
    const uid = 0, gid = 0, rootless = process.geteuid?.() !== 0;
    const made = createVolume({ name: 'whole', root, uid, gid, rootless });
    assert.equal(made.created, true);
    assert.equal(made.info.seeded.from, 'empty');
    assert.equal(createVolume({ name: 'whole', root, uid, gid, rootless }).created, false, 'made once, then used as it is');
    assert.deepEqual(listVolumes(root).map((v) => v.name), ['whole']);
    assert.deepEqual(removeUnfinished(root), ['unfinished volume half']);
    assert.ok(existsSync(join(root, '.new-live-1-def456')));
    assert.throws(() => createVolume({ name: '../x', root, uid, gid, rootless: false }), /is not a volume name/);
  } finally { rmSync(root, { recursive: true, force: true }); }
});
