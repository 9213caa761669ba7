/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Staging, inside: the state the files of fs/stage/ share.  The rules are
 * in ../stage.h; each file holds one job:
 *
 *   names.c     which names a guest and its files may have
 *   folder.c    staging folders and their files: mkdir, list, stat,
 *               unlink, rename, rmdir
 *   recover.c   staging records, volume identities, recovery
 *   handle.c    open handles: create, open, release, writers counted
 *   xml.c       the domain.xml buffer
 *   write.c     the disk write path (zero scan, writes to the volume)
 *   volume.c    volume sizing, growing, space checks, truncation
 *   complete.c  the last close: completing a disk, defining the guest
 *
 * Lock order: a stage_host's lock, then its view lock or a file's
 * io_lock (never both), then the host's own (inside its operations,
 * host.h).  The stage lock serializes a host's staging operations; a
 * disk's data path (size, written map, endpoint) is guarded by its
 * io_lock, taken without the stage lock on the write path, so writes to
 * different disks run in parallel; the view lock (struct stage_host)
 * guards what stat and the listings read.  Never take the stage lock
 * with an io_lock or the view lock held.
 */
#ifndef KVMMIGFS_STAGE_INT_H
#define KVMMIGFS_STAGE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "../../nbd/endpoint.h"
#include "../../nbd/crc.h"
#include "../../nbd/extents.h"
#include "../domxml.h"
#include "../host.h"
#include "../stage.h"
#include "../virt.h"

#define XML_NAME DOMAIN_XML

/* Call operation op of sh's host (host.h): HOST_CALL(sh, vol_delete, n). */
#define HOST_CALL(sh, op, ...)                                                 \
	((sh)->host->ops->op((sh)->host->opaque, ##__VA_ARGS__))

struct staged_file {
	/* Guarded by the stage_host lock. */
	int refs;    /* 1 while in its folder, +1 per open handle */
	char *name;  /* name in the folder (maybe temporary) */
	char *final; /* the final name it stands for */
	bool is_xml;
	/* Handles count from open until their close (flush), and again
	 * from a later write through another descriptor of the same handle:
	 * the kernel sends release after close(2) has returned, so a
	 * closed handle must not hold up the next writer's completion. */
	int opens;	/* active handles */
	int writers;	/* active handles that may write */
	bool complete;	/* disk: closed by its writer, size set */
	bool verified;	/* disk: compared with its origin since it was
			   completed (or its origin could not be told) */
	bool recovered; /* disk: from a record, written before a restart */
	bool xml_ok;	/* xml: checked, fit to wait for its disks */
	char *xml;	/* xml: the document so far */
	size_t xml_len;
	time_t mtime;
	/* Disks only; set at creation, then constant. */
	char *dev, *fmt, *volume, *path;
	char *stored; /* "DEV.raw" when a pool of block devices stores a disk
			 of another format raw (fmt is then "raw"): the
			 record's name for it; NULL: final */
	char *ident;  /* the volume's identity (vhost_vol_identity), taken
			 when staging created it: a volume with another is not
			 ours and is never touched */
	bool block;   /* the volume is a block device (a logical volume): it
			 may hold old data, so every byte not written is zeroed
			 at completion */
	/* The data path, guarded by io_lock. */
	pthread_mutex_t io_lock;
	struct endpoint *ep;	   /* open while being written */
	uint64_t capacity;	   /* the volume's size now */
	uint64_t size;		   /* size the writer gave it */
	struct extent_map written; /* ranges holding written data */
	int werrno;		   /* first write error, reported at close */
	char werrmsg[512];	   /* and its message */
	/* Resuming: opened again with O_TRUNC over data of an earlier copy.
	 * old: the CRC of each block of the volume then (computed on the
	 * host); a block written again with the same bytes is not sent.
	 * pass: what this copy wrote, zeroed or found there; at completion
	 * the earlier copy's data outside it is zeroed. */
	bool resuming;
	struct crc_map old;
	struct extent_map pass;
	uint64_t skipped; /* bytes found there, not sent */
	/* size and the bytes written, for stat without io_lock: set under
	 * io_lock by stage_publish_size(), read with atomics. */
	uint64_t seen_size, seen_allocated;
};

struct stage {
	char *guest;
	char *move;    /* a move's folder: its record's move line (record.h);
			  the record stays after the define, until the move
			  has removed the guest's old host's side */
	bool defined;  /* defined on the host: only metadata calls accepted */
	char *refused; /* the host cannot take the guest its domain.xml
			  describes (preflight.h): why; its next disks
			  are refused with refused_errno */
	int refused_errno;
	struct staged_file **files;
	size_t n;
	time_t mtime;
};

struct stage_host {
	struct host *host; /* what staging needs of the host (host.h) */
	struct stage_options opt;
	/* The stage lock: serializes this host's staging operations, and is
	 * held across host calls (network). */
	pthread_mutex_t lock;
	/* The view lock: what stat and listings read (below: v and n; each
	 * folder's files, n, defined and mtime; each file's name, mtime and
	 * xml_len) is changed with both locks held, the stage lock first,
	 * so either one is enough to read it.  stage_stat() and the
	 * listings take the view lock alone: it is held for a few
	 * instructions, never across a host call or an io_lock, so `ls` and
	 * `stat` never wait for the network. */
	pthread_mutex_t view_lock;
	struct stage **v;
	size_t n;
	bool loaded; /* the records of earlier daemons were read (stage
			lock; read with atomics) */
};

struct stage_open {
	struct stage_host *sh;
	struct stage *st;
	struct staged_file *sf;
	bool write;
	bool active; /* counted in sf->opens (and writers); stage lock */
};

static inline void stage_view_lock(struct stage_host *sh)
{
	pthread_mutex_lock(&sh->view_lock);
}

static inline void stage_view_unlock(struct stage_host *sh)
{
	pthread_mutex_unlock(&sh->view_lock);
}

/* write.c: publish sf's size and bytes written for stat.  io_lock held. */
void stage_publish_size(struct staged_file *sf);

/* folder.c */
int stage_folder_add(struct stage_host *sh, struct stage *st);
void stage_folder_remove(struct stage_host *sh, struct stage *st);
int stage_file_add(struct stage_host *sh, struct stage *st,
		   struct staged_file *sf);
void stage_file_remove(struct stage_host *sh, struct stage *st,
		       struct staged_file *sf);
void stage_folder_defined(struct stage_host *sh, struct stage *st);
void stage_file_put(struct staged_file *sf);
void stage_folder_free(struct stage *st);
struct staged_file *stage_find_file(struct stage *st, const char *name);
struct stage *stage_folder_open(struct stage_host *sh, const char *guest);
struct staged_file *stage_get_file(struct stage *st, const char *name);

/* complete.c: check a domain.xml closed under its name: well-formed and
 * fit (rewrite_check), and a guest the host can take (host.h can_host).
 * 0 or -1.  Stage lock held. */
int stage_xml_check(struct stage_host *sh, struct stage *st,
		    struct staged_file *sf);

/* recover.c */
int stage_record_save_with(struct stage_host *sh, struct stage *st,
			   const struct staged_file *extra);
int stage_record_save(struct stage_host *sh, struct stage *st);
void stage_record_forget(struct stage_host *sh, struct stage *st);
void stage_record_drop(struct stage_host *sh, struct stage *st);
int stage_volume_ours(struct stage_host *sh, const char *guest,
		      struct staged_file *sf);
int stage_volume_identify(struct stage_host *sh, struct stage *st,
			  struct staged_file *sf, bool in_folder);
void stage_records_load(struct stage_host *sh);
int stage_volume_renew(struct stage_host *sh, struct stage *st,
		       struct staged_file *sf);

/* handle.c */
void stage_handle_activate(struct stage_open *so);
void stage_handle_deactivate(struct stage_open *so);
void stage_stop_incomplete(struct staged_file *sf);

/* xml.c */
ssize_t stage_xml_write(struct stage_open *so, const void *buf, size_t count,
			uint64_t offset);

/* write.c */
bool stage_overlaps_written(const struct extent_map *m, uint64_t offset,
			    uint64_t count);

/* volume.c */
int stage_block_target(struct stage_host *sh, const char *guest,
		       struct staged_file *sf);
uint64_t stage_first_capacity(struct stage *st, struct staged_file *sf);
uint64_t stage_final_capacity(const char *fmt, uint64_t size);
int stage_connect_locked(struct stage_host *sh, const char *guest,
			 struct staged_file *sf);
int stage_volume_resize(struct stage_host *sh, struct staged_file *sf,
			uint64_t size);
int stage_grow_locked(struct stage_host *sh, const char *guest,
		      struct staged_file *sf, uint64_t needed);
int stage_endpoint_open(struct stage_host *sh, struct stage *st,
			struct staged_file *sf);
void stage_disk_reopen(struct staged_file *sf);
int stage_space_check(struct stage_host *sh, struct stage *st, const char *dev);
int stage_exact_size(struct stage_host *sh, struct staged_file *sf,
		     uint64_t size);
int stage_zero_unwritten(struct staged_file *sf, uint64_t from, uint64_t to);
int stage_truncate_locked(struct stage_host *sh, const char *guest,
			  struct staged_file *sf, uint64_t size);

/* write.c: start resuming sf (see struct staged_file); stage lock held,
 * no server running.  0, or -1 (then sf is truncated as usual). */
int stage_resume_begin(struct stage_host *sh, const char *guest,
		       struct staged_file *sf);
/* At completion: zero what the earlier copy wrote and this one did not,
 * log what was saved, stop resuming.  io_lock held, server running. */
int stage_resume_end(struct stage_host *sh, const char *guest,
		     struct staged_file *sf);

/* complete.c */
int stage_try_define(struct stage_host *sh, struct stage *st);

#endif
