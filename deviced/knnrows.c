/*
 * knnrows: a cold user's personal rows averaged from the trained users
 * whose rows point along the user's click direction (knnrows.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "deviced/knnrows.h"
#include "deviced/rocchio.h"
#include "shared/data/dataset.h"
#include "shared/ml/ctr.h"
#include "shared/ml/encoder.h"
#include "shared/xmalloc.h"

const double knnrows_lambda[KNNROWS_NL] = { 0, 0.25, 0.5, 1 };

/* A trained user: the cloud trains m and bias rows, init is zero. */
static int
trained(const struct ctr *c, uint32_t u, int nout, int dim)
{
	float r[ENC_MAX_OUT];

	enc_rows_get(c, u, r);
	for (int i = dim; i < nout; i++)
		if (r[i] != 0)
			return 1;
	return 0;
}

int
knnrows_avg(const struct ctr *c, const float *dir, uint32_t user, int k,
    float *avg)
{
	const struct ctr_config *cfg = ctr_config(c);
	const struct param_tensor *t = ctr_tensor_find(c, "emb_user");
	int D = cfg->dim, nin, nout, nb = 0;
	uint32_t *best;
	double *bs, dn = 0;
	float r[ENC_MAX_OUT];
	double acc[ENC_MAX_OUT] = { 0 };

	/*
	 * A device's slice (protocol 7) holds no other user's rows: there
	 * are no neighbours to average, by design (conf/SECURITY.md).
	 */
	if (k <= 0 || cfg->sliced || enc_shape(c, &nin, &nout) != 0)
		return 0;
	for (int d = 0; d < D; d++)
		dn += (double)dir[d] * dir[d];
	if (!(dn > 0))
		return 0;
	best = xcalloc((size_t)k, sizeof(uint32_t));
	bs = xcalloc((size_t)k, sizeof(double));
	for (uint32_t u = 0; u < cfg->n_users; u++) {
		const float *e = t->data + (size_t)u * t->shape[1];
		double dot = 0, en = 0, cs;
		int j;

		if (u == user || !trained(c, u, nout, D))
			continue;
		for (int d = 0; d < D; d++) {
			dot += (double)e[d] * dir[d];
			en += (double)e[d] * e[d];
		}
		if (!(en > 0))
			continue;
		cs = dot / sqrt(en * dn);
		/* insertion into the k best, descending (ties: lower id) */
		if (nb == k && !(cs > bs[k - 1]))
			continue;
		j = nb < k ? nb++ : k - 1;
		while (j > 0 && cs > bs[j - 1]) {
			bs[j] = bs[j - 1];
			best[j] = best[j - 1];
			j--;
		}
		bs[j] = cs;
		best[j] = u;
	}
	for (int i = 0; i < nb; i++) {
		enc_rows_get(c, best[i], r);
		for (int o = 0; o < nout; o++)
			acc[o] += r[o];
	}
	for (int o = 0; o < nout && nb > 0; o++)
		avg[o] = (float)(acc[o] / nb);
	free(best);
	free(bs);
	return nb;
}

/* rows = o + lambda (avg - o) */
static void
mix(const float *o, const float *avg, double lambda, int nout, float *rows)
{
	memcpy(rows, o, ENC_MAX_OUT * sizeof(float));
	for (int i = 0; i < nout; i++)
		rows[i] = (float)(o[i] + lambda * (avg[i] - o[i]));
}

/* The candidates: o moved by lambda towards the neighbours of idx[0..lo). */
struct knn_cv {
	const struct ctr	*c;
	const struct dataset	*ds;
	const uint32_t		*idx;
	uint32_t		 user;
	int			 nout;
	float			 dir[CTR_MAX_DIM];
	float			 avg[ENC_MAX_OUT];
};

static int
knn_prep(void *arg, size_t lo)
{
	struct knn_cv *a = arg;

	rocchio_dir(a->c, a->ds, a->idx, lo, a->dir);
	return knnrows_avg(a->c, a->dir, a->user, KNNROWS_K, a->avg) != 0;
}

static void
knn_cand(void *arg, int g, const float *o, float *r)
{
	struct knn_cv *a = arg;

	mix(o, a->avg, knnrows_lambda[g], a->nout, r);
}

double
knnrows_rows(struct ctr *c, const struct dataset *ds, const uint32_t *idx,
    size_t n, uint32_t user, int K, size_t min_n, float *rows, double *net)
{
	const struct ctr_config *cfg = ctr_config(c);
	float o[ENC_MAX_OUT];
	double sum[KNNROWS_NL] = { 0 };
	struct knn_cv a = { c, ds, idx, user, 0, { 0 }, { 0 } };
	int best = 0, nin;

	enc_rows_get(c, cfg->n_users, o);	/* the unknown-user rows */
	if (n >= min_n && n >= 2 && enc_shape(c, &nin, &a.nout) == 0)
		best = rocchio_fcv(c, ds, idx, n, user, K, KNNROWS_NL, o,
		    knn_prep, knn_cand, &a, sum);
	memcpy(rows, o, sizeof(o));
	if (best > 0) {
		rocchio_dir(c, ds, idx, n, a.dir);
		if (knnrows_avg(c, a.dir, user, KNNROWS_K, a.avg) > 0)
			mix(o, a.avg, knnrows_lambda[best], a.nout, rows);
		else
			best = 0;
	}
	enc_rows_set(c, user, rows);
	if (net != NULL)
		*net = sum[best];
	return knnrows_lambda[best];
}
