/*
 * ctr_gradcheck: the finite-difference check of a CTR model's gradients,
 * shared by the CTR unit tests (test_ctr, test_ctr_opts). Include after
 * <cmocka.h>; header-only so each test binary keeps its one source file.
 */
#ifndef TESTS_CTR_GRADCHECK_H
#define TESTS_CTR_GRADCHECK_H

#include <math.h>
#include <stdio.h>

#include "shared/ml/ctr.h"

/* Mean weighted BCE of ds->s[idx[0..B)] (B <= 16) with logit offsets. */
static inline double
gradcheck_loss(struct ctr *m, const struct dataset *ds, const uint32_t *idx,
    int B, const float *y, const float *w, const float *off)
{
	float logits[16];
	double L = 0;

	assert_true(B <= 16);
	assert_int_equal(ctr_forward(m, ds, idx, B, logits), 0);
	for (int b = 0; b < B; b++) {
		double z = (double)logits[b] + off[b];
		double l = (z > 0 ? z : 0) - z * y[b] + log1p(exp(-fabs(z)));
		L += w[b] * l;
	}
	return L / B;
}

/*
 * Backward on the batch, then every parameter of every tensor against a
 * central difference (h = 1e-3); each tensor must get some nonzero
 * gradient. A fixed tensor (CTR_T_FIXED: the item prior, never trained)
 * must get none at all. Prints a line per tensor; returns the count of
 * bad values.
 */
static inline int
gradcheck_all(struct ctr *m, const struct dataset *ds, const uint32_t *idx,
    int B, const float *y, const float *w, const float *off)
{
	int total_bad = 0;
	double L;

	assert_int_equal(ctr_forward(m, ds, idx, B, NULL), 0);
	ctr_zero_grad(m);
	assert_int_equal(ctr_backward(m, CTR_SEL_ALL, y, w, off, &L), 0);
	assert_true(fabs(L - gradcheck_loss(m, ds, idx, B, y, w, off)) < 1e-6);
	for (int i = 0; i < ctr_num_tensors(m); i++) {
		const struct param_tensor *t = ctr_tensor_at(m, i);
		int bad = 0, nonzero = 0;
		double maxd = 0;

		if (t->kind == CTR_T_FIXED) {
			for (size_t k = 0; k < t->n; k++)
				assert_true(t->grad[k] == 0.0f);
			printf("  %-10s %4zu values, fixed: no gradient\n",
			    t->name, t->n);
			continue;
		}
		for (size_t k = 0; k < t->n; k++) {
			float keep = t->data[k];
			float hi = keep + 1e-3f, lo = keep - 1e-3f;
			t->data[k] = hi;
			double lp = gradcheck_loss(m, ds, idx, B, y, w, off);
			t->data[k] = lo;
			double lm = gradcheck_loss(m, ds, idx, B, y, w, off);
			t->data[k] = keep;
			double num = (lp - lm) / ((double)hi - (double)lo);
			double a = t->grad[k];
			double d = fabs(a - num);
			if (d > maxd)
				maxd = d;
			if (a != 0.0)
				nonzero++;
			if (d > 2e-4 + 2e-2 * fabs(num)) {
				if (bad < 3)
					printf("  %s[%zu]: analytic %.7f numeric "
					    "%.7f\n", t->name, k, a, num);
				bad++;
			}
		}
		printf("  %-10s %4zu values, %4d nonzero, max |diff| %.2g, "
		    "%d bad\n", t->name, t->n, nonzero, maxd, bad);
		assert_true(nonzero > 0);
		total_bad += bad;
	}
	return total_bad;
}

#endif
