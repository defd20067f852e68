// Compose-style variable interpolation over the parsed value, as compose-go does it:
// $VAR and ${VAR} (a warning when VAR is unset: it becomes an empty string), ${VAR:-default} and
// ${VAR-default}, ${VAR:?message} and ${VAR?message} (an error when unset), ${VAR:+alt} and
// ${VAR+alt}, nested forms such as ${A:-${B}}, and $$ for a literal dollar.
// Pure: the environment is a parameter, and only its own keys count (a variable named
// `constructor` is an ordinary name). Only string values change; keys are left as written, so
// every path still points at the same place in the file.
import type { PathSeg } from './parse';
import { clip } from './diagnostic';

export interface InterpolationProblem { path: PathSeg[]; message: string; code: string; severity: 'error' | 'warning' }

const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
/** Nesting of ${A:-${B:-…}}; real files use one or two levels. */
const MAX_NESTING = 16;
const EXPR = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?$/s;
const FORMS = 'write ${NAME}, ${NAME:-default} or ${NAME:?message}, or $$ for a literal $';

/** A variable of `env`, its own keys only: `constructor` or `toString` are never Object's. */
export function envValue(env: Readonly<Record<string, string | undefined>>, name: string): string | undefined {
  if (!Object.hasOwn(env, name)) return undefined;
  const v = env[name];
  return typeof v === 'string' ? v : undefined;
}

/** The index of the } that closes the ${ at `open`, counting nested ${…}; -1 when none does. */
function closing(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === '$' && s[i + 1] === '{') { depth++; i++; continue; }
    if (s[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

export function interpolate(value: unknown, env: Readonly<Record<string, string | undefined>>): { value: unknown; problems: InterpolationProblem[] } {
  const problems: InterpolationProblem[] = [];
  const walk = (v: unknown, path: PathSeg[]): unknown => {
    if (typeof v === 'string') return v.includes('$') ? new Substitution(env, path, problems).expand(v) : v;
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, i]));
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        // defineProperty: a key spelled __proto__ stays a key, never the copy's prototype.
        Object.defineProperty(out, k, { value: k.startsWith('x-') ? x : walk(x, [...path, k]), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    return v;
  };
  return { value: walk(value, []), problems };
}

/** The substitutions of one string at `path`, its problems added to `problems` (an unset
 * variable's warning once per variable). */
class Substitution {
  private readonly warned = new Set<string>();
  constructor(private readonly env: Readonly<Record<string, string | undefined>>, private readonly path: PathSeg[], private readonly problems: InterpolationProblem[]) {}

  private unset(name: string, written: string): void {
    if (this.warned.has(name)) return;
    this.warned.add(name);
    const inCommand = this.path[0] === 'command' || this.path[0] === 'entrypoint';
    this.problems.push({
      path: this.path, code: 'unset-variable', severity: 'warning',
      message: `\`${written}\`: ${name} is not set, so it became an empty string; write \`$${written}\` to pass a literal \`${written}\`${inCommand ? ' to the command' : ''}, or \`\${${name}:-}\` if empty is meant`,
    });
  }

  private error(code: InterpolationProblem['code'], message: string): void {
    this.problems.push({ path: this.path, code, severity: 'error', message });
  }

  expand(t: string, depth = 0): string {
    if (depth > MAX_NESTING) {
      this.error('bad-interpolation', `substitutions nest deeper than ${MAX_NESTING} levels here; ${FORMS}`);
      return t;
    }
    let out = '';
    let i = 0;
    while (i < t.length) {
      const d = t.indexOf('$', i);
      if (d < 0) { out += t.slice(i); break; }
      out += t.slice(i, d);
      const next = t[d + 1];
      if (next === '$') { out += '$'; i = d + 2; continue; }
      if (next === '{') {
        const end = closing(t, d);
        if (end < 0) {
          this.error('bad-interpolation', `\`${clip(t.slice(d))}\` has no closing }; ${FORMS}`);
          return out + t.slice(d);
        }
        out += this.braced(t.slice(d + 2, end), t.slice(d, end + 1), depth);
        i = end + 1;
        continue;
      }
      NAME.lastIndex = d + 1;
      const bare = NAME.exec(t);
      if (bare) {
        const name = bare[0];
        const v = envValue(this.env, name);
        if (v === undefined) this.unset(name, `$${name}`);
        out += v ?? '';
        i = d + 1 + name.length;
        continue;
      }
      // A $ before anything else ($(, "$ ", a trailing $) is kept as written, as Compose keeps it.
      out += '$';
      i = d + 1;
    }
    return out;
  }

  private braced(inner: string, whole: string, depth: number): string {
    const m = EXPR.exec(inner);
    if (!m) {
      this.error('bad-interpolation', `\`${clip(whole)}\` is not a valid substitution; ${FORMS}`);
      return whole;
    }
    const name = m[1]!, op = m[2], arg = m[3] ?? '';
    const val = envValue(this.env, name);
    const empty = op?.startsWith(':') ? val === undefined || val === '' : val === undefined;
    if (!op) {
      if (val === undefined) this.unset(name, whole);
      return val ?? '';
    }
    if (op.endsWith('-')) return empty ? this.expand(arg, depth + 1) : val!;
    if (op.endsWith('+')) return empty ? '' : this.expand(arg, depth + 1);
    if (empty) this.error('required-variable', `\`${name}\` must be set: ${arg ? clip(arg, 200) : 'no message given'} (export ${name}=… before running)`);
    return val ?? '';
  }
}
