/*
 * Unit tests for deviced/coda_filter.c: the personalized classifier
 * separates two shifted Gaussians, keeps the right share, and the class
 * weighting keeps samples even at a 1:10 ratio.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "deviced/coda_filter.h"
#include "shared/rng.h"

#define D 8

static void
gauss(float *x, size_t n, double shift, struct rng *r)
{
	for (size_t i = 0; i < n * D; i++)
		x[i] = (float)(rng_normal(r) + (i % D == 0 ? shift : 0));
}

/* Retrieved = half near the local cluster, half far: keep the near ones. */
static void
test_separates(void **st)
{
	struct rng r;
	float L[20 * D], R[200 * D], p[200];
	unsigned char keep[200];
	struct filt_opts o;
	int kept, near = 0;

	(void)st;
	rng_seed(&r, 3);
	gauss(L, 20, 3, &r);
	gauss(R, 100, 3, &r);
	gauss(R + 100 * D, 100, -3, &r);
	filt_opts_default(&o);
	o.rho = 0.3;
	kept = filt_select(L, 20, R, 200, D, &o, p, keep);
	assert_int_equal(kept, 60);
	for (int i = 0; i < 100; i++)
		near += keep[i];
	assert_true(near >= 58);	/* nearly all kept ones are near */
	assert_true(p[0] > p[150]);
}

/* At 1:10 an unweighted model keeps nothing at tau 0.5; ours does. */
static void
test_tau_imbalanced(void **st)
{
	struct rng r;
	float L[10 * D], R[100 * D], p[100];
	unsigned char keep[100];
	struct filt_opts o;
	int kept, near = 0;

	(void)st;
	rng_seed(&r, 5);
	gauss(L, 10, 2, &r);
	gauss(R, 50, 2, &r);
	gauss(R + 50 * D, 50, -2, &r);
	filt_opts_default(&o);
	o.rho = 0;
	o.tau = 0.5;
	kept = filt_select(L, 10, R, 100, D, &o, p, keep);
	for (int i = 0; i < 50; i++)
		near += keep[i];
	assert_true(kept >= 20);
	assert_true(near >= kept - 5);
}

static void
test_edges(void **st)
{
	float L[D] = { 0 }, R[2 * D] = { 0 }, p[2];
	unsigned char keep[2] = { 1, 1 };
	struct filt_opts o;

	(void)st;
	filt_opts_default(&o);
	assert_int_equal(filt_select(L, 0, R, 2, D, &o, p, keep), 0);
	assert_int_equal(keep[0] + keep[1], 0);
	assert_int_equal(filt_select(L, 1, R, 0, D, &o, p, keep), 0);
	assert_int_equal(filt_select(L, 1, R, 2, 0, &o, p, keep), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_separates),
		cmocka_unit_test(test_tau_imbalanced),
		cmocka_unit_test(test_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
