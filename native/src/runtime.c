/* sbx-runtime: what the `sandbox-runtime` command runs (bin/sandbox-runtime links here). runc's
 * command line, run as root by containerd's shim, conmon or the runtime-tools, one short process
 * per call. Starting Node costs more than runc's whole call, so the hot commands on a container
 * that exists are served here, in C, from the files that `create` (src/runtime/main.ts, in Node)
 * wrote: start, state, kill (--all), delete (--force) and ps --format json. Everything else (create,
 * run, exec, ps's table, pause, resume, update, list, features, --version, any flag or state this
 * file does not know)
 * execs Node with bin/sandbox-runtime.js and the same arguments, so its behaviour is the TS one.
 * A case is sent to Node before anything is changed, never half-way.
 *
 * The files read (their format is written by src/runtime/main.ts, whose comment on Record_
 * documents it; test/integration/runtime-native.test.ts checks that both sides agree):
 *   ROOT/ID/state.json  the runtime's record: JSON.stringify of Record_ (one line, compact)
 *   ROOT/ID/exec.fifo   the fifo the created process waits on before its exec (start writes it)
 *   /run/sandbox/NAME/  the sandbox's host state (src/host/state.ts): undo.jsonl (src/host/undo.ts),
 *                       state.json, owner; /run/sandbox/.NAME.lock (src/host/lock.ts)
 * delete replays the undo kinds state.remove, cgroup.remove and path.placeholder.remove as
 * src/host/teardown.ts does; a list with any other kind (a network, an upper layer, a volume) or a
 * poststart/poststop hook goes to Node.
 *
 * Errors follow libsbx's convention (fail.c): a function returns 0 or -1 and fills struct
 * sbx_error; main prints it as runc does (stderr, and a line on --log) and exits 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "node-exec.h"

#ifndef SBX_NODE
#define SBX_NODE "node"
#endif

/* What a command does when this file cannot serve it: Node does, with the same arguments. */
#define TO_NODE 1

static const char *STATE_ROOT = "/run/sandbox";

/* The files of a sandbox's state folder, as src/host/state.ts's STATE_FILES (a unit test compares
 * the two lists): removeState unlinks only these, and leaves a folder holding anything else. */
static const char *const STATE_FILES[] = {
	"owner", "state.json", "plan.json", "ip", "hosts", "resolv.conf", "log", "exit", ".exit.tmp",
	"pid", ".pid.tmp", "stopping",
	"sessions",
	"usernet.json", ".usernet.json.tmp", "netns", "pasta.pid", "slirp4netns.sock", "slirp4netns.log",
	"egress.json", ".egress.json.tmp", "egress.policy", "egress.log", "egress.status", "egress.status.tmp", "denials.jsonl", "denials.1.jsonl",
	"undo.jsonl", ".undo.jsonl.tmp",
	NULL,
};

struct globals {
	const char *root;
	const char *log;
	int json;
};

static char **node_argv;   /* this process's arguments, for Node */

static int fail(struct sbx_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct sbx_error *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	err->err = 0;
	err->step = -1;
	return -1;
}

/* ---- Node, for what is not served here ---- */

static void to_node(void) __attribute__((noreturn));
static void to_node(void)
{
	/* Node reads and parses the CA file NODE_EXTRA_CA_CERTS names at every start (~40 ms measured
	 * with Debian's bundle); the runtime's Node side opens no TLS connection (a bundle's root is a
	 * local folder; hooks and the container get only config.json's env), so it goes without. */
	unsetenv("NODE_EXTRA_CA_CERTS");
	exec_node("sandbox-runtime", "bin/sandbox-runtime.js", node_argv);
	exit(1);
}

/* ---- files ---- */

/* The whole file, NUL-terminated, in a malloc'd buffer; NULL with errno set. */
static char *slurp(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return NULL;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	for (ssize_t r; buf; len += r) {
		if (len + 1 >= cap) { char *b = realloc(buf, cap *= 2); if (!b) { free(buf); buf = NULL; break; } buf = b; }
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR) { r = 0; continue; }
		if (r < 0) { int e = errno; free(buf); close(fd); errno = e; return NULL; }
		if (r == 0) break;
	}
	close(fd);
	if (!buf) { errno = ENOMEM; return NULL; }
	buf[len] = 0;
	return buf;
}

/* A small file (one read) into buf, NUL-terminated: its length, or -1 when it cannot be read. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return -1;
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	if (n >= 0) buf[n] = 0;
	return n;
}

/* A small file's first line, trimmed, into buf; -1 when it cannot be read. */
static int read_line(const char *path, char *buf, size_t cap)
{
	ssize_t n = read_small(path, buf, cap);
	if (n < 0) return -1;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = 0;
	return 0;
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) return -1;
	ssize_t n = write(fd, s, strlen(s));
	int e = errno;
	close(fd);
	errno = e;
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

static void sleep_ms(int ms) { struct timespec t = { 0, ms * 1000000L }; nanosleep(&t, NULL); }

/* libsbx's monotonic clock (util.o), in milliseconds. */
static double now_ms(void) { return now_ns() / 1e6; }

/* ---- JSON: just what the records need. Values are found as spans of the text (raw), so that a
 * string written by JSON.stringify is printed again exactly as JSON.stringify prints it. ---- */

static const char *ws(const char *p) { while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++; return p; }

static const char *skip_string(const char *p)
{
	for (p++; *p; p++) {
		if (*p == '\\') { if (!*++p) return NULL; }
		else if (*p == '"') return p + 1;
	}
	return NULL;
}

/* The end of the value at p, or NULL when the text is cut. */
static const char *skip_value(const char *p)
{
	p = ws(p);
	if (*p == '"') return skip_string(p);
	if (*p == '{' || *p == '[') {
		for (int depth = 0; *p;) {
			if (*p == '"') { if (!(p = skip_string(p))) return NULL; continue; }
			if (*p == '{' || *p == '[') depth++;
			else if ((*p == '}' || *p == ']') && --depth == 0) return p + 1;
			p++;
		}
		return NULL;
	}
	const char *s = p;
	while (*p && !strchr(",}] \n\r\t", *p)) p++;
	return p > s ? p : NULL;
}

/* The value of key in the object at obj, as [*v, *e); -1 when it has none. */
static int member(const char *obj, const char *key, const char **v, const char **e)
{
	const char *p = ws(obj);
	size_t kl = strlen(key);
	if (*p != '{') return -1;
	for (p = ws(p + 1); *p == '"';) {
		const char *ke = skip_string(p);
		if (!ke) return -1;
		int match = (size_t)(ke - p - 2) == kl && !memcmp(p + 1, key, kl);
		p = ws(ke);
		if (*p != ':') return -1;
		p = ws(p + 1);
		const char *ve = skip_value(p);
		if (!ve) return -1;
		if (match) { *v = p; *e = ve; return 0; }
		p = ws(ve);
		if (*p != ',') break;
		p = ws(p + 1);
	}
	return -1;
}

/* A string member, unescaped into buf: 0; -1 when absent; -2 when it is not a string this file
 * reads (\u escapes, too long): the caller hands the command to Node. */
static int member_str(const char *obj, const char *key, char *buf, size_t cap)
{
	const char *v, *e;
	if (member(obj, key, &v, &e) < 0) return -1;
	if (*v != '"') return -2;
	size_t n = 0;
	for (const char *p = v + 1; p < e - 1; p++) {
		char c = *p;
		if (c == '\\') {
			switch (*++p) {
			case '"': case '\\': case '/': c = *p; break;
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			default: return -2;
			}
		}
		if (n + 1 >= cap) return -2;
		buf[n++] = c;
	}
	buf[n] = 0;
	return 0;
}

/* Whether the array member is absent or empty ([]). */
static int member_empty(const char *obj, const char *key)
{
	const char *v, *e;
	if (member(obj, key, &v, &e) < 0) return 1;
	return *v == '[' && *ws(v + 1) == ']';
}

/* s as a JSON string, into out (what JSON.stringify gives for the texts of this file). */
static void json_quote(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = *s;
		if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
		else if (c == '\n') fputs("\\n", out);
		else if (c == '\t') fputs("\\t", out);
		else if (c == '\r') fputs("\\r", out);
		else if (c < 0x20) fprintf(out, "\\u%04x", c);
		else fputc(c, out);
	}
	fputc('"', out);
}

/* ---- the runtime's record (ROOT/ID/state.json) ---- */

struct record {
	char *text;                          /* the file */
	char dir[PATH_MAX];                  /* ROOT/ID */
	const char *raw[5][2];               /* id, bundle, rootfs, created, annotations: spans of text */
	long pid;
	char start_time[32];                 /* /proc/PID/stat's 22nd field at create */
	char sandbox[256];                   /* the sandbox's name under /run/sandbox */
	int started;
	char freezer[PATH_MAX];              /* freezer.state or cgroup.freeze; "" for none */
	int hooks;                           /* poststart or poststop hooks to run: Node runs them */
};
enum { R_ID, R_BUNDLE, R_ROOTFS, R_CREATED, R_ANNOTATIONS };

static int valid_id(const char *id)
{
	size_t n = strlen(id);
	if (!n || n > 1024 || !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", id[0])) return 0;
	return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+.-") == n;
}

/* 0; -1 (err) when the container does not exist; TO_NODE when the record is not one this file reads. */
static int read_record(const struct globals *g, const char *id, struct record *r, struct sbx_error *err)
{
	static const char *const raw_keys[] = { "id", "bundle", "rootfs", "created", "annotations" };
	char path[PATH_MAX + 16];
	if (!valid_id(id)) return TO_NODE;
	memset(r, 0, sizeof *r);
	snprintf(r->dir, sizeof r->dir, "%s/%s", g->root, id);
	snprintf(path, sizeof path, "%s/state.json", r->dir);
	if (!(r->text = slurp(path))) return fail(err, "container %s does not exist", id);
	for (int i = 0; i < 5; i++)
		if (member(r->text, raw_keys[i], &r->raw[i][0], &r->raw[i][1]) < 0) return TO_NODE;
	const char *v, *e;
	if (*r->raw[R_ANNOTATIONS][0] != '{') return TO_NODE;
	if (member(r->text, "pid", &v, &e) < 0) return TO_NODE;
	r->pid = strtol(v, NULL, 10);
	if (member(r->text, "started", &v, &e) < 0) return TO_NODE;
	r->started = !strncmp(v, "true", 4);
	if (member_str(r->text, "startTime", r->start_time, sizeof r->start_time) < 0) return TO_NODE;
	if (member_str(r->text, "sandbox", r->sandbox, sizeof r->sandbox) < 0 || !r->sandbox[0] || strchr(r->sandbox, '/')) return TO_NODE;
	int f = member_str(r->text, "freezer", r->freezer, sizeof r->freezer);
	if (f == -2) return TO_NODE;
	if (member(r->text, "hooks", &v, &e) == 0) r->hooks = !member_empty(v, "poststart") || !member_empty(v, "poststop");
	return 0;
}

/* /proc/PID/stat's state letter and start time; -1 once the process is gone. */
static int proc_stat(long pid, char *state, char *start, size_t cap)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	if (read_small(path, buf, sizeof buf) <= 0) return -1;
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ') return -1;
	p += 2;
	*state = *p;
	for (int field = 0; field < 19; field++) { p = strchr(p, ' '); if (!p) return -1; p++; }
	size_t len = strcspn(p, " ");
	if (len >= cap) return -1;
	memcpy(start, p, len);
	start[len] = 0;
	return 0;
}

static int is_frozen(const char *file)
{
	char t[32];
	if (!file[0] || read_line(file, t, sizeof t) < 0) return 0;
	return !strcmp(t, "1") || !strcmp(t, "FROZEN") || !strcmp(t, "FREEZING");
}

/* As main.ts's statusOf: from the process itself, alive with the start time recorded at create. */
static const char *status_of(const struct record *r)
{
	char state, start[32];
	if (r->pid <= 0 || proc_stat(r->pid, &state, start, sizeof start) < 0 || state == 'Z' || state == 'X' || strcmp(start, r->start_time))
		return "stopped";
	if (is_frozen(r->freezer)) return "paused";
	return r->started ? "running" : "created";
}

static void print_raw(FILE *out, const char *const span[2]) { fwrite(span[0], 1, span[1] - span[0], out); }

/* state: main.ts's stateJson, byte for byte (JSON.stringify with two spaces). */
static int cmd_state(const struct globals *g, const char *id, struct sbx_error *err)
{
	struct record r;
	int rc = read_record(g, id, &r, err);
	if (rc) return rc;
	/* The annotations' values must be strings to be copied as they are; else Node prints them. */
	const char *a = ws(r.raw[R_ANNOTATIONS][0] + 1);
	for (const char *p = a; *p == '"';) {
		const char *ke = skip_string(p), *v = ke ? ws(ws(ke) + 1) : NULL;
		if (!v || *v != '"') return TO_NODE;
		p = ws(skip_string(v));
		if (*p == ',') p = ws(p + 1);
	}
	const char *status = status_of(&r);
	FILE *o = stdout;
	fputs("{\n  \"ociVersion\": \"1.2.0\",\n  \"id\": ", o);
	print_raw(o, r.raw[R_ID]);
	fprintf(o, ",\n  \"pid\": %ld,\n  \"status\": \"%s\",\n  \"bundle\": ", strcmp(status, "stopped") ? r.pid : 0, status);
	print_raw(o, r.raw[R_BUNDLE]);
	fputs(",\n  \"rootfs\": ", o);
	print_raw(o, r.raw[R_ROOTFS]);
	fputs(",\n  \"created\": ", o);
	print_raw(o, r.raw[R_CREATED]);
	fputs(",\n  \"owner\": \"\"", o);
	if (*a == '"') {
		fputs(",\n  \"annotations\": {", o);
		for (const char *p = a; *p == '"';) {
			const char *ke = skip_string(p), *v = ws(ws(ke) + 1), *ve = skip_string(v);
			fputs("\n    ", o);
			fwrite(p, 1, ke - p, o);
			fputs(": ", o);
			fwrite(v, 1, ve - v, o);
			p = ws(ve);
			if (*p == ',') { fputc(',', o); p = ws(p + 1); }
		}
		fputs("\n  }", o);
	}
	fputs("\n}\n", o);
	return fflush(o) == 0 ? 0 : sbx_fail(err, errno, "write state");
}

/* start: the byte the created process waits for on the fifo; it then execs its command. */
static int cmd_start(const struct globals *g, const char *id, struct sbx_error *err)
{
	struct record r;
	char path[PATH_MAX + 16], tmp[PATH_MAX + 16];
	int rc = read_record(g, id, &r, err);
	if (rc) return rc;
	if (r.hooks) return TO_NODE;
	const char *status = status_of(&r);
	if (!strcmp(status, "stopped")) return fail(err, "cannot start a container that has stopped");
	if (!strcmp(status, "running")) return fail(err, "cannot start an already running container");
	/* The record says started: "started":false, as JSON.stringify wrote it, becomes true. */
	const char *v, *e;
	if (member(r.text, "started", &v, &e) < 0 || strncmp(v, "false", 5)) return TO_NODE;
	/* Non-blocking: with no reader (the process is gone) the open fails at once (ENXIO). */
	snprintf(path, sizeof path, "%s/exec.fifo", r.dir);
	int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) return fail(err, "cannot start a container that has stopped");
	ssize_t n = write(fd, "0", 1);
	int we = errno;
	close(fd);
	if (n != 1) return sbx_fail(err, we, "write exec.fifo");
	snprintf(path, sizeof path, "%s/state.json", r.dir);
	snprintf(tmp, sizeof tmp, "%s/.state.json.tmp", r.dir);
	FILE *f = fopen(tmp, "we");
	if (!f) return sbx_fail(err, errno, "write state.json");
	fwrite(r.text, 1, v - r.text, f);
	fputs("true", f);
	fputs(e, f);
	if (fclose(f) != 0 || rename(tmp, path) < 0) { int x = errno; unlink(tmp); return sbx_fail(err, x, "write state.json"); }
	return 0;
}

/* ---- signals ---- */

static const struct { const char *name; int n; } SIGNALS[] = {
	{ "HUP", 1 }, { "INT", 2 }, { "QUIT", 3 }, { "ILL", 4 }, { "TRAP", 5 }, { "ABRT", 6 }, { "IOT", 6 }, { "BUS", 7 },
	{ "FPE", 8 }, { "KILL", 9 }, { "USR1", 10 }, { "SEGV", 11 }, { "USR2", 12 }, { "PIPE", 13 }, { "ALRM", 14 },
	{ "TERM", 15 }, { "STKFLT", 16 }, { "CHLD", 17 }, { "CONT", 18 }, { "STOP", 19 }, { "TSTP", 20 }, { "TTIN", 21 },
	{ "TTOU", 22 }, { "URG", 23 }, { "XCPU", 24 }, { "XFSZ", 25 }, { "VTALRM", 26 }, { "PROF", 27 }, { "WINCH", 28 },
	{ "IO", 29 }, { "POLL", 29 }, { "PWR", 30 }, { "SYS", 31 },
};

/* A signal as main.ts's parseSignal reads it; -1 for one it does not know (Node says why). */
static int parse_signal(const char *s)
{
	char up[32];
	size_t i = 0;
	if (s[0] >= '0' && s[0] <= '9' && strspn(s, "0123456789") == strlen(s)) {
		long n = strlen(s) < 4 ? strtol(s, NULL, 10) : 0;
		return n >= 1 && n <= 64 ? (int)n : -1;
	}
	for (; s[i] && i < sizeof up - 1; i++) up[i] = s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i];
	up[i] = 0;
	const char *name = strncmp(up, "SIG", 3) ? up : up + 3;
	for (size_t k = 0; k < sizeof SIGNALS / sizeof *SIGNALS; k++) if (!strcmp(name, SIGNALS[k].name)) return SIGNALS[k].n;
	if (!strcmp(name, "RTMIN")) return 34;
	if (!strncmp(name, "RTMIN+", 6) && name[6] && strspn(name + 6, "0123456789") == strlen(name + 6) && strlen(name + 6) < 3) {
		int n = 34 + atoi(name + 6);
		return n <= 64 ? n : -1;
	}
	return -1;
}

/* ---- the sandbox's host state (/run/sandbox/NAME) ---- */

enum undo_kind { U_STATE, U_CGROUP, U_PLACEHOLDER };
struct undo {
	enum undo_kind kind;
	char path[PATH_MAX];
	char keep[PATH_MAX];      /* cgroup.remove: the level kept with all above it; "" for none */
	int dir;                  /* path.placeholder.remove: a folder (else a file) */
};
#define MAX_UNDO 64

/* The undo list of a sandbox's folder (undo.jsonl, oldest first) into u: the count, or -1 when it
 * holds a kind this file does not replay (Node does). A line cut short is skipped, as readUndo does. */
static int read_undo(const char *dir, struct undo *u, int cap)
{
	char path[PATH_MAX + 16], kind[64], type[16];
	snprintf(path, sizeof path, "%s/undo.jsonl", dir);
	char *text = slurp(path);
	int n = 0;
	if (!text) return 0;
	for (char *line = text, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next) *next++ = 0;
		const char *args, *e;
		if (!*line || !skip_value(line) || *ws(skip_value(line))) continue;
		if (n == cap || member_str(line, "kind", kind, sizeof kind) < 0 || member(line, "args", &args, &e) < 0) goto node;
		memset(&u[n], 0, sizeof u[n]);
		if (!strcmp(kind, "state.remove")) u[n].kind = U_STATE;
		else if (!strcmp(kind, "cgroup.remove")) u[n].kind = U_CGROUP;
		else if (!strcmp(kind, "path.placeholder.remove")) u[n].kind = U_PLACEHOLDER;
		else goto node;
		int p = member_str(args, "path", u[n].path, sizeof u[n].path);
		if (p == -2 || member_str(args, "keep", u[n].keep, sizeof u[n].keep) == -2) goto node;
		if (p == -1) continue;  /* nothing to revert by (undoOne) */
		if (u[n].kind == U_PLACEHOLDER) {
			if (member_str(args, "type", type, sizeof type) < 0) goto node;
			u[n].dir = !strcmp(type, "dir");
		}
		n++;
	}
	free(text);
	return n;
node:
	free(text);
	return -1;
}

/* The folders of a cgroup path: one per mounted hierarchy (v1 controllers, or the unified one),
 * NUL-separated in out, as Cgroup.dirs(); those where the path is not are skipped by the callers. */
static int cgroup_dirs(const char *path, char *out, size_t cap)
{
	char *info = slurp("/proc/self/mountinfo");
	size_t len = 0;
	int n = 0;
	if (!info) return 0;
	for (char *line = strtok(info, "\n"); line; line = strtok(NULL, "\n")) {
		char *dash = strstr(line, " - ");
		if (!dash || (strncmp(dash + 3, "cgroup ", 7) && strncmp(dash + 3, "cgroup2 ", 8))) continue;
		char *f = line;
		for (int field = 0; field < 4 && f; field++) f = strchr(f, ' '), f = f ? f + 1 : NULL;
		if (!f) continue;
		size_t ml = strcspn(f, " ");
		int w = snprintf(out + len, cap - len, "%.*s/%s", (int)ml, f, path);
		if (w < 0 || (size_t)w + 1 >= cap - len) break;
		len += w + 1;
		n++;
	}
	free(info);
	out[len] = 0;
	return n;
}

/* Processes in the cgroup now (every hierarchy's cgroup.procs), at most cap. */
static int cgroup_pids(const char *dirs, long *pids, int cap)
{
	char path[PATH_MAX + 16];
	int n = 0;
	for (const char *d = dirs; *d; d += strlen(d) + 1) {
		snprintf(path, sizeof path, "%s/cgroup.procs", d);
		char *t = slurp(path);
		if (!t) continue;
		for (char *p = t, *end; *p; p = end) {
			long pid = strtol(p, &end, 10);
			if (end == p) break;
			int seen = 0;
			for (int i = 0; i < n; i++) seen |= pids[i] == pid;
			if (!seen && n < cap) pids[n++] = pid;
		}
		free(t);
	}
	return n;
}

/* cgroup.remove, as teardown.ts's removeCgroup: each folder (the kernel refuses while a process
 * is still leaving: retried for a second), then its emptied parents down to the kept level. */
static int remove_cgroup(const struct undo *u, struct sbx_error *err)
{
	char dirs[8192];
	size_t keep = strlen(u->keep);
	if (keep && (strncmp(u->path, u->keep, keep) || u->path[keep] != '/')) keep = 0;
	cgroup_dirs(u->path, dirs, sizeof dirs);
	for (char *d = dirs; *d; d += strlen(d) + 1) {
		char p[sizeof dirs];
		for (int i = 0; rmdir(d) < 0; i++) {
			if (errno == ENOENT) goto next;
			if (errno != EBUSY || i > 200) return sbx_fail(err, errno, d);
			sleep_ms(5);
		}
		/* The shared parents (sandbox/) go too once no other sandbox uses them. */
		snprintf(p, sizeof p, "%s", d);
		size_t floor = strlen(d) - strlen(u->path) + keep;
		for (char *s; (s = strrchr(p, '/')) && (size_t)(s - p) > floor;) {
			*s = 0;
			if (rmdir(p) < 0) break;
		}
next:;
	}
	return 0;
}

static void remove_state(const char *dir)
{
	char path[PATH_MAX + 64];
	for (int i = 0; STATE_FILES[i]; i++) { snprintf(path, sizeof path, "%s/%s", dir, STATE_FILES[i]); unlink(path); }
	snprintf(path, sizeof path, "%s/root", dir);
	rmdir(path);
	rmdir(dir);
}

static void remove_placeholder(const struct undo *u)
{
	struct stat st;
	if (lstat(u->path, &st) < 0) return;
	if (!u->dir && S_ISREG(st.st_mode) && st.st_size == 0) unlink(u->path);
	else if (u->dir && S_ISDIR(st.st_mode)) rmdir(u->path);
}

/* lock.ts's owner line of a process: "PID STARTTIME". */
static int owner_alive(const char *file)
{
	char line[64], state, start[32];
	long pid;
	if (read_line(file, line, sizeof line) < 0 || !line[0]) return 0;
	char *sp = strchr(line, ' ');
	if (!sp) return 0;
	pid = strtol(line, NULL, 10);
	return proc_stat(pid, &state, start, sizeof start) == 0 && !strcmp(start, sp + 1);
}

/* The name's lock (/run/sandbox/.NAME.lock), as lock.ts's withLock: made exclusive with this
 * process's owner line; a holder that is gone is taken over; a live one is waited for 10 s. */
static int take_lock(const char *path, struct sbx_error *err)
{
	char line[64], state, start[32];
	if (proc_stat(getpid(), &state, start, sizeof start) < 0) strcpy(start, "0");
	snprintf(line, sizeof line, "%d %s", getpid(), start);
	for (double until = now_ms() + 10000;;) {
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0) {
			ssize_t w = write(fd, line, strlen(line));
			close(fd);
			if (w < 0) { unlink(path); return sbx_fail(err, errno, path); }
			return 0;
		}
		if (errno != EEXIST) return sbx_fail(err, errno, path);
		char holder[64] = "";
		if (read_line(path, holder, sizeof holder) == 0 && holder[0] && !owner_alive(path)) { unlink(path); continue; }
		if (now_ms() > until) return fail(err, "%s is held by process %.*s; try again once it has finished", path, (int)strcspn(holder, " "), holder[0] ? holder : "?");
		sleep_ms(2);
	}
}

/* What delete undoes of the sandbox: the checks first (anything this file does not do goes to
 * Node before a change is made), then, after the kill, down's stop and reclaim. */
struct teardown {
	char dir[PATH_MAX];
	struct undo undo[MAX_UNDO];
	int nundo;
	char cgroup[8192];        /* the recorded cgroup's folders, NUL-separated */
	int present;
};

static int plan_teardown(const char *name, struct teardown *t)
{
	char path[PATH_MAX + 16];
	struct stat st;
	snprintf(t->dir, sizeof t->dir, "%s/%s", STATE_ROOT, name);
	t->cgroup[0] = t->cgroup[1] = 0;
	if (stat(t->dir, &st) < 0) return 0;
	t->present = 1;
	/* Only root's state root is known here; a caller without root goes to Node. */
	if (geteuid() != 0) return TO_NODE;
	if ((t->nundo = read_undo(t->dir, t->undo, MAX_UNDO)) < 0) return TO_NODE;
	/* A supervisor, a reduced-mode session or a live CLI owning the folder: down's waits are Node's. */
	snprintf(path, sizeof path, "%s/owner", t->dir);
	if (access(path, F_OK) == 0) return TO_NODE;
	snprintf(path, sizeof path, "%s/state.json", t->dir);
	char *s = slurp(path);
	if (s) {
		const char *v, *e;
		int other = member(s, "supervisorPid", &v, &e) == 0 || member(s, "session", &v, &e) == 0 || (member(s, "detached", &v, &e) == 0 && *v == 't');
		free(s);
		if (other) return TO_NODE;
	}
	for (int i = 0; i < t->nundo; i++)
		if (t->undo[i].kind == U_CGROUP) { cgroup_dirs(t->undo[i].path, t->cgroup, sizeof t->cgroup); break; }
	return 0;
}

/* down: every process of the cgroup killed, waited for 5 s; then, under the name's lock and only
 * if none is left, the undo list replayed newest first and the state folder removed. */
static int run_teardown(const char *name, struct teardown *t, struct sbx_error *err)
{
	long pids[256];
	char lock[PATH_MAX + 16];
	int n;
	if (!t->present) return 0;
	for (double until = now_ms() + 5000; (n = cgroup_pids(t->cgroup, pids, 256)) > 0 && now_ms() < until; sleep_ms(2))
		for (int i = 0; i < n; i++) kill(pids[i], SIGKILL);
	if (n > 0) return fail(err, "%s would not stop; nothing was removed", name);
	snprintf(lock, sizeof lock, "%s/.%s.lock", STATE_ROOT, name);
	if (take_lock(lock, err) < 0) return -1;
	int rc = 0;
	if (cgroup_pids(t->cgroup, pids, 1) == 0) {
		for (int i = t->nundo - 1; i >= 0; i--) {
			const struct undo *u = &t->undo[i];
			if (u->kind == U_STATE) remove_state(u->path);
			else if (u->kind == U_PLACEHOLDER) remove_placeholder(u);
			else if (remove_cgroup(u, err) < 0) rc = -1;  /* the others still run, as replayUndo */
		}
		remove_state(t->dir);
	}
	unlink(lock);
	return rc;
}

/* A paused container's cgroup thawed (delete and kill of one), as container-cgroup.ts's freeze. */
static int thaw(const char *file, struct sbx_error *err)
{
	char events[PATH_MAX + 16], t[256];
	size_t dl = strrchr(file, '/') - file;
	int v2 = !strcmp(file + dl, "/cgroup.freeze");
	snprintf(events, sizeof events, "%.*s/cgroup.events", (int)dl, file);
	if (v2 && write_str(file, "0") < 0) return sbx_fail(err, errno, file);
	for (double end = now_ms() + 10000; now_ms() < end; sleep_ms(2)) {
		if (v2) {
			char *ev = slurp(events);
			int done = ev && (strstr(ev, "frozen 0\n") == ev || strstr(ev, "\nfrozen 0\n"));
			free(ev);
			if (done) return 0;
		} else {
			if (write_str(file, "THAWED") < 0 && errno != ENOENT) return sbx_fail(err, errno, file);
			if (read_line(file, t, sizeof t) < 0 || !strcmp(t, "THAWED")) return 0;
		}
	}
	return fail(err, "the cgroup did not become thawed within 10 s");
}

/* kill: a signal to the container's process, or with --all to every process of its cgroup. */
static int cmd_kill(const struct globals *g, const char *id, const char *sig, int all, struct sbx_error *err)
{
	struct record r;
	static struct teardown t;
	int n = parse_signal(sig ? sig : "TERM");
	if (n < 0) return TO_NODE;
	int rc = read_record(g, id, &r, err);
	if (rc) return rc;
	/* --all of a stopped container signals what is left of it and succeeds, as runc's: containerd
	 * sends `kill --all ID 9` once a Pod's sandbox container has exited, then `delete`. */
	int stopped = !strcmp(status_of(&r), "stopped");
	if (stopped && !all) return fail(err, "container not running");
	if (all && plan_teardown(r.sandbox, &t) != 0) return TO_NODE;
	if (!stopped && kill(r.pid, n) < 0 && errno == ESRCH) return fail(err, "container not running");
	if (all) {
		long pids[1024];
		int k = cgroup_pids(t.cgroup, pids, 1024);
		for (int i = 0; i < k; i++) if (stopped || pids[i] != r.pid) kill(pids[i], n);
	}
	/* A frozen process takes SIGKILL only once thawed (as runc, which resumes a paused container it kills). */
	if (n == SIGKILL && is_frozen(r.freezer)) return thaw(r.freezer, err);
	return 0;
}

static int cmp_pid(const void *a, const void *b) { long x = *(const long *)a, y = *(const long *)b; return (x > y) - (x < y); }

/* ps --format json: the pids of the container's cgroup, ascending, as running.ts's ps (the table
 * form, which runs ps(1), is Node's). */
static int cmd_ps(const struct globals *g, const char *id, const char *format, struct sbx_error *err)
{
	struct record r;
	static struct teardown t;
	static long pids[65536];
	int rc = read_record(g, id, &r, err), n = 0;
	if (rc) return rc;
	if (!format || strcmp(format, "json")) return TO_NODE;
	if (strcmp(status_of(&r), "stopped")) {
		if (plan_teardown(r.sandbox, &t) != 0) return TO_NODE;
		n = cgroup_pids(t.cgroup, pids, 65536);
		qsort(pids, n, sizeof *pids, cmp_pid);
	}
	putchar('[');
	for (int i = 0; i < n; i++) printf(i ? ",%ld" : "%ld", pids[i]);
	puts("]");
	return fflush(stdout) == 0 ? 0 : sbx_fail(err, errno, "write ps");
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* delete: everything create set up, undone (as `sandbox down`), then the runtime's record. */
static int cmd_delete(const struct globals *g, const char *id, int force, struct sbx_error *err)
{
	struct record r;
	static struct teardown t;
	int rc = read_record(g, id, &r, err);
	/* --force of a container that is not there succeeds, as runc's. */
	if (rc < 0 && force) return 0;
	if (rc) return rc;
	const char *status = status_of(&r);
	if ((!strcmp(status, "running") || !strcmp(status, "paused")) && !force)
		return fail(err, "cannot delete container %s that is not stopped: %s", id, status);
	if (r.hooks || plan_teardown(r.sandbox, &t) != 0) return TO_NODE;
	if (strcmp(status, "stopped")) kill(r.pid, SIGKILL);
	if (is_frozen(r.freezer) && thaw(r.freezer, err) < 0) return -1;
	if (run_teardown(r.sandbox, &t, err) < 0) return -1;
	nftw(r.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* ---- the command line ---- */

/* A runc error: on stderr, and as a line of --log (JSON with --log-format json: containerd reads
 * the last error there), as main.ts's logLine. */
static void say_error(const struct globals *g, const char *msg)
{
	fprintf(stderr, "sandbox-runtime: %s\n", msg);
	if (!g->log) return;
	FILE *f = fopen(g->log, "ae");
	if (!f) return;
	struct timeval tv;
	struct tm tm;
	char when[64];
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t w = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + w, sizeof when - w, ".%03ldZ", (long)tv.tv_usec / 1000);
	if (g->json) {
		fputs("{\"level\":\"error\",\"msg\":", f);
		json_quote(f, msg);
		fprintf(f, ",\"time\":\"%s\"}\n", when);
	} else {
		fprintf(f, "time=\"%s\" level=error msg=", when);
		json_quote(f, msg);
		fputc('\n', f);
	}
	fclose(f);
}

/* The flags of the commands served here, as argv.ts's parseFlags reads them: before the id any
 * -x or --x, after it only --x. `names` lists the flags known, long name then short one, each pair
 * one slot of flags; those of `with_value` take one (after = or as the next argument), the others
 * are booleans ("1"). The first two other arguments go to rest. Anything else: TO_NODE. */
static int parse_args(int argc, char **argv, const char *const *names, int with_value, char **flags, char **rest, int *nrest)
{
	*nrest = 0;
	for (int i = 0; i < argc; i++) {
		char *a = argv[i];
		if (!strcmp(a, "--")) { while (++i < argc && *nrest < 2) rest[(*nrest)++] = argv[i]; break; }
		int dashes = a[0] != '-' ? 0 : a[1] != '-' ? 1 : 2;
		int flag = dashes && (*nrest == 0 || dashes == 2) && a[dashes] >= 'a' && a[dashes] <= 'z';
		if (!flag) { if (*nrest < 2) rest[(*nrest)++] = a; continue; }
		const char *k = a + dashes, *eq = strchr(k, '=');
		size_t kl = eq ? (size_t)(eq - k) : strlen(k);
		int slot = -1;
		for (int j = 0; names[j]; j++) if (strlen(names[j]) == kl && !strncmp(names[j], k, kl)) slot = j / 2;
		if (slot < 0) return TO_NODE;
		if (!(with_value & (1 << slot))) { if (eq) return TO_NODE; flags[slot] = (char *)"1"; }
		else if (eq) flags[slot] = (char *)eq + 1;
		else if (i + 1 < argc) flags[slot] = argv[++i];
		else return TO_NODE;
	}
	return 0;
}

static int dispatch(const struct globals *g, const char *cmd, int argc, char **argv, struct sbx_error *err)
{
	static const char *const none[] = { NULL };
	static const char *const kill_flags[] = { "all", "a", "signal", "s", NULL };
	static const char *const delete_flags[] = { "force", "f", NULL };
	char *flags[4] = { 0 }, *rest[2];
	int nrest;
	if (!strcmp(cmd, "state") || !strcmp(cmd, "start")) {
		if (parse_args(argc, argv, none, 0, flags, rest, &nrest) || nrest < 1) return TO_NODE;
		return !strcmp(cmd, "state") ? cmd_state(g, rest[0], err) : cmd_start(g, rest[0], err);
	}
	if (!strcmp(cmd, "kill")) {
		if (parse_args(argc, argv, kill_flags, 1 << 1, flags, rest, &nrest) || nrest < 1) return TO_NODE;
		return cmd_kill(g, rest[0], nrest > 1 ? rest[1] : flags[1], flags[0] != NULL, err);
	}
	if (!strcmp(cmd, "ps")) {
		static const char *const ps_flags[] = { "format", "f", NULL };
		if (parse_args(argc, argv, ps_flags, 1 << 0, flags, rest, &nrest) || nrest < 1) return TO_NODE;
		return cmd_ps(g, rest[0], flags[0], err);
	}
	if (!strcmp(cmd, "delete")) {
		if (parse_args(argc, argv, delete_flags, 0, flags, rest, &nrest) || nrest < 1) return TO_NODE;
		return cmd_delete(g, rest[0], flags[0] != NULL, err);
	}
	return TO_NODE;
}

int main(int argc, char **argv)
{
	struct globals g = { "/run/sandbox-runtime", NULL, 0 };
	struct sbx_error err = { 0, -1, "" };
	int i = 1;
	node_argv = argv;
	/* The globals, as argv.ts's: --root, --log, --log-format, --debug; any other goes to Node. */
	for (; i < argc && !strncmp(argv[i], "--", 2) && argv[i][2]; i++) {
		char *a = argv[i] + 2, *eq = strchr(a, '=');
		size_t kl = eq ? (size_t)(eq - a) : strlen(a);
		const char *val = eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : "";
		if (kl == 5 && !strncmp(a, "debug", 5) && !eq) continue;
		if (!((kl == 4 && !strncmp(a, "root", 4)) || (kl == 3 && !strncmp(a, "log", 3)) || (kl == 10 && !strncmp(a, "log-format", 10)))) to_node();
		if (!eq) i++;
		if (kl == 4) g.root = val;
		else if (kl == 3) g.log = val;
		else if (!strcmp(val, "json")) g.json = 1;
		else if (strcmp(val, "text")) to_node();
	}
	if (i >= argc) to_node();
	int rc = dispatch(&g, argv[i], argc - i - 1, argv + i + 1, &err);
	if (rc == TO_NODE) to_node();
	if (rc < 0) { say_error(&g, err.message); return 1; }
	return 0;
}
