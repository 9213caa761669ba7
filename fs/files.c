/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Open files.  A FUSE file handle is one of three kinds, each with its own
 * operations (struct file_kind):
 *
 *   xml     domain.xml of a host's own guest: a snapshot taken at open
 *   disk    a disk of a host's own guest, read over NBD; the guest must
 *           stay stopped while it is read
 *   staged  a file of a staging folder (stage.h): written, or domain.xml
 *           read back
 *   status  .status and .status.json (status.h): a snapshot at open
 *
 * A disk read or written is a transfer of the mount's status (status.h),
 * from open to release; the first failure of the handle is its result.
 *
 * copy_file_range from a disk to a staged disk is the copy engine's.
 *
 * Thread model: libfuse may serve one handle on several threads at once.
 * An xml snapshot is immutable; a disk's endpoint locks itself (its extra
 * copy connections are guarded by of->lock); a staged file's handle is
 * staging's (stage.h).  A handle is freed in release, after which the
 * kernel sends nothing more for it.  Lock order: of->lock, then staging's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/clock.h"
#include "../common/error.h"
#include "../nbd/copy.h"
#include "../nbd/endpoint.h"
#include "../nbd/rate.h"
#include "direct.h"
#include "diskcrc.h"
#include "log.h"
#include "ops.h"

/* copy_file_range answers after about this long; cp calls again. */
#define COPY_SLICE_MS 1000
/* How often a disk being read checks that its guest is still stopped. */
#define STARTED_CHECK_MS 1000
/* copy_file_range reads the source over this many connections (each its
 * own ssh, so its own crypto stream). */
#define COPY_CONNECTIONS 2

struct open_file;

/* What each kind does; every function returns a negative errno on
 * failure, logged. */
struct file_kind {
	int (*read)(struct open_file *of, char *buf, size_t size, off_t off);
	off_t (*lseek)(struct open_file *of, off_t off, int whence);
	int (*write)(struct open_file *of, const char *buf, size_t size,
		     off_t off);
	/* close(2) (pid: the closing process): where errors are reported,
	 * since release's are thrown away by the kernel. */
	int (*flush)(struct open_file *of, pid_t pid);
	int (*fsync)(struct open_file *of);
	void (*release)(struct open_file *of);
};

struct open_file {
	const struct file_kind *kind;
	char desc[3 * (PATH_NAME_MAX + 1)]; /* "host/guest/file" */
	struct transfer *xfer;		    /* disk, staged disk; or NULL */
	char *text;			    /* status: the snapshot */
	size_t text_len;
	struct guest *guest;   /* xml: the snapshot read */
	struct stage_open *so; /* staged */
	struct stage_host *sh; /* staged: its folder's */
	struct fs_path where;  /* staged: the file */
	/* disk: the guest must stay stopped (see still_stopped()) */
	struct endpoint *ep;
	struct vhost *vh;
	char guest_name[PATH_NAME_MAX + 1];
	int64_t checked_ms; /* when it was last seen stopped */
	bool started;	    /* it was started while the file was open */
	/* disk: ep and, opened by the first copy_file_range, more
	 * connections to the same disk (guarded by lock) */
	struct endpoint *eps[COPY_CONNECTIONS];
	int neps;
	bool no_more;		   /* opening another failed: keep to those */
	struct endpoint_spec spec; /* strings below */
	char path[4096], format[32];
	/* disk: the CRC of each of its blocks, computed on its host by the
	 * first copy_file_range into a disk being resumed (guarded by
	 * lock); crc_tried: asked for (srcmap.index NULL: it failed) */
	struct crc_map srcmap;
	bool crc_tried, crc_ok;
	/* disk: the direct path's copier of its copy_file_range into
	 * dp_out (lock); direct_off: it could not reach its host, and the
	 * hosts file allows copying through here instead.  staged:
	 * dp_in, the disk whose copier writes it.  The pair of links is
	 * guarded by direct_lock. */
	struct direct *dp;
	struct open_file *dp_out, *dp_in;
	bool direct_off;
	pthread_mutex_t lock;
};

static pthread_mutex_t direct_lock = PTHREAD_MUTEX_INITIALIZER;

static struct open_file *of_get(struct fuse_file_info *fi)
{
	return (struct open_file *)(uintptr_t)fi->fh;
}

/* Log a failure of an open file's operation with the thread's last core
 * error and return -errno. */
static int fail_open(struct open_file *of, const char *op)
{
	int e = error_errno();

	log_error("%s: %s: %s: %s", of->desc, op, strerrorname_np(e),
		  error_msg());
	transfer_fail(of->xfer, e, error_msg());
	if (of->sh) /* staged */
		note_guest_failure(&of->where, op, e, error_msg());
	return -e;
}

/* The same with an errno and cause of our own. */
static int refuse_open(struct open_file *of, const char *op, int e,
		       const char *cause)
{
	log_error("%s: %s: %s: %s", of->desc, op, strerrorname_np(e), cause);
	transfer_fail(of->xfer, e, cause);
	if (of->sh) /* staged */
		note_guest_failure(&of->where, op, e, cause);
	return -e;
}

static int no_write(struct open_file *of, const char *buf, size_t size,
		    off_t off)
{
	(void)buf;
	(void)size;
	(void)off;
	return refuse_open(of, "write", EBADF, "opened read-only");
}

static int nothing(struct open_file *of)
{
	(void)of;
	return 0;
}

/* xml: domain.xml of a host's own guest. */

static int xml_read(struct open_file *of, char *buf, size_t size, off_t off)
{
	const struct guest *g = of->guest;

	if ((size_t)off >= g->xml_len)
		return 0;
	if (size > g->xml_len - (size_t)off)
		size = g->xml_len - (size_t)off;
	memcpy(buf, g->xml + off, size);
	return (int)size;
}

static off_t xml_lseek(struct open_file *of, off_t off, int whence)
{
	if (off < 0 || (size_t)off >= of->guest->xml_len)
		return -ENXIO;
	return whence == SEEK_DATA ? off : (off_t)of->guest->xml_len;
}

static int xml_flush(struct open_file *of, pid_t pid)
{
	(void)of;
	(void)pid;
	return 0;
}

static void xml_release(struct open_file *of)
{
	guest_put(of->guest);
}

/* status: the transfers, as of open. */

static int status_read(struct open_file *of, char *buf, size_t size, off_t off)
{
	if ((size_t)off >= of->text_len)
		return 0;
	if (size > of->text_len - (size_t)off)
		size = of->text_len - (size_t)off;
	memcpy(buf, of->text + off, size);
	return (int)size;
}

static off_t status_lseek(struct open_file *of, off_t off, int whence)
{
	if (off < 0 || (size_t)off >= of->text_len)
		return -ENXIO;
	return whence == SEEK_DATA ? off : (off_t)of->text_len;
}

static void status_release(struct open_file *of)
{
	free(of->text);
}

static const struct file_kind status_kind = {
	.read = status_read,
	.lseek = status_lseek,
	.write = no_write,
	.flush = xml_flush,
	.fsync = nothing,
	.release = status_release,
};

static const struct file_kind xml_kind = {
	.read = xml_read,
	.lseek = xml_lseek,
	.write = no_write,
	.flush = xml_flush,
	.fsync = nothing,
	.release = xml_release,
};

/* disk: a disk of a host's own guest. */

/* A copy must not go on once the guest runs: its disk is changing under
 * the reader.  Checked (uncached) at most every STARTED_CHECK_MS while a
 * disk is read, and at close.  Returns 0 or -EBUSY (sticky), logged. */
static int still_stopped(struct open_file *of, bool now)
{
	struct kvmmigfs *fs = fs_get();
	int64_t t = now_ms();

	/* Several threads may read one file: atomics, no lock. */
	if (__atomic_load_n(&of->started, __ATOMIC_RELAXED))
		return -EBUSY;
	if (fs->allow_running ||
	    (!now && t - __atomic_load_n(&of->checked_ms, __ATOMIC_RELAXED) <
			 STARTED_CHECK_MS))
		return 0;
	__atomic_store_n(&of->checked_ms, t, __ATOMIC_RELAXED);
	if (vhost_guest_active(of->vh, of->guest_name) != 1)
		return 0; /* stopped, or unknown: the reads will say */
	__atomic_store_n(&of->started, true, __ATOMIC_RELAXED);
	return refuse_open(of, "read", EBUSY,
			   "the guest was started while its disk was being "
			   "read: this copy is inconsistent");
}

static int disk_read(struct open_file *of, char *buf, size_t size, off_t off)
{
	ssize_t n;
	int r = still_stopped(of, false);

	if (r < 0)
		return r;
	n = endpoint_pread(of->ep, buf, size, (uint64_t)off);
	if (n < 0)
		return fail_open(of, "read");
	transfer_add(of->xfer, (uint64_t)n);
	return (int)n;
}

static off_t disk_lseek(struct open_file *of, off_t off, int whence)
{
	int64_t r = endpoint_seek(of->ep, off, whence);

	if (r >= 0)
		return (off_t)r;
	if (error_errno() == ENXIO) /* past the last data or hole */
		return -ENXIO;
	return fail_open(of, "lseek");
}

static int disk_flush(struct open_file *of, pid_t pid)
{
	(void)pid;
	return still_stopped(of, true);
}

static void direct_unlink(struct open_file *in);

static void disk_release(struct open_file *of)
{
	pthread_mutex_lock(&of->lock);
	direct_unlink(of);
	pthread_mutex_unlock(&of->lock);
	for (int i = 0; i < of->neps; i++)
		endpoint_close(of->eps[i]);
	crc_map_free(&of->srcmap);
	pthread_mutex_destroy(&of->lock);
}

static const struct file_kind disk_kind = {
	.read = disk_read,
	.lseek = disk_lseek,
	.write = no_write,
	.flush = disk_flush,
	.fsync = nothing,
	.release = disk_release,
};

/* staged: a file of a staging folder. */

static int staged_read(struct open_file *of, char *buf, size_t size, off_t off)
{
	ssize_t n = stage_read(of->so, buf, size, (uint64_t)off);

	return n < 0 ? fail_open(of, "read") : (int)n;
}

/* A staged file has no data map to ask: ENXIO, as before there was one
 * (an answer, not a failure: nothing logged). */
static off_t staged_lseek(struct open_file *of, off_t off, int whence)
{
	(void)of;
	(void)off;
	(void)whence;
	return -ENXIO;
}

static int staged_write(struct open_file *of, const char *buf, size_t size,
			off_t off)
{
	ssize_t n = stage_write(of->so, buf, size, (uint64_t)off);

	if (n < 0)
		return fail_open(of, "write");
	transfer_add(of->xfer, (uint64_t)n);
	return (int)n;
}

static void direct_stop_writer(struct open_file *out);

static int staged_flush(struct open_file *of, pid_t pid)
{
	int r;

	direct_stop_writer(of);
	transfer_phase(of->xfer, "completing");
	r = stage_flush(of->so, pid);
	/* This close may have defined the guest, or failed it. */
	guest_progress(of->sh, &of->where, r);
	if (r < 0)
		r = fail_open(of, "close");
	transfer_phase(of->xfer, "copying");
	return r;
}

static int staged_fsync(struct open_file *of)
{
	return stage_fsync(of->so) < 0 ? fail_open(of, "fsync") : 0;
}

static void staged_release(struct open_file *of)
{
	direct_stop_writer(of);
	stage_release(of->so);
}

static const struct file_kind staged_kind = {
	.read = staged_read,
	.lseek = staged_lseek,
	.write = staged_write,
	.flush = staged_flush,
	.fsync = staged_fsync,
	.release = staged_release,
};

/* Opening. */

static int open_disk(struct kvmmigfs *fs, const struct fs_path *p,
		     struct vhost *vh, const struct disk *d, uint64_t data,
		     struct open_file *of)
{
	const struct host_config *hc = vhost_config(vh);
	int active = vhost_guest_active(vh, p->guest);
	struct endpoint_spec spec = {
		.shell = hc->shell.v,
		.path = d->path,
		.format = d->format,
		.readonly = true,
		.shared = fs->allow_running,
		.filter = fs->zeroscan,
		.desc = of->desc,
		.timeout_ms = fs->timeout_ms,
		.rate = vhost_rate(vh),
	};

	if (active < 0)
		return fail_core(p, "open");
	if (active && !fs->allow_running)
		return fail(p, "open", EBUSY,
			    "the guest is running, so its disk is changing "
			    "(shut it down, or mount with -o allow_running)");
	of->ep = endpoint_open(&spec);
	if (!of->ep)
		return fail_core(p, "open");
	of->kind = &disk_kind;
	of->eps[0] = of->ep;
	of->neps = 1;
	snprintf(of->path, sizeof of->path, "%s", d->path);
	snprintf(of->format, sizeof of->format, "%s", d->format);
	of->spec = spec;
	of->spec.path = of->path;
	of->spec.format = of->format;
	of->spec.desc = of->desc;
	pthread_mutex_init(&of->lock, NULL);
	of->vh = vh;
	snprintf(of->guest_name, sizeof of->guest_name, "%s", p->guest);
	of->checked_ms = now_ms();
	of->xfer = status_begin(fs->status, TRANSFER_READ, p->host, p->guest,
				p->file, data);
	log_debug("%s: opened: %s", of->desc, endpoint_command(of->ep));
	return 0;
}

/* A handle for a staged file so (NULL: staging said why). */
static int open_staged(const struct fs_path *p, struct stage_host *sh,
		       struct stage_open *so, struct fuse_file_info *fi,
		       const char *op)
{
	struct open_file *of;

	if (!so)
		return fail_core(p, op);
	of = calloc(1, sizeof *of);
	if (!of) {
		stage_flush(so, 0);
		stage_release(so);
		return fail(p, op, ENOMEM, "out of memory");
	}
	of->kind = &staged_kind;
	of->so = so;
	of->sh = sh;
	of->where = *p;
	describe(p, of->desc, sizeof of->desc);
	if (stage_is_disk(so) && stage_is_writer(so)) {
		char final[PATH_NAME_MAX + 1];

		if (stage_final_name(p->file, final, sizeof final) < 0)
			snprintf(final, sizeof final, "%s", p->file);
		of->xfer =
		    status_begin(fs_get()->status, TRANSFER_WRITE, p->host,
				 p->guest, final, stage_expected_bytes(so));
	}
	fi->direct_io = 1; /* every write reaches the volume in order */
	fi->fh = (uint64_t)(uintptr_t)of;
	return 0;
}

int files_open(const char *path, struct fuse_file_info *fi)
{
	struct kvmmigfs *fs = fs_get();
	struct open_file *of;
	struct fs_path p;
	struct vhost *vh;
	struct stage_host *sh;
	struct guest *g;
	const struct disk *d = NULL;
	bool json;
	int r;

	error_clear();
	if (path_parse(path, &p) == 0 && status_path(&p, &json)) {
		of = calloc(1, sizeof *of);
		if (of)
			of->text =
			    status_render(fs->status, json,
					  p.kind == PATH_FILE ? p.host : NULL,
					  p.kind == PATH_FILE ? p.guest : NULL,
					  &of->text_len);
		if (!of || !of->text) {
			free(of);
			return fail(&p, "open", ENOMEM, "out of memory");
		}
		of->kind = &status_kind;
		describe(&p, of->desc, sizeof of->desc);
		fi->direct_io = 1;
		fi->fh = (uint64_t)(uintptr_t)of;
		return 0;
	}
	r = locate(path, &p, &vh, &sh, "open");
	if (r < 0)
		return r;
	if (p.kind != PATH_FILE)
		return -EISDIR;
	if (staged(sh, &p) == STAGE_DIR)
		return open_staged(&p, sh,
				   stage_open(sh, p.guest, p.file, fi->flags),
				   fi, "open");
	g = vhost_guest(vh, p.guest);
	if (!g)
		return fail_core(&p, "open");
	if (strcmp(p.file, DOMAIN_XML) != 0 &&
	    !(d = domxml_find_file(&g->info.disks, p.file))) {
		guest_put(g);
		return -ENOENT;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		guest_put(g);
		return fail(&p, "open", EACCES,
			    "an existing guest's files are read-only");
	}
	of = calloc(1, sizeof *of);
	if (!of) {
		guest_put(g);
		return fail(&p, "open", ENOMEM, "out of memory");
	}
	describe(&p, of->desc, sizeof of->desc);
	if (!d) {
		of->kind = &xml_kind;
		of->guest = g;
	} else {
		r = open_disk(fs, &p, vh, d,
			      g->sizes[d - g->info.disks.v].allocation, of);
		guest_put(g);
		if (r < 0) {
			free(of);
			return r;
		}
	}
	/* Reads go straight to the caller's buffer: a disk is read once,
	 * caching it would only cost a copy; the XML may change between
	 * opens. */
	fi->direct_io = 1;
	fi->fh = (uint64_t)(uintptr_t)of;
	return 0;
}

int files_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct fs_path p;
	struct vhost *vh;
	struct stage_host *sh;
	int r;

	(void)mode;
	error_clear();
	r = locate(path, &p, &vh, &sh, "create");
	if (r < 0)
		return r;
	if (p.kind == PATH_GUEST)
		return fail(&p, "create", EPERM,
			    "a host folder holds guest folders only");
	if (p.kind != PATH_FILE)
		return refuse(&p, vh, "create", EACCES);
	if (staged(sh, &p) != STAGE_DIR)
		return refuse(&p, vh, "create", EACCES);
	return open_staged(&p, sh, stage_create(sh, p.guest, p.file), fi,
			   "create");
}

/* The operations on an open file: its kind's. */

int files_read(const char *path, char *buf, size_t size, off_t off,
	       struct fuse_file_info *fi)
{
	struct open_file *of = of_get(fi);

	(void)path;
	error_clear();
	if (off < 0)
		return refuse_open(of, "read", EINVAL, "negative offset");
	return of->kind->read(of, buf, size, off);
}

int files_write(const char *path, const char *buf, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	struct open_file *of = of_get(fi);

	(void)path;
	error_clear();
	if (off < 0)
		return refuse_open(of, "write", EINVAL, "negative offset");
	return of->kind->write(of, buf, size, off);
}

off_t files_lseek(const char *path, off_t off, int whence,
		  struct fuse_file_info *fi)
{
	struct open_file *of = of_get(fi);

	(void)path;
	error_clear();
	return of->kind->lseek(of, off, whence);
}

int files_flush(const char *path, struct fuse_file_info *fi)
{
	struct open_file *of = of_get(fi);

	(void)path;
	error_clear();
	return of->kind->flush(of, fuse_get_context()->pid);
}

int files_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct open_file *of = of_get(fi);

	(void)path;
	(void)datasync;
	error_clear();
	return of->kind->fsync(of);
}

int files_release(const char *path, struct fuse_file_info *fi)
{
	struct open_file *of = of_get(fi);

	(void)path;
	of->kind->release(of);
	transfer_end(of->xfer);
	free(of);
	return 0;
}

/* truncate(2) by name, or ftruncate(2) of an open staged file. */
int files_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct open_file *of = fi ? of_get(fi) : NULL;
	struct fs_path p;
	struct vhost *vh;
	struct stage_host *sh;
	int r;

	error_clear();
	r = locate(path, &p, &vh, &sh, "truncate");
	if (r < 0)
		return r;
	if (size < 0)
		return fail(&p, "truncate", EINVAL, "negative size");
	if (p.kind != PATH_FILE || staged(sh, &p) != STAGE_DIR)
		return refuse(&p, vh, "truncate", EACCES);
	if (stage_truncate(sh, p.guest, p.file,
			   of && of->kind == &staged_kind ? of->so : NULL,
			   (uint64_t)size) < 0)
		return fail_core(&p, "truncate");
	return 0;
}

/* The copy engine's target: a staged disk (its transfer counts the data,
 * and the source's). */
struct sink_ctx {
	struct open_file *in, *out;
};

static int sink_write(void *opaque, const void *buf, size_t count,
		      uint64_t offset)
{
	struct sink_ctx *c = opaque;

	if (stage_write(c->out->so, buf, count, offset) < 0)
		return -1;
	transfer_add(c->in->xfer, count);
	transfer_add(c->out->xfer, count);
	return 0;
}

static int sink_zero(void *opaque, uint64_t count, uint64_t offset)
{
	struct sink_ctx *c = opaque;

	return stage_write_zeros(c->out->so, count, offset);
}

/* Does the target hold source block i (a whole block of data) already?
 * Holes are left to the copy engine, which skips them anyway. */
static bool same(struct open_file *in, struct open_file *out, uint64_t i)
{
	return crc_block_len(&in->srcmap, i) == CRC_BLOCK &&
	       crc_block_is_data(&in->srcmap, i) &&
	       stage_resume_has(out->so, i, crc_block(&in->srcmap, i));
}

/* Resuming: the whole blocks at the start of [off_in, off_in + *len) that
 * the target volume holds already (the same CRC as the source's, both
 * computed on their hosts) are neither read nor sent: counted as copied.
 * *len becomes what is left to copy, up to the next such block.  Returns
 * the bytes skipped, or -1.  in->lock held. */
static int64_t skip_resumed(struct open_file *in, struct open_file *out,
			    uint64_t off_in, uint64_t off_out, size_t *len)
{
	const struct host_config *hc = vhost_config(in->vh);
	uint64_t at = 0, i;

	if (off_in != off_out || off_in % CRC_BLOCK || !stage_resuming(out->so))
		return 0;
	if (!in->crc_tried) {
		in->crc_tried = true;
		if (disk_crc_map(
			&(struct disk_crc_spec){
			    .host = hc->name,
			    .shell = hc->shell.v,
			    .tool = fs_get()->crc_tool,
			    .filter = fs_get()->zeroscan,
			    .path = in->path,
			    .format = in->format,
			    .shared = in->spec.shared,
			    .desc = in->desc,
			    .timeout_ms = fs_get()->timeout_ms,
			    .rate = vhost_rate(in->vh),
			},
			&in->srcmap) == 0)
			in->crc_ok = true;
		else
			log_warning("%s: its blocks are read again in full: "
				    "no CRC of them (%s)",
				    in->desc, error_msg());
	}
	if (!in->crc_ok)
		return 0;
	/* The matching blocks first. */
	for (i = off_in / CRC_BLOCK; at + CRC_BLOCK <= *len && same(in, out, i);
	     i++)
		at += CRC_BLOCK;
	if (at && stage_resume_confirm(out->so, off_out, at) < 0)
		return -1;
	transfer_add(in->xfer, at);
	transfer_add(out->xfer, at);
	/* Then the blocks to copy, up to the next one that matches. */
	{
		uint64_t end = at, j = i;

		while (end < *len) {
			uint64_t step =
			    *len - end < CRC_BLOCK ? *len - end : CRC_BLOCK;

			if (end > at && step == CRC_BLOCK && same(in, out, j))
				break;
			end += step;
			j++;
		}
		*len = (size_t)(end - at);
	}
	return (int64_t)at;
}

/* The direct path (direct.h). */

/* Stop in's copier, if any, and forget its target.  in->lock held. */
static void direct_unlink(struct open_file *in)
{
	pthread_mutex_lock(&direct_lock);
	if (in->dp_out)
		in->dp_out->dp_in = NULL;
	in->dp_out = NULL;
	pthread_mutex_unlock(&direct_lock);
	direct_stop(in->dp);
	in->dp = NULL;
}

/* A copier still writing out (its writer closes it, say after Ctrl-C)
 * is stopped first. */
static void direct_stop_writer(struct open_file *out)
{
	struct open_file *in;

	pthread_mutex_lock(&direct_lock);
	in = out->dp_in;
	pthread_mutex_unlock(&direct_lock);
	if (!in)
		return;
	pthread_mutex_lock(&in->lock);
	pthread_mutex_lock(&direct_lock);
	if (out->dp_in != in) { /* it ended meanwhile */
		pthread_mutex_unlock(&direct_lock);
		pthread_mutex_unlock(&in->lock);
		return;
	}
	pthread_mutex_unlock(&direct_lock);
	direct_unlink(in);
	pthread_mutex_unlock(&in->lock);
}

static struct vhost *vhost_named(const char *name)
{
	struct kvmmigfs *fs = fs_get();

	for (size_t i = 0; i < fs->hosts.n; i++)
		if (strcmp(fs->hosts.hosts[i].name, name) == 0)
			return fs->vhosts[i];
	return NULL;
}

/* A host's reach command as one line, for messages. */
static const char *reach_text(const struct host_config *hc, char *buf,
			      size_t len)
{
	size_t at = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < hc->reach.n && at < len; i++)
		at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? " " : "",
				       hc->reach.v[i]);
	return buf;
}

static int direct_data(void *opaque, uint64_t offset, uint64_t length)
{
	struct open_file *out = opaque;

	return stage_direct_data(out->so, offset, length);
}

/* Copy [off, off + len) of in to out by the copier on out's host, for
 * about a slice: the bytes copied (> 0; 0 at the end of the source), -1
 * with error_set().  The copier copies from off to the end of the source
 * whatever len is: the next calls (off moving on) find it running, or
 * done already, and wait for it.  in->lock held. */
static int64_t direct_copy(struct open_file *in, struct open_file *out,
			   struct vhost *dst, uint64_t off, uint64_t len)
{
	struct kvmmigfs *fs = fs_get();
	uint64_t size = endpoint_size(in->ep), done = 0;
	int r;

	if (off >= size)
		return 0;
	if (len > size - off)
		len = size - off;
	if (in->dp && (in->dp_out != out || off < direct_offset(in->dp) ||
		       off >= direct_end(in->dp)))
		direct_unlink(in);
	if (!in->dp) {
		const struct host_config *src = vhost_config(in->vh),
					 *hc = vhost_config(dst);
		uint64_t a = rate_limit(vhost_rate(in->vh)),
			 b = rate_limit(vhost_rate(dst));
		struct stage_direct sd;
		char rtext[512];

		if (stage_direct_begin(out->so, off, size - off, &sd) < 0)
			return -1;
		in->dp = direct_start(&(struct direct_spec){
		    .shell = hc->shell.v,
		    .reach = src->reach.v,
		    .tool = fs->copy_tool,
		    .src_path = in->path,
		    .src_format = in->format,
		    .filter = fs->zeroscan,
		    .shared = in->spec.shared,
		    .dst_path = sd.path,
		    .dst_format = sd.format,
		    .zero = sd.dirty,
		    .rate = a && (!b || a < b) ? a : b,
		    .timeout_ms = fs->timeout_ms,
		    .offset = off,
		    .length = size - off,
		});
		if (!in->dp)
			return -1;
		pthread_mutex_lock(&direct_lock);
		in->dp_out = out;
		out->dp_in = in;
		pthread_mutex_unlock(&direct_lock);
		log_info("%s: copied by %s, which reaches %s directly (reach "
			 "= %s)",
			 out->desc, hc->name, src->name,
			 reach_text(src, rtext, sizeof rtext));
	}
	/* The copier may be past off already (an earlier call took less,
	 * or was interrupted): what lies before off was counted then. */
	for (;;) {
		uint64_t from = off - direct_offset(in->dp), n;

		r = direct_poll(in->dp, COPY_SLICE_MS, direct_data, out, &done);
		if (r < 0)
			break;
		if (done > from) {
			n = done - from < len ? done - from : len;
			stage_direct_upto(out->so, off + n);
			transfer_add(in->xfer, n);
			transfer_add(out->xfer, n);
			if (r == 1 && off + n == direct_end(in->dp))
				direct_unlink(in);
			return (int64_t)n;
		}
		if (r == 1) { /* ended with nothing more: the source ends */
			direct_unlink(in);
			return 0;
		}
		if (fuse_interrupted()) {
			error_set(EINTR, "interrupted");
			return -1;
		}
	}
	{
		int e = error_errno();
		char msg[600];

		snprintf(msg, sizeof msg, "%s", error_msg());
		direct_unlink(in);
		error_set(e, "%s", msg);
		return -1;
	}
}

/* copy_file_range from a disk of the mount to a disk being staged: the
 * copy engine moves it host to host, holes and zero extents unread.  Each
 * call does about a second's work (the caller loops), so an interrupted
 * cp stops promptly.  Other pairs: EOPNOTSUPP, and the kernel copies
 * through read and write. */
ssize_t files_copy_file_range(const char *path_in, struct fuse_file_info *fi_in,
			      off_t off_in, const char *path_out,
			      struct fuse_file_info *fi_out, off_t off_out,
			      size_t len, int flags)
{
	struct open_file *in = of_get(fi_in), *out = of_get(fi_out);
	struct copy_sink sink = { .write = sink_write, .zero = sink_zero };
	struct sink_ctx ctx = { in, out };
	int64_t n, skipped;
	int r;

	(void)path_in;
	(void)path_out;
	error_clear();
	if (in->kind != &disk_kind || out->kind != &staged_kind ||
	    !stage_is_disk(out->so))
		return -EOPNOTSUPP; /* not an error: the kernel copies */
	r = still_stopped(in, false);
	if (r < 0)
		return r;
	if (flags)
		return refuse_open(out, "copy_file_range", EINVAL,
				   "flags not supported");
	if (off_in < 0 || off_out < 0)
		return refuse_open(out, "copy_file_range", EINVAL,
				   "negative offset");
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	sink.opaque = &ctx;
	pthread_mutex_lock(&in->lock);
	/* The direct path, when the source's host can be reached from the
	 * target's. */
	{
		struct vhost *dst = vhost_named(out->where.host);
		const struct host_config *src = vhost_config(in->vh);

		if (dst && dst != in->vh && src->reach.n && !in->direct_off &&
		    off_in == off_out && !stage_resuming(out->so)) {
			n = direct_copy(in, out, dst, (uint64_t)off_in, len);
			if (n >= 0 || !src->reach_fallback ||
			    (error_errno() != EHOSTUNREACH &&
			     error_errno() != ENOPKG)) {
				/* Its close reports it too: not complete
				 * (an interrupted call is called again). */
				if (n < 0 && error_errno() != EINTR)
					stage_direct_failed(out->so,
							    error_errno(),
							    error_msg());
				pthread_mutex_unlock(&in->lock);
				if (n < 0 && error_errno() == EHOSTUNREACH) {
					char rtext[512];

					error_prefix("%s cannot reach %s "
						     "(reach = %s)",
						     out->where.host, src->name,
						     reach_text(src, rtext,
								sizeof rtext));
				}
				return n < 0 ? fail_open(out, "copy_file_range")
					     : (ssize_t)n;
			}
			log_warning("%s: copied through this machine: %s (the "
				    "hosts file allows it: reach_fallback = "
				    "yes)",
				    out->desc, error_msg());
			in->direct_off = true;
			error_clear();
		}
	}
	while (in->neps < COPY_CONNECTIONS && !in->no_more) {
		/* More streams; without them the copy still works. */
		struct endpoint *more = endpoint_open(&in->spec);

		if (!more) {
			log_info("%s: copy_file_range: %d connection(s): %s",
				 in->desc, in->neps, error_msg());
			in->no_more = true;
			break;
		}
		in->eps[in->neps++] = more;
	}
	error_clear();
	skipped =
	    skip_resumed(in, out, (uint64_t)off_in, (uint64_t)off_out, &len);
	if (skipped < 0 || len == 0)
		n = skipped;
	else
		n = copy_range(in->eps, in->neps, (uint64_t)off_in + skipped,
			       &sink, (uint64_t)off_out + skipped, len,
			       COPY_SLICE_MS);
	if (n >= 0 && skipped > 0 && len > 0)
		n += skipped;
	pthread_mutex_unlock(&in->lock);
	/* The error names the side that failed. */
	return n < 0 ? fail_open(out, "copy_file_range") : (ssize_t)n;
}

/* user.kvmmigfs.crc32 of an existing guest's disk: zlib's crc32() of its
 * guest-visible bytes as 8 hex digits, computed on its host (diskcrc.h).
 * Not listed by listxattr, so that cp -a and rsync -X do not compute it
 * for every disk they copy. */
int files_getxattr(const char *path, const char *name, char *value, size_t size)
{
	struct kvmmigfs *fs = fs_get();
	struct fs_path p;
	struct vhost *vh;
	struct stage_host *sh;
	struct guest *g;
	const struct disk *d;
	char disk_path[4096], format[32], desc[3 * (PATH_NAME_MAX + 1)];
	uint32_t crc;
	int r, active;

	if (strcmp(name, CRC_XATTR) != 0)
		return -ENODATA;
	error_clear();
	r = locate(path, &p, &vh, &sh, "getxattr");
	if (r < 0)
		return r;
	if (p.kind != PATH_FILE || status_path(&p, &(bool){ false }) ||
	    staged(sh, &p) == STAGE_DIR)
		return -ENODATA;
	g = vhost_guest(vh, p.guest);
	if (!g)
		return fail_core(&p, "getxattr");
	d = domxml_find_file(&g->info.disks, p.file);
	if (d) {
		snprintf(disk_path, sizeof disk_path, "%s", d->path);
		snprintf(format, sizeof format, "%s", d->format);
	}
	guest_put(g);
	if (!d)
		return -ENODATA;
	if (size == 0) /* the length asked for: always 8 digits */
		return 8;
	if (size < 8)
		return -ERANGE;
	active = vhost_guest_active(vh, p.guest);
	if (active < 0)
		return fail_core(&p, "getxattr");
	if (active && !fs->allow_running)
		return fail(&p, "getxattr", EBUSY,
			    "the guest is running, so its disk is changing "
			    "(shut it down, or mount with -o allow_running)");
	describe(&p, desc, sizeof desc);
	if (disk_crc_total(
		&(struct disk_crc_spec){
		    .host = p.host,
		    .shell = vhost_config(vh)->shell.v,
		    .tool = fs->crc_tool,
		    .filter = fs->zeroscan,
		    .path = disk_path,
		    .format = format,
		    .shared = active,
		    .desc = desc,
		    .timeout_ms = fs->timeout_ms,
		    .rate = vhost_rate(vh),
		},
		&crc) < 0)
		return fail_core(&p, "getxattr");
	log_debug("%s: crc32 %08x", desc, crc);
	snprintf(value, size, "%08x", crc);
	return 8;
}
