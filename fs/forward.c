/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Stream forwards for a live move: see forward.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/error.h"
#include "../common/strvec.h"
#include "../nbd/hostcmd.h"
#include "forward.h"
#include "log.h"

#define SIDES 2 /* 0: the source (-R), 1: the target (-L) */

struct forwards {
	char *const *shell[SIDES];
	char *const *reach; /* the target's: the source forwards directly */
	char *dir;
	struct strvec paths;
	pid_t pid[SIDES];
	int err[SIDES]; /* the read end of ssh's stderr */
	int hold;	/* direct: the source's stdin; closed, it stops */
	int timeout_ms;
};

/* Run on the source for the direct path: the forward ($@) until it ends
 * or stdin does (this machine let go). */
static const char direct_script[] =
    "exec 3<&0; \"$@\" </dev/null & p=$!; "
    "{ cat <&3 >/dev/null 2>&1; kill $p 2>/dev/null; } >/dev/null 2>&1 & "
    "wait $p";

static bool remote(char *const *shell)
{
	return shell && shell[0];
}

static bool is_ssh(char *const *shell)
{
	const char *base = strrchr(shell[0], '/');

	return strcmp(base ? base + 1 : shell[0], "ssh") == 0;
}

/* ssh's stderr so far, its last line into buf. */
static void last_words(int fd, char *buf, size_t len)
{
	char all[4096];
	ssize_t n = fd >= 0 ? read(fd, all, sizeof all - 1) : -1;
	char *end, *line;

	buf[0] = '\0';
	if (n <= 0)
		return;
	all[n] = '\0';
	while (n > 0 && (all[n - 1] == '\n' || all[n - 1] == '\r'))
		all[--n] = '\0';
	line = strrchr(all, '\n');
	line = line ? line + 1 : all;
	end = line + strcspn(line, "\r");
	*end = '\0';
	snprintf(buf, len, "%s", line);
}

/* Start "ssh OPTIONS FORWARDS... REST-OF-SHELL -N" for one side; the
 * direct path's source side runs "REACH ... -L" on the source. */
static int start_side(struct forwards *f, int side)
{
	bool direct = f->reach && side == 0;
	char *const *shell = direct ? f->reach : f->shell[side];
	struct strvec argv = STRVEC_INIT;
	int pipefd[2], in[2] = { -1, -1 };
	pid_t pid;

	if (strvec_push(&argv, shell[0]) < 0 || strvec_push(&argv, "-N") < 0 ||
	    strvec_push(&argv, "-o") < 0 ||
	    strvec_push(&argv, "ExitOnForwardFailure=yes") < 0 ||
	    strvec_push(&argv, "-o") < 0 ||
	    strvec_push(&argv, "StreamLocalBindUnlink=yes") < 0)
		goto nomem;
	for (size_t i = 0; i < f->paths.n; i++)
		if (strvec_push(&argv, side || direct ? "-L" : "-R") < 0 ||
		    strvec_pushf(&argv, "%s:%s", f->paths.v[i], f->paths.v[i]) <
			0)
			goto nomem;
	for (size_t i = 1; shell[i]; i++)
		if (strvec_push(&argv, shell[i]) < 0)
			goto nomem;
	if (direct) {
		/* -L, run on the source: it listens there. */
		if (remote(f->shell[0])) {
			struct strvec wrapped = STRVEC_INIT, cmd = STRVEC_INIT;

			if (strvec_push(&cmd, "sh") < 0 ||
			    strvec_push(&cmd, "-c") < 0 ||
			    strvec_push(&cmd, direct_script) < 0 ||
			    strvec_push(&cmd, "sh") < 0 ||
			    strvec_push_all(&cmd, argv.v) < 0 ||
			    hostcmd_argv(f->shell[0], cmd.v, &wrapped) < 0) {
				strvec_release(&cmd);
				strvec_release(&wrapped);
				goto nomem;
			}
			strvec_release(&cmd);
			strvec_release(&argv);
			argv = wrapped;
			if (pipe2(in, O_CLOEXEC) < 0) {
				error_set(errno, "pipe: %s", strerror(errno));
				strvec_release(&argv);
				return -1;
			}
		}
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		error_set(errno, "pipe: %s", strerror(errno));
		strvec_release(&argv);
		if (in[0] >= 0) {
			close(in[0]);
			close(in[1]);
		}
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);
		sigset_t none;

		/* The forward dies with the thread that runs the move. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (fd >= 0) {
			dup2(in[0] >= 0 ? in[0] : fd, 0);
			dup2(fd, 1);
		}
		dup2(pipefd[1], 2);
		setpgid(0, 0);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execvp(argv.v[0], argv.v);
		_exit(127);
	}
	close(pipefd[1]);
	strvec_release(&argv);
	if (in[0] >= 0) {
		close(in[0]);
		f->hold = in[1];
	}
	if (pid < 0) {
		close(pipefd[0]);
		error_set(errno, "fork: %s", strerror(errno));
		return -1;
	}
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	f->pid[side] = pid;
	f->err[side] = pipefd[0];
	return 0;
nomem:
	strvec_release(&argv);
	error_set(ENOMEM, "out of memory");
	return -1;
}

/* Has side's ssh died?  Then error_set() with what it said. */
static bool side_died(struct forwards *f, int side)
{
	char said[512];
	int status;

	if (f->pid[side] <= 0 || waitpid(f->pid[side], &status, WNOHANG) <= 0)
		return false;
	f->pid[side] = 0;
	last_words(f->err[side], said, sizeof said);
	error_set(EHOSTUNREACH, "the %s forward (%s) ended: %s",
		  side	     ? "target's"
		  : f->reach ? "source's direct"
			     : "source's",
		  f->reach && !side ? f->reach[0] : f->shell[side][0],
		  *said ? said : "no message");
	return true;
}

/* Does every path exist as a socket on the side (here, or on the host)? */
static int listening(struct forwards *f, int side)
{
	for (size_t i = 0; i < f->paths.n; i++) {
		struct stat st;

		if (side || !remote(f->shell[0])) {
			if (stat(f->paths.v[i], &st) < 0 ||
			    !S_ISSOCK(st.st_mode))
				return 0;
		} else {
			char *cmd[] = { "test", "-S", f->paths.v[i], NULL };
			int r = hostcmd_run(f->shell[0], cmd, f->timeout_ms);

			if (r != 0)
				return r < 0 ? -1 : 0;
		}
	}
	return 1;
}

static int make_dir(char *const *shell, const char *dir, const char *mode,
		    int timeout_ms)
{
	char *cmd[] = { "mkdir", "-m", (char *)mode, "-p", (char *)dir, NULL };
	int r = hostcmd_run(shell, cmd, timeout_ms);

	if (r > 0)
		error_set(EIO, "mkdir %s failed (exit %d)", dir, r);
	return r == 0 ? 0 : -1;
}

static void remove_dir(char *const *shell, const char *dir, int timeout_ms)
{
	char *cmd[] = { "rm", "-rf", "--", (char *)dir, NULL };

	if (hostcmd_run(shell, cmd, timeout_ms) != 0)
		log_warning("%s%s%s: not removed: %s",
			    remote(shell) ? shell[0] : "",
			    remote(shell) ? ": " : "", dir, error_msg());
}

struct forwards *forwards_start(char *const *src_shell, char *const *dst_shell,
				char *const *dst_reach, const char *dir,
				const char *const *names, size_t n,
				int timeout_ms)
{
	struct forwards *f = calloc(1, sizeof *f);
	int64_t deadline = now_ms() + timeout_ms;

	if (!f || !(f->dir = strdup(dir))) {
		free(f);
		error_set(ENOMEM, "out of memory");
		return NULL;
	}
	f->shell[0] = src_shell;
	f->shell[1] = dst_shell;
	f->reach = dst_reach && dst_reach[0] ? dst_reach : NULL;
	f->err[0] = f->err[1] = -1;
	f->hold = -1;
	if (f->reach && !is_ssh(f->reach)) {
		error_set(EPROTONOSUPPORT,
			  "a live move's direct path forwards its streams "
			  "with ssh; the target's reach is \"%s\"",
			  f->reach[0]);
		goto err;
	}
	f->timeout_ms = timeout_ms;
	for (size_t i = 0; i < n; i++)
		if (strvec_pushf(&f->paths, "%s/%s", dir, names[i]) < 0) {
			error_set(ENOMEM, "out of memory");
			goto err;
		}
	for (int s = 0; s < SIDES; s++)
		if (remote(f->shell[s]) && !is_ssh(f->shell[s])) {
			error_set(EPROTONOSUPPORT,
				  "a live move forwards its streams over ssh; "
				  "the %s host's shell is \"%s\"",
				  s ? "target" : "source", f->shell[s][0]);
			goto err;
		}
	/* Here and on the source, only root (ssh, sshd) makes sockets; on
	 * the target, its QEMU (maybe not root) listens in dir, whose name
	 * nobody can guess or list. */
	{
		char *parent = strdup(dir),
		     *slash = parent ? strrchr(parent, '/') : NULL;

		if (slash && slash != parent) {
			*slash = '\0';
			mkdir(parent, 0700); /* may exist */
		}
		free(parent);
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		error_set(errno, "mkdir %s: %s", dir, strerror(errno));
		goto err;
	}
	if ((remote(src_shell) &&
	     make_dir(src_shell, dir, "0711", timeout_ms) < 0) ||
	    (remote(dst_shell) &&
	     make_dir(dst_shell, dir, "0733", timeout_ms) < 0))
		goto err;
	if (!remote(dst_shell))
		chmod(dir, 0733);
	for (int s = 0; s < SIDES; s++)
		if ((f->reach ? s == 0 : remote(f->shell[s])) &&
		    start_side(f, s) < 0)
			goto err;
	/* The target's forward listens here, the source's on the source
	 * (direct: only the source's, which may be this machine). */
	for (int s = SIDES - 1; s >= 0; s--) {
		if (f->reach ? s != 0 : !remote(f->shell[s]))
			continue;
		for (;;) {
			int r;

			if (side_died(f, s) || side_died(f, !s))
				goto err;
			r = listening(f, s);
			if (r < 0)
				goto err;
			if (r)
				break;
			if (now_ms() > deadline) {
				error_set(ETIMEDOUT,
					  "the %s forward does not listen "
					  "after %d ms",
					  s ? "target's" : "source's",
					  timeout_ms);
				goto err;
			}
			nanosleep(&(struct timespec){ 0, 50 * 1000 * 1000 },
				  NULL);
		}
	}
	return f;
err : {
	int e = error_errno();
	char msg[1024];

	snprintf(msg, sizeof msg, "%s", error_msg());
	forwards_stop(f);
	error_set(e, "%s", msg);
}
	return NULL;
}

void forwards_stop(struct forwards *f)
{
	if (!f)
		return;
	if (f->hold >= 0) /* the direct forward on the source stops */
		close(f->hold);
	for (int s = 0; s < SIDES; s++) {
		if (f->pid[s] > 0) {
			kill(-f->pid[s], SIGTERM);
			waitpid(f->pid[s], NULL, 0);
		}
		if (f->err[s] >= 0)
			close(f->err[s]);
	}
	for (int s = 0; s < SIDES; s++)
		if (remote(f->shell[s]))
			remove_dir(f->shell[s], f->dir, f->timeout_ms);
	for (size_t i = 0; i < f->paths.n; i++)
		unlink(f->paths.v[i]);
	rmdir(f->dir);
	strvec_release(&f->paths);
	free(f->dir);
	free(f);
}
