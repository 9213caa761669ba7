/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tests of nbd/crc.c: CRC32 maps of disks, against zlib over the bytes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../common/error.h"
#include "../nbd/crc.h"
#include "suites.h"

/* A disk in memory with its extents: zero[i] says whether byte range
 * [cut[i], cut[i+1]) is reported as a zero extent.  Reads count bytes. */
struct memdisk {
	unsigned char *bytes;
	uint64_t size;
	uint64_t cut[16];
	bool zero[16];
	int ncut;
	uint64_t read;	  /* bytes read, atomics */
	uint64_t fail_at; /* a read covering this offset fails; 0: none */
};

static int mem_extent(void *opaque, uint64_t off, uint64_t max, uint64_t *len,
		      bool *zero)
{
	struct memdisk *d = opaque;

	for (int i = 0; i < d->ncut; i++) {
		uint64_t end = i + 1 < d->ncut ? d->cut[i + 1] : d->size;

		if (off >= d->cut[i] && off < end) {
			*len = end - off < max ? end - off : max;
			*zero = d->zero[i];
			return 0;
		}
	}
	error_set(EIO, "no extent at %llu", (unsigned long long)off);
	return -1;
}

static int mem_pread(void *opaque, void *buf, size_t count, uint64_t off)
{
	struct memdisk *d = opaque;

	if (d->fail_at && off <= d->fail_at && d->fail_at < off + count) {
		error_set(ENOSPC, "injected failure at %llu",
			  (unsigned long long)d->fail_at);
		return -1;
	}
	memcpy(buf, d->bytes + off, count);
	__atomic_add_fetch(&d->read, count, __ATOMIC_RELAXED);
	return 0;
}

static const struct crc_source *source(struct memdisk *d)
{
	static __thread struct crc_source s;

	s.size = d->size;
	s.extent = mem_extent;
	s.pread = mem_pread;
	return &s;
}

/* A disk of size bytes: random data in [a, b) and [c, e), zeros
 * elsewhere; [a, b) and [c, e) reported as data, the rest as zero.  With
 * lie, the range between is reported as data too (allocated zeros). */
static void make(struct memdisk *d, uint64_t size, uint64_t a, uint64_t b,
		 uint64_t c, uint64_t e, bool lie)
{
	memset(d, 0, sizeof *d);
	d->size = size;
	d->bytes = calloc(1, size ? size : 1);
	ck_assert_ptr_nonnull(d->bytes);
	srand((unsigned)size);
	for (uint64_t i = a; i < b; i++)
		d->bytes[i] = (unsigned char)rand();
	for (uint64_t i = c; i < e; i++)
		d->bytes[i] = (unsigned char)rand();
	uint64_t cuts[] = { 0, a, b, c, e };
	bool zeros[] = { true, false, lie ? false : true, false, true };
	for (int i = 0; i < 5; i++) {
		uint64_t end = i + 1 < 5 ? cuts[i + 1] : size;

		if (end > cuts[i]) {
			d->cut[d->ncut] = cuts[i];
			d->zero[d->ncut++] = zeros[i];
		}
	}
}

static uint32_t zlib_crc(const struct memdisk *d)
{
	uLong crc = crc32(0, Z_NULL, 0);
	uint64_t off = 0;

	while (off < d->size) { /* uInt chunks */
		uint64_t n =
		    d->size - off > (1u << 30) ? (1u << 30) : d->size - off;

		crc = crc32(crc, d->bytes + off, (uInt)n);
		off += n;
	}
	return (uint32_t)crc;
}

static void expect_equal(struct memdisk *d, unsigned threads)
{
	void *ops[8];
	struct crc_map m;

	for (unsigned t = 0; t < threads; t++)
		ops[t] = d;
	ck_assert_int_eq(crc_compute(source(d), ops, threads, &m), 0);
	ck_assert_msg(
	    m.total == zlib_crc(d), "size %llu, %u threads: %08x, zlib %08x",
	    (unsigned long long)d->size, threads, m.total, zlib_crc(d));
	for (uint64_t i = 0; i < m.nblocks; i++) {
		uint64_t len = crc_block_len(&m, i);

		ck_assert_uint_eq(
		    crc_block(&m, i),
		    crc32(0, d->bytes + i * CRC_BLOCK, (uInt)len));
	}
	crc_map_free(&m);
}

START_TEST(test_layouts)
{
	const uint64_t M = CRC_BLOCK;
	struct memdisk d;
	const struct {
		uint64_t size, a, b, c, e;
		bool lie;
	} cases[] = {
		{ 0, 0, 0, 0, 0, false },		  /* empty */
		{ 1, 0, 1, 1, 1, false },		  /* one byte */
		{ 512, 0, 0, 0, 0, false },		  /* all zeros */
		{ 5 * M, 0, 5 * M, 5 * M, 5 * M, false }, /* all data */
		{ 10 * M + 12345, M / 2, 3 * M + 7, 7 * M, 9 * M, false },
		{ 10 * M + 12345, 100, 200, 10 * M, 10 * M + 12345, true },
		{ 3 * M - 1, 3 * M - 10, 3 * M - 1, 3 * M - 1, 3 * M - 1,
		  false }, /* data in the short last block */
		{ 64 * M, 8 * M, 8 * M + 1, 40 * M, 41 * M, true },
		{ 4 * M, 0, M, 2 * M, 3 * M, false }, /* a one-block gap */
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		make(&d, cases[i].size, cases[i].a, cases[i].b, cases[i].c,
		     cases[i].e, cases[i].lie);
		expect_equal(&d, 1);
		expect_equal(&d, 3);
		free(d.bytes);
	}
}
END_TEST

/* Zero extents are never read: a 10 MiB disk with one byte of data reads
 * one block. */
START_TEST(test_zeros_not_read)
{
	struct memdisk d;
	void *ops[1] = { &d };
	struct crc_map m;

	make(&d, 10 * CRC_BLOCK, 5 * CRC_BLOCK + 3, 5 * CRC_BLOCK + 4,
	     10 * CRC_BLOCK, 10 * CRC_BLOCK, false);
	ck_assert_int_eq(crc_compute(source(&d), ops, 1, &m), 0);
	ck_assert_uint_eq(d.read, CRC_BLOCK);
	ck_assert_uint_eq(m.data, CRC_BLOCK);
	ck_assert_uint_eq(m.n, 1);
	ck_assert(crc_block_is_data(&m, 5));
	ck_assert(!crc_block_is_data(&m, 4));
	ck_assert_uint_eq(m.total, zlib_crc(&d));
	crc_map_free(&m);
	free(d.bytes);
}
END_TEST

/* crc_zeros against zlib over real zeros, also lengths that are not
 * powers of two. */
START_TEST(test_zeros)
{
	static const uint64_t lens[] = { 0,	  1,	   2,
					 3,	  511,	   4096,
					 1048575, 1048576, 3 * 1048576 + 17 };
	unsigned char *z = calloc(1, 4 << 20);

	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
		ck_assert_uint_eq(crc_zeros(lens[i]),
				  crc32(0, z, (uInt)lens[i]));
	free(z);
}
END_TEST

START_TEST(test_read_error)
{
	struct memdisk d;
	void *ops[4] = { &d, &d, &d, &d };
	struct crc_map m;

	make(&d, 20 * CRC_BLOCK, 0, 20 * CRC_BLOCK, 20 * CRC_BLOCK,
	     20 * CRC_BLOCK, false);
	d.fail_at = 13 * CRC_BLOCK + 5;
	error_clear();
	ck_assert_int_eq(crc_compute(source(&d), ops, 4, &m), -1);
	ck_assert_int_eq(error_errno(), ENOSPC);
	ck_assert_str_eq(error_msg(), "injected failure at 13631493");
	ck_assert_ptr_null(m.index);
	free(d.bytes);
}
END_TEST

START_TEST(test_text)
{
	struct memdisk d;
	void *ops[1] = { &d };
	struct crc_map m, p;
	char *text = NULL;
	size_t len;
	FILE *f;

	/* 40 data blocks in two runs: more than one "d" line. */
	make(&d, 50 * CRC_BLOCK + 9, 0, 35 * CRC_BLOCK, 45 * CRC_BLOCK,
	     50 * CRC_BLOCK + 9, false);
	ck_assert_int_eq(crc_compute(source(&d), ops, 1, &m), 0);
	f = open_memstream(&text, &len);
	ck_assert_int_eq(crc_map_write(&m, true, f), 0);
	fclose(f);
	ck_assert_int_eq(crc_map_parse(text, &p), 0);
	ck_assert_uint_eq(p.size, m.size);
	ck_assert_uint_eq(p.n, m.n);
	ck_assert_uint_eq(p.total, m.total);
	ck_assert_uint_eq(p.data, m.data);
	for (size_t k = 0; k < m.n; k++) {
		ck_assert_uint_eq(p.index[k], m.index[k]);
		ck_assert_uint_eq(p.crc[k], m.crc[k]);
	}
	ck_assert_uint_eq(crc_first_difference(&m, &p), UINT64_MAX);
	/* A byte changed in block 46: that block differs first. */
	d.bytes[46 * CRC_BLOCK + 100] ^= 1;
	crc_map_free(&p);
	ck_assert_int_eq(crc_compute(source(&d), ops, 1, &p), 0);
	ck_assert_uint_eq(crc_first_difference(&m, &p), 46);
	ck_assert_uint_ne(p.total, m.total);
	crc_map_free(&p);
	free(text);
	crc_map_free(&m);
	free(d.bytes);
}
END_TEST

START_TEST(test_parse_bad)
{
	static const char *const bad[] = {
		"",
		"kvmmigfs-crc 2 10 1048576\ntotal 00000000\n",
		"kvmmigfs-crc 1 10 4096\ntotal 00000000\n",
		"kvmmigfs-crc 1 10 1048576\n",
		"kvmmigfs-crc 1 10 1048576\ntotal 0000000\n",
		"kvmmigfs-crc 1 10 1048576\ntotal 0000000g\n",
		"kvmmigfs-crc 1 10 1048576\ntotal 00000000 x\n",
		"kvmmigfs-crc 1 10 1048576\ntotal 00000000\ntotal 00000000\n",
		"kvmmigfs-crc 1 10 1048576\nd 1 00000000\ntotal 00000000\n",
		"kvmmigfs-crc 1 3145728 1048576\nd 2 00000000 00000000\n"
		"total 00000000\n",
		"kvmmigfs-crc 1 3145728 1048576\nd 1 00000000\nd 0 00000000\n"
		"total 00000000\n",
		"kvmmigfs-crc 1 10 1048576\nx\ntotal 00000000\n",
	};
	struct crc_map m;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		error_clear();
		ck_assert_msg(crc_map_parse(bad[i], &m) == -1, "accepted: %s",
			      bad[i]);
		ck_assert_int_eq(error_errno(), EPROTO);
	}
	ck_assert_int_eq(crc_map_parse("kvmmigfs-crc 1 3145728 1048576\n"
				       "d 1 0000000a 0000000b\n"
				       "total 0000abcd\n",
				       &m),
			 0);
	ck_assert_uint_eq(m.n, 2);
	ck_assert_uint_eq(crc_block(&m, 2), 0xb);
	ck_assert_uint_eq(crc_block(&m, 0), crc_zeros(CRC_BLOCK));
	ck_assert_uint_eq(m.total, 0xabcd);
	crc_map_free(&m);
}
END_TEST

Suite *crc_suite(void)
{
	Suite *s = suite_create("crc");
	TCase *tc = tcase_create("map");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_layouts);
	tcase_add_test(tc, test_zeros_not_read);
	tcase_add_test(tc, test_zeros);
	tcase_add_test(tc, test_read_error);
	tcase_add_test(tc, test_text);
	tcase_add_test(tc, test_parse_bad);
	suite_add_tcase(s, tc);
	return s;
}
