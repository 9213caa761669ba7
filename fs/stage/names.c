/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Staging, which names a guest and its files may have.
 * See ../stage.h for the rules, stage-int.h for the locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../nbd/endpoint.h"
#include "../../common/error.h"
#include "../../nbd/extents.h"
#include "../../nbd/hostcmd.h"
#include "../domxml.h"
#include "../log.h"
#include "../path.h"
#include "../record.h"
#include "../rewrite.h"
#include "stage-int.h"

bool stage_guest_name_ok(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > 200 || name[0] == '.' || name[0] == '-' ||
	    name[0] == '+')
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
		      *p == '-' || *p == '+'))
			return false;
	return true;
}

static bool creatable_format(const char *fmt)
{
	return strcmp(fmt, "raw") == 0 || strcmp(fmt, "qcow2") == 0;
}

/* name is domain.xml or DEV.FMT with a format we create. */
static bool final_ok(const char *name)
{
	char dev[64], fmt[64];

	if (strcmp(name, XML_NAME) == 0)
		return true;
	return path_disk_name(name, dev, sizeof dev, fmt, sizeof fmt) == 0 &&
	       creatable_format(fmt) && strcmp(dev, "domain") != 0;
}

int stage_final_name(const char *name, char *out, size_t len)
{
	size_t n = strlen(name);

	if (n < len && final_ok(name)) {
		strcpy(out, name);
		return 0;
	}
	/* rsync: ".NAME.XXXXXX" */
	if (name[0] == '.' && n > 8 && name[n - 7] == '.') {
		bool random = true;

		for (size_t i = n - 6; i < n; i++)
			if (!((name[i] >= 'a' && name[i] <= 'z') ||
			      (name[i] >= 'A' && name[i] <= 'Z') ||
			      (name[i] >= '0' && name[i] <= '9')))
				random = false;
		if (random && n - 8 < len) {
			snprintf(out, len, "%.*s", (int)(n - 8), name + 1);
			if (final_ok(out))
				return 0;
		}
	}
	/* KIO and others: "NAME.part" (or ".NAME.part") */
	if (n > 5 && strcmp(name + n - 5, ".part") == 0) {
		const char *start = name[0] == '.' ? name + 1 : name;
		size_t m = (size_t)(name + n - 5 - start);

		if (m < len) {
			snprintf(out, len, "%.*s", (int)m, start);
			if (final_ok(out))
				return 0;
		}
	}
	error_set(
	    EINVAL,
	    "\"%s\" is not a file of a guest: use domain.xml or DEV.FORMAT "
	    "with FORMAT raw or qcow2",
	    name);
	return -1;
}
