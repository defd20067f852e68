// `sandbox audit` and `sandbox diff`: the review commands. Both read a plan and never change the
// host. Exit codes: 0 ok, 1 usage (or, for diff, something loosened), 2 invalid config or
// unreadable file, 3 an audit score above --threshold.
import { renderEnforcement } from '../ui/enforcement';
import type { Command } from 'commander';
import { realpathSync } from 'node:fs';
import { basename, dirname, relative, resolve, sep } from 'node:path';
import type { SandboxSpec } from '../model/types';
import type { HostFeatures, Plan } from '../plan/types';
import { compile } from '../plan/compile';
import type { FoundConfig } from '../config/find';
import { LIMITS, parseConfig, type PathSeg } from '../config/parse';
import { exposureFacts, locatorOf, type ExposureFacts } from '../audit/facts';
import { audit } from '../audit/score';
import { bundleName, loadOci } from './oci';
import { diffFacts } from '../audit/diff';
import { toSarif } from '../audit/sarif';
import { auditJson, auditText, diffJson, diffMarkdown, diffText } from '../audit/render';
import { AUDIT_MSG, DIFF_MSG } from '../audit/messages';
import { LifecycleError } from './lifecycle';
import { formatOf, withFormat, type FormatOpts } from './format';
import { VERSION } from './version';

/** node:child_process, loaded when a program is first run: only `diff --against` runs one (git), and the module costs ms at start-up. */
const childProcess = () => require('node:child_process') as typeof import('node:child_process');

export interface AuditLoaded { plan: Plan; spec: SandboxSpec; file: string; absFile: string; root: PathSeg[]; text: string; host?: HostFeatures }
/** main.ts's loader: prints every problem and throws exit 2 on an invalid file; `source` gives
 * the file's bytes instead of reading it (the old version, from git). */
export type AuditLoad = (file: string | undefined, opts: { hostProblems?: 'error' | 'warning'; source?: FoundConfig }) => Promise<AuditLoaded>;

/** An exit status with nothing more to print (main.ts turns it into the process's status). */
const exit = (code: number): never => { throw new LifecycleError('', code); };
const fail = (message: string, code: number): never => { throw new LifecycleError(message.replace(/^sandbox: /, ''), code); };

/** The facts of a loaded config; a default is located at its parent key in the file, or 1:1. */
export function factsOf(l: AuditLoaded): ExposureFacts {
  const parsed = parseConfig(l.file, Buffer.from(l.text), { root: l.root });
  // A reduced plan (this host makes no namespace) lacks the steps the facts are read from: the
  // file is scored as it asks to run, and the reduced mode's table follows the findings.
  let plan = l.plan;
  if (l.plan.reduced && l.host) { const { reduced: _, ...host } = l.host; plan = compile(l.spec, { ...host, userns: true }).plan; }
  return exposureFacts(plan, l.spec, locatorOf(l.file, parsed.value, parsed.locate, l.root.length > 0));
}

function git(cwd: string, args: string[], max = LIMITS.bytes): string {
  return childProcess().execFileSync('git', args, { cwd, encoding: 'utf8', maxBuffer: max + 1, stdio: ['ignore', 'pipe', 'pipe'] });
}

function repoRootOf(absFile: string): string | undefined {
  try { return git(dirname(absFile), ['rev-parse', '--show-toplevel']).trim(); } catch { return undefined; }
}

/** FILE as it is at REV in its own repository, read with `git show REV:path`. */
export function readAtRevision(file: string, rev: string, cwd = process.cwd()): FoundConfig {
  const abs = resolve(cwd, file);
  let real: string;
  try { real = realpathSync(abs); } catch { return fail(DIFF_MSG.notGit(file, 'no such file'), 2); }
  const top = repoRootOf(real);
  if (!top) return fail(DIFF_MSG.notGit(file, 'it is not inside a git repository'), 2);
  const rel = relative(realpathSync(top), real).split(sep).join('/');
  let text: string;
  try { text = git(top, ['show', `${rev}:${rel}`]); } catch (e) {
    const why = String((e as { stderr?: string }).stderr ?? (e as Error).message).trim().split('\n')[0] || 'git show failed';
    return fail(DIFF_MSG.notGit(file, `${rev}:${rel}: ${why.replace(/^fatal: /, '')}`), 2);
  }
  const shown = relative(cwd, abs);
  return { file: `${rev}:${shown && !shown.startsWith('..') ? shown : abs}`, absFile: abs, bytes: Buffer.from(text), root: basename(abs) === 'package.json' ? ['sandbox'] : [] };
}

export function registerAudit(program: Command, load: AuditLoad): void {
  withFormat(program.command('audit').argument('[file]', 'config file; found upward from the cwd when left out'), ['text', 'json', 'sarif'], 'print the findings as JSON')
    .description('score what a config exposes of the host, from 0 (locked down) to 10 (the host itself), each finding at its line')
    .option('--threshold <n>', 'exit 3 when the score is above N (0-10)')
    .option('--oci <bundle>', 'score what an OCI bundle\'s config.json gets under sandbox-runtime (no FILE then)')
    .action(async (file: string | undefined, opts: FormatOpts & { threshold?: string; oci?: string }) => {
      const o = { ...opts, format: formatOf(opts) };
      const threshold = o.threshold === undefined ? undefined : Number(o.threshold);
      if (threshold !== undefined && (o.threshold!.trim() === '' || !Number.isFinite(threshold) || threshold < 0 || threshold > 10)) fail(AUDIT_MSG.badThreshold(o.threshold!), 1);
      // The host running the audit is not the one that will run the file: its problems are warnings.
      if (o.oci && file) fail('audit takes a FILE or --oci BUNDLE, not both', 1);
      const l = o.oci ? await loadOci(load, o.oci, bundleName(o.oci), { hostProblems: 'warning' }) : await load(file, { hostProblems: 'warning' });
      const a = audit(factsOf(l));
      if (o.format === 'json') process.stdout.write(auditJson([a]));
      else if (o.format === 'sarif') {
        const sarif = toSarif([a], { version: VERSION, repoRoot: repoRootOf(l.absFile) ?? process.cwd(), absPath: (f) => (f === l.file ? l.absFile : resolve(f)) });
        process.stdout.write(JSON.stringify(sarif, null, 2) + '\n');
      } else process.stdout.write(auditText(a) + (l.plan.reduced ? `\n${renderEnforcement(l.plan.reduced)}` : ''));
      if (threshold !== undefined && a.score > threshold) {
        process.stderr.write(AUDIT_MSG.aboveThreshold(a.score, threshold) + '\n');
        exit(3);
      }
    });

  withFormat(program.command('diff').argument('<a>', 'the config before (or the only one, with --against)').argument('[b]', 'the config after'), ['text', 'json', 'markdown'], 'print the changes as JSON')
    .description('show what a change to a config loosens or tightens, stage by stage; exit 1 when anything loosened')
    .option('--against <rev>', 'compare FILE with its version at this git revision (such as origin/main)')
    .action(async (a: string, b: string | undefined, opts: FormatOpts & { against?: string }) => {
      const o = { ...opts, format: formatOf(opts) };
      if ((b === undefined) === (o.against === undefined)) fail(DIFF_MSG.twoFilesOrAgainst, 1);
      const before = o.against !== undefined ? await load(a, { hostProblems: 'warning', source: readAtRevision(a, o.against) }) : await load(a, { hostProblems: 'warning' });
      const after = await load(b ?? a, { hostProblems: 'warning' });
      const d = diffFacts(factsOf(before), factsOf(after));
      process.stdout.write(o.format === 'json' ? diffJson(d) : o.format === 'markdown' ? diffMarkdown(d) : diffText(d));
      if (d.loosened) exit(1);
    });
}
