// The output format of a command that prints data: every one takes both `--json` and `--format
// FORMAT` (text and json, and what else it prints: sarif, markdown), so that a script need not
// remember which spelling a command uses. Runs in the CLI process.
import { Option, type Command } from 'commander';
import { LifecycleError } from '../engine/lifecycle';
import { MSG } from '../ui/messages';

export interface FormatOpts { json?: boolean; format?: string }

/** Adds --format (text first, the default) and --json (the same as --format json) to `cmd`. */
export function withFormat(cmd: Command, formats: readonly string[] = ['text', 'json'], what = 'print it as JSON'): Command {
  return cmd
    .addOption(new Option('--format <format>', formats.join(', ').replace(/, ([^,]*)$/, ' or $1')).choices(formats))
    .option('--json', `${what} (--format json)`);
}

/** The format asked for; --json with another --format is a usage error (exit 1). */
export function formatOf(o: FormatOpts): string {
  if (o.json && o.format !== undefined && o.format !== 'json') throw new LifecycleError(MSG.twoFormats(o.format), 1);
  return o.json ? 'json' : o.format ?? 'text';
}
