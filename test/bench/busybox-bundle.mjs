// The bundle the start-up benches share, made by the bench process (root) in a scratch folder: a
// copy of the busybox root (writable, so each peer may mount over it) and the config.json that
// `crun spec` writes (Docker-like caps, masked paths, /dev), running ARGS with the namespaces
// sandbox makes (pid, mount, uts, ipc, net, cgroup), so that every peer starts the same thing.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../..');

export function busyboxBundle(prefix, args) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const rootfs = join(dir, 'rootfs');
  cpSync(join(repoRoot, 'samples/rootfs/busybox'), rootfs, { recursive: true, verbatimSymlinks: true });
  execFileSync('crun', ['spec'], { cwd: dir });
  const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  spec.process.terminal = false;
  spec.process.args = args;
  spec.root = { path: rootfs, readonly: false };
  spec.linux.namespaces = ['pid', 'mount', 'uts', 'ipc', 'network', 'cgroup'].map((type) => ({ type }));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
  return { dir, rootfs };
}
