/* Test harness of the relay's parsers (native/src/egress/parse.h), driven by
 * test/unit/egress-parse.test.ts, which builds it with -fsanitize=address,undefined. Not shipped.
 * Each input on stdin is a line "COMMAND ARG LENGTH\n" then LENGTH bytes; each gets one line
 * on stdout. Every call sees a heap copy of exactly the bytes it is given, so that a read past
 * them is caught by the sanitizer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../src/egress/parse.h"

static uint8_t *copy(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);
	if (!c)
		abort();
	if (n)
		memcpy(c, p, n);
	return c;
}

static char letter(int rc)
{
	return "MONB"[rc];
}

static void tls(const uint8_t *p, size_t n)
{
	char name[256];
	const char *why = NULL;
	uint8_t *c = copy(p, n);
	int rc = eg_tls_sni(c, n, name, &why);
	free(c);
	if (rc == EG_OK)
		printf("OK %s", name);
	else if (rc == EG_MORE)
		printf("MORE");
	else
		printf("%s %s", rc == EG_NONAME ? "NONAME" : "BAD", why ? why : "(no reason)");
}

static void http(const uint8_t *p, size_t n)
{
	struct eg_http h;
	const char *why = NULL;
	uint8_t *c = copy(p, n);
	int rc = eg_http_head(c, n, &h, &why);
	free(c);
	if (rc == EG_OK)
		printf("OK %s %u %zu %d %d %llu", h.name, h.port, h.head_len, h.connect, h.chunked,
		       (unsigned long long)h.content_length);
	else if (rc == EG_MORE)
		printf("MORE");
	else
		printf("BAD %s", why ? why : "(no reason)");
}

/* The result letter of every prefix, then the whole input's result. */
static void prefixes(const uint8_t *p, size_t n, int is_tls)
{
	for (size_t k = 0; k <= n; k++) {
		uint8_t *c = copy(p, k);
		int rc;
		if (is_tls) {
			char name[256];
			const char *why;
			rc = eg_tls_sni(c, k, name, &why);
		} else {
			struct eg_http h;
			const char *why;
			rc = eg_http_head(c, k, &h, &why);
			if (rc == EG_BAD && !why)
				rc = 9;
		}
		free(c);
		putchar(rc == 9 ? '?' : letter(rc));
	}
	putchar(' ');
	is_tls ? tls(p, n) : http(p, n);
}

/* What the relay does on one client connection: request heads one after the other, the bodies
 * between them skipped by Content-Length or eg_chunked_feed, the bytes arriving seg at a time
 * (0: all at once). One "|"-separated item per request. */
static void stream(const uint8_t *p, size_t n, size_t seg)
{
	size_t have = 0, pos = 0;       /* bytes arrived; where the current unit starts */
	enum { HEAD, LENGTH, CHUNKED } st = HEAD;
	uint64_t left = 0;
	struct eg_chunked ch;
	int reqs = 0;
	while (have < n || pos < have) {
		size_t before = pos;
		int progress = 0;
		if (st == HEAD && pos < have) {
			struct eg_http h;
			const char *why = NULL;
			uint8_t *c = copy(p + pos, have - pos);
			int rc = eg_http_head(c, have - pos, &h, &why);
			free(c);
			if (rc == EG_BAD) {
				printf("%sBAD %s", reqs ? " | " : "", why);
				return;
			}
			if (rc == EG_OK) {
				printf("%sREQ %s %u", reqs++ ? " | " : "", h.name, h.port);
				if (h.connect) {
					printf(" | TUNNEL");
					return;
				}
				pos += h.head_len;
				if (h.chunked) {
					st = CHUNKED;
					memset(&ch, 0, sizeof ch);
				} else if (h.content_length) {
					st = LENGTH;
					left = h.content_length;
				}
			}
		} else if (st == LENGTH && pos < have) {
			size_t k = have - pos < left ? have - pos : (size_t)left;
			pos += k;
			left -= k;
			if (!left)
				st = HEAD;
		} else if (st == CHUNKED && pos < have) {
			size_t used = 0;
			uint8_t *c = copy(p + pos, have - pos);
			int rc = eg_chunked_feed(&ch, c, have - pos, &used);
			free(c);
			if (rc == EG_BAD) {
				printf("%sBAD chunked body", reqs ? " | " : "");
				return;
			}
			pos += used;
			if (rc == EG_OK)
				st = HEAD;
		}
		progress = pos != before;
		if (!progress) {
			if (have == n)
				break;
			have = seg && n - have > seg ? have + seg : n;
		}
	}
	printf("%sEND %s", reqs ? " | " : "", st == HEAD && pos == n ? "idle" : "partial");
}

int main(void)
{
	char line[128];
	while (fgets(line, sizeof line, stdin)) {
		char cmd[32];
		size_t arg, n;
		if (sscanf(line, "%31s %zu %zu", cmd, &arg, &n) != 3)
			return 2;
		uint8_t *p = malloc(n ? n : 1);
		if (!p || fread(p, 1, n, stdin) != n)
			return 2;
		if (!strcmp(cmd, "tls"))
			tls(p, n);
		else if (!strcmp(cmd, "http"))
			http(p, n);
		else if (!strcmp(cmd, "tlsprefix"))
			prefixes(p, n, 1);
		else if (!strcmp(cmd, "httpprefix"))
			prefixes(p, n, 0);
		else if (!strcmp(cmd, "looks"))
			printf("%d %d", eg_looks_tls(p, n), eg_looks_http(p, n));
		else if (!strcmp(cmd, "stream"))
			stream(p, n, arg);
		else
			return 2;
		putchar('\n');
		free(p);
	}
	return 0;
}
