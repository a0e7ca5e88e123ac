/*
 * rocchio: a cold user's user row from their own samples' item embeddings
 * (rocchio.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "deviced/rocchio.h"
#include "shared/data/dataset.h"
#include "shared/ml/ctr.h"
#include "shared/ml/encoder.h"
#include "shared/xmalloc.h"

const double rocchio_gamma[ROCCHIO_NG] = { 0, 0.25, 0.5, 1, 2, 4 };

/* RMS norm of the item table's rows: the scale of an item row. */
static double
item_rms(const struct ctr *c)
{
	const struct ctr_config *cfg = ctr_config(c);
	const struct param_tensor *t = ctr_tensor_find(c, "emb_item");
	double rms = 0;

	for (size_t r = 0; r < (size_t)cfg->n_items; r++)
		for (int d = 0; d < cfg->dim; d++) {
			double v = t->data[r * t->shape[1] + (size_t)d];
			rms += v * v;
		}
	return cfg->n_items > 0 ? sqrt(rms / cfg->n_items) : 0;
}

static void
dir_of(const struct ctr *c, const struct dataset *ds, const uint32_t *idx,
    size_t n, double rms, float *dir)
{
	const struct ctr_config *cfg = ctr_config(c);
	const struct param_tensor *t = ctr_tensor_find(c, "emb_item");
	const struct param_tensor *fm = ctr_tensor_find(c, "fm_w");
	int D = cfg->dim;
	double sp[CTR_MAX_DIM] = { 0 }, sn[CTR_MAX_DIM] = { 0 }, np = 0,
	    nn = 0, norm = 0, sgn = 1;

	for (size_t i = 0; i < n; i++) {
		const struct sample *s = &ds->s[idx[i]];
		uint32_t it = s->item < cfg->n_items ? s->item : cfg->n_items;
		const float *e = t->data + (size_t)it * t->shape[1];
		double *acc = s->label >= 0.5f ? sp : sn;

		for (int d = 0; d < D; d++)
			acc[d] += e[d];
		*(s->label >= 0.5f ? &np : &nn) += 1;
	}
	for (int d = 0; d < D; d++) {
		double v = (np > 0 ? sp[d] / np : 0) - (nn > 0 ? sn[d] / nn : 0);
		sp[d] = v;
		norm += v * v;
	}
	/* Field 0 is the user, 1 the item: their FM pair is the first. */
	if (fm != NULL && fm->data[0] < 0)
		sgn = -1;
	norm = sqrt(norm);
	for (int d = 0; d < D; d++)
		dir[d] = norm > 0 && rms > 0 ?
		    (float)(sgn * sp[d] / (norm * rms)) : 0;
}

void
rocchio_dir(const struct ctr *c, const struct dataset *ds,
    const uint32_t *idx, size_t n, float *dir)
{
	dir_of(c, ds, idx, n, item_rms(c), dir);
}

double
rocchio_net_pairs(const struct dataset *ds, const uint32_t *ho, size_t nh,
    const float *z, const float *z0)
{
	double net = 0;

	for (size_t i = 0; i < nh; i++) {
		if (ds->s[ho[i]].label < 0.5f)
			continue;
		for (size_t j = 0; j < nh; j++) {
			if (ds->s[ho[j]].label >= 0.5f)
				continue;
			net += (z[i] > z[j] ? 1 : z[i] < z[j] ? 0 : 0.5) -
			    (z0[i] > z0[j] ? 1 : z0[i] < z0[j] ? 0 : 0.5);
		}
	}
	return net;
}

int
rocchio_fcv(struct ctr *c, const struct dataset *ds, const uint32_t *idx,
    size_t n, uint32_t user, int K, int ng, const float *o,
    rocchio_prep_fn *prep, rocchio_cand_fn *cand, void *arg, double *sum)
{
	float *z0 = xcalloc(n + 1, sizeof(float));
	float *z = xcalloc(n + 1, sizeof(float));
	float r[ENC_MAX_OUT];
	size_t k = (size_t)(K < 2 ? 2 : K);
	int best = 0;

	if (n < k)
		k = n;
	for (size_t f = 1; f < k; f++) {
		size_t lo = n * f / k, hi = n * (f + 1) / k;
		if (hi <= lo || lo == 0)
			continue;
		if (!prep(arg, lo))
			continue;
		enc_rows_set(c, user, o);
		ctr_logits(c, ds, idx + lo, hi - lo, z0);
		for (int g = 1; g < ng; g++) {
			cand(arg, g, o, r);
			enc_rows_set(c, user, r);
			ctr_logits(c, ds, idx + lo, hi - lo, z);
			sum[g] += rocchio_net_pairs(ds, idx + lo, hi - lo, z, z0);
		}
	}
	for (int g = 1; g < ng; g++)
		if (sum[g] > sum[best])
			best = g;
	free(z0);
	free(z);
	return best;
}

/* Rocchio's candidates: o moved by gamma along the direction of idx[0..lo). */
struct roc_cv {
	const struct ctr	*c;
	const struct dataset	*ds;
	const uint32_t		*idx;
	double			 rms;
	int			 dim;
	float			 dir[CTR_MAX_DIM];
};

static int
roc_prep(void *arg, size_t lo)
{
	struct roc_cv *a = arg;

	dir_of(a->c, a->ds, a->idx, lo, a->rms, a->dir);
	return 1;
}

static void
roc_cand(void *arg, int g, const float *o, float *r)
{
	struct roc_cv *a = arg;

	memcpy(r, o, ENC_MAX_OUT * sizeof(float));
	for (int d = 0; d < a->dim; d++)
		r[d] += (float)rocchio_gamma[g] * a->dir[d];
}

double
rocchio_rows(struct ctr *c, const struct dataset *ds, const uint32_t *idx,
    size_t n, uint32_t user, int K, size_t min_n, float *rows, double *net)
{
	const struct ctr_config *cfg = ctr_config(c);
	float o[ENC_MAX_OUT];
	double sum[ROCCHIO_NG] = { 0 };
	struct roc_cv a = { c, ds, idx, item_rms(c), cfg->dim, { 0 } };
	int best = 0;

	enc_rows_get(c, cfg->n_users, o);	/* the unknown-user rows */
	if (n >= min_n && n >= 2)
		best = rocchio_fcv(c, ds, idx, n, user, K, ROCCHIO_NG, o,
		    roc_prep, roc_cand, &a, sum);
	memcpy(rows, o, sizeof(o));
	if (best > 0) {
		dir_of(c, ds, idx, n, a.rms, a.dir);
		for (int d = 0; d < cfg->dim; d++)
			rows[d] += (float)rocchio_gamma[best] * a.dir[d];
	}
	enc_rows_set(c, user, rows);
	if (net != NULL)
		*net = sum[best];
	return rocchio_gamma[best];
}
