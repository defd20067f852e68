// (SandboxSpec, HostFeatures) → Plan. Pure: the same function backs `sandbox plan` and
// `sandbox up`, so the plan a reviewer reads is the one that runs. Each section of the file has
// its module in sections/, which owns its steps and the problems the host has with them; this
// composes them in the order of the stages and checks the ordering rules (order.ts).
import { sha256Hex } from '../util/sha256';
import type { SandboxSpec } from '../model/types';
import { checkOrder } from './order';
import { makeStep } from './steps';
import type { HostFeatures, Plan, Step } from './types';
import type { Compilation, HostProblem } from './sections/context';
import { rootfsSteps } from './sections/root';
import { cgroupAttachStep, cgroupOf, cgroupSteps } from './sections/resources';
import { idmapStep, namespaceSteps } from './sections/namespaces';
import { networkSteps } from './sections/network';
import { mountSteps } from './sections/mounts';
import { pathPlaceholders } from './sections/paths';
import { identitySteps } from './sections/identity';
import { securitySteps } from './sections/security';
import { processSteps } from './sections/process';
import { compileReduced } from './reduced';

export type { HostProblem } from './sections/context';
export { userNetPortCaveat } from './sections/network';
export { volumeData } from './sections/root';

export function describeHost(h: HostFeatures): string {
  return `linux ${h.kernel} ${h.arch}, cgroup ${h.cgroup.layout}${h.cgroup.controllers.length ? ` (${h.cgroup.controllers.join(' ')})` : ''}, ${h.root ? 'root' : h.reduced ? 'rootless, reduced mode (no user namespaces)' : 'rootless'}`;
}

export function compile(spec: SandboxSpec, host: HostFeatures): { plan: Plan; problems: HostProblem[] } {
  const steps: Step[] = [];
  const problems: HostProblem[] = [];
  const name = spec.name.value;
  const ctx: Compilation = {
    spec, host, steps, problems, name, stateDir: `${host.stateRoot}/${name}`,
    add: (stage, id, kind, title, source, args, undo, side) => { steps.push(makeStep({ id, stage, kind, title, source, args, undo, side })); },
    ns: (t) => spec.namespaces.find((n) => n.type === t)!,
    cgroup: cgroupOf(spec, host),
  };
  // Reduced mode: no namespace can be made; the same step kinds, fewer of them (plan/reduced.ts).
  const table = host.reduced ? compileReduced(ctx) : undefined;
  // The nine stages in order; a section may add to several (resources: the cgroup, then the attach).
  if (!table) compileFull(ctx);

  const broken = checkOrder(steps);
  if (broken.length) throw new Error(`internal error: the plan breaks its ordering rules:\n${broken.join('\n')}`);
  const digest = sha256Hex(JSON.stringify(steps.map((s) => [s.id, s.kind, s.args])));
  return { plan: { version: 1, name, digest: `sha256:${digest}`, host: describeHost(host), steps, ...(table ? { reduced: { why: host.reduced!.why, table } } : {}) }, problems };
}

function compileFull(ctx: Compilation): void {
  rootfsSteps(ctx);
  pathPlaceholders(ctx);
  cgroupSteps(ctx);
  namespaceSteps(ctx);
  cgroupAttachStep(ctx);
  idmapStep(ctx);
  networkSteps(ctx);
  mountSteps(ctx);
  identitySteps(ctx);
  securitySteps(ctx);
  processSteps(ctx);
}
