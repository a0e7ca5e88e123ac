/*
 * test_dataset: loaders, canonical order and histories, split, validation
 * slices, ranking negatives, the generator's speed, the samples CSV and
 * bad input (the generator itself: test_synth.c). Fixtures live in tests/fixtures/ (found relative to the
 * working directory, or via DCCL_FIXTURES); the same 31 logical ratings are
 * stored in the three MovieLens layouts so one set of hand-derived
 * expectations covers all three:
 *
 *   raw users 3 7 10 20 -> dense 0 1 2 3
 *   raw items 1 2 5 50 100 200..219 999 -> dense 0 1 2 3 4 5..24 25
 *   user 3 (dense 0), canonical order (ts, item):
 *     ts 400 item 1 (raw 2)   3.5 -> 0   hist []
 *     ts 500 item 3 (raw 50)  4.0 -> 1   hist []
 *     ts 600 item 0 (raw 1)   2.0 -> 0   hist [3]      tie at 600: item 0
 *     ts 600 item 2 (raw 5)   4.0 -> 1   hist [3]      before item 2
 *     ts 700 item 25 (raw 999) 5.0 -> 1  hist [3 2]
 *     ts 800 item 4 (raw 100) 4.0 -> 1   hist [3 2 25]
 *   (1M/100K ratings are integers: 3.5 is stored as 3, same label.)
 * Single-threaded.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "scripts/tools/movielens.h"
#include "scripts/tools/negatives.h"
#include "scripts/tools/synth.h"
#include "shared/clock.h"
#include "shared/data/dataset.h"
#include "shared/rng.h"

static char fixdir[1024];
static char tmpdir[256];
/* Set when a test skipped: main() then exits 77, not 0 (a skip is no pass). */
static const char *skipped;

/* Under valgrind or the sanitizers the speed test shrinks and stops
 * asserting rates. */
static int
slow_mode(void)
{
	const char *ld = getenv("LD_PRELOAD");

	return getenv("DCCL_SANITIZE") != NULL ||
	    getenv("DCCL_VALGRIND") != NULL ||
	    (ld != NULL && strstr(ld, "vgpreload") != NULL);
}

static const char *
fix(const char *rel)
{
	static char buf[4][1200];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", fixdir, rel);
	return buf[k];
}

static const char *
tmp(const char *rel)
{
	static char buf[4][600];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", tmpdir, rel);
	return buf[k];
}

static int
setup_all(void **state)
{
	const char *cand[] = { getenv("DCCL_FIXTURES"), "tests/fixtures",
		"../tests/fixtures", "../../tests/fixtures" };
	struct stat st;

	(void)state;
	for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++) {
		char p[1100];

		if (cand[i] == NULL)
			continue;
		snprintf(p, sizeof(p), "%s/ml-latest/ratings.csv", cand[i]);
		if (stat(p, &st) == 0) {
			snprintf(fixdir, sizeof(fixdir), "%s", cand[i]);
			break;
		}
	}
	if (fixdir[0] == '\0') {
		fprintf(stderr, "fixtures not found (set DCCL_FIXTURES)\n");
		return -1;
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_dataset.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	return 0;
}

static int
teardown_all(void **state)
{
	char cmd[400];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
load_ok(struct dataset *ds, struct dataset_meta *m, const char *dir, int H)
{
	struct dataset_opts o;
	struct dataset_err e;
	int rc;

	dataset_opts_default(&o);
	o.hist_k = H;
	dataset_init(ds);
	dataset_meta_init(m);
	rc = dataset_load_movielens(ds, m, dir, &o, &e);
	if (rc != 0)
		fail_msg("load %s: %d %s", dir, rc, e.msg);
}

/* Checks a sample's fields and history. */
static void
expect(const struct dataset *ds, size_t i, uint32_t u, uint32_t it,
    int64_t ts, float label, const uint32_t *h, size_t hn)
{
	const struct sample *s = &ds->s[i];

	assert_int_equal(s->user, u);
	assert_int_equal(s->item, it);
	assert_int_equal(s->ts, ts);
	assert_true(s->label == label);
	assert_int_equal(s->hist_n, hn);
	for (size_t j = 0; j < hn; j++)
		assert_int_equal(sample_hist(ds, s)[j], h[j]);
}

/* ------------------------------------------------------------------------ */

static void
test_detect(void **state)
{
	(void)state;
	assert_int_equal(dataset_detect(fix("ml-latest")), DATASET_FMT_LATEST);
	assert_int_equal(dataset_detect(fix("ml-1m")), DATASET_FMT_1M);
	assert_int_equal(dataset_detect(fix("ml-100k")), DATASET_FMT_100K);
	assert_int_equal(dataset_detect(fix("bad/genres")), DATASET_FMT_LATEST);
	assert_int_equal(dataset_detect(tmpdir), -ENOENT);
	assert_int_equal(dataset_detect("/nonexistent/dir"), -ENOENT);
}

static void
test_latest_ids_genres(void **state)
{
	struct dataset ds;
	struct dataset_meta m;
	const int64_t uraw[] = { 3, 7, 10, 20 };

	(void)state;
	load_ok(&ds, &m, fix("ml-latest"), 20);
	assert_int_equal(m.fmt, DATASET_FMT_LATEST);
	assert_int_equal(ds.n, 31);
	assert_int_equal(ds.n_users, 4);
	assert_int_equal(ds.n_items, 26);	/* 77 unrated: no id */
	assert_int_equal(ds.n_genres, 10);
	for (int u = 0; u < 4; u++)
		assert_int_equal(m.user_raw[u], uraw[u]);
	assert_int_equal(m.item_raw[0], 1);
	assert_int_equal(m.item_raw[4], 100);
	assert_int_equal(m.item_raw[5], 200);
	assert_int_equal(m.item_raw[25], 999);
	/* sorted genre names */
	assert_string_equal(m.genre[0], "Adventure");
	assert_string_equal(m.genre[3], "Comedy");
	assert_string_equal(m.genre[5], "Drama");
	assert_string_equal(m.genre[9], "Thriller");
	assert_int_equal(m.item_genres[0], 1 | 2 | 4 | 8 | 64);
	assert_int_equal(m.item_genres[1], 8 | 32 | 256); /* quoted title */
	assert_int_equal(m.item_genres[2], 8);
	assert_int_equal(m.item_genres[3], 16 | 128 | 512); /* "" and \r\n */
	assert_int_equal(m.item_genres[4], 0);	/* (no genres listed) */
	assert_int_equal(m.item_genres[5], 0);	/* not in movies.csv */
	assert_int_equal(m.item_genres[6], 32);	/* "Some | Pipe, Title" */
	assert_int_equal(m.item_genres[25], 0);
	for (size_t i = 0; i < ds.n; i++)
		assert_int_equal(ds.s[i].genres, m.item_genres[ds.s[i].item]);
	assert_true(ds.s[0].rating == 3.5f);
	dataset_fini(&ds);
	dataset_meta_fini(&m);
}

static void
test_history(void **state)
{
	struct dataset ds;
	struct dataset_meta m;
	const uint32_t h3[] = { 3 }, h32[] = { 3, 2 }, h3225[] = { 3, 2, 25 };
	const uint32_t h225[] = { 2, 25 };

	(void)state;
	load_ok(&ds, &m, fix("ml-latest"), 20);
	expect(&ds, 0, 0, 1, 400, 0, NULL, 0);
	expect(&ds, 1, 0, 3, 500, 1, NULL, 0);
	expect(&ds, 2, 0, 0, 600, 0, h3, 1);
	expect(&ds, 3, 0, 2, 600, 1, h3, 1);
	expect(&ds, 4, 0, 25, 700, 1, h32, 2);
	expect(&ds, 5, 0, 4, 800, 1, h3225, 3);
	/* user 7 (dense 1): 2.0 then 4.0, nothing before the positive */
	expect(&ds, 6, 1, 1, 100, 0, NULL, 0);
	expect(&ds, 7, 1, 2, 200, 1, NULL, 0);
	/* user 10 (dense 2) */
	expect(&ds, 8, 2, 3, 900, 0, NULL, 0);
	expect(&ds, 9, 2, 0, 1000, 1, NULL, 0);
	{
		const uint32_t h0[] = { 0 };

		expect(&ds, 10, 2, 1, 1100, 1, h0, 1);
	}
	/* user 20 (dense 3): positives at even positions, items 5, 7, ... */
	for (size_t k = 0; k < 20; k++) {
		const struct sample *s = &ds.s[11 + k];
		size_t np = (k + 1) / 2;	/* positives strictly before */

		assert_int_equal(s->user, 3);
		assert_int_equal(s->item, 5 + k);
		assert_int_equal(s->hist_n, np);
		for (size_t j = 0; j < np; j++)
			assert_int_equal(sample_hist(&ds, s)[j], 5 + 2 * j);
	}
	dataset_fini(&ds);
	dataset_meta_fini(&m);

	/* H = 2 keeps the last two, oldest first */
	load_ok(&ds, &m, fix("ml-latest"), 2);
	expect(&ds, 5, 0, 4, 800, 1, h225, 2);
	assert_int_equal(ds.s[30].hist_n, 2);
	assert_int_equal(sample_hist(&ds, &ds.s[30])[0], 5 + 16);
	assert_int_equal(sample_hist(&ds, &ds.s[30])[1], 5 + 18);
	dataset_fini(&ds);
	dataset_meta_fini(&m);

	/* H = 0: no history at all */
	load_ok(&ds, &m, fix("ml-latest"), 0);
	assert_int_equal(ds.hist_len, 0);
	dataset_fini(&ds);
	dataset_meta_fini(&m);
}

static void
test_formats_agree(void **state)
{
	struct dataset a, b, c;
	struct dataset_meta ma, mb, mc;

	(void)state;
	load_ok(&a, &ma, fix("ml-latest"), 20);
	load_ok(&b, &mb, fix("ml-1m"), 20);
	load_ok(&c, &mc, fix("ml-100k"), 20);
	assert_int_equal(mb.fmt, DATASET_FMT_1M);
	assert_int_equal(mc.fmt, DATASET_FMT_100K);
	assert_int_equal(a.n, b.n);
	assert_int_equal(a.n, c.n);
	assert_int_equal(a.hist_len, b.hist_len);
	assert_int_equal(a.hist_len, c.hist_len);
	for (size_t i = 0; i < a.n; i++) {
		assert_int_equal(a.s[i].user, b.s[i].user);
		assert_int_equal(a.s[i].item, c.s[i].item);
		assert_int_equal(a.s[i].ts, c.s[i].ts);
		assert_true(a.s[i].label == b.s[i].label);
		assert_true(a.s[i].label == c.s[i].label);
		assert_int_equal(a.s[i].hist_n, c.s[i].hist_n);
	}
	assert_memory_equal(a.hist, c.hist, a.hist_len * sizeof(*a.hist));
	/* 1M: genres sorted: Animation Children's Comedy Crime Drama ... */
	assert_int_equal(b.n_genres, 7);
	assert_string_equal(mb.genre[1], "Children's");
	assert_int_equal(mb.item_genres[0], 7);
	assert_int_equal(mb.item_genres[3], 8 | 64);
	assert_int_equal(mb.item_genres[4], 0);	/* "::" title ok, no genre */
	/* 100K: u.genre order, 19 genres incl. unknown */
	assert_int_equal(c.n_genres, 19);
	assert_string_equal(mc.genre[0], "unknown");
	assert_string_equal(mc.genre[18], "Western");
	assert_int_equal(mc.item_genres[0], 8 | 16 | 32);
	assert_int_equal(mc.item_genres[3], 64 | 8192 | 65536);
	assert_int_equal(mc.item_genres[6], 256);
	assert_int_equal(mc.item_genres[25], 0);
	dataset_fini(&a);
	dataset_fini(&b);
	dataset_fini(&c);
	dataset_meta_fini(&ma);
	dataset_meta_fini(&mb);
	dataset_meta_fini(&mc);
}

static void
test_threshold(void **state)
{
	struct dataset ds;
	struct dataset_meta m;
	struct dataset_opts o;
	size_t pos = 0;

	(void)state;
	dataset_opts_default(&o);
	o.label_threshold = 4.5f;
	dataset_init(&ds);
	dataset_meta_init(&m);
	assert_int_equal(dataset_load_movielens(&ds, &m, fix("ml-latest"), &o,
	    NULL), 0);
	for (size_t i = 0; i < ds.n; i++) {
		assert_true(ds.s[i].label == (ds.s[i].rating >= 4.5f));
		pos += ds.s[i].label > 0.5f;
	}
	assert_int_equal(pos, 2 + 10);	/* two 5.0 + user 20's ten 5.0 */
	assert_int_equal(ds.s[1].label, 0);	/* 4.0 no longer positive */
	dataset_fini(&ds);
	dataset_meta_fini(&m);
}

/* Chronology and partition checks for one split. */
static void
check_split(const struct dataset *ds, const struct dataset_split *sp)
{
	const struct dataset_idx *p[3] = { &sp->pool, &sp->local, &sp->test };
	char *seen = calloc(ds->n, 1);

	assert_int_equal(sp->pool.n + sp->local.n + sp->test.n, ds->n);
	for (int k = 0; k < 3; k++)
		for (size_t i = 0; i < p[k]->n; i++) {
			assert_false(seen[p[k]->v[i]]);
			seen[p[k]->v[i]] = 1;
		}
	for (uint32_t u = 0; u < sp->pool.n_users; u++) {
		int64_t last = INT64_MIN;
		uint32_t last_item = 0;

		for (int k = 0; k < 3; k++)
			for (size_t i = p[k]->uoff[u]; i < p[k]->uoff[u + 1];
			    i++) {
				const struct sample *s = &ds->s[p[k]->v[i]];

				assert_int_equal(s->user, u);
				assert_true(s->ts > last || (s->ts == last &&
				    s->item >= last_item));
				last = s->ts;
				last_item = s->item;
			}
	}
	free(seen);
}

static void
test_split_fixture(void **state)
{
	struct dataset ds;
	struct dataset_meta m;
	struct dataset_split sp;
	struct dataset_fracs f;
	/* n = 6, 2 (< min_user 3: all pool), 3, 20 */
	const size_t np[] = { 4, 2, 2, 14 }, nl[] = { 1, 0, 0, 3 },
	    nt[] = { 1, 0, 1, 3 };

	(void)state;
	load_ok(&ds, &m, fix("ml-latest"), 20);
	dataset_fracs_default(&f);
	assert_int_equal(dataset_split(&sp, &ds, &f), 0);
	check_split(&ds, &sp);
	for (uint32_t u = 0; u < 4; u++) {
		assert_int_equal(sp.pool.uoff[u + 1] - sp.pool.uoff[u], np[u]);
		assert_int_equal(sp.local.uoff[u + 1] - sp.local.uoff[u],
		    nl[u]);
		assert_int_equal(sp.test.uoff[u + 1] - sp.test.uoff[u], nt[u]);
	}
	/* user 0's local sample is the 5th by time (ts 700) */
	assert_int_equal(ds.s[sp.local.v[sp.local.uoff[0]]].ts, 700);
	dataset_split_fini(&sp);

	assert_int_equal(dataset_fracs_parse(&f, "0.5,0.25,0.25"), 0);
	assert_true(f.pool == 0.5);
	assert_int_equal(dataset_fracs_parse(&f, "0.5,0.25"), -EINVAL);
	assert_int_equal(dataset_fracs_parse(&f, "0.5,0.25,0.3"), -EINVAL);
	assert_int_equal(dataset_fracs_parse(&f, "a,b,c"), -EINVAL);
	assert_int_equal(dataset_fracs_parse(&f, "-0.5,1.25,0.25"), -EINVAL);
	assert_true(f.pool == 0.5);	/* unchanged on error */
	dataset_fini(&ds);
	dataset_meta_fini(&m);
}

/* One user per n = 1..60 with shuffled insertion order. */
static void
test_split_rounding(void **state)
{
	struct dataset ds;
	struct dataset_split sp;
	struct dataset_fracs f;
	struct rng r;

	(void)state;
	dataset_init(&ds);
	rng_seed(&r, 5);
	for (uint32_t u = 0; u < 60; u++)
		for (uint32_t k = 0; k <= u; k++) {
			struct sample s = { .user = u, .item = k,
				.ts = 1000 - (int64_t)rng_below(&r, 500),
				.label = (float)(k & 1) };

			dataset_append(&ds, &s, NULL, 0);
		}
	dataset_fracs_default(&f);
	assert_int_equal(dataset_split(&sp, &ds, &f), 0);
	check_split(&ds, &sp);
	for (uint32_t u = 0; u < 60; u++) {
		size_t n = u + 1;
		size_t p = sp.pool.uoff[u + 1] - sp.pool.uoff[u];
		size_t l = sp.local.uoff[u + 1] - sp.local.uoff[u];
		size_t t = sp.test.uoff[u + 1] - sp.test.uoff[u];

		if (n < 3) {
			assert_int_equal(p, n);
			continue;
		}
		assert_int_equal(p, (size_t)floor(0.7 * n + 1e-9));
		assert_int_equal(p + l, (size_t)floor(0.85 * n + 1e-9));
		assert_int_equal(p + l + t, n);
		if (n == 10) {
			assert_int_equal(p, 7);
			assert_int_equal(l, 1);
			assert_int_equal(t, 2);
		}
		if (n == 20) {
			assert_int_equal(p, 14);
			assert_int_equal(l, 3);
			assert_int_equal(t, 3);
		}
	}

	/* validation slices: round(0.2 n), at least one left in train */
	{
		struct dataset_idx tr, va;

		assert_int_equal(dataset_carve_val(&tr, &va, &sp.pool, 0.2), 0);
		assert_int_equal(tr.n + va.n, sp.pool.n);
		for (uint32_t u = 0; u < 60; u++) {
			size_t n = sp.pool.uoff[u + 1] - sp.pool.uoff[u];
			size_t nv = va.uoff[u + 1] - va.uoff[u];
			size_t want = (size_t)floor(0.2 * n + 0.5);

			if (n > 0 && want > n - 1)
				want = n - 1;
			assert_int_equal(nv, want);
			/* val is the pool's tail */
			for (size_t i = 0; i < nv; i++)
				assert_int_equal(va.v[va.uoff[u] + i],
				    sp.pool.v[sp.pool.uoff[u] + n - nv + i]);
			for (size_t i = 0; i + nv < n; i++)
				assert_int_equal(tr.v[tr.uoff[u] + i],
				    sp.pool.v[sp.pool.uoff[u] + i]);
		}
		dataset_idx_fini(&tr);
		dataset_idx_fini(&va);
		assert_int_equal(dataset_carve_val(&tr, &va, &sp.local, 1.0),
		    -EINVAL);
		/* 0.5 on local of 3 (n = 20): round(1.5) = 2 */
		assert_int_equal(dataset_carve_val(&tr, &va, &sp.local, 0.5),
		    0);
		assert_int_equal(va.uoff[20] - va.uoff[19], 2);
		dataset_idx_fini(&tr);
		dataset_idx_fini(&va);
	}
	/* fractions 1,0,0: everything in pool */
	dataset_split_fini(&sp);
	f.pool = 1;
	f.local = 0;
	f.test = 0;
	assert_int_equal(dataset_split(&sp, &ds, &f), 0);
	assert_int_equal(sp.pool.n, ds.n);
	dataset_split_fini(&sp);
	f.pool = 0.9;
	assert_int_equal(dataset_split(&sp, &ds, &f), -EINVAL);
	dataset_fini(&ds);
}

static void
test_build_hist_shuffled(void **state)
{
	struct dataset a, b;
	struct dataset_meta m;
	struct dataset_idx all;
	size_t *perm;
	struct rng r;

	(void)state;
	load_ok(&a, &m, fix("ml-latest"), 3);
	/* Shuffle a copy, rebuild: identical to the loader's result. */
	perm = malloc(a.n * sizeof(*perm));
	for (size_t i = 0; i < a.n; i++)
		perm[i] = i;
	rng_seed(&r, 9);
	for (size_t i = a.n - 1; i > 0; i--) {
		size_t j = rng_below(&r, (uint32_t)(i + 1)), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	dataset_init(&b);
	dataset_append_subset(&b, &a, perm, a.n);
	assert_int_equal(b.n_users, a.n_users);
	dataset_build_hist(&b, 3);
	assert_int_equal(b.n, a.n);
	assert_int_equal(b.hist_len, a.hist_len);
	for (size_t i = 0; i < a.n; i++) {
		assert_int_equal(a.s[i].item, b.s[i].item);
		assert_int_equal(a.s[i].hist_off, b.s[i].hist_off);
	}
	assert_memory_equal(a.hist, b.hist, a.hist_len * sizeof(*a.hist));
	/* idx_all on the shuffled copy sorts like canonical order */
	dataset_fini(&b);
	dataset_init(&b);
	dataset_append_subset(&b, &a, perm, a.n);
	dataset_idx_all(&all, &b);
	for (size_t i = 0; i < a.n; i++) {
		assert_int_equal(b.s[all.v[i]].item, a.s[i].item);
		assert_int_equal(b.s[all.v[i]].user, a.s[i].user);
	}
	{
		struct dataset_idx one;

		dataset_idx_user(&one, &all, 2);
		assert_int_equal(one.n, 3);
		assert_int_equal(one.uoff[2], 0);
		assert_int_equal(one.uoff[3], 3);
		assert_int_equal(one.uoff[4], 3);
		dataset_idx_fini(&one);
	}
	dataset_idx_fini(&all);
	free(perm);
	dataset_fini(&a);
	dataset_fini(&b);
	dataset_meta_fini(&m);
}

static void
test_negatives(void **state)
{
	struct dataset ds;
	struct dataset_meta m;
	struct dataset_rated rt;
	uint32_t out[99], out2[99];

	(void)state;
	load_ok(&ds, &m, fix("ml-latest"), 20);
	dataset_rated_build(&rt, &ds);
	assert_true(dataset_rated_has(&rt, 0, 25));
	assert_false(dataset_rated_has(&rt, 0, 5));
	assert_false(dataset_rated_has(&rt, 9, 5));
	/* 26 items; user 3 rated 20: 6 left (dense path) */
	assert_int_equal(dataset_negatives(&rt, 3, 7, 1, out), -ENOSPC);
	assert_int_equal(dataset_negatives(&rt, 3, 6, 1, out), 0);
	for (int i = 0; i < 6; i++) {
		assert_false(dataset_rated_has(&rt, 3, out[i]));
		for (int j = 0; j < i; j++)
			assert_int_not_equal(out[i], out[j]);
	}
	assert_int_equal(dataset_negatives(&rt, 4, 1, 1, out), -EINVAL);
	dataset_rated_fini(&rt);
	dataset_fini(&ds);
	dataset_meta_fini(&m);

	/* Synthetic: 99 negatives per user, rejection path. */
	{
		struct synth_opts so;
		struct synth_truth *tr;

		synth_opts_default(&so);
		so.n_users = 200;
		so.n_items = 1000;
		so.max_per_user = 400;	/* > n_items/2: dense path too */
		assert_int_equal(dataset_synth(&ds, &m, &tr, &so), 0);
		dataset_rated_build(&rt, &ds);
		for (uint32_t u = 0; u < 200; u++) {
			assert_int_equal(dataset_negatives(&rt, u, 99, 42, out),
			    0);
			assert_int_equal(dataset_negatives(&rt, u, 99, 42,
			    out2), 0);
			assert_memory_equal(out, out2, sizeof(out));
			for (int i = 0; i < 99; i++) {
				assert_true(out[i] < 1000);
				assert_false(dataset_rated_has(&rt, u, out[i]));
				for (int j = 0; j < i; j++)
					assert_int_not_equal(out[i], out[j]);
			}
		}
		/* Brute-force check of the rated set for user 0. */
		for (size_t i = 0; i < ds.n; i++)
			assert_true(dataset_rated_has(&rt, ds.s[i].user,
			    ds.s[i].item));
		dataset_negatives(&rt, 0, 99, 43, out2);
		assert_memory_not_equal(out, out2, sizeof(out));
		dataset_rated_fini(&rt);
		dataset_fini(&ds);
		dataset_meta_fini(&m);
		free(tr);
	}
}

static void
test_synth_speed(void **state)
{
	struct synth_opts o;
	struct dataset ds;
	struct dataset_meta m;
	struct synth_truth *tr;
	double t0, dt;

	(void)state;
	synth_opts_default(&o);
	o.n_users = 5000;
	o.n_items = 20000;
	o.min_per_user = 200;
	o.max_per_user = 600;
	if (slow_mode())
		o.n_users = 50;
	t0 = clock_now();
	assert_int_equal(dataset_synth(&ds, &m, &tr, &o), 0);
	dt = clock_now() - t0;
	print_message("synth: %zu samples in %.3f s (%.2f M samples/s)\n",
	    ds.n, dt, ds.n / dt / 1e6);
	assert_true(slow_mode() || ds.n >= 1000000);
	/* Speeds are printed, not asserted: on a shared machine a wall-clock
	 * bound fails for reasons that are not the code's. */

	/* CSV write + read of the same 2M rows */
	{
		struct dataset r;
		struct dataset_err e;
		struct dataset_opts op;

		dataset_opts_default(&op);
		t0 = clock_now();
		assert_int_equal(dataset_write_csv(tmp("big.csv"), &ds, NULL,
		    0), 0);
		dt = clock_now() - t0;
		print_message("csv write: %.2f M rows/s\n", ds.n / dt / 1e6);
		dataset_init(&r);
		t0 = clock_now();
		assert_int_equal(dataset_read_csv(&r, tmp("big.csv"), &op, &e),
		    0);
		dt = clock_now() - t0;
		print_message("csv read: %zu rows in %.3f s (%.2f M rows/s)\n",
		    r.n, dt, r.n / dt / 1e6);
		assert_int_equal(r.n, ds.n);
		assert_memory_equal(r.s, ds.s, ds.n * sizeof(*ds.s));
		/* Target >= 1M rows/s (measured 1.5-3.8M on 2 shared cores):
		 * printed above, not asserted (see the synth speed). */
		dataset_fini(&r);
		unlink(tmp("big.csv"));
	}
	dataset_fini(&ds);
	dataset_meta_fini(&m);
	free(tr);
}

static void
test_csv_roundtrip(void **state)
{
	struct dataset a, b;
	struct dataset_meta m, m2;
	struct dataset_opts o;
	struct dataset_err e;
	size_t idx[3] = { 30, 4, 5 };

	(void)state;
	load_ok(&a, &m, fix("ml-latest"), 20);
	a.s[3].label = 0.4923f;		/* soft label */
	a.s[7].label = 1e-7f;
	a.s[9].rating = 3.14159f;
	a.s[10].ts = -5;
	assert_int_equal(dataset_write_csv(tmp("rt.csv"), &a, NULL, 0), 0);
	dataset_opts_default(&o);
	dataset_init(&b);
	assert_int_equal(dataset_read_csv(&b, tmp("rt.csv"), &o, &e), 0);
	assert_int_equal(b.n, a.n);
	assert_int_equal(b.n_users, a.n_users);
	assert_int_equal(b.n_items, a.n_items);
	assert_int_equal(b.n_genres, a.n_genres);
	assert_int_equal(e.n_lines, a.n);
	assert_memory_equal(b.s, a.s, a.n * sizeof(*a.s));
	assert_memory_equal(b.hist, a.hist, a.hist_len * sizeof(*a.hist));
	dataset_fini(&b);

	/* subset: order of idx kept, histories carried */
	assert_int_equal(dataset_write_csv(tmp("sub.csv"), &a, idx, 3), 0);
	dataset_init(&b);
	assert_int_equal(dataset_read_csv(&b, tmp("sub.csv"), &o, &e), 0);
	assert_int_equal(b.n, 3);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(b.s[k].item, a.s[idx[k]].item);
		assert_int_equal(b.s[k].hist_n, a.s[idx[k]].hist_n);
		assert_memory_equal(sample_hist(&b, &b.s[k]),
		    sample_hist(&a, &a.s[idx[k]]),
		    a.s[idx[k]].hist_n * sizeof(uint32_t));
	}
	assert_int_equal(b.n_items, 26);	/* from the '#' line */
	dataset_fini(&b);

	/* meta round trip */
	assert_int_equal(dataset_meta_write(tmp("meta.txt"), &m), 0);
	assert_int_equal(dataset_meta_read(&m2, tmp("meta.txt"), &e), 0);
	assert_int_equal(m2.fmt, DATASET_FMT_LATEST);
	assert_int_equal(m2.n_users, 4);
	assert_int_equal(m2.n_items, 26);
	assert_int_equal(m2.n_genres, 10);
	for (int g = 0; g < 10; g++)
		assert_string_equal(m2.genre[g], m.genre[g]);
	dataset_meta_fini(&m2);
	dataset_fini(&a);
	dataset_meta_fini(&m);
}

static void
test_csv_bad(void **state)
{
	struct dataset ds;
	struct dataset_opts o;
	struct dataset_err e;
	FILE *fp;

	(void)state;
	dataset_opts_default(&o);
	dataset_init(&ds);
	assert_int_equal(dataset_read_csv(&ds, fix("bad/samples.csv"), &o, &e),
	    -EINVAL);
	assert_non_null(strstr(e.msg, "samples.csv:4: bad label"));
	dataset_fini(&ds);

	o.skip_bad = 1;
	dataset_init(&ds);
	assert_int_equal(dataset_read_csv(&ds, fix("bad/samples.csv"), &o, &e),
	    0);
	assert_int_equal(e.n_bad, 2);
	assert_int_equal(ds.n, 3);
	assert_non_null(strstr(e.msg, "samples.csv:4: bad label"));
	assert_int_equal(ds.s[2].hist_n, 2);
	dataset_fini(&ds);

	/* header problems stop even in skip mode */
	fp = fopen(tmp("nohdr.csv"), "w");
	fputs("0,1,100,4,1,3,\n", fp);
	fclose(fp);
	dataset_init(&ds);
	assert_int_equal(dataset_read_csv(&ds, tmp("nohdr.csv"), &o, &e),
	    -EINVAL);
	assert_non_null(strstr(e.msg, "nohdr.csv:1: expected header"));
	dataset_fini(&ds);

	/* ids are checked against the '#' line */
	fp = fopen(tmp("range.csv"), "w");
	fputs("# dccl-samples v1 n_users=2 n_items=3 n_genres=2\n"
	    "user,item,ts,rating,label,genres,hist\n"
	    "1,2,5,4,1,3,0|1|2\n"
	    "2,0,5,4,1,0,\n"
	    "0,3,5,4,1,0,\n"
	    "0,0,5,4,1,4,\n"
	    "0,0,5,4,1,0,3\n"
	    "0,0,5,4,1,0,1||2\n"
	    "0,0,5,4,1,0\n"
	    "0,0,99999999999999999999,4,1,0,\n"
	    "0,0,5,nan,1,0,\n"
	    "0,0,5,4,-0.1,0,\n", fp);
	fclose(fp);
	o.skip_bad = 0;
	dataset_init(&ds);
	assert_int_equal(dataset_read_csv(&ds, tmp("range.csv"), &o, &e),
	    -EINVAL);
	assert_non_null(strstr(e.msg, "range.csv:4: bad user id"));
	dataset_fini(&ds);
	o.skip_bad = 1;
	dataset_init(&ds);
	assert_int_equal(dataset_read_csv(&ds, tmp("range.csv"), &o, &e), 0);
	assert_int_equal(ds.n, 1);
	assert_int_equal(e.n_bad, 9);
	dataset_fini(&ds);

	/* without a '#' line ids are bounded by DATASET_ID_MAX; a failed
	 * read leaves ds as it was */
	fp = fopen(tmp("huge.csv"), "w");
	fputs("user,item,ts,rating,label,genres,hist\n"
	    "0,1,5,4,1,0,\n"
	    "4000000000,1,5,4,1,0,\n", fp);
	fclose(fp);
	o.skip_bad = 0;
	dataset_init(&ds);
	assert_int_equal(dataset_read_csv(&ds, fix("bad/samples.csv"), &o, &e),
	    -EINVAL);
	assert_int_equal(ds.n, 0);
	o.skip_bad = 1;
	assert_int_equal(dataset_read_csv(&ds, fix("bad/samples.csv"), &o, &e),
	    0);
	o.skip_bad = 0;
	assert_int_equal(dataset_read_csv(&ds, tmp("huge.csv"), &o, &e),
	    -EINVAL);
	assert_non_null(strstr(e.msg, "huge.csv:3: bad user id"));
	assert_int_equal(ds.n, 3);
	assert_int_equal(ds.n_users, 2);
	assert_int_equal(ds.hist_len, 3);
	dataset_fini(&ds);

	assert_int_equal(dataset_read_csv(&ds, tmp("missing.csv"), &o, &e),
	    -ENOENT);
	assert_non_null(strstr(e.msg, "missing.csv"));
}

static void
test_ml_bad(void **state)
{
	struct dataset ds;
	struct dataset_meta m;
	struct dataset_opts o;
	struct dataset_err e;

	(void)state;
	dataset_opts_default(&o);
	dataset_init(&ds);
	dataset_meta_init(&m);
#define LOAD(dir) dataset_load_movielens(&ds, &m, fix(dir), &o, &e)
	assert_int_equal(LOAD("bad/fields"), -EINVAL);
	assert_non_null(strstr(e.msg, "ratings.csv:4: expected 4 fields"));
	assert_int_equal(ds.n, 0);	/* nothing kept on failure */
	o.skip_bad = 1;
	assert_int_equal(LOAD("bad/fields"), 0);
	print_message("skip mode: %s (%zu bad)\n", e.msg, e.n_bad);
	assert_int_equal(e.n_bad, 3);
	assert_int_equal(ds.n, 4);	/* no movies.csv: genres 0 */
	assert_int_equal(ds.n_genres, 0);
	assert_non_null(strstr(e.msg, "ratings.csv:4: expected 4 fields"));
	dataset_fini(&ds);
	dataset_meta_fini(&m);

	o.skip_bad = 0;
	assert_int_equal(LOAD("bad/quote"), -EINVAL);
	assert_non_null(strstr(e.msg, "movies.csv:3: bad quoting"));
	o.skip_bad = 1;
	assert_int_equal(LOAD("bad/quote"), 0);
	assert_int_equal(e.n_bad, 2);
	assert_int_equal(m.item_genres[0], 1);	/* Drama */
	dataset_fini(&ds);
	dataset_meta_fini(&m);

	assert_int_equal(LOAD("bad/header"), -EINVAL);
	assert_non_null(strstr(e.msg, "ratings.csv:1: expected header"));

	o.skip_bad = 0;
	assert_int_equal(LOAD("bad/1m"), -EINVAL);
	assert_non_null(strstr(e.msg, "ratings.dat:2: expected 4 fields"));
	o.skip_bad = 1;
	assert_int_equal(LOAD("bad/1m"), 0);
	assert_int_equal(e.n_bad, 2);
	assert_int_equal(ds.n, 2);
	dataset_fini(&ds);
	dataset_meta_fini(&m);

	o.skip_bad = 0;
	assert_int_equal(LOAD("bad/100k"), -EINVAL);
	assert_non_null(strstr(e.msg, "u.data:3: expected 4 fields"));
	o.skip_bad = 1;
	assert_int_equal(LOAD("bad/100k"), 0);
	assert_int_equal(e.n_bad, 1);
	assert_int_equal(ds.n, 3);
	assert_int_equal(ds.s[2].ts, -300);
	assert_int_equal(m.n_genres, 19);	/* default 100K names */
	dataset_fini(&ds);
	dataset_meta_fini(&m);

	o.skip_bad = 0;
	assert_int_equal(LOAD("bad/genres"), -EINVAL);
	assert_non_null(strstr(e.msg, "movies.csv:3: more than 32"));

	o.hist_k = SAMPLE_HIST_MAX + 1;
	assert_int_equal(LOAD("ml-latest"), -EINVAL);
	o.hist_k = 20;
	assert_int_equal(dataset_load_movielens(&ds, &m, tmpdir, &o, &e),
	    -ENOENT);
	assert_non_null(strstr(e.msg, "no MovieLens ratings file"));
#undef LOAD
}

/* Random bytes, NULs, quotes and separators into every parser. */
static void
test_garbage(void **state)
{
	static const char alpha[] = "0123456789,:|\t\"\n\r -.e#x\0\xff";
	const char *files[][2] = {
		{ "ratings.csv", "movies.csv" },
		{ "ratings.dat", "movies.dat" },
		{ "u.data", "u.item" },
	};
	struct rng r;
	struct dataset ds;
	struct dataset_meta m;
	struct dataset_opts o;
	struct dataset_err e;
	char dir[700], p[800];

	(void)state;
	rng_seed(&r, 1234);
	dataset_opts_default(&o);
	for (int it = 0; it < 300; it++) {
		int f = it % 3;
		FILE *fp;

		snprintf(dir, sizeof(dir), "%s/g%d", tmpdir, it);
		mkdir(dir, 0700);
		for (int k = 0; k < 2; k++) {
			size_t n = rng_below(&r, 4000);

			snprintf(p, sizeof(p), "%s/%s", dir, files[f][k]);
			fp = fopen(p, "w");
			if (f == 0)	/* sometimes past the header */
				fputs(k ? "movieId,title,genres\n" :
				    "userId,movieId,rating,timestamp\n", fp);
			for (size_t i = 0; i < n; i++) {
				int c = it & 1 ? (int)rng_below(&r, 256) :
				    alpha[rng_below(&r, sizeof(alpha))];

				fputc(c, fp);
			}
			fclose(fp);
		}
		o.skip_bad = it & 2 ? 1 : 0;
		dataset_init(&ds);
		dataset_meta_init(&m);
		if (dataset_load_movielens(&ds, &m, dir, &o, &e) == 0) {
			assert_true(ds.n > 0);
			for (size_t i = 0; i < ds.n; i++) {
				assert_true(ds.s[i].user < ds.n_users);
				assert_true(ds.s[i].item < ds.n_items);
			}
		} else
			assert_true(e.msg[0] != '\0');
		dataset_fini(&ds);
		dataset_meta_fini(&m);
		/* and the samples reader */
		snprintf(p, sizeof(p), "%s/%s", dir, files[f][0]);
		dataset_init(&ds);
		(void)dataset_read_csv(&ds, p, &o, &e);
		dataset_fini(&ds);
	}
	/* a samples file whose data is garbage after a valid header */
	for (int it = 0; it < 100; it++) {
		FILE *fp = fopen(tmp("g.csv"), "w");
		size_t n = rng_below(&r, 3000);

		fputs("user,item,ts,rating,label,genres,hist\n", fp);
		for (size_t i = 0; i < n; i++)
			fputc(alpha[rng_below(&r, sizeof(alpha))], fp);
		fclose(fp);
		o.skip_bad = 1;
		dataset_init(&ds);
		assert_int_equal(dataset_read_csv(&ds, tmp("g.csv"), &o, &e),
		    0);
		for (size_t i = 0; i < ds.n; i++)
			assert_true(ds.s[i].hist_n <= SAMPLE_HIST_MAX);
		dataset_fini(&ds);
	}
}

static void
test_long_line(void **state)
{
	struct dataset ds;
	struct dataset_meta m;
	struct dataset_opts o;
	struct dataset_err e;
	char dir[700], p[800];
	FILE *fp;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/long", tmpdir);
	mkdir(dir, 0700);
	snprintf(p, sizeof(p), "%s/ratings.csv", dir);
	fp = fopen(p, "w");
	fputs("userId,movieId,rating,timestamp\n1,1,4.0,100\n", fp);
	for (int i = 0; i < 3 * 1024 * 1024; i++)	/* > read buffer */
		fputc('7', fp);
	fputs("\n2,1,4.0,100\n", fp);
	for (int i = 0; i < 100000; i++)		/* > LINE_MAX */
		fputc('8', fp);
	fputs("\n3,1,4.0,100", fp);		/* no final newline */
	fclose(fp);
	dataset_opts_default(&o);
	dataset_init(&ds);
	dataset_meta_init(&m);
	assert_int_equal(dataset_load_movielens(&ds, &m, dir, &o, &e),
	    -EINVAL);
	assert_non_null(strstr(e.msg, "ratings.csv:3: line too long"));
	o.skip_bad = 1;
	assert_int_equal(dataset_load_movielens(&ds, &m, dir, &o, &e), 0);
	assert_int_equal(e.n_bad, 2);
	assert_int_equal(ds.n, 3);
	assert_int_equal(ds.n_users, 3);
	dataset_fini(&ds);
	dataset_meta_fini(&m);
}

static void
test_real_ml_latest_small(void **state)
{
	const char *cand[] = { getenv("DCCL_ML_DIR"),
		"../shared/data/ml-latest-small",
		"/work/shared/data/ml-latest-small" };
	const char *dir = NULL;
	struct dataset ds;
	struct dataset_meta m;
	struct dataset_split sp;
	struct dataset_fracs f;
	double t0, t1, t2, pos = 0;
	char p[1100];
	struct stat st;

	(void)state;
	for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++) {
		if (cand[i] == NULL)
			continue;
		snprintf(p, sizeof(p), "%s/ratings.csv", cand[i]);
		if (stat(p, &st) == 0) {
			dir = cand[i];
			break;
		}
	}
	if (dir == NULL) {
		skipped = "ml-latest-small not found";
		skip();
	}
	t0 = clock_now();
	load_ok(&ds, &m, dir, 20);
	t1 = clock_now();
	dataset_fracs_default(&f);
	assert_int_equal(dataset_split(&sp, &ds, &f), 0);
	t2 = clock_now();
	print_message("ml-latest-small: load %.3f s, split %.3f s\n", t1 - t0,
	    t2 - t1);
	assert_int_equal(ds.n, 100836);
	assert_int_equal(ds.n_users, 610);
	assert_int_equal(ds.n_items, 9724);
	assert_int_equal(ds.n_genres, 19);	/* 20 names minus "(no ..)" */
	assert_string_equal(m.genre[0], "Action");
	assert_string_equal(m.genre[18], "Western");
	assert_int_equal(m.user_raw[0], 1);
	assert_int_equal(m.user_raw[609], 610);
	assert_int_equal(m.item_raw[0], 1);
	for (size_t i = 0; i < ds.n; i++)
		pos += ds.s[i].label;
	print_message("r_g = %.4f; pool %zu local %zu test %zu\n", pos / ds.n,
	    sp.pool.n, sp.local.n, sp.test.n);
	assert_true(fabs(pos / ds.n - 0.4816) < 0.01);
	check_split(&ds, &sp);
	for (uint32_t u = 0; u < 610; u++)	/* every user has >= 20 */
		assert_true(sp.test.uoff[u + 1] - sp.test.uoff[u] >= 3);
	dataset_split_fini(&sp);
	dataset_fini(&ds);
	dataset_meta_fini(&m);
}

/*
 * Histories hold positives strictly earlier than the sample: two
 * positives of the same second do not see each other; the next second
 * sees both.
 */
static void
test_hist_same_second(void **state)
{
	struct dataset ds;
	const struct sample in[] = {
		{ .user = 0, .item = 1, .ts = 10, .label = 1 },
		{ .user = 0, .item = 2, .ts = 20, .label = 1 },
		{ .user = 0, .item = 3, .ts = 20, .label = 1 },
		{ .user = 0, .item = 4, .ts = 20, .label = 0 },
		{ .user = 0, .item = 5, .ts = 30, .label = 0 },
	};

	(void)state;
	dataset_init(&ds);
	for (size_t i = 0; i < 5; i++)
		dataset_append(&ds, &in[i], NULL, 0);
	dataset_build_hist(&ds, 20);
	assert_int_equal(ds.s[0].hist_n, 0);
	for (size_t i = 1; i <= 3; i++) {
		assert_int_equal(ds.s[i].hist_n, 1);
		assert_int_equal(sample_hist(&ds, &ds.s[i])[0], 1);
	}
	assert_int_equal(ds.s[4].hist_n, 3);
	assert_int_equal(sample_hist(&ds, &ds.s[4])[1], 2);
	assert_int_equal(sample_hist(&ds, &ds.s[4])[2], 3);
	/* H = 2 keeps the last two, in order */
	dataset_build_hist(&ds, 2);
	assert_int_equal(ds.s[4].hist_n, 2);
	assert_int_equal(sample_hist(&ds, &ds.s[4])[0], 2);
	dataset_fini(&ds);
}

/*
 * Cold users: an exact share of the eligible users, no pool samples, the
 * same test share as warm users, chosen by the seed.
 */
static void
test_split_cold(void **state)
{
	struct dataset ds;
	struct dataset_split sp, s2;
	struct dataset_fracs f;
	int differ = 0;

	(void)state;
	dataset_init(&ds);
	for (uint32_t u = 0; u < 100; u++)
		for (uint32_t k = 0; k < (u < 10 ? 2 : 20); k++) {
			struct sample x = { .user = u, .item = k,
				.ts = 100 + k, .label = (float)(k & 1) };

			dataset_append(&ds, &x, NULL, 0);
		}
	dataset_fracs_default(&f);
	f.cold = 0.2;
	assert_int_equal(dataset_split(&sp, &ds, &f), 0);
	/* 90 users with >= min_user samples: round(0.2 * 90) = 18 */
	assert_int_equal(sp.n_cold, 18);
	for (uint32_t u = 0; u < 100; u++) {
		size_t p = sp.pool.uoff[u + 1] - sp.pool.uoff[u];
		size_t l = sp.local.uoff[u + 1] - sp.local.uoff[u];
		size_t t = sp.test.uoff[u + 1] - sp.test.uoff[u];

		if (u < 10)	/* too few samples: all pool, never cold */
			assert_false(sp.cold[u]);
		if (sp.cold[u]) {
			assert_int_equal(p, 0);
			assert_int_equal(l, 17);
			assert_int_equal(t, 3);
		} else if (u >= 10) {
			assert_int_equal(p, 14);
			assert_int_equal(l, 3);
			assert_int_equal(t, 3);
		}
	}
	f.cold_seed = 2;
	assert_int_equal(dataset_split(&s2, &ds, &f), 0);
	assert_int_equal(s2.n_cold, 18);
	for (uint32_t u = 0; u < 100; u++)
		differ += sp.cold[u] != s2.cold[u];
	assert_true(differ > 0);
	dataset_split_fini(&s2);
	f.cold_seed = 1;
	assert_int_equal(dataset_split(&s2, &ds, &f), 0);
	assert_memory_equal(sp.cold, s2.cold, 100);
	dataset_split_fini(&s2);
	dataset_split_fini(&sp);
	f.cold = 1.0;
	assert_int_equal(dataset_split(&sp, &ds, &f), -EINVAL);
	dataset_fini(&ds);
}

/*
 * dataset_keep_last: the newest n samples stay, in order, each with its
 * own history, also where samples shared one history slice; appends
 * after it work; n >= ds->n changes nothing.
 */
static void
test_keep_last(void **state)
{
	struct dataset ds;
	struct sample x;
	uint32_t h[5] = { 11, 12, 13, 14, 15 };

	(void)state;
	dataset_init(&ds);
	memset(&x, 0, sizeof(x));
	for (int i = 0; i < 10; i++) {
		x.item = (uint32_t)(100 + i);
		x.ts = 1000 + i;
		dataset_append(&ds, &x, h, (size_t)(i % 6));
	}
	/* Samples 8 and 9 share sample 7's slice, as ranking negatives do. */
	ds.s[8].hist_off = ds.s[9].hist_off = ds.s[7].hist_off;
	ds.s[8].hist_n = ds.s[9].hist_n = ds.s[7].hist_n;
	dataset_keep_last(&ds, 20);
	assert_int_equal(ds.n, 10);
	dataset_keep_last(&ds, 4);
	assert_int_equal(ds.n, 4);
	for (int i = 0; i < 4; i++) {
		const struct sample *s = &ds.s[i];
		size_t want = (size_t)(i == 0 ? 6 % 6 : 7 % 6);

		assert_int_equal(s->item, 106 + i);
		assert_int_equal(s->ts, 1006 + i);
		assert_int_equal(s->hist_n, want);
		for (size_t k = 0; k < want; k++)
			assert_int_equal(sample_hist(&ds, s)[k], h[k]);
	}
	assert_int_equal(ds.hist_len, 3);	/* one slice per sample */
	x.item = 200;
	dataset_append(&ds, &x, h, 5);
	assert_int_equal(ds.n, 5);
	assert_int_equal(sample_hist(&ds, &ds.s[4])[4], 15);
	assert_int_equal(sample_hist(&ds, &ds.s[1])[0], 11);
	dataset_keep_last(&ds, 0);
	assert_int_equal(ds.n, 0);
	assert_int_equal(ds.hist_len, 0);
	dataset_fini(&ds);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_latest_ids_genres),
		cmocka_unit_test(test_history),
		cmocka_unit_test(test_formats_agree),
		cmocka_unit_test(test_threshold),
		cmocka_unit_test(test_split_fixture),
		cmocka_unit_test(test_split_rounding),
		cmocka_unit_test(test_build_hist_shuffled),
		cmocka_unit_test(test_hist_same_second),
		cmocka_unit_test(test_keep_last),
		cmocka_unit_test(test_split_cold),
		cmocka_unit_test(test_negatives),
		cmocka_unit_test(test_synth_speed),
		cmocka_unit_test(test_csv_roundtrip),
		cmocka_unit_test(test_csv_bad),
		cmocka_unit_test(test_ml_bad),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_real_ml_latest_small),
	};

	int rc = cmocka_run_group_tests(tests, setup_all, teardown_all);

	if (rc == 0 && skipped != NULL) {
		printf("SKIP: test_real_ml_latest_small: %s\n", skipped);
		return 77;
	}
	return rc;
}
