/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Running a command on a host.
 *
 * A host is reached through its "shell": a command prefix such as
 * "ssh root@hostb" that runs its last argument, a POSIX shell command line,
 * on the host.  An empty shell means this machine: the command is executed
 * directly, with no shell at all.  Every argument is quoted, so nothing in
 * a path or name is ever interpreted by a shell.
 */
#ifndef KVMMIGFS_HOSTCMD_H
#define KVMMIGFS_HOSTCMD_H

#include <stdbool.h>
#include <sys/types.h>

#include "../common/strvec.h"

/* Append to out the argv that runs cmd (a NULL-terminated argv) through
 * shell (NULL-terminated; NULL or empty: locally).  Returns 0 or -1. */
int hostcmd_argv(char *const *shell, char *const *cmd, struct strvec *out);

/* A malloc'd copy of s quoted for a POSIX shell ('...' with ' as '\'').
 * Returns NULL with error_set(ENOMEM). */
char *hostcmd_quote(const char *s);

/* Run cmd on the host (through shell), stdin/stdout/stderr on /dev/null,
 * and wait at most timeout_ms.  Returns its exit status (0-255), or -1
 * with error_set(): ETIMEDOUT (it was killed), or the reason it could not
 * run.  A signal death counts as status 128+N. */
int hostcmd_run(char *const *shell, char *const *cmd, int timeout_ms);

/* hostcmd_run, with what the command prints (stdout and stderr) in out,
 * NUL-terminated, cut to len - 1 bytes. */
int hostcmd_output(char *const *shell, char *const *cmd, int timeout_ms,
		   char *out, size_t len);

/* Run cmd through shell as hostcmd_run does, for a command that may run
 * long but keeps talking: it is killed (ETIMEDOUT) only after idle_ms
 * without output.  Its whole stdout goes to *out (malloc'd, NUL-terminated,
 * *out_len bytes); the last line of its stderr to err (err_len bytes).
 * Returns the exit status, or -1 with error_set() (and *out NULL). */
int hostcmd_capture(char *const *shell, char *const *cmd, int idle_ms,
		    char **out, size_t *out_len, char *err, size_t err_len);

/* A command left running, talking through pipes. */
struct hostcmd_proc {
	pid_t pid; /* also its process group */
	int out;   /* its stdout, read end, non-blocking */
	int err;   /* its stderr, the same */
};

/* Start cmd through shell as hostcmd_run does (stdin on /dev/null, its
 * own process group), with stdout and stderr on pipes.  Returns 0 or -1
 * with error_set(). */
int hostcmd_start(char *const *shell, char *const *cmd, struct hostcmd_proc *p);

/* Wait for it to exit (after killing its process group if kill_it) and
 * close the pipes.  Returns its exit status, 128+N for a signal N. */
int hostcmd_reap(struct hostcmd_proc *p, bool kill_it);

#endif
