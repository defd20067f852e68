/* Netfilter netlink, spoken by hand (no libmnl: libc only).
 * - The answered4 set of `table inet sbx_egress` in the sandbox's namespace: the socket was opened
 *   there by the helper, so its messages act on that namespace although this process lives in the
 *   host's. One NFNL batch per answer: BATCH_BEGIN, [DELSETELEM], NEWSETELEM, BATCH_END, each
 *   element with its timeout. Adding an element that exists leaves its timeout as it was, so an
 *   element with less than half its lifetime left is deleted and added again in the same batch.
 * - NFLOG: the wall's refusals (`log group G prefix "r4"`), turned into denial records (seen:
 *   kernel): as root the host wall's, read on the host; without root those of the wall in the
 *   sandbox's own namespace, through a socket the helper bound there. */
#include "egress.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <netinet/ip.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NLBUF 16384
#define KSLOTS 16384                 /* addresses whose kernel timeout we know; a power of two */

/* ---- message building ---- */
struct msg { uint8_t *buf; size_t len, cap; };

static struct nlmsghdr *msg_begin(struct msg *m, uint16_t type, uint16_t flags, uint8_t family, uint16_t res_id, uint32_t seq)
{
	struct nlmsghdr *h = (struct nlmsghdr *)(m->buf + m->len);
	memset(h, 0, NLMSG_HDRLEN + sizeof(struct nfgenmsg));
	h->nlmsg_type = type;
	h->nlmsg_flags = NLM_F_REQUEST | flags;
	h->nlmsg_seq = seq;
	h->nlmsg_len = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
	struct nfgenmsg *g = NLMSG_DATA(h);
	g->nfgen_family = family;
	g->version = NFNETLINK_V0;
	g->res_id = htons(res_id);
	return h;
}

static void msg_end(struct msg *m, struct nlmsghdr *h) { m->len += NLMSG_ALIGN(h->nlmsg_len); }

static struct nlattr *attr(struct nlmsghdr *h, uint16_t type, const void *data, size_t len)
{
	struct nlattr *a = (struct nlattr *)((uint8_t *)h + NLMSG_ALIGN(h->nlmsg_len));
	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	if (len) memcpy((uint8_t *)a + NLA_HDRLEN, data, len);
	h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + NLA_ALIGN(a->nla_len);
	return a;
}

static struct nlattr *nest(struct nlmsghdr *h, uint16_t type) { return attr(h, type | NLA_F_NESTED, NULL, 0); }
static void nest_end(struct nlmsghdr *h, struct nlattr *a) { a->nla_len = (uint16_t)((uint8_t *)h + h->nlmsg_len - (uint8_t *)a); }

/* Sends m and waits for the ACK of each of `acks` sequence numbers; 0, or -1 with errno = the
 * first error the kernel reported. */
static int transact(int fd, struct msg *m, uint32_t first_seq, int acks)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	if (sendto(fd, m->buf, m->len, 0, (struct sockaddr *)&kernel, sizeof kernel) != (ssize_t)m->len) return -1;
	int err = 0, got = 0;
	uint8_t buf[NLBUF];
	while (got < acks) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 1000) <= 0) { errno = ETIMEDOUT; return -1; }
		ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n < 0) { if (errno == EAGAIN || errno == EINTR) continue; return -1; }
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_seq < first_seq || h->nlmsg_seq >= first_seq + (uint32_t)acks) continue;
			const struct nlmsgerr *e = NLMSG_DATA(h);
			if (e->error && !err) err = -e->error;
			got++;
		}
	}
	if (err) { errno = err; return -1; }
	return 0;
}

/* ---- answered4 ---- */
struct kslot { uint32_t addr; uint32_t until; };   /* until: monotonic seconds, UINT32_MAX = permanent */
static struct kslot *kset;
static int kused;
static uint32_t seq = 1;

static struct kslot *kfind(uint32_t addr)
{
	for (uint32_t h = (addr * 2654435761u) & (KSLOTS - 1);; h = (h + 1) & (KSLOTS - 1))
		if (kset[h].addr == addr || kset[h].addr == 0) return &kset[h];
}

/* Keeps the table below 3/4 full: drops what has expired; if that is not enough, forgets all
 * (they are then added again without a refresh, which only shortens their life). */
static void kprune(uint32_t now)
{
	struct kslot *old = kset;
	kset = calloc(KSLOTS, sizeof *kset);
	if (!kset) { kset = old; memset(kset, 0, KSLOTS * sizeof *kset); kused = 0; return; }
	kused = 0;
	for (int i = 0; i < KSLOTS; i++)
		if (old[i].addr && old[i].until > now && kused < KSLOTS / 2) { *kfind(old[i].addr) = old[i]; kused++; }
	free(old);
}

static void put_elems(struct nlmsghdr *h, const uint32_t *addrs, int n, unsigned lifetime)
{
	attr(h, NFTA_SET_ELEM_LIST_TABLE, "sbx_egress", sizeof "sbx_egress");
	attr(h, NFTA_SET_ELEM_LIST_SET, "answered4", sizeof "answered4");
	struct nlattr *list = nest(h, NFTA_SET_ELEM_LIST_ELEMENTS);
	for (int i = 0; i < n; i++) {
		struct nlattr *el = nest(h, NFTA_LIST_ELEM);
		struct nlattr *key = nest(h, NFTA_SET_ELEM_KEY);
		attr(h, NFTA_DATA_VALUE, &addrs[i], 4);
		nest_end(h, key);
		if (lifetime) {
			uint64_t ms = (uint64_t)lifetime * 1000;
			uint8_t be[8];
			for (int b = 0; b < 8; b++) be[b] = (uint8_t)(ms >> (56 - 8 * b));
			attr(h, NFTA_SET_ELEM_TIMEOUT, be, 8);
		}
		nest_end(h, el);
	}
	nest_end(h, list);
}

/* One batch: [DELSETELEM of the refreshed] + NEWSETELEM of all; ACKs checked. */
static int batch(const uint32_t *del, int ndel, const uint32_t *add, int nadd, unsigned lifetime)
{
	uint8_t buf[NLBUF];
	struct msg m = { buf, 0, sizeof buf };
	struct nlmsghdr *h = msg_begin(&m, NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, seq++);
	msg_end(&m, h);
	int acks = 0;
	uint32_t ack_first = seq;
	if (ndel) {
		h = msg_begin(&m, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELSETELEM, NLM_F_ACK, NFPROTO_INET, 0, seq++);
		put_elems(h, del, ndel, 0);
		msg_end(&m, h);
		acks++;
	}
	h = msg_begin(&m, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM, NLM_F_ACK | NLM_F_CREATE, NFPROTO_INET, 0, seq++);
	put_elems(h, add, nadd, lifetime);
	msg_end(&m, h);
	acks++;
	h = msg_begin(&m, NFNL_MSG_BATCH_END, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES, seq++);
	msg_end(&m, h);
	return transact(G.nft_nl, &m, ack_first, acks);
}

int nl_answer(const uint32_t *addrs, int n, unsigned lifetime)
{
	uint32_t del[64], add[64];
	int ndel = 0, nadd = 0;
	uint32_t now = (uint32_t)now_mono();
	uint32_t until = lifetime ? now + lifetime : UINT32_MAX;
	if (!kset && !(kset = calloc(KSLOTS, sizeof *kset))) return -1;
	if (n > 64) n = 64;
	for (int i = 0; i < n; i++) {
		if (!addrs[i]) continue;
		struct kslot *s = kfind(addrs[i]);
		if (s->addr && s->until > now) {
			if (s->until == UINT32_MAX) continue;                        /* permanent (extra_hosts) */
			if (lifetime && s->until - now >= lifetime / 2) continue;    /* more than half left */
			del[ndel++] = addrs[i];
		}
		add[nadd++] = addrs[i];
	}
	if (!nadd) return 0;
	int r = batch(del, ndel, add, nadd, lifetime);
	/* The kernel may have expired an element a moment before we thought: add without the delete. */
	if (r < 0 && ndel) r = batch(NULL, 0, add, nadd, lifetime);
	if (r < 0) return -1;
	for (int i = 0; i < nadd; i++) {
		struct kslot *s = kfind(add[i]);
		if (!s->addr) kused++;
		s->addr = add[i];
		s->until = until;
	}
	if (kused > KSLOTS * 3 / 4) kprune(now);
	return 0;
}

int nl_check(void)
{
	uint8_t buf[256];
	struct msg m = { buf, 0, sizeof buf };
	uint32_t s = seq++;
	struct nlmsghdr *h = msg_begin(&m, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETSET, NLM_F_ACK, NFPROTO_INET, 0, s);
	attr(h, NFTA_SET_TABLE, "sbx_egress", sizeof "sbx_egress");
	attr(h, NFTA_SET_NAME, "answered4", sizeof "answered4");
	msg_end(&m, h);
	return transact(G.nft_nl, &m, s, 1);
}

/* ---- NFLOG ---- */
static void nflog_event(struct ep *self, uint32_t events);
static struct ep nflog_ep = { nflog_event };

static int nflog_cfg(int fd, unsigned group, uint16_t type, const void *data, size_t len)
{
	uint8_t buf[256];
	struct msg m = { buf, 0, sizeof buf };
	uint32_t s = seq++;
	struct nlmsghdr *h = msg_begin(&m, (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG, NLM_F_ACK, AF_UNSPEC, (uint16_t)group, s);
	attr(h, type, data, len);
	msg_end(&m, h);
	return transact(fd, &m, s, 1);
}

int nflog_open(unsigned group)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (fd < 0) return -1;
	struct sockaddr_nl me = { .nl_family = AF_NETLINK };
	struct nfulnl_msg_config_cmd cmd = { .command = NFULNL_CFG_CMD_BIND };
	/* Headers only: the IPv4 header and the ports are all a record needs. */
	struct nfulnl_msg_config_mode mode = { .copy_range = htonl(80), .copy_mode = NFULNL_COPY_PACKET };
	/* Each packet at once: the kernel's default holds up to 100 of them for up to 1 s. */
	uint32_t qthresh = htonl(1);
	int rcv = 1 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
	if (bind(fd, (struct sockaddr *)&me, sizeof me) < 0 || nflog_cfg(fd, group, NFULA_CFG_CMD, &cmd, sizeof cmd) < 0
	    || nflog_cfg(fd, group, NFULA_CFG_MODE, &mode, sizeof mode) < 0
	    || nflog_cfg(fd, group, NFULA_CFG_QTHRESH, &qthresh, sizeof qthresh) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	G.nflog_fd = fd;
	return 0;
}

static void nflog_packet(struct nlmsghdr *h)
{
	const struct nfgenmsg *g = NLMSG_DATA(h);
	char prefix[64] = "";
	const uint8_t *pkt = NULL;
	size_t plen = 0;
	int off = NLMSG_ALIGN(sizeof *g);
	for (const struct nlattr *a = (const struct nlattr *)((const uint8_t *)g + off);
	     (const uint8_t *)a + NLA_HDRLEN <= (const uint8_t *)h + h->nlmsg_len && a->nla_len >= NLA_HDRLEN
	     && (const uint8_t *)a + a->nla_len <= (const uint8_t *)h + h->nlmsg_len;
	     a = (const struct nlattr *)((const uint8_t *)a + NLA_ALIGN(a->nla_len))) {
		size_t len = a->nla_len - NLA_HDRLEN;
		const uint8_t *data = (const uint8_t *)a + NLA_HDRLEN;
		switch (a->nla_type & NLA_TYPE_MASK) {
		case NFULA_PREFIX: snprintf(prefix, sizeof prefix, "%.*s", (int)(len < sizeof prefix ? len : sizeof prefix - 1), (const char *)data); break;
		case NFULA_PAYLOAD: pkt = data; plen = len; break;
		default: break;
		}
	}
	struct eg_denial d = { .kind = "connect", .proto = "tcp", .port = -1, .seen = "kernel", .src = G.pol.default_src };
	struct eg_sock s = { 0 };
	if (pkt && plen >= 20 && (pkt[0] >> 4) == 4) {
		size_t ihl = (size_t)(pkt[0] & 15) * 4;
		memcpy(&d.addr, pkt + 16, 4);
		uint8_t proto = pkt[9];
		if (proto == IPPROTO_UDP) { d.proto = "udp"; d.kind = "datagram"; }
		else if (proto == IPPROTO_ICMP) { d.proto = "icmp"; d.kind = "datagram"; }
		if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP) && plen >= ihl + 4) {
			d.port = pkt[ihl + 2] << 8 | pkt[ihl + 3];
			/* The sender's socket, if it is still open when this is read (a refused TCP
			 * connect closes on the reject; a UDP socket usually lives on). */
			s = (struct eg_sock){ .proto = proto, .remote = d.addr, .rport = (uint16_t)d.port, .lport = (uint16_t)(pkt[ihl] << 8 | pkt[ihl + 1]) };
			memcpy(&s.local, pkt + 12, 4);
			d.sock = &s;
		}
	} else if (pkt && plen >= 40 && (pkt[0] >> 4) == 6) {
		uint8_t nh = pkt[6];
		if (nh == IPPROTO_UDP) { d.proto = "udp"; d.kind = "datagram"; }
		else if (nh == IPPROTO_ICMPV6) { d.proto = "icmp"; d.kind = "datagram"; }
		if ((nh == IPPROTO_TCP || nh == IPPROTO_UDP) && plen >= 44) d.port = pkt[42] << 8 | pkt[43];
		d.why = "IPv6";
	} else return;
	if (prefix[0] == 'r' && prefix[1] >= '0' && prefix[1] <= '9') {
		const struct eg_rule *r = policy_rule(&G.pol, atoi(prefix + 1));
		if (r) { d.rule = r->index; d.src = r->src; }
	} else if (!strcmp(prefix, "class")) d.cls = 1;
	else if (!strcmp(prefix, "dns")) d.why = "DNS to a server other than the sandbox's resolver";
	G.n.kernel_refused++;
	log_denial(&d);
}

static void nflog_event(struct ep *self, uint32_t events)
{
	uint8_t buf[NLBUF];
	for (int rounds = 0; rounds < 64; rounds++) {
		ssize_t n = recv(G.nflog_fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n <= 0) return;           /* ENOBUFS (a burst overflowed): the counters are short, go on */
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n))
			if (h->nlmsg_type == ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET)) nflog_packet(h);
	}
}

struct ep *nflog_source(void) { return &nflog_ep; }
