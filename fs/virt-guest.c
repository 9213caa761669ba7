/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a move asks of and does to a host's guests through libvirt (see
 * virt.h for the bounds and the errors): their state, whether the host
 * can run a guest, undefine and rename, and which volumes are in use.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "../common/clock.h"
#include "../common/error.h"
#include "domxml-int.h"
#include "log.h"
#include "virt-int.h"

int vhost_guest_state(struct vhost *vh, const char *name,
		      struct guest_state *st)
{
	virDomainPtr dom;
	int64_t start = now_ms();
	int r = -1;

	memset(st, 0, sizeof *st);
	pthread_mutex_lock(&vh->lock);
	dom = vhost_domain_locked(vh, name, start);
	if (!dom)
		goto out;
	st->active = virDomainIsActive(dom);
	if (st->active > 0) {
		int state, reason;

		if (virDomainGetState(dom, &state, &reason, 0) < 0)
			st->active = -1;
		else
			st->paused = state == VIR_DOMAIN_PAUSED;
	}
	st->snapshots = st->active < 0 ? -1 : virDomainSnapshotNum(dom, 0);
	st->managed_save =
	    st->snapshots < 0 ? -1 : virDomainHasManagedSaveImage(dom, 0);
	if (st->managed_save < 0)
		vhost_error(vh, start, "reading the guest's state");
	else
		r = 0;
	virDomainFree(dom);
out:
	pthread_mutex_unlock(&vh->lock);
	return r;
}

int vhost_guest_by_uuid(struct vhost *vh, const char *uuid, char *name,
			size_t len)
{
	virConnectPtr conn;
	virDomainPtr dom;
	int64_t start = now_ms();
	int r = -1;

	pthread_mutex_lock(&vh->lock);
	conn = vhost_conn_locked(vh);
	if (!conn)
		goto out;
	dom = virDomainLookupByUUIDString(conn, uuid);
	if (dom) {
		snprintf(name, len, "%s", virDomainGetName(dom));
		virDomainFree(dom);
		r = 1;
	} else {
		vhost_error(vh, start, "looking up the guest's UUID");
		if (error_errno() == ENOENT)
			r = 0;
	}
out:
	pthread_mutex_unlock(&vh->lock);
	return r;
}

/* A change to guest name: change(dom, arg) < 0 is libvirt's failure,
 * what says what it did.  The cache is dropped.  0 or -1. */
static int change_guest(struct vhost *vh, const char *name, const char *what,
			int (*change)(virDomainPtr dom, const void *arg),
			const void *arg)
{
	virDomainPtr dom;
	int64_t start = now_ms();
	int r = -1;

	pthread_mutex_lock(&vh->lock);
	dom = vhost_domain_locked(vh, name, start);
	if (dom) {
		if (change(dom, arg) < 0)
			vhost_error(vh, start, what);
		else
			r = 0;
		virDomainFree(dom);
	}
	pthread_mutex_unlock(&vh->lock);
	vhost_invalidate(vh);
	return r;
}

static int undefine(virDomainPtr dom, const void *arg)
{
	(void)arg;
	/* Its UEFI variables stay (nothing is lost with them). */
	return virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_KEEP_NVRAM);
}

static int destroy(virDomainPtr dom, const void *arg)
{
	(void)arg;
	return virDomainDestroy(dom);
}

static int rename_to(virDomainPtr dom, const void *arg)
{
	return virDomainRename(dom, arg, 0);
}

int vhost_undefine(struct vhost *vh, const char *name)
{
	return change_guest(vh, name, "undefining the guest", undefine, NULL);
}

int vhost_destroy(struct vhost *vh, const char *name)
{
	return change_guest(vh, name, "stopping the guest", destroy, NULL);
}

int vhost_rename(struct vhost *vh, const char *name, const char *newname)
{
	return change_guest(vh, name, "renaming the guest", rename_to, newname);
}

int vhost_network(struct vhost *vh, const char *name)
{
	virConnectPtr conn;
	virNetworkPtr net;
	int64_t start = now_ms();
	int r = -1;

	pthread_mutex_lock(&vh->lock);
	conn = vhost_conn_locked(vh);
	if (!conn)
		goto out;
	net = virNetworkLookupByName(conn, name);
	if (net) {
		r = virNetworkIsActive(net) == 1 ? 1 : 2;
		virNetworkFree(net);
	} else if (virGetLastErrorCode() == VIR_ERR_NO_NETWORK) {
		r = 0;
	} else {
		vhost_error(vh, start, "looking up a network");
	}
out:
	pthread_mutex_unlock(&vh->lock);
	return r;
}

/* libvirt's last error message, with its "operation failed: " and like
 * prefixes left as they are: it names what is missing. */
static void can_run_error(int errnum, const char *host, const char *what)
{
	const char *msg = virGetLastErrorMessage();

	error_set(errnum, "%s on %s: %s", what, host,
		  msg ? msg : "unknown error");
}

/* Which of the features the guest requires by name the host's hypervisor
 * CPU lacks.  libvirt's comparison also names the features of the model
 * that QEMU drops quietly where the host lacks them (svm of qemu64 on an
 * Intel host): those are not the guest's demands.  0 or -1. */
static int compare_cpu(struct vhost *vh, virConnectPtr conn,
		       const struct domxml_needs *n, int64_t start)
{
	static const char tag[] = "required features: ";
	const char *msg, *list;
	char missing[1024] = "";
	int c = virConnectCompareHypervisorCPU(
	    conn, n->emulator, n->arch, n->machine, n->type, n->cpu,
	    VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE);

	if (c != VIR_CPU_COMPARE_ERROR && c != VIR_CPU_COMPARE_INCOMPATIBLE)
		return 0;
	if (virGetLastErrorCode() != VIR_ERR_CPU_INCOMPATIBLE) {
		vhost_error(vh, start, "comparing the guest's CPU");
		return -1;
	}
	msg = virGetLastErrorMessage();
	list = msg ? strstr(msg, tag) : NULL;
	for (size_t i = 0; list && i < n->cpu_features.n; i++) {
		const char *f = n->cpu_features.v[i];
		size_t len = strlen(f);
		bool named = false;

		for (const char *p = list + sizeof tag - 1; *p;) {
			size_t w = strcspn(p, ", ");

			named |= w == len && strncmp(p, f, len) == 0;
			p += w;
			p += strspn(p, ", ");
		}
		if (named)
			snprintf(missing + strlen(missing),
				 sizeof missing - strlen(missing), "%s%s",
				 *missing ? ", " : "", f);
	}
	if (*missing) {
		error_set(ENOEXEC, "CPU feature%s %s missing on %s",
			  strchr(missing, ',') ? "s" : "", missing,
			  vh->cfg->name);
		return -1;
	}
	if (!list) {
		error_set(ENOEXEC, "the guest's CPU cannot run on %s: %s",
			  vh->cfg->name, msg ? msg : "incompatible");
		return -1;
	}
	log_debug("%s: CPU: only features the guest does not require are "
		  "missing: %s",
		  vh->cfg->name, msg);
	return 0;
}

int vhost_can_run(struct vhost *vh, const struct domxml_needs *n)
{
	virConnectPtr conn;
	char *caps;
	int64_t start = now_ms();
	int r = -1;

	pthread_mutex_lock(&vh->lock);
	conn = vhost_conn_locked(vh);
	if (!conn)
		goto out;
	/* The emulator, machine type and virtualization type. */
	caps = virConnectGetDomainCapabilities(conn, n->emulator, n->arch,
					       n->machine, n->type, 0);
	if (!caps) {
		if (virConnectIsAlive(conn) != 1) {
			vhost_error(vh, start, "reading domain capabilities");
			goto out;
		}
		can_run_error(ENOPKG, vh->cfg->name,
			      "the guest's emulator, machine type or "
			      "virtualization type is not available");
		goto out;
	}
	free(caps);
	if (n->cpu && n->cpu_features.n && compare_cpu(vh, conn, n, start) < 0)
		goto out;
	r = 0;
out:
	pthread_mutex_unlock(&vh->lock);
	return r;
}

/* Add the backing file of every volume of every active pool. */
static int add_backing(virConnectPtr conn, struct strvec *paths)
{
	virStoragePoolPtr *pools = NULL;
	int np = virConnectListAllStoragePools(
	    conn, &pools, VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE);
	int r = np < 0 ? -1 : 0;

	for (int i = 0; i < np; i++) {
		virStorageVolPtr *vols = NULL;
		int nv = virStoragePoolListAllVolumes(pools[i], &vols, 0);

		if (nv < 0)
			r = -1;
		for (int j = 0; j < nv; j++) {
			char *xml =
			    r == 0 ? virStorageVolGetXMLDesc(vols[j], 0) : NULL;
			xmlDocPtr doc =
			    xml ? xmlReadMemory(xml, (int)strlen(xml),
						"volume.xml", NULL, PARSE_FLAGS)
				: NULL;
			xmlXPathContextPtr ctx =
			    doc ? xmlXPathNewContext(doc) : NULL;
			xmlXPathObjectPtr o =
			    ctx ? xmlXPathEvalExpression(
				      (const xmlChar *)"string(/volume/"
						       "backingStore/path)",
				      ctx)
				: NULL;

			if (o && o->stringval && *o->stringval &&
			    strvec_find(paths, (const char *)o->stringval) <
				0 &&
			    strvec_push(paths, (const char *)o->stringval) < 0)
				r = -1;
			if (r == 0 && !o)
				r = -1;
			xmlXPathFreeObject(o);
			xmlXPathFreeContext(ctx);
			xmlFreeDoc(doc);
			free(xml);
			virStorageVolFree(vols[j]);
		}
		free(vols);
		virStoragePoolFree(pools[i]);
	}
	free(pools);
	return r;
}

/* Add what guest dom's XML names (flags: its inactive or live XML). */
static int add_guest_paths(virConnectPtr conn, virDomainPtr dom,
			   unsigned int flags, struct strvec *paths)
{
	char *xml = virDomainGetXMLDesc(dom, flags);
	struct domxml_needs n;
	struct domxml_info info;
	int r = -1;

	if (!xml)
		return -1;
	if (domxml_needs(xml, strlen(xml), &n) < 0)
		goto out;
	r = 0;
	for (size_t i = 0; i < n.sources.n && r == 0; i++)
		if (strvec_find(paths, n.sources.v[i]) < 0)
			r = strvec_push(paths, n.sources.v[i]);
	domxml_needs_release(&n);
	/* Volume disks name no path: their pool's volume has one. */
	if (r == 0 && domxml_parse(xml, strlen(xml), &info, NULL, NULL) == 0) {
		for (size_t i = 0; i < info.disks.n; i++) {
			const struct disk *d = &info.disks.v[i];
			char *p;

			if (d->source_type != DISK_VOLUME)
				continue;
			p = virt_volume_path(conn, d->pool, d->volume, NULL);
			if (p && strvec_find(paths, p) < 0)
				r = strvec_push(paths, p);
			free(p);
		}
		domxml_release(&info);
	}
out:
	free(xml);
	return r;
}

int vhost_paths_in_use(struct vhost *vh, const char *except,
		       struct strvec *paths)
{
	virConnectPtr conn;
	virDomainPtr *doms = NULL;
	int64_t start = now_ms();
	int nd, r = -1;

	pthread_mutex_lock(&vh->lock);
	conn = vhost_conn_locked(vh);
	if (!conn)
		goto out;
	virResetLastError();
	nd = virConnectListAllDomains(conn, &doms, 0);
	if (nd < 0) {
		vhost_error(vh, start, "listing guests");
		goto out;
	}
	r = 0;
	for (int i = 0; i < nd; i++) {
		if (r == 0 && strcmp(virDomainGetName(doms[i]), except) != 0) {
			r = add_guest_paths(conn, doms[i],
					    VIR_DOMAIN_XML_INACTIVE, paths);
			if (r == 0 && virDomainIsActive(doms[i]) == 1)
				r = add_guest_paths(conn, doms[i], 0, paths);
		}
		virDomainFree(doms[i]);
	}
	free(doms);
	if (r == 0)
		r = add_backing(conn, paths);
	if (r < 0) {
		if (virGetLastError())
			vhost_error(vh, start,
				    "reading which volumes are in use");
		else
			error_set(ENOMEM, "out of memory");
	}
out:
	pthread_mutex_unlock(&vh->lock);
	return r;
}

int vhost_vol_delete_path(struct vhost *vh, const char *path)
{
	virConnectPtr conn;
	virStorageVolPtr vol;
	int64_t start = now_ms();
	int r = -1;

	pthread_mutex_lock(&vh->lock);
	conn = vhost_conn_locked(vh);
	if (!conn)
		goto out;
	vol = virStorageVolLookupByPath(conn, path);
	if (!vol) {
		if (virGetLastErrorCode() == VIR_ERR_NO_STORAGE_VOL)
			r = 0;
		else
			vhost_error(vh, start, "looking up a volume");
		goto out;
	}
	if (virStorageVolDelete(vol, 0) < 0)
		vhost_error(vh, start, "deleting a volume");
	else
		r = 1;
	virStorageVolFree(vol);
out:
	pthread_mutex_unlock(&vh->lock);
	return r;
}
