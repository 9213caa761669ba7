/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The CRC32 of a host's disk: see diskcrc.h. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../nbd/endpoint.h"
#include "../nbd/hostcmd.h"
#include "diskcrc.h"
#include "log.h"

/* Cached totals: a short list, newest first. */
#define CACHE_MAX 256

struct cached {
	char *key; /* "HOST\nPATH\nSTAMP" */
	uint32_t crc;
};

static struct cached cache[CACHE_MAX];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static bool cache_get(const char *key, uint32_t *crc)
{
	bool hit = false;

	pthread_mutex_lock(&cache_lock);
	for (int i = 0; i < CACHE_MAX && cache[i].key; i++)
		if (strcmp(cache[i].key, key) == 0) {
			*crc = cache[i].crc;
			hit = true;
			break;
		}
	pthread_mutex_unlock(&cache_lock);
	return hit;
}

static void cache_put(const char *key, uint32_t crc)
{
	char *k = strdup(key);

	if (!k)
		return;
	pthread_mutex_lock(&cache_lock);
	free(cache[CACHE_MAX - 1].key);
	memmove(cache + 1, cache, (CACHE_MAX - 1) * sizeof cache[0]);
	cache[0].key = k;
	cache[0].crc = crc;
	pthread_mutex_unlock(&cache_lock);
}

void disk_crc_forget(void)
{
	pthread_mutex_lock(&cache_lock);
	for (int i = 0; i < CACHE_MAX; i++) {
		free(cache[i].key);
		cache[i].key = NULL;
	}
	pthread_mutex_unlock(&cache_lock);
}

/* Run kvmmigfs-crc with args on the host: 0 with its stdout in *out, 1
 * if the host has no kvmmigfs-crc, -1 with error_set(). */
static int run_tool(const struct disk_crc_spec *s, char **args, char **out)
{
	char *cmd[16], err[512], len_arg[32];
	size_t n = 0, len;
	int r;

	cmd[n++] = (char *)s->tool;
	for (; *args; args++)
		cmd[n++] = *args;
	if (s->length) {
		snprintf(len_arg, sizeof len_arg, "%llu",
			 (unsigned long long)s->length);
		cmd[n++] = (char *)"-l";
		cmd[n++] = len_arg;
	}
	cmd[n++] = (char *)"--";
	cmd[n++] = (char *)s->path;
	cmd[n] = NULL;
	r = hostcmd_capture(s->shell, cmd, s->timeout_ms, out, &len, err,
			    sizeof err);
	if (r == 0)
		return 0;
	free(*out);
	*out = NULL;
	if (r < 0) {
		error_prefix("%s: kvmmigfs-crc", s->desc);
		return -1;
	}
	if (r == 127) /* sh: not found, or exec failed here */
		return 1;
	if (r == 255 && s->shell && s->shell[0])
		error_set(EHOSTDOWN, "%s: kvmmigfs-crc: %s", s->desc,
			  err[0] ? err : "ssh failed");
	else
		error_set(EIO, "%s: %s", s->desc,
			  err[0] ? err : "kvmmigfs-crc failed");
	return -1;
}

struct ep_reader {
	struct endpoint *ep;
};

static int ep_extent(void *opaque, uint64_t off, uint64_t max, uint64_t *len,
		     bool *zero)
{
	return endpoint_extent(opaque, off, max, len, zero);
}

static int ep_pread(void *opaque, void *buf, size_t count, uint64_t off)
{
	ssize_t n = endpoint_pread(opaque, buf, count, off);

	if (n >= 0 && (size_t)n != count) {
		error_set(EIO, "short read at offset %llu",
			  (unsigned long long)off);
		return -1;
	}
	return n < 0 ? -1 : 0;
}

/* The fallback: read the disk over NBD here. */
static int over_nbd(const struct disk_crc_spec *s, struct crc_map *out)
{
	struct endpoint_spec spec = {
		.shell = s->shell,
		.path = s->path,
		.format = s->format,
		.readonly = true,
		.shared = s->shared,
		.filter = s->filter,
		.desc = s->desc,
		.timeout_ms = s->timeout_ms,
		.rate = s->rate,
	};
	struct endpoint *ep;
	struct crc_source src = { .extent = ep_extent, .pread = ep_pread };
	void *ops[4];
	int r;

	log_info("%s: no kvmmigfs-crc at %s on the host: computing the CRC "
		 "by reading the disk over NBD",
		 s->desc, s->tool && s->tool[0] ? s->tool : "(none given)");
	ep = endpoint_open(&spec);
	if (!ep)
		return -1;
	src.size = endpoint_size(ep);
	if (s->length && src.size > s->length)
		src.size = s->length;
	for (int i = 0; i < 4; i++)
		ops[i] = ep;
	r = crc_compute(&src, ops, 4, out);
	if (r < 0)
		error_prefix("%s: reading for the CRC", s->desc);
	endpoint_close(ep);
	return r;
}

static int compute(const struct disk_crc_spec *s, bool blocks,
		   struct crc_map *out)
{
	char *args[6], *text = NULL;
	int n = 0, r;

	if (!s->tool || !s->tool[0])
		return over_nbd(s, out);
	args[n++] = (char *)"-k";
	if (blocks)
		args[n++] = (char *)"-b";
	args[n++] = (char *)"-f";
	args[n++] = (char *)s->format;
	if (s->shared)
		args[n++] = (char *)"-s";
	args[n] = NULL;
	r = run_tool(s, args, &text);
	if (r == 1)
		return over_nbd(s, out);
	if (r < 0)
		return -1;
	r = crc_map_parse(text, out);
	if (r < 0)
		error_prefix("%s: kvmmigfs-crc's answer", s->desc);
	free(text);
	return r;
}

int disk_crc_map(const struct disk_crc_spec *s, struct crc_map *out)
{
	return compute(s, true, out);
}

int disk_crc_total(const struct disk_crc_spec *s, uint32_t *crc)
{
	char *args[] = { (char *)"-S", NULL }, *text = NULL, *key = NULL;
	struct crc_map m;
	int r;

	if (s->tool && s->tool[0]) {
		r = run_tool(s, args, &text);
		if (r < 0)
			return -1;
		if (r == 0) {
			size_t l = strcspn(text, "\n");

			text[l] = '\0';
			if (strncmp(text, "stamp ", 6) == 0 &&
			    strcmp(text + 6, "-") != 0 &&
			    asprintf(&key, "%s\n%s\n%s", s->host, s->path,
				     text + 6) < 0)
				key = NULL;
			free(text);
			if (key && cache_get(key, crc)) {
				free(key);
				return 0;
			}
		}
	}
	r = compute(s, false, &m);
	if (r == 0) {
		*crc = m.total;
		if (key)
			cache_put(key, m.total);
		crc_map_free(&m);
	}
	free(key);
	return r;
}
