/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reads: synchronous (endpoint_pread, answering zero extents locally and
 * reading ahead for a sequential reader) and asynchronous
 * (endpoint_aio_pread, for the copy engine).  Thread model and lock order:
 * endpoint-int.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "../common/error.h"
#include "endpoint-int.h"

/* Synchronous read of [offset, offset+count) into buf; ep->lock held,
 * dropped while issuing. */
static int read_now(struct endpoint *ep, void *buf, size_t count,
		    uint64_t offset)
{
	struct req r = { .ep = ep };

	if (ep->rate) { /* its turn, before it counts as in flight */
		pthread_mutex_unlock(&ep->lock);
		rate_wait(ep->rate, count);
		pthread_mutex_lock(&ep->lock);
	}
	ep_begin(ep);
	pthread_mutex_unlock(&ep->lock);
	if (ep_issued(ep,
		      nbd_aio_pread(ep->nbd, buf, count, offset,
				    REQ_COMPLETION(&r), 0),
		      "read") < 0) {
		pthread_mutex_lock(&ep->lock);
		return -1;
	}
	pthread_mutex_lock(&ep->lock);
	return ep_req_wait(ep, &r, "read");
}

/* An asynchronous read of endpoint_aio_pread. */
struct areq {
	struct endpoint *ep;
	void (*cb)(void *opaque, int err);
	void *opaque;
};

static int areq_done(void *opaque, int *error)
{
	struct areq *a = opaque;
	struct endpoint *ep = a->ep;
	int err = *error;

	if (err) {
		pthread_mutex_lock(&ep->lock);
		err = ep_errno(ep, err, EIO);
		pthread_mutex_unlock(&ep->lock);
	}
	a->cb(a->opaque, err);
	pthread_mutex_lock(&ep->lock);
	ep_end(ep);
	pthread_mutex_unlock(&ep->lock);
	free(a);
	return 1;
}

int endpoint_aio_pread(struct endpoint *ep, void *buf, size_t count,
		       uint64_t offset, void (*cb)(void *opaque, int err),
		       void *opaque)
{
	struct areq *a;
	int64_t cookie;

	error_clear();
	if (count > MAX_REQUEST || offset > ep->size ||
	    count > ep->size - offset) {
		error_set(EINVAL, "%s: read beyond the end", ep->desc);
		return -1;
	}
	a = malloc(sizeof *a);
	if (!a) {
		error_set(ENOMEM, "out of memory");
		return -1;
	}
	*a = (struct areq){ ep, cb, opaque };
	rate_wait(ep->rate, count);
	pthread_mutex_lock(&ep->lock);
	if (ep_check_alive(ep, "read") < 0) {
		pthread_mutex_unlock(&ep->lock);
		free(a);
		return -1;
	}
	ep_begin(ep);
	pthread_mutex_unlock(&ep->lock);
	cookie = nbd_aio_pread(
	    ep->nbd, buf, count, offset,
	    (nbd_completion_callback){ .callback = areq_done, .user_data = a },
	    0);
	if (cookie < 0) {
		ep_nbd_error(ep, EIO, "read");
		pthread_mutex_lock(&ep->lock);
		ep_end(ep);
		pthread_mutex_unlock(&ep->lock);
		free(a);
		return -1;
	}
	ep_wake(ep);
	return 0;
}

static int ra_done(void *opaque, int *error)
{
	struct ra_slot *s = opaque;
	struct endpoint *ep = s->ep;

	pthread_mutex_lock(&ep->lock);
	s->err = *error;
	s->state = *error ? RA_FAILED : RA_DONE;
	ep_end(ep);
	pthread_mutex_unlock(&ep->lock);
	return 1;
}

/* The slot holding offset, or NULL; ep->lock held. */
static struct ra_slot *ra_find(struct endpoint *ep, uint64_t offset)
{
	for (int i = 0; i < RA_SLOTS; i++) {
		struct ra_slot *s = &ep->ra[i];

		if (s->state != RA_EMPTY && offset >= s->offset &&
		    offset < s->offset + s->len)
			return s;
	}
	return NULL;
}

/* A slot free for readahead ahead of a reader at offset; ep->lock held. */
static struct ra_slot *ra_free_slot(struct endpoint *ep, uint64_t offset)
{
	for (int i = 0; i < RA_SLOTS; i++) {
		struct ra_slot *s = &ep->ra[i];

		if (s->state == RA_EMPTY ||
		    (s->state != RA_BUSY && s->offset + s->len <= offset)) {
			if (!s->buf && !(s->buf = malloc(RA_SLOT)))
				return NULL;
			s->state = RA_EMPTY;
			return s;
		}
	}
	return NULL;
}

/* Keep RA_SLOTS requests in flight ahead of a sequential reader that is
 * now at offset, over data extents only; ep->lock held (dropped while
 * issuing).  Failures only stop the readahead. */
static void readahead(struct endpoint *ep, uint64_t offset)
{
	if (ep->ra_pos < offset)
		ep->ra_pos = offset;
	while (ep->ra_pos < ep->size &&
	       ep->ra_pos < offset + (uint64_t)RA_SLOTS * RA_SLOT) {
		const struct extent *e = extent_map_find(&ep->map, ep->ra_pos);
		struct ra_slot *s;
		uint64_t len;
		int64_t cookie;

		if (!e) {
			/* Ask ahead (the host may be scanning for zeros
			 * meanwhile); the next read goes on from here. */
			ep_prefetch_status(ep, ep->ra_pos);
			return;
		}
		if (e->zero) {
			ep->ra_pos = e->offset + e->length;
			continue;
		}
		s = ra_free_slot(ep, offset);
		if (!s)
			return;
		len = e->offset + e->length - ep->ra_pos;
		if (len > RA_SLOT)
			len = RA_SLOT;
		/* Under a bandwidth limit, only as far as the host's time
		 * is free now: the reader is not held up for data ahead. */
		if (!rate_try(ep->rate, (size_t)len))
			return;
		s->state = RA_BUSY;
		s->offset = ep->ra_pos;
		s->len = (size_t)len;
		ep->ra_pos += len;
		ep_begin(ep);
		pthread_mutex_unlock(&ep->lock);
		cookie =
		    nbd_aio_pread(ep->nbd, s->buf, s->len, s->offset,
				  (nbd_completion_callback){
				      .callback = ra_done, .user_data = s },
				  0);
		if (cookie < 0) {
			pthread_mutex_lock(&ep->lock);
			s->state = RA_EMPTY;
			ep_end(ep);
			return;
		}
		ep_wake(ep);
		pthread_mutex_lock(&ep->lock);
	}
}

ssize_t endpoint_pread(struct endpoint *ep, void *buf, size_t count,
		       uint64_t offset)
{
	uint64_t pos = offset, end_;
	bool sequential;
	ssize_t ret = -1;

	error_clear();
	pthread_mutex_lock(&ep->lock);
	if (ep_check_alive(ep, "read") < 0)
		goto out;
	if (offset >= ep->size) {
		ret = 0;
		goto out;
	}
	if (count > ep->size - offset)
		count = ep->size - offset;
	end_ = offset + count;
	/* Sequential: where the last read ended, or only zeros (which
	 * cp seeks over) in between. */
	sequential = offset == ep->ra_expect || ra_find(ep, offset) ||
		     (offset > ep->ra_expect &&
		      extent_map_is_zero(&ep->map, ep->ra_expect,
					 offset - ep->ra_expect));
	while (pos < end_) {
		const struct extent *e = extent_map_find(&ep->map, pos);
		struct ra_slot *s;
		uint64_t n = end_ - pos;

		if (e && e->zero) {
			if (n > e->offset + e->length - pos)
				n = e->offset + e->length - pos;
			memset((char *)buf + (pos - offset), 0, n);
			pos += n;
			continue;
		}
		s = ra_find(ep, pos);
		if (s) {
			while (s->state == RA_BUSY)
				pthread_cond_wait(&ep->cond, &ep->lock);
			if (s->state == RA_FAILED) {
				ep_fail(ep, s->err, "read");
				s->state = RA_EMPTY;
				goto out;
			}
			if (s->state != RA_DONE || pos < s->offset ||
			    pos >= s->offset + s->len)
				continue; /* reused meanwhile: look again */
			if (n > s->offset + s->len - pos)
				n = s->offset + s->len - pos;
			memcpy((char *)buf + (pos - offset),
			       s->buf + (pos - s->offset), n);
			pos += n;
			continue;
		}
		/* Not read ahead: read it now, up to the next slot. */
		for (int i = 0; i < RA_SLOTS; i++) {
			struct ra_slot *t = &ep->ra[i];

			if (t->state != RA_EMPTY && t->offset > pos &&
			    t->offset - pos < n)
				n = t->offset - pos;
		}
		if (e && n > e->offset + e->length - pos)
			n = e->offset + e->length - pos;
		if (n > MAX_REQUEST)
			n = MAX_REQUEST;
		if (read_now(ep, (char *)buf + (pos - offset), n, pos) < 0)
			goto out;
		pos += n;
	}
	ret = (ssize_t)count;
	ep->ra_expect = end_;
	if (sequential)
		readahead(ep, end_);
	else
		ep->ra_pos = end_;
out:
	pthread_mutex_unlock(&ep->lock);
	return ret;
}
