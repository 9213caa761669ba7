/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kvmmigfs-crc: CRC32 (zlib) of a disk as its guest sees it, run on a host
 * by kvmmigfs through the host's shell (or by hand).
 *
 *   kvmmigfs-crc [-b] [-k] [-l LENGTH] [-j THREADS] [-f FORMAT] [-s] PATH
 *   kvmmigfs-crc -S PATH
 *
 * A raw disk (file or block device) is read directly: holes of a file
 * (SEEK_HOLE) are never read.  Any other format (qcow2 with its backing
 * chain) is read through qemu-nbd, started per thread by socket
 * activation, and its zero extents (NBD block status) are never read.
 * Prints the map of nbd/crc.h: the header, with -b every data block's CRC,
 * and the total.
 *
 *   -b          list the CRC of every 1 MiB data block
 *   -k          print "# working" once a second while computing
 *   -l LENGTH   only the first LENGTH bytes (a logical volume whole
 *               extents long holding a disk of LENGTH bytes)
 *   -S          print only PATH's stamp and exit: "stamp DEV:INO:SIZE:
 *               MTIME:CTIME" (nanoseconds) of a regular file (the top of
 *               a qcow2 chain), "stamp -" for anything else; the CRC of a
 *               file with the same stamp is the same
 *   -j THREADS  read with THREADS threads (default: online CPUs, <= 8)
 *   -f FORMAT   the disk's format (default raw)
 *   -s          the image may be open in a running guest (qemu-nbd
 *               --force-share)
 *
 * Exit status: 0 done, 1 a failure (one line on stderr naming PATH and
 * the cause), 2 bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <time.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libnbd.h>

#include "../common/error.h"
#include "crc.h"

#define MAX_THREADS 64

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t out_cond = PTHREAD_COND_INITIALIZER;
static bool finished;

/* -k: a remark a second on stdout until done. */
static void *keepalive(void *arg)
{
	struct timespec t;

	(void)arg;
	pthread_mutex_lock(&out_lock);
	clock_gettime(CLOCK_REALTIME, &t);
	while (!finished) {
		t.tv_sec++;
		if (pthread_cond_timedwait(&out_cond, &out_lock, &t) == 0 ||
		    finished)
			break;
		fputs("# working\n", stdout);
		fflush(stdout);
	}
	pthread_mutex_unlock(&out_lock);
	return NULL;
}

static void stop_keepalive(pthread_t ka)
{
	pthread_mutex_lock(&out_lock);
	finished = true;
	pthread_cond_signal(&out_cond);
	pthread_mutex_unlock(&out_lock);
	pthread_join(ka, NULL);
}

static int stamp(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "kvmmigfs-crc: %s: %s\n", path,
			strerror(errno));
		return 1;
	}
	if (!S_ISREG(st.st_mode))
		printf("stamp -\n");
	else
		printf("stamp %ju:%ju:%jd:%jd.%09ld:%jd.%09ld\n",
		       (uintmax_t)st.st_dev, (uintmax_t)st.st_ino,
		       (intmax_t)st.st_size, (intmax_t)st.st_mtim.tv_sec,
		       st.st_mtim.tv_nsec, (intmax_t)st.st_ctim.tv_sec,
		       st.st_ctim.tv_nsec);
	return fflush(stdout) == 0 ? 0 : 1;
}

/* A raw disk: one descriptor shared by the threads (pread). */
struct rawdisk {
	int fd;
	bool file; /* a regular file: SEEK_DATA/SEEK_HOLE */
};

static int raw_extent(void *opaque, uint64_t off, uint64_t max, uint64_t *len,
		      bool *zero)
{
	struct rawdisk *d = opaque;
	off_t data, hole;

	if (!d->file) {
		*len = max;
		*zero = false;
		return 0;
	}
	data = lseek(d->fd, (off_t)off, SEEK_DATA);
	if (data < 0 && errno == ENXIO) { /* a hole to the end */
		*len = max;
		*zero = true;
		return 0;
	}
	if (data < 0) {
		error_set(errno, "lseek: %s", strerror(errno));
		return -1;
	}
	if ((uint64_t)data > off) {
		*zero = true;
		*len = (uint64_t)data - off;
	} else {
		hole = lseek(d->fd, (off_t)off, SEEK_HOLE);
		if (hole < 0) {
			error_set(errno, "lseek: %s", strerror(errno));
			return -1;
		}
		*zero = false;
		*len = (uint64_t)hole - off;
	}
	if (*len > max)
		*len = max;
	return 0;
}

static int raw_pread(void *opaque, void *buf, size_t count, uint64_t off)
{
	struct rawdisk *d = opaque;
	size_t done = 0;

	while (done < count) {
		ssize_t n = pread(d->fd, (char *)buf + done, count - done,
				  (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error_set(errno, "read at offset %llu: %s",
				  (unsigned long long)(off + done),
				  strerror(errno));
			return -1;
		}
		if (n == 0) {
			error_set(EIO, "unexpected end of disk at offset %llu",
				  (unsigned long long)(off + done));
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

static int nbd_failed(const char *what)
{
	int e = nbd_get_errno();

	error_set(e ? e : EIO, "%s: %s", what, nbd_get_error());
	return -1;
}

struct extent_answer {
	uint64_t len;
	bool zero;
	bool got;
};

static int first_extent(void *opaque, const char *context, uint64_t offset,
			uint32_t *entries, size_t n, int *error)
{
	struct extent_answer *a = opaque;

	(void)offset;
	(void)error;
	if (strcmp(context, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0 || n < 2 ||
	    a->got)
		return 0;
	a->len = entries[0];
	a->zero = (entries[1] & LIBNBD_STATE_ZERO) != 0;
	a->got = true;
	return 0;
}

static int nbd_extent(void *opaque, uint64_t off, uint64_t max, uint64_t *len,
		      bool *zero)
{
	struct nbd_handle *h = opaque;
	struct extent_answer a = { 0 };
	uint64_t ask = max < (1u << 30) ? max : (1u << 30);

	if (nbd_can_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) != 1) {
		*len = max;
		*zero = false;
		return 0;
	}
	if (nbd_block_status(h, ask, off,
			     (nbd_extent_callback){ .callback = first_extent,
						    .user_data = &a },
			     0) < 0)
		return nbd_failed("block status");
	if (!a.got || a.len == 0) {
		error_set(EPROTO, "no block status at offset %llu",
			  (unsigned long long)off);
		return -1;
	}
	*len = a.len < max ? a.len : max;
	*zero = a.zero;
	return 0;
}

static int nbd_read(void *opaque, void *buf, size_t count, uint64_t off)
{
	return nbd_pread(opaque, buf, count, off, 0) < 0 ? nbd_failed("read")
							 : 0;
}

/* qemu-nbd serving path (read-only, flattened), by socket activation. */
static struct nbd_handle *qemu_nbd(const char *path, const char *format,
				   bool shared)
{
	struct nbd_handle *h = nbd_create();
	char fmt[64];
	char *argv[8];
	int n = 0;

	if (!h) {
		nbd_failed("libnbd");
		return NULL;
	}
	snprintf(fmt, sizeof fmt, "--format=%s", format);
	argv[n++] = (char *)"qemu-nbd";
	argv[n++] = (char *)"--read-only";
	argv[n++] = fmt;
	if (shared)
		argv[n++] = (char *)"--force-share";
	argv[n++] = (char *)path;
	argv[n] = NULL;
	if (nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) < 0 ||
	    nbd_connect_systemd_socket_activation(h, argv) < 0) {
		nbd_failed("qemu-nbd");
		nbd_close(h);
		return NULL;
	}
	return h;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: kvmmigfs-crc [-b] [-k] [-l LENGTH] [-j THREADS] "
		"[-f FORMAT] [-s] PATH\n"
		"       kvmmigfs-crc -S PATH\n");
	return 2;
}

int main(int argc, char *argv[])
{
	const char *format = "raw", *path;
	long threads = sysconf(_SC_NPROCESSORS_ONLN);
	bool blocks = false, shared = false, alive = false, want_stamp = false;
	uint64_t length = UINT64_MAX;
	char *end;
	pthread_t ka;
	struct crc_source src = { 0 };
	void *opaques[MAX_THREADS] = { 0 };
	struct nbd_handle *h[MAX_THREADS] = { 0 };
	struct rawdisk raw = { .fd = -1 };
	struct crc_map m;
	int c, ret = 1;

	if (threads < 1)
		threads = 1;
	if (threads > 8)
		threads = 8;
	while ((c = getopt(argc, argv, "bkSl:j:f:s")) != -1) {
		switch (c) {
		case 'b':
			blocks = true;
			break;
		case 'k':
			alive = true;
			break;
		case 'l':
			errno = 0;
			length = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end)
				return usage();
			break;
		case 'S':
			want_stamp = true;
			break;
		case 'j':
			threads = strtol(optarg, NULL, 10);
			if (threads < 1 || threads > MAX_THREADS)
				return usage();
			break;
		case 'f':
			format = optarg;
			break;
		case 's':
			shared = true;
			break;
		default:
			return usage();
		}
	}
	if (optind != argc - 1)
		return usage();
	path = argv[optind];
	if (want_stamp)
		return stamp(path);
	if (alive && pthread_create(&ka, NULL, keepalive, NULL) != 0)
		alive = false;

	if (strcmp(format, "raw") == 0) {
		struct stat st;

		raw.fd = open(path, O_RDONLY | O_CLOEXEC);
		if (raw.fd < 0 || fstat(raw.fd, &st) < 0) {
			error_set(errno, "%s", strerror(errno));
			goto out;
		}
		if (S_ISREG(st.st_mode)) {
			raw.file = true;
			src.size = (uint64_t)st.st_size;
		} else if (S_ISBLK(st.st_mode)) {
			if (ioctl(raw.fd, BLKGETSIZE64, &src.size) < 0) {
				error_set(errno, "BLKGETSIZE64: %s",
					  strerror(errno));
				goto out;
			}
		} else {
			error_set(EINVAL, "not a file or block device");
			goto out;
		}
		posix_fadvise(raw.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		src.extent = raw_extent;
		src.pread = raw_pread;
		for (long t = 0; t < threads; t++)
			opaques[t] = &raw;
	} else {
		int64_t size;

		/* One server per thread: reads on one connection would be
		 * served one after the other. */
		for (long t = 0; t < threads; t++) {
			h[t] = qemu_nbd(path, format, shared);
			if (!h[t])
				goto out;
			opaques[t] = h[t];
		}
		size = nbd_get_size(h[0]);
		if (size < 0) {
			nbd_failed("size");
			goto out;
		}
		src.size = (uint64_t)size;
		src.extent = nbd_extent;
		src.pread = nbd_read;
	}
	if (src.size > length)
		src.size = length;
	c = crc_compute(&src, opaques, (unsigned)threads, &m);
	if (alive)
		stop_keepalive(ka);
	alive = false;
	if (c < 0)
		goto out;
	if (crc_map_write(&m, blocks, stdout) < 0 || fflush(stdout) != 0)
		error_set(errno, "writing the list: %s", strerror(errno));
	else
		ret = 0;
	crc_map_free(&m);
out:
	if (alive)
		stop_keepalive(ka);
	if (ret)
		fprintf(stderr, "kvmmigfs-crc: %s: %s\n", path, error_msg());
	for (long t = 0; t < threads; t++)
		if (h[t])
			nbd_close(h[t]);
	if (raw.fd >= 0)
		close(raw.fd);
	return ret;
}
