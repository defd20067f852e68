// The plan: the ordered isolation steps `sandbox up` applies, as data. `sandbox plan` prints it;
// the engine executes it. Pure types, no behaviour.
import type { Source } from '../model/types';

/** The nine stages of DESIGN.md, in the order they run. */
export const STAGES = ['rootfs', 'cgroup', 'namespaces', 'attach', 'network', 'mounts', 'identity', 'security', 'exec'] as const;
export type Stage = (typeof STAGES)[number];

export const STAGE_TITLES: Record<Stage, string> = {
  rootfs: 'prepare the root filesystem',
  cgroup: 'create the cgroup and write the limits',
  namespaces: 'clone new namespaces',
  attach: 'put the child in the cgroup; write uid/gid maps',
  network: 'loopback, the sandbox\'s interface, port maps',
  mounts: 'mounts, then pivot_root',
  identity: 'hostname, user and groups',
  security: 'capabilities, no_new_privs, seccomp, rlimits',
  exec: 'run the command',
};

export interface Step {
  /** Stable across runs and edits elsewhere in the file, e.g. `mount:/data`, `cap:CHOWN`. */
  id: string;
  stage: Stage;
  kind: string;
  args: Record<string, unknown>;
  title: string;
  source: Source;
  /** How the step is reverted, when it changes the host (outside the sandbox's own namespaces). */
  undo?: { kind: string; args: Record<string, unknown> };
}

export interface Plan {
  version: 1;
  name: string;
  /** sha256 of what the steps do (ids, kinds and arguments), independent of titles and lines. */
  digest: string;
  host: string;
  steps: Step[];
}

/** What the host offers; gathered once by the probe and passed in, so compile stays pure. */
export interface HostFeatures {
  kernel: string;
  arch: string;
  cpus: number;
  /** Effective uid 0 in the initial user namespace. */
  root: boolean;
  /** Effective capabilities held by the caller, without CAP_. */
  caps: string[];
  userns: boolean;
  seccomp: boolean;
  overlayfs: boolean;
  cgroup: {
    /** v1: only v1 hierarchies; hybrid: v1 controllers plus an empty v2; v2: unified only. */
    layout: 'v1' | 'hybrid' | 'v2' | 'none';
    /** Controllers the sandbox can use. */
    controllers: string[];
    /** v1: memory.memsw.* exist (swap accounting is on); v2: memory.swap.max exists. */
    swap: boolean;
    /** Where each controller's hierarchy is mounted (v1), or the unified one under 'unified'. */
    mounts: Record<string, string>;
    /** The IO weight file this host has: blkio.weight, or BFQ's blkio.bfq.weight / io.bfq.weight. */
    ioWeightFile?: string;
  };
  /** The host folders `rootfs: host` binds, those that exist here; `/bin->usr/bin` for a symlink. */
  rootDirs: string[];
  /** Where per-sandbox state lives: /run/sandbox for root. */
  stateRoot: string;
}
