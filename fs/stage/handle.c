/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Staging, open handles: create, open, release, counting writers.
 * See ../stage.h for the rules, stage-int.h for the locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../nbd/endpoint.h"
#include "../../common/error.h"
#include "../../nbd/extents.h"
#include "../../nbd/hostcmd.h"
#include "../domxml.h"
#include "../log.h"
#include "../path.h"
#include "../record.h"
#include "../rewrite.h"
#include "../../common/cleanup.h"
#include "stage-int.h"

/* Count a handle in (open, or used again after a close of one of its
 * descriptors) or out (closed).  Stage lock held. */
void stage_handle_activate(struct stage_open *so)
{
	if (so->active)
		return;
	__atomic_store_n(&so->active, true, __ATOMIC_RELAXED);
	so->sf->opens++;
	if (so->write)
		so->sf->writers++;
}

void stage_handle_deactivate(struct stage_open *so)
{
	if (!so->active)
		return;
	__atomic_store_n(&so->active, false, __ATOMIC_RELAXED);
	so->sf->opens--;
	if (so->write)
		so->sf->writers--;
}

/* The last writer gone and the disk not completed (a killed writer, a
 * failed completion): stop its server; the volume stays, incomplete,
 * until unlinked.  Stage lock held. */
void stage_stop_incomplete(struct staged_file *sf)
{
	if (sf->is_xml || sf->writers || sf->complete)
		return;
	pthread_mutex_lock(&sf->io_lock);
	endpoint_close(sf->ep);
	sf->ep = NULL;
	pthread_mutex_unlock(&sf->io_lock);
}

static struct stage_open *stage_handle_new(struct stage_host *sh,
					   struct stage *st,
					   struct staged_file *sf, bool write)
{
	struct stage_open *so = calloc(1, sizeof *so);

	if (!so) {
		error_set(ENOMEM, "out of memory");
		return NULL;
	}
	so->sh = sh;
	so->st = st;
	so->sf = sf;
	so->write = write;
	sf->refs++;
	stage_handle_activate(so);
	return so;
}

/* A staged file's state for name, standing for final; NULL (ENOMEM). */
static struct staged_file *new_file(const char *guest, const char *name,
				    const char *final)
{
	struct staged_file *sf = calloc(1, sizeof *sf);
	char dev[64], fmt[64];

	if (!sf) {
		error_set(ENOMEM, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&sf->io_lock, NULL);
	extent_map_init(&sf->written, STAGE_MAX_SIZE);
	extent_map_init(&sf->pass, STAGE_MAX_SIZE);
	sf->refs = 1;
	sf->mtime = time(NULL);
	sf->is_xml = strcmp(final, XML_NAME) == 0;
	if (!(sf->name = strdup(name)) || !(sf->final = strdup(final)))
		goto nomem;
	if (sf->is_xml)
		return sf;
	path_disk_name(final, dev, sizeof dev, fmt, sizeof fmt);
	if (!(sf->dev = strdup(dev)) || !(sf->fmt = strdup(fmt)) ||
	    asprintf(&sf->volume, "%s-%s", guest, final) < 0) {
		sf->volume = NULL;
		goto nomem;
	}
	return sf;
nomem:
	stage_file_put(sf);
	error_set(ENOMEM, "out of memory");
	return NULL;
}

/* Is name, or the disk or final name it stands for, in st already?  0, or
 * -1 (EEXIST). */
static int clash(struct stage *st, const char *name,
		 const struct staged_file *sf)
{
	if (stage_find_file(st, name)) {
		error_set(EEXIST, "\"%s\" exists", name);
		return -1;
	}
	for (size_t i = 0; i < st->n; i++) {
		const struct staged_file *o = st->files[i];

		if (strcmp(o->final, sf->final) == 0) {
			error_set(EEXIST,
				  "\"%s\" is already being written as \"%s\"",
				  sf->final, o->name);
			return -1;
		}
		/* One file per disk: "vda.raw" and "vda.qcow2" clash. */
		if (sf->dev && o->dev && strcmp(o->dev, sf->dev) == 0) {
			error_set(EEXIST,
				  "disk %s is already being written as \"%s\"",
				  sf->dev, o->name);
			return -1;
		}
	}
	return 0;
}

/* Delete sf's volume, just created, and the record's mention of it; the
 * error set stays the one reported.  Stage lock held. */
static void undo_volume(struct stage_host *sh, struct stage *st,
			struct staged_file *sf)
{
	int e = error_errno();
	char msg[1024];

	snprintf(msg, sizeof msg, "%s", error_msg());
	HOST_CALL(sh, vol_delete, sf->volume);
	stage_record_forget(sh, st);
	error_set(e, "%s", msg);
}

/* Create the volume of disk sf (not yet in st), take its identity, start
 * its server.  0, or -1 with nothing left on the host.  Stage lock held. */
static int create_volume(struct stage_host *sh, struct stage *st,
			 struct staged_file *sf)
{
	int exists;

	if (st->refused) {
		error_set(st->refused_errno,
			  "the host cannot take this guest: %s", st->refused);
		return -1;
	}

	if (stage_space_check(sh, st, sf->dev) < 0 ||
	    stage_block_target(sh, st->guest, sf) < 0)
		return -1;
	sf->capacity = stage_first_capacity(st, sf);
	/* The record names the volume before it exists, so that a daemon
	 * killed in between leaves nothing nobody can find; it is never
	 * written for a name already taken. */
	exists = HOST_CALL(sh, vol_exists, sf->volume);
	if (exists != 0) {
		if (exists > 0)
			error_set(EEXIST,
				  "volume \"%s\" already exists in pool \"%s\"",
				  sf->volume, sh->host->pool);
		return -1;
	}
	if (stage_record_save_with(sh, st, sf) < 0)
		return -1;
	if (HOST_CALL(sh, vol_create, sf->volume, sf->fmt, sf->capacity,
		      sf->block, &sf->path) < 0 ||
	    stage_volume_identify(sh, st, sf, false) < 0) {
		stage_record_forget(sh, st);
		return -1;
	}
	log_info("%s/%s/%s: created volume %s (%s)", sh->host->name, st->guest,
		 sf->name, sf->volume, sf->path);
	if (stage_endpoint_open(sh, st, sf) < 0) {
		undo_volume(sh, st, sf);
		return -1;
	}
	return 0;
}

struct stage_open *stage_create(struct stage_host *sh, const char *guest,
				const char *name)
{
	char final[PATH_NAME_MAX + 1];
	struct staged_file *sf;
	struct stage_open *so;
	struct stage *st;

	if (stage_final_name(name, final, sizeof final) < 0)
		return NULL;
	LOCK_FOR_SCOPE(&sh->lock);
	st = stage_folder_open(sh, guest);
	if (!st || !(sf = new_file(guest, name, final)))
		return NULL;
	if (clash(st, name, sf) < 0 ||
	    (!sf->is_xml && create_volume(sh, st, sf) < 0)) {
		stage_file_put(sf);
		return NULL;
	}
	if (stage_file_add(sh, st, sf) < 0) {
		if (!sf->is_xml)
			undo_volume(sh, st, sf);
		stage_file_put(sf);
		return NULL;
	}
	/* The folder has sf's first reference now; the handle takes one. */
	so = stage_handle_new(sh, st, sf, true);
	return so;
}

struct stage_open *stage_open(struct stage_host *sh, const char *guest,
			      const char *name, int flags)
{
	bool write = (flags & O_ACCMODE) != O_RDONLY, resume = false;
	struct stage_open *so = NULL;
	struct staged_file *sf;
	struct stage *st;

	pthread_mutex_lock(&sh->lock);
	st = stage_folder_open(sh, guest);
	if (!st || !(sf = stage_get_file(st, name)))
		goto out;
	if (!sf->is_xml && !write) {
		error_set(EACCES, "disks being staged are write-only");
		goto out;
	}
	if (write && sf->recovered) {
		if (!(flags & O_TRUNC)) {
			error_set(EINVAL, "an incomplete copy from before "
					  "kvmmigfs restarted: copy the disk "
					  "again whole, or remove it");
			goto out;
		}
		if (stage_volume_renew(sh, st, sf) < 0)
			goto out;
	}
	/* Written again whole (O_TRUNC): an earlier copy's failed write is
	 * forgotten with the rest of that copy. */
	if (write && (flags & O_TRUNC) && !sf->is_xml && !sf->writers) {
		pthread_mutex_lock(&sf->io_lock);
		sf->werrno = 0;
		sf->werrmsg[0] = '\0';
		pthread_mutex_unlock(&sf->io_lock);
	}
	/* Copied again whole over an earlier copy's data (cp opens with
	 * O_TRUNC): resume, keeping what is already there. */
	resume = write && (flags & O_TRUNC) && !sf->is_xml && !sf->writers &&
		 !sf->ep && sf->written.known > 0 &&
		 stage_resume_begin(sh, guest, sf) == 0;
	if (write && !sf->is_xml) {
		stage_disk_reopen(sf);
		if (stage_endpoint_open(sh, st, sf) < 0)
			goto out;
	}
	if (write && (flags & O_TRUNC) && !resume &&
	    stage_truncate_locked(sh, guest, sf, 0) < 0)
		goto out;
	if (write)
		sf->xml_ok = false;
	so = stage_handle_new(sh, st, sf, write);
out:
	pthread_mutex_unlock(&sh->lock);
	return so;
}

void stage_release(struct stage_open *so)
{
	struct stage_host *sh = so->sh;
	struct staged_file *sf = so->sf;

	pthread_mutex_lock(&sh->lock);
	if (so->active) {
		/* Released without a close that counted it out. */
		stage_handle_deactivate(so);
		stage_stop_incomplete(sf);
	}
	stage_file_put(sf);
	pthread_mutex_unlock(&sh->lock);
	free(so);
}

/* A volume for a disk a live move fills (the hypervisor writes it): see
 * stage.h. */
int stage_add_volume(struct stage_host *sh, const char *guest, const char *name,
		     uint64_t capacity, char **path)
{
	struct staged_file *sf;
	struct stage *st;
	uint64_t got;
	int exists;

	*path = NULL;
	LOCK_FOR_SCOPE(&sh->lock);
	st = stage_folder_open(sh, guest);
	if (!st || !(sf = new_file(guest, name, name)))
		return -1;
	if (sf->is_xml) {
		error_set(EINVAL, "not a disk: %s", name);
		goto err;
	}
	if (clash(st, name, sf) < 0 || stage_block_target(sh, guest, sf) < 0)
		goto err;
	exists = HOST_CALL(sh, vol_exists, sf->volume);
	if (exists != 0) {
		if (exists > 0)
			error_set(EEXIST,
				  "volume \"%s\" already exists in pool \"%s\"",
				  sf->volume, sh->host->pool);
		goto err;
	}
	if (stage_record_save_with(sh, st, sf) < 0)
		goto err;
	if (HOST_CALL(sh, vol_create, sf->volume, sf->fmt, capacity, sf->block,
		      &sf->path) < 0 ||
	    stage_volume_identify(sh, st, sf, false) < 0) {
		stage_record_forget(sh, st);
		goto err;
	}
	/* A logical volume is a whole number of extents long; QEMU's mirror
	 * needs the very size of the disk. */
	if (HOST_CALL(sh, vol_capacity, sf->volume, &got) < 0) {
		undo_volume(sh, st, sf);
		goto err;
	}
	if (got != capacity) {
		error_set(EINVAL,
			  "the disk's size, %" PRIu64 " bytes, is not a whole "
			  "number of the pool's extents (its volume would be "
			  "%" PRIu64 ")",
			  capacity, got);
		undo_volume(sh, st, sf);
		goto err;
	}
	log_info("%s/%s/%s: created volume %s (%s), %" PRIu64 " bytes",
		 sh->host->name, guest, name, sf->volume, sf->path, capacity);
	sf->capacity = sf->size = capacity;
	sf->complete = true;
	if (stage_file_add(sh, st, sf) < 0) {
		undo_volume(sh, st, sf);
		goto err;
	}
	if (!(*path = strdup(sf->path))) {
		error_set(ENOMEM, "out of memory");
		return -1; /* the folder's removal deletes the volume */
	}
	return 0;
err:
	stage_file_put(sf);
	return -1;
}

int stage_adopt(struct stage_host *sh, const char *guest)
{
	struct stage *st;

	LOCK_FOR_SCOPE(&sh->lock);
	st = stage_folder_open(sh, guest);
	if (!st)
		return -1;
	stage_folder_defined(sh, st);
	log_info("%s/%s: defined by a move", sh->host->name, guest);
	return 0;
}
