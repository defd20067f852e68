// What every section of the compiler is given: the spec, the host's facts, `add` for the next
// step, the steps made so far and the problems found. compile() makes one and hands it to each
// section (one module per section of the file, each owning its steps and its problems), in the
// order of the stages. Pure, like compile.
import type { NsName, NsSpec, SandboxSpec, Source } from '../../model/types';
import type { HostFeatures, Stage, Step, StepArgs, StepKind, Undo } from '../types';

export interface HostProblem {
  src: Source; code: string; message: string;
  /** What only `up` refuses: the plan can still be shown and reviewed. */
  atRun?: boolean;
}

/** Adds the next step of the plan; side only where the kind's usual side is not this step's (plan/steps.ts). */
export type AddStep = <K extends StepKind>(stage: Stage, id: string, kind: K, title: string, source: Source, args: StepArgs[K], undo?: Undo, side?: 'host' | 'child') => void;

export interface Compilation {
  spec: SandboxSpec;
  host: HostFeatures;
  add: AddStep;
  /** The steps added so far, for a section that follows what an earlier one chose (the id map's tool). */
  steps: readonly Step[];
  problems: HostProblem[];
  /** The sandbox's name and its state folder on the host. */
  name: string;
  stateDir: string;
  /** The spec's entry for one namespace (normalize lists every type). */
  ns(type: NsName): NsSpec;
  /** The sandbox's cgroup, relative to the hierarchies' mounts ('' for none: rootless without a
   * delegated subtree), and the controllers it joins. */
  cgroup: { path: string; joined: string[] };
}

/** A size as the plan says it. */
export const mib = (b: number) => (b % 1048576 === 0 ? `${b / 1048576} MiB` : `${b} bytes`);
