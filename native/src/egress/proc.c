/* Which sandbox process a refused connection or lookup came from (design 5: "the process when
 * known"), for its denial record. The socket's inode comes from sock_diag, asked through a
 * NETLINK_SOCK_DIAG socket the helper opened in the sandbox's network namespace (so the lookup is
 * by the address pair the sandbox sees); the process holding that inode is then found among the
 * processes of that namespace, by their /proc/PID/fd links. Runs in sbx-egress, in the host's
 * namespaces: as root, or rootless as the caller, who owns the sandbox's user namespace and so may
 * read its processes' fds. Asked while the refused socket is still open (before the relay resets
 * it, before the resolver answers), since a client usually exits right after its refusal.
 * Bounded: at most WORK_PER_S /proc entries and fd links are looked at a second, whatever the
 * sandbox does (a flood of refusals, a process holding a million fds), so that sbx-egress's loop
 * is never held up for long; beyond that a record has no process. */
#include "egress.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define WORK_PER_S 20000
#define KNOWN_MAX 64

/* The processes last seen in the sandbox's namespace: looked at first, before a walk of /proc. */
static pid_t known[KNOWN_MAX];
static int nknown;
static double window;
static long work;

/* One more /proc entry or fd link looked at; 0 when this second's budget is spent. */
static int spend(void)
{
	double now = now_mono();
	if (now - window >= 1.0) { window = now; work = 0; }
	return ++work <= WORK_PER_S;
}

/* The inode of the socket whose own address is local:lport and whose peer is remote:rport, in the
 * sandbox's namespace; 0 when sock_diag has none. `swap`: UDP's lookup takes the pair the other
 * way round (udp_diag looks the socket up as a received datagram would: from the peer, to it). */
static unsigned long diag_inode(const struct eg_sock *s, int swap)
{
	struct { struct nlmsghdr nh; struct inet_diag_req_v2 r; } req;
	memset(&req, 0, sizeof req);
	req.nh.nlmsg_len = sizeof req;
	req.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.r.sdiag_family = AF_INET;
	req.r.sdiag_protocol = s->proto;
	req.r.idiag_states = ~0u;
	req.r.id.idiag_src[0] = swap ? s->remote : s->local;
	req.r.id.idiag_sport = htons(swap ? s->rport : s->lport);
	req.r.id.idiag_dst[0] = swap ? s->local : s->remote;
	req.r.id.idiag_dport = htons(swap ? s->lport : s->rport);
	req.r.id.idiag_cookie[0] = req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (send(G.diag_fd, &req, sizeof req, 0) != (ssize_t)sizeof req) return 0;
	/* The answer to a single-socket request is queued before send returns. */
	union { struct nlmsghdr h; uint8_t b[1024]; } buf;
	ssize_t n = recv(G.diag_fd, &buf, sizeof buf, MSG_DONTWAIT);
	unsigned long ino = 0;
	for (struct nlmsghdr *h = &buf.h; n > 0 && NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg))) continue;
		const struct inet_diag_msg *m = NLMSG_DATA(h);
		ino = m->idiag_inode;
	}
	while (recv(G.diag_fd, &buf, sizeof buf, MSG_DONTWAIT) > 0) {}     /* nothing stale for the next ask */
	return ino;
}

/* PID holds socket:[ino] among its fds. */
static int holds(pid_t pid, const char *want)
{
	char path[64], link[64];
	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (!d) return 0;
	int found = 0;
	for (struct dirent *e; !found && (e = readdir(d));) {
		if (e->d_name[0] == '.') continue;
		if (!spend()) break;
		char fd[320];
		snprintf(fd, sizeof fd, "%s/%s", path, e->d_name);
		ssize_t n = readlink(fd, link, sizeof link - 1);
		if (n > 0) { link[n] = 0; found = !strcmp(link, want); }
	}
	closedir(d);
	return found;
}

static int in_sandbox(pid_t pid)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof path, "/proc/%d/ns/net", (int)pid);
	return stat(path, &st) == 0 && st.st_ino == G.netns_ino && st.st_dev == G.netns_dev;
}

/* Walks /proc once: refreshes `known` (the namespace's processes) and returns the holder, or 0. */
static pid_t walk(const char *want)
{
	DIR *d = opendir("/proc");
	if (!d) return 0;
	pid_t hit = 0;
	nknown = 0;
	for (struct dirent *e; (e = readdir(d));) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0 || pid == getpid()) continue;
		if (!spend()) break;
		if (!in_sandbox((pid_t)pid)) continue;
		if (nknown < KNOWN_MAX) known[nknown++] = (pid_t)pid;
		if (!hit && holds((pid_t)pid, want)) hit = (pid_t)pid;
	}
	closedir(d);
	return hit;
}

/* Name: and the last NSpid: of /proc/PID/status (the PID as the sandbox's own ps shows it). */
static int describe(pid_t pid, struct eg_proc *out)
{
	char path[64], buf[2048];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (fd >= 0) close(fd);
	if (n <= 0) return 0;
	buf[n] = 0;
	const char *name = strstr(buf, "Name:\t"), *ns = strstr(buf, "\nNSpid:");
	if (!name) return 0;
	name += 6;
	size_t len = strcspn(name, "\n");
	snprintf(out->comm, sizeof out->comm, "%.*s", (int)(len < sizeof out->comm ? len : sizeof out->comm - 1), name);
	/* The sandbox chooses its processes' names: only printable ASCII reaches a record (and from
	 * there an operator's terminal). */
	for (char *c = out->comm; *c; c++) if (*c < 0x20 || *c > 0x7e) *c = '?';
	out->host_pid = pid;
	out->pid = 0;
	if (ns) {
		/* One PID per namespace from the host's down; the last is the sandbox's. */
		const char *p = ns + 7, *eol = p + strcspn(p, "\n");
		int count = 0;
		for (char *end; p < eol; p = end) {
			long v = strtol(p, &end, 10);
			if (end == p) break;
			out->pid = (pid_t)v;
			count++;
		}
		if (count < 2) out->pid = 0;
	}
	return 1;
}

int proc_owner(const struct eg_sock *s, struct eg_proc *out)
{
	if (G.diag_fd < 0 || !G.netns_ino) return 0;
	unsigned long ino = diag_inode(s, s->proto == IPPROTO_UDP);
	if (!ino && s->proto == IPPROTO_UDP) ino = diag_inode(s, 0);
	if (!ino) return 0;
	char want[48];
	snprintf(want, sizeof want, "socket:[%lu]", ino);
	pid_t hit = 0;
	for (int i = 0; i < nknown && !hit; i++)
		if (in_sandbox(known[i]) && holds(known[i], want)) hit = known[i];
	if (!hit) hit = walk(want);
	return hit && describe(hit, out);
}
