/*
 * learn: a device's personalization job, run in the threadpool. It reads
 * the device's local samples, the retrieved pool samples and the
 * downloaded cloud model (the loop leaves them alone while the device is
 * in DEV_TRAIN) and produces the patch to upload.
 *
 * A method is one path through the stages (README, "Device pipeline"):
 *   adapt  none | finetune (all weights) | metapatch (only this user's m)
 *   lc     label correction: none | soft (the paper's) | offset (hard
 *          labels + a fixed logit offset, dropped when scoring), aligned
 *          to r_g or to the cloud model's own mean prediction
 *   coda   add the retrieved samples the personalized filter keeps
 *          (none dated after the last local sample)
 *   sel    fixed setting | chosen by cross-validation | chosen and
 *          guarded (adopt only if the shrunk CV gain is positive)
 * Training is plain SGD for a number of steps. Settings come from a small
 * grid (learning rate x steps), chosen per device by K-fold
 * cross-validation over its local samples: no test data, and no sample
 * scores a setting it trained.
 *
 * The configured method (learn.adapt, learn.lc, learn.lc-target,
 * learn.coda; always guarded) is what the
 * device serves and uploads. With deviced.eval-dir set, the device also
 * runs every method of deviced.eval-methods and writes its held-out test
 * predictions to <eval-dir>/<device>.csv (method,user,item,label,score)
 * and per-method costs to <eval-dir>/<device>.extra (method,column,value).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deviced/app_query.h"
#include "deviced/deviced.h"
#include "deviced/encoder_dev.h"
#include "deviced/label_correct.h"
#include "deviced/ofa_dev.h"
#include "deviced/sample_filter.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/data/dataset.h"
#include "shared/log.h"
#include "shared/ml/metrics.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

/* learn.adapt's order: none, metapatch, finetune, bias */
enum { ADAPT_NONE = 0, ADAPT_MP, ADAPT_FT, ADAPT_BIAS };
/* How a method picks its (lr, steps) setting and whether it is guarded. */
enum { SEL_FIXED = 0, SEL_CV, SEL_GUARD };
/* What label correction aligns the local rate to (label_correct.h). */
enum { TGT_GLOBAL = 0, TGT_MODEL };

struct method {
	const char	*name;
	int		 adapt, lc, tgt, coda, sel;
	int		 users;		/* CoDA set retrieved by similar users */
	int		 fb;		/* guard refuses: try the bias alone */
};

/*
 * The evaluation rows. "naive-ft" is plain fine-tuning as in the papers
 * (the fixed setting, no selection, no guard); "*-cv" pick their setting
 * by cross-validation but always adopt it (the unguarded gain the guard is
 * measured against); the rest are guarded.
 */
static const struct method methods[] = {
	{ "cloud",	ADAPT_NONE, LC_NONE, 0, 0, SEL_FIXED, 0, 0 },
	{ "naive-ft",	ADAPT_FT, LC_NONE, 0, 0, SEL_FIXED, 0, 0 },
	{ "ft-cv",	ADAPT_FT, LC_NONE, 0, 0, SEL_CV, 0, 0 },
	{ "ft-guard",	ADAPT_FT, LC_NONE, 0, 0, SEL_GUARD, 0, 0 },
	{ "ft-lc",	ADAPT_FT, LC_SOFT, TGT_GLOBAL, 0, SEL_GUARD, 0, 0 },
	{ "ft-lcm",	ADAPT_FT, LC_SOFT, TGT_MODEL, 0, SEL_GUARD, 0, 0 },
	{ "ft-lcoff",	ADAPT_FT, LC_OFFSET, TGT_GLOBAL, 0, SEL_GUARD, 0, 0 },
	{ "ft-lcoffm",	ADAPT_FT, LC_OFFSET, TGT_MODEL, 0, SEL_GUARD, 0, 0 },
	{ "ft-coda",	ADAPT_FT, LC_NONE, 0, 1, SEL_GUARD, 0, 0 },
	{ "ft-lc-coda",	ADAPT_FT, LC_SOFT, TGT_GLOBAL, 1, SEL_GUARD, 0, 0 },
	{ "ft-lcm-coda", ADAPT_FT, LC_SOFT, TGT_MODEL, 1, SEL_GUARD, 0, 0 },
	{ "ft-coda-u",	ADAPT_FT, LC_NONE, 0, 1, SEL_GUARD, 1, 0 },
	{ "metapatch",	ADAPT_MP, LC_NONE, 0, 0, SEL_GUARD, 0, 0 },
	{ "mp-cv",	ADAPT_MP, LC_NONE, 0, 0, SEL_CV, 0, 0 },
	{ "mp-lc-coda",	ADAPT_MP, LC_SOFT, TGT_GLOBAL, 1, SEL_GUARD, 0, 0 },
	{ "mp-lcm-coda", ADAPT_MP, LC_SOFT, TGT_MODEL, 1, SEL_GUARD, 0, 0 },
	{ "mp-lc-coda-u", ADAPT_MP, LC_SOFT, TGT_GLOBAL, 1, SEL_GUARD, 1, 0 },
	{ "bias",	ADAPT_BIAS, LC_NONE, 0, 0, SEL_GUARD, 0, 0 },
	{ "ft-fb",	ADAPT_FT, LC_NONE, 0, 0, SEL_GUARD, 0, 1 },
	{ "ft-lcoffm-fb", ADAPT_FT, LC_OFFSET, TGT_MODEL, 0, SEL_GUARD, 0, 1 },
	{ "mp-fb",	ADAPT_MP, LC_NONE, 0, 0, SEL_GUARD, 0, 1 },
	{ NULL, 0, 0, 0, 0, 0, 0, 0 }
};

/*
 * The setting grid: learning rates base/3, base, 3*base (learn.ft-lr for
 * fine-tuning, learn.lr for MetaPatch, learn.bias-lr for the bias alone)
 * times step counts steps/4 and steps (learn.ft-steps for fine-tuning,
 * learn.steps otherwise). Setting s = li * GRID_ST + si.
 */
#define GRID_LR	3
#define GRID_ST	2
#define GRID_N	(GRID_LR * GRID_ST)

struct grid {
	double	lr[GRID_LR];
	int	steps[GRID_ST];
};

static void
grid_of(const struct deviced_conf *cf, int adapt, struct grid *g)
{
	double base = adapt == ADAPT_FT ? cf->ft_lr : adapt == ADAPT_BIAS ?
	    cf->bias_lr : cf->lr;
	int st = (int)(adapt == ADAPT_FT ? cf->ft_steps : cf->steps);

	g->lr[0] = base / 3;
	g->lr[1] = base;
	g->lr[2] = base * 3;
	g->steps[0] = st / 4 > 0 ? st / 4 : 1;
	g->steps[1] = st;
}

/* What every method of one job shares. */
struct prep {
	struct dataset	 work;		/* local samples, then kept retrieved */
	float		*weight;	/* work.n: 1 local, coda-weight kept */
	float		*y;		/* work.n: the hard labels */
	float		*loss0;		/* n: the cloud model's per-sample loss */
	float		*p0;		/* n: the cloud model's probability */
	size_t		 n, nkept, nlate;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double
bce(double z, double y)
{
	return (z > 0 ? z : 0) - z * y + log1p(exp(-fabs(z)));
}

static void
prepare(struct device *d, struct prep *p, const struct dataset *ret)
{
	const struct deviced_conf *cf = &d->dd->cf;
	size_t n = d->local.n, nr = 0, *all, *ok;
	int64_t t_end = INT64_MIN;

	memset(p, 0, sizeof(*p));
	dataset_init(&p->work);
	p->n = n;
	all = xcalloc(n + 1, sizeof(size_t));
	for (size_t i = 0; i < n; i++) {
		all[i] = i;
		if (d->local.s[i].ts > t_end)
			t_end = d->local.s[i].ts;
	}
	dataset_append_subset(&p->work, &d->local, all, n);
	/*
	 * CoDA's time filter: nothing dated after the local window reaches
	 * training (the pool holds other users' later samples too).
	 */
	ok = xcalloc(ret->n + 1, sizeof(size_t));
	for (size_t i = 0; i < ret->n; i++)
		if (ret->s[i].ts <= t_end)
			ok[nr++] = i;
	p->nlate = ret->n - nr;
	/* CoDA fine filtering over the model's sample representations. */
	if (nr > 0 && n > 0) {
		int dim = ctr_repr_dim(d->model);
		float *L = xcalloc(n * dim, sizeof(float));
		float *R = xcalloc(nr * dim, sizeof(float));
		float *pr = xcalloc(nr, sizeof(float));
		unsigned char *keep = xcalloc(nr, 1);
		uint32_t *li = xcalloc(n + 1, sizeof(uint32_t));
		uint32_t *ri = xcalloc(nr, sizeof(uint32_t));
		struct filt_opts fo;
		size_t *ki = xcalloc(nr, sizeof(size_t));

		for (size_t i = 0; i < n; i++)
			li[i] = (uint32_t)i;
		for (size_t i = 0; i < nr; i++)
			ri[i] = (uint32_t)ok[i];
		ctr_repr(d->model, &d->local, li, n, L);
		ctr_repr(d->model, ret, ri, nr, R);
		filt_opts_default(&fo);
		fo.rho = cf->coda_rho;
		fo.tau = cf->coda_tau;
		filt_select(L, n, R, nr, dim, &fo, pr, keep);
		for (size_t i = 0; i < nr; i++)
			if (keep[i])
				ki[p->nkept++] = ok[i];
		dataset_append_subset(&p->work, ret, ki, p->nkept);
		free(L); free(R); free(pr); free(keep); free(li); free(ri);
		free(ki);
	}
	free(ok);
	free(all);
	p->work.n_users = d->local.n_users;
	p->weight = xcalloc(p->work.n + 1, sizeof(float));
	p->y = xcalloc(p->work.n + 1, sizeof(float));
	for (size_t i = 0; i < p->work.n; i++) {
		p->weight[i] = i < n ? 1.0f : (float)cf->coda_weight;
		p->y[i] = p->work.s[i].label >= 0.5f;
	}
	/* The cloud model's loss on each local sample: the CV baseline. */
	p->loss0 = xcalloc(n + 1, sizeof(float));
	p->p0 = xcalloc(n + 1, sizeof(float));
	if (n > 0) {
		uint32_t *li = xcalloc(n, sizeof(uint32_t));
		for (size_t i = 0; i < n; i++)
			li[i] = (uint32_t)i;
		/* d->model is shared by the devices of this deviced
		 * (device.c): its scratch buffers are not this job's. */
		struct ctr *base = ctr_clone(d->model);
		ctr_logits(base, &p->work, li, n, p->p0);
		ctr_free(base);
		for (size_t i = 0; i < n; i++) {
			double z = p->p0[i];
			p->loss0[i] = (float)bce(z, p->y[i]);
			p->p0[i] = (float)(1 / (1 + exp(-z)));
		}
		free(li);
	}
}

static void
prep_fini(struct prep *p)
{
	dataset_fini(&p->work);
	free(p->weight);
	free(p->y);
	free(p->loss0);
	free(p->p0);
}

/*
 * Training targets of one fit: hard labels everywhere, then label
 * correction of the local samples in tr (their labels only, so a held-out
 * fold never informs its own targets). The rate is aligned to r_g (the
 * paper) or to the cloud model's own mean prediction on those samples
 * (TGT_MODEL: the model is per-user, so its prior for this user is not
 * r_g). y and off are indexed like p->work.
 */
static void
targets(const struct device *d, const struct prep *p, const struct method *m,
    const uint32_t *tr, size_t ntr, float *y, float *off)
{
	const struct deviced_conf *cf = &d->dd->cf;
	struct lc_opts lo = { (enum lc_mode)m->lc, d->global_ctr,
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

/* Called after steps[k] steps of a path (cross-validation). */
typedef void (*ckpt_fn)(void *arg, struct ctr *c, int k);

/*
 * Plain SGD from c's current parameters on work[tr[0..ntr)]: full batch
 * when ntr <= batch, else seeded minibatches cycling a shuffled order.
 * Plain SGD because a fresh Adam's first steps move every parameter by
 * about lr * sign(g), whatever the gradient says. at(k) runs after
 * steps[k] steps (ascending). Returns 0, -ECANCELED or -ERANGE.
 */
static int
sgd_path(struct ctr *c, const struct prep *p, enum ctr_sel sel,
    const uint32_t *tr, size_t ntr, const float *y, const float *w,
    const float *off, double lr, const int *steps, int nck, int batch,
    uint64_t seed, atomic_int *stop, ckpt_fn at, void *arg)
{
	struct ctr_opt o;
	struct rng r;
	uint32_t *perm = xcalloc(ntr + 1, sizeof(uint32_t));
	int B = ntr < (size_t)batch ? (int)ntr : batch, rc = 0, k = 0;
	float *yb = xcalloc((size_t)B + 1, sizeof(float));
	float *wb = xcalloc((size_t)B + 1, sizeof(float));
	float *ob = xcalloc((size_t)B + 1, sizeof(float));
	size_t pos = 0;
	double l;

	ctr_opt_default(&o, CTR_OPT_SGD, (float)lr);
	memcpy(perm, tr, ntr * sizeof(uint32_t));
	rng_seed(&r, seed);
	for (int s = 1; nck > 0 && s <= steps[nck - 1]; s++) {
		if (stop != NULL && atomic_load(stop)) {
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
		ctr_zero_grad(c);
		if ((rc = ctr_forward(c, &p->work, perm + pos, B, NULL)) != 0)
			break;
		ctr_backward(c, sel, yb, wb, ob, &l);
		if (!isfinite(l)) {
			rc = -ERANGE;
			break;
		}
		if ((rc = ctr_step(c, sel, &o)) != 0)
			break;
		if ((size_t)B < ntr)
			pos += (size_t)B;
		while (k < nck && steps[k] == s && at != NULL)
			at(arg, c, k++);
	}
	ctr_zero_grad(c);
	free(perm);
	free(yb);
	free(wb);
	free(ob);
	return rc;
}

/* Cross-validation state: held-out fold and per-setting gain sums. */
struct cv {
	const struct prep *p;
	const uint32_t	*ho;
	size_t		 nho;
	int		 li;
	float		*z;		/* nho logits */
	double		 sum[GRID_N], sq[GRID_N];
	double		 rank[GRID_N];	/* held-out pairs ordered better */
};

static void
cv_ckpt(void *arg, struct ctr *c, int k)
{
	struct cv *v = arg;
	int s = v->li * GRID_ST + k;

	ctr_logits(c, &v->p->work, v->ho, v->nho, v->z);
	for (size_t i = 0; i < v->nho; i++) {
		uint32_t j = v->ho[i];
		double g = v->p->loss0[j] - bce(v->z[i], v->p->y[j]);
		v->sum[s] += g;
		v->sq[s] += g * g;
	}
	/*
	 * Ranking evidence: each held-out (positive, negative) pair the
	 * setting orders right and the cloud model did not counts +1, the
	 * reverse -1 (ties half). Per-user AUC only moves through these.
	 */
	for (size_t i = 0; i < v->nho; i++) {
		uint32_t a = v->ho[i];
		if (v->p->y[a] < 0.5f)
			continue;
		for (size_t j = 0; j < v->nho; j++) {
			uint32_t b = v->ho[j];
			if (v->p->y[b] >= 0.5f)
				continue;
			double o1 = v->z[i] > v->z[j] ? 1 : v->z[i] < v->z[j] ?
			    0 : 0.5;
			double o0 = v->p->p0[a] > v->p->p0[b] ? 1 :
			    v->p->p0[a] < v->p->p0[b] ? 0 : 0.5;
			v->rank[s] += o1 - o0;
		}
	}
}

/*
 * Training indices of fold f of K (K < 2: all): the local samples before
 * block f of K contiguous blocks in time order, then the kept pool ones.
 */
static size_t
train_set(const struct prep *p, const struct method *m, int K, int fold,
    uint32_t *tr)
{
	size_t nt = 0, end = K < 2 ? p->n : p->n * (size_t)fold / (size_t)K;

	for (size_t i = 0; i < end; i++)
		tr[nt++] = (uint32_t)i;
	if (m->coda)
		for (size_t i = p->n; i < p->work.n; i++)
			tr[nt++] = (uint32_t)i;
	return nt;
}

/* Chosen setting of one run, for the evaluation's columns. */
struct choice {
	int	adopted;
	int	fallback;	/* adopted the bias alone */
	double	lr;
	int	steps;
	double	gain, se;	/* CV mean logloss gain and its std. error */
	double	rank;		/* held-out pairs ordered better, net */
};

/*
 * Forward-chaining cross-validation over the local samples (time order,
 * K contiguous blocks): block f is scored by a fit on blocks 0..f-1 only,
 * as the served model is fit on the past and scores the future (a random
 * split would put a sample's same-second neighbours on both sides). Every
 * grid setting is scored by each held-out sample's loss gain over the
 * cloud model; ch gets the setting with the largest mean gain, with its
 * mean and standard error. Returns -1 without evidence (fewer than 2
 * local samples).
 */
static int
cv_select(struct device *d, const struct prep *p, const struct method *m,
    const struct grid *g, struct ctr *c, enum ctr_sel sel, struct choice *ch)
{
	const struct deviced_conf *cf = &d->dd->cf;
	int K = (int)(p->n < (size_t)cf->cv_folds ? p->n : (size_t)cf->cv_folds);
	uint32_t *tr = xcalloc(p->work.n + 1, sizeof(uint32_t));
	uint32_t *ho = xcalloc(p->n + 1, sizeof(uint32_t));
	float *y = xcalloc(p->work.n + 1, sizeof(float));
	float *off = xcalloc(p->work.n + 1, sizeof(float));
	struct cv v;
	size_t nh = 0;
	int best = -1, rc = 0;

	memset(&v, 0, sizeof(v));
	v.p = p;
	v.z = xcalloc(p->n + 1, sizeof(float));

	for (int f = 1; K >= 2 && f < K && rc == 0; f++) {
		size_t nt = train_set(p, m, K, f, tr);
		size_t hi = p->n * (size_t)(f + 1) / (size_t)K;
		v.nho = 0;
		for (size_t i = p->n * (size_t)f / (size_t)K; i < hi; i++)
			ho[v.nho++] = (uint32_t)i;
		if (nt == 0 || v.nho == 0)
			continue;
		nh += v.nho;
		v.ho = ho;
		targets(d, p, m, tr, nt, y, off);
		for (int li = 0; li < GRID_LR && rc == 0; li++) {
			v.li = li;
			ctr_copy_params(c, d->model);
			rc = sgd_path(c, p, sel, tr, nt, y, p->weight, off,
			    g->lr[li], g->steps, GRID_ST, (int)cf->batch,
			    (uint64_t)cf->seed + (uint64_t)f, &d->dd->stop,
			    cv_ckpt, &v);
		}
	}
	if (K >= 2 && rc == 0 && nh > 0) {
		for (int s = 0; s < GRID_N; s++)
			if (best < 0 || v.sum[s] > v.sum[best])
				best = s;
		double nn = (double)nh, mu = v.sum[best] / nn;
		double var = v.sq[best] / nn - mu * mu;
		ch->gain = mu;
		ch->se = sqrt((var > 0 ? var : 0) / nn);
		ch->rank = v.rank[best];
		ch->lr = g->lr[best / GRID_ST];
		ch->steps = g->steps[best % GRID_ST];
	}
	free(tr);
	free(ho);
	free(y);
	free(off);
	free(v.z);
	return best < 0 ? -1 : 0;
}

/*
 * Runs one method; returns the model to serve (a new model, or a clone of
 * the cloud model when nothing is adopted). *ch, *secs and *mem (bytes of
 * model, gradients and samples; plain SGD keeps no moments) out.
 *
 * SEL_FIXED trains learn.steps steps at the base rate. SEL_CV picks the
 * grid setting with the best cross-validated loss gain and adopts it.
 * SEL_GUARD adopts it only with learn.guard-min-n local samples and a
 * gain that stays positive after shrinking by learn.guard-z standard
 * errors, and (learn.guard-rank, for what can reorder a user's items) a
 * net gain in correctly ordered held-out pairs; otherwise the device
 * keeps the cloud model.
 */
static struct ctr *
run1(struct device *d, const struct prep *p, const struct method *m,
    struct choice *ch, double *secs, double *mem)
{
	const struct deviced_conf *cf = &d->dd->cf;
	struct ctr *c = ctr_clone(d->model);
	enum ctr_sel sel = m->adapt == ADAPT_FT ? CTR_SEL_ALL :
	    m->adapt == ADAPT_BIAS ? CTR_SEL_BIAS_ONLY :
	    CTR_SEL_METAPATCH_ONLY;
	struct grid g;
	uint32_t *tr = NULL;
	float *y = NULL, *off = NULL;
	size_t nt;
	double t0 = now();
	int rc;

	memset(ch, 0, sizeof(*ch));
	*mem = (double)ctr_num_params(c) * 4;
	if (m->adapt == ADAPT_NONE || p->n == 0)
		goto done;
	*mem += (double)ctr_num_params(c) * 4 +
	    (double)p->work.n * sizeof(struct sample);
	grid_of(cf, m->adapt, &g);
	if (m->sel == SEL_FIXED) {
		ch->lr = g.lr[1];
		ch->steps = g.steps[GRID_ST - 1];
	} else if (cv_select(d, p, m, &g, c, sel, ch) != 0) {
		/* No evidence: the unguarded row takes the base setting. */
		if (m->sel == SEL_GUARD)
			goto done;
		ch->lr = g.lr[1];
		ch->steps = g.steps[GRID_ST - 1];
	} else if (m->sel == SEL_GUARD && (p->n < (size_t)cf->guard_min_n ||
	    !(ch->gain - cf->guard_z * ch->se > 0)))
		goto done;
	else if (m->sel == SEL_GUARD && cf->guard_rank &&
	    m->adapt != ADAPT_BIAS && !(ch->rank > 0))
		goto done;	/* no reordering without ranking evidence */
	/* The chosen setting, trained on every local sample. */
	tr = xcalloc(p->work.n + 1, sizeof(uint32_t));
	y = xcalloc(p->work.n + 1, sizeof(float));
	off = xcalloc(p->work.n + 1, sizeof(float));
	nt = train_set(p, m, 0, 0, tr);
	targets(d, p, m, tr, nt, y, off);
	ctr_copy_params(c, d->model);
	rc = sgd_path(c, p, sel, tr, nt, y, p->weight, off, ch->lr,
	    &ch->steps, 1, (int)cf->batch, (uint64_t)cf->seed, &d->dd->stop,
	    NULL, NULL);
	ch->adopted = rc == 0;
done:
	if (!ch->adopted) {
		ctr_free(c);
		c = ctr_clone(d->model);
	}
	*secs = now() - t0;
	free(tr);
	free(y);
	free(off);
	return c;
}

/*
 * run1, then for a method with the fallback, when its guard keeps the
 * cloud model: the per-user bias alone under the same guard (it moves
 * calibration only, never the order of one user's items).
 */
static struct ctr *
run(struct device *d, const struct prep *p, const struct method *m,
    struct choice *ch, double *secs, double *mem)
{
	struct method b = { "bias", ADAPT_BIAS, LC_NONE, 0, 0, SEL_GUARD, 0,
		0 };
	struct ctr *c = run1(d, p, m, ch, secs, mem);
	double s2, m2;

	if (ch->adopted || !m->fb || m->adapt == ADAPT_NONE)
		return c;
	ctr_free(c);
	c = run1(d, p, &b, ch, &s2, &m2);
	*secs += s2;
	ch->fallback = ch->adopted;
	return c;
}

static const struct method *
find(const char *name)
{
	for (const struct method *m = methods; m->name; m++)
		if (strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

static void
evaluate(struct device *d, const struct prep *p0)
{
	struct prep pu;
	int have_pu = 0;
	const struct deviced_conf *cf = &d->dd->cf;
	size_t n = d->test.n;
	uint32_t *idx = xcalloc(n + 1, sizeof(uint32_t));
	float *pr = xcalloc(n + 1, sizeof(float));
	char path[1300], *list = xstrdup(cf->eval_methods), *save = NULL, *nm;
	FILE *f, *x;
	struct dataset q;

	for (size_t i = 0; i < n; i++)
		idx[i] = (uint32_t)i;
	/* The test samples as the app socket would see them (app.h). */
	dataset_init(&q);
	app_replay(&q, &d->local, &d->test, d->user, app_hist_k(d->model));
	snprintf(path, sizeof(path), "%s/%s.csv", cf->eval_dir, d->id);
	f = fopen(path, "w");
	snprintf(path, sizeof(path), "%s/%s.extra", cf->eval_dir, d->id);
	x = fopen(path, "w");
	if (f == NULL || x == NULL) {
		snprintf(d->job_err, sizeof(d->job_err), "cannot write %.200s",
		    path);
		goto done;
	}
	for (nm = strtok_r(list, ",", &save); nm; nm = strtok_r(NULL, ",",
	    &save)) {
		const struct method *m = find(nm);
		const struct prep *p = p0;
		double secs, mem, up, down;
		struct choice ch;
		struct ctr *c;
		struct device dv, *dj = d;	/* dv: another start */
		struct method em;
		struct prep pe;
		const char *inner;
		int est = ENCDEV_CLOUD;

		/* Encoder rows: a method from the encoder's start. */
		if (m == NULL && (inner = encoder_dev_view(d, nm, &dv, &est))) {
			if (find(inner) == NULL) {	/* not in methods[] */
				encoder_dev_view_fini(&dv);
				continue;
			}
			em = *find(inner);
			em.name = nm;
			m = &em;
			dj = &dv;
			prepare(dj, &pe, &d->retrieved);
			p = &pe;
		}
		/* Forward-OFA rows: no training, one forward pass. */
		if (m == NULL) {
			(void)ofa_dev_eval(d, nm, &q, f, x);
			continue;
		}
		if (m->users && d->dd->cf.retrieve_mode == 0) {
			/* The set fetched by similar users (device.c). */
			if (!have_pu) {
				prepare(d, &pu, &d->retrieved_u);
				have_pu = 1;
			}
			p = &pu;
		}
		c = run(dj, p, m, &ch, &secs, &mem);
		(void)app_score(c, &q, pr);	/* the app socket's scoring */
		for (size_t i = 0; i < n; i++) {
			const struct sample *s = &d->test.s[i];
			fprintf(f, "%s,%u,%u,%g,%.9g\n", m->name, s->user,
			    s->item, s->label, pr[i]);
		}
		/* Traffic this method needs: download, retrieval, upload. */
		down = (double)d->b_model + (!m->coda ? 0 : m->users ?
		    d->b_retu_down : d->b_ret_down);
		up = (double)d->b_reg + (!m->coda ? 0 : m->users ?
		    d->b_retu_up : d->b_ret_up) +
		    (m->adapt == ADAPT_FT ? (double)d->dl_total :
		    m->adapt != ADAPT_NONE ? (double)d->b_patch : 0);
		fprintf(x, "%s,device_ms,%.3f\n%s,train_kib,%.1f\n"
		    "%s,bytes_up,%.0f\n%s,bytes_down,%.0f\n%s,adopted,%d\n",
		    m->name, secs * 1e3, m->name, mem / 1024, m->name, up,
		    m->name, down, m->name, ch.adopted);
		fprintf(x, "%s,flops,%.0f\n", m->name, ctr_flops(c));
		/* The setting chosen (0 when the cloud model is kept). */
		if (m->adapt != ADAPT_NONE)
			fprintf(x, "%s,lr,%g\n%s,steps,%d\n%s,cv_gain,%g\n"
			    "%s,coda_kept,%zu\n%s,coda_late,%zu\n"
			    "%s,bias_only,%d\n", m->name,
			    ch.adopted ? ch.lr : 0, m->name, ch.adopted ?
			    ch.steps : 0, m->name, ch.gain, m->name,
			    m->coda ? p->nkept : 0, m->name,
			    m->coda ? p->nlate : 0, m->name, ch.fallback);
		ctr_free(c);
		if (dj != d) {
			fprintf(x, "%s,enc_rows,%d\n", m->name,
			    ENCDEV_USES_ENC(est));
			prep_fini(&pe);
			encoder_dev_view_fini(&dv);
		}
	}
done:
	if (f != NULL && fclose(f) != 0)
		snprintf(d->job_err, sizeof(d->job_err), "write failed");
	if (x != NULL)
		fclose(x);
	if (have_pu)
		prep_fini(&pu);
	free(list);
	free(idx);
	free(pr);
	dataset_fini(&q);
}

/*
 * Size of the upload message this device will send (envelope, patch and
 * the four metrics device.c attaches), for the cost columns.
 */
static size_t
upload_size(const struct device *d)
{
	Dccl__Envelope e = DCCL__ENVELOPE__INIT;
	Dccl__UploadPatch up = DCCL__UPLOAD_PATCH__INIT;
	Dccl__Metric m[4], *mp[4];
	static const char *const names[4] = { "local_samples", "retrieved",
		"val_logloss_base", "val_logloss_patched" };

	for (int i = 0; i < 4; i++) {
		dccl__metric__init(&m[i]);
		m[i].name = (char *)names[i];
		m[i].value = 0.5;
		mp[i] = &m[i];
	}
	up.base_version = d->version;
	up.n_tensors = d->n_patch;
	up.tensors = d->patch;
	up.n_metrics = 4;
	up.metrics = mp;
	up.kind = "metapatch";
	e.version = 1;
	e.device_id = (char *)d->id;
	e.request_id = d->req_id + 1;
	e.body_case = DCCL__ENVELOPE__BODY_UPLOAD;
	e.upload = &up;
	return dccl__envelope__get_packed_size(&e);
}

void
learn_work_cb(uv_work_t *w)
{
	struct device *d = w->data;
	const struct deviced_conf *cf = &d->dd->cf;
	struct method serve = { "serve", cf->adapt, cf->lc, cf->lc_target,
		cf->coda, SEL_GUARD, 0, cf->bias_fallback };
	struct choice ch;
	struct prep p;
	struct ctr *c;
	double secs, mem;
	double t0 = now();
	struct device dv, *dj = d;	/* dv: a cold user's encoder start */

	d->job_rc = 0;
	if (cf->encoder && d->enc != NULL) {
		dv = *d;
		dv.model = encoder_dev_start(d, ENCDEV_CV, NULL);
		dj = &dv;
	}
	prepare(dj, &p, &d->retrieved);
	d->kept = p.nkept;
	c = run(dj, &p, &serve, &ch, &secs, &mem);
	/* Mean local logloss of the cloud model, and the CV estimate after. */
	d->val_before = 0;
	for (size_t i = 0; i < p.n; i++)
		d->val_before += p.loss0[i] / (double)p.n;
	d->adopted = ch.adopted;
	d->val_after = d->val_before - (ch.adopted ? ch.gain : 0);
	if (ctr_io_patch_get(c, d->user, &d->patch, &d->n_patch) != 0) {
		d->job_rc = -EINVAL;
		snprintf(d->job_err, sizeof(d->job_err),
		    "the model has no MetaPatch");
	} else {
		d->b_patch = upload_size(d);
	}
	if (d->app != NULL)
		d->job_serving = c;	/* the app ranks with it (app.c) */
	else
		ctr_free(c);
	d->train_s = now() - t0;
	if (dj != d)
		encoder_dev_view_fini(&dv);
	if (d->job_rc == 0 && cf->eval_dir[0] != '\0' && d->test.n > 0) {
		if (dj != d) {	/* the evaluation starts from the cloud's */
			prep_fini(&p);
			prepare(d, &p, &d->retrieved);
		}
		evaluate(d, &p);
	}
	prep_fini(&p);
}
