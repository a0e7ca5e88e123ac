/*
 * learn: a device's personalization job, run in the threadpool. It reads
 * a struct learn_in (the device's local samples, the retrieved pool
 * samples and the downloaded cloud model, which the loop leaves alone
 * while the device is in DEV_TRAIN) and fills a struct learn_result: the
 * patch to upload, the model to serve, the validation figures. The loop
 * applies it to the device (learn_apply, learn_job.c, which runs this
 * file's methods, federated selection's report and the evaluation matrix,
 * learn_eval.c's).
 *
 * A method is one path through the stages (README, "Device pipeline"; the
 * table of methods and what a row's name says: learn_rows.c; one SGD
 * path from the cloud model: learn_path.c; the cross-validation that
 * chooses a setting: learn_cv.c):
 *   adapt  none | finetune (all weights) | metapatch (only this user's m)
 *          | bias (only this user's logit bias)
 *   lc     label correction: none | soft (the paper's) | offset (hard
 *          labels + a fixed logit offset, dropped when scoring), aligned
 *          to r_g or to the cloud model's own mean prediction
 *   coda   add the retrieved samples the personalized filter keeps
 *          (none dated after the last local sample)
 *   sel    fixed setting | chosen by cross-validation | chosen and
 *          guarded (adopt only if the shrunk CV gain is positive)
 * Training is plain SGD for a number of steps, on BCE (plus, with a pair
 * weight, a pairwise loss over the user's own pairs, pairwise.h); a "-ps"
 * row also chooses a partial step (partial.h). Settings come from a small
 * grid (learning rate x steps), chosen per device by K-fold
 * cross-validation over its local samples: no test data, and no sample
 * scores a setting it trained.
 *
 * Speed (issue 17's 5 ms per job): the cross-validation costs about seven
 * fits, so what the frozen cloud model computes is computed once per job.
 * MetaPatch training starts every step from each sample's first-layer
 * output (ctr_trunk, the embeddings and the first layer are frozen); the
 * bias alone moves every logit of the user by the same amount, so its
 * steps run on the cloud model's logits without the bias (O(batch) per
 * step). Between paths only the trained tensors are restored. The CoDA
 * filter runs only when a method uses it. With learn.select = fed and
 * nothing that wants the whole grid (no report, no evaluation), a
 * guarded job's CV trains only the cloud's point (cv_select's only).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deviced/deviced.h"
#include "deviced/encoder_dev.h"
#include "deviced/fedsel_choice.h"
#include "deviced/learn.h"
#include "deviced/learn_cv.h"
#include "deviced/learn_memo.h"
#include "deviced/learn_path.h"
#include "deviced/learn_rows.h"
#include "deviced/mix.h"
#include "deviced/coda_filter.h"
#include "deviced/partial.h"
#include "deviced/recency.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/data/dataset.h"
#include "shared/xmalloc.h"

/*
 * The pair weight of a run of m: pw when given (>= 0: a report's grid at
 * each candidate); for a family (learn_pair_family) the cloud's choice
 * for m (in->fed; *fed 1), else its default (*fed -1): learn.pair-weight
 * for the served method, the first of learn.pair-weights for a row;
 * otherwise the weight m's name gives (*fed 0).
 */
static float
pair_at(const struct learn_prep *p, const struct method *m, double pw,
    int *fed)
{
	const struct deviced_conf *cf = p->in->cf;
	double w;

	*fed = 0;
	if (pw >= 0)
		return (float)pw;
	if (!learn_pair_family(cf, m->name))
		return rows_pair(cf, m);
	if (fedsel_dev_find_pw(p->in->fed, m->name, &w) == 0) {
		*fed = 1;
		return (float)w;
	}
	*fed = -1;
	if (strcmp(m->name, "serve") == 0)
		return (float)cf->pair_weight;
	return cf->npw > 0 ? (float)cf->pw[0] : 0.0f;
}

/* The memo entry of (p, m) (learn_memo.h). */
static struct memo_ent *
memo_get(struct learn_memo *mm, const struct learn_prep *p,
    const struct method *m, float pair)
{
	if (mm == NULL)
		return NULL;
	return learn_memo_get(mm, p, m->adapt, m->lc,
	    m->lc == LC_NONE ? 0 : m->tgt, m->coda, SEL_PARTIAL(m->sel) |
	    (rows_rec(m) > 0 ? (int)rows_rec(m) << 1 : 0), pair,
	    rows_window(p->in->cf, m));
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CoDA: keeps the retrieved samples the personalized filter selects. */
static void
coda_filter(struct learn_prep *p, const size_t *ok, size_t nr)
{
	const struct learn_in *in = p->in;
	const struct dataset *ret = p->ret;
	size_t n = p->n;
	int dim = ctr_repr_dim(in->model);
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
	ctr_repr(in->model, in->local, li, n, L);
	ctr_repr(in->model, ret, ri, nr, R);
	filt_opts_default(&fo);
	fo.rho = in->cf->coda_rho;
	fo.tau = in->cf->coda_tau;
	filt_select(L, n, R, nr, dim, &fo, pr, keep);
	for (size_t i = 0; i < nr; i++)
		if (keep[i])
			ki[p->nkept++] = ok[i];
	dataset_append_subset(&p->work, ret, ki, p->nkept);
	free(L); free(R); free(pr); free(keep); free(li); free(ri);
	free(ki);
}

void
learn_prep_init(struct learn_prep *p, const struct learn_in *in,
    const struct dataset *ret)
{
	const struct deviced_conf *cf = in->cf;
	const struct dataset *local = in->local;
	size_t n = local->n, nr = 0, *all, *ok;
	int64_t t_end = INT64_MIN;

	memset(p, 0, sizeof(*p));
	p->in = in;
	p->ret = ret;
	dataset_init(&p->work);
	p->n = n;
	p->one_user = 1;
	all = xcalloc(n + 1, sizeof(size_t));
	for (size_t i = 0; i < n; i++) {
		all[i] = i;
		if (local->s[i].ts > t_end)
			t_end = local->s[i].ts;
		if (local->s[i].user != local->s[0].user)
			p->one_user = 0;
	}
	dataset_append_subset(&p->work, local, all, n);
	/*
	 * CoDA's time filter: nothing dated after the local window reaches
	 * training (the pool holds other users' later samples too).
	 */
	ok = xcalloc(ret->n + 1, sizeof(size_t));
	for (size_t i = 0; i < ret->n; i++)
		if (ret->s[i].ts <= t_end)
			ok[nr++] = i;
	p->nlate = ret->n - nr;
	/* CoDA fine filtering, when some method of the job uses it. */
	if (nr > 0 && n > 0 && (cf->coda || in->need_coda))
		coda_filter(p, ok, nr);
	free(ok);
	free(all);
	p->work.n_users = local->n_users;
	p->weight = xcalloc(p->work.n + 1, sizeof(float));
	p->y = xcalloc(p->work.n + 1, sizeof(float));
	for (size_t i = 0; i < p->work.n; i++) {
		p->weight[i] = i < n ? 1.0f : (float)cf->coda_weight;
		p->y[i] = p->work.s[i].label >= 0.5f;
	}
	/*
	 * The cloud model's loss on each local sample: the CV baseline. The
	 * cloud model is shared by the devices of this deviced (device.c):
	 * its scratch buffers are not this job's, so a view of it runs it.
	 */
	p->loss0 = xcalloc(n + 1, sizeof(float));
	p->p0 = xcalloc(n + 1, sizeof(float));
	if (n > 0) {
		uint32_t *li = xcalloc(n, sizeof(uint32_t));
		for (size_t i = 0; i < n; i++)
			li[i] = (uint32_t)i;
		ctr_logits(path_wv(p), &p->work, li, n, p->p0);
		for (size_t i = 0; i < n; i++) {
			double z = p->p0[i];
			p->loss0[i] = (float)bce_logit(z, p->y[i]);
			p->p0[i] = (float)(1 / (1 + exp(-z)));
		}
		free(li);
	}
}

void
learn_prep_fini(struct learn_prep *p)
{
	dataset_fini(&p->work);
	free(p->weight);
	free(p->y);
	free(p->loss0);
	free(p->p0);
	free(p->trunk);
	free(p->zb);
	ctr_free(p->w);
	ctr_free(p->wv);
	memset(p, 0, sizeof(*p));
}

/* How method m's paths compute on p. */
static int
mode_of(struct learn_prep *p, const struct method *m)
{
	if (m->adapt == ADAPT_FT || p->in->reference ||
	    ctr_trunk_dim(p->in->model) == 0 ||
	    path_bias_row(p->in->model, 0) == NULL)
		return MODE_FULL;
	if (m->adapt == ADAPT_BIAS && !m->coda && p->one_user)
		return MODE_BIAS;
	return MODE_TRUNK;
}

/*
 * A setting not chosen by this device's CV (pick): the default grid
 * point, or the cloud's choice for m (in->fed; its default when the cloud
 * has none or its grid is not this device's). *fed: 1 the cloud's, -1
 * its default, 0 no PICK_FED.
 */
static int
pick_index(const struct learn_prep *p, const struct method *m, int pick,
    const struct grid *g, int *fed)
{
	int s = LEARN_GRID_DEF;
	double lr;
	int steps;

	*fed = 0;
	if (pick == PICK_FED) {
		*fed = -1;
		if (fedsel_dev_find(p->in->fed, m->name, &lr, &steps) == 0)
			for (int k = 0; k < GRID_N; k++)
				if (g->lr[k / GRID_ST] == lr &&
				    g->steps[k % GRID_ST] == steps) {
					s = k;
					*fed = 1;
				}
	}
	return s;
}

/* The pick into ch; with the CV done (cv), the guard's figures become
 * that point's. */
static void
pick_point(const struct learn_prep *p, const struct method *m, int pick,
    const struct grid *g, struct learn_choice *ch, int cv)
{
	const struct learn_grid *gr = &ch->grid;
	int fed, s = pick_index(p, m, pick, g, &fed);

	if (pick == PICK_FED)
		ch->fed = fed;
	ch->lr = ch->pick_lr = g->lr[s / GRID_ST];
	ch->steps = ch->pick_steps = g->steps[s % GRID_ST];
	if (cv && ch->alive[s] && gr->n > 0) {
		double nn = (double)gr->n, mu = gr->gain[s] / nn;
		double var = gr->sq[s] / nn - mu * mu;
		ch->gain = mu;
		ch->se = sqrt((var > 0 ? var : 0) / nn);
		ch->rank = gr->rank[s];
	} else if (cv) {	/* the point diverged: no evidence for it */
		ch->gain = ch->se = ch->rank = 0;
	}
	if (cv)		/* the nested validation of this choice */
		ch->nested = ch->nested_at[s];
}

/*
 * The adopted model of a fit that ended on pa: a fine-tune's working copy
 * itself (path_w makes another when a later path needs one), or a view
 * of the cloud model with the per-user rows the fit trained.
 */
static struct ctr *
result_of(struct learn_prep *p, struct path *pa)
{
	struct ctr *c;

	if (pa->c == p->w && pa->sel == CTR_SEL_ALL) {
		c = p->w;
		p->w = NULL;
		ctr_untrack(c);
		return c;
	}
	c = ctr_view_of(p->in->model);
	if (pa->mode == MODE_BIAS)
		*path_bias_row(c, p->work.s[0].user) = pa->bias;
	else
		(void)ctr_copy_params_sel(c, pa->c, pa->sel);
	return c;
}

/* Every parameter of c in one buffer (the memo's copy of a fit). */
static float *
params_of(const struct ctr *c)
{
	float *b = xmalloc(ctr_num_params(c) * sizeof(float));
	size_t off = 0;

	for (int i = 0; i < ctr_num_tensors(c); i++) {
		const struct param_tensor *t = ctr_tensor_at(c, i);
		memcpy(b + off, t->data, t->n * sizeof(float));
		off += t->n;
	}
	return b;
}

/*
 * Runs one method; returns the model to serve: a new model, or NULL for
 * the cloud model when nothing is adopted. *ch, *secs and *mem (bytes of
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
run1(struct learn_prep *p, const struct method *m, int pick, double pw,
    struct learn_memo *mm, struct learn_choice *ch, double *secs, double *mem)
{
	const struct learn_in *in = p->in;
	const struct deviced_conf *cf = in->cf;
	struct path pa = { NULL, MODE_FULL, m->adapt == ADAPT_FT ?
	    CTR_SEL_ALL : m->adapt == ADAPT_BIAS ? CTR_SEL_BIAS_ONLY :
	    CTR_SEL_METAPATCH_ONLY, 0, 0 };
	struct memo_ent *e = NULL;
	struct memo_fit *fit;
	struct ctr *c = NULL;
	struct grid g;
	uint32_t *tr = NULL;
	float *y = NULL, *off = NULL, *wt = NULL;
	double t0 = now(), reused = 0, t1;
	size_t nt;
	int rc, pw_fed;

	pa.pair = pair_at(p, m, pw, &pw_fed);
	memset(ch, 0, sizeof(*ch));
	ch->alpha = 1;
	ch->pair_w = pa.pair;
	ch->pw_fed = pw_fed;
	*mem = (double)ctr_num_params(in->model) * 4;
	if (m->adapt == ADAPT_NONE || p->n == 0)
		goto done;
	*mem += (double)ctr_num_params(in->model) * 4 +
	    (double)p->work.n * sizeof(struct sample);
	cv_grid(cf, m->adapt, &g);
	pa.mode = mode_of(p, m);
	e = memo_get(mm, p, m, pa.pair);
	/*
	 * Paths start from the cloud model: the rest of the working model
	 * must be it. What trains only per-user rows runs on the view (the
	 * partial steps' checkpoints copy a whole buffer: not of a view).
	 */
	if (pa.mode == MODE_FULL || SEL_PARTIAL(m->sel)) {
		pa.c = path_w(p);
		path_w_clean(p);
	} else {
		pa.c = path_wv(p);
		path_wv_clean(p);
	}
	if (pa.mode == MODE_TRUNK)
		path_need_trunk(p);
	else if (pa.mode == MODE_BIAS)
		path_need_zb(p);
	if (m->sel == SEL_FIXED || (pick && m->sel == SEL_CV)) {
		/* No CV: a fixed setting, or one chosen elsewhere. */
		ch->lr = g.lr[1];
		ch->steps = g.steps[GRID_ST - 1];
		if (pick)
			pick_point(p, m, pick, &g, ch, 0);
	} else {
		if (e != NULL && e->have_cv) {
			rc = e->cv_rc;
			*ch = e->cv;
			ch->pw_fed = pw_fed;	/* the memo's may be a row's */
			reused += e->cv_secs;
		} else {
			/*
			 * A guarded pick without a memo (no report or
			 * evaluation wants the grid): the guard reads only
			 * the picked point, so only its path is trained.
			 */
			int fed, only = pick && m->sel == SEL_GUARD &&
			    mm == NULL ? pick_index(p, m, pick, &g, &fed) : -1;
			/*
			 * The mixture's evidence and the recalibration
			 * (every pair of held-out samples at each weight)
			 * only for a row that serves them, or when an
			 * evaluation or report may read this CV again.
			 */
			int want_mix = SEL_MIXING(m->sel) || rows_cal(m) ||
			    mm != NULL;
			t1 = now();
			rc = cv_select(p, m, &g, &pa, only, want_mix, ch);
			if (e != NULL) {
				e->have_cv = 1;
				e->cv_rc = rc;
				e->cv = *ch;
				e->cv_secs = now() - t1;
			}
		}
		if (pick)	/* without evidence for the point: refused */
			pick_point(p, m, pick, &g, ch, 1);
		if (SEL_MIXING(m->sel)) {
			/* The weight a of the mixture, by the same CV. */
			int k;
			if (rc != 0 || !ch->mix.have)
				goto done;
			k = mix_choose(&ch->mix, m->sel == SEL_MIXR ?
			    MIX_BY_RANK : MIX_BY_GAIN, &ch->gain, &ch->se);
			ch->rank = ch->mix.rank[k];
			ch->alpha = mix_alpha[k];
			ch->mixed = 1;
			if (k == 0 || (m->sel != SEL_MIXCV &&
			    (p->n < (size_t)cf->guard_min_n ||
			    !(ch->gain - cf->guard_z * ch->se > 0) ||
			    (cf->guard_rank && !(ch->rank > 0)))))
				goto done;
		} else if (rc != 0) {
			/* No evidence: the unguarded row takes the base
			 * setting. */
			if (SEL_GUARDED(m->sel))
				goto done;
			ch->lr = g.lr[1];
			ch->steps = g.steps[GRID_ST - 1];
			ch->alpha = 1;
		} else if (SEL_GUARDED(m->sel) &&
		    (p->n < (size_t)cf->guard_min_n ||
		    !(ch->gain - cf->guard_z * ch->se > 0)))
			goto done;
		else if (SEL_GUARDED(m->sel) && cf->guard_rank &&
		    m->adapt != ADAPT_BIAS && !(ch->rank > 0))
			goto done;	/* no reordering without ranking evidence */
		else if (SEL_GUARDED(m->sel) && m->adapt != ADAPT_BIAS &&
		    !(ch->mv >= cf->guard_move))
			goto done;	/* moves too little to be worth it */
	}
	/* The chosen setting, trained on every local sample. */
	if ((fit = learn_memo_fit_find(e, ch->lr, ch->steps)) != NULL) {
		reused += fit->secs;
		if (fit->rc == 0) {
			c = ctr_clone(in->model);
			memcpy(ctr_params(c), fit->params,
			    ctr_num_params(c) * sizeof(float));
		}
		ch->adopted = fit->rc == 0;
		goto done;
	}
	t1 = now();
	tr = xcalloc(p->work.n + 1, sizeof(uint32_t));
	y = xcalloc(p->work.n + 1, sizeof(float));
	off = xcalloc(p->work.n + 1, sizeof(float));
	nt = cv_train_set(p, m, 0, 0, tr);
	path_targets(p, m, tr, nt, y, off);
	wt = xcalloc(p->work.n + 1, sizeof(float));
	recency_weights(p->weight, p->work.n, tr, nt, p->n, rows_rec(m), wt);
	path_reset(p, &pa);
	rc = path_sgd(p, &pa, tr, nt, y, wt, off, ch->lr, &ch->steps, 1,
	    (uint64_t)cf->seed, NULL, NULL);
	if (rc == 0 && !path_finite(p, &pa, tr, nt))
		rc = -ERANGE;
	ch->adopted = rc == 0;
	if (ch->adopted)
		c = result_of(p, &pa);
	if (e != NULL && e->nfit < MEMO_FITS &&
	    (rc != 0 || mm->kept < MEMO_KEPT)) {
		fit = &e->fit[e->nfit++];
		fit->lr = ch->lr;
		fit->steps = ch->steps;
		fit->rc = rc;
		fit->secs = now() - t1;
		if (rc == 0) {
			mm->kept++;
			fit->params = params_of(c);
		}
	}
done:
	ch->calibrated = ch->adopted && ch->cal_have && rows_cal(m) &&
	    !ch->mixed;
	if (!ch->adopted) {
		ctr_free(c);
		c = NULL;	/* the cloud model */
	} else if (ch->alpha < 1 && !ch->mixed) {	/* the partial step */
		if (ctr_params(c) == NULL) {	/* a view: one buffer first */
			struct ctr *f = ctr_clone(c);
			ctr_free(c);
			c = f;
		}
		(void)partial_mix(c, in->model, ctr_params(c), ch->alpha,
		    pa.sel);
	}
	*secs = now() - t0 + reused;
	free(tr);
	free(y);
	free(off);
	free(wt);
	return c;
}

/*
 * run1, then for a method with the fallback, when its guard keeps the
 * cloud model: the per-user bias alone under the same guard (it moves
 * calibration only, never the order of one user's items).
 */
static struct ctr *
run(struct learn_prep *p, const struct method *m, int pick,
    struct learn_memo *mm, struct learn_choice *ch, double *secs, double *mem)
{
	struct method b = { "bias", ADAPT_BIAS, LC_NONE, 0, 0, SEL_GUARD, 0,
		0 };
	const char *ws = rows_win_suffix(m->name);
	char bn[32];
	struct ctr *c = run1(p, m, pick, -1, mm, ch, secs, mem);
	struct learn_grid g0;
	int fed = ch->fed, ps = ch->pick_steps, pwf = ch->pw_fed;
	double s2, m2, pl = ch->pick_lr, pw = ch->pair_w;

	if (ch->adopted || !m->fb || m->adapt == ADAPT_NONE)
		return c;
	g0 = ch->grid;
	if (ws != NULL) {	/* the fallback fits in the same window */
		(void)snprintf(bn, sizeof(bn), "bias%s", ws);
		b.name = bn;
	}
	c = run1(p, &b, PICK_NONE, -1, mm, ch, &s2, &m2);
	*secs += s2;
	ch->fallback = ch->adopted;
	ch->grid = g0;		/* what the method itself reports */
	ch->fed = fed;
	ch->pick_lr = pl;
	ch->pick_steps = ps;
	ch->pair_w = pw;
	ch->pw_fed = pwf;
	return c;
}

struct ctr *
learn_method_run(struct learn_prep *p, const char *name,
    struct learn_memo *memo, struct learn_choice *ch, double *secs,
    double *mem)
{
	struct method tmp;
	int pick;
	const struct method *m = rows_find(name, &tmp, &pick);
	struct ctr *c;

	if (m == NULL)
		return NULL;
	c = run(p, m, pick, memo, ch, secs, mem);
	return c != NULL ? c : ctr_clone(p->in->model);
}

int
learn_method_grid(struct learn_prep *p, const char *name, double pw,
    struct learn_memo *memo, struct learn_grid *g)
{
	struct method tmp;
	int pick;
	const struct method *m = rows_find(name, &tmp, &pick);
	struct learn_choice ch;
	struct ctr *c;
	double secs, mem;

	if (strcmp(name, "serve") == 0) {
		(void)rows_serve(p->in->cf, &tmp);
		m = &tmp;
	}
	if (m == NULL)
		return -1;
	/* The grid of its own CV (a "-def"/"-fed" name: its method's). */
	c = run1(p, m, PICK_NONE, pw, memo, &ch, &secs, &mem);
	ctr_free(c);
	*g = ch.grid;
	return 0;
}

void
learn_run(const struct learn_in *in, struct learn_prep *p,
    struct learn_memo *memo, struct learn_result *r)
{
	const struct deviced_conf *cf = in->cf;
	struct method serve;
	int pick;
	struct learn_choice ch, tch;
	struct ctr *c, *tc = NULL;
	const struct ctr *up;
	double secs, mem;
	double t0 = now();

	memset(r, 0, sizeof(*r));
	pick = rows_serve(cf, &serve);
	learn_prep_init(p, in, in->retrieved);
	r->kept = p->nkept;
	c = run(p, &serve, pick, memo, &ch, &secs, &mem);
	/*
	 * What goes up is the user's m rows on the frozen cloud model, the
	 * only part of a device model the cloud takes (MoMoDistill's
	 * teacher). A fine-tuned model's rows were trained with every other
	 * weight, which stays here, so alone they are not that model: with
	 * fine-tuning the job also fits the guarded MetaPatch (the
	 * "metapatch" row, its own CV) for the upload. Kept out, the upload
	 * is the cloud's own rows, which distillation skips. With
	 * learn.select = fed its setting is the cloud's too (its choice for
	 * "metapatch", else the default point), guarded by its own CV.
	 */
	if (serve.adapt == ADAPT_FT) {
		tc = run(p, rows_get("metapatch"), pick, memo, &tch, &secs, &mem);
		r->taught = tch.adopted;
		up = tc;
	} else {
		r->taught = ch.adopted && !ch.fallback &&
		    serve.adapt == ADAPT_MP;
		up = c;
	}
	/* Mean local logloss of the cloud model, and the CV estimate after. */
	for (size_t i = 0; i < p->n; i++)
		r->val_before += p->loss0[i] / (double)p->n;
	r->adopted = ch.adopted;
	r->fallback = ch.fallback;
	r->val_after = r->val_before - (ch.adopted ? ch.gain : 0);
	r->lr = ch.adopted ? ch.lr : 0;
	r->steps = ch.adopted ? ch.steps : 0;
	r->cv_gain = ch.gain;
	r->fed = ch.fed;
	r->pick_lr = ch.pick_lr;
	r->pick_steps = ch.pick_steps;
	r->pair_w = ch.pair_w;
	r->pw_fed = ch.pw_fed;
	if (ctr_io_patch_get(up != NULL ? up : in->model, in->user, &r->patch,
	    &r->n_patch) != 0) {
		r->rc = -EINVAL;
		snprintf(r->err, sizeof(r->err), "the model has no MetaPatch");
	}
	if (in->want_serving && c == NULL)
		c = ctr_view_of(in->model);	/* the cloud model */
	if (in->want_serving)
		r->serving = c;	/* the app ranks with it (app.c) */
	else
		ctr_free(c);
	ctr_free(tc);
	r->secs = now() - t0;
}

void
learn_result_fini(struct learn_result *r)
{
	ctr_free(r->serving);
	ctr_io_tensors_free(r->patch, r->n_patch);
	r->serving = NULL;
	r->patch = NULL;
	r->n_patch = 0;
}
