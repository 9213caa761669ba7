/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NBD endpoints over libnbd's asynchronous API, so that every wait has a
 * deadline (libnbd's synchronous calls would wait forever on a host that
 * stopped answering).
 *
 * Thread model: ep->lock is held for the whole of each public call, so a
 * handle is only ever polled by one thread.  ep->map and ep->dead are
 * guarded by ep->lock.
 */
#include <errno.h>
#include <stdio.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

#include "endpoint.h"
#include "error.h"
#include "extents.h"
#include "hostcmd.h"

/* Largest request sent; qemu-nbd and nbdkit both accept 32 MiB. */
#define MAX_REQUEST (32u << 20)
/* Block status asks this much at once (4 GiB - 4 KiB, aligned). */
#define STATUS_SPAN 0xfffff000u

struct endpoint {
	const struct endpoint_ops *ops;
	struct nbd_handle *nbd;
	char *desc;
	char *command; /* for logs */
	int timeout_ms;
	uint64_t size;
	bool has_status; /* server answers base:allocation */
	pthread_mutex_t lock;
	bool dead;	       /* guarded by lock: a wait timed out */
	struct extent_map map; /* guarded by lock */
};

const struct endpoint_ops *endpoint_ops_for(const char *format)
{
	return strcmp(format, "raw") == 0 ? &endpoint_nbdkit_file
					  : &endpoint_qemu_nbd;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Record libnbd's error for this endpoint; fall back to errnum. */
static void nbd_error(struct endpoint *ep, int errnum, const char *what)
{
	int e = nbd_get_errno();
	const char *m = nbd_get_error();

	error_set(e ? e : errnum, "%s: %s: %s", ep->desc, what,
		  m ? m : strerror(e ? e : errnum));
}

/* Poll until done(ep, cookie) says 1 (success) or -1 (failure), or the
 * deadline passes.  On a timeout the endpoint is dead: its server is
 * killed so that nothing waits on it again. */
static int wait_until(struct endpoint *ep,
		      int (*done)(struct endpoint *, int64_t), int64_t cookie,
		      const char *what)
{
	int64_t deadline = now_ms() + ep->timeout_ms;

	for (;;) {
		int r = done(ep, cookie), left;

		if (r == 1)
			return 0;
		if (r < 0) {
			nbd_error(ep, EIO, what);
			return -1;
		}
		left = (int)(deadline - now_ms());
		if (left <= 0)
			break;
		if (nbd_poll(ep->nbd, left) < 0) {
			nbd_error(ep, EIO, what);
			return -1;
		}
	}
	ep->dead = true;
	nbd_kill_subprocess(ep->nbd, SIGKILL);
	error_set(ETIMEDOUT, "%s: %s: no answer within %d ms", ep->desc, what,
		  ep->timeout_ms);
	return -1;
}

static int connected(struct endpoint *ep, int64_t unused)
{
	(void)unused;
	if (nbd_aio_is_ready(ep->nbd))
		return 1;
	if (nbd_aio_is_dead(ep->nbd) || nbd_aio_is_closed(ep->nbd))
		return -1;
	return 0;
}

static int completed(struct endpoint *ep, int64_t cookie)
{
	return nbd_aio_command_completed(ep->nbd, cookie);
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
	if (strvec_push(&wrapped, "/bin/sh") < 0 ||
	    strvec_push(&wrapped, "-c") < 0 ||
	    strvec_push(&wrapped, "exec \"$@\" 2>\"$0\"") < 0 ||
	    strvec_push(&wrapped, path) < 0 ||
	    strvec_push_all(&wrapped, argv->v) < 0) {
		strvec_release(&wrapped);
		unlink(path);
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
	pthread_mutex_init(&ep->lock, NULL);
	ep->ops = endpoint_ops_for(spec->format);
	ep->timeout_ms = spec->timeout_ms > 0 ? spec->timeout_ms : 10000;
	ep->desc = strdup(spec->desc ? spec->desc : spec->path);
	if (!ep->desc || ep->ops->server_argv(spec, &server) < 0 ||
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
	    nbd_aio_connect_command(ep->nbd, argv.v) < 0) {
		nbd_error(ep, EHOSTDOWN, "starting the NBD server");
		goto err;
	}
	if (wait_until(ep, connected, 0, "connecting") < 0) {
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
	extent_map_init(&ep->map, ep->size);
	if (!ep->has_status && extent_map_add(&ep->map, 0, ep->size, false) < 0)
		goto err;
	strvec_release(&server);
	strvec_release(&argv);
	if (errfd >= 0) {
		unlink(errpath);
		close(errfd);
	}
	return ep;
err:
	strvec_release(&server);
	strvec_release(&argv);
	if (errfd >= 0) {
		unlink(errpath);
		close(errfd);
	}
	endpoint_close(ep);
	return NULL;
}

uint64_t endpoint_size(const struct endpoint *ep)
{
	return ep->size;
}

const char *endpoint_command(const struct endpoint *ep)
{
	return ep->command;
}

static int check_alive(struct endpoint *ep)
{
	if (ep->dead) {
		error_set(EIO, "%s: connection lost after an earlier timeout",
			  ep->desc);
		return -1;
	}
	return 0;
}

ssize_t endpoint_pread(struct endpoint *ep, void *buf, size_t count,
		       uint64_t offset)
{
	size_t done = 0;
	ssize_t ret = -1;

	pthread_mutex_lock(&ep->lock);
	if (check_alive(ep) < 0)
		goto out;
	if (offset >= ep->size) {
		ret = 0;
		goto out;
	}
	if (count > ep->size - offset)
		count = ep->size - offset;
	while (done < count) {
		size_t n =
		    count - done > MAX_REQUEST ? MAX_REQUEST : count - done;
		int64_t cookie;

		if (extent_map_is_zero(&ep->map, offset + done, n)) {
			memset((char *)buf + done, 0, n);
			done += n;
			continue;
		}
		cookie = nbd_aio_pread(ep->nbd, (char *)buf + done, n,
				       offset + done, NBD_NULL_COMPLETION, 0);
		if (cookie < 0) {
			nbd_error(ep, EIO, "read");
			goto out;
		}
		if (wait_until(ep, completed, cookie, "read") < 0)
			goto out;
		done += n;
	}
	ret = (ssize_t)done;
out:
	pthread_mutex_unlock(&ep->lock);
	return ret;
}

/* Issue one request made by start() and wait for it. */
static int one_request(struct endpoint *ep, int64_t cookie, const char *what)
{
	if (cookie < 0) {
		nbd_error(ep, EIO, what);
		return -1;
	}
	return wait_until(ep, completed, cookie, what);
}

int endpoint_pwrite(struct endpoint *ep, const void *buf, size_t count,
		    uint64_t offset)
{
	size_t done = 0;
	int r = -1;

	pthread_mutex_lock(&ep->lock);
	if (check_alive(ep) < 0)
		goto out;
	if (offset > ep->size || count > ep->size - offset) {
		error_set(EFBIG, "%s: write beyond the volume's size",
			  ep->desc);
		goto out;
	}
	while (done < count) {
		size_t n =
		    count - done > MAX_REQUEST ? MAX_REQUEST : count - done;

		if (one_request(
			ep,
			nbd_aio_pwrite(ep->nbd, (const char *)buf + done, n,
				       offset + done, NBD_NULL_COMPLETION, 0),
			"write") < 0)
			goto out;
		done += n;
	}
	r = 0;
out:
	pthread_mutex_unlock(&ep->lock);
	return r;
}

int endpoint_zero(struct endpoint *ep, uint64_t count, uint64_t offset)
{
	int r = -1;

	pthread_mutex_lock(&ep->lock);
	if (check_alive(ep) < 0)
		goto out;
	if (offset > ep->size || count > ep->size - offset) {
		error_set(EFBIG, "%s: zero beyond the volume's size", ep->desc);
		goto out;
	}
	while (count > 0) {
		uint64_t n = count > STATUS_SPAN ? STATUS_SPAN : count;

		if (one_request(ep,
				nbd_aio_zero(ep->nbd, n, offset,
					     NBD_NULL_COMPLETION, 0),
				"zero") < 0)
			goto out;
		offset += n;
		count -= n;
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
	if (check_alive(ep) == 0 && nbd_can_flush(ep->nbd) != 1)
		r = 0;
	else if (check_alive(ep) == 0)
		r = one_request(ep,
				nbd_aio_flush(ep->nbd, NBD_NULL_COMPLETION, 0),
				"flush");
	pthread_mutex_unlock(&ep->lock);
	return r;
}

struct status_ctx {
	struct endpoint *ep;
	int failed;
};

static int status_extent(void *opaque, const char *context, uint64_t offset,
			 uint32_t *entries, size_t nr_entries, int *error)
{
	struct status_ctx *ctx = opaque;

	(void)error;
	if (strcmp(context, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
		return 0;
	for (size_t i = 0; i + 1 < nr_entries; i += 2) {
		bool zero = entries[i + 1] & LIBNBD_STATE_ZERO;

		if (extent_map_add(&ctx->ep->map, offset, entries[i], zero) < 0)
			ctx->failed = 1;
		offset += entries[i];
	}
	return 0;
}

/* Ask the server about the extents from offset on. */
static int fetch_status(struct endpoint *ep, uint64_t offset)
{
	struct status_ctx ctx = { .ep = ep };
	uint64_t count = ep->size - offset;
	int64_t cookie;

	if (count > STATUS_SPAN)
		count = STATUS_SPAN;
	cookie = nbd_aio_block_status(
	    ep->nbd, count, offset,
	    (nbd_extent_callback){ .callback = status_extent,
				   .user_data = &ctx },
	    NBD_NULL_COMPLETION, 0);
	if (cookie < 0) {
		nbd_error(ep, EIO, "block status");
		return -1;
	}
	if (wait_until(ep, completed, cookie, "block status") < 0)
		return -1;
	if (ctx.failed) {
		error_set(ENOMEM, "out of memory");
		return -1;
	}
	if (!extent_map_find(&ep->map, offset)) {
		error_set(EIO, "%s: server gave no block status at %" PRIu64,
			  ep->desc, offset);
		return -1;
	}
	return 0;
}

int64_t endpoint_seek(struct endpoint *ep, int64_t offset, int whence)
{
	int64_t r = -1;

	pthread_mutex_lock(&ep->lock);
	if (check_alive(ep) < 0)
		goto out;
	for (;;) {
		uint64_t missing = 0;

		r = extent_map_seek(&ep->map, offset, whence, &missing);
		if (r != -EAGAIN)
			break;
		if (fetch_status(ep, missing) < 0) {
			r = -1;
			goto out;
		}
	}
	if (r < 0) {
		error_set((int)-r, "%s: seek: %s", ep->desc, strerror((int)-r));
		r = -1;
	}
out:
	pthread_mutex_unlock(&ep->lock);
	return r;
}

void endpoint_close(struct endpoint *ep)
{
	if (!ep)
		return;
	if (ep->nbd) {
		if (ep->dead)
			nbd_kill_subprocess(ep->nbd, SIGKILL);
		nbd_close(ep->nbd);
	}
	extent_map_release(&ep->map);
	pthread_mutex_destroy(&ep->lock);
	free(ep->desc);
	free(ep->command);
	free(ep);
}
