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
#include <zlib.h>

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

/* Written through another descriptor of a handle already closed once: it
 * is a writer again until its next close. */
static void writer_again(struct stage_open *so)
{
	if (!__atomic_load_n(&so->active, __ATOMIC_RELAXED)) {
		pthread_mutex_lock(&so->sh->lock);
		stage_handle_activate(so);
		pthread_mutex_unlock(&so->sh->lock);
	}
}

int stage_resume_begin(struct stage_host *sh, const char *guest,
		       struct staged_file *sf)
{
	struct crc_map m;

	if (HOST_CALL(sh, vol_crc_map, sf->path, sf->fmt, &m) < 0) {
		log_warning("%s/%s/%s: written again from the start: the "
			    "earlier copy's blocks could not be checksummed "
			    "(%s)",
			    sh->host->name, guest, sf->name, error_msg());
		return -1;
	}
	pthread_mutex_lock(&sf->io_lock);
	crc_map_free(&sf->old);
	sf->old = m;
	extent_map_release(&sf->pass);
	extent_map_init(&sf->pass, STAGE_MAX_SIZE);
	sf->skipped = 0;
	sf->resuming = true;
	/* The file starts empty, as O_TRUNC says; the volume keeps its
	 * bytes until they are written again or zeroed at completion. */
	sf->size = 0;
	sf->verified = false;
	stage_publish_size(sf);
	pthread_mutex_unlock(&sf->io_lock);
	log_info("%s/%s/%s: copied again over %llu bytes of an earlier copy: "
		 "blocks that are the same (crc32 computed on the host) are "
		 "not sent again",
		 sh->host->name, guest, sf->name,
		 (unsigned long long)sf->written.known);
	return 0;
}

/* Zero what the earlier copy wrote in [from, to) that this one did not
 * write, zero or find there.  io_lock held. */
static int zero_unconfirmed(struct staged_file *sf, uint64_t to)
{
	for (size_t i = 0; i < sf->written.n; i++) {
		uint64_t at = sf->written.v[i].offset;
		uint64_t end = at + sf->written.v[i].length;

		if (end > to)
			end = to;
		while (at < end) {
			const struct extent *e = extent_map_find(&sf->pass, at);
			uint64_t next = end, n;

			if (e) { /* confirmed up to its end */
				at = e->offset + e->length;
				continue;
			}
			/* Up to the next confirmed range. */
			for (size_t k = 0; k < sf->pass.n; k++)
				if (sf->pass.v[k].offset > at) {
					if (sf->pass.v[k].offset < next)
						next = sf->pass.v[k].offset;
					break;
				}
			n = next - at > (1ULL << 31) ? 1ULL << 31 : next - at;
			if (endpoint_zero(sf->ep, n, at) < 0)
				return -1;
			at += n;
		}
	}
	return 0;
}

int stage_resume_end(struct stage_host *sh, const char *guest,
		     struct staged_file *sf)
{
	if (!sf->resuming)
		return 0;
	if (zero_unconfirmed(sf, sf->capacity > sf->size ? sf->capacity
							 : sf->size) < 0)
		return -1;
	log_info("%s/%s/%s: resumed: %llu bytes were on the host already and "
		 "not sent again",
		 sh->host->name, guest, sf->name,
		 (unsigned long long)sf->skipped);
	sf->resuming = false;
	crc_map_free(&sf->old);
	return 0;
}

/* Write n bytes of data at offset; when resuming, whole blocks the volume
 * holds already (the same CRC) are not sent.  io_lock held. */
static int write_data(struct staged_file *sf, const char *buf, size_t n,
		      uint64_t offset)
{
	size_t pos = 0;

	while (sf->resuming && pos < n) {
		uint64_t at = offset + pos, i = at / CRC_BLOCK;
		size_t len = CRC_BLOCK - at % CRC_BLOCK;

		if (len > n - pos)
			len = n - pos;
		if (at % CRC_BLOCK == 0 && len == CRC_BLOCK &&
		    i < sf->old.nblocks &&
		    crc_block_len(&sf->old, i) == CRC_BLOCK &&
		    crc32(0, (const Bytef *)buf + pos, CRC_BLOCK) ==
			crc_block(&sf->old, i)) {
			sf->skipped += len;
		} else if (endpoint_pwrite(sf->ep, buf + pos, len, at) < 0) {
			return -1;
		}
		if (extent_map_add(&sf->written, at, len, false) < 0 ||
		    extent_map_add(&sf->pass, at, len, false) < 0)
			return -1;
		pos += len;
	}
	if (pos == n)
		return 0;
	if (endpoint_pwrite(sf->ep, buf + pos, n - pos, offset + pos) < 0 ||
	    extent_map_add(&sf->written, offset + pos, n - pos, false) < 0)
		return -1;
	return 0;
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
	writer_again(so);
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
			if (sf->resuming &&
			    extent_map_add(&sf->pass, offset + pos, n, false) <
				0)
				goto err;
		} else if (write_data(sf, buf + pos, n, offset + pos) < 0) {
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
	if (!sf->werrno) {
		sf->werrno = error_errno();
		snprintf(sf->werrmsg, sizeof sf->werrmsg, "%s", error_msg());
	}
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

bool stage_resuming(struct stage_open *so)
{
	bool r;

	pthread_mutex_lock(&so->sf->io_lock);
	r = so->sf->resuming;
	pthread_mutex_unlock(&so->sf->io_lock);
	return r;
}

bool stage_resume_has(struct stage_open *so, uint64_t i, uint32_t crc)
{
	struct staged_file *sf = so->sf;
	bool r;

	pthread_mutex_lock(&sf->io_lock);
	r = sf->resuming && i < sf->old.nblocks &&
	    crc_block_len(&sf->old, i) == CRC_BLOCK &&
	    crc_block(&sf->old, i) == crc;
	pthread_mutex_unlock(&sf->io_lock);
	return r;
}

int stage_resume_confirm(struct stage_open *so, uint64_t offset, uint64_t count)
{
	struct staged_file *sf = so->sf;
	int r = -1;

	if (!so->write) {
		error_set(EBADF, "not open for writing");
		return -1;
	}
	writer_again(so);
	pthread_mutex_lock(&sf->io_lock);
	if (!sf->resuming) {
		error_set(EINVAL, "not resuming");
	} else if (extent_map_add(&sf->written, offset, count, false) == 0 &&
		   extent_map_add(&sf->pass, offset, count, false) == 0) {
		sf->skipped += count;
		if (offset + count > sf->size)
			sf->size = offset + count;
		stage_publish_size(sf);
		r = 0;
	}
	pthread_mutex_unlock(&sf->io_lock);
	return r;
}

uint64_t stage_skipped(const struct stage_open *so)
{
	uint64_t n;

	pthread_mutex_lock(&so->sf->io_lock);
	n = so->sf->skipped;
	pthread_mutex_unlock(&so->sf->io_lock);
	return n;
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

int stage_direct_begin(struct stage_open *so, uint64_t offset, uint64_t count,
		       struct stage_direct *d)
{
	struct staged_file *sf = so->sf;
	int r = -1;

	if (!so->write || sf->is_xml) {
		error_set(EBADF, "not a disk open for writing");
		return -1;
	}
	if (offset > STAGE_MAX_SIZE || count > STAGE_MAX_SIZE - offset) {
		error_set(EFBIG,
			  "disks larger than %llu bytes are not supported",
			  (unsigned long long)STAGE_MAX_SIZE);
		return -1;
	}
	writer_again(so);
	pthread_mutex_lock(&sf->io_lock);
	if (sf->resuming) {
		error_set(EBUSY, "the disk is being resumed");
	} else if (stage_grow_locked(so->sh, so->st->guest, sf,
				     offset + count) == 0 &&
		   (!sf->ep || endpoint_flush(sf->ep) == 0)) {
		/* Our server lets go of the volume: one writer at a time
		 * (qemu-nbd locks a qcow2 image).  Later writes of ours
		 * start it again. */
		endpoint_close(sf->ep);
		sf->ep = NULL;
		d->path = sf->path;
		d->format = sf->fmt;
		d->dirty = stage_overlaps_written(&sf->written, offset, count);
		r = 0;
	}
	pthread_mutex_unlock(&sf->io_lock);
	return r;
}

int stage_direct_data(struct stage_open *so, uint64_t offset, uint64_t count)
{
	struct staged_file *sf = so->sf;
	int r;

	pthread_mutex_lock(&sf->io_lock);
	r = extent_map_add(&sf->written, offset, count, false);
	if (r == 0 && offset + count > sf->size)
		sf->size = offset + count;
	stage_publish_size(sf);
	pthread_mutex_unlock(&sf->io_lock);
	return r;
}

void stage_direct_upto(struct stage_open *so, uint64_t end)
{
	struct staged_file *sf = so->sf;

	pthread_mutex_lock(&sf->io_lock);
	if (end > sf->size)
		sf->size = end;
	stage_publish_size(sf);
	pthread_mutex_unlock(&sf->io_lock);
}

void stage_direct_failed(struct stage_open *so, int err, const char *msg)
{
	struct staged_file *sf = so->sf;

	pthread_mutex_lock(&sf->io_lock);
	if (!sf->werrno) {
		sf->werrno = err;
		snprintf(sf->werrmsg, sizeof sf->werrmsg, "%s", msg);
	}
	pthread_mutex_unlock(&sf->io_lock);
}
