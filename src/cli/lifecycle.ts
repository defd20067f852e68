// Commands about sandboxes that run (or ran): ps, logs, exec, top, inspect, stop, down, rm, gc: argv
// → one call → print. ps, exec, stop, down and rm are clients of the library (src/api: list, stop,
// down, and the exec its handle's shares), with the CLI's part (the stop notes, exec's terminal and
// signal relay) in its internal options; the others call the engine's lifecycle
// (engine/lifecycle.ts). They run in the CLI process, as the invoking user.
import { Option, type Command } from 'commander';
import { cut, table } from '../ui/table';
import { formatOf, withFormat, type FormatOpts } from './format';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DENIALS_OLD, DenialFollower, hasEgress, readDenials, readStatus, rulesOf } from './denials';
import { denialLine, egressInfo, egressLine, parseDenials, type Denial } from '../ui/denials';
import { renderPlan, sourceText } from '../plan/render';
import { MSG } from '../ui/messages';
import { probeHost } from '../engine/probe';
import { egressAlive } from '../engine/egress';
import type { StopNote } from '../engine/signals';
import { exitCode, findSandbox, gc, listSandboxes, LifecycleError, logPath, processes, readLog, savedRun, statusOf } from '../engine/lifecycle';
import * as api from '../api/index';
import { execNamed } from '../api/sandbox';

export { LifecycleError };

/** A status as ps and inspect print it: an exited one with its exit code, a dead one with what removes it. */
const statusText = (status: api.SandboxInfo['status'], code?: number) => (status === 'exited' ? `exited (${code})` : status === 'dead' ? 'dead (sandbox gc)' : status);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The plan `up` applied and what it applied, kept in the state folder once the command ran. */
function saved(host: ReturnType<typeof probeHost>, name: string) {
  const s = savedRun(host, name);
  if (!s) throw new LifecycleError(MSG.noPlan(name), 1);
  return s;
}

/** `logs --denials`: the records of both files, in words or as stored; with `follow`, the new ones
 * as sbx-egress writes them, until the sandbox is removed (or Ctrl-C). */
async function printDenials(host: ReturnType<typeof probeHost>, name: string, o: { follow?: boolean; json: boolean; tail?: number }): Promise<void> {
  const dir = join(host.stateRoot, name);
  const plan = savedRun(host, name)?.plan;
  if (plan && !hasEgress(plan)) throw new LifecycleError(MSG.noEgress(name), 1);
  const rules = rulesOf(dir, plan);
  const started = findSandbox(host, name).state?.startedAt;
  const print = (recs: Denial[]) => process.stdout.write(recs.map((r) => (o.json ? JSON.stringify(r) : denialLine(r, rules, started))).join('\n') + (recs.length ? '\n' : ''));
  const old = parseDenials(existsSync(join(dir, DENIALS_OLD)) ? readFileSync(join(dir, DENIALS_OLD), 'utf8') : '');
  if (!o.follow) {
    const all = readDenials(dir);
    print(o.tail !== undefined ? all.slice(-o.tail) : all);
    if (!all.length && !o.json) process.stderr.write(`${MSG.noDenials(name)}\n`);
    return;
  }
  print(o.tail !== undefined ? old.slice(-o.tail) : old);
  const follower = new DenialFollower(dir, print).start(true);
  // Until the sandbox is gone (down, or a foreground run's end); Ctrl-C ends it too (the default SIGINT).
  for (;;) {
    await sleep(500);
    if (!existsSync(dir) || !listSandboxes(host).some((r) => r.name === name)) break;
  }
  follower.stop();
}

/** Prints a detached sandbox's log from byte `from`; returns where it stopped. */
function printLog(path: string, from: number, opts: { timestamps?: boolean; tail?: number }): number {
  const { entries, next } = readLog(path, from, opts.tail);
  for (const e of entries) (e.stream === 'stderr' ? process.stderr : process.stdout).write(`${opts.timestamps ? `${e.time} ` : ''}${e.text}\n`);
  return next;
}

/** The commands of sandboxes that exist (ps, logs, exec, top, inspect, stop, down, rm, gc), in
 * the order `sandbox --help` lists them. `nameOfFile` reads a config's name, for `down FILE`. */
export function registerLifecycle(program: Command, nameOfFile: (file: string) => Promise<string>): void {
  registerPs(program);
  registerLogs(program);
  registerExec(program);
  registerTop(program);
  registerInspect(program);
  registerRemoval(program, nameOfFile);
}

function registerPs(program: Command): void {
  withFormat(program.command('ps'), ['text', 'json'], 'print the list as JSON')
    .description('list sandboxes: their name, status, host PID, uptime, restarts, command and ports')
    .option('-a, --all', 'also list exited ones and what crashed runs left')
    .option('-q, --quiet', 'print only their names')
    .action(async (o: FormatOpts & { all?: boolean; quiet?: boolean }) => {
      const json = formatOf(o) === 'json';
      const rows = (await api.list()).filter((r) => o.all || r.running);
      if (o.quiet && !json) { process.stdout.write(rows.map((r) => `${r.name}\n`).join('')); return; }
      const ps = (r: api.SandboxInfo) => r.ps!;
      if (json) {
        process.stdout.write(JSON.stringify(rows.map((r) => ({
          name: r.name, status: r.status, exitCode: r.exitCode ?? null,
          pid: ps(r).pid ?? null, pids: ps(r).pids, detached: r.detached, startedAt: r.startedAt ?? null,
          restarts: r.restarts, command: r.command ?? null, file: r.file ?? null, ports: ps(r).held,
          ...(ps(r).egressEnded ? { egress: 'ended' } : {}),
        })), null, 2) + '\n');
        return;
      }
      const age = (iso?: string) => {
        if (!iso) return '-';
        const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
        return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
      };
      const port = (p: { hostIp: string; hostPort: number; containerPort: number; protocol: string }) => `${p.hostIp.includes(':') ? `[${p.hostIp}]` : p.hostIp || '*'}:${p.hostPort}->${p.containerPort}/${p.protocol}`;
      const state = (r: api.SandboxInfo) => (ps(r).egressEnded ? `${r.status} (${MSG.egressEndedShort})` : statusText(r.status, r.exitCode));
      process.stdout.write(table([['NAME', 'STATUS', 'PID', 'UP', 'RESTARTS', 'COMMAND', 'PORTS'], ...rows.map((r) => [r.name, state(r), String(ps(r).pid ?? '-'), r.running ? age(r.startedAt) : '-', String(r.restarts), cut((r.command ?? []).join(' '), 40) || '-', ps(r).held.map(port).join(', ') || '-'])]));
    });
}

function registerLogs(program: Command): void {
  withFormat(program.command('logs').argument('<name>', 'a sandbox started with up -d (with --denials: any sandbox with an egress policy)'), ['text', 'json'], 'with --denials, print the records as JSON lines, as they are stored')
    .description('print what a detached sandbox wrote on stdout and stderr, or (--denials) what its egress policy refused')
    .option('-f, --follow', 'keep printing until the sandbox exits (or is removed, with --denials)')
    .option('-n, --tail <lines>', 'only the last N lines', (v) => Number(v))
    .option('-t, --timestamps', 'show when each line was written')
    .option('--denials', 'the lookups and connections its egress policy refused, each with the rule (and its line) that refused it')
    .action(async (name: string, o: FormatOpts & { follow?: boolean; tail?: number; timestamps?: boolean; denials?: boolean }) => {
      const json = formatOf(o) === 'json';
      const host = probeHost();
      findSandbox(host, name);
      if (o.denials) { await printDenials(host, name, { follow: o.follow, json, tail: o.tail }); return; }
      if (json) throw new LifecycleError(MSG.formatNeedsDenials, 1);
      const path = logPath(host, name);
      let at = printLog(path, 0, o);
      while (o.follow) {
        const running = findSandbox(host, name).running;
        await sleep(100);
        at = printLog(path, at, { timestamps: o.timestamps });
        if (!running) break;
      }
    });
}

interface ExecOpts { tty?: boolean; interactive?: boolean; user?: string; env: string[]; workdir?: string }

function registerExec(program: Command): void {
  program.command('exec').argument('<name>', 'a running sandbox').argument('<command...>', 'the command and its arguments')
    .description('run one more command in a running sandbox: its namespaces, cgroup, user, capabilities, no_new_privs and seccomp filter')
    .option('-i, --interactive', 'pass this stdin to the command (without it the command reads /dev/null, as under docker exec)')
    .option('-t, --tty', 'give the command a terminal made in the sandbox\'s devpts')
    .option('-u, --user <user[:group]>', 'run as this user (a name from the sandbox\'s /etc/passwd, or a number)')
    .option('-e, --env <KEY[=VALUE]>', 'set an environment variable (a bare KEY takes this shell\'s value)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('-w, --workdir <dir>', 'the working folder inside the sandbox')
    .passThroughOptions()
    .action((name: string, words: string[], o: ExecOpts) => execCommand(name, words, o));
}

/** `sandbox exec NAME CMD…`: the command joins the running sandbox (the library's execNamed, in
 * its CLI mode: this process's signals relayed, the terminal, the test-only pause); throws
 * LifecycleError with the command's status, or with the step that failed. */
async function execCommand(name: string, words: string[], o: ExecOpts): Promise<never> {
  // `exec NAME -- CMD` as docker exec takes it: the -- ends the options, and is not the command.
  const cmd = words[0] === '--' ? words.slice(1) : words;
  if (!cmd.length) throw new LifecycleError('no command after --; write sandbox exec NAME CMD [ARGS...]', 1);
  const env = o.env.map((kv) => (kv.includes('=') ? kv : `${kv}=${process.env[kv] ?? ''}`));
  // As docker exec: -t alone gives a terminal that shows output; -it also relays keys, raw,
  // which a stdin that is not a terminal cannot give.
  const tty = !!o.tty;
  const stdin = !!o.interactive;
  if (tty && stdin && !process.stdin.isTTY) throw new LifecycleError(MSG.notATerminal('exec -it', 'drop -t'), 1);
  const { plan, result } = await execNamed(name, cmd, { env, user: o.user, cwd: o.workdir }, {
    tty, stdin, pauseAt: process.env.SANDBOX_TEST_PAUSE_AT, onSignal: (n) => { process.stderr.write(`${MSG.signal(n)}\n`); },
  });
  if (result.failed) {
    const step = plan.steps.find((s) => s.id === result.failed!.step);
    const where = step && typeof step.source === 'object' ? sourceText(step.source) : '';
    throw new LifecycleError((step?.kind === 'exec' ? MSG.execFailed : MSG.setupFailed)(`${result.failed.step}${step ? ` (${step.title})` : ''}`, result.failed.message, where).replace(/^sandbox: /, ''), result.exitCode);
  }
  throw new LifecycleError('', result.exitCode);
}

function registerTop(program: Command): void {
  withFormat(program.command('top').argument('<name>', 'a running sandbox'), ['text', 'json'], 'print the list as JSON')
    .description('list its processes: the PID on the host beside the PID inside the sandbox')
    .action((name: string, o: FormatOpts) => {
      const json = formatOf(o) === 'json';
      const host = probeHost();
      if (!findSandbox(host, name).running) throw new LifecycleError(MSG.notRunning(name), 1);
      const procs = processes(host, name);
      if (json) { process.stdout.write(JSON.stringify(procs, null, 2) + '\n'); return; }
      const dash = (n: number | null) => (n === null ? '-' : String(n));
      process.stdout.write(table([['HOST PID', 'PID', 'PPID', 'UID', 'STATE', 'COMMAND'], ...procs.map((p) => [String(p.hostPid), dash(p.pid), dash(p.ppid), String(p.uid), p.state, p.command])]));
    });
}

function registerInspect(program: Command): void {
  withFormat(program.command('inspect').argument('<name>', 'a sandbox (running, or exited and not yet removed)'), ['text', 'json'], 'print it as JSON')
    .description('show the plan a sandbox was started with, the steps applied and their times, and its state')
    .action((name: string, o: FormatOpts) => {
      const json = formatOf(o) === 'json';
      const host = probeHost();
      const row = findSandbox(host, name);
      const s = saved(host, name);
      // Egress: the rules and, from sbx-egress's status file, what it refused and carried so far.
      const egress = hasEgress(s.plan) ? egressInfo(s.plan.steps.filter((x) => String(x.kind) === 'net.egress.rule').length, readStatus(join(host.stateRoot, name)), row.running ? egressAlive(join(host.stateRoot, name)) : undefined) : null;
      const info = { name, status: statusOf(row), exitCode: row.exit !== undefined ? exitCode(row.exit) : null, state: row.state ?? null, address: s.address, ids: s.ids, applied: s.applied, attestation: s.attestation ?? [], egress, plan: s.plan };
      if (json) { process.stdout.write(JSON.stringify(info, null, 2) + '\n'); return; }
      const st = row.state;
      const lines = [
        `name      ${name}`, `status    ${statusText(statusOf(row), row.exit !== undefined ? exitCode(row.exit) : undefined)}`, `pid       ${st?.pid ?? '-'} (supervisor ${st?.supervisorPid ?? '-'})`,
        `file      ${st?.file || '-'}`, `started   ${st?.startedAt ?? '-'}`, `command   ${(st?.command ?? []).join(' ')}`,
        `address   ${s.address ?? '-'}`, `user      uid ${s.ids.uid}, gid ${s.ids.gid}${s.ids.groups.length ? `, groups ${s.ids.groups.join(',')}` : ''}`,
        ...(egress ? [`egress    ${egressLine(egress)}`] : []),
        `applied   ${s.applied.length} of ${s.plan.steps.length} steps, ${s.applied.reduce((t, a) => t + (a.ms ?? 0), 0).toFixed(1)} ms`,
        `attested  ${s.attestation ? `${s.attestation.filter((v) => v.verdict === 'verified').length} steps verified from /proc before the command started, ${s.attestation.filter((v) => v.verdict === 'not checkable').length} not checkable from the host (inspect --json says why)` : '-'}`,
      ];
      process.stdout.write(lines.join('\n') + '\n\n' + renderPlan(s.plan, { file: st?.file, applied: new Map(s.applied.map((a) => [a.id, a.ms])) }));
    });
}

/** What a removal says on stderr of the volumes it removed or kept. */
const sayVolumes = (removed: string[]) => { for (const r of removed.filter((x) => /volume /.test(x))) process.stderr.write(`${r.includes(' kept: ') ? '' : 'removed '}${r}\n`); };

function registerRemoval(program: Command, nameOfFile: (file: string) => Promise<string>): void {
  // Each says on stderr, as it happens, when the sandbox's PID 1 cannot get the stop signal and when it was killed.
  const say = (n: StopNote) => { process.stderr.write(`${MSG.stop(n)}\n`); };

  program.command('stop').argument('<name>', 'a sandbox')
    .description('send its stop_signal, then SIGKILL after the grace period; a sandbox that is not running is left as it is, as docker stop does')
    .option('-t, --time <seconds>', 'the grace period (default: its stop_grace_period)', (v) => Number(v))
    .action(async (name: string, o: { time?: number }) => {
      await api.stop(name, { timeout: o.time !== undefined ? o.time * 1000 : undefined, cli: { say } });
      process.stdout.write(`${name}\n`);
    });

  program.command('down').argument('<name|file>', 'a sandbox name, or its config file')
    .description('stop a sandbox and remove everything it set up on the host')
    .option('-t, --time <seconds>', 'the grace period before SIGKILL', (v) => Number(v))
    .option('-v, --volumes', 'remove its volumes too, named and anonymous (never an external one)')
    // What the supervisor of `run -d --rm` runs once the command has ended for good: once the
    // CLI that started it has let go of it, as `down`, with its anonymous volumes (as docker run
    // --rm's); not a user's flag.
    .addOption(new Option('--rm').hideHelp())
    .action(async (arg: string, o: { time?: number; volumes?: boolean; rm?: boolean }) => {
      const name = /\.(ya?ml|json)$/.test(arg) || (existsSync(arg) && statSync(arg).isFile()) ? await nameOfFile(arg) : arg;
      const removed = await api.down(name, { timeout: o.time !== undefined ? o.time * 1000 : undefined, cli: { say, volumes: o.volumes ? true : o.rm ? 'anonymous' : false, handover: o.rm } });
      sayVolumes(removed);
      process.stdout.write(`${name}\n`);
    });

  // docker rm's habit: a sandbox that has ended (a detached one keeps its state, log and exit
  // status until removed) goes with everything it set up; a running one only with -f, killed at
  // once as docker rm -f does (down stops it with its grace period first).
  program.command('rm').argument('<name...>', 'sandboxes that have ended (with -f, running ones too)')
    .description('remove sandboxes that have ended and everything they set up on the host, as docker rm; a running one needs -f, or sandbox down')
    .option('-f, --force', 'kill a running one first (SIGKILL, as docker rm -f)')
    .option('-v, --volumes', 'remove their anonymous volumes too')
    .action(async (names: string[], o: { force?: boolean; volumes?: boolean }) => {
      let failed = 0;
      for (const name of names) {
        try {
          // -f: no grace period, so nothing to say of the stop signal.
          sayVolumes(await api.down(name, { timeout: o.force ? 0 : undefined, cli: { say: o.force ? undefined : say, volumes: o.volumes ? 'anonymous' : false, ended: !o.force } }));
          process.stdout.write(`${name}\n`);
        } catch (e) {
          if (!(e instanceof api.SandboxError)) throw e;
          process.stderr.write(`sandbox: ${e.message}\n`);
          failed = e.exitCode;
        }
      }
      if (failed) throw new LifecycleError('', failed);
    });

  program.command('gc').description('remove what crashed runs left: state folders, cgroups, interfaces and nftables tables with no live process')
    .action(async () => {
      const host = probeHost();
      const removed = await gc(host);
      process.stdout.write(removed.length ? removed.map((x) => `removed ${x}`).join('\n') + '\n' : 'nothing to remove\n');
    });
}
