/* The cloned child's main line: waits for the parent's "G", then runs the ops in order and reports
 * each one on events_fd, dispatching each to the file of its family (ns.c, net.c, sysctl.c,
 * mount.c, ids.c, security.c, landlock.c, console.c, exec.c). Runs as root in its new namespaces (or as the
 * mapped root of its own user namespace); single-threaded; raw system calls only. It never
 * returns: it execs or _exits. */
#include "internal.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int run_op(struct child_ctx *c, const struct sbx_op *op)
{
	switch (op->kind) {
	case SBX_OP_NOTE: return 0;
	case SBX_OP_JOIN_NS: return op_join_ns(c, op);
	case SBX_OP_UNSHARE: return op_unshare(op->a);
	case SBX_OP_LOOPBACK_UP: return op_loopback_up();
	case SBX_OP_NET_IFUP: return op_net_ifup(ctx_str(c, op->s1), (uint32_t)op->a, op->mode, (uint32_t)op->b);
	case SBX_OP_SYSCTL: return op_sysctl(c, ctx_str(c, op->s1), ctx_str(c, op->s2));
	case SBX_OP_PIVOT: return op_pivot(c);
	case SBX_OP_HOSTNAME: { const char *h = ctx_str(c, op->s1); return sethostname(h, sbx_strlen(h)); }
	case SBX_OP_GROUPS: return op_groups(ctx_str(c, op->s1));
	case SBX_OP_IDS: return op_ids((uid_t)op->a, (gid_t)op->b);
	case SBX_OP_UMASK: umask((mode_t)op->mode); return 0;
	case SBX_OP_RLIMIT: return op_rlimit(op);
	case SBX_OP_CAPS:
		if (op->mode != 1) return op_caps((uint64_t)op->a, (uint64_t)op->b);
		if (op->s1 == 0 || (uint64_t)op->s1 - 1 + 8 > c->strings_len) { errno = EINVAL; return -1; }
		{
			uint64_t inh;
			memcpy(&inh, ctx_str(c, op->s1), sizeof inh);
			return op_caps_sets((uint64_t)op->a, inh, (uint64_t)op->b);
		}
	case SBX_OP_NNP: return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	case SBX_OP_SECCOMP:
		if (op->s1 == 0 || op->a <= 0 || (uint64_t)op->s1 - 1 + (uint64_t)op->a > c->strings_len) { errno = EINVAL; return -1; }
		return op_seccomp(ctx_str(c, op->s1), (uint32_t)op->a);
	case SBX_OP_LANDLOCK: return op_landlock(c, op);
	case SBX_OP_CLOSE_FDS: {
		/* CLOEXEC rather than close: the events pipe must stay open until execve. A seccomp
		 * filter loaded just before (an OCI bundle's, whose list predates close_range) may
		 * refuse close_range: then each descriptor up to the open-file limit, by fcntl. */
		if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) == 0) return 0;
		if (errno != EPERM && errno != ENOSYS) return -1;
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return -1;
		for (unsigned long fd = 3; fd < rl.rlim_cur && fd < (1ul << 20); fd++) {
			int f = fcntl((int)fd, F_GETFD);
			if (f >= 0 && !(f & FD_CLOEXEC) && fcntl((int)fd, F_SETFD, f | FD_CLOEXEC) < 0) return -1;
		}
		return 0;
	}
	default: return op_mount(c, op);
	}
}

void child_main(struct child_ctx *c, int sync_fd, uint64_t clone_flags)
{
	sigset_t none;
	struct sigaction dfl;
	char go = 0;
	uint32_t i;
	int s;

	/* The library's pipes (SBX_F_STDIO), inherited at the clone under their numbers in the caller,
	 * become this child's stdio first, before the close of everything else below. dup2 leaves the
	 * copies without close-on-exec; the caller's fds above 2 are always its own, never 0-2. */
	for (i = 0; i < c->nops; i++) {
		if (c->ops[i].kind != SBX_OP_EXEC || !(c->ops[i].flags & SBX_F_STDIO)) continue;
		for (s = 0; s < 3; s++) {
			if (c->ops[i].stdio[s] < 0) continue;
			if (c->ops[i].stdio[s] < 3 || dup2(c->ops[i].stdio[s], s) < 0) { report(c, &c->ops[i], SBX_EV_START, 0); report(c, &c->ops[i], SBX_EV_FAILED, c->ops[i].stdio[s] < 3 ? EBADF : errno); _exit(125); }
		}
	}
	/* Everything the CLI had open (its sockets, held ports, epoll, koffi's files) is closed here,
	 * before the sandbox exists: only stdio and the two protocol fds stay. */
	{
		int lo = c->events_fd < sync_fd ? c->events_fd : sync_fd, hi = c->events_fd < sync_fd ? sync_fd : c->events_fd;
		if (lo > 3) syscall(SYS_close_range, 3u, (unsigned)lo - 1, 0u);
		if (hi > lo + 1) syscall(SYS_close_range, (unsigned)lo + 1, (unsigned)hi - 1, 0u);
		syscall(SYS_close_range, (unsigned)hi + 1, ~0u, 0u);
	}
	/* Node's signal handlers and mask mean nothing here: start from the defaults. */
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (s = 1; s < 65; s++) if (s != SIGKILL && s != SIGSTOP) sigaction(s, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* If the sandbox command dies with its CLI, nothing outlives the run. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	setsid();

	/* Wait for the parent: cgroup joined, id maps written, host side of the network ready. */
	while (read(sync_fd, &go, 1) < 0 && errno == EINTR) {}
	if (go != 'G') _exit(125);
	/* Non-dumpable from here until execve (which makes an ordinary command dumpable again): a
	 * process of the sandbox may see this one once it has joined the sandbox's pid namespace
	 * (`sandbox exec`), and must not open its /proc/PID/exe, which is the host's node binary,
	 * nor its mem, fds or cwd, which are the host's (CVE-2019-5736, CVE-2024-21626). Its /proc
	 * files then belong to the host's root, and ptrace needs CAP_SYS_PTRACE over the host. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) _exit(125);
	/* Every namespace to join is opened now, with the credentials the child was cloned with: once
	 * it is in another user namespace, /proc/PID/ns of a process it does not own may be refused
	 * (EACCES: the target is not dumpable, and CAP_SYS_PTRACE is held only in the new namespace). */
	{
		uint32_t n = 0;
		for (i = 0; i < c->nops; i++) {
			if (c->ops[i].kind != SBX_OP_JOIN_NS) continue;
			if (n >= sizeof c->ns_fds / sizeof c->ns_fds[0]) { report(c, &c->ops[i], SBX_EV_FAILED, E2BIG); _exit(125); }
			c->ns_fds[n] = open(ctx_str(c, c->ops[i].s1), O_RDONLY | O_CLOEXEC);
			if (c->ns_fds[n] < 0) { report(c, &c->ops[i], SBX_EV_START, 0); report(c, &c->ops[i], SBX_EV_FAILED, errno); _exit(125); }
			n++;
		}
	}
	/* init: true: sbx-init is copied from the host now, with the same credentials, before the
	 * host's files go out of reach (exec.c). */
	c->init_fd = -1;
	for (i = 0; i < c->nops; i++) {
		if (c->ops[i].kind != SBX_OP_EXEC || !c->ops[i].a) continue;
		c->init_fd = init_prepare(c, &c->ops[i]);
		if (c->init_fd < 0) { report(c, &c->ops[i], SBX_EV_START, 0); report(c, &c->ops[i], SBX_EV_FAILED, errno); _exit(125); }
	}
	/* sandbox-runtime's start fifo is opened now, while the host's files are in reach: read-write,
	 * so that the open does not wait for a writer (exec.c waits on it). */
	c->start_fd = -1;
	for (i = 0; i < c->nops; i++) {
		if (c->ops[i].kind != SBX_OP_EXEC || !(c->ops[i].flags & SBX_F_WAIT_START)) continue;
		const char *fifo = ctx_str(c, (uint32_t)c->ops[i].b);
		c->start_fd = fifo ? open(fifo, O_RDWR | O_CLOEXEC) : -1;
		if (c->start_fd < 0) { report(c, &c->ops[i], SBX_EV_START, 0); report(c, &c->ops[i], SBX_EV_FAILED, fifo ? errno : EINVAL); _exit(125); }
	}
	/* In a new user namespace the child still holds the credentials it was cloned with (the host's
	 * ids, unmapped there); now that its maps exist it becomes the namespace's root. */
	if (clone_flags & CLONE_NEWUSER) {
		struct sbx_op become = { .step = c->nops ? c->ops[0].step : 0 };
		if (clear_groups() < 0 || syscall(SYS_setresgid, 0, 0, 0) < 0 || syscall(SYS_setresuid, 0, 0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) { report(c, &become, SBX_EV_FAILED, errno); _exit(125); }
	}
	/* Stdin reaches the command only when the plan says so (stdin_open, as docker run -i): otherwise
	 * fd 0 becomes the host's /dev/null now, while the mount namespace is still the host's (or its
	 * fresh copy) and before any is joined, so that nothing a running sandbox put at its own
	 * /dev/null is opened for it. A terminal (the
	 * console op) replaces it later either way. */
	for (i = 0; i < c->nops; i++) {
		if (c->ops[i].kind != SBX_OP_EXEC || (c->ops[i].flags & SBX_F_STDIN)) continue;
		int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (null_fd < 0 || (null_fd != 0 && dup2(null_fd, 0) < 0)) { report(c, &c->ops[i], SBX_EV_START, 0); report(c, &c->ops[i], SBX_EV_FAILED, errno); _exit(125); }
		if (null_fd != 0) close(null_fd);
	}
	/* Node's stdio may be close-on-exec and non-blocking; the command needs them open and
	 * blocking, as libuv's own spawn leaves them. */
	for (s = 0; s < 3; s++) {
		int fl = fcntl(s, F_GETFL);
		if (fl >= 0 && (fl & O_NONBLOCK)) fcntl(s, F_SETFL, fl & ~O_NONBLOCK);
		fcntl(s, F_SETFD, 0);
	}

	for (i = 0; i < c->nops; i++) {
		const struct sbx_op *op = &c->ops[i];
		/* Rootless (in a user namespace, or in reduced mode with none), the CLI that attests this child before exec is an unprivileged process of the
		 * same host uid, which may read /proc/PID/{root,mountinfo,fd,ns} only of a dumpable one.
		 * Made dumpable as the exec step starts, when setup is over: everything this process holds
		 * then (the host's node binary, which the caller cannot write; its fds and folders) is the
		 * caller's already, and the sandbox's root is the caller on the host. */
		if (op->kind == SBX_OP_EXEC && c->rootless && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0) { report(c, op, SBX_EV_FAILED, errno); _exit(125); }
		report(c, op, SBX_EV_START, 0);
		if (op->flags & SBX_F_FAIL) { report(c, op, SBX_EV_FAILED, EPERM); _exit(125); }
		if (op->flags & SBX_F_PAUSE) kill(getpid(), SIGSTOP);
		if (op->kind == SBX_OP_EXEC) op_exec(c, op, sync_fd);
		if ((op->kind == SBX_OP_CONSOLE ? op_console(c, sync_fd) : op->kind == SBX_OP_FORK ? op_fork(c, op, sync_fd) : run_op(c, op)) < 0) { report(c, op, SBX_EV_FAILED, errno ? errno : EIO); _exit(125); }
		report(c, op, SBX_EV_DONE, 0);
	}
	_exit(125);
}
