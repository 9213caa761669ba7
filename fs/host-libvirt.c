/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The host staging writes to, as libvirt and the host's shell reach it
 * (host.h): pool and volumes through libvirt (virt.h), what libvirt cannot
 * do (resize a logical volume, cut a file to an odd size, ask whether a
 * path exists, a volume's identity) by a command run through the host's
 * shell, and NBD connections by a server started through it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "../nbd/endpoint.h"
#include "../common/error.h"
#include "../nbd/hostcmd.h"
#include "diskcrc.h"
#include "host.h"
#include "preflight.h"
#include "virt.h"

struct libvirt_host {
	struct host host;
	struct vhost *vh;
	int timeout_ms; /* bound of every host command */
	const char *crc_tool, *filter;
};

static struct libvirt_host *lh(void *h)
{
	return h;
}

/* Run cmd on the host; its exit status, or -1. */
static int run(struct libvirt_host *l, char **cmd)
{
	return hostcmd_run(vhost_config(l->vh)->shell.v, cmd, l->timeout_ms);
}

static int pool_kind(void *h)
{
	return vhost_pool_kind(lh(h)->vh);
}

static int pool_space(void *h, uint64_t *capacity, uint64_t *available)
{
	return vhost_pool_space(lh(h)->vh, capacity, available);
}

static int vol_exists(void *h, const char *name)
{
	return vhost_vol_exists(lh(h)->vh, name);
}

static int vol_create(void *h, const char *name, const char *format,
		      uint64_t capacity, bool allocate, char **path)
{
	return vhost_vol_create(lh(h)->vh, name, format, capacity, allocate,
				path);
}

static int vol_delete(void *h, const char *name)
{
	return vhost_vol_delete(lh(h)->vh, name);
}

static int vol_capacity(void *h, const char *name, uint64_t *capacity)
{
	return vhost_vol_capacity(lh(h)->vh, name, capacity);
}

/* libvirt resizes files; it cannot resize a logical volume (and would
 * refuse to shrink one), so that is done on the host with lvresize (LVM
 * rounds up to whole extents), and libvirt told. */
static int vol_resize(void *h, const char *name, const char *path, bool block,
		      uint64_t size)
{
	struct libvirt_host *l = lh(h);
	char arg[32], *cmd[] = { "lvresize", "--force", "--yes",      "-q",
				 "-L",	     arg,	(char *)path, NULL };
	uint64_t total, avail, now;
	int r;

	if (!block)
		return vhost_vol_resize(l->vh, name, size);
	snprintf(arg, sizeof arg, "%llub", (unsigned long long)size);
	r = run(l, cmd);
	if (r < 0)
		return -1;
	if (r == 0)
		return vhost_pool_refresh(l->vh);
	/* lvresize fails on a size that rounds to what the volume has
	 * already: what counts is whether it holds size now. */
	if (vhost_pool_refresh(l->vh) < 0 ||
	    vhost_vol_capacity(l->vh, name, &now) < 0)
		return -1;
	if (now >= size)
		return 0;
	if (vhost_pool_space(l->vh, &total, &avail) == 0 && avail < size - now)
		error_set(ENOSPC,
			  "growing %s to %llu bytes: pool %s has %llu bytes "
			  "free",
			  name, (unsigned long long)size,
			  vhost_config(l->vh)->pool, (unsigned long long)avail);
	else
		error_set(EIO, "lvresize -L %s %s on the host: exit %d", arg,
			  path, r);
	return -1;
}

/* libvirt rounds sizes up to whole sectors: the host cuts the file. */
static int vol_truncate(void *h, const char *path, uint64_t size)
{
	char arg[32], *cmd[] = { "truncate", "-s", arg, (char *)path, NULL };
	int r;

	snprintf(arg, sizeof arg, "%llu", (unsigned long long)size);
	r = run(lh(h), cmd);
	if (r > 0)
		error_set(EIO, "truncate -s %s on the host: exit %d", arg, r);
	return r == 0 ? 0 : -1;
}

static int vol_identity(void *h, const char *name, char **id)
{
	return vhost_vol_identity(lh(h)->vh, name, id);
}

static struct endpoint *vol_open(void *h, const struct endpoint_spec *spec)
{
	struct endpoint_spec s = *spec;

	s.shell = vhost_config(lh(h)->vh)->shell.v;
	s.rate = vhost_rate(lh(h)->vh);
	return endpoint_open(&s);
}

static int vol_crc_map(void *h, const char *path, const char *format,
		       struct crc_map *out)
{
	struct libvirt_host *l = lh(h);
	char desc[4200];

	snprintf(desc, sizeof desc, "%s:%s", l->host.name, path);
	return disk_crc_map(
	    &(struct disk_crc_spec){ .host = l->host.name,
				     .shell = vhost_config(l->vh)->shell.v,
				     .tool = l->crc_tool,
				     .filter = l->filter,
				     .path = path,
				     .format = format,
				     .desc = desc,
				     .timeout_ms = l->timeout_ms,
				     .rate = vhost_rate(l->vh) },
	    out);
}

static int path_exists(void *h, const char *path)
{
	char *cmd[] = { "test", "-e", (char *)path, NULL };
	int r = run(lh(h), cmd);

	if (r < 0)
		return -1;
	if (r > 1) {
		error_set(EIO, "cannot check \"%s\" on the host (exit %d)",
			  path, r);
		return -1;
	}
	return r == 0;
}

static int host_id(void *h, char *out, size_t len)
{
	return vhost_host_id(lh(h)->vh, out, len);
}

static int guest_exists(void *h, const char *name)
{
	return vhost_guest_exists(lh(h)->vh, name);
}

static int define(void *h, const char *xml, bool start)
{
	return vhost_define(lh(h)->vh, xml, start);
}

static int can_host(void *h, const char *xml, size_t len, bool keep_uuid)
{
	return preflight_xml(lh(h)->vh, xml, len, keep_uuid, path_exists, h);
}

static const struct host_ops libvirt_ops = {
	.pool_kind = pool_kind,
	.pool_space = pool_space,
	.vol_exists = vol_exists,
	.vol_create = vol_create,
	.vol_delete = vol_delete,
	.vol_resize = vol_resize,
	.vol_capacity = vol_capacity,
	.vol_truncate = vol_truncate,
	.vol_identity = vol_identity,
	.vol_open = vol_open,
	.vol_crc_map = vol_crc_map,
	.path_exists = path_exists,
	.host_id = host_id,
	.guest_exists = guest_exists,
	.can_host = can_host,
	.define = define,
};

struct host *host_libvirt_new(struct vhost *vh, int timeout_ms,
			      const char *crc_tool, const char *filter)
{
	struct libvirt_host *l = calloc(1, sizeof *l);

	if (!l) {
		error_set(ENOMEM, "out of memory");
		return NULL;
	}
	l->vh = vh;
	l->timeout_ms = timeout_ms;
	l->crc_tool = crc_tool;
	l->filter = filter;
	l->host.ops = &libvirt_ops;
	l->host.opaque = l;
	l->host.name = vhost_config(vh)->name;
	l->host.pool = vhost_config(vh)->pool;
	return &l->host;
}

void host_libvirt_free(struct host *h)
{
	free(h ? h->opaque : NULL);
}
