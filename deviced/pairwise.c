/*
 * pairwise: the pairwise logistic loss and its gradient (pairwise.h);
 * finite-difference check in tests/unit/test_pairwise.c.
 */
#include <math.h>
#include <string.h>

#include "deviced/pairwise.h"

/* log(1 + exp(-d)) without overflow */
static double
softplus_neg(double d)
{
	return (d < 0 ? -d : 0) + log1p(exp(-fabs(d)));
}

double
pairwise_loss(const float *z, const float *y, const unsigned char *use,
    int B, float *g)
{
	double sum = 0, np = 0;

	memset(g, 0, (size_t)(B > 0 ? B : 0) * sizeof(float));
	for (int i = 0; i < B; i++)
		for (int j = 0; j < B; j++)
			if (y[i] >= 0.5f && y[j] < 0.5f && (use == NULL ||
			    (use[i] && use[j])))
				np++;
	if (np == 0)
		return 0;
	for (int i = 0; i < B; i++) {
		if (y[i] < 0.5f || (use != NULL && !use[i]))
			continue;
		for (int j = 0; j < B; j++) {
			if (y[j] >= 0.5f || (use != NULL && !use[j]))
				continue;
			double d = (double)z[i] - (double)z[j];
			/* d/dd log(1 + e^-d) = -sigmoid(-d) */
			double s = d >= 0 ? exp(-d) / (1 + exp(-d)) :
			    1 / (1 + exp(d));
			sum += softplus_neg(d);
			g[i] -= (float)(s / np);
			g[j] += (float)(s / np);
		}
	}
	return sum / np;
}
