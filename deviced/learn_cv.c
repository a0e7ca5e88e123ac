/*
 * learn_cv: the cross-validation that chooses a method's setting on the
 * device's own data (learn_cv.h).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "deviced/deviced.h"
#include "deviced/learn_cv.h"
#include "deviced/mix.h"
#include "deviced/partial.h"
#include "deviced/recency.h"
#include "shared/ml/calib.h"
#include "shared/ml/ctr.h"
#include "shared/ml/kern.h"
#include "shared/xmalloc.h"

void
cv_grid(const struct deviced_conf *cf, int adapt, struct grid *g)
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


/*
 * Cross-validation state: held-out fold and per-(setting, step weight)
 * gain sums, index s * na + a (na = 1: the whole step only).
 */
#define CV_N	(GRID_N * PARTIAL_NA)
/* Entry of grid point q's whole step (partial_alpha ends with 1). */
#define CV_WHOLE(v, q)	((q) * (v)->na + (v)->na - 1)
struct cv {
	struct learn_prep *p;
	const uint32_t	*ho;
	size_t		 nho;
	int		 li;
	int		 na;		/* step weights tried (partial.h) */
	int		 only;		/* >= 0: the one grid point scored */
	float		*save;		/* na > 1: the adapted parameters */
	float		*z;		/* nho logits */
	double		 sum[CV_N], sq[CV_N];
	double		 rank[CV_N];	/* held-out pairs ordered better */
	float		*gb;		/* CV_N x nho: this fold's gains */
	size_t		 pairs;
	/* The last fold's share of the sums (nested validation). */
	int		 last;		/* the fold being scored is it */
	double		 lsum[CV_N], lsq[CV_N], lrank[CV_N];
	size_t		 ln, lpairs;
	/*
	 * Movement (for an evaluation or report, or learn.guard-move):
	 * held-out pairs, labelled or not, whose order the setting
	 * reverses against the cloud model's (a tie on one side half),
	 * over all and the last fold.
	 */
	int		 move;
	double		 mv[CV_N], lmv[CV_N];
	size_t		 mvpairs, lmvpairs;
	/* Fine-tuning: the logit-space mixtures' evidence (mix.h). */
	int		 mix;
	float		*z0h, *yh;	/* nho: cloud logits, labels */
	struct mix_ev	 mx[GRID_N];
	float		*zall;		/* GRID_N x n: out-of-fold logits */
	unsigned char	*held;		/* n: scored out of fold */
	/*
	 * A path that diverges (its loss or a checkpoint's logits not
	 * finite) scores nothing more; the settings it did not score in
	 * every fold are out (dead) and cannot be chosen.
	 */
	int		 diverged;
	unsigned char	 scored[GRID_N];	/* this fold */
	unsigned char	 dead[GRID_N];
};

static void cv_score(struct cv *v, int s);

static void
cv_ckpt(void *arg, struct path *pa, int k)
{
	struct cv *v = arg;
	int s = v->li * GRID_ST + k;
	const struct ctr *c0 = v->p->in->model;
	float b1 = pa->bias;

	if (v->diverged)
		return;
	if (v->na == 1) {
		path_logits(v->p, pa, v->ho, v->nho, v->z);
		if (!kern_finite(v->z, v->nho))
			v->diverged = 1;
		else {
			cv_score(v, s);
			v->scored[s] = 1;
		}
		return;
	}
	if (pa->mode != MODE_BIAS)
		memcpy(v->save, ctr_params(pa->c), ctr_num_params(pa->c) *
		    sizeof(float));
	for (int a = 0; a < v->na; a++) {
		double al = partial_alpha[PARTIAL_NA - v->na + a];
		if (pa->mode == MODE_BIAS) {
			float b0 = *path_bias_row(c0, v->p->work.s[0].user);
			pa->bias = b0 + (float)al * (b1 - b0);
		} else
			(void)partial_mix(pa->c, c0, v->save, al, pa->sel);
		path_logits(v->p, pa, v->ho, v->nho, v->z);
		if (!kern_finite(v->z, v->nho))
			v->diverged = 1;
		else
			cv_score(v, s * v->na + a);
	}
	v->scored[s] = !v->diverged;
	/* Training goes on from the whole step. */
	pa->bias = b1;
	if (pa->mode != MODE_BIAS)
		memcpy(ctr_params(pa->c), v->save, ctr_num_params(pa->c) *
		    sizeof(float));
}

/* The (click, no-click) pairs among n labels: what cv_score ranks. */
static size_t
label_pairs(const float *y, size_t n)
{
	size_t np = 0;

	for (size_t i = 0; i < n; i++)
		np += y[i] >= 0.5f;
	return np * (n - np);
}

/* Adds the held-out fold's evidence, logits v->z, to entry s. */
static void
cv_score(struct cv *v, int s)
{
	for (size_t i = 0; i < v->nho; i++) {
		uint32_t j = v->ho[i];
		double g = v->p->loss0[j] - bce_logit(v->z[i], v->p->y[j]);
		v->sum[s] += g;
		v->sq[s] += g * g;
		v->gb[(size_t)s * v->nho + i] = (float)g;
		if (v->last) {
			v->lsum[s] += g;
			v->lsq[s] += g * g;
		}
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
			if (v->last)
				v->lrank[s] += o1 - o0;
		}
	}
	if (v->move)
		for (size_t i = 0; i < v->nho; i++)
			for (size_t j = i + 1; j < v->nho; j++) {
				double d1 = (double)v->z[i] - v->z[j];
				double d0 = (double)v->z0h[i] - v->z0h[j];
				double o = (d1 > 0) - (d1 < 0) - ((d0 > 0) -
				    (d0 < 0));
				double f = fabs(o) / 2;	/* 1 reversed */
				v->mv[s] += f;
				if (v->last)
					v->lmv[s] += f;
			}
	if (v->mix && v->na == 1) {
		mix_add(&v->mx[s], v->z0h, v->z, v->yh, v->nho);
		for (size_t i = 0; i < v->nho; i++) {
			v->zall[(size_t)s * v->p->n + v->ho[i]] = v->z[i];
			v->held[v->ho[i]] = 1;
		}
	}
}

/* Entry b's figures on the inner folds and on the last one. */
static void
nested_point(const struct cv *v, size_t nh, int b, struct learn_nested *ne)
{
	double nin = (double)(nh - v->ln), mu, var;

	memset(ne, 0, sizeof(*ne));
	if (v->ln == 0 || nh <= v->ln || v->dead[b / v->na])
		return;
	mu = (v->sum[b] - v->lsum[b]) / nin;
	var = (v->sq[b] - v->lsq[b]) / nin - mu * mu;
	ne->have = 1;
	ne->gain = mu;
	ne->se = sqrt((var > 0 ? var : 0) / nin);
	ne->rank = v->rank[b] - v->lrank[b];
	ne->out_n = v->ln;
	ne->out_gain = v->lsum[b] / (double)v->ln;
	ne->out_pairs = v->lpairs;
	ne->out_rank = v->lrank[b];
	if (v->move && v->mvpairs > v->lmvpairs)
		ne->mv = (v->mv[b] - v->lmv[b]) /
		    (double)(v->mvpairs - v->lmvpairs);
}

/*
 * Nested validation (learn.h, struct learn_nested): the choice and the
 * guard's figures from every fold but the last, and how that choice
 * then did on the last fold, which none of them saw: what a rule over
 * the guard's evidence does to a user's future AUC, measured without
 * test data. Also each grid point's, for a setting chosen elsewhere
 * (pick_point): the same figures with the choice fixed.
 */
static void
nested(const struct cv *v, size_t nh, struct learn_choice *ch)
{
	int b = -1;

	for (int q = 0; q < GRID_N; q++)
		nested_point(v, nh, CV_WHOLE(v, q), &ch->nested_at[q]);
	memset(&ch->nested, 0, sizeof(ch->nested));
	if (v->ln == 0 || nh <= v->ln)
		return;
	for (int s = 0; s < GRID_N * v->na; s++)
		if (!v->dead[s / v->na] && (v->only < 0 || s == v->only) &&
		    (b < 0 || v->sum[s] - v->lsum[s] > v->sum[b] - v->lsum[b]))
			b = s;
	if (b >= 0)
		nested_point(v, nh, b, &ch->nested);
}

/*
 * Nested validation of the recalibration (calib.h): fitted on the inner
 * folds' out-of-fold logits at the setting they chose, then scored on
 * the last fold against that setting's uncalibrated logits (the mean
 * logloss gain, ch->nested.out_cal). Needs nested() first.
 */
static void
cal_nested(struct cv *v, int K, struct learn_choice *ch)
{
	const struct learn_prep *p = v->p;
	size_t lo = p->n * (size_t)(K - 1) / (size_t)K, nc = 0;
	int b = -1;
	double t, c, g = 0;

	if (!ch->nested.have || K < 3)
		return;
	for (int s = 0; s < GRID_N; s++)
		if (!v->dead[s] && (v->only < 0 || s == v->only) &&
		    (b < 0 || v->sum[s] - v->lsum[s] > v->sum[b] - v->lsum[b]))
			b = s;
	if (b < 0)
		return;
	for (size_t j = 0; j < lo; j++)
		if (v->held[j]) {
			v->z0h[nc] = v->zall[(size_t)b * p->n + j];
			v->yh[nc++] = p->y[j];
		}
	if (calib_fit(v->z0h, v->yh, nc, CALIB_PRIOR, &t, &c) != 0)
		return;
	for (size_t j = lo; j < p->n; j++) {
		double z = v->zall[(size_t)b * p->n + j];
		g += bce_logit(z, p->y[j]) -
		    bce_logit((1 + t) * z + c, p->y[j]);
	}
	ch->nested.out_cal = g / (double)(p->n - lo);
	ch->nested.have_cal = 1;
}

/*
 * Training indices of fold f of K (K < 2: all): the local samples before
 * block f of K contiguous blocks in time order, the newest learn.window
 * (or the row's "-w<N>") of them when it is set, then the kept pool
 * ones. The held-out blocks do not depend on the window, so settings of
 * it are scored on the same samples.
 */
size_t
cv_train_set(const struct learn_prep *p, const struct method *m, int K,
    int fold, uint32_t *tr)
{
	size_t nt = 0, end = K < 2 ? p->n : p->n * (size_t)fold / (size_t)K;
	size_t w = rows_window(p->in->cf, m), start = 0;

	if (w > 0 && end > w)
		start = end - w;
	for (size_t i = start; i < end; i++)
		tr[nt++] = (uint32_t)i;
	if (m->coda)
		for (size_t i = p->n; i < p->work.n; i++)
			tr[nt++] = (uint32_t)i;
	return nt;
}

/*
 * Forward-chaining cross-validation over the local samples (time order,
 * K contiguous blocks): block f is scored by a fit on blocks 0..f-1 only,
 * as the served model is fit on the past and scores the future (a random
 * split would put a sample's same-second neighbours on both sides). Every
 * grid setting is scored by each held-out sample's loss gain over the
 * cloud model; ch gets the setting with the largest mean gain, with its
 * mean and standard error. With only >= 0 (a method without partial
 * steps whose setting was chosen elsewhere) only that grid point's
 * learning rate is trained, up to its steps, and ch gets that point: the
 * same sums the whole grid gives it, at a third of the cost or less, but
 * no grid (ch->grid.have 0) for a report. Returns -1 without evidence
 * (fewer than 2 local samples, or the point diverged).
 */
int
cv_select(struct learn_prep *p, const struct method *m,
    const struct grid *g, struct path *pa, int only, int want_mix,
    struct learn_choice *ch)
{
	const struct deviced_conf *cf = p->in->cf;
	int K = (int)(p->n < (size_t)cf->cv_folds ? p->n : (size_t)cf->cv_folds);
	uint32_t *tr = xcalloc(p->work.n + 1, sizeof(uint32_t));
	uint32_t *ho = xcalloc(p->n + 1, sizeof(uint32_t));
	float *y = xcalloc(p->work.n + 1, sizeof(float));
	float *off = xcalloc(p->work.n + 1, sizeof(float));
	float *wt = xcalloc(p->work.n + 1, sizeof(float));
	struct cv v;
	size_t nh = 0, np, mvp;
	int best = -1, rc = 0;

	memset(&v, 0, sizeof(v));
	v.p = p;
	v.z = xcalloc(p->n + 1, sizeof(float));
	v.na = SEL_PARTIAL(m->sel) ? PARTIAL_NA : 1;
	v.only = v.na == 1 ? only : -1;
	if (v.na > 1 && pa->mode != MODE_BIAS)
		v.save = xcalloc(ctr_num_params(pa->c), sizeof(float));
	v.gb = xcalloc((size_t)CV_N * (p->n + 1), sizeof(float));
	v.mix = want_mix && m->adapt == ADAPT_FT && v.na == 1;
	v.move = want_mix || cf->guard_move > 0;
	v.z0h = xcalloc(p->n + 1, sizeof(float));
	v.yh = xcalloc(p->n + 1, sizeof(float));
	v.zall = xcalloc((size_t)GRID_N * (p->n + 1), sizeof(float));
	v.held = xcalloc(p->n + 1, 1);

	for (int f = 1; K >= 2 && f < K && rc == 0; f++) {
		size_t nt = cv_train_set(p, m, K, f, tr);
		size_t hi = p->n * (size_t)(f + 1) / (size_t)K;
		v.nho = 0;
		for (size_t i = p->n * (size_t)f / (size_t)K; i < hi; i++)
			ho[v.nho++] = (uint32_t)i;
		if (nt == 0 || v.nho == 0)
			continue;
		nh += v.nho;
		v.ho = ho;
		for (size_t i = 0; i < v.nho; i++) {
			double q = p->p0[ho[i]];
			v.z0h[i] = (float)(log(q) - log1p(-q));
			v.yh[i] = p->y[ho[i]];
		}
		v.last = f == K - 1;
		np = label_pairs(v.yh, v.nho);
		mvp = v.nho * (v.nho - 1) / 2;	/* every pair, for movement */
		v.pairs += np;
		v.mvpairs += mvp;
		if (v.last) {
			v.ln = v.nho;
			v.lpairs = np;
			v.lmvpairs = mvp;
		}
		path_targets(p, m, tr, nt, y, off);
		recency_weights(p->weight, p->work.n, tr, nt, p->n, rows_rec(m),
		    wt);
		memset(v.scored, 0, sizeof(v.scored));
		for (int li = 0; li < GRID_LR && rc == 0; li++) {
			if (v.only >= 0 && li != v.only / GRID_ST)
				continue;
			v.li = li;
			v.diverged = 0;
			path_reset(p, pa);
			rc = path_sgd(p, pa, tr, nt, y, wt, off,
			    g->lr[li], g->steps, v.only >= 0 ?
			    v.only % GRID_ST + 1 : GRID_ST,
			    (uint64_t)cf->seed + (uint64_t)f, cv_ckpt, &v);
			if (rc == -ERANGE)	/* diverged: its later points */
				rc = 0;		/* are out, not the CV */
		}
		for (int q = 0; q < GRID_N; q++)
			if (!v.scored[q])
				v.dead[q] = 1;
		/* Paired with the default point, for federated selection. */
		for (int s = 0; s < GRID_N && rc == 0 && v.only < 0; s++)
			for (size_t i = 0; i < v.nho; i++) {
				double d = (double)v.gb[(size_t)CV_WHOLE(&v, s) *
				    v.nho + i] - v.gb[(size_t)CV_WHOLE(&v,
				    LEARN_GRID_DEF) * v.nho + i];
				ch->grid.dsq[s] += d * d;
			}
	}
	if (K >= 2 && rc == 0 && nh > 0) {
		for (int s = 0; s < GRID_N * v.na; s++)
			if (!v.dead[s / v.na] && (v.only < 0 || s == v.only) &&
			    (best < 0 || v.sum[s] > v.sum[best]))
				best = s;
	}
	if (best >= 0) {
		double nn = (double)nh, mu = v.sum[best] / nn;
		double var = v.sq[best] / nn - mu * mu;
		int st = best / v.na;
		ch->gain = mu;
		ch->se = sqrt((var > 0 ? var : 0) / nn);
		ch->rank = v.rank[best];
		ch->mv = v.move && v.mvpairs > 0 ? v.mv[best] /
		    (double)v.mvpairs : 0;
		ch->lr = g->lr[st / GRID_ST];
		ch->steps = g->steps[st % GRID_ST];
		ch->alpha = partial_alpha[PARTIAL_NA - v.na + best % v.na];
		/* The grid's whole steps (alpha 1, the last weight), for
		   federated selection: only a whole grid. */
		ch->grid.have = 1;
		for (int q = 0; q < GRID_N; q++) {
			ch->alive[q] = !v.dead[q];
			if (v.dead[q])
				ch->grid.have = 0;
		}
		ch->grid.n = nh;
		ch->grid.pairs = v.pairs;
		memcpy(ch->grid.lr, g->lr, sizeof(g->lr));
		memcpy(ch->grid.steps, g->steps, sizeof(g->steps));
		for (int q = 0; q < GRID_N; q++) {
			ch->grid.gain[q] = v.sum[CV_WHOLE(&v, q)];
			ch->grid.sq[q] = v.sq[CV_WHOLE(&v, q)];
			ch->grid.rank[q] = v.rank[CV_WHOLE(&v, q)];
		}
		nested(&v, nh, ch);
		if (v.mix) {
			size_t nc = 0;
			ch->mix = v.mx[best];
			/* The recalibration, on the out-of-fold logits. */
			for (size_t j = 0; j < p->n; j++)
				if (v.held[j]) {
					v.z0h[nc] = v.zall[(size_t)best * p->n +
					    j];
					v.yh[nc++] = p->y[j];
				}
			ch->cal_have = calib_fit(v.z0h, v.yh, nc, CALIB_PRIOR,
			    &ch->cal_t, &ch->cal_b) == 0;
			cal_nested(&v, K, ch);
		}
	}
	free(v.zall);
	free(v.held);
	free(v.z0h);
	free(v.yh);
	free(wt);
	free(v.save);
	free(v.gb);
	free(tr);
	free(ho);
	free(y);
	free(off);
	free(v.z);
	return best < 0 ? -1 : 0;
}

