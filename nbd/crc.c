/* SPDX-License-Identifier: GPL-2.0-or-later */
/* CRC32 of a disk's guest-visible bytes: see crc.h. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../common/error.h"
#include "crc.h"

/* zeros[k]: crc32() of 2^k zero bytes. */
static uint32_t zeros[64];
static pthread_once_t zeros_once = PTHREAD_ONCE_INIT;

static void zeros_init(void)
{
	zeros[0] = (uint32_t)crc32(0, (const Bytef *)"", 1);
	for (int k = 1; k < 64; k++)
		zeros[k] = (uint32_t)crc32_combine64(zeros[k - 1], zeros[k - 1],
						     (z_off64_t)1 << (k - 1));
}

uint32_t crc_zeros(uint64_t len)
{
	uLong r = 0;

	pthread_once(&zeros_once, zeros_init);
	for (int k = 63; k >= 0; k--)
		if (len & ((uint64_t)1 << k))
			r = crc32_combine64(r, zeros[k], (z_off64_t)1 << k);
	return (uint32_t)r;
}

uint64_t crc_block_len(const struct crc_map *m, uint64_t i)
{
	uint64_t start = i * CRC_BLOCK;

	if (start >= m->size)
		return 0;
	return m->size - start < CRC_BLOCK ? m->size - start : CRC_BLOCK;
}

/* Position of block i in m->index, or -1. */
static ssize_t find_block(const struct crc_map *m, uint64_t i)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->index[mid] < i)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->n && m->index[lo] == i ? (ssize_t)lo : -1;
}

bool crc_block_is_data(const struct crc_map *m, uint64_t i)
{
	return find_block(m, i) >= 0;
}

uint32_t crc_block(const struct crc_map *m, uint64_t i)
{
	ssize_t k = find_block(m, i);

	return k >= 0 ? m->crc[k] : crc_zeros(crc_block_len(m, i));
}

void crc_map_free(struct crc_map *m)
{
	free(m->index);
	free(m->crc);
	memset(m, 0, sizeof *m);
}

/* Append block i to m's data blocks unless it is the last one already. */
static int add_block(struct crc_map *m, size_t *cap, uint64_t i)
{
	if (m->n && m->index[m->n - 1] == i)
		return 0;
	if (m->n == *cap) {
		size_t c = *cap ? *cap * 2 : 1024;
		uint64_t *v = realloc(m->index, c * sizeof *v);

		if (!v) {
			error_set(ENOMEM, "out of memory");
			return -1;
		}
		m->index = v;
		*cap = c;
	}
	m->index[m->n++] = i;
	return 0;
}

/* The data blocks of src: every block with a byte that is not in a zero
 * extent. */
static int find_data(const struct crc_source *src, void *opaque,
		     struct crc_map *m)
{
	size_t cap = 0;
	uint64_t off = 0;

	while (off < src->size) {
		uint64_t len = 0;
		bool zero = false;

		if (src->extent(opaque, off, src->size - off, &len, &zero) < 0)
			return -1;
		if (len == 0 || len > src->size - off) {
			error_set(EPROTO,
				  "bad extent at offset %" PRIu64 ": %" PRIu64
				  " bytes",
				  off, len);
			return -1;
		}
		if (!zero)
			for (uint64_t i = off / CRC_BLOCK;
			     i <= (off + len - 1) / CRC_BLOCK; i++)
				if (add_block(m, &cap, i) < 0)
					return -1;
		off += len;
	}
	return 0;
}

struct job {
	const struct crc_source *src;
	struct crc_map *m;
	pthread_mutex_t lock;
	size_t next; /* the next of m->index to read; lock */
	int errnum;  /* the first failure; lock */
	char msg[512];
};

struct worker {
	struct job *job;
	void *opaque;
	pthread_t thread;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct job *j = w->job;
	unsigned char *buf = malloc(CRC_BLOCK);

	for (;;) {
		size_t k;
		uint64_t i, len;

		pthread_mutex_lock(&j->lock);
		if (!buf && !j->errnum) {
			j->errnum = ENOMEM;
			snprintf(j->msg, sizeof j->msg, "out of memory");
		}
		k = j->errnum ? j->m->n : j->next++;
		pthread_mutex_unlock(&j->lock);
		if (k >= j->m->n)
			break;
		i = j->m->index[k];
		len = crc_block_len(j->m, i);
		if (j->src->pread(w->opaque, buf, len, i * CRC_BLOCK) < 0) {
			pthread_mutex_lock(&j->lock);
			if (!j->errnum) {
				j->errnum = error_errno();
				snprintf(j->msg, sizeof j->msg, "%s",
					 error_msg());
			}
			pthread_mutex_unlock(&j->lock);
			break;
		}
		j->m->crc[k] = (uint32_t)crc32(0, buf, (uInt)len);
	}
	free(buf);
	return NULL;
}

/* The total from the blocks: zero runs combined in, never read. */
static uint32_t total_of(const struct crc_map *m)
{
	uLong crc = 0;
	uint64_t next = 0; /* the first block not yet in crc */

	for (size_t k = 0; k < m->n; k++) {
		uint64_t i = m->index[k], len = crc_block_len(m, i);

		if (i > next)
			crc = crc32_combine64(
			    crc, crc_zeros((i - next) * CRC_BLOCK),
			    (z_off64_t)((i - next) * CRC_BLOCK));
		crc = crc32_combine64(crc, m->crc[k], (z_off64_t)len);
		next = i + 1;
	}
	if (next * CRC_BLOCK < m->size) {
		uint64_t rest = m->size - next * CRC_BLOCK;

		crc = crc32_combine64(crc, crc_zeros(rest), (z_off64_t)rest);
	}
	return (uint32_t)crc;
}

int crc_compute(const struct crc_source *src, void *const *opaques,
		unsigned nthreads, struct crc_map *out)
{
	struct job j = { .src = src, .m = out };
	struct worker w[64];
	unsigned started = 0;

	memset(out, 0, sizeof *out);
	out->size = src->size;
	out->nblocks = (src->size + CRC_BLOCK - 1) / CRC_BLOCK;
	if (nthreads < 1 || nthreads > 64) {
		error_set(EINVAL, "%u threads: 1-64 expected", nthreads);
		return -1;
	}
	if (find_data(src, opaques[0], out) < 0)
		goto fail;
	out->crc = calloc(out->n ? out->n : 1, sizeof *out->crc);
	if (!out->crc) {
		error_set(ENOMEM, "out of memory");
		goto fail;
	}
	pthread_mutex_init(&j.lock, NULL);
	if (nthreads > out->n)
		nthreads = out->n ? (unsigned)out->n : 1;
	for (unsigned t = 0; t < nthreads; t++) {
		w[t].job = &j;
		w[t].opaque = opaques[t];
		if (t > 0 && pthread_create(&w[t].thread, NULL, work, &w[t]))
			break;
		started = t + 1;
	}
	work(&w[0]);
	for (unsigned t = 1; t < started; t++)
		pthread_join(w[t].thread, NULL);
	pthread_mutex_destroy(&j.lock);
	if (j.errnum) {
		error_set(j.errnum, "%s", j.msg);
		goto fail;
	}
	for (size_t k = 0; k < out->n; k++)
		out->data += crc_block_len(out, out->index[k]);
	out->total = total_of(out);
	return 0;
fail:
	crc_map_free(out);
	return -1;
}

/* Data blocks per "d" line. */
#define PER_LINE 32

int crc_map_write(const struct crc_map *m, bool blocks, FILE *f)
{
	fprintf(f, "kvmmigfs-crc 1 %" PRIu64 " %u\n", m->size, CRC_BLOCK);
	for (size_t k = 0; blocks && k < m->n;) {
		size_t run = 1;

		while (k + run < m->n && run < PER_LINE &&
		       m->index[k + run] == m->index[k] + run)
			run++;
		fprintf(f, "d %" PRIu64, m->index[k]);
		for (size_t r = 0; r < run; r++)
			fprintf(f, " %08" PRIx32, m->crc[k + r]);
		fputc('\n', f);
		k += run;
	}
	fprintf(f, "total %08" PRIx32 "\n", m->total);
	return ferror(f) ? -1 : 0;
}

static int bad(struct crc_map *m, int line, const char *what)
{
	error_set(EPROTO, "checksum list, line %d: %s", line, what);
	crc_map_free(m);
	return -1;
}

/* A CRC: exactly 8 hex digits at *p, which moves past them. */
static int parse_crc(const char **p, uint32_t *crc)
{
	uint32_t v = 0;

	for (int i = 0; i < 8; i++) {
		char c = (*p)[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
					       : -1;

		if (d < 0)
			return -1;
		v = v << 4 | (uint32_t)d;
	}
	*p += 8;
	*crc = v;
	return 0;
}

int crc_map_parse(const char *text, struct crc_map *out)
{
	const char *p = text;
	size_t cap = 0, ccap = 0;
	int line = 1, have_total = 0;
	unsigned block;
	int used = 0;

	memset(out, 0, sizeof *out);
	if (sscanf(p, "kvmmigfs-crc 1 %" SCNu64 " %u%n", &out->size, &block,
		   &used) != 2 ||
	    p[used] != '\n')
		return bad(out, line, "not a kvmmigfs-crc 1 header");
	if (block != CRC_BLOCK)
		return bad(out, line, "another block size");
	out->nblocks = (out->size + CRC_BLOCK - 1) / CRC_BLOCK;
	p += used + 1;
	for (line = 2; *p; line++) {
		if (*p == '#') { /* a keepalive or a remark */
			p += strcspn(p, "\n");
		} else if (strncmp(p, "d ", 2) == 0) {
			char *end;
			uint64_t i;

			errno = 0;
			i = strtoull(p + 2, &end, 10);
			if (errno || end == p + 2 || i >= out->nblocks ||
			    (out->n && i <= out->index[out->n - 1]))
				return bad(out, line, "bad block number");
			p = end;
			while (*p == ' ') {
				uint32_t crc;

				p++;
				if (i >= out->nblocks)
					return bad(out, line, "past the end");
				if (parse_crc(&p, &crc) < 0)
					return bad(out, line, "bad CRC");
				if (add_block(out, &cap, i) < 0) {
					crc_map_free(out);
					return -1;
				}
				if (ccap < cap) {
					uint32_t *c =
					    realloc(out->crc, cap * sizeof *c);

					if (!c) {
						error_set(ENOMEM,
							  "out of memory");
						crc_map_free(out);
						return -1;
					}
					out->crc = c;
					ccap = cap;
				}
				out->crc[out->n - 1] = crc;
				out->data += crc_block_len(out, i);
				i++;
			}
		} else if (strncmp(p, "total ", 6) == 0) {
			p += 6;
			if (parse_crc(&p, &out->total) < 0)
				return bad(out, line, "bad CRC");
			have_total = 1;
		} else {
			return bad(out, line, "unknown line");
		}
		if (*p != '\n')
			return bad(out, line, "junk at the end of the line");
		p++;
		if (have_total && *p)
			return bad(out, line + 1, "lines after the total");
	}
	if (!have_total)
		return bad(out, line, "no total");
	return 0;
}

uint64_t crc_first_difference(const struct crc_map *a, const struct crc_map *b)
{
	size_t ka = 0, kb = 0;

	/* Only blocks that are data in either can differ. */
	while (ka < a->n || kb < b->n) {
		uint64_t ia = ka < a->n ? a->index[ka] : UINT64_MAX;
		uint64_t ib = kb < b->n ? b->index[kb] : UINT64_MAX;
		uint64_t i = ia < ib ? ia : ib;

		if (crc_block(a, i) != crc_block(b, i))
			return i;
		ka += ia == i;
		kb += ib == i;
	}
	return UINT64_MAX;
}
