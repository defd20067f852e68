/* Helpers every file of libsbx may use, and that call nothing else of libsbx: string functions,
 * the string arena, the monotonic clock, and the event record. They run in the cloned child
 * (single-threaded, no malloc, no stdio, raw system calls only), so each stays async-signal-safe. */
#include "internal.h"

#include <time.h>
#include <unistd.h>

size_t sbx_strlen(const char *s) { size_t n = 0; while (s && s[n]) n++; return n; }
void sbx_strlcpy(char *dst, const char *src, size_t n) { size_t i = 0; for (; i + 1 < n && src[i]; i++) dst[i] = src[i]; if (n) dst[i] = 0; }
int sbx_streq(const char *a, const char *b) { while (*a && *a == *b) { a++; b++; } return *a == *b; }

const char *ctx_str(const struct child_ctx *c, uint32_t ref)
{
	if (ref == 0 || ref > c->strings_len) return NULL;
	return c->strings + ref - 1;
}

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void report(struct child_ctx *c, const struct sbx_op *op, uint32_t phase, int err)
{
	struct sbx_event ev = { .step = op->step, .phase = phase, .err = err, .op = op->kind, .ns = now_ns() };
	ssize_t r;
	do r = write(c->events_fd, &ev, sizeof ev); while (r < 0 && errno == EINTR);
}

int split_list(const char *list, char **out, int max)
{
	int n = 0;
	while (list && *list && n < max) { out[n++] = (char *)list; list += sbx_strlen(list) + 1; }
	out[n] = NULL;
	return n;
}
