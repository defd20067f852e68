/* The policy text sbx-egress reads on stdin (contract section 3), and its evaluation (design 4.2):
 * refused classes, ordered rules, first match, "no rule allowed it" when none matches. Pure code
 * over the parsed policy; it also holds G, the process's state, so that it calls nothing. */
#include "egress.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct eg_global G;

double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A name as the policy and the parsers write it: lowercase labels of [a-z0-9_-], 1..63 bytes
 * each, 1..253 bytes in all, no leading, trailing or double dot. */
int policy_name_ok(const char *name)
{
	size_t len = strlen(name), label = 0;
	if (len == 0 || len > 253) return 0;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (c == '.') { if (label == 0) return 0; label = 0; continue; }
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return 0;
		if (++label > 63) return 0;
	}
	return label > 0;
}

static int parse_cidr(const char *s, uint32_t *net, uint32_t *mask)
{
	char buf[32];
	const char *slash = strchr(s, '/');
	long prefix = 32;
	if (!slash) { if (strlen(s) >= sizeof buf) return -1; strcpy(buf, s); }
	else {
		char *end;
		if ((size_t)(slash - s) >= sizeof buf) return -1;
		memcpy(buf, s, (size_t)(slash - s));
		buf[slash - s] = 0;
		prefix = strtol(slash + 1, &end, 10);
		if (*end || end == slash + 1 || prefix < 0 || prefix > 32) return -1;
	}
	struct in_addr a;
	if (inet_pton(AF_INET, buf, &a) != 1) return -1;
	*mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
	*net = ntohl(a.s_addr) & *mask;
	return 0;
}

static int parse_ports(char *s, struct eg_rule *r)
{
	for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;
		long lo = strtol(tok, &end, 10), hi = lo;
		if (*end == '-') hi = strtol(end + 1, &end, 10);
		if (*end || lo < 1 || hi > 65535 || lo > hi || r->nports >= EG_MAX_PORT_RANGES) return -1;
		r->ports[r->nports++] = (struct eg_range){ (uint16_t)lo, (uint16_t)hi };
	}
	return r->nports ? 0 : -1;
}

static int parse_protos(char *s, unsigned *out)
{
	*out = 0;
	for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "tcp")) *out |= EG_TCP;
		else if (!strcmp(tok, "udp")) *out |= EG_UDP;
		else if (!strcmp(tok, "icmp")) *out |= EG_ICMP;
		else return -1;
	}
	return *out ? 0 : -1;
}

/* The next space-separated word of *s (NUL-terminated in place), or NULL at the end. */
static char *word(char **s)
{
	char *w = *s + strspn(*s, " \t");
	if (!*w) { *s = w; return NULL; }
	char *e = w + strcspn(w, " \t");
	*s = *e ? e + 1 : e;
	*e = 0;
	return w;
}

/* `rule I allow|deny host exact|suffix NAME PROTOS PORTS SRC` or `rule I allow|deny cidr N/P PROTOS PORTS SRC`. */
static const char *parse_rule(char *rest, struct eg_rule *r)
{
	char *idx = word(&rest), *action = word(&rest), *kind = word(&rest), *end;
	memset(r, 0, sizeof *r);
	if (!kind) return "a rule needs an index, an action, a kind, a target, protocols and ports";
	long i = strtol(idx, &end, 10);
	if (*end || i < 1 || i > 1000000) return "a rule's index must be a positive number";
	r->index = (int)i;
	if (!strcmp(action, "allow")) r->allow = 1;
	else if (strcmp(action, "deny")) return "a rule's action is allow or deny";
	if (!strcmp(kind, "host")) {
		char *how = word(&rest), *name = word(&rest);
		r->host = 1;
		if (!name) return "a host rule needs exact|suffix, a name, protocols and ports";
		if (!strcmp(how, "suffix")) r->suffix = 1;
		else if (strcmp(how, "exact")) return "a host rule is exact or suffix";
		if (strlen(name) >= sizeof r->name || !policy_name_ok(name)) return "a host rule's name is not a valid lowercase name";
		strcpy(r->name, name);
	} else if (!strcmp(kind, "cidr")) {
		char *target = word(&rest);
		if (!target || parse_cidr(target, &r->net, &r->mask) < 0) return "a cidr rule's target is not an IPv4 address/prefix";
	} else return "a rule's kind is host or cidr";
	char *protos = word(&rest), *ports = word(&rest);
	if (!ports) return "a rule needs protocols and ports";
	if (parse_protos(protos, &r->protos) < 0) return "protocols are tcp, udp, icmp, comma-separated";
	if (parse_ports(ports, r) < 0) return "ports are numbers or ranges 1-65535, comma-separated";
	if (r->host && r->protos != EG_TCP) return "a host rule's protocol is tcp";
	char *src = rest + strspn(rest, " \t");
	size_t l = strlen(src);
	while (l && (src[l - 1] == ' ' || src[l - 1] == '\t')) src[--l] = 0;
	if (l >= sizeof r->src) return "a rule's source location is too long";
	strcpy(r->src, src);
	return NULL;
}

static const char *parse_header(char *rest, struct eg_policy *p)
{
	char *save = NULL;
	int have_nonce = 0;
	p->grace = 300;
	for (char *tok = strtok_r(rest, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(tok, '='), *end;
		if (!eq) return "the v1 line holds key=value words";
		*eq++ = 0;
		if (!strcmp(tok, "nonce")) {
			size_t l = strlen(eq);
			if (l < 16 || l > 64 || strspn(eq, "0123456789abcdef") != l) return "nonce= must be 16 to 64 lowercase hex digits";
			strcpy(p->nonce, eq);
			have_nonce = 1;
		} else if (!strcmp(tok, "grace")) {
			unsigned long v = strtoul(eq, &end, 10);
			if (*end || end == eq || v > 86400) return "grace= must be seconds (0..86400)";
			p->grace = (unsigned)v;
		} else if (!strcmp(tok, "mark")) {
			unsigned long v = strtoul(eq, &end, 0);
			if (*end || end == eq || v > 0xffffffffUL) return "mark= must be a 32-bit number";
			p->mark = (uint32_t)v;
		} else if (!strcmp(tok, "group")) {
			unsigned long v = strtoul(eq, &end, 10);
			if (*end || end == eq || v > 65535) return "group= must be an NFLOG group (0..65535)";
			p->group = (unsigned)v;
		}
		/* Unknown keys are left for later versions of the CLI: they change no check here. */
	}
	return have_nonce ? NULL : "the v1 line has no nonce=";
}

static void *grow(void *arr, int n, size_t size)
{
	if (n & (n - 1)) return arr;            /* capacity doubles at powers of two */
	return realloc(arr, (size_t)(n ? 2 * n : 1) * size);
}

/* Parses text (modified in place). 0, or -1 with err = "line N: why". */
int policy_parse(char *text, size_t len, struct eg_policy *p, char *err, size_t errlen)
{
	int lineno = 0, seen_v1 = 0, seen_end = 0;
	const char *why = NULL;
	memset(p, 0, sizeof *p);
	if (memchr(text, 0, len)) { snprintf(err, errlen, "the policy text holds a NUL byte"); return -1; }
	p->nft = calloc(1, len + 1);
	if (!p->nft) { snprintf(err, errlen, "out of memory"); return -1; }
	for (char *line = text, *next; line && line < text + len && !why; line = next) {
		next = strchr(line, '\n');
		if (next) *next++ = 0;
		lineno++;
		if (seen_end) { if (line[strspn(line, " \t\r")]) why = "text after `end`"; continue; }
		size_t l = strlen(line);
		if (l && line[l - 1] == '\r') line[--l] = 0;
		char *kw = line + strspn(line, " \t");
		size_t kwl = strcspn(kw, " \t");
		char *rest = kw + kwl + strspn(kw + kwl, " \t");
		if (kwl == 3 && !memcmp(kw, "nft", 3)) {
			/* The rest of an nft line goes to `nft -f -` as it is (nft has its own # comments). */
			if (!seen_v1) { why = "the first line must be `v1 ...`"; break; }
			const char *body = kw[3] ? kw + 4 : kw + 3;
			size_t bl = strlen(body);
			memcpy(p->nft + p->nft_len, body, bl);
			p->nft_len += bl;
			p->nft[p->nft_len++] = '\n';
			continue;
		}
		char *hash = strchr(kw, '#');
		if (hash) { *hash = 0; if (rest > hash) rest = hash; }
		for (size_t e = strlen(kw); e && (kw[e - 1] == ' ' || kw[e - 1] == '\t'); ) kw[--e] = 0;
		if (!*kw) continue;
		kw[kwl] = 0;
		if (!seen_v1) {
			if (strcmp(kw, "v1")) { why = "the first line must be `v1 ...` (a policy for another sbx-egress version?)"; break; }
			seen_v1 = 1;
			why = parse_header(rest, p);
		} else if (!strcmp(kw, "upstream")) {
			struct in_addr a;
			if (inet_pton(AF_INET, rest, &a) != 1) why = "upstream needs an IPv4 address";
			else if (p->nupstreams >= EG_MAX_UPSTREAMS) why = "too many upstream lines (8 at most)";
			else p->upstreams[p->nupstreams++] = a.s_addr;
		} else if (!strcmp(kw, "class")) {
			if (p->nclasses >= EG_MAX_CLASSES) why = "too many class lines (64 at most)";
			else if (parse_cidr(rest, &p->class_net[p->nclasses], &p->class_mask[p->nclasses]) < 0) why = "class needs an IPv4 address/prefix";
			else p->nclasses++;
		} else if (!strcmp(kw, "extra")) {
			char name[256], addr[64];
			struct in_addr a;
			if (sscanf(rest, "%255s %63s", name, addr) != 2 || !policy_name_ok(name) || inet_pton(AF_INET, addr, &a) != 1) why = "extra needs a lowercase name and an IPv4 address";
			else {
				p->extras = grow(p->extras, p->nextras, sizeof *p->extras);
				if (!p->extras) why = "out of memory";
				else { strcpy(p->extras[p->nextras].name, name); p->extras[p->nextras++].addr = a.s_addr; }
			}
		} else if (!strcmp(kw, "rule")) {
			struct eg_rule r;
			if (p->nrules >= EG_MAX_RULES) why = "too many rules (1024 at most)";
			else if (!(why = parse_rule(rest, &r))) {
				p->rules = grow(p->rules, p->nrules, sizeof *p->rules);
				if (!p->rules) why = "out of memory";
				else p->rules[p->nrules++] = r;
			}
		} else if (!strcmp(kw, "default")) {
			if (strlen(rest) >= sizeof p->default_src) why = "default's source location is too long";
			else strcpy(p->default_src, rest);
		} else if (!strcmp(kw, "end")) seen_end = 1;
		else why = "unknown line (v1, upstream, class, extra, rule, default, nft, end)";
	}
	if (!why && !seen_v1) { why = "empty policy"; lineno = 0; }
	else if (!why && !seen_end) { why = "no `end` line: the policy text was cut short"; lineno = 0; }
	else if (!why && !p->nupstreams) { why = "no upstream line: the resolver would have nowhere to ask"; lineno = 0; }
	if (why) {
		if (lineno) snprintf(err, errlen, "policy line %d: %s", lineno, why);
		else snprintf(err, errlen, "policy: %s", why);
		return -1;
	}
	if (!p->default_src[0]) strcpy(p->default_src, "default");
	for (int i = 0; i < p->nrules; i++) if (!p->rules[i].src[0]) strcpy(p->rules[i].src, p->default_src);
	return 0;
}

/* exact: the name itself; suffix: any name below it, at any depth, never the suffix itself. */
int policy_match(const struct eg_rule *r, const char *name)
{
	if (!r->suffix) return strcmp(r->name, name) == 0;
	size_t nl = strlen(name), sl = strlen(r->name);
	return nl > sl + 1 && name[nl - sl - 1] == '.' && memcmp(name + nl - sl, r->name, sl) == 0;
}

static int port_in(const struct eg_rule *r, unsigned port)
{
	for (int i = 0; i < r->nports; i++) if (port >= r->ports[i].lo && port <= r->ports[i].hi) return 1;
	return 0;
}

/* Walks the host rules that match the name with the TCP ports still undecided: an allow that
 * still has one of them answers the lookup; a deny takes its ports away; none left: NXDOMAIN.
 * A refused name cites the last deny that matched it (NULL: none did, no rule allowed it). Where
 * `deny *.corp.test` leaves 53 and 853 to no rule, nameDecision in src/model/egress.ts cites
 * nothing; the denial record says "denied by rule 2", which is what the user wrote. */
int policy_name_allowed(const struct eg_policy *p, const char *name, const struct eg_rule **rule)
{
	uint8_t decided[65536 / 8];
	unsigned left = 65535;
	const struct eg_rule *last = NULL;
	memset(decided, 0, sizeof decided);
	*rule = NULL;
	if (!policy_name_ok(name)) return 0;
	for (int i = 0; i < p->nrules; i++) {
		const struct eg_rule *r = &p->rules[i];
		if (!r->host || !policy_match(r, name)) continue;
		for (int j = 0; j < r->nports; j++)
			for (unsigned port = r->ports[j].lo; port <= r->ports[j].hi; port++) {
				if (decided[port >> 3] & (1u << (port & 7))) continue;
				if (r->allow) { *rule = r; return 1; }
				decided[port >> 3] |= (uint8_t)(1u << (port & 7));
				left--;
			}
		if (!r->allow) last = r;
		if (left == 0) break;
	}
	*rule = last;
	return 0;
}

/* An address in a refused class, unless an allow cidr rule lying inside that class names it (on
 * some port: the resolver keeps such an address in its answers and the relay's gate lets it on
 * to policy_verdict, which holds it to that rule's ports). */
int policy_class(const struct eg_policy *p, uint32_t addr_be)
{
	uint32_t a = ntohl(addr_be);
	for (int c = 0; c < p->nclasses; c++) {
		if ((a & p->class_mask[c]) != p->class_net[c]) continue;
		for (int i = 0; i < p->nrules; i++) {
			const struct eg_rule *r = &p->rules[i];
			if (r->host || !r->allow || (a & r->mask) != r->net) continue;
			if ((r->mask & p->class_mask[c]) == p->class_mask[c] && (r->net & p->class_mask[c]) == p->class_net[c]) return -1;
		}
		return c;
	}
	return -1;
}

static int range_inside(const struct eg_policy *p, int c, const struct eg_rule *r)
{
	return (r->mask & p->class_mask[c]) == p->class_mask[c] && (r->net & p->class_mask[c]) == p->class_net[c];
}

/* Rules in order, first match. An address in a refused class is reached only through an allow
 * cidr rule whose own range lies inside that class, on that rule's ports and protocols: a wider
 * allow (0.0.0.0/0, a host rule) that matches first refuses it as a class (as src/model/egress.ts). */
int policy_verdict(const struct eg_policy *p, uint32_t addr_be, uint16_t port, unsigned proto,
		   const char *name, int name_has_addr, const char *const *names, int nnames,
		   const struct eg_rule **rule, int *cls)
{
	uint32_t a = ntohl(addr_be);
	int in_class = 0;
	*rule = NULL;
	*cls = 0;
	for (int c = 0; c < p->nclasses; c++) in_class |= (a & p->class_mask[c]) == p->class_net[c];
	for (int i = 0; i < p->nrules; i++) {
		const struct eg_rule *r = &p->rules[i];
		if (!(r->protos & proto) || (proto != EG_ICMP && !port_in(r, port))) continue;   /* ICMP has no ports */
		int hit = 0;
		if (!r->host) hit = (a & r->mask) == r->net;
		else if (proto != EG_TCP) hit = 0;
		else if (name) hit = name_has_addr && policy_match(r, name);
		else for (int k = 0; k < nnames && !hit; k++) hit = policy_match(r, names[k]);
		if (!hit) continue;
		if (r->allow && in_class)
			for (int c = 0; c < p->nclasses; c++)
				if ((a & p->class_mask[c]) == p->class_net[c] && (r->host || !range_inside(p, c, r))) { *cls = 1; return 0; }
		*rule = r;
		return r->allow;
	}
	*cls = in_class;
	return 0;
}

const struct eg_rule *policy_rule(const struct eg_policy *p, int index)
{
	for (int i = 0; i < p->nrules; i++) if (p->rules[i].index == index) return &p->rules[i];
	return NULL;
}
