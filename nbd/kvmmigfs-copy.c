/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kvmmigfs-copy: the direct path.  Run by kvmmigfs on a target host
 * (through its shell), it copies a range of a source host's disk into a
 * volume of this host with the copy engine (nbd/copy.h): the source is
 * served by nbdkit on the source host, reached with the command the
 * hosts file gives for it (its "reach" key, e.g. ssh root@hosta), and the
 * volume by nbdkit here.  So the data goes host to host, never through the
 * machine that mounts.
 *
 *   kvmmigfs-copy [-R WORD]... [-f FORMAT] [-F FORMAT] [-z FILTER] [-s]
 *                 [-Z] [-c CONNS] [-r RATE] [-t MS] -o OFFSET -l LENGTH
 *                 SOURCE TARGET
 *
 *   -R WORD     one word of the command that reaches the source host (in
 *               order; none: the source is on this host)
 *   -f FORMAT   the source's format (default raw)
 *   -F FORMAT   the target's format (default raw)
 *   -z FILTER   the zero-scan nbdkit filter on the source host
 *   -s          the source may be open in a running guest
 *   -Z          write zeros over the source's zero extents (the target
 *               range may hold data); default: leave them alone
 *   -c CONNS    connections to the source (default 2)
 *   -r RATE     at most RATE bytes per second (nbd/rate.h syntax)
 *   -t MS       a host silent this long fails the copy (default 10000)
 *   -o OFFSET, -l LENGTH   the range, the same in the source and target
 *
 * Prints "data OFFSET LENGTH" for the ranges it wrote data to (zeros are
 * not data), then "done N" once the first N bytes of the range are
 * copied, about four times a second; at the end "end N", once they are
 * flushed to the target.  Exit status: 0 done; 2 bad usage; 3 the source
 * host could not be reached; 16 + errno for any other failure (ENOSPC,
 * EIO, ...); each failure with one line on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../common/strvec.h"
#include "copy.h"
#include "endpoint.h"
#include "rate.h"

#define MAX_CONNS 8

/* Data written and not reported yet: one range (writes come in order). */
static uint64_t pend_off, pend_len;

static int report_data(void)
{
	if (pend_len && printf("data %llu %llu\n", (unsigned long long)pend_off,
			       (unsigned long long)pend_len) < 0)
		return -1;
	pend_len = 0;
	return 0;
}

static int sink_write(void *opaque, const void *buf, size_t count,
		      uint64_t offset)
{
	if (endpoint_pwrite(opaque, buf, count, offset) < 0)
		return -1;
	if (pend_len && pend_off + pend_len == offset) {
		pend_len += count;
		return 0;
	}
	if (report_data() < 0) {
		error_set(EPIPE, "nobody reads the progress any more");
		return -1;
	}
	pend_off = offset;
	pend_len = count;
	return 0;
}

static int sink_zero(void *opaque, uint64_t count, uint64_t offset)
{
	return endpoint_zero(opaque, count, offset);
}

static int sink_skip(void *opaque, uint64_t count, uint64_t offset)
{
	(void)opaque;
	(void)count;
	(void)offset;
	return 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: kvmmigfs-copy [-R WORD]... [-f FORMAT] [-F FORMAT] "
		"[-z FILTER] [-s] [-Z] [-c CONNS] [-r RATE] [-t MS] "
		"-o OFFSET -l LENGTH SOURCE TARGET\n");
	return 2;
}

static int number(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || end == s || *end || *s == '-' ? -1 : 0;
}

int main(int argc, char *argv[])
{
	struct strvec reach = STRVEC_INIT;
	const char *sfmt = "raw", *tfmt = "raw", *filter = NULL;
	bool shared = false, zero = false, have_off = false, have_len = false;
	uint64_t conns = 2, bps = 0, timeout = 10000, off = 0, len = 0,
		 done = 0;
	struct endpoint *src[MAX_CONNS] = { NULL }, *dst = NULL;
	struct rate *rate = NULL;
	struct copy_sink sink;
	int opt, nsrc = 0, rc = 0;

	/* A dead reader of our progress ends us (EPIPE, then exit). */
	signal(SIGPIPE, SIG_IGN);
	while ((opt = getopt(argc, argv, "R:f:F:z:sZc:r:t:o:l:")) != -1) {
		switch (opt) {
		case 'R':
			if (strvec_push(&reach, optarg) < 0)
				goto fail;
			break;
		case 'f':
			sfmt = optarg;
			break;
		case 'F':
			tfmt = optarg;
			break;
		case 'z':
			filter = optarg;
			break;
		case 's':
			shared = true;
			break;
		case 'Z':
			zero = true;
			break;
		case 'c':
			if (number(optarg, &conns) < 0 || conns < 1 ||
			    conns > MAX_CONNS) {
				rc = usage();
				goto out;
			}
			break;
		case 'r':
			if (rate_parse(optarg, &bps) < 0) {
				fprintf(stderr, "kvmmigfs-copy: %s\n",
					error_msg());
				rc = 2;
				goto out;
			}
			break;
		case 't':
			if (number(optarg, &timeout) < 0 || timeout < 1 ||
			    timeout > 3600000) {
				rc = usage();
				goto out;
			}
			break;
		case 'o':
			if (number(optarg, &off) < 0) {
				rc = usage();
				goto out;
			}
			have_off = true;
			break;
		case 'l':
			if (number(optarg, &len) < 0) {
				rc = usage();
				goto out;
			}
			have_len = true;
			break;
		default: {
			rc = usage();
			goto out;
		}
		}
	}
	if (argc - optind != 2 || !have_off || !have_len) {
		rc = usage();
		goto out;
	}
	if (bps && !(rate = rate_new(bps)))
		goto fail;

	for (; nsrc < (int)conns; nsrc++) {
		struct endpoint_spec spec = {
			.shell = reach.n ? reach.v : NULL,
			.path = argv[optind],
			.format = sfmt,
			.readonly = true,
			.shared = shared,
			.filter = filter,
			.timeout_ms = (int)timeout,
			.rate = rate,
		};

		src[nsrc] = endpoint_open(&spec);
		if (!src[nsrc]) {
			if (nsrc > 0) /* fewer streams still copy */
				break;
			fprintf(stderr, "kvmmigfs-copy: %s\n", error_msg());
			rc = 3;
			goto out;
		}
	}
	{
		struct endpoint_spec spec = {
			.path = argv[optind + 1],
			.format = tfmt,
			.timeout_ms = (int)timeout,
		};

		dst = endpoint_open(&spec);
		if (!dst)
			goto fail;
	}
	if (off > endpoint_size(dst) || len > endpoint_size(dst) - off) {
		error_set(EFBIG, "%s: the range ends past its %llu bytes",
			  argv[optind + 1],
			  (unsigned long long)endpoint_size(dst));
		goto fail;
	}
	sink =
	    (struct copy_sink){ dst, sink_write, zero ? sink_zero : sink_skip };
	while (done < len) {
		int64_t n = copy_range(src, nsrc, off + done, &sink, off + done,
				       len - done, 250);

		if (n < 0)
			goto fail;
		if (n == 0)
			break; /* the end of the source */
		done += (uint64_t)n;
		if (report_data() < 0 ||
		    printf("done %llu\n", (unsigned long long)done) < 0 ||
		    fflush(stdout) != 0) {
			error_set(EPIPE, "nobody reads the progress any more");
			goto fail;
		}
	}
	if (endpoint_flush(dst) < 0)
		goto fail;
	if (printf("end %llu\n", (unsigned long long)done) < 0 ||
	    fflush(stdout) != 0) {
		error_set(EPIPE, "nobody reads the progress any more");
		goto fail;
	}
	goto out;
fail:
	fprintf(stderr, "kvmmigfs-copy: %s\n", error_msg());
	rc = error_errno() > 0 && error_errno() < 200 ? 16 + error_errno()
						      : 16 + EIO;
out:
	/* Everything freed, so that a leak checker has nothing to say. */
	endpoint_close(dst);
	for (int i = 0; i < nsrc; i++)
		endpoint_close(src[i]);
	rate_free(rate);
	strvec_release(&reach);
	return rc;
}
