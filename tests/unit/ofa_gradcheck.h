/*
 * ofa_gradcheck: the finite-difference check of a Forward-OFA model's
 * gradients, shared by test_ofa and test_ofa_ext. Header-only (each test
 * binary keeps its one source file); include after <cmocka.h>, with
 * OFA_GC_B (batch), OFA_GC_X (input columns) and OFA_GC_Z (z width)
 * defined. Each float32 parameter moves by +-3e-3 (the actual float step
 * is the denominator); the central difference of the double-accumulated
 * loss (BCE + mu * penalty) must match the analytic gradient within
 * 2e-4 + 2e-2 |numeric|, as in tests/unit/ctr_gradcheck.h. The step is
 * near float32's eps^(1/3), where the difference's rounding error (the
 * float forward pass's, over the step) and its h^2 error balance: at
 * 1e-3 the rounding alone moved DUET's b2_bm by 2-4e-4, the tolerance,
 * and which side it fell on depended on the products' summation order.
 */
#ifndef TESTS_OFA_GRADCHECK_H
#define TESTS_OFA_GRADCHECK_H

#include <math.h>
#include <stdio.h>

#include "shared/ml/ofa.h"
#include "shared/rng.h"

struct gc {
	float	x0[OFA_GC_B * OFA_GC_X], z[OFA_GC_B * OFA_GC_Z];
	float	bud[OFA_GC_B], y[OFA_GC_B];
};

/* A batch of random inputs, the three class budgets in turn. */
static inline void
gc_init(struct gc *g, uint64_t seed)
{
	struct rng r;
	static const float b[3] = { 0.34f, 0.67f, 1.0f };

	rng_seed(&r, seed);
	for (size_t i = 0; i < sizeof(g->x0) / sizeof(float); i++)
		g->x0[i] = (float)rng_normal(&r);
	for (size_t i = 0; i < sizeof(g->z) / sizeof(float); i++)
		g->z[i] = (float)rng_normal(&r);
	for (int i = 0; i < OFA_GC_B; i++) {
		g->bud[i] = b[i % 3];
		g->y[i] = (float)rng_unif(&r);
	}
}

/* The loss at the current parameters; leaves their gradient behind. */
static inline double
total_loss(struct ofa *m, const struct gc *g, double mu)
{
	double l, p;

	assert_int_equal(ofa_forward(m, g->x0, g->z, g->bud, OFA_GC_B, NULL,
	    NULL), 0);
	ofa_zero_grad(m);
	assert_int_equal(ofa_backward(m, g->y, mu, &l, &p), 0);
	return l + mu * p;
}

/* Makes every parameter O(1)-ish so that all paths carry gradient. */
static inline void
gc_randomize(struct ofa *m, uint64_t seed)
{
	struct rng r;
	float *p = ofa_params(m);

	rng_seed(&r, seed);
	for (size_t i = 0; i < ofa_num_params(m); i++)
		p[i] = (float)(0.6 * rng_normal(&r));
}

/*
 * Tensor t against the analytic gradient an (all parameters, taken at
 * the unperturbed point): the number of bad values, with the count of
 * nonzero analytic values and the largest difference. Prints a line.
 */
static inline int
gc_tensor(struct ofa *m, const struct gc *g, double mu, const float *an,
    const struct param_tensor *t, int *nonzero, double *maxd)
{
	size_t off = (size_t)(t->data - ofa_params(m));
	int bad = 0;

	*nonzero = 0;
	*maxd = 0;
	for (size_t k = 0; k < t->n; k++) {
		float keep = t->data[k];
		float hi = keep + 3e-3f, lo = keep - 3e-3f;
		t->data[k] = hi;
		double lp = total_loss(m, g, mu);
		t->data[k] = lo;
		double lm = total_loss(m, g, mu);
		t->data[k] = keep;
		double num = (lp - lm) / ((double)hi - (double)lo);
		double a = an[off + k], d = fabs(a - num);
		if (d > *maxd)
			*maxd = d;
		if (a != 0.0)
			(*nonzero)++;
		if (d > 2e-4 + 2e-2 * fabs(num)) {
			if (bad < 3)
				printf("  %s[%zu]: analytic %.7f numeric %.7f\n",
				    t->name, k, a, num);
			bad++;
		}
	}
	printf("  %-7s %4zu values, %4d nonzero, max |diff| %.2g, %d bad\n",
	    t->name, t->n, *nonzero, *maxd, bad);
	return bad;
}

#endif
