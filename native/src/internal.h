/* Shared by libsbx's files. Everything here runs in the cloned child unless its comment says
 * otherwise: single-threaded, no malloc, no stdio, raw system calls. */
#ifndef SBX_INTERNAL_H
#define SBX_INTERNAL_H

#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
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
};

HIDDEN const char *ctx_str(const struct child_ctx *c, uint32_t ref);
HIDDEN void child_main(struct child_ctx *c, int sync_fd, uint64_t clone_flags) __attribute__((noreturn));

/* mount.c: paths inside the new root, resolved with openat2(RESOLVE_IN_ROOT) so that a symlink
 * in the root filesystem can never send a mount out to the host. */
HIDDEN int op_mount(struct child_ctx *c, const struct sbx_op *op);
HIDDEN int resolve_in_root(int root_fd, const char *path, int create, int file, int *out_fd);
HIDDEN void fd_path(int fd, char buf[32]);

/* security.c */
HIDDEN int op_caps(uint64_t bounding, uint64_t ambient);
HIDDEN int op_seccomp(const void *bpf, uint32_t len);

/* Small helpers that stay async-signal-safe. */
HIDDEN size_t sbx_strlen(const char *s);
HIDDEN void sbx_strlcpy(char *dst, const char *src, size_t n);
HIDDEN int sbx_streq(const char *a, const char *b);

#endif
