/* What sbx-egress writes to the sandbox's state folder (contract section 6): denials.jsonl, one
 * JSON object per refusal, identical ones within 1 s coalesced into `count`, capped at 1 MiB and
 * rotated once to denials.1.jsonl; and egress.status, the counters, rewritten by rename at most
 * once a second and at exit. Also sha256, for the policy digest that the status file carries. */
#include "egress.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DENIALS_CAP (1 << 20)
#define PENDING 32

/* ---- sha256 (FIPS 180-4), for the digest of the policy text ---- */
static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};
#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const uint8_t *p)
{
	uint32_t w[64], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
	for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	for (int i = 0; i < 64; i++) {
		uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
		uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		k = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
	}
	h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

void sha256_hex(const void *data, size_t len, char out[65])
{
	uint32_t h[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
	const uint8_t *p = data;
	uint8_t tail[128];
	size_t full = len & ~(size_t)63, rest = len - full;
	for (size_t i = 0; i < full; i += 64) sha256_block(h, p + i);
	memset(tail, 0, sizeof tail);
	memcpy(tail, p + full, rest);
	tail[rest] = 0x80;
	size_t tl = rest + 1 + 8 <= 64 ? 64 : 128;
	uint64_t bits = (uint64_t)len * 8;
	for (int i = 0; i < 8; i++) tail[tl - 1 - i] = (uint8_t)(bits >> (8 * i));
	for (size_t i = 0; i < tl; i += 64) sha256_block(h, tail + i);
	for (int i = 0; i < 8; i++) snprintf(out + 8 * i, 9, "%08x", h[i]);
}

/* ---- denials ---- */
struct pending {
	int used;
	double first;                /* monotonic time of the first of these */
	char t[32];                  /* its wall-clock time, as written */
	char key[2048];              /* the record without t and count: identical records share it */
	uint64_t count;
};

static struct pending pend[PENDING];
static int dir_fd = -1, denials_fd = -1;
static off_t denials_size;
static double last_status;
static struct eg_counters written;   /* the counters as the status file has them */
static int status_written;

int log_open(const char *dir)
{
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0) return -1;
	denials_fd = openat(dir_fd, "denials.jsonl", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (denials_fd < 0) return -1;
	struct stat st;
	denials_size = fstat(denials_fd, &st) == 0 ? st.st_size : 0;
	return 0;
}

/* A JSON string (with quotes) or null. Names and sources are plain already; escape anyway. */
static size_t json_str(char *out, size_t cap, const char *s)
{
	size_t n = 0;
	if (!s) return (size_t)snprintf(out, cap, "null");
	if (n < cap) out[n++] = '"';
	for (; *s && n + 8 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') { out[n++] = '\\'; out[n++] = (char)c; }
		else if (c < 0x20 || c >= 0x7f) n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
		else out[n++] = (char)c;
	}
	if (n + 1 < cap) out[n++] = '"';
	out[n < cap ? n : cap - 1] = 0;
	return n;
}

static void iso_now(char out[32])
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000) >= 32) out[31] = 0;
}

static void write_record(struct pending *p)
{
	char line[2200];
	int n = snprintf(line, sizeof line, "{\"t\":\"%s\",%s,\"count\":%llu}\n", p->t, p->key, (unsigned long long)p->count);
	if (n <= 0 || (size_t)n >= sizeof line || denials_fd < 0) return;
	if (denials_size + n > DENIALS_CAP) {
		/* Rotate once: the older half goes to denials.1.jsonl (replacing the one before). */
		renameat(dir_fd, "denials.jsonl", dir_fd, "denials.1.jsonl");
		close(denials_fd);
		denials_fd = openat(dir_fd, "denials.jsonl", O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		denials_size = 0;
		if (denials_fd < 0) return;
	}
	if (write(denials_fd, line, (size_t)n) == n) denials_size += n;
}

void log_denial(const struct eg_denial *d)
{
	char key[2048], addr[INET_ADDRSTRLEN], name[600], src[600], why[300], port[16], rule[16];
	if (d->addr) inet_ntop(AF_INET, &d->addr, addr, sizeof addr);
	json_str(name, sizeof name, d->name);
	json_str(src, sizeof src, d->src);
	json_str(why, sizeof why, d->why);
	if (d->port >= 0) snprintf(port, sizeof port, "%d", d->port); else strcpy(port, "null");
	if (d->rule > 0) snprintf(rule, sizeof rule, "%d", d->rule); else strcpy(rule, "null");
	/* The process, when the socket is still there to ask about: ",\"pid\":N,\"hostPid\":N,\"comm\":\"curl\"". */
	struct eg_proc pr;
	char proc[128] = "", comm[64];
	if (d->sock && proc_owner(d->sock, &pr)) {
		json_str(comm, sizeof comm, pr.comm);
		char pid[16] = "null";
		if (pr.pid > 0) snprintf(pid, sizeof pid, "%d", (int)pr.pid);
		snprintf(proc, sizeof proc, ",\"pid\":%s,\"hostPid\":%d,\"comm\":%s", pid, (int)pr.host_pid, comm);
	}
	int kl = snprintf(key, sizeof key, "\"kind\":\"%s\",\"proto\":\"%s\",\"addr\":%s%s%s,\"port\":%s,\"name\":%s,\"seen\":\"%s\",\"rule\":%s,\"src\":%s%s%s%s%s",
		 d->kind, d->proto, d->addr ? "\"" : "", d->addr ? addr : "null", d->addr ? "\"" : "", port, name, d->seen, rule, src,
		 d->cls ? ",\"class\":true" : "", d->why ? ",\"why\":" : "", d->why ? why : "", proc);
	if (kl < 0 || (size_t)kl >= sizeof key) return;
	double now = now_mono();
	struct pending *free_slot = NULL, *oldest = NULL;
	for (int i = 0; i < PENDING; i++) {
		struct pending *p = &pend[i];
		if (!p->used) { if (!free_slot) free_slot = p; continue; }
		if (!strcmp(p->key, key) && now - p->first < 1.0) { p->count++; return; }
		if (!oldest || p->first < oldest->first) oldest = p;
	}
	if (!free_slot) { write_record(oldest); oldest->used = 0; free_slot = oldest; }
	free_slot->used = 1;
	free_slot->first = now;
	free_slot->count = 1;
	iso_now(free_slot->t);
	strcpy(free_slot->key, key);
}

static void flush_denials(double now, int all)
{
	/* Oldest first, so that the file stays in time order. */
	for (;;) {
		struct pending *oldest = NULL;
		for (int i = 0; i < PENDING; i++)
			if (pend[i].used && (all || now - pend[i].first >= 1.0) && (!oldest || pend[i].first < oldest->first)) oldest = &pend[i];
		if (!oldest) return;
		write_record(oldest);
		oldest->used = 0;
	}
}

static void write_status(void)
{
	char buf[1024];
	const struct eg_counters *n = &G.n;
	int len = snprintf(buf, sizeof buf,
		"{\"pid\":%d,\"nonce\":\"%s\",\"digest\":\"%s\",\"lookups\":{\"answered\":%llu,\"refused\":%llu,\"withheld\":%llu,\"forwarded\":%llu},"
		"\"connections\":{\"relayed\":%llu,\"refused\":%llu,\"open\":%llu},\"kernel\":{\"refused\":%llu}}\n",
		(int)getpid(), G.pol.nonce, G.digest, (unsigned long long)n->answered, (unsigned long long)n->refused,
		(unsigned long long)n->withheld, (unsigned long long)n->forwarded, (unsigned long long)n->relayed,
		(unsigned long long)n->conn_refused, (unsigned long long)n->open, (unsigned long long)n->kernel_refused);
	if (dir_fd < 0 || len <= 0 || (size_t)len >= sizeof buf) return;
	int fd = openat(dir_fd, "egress.status.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) return;
	int ok = write(fd, buf, (size_t)len) == len;
	close(fd);
	if (ok) renameat(dir_fd, "egress.status.tmp", dir_fd, "egress.status");
	G.status_dirty = 0;
	written = G.n;
	status_written = 1;
}

void log_tick(double now)
{
	flush_denials(now, 0);
	if ((G.status_dirty || !status_written || memcmp(&written, &G.n, sizeof written)) && now - last_status >= 1.0) { write_status(); last_status = now; }
}

void log_final(void)
{
	flush_denials(0, 1);
	write_status();
}
