// The ordering rules of a plan, each with its reason, in one place. compile() asserts them on
// every plan it makes; a violation is a bug in the compiler, never in the user's config.
import { STAGES, type Step } from './types';

export interface OrderRule { name: string; why: string; check(steps: readonly Step[]): string | undefined }

const idx = (steps: readonly Step[], pred: (s: Step) => boolean) => steps.findIndex(pred);
const last = (steps: readonly Step[], pred: (s: Step) => boolean) => { for (let i = steps.length - 1; i >= 0; i--) if (pred(steps[i]!)) return i; return -1; };
const before = (steps: readonly Step[], a: (s: Step) => boolean, b: (s: Step) => boolean, what: string): string | undefined => {
  const la = last(steps, a), fb = idx(steps, b);
  return la >= 0 && fb >= 0 && la > fb ? `${what}: step ${steps[la]!.id} comes after ${steps[fb]!.id}` : undefined;
};
const kind = (k: string) => (s: Step) => s.kind === k;
const prefix = (p: string) => (s: Step) => s.kind.startsWith(p);

export const ORDER_RULES: OrderRule[] = [
  {
    name: 'stages in order',
    why: 'each stage relies on the ones before it (limits exist before the child joins the cgroup, mounts before pivot, and so on)',
    check: (steps) => {
      for (let i = 1; i < steps.length; i++) if (STAGES.indexOf(steps[i]!.stage) < STAGES.indexOf(steps[i - 1]!.stage)) return `${steps[i]!.id} (${steps[i]!.stage}) after ${steps[i - 1]!.id} (${steps[i - 1]!.stage})`;
      return undefined;
    },
  },
  { name: 'unique ids', why: 'ids name steps in events, errors and fault injection', check: (steps) => { const seen = new Set<string>(); for (const s of steps) { if (seen.has(s.id)) return `duplicate id ${s.id}`; seen.add(s.id); } return undefined; } },
  { name: 'exec is last', why: 'nothing runs after the command replaces the setup code', check: (steps) => (steps.filter(kind('exec')).length !== 1 || steps.at(-1)?.kind !== 'exec' ? 'the plan must end with exactly one exec step' : undefined) },
  { name: 'user namespace first', why: 'namespaces created after it are owned by it, so its root can administer them', check: (steps) => { const ns = steps.filter(prefix('ns.')); const u = ns.findIndex((s) => s.kind === 'ns.new' && s.args.type === 'user'); return u > 0 ? 'ns.user is not the first namespace step' : undefined; } },
  { name: 'cgroup created before limits and attach', why: 'limit files exist only once the cgroup does, and the child must be limited before it runs anything', check: (steps) => before(steps, kind('cgroup.create'), (s) => s.kind === 'cgroup.set' || s.kind === 'cgroup.attach', 'cgroup order') },
  { name: 'id maps before the child goes on', why: 'until its maps are written the child is nobody in its user namespace and cannot mount or set its hostname', check: (steps) => before(steps, kind('idmap'), (s) => s.stage === 'network' || s.stage === 'mounts' || s.stage === 'identity', 'id maps') },
  { name: 'mounts private first', why: 'with shared propagation, the sandbox\'s mounts would appear on the host', check: (steps) => { const m = steps.filter((s) => s.stage === 'mounts' && s.kind.startsWith('mount.')); return m.length && m[0]!.kind !== 'mount.private' ? 'the first mount step must make the tree private' : undefined; } },
  { name: 'sysctls before /proc/sys is read-only', why: 'sysctls are written through /proc/sys', check: (steps) => before(steps, kind('sysctl'), (s) => s.kind === 'mount.readonly' && s.args.path === '/proc/sys', 'sysctl') ?? before(steps, kind('mount.proc'), kind('sysctl'), 'sysctl needs /proc') },
  { name: 'volumes before pivot_root', why: 'host paths can be reached only before the old root is detached', check: (steps) => before(steps, (s) => s.kind === 'mount.bind' || s.kind === 'mount.tmpfs' || s.kind === 'mount.volume' || s.kind === 'mount.netfile' || s.kind.startsWith('dev.'), kind('mount.pivot'), 'mounts') },
  { name: 'masked and read-only paths, and the working directory, after pivot_root', why: 'they are resolved inside the new root, so a symlink in it cannot point them at the host (and the working directory is made inside the volumes mounted there)', check: (steps) => before(steps, kind('mount.pivot'), (s) => s.kind === 'mount.mask' || s.kind === 'mount.readonly' || s.kind === 'mount.root-readonly' || s.kind === 'mount.root-propagation' || s.kind === 'mount.workdir', 'masks') },
  { name: 'root read-only last among mounts', why: 'mount points for volumes and masks, and a missing working directory, are created in the root before it becomes read-only', check: (steps) => before(steps, (s) => s.stage === 'mounts' && s.kind !== 'mount.root-readonly', kind('mount.root-readonly'), 'read-only root') },
  { name: 'caps dropped after mounts and user change', why: 'mounting needs CAP_SYS_ADMIN and changing user needs CAP_SETUID', check: (steps) => before(steps, (s) => s.stage === 'mounts' || s.kind.startsWith('user.'), kind('caps.apply'), 'capabilities') },
  { name: 'no_new_privs before seccomp', why: 'a filter can be installed without CAP_SYS_ADMIN only once no_new_privs is set', check: (steps) => before(steps, kind('nnp'), kind('seccomp'), 'no_new_privs') },
  {
    name: 'landlock after the mounts, before seccomp',
    why: 'its paths are opened in the new root once every mount is in place; a seccomp filter may refuse the landlock calls; and the kernel installs a domain only under no_new_privs or while CAP_SYS_ADMIN is held, so without no_new_privs it comes before the capabilities are dropped',
    check: (steps) => before(steps, (s) => s.stage === 'mounts', kind('landlock'), 'landlock') ?? before(steps, kind('landlock'), kind('seccomp'), 'landlock')
      ?? before(steps, kind('nnp'), kind('landlock'), 'landlock needs no_new_privs') ?? (steps.some(kind('nnp.off')) ? before(steps, kind('landlock'), kind('caps.apply'), 'landlock needs CAP_SYS_ADMIN') : undefined),
  },
  { name: 'egress resolver after the sandbox\'s network', why: 'sbx-egress binds its sockets inside the sandbox\'s network namespace, which must exist with its interface (and, rootless, its id maps) first', check: (steps) => before(steps, (s) => s.kind === 'net.veth' || s.kind === 'net.usernet' || s.kind === 'idmap', kind('net.egress.start'), 'egress start') },
  { name: 'egress resolver before resolv.conf', why: 'resolv.conf names 127.0.0.53 only once something answers there', check: (steps) => before(steps, kind('net.egress.start'), kind('net.resolv'), 'egress resolver') },
  { name: 'egress rules before sbx-egress', why: 'the policy sbx-egress is started with is made of the rule steps before it, as the plan lists them', check: (steps) => before(steps, (s) => s.kind === 'net.egress.rule' || s.kind === 'net.egress.default', kind('net.egress.start'), 'egress rules') },
  {
    name: 'egress wall with the NAT table', why: 'the wall\'s table is loaded in net.nat\'s nft transaction, so that the sandbox\'s traffic is never forwarded without it',
    check: (steps) => { const w = idx(steps, kind('net.egress.wall')); return w >= 0 && steps[w - 1]?.kind !== 'net.nat' ? `${steps[w]!.id} does not follow net.nat` : undefined; },
  },
  {
    name: 'seccomp last before exec',
    why: 'the filter refuses calls the setup itself needs (mount, setns, …); without no_new_privs it can only be installed while CAP_SYS_ADMIN is held, so then it comes just before the capabilities are dropped, and only they and the no_new_privs note follow it',
    check: (steps) => {
      const s = idx(steps, (x) => x.kind === 'seccomp');
      if (s < 0) return undefined;
      const after = steps.slice(s + 1).filter((x) => x.stage !== 'exec');
      if (steps.some(kind('nnp.off'))) return after.some((x) => x.kind !== 'caps.apply' && x.kind !== 'nnp.off') ? 'a setup step other than the capabilities follows seccomp' : undefined;
      return after.length ? 'a setup step follows seccomp' : undefined;
    },
  },
];

/** Every broken rule, with its reason. */
export function checkOrder(steps: readonly Step[]): string[] {
  const out: string[] = [];
  for (const r of ORDER_RULES) {
    const bad = r.check(steps);
    if (bad) out.push(`${r.name} (${r.why}): ${bad}`);
  }
  return out;
}
