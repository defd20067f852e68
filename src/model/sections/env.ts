// The command's environment, in the order Docker builds it: the defaults (PATH, HOSTNAME, HOME,
// TERM with a terminal), then env_file entries, then `env`, then `up -e`; a later value of a name
// replaces the earlier one. A name without a value takes the caller's, if it has one.
import type { UserConfig } from '../../config/types';
import { envValue } from '../../config/interpolate';
import type { EnvVar, Source, UserSpec, Val } from '../types';
import { DEFAULT_PATH } from '../tables';
import { D, own, resolveHostPath, type NormalizeContext, type Problem, type SpecInputs } from './context';

/** What the defaults depend on: the hostname, the user (HOME) and whether there is a terminal (TERM). */
export interface EnvBasis { hostname: Val<string>; user: UserSpec; tty: Val<boolean> }

type SetEnv = (name: string, value: string, src: Source) => void;

function parseEnvFile(text: string): { name: string; value: string; line: number }[] {
  const out: { name: string; value: string; line: number }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const name = (eq < 0 ? line : line.slice(0, eq)).replace(/^export\s+/, '').trim();
    let value = eq < 0 ? '' : line.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0]) value = value.slice(1, -1);
    out.push({ name, value, line: i + 1 });
  });
  return out;
}

/** env_file entries, each located at its own line of its file (when the entry is in the config file). */
function envFiles(cfg: UserConfig, ctx: NormalizeContext, problem: Problem, setEnv: SetEnv): void {
  const files = cfg.env_file === undefined ? [] : ([] as string[]).concat(cfg.env_file);
  files.forEach((f, i) => {
    const abs = resolveHostPath(f, ctx.dir, ctx.home);
    const src = Array.isArray(cfg.env_file) ? ctx.where(['env_file', i]) : ctx.where(['env_file']);
    const text = own(ctx.envFiles, abs);
    if (text === undefined) { problem(src, 'env-file-missing', `env file ${abs} cannot be read; create it or remove it from \`env_file\``); return; }
    if (typeof text === 'object') { problem(src, text.code, text.message); return; }
    for (const e of parseEnvFile(text)) {
      if (!/^[^=\s]+$/.test(e.name)) problem(src, 'env-file-invalid', `${abs}:${e.line}: \`${e.name}\` is not a valid variable name`);
      else setEnv(e.name, e.value, typeof src === 'object' ? { file: abs, line: e.line, col: 1 } : src);
    }
  });
}

/** `env` as a list of NAME[=value] or a mapping (null: the caller's value), then `up -e`. */
function envEntries(cfg: UserConfig, ctx: NormalizeContext, inputs: SpecInputs, problem: Problem, setEnv: SetEnv): void {
  const passed = (name: string, src: Source) => { const got = envValue(ctx.env, name); if (got !== undefined) setEnv(name, got, src); };
  if (Array.isArray(cfg.env)) {
    cfg.env.forEach((item, i) => {
      const eq = item.indexOf('=');
      if (eq >= 0) setEnv(item.slice(0, eq), item.slice(eq + 1), ctx.where(['env', i]));
      else passed(item, ctx.where(['env', i]));
    });
  } else if (cfg.env) {
    for (const [k, v] of Object.entries(cfg.env)) {
      if (v === null) passed(k, ctx.where(['env', k]));
      else setEnv(k, String(v), ctx.where(['env', k]));
    }
  }
  for (const e of inputs.overrides?.env ?? []) {
    const eq = e.value.indexOf('=');
    if (eq > 0) setEnv(e.value.slice(0, eq), e.value.slice(eq + 1), e.src);
    else if (eq < 0) passed(e.value, e.src);
    else problem(e.src, 'invalid-env', `\`-e ${e.value}\` has no name; write NAME=value`);
  }
}

export function normalizeEnv(cfg: UserConfig, ctx: NormalizeContext, inputs: SpecInputs, problem: Problem, basis: EnvBasis): EnvVar[] {
  const env = new Map<string, EnvVar>();
  const setEnv: SetEnv = (n, v, src) => { env.delete(n); env.set(n, { name: n, value: v, src }); };
  setEnv('PATH', DEFAULT_PATH, D);
  setEnv('HOSTNAME', basis.hostname.value, basis.hostname.src);
  setEnv('HOME', basis.user.user === 0 || basis.user.user === 'root' ? '/root' : '/', D);
  if (basis.tty.value) setEnv('TERM', 'xterm', basis.tty.src);
  envFiles(cfg, ctx, problem, setEnv);
  envEntries(cfg, ctx, inputs, problem, setEnv);
  return [...env.values()];
}
