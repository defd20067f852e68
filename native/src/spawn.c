/* The parent side of libsbx: runs on a Node thread, in the caller's namespaces and with its
 * privileges. It clones the child and hands Node the child's pid and the two protocol fds; every
 * error is returned in struct sbx_error, never by exiting. */
#include "internal.h"

#include <fcntl.h>
#include <poll.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

SBX_API int sbx_abi_version(void) { return SBX_ABI_VERSION; }

/* A pid namespace joined by path (SBX_OP_JOIN_NS of CLONE_NEWPID) holds only the children of who
 * enters it: this thread enters it for the clone, so that the child is born there, and leaves it
 * right after (leave_pidns). setns(CLONE_NEWPID) is allowed in a multithreaded process and changes
 * where this thread's children go, nothing else. Returns an fd of this thread's own pid namespace
 * to return to, -1 when no pid namespace is joined, -2 on a failure (errno set). */
static int enter_pidns(const struct sbx_op *ops, uint32_t nops, const char *strings, uint32_t strings_len)
{
	uint32_t i;
	for (i = 0; i < nops; i++) {
		if (ops[i].kind != SBX_OP_JOIN_NS || ops[i].a != CLONE_NEWPID || ops[i].mode != 1) continue;
		if (ops[i].s1 == 0 || ops[i].s1 > strings_len) { errno = EINVAL; return -2; }
		int own = open("/proc/thread-self/ns/pid", O_RDONLY | O_CLOEXEC);
		if (own < 0) return -2;
		int fd = open(strings + ops[i].s1 - 1, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWPID) < 0) {
			int e = errno;
			if (fd >= 0) close(fd);
			close(own);
			errno = e;
			return -2;
		}
		close(fd);
		return own;
	}
	return -1;
}

/* Back to this thread's own pid namespace for its later children (always allowed: it is its
 * active one). */
static void leave_pidns(int own)
{
	if (own < 0) return;
	if (setns(own, CLONE_NEWPID) < 0) abort(); /* a later child of this thread would be born in the joined namespace */
	close(own);
}

SBX_API int sbx_spawn(const struct sbx_op *ops, uint32_t nops, const char *strings, uint32_t strings_len,
		      uint64_t clone_flags, int32_t cgroup_fd, struct sbx_child *out, struct sbx_error *err)
{
	struct timespec ts;
	int ev[2], sync[2];
	long pid;
	/* Read before the clone: in a new user namespace the child's own ids are unmapped until the
	 * parent writes its maps. */
	uid_t caller_uid = geteuid();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	out->spawn_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	if (!ops || !strings || nops == 0) return sbx_fail(err, EINVAL, "sbx_spawn: empty program");
	if (pipe2(ev, O_CLOEXEC) < 0) return sbx_fail(err, errno, "pipe2");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync) < 0) { int e = errno; close(ev[0]); close(ev[1]); return sbx_fail(err, e, "socketpair"); }
	/* The child unshares two namespaces itself: cgroup once it is in its cgroup, so that the
	 * namespace's root is the sandbox's cgroup and not the caller's; and time, whose flag clone()
	 * cannot take (it overlaps the exit signal byte). */
	out->in_cgroup = 0;
	pid = -1;
	int own_pidns = enter_pidns(ops, nops, strings, strings_len);
	if (own_pidns == -2) { int e = errno; close(ev[0]); close(ev[1]); close(sync[0]); close(sync[1]); return sbx_fail(err, e, "setns(CLONE_NEWPID) of the joined pid namespace"); }
	if (cgroup_fd >= 0) {
		struct clone_args args;
		memset(&args, 0, sizeof args);
		args.flags = (clone_flags & ~(uint64_t)(CLONE_NEWCGROUP | CLONE_NEWTIME)) | CLONE_INTO_CGROUP;
		args.exit_signal = SIGCHLD;
		args.cgroup = (uint64_t)cgroup_fd;
		pid = syscall(SYS_clone3, &args, sizeof args);
		if (pid >= 0) out->in_cgroup = 1;
		else if (errno != ENOSYS && errno != E2BIG && errno != EINVAL) { int e = errno; leave_pidns(own_pidns); close(ev[0]); close(ev[1]); close(sync[0]); close(sync[1]); return sbx_fail(err, e, "clone3"); }
	}
	/* Without a cgroup fd, or on a kernel without clone3 (< 5.7): clone, and the parent migrates it. */
	if (pid < 0 && !out->in_cgroup)
		pid = syscall(SYS_clone, (unsigned long)((clone_flags & ~(uint64_t)(CLONE_NEWCGROUP | CLONE_NEWTIME)) | SIGCHLD), NULL, NULL, NULL, 0);
	if (pid != 0) { int e = errno; leave_pidns(own_pidns); errno = e; }
	if (pid < 0) {
		int e = errno;
		close(ev[0]); close(ev[1]); close(sync[0]); close(sync[1]);
		return sbx_fail(err, e, "clone");
	}
	if (pid == 0) {
		/* The child: a copy of this process with one thread. */
		struct child_ctx c = { .ops = ops, .nops = nops, .strings = strings, .strings_len = strings_len, .events_fd = ev[1], .root_fd = -1,
			.rootless = caller_uid != 0 };
		close(ev[0]);
		close(sync[0]);
		child_main(&c, sync[1], clone_flags);
	}
	close(ev[1]);
	close(sync[1]);
	out->pid = (int32_t)pid;
	out->events_fd = ev[0];
	out->sync_fd = sync[0];
	return 0;
}

SBX_API int sbx_respawn(const struct sbx_op *ops, uint32_t nops, const char *strings, uint32_t strings_len,
			uint64_t clone_flags, const char *cgroup_procs, int32_t userns_fd, int32_t netns_fd,
			struct sbx_child *out, struct sbx_error *err)
{
	struct timespec ts;
	int ev[2], sync[2], pidp[2];
	int32_t msg[2] = { 0, 0 }; /* the child's pid, or 0 and the errno of what H could not do */
	long h;
	uid_t caller_uid = geteuid();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	out->spawn_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	out->in_cgroup = 0;
	if (!ops || !strings || nops == 0) return sbx_fail(err, EINVAL, "sbx_respawn: empty program");
	if (pipe2(ev, O_CLOEXEC) < 0) return sbx_fail(err, errno, "pipe2");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync) < 0) { int e = errno; close(ev[0]); close(ev[1]); return sbx_fail(err, e, "socketpair"); }
	if (pipe2(pidp, O_CLOEXEC) < 0) { int e = errno; close(ev[0]); close(ev[1]); close(sync[0]); close(sync[1]); return sbx_fail(err, e, "pipe2"); }
	/* H: a raw clone (no libc locks: the caller may be Node, with other threads), which alone
	 * changes its namespaces; the caller stays in the host's. */
	h = syscall(SYS_clone, (unsigned long)SIGCHLD, NULL, NULL, NULL, 0);
	if (h == 0) {
		/* H, in the host's namespaces with the caller's privileges. It joins the cgroup first,
		 * while it is still the host's root (or the owner of a delegated subtree), so that the
		 * child is born there and its cgroup namespace, unshared later, is rooted there. */
		const char *p = cgroup_procs;
		long pid;
		close(ev[0]); close(sync[0]); close(pidp[0]);
		for (; p && *p; p += sbx_strlen(p) + 1) {
			int fd = open(p, O_WRONLY | O_CLOEXEC);
			if (fd < 0 || write(fd, "0", 1) != 1) { msg[1] = errno; goto out; }
			close(fd);
		}
		/* Root of the host has CAP_SYS_ADMIN over the sandbox's user namespace, and a rootless
		 * caller owns it; in it, H holds every capability, which the network namespace (owned by
		 * it) and the new namespaces need. */
		if (userns_fd >= 0 && setns(userns_fd, CLONE_NEWUSER) < 0) { msg[1] = errno; goto out; }
		if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) < 0) { msg[1] = errno; goto out; }
		/* CLONE_PARENT: the child is the caller's, which waits for it and gets its SIGCHLD. */
		pid = syscall(SYS_clone, (unsigned long)((clone_flags & ~(uint64_t)(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWCGROUP | CLONE_NEWTIME)) | CLONE_PARENT | SIGCHLD), NULL, NULL, NULL, 0);
		if (pid == 0) {
			/* The child. child_main sees CLONE_NEWUSER in clone_flags and becomes root of the
			 * joined user namespace, as the first child did once its maps were written. */
			struct child_ctx c = { .ops = ops, .nops = nops, .strings = strings, .strings_len = strings_len, .events_fd = ev[1], .root_fd = -1,
				.rootless = caller_uid != 0 && (clone_flags & CLONE_NEWUSER) != 0 };
			close(pidp[1]);
			child_main(&c, sync[1], clone_flags);
		}
		if (pid < 0) msg[1] = errno; else msg[0] = (int32_t)pid;
	out:
		if (write(pidp[1], msg, sizeof msg) != (ssize_t)sizeof msg) _exit(1);
		_exit(0);
	}
	close(ev[1]); close(sync[1]); close(pidp[1]);
	if (h < 0) { int e = errno; close(ev[0]); close(sync[0]); close(pidp[0]); return sbx_fail(err, e, "clone"); }
	ssize_t r;
	do r = read(pidp[0], msg, sizeof msg); while (r < 0 && errno == EINTR);
	close(pidp[0]);
	while (waitpid((pid_t)h, NULL, __WALL) < 0 && errno == EINTR) {}
	if (r != (ssize_t)sizeof msg || msg[0] <= 0) {
		close(ev[0]); close(sync[0]);
		return sbx_fail(err, r == (ssize_t)sizeof msg && msg[1] ? msg[1] : EIO, "restart: join the sandbox's cgroup and namespaces, and clone");
	}
	out->pid = msg[0];
	out->in_cgroup = cgroup_procs && *cgroup_procs;
	out->events_fd = ev[0];
	out->sync_fd = sync[0];
	return 0;
}

SBX_API int sbx_wait(int32_t pid, int32_t *status, struct sbx_error *err)
{
	int st = 0;
	pid_t r;
	do r = waitpid(pid, &st, __WALL); while (r < 0 && errno == EINTR);
	if (r < 0) return sbx_fail(err, errno, "waitpid");
	*status = st;
	return 0;
}

SBX_API int sbx_try_wait(int32_t pid, int32_t *status, int32_t *done, struct sbx_error *err)
{
	int st = 0;
	pid_t r;
	do r = waitpid(pid, &st, __WALL | WNOHANG); while (r < 0 && errno == EINTR);
	if (r < 0) return sbx_fail(err, errno, "waitpid");
	*done = r == pid;
	*status = r == pid ? st : 0;
	return 0;
}

SBX_API int sbx_pipe(int32_t *read_fd, int32_t *write_fd, struct sbx_error *err)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0) return sbx_fail(err, errno, "pipe2");
	*read_fd = fds[0];
	*write_fd = fds[1];
	return 0;
}

SBX_API int sbx_set_winsize(int32_t fd, uint16_t rows, uint16_t cols, struct sbx_error *err)
{
	struct winsize ws = { .ws_row = rows, .ws_col = cols };
	if (ioctl(fd, TIOCSWINSZ, &ws) < 0) return sbx_fail(err, errno, "TIOCSWINSZ");
	return 0;
}

SBX_API int sbx_recv_fd(int32_t sock, int32_t *fd, struct sbx_error *err)
{
	char byte, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
	ssize_t r;
	do r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); while (r < 0 && errno == EINTR);
	if (r < 0) return sbx_fail(err, errno, "recvmsg");
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (r == 0 || !c || c->cmsg_type != SCM_RIGHTS) return sbx_fail(err, EPROTO, "recvmsg: no terminal from the child");
	memcpy(fd, CMSG_DATA(c), sizeof(int));
	return 0;
}

SBX_API int sbx_send_fd(const char *path, int32_t fd, const char *name, struct sbx_error *err)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t len = path ? strlen(path) : 0, nlen = name && *name ? strlen(name) : 1;
	if (!len || len >= sizeof addr.sun_path) return sbx_fail(err, ENAMETOOLONG, "console socket path");
	memcpy(addr.sun_path, path, len);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0) return sbx_fail(err, errno, "socket");
	if (connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) { int e = errno; close(s); return sbx_fail(err, e, "connect to the console socket"); }
	char ctl[CMSG_SPACE(sizeof(int))];
	memset(ctl, 0, sizeof ctl);
	struct iovec iov = { .iov_base = (void *)(name && *name ? name : "t"), .iov_len = nlen };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	ssize_t r;
	do r = sendmsg(s, &msg, MSG_NOSIGNAL); while (r < 0 && errno == EINTR);
	int e = errno;
	close(s);
	if (r < 0) return sbx_fail(err, e, "sendmsg to the console socket");
	return 0;
}

SBX_API int sbx_whiteout(const char *path, struct sbx_error *err)
{
	if (mknod(path, S_IFCHR | 0000, makedev(0, 0)) < 0) return sbx_fail(err, errno, "mknod (whiteout)");
	return 0;
}

SBX_API int sbx_mkfifo(const char *path, uint32_t mode, struct sbx_error *err)
{
	if (mkfifo(path, mode & 0777) < 0) return sbx_fail(err, errno, "mkfifo");
	return 0;
}

SBX_API int sbx_read_events(int32_t fd, int32_t cancel_fd, void *buf, uint32_t cap, uint32_t *len, int32_t *state, struct sbx_error *err)
{
	const uint32_t size = sizeof(struct sbx_event);
	struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = cancel_fd, .events = POLLIN } };
	uint32_t n = 0, scanned = 0;
	*len = 0;
	*state = 0;
	while (cap - n >= size) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR) continue;
			return sbx_fail(err, errno, "poll");
		}
		if (p[1].revents) { *state = 2; break; }
		ssize_t r = read(fd, (char *)buf + n, cap - n);
		if (r < 0 && errno == EINTR) continue;
		if (r < 0) return sbx_fail(err, errno, "read");
		if (r == 0) { *state = 1; break; }
		n += (uint32_t)r;
		int waits = 0;
		for (; scanned + size <= n; scanned += size) {
			struct sbx_event ev;
			memcpy(&ev, (char *)buf + scanned, size);
			if (ev.phase == SBX_EV_START && ev.op == SBX_OP_EXEC) waits = 1;
		}
		if (waits) break;
	}
	*len = n;
	return 0;
}

SBX_API int sbx_execve(const char *path, const char *const *argv, const char *const *envp, struct sbx_error *err)
{
	/* Node marks every descriptor it inherited close-on-exec as it starts, stdio included: the
	 * same stdin, stdout and stderr are to pass on. */
	for (int fd = 0; fd <= 2; fd++) {
		int flags = fcntl(fd, F_GETFD);
		if (flags >= 0 && (flags & FD_CLOEXEC) && fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) < 0) return sbx_fail(err, errno, "fcntl");
	}
	execve(path, (char *const *)argv, (char *const *)envp);
	return sbx_fail(err, errno, "execve");
}

SBX_API int sbx_lsetxattr(const char *path, const char *name, const void *value, uint32_t len, struct sbx_error *err)
{
	if (lsetxattr(path, name, value, len, 0) < 0) return sbx_fail(err, errno, "lsetxattr");
	return 0;
}
