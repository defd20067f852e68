/* node-exec.c: how the package's native front-ends (sbx-cli, sbx-runtime) hand a command to Node. */
#ifndef SBX_NODE_EXEC_H
#define SBX_NODE_EXEC_H

/* Execs Node on PACKAGE/ENTRY (the package is three folders above this binary, native/build/NAME)
 * with argv[1..] after it: `node -- ENTRY ARGS`, since Node 20 reads an --env-file even among a
 * script's own arguments, but nothing after `--`. The Node that built the package (SBX_NODE, whose
 * code cache dist/ holds), else `node` on PATH. Returns only on failure, having said so on stderr
 * as WHO. */
void exec_node(const char *who, const char *entry, char **argv);

#endif
