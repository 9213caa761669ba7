/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The CRC32 of a disk of a host as its guest sees it (nbd/crc.h), computed
 * on that host by kvmmigfs-crc through its shell; where the host has no
 * kvmmigfs-crc, by reading the disk over NBD here (logged).  Totals are
 * cached per host and file while the file's stamp (device, inode, size,
 * mtime, ctime) stays the same; block devices are not cached.
 */
#ifndef KVMMIGFS_DISKCRC_H
#define KVMMIGFS_DISKCRC_H

#include <stdbool.h>
#include <stdint.h>

#include "../nbd/crc.h"

struct rate;

struct disk_crc_spec {
	const char *host;   /* the host's folder name (cache key) */
	char *const *shell; /* its shell prefix; NULL/empty: this machine */
	const char *tool;   /* kvmmigfs-crc's path on the host; "": none */
	const char *filter; /* the zero-scan filter, for the NBD fallback */
	const char *path;   /* the disk */
	const char *format; /* "raw", "qcow2", ... */
	bool shared;	    /* a running guest may hold it */
	const char *desc;   /* "hosta/web1/vda.raw", for messages */
	int timeout_ms;	    /* longest silence of the host */
	uint64_t length;    /* only the first length bytes; 0: all */
	struct rate *rate;  /* the host's bandwidth limit, for the NBD
			     * fallback (data then comes here); NULL: none */
};

/* The whole disk's CRC into *crc.  Returns 0 or -1 with error_set():
 * EHOSTDOWN (ssh failed), ETIMEDOUT, EIO (kvmmigfs-crc failed: its
 * message), or the NBD read's error. */
int disk_crc_total(const struct disk_crc_spec *s, uint32_t *crc);

/* The map with every block's CRC (never cached).  Returns 0 or -1. */
int disk_crc_map(const struct disk_crc_spec *s, struct crc_map *out);

/* Forget every cached total (tests). */
void disk_crc_forget(void);

#endif
