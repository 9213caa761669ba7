/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An NBD endpoint: one disk of one host, reached through an NBD server
 * started on that host for this connection.
 *
 * Kinds (an operations table each, one file each):
 *   nbdkit-file.c  raw files and block devices: nbdkit's file plugin;
 *   qemu-nbd.c     every other format (qcow2 chains read flattened):
 *                  qemu-nbd under nbdkit's nbd plugin.
 * The server speaks NBD on its stdin/stdout ("nbdkit -s") and exits with
 * its parent, the host shell (see hostcmd.h).
 *
 * Every wait is bounded by spec->timeout_ms: a host that stops answering
 * makes the call fail with ETIMEDOUT and the endpoint is then dead (every
 * later call fails with EIO).  Thread model: an endpoint may be used from
 * several threads at once, with many requests in flight; no call blocks
 * longer than about timeout_ms without the server making progress.  The
 * implementation (server.c, connection.c, read.c, write.c, status.c) and
 * its lock order are described in endpoint-int.h.
 */
#ifndef KVMMIGFS_ENDPOINT_H
#define KVMMIGFS_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/strvec.h"

struct rate;

struct endpoint_spec {
	char *const *shell; /* the host's shell prefix; NULL/empty: local */
	const char *path;   /* the disk's path on the host */
	const char *format; /* "raw", "qcow2", ... */
	bool readonly;
	bool shared;	    /* read an image that a running guest holds */
	const char *filter; /* an nbdkit filter on the host, used if it
			     * exists there (the zero scan); NULL/"": none */
	const char *desc;   /* for messages, e.g. "hosta/web1/vda.raw" */
	int timeout_ms;	    /* bound of every wait */
	struct rate *rate;  /* the host's bandwidth limit (rate.h), waited
			     * for before each read or write is sent;
			     * NULL: none */
};

struct endpoint_ops {
	const char *kind;
	/* Append the server command that runs on the host (an argv).  The
	 * server must speak NBD on stdin/stdout and exit with its parent. */
	int (*server_argv)(const struct endpoint_spec *spec,
			   struct strvec *argv);
};

extern const struct endpoint_ops endpoint_nbdkit_file;
extern const struct endpoint_ops endpoint_qemu_nbd;

/* The kind that serves a disk of this format. */
const struct endpoint_ops *endpoint_ops_for(const char *format);

struct endpoint;

/* Start the server on the host and connect.  Returns NULL with error_set():
 * ETIMEDOUT, EHOSTDOWN (the host shell or server failed to start), ENOMEM. */
struct endpoint *endpoint_open(const struct endpoint_spec *spec);

/* The disk's size in bytes, as the server reports it. */
uint64_t endpoint_size(const struct endpoint *ep);

/* Read count bytes at offset (short only at the end of the disk).  Ranges
 * known to be zero are answered locally.  Returns bytes read or -1. */
ssize_t endpoint_pread(struct endpoint *ep, void *buf, size_t count,
		       uint64_t offset);

/* Start reading count (<= 32 MiB) bytes at offset into buf, which must
 * stay valid until cb(opaque, err) has run (err 0 or an errno; it runs in
 * the endpoint's own thread: it must not call the endpoint).  Returns 0,
 * or -1 with error_set() if the read could not be started (then cb never
 * runs). */
int endpoint_aio_pread(struct endpoint *ep, void *buf, size_t count,
		       uint64_t offset, void (*cb)(void *opaque, int err),
		       void *opaque);

/* lseek(SEEK_DATA / SEEK_HOLE) from the server's block status.  Servers
 * without block status report all data.  Returns the offset or -1 with
 * error_set() (ENXIO past the end or no more data). */
int64_t endpoint_seek(struct endpoint *ep, int64_t offset, int whence);

/* The extent at offset (< size): *length bytes, at most max, that all read
 * as zeros (*zero) or are all data, from block status (asked for if not
 * yet known; what follows is then asked for ahead).  Returns 0 or -1. */
int endpoint_extent(struct endpoint *ep, uint64_t offset, uint64_t max,
		    uint64_t *length, bool *zero);

/* Write count bytes at offset.  Returns 0 or -1 with error_set() carrying
 * the server's errno (ENOSPC, EIO, ...). */
int endpoint_pwrite(struct endpoint *ep, const void *buf, size_t count,
		    uint64_t offset);

/* Make [offset, offset+count) read as zeros (NBD zero request; the server
 * may punch a hole).  Returns 0 or -1. */
int endpoint_zero(struct endpoint *ep, uint64_t count, uint64_t offset);

/* Make every write so far durable.  Returns 0 or -1. */
int endpoint_flush(struct endpoint *ep);

/* The spec's desc, for messages (owned by ep). */
const char *endpoint_desc(const struct endpoint *ep);

/* The command line that endpoint_open ran, for logs (owned by ep). */
const char *endpoint_command(const struct endpoint *ep);

/* Disconnect; the server exits with its connection. */
void endpoint_close(struct endpoint *ep);

#endif
