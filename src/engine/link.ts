// The CLI's line to the cloned child during setup. Foreground: libsbx clones it from this process
// and the protocol runs over the two fds it returns. Detached: sbx-supervise clones it (and stays
// its parent after the CLI exits) and relays the same protocol over its stdin and stdout.
import { EventEmitter } from 'node:events';
import { closeSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { libraryPath, NativeError, type LibSbx } from '../ffi/libsbx';
import type { Program } from './ops';
import { reap } from './reaper';
import { SUPERVISE_HEAD_OFFSET, SUPERVISE_HEAD_SIZE } from '../ffi/generated/abi';

/** node:child_process, loaded when a detached sandbox's supervisor is started. */
const childProcess = () => require('node:child_process') as typeof import('node:child_process');

/** A stream of the child's bytes: the events pipe (foreground), or the supervisor's stdout (detached). */
export interface ByteSource {
  on(event: 'data', fn: (chunk: Buffer) => void): unknown;
  on(event: 'end' | 'error', fn: () => void): unknown;
  resume(): unknown;
  destroy(): unknown;
}

export interface ChildLink {
  pid: number;
  inCgroup: boolean;
  /** CLOCK_MONOTONIC when the clone was asked for. */
  spawnNs: bigint;
  /** struct sbx_event records until EOF (exec, or the child's death); `initial` came first. */
  events: ByteSource;
  initial: Buffer;
  send(byte: 'G' | 'E'): void;
  /** Foreground only: the socket the child sends its terminal over. */
  syncFd?: number;
  supervisorPid?: number;
  /** The wait status: of the child (foreground), or of the supervisor (detached). */
  wait(): Promise<number>;
  /** Ends the setup channel; a detached supervisor goes on alone. */
  close(): void;
}

/** `reaped`: waited for by the reaper (engine/reaper.ts), for a process that runs many at once. */
export function directLink(lib: LibSbx, program: Program, cgroupFd: number, reaped = false): ChildLink {
  return childLink(lib, lib.spawn(program.ops, program.nops, program.strings, program.cloneFlags, cgroupFd), reaped);
}

/** A restart in the foreground: the next child, made by sbx_respawn in the held namespaces; the
 * same protocol as directLink's from "G" on. */
export function respawnLink(lib: LibSbx, program: Program, procs: string[], usernsFd: number, netnsFd: number): ChildLink {
  return childLink(lib, lib.respawn(program.ops, program.nops, program.strings, program.cloneFlags, procs, usernsFd, netnsFd));
}

/** The CLI's end of a child libsbx cloned in this process (sbx_spawn or sbx_respawn): its events
 * socket, and the sync fd it waits on for "G". */
function childLink(lib: LibSbx, c: ReturnType<LibSbx['spawn']>, reaped = false): ChildLink {
  const events = pipeReader(lib, c.events_fd);
  let reaping: Promise<number> | undefined;
  return {
    pid: c.pid, inCgroup: c.in_cgroup === 1, spawnNs: BigInt(c.spawn_ns), events, initial: Buffer.alloc(0), syncFd: c.sync_fd,
    send: (b) => { writeSync(c.sync_fd, b); },
    wait: () => (reaped ? (reaping ??= reap(lib, c.pid)) : lib.wait(c.pid)),
    close: () => { try { closeSync(c.sync_fd); } catch { /* closed */ } events.destroy(); },
  };
}

/**
 * The child's events pipe, read in this process (the CLI's, or a library caller's) by libsbx on
 * koffi's worker thread, in one call per wait (until the child waits on this process at its exec,
 * or ends): not through node:net, whose load (with node:stream) costs a cold `up` about 4 ms.
 * destroy() wakes that call through a pipe of its own, and the descriptors are closed once it has
 * returned, never under it.
 */
function pipeReader(lib: LibSbx, fd: number): ByteSource {
  const ee = new EventEmitter();
  const [cancelRead, cancelWrite] = lib.pipe();
  const buf = Buffer.allocUnsafe(64 * 1024);
  let state: 'idle' | 'waiting' | 'closed' = 'idle', stop = false;
  const close = () => { state = 'closed'; for (const f of [fd, cancelRead, cancelWrite]) try { closeSync(f); } catch { /* closed */ } };
  const next = () => {
    state = 'waiting';
    lib.readEvents(fd, cancelRead, buf).then((r) => {
      if (stop || r.state === 'cancelled') return close();
      if (r.len) ee.emit('data', Buffer.from(buf.subarray(0, r.len)));
      if (r.state === 'end') { close(); ee.emit('end'); } else if (stop) close(); else next();
    }, () => { close(); ee.emit('error'); });
  };
  return {
    on: (event: string, fn: (chunk: Buffer) => void) => ee.on(event, fn),
    resume: () => { if (state === 'idle') next(); },
    destroy: () => {
      if (state === 'closed' || stop) return;
      stop = true;
      if (state === 'waiting') writeSync(cancelWrite, 'x'); else close();
    },
  };
}

export function supervisorPath(): string {
  return process.env.SANDBOX_SUPERVISOR ?? join(__dirname, '..', 'native', 'build', 'sbx-supervise');
}

/** The static PID 1 of `init: true` (native/src/init.c), which the child copies into a memfd: built beside libsbx.so. */
export function initPath(): string {
  return process.env.SANDBOX_INIT ?? join(dirname(libraryPath()), 'sbx-init');
}

/** What the supervisor of a detached sandbox runs after the first run, as struct sbx_supervise_head says. */
export interface SupervisedRestart {
  /** 0 no, 1 on-failure, 2 always (ops.ts's RESTART); at most `max` restarts, 0: no limit. */
  policy: number;
  max: number;
  /** The restart program (encodeProgram with restart: true); with policy 0, none. */
  program?: Program;
  /** The cgroup.procs files a restart joins. */
  procs: string[];
  /** The nftables tables deleted when the command ends for good, "FAMILY NAME" each: the port
   * maps' and NAT's (`ip sbx_x`), and the egress wall (`inet sbx_x_eg`). */
  tables: string[];
  /** The bound sockets of the ports nftables maps (their descriptors in this process): the
   * supervisor inherits them as its fds 3, 4, … and closes them with the table, so that a port
   * stays taken on the host for exactly as long as it is mapped. The ports pasta, slirp4netns or
   * a forwarder carry are bound by them instead, once the CLI has let its hold go. */
  holds?: number[];
  /** A program and its arguments that the supervisor starts once the command has ended for good
   * and its status is written (run -d --rm: the CLI's own `down`); none when absent. */
  onExit?: string[];
}

export async function supervisedLink(program: Program, stateDir: string, cgroupDir: string | undefined, restart: SupervisedRestart): Promise<ChildLink> {
  const spawnNs = process.hrtime.bigint();
  const holds = (restart.holds ?? []).filter((fd) => fd >= 0);
  const sup = childProcess().spawn(supervisorPath(), [stateDir, cgroupDir ?? '-', ...(restart.onExit ?? [])], { stdio: ['pipe', 'pipe', 'ignore', ...holds], detached: true });
  const exited = new Promise<number>((r) => sup.on('exit', (code, sig) => r(sig ? 128 : (code ?? 0) << 8)));
  sup.on('error', () => undefined);
  // struct sbx_supervise_head, in this machine's byte order (little-endian: Linux on x86-64 and arm64).
  const head = Buffer.alloc(SUPERVISE_HEAD_SIZE);
  head.writeUInt32LE(program.nops, SUPERVISE_HEAD_OFFSET.nops);
  head.writeUInt32LE(program.strings.length, SUPERVISE_HEAD_OFFSET.strings_len);
  head.writeBigUInt64LE(program.cloneFlags, SUPERVISE_HEAD_OFFSET.clone_flags);
  const again = restart.policy ? restart.program : undefined;
  const extra = Buffer.from(`${restart.procs.map((p) => `${p}\0`).join('')}\0${restart.tables.map((t) => `${t}\0`).join('')}\0${holds.length}\0`);
  head.writeUInt32LE(again ? restart.policy : 0, SUPERVISE_HEAD_OFFSET.policy);
  head.writeUInt32LE(restart.max, SUPERVISE_HEAD_OFFSET.max_restarts);
  head.writeUInt32LE(again?.nops ?? 0, SUPERVISE_HEAD_OFFSET.restart_nops);
  head.writeUInt32LE(again?.strings.length ?? 0, SUPERVISE_HEAD_OFFSET.restart_strings_len);
  head.writeUInt32LE(extra.length, SUPERVISE_HEAD_OFFSET.extra_len);
  sup.stdin!.write(Buffer.concat([head, program.ops, program.strings, ...(again ? [again.ops, again.strings] : []), extra]));
  // The first line says whether the clone worked; what follows is the event stream.
  const { line, rest } = await new Promise<{ line: string; rest: Buffer }>((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const on = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const nl = buf.indexOf(10);
      if (nl < 0) return;
      sup.stdout!.off('data', on);
      sup.stdout!.pause();
      resolve({ line: buf.subarray(0, nl).toString(), rest: buf.subarray(nl + 1) });
    };
    sup.stdout!.on('data', on);
    sup.stdout!.once('end', () => reject(new NativeError('the supervisor (sbx-supervise) ended before it cloned the sandbox', 5)));
  });
  const m = /^PID (\d+) (\d)$/.exec(line);
  if (!m) {
    const e = /^ERR (\d+) (.*)$/.exec(line);
    throw new NativeError(e ? e[2]! : `the supervisor said: ${line}`, e ? Number(e[1]) : 5);
  }
  return {
    pid: Number(m[1]), inCgroup: m[2] === '1', spawnNs, events: sup.stdout!, initial: rest, supervisorPid: sup.pid,
    send: (b) => { sup.stdin!.write(b); },
    wait: () => exited,
    close: () => { sup.stdin!.end(); sup.stdout!.destroy(); sup.unref(); },
  };
}
