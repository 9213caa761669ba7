/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
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
