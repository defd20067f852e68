// What a run needs to know, or to hold, before it changes anything on the host, in the CLI
// process: the ids the command runs as, which bind sources are files, the image's overlayfs
// options and the published host ports (taken first, so that a port in use is an error before
// any step). A failure here is the failure of the step it concerns.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { checkUserXattrs, type Store } from '../image/store';
import { runsAsRoot } from '../image/owners';
import type { HostFeatures, Plan, Step, StepOf } from '../plan/types';
import { findStep, stepsOf } from '../plan/steps';
import { reservePort, type PortRule } from './network';
import { resolveIds, type Ids } from './users';

/** A preflight failure: the step it concerns, an errno and what to do. */
export class PreflightError extends Error {
  constructor(readonly step: Step, readonly errno: number, message: string) { super(message); }
}

/** The /etc that names the sandbox's users and groups: an image's is in its top-most layer that has one. */
export function rootEtc(plan: Plan): string {
  const image = findStep(plan.steps, 'rootfs.image');
  const dir = findStep(plan.steps, 'rootfs.dir');
  if (dir) return join(dir.args.path, 'etc');
  if (!image) return '/etc';
  const layers = image.args.layers ?? [];
  return join([...layers].reverse().find((l) => existsSync(join(l, 'etc', 'passwd'))) ?? layers[layers.length - 1] ?? '/nonexistent', 'etc');
}

/** The numeric ids of the plan's user, group and supplementary groups, named in `etc`. */
export function planIds(plan: Plan, etc: string): Ids {
  const ids = findStep(plan.steps, 'user.ids');
  const groups = findStep(plan.steps, 'user.groups');
  if (!ids) throw new Error('internal error: the plan has no user.ids step');
  try { return resolveIds(etc, ids.args.user, ids.args.group, groups?.args.groups ?? []); } catch (e) { throw new PreflightError(ids, 22, (e as Error).message); }
}

/** Bind sources that are files, not folders (the child makes a file to mount them on). */
export function fileSources(plan: Plan): Set<string> {
  const files = new Set<string>();
  for (const s of stepsOf(plan.steps, 'mount.bind')) {
    try { if (!statSync(s.args.source).isDirectory()) files.add(s.args.source); } catch { throw new PreflightError(s, 2, `${s.args.source} does not exist on the host; create it first`); }
  }
  return files;
}

/** An image's overlayfs options: its layers under a private upper layer kept beside the store (not
 * in /run, which is memory). Without root of the host (host.root false), the child mounts it in
 * its own user namespace, where overlayfs reads and writes its whiteout and opaque attributes as
 * user.overlay.* (option userxattr: trusted.* needs root of the host), as the rootless unpack
 * wrote them. */
export function overlayOptions(plan: Plan, store: Store, host: Pick<HostFeatures, 'root'> = { root: runsAsRoot() }): { container: string; layers: string[]; readOnly: boolean; options?: string } {
  const image = findStep(plan.steps, 'rootfs.image');
  const root = findStep(plan.steps, 'mount.root');
  const readOnly = root?.args.fstype === 'overlay' && root.args.readOnly;
  const container = store.containerPath(plan.name);
  const layers = image?.args.layers ?? [];
  if (!layers.length) return { container, layers, readOnly };
  const lower = [...layers].reverse();
  // overlayfs needs two lower layers when it has no upper one.
  if (readOnly && lower.length === 1) lower.push(join(container, 'empty'));
  return { container, layers, readOnly, options: `lowerdir=${lower.join(':')}${readOnly ? '' : `,upperdir=${join(container, 'upper')},workdir=${join(container, 'work')}`}${host.root ? '' : ',userxattr'}` };
}

/** Without root of the host: the store (which holds the image's layers and the sandbox's upper
 * layer) must hold user.* xattrs, or overlayfs cannot read the layers' opaque folders nor write
 * its own. Tried before anything on the host changes; lsetxattr is libsbx's. */
export function checkImageStore(plan: Plan, store: Store, host: Pick<HostFeatures, 'root'>, lsetxattr: (path: string, name: string, value: Buffer) => void): void {
  const image = findStep(plan.steps, 'rootfs.image');
  if (!image || host.root) return;
  try { checkUserXattrs(store.root, lsetxattr); } catch (e) { throw new PreflightError(image, 95, (e as Error).message); }
}

/** Another sandbox and the host ports it holds now (state.ts's heldPorts: none once it has ended). */
export interface PortHolder { name: string; ports: readonly { hostIp: string; hostPort: number; protocol: string }[] }

/** The running sandbox that holds this host port, if one does. nftables DNAT binds no socket, so the
 * bind test of reservePorts cannot see a sandbox's ports: they are read from the others' state.
 * A wildcard address (none, 0.0.0.0, ::) overlaps every address. */
export function portHolder(p: { hostIp: string; hostPort: number; protocol: string }, others: readonly PortHolder[]): { name: string; shown: string } | undefined {
  if (!p.hostPort) return undefined;
  const any = (ip: string) => ip === '' || ip === '0.0.0.0' || ip === '::';
  for (const o of others) {
    const q = o.ports.find((x) => x.hostPort === p.hostPort && x.protocol === p.protocol && (any(x.hostIp) || any(p.hostIp) || x.hostIp === p.hostIp));
    if (q) return { name: o.name, shown: `${q.hostIp ? (q.hostIp.includes(':') ? `[${q.hostIp}]` : q.hostIp) : '*'}:${q.hostPort}/${q.protocol}` };
  }
  return undefined;
}

/** Takes every published host port, in the plan's order; `undo` gets each release. A port that a
 * running sandbox of `others` publishes is refused first, naming it. */
export async function reservePorts(plan: Plan, undo: (() => void | Promise<void>)[], started: (s: Step) => void, others: readonly PortHolder[] = []): Promise<{ step: StepOf<'net.port'>; rule: PortRule; hold: { close(): Promise<void> } }[]> {
  const out = [];
  for (const step of stepsOf(plan.steps, 'net.port')) {
    const a = step.args;
    const holder = portHolder(a, others.filter((o) => o.name !== plan.name));
    if (holder) {
      started(step);
      throw new PreflightError(step, 98, `port ${holder.shown} is published by running sandbox "${holder.name}"; stop it with sandbox stop ${holder.name}, or pick another host port`);
    }
    try {
      const hold = await reservePort(a);
      undo.push(() => hold.close());
      out.push({ step, rule: { hostIp: a.hostIp, hostPort: hold.port, containerPort: a.containerPort, protocol: a.protocol }, hold });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      started(step);
      throw new PreflightError(step, code === 'EADDRINUSE' ? 98 : 99, code === 'EADDRINUSE'
        ? `host port ${a.hostPort}/${a.protocol}${a.hostIp ? ` on ${a.hostIp}` : ''} is already in use (by another program or sandbox); pick another host port`
        : `host address ${a.hostIp} cannot be used: ${(e as Error).message}`);
    }
  }
  return out;
}
