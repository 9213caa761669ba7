/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The unit test suites of kvmmigfs' FUSE-free core, one per module.
 *
 * Tests that expose a known bug in the core are named bug_* and sit in a
 * test case called "bugs", tagged "bug", of their suite: they fail until
 * the bug is fixed.  CK_EXCLUDE_TAGS=bug runs everything else.
 */
#ifndef KVMMIGFS_TESTS_SUITES_H
#define KVMMIGFS_TESTS_SUITES_H

#include <check.h>

Suite *hosts_suite(void);
Suite *path_suite(void);
Suite *domxml_suite(void);
Suite *extents_suite(void);
Suite *hostcmd_suite(void);
Suite *rewrite_suite(void);
Suite *copy_suite(void);
Suite *endpoint_suite(void);
Suite *record_suite(void);
Suite *stage_suite(void);
Suite *status_suite(void);
Suite *crc_suite(void);
Suite *virt_suite(void);

#endif
