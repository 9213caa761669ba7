/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Staging, staging folders and their files (mkdir, list, stat, unlink, rename,
 * rmdir). See ../stage.h for the rules, stage-int.h for the locks.
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

struct stage_host *stage_host_new(struct host *host,
				  const struct stage_options *opt)
{
	struct stage_host *sh = calloc(1, sizeof *sh);

	if (!sh) {
		error_set(ENOMEM, "out of memory");
		return NULL;
	}
	sh->host = host;
	sh->opt = *opt;
	pthread_mutex_init(&sh->lock, NULL);
	pthread_mutex_init(&sh->view_lock, NULL);
	return sh;
}

void stage_file_put(struct staged_file *sf)
{
	if (--sf->refs > 0)
		return;
	endpoint_close(sf->ep);
	extent_map_release(&sf->written);
	extent_map_release(&sf->pass);
	crc_map_free(&sf->old);
	pthread_mutex_destroy(&sf->io_lock);
	free(sf->name);
	free(sf->final);
	free(sf->stored);
	free(sf->xml);
	free(sf->dev);
	free(sf->fmt);
	free(sf->volume);
	free(sf->path);
	free(sf->ident);
	free(sf);
}

void stage_folder_free(struct stage *st)
{
	for (size_t i = 0; i < st->n; i++)
		stage_file_put(st->files[i]);
	free(st->files);
	free(st->guest);
	free(st->move);
	free(st->refused);
	free(st);
}

void stage_host_free(struct stage_host *sh)
{
	if (!sh)
		return;
	for (size_t i = 0; i < sh->n; i++) {
		struct stage *st = sh->v[i];

		/* Say what stays on the host; the record keeps it. */
		for (size_t j = 0; j < st->n && !st->defined; j++)
			if (st->files[j]->volume)
				log_warning("%s/%s: unmounted while staging: "
					    "volume %s stays in pool %s%s",
					    sh->host->name, st->guest,
					    st->files[j]->volume,
					    sh->host->pool,
					    sh->opt.state_dir
						? " (the staging folder "
						  "shows again at the next "
						  "mount)"
						: "");
		stage_folder_free(st);
	}
	free(sh->v);
	pthread_mutex_destroy(&sh->lock);
	pthread_mutex_destroy(&sh->view_lock);
	free(sh);
}

/* Make st show among sh's folders.  0, or -1 (ENOMEM).  Stage lock
 * held. */
int stage_folder_add(struct stage_host *sh, struct stage *st)
{
	struct stage **v;
	int r = -1;

	stage_view_lock(sh);
	v = realloc(sh->v, (sh->n + 1) * sizeof *v);
	if (v) {
		sh->v = v;
		sh->v[sh->n++] = st;
		r = 0;
	}
	stage_view_unlock(sh);
	if (r < 0)
		error_set(ENOMEM, "out of memory");
	return r;
}

/* st no longer shows (the caller frees it).  Stage lock held. */
void stage_folder_remove(struct stage_host *sh, struct stage *st)
{
	stage_view_lock(sh);
	for (size_t i = 0; i < sh->n; i++)
		if (sh->v[i] == st)
			sh->v[i] = sh->v[--sh->n];
	stage_view_unlock(sh);
}

/* Add sf to st's files.  0, or -1 (ENOMEM).  Stage lock held. */
int stage_file_add(struct stage_host *sh, struct stage *st,
		   struct staged_file *sf)
{
	struct staged_file **v;
	int r = -1;

	stage_view_lock(sh);
	v = realloc(st->files, (st->n + 1) * sizeof *v);
	if (v) {
		st->files = v;
		st->files[st->n++] = sf;
		st->mtime = time(NULL);
		r = 0;
	}
	stage_view_unlock(sh);
	if (r < 0)
		error_set(ENOMEM, "out of memory");
	return r;
}

/* sf leaves st's files (the caller puts its reference).  Stage lock
 * held. */
void stage_file_remove(struct stage_host *sh, struct stage *st,
		       struct staged_file *sf)
{
	stage_view_lock(sh);
	for (size_t i = 0; i < st->n; i++)
		if (st->files[i] == sf)
			st->files[i] = st->files[--st->n];
	st->mtime = time(NULL);
	stage_view_unlock(sh);
}

/* Every file leaves st, which is defined now: its files are the guest's.
 * Stage lock held. */
void stage_folder_defined(struct stage_host *sh, struct stage *st)
{
	struct staged_file **files;
	size_t n;

	stage_view_lock(sh);
	files = st->files;
	n = st->n;
	st->files = NULL;
	st->n = 0;
	st->defined = true;
	stage_view_unlock(sh);
	for (size_t i = 0; i < n; i++)
		stage_file_put(files[i]);
	free(files);
}

/* The folder GUEST; the stage lock or the view lock held. */
static struct stage *find_loaded(struct stage_host *sh, const char *guest)
{
	for (size_t i = 0; i < sh->n; i++)
		if (strcmp(sh->v[i]->guest, guest) == 0)
			return sh->v[i];
	return NULL;
}

/* The same, the records read first.  Stage lock held. */
static struct stage *stage_find(struct stage_host *sh, const char *guest)
{
	stage_records_load(sh);
	return find_loaded(sh, guest);
}

/* Before the view lock alone is enough: the records read (the only time
 * stat and the listings wait for the host: until that worked once). */
static void load_once(struct stage_host *sh)
{
	if (__atomic_load_n(&sh->loaded, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&sh->lock);
	stage_records_load(sh);
	pthread_mutex_unlock(&sh->lock);
}

struct staged_file *stage_find_file(struct stage *st, const char *name)
{
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->files[i]->name, name) == 0)
			return st->files[i];
	return NULL;
}

/* The staging folder GUEST, still open for files, or NULL with error. */
struct stage *stage_folder_open(struct stage_host *sh, const char *guest)
{
	struct stage *st = stage_find(sh, guest);

	if (!st) {
		error_set(ENOENT, "no staging folder \"%s\"", guest);
		return NULL;
	}
	if (st->defined) {
		error_set(EACCES, "the guest is defined: its files are "
				  "read-only");
		return NULL;
	}
	return st;
}

struct staged_file *stage_get_file(struct stage *st, const char *name)
{
	struct staged_file *sf = stage_find_file(st, name);

	if (!sf)
		error_set(ENOENT, "no staged file \"%s\"", name);
	return sf;
}

void stage_stat(struct stage_host *sh, const char *guest, const char *file,
		struct stage_stat *ss)
{
	struct stage *st;
	struct staged_file *sf;

	memset(ss, 0, sizeof *ss);
	load_once(sh);
	stage_view_lock(sh);
	st = find_loaded(sh, guest);
	if (!st)
		goto out;
	if (!file) {
		ss->kind = st->defined ? STAGE_DEFINED : STAGE_DIR;
		ss->mtime = st->mtime;
		goto out;
	}
	if (st->defined || !(sf = stage_find_file(st, file)))
		goto out;
	ss->kind = STAGE_FILE;
	ss->mtime = sf->mtime;
	if (sf->is_xml) {
		ss->size = ss->allocated = sf->xml_len;
	} else {
		ss->size = __atomic_load_n(&sf->seen_size, __ATOMIC_RELAXED);
		ss->allocated =
		    __atomic_load_n(&sf->seen_allocated, __ATOMIC_RELAXED);
	}
out:
	stage_view_unlock(sh);
}

int stage_list_guests(struct stage_host *sh, struct strvec *names)
{
	int r = 0;

	load_once(sh);
	stage_view_lock(sh);
	for (size_t i = 0; i < sh->n && r == 0; i++)
		if (!sh->v[i]->defined)
			r = strvec_push(names, sh->v[i]->guest);
	stage_view_unlock(sh);
	return r;
}

int stage_list_files(struct stage_host *sh, const char *guest,
		     struct strvec *names)
{
	struct stage *st;
	int r = -1;

	load_once(sh);
	stage_view_lock(sh);
	st = find_loaded(sh, guest);
	if (!st || st->defined) {
		error_set(ENOENT, "no staging folder \"%s\"", guest);
		goto out;
	}
	r = 0;
	for (size_t i = 0; i < st->n && r == 0; i++)
		r = strvec_push(names, st->files[i]->name);
out:
	stage_view_unlock(sh);
	return r;
}

int stage_mkdir_move(struct stage_host *sh, const char *guest, const char *move)
{
	struct stage *st = NULL;
	int r = -1, exists;

	if (!stage_guest_name_ok(guest)) {
		error_set(EINVAL,
			  "bad guest name (use 1-200 letters, digits, '.', "
			  "'_', '+', '-'; not starting with '.', '+' or '-')");
		return -1;
	}
	pthread_mutex_lock(&sh->lock);
	st = stage_find(sh, guest);
	if (st && !st->defined) {
		st = NULL;
		error_set(EEXIST, "a staging folder of that name exists");
		goto out;
	}
	exists = HOST_CALL(sh, guest_exists, guest);
	if (exists != 0) {
		st = NULL;
		if (exists > 0)
			error_set(EEXIST, "the host has a guest of that name");
		goto out;
	}
	if (st) {
		/* Defined here once, undefined since: forget it. */
		stage_folder_remove(sh, st);
		stage_folder_free(st);
	}
	st = calloc(1, sizeof *st);
	if (!st || !(st->guest = strdup(guest)) ||
	    (move && !(st->move = strdup(move)))) {
		error_set(ENOMEM, "out of memory");
		goto out;
	}
	st->mtime = time(NULL);
	/* Recorded before it shows. */
	if (stage_record_save(sh, st) < 0)
		goto out;
	if (stage_folder_add(sh, st) < 0) {
		stage_record_drop(sh, st);
		goto out;
	}
	st = NULL;
	r = 0;
out:
	pthread_mutex_unlock(&sh->lock);
	if (st) {
		free(st->guest);
		free(st->move);
		free(st);
	}
	return r;
}

int stage_mkdir(struct stage_host *sh, const char *guest)
{
	return stage_mkdir_move(sh, guest, NULL);
}

void stage_move_done(struct stage_host *sh, const char *guest)
{
	struct stage *st;

	pthread_mutex_lock(&sh->lock);
	st = stage_find(sh, guest);
	if (st && st->move)
		stage_record_drop(sh, st);
	pthread_mutex_unlock(&sh->lock);
}

int stage_rmdir(struct stage_host *sh, const char *guest)
{
	struct stage *st;
	int r = -1;

	pthread_mutex_lock(&sh->lock);
	st = stage_find(sh, guest);
	if (!st)
		error_set(ENOENT, "no staging folder \"%s\"", guest);
	else if (st->defined)
		error_set(EPERM, "the guest is defined: it is not removed");
	else if (st->n > 0)
		error_set(ENOTEMPTY, "the staging folder holds files");
	else
		r = 0;
	if (r == 0) {
		stage_record_drop(sh, st);
		stage_folder_remove(sh, st);
		stage_folder_free(st);
	}
	pthread_mutex_unlock(&sh->lock);
	return r;
}

int stage_unlink(struct stage_host *sh, const char *guest, const char *name)
{
	struct staged_file *sf;
	struct stage *st;
	int r = -1, ours;

	pthread_mutex_lock(&sh->lock);
	st = stage_folder_open(sh, guest);
	if (!st || !(sf = stage_get_file(st, name)))
		goto out;
	if (sf->opens) {
		error_set(EBUSY, "the file is open");
		goto out;
	}
	if (!sf->is_xml) {
		/* Never delete what a guest may use: one of this name may
		 * have been defined with these volumes after all (the answer
		 * to the define call lost).  Unknown: not deleted either. */
		int exists = HOST_CALL(sh, guest_exists, guest);

		if (exists != 0) {
			if (exists > 0) {
				log_warning(
				    "%s/%s: a guest of that name exists "
				    "now: its volumes are kept",
				    sh->host->name, guest);
				stage_record_drop(sh, st);
				stage_folder_defined(sh, st);
				error_set(EPERM,
					  "the guest %s is defined now: "
					  "its volumes are not removed",
					  guest);
			}
			goto out;
		}
		/* Only the volume staging created: one that replaced it
		 * is left alone (logged), and the file goes all the same. */
		ours = stage_volume_ours(sh, guest, sf);
		if (ours < 0)
			goto out;
		/* A recovered disk's volume may be gone already. */
		if (ours && HOST_CALL(sh, vol_delete, sf->volume) < 0 &&
		    !(sf->recovered && error_errno() == ENOENT))
			goto out;
		if (ours)
			log_info("%s/%s/%s: deleted volume %s", sh->host->name,
				 guest, name, sf->volume);
	}
	stage_file_remove(sh, st, sf);
	if (!sf->is_xml && stage_record_save(sh, st) < 0)
		log_warning("%s/%s: %s", sh->host->name, guest, error_msg());
	stage_file_put(sf);
	r = 0;
out:
	pthread_mutex_unlock(&sh->lock);
	return r;
}

int stage_rename(struct stage_host *sh, const char *guest, const char *from,
		 const char *to)
{
	char final[PATH_NAME_MAX + 1];
	struct staged_file *sf;
	struct stage *st;
	char *copy, *swap;
	int r = -1;

	if (stage_final_name(to, final, sizeof final) < 0)
		return -1;
	pthread_mutex_lock(&sh->lock);
	st = stage_folder_open(sh, guest);
	if (!st || !(sf = stage_get_file(st, from)))
		goto out;
	if (stage_find_file(st, to)) {
		error_set(EEXIST, "\"%s\" exists", to);
		goto out;
	}
	if (strcmp(final, sf->final) != 0) {
		error_set(EINVAL,
			  "\"%s\" was created as %s; it cannot become %s", from,
			  sf->final, final);
		goto out;
	}
	copy = strdup(to);
	if (!copy) {
		error_set(ENOMEM, "out of memory");
		goto out;
	}
	stage_view_lock(sh);
	swap = sf->name;
	sf->name = copy;
	st->mtime = time(NULL);
	stage_view_unlock(sh);
	free(swap);
	r = 0;
	if (sf->is_xml && strcmp(to, XML_NAME) == 0 && !sf->opens)
		r = stage_xml_check(sh, st, sf);
	if (r == 0)
		r = stage_try_define(sh, st);
out:
	pthread_mutex_unlock(&sh->lock);
	return r;
}
