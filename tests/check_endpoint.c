/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The endpoint's failure paths against a real nbdkit run on this machine
 * (the endpoint's shell is empty: the server is a local child): each
 * failure must leave the most specific errno and a message naming the
 * disk.  check_main.c makes a failure without a cause (a path that forgot
 * error_set()) report ENOTRECOVERABLE, which no assertion here accepts.
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
#include "../nbd/endpoint.h"
#include "suites.h"

#define MiB	 (1u << 20)
#define IMG_SIZE (4 * MiB)
#define DESC	 "local/ep.raw"

static char dir[64], img[128];
static char *saved_path; /* PATH before wrap_nbdkit() */

/* Data in the first MiB, a hole after it. */
static void make_image(void)
{
	char data[4096];
	FILE *f;

	saved_path = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	snprintf(dir, sizeof dir, "/tmp/kvmmigfs-check.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(img, sizeof img, "%s/ep.raw", dir);
	memset(data, 0x5a, sizeof data);
	f = fopen(img, "w");
	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < MiB / sizeof data; i++)
		ck_assert_int_eq(fwrite(data, 1, sizeof data, f), sizeof data);
	ck_assert_int_eq(ftruncate(fileno(f), IMG_SIZE), 0);
	ck_assert_int_eq(fclose(f), 0);
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
	setenv("PATH", saved_path, 1);
	free(saved_path);
}

/* nbdkit found first on PATH: a script whose last line is body ("$@"
 * holds the endpoint's arguments). */
static void wrap_nbdkit(const char *body)
{
	char bin[128], path[PATH_MAX + 160];
	FILE *f;

	snprintf(bin, sizeof bin, "%s/bin", dir);
	mkdir(bin, 0755);
	snprintf(bin, sizeof bin, "%s/bin/nbdkit", dir);
	f = fopen(bin, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	chmod(bin, 0755);
	snprintf(path, sizeof path, "%s/bin:%s", dir, saved_path);
	setenv("PATH", path, 1);
}

/* The real nbdkit with the error filter and these parameters. */
static void failing_nbdkit(const char *params)
{
	char body[256];

	snprintf(body, sizeof body,
		 "exec /usr/bin/nbdkit --filter=error \"$@\" %s", params);
	wrap_nbdkit(body);
}

static struct endpoint_spec spec_for(const char *path, int timeout_ms)
{
	return (struct endpoint_spec){
		.path = path,
		.format = "raw",
		.readonly = false,
		.desc = DESC,
		.timeout_ms = timeout_ms,
	};
}

static struct endpoint *open_img(int timeout_ms)
{
	struct endpoint_spec spec = spec_for(img, timeout_ms);
	struct endpoint *ep = endpoint_open(&spec);

	ck_assert_msg(ep, "endpoint_open: %s", error_msg());
	return ep;
}

/* The call failed with errnum and a message naming the disk. */
#define ck_assert_failed(errnum)                                               \
	do {                                                                   \
		ck_assert_msg(error_errno() == (errnum),                       \
			      "errno %s, not %s: %s",                          \
			      strerrorname_np(error_errno()),                  \
			      strerrorname_np(errnum), error_msg());           \
		ck_assert_msg(strstr(error_msg(), DESC), "message: %s",        \
			      error_msg());                                    \
	} while (0)

START_TEST(failure_without_a_cause)
{
	error_set(EPERM, "an old error");
	error_clear();
	ck_assert_int_eq(error_errno(), ENOTRECOVERABLE);
	ck_assert_str_eq(error_msg(),
			 "internal error: failure without a cause");
	error_prefix("hosta/web1/vda.raw");
	ck_assert_int_eq(error_errno(), ENOTRECOVERABLE);
	ck_assert_str_eq(error_msg(), "hosta/web1/vda.raw: internal error: "
				      "failure without a cause");
	error_set(ENOSPC, "full");
	ck_assert_int_eq(error_errno(), ENOSPC);
}
END_TEST

START_TEST(open_server_does_not_start)
{
	char missing[160];
	struct endpoint_spec spec;

	snprintf(missing, sizeof missing, "%s/missing.raw", dir);
	spec = spec_for(missing, 10000);
	error_set(ENOSPC, "an older error must not show");
	ck_assert_ptr_null(endpoint_open(&spec));
	ck_assert_failed(EHOSTDOWN);
	ck_assert_msg(strstr(error_msg(), "could not start the NBD server"),
		      "%s", error_msg());
}
END_TEST

START_TEST(open_no_answer)
{
	char *const shell[] = { "sh", "-c", "exec sleep 30", NULL };
	struct endpoint_spec spec = spec_for(img, 300);

	spec.shell = shell;
	ck_assert_ptr_null(endpoint_open(&spec));
	ck_assert_failed(ETIMEDOUT);
}
END_TEST

static void never_called(void *opaque, int err)
{
	ck_abort_msg("callback of a read that was not started");
}

START_TEST(out_of_bounds)
{
	struct endpoint *ep = open_img(10000);
	char buf[4096];
	uint64_t len;
	bool zero;

	ck_assert_int_eq(endpoint_aio_pread(ep, buf, sizeof buf, IMG_SIZE - 1,
					    never_called, NULL),
			 -1);
	ck_assert_failed(EINVAL);
	ck_assert_int_eq(endpoint_pwrite(ep, buf, sizeof buf, IMG_SIZE - 1),
			 -1);
	ck_assert_failed(EFBIG);
	ck_assert_int_eq(endpoint_zero(ep, 2, IMG_SIZE - 1), -1);
	ck_assert_failed(EFBIG);
	ck_assert_int_eq(endpoint_extent(ep, IMG_SIZE, 1, &len, &zero), -1);
	ck_assert_failed(ENXIO);
	ck_assert_int_eq(endpoint_seek(ep, MiB, SEEK_DATA), -1);
	ck_assert_failed(ENXIO);
	ck_assert_int_eq(endpoint_seek(ep, 0, SEEK_END), -1);
	ck_assert_failed(EINVAL);
	/* A short read at the end is no failure. */
	ck_assert_int_eq(endpoint_pread(ep, buf, sizeof buf, IMG_SIZE), 0);
	endpoint_close(ep);
}
END_TEST

START_TEST(read_error)
{
	struct endpoint *ep;
	char buf[4096];

	failing_nbdkit("error-pread-rate=100% error=EPERM");
	ep = open_img(10000);
	ck_assert_int_eq(endpoint_pread(ep, buf, sizeof buf, 0), -1);
	ck_assert_failed(EPERM);
	endpoint_close(ep);
}
END_TEST

struct aio_result {
	bool done;
	int err;
};

static void aio_done(void *opaque, int err)
{
	struct aio_result *r = opaque;

	r->err = err;
	__atomic_store_n(&r->done, true, __ATOMIC_RELEASE);
}

START_TEST(aio_read_error)
{
	struct aio_result r = { false, 0 };
	struct endpoint *ep;
	char buf[4096];

	failing_nbdkit("error-pread-rate=100% error=EPERM");
	ep = open_img(10000);
	ck_assert_int_eq(
	    endpoint_aio_pread(ep, buf, sizeof buf, 0, aio_done, &r), 0);
	for (int i = 0; i < 1000 && !__atomic_load_n(&r.done, __ATOMIC_ACQUIRE);
	     i++)
		usleep(10000);
	ck_assert(r.done);
	ck_assert_int_eq(r.err, EPERM);
	endpoint_close(ep);
}
END_TEST

START_TEST(write_error_comes_back_later)
{
	struct endpoint *ep;
	char buf[4096] = { 1 };

	failing_nbdkit("error-pwrite-rate=100% error=ENOSPC");
	ep = open_img(10000);
	/* Written behind: the error comes back from a later call. */
	ck_assert_int_eq(endpoint_pwrite(ep, buf, sizeof buf, 0), 0);
	ck_assert_int_eq(endpoint_flush(ep), -1);
	ck_assert_failed(ENOSPC);
	ck_assert_ptr_nonnull(strstr(error_msg(), "write at offset 0"));
	ck_assert_int_eq(endpoint_pwrite(ep, buf, sizeof buf, 8192), -1);
	ck_assert_failed(ENOSPC);
	ck_assert_int_eq(endpoint_zero(ep, 4096, 0), -1);
	ck_assert_failed(ENOSPC);
	endpoint_close(ep);
}
END_TEST

START_TEST(zero_error)
{
	struct endpoint *ep;

	failing_nbdkit("error-zero-rate=100% error=ENOSPC");
	ep = open_img(10000);
	ck_assert_int_eq(endpoint_zero(ep, MiB, 0), -1);
	ck_assert_failed(ENOSPC);
	endpoint_close(ep);
}
END_TEST

START_TEST(flush_error)
{
	struct endpoint *ep;

	/* nbdkit's error filter cannot fail a flush: its eval plugin can. */
	wrap_nbdkit("exec /usr/bin/nbdkit -s --exit-with-parent eval "
		    "get_size='echo 4194304' "
		    "pread='head -c $3 /dev/zero' pwrite='cat >/dev/null' "
		    "can_write='exit 0' can_flush='exit 0' "
		    "flush='echo EPERM flush refused >&2; exit 1'");
	ep = open_img(10000);
	ck_assert_int_eq(endpoint_flush(ep), -1);
	ck_assert_failed(EPERM);
	endpoint_close(ep);
}
END_TEST

START_TEST(block_status_error)
{
	struct endpoint *ep;
	uint64_t len;
	bool zero;

	failing_nbdkit("error-extents-rate=100% error=EPERM");
	ep = open_img(10000);
	ck_assert_int_eq(endpoint_extent(ep, 0, IMG_SIZE, &len, &zero), -1);
	ck_assert_failed(EPERM);
	ck_assert_int_eq(endpoint_seek(ep, 0, SEEK_HOLE), -1);
	ck_assert_failed(EPERM);
	endpoint_close(ep);
}
END_TEST

START_TEST(connection_lost)
{
	struct endpoint *ep;
	char buf[4096];
	uint64_t len;
	bool zero;

	/* The server dies a moment after the handshake. */
	wrap_nbdkit("(sleep 1; kill -9 $$) </dev/null >/dev/null 2>&1 &\n"
		    "exec /usr/bin/nbdkit \"$@\"");
	ep = open_img(10000);
	sleep(2);
	ck_assert_int_eq(endpoint_pread(ep, buf, sizeof buf, 0), -1);
	ck_assert_failed(EIO);
	ck_assert_ptr_nonnull(
	    strstr(error_msg(), "connection to the NBD server lost"));
	ck_assert_int_eq(endpoint_pwrite(ep, buf, sizeof buf, 0), -1);
	ck_assert_failed(EIO);
	ck_assert_int_eq(endpoint_flush(ep), -1);
	ck_assert_failed(EIO);
	ck_assert_int_eq(endpoint_extent(ep, 0, IMG_SIZE, &len, &zero), -1);
	ck_assert_failed(EIO);
	endpoint_close(ep);
}
END_TEST

START_TEST(server_stops_answering)
{
	struct endpoint *ep;
	char buf[4096];

	wrap_nbdkit("exec /usr/bin/nbdkit --filter=delay \"$@\" delay-read=30");
	ep = open_img(500);
	ck_assert_int_eq(endpoint_pread(ep, buf, sizeof buf, 0), -1);
	ck_assert_failed(ETIMEDOUT);
	ck_assert_ptr_nonnull(strstr(error_msg(), "no answer within 500 ms"));
	/* The endpoint is dead from then on. */
	ck_assert_int_eq(endpoint_pread(ep, buf, sizeof buf, 0), -1);
	ck_assert_failed(ETIMEDOUT);
	ck_assert_int_eq(endpoint_flush(ep), -1);
	ck_assert_failed(ETIMEDOUT);
	endpoint_close(ep);
}
END_TEST

static int write_nothing(void *opaque, const void *buf, size_t count,
			 uint64_t offset)
{
	return 0;
}

/* A sink that fails without saying why: a bug the copy must show. */
static int zero_fails_silently(void *opaque, uint64_t count, uint64_t offset)
{
	return -1;
}

START_TEST(copy_failure_without_a_cause)
{
	struct endpoint *ep = open_img(10000);
	struct copy_sink sink = { NULL, write_nothing, zero_fails_silently };

	error_set(ENOSPC, "an older error must not show");
	ck_assert_int_eq(copy_range(&ep, 1, 0, &sink, 0, IMG_SIZE, 60000), -1);
	ck_assert_int_eq(error_errno(), ENOTRECOVERABLE);
	ck_assert_ptr_nonnull(
	    strstr(error_msg(), "internal error: failure without a cause"));
	endpoint_close(ep);
}
END_TEST

Suite *endpoint_suite(void)
{
	Suite *s = suite_create("endpoint");
	TCase *tc = tcase_create("failures");

	/* Each test forks: the fixture runs in the test's process. */
	tcase_add_checked_fixture(tc, make_image, remove_image);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, failure_without_a_cause);
	tcase_add_test(tc, open_server_does_not_start);
	tcase_add_test(tc, open_no_answer);
	tcase_add_test(tc, out_of_bounds);
	tcase_add_test(tc, read_error);
	tcase_add_test(tc, aio_read_error);
	tcase_add_test(tc, write_error_comes_back_later);
	tcase_add_test(tc, zero_error);
	tcase_add_test(tc, flush_error);
	tcase_add_test(tc, block_status_error);
	tcase_add_test(tc, connection_lost);
	tcase_add_test(tc, server_stops_answering);
	tcase_add_test(tc, copy_failure_without_a_cause);
	suite_add_tcase(s, tc);
	return s;
}
