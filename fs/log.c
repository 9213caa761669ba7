/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

static int log_foreground = 1;
static int log_debug_on;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_init(int foreground, int debug)
{
	log_foreground = foreground;
	log_debug_on = debug;
	if (!foreground)
		openlog("kvmmigfs", LOG_PID, LOG_DAEMON);
}

void log_msg(int prio, const char *fmt, ...)
{
	static const char *const names[] = {"emerg", "alert",	"crit",
					    "error", "warning", "notice",
					    "info",  "debug"};
	va_list ap;

	if (prio == LOG_DEBUG && !log_debug_on)
		return;
	va_start(ap, fmt);
	if (log_foreground) {
		pthread_mutex_lock(&log_lock);
		fprintf(stderr, "kvmmigfs: %s: ", names[prio & 7]);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		pthread_mutex_unlock(&log_lock);
	} else {
		vsyslog(prio, fmt, ap);
	}
	va_end(ap);
}
