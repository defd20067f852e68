/* Mount ops, in the cloned child, in its new mount namespace, as root there. Every target is a
 * path inside the new root, resolved with openat2(RESOLVE_IN_ROOT): "..", absolute symlinks and
 * relative ones all stay inside the root, so the root filesystem's contents cannot point a mount
 * at the host. The mount itself then goes through /proc/self/fd/N of the resolved file. */
#include "internal.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

void fd_path(int fd, char buf[32])
{
	char digits[12];
	int n = 0, i = 0;
	sbx_strlcpy(buf, "/proc/self/fd/", 32);
	do { digits[n++] = (char)('0' + fd % 10); fd /= 10; } while (fd && n < 11);
	size_t at = sbx_strlen(buf);
	for (i = 0; i < n; i++) buf[at + (size_t)i] = digits[n - 1 - i];
	buf[at + (size_t)n] = 0;
}

static int openat2_in(int dirfd, const char *path, int flags)
{
	struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC), .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* Opens `path` inside the root as an O_PATH fd; with `create`, makes missing folders (and, for
 * a file target, the last component as an empty file) on the way. Each missing entry is made in
 * its parent, and that parent is itself resolved inside the root. */
int resolve_in_root(int root_fd, const char *path, int create, int file, int *out_fd)
{
	char prefix[4096], leaf[256];
	size_t len = sbx_strlen(path), i, start;
	int fd = openat2_in(root_fd, path[0] == '/' && path[1] == 0 ? "." : path, O_PATH | O_NOFOLLOW);
	if (fd >= 0 || errno != ENOENT || !create) { *out_fd = fd; return fd < 0 ? -1 : 0; }
	if (len >= sizeof prefix) { errno = ENAMETOOLONG; return -1; }
	for (start = 0, i = 0; i <= len; i++) {
		if (path[i] != '/' && path[i] != 0) continue;
		if (i == start) { start = i + 1; continue; } /* an empty component: "//" or the leading "/" */
		int last = i == len || (path[i] == '/' && path[i + 1] == 0);
		sbx_strlcpy(prefix, path, i + 1);
		fd = openat2_in(root_fd, prefix, O_PATH | O_NOFOLLOW);
		if (fd < 0) {
			if (errno != ENOENT) return -1;
			size_t n = i - start;
			if (n >= sizeof leaf) { errno = ENAMETOOLONG; return -1; }
			sbx_strlcpy(leaf, path + start, n + 1);
			sbx_strlcpy(prefix, path, start + 1);
			int parent = openat2_in(root_fd, prefix[0] ? prefix : ".", O_PATH | O_DIRECTORY);
			if (parent < 0) return -1;
			int r = last && file ? openat(parent, leaf, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644) : mkdirat(parent, leaf, 0755);
			int e = errno;
			if (last && file && r >= 0) close(r);
			close(parent);
			if (r < 0 && e != EEXIST) { errno = e; return -1; }
			sbx_strlcpy(prefix, path, i + 1);
			fd = openat2_in(root_fd, prefix, O_PATH | O_NOFOLLOW);
			if (fd < 0) return -1;
		}
		if (last) { *out_fd = fd; return 0; }
		close(fd);
		start = i + 1;
	}
	errno = ENOENT;
	return -1;
}

/* The flags a bind remount must keep: the kernel refuses to clear locked ones. */
static unsigned long kept_flags(const char *target)
{
	struct statfs st;
	unsigned long f = 0;
	if (statfs(target, &st) < 0) return 0;
	if (st.f_flags & ST_NOSUID) f |= MS_NOSUID;
	if (st.f_flags & ST_NODEV) f |= MS_NODEV;
	if (st.f_flags & ST_NOEXEC) f |= MS_NOEXEC;
	if (st.f_flags & ST_NOATIME) f |= MS_NOATIME;
	if (st.f_flags & ST_NODIRATIME) f |= MS_NODIRATIME;
	if (st.f_flags & ST_RELATIME) f |= MS_RELATIME;
	return f;
}

/* Re-resolves the target (now the top of the new mount) and remounts it with flags. */
static int remount(int root_fd, const char *target, unsigned long flags)
{
	char p[32];
	int fd, r;
	if (resolve_in_root(root_fd, target, 0, 0, &fd) < 0) return -1;
	fd_path(fd, p);
	r = mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | flags | kept_flags(p), NULL);
	int e = errno;
	close(fd);
	errno = e;
	return r;
}

static int bind_into_root(int root_fd, const char *source, const char *target, unsigned long flags, int ro, int file, unsigned long propagation, int recursive)
{
	char p[32];
	int fd, r;
	if (resolve_in_root(root_fd, target, 1, file, &fd) < 0) return -1;
	fd_path(fd, p);
	r = mount(source, p, NULL, MS_BIND | (recursive ? MS_REC : 0), NULL);
	int e = errno;
	close(fd);
	if (r < 0) { errno = e; return -1; }
	if ((ro || flags) && remount(root_fd, target, (ro ? MS_RDONLY : 0) | flags) < 0) return -1;
	if (propagation) {
		if (resolve_in_root(root_fd, target, 0, 0, &fd) < 0) return -1;
		fd_path(fd, p);
		r = mount(NULL, p, NULL, propagation, NULL);
		e = errno;
		close(fd);
		errno = e;
		return r;
	}
	return 0;
}

static int mount_fs_at(int root_fd, const char *target, const char *fstype, const char *data, unsigned long flags, const char *source, unsigned long propagation)
{
	char p[32];
	int fd, r;
	if (resolve_in_root(root_fd, target, 1, 0, &fd) < 0) return -1;
	fd_path(fd, p);
	r = mount(source ? source : fstype, p, fstype, flags, data);
	int e = errno;
	close(fd);
	if (r < 0 || !propagation) { errno = e; return r; }
	/* The path now leads to the new mount's root: its propagation is set there. */
	if (resolve_in_root(root_fd, target, 0, 0, &fd) < 0) return -1;
	fd_path(fd, p);
	r = mount(NULL, p, NULL, propagation, NULL);
	e = errno;
	close(fd);
	errno = e;
	return r;
}

/* SBX_OP_DEV_MAKE: mknod in the node's folder (resolved in the root), the mode and owner set exactly
 * (mknod's mode passes through the umask), then a device node bound on itself and that bind
 * remounted without nodev, so that it opens while the tmpfs of /dev around it stays nodev. An
 * existing node of that name is replaced. */
static int make_node(int root_fd, const char *path, uint32_t mode, uint64_t a, uint64_t b)
{
	char dir[4096], p[32];
	size_t n = sbx_strlen(path), cut = n;
	int dfd, fd, r, e;
	while (cut > 0 && path[cut - 1] != '/') cut--;
	if (cut == 0 || cut == n || cut >= sizeof dir) { errno = EINVAL; return -1; }
	sbx_strlcpy(dir, path, cut + 1);
	if (resolve_in_root(root_fd, dir, 1, 0, &fd) < 0) return -1;
	fd_path(fd, p);
	dfd = open(p, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	close(fd);
	if (dfd < 0) return -1;
	const char *leaf = path + cut;
	if (unlinkat(dfd, leaf, 0) < 0 && errno != ENOENT) goto fail;
	if (mknodat(dfd, leaf, mode, makedev((unsigned)(a & 0xffffffffu), (unsigned)(b & 0xffffffffu))) < 0) goto fail;
	if (fchownat(dfd, leaf, (uid_t)(a >> 32), (gid_t)(b >> 32), AT_SYMLINK_NOFOLLOW) < 0) goto fail;
	if (fchmodat(dfd, leaf, mode & 07777, 0) < 0) goto fail;
	close(dfd);
	if (S_ISFIFO(mode)) return 0;
	if (resolve_in_root(root_fd, path, 0, 0, &fd) < 0) return -1;
	fd_path(fd, p);
	r = mount(p, p, NULL, MS_BIND, NULL);
	e = errno;
	close(fd);
	if (r < 0) { errno = e; return -1; }
	/* Re-resolved: the path now leads to the bind. */
	if (resolve_in_root(root_fd, path, 0, 0, &fd) < 0) return -1;
	fd_path(fd, p);
	r = mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC, NULL);
	e = errno;
	close(fd);
	errno = e;
	return r;
fail:
	e = errno;
	close(dfd);
	errno = e;
	return -1;
}

/* SBX_OP_PIVOT: the new root becomes "/", and c->root_fd names it from then on. */
int op_pivot(struct child_ctx *c)
{
	/* pivot_root(".", ".") stacks the old root under the new one; detaching it leaves no path
	 * back to the host's file system. */
	if (fchdir(c->root_fd) < 0) return -1;
	if (syscall(SYS_pivot_root, ".", ".") < 0) return -1;
	if (umount2(".", MNT_DETACH) < 0) return -1;
	if (chdir("/") < 0) return -1;
	close(c->root_fd);
	c->root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	c->pivoted = 1;
	return c->root_fd < 0 ? -1 : 0;
}

/* SBX_OP_WORKDIR: the working directory, in the new root, as its root (before the ids op). One
 * that is there (a symlink to a folder too, which chdir follows) is left as it is; a missing one is
 * made as a mount point is, each missing component in its parent resolved inside the root, mode
 * 0755 whatever the umask inherited from the CLI (docker's mode for a missing working dir). */
static int make_workdir(int root_fd, const char *path)
{
	struct stat st;
	int fd = openat2_in(root_fd, path, O_PATH | O_DIRECTORY), r, e;
	if (fd >= 0) { close(fd); return 0; }
	if (errno != ENOENT) return -1;
	mode_t old = umask(0);
	r = resolve_in_root(root_fd, path, 1, 0, &fd);
	e = errno;
	umask(old);
	if (r < 0) { errno = e; return -1; }
	r = fstat(fd, &st);
	e = errno;
	close(fd);
	if (r < 0) { errno = e; return -1; }
	if (!S_ISDIR(st.st_mode)) { errno = ENOTDIR; return -1; }
	return 0;
}

int op_mount(struct child_ctx *c, const struct sbx_op *op)
{
	const char *s1 = ctx_str(c, op->s1), *s2 = ctx_str(c, op->s2), *s3 = ctx_str(c, op->s3);
	/* The mount flags up to MS_STRICTATIME (1 << 24); the SBX_F_* bits are above it. */
	unsigned long flags = op->flags & 0x01ffffffu;
	char p[32];
	int fd, r, e;
	switch (op->kind) {
	case SBX_OP_MOUNT_PRIVATE:
		return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	case SBX_OP_ROOT_TMPFS:
	case SBX_OP_ROOT_BIND:
	case SBX_OP_ROOT_OVERLAY:
		if (op->kind == SBX_OP_ROOT_TMPFS) r = mount("tmpfs", s1, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
		/* An image: its unpacked layers (s2, the overlay options) under a private upper layer. */
		else if (op->kind == SBX_OP_ROOT_OVERLAY) r = mount("overlay", s1, "overlay", MS_NODEV, s2);
		else {
			r = mount(s2, s1, NULL, MS_BIND | MS_REC, NULL);
			if (r == 0) r = mount(NULL, s1, NULL, MS_REMOUNT | MS_BIND | MS_NODEV | kept_flags(s1), NULL);
		}
		if (r < 0) return -1;
		c->root_fd = open(s1, O_PATH | O_DIRECTORY | O_CLOEXEC);
		return c->root_fd < 0 ? -1 : 0;
	case SBX_OP_BIND:
		return bind_into_root(c->root_fd, s1, s2, flags, op->a != 0, (op->flags & SBX_F_FILE) != 0, (unsigned long)op->b, 1);
	case SBX_OP_DEV_NODE:
		return bind_into_root(c->root_fd, s1, s2, 0, 0, 1, 0, 0);
	case SBX_OP_SYMLINK: {
		/* s1 is the link's path in the root: its folder is resolved in the root, then the link made. */
		char dir[4096];
		size_t n = sbx_strlen(s1), cut = n;
		while (cut > 0 && s1[cut - 1] != '/') cut--;
		if (cut) sbx_strlcpy(dir, s1, cut + 1); /* keeps the trailing '/': "/" for "/bin" */
		else sbx_strlcpy(dir, "/", 2);
		if (resolve_in_root(c->root_fd, dir, 1, 0, &fd) < 0) return -1;
		fd_path(fd, p);
		int dfd = open(p, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
		close(fd);
		if (dfd < 0) return -1;
		r = symlinkat(s2, dfd, s1 + cut);
		e = errno;
		close(dfd);
		if (r < 0 && e != EEXIST) { errno = e; return -1; }
		return 0;
	}
	case SBX_OP_MOUNT_FS:
		return mount_fs_at(c->root_fd, s1, s2, s3, flags, op->s4 ? ctx_str(c, op->s4) : NULL, (unsigned long)op->b);
	case SBX_OP_SYSFS:
		if (op->a) return mount_fs_at(c->root_fd, s1, "sysfs", NULL, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, 0);
		/* The host's /sys without its submounts (cgroup, securityfs, debugfs, bpf): the sandbox gets
		 * its own cgroup view, and the rest is none of its business. */
		return bind_into_root(c->root_fd, "/sys", s1, MS_NOSUID | MS_NODEV | MS_NOEXEC, 1, 0, 0, 0);
	case SBX_OP_MASK:
	case SBX_OP_READONLY: {
		struct stat st;
		r = resolve_in_root(c->root_fd, s1, 0, 0, &fd);
		if (r < 0) return errno == ENOENT ? 0 : -1; /* nothing there to hide or protect */
		fd_path(fd, p);
		if (fstat(fd, &st) < 0) { e = errno; close(fd); errno = e; return -1; }
		if (op->kind == SBX_OP_MASK && !S_ISDIR(st.st_mode)) {
			/* A file is hidden under the sandbox's /dev/null, which must be the null device itself:
			 * resolved in the root without following a final symlink, and checked to be the 1:3
			 * character device before it is bound, so that nothing put at /dev/null (a symlink
			 * or a file bound there) can send a writable file over the masked path
			 * (CVE-2025-31133). */
			char q[32];
			int nfd;
			if (resolve_in_root(c->root_fd, "/dev/null", 0, 0, &nfd) < 0) { e = errno; close(fd); errno = e; return -1; }
			struct stat ns;
			if (fstat(nfd, &ns) < 0 || !S_ISCHR(ns.st_mode) || major(ns.st_rdev) != 1 || minor(ns.st_rdev) != 3) {
				close(nfd);
				close(fd);
				errno = ENOTTY; /* the words the engine shows: "not the null device" */
				return -1;
			}
			fd_path(nfd, q);
			r = mount(q, p, NULL, MS_BIND, NULL);
			e = errno;
			close(nfd);
			close(fd);
			errno = e;
			return r;
		}
		if (op->kind == SBX_OP_MASK)
			r = mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=0555");
		else r = mount(p, p, NULL, MS_BIND | MS_REC, NULL);
		e = errno;
		close(fd);
		if (r < 0) { errno = e; return -1; }
		return op->kind == SBX_OP_READONLY ? remount(c->root_fd, s1, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC) : 0;
	}
	case SBX_OP_ROOT_READONLY:
		return mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | kept_flags("/"), NULL);
	case SBX_OP_WORKDIR:
		return make_workdir(c->root_fd, s1);
	case SBX_OP_DEV_MAKE:
		return make_node(c->root_fd, s1, op->mode, (uint64_t)op->a, (uint64_t)op->b);
	case SBX_OP_ROOT_PROPAGATION:
		/* After pivot_root: "/" is the new root, in the sandbox's own (private) mount tree. */
		return mount(NULL, "/", NULL, (unsigned long)op->a, NULL);
	default:
		errno = ENOSYS;
		return -1;
	}
}
