/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Domain XML: which of a guest's disks become files of the mount.
 *
 * A disk becomes the file "DEV.FORMAT": DEV is its <target dev>, FORMAT its
 * <driver type> ("raw" when absent, as libvirt does not probe).  Which
 * disks those are is decided by one function, domxml_disk_rule(), for
 * every <disk> element: the mount's listing (domxml_parse), what a staged
 * domain.xml must bring and what is pointed at new volumes (rewrite.c),
 * and the tests' view of a host's disks (tests/listdisks) all ask it.
 * Disks kvmmigfs cannot stream are skipped and reported through a
 * callback: network disks, removable media (cdrom, floppy: shared media,
 * not part of the guest), disks without a source, unsupported source
 * types.
 *
 * Parsing uses libxml2 with no network access, no entity substitution and
 * no DTD; documents with a DOCTYPE are refused.
 */
#ifndef KVMMIGFS_DOMXML_H
#define KVMMIGFS_DOMXML_H

#include <stddef.h>

#include "../common/strvec.h"

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

/* What domxml_disk_rule() says of a <disk>: listed, or why not.  Up to
 * DISK_EMPTY it is not a disk kvmmigfs streams (a staged domain.xml keeps
 * it as it is); from DISK_BAD_TARGET on it is one kvmmigfs would stream
 * but cannot (the mount does not list it, a staged domain.xml holding it
 * is refused). */
enum disk_verdict {
	DISK_LISTED,	   /* a file of the mount, streamed and retargeted */
	DISK_REMOVABLE,	   /* device cdrom or floppy, with media */
	DISK_NO_MEDIA,	   /* device cdrom or floppy, empty */
	DISK_OTHER_DEVICE, /* device other than disk and lun */
	DISK_NETWORK,	   /* type network */
	DISK_OTHER_TYPE,   /* type other than file, block, volume, network */
	DISK_EMPTY,	   /* file or block without a source path */
	DISK_BAD_TARGET,   /* no <target dev>, or not 1-32 of [a-z0-9_] */
	DISK_BAD_VOLUME,   /* volume without a pool or a volume name */
	DISK_RELATIVE,	   /* file or block with a relative source path */
	DISK_BAD_FORMAT,   /* <driver type> not 1-32 of [a-z0-9_] */
};

/* A <disk> as the rule reads it.  Strings point into the document (valid
 * while it is unchanged); NULL where the verdict came before reading
 * them. */
struct disk_view {
	const char *dev;    /* <target dev> */
	const char *format; /* <driver type>, "raw" when absent */
	enum disk_source source_type;
	const char *path;   /* DISK_FILE: <source file>, DISK_BLOCK: <source
			       dev>; DISK_VOLUME: NULL */
	const char *pool;   /* DISK_VOLUME: <source pool> */
	const char *volume; /* DISK_VOLUME: <source volume> */
	int readonly;	    /* has <readonly/> */
};

struct _xmlNode;

/* The one rule for which disks a guest has: whether the <disk> element
 * node is a file of the mount (DISK_LISTED) or why not.  In order: device
 * (disk and lun are streamed; cdrom, floppy and others are not), type
 * (file, the default, block, volume; not network or others), <target
 * dev>, the source (a file or block disk without one is empty; its path
 * must be absolute; a volume needs pool and volume), <driver type>.  Fills
 * *view (may be NULL).  Reads the node only; duplicate target devs are the
 * caller's to find. */
enum disk_verdict domxml_disk_rule(const struct _xmlNode *node,
				   struct disk_view *view);

/* The reason a verdict gives, as the mount logs it ("network disks are not
 * streamed"); "listed" for DISK_LISTED.  A static string. */
const char *domxml_disk_why(enum disk_verdict v);

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

/* Where a served guest's disks came from, so that the new host can verify
 * its copies against them: on the <kvmmigfs:disks> element, host="NAME"
 * (the host's folder name in the mount that served it) and
 * host-uuid="UUID"; on each <kvmmigfs:disk>, path="..." and format="...".
 * The XML must have the sizes element already (domxml_with_sizes); a
 * disk of devs[i] gets paths[i] and formats[i].  Returns a malloc'd
 * document, or NULL with error_set(). */
char *domxml_with_origin(const char *xml, size_t len, const char *host,
			 const char *host_uuid, const char *const *devs,
			 const char *const *paths, const char *const *formats,
			 size_t n);

struct domxml_origin {
	char host[64];
	char host_uuid[64];
	char path[4096];
	char format[32];
};

/* The origin of disk dev in a served XML: 1 found (every field set), 0
 * not given (in full), -1 with error_set() for a document that does not
 * parse. */
int domxml_disk_origin(const char *xml, size_t len, const char *dev,
		       struct domxml_origin *out);

/* The disk whose file name is "DEV.FORMAT", or NULL. */
const struct disk *domxml_find_file(const struct disk_list *l,
				    const char *file);

/* Write "DEV.FORMAT" for d into buf.  Returns the length. */
int domxml_file_name(const struct disk *d, char *buf, size_t len);

/* What a guest needs of a host to run there, from its domain XML (for a
 * move's pre-flight checks).  Strings malloc'd, NULL where the XML says
 * nothing. */
struct domxml_needs {
	char *name;	/* <name> */
	char *uuid;	/* <uuid> */
	char *type;	/* <domain type>: "kvm", "qemu" */
	char *arch;	/* <os><type arch> */
	char *machine;	/* <os><type machine> */
	char *emulator; /* <devices><emulator> */
	char *cpu;	/* the <cpu> element, when it names a model (mode
			   custom) and its features are checked (not
			   check='none') */
	struct strvec cpu_features; /* the features it requires by name
				       (policy require or force) */
	struct strvec networks;	    /* <interface type='network'> sources */
	struct strvec bridges;	    /* <interface type='bridge'> sources */
	struct strvec hostdevs;	    /* host devices, described ("hostdev") */
	struct strvec sources;	    /* every path a <disk> names, removable
				       media and <backingStore>s included */
};

/* Read it: 0 (release with domxml_needs_release), or -1 with error_set()
 * (EINVAL: not a domain XML domxml_parse would read). */
int domxml_needs(const char *xml, size_t len, struct domxml_needs *out);
void domxml_needs_release(struct domxml_needs *n);

/* The cache mode (<driver cache>, "" when not set) of disk dev: 1 found,
 * 0 no such disk, -1 with error_set(). */
int domxml_disk_cache(const char *xml, size_t len, const char *dev, char *out,
		      size_t outlen);

/* The XML with <name> set to name: a malloc'd document, or NULL with
 * error_set(). */
char *domxml_with_name(const char *xml, size_t len, const char *name);

#endif
