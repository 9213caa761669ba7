/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The copy engine: COPY_SLOTS buffers of COPY_CHUNK bytes, each either
 * free, being read (spread over the source connections in turn), or read
 * and waiting to be handed to the sink.  Extents are walked from block
 * status (asked ahead by the endpoint); zero extents go to the sink as
 * zero ranges at once.  The caller's thread does everything but complete
 * reads, which the endpoints' threads report through slot->state.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/clock.h"
#include "../common/error.h"
#include "copy.h"

#define COPY_SLOTS 16
#define COPY_CHUNK (2u << 20)

enum slot_state { SLOT_FREE, SLOT_READING, SLOT_READ };

struct engine;

struct slot {
	struct engine *e;
	enum slot_state state;
	int err;
	uint64_t offset; /* in the source */
	size_t len;
	char *buf;
};

struct engine {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct slot slots[COPY_SLOTS];
	unsigned reading;
};

/* Runs in an endpoint's thread. */
static void read_done(void *opaque, int err)
{
	struct slot *s = opaque;
	struct engine *e = s->e;

	pthread_mutex_lock(&e->lock);
	s->err = err;
	s->state = SLOT_READ;
	e->reading--;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

/* Keep the first failure's errno and message. */
static void note_failure(bool *failed, int *err, char *msg, size_t len)
{
	if (*failed)
		return;
	*failed = true;
	*err = error_errno();
	snprintf(msg, len, "%s", error_msg());
}

static struct slot *free_slot(struct engine *e)
{
	for (int i = 0; i < COPY_SLOTS; i++)
		if (e->slots[i].state == SLOT_FREE)
			return &e->slots[i];
	return NULL;
}

int64_t copy_range(struct endpoint *const *src, int nsrc, uint64_t src_off,
		   const struct copy_sink *sink, uint64_t dst_off, uint64_t len,
		   int max_ms)
{
	uint64_t size = endpoint_size(src[0]), cursor = src_off, end;
	int64_t deadline = now_ms() + max_ms;
	struct engine e = { .reading = 0 };
	bool failed = false;
	int next = 0, err = 0;
	char msg[512] = "";

	error_clear();
	if (src_off >= size)
		return 0;
	end = len > size - src_off ? size : src_off + len;
	pthread_mutex_init(&e.lock, NULL);
	pthread_cond_init(&e.cond, NULL);
	for (int i = 0; i < COPY_SLOTS; i++)
		e.slots[i].e = &e;
	for (;;) {
		struct slot *s;
		bool issue, any;

		/* Hand what was read to the sink first: under a bandwidth
		 * limit both sides then wait their turns at the same time,
		 * rather than all reads and then all writes. */
		for (int i = 0; i < COPY_SLOTS; i++) {
			struct slot *r = &e.slots[i];
			bool read;

			pthread_mutex_lock(&e.lock);
			read = r->state == SLOT_READ;
			pthread_mutex_unlock(&e.lock);
			if (!read)
				continue;
			if (!failed && r->err) {
				error_set(r->err, "%s: read at %llu: %s",
					  endpoint_desc(src[0]),
					  (unsigned long long)r->offset,
					  strerror(r->err));
				note_failure(&failed, &err, msg, sizeof msg);
			} else if (!failed &&
				   sink->write(sink->opaque, r->buf, r->len,
					       dst_off +
						   (r->offset - src_off)) < 0) {
				note_failure(&failed, &err, msg, sizeof msg);
			}
			pthread_mutex_lock(&e.lock);
			r->state = SLOT_FREE;
			pthread_mutex_unlock(&e.lock);
		}

		/* Then start one read, or pass on a zero extent. */
		issue = !failed && cursor < end &&
			(cursor == src_off || now_ms() < deadline);
		pthread_mutex_lock(&e.lock);
		s = issue ? free_slot(&e) : NULL;
		pthread_mutex_unlock(&e.lock);
		if (s) {
			uint64_t n;
			bool zero;

			if (endpoint_extent(src[0], cursor, end - cursor, &n,
					    &zero) < 0) {
				note_failure(&failed, &err, msg, sizeof msg);
				continue;
			}
			if (zero) {
				if (sink->zero(sink->opaque, n,
					       dst_off + (cursor - src_off)) <
				    0)
					note_failure(&failed, &err, msg,
						     sizeof msg);
				else
					cursor += n;
				continue;
			}
			if (!s->buf && !(s->buf = malloc(COPY_CHUNK))) {
				error_set(ENOMEM, "out of memory");
				note_failure(&failed, &err, msg, sizeof msg);
				continue;
			}
			s->offset = cursor;
			s->len = n > COPY_CHUNK ? COPY_CHUNK : (size_t)n;
			s->err = 0;
			pthread_mutex_lock(&e.lock);
			s->state = SLOT_READING;
			e.reading++;
			pthread_mutex_unlock(&e.lock);
			if (endpoint_aio_pread(src[next], s->buf, s->len,
					       s->offset, read_done, s) < 0) {
				pthread_mutex_lock(&e.lock);
				s->state = SLOT_FREE;
				e.reading--;
				pthread_mutex_unlock(&e.lock);
				note_failure(&failed, &err, msg, sizeof msg);
				continue;
			}
			next = (next + 1) % nsrc;
			cursor += s->len;
			continue;
		}

		/* Nothing to start: wait for a read to end, or finish. */
		pthread_mutex_lock(&e.lock);
		for (;;) {
			any = false;
			for (int i = 0; i < COPY_SLOTS; i++)
				any |= e.slots[i].state == SLOT_READ;
			if (any || e.reading == 0)
				break;
			pthread_cond_wait(&e.cond, &e.lock);
		}
		pthread_mutex_unlock(&e.lock);
		if (!any && !issue)
			break;
	}
	for (int i = 0; i < COPY_SLOTS; i++)
		free(e.slots[i].buf);
	pthread_cond_destroy(&e.cond);
	pthread_mutex_destroy(&e.lock);
	if (failed) {
		error_set(err ? err : EIO, "%s", msg);
		return -1;
	}
	return (int64_t)(cursor - src_off);
}
