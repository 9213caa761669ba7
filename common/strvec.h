/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A growable, NULL-terminated vector of owned strings (an argv).
 *
 *	struct strvec v = STRVEC_INIT;
 *	strvec_push(&v, "nbdkit");
 *	execvp(v.v[0], v.v);
 *	strvec_release(&v);
 *
 * v.v is NULL until the first push; after any push v.v[v.n] == NULL.
 * The vector owns its strings; strvec_release() frees them all.
 */
#ifndef KVMMIGFS_STRVEC_H
#define KVMMIGFS_STRVEC_H

#include <stddef.h>

struct strvec {
	char **v;
	size_t n;
	size_t cap;
};

#define STRVEC_INIT                                                            \
	{                                                                      \
		NULL, 0, 0                                                     \
	}

/* Append a copy of s.  Returns 0, or -1 with error_set(ENOMEM). */
int strvec_push(struct strvec *sv, const char *s);
/* Append a formatted string.  Returns 0 or -1 (ENOMEM). */
int strvec_pushf(struct strvec *sv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append copies of every string of a NULL-terminated array. */
int strvec_push_all(struct strvec *sv, char *const *strs);
/* Index of s in the vector, or -1. */
long strvec_find(const struct strvec *sv, const char *s);
void strvec_release(struct strvec *sv);

#endif
