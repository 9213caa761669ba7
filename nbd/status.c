/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block status: the extent map filled from the server's base:allocation
 * answers (asked for when missing, and asked ahead without waiting), and
 * what follows from it: extents for the copy engine and lseek
 * SEEK_DATA/SEEK_HOLE.  Thread model and lock order: endpoint-int.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "../common/error.h"
#include "endpoint-int.h"

struct status_ctx {
	struct endpoint *ep;
	int failed;
};

/* Runs in the dispatcher; takes ep->lock. */
static int status_extent(void *opaque, const char *context, uint64_t offset,
			 uint32_t *entries, size_t nr_entries, int *error)
{
	struct status_ctx *ctx = opaque;
	struct endpoint *ep = ctx->ep;

	(void)error;
	if (strcmp(context, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
		return 0;
	pthread_mutex_lock(&ep->lock);
	for (size_t i = 0; i + 1 < nr_entries; i += 2) {
		bool zero = entries[i + 1] & LIBNBD_STATE_ZERO;

		if (extent_map_add(&ep->map, offset, entries[i], zero) < 0)
			ctx->failed = 1;
		offset += entries[i];
	}
	pthread_mutex_unlock(&ep->lock);
	return 0;
}

struct status_arg {
	struct status_ctx *ctx;
	uint64_t offset, count;
};

static int64_t issue_status(struct endpoint *ep, void *arg,
			    nbd_completion_callback cb)
{
	struct status_arg *a = arg;

	return nbd_aio_block_status(
	    ep->nbd, a->count, a->offset,
	    (nbd_extent_callback){ .callback = status_extent,
				   .user_data = a->ctx },
	    cb, 0);
}

/* Ask the server about the extents from offset on; ep->lock not held. */
int ep_fetch_status(struct endpoint *ep, uint64_t offset)
{
	struct status_ctx ctx = { .ep = ep };
	struct status_arg a = { &ctx, offset, ep->size - offset };
	int r = -1;

	if (a.count > STATUS_SPAN)
		a.count = STATUS_SPAN;
	pthread_mutex_lock(&ep->lock);
	/* A prefetch from at or before offset may answer it: do not make
	 * the host scan the same data twice. */
	while (ep->status_busy && ep->status_at <= offset)
		pthread_cond_wait(&ep->cond, &ep->lock);
	if (extent_map_find(&ep->map, offset)) {
		r = 0;
		goto out;
	}
	if (ep_check_alive(ep, "block status") < 0 ||
	    ep_one_request(ep, "block status", issue_status, &a) < 0)
		goto out;
	if (ctx.failed) {
		error_set(ENOMEM, "out of memory");
		goto out;
	}
	if (!extent_map_find(&ep->map, offset)) {
		error_set(EIO, "%s: server gave no block status at %" PRIu64,
			  ep->desc, offset);
		goto out;
	}
	r = 0;
out:
	pthread_mutex_unlock(&ep->lock);
	return r;
}

struct prefetch {
	struct status_ctx ctx;
	struct endpoint *ep;
};

static int prefetch_done(void *opaque, int *error)
{
	struct prefetch *p = opaque;
	struct endpoint *ep = p->ep;

	(void)error; /* a failed prefetch is asked again, synchronously */
	pthread_mutex_lock(&ep->lock);
	ep->status_busy = false;
	ep_end(ep);
	pthread_mutex_unlock(&ep->lock);
	free(p);
	return 1;
}

/* Ask for block status from offset on without waiting; ep->lock held
 * (dropped while issuing).  At most one in flight. */
void ep_prefetch_status(struct endpoint *ep, uint64_t offset)
{
	struct prefetch *p;
	uint64_t count = ep->size - offset;
	int64_t cookie;

	if (ep->status_busy || !ep->has_status || offset >= ep->size ||
	    ep->dead || ep->timed_out)
		return;
	p = calloc(1, sizeof *p);
	if (!p)
		return;
	p->ep = ep;
	p->ctx.ep = ep;
	if (count > STATUS_SPAN)
		count = STATUS_SPAN;
	ep->status_busy = true;
	ep->status_at = offset;
	ep_begin(ep);
	pthread_mutex_unlock(&ep->lock);
	cookie = nbd_aio_block_status(
	    ep->nbd, count, offset,
	    (nbd_extent_callback){ .callback = status_extent,
				   .user_data = &p->ctx },
	    (nbd_completion_callback){ .callback = prefetch_done,
				       .user_data = p },
	    0);
	pthread_mutex_lock(&ep->lock);
	if (cookie < 0) {
		ep->status_busy = false;
		ep_end(ep);
		free(p);
		return;
	}
	ep_wake(ep);
}

int endpoint_extent(struct endpoint *ep, uint64_t offset, uint64_t max,
		    uint64_t *length, bool *zero)
{
	const struct extent *e;
	uint64_t end_;

	error_clear();
	if (offset >= ep->size) {
		error_set(ENXIO, "%s: extent past the end", ep->desc);
		return -1;
	}
	pthread_mutex_lock(&ep->lock);
	while (!(e = extent_map_find(&ep->map, offset))) {
		pthread_mutex_unlock(&ep->lock);
		if (ep_fetch_status(ep, offset) < 0)
			return -1;
		pthread_mutex_lock(&ep->lock);
	}
	end_ = e->offset + e->length;
	*zero = e->zero;
	*length = end_ - offset < max ? end_ - offset : max;
	/* What follows is asked about while this extent is copied. */
	if (end_ < ep->size && !extent_map_find(&ep->map, end_))
		ep_prefetch_status(ep, end_);
	pthread_mutex_unlock(&ep->lock);
	return 0;
}

int64_t endpoint_seek(struct endpoint *ep, int64_t offset, int whence)
{
	int64_t r;

	error_clear();
	pthread_mutex_lock(&ep->lock);
	if (ep_check_alive(ep, "seek") < 0) {
		pthread_mutex_unlock(&ep->lock);
		return -1;
	}
	for (;;) {
		uint64_t missing = 0;

		r = extent_map_seek(&ep->map, offset, whence, &missing);
		if (r != -EAGAIN)
			break;
		pthread_mutex_unlock(&ep->lock);
		if (ep_fetch_status(ep, missing) < 0)
			return -1;
		pthread_mutex_lock(&ep->lock);
	}
	pthread_mutex_unlock(&ep->lock);
	if (r < 0) {
		error_set((int)-r, "%s: seek: %s", ep->desc, strerror((int)-r));
		return -1;
	}
	return r;
}
