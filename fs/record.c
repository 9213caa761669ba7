/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/error.h"
#include "log.h"
#include "record.h"

#define MAGIC	   "kvmmigfs-staging 2"
#define MAGIC_V1   "kvmmigfs-staging 1"
#define MAX_RECORD (64 * 1024)

static int mkdir_one(const char *path)
{
	if (mkdir(path, 0700) == 0 || errno == EEXIST)
		return 0;
	error_set(errno, "creating %s: %s", path, strerror(errno));
	return -1;
}

/* path exists, is a directory and only its owner may enter it: records
 * name hosts, guests and volumes. */
static int private_dir(const char *path)
{
	struct stat st;

	if (mkdir_one(path) < 0)
		return -1;
	if (stat(path, &st) < 0) {
		error_set(errno, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* (Not a directory: creating what is under it says so.) */
	if (S_ISDIR(st.st_mode) && (st.st_mode & 077) &&
	    chmod(path, 0700) < 0) {
		error_set(errno, "%s: making it private (0700): %s", path,
			  strerror(errno));
		return -1;
	}
	return 0;
}

/* DIR and DIR/HOST exist (DIR's parents too), DIR and DIR/HOST mode 0700. */
static int make_dirs(const char *dir, const char *host, char *out, size_t len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof path, "%s", dir);
	for (char *p = path + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir_one(path) < 0)
				return -1;
			*p = '/';
		}
	if (private_dir(path) < 0)
		return -1;
	if ((size_t)snprintf(out, len, "%s/%s", dir, host) >= len) {
		error_set(ENAMETOOLONG, "%s/%s: path too long", dir, host);
		return -1;
	}
	return private_dir(out);
}

int record_save(const char *dir, const char *host, const struct record *rec)
{
	char hostdir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX + 8];
	FILE *f;
	int fd, e;

	if (make_dirs(dir, host, hostdir, sizeof hostdir) < 0)
		return -1;
	snprintf(path, sizeof path, "%s/%s", hostdir, rec->guest);
	snprintf(tmp, sizeof tmp, "%s/.%s.tmp", hostdir, rec->guest);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		e = errno;
		if (fd >= 0)
			close(fd);
		error_set(e, "writing %s: %s", tmp, strerror(e));
		return -1;
	}
	fprintf(f, "%s\npid %d\nhost %s\nhosts %s\npool %s\n", MAGIC,
		(int)getpid(), rec->host_id, rec->hosts_file, rec->pool);
	if (rec->move)
		fprintf(f, "move %s\n", rec->move);
	for (size_t i = 0; i < rec->n; i++)
		fprintf(f, "disk %s %s\n", rec->disks[i].name,
			rec->disks[i].id ? rec->disks[i].id : "-");
	if (fflush(f) != 0 || fsync(fd) != 0) {
		e = errno;
		fclose(f);
		unlink(tmp);
		error_set(e, "writing %s: %s", tmp, strerror(e));
		return -1;
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		e = errno;
		unlink(tmp);
		error_set(e, "writing %s: %s", path, strerror(e));
		return -1;
	}
	/* The rename itself must survive a crash too. */
	fd = open(hostdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	return 0;
}

int record_delete(const char *dir, const char *host, const char *guest)
{
	char path[PATH_MAX];

	snprintf(path, sizeof path, "%s/%s/%s", dir, host, guest);
	if (unlink(path) == 0 || errno == ENOENT)
		return 0;
	error_set(errno, "removing %s: %s", path, strerror(errno));
	return -1;
}

void record_release(struct record *rec)
{
	free(rec->guest);
	free(rec->host_id);
	free(rec->hosts_file);
	free(rec->pool);
	free(rec->move);
	for (size_t i = 0; i < rec->n; i++) {
		free(rec->disks[i].name);
		free(rec->disks[i].id);
	}
	free(rec->disks);
	memset(rec, 0, sizeof *rec);
}

/* Parse one record file's text.  0, or -1 with a reason in *why. */
static int parse(char *text, struct record *rec, const char **why)
{
	char *save = NULL, *line;
	int lineno = 0, version = 0;

	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save), lineno++) {
		if (lineno == 0) {
			if (strcmp(line, MAGIC) == 0)
				version = 2;
			else if (strcmp(line, MAGIC_V1) == 0)
				version = 1;
			else {
				*why = "not a staging record";
				return -1;
			}
		} else if (version > 1 && strncmp(line, "host ", 5) == 0 &&
			   !rec->host_id) {
			if (!(rec->host_id = strdup(line + 5)))
				goto nomem;
		} else if (version > 1 && strncmp(line, "hosts ", 6) == 0 &&
			   !rec->hosts_file) {
			if (!(rec->hosts_file = strdup(line + 6)))
				goto nomem;
		} else if (strncmp(line, "pid ", 4) == 0) {
			char *end;
			long pid = strtol(line + 4, &end, 10);

			if (*end || pid <= 0 || pid > INT_MAX) {
				*why = "bad pid line";
				return -1;
			}
			rec->pid = (pid_t)pid;
		} else if (version > 1 && strncmp(line, "move ", 5) == 0 &&
			   !rec->move) {
			if (!(rec->move = strdup(line + 5)))
				goto nomem;
		} else if (strncmp(line, "pool ", 5) == 0 && !rec->pool) {
			if (!(rec->pool = strdup(line + 5)))
				goto nomem;
		} else if (strncmp(line, "disk ", 5) == 0) {
			struct record_disk *v =
			    realloc(rec->disks, (rec->n + 1) * sizeof *v);
			char *id = version > 1 ? strchr(line + 5, ' ') : NULL;

			if (!v)
				goto nomem;
			rec->disks = v;
			if (version > 1 && !id) {
				*why = "a disk line without an identity";
				return -1;
			}
			if (id)
				*id++ = '\0';
			v[rec->n].name = strdup(line + 5);
			v[rec->n].id =
			    id && strcmp(id, "-") != 0 ? strdup(id) : NULL;
			if (!v[rec->n].name ||
			    (id && strcmp(id, "-") != 0 && !v[rec->n].id)) {
				free(v[rec->n].name);
				free(v[rec->n].id);
				goto nomem;
			}
			rec->n++;
		} else {
			*why = "unknown line";
			return -1;
		}
	}
	if (lineno == 0 || !rec->pool || !rec->pid ||
	    (version > 1 && (!rec->host_id || !rec->hosts_file))) {
		*why = "incomplete record";
		return -1;
	}
	return 0;
nomem:
	*why = "out of memory";
	return -1;
}

static int read_record(const char *path, char **text)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat sb;
	ssize_t got;
	char *buf;

	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    sb.st_size > MAX_RECORD) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		close(fd);
		return -1;
	}
	got = read(fd, buf, (size_t)sb.st_size);
	close(fd);
	if (got < 0) {
		free(buf);
		return -1;
	}
	buf[got] = '\0';
	if (strlen(buf) != (size_t)got) {
		free(buf);
		errno = EINVAL;
		return -1;
	}
	*text = buf;
	return 0;
}

int record_load(const char *dir, const char *host, struct record **out,
		size_t *n)
{
	char hostdir[PATH_MAX];
	struct record *v = NULL;
	struct dirent *de;
	size_t k = 0;
	DIR *d;

	*out = NULL;
	*n = 0;
	snprintf(hostdir, sizeof hostdir, "%s/%s", dir, host);
	d = opendir(hostdir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		error_set(errno, "reading %s: %s", hostdir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		char path[PATH_MAX], *text = NULL;
		struct record rec = { 0 };
		const char *why = NULL;
		struct record *nv;

		if (de->d_name[0] == '.')
			continue; /* ".", "..", and temporary files */
		snprintf(path, sizeof path, "%s/%s", hostdir, de->d_name);
		if (read_record(path, &text) < 0) {
			log_warning("%s: skipped: %s", path, strerror(errno));
			continue;
		}
		if (parse(text, &rec, &why) < 0 ||
		    !(rec.guest = strdup(de->d_name))) {
			log_warning("%s: skipped: %s", path,
				    why ? why : "out of memory");
			free(text);
			record_release(&rec);
			continue;
		}
		free(text);
		nv = realloc(v, (k + 1) * sizeof *v);
		if (!nv) {
			record_release(&rec);
			break;
		}
		v = nv;
		v[k++] = rec;
	}
	closedir(d);
	*out = v;
	*n = k;
	return 0;
}
