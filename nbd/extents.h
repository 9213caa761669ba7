/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An extent map: which ranges of a disk are data and which read as zeros,
 * as NBD block status ("base:allocation") reports them, and the answers to
 * lseek(SEEK_DATA / SEEK_HOLE) that follow from it.
 *
 * A range flagged NBD_STATE_ZERO reads as zeros and is a hole for lseek
 * (whether it is unallocated or allocated zeros): copying it is never
 * needed.  The map is filled piecemeal; lookups report what is missing.
 * Not thread-safe: the owner locks.
 */
#ifndef KVMMIGFS_EXTENTS_H
#define KVMMIGFS_EXTENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct extent {
	uint64_t offset;
	uint64_t length;
	bool zero; /* reads as zeros */
};

struct extent_map {
	struct extent *v; /* sorted by offset, not overlapping */
	size_t n, cap;
	uint64_t size;	/* the disk's size */
	uint64_t known; /* bytes the extents cover, in all */
};

void extent_map_init(struct extent_map *m, uint64_t size);
void extent_map_release(struct extent_map *m);

/* Record that [offset, offset+length) is zero or data.  Ranges already
 * known are left as they are; ranges past the size are cut.  Adjacent
 * ranges of the same kind are merged.  Returns 0 or -1 (ENOMEM). */
int extent_map_add(struct extent_map *m, uint64_t offset, uint64_t length,
		   bool zero);

/* The known extent containing offset, or NULL if unknown. */
const struct extent *extent_map_find(const struct extent_map *m,
				     uint64_t offset);

/* True if all of [offset, offset+length) is known to read as zeros. */
bool extent_map_is_zero(const struct extent_map *m, uint64_t offset,
			uint64_t length);

/* Answer lseek(offset, whence) for whence SEEK_DATA or SEEK_HOLE.
 * Returns:
 *   >= 0        the answer;
 *   -ENXIO      offset at or past the end, or no data after offset;
 *   -EINVAL     another whence or a negative offset;
 *   -EAGAIN     the map does not know the extent at *missing: fetch block
 *               status from there, extent_map_add() it, and ask again.
 * The end of the disk counts as a hole (SEEK_HOLE returns at most size). */
int64_t extent_map_seek(const struct extent_map *m, int64_t offset, int whence,
			uint64_t *missing);

#endif
