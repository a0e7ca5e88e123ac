/*
 * mix: the logit-space mixture of the cloud model and an adapted model,
 * and its cross-validation evidence (mix.h).
 */
#include <math.h>
#include <string.h>

#include "deviced/mix.h"

const double mix_alpha[MIX_NA] = { 0, 0.125, 0.25, 0.5, 0.75, 1 };

static double
bce(double z, double y)
{
	return (z > 0 ? z : 0) - z * y + log1p(exp(-fabs(z)));
}

void
mix_add(struct mix_ev *e, const float *z0, const float *z1, const float *y,
    size_t n)
{
	e->have = 1;
	e->n += n;
	for (size_t i = 0; i < n; i++) {
		double l0 = bce(z0[i], y[i] >= 0.5f);
		for (int k = 1; k < MIX_NA; k++) {
			double z = z0[i] + mix_alpha[k] * ((double)z1[i] - z0[i]);
			double g = l0 - bce(z, y[i] >= 0.5f);
			e->gain[k] += g;
			e->sq[k] += g * g;
		}
	}
	/* Each pair flips at most once as the weight grows (mix.h). */
	for (size_t i = 0; i < n; i++) {
		if (y[i] < 0.5f)
			continue;
		for (size_t j = 0; j < n; j++) {
			if (y[j] >= 0.5f)
				continue;
			double d0 = (double)z0[i] - z0[j];
			double d1 = (double)z1[i] - z1[j];
			double o0 = d0 > 0 ? 1 : d0 < 0 ? 0 : 0.5;
			e->pairs++;
			for (int k = 1; k < MIX_NA; k++) {
				double d = d0 + mix_alpha[k] * (d1 - d0);
				e->rank[k] += (d > 0 ? 1 : d < 0 ? 0 : 0.5) - o0;
			}
		}
	}
}

int
mix_choose(const struct mix_ev *e, enum mix_rule rule, double *gain,
    double *se)
{
	int b = 0;
	double nn = (double)e->n, mu, var;

	*gain = *se = 0;
	if (!e->have || e->n == 0)
		return 0;
	for (int k = 1; k < MIX_NA; k++) {
		double v = rule == MIX_BY_RANK ? e->rank[k] : e->gain[k];
		double vb = rule == MIX_BY_RANK ? e->rank[b] : e->gain[b];
		if (v > vb)
			b = k;
	}
	mu = e->gain[b] / nn;
	var = e->sq[b] / nn - mu * mu;
	*gain = mu;
	*se = sqrt((var > 0 ? var : 0) / nn);
	return b;
}

void
mix_probs(const float *p0, float *p1, size_t n, double a)
{
	for (size_t i = 0; i < n; i++) {
		double q0 = p0[i], q1 = p1[i];
		double z0 = log(q0) - log1p(-q0), z1 = log(q1) - log1p(-q1);
		double z = z0 + a * (z1 - z0);
		p1[i] = (float)(1 / (1 + exp(-z)));
	}
}
