/* Unit tests for deviced/label_correct.c: means, order, edge cases. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "deviced/label_correct.h"

static double
mean(const float *v, size_t n)
{
	double s = 0;

	for (size_t i = 0; i < n; i++)
		s += v[i];
	return s / n;
}

/* r_u > r_g: positives shrink to r_g / r_u; the mean becomes r_g. */
static void
test_soft_high_ctr(void **st)
{
	float y[10] = { 1, 1, 1, 1, 1, 1, 1, 1, 0, 0 }, out[10];
	struct lc_opts o = { LC_SOFT, 0.4, 5, 0 };
	double ru = lc_apply(&o, y, 10, out, NULL);

	(void)st;
	assert_true(fabs(ru - 0.8) < 1e-9);
	assert_true(fabs(mean(out, 10) - 0.4) < 1e-6);
	assert_true(fabs(out[0] - 0.5f) < 1e-6);
	assert_true(out[9] == 0.0f);
}

/* r_u < r_g: negatives rise to (r_g - r_u) / (1 - r_u); order kept. */
static void
test_soft_low_ctr(void **st)
{
	float y[10] = { 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, out[10];
	struct lc_opts o = { LC_SOFT, 0.5, 5, 0 };

	(void)st;
	lc_apply(&o, y, 10, out, NULL);
	assert_true(fabs(mean(out, 10) - 0.5) < 1e-6);
	assert_true(out[0] == 1.0f);
	assert_true(fabs(out[1] - (0.5 - 0.1) / 0.9) < 1e-6);
	assert_true(out[0] > out[1]);
}

static void
test_no_positives(void **st)
{
	float y[6] = { 0 }, out[6];
	struct lc_opts o = { LC_SOFT, 0.3, 5, 0 };

	(void)st;
	lc_apply(&o, y, 6, out, NULL);
	for (int i = 0; i < 6; i++)
		assert_true(fabs(out[i] - 0.3f) < 1e-6);	/* all r_g */
	o.prior = 2;	/* smoothed r_u = 0.6/8: finite, mean still r_g */
	lc_apply(&o, y, 6, out, NULL);
	assert_true(out[0] > 0 && out[0] < 0.3f);
}

static void
test_all_positives(void **st)
{
	float y[6] = { 1, 1, 1, 1, 1, 1 }, out[6], off[6];
	struct lc_opts o = { LC_SOFT, 0.3, 5, 0 };

	(void)st;
	lc_apply(&o, y, 6, out, NULL);
	for (int i = 0; i < 6; i++)
		assert_true(fabs(out[i] - 0.3f) < 1e-6);
	o.mode = LC_OFFSET;	/* clipped, finite */
	lc_apply(&o, y, 6, out, off);
	assert_true(isfinite(off[0]) && off[0] > 0);
	assert_true(out[0] == 1.0f);
}

static void
test_too_few(void **st)
{
	float y[3] = { 1, 1, 0 }, out[3], off[3] = { 9, 9, 9 };
	struct lc_opts o = { LC_SOFT, 0.2, 5, 0 };

	(void)st;
	lc_apply(&o, y, 3, out, off);
	assert_true(out[0] == 1.0f && out[2] == 0.0f);
	assert_true(off[0] == 0.0f);	/* cleared, no correction */
}

/* The offset is logit(r_u) - logit(r_g), labels stay hard. */
static void
test_offset(void **st)
{
	float y[8] = { 1, 1, 1, 1, 1, 1, 0, 0 }, out[8], off[8];
	struct lc_opts o = { LC_OFFSET, 0.5, 5, 0 };

	(void)st;
	lc_apply(&o, y, 8, out, off);
	assert_true(fabs(off[3] - log(0.75 / 0.25)) < 1e-5);
	assert_true(out[0] == 1.0f && out[7] == 0.0f);
	o.mode = LC_NONE;
	lc_apply(&o, y, 8, out, off);
	assert_true(off[0] == 0.0f && out[0] == 1.0f);
}

/*
 * lc-min-n 0 on tiny samples, aligned to a model's own prior t (what
 * learn.c passes as r_g with learn.lc-target = model): the pseudo-samples
 * shrink r_u toward t, so one or two labels give finite, partial
 * corrections toward t, and no samples give none.
 */
static void
test_tiny_shrunk(void **st)
{
	float y1[1] = { 1 }, y2[2] = { 0, 0 }, out[2], off[2];
	const double t = 0.62, ru1 = (1 + 2 * t) / 3, ru2 = (0 + 2 * t) / 4;
	struct lc_opts o = { LC_SOFT, t, 0, 2 };

	(void)st;
	assert_true(fabs(lc_apply(&o, y1, 1, out, NULL) - ru1) < 1e-9);
	assert_true(fabs(out[0] - t / ru1) < 1e-6);	/* r_u > t */
	assert_true(out[0] > 0 && out[0] < 1);
	lc_apply(&o, y2, 2, out, NULL);
	/* a partial correction: the mean moves from 0 toward t, not to t */
	assert_true(fabs(out[0] - (t - ru2) / (1 - ru2)) < 1e-6);
	assert_true(mean(out, 2) > 0 && mean(out, 2) < t);
	o.mode = LC_OFFSET;
	lc_apply(&o, y1, 1, out, off);
	assert_true(fabs(off[0] - (log(ru1 / (1 - ru1)) - log(t / (1 - t)))) <
	    1e-5);
	assert_true(fabs(off[0]) < 1);	/* shrunk: no huge offset */
	assert_true(lc_apply(&o, y1, 0, out, off) == t);	/* n = 0 */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_soft_high_ctr),
		cmocka_unit_test(test_soft_low_ctr),
		cmocka_unit_test(test_no_positives),
		cmocka_unit_test(test_all_positives),
		cmocka_unit_test(test_too_few),
		cmocka_unit_test(test_offset),
		cmocka_unit_test(test_tiny_shrunk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
