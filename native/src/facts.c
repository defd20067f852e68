/* sbx_proc_facts (sbx.h): what the attestation reads of a child that waits to exec, gathered in
 * one call on the CLI's thread (root on the host, or the user of a rootless sandbox). Only reads:
 * /proc/PID's files, its ns links and fd flags, and lstat through /proc/PID/root. Each file is
 * parsed here into the values the rules compare (numbers, the mount table's fields), so that the
 * CLI's JavaScript, which runs this once per start and mostly unoptimized, decodes a few fixed
 * records instead of splitting texts. The records' layout is sbx.h's; src/engine/attest-view.ts
 * decodes them and src/engine/attest.ts keeps every comparison. */
#include "internal.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* A whole /proc file, NUL-terminated, in *buf (grown from the caller's stack buffer to the heap
 * when it does not fit: a host's mount table or fib_trie); proc files report no size, so read to
 * EOF. Returns its length, or -errno. */
static ssize_t slurp(const char *path, char **buf, size_t *size, char *stack)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return -errno;
	size_t n = 0;
	for (;;) {
		if (n + 1 >= *size) {
			size_t bigger = *size * 2;
			char *p = *buf == stack ? malloc(bigger) : realloc(*buf, bigger);
			if (!p) { close(fd); return -ENOMEM; }
			if (*buf == stack) memcpy(p, stack, n);
			*buf = p;
			*size = bigger;
		}
		ssize_t r = read(fd, *buf + n, *size - n - 1);
		if (r < 0 && errno == EINTR) continue;
		if (r < 0) { int e = errno; close(fd); return -e; }
		if (r == 0) break;
		n += (size_t)r;
	}
	close(fd);
	(*buf)[n] = 0;
	return (ssize_t)n;
}

/* Each kind's parser: the file's text (NUL-terminated, writable) into the record's body. */
typedef void parse_fn(struct sink *s, char *text);

/* Fields of status by name: "Name:\tvalue". */
static const char *field(char *text, const char *name)
{
	size_t n = strlen(name);
	for (char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, name, n) && l[n] == ':') return l + n + 1;
	return NULL;
}

static int64_t num_field(char *text, const char *name, int base)
{
	const char *v = field(text, name);
	return v ? (int64_t)strtoll(v, NULL, base) : -1;
}

static uint64_t cap_field(char *text, const char *name)
{
	const char *v = field(text, name);
	return v ? (uint64_t)strtoull(v, NULL, 16) : UINT64_MAX;
}

static void parse_status(struct sink *s, char *text)
{
	struct sbx_fact_status st = {
		.uid = num_field(text, "Uid", 10), .gid = num_field(text, "Gid", 10), .umask = num_field(text, "Umask", 8),
		.no_new_privs = num_field(text, "NoNewPrivs", 10), .seccomp = num_field(text, "Seccomp", 10),
		.seccomp_filters = num_field(text, "Seccomp_filters", 10),
		.cap_inh = cap_field(text, "CapInh"), .cap_prm = cap_field(text, "CapPrm"), .cap_eff = cap_field(text, "CapEff"),
		.cap_bnd = cap_field(text, "CapBnd"), .cap_amb = cap_field(text, "CapAmb"),
	};
	/* The struct first; its ngroups is patched once the groups that follow it are counted. */
	uint32_t at = s->len;
	body(s, &st, sizeof st);
	for (const char *g = field(text, "Groups"); g;) {
		char *end;
		while (*g == ' ' || *g == '\t') g++;
		if (*g < '0' || *g > '9') break;  /* the line's end */
		unsigned long v = strtoul(g, &end, 10);
		uint32_t id = (uint32_t)v;
		body(s, &id, sizeof id);
		st.ngroups++;
		g = end;
	}
	if (at + sizeof st <= s->cap) memcpy(s->out + at + offsetof(struct sbx_fact_status, ngroups), &st.ngroups, sizeof st.ngroups);
}

/* The rows after the header: the name takes the first 26 columns, then soft and hard. */
static void parse_limits(struct sink *s, char *text)
{
	char *l = strchr(text, '\n');
	for (; l && l[1]; l = strchr(l + 1, '\n')) {
		const char *v = l + 1;
		if (strlen(v) < 26) break;
		v += 26;
		int64_t pair[2];
		for (int i = 0; i < 2; i++) {
			char *end;
			while (*v == ' ') v++;
			if (!strncmp(v, "unlimited", 9)) { pair[i] = -1; v += 9; continue; }
			pair[i] = strtoll(v, &end, 10);
			v = end;
		}
		body(s, pair, sizeof pair);
	}
}

static void parse_idmap(struct sink *s, char *text)
{
	for (char *v = text;;) {
		uint32_t row[3];
		char *end = v;
		for (int i = 0; i < 3; i++) {
			row[i] = (uint32_t)strtoul(v, &end, 10);
			if (end == v) return;
			v = end;
		}
		body(s, row, sizeof row);
	}
}

/* mountinfo escapes space, tab, newline and backslash as \NNN: undone in place. */
static size_t unescape(char *p)
{
	char *w = p;
	for (char *r = p; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = 0;
	return (size_t)(w - p);
}

static uint32_t mount_opts(char *opts)
{
	static const struct { const char *name; uint32_t bit; } known[] = {
		{ "ro", SBX_MNT_RO }, { "nosuid", SBX_MNT_NOSUID }, { "nodev", SBX_MNT_NODEV }, { "noexec", SBX_MNT_NOEXEC },
		{ "noatime", SBX_MNT_NOATIME }, { "nodiratime", SBX_MNT_NODIRATIME }, { "relatime", SBX_MNT_RELATIME },
	};
	uint32_t flags = 0;
	for (char *save, *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save))
		for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
			if (!strcmp(o, known[i].name)) flags |= known[i].bit;
	return flags;
}

/* "ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER" per line. */
static void parse_mount(struct sink *s, char *line)
{
	char *f[6], *save, *w = strtok_r(line, " ", &save);
	for (int i = 0; i < 6; i++, w = strtok_r(NULL, " ", &save)) { if (!w) return; f[i] = w; }
	struct sbx_fact_mount m = { .flags = mount_opts(f[5]) };
	for (; w && strcmp(w, "-"); w = strtok_r(NULL, " ", &save)) {
		if (!strncmp(w, "shared:", 7)) m.shared = (uint32_t)strtoul(w + 7, NULL, 10);
		else if (!strncmp(w, "master:", 7)) m.master = (uint32_t)strtoul(w + 7, NULL, 10);
		else if (!strcmp(w, "unbindable")) m.flags |= SBX_MNT_UNBINDABLE;
	}
	const char *fstype = w ? strtok_r(NULL, " ", &save) : NULL;
	if (!fstype) fstype = "";
	size_t point = unescape(f[4]), type = strlen(fstype);
	if (point > UINT16_MAX || type > UINT16_MAX) return;
	m.point_len = (uint16_t)point;
	m.fstype_len = (uint16_t)type;
	body(s, &m, sizeof m);
	body(s, f[4], point);
	body(s, fstype, type);
}

static void parse_mountinfo(struct sink *s, char *text)
{
	for (char *save, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) parse_mount(s, l);
}

static void parse_text(struct sink *s, char *text) { body(s, text, strlen(text)); }

/* net/dev: two header lines, then "  NAME: counters" per interface. */
static void parse_net_dev(struct sink *s, char *text)
{
	char *l = text;
	for (int i = 0; i < 2 && l; i++) l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL;
	for (char *save, *line = l ? strtok_r(l, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':');
		if (!colon) continue;
		while (*line == ' ') line++;
		char *end = colon;
		while (end > line && end[-1] == ' ') end--;
		if (end > line) { body(s, line, (size_t)(end - line)); body(s, "", 1); }
	}
}

/* A hex word of net/route: the address in network order, as this host reads it. */
static void addr_bytes(const char *hex, uint8_t out[4])
{
	uint32_t v = (uint32_t)strtoul(hex, NULL, 16);
	for (int i = 0; i < 4; i++) out[i] = (uint8_t)(v >> (8 * i));
}

/* net/route: a header line, then "IFACE\tDESTINATION\tGATEWAY\t..." per route. */
static void parse_net_route(struct sink *s, char *text)
{
	char *l = strchr(text, '\n');
	for (char *save, *line = l ? strtok_r(l + 1, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		char *f[3], *fsave, *w = strtok_r(line, " \t", &fsave);
		int n = 0;
		for (; w && n < 3; w = strtok_r(NULL, " \t", &fsave)) f[n++] = w;
		if (n < 3 || strlen(f[0]) >= 16) continue;
		struct sbx_fact_route r = { 0 };
		memcpy(r.iface, f[0], strlen(f[0]));
		addr_bytes(f[1], r.destination);
		addr_bytes(f[2], r.gateway);
		body(s, &r, sizeof r);
	}
}

/* net/fib_trie: each local address is a "/32 host LOCAL" leaf under the line that names it
 * ("  |-- 127.0.0.1"); the local table and main table both list it: once each. */
static void parse_fib_trie(struct sink *s, char *text)
{
	uint8_t seen[64][4];
	int nseen = 0;
	char *prev = NULL;
	for (char *save, *l = strtok_r(text, "\n", &save); l; prev = l, l = strtok_r(NULL, "\n", &save)) {
		if (!prev || !strstr(l, "/32 host LOCAL")) continue;
		char *end = prev + strlen(prev);
		while (end > prev && (end[-1] == ' ' || end[-1] == '\t')) end--;
		*end = 0;
		char *start = end;
		while (start > prev && ((start[-1] >= '0' && start[-1] <= '9') || start[-1] == '.')) start--;
		struct in_addr a;
		if (inet_pton(AF_INET, start, &a) != 1) continue;
		int dup = 0;
		for (int i = 0; i < nseen; i++) dup |= !memcmp(seen[i], &a, 4);
		if (dup) continue;
		if (nseen < 64) memcpy(seen[nseen++], &a, 4);
		body(s, &a, 4);
	}
}

static void file_fact(struct sink *s, uint32_t kind, const char *path, parse_fn *parse)
{
	char stack[16384], *buf = stack;
	size_t size = sizeof stack;
	ssize_t n = slurp(path, &buf, &size, stack);
	if (n < 0) { finish(s, head(s, kind, (int32_t)n)); return; }
	uint32_t at = head(s, kind, 0);
	parse(s, buf);
	finish(s, at);
	if (buf != stack) free(buf);
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

/* Each open fd above 2 whose fdinfo flags lack O_CLOEXEC (an fd that closed meanwhile is left
 * out): 0-2 are the command's stdio, and every other must close at exec. */
static void fds_fact(struct sink *s, const char *proc)
{
	char dir[64], buf[512];
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
		char *end;
		long fdn = strtol(e->d_name, &end, 10);
		if (*end || fdn <= 2) continue;
		int fd = openat(info, e->d_name, O_RDONLY | O_CLOEXEC);
		if (fd < 0) continue;
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n <= 0) continue;
		buf[n] = 0;
		char *f = strstr(buf, "flags:");
		if (!f) continue;
		unsigned long flags = strtoul(f + 6, &end, 8);
		if (end == f + 6) continue;
		if (!(flags & O_CLOEXEC)) { int32_t v = (int32_t)fdn; body(s, &v, sizeof v); }
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

SBX_API int sbx_proc_facts(int32_t pid, uint32_t want, const char *paths, uint8_t *out, uint32_t cap, uint32_t *len, struct sbx_error *err)
{
	if (pid <= 0 || !out || !len) return sbx_fail(err, EINVAL, "sbx_proc_facts: a pid and an output buffer");
	struct sink s = { .out = out, .cap = cap, .len = 0 };
	char proc[32], path[64];
	snprintf(proc, sizeof proc, "/proc/%d", pid);
	static const struct { uint32_t kind; const char *file; parse_fn *parse; } files[] = {
		{ SBX_FACT_STATUS, "status", parse_status }, { SBX_FACT_LIMITS, "limits", parse_limits },
		{ SBX_FACT_UID_MAP, "uid_map", parse_idmap }, { SBX_FACT_GID_MAP, "gid_map", parse_idmap },
		{ SBX_FACT_MOUNTINFO, "mountinfo", parse_mountinfo }, { SBX_FACT_CGROUP, "cgroup", parse_text },
		{ SBX_FACT_NET_DEV, "net/dev", parse_net_dev }, { SBX_FACT_NET_ROUTE, "net/route", parse_net_route },
		{ SBX_FACT_FIB_TRIE, "net/fib_trie", parse_fib_trie },
	};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		if (!(want & (1u << files[i].kind))) continue;
		snprintf(path, sizeof path, "%s/%s", proc, files[i].file);
		file_fact(&s, files[i].kind, path, files[i].parse);
	}
	if (want & (1u << SBX_FACT_NS)) ns_fact(&s, proc);
	if (want & (1u << SBX_FACT_FDS)) fds_fact(&s, proc);
	if (want & (1u << SBX_FACT_ROOT)) root_fact(&s, proc);
	for (const char *p = paths; p && *p; p += strlen(p) + 1) path_fact(&s, proc, p);
	*len = s.len;
	if (s.len > cap) return sbx_fail(err, ERANGE, "sbx_proc_facts: the output buffer is too small");
	return 0;
}
