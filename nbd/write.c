/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Writes: written behind (at most WB_MAX bytes in flight, never two writes
 * to the same bytes at once; the first failure is reported by a later
 * call), zero requests and flush, which wait for the writes in flight.
 * Thread model and lock order: endpoint-int.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

#include "../common/error.h"
#include "endpoint-int.h"

static int write_done(void *opaque, int *error)
{
	struct wreq *w = opaque;
	struct endpoint *ep = w->ep;

	pthread_mutex_lock(&ep->lock);
	if (*error && !ep->wb_err) {
		ep->wb_err = *error;
		ep->wb_err_offset = w->offset;
	}
	if (w->prev)
		w->prev->next = w->next;
	else
		ep->writes = w->next;
	if (w->next)
		w->next->prev = w->prev;
	ep->wb_bytes -= w->count;
	ep_end(ep);
	if (w->pooled && ep->wb_nfree < WB_MAX / WB_BUF) {
		w->next = ep->wb_free;
		ep->wb_free = w;
		ep->wb_nfree++;
		w = NULL;
	}
	pthread_mutex_unlock(&ep->lock);
	free(w);
	return 1;
}

/* A request buffer for n bytes, reused where it can be (large enough to
 * come from mmap, small enough to pool).  NULL: ENOMEM. */
static struct wreq *wreq_get(struct endpoint *ep, size_t n)
{
	struct wreq *w = NULL;

	if (n > WB_BUF / 2 && n <= WB_BUF) {
		pthread_mutex_lock(&ep->lock);
		w = ep->wb_free;
		if (w) {
			ep->wb_free = w->next;
			ep->wb_nfree--;
		}
		pthread_mutex_unlock(&ep->lock);
		if (!w && (w = malloc(sizeof *w + WB_BUF)))
			w->pooled = true;
	} else if ((w = malloc(sizeof *w + n))) {
		w->pooled = false;
	}
	return w;
}

void ep_free_write_buffers(struct endpoint *ep)
{
	while (ep->wb_free) {
		struct wreq *w = ep->wb_free;

		ep->wb_free = w->next;
		free(w);
	}
	ep->wb_nfree = 0;
}

/* ep->lock held: a write in flight overlaps [offset, offset+count). */
static bool write_overlaps(struct endpoint *ep, uint64_t offset, size_t count)
{
	for (struct wreq *w = ep->writes; w; w = w->next)
		if (w->offset < offset + count && offset < w->offset + w->count)
			return true;
	return false;
}

/* ep->lock held: fail with the first failed write, if any. */
static int write_error(struct endpoint *ep)
{
	char what[64];

	if (!ep->wb_err)
		return 0;
	snprintf(what, sizeof what, "write at offset %" PRIu64,
		 ep->wb_err_offset);
	ep_fail(ep, ep->wb_err, what);
	return -1;
}

/* ep->lock held: wait until no write is in flight. */
static int drain_writes(struct endpoint *ep)
{
	while (ep->writes)
		pthread_cond_wait(&ep->cond, &ep->lock);
	return write_error(ep);
}

int endpoint_pwrite(struct endpoint *ep, const void *buf, size_t count,
		    uint64_t offset)
{
	size_t done = 0;

	error_clear();
	if (offset > ep->size || count > ep->size - offset) {
		error_set(EFBIG, "%s: write beyond the volume's size",
			  ep->desc);
		return -1;
	}
	while (done < count) {
		size_t n =
		    count - done > MAX_REQUEST ? MAX_REQUEST : count - done;
		uint64_t at = offset + done;
		struct wreq *w = wreq_get(ep, n);
		int64_t cookie;

		if (!w) {
			error_set(ENOMEM, "out of memory");
			return -1;
		}
		w->ep = ep;
		w->offset = at;
		w->count = n;
		w->prev = NULL;
		memcpy(w->data, (const char *)buf + done, n);
		rate_wait(ep->rate, n);
		pthread_mutex_lock(&ep->lock);
		/* NBD may reorder requests in flight: never two writes to
		 * the same bytes at once. */
		while (
		    ep->writes &&
		    (ep->wb_bytes + n > WB_MAX || write_overlaps(ep, at, n)) &&
		    !ep->wb_err)
			pthread_cond_wait(&ep->cond, &ep->lock);
		if (write_error(ep) < 0 || ep_check_alive(ep, "write") < 0) {
			pthread_mutex_unlock(&ep->lock);
			free(w);
			return -1;
		}
		w->next = ep->writes;
		if (w->next)
			w->next->prev = w;
		ep->writes = w;
		ep->wb_bytes += n;
		ep_begin(ep);
		pthread_mutex_unlock(&ep->lock);
		cookie =
		    nbd_aio_pwrite(ep->nbd, w->data, n, at,
				   (nbd_completion_callback){
				       .callback = write_done, .user_data = w },
				   0);
		if (cookie < 0) {
			int e = 0;

			ep_nbd_error(ep, EIO, "write");
			pthread_mutex_lock(&ep->lock);
			e = error_errno();
			if (!ep->wb_err) {
				ep->wb_err = e;
				ep->wb_err_offset = at;
			}
			pthread_mutex_unlock(&ep->lock);
			write_done(w, &e);
			return -1;
		}
		ep_wake(ep);
		done += n;
	}
	return 0;
}

struct range {
	uint64_t offset, count;
};

static int64_t issue_zero(struct endpoint *ep, void *arg,
			  nbd_completion_callback cb)
{
	struct range *r = arg;

	return nbd_aio_zero(ep->nbd, r->count, r->offset, cb, 0);
}

static int64_t issue_flush(struct endpoint *ep, void *arg,
			   nbd_completion_callback cb)
{
	(void)arg;
	return nbd_aio_flush(ep->nbd, cb, 0);
}

int endpoint_zero(struct endpoint *ep, uint64_t count, uint64_t offset)
{
	int r = -1;

	error_clear();
	if (offset > ep->size || count > ep->size - offset) {
		error_set(EFBIG, "%s: zero beyond the volume's size", ep->desc);
		return -1;
	}
	pthread_mutex_lock(&ep->lock);
	if (drain_writes(ep) < 0 || ep_check_alive(ep, "zero") < 0)
		goto out;
	while (count > 0) {
		struct range rg = { offset,
				    count > STATUS_SPAN ? STATUS_SPAN : count };

		if (ep_one_request(ep, "zero", issue_zero, &rg) < 0)
			goto out;
		offset += rg.count;
		count -= rg.count;
	}
	r = 0;
out:
	pthread_mutex_unlock(&ep->lock);
	return r;
}

int endpoint_flush(struct endpoint *ep)
{
	int r = -1;

	error_clear();
	pthread_mutex_lock(&ep->lock);
	if (drain_writes(ep) < 0 || ep_check_alive(ep, "flush") < 0)
		goto out;
	if (ep->can_flush && ep_one_request(ep, "flush", issue_flush, NULL) < 0)
		goto out;
	r = 0;
out:
	pthread_mutex_unlock(&ep->lock);
	return r;
}
