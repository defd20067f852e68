// Pulling an image into the store: from a registry (the Distribution HTTP API v2, anonymous
// token auth, HTTPS unless the registry is on loopback or marked insecure), or from an OCI image layout folder
// (`oci:PATH[:TAG]`). Multi-arch indexes pick the host's platform. Every blob is checked against
// its digest before it is kept; every layer is unpacked into its own folder and checked against
// the config's diff ID. Runs in the CLI process, as root or as the caller: a rootless pull gives
// the layers' files the owners the caller's user namespace maps them to (owners.ts), and first
// checks that the store's file system holds the user.* xattrs a rootless overlayfs reads.
import { existsSync, readFileSync, createReadStream } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseReference, plainHttp, registryHost, type Reference } from './reference';
import { checkUserXattrs, Store, StoreError, type ImageConfig, type ImageRecord } from './store';
import { defaultOwners, unpackLayer, type NodeOps } from './unpack';
import { singleMapNote, type LayerOwners } from './owners';

export class PullError extends Error {}

const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
};
const ACCEPT = [MT.ociIndex, MT.ociManifest, MT.dockerList, MT.dockerManifest].join(', ');

export interface PullEvent { type: 'layer'; digest: string; size: number; done: number; phase: 'cached' | 'download' | 'unpack' | 'done' }

export interface PullOptions {
  store: Store;
  ops: NodeOps;
  /** Registries (host[:port]) reached over plain HTTP. */
  insecure?: string[];
  onEvent?: (e: PullEvent) => void;
  /** Ask the registry even if the store has the image (sandbox pull does; up does not). */
  refresh?: boolean;
  /** How the layers' owners land on disk: undefined for root of the host (the tar's owners), else
   * the maps of the user namespace the image will run in (default: the caller's, owners.ts). */
  owners?: LayerOwners;
  /** Said once by a pull that unpacks something (a rootless caller with a one-id map); written
   * to stderr when not given. */
  onNote?: (message: string) => void;
}

export interface PulledImage { record: ImageRecord; config: ImageConfig; layerDirs: string[]; cached: boolean }

interface Descriptor { mediaType: string; digest: string; size: number; platform?: { os: string; architecture: string; variant?: string } }
interface Manifest { mediaType?: string; manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] }

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
export const hostPlatform = () => `linux/${ARCH[process.arch] ?? process.arch}`;

/** A blob source: the registry, or an OCI layout folder. */
interface Source {
  where: string;
  manifest(ref: string): Promise<Buffer>;
  blob(d: Descriptor, sink: (chunk: Buffer) => void): Promise<void>;
}

/** What a plain-HTTP request to a TLS server gets from Go's net/http (the Distribution registry's). */
const TLS_ONLY = /client sent an http request to an https server/i;

/** Why a registry cannot be reached, in words, with what to do: one sentence, said once. `e` is
 * what fetch threw (its cause holds the socket's or TLS's error code). */
export function unreachable(e: unknown, o: { base: string; registry: string; plain: boolean; timeoutMs: number }): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? (e as { code?: string }).code ?? '';
  const name = (e as Error).name;
  const dns = new URL(o.base).hostname;
  const tls = o.plain || o.registry === 'docker.io' ? '' : `; if it serves plain HTTP, name it with --insecure-registry ${o.registry} or in insecure_registries`;
  let why: string;
  if (name === 'TimeoutError' || name === 'AbortError' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') why = `it did not answer within ${o.timeoutMs / 1000} s`;
  else if (code === 'ECONNREFUSED') why = 'nothing listens there (connection refused); start the registry, or check the host and port in the image\'s name';
  else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') why = `the name ${dns} does not resolve (no such host, or no DNS here); check the image's name, or pull it where the registry is reachable and bring it with \`sandbox pull oci:PATH\``;
  else if (code === 'ENETUNREACH' || code === 'EHOSTUNREACH') why = 'no route leads there from this host';
  else if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number/.test(cause?.message ?? '')) why = `it answers in plain HTTP, not HTTPS: name it with --insecure-registry ${o.registry} or in insecure_registries`;
  else if (/CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code)) return `cannot reach ${o.base}: its TLS certificate is not trusted (${cause?.message ?? code}); give sandbox its CA: NODE_EXTRA_CA_CERTS=/path/to/ca.pem`;
  else if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') why = `it closed the connection${tls}`;
  else why = `${cause?.message ?? (e as Error).message}${code && !(cause?.message ?? '').includes(code) ? ` (${code})` : ''}${tls}`;
  return `cannot reach ${o.base}: ${why}`;
}

/** Whether the registry answers at all, with a short timeout: a GET of /v2/, where any answer
 * (200, or 401 asking for a token) means it is there. Undefined when it is; else why not. Run
 * before a pull, so that an unreachable registry is said before anything else happens. */
export async function probeRegistry(registry: string, insecure: readonly string[], timeoutMs = 5000): Promise<string | undefined> {
  const plain = plainHttp(registry, insecure) !== undefined;
  const host = registryHost({ registry, repository: '', canonical: '' });
  const base = `${plain ? 'http' : 'https'}://${host}`;
  try {
    const res = await fetch(`${base}/v2/`, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    const text = res.status === 400 ? await res.text().catch(() => '') : '';
    await res.body?.cancel().catch(() => undefined);
    return TLS_ONLY.test(text) ? httpsOnly(base, registry, plainHttp(registry, insecure)!) : undefined;
  } catch (e) { return unreachable(e, { base, registry, plain, timeoutMs }); }
}

/** A registry asked in plain HTTP that only speaks HTTPS. */
function httpsOnly(base: string, registry: string, why: 'loopback' | 'insecure'): string {
  return `cannot reach ${base}: it answers only in HTTPS, and ${why === 'loopback' ? 'a registry on loopback is reached over plain HTTP' : `${registry} is named in insecure_registries or --insecure-registry`}; ${why === 'loopback' ? 'serve it over plain HTTP on loopback' : 'remove it from there'}`;
}

function registrySource(ref: Reference, insecure: readonly string[]): Source {
  const host = registryHost(ref);
  const how = plainHttp(ref.registry, insecure);
  const base = `${how ? 'http' : 'https'}://${host}`;
  const repoBase = `${base}/v2/${ref.repository}`;
  let token: string | undefined;
  const get = async (path: string, accept?: string): Promise<Response> => {
    const url = `${repoBase}${path}`;
    const headers: Record<string, string> = {};
    if (accept) headers.Accept = accept;
    const attempt = async () => {
      try {
        return await fetch(url, { headers: { ...headers, ...(token ? { Authorization: `Bearer ${token}` } : {}) }, redirect: 'follow', signal: AbortSignal.timeout(60_000) });
      } catch (e) {
        throw new PullError(unreachable(e, { base, registry: ref.registry, plain: how !== undefined, timeoutMs: 60_000 }));
      }
    };
    let res = await attempt();
    if (res.status === 401 && !token) {
      // Anonymous token auth, as Docker Hub and most registries ask for.
      const m = /^Bearer\s+(.*)$/i.exec(res.headers.get('www-authenticate') ?? '');
      if (!m) throw new PullError(`${url}: the registry wants credentials, and sandbox pulls anonymously`);
      const params = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
      const t = await fetch(`${params.realm}?${new URLSearchParams({ ...(params.service ? { service: params.service } : {}), scope: params.scope ?? `repository:${ref.repository}:pull` })}`, { signal: AbortSignal.timeout(30_000) }).catch((e) => { throw new PullError(`cannot get a token from ${params.realm}: ${(e as Error).message}`); });
      if (!t.ok) throw new PullError(`${params.realm} refused an anonymous token (HTTP ${t.status}): the image may be private or not exist`);
      const body = await t.json() as { token?: string; access_token?: string };
      token = body.token ?? body.access_token;
      res = await attempt();
    }
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      if (how && res.status === 400 && TLS_ONLY.test(text)) throw new PullError(httpsOnly(base, ref.registry, how));
      const reason = res.status === 404 ? 'not found' : `HTTP ${res.status}`;
      throw new PullError(`${url}: ${reason}${text ? ` (${text.trim().slice(0, 200)})` : ''}`);
    }
    return res;
  };
  return {
    where: base,
    async manifest(r) { return Buffer.from(await (await get(`/manifests/${r}`, ACCEPT)).arrayBuffer()); },
    async blob(d, sink) {
      const res = await get(`/blobs/${d.digest}`);
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) sink(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    },
  };
}

function layoutSource(dir: string, tag: string | undefined): { source: Source; top: () => Buffer } {
  const blob = (digest: string) => join(dir, 'blobs', ...digest.split(':'));
  const index = (): Manifest => {
    try { return JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as Manifest; } catch (e) { throw new PullError(`${dir} is not an OCI image layout (no readable index.json): ${(e as Error).message}`); }
  };
  return {
    source: {
      where: dir,
      async manifest(digest) { return readFileSync(blob(digest)); },
      async blob(d, sink) { for await (const c of createReadStream(blob(d.digest), { highWaterMark: 1 << 20 })) sink(c as Buffer); },
    },
    top: () => {
      const ms = index().manifests ?? [];
      const named = tag ? ms.filter((m) => (m as Descriptor & { annotations?: Record<string, string> }).annotations?.['org.opencontainers.image.ref.name'] === tag) : ms;
      if (named.length !== 1) throw new PullError(`${dir}: ${named.length ? 'several images' : 'no image'}${tag ? ` tagged ${tag}` : ''} in index.json${tag ? '' : '; name one with oci:PATH:TAG'}`);
      return readFileSync(blob(named[0]!.digest));
    },
  };
}

const sha = (b: Buffer) => `sha256:${require('node:crypto').createHash('sha256').update(b).digest('hex')}`;

/**
 * A `docker save` archive: its files are unpacked (with the layer unpacker, so the archive's own
 * paths are checked too) into a temporary folder, and its manifest.json becomes an OCI manifest
 * whose layers are the archive's uncompressed layer tars.
 */
async function archiveSource(file: string, tag: string | undefined, ops: NodeOps): Promise<{ source: Source; top: () => Buffer; cleanup: () => void }> {
  const { mkdtempSync, rmSync, statSync } = require('node:fs') as typeof import('node:fs');
  const { tmpdir } = require('node:os') as typeof import('node:os');
  const tmp = mkdtempSync(join(tmpdir(), 'sandbox-archive-'));
  const cleanup = () => rmSync(tmp, { recursive: true, force: true });
  try {
    // The archive's own files (its manifest and layer tars) are read here and thrown away: as the caller's, whoever owns them in the archive.
    const own = defaultOwners();
    await unpackLayer(file, join(tmp, 'x'), undefined, ops, undefined, own && { uid: own.uid.slice(0, 1), gid: own.gid.slice(0, 1), user: own.user, single: 'a docker save archive' });
  } catch (e) { cleanup(); throw new PullError(`${file} is not a readable docker save archive: ${(e as Error).message}`); }
  const dir = join(tmp, 'x');
  let entries: { Config: string; RepoTags?: string[] | null; Layers: string[] }[];
  try { entries = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')); } catch { cleanup(); throw new PullError(`${file} has no manifest.json: it is not a docker save archive`); }
  const pick = tag ? entries.filter((e) => (e.RepoTags ?? []).some((t) => t === tag || t.endsWith(`:${tag}`) || t.split(':')[0] === tag)) : entries;
  if (pick.length !== 1) { cleanup(); throw new PullError(`${file}: ${pick.length ? 'several images' : 'no image'}${tag ? ` named ${tag}` : ''} (it has ${entries.flatMap((e) => e.RepoTags ?? ['<untagged>']).join(', ')}); name one with docker-archive:PATH:NAME`); }
  const inArchive = (p: string) => join(dir, ...components(p));
  const config = readFileSync(inArchive(pick[0]!.Config));
  const paths = new Map<string, string>([[sha(config), inArchive(pick[0]!.Config)]]);
  const layers = pick[0]!.Layers.map((l) => {
    const p = inArchive(l);
    const digest = `sha256:${require('node:crypto').createHash('sha256').update(readFileSync(p)).digest('hex')}`;
    paths.set(digest, p);
    return { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: statSync(p).size };
  });
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length }, layers }));
  return {
    source: {
      where: file,
      async manifest() { return manifest; },
      async blob(d, sink) {
        const p = paths.get(d.digest);
        if (!p) throw new PullError(`${file} has no blob ${d.digest}`);
        for await (const c of createReadStream(p, { highWaterMark: 1 << 20 })) sink(c as Buffer);
      },
    },
    top: () => manifest,
    cleanup,
  };
}

/** Archive paths as unpacked: the same checks as layer entries (no .., no absolute path). */
function components(p: string): string[] {
  const parts = p.split('/').filter((x) => x && x !== '.');
  if (p.startsWith('/') || parts.includes('..')) throw new PullError(`the archive names ${p}, outside itself`);
  return parts;
}

/** The store's name for an image: a registry reference's canonical form, oci:PATH[:TAG] or docker-archive:PATH[:NAME]. */
export function imageKey(text: string): { key: string; ref?: Reference; layout?: { dir: string; tag?: string }; archive?: { file: string; tag?: string } } {
  if (text.startsWith('docker-archive:')) {
    const rest = text.slice(15);
    const m = /^(.+?\.tar)(?::(.+))?$/.exec(rest);
    const file = existsSync(rest) || !m ? rest : m[1]!;
    const tag = existsSync(rest) || !m ? undefined : m[2];
    return { key: `docker-archive:${file}${tag ? `:${tag}` : ''}`, archive: { file, tag } };
  }
  if (text.startsWith('oci:')) {
    const rest = text.slice(4);
    const m = /^(.+?)(?::([\w][\w.-]{0,127}))?$/.exec(rest)!;
    // Absolute (a file's are already; the command line's start at the current folder), so that one
    // layout is one key from any folder.
    const dir = resolve(existsSync(rest) ? rest : m[1]!);
    // Without a tag, the layout's one image, as the pull takes it, named by its tag: so that
    // oci:DIR and oci:DIR:latest are one image in the store, as busybox and busybox:latest are.
    const tag = (existsSync(rest) ? undefined : m[2]) ?? soleTag(dir);
    return { key: `oci:${dir}${tag ? `:${tag}` : ''}`, layout: { dir, tag } };
  }
  const ref = parseReference(text);
  return { key: ref.canonical, ref };
}

/** The tag (org.opencontainers.image.ref.name) of the one image an OCI layout's index.json holds;
 * undefined when it holds several (oci:DIR then names none), none, an untagged one, or cannot be read. */
function soleTag(dir: string): string | undefined {
  let index: { manifests?: { annotations?: Record<string, string> }[] };
  try { index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as typeof index; } catch { return undefined; }
  const ms = index.manifests ?? [];
  const tag = ms.length === 1 ? ms[0]!.annotations?.['org.opencontainers.image.ref.name'] : undefined;
  return tag && /^[\w][\w.-]{0,127}$/.test(tag) ? tag : undefined;
}

/** The image from the store, pulling whatever is missing. */
export async function pull(text: string, o: PullOptions): Promise<PulledImage> {
  const { key, ref, layout, archive } = imageKey(text);
  const cachedRecord = o.refresh ? undefined : o.store.complete(key);
  if (cachedRecord) {
    return { record: cachedRecord, config: (JSON.parse(o.store.readBlob(cachedRecord.config).toString()) as { config?: ImageConfig }).config ?? {}, layerDirs: cachedRecord.diffIds.map((d) => o.store.layerPath(d)), cached: true };
  }
  let source: Source;
  let topBytes: Buffer;
  let cleanup = () => {};
  if (archive) {
    const a = await archiveSource(archive.file, archive.tag, o.ops);
    source = a.source;
    topBytes = a.top();
    cleanup = a.cleanup;
  } else if (layout) {
    const l = layoutSource(layout.dir, layout.tag);
    source = l.source;
    topBytes = l.top();
  } else {
    source = registrySource(ref!, o.insecure ?? []);
    topBytes = await source.manifest(ref!.digest ?? ref!.tag!);
    if (ref!.digest && sha(topBytes) !== ref!.digest) throw new PullError(`the registry served a manifest that is ${sha(topBytes)}, not the ${ref!.digest} asked for; nothing was kept`);
  }
  try {
    return await fetchAll(key, source, topBytes, o);
  } finally { cleanup(); }
}

async function fetchAll(key: string, source: Source, topBytes: Buffer, o: PullOptions): Promise<PulledImage> {
  let manifestBytes = topBytes;
  let manifest = JSON.parse(topBytes.toString()) as Manifest;
  let index: string | undefined;
  if (manifest.manifests) {
    index = sha(topBytes);
    o.store.put(index, topBytes);
    const [os, arch] = hostPlatform().split('/');
    const pick = manifest.manifests.find((m) => m.platform?.os === os && m.platform?.architecture === arch);
    if (!pick) throw new PullError(`${key} has no image for ${hostPlatform()} (it has ${manifest.manifests.map((m) => `${m.platform?.os}/${m.platform?.architecture}`).join(', ')})`);
    manifestBytes = await source.manifest(pick.digest);
    if (sha(manifestBytes) !== pick.digest) throw new PullError(`the manifest for ${hostPlatform()} is ${sha(manifestBytes)}, not the ${pick.digest} its index names; nothing was kept`);
    manifest = JSON.parse(manifestBytes.toString()) as Manifest;
  }
  if (!manifest.config || !manifest.layers) throw new PullError(`${key}: the manifest has no config or layers (media type ${manifest.mediaType ?? 'unknown'})`);
  const manifestDigest = sha(manifestBytes);
  o.store.put(manifestDigest, manifestBytes);

  const fetchBlob = async (d: Descriptor, progress?: (n: number) => void) => {
    if (o.store.has(d.digest)) return;
    const w = o.store.writer(d.digest, d.size);
    try {
      await source.blob(d, (chunk) => { w.write(chunk); progress?.(chunk.length); });
      w.commit();
    } catch (e) {
      w.abort();
      if (e instanceof StoreError || e instanceof PullError) throw e;
      throw new PullError(`downloading ${d.digest} from ${source.where} failed: ${(e as Error).message}; nothing of it was kept`);
    }
  };
  await fetchBlob(manifest.config);
  const configJson = JSON.parse(o.store.readBlob(manifest.config.digest).toString()) as { config?: ImageConfig; rootfs?: { diff_ids?: string[] }; os?: string; architecture?: string };
  const diffIds = configJson.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) throw new PullError(`${key}: the config names ${diffIds.length} layers and the manifest ${manifest.layers.length}`);

  // Rootless: the store must hold user xattrs, checked once before the first layer is unpacked;
  // a one-id map is said once.
  const owners = 'owners' in o ? o.owners : defaultOwners();
  let checked = false;
  const beforeUnpack = () => {
    if (checked || !owners) return;
    checked = true;
    checkUserXattrs(o.store.root, o.ops.lsetxattr);
    if (owners.single) { const note = `sandbox: ${singleMapNote(owners)}`; if (o.onNote) o.onNote(note); else process.stderr.write(`${note}\n`); }
  };
  // Before any layer is fetched: a store that cannot hold them is refused with only the config in it.
  if (manifest.layers.some((_, i) => !existsSync(o.store.layerPath(diffIds[i]!)))) beforeUnpack();
  // Layers download in parallel (4 at a time); each is unpacked once it is in the store.
  const queue = manifest.layers.map((d, i) => ({ d, i }));
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const { d, i } = next;
      const dir = o.store.layerPath(diffIds[i]!);
      if (existsSync(dir)) { o.onEvent?.({ type: 'layer', digest: d.digest, size: d.size, done: d.size, phase: 'cached' }); continue; }
      let done = 0;
      o.onEvent?.({ type: 'layer', digest: d.digest, size: d.size, done, phase: 'download' });
      await fetchBlob(d, (n) => { done += n; o.onEvent?.({ type: 'layer', digest: d.digest, size: d.size, done, phase: 'download' }); });
      o.onEvent?.({ type: 'layer', digest: d.digest, size: d.size, done: d.size, phase: 'unpack' });
      beforeUnpack();
      try { await unpackLayer(o.store.blobPath(d.digest), dir, diffIds[i], o.ops, undefined, owners); } catch (e) { throw new PullError(`layer ${d.digest} of ${key}: ${(e as Error).message}`); }
      o.onEvent?.({ type: 'layer', digest: d.digest, size: d.size, done: d.size, phase: 'done' });
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, queue.length) }, worker));

  const record: ImageRecord & { index?: string } = {
    reference: key, source: source.where, manifest: manifestDigest, config: manifest.config.digest,
    layers: manifest.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })), diffIds,
    size: manifest.layers.reduce((t, l) => t + l.size, 0), pulledAt: new Date().toISOString(), ...(index ? { index } : {}),
  };
  o.store.saveRecord(record);
  return { record, config: configJson.config ?? {}, layerDirs: diffIds.map((d) => o.store.layerPath(d)), cached: false };
}
