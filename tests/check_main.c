/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The unit test runner: every suite, or the one named by argv[1].
 *
 *	tests/check_kvmmigfs [hosts|path|domxml|extents|hostcmd|rewrite|copy|
 *			      endpoint|record|stage|status|crc|virt]
 *
 * Exit status 0 if every test passed, 1 if one failed, 2 for bad usage.
 * CK_FORK=no runs the tests in this process (for valgrind); CK_VERBOSITY
 * and CK_RUN_CASE work as Check documents them.
 *
 * A failure that forgot its error_set() reports ENOTRECOVERABLE here (EIO
 * in the daemon), an errno no test expects: see error_set_nocause_errno().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "suites.h"

static const struct {
	const char *name;
	Suite *(*make)(void);
} suites[] = {
	{ "hosts", hosts_suite },     { "path", path_suite },
	{ "domxml", domxml_suite },   { "extents", extents_suite },
	{ "hostcmd", hostcmd_suite }, { "rewrite", rewrite_suite },
	{ "copy", copy_suite },	      { "endpoint", endpoint_suite },
	{ "record", record_suite },   { "stage", stage_suite },
	{ "status", status_suite },   { "crc", crc_suite },
	{ "virt", virt_suite },
};

#define N_SUITES (sizeof suites / sizeof suites[0])

static void usage(FILE *f, const char *prog)
{
	fprintf(f, "usage: %s [SUITE]\nsuites:", prog);
	for (size_t i = 0; i < N_SUITES; i++)
		fprintf(f, " %s", suites[i].name);
	fprintf(f, "\n");
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	SRunner *sr = NULL;
	int failed;

	if (argc > 2 || (only && (strcmp(only, "-h") == 0 ||
				  strcmp(only, "--help") == 0))) {
		usage(argc > 2 ? stderr : stdout, argv[0]);
		return argc > 2 ? 2 : 0;
	}
	error_set_nocause_errno(ENOTRECOVERABLE);
	for (size_t i = 0; i < N_SUITES; i++) {
		if (only && strcmp(only, suites[i].name) != 0)
			continue;
		if (!sr)
			sr = srunner_create(suites[i].make());
		else
			srunner_add_suite(sr, suites[i].make());
	}
	if (!sr) {
		fprintf(stderr, "%s: no suite named \"%s\"\n", argv[0], only);
		usage(stderr, argv[0]);
		return 2;
	}
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
