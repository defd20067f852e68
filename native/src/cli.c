/* sbx-cli: what the `sandbox` command runs (bin/sandbox links to it). It execs Node (the Node
 * that built the package, whose code cache dist/ holds, else `node` on PATH) with
 * PACKAGE/bin/sandbox.js and the same arguments, as the invoking user, changing one thing: for a
 * command that opens no TLS connection it leaves NODE_EXTRA_CA_CERTS out of Node's environment.
 * Node 20 reads and parses the file that variable names at every start, before any JavaScript
 * runs (~40 ms with Debian's CA bundle, twice `node -e 0`'s own start without it), whether or
 * not the process ever makes a TLS connection. Only a pull does (up, run, pull, doctor FILE and
 * up --dry-run's check of the registry): every command that may pull, and any command not named
 * below, keeps the variable, so that a registry behind a private CA is reached as before.
 * The sandbox's own command gets the file's env, never this one's. A missing Node is exit 127,
 * as a shell says of a missing program. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node-exec.h"

/* Commands that read local state or local files only (no registry, so no TLS): `sandbox --help`'s
 * list less up, run, pull and doctor. */
static const char *const NO_TLS[] = {
	"validate", "plan", "ps", "logs", "exec", "top", "inspect", "stop", "down", "rm", "gc", "images", "rmi",
	"image", "volume", "audit", "diff", "export", "version", "completion", "import", "schema", "help",
	"--version", "-V", "--help", "-h", NULL,
};

static int opens_no_tls(const char *command)
{
	for (int i = 0; command && NO_TLS[i]; i++)
		if (!strcmp(command, NO_TLS[i])) return 1;
	return 0;
}

int main(int argc, char **argv)
{
	/* Kept aside under another name: bin/sandbox.js puts it back in process.env before anything
	 * reads it, so that the commands and programs the CLI starts (exec -e KEY, a detached run's
	 * down) see the environment as it was. */
	const char *ca = getenv("NODE_EXTRA_CA_CERTS");
	if (ca && opens_no_tls(argc > 1 ? argv[1] : NULL)) {
		if (setenv("SANDBOX_NODE_EXTRA_CA_CERTS", ca, 1) < 0) { perror("sandbox: setenv"); return 125; }
		unsetenv("NODE_EXTRA_CA_CERTS");
	}
	exec_node("sandbox", "bin/sandbox.js", argv);
	return 127;
}
