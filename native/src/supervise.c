/* sbx-supervise: the parent of a detached sandbox (sandbox up -d). A small native process, so
 * that nothing of Node stays resident. Run as root by the CLI, in the host's namespaces:
 *
 *   CLI ── stdin: struct sbx_supervise_head, ops, strings; later "G", "E" ──► supervisor
 *   CLI ◄── stdout: "PID <pid> <in_cgroup>\n", then the child's 24-byte events until exec ──┘
 *
 * It clones the child with sbx_spawn (the child's parent-death signal then ties the sandbox to
 * this process: kill -9 of the supervisor kills the sandbox), relays the handshake, and once the
 * command runs it closes stdout (the CLI sees EOF and exits) and keeps the command's stdout and
 * stderr in STATE/log, one "<ISO time> <stream> <line>" per line, until the command exits; then
 * it writes the wait status to STATE/exit (whole, by rename) and exits.
 *   sbx-supervise STATE_DIR CGROUP_DIR|-  */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "../include/sbx.h"

static int read_all(int fd, void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);
		if (r < 0 && errno == EINTR) continue;
		if (r <= 0) return -1;
		got += (size_t)r;
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
	size_t put = 0;
	while (put < n) {
		ssize_t r = write(fd, (const char *)buf + put, n - put);
		if (r < 0 && errno == EINTR) continue;
		if (r <= 0) return -1;
		put += (size_t)r;
	}
	return 0;
}

struct stream { int fd; const char *name; char buf[65536]; size_t len; };

static void log_lines(FILE *log, struct stream *s, int flush_all)
{
	size_t start = 0;
	for (size_t i = 0; i < s->len; i++) {
		if (s->buf[i] != '\n' && !(flush_all && i == s->len - 1) && !(i - start >= 16383)) continue;
		struct timespec ts;
		struct tm tm;
		char when[40];
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
		size_t end = s->buf[i] == '\n' ? i : i + 1;
		fprintf(log, "%s.%06ldZ %s %.*s\n", when, ts.tv_nsec / 1000, s->name, (int)(end - start), s->buf + start);
		start = i + 1;
	}
	memmove(s->buf, s->buf + start, s->len - start);
	s->len -= start;
	fflush(log);
}

int main(int argc, char **argv)
{
	struct sbx_supervise_head head;
	struct sbx_child child;
	struct sbx_error err;
	char path[4096];
	int out_pipe[2], err_pipe[2], cli_in, cli_out, cgroup_fd = -1;

	if (argc != 3) { fprintf(stderr, "usage: sbx-supervise STATE_DIR CGROUP_DIR|-\n"); return 2; }
	/* The CLI's pipes move out of the way: 0, 1 and 2 become the command's stdio. */
	cli_in = fcntl(0, F_DUPFD_CLOEXEC, 10);
	cli_out = fcntl(1, F_DUPFD_CLOEXEC, 10);
	if (cli_in < 0 || cli_out < 0 || pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0) return 125;
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	dup2(devnull, 0);
	dup2(out_pipe[1], 1);
	dup2(err_pipe[1], 2);

	if (read_all(cli_in, &head, sizeof head) < 0) return 125;
	struct sbx_op *ops = malloc((size_t)head.nops * sizeof *ops);
	char *strings = malloc(head.strings_len);
	if (!ops || !strings || read_all(cli_in, ops, (size_t)head.nops * sizeof *ops) < 0 || read_all(cli_in, strings, head.strings_len) < 0) return 125;
	if (strcmp(argv[2], "-") != 0) cgroup_fd = open(argv[2], O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (sbx_spawn(ops, head.nops, strings, head.strings_len, head.clone_flags, cgroup_fd, &child, &err) < 0) {
		dprintf(cli_out, "ERR %d %s\n", err.err, err.message);
		return 125;
	}
	if (cgroup_fd >= 0) close(cgroup_fd);
	close(out_pipe[1]); close(err_pipe[1]);
	dup2(devnull, 1); dup2(devnull, 2);
	dprintf(cli_out, "PID %d %d\n", child.pid, child.in_cgroup);

	/* Relay: the CLI's bytes to the child's sync socket, the child's events to the CLI, until exec. */
	struct pollfd p[2] = { { .fd = cli_in, .events = POLLIN }, { .fd = child.events_fd, .events = POLLIN } };
	for (;;) {
		if (poll(p, 2, -1) < 0) { if (errno == EINTR) continue; break; }
		if (p[0].revents) {
			char b;
			ssize_t r = read(cli_in, &b, 1);
			if (r <= 0) { p[0].fd = -1; kill(child.pid, SIGKILL); } /* the CLI went away during setup */
			else if (write_all(child.sync_fd, &b, 1) < 0) p[0].fd = -1;
		}
		if (p[1].revents) {
			char buf[4096];
			ssize_t r = read(child.events_fd, buf, sizeof buf);
			if (r <= 0) break;
			if (write_all(cli_out, buf, (size_t)r) < 0) break;
		}
	}
	close(child.events_fd); close(child.sync_fd); close(cli_out); close(cli_in);
	setsid();
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);

	snprintf(path, sizeof path, "%s/log", argv[1]);
	FILE *log = fopen(path, "ae");
	struct stream s[2] = { { .fd = out_pipe[0], .name = "stdout" }, { .fd = err_pipe[0], .name = "stderr" } };
	struct pollfd lp[2] = { { .fd = out_pipe[0], .events = POLLIN }, { .fd = err_pipe[0], .events = POLLIN } };
	int open_streams = 2;
	while (open_streams > 0) {
		if (poll(lp, 2, -1) < 0) { if (errno == EINTR) continue; break; }
		for (int i = 0; i < 2; i++) {
			if (!lp[i].revents) continue;
			ssize_t r = read(lp[i].fd, s[i].buf + s[i].len, sizeof s[i].buf - s[i].len);
			if (r <= 0) { if (log && s[i].len) log_lines(log, &s[i], 1); close(lp[i].fd); lp[i].fd = -1; open_streams--; continue; }
			s[i].len += (size_t)r;
			if (log) log_lines(log, &s[i], s[i].len == sizeof s[i].buf);
		}
	}
	int status = 0;
	while (waitpid(child.pid, &status, __WALL) < 0 && errno == EINTR) {}
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s/.exit.tmp", argv[1]);
	snprintf(path, sizeof path, "%s/exit", argv[1]);
	FILE *e = fopen(tmp, "we");
	if (e) { fprintf(e, "%d\n", status); fclose(e); rename(tmp, path); }
	if (log) fclose(log);
	return 0;
}
