// Text and JSON forms of a plan, for `sandbox plan`. Pure.
import type { Source } from '../model/types';
import { STAGES, STAGE_TITLES, type Plan } from './types';

export function sourceText(s: Source): string {
  return typeof s === 'object' ? `${s.file}:${s.line}:${s.col}` : s;
}

/** The plan grouped by stage, each step with its id, title and the config line behind it; for
 * `sandbox inspect`, `applied` marks the steps a run applied, with their time in ms. */
export function renderPlan(plan: Plan, opts: { color?: boolean; file?: string; applied?: ReadonlyMap<string, number | undefined> } = {}): string {
  const dim = (s: string) => (opts.color ? `\x1b[2m${s}\x1b[0m` : s);
  const bold = (s: string) => (opts.color ? `\x1b[1m${s}\x1b[0m` : s);
  const out: string[] = [];
  out.push(bold(`plan for ${plan.name}${opts.file ? ` (${opts.file})` : ''}: ${plan.steps.length} steps`));
  out.push(dim(`  ${plan.digest}`));
  out.push(dim(`  host: ${plan.host}`));
  const idWidth = Math.min(28, Math.max(...plan.steps.map((s) => s.id.length)));
  STAGES.forEach((stage, i) => {
    const steps = plan.steps.filter((s) => s.stage === stage);
    if (!steps.length) return;
    out.push('');
    out.push(bold(`${i + 1}. ${stage}: ${STAGE_TITLES[stage]}`));
    for (const s of steps) {
      // A volume outlives the sandbox: only one this run made goes, and only if the run fails.
      const undo = s.undo ? dim(s.undo.kind === 'volume.remove-new' ? ' (removed if up fails after making it)' : ' (undone on exit)') : '';
      const mark = !opts.applied ? '' : opts.applied.has(s.id) ? `✓ ${(opts.applied.get(s.id)?.toFixed(2) ?? '').padStart(7)} ` : `·${' '.repeat(9)}`;
      out.push(`   ${mark}${s.id.padEnd(idWidth)}  ${s.title}${undo}  ${dim(`← ${sourceText(s.source)}`)}`);
    }
  });
  return out.join('\n') + '\n';
}

export function planJson(plan: Plan): string {
  return JSON.stringify(plan, null, 2) + '\n';
}
