/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Staging, staging records, volume identities, recovery after a restart.
 * See ../stage.h for the rules, stage-int.h for the locks.
 */
#include <errno.h>
#include <fcntl.h>
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
#include "stage-int.h"

/* Records (record.h): the disks whose volumes staging created, kept in
 * the state directory so that a daemon killed mid-copy leaves a staging
 * folder the next one shows again, to be removed or copied again. */

/* Write st's record, naming also `extra` (a disk not in the folder yet,
 * whose volume is about to be created) unless NULL.  Stage lock held. */
int stage_record_save_with(struct stage_host *sh, struct stage *st,
			   const struct staged_file *extra)
{
	const struct host *hc = sh->host;
	struct record_disk *disks;
	char host_id[VHOST_ID_MAX];
	struct record rec = { .guest = st->guest,
			      .move = st->move,
			      .host_id = host_id,
			      .hosts_file = (char *)sh->opt.hosts_file,
			      .pool = (char *)hc->pool };
	int r;

	if (!sh->opt.state_dir)
		return 0;
	if (HOST_CALL(sh, host_id, host_id, sizeof host_id) < 0) {
		error_prefix("the staging record: the host's UUID");
		return -1;
	}
	disks = calloc(st->n + 2, sizeof *disks);
	if (!disks) {
		error_set(ENOMEM, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < st->n; i++)
		if (st->files[i]->volume)
			disks[rec.n++] =
			    (struct record_disk){ st->files[i]->stored
						      ? st->files[i]->stored
						      : st->files[i]->final,
						  st->files[i]->ident };
	if (extra)
		disks[rec.n++] =
		    (struct record_disk){ extra->stored ? extra->stored
							: extra->final,
					  extra->ident };
	rec.disks = disks;
	r = record_save(sh->opt.state_dir, hc->name, &rec);
	free(disks);
	if (r < 0)
		error_prefix("the staging record");
	return r;
}

int stage_record_save(struct stage_host *sh, struct stage *st)
{
	return stage_record_save_with(sh, st, NULL);
}

/* A volume named in the record was not created after all (or deleted
 * again): the record goes back to st's files.  The error that caused it
 * stays the one reported.  Stage lock held. */
void stage_record_forget(struct stage_host *sh, struct stage *st)
{
	int e = error_errno();
	char msg[1024];

	snprintf(msg, sizeof msg, "%s", error_msg());
	if (stage_record_save(sh, st) < 0)
		log_warning("%s/%s: %s", sh->host->name, st->guest,
			    error_msg());
	error_set(e, "%s", msg);
}

/* The folder is gone or defined: forget its record.  Stage lock held. */
void stage_record_drop(struct stage_host *sh, struct stage *st)
{
	const struct host *hc = sh->host;

	if (sh->opt.state_dir &&
	    record_delete(sh->opt.state_dir, hc->name, st->guest) < 0)
		log_warning("%s/%s: %s", hc->name, st->guest, error_msg());
}

/* Is sf's volume still the one staging created (its identity unchanged)?
 * 1: yes, or it is gone (deleting it says so); 0: another volume has its
 * name now, or its identity was never taken: logged, to be left alone;
 * -1 with error_set(): the host could not tell.  Stage lock held. */
int stage_volume_ours(struct stage_host *sh, const char *guest,
		      struct staged_file *sf)
{
	const char *host = sh->host->name;
	char *now = NULL;
	int r;

	if (!sf->ident) {
		log_warning("%s/%s/%s: volume %s: its identity was never "
			    "taken (the daemon ended while creating it), so "
			    "it may not be ours: left alone",
			    host, guest, sf->final, sf->volume);
		return 0;
	}
	if (HOST_CALL(sh, vol_identity, sf->volume, &now) < 0)
		return error_errno() == ENOENT ? 1 : -1;
	r = strcmp(now, sf->ident) == 0;
	if (!r)
		log_warning("%s/%s/%s: volume %s was replaced since kvmmigfs "
			    "created it (identity %s, now %s): left alone",
			    host, guest, sf->final, sf->volume, sf->ident, now);
	free(now);
	return r;
}

/* Take sf's identity right after its volume was created, before any byte
 * is written, and record it (sf is in st's files, or not yet: in_folder).
 * On failure the volume (just made) is deleted again.  Stage lock held. */
int stage_volume_identify(struct stage_host *sh, struct stage *st,
			  struct staged_file *sf, bool in_folder)
{
	int e;
	char msg[1024];

	if (HOST_CALL(sh, vol_identity, sf->volume, &sf->ident) == 0) {
		if (stage_record_save_with(sh, st, in_folder ? NULL : sf) == 0)
			return 0;
		free(sf->ident);
		sf->ident = NULL;
	}
	e = error_errno();
	snprintf(msg, sizeof msg, "%s", error_msg());
	HOST_CALL(sh, vol_delete, sf->volume);
	error_set(e, "%s", msg);
	return -1;
}

/* Is pid a running kvmmigfs other than us (a mount that owns its
 * records)? */
static bool other_daemon(pid_t pid)
{
	char path[64], exe[4096];
	ssize_t n;
	const char *base;

	if (pid == getpid())
		return false;
	snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, sizeof exe - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	base = strrchr(exe, '/');
	base = base ? base + 1 : exe;
	return strncmp(base, "kvmmigfs", 8) == 0;
}

/* A staging folder from a record: its disks are incomplete, their
 * volumes ours.  Stage lock held; the guest does not exist on the host. */
static int recover(struct stage_host *sh, const struct record *rec)
{
	const char *host = sh->host->name;
	struct stage *st = calloc(1, sizeof *st);

	if (!st || !(st->guest = strdup(rec->guest)))
		goto nomem;
	st->mtime = time(NULL);
	for (size_t i = 0; i < rec->n; i++) {
		const struct record_disk *rd = &rec->disks[i];
		char final[PATH_NAME_MAX + 1], dev[64], fmt[64];
		struct staged_file *sf, **fv;
		int ours;

		if (stage_final_name(rd->name, final, sizeof final) < 0 ||
		    strcmp(final, rd->name) != 0 ||
		    strcmp(final, XML_NAME) == 0) {
			log_warning("%s/%s: record names \"%s\": ignored", host,
				    rec->guest, rd->name);
			continue;
		}
		path_disk_name(final, dev, sizeof dev, fmt, sizeof fmt);
		sf = calloc(1, sizeof *sf);
		fv = sf ? realloc(st->files, (st->n + 1) * sizeof *fv) : NULL;
		if (!fv) {
			free(sf);
			goto nomem;
		}
		st->files = fv;
		pthread_mutex_init(&sf->io_lock, NULL);
		extent_map_init(&sf->written, STAGE_MAX_SIZE);
		sf->refs = 1;
		sf->mtime = st->mtime;
		sf->recovered = true;
		st->files[st->n++] = sf;
		if (!(sf->name = strdup(final)) ||
		    !(sf->final = strdup(final)) || !(sf->dev = strdup(dev)) ||
		    !(sf->fmt = strdup(fmt)) ||
		    (rd->id && !(sf->ident = strdup(rd->id))) ||
		    asprintf(&sf->volume, "%s-%s", rec->guest, final) < 0) {
			sf->volume = NULL;
			goto nomem;
		}
		/* Only the volume kvmmigfs created is ours to remove or
		 * write again: one made since under its name is dropped. */
		ours = stage_volume_ours(sh, rec->guest, sf);
		if (ours < 0) {
			stage_folder_free(st);
			return -1;
		}
		if (!ours) {
			st->n--;
			stage_file_put(sf);
		}
	}
	if (stage_folder_add(sh, st) < 0)
		goto nomem;
	if (stage_record_save(sh, st) < 0)
		log_warning("%s/%s: %s", host, st->guest, error_msg());
	log_warning("%s/%s: staging folder recovered (left by kvmmigfs pid "
		    "%d): %zu incomplete disk%s, not defined; remove it or "
		    "copy the guest again",
		    host, st->guest, (int)rec->pid, st->n,
		    st->n == 1 ? "" : "s");
	return 0;
nomem:
	if (st)
		stage_folder_free(st);
	error_set(ENOMEM, "out of memory");
	return -1;
}

/* A move that did not reach its define when its daemon died: the guest
 * is still where it came from; the volumes the move created here (their
 * identity unchanged) are deleted, and the record.  0, or -1 (the host
 * could not tell: tried again later).  Stage lock held. */
static int undo_move(struct stage_host *sh, const struct record *rec)
{
	const char *host = sh->host->name;
	size_t removed = 0;

	for (size_t i = 0; i < rec->n; i++) {
		const struct record_disk *rd = &rec->disks[i];
		char *volume = NULL, *id = NULL;
		int r;

		if (asprintf(&volume, "%s-%s", rec->guest, rd->name) < 0) {
			error_set(ENOMEM, "out of memory");
			return -1;
		}
		r = HOST_CALL(sh, vol_identity, volume, &id);
		if (r < 0 && error_errno() == ENOENT) {
			free(volume);
			continue; /* never made, or gone */
		}
		if (r < 0) {
			free(volume);
			return -1;
		}
		if (!rd->id || strcmp(id, rd->id) != 0) {
			log_warning("%s/%s: volume %s is not the one the move "
				    "created (identity %s, now %s): left alone",
				    host, rec->guest, volume,
				    rd->id ? rd->id : "never taken", id);
		} else if (HOST_CALL(sh, vol_delete, volume) < 0) {
			log_warning("%s/%s: volume %s: %s", host, rec->guest,
				    volume, error_msg());
		} else {
			removed++;
		}
		free(id);
		free(volume);
	}
	log_warning("%s/%s: the move from %s did not finish (kvmmigfs pid %d "
		    "ended): the guest stays where it was; %zu volume%s the "
		    "move created here removed",
		    host, rec->guest, rec->move, (int)rec->pid, removed,
		    removed == 1 ? "" : "s");
	record_delete(sh->opt.state_dir, host, rec->guest);
	return 0;
}

/* Read the records earlier daemons left for this host, once: a record
 * whose guest now exists (defined just before the daemon died) is
 * dropped; one that another running kvmmigfs owns, or for another pool,
 * is left alone.  A host that cannot be asked is tried again at the next
 * access.  Stage lock held. */
void stage_records_load(struct stage_host *sh)
{
	const struct host *hc = sh->host;
	struct record *recs = NULL;
	char host_id[VHOST_ID_MAX];
	size_t n = 0;
	bool done = true;

	if (sh->loaded)
		return;
	if (!sh->opt.state_dir) {
		__atomic_store_n(&sh->loaded, true, __ATOMIC_RELEASE);
		return;
	}
	if (record_load(sh->opt.state_dir, hc->name, &recs, &n) < 0) {
		log_warning("%s: staging records: %s", hc->name, error_msg());
		__atomic_store_n(&sh->loaded, true, __ATOMIC_RELEASE);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct record *rec = &recs[i];
		bool known = false;
		int exists;

		for (size_t j = 0; j < sh->n; j++)
			if (strcmp(sh->v[j]->guest, rec->guest) == 0)
				known = true;
		if (known || other_daemon(rec->pid))
			continue;
		if (!stage_guest_name_ok(rec->guest)) {
			log_warning("%s: staging record \"%s\": not a guest "
				    "name; ignored",
				    hc->name, rec->guest);
			continue;
		}
		if (!rec->host_id) {
			log_warning("%s/%s: staging record of an older "
				    "kvmmigfs (no host or volume identities): "
				    "left alone",
				    hc->name, rec->guest);
			continue;
		}
		if (strcmp(rec->hosts_file, sh->opt.hosts_file) != 0) {
			log_warning("%s/%s: staging record of a mount of "
				    "hosts file %s, not %s: left alone",
				    hc->name, rec->guest, rec->hosts_file,
				    sh->opt.hosts_file);
			continue;
		}
		if (strcmp(rec->pool, hc->pool) != 0) {
			log_warning("%s/%s: staging record for pool %s, not "
				    "%s: left alone",
				    hc->name, rec->guest, rec->pool, hc->pool);
			continue;
		}
		if (HOST_CALL(sh, host_id, host_id, sizeof host_id) < 0) {
			done = false;
			continue;
		}
		if (strcmp(rec->host_id, host_id) != 0) {
			log_warning("%s/%s: staging record for another "
				    "machine (host UUID %s; %s is %s now): "
				    "left alone",
				    hc->name, rec->guest, rec->host_id,
				    hc->name, host_id);
			continue;
		}
		exists = HOST_CALL(sh, guest_exists, rec->guest);
		if (exists < 0) {
			done = false;
		} else if (exists > 0) {
			log_info("%s/%s: defined before kvmmigfs pid %d ended; "
				 "its staging record is dropped",
				 hc->name, rec->guest, (int)rec->pid);
			if (rec->move && sh->opt.move_recover)
				sh->opt.move_recover(sh->opt.verify_ctx,
						     hc->name, rec->guest,
						     rec->move);
			record_delete(sh->opt.state_dir, hc->name, rec->guest);
		} else if (rec->move) {
			if (undo_move(sh, rec) < 0)
				done = false;
		} else if (recover(sh, rec) < 0) {
			done = false;
		}
	}
	for (size_t i = 0; i < n; i++)
		record_release(&recs[i]);
	free(recs);
	__atomic_store_n(&sh->loaded, done, __ATOMIC_RELEASE);
}

/* sf leaves its folder and the record (its volume stays as it is); the
 * error set stays the one reported.  Returns -1.  Stage lock held. */
static int drop_file(struct stage_host *sh, struct stage *st,
		     struct staged_file *sf)
{
	int e = error_errno();
	char msg[1024];

	snprintf(msg, sizeof msg, "%s", error_msg());
	stage_file_remove(sh, st, sf);
	if (stage_record_save(sh, st) < 0)
		log_warning("%s/%s: %s", sh->host->name, st->guest,
			    error_msg());
	stage_file_put(sf);
	error_set(e, "%s", msg);
	return -1;
}

/* A recovered disk written again from the start: a new volume in place of
 * the old one, so nothing of the earlier copy shows through.  If the new
 * one cannot be created (someone took the name meanwhile), the file is
 * dropped from the folder and the record.  Stage lock held. */
int stage_volume_renew(struct stage_host *sh, struct stage *st,
		       struct staged_file *sf)
{
	const char *host = sh->host->name;
	int ours = stage_volume_ours(sh, st->guest, sf);

	if (ours < 0)
		return -1;
	if (!ours) {
		error_set(EEXIST,
			  "volume \"%s\" was replaced since kvmmigfs created "
			  "it: it is left alone",
			  sf->volume);
		return drop_file(sh, st, sf);
	}
	if (HOST_CALL(sh, vol_delete, sf->volume) < 0 &&
	    error_errno() != ENOENT)
		return -1;
	free(sf->ident);
	sf->ident = NULL;
	if (stage_block_target(sh, st->guest, sf) < 0)
		return -1;
	sf->capacity = stage_first_capacity(st, sf);
	if (HOST_CALL(sh, vol_create, sf->volume, sf->fmt, sf->capacity,
		      sf->block, &sf->path) < 0 ||
	    stage_volume_identify(sh, st, sf, true) < 0)
		return drop_file(sh, st, sf);
	sf->recovered = false;
	log_info("%s/%s/%s: volume %s created again", host, st->guest, sf->name,
		 sf->volume);
	return 0;
}
