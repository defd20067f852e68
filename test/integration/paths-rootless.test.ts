// `paths` rootless, from inside (issue 25): an unprivileged user's `rootfs: host` workspace in its
// home, writable, with the home shown read-only: the workspace's git hooks and config stay
// read-only, a read_only glob refuses writes, a denied file reads empty and a denied folder shows
// empty, ~/.ssh is empty; every path step attested; nothing of the run left. Small on purpose: it
// is the rootless run the pure cgroup v2 VM pass of .ci/run makes (the root cases are in paths.test.ts).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Verdict } from '../../src/plan/types';
import { hasEngine, isRoot, needs } from '../helpers/sandbox';
import { canMakeUsers, hasUidmap, makeUser, removeAllUsers, sandboxAs } from '../helpers/users';

after(() => removeAllUsers());

/** Each line: `LABEL: what the shell said` (empty when the write worked). */
const SCRIPT = (ws: string, home: string) => [
  `cd ${ws}`,
  'w() { printf "%s: " "$1"; ( echo changed > "$2" ) 2>&1 | sed "s/.*: //" | tr -d "\\n"; echo; }',
  'w hook .git/hooks/pre-commit',
  'w gitconfig .git/config',
  'w key src/a.key',
  'w new new.txt',
  `w home ${home}/x`,
  'echo "env: $(cat .env | wc -c)"',
  'echo "docs: $(ls -A docs | wc -l)"',
  `echo "ssh: $(ls -A ${home}/.ssh | wc -l)"`,
  'echo "src: $(cat src/main.c)"',
].join('\n');

test('rootless paths from inside: hooks, git config and a read_only glob read-only in a writable workspace, a denied file and folder empty, ~/.ssh empty; attested; nothing left', { timeout: 180_000 }, (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the native engine', hasEngine) || !needs(t, 'users and newuidmap', canMakeUsers && hasUidmap)) return;
  const u = makeUser('spr');
  const ws = join(u.home, 'proj');
  const files: Record<string, string> = {
    '.git/config': '[core]\n', '.env': 'TOKEN=1\n', 'docs/secret.md': 'x\n', 'src/main.c': 'int main;\n', 'src/a.key': 'KEY\n',
    '.git/hooks/.keep': '', '../.ssh/id_ed25519': 'PRIVATE\n',
  };
  for (const [f, text] of Object.entries(files)) {
    const p = join(ws, f);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, text);
  }
  // Everything the user's: only the sandbox's rules refuse what it refuses.
  for (const p of ['', '.git', '.git/hooks', '.git/config', '.git/hooks/.keep', '.env', 'docs', 'docs/secret.md', 'src', 'src/main.c', 'src/a.key', '../.ssh', '../.ssh/id_ed25519']) chownSync(join(ws, p), u.uid, u.gid);
  const file = join(ws, 'sandbox.yml');
  writeFileSync(file, ['version: 1', 'name: paths-rl', 'rootfs: host', 'network: none', 'paths:', '  read_write: [.]', "  read_only: ['~', './src/*.key']", '  deny: [./.env, ./docs]',
    `command: [/bin/sh, -c, ${JSON.stringify(SCRIPT(ws, u.home))}]`, ''].join('\n'));
  chownSync(file, u.uid, u.gid);
  const attest = join(ws, 'attest.json');
  const r = sandboxAs(u, ['up', '-q', '-T', '--attest', attest, file]);
  assert.equal(r.code, 0, `${r.err}\n${r.out}`);
  const said = Object.fromEntries(r.out.trim().split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
  assert.deepEqual(said, {
    hook: 'Read-only file system', gitconfig: 'Read-only file system', key: 'Read-only file system', new: '', home: 'Read-only file system',
    env: '0', docs: '0', ssh: '0', src: 'int main;',
  });
  assert.equal(existsSync(join(ws, '.git/hooks/pre-commit')) || existsSync(join(u.home, 'x')), false);
  assert.deepEqual([readFileSync(join(ws, '.git/config'), 'utf8'), readFileSync(join(ws, 'src/a.key'), 'utf8'), readFileSync(join(ws, 'new.txt'), 'utf8')], ['[core]\n', 'KEY\n', 'changed\n']);
  // Each path step read back from the sandbox's mount table before the command ran.
  const verdicts = (JSON.parse(readFileSync(attest, 'utf8')) as { attestation: Verdict[] }).attestation.filter((v) => /^(path|deny|protect|hide):/.test(v.step));
  assert.ok(['deny:', 'protect:', 'hide:'].every((k) => verdicts.some((v) => v.step.startsWith(k))), JSON.stringify(verdicts));
  assert.deepEqual(verdicts.filter((v) => v.verdict !== 'verified'), []);
  assert.equal(existsSync(join(u.runtimeDir, 'sandbox', 'paths-rl')), false);
});
