/*
 * test_mix: the logit-space mixture of the "-mix" rows (deviced/mix.c).
 *
 * - Its evidence at weight 1 is the adapted model's own (logloss gains
 *   and net pairs over the cloud model, computed here directly); at
 *   weight 0 it is zero.
 * - A pair flips where d0 + a (d1 - d0) changes sign: the net pairs per
 *   weight of a hand-made case, and the rule by pairs picks the smallest
 *   weight that fixes a near-tie without breaking a confident pair.
 * - No weight beating the cloud model gives weight 0.
 * - mix_probs: weight 0 gives the cloud's probability, 1 the adapted
 *   one's, 1/2 the sigmoid of the mean logit.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "deviced/mix.h"

static double
bce(double z, double y)
{
	return (z > 0 ? z : 0) - z * y + log1p(exp(-fabs(z)));
}

static void
test_whole_weight(void **state)
{
	const float z0[6] = { 0.2f, -0.4f, 1.5f, -2.0f, 0.0f, 0.7f };
	const float z1[6] = { 0.9f, -0.1f, 0.5f, -2.5f, 0.3f, -0.2f };
	const float y[6] = { 1, 0, 1, 0, 0, 1 };
	struct mix_ev e;
	double g = 0, sq = 0, r = 0;
	size_t pairs = 0;

	(void)state;
	memset(&e, 0, sizeof(e));
	mix_add(&e, z0, z1, y, 6);
	for (int i = 0; i < 6; i++) {
		double d = bce(z0[i], y[i]) - bce(z1[i], y[i]);
		g += d;
		sq += d * d;
	}
	for (int i = 0; i < 6; i++)
		for (int j = 0; j < 6; j++)
			if (y[i] >= 0.5f && y[j] < 0.5f) {
				r += (z1[i] > z1[j]) - (z0[i] > z0[j]);
				pairs++;
			}
	assert_int_equal(e.n, 6);
	assert_int_equal(e.pairs, pairs);
	assert_true(fabs(e.gain[MIX_NA - 1] - g) < 1e-9);
	assert_true(fabs(e.sq[MIX_NA - 1] - sq) < 1e-9);
	assert_true(fabs(e.rank[MIX_NA - 1] - r) < 1e-9);
	assert_true(e.gain[0] == 0 && e.sq[0] == 0 && e.rank[0] == 0);
}

static void
test_flips(void **state)
{
	/*
	 * Pair (0, 1): the cloud nearly ties it wrongly (d0 = -0.01), the
	 * adapted model fixes it (d1 = +1): right from a = 0.01 on.
	 * Pair (2, 3): the cloud is confidently right (d0 = 2), the adapted
	 * model wrong (d1 = -2): a tie at a = 1/2, wrong above. Cross pairs
	 * (0, 3) and (2, 1) keep their order at every weight.
	 */
	const float z0[4] = { 0.0f, 0.01f, 5.0f, 3.0f };
	const float z1[4] = { 1.0f, 0.0f, 3.0f, 5.0f - 0.0f };
	const float y[4] = { 1, 0, 1, 0 };
	const double want[MIX_NA] = { 0, 1, 1, 0.5, 0, 0 };
	struct mix_ev e;
	double gain, se;

	(void)state;
	memset(&e, 0, sizeof(e));
	mix_add(&e, z0, z1, y, 4);
	assert_int_equal(e.pairs, 4);
	/* (0, 3): 0 < 3 under both; (2, 1): 5 > 0.01 and 3 > 0: unchanged */
	for (int k = 0; k < MIX_NA; k++)
		assert_true(fabs(e.rank[k] - want[k]) < 1e-12);
	assert_int_equal(mix_choose(&e, MIX_BY_RANK, &gain, &se), 1);
	assert_true(fabs(gain - e.gain[1] / 4) < 1e-12);
	assert_true(se >= 0);
}

static void
test_none_better(void **state)
{
	const float z0[4] = { 2, -2, 1, -1 };
	const float z1[4] = { -2, 2, -1, 1 };
	const float y[4] = { 1, 0, 1, 0 };
	struct mix_ev e;
	double gain, se;

	(void)state;
	memset(&e, 0, sizeof(e));
	mix_add(&e, z0, z1, y, 4);
	assert_int_equal(mix_choose(&e, MIX_BY_GAIN, &gain, &se), 0);
	assert_int_equal(mix_choose(&e, MIX_BY_RANK, &gain, &se), 0);
	assert_true(gain == 0 && se == 0);
	memset(&e, 0, sizeof(e));	/* no evidence */
	assert_int_equal(mix_choose(&e, MIX_BY_GAIN, &gain, &se), 0);
}

static void
test_probs(void **state)
{
	const float p0[3] = { 0.2f, 0.5f, 0.9f };
	const float q[3] = { 0.6f, 0.1f, 0.3f };
	float p1[3];

	(void)state;
	memcpy(p1, q, sizeof(p1));
	mix_probs(p0, p1, 3, 0);
	for (int i = 0; i < 3; i++)
		assert_true(fabsf(p1[i] - p0[i]) < 1e-6f);
	memcpy(p1, q, sizeof(p1));
	mix_probs(p0, p1, 3, 1);
	for (int i = 0; i < 3; i++)
		assert_true(fabsf(p1[i] - q[i]) < 1e-6f);
	memcpy(p1, q, sizeof(p1));
	mix_probs(p0, p1, 3, 0.5);
	for (int i = 0; i < 3; i++) {
		double z = 0.5 * (log(p0[i] / (1 - p0[i])) +
		    log(q[i] / (1 - q[i])));
		assert_true(fabs(p1[i] - 1 / (1 + exp(-z))) < 1e-6);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_weight),
		cmocka_unit_test(test_flips),
		cmocka_unit_test(test_none_better),
		cmocka_unit_test(test_probs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
