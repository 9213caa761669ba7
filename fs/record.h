/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Staging records: what survives the daemon.
 *
 * A staging folder lives in the daemon's memory; its volumes live on the
 * host.  So that a daemon killed mid-copy leaves nothing nobody can find,
 * each staging folder has a record, DIR/HOST/GUEST:
 *
 *	kvmmigfs-staging 1
 *	pid 4242
 *	pool default
 *	disk vda.raw
 *	disk vdb.qcow2
 *
 * naming the disks whose volumes ("GUEST-DEV.FMT") staging created — a
 * disk is added only once its volume was created, so a record never
 * names a volume kvmmigfs did not create.  A record is written whole to a
 * temporary file, synced and renamed over the old one: a crash leaves the
 * old record or the new one, never half of one.
 */
#ifndef KVMMIGFS_RECORD_H
#define KVMMIGFS_RECORD_H

#include <stddef.h>
#include <sys/types.h>

struct record {
	char *guest;
	pid_t pid;    /* the daemon that wrote it */
	char *pool;   /* the host's pool then */
	char **disks; /* final file names, DEV.FMT */
	size_t n;
};

/* Write rec as DIR/HOST/GUEST (creating DIR/HOST, mode 0700), with this
 * process's pid.  -1 with error_set() on failure. */
int record_save(const char *dir, const char *host, const struct record *rec);

/* Remove DIR/HOST/GUEST; a missing record is not an error. */
int record_delete(const char *dir, const char *host, const char *guest);

/* Every record of HOST: *out (malloc'd, *n entries; free each with
 * record_release, then the array).  Files that are not records are
 * skipped with a log line.  A missing DIR/HOST gives none. */
int record_load(const char *dir, const char *host, struct record **out,
		size_t *n);

void record_release(struct record *rec);

#endif
