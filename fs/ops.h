/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the FUSE operations share: the tree's (ops.c) and the open files'
 * (files.c).  Only these two files and main.c know FUSE.
 *
 * Errors: every failure returns the most specific negative errno and,
 * unless it is a plain ENOENT lookup, logs one line naming host/guest/file,
 * the operation and the cause.  Each operation starts with error_clear(),
 * so a core path that fails without error_set() shows as such (see
 * common/error.h) instead of borrowing an older error.
 */
#ifndef KVMMIGFS_OPS_H
#define KVMMIGFS_OPS_H

#define FUSE_USE_VERSION 314
#include <fuse.h>

#include "kvmmigfs.h"
#include "path.h"
#include "stage.h"

/* The mount (fuse_get_context()->private_data). */
struct kvmmigfs *fs_get(void);

/* "host/guest/file" for messages. */
void describe(const struct fs_path *p, char *buf, size_t len);

/* Log one line for a failed operation and return -errnum; fail_core()
 * with the thread's last core error. */
int fail(const struct fs_path *p, const char *op, int errnum,
	 const char *cause);
int fail_core(const struct fs_path *p, const char *op);

/* A failure in a staging folder (p a guest or a file in one): its
 * whole-guest status line shows it as the folder's last failure until the
 * guest is defined or the folder removed.  fail() calls it. */
void note_guest_failure(const struct fs_path *p, const char *op, int errnum,
			const char *cause);

/* Parse path and find its host: 0 or a negative errno (logged). */
int locate(const char *path, struct fs_path *p, struct vhost **vh,
	   struct stage_host **sh, const char *op);

/* What the staging area says of p's guest folder (STAGE_NONE above it). */
enum stage_kind staged(struct stage_host *sh, const struct fs_path *p);

/* Refuse a change to something that is not staging: the host's own
 * guests, hosts, the root.  Returns a negative errno (logged). */
int refuse(const struct fs_path *p, struct vhost *vh, const char *op,
	   int errnum);

/* A staging folder's whole-guest status line after an operation on one of
 * its files that may define it (r: its result): ended once defined. */
void guest_progress(struct stage_host *sh, const struct fs_path *p, int r);

/* Is p a status file (status.h): MOUNT/.status[.json] (all transfers) or
 * HOST/GUEST/.status[.json] (that guest's)?  *json: the JSON one. */
bool status_path(const struct fs_path *p, bool *json);

/* Open files (files.c): one kind per FUSE file handle. */
int files_open(const char *path, struct fuse_file_info *fi);
int files_create(const char *path, mode_t mode, struct fuse_file_info *fi);
int files_read(const char *path, char *buf, size_t size, off_t off,
	       struct fuse_file_info *fi);
int files_write(const char *path, const char *buf, size_t size, off_t off,
		struct fuse_file_info *fi);
off_t files_lseek(const char *path, off_t off, int whence,
		  struct fuse_file_info *fi);
ssize_t files_copy_file_range(const char *path_in, struct fuse_file_info *fi_in,
			      off_t off_in, const char *path_out,
			      struct fuse_file_info *fi_out, off_t off_out,
			      size_t len, int flags);
int files_flush(const char *path, struct fuse_file_info *fi);
int files_fsync(const char *path, int datasync, struct fuse_file_info *fi);
int files_release(const char *path, struct fuse_file_info *fi);
int files_truncate(const char *path, off_t size, struct fuse_file_info *fi);

/* The extended attribute holding a disk's CRC32 (files_getxattr). */
#define CRC_XATTR "user.kvmmigfs.crc32"
int files_getxattr(const char *path, const char *name, char *value,
		   size_t size);

#endif
