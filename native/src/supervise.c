/* sbx-supervise: the parent of a detached sandbox (sandbox up -d). A small native process, so
 * that nothing of Node stays resident. Run by the CLI (as root, or as the rootless caller), in the
 * host's namespaces:
 *
 *   CLI ── stdin: struct sbx_supervise_head, ops, strings, restart ops, restart strings, extra;
 *          later "G", "E" ──► supervisor
 *   CLI ◄── stdout: "PID <pid> <in_cgroup>\n", then the child's 24-byte events until exec ──┘
 *   fds 3, 4, …: the published ports' bound sockets (as many as extra says), held until the
 *          tables go, so that no host program takes a mapped port
 *
 * It clones the child with sbx_spawn (the child's parent-death signal then ties the sandbox to
 * this process: kill -9 of the supervisor kills the sandbox), holds the child's user and network
 * namespaces open, relays the handshake, and once the command runs it closes stdout (the CLI sees
 * EOF and exits). Then, until the command ends for good:
 *   - it keeps the command's stdout and stderr in STATE/log, one "<ISO time> <stream> <line>" a line;
 *   - it writes the host PID of the sandbox's PID 1 and the number of restarts so far to STATE/pid
 *     ("PID RESTARTS", whole, by rename);
 *   - when the command ends, it runs it again as the restart policy says (Docker's delay: 100 ms,
 *     doubling up to 10 s, back to 100 ms after a run of 10 s or more), with sbx_respawn in the
 *     held namespaces, so that the address, the veth and the port maps stay; never once
 *     STATE/stopping exists (sandbox stop makes it before it signals) or after a SIGTERM to this
 *     process. A restart replays the program the CLI attested on the first run.
 *   - with network.egress, it watches sbx-egress (the resolver and relay the CLI started, whose
 *     holder this process is; named in STATE/egress.json) through a pidfd, and says so in the log
 *     if it ends while the command runs: names no longer resolve and host rules refuse everything
 *     (fail closed; no restart of it in this build).
 * When the command has ended for good it closes the ports' sockets and deletes the sandbox's nftables
 * tables (its port maps and NAT, and the egress wall: a published port is free again at once, and a
 * client is refused, not left to time out),
 * lets the namespaces go (the veth goes with the network namespace), writes the wait status to
 * STATE/exit (whole, by rename) and exits. The state folder, the log, the cgroup and the upper
 * layer stay for `sandbox logs` and `sandbox down`; unless the CLI gave a command after the two
 * folders (run -d --rm: the CLI's own `down`, as the CLI wrote it out): that command is then
 * started in a child of its own, with this process's privilege, and this process exits without
 * waiting for it (a `sandbox stop` that waits for this process is not held by the removal).
 *   sbx-supervise STATE_DIR CGROUP_DIR|- [ON_EXIT ARG...]  */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
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

/* The sandbox as this process runs it: what it holds, and where its state is. */
struct sup {
	const char *state;
	struct sbx_supervise_head head;
	struct sbx_op *rops;
	char *rstrings;
	const char *procs;      /* the cgroup.procs files a restart joins (a list) */
	const char *tables;     /* the nftables tables to delete at the end, "FAMILY NAME" each, a list (ends with "") */
	int nholds;             /* the published ports' sockets, fds 3 .. 3 + nholds - 1: bound until the table goes */
	int userns_fd, netns_fd, out_w, err_w;
	FILE *log;
};

static void say(struct sup *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One line of the supervisor's own in the log, as the command's stderr. */
static void say(struct sup *s, const char *fmt, ...)
{
	struct timespec ts;
	struct tm tm;
	char when[40];
	va_list ap;
	if (!s->log) return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(s->log, "%s.%06ldZ stderr sandbox: ", when, ts.tv_nsec / 1000);
	va_start(ap, fmt);
	vfprintf(s->log, fmt, ap);
	va_end(ap);
	fputc('\n', s->log);
	fflush(s->log);
}

/* STATE/name, whole (by rename): "value\n", or "value second\n" when second >= 0. */
static void write_file2(const char *dir, const char *name, long value, long second)
{
	char tmp[4096], path[4096];
	snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(tmp, "we");
	if (!f) return;
	if (second >= 0) fprintf(f, "%ld %ld\n", value, second); else fprintf(f, "%ld\n", value);
	fclose(f);
	rename(tmp, path);
}

static void write_file(const char *dir, const char *name, long value) { write_file2(dir, name, value, -1); }

static int stopping(struct sup *s)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/stopping", s->state);
	return access(path, F_OK) == 0;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The next run: a child cloned in the held namespaces and cgroup, driven through the handshake
 * with no one to show its progress to. Returns its pid (which may already have failed: its exit
 * status then says how, as a run's), or -1 when no child could be made. */
static pid_t respawn(struct sup *s)
{
	struct sbx_child c;
	struct sbx_error err;
	struct sbx_event ev;
	int failed = 0;
	/* The command's stdio are the log's pipes, as the first run's. */
	dup2(s->out_w, 1);
	dup2(s->err_w, 2);
	int r = sbx_respawn(s->rops, s->head.restart_nops, s->rstrings, s->head.restart_strings_len, s->head.clone_flags, s->procs, s->userns_fd, s->netns_fd, &c, &err);
	dup2(0, 1); /* /dev/null */
	dup2(0, 2);
	if (r < 0) { say(s, "the restart failed: %s", err.message); return -1; }
	if (write_all(c.sync_fd, "G", 1) < 0) failed = 1;
	while (!failed && read_all(c.events_fd, &ev, sizeof ev) == 0) {
		if (ev.phase == SBX_EV_FAILED) { say(s, "the restart failed at plan step %u: %s", ev.step, strerror(ev.err)); failed = 1; break; }
		if (ev.phase == SBX_EV_START && ev.op == SBX_OP_EXEC && write_all(c.sync_fd, "E", 1) < 0) break;
	}
	close(c.events_fd);
	close(c.sync_fd);
	return c.pid;
}

/* The port maps, the outbound NAT and the egress wall go with the command: each table is deleted
 * (by nft, as the CLI made it); an absent table is no error, `down` checks again. */
static void release_ports(struct sup *s)
{
	/* The host's ports are free again: a host program may bind them now. */
	for (int i = 0; i < s->nholds; i++) close(3 + i);
	s->nholds = 0;
	for (const char *t = s->tables; *t; t += strlen(t) + 1) {
		char family[16], name[256];
		if (sscanf(t, "%15s %255s", family, name) != 2) continue;
		pid_t p = fork();
		if (p == 0) {
			dup2(0, 1); dup2(0, 2);
			execlp("nft", "nft", "delete", "table", family, name, (char *)NULL);
			_exit(127);
		}
		if (p > 0) while (waitpid(p, NULL, 0) < 0 && errno == EINTR) {}
	}
}

/* A pidfd on sbx-egress as STATE/egress.json names it ({"pid":N,"start":"T",…}, written by
 * the CLI before it sent "E"), if its start time (field 22 of /proc/PID/stat) is still the
 * recorded one; -1 without egress or when it is gone already. */
static int egress_pidfd(const char *state)
{
	char path[4096], buf[4096], stat[1024];
	snprintf(path, sizeof path, "%s/egress.json", state);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0) return -1;
	buf[n] = 0;
	const char *p = strstr(buf, "\"pid\":");
	const char *st = strstr(buf, "\"start\":\"");
	if (!p || !st) return -1;
	int pid = atoi(p + strlen("\"pid\":"));
	unsigned long long start = strtoull(st + strlen("\"start\":\""), NULL, 10);
	int pfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
	if (pfd < 0) return -1;
	/* Read after the pidfd is open: if the start time matches now, the pidfd is that process's. */
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, stat, sizeof stat - 1) : -1;
	if (fd >= 0) close(fd);
	const char *rp = n > 0 ? (stat[n] = 0, strrchr(stat, ')')) : NULL;
	unsigned long long now = 0;
	if (rp && sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &now) == 1 && now == start) return pfd;
	close(pfd);
	return -1;
}

/* What the command wrote on stream i, into the log; at EOF (no writer left) the stream is closed,
 * so that poll does not report its hang-up again and again. */
static void pump(struct sup *s, struct stream *st, int i, int flush_all)
{
	while (st[i].fd >= 0) {
		ssize_t r = read(st[i].fd, st[i].buf + st[i].len, sizeof st[i].buf - st[i].len);
		if (r == 0) { close(st[i].fd); st[i].fd = -1; break; }
		if (r < 0) break;
		st[i].len += (size_t)r;
		if (s->log) log_lines(s->log, &st[i], st[i].len == sizeof st[i].buf);
	}
	if (flush_all && s->log && st[i].len) log_lines(s->log, &st[i], 1);
}

int main(int argc, char **argv)
{
	struct sup s = { .userns_fd = -1, .netns_fd = -1 };
	struct sbx_child child;
	struct sbx_error err;
	char path[4096];
	int out_pipe[2], err_pipe[2], cli_in, cli_out, cgroup_fd = -1;

	if (argc < 3) { fprintf(stderr, "usage: sbx-supervise STATE_DIR CGROUP_DIR|- [ON_EXIT ARG...]\n"); return 2; }
	s.state = argv[1];
	/* Blocked from the start, and read from a signalfd once the command runs: a child that ends
	 * before then leaves its SIGCHLD pending, not lost. (Each child starts with none blocked.) */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD); sigaddset(&mask, SIGTERM); sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	/* The CLI's pipes move out of the way: 0, 1 and 2 become the command's stdio. */
	cli_in = fcntl(0, F_DUPFD_CLOEXEC, 10);
	cli_out = fcntl(1, F_DUPFD_CLOEXEC, 10);
	if (cli_in < 0 || cli_out < 0 || pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0) return 125;
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	/* The write ends stay here (close-on-exec) for every later run; 0 is /dev/null from now on. */
	s.out_w = out_pipe[1];
	s.err_w = err_pipe[1];
	dup2(devnull, 0);
	close(devnull);
	dup2(s.out_w, 1);
	dup2(s.err_w, 2);

	struct sbx_supervise_head *h = &s.head;
	if (read_all(cli_in, h, sizeof *h) < 0) return 125;
	struct sbx_op *ops = malloc((size_t)h->nops * sizeof *ops + 1);
	char *strings = malloc((size_t)h->strings_len + 1);
	s.rops = malloc((size_t)h->restart_nops * sizeof *s.rops + 1);
	s.rstrings = malloc((size_t)h->restart_strings_len + 1);
	char *extra = calloc(1, (size_t)h->extra_len + 2);
	if (!ops || !strings || !s.rops || !s.rstrings || !extra
	    || read_all(cli_in, ops, (size_t)h->nops * sizeof *ops) < 0 || read_all(cli_in, strings, h->strings_len) < 0
	    || read_all(cli_in, s.rops, (size_t)h->restart_nops * sizeof *s.rops) < 0 || read_all(cli_in, s.rstrings, h->restart_strings_len) < 0
	    || read_all(cli_in, extra, h->extra_len) < 0) return 125;
	/* extra: the list of cgroup.procs files (ends with an empty string), the list of tables to
	 * delete at the end ("FAMILY NAME" each; ends with an empty string), then how many port sockets
	 * the CLI passed as fds 3, 4, …. They are kept from every process this one starts (the sandbox
	 * closes its fds above 2 before exec anyway; nft and the CLI's down must not hold them). */
	s.procs = extra;
	{
		const char *p = extra;
		const char *end = extra + h->extra_len;
		while (p < end && *p) p += strlen(p) + 1;
		s.tables = p + 1 < end ? p + 1 : "";
		p = s.tables;
		while (p < end && *p) p += strlen(p) + 1;
		const char *n = p + 1;
		s.nholds = n < end ? atoi(n) : 0;
		for (int i = 0; i < s.nholds; i++) fcntl(3 + i, F_SETFD, FD_CLOEXEC);
	}
	if (strcmp(argv[2], "-") != 0) cgroup_fd = open(argv[2], O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (sbx_spawn(ops, h->nops, strings, h->strings_len, h->clone_flags, cgroup_fd, &child, &err) < 0) {
		dprintf(cli_out, "ERR %d %s\n", err.err, err.message);
		return 125;
	}
	if (cgroup_fd >= 0) close(cgroup_fd);
	/* The namespaces a restart joins, held from now on: the child waits for "G", so they are its. */
	if (h->policy) {
		snprintf(path, sizeof path, "/proc/%d/ns/user", child.pid);
		if (h->clone_flags & CLONE_NEWUSER) s.userns_fd = open(path, O_RDONLY | O_CLOEXEC);
		snprintf(path, sizeof path, "/proc/%d/ns/net", child.pid);
		if (h->clone_flags & CLONE_NEWNET) s.netns_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (((h->clone_flags & CLONE_NEWUSER) && s.userns_fd < 0) || ((h->clone_flags & CLONE_NEWNET) && s.netns_fd < 0)) {
			dprintf(cli_out, "ERR %d hold the sandbox's namespaces for its restarts: %s\n", errno, strerror(errno));
			kill(child.pid, SIGKILL);
			return 125;
		}
	}
	dup2(0, 1); dup2(0, 2);
	/* Without a restart policy no later run needs the write ends: the log's pipes end with the command. */
	if (!h->policy) { close(s.out_w); close(s.err_w); s.out_w = s.err_w = -1; }
	dprintf(cli_out, "PID %d %d\n", child.pid, child.in_cgroup);

	/* Relay: the CLI's bytes to the child's sync socket, the child's events to the CLI, until exec. */
	struct pollfd p[2] = { { .fd = cli_in, .events = POLLIN }, { .fd = child.events_fd, .events = POLLIN } };
	/* Whether the CLI's "E" (exec: the attestation passed) reached the child: after it, the child's
	 * end is the command's, however soon it comes. */
	int exec_sent = 0;
	for (;;) {
		if (poll(p, 2, -1) < 0) { if (errno == EINTR) continue; break; }
		if (p[0].revents) {
			char b;
			ssize_t r = read(cli_in, &b, 1);
			if (r <= 0) { p[0].fd = -1; kill(child.pid, SIGKILL); s.head.policy = 0; } /* the CLI went away during setup: no restart */
			else if (write_all(child.sync_fd, &b, 1) < 0) p[0].fd = -1;
			else if (b == 'E') exec_sent = 1;
		}
		if (p[1].revents) {
			char buf[4096];
			ssize_t r = read(child.events_fd, buf, sizeof buf);
			if (r <= 0) break;
			if (write_all(cli_out, buf, (size_t)r) < 0) break;
		}
	}
	close(child.events_fd); close(child.sync_fd); close(cli_out); close(cli_in);
	/* A child gone before "E" failed its setup (the CLI undoes it): no restart. One gone after it
	 * ran the command, which ended at once: its status is the first run's, as below. */
	int early = 0, early_status = 0;
	{
		int w;
		if (waitpid(child.pid, &w, WNOHANG | __WALL) == child.pid) {
			if (!exec_sent) { s.head.policy = 0; write_file(s.state, "exit", w); return 0; }
			early = 1;
			early_status = w;
		}
	}
	setsid();
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);

	snprintf(path, sizeof path, "%s/log", s.state);
	s.log = fopen(path, "ae");
	/* SIGCHLD and the signals that stop the sandbox are read from a signalfd, beside the pipes. */
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
	fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);
	struct stream st[2] = { { .fd = out_pipe[0], .name = "stdout" }, { .fd = err_pipe[0], .name = "stderr" } };

	/* sbx-egress, watched while the command runs (and across restarts, which keep it). */
	int egress_fd = egress_pidfd(s.state);
	pid_t pid = child.pid;
	int status = 0, stop = 0;
	uint32_t restarts = 0;
	uint64_t delay_ms = 100, started = mono_ms();
	write_file2(s.state, "pid", pid, (long)restarts);
	for (;;) {
		/* One run: its output, until it ends. */
		int ended = early;
		if (early) { status = early_status; early = 0; }
		while (!ended) {
			struct pollfd lp[4] = { { .fd = st[0].fd, .events = POLLIN }, { .fd = st[1].fd, .events = POLLIN }, { .fd = sfd, .events = POLLIN }, { .fd = egress_fd, .events = POLLIN } };
			if (poll(lp, 4, -1) < 0 && errno != EINTR) break;
			for (int i = 0; i < 2; i++) if (lp[i].revents) pump(&s, st, i, 0);
			if (egress_fd >= 0 && lp[3].revents) {
				/* Not this process's child: its status is in STATE/egress.log. */
				say(&s, "the egress resolver and relay ended (its log: %s/egress.log); names no longer resolve and host rules refuse everything", s.state);
				close(egress_fd);
				egress_fd = -1;
			}
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
				if (si.ssi_signo != SIGCHLD) { stop = 1; kill(pid, SIGTERM); continue; }
				int w;
				pid_t r;
				while ((r = waitpid(-1, &w, WNOHANG | __WALL)) > 0) if (r == pid) { status = w; ended = 1; }
			}
		}
		for (int i = 0; i < 2; i++) pump(&s, st, i, 0);
		int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		uint32_t policy = s.head.policy;
		if (stop || stopping(&s) || policy == 0 || (policy == 1 && code == 0) || (s.head.max_restarts > 0 && restarts >= s.head.max_restarts)) break;
		if (mono_ms() - started >= 10000) delay_ms = 100;
		restarts++;
		if (s.head.max_restarts) say(&s, "the command exited with code %d; restart %u of %u in %llu ms", code, restarts, s.head.max_restarts, (unsigned long long)delay_ms);
		else say(&s, "the command exited with code %d; restart %u in %llu ms", code, restarts, (unsigned long long)delay_ms);
		/* The delay, in short slices, so that a stop during it is seen at once. */
		for (uint64_t until = mono_ms() + delay_ms; !stop && mono_ms() < until && !stopping(&s); ) {
			uint64_t left = until - mono_ms();
			struct pollfd sp = { .fd = sfd, .events = POLLIN };
			poll(&sp, 1, left > 50 ? 50 : (int)left);
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) if (si.ssi_signo != SIGCHLD) stop = 1;
		}
		if (stop || stopping(&s)) break;
		delay_ms = delay_ms * 2 > 10000 ? 10000 : delay_ms * 2;
		started = mono_ms();
		pid = respawn(&s);
		if (pid < 0) { status = 125 << 8; break; }
		write_file2(s.state, "pid", pid, (long)restarts);
	}
	for (int i = 0; i < 2; i++) pump(&s, st, i, 1);
	/* Ended for good: the ports first, then the namespaces, then the status that ps reads. */
	release_ports(&s);
	if (s.userns_fd >= 0) close(s.userns_fd);
	if (s.netns_fd >= 0) close(s.netns_fd);
	write_file(s.state, "exit", status);
	if (s.log) fclose(s.log);
	if (argc > 3) {
		/* What the CLI asked to run once the command ended for good: its stdio are /dev/null (0,
		 * 1 and 2 here), and it gets no signal mask of ours. */
		pid_t p = fork();
		if (p == 0) {
			sigprocmask(SIG_UNBLOCK, &mask, NULL);
			signal(SIGPIPE, SIG_DFL);
			execv(argv[3], argv + 3);
			_exit(127);
		}
	}
	return 0;
}
