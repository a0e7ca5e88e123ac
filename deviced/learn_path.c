/*
 * learn_path: one training path of the learning job (learn_path.h).
 */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "deviced/deviced.h"
#include "deviced/label_correct.h"
#include "deviced/learn_path.h"
#include "deviced/pairwise.h"
#include "shared/ml/ctr.h"
#include "shared/ml/kern.h"
#include "shared/data/dataset.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

/* The user's row of the per-user bias, or NULL if the model has none. */
float *
path_bias_row(const struct ctr *c, uint32_t user)
{
	const struct param_tensor *t = ctr_tensor_find(c, "patch_b");

	return t == NULL ? NULL : t->data +
	    ctr_config_user_row(ctr_config(c), user);
}

struct ctr *
path_w(struct learn_prep *p)
{
	if (p->w == NULL) {
		p->w = ctr_clone(p->in->model);
		ctr_track(p->w);	/* paths reset it by what they changed */
		p->w_dirty = 0;
	}
	return p->w;
}

struct ctr *
path_wv(struct learn_prep *p)
{
	if (p->wv == NULL)
		p->wv = ctr_view_of(p->in->model);
	return p->wv;
}

/*
 * Makes p->w the cloud model again, copying only what paths changed since
 * (p->w is tracked, ctr_track: the dense tensors and the rows the steps
 * wrote, not the item table a large catalogue makes most of the model).
 */
void
path_w_clean(struct learn_prep *p)
{
	if (p->w != NULL && p->w_dirty)
		(void)ctr_revert(p->w, p->in->model, p->w_dirty == 2 ?
		    CTR_SEL_ALL : CTR_SEL_METAPATCH_ONLY);
	p->w_dirty = 0;
}

void
path_wv_clean(struct learn_prep *p)
{
	if (p->wv != NULL && p->wv_dirty)
		(void)ctr_revert(p->wv, p->in->model, CTR_SEL_METAPATCH_ONLY);
	p->wv_dirty = 0;
}

/* The first layer's output of every work sample (MODE_TRUNK). */
void
path_need_trunk(struct learn_prep *p)
{
	size_t n = p->work.n, H = (size_t)ctr_trunk_dim(p->in->model);
	uint32_t *idx;

	if (p->trunk != NULL || n == 0)
		return;
	idx = xcalloc(n, sizeof(uint32_t));
	for (size_t i = 0; i < n; i++)
		idx[i] = (uint32_t)i;
	/* below the patches: no per-user table but emb_user, never trained
	   on wv, enters it */
	p->trunk = xcalloc(n * H, sizeof(float));
	(void)ctr_trunk(path_wv(p), &p->work, idx, n, p->trunk);
	free(idx);
}

/* The local samples' logits without the user's bias (MODE_BIAS). */
void
path_need_zb(struct learn_prep *p)
{
	float *b;
	uint32_t *idx;

	if (p->zb != NULL || p->n == 0)
		return;
	path_wv_clean(p);
	b = path_bias_row(path_wv(p), p->work.s[0].user);
	*b = 0;
	idx = xcalloc(p->n, sizeof(uint32_t));
	for (size_t i = 0; i < p->n; i++)
		idx[i] = (uint32_t)i;
	p->zb = xcalloc(p->n, sizeof(float));
	(void)ctr_logits(p->wv, &p->work, idx, p->n, p->zb);
	*b = *path_bias_row(p->in->model, p->work.s[0].user);
	free(idx);
}

/*
 * Training targets of one fit: hard labels everywhere, then label
 * correction of the local samples in tr (their labels only, so a held-out
 * fold never informs its own targets). The rate is aligned to r_g (the
 * paper) or to the cloud model's own mean prediction on those samples
 * (TGT_MODEL: the model is per-user, so its prior for this user is not
 * r_g). y and off are indexed like p->work.
 */
void
path_targets(const struct learn_prep *p, const struct method *m,
    const uint32_t *tr, size_t ntr, float *y, float *off)
{
	const struct deviced_conf *cf = p->in->cf;
	struct lc_opts lo = { (enum lc_mode)m->lc, p->in->global_ctr,
		(size_t)cf->lc_min_n, cf->lc_prior };
	float *ly, *lys, *lof;
	size_t nl = 0;
	double pm = 0;

	memcpy(y, p->y, p->work.n * sizeof(float));
	memset(off, 0, p->work.n * sizeof(float));
	if (m->lc == LC_NONE)
		return;
	ly = xcalloc(ntr + 1, sizeof(float));
	lys = xcalloc(ntr + 1, sizeof(float));
	lof = xcalloc(ntr + 1, sizeof(float));
	for (size_t i = 0; i < ntr; i++)
		if (tr[i] < p->n) {
			ly[nl++] = p->y[tr[i]];
			pm += p->p0[tr[i]];
		}
	if (m->tgt == TGT_MODEL && nl > 0)
		lo.r_g = pm / (double)nl;
	lc_apply(&lo, ly, nl, lys, lof);
	nl = 0;
	for (size_t i = 0; i < ntr; i++)
		if (tr[i] < p->n) {
			y[tr[i]] = lys[nl];
			off[tr[i]] = lof[nl++];
		}
	free(ly);
	free(lys);
	free(lof);
}

/* Logits of work[idx[0..n)] under the path's current parameters. */
void
path_logits(struct learn_prep *p, struct path *pa, const uint32_t *idx,
    size_t n, float *z)
{
	if (pa->mode == MODE_BIAS) {
		for (size_t i = 0; i < n; i++)
			z[i] = p->zb[idx[i]] + pa->bias;
		return;
	}
	if (pa->mode == MODE_FULL) {
		ctr_logits(pa->c, &p->work, idx, n, z);
		return;
	}
	for (size_t i = 0; i < n; i += 256) {
		int B = (int)(n - i < 256 ? n - i : 256);
		(void)ctr_forward_trunk(pa->c, &p->work, p->trunk, idx + i, B,
		    z + i);
	}
}

/*
 * Whether the path's logits on work[idx[0..n)] are all finite. A step
 * checks the loss before its update, so a last step that diverges leaves
 * a model predicting NaN or inf behind finite losses: such a path is
 * refused like one whose loss diverged.
 */
int
path_finite(struct learn_prep *p, struct path *pa, const uint32_t *idx,
    size_t n)
{
	float *z = xcalloc(n + 1, sizeof(float));
	int ok;

	path_logits(p, pa, idx, n, z);
	ok = kern_finite(z, n);
	free(z);
	return ok;
}

/*
 * One SGD step of the bias alone: ctr_forward, ctr_backward and ctr_step
 * restricted to it, in the same operations and order (the logits are the
 * bias-free ones plus the bias, so every sample's logit moves with it).
 */
static int
bias_step(struct learn_prep *p, struct path *pa, const uint32_t *idx, int B,
    const float *y, const float *w, const float *off, float lr, float *z,
    float *dz)
{
	float g = 0;
	double l;

	for (int b = 0; b < B; b++)
		z[b] = p->zb[idx[b]] + pa->bias;
	l = bce_logits_forward(NULL, z, y, w, off, B);
	if (!isfinite(l))
		return -ERANGE;
	memset(dz, 0, (size_t)B * sizeof(float));
	bce_logits_backward(dz, z, y, w, off, B);
	for (int b = 0; b < B; b++)
		g += dz[b];
	pa->bias -= lr * g;
	return 0;
}

/*
 * Plain SGD from the path's current parameters on work[tr[0..ntr)]: full
 * batch when ntr <= batch, else seeded minibatches cycling a shuffled
 * order. Plain SGD because a fresh Adam's first steps move every
 * parameter by about lr * sign(g), whatever the gradient says. at(k) runs
 * after steps[k] steps (ascending). Returns 0, -ECANCELED or -ERANGE.
 */
int
path_sgd(struct learn_prep *p, struct path *pa, const uint32_t *tr,
    size_t ntr, const float *y, const float *w, const float *off, double lr,
    const int *steps, int nck, uint64_t seed, path_ckpt_fn at, void *arg)
{
	const struct learn_in *in = p->in;
	struct ctr *c = pa->c;
	struct ctr_opt o;
	struct rng r;
	int batch = (int)in->cf->batch;
	uint32_t *perm = xcalloc(ntr + 1, sizeof(uint32_t));
	int B = ntr < (size_t)batch ? (int)ntr : batch, rc = 0, k = 0;
	float *yb = xcalloc((size_t)B + 1, sizeof(float));
	float *wb = xcalloc((size_t)B + 1, sizeof(float));
	float *ob = xcalloc((size_t)B + 1, sizeof(float));
	float *zb = xcalloc((size_t)B + 1, sizeof(float));
	float *dz = xcalloc((size_t)B + 1, sizeof(float));
	unsigned char *use = xcalloc((size_t)B + 1, 1);
	size_t pos = 0;
	double l;

	ctr_opt_default(&o, CTR_OPT_SGD, (float)lr);
	if (pa->c == p->wv && pa->mode != MODE_BIAS)
		p->wv_dirty = 1;
	else if (pa->mode == MODE_FULL)
		p->w_dirty = 2;
	else if (pa->mode == MODE_TRUNK && p->w_dirty == 0)
		p->w_dirty = 1;		/* only m and bias tables move */
	memcpy(perm, tr, ntr * sizeof(uint32_t));
	rng_seed(&r, seed);
	for (int s = 1; nck > 0 && s <= steps[nck - 1]; s++) {
		if (in->stop != NULL && atomic_load(in->stop)) {
			rc = -ECANCELED;
			break;
		}
		if ((size_t)B < ntr && pos + (size_t)B > ntr)
			pos = 0;
		if ((size_t)B < ntr && pos == 0)
			for (size_t i = ntr - 1; i > 0; i--) {
				uint32_t j = rng_below(&r, (uint32_t)(i + 1));
				uint32_t t = perm[i];
				perm[i] = perm[j];
				perm[j] = t;
			}
		for (int b = 0; b < B; b++) {
			uint32_t i = perm[pos + (size_t)b];
			yb[b] = y[i];
			wb[b] = w[i];
			ob[b] = off[i];
		}
		if (pa->mode == MODE_BIAS) {
			if ((rc = bias_step(p, pa, perm + pos, B, yb, wb, ob,
			    o.lr, zb, dz)) != 0)
				break;
		} else {
			ctr_zero_grad(c);
			rc = pa->mode == MODE_TRUNK ? ctr_forward_trunk(c,
			    &p->work, p->trunk, perm + pos, B, zb) :
			    ctr_forward(c, &p->work, perm + pos, B, zb);
			if (rc != 0)
				break;
			if (pa->pair > 0) {
				/*
				 * The pairwise gradient over the user's own
				 * samples enters through the targets: BCE's
				 * dz is w (p - y) / B.
				 */
				for (int b = 0; b < B; b++)
					use[b] = perm[pos + (size_t)b] < p->n;
				(void)pairwise_loss(zb, yb, use, B, dz);
				for (int b = 0; b < B; b++)
					if (wb[b] > 0)
						yb[b] -= pa->pair * (float)B *
						    dz[b] / wb[b];
			}
			if ((rc = ctr_backward(c, pa->sel, yb, wb, ob, &l)) != 0)
				break;
			if (!isfinite(l)) {
				rc = -ERANGE;
				break;
			}
			if ((rc = ctr_step(c, pa->sel, &o)) != 0)
				break;
		}
		if ((size_t)B < ntr)
			pos += (size_t)B;
		while (k < nck && steps[k] == s && at != NULL)
			at(arg, pa, k++);
	}
	if (pa->mode != MODE_BIAS)
		ctr_zero_grad(c);
	free(perm);
	free(yb);
	free(wb);
	free(ob);
	free(zb);
	free(dz);
	free(use);
	return rc;
}

/* Resets the path to the cloud model's parameters. */
void
path_reset(struct learn_prep *p, struct path *pa)
{
	if (pa->mode == MODE_BIAS)
		pa->bias = *path_bias_row(p->in->model, p->work.s[0].user);
	else
		(void)ctr_revert(pa->c, p->in->model, pa->mode == MODE_TRUNK ?
		    pa->sel : CTR_SEL_ALL);
}

