/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tests of fs/record.c: staging records in the state directory. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/error.h"
#include "../fs/record.h"
#include "suites.h"

static char dir[PATH_MAX];

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/check-record.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void write_file(const char *rel, const char *text, size_t len)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, rel);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	fclose(f);
}

/* The records of host, sorted by guest name, as "guest:pool:d1,d2;...". */
static char *summary(const char *host, size_t *n)
{
	struct record *v;
	static char out[4096];

	ck_assert_int_eq(record_load(dir, host, &v, n), 0);
	out[0] = '\0';
	for (size_t i = 0; i < *n; i++)
		for (size_t j = i + 1; j < *n; j++)
			if (strcmp(v[i].guest, v[j].guest) > 0) {
				struct record t = v[i];

				v[i] = v[j];
				v[j] = t;
			}
	for (size_t i = 0; i < *n; i++) {
		size_t len = strlen(out);

		snprintf(out + len, sizeof out - len, "%s:%s:", v[i].guest,
			 v[i].pool);
		for (size_t j = 0; j < v[i].n; j++) {
			len = strlen(out);
			snprintf(out + len, sizeof out - len, "%s%s",
				 j ? "," : "", v[i].disks[j]);
		}
		len = strlen(out);
		snprintf(out + len, sizeof out - len, ";");
		ck_assert_int_eq(v[i].pid, getpid());
		record_release(&v[i]);
	}
	free(v);
	return out;
}

START_TEST(test_roundtrip)
{
	char *disks[] = { "vda.raw", "vdb.qcow2" };
	struct record a = { "web1", 0, "default", disks, 2 };
	struct record b = { "db1", 0, "lvm", NULL, 0 };
	char nested[PATH_MAX], path[PATH_MAX];
	struct stat sb;
	size_t n;

	/* The state directory and its parents are made as needed. */
	snprintf(nested, sizeof nested, "%s", dir);
	strncat(dir, "/a/b", sizeof dir - strlen(dir) - 1);
	ck_assert_int_eq(record_save(dir, "hostb", &a), 0);
	ck_assert_int_eq(record_save(dir, "hostb", &b), 0);
	ck_assert_str_eq(summary("hostb", &n),
			 "db1:lvm:;web1:default:vda.raw,vdb.qcow2;");
	ck_assert_uint_eq(n, 2);
	snprintf(path, sizeof path, "%s/hostb", dir);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0700);
	/* Saving again replaces the record, and leaves no temporary file. */
	a.n = 1;
	ck_assert_int_eq(record_save(dir, "hostb", &a), 0);
	ck_assert_str_eq(summary("hostb", &n),
			 "db1:lvm:;web1:default:vda.raw;");
	snprintf(path, sizeof path, "%s/hostb/.web1.tmp", dir);
	ck_assert_int_eq(access(path, F_OK), -1);
	/* Other hosts' records are apart; a host without any has none. */
	ck_assert_str_eq(summary("hosta", &n), "");
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(record_delete(dir, "hostb", "db1"), 0);
	ck_assert_int_eq(record_delete(dir, "hostb", "db1"), 0);
	ck_assert_str_eq(summary("hostb", &n), "web1:default:vda.raw;");
	snprintf(dir, sizeof dir, "%s", nested);
}
END_TEST

/* Anything that is not a whole record is skipped, never half read. */
START_TEST(test_bad_files)
{
	char *disks[] = { "vda.raw" };
	struct record good = { "ok1", 0, "default", disks, 1 };
	char big[70 * 1024], line[64], link[PATH_MAX];
	size_t n;

	ck_assert_int_eq(record_save(dir, "h", &good), 0);
	write_file("h/empty", "", 0);
	write_file("h/garbage", "hello\n", 6);
	write_file("h/nopool", "kvmmigfs-staging 1\npid 5\n", 25);
	write_file("h/nopid", "kvmmigfs-staging 1\npool p\n", 26);
	write_file("h/badpid", "kvmmigfs-staging 1\npid -3\npool p\n", 33);
	write_file("h/unknown", "kvmmigfs-staging 1\npid 5\npool p\nrm -rf /\n",
		   42);
	write_file("h/nul", "kvmmigfs-staging 1\npid 5\0\npool p\n", 33);
	write_file("h/.hidden", "kvmmigfs-staging 1\npid 5\npool p\n", 32);
	memset(big, 'x', sizeof big);
	memcpy(big, "kvmmigfs-staging 1\npid 5\npool p\ndisk ", 37);
	write_file("h/big", big, sizeof big);
	snprintf(line, sizeof line, "%s/h/ok1", dir);
	snprintf(link, sizeof link, "%s/h/link", dir);
	ck_assert_int_eq(symlink(line, link), 0);
	ck_assert_str_eq(summary("h", &n), "ok1:default:vda.raw;");
	ck_assert_uint_eq(n, 1);
}
END_TEST

START_TEST(test_unwritable)
{
	struct record r = { "g", 0, "default", NULL, 0 };
	char file[PATH_MAX];

	/* The state "directory" is a file: the error names the path. */
	snprintf(file, sizeof file, "%s/file", dir);
	write_file("file", "x", 1);
	ck_assert_int_eq(record_save(file, "h", &r), -1);
	ck_assert_int_eq(error_errno(), ENOTDIR);
	ck_assert_ptr_nonnull(strstr(error_msg(), file));
}
END_TEST

Suite *record_suite(void)
{
	Suite *s = suite_create("record");
	TCase *tc = tcase_create("record");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_bad_files);
	tcase_add_test(tc, test_unwritable);
	suite_add_tcase(s, tc);
	return s;
}
