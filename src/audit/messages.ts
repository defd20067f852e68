// Every sentence `sandbox audit` and `sandbox diff` print, in one place (the rules' own why and
// fix live in their table, rules.ts).
import type { At } from './facts';

/** A location as a diff shows it: FILE:LINE for a line of the file, else where the value came from. */
export const where = (a: At | undefined): string => (!a ? '' : a.origin === 'file' ? `${a.file}:${a.line}` : a.origin);
/** A location as audit shows it, FILE:LINE:COL (a default points at its parent key, or 1:1). */
export const whereFull = (a: At): string => `${a.file}:${a.line}:${a.col}`;

export const size = (b: number | null): string => (b === null ? 'none' : b % 1048576 === 0 ? `${b / 1048576} MiB` : `${b} bytes`);
export const count = (n: number | null): string => (n === null ? 'none' : String(n));
export const cpus = (m: number | null): string => (m === null ? 'none' : `${m / 1000} CPUs`);

export const AUDIT_MSG = {
  score: (file: string, score: number, n: number) => `${file}: exposure ${score.toFixed(1)}/10 (0 is locked down, 10 is the host itself), ${n === 0 ? 'no findings' : `${n} finding${n === 1 ? '' : 's'}`}`,
  finding: (at: string, severity: string, id: string, what: string, why: string, fix: string) => `${at}  ${severity}  ${id}  ${what}: ${why} — ${fix}`,
  aboveThreshold: (score: number, threshold: number) => `sandbox: the exposure score ${score.toFixed(1)} is above the threshold ${threshold}`,
  badThreshold: (v: string) => `sandbox: --threshold ${JSON.stringify(v)} is not a number from 0 to 10`,
  sarifMessage: (what: string, why: string) => `${what}: ${why}.`,
  sarifHelp: (why: string, fix: string) => `${why}. Fix: ${fix}.`,
};

export const DIFF_MSG = {
  header: (a: string, b: string) => `isolation changes from ${a} to ${b}`,
  score: (a: number, b: number) => `exposure score ${a.toFixed(1)} → ${b.toFixed(1)}${b > a ? ' (looser)' : b < a ? ' (tighter)' : ''}`,
  nothing: 'no isolation change',
  verdict: (loosened: number, tightened: number) => `${loosened} change${loosened === 1 ? '' : 's'} loosen isolation, ${tightened} tighten it${loosened ? ': ask for a second review' : ''}`,
  markdownTitle: (a: string, b: string) => `### sandbox: isolation changes in \`${b}\`${a !== b ? ` (from \`${a}\`)` : ''}`,
  markdownLegend: '🔓 loosens isolation · 🔒 tightens it · ↔ neither',
  markdownColumns: '| | change | before | after |',
  notGit: (file: string, why: string) => `sandbox: cannot read ${file} from git: ${why}`,
  twoFilesOrAgainst: 'sandbox: diff takes two files (sandbox diff A B), or one file and --against REV',
  // Change sentences.
  added: (what: string) => `${what} added`,
  removed: (what: string) => `${what} removed`,
  changed: (what: string, a: string, b: string) => `${what} ${a} → ${b}`,
  made: (what: string, how: string) => `${what} made ${how}`,
  moved: (what: string, other: string) => `${what} moved above ${other}`,
};

export const LABEL = {
  rootfs: 'root file system',
  rootReadOnly: 'root file system',
  network: 'network',
  port: (hostPort: number, containerPort: number, protocol: string) => `port ${hostPort || '(any)'}→${containerPort}/${protocol}`,
  portOn: (everyAddress: boolean, hostIp: string) => (everyAddress ? 'on every address' : `on ${hostIp}`),
  namespace: (t: string) => `${t} namespace`,
  user: 'user',
  bind: (target: string) => `bind on ${target}`,
  volume: (target: string) => `volume on ${target}`,
  volumeDesc: (name: string, target: string, readOnly: boolean | undefined, anonymous: boolean) => `${anonymous ? 'anonymous ' : ''}volume ${name} on ${target}${readOnly === undefined ? '' : readOnly ? ' (read-only)' : ' (writable)'}`,
  bindOf: (source: string, target: string) => `bind of ${source} on ${target}`,
  bindDesc: (source: string, target: string, readOnly: boolean) => `bind of ${source} on ${target}${readOnly ? ' (read-only)' : ' (writable)'}`,
  device: (source: string, target: string, perms: string) => `device ${source} as ${target} (${perms})`,
  cap: (name: string) => `capability ${name}`,
  nnp: 'no_new_privileges',
  seccomp: 'seccomp',
  memory: 'memory limit',
  pids: 'pids limit',
  cpus: 'CPU limit',
  cgroupWrite: (file: string, value: string) => `cgroup ${file} = ${value}`,
  cgroupFile: (file: string) => `cgroup ${file}`,
  sysctl: (name: string, value: string) => `sysctl ${name} = ${value}`,
  sysctlName: (name: string) => `sysctl ${name}`,
  masked: (path: string) => `masked path ${path}`,
  protectedPath: (path: string) => `protected path ${path} (read-only in a writable folder)`,
  insecure: (host: string) => `insecure registry ${host}`,
  egress: (rules: number) => `egress policy (${rules} rule${rules === 1 ? '' : 's'}; whatever no rule allows is refused)`,
  egressRule: (text: string) => `egress rule "${text}"`,
  egressPorts: (target: string) => `egress rule on ${target}`,
  on: 'on', off: 'off', readOnly: 'read-only', writable: 'writable',
};
