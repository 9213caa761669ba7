/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An endpoint's connection: open and close, the dispatcher thread that
 * alone waits on the socket, bounded waits, the count of commands in
 * flight, and what a failed command reports.  The thread model and lock
 * order are in endpoint-int.h.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <libnbd.h>

#include "../common/clock.h"
#include "../common/error.h"
#include "endpoint-int.h"

/* libnbd's errno for a command that failed because the connection went. */
static bool connection_lost(int errnum)
{
	return errnum == ENOTCONN || errnum == ESHUTDOWN ||
	       errnum == ECONNRESET || errnum == EPIPE;
}

/* The one place that turns libnbd's errnos into the endpoint's. */
int ep_errno(struct endpoint *ep, int err, int fallback)
{
	if (ep->timed_out)
		return ETIMEDOUT;
	if (!err)
		return fallback;
	if (connection_lost(err))
		return EIO;
	return err;
}

/* Record libnbd's error for this endpoint; fall back to errnum. */
void ep_nbd_error(struct endpoint *ep, int errnum, const char *what)
{
	int e = nbd_get_errno();
	const char *m = nbd_get_error();

	pthread_mutex_lock(&ep->lock);
	e = ep_errno(ep, e, errnum);
	pthread_mutex_unlock(&ep->lock);
	error_set(e, "%s: %s: %s", ep->desc, what, m ? m : strerror(e));
}

/* Record why a command failed with errnum; ep->lock held. */
void ep_fail(struct endpoint *ep, int errnum, const char *what)
{
	int e = ep_errno(ep, errnum, EIO);

	if (ep->timed_out)
		error_set(e, "%s: %s: no answer within %d ms", ep->desc, what,
			  ep->timeout_ms);
	else if (e != errnum)
		error_set(e, "%s: %s: connection to the NBD server lost",
			  ep->desc, what);
	else
		error_set(e, "%s: %s: %s", ep->desc, what, strerror(e));
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
			ep_nbd_error(ep, EIO, "connecting");
			return -1;
		}
		left = (int)(deadline - now_ms());
		if (left <= 0)
			break;
		if (nbd_poll(ep->nbd, left) < 0) {
			ep_nbd_error(ep, EIO, "connecting");
			return -1;
		}
	}
	nbd_kill_subprocess(ep->nbd, SIGKILL);
	error_set(ETIMEDOUT, "%s: connecting: no answer within %d ms", ep->desc,
		  ep->timeout_ms);
	return -1;
}

void ep_wake(struct endpoint *ep)
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
	struct strvec argv = STRVEC_INIT;
	struct endpoint *ep = calloc(1, sizeof *ep);
	char errpath[64] = "";
	int errfd = -1, connected;
	int64_t size;

	error_clear();
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
	ep->rate = spec->rate;
	ep->desc = strdup(spec->desc ? spec->desc : spec->path);
	if (!ep->desc || server_command(ep->ops, spec, &argv) < 0 ||
	    !(ep->command = server_join(argv.v))) {
		error_set(ENOMEM, "out of memory");
		goto err;
	}
	ep->nbd = nbd_create();
	if (!ep->nbd) {
		ep_nbd_error(ep, ENOMEM, "nbd_create");
		goto err;
	}
	nbd_set_handle_name(ep->nbd, "kvmmigfs");
	errfd = server_stderr_to_file(&argv, errpath, sizeof errpath);
	if (nbd_add_meta_context(ep->nbd, LIBNBD_CONTEXT_BASE_ALLOCATION) < 0) {
		ep_nbd_error(ep, EHOSTDOWN, "starting the NBD server");
		goto err;
	}
	/* A server that dies at once may fail the connect call itself. */
	connected = connect_command(ep->nbd, argv.v);
	if (connected < 0)
		ep_nbd_error(ep, EIO, "connecting");
	if (connected < 0 || wait_connected(ep) < 0) {
		if (error_errno() != ETIMEDOUT) {
			char why[512], said[512];

			snprintf(why, sizeof why, "%s", error_msg());
			server_last_line(errfd, said, sizeof said);
			/* The cause first: the command can be long. */
			error_set(EHOSTDOWN,
				  "%s: could not start the NBD server: %s%s%s "
				  "(%s)",
				  ep->desc, said, said[0] ? "; " : "", why,
				  ep->command);
		}
		goto err;
	}
	size = nbd_get_size(ep->nbd);
	if (size < 0) {
		ep_nbd_error(ep, EIO, "size");
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
	strvec_release(&argv);
	if (errfd >= 0)
		close(errfd);
	return ep;
err:
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
int ep_check_alive(struct endpoint *ep, const char *what)
{
	if (!ep->dead && !ep->timed_out)
		return 0;
	if (ep_errno(ep, ENOTCONN, EIO) == ETIMEDOUT)
		error_set(
		    ETIMEDOUT,
		    "%s: %s: connection lost after no answer within %d ms",
		    ep->desc, what, ep->timeout_ms);
	else
		error_set(EIO, "%s: %s: connection to the NBD server lost",
			  ep->desc, what);
	return -1;
}

/* ep->lock held: count a command about to be issued. */
void ep_begin(struct endpoint *ep)
{
	if (ep->pending++ == 0)
		ep->progress_ms = now_ms();
}

/* ep->lock held: a command finished (or was never issued). */
void ep_end(struct endpoint *ep)
{
	ep->pending--;
	pthread_cond_broadcast(&ep->cond);
}

/* After an aio call without ep->lock: cookie < 0 means it was never
 * issued (libnbd does not call its completion then). */
int ep_issued(struct endpoint *ep, int64_t cookie, const char *what)
{
	if (cookie < 0) {
		ep_nbd_error(ep, EIO, what);
		pthread_mutex_lock(&ep->lock);
		ep_end(ep);
		pthread_mutex_unlock(&ep->lock);
		return -1;
	}
	ep_wake(ep);
	return 0;
}

int ep_req_done(void *opaque, int *error)
{
	struct req *r = opaque;
	struct endpoint *ep = r->ep;

	pthread_mutex_lock(&ep->lock);
	r->err = *error;
	r->done = true;
	ep_end(ep);
	pthread_mutex_unlock(&ep->lock);
	return 1;
}

/* Wait for r (issued); ep->lock held. */
int ep_req_wait(struct endpoint *ep, struct req *r, const char *what)
{
	while (!r->done)
		pthread_cond_wait(&ep->cond, &ep->lock);
	if (r->err) {
		ep_fail(ep, r->err, what);
		return -1;
	}
	return 0;
}

/* Issue one request made by issue() and wait for it; ep->lock held. */
int ep_one_request(struct endpoint *ep, const char *what,
		   int64_t (*issue)(struct endpoint *, void *,
				    nbd_completion_callback),
		   void *arg)
{
	struct req r = { .ep = ep };
	int ret;

	ep_begin(ep);
	pthread_mutex_unlock(&ep->lock);
	ret = ep_issued(ep, issue(ep, arg, REQ_COMPLETION(&r)), what);
	pthread_mutex_lock(&ep->lock);
	if (ret < 0)
		return -1;
	return ep_req_wait(ep, &r, what);
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
		ep_wake(ep);
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
	ep_free_write_buffers(ep);
	free(ep->desc);
	free(ep->command);
	free(ep);
}
