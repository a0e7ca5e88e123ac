/*
 * encoder_dev: personal rows for cold users from the shipped encoder or the
 * unknown-user rows (encoder_dev.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "deviced/deviced.h"
#include "deviced/encoder_dev.h"
#include "deviced/knnrows.h"
#include "deviced/rocchio.h"
#include "shared/ml/ctr.h"
#include "shared/ml/encoder.h"
#include "shared/ml/kern.h"
#include "shared/xmalloc.h"

static const struct {
	const char	*name;
	int		 start;
	const char	*method;	/* learn.c's methods[] */
} rows[] = {
	{ "oov", ENCDEV_OOV, "cloud" },
	{ "enc", ENCDEV_ENC, "cloud" },
	{ "enc-b", ENCDEV_ENC_B, "cloud" },
	{ "enc-ub", ENCDEV_ENC_UB, "cloud" },
	{ "enc-cv", ENCDEV_CV, "cloud" },
	{ "oov-mp", ENCDEV_OOV, "mp-fb" },
	{ "enc-mp", ENCDEV_ENC, "mp-fb" },
	{ "enc-cv-b", ENCDEV_CV, "bias" },
	{ "enc-cv-mp", ENCDEV_CV, "mp-fb" },
	{ "enc-cv-ft", ENCDEV_CV, "ft-fb" },
	/* cold users: fine-tuning with the pairwise loss from a start */
	{ "oov-ft-lcoffm-pair", ENCDEV_OOV, "ft-lcoffm-pair" },
	{ "enc-cv-ft-lcoffm-pair", ENCDEV_CV, "ft-lcoffm-pair" },
	{ "enc-ub-ft-lcoffm-pair", ENCDEV_ENC_UB, "ft-lcoffm-pair" },
	{ "roc", ENCDEV_ROC, "cloud" },
	{ "roc-b", ENCDEV_ROC, "bias" },
	{ "roc-ft-lcoffm-pair", ENCDEV_ROC, "ft-lcoffm-pair" },
	{ "knn", ENCDEV_KNN, "cloud" },
	{ "knn-b", ENCDEV_KNN, "bias" },
	{ "knn-ft-lcoffm-pair", ENCDEV_KNN, "ft-lcoffm-pair" },
};

/*
 * Personal rows r of start (OOV, ENC, ENC_B, ENC_UB) for the user of the
 * local samples idx[0..n) under model c; -1 when start needs an encoder
 * that does not fit c.
 */
static int
start_rows(const struct device *d, const struct ctr *c, int start,
    const uint32_t *idx, size_t n, float *r)
{
	const struct ctr_config *cfg = ctr_config(c);
	float x[ENC_MAX_IN], o[ENC_MAX_OUT];
	int nout;

	enc_rows_get(c, cfg->n_users, o);	/* the unknown-user rows */
	if (start == ENCDEV_OOV) {
		memcpy(r, o, sizeof(o));
		return 0;
	}
	if (d->enc == NULL || enc_check(d->enc, c) != 0 ||
	    (start != ENCDEV_ENC && cfg->patch_rank == 0))
		return -1;
	nout = d->enc->nout;
	enc_features(c, &d->local, idx, n, x);
	enc_apply(d->enc, x, r);
	if (start == ENCDEV_ENC)
		return 0;
	/* ENC_B: only the bias from the encoder; ENC_UB: user row and bias */
	if (start == ENCDEV_ENC_UB)
		memcpy(o, r, (size_t)cfg->dim * sizeof(float));
	o[nout - 1] = r[nout - 1];
	memcpy(r, o, (size_t)nout * sizeof(float));
	return 0;
}

/*
 * ENCDEV_CV's choice among the unknown-user rows, the encoder's user row
 * and bias, and all the encoder's rows, by forward-chaining
 * cross-validation over the local samples (time order, learn.cv-folds
 * blocks: block f is scored with rows from the features of blocks before
 * it). A candidate replaces the unknown-user rows only with
 * learn.guard-min-n local samples, a mean logloss gain that stays positive
 * after shrinking by learn.guard-z standard errors and (learn.guard-rank)
 * more correctly ordered held-out pairs than the unknown-user rows: the
 * rules of learn.c's guard.
 */
static int
cv_start(const struct device *d, struct ctr *c, const uint32_t *idx, size_t n)
{
	static const int cand[3] = { ENCDEV_OOV, ENCDEV_ENC_UB, ENCDEV_ENC };
	const struct deviced_conf *cf = &d->dd->cf;
	size_t K = n < (size_t)cf->cv_folds ? n : (size_t)cf->cv_folds, nh = 0;
	float r[ENC_MAX_OUT], *z[3];
	double sum[3] = { 0 }, sq[3] = { 0 }, rank[3] = { 0 }, bestg = 0;
	int best = ENCDEV_OOV;

	if (n < (size_t)cf->guard_min_n || K < 2 || d->enc == NULL)
		return ENCDEV_OOV;
	for (int k = 0; k < 3; k++)
		z[k] = xcalloc(n + 1, sizeof(float));
	for (size_t f = 1; f < K; f++) {
		size_t lo = n * f / K, hi = n * (f + 1) / K;
		int ok = 1;
		if (hi <= lo || lo == 0)
			continue;
		for (int k = 0; k < 3 && ok; k++) {
			if (start_rows(d, c, cand[k], idx, lo, r) != 0)
				ok = 0;
			else {
				enc_rows_set(c, d->user, r);
				ctr_logits(c, &d->local, idx + lo, hi - lo, z[k]);
			}
		}
		if (!ok)
			break;
		for (size_t i = 0; i < hi - lo; i++) {
			double y = d->local.s[idx[lo + i]].label >= 0.5f;
			double l0 = bce_logit(z[0][i], y);
			for (int k = 1; k < 3; k++) {
				double g = l0 - bce_logit(z[k][i], y);
				sum[k] += g;
				sq[k] += g * g;
			}
			if (y < 0.5)
				continue;
			for (size_t j = 0; j < hi - lo; j++) {
				if (d->local.s[idx[lo + j]].label >= 0.5f)
					continue;
				double o0 = z[0][i] > z[0][j] ? 1 :
				    z[0][i] < z[0][j] ? 0 : 0.5;
				for (int k = 1; k < 3; k++)
					rank[k] += (z[k][i] > z[k][j] ? 1 :
					    z[k][i] < z[k][j] ? 0 : 0.5) - o0;
			}
		}
		nh += hi - lo;
	}
	for (int k = 1; k < 3 && nh > 0; k++) {
		double mu = sum[k] / (double)nh, var = sq[k] / (double)nh -
		    mu * mu, se = sqrt((var > 0 ? var : 0) / (double)nh);
		if (mu - cf->guard_z * se > 0 && mu > bestg &&
		    (!cf->guard_rank || rank[k] > 0)) {
			bestg = mu;
			best = cand[k];
		}
	}
	for (int k = 0; k < 3; k++)
		free(z[k]);
	return best;
}

struct ctr *
encoder_dev_start(const struct device *d, int start, int *applied)
{
	struct ctr *c = ctr_clone(d->model);
	float r[ENC_MAX_OUT];
	uint32_t *idx = xcalloc(d->local.n + 1, sizeof(uint32_t));
	int ok = start != ENCDEV_CLOUD && enc_rows_untrained(c, d->user);

	for (size_t i = 0; i < d->local.n; i++)
		idx[i] = (uint32_t)i;
	if (ok && start == ENCDEV_CV)
		start = cv_start(d, c, idx, d->local.n);
	if (ok && start == ENCDEV_ROC)	/* no encoder needed */
		(void)rocchio_rows(c, &d->local, idx, d->local.n, d->user,
		    (int)d->dd->cf.cv_folds, (size_t)d->dd->cf.guard_min_n, r,
		    NULL);
	else if (ok && start == ENCDEV_KNN)
		(void)knnrows_rows(c, &d->local, idx, d->local.n, d->user,
		    (int)d->dd->cf.cv_folds, (size_t)d->dd->cf.guard_min_n, r,
		    NULL);
	else if (ok && start_rows(d, c, start, idx, d->local.n, r) != 0)
		ok = 0;
	if (ok)
		enc_rows_set(c, d->user, r);
	else	/* cv_start may have left other rows in place */
		ctr_copy_params(c, d->model);
	if (applied != NULL)
		*applied = ok ? start : ENCDEV_CLOUD;
	free(idx);
	return c;
}

const char *
encoder_dev_view(const struct device *d, const char *name,
    struct device *dv, int *applied)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (strcmp(rows[i].name, name) == 0) {
			*dv = *d;
			dv->model = encoder_dev_start(d, rows[i].start,
			    applied);
			return rows[i].method;
		}
	return NULL;
}

void
encoder_dev_view_fini(struct device *dv)
{
	ctr_free(dv->model);
	dv->model = NULL;
}
