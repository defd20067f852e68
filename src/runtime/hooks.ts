// The OCI hooks of a bundle, run by sandbox-runtime on the host, as its caller (root), in its own
// namespaces, one after the other in the order config.json lists them. Each gets the container's
// state JSON on stdin (as `state` prints it), its own argv and env (only what the hook lists), and
// is killed when its timeout passes. What a failure means is the caller's: `create` undoes the
// container when a prestart or createRuntime hook fails; `start` and `delete` only warn.
import { spawnSync } from 'node:child_process';
import type { OciHook } from '../import/oci';

/** The hook that failed and why, or undefined when every hook exited 0. */
export function runHooks(kind: string, hooks: readonly OciHook[], state: string): string | undefined {
  for (const [i, h] of hooks.entries()) {
    const r = spawnSync(h.path, h.args.slice(1), {
      argv0: h.args[0] ?? h.path,
      env: Object.fromEntries(h.env.map((e) => { const at = e.indexOf('='); return at < 0 ? [e, ''] : [e.slice(0, at), e.slice(at + 1)]; })),
      input: state,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: h.timeout !== undefined ? h.timeout * 1000 : undefined,
      killSignal: 'SIGKILL',
      maxBuffer: 1 << 20,
    });
    const said = `${r.stderr?.toString() ?? ''}${r.stdout?.toString() ?? ''}`.trim().slice(0, 1000);
    // A hook may exit without reading its stdin (EPIPE on the state's write), as runc's may: its
    // exit status, which spawnSync still gives, is what counts.
    const code = (r.error as NodeJS.ErrnoException | undefined)?.code;
    const why = r.error && code !== 'ETIMEDOUT' && code !== 'EPIPE' ? `cannot be run: ${code ?? r.error.message}`
      : r.signal ? (h.timeout !== undefined && r.signal === 'SIGKILL' ? `timed out after ${h.timeout}s` : `was killed by ${r.signal}`)
      : r.status !== 0 ? `exited with status ${r.status}` : undefined;
    if (why) return `${kind} hook ${i} (${h.path}) ${why}${said ? `: ${said}` : ''}`;
  }
  return undefined;
}
