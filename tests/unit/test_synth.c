/*
 * test_synth: the synthetic drift generator (scripts/tools/synth.c): its
 * drift, clusters and counts, the true click probabilities it writes, and
 * its heavy-tailed per-user counts. Single-threaded.
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

#include <cmocka.h>

#include "scripts/tools/synth.h"
#include "shared/data/dataset.h"
#include "shared/rng.h"

static void
test_synth(void **state)
{
	struct synth_opts o;
	struct dataset a, b;
	struct dataset_meta ma, mb;
	struct synth_truth *ta, *tb;
	double early = 0, late = 0, ne = 0, nl = 0;
	size_t total = 0;

	(void)state;
	synth_opts_default(&o);
	o.n_users = 500;
	o.n_items = 3000;
	o.drift_mean = 1.5;
	o.drift_std = 0;
	o.seed = 7;
	assert_int_equal(dataset_synth(&a, &ma, &ta, &o), 0);
	assert_int_equal(dataset_synth(&b, &mb, &tb, &o), 0);
	/* determinism */
	assert_int_equal(a.n, b.n);
	assert_memory_equal(a.s, b.s, a.n * sizeof(*a.s));
	assert_memory_equal(a.hist, b.hist, a.hist_len * sizeof(*a.hist));
	assert_memory_equal(ta, tb, o.n_users * sizeof(*ta));
	assert_int_equal(a.n_users, 500);
	assert_int_equal(a.n_items, 3000);
	assert_int_equal(a.n_genres, 16);
	for (uint32_t u = 0; u < o.n_users; u++) {
		assert_true(ta[u].n >= o.min_per_user &&
		    ta[u].n <= o.max_per_user);
		assert_true(ta[u].cluster < o.n_clusters);
		assert_int_equal(ta[u].cluster, ta[u].cluster_late);
		assert_true(fabs(ta[u].drift - 1.5) < 1e-6);
		assert_int_equal(ta[u].n_early, (uint32_t)floor(0.7 *
		    ta[u].n + 1e-9));
		total += ta[u].n;
	}
	assert_int_equal(total, a.n);
	/* The drifted part is the split's local + test exactly. */
	{
		struct dataset_split sp;
		struct dataset_fracs f;

		dataset_fracs_default(&f);
		assert_int_equal(dataset_split(&sp, &a, &f), 0);
		for (uint32_t u = 0; u < o.n_users; u++)
			assert_int_equal(sp.pool.uoff[u + 1] - sp.pool.uoff[u],
			    ta[u].n_early);
		for (size_t i = 0; i < sp.pool.n; i++) {
			early += a.s[sp.pool.v[i]].label;
			ne++;
		}
		for (size_t i = 0; i < sp.local.n; i++) {
			late += a.s[sp.local.v[i]].label;
			nl++;
		}
		dataset_split_fini(&sp);
	}
	early /= ne;
	late /= nl;
	print_message("synth CTR pool %.3f local %.3f (drift +1.5 logit)\n",
	    early, late);
	assert_true(late > early + 0.15);
	/* histories equal a rebuild from labels; items distinct per user */
	{
		struct dataset c;
		size_t *all = malloc(a.n * sizeof(*all));

		for (size_t i = 0; i < a.n; i++)
			all[i] = i;
		dataset_init(&c);
		dataset_append_subset(&c, &a, all, a.n);
		dataset_build_hist(&c, o.hist_k);
		assert_memory_equal(c.s, a.s, a.n * sizeof(*a.s));
		assert_memory_equal(c.hist, a.hist,
		    a.hist_len * sizeof(*a.hist));
		dataset_fini(&c);
		free(all);
	}
	for (size_t i = 1; i < a.n; i++)
		if (a.s[i].user == a.s[i - 1].user)
			assert_true(a.s[i].ts > a.s[i - 1].ts);
	for (size_t i = 0; i < a.n; i++)
		assert_int_equal(a.s[i].genres, ma.item_genres[a.s[i].item]);
	dataset_fini(&b);
	dataset_meta_fini(&mb);
	free(tb);

	/* No drift: pool and local CTR agree; other seed differs. */
	o.drift_mean = 0;
	o.seed = 8;
	assert_int_equal(dataset_synth(&b, &mb, &tb, &o), 0);
	assert_true(b.n != a.n || memcmp(b.s, a.s, a.n * sizeof(*a.s)) != 0);
	{
		double pe = 0, pl = 0;

		for (uint32_t u = 0; u < o.n_users; u++) {
			pe += tb[u].p_early;
			pl += tb[u].p_late;
		}
		assert_true(fabs(pe - pl) / o.n_users < 0.03);
	}
	dataset_fini(&b);
	dataset_meta_fini(&mb);
	free(tb);

	/* taste drift 1: everyone switches cluster */
	o.taste_drift = 1;
	assert_int_equal(dataset_synth(&b, &mb, &tb, &o), 0);
	for (uint32_t u = 0; u < o.n_users; u++)
		assert_int_not_equal(tb[u].cluster, tb[u].cluster_late);
	dataset_fini(&b);
	dataset_meta_fini(&mb);
	free(tb);

	/* bad options */
	o.min_per_user = 10;
	o.max_per_user = 5;
	assert_int_equal(dataset_synth(&b, &mb, &tb, &o), -EINVAL);
	assert_null(tb);
	synth_opts_default(&o);
	o.n_clusters = 100000;
	o.n_items = 100000;
	assert_int_equal(dataset_synth(&b, &mb, &tb, &o), -E2BIG);

	dataset_fini(&a);
	dataset_meta_fini(&ma);
	free(ta);
}

/*
 * The oracle's probabilities, and heavy-tailed counts: dataset_synth_p
 * gives the same data as dataset_synth, and its p match the labels.
 */
static void
test_synth_oracle_tail(void **state)
{
	struct synth_opts o;
	struct dataset a, b;
	struct dataset_meta ma, mb;
	struct synth_truth *ta, *tb;
	float *p;
	double sp = 0, sy = 0;
	uint32_t n_min = 0, n_big = 0;

	(void)state;
	synth_opts_default(&o);
	o.n_users = 400;
	o.count_tail = 1.2;
	assert_int_equal(dataset_synth_p(&a, &ma, &ta, &p, &o), 0);
	assert_int_equal(dataset_synth(&b, &mb, &tb, &o), 0);
	assert_int_equal(a.n, b.n);
	for (size_t i = 0; i < a.n; i++) {
		assert_int_equal(a.s[i].item, b.s[i].item);
		assert_true(a.s[i].label == b.s[i].label);
		assert_true(p[i] > 0 && p[i] < 1);
		sp += p[i];
		sy += a.s[i].label;
	}
	/* mean p vs click rate: within ~4 standard errors */
	assert_true(fabs(sp - sy) / (double)a.n < 4 * 0.5 / sqrt((double)a.n));
	for (uint32_t u = 0; u < o.n_users; u++) {
		assert_true(ta[u].n >= o.min_per_user &&
		    ta[u].n <= o.max_per_user);
		n_min += ta[u].n < 2 * o.min_per_user;
		n_big += ta[u].n >= 5 * o.min_per_user;
	}
	/* Pareto(1.2): P(n < 2 min) = 1 - 2^-1.2 = .56, P(>= 5 min) = .14 */
	assert_true(n_min > 180 && n_min < 270);
	assert_true(n_big > 30 && n_big < 90);
	free(p);
	free(ta);
	free(tb);
	dataset_fini(&a);
	dataset_fini(&b);
	dataset_meta_fini(&ma);
	dataset_meta_fini(&mb);
	o.count_tail = -1;
	assert_int_equal(dataset_synth_p(&a, &ma, &ta, &p, &o), -EINVAL);
	assert_null(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_synth),
		cmocka_unit_test(test_synth_oracle_tail),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
