/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Scoped cleanup (GCC and clang's cleanup attribute), for functions that
 * would otherwise need a ladder of exit labels:
 *
 *	CLEANUP_FREE char *s = NULL;	freed when s goes out of scope
 *	LOCK_FOR_SCOPE(&m);		m unlocked when the scope ends
 */
#ifndef KVMMIGFS_CLEANUP_H
#define KVMMIGFS_CLEANUP_H

#include <pthread.h>
#include <stdlib.h>

static inline void cleanup_free(void *p)
{
	free(*(void **)p);
}
#define CLEANUP_FREE __attribute__((cleanup(cleanup_free)))

static inline void cleanup_unlock(pthread_mutex_t **m)
{
	pthread_mutex_unlock(*m);
}
#define LOCK_CONCAT_(a, b) a##b
#define LOCK_CONCAT(a, b)  LOCK_CONCAT_(a, b)
#define LOCK_FOR_SCOPE(m)                                                      \
	__attribute__((cleanup(cleanup_unlock))) pthread_mutex_t *LOCK_CONCAT( \
	    scoped_lock_, __LINE__) = (pthread_mutex_lock(m), (m))

#endif
