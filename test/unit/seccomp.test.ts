// Seccomp: the default profile (moby's), reading profile files, resolving for a sandbox, and the
// program for the C side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_PROFILE, filterProgram, parseProfile, resolveProfile, type ResolvedFilter, type SeccompProfile } from '../../src/model/seccomp';
import { DEFAULT_ALLOWED } from '../../src/model/seccomp-default';

const PODMAN_CAPS = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT'];
const resolve = (caps: string[] = PODMAN_CAPS, arch = 'x86_64', kernel = '6.1.0', p: SeccompProfile = DEFAULT_PROFILE) => resolveProfile(p, { caps, arch, kernel });
const rulesFor = (f: ResolvedFilter, name: string) => f.rules.filter((r) => r.name === name);
const allowedUnconditionally = (f: ResolvedFilter, name: string) => rulesFor(f, name).some((r) => r.action === 'allow' && r.args.length === 0);
const absent = (f: ResolvedFilter, name: string) => rulesFor(f, name).length === 0;
const NS_MASK = 0x7e020000n;

test('default profile, Podman caps, x86_64 6.1: the everyday syscalls are allowed', () => {
  const f = resolve();
  assert.equal(f.defaultAction, 'errno');
  assert.equal(f.defaultErrno, 1);
  assert.deepEqual(f.arches, ['x86_64', 'x86', 'x32']);
  for (const n of ['read', 'write', 'openat', 'execve', 'futex', 'mmap', 'exit_group', 'arch_prctl', 'modify_ldt', 'chroot', 'ptrace', 'process_vm_readv', 'seccomp', 'prctl', 'statx', 'rseq']) {
    assert.ok(allowedUnconditionally(f, n), n);
  }
  assert.equal(f.allowed, 370);
});

test('default profile, Podman caps: clone only without namespace flags, clone3 ENOSYS, socket without AF_ALG/AF_VSOCK', () => {
  const f = resolve();
  assert.deepEqual(rulesFor(f, 'clone'), [{ name: 'clone', action: 'allow', errno: 0, args: [{ index: 0, op: 'masked_eq', value: NS_MASK, valueTwo: 0n }] }]);
  assert.deepEqual(rulesFor(f, 'clone3'), [{ name: 'clone3', action: 'errno', errno: 38, args: [] }]);
  assert.deepEqual(rulesFor(f, 'socket').map((r) => r.args), [
    [{ index: 0, op: 'lt', value: 38n, valueTwo: 0n }],
    [{ index: 0, op: 'eq', value: 39n, valueTwo: 0n }],
    [{ index: 0, op: 'gt', value: 40n, valueTwo: 0n }],
  ]);
  assert.deepEqual(rulesFor(f, 'personality').map((r) => r.args[0]!.value), [0n, 8n, 0x20000n, 0x20008n, 0xffffffffn]);
});

test('default profile, Podman caps: the privileged syscalls are left to the default errno', () => {
  const f = resolve();
  for (const n of ['mount', 'umount', 'umount2', 'unshare', 'setns', 'bpf', 'keyctl', 'add_key', 'request_key', 'kexec_load', 'kexec_file_load',
    'init_module', 'finit_module', 'delete_module', 'reboot', 'swapon', 'swapoff', 'pivot_root', 'open_by_handle_at', 'perf_event_open',
    'fsopen', 'open_tree', 'move_mount', 'sethostname', 'syslog', 'acct', 'settimeofday', 'clock_settime', 'iopl', 'ioperm', 'kcmp',
    'pidfd_getfd', 'process_madvise', 'mbind', 'vhangup', 'userfaultfd', 'lookup_dcookie', 'quotactl', 'nfsservctl', 'uselib',
    'io_uring_setup', 'io_uring_enter', 'io_uring_register']) {
    assert.ok(absent(f, n), n);
  }
});

test('ptrace and process_vm_* need kernel 4.8 without SYS_PTRACE (the seccomp bypass through ptrace)', () => {
  for (const k of ['4.4.0-210-generic', '4.7', '3.10.0']) {
    const f = resolve(PODMAN_CAPS, 'x86_64', k);
    assert.ok(absent(f, 'ptrace') && absent(f, 'process_vm_writev'), k);
    assert.equal(f.allowed, 367, k);
  }
  assert.ok(allowedUnconditionally(resolve(PODMAN_CAPS, 'x86_64', '4.8.0'), 'ptrace'));
  assert.ok(allowedUnconditionally(resolve([...PODMAN_CAPS, 'SYS_PTRACE'], 'x86_64', '4.4'), 'ptrace'));
});

test('with SYS_ADMIN: mount, namespaces and clone/clone3 without conditions, as in Docker', () => {
  const f = resolve([...PODMAN_CAPS, 'SYS_ADMIN']);
  for (const n of ['mount', 'umount', 'umount2', 'unshare', 'setns', 'clone', 'clone3', 'bpf', 'perf_event_open', 'fsopen', 'fsmount', 'move_mount', 'open_tree', 'mount_setattr',
    'sethostname', 'setdomainname', 'syslog', 'quotactl', 'fanotify_init', 'lookup_dcookie', 'lsm_list_modules']) {
    assert.ok(allowedUnconditionally(f, n), n);
  }
  assert.equal(rulesFor(f, 'clone').length, 1);
  assert.equal(rulesFor(f, 'clone3').length, 1);
  for (const n of ['pivot_root', 'keyctl', 'kexec_load', 'init_module', 'reboot', 'open_by_handle_at', 'swapon']) assert.ok(absent(f, n), n);
  assert.equal(f.allowed, 395);
  // moby writes CAP_ names; both spellings work.
  assert.deepEqual(resolve([...PODMAN_CAPS, 'CAP_SYS_ADMIN']), f);
});

test('each capability opens what moby opens for it', () => {
  const cases: [string, string[]][] = [
    ['SYS_PTRACE', ['kcmp', 'pidfd_getfd', 'process_madvise', 'process_vm_readv', 'process_vm_writev', 'ptrace']],
    ['BPF', ['bpf']],
    ['PERFMON', ['perf_event_open']],
    ['DAC_READ_SEARCH', ['open_by_handle_at']],
    ['SYS_BOOT', ['reboot']],
    ['SYS_MODULE', ['init_module', 'finit_module', 'delete_module']],
    ['SYS_PACCT', ['acct']],
    ['SYS_RAWIO', ['iopl', 'ioperm']],
    ['SYS_TIME', ['settimeofday', 'stime', 'clock_settime', 'clock_settime64']],
    ['SYS_TTY_CONFIG', ['vhangup']],
    ['SYS_NICE', ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node']],
    ['SYSLOG', ['syslog']],
  ];
  const base = resolve();
  for (const [cap, names] of cases) {
    const f = resolve([...PODMAN_CAPS, cap]);
    for (const n of names) assert.ok(allowedUnconditionally(f, n), `${cap}: ${n}`);
    assert.equal(f.allowed - base.allowed, names.filter((n) => !allowedUnconditionally(base, n)).length, cap);
    // None of them lifts the namespace rules.
    assert.deepEqual(rulesFor(f, 'clone'), rulesFor(base, 'clone'), cap);
    assert.ok(absent(f, 'mount') && absent(f, 'unshare'), cap);
  }
  // Without SYS_CHROOT, no chroot.
  assert.ok(absent(resolve(PODMAN_CAPS.filter((c) => c !== 'SYS_CHROOT')), 'chroot'));
});

test('other hosts: archMap entry, arch-only rules, s390 clone argument order', () => {
  const arm = resolve(PODMAN_CAPS, 'aarch64');
  assert.deepEqual(arm.arches, ['aarch64', 'arm']);
  assert.ok(allowedUnconditionally(arm, 'cacheflush') && allowedUnconditionally(arm, 'set_tls'));
  assert.ok(absent(arm, 'arch_prctl') && absent(arm, 'modify_ldt'));
  const s390 = resolve(PODMAN_CAPS, 's390x');
  assert.deepEqual(s390.arches, ['s390x', 's390']);
  assert.deepEqual(rulesFor(s390, 'clone').map((r) => r.args), [[{ index: 1, op: 'masked_eq', value: NS_MASK, valueTwo: 0n }]]);
  assert.deepEqual(resolve(PODMAN_CAPS, 'riscv64').arches, ['riscv64']);
  assert.deepEqual(resolve(PODMAN_CAPS, 'amd64').arches, ['x86_64', 'x86', 'x32']);
  assert.deepEqual(resolve(PODMAN_CAPS, 'x64').arches, ['x86_64', 'x86', 'x32']);
  assert.deepEqual(resolve(PODMAN_CAPS, 'arm64').arches, ['aarch64', 'arm']);
  assert.throws(() => resolve(PODMAN_CAPS, 'vax'), /unknown host architecture "vax"/);
  assert.throws(() => resolve(PODMAN_CAPS, 'x86_64', 'six'), /cannot read the kernel version "six"/);
});

test('the default allow list: over 300 names, no duplicates, the recent ones, no io_uring or keyring', () => {
  assert.ok(DEFAULT_ALLOWED.length > 300, String(DEFAULT_ALLOWED.length));
  assert.equal(DEFAULT_ALLOWED.length, 361);
  assert.equal(new Set(DEFAULT_ALLOWED).size, DEFAULT_ALLOWED.length);
  assert.deepEqual(DEFAULT_PROFILE.syscalls![0]!.names, DEFAULT_ALLOWED);
  for (const n of ['faccessat2', 'close_range', 'epoll_pwait2', 'openat2', 'pidfd_open', 'pidfd_send_signal', 'process_mrelease', 'futex_waitv', 'statx', 'rseq',
    'landlock_create_ruleset', 'memfd_secret', 'cachestat', 'fchmodat2', 'map_shadow_stack', 'futex_wait', 'listmount', 'statmount', 'mseal', 'getxattrat']) {
    assert.ok(DEFAULT_ALLOWED.includes(n), n);
  }
  for (const n of ['io_uring_setup', 'io_uring_enter', 'io_uring_register', 'keyctl', 'add_key', 'request_key', 'userfaultfd', 'clone', 'clone3', 'socket', 'personality', 'ptrace', 'mount']) {
    assert.ok(!DEFAULT_ALLOWED.includes(n), n);
  }
  const all = (DEFAULT_PROFILE.syscalls ?? []).flatMap((r) => r.names ?? []);
  assert.ok(!all.some((n) => n.startsWith('io_uring')));
});

test('filterProgram: the exact text, redundant rules dropped, conditions on one index split', () => {
  const p: SeccompProfile = {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    architectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X86_64'],
    syscalls: [
      { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
      { names: ['kill'], action: 'SCMP_ACT_ERRNO' }, // same as the default: dropped
      { names: ['read'], action: 'SCMP_ACT_ALLOW' }, // duplicate: dropped
      { names: ['write'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }] }, // subsumed: dropped
      { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] },
      { names: ['mmap'], action: 'SCMP_ACT_ALLOW', args: [{ index: 2, value: 1, op: 'SCMP_CMP_GE' }, { index: 3, value: 2, op: 'SCMP_CMP_NE' }] },
      { name: 'fcntl', action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: 1, op: 'SCMP_CMP_EQ' }, { index: 1, value: 2, op: 'SCMP_CMP_EQ' }, { index: 0, value: 3, op: 'SCMP_CMP_LT' }] },
      { names: ['ioctl'], action: 'SCMP_ACT_ERRNO', errnoRet: 25, args: [{ index: 1, value: 0xffffffffffffffffn, op: 'SCMP_CMP_EQ' }] },
      { names: ['uname'], action: 'SCMP_ACT_LOG' },
      { names: ['vhangup'], action: 'SCMP_ACT_KILL' },
      { names: ['acct'], action: 'SCMP_ACT_KILL_PROCESS' },
      { names: ['mount'], action: 'SCMP_ACT_TRAP', includes: { caps: ['CAP_SYS_ADMIN'] } },
      { names: ['swapon'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }, // same as the default: dropped
    ],
  };
  const f = resolve([], 'x86_64', '6.1', p);
  assert.equal(filterProgram(f), [
    'default errno 1',
    'arch x86_64',
    'arch x86',
    'rule allow 0 read',
    'rule allow 0 write',
    'rule allow 0 clone 0 masked_eq 2114060288 0',
    'rule allow 0 mmap 2 ge 1 0 3 ne 2 0',
    'rule allow 0 fcntl 1 eq 1 0',
    'rule allow 0 fcntl 1 eq 2 0',
    'rule allow 0 fcntl 0 lt 3 0',
    'rule errno 25 ioctl 1 eq 18446744073709551615 0',
    'rule log 0 uname',
    'rule kill_thread 0 vhangup',
    'rule kill_process 0 acct',
    '',
  ].join('\n'));
  assert.equal(f.allowed, 5);
});

test('errno: the rule, else defaultErrnoRet, else EPERM; Podman names win over numbers', () => {
  const f = resolve([], 'x86_64', '6.1', {
    defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38,
    syscalls: [{ names: ['a'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }, { names: ['b'], action: 'SCMP_ACT_ERRNO' }, { names: ['c'], action: 'SCMP_ACT_ALLOW' }],
  });
  assert.deepEqual(f.rules.map((r) => [r.name, r.action, r.errno]), [['a', 'errno', 13], ['c', 'allow', 0]]);
  assert.equal(f.defaultErrno, 38);
  const g = resolve([], 'x86_64', '6.1', { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['b'], action: 'SCMP_ACT_ERRNO', errnoRet: 5, errno: 'EACCES' }] });
  assert.equal(g.defaultErrno, 1);
  assert.deepEqual(g.rules.map((r) => r.errno), [13]);
  const h = resolve([], 'x86_64', '6.1', { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 1, defaultErrno: 'ENOSYS' });
  assert.equal(h.defaultErrno, 38);
  const k = resolve([], 'x86_64', '6.1', { defaultAction: 'SCMP_ACT_KILL_PROCESS', defaultErrnoRet: 5 });
  assert.deepEqual([k.defaultAction, k.defaultErrno, k.arches], ['kill_process', 0, ['x86_64']]);
  assert.throws(() => resolve([], 'x86_64', '6.1', { defaultAction: 'SCMP_ACT_TRACE' }), /not supported by sandbox/);
});

test('parseProfile: a Docker profile (archMap, includes, excludes, old `name`) parses', () => {
  const text = `{
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 1,
  "archMap": [
    { "architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
    { "architecture": "SCMP_ARCH_RISCV64", "subArchitectures": null }
  ],
  "syscalls": [
    { "names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": [], "comment": "", "includes": {}, "excludes": {} },
    { "name": "ptrace", "action": "SCMP_ACT_ALLOW", "includes": { "minKernel": "4.8" } },
    { "names": ["clone"], "action": "SCMP_ACT_ALLOW",
      "args": [{ "index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ" }],
      "excludes": { "caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"] } },
    { "names": ["big"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "args": [{ "index": 5, "value": 18446744073709551615, "op": "SCMP_CMP_EQ" }] }
  ]
}`;
  const r = parseProfile(text);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.profile, {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    archMap: [
      { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
      { architecture: 'SCMP_ARCH_RISCV64' },
    ],
    syscalls: [
      { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW', args: [], comment: '', includes: {}, excludes: {} },
      { name: 'ptrace', action: 'SCMP_ACT_ALLOW', includes: { minKernel: '4.8' } },
      { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2114060288, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }], excludes: { caps: ['CAP_SYS_ADMIN'], arches: ['s390', 's390x'] } },
      { names: ['big'], action: 'SCMP_ACT_ERRNO', errnoRet: 38, args: [{ index: 5, value: 0xffffffffffffffffn, op: 'SCMP_CMP_EQ' }] },
    ],
  });
  const f = resolve(PODMAN_CAPS, 'x86_64', '6.1', r.profile!);
  assert.equal(filterProgram(f), 'default errno 1\narch x86_64\narch x86\narch x32\nrule allow 0 read\nrule allow 0 write\nrule allow 0 ptrace\n'
    + 'rule allow 0 clone 0 masked_eq 2114060288 0\nrule errno 38 big 5 eq 18446744073709551615 0\n');
});

test('parseProfile: an OCI profile (architectures, flags, listener) and a Podman one (errno names) parse', () => {
  const oci = parseProfile(`{
  "defaultAction": "SCMP_ACT_KILL_PROCESS",
  "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
  "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
  "listenerPath": "/run/agent.sock",
  "listenerMetadata": "x",
  "syscalls": [
    { "names": ["getcwd", "chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13 },
    { "names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{ "index": 0, "value": 3, "op": "SCMP_CMP_LE" }] }
  ]
}`);
  assert.deepEqual(oci.errors, []);
  assert.deepEqual(oci.profile!.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X32']);
  assert.deepEqual(oci.profile!.flags, ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW']);
  assert.equal(filterProgram(resolve([], 'x86_64', '5.10', oci.profile!)),
    'default kill_process 0\narch x86_64\narch x32\nrule errno 13 getcwd\nrule errno 13 chmod\nrule allow 0 read 0 le 3 0\n');

  const podman = parseProfile(`{
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 38,
  "defaultErrno": "ENOSYS",
  "archMap": [{ "architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] }],
  "syscalls": [
    { "names": ["bdflush", "kexec_load"], "action": "SCMP_ACT_ERRNO", "args": null, "comment": "", "includes": {}, "excludes": {}, "errnoRet": 1, "errno": "EPERM" },
    { "names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [], "comment": "", "includes": {}, "excludes": {} }
  ]
}`);
  assert.deepEqual(podman.errors, []);
  assert.equal(filterProgram(resolve(PODMAN_CAPS, 'x86_64', '6.1', podman.profile!)),
    'default errno 38\narch x86_64\narch x86\narch x32\nrule errno 1 bdflush\nrule errno 1 kexec_load\nrule allow 0 read\n');
});

test('parseProfile: every problem at once, each at its line:col', () => {
  const text = `{
  "defaultErrnoRet": 5000,
  "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"],
  "archMap": [{ "architecture": "SCMP_ARCH_X86_64", "subArchitecture": [] }],
  "flags": ["SECCOMP_FILTER_FLAG_FAST"],
  "defaultErrno2": 1,
  "syscalls": [
    { "names": ["read", 7], "action": "SCMP_ACT_ALOW" },
    { "name": "ptrace", "names": ["ptrace"], "action": "SCMP_ACT_TRACE" },
    { "names": ["ioctl"], "action": "SCMP_ACT_NOTIFY", "errno": "EWHAT" },
    { "names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
      { "index": 6, "value": -1, "op": "SCMP_CMP_MASKED" },
      { "value": 1.5, "op": "SCMP_CMP_EQ", "index": 0, "valuetwo": 0 }
    ] },
    { "action": "SCMP_ACT_ALLOW", "includes": { "caps": ["CAP_SYS_ADMN"], "arches": ["amd65"], "minKernel": "4.8.1" } },
    { "names": "mount", "action": "SCMP_ACT_ALLOW", "excludes": { "kernel": "5.0" }, "action": "SCMP_ACT_LOG" }
  ]
}`;
  const r = parseProfile(text);
  assert.equal(r.profile, undefined);
  assert.deepEqual(r.errors.map((e) => `${e.line}:${e.col}: ${e.message}`), [
    '1:1: the profile has no `defaultAction`; write "defaultAction": "SCMP_ACT_ERRNO" for an allow list',
    '2:22: `defaultErrnoRet` must be an errno number from 0 to 4095, not the number 5000',
    '3:41: `architectures[1]`: unknown architecture "SCMP_ARCH_VAX"; expected one of SCMP_ARCH_NATIVE, SCMP_ARCH_X86, SCMP_ARCH_X86_64, SCMP_ARCH_X32, SCMP_ARCH_ARM, SCMP_ARCH_AARCH64, SCMP_ARCH_LOONGARCH64, SCMP_ARCH_M68K, SCMP_ARCH_MIPS, SCMP_ARCH_MIPSEL, SCMP_ARCH_MIPS64, SCMP_ARCH_MIPSEL64, SCMP_ARCH_MIPS64N32, SCMP_ARCH_MIPSEL64N32, SCMP_ARCH_PARISC, SCMP_ARCH_PARISC64, SCMP_ARCH_PPC, SCMP_ARCH_PPC64, SCMP_ARCH_PPC64LE, SCMP_ARCH_S390, SCMP_ARCH_S390X, SCMP_ARCH_RISCV64, SCMP_ARCH_SH, SCMP_ARCH_SHEB',
    '4:3: the profile has both `architectures` and `archMap`; use one of them',
    '4:53: unknown field `subArchitecture` in an archMap entry (architecture, subArchitectures); did you mean `subArchitectures`?',
    '5:13: `flags[0]`: unknown flag "SECCOMP_FILTER_FLAG_FAST"; expected one of SECCOMP_FILTER_FLAG_TSYNC, SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV',
    '6:3: unknown field `defaultErrno2` in the profile; did you mean `defaultErrno`?',
    '8:25: `syscalls[0].names[1]` must be a string, not the number 7',
    '8:39: `syscalls[0].action`: unknown action "SCMP_ACT_ALOW"; expected one of SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, SCMP_ACT_LOG',
    '9:7: `syscalls[1]` has both `name` and `names`; use `names`',
    '9:56: `syscalls[1].action`: SCMP_ACT_TRACE is not supported by sandbox (it needs a ptrace tracer attached to the sandbox); use SCMP_ACT_ERRNO, SCMP_ACT_LOG or SCMP_ACT_KILL_PROCESS',
    '10:37: `syscalls[2].action`: SCMP_ACT_NOTIFY is not supported by sandbox (it needs a seccomp agent on listenerPath); use SCMP_ACT_ERRNO, SCMP_ACT_LOG or SCMP_ACT_KILL_PROCESS',
    '10:65: `syscalls[2].errno`: unknown errno "EWHAT"; write a name such as EPERM or ENOSYS, or a number from 0 to 4095',
    '12:18: `syscalls[3].args[0].index` must be 0..5 (a syscall has six arguments), not the number 6',
    '12:30: `syscalls[3].args[0].value` must be an unsigned 64-bit integer, not the number -1',
    '12:40: `syscalls[3].args[0].op`: unknown operator "SCMP_CMP_MASKED"; expected one of SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ',
    '13:18: `syscalls[3].args[1].value` must be an unsigned 64-bit integer, not the number 1.5',
    '13:56: unknown field `valuetwo` in an argument condition (index, value, valueTwo, op); did you mean `valueTwo`?',
    '15:5: `syscalls[4]` has no `names`',
    '15:58: `syscalls[4].includes.caps[0]`: unknown capability "CAP_SYS_ADMN"; write it as CAP_SYS_ADMIN or SYS_ADMIN',
    '15:86: `syscalls[4].includes.arches[0]`: unknown architecture "amd65"; expected one of amd64, x86_64, x86, arm64, aarch64, arm, loongarch64, loong64, mips, mipsel, mipsle, mips64, mipsel64, mips64le, mips64n32, mips3l64n32, mipsel64n32, ppc, ppc64, ppc64le, s390, s390x, riscv64, x32, m68k, parisc, parisc64, sh, sheb',
    '15:109: `syscalls[4].includes.minKernel` must be a kernel version as major.minor, e.g. "4.8", not "4.8.1"',
    '16:16: `syscalls[5].names` must be a list, not the string "mount"',
    '16:67: unknown field `kernel` in includes/excludes (caps, arches, minKernel)',
    '16:86: `action` appears twice in syscalls[5]; the first is on line 16',
  ]);
});

test('parseProfile: JSON syntax errors, the wrong root, an empty file', () => {
  const bad = parseProfile('{\n  "defaultAction": "SCMP_ACT_ERRNO",\n  "syscalls": [ { "names": ["read"] "action": "SCMP_ACT_ALLOW" } ]\n}\n');
  assert.equal(bad.profile, undefined);
  assert.deepEqual(bad.errors, [
    { line: 3, col: 37, message: 'the profile is not valid JSON: Unexpected double-quoted-scalar at node end' },
    { line: 3, col: 45, message: 'the profile is not valid JSON: Missing , between flow map items' },
  ]);
  const plain = parseProfile('{ "defaultAction": SCMP_ACT_ERRNO }');
  assert.deepEqual(plain.errors.map((e) => `${e.line}:${e.col}`), ['1:20']);
  assert.match(plain.errors[0]!.message, /not valid JSON: Unresolved plain scalar "SCMP_ACT_ERRNO"/);
  assert.deepEqual(parseProfile('[1, 2]').errors, [{ line: 1, col: 1, message: 'a seccomp profile is a JSON object ({ ... }), not a list' }]);
  assert.deepEqual(parseProfile('{"syscalls": ' + '['.repeat(40) + ']'.repeat(40) + '}').errors, [{ line: 1, col: 45, message: 'brackets nest deeper than 32 levels here; a seccomp profile needs no more than 5' }]);
  assert.deepEqual(parseProfile('{"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"{{"}').errors, []);
  assert.match(parseProfile(' '.repeat(1024 * 1024 + 1)).errors[0]!.message, /^the profile is 1025 KiB; a seccomp profile may be at most 1024 KiB$/);
  assert.deepEqual(parseProfile('  \n').errors, [{ line: 1, col: 1, message: 'the profile is empty; it needs at least a `defaultAction`' }]);
  assert.deepEqual(parseProfile('{"defaultAction": "SCMP_ACT_ERRNO"}'), { profile: { defaultAction: 'SCMP_ACT_ERRNO' }, errors: [] });
});

test('parseProfile reads back a profile written from DEFAULT_PROFILE, and it resolves the same', () => {
  const json = JSON.stringify(DEFAULT_PROFILE, null, 2);
  const r = parseProfile(json);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.profile, DEFAULT_PROFILE);
  for (const caps of [PODMAN_CAPS, [...PODMAN_CAPS, 'SYS_ADMIN'], []]) {
    assert.equal(filterProgram(resolve(caps, 'x86_64', '6.1', r.profile!)), filterProgram(resolve(caps)));
  }
});

test('names shaped like Object members are unknown names in a profile, not a crash or a garbled message', () => {
  const { errors } = parseProfile('{"defaultAction": "constructor", "syscalls": [{"names": ["x"], "action": "toString", "args": [{"index": 0, "value": 1, "op": "valueOf"}]}], "architectures": ["hasOwnProperty"]}');
  assert.deepEqual(errors.map((e) => e.message.split(';')[0]), [
    '`defaultAction`: unknown action "constructor"', '`syscalls[0].action`: unknown action "toString"',
    '`syscalls[0].args[0].op`: unknown operator "valueOf"', '`architectures[0]`: unknown architecture "hasOwnProperty"',
  ]);
});
