// What the kernel is told for the sandbox's processes beyond namespaces: resource limits
// (ulimits; none set by default: the command inherits sandbox's) and namespaced sysctls (none).
import type { UserConfig } from '../../config/types';
import type { RlimitSpec, SandboxSpec, Source } from '../types';
import { RLIMITS } from '../tables';
import { lineOf, own, type NormalizeContext, type Problem } from './context';

export type Kernel = Pick<SandboxSpec, 'rlimits' | 'sysctls'>;

/** `nofile: 1024`, `nofile: "1024:4096"` or `{soft, hard}`; `unlimited` and -1 are no limit. */
function rlimitsOf(cfg: UserConfig, ctx: NormalizeContext, problem: Problem): RlimitSpec[] {
  return Object.entries(cfg.ulimits ?? {}).map(([n, v]) => {
    const src = ctx.where(['ulimits', n]);
    const num = (x: string | number) => (x === 'unlimited' || x === -1 || x === '-1' ? -1 : Number(x));
    let soft: number, hard: number;
    if (typeof v === 'object') { soft = v.soft; hard = v.hard; }
    else { const [a, b = a] = String(v).split(':') as [string, string?]; soft = num(a); hard = num(b!); }
    if (own(RLIMITS, n) === undefined) problem(src, 'unknown-ulimit', `\`${n}\` is not a ulimit`);
    return { name: n, soft, hard, src };
  });
}

/** `sysctls` as NAME=VALUE strings or a mapping; the list form can name one twice, which is an error. */
function sysctlsOf(cfg: UserConfig, ctx: NormalizeContext, problem: Problem): Kernel['sysctls'] {
  const sysctls = (Array.isArray(cfg.sysctls)
    ? cfg.sysctls.map((e, i) => { const k = e.indexOf('='); return { name: e.slice(0, k), value: e.slice(k + 1), src: ctx.where(['sysctls', i]) }; })
    : Object.entries(cfg.sysctls ?? {}).map(([name, v]) => ({ name, value: String(v), src: ctx.where(['sysctls', name]) })));
  // The mapping form cannot name one twice: duplicate keys are parse errors.
  const firstSysctl = new Map<string, Source>();
  for (const sc of sysctls) {
    const first = firstSysctl.get(sc.name);
    if (first) problem(sc.src, 'duplicate-sysctl', `\`${sc.name}\` is set twice; the first is on line ${lineOf(first)} (keep one)`);
    else firstSysctl.set(sc.name, sc.src);
  }
  return sysctls;
}

export function normalizeKernel(cfg: UserConfig, ctx: NormalizeContext, problem: Problem): Kernel {
  return { rlimits: rlimitsOf(cfg, ctx, problem), sysctls: sysctlsOf(cfg, ctx, problem) };
}
