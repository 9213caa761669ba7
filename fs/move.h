/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Moves: rename(2) of a guest folder.
 *
 *   HOSTA/GUEST -> HOSTA/NEW   renames a shut-off guest (libvirt's rename);
 *                              a running one: EBUSY
 *   HOSTA/GUEST -> HOSTB/NAME  moves it: pre-flight checks on HOSTB first
 *                              (nothing is created when one fails), then
 *                              for a shut-off guest its disks are copied by
 *                              the copy engine into a staging folder on
 *                              HOSTB and verified, the guest defined there
 *                              and undefined on HOSTA, and the volumes it
 *                              alone used on HOSTA deleted (unless
 *                              -o keep_source)
 *
 * A failure before the guest is defined on HOSTB removes what the move
 * created there; HOSTA is untouched until then.  A FUSE interrupt (Ctrl-C
 * of mv) aborts the copy: EINTR.  Never EXDEV, which would make mv copy
 * and delete on its own.
 *
 * Runs in the FUSE thread of the rename, which it holds until the move
 * ends; the kernel holds both host folders locked meanwhile.  Progress is
 * a "move" line of MOUNT/.status, beside the disks' read and write lines.
 */
#ifndef KVMMIGFS_MOVE_H
#define KVMMIGFS_MOVE_H

#include "path.h"

struct vhost;
struct stage_host;

/* from: a guest folder of a host's own guest; to: a guest folder path.
 * flags: rename(2)'s (RENAME_NOREPLACE accepted, RENAME_EXCHANGE
 * refused).  Returns 0 or a negative errno (logged). */
int move_guest(const struct fs_path *from, struct vhost *vh,
	       struct stage_host *sh, const struct fs_path *to,
	       struct vhost *vh2, struct stage_host *sh2, unsigned int flags);

/* The staging layer's stage_options.move_recover (ctx: the mount): a
 * daemon died in a move whose guest is defined on host as guest now; the
 * record's line names where it came from.  The guest is undefined there
 * (stopped first if a live move left it paused) and its own volumes
 * deleted, unless the record says keep; a guest running there, or
 * another guest of that name (another UUID), is left alone. */
void move_recover(void *ctx, const char *host, const char *guest,
		  const char *line);

#endif
