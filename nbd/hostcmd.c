/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
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

/* Start argv with stdin on /dev/null, stdout on out_fd and stderr on
 * err_fd (-1: /dev/null), in its own process group.  Returns its pid or -1
 * with error_set(). */
static pid_t spawn(char *const *argv, int out_fd, int err_fd)
{
	pid_t pid = fork();

	if (pid < 0) {
		error_set(errno, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		if (fd >= 0) {
			dup2(fd, 0);
			dup2(out_fd >= 0 ? out_fd : fd, 1);
			dup2(err_fd >= 0 ? err_fd : fd, 2);
		}
		/* Own process group, so a timeout kills ssh and its kids. */
		setpgid(0, 0);
		/* FUSE threads block every signal: ssh must not inherit that
		 * (it would ignore SIGTERM and SIGINT). */
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
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
	pid = spawn(argv.v, out_fd, out_fd);
	if (pid < 0) {
		strvec_release(&argv);
		return -1;
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

/* Append n bytes to a growing buffer. */
static int append(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t c = *cap ? *cap : 4096;
		char *b;

		while (c < *len + n + 1)
			c *= 2;
		b = realloc(*buf, c);
		if (!b) {
			error_set(ENOMEM, "out of memory");
			return -1;
		}
		*buf = b;
		*cap = c;
	}
	memcpy(*buf + *len, p, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

/* err's last non-empty line, in place. */
static void last_line(char *err)
{
	size_t n = strlen(err);
	char *start;

	while (n && (err[n - 1] == '\n' || err[n - 1] == '\r'))
		err[--n] = '\0';
	start = strrchr(err, '\n');
	if (start)
		memmove(err, start + 1, strlen(start + 1) + 1);
}

int hostcmd_capture(char *const *shell, char *const *cmd, int idle_ms,
		    char **out, size_t *out_len, char *err, size_t err_len)
{
	struct strvec argv = STRVEC_INIT;
	int o[2] = { -1, -1 }, e[2] = { -1, -1 }, status = 0, r = -1;
	size_t cap = 0, elen = 0;
	int64_t idle = 0;
	pid_t pid = -1;

	*out = NULL;
	*out_len = 0;
	err[0] = '\0';
	if (hostcmd_argv(shell, cmd, &argv) < 0)
		return -1;
	if (pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0) {
		error_set(errno, "pipe: %s", strerror(errno));
		goto out;
	}
	pid = spawn(argv.v, o[1], e[1]);
	if (pid < 0)
		goto out;
	close(o[1]);
	close(e[1]);
	o[1] = e[1] = -1;
	while (o[0] >= 0 || e[0] >= 0) {
		struct pollfd p[2] = { { o[0], POLLIN, 0 },
				       { e[0], POLLIN, 0 } };
		char chunk[65536];
		int n = poll(p, 2, 100);

		if (n < 0 && errno != EINTR) {
			error_set(errno, "poll: %s", strerror(errno));
			goto kill;
		}
		if (n <= 0) {
			idle += 100;
			if (idle >= idle_ms) {
				error_set(ETIMEDOUT,
					  "%s: no answer within %d ms", cmd[0],
					  idle_ms);
				goto kill;
			}
			continue;
		}
		idle = 0;
		if (p[0].revents) {
			ssize_t k = read(o[0], chunk, sizeof chunk);

			if (k > 0 &&
			    append(out, out_len, &cap, chunk, (size_t)k) < 0)
				goto kill;
			if (k == 0 || (k < 0 && errno != EINTR)) {
				close(o[0]);
				o[0] = -1;
			}
		}
		if (p[1].revents) {
			ssize_t k = read(e[0], chunk, sizeof chunk - 1);

			if (k > 0) {
				/* Keep the end: the cause is the last line. */
				if (elen + (size_t)k >= err_len) {
					size_t drop =
					    elen + (size_t)k - err_len + 1;

					if (drop > elen)
						drop = elen;
					memmove(err, err + drop, elen - drop);
					elen -= drop;
				}
				if ((size_t)k >= err_len)
					k = (ssize_t)err_len - 1;
				memcpy(err + elen, chunk, (size_t)k);
				elen += (size_t)k;
				err[elen] = '\0';
			}
			if (k == 0 || (k < 0 && errno != EINTR)) {
				close(e[0]);
				e[0] = -1;
			}
		}
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	pid = -1;
	last_line(err);
	r = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	goto out;
kill:
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	pid = -1;
out:
	for (int i = 0; i < 2; i++) {
		if (o[i] >= 0)
			close(o[i]);
		if (e[i] >= 0)
			close(e[i]);
	}
	strvec_release(&argv);
	if (r < 0) {
		free(*out);
		*out = NULL;
		*out_len = 0;
	}
	return r;
}

int hostcmd_start(char *const *shell, char *const *cmd, struct hostcmd_proc *p)
{
	struct strvec argv = STRVEC_INIT;
	int out[2] = { -1, -1 }, err[2] = { -1, -1 };

	p->pid = -1;
	p->out = p->err = -1;
	if (hostcmd_argv(shell, cmd, &argv) < 0)
		return -1;
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		error_set(errno, "pipe: %s", strerror(errno));
		goto fail;
	}
	p->pid = spawn(argv.v, out[1], err[1]);
	if (p->pid < 0)
		goto fail;
	strvec_release(&argv);
	close(out[1]);
	close(err[1]);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(err[0], F_SETFL, O_NONBLOCK);
	p->out = out[0];
	p->err = err[0];
	return 0;
fail:
	strvec_release(&argv);
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	return -1;
}

int hostcmd_reap(struct hostcmd_proc *p, bool kill_it)
{
	int status = 0;

	if (p->pid > 0) {
		if (kill_it) {
			kill(-p->pid, SIGKILL);
			kill(p->pid, SIGKILL);
		}
		while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	if (p->out >= 0)
		close(p->out);
	if (p->err >= 0)
		close(p->err);
	p->pid = -1;
	p->out = p->err = -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}
