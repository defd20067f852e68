// IP address syntax checks, without loading node:net (which costs start-up time for one regex).

const V4 = /^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$/;

/** 4 or 6 for a valid address, 0 otherwise; the same answers as node:net's isIP. */
export function isIP(s: string): 0 | 4 | 6 {
  if (V4.test(s)) return 4;
  return isIPv6(s) ? 6 : 0;
}

function isIPv6(s: string): boolean {
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (!/^[0-9a-fA-F:.]+$/.test(s) || s.length < 2) return false;
  const groups = 8;
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) { if (!V4.test(tail)) return false; s = s.slice(0, lastColon + 1) + '0:0'; }
  const halves = s.split('::');
  if (halves.length > 2) return false;
  const parts = (h: string) => (h === '' ? [] : h.split(':'));
  const head = parts(halves[0]!), rest = halves.length === 2 ? parts(halves[1]!) : [];
  for (const p of [...head, ...rest]) if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return false;
  const n = head.length + rest.length;
  return halves.length === 2 ? n < groups : n === groups;
}

export function ipToInt(ip: string): number { return ip.split('.').reduce((a, o) => ((a << 8) | Number(o)) >>> 0, 0); }
export function intToIp(n: number): string { return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.'); }

/** An IPv4 subnet as its first address and prefix length. */
export function parseSubnet(cidr: string): { base: number; prefix: number } {
  const [ip, prefix] = cidr.split('/') as [string, string];
  const mask = Number(prefix) === 0 ? 0 : (~0 << (32 - Number(prefix))) >>> 0;
  return { base: (ipToInt(ip) & mask) >>> 0, prefix: Number(prefix) };
}

/** The first address of an IPv4 subnet: the host's end of a private network. */
export function gatewayOf(cidr: string): string { return intToIp(parseSubnet(cidr).base + 1); }
