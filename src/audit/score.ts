// Findings and the exposure score, from the facts and the rule table. Pure.
//
// The score runs from 0 (locked down) to 10 (the host itself), in the spirit of
// `systemd-analyze security`. Each rule that fires gives away a share `w` of the isolation that
// is left, so that findings compound without passing 10: score = 10 × (1 − Π (1 − w)). A rule
// counts once however many times it fires (two writable binds are one weakness, shown twice).
import type { At, ExposureFacts } from './facts';
import { RULES, SEVERITIES, type Rule, type Severity } from './rules';

export interface Finding { rule: Rule; id: string; severity: Severity; at: At; what: string }
export interface Audit { file: string; name: string; score: number; findings: Finding[] }

export function findingsOf(f: ExposureFacts, rules: readonly Rule[] = RULES): Finding[] {
  const out: Finding[] = [];
  for (const rule of rules) for (const h of rule.test(f)) out.push({ rule, id: rule.id, severity: rule.severity, at: h.at, what: h.what });
  return out.sort((a, b) => SEVERITIES.indexOf(a.severity) - SEVERITIES.indexOf(b.severity) || a.at.line - b.at.line || a.at.col - b.at.col || a.id.localeCompare(b.id));
}

export function scoreOf(findings: readonly Finding[]): number {
  const fired = new Map<string, number>();
  for (const x of findings) fired.set(x.id, x.rule.weight);
  const kept = [...fired.values()].reduce((k, w) => k * (1 - w), 1);
  return Math.round(100 * (1 - kept)) / 10;
}

export function audit(f: ExposureFacts): Audit {
  const findings = findingsOf(f);
  return { file: f.file, name: f.name, score: scoreOf(findings), findings };
}
