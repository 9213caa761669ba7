/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Staging, the last close: completing a disk, defining the guest.
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

/* Does PATH exist on the host?  (For removable media.) */
static int media_exists(void *opaque, const char *path)
{
	struct stage_host *sh = opaque;

	return HOST_CALL(sh, path_exists, path);
}

/* Verify a complete disk against its origin, once per completion.  The
 * stage lock stays held: the host's other staging operations wait (the
 * CRCs are computed on both hosts at once).  Returns 0 or -1. */
static int verify_disk(struct stage_host *sh, struct stage *st,
		       struct staged_file *x, struct staged_file *sf)
{
	struct domxml_origin o;
	int k;

	if (sf->verified)
		return 0;
	k = domxml_disk_origin(x->xml, x->xml_len, sf->dev, &o);
	if (k < 0)
		return -1;
	if (k == 0) {
		/* Not served by a mount of this version: nothing to compare
		 * with.  Said, never silently skipped. */
		log_warning("%s/%s/%s: not verified: domain.xml does not say "
			    "where the disk came from",
			    sh->host->name, st->guest, sf->name);
		sf->verified = true;
		return 0;
	}
	if (sh->opt.verify(sh->opt.verify_ctx, &(struct stage_verify){
						   .host = sh->host->name,
						   .guest = st->guest,
						   .file = sf->name,
						   .path = sf->path,
						   .format = sf->fmt,
						   .size = sf->size,
						   .origin_host = o.host,
						   .origin_uuid = o.host_uuid,
						   .origin_path = o.path,
						   .origin_format = o.format,
					       }) < 0)
		return -1;
	sf->verified = true;
	return 0;
}

/* Define the guest if its XML and every disk it names are complete.
 * Stage lock held.  Returns 0 (defined, or still waiting) or -1. */
int stage_try_define(struct stage_host *sh, struct stage *st)
{
	const char *host = sh->host->name;
	struct strvec devs = STRVEC_INIT;
	struct rewrite_disk *disks = NULL;
	struct staged_file **sfs = NULL;
	struct staged_file *x = stage_find_file(st, XML_NAME);
	char *name = NULL, *out = NULL;
	int r = -1, cloned = 0, d;

	if (st->defined || !x || !x->xml_ok || x->opens)
		return 0;
	if (rewrite_check(x->xml, x->xml_len, &devs, &name) < 0)
		goto out;
	disks = calloc(devs.n ? devs.n : 1, sizeof *disks);
	sfs = calloc(devs.n ? devs.n : 1, sizeof *sfs);
	if (!disks || !sfs) {
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
		sfs[i] = sf;
	}
	for (size_t i = 0; sh->opt.verify && i < devs.n; i++)
		if (verify_disk(sh, st, x, sfs[i]) < 0)
			goto out;
	out = rewrite_domain(x->xml, x->xml_len,
			     &(struct rewrite_spec){ st->guest, disks, devs.n,
						     media_exists, sh },
			     &cloned);
	if (!out)
		goto out;
	d = HOST_CALL(sh, define, out, sh->opt.start);
	if (d == -1) {
		/* The host may have defined it and lost the answer (its
		 * libvirtd restarted, the link broke): then the guest
		 * exists now, and the volumes are its. */
		int e = error_errno();
		char why[1024];

		snprintf(why, sizeof why, "%s", error_msg());
		if (e == EINVAL ||
		    HOST_CALL(sh, guest_exists, st->guest) != 1) {
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
	stage_folder_defined(sh, st);
	if (!st->move)
		stage_record_drop(sh, st);
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
	free(sfs);
	strvec_release(&devs);
	return r;
}

/* Complete a disk whose last writer closed it: make it durable, stop its
 * server and cut the volume to the size written; on a block volume, zero
 * what was not written, up to its end (a logical volume ends on a whole
 * extent, maybe past the size).  Stage lock held. */
static int stage_disk_complete(struct stage_host *sh, const char *guest,
			       struct staged_file *sf)
{
	const char *host = sh->host->name;
	uint64_t size, cap;
	int r = 0;

	pthread_mutex_lock(&sf->io_lock);
	if (sf->werrno) {
		error_set(sf->werrno, "an earlier write failed: %s",
			  sf->werrmsg[0] ? sf->werrmsg : strerror(sf->werrno));
		r = -1;
	} else if (sf->ep && (stage_resume_end(sh, guest, sf) < 0 ||
			      endpoint_flush(sf->ep) < 0)) {
		r = -1;
	} else if (sf->block) {
		/* (A direct copier may have written it without our server.) */
		r = sf->ep || stage_connect_locked(sh, guest, sf) == 0
			? stage_zero_unwritten(
			      sf, 0,
			      sf->size < sf->capacity ? sf->size : sf->capacity)
			: -1;
	}
	endpoint_close(sf->ep);
	sf->ep = NULL;
	size = sf->size;
	pthread_mutex_unlock(&sf->io_lock);
	if (r < 0)
		return -1;
	size = stage_final_capacity(sf->fmt, size);
	if (stage_volume_resize(sh, sf, size) < 0 ||
	    stage_exact_size(sh, sf, size) < 0)
		return -1;
	cap = size;
	if (sf->block && HOST_CALL(sh, vol_capacity, sf->volume, &cap) < 0)
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
		r = stage_connect_locked(sh, guest, sf);
		if (r == 0)
			r = stage_zero_unwritten(sf, size, cap);
		endpoint_close(sf->ep);
		sf->ep = NULL;
	}
	pthread_mutex_unlock(&sf->io_lock);
	if (r < 0)
		return -1;
	sf->complete = true;
	sf->verified = false;
	return 0;
}

int stage_xml_check(struct stage_host *sh, struct stage *st,
		    struct staged_file *sf)
{
	struct strvec devs = STRVEC_INIT;
	char *name = NULL;
	int r =
	    rewrite_check(sf->xml ? sf->xml : "", sf->xml_len, &devs, &name);

	/* Can the host run it?  Asked before any disk arrives (copiers
	 * write domain.xml first): a refusal holds for the folder's next
	 * disks, so that nothing is created for a guest that cannot run. */
	if (r == 0)
		r = HOST_CALL(sh, can_host, sf->xml, sf->xml_len,
			      strcmp(name, st->guest) == 0);
	free(st->refused);
	st->refused = NULL;
	if (r < 0 && (error_errno() == ENXIO || error_errno() == ENOPKG ||
		      error_errno() == ENOEXEC || error_errno() == ENOTUNIQ ||
		      error_errno() == ENODEV)) {
		st->refused_errno = error_errno();
		st->refused = strdup(error_msg());
	}
	strvec_release(&devs);
	free(name);
	sf->xml_ok = r == 0;
	return r;
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
		stage_handle_deactivate(so);
		goto out;
	}
	stage_handle_deactivate(so);
	if (killed(pid)) {
		log_warning(
		    "%s/%s/%s: the writer (pid %d) was killed: the file "
		    "stays incomplete",
		    sh->host->name, so->st->guest, sf->name, (int)pid);
		stage_stop_incomplete(sf);
		goto out;
	}
	if (sf->is_xml) {
		if (strcmp(sf->name, XML_NAME) == 0 && !sf->xml_ok)
			r = stage_xml_check(sh, so->st, sf);
	} else if (sf->writers == 0 && !sf->complete) {
		r = stage_disk_complete(sh, so->st->guest, sf);
	} else if (sf->writers > 0) {
		pthread_mutex_lock(&sf->io_lock);
		r = sf->ep ? endpoint_flush(sf->ep) : 0;
		pthread_mutex_unlock(&sf->io_lock);
	}
	if (r == 0 && sf->writers == 0)
		r = stage_try_define(sh, so->st);
out:
	pthread_mutex_unlock(&sh->lock);
	return r;
}
