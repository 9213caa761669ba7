/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon's log: stderr in the foreground (-f, -d), syslog otherwise,
 * the same line in both.  One line per event, tagged with the mount point
 * (so a journal filter finds one mount's lines); failures name host,
 * guest, disk and cause:
 *	"kvmmigfs[PID]: /mnt/kvm: error: hosta/web1/vda.raw: open: EBUSY: ..."
 */
#ifndef KVMMIGFS_LOG_H
#define KVMMIGFS_LOG_H

#include <syslog.h>

/* mountpoint: NULL before the mount point is known. */
void log_init(int foreground, int debug, const char *mountpoint);
void log_msg(int prio, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...)	 log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...)	 log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)	 log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
