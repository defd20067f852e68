/* The sysctl op, in the cloned child, as root of its namespaces, before pivot_root: writes one
 * entry of the sandbox's own /proc/sys (mounted by the proc step under the new root). Its net and
 * ipc entries belong to the namespaces of the process that opens them: this one. */
#include "internal.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <unistd.h>

int op_sysctl(struct child_ctx *c, const char *name, const char *value)
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
