// The namespaces (`namespaces`, with the user namespace's uid_map and gid_map): which ones the
// clone makes, joins or shares with the host (the namespaces stage), and the user namespace's id
// maps, written by the CLI on the host before the child goes on (the attach stage).
import { HOST_PROGRAMS } from '../../model/tables';
import type { Compilation } from './context';

/** 3. namespaces: the user namespace first, so that it owns the others. */
export function namespaceSteps(ctx: Compilation): void {
  const { spec, host, add, problems, ns } = ctx;
  for (const n of spec.namespaces) {
    // The clone makes each new namespace, but for cgroup and time ones, which the child unshares
    // itself: a cgroup namespace once it is in its cgroup, a time namespace for its children.
    if (n.mode === 'private') add('namespaces', `ns:${n.type}`, 'ns.new', `new ${n.type} namespace`, n.src, { type: n.type }, undefined, n.type === 'cgroup' || n.type === 'time' ? 'child' : 'host');
    else if (n.mode === 'join') add('namespaces', `ns:${n.type}`, 'ns.join', `join the ${n.type} namespace at ${n.path}`, n.src, { type: n.type, path: n.path });
    else add('namespaces', `ns:${n.type}`, 'ns.host', `share the host's ${n.type} namespace`, n.src, { type: n.type });
    if (n.type === 'user' && n.mode === 'private' && !host.userns) problems.push({ src: n.src, code: 'no-user-namespaces', message: 'this host does not allow user namespaces (see /proc/sys/user/max_user_namespaces)' });
    const [maj = 0, min = 0] = host.kernel.split('.').map((x) => parseInt(x, 10));
    if (n.type === 'time' && n.mode === 'private' && (maj < 5 || (maj === 5 && min < 6))) problems.push({ src: n.src, code: 'no-time-namespace', message: `time namespaces need Linux 5.6 or later; this host runs ${host.kernel}` });
  }
  if (!host.root && ns('user').mode !== 'private') problems.push({ src: ns('user').src, code: 'rootless-needs-userns', message: 'without root, sandbox needs a private user namespace: remove `namespaces.user`, or run as root' });
}

/** 4. attach: the id maps, so that the child is someone in its user namespace before it goes on. */
export function idmapStep(ctx: Compilation): void {
  const { spec, host, add, problems } = ctx;
  const rootless = host.rootless;
  if (!spec.userns) return;
  const { uidMap, gidMap } = spec.userns;
  const fmt = (m: { container: number; host: number; size: number }[]) => m.map((x) => `${x.container}:${x.host}:${x.size}`).join(',');
  let tool: 'newidmap' | 'write' = 'write';
  let why = '';
  if (rootless) {
    // The kernel lets a user write only a one-id map of itself; more goes through the setuid
    // newuidmap/newgidmap, which allow the ranges /etc/subuid and /etc/subgid give the caller.
    const own = (m: typeof uidMap, id: number) => m.length === 1 && m[0]!.host === id && m[0]!.size === 1;
    const oneId = own(uidMap, rootless.uid) && own(gidMap, rootless.gid);
    if (!oneId) {
      tool = 'newidmap';
      for (const [which, maps, ranges, self, helper] of [['uid', uidMap, rootless.subuid, rootless.uid, rootless.newuidmap], ['gid', gidMap, rootless.subgid, rootless.gid, rootless.newgidmap]] as const) {
        const allowed = (m: { host: number; size: number }) => (m.host === self && m.size === 1) || ranges.some((r) => m.host >= r.start && m.host + m.size <= r.start + r.count);
        const bad = maps.find((m) => !allowed(m));
        if (bad) problems.push({ src: spec.userns.src, code: 'rootless-map-not-yours', message: `the ${which} map ${bad.container}:${bad.host}:${bad.size} is outside what ${rootless.user} may map (its own ${which} ${self}${ranges.length ? ` and ${ranges.map((r) => `${r.start}-${r.start + r.count - 1}`).join(', ')} from /etc/sub${which}` : `; /etc/sub${which} gives it no range`}); remove the map to get the default` });
        if (!helper) problems.push({ src: spec.userns.src, code: 'no-newidmap', message: `mapping more than your own ${which} without root needs new${which}map, which is not on PATH; install Debian's ${HOST_PROGRAMS[`new${which}map`].package} package` });
      }
    }
    const noRanges = !rootless.subuid.length || !rootless.subgid.length;
    why = spec.userns.rootless
      ? noRanges
        ? ` (rootless: you, ${rootless.user}, are root inside; /etc/subuid or /etc/subgid gives you no range, so only your own id is mapped and files of other owners show as nobody; \`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${rootless.user}\` adds one)`
        : ` (rootless: you, ${rootless.user}, are root inside; 1 and up are your ranges from /etc/subuid and /etc/subgid${tool === 'newidmap' ? ', written by newuidmap and newgidmap' : ''})`
      : tool === 'newidmap' ? ' (written by newuidmap and newgidmap)' : '';
    if (tool === 'write' && spec.process.groups.length) problems.push({ src: spec.process.groups[0]!.src, code: 'rootless-one-id-groups', message: 'with a one-id map, supplementary groups cannot be set (the kernel requires setgroups to be denied); add a range to /etc/subgid, or remove group_add' });
  }
  add('attach', 'idmap', 'idmap', `map uids ${fmt(uidMap)} and gids ${fmt(gidMap)}${why}`, spec.userns.src, { uid: uidMap, gid: gidMap, tool });
}
