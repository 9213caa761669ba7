/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The FUSE operations: the only place (with main.c) that knows FUSE.
 *
 * Two kinds of guest folders meet here: the host's own guests (read-only,
 * from libvirt: virt.h) and staging folders, where a guest arrives
 * (stage.h).  A staging folder that is defined becomes a guest of the host.
 *
 * NOTES ON THE THREAD MODEL
 * libfuse runs these operations on several threads at once.  They share
 * only struct kvmmigfs, which is read-only once mounted; each vhost and
 * stage_host locks itself, and so does each open disk's endpoint.  An open
 * file's struct open_file is used by the threads serving that file and is
 * freed in release, after which the kernel sends nothing more for it.
 *
 * Errors: every failure returns the most specific negative errno and, unless
 * it is a plain ENOENT lookup, logs one line naming host/guest/file, the
 * operation and the cause.
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fuse.h>

#include "../common/clock.h"
#include "../nbd/copy.h"
#include "../nbd/endpoint.h"
#include "../common/error.h"
#include "kvmmigfs.h"
#include "log.h"
#include "path.h"
#include "stage.h"

/* copy_file_range answers after about this long; cp calls again. */
#define COPY_SLICE_MS 1000
/* How often a disk being read checks that its guest is still stopped. */
#define STARTED_CHECK_MS 1000
/* copy_file_range reads the source over this many connections (each its
 * own ssh, so its own crypto stream). */
#define COPY_CONNECTIONS 2

enum open_kind { OPEN_XML, OPEN_DISK, OPEN_STAGED };

struct open_file {
	enum open_kind kind;
	struct guest *guest;   /* OPEN_XML: the snapshot whose XML is read */
	struct endpoint *ep;   /* OPEN_DISK */
	struct stage_open *so; /* OPEN_STAGED */
	char desc[3 * (PATH_NAME_MAX + 1)]; /* "host/guest/file" */
	/* OPEN_DISK: the guest must stay stopped (see still_stopped()) */
	struct vhost *vh;
	char guest_name[PATH_NAME_MAX + 1];
	int64_t checked_ms; /* when it was last seen stopped */
	bool started;	    /* it was started while the file was open */
	/* OPEN_DISK: ep and, opened by the first copy_file_range, more
	 * connections to the same disk (guarded by lock) */
	struct endpoint *eps[COPY_CONNECTIONS];
	int neps;
	bool no_more;		   /* opening another failed: keep to those */
	struct endpoint_spec spec; /* strings below */
	char path[4096], format[32];
	pthread_mutex_t lock;
};

static struct kvmmigfs *fs_get(void)
{
	return fuse_get_context()->private_data;
}

static struct open_file *of_get(struct fuse_file_info *fi)
{
	return (struct open_file *)(uintptr_t)fi->fh;
}

static void describe(const struct fs_path *p, char *buf, size_t len)
{
	switch (p->kind) {
	case PATH_ROOT:
		snprintf(buf, len, "/");
		break;
	case PATH_HOST:
		snprintf(buf, len, "%s", p->host);
		break;
	case PATH_GUEST:
		snprintf(buf, len, "%s/%s", p->host, p->guest);
		break;
	case PATH_FILE:
		snprintf(buf, len, "%s/%s/%s", p->host, p->guest, p->file);
		break;
	}
}

/* Log one line for a failed operation and return -errnum. */
static int fail(const struct fs_path *p, const char *op, int errnum,
		const char *cause)
{
	char where[3 * (PATH_NAME_MAX + 1)];

	describe(p, where, sizeof where);
	if (errnum == ENOENT)
		log_debug("%s: %s: %s: %s", where, op, strerrorname_np(errnum),
			  cause);
	else
		log_error("%s: %s: %s: %s", where, op, strerrorname_np(errnum),
			  cause);
	return -errnum;
}

/* fail() with the thread's last core error. */
static int fail_core(const struct fs_path *p, const char *op)
{
	return fail(p, op, error_errno(), error_msg());
}

static struct vhost *find_vhost(struct kvmmigfs *fs, const char *name)
{
	for (size_t i = 0; i < fs->hosts.n; i++)
		if (strcmp(fs->hosts.hosts[i].name, name) == 0)
			return fs->vhosts[i];
	return NULL;
}

static struct stage_host *find_stages(struct kvmmigfs *fs, const char *name)
{
	for (size_t i = 0; i < fs->hosts.n; i++)
		if (strcmp(fs->hosts.hosts[i].name, name) == 0)
			return fs->stages[i];
	return NULL;
}

/* Parse path and find its host.  Returns 0 or a negative errno. */
static int locate(const char *path, struct fs_path *p, struct vhost **vh,
		  struct stage_host **sh, const char *op)
{
	int r = path_parse(path, p);

	*vh = NULL;
	*sh = NULL;
	if (r < 0)
		return r == -ENOENT ? -ENOENT : fail(p, op, -r, "bad name");
	if (p->kind == PATH_ROOT)
		return 0;
	*vh = find_vhost(fs_get(), p->host);
	*sh = find_stages(fs_get(), p->host);
	if (!*vh)
		return fail(p, op, ENOENT, "no such host in the hosts file");
	return 0;
}

/* What the staging area says of p's guest folder (STAGE_NONE above it). */
static enum stage_kind staged(struct stage_host *sh, const struct fs_path *p)
{
	struct stage_stat ss;

	if (p->kind < PATH_GUEST)
		return STAGE_NONE;
	stage_stat(sh, p->guest, NULL, &ss);
	return ss.kind;
}

/* Modes: what each kind of entry allows its owner, before -o umask takes
 * bits away (default 077: the owner alone).  Read-only things are r-x /
 * r--; where guests arrive (host folders, staging folders, staged files)
 * the owner may write.  The kernel enforces them (default_permissions). */
#define MODE_DIR_RO  0555 /* the root, the host's own guests */
#define MODE_DIR_RW  0777 /* host folders, staging folders */
#define MODE_FILE_RO 0444 /* domain.xml and disks of the host's guests */
#define MODE_FILE_RW 0666 /* staged files */

static mode_t mode(mode_t type, mode_t bits)
{
	return type | (bits & ~fs_get()->umask);
}

static void fill_dir(struct stat *st, mode_t bits)
{
	struct kvmmigfs *fs = fs_get();

	st->st_mode = mode(S_IFDIR, bits);
	st->st_nlink = 2;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_atime = st->st_mtime = st->st_ctime = fs->mount_time;
	st->st_blksize = 4096;
}

static int kmf_getattr(const char *path, struct stat *st,
		       struct fuse_file_info *fi)
{
	struct fs_path p;
	struct vhost *vh;
	struct stage_host *sh;
	struct stage_stat ss;
	struct guest *g;
	const struct disk *d;
	int r;

	(void)fi;
	memset(st, 0, sizeof *st);
	r = locate(path, &p, &vh, &sh, "stat");
	if (r < 0)
		return r;
	/* Guests arrive in host folders. */
	fill_dir(st, p.kind == PATH_HOST ? MODE_DIR_RW : MODE_DIR_RO);
	if (p.kind < PATH_GUEST)
		return 0;
	stage_stat(sh, p.guest, NULL, &ss);
	if (ss.kind == STAGE_DIR) {
		st->st_mode = mode(S_IFDIR, MODE_DIR_RW);
		st->st_mtime = ss.mtime;
		if (p.kind == PATH_GUEST)
			return 0;
		stage_stat(sh, p.guest, p.file, &ss);
		if (ss.kind != STAGE_FILE)
			return -ENOENT;
		st->st_mode = mode(S_IFREG, MODE_FILE_RW);
		st->st_nlink = 1;
		st->st_size = (off_t)ss.size;
		st->st_blocks = (blkcnt_t)((ss.allocated + 511) / 512);
		st->st_blksize = KVMMIGFS_BLKSIZE;
		st->st_mtime = ss.mtime;
		return 0;
	}
	g = vhost_guest(vh, p.guest);
	if (!g)
		return fail_core(&p, "stat");
	if (p.kind != PATH_FILE)
		goto out;
	st->st_mode = mode(S_IFREG, MODE_FILE_RO);
	st->st_nlink = 1;
	if (strcmp(p.file, DOMAIN_XML) == 0) {
		st->st_size = (off_t)g->xml_len;
		st->st_blocks = (st->st_size + 511) / 512;
		goto out;
	}
	d = domxml_find_file(&g->info.disks, p.file);
	if (!d) {
		r = -ENOENT;
		goto out;
	}
	{
		const struct disk_size *sz = &g->sizes[d - g->info.disks.v];

		st->st_size = (off_t)sz->capacity;
		st->st_blocks = (blkcnt_t)((sz->allocation + 511) / 512);
		st->st_blksize = KVMMIGFS_BLKSIZE;
	}
out:
	guest_put(g);
	return r;
}

static void fill_names(void *buf, fuse_fill_dir_t filler,
		       const struct strvec *names)
{
	for (size_t i = 0; i < names->n; i++)
		filler(buf, names->v[i], NULL, 0, 0);
}

static int kmf_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
		       off_t off, struct fuse_file_info *fi,
		       enum fuse_readdir_flags flags)
{
	struct kvmmigfs *fs = fs_get();
	struct strvec names = STRVEC_INIT;
	struct fs_path p;
	struct vhost *vh;
	struct stage_host *sh;
	struct guest *g;
	int r;

	(void)off;
	(void)fi;
	(void)flags;
	r = locate(path, &p, &vh, &sh, "readdir");
	if (r < 0)
		return r;
	if (p.kind == PATH_FILE)
		return -ENOTDIR;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	switch (p.kind) {
	case PATH_ROOT:
		for (size_t i = 0; i < fs->hosts.n; i++)
			filler(buf, fs->hosts.hosts[i].name, NULL, 0, 0);
		break;
	case PATH_HOST:
		if (vhost_list(vh, &names) < 0) {
			r = fail_core(&p, "readdir");
			break;
		}
		/* Staging folders not yet defined, after the guests. */
		{
			struct strvec st = STRVEC_INIT;

			stage_list_guests(sh, &st);
			for (size_t i = 0; i < st.n; i++)
				if (strvec_find(&names, st.v[i]) < 0)
					strvec_push(&names, st.v[i]);
			strvec_release(&st);
		}
		fill_names(buf, filler, &names);
		break;
	case PATH_GUEST:
		if (staged(sh, &p) == STAGE_DIR) {
			if (stage_list_files(sh, p.guest, &names) < 0)
				r = -ENOENT;
			fill_names(buf, filler, &names);
			break;
		}
		g = vhost_guest(vh, p.guest);
		if (!g) {
			r = fail_core(&p, "readdir");
			break;
		}
		filler(buf, DOMAIN_XML, NULL, 0, 0);
		for (size_t i = 0; i < g->info.disks.n; i++) {
			char name[PATH_NAME_MAX + 1];

			domxml_file_name(&g->info.disks.v[i], name,
					 sizeof name);
			filler(buf, name, NULL, 0, 0);
		}
		guest_put(g);
		break;
	case PATH_FILE:
		break;
	}
	strvec_release(&names);
	return r;
}

static int open_disk(struct kvmmigfs *fs, const struct fs_path *p,
		     struct vhost *vh, const struct disk *d,
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
	log_debug("%s: opened: %s", of->desc, endpoint_command(of->ep));
	return 0;
}

/* A copy must not go on once the guest runs: its disk is changing under
 * the reader.  Checked (uncached) at most every STARTED_CHECK_MS while a
 * disk is read, and at close.  Returns 0 or -EBUSY (sticky), logged. */
static int still_stopped(struct kvmmigfs *fs, struct open_file *of, bool now)
{
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
	log_error("%s: read: EBUSY: the guest was started while its disk "
		  "was being read: this copy is inconsistent",
		  of->desc);
	return -EBUSY;
}

/* A handle for a staged file: so, or NULL with error_set(). */
static int open_staged(const struct fs_path *p, struct stage_open *so,
		       struct fuse_file_info *fi, const char *op)
{
	struct open_file *of;

	if (!so)
		return fail_core(p, op);
	of = calloc(1, sizeof *of);
	if (!of) {
		stage_flush(so, 0);
		stage_release(so);
		return -ENOMEM;
	}
	of->kind = OPEN_STAGED;
	of->so = so;
	describe(p, of->desc, sizeof of->desc);
	fi->direct_io = 1; /* every write reaches the volume in order */
	fi->fh = (uint64_t)(uintptr_t)of;
	return 0;
}

static int kmf_open(const char *path, struct fuse_file_info *fi)
{
	struct kvmmigfs *fs = fs_get();
	struct open_file *of;
	struct fs_path p;
	struct vhost *vh;
	struct stage_host *sh;
	struct guest *g;
	const struct disk *d = NULL;
	int r;

	r = locate(path, &p, &vh, &sh, "open");
	if (r < 0)
		return r;
	if (p.kind != PATH_FILE)
		return -EISDIR;
	if (staged(sh, &p) == STAGE_DIR)
		return open_staged(
		    &p, stage_open(sh, p.guest, p.file, fi->flags), fi, "open");
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
		return -ENOMEM;
	}
	describe(&p, of->desc, sizeof of->desc);
	if (!d) {
		of->kind = OPEN_XML;
		of->guest = g;
		fi->direct_io = 1; /* the XML may change between opens */
	} else {
		of->kind = OPEN_DISK;
		r = open_disk(fs, &p, vh, d, of);
		guest_put(g);
		if (r < 0) {
			free(of);
			return r;
		}
		/* Reads go straight to the caller's buffer: a disk is read
		 * once, caching it would only cost a copy. */
		fi->direct_io = 1;
	}
	fi->fh = (uint64_t)(uintptr_t)of;
	return 0;
}

/* Refuse a change to something that is not staging: the host's own
 * guests, hosts, the root.  Returns a negative errno (logged). */
static int refuse(const struct fs_path *p, struct vhost *vh, const char *op,
		  int errnum)
{
	struct guest *g;

	if (p->kind == PATH_ROOT || p->kind == PATH_HOST)
		return fail(p, op, EPERM,
			    "hosts come from the hosts file; guests arrive "
			    "as folders");
	g = vhost_guest(vh, p->guest);
	if (!g)
		return fail_core(p, op);
	guest_put(g);
	if (p->kind == PATH_FILE && strcmp(p->file, DOMAIN_XML) != 0 &&
	    errnum == ENOENT)
		return -ENOENT;
	return fail(p, op, errnum,
		    "the host's own guests are not changed through the mount");
}

static int kmf_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct fs_path p;
	struct vhost *vh;
	struct stage_host *sh;
	int r;

	(void)mode;
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
	return open_staged(&p, stage_create(sh, p.guest, p.file), fi, "create");
}

static int kmf_read(const char *path, char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct open_file *of = of_get(fi);
	ssize_t n;
	int r;

	(void)path;
	if (off < 0)
		return -EINVAL;
	if (of->kind == OPEN_STAGED) {
		n = stage_read(of->so, buf, size, (uint64_t)off);
		return n < 0 ? -error_errno() : (int)n;
	}
	if (of->kind == OPEN_XML) {
		if ((size_t)off >= of->guest->xml_len)
			return 0;
		if (size > of->guest->xml_len - (size_t)off)
			size = of->guest->xml_len - (size_t)off;
		memcpy(buf, of->guest->xml + off, size);
		return (int)size;
	}
	r = still_stopped(fs_get(), of, false);
	if (r < 0)
		return r;
	n = endpoint_pread(of->ep, buf, size, (uint64_t)off);
	if (n < 0) {
		log_error("%s: read: %s: %s", of->desc,
			  strerrorname_np(error_errno()), error_msg());
		return -error_errno();
	}
	return (int)n;
}

static off_t kmf_lseek(const char *path, off_t off, int whence,
		       struct fuse_file_info *fi)
{
	struct open_file *of = of_get(fi);
	int64_t r;

	(void)path;
	if (of->kind == OPEN_STAGED)
		return -ENXIO;
	if (of->kind == OPEN_XML) {
		if (off < 0 || (size_t)off >= of->guest->xml_len)
			return -ENXIO;
		return whence == SEEK_DATA ? off : (off_t)of->guest->xml_len;
	}
	r = endpoint_seek(of->ep, off, whence);
	if (r < 0) {
		if (error_errno() != ENXIO)
			log_error("%s: lseek: %s: %s", of->desc,
				  strerrorname_np(error_errno()), error_msg());
		return -error_errno();
	}
	return (off_t)r;
}

static int kmf_release(const char *path, struct fuse_file_info *fi)
{
	struct open_file *of = of_get(fi);

	(void)path;
	if (of->kind == OPEN_XML)
		guest_put(of->guest);
	else if (of->kind == OPEN_DISK) {
		for (int i = 0; i < of->neps; i++)
			endpoint_close(of->eps[i]);
		pthread_mutex_destroy(&of->lock);
	} else
		stage_release(of->so);
	free(of);
	return 0;
}

/* Log a failure of an open file's operation and return -errno. */
static int fail_open(struct open_file *of, const char *op)
{
	log_error("%s: %s: %s: %s", of->desc, op,
		  strerrorname_np(error_errno()), error_msg());
	return -error_errno();
}

static int kmf_write(const char *path, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct open_file *of = of_get(fi);
	ssize_t n;

	(void)path;
	if (of->kind != OPEN_STAGED)
		return -EBADF;
	if (off < 0)
		return -EINVAL;
	n = stage_write(of->so, buf, size, (uint64_t)off);
	return n < 0 ? fail_open(of, "write") : (int)n;
}

static int sink_write(void *opaque, const void *buf, size_t count,
		      uint64_t offset)
{
	return stage_write(opaque, buf, count, offset) < 0 ? -1 : 0;
}

static int sink_zero(void *opaque, uint64_t count, uint64_t offset)
{
	return stage_write_zeros(opaque, count, offset);
}

/* copy_file_range from a disk of the mount to a disk being staged: the
 * copy engine moves it host to host, holes and zero extents unread.  Each
 * call does about a second's work (the caller loops), so an interrupted
 * cp stops promptly.  Other pairs: EOPNOTSUPP, and the kernel copies
 * through read and write. */
static ssize_t kmf_copy_file_range(const char *path_in,
				   struct fuse_file_info *fi_in, off_t off_in,
				   const char *path_out,
				   struct fuse_file_info *fi_out, off_t off_out,
				   size_t len, int flags)
{
	struct open_file *in = of_get(fi_in), *out = of_get(fi_out);
	struct copy_sink sink = { .write = sink_write, .zero = sink_zero };
	int64_t n;

	(void)path_in;
	(void)path_out;
	if (in->kind != OPEN_DISK || out->kind != OPEN_STAGED ||
	    !stage_is_disk(out->so))
		return -EOPNOTSUPP;
	if (still_stopped(fs_get(), in, false) < 0)
		return -EBUSY;
	if (flags)
		return -EINVAL;
	if (off_in < 0 || off_out < 0)
		return -EINVAL;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	sink.opaque = out->so;
	pthread_mutex_lock(&in->lock);
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
	n = copy_range(in->eps, in->neps, (uint64_t)off_in, &sink,
		       (uint64_t)off_out, len, COPY_SLICE_MS);
	pthread_mutex_unlock(&in->lock);
	if (n < 0) {
		/* Say which side failed: the error names its disk. */
		return fail_open(out, "copy_file_range");
	}
	return (ssize_t)n;
}

/* close(2): where errors of a staged file are reported (release's are
 * thrown away by the kernel). */
static int kmf_flush(const char *path, struct fuse_file_info *fi)
{
	struct open_file *of = of_get(fi);

	(void)path;
	if (of->kind == OPEN_DISK)
		return still_stopped(fs_get(), of, true);
	if (of->kind != OPEN_STAGED)
		return 0;
	if (stage_flush(of->so, fuse_get_context()->pid) < 0)
		return fail_open(of, "close");
	return 0;
}

static int kmf_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct open_file *of = of_get(fi);

	(void)path;
	(void)datasync;
	if (of->kind == OPEN_STAGED && stage_fsync(of->so) < 0)
		return fail_open(of, "fsync");
	return 0;
}

static int kmf_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct fs_path p;
	struct vhost *vh;
	struct stage_host *sh;
	struct open_file *of = fi ? of_get(fi) : NULL;
	int r;

	if (size < 0)
		return -EINVAL;
	if (of && of->kind == OPEN_STAGED) {
		if (path_parse(path, &p) < 0 ||
		    !(sh = find_stages(fs_get(), p.host)))
			return -EIO;
		if (stage_truncate(sh, p.guest, p.file, of->so,
				   (uint64_t)size) < 0)
			return fail_open(of, "truncate");
		return 0;
	}
	r = locate(path, &p, &vh, &sh, "truncate");
	if (r < 0)
		return r;
	if (p.kind != PATH_FILE || staged(sh, &p) != STAGE_DIR)
		return refuse(&p, vh, "truncate", EACCES);
	if (stage_truncate(sh, p.guest, p.file, NULL, (uint64_t)size) < 0)
		return fail_core(&p, "truncate");
	return 0;
}

static int kmf_mkdir(const char *path, mode_t mode)
{
	struct fs_path p;
	struct vhost *vh;
	struct stage_host *sh;
	int r;

	(void)mode;
	if (path_parse(path, &p) == 0 && p.kind <= PATH_HOST)
		return fail(&p, "mkdir", EPERM,
			    "hosts come from the hosts file");
	r = locate(path, &p, &vh, &sh, "mkdir");
	if (r < 0)
		return r;
	if (p.kind == PATH_FILE)
		return fail(&p, "mkdir", EPERM,
			    "a guest folder holds files only");
	if (p.kind != PATH_GUEST)
		return refuse(&p, vh, "mkdir", EPERM);
	if (stage_mkdir(sh, p.guest) < 0)
		return fail_core(&p, "mkdir");
	log_info("%s/%s: staging folder opened", p.host, p.guest);
	return 0;
}

static int kmf_rmdir(const char *path)
{
	struct fs_path p;
	struct vhost *vh;
	struct stage_host *sh;
	int r;

	r = locate(path, &p, &vh, &sh, "rmdir");
	if (r < 0)
		return r;
	if (p.kind != PATH_GUEST)
		return refuse(&p, vh, "rmdir",
			      p.kind == PATH_FILE ? ENOTDIR : EPERM);
	if (staged(sh, &p) == STAGE_NONE)
		return refuse(&p, vh, "rmdir", EPERM);
	if (stage_rmdir(sh, p.guest) < 0)
		return fail_core(&p, "rmdir");
	log_info("%s/%s: staging folder removed", p.host, p.guest);
	return 0;
}

static int kmf_unlink(const char *path)
{
	struct fs_path p;
	struct vhost *vh;
	struct stage_host *sh;
	int r;

	r = locate(path, &p, &vh, &sh, "unlink");
	if (r < 0)
		return r;
	if (p.kind != PATH_FILE || staged(sh, &p) != STAGE_DIR)
		return refuse(&p, vh, "unlink", EPERM);
	if (stage_unlink(sh, p.guest, p.file) < 0)
		return fail_core(&p, "unlink");
	return 0;
}

static int kmf_rename(const char *from, const char *to, unsigned int flags)
{
	struct fs_path p, q;
	struct vhost *vh, *vh2;
	struct stage_host *sh, *sh2;
	int r;

	r = locate(from, &p, &vh, &sh, "rename");
	if (r < 0)
		return r;
	r = locate(to, &q, &vh2, &sh2, "rename");
	if (r < 0)
		return r;
	if (flags)
		return fail(&p, "rename", EINVAL, "rename flags not supported");
	if (p.kind != PATH_FILE || q.kind != PATH_FILE ||
	    staged(sh, &p) != STAGE_DIR)
		return refuse(&p, vh, "rename", EPERM);
	if (sh != sh2 || strcmp(p.guest, q.guest) != 0)
		return fail(&p, "rename", EXDEV,
			    "files move only inside their staging folder");
	if (stage_rename(sh, p.guest, p.file, q.file) < 0)
		return fail_core(&p, "rename");
	return 0;
}

/* chmod, chown, utimens: accepted (and ignored) on what staging made, so
 * that cp -a and rsync -a can finish; refused elsewhere. */
static int metadata(const char *path, const char *op)
{
	struct fs_path p;
	struct vhost *vh;
	struct stage_host *sh;
	struct stage_stat ss;
	int r;

	r = locate(path, &p, &vh, &sh, op);
	if (r < 0)
		return r;
	/* Tools set times and modes after close, when the last close may
	 * have defined the guest already. */
	if (staged(sh, &p) == STAGE_DEFINED)
		return 0;
	if (staged(sh, &p) == STAGE_DIR) {
		if (p.kind == PATH_GUEST)
			return 0;
		stage_stat(sh, p.guest, p.file, &ss);
		return ss.kind == STAGE_FILE ? 0 : -ENOENT;
	}
	return refuse(&p, vh, op, EPERM);
}

static int kmf_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)mode;
	(void)fi;
	return metadata(path, "chmod");
}

static int kmf_chown(const char *path, uid_t uid, gid_t gid,
		     struct fuse_file_info *fi)
{
	(void)uid;
	(void)gid;
	(void)fi;
	return metadata(path, "chown");
}

static int kmf_utimens(const char *path, const struct timespec tv[2],
		       struct fuse_file_info *fi)
{
	(void)tv;
	(void)fi;
	return metadata(path, "utimens");
}

static int kmf_statfs(const char *path, struct statvfs *sv)
{
	struct fs_path p;
	struct vhost *vh;
	uint64_t capacity = 0, available = 0;
	int r = path_parse(path, &p);

	memset(sv, 0, sizeof *sv);
	sv->f_bsize = sv->f_frsize = 4096;
	sv->f_namemax = PATH_NAME_MAX;
	if (r < 0 || p.kind == PATH_ROOT)
		return r < 0 ? r : 0;
	vh = find_vhost(fs_get(), p.host);
	if (!vh)
		return -ENOENT;
	if (vhost_pool_space(vh, &capacity, &available) < 0) {
		/* A host whose pool is missing still has a folder: df shows
		 * no space rather than an error. */
		if (error_errno() != ENOENT)
			return fail_core(&p, "statfs");
		log_warning("%s: statfs: pool \"%s\": %s", p.host,
			    vhost_config(vh)->pool, error_msg());
	}
	sv->f_blocks = capacity / sv->f_frsize;
	sv->f_bfree = sv->f_bavail = available / sv->f_frsize;
	return 0;
}

static void *kmf_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct kvmmigfs *fs = fs_get();

	cfg->attr_timeout = 1.0;
	cfg->entry_timeout = 1.0;
	cfg->negative_timeout = 0;
	conn->max_write = 1 << 20;
	conn->max_readahead = 1 << 20;
	if (virt_init() < 0)
		log_error("%s", error_msg());
	return fs;
}

static const struct fuse_operations operations = {
	.init = kmf_init,
	.getattr = kmf_getattr,
	.readdir = kmf_readdir,
	.open = kmf_open,
	.read = kmf_read,
	.lseek = kmf_lseek,
	.release = kmf_release,
	.statfs = kmf_statfs,
	.create = kmf_create,
	.write = kmf_write,
	.copy_file_range = kmf_copy_file_range,
	.flush = kmf_flush,
	.fsync = kmf_fsync,
	.truncate = kmf_truncate,
	.mkdir = kmf_mkdir,
	.rmdir = kmf_rmdir,
	.unlink = kmf_unlink,
	.rename = kmf_rename,
	.chmod = kmf_chmod,
	.chown = kmf_chown,
	.utimens = kmf_utimens,
};

const struct fuse_operations *kvmmigfs_operations(void)
{
	return &operations;
}
