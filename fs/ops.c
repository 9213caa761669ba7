/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The FUSE operations on the tree: hosts, guest folders, their entries
 * (getattr, readdir, mkdir, rmdir, unlink, rename, chmod and friends,
 * statfs), and the table that hands open files to files.c.
 *
 * Two kinds of guest folders meet here: the host's own guests (read-only,
 * from libvirt: virt.h) and staging folders, where a guest arrives
 * (stage.h).  A staging folder that is defined becomes a guest of the host.
 *
 * NOTES ON THE THREAD MODEL
 * libfuse runs these operations on several threads at once.  They share
 * only struct kvmmigfs, which is read-only once mounted; each vhost and
 * stage_host locks itself.  Open files: see files.c.  Errors: see ops.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../common/error.h"
#include "log.h"
#include "move.h"
#include "ops.h"

struct kvmmigfs *fs_get(void)
{
	return fuse_get_context()->private_data;
}

void describe(const struct fs_path *p, char *buf, size_t len)
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

void note_guest_failure(const struct fs_path *p, const char *op, int errnum,
			const char *cause)
{
	struct kvmmigfs *fs = fs_get();
	char what[PATH_NAME_MAX + 2048];

	if (!fs || !fs->status ||
	    (p->kind != PATH_GUEST && p->kind != PATH_FILE))
		return;
	if (p->kind == PATH_FILE)
		snprintf(what, sizeof what, "%s: %s: %s", p->file, op, cause);
	else
		snprintf(what, sizeof what, "%s: %s", op, cause);
	status_guest_fail(fs->status, p->host, p->guest, errnum, what);
}

/* Log one line for a failed operation and return -errnum. */
int fail(const struct fs_path *p, const char *op, int errnum, const char *cause)
{
	char where[3 * (PATH_NAME_MAX + 1)];

	describe(p, where, sizeof where);
	if (errnum == ENOENT) {
		log_debug("%s: %s: %s: %s", where, op, strerrorname_np(errnum),
			  cause);
	} else {
		log_error("%s: %s: %s: %s", where, op, strerrorname_np(errnum),
			  cause);
		note_guest_failure(p, op, errnum, cause);
	}
	return -errnum;
}

/* fail() with the thread's last core error. */
int fail_core(const struct fs_path *p, const char *op)
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
int locate(const char *path, struct fs_path *p, struct vhost **vh,
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

void guest_progress(struct stage_host *sh, const struct fs_path *p, int r)
{
	struct kvmmigfs *fs = fs_get();

	if (r >= 0 && staged(sh, p) == STAGE_DEFINED)
		status_guest_end(fs->status, p->host, p->guest, 0, NULL);
}

bool status_path(const struct fs_path *p, bool *json)
{
	const char *name = p->kind == PATH_HOST	  ? p->host
			   : p->kind == PATH_FILE ? p->file
						  : NULL;

	if (!name ||
	    (strcmp(name, ".status") != 0 && strcmp(name, ".status.json") != 0))
		return false;
	*json = name[7] == '.';
	return true;
}

/* What the staging area says of p's guest folder (STAGE_NONE above it). */
enum stage_kind staged(struct stage_host *sh, const struct fs_path *p)
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
	size_t len = 0;
	bool json;
	int r;

	error_clear();
	(void)fi;
	memset(st, 0, sizeof *st);
	if (path_parse(path, &p) == 0 && status_path(&p, &json)) {
		/* Hidden from readdir; its size is what a read now gets. */
		char *text = status_render(
		    fs_get()->status, json, p.kind == PATH_FILE ? p.host : NULL,
		    p.kind == PATH_FILE ? p.guest : NULL, &len);

		fill_dir(st, MODE_FILE_RO);
		st->st_mode = mode(S_IFREG, MODE_FILE_RO);
		st->st_nlink = 1;
		st->st_size = (off_t)len;
		st->st_mtime = st->st_ctime = time(NULL);
		free(text);
		return 0;
	}
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

	error_clear();
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

			if (stage_list_guests(sh, &st) < 0)
				log_warning("%s: readdir: staging folders not "
					    "listed: %s",
					    p.host, error_msg());
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
				r = fail_core(&p, "readdir");
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

/* Refuse a change to something that is not staging: the host's own
 * guests, hosts, the root.  Returns a negative errno (logged). */
int refuse(const struct fs_path *p, struct vhost *vh, const char *op,
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

static int kmf_mkdir(const char *path, mode_t mode)
{
	struct fs_path p;
	struct vhost *vh;
	struct stage_host *sh;
	int r;

	error_clear();
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
	status_guest_begin(fs_get()->status, p.host, p.guest);
	return 0;
}

static int kmf_rmdir(const char *path)
{
	struct fs_path p;
	struct vhost *vh;
	struct stage_host *sh;
	int r;

	error_clear();
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
	status_guest_end(fs_get()->status, p.host, p.guest, ECANCELED,
			 "the staging folder was removed before the guest "
			 "was defined");
	return 0;
}

static int kmf_unlink(const char *path)
{
	struct fs_path p;
	struct vhost *vh;
	struct stage_host *sh;
	int r;

	error_clear();
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

	error_clear();
	r = locate(from, &p, &vh, &sh, "rename");
	if (r < 0)
		return r;
	r = locate(to, &q, &vh2, &sh2, "rename");
	if (r < 0)
		return r;
	if (p.kind == PATH_GUEST && q.kind == PATH_GUEST)
		return move_guest(&p, vh, sh, &q, vh2, sh2, flags);
	if (flags)
		return fail(&p, "rename", EINVAL, "rename flags not supported");
	if (p.kind != PATH_FILE || q.kind != PATH_FILE ||
	    staged(sh, &p) != STAGE_DIR)
		return refuse(&p, vh, "rename", EPERM);
	if (sh != sh2 || strcmp(p.guest, q.guest) != 0)
		return fail(&p, "rename", EXDEV,
			    "files move only inside their staging folder");
	r = stage_rename(sh, p.guest, p.file, q.file);
	guest_progress(sh, &p, r);
	if (r < 0)
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

	error_clear();
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

	error_clear();
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
	/* rm of an open staged file reaches unlink (EBUSY, said why), not a
	 * rename to .fuse_hiddenNNNN that no staging folder can hold. */
	cfg->hard_remove = 1;
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
	.open = files_open,
	.read = files_read,
	.lseek = files_lseek,
	.release = files_release,
	.statfs = kmf_statfs,
	.create = files_create,
	.write = files_write,
	.copy_file_range = files_copy_file_range,
	.flush = files_flush,
	.fsync = files_fsync,
	.truncate = files_truncate,
	.mkdir = kmf_mkdir,
	.rmdir = kmf_rmdir,
	.unlink = kmf_unlink,
	.rename = kmf_rename,
	.chmod = kmf_chmod,
	.chown = kmf_chown,
	.utimens = kmf_utimens,
	.getxattr = files_getxattr,
};

const struct fuse_operations *kvmmigfs_operations(void)
{
	return &operations;
}
