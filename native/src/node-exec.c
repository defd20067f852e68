/* The exec of Node for the package's native front-ends (sbx-cli, sbx-runtime), in their own
 * process, as the invoking user, with the environment they leave it. */
#include "node-exec.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SBX_NODE
#define SBX_NODE "node"
#endif

void exec_node(const char *who, const char *entry, char **argv)
{
	char self[PATH_MAX], path[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = 0;
		for (int up = 0; up < 3; up++) { char *s = strrchr(self, '/'); if (s) *s = 0; }
	} else {
		strcpy(self, ".");
	}
	snprintf(path, sizeof path, "%s/%s", self, entry);
	int argc = 0;
	while (argv[argc]) argc++;
	char **args = calloc(argc + 3, sizeof *args);
	if (!args) { fprintf(stderr, "%s: out of memory\n", who); return; }
	args[0] = (char *)"node";
	args[1] = (char *)"--";
	args[2] = path;
	for (int i = 1; i < argc; i++) args[i + 2] = argv[i];
	if (SBX_NODE[0] == '/' && access(SBX_NODE, X_OK) == 0) execv(SBX_NODE, args);
	execvp("node", args);
	fprintf(stderr, "%s: cannot run Node (%s, or node on PATH) for %s: %s\n", who, SBX_NODE, path, strerror(errno));
	free(args);
}
