/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The direct path: a copy from one host's disk to another host's staged
 * volume run by kvmmigfs-copy (nbd/kvmmigfs-copy.c) on the target host,
 * which reaches the source host with the source's "reach" command from
 * the hosts file.  The data goes host to host; this machine only starts
 * the copier and reads its progress.
 */
#ifndef KVMMIGFS_DIRECT_H
#define KVMMIGFS_DIRECT_H

#include <stdbool.h>
#include <stdint.h>

struct direct_spec {
	char *const *shell; /* the target host's shell */
	char *const *reach; /* how the target reaches the source host */
	const char *tool;   /* kvmmigfs-copy on the target host */
	const char *src_path, *src_format;
	const char *filter; /* the zero scan on the source host; NULL none */
	bool shared;	    /* the source may be open in a running guest */
	const char *dst_path, *dst_format;
	bool zero;	 /* write the source's zero extents too */
	uint64_t rate;	 /* bytes per second; 0: no limit */
	int timeout_ms;	 /* a silent host fails the copy */
	uint64_t offset; /* the range, the same on both sides */
	uint64_t length;
};

struct direct;

/* Start the copier.  NULL with error_set() if it could not be started. */
struct direct *direct_start(const struct direct_spec *s);

/* Where the copier's range starts and ends. */
uint64_t direct_offset(const struct direct *d);
uint64_t direct_end(const struct direct *d);

/* Read the copier's progress until it says something new, or for at most
 * max_ms: data(opaque, offset, length) is called for each range it wrote
 * data to.  *done: the bytes of the range copied, from its start (the
 * last of them only once they are flushed).  Returns 1 when it has ended
 * (everything copied and flushed), 0 while it runs, -1 with
 * error_set() when it failed: EHOSTUNREACH when it could not reach the
 * source host, the copier's errno otherwise (ETIMEDOUT for silence). */
int direct_poll(struct direct *d, int max_ms,
		int (*data)(void *opaque, uint64_t offset, uint64_t length),
		void *opaque, uint64_t *done);

/* Stop it (killed if it still runs) and free it. */
void direct_stop(struct direct *d);

#endif
