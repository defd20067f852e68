// User and group names → numbers, read from the sandbox's root filesystem (its /etc/passwd and
// /etc/group), as Docker resolves `--user` inside the image. Runs in the CLI process.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Ids { uid: number; gid: number; groups: number[] }

function table(etc: string, file: string): string[][] {
  try { return readFileSync(join(etc, file), 'utf8').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':')); } catch { return []; }
}

/** `shown` names a file of `etc` in messages (the image's /etc/passwd rather than the store's layer path). */
export function resolveIds(etc: string, user: string | number, group: string | number | null | undefined, extra: (string | number)[], shown = (file: string) => join(etc, file)): Ids {
  const passwd = table(etc, 'passwd');
  const groups = table(etc, 'group');
  const entry = passwd.find((p) => (typeof user === 'number' ? Number(p[2]) === user : p[0] === user));
  let uid: number;
  if (typeof user === 'number') uid = user;
  else if (entry) uid = Number(entry[2]);
  else throw new Error(`user ${user} is not in ${shown('passwd')}; use a number, or add the user to the root filesystem`);
  const groupId = (g: string | number): number => {
    if (typeof g === 'number') return g;
    const row = groups.find((r) => r[0] === g);
    if (!row) throw new Error(`group ${g} is not in ${shown('group')}; use a number`);
    return Number(row[2]);
  };
  const gid = group !== undefined && group !== null ? groupId(group) : entry ? Number(entry[3]) : 0;
  return { uid, gid, groups: extra.map(groupId) };
}
