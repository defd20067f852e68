/* Landlock: the path rules as a second wall, behind the mounts.
 *
 * op_landlock runs in the cloned child, after pivot_root and every mount (the paths it opens are
 * the sandbox's own, O_PATH in the new root), after the user change, and before seccomp (a filter
 * may refuse the landlock calls): it makes a ruleset that handles the rights the CLI chose for
 * this kernel's ABI, grants each path its rights, and restricts the child, and so the command,
 * with it. Landlock needs no_new_privs or CAP_SYS_ADMIN in the child's user namespace: the plan
 * puts it after no_new_privs, or before the capabilities are dropped.
 *
 * On ABI 4 and later the same ruleset may handle TCP connect and bind, allowed only to the ports
 * its net rules name (the egress rules that name only ports, or none where the sandbox must not
 * reach the network), and on ABI 6 and later it may scope abstract Unix sockets and signals to the
 * sandbox's own domain: where there is no namespace (reduced mode), what keeps the command from
 * the host's abstract sockets and from signalling the caller's other processes.
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

/* The ruleset's attributes as the kernel's latest ABI has them: an older kernel accepts the larger
 * struct while the fields it does not know are zero (copy_struct_from_user). */
struct sbx_ruleset_attr { uint64_t fs, net, scoped; };
struct sbx_net_port_attr { uint64_t allowed_access; uint64_t port; } __attribute__((packed));
#define SBX_RULE_NET_PORT 2
#define SBX_NET_BIND_TCP 1ULL
#define SBX_NET_CONNECT_TCP 2ULL

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

static uint64_t decimal(const char *p)
{
	uint64_t v = 0;
	for (; *p >= '0' && *p <= '9'; p++) v = v * 10 + (uint64_t)(*p - '0');
	return v;
}

/* The network and scope part of the op (s4): fills the handled net rights and the scopes into attr
 * when 'n'/'s' items are given, or, with ruleset >= 0, adds one net rule per 'c'/'b' item. */
static int net_part(const char *list, struct sbx_ruleset_attr *attr, int ruleset)
{
	char *items[MAX_RULES + 1];
	int n = split_list(list, items, MAX_RULES), i;
	for (i = 0; i < n; i++) {
		const char *it = items[i];
		struct sbx_net_port_attr rule;
		if (ruleset < 0) {
			if (it[0] == 'n') attr->net = decimal(it + 1);
			else if (it[0] == 's') attr->scoped = decimal(it + 1);
			continue;
		}
		if (it[0] != 'c' && it[0] != 'b') continue;
		rule.allowed_access = (it[0] == 'c' ? SBX_NET_CONNECT_TCP : SBX_NET_BIND_TCP) & attr->net;
		rule.port = decimal(it + 1);
		if (!rule.allowed_access) continue;
		if (syscall(SYS_landlock_add_rule, ruleset, SBX_RULE_NET_PORT, &rule, 0) < 0) return -1;
	}
	return 0;
}

/* a = the handled rights, b = a read-only path's rights; s1 the read-only paths, s2 the writable
 * ones (every handled right); s3, when set, a folder to create where the mounts allow it and the
 * ruleset does not: after the restriction, the kernel must refuse it with EACCES, or the op fails
 * (EPERM if it was made, which is then removed; the errno otherwise). */
int op_landlock(struct child_ctx *c, const struct sbx_op *op)
{
	struct sbx_ruleset_attr attr = { .fs = (uint64_t)op->a };
	const char *probe = ctx_str(c, op->s3), *net = ctx_str(c, op->s4);
	int ruleset, r;
	if (net && net_part(net, &attr, -1) < 0) return -1;
	ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
	if (ruleset < 0) return -1;
	r = grant(ruleset, ctx_str(c, op->s1), (uint64_t)op->b, attr.fs);
	if (r == 0) r = grant(ruleset, ctx_str(c, op->s2), attr.fs, attr.fs);
	if (r == 0 && net) r = net_part(net, &attr, ruleset);
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
