/*
 * encoder: DCCL's auxiliary encoder (see encoder.h for the map and the
 * API). Only the CTR model's public API is used: personal rows are read
 * and written through ctr_tensor_find, and the gradient through the frozen
 * model is ctr_backward's gradient of those rows, chained through the
 * linear layer by hand (finite-difference check: tests/unit/test_encoder.c).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shared/data/dataset.h"
#include "shared/ml/encoder.h"
#include "shared/ml/kern.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

int
enc_shape(const struct ctr *m, int *nin, int *nout)
{
	const struct ctr_config *c = ctr_config(m);

	if (c->dim < 1 || c->dim > CTR_MAX_DIM || c->patch_rank < 0 ||
	    c->patch_rank > CTR_MAX_RANK || c->n_hidden > CTR_MAX_LAYERS)
		return -EINVAL;
	*nin = 2 * c->dim + 2;
	*nout = c->dim + (c->patch_rank > 0 ? c->n_hidden * c->patch_rank +
	    1 : 0);
	return 0;
}

struct enc *
enc_new(const struct ctr *m)
{
	const struct ctr_config *c = ctr_config(m);
	struct enc *e;
	int nin, nout;

	if (enc_shape(m, &nin, &nout) != 0)
		return NULL;
	e = xcalloc(1, sizeof(*e));
	e->dim = c->dim;
	e->n_layers = c->patch_rank > 0 ? c->n_hidden : 0;
	e->rank = c->patch_rank;
	e->nin = nin;
	e->nout = nout;
	e->mu = xcalloc((size_t)nin, sizeof(float));
	e->sd = xcalloc((size_t)nin, sizeof(float));
	e->w = xcalloc((size_t)nin * (size_t)nout, sizeof(float));
	e->c = xcalloc((size_t)nout, sizeof(float));
	for (int i = 0; i < nin; i++)
		e->sd[i] = 1;
	return e;
}

struct enc *
enc_clone(const struct enc *e)
{
	struct enc *d = xcalloc(1, sizeof(*d));

	*d = *e;
	d->mu = xcalloc((size_t)e->nin, sizeof(float));
	d->sd = xcalloc((size_t)e->nin, sizeof(float));
	d->w = xcalloc((size_t)e->nin * (size_t)e->nout, sizeof(float));
	d->c = xcalloc((size_t)e->nout, sizeof(float));
	memcpy(d->mu, e->mu, (size_t)e->nin * sizeof(float));
	memcpy(d->sd, e->sd, (size_t)e->nin * sizeof(float));
	memcpy(d->w, e->w, (size_t)e->nin * (size_t)e->nout * sizeof(float));
	memcpy(d->c, e->c, (size_t)e->nout * sizeof(float));
	return d;
}

void
enc_free(struct enc *e)
{
	if (e == NULL)
		return;
	free(e->mu);
	free(e->sd);
	free(e->w);
	free(e->c);
	free(e);
}

int
enc_check(const struct enc *e, const struct ctr *m)
{
	int nin, nout;

	if (enc_shape(m, &nin, &nout) != 0 || e->nin != nin ||
	    e->nout != nout || e->dim != ctr_config(m)->dim)
		return -EINVAL;
	return 0;
}

/* ---- personal rows ------------------------------------------------------- */

/*
 * Visits the personal rows of user: fn(arg, pointer to the row's data or
 * gradient, its length, offset in the rows vector).
 */
static void
rows_visit(const struct ctr *m, uint32_t user, int grad,
    void (*fn)(void *, float *, int, int), void *arg)
{
	const struct ctr_config *c = ctr_config(m);
	uint32_t r = ctr_config_user_row(c, user);
	const struct param_tensor *t = ctr_tensor_find(m, "emb_user");
	char nm[24];
	int off = 0;

	fn(arg, (grad ? t->grad : t->data) + (size_t)r * t->shape[1],
	    c->dim, off);
	off += c->dim;
	if (c->patch_rank == 0)
		return;
	for (int l = 0; l < c->n_hidden; l++) {
		snprintf(nm, sizeof(nm), "patch_m%d", l);
		t = ctr_tensor_find(m, nm);
		fn(arg, (grad ? t->grad : t->data) + (size_t)r * t->shape[1],
		    c->patch_rank, off);
		off += c->patch_rank;
	}
	t = ctr_tensor_find(m, "patch_b");
	fn(arg, (grad ? t->grad : t->data) + r, 1, off);
}

static void
v_get(void *arg, float *p, int n, int off)
{
	memcpy((float *)arg + off, p, (size_t)n * sizeof(float));
}

static void
v_set(void *arg, float *p, int n, int off)
{
	memcpy(p, (const float *)arg + off, (size_t)n * sizeof(float));
}

void
enc_rows_get(const struct ctr *m, uint32_t user, float *out)
{
	rows_visit(m, user, 0, v_get, out);
}

void
enc_rows_set(struct ctr *m, uint32_t user, const float *in)
{
	rows_visit(m, user, 0, v_set, (void *)(uintptr_t)in);
}

void
enc_rows_grad(const struct ctr *m, uint32_t user, float *out)
{
	rows_visit(m, user, 1, v_get, out);
}

int
enc_rows_untrained(const struct ctr *m, uint32_t user)
{
	const struct ctr_config *c = ctr_config(m);
	float rows[ENC_MAX_OUT];
	int nin, nout;

	if (c->patch_rank == 0 || enc_shape(m, &nin, &nout) != 0)
		return 0;
	enc_rows_get(m, user, rows);
	for (int i = c->dim; i < nout; i++)
		if (rows[i] != 0)
			return 0;
	return 1;
}

/* ---- features and the map ------------------------------------------------ */

void
enc_features(const struct ctr *m, const struct dataset *ds,
    const uint32_t *idx, size_t n, float *x)
{
	const struct ctr_config *c = ctr_config(m);
	const struct param_tensor *t = ctr_tensor_find(m, "emb_item");
	int D = c->dim;
	double sp[CTR_MAX_DIM], sn[CTR_MAX_DIM], np = 0, nn = 0, r;

	memset(sp, 0, sizeof(sp));
	memset(sn, 0, sizeof(sn));
	for (size_t i = 0; i < n; i++) {
		const struct sample *s = &ds->s[idx[i]];
		uint32_t it = s->item < c->n_items ? s->item : c->n_items;
		const float *e = t->data + (size_t)it * t->shape[1];
		double *acc = s->label >= 0.5f ? sp : sn;

		for (int d = 0; d < D; d++)
			acc[d] += e[d];
		if (s->label >= 0.5f)
			np++;
		else
			nn++;
	}
	for (int d = 0; d < D; d++) {
		x[d] = np > 0 ? (float)(sp[d] / np) : 0;
		x[D + d] = nn > 0 ? (float)(sn[d] / nn) : 0;
	}
	r = (np + 1) / ((double)n + 2);
	x[2 * D] = (float)log(r / (1 - r));
	x[2 * D + 1] = (float)log1p((double)n);
}

void
enc_standardise(struct enc *e, const float *x, const uint32_t *idx, size_t n)
{
	size_t nin = (size_t)e->nin;

	for (size_t j = 0; j < n; j++) {
		const float *xj = x + (idx != NULL ? idx[j] : j) * nin;
		for (size_t i = 0; i < nin; i++)
			e->mu[i] += xj[i] / (float)n;
	}
	for (size_t i = 0; i < nin; i++) {
		double s = 0;
		for (size_t j = 0; j < n; j++) {
			double d = x[(idx != NULL ? idx[j] : j) * nin + i] -
			    e->mu[i];
			s += d * d;
		}
		s = sqrt(s / (double)n);
		e->sd[i] = s > 1e-6 ? (float)s : 1;
	}
}

void
enc_apply(const struct enc *e, const float *x, float *rows)
{
	for (int o = 0; o < e->nout; o++) {
		const float *w = e->w + (size_t)o * (size_t)e->nin;
		double z = e->c[o];
		for (int i = 0; i < e->nin; i++)
			z += (double)w[i] * (x[i] - e->mu[i]) / e->sd[i];
		rows[o] = (float)z;
	}
}

int
enc_loss_grad(const struct enc *e, struct ctr *m, uint32_t user,
    const float *x, const struct dataset *ds, const uint32_t *idx, int B,
    float scale, float *gw, float *gc, double *loss)
{
	float rows[ENC_MAX_OUT], g[ENC_MAX_OUT], xs[ENC_MAX_IN];
	double l;
	int rc;

	if (B < 1)
		return -EINVAL;
	for (int i = 0; i < B; i++)
		if (idx[i] >= ds->n || ds->s[idx[i]].user != user)
			return -EINVAL;
	enc_apply(e, x, rows);
	enc_rows_set(m, user, rows);
	ctr_zero_grad(m);
	if ((rc = ctr_forward(m, ds, idx, B, NULL)) != 0 ||
	    (rc = ctr_backward(m, CTR_SEL_ALL, NULL, NULL, NULL, &l)) != 0)
		return rc;
	enc_rows_grad(m, user, g);
	ctr_zero_grad(m);
	for (int i = 0; i < e->nin; i++)
		xs[i] = (x[i] - e->mu[i]) / e->sd[i];
	for (int o = 0; o < e->nout; o++) {
		float go = scale * g[o];
		float *w = gw + (size_t)o * (size_t)e->nin;
		gc[o] += go;
		for (int i = 0; i < e->nin; i++)
			w[i] += go * xs[i];
	}
	if (loss != NULL)
		*loss = l;
	return 0;
}

/* ---- training ------------------------------------------------------------ */

void
enc_fit_opts_default(struct enc_fit_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->lr = 3e-3f;
	o->wd = 1e-4f;
	o->epochs = 30;
	o->patience = 3;
	o->users_per_step = 8;
	o->max_targets = 256;
	o->seed = 1;
}

const char *
enc_mode_name(enum enc_mode mode)
{
	switch (mode) {
	case ENC_MODE_CONST: return "const";
	case ENC_MODE_FIT: return "fit";
	case ENC_MODE_REG: return "reg";
	}
	return "?";
}

/* Samples grouped by user, each group in time order. */
struct groups {
	uint32_t	 n_users;
	size_t		*off;		/* n_users + 1 */
	uint32_t	*v;
};

static void
groups_build(struct groups *g, const struct dataset *ds, uint32_t n_users,
    const uint32_t *idx, size_t n)
{
	size_t *pos;

	g->n_users = n_users;
	g->off = xcalloc((size_t)n_users + 2, sizeof(size_t));
	g->v = xcalloc(n + 1, sizeof(uint32_t));
	for (size_t i = 0; i < n; i++)
		if (ds->s[idx[i]].user < n_users)
			g->off[ds->s[idx[i]].user + 1]++;
	for (uint32_t u = 0; u < n_users; u++)
		g->off[u + 1] += g->off[u];
	pos = xcalloc((size_t)n_users + 1, sizeof(size_t));
	memcpy(pos, g->off, ((size_t)n_users + 1) * sizeof(size_t));
	for (size_t i = 0; i < n; i++) {
		uint32_t u = ds->s[idx[i]].user;
		if (u < n_users)
			g->v[pos[u]++] = idx[i];
	}
	for (uint32_t u = 0; u < n_users; u++)
		dataset_sort_by_time(ds, g->v + g->off[u],
		    g->off[u + 1] - g->off[u]);
	free(pos);
}

static void
groups_fini(struct groups *g)
{
	free(g->off);
	free(g->v);
}

/* Everything one fit shares. */
struct fit {
	struct ctr		*m;	/* scratch clone of the model */
	const struct dataset	*ds;
	struct groups		 tr, va;
	uint32_t		*users;	/* training users (>= 2 samples) */
	size_t			 n_users;
	unsigned char		*held;	/* n_users_model: validation users */
	float			*xfull;	/* n_users_model x nin: all train */
	float			*rows;	/* n_users_model x nout: learned */
	const struct enc_fit_opts *o;
	float			*z;	/* scratch logits */
	size_t			 zcap;
};

/*
 * Validation logloss with e's rows (NULL: the learned rows) for every
 * user with training and validation samples.
 */
static double
val_loss(struct fit *f, const struct enc *e, size_t *nval, size_t *nusers)
{
	float rows[ENC_MAX_OUT];
	double sum = 0;
	size_t n = 0, nu = 0;
	int nin = e != NULL ? e->nin : 0;

	for (uint32_t u = 0; u < f->va.n_users; u++) {
		size_t a = f->va.off[u], k = f->va.off[u + 1] - a;
		if (k == 0 || f->tr.off[u + 1] == f->tr.off[u] || !f->held[u])
			continue;
		/* Without an encoder the scratch model holds the learned rows. */
		if (e != NULL) {
			enc_apply(e, f->xfull + (size_t)u * (size_t)nin, rows);
			enc_rows_set(f->m, u, rows);
		}
		ctr_logits(f->m, f->ds, f->va.v + a, k, f->z);
		for (size_t i = 0; i < k; i++)
			sum += bce_logit(f->z[i],
			    f->ds->s[f->va.v[a + i]].label);
		n += k;
		nu++;
		if (e != NULL)	/* back to the learned rows */
			enc_rows_set(f->m, u, f->rows + (size_t)u *
			    (size_t)e->nout);
	}
	if (nval != NULL)
		*nval = n;
	if (nusers != NULL)
		*nusers = nu;
	return n > 0 ? sum / (double)n : NAN;
}

struct adam {
	float	*m, *v;
	size_t	 n;
	long	 t;
};

static void
adam_step(struct adam *a, float *p, const float *g, size_t n, size_t off,
    float lr, float wd)
{
	const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
	float c1 = 1 - powf(b1, (float)a->t), c2 = 1 - powf(b2, (float)a->t);

	for (size_t i = 0; i < n; i++) {
		float *mm = &a->m[off + i], *vv = &a->v[off + i];
		*mm = b1 * *mm + (1 - b1) * g[i];
		*vv = b2 * *vv + (1 - b2) * g[i] * g[i];
		p[i] -= lr * ((*mm / c1) / (sqrtf(*vv / c2) + eps) + wd * p[i]);
	}
}

/*
 * Trains e in one mode, keeping its epoch of lowest validation logloss
 * (the initial parameters count as epoch 0). Returns 0, -ECANCELED or
 * -ERANGE; *best_val and *best_ep out.
 */
static int
train_mode(struct fit *f, struct enc *e, enum enc_mode mode, double *best_val,
    int *best_ep)
{
	const struct enc_fit_opts *o = f->o;
	size_t nw = (size_t)e->nin * (size_t)e->nout, np = nw + (size_t)e->nout;
	float *gw = xcalloc(nw, sizeof(float)), *gc = xcalloc((size_t)e->nout,
	    sizeof(float));
	float x[ENC_MAX_IN], rows[ENC_MAX_OUT];
	uint32_t *tg = xcalloc((size_t)o->max_targets + 1, sizeof(uint32_t));
	uint32_t *perm = xcalloc(f->n_users + 1, sizeof(uint32_t));
	struct enc *best = enc_clone(e);
	struct adam ad = { xcalloc(np, sizeof(float)), xcalloc(np,
	    sizeof(float)), np, 0 };
	struct rng r;
	int rc = 0, bad = 0;

	rng_seed(&r, o->seed * 7919u + (uint64_t)mode);
	memcpy(perm, f->users, f->n_users * sizeof(uint32_t));
	*best_val = val_loss(f, e, NULL, NULL);
	*best_ep = 0;
	for (int ep = 1; ep <= o->epochs && rc == 0; ep++) {
		for (size_t i = f->n_users - 1; i > 0; i--) {
			uint32_t j = rng_below(&r, (uint32_t)(i + 1));
			uint32_t t = perm[i];
			perm[i] = perm[j];
			perm[j] = t;
		}
		for (size_t s = 0; s < f->n_users && rc == 0;
		    s += (size_t)o->users_per_step) {
			size_t nb = f->n_users - s < (size_t)o->users_per_step ?
			    f->n_users - s : (size_t)o->users_per_step;
			if (o->stop != NULL && atomic_load(o->stop)) {
				rc = -ECANCELED;
				break;
			}
			memset(gw, 0, nw * sizeof(float));
			memset(gc, 0, (size_t)e->nout * sizeof(float));
			for (size_t b = 0; b < nb; b++) {
				uint32_t u = perm[s + b];
				size_t a = f->tr.off[u], k = f->tr.off[u + 1] - a;
				size_t cut, nt = 0;
				double l;

				if (mode == ENC_MODE_REG) {
					/* d/drows of 1/2 |rows - learned|^2 */
					const float *xu = f->xfull + (size_t)u *
					    (size_t)e->nin;
					const float *ru = f->rows + (size_t)u *
					    (size_t)e->nout;
					enc_apply(e, xu, rows);
					for (int oo = 0; oo < e->nout; oo++) {
						float go = (rows[oo] - ru[oo]) /
						    (float)nb;
						gc[oo] += go;
						for (int ii = 0; ii < e->nin; ii++)
							gw[(size_t)oo * (size_t)
							    e->nin + ii] += go *
							    (xu[ii] - e->mu[ii]) /
							    e->sd[ii];
					}
					continue;
				}
				/* User dropout: a random time prefix is what
				 * the device would hold, the rest the loss. */
				cut = 1 + rng_below(&r, (uint32_t)(k - 1));
				enc_features(f->m, f->ds, f->tr.v + a, cut, x);
				for (size_t i = cut; i < k; i++) {
					if (nt < (size_t)o->max_targets)
						tg[nt++] = f->tr.v[a + i];
					else {
						uint32_t j = rng_below(&r,
						    (uint32_t)(i - cut + 1));
						if (j < (uint32_t)o->max_targets)
							tg[j] = f->tr.v[a + i];
					}
				}
				rc = enc_loss_grad(e, f->m, u, x, f->ds, tg,
				    (int)nt, 1.0f / (float)nb, gw, gc, &l);
				enc_rows_set(f->m, u, f->rows + (size_t)u *
				    (size_t)e->nout);
				if (rc == 0 && !isfinite(l))
					rc = -ERANGE;
				if (rc != 0)
					break;
			}
			if (rc != 0)
				break;
			ad.t++;
			if (mode != ENC_MODE_CONST)
				adam_step(&ad, e->w, gw, nw, 0, o->lr, o->wd);
			adam_step(&ad, e->c, gc, (size_t)e->nout, nw, o->lr, 0);
		}
		if (rc != 0)
			break;
		double v = val_loss(f, e, NULL, NULL);
		if (!isfinite(v)) {
			rc = -ERANGE;
			break;
		}
		if (v < *best_val) {
			*best_val = v;
			*best_ep = ep;
			enc_free(best);
			best = enc_clone(e);
			bad = 0;
		} else if (o->patience > 0 && ++bad >= o->patience)
			break;
	}
	memcpy(e->w, best->w, nw * sizeof(float));
	memcpy(e->c, best->c, (size_t)e->nout * sizeof(float));
	enc_free(best);
	free(ad.m);
	free(ad.v);
	free(gw);
	free(gc);
	free(tg);
	free(perm);
	return rc;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
enc_fit(struct enc **out, struct ctr *m, const struct dataset *ds,
    const uint32_t *tr, size_t ntr, const uint32_t *va, size_t nva,
    const struct enc_fit_opts *o, struct enc_fit_report *rep)
{
	const struct ctr_config *cfg = ctr_config(m);
	uint32_t NU = cfg->n_users;
	struct fit f;
	struct enc *e[3] = { NULL, NULL, NULL };
	struct enc_fit_report rp;
	double t0 = now(), vals[3];
	size_t maxk = 0;
	int rc = 0, best = 0, eps[3], small;

	*out = NULL;
	memset(&rp, 0, sizeof(rp));
	memset(&f, 0, sizeof(f));
	if ((e[0] = enc_new(m)) == NULL || ntr == 0 || nva == 0 ||
	    o->epochs < 1 || o->users_per_step < 1 || o->max_targets < 1) {
		enc_free(e[0]);
		return -EINVAL;
	}
	f.ds = ds;
	f.o = o;
	groups_build(&f.tr, ds, NU, tr, ntr);
	groups_build(&f.va, ds, NU, va, nva);
	f.users = xcalloc((size_t)NU + 1, sizeof(uint32_t));
	f.held = xcalloc((size_t)NU + 1, 1);
	/*
	 * Validation users: a seeded fifth of the users (all of them below
	 * ten) never train the encoder, so validation measures it on users
	 * it has not seen, as a device's cold user is.
	 */
	for (uint32_t u = 0; u < NU; u++)
		if (f.tr.off[u + 1] - f.tr.off[u] >= 2)
			f.n_users++;
	small = f.n_users < 10;
	for (uint32_t u = 0; u < NU; u++) {
		uint64_t h = o->seed ^ ((uint64_t)u << 20);
		f.held[u] = small || rng_splitmix(&h) % 5 == 0;
		if (f.va.off[u + 1] - f.va.off[u] > maxk)
			maxk = f.va.off[u + 1] - f.va.off[u];
	}
	f.n_users = 0;
	for (uint32_t u = 0; u < NU; u++)
		if (f.tr.off[u + 1] - f.tr.off[u] >= 2 &&
		    (small || !f.held[u]))
			f.users[f.n_users++] = u;
	if (f.n_users == 0) {
		rc = -EINVAL;
		goto done;
	}
	f.m = ctr_clone(m);
	f.z = xcalloc(maxk + 1, sizeof(float));
	f.xfull = xcalloc((size_t)NU * (size_t)e[0]->nin, sizeof(float));
	f.rows = xcalloc((size_t)NU * (size_t)e[0]->nout, sizeof(float));
	for (uint32_t u = 0; u < NU; u++) {
		size_t a = f.tr.off[u];
		enc_features(m, ds, f.tr.v + a, f.tr.off[u + 1] - a, f.xfull +
		    (size_t)u * (size_t)e[0]->nin);
		enc_rows_get(m, u, f.rows + (size_t)u * (size_t)e[0]->nout);
	}
	/* Standardisation and the start: the training users' means. */
	enc_standardise(e[0], f.xfull, f.users, f.n_users);
	for (size_t j = 0; j < f.n_users; j++) {
		uint32_t u = f.users[j];
		for (int i = 0; i < e[0]->nout; i++)
			e[0]->c[i] += f.rows[(size_t)u * e[0]->nout + i] /
			    (float)f.n_users;
	}
	rp.val_rows = val_loss(&f, NULL, &rp.n_val, &rp.n_val_users);
	rp.n_users = f.n_users;
	e[2] = enc_clone(e[0]);
	if ((rc = train_mode(&f, e[0], ENC_MODE_CONST, &vals[0], &eps[0])))
		goto done;
	e[1] = enc_clone(e[0]);	/* FIT starts from the constant */
	if ((rc = train_mode(&f, e[1], ENC_MODE_FIT, &vals[1], &eps[1])) ||
	    (rc = train_mode(&f, e[2], ENC_MODE_REG, &vals[2], &eps[2])))
		goto done;
	for (int i = 1; i < 3; i++)
		if (vals[i] < vals[best])
			best = i;
	rp.val_const = vals[0];
	rp.val_fit = vals[1];
	rp.val_reg = vals[2];
	rp.ep_const = eps[0];
	rp.ep_fit = eps[1];
	rp.ep_reg = eps[2];
	rp.chosen = (enum enc_mode)best;
	/* The trained unknown-user rows go into the model's OOV rows. */
	enc_rows_set(m, NU, e[0]->c);
	*out = e[best];
	e[best] = NULL;
done:
	rp.seconds = now() - t0;
	if (rep != NULL)
		*rep = rp;
	for (int i = 0; i < 3; i++)
		enc_free(e[i]);
	ctr_free(f.m);
	groups_fini(&f.tr);
	groups_fini(&f.va);
	free(f.users);
	free(f.held);
	f.held = NULL;
	free(f.xfull);
	free(f.rows);
	free(f.z);
	return rc;
}
