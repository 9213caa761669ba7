/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Staging, the disk write path (zero scan, write-behind to the volume).
 * See ../stage.h for the rules, stage-int.h for the locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../nbd/endpoint.h"
#include "../../common/error.h"
#include "../../nbd/extents.h"
#include "../../nbd/hostcmd.h"
#include "../domxml.h"
#include "../log.h"
#include "../path.h"
#include "../record.h"
#include "../rewrite.h"
#include "stage-int.h"

static bool all_zero(const char *buf, size_t n)
{
	return n == 0 || (buf[0] == 0 && memcmp(buf, buf + 1, n - 1) == 0);
}

/* Does any written data lie in [offset, offset+count)? io_lock held. */
bool stage_overlaps_written(const struct extent_map *m, uint64_t offset,
			    uint64_t count)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].offset < offset + count &&
		    m->v[i].offset + m->v[i].length > offset)
			return true;
	return false;
}

/* Written data is scanned for zeros in blocks of this size. */
#define ZERO_BLOCK (64u << 10)

/* The length of the run at buf of blocks that are all zero (*zero) or
 * not; buf NULL is all zeros. */
static size_t run_length(const char *buf, size_t count, bool *zero)
{
	size_t n = 0;

	if (!buf) {
		*zero = true;
		return count;
	}
	*zero = all_zero(buf, count < ZERO_BLOCK ? count : ZERO_BLOCK);
	while (n < count) {
		size_t b = count - n < ZERO_BLOCK ? count - n : ZERO_BLOCK;

		if (all_zero(buf + n, b) != *zero)
			break;
		n += b;
	}
	return n;
}

/* Write count bytes at offset, buf NULL for zeros.  All-zero blocks are
 * skipped (a new volume reads zeros) unless data was written there. */
static ssize_t stage_disk_write(struct stage_open *so, const char *buf,
				size_t count, uint64_t offset)
{
	struct staged_file *sf = so->sf;
	ssize_t r = -1;

	if (!so->write) {
		error_set(EBADF, "not open for writing");
		return -1;
	}
	if (offset > STAGE_MAX_SIZE || count > STAGE_MAX_SIZE - offset) {
		error_set(EFBIG,
			  "disks larger than %llu bytes are not "
			  "supported",
			  (unsigned long long)STAGE_MAX_SIZE);
		return -1;
	}
	if (!__atomic_load_n(&so->active, __ATOMIC_RELAXED)) {
		/* Written through another descriptor of a handle already
		 * closed once: it is a writer again until its next close. */
		pthread_mutex_lock(&so->sh->lock);
		stage_handle_activate(so);
		pthread_mutex_unlock(&so->sh->lock);
	}
	pthread_mutex_lock(&sf->io_lock);
	for (int tries = 0; !sf->ep; tries++) {
		/* Written again after it was completed.  The server is
		 * started with the stage lock (not io_lock) held, so another
		 * thread may complete the disk again in between: look
		 * again. */
		pthread_mutex_unlock(&sf->io_lock);
		if (tries == 3) {
			error_set(EIO, "the disk keeps being completed while "
				       "it is written");
			return -1;
		}
		pthread_mutex_lock(&so->sh->lock);
		stage_disk_reopen(sf);
		r = stage_endpoint_open(so->sh, so->st, sf);
		pthread_mutex_unlock(&so->sh->lock);
		if (r < 0)
			return -1;
		pthread_mutex_lock(&sf->io_lock);
	}
	if (stage_grow_locked(so->sh, so->st->guest, sf, offset + count) < 0)
		goto err;
	for (size_t pos = 0; pos < count;) {
		bool zero;
		size_t n =
		    run_length(buf ? buf + pos : NULL, count - pos, &zero);

		if (zero) {
			if (stage_overlaps_written(&sf->written, offset + pos,
						   n) &&
			    endpoint_zero(sf->ep, n, offset + pos) < 0)
				goto err;
		} else if (endpoint_pwrite(sf->ep, buf + pos, n, offset + pos) <
			       0 ||
			   extent_map_add(&sf->written, offset + pos, n,
					  false) < 0) {
			goto err;
		}
		pos += n;
	}
	if (offset + count > sf->size)
		sf->size = offset + count;
	stage_publish_size(sf);
	r = (ssize_t)count;
	pthread_mutex_unlock(&sf->io_lock);
	return r;
err:
	if (!sf->werrno)
		sf->werrno = error_errno();
	pthread_mutex_unlock(&sf->io_lock);
	return -1;
}

void stage_publish_size(struct staged_file *sf)
{
	__atomic_store_n(&sf->seen_size, sf->size, __ATOMIC_RELAXED);
	__atomic_store_n(&sf->seen_allocated, sf->written.known,
			 __ATOMIC_RELAXED);
}

ssize_t stage_write(struct stage_open *so, const void *buf, size_t count,
		    uint64_t offset)
{
	if (so->sf->is_xml) {
		if (!so->write) {
			error_set(EBADF, "not open for writing");
			return -1;
		}
		return stage_xml_write(so, buf, count, offset);
	}
	return stage_disk_write(so, buf, count, offset);
}

int stage_write_zeros(struct stage_open *so, uint64_t count, uint64_t offset)
{
	if (so->sf->is_xml) {
		error_set(EINVAL, "domain.xml has no holes");
		return -1;
	}
	while (count > 0) {
		size_t n = count > (1u << 30) ? (1u << 30) : (size_t)count;

		if (stage_disk_write(so, NULL, n, offset) < 0)
			return -1;
		offset += n;
		count -= n;
	}
	return 0;
}

bool stage_is_writer(const struct stage_open *so)
{
	return so->write;
}

bool stage_is_disk(const struct stage_open *so)
{
	return !so->sf->is_xml;
}

int stage_fsync(struct stage_open *so)
{
	struct staged_file *sf = so->sf;
	int r = 0;

	if (sf->is_xml)
		return 0;
	pthread_mutex_lock(&sf->io_lock);
	if (sf->ep)
		r = endpoint_flush(sf->ep);
	pthread_mutex_unlock(&sf->io_lock);
	return r;
}
