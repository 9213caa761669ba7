/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The direct path: see direct.h. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/error.h"
#include "../common/strvec.h"
#include "../nbd/hostcmd.h"
#include "../nbd/rate.h"
#include "direct.h"

struct direct {
	struct hostcmd_proc p;
	uint64_t offset, length;
	uint64_t done;	/* the copier's last "done" */
	uint64_t shown; /* what direct_poll said last */
	bool ended;	/* "end": done is flushed */
	int silence_ms; /* longest silence before it counts as dead */
	int64_t heard_ms;
	char line[256]; /* a stdout line being read */
	size_t line_len;
	char err[512]; /* its last stderr line */
	char tool[64]; /* the copier's name, for messages */
};

struct direct *direct_start(const struct direct_spec *s)
{
	struct direct *d = calloc(1, sizeof *d);
	struct strvec cmd = STRVEC_INIT;
	char off[24], len[24], ms[16], rate[32];
	const char *base;

	if (!d) {
		error_set(ENOMEM, "out of memory");
		return NULL;
	}
	snprintf(off, sizeof off, "%" PRIu64, s->offset);
	snprintf(len, sizeof len, "%" PRIu64, s->length);
	snprintf(ms, sizeof ms, "%d", s->timeout_ms);
	rate_format(s->rate, rate, sizeof rate);
	if (strvec_push(&cmd, s->tool) < 0 || strvec_push(&cmd, "-o") < 0 ||
	    strvec_push(&cmd, off) < 0 || strvec_push(&cmd, "-l") < 0 ||
	    strvec_push(&cmd, len) < 0 || strvec_push(&cmd, "-f") < 0 ||
	    strvec_push(&cmd, s->src_format) < 0 ||
	    strvec_push(&cmd, "-F") < 0 ||
	    strvec_push(&cmd, s->dst_format) < 0 ||
	    strvec_push(&cmd, "-t") < 0 || strvec_push(&cmd, ms) < 0 ||
	    (s->filter && s->filter[0] &&
	     (strvec_push(&cmd, "-z") < 0 ||
	      strvec_push(&cmd, s->filter) < 0)) ||
	    (s->shared && strvec_push(&cmd, "-s") < 0) ||
	    (s->zero && strvec_push(&cmd, "-Z") < 0) ||
	    (s->rate &&
	     (strvec_push(&cmd, "-r") < 0 || strvec_push(&cmd, rate) < 0)))
		goto nomem;
	for (size_t i = 0; s->reach[i]; i++)
		if (strvec_push(&cmd, "-R") < 0 ||
		    strvec_push(&cmd, s->reach[i]) < 0)
			goto nomem;
	if (strvec_push(&cmd, s->src_path) < 0 ||
	    strvec_push(&cmd, s->dst_path) < 0)
		goto nomem;
	d->offset = s->offset;
	d->length = s->length;
	/* It talks at least four times a second, but one request may wait
	 * longer for its turn under a bandwidth limit. */
	d->silence_ms = 3 * s->timeout_ms;
	if (s->rate)
		d->silence_ms += (int)((4ULL << 20) * 1000 / s->rate);
	base = strrchr(s->tool, '/');
	snprintf(d->tool, sizeof d->tool, "%s", base ? base + 1 : s->tool);
	if (hostcmd_start(s->shell, cmd.v, &d->p) < 0) {
		strvec_release(&cmd);
		free(d);
		return NULL;
	}
	strvec_release(&cmd);
	d->heard_ms = now_ms();
	return d;
nomem:
	strvec_release(&cmd);
	free(d);
	error_set(ENOMEM, "out of memory");
	return NULL;
}

uint64_t direct_offset(const struct direct *d)
{
	return d->offset;
}

uint64_t direct_end(const struct direct *d)
{
	return d->offset + d->length;
}

/* Keep the last line of stderr. */
static void read_err(struct direct *d)
{
	char buf[1024];
	ssize_t n;

	while ((n = read(d->p.err, buf, sizeof buf - 1)) > 0) {
		char *start = buf, *nl;

		buf[n] = '\0';
		while ((nl = strchr(start, '\n'))) {
			*nl = '\0';
			if (*start)
				snprintf(d->err, sizeof d->err, "%s", start);
			start = nl + 1;
		}
		if (*start)
			snprintf(d->err, sizeof d->err, "%s", start);
	}
}

/* One line of stdout.  0, or -1 with error_set(). */
static int take_line(struct direct *d, char *line,
		     int (*data)(void *, uint64_t, uint64_t), void *opaque)
{
	unsigned long long a, b;

	if (sscanf(line, "data %llu %llu", &a, &b) == 2)
		return data(opaque, a, b);
	if (sscanf(line, "done %llu", &a) == 1) {
		d->done = a;
		return 0;
	}
	if (sscanf(line, "end %llu", &a) == 1) {
		d->done = a;
		d->ended = true;
		return 0;
	}
	error_set(EPROTO, "%s said \"%s\"", d->tool, line);
	return -1;
}

/* The copier has exited (or must): why, as error_set(). */
static void failed(struct direct *d, int status)
{
	const char *why = d->err[0] ? d->err : "no message";

	if (status == 3)
		error_set(EHOSTUNREACH, "cannot reach the source host: %s",
			  why);
	else if (status == 127)
		error_set(ENOPKG, "%s is not installed on the host: %s",
			  d->tool, why);
	else if (status == 255)
		error_set(EHOSTDOWN, "cannot run %s on the host: %s", d->tool,
			  why);
	else if (status >= 17 && status < 216)
		error_set(status - 16, "%s", why);
	else if (status == 0)
		error_set(EPROTO, "%s ended before it had copied the range",
			  d->tool);
	else
		error_set(EIO, "%s failed (status %d): %s", d->tool, status,
			  why);
}

int direct_poll(struct direct *d, int max_ms,
		int (*data)(void *opaque, uint64_t offset, uint64_t length),
		void *opaque, uint64_t *done)
{
	int64_t deadline = now_ms() + max_ms;

	for (;;) {
		struct pollfd fds[2] = { { d->p.out, POLLIN, 0 },
					 { d->p.err, POLLIN, 0 } };
		bool eof = false;
		uint64_t show;
		int64_t now = now_ms();
		int wait = deadline > now ? (int)(deadline - now) : 0;

		/* What the caller may count: all of it only once flushed. */
		show = d->ended || d->done < d->length ? d->done : d->shown;
		if (show != d->shown || d->ended) {
			d->shown = show;
			*done = show;
			return d->ended ? 1 : 0;
		}
		if (now >= deadline) {
			*done = d->shown;
			return 0;
		}
		if (now - d->heard_ms > d->silence_ms) {
			error_set(ETIMEDOUT, "%s: silent for %d ms", d->tool,
				  d->silence_ms);
			return -1;
		}
		if (wait < 50)
			wait = 50;
		if (poll(fds, 2, wait) < 0 && errno != EINTR) {
			error_set(errno, "poll: %s", strerror(errno));
			return -1;
		}
		read_err(d);
		for (;;) {
			ssize_t n = read(d->p.out, d->line + d->line_len,
					 sizeof d->line - 1 - d->line_len);
			char *nl;

			if (n == 0)
				eof = true;
			if (n <= 0)
				break;
			d->heard_ms = now_ms();
			d->line_len += (size_t)n;
			d->line[d->line_len] = '\0';
			while ((nl = strchr(d->line, '\n'))) {
				*nl = '\0';
				if (take_line(d, d->line, data, opaque) < 0)
					return -1;
				d->line_len -= (size_t)(nl + 1 - d->line);
				memmove(d->line, nl + 1, d->line_len + 1);
			}
			if (d->line_len == sizeof d->line - 1) {
				error_set(EPROTO, "%s: a line too long",
					  d->tool);
				return -1;
			}
		}
		if (eof && !d->ended) {
			int status;

			read_err(d);
			status = hostcmd_reap(&d->p, false);
			failed(d, status);
			return -1;
		}
		if (eof && d->ended) {
			*done = d->shown = d->done;
			return 1;
		}
	}
}

void direct_stop(struct direct *d)
{
	if (!d)
		return;
	if (d->p.pid > 0)
		hostcmd_reap(&d->p, !d->ended);
	free(d);
}
