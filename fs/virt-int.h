/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Inside a vhost (virt.h): what virt.c (the connection and the guest
 * cache) and virt-pool.c (the pool, volumes and the host's identity)
 * share.
 */
#ifndef KVMMIGFS_VIRT_INT_H
#define KVMMIGFS_VIRT_INT_H

#include <pthread.h>

#include <libvirt/libvirt.h>

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
	struct rate *rate;	    /* set before use, then constant */
};

/* A new connection of the caller's own (bounded, with keepalive); NULL
 * with error_set().  No lock needed. */
virConnectPtr vhost_open(struct vhost *vh);

/* The open connection, opened (bounded) if needed; NULL with error_set().
 * vh->lock held. */
virConnectPtr vhost_conn_locked(struct vhost *vh);

/* error_set() from libvirt's last error, "what: message", with the most
 * specific errno; a dead connection is dropped (EHOSTDOWN, or ETIMEDOUT
 * once start_ms + timeout has passed).  vh->lock held. */
void vhost_error(struct vhost *vh, int64_t start_ms, const char *what);

/* The host's pool; NULL with error_set().  vh->lock held. */
virStoragePoolPtr vhost_pool_locked(struct vhost *vh, int64_t start);

/* The guest NAME, with vh->lock held; NULL with error_set() (ENOENT if
 * the host has no such guest). */
virDomainPtr vhost_domain_locked(struct vhost *vh, const char *name,
				 int64_t start);

/* vhost_host_id with vh->lock held. */
int vhost_host_id_locked(struct vhost *vh, char *out, size_t len);

#endif
