/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libvirt connections and the guest cache (see virt.h for the thread model
 * and the bounds).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "../common/clock.h"
#include "../common/error.h"
#include "../nbd/rate.h"
#include "log.h"
#include "virt-int.h"

static void *event_loop(void *arg)
{
	(void)arg;
	for (;;)
		if (virEventRunDefaultImpl() < 0)
			log_error("libvirt event loop: %s",
				  virGetLastErrorMessage());
	return NULL;
}

/* libvirt's default handler prints every error on stderr; we log ours. */
static void quiet_errors(void *opaque, virErrorPtr err)
{
	(void)opaque;
	(void)err;
}

int virt_init(void)
{
	pthread_t t;
	pthread_attr_t attr;

	if (virInitialize() < 0 || virEventRegisterDefaultImpl() < 0) {
		error_set(EIO, "cannot initialise libvirt: %s",
			  virGetLastErrorMessage());
		return -1;
	}
	virSetErrorFunc(NULL, quiet_errors);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, event_loop, NULL) != 0) {
		pthread_attr_destroy(&attr);
		error_set(EAGAIN, "cannot start the libvirt event thread");
		return -1;
	}
	pthread_attr_destroy(&attr);
	return 0;
}

/*
 * Connecting with a deadline.  A helper thread calls virConnectOpen; the
 * caller waits at most timeout_ms.  If the caller gives up first, the
 * helper closes whatever it gets.  The job is freed by whoever leaves last.
 */
struct connect_job {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int refs; /* caller + helper */
	bool done;
	virConnectPtr conn;
	char *uri;
	char error[512];
};

static void job_put(struct connect_job *job)
{
	bool last;

	pthread_mutex_lock(&job->lock);
	last = --job->refs == 0;
	pthread_mutex_unlock(&job->lock);
	if (!last)
		return;
	if (job->conn)
		virConnectClose(job->conn);
	free(job->uri);
	pthread_cond_destroy(&job->cond);
	pthread_mutex_destroy(&job->lock);
	free(job);
}

static void *connect_thread(void *arg)
{
	struct connect_job *job = arg;
	virConnectPtr conn = virConnectOpen(job->uri);

	pthread_mutex_lock(&job->lock);
	job->conn = conn;
	if (!conn)
		snprintf(job->error, sizeof job->error, "%s",
			 virGetLastErrorMessage());
	job->done = true;
	pthread_cond_signal(&job->cond);
	pthread_mutex_unlock(&job->lock);
	job_put(job);
	return NULL;
}

static virConnectPtr open_bounded(struct vhost *vh)
{
	struct connect_job *job = calloc(1, sizeof *job);
	virConnectPtr conn = NULL;
	struct timespec deadline;
	pthread_attr_t attr;
	pthread_t t;
	int r = 0;

	if (!job || !(job->uri = strdup(vh->cfg->libvirt_uri))) {
		free(job);
		error_set(ENOMEM, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&job->lock, NULL);
	pthread_cond_init(&job->cond, NULL);
	job->refs = 2;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, connect_thread, job) != 0) {
		pthread_attr_destroy(&attr);
		job->refs = 1;
		job_put(job);
		error_set(EAGAIN, "cannot start a thread");
		return NULL;
	}
	pthread_attr_destroy(&attr);

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += vh->timeout_ms / 1000;
	deadline.tv_nsec += (long)(vh->timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&job->lock);
	while (!job->done && r != ETIMEDOUT)
		r = pthread_cond_timedwait(&job->cond, &job->lock, &deadline);
	if (job->done) {
		conn = job->conn;
		job->conn = NULL;
		if (!conn)
			error_set(EHOSTDOWN, "cannot connect to %s: %s",
				  vh->cfg->libvirt_uri, job->error);
	} else {
		error_set(ETIMEDOUT, "no answer from %s within %d ms",
			  vh->cfg->libvirt_uri, vh->timeout_ms);
	}
	pthread_mutex_unlock(&job->lock);
	job_put(job);
	return conn;
}

virConnectPtr vhost_open(struct vhost *vh)
{
	virConnectPtr conn = open_bounded(vh);
	int interval;

	if (!conn)
		return NULL;
	/* A dead peer is noticed after interval * (count + 1) seconds. */
	interval = vh->timeout_ms / 4000;
	if (interval < 1)
		interval = 1;
	if (virConnectSetKeepAlive(conn, interval, 3) < 0)
		log_debug("%s: no libvirt keepalive: %s", vh->cfg->name,
			  virGetLastErrorMessage());
	return conn;
}

/* The host's connection, opened if needed.  Called with vh->lock held. */
virConnectPtr vhost_conn_locked(struct vhost *vh)
{
	if (vh->conn && virConnectIsAlive(vh->conn) == 1)
		return vh->conn;
	if (vh->conn) {
		virConnectClose(vh->conn);
		vh->conn = NULL;
	}
	vh->conn = vhost_open(vh);
	return vh->conn;
}

/* Turn the last libvirt error of a call that started at start_ms into
 * error_set(), dropping the connection if it died. */
void vhost_error(struct vhost *vh, int64_t start_ms, const char *what)
{
	virErrorPtr e = virGetLastError();
	int code = e ? e->code : VIR_ERR_INTERNAL_ERROR;
	char msg[512];
	int errnum = EIO;

	/* Copy: the calls below replace libvirt's last error. */
	snprintf(msg, sizeof msg, "%s",
		 e && e->message ? e->message : "unknown error");

	if (code == VIR_ERR_NO_DOMAIN)
		errnum = ENOENT;
	else if (code == VIR_ERR_STORAGE_VOL_EXIST || code == VIR_ERR_DOM_EXIST)
		errnum = EEXIST;
	else if (code == VIR_ERR_XML_ERROR || code == VIR_ERR_XML_DETAIL ||
		 code == VIR_ERR_XML_INVALID_SCHEMA ||
		 code == VIR_ERR_CONFIG_UNSUPPORTED ||
		 code == VIR_ERR_INVALID_ARG)
		errnum = EINVAL;
	else if (code == VIR_ERR_OPERATION_INVALID && strstr(msg, "already"))
		errnum = EEXIST;
	else if (code == VIR_ERR_NO_STORAGE_POOL ||
		 code == VIR_ERR_NO_STORAGE_VOL)
		errnum = ENOENT;
	if (vh->conn && virConnectIsAlive(vh->conn) != 1) {
		errnum = now_ms() - start_ms >= vh->timeout_ms ? ETIMEDOUT
							       : EHOSTDOWN;
		virConnectClose(vh->conn);
		vh->conn = NULL;
	}
	error_set(errnum, "%s: %s", what, msg);
}

/* The host's pool, with vh->lock held; NULL with error_set(). */
virStoragePoolPtr vhost_pool_locked(struct vhost *vh, int64_t start)
{
	virConnectPtr conn = vhost_conn_locked(vh);
	virStoragePoolPtr pool;

	if (!conn)
		return NULL;
	pool = virStoragePoolLookupByName(conn, vh->cfg->pool);
	if (!pool) {
		vhost_error(vh, start, "looking up the pool");
		error_prefix("pool \"%s\"", vh->cfg->pool);
	}
	return pool;
}

virDomainPtr vhost_domain_locked(struct vhost *vh, const char *name,
				 int64_t start)
{
	virConnectPtr conn = vhost_conn_locked(vh);
	virDomainPtr dom;

	if (!conn)
		return NULL;
	dom = virDomainLookupByName(conn, name);
	if (!dom)
		vhost_error(vh, start, "looking up the guest");
	return dom;
}

struct vhost *vhost_new(const struct host_config *cfg, int timeout_ms,
			int cache_ms)
{
	struct vhost *vh = calloc(1, sizeof *vh);

	if (!vh) {
		error_set(ENOMEM, "out of memory");
		return NULL;
	}
	vh->cfg = cfg;
	vh->timeout_ms = timeout_ms;
	vh->cache_ms = cache_ms;
	pthread_mutex_init(&vh->lock, NULL);
	return vh;
}

static void guest_free(struct guest *g)
{
	free(g->name);
	free(g->xml);
	free(g->sizes);
	domxml_release(&g->info);
	free(g);
}

void guest_put(struct guest *g)
{
	if (g && __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) == 0)
		guest_free(g);
}

static struct guest *guest_get(struct guest *g)
{
	__atomic_add_fetch(&g->refs, 1, __ATOMIC_ACQ_REL);
	return g;
}

void vhost_free(struct vhost *vh)
{
	if (!vh)
		return;
	for (size_t i = 0; i < vh->nguests; i++)
		guest_put(vh->guests[i]);
	free(vh->guests);
	strvec_release(&vh->names);
	strvec_release(&vh->logged);
	if (vh->conn)
		virConnectClose(vh->conn);
	rate_free(vh->rate);
	pthread_mutex_destroy(&vh->lock);
	free(vh);
}

int vhost_set_bwlimit(struct vhost *vh, uint64_t bytes_per_sec)
{
	rate_free(vh->rate);
	vh->rate = NULL;
	if (bytes_per_sec && !(vh->rate = rate_new(bytes_per_sec)))
		return -1;
	return 0;
}

struct rate *vhost_rate(const struct vhost *vh)
{
	return vh->rate;
}

const struct host_config *vhost_config(const struct vhost *vh)
{
	return vh->cfg;
}

static int fetch_names(struct vhost *vh)
{
	virConnectPtr conn = vhost_conn_locked(vh);
	virDomainPtr *doms = NULL;
	int64_t start = now_ms();
	struct strvec names = STRVEC_INIT;
	int n;

	if (!conn)
		return -1;
	n = virConnectListAllDomains(conn, &doms,
				     VIR_CONNECT_LIST_DOMAINS_PERSISTENT);
	if (n < 0) {
		vhost_error(vh, start, "listing guests");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		const char *name = virDomainGetName(doms[i]);

		/* A name the tree cannot show is left out. */
		if (name && strcmp(name, ".") && strcmp(name, "..") &&
		    !strchr(name, '/') && strlen(name) <= 255)
			strvec_push(&names, name);
		virDomainFree(doms[i]);
	}
	free(doms);
	strvec_release(&vh->names);
	vh->names = names;
	vh->names_ms = now_ms();
	/* A guest the listing no longer has is not found by a lookup either
	 * (mkdir of its name right after must not see the old snapshot). */
	for (size_t i = 0; i < vh->nguests;) {
		if (strvec_find(&vh->names, vh->guests[i]->name) < 0) {
			guest_put(vh->guests[i]);
			vh->guests[i] = vh->guests[--vh->nguests];
		} else {
			i++;
		}
	}
	return 0;
}

int vhost_list(struct vhost *vh, struct strvec *out)
{
	int r = 0;

	pthread_mutex_lock(&vh->lock);
	if (!vh->names_ms || now_ms() - vh->names_ms > vh->cache_ms)
		r = fetch_names(vh);
	if (r == 0)
		r = strvec_push_all(out, vh->names.v);
	pthread_mutex_unlock(&vh->lock);
	if (r < 0)
		error_prefix("%s", vh->cfg->name);
	return r;
}

struct skip_ctx {
	struct vhost *vh;
	const char *guest;
};

/* Log each skipped disk once per mount. */
static void log_skip(struct skip_ctx *ctx, const char *dev, const char *why)
{
	char key[600];

	snprintf(key, sizeof key, "%s/%s: %s", ctx->guest, dev, why);
	if (strvec_find(&ctx->vh->logged, key) >= 0)
		return;
	strvec_push(&ctx->vh->logged, key);
	log_info("%s/%s/%s: not listed: %s", ctx->vh->cfg->name, ctx->guest,
		 dev, why);
}

static void skip_cb(void *opaque, const char *dev, const char *why)
{
	log_skip(opaque, dev, why);
}

char *virt_volume_path(virConnectPtr conn, const char *pool, const char *volume,
		       struct disk_size *size)
{
	virStoragePoolPtr p = virStoragePoolLookupByName(conn, pool);
	virStorageVolPtr vol = p ? virStorageVolLookupByName(p, volume) : NULL;
	char *path = vol ? virStorageVolGetPath(vol) : NULL;
	virStorageVolInfo info;

	if (path && size) {
		if (virStorageVolGetInfo(vol, &info) == 0) {
			size->capacity = info.capacity;
			size->allocation = info.allocation;
		} else {
			free(path);
			path = NULL;
		}
	}
	/* Before the frees, which reset libvirt's last error. */
	if (!path)
		error_set(ENOENT, "%s", virGetLastErrorMessage());
	if (vol)
		virStorageVolFree(vol);
	if (p)
		virStoragePoolFree(p);
	return path;
}

/* Did the last libvirt call fail because of the host (the connection,
 * not the disk)?  Then the snapshot must fail: a disk dropped from it would
 * make a copy of the guest leave that disk out. */
static bool host_failed(virDomainPtr dom)
{
	virErrorPtr e = virGetLastError();
	int code = e ? e->code : VIR_ERR_INTERNAL_ERROR;

	return virConnectIsAlive(virDomainGetConnect(dom)) != 1 ||
	       code == VIR_ERR_RPC || code == VIR_ERR_NO_CONNECT ||
	       code == VIR_ERR_OPERATION_TIMEOUT || code == VIR_ERR_AUTH_FAILED;
}

/* Resolve volume disks and read each disk's sizes; disks whose source
 * cannot be read are dropped from the list (and logged); a host that
 * fails meanwhile fails it all.  start: when the caller began. */
static int fill_sizes(struct vhost *vh, virDomainPtr dom, struct guest *g,
		      int64_t start)
{
	struct disk_list *l = &g->info.disks;
	struct skip_ctx ctx = { vh, g->name };
	size_t kept = 0;

	g->sizes = calloc(l->n ? l->n : 1, sizeof *g->sizes);
	if (!g->sizes) {
		error_set(ENOMEM, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < l->n; i++) {
		struct disk *d = &l->v[i];
		virDomainBlockInfo bi;
		struct disk_size vs;
		bool volume = false, ok = false;
		char why[512];

		if (d->source_type == DISK_VOLUME && !d->path) {
			d->path = virt_volume_path(virDomainGetConnect(dom),
						   d->pool, d->volume, &vs);
			volume = d->path != NULL;
			if (!d->path && host_failed(dom)) {
				vhost_error(vh, start,
					    "resolving a volume disk");
				return -1;
			}
			if (!d->path) {
				snprintf(why, sizeof why,
					 "source unreadable: %s", error_msg());
				log_skip(&ctx, d->dev, why);
				domxml_disk_free(d);
				continue;
			}
		}
		if (virDomainGetBlockInfo(dom, d->dev, &bi, 0) == 0) {
			g->sizes[kept].capacity = bi.capacity;
			g->sizes[kept].allocation = bi.allocation;
			ok = true;
		} else if (volume) {
			/* libvirt gives no block info for a volume disk of a
			 * shut-off guest ("missing storage backend for
			 * 'volume' storage"): the pool has the sizes. */
			g->sizes[kept] = vs;
			ok = true;
		}
		if (ok) {
			if (kept != i) {
				l->v[kept] = *d;
				memset(d, 0, sizeof *d);
			}
			kept++;
			continue;
		}
		if (host_failed(dom)) {
			vhost_error(vh, start, "reading a disk's size");
			return -1;
		}
		snprintf(why, sizeof why, "source unreadable: %s",
			 virGetLastErrorMessage());
		log_skip(&ctx, d->dev, why);
		domxml_disk_free(d);
	}
	l->n = kept;
	return 0;
}

/* And where each disk is, on which host: the new host verifies its copies
 * against them (domxml_with_origin).  vh->lock held.  A host that cannot
 * say its UUID serves the XML without (its copies are then not
 * verified, which the new host logs). */
static int add_origin(struct vhost *vh, struct guest *g)
{
	size_t n = g->info.disks.n;
	const char **devs = calloc(n + 1, sizeof *devs);
	const char **paths = calloc(n + 1, sizeof *paths);
	const char **formats = calloc(n + 1, sizeof *formats);
	char uuid[64], *xml = NULL;
	int r = -1;

	if (!devs || !paths || !formats) {
		error_set(ENOMEM, "out of memory");
		goto out;
	}
	if (vhost_host_id_locked(vh, uuid, sizeof uuid) < 0) {
		log_warning("%s/%s: domain.xml is served without its disks' "
			    "origin (%s): copies of them cannot be verified",
			    vh->cfg->name, g->name, error_msg());
		r = 0;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		devs[i] = g->info.disks.v[i].dev;
		paths[i] = g->info.disks.v[i].path;
		formats[i] = g->info.disks.v[i].format;
	}
	xml = domxml_with_origin(g->xml, g->xml_len, vh->cfg->name, uuid, devs,
				 paths, formats, n);
	if (xml) {
		free(g->xml);
		g->xml = xml;
		g->xml_len = strlen(xml);
		r = 0;
	}
out:
	free(devs);
	free(paths);
	free(formats);
	return r;
}

/* Serve the XML with each disk's size in its <metadata>: the new host
 * checks copies against them (domxml.h). */
static int add_sizes(struct vhost *vh, struct guest *g)
{
	size_t n = g->info.disks.n;
	const char **devs = calloc(n + 1, sizeof *devs);
	unsigned long long *sizes = calloc(n + 1, sizeof *sizes);
	unsigned long long *allocs = calloc(n + 1, sizeof *allocs);
	char *xml = NULL;

	if (devs && sizes && allocs) {
		for (size_t i = 0; i < n; i++) {
			devs[i] = g->info.disks.v[i].dev;
			sizes[i] = g->sizes[i].capacity;
			/* A block device is allocated in full, whatever it
			 * holds: its allocation tells nothing of the data. */
			if (g->info.disks.v[i].source_type != DISK_BLOCK)
				allocs[i] = g->sizes[i].allocation;
		}
		xml = domxml_with_sizes(g->xml, g->xml_len, devs, sizes, allocs,
					n);
	} else {
		error_set(ENOMEM, "out of memory");
	}
	free(devs);
	free(sizes);
	free(allocs);
	if (!xml)
		return -1;
	free(g->xml);
	g->xml = xml;
	g->xml_len = strlen(xml);
	return add_origin(vh, g);
}

static struct guest *fetch_guest(struct vhost *vh, const char *name)
{
	int64_t start = now_ms();
	struct skip_ctx ctx = { vh, name };
	virDomainPtr dom = vhost_domain_locked(vh, name, start);
	struct guest *g;
	char *xml;
	int active;

	if (!dom)
		return NULL;
	g = calloc(1, sizeof *g);
	if (!g || !(g->name = strdup(name))) {
		error_set(ENOMEM, "out of memory");
		goto err;
	}
	g->refs = 1;
	/* SECURE: with the graphics passwords, so that a copy keeps them
	 * (domain.xml is readable by the mount's owner only, 0400). */
	xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE |
					   VIR_DOMAIN_XML_MIGRATABLE |
					   VIR_DOMAIN_XML_SECURE);
	active = xml ? virDomainIsActive(dom) : -1;
	if (!xml || active < 0) {
		free(xml);
		vhost_error(vh, start, "reading the guest's XML");
		goto err;
	}
	g->xml = xml;
	g->xml_len = strlen(xml);
	g->active = active == 1;
	if (domxml_parse(xml, g->xml_len, &g->info, skip_cb, &ctx) < 0 ||
	    fill_sizes(vh, dom, g, start) < 0 || add_sizes(vh, g) < 0)
		goto err;
	g->fetched_ms = now_ms();
	virDomainFree(dom);
	return g;
err:
	if (g)
		guest_free(g);
	virDomainFree(dom);
	return NULL;
}

struct guest *vhost_guest(struct vhost *vh, const char *name)
{
	struct guest *g = NULL, *fresh;
	size_t i;

	pthread_mutex_lock(&vh->lock);
	for (i = 0; i < vh->nguests; i++)
		if (strcmp(vh->guests[i]->name, name) == 0)
			break;
	if (i < vh->nguests &&
	    now_ms() - vh->guests[i]->fetched_ms <= vh->cache_ms) {
		g = guest_get(vh->guests[i]);
		goto out;
	}
	fresh = fetch_guest(vh, name);
	if (i < vh->nguests) { /* drop the stale snapshot */
		guest_put(vh->guests[i]);
		vh->guests[i] = vh->guests[--vh->nguests];
	}
	if (!fresh)
		goto out;
	{
		struct guest **v =
		    realloc(vh->guests, (vh->nguests + 1) * sizeof *v);

		if (v) {
			vh->guests = v;
			vh->guests[vh->nguests++] = guest_get(fresh);
		}
	}
	g = fresh;
out:
	pthread_mutex_unlock(&vh->lock);
	if (!g && error_errno() != ENOENT)
		error_prefix("%s/%s", vh->cfg->name, name);
	return g;
}

int vhost_guest_active(struct vhost *vh, const char *name)
{
	virDomainPtr dom;
	int64_t start = now_ms();
	int r = -1;

	pthread_mutex_lock(&vh->lock);
	dom = vhost_domain_locked(vh, name, start);
	if (dom) {
		r = virDomainIsActive(dom);
		if (r < 0)
			vhost_error(vh, start, "asking whether the guest runs");
		virDomainFree(dom);
	}
	pthread_mutex_unlock(&vh->lock);
	return r;
}

int vhost_guest_exists(struct vhost *vh, const char *name)
{
	virDomainPtr dom;
	int64_t start = now_ms();
	int r;

	pthread_mutex_lock(&vh->lock);
	dom = vhost_domain_locked(vh, name, start);
	if (dom)
		virDomainFree(dom);
	r = dom ? 1 : error_errno() == ENOENT ? 0 : -1;
	pthread_mutex_unlock(&vh->lock);
	return r;
}

/* Called with vh->lock held. */
static void invalidate_locked(struct vhost *vh)
{
	vh->names_ms = 0;
	for (size_t i = 0; i < vh->nguests; i++)
		guest_put(vh->guests[i]);
	vh->nguests = 0;
}

void vhost_invalidate(struct vhost *vh)
{
	pthread_mutex_lock(&vh->lock);
	invalidate_locked(vh);
	pthread_mutex_unlock(&vh->lock);
}

int vhost_define(struct vhost *vh, const char *xml, bool start)
{
	virConnectPtr conn;
	virDomainPtr dom;
	int64_t t0 = now_ms();
	int r = -1;

	pthread_mutex_lock(&vh->lock);
	conn = vhost_conn_locked(vh);
	if (!conn)
		goto out;
	dom = virDomainDefineXMLFlags(conn, xml, VIR_DOMAIN_DEFINE_VALIDATE);
	if (!dom) {
		vhost_error(vh, t0, "defining the guest");
		goto out;
	}
	r = 0;
	if (start && virDomainCreate(dom) < 0) {
		vhost_error(vh, t0, "starting the guest");
		r = -2;
	}
	virDomainFree(dom);
out:
	invalidate_locked(vh);
	pthread_mutex_unlock(&vh->lock);
	return r;
}
