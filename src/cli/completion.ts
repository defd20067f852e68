// `sandbox completion bash|zsh|fish`: a completion script for the shell, made from the commands,
// options and arguments commander knows, so that it cannot drift from them. Sandbox names are
// completed with `sandbox ps -aq`, config files with the shell's file completion, and options
// with fixed choices (--format, --progress) with those choices. Runs in the CLI process; prints.
import { Argument, type Command, type Option } from 'commander';

type ArgKind = 'file' | 'name' | 'name-or-file' | 'none' | { choices: readonly string[] };

interface Spec {
  /** The words that reach it: ['up'], ['image', 'prune']. */
  path: string[];
  description: string;
  options: { flags: string[]; description: string; value?: ArgKind }[];
  args: ArgKind[];
  subcommands: Spec[];
}

/** What a command's argument is, from its name: what the shell should offer for it. */
function argKind(name: string, choices?: readonly string[]): ArgKind {
  if (choices?.length) return { choices };
  if (/name\|file/.test(name)) return 'name-or-file';
  if (/file/.test(name)) return 'file';
  if (/^name$/.test(name)) return 'name';
  return 'none';
}

function optionValue(o: Option): ArgKind | undefined {
  if (!o.required && !o.optional) return undefined;
  if (o.argChoices?.length) return { choices: o.argChoices };
  // The value's name in the flags: --attest <file>, -o, --output <path>.
  const value = /<([^>]+)>|\[([^\]]+)\]/.exec(o.flags);
  return /file|path/.test(value?.[1] ?? value?.[2] ?? '') ? 'file' : 'none';
}

function specOf(cmd: Command, path: string[]): Spec {
  const options = cmd.options.filter((o) => !o.hidden).map((o) => ({ flags: [o.short, o.long].filter((f): f is string => !!f), description: o.description, value: optionValue(o) }));
  options.push({ flags: ['-h', '--help'], description: 'show help', value: undefined });
  return {
    path, description: cmd.description(), options,
    args: cmd.registeredArguments.map((a) => argKind(a.name(), a.argChoices)),
    subcommands: cmd.commands.map((c) => specOf(c, [...path, c.name()])),
  };
}

/** Every command, nested ones too, each once. */
function flat(specs: Spec[]): Spec[] { return specs.flatMap((s) => [s, ...flat(s.subcommands)]); }

const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

function bash(root: Spec[]): string {
  const offer = (k: ArgKind | undefined, indent: string): string => {
    if (k === undefined || k === 'none') return `${indent}return 0;;`;
    if (k === 'file') return `${indent}COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null; return 0;;`;
    if (k === 'name') return `${indent}COMPREPLY=($(compgen -W "$(_sandbox_names)" -- "$cur")); return 0;;`;
    if (k === 'name-or-file') return `${indent}COMPREPLY=($(compgen -W "$(_sandbox_names)" -- "$cur") $(compgen -f -- "$cur")); return 0;;`;
    return `${indent}COMPREPLY=($(compgen -W ${sq(k.choices.join(' '))} -- "$cur")); return 0;;`;
  };
  const cases = flat(root).map((s) => {
    const valued = s.options.filter((o) => o.value !== undefined);
    const optionCases = valued.map((o) => `        ${o.flags.join('|')})\n${offer(o.value, '          ')}`).join('\n');
    const flags = s.options.flatMap((o) => o.flags).join(' ');
    const sub = s.subcommands.map((c) => c.path.at(-1)).join(' ');
    // The first argument's kind: the shell cannot tell which operand it is at without parsing options.
    const arg = s.args[0];
    return [
      `    ${sq(s.path.join(' '))})`,
      valued.length ? `      case "$prev" in\n${optionCases}\n      esac` : '',
      `      if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W ${sq(flags)} -- "$cur")); return 0; fi`,
      sub ? `      COMPREPLY=($(compgen -W ${sq(sub)} -- "$cur")); return 0;;` : offer(arg, '      '),
    ].filter(Boolean).join('\n');
  }).join('\n');
  const top = root.map((s) => s.path[0]).join(' ');
  return `# bash completion for sandbox: \`source <(sandbox completion bash)\`, or save it as
# /etc/bash_completion.d/sandbox. Made by \`sandbox completion bash\` from the commands it knows.
_sandbox_names() { sandbox ps -aq 2>/dev/null; }
_sandbox() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}" cmd="" i w
  # The command: the words before the cursor that are not options (two for \`image prune\`).
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in -*) continue;; esac
    if [[ -z "$cmd" ]]; then cmd="$w"; elif [[ "$cmd" == image && "$w" == prune ]]; then cmd="image prune"; else break; fi
  done
  case "$cmd" in
    '')
      COMPREPLY=($(compgen -W ${sq(`${top} help --help --version`)} -- "$cur")); return 0;;
${cases}
  esac
  return 0
}
complete -o default -F _sandbox sandbox
`;
}

function zsh(root: Spec[]): string {
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/'/g, `'\\''`).replace(/[[\]:]/g, '\\$&');
  const action = (k: ArgKind | undefined): string => {
    if (k === undefined) return '';
    if (k === 'file') return ':file:_files';
    if (k === 'name') return ':sandbox:_sandbox_names';
    if (k === 'name-or-file') return ':sandbox or file:_sandbox_name_or_file';
    if (k === 'none') return ':value: ';
    return `:value:(${k.choices.join(' ')})`;
  };
  const fn = (s: Spec): string => {
    const name = `_sandbox_${s.path.join('_').replace(/-/g, '_')}`;
    const specs = s.options.map((o) => {
      const excl = o.flags.length > 1 ? `(${o.flags.join(' ')})` : '';
      const names = o.flags.length > 1 ? `{${o.flags.join(',')}}` : o.flags[0]!;
      return o.flags.length > 1 ? `'${excl}'${names}'[${esc(o.description)}]${action(o.value)}'` : `'${names}[${esc(o.description)}]${action(o.value)}'`;
    });
    if (s.subcommands.length) {
      const subs = s.subcommands.map((c) => `'${esc(c.path.at(-1)!)}:${esc(c.description)}'`).join(' ');
      return `${name}() {\n  local -a subs\n  subs=(${subs})\n  if (( CURRENT == 2 )); then _describe 'command' subs; return; fi\n  shift words; (( CURRENT-- ))\n  case $words[1] in\n${s.subcommands.map((c) => `    ${c.path.at(-1)}) _sandbox_${c.path.join('_').replace(/-/g, '_')} ;;`).join('\n')}\n  esac\n}\n${s.subcommands.map(fn).join('')}`;
    }
    const args = s.args.map((a, i) => `'${i === s.args.length - 1 ? '*' : `${i + 1}`}${action(a) || ':value: '}'`);
    return `${name}() {\n  _arguments -s ${[...specs, ...args].join(' \\\n    ')}\n}\n`;
  };
  const cmds = root.map((s) => `'${esc(s.path[0]!)}:${esc(s.description)}'`).join(' \\\n    ');
  return `#compdef sandbox
# zsh completion for sandbox: save it as _sandbox in a folder of $fpath, or \`source <(sandbox completion zsh)\`.
# Made by \`sandbox completion zsh\` from the commands it knows.
_sandbox_names() { local -a n; n=(\${(f)"$(sandbox ps -aq 2>/dev/null)"}); _describe 'sandbox' n; }
_sandbox_name_or_file() { _sandbox_names; _files; }
${root.map(fn).join('')}_sandbox() {
  local -a commands
  commands=(${cmds})
  if (( CURRENT == 2 )); then _describe 'command' commands; return; fi
  shift words; (( CURRENT-- ))
  case $words[1] in
${root.map((s) => `    ${s.path[0]}) _sandbox_${s.path[0]!.replace(/-/g, '_')} ;;`).join('\n')}
  esac
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then _sandbox "$@"; else compdef _sandbox sandbox; fi
`;
}

function fish(root: Spec[]): string {
  const q = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const lines = ['# fish completion for sandbox: save it as ~/.config/fish/completions/sandbox.fish, or `sandbox completion fish | source`.',
    '# Made by `sandbox completion fish` from the commands it knows.', 'complete -c sandbox -f'];
  const top = root.map((s) => s.path[0]).join(' ');
  for (const s of root) lines.push(`complete -c sandbox -n "not __fish_seen_subcommand_from ${top}" -a ${q(s.path[0]!)} -d ${q(s.description)}`);
  const value = (k: ArgKind | undefined) => (k === undefined ? '' : k === 'file' ? ' -r -F' : k === 'name' ? " -x -a '(sandbox ps -aq 2>/dev/null)'" : k === 'name-or-file' ? " -r -F -a '(sandbox ps -aq 2>/dev/null)'" : k === 'none' ? ' -x' : ` -x -a ${q(k.choices.join(' '))}`);
  for (const s of flat(root)) {
    const when = s.path.length === 1 ? `__fish_seen_subcommand_from ${s.path[0]}` : `__fish_seen_subcommand_from ${s.path[0]}; and __fish_seen_subcommand_from ${s.path.slice(1).join(' ')}`;
    for (const c of s.subcommands) lines.push(`complete -c sandbox -n ${q(`__fish_seen_subcommand_from ${s.path[0]}; and not __fish_seen_subcommand_from ${s.subcommands.map((x) => x.path.at(-1)).join(' ')}`)} -a ${q(c.path.at(-1)!)} -d ${q(c.description)}`);
    for (const o of s.options) {
      const flags = o.flags.map((f) => (f.startsWith('--') ? `-l ${f.slice(2)}` : `-s ${f.slice(1)}`)).join(' ');
      lines.push(`complete -c sandbox -n ${q(when)} ${flags}${value(o.value)} -d ${q(o.description)}`);
    }
    const arg = s.args[0];
    if (arg && arg !== 'none' && !s.subcommands.length) lines.push(`complete -c sandbox -n ${q(when)}${value(arg)}`);
  }
  return lines.join('\n') + '\n';
}

export const SHELLS = ['bash', 'zsh', 'fish'] as const;

/** The completion script for `shell`, from the program's commands (without `completion` itself's help). */
export function completionScript(program: Command, shell: (typeof SHELLS)[number]): string {
  const root = program.commands.map((c) => specOf(c, [c.name()]));
  return shell === 'bash' ? bash(root) : shell === 'zsh' ? zsh(root) : fish(root);
}

export function registerCompletion(program: Command): void {
  program.command('completion').addArgument(new Argument('<shell>', 'bash, zsh or fish').choices(SHELLS))
    .description('print a completion script for bash, zsh or fish (bash: source <(sandbox completion bash))')
    .action((shell: (typeof SHELLS)[number]) => { process.stdout.write(completionScript(program, shell)); });
}
