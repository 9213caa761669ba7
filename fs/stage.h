/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Staging: how a guest arrives on a host.
 *
 *   mkdir HOST/GUEST           opens a staging folder (EEXIST if HOST has
 *                              a guest or a staging folder of that name)
 *   create HOST/GUEST/DEV.FMT  creates the volume "GUEST-DEV.FMT" in the
 *                              host's pool (EEXIST if it exists: an
 *                              existing volume is never touched) and
 *                              streams writes to it over NBD
 *   create HOST/GUEST/domain.xml   holds the XML in memory
 *   close                      a disk is complete when its last handle is
 *                              closed by a writer that was not killed; its
 *                              volume then gets exactly the size written
 *   (all disks complete)       the XML is rewritten for the host and the
 *                              guest defined (and started with -o start)
 *   unlink, rmdir              delete exactly the volumes staging created
 *
 * Temporary names map to their final name: rsync's ".NAME.XXXXXX" and
 * "NAME.part" stand for NAME, so the volume gets its final name at once.
 *
 * Thread model: a stage_host's lock serializes its staging operations,
 * host calls included; a disk's data path is guarded by the file's
 * io_lock, so writes to different disks run in parallel; stage_stat() and
 * the listings take neither (a view lock held for a moment), so `ls` and
 * `stat` never wait for the network.  Details and the lock order:
 * stage/stage-int.h.  The host is reached only through its operations
 * table (host.h).
 *
 * Errors: -1 with error_set() (the errno a tool can show) — the caller logs.
 */
#ifndef KVMMIGFS_STAGE_H
#define KVMMIGFS_STAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/strvec.h"

/* Writers do not say a disk's size in advance.  A new volume is created
 * with room to write (raw: STAGE_MAX_SIZE, sparse; qcow2: 1 GiB, grown by
 * doubling as writes need it, since shrinking a huge qcow2 is slow), and
 * cut to the size written when complete. */
#define STAGE_MAX_SIZE (8ULL << 40)

/* A disk to verify: the volume staging wrote on host, and where the
 * served domain.xml says it came from. */
struct stage_verify {
	const char *host, *guest, *file; /* "hostb", "web1", "vda.raw" */
	const char *path, *format;	 /* the new volume */
	uint64_t size; /* the disk's size: a logical volume, whole extents
			  long, may be longer (its tail is not compared) */
	const char *origin_host; /* the source host's folder name */
	const char *origin_uuid; /* and libvirt host UUID */
	const char *origin_path, *origin_format;
};

struct stage_options {
	bool start;		/* -o start: start guests once defined */
	int timeout_ms;		/* bound of NBD waits and host commands */
	const char *filter;	/* nbdkit filter used where hosts have it */
	const char *state_dir;	/* staging records (record.h); NULL: none */
	const char *hosts_file; /* the mount's hosts file (absolute), named
				   in records */
	/* Verify a complete disk against the disk it was copied from, before
	 * the guest is defined (see struct stage_verify): 0 the same, -1
	 * with error_set() (EIO for a difference, naming both CRCs and the
	 * first block that differs).  NULL: not verified (-o verify=no). */
	int (*verify)(void *ctx, const struct stage_verify *v);
	void *verify_ctx;
	/* A move's record left by a daemon that died: its guest is defined
	 * here (the move reached its define; the old host's side is the
	 * callee's to finish).  move is the record's line; ctx is
	 * verify_ctx.  NULL: the record is only dropped. */
	void (*move_recover)(void *ctx, const char *host, const char *guest,
			     const char *move);
};

struct stage_host;
struct stage_open; /* an open staged file (the FUSE file handle) */

struct host;
struct stage_host *stage_host_new(struct host *host,
				  const struct stage_options *opt);
void stage_host_free(struct stage_host *sh);

/* What a staging path is. */
enum stage_kind {
	STAGE_NONE,    /* not staging: the host's own guest, or nothing */
	STAGE_DIR,     /* a staging folder being filled */
	STAGE_DEFINED, /* a folder staged here and now defined: metadata
			  calls (chmod, utimens) on it are accepted */
	STAGE_FILE,    /* a file in a staging folder */
};

struct stage_stat {
	enum stage_kind kind;
	uint64_t size;	    /* files: the size so far */
	uint64_t allocated; /* files: bytes written */
	time_t mtime;
};

/* What GUEST (and FILE, if not NULL) are in the staging area. */
void stage_stat(struct stage_host *sh, const char *guest, const char *file,
		struct stage_stat *st);

/* Names of the staging folders not yet defined (append). */
int stage_list_guests(struct stage_host *sh, struct strvec *names);
/* Names of a staging folder's files (append).  ENOENT if none. */
int stage_list_files(struct stage_host *sh, const char *guest,
		     struct strvec *names);

int stage_mkdir(struct stage_host *sh, const char *guest);
int stage_rmdir(struct stage_host *sh, const char *guest);

/* Create a file (O_EXCL semantics) and open it for writing. */
struct stage_open *stage_create(struct stage_host *sh, const char *guest,
				const char *name);
/* Open an existing staged file; flags as open(2).  O_TRUNC empties it. */
struct stage_open *stage_open(struct stage_host *sh, const char *guest,
			      const char *name, int flags);

ssize_t stage_write(struct stage_open *so, const void *buf, size_t count,
		    uint64_t offset);
/* [offset, offset+count) of a disk reads as zeros (a hole copied). */
int stage_write_zeros(struct stage_open *so, uint64_t count, uint64_t offset);
/* The handle is a disk's (not domain.xml's); it may write. */
bool stage_is_disk(const struct stage_open *so);

/* The direct path (fs/direct.h): a copier on the disk's host writes
 * [offset, offset+count) of the volume itself.  stage_direct_begin grows
 * the volume to hold the range, lands the daemon's own writes and stops
 * its own server on the volume (the next write here starts it), and says
 * where the volume is on its host and whether the range may hold data
 * already (dirty: zeros must then be written, not skipped).  Not for a
 * disk being resumed (EBUSY).  0 or -1. */
struct stage_direct {
	const char *path;   /* the volume on its host (valid while so is) */
	const char *format; /* what it holds: "raw", "qcow2" */
	bool dirty;
};
int stage_direct_begin(struct stage_open *so, uint64_t offset, uint64_t count,
		       struct stage_direct *d);
/* The copier wrote data at [offset, offset+count).  0 or -1. */
int stage_direct_data(struct stage_open *so, uint64_t offset, uint64_t count);
/* The copier has written the volume up to end (data or not). */
void stage_direct_upto(struct stage_open *so, uint64_t end);
/* The copier failed: the disk's first write error, which close reports. */
void stage_direct_failed(struct stage_open *so, int err, const char *msg);

/* Is so's disk being resumed (copied again whole over an earlier copy)? */
bool stage_resuming(struct stage_open *so);

/* Resuming so's disk: does the
 * volume hold block i (CRC_BLOCK bytes, nbd/crc.h) with this CRC? */
bool stage_resume_has(struct stage_open *so, uint64_t i, uint32_t crc);

/* Count [offset, offset+count) as written with what the volume holds
 * already (blocks stage_resume_has() found): nothing is sent.  0 or -1. */
int stage_resume_confirm(struct stage_open *so, uint64_t offset,
			 uint64_t count);

/* Bytes of so's disk that its last resumed copy found on the host already
 * (the same CRC32 per 1 MiB block) and did not send. */
uint64_t stage_skipped(const struct stage_open *so);
bool stage_is_writer(const struct stage_open *so);
/* The bytes of data a disk's copy will bring, as the staged domain.xml
 * (a served one) says: what the disk takes on its source host; 0 if not
 * known. */
uint64_t stage_expected_bytes(struct stage_open *so);
ssize_t stage_read(struct stage_open *so, void *buf, size_t count,
		   uint64_t offset);
int stage_fsync(struct stage_open *so);

/* close(2) of a handle: pid is the closing process.  Completes the file
 * if this is its last handle and the process was not killed, then defines
 * the guest if it is complete.  Errors here are what close() returns. */
int stage_flush(struct stage_open *so, pid_t pid);
/* The last reference of the handle is gone (no error can be reported). */
void stage_release(struct stage_open *so);

/* Set a file's size: with so (ftruncate) or by name (truncate). */
int stage_truncate(struct stage_host *sh, const char *guest, const char *name,
		   struct stage_open *so, uint64_t size);
int stage_unlink(struct stage_host *sh, const char *guest, const char *name);
int stage_rename(struct stage_host *sh, const char *guest, const char *from,
		 const char *to);

/* The final name a (possibly temporary) file name stands for, written to
 * out: "vda.raw" for "vda.raw", ".vda.raw.Ab12Cd" and "vda.raw.part".
 * Returns 0, or -1 (EINVAL) if it is neither domain.xml nor DEV.FMT with a
 * format kvmmigfs can create (raw, qcow2). */
int stage_final_name(const char *name, char *out, size_t len);

/* True if name can be a new guest's name: 1-200 bytes of
 * [A-Za-z0-9._+-], not starting with '.', '-' or '+'. */
bool stage_guest_name_ok(const char *name);

/* Moves (move.h).  A move fills a folder made by stage_mkdir_move(),
 * whose record names where the guest comes from ("HOST GUEST[ keep]",
 * record.h) and stays after the define until stage_move_done(): a daemon
 * killed meanwhile leaves the next one what it needs to finish or undo
 * the move (stage_options.move_recover).  A live move's target volumes:
 * stage_add_volume()
 * creates the volume for disk file name ("DEV.FMT") in guest's staging
 * folder at exactly capacity bytes (EINVAL for a block pool whose extents
 * do not divide it), recorded like any staged disk and complete as it is
 * (the hypervisor fills it); *path its path (malloc'd).  Once the move
 * has defined the guest on the host, stage_adopt() hands the folder's
 * volumes to it (as a define does); if it failed, unlink and rmdir delete
 * them.  0 or -1. */
int stage_mkdir_move(struct stage_host *sh, const char *guest,
		     const char *move);
int stage_add_volume(struct stage_host *sh, const char *guest, const char *name,
		     uint64_t capacity, char **path);
int stage_adopt(struct stage_host *sh, const char *guest);
/* The move is over (its old host's side removed): its record goes. */
void stage_move_done(struct stage_host *sh, const char *guest);

#endif
