/* The cloned child: waits for the parent's "G", then runs the ops in order and reports each
 * one on events_fd. Runs as root in its new namespaces (or as the mapped root of its own user
 * namespace); single-threaded; raw system calls only. It never returns: it execs or _exits. */
#include "internal.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <linux/magic.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 4096
#define MAX_GROUPS 256

/* The child's copy of these is private: the clone does not share memory with Node. */
static char *argv_buf[MAX_ARGS + 1];
static char *envp_buf[MAX_ARGS + 1];
static gid_t groups_buf[MAX_GROUPS];
static char path_buf[4096];

size_t sbx_strlen(const char *s) { size_t n = 0; while (s && s[n]) n++; return n; }
void sbx_strlcpy(char *dst, const char *src, size_t n) { size_t i = 0; for (; i + 1 < n && src[i]; i++) dst[i] = src[i]; if (n) dst[i] = 0; }
int sbx_streq(const char *a, const char *b) { while (*a && *a == *b) { a++; b++; } return *a == *b; }

const char *ctx_str(const struct child_ctx *c, uint32_t ref)
{
	if (ref == 0 || ref > c->strings_len) return NULL;
	return c->strings + ref - 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void report(struct child_ctx *c, const struct sbx_op *op, uint32_t phase, int err)
{
	struct sbx_event ev = { .step = op->step, .phase = phase, .err = err, .op = op->kind, .ns = now_ns() };
	ssize_t r;
	do r = write(c->events_fd, &ev, sizeof ev); while (r < 0 && errno == EINTR);
}

/* Splits a NUL-separated list ending with an empty string into a pointer array. */
static int split_list(const char *list, char **out, int max)
{
	int n = 0;
	while (list && *list && n < max) { out[n++] = (char *)list; list += sbx_strlen(list) + 1; }
	out[n] = NULL;
	return n;
}

static int parse_uint(const char *s, uint64_t *v)
{
	uint64_t x = 0;
	if (!*s) return -1;
	for (; *s; s++) { if (*s < '0' || *s > '9') return -1; x = x * 10 + (uint64_t)(*s - '0'); }
	*v = x;
	return 0;
}

static int op_loopback_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	if (s < 0) return -1;
	memset(&ifr, 0, sizeof ifr);
	sbx_strlcpy(ifr.ifr_name, "lo", IFNAMSIZ);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) { int e = errno; close(s); errno = e; return -1; }
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) { int e = errno; close(s); errno = e; return -1; }
	close(s);
	return 0;
}

/* The sandbox's end of its veth pair, in its own network namespace: address, up, default route.
 * Plain ioctls: no netlink code is needed for one address and one route. */
static int op_net_ifup(const char *name, uint32_t addr, uint32_t prefix, uint32_t gateway)
{
	struct ifreq ifr;
	struct rtentry rt;
	struct sockaddr_in *sin;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), e;
	if (s < 0) return -1;
	memset(&ifr, 0, sizeof ifr);
	sbx_strlcpy(ifr.ifr_name, name, IFNAMSIZ);
	sin = (struct sockaddr_in *)&ifr.ifr_addr;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = addr;
	if (ioctl(s, SIOCSIFADDR, &ifr) < 0) goto fail;
	sin->sin_addr.s_addr = prefix ? htonl(~0u << (32 - prefix)) : 0;
	if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0) goto fail;
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) goto fail;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) goto fail;
	memset(&rt, 0, sizeof rt);
	((struct sockaddr_in *)&rt.rt_dst)->sin_family = AF_INET;
	((struct sockaddr_in *)&rt.rt_genmask)->sin_family = AF_INET;
	((struct sockaddr_in *)&rt.rt_gateway)->sin_family = AF_INET;
	((struct sockaddr_in *)&rt.rt_gateway)->sin_addr.s_addr = gateway;
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	rt.rt_dev = ifr.ifr_name;
	if (ioctl(s, SIOCADDRT, &rt) < 0) goto fail;
	close(s);
	return 0;
fail:
	e = errno;
	close(s);
	errno = e;
	return -1;
}

static int op_sysctl(struct child_ctx *c, const char *name, const char *value)
{
	/* Before pivot_root the sandbox's /proc is under the root folder; its net and ipc entries
	 * belong to the namespaces of the process that opens them: this one. */
	char rel[512] = "proc/sys/";
	size_t n = sbx_strlen(rel), i;
	for (i = 0; name[i] && n + 1 < sizeof rel; i++) rel[n++] = name[i] == '.' ? '/' : name[i];
	rel[n] = 0;
	int fd = openat(c->root_fd, rel, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) return -1;
	/* Only ever a file of the sandbox's own /proc (mounted by the proc step): never a file some
	 * path in the root led elsewhere (CVE-2025-52881's lesson). */
	{
		struct statfs sf;
		if (fstatfs(fd, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC) { close(fd); errno = EXDEV; return -1; }
	}
	ssize_t w = write(fd, value, sbx_strlen(value));
	int e = errno;
	close(fd);
	if (w < 0) { errno = e; return -1; }
	return 0;
}

static int op_pivot(struct child_ctx *c)
{
	/* pivot_root(".", ".") stacks the old root under the new one; detaching it leaves no path
	 * back to the host's file system. */
	if (fchdir(c->root_fd) < 0) return -1;
	if (syscall(SYS_pivot_root, ".", ".") < 0) return -1;
	if (umount2(".", MNT_DETACH) < 0) return -1;
	if (chdir("/") < 0) return -1;
	close(c->root_fd);
	c->root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	c->pivoted = 1;
	return c->root_fd < 0 ? -1 : 0;
}

static int op_groups(const char *list)
{
	char *items[MAX_GROUPS + 1];
	int n = split_list(list, items, MAX_GROUPS), i;
	for (i = 0; i < n; i++) {
		uint64_t g;
		if (parse_uint(items[i], &g) < 0) { errno = EINVAL; return -1; }
		groups_buf[i] = (gid_t)g;
	}
	return (int)syscall(SYS_setgroups, n, groups_buf);
}

static int op_ids(uid_t uid, gid_t gid)
{
	/* Keep the permitted set across the uid change; the caps op then sets exactly the kept ones. */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return -1;
	/* Raw system calls: glibc's wrappers would signal every thread it believes this process has
	 * (Node's, copied at the clone) under a lock another thread may have held. */
	if (syscall(SYS_setresgid, gid, gid, gid) < 0) return -1;
	if (syscall(SYS_setresuid, uid, uid, uid) < 0) return -1;
	/* A change of credentials clears the parent-death signal: set it again, so that the sandbox
	 * still dies with its CLI. */
	return prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
}

static int op_rlimit(const struct sbx_op *op)
{
	struct rlimit r = { .rlim_cur = op->a < 0 ? RLIM_INFINITY : (rlim_t)op->a, .rlim_max = op->b < 0 ? RLIM_INFINITY : (rlim_t)op->b };
	return (int)syscall(SYS_prlimit64, 0, op->mode, &r, NULL);
}

/* Finds PATH in the command's own environment, as execvp would, without allocating. */
static const char *env_path(char **envp)
{
	for (; *envp; envp++) if (envp[0][0] == 'P' && envp[0][1] == 'A' && envp[0][2] == 'T' && envp[0][3] == 'H' && envp[0][4] == '=') return *envp + 5;
	return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

/* Returns only on failure, with errno set: ENOENT (127) or another reason (126). */
static void exec_command(char **argv, char **envp)
{
	const char *file = argv[0], *p;
	int saw_eacces = 0;
	if (!file || !*file) { errno = ENOENT; return; }
	for (p = file; *p; p++) if (*p == '/') { execve(file, argv, envp); return; }
	p = env_path(envp);
	while (*p) {
		const char *end = p;
		size_t dl, fl = sbx_strlen(file);
		while (*end && *end != ':') end++;
		dl = (size_t)(end - p);
		if (dl + fl + 2 < sizeof path_buf) {
			memcpy(path_buf, dl ? p : ".", dl ? dl : 1);
			if (!dl) dl = 1;
			path_buf[dl] = '/';
			memcpy(path_buf + dl + 1, file, fl + 1);
			execve(path_buf, argv, envp);
			if (errno == EACCES) saw_eacces = 1;
			else if (errno != ENOENT && errno != ENOTDIR) return;
		}
		p = *end ? end + 1 : end;
	}
	errno = saw_eacces ? EACCES : ENOENT;
}

/* Waits for pid with every signal blocked and taken synchronously: each one but SIGCHLD is passed
 * on to pid (and *stopped is set unless it is SIGWINCH), other children are reaped as they end.
 * Returns pid's exit code, or 128 + the signal that ended it. */
static int relay_wait(pid_t pid, const sigset_t *all, int *stopped)
{
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(all, &si);
		if (sig < 0) continue;
		if (sig == SIGCHLD) {
			int status;
			pid_t r;
			while ((r = waitpid(-1, &status, WNOHANG)) > 0) {
				if (r != pid) continue;
				return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			}
		} else {
			if (sig != SIGWINCH) *stopped = 1;
			kill(pid, sig);
		}
	}
}

static void relay_until_exit(pid_t pid, const sigset_t *all) __attribute__((noreturn));
static void relay_until_exit(pid_t pid, const sigset_t *all)
{
	int stopped = 0;
	_exit(relay_wait(pid, all, &stopped));
}

/* Decimal of n into buf (at least 12 bytes), without stdio; returns the length. */
static size_t utoa(char *buf, uint64_t n)
{
	char tmp[24];
	size_t len = 0, i;
	do { tmp[len++] = (char)('0' + n % 10); n /= 10; } while (n);
	for (i = 0; i < len; i++) buf[i] = tmp[len - 1 - i];
	return len;
}

/* One line on the sandbox's stderr (the log of a detached one) when the reaper restarts the command. */
static void say_restart(int code, uint32_t n, int64_t max, uint64_t delay_ms)
{
	char line[160];
	size_t l = 0;
#define PUT(s) do { const char *p_ = (s); while (*p_ && l < sizeof line - 1) line[l++] = *p_++; } while (0)
#define NUM(v) do { char b_[24]; size_t k_ = utoa(b_, (v)); b_[k_] = 0; PUT(b_); } while (0)
	PUT("sandbox: the command exited with code "); NUM((uint64_t)code);
	PUT("; restart "); NUM(n);
	if (max > 0) { PUT(" of "); NUM((uint64_t)max); }
	PUT(" in "); NUM(delay_ms); PUT(" ms\n");
#undef PUT
#undef NUM
	ssize_t r = write(2, line, l);
	(void)r;
}

/* A raw clone, not glibc's fork(): fork takes libc's internal locks, and another Node thread may
 * have held one at the moment this process was cloned; it would never be released here. Signals
 * stay blocked in the parent (restored in the child), so that none is lost before the relay. */
static pid_t raw_fork(sigset_t *all, sigset_t *old)
{
	sigfillset(all);
	sigprocmask(SIG_SETMASK, all, old);
	pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, 0);
	if (pid == 0) sigprocmask(SIG_SETMASK, old, NULL);
	else if (pid < 0) { int e = errno; sigprocmask(SIG_SETMASK, old, NULL); errno = e; }
	return pid;
}

/* init: true, or a restart policy. PID 1 stays a tiny reaper: it forwards every signal to the
 * command, reaps orphans, and when the command ends either exits with its status or, as the
 * policy says (op->mode 1: on a non-zero code, 2: always; op->b: at most that many times, 0: no
 * limit), runs it again in the same namespaces after a delay that doubles from 100 ms to 10 s
 * (back to 100 ms after a run of 10 s or more). A stop signal (any forwarded one but SIGWINCH)
 * ends the policy: the command is not run again. */
static void run_with_reaper(char **argv, char **envp, struct child_ctx *c, const struct sbx_op *op)
{
	sigset_t all, old;
	uint32_t restarts = 0;
	uint64_t delay_ms = 100;
	int stopped = 0;
	for (;;) {
		uint64_t t0 = now_ns();
		pid_t pid = raw_fork(&all, &old);
		if (pid < 0) return;
		if (pid == 0) {
			setsid();
			if (isatty(0)) ioctl(0, TIOCSCTTY, 0);
			exec_command(argv, envp);
			if (c->events_fd >= 0) report(c, op, SBX_EV_FAILED, errno);
			_exit(errno == ENOENT ? 127 : 126);
		}
		/* The reaper itself must not keep the events pipe open, or the parent never sees EOF. Its
		 * name says what it is in ps and `sandbox top` (it runs the CLI's or supervisor's image). */
		if (c->events_fd >= 0) { close(c->events_fd); c->events_fd = -1; }
		prctl(PR_SET_NAME, "sbx-init", 0, 0, 0);
		int code = relay_wait(pid, &all, &stopped);
		if (stopped || op->mode == 0 || (op->mode == 1 && code == 0) || (op->b > 0 && restarts >= (uint64_t)op->b)) _exit(code);
		if (now_ns() - t0 >= 10000000000ull) delay_ms = 100;
		restarts++;
		say_restart(code, restarts, op->b, delay_ms);
		/* The delay, still reaping orphans and still listening for a stop. */
		uint64_t until = now_ns() + delay_ms * 1000000ull;
		for (uint64_t t = now_ns(); t < until && !stopped; t = now_ns()) {
			struct timespec ts = { .tv_sec = (time_t)((until - t) / 1000000000ull), .tv_nsec = (long)((until - t) % 1000000000ull) };
			siginfo_t si;
			int sig = sigtimedwait(&all, &si, &ts);
			if (sig == SIGCHLD) { int st; while (waitpid(-1, &st, WNOHANG) > 0) {} }
			else if (sig > 0 && sig != SIGWINCH) stopped = 1;
		}
		if (stopped) _exit(code);
		delay_ms = delay_ms * 2 > 10000 ? 10000 : delay_ms * 2;
	}
}

/* `sandbox exec`, after setns(CLONE_NEWPID): only children enter the joined pid namespace. The
 * parent (still in the CLI's pid namespace, and the CLI's child) relays; the child goes on with
 * the program, dies with the relay, and leads its own session so that it can own a terminal. */
static int op_fork(struct child_ctx *c, int sync_fd)
{
	sigset_t all, old;
	pid_t relay = getpid();
	pid_t pid = raw_fork(&all, &old);
	if (pid < 0) return -1;
	if (pid == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) return -1;
		/* The relay stands outside a joined pid namespace, where the parent reads as 0; any other
		 * pid means it died before the death signal was armed. */
		pid_t pp = getppid();
		if (pp != 0 && pp != relay) { errno = ESRCH; return -1; }
		return setsid() < 0 ? -1 : 0;
	}
	close(c->events_fd);
	close(sync_fd);
	prctl(PR_SET_NAME, "sbx-exec-relay", 0, 0, 0);
	relay_until_exit(pid, &all);
}

/* tty: true. The terminal is made in the sandbox's own devpts (so `tty` and ttyname() name it
 * there); the child keeps the slave as its controlling terminal and stdio, and the parent gets
 * the master to relay the user's terminal. */
static int op_console(struct child_ctx *c, int sync_fd)
{
	int unlock = 0, master, slave;
	/* Before pivot_root, relative to the new root; in `sandbox exec`, which joined the sandbox's
	 * mount namespace and so stands at its root, from "/". */
	master = c->root_fd >= 0 ? openat(c->root_fd, "dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC) : open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0) return -1;
	/* In `sandbox exec` the path is the sandbox's, and its root may have changed what lies there:
	 * the master must be a ptmx of a devpts (CVE-2025-52565's lesson), never some other file. */
	{
		struct stat st;
		struct statfs sf;
		if (fstat(master, &st) < 0 || fstatfs(master, &sf) < 0) goto fail;
		if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != 5 || minor(st.st_rdev) != 2 || sf.f_type != DEVPTS_SUPER_MAGIC) { errno = ENOTTY; goto fail; }
	}
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0) goto fail;
	slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
	if (slave < 0) goto fail;
	if (ioctl(slave, TIOCSCTTY, 0) < 0 || dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0) { int e = errno; close(slave); errno = e; goto fail; }
	if (slave > 2) close(slave);
	char byte = 'T', ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &master, sizeof(int));
	if (sendmsg(sync_fd, &msg, MSG_NOSIGNAL) < 0) goto fail;
	close(master);
	return 0;
fail:
	{ int e = errno; close(master); errno = e; }
	return -1;
}

static int run_op(struct child_ctx *c, const struct sbx_op *op)
{
	switch (op->kind) {
	case SBX_OP_NOTE: return 0;
	case SBX_OP_JOIN_NS: {
		uint32_t k, n = 0;
		for (k = 0; &c->ops[k] != op; k++) if (c->ops[k].kind == SBX_OP_JOIN_NS) n++;
		int fd = c->ns_fds[n];
		c->ns_fds[n] = -1;
		int r = setns(fd, (int)op->a);
		int e = errno;
		close(fd);
		errno = e;
		return r;
	}
	case SBX_OP_UNSHARE: {
		if (unshare((int)op->a) < 0) return -1;
		if (!(op->a & CLONE_NEWTIME)) return 0;
		/* unshare(CLONE_NEWTIME) only places the children in it; enter it now, so that this process
		 * and every child agree (on Linux 6.1, fork fails otherwise). Allowed: one thread here. */
		int fd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
		if (fd < 0) return -1;
		int r = setns(fd, CLONE_NEWTIME);
		int e = errno;
		close(fd);
		errno = e;
		return r;
	}
	case SBX_OP_LOOPBACK_UP: return op_loopback_up();
	case SBX_OP_NET_IFUP: return op_net_ifup(ctx_str(c, op->s1), (uint32_t)op->a, op->mode, (uint32_t)op->b);
	case SBX_OP_SYSCTL: return op_sysctl(c, ctx_str(c, op->s1), ctx_str(c, op->s2));
	case SBX_OP_PIVOT: return op_pivot(c);
	case SBX_OP_HOSTNAME: { const char *h = ctx_str(c, op->s1); return sethostname(h, sbx_strlen(h)); }
	case SBX_OP_GROUPS: return op_groups(ctx_str(c, op->s1));
	case SBX_OP_IDS: return op_ids((uid_t)op->a, (gid_t)op->b);
	case SBX_OP_UMASK: umask((mode_t)op->mode); return 0;
	case SBX_OP_RLIMIT: return op_rlimit(op);
	case SBX_OP_CAPS: return op_caps((uint64_t)op->a, (uint64_t)op->b);
	case SBX_OP_NNP: return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	case SBX_OP_SECCOMP:
		if (op->s1 == 0 || op->a <= 0 || (uint64_t)op->s1 - 1 + (uint64_t)op->a > c->strings_len) { errno = EINVAL; return -1; }
		return op_seccomp(ctx_str(c, op->s1), (uint32_t)op->a);
	case SBX_OP_CLOSE_FDS:
		/* CLOEXEC rather than close: the events pipe must stay open until execve. */
		return (int)syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
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
	/* In a new user namespace the child still holds the credentials it was cloned with (the host's
	 * ids, unmapped there); now that its maps exist it becomes the namespace's root. */
	if (clone_flags & CLONE_NEWUSER) {
		struct sbx_op become = { .step = c->nops ? c->ops[0].step : 0 };
		if (syscall(SYS_setgroups, 0, NULL) < 0 || syscall(SYS_setresgid, 0, 0, 0) < 0 || syscall(SYS_setresuid, 0, 0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) { report(c, &become, SBX_EV_FAILED, errno); _exit(125); }
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
		report(c, op, SBX_EV_START, 0);
		if (op->flags & SBX_F_FAIL) { report(c, op, SBX_EV_FAILED, EPERM); _exit(125); }
		if (op->flags & SBX_F_PAUSE) kill(getpid(), SIGSTOP);
		if (op->kind == SBX_OP_EXEC) {
			const char *cwd = ctx_str(c, op->s3);
			/* Wait until the parent has finished printing progress: the command's output follows it. */
			go = 0;
			while (read(sync_fd, &go, 1) < 0 && errno == EINTR) {}
			if (go != 'E') _exit(125);
			close(sync_fd);
			split_list(ctx_str(c, op->s1), argv_buf, MAX_ARGS);
			split_list(ctx_str(c, op->s2), envp_buf, MAX_ARGS);
			if (cwd && chdir(cwd) < 0) { report(c, op, SBX_EV_FAILED, errno); _exit(126); }
			if (op->a) { run_with_reaper(argv_buf, envp_buf, c, op); if (c->events_fd >= 0) report(c, op, SBX_EV_FAILED, errno); _exit(125); }
			exec_command(argv_buf, envp_buf);
			int e = errno;
			report(c, op, SBX_EV_FAILED, e);
			_exit(e == ENOENT ? 127 : 126);
		}
		if ((op->kind == SBX_OP_CONSOLE ? op_console(c, sync_fd) : op->kind == SBX_OP_FORK ? op_fork(c, sync_fd) : run_op(c, op)) < 0) { report(c, op, SBX_EV_FAILED, errno ? errno : EIO); _exit(125); }
		report(c, op, SBX_EV_DONE, 0);
	}
	_exit(125);
}
