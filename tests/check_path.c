/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tests of fs/path.c: mount paths and disk file names. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../fs/path.h"
#include "suites.h"

/* Parse path; it must succeed with kind and the given names. */
static void expect_path(const char *path, enum path_kind kind, const char *host,
			const char *guest, const char *file)
{
	struct fs_path p;

	memset(&p, 'x', sizeof p);
	ck_assert_msg(path_parse(path, &p) == 0, "\"%s\" refused", path);
	ck_assert_int_eq(p.kind, kind);
	ck_assert_str_eq(p.host, host);
	ck_assert_str_eq(p.guest, guest);
	ck_assert_str_eq(p.file, file);
}

static void expect_errno(const char *path, int err)
{
	struct fs_path p;
	int r = path_parse(path, &p);

	ck_assert_msg(r == -err, "\"%s\": %d, expected %d", path, r, -err);
}

START_TEST(test_root)
{
	expect_path("/", PATH_ROOT, "", "", "");
}
END_TEST

START_TEST(test_host)
{
	expect_path("/h", PATH_HOST, "h", "", "");
	expect_path("/h/", PATH_HOST, "h", "", "");
	expect_path("/host-b.example", PATH_HOST, "host-b.example", "", "");
}
END_TEST

START_TEST(test_guest)
{
	expect_path("/h/g", PATH_GUEST, "h", "g", "");
	expect_path("/h/g/", PATH_GUEST, "h", "g", "");
	expect_path("/hosta/my guest", PATH_GUEST, "hosta", "my guest", "");
}
END_TEST

START_TEST(test_file)
{
	expect_path("/h/g/f", PATH_FILE, "h", "g", "f");
	expect_path("/h/g/domain.xml", PATH_FILE, "h", "g", DOMAIN_XML);
	expect_path("/hosta/web1/vda.qcow2", PATH_FILE, "hosta", "web1",
		    "vda.qcow2");
	/* Names that only look like "." and "..". */
	expect_path("/.../..a/.b", PATH_FILE, "...", "..a", ".b");
}
END_TEST

START_TEST(test_too_deep)
{
	expect_errno("/h/g/f/x", ENOENT);
	expect_errno("/h/g/f/x/y", ENOENT);
	expect_errno("/h/g/f//", ENOENT);
}
END_TEST

START_TEST(test_dot_components)
{
	expect_errno("/.", ENOENT);
	expect_errno("/..", ENOENT);
	expect_errno("/./", ENOENT);
	expect_errno("/../", ENOENT);
	expect_errno("/h/.", ENOENT);
	expect_errno("/h/..", ENOENT);
	expect_errno("/h/../h", ENOENT);
	expect_errno("/h/./g", ENOENT);
	expect_errno("/h/g/.", ENOENT);
	expect_errno("/h/g/..", ENOENT);
	expect_errno("/../../etc/passwd", ENOENT);
}
END_TEST

START_TEST(test_empty_components)
{
	expect_errno("", ENOENT);
	expect_errno("h", ENOENT);
	expect_errno("h/g", ENOENT);
	expect_errno("//", ENOENT);
	expect_errno("//h", ENOENT);
	expect_errno("/h//g", ENOENT);
	expect_errno("/h/g//f", ENOENT);
}
END_TEST

START_TEST(test_name_length)
{
	char name[PATH_NAME_MAX + 2], path[3 * (PATH_NAME_MAX + 2) + 8];

	memset(name, 'a', PATH_NAME_MAX);
	name[PATH_NAME_MAX] = '\0';
	snprintf(path, sizeof path, "/%s", name);
	expect_path(path, PATH_HOST, name, "", "");
	snprintf(path, sizeof path, "/%s/%s/%s", name, name, name);
	expect_path(path, PATH_FILE, name, name, name);

	name[PATH_NAME_MAX] = 'a';
	name[PATH_NAME_MAX + 1] = '\0';
	snprintf(path, sizeof path, "/%s", name);
	expect_errno(path, ENAMETOOLONG);
	snprintf(path, sizeof path, "/%s/", name);
	expect_errno(path, ENAMETOOLONG);
	snprintf(path, sizeof path, "/h/%s", name);
	expect_errno(path, ENAMETOOLONG);
	snprintf(path, sizeof path, "/h/g/%s", name);
	expect_errno(path, ENAMETOOLONG);
}
END_TEST

/* Split file; it must succeed with dev and fmt. */
static void expect_disk(const char *file, const char *dev, const char *fmt)
{
	char d[64], f[64];

	ck_assert_msg(path_disk_name(file, d, sizeof d, f, sizeof f) == 0,
		      "\"%s\" refused", file);
	ck_assert_str_eq(d, dev);
	ck_assert_str_eq(f, fmt);
}

static void expect_bad_disk(const char *file)
{
	char d[64], f[64];
	int r = path_disk_name(file, d, sizeof d, f, sizeof f);

	ck_assert_msg(r == -EINVAL, "\"%s\": %d, expected -EINVAL", file, r);
}

START_TEST(test_disk_name)
{
	expect_disk("vda.raw", "vda", "raw");
	expect_disk("vdb.qcow2", "vdb", "qcow2");
	expect_disk("sda.vmdk", "sda", "vmdk");
	expect_disk("hd_1.q", "hd_1", "q");
	expect_disk("v.r", "v", "r");
}
END_TEST

START_TEST(test_disk_name_last_dot)
{
	/* Split at the last dot, DEV "sda.tar" is not a word: refused (as it
	 * would be split anywhere else, no side may hold a dot). */
	expect_bad_disk("sda.tar.gz");
	expect_bad_disk("vda.raw.");
	expect_bad_disk("vda..raw");
}
END_TEST

START_TEST(test_disk_name_bad)
{
	expect_bad_disk("vda");
	expect_bad_disk("");
	expect_bad_disk(".");
	expect_bad_disk(".raw");
	expect_bad_disk("vda.");
	expect_bad_disk("VDA.raw");
	expect_bad_disk("vda.RAW");
	expect_bad_disk("vd-a.raw");
	expect_bad_disk("vda.qcow-2");
	expect_bad_disk("vd a.raw");
	expect_bad_disk("vda/.raw");
	expect_bad_disk("../vda.raw");
}
END_TEST

START_TEST(test_disk_name_lengths)
{
	char file[80], d[64], f[64], small[4];
	char w32[33], w33[34];

	memset(w32, 'a', 32);
	w32[32] = '\0';
	memset(w33, 'a', 33);
	w33[33] = '\0';

	snprintf(file, sizeof file, "%s.%s", w32, w32);
	expect_disk(file, w32, w32);
	snprintf(file, sizeof file, "%s.raw", w33);
	expect_bad_disk(file);
	snprintf(file, sizeof file, "vda.%s", w33);
	expect_bad_disk(file);

	/* Buffers too small for a side are refused, not overflowed. */
	memset(small, 'z', sizeof small);
	ck_assert_int_eq(
	    path_disk_name("vdab.raw", small, sizeof small, f, sizeof f),
	    -EINVAL);
	ck_assert_int_eq(
	    path_disk_name("vda.qcow2", d, sizeof d, small, sizeof small),
	    -EINVAL);
	ck_assert_int_eq(
	    path_disk_name("vda.raw", small, sizeof small, f, sizeof f), 0);
	ck_assert_str_eq(small, "vda");
	ck_assert_str_eq(f, "raw");
}
END_TEST

START_TEST(test_word_ok)
{
	char w[40];

	ck_assert(path_word_ok("vda"));
	ck_assert(path_word_ok("qcow2"));
	ck_assert(path_word_ok("a_b_0"));
	ck_assert(path_word_ok("0"));
	ck_assert(!path_word_ok(""));
	ck_assert(!path_word_ok("Vda"));
	ck_assert(!path_word_ok("vd-a"));
	ck_assert(!path_word_ok("vd.a"));
	ck_assert(!path_word_ok("vd a"));
	ck_assert(!path_word_ok("vd/a"));
	ck_assert(!path_word_ok("vd\xc3\xa9"));

	memset(w, 'z', sizeof w);
	w[32] = '\0';
	ck_assert(path_word_ok(w));
	w[32] = 'z';
	w[33] = '\0';
	ck_assert(!path_word_ok(w));
	w[1] = '\0';
	ck_assert(path_word_ok(w));
}
END_TEST

Suite *path_suite(void)
{
	Suite *s = suite_create("path");
	TCase *tp = tcase_create("parse");
	TCase *td = tcase_create("disk_name");

	tcase_add_test(tp, test_root);
	tcase_add_test(tp, test_host);
	tcase_add_test(tp, test_guest);
	tcase_add_test(tp, test_file);
	tcase_add_test(tp, test_too_deep);
	tcase_add_test(tp, test_dot_components);
	tcase_add_test(tp, test_empty_components);
	tcase_add_test(tp, test_name_length);
	suite_add_tcase(s, tp);

	tcase_add_test(td, test_disk_name);
	tcase_add_test(td, test_disk_name_last_dot);
	tcase_add_test(td, test_disk_name_bad);
	tcase_add_test(td, test_disk_name_lengths);
	tcase_add_test(td, test_word_ok);
	suite_add_tcase(s, td);
	return s;
}
