/* The command, in the cloned child, at the end of its program, with the credentials, limits,
 * capabilities and filter the earlier ops set: exec of the command itself as PID 1 (with a PATH
 * search that does not allocate), or of sandbox-init (init: true) from its sealed memfd, and the
 * relay that `sandbox exec` leaves in the CLI's pid namespace (SBX_OP_FORK). Restarts are not
 * here: a pid namespace ends with its PID 1, so the CLI or the supervisor runs the command again
 * from outside (sbx_respawn). */
#include "internal.h"

#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_ARGS 4096

/* The child's copy of these is private: the clone does not share memory with Node. */
static char *argv_buf[MAX_ARGS + 3];
static char *envp_buf[MAX_ARGS + 1];
static char path_buf[4096];

/* Finds PATH in the command's own environment, as execvp would, without allocating. The plan's
 * environment always has one (normalize's default, the image's, or the file's), so there is no
 * default here: without PATH a bare name is not searched for, and is not found. */
static const char *env_path(char **envp)
{
	for (; *envp; envp++) if (envp[0][0] == 'P' && envp[0][1] == 'A' && envp[0][2] == 'T' && envp[0][3] == 'H' && envp[0][4] == '=') return *envp + 5;
	return "";
}

/* Returns only on failure, with errno set: ENOENT (127) or another reason (126). */
static void exec_command(char **argv, char **envp)
{
	const char *file = argv[0], *p;
	int saw_eacces = 0;
	if (!file || !*file) { errno = ENOENT; return; }
	for (p = file; *p; p++) if (*p == '/') { execve(file, argv, envp); return; }
	p = env_path(envp);
	while (*p) {
		const char *end = p;
		size_t dl, fl = sbx_strlen(file);
		while (*end && *end != ':') end++;
		dl = (size_t)(end - p);
		if (dl + fl + 2 < sizeof path_buf) {
			memcpy(path_buf, dl ? p : ".", dl ? dl : 1);
			if (!dl) dl = 1;
			path_buf[dl] = '/';
			memcpy(path_buf + dl + 1, file, fl + 1);
			execve(path_buf, argv, envp);
			if (errno == EACCES) saw_eacces = 1;
			else if (errno != ENOENT && errno != ENOTDIR) return;
		}
		p = *end ? end + 1 : end;
	}
	errno = saw_eacces ? EACCES : ENOENT;
}

/* Waits for pid with every signal blocked and taken synchronously: each one but SIGCHLD is passed
 * on to pid (and *stopped is set unless it is SIGWINCH), other children are reaped as they end.
 * Returns pid's exit code, or 128 + the signal that ended it. */
static int relay_wait(pid_t pid, const sigset_t *all, int *stopped)
{
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(all, &si);
		if (sig < 0) continue;
		if (sig == SIGCHLD) {
			int status;
			pid_t r;
			while ((r = waitpid(-1, &status, WNOHANG)) > 0) {
				if (r != pid) continue;
				return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			}
		} else {
			if (sig != SIGWINCH) *stopped = 1;
			kill(pid, sig);
		}
	}
}

static void relay_until_exit(pid_t pid, const sigset_t *all) __attribute__((noreturn));
static void relay_until_exit(pid_t pid, const sigset_t *all)
{
	int stopped = 0;
	_exit(relay_wait(pid, all, &stopped));
}

/* A raw clone, not glibc's fork(): fork takes libc's internal locks, and another Node thread may
 * have held one at the moment this process was cloned; it would never be released here. Signals
 * stay blocked in the parent (restored in the child), so that none is lost before the relay. */
static pid_t raw_fork(sigset_t *all, sigset_t *old)
{
	sigfillset(all);
	sigprocmask(SIG_SETMASK, all, old);
	pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, 0);
	if (pid == 0) sigprocmask(SIG_SETMASK, old, NULL);
	else if (pid < 0) { int e = errno; sigprocmask(SIG_SETMASK, old, NULL); errno = e; }
	return pid;
}

/* init: true, before any op (the host's files are still in reach): sbx-init, a static program,
 * copied into a memfd that is sealed against writes. It is then exec'd from that fd, so that the
 * sandbox's PID 1 shows no host path (/proc/1/exe reads /memfd:sandbox-init, /proc/1/cmdline
 * `sandbox-init -- CMD`), and a process inside that opens /proc/1/exe for writing can change
 * nothing of the host's (CVE-2019-5736): the copy is its own, and sealed. Returns the fd, or -1. */
int init_prepare(struct child_ctx *c, const struct sbx_op *op)
{
	const char *path = ctx_str(c, op->s4);
	int src, mfd;
	if (!path) { errno = EINVAL; return -1; }
	src = open(path, O_RDONLY | O_CLOEXEC);
	if (src < 0) return -1;
	mfd = (int)syscall(SYS_memfd_create, "sandbox-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0) { int e = errno; close(src); errno = e; return -1; }
	for (;;) {
		ssize_t n = sendfile(mfd, src, NULL, 1 << 20);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0) { int e = errno; close(src); close(mfd); errno = e; return -1; }
		if (n == 0) break;
	}
	close(src);
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) { int e = errno; close(mfd); errno = e; return -1; }
	return mfd;
}

/* `sandbox exec`, after setns(CLONE_NEWPID): only children enter the joined pid namespace. The
 * parent (still in the CLI's pid namespace, and the CLI's child) relays; the child goes on with
 * the program, dies with the relay, and leads its own session so that it can own a terminal. */
int op_fork(struct child_ctx *c, const struct sbx_op *op, int sync_fd)
{
	sigset_t all, old;
	pid_t relay = getpid();
	if (op->flags & SBX_F_FORK_PARENT) {
		/* sandbox-runtime exec: no relay. The child is the caller's (CLONE_PARENT: its exit signal
		 * is this process's, SIGCHLD), in the joined pid namespace, and arms no death signal: the
		 * caller reads EOF on events (exec) or on the sync socket (its own end) if it dies first.
		 * The pid clone returns is the host's: this process's own pid namespace is the caller's. */
		pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, 0);
		if (pid < 0) return -1;
		if (pid == 0) { c->outlive = 1; return setsid() < 0 ? -1 : 0; }
		report(c, op, SBX_EV_DONE, (int)pid);
		_exit(0);
	}
	pid_t pid = raw_fork(&all, &old);
	if (pid < 0) return -1;
	if (pid == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) return -1;
		/* The relay stands outside a joined pid namespace, where the parent reads as 0; any other
		 * pid means it died before the death signal was armed. */
		pid_t pp = getppid();
		if (pp != 0 && pp != relay) { errno = ESRCH; return -1; }
		return setsid() < 0 ? -1 : 0;
	}
	close(c->events_fd);
	close(sync_fd);
	prctl(PR_SET_NAME, "sbx-exec-relay", 0, 0, 0);
	relay_until_exit(pid, &all);
}

/* SBX_OP_EXEC: never returns. The command either runs (events_fd is O_CLOEXEC, so the parent reads
 * EOF) or fails, reported as FAILED with its errno. */
void op_exec(struct child_ctx *c, const struct sbx_op *op, int sync_fd)
{
	const char *cwd = ctx_str(c, op->s3);
	char go = 0;

	/* Wait until the parent has finished printing progress: the command's output follows it. */
	while (read(sync_fd, &go, 1) < 0 && errno == EINTR) {}
	if (go != 'E') _exit(125);
	close(sync_fd);
	/* sandbox-runtime exec: the ids op armed the death signal again (a change of credentials clears
	 * it); the command outlives the runtime, as runc's does. */
	if (c->outlive && prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) < 0) { report(c, op, SBX_EV_FAILED, errno); _exit(125); }
	if (op->flags & SBX_F_WAIT_START) {
		/* Created: from here this process outlives its parent (sandbox-runtime create exits), and
		 * the parent's EOF on events says that it waits. `start` writes the byte; `delete` of a
		 * container never started kills it here. */
		char b;
		ssize_t n;
		if (prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) < 0) { report(c, op, SBX_EV_FAILED, errno); _exit(125); }
		close(c->events_fd);
		c->events_fd = -1;
		while ((n = read(c->start_fd, &b, 1)) < 0 && errno == EINTR) {}
		if (n != 1) _exit(125);
		close(c->start_fd);
	}
	split_list(ctx_str(c, op->s1), argv_buf + 2, MAX_ARGS);
	split_list(ctx_str(c, op->s2), envp_buf, MAX_ARGS);
	if (cwd && chdir(cwd) < 0) { report(c, op, SBX_EV_FAILED, errno); _exit(126); }
	if (op->a) {
		/* sandbox-init -- CMD...: it forks the command, forwards signals and reaps (sbx-init.c). */
		argv_buf[0] = "sandbox-init";
		argv_buf[1] = "--";
		/* Every signal blocked across the exec (a mask survives execve): one sent between here and
		 * sandbox-init's own sigwaitinfo stays pending instead of being dropped, which a PID 1 at
		 * the default action would do to a signal from outside (`down` right after `up -d`). */
		sigset_t all;
		sigfillset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		syscall(SYS_execveat, c->init_fd, "", argv_buf, envp_buf, AT_EMPTY_PATH);
		int e = errno;
		report(c, op, SBX_EV_FAILED, e);
		_exit(126);
	}
	exec_command(argv_buf + 2, envp_buf);
	int e = errno;
	report(c, op, SBX_EV_FAILED, e);
	_exit(e == ENOENT ? 127 : 126);
}
