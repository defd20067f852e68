/* Landlock: the path rules as a second wall, behind the mounts.
 *
 * op_landlock runs in the cloned child, after pivot_root and every mount (the paths it opens are
 * the sandbox's own, O_PATH in the new root), after the user change, and before seccomp (a filter
 * may refuse the landlock calls): it makes a ruleset that handles the rights the CLI chose for
 * this kernel's ABI, grants each path its rights, and restricts the child, and so the command,
 * with it. Landlock needs no_new_privs or CAP_SYS_ADMIN in the child's user namespace: the plan
 * puts it after no_new_privs, or before the capabilities are dropped.
 *
 * sbx_landlock_abi runs in the CLI process (any user, any thread): the kernel's ABI version, or 0.
 */
#include "internal.h"

#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_RULES 256

/* This build's kernel headers may be older than the kernel that runs it: the rights' numbers are
 * the kernel's ABI (include/uapi/linux/landlock.h), fixed once published. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif

/* The rights Landlock allows on a file that is not a folder: the others are refused with EINVAL. */
#define FILE_RIGHTS (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE | \
		     LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV)

/* Grants rights (of those handled) on each path of a list, as the sandbox sees it. */
static int grant(int ruleset, const char *list, uint64_t rights, uint64_t handled)
{
	char *paths[MAX_RULES + 1];
	int n = split_list(list, paths, MAX_RULES), i;
	for (i = 0; i < n; i++) {
		struct landlock_path_beneath_attr rule = { .allowed_access = rights & handled };
		struct stat st;
		int r;
		rule.parent_fd = open(paths[i], O_PATH | O_CLOEXEC);
		if (rule.parent_fd < 0) return -1;
		if (fstat(rule.parent_fd, &st) < 0) { close(rule.parent_fd); return -1; }
		if (!S_ISDIR(st.st_mode)) rule.allowed_access &= FILE_RIGHTS;
		r = (int)syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
		close(rule.parent_fd);
		if (r < 0) return -1;
	}
	return 0;
}

/* a = the handled rights, b = a read-only path's rights; s1 the read-only paths, s2 the writable
 * ones (every handled right); s3, when set, a folder to create where the mounts allow it and the
 * ruleset does not: after the restriction, the kernel must refuse it with EACCES, or the op fails
 * (EPERM if it was made, which is then removed; the errno otherwise). */
int op_landlock(struct child_ctx *c, const struct sbx_op *op)
{
	struct landlock_ruleset_attr attr = { .handled_access_fs = (uint64_t)op->a };
	const char *probe = ctx_str(c, op->s3);
	int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0), r;
	if (ruleset < 0) return -1;
	r = grant(ruleset, ctx_str(c, op->s1), (uint64_t)op->b, attr.handled_access_fs);
	if (r == 0) r = grant(ruleset, ctx_str(c, op->s2), attr.handled_access_fs, attr.handled_access_fs);
	if (r == 0) r = (int)syscall(SYS_landlock_restrict_self, ruleset, 0);
	close(ruleset);
	if (r < 0 || !probe) return r;
	if (mkdir(probe, 0700) == 0) { rmdir(probe); errno = EPERM; return -1; }
	if (errno != EACCES) return -1;
	return 0;
}

SBX_API int sbx_landlock_abi(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	return v < 0 ? 0 : (int)v;
}
