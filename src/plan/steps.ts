// Making and finding typed steps. A step's side (which process applies it) is decided here, once
// for every kind, so that the engine never guesses it from the kind: the host's handlers
// (engine/host-steps.ts) and the child's encoder (engine/ops.ts) are typed from this one table.
import type { Source } from '../model/types';
import type { Stage, Step, StepArgs, StepKind, StepOf, Undo } from './types';

/** Which process applies each kind: the CLI on the host, or the cloned child. A new kind must be
 * placed here, once; the engine's tables over HostKind and ChildKind then fail to compile until
 * the kind has its handler on that side. */
export const SIDE = {
  'state.create': 'host', 'rootfs.host': 'host', 'rootfs.dir': 'host', 'rootfs.image': 'host', 'image.note': 'host', 'volume.create': 'host', 'path.placeholder': 'host',
  'cgroup.create': 'host', 'cgroup.set': 'host', 'cgroup.attach': 'host', 'idmap': 'host',
  // A new namespace is a flag of the clone, made by the CLI's call (compile places cgroup and time ones in the child, which unshares them).
  'ns.new': 'host', 'ns.host': 'host', 'ns.join': 'child', 'ns.enter': 'child', 'proc.fork': 'child',
  'net.veth': 'host', 'net.nat': 'host', 'net.port': 'host', 'net.usernet': 'host', 'net.hosts': 'host', 'net.resolv': 'host',
  // The egress rules and default are applied by sbx-egress and the wall, which the CLI starts and loads on the host.
  'net.egress.rule': 'host', 'net.egress.default': 'host', 'net.egress.start': 'host', 'net.egress.wall': 'host',
  'net.host': 'child', 'net.joined': 'child', 'net.none': 'child', 'net.loopback': 'child', 'net.address': 'child',
  'mount.private': 'child', 'mount.root': 'child', 'mount.link': 'child', 'mount.bind': 'child', 'mount.proc': 'child', 'mount.dev': 'child',
  'dev.node': 'child', 'mount.devpts': 'child', 'console': 'child', 'mount.tmpfs.dev': 'child', 'mount.mqueue': 'child', 'dev.links': 'child', 'dev.bind': 'child', 'dev.make': 'child',
  'mount.sys': 'child', 'mount.cgroup': 'child', 'mount.netfile': 'child', 'sysctl': 'child', 'mount.tmpfs': 'child', 'mount.volume': 'child', 'mount.pivot': 'child',
  'mount.mask': 'child', 'mount.readonly': 'child', 'mount.root-readonly': 'child', 'mount.root-propagation': 'child', 'mount.workdir': 'child',
  'hostname': 'child', 'user.groups': 'child', 'user.ids': 'child', 'umask': 'child',
  'rlimit': 'child', 'cap.keep': 'child', 'cap.drop': 'child', 'caps.apply': 'child', 'nnp': 'child', 'nnp.off': 'child', 'seccomp': 'child', 'seccomp.off': 'child', 'landlock': 'child',
  'fds.close': 'child', 'exec': 'child',
} as const satisfies Record<StepKind, 'host' | 'child'>;

/** The kinds whose steps compile may place in the child against their kind's side: a cgroup or a
 * time namespace is unshared by the child itself (the clone makes the others). */
const CHILD_TOO = ['ns.new'] as const satisfies readonly StepKind[];

type KindsOn<S extends 'host' | 'child'> = { [K in StepKind]: (typeof SIDE)[K] extends S ? K : never }[StepKind];
/** The kinds the CLI applies on the host, as root, while the child waits. */
export type HostKind = KindsOn<'host'>;
/** The kinds the cloned child may apply: its own, and those of CHILD_TOO. */
export type ChildKind = KindsOn<'child'> | (typeof CHILD_TOO)[number];
export type HostStep = Extract<Step, { kind: HostKind }>;
export type ChildStep = Extract<Step, { kind: ChildKind }>;

/** A step the CLI applies on the host. */
export function isHostStep(s: Step): s is HostStep { return s.side === 'host'; }
/** A step the cloned child applies (makeStep places only a ChildKind there). */
export function isChildStep(s: Step): s is ChildStep { return s.side === 'child'; }

export interface StepInit<K extends StepKind> {
  id: string; stage: Stage; kind: K; title: string; source: Source; args: StepArgs[K]; undo?: Undo;
  /** Where the kind's usual side is not this step's: a cgroup or time namespace is unshared by the child. */
  side?: 'host' | 'child';
}

export function makeStep<K extends StepKind>(s: StepInit<K>): Step {
  if (s.side !== undefined && s.side !== SIDE[s.kind] && !(CHILD_TOO as readonly StepKind[]).includes(s.kind)) throw new Error(`internal error: a ${s.kind} step cannot be applied by the ${s.side === 'host' ? 'host' : 'child'}`);
  const step: StepOf<K> = { id: s.id, stage: s.stage, kind: s.kind, side: s.side ?? SIDE[s.kind], args: s.args, title: s.title, source: s.source, ...(s.undo ? { undo: s.undo } : {}) };
  // A StepOf<K> is one member of the union for every K; TypeScript cannot see that for a generic K
  // (a correlated union), so this one widening is asserted here, where StepInit<K> ties kind and args.
  return step as Step;
}

/** The first step of a kind, typed. */
export function findStep<K extends StepKind>(steps: readonly Step[], kind: K): Extract<Step, { kind: K }> | undefined {
  return steps.find((s): s is Extract<Step, { kind: K }> => s.kind === kind);
}

/** Every step of a kind, typed. */
export function stepsOf<K extends StepKind>(steps: readonly Step[], kind: K): Extract<Step, { kind: K }>[] {
  return steps.filter((s): s is Extract<Step, { kind: K }> => s.kind === kind);
}
