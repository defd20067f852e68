/* The relay's parsers (sbx-egress, design 3.5): they read the first bytes a sandboxed client sends
 * through the relay, before any of them goes upstream, and name the host the client asks for.
 * Pure functions over the caller's buffer: no allocation, no system call, no global state, every
 * read bounds-checked, so that they can run on hostile bytes in sbx-egress (host namespaces, root)
 * and in the fuzz harness (test/unit/egress-parse.test.ts) alike.
 *
 * Names handed back are lowercase, without a trailing dot, made only of [a-z0-9._-], 1..253 bytes,
 * NUL-terminated; anything else is EG_BAD, so the policy compares plain strings. */
#ifndef SBX_EGRESS_PARSE_H
#define SBX_EGRESS_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* 1 and out = the name's spelling above (ASCII letters lowered, one trailing dot dropped), when
 * the n bytes at s are a name: labels of 1..63 bytes of [A-Za-z0-9._-], 253 bytes at most; else 0
 * (out unspecified). name.c; also usable for names the resolver sees. */
int eg_name(const uint8_t *s, size_t n, char out[256]);

/* Results of eg_tls_sni, eg_http_head and eg_chunked_feed. EG_MORE: not decidable yet, call again
 * with more bytes (the same start, longer len); the caller gives up at EG_INSPECT_MAX bytes.
 * Each call reads from the start again (linear in len): a client that sends its head a byte at a
 * time costs O(len^2) over EG_INSPECT_MAX, so call eg_http_head again only when the new bytes hold
 * a '\n', and eg_tls_sni only once len reaches what the record headers so far announce. */
enum eg_parse { EG_MORE = 0, EG_OK = 1, EG_NONAME = 2, EG_BAD = 3 };

/* The most a connection's first bytes are buffered for inspection (design 3.5, step 7). */
#define EG_INSPECT_MAX 16384

/* 1: the bytes start like TLS (a handshake record 0x16 0x03, or an SSLv2 CLIENT-HELLO, which
 * eg_tls_sni then refuses); 0: not TLS; -1: too few bytes to say. */
int eg_looks_tls(const uint8_t *buf, size_t len);

/* 1: the bytes start with an HTTP method token and a space (at most 32 token bytes); 0: not
 * HTTP; -1: too few bytes to say. */
int eg_looks_http(const uint8_t *buf, size_t len);

/* The server name of the TLS ClientHello at the start of buf: buf holds all the client's bytes so
 * far (TCP segments already joined); the handshake message is reassembled across TLS records.
 * EG_OK: name holds the host_name; EG_NONAME: a well-formed hello without a server_name extension;
 * EG_BAD: malformed, SSLv2, a record that is not handshake before the hello is whole, a
 * server_name with several names or a type other than host_name, or a name outside the set above;
 * EG_MORE: the hello is not whole yet. *why (may be NULL) gets a static reason for EG_BAD/NONAME. */
int eg_tls_sni(const uint8_t *buf, size_t len, char name[256], const char **why);

/* One HTTP/1.x request head at the start of buf (for pipelined requests, call again at the start
 * of the next one). EG_OK fills *out: name = the Host's name (lowercase, no port), port = the
 * Host's port or 0, head_len = bytes up to and including the blank line, connect = a CONNECT
 * (the rest of the connection is a tunnel), chunked = a chunked body follows (eg_chunked_feed),
 * else content_length body bytes follow (0: none). EG_MORE: no blank line yet and fewer than
 * EG_INSPECT_MAX bytes. EG_BAD with *why (a static string, never NULL on EG_BAD) for: a malformed
 * request line or header, no Host or several, an absolute-form or CONNECT authority that does not
 * agree with Host, both Content-Length and Transfer-Encoding, several Content-Length, a
 * Transfer-Encoding other than chunked alone, obs-fold, a bare LF or CR, an Upgrade header, the
 * `PRI * HTTP/2.0` preface, or a head over EG_INSPECT_MAX bytes. */
struct eg_http {
	char name[256];
	uint16_t port;
	size_t head_len;
	int connect;
	int chunked;
	uint64_t content_length;
};
int eg_http_head(const uint8_t *buf, size_t len, struct eg_http *out, const char **why);

/* Where a chunked body ends, fed the bytes as they pass (any split). Zero the struct before the
 * body's first byte. EG_MORE: all len bytes belong to the body (*used = len), feed more; EG_OK:
 * the body (last chunk and trailers included) ends after *used bytes of this buffer, the next
 * request head starts there; EG_BAD: malformed framing (a bad size, a bare LF, a size line or
 * trailer line over 4 KiB), *used = where it was found. */
struct eg_chunked {
	int state;
	uint64_t left;
	uint32_t line;   /* bytes of the current size or trailer line, bounded */
};
int eg_chunked_feed(struct eg_chunked *st, const uint8_t *buf, size_t len, size_t *used);

#endif
