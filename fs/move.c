/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Moves (move.h).  An offline move is what `cp -r` of the folder would
 * do, driven from inside: each disk opened as a file of the mount and
 * copied with the copy engine (files_copy_file_range) into a staging
 * folder on the new host, then the served domain.xml written there, which
 * verifies the copies and defines the guest (stage.h).  Staging's records
 * cover the new volumes until then.  Only once the guest is defined on
 * the new host is the old host changed: the guest undefined, then its own
 * volumes deleted.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/error.h"
#include "../nbd/hostcmd.h"
#include "forward.h"
#include "log.h"
#include "move.h"
#include "ops.h"
#include "preflight.h"
#include "rewrite.h"

struct move {
	struct kvmmigfs *fs;
	const struct fs_path *from, *to;
	struct vhost *src, *dst;
	struct stage_host *dsh;
	struct host *dst_host;
	struct guest *g;
	struct guest_state state;
	struct transfer *xfer;		    /* the "move" line */
	char desc[2 * PATH_NAME_MAX + 64];  /* "hosta/web1 -> hostb/web1" */
	bool keep;			    /* -o keep_source */
	char record[2 * PATH_NAME_MAX + 8]; /* the record's move line */
	bool *shared; /* per listed disk: the same file on both hosts */
	size_t nshared;
};

/* Log one line for the move's failure and return -errnum. */
static int move_fail(struct move *m, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int move_fail(struct move *m, int errnum, const char *fmt, ...)
{
	char cause[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cause, sizeof cause, fmt, ap);
	va_end(ap);
	transfer_fail(m->xfer, errnum, cause);
	return fail(m->from, "rename", errnum, cause);
}

/* Pre-flight: can the new host take this guest?  Nothing is created. */

static int check_names(struct move *m)
{
	struct stage_stat ss;
	int r;

	stage_stat(m->dsh, m->to->guest, NULL, &ss);
	if (ss.kind == STAGE_DIR)
		return move_fail(m, EEXIST, "%s has a staging folder %s",
				 m->to->host, m->to->guest);
	r = vhost_guest_exists(m->dst, m->to->guest);
	if (r < 0)
		return move_fail(m, error_errno(), "%s: %s", m->to->host,
				 error_msg());
	if (r)
		return move_fail(m, EEXIST, "%s has a guest named %s already",
				 m->to->host, m->to->guest);
	return 0;
}

static int check_state(struct move *m)
{
	if (m->state.snapshots > 0)
		return move_fail(m, EBUSY,
				 "the guest has %d snapshot(s) on %s, which a "
				 "move would lose (delete them first)",
				 m->state.snapshots, m->from->host);
	if (m->state.managed_save > 0)
		return move_fail(m, EBUSY,
				 "the guest has a saved state on %s, which a "
				 "move would lose (start it, or discard it "
				 "with virsh managedsave-remove)",
				 m->from->host);
	return 0;
}

/* Every disk the XML names for streaming is readable (listed). */
static int check_disks(struct move *m)
{
	struct strvec devs = { 0 };
	char *name = NULL;
	int r = 0;

	if (rewrite_check(m->g->xml, m->g->xml_len, &devs, &name) < 0)
		return move_fail(m, error_errno(), "%s", error_msg());
	for (size_t i = 0; i < devs.n && r == 0; i++) {
		bool found = false;

		for (size_t j = 0; j < m->g->info.disks.n; j++)
			found |=
			    strcmp(m->g->info.disks.v[j].dev, devs.v[i]) == 0;
		if (!found)
			r = move_fail(m, EIO,
				      "disk %s cannot be read on %s (see the "
				      "log line that skipped it)",
				      devs.v[i], m->from->host);
	}
	strvec_release(&devs);
	free(name);
	return r;
}

static int path_exists(void *opaque, const char *path)
{
	struct host *h = opaque;

	return h->ops->path_exists(h->opaque, path);
}

static int check_space(struct move *m)
{
	int kind = vhost_pool_kind(m->dst);
	uint64_t need = 0, capacity, available;

	if (kind < 0 || vhost_pool_space(m->dst, &capacity, &available) < 0)
		return move_fail(m, error_errno(), "%s: %s", m->to->host,
				 error_msg());
	/* Block volumes take their whole size at once. */
	for (size_t i = 0; i < m->g->info.disks.n; i++)
		if (!m->shared[i])
			need += kind == POOL_BLOCKS ? m->g->sizes[i].capacity
						    : m->g->sizes[i].allocation;
	if (need > available)
		return move_fail(m, ENOSPC,
				 "pool '%s' on %s has %" PRIu64
				 " bytes free, the guest's disks need %" PRIu64,
				 vhost_config(m->dst)->pool, m->to->host,
				 available, need);
	return 0;
}

/* Shared storage: is disk d's file the very file the new host sees at the
 * same path?  Decided by identity, not by path: a marker file made on the
 * new host in the directory of that path is looked for, under its random
 * name, on the old host (which is only read), then removed.  A block
 * device, or a directory the new host lacks or cannot write, is not
 * shared.  1, 0, or -1 with error_set(). */
static int disk_shared(struct move *m, const struct disk *d)
{
	char *const *src = vhost_config(m->src)->shell.v;
	char *const *dst = vhost_config(m->dst)->shell.v;
	char dir[4096], marker[4096 + 64] = "", *slash;
	char *mk[] = { "mktemp", "-p", dir, ".kvmmigfs-shared.XXXXXXXX", NULL };
	char *test[] = { "test", "-e", marker, NULL };
	char *rm[] = { "rm", "-f", "--", marker, NULL };
	int r;

	if (d->source_type == DISK_BLOCK || !d->path)
		return 0;
	snprintf(dir, sizeof dir, "%s", d->path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	r = hostcmd_output(dst, mk, m->fs->timeout_ms, marker, sizeof marker);
	if (r < 0)
		return -1;
	marker[strcspn(marker, "\n")] = '\0';
	if (r != 0 || marker[0] != '/')
		return 0; /* no such directory there, or not writable */
	r = hostcmd_run(src, test, m->fs->timeout_ms);
	if (hostcmd_run(dst, rm, m->fs->timeout_ms) != 0)
		log_warning("%s: %s:%s: not removed", m->desc, m->to->host,
			    marker);
	if (r < 0)
		return -1;
	return r == 0;
}

/* Which disks are shared; 0, or a negative errno (logged). */
static int find_shared(struct move *m)
{
	size_t n = m->g->info.disks.n;

	m->shared = calloc(n + 1, sizeof *m->shared);
	if (!m->shared)
		return move_fail(m, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct disk *d = &m->g->info.disks.v[i];
		int r = disk_shared(m, d);

		if (r < 0)
			return move_fail(m, error_errno(), "%s", error_msg());
		m->shared[i] = r;
		m->nshared += r;
		if (r)
			log_info("%s: disk %s (%s) is shared storage, the same "
				 "file on %s and %s: it stays where it is",
				 m->desc, d->dev, d->path, m->from->host,
				 m->to->host);
	}
	return 0;
}

static int preflight(struct move *m)
{
	int r;

	transfer_phase(m->xfer, "checking");
	r = check_names(m);
	if (r == 0)
		r = check_state(m);
	/* What the new host lacks first: a host device is ENODEV there. */
	if (r == 0 && preflight_xml(m->dst, m->g->xml, m->g->xml_len, true,
				    path_exists, m->dst_host) < 0)
		r = move_fail(m, error_errno(), "%s", error_msg());
	if (r == 0)
		r = check_disks(m);
	if (r == 0)
		r = find_shared(m);
	return r < 0 ? r : check_space(m);
}

/* A shut-off guest whose disks are all shared: defined on the new host as
 * it is, undefined on the old one; nothing copied, nothing deleted. */
static int move_shared(struct move *m)
{
	char *live = NULL, *inactive = NULL, *xml;
	int r = 0;

	transfer_phase(m->xfer, "defining");
	if (vhost_migratable_xml(m->src, m->from->guest, &live, &inactive) < 0)
		return move_fail(m, error_errno(), "%s: %s", m->from->host,
				 error_msg());
	xml = strcmp(m->from->guest, m->to->guest) == 0
		  ? strdup(inactive)
		  : domxml_with_name(inactive, strlen(inactive), m->to->guest);
	if (!xml)
		r = move_fail(m, error_errno() ? error_errno() : ENOMEM, "%s",
			      error_msg());
	else if (vhost_define(m->dst, xml, false) < 0)
		r = move_fail(m, error_errno(), "%s: %s", m->to->host,
			      error_msg());
	free(xml);
	free(live);
	free(inactive);
	if (r == 0) {
		log_info("%s: the guest is defined on %s", m->desc,
			 m->to->host);
		transfer_phase(m->xfer, "removing the source");
		if (vhost_undefine(m->src, m->from->guest) < 0) {
			log_error("%s: the guest is defined on %s and on %s: "
				  "undefining it on %s: %s",
				  m->desc, m->to->host, m->from->host,
				  m->from->host, error_msg());
			transfer_fail(m->xfer, error_errno(), error_msg());
		}
	}
	return r;
}

/* The copy: as cp -r would do it, through the mount's own files. */

static void file_path(const struct fs_path *p, const char *file, char *buf,
		      size_t len)
{
	snprintf(buf, len, "/%s/%s/%s", p->host, p->guest, file);
}

static int copy_disk(struct move *m, const struct disk *d, uint64_t size)
{
	char file[PATH_NAME_MAX + 1], src[3 * (PATH_NAME_MAX + 2)],
	    dst[3 * (PATH_NAME_MAX + 2)];
	struct fuse_file_info in = { .flags = O_RDONLY };
	struct fuse_file_info out = { .flags = O_WRONLY | O_CREAT | O_EXCL };
	uint64_t off = 0;
	int r;

	domxml_file_name(d, file, sizeof file);
	file_path(m->from, file, src, sizeof src);
	file_path(m->to, file, dst, sizeof dst);
	r = files_open(src, &in);
	if (r < 0)
		return r;
	r = files_create(dst, 0600, &out);
	if (r < 0) {
		files_release(src, &in);
		return r;
	}
	while (off < size) {
		ssize_t n;

		if (fuse_interrupted()) {
			r = move_fail(m, EINTR,
				      "interrupted while copying %s (%" PRIu64
				      " of %" PRIu64 " bytes)",
				      file, off, size);
			break;
		}
		n = files_copy_file_range(src, &in, (off_t)off, dst, &out,
					  (off_t)off, size - off, 0);
		if (n < 0) {
			r = (int)n;
			break;
		}
		if (n == 0) {
			r = move_fail(m, EIO,
				      "%s ended at %" PRIu64 " of %" PRIu64
				      " bytes",
				      file, off, size);
			break;
		}
		off += (uint64_t)n;
		transfer_add(m->xfer, (uint64_t)n);
	}
	if (r == 0)
		r = files_truncate(dst, (off_t)size, &out);
	/* Only a whole copy is closed (completed); a failed one is dropped
	 * with its folder. */
	if (r == 0)
		r = files_flush(dst, &out);
	files_release(dst, &out);
	files_release(src, &in);
	return r;
}

/* The served domain.xml (with its origin, for verification) written
 * into the folder: the guest is verified and defined at its close. */
static int copy_xml(struct move *m)
{
	char src[3 * (PATH_NAME_MAX + 2)], dst[3 * (PATH_NAME_MAX + 2)];
	struct fuse_file_info in = { .flags = O_RDONLY };
	struct fuse_file_info out = { .flags = O_WRONLY | O_CREAT | O_EXCL };
	char *xml = NULL, *named = NULL;
	size_t len = 0, cap = 0;
	int r, n;

	file_path(m->from, DOMAIN_XML, src, sizeof src);
	file_path(m->to, DOMAIN_XML, dst, sizeof dst);
	r = files_open(src, &in);
	if (r < 0)
		return r;
	do {
		if (len + 65536 > cap) {
			char *p = realloc(xml, cap = len + 65536);

			if (!p) {
				n = move_fail(m, ENOMEM, "out of memory");
				break;
			}
			xml = p;
		}
		n = files_read(src, xml + len, cap - len, (off_t)len, &in);
		if (n > 0)
			len += (size_t)n;
	} while (n > 0);
	files_release(src, &in);
	if (n < 0) {
		free(xml);
		return n;
	}
	/* Moved under another name, it is still the same guest (same UUID
	 * and MAC addresses): the XML gets the folder's name, so staging
	 * does not make a clone of it. */
	named = domxml_with_name(xml, len, m->to->guest);
	free(xml);
	if (!named)
		return move_fail(m, error_errno(), "%s", error_msg());
	r = files_create(dst, 0600, &out);
	if (r == 0) {
		n = files_write(dst, named, strlen(named), 0, &out);
		r = n < 0 ? n : files_flush(dst, &out);
		files_release(dst, &out);
	}
	free(named);
	if (r == 0 && staged(m->dsh, m->to) != STAGE_DEFINED)
		r = move_fail(m, EIO, "the guest was not defined on %s",
			      m->to->host);
	return r;
}

/* What the move created on the new host goes: the staging folder and
 * its volumes. */
static void drop_staged(struct move *m, int errnum)
{
	struct strvec files = { 0 };

	if (stage_list_files(m->dsh, m->to->guest, &files) < 0)
		log_error("%s: listing the staging folder: %s", m->desc,
			  error_msg());
	for (size_t i = 0; i < files.n; i++)
		if (stage_unlink(m->dsh, m->to->guest, files.v[i]) < 0)
			log_error("%s: removing %s/%s/%s: %s", m->desc,
				  m->to->host, m->to->guest, files.v[i],
				  error_msg());
	strvec_release(&files);
	if (stage_rmdir(m->dsh, m->to->guest) < 0)
		log_error("%s: removing the staging folder: %s", m->desc,
			  error_msg());
	status_guest_end(m->fs->status, m->to->host, m->to->guest, errnum,
			 "the move failed");
}

static int copy_guest(struct move *m)
{
	int r = 0;

	if (stage_mkdir_move(m->dsh, m->to->guest, m->record) < 0)
		return fail_core(m->to, "rename");
	status_guest_begin(m->fs->status, m->to->host, m->to->guest);
	log_info("%s: copying the guest", m->desc);
	transfer_phase(m->xfer, "copying");
	for (size_t i = 0; i < m->g->info.disks.n && r == 0; i++)
		r = copy_disk(m, &m->g->info.disks.v[i],
			      m->g->sizes[i].capacity);
	if (r == 0 && fuse_interrupted())
		r = move_fail(m, EINTR, "interrupted before the define");
	if (r == 0) {
		transfer_phase(m->xfer, "defining");
		r = copy_xml(m);
	}
	if (r < 0)
		drop_staged(m, -r);
	return r;
}

/* The old host: undefine the guest, then delete the volumes it alone
 * used.  Failures here are logged; the move has happened. */
static void delete_source_volumes(struct move *m);

static void remove_source(struct move *m)
{
	const char *host = m->from->host;

	transfer_phase(m->xfer, "removing the source");
	if (vhost_undefine(m->src, m->from->guest) < 0) {
		log_error("%s: the guest is defined on %s and on %s: "
			  "undefining it on %s: %s",
			  m->desc, m->to->host, host, host, error_msg());
		transfer_fail(m->xfer, error_errno(), error_msg());
		return;
	}
	delete_source_volumes(m);
}

/* The volumes the guest alone used on the old host, once it left it. */
static void delete_source_volumes(struct move *m)
{
	struct strvec in_use = { 0 };
	const char *host = m->from->host;

	if (m->keep) {
		log_info("%s: the guest's volumes stay on %s (keep_source)",
			 m->desc, host);
		return;
	}
	if (vhost_paths_in_use(m->src, m->from->guest, &in_use) < 0) {
		log_error("%s: the guest's volumes stay on %s: %s", m->desc,
			  host, error_msg());
		transfer_fail(m->xfer, error_errno(), error_msg());
		return;
	}
	for (size_t i = 0; i < m->g->info.disks.n; i++) {
		const struct disk *d = &m->g->info.disks.v[i];
		int r;

		if (m->shared && m->shared[i])
			continue; /* the guest's disk on the new host too */
		if (strvec_find(&in_use, d->path) >= 0) {
			log_info("%s: %s:%s stays: another guest or volume "
				 "uses it",
				 m->desc, host, d->path);
			continue;
		}
		r = vhost_vol_delete_path(m->src, d->path);
		if (r < 0) {
			log_error("%s: %s:%s stays: %s", m->desc, host, d->path,
				  error_msg());
			transfer_fail(m->xfer, error_errno(), error_msg());
		} else if (r == 0) {
			log_info("%s: %s:%s stays: not a volume of a pool",
				 m->desc, host, d->path);
		} else {
			log_info("%s: %s:%s deleted", m->desc, host, d->path);
		}
	}
	strvec_release(&in_use);
}

/* A live move: the target's volumes made here at the disks' very sizes,
 * then libvirt migrates memory and disks through forwards of our own. */

/* How often a live move looks at its progress and at an interrupt. */
#define LIVE_POLL_MS 200

/* The target's volumes, one per listed disk, in a staging folder (so
 * that they are recorded, and removed if the move fails).  A block pool
 * holds raw data: a qcow2 disk arrives raw there. */
static int make_volumes(struct move *m, struct rewrite_disk *rd, char **paths,
			char (*names)[PATH_NAME_MAX + 1])
{
	int kind = vhost_pool_kind(m->dst);

	if (kind < 0)
		return move_fail(m, error_errno(), "%s: %s", m->to->host,
				 error_msg());
	if (stage_mkdir_move(m->dsh, m->to->guest, m->record) < 0)
		return fail_core(m->to, "rename");
	status_guest_begin(m->fs->status, m->to->host, m->to->guest);
	for (size_t i = 0; i < m->g->info.disks.n; i++) {
		const struct disk *d = &m->g->info.disks.v[i];
		const char *fmt = kind == POOL_BLOCKS ? "raw" : d->format;

		if (m->shared[i]) { /* stays where it is */
			rd[i] = (struct rewrite_disk){
				.dev = d->dev,
				.path = d->path,
				.format = d->format,
				.block = d->source_type == DISK_BLOCK,
			};
			continue;
		}
		snprintf(names[i], PATH_NAME_MAX + 1, "%s.%s", d->dev, fmt);
		if (strcmp(fmt, d->format) != 0)
			log_info("%s: disk %s is stored %s on %s (its pool "
				 "holds raw data only), %s on %s",
				 m->desc, d->dev, fmt, m->to->host, d->format,
				 m->from->host);
		/* Not EINVAL, which mv reads as "into itself". */
		if (stage_add_volume(m->dsh, m->to->guest, names[i],
				     m->g->sizes[i].capacity, &paths[i]) < 0)
			return move_fail(m,
					 error_errno() == EINVAL
					     ? EMEDIUMTYPE
					     : error_errno(),
					 "%s/%s/%s: %s", m->to->host,
					 m->to->guest, names[i], error_msg());
		rd[i] = (struct rewrite_disk){ .dev = d->dev,
					       .path = paths[i],
					       .format = fmt,
					       .block = kind == POOL_BLOCKS };
	}
	return 0;
}

/* The guest's XML on the target: its disks on the new volumes, media the
 * target lacks ejected, under its name there (the same guest: same UUID
 * and MAC addresses).  *out malloc'd. */
static int target_xml(struct move *m, const char *xml,
		      const struct rewrite_disk *rd, char **out)
{
	struct rewrite_spec spec = {
		.name = m->from->guest,
		.disks = rd,
		.ndisks = m->g->info.disks.n,
		.media_exists = path_exists,
		.opaque = m->dst_host,
	};
	int cloned;
	char *x = rewrite_domain(xml, strlen(xml), &spec, &cloned);

	if (x && strcmp(m->from->guest, m->to->guest) != 0) {
		char *named = domxml_with_name(x, strlen(x), m->to->guest);

		free(x);
		x = named;
	}
	*out = x;
	return x ? 0 : move_fail(m, error_errno(), "%s", error_msg());
}

/* Run the migration, showing its progress, until it ends or the caller
 * is interrupted (then it is aborted).  0 or -1 with error_set(). */
static int migrate(struct move *m, const struct migrate_params *p)
{
	struct migrate_progress pr = { 0 };
	struct vmigration *mig =
	    vhost_migrate_start(m->src, m->from->guest, m->dst, p);
	int64_t t0 = now_ms();
	bool aborted = false;
	int r;

	if (!mig)
		return -1;
	while (vmigration_progress(mig, &pr)) {
		transfer_set_parts(m->xfer, pr.disk_done, pr.disk_total,
				   pr.memory_done, pr.memory_total);
		transfer_phase(m->xfer, pr.memory_total ? "copying memory"
							: "copying disks");
		if (!aborted && fuse_interrupted()) {
			log_info("%s: interrupted: aborting the migration",
				 m->desc);
			vmigration_abort(mig);
			aborted = true;
		}
		nanosleep(&(struct timespec){ 0, LIVE_POLL_MS * 1000000L },
			  NULL);
	}
	r = vmigration_finish(mig);
	if (r == 0)
		log_info("%s: migrated in %.1f s (disks %" PRIu64
			 " bytes, memory %" PRIu64 " bytes)",
			 m->desc, (double)(now_ms() - t0) / 1000, pr.disk_done,
			 pr.memory_done);
	return r;
}

static int move_live(struct move *m)
{
	size_t n = m->g->info.disks.n;
	struct rewrite_disk *rd = calloc(n + 1, sizeof *rd);
	char **paths = calloc(n + 1, sizeof *paths);
	char(*names)[PATH_NAME_MAX + 1] = calloc(n + 1, sizeof *names);
	const char **devs = calloc(n + 1, sizeof *devs);
	char *live = NULL, *inactive = NULL, *dest = NULL, *persist = NULL;
	char dir[128], uri[192], disks_uri[192];
	static const char *const socks[] = { "mig.sock", "nbd.sock" };
	const struct host_config *sc = vhost_config(m->src);
	const struct host_config *dc = vhost_config(m->dst);
	struct forwards *fw = NULL;
	bool staged = false;
	size_t ncopy = 0;
	uint64_t nonce;
	int r;

	if (!rd || !paths || !names || !devs) {
		r = move_fail(m, ENOMEM, "out of memory");
		goto out;
	}
	r = preflight(m);
	if (r < 0)
		goto out;
	transfer_phase(m->xfer, "preparing");
	staged = true;
	r = make_volumes(m, rd, paths, names);
	if (r == 0 &&
	    vhost_migratable_xml(m->src, m->from->guest, &live, &inactive) < 0)
		r = move_fail(m, error_errno(), "%s: %s", m->from->host,
			      error_msg());
	if (r == 0)
		r = target_xml(m, live, rd, &dest);
	if (r == 0)
		r = target_xml(m, inactive, rd, &persist);
	if (r < 0)
		goto out;
	/* The streams' sockets: a fresh directory nobody can guess. */
	if (getrandom(&nonce, sizeof nonce, 0) != sizeof nonce)
		nonce = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
	snprintf(dir, sizeof dir, "%s/move-%016" PRIx64, m->fs->run_dir, nonce);
	/* Host to host when the target says how others reach it. */
	fw = forwards_start(sc->shell.v, dc->shell.v,
			    dc->reach.n ? dc->reach.v : NULL, dir, socks, 2,
			    m->fs->timeout_ms);
	if (!fw && dc->reach.n && dc->reach_fallback &&
	    error_errno() == EHOSTUNREACH) {
		log_warning("%s/%s: its streams go through this machine: %s "
			    "cannot reach %s directly: %s (the hosts file "
			    "allows it: reach_fallback = yes)",
			    m->from->host, m->from->guest, m->from->host,
			    m->to->host, error_msg());
		fw = forwards_start(sc->shell.v, dc->shell.v, NULL, dir, socks,
				    2, m->fs->timeout_ms);
	} else if (fw && dc->reach.n) {
		log_info("%s/%s: its streams go directly from %s to %s "
			 "(%s's reach)",
			 m->from->host, m->from->guest, m->from->host,
			 m->to->host, m->to->host);
	}
	if (!fw) {
		if (error_errno() == EHOSTUNREACH && dc->reach.n)
			error_prefix("%s cannot reach %s (%s's reach)",
				     m->from->host, m->to->host, m->to->host);
		r = move_fail(m, error_errno(), "%s", error_msg());
		goto out;
	}
	snprintf(uri, sizeof uri, "unix://%s/%s", dir, socks[0]);
	snprintf(disks_uri, sizeof disks_uri, "unix://%s/%s", dir, socks[1]);
	for (size_t i = 0; i < n; i++) {
		const char *dev = m->g->info.disks.v[i].dev;
		char cache[32] = "";

		if (!m->shared[i]) {
			devs[ncopy++] = dev;
			continue;
		}
		/* Both QEMUs open a shared disk during the switch-over: only
		 * a cache that keeps nothing of it in the host is safe. */
		if (domxml_disk_cache(live, strlen(live), dev, cache,
				      sizeof cache) < 0 ||
		    (strcmp(cache, "none") != 0 &&
		     strcmp(cache, "directsync") != 0)) {
			r = move_fail(m, EMEDIUMTYPE,
				      "disk %s is shared storage with cache "
				      "mode '%s': a live move needs "
				      "cache='none' or 'directsync' for it",
				      dev, *cache ? cache : "default");
			goto out;
		}
	}
	log_info("%s: migrating the running guest, %zu disk(s) copied, %zu "
		 "shared",
		 m->desc, ncopy, m->nshared);
	if (migrate(m, &(struct migrate_params){
			   .dest_xml = dest,
			   .persist_xml = persist,
			   .disks = devs,
			   .ndisks = ncopy,
			   .uri = uri,
			   .disks_uri = disks_uri,
			   .dest_name = strcmp(m->from->guest, m->to->guest)
					    ? m->to->guest
					    : NULL,
			   .shared_checked = m->nshared > 0,
		       }) < 0)
		r = move_fail(m, error_errno(), "%s", error_msg());
out:
	forwards_stop(fw);
	if (r == 0) {
		stage_adopt(m->dsh, m->to->guest);
		status_guest_end(m->fs->status, m->to->host, m->to->guest, 0,
				 NULL);
		log_info("%s: the guest runs on %s", m->desc, m->to->host);
		transfer_phase(m->xfer, "removing the source");
		delete_source_volumes(m);
		stage_move_done(m->dsh, m->to->guest);
	} else if (staged) {
		drop_staged(m, -r);
	}
	for (size_t i = 0; paths && i < n; i++)
		free(paths[i]);
	free(paths);
	free(rd);
	free(names);
	free(devs);
	free(live);
	free(inactive);
	free(dest);
	free(persist);
	return r;
}

static int move_offline(struct move *m)
{
	int r = preflight(m);

	if (r < 0)
		return r;
	if (m->nshared == m->g->info.disks.n)
		return move_shared(m);
	if (m->nshared)
		return move_fail(m, EMEDIUMTYPE,
				 "some of the guest's disks are shared "
				 "storage, some not: a shut-off guest moves "
				 "with all of its disks copied or none");
	r = copy_guest(m);
	if (r == 0) {
		log_info("%s: the guest is defined on %s", m->desc,
			 m->to->host);
		remove_source(m);
		stage_move_done(m->dsh, m->to->guest);
	}
	return r;
}

/* The move, with its line in .status. */
static int move_run(struct move *m)
{
	int64_t t0 = now_ms();
	uint64_t total = 0;
	int r;

	for (size_t i = 0; i < m->g->info.disks.n; i++)
		total += m->g->sizes[i].capacity;
	m->xfer = status_begin(m->fs->status, TRANSFER_MOVE, m->from->host,
			       m->from->guest, NULL, total);
	r = m->state.active ? move_live(m) : move_offline(m);
	if (r == 0)
		log_info("%s: moved in %.1f s", m->desc,
			 (double)(now_ms() - t0) / 1000);
	transfer_end(m->xfer);
	return r;
}

/* HOSTA/GUEST -> HOSTA/NEW. */
static int rename_guest(struct move *m)
{
	struct stage_stat ss;
	int r;

	if (!stage_guest_name_ok(m->to->guest))
		return fail(m->to, "rename", EINVAL,
			    "not a guest name: 1-200 of [A-Za-z0-9._+-], "
			    "not starting with '.', '-' or '+'");
	stage_stat(m->dsh, m->to->guest, NULL, &ss);
	r = ss.kind == STAGE_DIR ? 1 : vhost_guest_exists(m->dst, m->to->guest);
	if (r < 0)
		return fail_core(m->from, "rename");
	if (r)
		return fail(m->to, "rename", EEXIST,
			    "the host has a guest or staging folder of that "
			    "name");
	if (m->state.active)
		return fail(m->from, "rename", EBUSY,
			    "the guest is running: only a shut-off guest "
			    "can be renamed");
	if (vhost_rename(m->src, m->from->guest, m->to->guest) < 0)
		return fail_core(m->from, "rename");
	log_info("%s: renamed", m->desc);
	return 0;
}

static struct host *host_of(struct kvmmigfs *fs, struct vhost *vh)
{
	for (size_t i = 0; i < fs->hosts.n; i++)
		if (fs->vhosts[i] == vh)
			return fs->hostifs[i];
	return NULL;
}

int move_guest(const struct fs_path *from, struct vhost *vh,
	       struct stage_host *sh, const struct fs_path *to,
	       struct vhost *vh2, struct stage_host *sh2, unsigned int flags)
{
	struct move m = {
		.fs = fs_get(),
		.from = from,
		.to = to,
		.src = vh,
		.dst = vh2,
		.dsh = sh2,
	};
	int r;

	if (flags & RENAME_EXCHANGE)
		return fail(from, "rename", EINVAL,
			    "guests cannot swap places (RENAME_EXCHANGE)");
	if (flags & ~RENAME_NOREPLACE)
		return fail(from, "rename", EINVAL, "unknown rename flags");
	if (staged(sh, from) == STAGE_DIR)
		return fail(from, "rename", EPERM,
			    "a staging folder cannot move; remove it and copy "
			    "again");
	snprintf(m.desc, sizeof m.desc, "%s/%s -> %s/%s", from->host,
		 from->guest, to->host, to->guest);
	m.keep = m.fs->keep_source;
	snprintf(m.record, sizeof m.record, "%s %s%s", from->host, from->guest,
		 m.keep ? " keep" : "");
	m.dst_host = host_of(m.fs, vh2);
	vhost_invalidate(vh);
	if (vhost_guest_state(vh, from->guest, &m.state) < 0)
		return fail_core(from, "rename");
	if (vh == vh2)
		return rename_guest(&m);
	m.g = vhost_guest(vh, from->guest);
	if (!m.g)
		return fail_core(from, "rename");
	log_info("%s: moving the guest (%s)", m.desc,
		 m.state.active ? "running: live" : "shut off");
	r = move_run(&m);
	free(m.shared);
	guest_put(m.g);
	vhost_invalidate(vh);
	vhost_invalidate(vh2);
	return r;
}

/* A daemon died during a move whose guest was defined on its new host:
 * the old host's side is finished here (see move.h). */
void move_recover(void *ctx, const char *host, const char *guest,
		  const char *line)
{
	struct kvmmigfs *fs = ctx;
	struct fs_path from = { .kind = PATH_GUEST },
		       to = { .kind = PATH_GUEST };
	struct move m = { .fs = fs, .from = &from, .to = &to };
	struct guest *g2;
	char keep[8] = "";

	if (sscanf(line, "%255s %255s %7s", from.host, from.guest, keep) < 2) {
		log_warning("%s/%s: a move record names \"%s\": ignored", host,
			    guest, line);
		return;
	}
	snprintf(to.host, sizeof to.host, "%s", host);
	snprintf(to.guest, sizeof to.guest, "%s", guest);
	snprintf(m.desc, sizeof m.desc, "%s/%s -> %s/%s", from.host, from.guest,
		 host, guest);
	m.keep = strcmp(keep, "keep") == 0;
	for (size_t i = 0; i < fs->hosts.n; i++) {
		if (strcmp(fs->hosts.hosts[i].name, from.host) == 0)
			m.src = fs->vhosts[i];
		if (strcmp(fs->hosts.hosts[i].name, host) == 0)
			m.dst = fs->vhosts[i];
	}
	if (!m.src || !m.dst) {
		log_warning("%s: a move record: %s is not in the hosts file "
			    "now: its side is left as it is",
			    m.desc, from.host);
		return;
	}
	vhost_invalidate(m.src);
	m.g = vhost_guest(m.src, from.guest);
	g2 = m.g ? vhost_guest(m.dst, guest) : NULL;
	if (!m.g || !g2) {
		if (!m.g && error_errno() == ENOENT)
			log_info("%s: the move had finished when kvmmigfs "
				 "ended",
				 m.desc);
		else
			log_warning("%s: finishing the move: %s", m.desc,
				    error_msg());
		goto out;
	}
	if (!m.g->info.uuid || !g2->info.uuid ||
	    strcmp(m.g->info.uuid, g2->info.uuid) != 0) {
		log_warning("%s: %s/%s is another guest now (UUID %s, not "
			    "%s): left alone",
			    m.desc, from.host, from.guest,
			    m.g->info.uuid ? m.g->info.uuid : "none",
			    g2->info.uuid ? g2->info.uuid : "none");
		goto out;
	}
	if (vhost_guest_state(m.src, from.guest, &m.state) < 0) {
		log_warning("%s: finishing the move: %s", m.desc, error_msg());
		goto out;
	}
	/* A live move that ended between the new host's start and the old
	 * one's stop leaves the old copy paused: the new one runs. */
	if (m.state.active && !m.state.paused) {
		log_warning("%s: the guest runs on %s and is defined on %s: "
			    "left alone",
			    m.desc, from.host, host);
		goto out;
	}
	if (m.state.active && vhost_destroy(m.src, from.guest) < 0) {
		log_warning("%s: stopping the paused guest on %s: %s", m.desc,
			    from.host, error_msg());
		goto out;
	}
	log_warning("%s: kvmmigfs ended after the guest was defined on %s: "
		    "finishing the move on %s",
		    m.desc, host, from.host);
	/* A disk that is shared storage is the new host's guest's disk. */
	if (find_shared(&m) < 0)
		m.keep = true;
	remove_source(&m);
	free(m.shared);
out:
	if (m.g)
		guest_put(m.g);
	if (g2)
		guest_put(g2);
}
