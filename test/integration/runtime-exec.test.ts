// sandbox-runtime exec, ps, kill --all and --console-socket, driven as containerd's shim and podman
// drive runc: a running container (the `runc spec` bundle over the busybox root: KILL,
// NET_BIND_SERVICE and AUDIT_WRITE, no_new_privs, nofile 1024), then exec in runc's argv form and
// with --process FILE (a process that asks for more than the container has gets no more), exec
// --detach --pid-file (the process outlives the runtime, in the container's cgroup and pid
// namespace), ps, a terminal sent over the console socket to a Python client that receives the
// fd with SCM_RIGHTS and types into it (for exec and for create), runc's errors in the JSON log,
// and nothing left on the host. Every fact about the new process is read from inside it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { leftovers, needs } from '../helpers/sandbox';
import { bundle, ready, rt, rtOut, state, statusField, until } from '../helpers/runtime';

/** A Python client of --console-socket: receives the terminal's master (SCM_RIGHTS), types a line
 * into it and prints what the terminal shows until END. */
const RECEIVER = `
import socket, array, os, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(sys.argv[1]); s.listen(1)
print("READY", flush=True)
c, _ = s.accept()
fds = array.array('i')
msg, anc, flags, addr = c.recvmsg(4096, socket.CMSG_LEN(fds.itemsize))
for level, typ, data in anc:
    if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS: fds.frombytes(data[:fds.itemsize])
m = fds[0]
print("ISATTY", os.isatty(m), flush=True)
import fcntl, termios, struct
print("SIZE %d %d" % struct.unpack("HHHH", fcntl.ioctl(m, termios.TIOCGWINSZ, b"\\0" * 8))[:2], flush=True)
os.write(m, b"echo typed-$((40+2)) on $(hostname)\\n")
out = b""; end = time.time() + 10
while time.time() < end and b"END" not in out:
    try: out += os.read(m, 4096)
    except OSError: break
sys.stdout.write(out.decode(errors="replace")); sys.stdout.flush()
`;

const receivers: ReturnType<typeof spawn>[] = [];
/** The receiver, listening once it says READY; its output when it ends (it gives up after 10 s). */
async function receiver(dir: string, name: string): Promise<{ path: string; done: Promise<string> }> {
  const path = join(dir, `${name}.sock`);
  writeFileSync(join(dir, 'recv.py'), RECEIVER);
  const p = spawn('python3', [join(dir, 'recv.py'), path], { stdio: ['ignore', 'pipe', 'inherit'] });
  receivers.push(p);
  let out = '';
  p.stdout.on('data', (b) => { out += b; });
  const done = new Promise<string>((r) => p.on('exit', () => r(out)));
  await until('the console socket', () => out.includes('READY'), 30_000);
  return { path, done };
}

const has = (c: string) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;

test('exec: argv form and --process, never more than the container; --detach --pid-file; ps; kill --all; errors; nothing left', async (t) => {
  if (!ready(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'sbx-rtx-'));
  const id = `rtx-${process.pid}`;
  try {
    const b = bundle(dir, 'echo started; exec sleep 600');
    assert.equal(rt(dir, ['create', '--bundle', b, id], join(dir, 'init.out')).code, 0);
    const init = state(dir, id).json.pid as number;
    assert.equal(rt(dir, ['start', id]).code, 0);

    // runc's argv form: the container's own process with the command replaced; the status is the command's.
    const a = rtOut(dir, ['exec', id, 'sh', '-c', 'hostname; echo "pid=$$"; grep -E "^(NSpid|CapEff|CapBnd|NoNewPrivs):" /proc/self/status; grep "Max open files" /proc/self/limits; cat /proc/1/cmdline; echo; exit 7']);
    assert.equal(a.code, 7, a.err);
    assert.match(a.out, /^rt-test$/m);
    assert.doesNotMatch(a.out, /^pid=1$/m);
    assert.match(a.out, /^NSpid:\s+[0-9]+$/m, 'its /proc is the container\'s: one pid namespace deep');
    assert.match(a.out, /^CapEff:\s+0000000020000420$/m);
    assert.match(a.out, /^NoNewPrivs:\s+1$/m);
    assert.match(a.out, /^Max open files\s+1024\s+1024 /m);
    assert.match(a.out, /^sleep\x00600/m);

    // --process: a process that asks for more than the container has (SYS_ADMIN, nofile 4096) gets
    // only what the container holds; its user, groups, env and cwd are its own.
    const proc = {
      terminal: false, args: ['sh', '-c', 'id; pwd; env | sort; grep -E "^(CapBnd|CapEff|CapPrm):" /proc/self/status; grep "Max open files" /proc/self/limits'],
      env: ['PATH=/bin:/usr/bin', 'ONLY=this'], cwd: '/tmp', user: { uid: 1000, gid: 1000, additionalGids: [5] },
      capabilities: { bounding: ['CAP_KILL', 'CAP_SYS_ADMIN'], effective: ['CAP_KILL', 'CAP_SYS_ADMIN'], permitted: ['CAP_KILL', 'CAP_SYS_ADMIN'], ambient: ['CAP_KILL', 'CAP_SYS_ADMIN'] },
      rlimits: [{ type: 'RLIMIT_NOFILE', soft: 4096, hard: 4096 }], noNewPrivileges: true,
    };
    writeFileSync(join(dir, 'process.json'), JSON.stringify(proc));
    const p = rtOut(dir, ['exec', '--process', join(dir, 'process.json'), id]);
    assert.equal(p.code, 0, p.err);
    assert.match(p.out, /^uid=1000 gid=1000 groups=5/m);
    assert.match(p.out, /^\/tmp$/m);
    assert.match(p.out, /^ONLY=this$/m);
    assert.doesNotMatch(p.out, /^HOME=/m, 'the env is exactly the process\'s');
    assert.match(p.out, /^CapBnd:\s+0000000000000020$/m, 'KILL only: SYS_ADMIN is not the container\'s');
    assert.match(p.out, /^CapEff:\s+0000000000000020$/m);
    assert.match(p.out, /^Max open files\s+1024\s+1024 /m, 'no more than the container\'s 1024');
    // The same process from stdin, with an LSM label: refused, as sandbox applies none.
    const lsm = rt(dir, ['exec', '--process', '-', id], undefined, JSON.stringify({ ...proc, apparmorProfile: 'unconfined' }));
    assert.equal(lsm.code, 1);
    assert.match(lsm.err, /process\.apparmorProfile: sandbox applies no LSM label/);

    // --detach --pid-file, as the shim calls it: the runtime returns while the process runs, the
    // caller's subreaper's (here: nobody's), in the container's cgroup and pid namespace.
    const d = rt(dir, ['exec', '--detach', '--pid-file', join(dir, 'exec.pid'), id, 'sleep', '500']);
    assert.equal(d.code, 0, d.err);
    const pidText = readFileSync(join(dir, 'exec.pid'), 'utf8');
    assert.match(pidText, /^[0-9]+$/);
    const pid = Number(pidText);
    await until('the detached process to run sleep', () => { try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === 'sleep\x00500\x00'; } catch { return false; } });
    assert.equal(readlinkSync(`/proc/${pid}/ns/pid`), readlinkSync(`/proc/${init}/ns/pid`));
    assert.equal(readlinkSync(`/proc/${pid}/ns/mnt`), readlinkSync(`/proc/${init}/ns/mnt`));
    assert.match(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), new RegExp(`/sandbox/${id}$`, 'm'));
    assert.ok(!readFileSync(`/proc/${statusField(pid, 'PPid')}/cmdline`, 'utf8').includes('sandbox-runtime'), 'no relay or runtime above it');

    const ps = rtOut(dir, ['ps', '--format', 'json', id]);
    assert.equal(ps.code, 0, ps.err);
    assert.deepEqual(JSON.parse(ps.out), [init, pid].sort((x, y) => x - y));
    const table = rtOut(dir, ['ps', id, '-o', 'pid,args']);
    assert.match(table.out, /^\s*PID\s+COMMAND/m);
    assert.match(table.out, new RegExp(`^\\s*${pid}\\s+sleep 500$`, 'm'));
    assert.equal(table.out.trim().split('\n').length, 3, table.out);

    // kill --all: every process of its cgroup, the detached one too.
    assert.equal(rt(dir, ['kill', '--all', id, '9']).code, 0);
    await until('state stopped', () => state(dir, id).json?.status === 'stopped');
    await until('the exec\'d process gone', () => !existsSync(`/proc/${pid}`) || statusField(pid, 'State')?.startsWith('Z') === true);
    // A stopped container: kill fails as runc's, kill --all succeeds as runc's (containerd sends it
    // before delete once a Pod's sandbox container has exited).
    assert.equal(rt(dir, ['kill', id, '9']).code, 1);
    assert.match(readFileSync(join(dir, 'rt.err'), 'utf8'), /container not running/);
    assert.equal(rt(dir, ['kill', '--all', id, '9']).code, 0);
    const stopped = rt(dir, ['exec', id, 'true']);
    assert.equal(stopped.code, 1);
    assert.match(stopped.err, /cannot exec in a stopped container/);
    // The last error as containerd reads it from --log: {"level":"error","msg":...,"time":...}.
    const last = JSON.parse(readFileSync(join(dir, 'log.json'), 'utf8').trim().split('\n').at(-1)!);
    assert.deepEqual(Object.keys(last).sort(), ['level', 'msg', 'time']);
    assert.equal(last.level, 'error');
    assert.match(last.msg, /cannot exec in a stopped container/);
    assert.ok(!Number.isNaN(Date.parse(last.time)));
    assert.equal(rt(dir, ['exec', 'no-such', 'true']).code, 1);
    assert.match(readFileSync(join(dir, 'rt.err'), 'utf8'), /container no-such does not exist/);

    assert.equal(rt(dir, ['delete', id]).code, 0);
    assert.deepEqual(leftovers(id), []);
  } finally {
    for (const p of receivers) p.kill('SIGKILL');
    rt(dir, ['delete', '--force', id]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--console-socket: the terminal of create (process.terminal) and of exec -t reaches a Python client over SCM_RIGHTS', async (t) => {
  if (!ready(t) || !needs(t, 'python3', has('python3'))) return;
  const dir = mkdtempSync(join(tmpdir(), 'sbx-rtc-'));
  const id = `rtc-${process.pid}`;
  try {
    // SIGHUP ignored: the client closes the terminal's master when it is done, and the container goes on.
    const b = bundle(dir, 'trap "" HUP; tty; read l; eval "$l"; echo END; exec sleep 600', (c) => { c.process.terminal = true; c.process.consoleSize = { height: 33, width: 97 }; });
    const noSocket = rt(dir, ['create', '--bundle', b, id]);
    assert.equal(noSocket.code, 1);
    assert.match(noSocket.err, /cannot allocate tty if runc will detach without setting console socket/);
    const r1 = await receiver(dir, 'create');
    assert.equal(rt(dir, ['create', '--bundle', b, '--console-socket', r1.path, id]).code, 0, readFileSync(join(dir, 'rt.err'), 'utf8'));
    assert.equal(rt(dir, ['start', id]).code, 0);
    // The init's terminal, made in the container's own devpts, typed into from outside.
    const seen1 = await r1.done;
    assert.match(seen1, /ISATTY True/);
    // process.consoleSize, read on the terminal itself.
    assert.match(seen1, /^SIZE 33 97$/m);
    assert.match(seen1, /^\/dev\/pts\/0\r?$/m);
    assert.match(seen1, /^typed-42 on rt-test\r?$/m);

    const r2 = await receiver(dir, 'exec');
    const e = rt(dir, ['exec', '-t', '-d', '--console-socket', r2.path, '--pid-file', join(dir, 'e.pid'), id, 'sh', '-c', 'tty; read l; eval "$l"; echo END']);
    assert.equal(e.code, 0, e.err);
    const seen2 = await r2.done;
    assert.match(seen2, /ISATTY True/);
    assert.match(seen2, /^\/dev\/pts\/1\r?$/m, 'a second terminal of the container\'s devpts');
    assert.match(seen2, /^typed-42 on rt-test\r?$/m);

    assert.equal(rt(dir, ['delete', '--force', id]).code, 0);
    assert.deepEqual(leftovers(id), []);
  } finally {
    for (const p of receivers) p.kill('SIGKILL');
    rt(dir, ['delete', '--force', id]);
    rmSync(dir, { recursive: true, force: true });
  }
});
