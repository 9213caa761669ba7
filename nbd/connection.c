/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NBD endpoints over libnbd's asynchronous API.
 *
 * Each connected endpoint has a dispatcher thread, the only one that waits
 * on the connection's socket: it polls the socket and an eventfd, and lets
 * libnbd move data with nbd_aio_notify_*.  Other threads issue commands
 * (libnbd's aio calls are thread-safe and send what they can at once) and
 * wait on ep->cond for their completion callbacks, which run in the
 * dispatcher.  So many requests can be in flight on one connection:
 * readahead for sequential reads, write-behind for writes.
 *
 * Deadlines: while anything is in flight, the dispatcher expects the socket
 * to make progress within timeout_ms; if it does not, the server (the host
 * shell) is killed, libnbd fails every command in flight, and the endpoint
 * is dead: every later call fails.
 *
 * Locking: ep->lock guards everything below it in struct endpoint.  It is
 * never held while calling libnbd (completion callbacks run with libnbd's
 * handle lock held and take ep->lock).
 */
#include <errno.h>
#include <stdio.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

#include "../common/clock.h"
#include "../common/error.h"
#include "endpoint.h"
#include "extents.h"
#include "hostcmd.h"

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

struct ra_slot {
	struct endpoint *ep;
	enum ra_state state;
	int err;
	uint64_t offset;
	size_t len;
	char *buf; /* RA_SLOT bytes, allocated on first use */
};

/* A write in flight; data follows. */
struct wreq {
	struct endpoint *ep;
	struct wreq *next, *prev;
	uint64_t offset;
	size_t count;
	char data[];
};

/* A request some thread waits for. */
struct req {
	struct endpoint *ep;
	bool done;
	int err;
};

struct endpoint {
	const struct endpoint_ops *ops;
	struct nbd_handle *nbd;
	char *desc;
	char *command; /* for logs */
	int timeout_ms;
	uint64_t size;
	bool has_status; /* server answers base:allocation */
	bool can_flush;
	int efd; /* wakes the dispatcher; -1 before it runs */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;   /* broadcast on every completion */
	bool stop;	       /* the dispatcher should exit */
	bool dead;	       /* the connection is gone */
	bool timed_out;	       /* ... because the server stopped answering */
	unsigned pending;      /* commands in flight */
	int64_t progress_ms;   /* last time the socket moved */
	struct extent_map map; /* what block status said */
	struct ra_slot ra[RA_SLOTS];
	uint64_t ra_expect;  /* where a sequential reader reads next */
	uint64_t ra_pos;     /* where readahead continues */
	bool status_busy;    /* a block status prefetch is in flight */
	uint64_t status_at;  /* ... from here on */
	struct wreq *writes; /* in flight */
	size_t wb_bytes;
	int wb_err; /* first failed write: errno, offset */
	uint64_t wb_err_offset;
};

const struct endpoint_ops *endpoint_ops_for(const char *format)
{
	return strcmp(format, "raw") == 0 ? &endpoint_nbdkit_file
					  : &endpoint_qemu_nbd;
}

/* Record libnbd's error for this endpoint; fall back to errnum. */
static void nbd_error(struct endpoint *ep, int errnum, const char *what)
{
	int e = nbd_get_errno();
	const char *m = nbd_get_error();

	error_set(e ? e : errnum, "%s: %s: %s", ep->desc, what,
		  m ? m : strerror(e ? e : errnum));
}

/* libnbd's errno for a command that failed because the connection went. */
static bool connection_lost(int errnum)
{
	return errnum == ENOTCONN || errnum == ESHUTDOWN ||
	       errnum == ECONNRESET || errnum == EPIPE;
}

/* Record why a command failed with errnum. */
static void fail(struct endpoint *ep, int errnum, const char *what)
{
	if (ep->timed_out)
		error_set(ETIMEDOUT, "%s: %s: no answer within %d ms", ep->desc,
			  what, ep->timeout_ms);
	else if (connection_lost(errnum))
		error_set(EIO, "%s: %s: connection to the NBD server lost",
			  ep->desc, what);
	else
		error_set(errnum, "%s: %s: %s", ep->desc, what,
			  strerror(errnum));
}

/* Poll until the handle is connected, before the dispatcher runs. */
static int wait_connected(struct endpoint *ep)
{
	int64_t deadline = now_ms() + ep->timeout_ms;

	for (;;) {
		int left;

		if (nbd_aio_is_ready(ep->nbd))
			return 0;
		if (nbd_aio_is_dead(ep->nbd) || nbd_aio_is_closed(ep->nbd)) {
			nbd_error(ep, EIO, "connecting");
			return -1;
		}
		left = (int)(deadline - now_ms());
		if (left <= 0)
			break;
		if (nbd_poll(ep->nbd, left) < 0) {
			nbd_error(ep, EIO, "connecting");
			return -1;
		}
	}
	nbd_kill_subprocess(ep->nbd, SIGKILL);
	error_set(ETIMEDOUT, "%s: connecting: no answer within %d ms", ep->desc,
		  ep->timeout_ms);
	return -1;
}

static void wake(struct endpoint *ep)
{
	uint64_t one = 1;

	if (write(ep->efd, &one, sizeof one) < 0) {
		/* The counter is saturated: the dispatcher wakes anyway. */
	}
}

static void *dispatch(void *arg)
{
	struct endpoint *ep = arg;

	for (;;) {
		struct pollfd p[2] = { { .fd = ep->efd, .events = POLLIN } };
		int n = 1, timeout = -1, fd, r;
		unsigned dir, pending;
		int64_t progress;
		bool stop;

		pthread_mutex_lock(&ep->lock);
		stop = ep->stop;
		pending = ep->pending;
		progress = ep->progress_ms;
		pthread_mutex_unlock(&ep->lock);
		if (stop)
			break;
		fd = nbd_aio_get_fd(ep->nbd);
		dir = nbd_aio_get_direction(ep->nbd);
		if (fd >= 0 && !nbd_aio_is_dead(ep->nbd) &&
		    !nbd_aio_is_closed(ep->nbd)) {
			p[1].fd = fd;
			p[1].events =
			    (dir & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0) |
			    (dir & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0);
			n = 2;
		} else {
			pthread_mutex_lock(&ep->lock);
			ep->dead = true;
			pthread_cond_broadcast(&ep->cond);
			pthread_mutex_unlock(&ep->lock);
		}
		if (pending && n == 2) {
			int64_t left = progress + ep->timeout_ms - now_ms();

			timeout = left > 0 ? (int)left : 0;
		}
		r = poll(p, n, timeout);
		if (r < 0)
			continue; /* EINTR */
		if (p[0].revents & POLLIN) {
			uint64_t v;

			if (read(ep->efd, &v, sizeof v) < 0) {
				/* Nothing to read: another wakeup took it. */
			}
		}
		if (n == 2 && p[1].revents) {
			if (p[1].revents & (POLLIN | POLLHUP | POLLERR))
				nbd_aio_notify_read(ep->nbd);
			else if (p[1].revents & POLLOUT)
				nbd_aio_notify_write(ep->nbd);
			pthread_mutex_lock(&ep->lock);
			ep->progress_ms = now_ms();
			pthread_mutex_unlock(&ep->lock);
		} else if (r == 0 && pending) {
			/* No progress within the deadline: give up on the
			 * server.  libnbd then fails what is in flight. */
			pthread_mutex_lock(&ep->lock);
			ep->timed_out = true;
			pthread_mutex_unlock(&ep->lock);
			nbd_kill_subprocess(ep->nbd, SIGKILL);
		}
	}
	return NULL;
}

static char *join_command(char *const *argv)
{
	size_t len = 1;
	char *s;

	for (char *const *a = argv; *a; a++)
		len += strlen(*a) + 1;
	s = malloc(len);
	if (!s)
		return NULL;
	s[0] = '\0';
	for (char *const *a = argv; *a; a++) {
		if (a != argv)
			strcat(s, " ");
		strcat(s, *a);
	}
	return s;
}

/* Make argv send its stderr (ssh's complaints: host keys, refused
 * connections, "command not found") to a new unlinked temporary file, so
 * that a failure can say why.  Returns the file's descriptor, or -1 (then
 * argv is unchanged and stderr is the daemon's). */
static int stderr_to_file(struct strvec *argv, char *path, size_t len)
{
	struct strvec wrapped = STRVEC_INIT;
	int fd;

	snprintf(path, len, "/tmp/kvmmigfs-nbd.XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	/* Unlinked at once, so that nothing is left behind whatever happens
	 * to the daemon; the command inherits fd and opens it again by its
	 * /dev/fd name. */
	unlink(path);
	snprintf(path, len, "/dev/fd/%d", fd);
	if (strvec_push(&wrapped, "/bin/sh") < 0 ||
	    strvec_push(&wrapped, "-c") < 0 ||
	    strvec_push(&wrapped, "exec \"$@\" 2>\"$0\"") < 0 ||
	    strvec_push(&wrapped, path) < 0 ||
	    strvec_push_all(&wrapped, argv->v) < 0) {
		strvec_release(&wrapped);
		close(fd);
		return -1;
	}
	strvec_release(argv);
	*argv = wrapped;
	return fd;
}

/* The last non-empty line of what fd holds, or "". */
static void last_line(int fd, char *buf, size_t len)
{
	char text[4096];
	ssize_t n = fd >= 0 ? pread(fd, text, sizeof text - 1, 0) : -1;
	char *end, *start;

	buf[0] = '\0';
	if (n <= 0)
		return;
	text[n] = '\0';
	end = text + n;
	while (end > text && (end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	start = strrchr(text, '\n');
	snprintf(buf, len, "%s", start ? start + 1 : text);
}

/* Make the server command (nbdkit ...) load filter if the host has it:
 * sh -c 'f=$1; shift; ...' sh FILTER nbdkit ARGS... */
static int with_filter(const char *filter, struct strvec *argv)
{
	struct strvec wrapped = STRVEC_INIT;

	if (!filter || !filter[0])
		return 0;
	if (strvec_push(&wrapped, "sh") < 0 ||
	    strvec_push(&wrapped, "-c") < 0 ||
	    strvec_push(&wrapped, "f=$1 n=$2; shift 2; if [ -r \"$f\" ]; "
				  "then exec \"$n\" --filter=\"$f\" \"$@\"; "
				  "else exec \"$n\" \"$@\"; fi") < 0 ||
	    strvec_push(&wrapped, "sh") < 0 ||
	    strvec_push(&wrapped, filter) < 0 ||
	    strvec_push_all(&wrapped, argv->v) < 0) {
		strvec_release(&wrapped);
		return -1;
	}
	strvec_release(argv);
	*argv = wrapped;
	return 0;
}

/* nbd_aio_connect_command with no signal blocked: the command (ssh)
 * inherits the calling thread's mask, and FUSE threads block every
 * signal, which would leave ssh deaf to SIGTERM and SIGINT. */
static int connect_command(struct nbd_handle *nbd, char **argv)
{
	sigset_t none, old;
	int r;

	sigemptyset(&none);
	pthread_sigmask(SIG_SETMASK, &none, &old);
	r = nbd_aio_connect_command(nbd, argv);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

struct endpoint *endpoint_open(const struct endpoint_spec *spec)
{
	struct strvec server = STRVEC_INIT, argv = STRVEC_INIT;
	struct endpoint *ep = calloc(1, sizeof *ep);
	char errpath[64] = "";
	int errfd = -1;
	int64_t size;

	if (!ep) {
		error_set(ENOMEM, "out of memory");
		return NULL;
	}
	ep->efd = -1;
	pthread_mutex_init(&ep->lock, NULL);
	pthread_cond_init(&ep->cond, NULL);
	for (int i = 0; i < RA_SLOTS; i++)
		ep->ra[i].ep = ep;
	ep->ops = endpoint_ops_for(spec->format);
	ep->timeout_ms = spec->timeout_ms > 0 ? spec->timeout_ms : 10000;
	ep->desc = strdup(spec->desc ? spec->desc : spec->path);
	if (!ep->desc || ep->ops->server_argv(spec, &server) < 0 ||
	    with_filter(spec->filter, &server) < 0 ||
	    hostcmd_argv(spec->shell, server.v, &argv) < 0 ||
	    !(ep->command = join_command(argv.v))) {
		error_set(ENOMEM, "out of memory");
		goto err;
	}
	ep->nbd = nbd_create();
	if (!ep->nbd) {
		nbd_error(ep, ENOMEM, "nbd_create");
		goto err;
	}
	nbd_set_handle_name(ep->nbd, "kvmmigfs");
	errfd = stderr_to_file(&argv, errpath, sizeof errpath);
	if (nbd_add_meta_context(ep->nbd, LIBNBD_CONTEXT_BASE_ALLOCATION) < 0 ||
	    connect_command(ep->nbd, argv.v) < 0) {
		nbd_error(ep, EHOSTDOWN, "starting the NBD server");
		goto err;
	}
	if (wait_connected(ep) < 0) {
		if (error_errno() != ETIMEDOUT) {
			char why[512], said[512];

			snprintf(why, sizeof why, "%s", error_msg());
			last_line(errfd, said, sizeof said);
			error_set(
			    EHOSTDOWN,
			    "%s: could not start the NBD server (%s): %s%s%s",
			    ep->desc, ep->command, said, said[0] ? "; " : "",
			    why);
		}
		goto err;
	}
	size = nbd_get_size(ep->nbd);
	if (size < 0) {
		nbd_error(ep, EIO, "size");
		goto err;
	}
	ep->size = (uint64_t)size;
	ep->has_status =
	    nbd_can_meta_context(ep->nbd, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
	ep->can_flush = nbd_can_flush(ep->nbd) == 1;
	extent_map_init(&ep->map, ep->size);
	if (!ep->has_status && extent_map_add(&ep->map, 0, ep->size, false) < 0)
		goto err;
	ep->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ep->efd < 0) {
		error_set(errno, "%s: eventfd: %s", ep->desc, strerror(errno));
		goto err;
	}
	errno = pthread_create(&ep->thread, NULL, dispatch, ep);
	if (errno) {
		error_set(errno, "%s: thread: %s", ep->desc, strerror(errno));
		close(ep->efd);
		ep->efd = -1;
		goto err;
	}
	strvec_release(&server);
	strvec_release(&argv);
	if (errfd >= 0)
		close(errfd);
	return ep;
err:
	strvec_release(&server);
	strvec_release(&argv);
	if (errfd >= 0)
		close(errfd);
	endpoint_close(ep);
	return NULL;
}

uint64_t endpoint_size(const struct endpoint *ep)
{
	return ep->size;
}

const char *endpoint_desc(const struct endpoint *ep)
{
	return ep->desc;
}

const char *endpoint_command(const struct endpoint *ep)
{
	return ep->command;
}

/* ep->lock held.  Fails if the connection is gone. */
static int check_alive(struct endpoint *ep, const char *what)
{
	if (ep->dead || ep->timed_out) {
		if (ep->timed_out)
			error_set(ETIMEDOUT,
				  "%s: %s: connection lost after no answer "
				  "within %d ms",
				  ep->desc, what, ep->timeout_ms);
		else
			error_set(EIO,
				  "%s: %s: connection to the NBD server lost",
				  ep->desc, what);
		return -1;
	}
	return 0;
}

/* ep->lock held: count a command about to be issued. */
static void begin(struct endpoint *ep)
{
	if (ep->pending++ == 0)
		ep->progress_ms = now_ms();
}

/* ep->lock held: a command finished (or was never issued). */
static void end(struct endpoint *ep)
{
	ep->pending--;
	pthread_cond_broadcast(&ep->cond);
}

/* After an aio call without ep->lock: cookie < 0 means it was never
 * issued (libnbd does not call its completion then). */
static int issued(struct endpoint *ep, int64_t cookie, const char *what)
{
	if (cookie < 0) {
		nbd_error(ep, EIO, what);
		pthread_mutex_lock(&ep->lock);
		end(ep);
		pthread_mutex_unlock(&ep->lock);
		return -1;
	}
	wake(ep);
	return 0;
}

static int req_done(void *opaque, int *error)
{
	struct req *r = opaque;
	struct endpoint *ep = r->ep;

	pthread_mutex_lock(&ep->lock);
	r->err = *error;
	r->done = true;
	end(ep);
	pthread_mutex_unlock(&ep->lock);
	return 1;
}

#define REQ_COMPLETION(r)                                                      \
	((nbd_completion_callback){ .callback = req_done, .user_data = (r) })

/* Wait for r (issued); ep->lock held. */
static int req_wait(struct endpoint *ep, struct req *r, const char *what)
{
	while (!r->done)
		pthread_cond_wait(&ep->cond, &ep->lock);
	if (r->err) {
		fail(ep, r->err, what);
		return -1;
	}
	return 0;
}

/* Synchronous read of [offset, offset+count) into buf; ep->lock held,
 * dropped while issuing. */
static int read_now(struct endpoint *ep, void *buf, size_t count,
		    uint64_t offset)
{
	struct req r = { .ep = ep };

	begin(ep);
	pthread_mutex_unlock(&ep->lock);
	if (issued(ep,
		   nbd_aio_pread(ep->nbd, buf, count, offset,
				 REQ_COMPLETION(&r), 0),
		   "read") < 0) {
		pthread_mutex_lock(&ep->lock);
		return -1;
	}
	pthread_mutex_lock(&ep->lock);
	return req_wait(ep, &r, "read");
}

/* An asynchronous read of endpoint_aio_pread. */
struct areq {
	struct endpoint *ep;
	void (*cb)(void *opaque, int err);
	void *opaque;
};

static int areq_done(void *opaque, int *error)
{
	struct areq *a = opaque;
	struct endpoint *ep = a->ep;
	int err = *error;

	if (connection_lost(err)) {
		pthread_mutex_lock(&ep->lock);
		err = ep->timed_out ? ETIMEDOUT : EIO;
		pthread_mutex_unlock(&ep->lock);
	}
	a->cb(a->opaque, err);
	pthread_mutex_lock(&ep->lock);
	end(ep);
	pthread_mutex_unlock(&ep->lock);
	free(a);
	return 1;
}

int endpoint_aio_pread(struct endpoint *ep, void *buf, size_t count,
		       uint64_t offset, void (*cb)(void *opaque, int err),
		       void *opaque)
{
	struct areq *a;
	int64_t cookie;

	if (count > MAX_REQUEST || offset > ep->size ||
	    count > ep->size - offset) {
		error_set(EINVAL, "%s: read beyond the end", ep->desc);
		return -1;
	}
	a = malloc(sizeof *a);
	if (!a) {
		error_set(ENOMEM, "out of memory");
		return -1;
	}
	*a = (struct areq){ ep, cb, opaque };
	pthread_mutex_lock(&ep->lock);
	if (check_alive(ep, "read") < 0) {
		pthread_mutex_unlock(&ep->lock);
		free(a);
		return -1;
	}
	begin(ep);
	pthread_mutex_unlock(&ep->lock);
	cookie = nbd_aio_pread(
	    ep->nbd, buf, count, offset,
	    (nbd_completion_callback){ .callback = areq_done, .user_data = a },
	    0);
	if (cookie < 0) {
		nbd_error(ep, EIO, "read");
		pthread_mutex_lock(&ep->lock);
		end(ep);
		pthread_mutex_unlock(&ep->lock);
		free(a);
		return -1;
	}
	wake(ep);
	return 0;
}

static int ra_done(void *opaque, int *error)
{
	struct ra_slot *s = opaque;
	struct endpoint *ep = s->ep;

	pthread_mutex_lock(&ep->lock);
	s->err = *error;
	s->state = *error ? RA_FAILED : RA_DONE;
	end(ep);
	pthread_mutex_unlock(&ep->lock);
	return 1;
}

/* The slot holding offset, or NULL; ep->lock held. */
static struct ra_slot *ra_find(struct endpoint *ep, uint64_t offset)
{
	for (int i = 0; i < RA_SLOTS; i++) {
		struct ra_slot *s = &ep->ra[i];

		if (s->state != RA_EMPTY && offset >= s->offset &&
		    offset < s->offset + s->len)
			return s;
	}
	return NULL;
}

/* A slot free for readahead ahead of a reader at offset; ep->lock held. */
static struct ra_slot *ra_free_slot(struct endpoint *ep, uint64_t offset)
{
	for (int i = 0; i < RA_SLOTS; i++) {
		struct ra_slot *s = &ep->ra[i];

		if (s->state == RA_EMPTY ||
		    (s->state != RA_BUSY && s->offset + s->len <= offset)) {
			if (!s->buf && !(s->buf = malloc(RA_SLOT)))
				return NULL;
			s->state = RA_EMPTY;
			return s;
		}
	}
	return NULL;
}

static int fetch_status(struct endpoint *ep, uint64_t offset);
static void prefetch_status(struct endpoint *ep, uint64_t offset);

/* Keep RA_SLOTS requests in flight ahead of a sequential reader that is
 * now at offset, over data extents only; ep->lock held (dropped while
 * issuing).  Failures only stop the readahead. */
static void readahead(struct endpoint *ep, uint64_t offset)
{
	if (ep->ra_pos < offset)
		ep->ra_pos = offset;
	while (ep->ra_pos < ep->size &&
	       ep->ra_pos < offset + (uint64_t)RA_SLOTS * RA_SLOT) {
		const struct extent *e = extent_map_find(&ep->map, ep->ra_pos);
		struct ra_slot *s;
		uint64_t len;
		int64_t cookie;

		if (!e) {
			/* Ask ahead (the host may be scanning for zeros
			 * meanwhile); the next read goes on from here. */
			prefetch_status(ep, ep->ra_pos);
			return;
		}
		if (e->zero) {
			ep->ra_pos = e->offset + e->length;
			continue;
		}
		s = ra_free_slot(ep, offset);
		if (!s)
			return;
		len = e->offset + e->length - ep->ra_pos;
		if (len > RA_SLOT)
			len = RA_SLOT;
		s->state = RA_BUSY;
		s->offset = ep->ra_pos;
		s->len = (size_t)len;
		ep->ra_pos += len;
		begin(ep);
		pthread_mutex_unlock(&ep->lock);
		cookie =
		    nbd_aio_pread(ep->nbd, s->buf, s->len, s->offset,
				  (nbd_completion_callback){
				      .callback = ra_done, .user_data = s },
				  0);
		if (cookie < 0) {
			pthread_mutex_lock(&ep->lock);
			s->state = RA_EMPTY;
			end(ep);
			return;
		}
		wake(ep);
		pthread_mutex_lock(&ep->lock);
	}
}

ssize_t endpoint_pread(struct endpoint *ep, void *buf, size_t count,
		       uint64_t offset)
{
	uint64_t pos = offset, end_;
	bool sequential;
	ssize_t ret = -1;

	pthread_mutex_lock(&ep->lock);
	if (check_alive(ep, "read") < 0)
		goto out;
	if (offset >= ep->size) {
		ret = 0;
		goto out;
	}
	if (count > ep->size - offset)
		count = ep->size - offset;
	end_ = offset + count;
	/* Sequential: where the last read ended, or only zeros (which
	 * cp seeks over) in between. */
	sequential = offset == ep->ra_expect || ra_find(ep, offset) ||
		     (offset > ep->ra_expect &&
		      extent_map_is_zero(&ep->map, ep->ra_expect,
					 offset - ep->ra_expect));
	while (pos < end_) {
		const struct extent *e = extent_map_find(&ep->map, pos);
		struct ra_slot *s;
		uint64_t n = end_ - pos;

		if (e && e->zero) {
			if (n > e->offset + e->length - pos)
				n = e->offset + e->length - pos;
			memset((char *)buf + (pos - offset), 0, n);
			pos += n;
			continue;
		}
		s = ra_find(ep, pos);
		if (s) {
			while (s->state == RA_BUSY)
				pthread_cond_wait(&ep->cond, &ep->lock);
			if (s->state == RA_FAILED) {
				fail(ep, s->err, "read");
				s->state = RA_EMPTY;
				goto out;
			}
			if (s->state != RA_DONE || pos < s->offset ||
			    pos >= s->offset + s->len)
				continue; /* reused meanwhile: look again */
			if (n > s->offset + s->len - pos)
				n = s->offset + s->len - pos;
			memcpy((char *)buf + (pos - offset),
			       s->buf + (pos - s->offset), n);
			pos += n;
			continue;
		}
		/* Not read ahead: read it now, up to the next slot. */
		for (int i = 0; i < RA_SLOTS; i++) {
			struct ra_slot *t = &ep->ra[i];

			if (t->state != RA_EMPTY && t->offset > pos &&
			    t->offset - pos < n)
				n = t->offset - pos;
		}
		if (e && n > e->offset + e->length - pos)
			n = e->offset + e->length - pos;
		if (n > MAX_REQUEST)
			n = MAX_REQUEST;
		if (read_now(ep, (char *)buf + (pos - offset), n, pos) < 0)
			goto out;
		pos += n;
	}
	ret = (ssize_t)count;
	ep->ra_expect = end_;
	if (sequential)
		readahead(ep, end_);
	else
		ep->ra_pos = end_;
out:
	pthread_mutex_unlock(&ep->lock);
	return ret;
}

static int write_done(void *opaque, int *error)
{
	struct wreq *w = opaque;
	struct endpoint *ep = w->ep;

	pthread_mutex_lock(&ep->lock);
	if (*error && !ep->wb_err) {
		ep->wb_err = *error;
		ep->wb_err_offset = w->offset;
	}
	if (w->prev)
		w->prev->next = w->next;
	else
		ep->writes = w->next;
	if (w->next)
		w->next->prev = w->prev;
	ep->wb_bytes -= w->count;
	end(ep);
	pthread_mutex_unlock(&ep->lock);
	free(w);
	return 1;
}

/* ep->lock held: a write in flight overlaps [offset, offset+count). */
static bool write_overlaps(struct endpoint *ep, uint64_t offset, size_t count)
{
	for (struct wreq *w = ep->writes; w; w = w->next)
		if (w->offset < offset + count && offset < w->offset + w->count)
			return true;
	return false;
}

/* ep->lock held: fail with the first failed write, if any. */
static int write_error(struct endpoint *ep)
{
	char what[64];

	if (!ep->wb_err)
		return 0;
	snprintf(what, sizeof what, "write at offset %" PRIu64,
		 ep->wb_err_offset);
	fail(ep, ep->wb_err, what);
	return -1;
}

/* ep->lock held: wait until no write is in flight. */
static int drain_writes(struct endpoint *ep)
{
	while (ep->writes)
		pthread_cond_wait(&ep->cond, &ep->lock);
	return write_error(ep);
}

int endpoint_pwrite(struct endpoint *ep, const void *buf, size_t count,
		    uint64_t offset)
{
	size_t done = 0;

	if (offset > ep->size || count > ep->size - offset) {
		error_set(EFBIG, "%s: write beyond the volume's size",
			  ep->desc);
		return -1;
	}
	while (done < count) {
		size_t n =
		    count - done > MAX_REQUEST ? MAX_REQUEST : count - done;
		uint64_t at = offset + done;
		struct wreq *w = malloc(sizeof *w + n);
		int64_t cookie;

		if (!w) {
			error_set(ENOMEM, "out of memory");
			return -1;
		}
		w->ep = ep;
		w->offset = at;
		w->count = n;
		w->prev = NULL;
		memcpy(w->data, (const char *)buf + done, n);
		pthread_mutex_lock(&ep->lock);
		/* NBD may reorder requests in flight: never two writes to
		 * the same bytes at once. */
		while (
		    ep->writes &&
		    (ep->wb_bytes + n > WB_MAX || write_overlaps(ep, at, n)) &&
		    !ep->wb_err)
			pthread_cond_wait(&ep->cond, &ep->lock);
		if (write_error(ep) < 0 || check_alive(ep, "write") < 0) {
			pthread_mutex_unlock(&ep->lock);
			free(w);
			return -1;
		}
		w->next = ep->writes;
		if (w->next)
			w->next->prev = w;
		ep->writes = w;
		ep->wb_bytes += n;
		begin(ep);
		pthread_mutex_unlock(&ep->lock);
		cookie =
		    nbd_aio_pwrite(ep->nbd, w->data, n, at,
				   (nbd_completion_callback){
				       .callback = write_done, .user_data = w },
				   0);
		if (cookie < 0) {
			int e = 0;

			nbd_error(ep, EIO, "write");
			pthread_mutex_lock(&ep->lock);
			e = error_errno();
			if (!ep->wb_err) {
				ep->wb_err = e;
				ep->wb_err_offset = at;
			}
			pthread_mutex_unlock(&ep->lock);
			write_done(w, &e);
			return -1;
		}
		wake(ep);
		done += n;
	}
	return 0;
}

/* Issue one request made by issue() and wait for it; ep->lock held. */
static int one_request(struct endpoint *ep, const char *what,
		       int64_t (*issue)(struct endpoint *, void *,
					nbd_completion_callback),
		       void *arg)
{
	struct req r = { .ep = ep };
	int ret;

	begin(ep);
	pthread_mutex_unlock(&ep->lock);
	ret = issued(ep, issue(ep, arg, REQ_COMPLETION(&r)), what);
	pthread_mutex_lock(&ep->lock);
	if (ret < 0)
		return -1;
	return req_wait(ep, &r, what);
}

struct range {
	uint64_t offset, count;
};

static int64_t issue_zero(struct endpoint *ep, void *arg,
			  nbd_completion_callback cb)
{
	struct range *r = arg;

	return nbd_aio_zero(ep->nbd, r->count, r->offset, cb, 0);
}

static int64_t issue_flush(struct endpoint *ep, void *arg,
			   nbd_completion_callback cb)
{
	(void)arg;
	return nbd_aio_flush(ep->nbd, cb, 0);
}

int endpoint_zero(struct endpoint *ep, uint64_t count, uint64_t offset)
{
	int r = -1;

	if (offset > ep->size || count > ep->size - offset) {
		error_set(EFBIG, "%s: zero beyond the volume's size", ep->desc);
		return -1;
	}
	pthread_mutex_lock(&ep->lock);
	if (drain_writes(ep) < 0 || check_alive(ep, "zero") < 0)
		goto out;
	while (count > 0) {
		struct range rg = { offset,
				    count > STATUS_SPAN ? STATUS_SPAN : count };

		if (one_request(ep, "zero", issue_zero, &rg) < 0)
			goto out;
		offset += rg.count;
		count -= rg.count;
	}
	r = 0;
out:
	pthread_mutex_unlock(&ep->lock);
	return r;
}

int endpoint_flush(struct endpoint *ep)
{
	int r = -1;

	pthread_mutex_lock(&ep->lock);
	if (drain_writes(ep) < 0 || check_alive(ep, "flush") < 0)
		goto out;
	if (ep->can_flush && one_request(ep, "flush", issue_flush, NULL) < 0)
		goto out;
	r = 0;
out:
	pthread_mutex_unlock(&ep->lock);
	return r;
}

struct status_ctx {
	struct endpoint *ep;
	int failed;
};

/* Runs in the dispatcher; takes ep->lock. */
static int status_extent(void *opaque, const char *context, uint64_t offset,
			 uint32_t *entries, size_t nr_entries, int *error)
{
	struct status_ctx *ctx = opaque;
	struct endpoint *ep = ctx->ep;

	(void)error;
	if (strcmp(context, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
		return 0;
	pthread_mutex_lock(&ep->lock);
	for (size_t i = 0; i + 1 < nr_entries; i += 2) {
		bool zero = entries[i + 1] & LIBNBD_STATE_ZERO;

		if (extent_map_add(&ep->map, offset, entries[i], zero) < 0)
			ctx->failed = 1;
		offset += entries[i];
	}
	pthread_mutex_unlock(&ep->lock);
	return 0;
}

struct status_arg {
	struct status_ctx *ctx;
	uint64_t offset, count;
};

static int64_t issue_status(struct endpoint *ep, void *arg,
			    nbd_completion_callback cb)
{
	struct status_arg *a = arg;

	return nbd_aio_block_status(
	    ep->nbd, a->count, a->offset,
	    (nbd_extent_callback){ .callback = status_extent,
				   .user_data = a->ctx },
	    cb, 0);
}

/* Ask the server about the extents from offset on; ep->lock not held. */
static int fetch_status(struct endpoint *ep, uint64_t offset)
{
	struct status_ctx ctx = { .ep = ep };
	struct status_arg a = { &ctx, offset, ep->size - offset };
	int r = -1;

	if (a.count > STATUS_SPAN)
		a.count = STATUS_SPAN;
	pthread_mutex_lock(&ep->lock);
	/* A prefetch from at or before offset may answer it: do not make
	 * the host scan the same data twice. */
	while (ep->status_busy && ep->status_at <= offset)
		pthread_cond_wait(&ep->cond, &ep->lock);
	if (extent_map_find(&ep->map, offset)) {
		r = 0;
		goto out;
	}
	if (check_alive(ep, "block status") < 0 ||
	    one_request(ep, "block status", issue_status, &a) < 0)
		goto out;
	if (ctx.failed) {
		error_set(ENOMEM, "out of memory");
		goto out;
	}
	if (!extent_map_find(&ep->map, offset)) {
		error_set(EIO, "%s: server gave no block status at %" PRIu64,
			  ep->desc, offset);
		goto out;
	}
	r = 0;
out:
	pthread_mutex_unlock(&ep->lock);
	return r;
}

struct prefetch {
	struct status_ctx ctx;
	struct endpoint *ep;
};

static int prefetch_done(void *opaque, int *error)
{
	struct prefetch *p = opaque;
	struct endpoint *ep = p->ep;

	(void)error; /* a failed prefetch is asked again, synchronously */
	pthread_mutex_lock(&ep->lock);
	ep->status_busy = false;
	end(ep);
	pthread_mutex_unlock(&ep->lock);
	free(p);
	return 1;
}

/* Ask for block status from offset on without waiting; ep->lock held
 * (dropped while issuing).  At most one in flight. */
static void prefetch_status(struct endpoint *ep, uint64_t offset)
{
	struct prefetch *p;
	uint64_t count = ep->size - offset;
	int64_t cookie;

	if (ep->status_busy || !ep->has_status || offset >= ep->size ||
	    ep->dead || ep->timed_out)
		return;
	p = calloc(1, sizeof *p);
	if (!p)
		return;
	p->ep = ep;
	p->ctx.ep = ep;
	if (count > STATUS_SPAN)
		count = STATUS_SPAN;
	ep->status_busy = true;
	ep->status_at = offset;
	begin(ep);
	pthread_mutex_unlock(&ep->lock);
	cookie = nbd_aio_block_status(
	    ep->nbd, count, offset,
	    (nbd_extent_callback){ .callback = status_extent,
				   .user_data = &p->ctx },
	    (nbd_completion_callback){ .callback = prefetch_done,
				       .user_data = p },
	    0);
	pthread_mutex_lock(&ep->lock);
	if (cookie < 0) {
		ep->status_busy = false;
		end(ep);
		free(p);
		return;
	}
	wake(ep);
}

int endpoint_extent(struct endpoint *ep, uint64_t offset, uint64_t max,
		    uint64_t *length, bool *zero)
{
	const struct extent *e;
	uint64_t end_;

	if (offset >= ep->size) {
		error_set(ENXIO, "%s: extent past the end", ep->desc);
		return -1;
	}
	pthread_mutex_lock(&ep->lock);
	while (!(e = extent_map_find(&ep->map, offset))) {
		pthread_mutex_unlock(&ep->lock);
		if (fetch_status(ep, offset) < 0)
			return -1;
		pthread_mutex_lock(&ep->lock);
	}
	end_ = e->offset + e->length;
	*zero = e->zero;
	*length = end_ - offset < max ? end_ - offset : max;
	/* What follows is asked about while this extent is copied. */
	if (end_ < ep->size && !extent_map_find(&ep->map, end_))
		prefetch_status(ep, end_);
	pthread_mutex_unlock(&ep->lock);
	return 0;
}

int64_t endpoint_seek(struct endpoint *ep, int64_t offset, int whence)
{
	int64_t r;

	pthread_mutex_lock(&ep->lock);
	if (check_alive(ep, "seek") < 0) {
		pthread_mutex_unlock(&ep->lock);
		return -1;
	}
	for (;;) {
		uint64_t missing = 0;

		r = extent_map_seek(&ep->map, offset, whence, &missing);
		if (r != -EAGAIN)
			break;
		pthread_mutex_unlock(&ep->lock);
		if (fetch_status(ep, missing) < 0)
			return -1;
		pthread_mutex_lock(&ep->lock);
	}
	pthread_mutex_unlock(&ep->lock);
	if (r < 0) {
		error_set((int)-r, "%s: seek: %s", ep->desc, strerror((int)-r));
		return -1;
	}
	return r;
}

void endpoint_close(struct endpoint *ep)
{
	if (!ep)
		return;
	if (ep->efd >= 0) {
		pthread_mutex_lock(&ep->lock);
		while (ep->pending)
			pthread_cond_wait(&ep->cond, &ep->lock);
		ep->stop = true;
		pthread_mutex_unlock(&ep->lock);
		wake(ep);
		pthread_join(ep->thread, NULL);
		close(ep->efd);
	}
	if (ep->nbd) {
		if (ep->timed_out)
			nbd_kill_subprocess(ep->nbd, SIGKILL);
		nbd_close(ep->nbd);
	}
	for (int i = 0; i < RA_SLOTS; i++)
		free(ep->ra[i].buf);
	extent_map_release(&ep->map);
	pthread_cond_destroy(&ep->cond);
	pthread_mutex_destroy(&ep->lock);
	free(ep->desc);
	free(ep->command);
	free(ep);
}
