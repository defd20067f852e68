// `paths`: rules resolved from the host's files as the loader saw them (a fake file system here),
// globs, precedence, the protected defaults, each problem at its place, the plan's steps, audit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile } from '../../src/plan/compile';
import { expandGlob } from '../../src/model/sections/glob';
import { audit } from '../../src/audit/score';
import { exposureFacts, locatorOf } from '../../src/audit/facts';
import { diffFacts } from '../../src/audit/diff';
import { HYBRID_HOST, fakeFs, loadText } from '../helpers/load';
import { hostOps } from '../../src/host/teardown';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A project checked out at /project (the file's folder) and a home with credentials. */
const FS = fakeFs([
  '/project/src/main.c', '/project/src/keys/a.key', '/project/src/keys/.b.key', '/project/src/keys/readme.md', '/project/docs/',
  '/project/.git/hooks/', '/project/.git/config', '/project/.bashrc', '/project/.env', '/project/secrets/',
  '/home/user/.ssh/id_ed25519', '/home/user/.aws/credentials', '/home/user/.gitconfig', '/home/user/proj/',
  '/etc/shadow', '/srv/tool/',
]);
const HEAD = 'version: 1\nrootfs: host\ncommand: [x]\n';
const load = (text: string) => loadText(text, { fs: FS });
const planOf = (text: string) => {
  const r = load(text);
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), []);
  return compile(r.spec!, HYBRID_HOST).plan;
};
const said = (text: string) => load(text).diagnostics.map((d) => `${d.line}:${d.col} ${d.severity} ${d.code}`);
const pathSteps = (text: string) => planOf(text).steps.filter((s) => /^(path|deny|hide|protect|pin):/.test(s.id)).map((s) => `${s.id} ${s.kind} ${typeof s.source === 'object' ? s.source.line : s.source}`);

test('globs: * ? [...] within a name, ** at any depth, dot files too; `dir/**` is the folder; nothing else read', () => {
  const g = (p: string) => expandGlob(p, FS).matches;
  assert.deepEqual(g('/project/src/keys/*.key'), ['/project/src/keys/.b.key', '/project/src/keys/a.key']);
  assert.deepEqual(g('/project/src/keys/?.key'), ['/project/src/keys/a.key']);
  assert.deepEqual(g('/project/src/keys/[!a]*'), ['/project/src/keys/.b.key', '/project/src/keys/readme.md']);
  assert.deepEqual(g('/project/**/*.key'), ['/project/src/keys/.b.key', '/project/src/keys/a.key']);
  assert.deepEqual(g('/project/src/**'), ['/project/src']);
  assert.deepEqual(g('/project/nothing/*'), []);
  assert.deepEqual(g('/project/src/[ab]'), []);
});

test('each rule becomes a step at its line: read_write and read_only binds among the volumes by depth, deny masked after pivot_root', () => {
  const plan = planOf(`${HEAD}paths:\n  read_write: [.]\n  read_only: [./docs]\n  deny: [./.env, ./secrets]\n`);
  const ids = plan.steps.map((s) => s.id);
  const step = (id: string) => plan.steps.find((s) => s.id === id)!;
  assert.deepEqual({ kind: step('path:/project').kind, args: step('path:/project').args }, { kind: 'mount.bind', args: { source: '/project', target: '/project', readOnly: false, recursive: true, propagation: 'rprivate', flags: ['nosuid', 'nodev'] } });
  const docs = step('path:/project/docs');
  assert.equal(docs.kind === 'mount.bind' && docs.args.readOnly, true);
  assert.ok(ids.indexOf('path:/project') < ids.indexOf('path:/project/docs') && ids.indexOf('path:/project/docs') < ids.indexOf('pivot'));
  assert.deepEqual(step('deny:/project/.env').args, { path: '/project/.env' });
  assert.equal(step('deny:/project/secrets').kind, 'mount.mask');
  assert.ok(ids.indexOf('pivot') < ids.indexOf('deny:/project/.env'));
  assert.deepEqual([step('path:/project').source, step('deny:/project/secrets').source], [{ file: 'sandbox.yml', line: 5, col: 16 }, { file: 'sandbox.yml', line: 7, col: 18 }]);
  // The writable folder's git hooks, git config and .bashrc stay read-only, by default.
  for (const p of ['.git/hooks', '.git/config', '.bashrc']) {
    const s = step(`protect:/project/${p}`);
    assert.equal(s.kind, 'mount.readonly');
    assert.equal(s.source, 'default');
    assert.match(s.title, /keep .* read-only: in a writable host folder, .* on the host later/);
  }
  // The home is not visible: no credential to hide.
  assert.ok(!ids.some((i) => i.startsWith('hide:')));
});

test('precedence: the most specific rule wins; of two on one path the stricter; a path named as it is beats a glob', () => {
  // A read_write folder inside a denied one: the denied folder is covered before pivot_root, so the bind lands on top.
  assert.deepEqual(pathSteps(`${HEAD}paths:\n  deny: [./src]\n  read_write: [., ./src/keys]\n`).filter((s) => !/^(protect|pin):/.test(s)), [
    'path:/project mount.bind 6', 'path:/project/src mount.tmpfs 5', 'path:/project/src/keys mount.bind 6', 'deny:/project/src mount.readonly 5',
  ]);
  // Without a rule showing /project, the denied folder is not in the sandbox at all: only its rule's folder is bound.
  assert.deepEqual(said(`${HEAD}paths:\n  deny: [./src]\n  read_write: [./src/keys]\n`), ['5:10 warning path-not-in-sandbox']);
  // Ties go to the stricter: deny > read_only > read_write.
  assert.deepEqual(pathSteps(`${HEAD}paths:\n  read_write: [./docs]\n  read_only: [./docs]\n`), ['path:/project/docs mount.bind 6']);
  assert.deepEqual(planOf(`${HEAD}paths:\n  read_write: [./docs]\n  read_only: [./docs]\n`).steps.find((s) => s.id === 'path:/project/docs')!.args, planOf(`${HEAD}paths:\n  read_only: [./docs]\n`).steps.find((s) => s.id === 'path:/project/docs')!.args);
  assert.deepEqual(pathSteps(`${HEAD}paths:\n  read_write: [.]\n  read_only: [./docs]\n  deny: [./docs]\n`).filter((s) => s.includes('/docs')), ['deny:/project/docs mount.mask 7']);
  // A glob hides every key; the file named as it is is read-only instead.
  assert.deepEqual(pathSteps(`${HEAD}paths:\n  read_write: [./src]\n  deny: ['./src/keys/*.key']\n  read_only: [./src/keys/a.key]\n`), [
    'path:/project/src mount.bind 5', 'path:/project/src/keys/a.key mount.bind 7', 'deny:/project/src/keys/.b.key mount.mask 6',
  ]);
});

test('a deny glob says at each match that it is expanded as the sandbox starts (a later match is not hidden); a path named as it is does not', () => {
  const steps = planOf(`${HEAD}paths:\n  read_write: [./src]\n  deny: ['./src/keys/*.key', ./src/keys/readme.md]\n`).steps;
  const title = (id: string) => steps.find((s) => s.id === id)!.title;
  assert.match(title('deny:/project/src/keys/a.key'), /: `\.\/src\/keys\/\*\.key`, a match as the sandbox starts: a file made later that matches it is not hidden$/);
  assert.doesNotMatch(title('deny:/project/src/keys/readme.md'), /not hidden/);
});

test('credentials are hidden wherever the home is visible, unless a rule names them; a rule that shows one is an audit finding', () => {
  const home = `${HEAD}volumes: ['~:/home/user:ro']\n`;
  const steps = planOf(home).steps;
  const hides = steps.filter((s) => s.id.startsWith('hide:'));
  assert.deepEqual(hides.map((s) => [s.id, s.kind, s.source]), [['hide:/home/user/.ssh', 'mount.mask', 'default'], ['hide:/home/user/.aws', 'mount.mask', 'default']]);
  assert.match(hides[0]!.title, /the caller's credentials \(~\/\.ssh\)/);
  // Through a read rule too, on the host's root: the home bound at its own path.
  assert.deepEqual(pathSteps(`${HEAD}paths:\n  read_only: ['~']\n`), ['path:/home/user mount.bind 5', 'hide:/home/user/.ssh mount.mask default', 'hide:/home/user/.aws mount.mask default']);
  // Named by a rule: no default; audit says SBX120 at the rule's line.
  const text = `${HEAD}paths:\n  read_only: ['~', '~/.ssh']\n`;
  assert.deepEqual(pathSteps(text), ['path:/home/user mount.bind 5', 'path:/home/user/.ssh mount.bind 5', 'hide:/home/user/.aws mount.mask default']);
  const r = load(text);
  const facts = exposureFacts(compile(r.spec!, HYBRID_HOST).plan, r.spec!, locatorOf('sandbox.yml', {}, () => ({ line: 1, col: 1 })));
  const found = audit(facts).findings.filter((f) => f.id.startsWith('SBX12'));
  assert.deepEqual(found.map((f) => `${f.id} ${f.at.line}:${f.at.col}`), ['SBX120 5:20']);
  // A read_write rule naming the git hooks: SBX121.
  const w = load(`${HEAD}paths:\n  read_write: [., ./.git/hooks]\n`);
  const wf = exposureFacts(compile(w.spec!, HYBRID_HOST).plan, w.spec!, locatorOf('sandbox.yml', {}, () => ({ line: 1, col: 1 })));
  assert.deepEqual(audit(wf).findings.filter((f) => f.id.startsWith('SBX12')).map((f) => `${f.id} ${f.at.line}:${f.at.col}`), ['SBX121 5:19']);
});

test('a denied path that does not exist yet: a placeholder made on the host before the clone (a folder for a trailing /), undone after, and masked', () => {
  const plan = planOf(`${HEAD}paths:\n  read_write: [.]\n  deny: [./new.env, ./cache/]\n`);
  const made = plan.steps.filter((s) => s.kind === 'path.placeholder');
  assert.deepEqual(made.map((s) => [s.id, s.stage, s.side, s.args, s.undo]), [
    ['placeholder:/project/new.env', 'rootfs', 'host', { path: '/project/new.env', type: 'file' }, { kind: 'path.placeholder.remove', args: { path: '/project/new.env', type: 'file' } }],
    ['placeholder:/project/cache', 'rootfs', 'host', { path: '/project/cache', type: 'dir' }, { kind: 'path.placeholder.remove', args: { path: '/project/cache', type: 'dir' } }],
  ]);
  assert.match(plan.steps.find((s) => s.id === 'deny:/project/new.env')!.title, /it does not exist yet: \/dev\/null over the placeholder made before the clone/);
  assert.match(plan.steps.find((s) => s.id === 'deny:/project/cache')!.title, /an empty read-only tmpfs over the placeholder/);
});

test('diff: a protected path or a hidden credential that goes is looser; a deny added is tighter', () => {
  const facts = (text: string) => { const r = load(text); return exposureFacts(compile(r.spec!, HYBRID_HOST).plan, r.spec!, locatorOf('sandbox.yml', {}, () => ({ line: 1, col: 1 }))); };
  const base = facts(`${HEAD}paths:\n  read_write: [.]\n  read_only: ['~']\n`);
  const looser = facts(`${HEAD}paths:\n  read_write: [., ./.git/hooks]\n  read_only: ['~', '~/.ssh']\n`);
  const d = diffFacts(base, looser);
  const line = (c: { kind: string; effect: string; text: string }) => `${c.effect} ${c.kind} ${c.text}`;
  assert.ok(d.changes.some((c) => c.effect === 'looser' && c.kind.startsWith('protected-path') && c.text.includes('/project/.git/hooks')), d.changes.map(line).join('\n'));
  assert.ok(d.changes.some((c) => c.effect === 'looser' && c.kind.startsWith('masked-path') && c.text.includes('/home/user/.ssh')), d.changes.map(line).join('\n'));
  const tighter = diffFacts(base, facts(`${HEAD}paths:\n  read_write: [.]\n  read_only: ['~']\n  deny: [./src]\n`));
  assert.ok(tighter.changes.some((c) => c.effect === 'tighter' && c.text.includes('/project/src')), tighter.changes.map(line).join('\n'));
});

test('a path the sandbox shows at two places is denied (and protected) at both', () => {
  assert.deepEqual(pathSteps(`${HEAD}volumes: ['./src:/src']\npaths:\n  read_write: [.]\n  deny: [./src/keys/a.key]\n`).filter((s) => !/^(protect|pin):/.test(s)), [
    'path:/project mount.bind 6', 'deny:/src/keys/a.key mount.mask 7', 'deny:/project/src/keys/a.key mount.mask 7',
  ]);
  // A read rule under a volume is applied where the volume shows it, and at its own path where a rule shows that.
  assert.deepEqual(pathSteps(`${HEAD}volumes: ['./src:/src']\npaths:\n  read_write: [.]\n  read_only: [./src/keys]\n`).filter((s) => !/^(protect|pin):/.test(s)), [
    'path:/project mount.bind 6', 'path:/src/keys mount.bind 7', 'path:/project/src/keys mount.bind 7',
  ]);
});

test('a writable bind volume gets the protected defaults too, where the sandbox shows it', () => {
  assert.deepEqual(pathSteps(`${HEAD}volumes: ['.:/work']\n`), ['pin:/work/.git mount.bind default', 'protect:/work/.bashrc mount.readonly default', 'protect:/work/.git/hooks mount.readonly default', 'protect:/work/.git/config mount.readonly default']);
  assert.deepEqual(pathSteps(`${HEAD}volumes: ['.:/work:ro']\n`), []);
  // On another root, a rule names a path under a bind volume's folder, and lands under its target.
  assert.deepEqual(pathSteps('version: 1\nrootfs: {type: dir, path: ./root}\ncommand: [x]\nvolumes: [\'.:/work\']\npaths:\n  deny: [./.env]\n  read_only: [./docs]\n').filter((s) => !/^(protect|pin):/.test(s)), ['path:/work/docs mount.bind 7', 'deny:/work/.env mount.mask 6']);
});

test('mistakes are located, each with a way out; warnings for what does nothing', () => {
  assert.deepEqual(said(`${HEAD}paths:\n  read_write: [../elsewhere]\n`), ['5:16 error path-escapes']);
  assert.match(load(`${HEAD}paths:\n  read_write: [../elsewhere]\n`).diagnostics[0]!.message, /write the path as absolute \(\/elsewhere\) or from ~/);
  assert.deepEqual(said(`${HEAD}paths:\n  deny: ['./src/*.pem']\n`), ['5:10 warning path-glob-empty']);
  assert.deepEqual(said(`${HEAD}paths:\n  read_only: [./missing]\n`), ['5:15 error path-missing']);
  assert.deepEqual(said(`${HEAD}paths:\n  read_write: [.]\n  deny: [./nope/secret]\n`), ['6:10 warning path-parent-missing']);
  assert.deepEqual(said(`${HEAD}paths:\n  deny: ['~/.ssh']\n`), ['5:10 warning path-not-in-sandbox']);
  const image = 'version: 1\nimage: busybox\ncommand: [x]\npaths:\n  read_write: [./docs]\n';
  assert.deepEqual(said(image), ['5:16 error path-outside-sandbox']);
  assert.match(load(image).diagnostics[0]!.message, /add a volume such as `\/project\/docs:\/work` .* or use `rootfs: host`/);
  // Against a volume: the same folder with another access; a rule where a volume shows another folder.
  assert.deepEqual(said(`${HEAD}volumes: ['./docs:/docs:ro']\npaths:\n  read_write: [./docs]\n`), ['6:16 error path-contradicts-volume']);
  assert.match(load(`${HEAD}volumes: ['./docs:/docs:ro']\npaths:\n  read_write: [./docs]\n`).diagnostics[0]!.message, /the volume on line 4 mounts it read-only; remove :ro from the volume, or this rule/);
  assert.deepEqual(said(`${HEAD}volumes: ['./docs:/srv']\npaths:\n  read_only: [/srv/tool]\n`), ['6:15 error path-contradicts-volume']);
  assert.deepEqual(said(`${HEAD}volumes: ['./docs:/docs']\npaths:\n  read_write: [./docs]\n`), ['6:16 warning path-rule-redundant']);
  // Every problem at once.
  assert.deepEqual(said(`${HEAD}paths:\n  read_write: [../x, ./missing]\n  deny: ['./src/*.pem']\n`), ['5:16 error path-escapes', '5:22 error path-missing', '6:10 warning path-glob-empty']);
});

test('without the host\'s files (a pure caller), globs match nothing and no default applies; literal rules still plan', () => {
  const r = loadText(`${HEAD}paths:\n  read_write: [.]\n  deny: ['./*.key']\n`);
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(r.spec!.paths.rules.map((x) => `${x.access} ${x.path}`), ['read_write /project']);
});

test('a placeholder is undone only while it is still the empty file or folder the run made', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-placeholder-'));
  try {
    const ops = hostOps(HYBRID_HOST);
    const f = join(dir, 'f'), d = join(dir, 'd'), filled = join(dir, 'filled'), full = join(dir, 'full');
    writeFileSync(f, '');
    mkdirSync(d);
    writeFileSync(filled, 'the host wrote this meanwhile');
    mkdirSync(full);
    writeFileSync(join(full, 'x'), 'x');
    assert.equal(ops.removePlaceholder(f, 'file'), `placeholder ${f}`);
    assert.equal(ops.removePlaceholder(d, 'dir'), `placeholder ${d}`);
    assert.equal(ops.removePlaceholder(filled, 'file'), undefined);
    assert.equal(ops.removePlaceholder(full, 'dir'), undefined);
    assert.equal(ops.removePlaceholder(join(dir, 'gone'), 'file'), undefined);
    assert.deepEqual([existsSync(f), existsSync(d), existsSync(filled), existsSync(full)], [false, false, true, true]);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
