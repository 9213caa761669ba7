/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Live migration of a guest between two hosts (virt.h: vhost_migrate_*),
 * driven from this machine: libvirt's non-peer-to-peer migration
 * (virDomainMigrate3) over connections of its own to both hosts, so that
 * the hosts' other calls go on meanwhile.  It runs in a thread of its own;
 * the caller polls its progress and may abort it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "../common/clock.h"
#include "../common/error.h"
#include "../nbd/rate.h"
#include "log.h"
#include "virt-int.h"

struct vmigration {
	struct vhost *src, *dst;
	char *name;
	virTypedParameterPtr params;
	int nparams;
	virConnectPtr sconn, dconn;
	pthread_t thread;
	pthread_mutex_t lock;
	virDomainPtr dom;    /* the source guest, once looked up (lock) */
	bool done;	     /* the thread ended (lock) */
	bool copy_disks;     /* some disks are copied */
	bool shared_checked; /* the others are shared, checked */
	int errnum;	     /* its result: 0 migrated */
	char msg[1024];
};

int vhost_migratable_xml(struct vhost *vh, const char *name, char **live,
			 char **inactive)
{
	virDomainPtr dom;
	int64_t start = now_ms();
	int r = -1;

	*live = *inactive = NULL;
	pthread_mutex_lock(&vh->lock);
	dom = vhost_domain_locked(vh, name, start);
	if (dom) {
		*live = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_MIGRATABLE);
		*inactive =
		    *live
			? virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_MIGRATABLE |
						       VIR_DOMAIN_XML_INACTIVE)
			: NULL;
		if (!*inactive) {
			vhost_error(vh, start, "reading the guest's XML");
			free(*live);
			*live = NULL;
		} else {
			r = 0;
		}
		virDomainFree(dom);
	}
	pthread_mutex_unlock(&vh->lock);
	return r;
}

static void set_result(struct vmigration *m, int errnum, const char *what)
{
	virErrorPtr e = virGetLastError();

	pthread_mutex_lock(&m->lock);
	m->errnum = errnum;
	snprintf(m->msg, sizeof m->msg, "%s: %s", what,
		 e && e->message ? e->message : error_msg());
	if (e && e->code == VIR_ERR_OPERATION_ABORTED)
		m->errnum = EINTR;
	pthread_mutex_unlock(&m->lock);
}

static void *migrate_thread(void *arg)
{
	struct vmigration *m = arg;
	virDomainPtr dom, moved;
	unsigned int flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PERSIST_DEST |
			     VIR_MIGRATE_UNDEFINE_SOURCE |
			     VIR_MIGRATE_AUTO_CONVERGE;

	/* Disks to copy (the others are shared storage). */
	if (m->copy_disks)
		flags |= VIR_MIGRATE_NON_SHARED_DISK;
	/* Shared storage libvirt cannot tell as such (not a network or
	 * cluster file system it knows): the caller found it shared. */
	if (m->shared_checked)
		flags |= VIR_MIGRATE_UNSAFE;

	dom = virDomainLookupByName(m->sconn, m->name);
	if (!dom) {
		set_result(m, EIO, "looking up the guest");
		goto out;
	}
	pthread_mutex_lock(&m->lock);
	m->dom = dom;
	pthread_mutex_unlock(&m->lock);
	moved = virDomainMigrate3(dom, m->dconn, m->params, m->nparams, flags);
	if (moved) {
		virDomainFree(moved);
		pthread_mutex_lock(&m->lock);
		m->errnum = 0;
		pthread_mutex_unlock(&m->lock);
	} else {
		set_result(m, EIO, "migrating");
	}
out:
	pthread_mutex_lock(&m->lock);
	m->done = true;
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

static void vmigration_free(struct vmigration *m)
{
	if (m->dom)
		virDomainFree(m->dom);
	if (m->sconn)
		virConnectClose(m->sconn);
	if (m->dconn)
		virConnectClose(m->dconn);
	virTypedParamsFree(m->params, m->nparams);
	pthread_mutex_destroy(&m->lock);
	free(m->name);
	free(m);
}

struct vmigration *vhost_migrate_start(struct vhost *src, const char *name,
				       struct vhost *dst,
				       const struct migrate_params *p)
{
	struct vmigration *m = calloc(1, sizeof *m);
	int max = 0;

	if (!m || !(m->name = strdup(name))) {
		free(m);
		error_set(ENOMEM, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&m->lock, NULL);
	m->src = src;
	m->dst = dst;
	m->copy_disks = p->ndisks > 0;
	m->shared_checked = p->shared_checked;
	m->errnum = EIO;
	if (virTypedParamsAddString(&m->params, &m->nparams, &max,
				    VIR_MIGRATE_PARAM_DEST_XML,
				    p->dest_xml) < 0 ||
	    virTypedParamsAddString(&m->params, &m->nparams, &max,
				    VIR_MIGRATE_PARAM_PERSIST_XML,
				    p->persist_xml) < 0 ||
	    virTypedParamsAddString(&m->params, &m->nparams, &max,
				    VIR_MIGRATE_PARAM_URI, p->uri) < 0 ||
	    (p->ndisks && virTypedParamsAddString(&m->params, &m->nparams, &max,
						  VIR_MIGRATE_PARAM_DISKS_URI,
						  p->disks_uri) < 0) ||
	    (p->dest_name &&
	     virTypedParamsAddString(&m->params, &m->nparams, &max,
				     VIR_MIGRATE_PARAM_DEST_NAME,
				     p->dest_name) < 0))
		goto nomem;
	for (size_t i = 0; i < p->ndisks; i++)
		if (virTypedParamsAddString(&m->params, &m->nparams, &max,
					    VIR_MIGRATE_PARAM_MIGRATE_DISKS,
					    p->disks[i]) < 0)
			goto nomem;
	/* The hosts' bandwidth limits: libvirt's is in MiB/s, for memory
	 * and the disks' mirror alike. */
	{
		uint64_t a = rate_limit(vhost_rate(src)),
			 b = rate_limit(vhost_rate(dst)), lim = a;

		if (!lim || (b && b < lim))
			lim = b;
		if (lim &&
		    virTypedParamsAddULLong(&m->params, &m->nparams, &max,
					    VIR_MIGRATE_PARAM_BANDWIDTH,
					    lim >> 20 ? lim >> 20 : 1) < 0)
			goto nomem;
		if (lim)
			log_info(
			    "%s/%s: migration bandwidth limited to %llu "
			    "MiB/s (bwlimit)",
			    vhost_config(src)->name, name,
			    (unsigned long long)(lim >> 20 ? lim >> 20 : 1));
	}
	m->sconn = vhost_open(src);
	if (!m->sconn)
		goto err;
	m->dconn = vhost_open(dst);
	if (!m->dconn)
		goto err;
	if (pthread_create(&m->thread, NULL, migrate_thread, m) != 0) {
		error_set(EAGAIN, "cannot start a thread");
		goto err;
	}
	return m;
nomem:
	error_set(ENOMEM, "out of memory");
err:
	vmigration_free(m);
	return NULL;
}

static uint64_t ull(virTypedParameterPtr params, int n, const char *name)
{
	unsigned long long v = 0;

	if (virTypedParamsGetULLong(params, n, name, &v) != 1)
		v = 0;
	return v;
}

bool vmigration_progress(struct vmigration *m, struct migrate_progress *pr)
{
	virTypedParameterPtr params = NULL;
	virDomainPtr dom;
	int n = 0, type;
	bool done;

	pthread_mutex_lock(&m->lock);
	done = m->done;
	dom = m->dom;
	if (dom)
		virDomainRef(dom);
	pthread_mutex_unlock(&m->lock);
	if (!done && dom &&
	    virDomainGetJobStats(dom, &type, &params, &n, 0) == 0 &&
	    type != VIR_DOMAIN_JOB_NONE) {
		pr->disk_done = ull(params, n, VIR_DOMAIN_JOB_DISK_PROCESSED);
		pr->disk_total = ull(params, n, VIR_DOMAIN_JOB_DISK_TOTAL);
		pr->memory_done =
		    ull(params, n, VIR_DOMAIN_JOB_MEMORY_PROCESSED);
		pr->memory_total = ull(params, n, VIR_DOMAIN_JOB_MEMORY_TOTAL);
	}
	virTypedParamsFree(params, n);
	if (dom)
		virDomainFree(dom);
	return !done;
}

void vmigration_abort(struct vmigration *m)
{
	virDomainPtr dom;

	pthread_mutex_lock(&m->lock);
	dom = m->done ? NULL : m->dom;
	if (dom)
		virDomainRef(dom);
	pthread_mutex_unlock(&m->lock);
	if (dom) {
		if (virDomainAbortJob(dom) < 0)
			log_warning("%s/%s: aborting the migration: %s",
				    vhost_config(m->src)->name, m->name,
				    virGetLastErrorMessage());
		virDomainFree(dom);
	}
}

int vmigration_finish(struct vmigration *m)
{
	int r;

	pthread_join(m->thread, NULL);
	r = m->errnum ? -1 : 0;
	if (r < 0)
		error_set(m->errnum, "%s", m->msg);
	vhost_invalidate(m->src);
	vhost_invalidate(m->dst);
	vmigration_free(m);
	return r;
}
