/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Staging folders: see stage.h for the rules and the thread model.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../nbd/endpoint.h"
#include "../common/error.h"
#include "../nbd/extents.h"
#include "../nbd/hostcmd.h"
#include "domxml.h"
#include "log.h"
#include "path.h"
#include "record.h"
#include "rewrite.h"
#include "stage.h"

#define XML_NAME DOMAIN_XML

struct staged_file {
	/* Guarded by the stage_host lock. */
	int refs;    /* 1 while in its folder, +1 per open handle */
	char *name;  /* name in the folder (maybe temporary) */
	char *final; /* the final name it stands for */
	bool is_xml;
	/* Handles count from open until their close (flush), and again
	 * from a later write through another descriptor of the same handle:
	 * the kernel sends release after close(2) has returned, so a
	 * closed handle must not hold up the next writer's completion. */
	int opens;	/* active handles */
	int writers;	/* active handles that may write */
	bool complete;	/* disk: closed by its writer, size set */
	bool recovered; /* disk: from a record, written before a restart */
	bool xml_ok;	/* xml: checked, fit to wait for its disks */
	char *xml;	/* xml: the document so far */
	size_t xml_len;
	time_t mtime;
	/* Disks only; set at creation, then constant. */
	char *dev, *fmt, *volume, *path;
	bool block; /* the volume is a block device (a logical volume): it
		       may hold old data, so every byte not written is zeroed
		       at completion */
	/* The data path, guarded by io_lock. */
	pthread_mutex_t io_lock;
	struct endpoint *ep;	   /* open while being written */
	uint64_t capacity;	   /* the volume's size now */
	uint64_t size;		   /* size the writer gave it */
	struct extent_map written; /* ranges holding written data */
	int werrno;		   /* first write error, reported at close */
};

struct stage {
	char *guest;
	bool defined; /* defined on the host: only metadata calls accepted */
	struct staged_file **files;
	size_t n;
	time_t mtime;
};

struct stage_host {
	struct vhost *vh;
	struct stage_options opt;
	pthread_mutex_t lock;
	struct stage **v; /* guarded by lock */
	size_t n;
	bool loaded; /* the records of earlier daemons were read */
};

struct stage_open {
	struct stage_host *sh;
	struct stage *st;
	struct staged_file *sf;
	bool write;
	bool active; /* counted in sf->opens (and writers); stage lock */
};

struct stage_host *stage_host_new(struct vhost *vh,
				  const struct stage_options *opt)
{
	struct stage_host *sh = calloc(1, sizeof *sh);

	if (!sh) {
		error_set(ENOMEM, "out of memory");
		return NULL;
	}
	sh->vh = vh;
	sh->opt = *opt;
	pthread_mutex_init(&sh->lock, NULL);
	return sh;
}

static void file_put(struct staged_file *sf)
{
	if (--sf->refs > 0)
		return;
	endpoint_close(sf->ep);
	extent_map_release(&sf->written);
	pthread_mutex_destroy(&sf->io_lock);
	free(sf->name);
	free(sf->final);
	free(sf->xml);
	free(sf->dev);
	free(sf->fmt);
	free(sf->volume);
	free(sf->path);
	free(sf);
}

static void stage_free(struct stage *st)
{
	for (size_t i = 0; i < st->n; i++)
		file_put(st->files[i]);
	free(st->files);
	free(st->guest);
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
					    vhost_config(sh->vh)->name,
					    st->guest, st->files[j]->volume,
					    vhost_config(sh->vh)->pool,
					    sh->opt.state_dir
						? " (the staging folder "
						  "shows again at the next "
						  "mount)"
						: "");
		stage_free(st);
	}
	free(sh->v);
	pthread_mutex_destroy(&sh->lock);
	free(sh);
}

bool stage_guest_name_ok(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > 200 || name[0] == '.' || name[0] == '-' ||
	    name[0] == '+')
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
		      *p == '-' || *p == '+'))
			return false;
	return true;
}

static bool creatable_format(const char *fmt)
{
	return strcmp(fmt, "raw") == 0 || strcmp(fmt, "qcow2") == 0;
}

/* name is domain.xml or DEV.FMT with a format we create. */
static bool final_ok(const char *name)
{
	char dev[64], fmt[64];

	if (strcmp(name, XML_NAME) == 0)
		return true;
	return path_disk_name(name, dev, sizeof dev, fmt, sizeof fmt) == 0 &&
	       creatable_format(fmt) && strcmp(dev, "domain") != 0;
}

int stage_final_name(const char *name, char *out, size_t len)
{
	size_t n = strlen(name);

	if (n < len && final_ok(name)) {
		strcpy(out, name);
		return 0;
	}
	/* rsync: ".NAME.XXXXXX" */
	if (name[0] == '.' && n > 8 && name[n - 7] == '.') {
		bool random = true;

		for (size_t i = n - 6; i < n; i++)
			if (!((name[i] >= 'a' && name[i] <= 'z') ||
			      (name[i] >= 'A' && name[i] <= 'Z') ||
			      (name[i] >= '0' && name[i] <= '9')))
				random = false;
		if (random && n - 8 < len) {
			snprintf(out, len, "%.*s", (int)(n - 8), name + 1);
			if (final_ok(out))
				return 0;
		}
	}
	/* KIO and others: "NAME.part" (or ".NAME.part") */
	if (n > 5 && strcmp(name + n - 5, ".part") == 0) {
		const char *start = name[0] == '.' ? name + 1 : name;
		size_t m = (size_t)(name + n - 5 - start);

		if (m < len) {
			snprintf(out, len, "%.*s", (int)m, start);
			if (final_ok(out))
				return 0;
		}
	}
	error_set(
	    EINVAL,
	    "\"%s\" is not a file of a guest: use domain.xml or DEV.FORMAT "
	    "with FORMAT raw or qcow2",
	    name);
	return -1;
}

static void load_records(struct stage_host *sh);

static struct stage *find_stage(struct stage_host *sh, const char *guest)
{
	load_records(sh);
	for (size_t i = 0; i < sh->n; i++)
		if (strcmp(sh->v[i]->guest, guest) == 0)
			return sh->v[i];
	return NULL;
}

static struct staged_file *find_file(struct stage *st, const char *name)
{
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->files[i]->name, name) == 0)
			return st->files[i];
	return NULL;
}

/* The staging folder GUEST, still open for files, or NULL with error. */
static struct stage *open_stage(struct stage_host *sh, const char *guest)
{
	struct stage *st = find_stage(sh, guest);

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

static struct staged_file *get_file(struct stage *st, const char *name)
{
	struct staged_file *sf = find_file(st, name);

	if (!sf)
		error_set(ENOENT, "no staged file \"%s\"", name);
	return sf;
}

static uint64_t first_capacity(struct stage *st, struct staged_file *sf);
static int block_target(struct stage_host *sh, struct staged_file *sf);

/* Records (record.h): the disks whose volumes staging created, kept in
 * the state directory so that a daemon killed mid-copy leaves a staging
 * folder the next one shows again, to be removed or copied again. */

/* Write st's record, naming also `extra` (a disk whose volume is about to
 * be created) unless NULL.  Stage lock held. */
static int save_record_with(struct stage_host *sh, struct stage *st,
			    const char *extra)
{
	const struct host_config *hc = vhost_config(sh->vh);
	char **disks = calloc(st->n + 2, sizeof *disks);
	struct record rec = { st->guest, 0, hc->pool, disks, 0 };
	int r;

	if (!sh->opt.state_dir)
		return 0;
	if (!disks) {
		error_set(ENOMEM, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < st->n; i++)
		if (st->files[i]->volume)
			disks[rec.n++] = st->files[i]->final;
	if (extra)
		disks[rec.n++] = (char *)extra;
	r = record_save(sh->opt.state_dir, hc->name, &rec);
	free(disks);
	if (r < 0)
		error_prefix("the staging record");
	return r;
}

static int save_record(struct stage_host *sh, struct stage *st)
{
	return save_record_with(sh, st, NULL);
}

/* A volume named in the record was not created after all (or deleted
 * again): the record goes back to st's files.  The error that caused it
 * stays the one reported.  Stage lock held. */
static void forget_created(struct stage_host *sh, struct stage *st)
{
	int e = error_errno();
	char msg[1024];

	snprintf(msg, sizeof msg, "%s", error_msg());
	if (save_record(sh, st) < 0)
		log_warning("%s/%s: %s", vhost_config(sh->vh)->name, st->guest,
			    error_msg());
	error_set(e, "%s", msg);
}

/* The folder is gone or defined: forget its record.  Stage lock held. */
static void drop_record(struct stage_host *sh, struct stage *st)
{
	const struct host_config *hc = vhost_config(sh->vh);

	if (sh->opt.state_dir &&
	    record_delete(sh->opt.state_dir, hc->name, st->guest) < 0)
		log_warning("%s/%s: %s", hc->name, st->guest, error_msg());
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
	const char *host = vhost_config(sh->vh)->name;
	struct stage *st = calloc(1, sizeof *st), **v;

	if (!st || !(st->guest = strdup(rec->guest)))
		goto nomem;
	st->mtime = time(NULL);
	for (size_t i = 0; i < rec->n; i++) {
		char final[PATH_NAME_MAX + 1], dev[64], fmt[64];
		struct staged_file *sf, **fv;

		if (stage_final_name(rec->disks[i], final, sizeof final) < 0 ||
		    strcmp(final, rec->disks[i]) != 0 ||
		    strcmp(final, XML_NAME) == 0) {
			log_warning("%s/%s: record names \"%s\": ignored", host,
				    rec->guest, rec->disks[i]);
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
		    asprintf(&sf->volume, "%s-%s", rec->guest, final) < 0) {
			sf->volume = NULL;
			goto nomem;
		}
	}
	v = realloc(sh->v, (sh->n + 1) * sizeof *v);
	if (!v)
		goto nomem;
	sh->v = v;
	sh->v[sh->n++] = st;
	if (save_record(sh, st) < 0)
		log_warning("%s/%s: %s", host, st->guest, error_msg());
	log_warning("%s/%s: staging folder recovered (left by kvmmigfs pid "
		    "%d): %zu incomplete disk%s, not defined; remove it or "
		    "copy the guest again",
		    host, st->guest, (int)rec->pid, st->n,
		    st->n == 1 ? "" : "s");
	return 0;
nomem:
	if (st)
		stage_free(st);
	error_set(ENOMEM, "out of memory");
	return -1;
}

/* Read the records earlier daemons left for this host, once: a record
 * whose guest now exists (defined just before the daemon died) is
 * dropped; one that another running kvmmigfs owns, or for another pool,
 * is left alone.  A host that cannot be asked is tried again at the next
 * access.  Stage lock held. */
static void load_records(struct stage_host *sh)
{
	const struct host_config *hc = vhost_config(sh->vh);
	struct record *recs = NULL;
	size_t n = 0;
	bool done = true;

	if (sh->loaded || !sh->opt.state_dir)
		return;
	if (record_load(sh->opt.state_dir, hc->name, &recs, &n) < 0) {
		log_warning("%s: staging records: %s", hc->name, error_msg());
		sh->loaded = true;
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
		if (strcmp(rec->pool, hc->pool) != 0) {
			log_warning("%s/%s: staging record for pool %s, not "
				    "%s: left alone",
				    hc->name, rec->guest, rec->pool, hc->pool);
			continue;
		}
		exists = vhost_guest_exists(sh->vh, rec->guest);
		if (exists < 0) {
			done = false;
		} else if (exists > 0) {
			log_info("%s/%s: defined before kvmmigfs pid %d ended; "
				 "its staging record is dropped",
				 hc->name, rec->guest, (int)rec->pid);
			record_delete(sh->opt.state_dir, hc->name, rec->guest);
		} else if (recover(sh, rec) < 0) {
			done = false;
		}
	}
	for (size_t i = 0; i < n; i++)
		record_release(&recs[i]);
	free(recs);
	sh->loaded = done;
}

/* A recovered disk written again from the start: a new volume in place of
 * the old one, so nothing of the earlier copy shows through.  If the new
 * one cannot be created (someone took the name meanwhile), the file is
 * dropped from the folder and the record.  Stage lock held. */
static int renew_volume(struct stage_host *sh, struct stage *st,
			struct staged_file *sf)
{
	const char *host = vhost_config(sh->vh)->name;

	if (vhost_vol_delete(sh->vh, sf->volume) < 0 && error_errno() != ENOENT)
		return -1;
	if (block_target(sh, sf) < 0)
		return -1;
	sf->capacity = first_capacity(st, sf);
	if (vhost_vol_create(sh->vh, sf->volume, sf->fmt, sf->capacity,
			     sf->block, &sf->path) < 0) {
		int e = error_errno();
		char msg[1024];

		snprintf(msg, sizeof msg, "%s", error_msg());
		for (size_t i = 0; i < st->n; i++)
			if (st->files[i] == sf)
				st->files[i] = st->files[--st->n];
		save_record(sh, st);
		file_put(sf);
		error_set(e, "%s", msg);
		return -1;
	}
	sf->recovered = false;
	log_info("%s/%s/%s: volume %s created again", host, st->guest, sf->name,
		 sf->volume);
	return 0;
}

void stage_stat(struct stage_host *sh, const char *guest, const char *file,
		struct stage_stat *ss)
{
	struct stage *st;
	struct staged_file *sf;

	memset(ss, 0, sizeof *ss);
	pthread_mutex_lock(&sh->lock);
	st = find_stage(sh, guest);
	if (!st)
		goto out;
	if (!file) {
		ss->kind = st->defined ? STAGE_DEFINED : STAGE_DIR;
		ss->mtime = st->mtime;
		goto out;
	}
	if (st->defined || !(sf = find_file(st, file)))
		goto out;
	ss->kind = STAGE_FILE;
	ss->mtime = sf->mtime;
	if (sf->is_xml) {
		ss->size = ss->allocated = sf->xml_len;
	} else {
		pthread_mutex_lock(&sf->io_lock);
		ss->size = sf->size;
		for (size_t i = 0; i < sf->written.n; i++)
			ss->allocated += sf->written.v[i].length;
		pthread_mutex_unlock(&sf->io_lock);
	}
out:
	pthread_mutex_unlock(&sh->lock);
}

int stage_list_guests(struct stage_host *sh, struct strvec *names)
{
	int r = 0;

	pthread_mutex_lock(&sh->lock);
	load_records(sh);
	for (size_t i = 0; i < sh->n && r == 0; i++)
		if (!sh->v[i]->defined)
			r = strvec_push(names, sh->v[i]->guest);
	pthread_mutex_unlock(&sh->lock);
	return r;
}

int stage_list_files(struct stage_host *sh, const char *guest,
		     struct strvec *names)
{
	struct stage *st;
	int r = -1;

	pthread_mutex_lock(&sh->lock);
	st = find_stage(sh, guest);
	if (!st || st->defined) {
		error_set(ENOENT, "no staging folder \"%s\"", guest);
		goto out;
	}
	r = 0;
	for (size_t i = 0; i < st->n && r == 0; i++)
		r = strvec_push(names, st->files[i]->name);
out:
	pthread_mutex_unlock(&sh->lock);
	return r;
}

int stage_mkdir(struct stage_host *sh, const char *guest)
{
	struct stage *st = NULL, **v;
	int r = -1, exists;

	if (!stage_guest_name_ok(guest)) {
		error_set(EINVAL,
			  "bad guest name (use 1-200 letters, digits, '.', "
			  "'_', '+', '-'; not starting with '.', '+' or '-')");
		return -1;
	}
	pthread_mutex_lock(&sh->lock);
	st = find_stage(sh, guest);
	if (st && !st->defined) {
		st = NULL;
		error_set(EEXIST, "a staging folder of that name exists");
		goto out;
	}
	exists = vhost_guest_exists(sh->vh, guest);
	if (exists != 0) {
		st = NULL;
		if (exists > 0)
			error_set(EEXIST, "the host has a guest of that name");
		goto out;
	}
	if (st) {
		/* Defined here once, undefined since: forget it. */
		for (size_t i = 0; i < sh->n; i++)
			if (sh->v[i] == st)
				sh->v[i] = sh->v[--sh->n];
		stage_free(st);
	}
	st = calloc(1, sizeof *st);
	v = st ? realloc(sh->v, (sh->n + 1) * sizeof *v) : NULL;
	if (!v || !(st->guest = strdup(guest))) {
		if (v)
			sh->v = v;
		error_set(ENOMEM, "out of memory");
		goto out;
	}
	sh->v = v;
	st->mtime = time(NULL);
	sh->v[sh->n++] = st;
	if (save_record(sh, st) < 0) {
		sh->n--;
		goto out;
	}
	st = NULL;
	r = 0;
out:
	pthread_mutex_unlock(&sh->lock);
	if (st) {
		free(st->guest);
		free(st);
	}
	return r;
}

int stage_rmdir(struct stage_host *sh, const char *guest)
{
	struct stage *st;
	int r = -1;

	pthread_mutex_lock(&sh->lock);
	st = find_stage(sh, guest);
	if (!st)
		error_set(ENOENT, "no staging folder \"%s\"", guest);
	else if (st->defined)
		error_set(EPERM, "the guest is defined: it is not removed");
	else if (st->n > 0)
		error_set(ENOTEMPTY, "the staging folder holds files");
	else
		r = 0;
	if (r == 0) {
		drop_record(sh, st);
		for (size_t i = 0; i < sh->n; i++)
			if (sh->v[i] == st)
				sh->v[i] = sh->v[--sh->n];
		stage_free(st);
	}
	pthread_mutex_unlock(&sh->lock);
	return r;
}

/* Count a handle in (open, or used again after a close of one of its
 * descriptors) or out (closed).  Stage lock held. */
static void activate(struct stage_open *so)
{
	if (so->active)
		return;
	__atomic_store_n(&so->active, true, __ATOMIC_RELAXED);
	so->sf->opens++;
	if (so->write)
		so->sf->writers++;
}

static void deactivate(struct stage_open *so)
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
static void stop_incomplete(struct staged_file *sf)
{
	if (sf->is_xml || sf->writers || sf->complete)
		return;
	pthread_mutex_lock(&sf->io_lock);
	endpoint_close(sf->ep);
	sf->ep = NULL;
	pthread_mutex_unlock(&sf->io_lock);
}

static struct stage_open *new_open(struct stage_host *sh, struct stage *st,
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
	activate(so);
	return so;
}

/* Room a new volume gets at first (see STAGE_MAX_SIZE). */
static uint64_t initial_capacity(const char *fmt)
{
	return strcmp(fmt, "raw") == 0 ? STAGE_MAX_SIZE : 1ULL << 30;
}

/* Does the pool hold block volumes?  Then sf is one, and raw: a logical
 * volume holds the guest's bytes, not an image format.  Stage lock
 * held. */
static int block_target(struct stage_host *sh, struct staged_file *sf)
{
	int kind = vhost_pool_kind(sh->vh);

	if (kind < 0)
		return -1;
	sf->block = kind == POOL_BLOCKS;
	if (sf->block && strcmp(sf->fmt, "raw") != 0) {
		error_set(EINVAL,
			  "pool %s holds block devices, raw only: name the "
			  "file %s.raw",
			  vhost_config(sh->vh)->pool, sf->dev);
		return -1;
	}
	return 0;
}

/* The capacity a new volume starts with.  A block volume takes its space
 * at once: it starts at the disk's size where the staged domain.xml says
 * it, else at 1 GiB, and grows as writes need.  Stage lock held. */
static uint64_t first_capacity(struct stage *st, struct staged_file *sf)
{
	struct staged_file *x = find_file(st, XML_NAME);
	unsigned long long size;

	if (!sf->block)
		return initial_capacity(sf->fmt);
	if (x && x->xml_ok && x->xml &&
	    domxml_disk_size(x->xml, x->xml_len, sf->dev, &size, NULL) == 1 &&
	    size > 0 && size <= STAGE_MAX_SIZE)
		return (size + 511) / 512 * 512;
	return 1ULL << 30;
}

/* The size a volume of fmt is cut to for a disk of size bytes. */
static uint64_t final_capacity(const char *fmt, uint64_t size)
{
	return strcmp(fmt, "raw") == 0 ? size : (size + 511) / 512 * 512;
}

/* Start the NBD server on the disk's volume if it is not running.
 * io_lock held. */
static int connect_locked(struct stage_host *sh, const char *guest,
			  struct staged_file *sf)
{
	const struct host_config *hc = vhost_config(sh->vh);
	char desc[600];
	struct endpoint_spec spec = {
		.shell = hc->shell.v,
		.path = sf->path,
		.format = sf->fmt,
		.readonly = false,
		.filter = sh->opt.filter,
		.desc = desc,
		.timeout_ms = sh->opt.timeout_ms,
	};

	if (sf->ep)
		return 0;
	snprintf(desc, sizeof desc, "%s/%s/%s", hc->name, guest, sf->final);
	sf->ep = endpoint_open(&spec);
	if (!sf->ep)
		return -1;
	if (endpoint_size(sf->ep) < sf->capacity) {
		endpoint_close(sf->ep);
		sf->ep = NULL;
		error_set(EIO, "%s: the volume is smaller than asked", desc);
		return -1;
	}
	return 0;
}

/* Set the volume's size.  libvirt resizes files; it cannot resize a
 * logical volume (and would refuse to shrink one), so that is done on the
 * host with lvresize (LVM rounds up to whole extents), and libvirt told.
 * The volume is ours and its server stopped. */
static int resize_volume(struct stage_host *sh, struct staged_file *sf,
			 uint64_t size)
{
	char arg[32], *cmd[] = { "lvresize", "--force", "--yes",  "-q",
				 "-L",	     arg,	sf->path, NULL };
	int r;

	if (!sf->block)
		return vhost_vol_resize(sh->vh, sf->volume, size);
	snprintf(arg, sizeof arg, "%llub", (unsigned long long)size);
	r = hostcmd_run(vhost_config(sh->vh)->shell.v, cmd, sh->opt.timeout_ms);
	if (r > 0) {
		uint64_t total, avail, now;

		/* lvresize fails on a size that rounds to what the volume
		 * has already: what counts is whether it holds size now. */
		if (vhost_pool_refresh(sh->vh) == 0 &&
		    vhost_vol_capacity(sh->vh, sf->volume, &now) == 0 &&
		    now >= size)
			return 0;
		if (size > sf->capacity &&
		    vhost_pool_space(sh->vh, &total, &avail) == 0 &&
		    avail < size - sf->capacity)
			error_set(ENOSPC,
				  "growing %s to %llu bytes: pool %s has %llu "
				  "bytes free",
				  sf->volume, (unsigned long long)size,
				  vhost_config(sh->vh)->pool,
				  (unsigned long long)avail);
		else
			error_set(EIO, "lvresize -L %s %s on the host: exit %d",
				  arg, sf->path, r);
	}
	if (r != 0)
		return -1;
	return vhost_pool_refresh(sh->vh);
}

/* Grow the volume to hold `needed` bytes: stop its server, resize, start
 * it again.  io_lock held. */
static int grow_locked(struct stage_host *sh, const char *guest,
		       struct staged_file *sf, uint64_t needed)
{
	uint64_t cap = sf->capacity * 2;

	if (needed <= sf->capacity)
		return 0;
	if (cap < needed)
		cap = (needed + (1ULL << 30) - 1) & ~((1ULL << 30) - 1);
	if (cap > STAGE_MAX_SIZE)
		cap = STAGE_MAX_SIZE;
	if (sf->ep && endpoint_flush(sf->ep) < 0)
		return -1;
	endpoint_close(sf->ep);
	sf->ep = NULL;
	if (resize_volume(sh, sf, cap) < 0) {
		/* A block volume takes its space at once: where doubling
		 * does not fit, what is needed may. */
		uint64_t exact =
		    (needed + (1ULL << 22) - 1) & ~((1ULL << 22) - 1);

		if (!sf->block || error_errno() != ENOSPC || exact >= cap ||
		    resize_volume(sh, sf, exact) < 0)
			return -1;
		cap = exact;
	}
	sf->capacity = cap;
	return connect_locked(sh, guest, sf);
}

static int open_endpoint(struct stage_host *sh, struct stage *st,
			 struct staged_file *sf)
{
	int r;

	pthread_mutex_lock(&sf->io_lock);
	r = connect_locked(sh, st->guest, sf);
	pthread_mutex_unlock(&sf->io_lock);
	return r;
}

/* A complete disk written again: it is incomplete until closed again. */
static void reopen_disk(struct staged_file *sf)
{
	sf->complete = false;
}

/* Before a volume is created for disk dev: when the staged domain.xml
 * (a served one, with kvmmigfs's sizes) says what the disks not yet staged
 * take on their source host, and that is more than the pool has free,
 * refuse with ENOSPC instead of failing half-way.  Allocated zeros count
 * too, though they are not written: a preallocated source may be refused
 * although it would fit; disks copied before domain.xml are not checked.
 * Stage lock held. */
static int check_space(struct stage_host *sh, struct stage *st, const char *dev)
{
	struct staged_file *x = find_file(st, XML_NAME);
	struct strvec devs = STRVEC_INIT;
	unsigned long long need = 0, size, alloc;
	uint64_t capacity, available;
	char *gname = NULL;
	size_t n = 0;
	int r = 0, kind;

	if (!x || !x->xml_ok || !x->xml)
		return 0;
	/* A block volume takes the disk's whole size; a file what is
	 * written, at most what the source allocates. */
	kind = vhost_pool_kind(sh->vh);
	if (kind < 0)
		return -1;
	if (rewrite_check(x->xml, x->xml_len, &devs, &gname) < 0)
		return 0; /* reported where it is defined */
	for (size_t i = 0; i < devs.n; i++) {
		bool staged = false;

		for (size_t j = 0; j < st->n; j++)
			if (st->files[j]->dev &&
			    strcmp(st->files[j]->dev, devs.v[i]) == 0)
				staged = true;
		if ((!staged || strcmp(devs.v[i], dev) == 0) &&
		    domxml_disk_size(x->xml, x->xml_len, devs.v[i], &size,
				     &alloc) == 1 &&
		    (kind == POOL_BLOCKS ? size : alloc)) {
			need += kind == POOL_BLOCKS ? size : alloc;
			n++;
		}
	}
	if (need && vhost_pool_space(sh->vh, &capacity, &available) == 0 &&
	    need > available) {
		error_set(ENOSPC,
			  "%zu disk%s not copied yet take %llu bytes %s; "
			  "pool %s has %llu bytes free",
			  n, n == 1 ? "" : "s", need,
			  kind == POOL_BLOCKS ? "(their sizes)"
					      : "on the source host",
			  vhost_config(sh->vh)->pool,
			  (unsigned long long)available);
		r = -1;
	}
	strvec_release(&devs);
	free(gname);
	return r;
}

struct stage_open *stage_create(struct stage_host *sh, const char *guest,
				const char *name)
{
	struct staged_file *sf = NULL, **v;
	struct stage_open *so = NULL;
	char final[PATH_NAME_MAX + 1], dev[64], fmt[64];
	struct stage *st;
	int exists;

	if (stage_final_name(name, final, sizeof final) < 0)
		return NULL;
	pthread_mutex_lock(&sh->lock);
	st = open_stage(sh, guest);
	if (!st)
		goto out;
	if (find_file(st, name)) {
		error_set(EEXIST, "\"%s\" exists", name);
		goto out;
	}
	for (size_t i = 0; i < st->n; i++)
		if (strcmp(st->files[i]->final, final) == 0) {
			error_set(EEXIST,
				  "\"%s\" is already being written as "
				  "\"%s\"",
				  final, st->files[i]->name);
			goto out;
		}
	sf = calloc(1, sizeof *sf);
	if (!sf) {
		error_set(ENOMEM, "out of memory");
		goto out;
	}
	pthread_mutex_init(&sf->io_lock, NULL);
	extent_map_init(&sf->written, STAGE_MAX_SIZE);
	sf->refs = 1;
	sf->mtime = time(NULL);
	sf->is_xml = strcmp(final, XML_NAME) == 0;
	if (!(sf->name = strdup(name)) || !(sf->final = strdup(final)))
		goto nomem;
	if (!sf->is_xml) {
		/* One file per disk: "vda.raw" and "vda.qcow2" clash. */
		path_disk_name(final, dev, sizeof dev, fmt, sizeof fmt);
		for (size_t i = 0; i < st->n; i++)
			if (st->files[i]->dev &&
			    strcmp(st->files[i]->dev, dev) == 0) {
				error_set(EEXIST,
					  "disk %s is already being "
					  "written as \"%s\"",
					  dev, st->files[i]->name);
				goto out_free;
			}
		if (!(sf->dev = strdup(dev)) || !(sf->fmt = strdup(fmt)) ||
		    asprintf(&sf->volume, "%s-%s", guest, final) < 0) {
			sf->volume = NULL;
			goto nomem;
		}
		if (check_space(sh, st, dev) < 0 || block_target(sh, sf) < 0)
			goto out_free;
		sf->capacity = first_capacity(st, sf);
		/* The record names the volume before it exists, so that a
		 * daemon killed in between leaves nothing nobody can find;
		 * it is never written for a name already taken. */
		exists = vhost_vol_exists(sh->vh, sf->volume);
		if (exists != 0) {
			if (exists > 0)
				error_set(EEXIST,
					  "volume \"%s\" already exists in "
					  "pool \"%s\"",
					  sf->volume,
					  vhost_config(sh->vh)->pool);
			goto out_free;
		}
		if (save_record_with(sh, st, final) < 0)
			goto out_free;
		if (vhost_vol_create(sh->vh, sf->volume, fmt, sf->capacity,
				     sf->block, &sf->path) < 0) {
			forget_created(sh, st);
			goto out_free;
		}
		log_info("%s/%s/%s: created volume %s (%s)",
			 vhost_config(sh->vh)->name, guest, name, sf->volume,
			 sf->path);
		if (open_endpoint(sh, st, sf) < 0) {
			int e = error_errno();
			char msg[1024];

			snprintf(msg, sizeof msg, "%s", error_msg());
			vhost_vol_delete(sh->vh, sf->volume);
			forget_created(sh, st);
			error_set(e, "%s", msg);
			goto out_free;
		}
	}
	v = realloc(st->files, (st->n + 1) * sizeof *v);
	if (!v)
		goto nomem_created;
	st->files = v;
	st->files[st->n++] = sf;
	st->mtime = time(NULL);
	so = new_open(sh, st, sf, true);
	sf = NULL;
	goto out;
nomem_created:
	error_set(ENOMEM, "out of memory");
	if (sf->volume) {
		vhost_vol_delete(sh->vh, sf->volume);
		forget_created(sh, st);
		error_set(ENOMEM, "out of memory");
	}
	goto out_free;
nomem:
	error_set(ENOMEM, "out of memory");
out_free:
	if (sf)
		file_put(sf);
out:
	pthread_mutex_unlock(&sh->lock);
	return so;
}

static int truncate_locked(struct stage_host *sh, const char *guest,
			   struct staged_file *sf, uint64_t size);

struct stage_open *stage_open(struct stage_host *sh, const char *guest,
			      const char *name, int flags)
{
	bool write = (flags & O_ACCMODE) != O_RDONLY;
	struct stage_open *so = NULL;
	struct staged_file *sf;
	struct stage *st;

	pthread_mutex_lock(&sh->lock);
	st = open_stage(sh, guest);
	if (!st || !(sf = get_file(st, name)))
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
		if (renew_volume(sh, st, sf) < 0)
			goto out;
	}
	if (write && !sf->is_xml) {
		reopen_disk(sf);
		if (open_endpoint(sh, st, sf) < 0)
			goto out;
	}
	if (write && (flags & O_TRUNC) && truncate_locked(sh, guest, sf, 0) < 0)
		goto out;
	if (write)
		sf->xml_ok = false;
	so = new_open(sh, st, sf, write);
out:
	pthread_mutex_unlock(&sh->lock);
	return so;
}

static bool all_zero(const char *buf, size_t n)
{
	return n == 0 || (buf[0] == 0 && memcmp(buf, buf + 1, n - 1) == 0);
}

/* Does any written data lie in [offset, offset+count)? io_lock held. */
static bool overlaps_written(const struct extent_map *m, uint64_t offset,
			     uint64_t count)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].offset < offset + count &&
		    m->v[i].offset + m->v[i].length > offset)
			return true;
	return false;
}

static ssize_t write_xml(struct stage_open *so, const void *buf, size_t count,
			 uint64_t offset)
{
	struct staged_file *sf = so->sf;
	ssize_t r = -1;

	pthread_mutex_lock(&so->sh->lock);
	if (offset + count > DOMXML_MAX_SIZE) {
		error_set(EFBIG, "domain.xml larger than %d bytes",
			  DOMXML_MAX_SIZE);
		goto out;
	}
	if (offset + count > sf->xml_len) {
		char *x = realloc(sf->xml, offset + count + 1);

		if (!x) {
			error_set(ENOMEM, "out of memory");
			goto out;
		}
		memset(x + sf->xml_len, 0, offset + count + 1 - sf->xml_len);
		sf->xml = x;
		sf->xml_len = offset + count;
	}
	activate(so);
	memcpy(sf->xml + offset, buf, count);
	sf->xml_ok = false;
	sf->mtime = time(NULL);
	r = (ssize_t)count;
out:
	pthread_mutex_unlock(&so->sh->lock);
	return r;
}

/* Written data is scanned for zeros in blocks of this size. */
#define ZERO_BLOCK (64u << 10)

/* The length of the run at buf of blocks that are all zero (*zero) or
 * not; buf NULL is all zeros. */
static size_t run_length(const char *buf, size_t count, bool *zero)
{
	size_t n = 0;

	if (!buf) {
		*zero = true;
		return count;
	}
	*zero = all_zero(buf, count < ZERO_BLOCK ? count : ZERO_BLOCK);
	while (n < count) {
		size_t b = count - n < ZERO_BLOCK ? count - n : ZERO_BLOCK;

		if (all_zero(buf + n, b) != *zero)
			break;
		n += b;
	}
	return n;
}

/* Write count bytes at offset, buf NULL for zeros.  All-zero blocks are
 * skipped (a new volume reads zeros) unless data was written there. */
static ssize_t write_disk(struct stage_open *so, const char *buf, size_t count,
			  uint64_t offset)
{
	struct staged_file *sf = so->sf;
	ssize_t r = -1;

	if (!so->write) {
		error_set(EBADF, "not open for writing");
		return -1;
	}
	if (offset > STAGE_MAX_SIZE || count > STAGE_MAX_SIZE - offset) {
		error_set(EFBIG,
			  "disks larger than %llu bytes are not "
			  "supported",
			  (unsigned long long)STAGE_MAX_SIZE);
		return -1;
	}
	if (!__atomic_load_n(&so->active, __ATOMIC_RELAXED)) {
		/* Written through another descriptor of a handle already
		 * closed once: it is a writer again until its next close. */
		pthread_mutex_lock(&so->sh->lock);
		activate(so);
		pthread_mutex_unlock(&so->sh->lock);
	}
	pthread_mutex_lock(&sf->io_lock);
	if (!sf->ep) {
		/* Written again after it was completed. */
		pthread_mutex_unlock(&sf->io_lock);
		pthread_mutex_lock(&so->sh->lock);
		reopen_disk(sf);
		r = open_endpoint(so->sh, so->st, sf);
		pthread_mutex_unlock(&so->sh->lock);
		if (r < 0)
			return -1;
		pthread_mutex_lock(&sf->io_lock);
	}
	if (grow_locked(so->sh, so->st->guest, sf, offset + count) < 0)
		goto err;
	for (size_t pos = 0; pos < count;) {
		bool zero;
		size_t n =
		    run_length(buf ? buf + pos : NULL, count - pos, &zero);

		if (zero) {
			if (overlaps_written(&sf->written, offset + pos, n) &&
			    endpoint_zero(sf->ep, n, offset + pos) < 0)
				goto err;
		} else if (endpoint_pwrite(sf->ep, buf + pos, n, offset + pos) <
			       0 ||
			   extent_map_add(&sf->written, offset + pos, n,
					  false) < 0) {
			goto err;
		}
		pos += n;
	}
	if (offset + count > sf->size)
		sf->size = offset + count;
	r = (ssize_t)count;
	pthread_mutex_unlock(&sf->io_lock);
	return r;
err:
	if (!sf->werrno)
		sf->werrno = error_errno();
	pthread_mutex_unlock(&sf->io_lock);
	return -1;
}

ssize_t stage_write(struct stage_open *so, const void *buf, size_t count,
		    uint64_t offset)
{
	if (so->sf->is_xml) {
		if (!so->write) {
			error_set(EBADF, "not open for writing");
			return -1;
		}
		return write_xml(so, buf, count, offset);
	}
	return write_disk(so, buf, count, offset);
}

int stage_write_zeros(struct stage_open *so, uint64_t count, uint64_t offset)
{
	if (so->sf->is_xml) {
		error_set(EINVAL, "domain.xml has no holes");
		return -1;
	}
	while (count > 0) {
		size_t n = count > (1u << 30) ? (1u << 30) : (size_t)count;

		if (write_disk(so, NULL, n, offset) < 0)
			return -1;
		offset += n;
		count -= n;
	}
	return 0;
}

bool stage_is_disk(const struct stage_open *so)
{
	return !so->sf->is_xml;
}

ssize_t stage_read(struct stage_open *so, void *buf, size_t count,
		   uint64_t offset)
{
	struct staged_file *sf = so->sf;
	ssize_t r = 0;

	if (!sf->is_xml) {
		error_set(EACCES, "disks being staged are write-only");
		return -1;
	}
	pthread_mutex_lock(&so->sh->lock);
	if (offset < sf->xml_len) {
		r = (ssize_t)(sf->xml_len - offset < count
				  ? sf->xml_len - offset
				  : count);
		memcpy(buf, sf->xml + offset, (size_t)r);
	}
	pthread_mutex_unlock(&so->sh->lock);
	return r;
}

int stage_fsync(struct stage_open *so)
{
	struct staged_file *sf = so->sf;
	int r = 0;

	if (sf->is_xml)
		return 0;
	pthread_mutex_lock(&sf->io_lock);
	if (sf->ep)
		r = endpoint_flush(sf->ep);
	pthread_mutex_unlock(&sf->io_lock);
	return r;
}

/* Was the process closing a file killed?  A kernel closes the files of a
 * dying process like any others; a copy cut short must not count as
 * complete.  /proc/PID/stat: flags (field 9) has PF_EXITING while the
 * process exits, exit_code (field 52) holds the killing signal. */
static bool killed(pid_t pid)
{
	char path[64], buf[2048], *p, *save = NULL;
	unsigned long flags = 0;
	long code = 0;
	FILE *f;
	int field;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return true; /* gone already: not a normal close */
	p = fgets(buf, sizeof buf, f);
	fclose(f);
	if (!p || !(p = strrchr(buf, ')')))
		return true;
	/* Field 3 follows ')'. */
	for (field = 3, p = strtok_r(p + 1, " ", &save); p;
	     p = strtok_r(NULL, " ", &save), field++) {
		if (field == 9)
			flags = strtoul(p, NULL, 10);
		else if (field == 52)
			code = strtol(p, NULL, 10);
	}
#define PF_EXITING 0x00000004
	return (flags & PF_EXITING) && (code & 0x7f) != 0;
}

/* The host shell's answer to "does PATH exist?" (for removable media). */
static int media_exists(void *opaque, const char *path)
{
	struct stage_host *sh = opaque;
	char *cmd[] = { "test", "-e", (char *)path, NULL };
	int r =
	    hostcmd_run(vhost_config(sh->vh)->shell.v, cmd, sh->opt.timeout_ms);

	if (r < 0)
		return -1;
	if (r > 1) {
		error_set(EIO, "cannot check \"%s\" on the host (exit %d)",
			  path, r);
		return -1;
	}
	return r == 0;
}

/* Define the guest if its XML and every disk it names are complete.
 * Stage lock held.  Returns 0 (defined, or still waiting) or -1. */
static int try_define(struct stage_host *sh, struct stage *st)
{
	const char *host = vhost_config(sh->vh)->name;
	struct strvec devs = STRVEC_INIT;
	struct rewrite_disk *disks = NULL;
	struct staged_file *x = find_file(st, XML_NAME);
	char *name = NULL, *out = NULL;
	int r = -1, cloned = 0, d;

	if (st->defined || !x || !x->xml_ok || x->opens)
		return 0;
	if (rewrite_check(x->xml, x->xml_len, &devs, &name) < 0)
		goto out;
	disks = calloc(devs.n ? devs.n : 1, sizeof *disks);
	if (!disks) {
		error_set(ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < devs.n; i++) {
		struct staged_file *sf = NULL;

		for (size_t j = 0; j < st->n; j++)
			if (st->files[j]->dev &&
			    strcmp(st->files[j]->dev, devs.v[i]) == 0)
				sf = st->files[j];
		unsigned long long want;

		if (!sf || !sf->complete || sf->opens ||
		    strcmp(sf->name, sf->final) != 0) {
			log_debug("%s/%s: domain.xml waits for disk %s", host,
				  st->guest, devs.v[i]);
			r = 0;
			goto out;
		}
		/* A copy cut short (a writer interrupted that still closed
		 * its file) is smaller than its source said. */
		if (domxml_disk_size(x->xml, x->xml_len, sf->dev, &want,
				     NULL) == 1 &&
		    want != sf->size) {
			log_warning("%s/%s/%s: %llu bytes of %llu: incomplete; "
				    "the guest is not defined until it is "
				    "copied again",
				    host, st->guest, sf->name,
				    (unsigned long long)sf->size, want);
			r = 0;
			goto out;
		}
		disks[i] = (struct rewrite_disk){ sf->dev, sf->path, sf->fmt,
						  sf->block };
	}
	out = rewrite_domain(x->xml, x->xml_len,
			     &(struct rewrite_spec){ st->guest, disks, devs.n,
						     media_exists, sh },
			     &cloned);
	if (!out)
		goto out;
	d = vhost_define(sh->vh, out, sh->opt.start);
	if (d == -1) {
		/* The host may have defined it and lost the answer (its
		 * libvirtd restarted, the link broke): then the guest
		 * exists now, and the volumes are its. */
		int e = error_errno();
		char why[1024];

		snprintf(why, sizeof why, "%s", error_msg());
		if (e == EINVAL || vhost_guest_exists(sh->vh, st->guest) != 1) {
			error_set(e, "%s", why);
			goto out;
		}
		log_warning("%s/%s: the define call failed (%s), but the "
			    "guest exists now: defined",
			    host, st->guest, why);
		d = 0;
	}
	log_info("%s/%s: defined%s%s", host, st->guest,
		 cloned ? " as a clone of " : "", cloned ? name : "");
	for (size_t j = 0; j < st->n; j++)
		if (st->files[j]->dev &&
		    strvec_find(&devs, st->files[j]->dev) < 0)
			log_warning(
			    "%s/%s: volume %s is not a disk of the guest; "
			    "it stays in the pool",
			    host, st->guest, st->files[j]->volume);
	/* The volumes are the guest's now. */
	for (size_t j = 0; j < st->n; j++)
		file_put(st->files[j]);
	st->n = 0;
	st->defined = true;
	drop_record(sh, st);
	r = d == 0 ? 0 : -1;
	if (d == -2) {
		char why[1024];

		snprintf(why, sizeof why, "%s", error_msg());
		error_set(EIO, "defined, but not started: %s", why);
	}
out:
	free(out);
	free(name);
	free(disks);
	strvec_release(&devs);
	return r;
}

/* libvirt rounds sizes up to whole sectors; a raw file of another size
 * is cut on the host itself. */
static int exact_size(struct stage_host *sh, struct staged_file *sf,
		      uint64_t size)
{
	char arg[32], *cmd[] = { "truncate", "-s", arg, sf->path, NULL };
	int r;

	if (size % 512 == 0 || strcmp(sf->fmt, "raw") != 0 || sf->block)
		return 0;
	snprintf(arg, sizeof arg, "%llu", (unsigned long long)size);
	r = hostcmd_run(vhost_config(sh->vh)->shell.v, cmd, sh->opt.timeout_ms);
	if (r != 0) {
		if (r > 0)
			error_set(EIO, "truncate -s %s on the host: exit %d",
				  arg, r);
		return -1;
	}
	return 0;
}

/* A block volume may hold anything where nothing was written: make every
 * byte of [from, to) outside the written ranges zero, with NBD zero
 * requests (nbdkit turns them into BLKZEROOUT or discard on the host).
 * io_lock held, the server running. */
static int zero_unwritten(struct staged_file *sf, uint64_t from, uint64_t to)
{
	uint64_t at = from;

	for (size_t i = 0; i <= sf->written.n && at < to; i++) {
		uint64_t end = i < sf->written.n ? sf->written.v[i].offset : to;

		if (end > to)
			end = to;
		while (at < end) {
			/* One request carries at most 2 GiB. */
			uint64_t n =
			    end - at > (1ULL << 31) ? 1ULL << 31 : end - at;

			if (endpoint_zero(sf->ep, n, at) < 0)
				return -1;
			at += n;
		}
		if (i < sf->written.n) {
			uint64_t w =
			    sf->written.v[i].offset + sf->written.v[i].length;

			if (w > at)
				at = w;
		}
	}
	return endpoint_flush(sf->ep);
}

/* Complete a disk whose last writer closed it: make it durable, stop its
 * server and cut the volume to the size written; on a block volume, zero
 * what was not written, up to its end (a logical volume ends on a whole
 * extent, maybe past the size).  Stage lock held. */
static int complete_disk(struct stage_host *sh, const char *guest,
			 struct staged_file *sf)
{
	const char *host = vhost_config(sh->vh)->name;
	uint64_t size, cap;
	int r = 0;

	pthread_mutex_lock(&sf->io_lock);
	if (sf->werrno) {
		error_set(sf->werrno, "an earlier write failed: %s",
			  strerror(sf->werrno));
		r = -1;
	} else if (sf->ep && endpoint_flush(sf->ep) < 0) {
		r = -1;
	} else if (sf->block && sf->ep) {
		r = zero_unwritten(
		    sf, 0, sf->size < sf->capacity ? sf->size : sf->capacity);
	}
	endpoint_close(sf->ep);
	sf->ep = NULL;
	size = sf->size;
	pthread_mutex_unlock(&sf->io_lock);
	if (r < 0)
		return -1;
	size = final_capacity(sf->fmt, size);
	if (resize_volume(sh, sf, size) < 0 || exact_size(sh, sf, size) < 0)
		return -1;
	cap = size;
	if (sf->block && vhost_vol_capacity(sh->vh, sf->volume, &cap) < 0)
		return -1;
	pthread_mutex_lock(&sf->io_lock);
	sf->capacity = cap;
	if (cap > size) {
		/* The extent's tail past the disk's size. */
		log_info("%s/%s/%s: volume %s is %llu bytes, %llu more than "
			 "the disk (whole extents); the rest reads zeros",
			 host, guest, sf->name, sf->volume,
			 (unsigned long long)cap,
			 (unsigned long long)(cap - size));
		r = connect_locked(sh, guest, sf);
		if (r == 0)
			r = zero_unwritten(sf, size, cap);
		endpoint_close(sf->ep);
		sf->ep = NULL;
	}
	pthread_mutex_unlock(&sf->io_lock);
	if (r < 0)
		return -1;
	sf->complete = true;
	return 0;
}

int stage_flush(struct stage_open *so, pid_t pid)
{
	struct stage_host *sh = so->sh;
	struct staged_file *sf = so->sf;
	int r = 0;

	pthread_mutex_lock(&sh->lock);
	if (!so->write || !so->active) {
		/* A reader, or nothing written since this handle's last
		 * close: nothing to report. */
		deactivate(so);
		goto out;
	}
	deactivate(so);
	if (killed(pid)) {
		log_warning(
		    "%s/%s/%s: the writer (pid %d) was killed: the file "
		    "stays incomplete",
		    vhost_config(sh->vh)->name, so->st->guest, sf->name,
		    (int)pid);
		stop_incomplete(sf);
		goto out;
	}
	if (sf->is_xml) {
		if (strcmp(sf->name, XML_NAME) == 0 && !sf->xml_ok) {
			struct strvec devs = STRVEC_INIT;
			char *name = NULL;

			r = rewrite_check(sf->xml ? sf->xml : "", sf->xml_len,
					  &devs, &name);
			strvec_release(&devs);
			free(name);
			sf->xml_ok = r == 0;
		}
	} else if (sf->writers == 0 && !sf->complete) {
		r = complete_disk(sh, so->st->guest, sf);
	} else if (sf->writers > 0) {
		pthread_mutex_lock(&sf->io_lock);
		r = sf->ep ? endpoint_flush(sf->ep) : 0;
		pthread_mutex_unlock(&sf->io_lock);
	}
	if (r == 0 && sf->writers == 0)
		r = try_define(sh, so->st);
out:
	pthread_mutex_unlock(&sh->lock);
	return r;
}

void stage_release(struct stage_open *so)
{
	struct stage_host *sh = so->sh;
	struct staged_file *sf = so->sf;

	pthread_mutex_lock(&sh->lock);
	if (so->active) {
		/* Released without a close that counted it out. */
		deactivate(so);
		stop_incomplete(sf);
	}
	file_put(sf);
	pthread_mutex_unlock(&sh->lock);
	free(so);
}

/* Stage lock held. */
static int truncate_locked(struct stage_host *sh, const char *guest,
			   struct staged_file *sf, uint64_t size)
{
	int r = 0;

	if (sf->is_xml) {
		if (size > DOMXML_MAX_SIZE) {
			error_set(EFBIG, "domain.xml larger than %d bytes",
				  DOMXML_MAX_SIZE);
			return -1;
		}
		if (size > sf->xml_len) {
			char *x = realloc(sf->xml, size + 1);

			if (!x) {
				error_set(ENOMEM, "out of memory");
				return -1;
			}
			memset(x + sf->xml_len, 0, size + 1 - sf->xml_len);
			sf->xml = x;
		}
		sf->xml_len = size;
		sf->xml_ok = false;
		return 0;
	}
	if (size > STAGE_MAX_SIZE) {
		error_set(EFBIG,
			  "disks larger than %llu bytes are not supported",
			  (unsigned long long)STAGE_MAX_SIZE);
		return -1;
	}
	pthread_mutex_lock(&sf->io_lock);
	/* Data cut off must not come back if the file grows again. */
	if (size < sf->size &&
	    overlaps_written(&sf->written, size, sf->size - size)) {
		if (sf->ep)
			r = endpoint_zero(sf->ep, sf->size - size, size);
		else
			r = resize_volume(sh, sf, size);
		if (r == 0 && !sf->ep)
			sf->capacity = size;
	}
	if (r == 0) {
		sf->size = size;
		/* A complete disk (no server running) is resized now. */
		if (!sf->ep && sf->complete &&
		    final_capacity(sf->fmt, size) != sf->capacity) {
			r = vhost_vol_resize(sh->vh, sf->volume,
					     final_capacity(sf->fmt, size));
			if (r == 0)
				sf->capacity = final_capacity(sf->fmt, size);
		} else if (sf->ep) {
			r = grow_locked(sh, guest, sf, size);
		}
	}
	pthread_mutex_unlock(&sf->io_lock);
	return r;
}

int stage_truncate(struct stage_host *sh, const char *guest, const char *name,
		   struct stage_open *so, uint64_t size)
{
	struct staged_file *sf;
	struct stage *st;
	int r = -1;

	pthread_mutex_lock(&sh->lock);
	st = open_stage(sh, guest);
	sf = so ? so->sf : st ? get_file(st, name) : NULL;
	if (so && so->write)
		activate(so);
	if (sf) {
		r = truncate_locked(sh, guest, sf, size);
		sf->mtime = time(NULL);
	}
	pthread_mutex_unlock(&sh->lock);
	return r;
}

int stage_unlink(struct stage_host *sh, const char *guest, const char *name)
{
	struct staged_file *sf;
	struct stage *st;
	int r = -1;

	pthread_mutex_lock(&sh->lock);
	st = open_stage(sh, guest);
	if (!st || !(sf = get_file(st, name)))
		goto out;
	if (sf->opens) {
		error_set(EBUSY, "the file is open");
		goto out;
	}
	if (!sf->is_xml) {
		/* Never delete what a guest may use: one of this name may
		 * have been defined with these volumes after all (the answer
		 * to the define call lost).  Unknown: not deleted either. */
		int exists = vhost_guest_exists(sh->vh, guest);

		if (exists != 0) {
			if (exists > 0) {
				log_warning(
				    "%s/%s: a guest of that name exists "
				    "now: its volumes are kept",
				    vhost_config(sh->vh)->name, guest);
				st->defined = true;
				drop_record(sh, st);
				for (size_t i = 0; i < st->n; i++)
					file_put(st->files[i]);
				st->n = 0;
				error_set(EPERM,
					  "the guest %s is defined now: "
					  "its volumes are not removed",
					  guest);
			}
			goto out;
		}
		/* A recovered disk's volume may be gone already. */
		if (vhost_vol_delete(sh->vh, sf->volume) < 0 &&
		    !(sf->recovered && error_errno() == ENOENT))
			goto out;
		log_info("%s/%s/%s: deleted volume %s",
			 vhost_config(sh->vh)->name, guest, name, sf->volume);
	}
	for (size_t i = 0; i < st->n; i++)
		if (st->files[i] == sf)
			st->files[i] = st->files[--st->n];
	if (!sf->is_xml && save_record(sh, st) < 0)
		log_warning("%s/%s: %s", vhost_config(sh->vh)->name, guest,
			    error_msg());
	file_put(sf);
	st->mtime = time(NULL);
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
	char *copy;
	int r = -1;

	if (stage_final_name(to, final, sizeof final) < 0)
		return -1;
	pthread_mutex_lock(&sh->lock);
	st = open_stage(sh, guest);
	if (!st || !(sf = get_file(st, from)))
		goto out;
	if (find_file(st, to)) {
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
	free(sf->name);
	sf->name = copy;
	st->mtime = time(NULL);
	r = 0;
	if (sf->is_xml && strcmp(to, XML_NAME) == 0 && !sf->opens) {
		struct strvec devs = STRVEC_INIT;
		char *name = NULL;

		r = rewrite_check(sf->xml ? sf->xml : "", sf->xml_len, &devs,
				  &name);
		strvec_release(&devs);
		free(name);
		sf->xml_ok = r == 0;
	}
	if (r == 0)
		r = try_define(sh, st);
out:
	pthread_mutex_unlock(&sh->lock);
	return r;
}
