/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Domain XML: which of a guest's disks become files of the mount.
 *
 * A disk becomes the file "DEV.FORMAT": DEV is its <target dev>, FORMAT its
 * <driver type> ("raw" when absent, as libvirt does not probe).  Disks
 * kvmmigfs cannot stream are skipped and reported through a callback:
 * network disks, removable media (cdrom, floppy: shared media, not part of
 * the guest), disks without a source, unsupported source types.
 *
 * Parsing uses libxml2 with no network access, no entity substitution and
 * no DTD; documents with a DOCTYPE are refused.
 */
#ifndef KVMMIGFS_DOMXML_H
#define KVMMIGFS_DOMXML_H

#include <stddef.h>

#define DOMXML_MAX_SIZE (4 << 20) /* larger documents are refused */

enum disk_source { DISK_FILE, DISK_BLOCK, DISK_VOLUME };

struct disk {
	char *dev;    /* target dev, e.g. "vda" */
	char *format; /* driver type, e.g. "raw", "qcow2" */
	enum disk_source source_type;
	char *path;   /* DISK_FILE, DISK_BLOCK: the source; DISK_VOLUME: NULL
			 until resolved by the caller */
	char *pool;   /* DISK_VOLUME only */
	char *volume; /* DISK_VOLUME only */
	int readonly;
};

struct disk_list {
	struct disk *v;
	size_t n;
};

struct domxml_info {
	char *name;
	char *uuid;
	struct disk_list disks;
};

/* Called once per skipped disk: dev may be "?" when it has no target. */
typedef void (*domxml_skip_fn)(void *opaque, const char *dev, const char *why);

/* Parse a domain XML document.  Returns 0 and fills *out (release with
 * domxml_release), or -1 with error_set(EINVAL) for a document that is not
 * a well-formed, DOCTYPE-free <domain> of at most DOMXML_MAX_SIZE bytes.
 * skip may be NULL. */
int domxml_parse(const char *xml, size_t len, struct domxml_info *out,
		 domxml_skip_fn skip, void *opaque);

void domxml_release(struct domxml_info *info);

/* Free a disk's strings and clear it. */
void domxml_disk_free(struct disk *d);

/* The namespace of kvmmigfs's element in a served domain.xml's
 * <metadata>: <kvmmigfs:disks><kvmmigfs:disk dev="vda" size="N"
 * allocation="M"/>...  Sizes let the new host tell a complete copy from
 * one cut short; allocations let it refuse a guest that cannot fit before
 * it creates a volume. */
#define DOMXML_NS	 "https://kvmmigfs.invalid/xmlns/disks/1"
#define DOMXML_NS_PREFIX "kvmmigfs"

/* The XML with the size of each listed disk added in <metadata> (n disks:
 * devs[i] has sizes[i] bytes, of which allocs[i] are allocated on its host;
 * allocs may be NULL, and a 0 there is left out).  Any element of DOMXML_NS
 * already there is replaced.  Returns a malloc'd document, or NULL with
 * error_set(). */
char *domxml_with_sizes(const char *xml, size_t len, const char *const *devs,
			const unsigned long long *sizes,
			const unsigned long long *allocs, size_t n);

/* The size the served XML gives for disk dev, and its allocation (0 where
 * it gives none; alloc may be NULL): 1 found (*size set), 0 not there, -1
 * with error_set() for a document that does not parse. */
int domxml_disk_size(const char *xml, size_t len, const char *dev,
		     unsigned long long *size, unsigned long long *alloc);

/* The disk whose file name is "DEV.FORMAT", or NULL. */
const struct disk *domxml_find_file(const struct disk_list *l,
				    const char *file);

/* Write "DEV.FORMAT" for d into buf.  Returns the length. */
int domxml_file_name(const struct disk *d, char *buf, size_t len);

#endif
