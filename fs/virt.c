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
#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "../common/clock.h"
#include "../common/error.h"
#include "../nbd/hostcmd.h"
#include "log.h"
#include "virt.h"

struct vhost {
	const struct host_config *cfg;
	int timeout_ms;
	int cache_ms;
	pthread_mutex_t lock;
	/* Everything below is guarded by lock. */
	virConnectPtr conn;
	struct strvec names;   /* cached guest names */
	int64_t names_ms;      /* when fetched; 0: never */
	struct guest **guests; /* cached snapshots, one ref each */
	size_t nguests;
	struct strvec logged;	    /* skip reasons already logged */
	int pool_kind;		    /* enum pool_kind + 1; 0: not asked yet */
	char host_id[VHOST_ID_MAX]; /* libvirt host UUID; "": not asked yet */
};

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

/* The host's connection, opened if needed.  Called with vh->lock held. */
static virConnectPtr get_conn(struct vhost *vh)
{
	int interval;

	if (vh->conn && virConnectIsAlive(vh->conn) == 1)
		return vh->conn;
	if (vh->conn) {
		virConnectClose(vh->conn);
		vh->conn = NULL;
	}
	vh->conn = open_bounded(vh);
	if (!vh->conn)
		return NULL;
	/* A dead peer is noticed after interval * (count + 1) seconds. */
	interval = vh->timeout_ms / 4000;
	if (interval < 1)
		interval = 1;
	if (virConnectSetKeepAlive(vh->conn, interval, 3) < 0)
		log_debug("%s: no libvirt keepalive: %s", vh->cfg->name,
			  virGetLastErrorMessage());
	return vh->conn;
}

/* Turn the last libvirt error of a call that started at start_ms into
 * error_set(), dropping the connection if it died. */
static void virt_error(struct vhost *vh, int64_t start_ms, const char *what)
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
static virStoragePoolPtr get_pool(struct vhost *vh, int64_t start)
{
	virConnectPtr conn = get_conn(vh);
	virStoragePoolPtr pool;

	if (!conn)
		return NULL;
	pool = virStoragePoolLookupByName(conn, vh->cfg->pool);
	if (!pool) {
		virt_error(vh, start, "looking up the pool");
		error_prefix("pool \"%s\"", vh->cfg->pool);
	}
	return pool;
}

/* The guest NAME, with vh->lock held; NULL with error_set() (ENOENT if
 * the host has no such guest). */
static virDomainPtr get_domain(struct vhost *vh, const char *name,
			       int64_t start)
{
	virConnectPtr conn = get_conn(vh);
	virDomainPtr dom;

	if (!conn)
		return NULL;
	dom = virDomainLookupByName(conn, name);
	if (!dom)
		virt_error(vh, start, "looking up the guest");
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
	pthread_mutex_destroy(&vh->lock);
	free(vh);
}

const struct host_config *vhost_config(const struct vhost *vh)
{
	return vh->cfg;
}

static int fetch_names(struct vhost *vh)
{
	virConnectPtr conn = get_conn(vh);
	virDomainPtr *doms = NULL;
	int64_t start = now_ms();
	struct strvec names = STRVEC_INIT;
	int n;

	if (!conn)
		return -1;
	n = virConnectListAllDomains(conn, &doms,
				     VIR_CONNECT_LIST_DOMAINS_PERSISTENT);
	if (n < 0) {
		virt_error(vh, start, "listing guests");
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
				virt_error(vh, start,
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
			virt_error(vh, start, "reading a disk's size");
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

/* Serve the XML with each disk's size in its <metadata>: the new host
 * checks copies against them (domxml.h). */
static int add_sizes(struct guest *g)
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
	return 0;
}

static struct guest *fetch_guest(struct vhost *vh, const char *name)
{
	int64_t start = now_ms();
	struct skip_ctx ctx = { vh, name };
	virDomainPtr dom = get_domain(vh, name, start);
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
		virt_error(vh, start, "reading the guest's XML");
		goto err;
	}
	g->xml = xml;
	g->xml_len = strlen(xml);
	g->active = active == 1;
	if (domxml_parse(xml, g->xml_len, &g->info, skip_cb, &ctx) < 0 ||
	    fill_sizes(vh, dom, g, start) < 0 || add_sizes(g) < 0)
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
	dom = get_domain(vh, name, start);
	if (dom) {
		r = virDomainIsActive(dom);
		if (r < 0)
			virt_error(vh, start, "asking whether the guest runs");
		virDomainFree(dom);
	}
	pthread_mutex_unlock(&vh->lock);
	return r;
}

int vhost_pool_space(struct vhost *vh, uint64_t *capacity, uint64_t *available)
{
	virStoragePoolPtr pool;
	virStoragePoolInfo info;
	int64_t start = now_ms();
	int r = -1;

	pthread_mutex_lock(&vh->lock);
	pool = get_pool(vh, start);
	if (pool) {
		if (virStoragePoolGetInfo(pool, &info) < 0) {
			virt_error(vh, start, "reading the pool's space");
		} else {
			*capacity = info.capacity;
			*available = info.available;
			r = 0;
		}
		virStoragePoolFree(pool);
	}
	pthread_mutex_unlock(&vh->lock);
	return r;
}

int vhost_pool_kind(struct vhost *vh)
{
	virStoragePoolPtr pool;
	int64_t start = now_ms();
	char *xml = NULL;
	int r = -1;

	pthread_mutex_lock(&vh->lock);
	if (vh->pool_kind) {
		r = vh->pool_kind - 1;
		goto out;
	}
	pool = get_pool(vh, start);
	if (!pool)
		goto out;
	xml = virStoragePoolGetXMLDesc(pool, 0);
	if (!xml) {
		virt_error(vh, start, "reading the pool's XML");
	} else {
		/* <pool type='dir'>: files read back zeros where nothing was
		 * written; anything else (logical, disk, iscsi, ...) holds
		 * block volumes that may hold old data. */
		const char *t = strstr(xml, "<pool type=");

		if (t &&
		    (strncmp(t + 12, "dir", 3) == 0 ||
		     strncmp(t + 12, "fs", 2) == 0 ||
		     strncmp(t + 12, "netfs", 5) == 0) &&
		    (t[11] == '\'' || t[11] == '"'))
			r = POOL_FILES;
		else
			r = POOL_BLOCKS;
		vh->pool_kind = r + 1;
	}
	free(xml);
	virStoragePoolFree(pool);
out:
	pthread_mutex_unlock(&vh->lock);
	return r;
}

int vhost_guest_exists(struct vhost *vh, const char *name)
{
	virDomainPtr dom;
	int64_t start = now_ms();
	int r;

	pthread_mutex_lock(&vh->lock);
	dom = get_domain(vh, name, start);
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

int vhost_vol_create(struct vhost *vh, const char *name, const char *format,
		     uint64_t capacity, bool allocate, char **path)
{
	virStoragePoolPtr pool;
	virStorageVolPtr vol;
	int64_t start = now_ms();
	char *xml = NULL;
	int r = -1;

	*path = NULL;
	pthread_mutex_lock(&vh->lock);
	pool = get_pool(vh, start);
	if (!pool)
		goto out;
	/* Never touch a volume that exists, whatever the pool does. */
	vol = virStorageVolLookupByName(pool, name);
	if (vol) {
		virStorageVolFree(vol);
		error_set(EEXIST, "volume \"%s\" already exists in pool \"%s\"",
			  name, vh->cfg->pool);
		goto out_pool;
	}
	/* A logical volume with less allocated than its capacity would be
	 * a snapshot of a virtual origin that fails once written past its
	 * allocation: block volumes are allocated in full, with no format. */
	if (asprintf(&xml,
		     "<volume><name>%s</name>"
		     "<capacity unit='bytes'>%llu</capacity>"
		     "<allocation unit='bytes'>%llu</allocation>%s%s%s"
		     "</volume>",
		     name, (unsigned long long)capacity,
		     allocate ? (unsigned long long)capacity : 0ULL,
		     allocate ? "" : "<target><format type='",
		     allocate ? "" : format,
		     allocate ? "" : "'/></target>") < 0) {
		xml = NULL;
		error_set(ENOMEM, "out of memory");
		goto out_pool;
	}
	vol = virStorageVolCreateXML(pool, xml, 0);
	if (!vol) {
		virt_error(vh, start, "creating the volume");
		goto out_pool;
	}
	*path = virStorageVolGetPath(vol);
	if (!*path) {
		virt_error(vh, start, "reading the new volume's path");
		virStorageVolDelete(vol, 0);
	} else {
		r = 0;
	}
	virStorageVolFree(vol);
out_pool:
	virStoragePoolFree(pool);
out:
	pthread_mutex_unlock(&vh->lock);
	free(xml);
	return r;
}

/* The volume NAME of the host's pool, with vh->lock held. */
static virStorageVolPtr get_vol(struct vhost *vh, const char *name,
				int64_t start)
{
	virStoragePoolPtr pool = get_pool(vh, start);
	virStorageVolPtr vol;

	if (!pool)
		return NULL;
	vol = virStorageVolLookupByName(pool, name);
	if (!vol)
		virt_error(vh, start, "looking up the volume");
	virStoragePoolFree(pool);
	return vol;
}

int vhost_vol_resize(struct vhost *vh, const char *name, uint64_t capacity)
{
	virStorageVolPtr vol;
	int64_t start = now_ms();
	int r = -1;

	pthread_mutex_lock(&vh->lock);
	vol = get_vol(vh, name, start);
	if (vol) {
		r = virStorageVolResize(vol, capacity,
					VIR_STORAGE_VOL_RESIZE_SHRINK);
		if (r < 0)
			virt_error(vh, start, "resizing the volume");
		virStorageVolFree(vol);
	}
	pthread_mutex_unlock(&vh->lock);
	return r;
}

int vhost_pool_refresh(struct vhost *vh)
{
	virStoragePoolPtr pool;
	int64_t start = now_ms();
	int r = -1;

	pthread_mutex_lock(&vh->lock);
	pool = get_pool(vh, start);
	if (pool) {
		r = virStoragePoolRefresh(pool, 0);
		if (r < 0)
			virt_error(vh, start, "refreshing the pool");
		virStoragePoolFree(pool);
	}
	pthread_mutex_unlock(&vh->lock);
	return r;
}

int vhost_vol_exists(struct vhost *vh, const char *name)
{
	virStoragePoolPtr pool;
	virStorageVolPtr vol;
	int64_t start = now_ms();
	int r = -1;

	pthread_mutex_lock(&vh->lock);
	pool = get_pool(vh, start);
	if (pool) {
		vol = virStorageVolLookupByName(pool, name);
		if (vol) {
			virStorageVolFree(vol);
			r = 1;
		} else {
			virt_error(vh, start, "looking up the volume");
			r = error_errno() == ENOENT ? 0 : -1;
		}
		virStoragePoolFree(pool);
	}
	pthread_mutex_unlock(&vh->lock);
	return r;
}

int vhost_vol_capacity(struct vhost *vh, const char *name, uint64_t *capacity)
{
	virStorageVolPtr vol;
	virStorageVolInfo info;
	int64_t start = now_ms();
	int r = -1;

	pthread_mutex_lock(&vh->lock);
	vol = get_vol(vh, name, start);
	if (vol) {
		r = virStorageVolGetInfo(vol, &info);
		if (r < 0)
			virt_error(vh, start, "reading the volume's size");
		else
			*capacity = info.capacity;
		virStorageVolFree(vol);
	}
	pthread_mutex_unlock(&vh->lock);
	return r;
}

int vhost_vol_delete(struct vhost *vh, const char *name)
{
	virStorageVolPtr vol;
	int64_t start = now_ms();
	int r = -1;

	pthread_mutex_lock(&vh->lock);
	vol = get_vol(vh, name, start);
	if (vol) {
		r = virStorageVolDelete(vol, 0);
		if (r < 0)
			virt_error(vh, start, "deleting the volume");
		virStorageVolFree(vol);
	}
	pthread_mutex_unlock(&vh->lock);
	return r;
}

int vhost_define(struct vhost *vh, const char *xml, bool start)
{
	virConnectPtr conn;
	virDomainPtr dom;
	int64_t t0 = now_ms();
	int r = -1;

	pthread_mutex_lock(&vh->lock);
	conn = get_conn(vh);
	if (!conn)
		goto out;
	dom = virDomainDefineXMLFlags(conn, xml, VIR_DOMAIN_DEFINE_VALIDATE);
	if (!dom) {
		virt_error(vh, t0, "defining the guest");
		goto out;
	}
	r = 0;
	if (start && virDomainCreate(dom) < 0) {
		virt_error(vh, t0, "starting the guest");
		r = -2;
	}
	virDomainFree(dom);
out:
	invalidate_locked(vh);
	pthread_mutex_unlock(&vh->lock);
	return r;
}

/* <host><uuid> of libvirt capabilities XML, into out.  0 or -1. */
static int caps_host_uuid(const char *caps, char *out, size_t len)
{
	xmlDocPtr doc = xmlReadMemory(caps, (int)strlen(caps), "caps.xml", NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR |
					  XML_PARSE_NOWARNING);
	xmlXPathContextPtr ctx = doc ? xmlXPathNewContext(doc) : NULL;
	xmlXPathObjectPtr o =
	    ctx ? xmlXPathEvalExpression(
		      (const xmlChar *)"string(/capabilities/host/uuid)", ctx)
		: NULL;
	int r = -1;

	if (o && o->type == XPATH_STRING && o->stringval && o->stringval[0] &&
	    strlen((const char *)o->stringval) < len &&
	    !strpbrk((const char *)o->stringval, " \t\n")) {
		snprintf(out, len, "%s", (const char *)o->stringval);
		r = 0;
	}
	xmlXPathFreeObject(o);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return r;
}

int vhost_host_id(struct vhost *vh, char *out, size_t len)
{
	int64_t start = now_ms();
	virConnectPtr conn;
	char *caps;
	int r = -1;

	pthread_mutex_lock(&vh->lock);
	if (!vh->host_id[0]) {
		conn = get_conn(vh);
		caps = conn ? virConnectGetCapabilities(conn) : NULL;
		if (conn && !caps)
			virt_error(vh, start,
				   "reading the host's capabilities");
		else if (caps && caps_host_uuid(caps, vh->host_id,
						sizeof vh->host_id) < 0)
			error_set(EIO, "the host's capabilities name no host "
				       "UUID");
		free(caps);
	}
	if (vh->host_id[0]) {
		snprintf(out, len, "%s", vh->host_id);
		r = 0;
	}
	pthread_mutex_unlock(&vh->lock);
	return r;
}

int vhost_vol_identity(struct vhost *vh, const char *name, char **id)
{
	int64_t start = now_ms();
	int kind = vhost_pool_kind(vh);
	virStorageVolPtr vol;
	char *path = NULL, out[8192], *p;
	const char *prefix;
	int r;

	*id = NULL;
	if (kind < 0)
		return -1;
	pthread_mutex_lock(&vh->lock);
	vol = get_vol(vh, name, start);
	if (vol) {
		path = virStorageVolGetPath(vol);
		if (!path)
			virt_error(vh, start, "reading the volume's path");
		virStorageVolFree(vol);
	}
	pthread_mutex_unlock(&vh->lock);
	if (!path)
		return -1;
	if (kind == POOL_BLOCKS) {
		/* A logical volume's UUID: the same LV whatever its name. */
		char *cmd[] = { "lvs", "--noheadings", "-o", "lv_uuid",
				"--",  path,	       NULL };

		prefix = "lv:";
		r = hostcmd_output(vhost_config(vh)->shell.v, cmd,
				   vh->timeout_ms, out, sizeof out);
	} else {
		/* A file: device and inode, and its birth time, since a
		 * new file may get the inode of one just deleted. */
		char *cmd[] = {
			"stat", "-L", "-c", "%d:%i:%w", "--", path, NULL
		};

		prefix = "f:";
		r = hostcmd_output(vhost_config(vh)->shell.v, cmd,
				   vh->timeout_ms, out, sizeof out);
	}
	/* One line: trimmed, blanks made '_' (records are line based). */
	for (p = out + strlen(out); p > out && strchr(" \t\n", p[-1]); p--)
		p[-1] = '\0';
	for (p = out; *p == ' ' || *p == '\t'; p++)
		;
	if (r != 0 || !*p || strchr(p, '\n')) {
		/* ssh's own failures exit 255: the host is not reached;
		 * its last line says why. */
		char *last = strrchr(p, '\n');

		if (r == 255 && vhost_config(vh)->shell.n)
			error_set(EHOSTDOWN, "identity of volume %s: %s", name,
				  last ? last + 1
				  : *p ? p
				       : "ssh failed");
		else if (r >= 0)
			error_set(EIO, "identity of volume %s (%s): %s", name,
				  path, *p ? p : "no answer");
		free(path);
		return -1;
	}
	free(path);
	for (char *q = p; *q; q++)
		if (*q == ' ' || *q == '\t')
			*q = '_';
	if (asprintf(id, "%s%s", prefix, p) < 0) {
		*id = NULL;
		error_set(ENOMEM, "out of memory");
		return -1;
	}
	return 0;
}
