/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A host as staging needs it: its pool, its volumes, its guests, one
 * operations table.  fs/host-libvirt.c implements it with libvirt (virt.h)
 * and the host's shell (hostcmd.h); tests/fakehost.c in memory and local
 * files, so that staging's rules are tested without ssh.
 *
 * Every operation may block on the network (the libvirt backend bounds
 * each by the mount's timeout).  Errors: -1 with error_set(): ENOENT (no
 * such volume or guest), EEXIST (a volume of that name exists: it is never
 * touched), ENOSPC, EINVAL (XML the host refuses), EHOSTDOWN, ETIMEDOUT,
 * EIO.
 */
#ifndef KVMMIGFS_HOST_H
#define KVMMIGFS_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct endpoint;
struct endpoint_spec;
struct crc_map;

struct host_ops {
	/* The pool: enum pool_kind (virt.h); its size and free space. */
	int (*pool_kind)(void *h);
	int (*pool_space)(void *h, uint64_t *capacity, uint64_t *available);
	/* Whether the pool has a volume NAME now: 1, 0 or -1. */
	int (*vol_exists)(void *h, const char *name);
	/* Create volume NAME (see vhost_vol_create); *path malloc'd. */
	int (*vol_create)(void *h, const char *name, const char *format,
			  uint64_t capacity, bool allocate, char **path);
	int (*vol_delete)(void *h, const char *name);
	/* Set its size; a block volume (path) whole extents at least, with
	 * ENOSPC when the pool cannot give what growing needs. */
	int (*vol_resize)(void *h, const char *name, const char *path,
			  bool block, uint64_t capacity);
	int (*vol_capacity)(void *h, const char *name, uint64_t *capacity);
	/* Cut the file at path to exactly size bytes (odd raw sizes). */
	int (*vol_truncate)(void *h, const char *path, uint64_t size);
	/* The volume's identity now, *id malloc'd (vhost_vol_identity). */
	int (*vol_identity)(void *h, const char *name, char **id);
	/* An NBD connection to a volume: spec as endpoint_open's, the
	 * backend says how to reach the host.  NULL with error_set(). */
	struct endpoint *(*vol_open)(void *h, const struct endpoint_spec *spec);
	/* The CRC of every block of the volume at path (nbd/crc.h), computed
	 * on the host.  0 or -1. */
	int (*vol_crc_map)(void *h, const char *path, const char *format,
			   struct crc_map *out);
	/* Whether path exists on the host: 1, 0 or -1. */
	int (*path_exists)(void *h, const char *path);
	/* The host's identity (libvirt host UUID) into out. */
	int (*host_id)(void *h, char *out, size_t len);
	/* Whether a guest NAME is defined now: 1, 0 or -1. */
	int (*guest_exists)(void *h, const char *name);
	/* Can the host take a guest of this domain XML (preflight.h)?
	 * keep_uuid: it keeps its UUID there (not a clone).  0 or -1. */
	int (*can_host)(void *h, const char *xml, size_t len, bool keep_uuid);
	/* Define (and start): 0, -1, or -2 defined but not started. */
	int (*define)(void *h, const char *xml, bool start);
};

struct host {
	const struct host_ops *ops;
	void *opaque;
	const char *name; /* the hosts-file name, for messages and records */
	const char *pool; /* the pool new volumes go to */
};

/* The libvirt backend of a vhost (virt.h), commands bounded by
 * timeout_ms; crc_tool and filter: kvmmigfs-crc and the zero-scan filter
 * on the host (diskcrc.h).  NULL with error_set(). */
struct vhost;
struct host *host_libvirt_new(struct vhost *vh, int timeout_ms,
			      const char *crc_tool, const char *filter);
void host_libvirt_free(struct host *h);

#endif
