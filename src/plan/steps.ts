// Making and finding typed steps. A step's side (which process applies it) is decided here, once
// for every kind, so that the engine never guesses it from the kind.
import type { Source } from '../model/types';
import type { Stage, Step, StepArgs, StepKind, StepOf, Undo } from './types';

/** Which process applies each kind: the CLI on the host, or the cloned child. A new kind must be placed. */
const SIDE: Record<StepKind, 'host' | 'child'> = {
  'state.create': 'host', 'rootfs.host': 'host', 'rootfs.dir': 'host', 'rootfs.image': 'host', 'image.note': 'host', 'volume.create': 'host',
  'cgroup.create': 'host', 'cgroup.set': 'host', 'cgroup.attach': 'host', 'idmap': 'host',
  // A new namespace is a flag of the clone, made by the CLI's call (compile places cgroup and time ones in the child, which unshares them).
  'ns.new': 'host', 'ns.host': 'host', 'ns.join': 'child', 'ns.enter': 'child', 'proc.fork': 'child',
  'net.veth': 'host', 'net.nat': 'host', 'net.port': 'host', 'net.usernet': 'host', 'net.hosts': 'host', 'net.resolv': 'host',
  'net.host': 'child', 'net.joined': 'child', 'net.none': 'child', 'net.loopback': 'child', 'net.address': 'child',
  'mount.private': 'child', 'mount.root': 'child', 'mount.link': 'child', 'mount.bind': 'child', 'mount.proc': 'child', 'mount.dev': 'child',
  'dev.node': 'child', 'mount.devpts': 'child', 'console': 'child', 'mount.tmpfs.dev': 'child', 'dev.links': 'child', 'dev.bind': 'child',
  'mount.sys': 'child', 'mount.cgroup': 'child', 'mount.netfile': 'child', 'sysctl': 'child', 'mount.tmpfs': 'child', 'mount.volume': 'child', 'mount.pivot': 'child',
  'mount.mask': 'child', 'mount.readonly': 'child', 'mount.root-readonly': 'child',
  'hostname': 'child', 'user.groups': 'child', 'user.ids': 'child', 'umask': 'child',
  'rlimit': 'child', 'cap.keep': 'child', 'cap.drop': 'child', 'caps.apply': 'child', 'nnp': 'child', 'nnp.off': 'child', 'seccomp': 'child', 'seccomp.off': 'child',
  'fds.close': 'child', 'exec': 'child',
};

export interface StepInit<K extends StepKind> {
  id: string; stage: Stage; kind: K; title: string; source: Source; args: StepArgs[K]; undo?: Undo;
  /** Where the kind's usual side is not this step's: a cgroup or time namespace is unshared by the child. */
  side?: 'host' | 'child';
}

export function makeStep<K extends StepKind>(s: StepInit<K>): Step {
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
