/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <string.h>

#include "path.h"

static int take(const char **p, char *out)
{
	const char *start = *p, *end = strchr(start, '/');
	size_t len = end ? (size_t)(end - start) : strlen(start);

	if (len == 0 || (len == 1 && start[0] == '.') ||
	    (len == 2 && start[0] == '.' && start[1] == '.'))
		return -ENOENT;
	if (len > PATH_NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(out, start, len);
	out[len] = '\0';
	*p = end ? end + 1 : start + len;
	return 0;
}

int path_parse(const char *path, struct fs_path *out)
{
	char *fields[] = { out->host, out->guest, out->file };
	const char *p = path;
	int depth = 0;

	memset(out, 0, sizeof *out);
	if (*p != '/')
		return -ENOENT;
	p++;
	while (*p) {
		int r;

		if (depth == 3)
			return -ENOENT;
		r = take(&p, fields[depth]);
		if (r < 0)
			return r;
		depth++;
		/* A trailing slash ends the path. */
		if (p[-1] == '/' && !*p)
			break;
	}
	out->kind = (enum path_kind)depth;
	return 0;
}

int path_word_ok(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 32)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '_'))
			return 0;
	return 1;
}

int path_disk_name(const char *file, char *dev, size_t devlen, char *fmt,
		   size_t fmtlen)
{
	const char *dot = strrchr(file, '.');
	size_t dlen;

	if (!dot)
		return -EINVAL;
	dlen = dot - file;
	if (dlen >= devlen || strlen(dot + 1) >= fmtlen)
		return -EINVAL;
	memcpy(dev, file, dlen);
	dev[dlen] = '\0';
	strcpy(fmt, dot + 1);
	if (!path_word_ok(dev) || !path_word_ok(fmt))
		return -EINVAL;
	return 0;
}
