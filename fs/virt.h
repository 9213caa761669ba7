/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Hosts at run time: a libvirt connection each, and a short-lived cache of
 * their guests.
 *
 * Bounds: connecting is given timeout_ms (a helper thread does it, so a
 * host that never answers cannot hold the caller); an open connection has
 * libvirt keepalive, so a call on a host that stops answering fails within
 * about timeout_ms.  A failed connection is dropped and reopened on next
 * use.  Failures: EHOSTDOWN (cannot reach the host or its libvirtd),
 * ETIMEDOUT (no answer in time), ENOENT (no such guest).
 *
 * Thread model: each vhost has its own lock, held across its libvirt
 * calls, so a slow host delays only operations on that host.  A struct
 * guest is an immutable, reference-counted snapshot: callers keep it as
 * long as they like without locks.
 */
#ifndef KVMMIGFS_VIRT_H
#define KVMMIGFS_VIRT_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/strvec.h"
#include "domxml.h"
#include "hosts.h"

/* Start libvirt's event loop (needed for keepalive).  Call once, after the
 * daemon has forked.  Returns 0 or -1. */
int virt_init(void);

struct vhost;
struct rate;

struct disk_size {
	uint64_t capacity;   /* virtual size: what the guest sees */
	uint64_t allocation; /* bytes allocated on the host */
};

struct guest {
	char *name;
	bool active; /* running (or paused) when fetched */
	char *xml;   /* inactive, migratable domain XML */
	size_t xml_len;
	struct domxml_info info; /* info.disks: the disks listed as files */
	struct disk_size *sizes; /* one per info.disks entry */
	/* private */
	int refs;
	int64_t fetched_ms;
};

struct vhost *vhost_new(const struct host_config *cfg, int timeout_ms,
			int cache_ms);
void vhost_free(struct vhost *vh);
const struct host_config *vhost_config(const struct vhost *vh);

/* Limit the host's transfers to bytes_per_sec (0: none): every NBD
 * connection to it waits for vhost_rate() (nbd/rate.h), a live move's
 * migration is given the limit.  Call before the host is used.  0 or -1
 * (ENOMEM). */
int vhost_set_bwlimit(struct vhost *vh, uint64_t bytes_per_sec);
struct rate *vhost_rate(const struct vhost *vh); /* NULL: no limit */

/* Names of the host's defined guests (cached).  Appends to names. */
int vhost_list(struct vhost *vh, struct strvec *names);

/* A snapshot of the guest (cached); release with guest_put().  NULL with
 * error_set(): ENOENT, EHOSTDOWN, ETIMEDOUT, ... */
struct guest *vhost_guest(struct vhost *vh, const char *name);
void guest_put(struct guest *g);

/* Whether the guest runs now (not cached): 1, 0 or -1 with error_set(). */
int vhost_guest_active(struct vhost *vh, const char *name);

/* Size and free space of the host's pool. */
int vhost_pool_space(struct vhost *vh, uint64_t *capacity, uint64_t *available);

/* What the host's pool holds: files (a new one reads zeros where nothing
 * was written; dir, fs, netfs pools) or block devices (logical volumes,
 * partitions: they may hold old data, take their full size at once and
 * hold raw data only).  Asked once; -1 with error_set(). */
enum pool_kind { POOL_FILES, POOL_BLOCKS };
int vhost_pool_kind(struct vhost *vh);

/* The path of a <disk type='volume'> (pool and volume names, as
 * domxml_disk_rule() reads them) on conn's host: what the mount streams
 * for it.  If size is not NULL, also the volume's size and allocation
 * from the pool.  Returns a malloc'd string (the caller frees it), or
 * NULL with error_set(ENOENT) and libvirt's message when the pool or the
 * volume is not there.  Blocks for libvirt's answer. */
struct _virConnect;
char *virt_volume_path(struct _virConnect *conn, const char *pool,
		       const char *volume, struct disk_size *size);

/* Whether a guest of this name is defined now (not cached): 1, 0, or -1
 * with error_set(). */
int vhost_guest_exists(struct vhost *vh, const char *name);

/* Forget cached listings and snapshots (after defining a guest). */
void vhost_invalidate(struct vhost *vh);

/* Create a volume NAME of FORMAT and CAPACITY bytes in the host's pool:
 * sparse (nothing allocated), or with allocate (block pools) allocated in
 * full and no format.  *path receives its path (malloc'd).  Fails with
 * EEXIST if the pool has a volume of that name: an existing volume is
 * never touched.  Returns 0 or -1 with error_set(). */
int vhost_vol_create(struct vhost *vh, const char *name, const char *format,
		     uint64_t capacity, bool allocate, char **path);

/* Have libvirt look at the pool again (after a volume changed behind its
 * back).  0 or -1. */
int vhost_pool_refresh(struct vhost *vh);

/* Set the capacity of volume NAME (shrinking allowed).  0 or -1. */
int vhost_vol_resize(struct vhost *vh, const char *name, uint64_t capacity);

/* Whether the pool has a volume NAME now: 1, 0, or -1 with error_set(). */
int vhost_vol_exists(struct vhost *vh, const char *name);

/* The capacity of volume NAME now (a logical volume's is a whole number
 * of extents).  0 or -1. */
int vhost_vol_capacity(struct vhost *vh, const char *name, uint64_t *capacity);

/* Delete volume NAME from the host's pool.  0 or -1. */
int vhost_vol_delete(struct vhost *vh, const char *name);

/* The host's identity: libvirt's host UUID (from its capabilities), so
 * that a name in the hosts file that now means another machine is seen.
 * Asked once.  0, or -1 with error_set(). */
#define VHOST_ID_MAX 80
int vhost_host_id(struct vhost *vh, char *out, size_t len);

/* The identity of volume NAME now, *id malloc'd: "f:DEV:INO:BIRTH" for a
 * file (device, inode, birth time, read with stat on the host), "lv:UUID"
 * for a block volume (a logical volume's UUID, read with lvs).  A volume
 * deleted and made again under the same name has another.  0, or -1 with
 * error_set(): ENOENT if there is no such volume. */
int vhost_vol_identity(struct vhost *vh, const char *name, char **id);

/* Define the guest (libvirt validates the XML) and, if start, start it.
 * Caches are invalidated.  Returns 0, or -1 with error_set(): EINVAL for
 * XML libvirt refuses, EEXIST for a name or UUID taken, EIO otherwise;
 * -2 if defined but not started (error_set() says why). */
int vhost_define(struct vhost *vh, const char *xml, bool start);

/* What a move must know of a guest: 0, or -1 with error_set(). */
struct guest_state {
	int active;	  /* it runs (or is paused) */
	int paused;	  /* it is paused */
	int snapshots;	  /* how many snapshots it has */
	int managed_save; /* it has a saved state (virsh managedsave) */
};
int vhost_guest_state(struct vhost *vh, const char *name,
		      struct guest_state *st);

/* The guest with this UUID: 1 (its name written to name), 0 none, -1
 * with error_set(). */
int vhost_guest_by_uuid(struct vhost *vh, const char *uuid, char *name,
			size_t len);

/* Undefine the guest (its NVRAM file, if any, stays).  0 or -1. */
int vhost_undefine(struct vhost *vh, const char *name);

/* Stop the guest at once (virsh destroy).  0 or -1. */
int vhost_destroy(struct vhost *vh, const char *name);

/* Rename a shut-off guest (libvirt's rename).  0 or -1. */
int vhost_rename(struct vhost *vh, const char *name, const char *newname);

/* Network NAME on the host: 1 defined and active, 2 defined but not
 * active, 0 not defined, -1 with error_set(). */
int vhost_network(struct vhost *vh, const char *name);

/* Can the host run a guest that needs n (domxml.h): its emulator,
 * machine type and virtualization type (the host's domain capabilities;
 * ENOPKG), and the CPU features it requires by name (libvirt's hypervisor
 * CPU comparison; ENOEXEC)?  0, or -1 with error_set() naming what is
 * missing.  Never EOPNOTSUPP or EXDEV, which make movers copy instead. */
int vhost_can_run(struct vhost *vh, const struct domxml_needs *n);

/* Every path that the host's guests other than except name (disks,
 * removable media, backing stores; volumes resolved), and the backing
 * file of every volume of its active pools, appended to paths: what must
 * not be deleted.  0 or -1. */
int vhost_paths_in_use(struct vhost *vh, const char *except,
		       struct strvec *paths);

/* Delete the pool volume at path: 1 deleted, 0 not a volume of any of
 * the host's pools (left alone), -1 with error_set(). */
int vhost_vol_delete_path(struct vhost *vh, const char *path);

/* The guest's XML for a migration: *live its running definition,
 * *inactive its persistent one, both migratable (malloc'd).  0 or -1. */
int vhost_migratable_xml(struct vhost *vh, const char *name, char **live,
			 char **inactive);

/* Live migration with its disks copied (non-shared storage), from this
 * machine: the guest is defined and runs on dst afterwards, undefined on
 * src; auto-converge.  The streams go where the URIs say ("unix:///..."
 * paths on each host, carried between them by the caller's forwards). */
struct migrate_params {
	const char *dest_xml;	  /* the running definition on dst */
	const char *persist_xml;  /* the persistent one on dst */
	const char *const *disks; /* target devs copied */
	size_t ndisks;
	const char *uri;       /* the memory stream */
	const char *disks_uri; /* the disks' NBD stream */
	const char *dest_name; /* its name on dst; NULL: the same */
	/* The disks not copied are the same files on both hosts, found so by
	 * the caller, and use a cache mode safe for that (none, directsync):
	 * libvirt need not tell shared storage itself (VIR_MIGRATE_UNSAFE,
	 * which skips only that check). */
	bool shared_checked;
};
struct migrate_progress {
	uint64_t disk_done, disk_total;
	uint64_t memory_done, memory_total;
};
struct vmigration;
/* Start it in a thread of its own, with connections of its own to both
 * hosts.  NULL with error_set(). */
struct vmigration *vhost_migrate_start(struct vhost *src, const char *name,
				       struct vhost *dst,
				       const struct migrate_params *p);
/* Whether it still runs; *pr updated where libvirt says (not cleared). */
bool vmigration_progress(struct vmigration *m, struct migrate_progress *pr);
/* Ask libvirt to abort it (it ends soon after, EINTR). */
void vmigration_abort(struct vmigration *m);
/* Wait for its end and free it: 0 migrated, or -1 with error_set()
 * (EINTR when aborted): then the guest still runs on src. */
int vmigration_finish(struct vmigration *m);

#endif
