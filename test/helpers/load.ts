// Test helpers: run the pure pipeline on a string, with a fixed environment and host.
import { loadSpec } from '../../src/model/load';
import type { SpecInputs } from '../../src/model/normalize';
import type { HostFeatures } from '../../src/plan/types';
import { resolve } from 'node:path';

export const ROOT = resolve(__dirname, '../../..');

export function loadText(text: string, opts: SpecInputs & { env?: Record<string, string>; file?: string; files?: Record<string, string>; cpus?: number; root?: string[] } = {}) {
  const file = opts.file ?? 'sandbox.yml';
  return loadSpec({
    file, absFile: `/project/${file}`, bytes: Buffer.from(text), env: opts.env ?? {}, home: '/home/user', hostCpus: opts.cpus ?? 2,
    root: opts.root, readFile: (p) => opts.files?.[p],
  }, { command: opts.command, detach: opts.detach, name: opts.name, image: opts.image });
}

/** The host of the development machine: hybrid cgroups, root, merged /usr. */
export const HYBRID_HOST: HostFeatures = {
  kernel: '6.18.0', arch: 'x86_64', cpus: 2, root: true, caps: [], userns: true, seccomp: true, overlayfs: true,
  cgroup: { layout: 'hybrid', controllers: ['memory', 'cpu', 'cpuset', 'pids', 'blkio', 'devices', 'freezer'], swap: true, mounts: { memory: '/sys/fs/cgroup/memory' }, ioWeightFile: 'blkio.weight' },
  rootDirs: ['/usr', '/bin->usr/bin', '/sbin->usr/sbin', '/lib->usr/lib', '/lib64->usr/lib64', '/etc', '/opt'],
  stateRoot: '/run/sandbox',
};

/** A pure cgroup v2 host, as most current distributions. */
export const V2_HOST: HostFeatures = {
  ...HYBRID_HOST,
  cgroup: { layout: 'v2', controllers: ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids'], swap: true, mounts: { unified: '/sys/fs/cgroup' }, ioWeightFile: 'io.weight' },
};
