// Image references as Docker reads them: `busybox` is docker.io/library/busybox:latest,
// `host:5000/name:tag` names its registry, `name@sha256:…` pins a manifest. Pure.

export interface Reference {
  /** The registry's host[:port] as written; docker.io for Docker Hub. */
  registry: string;
  /** The repository path inside it, with library/ for Docker Hub's official images. */
  repository: string;
  tag?: string;
  digest?: string;
  /** The normalised form: registry/repository[:tag][@digest]. */
  canonical: string;
}

export class ReferenceError extends Error {}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

export function parseReference(text: string): Reference {
  let rest = text.trim();
  if (!rest) throw new ReferenceError('an empty image reference');
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new ReferenceError(`${text}: the digest must be sha256: and 64 lowercase hex digits`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new ReferenceError(`${text}: "${tag}" is not a valid tag (letters, digits, _ . -, at most 128)`);
  }
  const parts = rest.split('/');
  // The first part is a registry when it looks like a host: a dot, a port, or localhost.
  let registry = 'docker.io';
  if (parts.length > 1 && (parts[0]!.includes('.') || parts[0]!.includes(':') || parts[0] === 'localhost')) registry = parts.shift()!;
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = 'docker.io';
  if (registry === 'docker.io' && parts.length === 1) parts.unshift('library');
  for (const p of parts) if (!COMPONENT.test(p)) throw new ReferenceError(`${text}: "${p}" is not a valid repository name part (lowercase letters, digits, and . _ - between them)`);
  const repository = parts.join('/');
  if (!tag && !digest) tag = 'latest';
  return { registry, repository, tag, digest, canonical: `${registry}/${repository}${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}` };
}

/** The host the Distribution API is served on: Docker Hub's differs from its name. */
export function registryHost(ref: Reference): string {
  return ref.registry === 'docker.io' ? 'registry-1.docker.io' : ref.registry;
}

/** Whether a registry (host[:port] as written in a reference) is on this machine's loopback:
 * localhost, 127.0.0.0/8 or [::1]. Such a registry is reached over plain HTTP, as Docker does: no
 * one else can be on the path, and a local test registry has no certificate. */
export function isLoopbackRegistry(registry: string): boolean {
  let host: string;
  // The URL parser normalises the host: 127.1 → 127.0.0.1, [0:0::1] → [::1], LOCALHOST → localhost.
  try { host = new URL(`http://${registry}/`).hostname; } catch { return false; }
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** How a registry is reached over plain HTTP, if it is: on this machine's loopback (always, as
 * Docker does), or named in insecure_registries or --insecure-registry. */
export function plainHttp(registry: string, insecure: readonly string[]): 'loopback' | 'insecure' | undefined {
  return isLoopbackRegistry(registry) ? 'loopback' : insecure.includes(registry) ? 'insecure' : undefined;
}
