/* sbx-egress --state DIR --holder PID --netns PATH [--userns PATH], policy text on stdin
 * (contract sections 2 and 3). Started by the CLI as root, detached; lives until the holder (the
 * CLI of a foreground run, or sbx-supervise) ends or SIGTERM comes.
 *
 * A forked helper enters the sandbox's network namespace (after its user namespace, when given),
 * brings lo up, binds the resolver (127.0.0.53:53 UDP and TCP) and the relay (127.0.0.1:any TCP),
 * opens a netfilter netlink socket there (and, without root, binds the NFLOG group of the wall
 * that is then in that namespace), loads the policy's in-namespace table with `nft -f -`
 * run inside, hands the descriptors back over SCM_RIGHTS and exits. This process never leaves the
 * host's namespaces, so every upstream socket it makes is a host socket.
 *
 * Success: exactly one line `READY relay=<port>` on stdout, then stdout and stderr go to
 * DIR/egress.log. Failure: one line `ERROR <message>` on stdout and exit status 1. */
#include "egress.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/netlink.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define POLICY_MAX (4 << 20)

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	for (char *p = msg; *p; p++) if (*p == '\n') *p = ' ';
	printf("ERROR %s\n", msg);
	fflush(stdout);
	exit(1);
}

static const char *usage = "usage: sbx-egress --state DIR --holder PID --netns PATH [--userns PATH] < policy";

/* ---- the helper, inside the sandbox's namespaces ---- */

/* nft -f - with text on its stdin, in the helper's (the sandbox's) network namespace. 0, or -1
 * with err holding nft's first complaint. */
static int run_nft(const char *text, size_t len, char *err, size_t errlen)
{
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) { snprintf(err, errlen, "pipe: %s", strerror(errno)); return -1; }
	pid_t pid = fork();
	if (pid < 0) { snprintf(err, errlen, "fork: %s", strerror(errno)); return -1; }
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(out[1], 2);
		char *argv[] = { "nft", "-f", "-", NULL };
		execv("/usr/sbin/nft", argv);
		execv("/sbin/nft", argv);
		execvp("nft", argv);
		dprintf(2, "cannot run nft: %s", strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(in[1], text + off, len - off);
		if (w < 0) { if (errno == EINTR) continue; break; }
		off += (size_t)w;
	}
	close(in[1]);
	char buf[600];
	size_t got = 0;
	for (ssize_t r; got < sizeof buf - 1 && (r = read(out[0], buf + got, sizeof buf - 1 - got)) != 0;) {
		if (r < 0) { if (errno == EINTR) continue; break; }
		got += (size_t)r;
	}
	buf[got] = 0;
	close(out[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
	for (char *p = buf; *p; p++) if (*p == '\n') *p = ' ';
	snprintf(err, errlen, "nft -f - in the sandbox's namespace failed: %s", got ? buf : "no message");
	return -1;
}

static int bound(int type, const char *ip, int port, int backlog, uint16_t *port_out)
{
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, ip, &a.sin_addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || (backlog && listen(fd, backlog) < 0)) return -1;
	socklen_t l = sizeof a;
	if (port_out && getsockname(fd, (struct sockaddr *)&a, &l) == 0) *port_out = ntohs(a.sin_port);
	return fd;
}

static void helper_fail(int sock, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void helper_fail(int sock, const char *fmt, ...)
{
	char msg[900];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (send(sock, msg, n < (int)sizeof msg ? (size_t)n : sizeof msg - 1, 0) < 0) _exit(2);
	_exit(1);
}

static void helper(int sock, int netns_fd, int userns_fd)
{
	uint16_t port = 0;
	if (userns_fd >= 0 && setns(userns_fd, CLONE_NEWUSER) < 0) helper_fail(sock, "entering the sandbox's user namespace: %s", strerror(errno));
	if (setns(netns_fd, CLONE_NEWNET) < 0) helper_fail(sock, "entering the sandbox's network namespace: %s", strerror(errno));
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) helper_fail(sock, "reading lo's flags in the sandbox: %s", strerror(errno));
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) helper_fail(sock, "bringing lo up in the sandbox: %s", strerror(errno));
	close(s);
	/* No SO_REUSEADDR/PORT: a second socket on the resolver's port would share its queries. */
	int fds[6], nfds = 5;
	if ((fds[0] = bound(SOCK_DGRAM, "127.0.0.53", 53, 0, NULL)) < 0) helper_fail(sock, "binding the resolver on 127.0.0.53:53/udp in the sandbox: %s", strerror(errno));
	if ((fds[1] = bound(SOCK_STREAM, "127.0.0.53", 53, 64, NULL)) < 0) helper_fail(sock, "binding the resolver on 127.0.0.53:53/tcp in the sandbox: %s", strerror(errno));
	if ((fds[2] = bound(SOCK_STREAM, "127.0.0.1", 0, 4096, &port)) < 0) helper_fail(sock, "binding the relay on 127.0.0.1/tcp in the sandbox: %s", strerror(errno));
	/* The relay's client legs (accepted from this socket, which they inherit it from) cross only
	 * the sandbox's loopback: no congestion to control there. A pacing one (BBR, a common host
	 * default that a new namespace inherits) would time each of their segments with an hrtimer
	 * and hold the relay well below the direct path; cubic (else reno) does not pace. Best effort. */
	if (setsockopt(fds[2], IPPROTO_TCP, TCP_CONGESTION, "cubic", 5) < 0) setsockopt(fds[2], IPPROTO_TCP, TCP_CONGESTION, "reno", 4);
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK };
	fds[3] = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (fds[3] < 0 || bind(fds[3], (struct sockaddr *)&nl, sizeof nl) < 0) helper_fail(sock, "opening netfilter netlink in the sandbox: %s", strerror(errno));
	/* sock_diag here answers by the addresses the sandbox sees: which socket a refusal came from
	 * (proc.c). Best effort: a kernel without it gives records without the process (/dev/null
	 * holds its place among the fds, and the word "nodiag" says so). */
	int diag = 1;
	fds[4] = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fds[4] < 0) { diag = 0; fds[4] = open("/dev/null", O_RDONLY | O_CLOEXEC); }
	if (fds[4] < 0) helper_fail(sock, "opening /dev/null in the sandbox's helper: %s", strerror(errno));
	/* Without root the wall is this namespace's output chain: its NFLOG group is bound here (root
	 * in the sandbox's user namespace may; groups are per namespace, so it is free), before the
	 * table that logs to it is loaded. sbx-egress reads it through this socket. */
	if (userns_fd >= 0 && !G.root && G.pol.group) {
		if (nflog_open(G.pol.group) < 0) helper_fail(sock, "NFLOG group %u in the sandbox's namespace: %s", G.pol.group, strerror(errno));
		fds[nfds++] = G.nflog_fd;
	}
	if (G.pol.nft_len) {
		/* @RELAY@ becomes the relay's port; the text can only grow by a few bytes per use. */
		size_t cap = G.pol.nft_len * 2 + 64, n = 0;
		char *text = malloc(cap), num[8], err[800];
		if (!text) helper_fail(sock, "out of memory");
		snprintf(num, sizeof num, "%u", port);
		for (const char *p = G.pol.nft; *p;) {
			if (!strncmp(p, "@RELAY@", 7)) { memcpy(text + n, num, strlen(num)); n += strlen(num); p += 7; }
			else text[n++] = *p++;
		}
		if (run_nft(text, n, err, sizeof err) < 0) helper_fail(sock, "%s", err);
	}
	char ok[32];
	int len = snprintf(ok, sizeof ok, "OK %u%s", port, diag ? "" : " nodiag");
	union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof fds)]; } cm;
	memset(&cm, 0, sizeof cm);
	struct iovec iov = { ok, (size_t)len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = CMSG_SPACE(nfds * sizeof(int)) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
	memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	_exit(sendmsg(sock, &msg, 0) < 0 ? 2 : 0);
}

/* Forks the helper and takes its descriptors: the resolver's two, the relay's, netfilter netlink,
 * sock_diag, and without root the NFLOG socket of the wall in the sandbox's namespace. */
static void sandbox_sockets(int netns_fd, int userns_fd)
{
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) die("socketpair: %s", strerror(errno));
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) die("fork: %s", strerror(errno));
	if (pid == 0) { close(sp[0]); helper(sp[1], netns_fd, userns_fd); }
	close(sp[1]);
	char text[1024];
	int fds[6];
	union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof fds)]; } cm;
	struct iovec iov = { text, sizeof text - 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf };
	ssize_t n;
	while ((n = recvmsg(sp[0], &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
	close(sp[0]);
	if (n <= 0) die("the helper in the sandbox's namespace ended without a word (status %d)", status);
	text[n] = 0;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (strncmp(text, "OK ", 3)) die("%s", text);
	if (!c || c->cmsg_type != SCM_RIGHTS || (c->cmsg_len != CMSG_LEN(5 * sizeof(int)) && c->cmsg_len != CMSG_LEN(6 * sizeof(int)))) die("the helper sent no sockets");
	int nfds = c->cmsg_len == CMSG_LEN(6 * sizeof(int)) ? 6 : 5;
	memcpy(fds, CMSG_DATA(c), nfds * sizeof(int));
	if (nfds == 6) G.nflog_fd = fds[5];
	G.diag_fd = fds[4];
	if (strstr(text, " nodiag")) { close(G.diag_fd); G.diag_fd = -1; }
	G.dns_udp = fds[0];
	G.dns_tcp = fds[1];
	G.relay_fd = fds[2];
	G.nft_nl = fds[3];
	G.relay_port = (uint16_t)atoi(text + 3);
	for (int i = 0; i < 3; i++) fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
}

static char *read_stdin(size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);
	for (;;) {
		if (!buf) die("out of memory reading the policy");
		ssize_t r = read(0, buf + n, cap - n);
		if (r < 0) { if (errno == EINTR) continue; die("reading the policy on stdin: %s", strerror(errno)); }
		if (r == 0) break;
		n += (size_t)r;
		if (n == cap) {
			if (cap >= POLICY_MAX) die("the policy text is over %d bytes", POLICY_MAX);
			cap *= 2;
			buf = realloc(buf, cap + 1);
		}
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

int main(int argc, char **argv)
{
	const char *netns = NULL, *userns = NULL, *holder_s = NULL;
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) die("%s needs a value; %s", argv[i], usage);
		if (!strcmp(argv[i], "--state")) G.state_dir = v;
		else if (!strcmp(argv[i], "--holder")) holder_s = v;
		else if (!strcmp(argv[i], "--netns")) netns = v;
		else if (!strcmp(argv[i], "--userns")) userns = v;
		else die("unknown argument %s; %s", argv[i], usage);
		i++;
	}
	if (!G.state_dir || !holder_s || !netns) die("%s", usage);
	char *end;
	long holder = strtol(holder_s, &end, 10);
	if (*end || holder < 1) die("--holder %s is not a process id", holder_s);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	G.root = geteuid() == 0;
	G.nflog_fd = -1;
	G.diag_fd = -1;

	size_t len;
	char *text = read_stdin(&len), err[512];
	sha256_hex(text, len, G.digest);
	if (policy_parse(text, len, &G.pol, err, sizeof err) < 0) die("%s", err);
	free(text);
	if (log_open(G.state_dir) < 0) die("the state folder %s: %s", G.state_dir, strerror(errno));

	int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)holder, 0);
	if (pidfd < 0) die("the holder %ld: %s", holder, strerror(errno));
	int netns_fd = open(netns, O_RDONLY | O_CLOEXEC), userns_fd = -1;
	if (netns_fd < 0) die("the sandbox's network namespace %s: %s", netns, strerror(errno));
	struct stat nst;
	if (fstat(netns_fd, &nst) == 0) { G.netns_dev = nst.st_dev; G.netns_ino = nst.st_ino; }
	if (userns && (userns_fd = open(userns, O_RDONLY | O_CLOEXEC)) < 0) die("the sandbox's user namespace %s: %s", userns, strerror(errno));

	/* 4096 relayed connections hold two sockets and four pipe ends each. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 32768) {
		rl.rlim_cur = 32768;
		if (rl.rlim_max < rl.rlim_cur) rl.rlim_max = rl.rlim_cur;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
	}
	/* NFLOG before the table is loaded: a busy group then leaves nothing behind. */
	if (G.root && G.pol.group && nflog_open(G.pol.group) < 0)
		die("NFLOG group %u on the host: %s%s", G.pol.group, strerror(errno), (errno == EBUSY || errno == EPERM) ? " (another process holds that group: choose another)" : "");
	sandbox_sockets(netns_fd, userns_fd);
	close(netns_fd);
	if (userns_fd >= 0) close(userns_fd);

	if (nl_check() < 0) die("the policy's nft lines give no set answered4 in table inet sbx_egress: %s", strerror(errno));
	G.epoll = epoll_create1(EPOLL_CLOEXEC);
	if (G.epoll < 0 || dns_init() < 0 || relay_init() < 0) die("epoll: %s", strerror(errno));
	for (int i = 0; i < G.pol.nextras; i++)
		if (dns_add_extra(G.pol.extras[i].name, G.pol.extras[i].addr) < 0) die("adding extra host %s to answered4: %s", G.pol.extras[i].name, strerror(errno));
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	struct ep stop = { NULL };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &stop };
	if (sfd < 0 || epoll_ctl(G.epoll, EPOLL_CTL_ADD, sfd, &ev) < 0 || epoll_ctl(G.epoll, EPOLL_CTL_ADD, pidfd, &ev) < 0) die("epoll: %s", strerror(errno));
	if (G.nflog_fd >= 0) {
		ev.data.ptr = nflog_source();
		if (epoll_ctl(G.epoll, EPOLL_CTL_ADD, G.nflog_fd, &ev) < 0) die("epoll: %s", strerror(errno));
	}

	printf("READY relay=%u\n", G.relay_port);
	fflush(stdout);
	int logfd = openat(AT_FDCWD, G.state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), nul = open("/dev/null", O_RDWR);
	int out = logfd < 0 ? -1 : openat(logfd, "egress.log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (out < 0) out = nul;
	dup2(out, 1);
	dup2(out, 2);
	if (nul >= 0) dup2(nul, 0);
	setvbuf(stderr, NULL, _IONBF, 0);
	fprintf(stderr, "sbx-egress %d: ready, relay on 127.0.0.1:%u in the sandbox, %d rules, %d upstreams\n",
		(int)getpid(), G.relay_port, G.pol.nrules, G.pol.nupstreams);

	/* The loop: handlers run to completion; timers (upstream timeouts, pending connections,
	 * coalesced denials, the status file) are checked at least every 250 ms. */
	struct epoll_event evs[64];
	for (int running = 1; running;) {
		int n = epoll_wait(G.epoll, evs, 64, 250);
		for (int i = 0; i < n && running; i++) {
			struct ep *e = evs[i].data.ptr;
			if (e == &stop) running = 0;
			else e->fn(e, evs[i].events);
		}
		relay_reap();
		double now = now_mono();
		dns_tick(now);
		relay_tick(now);
		log_tick(now);
	}
	struct signalfd_siginfo si;
	const char *why = read(sfd, &si, sizeof si) == sizeof si ? strsignal((int)si.ssi_signo) : "its holder ended";
	fprintf(stderr, "sbx-egress %d: stopping (%s)\n", (int)getpid(), why);
	relay_shutdown();
	log_final();
	return 0;
}
