/* The command, in the cloned child, at the end of its program, with the credentials, limits,
 * capabilities and filter the earlier ops set: exec (with a PATH search that does not allocate),
 * the init reaper that stays PID 1 and restarts the command as its policy says, and the relay
 * that `sandbox exec` leaves in the CLI's pid namespace (SBX_OP_FORK). */
#include "internal.h"

#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 4096

/* The child's copy of these is private: the clone does not share memory with Node. */
static char *argv_buf[MAX_ARGS + 1];
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

/* Decimal of n into buf (at least 12 bytes), without stdio; returns the length. */
static size_t utoa(char *buf, uint64_t n)
{
	char tmp[24];
	size_t len = 0, i;
	do { tmp[len++] = (char)('0' + n % 10); n /= 10; } while (n);
	for (i = 0; i < len; i++) buf[i] = tmp[len - 1 - i];
	return len;
}

/* One line on the sandbox's stderr (the log of a detached one) when the reaper restarts the command. */
static void say_restart(int code, uint32_t n, int64_t max, uint64_t delay_ms)
{
	char line[160];
	size_t l = 0;
#define PUT(s) do { const char *p_ = (s); while (*p_ && l < sizeof line - 1) line[l++] = *p_++; } while (0)
#define NUM(v) do { char b_[24]; size_t k_ = utoa(b_, (v)); b_[k_] = 0; PUT(b_); } while (0)
	PUT("sandbox: the command exited with code "); NUM((uint64_t)code);
	PUT("; restart "); NUM(n);
	if (max > 0) { PUT(" of "); NUM((uint64_t)max); }
	PUT(" in "); NUM(delay_ms); PUT(" ms\n");
#undef PUT
#undef NUM
	ssize_t r = write(2, line, l);
	(void)r;
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

/* init: true, or a restart policy. PID 1 stays a tiny reaper: it forwards every signal to the
 * command, reaps orphans, and when the command ends either exits with its status or, as the
 * policy says (op->mode 1: on a non-zero code, 2: always; op->b: at most that many times, 0: no
 * limit), runs it again in the same namespaces after a delay that doubles from 100 ms to 10 s
 * (back to 100 ms after a run of 10 s or more). A stop signal (any forwarded one but SIGWINCH)
 * ends the policy: the command is not run again. */
static void run_with_reaper(char **argv, char **envp, struct child_ctx *c, const struct sbx_op *op)
{
	sigset_t all, old;
	uint32_t restarts = 0;
	uint64_t delay_ms = 100;
	int stopped = 0;
	for (;;) {
		uint64_t t0 = now_ns();
		pid_t pid = raw_fork(&all, &old);
		if (pid < 0) return;
		if (pid == 0) {
			setsid();
			if (isatty(0)) ioctl(0, TIOCSCTTY, 0);
			exec_command(argv, envp);
			if (c->events_fd >= 0) report(c, op, SBX_EV_FAILED, errno);
			_exit(errno == ENOENT ? 127 : 126);
		}
		/* The reaper itself must not keep the events pipe open, or the parent never sees EOF. Its
		 * name says what it is in ps and `sandbox top` (it runs the CLI's or supervisor's image). */
		if (c->events_fd >= 0) { close(c->events_fd); c->events_fd = -1; }
		prctl(PR_SET_NAME, "sbx-init", 0, 0, 0);
		int code = relay_wait(pid, &all, &stopped);
		if (stopped || op->mode == 0 || (op->mode == 1 && code == 0) || (op->b > 0 && restarts >= (uint64_t)op->b)) _exit(code);
		if (now_ns() - t0 >= 10000000000ull) delay_ms = 100;
		restarts++;
		say_restart(code, restarts, op->b, delay_ms);
		/* The delay, still reaping orphans and still listening for a stop. */
		uint64_t until = now_ns() + delay_ms * 1000000ull;
		for (uint64_t t = now_ns(); t < until && !stopped; t = now_ns()) {
			struct timespec ts = { .tv_sec = (time_t)((until - t) / 1000000000ull), .tv_nsec = (long)((until - t) % 1000000000ull) };
			siginfo_t si;
			int sig = sigtimedwait(&all, &si, &ts);
			if (sig == SIGCHLD) { int st; while (waitpid(-1, &st, WNOHANG) > 0) {} }
			else if (sig > 0 && sig != SIGWINCH) stopped = 1;
		}
		if (stopped) _exit(code);
		delay_ms = delay_ms * 2 > 10000 ? 10000 : delay_ms * 2;
	}
}

/* `sandbox exec`, after setns(CLONE_NEWPID): only children enter the joined pid namespace. The
 * parent (still in the CLI's pid namespace, and the CLI's child) relays; the child goes on with
 * the program, dies with the relay, and leads its own session so that it can own a terminal. */
int op_fork(struct child_ctx *c, int sync_fd)
{
	sigset_t all, old;
	pid_t relay = getpid();
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
	split_list(ctx_str(c, op->s1), argv_buf, MAX_ARGS);
	split_list(ctx_str(c, op->s2), envp_buf, MAX_ARGS);
	if (cwd && chdir(cwd) < 0) { report(c, op, SBX_EV_FAILED, errno); _exit(126); }
	if (op->a) { run_with_reaper(argv_buf, envp_buf, c, op); if (c->events_fd >= 0) report(c, op, SBX_EV_FAILED, errno); _exit(125); }
	exec_command(argv_buf, envp_buf);
	int e = errno;
	report(c, op, SBX_EV_FAILED, e);
	_exit(e == ENOENT ? 127 : 126);
}
