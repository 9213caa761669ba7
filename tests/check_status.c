/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tests of fs/status.c: the transfers listed in MOUNT/.status[.json]. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../fs/status.h"
#include "suites.h"

/* The JSON rendering of st (of host/guest if not NULL). */
static char *json(struct status *st, const char *host, const char *guest)
{
	size_t len = 12345;
	char *s = status_render(st, true, host, guest, &len);

	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(len, strlen(s));
	return s;
}

/* s holds needle, or the test fails showing s. */
#define ck_has(s, needle)                                                      \
	ck_assert_msg(strstr((s), (needle)) != NULL, "no '%s' in:\n%s",        \
		      (needle), (s))
#define ck_lacks(s, needle)                                                    \
	ck_assert_msg(strstr((s), (needle)) == NULL, "'%s' in:\n%s", (needle), \
		      (s))

START_TEST(test_disk_transfer)
{
	struct status *st = status_new();
	struct transfer *t =
	    status_begin(st, TRANSFER_WRITE, "hostb", "web1", "vda.raw", 1000);
	char *s;

	transfer_add(t, 300);
	transfer_add(t, 200);
	s = json(st, NULL, NULL);
	ck_has(s, "{\"kind\":\"write\",\"host\":\"hostb\",\"guest\":\"web1\","
		  "\"disk\":\"vda.raw\",\"phase\":\"copying\",\"done\":500,"
		  "\"total\":1000,");
	ck_has(s, "\"ended\":null,\"result\":\"running\",\"cause\":null}\n");
	free(s);
	transfer_end(t);
	s = json(st, NULL, NULL);
	ck_has(s, "\"phase\":\"ended\"");
	ck_has(s, "\"eta\":null");
	ck_has(s, "\"result\":\"ok\",\"cause\":null}\n");
	ck_lacks(s, "\"ended\":null");
	free(s);
	status_free(st);
}
END_TEST

/* A live move: the guest's line, with its disks' and memory's parts. */
START_TEST(test_move_parts)
{
	struct status *st = status_new();
	struct transfer *t =
	    status_begin(st, TRANSFER_MOVE, "hosta", "web1", NULL, 0);
	struct transfer *w =
	    status_begin(st, TRANSFER_WRITE, "hostb", "web1", NULL, 0);
	size_t len;
	char *s;

	transfer_set_parts(t, 64, 100, 5, 50);
	s = json(st, "hosta", NULL);
	ck_has(s, "{\"kind\":\"move\",\"host\":\"hosta\",\"guest\":\"web1\","
		  "\"phase\":\"copying\",\"done\":69,\"total\":150,");
	ck_has(s, "\"disk_done\":64,\"disk_total\":100,\"memory_done\":5,"
		  "\"memory_total\":50,\"started\"");
	free(s);
	s = status_render(st, false, "hosta", NULL, &len);
	ck_has(s, "move  hosta/web1  copying  69 B / 150 B");
	ck_has(s, "(disks 64 B / 100 B, memory 5 B / 50 B)");
	free(s);
	/* Other lines have no parts; a move line is no staging folder's. */
	s = json(st, "hostb", NULL);
	ck_lacks(s, "disk_done");
	free(s);
	status_guest_fail(st, "hosta", "web1", EIO, "x");
	transfer_end(t);
	s = json(st, "hosta", NULL);
	ck_has(s, "\"result\":\"ok\"");
	free(s);
	transfer_end(w);
	status_free(st);
}
END_TEST

START_TEST(test_disk_failure_first_kept)
{
	struct status *st = status_new();
	struct transfer *t =
	    status_begin(st, TRANSFER_READ, "hosta", "web1", "vda.raw", 0);
	char *s;

	transfer_fail(t, EIO, "nbd: \"pread\" failed\nat 0");
	transfer_fail(t, ENOSPC, "later");
	s = json(st, NULL, NULL);
	ck_has(s, "\"kind\":\"read\"");
	ck_has(s, "\"result\":\"EIO\"");
	ck_has(s, "\"cause\":\"nbd: \\\"pread\\\" failed\\u000aat 0\"}\n");
	ck_lacks(s, "later");
	free(s);
	transfer_end(t);
	s = status_render(st, false, NULL, NULL, &(size_t){ 0 });
	ck_has(s, "read  hosta/web1/vda.raw  ended");
	ck_has(s, "EIO: nbd: \"pread\" failed");
	free(s);
	status_free(st);
}
END_TEST

/* A staging folder's line shows its last failure while the folder is
 * there; a definition ends it ok, a removal with that failure. */
START_TEST(test_guest_line)
{
	struct status *st = status_new();
	char *s;

	status_guest_begin(st, "hostb", "web1");
	status_guest_fail(st, "hostb", "web1", EIO, "vda.raw: write: first");
	status_guest_fail(st, "hostb", "web1", ENOSPC, "vda.raw: close: last");
	s = json(st, "hostb", "web1");
	ck_has(s, "\"guest\":\"web1\",\"phase\":\"staging\"");
	ck_lacks(s, "\"disk\"");
	ck_has(s, "\"ended\":null,\"result\":\"ENOSPC\","
		  "\"cause\":\"vda.raw: close: last\"}");
	free(s);
	status_guest_end(st, "hostb", "web1", 0, NULL);
	s = json(st, "hostb", "web1");
	ck_has(s, "\"phase\":\"defined\"");
	ck_has(s, "\"result\":\"ok\",\"cause\":null}");
	free(s);

	/* Ended lines are not found again: a new folder of the same name. */
	status_guest_begin(st, "hostb", "web1");
	status_guest_fail(st, "hostb", "web1", EEXIST, "vdb.raw: create: x");
	status_guest_end(st, "hostb", "web1", ECANCELED, "removed");
	s = json(st, "hostb", "web1");
	ck_has(s, "\"phase\":\"defined\"");
	ck_has(s, "\"phase\":\"removed\"");
	ck_has(s, "\"result\":\"EEXIST\",\"cause\":\"vdb.raw: create: x\"}");
	ck_lacks(s, "ECANCELED");
	free(s);

	status_guest_begin(st, "hostb", "web2");
	status_guest_end(st, "hostb", "web2", ECANCELED, "removed before");
	s = json(st, "hostb", "web2");
	ck_has(s, "\"result\":\"ECANCELED\",\"cause\":\"removed before\"}");
	free(s);

	/* A failure of a guest with no running line (not staged) is
	 * dropped. */
	status_guest_fail(st, "hostb", "web3", EIO, "x");
	s = json(st, "hostb", "web3");
	ck_assert_str_eq(s, "");
	free(s);
	status_free(st);
}
END_TEST

START_TEST(test_filter)
{
	struct status *st = status_new();
	struct transfer *a =
	    status_begin(st, TRANSFER_READ, "hosta", "web1", "vda.raw", 1);
	struct transfer *b =
	    status_begin(st, TRANSFER_WRITE, "hostb", "web1", "vda.raw", 1);
	struct transfer *c =
	    status_begin(st, TRANSFER_WRITE, "hostb", "web2", "vda.raw", 1);
	char *s = json(st, "hostb", "web1");

	ck_has(s, "\"host\":\"hostb\",\"guest\":\"web1\"");
	ck_lacks(s, "hosta");
	ck_lacks(s, "web2");
	ck_assert_ptr_eq(strchr(s, '\n'), s + strlen(s) - 1); /* one line */
	free(s);
	s = json(st, NULL, NULL);
	ck_has(s, "hosta");
	ck_has(s, "web2");
	free(s);
	transfer_end(a);
	transfer_end(b);
	transfer_end(c);
	status_free(st);
}
END_TEST

Suite *status_suite(void)
{
	Suite *s = suite_create("status");
	TCase *tc = tcase_create("registry");

	tcase_add_test(tc, test_disk_transfer);
	tcase_add_test(tc, test_move_parts);
	tcase_add_test(tc, test_disk_failure_first_kept);
	tcase_add_test(tc, test_guest_line);
	tcase_add_test(tc, test_filter);
	suite_add_tcase(s, tc);
	return s;
}
