/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A host's pool and its volumes through libvirt, and the host's identity
 * (see virt.h for the bounds and the errors).
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
#include "../nbd/hostcmd.h"
#include "log.h"
#include "virt-int.h"

int vhost_pool_space(struct vhost *vh, uint64_t *capacity, uint64_t *available)
{
	virStoragePoolPtr pool;
	virStoragePoolInfo info;
	int64_t start = now_ms();
	int r = -1;

	pthread_mutex_lock(&vh->lock);
	pool = vhost_pool_locked(vh, start);
	if (pool) {
		if (virStoragePoolGetInfo(pool, &info) < 0) {
			vhost_error(vh, start, "reading the pool's space");
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
	pool = vhost_pool_locked(vh, start);
	if (!pool)
		goto out;
	xml = virStoragePoolGetXMLDesc(pool, 0);
	if (!xml) {
		vhost_error(vh, start, "reading the pool's XML");
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
	pool = vhost_pool_locked(vh, start);
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
		vhost_error(vh, start, "creating the volume");
		goto out_pool;
	}
	*path = virStorageVolGetPath(vol);
	if (!*path) {
		vhost_error(vh, start, "reading the new volume's path");
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
	virStoragePoolPtr pool = vhost_pool_locked(vh, start);
	virStorageVolPtr vol;

	if (!pool)
		return NULL;
	vol = virStorageVolLookupByName(pool, name);
	if (!vol)
		vhost_error(vh, start, "looking up the volume");
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
			vhost_error(vh, start, "resizing the volume");
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
	pool = vhost_pool_locked(vh, start);
	if (pool) {
		r = virStoragePoolRefresh(pool, 0);
		if (r < 0)
			vhost_error(vh, start, "refreshing the pool");
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
	pool = vhost_pool_locked(vh, start);
	if (pool) {
		vol = virStorageVolLookupByName(pool, name);
		if (vol) {
			virStorageVolFree(vol);
			r = 1;
		} else {
			vhost_error(vh, start, "looking up the volume");
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
			vhost_error(vh, start, "reading the volume's size");
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
			vhost_error(vh, start, "deleting the volume");
		virStorageVolFree(vol);
	}
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

int vhost_host_id_locked(struct vhost *vh, char *out, size_t len)
{
	int64_t start = now_ms();
	virConnectPtr conn;
	char *caps;

	if (!vh->host_id[0]) {
		conn = vhost_conn_locked(vh);
		caps = conn ? virConnectGetCapabilities(conn) : NULL;
		if (conn && !caps)
			vhost_error(vh, start,
				    "reading the host's capabilities");
		else if (caps && caps_host_uuid(caps, vh->host_id,
						sizeof vh->host_id) < 0)
			error_set(EIO, "the host's capabilities name no host "
				       "UUID");
		free(caps);
	}
	if (!vh->host_id[0])
		return -1;
	snprintf(out, len, "%s", vh->host_id);
	return 0;
}

int vhost_host_id(struct vhost *vh, char *out, size_t len)
{
	int r;

	pthread_mutex_lock(&vh->lock);
	r = vhost_host_id_locked(vh, out, len);
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
			vhost_error(vh, start, "reading the volume's path");
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
