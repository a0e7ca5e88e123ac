/*
 * Unit tests for deviced/delay.c: the draws are reproducible, differ
 * between devices and versions, follow their distribution and stay
 * within the cap.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "deviced/delay.h"

#define N	20000

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Mean and median of N devices' draws for version 1. */
static void
stats(int dist, int64_t ms, double *mean, double *median, uint64_t *max)
{
	static uint64_t v[N];
	char id[32];
	double s = 0;

	*max = 0;
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "dev-%d", i);
		v[i] = delay_draw(dist, ms, 1, id, 1);
		s += (double)v[i];
		if (v[i] > *max)
			*max = v[i];
	}
	qsort(v, N, sizeof(v[0]), cmp_u64);
	*mean = s / N;
	*median = (double)v[N / 2];
}

static void
test_reproducible(void **st)
{
	uint64_t a = delay_draw(DELAY_EXP, 1000, 7, "dev-1", 3);

	(void)st;
	assert_int_equal(a, delay_draw(DELAY_EXP, 1000, 7, "dev-1", 3));
	assert_true(a != delay_draw(DELAY_EXP, 1000, 7, "dev-2", 3));
	assert_true(a != delay_draw(DELAY_EXP, 1000, 7, "dev-1", 4));
	assert_true(a != delay_draw(DELAY_EXP, 1000, 8, "dev-1", 3));
	assert_int_equal(delay_draw(DELAY_EXP, 0, 7, "dev-1", 3), 0);
	assert_int_equal(delay_draw(DELAY_FIXED, 250, 7, "dev-1", 3), 250);
}

static void
test_distributions(void **st)
{
	double mean, med;
	uint64_t max;

	(void)st;
	stats(DELAY_UNIFORM, 1000, &mean, &med, &max);
	assert_true(fabs(mean - 1000) < 30 && max < 2000);
	stats(DELAY_EXP, 1000, &mean, &med, &max);
	assert_true(fabs(mean - 1000) < 40);
	assert_true(fabs(med - 1000 * log(2.0)) < 40);
	/* Log-normal, sigma 1: median ms, mean ms * e^0.5. */
	stats(DELAY_LOGNORMAL, 1000, &mean, &med, &max);
	assert_true(fabs(med - 1000) < 50);
	assert_true(fabs(mean - 1000 * exp(0.5)) < 100);
	assert_true(max <= (uint64_t)DELAY_CAP * 1000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reproducible),
		cmocka_unit_test(test_distributions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
