// `paths` for real, from inside a `rootfs: host` sandbox: the workspace writable but its git hooks
// and git config read-only (EROFS), a read_only glob refusing writes, a denied file empty and a
// denied folder empty, a test HOME's ~/.ssh empty where the home is shown, a denied folder that
// holds a writable one, denied paths that do not exist yet (over placeholders, gone after); every
// path step attested; nothing left on the host after.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Verdict } from '../../src/plan/types';
import { hasEngine, isRoot, leftovers, needs, sandbox } from '../helpers/sandbox';

const ready = (t: import('node:test').TestContext) => needs(t, 'root', isRoot) && needs(t, 'the native engine', hasEngine);

/** Each line: `LABEL: what the shell said` (empty when the write worked). */
const SCRIPT = (ws: string, home: string) => [
  `cd ${ws}`,
  'w() { printf "%s: " "$1"; ( echo changed > "$2" ) 2>&1 | sed "s/.*: //" | tr -d "\\n"; echo; }',
  'w hook .git/hooks/pre-commit',
  'w gitconfig .git/config',
  'printf "git-moved: "; ( mv .git .git2 ) 2>&1 | sed "s/.*: //" | tr -d "\\n"; echo',
  'w key-write src/a.key',
  'w bashrc .bashrc',
  'w new new.txt',
  'w deep secrets/out/log.txt',
  'w denied-dir docs/x',
  'w new-denied-dir cache/x',
  'w new-denied .env',
  'echo "env: $(cat .env | wc -c)"',
  'echo "cache: $(ls -A cache | wc -l)"',
  `echo "ssh: $(ls -A ${home}/.ssh | wc -l)"`,
  `echo "known: $(cat ${home}/.gitconfig)"`,
  'echo "secret: $(cat secret.txt | wc -c)"',
  'echo "docs: $(ls -A docs | wc -l)"',
  'echo "secrets: $(ls -A secrets)"',
  'echo "key: $(cat src/a.key)"',
  'echo "shadow: $(cat /etc/shadow | wc -c)"',
].join('\n');

test('paths from inside: hooks and config read-only in a writable workspace, a read_only glob, deny of a file and a folder, ~/.ssh empty, all attested', { timeout: 120_000 }, (t) => {
  if (!ready(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'sbx-paths-'));
  const ws = join(dir, 'ws');
  const home = join(dir, 'home');
  for (const d of ['.git/hooks', 'src', 'docs', 'secrets/out']) mkdirSync(join(ws, d), { recursive: true });
  mkdirSync(join(home, '.ssh'), { recursive: true });
  writeFileSync(join(ws, '.git/config'), '[core]\n');
  writeFileSync(join(ws, '.bashrc'), 'echo hi\n');
  writeFileSync(join(ws, 'src/a.key'), 'KEY-A');
  writeFileSync(join(ws, 'src/b.key'), 'KEY-B');
  writeFileSync(join(ws, 'secret.txt'), 'TOP SECRET');
  writeFileSync(join(ws, 'docs/readme'), 'docs');
  writeFileSync(join(ws, 'secrets/hidden'), 'hidden');
  writeFileSync(join(home, '.ssh/id_ed25519'), 'PRIVATE KEY');
  writeFileSync(join(home, '.gitconfig'), '[user]');
  const file = join(ws, 'sandbox.yml');
  writeFileSync(file, [
    'version: 1', 'name: paths-it', 'rootfs: host', 'network: none',
    'paths:',
    "  read_write: [., ./secrets/out]",
    "  read_only: ['./src/*.key', '~']",
    '  deny: [./secret.txt, ./docs, ./secrets, ./.env, ./cache/, /etc/shadow]',
    `command: [/bin/sh, -c, ${JSON.stringify(SCRIPT(ws, home))}]`, '',
  ].join('\n'));
  const env = { HOME: home };
  try {
    const plan = sandbox(['plan', '--json', file], { env });
    assert.equal(plan.code, 0, plan.err);
    const steps = (JSON.parse(plan.out) as { steps: { id: string; source: unknown }[] }).steps.filter((s) => /^(path|deny|protect|hide|pin):/.test(s.id));
    assert.deepEqual(steps.filter((s) => s.source === 'default').map((s) => s.id).sort(), [`hide:${home}/.ssh`, `pin:${ws}/.git`, `protect:${ws}/.bashrc`, `protect:${ws}/.git/config`, `protect:${ws}/.git/hooks`]);

    const attest = join(dir, 'attest.json');
    const r = sandbox(['up', '-q', '-T', '--attest', attest, file], { env });
    assert.equal(r.code, 0, `${r.err}\n${r.out}`);
    const said = Object.fromEntries(r.out.trim().split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
    assert.deepEqual(said, {
      hook: 'Read-only file system', gitconfig: 'Read-only file system', 'git-moved': 'Device or resource busy', 'key-write': 'Read-only file system', bashrc: 'Read-only file system',
      new: '', deep: '', 'denied-dir': 'Read-only file system', ssh: '0', known: '[user]', secret: '0', docs: '0', secrets: 'out', key: 'KEY-A',
      // Denied paths that did not exist: covered over placeholders; a write to the file goes to the null device.
      'new-denied-dir': 'Read-only file system', 'new-denied': '', env: '0', cache: '0',
      // A file of the host's read-only /etc (rootfs: host), denied.
      shadow: '0',
    });

    // On the host: what the workspace allowed was written, nothing else changed.
    assert.equal(readFileSync(join(ws, 'new.txt'), 'utf8'), 'changed\n');
    assert.equal(readFileSync(join(ws, 'secrets/out/log.txt'), 'utf8'), 'changed\n');
    assert.equal(existsSync(join(ws, '.git/hooks/pre-commit')), false);
    assert.equal(existsSync(join(ws, '.git2')), false);
    assert.equal(readFileSync(join(ws, '.git/config'), 'utf8'), '[core]\n');
    assert.equal(readFileSync(join(ws, 'src/a.key'), 'utf8'), 'KEY-A');
    assert.equal(existsSync(join(ws, 'docs/x')), false);
    // The placeholders are gone with the run: nothing the sandbox wrote there reached the host.
    assert.equal(existsSync(join(ws, '.env')), false);
    assert.equal(existsSync(join(ws, 'cache')), false);
    assert.equal(readFileSync(join(home, '.ssh/id_ed25519'), 'utf8'), 'PRIVATE KEY');

    // Every path step read back from the host through the sandbox's mount table, and verified.
    const verdicts = (JSON.parse(readFileSync(attest, 'utf8')) as { attestation: Verdict[] }).attestation.filter((v) => /^(path|deny|protect|hide|pin):/.test(v.step));
    assert.deepEqual(verdicts.map((v) => v.step).sort(), steps.map((s) => s.id).sort());
    assert.ok(steps.some((s) => s.id === `deny:${ws}/.env`) && steps.some((s) => s.id === `deny:${ws}/cache`));
    assert.deepEqual(verdicts.filter((v) => v.verdict !== 'verified').map((v) => `${v.step}: ${v.verdict} ${v.detail}`), []);
  } finally {
    sandbox(['down', 'paths-it'], { env });
    assert.deepEqual(leftovers('paths-it'), []);
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(dir), 'no mount of the test folder is left');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a path step applied wrongly is caught by the attestation before the command runs; its placeholder goes with the run', { timeout: 120_000 }, (t) => {
  if (!ready(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'sbx-paths-'));
  mkdirSync(join(dir, 'ro'));
  const file = join(dir, 'sandbox.yml');
  // A denied path that does not exist yet: its placeholder goes with the failed run.
  writeFileSync(file, "version: 1\nname: paths-corrupt\nrootfs: host\nnetwork: none\npaths:\n  read_write: [.]\n  read_only: [./ro]\n  deny: [./.env]\ncommand: [/bin/true]\n");
  try {
    const r = sandbox(['up', '-q', '-T', file], { env: { SANDBOX_TEST_CORRUPT: `path:${dir}/ro` } });
    assert.equal(r.code, 125, r.err);
    assert.match(r.err, new RegExp(`path:${dir}/ro`));
    assert.match(r.err, /writable/);
    assert.equal(existsSync(join(dir, '.env')), false, 'the placeholder is removed');
  } finally {
    sandbox(['down', 'paths-corrupt']);
    assert.deepEqual(leftovers('paths-corrupt'), []);
    rmSync(dir, { recursive: true, force: true });
  }
});
