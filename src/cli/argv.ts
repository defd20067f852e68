// Where `--` stood on a command's line, which commander does not keep: `sandbox up -- echo hi`
// (no FILE) must run `echo hi`, not read a file named `echo`. Runs in the CLI process.
import type { Command } from 'commander';

/** How many operands the user wrote before the first `--` of `cmd`'s own arguments; undefined
 * when there is no `--`. Reads the root command's raw argv and skips `cmd`'s options (and the
 * values of those that take one). */
export function operandsBeforeDashDash(cmd: Command): number | undefined {
  let root: Command = cmd;
  while (root.parent) root = root.parent;
  const raw = (root as unknown as { rawArgs: string[] }).rawArgs ?? [];
  // The subcommand's own words begin after its name (sandbox has no option before it but --help/-V).
  const start = raw.indexOf(cmd.name());
  if (start < 0) return undefined;
  const takesValue = (flag: string) => cmd.options.some((o) => (o.long === flag || o.short === flag) && (o.required || o.optional));
  let operands = 0;
  for (let i = start + 1; i < raw.length; i++) {
    const a = raw[i]!;
    if (a === '--') return operands;
    if (a.length > 1 && a.startsWith('-')) {
      if (a.startsWith('--')) { if (!a.includes('=') && takesValue(a)) i++; continue; }
      // -abc: flags, unless one takes a value (the rest of the word, or the next word).
      for (let k = 1; k < a.length; k++) if (takesValue(`-${a[k]}`)) { if (k === a.length - 1) i++; break; }
      continue;
    }
    operands++;
  }
  return undefined;
}

/** `[file] [command...]` as the user meant them: with nothing before `--`, every word is the command. */
export function fileAndCommand(cmd: Command, file: string | undefined, words: string[]): { file: string | undefined; command: string[] } {
  if (file !== undefined && operandsBeforeDashDash(cmd) === 0) return { file: undefined, command: [file, ...words] };
  return { file, command: words };
}
