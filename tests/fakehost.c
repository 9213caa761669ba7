/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A fake host for staging's unit tests: see fakehost.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "../fs/virt.h"
#include "../nbd/crc.h"
#include "../nbd/endpoint.h"
#include "../common/error.h"
#include "fakehost.h"

static struct fakehost *fh_of(void *h)
{
	return h;
}

static int pool_kind(void *h)
{
	return fh_of(h)->kind;
}

static int pool_space(void *h, uint64_t *capacity, uint64_t *available)
{
	*capacity = fh_of(h)->pool_capacity;
	*available = fh_of(h)->pool_available;
	return 0;
}

static int vol_exists(void *h, const char *name)
{
	return fakehost_has_volume(fh_of(h), name) ? 1 : 0;
}

static int vol_create(void *h, const char *name, const char *format,
		      uint64_t capacity, bool allocate, char **path)
{
	struct fakehost *fh = fh_of(h);
	char p[PATH_MAX];
	int fd;

	if (strcmp(format, "raw") != 0) {
		error_set(EINVAL, "the fake host makes raw volumes only");
		return -1;
	}
	pthread_mutex_lock(&fh->gate_lock);
	if (fh->hold_create) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 5;
		fh->in_create = true;
		pthread_cond_broadcast(&fh->gate);
		while (fh->hold_create &&
		       pthread_cond_timedwait(&fh->gate, &fh->gate_lock,
					      &until) == 0)
			;
		fh->in_create = false;
	}
	pthread_mutex_unlock(&fh->gate_lock);
	fakehost_vol_path(fh, name, p, sizeof p);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		error_set(errno == EEXIST ? EEXIST : EIO, "%s: %s", p,
			  strerror(errno));
		return -1;
	}
	/* Sparse files take nothing yet; allocated ones their size. */
	if (allocate && capacity > fh->pool_available) {
		close(fd);
		unlink(p);
		error_set(ENOSPC, "no room for %s", name);
		return -1;
	}
	if (ftruncate(fd, (off_t)capacity) < 0) {
		close(fd);
		unlink(p);
		error_set(EIO, "%s: %s", p, strerror(errno));
		return -1;
	}
	close(fd);
	*path = strdup(p);
	return 0;
}

static int vol_delete(void *h, const char *name)
{
	char p[PATH_MAX];

	fakehost_vol_path(fh_of(h), name, p, sizeof p);
	if (unlink(p) < 0) {
		error_set(errno == ENOENT ? ENOENT : EIO, "%s: %s", p,
			  strerror(errno));
		return -1;
	}
	return 0;
}

static int vol_resize(void *h, const char *name, const char *path, bool block,
		      uint64_t capacity)
{
	char p[PATH_MAX];

	(void)path;
	(void)block;
	fakehost_vol_path(fh_of(h), name, p, sizeof p);
	if (truncate(p, (off_t)capacity) < 0) {
		error_set(errno == ENOENT ? ENOENT : EIO, "%s: %s", p,
			  strerror(errno));
		return -1;
	}
	return 0;
}

static int vol_capacity(void *h, const char *name, uint64_t *capacity)
{
	char p[PATH_MAX];
	struct stat sb;

	fakehost_vol_path(fh_of(h), name, p, sizeof p);
	if (stat(p, &sb) < 0) {
		error_set(ENOENT, "%s: %s", p, strerror(errno));
		return -1;
	}
	*capacity = (uint64_t)sb.st_size;
	return 0;
}

static int vol_truncate(void *h, const char *path, uint64_t size)
{
	(void)h;
	if (truncate(path, (off_t)size) < 0) {
		error_set(EIO, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* As the real host: inode and birth time (statx). */
static int vol_identity(void *h, const char *name, char **id)
{
	char p[PATH_MAX];
	struct statx sx;

	fakehost_vol_path(fh_of(h), name, p, sizeof p);
	if (statx(AT_FDCWD, p, 0, STATX_INO | STATX_BTIME, &sx) < 0) {
		error_set(errno == ENOENT ? ENOENT : EIO, "%s: %s", p,
			  strerror(errno));
		return -1;
	}
	if (asprintf(id, "f:%llu:%lld.%u", (unsigned long long)sx.stx_ino,
		     (long long)sx.stx_btime.tv_sec,
		     (unsigned)sx.stx_btime.tv_nsec) < 0) {
		error_set(ENOMEM, "out of memory");
		return -1;
	}
	return 0;
}

static struct endpoint *vol_open(void *h, const struct endpoint_spec *spec)
{
	struct endpoint_spec s = *spec;

	(void)h;
	s.shell = NULL; /* a local nbdkit */
	s.filter = NULL;
	return endpoint_open(&s);
}

/* A raw volume as the host's kvmmigfs-crc reads it: holes not read. */
static int file_extent(void *opaque, uint64_t off, uint64_t max, uint64_t *len,
		       bool *zero)
{
	int fd = *(int *)opaque;
	off_t d = lseek(fd, (off_t)off, SEEK_DATA), h;

	if (d < 0 || (uint64_t)d >= off + max) {
		*zero = true;
		*len = max;
	} else if ((uint64_t)d > off) {
		*zero = true;
		*len = (uint64_t)d - off;
	} else {
		h = lseek(fd, (off_t)off, SEEK_HOLE);
		*zero = false;
		*len = h > (off_t)off && (uint64_t)h - off < max
			   ? (uint64_t)h - off
			   : max;
	}
	return 0;
}

static int file_pread(void *opaque, void *buf, size_t count, uint64_t off)
{
	if (pread(*(int *)opaque, buf, count, (off_t)off) != (ssize_t)count) {
		error_set(EIO, "short read");
		return -1;
	}
	return 0;
}

static int vol_crc_map(void *h, const char *path, const char *format,
		       struct crc_map *out)
{
	int fd = open(path, O_RDONLY), r;
	struct stat st;
	void *ops[1] = { &fd };

	fh_of(h)->crc_maps++;
	if (fd < 0 || fstat(fd, &st) < 0 || strcmp(format, "raw") != 0) {
		error_set(EIO, "%s: cannot checksum", path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	r = crc_compute(&(struct crc_source){ .size = (uint64_t)st.st_size,
					      .extent = file_extent,
					      .pread = file_pread },
			ops, 1, out);
	close(fd);
	return r;
}

static int path_exists(void *h, const char *path)
{
	(void)h;
	return access(path, F_OK) == 0;
}

static int host_id(void *h, char *out, size_t len)
{
	snprintf(out, len, "%s", fh_of(h)->host_id);
	return 0;
}

static int guest_exists(void *h, const char *name)
{
	return strvec_find(&fh_of(h)->guests, name) >= 0;
}

/* The guest's name: what <name> says. */
static char *xml_name(const char *xml)
{
	const char *a = strstr(xml, "<name>"),
		   *b = a ? strstr(a, "</name>") : NULL;

	return a && b ? strndup(a + 6, (size_t)(b - a - 6)) : NULL;
}

static int define(void *h, const char *xml, bool start)
{
	struct fakehost *fh = fh_of(h);
	char *name = xml_name(xml);

	(void)start;
	if (!name) {
		error_set(EINVAL, "no <name>");
		return -1;
	}
	if (fh->fail_define) {
		error_set(fh->fail_define, "define refused (fake)");
		fh->fail_define = 0;
		free(name);
		return -1;
	}
	if (strvec_find(&fh->guests, name) < 0)
		strvec_push(&fh->guests, name);
	free(name);
	free(fh->defined_xml);
	fh->defined_xml = strdup(xml);
	fh->defines++;
	return 0;
}

static int can_host(void *h, const char *xml, size_t len, bool keep_uuid)
{
	struct fakehost *fh = h;

	(void)xml;
	(void)len;
	(void)keep_uuid;
	if (fh->refuse_guest) {
		error_set(fh->refuse_guest, "network 'prod' not defined on %s",
			  fh->host.name);
		return -1;
	}
	return 0;
}

static const struct host_ops fake_ops = {
	.pool_kind = pool_kind,
	.can_host = can_host,
	.pool_space = pool_space,
	.vol_exists = vol_exists,
	.vol_create = vol_create,
	.vol_delete = vol_delete,
	.vol_resize = vol_resize,
	.vol_capacity = vol_capacity,
	.vol_truncate = vol_truncate,
	.vol_identity = vol_identity,
	.vol_open = vol_open,
	.vol_crc_map = vol_crc_map,
	.path_exists = path_exists,
	.host_id = host_id,
	.guest_exists = guest_exists,
	.define = define,
};

void fakehost_init(struct fakehost *fh, const char *name)
{
	memset(fh, 0, sizeof *fh);
	snprintf(fh->dir, sizeof fh->dir, "/tmp/kvmmigfs-fakehost.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fh->dir));
	fh->host.ops = &fake_ops;
	fh->host.opaque = fh;
	fh->host.name = name;
	fh->host.pool = "default";
	fh->kind = POOL_FILES;
	fh->pool_capacity = fh->pool_available = 1ULL << 40;
	snprintf(fh->host_id, sizeof fh->host_id,
		 "00000000-0000-4000-8000-000000000001");
	fh->guests = (struct strvec)STRVEC_INIT;
	pthread_mutex_init(&fh->gate_lock, NULL);
	pthread_cond_init(&fh->gate, NULL);
}

bool fakehost_wait_create(struct fakehost *fh)
{
	struct timespec until;
	bool in;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&fh->gate_lock);
	while (!fh->in_create &&
	       pthread_cond_timedwait(&fh->gate, &fh->gate_lock, &until) == 0)
		;
	in = fh->in_create;
	pthread_mutex_unlock(&fh->gate_lock);
	return in;
}

void fakehost_release_create(struct fakehost *fh)
{
	pthread_mutex_lock(&fh->gate_lock);
	fh->hold_create = false;
	pthread_cond_broadcast(&fh->gate);
	pthread_mutex_unlock(&fh->gate_lock);
}

void fakehost_release(struct fakehost *fh)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", fh->dir);
	ck_assert_int_eq(system(cmd), 0);
	strvec_release(&fh->guests);
	free(fh->defined_xml);
}

void fakehost_vol_path(struct fakehost *fh, const char *name, char *out,
		       size_t len)
{
	snprintf(out, len, "%s/%s", fh->dir, name);
}

void fakehost_put_volume(struct fakehost *fh, const char *name, size_t size,
			 int fill)
{
	char p[PATH_MAX], *buf = malloc(size ? size : 1);
	FILE *f;

	ck_assert_ptr_nonnull(buf);
	memset(buf, fill, size);
	fakehost_vol_path(fh, name, p, sizeof p);
	f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(buf, 1, size, f), size);
	fclose(f);
	free(buf);
}

bool fakehost_has_volume(struct fakehost *fh, const char *name)
{
	char p[PATH_MAX];

	fakehost_vol_path(fh, name, p, sizeof p);
	return access(p, F_OK) == 0;
}

char *fakehost_read_volume(struct fakehost *fh, const char *name, size_t *size)
{
	char p[PATH_MAX], *buf;
	struct stat sb;
	FILE *f;

	fakehost_vol_path(fh, name, p, sizeof p);
	f = fopen(p, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fstat(fileno(f), &sb), 0);
	buf = malloc((size_t)sb.st_size + 1);
	ck_assert_ptr_nonnull(buf);
	*size = fread(buf, 1, (size_t)sb.st_size, f);
	fclose(f);
	return buf;
}
