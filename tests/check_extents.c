/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tests of nbd/extents.c: the extent map and its lseek answers. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../nbd/extents.h"
#include "suites.h"

#define D false /* data */
#define Z true	/* reads as zeros */

/* The map must hold exactly the n extents of want, and be well-formed;
 * known is their total length. */
static void expect_map(const struct extent_map *m, const struct extent *want,
		       size_t n)
{
	uint64_t known = 0;

	ck_assert_msg(m->n == n, "%zu extents, expected %zu", m->n, n);
	for (size_t i = 0; i < n; i++)
		known += want[i].length;
	/* The running total the staging path publishes for stat. */
	ck_assert_msg(m->known == known, "known %llu bytes, expected %llu",
		      (unsigned long long)m->known, (unsigned long long)known);
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(m->v[i].offset == want[i].offset &&
				  m->v[i].length == want[i].length &&
				  m->v[i].zero == want[i].zero,
			      "extent %zu: {%llu, %llu, %d}, expected {%llu, "
			      "%llu, %d}",
			      i, (unsigned long long)m->v[i].offset,
			      (unsigned long long)m->v[i].length, m->v[i].zero,
			      (unsigned long long)want[i].offset,
			      (unsigned long long)want[i].length, want[i].zero);
	}
}

#define MAP(m, ...)                                                            \
	do {                                                                   \
		static const struct extent w_[] = { __VA_ARGS__ };             \
		expect_map(m, w_, sizeof w_ / sizeof w_[0]);                   \
	} while (0)

#define ADD(m, off, len, kind)                                                 \
	ck_assert_int_eq(extent_map_add(m, off, len, kind), 0)

START_TEST(test_init)
{
	struct extent_map m;

	memset(&m, 0x5a, sizeof m);
	extent_map_init(&m, 1000);
	ck_assert_uint_eq(m.size, 1000);
	ck_assert_uint_eq(m.n, 0);
	ck_assert_ptr_null(extent_map_find(&m, 0));
	extent_map_release(&m);
	ck_assert_ptr_null(m.v);
	ck_assert_uint_eq(m.n, 0);
}
END_TEST

START_TEST(test_add_one)
{
	struct extent_map m;

	extent_map_init(&m, 100);
	ADD(&m, 10, 20, Z);
	MAP(&m, { 10, 20, Z });
	extent_map_release(&m);
}
END_TEST

START_TEST(test_merge)
{
	struct extent_map m;

	extent_map_init(&m, 100);
	/* Touching on the left. */
	ADD(&m, 0, 10, D);
	ADD(&m, 10, 10, D);
	MAP(&m, { 0, 20, D });
	/* Touching on the right. */
	ADD(&m, 50, 10, Z);
	ADD(&m, 40, 10, Z);
	MAP(&m, { 0, 20, D }, { 40, 20, Z });
	/* Filling the gap between two of the same kind: one extent. */
	ADD(&m, 70, 10, Z);
	ADD(&m, 60, 10, Z);
	MAP(&m, { 0, 20, D }, { 40, 40, Z });
	/* Another kind: no merging. */
	ADD(&m, 20, 10, Z);
	ADD(&m, 80, 20, D);
	MAP(&m, { 0, 20, D }, { 20, 10, Z }, { 40, 40, Z }, { 80, 20, D });
	/* Closing the last gap: zero, between a zero and a zero. */
	ADD(&m, 30, 10, Z);
	MAP(&m, { 0, 20, D }, { 20, 60, Z }, { 80, 20, D });
	extent_map_release(&m);
}
END_TEST

START_TEST(test_merge_gaps_of_one_add)
{
	struct extent_map m;

	/* Known data in the middle; one zero add around it fills both
	 * sides, and a later data add joins everything that is data. */
	extent_map_init(&m, 100);
	ADD(&m, 10, 10, Z);
	ADD(&m, 30, 10, Z);
	ADD(&m, 50, 10, Z);
	ADD(&m, 0, 100, D);
	MAP(&m, { 0, 10, D }, { 10, 10, Z }, { 20, 10, D }, { 30, 10, Z },
	    { 40, 10, D }, { 50, 10, Z }, { 60, 40, D });
	extent_map_release(&m);

	extent_map_init(&m, 100);
	ADD(&m, 10, 10, Z);
	ADD(&m, 30, 10, Z);
	ADD(&m, 0, 100, Z);
	MAP(&m, { 0, 100, Z });
	extent_map_release(&m);
}
END_TEST

START_TEST(test_overlap_keeps_known)
{
	struct extent_map m;

	extent_map_init(&m, 100);
	ADD(&m, 10, 10, D);
	ADD(&m, 0, 40, Z);
	MAP(&m, { 0, 10, Z }, { 10, 10, D }, { 20, 20, Z });
	/* Entirely known: nothing changes. */
	ADD(&m, 5, 10, D);
	ADD(&m, 12, 3, Z);
	ADD(&m, 0, 40, D);
	MAP(&m, { 0, 10, Z }, { 10, 10, D }, { 20, 20, Z });
	/* Partly known: only the unknown tail is added. */
	ADD(&m, 30, 30, D);
	MAP(&m, { 0, 10, Z }, { 10, 10, D }, { 20, 20, Z }, { 40, 20, D });
	ADD(&m, 50, 20, Z);
	MAP(&m, { 0, 10, Z }, { 10, 10, D }, { 20, 20, Z }, { 40, 20, D },
	    { 60, 10, Z });
	extent_map_release(&m);
}
END_TEST

START_TEST(test_cut_at_size)
{
	struct extent_map m;

	extent_map_init(&m, 100);
	ADD(&m, 90, 50, Z);
	MAP(&m, { 90, 10, Z });
	ADD(&m, 100, 10, D);
	ADD(&m, 1000, 10, D);
	ADD(&m, UINT64_MAX, 1, D);
	MAP(&m, { 90, 10, Z });
	ADD(&m, 50, UINT64_MAX, D);
	MAP(&m, { 50, 40, D }, { 90, 10, Z });
	ADD(&m, 0, UINT64_MAX, Z);
	MAP(&m, { 0, 50, Z }, { 50, 40, D }, { 90, 10, Z });
	extent_map_release(&m);

	extent_map_init(&m, 0);
	ADD(&m, 0, 10, Z);
	ck_assert_uint_eq(m.n, 0);
	extent_map_release(&m);
}
END_TEST

START_TEST(test_zero_length)
{
	struct extent_map m;

	extent_map_init(&m, 100);
	ADD(&m, 10, 0, Z);
	ck_assert_uint_eq(m.n, 0);
	ck_assert_ptr_null(extent_map_find(&m, 10));
	extent_map_release(&m);
}
END_TEST

START_TEST(test_many)
{
	struct extent_map m;

	/* Alternating kinds: no merging, the array grows. */
	extent_map_init(&m, 10000);
	for (uint64_t i = 0; i < 1000; i += 2)
		ADD(&m, i * 10, 10, (i / 2) % 2 ? Z : D);
	ck_assert_uint_eq(m.n, 500);
	for (uint64_t i = 1; i < 1000; i += 2)
		ADD(&m, i * 10, 10, (i / 2) % 2 ? Z : D);
	/* Each odd slot has its left neighbour's kind: they merge in pairs. */
	ck_assert_uint_eq(m.n, 500);
	ck_assert_uint_eq(m.v[0].offset, 0);
	ck_assert_uint_eq(m.v[0].length, 20);
	ck_assert_uint_eq(m.v[499].offset, 9980);
	ck_assert_uint_eq(m.v[499].length, 20);
	extent_map_release(&m);
}
END_TEST

START_TEST(test_find)
{
	struct extent_map m;
	const struct extent *e;

	extent_map_init(&m, 100);
	ADD(&m, 10, 10, D);
	ADD(&m, 20, 10, Z);
	ADD(&m, 50, 50, Z);

	ck_assert_ptr_null(extent_map_find(&m, 0));
	ck_assert_ptr_null(extent_map_find(&m, 9));
	e = extent_map_find(&m, 10);
	ck_assert_ptr_eq(e, &m.v[0]);
	ck_assert_ptr_eq(extent_map_find(&m, 19), &m.v[0]);
	e = extent_map_find(&m, 20);
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(e->offset, 20);
	ck_assert_uint_eq(e->length, 10);
	ck_assert(e->zero);
	ck_assert_ptr_eq(extent_map_find(&m, 29), &m.v[1]);
	ck_assert_ptr_null(extent_map_find(&m, 30));
	ck_assert_ptr_null(extent_map_find(&m, 49));
	ck_assert_ptr_eq(extent_map_find(&m, 50), &m.v[2]);
	ck_assert_ptr_eq(extent_map_find(&m, 99), &m.v[2]);
	ck_assert_ptr_null(extent_map_find(&m, 100));
	ck_assert_ptr_null(extent_map_find(&m, UINT64_MAX));
	extent_map_release(&m);
}
END_TEST

START_TEST(test_is_zero)
{
	struct extent_map m;

	extent_map_init(&m, 100);
	ADD(&m, 0, 10, D);
	ADD(&m, 10, 30, Z);
	ADD(&m, 40, 10, D);
	ADD(&m, 60, 40, Z);

	ck_assert(extent_map_is_zero(&m, 10, 30));
	ck_assert(extent_map_is_zero(&m, 15, 5));
	ck_assert(extent_map_is_zero(&m, 39, 1));
	ck_assert(!extent_map_is_zero(&m, 9, 2));
	ck_assert(!extent_map_is_zero(&m, 30, 11));
	ck_assert(!extent_map_is_zero(&m, 0, 1));
	/* Unknown is not zero. */
	ck_assert(!extent_map_is_zero(&m, 50, 1));
	ck_assert(!extent_map_is_zero(&m, 55, 10));
	ck_assert(!extent_map_is_zero(&m, 0, 100));
	ck_assert(extent_map_is_zero(&m, 60, 40));
	/* Past the end nothing is known. */
	ck_assert(!extent_map_is_zero(&m, 60, 41));
	ck_assert(!extent_map_is_zero(&m, 100, 1));
	/* An empty range is trivially zero. */
	ck_assert(extent_map_is_zero(&m, 5, 0));
	extent_map_release(&m);
}
END_TEST

/* extent_map_seek() with *missing checked untouched unless -EAGAIN. */
static int64_t seek(const struct extent_map *m, int64_t offset, int whence)
{
	uint64_t missing = 0xdeadbeef;
	int64_t r = extent_map_seek(m, offset, whence, &missing);

	if (r != -EAGAIN)
		ck_assert_uint_eq(missing, 0xdeadbeef);
	return r;
}

static uint64_t seek_missing(const struct extent_map *m, int64_t offset,
			     int whence)
{
	uint64_t missing = 0xdeadbeef;

	ck_assert_int_eq(extent_map_seek(m, offset, whence, &missing), -EAGAIN);
	return missing;
}

START_TEST(test_seek_data_at_start)
{
	struct extent_map m;

	extent_map_init(&m, 100);
	ADD(&m, 0, 30, D);
	ADD(&m, 30, 20, Z);
	ADD(&m, 50, 50, D);
	ck_assert_int_eq(seek(&m, 0, SEEK_DATA), 0);
	ck_assert_int_eq(seek(&m, 29, SEEK_DATA), 29);
	ck_assert_int_eq(seek(&m, 30, SEEK_DATA), 50);
	ck_assert_int_eq(seek(&m, 49, SEEK_DATA), 50);
	ck_assert_int_eq(seek(&m, 99, SEEK_DATA), 99);
	ck_assert_int_eq(seek(&m, 0, SEEK_HOLE), 30);
	ck_assert_int_eq(seek(&m, 30, SEEK_HOLE), 30);
	ck_assert_int_eq(seek(&m, 49, SEEK_HOLE), 49);
	ck_assert_int_eq(seek(&m, 50, SEEK_HOLE), 100);
	ck_assert_int_eq(seek(&m, 99, SEEK_HOLE), 100);
	extent_map_release(&m);
}
END_TEST

START_TEST(test_seek_hole_at_start)
{
	struct extent_map m;

	extent_map_init(&m, 100);
	ADD(&m, 0, 40, Z);
	ADD(&m, 40, 20, D);
	ADD(&m, 60, 40, Z);
	ck_assert_int_eq(seek(&m, 0, SEEK_DATA), 40);
	ck_assert_int_eq(seek(&m, 0, SEEK_HOLE), 0);
	ck_assert_int_eq(seek(&m, 45, SEEK_HOLE), 60);
	ck_assert_int_eq(seek(&m, 45, SEEK_DATA), 45);
	ck_assert_int_eq(seek(&m, 60, SEEK_DATA), -ENXIO);
	ck_assert_int_eq(seek(&m, 99, SEEK_DATA), -ENXIO);
	ck_assert_int_eq(seek(&m, 60, SEEK_HOLE), 60);
	extent_map_release(&m);
}
END_TEST

START_TEST(test_seek_all_hole)
{
	struct extent_map m;

	extent_map_init(&m, 1 << 20);
	ADD(&m, 0, 1 << 20, Z);
	ck_assert_int_eq(seek(&m, 0, SEEK_DATA), -ENXIO);
	ck_assert_int_eq(seek(&m, 12345, SEEK_DATA), -ENXIO);
	ck_assert_int_eq(seek(&m, 0, SEEK_HOLE), 0);
	ck_assert_int_eq(seek(&m, 12345, SEEK_HOLE), 12345);
	extent_map_release(&m);
}
END_TEST

START_TEST(test_seek_all_data)
{
	struct extent_map m;

	extent_map_init(&m, 1 << 20);
	ADD(&m, 0, 1 << 20, D);
	ck_assert_int_eq(seek(&m, 0, SEEK_DATA), 0);
	ck_assert_int_eq(seek(&m, 777, SEEK_DATA), 777);
	ck_assert_int_eq(seek(&m, 0, SEEK_HOLE), 1 << 20);
	ck_assert_int_eq(seek(&m, (1 << 20) - 1, SEEK_HOLE), 1 << 20);
	extent_map_release(&m);
}
END_TEST

START_TEST(test_seek_end_and_errors)
{
	struct extent_map m;

	extent_map_init(&m, 100);
	ADD(&m, 0, 100, D);
	ck_assert_int_eq(seek(&m, 100, SEEK_DATA), -ENXIO);
	ck_assert_int_eq(seek(&m, 100, SEEK_HOLE), -ENXIO);
	ck_assert_int_eq(seek(&m, 101, SEEK_HOLE), -ENXIO);
	ck_assert_int_eq(seek(&m, INT64_MAX, SEEK_DATA), -ENXIO);
	ck_assert_int_eq(seek(&m, -1, SEEK_DATA), -EINVAL);
	ck_assert_int_eq(seek(&m, -1, SEEK_HOLE), -EINVAL);
	ck_assert_int_eq(seek(&m, INT64_MIN, SEEK_HOLE), -EINVAL);
	ck_assert_int_eq(seek(&m, 0, SEEK_SET), -EINVAL);
	ck_assert_int_eq(seek(&m, 0, SEEK_CUR), -EINVAL);
	ck_assert_int_eq(seek(&m, 0, SEEK_END), -EINVAL);
	ck_assert_int_eq(seek(&m, 0, 42), -EINVAL);
	extent_map_release(&m);

	/* An empty disk has nothing at any offset. */
	extent_map_init(&m, 0);
	ck_assert_int_eq(seek(&m, 0, SEEK_DATA), -ENXIO);
	ck_assert_int_eq(seek(&m, 0, SEEK_HOLE), -ENXIO);
	extent_map_release(&m);
}
END_TEST

START_TEST(test_seek_partial)
{
	struct extent_map m;

	extent_map_init(&m, 100);
	/* Nothing known. */
	ck_assert_uint_eq(seek_missing(&m, 0, SEEK_DATA), 0);
	ck_assert_uint_eq(seek_missing(&m, 42, SEEK_HOLE), 42);

	/* [0,20) zero known, [20,100) not. */
	ADD(&m, 0, 20, Z);
	ck_assert_int_eq(seek(&m, 5, SEEK_HOLE), 5);
	ck_assert_uint_eq(seek_missing(&m, 5, SEEK_DATA), 20);
	ck_assert_uint_eq(seek_missing(&m, 20, SEEK_DATA), 20);

	/* Add the missing part as zero then data: the answer is final. */
	ADD(&m, 20, 30, Z);
	ck_assert_uint_eq(seek_missing(&m, 5, SEEK_DATA), 50);
	ADD(&m, 50, 10, D);
	ck_assert_int_eq(seek(&m, 5, SEEK_DATA), 50);
	ck_assert_int_eq(seek(&m, 50, SEEK_HOLE), -EAGAIN);
	ck_assert_uint_eq(seek_missing(&m, 50, SEEK_HOLE), 60);
	ADD(&m, 60, 40, D);
	ck_assert_int_eq(seek(&m, 50, SEEK_HOLE), 100);
	ck_assert_int_eq(seek(&m, 50, SEEK_DATA), 50);
	extent_map_release(&m);

	/* A gap in the middle: the first unknown byte after offset. */
	extent_map_init(&m, 100);
	ADD(&m, 0, 10, D);
	ADD(&m, 40, 60, Z);
	ck_assert_int_eq(seek(&m, 0, SEEK_DATA), 0);
	ck_assert_uint_eq(seek_missing(&m, 0, SEEK_HOLE), 10);
	ck_assert_uint_eq(seek_missing(&m, 25, SEEK_HOLE), 25);
	ck_assert_int_eq(seek(&m, 40, SEEK_HOLE), 40);
	ck_assert_int_eq(seek(&m, 40, SEEK_DATA), -ENXIO);
	ADD(&m, 10, 30, D);
	ck_assert_int_eq(seek(&m, 0, SEEK_HOLE), 40);
	ck_assert_int_eq(seek(&m, 25, SEEK_DATA), 25);
	extent_map_release(&m);
}
END_TEST

/*
 * The property test: random maps built by random adds, compared with a
 * byte array of the same disk for every offset.
 */
enum { UNKNOWN, DATA, ZERO };

struct model {
	unsigned char *b;
	uint64_t size;
};

static void model_add(struct model *md, uint64_t off, uint64_t len, bool zero)
{
	for (uint64_t i = off; i < md->size && i - off < len; i++)
		if (md->b[i] == UNKNOWN)
			md->b[i] = zero ? ZERO : DATA;
}

/* What lseek must answer, from the model. */
static int64_t model_seek(const struct model *md, uint64_t off, int whence,
			  uint64_t *missing)
{
	int want = whence == SEEK_DATA ? DATA : ZERO;

	if (off >= md->size)
		return -ENXIO;
	for (uint64_t i = off; i < md->size; i++) {
		if (md->b[i] == UNKNOWN) {
			*missing = i;
			return -EAGAIN;
		}
		if (md->b[i] == want)
			return (int64_t)i;
	}
	return whence == SEEK_DATA ? -ENXIO : (int64_t)md->size;
}

static void check_against_model(const struct extent_map *m,
				const struct model *md, unsigned seed)
{
	uint64_t end = 0;

	/* Sorted, not overlapping, within the disk, merged. */
	for (size_t i = 0; i < m->n; i++) {
		const struct extent *e = &m->v[i];

		ck_assert_msg(e->length > 0, "seed %u: empty extent", seed);
		ck_assert_msg(i == 0 || e->offset >= end,
			      "seed %u: extents overlap", seed);
		ck_assert_msg(i == 0 || e->offset > end ||
				  e->zero != m->v[i - 1].zero,
			      "seed %u: extent %zu not merged", seed, i);
		end = e->offset + e->length;
		ck_assert_msg(end <= md->size, "seed %u: past the end", seed);
	}

	for (uint64_t off = 0; off <= md->size + 1; off++) {
		const struct extent *e = extent_map_find(m, off);
		int kind = off < md->size ? md->b[off] : UNKNOWN;

		if (kind == UNKNOWN) {
			ck_assert_msg(!e, "seed %u: %llu found", seed,
				      (unsigned long long)off);
		} else {
			uint64_t lo = off, hi = off;

			/* The extent is the whole run of this kind. */
			while (lo > 0 && md->b[lo - 1] == kind)
				lo--;
			while (hi < md->size && md->b[hi] == kind)
				hi++;
			ck_assert_msg(e && e->offset == lo &&
					  e->offset + e->length == hi &&
					  e->zero == (kind == ZERO),
				      "seed %u: offset %llu: extent wrong",
				      seed, (unsigned long long)off);
		}

		for (int w = 0; w < 2; w++) {
			int whence = w ? SEEK_HOLE : SEEK_DATA;
			uint64_t got_missing = UINT64_MAX, want_missing = 0;
			int64_t want =
			    model_seek(md, off, whence, &want_missing);
			int64_t got = extent_map_seek(m, (int64_t)off, whence,
						      &got_missing);

			ck_assert_msg(got == want,
				      "seed %u: seek(%llu, %s) = %lld, "
				      "expected %lld",
				      seed, (unsigned long long)off,
				      w ? "SEEK_HOLE" : "SEEK_DATA",
				      (long long)got, (long long)want);
			if (want == -EAGAIN)
				ck_assert_msg(got_missing == want_missing,
					      "seed %u: seek(%llu): missing "
					      "%llu, expected %llu",
					      seed, (unsigned long long)off,
					      (unsigned long long)got_missing,
					      (unsigned long long)want_missing);
		}
	}

	/* is_zero over ranges starting everywhere. */
	for (uint64_t off = 0; off <= md->size; off++) {
		uint64_t len = (uint64_t)(rand() % (int)(md->size + 3));
		bool want = true;

		for (uint64_t i = off; i < off + len; i++)
			if (i >= md->size || md->b[i] != ZERO)
				want = false;
		ck_assert_msg(extent_map_is_zero(m, off, len) == want,
			      "seed %u: is_zero(%llu, %llu) != %d", seed,
			      (unsigned long long)off, (unsigned long long)len,
			      want);
	}
}

static void random_run(unsigned seed)
{
	struct extent_map m;
	struct model md;
	int adds;

	srand(seed);
	md.size = (uint64_t)(rand() % 200);
	md.b = calloc(md.size + 1, 1);
	ck_assert_ptr_nonnull(md.b);
	extent_map_init(&m, md.size);
	adds = rand() % 25;
	for (int i = 0; i < adds; i++) {
		uint64_t off = (uint64_t)(rand() % (int)(md.size + 10));
		uint64_t len = (uint64_t)(rand() % (int)(md.size / 3 + 5));
		bool zero = rand() % 2;

		if (rand() % 20 == 0)
			len = UINT64_MAX - (uint64_t)(rand() % 2) * off;
		model_add(&md, off, len, zero);
		if (extent_map_add(&m, off, len, zero) < 0)
			break;
		if (rand() % 4 == 0 || i == adds - 1)
			check_against_model(&m, &md, seed);
	}
	/* Fill the rest, as block status would, and check the final map. */
	if (rand() % 2) {
		bool zero = rand() % 2;

		model_add(&md, 0, md.size, zero);
		ADD(&m, 0, md.size, zero);
	}
	check_against_model(&m, &md, seed);
	extent_map_release(&m);
	free(md.b);
}

START_TEST(test_random_maps)
{
	for (unsigned seed = 1; seed <= 300; seed++)
		random_run(seed);
}
END_TEST

/* A range that would wrap past UINT64_MAX is not "all zero". */
START_TEST(test_is_zero_wraps)
{
	struct extent_map m;
	bool r1, r2;

	extent_map_init(&m, 100);
	r1 = extent_map_is_zero(&m, 10, UINT64_MAX);
	ADD(&m, 0, 100, Z);
	r2 = extent_map_is_zero(&m, 50, UINT64_MAX - 10);
	extent_map_release(&m);
	ck_assert_msg(!r1, "empty map: [10, 10 + UINT64_MAX) is zero");
	ck_assert_msg(!r2, "[50, 40) wrapped is zero past the end");
}
END_TEST

Suite *extents_suite(void)
{
	Suite *s = suite_create("extents");
	TCase *ta = tcase_create("add");
	TCase *ts = tcase_create("seek");
	TCase *tr = tcase_create("random");

	tcase_add_test(ta, test_init);
	tcase_add_test(ta, test_add_one);
	tcase_add_test(ta, test_merge);
	tcase_add_test(ta, test_merge_gaps_of_one_add);
	tcase_add_test(ta, test_overlap_keeps_known);
	tcase_add_test(ta, test_cut_at_size);
	tcase_add_test(ta, test_zero_length);
	tcase_add_test(ta, test_many);
	tcase_add_test(ta, test_find);
	tcase_add_test(ta, test_is_zero);
	suite_add_tcase(s, ta);

	tcase_add_test(ts, test_seek_data_at_start);
	tcase_add_test(ts, test_seek_hole_at_start);
	tcase_add_test(ts, test_seek_all_hole);
	tcase_add_test(ts, test_seek_all_data);
	tcase_add_test(ts, test_seek_end_and_errors);
	tcase_add_test(ts, test_seek_partial);
	suite_add_tcase(s, ts);

	tcase_add_test(tr, test_random_maps);
	tcase_set_timeout(tr, 120);
	suite_add_tcase(s, tr);

	tcase_add_test(ta, test_is_zero_wraps);
	return s;
}
