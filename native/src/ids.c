/* Credentials and limits, in the cloned child, as root of its user namespace (or the host's root),
 * late in the program: supplementary groups, the uid and gid change, and resource limits. Raw
 * system calls: glibc's wrappers would signal every thread it believes this process has. */
#include "internal.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <string.h>
#include <unistd.h>

#define MAX_GROUPS 256

/* The child's copy is private: the clone does not share memory with Node. */
static gid_t groups_buf[MAX_GROUPS];

static int parse_uint(const char *s, uint64_t *v)
{
	uint64_t x = 0;
	if (!*s) return -1;
	for (; *s; s++) { if (*s < '0' || *s > '9') return -1; x = x * 10 + (uint64_t)(*s - '0'); }
	*v = x;
	return 0;
}

/* setgroups(0, NULL) where the namespace denies setgroups: a rootless one-id map (written by the
 * unprivileged CLI, which must deny setgroups first) leaves the groups the child was cloned with,
 * unmapped inside, and no way to drop them; that is what `unshare -r` gives too. */
int clear_groups(void)
{
	char buf[8] = {0};
	int fd;
	if (syscall(SYS_setgroups, 0, NULL) == 0) return 0;
	if (errno != EPERM) return -1;
	fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
	if (fd < 0) { errno = EPERM; return -1; }
	if (read(fd, buf, sizeof buf - 1) < 0) buf[0] = 0;
	close(fd);
	if (strncmp(buf, "deny", 4) == 0) return 0;
	errno = EPERM;
	return -1;
}

int op_groups(const char *list)
{
	char *items[MAX_GROUPS + 1];
	int n = split_list(list, items, MAX_GROUPS), i;
	for (i = 0; i < n; i++) {
		uint64_t g;
		if (parse_uint(items[i], &g) < 0) { errno = EINVAL; return -1; }
		groups_buf[i] = (gid_t)g;
	}
	if (n == 0) return clear_groups();
	return (int)syscall(SYS_setgroups, n, groups_buf);
}

int op_ids(uid_t uid, gid_t gid)
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

int op_rlimit(const struct sbx_op *op)
{
	struct rlimit r = { .rlim_cur = op->a < 0 ? RLIM_INFINITY : (rlim_t)op->a, .rlim_max = op->b < 0 ? RLIM_INFINITY : (rlim_t)op->b };
	return (int)syscall(SYS_prlimit64, 0, op->mode, &r, NULL);
}
