/*
 * krc: kernel residual correction over the user's own samples (krc.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "deviced/krc.h"
#include "deviced/rocchio.h"
#include "shared/data/dataset.h"
#include "shared/ml/ctr.h"
#include "shared/ml/kern.h"
#include "shared/xmalloc.h"

static const double krc_tau[KRC_NT] = { 3, 10, 30 };
static const double krc_beta[KRC_NB] = { 0.5, 1, 2, 4 };

void
krc_point(int g, double *tau, double *beta)
{
	if (g <= 0 || g >= KRC_NG) {
		*tau = 0;
		*beta = 0;
		return;
	}
	*tau = krc_tau[(g - 1) / KRC_NB];
	*beta = krc_beta[(g - 1) % KRC_NB];
}

void
krc_units(const struct ctr *c, const struct dataset *ds, size_t n, float *e)
{
	const struct ctr_config *cfg = ctr_config(c);
	const struct param_tensor *t = ctr_tensor_find(c, "emb_item");
	int D = cfg->dim;

	for (size_t i = 0; i < n; i++) {
		uint32_t it = ds->s[i].item < cfg->n_items ? ds->s[i].item :
		    cfg->n_items;
		const float *v = t->data + (size_t)it * t->shape[1];
		double norm = 0;

		for (int d = 0; d < D; d++)
			norm += (double)v[d] * v[d];
		norm = sqrt(norm);
		for (int d = 0; d < D; d++)
			e[i * (size_t)D + (size_t)d] = norm > 0 ?
			    (float)(v[d] / norm) : 0;
	}
}

static double
dot(const float *a, const float *b, int D)
{
	double s = 0;

	for (int d = 0; d < D; d++)
		s += (double)a[d] * b[d];
	return s;
}

static double
sigm(double z)
{
	return 1 / (1 + exp(-z));
}

/* The kernel sums of query q against memory rows [0, lo): S = sum k r, W. */
static void
sums(const float *q, const float *e, const float *r, size_t lo, int D,
    double tau, double *S, double *W)
{
	*S = 0;
	*W = 0;
	for (size_t j = 0; j < lo; j++) {
		double k = exp(tau * (dot(q, e + j * (size_t)D, D) - 1));

		*S += k * r[j];
		*W += k;
	}
}

void
krc_fit(const float *e, int dim, const struct dataset *ds, const float *z,
    size_t n, int K, size_t min_n, struct krc *k)
{
	float *r = xcalloc(n + 1, sizeof(float));
	float *zc = xcalloc(n + 1, sizeof(float));
	uint32_t *ho = xcalloc(n + 1, sizeof(uint32_t));
	size_t kk = (size_t)(K < 2 ? 2 : K);

	memset(k, 0, sizeof(*k));
	for (size_t j = 0; j < n; j++)
		r[j] = (float)(ds->s[j].label - sigm(z[j]));
	if (n < min_n || n < 2)
		goto done;
	if (n < kk)
		kk = n;
	for (size_t f = 1; f < kk; f++) {
		size_t lo = n * f / kk, hi = n * (f + 1) / kk;

		if (hi <= lo || lo == 0)
			continue;
		for (size_t i = lo; i < hi; i++)
			ho[i - lo] = (uint32_t)i;
		for (size_t i = lo; i < hi; i++)
			for (size_t j = lo; j < hi; j++)
				k->pairs += ds->s[i].label >= 0.5f &&
				    ds->s[j].label < 0.5f;
		for (int t = 0; t < KRC_NT; t++) {
			double *S = xcalloc(hi - lo, sizeof(double));
			double *W = xcalloc(hi - lo, sizeof(double));

			for (size_t i = lo; i < hi; i++)
				sums(e + i * (size_t)dim, e, r, lo, dim,
				    krc_tau[t], &S[i - lo], &W[i - lo]);
			for (int b = 0; b < KRC_NB; b++) {
				int g = 1 + t * KRC_NB + b;

				for (size_t i = lo; i < hi; i++) {
					double c = krc_beta[b] * S[i - lo] /
					    (KRC_LAMBDA + W[i - lo]);
					double y = ds->s[i].label;

					zc[i - lo] = (float)(z[i] + c);
					k->ll[g] += bce_logit(z[i], y) -
					    bce_logit(zc[i - lo], y);
				}
				k->sum[g] += rocchio_net_pairs(ds, ho, hi - lo,
				    zc, z + lo);
			}
			free(S);
			free(W);
		}
	}
	for (int g = 1; g < KRC_NG; g++)
		if (k->sum[g] > k->sum[k->g])
			k->g = g;
done:
	krc_point(k->g, &k->tau, &k->beta);
	free(r);
	free(zc);
	free(ho);
}

void
krc_apply(double tau, double beta, const float *e, const struct dataset *ds,
    const float *z, size_t n, int dim, const float *eq, float *zq, size_t nq)
{
	float *r;

	if (beta == 0 || n == 0)
		return;
	r = xcalloc(n, sizeof(float));
	for (size_t j = 0; j < n; j++)
		r[j] = (float)(ds->s[j].label - sigm(z[j]));
	for (size_t i = 0; i < nq; i++) {
		double S, W;

		sums(eq + i * (size_t)dim, e, r, n, dim, tau, &S, &W);
		zq[i] += (float)(beta * S / (KRC_LAMBDA + W));
	}
	free(r);
}
