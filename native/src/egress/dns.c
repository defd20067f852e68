/* The sandbox's resolver (design 3.4, contract 5). Its sockets listen on 127.0.0.53:53 inside the
 * sandbox's namespace (made there by the helper); it asks the upstreams from the host's namespace.
 * Names no rule allows get NXDOMAIN here and are never forwarded. An A answer's addresses, minus
 * those in a refused class, go into the kernel set answered4 (nl.c) and into the answered table
 * below, which the relay trusts: name -> addresses, each alive for its clamped TTL + grace, the
 * least recently used names dropped past 4096. The table also serves repeated lookups. */
#include "egress.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define T_A 1
#define T_CNAME 5
#define T_PTR 12
#define T_TXT 16
#define T_AAAA 28
#define T_OPT 41
#define T_SVCB 64
#define T_HTTPS 65
#define T_IXFR 251
#define T_AXFR 252
#define T_ANY 255
#define C_IN 1
#define C_CH 3
#define R_NOERROR 0
#define R_FORMERR 1
#define R_SERVFAIL 2
#define R_NXDOMAIN 3
#define R_NOTIMP 4
#define R_REFUSED 5

#define NAMES_MAX 4096
#define BUCKETS 4096
#define ADDRS 16
#define QUERIES_MAX 256
#define TCP_CLIENTS 32
#define QMAX 4096                    /* the longest query accepted over TCP */
#define UPSTREAM_TIMEOUT 2.0
#define TCP_IDLE 10.0

/* ---- the answered table ---- */
struct addr_life { uint32_t addr, until; uint8_t last; };   /* until: monotonic s; 0 = permanent */
struct entry {
	struct entry *hnext, *prev, *next;   /* hash chain; LRU list (permanent entries are not on it) */
	int permanent;
	uint32_t cache_until;                /* the last answer may be given again until then */
	int n;
	struct addr_life a[ADDRS];
	char name[254];
};

static struct entry *buckets[BUCKETS];
static struct entry lru = { .prev = &lru, .next = &lru };   /* most recent first */
static int nentries;

static uint32_t hash_name(const char *s)
{
	uint32_t h = 2166136261u;
	while (*s) h = (h ^ (uint8_t)*s++) * 16777619u;
	return h & (BUCKETS - 1);
}

static uint32_t now_s(void) { return (uint32_t)now_mono(); }

static struct entry *lookup(const char *name)
{
	for (struct entry *e = buckets[hash_name(name)]; e; e = e->hnext) if (!strcmp(e->name, name)) return e;
	return NULL;
}

static void lru_unlink(struct entry *e) { if (e->prev) { e->prev->next = e->next; e->next->prev = e->prev; e->prev = e->next = NULL; } }
static void lru_front(struct entry *e) { lru_unlink(e); e->next = lru.next; e->prev = &lru; lru.next->prev = e; lru.next = e; }

static void evict(struct entry *e)
{
	struct entry **p = &buckets[hash_name(e->name)];
	while (*p != e) p = &(*p)->hnext;
	*p = e->hnext;
	lru_unlink(e);
	free(e);
	nentries--;
}

static struct entry *entry_for(const char *name)
{
	struct entry *e = lookup(name);
	if (e) { if (!e->permanent) lru_front(e); return e; }
	if (nentries >= NAMES_MAX && lru.prev != &lru) evict(lru.prev);
	e = calloc(1, sizeof *e);
	if (!e) return NULL;
	strcpy(e->name, name);
	uint32_t h = hash_name(name);
	e->hnext = buckets[h];
	buckets[h] = e;
	lru_front(e);
	nentries++;
	return e;
}

static int alive(const struct addr_life *a, uint32_t now) { return a->until == 0 || a->until > now; }

/* Merges an answer into the name's entry: its addresses live until `until`, the older ones keep
 * their own time; a full entry drops its dead or soonest-dying address first. */
static void remember(struct entry *e, const uint32_t *addrs, int n, uint32_t until, uint32_t now)
{
	for (int i = 0; i < e->n; i++) e->a[i].last = 0;
	for (int i = 0; i < n; i++) {
		int k = 0;
		while (k < e->n && e->a[k].addr != addrs[i]) k++;
		if (k == e->n) {
			if (e->n < ADDRS) e->n++;
			else {
				k = 0;
				for (int j = 1; j < ADDRS; j++) if (e->a[j].until && (!alive(&e->a[j], now) || e->a[j].until < e->a[k].until)) k = j;
			}
			e->a[k].addr = addrs[i];
			e->a[k].until = until;
		} else if (e->a[k].until != 0 && (until == 0 || until > e->a[k].until)) e->a[k].until = until;
		e->a[k].last = 1;
	}
}

int dns_name_has(const char *name, uint32_t addr)
{
	const struct entry *e = lookup(name);
	uint32_t now = now_s();
	if (e) for (int i = 0; i < e->n; i++) if (e->a[i].addr == addr && alive(&e->a[i], now)) return 1;
	return 0;
}

int dns_names_of(uint32_t addr, const char **names, int max)
{
	int n = 0;
	uint32_t now = now_s();
	for (int b = 0; b < BUCKETS && n < max; b++)
		for (const struct entry *e = buckets[b]; e && n < max; e = e->hnext)
			for (int i = 0; i < e->n; i++)
				if (e->a[i].addr == addr && alive(&e->a[i], now)) { names[n++] = e->name; break; }
	return n;
}

int dns_addr_answered(uint32_t addr)
{
	const char *one;
	return dns_names_of(addr, &one, 1) > 0;
}

int dns_add_extra(const char *name, uint32_t addr)
{
	const struct eg_rule *r;
	/* Only names some rule allows, and never an address of a refused class (/etc/hosts still
	 * lists it; the relay and the wall refuse it). */
	if (!policy_name_allowed(&G.pol, name, &r) || policy_class(&G.pol, addr) >= 0) return 0;
	struct entry *e = entry_for(name);
	if (!e) return -1;
	if (!e->permanent) { e->permanent = 1; lru_unlink(e); }
	remember(e, &addr, 1, 0, now_s());
	return nl_answer(&addr, 1, 0);
}

/* ---- wire format ---- */
struct question {
	uint16_t id, flags, qtype, qclass;
	int edns;
	uint8_t wire[256];           /* the name as asked (case kept), uncompressed */
	int wire_len;
	char name[256];              /* lowercase, dotted, no trailing dot ("" for the root) */
	int name_ok;                 /* only [a-z0-9_-] labels: the policy can judge it */
};

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }

/* A name at off in msg, following compression pointers (each must point before the label that
 * holds it, so no loop), labels 1..63 bytes, 255 bytes in all. *end = the offset after the name
 * where it starts. wire (may be NULL) gets it uncompressed; text gets it lowercase and dotted. */
static int read_name(const uint8_t *msg, size_t len, size_t off, size_t *end, uint8_t wire[256], int *wire_len, char text[256], int *plain)
{
	size_t pos = off, wl = 0, tl = 0;
	int jumped = 0, ok = 1;
	for (int hops = 0;; hops++) {
		if (pos >= len || hops > 128) return -1;
		uint8_t l = msg[pos];
		if ((l & 0xc0) == 0xc0) {
			if (pos + 1 >= len) return -1;
			size_t to = (size_t)(l & 0x3f) << 8 | msg[pos + 1];
			if (to >= pos) return -1;
			if (!jumped) *end = pos + 2;
			jumped = 1;
			pos = to;
			continue;
		}
		if (l & 0xc0) return -1;
		if (l == 0) {
			if (!jumped) *end = pos + 1;
			if (wl + 1 > 255) return -1;
			if (wire) wire[wl] = 0;
			wl++;
			break;
		}
		if (pos + 1 + l > len || wl + 1 + l > 255) return -1;
		if (wire) memcpy(wire + wl, msg + pos, 1u + l);
		wl += 1u + l;
		if (tl) text[tl++] = '.';
		for (int i = 1; i <= l; i++) {
			char c = (char)msg[pos + i];
			if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
			if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) { ok = 0; c = '?'; }
			text[tl++] = c;
		}
		pos += 1u + l;
	}
	text[tl] = 0;
	if (wire_len) *wire_len = (int)wl;
	if (plain) *plain = ok;
	return 0;
}

/* The client's query: -1 to drop it (not a query at all), else an rcode (R_NOERROR: go on). */
static int parse_query(const uint8_t *m, size_t len, struct question *q)
{
	size_t end;
	memset(q, 0, sizeof *q);
	if (len < 12) return -1;
	q->id = get16(m);
	q->flags = get16(m + 2);
	if (q->flags & 0x8000) return -1;                     /* a response: ignore */
	if (((q->flags >> 11) & 15) != 0) return R_NOTIMP;    /* opcode other than QUERY */
	if (get16(m + 4) != 1 || get16(m + 6) || get16(m + 8) || get16(m + 10) > 1) return R_FORMERR;
	if (read_name(m, len, 12, &end, q->wire, &q->wire_len, q->name, &q->name_ok) < 0 || end + 4 > len) return R_FORMERR;
	q->qtype = get16(m + end);
	q->qclass = get16(m + end + 2);
	end += 4;
	if (get16(m + 10) == 1) {
		/* The one additional record may only be EDNS's OPT, on the root name. */
		if (end + 11 > len || m[end] != 0 || get16(m + end + 1) != T_OPT) return R_FORMERR;
		q->edns = 1;
	}
	return R_NOERROR;
}

/* A reply to q: header, its question, then the given A addresses or one TXT string. */
static size_t build_reply(uint8_t *out, size_t cap, const struct question *q, int rcode, const uint32_t *addrs, int n, uint32_t ttl, const char *txt)
{
	size_t len = 12;
	memset(out, 0, 12);
	put16(out, q->id);
	put16(out + 2, (uint16_t)(0x8000 | (q->flags & 0x0110) | 0x0080 | (rcode & 15)));   /* QR, RD and CD echoed, RA */
	if (q->wire_len == 0) return len;                       /* the query could not be read */
	put16(out + 4, 1);
	memcpy(out + len, q->wire, (size_t)q->wire_len);
	len += (size_t)q->wire_len;
	put16(out + len, q->qtype);
	put16(out + len + 2, q->qclass);
	len += 4;
	int an = 0;
	for (int i = 0; i < n && len + 16 + (q->edns ? 11 : 0) <= cap; i++, an++) {
		put16(out + len, 0xc00c); put16(out + len + 2, T_A); put16(out + len + 4, C_IN); put32(out + len + 6, ttl);
		put16(out + len + 10, 4); memcpy(out + len + 12, &addrs[i], 4);
		len += 16;
	}
	if (txt) {
		size_t tl = strlen(txt);
		put16(out + len, 0xc00c); put16(out + len + 2, T_TXT); put16(out + len + 4, q->qclass); put32(out + len + 6, 0);
		put16(out + len + 10, (uint16_t)(tl + 1)); out[len + 12] = (uint8_t)tl; memcpy(out + len + 13, txt, tl);
		len += 13 + tl;
		an++;
	}
	put16(out + 6, (uint16_t)an);
	if (q->edns) {
		memset(out + len, 0, 11);
		put16(out + len + 1, T_OPT); put16(out + len + 3, 1232);
		len += 11;
		put16(out + 10, 1);
	}
	return len;
}

/* ---- clients ---- */
struct client { int tcp_slot; unsigned serial; struct sockaddr_in peer; };

struct tcp_client {
	struct ep ep;
	int fd;
	unsigned serial;
	double last;
	size_t len;
	uint8_t buf[2 + QMAX];
};
static struct tcp_client tcp_clients[TCP_CLIENTS];
static unsigned serials;

static void tcp_client_close(struct tcp_client *t)
{
	epoll_ctl(G.epoll, EPOLL_CTL_DEL, t->fd, NULL);
	close(t->fd);
	t->fd = -1;
	t->serial = 0;
}

static void reply(const struct client *c, const uint8_t *msg, size_t len)
{
	if (c->tcp_slot < 0) { sendto(G.dns_udp, msg, len, MSG_DONTWAIT, (const struct sockaddr *)&c->peer, sizeof c->peer); return; }
	struct tcp_client *t = &tcp_clients[c->tcp_slot];
	if (t->fd < 0 || t->serial != c->serial) return;      /* the client hung up meanwhile */
	uint8_t pre[2];
	put16(pre, (uint16_t)len);
	struct iovec iov[2] = { { pre, 2 }, { (void *)msg, len } };
	if (writev(t->fd, iov, 2) != (ssize_t)(len + 2)) tcp_client_close(t);
}

static void reply_code(const struct client *c, const struct question *q, int rcode)
{
	uint8_t out[600];
	reply(c, out, build_reply(out, sizeof out, q, rcode, NULL, 0, 0, NULL));
}

static size_t udp_cap(const struct client *c, const struct question *q) { return c->tcp_slot >= 0 ? 65535 : q->edns ? 1232 : 512; }

/* ---- upstream queries ---- */
struct query {
	struct ep ep;
	struct query *next;
	int fd, tcp, attempts, upstream;
	uint16_t up_id;
	double deadline;
	struct client client;
	struct question q;
	uint8_t *tbuf;               /* TCP: the length-prefixed query going out, then the answer coming in */
	size_t tlen, tpos;
	int tsent;
};
static struct query *queries;
static int nqueries;
static int preferred;            /* the upstream that answered last: new queries go there first */

static void query_free(struct query *x)
{
	struct query **p = &queries;
	while (*p != x) p = &(*p)->next;
	*p = x->next;
	if (x->fd >= 0) { epoll_ctl(G.epoll, EPOLL_CTL_DEL, x->fd, NULL); close(x->fd); }
	free(x->tbuf);
	free(x);
	nqueries--;
}

static size_t build_query(uint8_t *out, const struct query *x)
{
	memset(out, 0, 12);
	put16(out, x->up_id);
	put16(out + 2, 0x0100 | (x->q.flags & 0x0010));        /* RD, CD as asked */
	put16(out + 4, 1);
	put16(out + 10, 1);
	memcpy(out + 12, x->q.wire, (size_t)x->q.wire_len);
	size_t len = 12 + (size_t)x->q.wire_len;
	put16(out + len, x->q.qtype); put16(out + len + 2, x->q.qclass);
	len += 4;
	memset(out + len, 0, 11);                                /* EDNS, our own size, no options (no ECS) */
	put16(out + len + 1, T_OPT); put16(out + len + 3, 1232);
	return len + 11;
}

static void upstream_event(struct ep *self, uint32_t events);

/* (Re)sends x to its current upstream over UDP, or TCP when x->tcp; a fresh socket each time, so a
 * fresh random source port, and a fresh random ID. */
static int query_send(struct query *x)
{
	uint8_t msg[300];
	if (x->fd >= 0) { epoll_ctl(G.epoll, EPOLL_CTL_DEL, x->fd, NULL); close(x->fd); x->fd = -1; }
	if (getrandom(&x->up_id, sizeof x->up_id, 0) != sizeof x->up_id) return -1;
	size_t len = build_query(msg, x);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(53), .sin_addr.s_addr = G.pol.upstreams[x->upstream] };
	x->fd = socket(AF_INET, (x->tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (x->fd < 0) return -1;
	if (connect(x->fd, (struct sockaddr *)&to, sizeof to) < 0 && errno != EINPROGRESS) return -1;
	struct epoll_event ev = { .events = EPOLLIN | (x->tcp ? EPOLLOUT : 0), .data.ptr = &x->ep };
	if (epoll_ctl(G.epoll, EPOLL_CTL_ADD, x->fd, &ev) < 0) return -1;
	x->deadline = now_mono() + UPSTREAM_TIMEOUT;
	x->attempts++;
	G.n.forwarded++;
	if (!x->tcp) return send(x->fd, msg, len, 0) == (ssize_t)len ? 0 : -1;
	free(x->tbuf);
	x->tbuf = malloc(2 + 65535);
	if (!x->tbuf) return -1;
	put16(x->tbuf, (uint16_t)len);
	memcpy(x->tbuf + 2, msg, len);
	x->tlen = 2 + len;
	x->tpos = 0;
	x->tsent = 0;
	return 0;
}

/* Tries the next upstream (once), else SERVFAIL. */
static void query_retry(struct query *x)
{
	if (x->attempts < 2) {
		x->upstream = (x->upstream + 1) % G.pol.nupstreams;
		x->tcp = 0;
		if (query_send(x) == 0) return;
	}
	reply_code(&x->client, &x->q, R_SERVFAIL);
	query_free(x);
}

static void withhold(const struct question *q, uint32_t addr)
{
	struct eg_denial d = { .kind = "answer-withheld", .proto = "udp", .addr = addr, .port = -1, .name = q->name,
			       .seen = "dns", .src = G.pol.default_src, .cls = 1 };
	log_denial(&d);
}

/* An upstream's answer to an A query: follow the CNAME chain inside it from the asked name, take
 * the A records of its end, withhold refused classes, then tell the kernel and the table. */
static void answer_a(struct query *x, const uint8_t *m, size_t len, int rcode)
{
	const struct question *q = &x->q;
	uint32_t addrs[ADDRS], ttl = EG_TTL_MAX;
	int n = 0, withheld = 0;
	char target[256], owner[256], alias[256];
	size_t off = 12, end;
	uint8_t wire[256];
	int wl;
	strcpy(target, q->name);
	if (read_name(m, len, off, &off, wire, &wl, owner, NULL) < 0) goto servfail;
	off += 4;
	int ancount = get16(m + 6);
	/* Two passes over the answer section follow CNAMEs in any order; at most 8 links. */
	for (int links = 0; links < 8; links++) {
		int moved = 0;
		size_t o = off;
		for (int i = 0; i < ancount; i++) {
			if (read_name(m, len, o, &end, NULL, NULL, owner, NULL) < 0 || end + 10 > len) goto servfail;
			uint16_t type = get16(m + end), rdlen = get16(m + end + 8);
			uint32_t rttl = get32(m + end + 4);
			if (end + 10 + rdlen > len) goto servfail;
			if (type == T_CNAME && !strcmp(owner, target)) {
				if (read_name(m, len, end + 10, &o, NULL, NULL, alias, NULL) < 0) goto servfail;
				strcpy(target, alias);
				if (rttl < ttl) ttl = rttl;
				moved = 1;
			}
			o = end + 10 + rdlen;
		}
		if (!moved) break;
	}
	size_t o = off;
	for (int i = 0; i < ancount; i++) {
		if (read_name(m, len, o, &end, NULL, NULL, owner, NULL) < 0 || end + 10 > len) goto servfail;
		uint16_t type = get16(m + end), cls = get16(m + end + 2), rdlen = get16(m + end + 8);
		uint32_t rttl = get32(m + end + 4), a;
		if (end + 10 + rdlen > len) goto servfail;
		if (type == T_A && cls == C_IN && rdlen == 4 && !strcmp(owner, target)) {
			memcpy(&a, m + end + 10, 4);
			if (policy_class(&G.pol, a) >= 0) { withhold(q, a); withheld++; }
			else if (n < ADDRS) {
				int dup = 0;
				for (int k = 0; k < n; k++) dup |= addrs[k] == a;
				if (!dup) { addrs[n++] = a; if (rttl < ttl) ttl = rttl; }
			}
		}
		o = end + 10 + rdlen;
	}
	if (withheld) G.n.withheld++;
	if (ttl < EG_TTL_MIN) ttl = EG_TTL_MIN;
	if (ttl > EG_TTL_MAX) ttl = EG_TTL_MAX;
	uint8_t out[1400];
	if (n == 0) {
		/* NXDOMAIN stays NXDOMAIN; anything else without an address left is NODATA. */
		reply(&x->client, out, build_reply(out, sizeof out, q, rcode == R_NXDOMAIN ? R_NXDOMAIN : R_NOERROR, NULL, 0, 0, NULL));
		G.n.answered++;
		return;
	}
	uint32_t now = now_s();
	if (nl_answer(addrs, n, ttl + G.pol.grace) < 0) {
		fprintf(stderr, "sbx-egress: cannot add %s's addresses to answered4: %s\n", q->name, strerror(errno));
		goto servfail;
	}
	struct entry *e = entry_for(q->name);
	if (e) {
		remember(e, addrs, n, now + ttl + G.pol.grace, now);
		e->cache_until = now + ttl;
	}
	reply(&x->client, out, build_reply(out, udp_cap(&x->client, q), q, R_NOERROR, addrs, n, ttl, NULL));
	G.n.answered++;
	return;
servfail:
	reply_code(&x->client, q, R_SERVFAIL);
}

/* A whole upstream message for x: checked against the question, then answered (x freed) or sent
 * again; 1 when it is not an answer to x (x untouched). */
static int upstream_message(struct query *x, uint8_t *m, size_t len)
{
	size_t end;
	uint8_t wire[256];
	char name[256];
	int wl;
	if (len < 12 || get16(m) != x->up_id || !(get16(m + 2) & 0x8000) || get16(m + 4) != 1) return 1;   /* not ours */
	if (read_name(m, len, 12, &end, wire, &wl, name, NULL) < 0 || end + 4 > len || strcmp(name, x->q.name)
	    || get16(m + end) != x->q.qtype || get16(m + end + 2) != x->q.qclass) return 1;
	int rcode = get16(m + 2) & 15;
	if ((get16(m + 2) & 0x0200) && !x->tcp) {               /* truncated: ask the same server over TCP */
		x->tcp = 1;
		x->attempts--;
		if (query_send(x) < 0) query_retry(x);
		return 0;
	}
	if (rcode == R_SERVFAIL || rcode == R_REFUSED) { query_retry(x); return 0; }
	preferred = x->upstream;
	if (x->q.qtype == T_A && (rcode == R_NOERROR || rcode == R_NXDOMAIN)) answer_a(x, m, len, rcode);
	else {
		/* Other types of an allowed name pass as they came, with the client's ID. */
		put16(m, x->q.id);
		if (len > udp_cap(&x->client, &x->q)) {
			len = 12 + (size_t)x->q.wire_len + 4;
			m[2] |= 0x02;                                /* TC: the client asks again over TCP */
			put16(m + 6, 0); put16(m + 8, 0); put16(m + 10, 0);
		}
		reply(&x->client, m, len);
		G.n.answered++;
	}
	query_free(x);
	return 0;
}

static void upstream_event(struct ep *self, uint32_t events)
{
	struct query *x = container_of(self, struct query, ep);
	if (!x->tcp) {
		/* One datagram per event (epoll is level-triggered): a stray one leaves x waiting. */
		uint8_t buf[65536];
		ssize_t n = recv(x->fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR) query_retry(x);
		else if (n >= 0) upstream_message(x, buf, (size_t)n);
		return;
	}
	if (!x->tsent) {
		ssize_t w = send(x->fd, x->tbuf + x->tpos, x->tlen - x->tpos, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0) { if (errno != EAGAIN) query_retry(x); return; }
		x->tpos += (size_t)w;
		if (x->tpos < x->tlen) return;
		x->tsent = 1;
		x->tpos = 0;
		x->tlen = 0;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &x->ep };
		epoll_ctl(G.epoll, EPOLL_CTL_MOD, x->fd, &ev);
		return;
	}
	size_t want = x->tpos < 2 ? 2 : 2 + (size_t)get16(x->tbuf);
	ssize_t r = recv(x->fd, x->tbuf + x->tpos, want - x->tpos, MSG_DONTWAIT);
	if (r == 0 || (r < 0 && errno != EAGAIN)) { query_retry(x); return; }
	if (r < 0) return;
	x->tpos += (size_t)r;
	if (x->tpos >= 2 && x->tpos == 2 + (size_t)get16(x->tbuf)) {
		if (upstream_message(x, x->tbuf + 2, x->tpos - 2)) query_retry(x);   /* one answer per TCP query */
	}
}

/* ---- one query from the sandbox ---- */
static void handle(const struct client *c, const uint8_t *msg, size_t len)
{
	struct question q;
	uint8_t out[1400];
	int rc = parse_query(msg, len, &q);
	if (rc < 0) return;
	if (rc != R_NOERROR) { reply_code(c, &q, rc); return; }
	if (q.qclass == C_CH) {
		/* The attestation's proof that the resolver in resolv.conf is this one. */
		if (q.qtype == T_TXT && !strcmp(q.name, "id.sandbox")) reply(c, out, build_reply(out, sizeof out, &q, R_NOERROR, NULL, 0, 0, G.pol.nonce));
		else reply_code(c, &q, R_REFUSED);
		return;
	}
	if (q.qclass != C_IN) { reply_code(c, &q, R_REFUSED); return; }
	if (q.qtype == T_ANY || q.qtype == T_AXFR || q.qtype == T_IXFR) { reply_code(c, &q, R_NOTIMP); return; }
	const struct eg_rule *deny = NULL;
	if (!q.name_ok || !policy_name_allowed(&G.pol, q.name, &deny)) {
		struct eg_denial d = { .kind = "lookup", .proto = c->tcp_slot >= 0 ? "tcp" : "udp", .port = -1,
				       .name = q.name_ok ? q.name : NULL, .seen = "dns", .rule = deny ? deny->index : 0,
				       .src = deny ? deny->src : G.pol.default_src, .why = q.name_ok ? NULL : "a name with bytes outside [a-z0-9_-]" };
		/* The asking socket, from its address to the resolver's (127.0.0.53:53): its process is looked up. */
		struct sockaddr_in peer = c->peer;
		socklen_t pl = sizeof peer;
		if (c->tcp_slot >= 0 && (tcp_clients[c->tcp_slot].fd < 0 || getpeername(tcp_clients[c->tcp_slot].fd, (struct sockaddr *)&peer, &pl) < 0)) peer.sin_family = 0;
		struct eg_sock s = { .proto = c->tcp_slot >= 0 ? IPPROTO_TCP : IPPROTO_UDP, .local = peer.sin_addr.s_addr, .lport = ntohs(peer.sin_port),
				     .remote = htonl(0x7f000035), .rport = 53 };
		if (peer.sin_family == AF_INET) d.sock = &s;
		log_denial(&d);
		G.n.refused++;
		reply_code(c, &q, R_NXDOMAIN);
		return;
	}
	if (q.qtype == T_PTR) { G.n.answered++; reply_code(c, &q, R_NXDOMAIN); return; }     /* reverse names would leak addresses */
	if (q.qtype == T_AAAA || q.qtype == T_SVCB || q.qtype == T_HTTPS) { G.n.answered++; reply_code(c, &q, R_NOERROR); return; }
	if (q.qtype == T_A) {
		struct entry *e = lookup(q.name);
		uint32_t now = now_s();
		if (e && (e->permanent || e->cache_until > now)) {
			uint32_t addrs[ADDRS];
			int n = 0;
			for (int i = 0; i < e->n; i++) if ((e->permanent || e->a[i].last) && alive(&e->a[i], now)) addrs[n++] = e->a[i].addr;
			if (n) {
				if (!e->permanent) lru_front(e);
				uint32_t ttl = e->permanent ? EG_TTL_MAX : e->cache_until - now;
				reply(c, out, build_reply(out, udp_cap(c, &q), &q, R_NOERROR, addrs, n, ttl, NULL));
				G.n.answered++;
				return;
			}
		}
	}
	if (nqueries >= QUERIES_MAX) { reply_code(c, &q, R_SERVFAIL); return; }
	struct query *x = calloc(1, sizeof *x);
	if (!x) { reply_code(c, &q, R_SERVFAIL); return; }
	x->ep.fn = upstream_event;
	x->fd = -1;
	x->client = *c;
	x->q = q;
	x->upstream = preferred < G.pol.nupstreams ? preferred : 0;
	x->next = queries;
	queries = x;
	nqueries++;
	if (query_send(x) < 0) query_retry(x);
}

static void udp_event(struct ep *self, uint32_t events)
{
	uint8_t buf[QMAX];
	for (int i = 0; i < 64; i++) {
		struct client c = { .tcp_slot = -1 };
		socklen_t pl = sizeof c.peer;
		ssize_t n = recvfrom(G.dns_udp, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&c.peer, &pl);
		if (n < 0) return;
		handle(&c, buf, (size_t)n);
	}
}

static void tcp_client_event(struct ep *self, uint32_t events)
{
	struct tcp_client *t = container_of(self, struct tcp_client, ep);
	ssize_t r = recv(t->fd, t->buf + t->len, sizeof t->buf - t->len, MSG_DONTWAIT);
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) { tcp_client_close(t); return; }
	if (r < 0) return;
	t->len += (size_t)r;
	t->last = now_mono();
	while (t->fd >= 0 && t->len >= 2) {
		size_t ml = get16(t->buf);
		if (ml > QMAX || ml < 12) { tcp_client_close(t); return; }
		if (t->len < 2 + ml) return;
		struct client c = { .tcp_slot = (int)(t - tcp_clients), .serial = t->serial };
		handle(&c, t->buf + 2, ml);
		if (t->fd < 0) return;
		memmove(t->buf, t->buf + 2 + ml, t->len - 2 - ml);
		t->len -= 2 + ml;
	}
}

static void tcp_listen_event(struct ep *self, uint32_t events)
{
	for (;;) {
		int fd = accept4(G.dns_tcp, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) return;
		struct tcp_client *t = NULL, *idlest = NULL;
		for (int i = 0; i < TCP_CLIENTS && !t; i++) {
			if (tcp_clients[i].fd < 0) t = &tcp_clients[i];
			else if (!idlest || tcp_clients[i].last < idlest->last) idlest = &tcp_clients[i];
		}
		if (!t) { tcp_client_close(idlest); t = idlest; }    /* full: the idlest goes */
		t->ep.fn = tcp_client_event;
		t->fd = fd;
		t->serial = ++serials ? serials : ++serials;
		t->len = 0;
		t->last = now_mono();
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &t->ep };
		if (epoll_ctl(G.epoll, EPOLL_CTL_ADD, fd, &ev) < 0) { close(fd); t->fd = -1; }
	}
}

static struct ep udp_ep = { udp_event }, tcp_ep = { tcp_listen_event };

int dns_init(void)
{
	for (int i = 0; i < TCP_CLIENTS; i++) tcp_clients[i].fd = -1;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &udp_ep };
	if (epoll_ctl(G.epoll, EPOLL_CTL_ADD, G.dns_udp, &ev) < 0) return -1;
	ev.data.ptr = &tcp_ep;
	return epoll_ctl(G.epoll, EPOLL_CTL_ADD, G.dns_tcp, &ev);
}

void dns_tick(double now)
{
	for (struct query *x = queries, *next; x; x = next) {
		next = x->next;
		if (now >= x->deadline) query_retry(x);
	}
	for (int i = 0; i < TCP_CLIENTS; i++)
		if (tcp_clients[i].fd >= 0 && now - tcp_clients[i].last > TCP_IDLE) tcp_client_close(&tcp_clients[i]);
}
