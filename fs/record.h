/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Staging records: what survives the daemon.
 *
 * A staging folder lives in the daemon's memory; its volumes live on the
 * host.  So that a daemon killed mid-copy leaves nothing nobody can find,
 * each staging folder has a record, DIR/HOST/GUEST:
 *
 *	kvmmigfs-staging 2
 *	pid 4242
 *	host 5a1c6e0e-7c3b-4b8e-9d0f-1f2e3d4c5b6a
 *	hosts /etc/kvmmigfs/hosts.conf
 *	pool default
 *	disk vda.raw f:65024:403311:2026-12-02_10:20:14.123456789_+0000
 *	disk vdb.qcow2 -
 *	move hosta web1
 *
 * host is the libvirt host UUID of the machine HOST named then, hosts the
 * mount's hosts file, and each disk names a volume ("GUEST-DEV.FMT")
 * staging created, with its identity (vhost_vol_identity: device, inode
 * and birth time of a file, a logical volume's UUID), or "-" between the
 * volume's creation and the moment its identity is taken.  A volume whose
 * identity is not the one recorded is not the one kvmmigfs created: it is
 * never touched.  A move's folder (move.h) names the guest's old host
 * folder and name, and "keep" with -o keep_source: the next daemon
 * finishes or undoes the move.  A disk is named before its volume is created,
 *so a daemon killed in between leaves nothing nobody can find.  A record is
 * written whole to a temporary file, synced and renamed over the old one:
 * a crash leaves the old record or the new one, never half of one.
 * Version 1 records (no host, no identities) are still read.
 */
#ifndef KVMMIGFS_RECORD_H
#define KVMMIGFS_RECORD_H

#include <stddef.h>
#include <sys/types.h>

struct record_disk {
	char *name; /* final file name, DEV.FMT */
	char *id;   /* the volume's identity; NULL: not known */
};

struct record {
	char *guest;
	pid_t pid;	  /* the daemon that wrote it */
	char *host_id;	  /* the host's libvirt UUID; NULL: version 1 */
	char *hosts_file; /* the mount's hosts file; NULL: version 1 */
	char *pool;	  /* the host's pool then */
	struct record_disk *disks;
	size_t n;
	char *move; /* a move's folder: "HOST GUEST[ keep]", where the guest
		       came from (move.h); NULL: not a move */
};

/* Write rec as DIR/HOST/GUEST (creating DIR/HOST, mode 0700; the record
 * 0600), with this process's pid.  host_id and hosts_file must be set; an
 * identity may be NULL.  -1 with error_set() on failure. */
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
