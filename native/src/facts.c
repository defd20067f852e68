/* sbx_proc_facts (sbx.h): what the attestation reads of a child that waits to exec, gathered in
 * one call on the CLI's thread (root on the host, or the user of a rootless sandbox). Only reads:
 * /proc/PID's files, its ns links and fd flags, and lstat through /proc/PID/root. The records'
 * layout is sbx.h's; src/engine/attest.ts decodes them and keeps every comparison. */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

struct sink {
	uint8_t *out;
	uint32_t cap;
	uint32_t len;   /* bytes written, or that would have been */
};

/* Room for n more bytes; past the end only counts (the caller then asks again with more). */
static uint8_t *room(struct sink *s, uint32_t n)
{
	uint8_t *p = s->len + (uint64_t)n <= s->cap ? s->out + s->len : NULL;
	s->len += n;
	return p;
}

static void put32(struct sink *s, uint32_t v)
{
	uint8_t *p = room(s, 4);
	if (p) memcpy(p, &v, 4);
}

/* A record's head; its length is patched once the body is written. Returns where the length is. */
static uint32_t head(struct sink *s, uint32_t kind, int32_t result)
{
	put32(s, kind);
	put32(s, (uint32_t)result);
	uint32_t at = s->len;
	put32(s, 0);
	return at;
}

static void finish(struct sink *s, uint32_t at)
{
	uint32_t n = s->len - at - 4;
	if (at + 4 <= s->cap) memcpy(s->out + at, &n, 4);
}

static void body(struct sink *s, const void *data, size_t n)
{
	uint8_t *p = room(s, (uint32_t)n);
	if (p) memcpy(p, data, n);
}

/* A whole file (proc files report no size: read to EOF). */
static void file_fact(struct sink *s, uint32_t kind, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) { finish(s, head(s, kind, -errno)); return; }
	uint32_t at = head(s, kind, 0);
	char buf[8192];
	int e = 0;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0) e = errno;
		if (n <= 0) break;
		body(s, buf, (size_t)n);
	}
	close(fd);
	finish(s, at);
	/* A read that failed midway: the fact is unread, as a failed open. */
	int32_t r = -e;
	if (e && at >= 4 && at <= s->cap) memcpy(s->out + at - 4, &r, 4);
}

static void ns_fact(struct sink *s, const char *proc)
{
	char dir[64], link[PATH_MAX], line[PATH_MAX + 64];
	snprintf(dir, sizeof dir, "%s/ns", proc);
	DIR *d = opendir(dir);
	if (!d) { finish(s, head(s, SBX_FACT_NS, -errno)); return; }
	uint32_t at = head(s, SBX_FACT_NS, 0);
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.') continue;
		ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
		if (n < 0) continue;  /* gone */
		link[n] = 0;
		int k = snprintf(line, sizeof line, "%s %s\n", e->d_name, link);
		if (k > 0 && (size_t)k < sizeof line) body(s, line, (size_t)k);
	}
	closedir(d);
	finish(s, at);
}

/* Each open fd and the flags its fdinfo shows (an fd that closed meanwhile is left out). */
static void fds_fact(struct sink *s, const char *proc)
{
	char dir[64], buf[512], line[320];
	snprintf(dir, sizeof dir, "%s/fdinfo", proc);
	int info = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	snprintf(dir, sizeof dir, "%s/fd", proc);
	DIR *d = info < 0 ? NULL : opendir(dir);
	if (!d) {
		int e = errno;
		if (info >= 0) close(info);
		finish(s, head(s, SBX_FACT_FDS, -e));
		return;
	}
	uint32_t at = head(s, SBX_FACT_FDS, 0);
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.') continue;
		int fd = openat(info, e->d_name, O_RDONLY | O_CLOEXEC);
		if (fd < 0) continue;
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n <= 0) continue;
		buf[n] = 0;
		char *f = strstr(buf, "flags:");
		if (!f) continue;
		f += 6;
		while (*f == ' ' || *f == '\t') f++;
		size_t digits = strspn(f, "01234567");
		if (!digits || digits > 24) continue;
		int k = snprintf(line, sizeof line, "%s %.*s\n", e->d_name, (int)digits, f);
		if (k > 0 && (size_t)k < sizeof line) body(s, line, (size_t)k);
	}
	closedir(d);
	close(info);
	finish(s, at);
}

static void root_fact(struct sink *s, const char *proc)
{
	char path[64];
	struct stat a, b;
	snprintf(path, sizeof path, "%s/root/", proc);
	if (stat(path, &a) < 0 || stat("/", &b) < 0) { finish(s, head(s, SBX_FACT_ROOT, -errno)); return; }
	finish(s, head(s, SBX_FACT_ROOT, a.st_dev == b.st_dev && a.st_ino == b.st_ino));
}

/* What a path inside the sandbox is, through /proc/PID/root, as lstat says. */
static void path_fact(struct sink *s, const char *proc, const char *p)
{
	char full[PATH_MAX], text[PATH_MAX + 1];
	struct stat st;
	int k = snprintf(full, sizeof full, "%s/root/%s", proc, p[0] == '/' ? p + 1 : p);
	if (k < 0 || (size_t)k >= sizeof full) { finish(s, head(s, SBX_FACT_PATH, -ENAMETOOLONG)); return; }
	if (lstat(full, &st) < 0) { finish(s, head(s, SBX_FACT_PATH, -errno)); return; }
	size_t n = 1;
	if (S_ISLNK(st.st_mode)) {
		ssize_t r = readlink(full, text + 1, sizeof text - 2);
		if (r < 0) { finish(s, head(s, SBX_FACT_PATH, -errno)); return; }
		text[0] = 'l';
		n = 1 + (size_t)r;
	} else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
		text[0] = S_ISCHR(st.st_mode) ? 'c' : 'b';
		n = 1 + (size_t)snprintf(text + 1, sizeof text - 1, "%llu", (unsigned long long)st.st_rdev);
	} else {
		text[0] = S_ISDIR(st.st_mode) ? 'd' : S_ISREG(st.st_mode) ? 'f' : 'o';
	}
	uint32_t at = head(s, SBX_FACT_PATH, 0);
	body(s, text, n);
	finish(s, at);
}

SBX_API int sbx_proc_facts(int32_t pid, const char *paths, uint8_t *out, uint32_t cap, uint32_t *len, struct sbx_error *err)
{
	if (pid <= 0 || !out || !len) return sbx_fail(err, EINVAL, "sbx_proc_facts: a pid and an output buffer");
	struct sink s = { .out = out, .cap = cap, .len = 0 };
	char proc[32], path[64];
	snprintf(proc, sizeof proc, "/proc/%d", pid);
	static const struct { uint32_t kind; const char *file; } files[] = {
		{ SBX_FACT_STATUS, "status" }, { SBX_FACT_LIMITS, "limits" }, { SBX_FACT_UID_MAP, "uid_map" },
		{ SBX_FACT_GID_MAP, "gid_map" }, { SBX_FACT_MOUNTINFO, "mountinfo" }, { SBX_FACT_CGROUP, "cgroup" },
		{ SBX_FACT_NET_DEV, "net/dev" }, { SBX_FACT_NET_ROUTE, "net/route" }, { SBX_FACT_FIB_TRIE, "net/fib_trie" },
	};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", proc, files[i].file);
		file_fact(&s, files[i].kind, path);
	}
	ns_fact(&s, proc);
	fds_fact(&s, proc);
	root_fact(&s, proc);
	for (const char *p = paths; p && *p; p += strlen(p) + 1) path_fact(&s, proc, p);
	*len = s.len;
	if (s.len > cap) return sbx_fail(err, ERANGE, "sbx_proc_facts: the output buffer is too small");
	return 0;
}
