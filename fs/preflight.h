/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Pre-flight: can a host take a guest, as its domain XML describes it?
 * Asked before anything is created there: by a move (move.h) and by a
 * staging folder when its domain.xml is closed (stage.h), so that cp -r
 * is refused the same way as mv.
 *
 * Each refusal has its own errno and a message naming what is missing:
 *   ENODEV     a host device (<hostdev>, <interface type='hostdev'>)
 *   ENXIO      a network not defined on the host, a bridge not there
 *   ENOPKG     the emulator, machine type or virtualization type
 *   ENOEXEC    a CPU feature the guest requires by name
 *   ENOTUNIQ   a guest of another name with this guest's UUID
 * Never EOPNOTSUPP nor EXDEV, which make movers copy instead.
 */
#ifndef KVMMIGFS_PREFLIGHT_H
#define KVMMIGFS_PREFLIGHT_H

#include <stdbool.h>
#include <stddef.h>

struct vhost;

/* 0, or -1 with error_set().  path_exists(opaque, path) asks the host
 * whether a path exists (1, 0, -1: bridges); check_uuid: the guest keeps
 * its UUID there (not a clone), so no other guest may have it. */
int preflight_xml(struct vhost *vh, const char *xml, size_t len,
		  bool check_uuid,
		  int (*path_exists)(void *opaque, const char *path),
		  void *opaque);

#endif
