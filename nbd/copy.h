/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The copy engine: a range of an NBD endpoint to a sink, extent-aware.
 *
 * Ranges the source's block status reports as zero (holes and, with the
 * host-side zero scan, allocated zeros) are handed to the sink as zero
 * ranges without being read; data is read in 2 MiB requests, 16 in flight
 * spread over the source's connections, and written by the sink (which
 * may write behind) as each arrives.  Every failed request fails the copy.
 *
 * The work is bounded per call (bytes and time), so that a caller serving
 * an interruptible system call (copy_file_range) answers within about a
 * second and is called again for the rest.
 */
#ifndef KVMMIGFS_COPY_H
#define KVMMIGFS_COPY_H

#include <stddef.h>
#include <stdint.h>

#include "endpoint.h"

struct copy_sink {
	void *opaque;
	/* Write data at offset.  Returns 0 or -1 with error_set(). */
	int (*write)(void *opaque, const void *buf, size_t count,
		     uint64_t offset);
	/* [offset, offset+count) must read as zeros.  Returns 0 or -1. */
	int (*zero)(void *opaque, uint64_t count, uint64_t offset);
};

/* Copy up to len bytes from the source at src_off to the sink at dst_off,
 * for at most about max_ms milliseconds (at least one request's worth is
 * always copied).  src holds nsrc (>= 1) connections to the same disk:
 * reads are spread over them (several ssh streams).  Stops at the end of
 * the source.  Returns the bytes copied (0 at the end of the source) or -1
 * with error_set(); either way nothing is in flight any more. */
int64_t copy_range(struct endpoint *const *src, int nsrc, uint64_t src_off,
		   const struct copy_sink *sink, uint64_t dst_off, uint64_t len,
		   int max_ms);

#endif
