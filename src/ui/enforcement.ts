// The reduced mode's table (plan/reduced.ts): each line of the file with what this host holds of
// it, printed by `plan`, `up` (before it runs, or with the refusal that stops it), `doctor FILE`
// and `audit`. One renderer, so that the four say it in the same words.
import { sourceText } from '../plan/render';
import type { Plan } from '../plan/types';
import { table } from './table';

export function renderEnforcement(reduced: NonNullable<Plan['reduced']>): string {
  const counts = (['enforced', 'weaker', 'refused'] as const).map((s) => `${reduced.table.filter((r) => r.status === s).length} ${s}`).join(', ');
  const head = `reduced mode (${reduced.why}): no namespaces; Landlock, seccomp, no_new_privs and rlimits hold what they can. Each line of the file (${counts}):\n`;
  const rows = reduced.table.map((r) => ['  ' + sourceText(r.src), r.key, r.status + (r.blocking ? '!' : ''), r.how]);
  const refused = reduced.table.some((r) => r.status === 'refused' && !r.blocking) ? 'A refused line stops `up` unless --allow-weaker (which runs without it).\n' : '';
  const blocking = reduced.table.some((r) => r.blocking) ? 'refused! cannot run in reduced mode at all.\n' : '';
  return head + (rows.length ? table(rows) : '') + refused + blocking;
}
