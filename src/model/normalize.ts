// UserConfig → SandboxSpec. The one place where defaults live and short forms are expanded: one
// module per section of the file (src/model/sections/), each owning its keys' defaults, composed
// here. Pure: the caller's environment, home folder and env-file contents are parameters.
import type { UserConfig } from '../config/types';
import { applyImage } from './image';
import type { SandboxSpec } from './types';
import type { NormalizeContext, SpecProblem } from './sections/context';
import type { SpecInputs } from './sections/inputs';
import { normalizeIdentity } from './sections/identity';
import { normalizeRoot } from './sections/root';
import { normalizeProcess } from './sections/process';
import { networkMode, normalizeNetwork } from './sections/network';
import { normalizeMounts } from './sections/mounts';
import { normalizeResources } from './sections/resources';
import { normalizeCapabilities } from './sections/capabilities';
import { normalizeSecurity } from './sections/security';
import { normalizeKernel } from './sections/kernel';
import { normalizePaths } from './sections/paths';

// What other folders import from here, wherever it lives now.
export { resolveHostPath, type FileRead, type NormalizeContext, type SpecProblem } from './sections/context';
export type { CliValue, SpecInputs } from './sections/inputs';
export { gatherPathFacts, type PathFs } from './sections/paths';
export { parseSize } from './size';
export { imageOf } from './sections/root';
export { parseDuration, restartPolicy, shellSplit, signalNumber } from './sections/process';
export { parseCpus } from './sections/resources';
export { capName } from './sections/capabilities';
export { seccompShownPath } from './sections/security';

export function normalize(cfg: UserConfig, ctx: NormalizeContext, inputs: SpecInputs = {}): { spec: SandboxSpec; problems: SpecProblem[] } {
  const problems: SpecProblem[] = [];
  const problem = (src: SpecProblem['src'], code: string, message: string, severity?: 'warning') => { problems.push({ src, code, message, ...(severity ? { severity } : {}) }); };
  const mode = networkMode(cfg, ctx);
  const { name, hostname, namespaces, userns } = normalizeIdentity(cfg, ctx, inputs, mode);
  const rootfs = normalizeRoot(cfg, ctx, problem);
  const process = normalizeProcess(cfg, ctx, inputs, problem, hostname);
  const network = normalizeNetwork(cfg, ctx, inputs, problem, mode);
  const { mounts, devices, shmSize, mqueue } = normalizeMounts(cfg, ctx, inputs, problem);
  const paths = normalizePaths(cfg, ctx, rootfs, mounts, problem);
  const resources = normalizeResources(cfg, ctx, problem);
  const { capabilities, capsDropped, capSets } = normalizeCapabilities(cfg, ctx, problem);
  const security = normalizeSecurity(cfg, ctx, problem);
  const { rlimits, sysctls } = normalizeKernel(cfg, ctx, problem);
  const spec: SandboxSpec = {
    version: 1, name, file: ctx.file, dir: ctx.dir, rootfs, process, hostname, namespaces, userns, shmSize, ...(mqueue ? { mqueue } : {}),
    network, mounts, paths, devices, resources, capabilities, capsDropped, ...(capSets ? { capSets } : {}), security, rlimits, sysctls,
  };
  // The image fills what the file leaves out (command, env, user, workdir, its volumes).
  return { spec: inputs.image && rootfs.type === 'image' ? applyImage(spec, inputs.image) : spec, problems };
}
