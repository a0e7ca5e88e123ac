/* coda_filter: CoDA's device filter, see coda_filter.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "deviced/coda_filter.h"
#include "shared/xmalloc.h"

void
filt_opts_default(struct filt_opts *o)
{
	o->tau = 0.5;
	o->rho = 0.3;
	o->l2 = 1e-3;
	o->iters = 200;
	o->lr = 0.5;
}

static double
score(const double *w, const float *x, int d)
{
	double z = w[d];	/* bias */

	for (int j = 0; j < d; j++)
		z += w[j] * x[j];
	return z;
}

static int
cmp_desc(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x < y) - (x > y);
}

int
filt_select(const float *L, size_t nl, const float *R, size_t nr, int d,
    const struct filt_opts *o, float *p, unsigned char *keep)
{
	double *w, *g, wl, wr;
	int kept = 0;

	if (d <= 0 || (nr > 0 && (p == NULL || keep == NULL)))
		return -1;
	if (nr == 0)
		return 0;
	memset(keep, 0, nr);
	if (nl == 0) {
		for (size_t i = 0; i < nr; i++)
			p[i] = 0;
		return 0;
	}
	/* Each class carries half the total weight. */
	wl = 0.5 / (double)nl;
	wr = 0.5 / (double)nr;
	w = xcalloc(d + 1, sizeof(double));
	g = xcalloc(d + 1, sizeof(double));
	for (int it = 0; it < o->iters; it++) {
		memset(g, 0, (d + 1) * sizeof(double));
		for (size_t i = 0; i < nl + nr; i++) {
			const float *x = i < nl ? L + i * d : R + (i - nl) * d;
			double y = i < nl, pr = 1 / (1 + exp(-score(w, x, d)));
			double c = (i < nl ? wl : wr) * (pr - y);
			for (int j = 0; j < d; j++)
				g[j] += c * x[j];
			g[d] += c;
		}
		for (int j = 0; j < d; j++)
			w[j] -= o->lr * (g[j] + o->l2 * w[j]);
		w[d] -= o->lr * g[d];
	}
	for (size_t i = 0; i < nr; i++)
		p[i] = (float)(1 / (1 + exp(-score(w, R + i * d, d))));
	if (o->rho > 0) {
		size_t k = (size_t)(o->rho * (double)nr + 0.5);
		float *s = xmalloc(nr * sizeof(float)), cut;
		if (k == 0)
			k = 1;
		memcpy(s, p, nr * sizeof(float));
		qsort(s, nr, sizeof(float), cmp_desc);
		cut = s[k - 1];
		for (size_t i = 0; i < nr && kept < (int)k; i++)
			if (p[i] >= cut) {
				keep[i] = 1;
				kept++;
			}
		free(s);
	} else {
		for (size_t i = 0; i < nr; i++)
			if (p[i] >= o->tau) {
				keep[i] = 1;
				kept++;
			}
	}
	free(w);
	free(g);
	return kept;
}
