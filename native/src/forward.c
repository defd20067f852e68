/* The user-space port forwarder, for where the kernel path cannot serve: an IPv6 host address in
 * front of an IPv4 sandbox, or a CLI without root (no veth, no nftables). It runs on its own
 * thread in the CLI process, in the host's network namespace for its listening socket; when given
 * the sandbox's namespace, that thread alone enters it (setns affects the calling thread only) so
 * that its outgoing sockets connect to the sandbox's own loopback. TCP bytes move with splice()
 * through a pipe per direction and never enter user space; UDP gets one connected socket per
 * client, dropped after 60 s without traffic. */
#include "internal.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PIPE_CAP (1 << 20)
#define MAX_UDP 256

struct half { int from, to, pipe[2]; size_t queued; int eof, done; };
struct conn { struct half ab, ba; struct conn *next; int closing; };
struct udp_session { struct sockaddr_storage peer; socklen_t peer_len; int fd; time_t last; };

struct sbx_forwarder {
	int listen_fd, stop_fd, netns_fd, udp, epoll;
	struct sockaddr_storage target;
	socklen_t target_len;
	pthread_t thread;
	struct conn *conns;
	struct udp_session sessions[MAX_UDP];
};

static int parse_addr(const char *ip, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	if (!ip || !*ip) ip = "0.0.0.0";
	if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) { v4->sin_family = AF_INET; v4->sin_port = htons((uint16_t)port); *len = sizeof *v4; return 0; }
	if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) { v6->sin6_family = AF_INET6; v6->sin6_port = htons((uint16_t)port); *len = sizeof *v6; return 0; }
	errno = EINVAL;
	return -1;
}

/* Moves what it can from `from` through the pipe to `to`; returns -1 when the direction is over. */
static void pump(struct half *h)
{
	for (;;) {
		int progress = 0;
		if (!h->eof && h->queued < PIPE_CAP) {
			ssize_t r = splice(h->from, NULL, h->pipe[1], NULL, PIPE_CAP - h->queued, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (r > 0) { h->queued += (size_t)r; progress = 1; }
			else if (r == 0) h->eof = 1;
			else if (errno != EAGAIN && errno != EINTR) h->eof = 1;
		}
		if (h->queued > 0) {
			ssize_t w = splice(h->pipe[0], NULL, h->to, NULL, h->queued, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (w > 0) { h->queued -= (size_t)w; progress = 1; }
			else if (w < 0 && errno != EAGAIN && errno != EINTR) { h->eof = 1; h->queued = 0; }
		}
		if (h->eof && h->queued == 0 && !h->done) { shutdown(h->to, SHUT_WR); h->done = 1; }
		if (!progress) return;
	}
}

static void watch(struct sbx_forwarder *f, struct conn *c)
{
	/* Level-triggered interest: read where the pipe has room, write where it holds data. */
	struct epoll_event ea = { .events = 0, .data.ptr = c }, eb = { .events = 0, .data.ptr = c };
	if (!c->ab.eof && c->ab.queued < PIPE_CAP) ea.events |= EPOLLIN;
	if (c->ba.queued) ea.events |= EPOLLOUT;
	if (!c->ba.eof && c->ba.queued < PIPE_CAP) eb.events |= EPOLLIN;
	if (c->ab.queued) eb.events |= EPOLLOUT;
	epoll_ctl(f->epoll, EPOLL_CTL_MOD, c->ab.from, &ea);
	epoll_ctl(f->epoll, EPOLL_CTL_MOD, c->ba.from, &eb);
}

static void conn_close(struct sbx_forwarder *f, struct conn *c)
{
	struct conn **p = &f->conns;
	while (*p && *p != c) p = &(*p)->next;
	if (*p) *p = c->next;
	close(c->ab.from); close(c->ba.from);
	close(c->ab.pipe[0]); close(c->ab.pipe[1]); close(c->ba.pipe[0]); close(c->ba.pipe[1]);
	free(c);
}

static void tcp_accept(struct sbx_forwarder *f)
{
	int a = accept4(f->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (a < 0) return;
	int b = socket(f->target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct conn *c = calloc(1, sizeof *c);
	if (b < 0 || !c || (connect(b, (struct sockaddr *)&f->target, f->target_len) < 0 && errno != EINPROGRESS)
	    || pipe2(c->ab.pipe, O_NONBLOCK | O_CLOEXEC) < 0 || pipe2(c->ba.pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
		close(a); if (b >= 0) close(b); free(c);
		return;
	}
	fcntl(c->ab.pipe[1], F_SETPIPE_SZ, PIPE_CAP);
	fcntl(c->ba.pipe[1], F_SETPIPE_SZ, PIPE_CAP);
	c->ab.from = a; c->ab.to = b; c->ba.from = b; c->ba.to = a;
	c->next = f->conns;
	f->conns = c;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	epoll_ctl(f->epoll, EPOLL_CTL_ADD, a, &ev);
	ev.events = EPOLLIN | EPOLLOUT;
	epoll_ctl(f->epoll, EPOLL_CTL_ADD, b, &ev);
}

static void udp_in(struct sbx_forwarder *f)
{
	char buf[65536];
	struct sockaddr_storage peer;
	socklen_t len = sizeof peer;
	ssize_t n = recvfrom(f->listen_fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&peer, &len);
	if (n < 0) return;
	time_t now = time(NULL);
	struct udp_session *s = NULL, *oldest = &f->sessions[0];
	for (int i = 0; i < MAX_UDP; i++) {
		struct udp_session *x = &f->sessions[i];
		if (x->fd > 0 && x->peer_len == len && memcmp(&x->peer, &peer, len) == 0) { s = x; break; }
		if (x->fd <= 0 || x->last < oldest->last) oldest = x;
	}
	if (!s) {
		s = oldest;
		if (s->fd > 0) { epoll_ctl(f->epoll, EPOLL_CTL_DEL, s->fd, NULL); close(s->fd); }
		s->fd = socket(f->target.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&f->target, f->target_len) < 0) { if (s->fd >= 0) close(s->fd); s->fd = 0; return; }
		memcpy(&s->peer, &peer, len);
		s->peer_len = len;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = s };
		epoll_ctl(f->epoll, EPOLL_CTL_ADD, s->fd, &ev);
	}
	s->last = now;
	/* A connected UDP socket reports an earlier ICMP error (the sandbox's port was not open yet)
	 * on its next send, and drops that datagram: send it again once the error is consumed. */
	if (send(s->fd, buf, (size_t)n, MSG_DONTWAIT) < 0 && errno == ECONNREFUSED) send(s->fd, buf, (size_t)n, MSG_DONTWAIT);
}

static void udp_reply(struct sbx_forwarder *f, struct udp_session *s)
{
	char buf[65536];
	ssize_t n;
	while ((n = recv(s->fd, buf, sizeof buf, MSG_DONTWAIT)) >= 0) {
		sendto(f->listen_fd, buf, (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&s->peer, s->peer_len);
		s->last = time(NULL);
	}
}

static void *run(void *arg)
{
	struct sbx_forwarder *f = arg;
	struct epoll_event evs[64];
	if (f->netns_fd >= 0 && setns(f->netns_fd, CLONE_NEWNET) < 0) return NULL;
	for (;;) {
		int n = epoll_wait(f->epoll, evs, 64, 10000);
		for (int i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;
			if (p == &f->stop_fd) return NULL;
			if (p == &f->listen_fd) { if (f->udp) udp_in(f); else tcp_accept(f); continue; }
			if (f->udp) { udp_reply(f, p); continue; }
			struct conn *c = p;
			pump(&c->ab);
			pump(&c->ba);
			if ((c->ab.done && c->ba.done) || (evs[i].events & (EPOLLERR)) ) conn_close(f, c);
			else watch(f, c);
		}
		if (f->udp) {
			time_t now = time(NULL);
			for (int i = 0; i < MAX_UDP; i++) {
				struct udp_session *s = &f->sessions[i];
				if (s->fd > 0 && now - s->last > 60) { epoll_ctl(f->epoll, EPOLL_CTL_DEL, s->fd, NULL); close(s->fd); s->fd = 0; }
			}
		}
	}
}

SBX_API int sbx_forward_start(int32_t udp, const char *listen_ip, int32_t listen_port, const char *target_ip, int32_t target_port,
			      int32_t netns_fd, struct sbx_forwarder **out, int32_t *bound_port, struct sbx_error *err)
{
	struct sockaddr_storage ls;
	socklen_t llen;
	struct sbx_forwarder *f = calloc(1, sizeof *f);
	if (!f) return sbx_fail(err, ENOMEM, "forwarder");
	f->udp = udp;
	f->netns_fd = netns_fd;
	if (parse_addr(listen_ip, listen_port, &ls, &llen) < 0 || parse_addr(target_ip, target_port, &f->target, &f->target_len) < 0) { free(f); return sbx_fail(err, EINVAL, "address"); }
	f->listen_fd = socket(ls.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (f->listen_fd < 0) { int e = errno; free(f); return sbx_fail(err, e, "socket"); }
	int one = 1;
	setsockopt(f->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ls.ss_family == AF_INET6) setsockopt(f->listen_fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(f->listen_fd, (struct sockaddr *)&ls, llen) < 0 || (!udp && listen(f->listen_fd, 512) < 0)) { int e = errno; close(f->listen_fd); free(f); return sbx_fail(err, e, "bind"); }
	socklen_t blen = sizeof ls;
	getsockname(f->listen_fd, (struct sockaddr *)&ls, &blen);
	*bound_port = ntohs(ls.ss_family == AF_INET ? ((struct sockaddr_in *)&ls)->sin_port : ((struct sockaddr_in6 *)&ls)->sin6_port);
	f->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->epoll = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &f->listen_fd };
	epoll_ctl(f->epoll, EPOLL_CTL_ADD, f->listen_fd, &ev);
	ev.data.ptr = &f->stop_fd;
	epoll_ctl(f->epoll, EPOLL_CTL_ADD, f->stop_fd, &ev);
	int e = pthread_create(&f->thread, NULL, run, f);
	if (e) { close(f->listen_fd); close(f->stop_fd); close(f->epoll); free(f); return sbx_fail(err, e, "pthread_create"); }
	*out = f;
	return 0;
}

SBX_API int sbx_forward_stop(struct sbx_forwarder *f)
{
	uint64_t one = 1;
	if (!f) return 0;
	if (write(f->stop_fd, &one, sizeof one) < 0) { /* the thread is gone already */ }
	pthread_join(f->thread, NULL);
	while (f->conns) conn_close(f, f->conns);
	for (int i = 0; i < MAX_UDP; i++) if (f->sessions[i].fd > 0) close(f->sessions[i].fd);
	close(f->listen_fd); close(f->stop_fd); close(f->epoll);
	if (f->netns_fd >= 0) close(f->netns_fd);
	free(f);
	return 0;
}
