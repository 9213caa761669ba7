/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/error.h"
#include "extents.h"

void extent_map_init(struct extent_map *m, uint64_t size)
{
	memset(m, 0, sizeof *m);
	m->size = size;
}

void extent_map_release(struct extent_map *m)
{
	free(m->v);
	m->v = NULL;
	m->n = m->cap = 0;
	m->known = 0;
}

/* Index of the first extent ending after offset (binary search). */
static size_t first_after(const struct extent_map *m, uint64_t offset)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->v[mid].offset + m->v[mid].length <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct extent *extent_map_find(const struct extent_map *m,
				     uint64_t offset)
{
	size_t i = first_after(m, offset);

	if (i < m->n && m->v[i].offset <= offset)
		return &m->v[i];
	return NULL;
}

static int insert_at(struct extent_map *m, size_t i, struct extent e)
{
	/* Merge with a touching neighbour of the same kind. */
	if (i > 0 && m->v[i - 1].zero == e.zero &&
	    m->v[i - 1].offset + m->v[i - 1].length == e.offset) {
		m->v[i - 1].length += e.length;
		if (i < m->n && m->v[i].zero == e.zero &&
		    m->v[i - 1].offset + m->v[i - 1].length == m->v[i].offset) {
			m->v[i - 1].length += m->v[i].length;
			memmove(&m->v[i], &m->v[i + 1],
				(m->n - i - 1) * sizeof *m->v);
			m->n--;
		}
		return 0;
	}
	if (i < m->n && m->v[i].zero == e.zero &&
	    e.offset + e.length == m->v[i].offset) {
		m->v[i].offset = e.offset;
		m->v[i].length += e.length;
		return 0;
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		struct extent *v = realloc(m->v, cap * sizeof *v);

		if (!v) {
			error_set(ENOMEM, "out of memory");
			return -1;
		}
		m->v = v;
		m->cap = cap;
	}
	memmove(&m->v[i + 1], &m->v[i], (m->n - i) * sizeof *m->v);
	m->v[i] = e;
	m->n++;
	return 0;
}

int extent_map_add(struct extent_map *m, uint64_t offset, uint64_t length,
		   bool zero)
{
	uint64_t end;

	if (offset >= m->size || length == 0)
		return 0;
	end = length > m->size - offset ? m->size : offset + length;
	/* Insert the gaps of [offset, end) not yet known, left to right. */
	while (offset < end) {
		size_t i = first_after(m, offset);
		uint64_t gap_end = end;

		if (i < m->n && m->v[i].offset <= offset) {
			offset = m->v[i].offset + m->v[i].length;
			continue;
		}
		if (i < m->n && m->v[i].offset < gap_end)
			gap_end = m->v[i].offset;
		if (insert_at(
			m, i,
			(struct extent){ offset, gap_end - offset, zero }) < 0)
			return -1;
		m->known += gap_end - offset;
		offset = gap_end;
	}
	return 0;
}

bool extent_map_is_zero(const struct extent_map *m, uint64_t offset,
			uint64_t length)
{
	uint64_t end =
	    length > UINT64_MAX - offset ? UINT64_MAX : offset + length;

	while (offset < end) {
		const struct extent *e = extent_map_find(m, offset);

		if (!e || !e->zero)
			return false;
		offset = e->offset + e->length;
	}
	return true;
}

int64_t extent_map_seek(const struct extent_map *m, int64_t offset, int whence,
			uint64_t *missing)
{
	uint64_t pos;

	if (offset < 0 || (whence != SEEK_DATA && whence != SEEK_HOLE))
		return -EINVAL;
	if ((uint64_t)offset >= m->size)
		return -ENXIO;
	for (pos = (uint64_t)offset; pos < m->size;) {
		const struct extent *e = extent_map_find(m, pos);

		if (!e) {
			*missing = pos;
			return -EAGAIN;
		}
		if ((whence == SEEK_DATA) == !e->zero)
			return (int64_t)pos;
		pos = e->offset + e->length;
	}
	return whence == SEEK_DATA ? -ENXIO : (int64_t)m->size;
}
