/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A fake host for staging's unit tests (fs/host.h): a pool that is a
 * directory of this machine (volumes are sparse files, served by a local
 * nbdkit), guests that are names in memory, and knobs to make it fail.
 */
#ifndef KVMMIGFS_TESTS_FAKEHOST_H
#define KVMMIGFS_TESTS_FAKEHOST_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../fs/host.h"
#include "../common/strvec.h"

struct fakehost {
	struct host host;
	char dir[PATH_MAX];	 /* the pool: volumes are files here */
	int kind;		 /* enum pool_kind: POOL_FILES by default */
	uint64_t pool_capacity;	 /* what pool_space says */
	uint64_t pool_available; /* ... and free: default 1 TiB */
	char host_id[64];	 /* the libvirt host UUID it claims */
	struct strvec guests;	 /* defined guests */
	char *defined_xml;	 /* the last XML defined */
	int defines;		 /* define calls that defined */
	int fail_define;	 /* errno for the next define, 0: works */
	int refuse_guest;	 /* errno can_host answers, 0: any guest */
	int crc_maps;		 /* vol_crc_map calls */
	/* A slow host: while hold_create is set, vol_create waits (at most
	 * 5 s) with in_create set, until fakehost_release_create(). */
	pthread_mutex_t gate_lock;
	pthread_cond_t gate;
	bool hold_create, in_create;
};

/* A fake host named name over a new temporary directory. */
void fakehost_init(struct fakehost *fh, const char *name);
/* Wait until a vol_create is held (true), at most 5 s. */
bool fakehost_wait_create(struct fakehost *fh);
/* Let the held vol_create go on. */
void fakehost_release_create(struct fakehost *fh);
/* Remove its directory and free it. */
void fakehost_release(struct fakehost *fh);

/* The path of volume name in its pool. */
void fakehost_vol_path(struct fakehost *fh, const char *name, char *out,
		       size_t len);
/* Someone else's volume: a file of size bytes, each byte fill. */
void fakehost_put_volume(struct fakehost *fh, const char *name, size_t size,
			 int fill);
/* Whether volume name exists; its bytes (malloc'd) and size. */
bool fakehost_has_volume(struct fakehost *fh, const char *name);
char *fakehost_read_volume(struct fakehost *fh, const char *name, size_t *size);

#endif
