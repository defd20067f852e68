// Reduced mode (issue 25, part 4) in the plan: where no user namespace can be made, the plan has
// no namespace, id map, network, mount or identity step but the umask; its security steps are the
// usual kinds (no_new_privs always, Landlock as the wall, seccomp, rlimits); each line of the file
// is enforced, weaker or refused in the table, and a refused one is a problem `up` stops on. Also
// the Landlock network part (part 3): TCP connect ports for an egress of ports only, and the
// start-up file placeholders of a writable home.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile } from '../../src/plan/compile';
import { compileExec } from '../../src/plan/exec';
import { REFUSED_IN_REDUCED } from '../../src/plan/reduced';
import { egressConnectPorts, NET, SCOPE } from '../../src/plan/sections/landlock';
import { encodeProgram } from '../../src/engine/ops';
import { OP, OP_OFFSET, OP_SIZE } from '../../src/ffi/generated/abi';
import { renderEnforcement } from '../../src/ui/enforcement';
import type { HostFeatures, Step, StepOf } from '../../src/plan/types';
import { HYBRID_HOST, ROOTLESS_HOST, fakeFs, loadText } from '../helpers/load';

const FS = fakeFs(['/project/out/', '/project/docs/', '/project/out/gen/', '/home/user/.ssh/', '/home/user/.bashrc']);
const REDUCED: HostFeatures = { ...ROOTLESS_HOST, userns: false, reduced: { why: 'creating a user namespace failed: No space left on device' }, landlock: 7 };
const compiled = (text: string, host: HostFeatures = REDUCED) => {
  const r = loadText(text, { fs: FS, rootless: host.rootless });
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), []);
  return compile(r.spec!, host);
};
const landlockOf = (steps: readonly Step[]) => steps.find((s): s is StepOf<'landlock'> => s.kind === 'landlock');
const FILE = 'version: 1\nrootfs: host\ncommand: [x]\npaths:\n  read_write: [./out]\n  read_only: [./docs, ./out/gen]\n';

test('a reduced plan: no namespace, id map, network, mount or identity step but the umask; no_new_privs, Landlock, seccomp and exec as usual', () => {
  const { plan, problems } = compiled(FILE);
  assert.deepEqual(plan.steps.map((s) => s.kind), ['state.create', 'rootfs.host', 'umask', 'nnp', 'landlock', 'seccomp', 'fds.close', 'exec']);
  assert.match(plan.host, /reduced mode/);
  assert.equal(plan.reduced?.why, REDUCED.reduced!.why);
  // ./out/gen is read-only inside the writable ./out: Landlock cannot hold it, so up stops there.
  assert.deepEqual(problems.map((p) => [p.code, typeof p.src === 'object' && p.src.line, p.atRun]), [[REFUSED_IN_REDUCED, 6, true]]);
  // The same file on a host with user namespaces: namespaces and mounts, no table.
  const full = compiled(FILE, ROOTLESS_HOST).plan;
  assert.ok(full.steps.some((s) => s.kind === 'ns.new') && full.steps.some((s) => s.kind === 'mount.pivot'));
  assert.equal(full.reduced, undefined);
});

test('exec in a reduced sandbox: no fork (there is no pid namespace), so the process the CLI clones runs the command, as the session the CLI records for down', () => {
  const kinds = (host: HostFeatures) => compileExec(compiled(`${FILE.replace(', ./out/gen', '')}`, host).plan, { pid: 42, args: ['id'], env: [], tty: false, stdin: false }).steps.map((s) => s.kind);
  assert.deepEqual(kinds(REDUCED), ['umask', 'nnp', 'landlock', 'seccomp', 'fds.close', 'exec']);
  assert.ok(kinds(ROOTLESS_HOST).includes('proc.fork'));
});

test('the reduced Landlock ruleset: read anywhere, write only the read_write paths, /dev and /proc; TCP bind refused; signals and abstract sockets scoped; a probe in the state folder', () => {
  const s = landlockOf(compiled(FILE).plan.steps)!;
  assert.deepEqual(s.args.rules, [{ path: '/', access: 'ro' }, { path: '/project/out', access: 'rw' }, { path: '/dev', access: 'rw' }, { path: '/proc', access: 'rw' }]);
  assert.deepEqual(s.args.net, { handled: NET.BIND_TCP, connect: [], bind: [] });
  assert.equal(s.args.scoped, SCOPE.ABSTRACT_UNIX | SCOPE.SIGNAL);
  assert.equal(s.args.probe, '/run/user/1000/sandbox/sandbox/.sbx-landlock-probe');
  // network: none holds TCP connect too; an older ABI has no network part and no scopes.
  assert.deepEqual(landlockOf(compiled(`${FILE}network: none\n`).plan.steps)!.args.net, { handled: NET.BIND_TCP | NET.CONNECT_TCP, connect: [], bind: [] });
  const old = landlockOf(compiled(FILE, { ...REDUCED, landlock: 3 }).plan.steps)!;
  assert.equal(old.args.net, undefined);
  assert.equal(old.args.scoped, undefined);
});

test('the table: each line enforced, weaker (how) or refused; defaults are never refused; an image root cannot run at all', () => {
  const text = 'version: 1\nrootfs: host\ncommand: [x]\nports: ["8080:80"]\nresources: {memory: 64m}\nhostname: box\nulimits: {nofile: 1024}\npaths:\n  read_write: [./out]\n  deny: [./out/gen]\n';
  const { plan, problems } = compiled(text);
  const row = (key: string) => plan.reduced!.table.find((r) => r.key.startsWith(key));
  assert.equal(row('rootfs: host')?.status, 'weaker');
  assert.equal(row('ports: 8080:80')?.status, 'refused');
  assert.equal(row('resources')?.status, 'refused');
  assert.equal(row('hostname: box')?.status, 'refused');
  assert.equal(row('ulimits: nofile')?.status, 'enforced');
  assert.equal(row('paths.read_write')?.status, 'enforced');
  assert.match(row('paths.deny')!.how, /Landlock only allows/);
  assert.equal(row('credentials hidden by default')?.status, 'weaker');
  assert.ok(plan.reduced!.table.filter((r) => r.src === 'default').every((r) => r.status !== 'refused'));
  // One problem for each refused line, at its line, in the file's order.
  assert.deepEqual(problems.map((p) => typeof p.src === 'object' && p.src.line), [4, 5, 6, 10]);
  const text2 = renderEnforcement(plan.reduced!);
  assert.match(text2, /sandbox\.yml:4:\d+ +ports: 8080:80\/tcp +refused +no network namespace/);
  assert.match(text2, /--allow-weaker/);
  const image = compiled('version: 1\nrootfs: {type: dir, path: /srv/root}\ncommand: [x]\n');
  assert.deepEqual(image.problems.map((p) => p.code), ['cannot-run-in-reduced-mode']);
});

test('egress of ports only: Landlock holds TCP connect to those ports (first match wins); a host or an address range is left to the other walls', () => {
  const rules = (lines: string[]) => compiled(`version: 1\nrootfs: host\ncommand: [x]\nnetwork:\n  mode: private\n  egress:\n${lines.map((l) => `    - ${l}\n`).join('')}`, { ...HYBRID_HOST, landlock: 7 });
  const spec = loadText('version: 1\nrootfs: host\ncommand: [x]\nnetwork:\n  mode: private\n  egress:\n    - deny 0.0.0.0/0:444\n    - allow 0.0.0.0/0:440-445\n').spec!;
  assert.deepEqual(egressConnectPorts(spec.network.egress!.rules), [440, 441, 442, 443, 445]);
  const ports = landlockOf(rules(['allow 0.0.0.0/0:443', 'allow 0.0.0.0/0:80']).plan.steps)!;
  assert.deepEqual(ports.args.net, { handled: NET.CONNECT_TCP, connect: [80, 443], bind: [] });
  assert.equal(ports.args.handled, 0);
  assert.match(ports.title, /TCP connect only to ports 80,443/);
  assert.equal(landlockOf(rules(['allow registry.npmjs.org:443']).plan.steps), undefined);
  assert.equal(landlockOf(compiled('version: 1\nrootfs: host\ncommand: [x]\nnetwork:\n  mode: private\n  egress:\n    - allow 0.0.0.0/0:443\n', { ...HYBRID_HOST, landlock: 3 }).plan.steps), undefined);
});

test('the op carries the network part as the child reads it: n<handled>, s<scopes>, then c<port> and b<port>', () => {
  const { plan } = compiled(`${FILE.replace('./out/gen', './docs')}network:\n  mode: private\n  egress:\n    - allow 0.0.0.0/0:443\n`);
  const prog = encodeProgram({ plan, rootDir: '/r', uid: 1000, gid: 1000, groups: [], fileSources: new Set(), tty: false, compileSeccomp: () => Buffer.alloc(8) });
  const ops = Array.from({ length: prog.nops }, (_, i) => prog.ops.subarray(i * OP_SIZE, (i + 1) * OP_SIZE));
  const op = ops.find((o) => o.readUInt32LE(OP_OFFSET.kind) === OP.LANDLOCK)!;
  const ref = op.readUInt32LE(OP_OFFSET.s4);
  assert.ok(ref > 0);
  const list: string[] = [];
  for (let at = ref - 1; prog.strings[at] !== 0;) { const end = prog.strings.indexOf(0, at); list.push(prog.strings.subarray(at, end).toString()); at = end + 1; }
  assert.deepEqual(list, [`n${NET.BIND_TCP | NET.CONNECT_TCP}`, `s${SCOPE.ABSTRACT_UNIX | SCOPE.SIGNAL}`, 'c443']);
});

test('a writable home: its missing shell start-up files get placeholders kept read-only; an existing one is kept read-only as it is', () => {
  const { plan } = compiled('version: 1\nrootfs: host\ncommand: [x]\npaths:\n  read_write: [~/]\n', HYBRID_HOST);
  const made = plan.steps.filter((s): s is StepOf<'path.placeholder'> => s.kind === 'path.placeholder').map((s) => s.args.path);
  assert.ok(made.includes('/home/user/.profile') && made.includes('/home/user/.zshrc'), made.join(' '));
  assert.ok(!made.includes('/home/user/.bashrc'));
  assert.ok(plan.steps.some((s) => s.kind === 'mount.readonly' && s.args.path === '/home/user/.profile'));
  assert.ok(plan.steps.some((s) => s.kind === 'mount.readonly' && s.args.path === '/home/user/.bashrc'));
  // A writable folder that is not the home gets none.
  assert.equal(compiled('version: 1\nrootfs: host\ncommand: [x]\npaths:\n  read_write: [./out]\n', HYBRID_HOST).plan.steps.filter((s) => s.kind === 'path.placeholder').length, 0);
});

test('a writable path that holds the state folder is an error at its line: the wall could not be checked from inside', () => {
  const host: HostFeatures = { ...REDUCED, stateRoot: '/project/out/run' };
  const { problems } = compiled('version: 1\nname: w\nrootfs: host\ncommand: [x]\npaths:\n  read_write: [./out]\n', host);
  assert.deepEqual(problems.map((p) => [p.code, typeof p.src === 'object' && p.src.line]), [['reduced-state-writable', 6]]);
  assert.match(problems[0]!.message, /state folder \/project\/out\/run\/w is under \/project\/out.*XDG_RUNTIME_DIR/);
  // The state folder elsewhere: no problem.
  assert.deepEqual(compiled('version: 1\nname: w\nrootfs: host\ncommand: [x]\npaths:\n  read_write: [./out]\n').problems, []);
});
