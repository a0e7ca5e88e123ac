/*
 * test_recency: the recency weights of the "-recK" rows
 * (deviced/recency.c).
 *
 * - k = 0 copies the base weights.
 * - Local samples get weights rising with time, newest over oldest
 *   2^(k (n - 1) / n), with the base weights' mean kept over them.
 * - Entries past the local samples (kept pool samples) and entries not
 *   in the training set keep their base weights.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "deviced/recency.h"

static void
test_weights(void **state)
{
	const float w0[8] = { 1, 1, 1, 1, 1, 1, 0.5f, 0.5f };
	/* local samples 0..5 (5 left out: a held-out one), pool 6, 7 */
	const uint32_t tr[7] = { 0, 1, 2, 3, 4, 6, 7 };
	float w[8];
	double s = 0;

	(void)state;
	recency_weights(w0, 8, tr, 7, 6, 0, w);
	assert_memory_equal(w, w0, sizeof(w));
	recency_weights(w0, 8, tr, 7, 6, 3, w);
	for (int i = 0; i < 5; i++) {
		s += w[i];
		if (i > 0)
			assert_true(w[i] > w[i - 1]);
	}
	assert_true(fabs(s / 5 - 1) < 1e-6);
	assert_true(fabs(w[4] / w[0] - pow(2, 3.0 * 4 / 5)) < 1e-4);
	assert_true(w[5] == 1 && w[6] == 0.5f && w[7] == 0.5f);
	/* one local sample: nothing to weigh */
	recency_weights(w0, 8, tr, 1, 6, 3, w);
	assert_memory_equal(w, w0, sizeof(w));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_weights),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
