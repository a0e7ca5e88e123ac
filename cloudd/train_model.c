/*
 * train_model: cloudd's default model shape and its learning-rate grid
 * (train_model.h).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloudd/train_model.h"
#include "shared/ml/calib.h"
#include "shared/ml/item_prior.h"
#include "shared/ml/metrics.h"
#include "shared/numlist.h"
#include "shared/xmalloc.h"

void
train_model_defaults(struct ctr_config *cfg, const struct dataset *pool)
{
	memset(cfg, 0, sizeof(*cfg));
	if (pool != NULL) {
		cfg->n_users = pool->n_users;
		cfg->n_items = pool->n_items;
		cfg->n_genres = pool->n_genres;
		cfg->n_side = pool->n_side;
		memcpy(cfg->side_card, pool->side_card,
		    sizeof(cfg->side_card));
	}
	cfg->dim = TRAIN_DIM;
	cfg->hist_k = TRAIN_HIST_K;
	cfg->hidden[cfg->n_hidden++] = TRAIN_HIDDEN1;
	if (TRAIN_HIDDEN2 > 0)
		cfg->hidden[cfg->n_hidden++] = TRAIN_HIDDEN2;
	cfg->patch_rank = TRAIN_PATCH_RANK;
	cfg->interaction = TRAIN_INTERACTION;
	cfg->attention = TRAIN_ATTENTION;
}

int
train_lr_grid_parse(const char *s, double *lr, int *n, char *err,
    size_t errlen)
{
	const char *p = s;
	char *end;

	*n = 0;
	while (*p != '\0') {
		double v;

		if (*n == TRAIN_LR_MAX) {
			snprintf(err, errlen, "more than %d learning rates",
			    TRAIN_LR_MAX);
			return -EINVAL;
		}
		errno = 0;
		v = strtod(p, &end);
		if (end == p || errno != 0 || !(v > 0 && v <= 10) ||
		    (*end != ',' && *end != '\0')) {
			snprintf(err, errlen, "bad learning rate at '%s' "
			    "(want numbers in (0, 10], comma-separated)", p);
			return -EINVAL;
		}
		lr[(*n)++] = v;
		p = *end == ',' ? end + 1 : end;
		if (*end == ',' && *p == '\0') {
			snprintf(err, errlen, "trailing comma");
			return -EINVAL;
		}
	}
	return 0;
}

static double
val_gauc(struct ctr *m, const struct dataset *ds, const uint32_t *vai,
    size_t nva)
{
	float *p = xcalloc(nva + 1, sizeof(float));
	float *y = xcalloc(nva + 1, sizeof(float));
	uint32_t *u = xcalloc(nva + 1, sizeof(uint32_t));
	double g = NAN;

	if (ctr_predict(m, ds, vai, nva, p) == 0) {
		for (size_t i = 0; i < nva; i++) {
			y[i] = ds->s[vai[i]].label;
			u[i] = ds->s[vai[i]].user < ds->n_users ?
			    ds->s[vai[i]].user : 0;
		}
		g = metrics_gauc(p, y, u, nva, ds->n_users ? ds->n_users : 1,
		    NULL, NULL, NULL);
	}
	free(p);
	free(y);
	free(u);
	return g;
}

int
train_model_fit(struct ctr **out, const struct ctr_config *cfg,
    uint64_t seed, const struct dataset *ds, const uint32_t *tri,
    size_t ntr, const uint32_t *vai, size_t nva,
    const struct ctr_train_opts *o, const double *lr, int n_lr,
    struct train_fit *res)
{
	struct train_fit r;
	struct ctr *best = NULL, *m = NULL;
	struct ctr_train_opts co;
	int rc = 0;

	*out = NULL;
	memset(&r, 0, sizeof(r));
	if (n_lr < 1 || n_lr > TRAIN_LR_MAX)
		return -EINVAL;
	for (int k = 0; k < n_lr; k++) {
		if ((rc = ctr_new(&m, cfg, seed)) != 0)
			goto fail;
		co = *o;
		co.opt.lr = (float)lr[k];
		if ((rc = ctr_train(m, ds, tri, ntr, vai, nva, &co,
		    &r.st[k])) != 0)
			goto fail;
		r.lr[k] = lr[k];
		r.val_loss[k] = r.st[k].val_loss;
		r.val_gauc[k] = nva > 0 ? val_gauc(m, ds, vai, nva) : NAN;
		r.n = k + 1;
		/* NAN never wins, so the first rate stays without a GAUC */
		if (best == NULL || r.val_gauc[k] > r.val_gauc[r.chosen]) {
			ctr_free(best);
			best = m;
			r.chosen = k;
		} else
			ctr_free(m);
		m = NULL;
	}
	*out = best;
	if (res != NULL)
		*res = r;
	return 0;
fail:
	ctr_free(m);
	ctr_free(best);
	if (res != NULL)
		*res = r;
	return rc;
}

int
train_model_prior(struct ctr *m, const struct dataset *ds,
    const uint32_t *tri, size_t ntr, const uint32_t *vai, size_t nva,
    const double *pw, int n_pw, double *w, double *g0, double *g)
{
	int rc, have = 0;

	*w = 0;
	if ((rc = ctr_item_prior_fit(m, ds, tri, ntr, ITEM_PRIOR_K, 0)) != 0)
		return rc;
	*g0 = *g = nva > 0 ? val_gauc(m, ds, vai, nva) : NAN;
	for (int i = 0; i < n_pw && nva > 0; i++) {
		double gi = *g0;

		if (pw[i] != 0) {
			if ((rc = ctr_item_prior_fit(m, ds, tri, ntr,
			    ITEM_PRIOR_K, pw[i])) != 0)
				return rc;
			gi = val_gauc(m, ds, vai, nva);
		}
		if (!have || gi > *g) {	/* ties: the earlier weight */
			*g = gi;
			*w = pw[i];
			have = 1;
		}
	}
	return ctr_item_prior_fit(m, ds, tri, ntr, ITEM_PRIOR_K, *w);
}

/* The affine map by validation logloss, folded into m (train_model_finish). */
static int
recalibrate(struct ctr *m, const struct dataset *ds, const uint32_t *vai,
    size_t nva, double *a, double *b)
{
	float *z = xcalloc(nva + 1, sizeof(float));
	float *y = xcalloc(nva + 1, sizeof(float));
	double t = 0;
	int rc;

	*a = 1;
	*b = 0;
	if ((rc = ctr_logits(m, ds, vai, nva, z)) == 0 && nva > 0) {
		for (size_t i = 0; i < nva; i++)
			y[i] = ds->s[vai[i]].label;
		/* a fit that fails leaves t = b = 0: the identity */
		if (calib_fit(z, y, nva, CALIB_PRIOR, &t, b) == 0) {
			*a = 1 + t;
			rc = ctr_logit_affine(m, *a, *b);
		}
	}
	free(z);
	free(y);
	return rc;
}

int
train_model_finish(struct ctr **m, const struct dataset *ds,
    const uint32_t *tri, size_t ntr, const uint32_t *vai, size_t nva,
    const double *pw, int n_pw, struct train_prior *res)
{
	struct train_prior r = { .a = 1 };
	struct ctr *m2;
	int rc;

	if ((rc = train_model_prior(*m, ds, tri, ntr, vai, nva, pw, n_pw,
	    &r.w, &r.g0, &r.g)) != 0)
		goto out;
	if (r.w != 0) {
		rc = recalibrate(*m, ds, vai, nva, &r.a, &r.b);
		goto out;
	}
	if ((m2 = ctr_item_prior_drop(*m)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	ctr_free(*m);
	*m = m2;
out:
	if (res != NULL)
		*res = r;
	return rc;
}

int
train_model_finish_default(struct ctr **m, const struct dataset *ds,
    const uint32_t *tri, size_t ntr, const uint32_t *vai, size_t nva,
    struct train_prior *res)
{
	double pw[TRAIN_PRIOR_WMAX];
	char err[128];
	int n;

	if (numlist_parse(TRAIN_PRIOR_WEIGHTS, pw, TRAIN_PRIOR_WMAX, 0, 100,
	    &n, err, sizeof(err)) != 0)
		return -EINVAL;
	return train_model_finish(m, ds, tri, ntr, vai, nva, pw, n, res);
}
