/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_foreground = 1;
static int log_debug_on;
static char log_mount[PATH_MAX + 2]; /* "MOUNT: ", or empty */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_init(int foreground, int debug, const char *mountpoint)
{
	log_foreground = foreground;
	log_debug_on = debug;
	if (mountpoint)
		snprintf(log_mount, sizeof log_mount, "%s: ", mountpoint);
	if (!foreground)
		openlog("kvmmigfs", LOG_PID, LOG_DAEMON);
}

void log_msg(int prio, const char *fmt, ...)
{
	static const char *const names[] = { "emerg", "alert",	 "crit",
					     "error", "warning", "notice",
					     "info",  "debug" };
	va_list ap;
	char line[2048];

	if (prio == LOG_DEBUG && !log_debug_on)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	/* One event, one line: libvirt's messages may span several. */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = (p[1] ? ' ' : '\0');
	/* The same line on stderr and in syslog (which adds the tag and the
	 * pid itself): "kvmmigfs[PID]: MOUNT: LEVEL: message". */
	if (log_foreground) {
		pthread_mutex_lock(&log_lock);
		fprintf(stderr, "kvmmigfs[%d]: %s%s: %s\n", (int)getpid(),
			log_mount, names[prio & 7], line);
		pthread_mutex_unlock(&log_lock);
	} else {
		syslog(prio, "%s%s: %s", log_mount, names[prio & 7], line);
	}
}
