// NODE_EXTRA_CA_CERTS for the CLI's registry requests, in the CLI's process (bin/sandbox.js), as
// the invoking user. Node reads and parses the file that variable names only as it starts, at every
// start (about 40 ms with Debian's CA bundle: twice Node's own start), and most runs reach no
// registry over TLS: bin/sandbox (native/src/cli.c) starts Node without it, and bin/sandbox.js
// puts it back in process.env and marks the process (DEFERRED). A run that must reach a registry
// over TLS after all (an image the store has not got, from a registry neither on loopback nor named
// insecure) first replaces itself with the same command started with the variable: the same pid,
// stdio, terminal and parent, before anything is set up or shown, so that a registry behind a
// private CA is trusted as Node would trust it. The library (src/api) runs in its caller's Node,
// never marked: its TLS is its caller's.
import { loadLibSbx } from '../ffi/libsbx';
import { imageKey } from '../image/pull';
import { plainHttp } from '../image/reference';

const DEFERRED = Symbol.for('sandbox.extraCaDeferred');

/** Restarts this CLI with NODE_EXTRA_CA_CERTS when its Node was started without it; else nothing. */
function restartWithExtraCa(): void {
  if (!(process as unknown as Record<symbol, unknown>)[DEFERRED] || process.env.NODE_EXTRA_CA_CERTS === undefined) return;
  const argv = [process.execPath, ...process.execArgv, '--', process.argv[1]!, ...process.argv.slice(2)];
  const envp = Object.entries(process.env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
  loadLibSbx().execve(process.execPath, argv, envp);
}

/** Before a registry is asked anything: one reached over TLS (neither on loopback nor named
 * insecure) needs the CLI's NODE_EXTRA_CA_CERTS. */
export function beforeRegistry(registry: string, insecure: readonly string[]): void {
  if (!plainHttp(registry, insecure)) restartWithExtraCa();
}

/** Before an image is pulled (and its pull shown): its registry, as beforeRegistry. An OCI layout
 * or an archive needs nothing. */
export function beforePull(text: string, insecure: readonly string[]): void {
  const { ref } = imageKey(text);
  if (ref) beforeRegistry(ref.registry, insecure);
}
