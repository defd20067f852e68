/* sbx_netprobe (sbx.h): the egress attestation's probes, run from inside a sandbox's network
 * namespace (docs/egress-design.md 6). The caller is a koffi worker thread of the CLI (root, or
 * the user of a rootless sandbox); it never changes namespace itself. A helper H, cloned in the
 * caller's memory while the caller's thread waits (as posix_spawn does), joins the sandbox's user
 * namespace (when asked) and network namespace, runs the probes with non-blocking sockets and
 * ppoll deadlines, and writes each result into the caller's array. H uses system calls only (no
 * malloc, no stdio, no locks: another thread of the caller may hold one).
 *
 *   CALLER (worker thread)                     H (own stack, caller's memory)
 *   open /proc/PID/ns/{user,net}
 *   clone(CLONE_VM | CLONE_VFORK) ──────────►  setns(user), setns(net)
 *     (waits)                                  for each probe: run it, results[i] = its result
 *   ◄────────────────────────────────────────  return (exit)
 *   waitpid(H); read the job's results
 */
#include "internal.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NETPROBE_MAX 64
#define DNS_BUF 4096

/* ---- In H: the probes. ---- */

static uint64_t now_us(void)
{
	return now_ns() / 1000;
}

static uint32_t classify(int e)
{
	switch (e) {
	case 0:
		return SBX_OUTCOME_CONNECTED;
	case ECONNREFUSED:
		return SBX_OUTCOME_REFUSED;
	case ENETUNREACH: case EHOSTUNREACH: case ENETDOWN: case EHOSTDOWN: case EADDRNOTAVAIL: case EPERM: case EACCES:
		return SBX_OUTCOME_UNREACHABLE;
	case ETIMEDOUT:
		return SBX_OUTCOME_TIMEOUT;
	default:
		return SBX_OUTCOME_ERROR;
	}
}

static void result_errno(struct sbx_probe_result *r, int e)
{
	r->outcome = classify(e);
	r->err = e;
}

static socklen_t sockaddr_of(const struct sbx_probe *p, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (p->family == 6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(p->port);
		memcpy(&a->sin6_addr, p->addr, 16);
		return sizeof *a;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	a->sin_family = AF_INET;
	a->sin_port = htons(p->port);
	memcpy(&a->sin_addr, p->addr, 4);
	return sizeof *a;
}

/* Waits for events on fd until the deadline (µs, CLOCK_MONOTONIC): 1 ready, 0 timed out, -1 errno. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = now_us();
		if (now >= deadline)
			return 0;
		uint64_t left = deadline - now;
		struct timespec ts = { .tv_sec = (time_t)(left / 1000000), .tv_nsec = (long)(left % 1000000) * 1000 };
		struct pollfd pfd = { .fd = fd, .events = events };
		int r = ppoll(&pfd, 1, &ts, NULL);
		if (r < 0 && errno == EINTR)
			continue;
		return r;
	}
}

/* A non-blocking connect to the probe's address, finished by the deadline: the socket, or -1 with
 * r filled. */
static int connect_by(const struct sbx_probe *p, int type, uint64_t deadline, struct sbx_probe_result *r)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(p, &ss);
	int s = socket(p->family == 6 ? AF_INET6 : AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0) {
		result_errno(r, errno);
		return -1;
	}
	if (connect(s, (struct sockaddr *)&ss, len) == 0)
		return s;
	if (errno != EINPROGRESS) {
		result_errno(r, errno);
		close(s);
		return -1;
	}
	int w = wait_fd(s, POLLOUT, deadline);
	int e = 0;
	socklen_t el = sizeof e;
	if (w == 0) {
		r->outcome = SBX_OUTCOME_TIMEOUT;
		r->err = ETIMEDOUT;
	} else if (w < 0 || getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &el) < 0) {
		result_errno(r, errno);
	} else if (e != 0) {
		result_errno(r, e);
	} else {
		return s;
	}
	close(s);
	return -1;
}

/* Closes a probe's TCP socket with a reset: no FIN_WAIT or TIME_WAIT left in the sandbox. */
static void close_rst(int s)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l);
	close(s);
}

static void probe_tcp(const struct sbx_probe *p, struct sbx_probe_result *r, uint64_t deadline)
{
	int s = connect_by(p, SOCK_STREAM, deadline, r);
	if (s < 0)
		return;
	r->outcome = SBX_OUTCOME_CONNECTED;
	close_rst(s);
}

/* The query's wire form (RFC 1035 4.1): header, name, type, class. Its length, or 0 for a name
 * that cannot be encoded. */
static size_t dns_query(const struct sbx_probe *p, uint16_t id, uint8_t *q, size_t cap)
{
	static const uint8_t head[10] = { 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 }; /* RD, one question */
	if (cap < 12 + 256 + 4)
		return 0;
	q[0] = (uint8_t)(id >> 8);
	q[1] = (uint8_t)id;
	memcpy(q + 2, head, sizeof head);
	size_t o = 12;
	const char *n = p->name;
	size_t total = 0;
	while (*n) {
		const char *dot = n;
		while (*dot && *dot != '.')
			dot++;
		size_t l = (size_t)(dot - n);
		if (l == 0 || l > 63 || (total += l + 1) > 254)
			return 0;
		q[o++] = (uint8_t)l;
		memcpy(q + o, n, l);
		o += l;
		n = *dot ? dot + 1 : dot;
	}
	q[o++] = 0;
	q[o++] = (uint8_t)(p->qtype >> 8);
	q[o++] = (uint8_t)p->qtype;
	q[o++] = (uint8_t)(p->qclass >> 8);
	q[o++] = (uint8_t)p->qclass;
	return o;
}

/* Past a possibly compressed name at *o; 0 if it runs off the message. */
static int skip_name(const uint8_t *m, size_t n, size_t *o)
{
	for (int labels = 0; labels < 128; labels++) {
		if (*o >= n)
			return 0;
		uint8_t l = m[*o];
		if ((l & 0xc0) == 0xc0) {
			*o += 2;
			return *o <= n;
		}
		if (l & 0xc0)
			return 0;
		*o += 1 + (size_t)l;
		if (l == 0)
			return *o <= n;
	}
	return 0;
}

static void dotted(const uint8_t a[4], char *out)
{
	char *o = out;
	for (int i = 0; i < 4; i++) {
		unsigned v = a[i];
		if (v >= 100)
			*o++ = (char)('0' + v / 100);
		if (v >= 10)
			*o++ = (char)('0' + v / 10 % 10);
		*o++ = (char)('0' + v % 10);
		if (i < 3)
			*o++ = '.';
	}
	*o = '\0';
}

/* A response to query id: its rcode, answer count and the first A or TXT answer. */
static void dns_answer(const uint8_t *m, size_t n, struct sbx_probe_result *r)
{
	r->outcome = SBX_OUTCOME_ERROR;
	r->err = EBADMSG;
	if (n < 12 || !(m[2] & 0x80))
		return;
	size_t qd = (size_t)m[4] << 8 | m[5], an = (size_t)m[6] << 8 | m[7], o = 12;
	for (size_t i = 0; i < qd; i++)
		if (!skip_name(m, n, &o) || (o += 4) > n)
			return;
	for (size_t i = 0; i < an && !r->text[0]; i++) {
		if (!skip_name(m, n, &o) || o + 10 > n)
			return;
		uint16_t type = (uint16_t)(m[o] << 8 | m[o + 1]);
		size_t rdlen = (size_t)m[o + 8] << 8 | m[o + 9];
		o += 10;
		if (o + rdlen > n)
			return;
		if (type == 1 && rdlen == 4) {
			dotted(m + o, r->text);
		} else if (type == 16 && rdlen >= 1) {
			size_t l = m[o];
			if (l + 1 > rdlen)
				return;
			memcpy(r->text, m + o + 1, l);
			r->text[l] = '\0';
		}
		o += rdlen;
	}
	r->outcome = SBX_OUTCOME_ANSWERED;
	r->err = 0;
	r->rcode = m[3] & 0x0f;
	r->answers = (uint32_t)an;
}

static void probe_dns_udp(const struct sbx_probe *p, struct sbx_probe_result *r, uint64_t deadline, uint16_t id)
{
	uint8_t q[DNS_BUF], m[DNS_BUF];
	size_t qn = dns_query(p, id, q, sizeof q);
	if (!qn) {
		result_errno(r, EINVAL);
		return;
	}
	/* Connected, so that an ICMP error for the query comes back as this socket's errno. */
	int s = connect_by(p, SOCK_DGRAM, deadline, r);
	if (s < 0)
		return;
	if (send(s, q, qn, 0) < 0) {
		result_errno(r, errno);
		close(s);
		return;
	}
	for (;;) {
		int w = wait_fd(s, POLLIN, deadline);
		if (w == 0) {
			r->outcome = SBX_OUTCOME_TIMEOUT;
			r->err = ETIMEDOUT;
			break;
		}
		ssize_t got = w < 0 ? -1 : recv(s, m, sizeof m, 0);
		if (got < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			result_errno(r, errno);
			break;
		}
		if (got >= 2 && m[0] == q[0] && m[1] == q[1]) {
			dns_answer(m, (size_t)got, r);
			break;
		}
		/* Another query's answer: wait on for ours. */
	}
	close(s);
}

static void probe_dns_tcp(const struct sbx_probe *p, struct sbx_probe_result *r, uint64_t deadline, uint16_t id)
{
	uint8_t q[DNS_BUF], m[DNS_BUF + 2];
	size_t qn = dns_query(p, id, q + 2, sizeof q - 2);
	if (!qn) {
		result_errno(r, EINVAL);
		return;
	}
	q[0] = (uint8_t)(qn >> 8);
	q[1] = (uint8_t)qn;
	int s = connect_by(p, SOCK_STREAM, deadline, r);
	if (s < 0)
		return;
	/* A few hundred bytes on a fresh connection: the send buffer takes them at once. */
	if (send(s, q, qn + 2, MSG_NOSIGNAL) != (ssize_t)(qn + 2)) {
		result_errno(r, errno ? errno : EIO);
		close_rst(s);
		return;
	}
	size_t have = 0;
	for (;;) {
		if (have >= 2 && have >= 2 + ((size_t)m[0] << 8 | m[1])) {
			dns_answer(m + 2, have - 2, r);
			break;
		}
		if (have == sizeof m) {
			result_errno(r, EMSGSIZE);
			break;
		}
		int w = wait_fd(s, POLLIN, deadline);
		if (w == 0) {
			r->outcome = SBX_OUTCOME_TIMEOUT;
			r->err = ETIMEDOUT;
			break;
		}
		ssize_t got = w < 0 ? -1 : recv(s, m + have, sizeof m - have, 0);
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (got <= 0) {
			result_errno(r, got < 0 ? errno : ECONNRESET);
			break;
		}
		have += (size_t)got;
	}
	close_rst(s);
}

/* /proc/self/net/if_inet6 shows the network namespace of the reading task: H's, the sandbox's.
 * No file: IPv6 is off in this kernel, so no address. */
static void probe_inet6(struct sbx_probe_result *r)
{
	r->outcome = SBX_OUTCOME_COUNTED;
	int fd = open("/proc/self/net/if_inet6", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			result_errno(r, errno);
		return;
	}
	char buf[4096];
	size_t col = 0;
	int loopback = 0;
	char addr[33];
	for (;;) {
		ssize_t got = read(fd, buf, sizeof buf);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			result_errno(r, errno);
			break;
		}
		if (got == 0)
			break;
		for (ssize_t i = 0; i < got; i++) {
			/* Each line starts with the address as 32 hex digits. */
			if (col < 32)
				addr[col] = buf[i];
			if (col == 32) {
				addr[32] = '\0';
				loopback = sbx_streq(addr, "00000000000000000000000000000001");
				if (!loopback && !r->text[0])
					sbx_strlcpy(r->text, addr, sizeof r->text);
			}
			col++;
			if (buf[i] == '\n') {
				r->answers++;
				col = 0;
			}
		}
	}
	close(fd);
}

static void run_probe(const struct sbx_probe *p, struct sbx_probe_result *r, uint16_t id)
{
	memset(r, 0, sizeof *r);
	r->rcode = -1;
	uint64_t start = now_us();
	uint64_t deadline = start + (p->timeout_us ? p->timeout_us : 50000);
	if ((p->family != 4 && p->family != 6) && p->kind != SBX_PROBE_INET6_ADDRS)
		result_errno(r, EAFNOSUPPORT);
	else if (p->kind == SBX_PROBE_TCP)
		probe_tcp(p, r, deadline);
	else if (p->kind == SBX_PROBE_DNS_UDP)
		probe_dns_udp(p, r, deadline, id);
	else if (p->kind == SBX_PROBE_DNS_TCP)
		probe_dns_tcp(p, r, deadline, id);
	else if (p->kind == SBX_PROBE_INET6_ADDRS)
		probe_inet6(r);
	else
		result_errno(r, EINVAL);
	r->elapsed_us = now_us() - start;
}

/* What the caller and H share: H runs in the caller's memory (CLONE_VM), on its own stack, while
 * the caller's thread waits (CLONE_VFORK), and writes its results straight into the caller's array. */
struct job {
	int userns, netns;
	const struct sbx_probe *probes;
	struct sbx_probe_result *results;
	uint32_t n;
	uint32_t done;          /* results written */
	int32_t failed[2];      /* which setns failed (1 user, 2 net), and its errno */
};

static int helper(void *arg)
{
	struct job *j = arg;
	if (j->userns >= 0 && setns(j->userns, CLONE_NEWUSER) < 0) {
		j->failed[0] = 1, j->failed[1] = errno;
		return 1;
	}
	if (setns(j->netns, CLONE_NEWNET) < 0) {
		j->failed[0] = 2, j->failed[1] = errno;
		return 1;
	}
	/* Query ids differ between runs and probes: a stale answer is not taken for this one's. */
	uint16_t id = (uint16_t)(now_ns() ^ (now_ns() >> 16) ^ (uint64_t)syscall(SYS_gettid));
	for (uint32_t i = 0; i < j->n; i++) {
		run_probe(&j->probes[i], &j->results[i], (uint16_t)(id + i));
		j->done = i + 1;
	}
	return 0;
}

/* ---- In the caller: H's life. ---- */

#define HELPER_STACK (256 * 1024)

SBX_API int sbx_netprobe(int32_t pid, int32_t join_userns, const struct sbx_probe *probes, uint32_t n,
			 struct sbx_probe_result *results, struct sbx_error *err)
{
	char path[64], what[96];
	if (pid <= 0 || !probes || !results || n == 0 || n > NETPROBE_MAX)
		return sbx_fail(err, EINVAL, "sbx_netprobe: a pid and 1 to 64 probes");
	memset(results, 0, sizeof *results * n);
	struct job j = { .userns = -1, .netns = -1, .probes = probes, .results = results, .n = n };
	if (join_userns) {
		snprintf(path, sizeof path, "/proc/%d/ns/user", pid);
		if ((j.userns = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			snprintf(what, sizeof what, "open %s", path);
			return sbx_fail(err, errno, what);
		}
	}
	snprintf(path, sizeof path, "/proc/%d/ns/net", pid);
	if ((j.netns = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		int e = errno;
		if (j.userns >= 0)
			close(j.userns);
		snprintf(what, sizeof what, "open %s", path);
		return sbx_fail(err, e, what);
	}
	/* H's stack, with a guard page below it. CLONE_VM | CLONE_VFORK, as posix_spawn does: no copy
	 * of the caller's page tables (a Node process's: most of a fork's cost), and no libc lock or
	 * atfork handler is involved. H shares no thread group and no fs_struct with the caller, so it
	 * may join a user namespace. */
	char *stack = mmap(NULL, HELPER_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	int rc = 0;
	if (stack == MAP_FAILED) {
		rc = sbx_fail(err, errno, "mmap");
	} else {
		mprotect(stack, 4096, PROT_NONE);
		pid_t h = clone(helper, stack + HELPER_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &j);
		int st = 0;
		if (h < 0)
			rc = sbx_fail(err, errno, "clone");
		else
			while (waitpid(h, &st, __WALL) < 0 && errno == EINTR) {}
		munmap(stack, HELPER_STACK);
		if (h >= 0 && j.failed[0]) {
			snprintf(what, sizeof what, "join the %s namespace of process %d", j.failed[0] == 1 ? "user" : "network", pid);
			rc = sbx_fail(err, j.failed[1], what);
		} else if (h >= 0 && j.done != n) {
			rc = sbx_fail(err, EIO, "the probe helper ended before its last result");
		}
	}
	close(j.netns);
	if (j.userns >= 0)
		close(j.userns);
	return rc;
}
