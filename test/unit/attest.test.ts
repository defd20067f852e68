// The attestation's rules, on made-up views of a child: what counts as applied, what is a
// mismatch (with both sides said), and what the host cannot check (with the reason).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attest, type ProcView } from '../../src/engine/attest';
import { MNT } from '../../src/ffi/generated/abi';
import { compile } from '../../src/plan/compile';
import { HYBRID_HOST, V2_HOST, loadText } from '../helpers/load';

const CONFIG = 'version: 1\ncommand: [x]\nuser: "1000:1000"\nnetwork: none\nresources: {memory: 256m, pids: 16, cpus: "0.5"}\nulimits: {nofile: 64}\nnamespaces: {user: {uid_map: ["0:100000:65536"], gid_map: ["0:100000:65536"]}}\n';

function view(over: Partial<ProcView> = {}, cgroup: Record<string, string> = {}): ProcView {
  return {
    status: { uid: 101000, gid: 101000, groups: [], umask: 0o022, noNewPrivs: 1, seccomp: 2, seccompFilters: 1, CapBnd: 0n, CapPrm: 0n, CapEff: 0n, CapInh: 0n, CapAmb: 0n },
    uidMap: [{ container: 0, host: 100000, size: 65536 }], gidMap: [{ container: 0, host: 100000, size: 65536 }], mounts: [], ns: { net: 'net:[2]', user: 'user:[9]' }, hostNs: { net: 'net:[1]', user: 'user:[1]' },
    limits: Array.from({ length: 16 }, (_, i) => (i === 7 ? [64, 64] : [-1, -1])), cgroups: [], interfaces: ['lo'], routes: [], localAddresses: ['127.0.0.1'], rootIsHosts: false, inheritedFds: [],
    path: () => undefined, realPath: (p) => p, cgroupFile: (_c, f) => cgroup[f], cgroupExists: () => cgroup['cgroup.procs'] !== undefined, stateFile: () => '', hostPeerGroups: () => new Set([1]), nsInode: () => undefined, hostInterface: () => false,
    ...over,
  };
}
const verdictOf = (host: typeof HYBRID_HOST, v: ProcView, id: string) => {
  const plan = compile(loadText(CONFIG).spec!, host).plan;
  return attest(plan, v, { uid: 1000, gid: 1000, groups: [] }).find((x) => x.step === id)!;
};

test('user and ids are compared as the host sees them, through the user namespace\'s maps', () => {
  assert.equal(verdictOf(HYBRID_HOST, view(), 'user:ids').verdict, 'verified');
  assert.equal(verdictOf(HYBRID_HOST, view(), 'idmap').verdict, 'verified');
  const wrong = verdictOf(HYBRID_HOST, view({ status: { ...view().status, uid: 1000 } }), 'user:ids');
  assert.equal(wrong.verdict, 'mismatch');
  assert.match(wrong.detail, /^expected uid 1000, gid 1000 \(host 101000, 101000\), found uid 1000/);
});

test('cgroup limits are read back and compared with the plan', () => {
  assert.equal(verdictOf(V2_HOST, view({}, { 'memory.max': '268435456\n' }), 'cgroup:memory').verdict, 'verified');
  assert.equal(verdictOf(HYBRID_HOST, view({}, { 'memory.limit_in_bytes': '268435456\n' }), 'cgroup:memory').verdict, 'verified');
  assert.equal(verdictOf(HYBRID_HOST, view({}, { 'memory.limit_in_bytes': '268431360\n' }), 'cgroup:memory').verdict, 'mismatch');
  const bad = verdictOf(V2_HOST, view({}, { 'memory.max': 'max\n' }), 'cgroup:memory');
  assert.deepEqual([bad.verdict, bad.detail], ['mismatch', 'expected memory.max = 268435456, found memory.max = max']);
  assert.equal(verdictOf(V2_HOST, view({}, { 'cpu.max': '50000 100000\n' }), 'cgroup:cpus').verdict, 'verified');
  assert.equal(verdictOf(V2_HOST, view({}, {}), 'cgroup:pids').verdict, 'mismatch');
});

test('security state: no_new_privs, seccomp, capabilities, rlimits, umask', () => {
  assert.equal(verdictOf(HYBRID_HOST, view(), 'nnp').verdict, 'verified');
  assert.equal(verdictOf(HYBRID_HOST, view({ status: { ...view().status, noNewPrivs: 0 } }), 'nnp').detail, 'expected no_new_privs on, found NoNewPrivs 0');
  assert.equal(verdictOf(HYBRID_HOST, view({ status: { ...view().status, seccomp: 0 } }), 'seccomp').verdict, 'mismatch');
  // A non-root user holds no capability unless cap_add names it: every set empty but the bounding one.
  const caps = verdictOf(HYBRID_HOST, view({ status: { ...view().status, CapEff: 1n } }), 'caps');
  assert.equal(caps.verdict, 'mismatch');
  assert.equal(verdictOf(HYBRID_HOST, view(), 'rlimit:nofile').verdict, 'verified');
  assert.equal(verdictOf(HYBRID_HOST, view({ status: { ...view().status, umask: 0o077 } }), 'umask').detail, 'expected umask 0022, found umask 0077');
});

test('namespaces, mounts and the network: read from /proc/PID', () => {
  assert.equal(verdictOf(HYBRID_HOST, view(), 'ns:net').verdict, 'verified');
  assert.equal(verdictOf(HYBRID_HOST, view({ ns: { net: 'net:[1]' } }), 'ns:net').detail, 'expected a new net namespace, found the host\'s (net:[1])');
  assert.equal(verdictOf(HYBRID_HOST, view({ interfaces: ['eth0', 'lo'] }), 'net:none').verdict, 'mismatch');
  assert.equal(verdictOf(HYBRID_HOST, view({ localAddresses: [] }), 'net:lo').verdict, 'mismatch');
  const proc = { point: '/proc', flags: MNT.NOSUID | MNT.NODEV | MNT.NOEXEC | MNT.RELATIME, shared: 0, master: 0, fstype: 'proc' };
  assert.equal(verdictOf(HYBRID_HOST, view({ mounts: [proc] }), 'mount:/proc').verdict, 'verified');
  assert.equal(verdictOf(HYBRID_HOST, view({ mounts: [{ ...proc, flags: 0 }] }), 'mount:/proc').detail, 'expected /proc mounted (proc,nosuid,nodev,noexec), found /proc no nosuid, no nodev, no noexec');
  assert.equal(verdictOf(HYBRID_HOST, view({ mounts: [{ ...proc, point: '/', shared: 1 }] }), 'mount:private').verdict, 'mismatch');
  // A peer group the host has not got is the sandbox's own (a shared root_propagation): no leak.
  assert.equal(verdictOf(HYBRID_HOST, view({ mounts: [{ ...proc, point: '/', shared: 812 }] }), 'mount:private').verdict, 'verified');
  assert.equal(verdictOf(HYBRID_HOST, view({ rootIsHosts: true }), 'pivot').verdict, 'mismatch');
  // A masked path the sandbox has not got needs no mask.
  assert.equal(verdictOf(HYBRID_HOST, view(), 'mask:/proc/keys').detail, '/proc/keys is absent');
});

test('root_propagation and a mount\'s propagation are read in mountinfo\'s optional fields', () => {
  const at = (cfg: string, v: ProcView, id: string) => attest(compile(loadText(CONFIG + cfg).spec!, HYBRID_HOST).plan, v, { uid: 1000, gid: 1000, groups: [] }).find((x) => x.step === id)!;
  const root = { point: '/', flags: 0, shared: 0, master: 0, fstype: 'ext4' };
  assert.equal(at('root_propagation: shared\n', view({ mounts: [{ ...root, shared: 812 }] }), 'mount:/:propagation').verdict, 'verified');
  assert.equal(at('root_propagation: shared\n', view({ mounts: [root] }), 'mount:/:propagation').detail, 'expected / mounted (shared), found / private');
  assert.equal(at('root_propagation: unbindable\n', view({ mounts: [{ ...root, flags: MNT.UNBINDABLE }] }), 'mount:/:propagation').verdict, 'verified');
  assert.equal(at('root_propagation: rslave\n', view({ mounts: [root] }), 'mount:/:propagation').verdict, 'verified');
  assert.equal(at('root_propagation: private\n', view({ mounts: [{ ...root, shared: 812 }] }), 'mount:/:propagation').verdict, 'mismatch');
  const tmp = { point: '/t', flags: MNT.NOSUID | MNT.NODEV, shared: 0, master: 0, fstype: 'tmpfs' };
  const cfg = 'volumes: [{type: tmpfs, target: /t, propagation: shared}]\n';
  assert.equal(at(cfg, view({ mounts: [{ ...tmp, shared: 900 }] }), 'mount:/t').verdict, 'verified');
  assert.equal(at(cfg, view({ mounts: [tmp] }), 'mount:/t').verdict, 'mismatch');
});

test('what the host cannot read back is said, with the reason', () => {
  assert.equal(verdictOf(HYBRID_HOST, view(), 'fds').verdict, 'verified');
  assert.equal(verdictOf(HYBRID_HOST, view({ inheritedFds: [7] }), 'fds').detail, 'expected no descriptor above 2 that survives exec, found descriptors 7 without O_CLOEXEC');
  for (const id of ['hostname', 'exec']) {
    const v = verdictOf(HYBRID_HOST, view(), id);
    assert.equal(v.verdict, 'not checkable', id);
    assert.ok(v.detail.length > 40, id);
  }
});
