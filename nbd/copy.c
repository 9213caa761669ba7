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
		uint64_t pos = src_off + done, n;
		bool zero;

		if (endpoint_extent(src, pos, len - done, &n, &zero) < 0)
			goto err;
		if (zero) {
			if (sink->zero(sink->opaque, n, dst_off + done) < 0)
				goto err;
			done += n;
			continue;
		}
		if (!buf && !(buf = malloc(COPY_BUF))) {
			error_set(ENOMEM, "out of memory");
			goto err;
		}
		while (n > 0 && (done == 0 || now_ms() < deadline)) {
			size_t m = n > COPY_BUF ? COPY_BUF : (size_t)n;
			ssize_t r = endpoint_pread(src, buf, m, src_off + done);

			if (r < 0)
				goto err;
			if ((size_t)r != m) {
				error_set(EIO, "short read from the source");
				goto err;
			}
			if (sink->write(sink->opaque, buf, m, dst_off + done) <
			    0)
				goto err;
			done += m;
			n -= m;
		}
	}
	free(buf);
	return (int64_t)done;
err:
	free(buf);
	return -1;
}
