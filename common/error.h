/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Error reporting shared by every layer of kvmmigfs.
 *
 * Core functions fail by returning -1 (or NULL) after calling error_set(),
 * which stores errno and a message in thread-local storage.  The caller
 * reads them with error_errno() / error_msg() before making another call
 * that may fail (which may error_clear() them).  fs/ turns them into a negative
 * errno for the kernel and one log line; tools may print them and exit.
 */
#ifndef KVMMIGFS_ERROR_H
#define KVMMIGFS_ERROR_H

#include <stdarg.h>

/* Record errnum and a printf-style message for this thread.  Also sets
 * errno = errnum.  Never fails (the message is truncated if too long). */
void error_set(int errnum, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix the current message with "PREFIX: " keeping the errno. */
void error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Forget this thread's error.  Every function that reports failures this
 * way may call it on entry, so that a failure path that forgets
 * error_set() shows as such instead of passing on an older error. */
void error_clear(void);

/* The last message and errno of this thread.  The string is owned by the
 * thread's storage and valid until the next error_set() in this thread.
 * With no error set since error_clear() (a failure without a cause: a
 * bug), the message is "internal error: failure without a cause" and the
 * errno the one error_set_nocause_errno() chose (EIO unless told). */
const char *error_msg(void);
int error_errno(void);

/* The errno error_errno() gives for a failure without a cause.  Unit tests
 * choose one no failure path reports (ENOTRECOVERABLE), so that their
 * assertions on specific errnos catch a forgotten error_set().  Call it
 * before starting threads. */
void error_set_nocause_errno(int errnum);

#endif
