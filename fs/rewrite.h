/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Domain XML for a guest's new host.
 *
 * rewrite_check() vets a domain.xml written into a staging folder and says
 * which disks must arrive before it can be defined; rewrite_domain() turns
 * it into the XML defined on the target.  Pure functions on strings (the
 * one question about the target, "does this path exist there?", is asked
 * through a callback).  Parsing follows domxml.h: no network, no entity
 * substitution, no DTD, no DOCTYPE, at most DOMXML_MAX_SIZE bytes.
 */
#ifndef KVMMIGFS_REWRITE_H
#define KVMMIGFS_REWRITE_H

#include <stddef.h>

#include "../common/strvec.h"

/* One new volume on the target.  The strings are the caller's. */
struct rewrite_disk {
	const char *dev;    /* target dev, e.g. "vda" */
	const char *path;   /* the new volume's path on the target */
	const char *format; /* its format: "raw", "qcow2" */
	int block;	    /* 1: a block device (<disk type='block'><source
			       dev=.../>), 0: a file */
};

/* What rewrite_domain() needs to know about the target.  Everything is
 * the caller's and only read. */
struct rewrite_spec {
	const char *name;		  /* the new guest's name (the folder's
					     name) */
	const struct rewrite_disk *disks; /* one per listed disk of the XML */
	size_t ndisks;
	/* Does this path exist on the target host?  1 yes, 0 no, -1 error
	 * (then the rewrite fails with that error_set()).  NULL: nothing
	 * exists, every medium is ejected. */
	int (*media_exists)(void *opaque, const char *path);
	void *opaque;
};

/* Check a domain XML written into a staging folder, before waiting for
 * its disks.  Appends to *devs (the caller's; it frees it with
 * strvec_release) the target dev of every listed disk, in document order:
 * what must arrive before define, exactly the disks domxml_parse() lists.
 * Sets *name to a malloc'd copy of its <name> (the caller frees it).
 * Returns 0, or -1 with error_set(EINVAL) and a precise reason, *devs as
 * it was and *name NULL, for: not well-formed, a DOCTYPE, not <domain>,
 * no <name>, over DOMXML_MAX_SIZE; any element of QEMU's namespace
 * (qemu:commandline, ...), even in <metadata>, or of any other namespace
 * outside <metadata>; <hostdev> or <interface type='hostdev'> (host
 * devices cannot move); a disk of type dir, nvme or vhostuser; removable
 * media (cdrom, floppy) of type block (a host device); two disks with the
 * same target dev; a disk domxml_disk_rule() says kvmmigfs would stream
 * but cannot (DISK_BAD_TARGET and after: no usable target dev, a relative
 * source path, a volume source without pool or volume, an unusable
 * <driver type>).  A disk to stream without any source (an empty one) is
 * not listed and kept as it is; so are network disks. */
int rewrite_check(const char *xml, size_t len, struct strvec *devs,
		  char **name);

/* Rewrite for the target, after the same checks as rewrite_check():
 * <name> set to spec->name; every listed disk pointed at its spec->disks
 * volume (type file or block, a new <source>, <driver type> set and its
 * other attributes kept, <backingStore> and <mirror> dropped); removable
 * media whose file the target lacks ejected (the drive stays); when the
 * name changes (a clone) <uuid> and the interfaces' <mac> dropped so that
 * libvirt makes new ones; kvmmigfs's sizes (DOMXML_NS) dropped from
 * <metadata>.  Everything else is kept.
 * Returns a malloc'd, NUL-terminated XML document (the caller frees it),
 * or NULL with error_set(): EINVAL "no volume for disk DEV" when
 * spec->disks lacks a listed disk, or the callback's error.  *cloned is
 * set to 1 when spec->name differs from the XML's <name>, else 0. */
char *rewrite_domain(const char *xml, size_t len,
		     const struct rewrite_spec *spec, int *cloned);

#endif
