/*
 * recency: loss weights favouring recent local samples (recency.h).
 */
#include <math.h>
#include <string.h>

#include "deviced/recency.h"

void
recency_weights(const float *w0, size_t nw, const uint32_t *tr, size_t ntr,
    size_t nlocal, double k, float *w)
{
	size_t n = 0;
	uint32_t last = 0;
	double s0 = 0, s1 = 0;

	memcpy(w, w0, nw * sizeof(float));
	if (k <= 0)
		return;
	for (size_t i = 0; i < ntr; i++)
		if (tr[i] < nlocal) {
			n++;
			if (tr[i] > last)
				last = tr[i];
		}
	if (n < 2)
		return;
	for (size_t i = 0; i < ntr; i++)
		if (tr[i] < nlocal) {
			double a = pow(2, -k * (double)(last - tr[i]) /
			    (double)n);
			s0 += w0[tr[i]];
			s1 += w0[tr[i]] * a;
			w[tr[i]] = (float)(w0[tr[i]] * a);
		}
	if (s1 > 0)
		for (size_t i = 0; i < ntr; i++)
			if (tr[i] < nlocal)
				w[tr[i]] = (float)(w[tr[i]] * s0 / s1);
}
