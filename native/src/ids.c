/* Credentials and limits, in the cloned child, as root of its user namespace (or the host's root),
 * late in the program: supplementary groups, the uid and gid change, and resource limits. Raw
 * system calls: glibc's wrappers would signal every thread it believes this process has. */
#include "internal.h"

#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
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

int op_groups(const char *list)
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
