// The egress attestation's probes (docs/egress-design.md 6): typed requests for sbx_netprobe
// (native/src/netprobe.c), which runs them from inside a sandbox's network namespace, and its
// answers read back. Runs in the CLI process (root, or the user of a rootless sandbox); the probes
// run in a helper libsbx clones, which joins the sandbox's namespaces, on koffi's worker thread, so
// the event loop never waits on them. These are the kernel's answers, never the engine's report.
import { isIPv4, isIPv6 } from 'node:net';
import { getSystemErrorMap } from 'node:util';
import { loadLibSbx, type LibSbx } from '../ffi/libsbx';
import { OUTCOME, PROBE, PROBE_OFFSET, PROBE_RESULT_OFFSET, PROBE_RESULT_SIZE, PROBE_SIZE } from '../ffi/generated/abi';

/** DNS types and classes the attestation asks for by name; any other by number. */
const DNS_TYPES = { A: 1, NS: 2, CNAME: 5, PTR: 12, TXT: 16, AAAA: 28, SVCB: 64, HTTPS: 65, ANY: 255 } as const;
const DNS_CLASSES = { IN: 1, CH: 3 } as const;

export type NetProbe =
  /** A TCP connect to addr (IPv4 or IPv6) and port. */
  | { kind: 'tcp'; addr: string; port: number; timeoutMs?: number }
  /** A DNS query over UDP (a connected socket: ICMP errors come back) or TCP; type A and class IN unless said. */
  | { kind: 'dns'; transport: 'udp' | 'tcp'; addr: string; port?: number; name: string; type?: keyof typeof DNS_TYPES | number; class?: keyof typeof DNS_CLASSES | number; timeoutMs?: number }
  /** The namespace's IPv6 addresses (its /proc/net/if_inet6, read from inside). */
  | { kind: 'inet6-addrs' };

/** connected (TCP), answered (DNS), counted (inet6-addrs) went through; the others did not, and why. */
export type NetOutcome = 'connected' | 'answered' | 'counted' | 'refused' | 'unreachable' | 'timeout' | 'error';

export interface NetProbeResult {
  probe: NetProbe;
  outcome: NetOutcome;
  /** The errno behind the outcome (0: none), and its name ('ECONNREFUSED', or ''). */
  errno: number;
  code: string;
  /** From the probe's socket to its outcome, in microseconds, in the helper. */
  us: number;
  /** answered: the response's rcode (0 NOERROR, 3 NXDOMAIN, 5 REFUSED...), its answer count and
   * its first A (dotted) or TXT string ('' if none). counted: answers = the address count, text =
   * the first address that is not ::1, as 32 hex digits. */
  rcode?: number;
  answers?: number;
  text?: string;
}

/** sbx_netprobe takes at most this many probes a call: more are run in several calls. */
export const NETPROBE_BATCH = 64;
/** A probe's budget when it names none: a refusal inside the sandbox comes in well under it. */
export const DEFAULT_TIMEOUT_MS = 50;

const OUTCOMES: Record<number, NetOutcome> = {
  [OUTCOME.CONNECTED]: 'connected', [OUTCOME.ANSWERED]: 'answered', [OUTCOME.COUNTED]: 'counted', [OUTCOME.REFUSED]: 'refused',
  [OUTCOME.UNREACHABLE]: 'unreachable', [OUTCOME.TIMEOUT]: 'timeout', [OUTCOME.ERROR]: 'error',
};

/** An IPv6 address's 16 bytes (a trailing dotted IPv4 part included). */
function ipv6Bytes(addr: string): Buffer {
  let text = addr;
  const v4 = /:(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) { const b = v4[1]!.split('.').map(Number); text = `${text.slice(0, v4.index)}:${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`; }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const words = (s: string | undefined) => (s ? s.split(':').map((w) => parseInt(w, 16)) : []);
  const h = words(head), t = words(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = Buffer.alloc(16);
  all.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

/** struct sbx_probe for one probe (sbx.h); a malformed request is the caller's error. */
function encode(p: NetProbe, out: Buffer, at: number): void {
  const o = (field: keyof typeof PROBE_OFFSET) => at + PROBE_OFFSET[field];
  if (p.kind === 'inet6-addrs') { out.writeUInt32LE(PROBE.INET6_ADDRS, o('kind')); return; }
  const family = isIPv4(p.addr) ? 4 : isIPv6(p.addr) ? 6 : 0;
  if (!family) throw new Error(`netprobe: ${JSON.stringify(p.addr)} is not an IP address`);
  const port = p.kind === 'tcp' ? p.port : p.port ?? 53;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`netprobe: port ${port} is out of range`);
  out.writeUInt32LE(p.kind === 'tcp' ? PROBE.TCP : p.transport === 'udp' ? PROBE.DNS_UDP : PROBE.DNS_TCP, o('kind'));
  out.writeUInt32LE(family, o('family'));
  (family === 4 ? Buffer.from(p.addr.split('.').map(Number)) : ipv6Bytes(p.addr)).copy(out, o('addr'));
  out.writeUInt16LE(port, o('port'));
  out.writeUInt32LE(Math.round((p.timeoutMs ?? DEFAULT_TIMEOUT_MS) * 1000), o('timeout_us'));
  if (p.kind === 'dns') {
    const name = Buffer.from(p.name.replace(/\.$/, ''), 'ascii');
    if (name.length > 253) throw new Error(`netprobe: the name ${p.name.slice(0, 40)}… is over 253 bytes`);
    out.writeUInt16LE(typeof p.type === 'number' ? p.type : DNS_TYPES[p.type ?? 'A'], o('qtype'));
    out.writeUInt16LE(typeof p.class === 'number' ? p.class : DNS_CLASSES[p.class ?? 'IN'], o('qclass'));
    name.copy(out, o('name'));
  }
}

/** struct sbx_probe_result at `at`, as the typed result of probe p. */
function decode(p: NetProbe, buf: Buffer, at: number): NetProbeResult {
  const o = (field: keyof typeof PROBE_RESULT_OFFSET) => at + PROBE_RESULT_OFFSET[field];
  const outcome = OUTCOMES[buf.readUInt32LE(o('outcome'))] ?? 'error';
  const errno = buf.readInt32LE(o('err'));
  const textAt = o('text');
  const nul = buf.indexOf(0, textAt);
  const text = buf.subarray(textAt, nul >= textAt && nul < textAt + 256 ? nul : textAt + 256).toString('latin1');
  const r: NetProbeResult = { probe: p, outcome, errno, code: errno ? getSystemErrorMap().get(-errno)?.[0] ?? '' : '', us: Number(buf.readBigUInt64LE(o('elapsed_us'))) };
  if (outcome === 'answered') Object.assign(r, { rcode: buf.readInt32LE(o('rcode')), answers: buf.readUInt32LE(o('answers')), text });
  if (outcome === 'counted') Object.assign(r, { answers: buf.readUInt32LE(o('answers')), text });
  return r;
}

/**
 * Runs the probes, in order, from inside the network namespace of pid (joining its user namespace
 * first when joinUserns: a rootless sandbox's). One result per probe, in the same order; it
 * rejects (a NativeError with the errno) only when the namespaces cannot be joined.
 */
export async function netprobe(pid: number, probes: NetProbe[], opts: { joinUserns?: boolean; lib?: LibSbx } = {}): Promise<NetProbeResult[]> {
  const lib = opts.lib ?? loadLibSbx();
  const results: NetProbeResult[] = [];
  for (let start = 0; start < probes.length; start += NETPROBE_BATCH) {
    const batch = probes.slice(start, start + NETPROBE_BATCH);
    const req = Buffer.alloc(PROBE_SIZE * batch.length);
    batch.forEach((p, i) => encode(p, req, i * PROBE_SIZE));
    const res = Buffer.alloc(PROBE_RESULT_SIZE * batch.length);
    await lib.netprobe(pid, opts.joinUserns ?? false, req, batch.length, res);
    batch.forEach((p, i) => results.push(decode(p, res, i * PROBE_RESULT_SIZE)));
  }
  return results;
}
