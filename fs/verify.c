/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Verify before define: see verify.h. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../common/error.h"
#include "diskcrc.h"
#include "kvmmigfs.h"
#include "log.h"
#include "status.h"
#include "verify.h"
#include "virt.h"

static struct vhost *find_host(struct kvmmigfs *fs, const char *name)
{
	for (size_t i = 0; i < fs->hosts.n; i++)
		if (strcmp(fs->hosts.hosts[i].name, name) == 0)
			return fs->vhosts[i];
	return NULL;
}

struct side {
	struct disk_crc_spec spec;
	struct crc_map map;
	int r, errnum;
	char msg[1024];
};

static void *compute(void *arg)
{
	struct side *s = arg;

	s->r = disk_crc_map(&s->spec, &s->map);
	if (s->r < 0) {
		s->errnum = error_errno();
		snprintf(s->msg, sizeof s->msg, "%s", error_msg());
	}
	return NULL;
}

int verify_disk(void *ctx, const struct stage_verify *v)
{
	struct kvmmigfs *fs = ctx;
	struct vhost *src = find_host(fs, v->origin_host);
	struct vhost *dst = find_host(fs, v->host);
	char uuid[64], desc[512], sdesc[4200];
	struct side a = { 0 }, b = { 0 };
	pthread_t t;
	struct transfer *x;
	bool threaded;
	uint64_t block;
	int r = -1;

	snprintf(desc, sizeof desc, "%s/%s/%s", v->host, v->guest, v->file);
	if (!src) {
		log_warning("%s: not verified: its source host %s is not in "
			    "this mount's hosts file",
			    desc, v->origin_host);
		return 0;
	}
	if (!dst) {
		error_set(ENOENT, "no host %s", v->host);
		return -1;
	}
	if (vhost_host_id(src, uuid, sizeof uuid) < 0) {
		error_prefix("verifying against %s:%s", v->origin_host,
			     v->origin_path);
		return -1;
	}
	if (strcmp(uuid, v->origin_uuid) != 0) {
		log_warning("%s: not verified: host %s of this mount is "
			    "another machine (UUID %s) than the one it came "
			    "from (%s)",
			    desc, v->origin_host, uuid, v->origin_uuid);
		return 0;
	}
	snprintf(sdesc, sizeof sdesc, "%s:%s", v->origin_host, v->origin_path);
	a.spec = (struct disk_crc_spec){
		.host = v->origin_host,
		.shell = vhost_config(src)->shell.v,
		.tool = fs->crc_tool,
		.filter = fs->zeroscan,
		.path = v->origin_path,
		.format = v->origin_format,
		.shared = fs->allow_running,
		.desc = sdesc,
		.timeout_ms = fs->timeout_ms,
		.rate = vhost_rate(src),
	};
	b.spec = (struct disk_crc_spec){
		.host = v->host,
		.shell = vhost_config(dst)->shell.v,
		.tool = fs->crc_tool,
		.filter = fs->zeroscan,
		.path = v->path,
		.format = v->format,
		.desc = desc,
		.timeout_ms = fs->timeout_ms,
		.length = v->size,
		.rate = vhost_rate(dst),
	};
	/* Both hosts at once. */
	x = status_begin(fs->status, TRANSFER_VERIFY, v->host, v->guest,
			 v->file, 0);
	transfer_phase(x, "checksumming");
	threaded = pthread_create(&t, NULL, compute, &a) == 0;
	if (!threaded)
		compute(&a);
	compute(&b);
	if (threaded)
		pthread_join(t, NULL);
	if (a.r < 0 || b.r < 0) {
		struct side *f = a.r < 0 ? &a : &b;

		error_set(f->errnum, "verifying: %s", f->msg);
		goto out;
	}
	if (a.map.size != b.map.size) {
		error_set(EIO,
			  "verification failed: %s has %" PRIu64
			  " bytes, the copy %" PRIu64,
			  sdesc, a.map.size, b.map.size);
		goto out;
	}
	if (a.map.total != b.map.total) {
		block = crc_first_difference(&a.map, &b.map);
		error_set(EIO,
			  "verification failed: crc32 %08" PRIx32
			  " on %s, %08" PRIx32 " on %s; the first block that "
			  "differs is block %" PRIu64 " (bytes %" PRIu64
			  "-%" PRIu64 ")",
			  a.map.total, sdesc, b.map.total, v->host, block,
			  block * CRC_BLOCK,
			  block * CRC_BLOCK + crc_block_len(&b.map, block) - 1);
		goto out;
	}
	log_info("%s: verified: crc32 %08" PRIx32 " here and on %s (%" PRIu64
		 " bytes of data read there, %" PRIu64 " here)",
		 desc, b.map.total, sdesc, a.map.data, b.map.data);
	r = 0;
out:
	if (a.r == 0 && b.r == 0)
		transfer_add(x,
			     a.map.data > b.map.data ? a.map.data : b.map.data);
	if (r < 0)
		transfer_fail(x, error_errno(), error_msg());
	transfer_end(x);
	crc_map_free(&a.map);
	crc_map_free(&b.map);
	return r;
}
