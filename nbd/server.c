/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The command that runs an endpoint's NBD server on its host: the kind's
 * server (nbdkit-file.c, qemu-nbd.c), the zero-scan filter wrapped around
 * it where the host has the filter, all through the host's shell
 * (hostcmd.h); and its stderr kept, so that a server that does not start
 * can say why.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "endpoint-int.h"
#include "hostcmd.h"

const struct endpoint_ops *endpoint_ops_for(const char *format)
{
	return strcmp(format, "raw") == 0 ? &endpoint_nbdkit_file
					  : &endpoint_qemu_nbd;
}

char *server_join(char *const *argv)
{
	size_t len = 1;
	char *s;

	for (char *const *a = argv; *a; a++)
		len += strlen(*a) + 1;
	s = malloc(len);
	if (!s)
		return NULL;
	s[0] = '\0';
	for (char *const *a = argv; *a; a++) {
		if (a != argv)
			strcat(s, " ");
		strcat(s, *a);
	}
	return s;
}

/* Make argv send its stderr (ssh's complaints: host keys, refused
 * connections, "command not found") to a new unlinked temporary file, so
 * that a failure can say why.  Returns the file's descriptor, or -1 (then
 * argv is unchanged and stderr is the daemon's). */
int server_stderr_to_file(struct strvec *argv, char *path, size_t len)
{
	struct strvec wrapped = STRVEC_INIT;
	int fd;

	snprintf(path, len, "/tmp/kvmmigfs-nbd.XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	/* Unlinked at once, so that nothing is left behind whatever happens
	 * to the daemon; the command inherits fd and opens it again by its
	 * /dev/fd name. */
	unlink(path);
	snprintf(path, len, "/dev/fd/%d", fd);
	if (strvec_push(&wrapped, "/bin/sh") < 0 ||
	    strvec_push(&wrapped, "-c") < 0 ||
	    strvec_push(&wrapped, "exec \"$@\" 2>\"$0\"") < 0 ||
	    strvec_push(&wrapped, path) < 0 ||
	    strvec_push_all(&wrapped, argv->v) < 0) {
		strvec_release(&wrapped);
		close(fd);
		return -1;
	}
	strvec_release(argv);
	*argv = wrapped;
	return fd;
}

/* The last non-empty line of what fd holds, or "". */
void server_last_line(int fd, char *buf, size_t len)
{
	char text[4096];
	ssize_t n = fd >= 0 ? pread(fd, text, sizeof text - 1, 0) : -1;
	char *end, *start;

	buf[0] = '\0';
	if (n <= 0)
		return;
	text[n] = '\0';
	end = text + n;
	while (end > text && (end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	start = strrchr(text, '\n');
	snprintf(buf, len, "%s", start ? start + 1 : text);
}

/* Make the server command (nbdkit ...) load filter if the host has it:
 * sh -c 'f=$1; shift; ...' sh FILTER nbdkit ARGS... */
static int with_filter(const char *filter, struct strvec *argv)
{
	struct strvec wrapped = STRVEC_INIT;

	if (!filter || !filter[0])
		return 0;
	if (strvec_push(&wrapped, "sh") < 0 ||
	    strvec_push(&wrapped, "-c") < 0 ||
	    strvec_push(&wrapped, "f=$1 n=$2; shift 2; if [ -r \"$f\" ]; "
				  "then exec \"$n\" --filter=\"$f\" \"$@\"; "
				  "else exec \"$n\" \"$@\"; fi") < 0 ||
	    strvec_push(&wrapped, "sh") < 0 ||
	    strvec_push(&wrapped, filter) < 0 ||
	    strvec_push_all(&wrapped, argv->v) < 0) {
		strvec_release(&wrapped);
		return -1;
	}
	strvec_release(argv);
	*argv = wrapped;
	return 0;
}

int server_command(const struct endpoint_ops *ops,
		   const struct endpoint_spec *spec, struct strvec *argv)
{
	struct strvec server = STRVEC_INIT;
	int r = -1;

	if (ops->server_argv(spec, &server) == 0 &&
	    with_filter(spec->filter, &server) == 0 &&
	    hostcmd_argv(spec->shell, server.v, argv) == 0)
		r = 0;
	strvec_release(&server);
	return r;
}
