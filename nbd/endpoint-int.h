/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The inside of an NBD endpoint, shared by the files that implement
 * endpoint.h over libnbd's asynchronous API:
 *
 *   server.c      the command that runs the NBD server on the host
 *   connection.c  open and close, the dispatcher thread, bounded waits,
 *                 counting commands in flight, libnbd errors to errno
 *   read.c        reads: synchronous, asynchronous, readahead
 *   write.c       write-behind, zero requests, flush
 *   status.c      block status, the extents cache, lseek answers
 *
 * NOTES ON THE THREAD MODEL
 *
 * Threads:
 *   - Callers: any number of threads (FUSE's, the copy engine's caller)
 *     call the public functions at once.  They issue libnbd aio commands
 *     themselves (libnbd's calls are thread-safe and send what they can at
 *     once) and wait on ep->cond for completions.
 *   - The dispatcher: one thread per endpoint (connection.c, dispatch()),
 *     the only one that waits on the connection's socket.  It polls the
 *     socket and ep->efd and lets libnbd move data with
 *     nbd_aio_notify_*().  libnbd runs completion and extent callbacks
 *     (req_done, areq_done, ra_done, write_done, prefetch_done,
 *     status_extent) inside those calls, in this thread, with libnbd's
 *     handle lock held.
 *   So many requests can be in flight on one connection: readahead for
 *   sequential reads, write-behind for writes, a block status prefetch.
 *
 * Deadlines: while anything is in flight (ep->pending > 0), the dispatcher
 * expects the socket to make progress within timeout_ms; if it does not,
 * it sets ep->timed_out and kills the server (the host shell), libnbd
 * fails every command in flight, and the endpoint is dead: every later
 * call fails.
 *
 * Lock order (take them in this order, never the other way round):
 *   1. fs/ops.c: an open disk's lock (of->lock), held across copy_range();
 *   2. fs/stage.c: the stage lock (sh->lock);
 *   3. fs/stage.c: a staged disk's io lock (sf->io_lock), held across
 *      endpoint_pwrite/zero/flush/close of its endpoint;
 *   4. libnbd's handle lock, inside every nbd_*() call; callbacks run
 *      with it held;
 *   5. ep->lock;
 *   6. nbd/copy.c: the engine's lock (e.lock), a leaf: taken by the
 *      aio_pread callback in the dispatcher (with 4 held, without 5).
 * Consequences:
 *   - ep->lock is never held while calling libnbd: functions documented
 *     "ep->lock held" drop it around every nbd_aio_*() call.
 *   - Callers' locks (1-3) may be held across any endpoint call, so the
 *     endpoint never calls back into fs/; an endpoint_aio_pread callback
 *     runs in the dispatcher and must not call the endpoint.
 *
 * Errors: a public function that can fail starts with error_clear() and,
 * when it fails, leaves error_set() (common/error.h) with the most
 * specific errno, so that a path that forgets it is caught
 * (tests/check_endpoint.c); libnbd's errnos become ours in one place,
 * ep_errno().
 */
#ifndef KVMMIGFS_ENDPOINT_INT_H
#define KVMMIGFS_ENDPOINT_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <libnbd.h>

#include "endpoint.h"
#include "extents.h"
#include "rate.h"

/* Largest request sent; qemu-nbd and nbdkit both accept 32 MiB. */
#define MAX_REQUEST (32u << 20)
/* Block status asks this much at once (4 GiB - 4 KiB, aligned). */
#define STATUS_SPAN 0xfffff000u
/* Readahead: this many requests of RA_SLOT bytes ahead of a sequential
 * reader, over data extents only. */
#define RA_SLOTS 8
#define RA_SLOT	 (2u << 20)
/* Write-behind: at most this many bytes of writes in flight. */
#define WB_MAX (16u << 20)

enum ra_state { RA_EMPTY, RA_BUSY, RA_DONE, RA_FAILED };

/* A readahead buffer (read.c).  Every field is guarded by ep->lock; buf's
 * bytes belong to libnbd while the slot is RA_BUSY. */
struct ra_slot {
	struct endpoint *ep; /* constant */
	enum ra_state state;
	int err;
	uint64_t offset;
	size_t len;
	char *buf; /* RA_SLOT bytes, allocated on first use */
};

/* A write in flight (write.c); data follows.  next and prev are guarded
 * by ep->lock; the rest is constant while it is in flight. */
struct wreq {
	struct endpoint *ep;
	struct wreq *next, *prev;
	uint64_t offset;
	size_t count;
	bool pooled; /* WB_BUF bytes of data, kept for reuse */
	char data[];
};

/* Write requests of WB_BUF/2 to WB_BUF bytes reuse their buffers (at most
 * WB_MAX / WB_BUF kept per endpoint): a fresh buffer of that size comes
 * from mmap, and faulting its pages in cost more than copying into it. */
#define WB_BUF (1u << 20)

/* A request some thread waits for; done and err guarded by ep->lock. */
struct req {
	struct endpoint *ep;
	bool done;
	int err;
};

struct endpoint {
	/* Set by endpoint_open() before the dispatcher starts, then
	 * constant: read without a lock. */
	const struct endpoint_ops *ops;
	struct nbd_handle *nbd; /* thread-safe: libnbd's own lock */
	char *desc;
	char *command; /* for logs */
	int timeout_ms;
	struct rate *rate; /* NULL: no limit */
	uint64_t size;
	bool has_status; /* server answers base:allocation */
	bool can_flush;
	int efd; /* wakes the dispatcher; -1 before it runs */
	pthread_t thread;

	pthread_mutex_t lock; /* ep->lock: guards everything below */
	pthread_cond_t cond;  /* broadcast on every completion */

	/* The connection (connection.c). */
	bool stop;	     /* the dispatcher should exit */
	bool dead;	     /* the connection is gone */
	bool timed_out;	     /* ... because the server stopped answering */
	unsigned pending;    /* commands in flight */
	int64_t progress_ms; /* last time the socket moved */

	/* Block status (status.c). */
	struct extent_map map; /* what block status said */
	bool status_busy;      /* a block status prefetch is in flight */
	uint64_t status_at;    /* ... from here on */

	/* Readahead (read.c). */
	struct ra_slot ra[RA_SLOTS];
	uint64_t ra_expect; /* where a sequential reader reads next */
	uint64_t ra_pos;    /* where readahead continues */

	/* Write-behind (write.c). */
	struct wreq *writes; /* in flight */
	size_t wb_bytes;
	int wb_err; /* first failed write: errno, offset */
	uint64_t wb_err_offset;
	struct wreq *wb_free; /* buffers of WB_BUF bytes to reuse */
	unsigned wb_nfree;
};

/* server.c */

/* Append to argv the command that serves spec's disk on its host (through
 * its shell): ops' server, made to load spec->filter where the host has
 * it.  Returns 0 or -1 (ENOMEM). */
int server_command(const struct endpoint_ops *ops,
		   const struct endpoint_spec *spec, struct strvec *argv);

/* argv's words joined by blanks, for logs (malloc'd), or NULL. */
char *server_join(char *const *argv);

/* Make argv send its stderr (ssh's complaints) to a new unlinked temporary
 * file, whose name (/dev/fd/N) is written to path.  Returns the file's
 * descriptor, or -1 (then argv is unchanged). */
int server_stderr_to_file(struct strvec *argv, char *path, size_t len);

/* The last non-empty line of what fd (-1: none) holds, or "". */
void server_last_line(int fd, char *buf, size_t len);

/* connection.c */

/* The errno for a libnbd failure, the one mapping every failure path
 * uses: err is libnbd's errno (nbd_get_errno() right after a call, or a
 * completion's *error; 0: it gave none) and fallback the errno to use
 * then.  ETIMEDOUT once the server stopped answering, EIO for a
 * connection that went (ENOTCONN, ESHUTDOWN, ECONNRESET, EPIPE), else
 * err.  ep->lock held. */
int ep_errno(struct endpoint *ep, int err, int fallback);

/* error_set() for a libnbd call about what that failed just now: libnbd's
 * errno through ep_errno() (fallback if it gave none) and its message.
 * ep->lock not held. */
void ep_nbd_error(struct endpoint *ep, int fallback, const char *what);

/* error_set() for a command about what that completed with err (through
 * ep_errno()).  ep->lock held. */
void ep_fail(struct endpoint *ep, int err, const char *what);

/* Free the write buffers kept for reuse (write.c); at close. */
void ep_free_write_buffers(struct endpoint *ep);

/* Fail (error_set) if the connection is gone.  ep->lock held. */
int ep_check_alive(struct endpoint *ep, const char *what);

/* Wake the dispatcher: a command was issued.  No lock needed. */
void ep_wake(struct endpoint *ep);

/* Count a command about to be issued.  ep->lock held. */
void ep_begin(struct endpoint *ep);

/* A command finished (or was never issued).  ep->lock held. */
void ep_end(struct endpoint *ep);

/* After an aio call without ep->lock: cookie < 0 means it was never
 * issued (libnbd does not call its completion then): error_set and
 * ep_end.  Returns 0 or -1. */
int ep_issued(struct endpoint *ep, int64_t cookie, const char *what);

/* The completion of a struct req. */
int ep_req_done(void *opaque, int *error);

#define REQ_COMPLETION(r)                                                      \
	((nbd_completion_callback){ .callback = ep_req_done, .user_data = (r) })

/* Wait for r (issued); ep->lock held. */
int ep_req_wait(struct endpoint *ep, struct req *r, const char *what);

/* Issue one request made by issue() and wait for it; ep->lock held
 * (dropped while issuing). */
int ep_one_request(struct endpoint *ep, const char *what,
		   int64_t (*issue)(struct endpoint *, void *,
				    nbd_completion_callback),
		   void *arg);

/* status.c */

/* Ask the server about the extents from offset on and wait; ep->lock not
 * held.  Returns 0 (the map knows offset) or -1. */
int ep_fetch_status(struct endpoint *ep, uint64_t offset);

/* Ask for block status from offset on without waiting; ep->lock held
 * (dropped while issuing).  At most one in flight; failures are ignored
 * (what is missing is asked again, synchronously). */
void ep_prefetch_status(struct endpoint *ep, uint64_t offset);

#endif
