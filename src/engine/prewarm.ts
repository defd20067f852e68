// Started by `up` once the plan is made, as the engine loads, in the CLI process, as root. On cgroup v1 the
// first write to a cgroup.procs in a while waits for an RCU grace period in the kernel (about
// 10 ms: the writer side of cgroup_threadgroup_rwsem, taken under cgroup_mutex, so a mkdir of a
// cgroup waits too); one in the next few tens of ms does not. So the CLI writes its own PID into
// the cgroup it is already in (a move to where it is: nothing changes), on libuv's thread pool,
// while the engine loads and runs its preflight (about 15 ms); the cgroup's mkdir and the child's
// attach, soon after, find the grace period passed. Earlier (at parse) the window has closed again. On v2
// the child is born in its cgroup and nothing is written.
import { closeSync, openSync, readFileSync, write } from 'node:fs';
import { join } from 'node:path';
import type { HostFeatures } from '../plan/types';

export function prewarmCgroupAttach(host: HostFeatures): void {
  const cg = host.cgroup;
  if (cg.layout === 'v2' || cg.layout === 'none' || host.rootless) return;
  const controller = ['memory', 'pids'].find((c) => cg.mounts[c]);
  if (!controller) return;
  let own: string | undefined;
  try { own = readFileSync('/proc/self/cgroup', 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[1]?.split(',').includes(controller))?.[2]; } catch { return; }
  if (own === undefined) return;
  // Opened here and written by one thread-pool request, so that the write starts at once, not
  // after the next turn of the event loop.
  let fd: number;
  try { fd = openSync(join(cg.mounts[controller]!, own, 'cgroup.procs'), 'w'); } catch { return; }
  write(fd, String(process.pid), () => { try { closeSync(fd); } catch { /* closed */ } });
}
