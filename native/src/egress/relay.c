/* The transparent TCP relay (design 3.5). Its listening socket is in the sandbox's namespace, on
 * 127.0.0.1, where the in-namespace table redirects TCP to answered addresses on host rules'
 * ports; each upstream socket is made here, in the host's namespace, with the policy's mark.
 * Per connection: the original destination (SO_ORIGINAL_DST, answered by the accepted socket's own
 * namespace), the address gate from the resolver's answered table, the upstream connect started
 * at once, then the client's first bytes judged (TLS SNI; each HTTP/1.x request's Host; else the
 * address's names) before any of them goes upstream. Server bytes reach the client as they come.
 * Allowed: splice both ways (HTTP requests pass through user space, to judge every request head
 * on a kept-alive connection). Refused: RST to the client and a denial record. */
#include "egress.h"
#include "parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONNS_MAX 4096
#define PENDING_TIMEOUT 10.0
#define PIPE_CAP (1 << 20)
#define NAMES_PER_ADDR 64

enum { ST_PENDING, ST_HTTP, ST_SPLICE };
enum { H_HEAD, H_BODY, H_CHUNKED, H_TUNNEL };

/* One direction moved by splice through a pipe, never entering user space. rd: its source may
 * have bytes (epoll said so, and no read since failed with EAGAIN); the epoll interest is level-
 * triggered, so bytes that come while it is 0 are reported again, and a wake-up for one direction
 * does not cost a failing read on the other, quiet one. */
struct half { int pipe[2]; size_t queued; int eof, done, rd; };

struct conn {
	struct ep cl, up;            /* epoll sources of the client (in the sandbox) and upstream sockets */
	struct conn *prev, *next;
	int cfd, ufd;
	uint32_t addr;               /* the original destination, network byte order */
	uint16_t port;
	int st, hst, connected, decided, c_eof;
	int dead;                    /* closed; freed by relay_reap once this epoll batch is handled */
	int ufailed;                 /* the upstream connect failed before the verdict: judge, then reset */
	uint32_t want_c, want_u;     /* the epoll interest last set on each socket (a change costs a syscall) */
	double deadline;
	uint8_t *buf;                /* client bytes: [0, fwd) judged and waiting to go up, [fwd, len) not yet judged */
	size_t len, fwd;
	size_t tried;                /* unjudged bytes a parser already said EG_MORE to (parse.h: call again only with news) */
	uint64_t body_left;
	struct eg_chunked ch;
	struct half c2u, u2c;
};

static struct conn conns = { .prev = &conns, .next = &conns };
static struct conn *dead;        /* closed connections whose other socket may still have an event in this batch */
static int nconns;

static void pump(struct half *h, int from, int to)
{
	for (;;) {
		int progress = 0;
		if (h->rd && !h->eof && h->queued < PIPE_CAP) {
			ssize_t r = splice(from, NULL, h->pipe[1], NULL, PIPE_CAP - h->queued, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (r > 0) { h->queued += (size_t)r; progress = 1; }
			else if (r == 0 || (errno != EAGAIN && errno != EINTR)) h->eof = 1;
			else h->rd = 0;
		}
		if (h->queued > 0) {
			ssize_t w = splice(h->pipe[0], NULL, to, NULL, h->queued, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
			if (w > 0) { h->queued -= (size_t)w; progress = 1; }
			else if (w < 0 && errno != EAGAIN && errno != EINTR) { h->eof = 1; h->queued = 0; }
		}
		if (h->eof && h->queued == 0 && !h->done) { shutdown(to, SHUT_WR); h->done = 1; }
		if (!progress) return;
	}
}

static int half_open(struct half *h)
{
	if (pipe2(h->pipe, O_NONBLOCK | O_CLOEXEC) < 0) { h->pipe[0] = h->pipe[1] = -1; return -1; }
	h->rd = 1;
	fcntl(h->pipe[1], F_SETPIPE_SZ, PIPE_CAP);
	return 0;
}

static void half_close(struct half *h)
{
	if (h->pipe[0] >= 0) close(h->pipe[0]);
	if (h->pipe[1] >= 0) close(h->pipe[1]);
	h->pipe[0] = h->pipe[1] = -1;
}

/* Ends a connection; rst: the client gets a reset (SO_LINGER 0), as a refused connect would. */
static void conn_close(struct conn *c, int rst)
{
	if (rst) {
		struct linger l = { 1, 0 };
		setsockopt(c->cfd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
	}
	epoll_ctl(G.epoll, EPOLL_CTL_DEL, c->cfd, NULL);
	close(c->cfd);
	if (c->ufd >= 0) { epoll_ctl(G.epoll, EPOLL_CTL_DEL, c->ufd, NULL); close(c->ufd); }
	half_close(&c->c2u);
	half_close(&c->u2c);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	free(c->buf);
	c->buf = NULL;
	c->dead = 1;
	c->next = dead;
	dead = c;
	nconns--;
	G.n.open--;
}

static void refuse(struct conn *c, const char *kind, const char *name, const char *seen, const struct eg_rule *rule, int cls, const char *why)
{
	/* The client's socket as it sees itself: from its address to the one it dialled (the
	 * relay's own, for a direct connection), so that its process can be found while it is open. */
	struct sockaddr_in me = { 0 }, peer = { 0 };
	socklen_t ml = sizeof me, pl = sizeof peer;
	struct eg_sock s = { .proto = IPPROTO_TCP, .remote = c->addr, .rport = c->port };
	if (!c->addr && getsockname(c->cfd, (struct sockaddr *)&me, &ml) == 0) { s.remote = me.sin_addr.s_addr; s.rport = ntohs(me.sin_port); }
	int known = getpeername(c->cfd, (struct sockaddr *)&peer, &pl) == 0 && peer.sin_family == AF_INET;
	s.local = peer.sin_addr.s_addr;
	s.lport = ntohs(peer.sin_port);
	struct eg_denial d = { .kind = kind, .proto = "tcp", .addr = c->addr, .port = c->addr ? c->port : -1, .name = name, .seen = seen,
			       .rule = rule && !rule->allow ? rule->index : 0, .src = rule ? rule->src : G.pol.default_src,
			       .cls = cls, .why = why, .sock = known ? &s : NULL };
	log_denial(&d);
	G.n.conn_refused++;
	conn_close(c, 1);
}

/* The verdict for this connection with the name seen (NULL: by address, through the names the
 * resolver answered the address for). 1 allowed; 0 refused (c is gone). */
static int decide(struct conn *c, const char *name, const char *seen)
{
	const struct eg_rule *rule;
	int cls, ok;
	if (name) ok = policy_verdict(&G.pol, c->addr, c->port, EG_TCP, name, dns_name_has(name, c->addr), NULL, 0, &rule, &cls);
	else {
		const char *names[NAMES_PER_ADDR];
		int n = dns_names_of(c->addr, names, NAMES_PER_ADDR);
		ok = policy_verdict(&G.pol, c->addr, c->port, EG_TCP, NULL, 0, names, n, &rule, &cls);
	}
	if (!ok) { refuse(c, "connect", name, seen, rule, cls, NULL); return 0; }
	if (!c->decided) { c->decided = 1; G.n.relayed++; }
	return 1;
}

/* The parsers read from the start at each call: a client sending a byte at a time must not cost
 * O(n^2). A TLS hello is worth another look once its last record is whole; a request head once a
 * new line came. */
static size_t tls_records_end(const uint8_t *b, size_t len)
{
	size_t pos = 0;
	while (pos + 5 <= len) {
		size_t next = pos + 5 + ((size_t)b[pos + 3] << 8 | b[pos + 4]);
		if (next > len) return next;
		pos = next;
	}
	return pos + 5 > len && pos < len ? pos + 5 : pos;
}

static int worth_parsing(const struct conn *c, int tls)
{
	size_t left = c->len - c->fwd;
	if (c->c_eof || c->len >= EG_INSPECT_MAX || c->tried == 0) return 1;
	if (tls) return c->len >= tls_records_end(c->buf, c->len);
	return left > c->tried && memchr(c->buf + c->fwd + c->tried, '\n', left - c->tried) != NULL;
}

/* Judges what the client sent so far; moves fwd over what may go upstream. 0 when c was closed. */
static int judge(struct conn *c)
{
	const char *why = NULL;
	char name[256];
	if (c->st == ST_PENDING) {
		if (c->len == 0) { if (c->c_eof) { conn_close(c, 0); return 0; } return 1; }
		int tls = eg_looks_tls(c->buf, c->len), http = tls == 1 ? 0 : eg_looks_http(c->buf, c->len);
		if (tls == 1) {
			if (!worth_parsing(c, 1)) return 1;
			int r = eg_tls_sni(c->buf, c->len, name, &why);
			if (r == EG_MORE && c->len < EG_INSPECT_MAX && !c->c_eof) { c->tried = c->len; return 1; }
			if (r != EG_OK) {
				refuse(c, "protocol", NULL, "sni", NULL, 0, r == EG_MORE ? "the TLS ClientHello did not end within 16 KiB" : why ? why : "TLS without a server name");
				return 0;
			}
			if (!decide(c, name, "sni")) return 0;
			c->st = ST_HTTP;          /* user space until the hello is up, then splice */
			c->hst = H_TUNNEL;
		} else if ((tls == -1 || http == -1) && !c->c_eof && c->len < EG_INSPECT_MAX) {
			return 1;
		} else if (http == 1) {
			c->st = ST_HTTP;
			c->hst = H_HEAD;
			c->tried = 0;
		} else if (c->port == 80 || c->port == 443) {
			/* Where a name is expected, bytes that are neither (a CRLF before a request line, junk
			 * before a hello) would turn a Host or SNI check into an address check: refused. */
			refuse(c, "protocol", NULL, "address", NULL, 0, "neither TLS nor HTTP/1.x on port 80 or 443");
			return 0;
		} else {
			/* No name to check: judged by address (the plan says so for host rules on other ports). */
			if (!decide(c, NULL, "address")) return 0;
			c->st = ST_HTTP;
			c->hst = H_TUNNEL;
		}
	}
	while (c->st == ST_HTTP && c->fwd < c->len) {
		const uint8_t *p = c->buf + c->fwd;
		size_t left = c->len - c->fwd, used;
		struct eg_http h;
		int r;
		switch (c->hst) {
		case H_TUNNEL:
			c->fwd = c->len;
			break;
		case H_BODY:
			used = left < c->body_left ? left : (size_t)c->body_left;
			c->fwd += used;
			c->body_left -= used;
			if (!c->body_left) c->hst = H_HEAD;
			break;
		case H_CHUNKED:
			r = eg_chunked_feed(&c->ch, p, left, &used);
			c->fwd += used;
			if (r == EG_BAD) { refuse(c, "protocol", NULL, "host", NULL, 0, "malformed chunked body"); return 0; }
			if (r == EG_OK) c->hst = H_HEAD;
			break;
		case H_HEAD:
			if (!worth_parsing(c, 0)) return 1;
			r = eg_http_head(p, left, &h, &why);
			if (r == EG_MORE) {
				if (c->c_eof) { refuse(c, "protocol", NULL, "host", NULL, 0, "the request head ended early"); return 0; }
				c->tried = left;
				return 1;
			}
			c->tried = 0;
			if (r != EG_OK) { refuse(c, "protocol", NULL, "host", NULL, 0, why ? why : "not an HTTP/1.x request"); return 0; }
			if (!decide(c, h.name, h.connect ? "connect" : "host")) return 0;
			c->fwd += h.head_len;
			if (h.connect) c->hst = H_TUNNEL;
			else if (h.chunked) { c->hst = H_CHUNKED; memset(&c->ch, 0, sizeof c->ch); }
			else if (h.content_length) { c->hst = H_BODY; c->body_left = h.content_length; }
			break;
		}
	}
	return 1;
}

static void watch(struct conn *c)
{
	struct epoll_event ec = { .events = 0, .data.ptr = &c->cl }, eu = { .events = 0, .data.ptr = &c->up };
	if (c->st == ST_SPLICE) { if (!c->c2u.eof && c->c2u.queued < PIPE_CAP) ec.events |= EPOLLIN; }
	else if (!c->c_eof && c->len < EG_INSPECT_MAX) ec.events |= EPOLLIN;
	if (c->u2c.queued) ec.events |= EPOLLOUT;
	if (c->ufailed) eu.events = 0;
	else if (!c->connected) eu.events = EPOLLOUT;
	else {
		if (!c->u2c.eof && c->u2c.queued < PIPE_CAP) eu.events |= EPOLLIN;
		if (c->st == ST_SPLICE ? c->c2u.queued > 0 : c->fwd > 0) eu.events |= EPOLLOUT;
	}
	if (ec.events != c->want_c) { epoll_ctl(G.epoll, EPOLL_CTL_MOD, c->cfd, &ec); c->want_c = ec.events; }
	if (eu.events != c->want_u) { epoll_ctl(G.epoll, EPOLL_CTL_MOD, c->ufd, &eu); c->want_u = eu.events; }
}

/* Everything that can move now, in both directions; then the epoll interest. */
static void step(struct conn *c)
{
	if (c->connected) pump(&c->u2c, c->ufd, c->cfd);
	if (c->st != ST_SPLICE) {
		while (c->c2u.rd && !c->c_eof && c->len < EG_INSPECT_MAX) {
			ssize_t r = recv(c->cfd, c->buf + c->len, EG_INSPECT_MAX - c->len, MSG_DONTWAIT);
			if (r > 0) { c->len += (size_t)r; continue; }
			if (r == 0 || (errno != EAGAIN && errno != EINTR)) c->c_eof = 1;
			else c->c2u.rd = 0;
			break;
		}
		if (!judge(c)) return;
		if (c->ufailed && c->decided) { conn_close(c, 1); return; }
		if (c->connected && c->fwd) {
			ssize_t w = send(c->ufd, c->buf, c->fwd, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w < 0 && errno != EAGAIN && errno != EINTR) { conn_close(c, 1); return; }
			if (w > 0) { memmove(c->buf, c->buf + w, c->len - (size_t)w); c->len -= (size_t)w; c->fwd -= (size_t)w; }
		}
		if (c->connected && c->st == ST_HTTP && c->hst == H_TUNNEL && c->len == 0) {
			/* Judged for good (TLS, CONNECT, by address): the rest is spliced. */
			free(c->buf);
			c->buf = NULL;
			if (half_open(&c->c2u) < 0) { conn_close(c, 1); return; }
			c->st = ST_SPLICE;
			c->c2u.eof = c->c_eof;
		} else if (c->connected && c->c_eof && c->len == 0 && !c->c2u.done) {
			shutdown(c->ufd, SHUT_WR);
			c->c2u.done = 1;
		}
	}
	if (c->st == ST_SPLICE && c->connected) pump(&c->c2u, c->cfd, c->ufd);
	if (c->c2u.done && c->u2c.done) { conn_close(c, 0); return; }
	watch(c);
}

#define READABLE (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)

static void client_event(struct ep *self, uint32_t events)
{
	struct conn *c = container_of(self, struct conn, cl);
	if (c->dead) return;
	if (events & READABLE) c->c2u.rd = 1;
	step(c);
}

static void upstream_event(struct ep *self, uint32_t events)
{
	struct conn *c = container_of(self, struct conn, up);
	if (c->dead) return;
	if (events & READABLE) c->u2c.rd = 1;
	if (!c->connected) {
		int err = 0;
		socklen_t el = sizeof err;
		if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) err = errno;
		if (err && c->decided) { conn_close(c, 1); return; }     /* the server refused: so does the relay */
		if (err) {
			/* Judge the client's bytes first, so that a refusal is recorded as one whatever the
			 * server did; a client that says nothing within 1 s gets its reset. */
			c->ufailed = 1;
			if (c->deadline > now_mono() + 1) c->deadline = now_mono() + 1;
			step(c);
			return;
		}
		c->connected = 1;
	}
	step(c);
}

static void accept_one(int fd)
{
	struct sockaddr_in dst;
	socklen_t dl = sizeof dst;
	struct conn *c = calloc(1, sizeof *c);
	if (!c) { close(fd); return; }
	c->cfd = fd;
	c->ufd = -1;
	c->c2u.pipe[0] = c->c2u.pipe[1] = c->u2c.pipe[0] = c->u2c.pipe[1] = -1;
	c->c2u.rd = 1;
	c->cl.fn = client_event;
	c->up.fn = upstream_event;
	c->next = conns.next; c->prev = &conns; conns.next->prev = c; conns.next = c;
	nconns++;
	G.n.open++;
	c->deadline = now_mono() + PENDING_TIMEOUT;
	if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &dl) < 0 || dst.sin_family != AF_INET
	    || (dst.sin_addr.s_addr == htonl(INADDR_LOOPBACK) && ntohs(dst.sin_port) == G.relay_port)) {
		/* Not redirected here by the table: someone in the sandbox dialled the relay itself. */
		refuse(c, "connect", NULL, "connect", NULL, 0, "a direct connection to the relay");
		return;
	}
	c->addr = dst.sin_addr.s_addr;
	c->port = ntohs(dst.sin_port);
	if (nconns > CONNS_MAX) { refuse(c, "limit", NULL, "connect", NULL, 0, "4096 connections are open already"); return; }
	if (policy_class(&G.pol, c->addr) >= 0) { refuse(c, "connect", NULL, "address", NULL, 1, NULL); return; }
	if (!dns_addr_answered(c->addr)) { refuse(c, "connect", NULL, "address", NULL, 0, "no live answer of the resolver holds this address"); return; }
	/* The upstream handshake overlaps the client's first bytes; none of those goes up before the verdict. */
	c->ufd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	c->buf = malloc(EG_INSPECT_MAX);
	if (c->ufd < 0 || !c->buf || half_open(&c->u2c) < 0) { conn_close(c, 1); return; }
	if (G.pol.mark && G.root) setsockopt(c->ufd, SOL_SOCKET, SO_MARK, &G.pol.mark, sizeof G.pol.mark);
	/* No Nagle on either leg: each write here passes on what one side already chose to send, so
	 * holding a small one back for an ACK (a TLS client's Finished, then its request) would only
	 * add round trips that the direct path does not have. Bulk data goes in full segments anyway. */
	int one = 1;
	setsockopt(c->ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(c->cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = dst.sin_port, .sin_addr.s_addr = c->addr };
	if (connect(c->ufd, (struct sockaddr *)&to, sizeof to) < 0 && errno != EINPROGRESS) {
		/* Refused at once (no route): as a refusal that comes later, the verdict is given first. */
		c->ufailed = 1;
		c->deadline = now_mono() + 1;
	}
	struct epoll_event ec = { .events = EPOLLIN, .data.ptr = &c->cl }, eu = { .events = c->ufailed ? 0 : EPOLLOUT, .data.ptr = &c->up };
	c->want_c = ec.events;
	c->want_u = eu.events;
	if (epoll_ctl(G.epoll, EPOLL_CTL_ADD, c->cfd, &ec) < 0 || epoll_ctl(G.epoll, EPOLL_CTL_ADD, c->ufd, &eu) < 0) {
		epoll_ctl(G.epoll, EPOLL_CTL_DEL, c->cfd, NULL);
		conn_close(c, 1);
	}
}

static void listen_event(struct ep *self, uint32_t events)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(G.relay_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) return;
		accept_one(fd);
	}
}

static struct ep listen_ep = { listen_event };

int relay_init(void)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &listen_ep };
	return epoll_ctl(G.epoll, EPOLL_CTL_ADD, G.relay_fd, &ev);
}

/* Pending connections (not judged yet) close after 10 s. */
void relay_tick(double now)
{
	for (struct conn *c = conns.next, *next; c != &conns; c = next) {
		next = c->next;
		if ((c->st == ST_PENDING || c->ufailed) && now >= c->deadline) conn_close(c, 1);
	}
}

void relay_reap(void)
{
	while (dead) { struct conn *c = dead; dead = c->next; free(c); }
}

void relay_shutdown(void)
{
	while (conns.next != &conns) conn_close(conns.next, 0);
	relay_reap();
}
