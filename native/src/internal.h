/* Shared by libsbx's files. Everything here runs in the cloned child unless its comment says
 * otherwise: single-threaded, no malloc, no stdio, raw system calls. */
#ifndef SBX_INTERNAL_H
#define SBX_INTERNAL_H

#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "../include/sbx.h"

#define HIDDEN __attribute__((visibility("hidden")))

/* The program being run: set once by child_main, read by the ops. */
struct child_ctx {
	const struct sbx_op *ops;
	uint32_t nops;
	const char *strings;
	uint32_t strings_len;
	int events_fd;
	int root_fd;          /* the new root: before pivot_root a folder, after it "/" */
	int ns_fds[16];       /* SBX_OP_JOIN_NS targets, opened in op order before any is joined */
	int pivoted;
	int rootless;         /* cloned by a caller that is not root on the host (its own user namespace) */
	int start_fd;         /* SBX_F_WAIT_START: the start fifo, open read-write (exec.c), or -1 */
	int init_fd;          /* init: true: the sealed memfd of sbx-init (exec.c), or -1 */
	int outlive;          /* SBX_F_FORK_PARENT: the command does not die with the caller (exec.c) */
};

/* Who calls whom, so that no two files call each other: spawn.c (sbx_spawn) clones the child and
 * calls child_main (child.c), the dispatcher; it calls the op files (ns.c, net.c, sysctl.c,
 * mount.c, ids.c, security.c, landlock.c, console.c, exec.c); everything may call util.c, which calls nothing
 * of libsbx. test/unit/native-calls.test.ts checks it on the objects. */

/* child.c */
HIDDEN void child_main(struct child_ctx *c, int sync_fd, uint64_t clone_flags) __attribute__((noreturn));

/* ns.c */
HIDDEN int op_join_ns(struct child_ctx *c, const struct sbx_op *op);
HIDDEN int op_unshare(int64_t flags);

/* net.c: in the sandbox's network namespace. */
HIDDEN int op_loopback_up(void);
HIDDEN int op_net_ifup(const char *name, uint32_t addr, uint32_t prefix, uint32_t gateway);

/* sysctl.c */
HIDDEN int op_sysctl(struct child_ctx *c, const char *name, const char *value);

/* mount.c: paths inside the new root, resolved with openat2(RESOLVE_IN_ROOT) so that a symlink
 * in the root filesystem can never send a mount out to the host. */
HIDDEN int op_mount(struct child_ctx *c, const struct sbx_op *op);
HIDDEN int op_pivot(struct child_ctx *c);
HIDDEN int resolve_in_root(int root_fd, const char *path, int create, int file, int *out_fd);
HIDDEN void fd_path(int fd, char buf[32]);

/* ids.c */
HIDDEN int clear_groups(void);
HIDDEN int op_groups(const char *list);
HIDDEN int op_ids(uid_t uid, gid_t gid);
HIDDEN int op_rlimit(const struct sbx_op *op);

/* security.c */
HIDDEN int op_caps(uint64_t bounding, uint64_t ambient);
HIDDEN int op_caps_sets(uint64_t bounding, uint64_t inheritable, uint64_t ambient);
HIDDEN int op_seccomp(const void *bpf, uint32_t len);

/* landlock.c: in the new root, after the mounts. */
HIDDEN int op_landlock(struct child_ctx *c, const struct sbx_op *op);

/* console.c: sends the terminal's master over sync_fd. */
HIDDEN int op_console(struct child_ctx *c, int sync_fd);

/* exec.c: op_exec never returns; op_fork returns in the forked child, and the relay never does. */
HIDDEN void op_exec(struct child_ctx *c, const struct sbx_op *op, int sync_fd) __attribute__((noreturn));
HIDDEN int op_fork(struct child_ctx *c, const struct sbx_op *op, int sync_fd);
HIDDEN int init_prepare(struct child_ctx *c, const struct sbx_op *op);

/* fail.c: an entry point's error: err filled with e and "WHAT: strerror(e)", errno = e; returns -1.
 * For the calling process only, not a cloned child. */
HIDDEN int sbx_fail(struct sbx_error *err, int e, const char *what);

/* util.c: small helpers that stay async-signal-safe and call nothing else of libsbx. */
HIDDEN size_t sbx_strlen(const char *s);
HIDDEN void sbx_strlcpy(char *dst, const char *src, size_t n);
HIDDEN int sbx_streq(const char *a, const char *b);
/* A string of the arena (ref = offset + 1), or NULL for 0 or one past its end. */
HIDDEN const char *ctx_str(const struct child_ctx *c, uint32_t ref);
/* CLOCK_MONOTONIC in nanoseconds. */
HIDDEN uint64_t now_ns(void);
/* One struct sbx_event on events_fd, for op, stamped now. */
HIDDEN void report(struct child_ctx *c, const struct sbx_op *op, uint32_t phase, int err);
/* Splits a NUL-separated list ending with an empty string into at most max pointers, then NULL. */
HIDDEN int split_list(const char *list, char **out, int max);

#endif
