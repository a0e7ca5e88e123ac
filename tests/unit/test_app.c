/*
 * Unit tests for deviced/app.c's feature path: the histories an app query
 * gets, and that the evaluation's replay of a test split through that path
 * reproduces the split's own histories and scores exactly (so the
 * evaluation measures what an app gets without moving the numbers).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "scripts/tools/synth.h"
#include "deviced/app.h"
#include "shared/ml/ctr.h"
#include "shared/data/dataset.h"

static void
add(struct dataset *ds, uint32_t item, int64_t ts, float label)
{
	struct sample x;
	uint32_t h[SAMPLE_HIST_MAX];
	size_t n;

	memset(&x, 0, sizeof(x));
	x.item = item;
	x.ts = ts;
	x.label = label;
	n = app_hist(ds, NULL, ts, 20, h);
	dataset_append(ds, &x, h, n);
}

static void
test_hist_rules(void **st)
{
	struct dataset a, b;
	uint32_t h[SAMPLE_HIST_MAX];

	(void)st;
	dataset_init(&a);
	dataset_init(&b);
	assert_int_equal(app_hist(&a, NULL, 100, 20, h), 0);
	add(&a, 1, 10, 1);
	add(&a, 2, 20, 0);
	add(&a, 3, 30, 1);
	add(&a, 4, 30, 0.7f);	/* same second: arrival order; soft >= .5 */
	assert_int_equal(app_hist(&a, NULL, 5, 20, h), 0);
	assert_int_equal(app_hist(&a, NULL, 10, 20, h), 1);
	assert_int_equal(h[0], 1);
	assert_int_equal(app_hist(&a, NULL, 25, 20, h), 1);
	assert_int_equal(app_hist(&a, NULL, 30, 20, h), 3);
	assert_int_equal(h[0], 1);
	assert_int_equal(h[1], 3);
	assert_int_equal(h[2], 4);
	assert_int_equal(app_hist(&a, NULL, 30, 2, h), 2);	/* last K */
	assert_int_equal(h[0], 3);
	assert_int_equal(app_hist(&a, NULL, 30, 0, h), 0);
	/* A second run continues the first. */
	app_query(&b, &a, &b, 20, 0, 5, 0, 40, 1, 0);
	assert_int_equal(b.s[0].hist_n, 3);
	assert_int_equal(app_hist(&a, &b, 35, 20, h), 3);
	assert_int_equal(app_hist(&a, &b, 40, 20, h), 4);
	assert_int_equal(h[3], 5);
	/* Strictly earlier seconds (the replay's rule). */
	assert_int_equal(app_hist_before(&a, NULL, 10, 20, h), 0);
	assert_int_equal(app_hist_before(&a, NULL, 30, 20, h), 1);
	assert_int_equal(app_hist_before(&a, NULL, 31, 20, h), 3);
	assert_int_equal(h[2], 4);
	assert_int_equal(app_hist_before(&a, &b, 40, 20, h), 3);
	assert_int_equal(app_hist_before(&a, &b, 41, 2, h), 2);
	assert_int_equal(h[1], 5);
	assert_int_equal(app_hist_before(&a, &b, INT64_MIN, 20, h), 0);
	dataset_fini(&b);
	/* A second split between a and b: its positives in both count. */
	dataset_init(&b);
	app_query(&b, &a, &b, 20, 0, 7, 0, 30, 1, 0);
	assert_int_equal(app_hist_before(&a, &b, 31, 20, h), 4);
	assert_int_equal(h[1], 3);
	assert_int_equal(h[2], 4);
	assert_int_equal(h[3], 7);
	dataset_fini(&a);
	dataset_fini(&b);
}

/*
 * Synthetic users with coarse timestamps (many ties), canonical histories;
 * each user's samples split 60/40 into local and test. Replaying the test
 * part on the local part must give the test part's histories exactly, and
 * app_score the same scores as ctr_predict on the file's samples.
 */
static void
test_replay_matches_split(void **st)
{
	struct synth_opts so;
	struct dataset ds;
	struct dataset_meta meta;
	struct synth_truth *truth = NULL;
	struct dataset_idx all;
	struct ctr_config cfg;
	struct ctr *m;
	size_t checked = 0;

	(void)st;
	synth_opts_default(&so);
	so.n_users = 25;
	so.n_items = 200;
	so.min_per_user = 20;
	so.max_per_user = 80;
	so.hist_k = 20;
	so.seed = 11;
	dataset_init(&ds);
	dataset_meta_init(&meta);
	assert_int_equal(dataset_synth(&ds, &meta, &truth, &so), 0);
	for (size_t i = 0; i < ds.n; i++)
		ds.s[i].ts /= 20000;	/* ties, as in MovieLens */
	dataset_build_hist(&ds, 20);
	memset(&cfg, 0, sizeof(cfg));
	cfg.n_users = ds.n_users;
	cfg.n_items = ds.n_items;
	cfg.n_genres = ds.n_genres;
	cfg.dim = 8;
	cfg.hist_k = 20;
	cfg.n_hidden = 1;
	cfg.hidden[0] = 16;
	cfg.patch_rank = 4;
	assert_int_equal(ctr_new(&m, &cfg, 3), 0);
	assert_int_equal(app_hist_k(m), 20);
	dataset_idx_all(&all, &ds);
	for (uint32_t u = 0; u < all.n_users; u++) {
		size_t lo = all.uoff[u], hi = all.uoff[u + 1];
		size_t cut = lo + (hi - lo) * 6 / 10;
		struct dataset loc, test, q;
		uint32_t *idx;
		float *p1, *p2;

		if (hi - lo < 3)
			continue;
		dataset_init(&loc);
		dataset_init(&test);
		dataset_init(&q);
		dataset_append_subset(&loc, &ds, all.v + lo, cut - lo);
		dataset_append_subset(&test, &ds, all.v + cut, hi - cut);
		app_replay(&q, &loc, &test, u, 20);
		assert_int_equal(q.n, test.n);
		for (size_t i = 0; i < q.n; i++) {
			const struct sample *a = &q.s[i], *b = &test.s[i];
			assert_int_equal(a->hist_n, b->hist_n);
			assert_memory_equal(sample_hist(&q, a),
			    sample_hist(&test, b), a->hist_n * 4);
			assert_int_equal(a->item, b->item);
			assert_int_equal(a->user, b->user);
			assert_true(a->ts == b->ts);
			checked++;
		}
		idx = calloc(test.n, sizeof(*idx));
		p1 = calloc(test.n, sizeof(*p1));
		p2 = calloc(test.n, sizeof(*p2));
		for (size_t i = 0; i < test.n; i++)
			idx[i] = (uint32_t)i;
		assert_int_equal(ctr_predict(m, &test, idx, test.n, p1), 0);
		assert_int_equal(app_score(m, &q, p2), 0);
		assert_memory_equal(p1, p2, test.n * sizeof(float));
		free(idx);
		free(p1);
		free(p2);
		dataset_fini(&loc);
		dataset_fini(&test);
		dataset_fini(&q);
	}
	assert_true(checked > 100);
	dataset_idx_fini(&all);
	ctr_free(m);
	free(truth);
	dataset_meta_fini(&meta);
	dataset_fini(&ds);
}

/* Items beyond the vocabulary score with the OOV row, finitely. */
static void
test_score_oov(void **st)
{
	struct ctr_config cfg;
	struct ctr *m;
	struct dataset q;
	float p[3];

	(void)st;
	memset(&cfg, 0, sizeof(cfg));
	cfg.n_users = 4;
	cfg.n_items = 10;
	cfg.n_genres = 3;
	cfg.dim = 4;
	cfg.hist_k = 5;
	cfg.n_hidden = 1;
	cfg.hidden[0] = 8;
	assert_int_equal(ctr_new(&m, &cfg, 1), 0);
	dataset_init(&q);
	assert_int_equal(app_score(m, &q, p), -EINVAL);
	app_query(&q, NULL, NULL, 5, 9, 3, 0, 1000, 0, 0);	/* user OOV */
	app_query(&q, NULL, NULL, 5, 1, 5000000, 0, 1000, 0, 0);
	app_query(&q, NULL, NULL, 5, 1, 6000000, 0, 1000, 0, 0);
	assert_int_equal(app_score(m, &q, p), 0);
	assert_true(p[1] == p[2]);	/* both read the one OOV row */
	assert_true(p[0] > 0 && p[0] < 1);
	dataset_fini(&q);
	ctr_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist_rules),
		cmocka_unit_test(test_replay_matches_split),
		cmocka_unit_test(test_score_oov),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
