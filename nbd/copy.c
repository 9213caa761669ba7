/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "copy.h"
#include "error.h"

/* Data is read and handed to the sink this much at a time. */
#define COPY_BUF (4u << 20)

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t copy_range(struct endpoint *src, uint64_t src_off,
		   const struct copy_sink *sink, uint64_t dst_off, uint64_t len,
		   int max_ms)
{
	uint64_t size = endpoint_size(src), done = 0;
	int64_t deadline = now_ms() + max_ms;
	char *buf = NULL;

	if (src_off >= size)
		return 0;
	if (len > size - src_off)
		len = size - src_off;
	while (done < len && (done == 0 || now_ms() < deadline)) {
		uint64_t pos = src_off + done, end = src_off + len;
		int64_t data = endpoint_seek(src, (int64_t)pos, SEEK_DATA),
			hole;

		if (data < 0 && error_errno() != ENXIO)
			goto err;
		if (data < 0 || (uint64_t)data >= end)
			data = (int64_t)end; /* zeros up to the end */
		if ((uint64_t)data > pos) {
			if (sink->zero(sink->opaque, (uint64_t)data - pos,
				       dst_off + done) < 0)
				goto err;
			done += (uint64_t)data - pos;
			continue;
		}
		hole = endpoint_seek(src, (int64_t)pos, SEEK_HOLE);
		if (hole < 0)
			goto err;
		if ((uint64_t)hole > end)
			hole = (int64_t)end;
		if (!buf && !(buf = malloc(COPY_BUF))) {
			error_set(ENOMEM, "out of memory");
			goto err;
		}
		while (pos < (uint64_t)hole &&
		       (done == 0 || now_ms() < deadline)) {
			size_t n = (uint64_t)hole - pos > COPY_BUF
				       ? COPY_BUF
				       : (size_t)((uint64_t)hole - pos);
			ssize_t r = endpoint_pread(src, buf, n, pos);

			if (r < 0)
				goto err;
			if ((size_t)r != n) {
				error_set(EIO, "short read from the source");
				goto err;
			}
			if (sink->write(sink->opaque, buf, n, dst_off + done) <
			    0)
				goto err;
			pos += n;
			done += n;
		}
	}
	free(buf);
	return (int64_t)done;
err:
	free(buf);
	return -1;
}
