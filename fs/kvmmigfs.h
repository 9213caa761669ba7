/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The mount: what main() sets up and the FUSE operations use.  Passed to
 * the operations as fuse_get_context()->private_data; read-only once
 * mounted (the vhosts lock themselves).
 */
#ifndef KVMMIGFS_H
#define KVMMIGFS_H

#include <stddef.h>
#include <time.h>

#include "host.h"
#include "hosts.h"
#include "status.h"
#include "stage.h"
#include "virt.h"

#define KVMMIGFS_VERSION "0.1.0"

/* st_blksize of disk files: cp and friends use buffers of this size. */
#define KVMMIGFS_BLKSIZE (1 << 20)

/* Where hosts have the zero-scan filter (nbd/zeroscan.c) by default. */
#ifndef KVMMIGFS_ZEROSCAN
#define KVMMIGFS_ZEROSCAN                                                      \
	"/usr/local/lib/kvmmigfs/nbdkit-kvmmigfs-zeroscan-filter.so"
#endif

struct kvmmigfs {
	struct hosts_file hosts;
	struct vhost **vhosts;	    /* one per hosts.hosts entry */
	struct host **hostifs;	    /* one per vhost: what staging uses */
	struct stage_host **stages; /* one per hosts.hosts entry */
	struct status *status;	    /* transfers, for .status (status.h) */
	int allow_running;	    /* -o allow_running: read running guests */
	int start;		    /* -o start: start guests once defined */
	int keep_source;	    /* -o keep_source: a moved guest's volumes
				       stay on the host it left */
	int timeout_ms;		    /* -o timeout=SECONDS */
	int cache_ms;		    /* -o cache=SECONDS (listings) */
	const char *zeroscan;	    /* -o zeroscan=PATH on the hosts, "" none */
	const char *crc_tool;	    /* -o crc=PATH: kvmmigfs-crc on the hosts */
	const char *copy_tool;	    /* -o copytool=PATH: kvmmigfs-copy there */
	int verify;		    /* -o verify=yes (default): copies are
				       compared with their source before the
				       guest is defined (verify.h) */
	char *state_dir;	    /* -o state=DIR: staging records */
	char *run_dir;		    /* where a live move's sockets go, here
				       and on the hosts (forward.h) */
	char *hosts_path;	    /* the hosts file, absolute */
	time_t mount_time;
	uid_t uid;    /* -o uid: owner of everything (default: who mounts) */
	gid_t gid;    /* -o gid */
	mode_t umask; /* -o umask: bits taken from every mode (077) */
};

/* The FUSE operations (fs/ops.c). */
struct fuse_operations;
const struct fuse_operations *kvmmigfs_operations(void);

#endif
