/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Staging, volume sizing, growing, space checks, truncation.
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

/* Room a new volume gets at first (see STAGE_MAX_SIZE). */
static uint64_t initial_capacity(const char *fmt)
{
	return strcmp(fmt, "raw") == 0 ? STAGE_MAX_SIZE : 1ULL << 30;
}

/* Does the pool hold block volumes?  Then sf is one, and raw: a logical
 * volume holds the guest's bytes, not an image format, so a disk of
 * another format (vdb.qcow2) is stored raw, in volume GUEST-DEV.raw; its
 * file keeps the name its writer gave it until the guest is defined, then
 * lists as DEV.raw.  Stage lock held. */
int stage_block_target(struct stage_host *sh, const char *guest,
		       struct staged_file *sf)
{
	int kind = HOST_CALL(sh, pool_kind);
	char *fmt, *volume = NULL, *stored = NULL;

	if (kind < 0)
		return -1;
	sf->block = kind == POOL_BLOCKS;
	if (!sf->block || strcmp(sf->fmt, "raw") == 0)
		return 0;
	fmt = strdup("raw");
	if (asprintf(&stored, "%s.raw", sf->dev) < 0)
		stored = NULL;
	if (stored && asprintf(&volume, "%s-%s", guest, stored) < 0)
		volume = NULL;
	if (!fmt || !stored || !volume) {
		free(fmt);
		free(stored);
		free(volume);
		error_set(ENOMEM, "out of memory");
		return -1;
	}
	log_info("%s/%s/%s: pool %s holds block devices, raw data only: the "
		 "disk is stored raw (%s, not %s), in volume %s",
		 sh->host->name, guest, sf->name, sh->host->pool, fmt, sf->fmt,
		 volume);
	free(sf->fmt);
	free(sf->volume);
	free(sf->stored);
	sf->fmt = fmt;
	sf->volume = volume;
	sf->stored = stored;
	return 0;
}

/* The capacity a new volume starts with.  A block volume takes its space
 * at once: it starts at the disk's size where the staged domain.xml says
 * it, else at 1 GiB, and grows as writes need.  Stage lock held. */
uint64_t stage_first_capacity(struct stage *st, struct staged_file *sf)
{
	struct staged_file *x = stage_find_file(st, XML_NAME);
	unsigned long long size;

	if (!sf->block)
		return initial_capacity(sf->fmt);
	if (x && x->xml_ok && x->xml &&
	    domxml_disk_size(x->xml, x->xml_len, sf->dev, &size, NULL) == 1 &&
	    size > 0 && size <= STAGE_MAX_SIZE)
		return (size + 511) / 512 * 512;
	return 1ULL << 30;
}

/* The size a volume of fmt is cut to for a disk of size bytes. */
uint64_t stage_final_capacity(const char *fmt, uint64_t size)
{
	return strcmp(fmt, "raw") == 0 ? size : (size + 511) / 512 * 512;
}

/* Start the NBD server on the disk's volume if it is not running.
 * io_lock held. */
int stage_connect_locked(struct stage_host *sh, const char *guest,
			 struct staged_file *sf)
{
	char desc[600];
	struct endpoint_spec spec = {
		.path = sf->path,
		.format = sf->fmt,
		.readonly = false,
		.filter = sh->opt.filter,
		.desc = desc,
		.timeout_ms = sh->opt.timeout_ms,
	};

	if (sf->ep)
		return 0;
	snprintf(desc, sizeof desc, "%s/%s/%s", sh->host->name, guest,
		 sf->final);
	sf->ep = HOST_CALL(sh, vol_open, &spec);
	if (!sf->ep)
		return -1;
	if (endpoint_size(sf->ep) < sf->capacity) {
		endpoint_close(sf->ep);
		sf->ep = NULL;
		error_set(EIO, "%s: the volume is smaller than asked", desc);
		return -1;
	}
	return 0;
}

/* Set the volume's size (a block volume: whole extents, at least size).
 * The volume is ours and its server stopped. */
int stage_volume_resize(struct stage_host *sh, struct staged_file *sf,
			uint64_t size)
{
	return HOST_CALL(sh, vol_resize, sf->volume, sf->path, sf->block, size);
}

/* Grow the volume to hold `needed` bytes: stop its server, resize, start
 * it again.  io_lock held. */
int stage_grow_locked(struct stage_host *sh, const char *guest,
		      struct staged_file *sf, uint64_t needed)
{
	uint64_t cap = sf->capacity * 2;

	if (needed <= sf->capacity)
		return 0;
	if (cap < needed)
		cap = (needed + (1ULL << 30) - 1) & ~((1ULL << 30) - 1);
	if (cap > STAGE_MAX_SIZE)
		cap = STAGE_MAX_SIZE;
	if (sf->ep && endpoint_flush(sf->ep) < 0)
		return -1;
	endpoint_close(sf->ep);
	sf->ep = NULL;
	if (stage_volume_resize(sh, sf, cap) < 0) {
		/* A block volume takes its space at once: where doubling
		 * does not fit, what is needed may. */
		uint64_t exact =
		    (needed + (1ULL << 22) - 1) & ~((1ULL << 22) - 1);

		if (!sf->block || error_errno() != ENOSPC || exact >= cap ||
		    stage_volume_resize(sh, sf, exact) < 0)
			return -1;
		cap = exact;
	}
	sf->capacity = cap;
	return stage_connect_locked(sh, guest, sf);
}

int stage_endpoint_open(struct stage_host *sh, struct stage *st,
			struct staged_file *sf)
{
	int r;

	pthread_mutex_lock(&sf->io_lock);
	r = stage_connect_locked(sh, st->guest, sf);
	pthread_mutex_unlock(&sf->io_lock);
	return r;
}

/* A complete disk written again: it is incomplete until closed again. */
void stage_disk_reopen(struct staged_file *sf)
{
	sf->complete = false;
}

/* Before a volume is created for disk dev: when the staged domain.xml
 * (a served one, with kvmmigfs's sizes) says what the disks not yet staged
 * take on their source host, and that is more than the pool has free,
 * refuse with ENOSPC instead of failing half-way.  Allocated zeros count
 * too, though they are not written: a preallocated source may be refused
 * although it would fit; disks copied before domain.xml are not checked.
 * Stage lock held. */
int stage_space_check(struct stage_host *sh, struct stage *st, const char *dev)
{
	struct staged_file *x = stage_find_file(st, XML_NAME);
	struct strvec devs = STRVEC_INIT;
	unsigned long long need = 0, size, alloc;
	uint64_t capacity, available;
	char *gname = NULL;
	size_t n = 0;
	int r = 0, kind;

	if (!x || !x->xml_ok || !x->xml)
		return 0;
	/* A block volume takes the disk's whole size; a file what is
	 * written, at most what the source allocates. */
	kind = HOST_CALL(sh, pool_kind);
	if (kind < 0)
		return -1;
	if (rewrite_check(x->xml, x->xml_len, &devs, &gname) < 0)
		return 0; /* reported where it is defined */
	for (size_t i = 0; i < devs.n; i++) {
		bool staged = false;

		for (size_t j = 0; j < st->n; j++)
			if (st->files[j]->dev &&
			    strcmp(st->files[j]->dev, devs.v[i]) == 0)
				staged = true;
		if ((!staged || strcmp(devs.v[i], dev) == 0) &&
		    domxml_disk_size(x->xml, x->xml_len, devs.v[i], &size,
				     &alloc) == 1 &&
		    (kind == POOL_BLOCKS ? size : alloc)) {
			need += kind == POOL_BLOCKS ? size : alloc;
			n++;
		}
	}
	if (need && HOST_CALL(sh, pool_space, &capacity, &available) == 0 &&
	    need > available) {
		error_set(ENOSPC,
			  "%zu disk%s not copied yet take %llu bytes %s; "
			  "pool %s has %llu bytes free",
			  n, n == 1 ? "" : "s", need,
			  kind == POOL_BLOCKS ? "(their sizes)"
					      : "on the source host",
			  sh->host->pool, (unsigned long long)available);
		r = -1;
	}
	strvec_release(&devs);
	free(gname);
	return r;
}

/* libvirt rounds sizes up to whole sectors; a raw file of another size
 * is cut on the host itself. */
int stage_exact_size(struct stage_host *sh, struct staged_file *sf,
		     uint64_t size)
{
	if (size % 512 == 0 || strcmp(sf->fmt, "raw") != 0 || sf->block)
		return 0;
	return HOST_CALL(sh, vol_truncate, sf->path, size);
}

/* A block volume may hold anything where nothing was written: make every
 * byte of [from, to) outside the written ranges zero, with NBD zero
 * requests (nbdkit turns them into BLKZEROOUT or discard on the host).
 * io_lock held, the server running. */
int stage_zero_unwritten(struct staged_file *sf, uint64_t from, uint64_t to)
{
	uint64_t at = from;

	for (size_t i = 0; i <= sf->written.n && at < to; i++) {
		uint64_t end = i < sf->written.n ? sf->written.v[i].offset : to;

		if (end > to)
			end = to;
		while (at < end) {
			/* One request carries at most 2 GiB. */
			uint64_t n =
			    end - at > (1ULL << 31) ? 1ULL << 31 : end - at;

			if (endpoint_zero(sf->ep, n, at) < 0)
				return -1;
			at += n;
		}
		if (i < sf->written.n) {
			uint64_t w =
			    sf->written.v[i].offset + sf->written.v[i].length;

			if (w > at)
				at = w;
		}
	}
	return endpoint_flush(sf->ep);
}

/* Stage lock held. */
int stage_truncate_locked(struct stage_host *sh, const char *guest,
			  struct staged_file *sf, uint64_t size)
{
	int r = 0;

	if (sf->is_xml) {
		if (size > DOMXML_MAX_SIZE) {
			error_set(EFBIG, "domain.xml larger than %d bytes",
				  DOMXML_MAX_SIZE);
			return -1;
		}
		if (size > sf->xml_len) {
			char *x = realloc(sf->xml, size + 1);

			if (!x) {
				error_set(ENOMEM, "out of memory");
				return -1;
			}
			memset(x + sf->xml_len, 0, size + 1 - sf->xml_len);
			sf->xml = x;
		}
		stage_view_lock(sh);
		sf->xml_len = size;
		stage_view_unlock(sh);
		sf->xml_ok = false;
		return 0;
	}
	if (size > STAGE_MAX_SIZE) {
		error_set(EFBIG,
			  "disks larger than %llu bytes are not supported",
			  (unsigned long long)STAGE_MAX_SIZE);
		return -1;
	}
	pthread_mutex_lock(&sf->io_lock);
	/* Data cut off must not come back if the file grows again. */
	if (size < sf->size &&
	    stage_overlaps_written(&sf->written, size, sf->size - size)) {
		if (sf->ep)
			r = endpoint_zero(sf->ep, sf->size - size, size);
		else
			r = stage_volume_resize(sh, sf, size);
		if (r == 0 && !sf->ep)
			sf->capacity = size;
	}
	if (r == 0) {
		sf->size = size;
		sf->verified = false;
		stage_publish_size(sf);
		/* A complete disk (no server running) is resized now. */
		if (!sf->ep && sf->complete &&
		    stage_final_capacity(sf->fmt, size) != sf->capacity) {
			r = stage_volume_resize(
			    sh, sf, stage_final_capacity(sf->fmt, size));
			if (r == 0)
				sf->capacity =
				    stage_final_capacity(sf->fmt, size);
		} else if (sf->ep) {
			r = stage_grow_locked(sh, guest, sf, size);
		}
	}
	pthread_mutex_unlock(&sf->io_lock);
	return r;
}

int stage_truncate(struct stage_host *sh, const char *guest, const char *name,
		   struct stage_open *so, uint64_t size)
{
	struct staged_file *sf;
	struct stage *st;
	int r = -1;

	pthread_mutex_lock(&sh->lock);
	st = stage_folder_open(sh, guest);
	sf = so ? so->sf : st ? stage_get_file(st, name) : NULL;
	if (so && so->write)
		stage_handle_activate(so);
	if (sf) {
		r = stage_truncate_locked(sh, guest, sf, size);
		stage_view_lock(sh);
		sf->mtime = time(NULL);
		stage_view_unlock(sh);
	}
	pthread_mutex_unlock(&sh->lock);
	return r;
}
