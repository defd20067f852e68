// Who the command is (`hostname`, `user`, `group_add`, `umask`): the identity stage, applied by
// the child in its namespaces.
import { findStep } from '../steps';
import type { Compilation } from './context';

/** 7. identity. */
export function identitySteps(ctx: Compilation): void {
  const { spec, host, add, steps, ns } = ctx;
  const rootless = host.rootless;
  // A joined uts namespace is given the hostname only when the file says one (as runc sets it there).
  if (ns('uts').mode === 'private' || (ns('uts').mode === 'join' && spec.hostname.src !== 'default')) add('identity', 'hostname', 'hostname', `set the hostname to ${spec.hostname.value}`, spec.hostname.src, { hostname: spec.hostname.value });
  const u = spec.process.user;
  const groups = spec.process.groups.map((g) => g.value);
  const inherited = rootless !== undefined && findStep(steps, 'idmap')?.args.tool === 'write';
  if (inherited) add('identity', 'user:groups', 'user.groups', 'keep your own supplementary groups: a one-id map denies setgroups, so they cannot be dropped (inside they show as nobody)', spec.userns?.src ?? 'default', { groups, inherited });
  else add('identity', 'user:groups', 'user.groups', groups.length ? `set supplementary groups to ${groups.join(', ')}` : 'clear supplementary groups', spec.process.groups[0]?.src ?? 'default', { groups });
  add('identity', 'user:ids', 'user.ids', `run as user ${u.user}, group ${u.group ?? '(the user\'s)'}`, u.src, { user: u.user, group: u.group ?? null });
  add('identity', 'umask', 'umask', `set the umask to ${spec.process.umask.value.toString(8).padStart(4, '0')}`, spec.process.umask.src, { umask: spec.process.umask.value });
}
