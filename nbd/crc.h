/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * CRC32 (zlib's crc32()) of a disk as its guest sees it, per block of
 * CRC_BLOCK bytes and for the whole disk, in time proportional to its
 * data: ranges the source calls zero are never read; their CRC comes from
 * crc32_combine() over a table of zero runs of 2^k blocks.
 *
 * Used on the hosts by kvmmigfs-crc (nbd/kvmmigfs-crc.c), and by the
 * daemon over an NBD endpoint where a host has no kvmmigfs-crc.  The map
 * travels between them as text (crc_map_write/crc_map_parse):
 *
 *	kvmmigfs-crc 1 SIZE BLOCK
 *	d FIRST CRC CRC ...	data blocks FIRST, FIRST+1, ...: their CRCs
 *	total CRC		the whole disk
 *
 * Lines starting with "#" are remarks (kvmmigfs-crc -k prints one a
 * second while it works, so that an idle timeout tells a dead host from a
 * long checksum).  Blocks not listed in a "d" line read as zeros.  CRCs are 8
 *lowercase hex digits.  "d" lines appear only when asked for (blocks).
 */
#ifndef KVMMIGFS_CRC_H
#define KVMMIGFS_CRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CRC_BLOCK (1u << 20)

/* What is read: size bytes, with extents and reads that may be called
 * from several threads at once, each thread with its own opaque (see
 * crc_compute).  Both return 0, or -1 with error_set(). */
struct crc_source {
	uint64_t size;
	/* The extent at offset (< size): *length bytes (<= max) that all
	 * read as zeros (*zero) or are data. */
	int (*extent)(void *opaque, uint64_t offset, uint64_t max,
		      uint64_t *length, bool *zero);
	/* Read count bytes at offset (all within size). */
	int (*pread)(void *opaque, void *buf, size_t count, uint64_t offset);
};

struct crc_map {
	uint64_t size;	  /* bytes */
	uint64_t nblocks; /* blocks of CRC_BLOCK, the last one maybe short */
	/* The data blocks, ascending, and their CRCs; every other block
	 * reads as zeros.  NULL when only the total was kept. */
	uint64_t *index;
	uint32_t *crc;
	size_t n;
	uint32_t total; /* crc32() of every byte, start to end */
	uint64_t data;	/* bytes read (the data blocks') */
};

/* Compute src's map with nthreads threads (1-64), thread i calling src
 * with opaques[i].  Returns 0 or -1 with error_set() (the source's error,
 * or ENOMEM). */
int crc_compute(const struct crc_source *src, void *const *opaques,
		unsigned nthreads, struct crc_map *out);

void crc_map_free(struct crc_map *m);

/* crc32() of len zero bytes (any len), in O(log len). */
uint32_t crc_zeros(uint64_t len);

/* Length of block i of m. */
uint64_t crc_block_len(const struct crc_map *m, uint64_t i);

/* CRC of block i of m (data or zeros). */
uint32_t crc_block(const struct crc_map *m, uint64_t i);

/* Is block i one of m's data blocks? */
bool crc_block_is_data(const struct crc_map *m, uint64_t i);

/* Write m as text (blocks: with its "d" lines).  Returns 0 or -1 (errno). */
int crc_map_write(const struct crc_map *m, bool blocks, FILE *f);

/* Parse that text.  Returns 0, or -1 with error_set(EPROTO, what is wrong). */
int crc_map_parse(const char *text, struct crc_map *out);

/* The first block where a and b differ (same size assumed), or
 * UINT64_MAX if none; a and b need their blocks. */
uint64_t crc_first_difference(const struct crc_map *a, const struct crc_map *b);

#endif
