/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Transfers of a mount, for its status files: see status.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/clock.h"
#include "status.h"

struct transfer {
	struct status *st;
	enum transfer_kind kind;
	char *host, *guest, *disk; /* disk NULL: the whole guest */
	uint64_t total;		   /* bytes of data expected; 0: unknown */
	uint64_t done;		   /* atomics */
	/* A live move's, as libvirt counts (guarded by the registry's
	 * lock); parts: they were set. */
	uint64_t disk_done, disk_total, memory_done, memory_total;
	bool parts;
	time_t started;		      /* wall clock, for people */
	int64_t started_ms, ended_ms; /* monotonic; ended 0: running */
	/* Guarded by the registry's lock. */
	char phase[32];
	int errnum; /* first failure; 0: none */
	char *cause;
	time_t ended;
};

struct status {
	pthread_mutex_t lock;
	struct transfer **v; /* guarded by lock */
	size_t n;
};

struct status *status_new(void)
{
	struct status *st = calloc(1, sizeof *st);

	if (st)
		pthread_mutex_init(&st->lock, NULL);
	return st;
}

static void transfer_free(struct transfer *t)
{
	free(t->host);
	free(t->guest);
	free(t->disk);
	free(t->cause);
	free(t);
}

void status_free(struct status *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->n; i++)
		transfer_free(st->v[i]);
	free(st->v);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

/* Drop what ended more than STATUS_KEEP_S ago.  Lock held. */
static void prune(struct status *st, int64_t now)
{
	size_t k = 0;

	for (size_t i = 0; i < st->n; i++) {
		struct transfer *t = st->v[i];

		if (t->ended_ms && now - t->ended_ms > STATUS_KEEP_S * 1000LL)
			transfer_free(t);
		else
			st->v[k++] = t;
	}
	st->n = k;
}

struct transfer *status_begin(struct status *st, enum transfer_kind kind,
			      const char *host, const char *guest,
			      const char *disk, uint64_t total)
{
	struct transfer *t = calloc(1, sizeof *t), **v;

	if (!st || !t)
		goto nomem;
	t->st = st;
	t->kind = kind;
	t->total = total;
	t->started = time(NULL);
	t->started_ms = now_ms();
	snprintf(t->phase, sizeof t->phase, "copying");
	if (!(t->host = strdup(host)) || !(t->guest = strdup(guest)) ||
	    (disk && !(t->disk = strdup(disk))))
		goto nomem;
	pthread_mutex_lock(&st->lock);
	prune(st, t->started_ms);
	v = realloc(st->v, (st->n + 1) * sizeof *v);
	if (v) {
		st->v = v;
		st->v[st->n++] = t;
	}
	pthread_mutex_unlock(&st->lock);
	if (v)
		return t;
nomem:
	if (t)
		transfer_free(t);
	return NULL;
}

void transfer_add(struct transfer *t, uint64_t bytes)
{
	if (t)
		__atomic_add_fetch(&t->done, bytes, __ATOMIC_RELAXED);
}

void transfer_set_parts(struct transfer *t, uint64_t disk_done,
			uint64_t disk_total, uint64_t memory_done,
			uint64_t memory_total)
{
	if (!t)
		return;
	__atomic_store_n(&t->done, disk_done + memory_done, __ATOMIC_RELAXED);
	pthread_mutex_lock(&t->st->lock);
	t->total = disk_total + memory_total;
	t->disk_done = disk_done;
	t->disk_total = disk_total;
	t->memory_done = memory_done;
	t->memory_total = memory_total;
	t->parts = true;
	pthread_mutex_unlock(&t->st->lock);
}

void transfer_phase(struct transfer *t, const char *phase)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->st->lock);
	snprintf(t->phase, sizeof t->phase, "%s", phase);
	pthread_mutex_unlock(&t->st->lock);
}

void transfer_fail(struct transfer *t, int errnum, const char *cause)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->st->lock);
	if (!t->errnum) {
		t->errnum = errnum;
		t->cause = strdup(cause);
	}
	pthread_mutex_unlock(&t->st->lock);
}

void transfer_end(struct transfer *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->st->lock);
	t->ended = time(NULL);
	t->ended_ms = now_ms();
	snprintf(t->phase, sizeof t->phase, "ended");
	pthread_mutex_unlock(&t->st->lock);
}

/* The running whole-guest line of host/guest.  Lock held. */
static struct transfer *guest_line(struct status *st, const char *host,
				   const char *guest)
{
	for (size_t i = 0; i < st->n; i++) {
		struct transfer *t = st->v[i];

		if (t->kind == TRANSFER_WRITE && !t->disk && !t->ended_ms &&
		    strcmp(t->host, host) == 0 && strcmp(t->guest, guest) == 0)
			return t;
	}
	return NULL;
}

void status_guest_begin(struct status *st, const char *host, const char *guest)
{
	struct transfer *t =
	    status_begin(st, TRANSFER_WRITE, host, guest, NULL, 0);

	transfer_phase(t, "staging");
}

void status_guest_fail(struct status *st, const char *host, const char *guest,
		       int errnum, const char *cause)
{
	struct transfer *t;

	pthread_mutex_lock(&st->lock);
	t = guest_line(st, host, guest);
	if (t) {
		t->errnum = errnum;
		free(t->cause);
		t->cause = strdup(cause);
	}
	pthread_mutex_unlock(&st->lock);
}

void status_guest_end(struct status *st, const char *host, const char *guest,
		      int errnum, const char *cause)
{
	struct transfer *t;

	pthread_mutex_lock(&st->lock);
	t = guest_line(st, host, guest);
	if (t) {
		if (!errnum) { /* defined: what failed before was retried */
			t->errnum = 0;
			free(t->cause);
			t->cause = NULL;
		} else if (!t->errnum) {
			t->errnum = errnum;
			t->cause = strdup(cause);
		}
		t->ended = time(NULL);
		t->ended_ms = now_ms();
		snprintf(t->phase, sizeof t->phase, "%s",
			 errnum ? "removed" : "defined");
	}
	pthread_mutex_unlock(&st->lock);
}

static const char *kind_name(enum transfer_kind k)
{
	return k == TRANSFER_WRITE    ? "write"
	       : k == TRANSFER_READ   ? "read"
	       : k == TRANSFER_VERIFY ? "verify"
				      : "move";
}

/* ISO 8601, UTC. */
static void iso(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* s as a JSON string. */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* n bytes for people: "12.3 MiB". */
static void human(uint64_t n, char *buf, size_t len)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

static void render_one(FILE *f, const struct transfer *t, bool json,
		       int64_t now)
{
	uint64_t done = __atomic_load_n(&t->done, __ATOMIC_RELAXED);
	int64_t ms = (t->ended_ms ? t->ended_ms : now) - t->started_ms;
	double rate = ms > 0 ? (double)done * 1000.0 / (double)ms : 0;
	long eta = !t->ended_ms && rate > 0 && t->total > done
		       ? (long)((double)(t->total - done) / rate + 0.5)
		       : -1;
	const char *result = t->ended_ms
				 ? t->errnum ? strerrorname_np(t->errnum) : "ok"
			     : t->errnum ? strerrorname_np(t->errnum)
					 : "running";
	char started[32], ended[32] = "", a[32], b[32], r[32];

	iso(t->started, started, sizeof started);
	if (t->ended_ms)
		iso(t->ended, ended, sizeof ended);
	if (json) {
		fprintf(f, "{\"kind\":\"%s\",\"host\":", kind_name(t->kind));
		json_str(f, t->host);
		fprintf(f, ",\"guest\":");
		json_str(f, t->guest);
		if (t->disk) {
			fprintf(f, ",\"disk\":");
			json_str(f, t->disk);
		}
		fprintf(f,
			",\"phase\":\"%s\",\"done\":%llu,\"total\":%llu,"
			"\"rate\":%.0f,\"eta\":",
			t->phase, (unsigned long long)done,
			(unsigned long long)t->total, rate);
		if (eta >= 0)
			fprintf(f, "%ld", eta);
		else
			fprintf(f, "null");
		if (t->parts)
			fprintf(f,
				",\"disk_done\":%llu,\"disk_total\":%llu,"
				"\"memory_done\":%llu,\"memory_total\":%llu",
				(unsigned long long)t->disk_done,
				(unsigned long long)t->disk_total,
				(unsigned long long)t->memory_done,
				(unsigned long long)t->memory_total);
		fprintf(f, ",\"started\":\"%s\",\"ended\":", started);
		if (t->ended_ms)
			fprintf(f, "\"%s\"", ended);
		else
			fprintf(f, "null");
		fprintf(f, ",\"result\":\"%s\",\"cause\":", result);
		if (t->cause)
			json_str(f, t->cause);
		else
			fprintf(f, "null");
		fprintf(f, "}\n");
		return;
	}
	human(done, a, sizeof a);
	human(t->total, b, sizeof b);
	human((uint64_t)rate, r, sizeof r);
	fprintf(f, "%-5s %s/%s%s%s  %s  %s / %s  %s/s", kind_name(t->kind),
		t->host, t->guest, t->disk ? "/" : "", t->disk ? t->disk : "",
		t->phase, a, t->total ? b : "?", r);
	if (eta >= 0)
		fprintf(f, "  ETA %ld:%02ld", eta / 60, eta % 60);
	if (t->parts) {
		char dd[32], dt[32], md[32], mt[32];

		human(t->disk_done, dd, sizeof dd);
		human(t->disk_total, dt, sizeof dt);
		human(t->memory_done, md, sizeof md);
		human(t->memory_total, mt, sizeof mt);
		fprintf(f, "  (disks %s / %s, memory %s / %s)", dd, dt, md, mt);
	}
	fprintf(f, "  started %s", started);
	if (t->ended_ms)
		fprintf(f, "  ended %s", ended);
	fprintf(f, "  %s", result);
	if (t->cause)
		fprintf(f, ": %s", t->cause);
	fprintf(f, "\n");
}

char *status_render(struct status *st, bool json, const char *host,
		    const char *guest, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	int64_t now = now_ms();

	if (!f)
		return NULL;
	pthread_mutex_lock(&st->lock);
	prune(st, now);
	for (size_t i = 0; i < st->n; i++) {
		const struct transfer *t = st->v[i];

		if ((host && strcmp(t->host, host) != 0) ||
		    (guest && strcmp(t->guest, guest) != 0))
			continue;
		render_one(f, t, json, now);
	}
	pthread_mutex_unlock(&st->lock);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
