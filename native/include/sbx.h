/*
 * libsbx: the native half of sandbox. A tiny ABI, loaded by Node through koffi (src/ffi/).
 *
 * Node runs about 11 threads, so namespace, mount and capability work cannot happen in the
 * Node process: unshare(CLONE_NEWUSER) fails with EINVAL in a multithreaded process, and mount or
 * setns would affect only the calling thread. sbx_spawn() therefore clones one child, and that
 * child runs a list of fixed-size ops, encoded by the parent before the clone, with raw system
 * calls only: no malloc, no stdio, no locks (another thread may have held one at clone time).
 *
 * Every function returns 0 or -1 and, on -1, fills struct sbx_error. Nothing here may exit or
 * abort the Node process.
 *
 * Parent/child handshake (PARENT = the Node process, root or not; CHILD = the clone, already in
 * its new pid, mount, uts, ipc, net, user and time namespaces):
 *
 *   PARENT (Node thread)                         CHILD (new namespaces, single thread)
 *   --------------------                         --------------------------------------
 *   sbx_spawn():
 *     pipe2(events, O_CLOEXEC)
 *     socketpair(sync, SOCK_CLOEXEC)
 *     clone(flags | SIGCHLD) ─────────────────►  reset signals, PR_SET_PDEATHSIG(SIGKILL)
 *     return {pid, events_fd, sync_fd}            read(sync) ── blocks ──┐
 *   Node, as the plan says:                                              │
 *     write pid to the cgroup's procs file                               │
 *     write uid_map / setgroups / gid_map                                │
 *     (network: host side of the veth)                                   │
 *     write(sync, "G") ───────────────────────────────────────────────► ┘ go on
 *                                                unshare(CLONE_NEWCGROUP) (now rooted at its cgroup)
 *   (tty: on the console op's DONE,                SBX_OP_CONSOLE: open ptmx in its own devpts,
 *    recvmsg(sync) ◄── master fd, SCM_RIGHTS ────  keep the slave as stdio, send the master)
 *   read(events) ◄── {step, START} ─────────────  for each op: report START, run it,
 *   read(events) ◄── {step, DONE, ns} ──────────                report DONE (or FAILED + errno,
 *   ...                                                          then _exit(125))
 *   read(events) ◄── {exec, START} ─────────────  read(sync) ── blocks ──┐
 *   (progress output is finished)                                        │
 *     write(sync, "E") ────────────────────────────────────────────────► ┘ execve(): events_fd is
 *   read(events) == EOF  ⇒  the command runs      O_CLOEXEC, so the parent sees EOF exactly when
 *                                                 exec succeeded. Exec failure: {exec, FAILED,
 *                                                 errno}, then _exit(126, or 127 for ENOENT)
 *   sbx_wait() on koffi's worker thread ──────►  the command's exit status
 *
 * If the parent dies at any point, PDEATHSIG kills the child; if the child dies before "G", the
 * parent's write fails with EPIPE and it undoes what it did.
 *
 * A restart (restart: in the file) runs the command again outside the sandbox: a pid namespace dies
 * with its PID 1, so the command cannot be run again inside it, and the command itself is PID 1
 * (as in Docker, which makes a new runc container in the same network namespace). The process that
 * waits for the command (the CLI in the foreground, sbx-supervise when detached) holds the first
 * child's user and network namespaces open (fds of /proc/PID/ns/{user,net}, taken before "G"), so
 * that the id maps, the address, the veth and the port maps outlive it. sbx_respawn() then makes
 * the next child in them:
 *
 *   RESTARTER (CLI or supervisor, host namespaces)      H (raw clone, one thread)
 *   sbx_respawn(): pipes as sbx_spawn, clone ────────►  write "0" to each cgroup.procs (it joins
 *                                                       the sandbox's cgroup, as root of the host)
 *                                                       setns(user), setns(net): the pinned ones
 *                                                       clone(new pid, mount, uts, ipc | CLONE_PARENT)
 *     read(pid pipe) ◄── the child's pid ─────────────  write(pid pipe), _exit(0)
 *     waitpid(H)                                        CHILD: the RESTARTER's child, in the
 *   then the handshake above, from "G" on, with the     cgroup (inherited), the pinned user and
 *   restart program: the same ops, but for the network  network namespaces and new others; it
 *   ones, which persist in the pinned namespace.        becomes root of the user namespace and runs
 *                                                       its ops as the first child did.
 */
#ifndef SBX_H
#define SBX_H

#include <stdint.h>

#define SBX_ABI_VERSION 20

#if defined(__GNUC__)
#define SBX_API __attribute__((visibility("default")))
#else
#define SBX_API
#endif

struct sbx_error {
	int32_t err;          /* errno, or 0 */
	int32_t step;         /* index of the plan step that failed, or -1 */
	char message[256];
};

/* One op of the child's program: 64 bytes. Strings are offsets + 1 into the string arena (0 means
 * none); lists are NUL-separated and end with an empty string. */
struct sbx_op {
	uint32_t kind;        /* enum sbx_op_kind */
	uint32_t step;        /* index of the plan step it belongs to: events name it */
	uint32_t flags;       /* SBX_F_*, MS_* for mounts */
	uint32_t mode;
	int64_t a, b;
	uint32_t s1, s2, s3, s4;
	int32_t stdio[3];     /* on SBX_OP_EXEC with SBX_F_STDIO: the caller's fds that become the child's 0, 1, 2 (-1: keep) */
	uint32_t reserved;
};
_Static_assert(sizeof(struct sbx_op) == 64, "struct sbx_op is 64 bytes: src/engine/ops.ts encodes it so");

enum sbx_op_kind {
	SBX_OP_NOTE = 1,        /* reports START and DONE only: a step with no work of its own */
	SBX_OP_JOIN_NS,         /* s1 path, a = CLONE_NEW* type; mode 1 with CLONE_NEWPID: sbx_spawn enters it around
				 * the clone, so that the child is born there (a pid namespace joined by path) */
	SBX_OP_UNSHARE,         /* a = CLONE_NEW* flags: cgroup (once in its cgroup) and time (entered at exec) */
	SBX_OP_LOOPBACK_UP,
	SBX_OP_MOUNT_PRIVATE,   /* make / rprivate */
	SBX_OP_ROOT_TMPFS,      /* s1 = new root folder */
	SBX_OP_ROOT_BIND,       /* s1 = new root folder, s2 = source tree */
	SBX_OP_BIND,            /* s1 source (host path), s2 target inside the root; flags, a = 1 read-only, b = propagation */
	SBX_OP_SYMLINK,         /* s1 link path inside the root, s2 its target */
	SBX_OP_MOUNT_FS,        /* s1 target inside the root, s2 fstype, s3 data; flags; s4 the source (default: fstype);
				 * b = propagation flags applied to the new mount, 0 for none */
	SBX_OP_DEV_NODE,        /* s1 host device, s2 target inside the root */
	SBX_OP_SYSFS,           /* s1 target; a = 1 fresh sysfs, 0 bind the host's */
	SBX_OP_SYSCTL,          /* s1 name (dots), s2 value */
	SBX_OP_PIVOT,
	SBX_OP_MASK,            /* s1 path in the new root */
	SBX_OP_READONLY,        /* s1 path in the new root */
	SBX_OP_ROOT_READONLY,
	SBX_OP_HOSTNAME,        /* s1 */
	SBX_OP_GROUPS,          /* s1: list of decimal gids */
	SBX_OP_IDS,             /* a uid, b gid */
	SBX_OP_UMASK,           /* mode */
	SBX_OP_RLIMIT,          /* mode = resource, a soft, b hard (-1 = infinity) */
	SBX_OP_CAPS,            /* a = the bounding set (bit mask), b = what a non-root uid holds (cap_add); with mode 1,
				 * the exact sets: b = the ambient set, s1 = the inheritable set (8 bytes, little-endian) */
	SBX_OP_NNP,
	SBX_OP_SECCOMP,         /* s1 = compiled BPF (sbx_seccomp_compile) in the arena, a = its length in bytes */
	SBX_OP_CLOSE_FDS,
	SBX_OP_EXEC,            /* s1 argv list, s2 env list, s3 cwd; a = 1 (init: true): exec sandbox-init as PID 1,
				 * from s4, the host path of the static sbx-init, copied into a sealed memfd before
				 * pivot_root (nothing inside then shows a host path), which runs the command */
	SBX_OP_CONSOLE,         /* open a pty in the sandbox's devpts, keep the slave as the terminal,
				 * and send the master to the parent over the sync socket */
	SBX_OP_NET_IFUP,        /* s1 interface; a = IPv4 address, b = gateway (network order); mode = prefix */
	SBX_OP_ROOT_OVERLAY,    /* s1 = new root folder, s2 = overlayfs options (lowerdir=…,upperdir=…,workdir=…) */
	SBX_OP_FORK,            /* `sandbox exec`: fork, so that a joined pid namespace applies; the child goes
				 * on with the next op in a new session, and this process stays behind as a relay:
				 * it forwards every signal to the child and exits with the child's status.
				 * With SBX_F_FORK_PARENT (sandbox-runtime exec) there is no relay: the child is
				 * cloned as the caller's own (CLONE_PARENT), this process reports the op DONE with
				 * err = the child's host pid and exits 0, and the child reports DONE (err 0) and goes
				 * on; it does not die with the caller, so that exec --detach leaves it to the
				 * caller's subreaper (containerd's shim, conmon), as runc's exec does */
	SBX_OP_LANDLOCK,        /* a = handled fs rights, b = a read-only path's; s1 read-only paths, s2 writable ones
				 * (list); s3 a folder to try to make after, which must fail with EACCES (landlock.c);
				 * s4 the network and scope part (list): "n<handled net rights>", "s<scopes>",
				 * then "c<port>" (TCP connect allowed) and "b<port>" (TCP bind allowed) */
	SBX_OP_ROOT_PROPAGATION, /* after SBX_OP_PIVOT: a = the propagation flags of "/" (MS_SHARED, MS_UNBINDABLE…, with MS_REC) */
	SBX_OP_DEV_MAKE,        /* s1 the node's path in the root; mode = its type (S_IFCHR, S_IFBLK, S_IFIFO) and permissions;
				 * a = major | uid << 32, b = minor | gid << 32. A device node is then bound on itself and
				 * that bind remounted without nodev (nosuid, noexec): the rest of /dev stays nodev */
	SBX_OP_WORKDIR,         /* after SBX_OP_PIVOT: s1 the working directory, made with its missing parents (mode 0755,
				 * owned by the child's ids: the sandbox's root) unless it is there; what is there must be
				 * a folder (ENOTDIR), as runc makes a missing cwd */
	SBX_OP_KIND_MAX
};

#define SBX_F_FAIL      0x80000000u  /* test-only fault injection: fail this op with EPERM */
#define SBX_F_FILE      0x40000000u  /* the bind target is a file, not a folder */
#define SBX_F_PAUSE     0x20000000u  /* test-only: stop (SIGSTOP) before this op, until a SIGCONT */
#define SBX_F_WAIT_START 0x08000000u /* on SBX_OP_EXEC: b = offset + 1 of the host path of a fifo (sandbox-runtime's
                                      * start fifo). The child opens it read-write before anything else; at exec, once
                                      * "E" came, it stops dying with its parent, closes events_fd (the parent reads EOF:
                                      * the container is created, its process waits) and blocks reading one byte of the
                                      * fifo, which `start` writes; then it execs. Its parent may exit meanwhile: the
                                      * child is then the caller's subreaper's, with nothing between them (as runc's
                                      * exec.fifo). An exec failure after that is its exit status only (126, 127). */
#define SBX_F_STDIO     0x02000000u  /* on SBX_OP_EXEC: stdio[i] >= 0 becomes the child's fd i before anything else
                                      * (the library's pipes, src/api); the parent's fds are inherited by number
                                      * at the clone, and the close of the others comes after */
#define SBX_F_FORK_PARENT 0x04000000u /* on SBX_OP_FORK: see there */
#define SBX_F_STDIN     0x10000000u  /* on SBX_OP_EXEC: the command reads the caller's stdin (stdin_open, -i); without
                                      * it the child's fd 0 is the host's /dev/null from its first op on */

enum sbx_event_phase { SBX_EV_START = 1, SBX_EV_DONE = 2, SBX_EV_FAILED = 3 };

/* What the child writes to events_fd: 24 bytes. */
struct sbx_event {
	uint32_t step;
	uint32_t phase;
	int32_t err;
	uint32_t op;
	uint64_t ns;            /* CLOCK_MONOTONIC when it was written */
};
_Static_assert(sizeof(struct sbx_event) == 24, "struct sbx_event is 24 bytes: src/engine/native.ts reads it so");

struct sbx_child {
	int32_t pid;
	int32_t events_fd;      /* read end: struct sbx_event records, then EOF at exec */
	int32_t sync_fd;        /* write "G" once the child may go on */
	int32_t in_cgroup;      /* 1: the child was born in cgroup_fd's cgroup */
	uint64_t spawn_ns;      /* CLOCK_MONOTONIC at the start of sbx_spawn */
};

/* Not an argument of any libsbx function: what the CLI (src/engine/link.ts) writes first on the
 * stdin of sbx-supervise (supervise.c), followed by nops struct sbx_op and strings_len bytes of
 * strings. Here so that the CLI's mirror of it is generated with the rest. */
struct sbx_supervise_head {
	uint32_t nops;
	uint32_t strings_len;
	uint64_t clone_flags;
	/* The restart policy, which the supervisor runs (0 no, 1 on-failure, 2 always; at most
	 * max_restarts times, 0: no limit), and the program of a restart: restart_nops ops and
	 * restart_strings_len bytes of strings, after the first program. */
	uint32_t policy;
	uint32_t max_restarts;
	uint32_t restart_nops;
	uint32_t restart_strings_len;
	/* Then extra_len bytes: the list of cgroup.procs files a restart joins, then the nftables
	 * table (ip family) that holds the port maps, deleted when the command ends for good ("" none). */
	uint32_t extra_len;
	uint32_t reserved;
};

SBX_API int sbx_abi_version(void);

/* Clones the child into the namespaces in clone_flags (CLONE_NEW*). With cgroup_fd >= 0 (a cgroup v2 folder) the
 * child starts inside that cgroup (clone3 CLONE_INTO_CGROUP), and out->in_cgroup says so: no
 * migration, which on a busy kernel waits for an RCU grace period. The child waits for "G". */
SBX_API int sbx_spawn(const struct sbx_op *ops, uint32_t nops, const char *strings, uint32_t strings_len,
		      uint64_t clone_flags, int32_t cgroup_fd, struct sbx_child *out, struct sbx_error *err);

/* A restart (see the diagram above): clones the next child in the sandbox's pinned user and network
 * namespaces (userns_fd, netns_fd: fds of the first child's /proc/PID/ns/{user,net}, or -1 for a
 * namespace the sandbox does not own), after joining its cgroup through cgroup_procs (a list of
 * cgroup.procs files, NUL-separated and ending with an empty string; NULL for none). clone_flags
 * are the first child's: the user and network namespaces in them are joined, not made. The child
 * is the caller's, and waits for "G" as sbx_spawn's does. */
SBX_API int sbx_respawn(const struct sbx_op *ops, uint32_t nops, const char *strings, uint32_t strings_len,
			uint64_t clone_flags, const char *cgroup_procs, int32_t userns_fd, int32_t netns_fd,
			struct sbx_child *out, struct sbx_error *err);

/* Blocks until pid exits; *status is the raw wait status. Call it from a worker thread. */
SBX_API int sbx_wait(int32_t pid, int32_t *status, struct sbx_error *err);

/* Does not block: *done = 1 and *status the raw wait status if pid has exited (it is reaped), else
 * *done = 0. For a caller that waits on many children at once (src/api), on SIGCHLD, without a
 * worker thread held per child. */
SBX_API int sbx_try_wait(int32_t pid, int32_t *status, int32_t *done, struct sbx_error *err);

/* A close-on-exec pipe for a sandbox's stdio (src/api): the child's end goes into SBX_OP_EXEC's
 * stdio[] (SBX_F_STDIO), the caller keeps the other. Node has no pipe(2) of its own. */
SBX_API int sbx_pipe(int32_t *read_fd, int32_t *write_fd, struct sbx_error *err);

/* In the CLI process, on koffi's worker thread: reads the child's events (fd, struct sbx_event
 * records) into buf until the child waits on the CLI (a record of SBX_OP_EXEC's start, which the
 * CLI answers with "E"), until it writes no more (EOF: *state 1), until cancel_fd can be read (the
 * CLI no longer wants them: *state 2), or until buf is full; *len bytes were read (*state 0: more
 * may come). One call per wait of the CLI's, not one per step: the CLI reads the events pipe with
 * no event-loop handle of Node's own (node:net, whose load costs a start ~4 ms) and few crossings
 * from the worker thread to its own. */
SBX_API int sbx_read_events(int32_t fd, int32_t cancel_fd, void *buf, uint32_t cap, uint32_t *len, int32_t *state, struct sbx_error *err);

/* Sets a terminal's window size (TIOCSWINSZ). */
SBX_API int sbx_set_winsize(int32_t fd, uint16_t rows, uint16_t cols, struct sbx_error *err);

/* sandbox-runtime's --console-socket: connects to the unix socket at path (SOCK_STREAM) and sends fd
 * (a terminal's master) over it with SCM_RIGHTS, with name (the terminal's path) as the message, as
 * runc does; the caller keeps its own fd. */
SBX_API int sbx_send_fd(const char *path, int32_t fd, const char *name, struct sbx_error *err);

/* Receives the terminal master the child sends (SCM_RIGHTS) after SBX_OP_CONSOLE. */
SBX_API int sbx_recv_fd(int32_t sock, int32_t *fd, struct sbx_error *err);

/* The user-space port forwarder (forward.c): listens on listen_ip:listen_port (0: any free port,
 * returned in *bound_port) and relays to target_ip:target_port, from inside netns_fd's network
 * namespace when netns_fd >= 0 (the forwarder takes ownership of it). On its own thread. */
struct sbx_forwarder;
SBX_API int sbx_forward_start(int32_t udp, const char *listen_ip, int32_t listen_port, const char *target_ip, int32_t target_port,
			      int32_t netns_fd, struct sbx_forwarder **out, int32_t *bound_port, struct sbx_error *err);
SBX_API int sbx_forward_stop(struct sbx_forwarder *f);

/* In the CLI process, before the clone: compiles a seccomp filter, given as the text program of
 * src/spec/seccomp.ts (filterProgram), into classic BPF with libseccomp. Writes at most cap bytes
 * to out and their number to *len. */
SBX_API int sbx_seccomp_compile(const char *program, uint8_t *out, uint32_t cap, uint32_t *len, struct sbx_error *err);

/* libseccomp's version as major * 10000 + minor * 100 + micro: the CLI caches compiled filters
 * under it. */
SBX_API int sbx_seccomp_version(void);

/* In the CLI process: the kernel's Landlock ABI version, 0 where it has none (or it is off). */
SBX_API int sbx_landlock_abi(void);

/* For the image unpacker, in the CLI process (root), on paths it has checked component by
 * component: an overlayfs whiteout (a 0/0 character device), and an extended attribute set on a
 * path without following a final symlink (file capabilities, overlay's opaque mark). */
SBX_API int sbx_whiteout(const char *path, struct sbx_error *err);

/* For sandbox-runtime's create, in the CLI process (root): the fifo at path (mode & 0777) on which
 * the created process waits for start (SBX_F_WAIT_START). Node has no mkfifo of its own. */
SBX_API int sbx_mkfifo(const char *path, uint32_t mode, struct sbx_error *err);
SBX_API int sbx_lsetxattr(const char *path, const char *name, const void *value, uint32_t len, struct sbx_error *err);

/* For the CLI process (bin/sandbox.js), as the invoking user: Node reads NODE_EXTRA_CA_CERTS only
 * as it starts, and bin/sandbox (native/src/cli.c) starts it without that variable, whose parsing
 * costs more than Node's own start; when the CLI must reach a registry over TLS after all, it
 * replaces itself (same pid, stdio, terminal and parent) with the same command started with the
 * variable. argv and envp end with NULL. Returns only on failure (-1, err set). */
SBX_API int sbx_execve(const char *path, const char *const *argv, const char *const *envp, struct sbx_error *err);

/* The attestation's facts (src/engine/attest-view.ts, readView), gathered and parsed in one call
 * so that the CLI reads a dozen /proc files and a few dozen links and inodes with system calls
 * only, and receives numbers, not texts to parse. Read by the caller (root on the host, or the
 * user of a rootless sandbox) from /proc/PID while the child waits to exec; nothing is changed.
 * want: the facts to read, a bit (1 << kind) for each kind, so that a plan without network or
 * rlimit steps does not pay for reading them. out receives records, one per fact read: uint32 kind
 * (enum sbx_fact_kind), int32 result (0, or -errno when the fact could not be read), uint32
 * length, then length bytes (little-endian, as this host). paths: a NUL-separated list ending
 * with an empty string, each a path inside the sandbox, lstat'ed through /proc/PID/root (one
 * SBX_FACT_PATH record each, in order). ERANGE when out is too small: *len then says how much
 * was needed so far (call again with more). */
enum sbx_fact_kind {
	SBX_FACT_STATUS = 1,    /* struct sbx_fact_status, then ngroups uint32 (Groups) */
	SBX_FACT_LIMITS,        /* per row of /proc/PID/limits, in RLIMIT_* order: int64 soft, int64 hard (-1: unlimited) */
	SBX_FACT_UID_MAP,       /* per line of uid_map: uint32 inside, outside, count */
	SBX_FACT_GID_MAP,
	SBX_FACT_MOUNTINFO,     /* per mount, in order: struct sbx_fact_mount, then its point (unescaped) and its type */
	SBX_FACT_CGROUP,        /* /proc/PID/cgroup, as it reads */
	SBX_FACT_NET_DEV,       /* each interface's name, NUL-terminated */
	SBX_FACT_NET_ROUTE,     /* struct sbx_fact_route per IPv4 route */
	SBX_FACT_FIB_TRIE,      /* the namespace's local IPv4 addresses (net/fib_trie's "/32 host LOCAL" leaves), 4 bytes each, once each */
	SBX_FACT_NS,            /* "NAME LINK\n" for each file of /proc/PID/ns */
	SBX_FACT_FDS,           /* int32 per open fd above 2 that does not close on exec (no O_CLOEXEC in its fdinfo) */
	SBX_FACT_ROOT,          /* result 1: the child's root is the caller's (same device and inode), 0: another */
	SBX_FACT_PATH,          /* one byte f(ile) d(ir) o(ther) l(ink) c(har) b(lock), then the link's target or
				 * the device's decimal rdev; result -ENOENT (or another -errno) when lstat failed */
};

/* The fields of /proc/PID/status the attestation compares; a field the kernel does not show is -1
 * (a capability set: all bits). */
struct sbx_fact_status {
	int64_t uid, gid;               /* the real ids (the first of Uid and Gid) */
	int64_t umask, no_new_privs, seccomp, seccomp_filters;
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	uint32_t ngroups, reserved;
};

/* A mount of mountinfo: its per-mount options and propagation (enum sbx_fact_mount_flag), its
 * peer group (shared:N) and master (master:N), 0 when none; point_len bytes of its mount point,
 * with mountinfo's octal escapes undone, then fstype_len bytes of its file system type follow. */
struct sbx_fact_mount {
	uint32_t flags, shared, master;
	uint16_t point_len, fstype_len;
};
enum sbx_fact_mount_flag {
	SBX_MNT_RO = 1, SBX_MNT_NOSUID = 2, SBX_MNT_NODEV = 4, SBX_MNT_NOEXEC = 8,
	SBX_MNT_NOATIME = 16, SBX_MNT_NODIRATIME = 32, SBX_MNT_RELATIME = 64, SBX_MNT_UNBINDABLE = 128,
};

/* An IPv4 route of net/route: its interface (NUL-terminated), destination and gateway, each as
 * its 4 bytes in the address's order (a.b.c.d is a, b, c, d). */
struct sbx_fact_route {
	char iface[16];
	uint8_t destination[4], gateway[4];
};
SBX_API int sbx_proc_facts(int32_t pid, uint32_t want, const char *paths, uint8_t *out, uint32_t cap, uint32_t *len, struct sbx_error *err);

/* The egress attestation's probes (netprobe.c, docs/egress-design.md 6): the kernel's answers seen
 * from inside a sandbox's network namespace, never the engine's own report. */
enum sbx_probe_kind {
	SBX_PROBE_TCP = 1,      /* a TCP connect to addr:port (family 4 or 6) */
	SBX_PROBE_DNS_UDP,      /* a DNS query for name (qtype, qclass) over UDP to addr:port */
	SBX_PROBE_DNS_TCP,      /* the same over TCP, with its 2-byte length */
	SBX_PROBE_INET6_ADDRS   /* the namespace's IPv6 addresses: how many, and the first that is not ::1 */
};

enum sbx_probe_outcome {
	SBX_OUTCOME_CONNECTED = 1,  /* TCP: the handshake completed */
	SBX_OUTCOME_ANSWERED,       /* DNS: a response with the query's id came (rcode, answers, text) */
	SBX_OUTCOME_COUNTED,        /* INET6_ADDRS: answers = the count, text = the first non-loopback address */
	SBX_OUTCOME_REFUSED,        /* ECONNREFUSED: a reset, or an ICMP port unreachable on the connected UDP socket */
	SBX_OUTCOME_UNREACHABLE,    /* ENETUNREACH, EHOSTUNREACH, ENETDOWN, EHOSTDOWN, EADDRNOTAVAIL, EPERM or EACCES (a
				     * local nftables drop): nothing left the namespace that way */
	SBX_OUTCOME_TIMEOUT,        /* nothing within timeout_us */
	SBX_OUTCOME_ERROR           /* any other errno, or a malformed DNS response (EBADMSG) */
};

/* One probe: 292 bytes. addr holds 4 bytes (family 4) or 16 (family 6), in network order. */
struct sbx_probe {
	uint32_t kind;          /* enum sbx_probe_kind */
	uint32_t family;        /* 4 or 6 */
	uint8_t addr[16];
	uint16_t port;
	uint16_t qtype;         /* DNS: 1 A, 16 TXT, 28 AAAA... */
	uint16_t qclass;        /* DNS: 1 IN, 3 CH */
	uint16_t reserved;
	uint32_t timeout_us;    /* the whole probe's budget (connect, send and answer) */
	char name[256];         /* DNS: the query name, dotted */
};

/* A probe's result: 280 bytes. */
struct sbx_probe_result {
	uint32_t outcome;       /* enum sbx_probe_outcome */
	int32_t err;            /* the errno behind the outcome, or 0 */
	uint64_t elapsed_us;    /* CLOCK_MONOTONIC, from the socket's creation to the outcome */
	int32_t rcode;          /* DNS: the response's rcode; else -1 */
	uint32_t answers;       /* DNS: the answer count; INET6_ADDRS: the address count */
	char text[256];         /* DNS: the first A (dotted) or TXT string of the answers; INET6_ADDRS: an address (32 hex) */
};

/* Runs n probes (at most 64), one after the other, from inside the network namespace of pid (and
 * first its user namespace, when join_userns: a rootless sandbox's). A helper forked from the
 * caller joins the namespaces, so the caller's thread stays where it is; call it from a worker
 * thread (it takes up to the sum of the timeouts). Returns 0 when every probe has its result in
 * results[i] (a refused or timed-out probe is a result, not an error); -1 when the namespaces
 * cannot be joined (err names which) or the helper ended early. */
SBX_API int sbx_netprobe(int32_t pid, int32_t join_userns, const struct sbx_probe *probes, uint32_t n,
			 struct sbx_probe_result *results, struct sbx_error *err);

#endif
