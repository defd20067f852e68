// What a sandbox's egress policy refused, in words: one line per denial record for `sandbox logs
// --denials`, the one-line summary a foreground `up`/`run` prints on stderr when it ends, and the
// counts `inspect` shows. Pure: the records (STATE/denials.jsonl, written by sbx-egress; see
// docs/egress-design.md section 5) and the rules' texts come in, strings go out. Runs in the CLI.
import type { Plan } from '../plan/types';
import { MSG } from './messages';

/** One line of STATE/denials.jsonl (the contract between sbx-egress and the CLI). */
export interface Denial {
  t: string;
  kind: 'lookup' | 'connect' | 'datagram' | 'answer-withheld' | 'protocol' | 'limit';
  proto?: string;
  addr?: string | null;
  port?: number | null;
  name?: string | null;
  /** How the name was learnt: dns | sni | host | connect | address | kernel. */
  seen?: string;
  /** The index of the rule that denied it; null: no rule allowed it, or a refused class (`class`). */
  rule: number | null;
  /** file:line:col of that rule, or of the `egress` key when no rule did. */
  src: string;
  class?: boolean;
  /** The process holding the refused socket, when sbx-egress found it: its PID in the sandbox
   * (null outside any PID namespace of its own), on the host, and its name. */
  pid?: number | null;
  hostPid?: number;
  comm?: string;
  count?: number;
  /** Why a protocol was refused, when sbx-egress says (no server name, h2c, smuggling shape). */
  why?: string;
}

/** Parses JSONL text; lines that are not a record (a half-written last line, noise) are left out. */
export function parseDenials(text: string): Denial[] {
  const out: Denial[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as Denial;
      if (r && typeof r === 'object' && typeof r.kind === 'string' && typeof r.t === 'string') out.push(r);
    } catch { /* not a whole record */ }
  }
  return out;
}

/** "allow jira.corp.test" from a policy line's words after "rule N" (contract 3), when the plan has no text. */
function policyRuleText(words: string[]): string {
  const [action, type] = words;
  if (type === 'host') {
    const [, , match, target, , ports = ''] = words;
    const hostPorts = ports === '1-52,54-852,854-65535' || ports === '1-65535';
    return `${action} ${match === 'suffix' ? '*.' : ''}${target}${hostPorts ? '' : `:${ports}`}`;
  }
  const [, , target, protos = '', ports = ''] = words;
  const allProtos = protos === 'tcp,udp,icmp' || protos === 'tcp,udp';
  return `${action} ${target}${ports && ports !== '1-65535' ? `:${ports}` : ''}${allProtos ? '' : `/${protos}`}`;
}

/** Each rule's text by its index: from the saved plan's `net.egress.rule` steps (their `text`),
 * else from the policy file sbx-egress was given (STATE/egress.policy). */
export function ruleTexts(plan: Plan | undefined, policy: string | undefined): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of (policy ?? '').split('\n')) {
    const w = line.trim().split(/\s+/);
    if (w[0] === 'rule' && /^\d+$/.test(w[1] ?? '')) out.set(Number(w[1]), policyRuleText(w.slice(2)));
  }
  for (const s of (plan?.steps ?? []) as { kind: string; args: Record<string, unknown> }[]) {
    if (s.kind === 'net.egress.rule' && typeof s.args.index === 'number' && typeof s.args.text === 'string') out.set(s.args.index, s.args.text);
  }
  return out;
}

/** Which refused class an address is in (design 3.3), for "refused: ... is link-local". */
export function addressClass(addr: string): string {
  const [a = -1, b = -1] = addr.split('.').map(Number);
  if (a === 127) return 'loopback';
  if (a === 169 && b === 254) return addr === '169.254.169.254' ? 'the cloud metadata address' : 'link-local';
  if (a === 0) return 'this-network (0.0.0.0/8)';
  if (a >= 224 && a <= 239) return 'multicast';
  if (addr === '255.255.255.255') return 'broadcast';
  return 'the sandbox\'s gateway, subnet or a host address';
}

const SEEN: Record<string, string> = { sni: 'TLS name', host: 'HTTP Host', connect: 'CONNECT authority', address: 'no name: by address', kernel: 'refused by the kernel' };

/** The thing refused: "evil.test:443", "198.18.7.12:443/udp", "evil.test". */
export function target(r: Denial): string {
  const who = r.name || r.addr || '?';
  if (r.kind === 'lookup' || r.kind === 'answer-withheld') return who;
  if (r.proto === 'icmp') return `${who} (icmp)`;
  const port = r.port ? `:${r.port}` : '';
  return `${who}${port}${r.proto && r.proto !== 'tcp' ? `/${r.proto}` : ''}`;
}

/** "(TLS name, at 198.18.7.10)", "(lookup)", "(answer 127.0.0.1 withheld)". */
function how(r: Denial): string {
  if (r.kind === 'lookup') return '(lookup)';
  if (r.kind === 'answer-withheld') return `(answer${r.addr ? ` ${r.addr}` : ''} withheld)`;
  const seen = SEEN[r.seen ?? ''] ?? r.seen ?? '';
  const at = r.name && r.addr ? `at ${r.addr}` : '';
  return [seen, at].filter(Boolean).length ? `(${[seen, at].filter(Boolean).join(', ')})` : '';
}

/** The `egress` key's line, for "no rule allowed it": file:line. */
const lineOf = (src: string) => src.replace(/^(.*:\d+):\d+$/, '$1');

/** Why it was refused, with the config line: "denied by rule 2 "deny *.corp.test" (sandbox.yml:10:7)". */
export function verdict(r: Denial, rules: Map<number, string>, short = false): string {
  if (r.kind === 'limit') return MSG.denialLimit(r.why);
  if (r.kind === 'protocol' && r.rule === null) return MSG.denialProtocol(r.why ?? (r.seen === 'sni' ? 'TLS without a server name' : 'an HTTP request the relay does not pass (smuggling shape, Upgrade, or the HTTP/2 preface)'), lineOf(r.src));
  if (r.rule !== null && r.rule !== undefined) return MSG.denialRule(r.rule, short ? undefined : rules.get(r.rule), r.src);
  if (r.class || r.kind === 'answer-withheld') return MSG.denialClass(r.addr ? addressClass(r.addr) : 'a refused address class', lineOf(r.src));
  return MSG.denialNoRule(lineOf(r.src));
}

/** "10:01:02" of the record's time (UTC, as written). */
const clock = (t: string) => (/T(\d\d:\d\d:\d\d)/.exec(t)?.[1] ?? t);

/** The human line of one record (design 5); records from before `started` (the command's start,
 * ISO) are the attestation's own probes, refused on purpose, and say so. */
export function denialLine(r: Denial, rules: Map<number, string>, started?: string): string {
  // comm is a name the sandbox chose: only printable ASCII of it reaches the terminal.
  // A process outside the sandbox's PID namespace (the attestation's probe, run by the CLI) has
  // only its host PID.
  const proc = r.comm ? `${r.comm.replace(/[^\x20-\x7e]/g, '?')}${r.pid ? `[${r.pid}]` : r.hostPid ? `[host ${r.hostPid}]` : ''} ` : '';
  const h = how(r);
  return `${clock(r.t)} ${proc}${target(r)}${h ? ` ${h}` : ''} ${verdict(r, rules)}${(r.count ?? 1) > 1 ? ` (${r.count} times)` : ''}${started && r.t < started ? MSG.denialProbe : ''}`;
}

const LOOKUPS = new Set(['lookup', 'answer-withheld']);

/** The one line a foreground run ends with, or '' when nothing was refused: counts, then up to
 * `shown` distinct refusals in the order first seen, and where to read the rest (`more`). */
export function denialSummary(records: Denial[], rules: Map<number, string>, name: string, more: boolean, shown = 3): string {
  if (!records.length) return '';
  let lookups = 0, connections = 0;
  const groups = new Map<string, string>();
  for (const r of records) {
    if (LOOKUPS.has(r.kind)) lookups += r.count ?? 1; else connections += r.count ?? 1;
    const what = `${target(r)}, ${verdict(r, rules, true).replace(/^refused: /, '')}`;
    if (!groups.has(what)) groups.set(what, what);
  }
  const list = [...groups.values()];
  return MSG.denialSummary({ lookups, connections }, list.slice(0, shown), list.length - Math.min(shown, list.length), more ? name : undefined);
}

/** egress.status (contract 6), as sbx-egress rewrites it. */
export interface EgressStatus {
  pid?: number; nonce?: string; digest?: string;
  lookups?: { answered?: number; refused?: number; withheld?: number; forwarded?: number };
  connections?: { relayed?: number; refused?: number; open?: number };
  kernel?: { refused?: number };
}

/** inspect's egress block: the rules, what was refused (from the status file's running totals), the relay and whether it still runs. */
export function egressInfo(rules: number, st: EgressStatus | undefined, running?: boolean) {
  return {
    rules,
    refused: { lookups: st?.lookups?.refused ?? 0, answersWithheld: st?.lookups?.withheld ?? 0, connections: st?.connections?.refused ?? 0, kernel: st?.kernel?.refused ?? 0 },
    // running: whether sbx-egress is still there (false: it ended, and the sandbox fails closed).
    relay: st ? { pid: st.pid ?? null, open: running === false ? 0 : st.connections?.open ?? 0, carried: st.connections?.relayed ?? 0, ...(running !== undefined ? { running } : {}) } : null,
  };
}

/** inspect's text line for it. */
export function egressLine(info: ReturnType<typeof egressInfo>): string {
  return MSG.egressInspect(info);
}
