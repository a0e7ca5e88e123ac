/*
 * test_calib: the per-user recalibration of the "-cal" rows
 * (deviced/calib.c).
 *
 * - calib_loss's gradient matches central finite differences, with and
 *   without the prior.
 * - calib_fit reaches a stationary point of the objective, recovers a
 *   known scale and offset from many samples (weak prior), stays at the
 *   identity without samples and near it with a strong prior.
 * - calib_probs keeps the order of the scores (1 + t > 0) and applies
 *   the fitted map.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "shared/ml/calib.h"
#include "shared/rng.h"

#define N	4000

static float z[N], y[N];

/* Labels drawn from sigma(0.5 z - 0.7): the map to recover. */
static void
make(void)
{
	struct rng r;

	rng_seed(&r, 7);
	for (int i = 0; i < N; i++) {
		z[i] = (float)(4 * rng_unif(&r) - 2);
		double p = 1 / (1 + exp(-(0.5 * z[i] - 0.7)));
		y[i] = rng_unif(&r) < p;
	}
}

static void
test_gradient(void **state)
{
	const double pts[3][2] = { { 0, 0 }, { -0.4, 0.3 }, { 0.8, -1.1 } };

	(void)state;
	make();
	for (int pr = 0; pr < 2; pr++)
		for (int k = 0; k < 3; k++) {
			double t = pts[k][0], b = pts[k][1], gt, gb, h = 1e-4;
			double prior = pr ? CALIB_PRIOR : 0;
			(void)calib_loss(z, y, 50, prior, t, b, &gt, &gb);
			double ft = (calib_loss(z, y, 50, prior, t + h, b, NULL,
			    NULL) - calib_loss(z, y, 50, prior, t - h, b, NULL,
			    NULL)) / (2 * h);
			double fb = (calib_loss(z, y, 50, prior, t, b + h, NULL,
			    NULL) - calib_loss(z, y, 50, prior, t, b - h, NULL,
			    NULL)) / (2 * h);
			assert_true(fabs(ft - gt) <= 1e-5 + 1e-5 * fabs(ft));
			assert_true(fabs(fb - gb) <= 1e-5 + 1e-5 * fabs(fb));
		}
}

static void
test_fit(void **state)
{
	double t, b, gt, gb, t8, b8;
	float p[3] = { 0.2f, 0.5f, 0.7f };

	(void)state;
	make();
	assert_int_equal(calib_fit(z, y, N, 1, &t, &b), 0);
	(void)calib_loss(z, y, N, 1, t, b, &gt, &gb);
	assert_true(fabs(gt) < 1e-4 && fabs(gb) < 1e-4);	/* stationary */
	assert_true(fabs(1 + t - 0.5) < 0.1 && fabs(b + 0.7) < 0.1);
	assert_int_equal(calib_fit(z, y, 0, 1, &t, &b), 0);
	assert_true(t == 0 && b == 0);
	/* 20 samples: the prior keeps the fit nearer the identity */
	assert_int_equal(calib_fit(z, y, 20, 1, &t, &b), 0);
	assert_int_equal(calib_fit(z, y, 20, 200, &t8, &b8), 0);
	assert_true(fabs(t8) + fabs(b8) < fabs(t) + fabs(b));
	assert_true(1 + t >= 0.1);
	calib_probs(p, 3, -0.5, -0.7);
	assert_true(p[0] < p[1] && p[1] < p[2]);
	assert_true(fabs(p[1] - 1 / (1 + exp(0.7))) < 1e-6);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gradient),
		cmocka_unit_test(test_fit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
