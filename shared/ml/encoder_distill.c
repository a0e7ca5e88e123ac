/*
 * encoder_distill: the auxiliary encoder regressed onto the rows device
 * models learned (encoder_distill.h). A linear map on standardised
 * features, so the gradient is the residual times the features; it is
 * still checked against finite differences (tests/unit/test_encoder.c).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shared/ml/encoder_distill.h"
#include "shared/ml/kern.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

double
enc_reg_loss_grad(const struct enc *e, const float *x, const float *rows,
    const unsigned char *mask, float scale, float *gw, float *gc)
{
	float out[ENC_MAX_OUT], xs[ENC_MAX_IN];
	double l = 0;

	enc_apply(e, x, out);
	for (int i = 0; i < e->nin; i++)
		xs[i] = (x[i] - e->mu[i]) / e->sd[i];
	for (int o = 0; o < e->nout; o++) {
		float d, *w;

		if (mask != NULL && !mask[o])
			continue;
		d = out[o] - rows[o];
		l += 0.5 * (double)d * d;
		if (gw == NULL)
			continue;
		gc[o] += scale * d;
		w = gw + (size_t)o * (size_t)e->nin;
		for (int i = 0; i < e->nin; i++)
			w[i] += scale * d * xs[i];
	}
	return l;
}

/* mu, sd over the pairs' features; c the masked mean of their rows. */
static void
enc_init(struct enc *e, const struct enc_pairs *p)
{
	size_t nout = (size_t)e->nout;
	double *cnt = xcalloc(nout, sizeof(double));
	double *sum = xcalloc(nout, sizeof(double));

	enc_standardise(e, p->x, NULL, p->n);
	for (size_t j = 0; j < p->n; j++)
		for (size_t o = 0; o < nout; o++)
			if (p->mask == NULL || p->mask[j * nout + o]) {
				sum[o] += p->rows[j * nout + o];
				cnt[o]++;
			}
	for (size_t o = 0; o < nout; o++)
		e->c[o] = cnt[o] > 0 ? (float)(sum[o] / cnt[o]) : 0;
	free(cnt);
	free(sum);
}

/* The pairs' mean masked loss under e. */
static double
mean_loss(const struct enc *e, const struct enc_pairs *p)
{
	size_t nout = (size_t)e->nout;
	double l = 0;

	for (size_t j = 0; j < p->n; j++)
		l += enc_reg_loss_grad(e, p->x + j * (size_t)e->nin,
		    p->rows + j * nout, p->mask != NULL ? p->mask + j * nout :
		    NULL, 0, NULL, NULL);
	return l / (double)p->n;
}

int
enc_distill_fit(struct enc **out, const struct ctr *m,
    const struct enc_pairs *p, const struct enc_fit_opts *o,
    enc_val_fn val, void *arg, struct enc_distill_report *rep)
{
	struct enc *e = NULL, *best = NULL;
	struct enc_distill_report rp;
	size_t nw, np, nout;
	float *gw = NULL, *gm = NULL, *gv = NULL;
	uint32_t *perm = NULL;
	struct rng r;
	long t = 0;
	int rc = 0, bad = 0;

	*out = NULL;
	memset(&rp, 0, sizeof(rp));
	if (p->n == 0 || o->epochs < 1 || o->users_per_step < 1 ||
	    p->n > UINT32_MAX || (e = enc_new(m)) == NULL) {
		rc = -EINVAL;
		goto done;
	}
	nout = (size_t)e->nout;
	nw = (size_t)e->nin * nout;
	np = nw + nout;		/* W then c, one Adam state */
	gw = xcalloc(np, sizeof(float));
	gm = xcalloc(np, sizeof(float));
	gv = xcalloc(np, sizeof(float));
	perm = xcalloc(p->n, sizeof(uint32_t));
	for (size_t j = 0; j < p->n; j++)
		perm[j] = (uint32_t)j;
	enc_init(e, p);
	rp.n = p->n;
	rp.val0 = rp.val = val(arg, e);
	if (!isfinite(rp.val0)) {
		rc = -ERANGE;
		goto done;
	}
	best = enc_clone(e);
	rng_seed(&r, o->seed * 104729u + 17);
	for (int ep = 1; ep <= o->epochs; ep++) {
		double v;

		for (size_t i = p->n - 1; i > 0; i--) {
			uint32_t j = rng_below(&r, (uint32_t)(i + 1));
			uint32_t s = perm[i];
			perm[i] = perm[j];
			perm[j] = s;
		}
		for (size_t s = 0; s < p->n; s += (size_t)o->users_per_step) {
			size_t nb = p->n - s < (size_t)o->users_per_step ?
			    p->n - s : (size_t)o->users_per_step;

			if (o->stop != NULL && atomic_load(o->stop)) {
				rc = -ECANCELED;
				goto done;
			}
			memset(gw, 0, np * sizeof(float));
			for (size_t b = 0; b < nb; b++) {
				size_t j = perm[s + b];
				(void)enc_reg_loss_grad(e, p->x + j *
				    (size_t)e->nin, p->rows + j * nout,
				    p->mask != NULL ? p->mask + j * nout : NULL,
				    1.0f / (float)nb, gw, gw + nw);
			}
			t++;
			adam_update(e->w, gw, gm, gv, nw, o->lr, 0.9f, 0.999f,
			    1e-8f, o->wd, t);
			adam_update(e->c, gw + nw, gm + nw, gv + nw, nout,
			    o->lr, 0.9f, 0.999f, 1e-8f, 0, t);
		}
		rp.epochs = ep;
		v = val(arg, e);
		if (!isfinite(v)) {
			rc = -ERANGE;
			goto done;
		}
		if (v < rp.val) {
			rp.val = v;
			rp.best_epoch = ep;
			memcpy(best->w, e->w, nw * sizeof(float));
			memcpy(best->c, e->c, nout * sizeof(float));
			bad = 0;
		} else if (o->patience > 0 && ++bad >= o->patience)
			break;
	}
	rp.mse = mean_loss(best, p);
	*out = best;
	best = NULL;
done:
	if (rep != NULL)
		*rep = rp;
	enc_free(e);
	enc_free(best);
	free(gw);
	free(gm);
	free(gv);
	free(perm);
	return rc;
}
