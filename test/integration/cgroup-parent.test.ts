// cgroup_parent, cgroup_path and device_cgroup_rules as root on this host's real hierarchies (v1 here; the v2 VM runs
// it too): the sandbox's processes read, from inside, the cgroup the file names in
// /proc/self/cgroup (the host's cgroup namespace, so that the whole path shows), and a level that
// was there before the run stays after it while the levels the run made go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroupLayout, hasEngine, isRoot, leftovers, needs, sandbox } from '../helpers/sandbox';

/** The folders of a cgroup path, one per hierarchy (v2: one). */
const dirsOf = (path: string) => (cgroupLayout() === 'v2' ? ['/sys/fs/cgroup'] : readdirSync('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c)).filter((d) => existsSync(join(d, 'cgroup.procs')))).map((r) => join(r, path));

function run(dir: string, name: string, res: string) {
  const file = join(dir, `${name}.yml`);
  writeFileSync(file, `version: 1\nname: ${name}\nrootfs: host\nnetwork: none\nnamespaces: {cgroup: host}\nresources:\n  pids: 64\n  ${res}\ncommand: [cat, /proc/self/cgroup]\n`);
  return sandbox(['up', '-q', file]);
}

test('cgroup_parent (relative and absolute) and cgroup_path: the cgroup read from inside; the levels the run made go, one that was there stays', async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the engine', hasEngine)) return;
  const dir = mkdtempSync(join(tmpdir(), 'sbx-cgp-'));
  const tag = `cgp${process.pid}`;
  const kept = `${tag}-kept`;
  const made: string[] = [];
  try {
    for (const d of dirsOf(kept)) mkdirSync(d);
    const cases: [string, string, string][] = [
      [`${tag}a`, `cgroup_parent: ${tag}-rel`, `/sandbox/${tag}-rel/${tag}a`],
      [`${tag}b`, `cgroup_parent: /${kept}/jobs`, `/${kept}/jobs/${tag}b`],
      [`${tag}c`, `cgroup_path: /${tag}-abs/c1`, `/${tag}-abs/c1`],
    ];
    for (const [name, res, want] of cases) {
      made.push(want);
      const r = run(dir, name, res);
      assert.equal(r.code, 0, r.err);
      const lines = r.out.trim().split('\n');
      // Every line: v1's, one per hierarchy the sandbox joined (pids among them); v2's one line.
      const pids = lines.find((l) => (cgroupLayout() === 'v2' ? l.startsWith('0::') : /^\d+:pids:/.test(l)));
      assert.equal(pids?.split(':')[2], want, r.out);
      assert.deepEqual(leftovers(name), []);
      for (const d of dirsOf(want)) assert.ok(!existsSync(d), `${d} left behind`);
    }
    for (const d of dirsOf(`sandbox/${tag}-rel`)) assert.ok(!existsSync(d), `${d}: the run made it, so it goes`);
    for (const d of dirsOf(`${tag}-abs`)) assert.ok(!existsSync(d), `${d}: the run made it, so it goes`);
    for (const d of dirsOf(`${kept}/jobs`)) assert.ok(!existsSync(d), `${d}: the run made it, so it goes`);
    for (const d of dirsOf(kept)) assert.ok(existsSync(d), `${d} was there before the run: it stays`);

    // A malformed path is refused at its line, before anything is made.
    writeFileSync(join(dir, 'bad.yml'), 'version: 1\nname: bad\nrootfs: host\nresources:\n  cgroup_parent: a/../../etc\ncommand: [true]\n');
    const bad = sandbox(['up', '-q', join(dir, 'bad.yml')]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.err, /bad\.yml:5:\d+.*climbs out/);
  } finally {
    // Only what this test made; removing them also cleans up after a failed assertion above.
    for (const p of [...made, `sandbox/${tag}-rel`, `${kept}/jobs`, kept, `${tag}-abs`]) for (const d of dirsOf(p)) { try { rmdirSync(d); } catch { /* absent */ } }
    rmSync(dir, { recursive: true, force: true });
  }
});

test('device_cgroup_rules: on v1 the sandbox runs with them (devices.list read back by the attestation) and its default /dev still reads; a malformed rule is an error at its line', async (t) => {
  if (!needs(t, 'root', isRoot) || !needs(t, 'the engine', hasEngine)) return;
  const dir = mkdtempSync(join(tmpdir(), 'sbx-dcr-'));
  const name = `dcr${process.pid}`;
  try {
    const file = join(dir, 'd.yml');
    const text = (rules: string) => `version: 1\nname: ${name}\nrootfs: host\nnetwork: none\nnamespaces: {cgroup: host}\nresources:\n  device_cgroup_rules: [${rules}]\n` +
      'command: [sh, -c, "head -c1 /dev/zero | wc -c"]\n';
    writeFileSync(file, text('"c 10:229 r"'));
    const r = sandbox(['up', '-q', file]);
    if (cgroupLayout() === 'v2') {
      // No BPF device program is loaded on v2: refused at the line, before anything is made.
      assert.notEqual(r.code, 0);
      assert.match(r.err, /d\.yml:7:\d+.*BPF device program/);
      return;
    }
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, '1\n', 'the default /dev/zero still reads under deny-all');
    assert.deepEqual(leftovers(name), []);
    writeFileSync(file, text('"c 10:229 r", "c 10 rw"'));
    const bad = sandbox(['up', '-q', file]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.err, /d\.yml:7:\d+: error: `c 10 rw` is not a device rule; write TYPE MAJOR:MINOR ACCESS/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
