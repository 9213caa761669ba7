/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Staging's rules (fs/stage/) on a fake host (fakehost.c): a guest is
 * defined once domain.xml and every disk are complete, in any order; a
 * killed or interrupted writer never completes one; temporary names;
 * clones; existing volumes and guests untouched (EEXIST); a guest that
 * cannot fit refused before a volume exists (ENOSPC); records and recovery,
 * with volumes replaced since and records of another machine left alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../fs/stage.h"
#include "../fs/virt.h"
#include "../common/error.h"
#include "fakehost.h"
#include "suites.h"

#define HOSTS_FILE "/etc/kvmmigfs/test-hosts.conf"
#define KiB	   1024

static struct fakehost fh;
static struct stage_host *sh;
static char state[PATH_MAX];

static struct stage_host *new_stage_host(void)
{
	struct stage_host *s = stage_host_new(
	    &fh.host, &(struct stage_options){ .start = false,
					       .timeout_ms = 10000,
					       .state_dir = state,
					       .hosts_file = HOSTS_FILE });

	ck_assert_ptr_nonnull(s);
	return s;
}

static void setup(void)
{
	fakehost_init(&fh, "h");
	snprintf(state, sizeof state, "/tmp/kvmmigfs-check-stage.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(state));
	sh = new_stage_host();
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];

	stage_host_free(sh);
	fakehost_release(&fh);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", state);
	ck_assert_int_eq(system(cmd), 0);
}

/* A guest NAME with disk vda (raw); with size, the <metadata> a served
 * domain.xml has: the disk's size and allocation. */
static char *guest_xml(const char *name, unsigned long long size)
{
	char *x, meta[512] = "";

	if (size)
		snprintf(meta, sizeof meta,
			 "<metadata><kvmmigfs:disks xmlns:kvmmigfs="
			 "\"https://kvmmigfs.invalid/xmlns/disks/1\">"
			 "<kvmmigfs:disk dev=\"vda\" size=\"%llu\" "
			 "allocation=\"%llu\"/></kvmmigfs:disks></metadata>",
			 size, size);
	ck_assert_int_ge(
	    asprintf(&x,
		     "<domain type=\"qemu\"><name>%s</name>"
		     "<uuid>6d1b2c3a-0f4e-4c55-9a1b-2c3d4e5f6a7b</uuid>%s"
		     "<memory unit=\"MiB\">64</memory><os><type "
		     "arch=\"x86_64\" machine=\"pc\">hvm</type></os>"
		     "<devices><disk type=\"file\" device=\"disk\">"
		     "<driver name=\"qemu\" type=\"raw\"/><source "
		     "file=\"/var/lib/libvirt/images/%s-vda.raw\"/><target "
		     "dev=\"vda\" bus=\"virtio\"/></disk></devices></domain>",
		     name, meta, name),
	    0);
	return x;
}

/* Write len bytes of data into a new file of the folder and close it
 * (as process pid): close()'s result, errno in error_errno(). */
static int put_as(const char *guest, const char *name, const void *data,
		  size_t len, pid_t pid)
{
	struct stage_open *so = stage_create(sh, guest, name);
	int r;

	ck_assert_msg(so, "create %s/%s: %s", guest, name, error_msg());
	ck_assert_int_eq(stage_write(so, data, len, 0), (ssize_t)len);
	r = stage_flush(so, pid);
	stage_release(so);
	return r;
}

static int put(const char *guest, const char *name, const void *data,
	       size_t len)
{
	return put_as(guest, name, data, len, getpid());
}

static int put_xml(const char *guest, const char *xml)
{
	return put(guest, "domain.xml", xml, strlen(xml));
}

/* len bytes of a pattern no zero block hides. */
static char *data(size_t len, int seed)
{
	char *d = malloc(len);

	ck_assert_ptr_nonnull(d);
	for (size_t i = 0; i < len; i++)
		d[i] = (char)(i * 7 + (size_t)seed + 1);
	return d;
}

static void assert_volume(const char *name, const char *want, size_t len)
{
	size_t n;
	char *got = fakehost_read_volume(&fh, name, &n);

	ck_assert_uint_eq(n, len);
	ck_assert_msg(memcmp(got, want, len) == 0, "%s differs", name);
	free(got);
}

static enum stage_kind kind_of(const char *guest)
{
	struct stage_stat ss;

	stage_stat(sh, guest, NULL, &ss);
	return ss.kind;
}

START_TEST(test_xml_first)
{
	char *x = guest_xml("web1", 0), *d = data(64 * KiB, 1);

	ck_assert_int_eq(stage_mkdir(sh, "web1"), 0);
	ck_assert_int_eq(put_xml("web1", x), 0);
	ck_assert_int_eq(fh.defines, 0);
	ck_assert_int_eq(kind_of("web1"), STAGE_DIR);
	ck_assert_int_eq(put("web1", "vda.raw", d, 64 * KiB), 0);
	ck_assert_int_eq(fh.defines, 1);
	ck_assert_int_eq(kind_of("web1"), STAGE_DEFINED);
	assert_volume("web1-vda.raw", d, 64 * KiB);
	ck_assert_ptr_nonnull(strstr(fh.defined_xml, fh.dir));
	ck_assert_ptr_nonnull(strstr(fh.defined_xml, "web1-vda.raw"));
	free(x);
	free(d);
}
END_TEST

/* A pool of block devices holds raw data only: a vda.qcow2 written there
 * is stored raw, in volume GUEST-vda.raw, listed under its writer's name
 * until the guest is defined, which gets it as a raw disk; the record
 * names the volume as it is stored. */
START_TEST(test_block_pool_stores_raw)
{
	char *plain = guest_xml("web1", 0), *x, *d = data(64 * KiB, 3);
	char *at = strstr(plain, "type=\"raw\"/><source"), rec[PATH_MAX];
	struct strvec names = STRVEC_INIT;
	FILE *f;
	char line[256];
	bool named = false;

	fh.kind = POOL_BLOCKS;
	/* The served XML says vda is a qcow2 file. */
	ck_assert_ptr_nonnull(at);
	*at = '\0';
	ck_assert_int_ge(asprintf(&x, "%stype=\"qcow2\"/><source%s", plain,
				  at + strlen("type=\"raw\"/><source")),
			 0);
	ck_assert_int_eq(stage_mkdir(sh, "web1"), 0);
	ck_assert_int_eq(put_xml("web1", x), 0);
	{
		struct stage_open *so = stage_create(sh, "web1", "vda.qcow2");

		ck_assert_msg(so, "create: %s", error_msg());
		ck_assert_int_eq(stage_write(so, d, 64 * KiB, 0),
				 (ssize_t)(64 * KiB));
		ck_assert(fakehost_has_volume(&fh, "web1-vda.raw"));
		ck_assert(!fakehost_has_volume(&fh, "web1-vda.qcow2"));
		ck_assert_int_eq(stage_list_files(sh, "web1", &names), 0);
		ck_assert_int_ge(strvec_find(&names, "vda.qcow2"), 0);
		ck_assert_int_lt(strvec_find(&names, "vda.raw"), 0);
		snprintf(rec, sizeof rec, "%s/h/web1", state);
		f = fopen(rec, "r");
		ck_assert_ptr_nonnull(f);
		while (fgets(line, sizeof line, f))
			named |= strncmp(line, "disk vda.raw ", 13) == 0;
		fclose(f);
		ck_assert_msg(named, "the record does not name vda.raw");
		ck_assert_int_eq(stage_flush(so, getpid()), 0);
		stage_release(so);
	}
	ck_assert_int_eq(fh.defines, 1);
	ck_assert_ptr_nonnull(strstr(fh.defined_xml, "web1-vda.raw"));
	ck_assert_ptr_nonnull(strstr(fh.defined_xml, "type=\"raw\""));
	ck_assert_ptr_null(strstr(fh.defined_xml, "qcow2"));
	strvec_release(&names);
	free(plain);
	free(x);
	free(d);
}
END_TEST

/* A host that cannot take the guest its domain.xml describes (a network
 * missing, ...): the close of domain.xml fails with that errno and the
 * folder's disks are refused before any volume is made, until a
 * domain.xml the host can take is written. */
START_TEST(test_guest_refused)
{
	char *x = guest_xml("web1", 0), *d = data(64 * KiB, 5);

	ck_assert_int_eq(stage_mkdir(sh, "web1"), 0);
	fh.refuse_guest = ENXIO;
	ck_assert_int_eq(put_xml("web1", x), -1);
	ck_assert_int_eq(error_errno(), ENXIO);
	ck_assert_ptr_null(stage_create(sh, "web1", "vda.raw"));
	ck_assert_int_eq(error_errno(), ENXIO);
	ck_assert_ptr_nonnull(strstr(error_msg(), "network 'prod'"));
	ck_assert(!fakehost_has_volume(&fh, "web1-vda.raw"));
	fh.refuse_guest = 0;
	ck_assert_int_eq(stage_unlink(sh, "web1", "domain.xml"), 0);
	ck_assert_int_eq(put_xml("web1", x), 0);
	ck_assert_int_eq(put("web1", "vda.raw", d, 64 * KiB), 0);
	ck_assert_int_eq(fh.defines, 1);
	free(x);
	free(d);
}
END_TEST

/* Verification before define (stage_options.verify): what it is asked,
 * and what its answer does. */
static int verify_calls, verify_fail;
static char verify_seen[4][256]; /* host/guest/file, path, origin, format */

static int fake_verify(void *ctx, const struct stage_verify *v)
{
	ck_assert_ptr_eq(ctx, &fh);
	verify_calls++;
	snprintf(verify_seen[0], 256, "%s/%s/%s", v->host, v->guest, v->file);
	snprintf(verify_seen[1], 256, "%s", v->path);
	snprintf(verify_seen[2], 256, "%s %s:%s", v->origin_uuid,
		 v->origin_host, v->origin_path);
	snprintf(verify_seen[3], 256, "%s %s", v->format, v->origin_format);
	if (verify_fail) {
		error_set(EIO, "verification failed: test");
		return -1;
	}
	return 0;
}

/* guest_xml with the origin a served domain.xml names. */
static char *guest_xml_origin(const char *name, unsigned long long size)
{
	char *x, *plain = guest_xml(name, 1), *at, meta[512];

	snprintf(meta, sizeof meta,
		 "<kvmmigfs:disks xmlns:kvmmigfs="
		 "\"https://kvmmigfs.invalid/xmlns/disks/1\" host=\"hosta\" "
		 "host-uuid=\"u-1\"><kvmmigfs:disk dev=\"vda\" size=\"%llu\" "
		 "path=\"/src/%s-vda.raw\" format=\"raw\"/></kvmmigfs:disks>",
		 size, name);
	at = strstr(plain, "<kvmmigfs:disks");
	ck_assert_ptr_nonnull(at);
	*at = '\0';
	ck_assert_int_ge(
	    asprintf(&x, "%s%s%s", plain, meta, strstr(at + 1, "</metadata>")),
	    0);
	free(plain);
	return x;
}

START_TEST(test_verify)
{
	char *x = guest_xml_origin("web1", 64 * KiB), *d = data(64 * KiB, 7);
	char *y = guest_xml("web2", 0), *want;
	struct stage_open *so;

	stage_host_free(sh);
	sh = stage_host_new(&fh.host,
			    &(struct stage_options){ .timeout_ms = 10000,
						     .state_dir = state,
						     .hosts_file = HOSTS_FILE,
						     .verify = fake_verify,
						     .verify_ctx = &fh });
	ck_assert_ptr_nonnull(sh);
	verify_calls = 0;
	verify_fail = 1;
	ck_assert_int_eq(stage_mkdir(sh, "web1"), 0);
	ck_assert_int_eq(put("web1", "vda.raw", d, 64 * KiB), 0);
	ck_assert_int_eq(verify_calls, 0); /* no domain.xml yet */
	error_clear();
	ck_assert_int_eq(put_xml("web1", x), -1);
	ck_assert_int_eq(error_errno(), EIO);
	ck_assert_str_eq(error_msg(), "verification failed: test");
	ck_assert_int_eq(verify_calls, 1);
	ck_assert_int_eq(fh.defines, 0);
	ck_assert_int_eq(kind_of("web1"), STAGE_DIR);
	ck_assert_str_eq(verify_seen[0], "h/web1/vda.raw");
	ck_assert_int_ge(asprintf(&want, "%s/web1-vda.raw", fh.dir), 0);
	ck_assert_str_eq(verify_seen[1], want);
	free(want);
	ck_assert_str_eq(verify_seen[2], "u-1 hosta:/src/web1-vda.raw");
	ck_assert_str_eq(verify_seen[3], "raw raw");
	/* Tried again (the source fixed): verified anew, then defined. */
	verify_fail = 0;
	so = stage_open(sh, "web1", "domain.xml", O_WRONLY | O_TRUNC);
	ck_assert_ptr_nonnull(so);
	ck_assert_int_eq(stage_write(so, x, strlen(x), 0), (ssize_t)strlen(x));
	ck_assert_int_eq(stage_flush(so, getpid()), 0);
	stage_release(so);
	ck_assert_int_eq(verify_calls, 2);
	ck_assert_int_eq(fh.defines, 1);
	ck_assert_int_eq(kind_of("web1"), STAGE_DEFINED);

	/* A domain.xml that does not say where its disks came from:
	 * defined without a call (and a log line). */
	ck_assert_int_eq(stage_mkdir(sh, "web2"), 0);
	ck_assert_int_eq(put_xml("web2", y), 0);
	ck_assert_int_eq(put("web2", "vda.raw", d, 64 * KiB), 0);
	ck_assert_int_eq(verify_calls, 2);
	ck_assert_int_eq(fh.defines, 2);
	free(x);
	free(y);
	free(d);
}
END_TEST

START_TEST(test_disks_first)
{
	char *x = guest_xml("web1", 0), *d = data(100 * KiB + 3, 2);

	ck_assert_int_eq(stage_mkdir(sh, "web1"), 0);
	ck_assert_int_eq(put("web1", "vda.raw", d, 100 * KiB + 3), 0);
	ck_assert_int_eq(fh.defines, 0);
	ck_assert_int_eq(put_xml("web1", x), 0);
	ck_assert_int_eq(fh.defines, 1);
	/* An odd size is kept exactly. */
	assert_volume("web1-vda.raw", d, 100 * KiB + 3);
	free(x);
	free(d);
}
END_TEST

/* A child killed by SIGKILL, dead but not reaped: /proc still tells how
 * it ended, as for a writer killed while its files are closed. */
static pid_t killed_child(void)
{
	pid_t child = fork();
	siginfo_t info;

	ck_assert_int_ge(child, 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	ck_assert_int_eq(kill(child, SIGKILL), 0);
	ck_assert_int_eq(waitid(P_PID, (id_t)child, &info, WEXITED | WNOWAIT),
			 0);
	return child;
}

/* A disk closed by a writer that was killed is never complete. */
START_TEST(test_killed_writer)
{
	char *x = guest_xml("web1", 0), *d = data(64 * KiB, 3);
	struct stage_open *so;
	pid_t child = killed_child();
	int status;

	ck_assert_int_eq(stage_mkdir(sh, "web1"), 0);
	ck_assert_int_eq(put_as("web1", "vda.raw", d, 64 * KiB, child), 0);
	ck_assert_int_eq(put_xml("web1", x), 0);
	ck_assert_int_eq(fh.defines, 0);
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	/* Copied again whole (O_TRUNC): complete, defined. */
	so = stage_open(sh, "web1", "vda.raw", O_WRONLY | O_TRUNC);
	ck_assert_ptr_nonnull(so);
	ck_assert_int_eq(stage_write(so, d, 64 * KiB, 0), 64 * KiB);
	ck_assert_int_eq(stage_flush(so, getpid()), 0);
	stage_release(so);
	ck_assert_int_eq(fh.defines, 1);
	free(x);
	free(d);
}
END_TEST

/* Copied again whole (O_TRUNC) over a copy that was killed: the blocks the
 * volume holds already (same CRC) are not sent; a block that differs is;
 * what the earlier copy wrote and this one does not (a hole now) reads
 * zeros at the end. */
START_TEST(test_resume)
{
	const size_t M = 1 << 20;
	char *x = guest_xml("web1", 0), *d = data(4 * M + 5, 9);
	char *e = malloc(4 * M + 5);
	struct stage_open *so;
	pid_t child = killed_child();
	int status;

	ck_assert_int_eq(stage_mkdir(sh, "web1"), 0);
	ck_assert_int_eq(put_as("web1", "vda.raw", d, 4 * M + 5, child), 0);
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert_int_eq(put_xml("web1", x), 0);
	ck_assert_int_eq(fh.defines, 0);

	/* The source now: block 1 differs, block 3 is a hole. */
	memcpy(e, d, 4 * M + 5);
	e[M + 77] ^= 0x5a;
	memset(e + 3 * M, 0, M);
	fh.crc_maps = 0;
	so = stage_open(sh, "web1", "vda.raw", O_WRONLY | O_TRUNC);
	ck_assert_ptr_nonnull(so);
	ck_assert_int_eq(fh.crc_maps, 1);
	ck_assert_int_eq(stage_write(so, e, 3 * M, 0), 3 * M);
	ck_assert_int_eq(stage_write(so, e + 4 * M, 5, 4 * M), 5);
	ck_assert_int_eq(stage_flush(so, getpid()), 0);
	ck_assert_uint_eq(stage_skipped(so), 2 * M); /* blocks 0 and 2 */
	stage_release(so);
	ck_assert_int_eq(fh.defines, 1);
	assert_volume("web1-vda.raw", e, 4 * M + 5);
	free(x);
	free(d);
	free(e);
}
END_TEST

/* A writer interrupted that still closes normally: the disk is smaller
 * than the served domain.xml says, and the guest waits. */
START_TEST(test_short_copy)
{
	char *x = guest_xml("web1", 256 * KiB), *d = data(256 * KiB, 4);
	struct stage_open *so;

	ck_assert_int_eq(stage_mkdir(sh, "web1"), 0);
	ck_assert_int_eq(put_xml("web1", x), 0);
	ck_assert_int_eq(put("web1", "vda.raw", d, 128 * KiB), 0);
	ck_assert_int_eq(fh.defines, 0);
	so = stage_open(sh, "web1", "vda.raw", O_WRONLY);
	ck_assert_ptr_nonnull(so);
	ck_assert_int_eq(stage_write(so, d + 128 * KiB, 128 * KiB, 128 * KiB),
			 128 * KiB);
	ck_assert_int_eq(stage_flush(so, getpid()), 0);
	stage_release(so);
	ck_assert_int_eq(fh.defines, 1);
	assert_volume("web1-vda.raw", d, 256 * KiB);
	free(x);
	free(d);
}
END_TEST

/* rsync's ".NAME.XXXXXX" and "NAME.part" stand for NAME: the volume has
 * its final name at once; the guest waits for the rename. */
START_TEST(test_temp_names)
{
	char *x = guest_xml("web1", 0), *d = data(64 * KiB, 5);
	struct strvec names = STRVEC_INIT;

	ck_assert_int_eq(stage_mkdir(sh, "web1"), 0);
	ck_assert_int_eq(put_xml("web1", x), 0);
	ck_assert_int_eq(put("web1", ".vda.raw.Ab12Cd", d, 64 * KiB), 0);
	ck_assert(fakehost_has_volume(&fh, "web1-vda.raw"));
	ck_assert_int_eq(fh.defines, 0);
	ck_assert_int_eq(stage_list_files(sh, "web1", &names), 0);
	ck_assert_int_ge(strvec_find(&names, ".vda.raw.Ab12Cd"), 0);
	ck_assert_int_eq(stage_rename(sh, "web1", ".vda.raw.Ab12Cd", "vda.raw"),
			 0);
	ck_assert_int_eq(fh.defines, 1);
	/* "NAME.part", domain.xml last: defined at the rename. */
	ck_assert_int_eq(stage_mkdir(sh, "web2"), 0);
	ck_assert_int_eq(put("web2", "vda.raw.part", d, 64 * KiB), 0);
	ck_assert_int_eq(stage_rename(sh, "web2", "vda.raw.part", "vda.raw"),
			 0);
	ck_assert_int_eq(put("web2", "domain.xml.part", x, strlen(x)), 0);
	ck_assert_int_eq(fh.defines, 1);
	ck_assert_int_eq(
	    stage_rename(sh, "web2", "domain.xml.part", "domain.xml"), 0);
	ck_assert_int_eq(fh.defines, 2);
	ck_assert(fakehost_has_volume(&fh, "web2-vda.raw"));
	/* Any name other than a guest's file: EINVAL, nothing created. */
	ck_assert_int_eq(stage_mkdir(sh, "web3"), 0);
	ck_assert_ptr_null(stage_create(sh, "web3", "notes.txt"));
	ck_assert_int_eq(error_errno(), EINVAL);
	strvec_release(&names);
	free(x);
	free(d);
}
END_TEST

/* A folder named otherwise than the guest: a clone, without the UUID. */
START_TEST(test_clone)
{
	char *x = guest_xml("web1", 0), *d = data(64 * KiB, 6);

	ck_assert_int_eq(stage_mkdir(sh, "copy1"), 0);
	ck_assert_int_eq(put("copy1", "vda.raw", d, 64 * KiB), 0);
	ck_assert_int_eq(put_xml("copy1", x), 0);
	ck_assert_int_eq(fh.defines, 1);
	ck_assert_ptr_nonnull(strstr(fh.defined_xml, "<name>copy1</name>"));
	ck_assert_ptr_null(strstr(fh.defined_xml, "6d1b2c3a"));
	ck_assert(fakehost_has_volume(&fh, "copy1-vda.raw"));
	free(x);
	free(d);
}
END_TEST

/* An existing volume or guest is never touched. */
START_TEST(test_eexist)
{
	char *mine;
	size_t n;

	fakehost_put_volume(&fh, "web1-vda.raw", 4096, 0x5a);
	ck_assert_int_eq(stage_mkdir(sh, "web1"), 0);
	ck_assert_ptr_null(stage_create(sh, "web1", "vda.raw"));
	ck_assert_int_eq(error_errno(), EEXIST);
	mine = fakehost_read_volume(&fh, "web1-vda.raw", &n);
	ck_assert_uint_eq(n, 4096);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(mine[i], 0x5a);
	free(mine);
	ck_assert_int_eq(stage_mkdir(sh, "web1"), -1);
	ck_assert_int_eq(error_errno(), EEXIST);
	ck_assert_int_eq(strvec_push(&fh.guests, "old1"), 0);
	ck_assert_int_eq(stage_mkdir(sh, "old1"), -1);
	ck_assert_int_eq(error_errno(), EEXIST);
	ck_assert_int_eq(stage_mkdir(sh, "-rf"), -1);
	ck_assert_int_eq(error_errno(), EINVAL);
	/* The folder still removes (no volume of its own). */
	ck_assert_int_eq(stage_rmdir(sh, "web1"), 0);
	ck_assert(fakehost_has_volume(&fh, "web1-vda.raw"));
}
END_TEST

/* The staged domain.xml says the disk takes more than the pool has free:
 * ENOSPC before any volume is created. */
START_TEST(test_space)
{
	char *x = guest_xml("web1", 2048 * KiB);

	fh.pool_available = 1024 * KiB;
	ck_assert_int_eq(stage_mkdir(sh, "web1"), 0);
	ck_assert_int_eq(put_xml("web1", x), 0);
	ck_assert_ptr_null(stage_create(sh, "web1", "vda.raw"));
	ck_assert_int_eq(error_errno(), ENOSPC);
	ck_assert_ptr_nonnull(strstr(error_msg(), "1048576 bytes free"));
	ck_assert(!fakehost_has_volume(&fh, "web1-vda.raw"));
	free(x);
}
END_TEST

/* The host refuses the XML: close() says so, nothing is defined; the
 * volumes stay for a corrected domain.xml. */
START_TEST(test_define_refused)
{
	char *x = guest_xml("web1", 0), *d = data(64 * KiB, 7);

	fh.fail_define = EINVAL;
	ck_assert_int_eq(stage_mkdir(sh, "web1"), 0);
	ck_assert_int_eq(put("web1", "vda.raw", d, 64 * KiB), 0);
	ck_assert_int_eq(put_xml("web1", x), -1);
	ck_assert_int_eq(error_errno(), EINVAL);
	ck_assert_int_eq(fh.defines, 0);
	ck_assert_int_eq(kind_of("web1"), STAGE_DIR);
	ck_assert_int_eq(stage_unlink(sh, "web1", "domain.xml"), 0);
	ck_assert_int_eq(put_xml("web1", x), 0);
	ck_assert_int_eq(fh.defines, 1);
	assert_volume("web1-vda.raw", d, 64 * KiB);
	free(x);
	free(d);
}
END_TEST

/* Records: the folder outlives its daemon; unlink and rmdir remove
 * exactly its volumes and its record. */
START_TEST(test_recovery)
{
	char *d = data(64 * KiB, 8), rec[PATH_MAX];
	struct strvec names = STRVEC_INIT;

	ck_assert_int_eq(stage_mkdir(sh, "web1"), 0);
	ck_assert_int_eq(put("web1", "vda.raw", d, 64 * KiB), 0);
	stage_host_free(sh); /* the daemon ends with the folder staged */
	sh = new_stage_host();
	ck_assert_int_eq(stage_list_guests(sh, &names), 0);
	ck_assert_int_ge(strvec_find(&names, "web1"), 0);
	strvec_release(&names);
	ck_assert_int_eq(stage_list_files(sh, "web1", &names), 0);
	ck_assert_uint_eq(names.n, 1);
	ck_assert_str_eq(names.v[0], "vda.raw");
	/* Written again only whole: without O_TRUNC, EINVAL. */
	ck_assert_ptr_null(stage_open(sh, "web1", "vda.raw", O_WRONLY));
	ck_assert_int_eq(error_errno(), EINVAL);
	ck_assert_int_eq(stage_rmdir(sh, "web1"), -1);
	ck_assert_int_eq(error_errno(), ENOTEMPTY);
	ck_assert_int_eq(stage_unlink(sh, "web1", "vda.raw"), 0);
	ck_assert(!fakehost_has_volume(&fh, "web1-vda.raw"));
	ck_assert_int_eq(stage_rmdir(sh, "web1"), 0);
	snprintf(rec, sizeof rec, "%s/h/web1", state);
	ck_assert_int_eq(access(rec, F_OK), -1);
	strvec_release(&names);
	free(d);
}
END_TEST

/* A volume replaced since kvmmigfs made it (after a restart, or after
 * recovery) is not ours: never deleted or written again. */
START_TEST(test_recovery_replaced)
{
	char *d = data(64 * KiB, 9), theirs[4096];
	struct strvec names = STRVEC_INIT;

	memset(theirs, 0x77, sizeof theirs);
	ck_assert_int_eq(stage_mkdir(sh, "web1"), 0);
	ck_assert_int_eq(put("web1", "vda.raw", d, 64 * KiB), 0);
	ck_assert_int_eq(put("web1", "vdb.raw", d, 64 * KiB), 0);
	ck_assert_int_eq(put("web1", "vdc.raw", d, 64 * KiB), 0);
	stage_host_free(sh);
	ck_assert_int_eq(fh.host.ops->vol_delete(&fh, "web1-vda.raw"), 0);
	fakehost_put_volume(&fh, "web1-vda.raw", sizeof theirs, 0x77);
	sh = new_stage_host();
	ck_assert_int_eq(stage_list_files(sh, "web1", &names), 0);
	ck_assert_uint_eq(names.n, 2);
	ck_assert_int_lt(strvec_find(&names, "vda.raw"), 0);
	/* Replaced after recovery: copying again is EEXIST, unlink leaves
	 * it. */
	ck_assert_int_eq(fh.host.ops->vol_delete(&fh, "web1-vdb.raw"), 0);
	fakehost_put_volume(&fh, "web1-vdb.raw", sizeof theirs, 0x77);
	ck_assert_ptr_null(
	    stage_open(sh, "web1", "vdb.raw", O_WRONLY | O_TRUNC));
	ck_assert_int_eq(error_errno(), EEXIST);
	ck_assert_int_eq(stage_unlink(sh, "web1", "vdc.raw"), 0);
	ck_assert(!fakehost_has_volume(&fh, "web1-vdc.raw"));
	ck_assert_int_eq(stage_rmdir(sh, "web1"), 0);
	assert_volume("web1-vda.raw", theirs, sizeof theirs);
	assert_volume("web1-vdb.raw", theirs, sizeof theirs);
	strvec_release(&names);
	free(d);
}
END_TEST

/* A record of another machine (the name means another host now): left
 * alone, not shown, not deleted; the same machine again: recovered. */
START_TEST(test_record_other_machine)
{
	char *d = data(64 * KiB, 10), rec[PATH_MAX];
	struct strvec names = STRVEC_INIT;

	ck_assert_int_eq(stage_mkdir(sh, "web1"), 0);
	ck_assert_int_eq(put("web1", "vda.raw", d, 64 * KiB), 0);
	stage_host_free(sh);
	snprintf(fh.host_id, sizeof fh.host_id,
		 "00000000-0000-4000-8000-000000000002");
	sh = new_stage_host();
	ck_assert_int_eq(stage_list_guests(sh, &names), 0);
	ck_assert_int_lt(strvec_find(&names, "web1"), 0);
	snprintf(rec, sizeof rec, "%s/h/web1", state);
	ck_assert_int_eq(access(rec, F_OK), 0);
	ck_assert(fakehost_has_volume(&fh, "web1-vda.raw"));
	stage_host_free(sh);
	snprintf(fh.host_id, sizeof fh.host_id,
		 "00000000-0000-4000-8000-000000000001");
	sh = new_stage_host();
	strvec_release(&names);
	ck_assert_int_eq(stage_list_guests(sh, &names), 0);
	ck_assert_int_ge(strvec_find(&names, "web1"), 0);
	strvec_release(&names);
	free(d);
}
END_TEST

static void *create_vda(void *arg)
{
	struct stage_open *so = stage_create(sh, "web1", "vda.raw");

	(void)arg;
	if (so) {
		stage_flush(so, getpid());
		stage_release(so);
	}
	return so;
}

/* A host that is slow to create a volume holds up that create, not stat
 * or the listings of the same host (ls never waits for the network). */
START_TEST(test_stat_while_host_slow)
{
	struct strvec names = STRVEC_INIT;
	struct stage_stat ss;
	pthread_t t;
	void *so;

	ck_assert_int_eq(stage_mkdir(sh, "web1"), 0);
	ck_assert_int_eq(stage_mkdir(sh, "web2"), 0);
	fh.hold_create = true;
	ck_assert_int_eq(pthread_create(&t, NULL, create_vda, NULL), 0);
	ck_assert(fakehost_wait_create(&fh));
	/* The create waits on the host, with the stage lock held. */
	stage_stat(sh, "web2", NULL, &ss);
	ck_assert_int_eq(ss.kind, STAGE_DIR);
	stage_stat(sh, "web1", NULL, &ss);
	ck_assert_int_eq(ss.kind, STAGE_DIR);
	ck_assert_int_eq(stage_list_guests(sh, &names), 0);
	ck_assert_uint_eq(names.n, 2);
	strvec_release(&names);
	ck_assert_int_eq(stage_list_files(sh, "web1", &names), 0);
	ck_assert_uint_eq(names.n, 0);
	ck_assert(fh.in_create); /* all of it answered while it waited */
	fakehost_release_create(&fh);
	ck_assert_int_eq(pthread_join(t, &so), 0);
	ck_assert_ptr_nonnull(so);
	stage_stat(sh, "web1", "vda.raw", &ss);
	ck_assert_int_eq(ss.kind, STAGE_FILE);
	strvec_release(&names);
}
END_TEST

Suite *stage_suite(void)
{
	Suite *s = suite_create("stage");
	TCase *tc = tcase_create("stage");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_xml_first);
	tcase_add_test(tc, test_block_pool_stores_raw);
	tcase_add_test(tc, test_guest_refused);
	tcase_add_test(tc, test_disks_first);
	tcase_add_test(tc, test_verify);
	tcase_add_test(tc, test_resume);
	tcase_add_test(tc, test_killed_writer);
	tcase_add_test(tc, test_short_copy);
	tcase_add_test(tc, test_temp_names);
	tcase_add_test(tc, test_clone);
	tcase_add_test(tc, test_eexist);
	tcase_add_test(tc, test_space);
	tcase_add_test(tc, test_define_refused);
	tcase_add_test(tc, test_recovery);
	tcase_add_test(tc, test_recovery_replaced);
	tcase_add_test(tc, test_record_other_machine);
	tcase_add_test(tc, test_stat_while_host_slow);
	suite_add_tcase(s, tc);
	return s;
}
