/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The hosts file: which libvirt hosts the mount shows.
 *
 *	[hostb]
 *	libvirt = qemu+ssh://root@hostb/system
 *	shell   = ssh root@hostb     ; empty or absent: this machine
 *	pool    = default            ; absent: "default"
 *
 * Parsed with libinih.  Every error names the file, the line and the reason.
 */
#ifndef KVMMIGFS_HOSTS_H
#define KVMMIGFS_HOSTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/strvec.h"

#define HOSTS_DEFAULT_FILE "/etc/kvmmigfs/hosts.conf"
#define HOSTS_DEFAULT_POOL "default"

struct host_config {
	char *name;	     /* section name: the host's folder name */
	char *libvirt_uri;   /* libvirt connection URI */
	struct strvec shell; /* command prefix running a shell command line
				on the host; n == 0 means this machine */
	char *pool;	     /* storage pool for new volumes */
	uint64_t bwlimit;    /* bytes per second; 0: none (bwlimit_given)
				or the mount's -o bwlimit */
	int bwlimit_given;   /* "bwlimit" was in the section */
	struct strvec reach; /* command prefix other hosts run to reach
				this one (the direct path); n == 0: none */
	int reach_given;
	bool reach_fallback; /* unreachable: copy through this machine */
	int reach_fallback_given;
	int line;	 /* line of the section header */
	int shell_given; /* parser's: "shell" was seen in the section */
};

struct hosts_file {
	struct host_config *hosts;
	size_t n;
};

/* Parse the file at path.  On error returns -1 and error_msg() reads
 * "PATH:LINE: reason" (errno ENOENT/EACCES for an unreadable file, EINVAL
 * for bad content).  On success *out holds at least one host; release it
 * with hosts_release(). */
int hosts_load(const char *path, struct hosts_file *out);

/* The same for a string; name is used in messages in place of the path. */
int hosts_parse_string(const char *text, const char *name,
		       struct hosts_file *out);

void hosts_release(struct hosts_file *hf);

/* Split a command line into words: whitespace separates, single quotes
 * keep everything literally, double quotes keep everything but allow \" and
 * \\, a backslash outside quotes escapes the next character.  No
 * expansions of any kind.  Returns 0, or -1 with error_set(EINVAL) for an
 * unterminated quote. */
int hosts_split_words(const char *line, struct strvec *out);

/* Longest host name (libinih keeps section names of up to 49 bytes). */
#define HOSTS_NAME_MAX 48

/* True if name can be a host folder name: 1-48 bytes of [A-Za-z0-9._-],
 * not starting with '.' or '-'. */
int hosts_name_ok(const char *name);

#endif
