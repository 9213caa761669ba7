/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The FUSE operations: the only place (with main.c) that knows FUSE.
 *
 * NOTES ON THE THREAD MODEL
 * libfuse runs these operations on several threads at once.  They share
 * only struct kvmmigfs, which is read-only once mounted; each vhost locks
 * itself (virt.h) and each open disk's endpoint locks itself (endpoint.h).
 * An open file's struct open_file is used by the threads serving that file
 * and is freed in release, after which the kernel sends nothing more for it.
 *
 * Errors: every failure returns the most specific negative errno and, unless
 * it is a plain ENOENT lookup, logs one line naming host/guest/file, the
 * operation and the cause.
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fuse.h>

#include "../nbd/endpoint.h"
#include "../nbd/error.h"
#include "kvmmigfs.h"
#include "log.h"
#include "path.h"

enum open_kind { OPEN_XML, OPEN_DISK };

struct open_file {
	enum open_kind kind;
	struct guest *guest; /* OPEN_XML: the snapshot whose XML is read */
	struct endpoint *ep; /* OPEN_DISK */
	char desc[3 * (PATH_NAME_MAX + 1)]; /* "host/guest/file" */
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

/* Resolve p's host and guest.  *g is a new reference (or NULL for paths
 * above a guest).  Returns 0 or a negative errno (logged). */
static int resolve(const char *path, struct fs_path *p, struct vhost **vh,
		   struct guest **g, const char *op)
{
	int r = path_parse(path, p);

	*vh = NULL;
	*g = NULL;
	if (r < 0)
		return r == -ENOENT ? -ENOENT : fail(p, op, -r, "bad name");
	if (p->kind == PATH_ROOT)
		return 0;
	*vh = find_vhost(fs_get(), p->host);
	if (!*vh)
		return fail(p, op, ENOENT, "no such host in the hosts file");
	if (p->kind == PATH_HOST)
		return 0;
	*g = vhost_guest(*vh, p->guest);
	if (!*g)
		return fail_core(p, op);
	return 0;
}

static void fill_dir(struct stat *st)
{
	struct kvmmigfs *fs = fs_get();

	st->st_mode = S_IFDIR | 0555;
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
	struct guest *g;
	const struct disk *d;
	int r;

	(void)fi;
	memset(st, 0, sizeof *st);
	r = resolve(path, &p, &vh, &g, "stat");
	if (r < 0)
		return r;
	fill_dir(st);
	if (p.kind != PATH_FILE)
		goto out;
	st->st_mode = S_IFREG | 0444;
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

static int kmf_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
		       off_t off, struct fuse_file_info *fi,
		       enum fuse_readdir_flags flags)
{
	struct kvmmigfs *fs = fs_get();
	struct fs_path p;
	struct vhost *vh;
	struct guest *g;
	int r;

	(void)off;
	(void)fi;
	(void)flags;
	r = resolve(path, &p, &vh, &g, "readdir");
	if (r < 0)
		return r;
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	switch (p.kind) {
	case PATH_ROOT:
		for (size_t i = 0; i < fs->hosts.n; i++)
			filler(buf, fs->hosts.hosts[i].name, NULL, 0, 0);
		break;
	case PATH_HOST: {
		struct strvec names = STRVEC_INIT;

		if (vhost_list(vh, &names) < 0) {
			r = fail_core(&p, "readdir");
			break;
		}
		for (size_t i = 0; i < names.n; i++)
			filler(buf, names.v[i], NULL, 0, 0);
		strvec_release(&names);
		break;
	}
	case PATH_GUEST:
		filler(buf, DOMAIN_XML, NULL, 0, 0);
		for (size_t i = 0; i < g->info.disks.n; i++) {
			char name[PATH_NAME_MAX + 1];

			domxml_file_name(&g->info.disks.v[i], name,
					 sizeof name);
			filler(buf, name, NULL, 0, 0);
		}
		break;
	case PATH_FILE:
		r = -ENOTDIR;
		break;
	}
	guest_put(g);
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
	log_debug("%s: opened: %s", of->desc, endpoint_command(of->ep));
	return 0;
}

static int kmf_open(const char *path, struct fuse_file_info *fi)
{
	struct kvmmigfs *fs = fs_get();
	struct open_file *of;
	struct fs_path p;
	struct vhost *vh;
	struct guest *g;
	const struct disk *d = NULL;
	int r;

	r = resolve(path, &p, &vh, &g, "open");
	if (r < 0)
		return r;
	if (p.kind != PATH_FILE) {
		guest_put(g);
		return -EISDIR;
	}
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
		fi->keep_cache = 0;
	}
	fi->fh = (uint64_t)(uintptr_t)of;
	return 0;
}

static int kmf_read(const char *path, char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct open_file *of = of_get(fi);
	ssize_t n;

	(void)path;
	if (off < 0)
		return -EINVAL;
	if (of->kind == OPEN_XML) {
		if ((size_t)off >= of->guest->xml_len)
			return 0;
		if (size > of->guest->xml_len - (size_t)off)
			size = of->guest->xml_len - (size_t)off;
		memcpy(buf, of->guest->xml + off, size);
		return (int)size;
	}
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
	else
		endpoint_close(of->ep);
	free(of);
	return 0;
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
};

const struct fuse_operations *kvmmigfs_operations(void)
{
	return &operations;
}
