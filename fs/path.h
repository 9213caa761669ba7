/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Paths of the mount and the names inside them.
 *
 *	/                      PATH_ROOT
 *	/HOST                  PATH_HOST
 *	/HOST/GUEST            PATH_GUEST
 *	/HOST/GUEST/FILE       PATH_FILE   (domain.xml or DEV.FORMAT)
 *
 * Pure functions, no I/O.
 */
#ifndef KVMMIGFS_PATH_H
#define KVMMIGFS_PATH_H

#include <stddef.h>

#define PATH_NAME_MAX 255
#define DOMAIN_XML    "domain.xml"

enum path_kind { PATH_ROOT, PATH_HOST, PATH_GUEST, PATH_FILE };

struct fs_path {
	enum path_kind kind;
	char host[PATH_NAME_MAX + 1];  /* set for PATH_HOST and deeper */
	char guest[PATH_NAME_MAX + 1]; /* set for PATH_GUEST and deeper */
	char file[PATH_NAME_MAX + 1];  /* set for PATH_FILE */
};

/* Split an absolute path as FUSE passes it.  Returns 0, or a negative
 * errno: -ENOENT for paths deeper than a file or with empty, "." or ".."
 * components, -ENAMETOOLONG for a component over 255 bytes. */
int path_parse(const char *path, struct fs_path *out);

/* Split a disk file name "DEV.FORMAT" at its last dot.  Returns 0, or
 * -EINVAL if there is no dot, or either side is empty or not a safe name
 * (see path_word_ok). */
int path_disk_name(const char *file, char *dev, size_t devlen, char *fmt,
		   size_t fmtlen);

/* True if s is 1-32 bytes of [a-z0-9_]: a target dev or a format name. */
int path_word_ok(const char *s);

#endif
