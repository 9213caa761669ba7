/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/error.h"
#include "hostcmd.h"

char *hostcmd_quote(const char *s)
{
	size_t n = 3;
	char *q, *out;

	for (const char *p = s; *p; p++)
		n += *p == '\'' ? 4 : 1;
	out = q = malloc(n);
	if (!out) {
		error_set(ENOMEM, "out of memory");
		return NULL;
	}
	*q++ = '\'';
	for (const char *p = s; *p; p++) {
		if (*p == '\'') {
			memcpy(q, "'\\''", 4);
			q += 4;
		} else {
			*q++ = *p;
		}
	}
	*q++ = '\'';
	*q = '\0';
	return out;
}

int hostcmd_argv(char *const *shell, char *const *cmd, struct strvec *out)
{
	char *line = NULL;
	size_t len = 0;

	if (!shell || !shell[0])
		return strvec_push_all(out, cmd);
	if (strvec_push_all(out, shell) < 0)
		return -1;
	for (char *const *a = cmd; *a; a++) {
		char *q = hostcmd_quote(*a);
		char *l;

		if (!q)
			goto nomem;
		l = realloc(line, len + strlen(q) + 2);
		if (!l) {
			free(q);
			goto nomem;
		}
		line = l;
		if (len)
			line[len++] = ' ';
		strcpy(line + len, q);
		len += strlen(q);
		free(q);
	}
	if (!line)
		return 0;
	if (strvec_push(out, line) < 0)
		goto nomem;
	free(line);
	return 0;
nomem:
	free(line);
	error_set(ENOMEM, "out of memory");
	return -1;
}

/* Run cmd through shell with stdin on /dev/null and stdout and stderr on
 * out_fd (-1: /dev/null); drain (if >= 0) is read as the command runs,
 * into buf.  Returns the exit status or -1 (see hostcmd_run). */
static int run(char *const *shell, char *const *cmd, int timeout_ms, int out_fd,
	       int drain, char *buf, size_t len)
{
	struct strvec argv = STRVEC_INIT;
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	int waited = 0, status;
	size_t got = 0;
	pid_t pid;

	if (hostcmd_argv(shell, cmd, &argv) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		error_set(errno, "fork: %s", strerror(errno));
		strvec_release(&argv);
		return -1;
	}
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		if (fd >= 0) {
			dup2(fd, 0);
			dup2(out_fd >= 0 ? out_fd : fd, 1);
			dup2(out_fd >= 0 ? out_fd : fd, 2);
		}
		/* Own process group, so a timeout kills ssh and its kids. */
		setpgid(0, 0);
		/* FUSE threads block every signal: ssh must not inherit that
		 * (it would ignore SIGTERM and SIGINT). */
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execvp(argv.v[0], argv.v);
		_exit(127);
	}
	strvec_release(&argv);
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		ssize_t n;

		/* Keep the pipe from filling; what does not fit is dropped. */
		while (drain >= 0) {
			char sink[512];

			if (got < len - 1)
				n = read(drain, buf + got, len - 1 - got);
			else
				n = read(drain, sink, sizeof sink);
			if (n <= 0)
				break;
			if (got < len - 1)
				got += (size_t)n;
		}
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			error_set(errno, "waitpid: %s", strerror(errno));
			return -1;
		}
		if (waited >= timeout_ms) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			error_set(ETIMEDOUT, "%s: no answer within %d ms",
				  cmd[0], timeout_ms);
			return -1;
		}
		nanosleep(&tick, NULL);
		waited += 10;
	}
	if (drain >= 0)
		buf[got] = '\0';
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

int hostcmd_run(char *const *shell, char *const *cmd, int timeout_ms)
{
	return run(shell, cmd, timeout_ms, -1, -1, NULL, 0);
}

int hostcmd_output(char *const *shell, char *const *cmd, int timeout_ms,
		   char *out, size_t len)
{
	int fds[2], r;

	if (len < 2) {
		error_set(EINVAL, "no room for the output of %s", cmd[0]);
		return -1;
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		error_set(errno, "pipe: %s", strerror(errno));
		return -1;
	}
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	/* The child's copy of the write end is dup2'ed (and so inherited
	 * without O_CLOEXEC); the read end closes at exec. */
	r = run(shell, cmd, timeout_ms, fds[1], fds[0], out, len);
	close(fds[0]);
	close(fds[1]);
	return r;
}
