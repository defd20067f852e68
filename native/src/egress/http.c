/* The HTTP/1.x side of the relay's inspection (parse.h, design 3.5): each request head a
 * sandboxed client sends is read before any of its bytes goes upstream, and the shapes that let a
 * front end and a server disagree on where a request ends (request smuggling) or on its host are
 * refused. Runs in sbx-egress (host namespaces, root) on hostile bytes: every read is bounded by
 * the caller's length; no allocation. */
#include <string.h>
#include "parse.h"

/* RFC 9110 5.6.2: the bytes of a method or a header name. */
static int tchar(uint8_t c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int eg_looks_http(const uint8_t *buf, size_t len)
{
	size_t i;
	for (i = 0; i < len && i <= 32; i++) {
		if (buf[i] == ' ')
			return i > 0;
		if (!tchar(buf[i]))
			return 0;
	}
	return i > 32 ? 0 : -1;
}

static int bad(const char **why, const char *reason)
{
	*why = reason;
	return EG_BAD;
}

static int lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* The n bytes at s equal the lowercase word w, ignoring ASCII case. */
static int is(const uint8_t *s, size_t n, const char *w)
{
	if (n != strlen(w))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (lower(s[i]) != (uint8_t)w[i])
			return 0;
	return 1;
}

/* host[:port] (a Host value or a target's authority): the name as eg_name spells it, the port or
 * 0. IPv6 literals are refused: the sandbox's network is IPv4 only. */
static const char *authority(const uint8_t *s, size_t n, char name[256], uint16_t *port, int need_port)
{
	if (n == 0)
		return "an empty host";
	if (s[0] == '[')
		return "an IPv6 literal host";
	size_t c = 0;
	while (c < n && s[c] != ':')
		c++;
	if (!eg_name(s, c, name))
		return "a host that is not a host name";
	*port = 0;
	if (c == n)
		return need_port ? "CONNECT without a port" : NULL;
	uint32_t p = 0;
	size_t digits = n - c - 1;
	if (digits < 1 || digits > 5)
		return "a malformed port";
	for (size_t i = c + 1; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return "a malformed port";
		p = p * 10 + (s[i] - '0');
	}
	if (p == 0 || p > 65535)
		return "a malformed port";
	*port = (uint16_t)p;
	return NULL;
}

/* What the header lines said that framing and the name depend on. */
struct heads {
	const uint8_t *host;
	size_t host_len;
	int hosts, lengths, encodings;
	uint64_t length;
};

/* One header line [s, s+n) without its CRLF. NULL, or why it is refused. */
static const char *header(const uint8_t *s, size_t n, struct heads *h)
{
	if (s[0] == ' ' || s[0] == '\t')
		return "a folded header line (obs-fold)";
	size_t c = 0;
	while (c < n && tchar(s[c]))
		c++;
	if (c == 0 || c == n || s[c] != ':')
		return "a malformed header line";
	size_t v = c + 1, e = n;
	while (v < e && (s[v] == ' ' || s[v] == '\t'))
		v++;
	while (e > v && (s[e - 1] == ' ' || s[e - 1] == '\t'))
		e--;
	for (size_t i = v; i < e; i++)
		if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
			return "a control byte in a header value";
	const uint8_t *val = s + v;
	size_t vn = e - v;
	if (is(s, c, "host")) {
		h->hosts++;
		h->host = val;
		h->host_len = vn;
	} else if (is(s, c, "content-length")) {
		h->lengths++;
		if (vn == 0 || vn > 19)
			return "a malformed Content-Length";
		uint64_t x = 0;
		for (size_t i = 0; i < vn; i++) {
			if (val[i] < '0' || val[i] > '9')
				return "a malformed Content-Length";
			x = x * 10 + (uint64_t)(val[i] - '0');
		}
		h->length = x;
	} else if (is(s, c, "transfer-encoding")) {
		h->encodings++;
		if (!is(val, vn, "chunked"))
			return "a Transfer-Encoding other than chunked alone";
	} else if (is(s, c, "upgrade")) {
		return "a protocol upgrade (websocket, h2c): use TLS (wss://, https://)";
	}
	return NULL;
}

/* The end of the head (after its blank line), 0 when it has not arrived yet; a bare LF or CR
 * anywhere in it is refused as soon as it is seen. */
static size_t head_end(const uint8_t *buf, size_t lim, const char **why)
{
	for (size_t i = 0; i < lim; i++) {
		if (buf[i] == '\n') {
			if (i == 0 || buf[i - 1] != '\r') {
				*why = "a bare LF in the request head";
				return 0;
			}
			if (i == 1) {
				*why = "an empty line before the request line";
				return 0;
			}
			if (i >= 3 && buf[i - 2] == '\n')
				return i + 1;
		} else if (buf[i] == '\r' && i + 1 < lim && buf[i + 1] != '\n') {
			*why = "a bare CR in the request head";
			return 0;
		}
	}
	return 0;
}

/* The request target against the Host: an absolute-form or CONNECT authority must name the same
 * host (and port, when both say one) and is then the name; origin-form and `OPTIONS *` take the
 * Host's. */
static const char *target(const uint8_t *m, size_t mn, const uint8_t *t, size_t tn, struct eg_http *out)
{
	char name[256];
	uint16_t port;
	const char *err;
	if (is(m, mn, "connect")) {
		if ((err = authority(t, tn, name, &port, 1)))
			return err;
		out->connect = 1;
	} else if (t[0] == '/') {
		return NULL;
	} else if (tn == 1 && t[0] == '*') {
		return is(m, mn, "options") ? NULL : "`*` as the target of a method other than OPTIONS";
	} else {
		size_t skip;
		uint16_t dflt;
		if (tn > 7 && is(t, 7, "http://"))
			skip = 7, dflt = 80;
		else if (tn > 8 && is(t, 8, "https://"))
			skip = 8, dflt = 443;
		else
			return "a request target of an unknown form";
		size_t a = skip, e = skip;
		while (e < tn && t[e] != '/' && t[e] != '?' && t[e] != '#')
			e++;
		for (size_t i = a; i < e; i++)
			if (t[i] == '@')
				return "user information in the request target";
		if ((err = authority(t + a, e - a, name, &port, 0)))
			return err;
		if ((port ? port : dflt) != (out->port ? out->port : dflt))
			return "a request target whose port differs from the Host's";
	}
	if (strcmp(name, out->name) != 0)
		return "a request target whose host differs from the Host";
	if (out->connect && out->port && out->port != port)
		return "a request target whose port differs from the Host's";
	if (port)
		out->port = port;
	return NULL;
}

int eg_http_head(const uint8_t *buf, size_t len, struct eg_http *out, const char **why)
{
	memset(out, 0, sizeof *out);
	*why = NULL;
	size_t lim = len < EG_INSPECT_MAX ? len : EG_INSPECT_MAX;
	size_t end = head_end(buf, lim, why);
	if (*why)
		return EG_BAD;
	if (end == 0)
		return len >= EG_INSPECT_MAX ? bad(why, "a request head over 16 KiB") : EG_MORE;

	/* The request line: method SP target SP HTTP/1.x (RFC 9112 3). */
	size_t eol = 0;
	while (buf[eol] != '\r')
		eol++;
	size_t m = 0;
	while (m < eol && tchar(buf[m]))
		m++;
	if (m == 0 || m > 32 || m == eol || buf[m] != ' ')
		return bad(why, "a malformed request line");
	size_t t = m + 1, te = t;
	while (te < eol && buf[te] > 0x20 && buf[te] < 0x7f)
		te++;
	if (te == t || te == eol || buf[te] != ' ')
		return bad(why, "a malformed request line");
	const uint8_t *ver = buf + te + 1;
	size_t vn = eol - te - 1;
	if (vn == 8 && memcmp(ver, "HTTP/2.0", 8) == 0 && m == 3 && memcmp(buf, "PRI", 3) == 0)
		return bad(why, "the HTTP/2 preface (h2c): use TLS (https://)");
	if (vn != 8 || memcmp(ver, "HTTP/1.", 7) != 0 || ver[7] < '0' || ver[7] > '9')
		return bad(why, "not an HTTP/1.x request line");
	int http10 = ver[7] == '0';

	struct heads h = { 0 };
	for (size_t s = eol + 2; s < end - 2;) {
		size_t e = s;
		while (buf[e] != '\r')
			e++;
		const char *err = header(buf + s, e - s, &h);
		if (err)
			return bad(why, err);
		s = e + 2;
	}
	if (h.hosts == 0)
		return bad(why, "no Host header");
	if (h.hosts > 1)
		return bad(why, "several Host headers");
	if (h.lengths > 1)
		return bad(why, "several Content-Length headers");
	if (h.encodings > 1)
		return bad(why, "several Transfer-Encoding headers");
	if (h.lengths && h.encodings)
		return bad(why, "both Content-Length and Transfer-Encoding");
	if (h.encodings && http10)
		return bad(why, "Transfer-Encoding in an HTTP/1.0 request");
	const char *err = authority(h.host, h.host_len, out->name, &out->port, 0);
	if (err)
		return bad(why, err);
	if ((err = target(buf, m, buf + t, te - t, out)))
		return bad(why, err);
	if (out->connect && (h.encodings || h.length))
		return bad(why, "CONNECT with a body");
	out->head_len = end;
	out->chunked = h.encodings > 0;
	out->content_length = h.length;
	return EG_OK;
}

/* eg_chunked_feed's states (RFC 9112 7.1): where in the chunked body the next byte falls. */
enum { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER_START, CH_TRAILER, CH_TRAILER_LF,
       CH_FINAL_LF, CH_DONE };
#define CH_LINE_MAX 4096

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (uint8_t)lower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int eg_chunked_feed(struct eg_chunked *st, const uint8_t *buf, size_t len, size_t *used)
{
	size_t i = 0;
	while (i < len) {
		uint8_t c = buf[i];
		switch (st->state) {
		case CH_SIZE: {
			int v = hexval(c);
			if (v >= 0) {
				if (st->left >> 60)
					goto bad;
				st->left = st->left << 4 | (uint64_t)v;
			} else if (st->line == 0 || (c != ';' && c != '\r')) {
				goto bad;
			} else {
				st->state = c == ';' ? CH_EXT : CH_SIZE_LF;
			}
			if (++st->line > CH_LINE_MAX)
				goto bad;
			i++;
			break;
		}
		case CH_EXT:
			if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f || ++st->line > CH_LINE_MAX)
				goto bad;
			if (c == '\r')
				st->state = CH_SIZE_LF;
			i++;
			break;
		case CH_SIZE_LF:
			if (c != '\n')
				goto bad;
			st->state = st->left ? CH_DATA : CH_TRAILER_START;
			st->line = 0;
			i++;
			break;
		case CH_DATA: {
			size_t k = len - i;
			if ((uint64_t)k > st->left)
				k = (size_t)st->left;
			st->left -= k;
			i += k;
			if (st->left == 0)
				st->state = CH_DATA_CR;
			break;
		}
		case CH_DATA_CR:
		case CH_TRAILER_LF:
		case CH_FINAL_LF:
		case CH_DATA_LF:
			if (c != (st->state == CH_DATA_CR ? '\r' : '\n'))
				goto bad;
			st->state = st->state == CH_DATA_CR ? CH_DATA_LF
				: st->state == CH_DATA_LF ? CH_SIZE
				: st->state == CH_TRAILER_LF ? CH_TRAILER_START : CH_DONE;
			st->line = 0;
			st->left = 0;
			i++;
			if (st->state == CH_DONE) {
				*used = i;
				return EG_OK;
			}
			break;
		case CH_TRAILER_START:
			if (c == ' ' || c == '\t')
				goto bad;               /* obs-fold in a trailer */
			st->state = c == '\r' ? CH_FINAL_LF : CH_TRAILER;
			if (c != '\r')
				continue;               /* the trailer line's first byte is checked there */
			i++;
			break;
		case CH_TRAILER:
			if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f || ++st->line > CH_LINE_MAX)
				goto bad;
			if (c == '\r')
				st->state = CH_TRAILER_LF;
			i++;
			break;
		case CH_DONE:
			*used = 0;
			return EG_OK;
		default:
			goto bad;
		}
	}
	*used = len;
	return st->state == CH_DONE ? EG_OK : EG_MORE;
bad:
	*used = i;
	return EG_BAD;
}
