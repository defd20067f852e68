// Test images made offline: a small tar writer (so that malicious layers can be written entry by
// entry), an OCI image from the busybox root that `npm install` builds, Debian's docker-registry
// started on 127.0.0.1, and a push over the Distribution API.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ROOT } from './load';

export interface Entry { name: string; type?: '0' | '1' | '2' | '3' | '5' | '6'; mode?: number; uid?: number; gid?: number; body?: Buffer | string; linkname?: string; pax?: Record<string, string> }

function header(e: Entry, size: number, type: string, name = e.name): Buffer {
  const h = Buffer.alloc(512);
  const put = (s: string, off: number, len: number) => h.write(s.slice(0, len), off, 'utf8');
  const oct = (n: number, off: number, len: number) => put(n.toString(8).padStart(len - 1, '0') + '\0', off, len);
  put(name, 0, 100);
  oct(e.mode ?? (type === '5' ? 0o755 : 0o644), 100, 8);
  oct(e.uid ?? 0, 108, 8);
  oct(e.gid ?? 0, 116, 8);
  oct(size, 124, 12);
  oct(1_700_000_000, 136, 12);
  h.write('        ', 148);
  h.write(type, 156);
  put(e.linkname ?? '', 157, 100);
  h.write('ustar\0' + '00', 257, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  oct(sum, 148, 7);
  return h;
}

const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);

/** A tar archive of exactly these entries, in this order. */
/** Layers that try to write outside their own folder, each with the refusal it must get; an
 * absolute path names `absolute` (a file no other test writes). Root and rootless unpacks both take them. */
export function maliciousLayers(absolute: string): [string, Entry[], RegExp][] {
  return [
    ['../ in a name', [{ name: '../outside/evil', body: 'x' }], /climbs out with \.\./],
    ['a deeper ..', [{ name: 'a/', type: '5' }, { name: 'a/../../outside/evil', body: 'x' }], /climbs out with \.\./],
    ['an absolute path', [{ name: absolute, body: 'x' }], /absolute path/],
    ['a file written through a symlink', [{ name: 'link', type: '2', linkname: '../outside' }, { name: 'link/evil', body: 'x' }], /through the symlink "link"/],
    ['a file through an absolute symlink', [{ name: 'etc', type: '2', linkname: '/etc' }, { name: 'etc/evil-from-layer', body: 'x' }], /through the symlink "etc"/],
    ['a hard link pointing out', [{ name: 'h', type: '1', linkname: '../outside/target' }], /climbs out with \.\./],
    ['a hard link to an absolute path', [{ name: 'h', type: '1', linkname: '/etc/passwd' }], /absolute path/],
    ['a hard link through a symlink', [{ name: 'l', type: '2', linkname: '/etc' }, { name: 'h', type: '1', linkname: 'l/passwd' }], /through the symlink "l"/],
    ['a pax path that climbs out', [{ name: 'innocent', body: 'x', pax: { path: '../outside/evil' } }], /climbs out/],
  ];
}

export function tar(entries: Entry[]): Buffer {
  const out: Buffer[] = [];
  for (const e of entries) {
    if (e.pax) {
      const recs = Object.entries(e.pax).map(([k, v]) => {
        const body = ` ${k}=${v}\n`;
        let len = body.length + 1;
        while (`${len}${body}`.length !== len) len++;
        return `${len}${body}`;
      }).join('');
      out.push(header({ name: 'PaxHeader' }, Buffer.byteLength(recs), 'x'), pad(Buffer.from(recs)));
    }
    const body = e.body === undefined ? Buffer.alloc(0) : Buffer.from(e.body);
    out.push(header(e, body.length, e.type ?? '0'), pad(body));
  }
  out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}

/** The busybox root made by `npm install` (samples/rootfs/busybox), as layer entries. */
export function busyboxEntries(): Entry[] {
  const base = join(ROOT, 'samples/rootfs/busybox');
  const out: Entry[] = [];
  const walk = (dir: string) => {
    for (const n of readdirSync(dir).sort()) {
      const p = join(dir, n);
      const rel = relative(base, p);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out.push({ name: rel, type: '2', linkname: readlinkSync(p), mode: 0o777 });
      else if (st.isDirectory()) { out.push({ name: `${rel}/`, type: '5', mode: st.mode & 0o7777 }); walk(p); }
      else if (st.isFile()) out.push({ name: rel, mode: st.mode & 0o7777, body: readFileSync(p) });
    }
  };
  walk(base);
  return out;
}

export const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface BuiltImage { manifest: Buffer; config: Buffer; blobs: Map<string, Buffer>; diffIds: string[] }

/** An OCI image (manifest, config, gzip layers) from layer tars, bottom first. */
export function buildImage(layers: Buffer[], config: Record<string, unknown>, compress: (b: Buffer) => Buffer = (b) => gzipSync(b)): BuiltImage {
  const blobs = new Map<string, Buffer>();
  const descs = layers.map((l) => { const z = compress(l); const d = sha256(z); blobs.set(d, z); return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d, size: z.length }; });
  const diffIds = layers.map(sha256);
  const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config, rootfs: { type: 'layers', diff_ids: diffIds } }));
  blobs.set(sha256(cfg), cfg);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(cfg), size: cfg.length }, layers: descs }));
  return { manifest, config: cfg, blobs, diffIds };
}

/** An OCI image layout folder holding img under tag. */
export function writeLayout(img: BuiltImage, tag: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-layout-'));
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const [d, b] of [...img.blobs, [sha256(img.manifest), img.manifest] as const]) writeFileSync(join(dir, 'blobs', 'sha256', d.slice(7)), b);
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(img.manifest), size: img.manifest.length, annotations: { 'org.opencontainers.image.ref.name': tag } }] }));
  return dir;
}

export const hasRegistry = spawnSync('sh', ['-c', 'command -v docker-registry'], { stdio: 'ignore' }).status === 0;
export const hasOpenssl = spawnSync('sh', ['-c', 'command -v openssl'], { stdio: 'ignore' }).status === 0;

async function freePort(): Promise<number> {
  return new Promise((resolve) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); }); });
}

/** Debian's docker-registry on 127.0.0.1, its storage in a temporary folder; stop() ends it (by
 * PID). With `tls`, it serves HTTPS only, with a self-signed certificate made by openssl. */
export async function startRegistry(o: { tls?: boolean } = {}): Promise<{ host: string; storage: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-registry-'));
  const port = await freePort();
  if (o.tls) spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
  const tls = o.tls ? `, tls: {certificate: ${dir}/cert.pem, key: ${dir}/key.pem}` : '';
  writeFileSync(join(dir, 'config.yml'), `version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: ${dir}/data}, delete: {enabled: true}}\nhttp: {addr: 127.0.0.1:${port}${tls}}\n`);
  const p: ChildProcess = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: 'ignore' });
  const host = `127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    // A TLS registry answers a plain request with 400: any answer means it is up.
    try { const r = await fetch(`http://${host}/v2/`); if (r.ok || o.tls) break; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 25));
  }
  return { host, storage: join(dir, 'data'), stop: async () => { const gone = new Promise((r) => p.on('exit', r)); p.kill('SIGTERM'); await gone; } };
}

/** Pushes img as host/repo:tag with the Distribution API's monolithic uploads. */
export async function push(host: string, repo: string, tag: string, img: BuiltImage): Promise<string> {
  for (const [digest, body] of img.blobs) {
    const start = await fetch(`http://${host}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    if (start.status !== 202) throw new Error(`upload start: ${start.status}`);
    const loc = new URL(start.headers.get('location')!, `http://${host}`);
    loc.searchParams.set('digest', digest);
    const put = await fetch(loc, { method: 'PUT', body, headers: { 'Content-Type': 'application/octet-stream' } });
    if (put.status !== 201) throw new Error(`upload ${digest}: ${put.status} ${await put.text()}`);
  }
  const m = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: img.manifest, headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } });
  if (m.status !== 201) throw new Error(`manifest: ${m.status} ${await m.text()}`);
  return sha256(img.manifest);
}

/** A `docker save` archive of img (layers uncompressed, as docker writes them), tagged repoTag. */
export function dockerArchive(layers: Buffer[], config: Record<string, unknown>, repoTag: string): string {
  const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config, rootfs: { type: 'layers', diff_ids: layers.map(sha256) } }));
  const entries: Entry[] = [{ name: `${sha256(cfg).slice(7)}.json`, body: cfg }];
  layers.forEach((l, i) => entries.push({ name: `layer${i}/`, type: '5' }, { name: `layer${i}/layer.tar`, body: l }));
  entries.push({ name: 'manifest.json', body: JSON.stringify([{ Config: `${sha256(cfg).slice(7)}.json`, RepoTags: [repoTag], Layers: layers.map((_, i) => `layer${i}/layer.tar`) }]) });
  const file = join(mkdtempSync(join(tmpdir(), 'sbx-archive-')), 'image.tar');
  writeFileSync(file, tar(entries));
  return file;
}

/** Pushes a multi-arch index whose linux/amd64 entry is img and whose linux/arm64 entry is other. */
export async function pushIndex(host: string, repo: string, tag: string, img: BuiltImage, other: BuiltImage): Promise<{ index: string; amd64: string }> {
  const put = async (ref: string, body: Buffer, type: string) => {
    const r = await fetch(`http://${host}/v2/${repo}/manifests/${ref}`, { method: 'PUT', body, headers: { 'Content-Type': type } });
    if (r.status !== 201) throw new Error(`manifest ${ref}: ${r.status} ${await r.text()}`);
  };
  for (const i of [img, other]) {
    await push(host, repo, `tmp-${sha256(i.manifest).slice(7, 15)}`, i);
  }
  const desc = (i: BuiltImage, architecture: string) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(i.manifest), size: i.manifest.length, platform: { os: 'linux', architecture } });
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [desc(other, 'arm64'), desc(img, 'amd64')] }));
  await put(tag, index, 'application/vnd.oci.image.index.v1+json');
  return { index: sha256(index), amd64: sha256(img.manifest) };
}

/** An HTTP front for a registry that wants an anonymous bearer token, as Docker Hub does: 401
 * with WWW-Authenticate until the token its realm hands out is sent. Counts the tokens given. */
export async function tokenFront(registry: string): Promise<{ host: string; tokens: () => number; stop(): Promise<void> }> {
  const { createServer: http } = await import('node:http');
  let given = 0;
  const server = http(async (req, res) => {
    const self = `127.0.0.1:${(server.address() as { port: number }).port}`;
    if (req.url?.startsWith('/token')) { given++; res.setHeader('Content-Type', 'application/json'); res.end(JSON.stringify({ token: 'let-me-in' })); return; }
    if (req.headers.authorization !== 'Bearer let-me-in') {
      res.statusCode = 401;
      res.setHeader('WWW-Authenticate', `Bearer realm="http://${self}/token",service="test-registry",scope="repository:test/busybox:pull"`);
      res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    const upstream = await fetch(`http://${registry}${req.url}`, { headers: { Accept: String(req.headers.accept ?? '*/*') }, redirect: 'follow' });
    res.statusCode = upstream.status;
    for (const h of ['content-type', 'docker-content-digest', 'content-length']) { const v = upstream.headers.get(h); if (v) res.setHeader(h, v); }
    res.end(Buffer.from(await upstream.arrayBuffer()));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { host: `127.0.0.1:${(server.address() as { port: number }).port}`, tokens: () => given, stop: () => new Promise((r) => server.close(() => r())) };
}
