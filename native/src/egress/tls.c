/* The TLS side of the relay's inspection (parse.h, design 3.5): the server_name of the ClientHello
 * a sandboxed client sends first. Runs in sbx-egress (host namespaces, root) on hostile bytes, so
 * every read is checked against the bytes the caller has; no allocation (the reassembled hello is
 * on the stack, at most EG_INSPECT_MAX bytes). */
#include <string.h>
#include "parse.h"

/* Built with the address sanitizer (the test harness only): the part of the stack copy past the
 * hello is poisoned while the hello is read, so that a read past it fails the tests as a read
 * past the caller's bytes does. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define FENCE(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNFENCE(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define FENCE(p, n) ((void)0)
#define UNFENCE(p, n) ((void)0)
#endif

#define TLS_HANDSHAKE 0x16
#define HS_CLIENT_HELLO 0x01
#define EXT_SERVER_NAME 0x0000
#define SNI_HOST_NAME 0x00

int eg_looks_tls(const uint8_t *buf, size_t len)
{
	if (len == 0)
		return -1;
	if (buf[0] == TLS_HANDSHAKE) {
		if (len < 2)
			return -1;
		return buf[1] == 0x03;
	}
	/* An SSLv2-framed CLIENT-HELLO: a 2-byte length with the top bit set, then message type 1.
	 * Said to be TLS so that the relay refuses it as "TLS without a server name" rather than
	 * judging it by address. */
	if (buf[0] & 0x80) {
		if (len < 3)
			return -1;
		return buf[2] == 0x01;
	}
	return 0;
}

static int bad(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return EG_BAD;
}

/* A cursor over the reassembled hello: each take fails rather than read past the end. */
struct rd {
	const uint8_t *p;
	size_t n, off;
};

static int take(struct rd *r, size_t k, const uint8_t **at)
{
	if (r->n - r->off < k)
		return 0;
	*at = r->p + r->off;
	r->off += k;
	return 1;
}

static int u8(struct rd *r, size_t *v)
{
	const uint8_t *a;
	if (!take(r, 1, &a))
		return 0;
	*v = a[0];
	return 1;
}

static int u16(struct rd *r, size_t *v)
{
	const uint8_t *a;
	if (!take(r, 2, &a))
		return 0;
	*v = (size_t)a[0] << 8 | a[1];
	return 1;
}

/* The server_name extension's body (RFC 6066 3): exactly one entry, of type host_name. */
static int server_name(const uint8_t *p, size_t n, char name[256], const char **why)
{
	struct rd r = { p, n, 0 };
	size_t list, type, nlen;
	const uint8_t *s;
	if (!u16(&r, &list) || list != n - 2 || list == 0)
		return bad(why, "malformed server_name extension");
	if (!u8(&r, &type) || !u16(&r, &nlen) || !take(&r, nlen, &s))
		return bad(why, "malformed server_name extension");
	if (type != SNI_HOST_NAME)
		return bad(why, "a server name of a type other than host_name");
	if (r.off != n)
		return bad(why, "several server names");
	if (!eg_name(s, nlen, name))
		return bad(why, "a server name that is not a host name");
	return EG_OK;
}

/* The ClientHello body (RFC 8446 4.1.2, the same shape back to TLS 1.0). */
static int hello(const uint8_t *p, size_t n, char name[256], const char **why)
{
	struct rd r = { p, n, 0 };
	const uint8_t *v, *skip;
	size_t k, ext_len;
	if (!take(&r, 2, &v) || v[0] != 3)
		return bad(why, "ClientHello of an unknown version");
	if (!take(&r, 32, &skip))
		return bad(why, "truncated ClientHello");
	if (!u8(&r, &k) || k > 32 || !take(&r, k, &skip))
		return bad(why, "malformed session id");
	if (!u16(&r, &k) || k < 2 || k % 2 || !take(&r, k, &skip))
		return bad(why, "malformed cipher suites");
	if (!u8(&r, &k) || k < 1 || !take(&r, k, &skip))
		return bad(why, "malformed compression methods");
	if (r.off == n) {
		if (why)
			*why = "TLS without a server name";
		return EG_NONAME;
	}
	if (!u16(&r, &ext_len) || ext_len != n - r.off)
		return bad(why, "malformed extensions");
	/* An extension twice is a protocol error (RFC 8446 4.2), and two server_name extensions
	 * would let the relay and the server read different names. */
	uint8_t seen[65536 / 8];
	memset(seen, 0, sizeof seen);
	int found = 0;
	while (r.off < n) {
		size_t type, len;
		const uint8_t *body;
		if (!u16(&r, &type) || !u16(&r, &len) || !take(&r, len, &body))
			return bad(why, "malformed extension");
		if (seen[type >> 3] & (1u << (type & 7)))
			return bad(why, "an extension twice");
		seen[type >> 3] |= (uint8_t)(1u << (type & 7));
		if (type == EXT_SERVER_NAME) {
			int rc = server_name(body, len, name, why);
			if (rc != EG_OK)
				return rc;
			found = 1;
		}
	}
	if (!found) {
		if (why)
			*why = "TLS without a server name";
		return EG_NONAME;
	}
	return EG_OK;
}

int eg_tls_sni(const uint8_t *buf, size_t len, char name[256], const char **why)
{
	if (why)
		*why = NULL;
	if (len == 0)
		return EG_MORE;
	if (buf[0] != TLS_HANDSHAKE)
		return bad(why, (buf[0] & 0x80) ? "an SSLv2 hello" : "not a TLS handshake record");
	/* The handshake bytes, joined from the records that carry them (a hello may span records,
	 * and a record may arrive over several segments: buf holds all bytes so far). */
	uint8_t hs[EG_INSPECT_MAX];
	size_t hn = 0, off = 0;
	while (off < len) {
		const uint8_t *h = buf + off;
		size_t have = len - off;
		if (h[0] != TLS_HANDSHAKE)
			return bad(why, "a record other than handshake before the ClientHello is whole");
		if (have >= 2 && h[1] != 3)
			return bad(why, "a record of an unknown version");
		if (have >= 3 && h[2] > 4)
			return bad(why, "a record of an unknown version");
		if (have < 5)
			return EG_MORE;
		size_t rlen = (size_t)h[3] << 8 | h[4];
		if (rlen == 0)
			return bad(why, "an empty handshake record");
		if (rlen > 16384)
			return bad(why, "a record over 16 KiB");
		size_t part = have - 5 < rlen ? have - 5 : rlen;
		if (part > sizeof hs - hn)
			return bad(why, "a ClientHello over 16 KiB");
		memcpy(hs + hn, h + 5, part);
		hn += part;
		if (hn > 0 && hs[0] != HS_CLIENT_HELLO)
			return bad(why, "a first handshake message other than ClientHello");
		if (hn >= 4) {
			size_t mlen = (size_t)hs[1] << 16 | (size_t)hs[2] << 8 | hs[3];
			if (mlen > sizeof hs - 4)
				return bad(why, "a ClientHello over 16 KiB");
			if (hn >= 4 + mlen) {
				FENCE(hs + 4 + mlen, sizeof hs - 4 - mlen);
				int rc = hello(hs + 4, mlen, name, why);
				UNFENCE(hs + 4 + mlen, sizeof hs - 4 - mlen);
				return rc;
			}
		}
		if (part < rlen)
			return EG_MORE;
		off += 5 + rlen;
	}
	return EG_MORE;
}
