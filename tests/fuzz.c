/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for everything kvmmigfs takes from outside: domain XML
 * (the served side: parse, sizes in <metadata>; the written side: check
 * and rewrite), FUSE paths and disk file names, hosts files.  The first
 * byte picks the parser, the rest is its input.  Built with ASan and UBSan
 * (make fuzz); `make check-fuzz` runs it for a bounded time from the seeds
 * in tests/fuzz-seeds/.  A crash, a leak or undefined behaviour fails.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../common/strvec.h"
#include "../fs/domxml.h"
#include "../fs/hosts.h"
#include "../fs/path.h"
#include "../fs/rewrite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int media_exists(void *opaque, const char *path)
{
	(void)opaque;
	return path[0] == '/' && strlen(path) % 2;
}

static void skip(void *opaque, const char *dev, const char *why)
{
	(void)opaque;
	(void)dev;
	(void)why;
}

static void xml_served(const char *s, size_t n)
{
	struct domxml_info info;
	const char *devs[16];
	unsigned long long sizes[16];
	size_t k = 0;
	char *x;

	if (domxml_parse(s, n, &info, skip, NULL) < 0)
		return;
	for (size_t i = 0; i < info.disks.n && k < 16; i++, k++) {
		devs[k] = info.disks.v[i].dev;
		sizes[k] = 512ull * (i + 1);
	}
	x = domxml_with_sizes(s, n, devs, sizes, sizes, k);
	if (x) {
		unsigned long long sz, al;

		for (size_t i = 0; i < k; i++)
			if (domxml_disk_size(x, strlen(x), devs[i], &sz, &al) ==
				1 &&
			    (sz != sizes[i] || al != sizes[i]))
				abort(); /* the size written is the size read */
		free(x);
	}
	domxml_release(&info);
}

/* A domain.xml the rewrite accepts lists, when served, exactly the disks
 * the rewrite waits for: both ask domxml_disk_rule(). */
static void same_disks(const char *s, size_t n, const struct strvec *devs)
{
	struct domxml_info info;

	if (domxml_parse(s, n, &info, skip, NULL) < 0)
		abort();
	if (info.disks.n != devs->n)
		abort();
	for (size_t i = 0; i < devs->n; i++)
		if (strcmp(info.disks.v[i].dev, devs->v[i]) != 0)
			abort();
	domxml_release(&info);
}

static void xml_written(const char *s, size_t n)
{
	struct strvec devs = STRVEC_INIT;
	struct rewrite_disk disks[16];
	char *name = NULL, *x;
	int cloned;

	if (rewrite_check(s, n, &devs, &name) < 0) {
		strvec_release(&devs);
		return;
	}
	same_disks(s, n, &devs);
	for (size_t i = 0; i < devs.n && i < 16; i++)
		disks[i] = (struct rewrite_disk){ devs.v[i],
						  "/var/lib/libvirt/images/x",
						  i % 2 ? "qcow2" : "raw",
						  (int)(i % 3 == 0) };
	x = rewrite_domain(
	    s, n,
	    &(struct rewrite_spec){ .name = n % 2 ? name : "clone",
				    .disks = disks,
				    .ndisks = devs.n < 16 ? devs.n : 16,
				    .media_exists = media_exists },
	    &cloned);
	free(x);
	free(name);
	strvec_release(&devs);
}

static void names(const char *s)
{
	struct fs_path p;
	char dev[64], fmt[64];

	path_parse(s, &p);
	path_disk_name(s, dev, sizeof dev, fmt, sizeof fmt);
	path_word_ok(s);
	hosts_name_ok(s);
}

static void hosts(const char *s)
{
	struct hosts_file hf;
	struct strvec words = STRVEC_INIT;

	if (hosts_parse_string(s, "fuzz", &hf) == 0)
		hosts_release(&hf);
	hosts_split_words(s, &words);
	strvec_release(&words);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size < 1)
		return 0;
	/* The parsers take NUL-terminated text or (text, length): give both
	 * a terminated copy. */
	s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 4) {
	case 0:
		xml_served(s, size - 1);
		break;
	case 1:
		xml_written(s, size - 1);
		break;
	case 2:
		names(s);
		break;
	default:
		hosts(s);
		break;
	}
	free(s);
	return 0;
}
