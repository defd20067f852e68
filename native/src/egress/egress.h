/* sbx-egress: one process per sandbox with an egress policy (docs/egress-design.md 3.4-3.7).
 * Single-threaded, one epoll loop, libc only. It runs as root in the host's namespaces; its
 * resolver and relay listening sockets and one netfilter netlink socket were made inside the
 * sandbox's network namespace by a short-lived helper and handed over (main.c). Every upstream
 * socket (DNS and relayed TCP) is made here, in the host's namespace.
 *
 * Who calls whom (no two files call each other): main.c calls everything; relay.c calls dns.c
 * (the answered table), nl.c, log.c and policy.c; dns.c calls nl.c, log.c and policy.c; nl.c calls
 * log.c and policy.c; log.c calls proc.c and policy.c; proc.c calls policy.c; policy.c (the policy
 * and the process-wide state G) calls nothing. tls.c/http.c (parse.h, egress-parse) are pure and called by relay.c. */
#ifndef SBX_EGRESS_H
#define SBX_EGRESS_H

#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define EG_MAX_UPSTREAMS 8
#define EG_MAX_CLASSES 64
#define EG_MAX_RULES 1024
#define EG_MAX_PORT_RANGES 64
#define EG_TTL_MIN 5
#define EG_TTL_MAX 3600

/* An epoll source: data.ptr of every registered fd points at one of these, embedded in its owner. */
struct ep { void (*fn)(struct ep *self, uint32_t events); };
#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

enum eg_proto { EG_TCP = 1, EG_UDP = 2, EG_ICMP = 4 };

struct eg_range { uint16_t lo, hi; };

struct eg_rule {
	int index;                   /* the rule's number in the file, cited by denials */
	int allow;
	int host;                    /* 1: host rule (name), 0: cidr rule */
	int suffix;                  /* host: `*.name` (any depth below name, not name itself) */
	char name[256];              /* host: lowercase, no trailing dot */
	uint32_t net, mask;          /* cidr, host byte order */
	unsigned protos;             /* EG_TCP | EG_UDP | EG_ICMP */
	int nports;
	struct eg_range ports[EG_MAX_PORT_RANGES];
	char src[256];               /* file:line:col */
};

struct eg_extra { char name[256]; uint32_t addr; };

struct eg_policy {
	char nonce[65];
	unsigned grace;              /* seconds added to an answer's clamped TTL for the tables */
	uint32_t mark;               /* SO_MARK of relay upstream sockets (the host wall's backstop) */
	unsigned group;              /* NFLOG group of the host wall's refusals */
	int nupstreams;
	uint32_t upstreams[EG_MAX_UPSTREAMS];   /* network byte order */
	int nclasses;
	uint32_t class_net[EG_MAX_CLASSES], class_mask[EG_MAX_CLASSES];   /* host byte order */
	int nextras;
	struct eg_extra *extras;
	int nrules;
	struct eg_rule *rules;
	char default_src[256];
	char *nft;                   /* the in-namespace table, one line per `nft` line, @RELAY@ unreplaced */
	size_t nft_len;
};

struct eg_counters {
	uint64_t answered, refused, withheld, forwarded;      /* lookups */
	uint64_t relayed, conn_refused, open;                 /* connections */
	uint64_t kernel_refused;
};

/* The process-wide state (policy.c defines it; main.c fills it before the loop starts). */
struct eg_global {
	struct eg_policy pol;
	char digest[65];             /* sha256 hex of the policy text, as read from stdin */
	const char *state_dir;
	int epoll;
	int dns_udp, dns_tcp, relay_fd, nft_nl, nflog_fd;
	int diag_fd;                 /* NETLINK_SOCK_DIAG in the sandbox's namespace (proc.c), -1 without */
	dev_t netns_dev;             /* the sandbox's network namespace, as stat of /proc/PID/ns/net gives it */
	ino_t netns_ino;
	uint16_t relay_port;
	struct eg_counters n;
	int status_dirty;
	int root;                    /* euid 0: marks and NFLOG */
};
extern struct eg_global G;

/* A socket in the sandbox, by the pair it sees: its own address and its peer's (network order). */
struct eg_sock { uint8_t proto; uint32_t local, remote; uint16_t lport, rport; };

/* The process holding a socket: its PID on the host and in the sandbox (0: none there), its name. */
struct eg_proc { pid_t host_pid, pid; char comm[16]; };

/* A denial record (contract section 6). addr 0 / port -1 / name NULL are written as null. */
struct eg_denial {
	const char *kind;            /* lookup | connect | datagram | answer-withheld | protocol | limit */
	const char *proto;           /* tcp | udp | icmp */
	uint32_t addr;               /* network byte order, 0 for none */
	int port;
	const char *name;
	const char *seen;            /* dns | sni | host | connect | address | kernel */
	int rule;                    /* index of the rule that denied it, 0 for null */
	const char *src;
	int cls;                     /* refused for a class */
	const char *why;             /* protocol refusals: the parser's reason (written as "why") */
	const struct eg_sock *sock;  /* the refused socket when known: its process is looked up (proc.c) */
};

/* policy.c */
int policy_parse(char *text, size_t len, struct eg_policy *p, char *err, size_t errlen);
int policy_name_ok(const char *name);
int policy_match(const struct eg_rule *r, const char *name);
/* nameAllowed (design 4.2, nameDecision in src/model/egress.ts): 1 allowed, *rule = the allow
 * that answers; 0 refused, *rule = the deny that closed the last ports (NULL: no rule allowed it). */
int policy_name_allowed(const struct eg_policy *p, const char *name, const struct eg_rule **rule);
/* -1: not in a refused class (or a cidr allow inside the class names it); else the class index. */
int policy_class(const struct eg_policy *p, uint32_t addr_be);
/* verdict (design 4.2, as src/model/egress.ts): returns 1 allowed, 0 refused; *rule is the deciding
 * rule or NULL (no rule matched, or a class when *cls). With a name: name_has_addr says whether the address is among the
 * name's live answers; without (name NULL): names[] are the live names answered with the address. */
int policy_verdict(const struct eg_policy *p, uint32_t addr_be, uint16_t port, unsigned proto,
		   const char *name, int name_has_addr, const char *const *names, int nnames,
		   const struct eg_rule **rule, int *cls);
const struct eg_rule *policy_rule(const struct eg_policy *p, int index);
double now_mono(void);

/* log.c */
void sha256_hex(const void *data, size_t len, char out[65]);
int log_open(const char *dir);
void log_denial(const struct eg_denial *d);
void log_tick(double now);          /* flushes coalesced denials older than 1 s; status at most 1/s */
void log_final(void);               /* every pending denial and the status, at exit */

/* proc.c */
/* The sandbox process holding the socket s: 1 and *out filled, or 0 (gone, or over the budget of
 * /proc walks). Asked while s is still open. */
int proc_owner(const struct eg_sock *s, struct eg_proc *out);

/* nl.c */
/* Puts addresses in the sandbox's answered4 set, for lifetime seconds (0: permanent); refreshes
 * the kernel timeout when less than half of it is left. 0 or -1 with errno. */
int nl_answer(const uint32_t *addrs_be, int n, unsigned lifetime);
int nl_check(void);                 /* the sandbox's table has the set answered4: 0, or -1 with errno */
int nflog_open(unsigned group);     /* in the caller's network namespace (root: the host's; the helper: the sandbox's); -1 with errno */
struct ep *nflog_source(void);      /* the epoll source of the NFLOG socket */

/* dns.c */
int dns_init(void);
void dns_tick(double now);
int dns_add_extra(const char *name, uint32_t addr_be);
/* The relay's authority: is addr a live answer for name; the live names answered with addr. */
int dns_name_has(const char *name, uint32_t addr_be);
int dns_names_of(uint32_t addr_be, const char **names, int max);
int dns_addr_answered(uint32_t addr_be);

/* relay.c */
int relay_init(void);
void relay_tick(double now);
void relay_reap(void);             /* after each epoll batch: frees the connections it closed */
void relay_shutdown(void);

#endif
