/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

#define ERROR_MAX 1024
#define NOCAUSE	  "internal error: failure without a cause"

static __thread char last_msg[ERROR_MAX];
static __thread int last_errno;
static int nocause_errno = EIO;

void error_set(int errnum, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_msg, sizeof last_msg, fmt, ap);
	va_end(ap);
	last_errno = errnum;
	errno = errnum;
}

void error_prefix(const char *fmt, ...)
{
	char prefix[ERROR_MAX], old[ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	snprintf(old, sizeof old, "%s", error_msg());
	snprintf(last_msg, sizeof last_msg, "%s: %s", prefix, old);
	errno = last_errno;
}

void error_clear(void)
{
	last_msg[0] = '\0';
	last_errno = 0;
}

const char *error_msg(void)
{
	if (last_msg[0])
		return last_msg;
	return last_errno ? "unknown error" : NOCAUSE;
}

int error_errno(void)
{
	return last_errno ? last_errno : nocause_errno;
}

void error_set_nocause_errno(int errnum)
{
	nocause_errno = errnum;
}
