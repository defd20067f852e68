// What an importer gives back: the config people would write, and every place where the source
// (a docker run command line, a Compose service) says something the config cannot say the same way.
import type { PathSeg } from '../config/parse';
import type { UserConfig } from '../config/types';

/** A place in what was imported: a column of the command line, or a line of the Compose file. */
export interface Loc { file: string; line: number; col: number; endCol?: number }

export interface ImportNote {
  /**
   * changed: mapped, but the value means something else here (a comment in the written file);
   * dropped: not mapped, printed with the reason; refused: cannot be mapped safely, nothing is written.
   */
  kind: 'changed' | 'dropped' | 'refused';
  at: Loc;
  /** A stable code, as diagnostics have. */
  code: string;
  message: string;
  /** Where the comment goes in the written config (for `changed`). */
  path?: PathSeg[];
}

export interface Imported {
  /** The config, keys in the order the samples write them; `x-` keys kept from Compose. */
  config: UserConfig & Record<string, unknown>;
  notes: ImportNote[];
  /** Which part of the input each key of the config came from, most specific path first wins. */
  origin: { path: PathSeg[]; at: Loc }[];
  /** The input itself, for code frames of notes (the command line, or the Compose file's text). */
  text: string;
}

/** The order of keys in a written config: as the README's and the samples' files. */
export const KEY_ORDER = [
  'version', 'name', 'image', 'insecure_registries', 'rootfs', 'entrypoint', 'command', 'detach', 'tty', 'stdin_open', 'init', 'restart',
  'user', 'group_add', 'umask', 'workdir', 'hostname', 'env', 'env_file', 'network', 'dns', 'extra_hosts', 'ports', 'volumes', 'named_volumes',
  'namespaces', 'resources', 'cap_add', 'cap_drop', 'security', 'ulimits', 'sysctls', 'devices', 'shm_size', 'stop_signal', 'stop_grace_period',
] as const;

/** A copy of `cfg` with its keys in KEY_ORDER, then any others (x- keys) as they came. */
export function ordered(cfg: Record<string, unknown>): UserConfig & Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of KEY_ORDER) if (cfg[k] !== undefined) out[k] = cfg[k];
  for (const [k, v] of Object.entries(cfg)) if (!(k in out) && v !== undefined) out[k] = v;
  return out as UserConfig & Record<string, unknown>;
}

/** A name as the schema allows it, made from an image reference or a command. */
export function nameFrom(s: string | undefined): string {
  if (!s) return 'sandbox';
  const last = s.replace(/@.*$/, '').split('/').pop()!.replace(/:[^:]*$/, '');
  const clean = last.replace(/[^a-zA-Z0-9_.-]/g, '-').replace(/^[^a-zA-Z0-9]+/, '').slice(0, 63);
  return clean || 'sandbox';
}
