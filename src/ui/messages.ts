// Every sentence the CLI prints outside of config diagnostics, in one place.
export const MSG = {
  valid: (file: string, warnings: number) => `${file}: valid${warnings ? ` (${warnings} warning${warnings === 1 ? '' : 's'})` : ''}`,
  invalid: (summary: string) => `${summary}; nothing was run`,
  strictWarnings: 'warnings count as errors with --strict',
  hostCannot: (file: string) => `${file}: this host cannot apply every line of the file:`,
  dryRun: 'dry run: nothing was changed',
  setupFailed: (step: string, why: string, where: string) => `sandbox could not be set up: step ${step} failed: ${why}${where ? ` (${where})` : ''}`,
  execFailed: (step: string, why: string, where: string) => `sandbox: cannot run the command: ${step}: ${why}${where ? ` (${where})` : ''}`,
  undone: (n: number) => `undid ${n} host change${n === 1 ? '' : 's'}; nothing is left behind`,
  noEngine: (why: string) => `the native engine cannot be loaded: ${why}\n  build it with: npm run build (needs make and a C compiler)`,
  internal: (what: string) => `sandbox: internal error: ${what}\n  please report it with the config that caused it`,
  notRunning: (name: string) => `${name} is not running (sandbox ps -a shows what it became)`,
  noPlan: (name: string) => `${name} has no saved plan: it is still starting, or was started by an older sandbox`,
  pullFailed: (image: string, why: string) => `sandbox: the image ${image} cannot be fetched: ${why}; nothing was set up`,
  stageTitle: (n: number, stage: string, title: string) => `${n}. ${stage}: ${title}`,
  volumeSeed: (s: { from: 'image'; image: string; target: string } | { from: 'empty'; uid: number; gid: number; why: string }) =>
    s.from === 'image' ? `from ${s.image} at ${s.target}` : `empty, owned by ${s.uid}:${s.gid} (${s.why})`,
  volumeUsers: (u: { sandbox: string; running: boolean }[]) => (u.length ? u.map((x) => `${x.sandbox}${x.running ? '' : ' (exited)'}`).join(', ') : '-'),
};
