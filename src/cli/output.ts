// The CLI's output on its standard output and error, in the CLI process. Where the descriptor is a
// file, a pipe or /dev/null, the text is written to it directly with write(2), as Node's own
// stream for it would write it (synchronously, for those kinds, on Linux): making process.stdout or
// process.stderr costs the stream machinery (node:stream, and node:net for a pipe), 0.4 to 3 ms of
// a `plan` or `validate` that prints one text and exits. A terminal, a socket or any other
// character device keeps Node's stream, and so does the rest of a text a direct write could not
// take (EAGAIN on a pipe another process made non-blocking, EPIPE, ...), and every later write
// to that descriptor: the stream then says what it says on any error, in order.
import { fstatSync, statSync, writeSync, type Stats } from 'node:fs';

type Fd = 1 | 2;
const direct = new Map<Fd, boolean>();

const sameFile = (a: Stats, b: Stats) => a.dev === b.dev && a.ino === b.ino && a.rdev === b.rdev;

/** Whether fd is written directly: a regular file, a pipe or /dev/null, never a terminal. */
function isDirect(fd: Fd): boolean {
  let d = direct.get(fd);
  if (d === undefined) {
    try {
      const st = fstatSync(fd);
      d = st.isFile() || st.isFIFO() || (st.isCharacterDevice() && sameFile(st, statSync('/dev/null')));
    } catch { d = false; }
    direct.set(fd, d);
  }
  return d;
}

const stream = (fd: Fd) => (fd === 1 ? process.stdout : process.stderr);

function write(fd: Fd, text: string): void {
  if (!text) return;
  if (!isDirect(fd)) { stream(fd).write(text); return; }
  const b = Buffer.from(text);
  let at = 0;
  try {
    while (at < b.length) at += writeSync(fd, b, at, b.length - at);
  } catch {
    direct.set(fd, false);
    stream(fd).write(b.subarray(at));
  }
}

/** Writes text on the standard output. */
export const writeOut = (text: string): void => write(1, text);
/** Writes text on the standard error. */
export const writeErr = (text: string): void => write(2, text);
/** Whether the standard output (1) or error (2) is a terminal, as its stream's isTTY says. */
export const isTerminal = (fd: Fd): boolean => !isDirect(fd) && stream(fd).isTTY === true;
