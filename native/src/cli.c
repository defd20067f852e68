/* sbx-cli: what the `sandbox` command runs (bin/sandbox links to it). It execs Node (the Node
 * that built the package, whose code cache dist/ holds, else `node` on PATH) with
 * PACKAGE/bin/sandbox.js and the same arguments, as the invoking user, changing one thing: it
 * leaves NODE_EXTRA_CA_CERTS out of Node's environment, but for `pull` and `doctor`, which reach a
 * registry at once. Node 20 reads and parses the file that variable names at every start, before
 * any JavaScript runs (~40 ms with Debian's CA bundle, twice `node -e 0`'s own start without it),
 * whether or not the process ever makes a TLS connection; most runs make none. A run that must
 * reach a registry over TLS after all (`up` of an image the store has not got) restarts itself
 * with the variable before it shows or sets up anything (src/engine/extra-ca.ts), so that a
 * registry behind a private CA is reached as before. The sandbox's own command gets the file's
 * env, never this one's. A missing Node is exit 127, as a shell says of a missing program. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node-exec.h"

/* The commands that reach a registry whenever they run: started with the variable. */
static const char *const TLS_AT_ONCE[] = { "pull", "doctor", NULL };

static int reaches_registry(const char *command)
{
	for (int i = 0; command && TLS_AT_ONCE[i]; i++)
		if (!strcmp(command, TLS_AT_ONCE[i])) return 1;
	return 0;
}

int main(int argc, char **argv)
{
	/* Kept aside under another name: bin/sandbox.js puts it back in process.env before anything
	 * reads it, so that the commands and programs the CLI starts (exec -e KEY, a detached run's
	 * down) see the environment as it was. */
	const char *ca = getenv("NODE_EXTRA_CA_CERTS");
	if (ca && !reaches_registry(argc > 1 ? argv[1] : NULL)) {
		if (setenv("SANDBOX_NODE_EXTRA_CA_CERTS", ca, 1) < 0) { perror("sandbox: setenv"); return 125; }
		unsetenv("NODE_EXTRA_CA_CERTS");
	}
	exec_node("sandbox", "bin/sandbox.js", argv);
	return 127;
}
