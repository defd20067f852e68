/* Harness for sbx-egress's policy.c (built by test/unit/egress-policy.test.ts with the sanitizers):
 * parses the policy text in the file argv[1], then answers one line per query on stdin, so that
 * the test can hold policy.c to src/model/egress.ts on random rule sets.
 *   n NAME                          -> "n <allowed 0|1> <rule index or 0>"        (nameAllowed)
 *   v ADDR PORT PROTO NAME|- ANSWERED|-   (ANSWERED: comma-separated names answered for ADDR)
 *                                   -> "v <allowed 0|1> <rule index or 0> <class 0|1>"  (verdict)
 * A policy it refuses prints "error <message>". */
#include "../src/egress/egress.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	static char text[1 << 20], err[512], line[4096];
	struct eg_policy p;
	FILE *f = argc > 1 ? fopen(argv[1], "r") : NULL;
	if (!f) return 2;
	size_t len = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	if (policy_parse(text, len, &p, err, sizeof err) < 0) { printf("error %s\n", err); return 0; }
	while (fgets(line, sizeof line, stdin)) {
		char name[300], addr[64], proto[8], answered[3000];
		int port;
		const struct eg_rule *r;
		if (sscanf(line, "n %299s", name) == 1) {
			int ok = policy_name_allowed(&p, name, &r);
			printf("n %d %d\n", ok, r ? r->index : 0);
		} else if (sscanf(line, "v %63s %d %7s %299s %2999s", addr, &port, proto, name, answered) == 5) {
			struct in_addr a;
			const char *names[64];
			int n = 0, cls, has = 0;
			inet_pton(AF_INET, addr, &a);
			if (strcmp(answered, "-"))
				for (char *save = NULL, *t = strtok_r(answered, ",", &save); t && n < 64; t = strtok_r(NULL, ",", &save)) names[n++] = t;
			const char *qname = strcmp(name, "-") ? name : NULL;
			for (int i = 0; qname && i < n; i++) has |= !strcmp(names[i], qname);
			unsigned pr = !strcmp(proto, "tcp") ? EG_TCP : !strcmp(proto, "udp") ? EG_UDP : EG_ICMP;
			int ok = policy_verdict(&p, a.s_addr, (uint16_t)port, pr, qname, has, names, n, &r, &cls);
			printf("v %d %d %d\n", ok, r ? r->index : 0, cls);
		} else printf("? %s", line);
	}
	return 0;
}
