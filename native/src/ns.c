/* Namespace ops, in the cloned child, which is single-threaded as setns and unshare require:
 * joining a namespace child_main opened (SBX_OP_JOIN_NS, `sandbox exec`), and unsharing the ones
 * clone() leaves to the child (cgroup, once it is in its cgroup; time). */
#include "internal.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

/* The fd child_main opened for this op, which it consumes: the nth join op has ns_fds[n]. */
int op_join_ns(struct child_ctx *c, const struct sbx_op *op)
{
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

int op_unshare(int64_t flags)
{
	if (unshare((int)flags) < 0) return -1;
	if (!(flags & CLONE_NEWTIME)) return 0;
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
