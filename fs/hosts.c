/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "../common/error.h"
#include "hosts.h"
#include "../nbd/rate.h"

#define BAD_NAME                                                               \
	"bad host name \"%s\" (use letters, digits, '.', '_', '-'; at most "   \
	"48; not starting with '.' or '-')"

/* State while inih walks the file.  inih reports the line of the first
 * handler failure; we keep the reason of that first failure. */
struct parse_state {
	struct hosts_file *hf;
	char reason[256];
	int failed;
};

int hosts_name_ok(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > HOSTS_NAME_MAX || name[0] == '.' ||
	    name[0] == '-')
		return 0;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
		      *p == '-'))
			return 0;
	return 1;
}

int hosts_split_words(const char *line, struct strvec *out)
{
	const char *p = line;
	char *word = malloc(strlen(line) + 1);

	if (!word) {
		error_set(ENOMEM, "out of memory");
		return -1;
	}
	for (;;) {
		size_t n = 0;
		int have = 0;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		while (*p && *p != ' ' && *p != '\t') {
			have = 1;
			if (*p == '\'') {
				const char *end = strchr(p + 1, '\'');

				if (!end)
					goto unterminated;
				memcpy(word + n, p + 1, end - p - 1);
				n += end - p - 1;
				p = end + 1;
			} else if (*p == '"') {
				for (p++; *p && *p != '"'; p++) {
					if (*p == '\\' &&
					    (p[1] == '"' || p[1] == '\\'))
						p++;
					word[n++] = *p;
				}
				if (!*p)
					goto unterminated;
				p++;
			} else if (*p == '\\' && p[1]) {
				word[n++] = p[1];
				p += 2;
			} else {
				word[n++] = *p++;
			}
		}
		word[n] = '\0';
		if (have && strvec_push(out, word) < 0) {
			free(word);
			return -1;
		}
	}
	free(word);
	return 0;

unterminated:
	free(word);
	error_set(EINVAL, "unterminated quote");
	return -1;
}

static struct host_config *find_host(struct hosts_file *hf, const char *name)
{
	for (size_t i = 0; i < hf->n; i++)
		if (strcmp(hf->hosts[i].name, name) == 0)
			return &hf->hosts[i];
	return NULL;
}

static int fail(struct parse_state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fail(struct parse_state *st, const char *fmt, ...)
{
	va_list ap;

	if (!st->failed) {
		va_start(ap, fmt);
		vsnprintf(st->reason, sizeof st->reason, fmt, ap);
		va_end(ap);
		st->failed = 1;
	}
	return 0;
}

static int set_string(struct parse_state *st, char **field, const char *key,
		      const char *value)
{
	if (*field)
		return fail(st, "key \"%s\" given twice", key);
	*field = strdup(value);
	if (!*field)
		return fail(st, "%s", "out of memory");
	return 1;
}

static int handler(void *user, const char *section, const char *key,
		   const char *value)
{
	struct parse_state *st = user;
	struct hosts_file *hf = st->hf;
	struct host_config *h;

	if (!section[0])
		return fail(st, "key \"%s\" outside a [host] section", key);
	if (!hosts_name_ok(section))
		return fail(st, BAD_NAME, section);
	h = hf->n ? &hf->hosts[hf->n - 1] : NULL;
	if (!h || strcmp(h->name, section) != 0) {
		struct host_config *v;

		if (find_host(hf, section))
			return fail(st, "host \"%s\" defined twice", section);
		v = realloc(hf->hosts, (hf->n + 1) * sizeof *v);
		if (!v)
			return fail(st, "%s", "out of memory");
		hf->hosts = v;
		h = &hf->hosts[hf->n++];
		memset(h, 0, sizeof *h);
		h->name = strdup(section);
		if (!h->name)
			return fail(st, "%s", "out of memory");
	}

	if (strcmp(key, "libvirt") == 0) {
		if (!value[0])
			return fail(st, "%s", "empty libvirt URI");
		return set_string(st, &h->libvirt_uri, key, value);
	}
	if (strcmp(key, "pool") == 0) {
		if (!value[0])
			return fail(st, "%s", "empty pool name");
		return set_string(st, &h->pool, key, value);
	}
	if (strcmp(key, "shell") == 0) {
		if (h->shell_given++)
			return fail(st, "key \"%s\" given twice", key);
		if (hosts_split_words(value, &h->shell) < 0)
			return fail(st, "shell: %s", error_msg());
		return 1;
	}
	if (strcmp(key, "reach") == 0) {
		if (h->reach_given++)
			return fail(st, "key \"%s\" given twice", key);
		if (hosts_split_words(value, &h->reach) < 0)
			return fail(st, "reach: %s", error_msg());
		if (!h->reach.n)
			return fail(st, "%s", "empty reach command");
		return 1;
	}
	if (strcmp(key, "reach_fallback") == 0) {
		if (h->reach_fallback_given++)
			return fail(st, "key \"%s\" given twice", key);
		if (strcmp(value, "yes") == 0)
			h->reach_fallback = true;
		else if (strcmp(value, "no") != 0)
			return fail(st, "reach_fallback: \"%s\": yes or no",
				    value);
		return 1;
	}
	if (strcmp(key, "bwlimit") == 0) {
		if (h->bwlimit_given++)
			return fail(st, "key \"%s\" given twice", key);
		if (rate_parse(value, &h->bwlimit) < 0)
			return fail(st, "bwlimit: %s", error_msg());
		return 1;
	}
	return fail(st,
		    "unknown key \"%s\" (known: libvirt, shell, pool, "
		    "bwlimit, reach, reach_fallback)",
		    key);
}

/* The lines inih accepts: INI_MAX_LINE - 1 bytes. */
#define LINE_MAX_BYTES 199

/* Sections as found by check_lines, with their header lines. */
struct sections {
	struct strvec names;
	int *lines;
};

static void sections_release(struct sections *sec)
{
	strvec_release(&sec->names);
	free(sec->lines);
}

/* inih reports the line of the first syntax error but the reason of no
 * error, cuts long lines and names, passes only keys to the handler and
 * merges repeated sections; so every line is checked here first, and the
 * sections are recorded with their lines.  Returns 0, or the first bad
 * line with its reason in reason. */
static int check_lines(const char *text, struct sections *sec, char *reason,
		       size_t len)
{
	int line = 1;

	for (const char *p = text; p && *p; line++) {
		const char *start = p, *next = strchr(p, '\n');
		size_t n = next ? (size_t)(next - p) : strlen(p);
		const char *q = p + strspn(p, " \t"), *end;
		char name[256];
		int *lines;

		p = next ? next + 1 : NULL;
		if (n > 0 && start[n - 1] == '\r')
			n--;
		if (n > LINE_MAX_BYTES) {
			snprintf(reason, len, "line longer than %d bytes",
				 LINE_MAX_BYTES);
			return line;
		}
		if (*q == '\n' || *q == '\r' || *q == '\0' || *q == ';' ||
		    *q == '#')
			continue;
		if (*q != '[') {
			if (!memchr(q, '=', strcspn(q, "\n")) &&
			    !memchr(q, ':', strcspn(q, "\n"))) {
				snprintf(reason, len,
					 "syntax error (expected [host] or "
					 "key = value)");
				return line;
			}
			continue;
		}
		end = strpbrk(q, "]\n");
		if (!end || *end != ']') {
			snprintf(reason, len, "syntax error (no ']')");
			return line;
		}
		snprintf(name, sizeof name, "%.*s", (int)(end - q - 1), q + 1);
		if (!hosts_name_ok(name)) {
			snprintf(reason, len, BAD_NAME, name);
			return line;
		}
		if (strvec_find(&sec->names, name) >= 0) {
			snprintf(reason, len, "host \"%s\" defined twice",
				 name);
			return line;
		}
		lines = realloc(sec->lines, (sec->names.n + 1) * sizeof *lines);
		if (!lines || strvec_push(&sec->names, name) < 0) {
			if (lines)
				sec->lines = lines;
			snprintf(reason, len, "out of memory");
			return line;
		}
		sec->lines = lines;
		sec->lines[sec->names.n - 1] = line;
	}
	return 0;
}

static int parse(const char *text, const char *name, struct hosts_file *out)
{
	struct parse_state st = { .hf = out };
	struct sections sec = { .names = STRVEC_INIT };
	char reason[512];
	int line, bad;

	memset(out, 0, sizeof *out);
	bad = check_lines(text, &sec, reason, sizeof reason);
	line = ini_parse_string(text, handler, &st);
	if (line < 0) {
		error_set(ENOMEM, "%s: out of memory", name);
		goto err;
	}
	/* The first error wins: a handler's before bad is its own. */
	if (line > 0 && st.failed && (!bad || line < bad)) {
		error_set(EINVAL, "%s:%d: %s", name, line, st.reason);
		goto err;
	}
	if (bad || line > 0) {
		error_set(EINVAL, "%s:%d: %s", name, bad ? bad : line,
			  bad ? reason : "syntax error");
		goto err;
	}
	if (sec.names.n == 0) {
		error_set(EINVAL, "%s: no hosts defined", name);
		goto err;
	}
	/* Every section, also one without keys, must define a host. */
	for (size_t i = 0; i < sec.names.n; i++) {
		struct host_config *h = find_host(out, sec.names.v[i]);

		if (!h || !h->libvirt_uri) {
			error_set(EINVAL,
				  "%s:%d: host \"%s\" has no \"libvirt\" URI",
				  name, sec.lines[i], sec.names.v[i]);
			goto err;
		}
		h->line = sec.lines[i];
		if (!h->pool && !(h->pool = strdup(HOSTS_DEFAULT_POOL))) {
			error_set(ENOMEM, "out of memory");
			goto err;
		}
	}
	sections_release(&sec);
	return 0;
err:
	sections_release(&sec);
	hosts_release(out);
	return -1;
}

int hosts_parse_string(const char *text, const char *name,
		       struct hosts_file *out)
{
	return parse(text, name, out);
}

int hosts_load(const char *path, struct hosts_file *out)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t len = 0;
	int r;

	memset(out, 0, sizeof *out);
	if (!f) {
		error_set(errno, "%s: %s", path, strerror(errno));
		return -1;
	}
	{
		char buf[4096];
		size_t got;

		while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
			char *t = realloc(text, len + got + 1);

			if (!t) {
				free(text);
				fclose(f);
				error_set(ENOMEM, "out of memory");
				return -1;
			}
			text = t;
			memcpy(text + len, buf, got);
			len += got;
			if (len > 1 << 20) {
				free(text);
				fclose(f);
				error_set(EFBIG, "%s: larger than 1 MiB", path);
				return -1;
			}
		}
	}
	if (ferror(f)) {
		int e = errno;

		free(text);
		fclose(f);
		error_set(e, "%s: %s", path, strerror(e));
		return -1;
	}
	fclose(f);
	if (!text)
		text = calloc(1, 1);
	else
		text[len] = '\0';
	if (!text) {
		error_set(ENOMEM, "out of memory");
		return -1;
	}
	if (strlen(text) != len) {
		free(text);
		error_set(EINVAL, "%s: contains a NUL byte", path);
		return -1;
	}
	r = parse(text, path, out);
	free(text);
	return r;
}

void hosts_release(struct hosts_file *hf)
{
	for (size_t i = 0; i < hf->n; i++) {
		free(hf->hosts[i].name);
		free(hf->hosts[i].libvirt_uri);
		strvec_release(&hf->hosts[i].shell);
		strvec_release(&hf->hosts[i].reach);
		free(hf->hosts[i].pool);
	}
	free(hf->hosts);
	hf->hosts = NULL;
	hf->n = 0;
}
