/* label_correct: see label_correct.h. */
#include <math.h>
#include <string.h>

#include "deviced/label_correct.h"

double
lc_local_ctr(const float *y, size_t n, double r_g, double prior)
{
	double pos = 0;

	for (size_t i = 0; i < n; i++)
		pos += y[i] >= 0.5f;
	if (n == 0 && prior <= 0)
		return r_g;
	return (pos + prior * r_g) / ((double)n + prior);
}

static double
logit(double p)
{
	const double eps = 1e-4;	/* keeps offsets finite */

	if (p < eps)
		p = eps;
	if (p > 1 - eps)
		p = 1 - eps;
	return log(p / (1 - p));
}

double
lc_apply(const struct lc_opts *o, const float *y, size_t n, float *out,
    float *offset)
{
	double ru = lc_local_ctr(y, n, o->r_g, o->prior), rg = o->r_g, off;

	memcpy(out, y, n * sizeof(float));
	if (offset != NULL)
		memset(offset, 0, n * sizeof(float));
	if (o->mode == LC_NONE || n < o->min_n || n == 0 || !(rg > 0 && rg < 1))
		return ru;
	if (o->mode == LC_OFFSET) {
		off = logit(ru) - logit(rg);
		for (size_t i = 0; offset != NULL && i < n; i++)
			offset[i] = (float)off;
		return ru;
	}
	if (ru > rg) {
		for (size_t i = 0; i < n; i++)
			out[i] = y[i] >= 0.5f ? (float)(rg / ru) : 0.0f;
	} else if (ru < rg) {
		for (size_t i = 0; i < n; i++)
			out[i] = y[i] >= 0.5f ? 1.0f :
			    (float)((rg - ru) / (1 - ru));
	}
	return ru;
}
