// An audit as a SARIF 2.1.0 log, for code scanning (GitHub's upload-sarif and others). Each result
// is located at the config line behind it, relative to the repository root, so that the tool can
// annotate that line in a pull request. Pure: the caller says where the root is.
import { isAbsolute, relative, sep } from 'node:path';
import type { Audit } from './score';
import { RULES, type Severity } from './rules';
import { AUDIT_MSG } from './messages';

const SCHEMA = 'https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json';
const LEVEL: Record<Severity, 'error' | 'warning' | 'note'> = { critical: 'error', high: 'error', medium: 'warning', low: 'note' };
/** GitHub sorts alerts by this number: 9+ critical, 7+ high, 4+ medium, else low. */
const SECURITY_SEVERITY: Record<Severity, string> = { critical: '9.5', high: '7.5', medium: '5.0', low: '2.0' };

/** A file's URI relative to the repository root (forward slashes, each segment percent-encoded). */
export function repoUri(absFile: string, repoRoot: string): string {
  const rel = relative(repoRoot, absFile);
  const enc = (p: string) => p.split(sep).map(encodeURIComponent).join('/');
  // Outside the repository (no git): an absolute file URI, which code scanning cannot place.
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? `file://${enc(absFile)}` : enc(rel);
}

/** `absPath` turns a file as shown (relative to the cwd) into its absolute path. */
export function toSarif(audits: readonly Audit[], o: { version: string; repoRoot: string; absPath(file: string): string }): object {
  const index = new Map(RULES.map((r, i) => [r.id, i]));
  return {
    $schema: SCHEMA,
    version: '2.1.0',
    runs: [{
      tool: {
        driver: {
          name: 'sandbox',
          version: o.version,
          semanticVersion: o.version,
          rules: RULES.map((r) => ({
            id: r.id,
            name: r.name,
            shortDescription: { text: r.title },
            fullDescription: { text: `${r.why}.` },
            help: { text: AUDIT_MSG.sarifHelp(r.why, r.fix) },
            defaultConfiguration: { level: LEVEL[r.severity] },
            properties: { 'security-severity': SECURITY_SEVERITY[r.severity], severity: r.severity, weight: r.weight, tags: ['security', 'sandbox'] },
          })),
        },
      },
      results: audits.flatMap((a) => a.findings.map((f) => ({
        ruleId: f.id,
        ruleIndex: index.get(f.id)!,
        level: LEVEL[f.severity],
        message: { text: AUDIT_MSG.sarifMessage(f.what, f.rule.why) },
        locations: [{
          physicalLocation: {
            artifactLocation: { uri: repoUri(o.absPath(f.at.file), o.repoRoot) },
            region: { startLine: f.at.line, startColumn: f.at.col },
          },
        }],
        // Stable across edits elsewhere in the file: the rule and what it found, not the line.
        partialFingerprints: { sandboxFinding: `${f.id}:${f.what}` },
      }))),
      properties: { exposure: audits.map((a) => ({ file: a.file, score: a.score })) },
    }],
  };
}
