/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The copy engine and the zero-scan filter against a real nbdkit run on
 * this machine (the endpoint's shell is empty: the server is a local
 * child), over a temporary raw image with data, holes and allocated zeros.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/error.h"
#include "../nbd/copy.h"
#include "../common/clock.h"
#include "../nbd/endpoint.h"
#include "../nbd/rate.h"
#include "suites.h"

#define MiB	 (1u << 20)
#define IMG_SIZE (48 * MiB)

static char dir[64], img[128], filter[PATH_MAX];
static unsigned char *want; /* the image's bytes */
static char *saved_path;    /* PATH before failing_nbdkit() */

/* Data at 0-3 MiB and 10-11.5 MiB, allocated zeros at 20-28 MiB, data at
 * 28-29 MiB, a hole up to the end. */
static void make_image(void)
{
	FILE *f;

	saved_path = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	snprintf(dir, sizeof dir, "/tmp/kvmmigfs-check.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(img, sizeof img, "%s/disk.raw", dir);
	want = calloc(1, IMG_SIZE);
	ck_assert_ptr_nonnull(want);
	srand(42);
	for (size_t i = 0; i < 3 * MiB; i++)
		want[i] = (unsigned char)(rand() | 1);
	for (size_t i = 10 * MiB; i < 11 * MiB + MiB / 2; i++)
		want[i] = (unsigned char)(rand() | 1);
	for (size_t i = 28 * MiB; i < 29 * MiB; i++)
		want[i] = (unsigned char)(rand() | 1);
	f = fopen(img, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fwrite(want, 1, 3 * MiB, f), 3 * MiB);
	ck_assert_int_eq(fseek(f, 10 * MiB, SEEK_SET), 0);
	ck_assert_int_eq(fwrite(want + 10 * MiB, 1, MiB + MiB / 2, f),
			 MiB + MiB / 2);
	ck_assert_int_eq(fseek(f, 20 * MiB, SEEK_SET), 0);
	ck_assert_int_eq(fwrite(want + 20 * MiB, 1, 9 * MiB, f), 9 * MiB);
	ck_assert_int_eq(ftruncate(fileno(f), IMG_SIZE), 0);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_ptr_nonnull(
	    realpath("nbd/nbdkit-kvmmigfs-zeroscan-filter.so", filter));
}

static void remove_image(void)
{
	char bin[128];

	snprintf(bin, sizeof bin, "%s/bin/nbdkit", dir);
	unlink(bin);
	snprintf(bin, sizeof bin, "%s/bin", dir);
	rmdir(bin);
	unlink(img);
	rmdir(dir);
	free(want);
	setenv("PATH", saved_path, 1);
	free(saved_path);
}

static struct rate *img_rate; /* the host's limit for open_img */

static struct endpoint *open_img(const char *with_filter)
{
	struct endpoint_spec spec = {
		.rate = img_rate,
		.path = img,
		.format = "raw",
		.readonly = true,
		.filter = with_filter,
		.desc = "local/disk.raw",
		.timeout_ms = 10000,
	};
	struct endpoint *ep = endpoint_open(&spec);

	ck_assert_msg(ep, "endpoint_open: %s", error_msg());
	return ep;
}

/* A sink that fills memory and counts what it was told. */
struct mem_sink {
	unsigned char *buf;
	uint64_t written, zeroed;
	int fail_after; /* writes before failing with ENOSPC; -1 never */
};

static int mem_write(void *opaque, const void *buf, size_t count,
		     uint64_t offset)
{
	struct mem_sink *m = opaque;

	if (m->fail_after == 0) {
		error_set(ENOSPC, "sink full");
		return -1;
	}
	if (m->fail_after > 0)
		m->fail_after--;
	ck_assert_uint_le(offset + count, IMG_SIZE);
	memcpy(m->buf + offset, buf, count);
	m->written += count;
	return 0;
}

static int mem_zero(void *opaque, uint64_t count, uint64_t offset)
{
	struct mem_sink *m = opaque;

	ck_assert_uint_le(offset + count, IMG_SIZE);
	memset(m->buf + offset, 0, count);
	m->zeroed += count;
	return 0;
}

/* Copy the whole image in calls of at most max_ms; returns the sink. */
static struct mem_sink copy_all(struct endpoint *const *eps, int neps,
				int max_ms, int *calls)
{
	struct mem_sink m = { .buf = malloc(IMG_SIZE), .fail_after = -1 };
	struct copy_sink sink = { &m, mem_write, mem_zero };
	uint64_t done = 0;

	ck_assert_ptr_nonnull(m.buf);
	memset(m.buf, 0xAA, IMG_SIZE); /* stale data: holes must be zeroed */
	*calls = 0;
	for (;;) {
		int64_t n = copy_range(eps, neps, done, &sink, done,
				       IMG_SIZE - done, max_ms);

		ck_assert_msg(n >= 0, "copy_range: %s", error_msg());
		(*calls)++;
		if (n == 0)
			break;
		done += (uint64_t)n;
	}
	ck_assert_uint_eq(done, IMG_SIZE);
	return m;
}

START_TEST(copies_data_and_skips_holes)
{
	struct endpoint *ep = open_img(NULL);
	int calls;
	struct mem_sink m = copy_all(&ep, 1, 60000, &calls);

	ck_assert_msg(memcmp(m.buf, want, IMG_SIZE) == 0, "copy differs");
	/* Without the filter the allocated zeros are data: read. */
	ck_assert_uint_eq(m.written, 3 * MiB + MiB + MiB / 2 + 9 * MiB);
	ck_assert_uint_eq(m.written + m.zeroed, IMG_SIZE);
	ck_assert_int_eq(calls, 2); /* everything, then the end */
	endpoint_close(ep);
	free(m.buf);
}
END_TEST

START_TEST(zero_scan_skips_allocated_zeros)
{
	struct endpoint *ep = open_img(filter);
	int calls;
	struct mem_sink m = copy_all(&ep, 1, 60000, &calls);
	uint64_t len;
	bool zero;

	ck_assert_msg(memcmp(m.buf, want, IMG_SIZE) == 0, "copy differs");
	ck_assert_uint_eq(m.written, 3 * MiB + MiB + MiB / 2 + MiB);
	ck_assert_int_eq(endpoint_extent(ep, 20 * MiB, IMG_SIZE, &len, &zero),
			 0);
	ck_assert(zero);
	ck_assert_uint_eq(len, 8 * MiB);
	ck_assert_int_eq(endpoint_seek(ep, 12 * MiB, SEEK_DATA), 28 * MiB);
	endpoint_close(ep);
	free(m.buf);
}
END_TEST

START_TEST(filter_absent_on_the_host)
{
	struct endpoint *ep = open_img("/nonexistent/filter.so");
	uint64_t len;
	bool zero;

	ck_assert_int_eq(endpoint_extent(ep, 20 * MiB, IMG_SIZE, &len, &zero),
			 0);
	ck_assert(!zero); /* plain allocation: data */
	endpoint_close(ep);
}
END_TEST

START_TEST(slices_add_up)
{
	struct endpoint *ep = open_img(filter);
	int calls;
	/* 0 ms: every call stops after its first request. */
	struct mem_sink m = copy_all(&ep, 1, 0, &calls);

	ck_assert_msg(memcmp(m.buf, want, IMG_SIZE) == 0, "copy differs");
	ck_assert_int_gt(calls, 4);
	endpoint_close(ep);
	free(m.buf);
}
END_TEST

START_TEST(several_connections)
{
	struct endpoint *eps[3] = { open_img(filter), open_img(filter),
				    open_img(filter) };
	int calls;
	struct mem_sink m = copy_all(eps, 3, 60000, &calls);

	ck_assert_msg(memcmp(m.buf, want, IMG_SIZE) == 0, "copy differs");
	ck_assert_uint_eq(m.written, 3 * MiB + MiB + MiB / 2 + MiB);
	for (int i = 0; i < 3; i++)
		endpoint_close(eps[i]);
	free(m.buf);
}
END_TEST

START_TEST(sink_error_fails_the_copy)
{
	struct endpoint *ep = open_img(NULL);
	struct mem_sink m = { .buf = malloc(IMG_SIZE), .fail_after = 1 };
	struct copy_sink sink = { &m, mem_write, mem_zero };

	ck_assert_int_eq(copy_range(&ep, 1, 0, &sink, 0, IMG_SIZE, 60000), -1);
	ck_assert_int_eq(error_errno(), ENOSPC);
	endpoint_close(ep);
	free(m.buf);
}
END_TEST

/* nbdkit found first on PATH: the real one with the error filter. */
static void failing_nbdkit(const char *params)
{
	char bin[128], path[PATH_MAX + 160];
	FILE *f;

	snprintf(bin, sizeof bin, "%s/bin", dir);
	mkdir(bin, 0755);
	snprintf(bin, sizeof bin, "%s/bin/nbdkit", dir);
	f = fopen(bin, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "#!/bin/sh\nexec /usr/bin/nbdkit --filter=error \"$@\" %s\n",
		params);
	fclose(f);
	chmod(bin, 0755);
	snprintf(path, sizeof path, "%s/bin:%s", dir, getenv("PATH"));
	setenv("PATH", path, 1);
}

START_TEST(source_error_fails_the_copy)
{
	struct endpoint *ep;
	struct mem_sink m = { .buf = malloc(IMG_SIZE), .fail_after = -1 };
	struct copy_sink sink = { &m, mem_write, mem_zero };

	failing_nbdkit("error-pread-rate=100% error=EIO");
	ep = open_img(filter);
	ck_assert_int_eq(copy_range(&ep, 1, 0, &sink, 0, IMG_SIZE, 60000), -1);
	ck_assert_int_eq(error_errno(), EIO);
	ck_assert_ptr_nonnull(strstr(error_msg(), "local/disk.raw"));
	ck_assert_uint_eq(m.written, 0);
	endpoint_close(ep);
	free(m.buf);
}
END_TEST

/* The image's 5.5 MiB of data at 8 MiB/s, over two connections that share
 * the host's limit: the last request cannot start before 4.5 MiB of it
 * had their time, less the quarter second of credit the host may have
 * earned while the connections opened (2 MiB): 0.31 s, whatever the
 * machine's speed. */
START_TEST(bwlimit_paces_the_copy)
{
	struct endpoint *eps[2];
	struct mem_sink m;
	int64_t t0;
	int calls;

	img_rate = rate_new(8 * MiB);
	ck_assert_ptr_nonnull(img_rate);
	eps[0] = open_img(filter);
	eps[1] = open_img(filter);
	t0 = now_ms();
	m = copy_all(eps, 2, 60000, &calls);
	ck_assert_int_ge(now_ms() - t0, 310);
	ck_assert_msg(memcmp(m.buf, want, IMG_SIZE) == 0, "copy differs");
	for (int i = 0; i < 2; i++)
		endpoint_close(eps[i]);
	free(m.buf);
	rate_free(img_rate);
	img_rate = NULL;
}
END_TEST

/* The same for a reader (the mount's read path, with its readahead):
 * the 3 MiB at the start at 4 MiB/s take at least 0.5 s, less the
 * credit (1 MiB). */
START_TEST(bwlimit_paces_reads)
{
	unsigned char *buf = malloc(3 * MiB);
	struct endpoint *ep;
	int64_t t0;

	ck_assert_ptr_nonnull(buf);
	img_rate = rate_new(4 * MiB);
	ep = open_img(filter);
	t0 = now_ms();
	for (size_t off = 0; off < 3 * MiB; off += 128 << 10)
		ck_assert_int_eq(endpoint_pread(ep, buf + off, 128 << 10, off),
				 128 << 10);
	ck_assert_int_ge(now_ms() - t0, 250);
	ck_assert(memcmp(buf, want, 3 * MiB) == 0);
	endpoint_close(ep);
	free(buf);
	rate_free(img_rate);
	img_rate = NULL;
}
END_TEST

/* Time left unused counts, for a quarter of a second at most: after a
 * second's idle, requests of a quarter second each at 4 MiB/s: the first
 * takes the credit, the second starts at once, the third waits a quarter
 * second (no credit: half a second; unlimited credit: not at all), and
 * the fifth cannot start before three quarters of a second, however late
 * this thread runs (the slots are absolute). */
START_TEST(rate_credit_is_capped)
{
	struct rate *r = rate_new(4 * MiB);
	int64_t t0, took;

	ck_assert_ptr_nonnull(r);
	usleep(1000 * 1000);
	t0 = now_ms();
	for (int i = 0; i < 3; i++)
		rate_wait(r, MiB);
	took = now_ms() - t0;
	ck_assert_int_ge(took, 240);
	ck_assert_int_lt(took, 495); /* only a stall of 1/4 s gets there */
	rate_wait(r, MiB);
	rate_wait(r, MiB);
	ck_assert_int_ge(now_ms() - t0, 740);
	rate_free(r);
}
END_TEST

START_TEST(rate_text)
{
	static const struct {
		const char *text;
		uint64_t bps;
		const char *back;
	} good[] = {
		{ "0", 0, "0" },
		{ "100", 100, "100" },
		{ "1536K", 1536 << 10, "1536K" },
		{ "2048k", 2 << 20, "2M" },
		{ "20M", 20 << 20, "20M" },
		{ "20MiB", 20 << 20, "20M" },
		{ "1G", 1u << 30, "1G" },
		{ "1024G", 1ULL << 40, "1024G" },
	};
	static const char *const bad[] = {
		"",	 "M",	 "-1",
		"1.5M",	 "10 M", "10MB",
		"1025G", "10T",	 "99999999999999999999"
	};
	char buf[32];
	uint64_t v;

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		ck_assert_msg(rate_parse(good[i].text, &v) == 0, "%s: %s",
			      good[i].text, error_msg());
		ck_assert_uint_eq(v, good[i].bps);
		rate_format(v, buf, sizeof buf);
		ck_assert_str_eq(buf, good[i].back);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_msg(rate_parse(bad[i], &v) == -1, "parsed %s",
			      bad[i]);
		ck_assert_int_eq(error_errno(), EINVAL);
	}
}
END_TEST

Suite *copy_suite(void)
{
	Suite *s = suite_create("copy");
	TCase *tc = tcase_create("engine");

	/* Each test forks: the fixture runs in the test's process. */
	tcase_add_checked_fixture(tc, make_image, remove_image);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, copies_data_and_skips_holes);
	tcase_add_test(tc, zero_scan_skips_allocated_zeros);
	tcase_add_test(tc, filter_absent_on_the_host);
	tcase_add_test(tc, slices_add_up);
	tcase_add_test(tc, several_connections);
	tcase_add_test(tc, sink_error_fails_the_copy);
	tcase_add_test(tc, source_error_fails_the_copy);
	tcase_add_test(tc, bwlimit_paces_the_copy);
	tcase_add_test(tc, bwlimit_paces_reads);
	tcase_add_test(tc, rate_credit_is_capped);
	tcase_add_test(tc, rate_text);
	suite_add_tcase(s, tc);
	return s;
}
