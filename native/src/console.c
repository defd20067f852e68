/* The console op (tty: true), in the cloned child, as root of its namespaces: a pty made in the
 * sandbox's own devpts, whose slave becomes the child's terminal and stdio, and whose master goes
 * to the parent (the CLI or sbx-supervise) over the sync socket. */
#include "internal.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* tty: true. The terminal is made in the sandbox's own devpts (so `tty` and ttyname() name it
 * there); the child keeps the slave as its controlling terminal and stdio, and the parent gets
 * the master to relay the user's terminal. */
int op_console(struct child_ctx *c, int sync_fd)
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
