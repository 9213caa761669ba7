/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A host's bandwidth limit (-o bwlimit, the hosts file's bwlimit key):
 * every NBD read or write request to the host's disks waits for its turn
 * before it is sent, so that the host's data moves at no more than the
 * limit, summed over every connection to it.  A request of n bytes takes
 * the next n / rate seconds of the host's time and is sent when they
 * start; time left unused counts for at most a quarter of a second, so
 * that over any span the host moves at most rate * (span + 0.25 s) plus
 * the requests being sent (readahead books one ahead: rate_try).
 */
#ifndef KVMMIGFS_RATE_H
#define KVMMIGFS_RATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rate;

/* A limit of bytes_per_sec (> 0).  NULL with error_set(ENOMEM). */
struct rate *rate_new(uint64_t bytes_per_sec);
void rate_free(struct rate *r);

/* The limit, in bytes per second (0 for NULL: none). */
uint64_t rate_limit(const struct rate *r);

/* Wait until bytes may be sent (at once for r == NULL). */
void rate_wait(struct rate *r, size_t bytes);

/* Take the host's time for bytes only if it is free within the time
 * those bytes take (so that one such request waits, booked, ahead of
 * the schedule): true (sent counts as sent) or false (nothing taken).
 * For work done ahead, like readahead, which should not hold up its
 * caller. */
bool rate_try(struct rate *r, size_t bytes);

/* Parse RATE: a whole number of bytes per second with an optional suffix
 * K, M or G (powers of 1024; "k", "m", "g" too, and "KiB", "MiB", "GiB"
 * spelled out).  "0" means no limit.  Returns 0, or -1 with
 * error_set(EINVAL) for anything else (or a rate of more than 1 TiB/s). */
int rate_parse(const char *text, uint64_t *bytes_per_sec);

/* RATE as rate_parse reads it, "20M" or "1536K" or "100", into buf. */
void rate_format(uint64_t bytes_per_sec, char *buf, size_t len);

#endif
