/*
 * test_metrics: hand-computed AUC (with ties), GAUC, logloss, HR/NDCG,
 * brute-force O(n^2) AUC cross-checks on both sort paths (qsort below 4096
 * impressions, radix above), and bootstrap sanity checks. Single-threaded.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shared/ml/metrics.h"
#include "shared/rng.h"

#define NEAR(a, b) assert_true(fabs((a) - (b)) < 1e-9)

static void
test_auc_hand(void **state)
{
	const float s1[] = { 0.1f, 0.4f, 0.35f, 0.8f }, y1[] = { 0, 0, 1, 1 };
	const float s2[] = { 0.5f, 0.5f, 0.5f, 0.5f }, y2[] = { 1, 0, 1, 0 };
	/* pos {0.5, 0.9} vs neg {0.2, 0.5}: 1 + 0.5 + 1 + 1 = 3.5 of 4 */
	const float s3[] = { 0.2f, 0.5f, 0.5f, 0.9f }, y3[] = { 0, 1, 0, 1 };
	const float s4[] = { -0.0f, 0.0f }, y4[] = { 1, 0 };
	const float s5[] = { 1, 2, 3 }, y5[] = { 1, 1, 1 };
	const float s6[] = { 3, 2, 1 }, y6[] = { 1, 0.6f, 0.4f };
	const float s7[] = { 1, NAN }, y7[] = { 1, 0 };

	(void)state;
	NEAR(metrics_auc(s1, y1, 4), 0.75);
	NEAR(metrics_auc(s2, y2, 4), 0.5);
	NEAR(metrics_auc(s3, y3, 4), 0.875);
	NEAR(metrics_auc(s4, y4, 2), 0.5);	/* -0 == +0 */
	assert_true(isnan(metrics_auc(s5, y5, 3)));
	assert_true(isnan(metrics_auc(s5, y5, 0)));
	NEAR(metrics_auc(s6, y6, 3), 1.0);	/* y >= 0.5 is positive */
	assert_true(isnan(metrics_auc(s7, y7, 2)));
}

static double
auc_brute(const float *s, const float *y, size_t n)
{
	double num = 0, P = 0, N = 0;

	for (size_t i = 0; i < n; i++) {
		if (y[i] < 0.5f)
			continue;
		P++;
		for (size_t j = 0; j < n; j++) {
			if (y[j] >= 0.5f)
				continue;
			num += s[i] > s[j] ? 1 : s[i] == s[j] ? 0.5 : 0;
		}
	}
	for (size_t j = 0; j < n; j++)
		N += y[j] < 0.5f;
	return num / (P * N);
}

static void
test_auc_brute(void **state)
{
	const size_t sizes[] = { 7, 100, 3000, 6000 };
	struct rng r;

	(void)state;
	rng_seed(&r, 3);
	for (size_t k = 0; k < 4; k++) {
		size_t n = sizes[k];
		float *s = malloc(n * sizeof(*s)), *y = malloc(n * sizeof(*y));

		for (size_t i = 0; i < n; i++) {
			y[i] = (float)(rng_unif(&r) < 0.3);
			/* coarse scores: many ties; negative values too */
			s[i] = (float)(floor((rng_normal(&r) + y[i]) * 8) / 8);
		}
		y[0] = 1;
		y[1] = 0;
		NEAR(metrics_auc(s, y, n), auc_brute(s, y, n));
		free(s);
		free(y);
	}
}

static void
test_gauc_hand(void **state)
{
	/* u0: AUC 1 (n 2); u1: AUC 0 (n 3); u2: only positives, dropped;
	 * u3: pos {0.5, 0.1} vs neg {0.5, 0.7}: 0.5 / 4 = 0.125 (n 4). */
	const float s[] = { 0.1f, 0.9f, 0.2f, 0.6f, 0.4f, 0.3f, 0.5f, 0.5f,
		0.5f, 0.7f, 0.1f };
	const float y[] = { 0, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1 };
	const uint32_t u[] = { 0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 3 };
	double pu[5], w[5];
	size_t used;
	double g;

	(void)state;
	g = metrics_gauc(s, y, u, 11, 5, &used, pu, w);
	NEAR(g, (2 * 1.0 + 3 * 0.0 + 4 * 0.125) / 9);
	assert_int_equal(used, 3);
	NEAR(pu[0], 1.0);
	NEAR(pu[1], 0.0);
	assert_true(isnan(pu[2]));
	NEAR(pu[3], 0.125);
	assert_true(isnan(pu[4]));	/* no impressions */
	NEAR(w[0], 2);
	NEAR(w[2], 0);
	NEAR(w[3], 4);
	/* interleaved order gives the same answer */
	{
		float s2[11], y2[11];
		uint32_t u2[11];

		for (int i = 0; i < 11; i++) {
			int j = (i * 7) % 11;

			s2[i] = s[j];
			y2[i] = y[j];
			u2[i] = u[j];
		}
		NEAR(metrics_gauc(s2, y2, u2, 11, 5, NULL, NULL, NULL), g);
	}
	/* out-of-range user id: NAN, not a crash */
	{
		const uint32_t bad[] = { 0, 9 };

		assert_true(isnan(metrics_gauc(s, y, bad, 2, 5, &used, NULL,
		    NULL)));
	}
}

static void
test_gauc_brute(void **state)
{
	enum { N = 20000, U = 300 };
	float *s = malloc(N * sizeof(*s)), *y = malloc(N * sizeof(*y));
	uint32_t *u = malloc(N * sizeof(*u));
	double *pu = malloc(U * sizeof(*pu)), num = 0, den = 0;
	struct rng r;
	size_t used, used2 = 0;

	(void)state;
	rng_seed(&r, 11);
	for (size_t i = 0; i < N; i++) {
		u[i] = rng_below(&r, U);
		y[i] = (float)(rng_unif(&r) < 0.1 + u[i] * 0.8 / U);
		s[i] = (float)(floor((rng_normal(&r) + y[i]) * 4) / 4);
	}
	metrics_gauc(s, y, u, N, U, &used, pu, NULL);
	for (uint32_t k = 0; k < U; k++) {
		float *a = malloc(N * sizeof(*a)), *b = malloc(N * sizeof(*b));
		size_t m = 0, P = 0;

		for (size_t i = 0; i < N; i++)
			if (u[i] == k) {
				a[m] = s[i];
				b[m] = y[i];
				P += y[i] > 0.5f;
				m++;
			}
		if (P > 0 && P < m) {
			double x = auc_brute(a, b, m);

			NEAR(pu[k], x);
			num += m * x;
			den += m;
			used2++;
		} else
			assert_true(isnan(pu[k]));
		free(a);
		free(b);
	}
	assert_int_equal(used, used2);
	NEAR(metrics_gauc(s, y, u, N, U, NULL, NULL, NULL), num / den);
	free(s);
	free(y);
	free(u);
	free(pu);
}

static void
test_logloss(void **state)
{
	const float p1[] = { 0.9f, 0.2f }, y1[] = { 1, 0 };
	const float p2[] = { 0, 1 }, y2[] = { 1, 1 };
	const float p3[] = { 0.5f }, y3[] = { 0.5f };

	(void)state;
	assert_true(fabs(metrics_logloss(p1, y1, 2) -
	    (-(log(0.9f) + log(1 - 0.2f)) / 2)) < 1e-7);
	/* clipped: -log(1e-7) and -log(1 - 1e-7) */
	assert_true(fabs(metrics_logloss(p2, y2, 2) -
	    (-log(1e-7) - log(1 - 1e-7)) / 2) < 1e-9);
	assert_true(fabs(metrics_logloss(p3, y3, 1) - log(2)) < 1e-9);
	assert_true(metrics_logloss(p1, y1, 0) == 0);
}

static void
test_rank(void **state)
{
	const float neg[] = { 0.9f, 0.5f, 0.1f, 0.3f };
	const float flat[] = { 1, 1, 1 };

	(void)state;
	/* one above, one tied (pessimistic): rank 2 */
	assert_int_equal(metrics_rank(0.5f, neg, 4), 2);
	NEAR(metrics_hr_at(2, 2), 0);
	NEAR(metrics_hr_at(2, 3), 1);
	NEAR(metrics_ndcg_at(2, 3), 0.5);
	NEAR(metrics_ndcg_at(0, 10), 1.0);
	NEAR(metrics_ndcg_at(1, 10), 1.0 / log2(3));
	NEAR(metrics_ndcg_at(10, 10), 0);
	assert_int_equal(metrics_rank(2.0f, neg, 4), 0);
	assert_int_equal(metrics_rank(1.0f, flat, 3), 3);	/* constant */
	assert_int_equal(metrics_rank(0.0f, neg, 0), 0);
}

static void
test_bootstrap(void **state)
{
	enum { N = 2000 };
	double *a = malloc(N * sizeof(*a)), *b = malloc(N * sizeof(*b));
	struct metrics_ci ci, ci2;
	struct rng r;

	(void)state;
	rng_seed(&r, 17);
	/* constant difference: degenerate interval */
	for (size_t i = 0; i < N; i++) {
		b[i] = rng_unif(&r);
		a[i] = b[i] + 0.1;
	}
	assert_int_equal(metrics_paired_bootstrap(a, b, NULL, N, 200, 1, &ci),
	    0);
	NEAR(ci.mean, 0.1);
	assert_true(fabs(ci.lo - 0.1) < 1e-9 && fabs(ci.hi - 0.1) < 1e-9);
	NEAR(ci.share_better, 1.0);
	/* d ~ N(0.05, 1): 95% CI width ~ 2 * 1.96 / sqrt(N) = 0.088 */
	for (size_t i = 0; i < N; i++)
		a[i] = b[i] + 0.05 + rng_normal(&r);
	assert_int_equal(metrics_paired_bootstrap(a, b, NULL, N, 1000, 2, &ci),
	    0);
	print_message("bootstrap: mean %.4f [%.4f, %.4f]\n", ci.mean, ci.lo,
	    ci.hi);
	assert_true(ci.lo < ci.mean && ci.mean < ci.hi);
	assert_true(ci.hi - ci.lo > 0.065 && ci.hi - ci.lo < 0.11);
	assert_true(fabs(ci.mean - 0.05) < 0.08);
	assert_int_equal(ci.n, N);
	assert_true(ci.share_better + ci.share_worse <= 1.0);
	/* deterministic in seed, different across seeds */
	assert_int_equal(metrics_paired_bootstrap(a, b, NULL, N, 1000, 2,
	    &ci2), 0);
	assert_true(ci.lo == ci2.lo && ci.hi == ci2.hi);
	metrics_paired_bootstrap(a, b, NULL, N, 1000, 3, &ci2);
	assert_true(ci.lo != ci2.lo || ci.hi != ci2.hi);
	/* weights and NaN pairs */
	{
		const double x[] = { 1, 0, NAN, 5 }, z[] = { 0, 0, 0, 0 };
		const double w[] = { 3, 1, 1, 0 };

		assert_int_equal(metrics_paired_bootstrap(x, z, w, 4, 100, 1,
		    &ci), 0);
		NEAR(ci.mean, 0.75);
		assert_int_equal(ci.n, 2);
		assert_true(ci.lo >= 0 && ci.hi <= 1);
		NEAR(ci.share_better, 0.5);
		assert_int_equal(metrics_paired_bootstrap(x, z, w, 4, 0, 1,
		    &ci), -22);
		assert_int_equal(metrics_paired_bootstrap(x + 2, z, NULL, 1,
		    10, 1, &ci), -22);
	}
	free(a);
	free(b);
}

static void
test_mean_std(void **state)
{
	const double x[] = { 1, 2, 3, 4 };
	double m, s;

	(void)state;
	metrics_mean_std(x, 4, &m, &s);
	NEAR(m, 2.5);
	NEAR(s, sqrt(5.0 / 3.0));
	metrics_mean_std(x, 1, &m, &s);
	NEAR(m, 1);
	NEAR(s, 0);
	metrics_mean_std(x, 0, &m, &s);
	assert_true(isnan(m));
}

/*
 * The clustered standard error: by hand for two groups interleaved; with
 * one value per group it is the plain sd / sqrt(n); one group is
 * infinitely uncertain; no value or a NaN is an error.
 */
static void
test_clustered_mean(void **state)
{
	const double d[] = { 1, 2, 3, 6 }, bad[] = { 1, NAN };
	const uint32_t g[] = { 7, 2, 7, 2 }, one[] = { 5, 5, 5, 5 };
	uint32_t own[50];
	double x[50], m, se, sm, sd;
	struct rng r;

	(void)state;
	/* mean 3; group 7: (1-3)+(3-3) = -2, group 2: -1+3 = 2; G 2 */
	assert_int_equal(metrics_clustered_mean(d, g, 4, &m, &se), 0);
	NEAR(m, 3);
	NEAR(se, sqrt(2.0 * 8.0) / 4.0);
	rng_seed(&r, 9);
	for (int i = 0; i < 50; i++) {
		x[i] = rng_unif(&r) * 4 - 1;
		own[i] = (uint32_t)(1000 - 7 * i);
	}
	assert_int_equal(metrics_clustered_mean(x, own, 50, &m, &se), 0);
	metrics_mean_std(x, 50, &sm, &sd);
	NEAR(m, sm);
	NEAR(se, sd / sqrt(50.0));
	assert_int_equal(metrics_clustered_mean(d, one, 4, &m, &se), 0);
	assert_true(isinf(se));
	assert_int_equal(metrics_clustered_mean(d, g, 0, &m, &se), -EINVAL);
	assert_int_equal(metrics_clustered_mean(bad, g, 2, &m, &se), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_auc_hand),
		cmocka_unit_test(test_auc_brute),
		cmocka_unit_test(test_gauc_hand),
		cmocka_unit_test(test_gauc_brute),
		cmocka_unit_test(test_logloss),
		cmocka_unit_test(test_rank),
		cmocka_unit_test(test_bootstrap),
		cmocka_unit_test(test_mean_std),
		cmocka_unit_test(test_clustered_mean),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
