// A push parser for tar streams (ustar, pax extended headers, GNU long names), as image layers
// and `docker save` archives are written. Pure: bytes in, entries and their bodies out; the
// caller decides what touches the disk. Bodies are passed on as slices of the input, unbuffered.

export interface TarEntry {
  name: string;
  /** '0' file, '1' hard link, '2' symlink, '3' char device, '4' block device, '5' folder, '6' fifo. */
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  /** pax SCHILY.xattr.* records: extended attributes, such as security.capability. */
  xattrs: Record<string, Buffer>;
}

export class TarError extends Error {}

/** Called for each entry; returns where its body goes (null: skipped), and is told when it ends. */
export interface TarSink { data(chunk: Buffer): void; end(): void }

const BLOCK = 512;

function str(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}

function num(b: Buffer, off: number, len: number): number {
  // base-256 (GNU) for values that do not fit in octal: the high bit of the first byte is set.
  if (b[off]! & 0x80) {
    let v = b[off]! & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i]!;
    return v;
  }
  const s = str(b, off, len).trim();
  return s ? parseInt(s, 8) : 0;
}

export class TarParser {
  private header = Buffer.alloc(0);
  private state: 'header' | 'body' | 'pad' = 'header';
  private remaining = 0;
  private pad = 0;
  private sink: TarSink | null = null;
  private meta: { type: string; chunks: Buffer[] } | null = null;
  private pax: Record<string, Buffer> = {};
  private zeroBlocks = 0;
  done = false;

  constructor(private readonly onEntry: (e: TarEntry) => TarSink | null) {}

  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && !this.done) {
      if (this.state === 'body') {
        const n = Math.min(this.remaining, chunk.length - off);
        if (n > 0) {
          const part = chunk.subarray(off, off + n);
          if (this.meta) this.meta.chunks.push(Buffer.from(part));
          else this.sink?.data(part);
        }
        off += n;
        this.remaining -= n;
        if (this.remaining === 0) this.endBody();
        continue;
      }
      if (this.state === 'pad') {
        const n = Math.min(this.pad, chunk.length - off);
        off += n;
        this.pad -= n;
        if (this.pad === 0) this.state = 'header';
        continue;
      }
      const take = Math.min(BLOCK - this.header.length, chunk.length - off);
      this.header = this.header.length ? Buffer.concat([this.header, chunk.subarray(off, off + take)]) : Buffer.from(chunk.subarray(off, off + take));
      off += take;
      if (this.header.length === BLOCK) { const h = this.header; this.header = Buffer.alloc(0); this.onHeader(h); }
    }
  }

  /** The stream ended: it must not stop inside an entry. */
  finish(): void {
    if (this.state !== 'header' || this.header.length) throw new TarError('the archive ends in the middle of an entry (truncated)');
  }

  private onHeader(h: Buffer): void {
    if (h.every((x) => x === 0)) { if (++this.zeroBlocks === 2) this.done = true; return; }
    this.zeroBlocks = 0;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    if (sum !== num(h, 148, 8)) throw new TarError('a tar header has a bad checksum: the archive is corrupt or not a tar archive');
    const type = String.fromCharCode(h[156] || 48);
    let size = num(h, 124, 12);
    if (type === 'x' || type === 'L' || type === 'K' || type === 'g') {
      this.meta = { type, chunks: [] };
      this.startBody(size);
      return;
    }
    const pax = this.pax;
    this.pax = {};
    // POSIX ustar ("ustar\0") has a name prefix field; old GNU ("ustar  ") keeps other fields there.
    const prefix = h.subarray(257, 262).toString() === 'ustar' && h[262] === 0 ? str(h, 345, 155) : '';
    let name = pax.path?.toString() ?? (prefix ? `${prefix}/${str(h, 0, 100)}` : str(h, 0, 100));
    if (pax.size) size = Number(pax.size.toString());
    const xattrs: Record<string, Buffer> = {};
    for (const [k, v] of Object.entries(pax)) if (k.startsWith('SCHILY.xattr.')) xattrs[k.slice(13)] = v;
    if (pax.GNU_longname) name = pax.GNU_longname.toString();
    const entry: TarEntry = {
      name, type: type === '7' || type === '\0' ? '0' : type, mode: num(h, 100, 8), uid: pax.uid ? Number(pax.uid.toString()) : num(h, 108, 8), gid: pax.gid ? Number(pax.gid.toString()) : num(h, 116, 8),
      size, mtime: pax.mtime ? Math.floor(Number(pax.mtime.toString())) : num(h, 136, 12),
      linkname: pax.linkpath?.toString() ?? pax.GNU_longlink?.toString() ?? str(h, 157, 100), xattrs,
    };
    // Only files carry a body; a size on a link or folder is skipped over all the same.
    this.sink = this.onEntry(entry);
    this.startBody(size);
  }

  private startBody(size: number): void {
    this.remaining = size;
    this.pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (size === 0) this.endBody();
    else this.state = 'body';
  }

  private endBody(): void {
    if (this.meta) {
      const body = Buffer.concat(this.meta.chunks);
      if (this.meta.type === 'x') this.pax = { ...this.pax, ...parsePax(body) };
      else if (this.meta.type === 'L') this.pax.GNU_longname = body.subarray(0, body.indexOf(0) < 0 ? body.length : body.indexOf(0));
      else if (this.meta.type === 'K') this.pax.GNU_longlink = body.subarray(0, body.indexOf(0) < 0 ? body.length : body.indexOf(0));
      this.meta = null;
    } else {
      this.sink?.end();
      this.sink = null;
    }
    this.state = this.pad ? 'pad' : 'header';
  }
}

/** "LEN key=value\n" records; values stay bytes (xattrs are binary). */
function parsePax(body: Buffer): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  let off = 0;
  while (off < body.length) {
    const sp = body.indexOf(32, off);
    if (sp < 0) break;
    const len = parseInt(body.toString('ascii', off, sp), 10);
    if (!(len > 0) || off + len > body.length) throw new TarError('a pax extended header is malformed');
    const rec = body.subarray(sp + 1, off + len - 1);
    const eq = rec.indexOf(61);
    if (eq > 0) out[rec.toString('utf8', 0, eq)] = Buffer.from(rec.subarray(eq + 1));
    off += len;
  }
  return out;
}
