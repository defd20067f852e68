// Text, JSON and Markdown forms of an audit and of a diff. Pure.
import type { Audit } from './score';
import type { Change, Diff } from './diff';
import { STAGES, STAGE_TITLES } from '../plan/types';
import { AUDIT_MSG, DIFF_MSG, where, whereFull } from './messages';

export function auditText(a: Audit): string {
  const lines = [AUDIT_MSG.score(a.file, a.score, a.findings.length)];
  for (const f of a.findings) lines.push(AUDIT_MSG.finding(whereFull(f.at), f.severity, f.id, f.what, f.rule.why, f.rule.fix));
  return lines.join('\n') + '\n';
}

export function auditJson(audits: readonly Audit[]): string {
  return JSON.stringify(audits.map((a) => ({
    file: a.file, name: a.name, score: a.score,
    findings: a.findings.map((f) => ({ id: f.id, name: f.rule.name, severity: f.severity, file: f.at.file, line: f.at.line, col: f.at.col, origin: f.at.origin, message: f.what, why: f.rule.why, fix: f.rule.fix })),
  })), null, 2) + '\n';
}

const MARK = { looser: '+', tighter: '-', neutral: '~' } as const;
const ICON = { looser: '🔓', tighter: '🔒', neutral: '↔' } as const;

/** Both lines of a change: (a.yml:5 → b.yml:7), (b.yml:12) for an addition, (a.yml:5) for a removal. */
export function lines(c: Change): string {
  if (c.before && c.after) { const a = where(c.before), b = where(c.after); return a === b ? a : `${a} → ${b}`; }
  return where(c.before ?? c.after);
}

function byStage(d: Diff): [number, (typeof STAGES)[number], Change[]][] {
  return STAGES.map((s, i) => [i + 1, s, d.changes.filter((c) => c.stage === s)] as [number, (typeof STAGES)[number], Change[]]).filter(([, , cs]) => cs.length > 0);
}

const counts = (d: Diff) => [d.changes.filter((c) => c.effect === 'looser').length, d.changes.filter((c) => c.effect === 'tighter').length] as const;

export function diffText(d: Diff): string {
  const out = [DIFF_MSG.header(d.before.file, d.after.file), DIFF_MSG.score(d.before.score, d.after.score)];
  if (!d.changes.length) out.push(DIFF_MSG.nothing);
  for (const [n, stage, cs] of byStage(d)) {
    out.push('', `${n}. ${stage}: ${STAGE_TITLES[stage]}`);
    for (const c of cs) out.push(`   ${MARK[c.effect]} ${c.text} (${lines(c)})`);
  }
  if (d.changes.length) out.push('', DIFF_MSG.verdict(...counts(d)));
  return out.join('\n') + '\n';
}

export function diffJson(d: Diff): string {
  return JSON.stringify({ before: d.before, after: d.after, loosened: d.loosened, changes: d.changes }, null, 2) + '\n';
}

/** For a pull-request comment: a table per stage, the locations as code. */
export function diffMarkdown(d: Diff): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/`/g, "'");
  const out = [DIFF_MSG.markdownTitle(d.before.file, d.after.file), '', `**${DIFF_MSG.score(d.before.score, d.after.score)}**`, ''];
  if (!d.changes.length) out.push(DIFF_MSG.nothing);
  else {
    out.push(DIFF_MSG.verdict(...counts(d)), '', DIFF_MSG.markdownLegend);
    for (const [n, stage, cs] of byStage(d)) {
      out.push('', `#### ${n}. ${stage}: ${STAGE_TITLES[stage]}`, '', DIFF_MSG.markdownColumns, '| --- | --- | --- | --- |');
      for (const c of cs) out.push(`| ${ICON[c.effect]} | ${esc(c.text)} | ${c.before ? `\`${where(c.before)}\`` : ''} | ${c.after ? `\`${where(c.after)}\`` : ''} |`);
    }
  }
  return out.join('\n') + '\n';
}
