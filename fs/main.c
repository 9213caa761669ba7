/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kvmmigfs: KVM guests of libvirt hosts as files.
 *
 *	kvmmigfs [-f] [-d] [-o hosts=FILE,...] MOUNTPOINT
 *
 * main() reads the options and the hosts file (refusing a bad one before
 * mounting), then hands over to libfuse.  Nothing connects to a host before
 * the mount is up (and the daemon has forked): that happens on first use.
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fuse.h>
#include <fuse_lowlevel.h>
#include <libnbd.h>
#include <libvirt/libvirt.h>

#include "../common/error.h"
#include "../nbd/rate.h"
#include "kvmmigfs.h"
#include "log.h"
#include "verify.h"
#include "move.h"

struct options {
	char *hosts_file;
	char *first_arg; /* the first non-option argument, until the second */
	int args;	 /* non-option arguments seen */
	char *zeroscan;
	char *crc_tool;
	char *copy_tool;
	char *verify;
	char *state;
	char *uid;
	char *gid;
	char *umask;
	char *bwlimit;
	int allow_running;
	int start;
	int keep_source;
	int timeout;
	int cache;
	int show_help;
	int show_version;
	int foreground;
	int debug;
	int max_idle_threads_given;
};

enum { KEY_FOREGROUND, KEY_DEBUG, KEY_MAX_IDLE_THREADS };

/* Without a hosts file: this machine's libvirt, as one host. */
#define LOCAL_URI "qemu:///system"

#define OPT(t, p)                                                              \
	{                                                                      \
		t, offsetof(struct options, p), 1                              \
	}
static const struct fuse_opt option_spec[] = {
	OPT("hosts=%s", hosts_file),
	OPT("allow_running", allow_running),
	OPT("start", start),
	OPT("keep_source", keep_source),
	OPT("timeout=%d", timeout),
	OPT("cache=%d", cache),
	OPT("zeroscan=%s", zeroscan),
	OPT("crc=%s", crc_tool),
	OPT("copytool=%s", copy_tool),
	OPT("verify=%s", verify),
	OPT("state=%s", state),
	OPT("uid=%s", uid),
	OPT("gid=%s", gid),
	OPT("umask=%s", umask),
	OPT("bwlimit=%s", bwlimit),
	OPT("-h", show_help),
	OPT("--help", show_help),
	OPT("-V", show_version),
	OPT("--version", show_version),
	FUSE_OPT_KEY("-f", KEY_FOREGROUND),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_KEY("max_idle_threads=", KEY_MAX_IDLE_THREADS),
	FUSE_OPT_END,
};

/* Note -f and -d for our log, and leave them for libfuse. */
static int option_proc(void *data, const char *arg, int key,
		       struct fuse_args *outargs)
{
	struct options *o = data;

	(void)outargs;
	/* mount(8) runs "kvmmigfs SOURCE MOUNTPOINT -o ..." (fstab, mount -t
	 * fuse.kvmmigfs): with two arguments, the first is the source,
	 * which means nothing here.  The one kept is given back after. */
	if (key == FUSE_OPT_KEY_NONOPT) {
		if (++o->args == 1) {
			o->first_arg = strdup(arg);
			return 0;
		}
		return 1;
	}
	if (key == FUSE_OPT_KEY_OPT)
		return 1;
	if (key == KEY_FOREGROUND)
		o->foreground = 1;
	else if (key == KEY_DEBUG)
		o->foreground = o->debug = 1;
	else if (key == KEY_MAX_IDLE_THREADS)
		o->max_idle_threads_given = 1;
	return 1;
}

#define STATE_DEFAULT_DIR "/var/lib/kvmmigfs"

static void usage(const char *prog)
{
	printf(
	    "usage: %s [options] MOUNTPOINT\n"
	    "\n"
	    "Shows the guests of libvirt hosts as folders: MOUNTPOINT/HOST/"
	    "GUEST/\n"
	    "holds domain.xml and one file per disk (DEV.FORMAT).\n"
	    "\n"
	    "kvmmigfs options:\n"
	    "    -o hosts=FILE          hosts file (default %s;\n"
	    "                           without one: this machine's "
	    "libvirt)\n"
	    "    -o allow_running       allow reading disks of running "
	    "guests\n"
	    "                           (their copies are inconsistent)\n"
	    "    -o start               start guests once they are defined "
	    "on\n"
	    "                           their new host\n"
	    "    -o keep_source         keep a moved guest's volumes on the "
	    "host it\n"
	    "                           left (default: deleted once it "
	    "moved)\n"
	    "    -o timeout=SECONDS     give up on a host that does not "
	    "answer\n"
	    "                           (default 10)\n"
	    "    -o cache=SECONDS       how long listings are cached "
	    "(default 2)\n"
	    "    -o bwlimit=RATE        cap each host's transfers at RATE "
	    "bytes/s\n"
	    "                           (K, M, G: KiB, MiB, GiB; a host's "
	    "bwlimit\n"
	    "                           key in the hosts file overrides "
	    "it)\n"
	    "    -o zeroscan=PATH       the zero-scan nbdkit filter on the "
	    "hosts\n"
	    "                           (default %s;\n"
	    "                           used where present, empty: never)\n"
	    "    -o verify=no           do not compare a copied disk with its "
	    "source\n"
	    "                           before defining the guest (default "
	    "yes)\n"
	    "    -o crc=PATH            kvmmigfs-crc on the hosts (default "
	    "%s;\n"
	    "                           where absent or empty, disks are "
	    "read over\n"
	    "                           NBD to compute their CRC)\n"
	    "    -o copytool=PATH       kvmmigfs-copy on the hosts, for the "
	    "direct path\n"
	    "                           (default %s)\n"
	    "    -o state=DIR           where staging folders are recorded, "
	    "so that\n"
	    "                           they outlive the daemon (default "
	    "%s\n"
	    "                           as root, else "
	    "$XDG_STATE_HOME/kvmmigfs)\n"
	    "    -o uid=USER            owner of every file (default: who "
	    "mounts)\n"
	    "    -o gid=GROUP           group of every file (default: "
	    "who mounts)\n"
	    "    -o umask=MASK          permission bits taken away (octal, "
	    "default 077);\n"
	    "                           e.g. allow_other,gid=kvmadm,"
	    "umask=027: the group\n"
	    "                           reads, only the owner writes\n"
	    "    -h, --help             this help, then libfuse's options\n"
	    "    -V, --version          versions\n"
	    "\n"
	    "Unmount with: fusermount3 -u MOUNTPOINT\n"
	    "\n",
	    prog, HOSTS_DEFAULT_FILE, KVMMIGFS_ZEROSCAN, KVMMIGFS_CRC,
	    KVMMIGFS_COPY, STATE_DEFAULT_DIR);
}

/* Where a live move's stream sockets go (forward.h), here and on the
 * hosts: /run/kvmmigfs as root, else the user's runtime directory. */
static char *run_dir(void)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char *dir = NULL;

	if (geteuid() == 0 || !xdg || xdg[0] != '/')
		dir =
		    strdup(geteuid() == 0 ? "/run/kvmmigfs" : "/tmp/kvmmigfs");
	else if (asprintf(&dir, "%s/kvmmigfs", xdg) < 0)
		dir = NULL;
	if (!dir)
		fprintf(stderr, "kvmmigfs: out of memory\n");
	return dir;
}

/* The state directory: -o state, or the default for this user; a
 * malloc'd absolute path, or NULL after a message. */
static char *state_dir(const char *opt)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char *dir = NULL;

	if (opt) {
		if (opt[0] != '/') {
			fprintf(stderr,
				"kvmmigfs: state=%s: not an absolute "
				"path\n",
				opt);
			return NULL;
		}
		dir = strdup(opt);
	} else if (geteuid() == 0) {
		dir = strdup(STATE_DEFAULT_DIR);
	} else if (xdg && xdg[0] == '/') {
		if (asprintf(&dir, "%s/kvmmigfs", xdg) < 0)
			dir = NULL;
	} else if (home && home[0] == '/') {
		if (asprintf(&dir, "%s/.local/state/kvmmigfs", home) < 0)
			dir = NULL;
	} else {
		fprintf(stderr, "kvmmigfs: no state directory: set "
				"-o state=DIR\n");
		return NULL;
	}
	if (!dir)
		fprintf(stderr, "kvmmigfs: out of memory\n");
	return dir;
}

/* -o uid=, gid=: a name or a number.  0, or -1 after a message. */
static int parse_owner(const char *opt, const char *what, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(opt, &end, 10);
	if (opt[0] >= '0' && opt[0] <= '9' && *end == '\0' && errno == 0 &&
	    v < (unsigned long)(uid_t)-1) {
		*out = (unsigned)v;
		return 0;
	}
	if (strcmp(what, "uid") == 0) {
		const struct passwd *pw = getpwnam(opt);

		if (pw) {
			*out = pw->pw_uid;
			return 0;
		}
	} else {
		const struct group *gr = getgrnam(opt);

		if (gr) {
			*out = gr->gr_gid;
			return 0;
		}
	}
	fprintf(stderr, "kvmmigfs: %s=%s: no such %s\n", what, opt,
		strcmp(what, "uid") == 0 ? "user" : "group");
	return -1;
}

/* -o umask=: octal, 0-777.  0, or -1 after a message. */
static int parse_umask(const char *opt, mode_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(opt, &end, 8);
	if (!opt[0] || *end || errno || v > 0777) {
		fprintf(stderr,
			"kvmmigfs: umask=%s: not an octal mask of 000-777\n",
			opt);
		return -1;
	}
	*out = (mode_t)v;
	return 0;
}

/* This machine's name as a host folder: its hostname, the characters a
 * host name may not have made '-'. */
static void local_name(char *out, size_t len)
{
	char name[256] = "";

	if (gethostname(name, sizeof name - 1) < 0 || !name[0] ||
	    name[0] == '.' || name[0] == '-')
		snprintf(name, sizeof name, "local");
	for (char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
		      *p == '-'))
			*p = '-';
	name[HOSTS_NAME_MAX] = '\0';
	snprintf(out, len, "%s", name);
}

/* The hosts: -o hosts=FILE; or the default file; where that does not
 * exist, this machine's libvirt as one host named after it.  Also sets
 * fs->hosts_path, which staging records name (records of another hosts
 * file are not this mount's).  0, or -1 after a message. */
static int load_hosts(const struct options *o, struct kvmmigfs *fs)
{
	const char *file = o->hosts_file ? o->hosts_file : HOSTS_DEFAULT_FILE;
	char name[HOSTS_NAME_MAX + 1], *text;
	int r;

	if (o->hosts_file || access(file, F_OK) == 0) {
		if (hosts_load(file, &fs->hosts) < 0) {
			fprintf(stderr, "kvmmigfs: %s\n", error_msg());
			return -1;
		}
		fs->hosts_path = realpath(file, NULL);
		if (!fs->hosts_path) {
			fprintf(stderr, "kvmmigfs: %s: %s\n", file,
				strerror(errno));
			return -1;
		}
		return 0;
	}
	local_name(name, sizeof name);
	if (asprintf(&text, "[%s]\nlibvirt = %s\n", name, LOCAL_URI) < 0)
		return -1;
	r = hosts_parse_string(text, "(this machine)", &fs->hosts);
	free(text);
	if (r < 0) {
		fprintf(stderr, "kvmmigfs: %s\n", error_msg());
		return -1;
	}
	if (asprintf(&fs->hosts_path, "(no hosts file: %s as %s)", LOCAL_URI,
		     name) < 0) {
		fs->hosts_path = NULL;
		return -1;
	}
	fprintf(stderr,
		"kvmmigfs: no hosts file %s: this machine's libvirt (%s) "
		"shows as host %s\n",
		file, LOCAL_URI, name);
	return 0;
}

static void quiet_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
}

/* The mount point as libfuse will see it (an absolute path), for the log;
 * NULL if it cannot be told (fuse_main then says why). */
static char *mount_point(const struct fuse_args *args)
{
	struct fuse_args copy = FUSE_ARGS_INIT(0, NULL);
	struct fuse_cmdline_opts co = { 0 };
	char *mp = NULL;
	int i;

	for (i = 0; i < args->argc; i++)
		if (fuse_opt_add_arg(&copy, args->argv[i]) < 0)
			break;
	fuse_set_log_func(quiet_log);
	if (i == args->argc && fuse_parse_cmdline(&copy, &co) == 0)
		mp = co.mountpoint;
	else
		free(co.mountpoint);
	fuse_set_log_func(NULL);
	fuse_opt_free_args(&copy);
	return mp;
}

static void version(void)
{
	struct nbd_handle *nbd = nbd_create();
	unsigned long lv = 0;

	virGetVersion(&lv, NULL, NULL);
	printf("kvmmigfs %s\n", KVMMIGFS_VERSION);
	printf("libvirt %lu.%lu.%lu, libnbd %s, libfuse %s\n", lv / 1000000,
	       lv / 1000 % 1000, lv % 1000, nbd ? nbd_get_version(nbd) : "?",
	       fuse_pkgversion());
	nbd_close(nbd);
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct options o = { .timeout = 10, .cache = 2 };
	struct kvmmigfs fs = { 0 };
	uint64_t bwlimit = 0;
	char *mountpoint = NULL;
	int ret = 1;

	/* Data moves in buffers of 1-4 MiB that come and go (write-behind,
	 * FUSE requests): keep them out of the heap, so that memory is given
	 * back when they are freed and the footprint is what is in flight. */
	mallopt(M_MMAP_THRESHOLD, 256 << 10);
	if (fuse_opt_parse(&args, &o, option_spec, option_proc) < 0)
		return 1;
	if (o.args == 1 && fuse_opt_add_arg(&args, o.first_arg) < 0)
		return 1;
	if (o.show_help) {
		usage(argv[0]);
		fuse_opt_add_arg(&args, "--help");
		args.argv[0][0] = '\0';
		ret = fuse_main(args.argc, args.argv, kvmmigfs_operations(),
				NULL);
		goto out;
	}
	if (o.show_version) {
		version();
		ret = 0;
		goto out;
	}
	if (o.timeout < 1 || o.timeout > 3600 || o.cache < 0 ||
	    o.cache > 3600) {
		fprintf(stderr, "kvmmigfs: timeout must be 1-3600 seconds, "
				"cache 0-3600 seconds\n");
		goto out;
	}
	if (o.bwlimit && rate_parse(o.bwlimit, &bwlimit) < 0) {
		fprintf(stderr, "kvmmigfs: bwlimit: %s\n", error_msg());
		goto out;
	}
	if (load_hosts(&o, &fs) < 0)
		goto out;
	fs.allow_running = o.allow_running;
	fs.start = o.start;
	fs.keep_source = o.keep_source;
	fs.timeout_ms = o.timeout * 1000;
	fs.cache_ms = o.cache * 1000;
	fs.zeroscan = o.zeroscan ? o.zeroscan : KVMMIGFS_ZEROSCAN;
	fs.crc_tool = o.crc_tool ? o.crc_tool : KVMMIGFS_CRC;
	fs.copy_tool = o.copy_tool ? o.copy_tool : KVMMIGFS_COPY;
	if (!o.verify || strcmp(o.verify, "yes") == 0) {
		fs.verify = 1;
	} else if (strcmp(o.verify, "no") != 0) {
		fprintf(stderr, "kvmmigfs: verify=%s: yes or no\n", o.verify);
		goto out;
	}
	fs.state_dir = state_dir(o.state);
	fs.run_dir = run_dir();
	if (!fs.state_dir || !fs.run_dir)
		goto out;

	fs.mount_time = time(NULL);
	fs.uid = getuid();
	fs.gid = getgid();
	fs.umask = 077;
	if ((o.uid && parse_owner(o.uid, "uid", &fs.uid) < 0) ||
	    (o.gid && parse_owner(o.gid, "gid", &fs.gid) < 0) ||
	    (o.umask && parse_umask(o.umask, &fs.umask) < 0))
		goto out;
	fs.vhosts = calloc(fs.hosts.n, sizeof *fs.vhosts);
	fs.stages = calloc(fs.hosts.n, sizeof *fs.stages);
	fs.hostifs = calloc(fs.hosts.n, sizeof *fs.hostifs);
	fs.status = status_new();
	if (!fs.vhosts || !fs.stages || !fs.hostifs || !fs.status)
		goto out;
	for (size_t i = 0; i < fs.hosts.n; i++) {
		const struct host_config *hc = &fs.hosts.hosts[i];

		fs.vhosts[i] = vhost_new(hc, fs.timeout_ms, fs.cache_ms);
		if (fs.vhosts[i] &&
		    vhost_set_bwlimit(fs.vhosts[i], hc->bwlimit_given
							? hc->bwlimit
							: bwlimit) < 0) {
			fprintf(stderr, "kvmmigfs: %s\n", error_msg());
			goto out;
		}
		if (fs.vhosts[i])
			fs.hostifs[i] =
			    host_libvirt_new(fs.vhosts[i], fs.timeout_ms,
					     fs.crc_tool, fs.zeroscan);
		if (fs.hostifs[i])
			fs.stages[i] = stage_host_new(
			    fs.hostifs[i],
			    &(struct stage_options){
				.start = fs.start,
				.timeout_ms = fs.timeout_ms,
				.filter = fs.zeroscan,
				.state_dir = fs.state_dir,
				.hosts_file = fs.hosts_path,
				.verify = fs.verify ? verify_disk : NULL,
				.move_recover = move_recover,
				.verify_ctx = &fs,
			    });
		if (!fs.stages[i]) {
			fprintf(stderr, "kvmmigfs: %s\n", error_msg());
			goto out;
		}
	}
	mountpoint = mount_point(&args);
	log_init(o.foreground, o.debug, mountpoint);
	for (size_t i = 0; i < fs.hosts.n; i++) {
		char r[32];

		if (!vhost_rate(fs.vhosts[i]))
			continue;
		rate_format(rate_limit(vhost_rate(fs.vhosts[i])), r, sizeof r);
		log_info("%s: transfers limited to %s bytes/s (bwlimit)",
			 fs.hosts.hosts[i].name, r);
	}
	/* libfuse 3.14 warns about its own unset default without this. */
	if (!o.max_idle_threads_given)
		fuse_opt_add_arg(&args, "-omax_idle_threads=10");
	/* The kernel checks modes and owners (as set by uid, gid, umask)
	 * before any operation reaches us: always, so that allow_other
	 * never opens the hosts to every local user. */
	fuse_opt_add_arg(&args, "-odefault_permissions");
	ret = fuse_main(args.argc, args.argv, kvmmigfs_operations(), &fs);
out:
	for (size_t i = 0; i < fs.hosts.n; i++) {
		if (fs.stages)
			stage_host_free(fs.stages[i]);
		if (fs.hostifs)
			host_libvirt_free(fs.hostifs[i]);
		if (fs.vhosts)
			vhost_free(fs.vhosts[i]);
	}
	free(fs.stages);
	free(fs.hostifs);
	status_free(fs.status);
	free(fs.vhosts);
	hosts_release(&fs.hosts);
	free(fs.state_dir);
	free(fs.run_dir);
	free(fs.hosts_path);
	free(o.hosts_file);
	free(o.first_arg);
	free(o.zeroscan);
	free(o.crc_tool);
	free(o.verify);
	free(o.state);
	free(o.uid);
	free(o.gid);
	free(o.umask);
	free(mountpoint);
	fuse_opt_free_args(&args);
	return ret;
}
