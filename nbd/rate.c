/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A host's bandwidth limit: see rate.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/error.h"
#include "rate.h"

/* Time left unused earns at most this much credit: a reader and a writer
 * that take turns (cp through the mount, one host each) each leave their
 * host idle while the other waits, and without it the two would lose
 * that time for good (52.7 MiB/s of a 64 MiB/s limit). */
#define RATE_CREDIT_NS 250000000

struct rate {
	pthread_mutex_t lock;
	uint64_t bytes_per_sec;
	int64_t next_ns; /* when the host's time is free again */
};

/* When bytes booked now may start: the host's time is free from next_ns,
 * or from the credit's start if it was idle longer.  r->lock held. */
static int64_t slot(const struct rate *r, int64_t now)
{
	int64_t earliest = now - RATE_CREDIT_NS;

	return r->next_ns > earliest ? r->next_ns : earliest;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct rate *rate_new(uint64_t bytes_per_sec)
{
	struct rate *r = calloc(1, sizeof *r);

	if (!r) {
		error_set(ENOMEM, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	r->bytes_per_sec = bytes_per_sec;
	r->next_ns = mono_ns(); /* no credit for the time before */
	return r;
}

void rate_free(struct rate *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r);
}

uint64_t rate_limit(const struct rate *r)
{
	return r ? r->bytes_per_sec : 0;
}

void rate_wait(struct rate *r, size_t bytes)
{
	int64_t now, start;
	struct timespec ts;

	if (!r || !bytes)
		return;
	now = mono_ns();
	pthread_mutex_lock(&r->lock);
	start = slot(r, now);
	r->next_ns =
	    start + (int64_t)((double)bytes * 1e9 / (double)r->bytes_per_sec);
	pthread_mutex_unlock(&r->lock);
	if (start <= now)
		return;
	ts.tv_sec = start / 1000000000;
	ts.tv_nsec = start % 1000000000;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

bool rate_try(struct rate *r, size_t bytes)
{
	int64_t now, lead;
	bool ok;

	if (!r || !bytes)
		return true;
	now = mono_ns();
	lead = (int64_t)((double)bytes * 1e9 / (double)r->bytes_per_sec);
	pthread_mutex_lock(&r->lock);
	/* Booked at most one such request ahead: otherwise the next one
	 * would only be asked for once the time is free, a round trip late
	 * each time. */
	ok = r->next_ns <= now + lead;
	if (ok)
		r->next_ns = slot(r, now) + lead;
	pthread_mutex_unlock(&r->lock);
	return ok;
}

int rate_parse(const char *text, uint64_t *bytes_per_sec)
{
	static const struct {
		const char *s;
		int shift;
	} units[] = {
		{ "", 0 },   { "K", 10 },   { "k", 10 },   { "KiB", 10 },
		{ "M", 20 }, { "m", 20 },   { "MiB", 20 }, { "G", 30 },
		{ "g", 30 }, { "GiB", 30 },
	};
	unsigned long long n = 0;
	const char *p = text;

	if (!text || *p < '0' || *p > '9')
		goto bad;
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (unsigned)(*p - '0');
		if (n > (1ULL << 40))
			goto bad;
	}
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(p, units[i].s) == 0) {
			if (n > (1ULL << 40) >> units[i].shift)
				goto bad;
			*bytes_per_sec = (uint64_t)n << units[i].shift;
			return 0;
		}
	}
bad:
	error_set(EINVAL,
		  "bad rate \"%s\": bytes per second, with K, M or G for "
		  "KiB, MiB or GiB (e.g. 20M), at most 1 TiB/s; 0 for none",
		  text ? text : "");
	return -1;
}

void rate_format(uint64_t bytes_per_sec, char *buf, size_t len)
{
	static const char suffix[] = "GMK";
	uint64_t b = bytes_per_sec;

	for (int i = 0; i < 3; i++) {
		int shift = 30 - 10 * i;

		if (b && b % (1ULL << shift) == 0) {
			snprintf(buf, len, "%llu%c",
				 (unsigned long long)(b >> shift), suffix[i]);
			return;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)b);
}
