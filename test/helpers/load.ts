// Test helpers: run the pure pipeline on a string, with a fixed environment and host.
import { loadSpec } from '../../src/model/load';
import type { PathFs, SpecInputs } from '../../src/model/normalize';
import type { PathKind } from '../../src/model/types';
import type { HostFeatures } from '../../src/plan/types';
import { resolve } from 'node:path';

export const ROOT = resolve(__dirname, '../../..');

/** A file system of the given paths (a trailing / makes a folder; every parent is a folder), for `paths` rules. */
export function fakeFs(paths: readonly string[]): PathFs {
  const kinds = new Map<string, PathKind>([['/', 'dir']]);
  for (const p of paths) {
    const parts = p.split('/').filter(Boolean);
    parts.forEach((_, i) => { const q = `/${parts.slice(0, i + 1).join('/')}`; if (i < parts.length - 1 || p.endsWith('/')) kinds.set(q, 'dir'); else if (!kinds.has(q)) kinds.set(q, 'file'); });
  }
  return {
    stat: (p) => kinds.get(p.replace(/\/+$/, '') || '/') ?? 'missing',
    list: (d) => (kinds.get(d) === 'dir' ? [...kinds].filter(([q]) => q !== '/' && q.slice(0, q.lastIndexOf('/')) === (d === '/' ? '' : d)).map(([q, k]) => ({ name: q.slice(q.lastIndexOf('/') + 1), dir: k === 'dir' })) : undefined),
  };
}

export function loadText(text: string, opts: SpecInputs & { env?: Record<string, string>; file?: string; files?: Record<string, string>; cpus?: number; root?: string[]; fs?: PathFs } = {}) {
  const file = opts.file ?? 'sandbox.yml';
  return loadSpec({
    file, absFile: `/project/${file}`, bytes: Buffer.from(text), env: opts.env ?? {}, home: '/home/user', hostCpus: opts.cpus ?? 2,
    root: opts.root, readFile: (p) => opts.files?.[p], ...(opts.fs ? { paths: opts.fs } : {}),
  }, { command: opts.command, detach: opts.detach, name: opts.name, image: opts.image, rootless: opts.rootless, overrides: opts.overrides });
}

/** The host of the development machine: hybrid cgroups, root, merged /usr. */
export const HYBRID_HOST: HostFeatures = {
  kernel: '6.18.0', arch: 'x86_64', cpus: 2, root: true, caps: [], userns: true, seccomp: true, overlayfs: true,
  cgroup: { layout: 'hybrid', controllers: ['memory', 'cpu', 'cpuset', 'pids', 'blkio', 'devices', 'freezer'], swap: true, mounts: { memory: '/sys/fs/cgroup/memory' }, ioWeightFile: 'blkio.weight' },
  rootDirs: ['/usr', '/bin->usr/bin', '/sbin->usr/sbin', '/lib->usr/lib', '/lib64->usr/lib64', '/etc', '/opt'],
  stateRoot: '/run/sandbox',
  volumes: { root: '/var/lib/sandbox/volumes', existing: [] },
  programs: { ip: '/usr/sbin/ip', nft: '/usr/sbin/nft', newuidmap: '/usr/bin/newuidmap', newgidmap: '/usr/bin/newgidmap', pasta: '/usr/bin/pasta', slirp4netns: '/usr/bin/slirp4netns' },
};

/** A pure cgroup v2 host, as most current distributions. */
export const V2_HOST: HostFeatures = {
  ...HYBRID_HOST,
  cgroup: { layout: 'v2', controllers: ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids'], swap: true, mounts: { unified: '/sys/fs/cgroup' }, ioWeightFile: 'io.weight' },
};

/** The development machine as a user who is not root: user 1000 with Debian's default ranges. */
export const ROOTLESS_HOST: HostFeatures = {
  ...HYBRID_HOST, root: false, stateRoot: '/run/user/1000/sandbox', volumes: { root: '/home/dev/.local/share/sandbox/volumes', existing: [] },
  rootless: {
    uid: 1000, gid: 1000, user: 'dev', subuid: [{ start: 100000, count: 65536 }], subgid: [{ start: 100000, count: 65536 }],
    newuidmap: '/usr/bin/newuidmap', newgidmap: '/usr/bin/newgidmap', pasta: '/usr/bin/pasta', slirp4netns: '/usr/bin/slirp4netns', tun: true,
  },
};

/** A pure cgroup v2 host where systemd delegates user 1000 its user@1000.service subtree. */
export const ROOTLESS_V2_HOST: HostFeatures = {
  ...ROOTLESS_HOST,
  cgroup: { ...V2_HOST.cgroup, controllers: ['cpu', 'memory', 'pids'], delegated: 'user.slice/user-1000.slice/user@1000.service' },
};
