// The security settings (`ulimits`, `cap_add`, `cap_drop`, `security.no_new_privileges` and
// `seccomp`): the security stage, applied by the child last before exec.
import { DEFAULT_CAPABILITIES } from '../../model/tables';
import { DEFAULT_PROFILE, errnoNameOf, filterProgram, resolveProfile, type SeccompProfile } from '../../model/seccomp';
import type { Compilation } from './context';
import { landlockStep } from './landlock';

// 8. security: rlimits, then capabilities, then no_new_privs, then Landlock, then seccomp last.
// Without no_new_privs a filter or a Landlock domain can only be installed while CAP_SYS_ADMIN is
// held, so then both come before the capabilities are dropped (as runc does for seccomp).
export function securitySteps(ctx: Compilation): void {
  const { spec, host, add, problems } = ctx;
  const u = spec.process.user;
  for (const l of spec.rlimits) add('security', `rlimit:${l.name}`, 'rlimit', `limit ${l.name} to ${l.soft === -1 ? 'unlimited' : l.soft} (hard ${l.hard === -1 ? 'unlimited' : l.hard})`, l.src, { name: l.name, soft: l.soft, hard: l.hard });
  if (!host.reduced) for (const c of spec.capabilities) add('security', `cap:${c.name}`, 'cap.keep', `keep CAP_${c.name}${c.src === 'default' ? ' (the default set)' : ''}`, c.src, { cap: c.name });
  if (!host.reduced) for (const c of spec.capsDropped) add('security', `cap-drop:${c.name}`, 'cap.drop', `drop CAP_${c.name}${(DEFAULT_CAPABILITIES as readonly string[]).includes(c.name) ? '' : ' (not in the default set)'}`, c.src, { cap: c.name });
  const capList = spec.capabilities.map((c) => c.name);
  // What a non-root user holds: only what the file adds by name (cap_add), never the defaults.
  const ambient = spec.capabilities.filter((c) => c.src !== 'default').map((c) => c.name);
  const nnp = spec.security.noNewPrivileges;
  const sc = spec.security.seccomp;
  const sets = spec.capSets && { inheritable: spec.capSets.inheritable.map((c) => c.name), ambient: spec.capSets.ambient.map((c) => c.name) };
  const capsStep = () => add('security', 'caps', 'caps.apply', sets ? setsTitle(capList, sets, u.user) : capsTitle(capList, ambient, u.user), sets ? spec.capSets!.inheritable[0]?.src ?? spec.capSets!.ambient[0]?.src ?? 'default' : 'default', { bounding: capList, ambient, ...(sets ? { sets } : {}) });
  const seccompStep = () => {
    if (sc.value === 'unconfined') { add('security', 'seccomp', 'seccomp.off', 'no seccomp filter: every system call is allowed', sc.src, {}); return; }
    if (!host.seccomp) problems.push({ src: sc.src, code: 'no-seccomp', message: 'this kernel has no seccomp filter support; set `security.seccomp: unconfined` to run without one' });
    const profile = sc.value === 'default' ? DEFAULT_PROFILE : spec.security.seccompProfile;
    if (!profile) throw new Error(`internal error: the seccomp profile ${sc.value} was not loaded`);
    const filter = resolved(profile, capList, host.arch, host.kernel);
    const refused = filter.defaultAction === 'errno' ? `every other fails with ${errnoNameOf(filter.defaultErrno)}` : `every other: ${filter.defaultAction}`;
    add('security', 'seccomp', 'seccomp', `${sc.value === 'default' ? 'install the default seccomp filter (moby\'s default profile)' : `install the seccomp profile ${sc.value}`}: ${filter.allowed} system calls allowed for ${filter.arches.join(', ')}, ${refused}`, sc.src,
      // The filter as the text program libseccomp compiles (one line a rule): plain data, so that
      // the plan, its digest and `sandbox exec` carry exactly the filter that runs.
      { profile: sc.value, allowed: filter.allowed, arches: [...filter.arches], program: [...filter.program] });
  };
  if (host.reduced) {
    // Reduced mode (plan/reduced.ts): the command runs as the caller, who holds no capability to
    // drop, and installs Landlock and seccomp unprivileged, which the kernel allows only under
    // no_new_privs: it is set whatever the file says (the table says so at its line).
    add('security', 'nnp', 'nnp', `set no_new_privs: setuid programs and file capabilities cannot gain privileges${nnp.value ? '' : ' (reduced mode: Landlock and seccomp need it without a privilege)'}`, nnp.src, {});
    landlockStep(ctx);
    seccompStep();
  } else if (nnp.value) {
    capsStep();
    add('security', 'nnp', 'nnp', 'set no_new_privs: setuid programs and file capabilities cannot gain privileges', nnp.src, {});
    landlockStep(ctx);
    seccompStep();
  } else {
    landlockStep(ctx);
    seccompStep();
    capsStep();
    add('security', 'nnp', 'nnp.off', 'leave no_new_privs off: setuid programs and file capabilities can gain privileges, up to the bounding set', nnp.src, {});
  }
}

/** The sets security.capabilities names, as exec leaves them (capabilities(7): root's
 * permitted set is bounding plus inheritable; another uid's is its ambient set). */
interface Resolved { defaultAction: string; defaultErrno: number; allowed: number; arches: readonly string[]; program: readonly string[] }
/** The default profile resolved for a set of capabilities, an architecture and a kernel: a pure
 * function of those, kept for the next compile in this process (a library that starts many
 * sandboxes compiles a plan for each; resolving moby's profile is most of a compile's time). A
 * profile from a file is resolved each time. */
const defaultResolved = new Map<string, Resolved>();
function resolved(profile: SeccompProfile, caps: string[], arch: string, kernel: string): Resolved {
  const key = profile === DEFAULT_PROFILE ? `${[...caps].sort().join(',')} ${arch} ${kernel}` : undefined;
  const kept = key === undefined ? undefined : defaultResolved.get(key);
  if (kept) return kept;
  const f = resolveProfile(profile, { caps, arch, kernel });
  const out: Resolved = { defaultAction: f.defaultAction, defaultErrno: f.defaultErrno, allowed: f.allowed, arches: f.arches, program: filterProgram(f).split('\n').filter(Boolean) };
  if (key !== undefined && defaultResolved.size < 16) defaultResolved.set(key, out);
  return out;
}

function setsTitle(bounding: string[], sets: { inheritable: string[]; ambient: string[] }, user: string | number): string {
  const list = (l: string[]) => (l.length ? l.join(' ') : 'none');
  return `set capabilities: bounding = ${list(bounding)}; inheritable = ${list(sets.inheritable)}; ambient = ${list(sets.ambient)} (security.capabilities); `
    + `after exec, as uid 0: permitted = effective = bounding and inheritable; as any other uid: permitted = effective = ambient — this sandbox runs as ${user === 0 || user === '0' || user === 'root' ? 'uid 0' : `user ${user}`}`;
}

/** The capability sets as the kernel will hold them, for the plan to show. The user may be a
 * name resolved at run time: the child applies the rule that fits the uid it then has. */
function capsTitle(bounding: string[], ambient: string[], user: string | number): string {
  const isRoot = user === 0 || user === '0' || user === 'root';
  const known = isRoot || /^[0-9]+$/.test(String(user));
  const list = (l: string[]) => (l.length ? l.join(' ') : 'none');
  return `set capabilities: bounding = ${list(bounding)}; as uid 0: permitted = effective = the bounding set, inheritable = ambient = none; `
    + `as any other uid: permitted = effective = ambient = ${ambient.length ? `${list(ambient)} (cap_add)` : 'none'}, inheritable = ${ambient.length ? 'the same (the kernel keeps an ambient capability only while it is inheritable)' : 'none'}`
    + (known ? ` — this sandbox runs as ${isRoot ? 'uid 0' : `uid ${user}`}` : ` — the user ${user} is resolved when it runs`);
}
