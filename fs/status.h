/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Transfers a mount runs, for MOUNT/.status and .status.json: one entry
 * per disk written into a host or read out of one, with the bytes of data
 * moved so far, running or ended in the last STATUS_KEEP_S seconds.
 *
 * Thread model: the registry has one lock, held only to add, end, prune
 * and render entries; bytes are added with atomics, so the data path takes
 * no lock.  A transfer handle stays valid until transfer_end().
 */
#ifndef KVMMIGFS_STATUS_H
#define KVMMIGFS_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How long an ended transfer stays listed. */
#define STATUS_KEEP_S 600

enum transfer_kind {
	TRANSFER_WRITE,	 /* a disk written into a host (a staged disk) */
	TRANSFER_READ,	 /* a disk read out of a host */
	TRANSFER_VERIFY, /* a copied disk compared with its source */
	TRANSFER_MOVE,	 /* a guest moved (rename): host/guest is where it
			    was; bytes are its disks' */
};

struct status;
struct transfer;

struct status *status_new(void);
void status_free(struct status *st);

/* A transfer starts: host/guest/disk (disk may be NULL for a whole
 * guest), total bytes of data expected (0: not known).  NULL (out of
 * memory: the transfer runs unlisted). */
struct transfer *status_begin(struct status *st, enum transfer_kind kind,
			      const char *host, const char *guest,
			      const char *disk, uint64_t total);

/* bytes of data moved; the phase it is in ("copying", "completing"...). */
void transfer_add(struct transfer *t, uint64_t bytes);
void transfer_phase(struct transfer *t, const char *phase);
/* A live move's bytes of disks and memory done and expected, as libvirt
 * counts them: the transfer's done and total are their sums, and
 * .status shows the parts (JSON: disk_done, disk_total, memory_done,
 * memory_total). */
void transfer_set_parts(struct transfer *t, uint64_t disk_done,
			uint64_t disk_total, uint64_t memory_done,
			uint64_t memory_total);

/* Its first failure (errnum and the cause the log got); later ones are
 * dropped.  The transfer goes on until transfer_end(). */
void transfer_fail(struct transfer *t, int errnum, const char *cause);

/* It ended: ok, or with its first failure.  t is the registry's now. */
void transfer_end(struct transfer *t);

/* A staging folder is a whole-guest line (no disk), from mkdir to the
 * guest's definition (ok) or the folder's removal.  Its last failure (of
 * any operation in the folder: status_guest_fail) is its result until
 * then, so the cause stays readable as long as the folder is there. */
void status_guest_begin(struct status *st, const char *host, const char *guest);
void status_guest_fail(struct status *st, const char *host, const char *guest,
		       int errnum, const char *cause);
/* Ended: defined (errnum 0: ok, earlier failures were retried), or removed
 * (its last failure, or errnum and cause if none). */
void status_guest_end(struct status *st, const char *host, const char *guest,
		      int errnum, const char *cause);

/* The transfers as text (json: JSON lines), those of host/guest only when
 * not NULL.  A malloc'd string, its length in *len; NULL if out of
 * memory. */
char *status_render(struct status *st, bool json, const char *host,
		    const char *guest, size_t *len);

#endif
