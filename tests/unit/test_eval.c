/*
 * test_eval: the evaluation aggregator (scripts/tools/evalagg) on hand-computed
 * inputs: GAUC, users improved, long tail, HR/NDCG, pooling over runs,
 * methods missing for some users, row order, the bootstrap on a clearly
 * better and on an equal method, and file:line errors on malformed input.
 * Inputs are given as strings through fmemopen. Single-threaded.
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
#include <unistd.h>

#include <cmocka.h>

#include "scripts/tools/evalagg.h"
#include "shared/rng.h"

#define NEAR(a, b) assert_true(fabs((a) - (b)) < 1e-9)

/*
 * Three users with both classes, one with positives only (user 3).
 *   user 0: cloud pos {0.9, 0.4} neg {0.2, 0.6} -> AUC 3/4
 *           m     pos {0.9, 0.7} neg {0.1, 0.3} -> AUC 1
 *   user 1: both  pos {0.3} neg {0.5, 0.1}      -> AUC 1/2 (a tie)
 *   user 2: cloud pos {0.8} neg {0.2} -> 1;  m pos {0.2} neg {0.8} -> 0
 * GAUC cloud = (4 * .75 + 3 * .5 + 2 * 1) / 9 = 6.5 / 9
 * GAUC m     = (4 * 1   + 3 * .5 + 2 * 0) / 9 = 5.5 / 9
 */
static const char tiny[] =
    "cloud,0,1,1,0.9\ncloud,0,2,0,0.2\ncloud,0,3,1,0.4\ncloud,0,4,0,0.6\n"
    "cloud,1,1,1,0.3\ncloud,1,2,0,0.5\ncloud,1,3,0,0.1\n"
    "cloud,2,1,1,0.8\ncloud,2,2,0,0.2\n"
    "cloud,3,1,1,0.5\n"
    "m,0,1,1,0.9\nm,0,2,0,0.1\nm,0,3,1,0.7\nm,0,4,0,0.3\n"
    "m,1,1,1,0.3\nm,1,2,0,0.5\nm,1,3,0,0.1\n"
    "m,2,1,1,0.2\nm,2,2,0,0.8\n"
    "m,3,1,1,0.5\n";

/* tiny's rows, each user's negatives first (one block per user). */
static const char tiny_rank[] =
    "cloud,0,2,0,0.2\ncloud,0,4,0,0.6\ncloud,0,1,1,0.9\ncloud,0,3,1,0.4\n"
    "cloud,1,2,0,0.5\ncloud,1,3,0,0.1\ncloud,1,1,1,0.3\n"
    "cloud,2,2,0,0.2\ncloud,2,1,1,0.8\n"
    "cloud,3,1,1,0.5\n"
    "m,0,2,0,0.1\nm,0,4,0,0.3\nm,0,1,1,0.9\nm,0,3,1,0.7\n"
    "m,1,2,0,0.5\nm,1,3,0,0.1\nm,1,1,1,0.3\n"
    "m,2,2,0,0.8\nm,2,1,1,0.2\n"
    "m,3,1,1,0.5\n";

static int
load(struct evalagg_run *r, const char *text, char *err, size_t errlen)
{
	FILE *fp = fmemopen((void *)text, strlen(text), "r");
	int rc;

	assert_non_null(fp);
	rc = evalagg_read_fp(r, fp, "mem", err, errlen);
	fclose(fp);
	return rc;
}

static void
load_ok(struct evalagg_run *r, const char *text)
{
	char err[256];

	evalagg_run_init(r);
	if (load(r, text, err, sizeof(err)) != 0)
		fail_msg("unexpected error: %s", err);
}

static const struct evalagg_row *
row_of(const struct evalagg_result *res, const char *m)
{
	for (size_t i = 0; i < res->n_row; i++)
		if (strcmp(res->row[i].method, m) == 0)
			return &res->row[i];
	fail_msg("no row %s", m);
	return NULL;
}

static void
test_ctr_tiny(void **state)
{
	struct evalagg_run r;
	struct evalagg_opts o;
	struct evalagg_result res;
	const struct evalagg_row *c, *m;
	const struct metrics_ci *ci;
	char err[256];

	(void)state;
	load_ok(&r, tiny);
	assert_int_equal(r.n_m, 2);
	assert_int_equal(r.n_users, 4);
	evalagg_opts_default(&o);
	o.boot = 200;
	assert_int_equal(evalagg_compute(&res, &r, 1, &o, NULL, 0, NULL, 0,
	    err, sizeof(err)), 0);
	assert_int_equal(res.n_row, 2);
	assert_int_equal(res.n_users, 4);
	c = &res.row[0];
	m = &res.row[1];
	assert_string_equal(c->method, "cloud");
	assert_true(c->is_baseline);
	NEAR(c->mean[EVALAGG_GAUC], 6.5 / 9);
	NEAR(m->mean[EVALAGG_GAUC], 5.5 / 9);
	NEAR(c->std[EVALAGG_GAUC], 0);
	assert_true(isnan(c->mean[EVALAGG_IMPROVED]));
	NEAR(m->mean[EVALAGG_IMPROVED], 1.0 / 3);	/* user 0 */
	NEAR(m->mean[EVALAGG_WORSE], 1.0 / 3);		/* user 2 */
	/* Overall AUC of cloud: pos {.9,.4,.3,.8,.5} vs neg {.2,.6,.5,.1,.2}:
	 * 5+5+4+1.5 (.5 vs .5 is a tie) ... counted by brute force: */
	{
		const float ps[] = { .9f, .4f, .3f, .8f, .5f };
		const float ns[] = { .2f, .6f, .5f, .1f, .2f };
		double pairs = 0;

		for (int i = 0; i < 5; i++)
			for (int j = 0; j < 5; j++)
				pairs += ps[i] > ns[j] ? 1 : ps[i] == ns[j] ?
				    .5 : 0;
		NEAR(c->mean[EVALAGG_AUC], pairs / 25);
	}
	/* The paired difference of one run is the GAUC difference. */
	assert_true(m->has_ci[EVALAGG_CMP_GAUC]);
	assert_false(m->has_ci[EVALAGG_CMP_HR]);	/* ctr task */
	NEAR(m->ci[EVALAGG_CMP_GAUC].mean, 5.5 / 9 - 6.5 / 9);
	assert_int_equal(m->ci[EVALAGG_CMP_GAUC].n, 3);
	ci = &m->ci[EVALAGG_CMP_GAUC];
	assert_true(ci->lo <= ci->mean && ci->mean <= ci->hi);
	evalagg_result_fini(&res);
	evalagg_run_fini(&r);
}

static void
test_long_tail(void **state)
{
	const uint32_t cnt[] = { 5, 3, 3, 9, UINT32_MAX };
	const uint32_t *cnts[1] = { cnt }, n4 = 4, n2 = 2;
	const uint8_t present[] = { 1, 1, 1, 1, 1 };
	uint8_t tail[5];
	uint32_t mx;
	struct evalagg_run r;
	struct evalagg_opts o;
	struct evalagg_result res;
	char err[256];

	(void)state;
	/* Ties at 3 broken by user id; the unknown count is never chosen. */
	assert_int_equal(evalagg_tail(cnt, present, 5, 0.5, tail, &mx), 2);
	assert_int_equal(mx, 3);
	assert_true(tail[1] && tail[2] && !tail[0] && !tail[3] && !tail[4]);
	assert_int_equal(evalagg_tail(cnt, present, 5, 0.25, tail, &mx), 1);
	assert_true(tail[1] && !tail[2]);

	/* LT-GAUC over users {1, 2}: cloud (3 * .5 + 2 * 1) / 5, m 1.5 / 5. */
	load_ok(&r, tiny);
	evalagg_opts_default(&o);
	o.boot = 50;
	o.tail_frac = 0.5;
	assert_int_equal(evalagg_compute(&res, &r, 1, &o, NULL, 0, cnts, &n4,
	    err, sizeof(err)), 0);
	assert_int_equal(res.n_tail, 2);
	assert_true(res.tail_from_counts);
	NEAR(res.row[0].mean[EVALAGG_LT_GAUC], 3.5 / 5);
	NEAR(res.row[1].mean[EVALAGG_LT_GAUC], 1.5 / 5);
	evalagg_result_fini(&res);
	/* A user with rows but no count is an error. */
	assert_int_equal(evalagg_compute(&res, &r, 1, &o, NULL, 0, cnts, &n2,
	    err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "user 2"));
	/* Without counts: by test rows (4, 3, 2, 1): bottom half = 3, 2. */
	assert_int_equal(evalagg_compute(&res, &r, 1, &o, NULL, 0, NULL, 0,
	    err, sizeof(err)), 0);
	assert_false(res.tail_from_counts);
	assert_int_equal(res.tail_max_count, 2);
	NEAR(res.row[0].mean[EVALAGG_LT_GAUC], 1.0);	/* only user 2 */
	evalagg_result_fini(&res);
	evalagg_run_fini(&r);
}

static void
test_ranking_tiny(void **state)
{
	struct evalagg_run r;
	struct evalagg_opts o;
	struct evalagg_result res;
	const struct evalagg_row *c, *m;
	const double l3 = 1 / log2(3.0);
	char err[256];

	(void)state;
	load_ok(&r, tiny_rank);
	evalagg_opts_default(&o);
	o.task = EVALAGG_RANKING;
	o.boot = 100;
	/*
	 * k = 2. cloud ranks (0-based): u0 .9 -> 0, .4 -> 1 (.6 above);
	 * u1 .3 -> 1; u2 .8 -> 0; u3 has no negative: not ranked.
	 * m: u0 0, 0; u1 1; u2 .2 -> 1.
	 */
	o.k = 2;
	assert_int_equal(evalagg_compute(&res, &r, 1, &o, NULL, 0, NULL, 0,
	    err, sizeof(err)), 0);
	c = row_of(&res, "cloud");
	m = row_of(&res, "m");
	NEAR(c->mean[EVALAGG_HR], 1.0);
	NEAR(c->mean[EVALAGG_NDCG], (2 + 2 * l3) / 4);
	NEAR(m->mean[EVALAGG_NDCG], (2 + 2 * l3) / 4);
	NEAR(m->mean[EVALAGG_GAUC], 5.5 / 9);
	/* Per-user NDCG differences: u0 (1 - (1 + l3) / 2), u1 0,
	 * u2 (l3 - 1), weighted by positives 2, 1, 1. */
	assert_true(m->has_ci[EVALAGG_CMP_NDCG]);
	NEAR(m->ci[EVALAGG_CMP_NDCG].mean, (2 * (1 - (1 + l3) / 2) +
	    (l3 - 1)) / 4);
	assert_int_equal(m->ci[EVALAGG_CMP_NDCG].n, 3);
	evalagg_result_fini(&res);
	/* k = 1: HR = NDCG; cloud hits u0 .9, u2; m hits u0 twice. */
	o.k = 1;
	assert_int_equal(evalagg_compute(&res, &r, 1, &o, NULL, 0, NULL, 0,
	    err, sizeof(err)), 0);
	NEAR(row_of(&res, "cloud")->mean[EVALAGG_HR], 0.5);
	NEAR(row_of(&res, "cloud")->mean[EVALAGG_NDCG], 0.5);
	NEAR(row_of(&res, "m")->mean[EVALAGG_HR], 0.5);
	/* HR differences per user: u0 +.5 (w 2), u1 0, u2 -1: mean 0. */
	NEAR(row_of(&res, "m")->ci[EVALAGG_CMP_HR].mean, 0);
	evalagg_result_fini(&res);
	evalagg_run_fini(&r);
}

/*
 * Each positive against its own block of negatives (the layout dccl-data
 * writes): u0's .6 beats its block {.5, .1} (rank 0) but not the other
 * block's .7 and .9; .8 is below its block's .9 (rank 1). A positive
 * right after a positive (u0's .95) uses the last block; a positive with
 * no negative before it (u1's first) is not ranked.
 */
static void
test_ranking_blocks(void **state)
{
	static const char txt[] =
	    "cloud,0,1,0,0.5\ncloud,0,2,0,0.1\ncloud,0,3,1,0.6\n"
	    "cloud,0,4,0,0.7\ncloud,0,5,0,0.9\ncloud,0,6,1,0.8\n"
	    "cloud,0,7,1,0.95\n"
	    "cloud,1,1,1,0.9\ncloud,1,2,0,0.3\ncloud,1,3,1,0.2\n";
	struct evalagg_run r;
	struct evalagg_opts o;
	struct evalagg_result res;
	char err[256];

	(void)state;
	load_ok(&r, txt);
	evalagg_opts_default(&o);
	o.task = EVALAGG_RANKING;
	o.boot = 20;
	o.k = 1;
	assert_int_equal(evalagg_compute(&res, &r, 1, &o, NULL, 0, NULL, 0,
	    err, sizeof(err)), 0);
	/* hits: u0 .6 yes, .8 no, .95 yes; u1 .2 no (.9 not ranked) */
	NEAR(res.row[0].mean[EVALAGG_HR], 2.0 / 4);
	evalagg_result_fini(&res);
	evalagg_run_fini(&r);
}

/* Holm: the step-down rule on known values, NaN left alone. */
static void
test_holm(void **state)
{
	const double p[] = { 0.01, 0.04, NAN, 0.03, 0.5 };
	double adj[5];

	(void)state;
	evalagg_holm(p, 5, adj);
	/* sorted .01 .03 .04 .5, m = 4: .04, .09, max(.09, .08), 0.5 */
	NEAR(adj[0], 0.04);
	NEAR(adj[3], 0.09);
	NEAR(adj[1], 0.09);
	NEAR(adj[4], 0.5);
	assert_true(isnan(adj[2]));
}

/*
 * Logloss and long-tail intervals, the warm/cold filter, the Holm family
 * (the reference row outside it) and per-run long tails.
 */
static void
test_cmp_extras(void **state)
{
	static const char txt[] =
	    "cloud,0,1,1,0.5\ncloud,0,2,0,0.5\n"
	    "cloud,1,1,1,0.5\ncloud,1,2,0,0.5\n"
	    "cloud,2,1,1,0.6\ncloud,2,2,0,0.4\n"
	    "m,0,1,1,0.8\nm,0,2,0,0.2\n"
	    "m,1,1,1,0.5\nm,1,2,0,0.5\n"
	    "m,2,1,1,0.4\nm,2,2,0,0.6\n"
	    "oracle,0,1,1,0.9\noracle,0,2,0,0.1\n"
	    "oracle,1,1,1,0.9\noracle,1,2,0,0.1\n"
	    "oracle,2,1,1,0.9\noracle,2,2,0,0.1\n";
	const uint32_t c1[] = { 1, 5, 9 }, c2[] = { 9, 5, 1 };
	const uint32_t *cnts[2] = { c1, c2 }, nc[2] = { 3, 3 };
	const uint8_t cold[] = { 0, 1 };
	struct evalagg_run r[2];
	struct evalagg_opts o;
	struct evalagg_result res;
	const struct evalagg_row *m;
	char err[256];
	/* the scores are floats */
	double l8 = -log(0.8f), l5 = -log(0.5f), l4 = -log(0.4f);
	double l6 = -log(0.6f);

	(void)state;
	load_ok(&r[0], txt);
	load_ok(&r[1], txt);
	evalagg_opts_default(&o);
	o.boot = 200;
	o.tail_frac = 1.0 / 3;
	o.reference = "oracle";
	assert_int_equal(evalagg_compute(&res, r, 2, &o, NULL, 0, cnts, nc,
	    err, sizeof(err)), 0);
	m = row_of(&res, "m");
	/* per-user logloss differences: u0 l8 - l5, u1 0, u2 l4 - l6 */
	assert_true(m->has_ci[EVALAGG_CMP_LOGLOSS]);
	assert_true(fabs(m->ci[EVALAGG_CMP_LOGLOSS].mean - ((l8 - l5) +
	    (l4 - l6)) / 3) < 1e-6);
	/* tail: user 0 in run 1, user 2 in run 2: AUC 1 - .5, 0 - 1 */
	assert_true(m->has_ci[EVALAGG_CMP_LT_GAUC]);
	assert_int_equal(m->ci[EVALAGG_CMP_LT_GAUC].n, 2);
	NEAR(m->ci[EVALAGG_CMP_LT_GAUC].mean, (0.5 - 1.0) / 2);
	/* family: m and oracle would be 2 x 3; the oracle is left out */
	assert_int_equal(res.n_family, 3);
	assert_true(isnan(row_of(&res, "oracle")->p_holm[EVALAGG_CMP_GAUC]));
	assert_false(isnan(m->p_holm[EVALAGG_CMP_GAUC]));
	assert_true(m->p_holm[EVALAGG_CMP_GAUC] >= m->p[EVALAGG_CMP_GAUC]);
	evalagg_result_fini(&res);
	/* Cold users only (user 1): m ties the cloud model. */
	evalagg_run_filter(&r[0], cold, 2, 1);
	assert_int_equal(evalagg_run_find(&r[0], "m")->n, 2);
	assert_int_equal(evalagg_run_find(&r[0], "m")->user[1], 1);
	evalagg_run_filter(&r[1], cold, 2, 0);	/* warm: users 0, 2 */
	assert_int_equal(evalagg_run_find(&r[1], "cloud")->n, 4);
	evalagg_run_fini(&r[0]);
	evalagg_run_fini(&r[1]);
}

/* Two runs; in run 2 m ranks user 2 right (AUC 1) and lacks user 1. */
static void
test_runs_and_missing(void **state)
{
	static const char run2[] =
	    "cloud,0,1,1,0.9\ncloud,0,2,0,0.2\ncloud,0,3,1,0.4\n"
	    "cloud,0,4,0,0.6\ncloud,1,1,1,0.3\ncloud,1,2,0,0.5\n"
	    "cloud,1,3,0,0.1\ncloud,2,1,1,0.8\ncloud,2,2,0,0.2\n"
	    "m,0,1,1,0.9\nm,0,2,0,0.1\nm,0,3,1,0.7\nm,0,4,0,0.3\n"
	    "m,2,1,1,0.9\nm,2,2,0,0.8\n";
	struct evalagg_run r[2];
	struct evalagg_opts o;
	struct evalagg_result res;
	const struct evalagg_row *m;
	char err[256];

	(void)state;
	load_ok(&r[0], tiny);
	load_ok(&r[1], run2);
	evalagg_opts_default(&o);
	o.boot = 100;
	assert_int_equal(evalagg_compute(&res, r, 2, &o, NULL, 0, NULL, 0,
	    err, sizeof(err)), 0);
	m = row_of(&res, "m");
	assert_int_equal(m->n_runs, 2);
	NEAR(row_of(&res, "cloud")->mean[EVALAGG_GAUC], 6.5 / 9);
	NEAR(row_of(&res, "cloud")->std[EVALAGG_GAUC], 0);
	/* run 2: m's GAUC over its own users 0 and 2 = (4 + 2) / 6 = 1. */
	NEAR(m->mean[EVALAGG_GAUC], (5.5 / 9 + 1) / 2);
	NEAR(m->std[EVALAGG_GAUC], fabs(1 - 5.5 / 9) / sqrt(2));
	/* improved: run 1 1/3; run 2 among users 0, 2 (present in both):
	 * u0 better, u2 tie -> 1/2. */
	NEAR(m->mean[EVALAGG_IMPROVED], (1.0 / 3 + 0.5) / 2);
	/* Per-user differences averaged over runs: u0 .25 (w 4), u1 0 from
	 * run 1 only (w 3), u2 (-1 + 0) / 2 (w 2): (1 + 0 - 1) / 9. */
	NEAR(m->ci[EVALAGG_CMP_GAUC].mean, 0);
	assert_int_equal(m->ci[EVALAGG_CMP_GAUC].n, 3);
	evalagg_result_fini(&res);
	evalagg_run_fini(&r[0]);
	evalagg_run_fini(&r[1]);
}

static void
test_order(void **state)
{
	static const char txt[] = "b,0,1,1,.5\nzz,0,1,1,.5\ncloud,0,1,1,.5\n"
	    "a,0,1,1,.5\nc,0,1,1,.5\n";
	const char *order[] = { "c", "nosuch", "cloud", "zz" };
	struct evalagg_run r;
	struct evalagg_opts o;
	struct evalagg_result res;
	char err[256];

	(void)state;
	load_ok(&r, txt);
	evalagg_opts_default(&o);
	o.boot = 10;
	assert_int_equal(evalagg_compute(&res, &r, 1, &o, order, 4, NULL, 0,
	    err, sizeof(err)), 0);
	assert_int_equal(res.n_row, 5);
	assert_string_equal(res.row[0].method, "cloud");
	assert_string_equal(res.row[1].method, "c");
	assert_string_equal(res.row[2].method, "zz");
	assert_string_equal(res.row[3].method, "a");
	assert_string_equal(res.row[4].method, "b");
	/* No user has both classes: GAUC undefined, no interval. */
	assert_true(isnan(res.row[0].mean[EVALAGG_GAUC]));
	assert_false(res.row[1].has_ci[EVALAGG_CMP_GAUC]);
	evalagg_result_fini(&res);
	/* Without a baseline there is no table. */
	o.baseline = "nosuch";
	assert_int_equal(evalagg_compute(&res, &r, 1, &o, NULL, 0, NULL, 0,
	    err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "baseline"));
	evalagg_run_fini(&r);
}

/* 300 users x 10 rows; "good" separates the classes, "same" does not. */
static char *
gen_users(void)
{
	size_t cap = 300 * 10 * 3 * 40, len = 0;
	char *s = malloc(cap);
	struct rng r;

	assert_non_null(s);
	rng_seed(&r, 7);
	for (int u = 0; u < 300; u++)
		for (int i = 0; i < 10; i++) {
			int y = i % 2;
			double a = rng_unif(&r), b = rng_unif(&r);
			double c = rng_unif(&r);

			len += (size_t)snprintf(s + len, cap - len,
			    "cloud,%d,%d,%d,%.6f\ngood,%d,%d,%d,%.6f\n"
			    "same,%d,%d,%d,%.6f\n", u, i, y, a, u, i, y,
			    0.5 * b + 0.3 * y, u, i, y, c);
		}
	return s;
}

static void
test_bootstrap(void **state)
{
	struct evalagg_run r;
	struct evalagg_opts o;
	struct evalagg_result res;
	const struct evalagg_row *g, *s;
	const struct metrics_ci *ci;
	char err[256], *txt = gen_users();

	(void)state;
	load_ok(&r, txt);
	free(txt);
	evalagg_opts_default(&o);
	assert_int_equal(evalagg_compute(&res, &r, 1, &o, NULL, 0, NULL, 0,
	    err, sizeof(err)), 0);
	g = row_of(&res, "good");
	s = row_of(&res, "same");
	/* The interval is around the sample difference of GAUCs... */
	ci = &g->ci[EVALAGG_CMP_GAUC];
	NEAR(ci->mean, g->mean[EVALAGG_GAUC] - res.row[0].mean[EVALAGG_GAUC]);
	assert_true(ci->lo < ci->mean && ci->mean < ci->hi);
	/* ...excludes 0 for a clearly better method (true AUC .92 vs .5)
	 * and covers the true difference, P(U2 - U1 < .6) - .5 = .42... */
	assert_true(ci->lo > 0);
	assert_true(ci->lo < 0.42 && ci->hi > 0.42);
	assert_true(g->mean[EVALAGG_IMPROVED] > 0.8);
	/* ...and contains 0 for a method that is the cloud's equal. */
	ci = &s->ci[EVALAGG_CMP_GAUC];
	assert_true(ci->lo < 0 && ci->hi > 0);
	assert_int_equal(ci->n, 300);
	evalagg_result_fini(&res);
	evalagg_run_fini(&r);
}

static void
expect_error(const char *text, const char *what)
{
	struct evalagg_run r;
	char err[256] = "";

	evalagg_run_init(&r);
	assert_int_equal(load(&r, text, err, sizeof(err)), -EINVAL);
	if (strstr(err, what) == NULL)
		fail_msg("error '%s' lacks '%s'", err, what);
	evalagg_run_fini(&r);
}

static void
test_malformed(void **state)
{
	struct evalagg_run r;

	(void)state;
	expect_error("cloud,1,2,1\n", "mem:1: want 5 fields");
	expect_error("cloud,1,2,1,0.5,9\n", "mem:1: want 5 fields");
	expect_error("cloud,0,1,1,0.5\n\ncloud,0,2,0,zz\n",
	    "mem:3: bad score");
	expect_error("cloud,0,1,1,nan\n", "mem:1: NaN score");
	expect_error("cloud,0,1,1,inf\n", "mem:1: infinite score");
	expect_error("cloud,0,1,1,1e300\n", "mem:1: infinite score");
	expect_error("cloud,x,1,1,0.5\n", "mem:1: bad user or item");
	expect_error("cloud,-1,1,1,0.5\n", "mem:1: bad user or item");
	expect_error("cloud,999999999,1,1,0.5\n", "mem:1: bad user or item");
	expect_error("cloud,1,1,2,0.5\n", "mem:1: bad label");
	expect_error("cloud,1,1,,0.5\n", "mem:1: bad label");
	expect_error("clo ud,1,1,1,0.5\n", "mem:1: bad method");
	expect_error(",1,1,1,0.5\n", "mem:1: bad method");
	expect_error("cloud,0,1,1,0.5\nmethod,user,item,label,score\n",
	    "mem:2:");
	/* A header line first, CRLF line ends and empty lines are fine. */
	load_ok(&r, "method,user,item,label,score\r\ncloud,0,1,1,0.5\r\n\n");
	assert_int_equal(r.m[0].n, 1);
	evalagg_run_fini(&r);
}

static char *
tmpfile_with(const char *text)
{
	char *p = strdup("/tmp/test_eval.XXXXXX");
	int fd = mkstemp(p);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return p;
}

static void
test_files(void **state)
{
	struct evalagg_extra x;
	struct evalagg_run r;
	struct evalagg_opts o;
	struct evalagg_result res;
	uint32_t *cnt, n;
	char err[256], *p, *md = NULL, *csv = NULL;
	size_t mdlen, csvlen;
	FILE *fp;

	(void)state;
	p = tmpfile_with("user,n_local\n0,7\n2,3\n");
	assert_int_equal(evalagg_read_counts(p, &cnt, &n, err, sizeof(err)),
	    0);
	assert_int_equal(n, 3);
	assert_int_equal(cnt[0], 7);
	assert_int_equal(cnt[1], UINT32_MAX);
	assert_int_equal(cnt[2], 3);
	free(cnt);
	unlink(p);
	free(p);
	p = tmpfile_with("0,7\n2,x\n");
	assert_int_equal(evalagg_read_counts(p, &cnt, &n, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, ":2:"));
	unlink(p);
	free(p);

	evalagg_extra_init(&x);
	p = tmpfile_with("m,device_ms,2\nm,device_ms,4\ncloud,bytes_up,10\n");
	assert_int_equal(evalagg_extra_read(&x, p, err, sizeof(err)), 0);
	unlink(p);
	free(p);
	assert_int_equal(x.n_col, 2);
	p = tmpfile_with("m,device_ms,2\nm,device_ms\n");
	{
		struct evalagg_extra bad;

		evalagg_extra_init(&bad);
		assert_int_equal(evalagg_extra_read(&bad, p, err,
		    sizeof(err)), -EINVAL);
		evalagg_extra_fini(&bad);
	}
	assert_non_null(strstr(err, ":2:"));
	unlink(p);
	free(p);

	/* Markdown and CSV: baseline first, extras appended and averaged. */
	load_ok(&r, tiny);
	evalagg_opts_default(&o);
	o.boot = 50;
	assert_int_equal(evalagg_compute(&res, &r, 1, &o, NULL, 0, NULL, 0,
	    err, sizeof(err)), 0);
	fp = open_memstream(&md, &mdlen);
	evalagg_write_md(fp, &res, &x, "t");
	fclose(fp);
	fp = open_memstream(&csv, &csvlen);
	evalagg_write_csv(fp, &res, &x);
	fclose(fp);
	assert_non_null(strstr(md, "| method | GAUC | AUC |"));
	assert_non_null(strstr(md, "| device_ms | bytes_up |\n"));
	assert_true(strstr(md, "| cloud |") < strstr(md, "| m |"));
	assert_non_null(strstr(md, "| 0.7222 |"));
	assert_non_null(strstr(md, "| 33.3 / 33.3 % |"));
	assert_non_null(strstr(md, "| 3 | — |\n"));	/* m: 3 ms, no bytes */
	assert_true(strncmp(csv, "method,gauc,gauc_std,auc,", 25) == 0);
	assert_non_null(strstr(csv, "\ncloud,0.722222,,"));
	assert_non_null(strstr(csv, ",1,4,3.000000,\n"));
	free(md);
	free(csv);
	evalagg_result_fini(&res);
	o.task = EVALAGG_RANKING;
	assert_int_equal(evalagg_compute(&res, &r, 1, &o, NULL, 0, NULL, 0,
	    err, sizeof(err)), 0);
	fp = open_memstream(&csv, &csvlen);
	evalagg_write_csv(fp, &res, NULL);
	fclose(fp);
	assert_true(strncmp(csv, "method,hr10,hr10_std,ndcg10,", 28) == 0);
	free(csv);
	/* The ranking table shows the users made worse too (the guard's
	   promise is about them). */
	fp = open_memstream(&md, &mdlen);
	evalagg_write_md(fp, &res, NULL, "t");
	fclose(fp);
	assert_non_null(strstr(md, "| HR@10 | NDCG@10 | GAUC | users "
	    "improved / worse |"));
	assert_non_null(strstr(md, "| 33.3 / 33.3 % |"));
	free(md);
	evalagg_result_fini(&res);
	evalagg_run_fini(&r);
	evalagg_extra_fini(&x);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ctr_tiny),
		cmocka_unit_test(test_long_tail),
		cmocka_unit_test(test_ranking_tiny),
		cmocka_unit_test(test_ranking_blocks),
		cmocka_unit_test(test_holm),
		cmocka_unit_test(test_cmp_extras),
		cmocka_unit_test(test_runs_and_missing),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_bootstrap),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
