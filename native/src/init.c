/* sandbox-init: PID 1 of a sandbox with `init: true`, as docker run --init's tini. A static
 * program, built apart from libsbx: the child copies it into a sealed memfd before pivot_root and
 * execs it from there (exec.c), with the command's credentials, capabilities and seccomp filter
 * already in force, in the sandbox's namespaces. It runs as `sandbox-init -- CMD ARGS...`:
 *
 *   - forks the command, which leads its own session (and takes the terminal, if it has one);
 *   - passes every signal it gets on to the command (SIGCHLD aside);
 *   - reaps every process that ends in the sandbox (orphans are re-parented to PID 1);
 *   - exits with the command's status: its code, or 128 + the signal that ended it.
 *
 * It never restarts the command: a restart is a new sandbox process tree, made from outside the
 * pid namespace (sbx_respawn). Nothing here allocates after the fork but execvp's PATH search. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char *a, const char *b, const char *c)
{
	const char *parts[] = { "sandbox-init: ", a, b, c, "\n" };
	for (unsigned i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		ssize_t r = write(2, parts[i], strlen(parts[i]));
		(void)r;
	}
}

int main(int argc, char **argv)
{
	sigset_t all, old;
	int first = 1;
	if (argc > 1 && strcmp(argv[1], "--") == 0) first = 2;
	if (first >= argc) { say("usage: sandbox-init -- COMMAND [ARG...]", "", ""); return 125; }
	/* Exec'd from a memfd, the kernel names it after the fd; ps and `sandbox top` show this. */
	prctl(PR_SET_NAME, "sandbox-init", 0, 0, 0);
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	/* libsbx execs this with every signal blocked already, so that none sent before the
	 * sigwaitinfo below is lost; the command starts with none blocked, as under docker run. */
	sigemptyset(&old);
	pid_t pid = fork();
	if (pid < 0) { say("fork: ", strerror(errno), ""); return 125; }
	if (pid == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		setsid();
		if (isatty(0)) ioctl(0, TIOCSCTTY, 0);
		execvp(argv[first], argv + first);
		int e = errno;
		say(argv[first], ": ", strerror(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&all, &si);
		if (sig < 0) continue;
		if (sig != SIGCHLD) { kill(pid, sig); continue; }
		int status;
		pid_t r;
		while ((r = waitpid(-1, &status, WNOHANG)) > 0) {
			if (r != pid) continue;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
	}
}
