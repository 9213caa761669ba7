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

static void write_str(const char *rel, const char *text)
{
	write_file(rel, text, strlen(text));
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
			snprintf(out + len, sizeof out - len, "%s%s%s%s",
				 j ? "," : "", v[i].disks[j].name,
				 v[i].disks[j].id ? "=" : "",
				 v[i].disks[j].id ? v[i].disks[j].id : "");
		}
		len = strlen(out);
		snprintf(out + len, sizeof out - len, "@%s@%s",
			 v[i].host_id ? v[i].host_id : "-",
			 v[i].hosts_file ? v[i].hosts_file : "-");
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
	struct record_disk disks[] = { { "vda.raw", "f:1:2:x_y" },
				       { "vdb.qcow2", NULL } };
	struct record a = { "web1",    0,     "U1", "/h.conf",
			    "default", disks, 2,    NULL };
	struct record b = { "db1", 0, "U2", "/h.conf", "lvm", NULL, 0, NULL };
	char nested[PATH_MAX], path[PATH_MAX];
	struct stat sb;
	size_t n;

	/* The state directory and its parents are made as needed. */
	snprintf(nested, sizeof nested, "%s", dir);
	strncat(dir, "/a/b", sizeof dir - strlen(dir) - 1);
	ck_assert_int_eq(record_save(dir, "hostb", &a), 0);
	ck_assert_int_eq(record_save(dir, "hostb", &b), 0);
	ck_assert_str_eq(
	    summary("hostb", &n),
	    "db1:lvm:@U2@/h.conf;"
	    "web1:default:vda.raw=f:1:2:x_y,vdb.qcow2@U1@/h.conf;");
	ck_assert_uint_eq(n, 2);
	snprintf(path, sizeof path, "%s/hostb", dir);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0700);
	ck_assert_int_eq(stat(dir, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0700);
	snprintf(path, sizeof path, "%s/hostb/web1", dir);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0600);
	/* Saving again replaces the record, and leaves no temporary file. */
	a.n = 1;
	ck_assert_int_eq(record_save(dir, "hostb", &a), 0);
	ck_assert_str_eq(
	    summary("hostb", &n),
	    "db1:lvm:@U2@/h.conf;web1:default:vda.raw=f:1:2:x_y@U1@"
	    "/h.conf;");
	snprintf(path, sizeof path, "%s/hostb/.web1.tmp", dir);
	ck_assert_int_eq(access(path, F_OK), -1);
	/* Other hosts' records are apart; a host without any has none. */
	ck_assert_str_eq(summary("hosta", &n), "");
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(record_delete(dir, "hostb", "db1"), 0);
	ck_assert_int_eq(record_delete(dir, "hostb", "db1"), 0);
	ck_assert_str_eq(summary("hostb", &n),
			 "web1:default:vda.raw=f:1:2:x_y@U1@/h.conf;");
	snprintf(dir, sizeof dir, "%s", nested);
}
END_TEST

/* Anything that is not a whole record is skipped, never half read. */
/* A move's record names where its guest came from. */
START_TEST(test_move_line)
{
	struct record a = { "web1",    0,    "U1", "/h.conf",
			    "default", NULL, 0,	   "hosta web1 keep" };
	struct record *recs;
	size_t n;

	ck_assert_int_eq(record_save(dir, "hostb", &a), 0);
	ck_assert_int_eq(record_load(dir, "hostb", &recs, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(recs[0].move, "hosta web1 keep");
	record_release(&recs[0]);
	free(recs);
	a.move = NULL;
	ck_assert_int_eq(record_save(dir, "hostb", &a), 0);
	ck_assert_int_eq(record_load(dir, "hostb", &recs, &n), 0);
	ck_assert_ptr_null(recs[0].move);
	record_release(&recs[0]);
	free(recs);
}
END_TEST

START_TEST(test_bad_files)
{
	struct record_disk disks[] = { { "vda.raw", "lv:abc" } };
	struct record good = { "ok1", 0, "U", "/h", "default", disks, 1, NULL };
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
	/* Version 2 needs the host, the hosts file and every identity. */
	write_str("h/nohost", "kvmmigfs-staging 2\npid 5\nhosts /h\npool p\n");
	write_str("h/nohosts", "kvmmigfs-staging 2\npid 5\nhost U\npool p\n");
	write_str("h/noid", "kvmmigfs-staging 2\npid 5\nhost U\nhosts /h\n"
			    "pool p\ndisk vda.raw\n");
	memset(big, 'x', sizeof big);
	memcpy(big, "kvmmigfs-staging 1\npid 5\npool p\ndisk ", 37);
	write_file("h/big", big, sizeof big);
	snprintf(line, sizeof line, "%s/h/ok1", dir);
	snprintf(link, sizeof link, "%s/h/link", dir);
	ck_assert_int_eq(symlink(line, link), 0);
	ck_assert_str_eq(summary("h", &n), "ok1:default:vda.raw=lv:abc@U@/h;");
	ck_assert_uint_eq(n, 1);
}
END_TEST

/* A version 1 record is read, without host or identities (so that
 * recovery can leave it alone); a private state directory stays so. */
START_TEST(test_v1_and_modes)
{
	char path[PATH_MAX], text[128];
	struct record r = { "g", 0, "U", "/h", "default", NULL, 0, NULL };
	struct stat sb;
	size_t n;
	int len;

	snprintf(path, sizeof path, "%s/h", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	len = snprintf(text, sizeof text,
		       "kvmmigfs-staging 1\npid %d\npool p\ndisk vda.raw\n",
		       (int)getpid());
	write_file("h/old", text, (size_t)len);
	ck_assert_str_eq(summary("h", &n), "old:p:vda.raw@-@-;");
	ck_assert_int_eq(chmod(dir, 0755), 0);
	ck_assert_int_eq(record_save(dir, "h", &r), 0);
	ck_assert_int_eq(stat(dir, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0700);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_mode & 0777, 0700);
}
END_TEST

START_TEST(test_unwritable)
{
	struct record r = { "g", 0, "U", "/h", "default", NULL, 0, NULL };
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
	tcase_add_test(tc, test_move_line);
	tcase_add_test(tc, test_bad_files);
	tcase_add_test(tc, test_v1_and_modes);
	tcase_add_test(tc, test_unwritable);
	suite_add_tcase(s, tc);
	return s;
}
