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

#include "../nbd/strvec.h"

struct rewrite_disk {
	const char *dev;    /* target dev, e.g. "vda" */
	const char *path;   /* the new volume's path on the target */
	const char *format; /* its format: "raw", "qcow2" */
	int block;	    /* 1: a block device, 0: a file */
};

struct rewrite_spec {
	const char *name;		  /* the new guest's name */
	const struct rewrite_disk *disks; /* one per listed disk */
	size_t ndisks;
	/* Does path exist on the target?  1 yes, 0 no, -1 error (with
	 * error_set(); the rewrite then fails). */
	int (*media_exists)(void *opaque, const char *path);
	void *opaque;
};

/* Vet a domain XML.  Appends to devs the target dev of every disk that
 * must arrive as a file (device disk or lun, type file, block or volume),
 * in document order, and sets *name to a malloc'd copy of its <name>.
 * Returns 0, or -1 with error_set(EINVAL) and a precise reason for: not
 * well-formed, a DOCTYPE, not <domain>, no <name>, over DOMXML_MAX_SIZE,
 * elements of other namespaces (qemu:commandline, ...), <hostdev>, a disk
 * without a usable or with a repeated target dev, a disk of type dir,
 * nvme or vhostuser, removable media of type block (a host device). */
int rewrite_check(const char *xml, size_t len, struct strvec *devs,
		  char **name);

/* The XML for the target: name set, every listed disk pointing at its new
 * volume with its format (backing chains and mirrors dropped), removable
 * media absent on the target ejected; when the name changes (a clone) the
 * UUID and the MAC addresses are dropped so that libvirt makes new ones.
 * Returns a malloc'd document, or NULL with error_set().  *cloned is set to
 * 1 for a clone, else 0. */
char *rewrite_domain(const char *xml, size_t len,
		     const struct rewrite_spec *spec, int *cloned);

#endif
