// Compose-style variable interpolation over the parsed value: ${VAR}, ${VAR:-default},
// ${VAR-default}, ${VAR:?message}, ${VAR?message}, $VAR and $$ for a literal dollar.
// Pure: the environment is a parameter. Only string values change; keys are left as written,
// so every path still points at the same place in the file.
import type { PathSeg } from './parse';

export interface InterpolationProblem { path: PathSeg[]; message: string; code: string }

const TOKEN = /\$(?:(\$)|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g;
const EXPR = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])(.*))?$/s;

export function interpolate(value: unknown, env: Readonly<Record<string, string | undefined>>): { value: unknown; problems: InterpolationProblem[] } {
  const problems: InterpolationProblem[] = [];
  const walk = (v: unknown, path: PathSeg[]): unknown => {
    if (typeof v === 'string') return v.includes('$') ? one(v, path) : v;
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, i]));
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = k.startsWith('x-') ? x : walk(x, [...path, k]);
      return out;
    }
    return v;
  };
  const one = (s: string, path: PathSeg[]): string =>
    s.replace(TOKEN, (whole, dollar: string | undefined, braced: string | undefined, bare: string | undefined) => {
      if (dollar) return '$';
      if (bare) return env[bare] ?? '';
      const m = EXPR.exec(braced ?? '');
      if (!m) {
        problems.push({ path, code: 'bad-interpolation', message: `\`${whole}\` is not a valid substitution; write \${NAME}, \${NAME:-default} or \${NAME:?message}, or $$ for a literal $` });
        return whole;
      }
      const [, name, op, arg = ''] = m as unknown as [string, string, string | undefined, string | undefined];
      const val = env[name!];
      const unset = op?.startsWith(':') ? val === undefined || val === '' : val === undefined;
      if (!op) return val ?? '';
      if (op.endsWith('-')) return unset ? one(arg, path) : val!;
      if (unset) problems.push({ path, code: 'required-variable', message: `\`${name}\` must be set: ${arg || 'no message given'} (export ${name}=… before running)` });
      return val ?? '';
    });
  return { value: walk(value, []), problems };
}
