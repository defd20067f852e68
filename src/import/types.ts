// What an importer gives back: the config people would write, and every place where the source
// (a docker run command line, a Compose service) says something the config cannot say the same way.
import type { PathSeg } from '../config/parse';
import type { UserConfig } from '../config/types';
import { DEFAULT_CAPABILITIES } from '../model/tables';

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
  'namespaces', 'resources', 'cap_add', 'cap_drop', 'security', 'ulimits', 'sysctls', 'devices', 'shm_size', 'mqueue', 'stop_signal', 'stop_grace_period',
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

const capName = (raw: string) => raw.toUpperCase().replace(/^CAP_/, '');

/**
 * What every importer does once the config is whole.
 * - `cap_drop: [ALL]` with `cap_add` (Docker's way to name a whole set, and what `sandbox export`
 *   writes) becomes the change from sandbox's default set: the same bounding set, and a user other
 *   than root is not given the default capabilities to hold, which docker run would not give it.
 * - For a user other than root, docker run and Compose keep `cap_add` in the bounding set only
 *   (usable through file capabilities), where sandbox gives the command what it names (ambient),
 *   as the kernel means a capability for a user: a comment says so.
 */
export function finishImport(imp: Pick<Imported, 'config' | 'notes' | 'origin'>): void {
  const c = imp.config;
  if (c.cap_drop?.some((x) => capName(x) === 'ALL') && !c.cap_add?.some((x) => capName(x) === 'ALL')) {
    const at = (key: string) => imp.origin.find((o) => o.path[0] === key)?.at;
    const dropAt = at('cap_drop')!, addAt = at('cap_add');
    const add = c.cap_add ?? [];
    const defaults = DEFAULT_CAPABILITIES as readonly string[];
    const drop = defaults.filter((d) => !add.some((a) => capName(a) === d));
    const extra = add.filter((a) => !defaults.includes(capName(a)));
    imp.origin.splice(0, imp.origin.length, ...imp.origin.filter((o) => o.path[0] !== 'cap_add' && o.path[0] !== 'cap_drop'));
    if (drop.length) { c.cap_drop = drop; imp.origin.push({ path: ['cap_drop'], at: dropAt }); } else delete c.cap_drop;
    if (extra.length) { c.cap_add = extra; imp.origin.push({ path: ['cap_add'], at: addAt ?? dropAt }); } else delete c.cap_add;
  }
  const user = c.user === undefined ? undefined : String(c.user).split(':')[0];
  if (user === undefined || user === '0' || user === 'root' || !c.cap_add?.length) return;
  const at = imp.origin.find((o) => o.path[0] === 'cap_add')?.at;
  if (!at) return;
  imp.notes.push({ kind: 'changed', at, code: 'cap-add-ambient', path: ['cap_add'], message: `user ${user} holds these capabilities (ambient), as sandbox gives cap_add to a user other than root; docker run keeps them in the bounding set only, for programs with file capabilities` });
}
