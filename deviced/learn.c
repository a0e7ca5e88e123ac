/*
 * learn: a device's personalization job, run in the threadpool. It reads
 * the device's local samples, the retrieved pool samples and the
 * downloaded cloud model (the loop leaves them alone while the device is
 * in DEV_TRAIN) and produces the patch to upload.
 *
 * A method is one path through the stages (README, "Device pipeline"):
 *   adapt  none | finetune (all weights) | metapatch (only this user's m)
 *   lc     label correction: none | soft (the paper's) | offset (hard
 *          labels + a fixed logit offset, dropped when scoring)
 *   coda   add the retrieved samples the personalized filter keeps
 *   guard  adopt only if the local validation loss beats the cloud model's
 *          by learn.margin; otherwise keep serving the cloud model
 * The local samples are split by time: the last learn.val-frac is the
 * validation slice (early stopping and the guard); the rest trains.
 *
 * The configured method (learn.adapt, learn.lc, learn.coda) is what the
 * device serves and uploads. With deviced.eval-dir set, the device also
 * runs every method of deviced.eval-methods and writes its held-out test
 * predictions to <eval-dir>/<device>.csv (method,user,item,label,score)
 * and per-method costs to <eval-dir>/<device>.extra (method,column,value).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deviced/app.h"
#include "deviced/deviced.h"
#include "deviced/label_correct.h"
#include "deviced/ofa_dev.h"
#include "deviced/sample_filter.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/data/dataset.h"
#include "shared/log.h"
#include "shared/ml/metrics.h"
#include "shared/xmalloc.h"

enum { ADAPT_NONE = 0, ADAPT_MP, ADAPT_FT };

struct method {
	const char	*name;
	int		 adapt, lc, coda, guard;
	int		 users;		/* CoDA set retrieved by similar users */
};

/* The evaluation rows; "naive-ft" is plain fine-tuning as in the papers. */
static const struct method methods[] = {
	{ "cloud",	ADAPT_NONE, LC_NONE,	0, 0, 0 },
	{ "naive-ft",	ADAPT_FT,   LC_NONE,	0, 0, 0 },
	{ "ft-guard",	ADAPT_FT,   LC_NONE,	0, 1, 0 },
	{ "ft-lc",	ADAPT_FT,   LC_SOFT,	0, 1, 0 },
	{ "ft-lcoff",	ADAPT_FT,   LC_OFFSET,	0, 1, 0 },
	{ "ft-lc-coda",	ADAPT_FT,   LC_SOFT,	1, 1, 0 },
	{ "ft-coda",	ADAPT_FT,   LC_NONE,	1, 1, 0 },
	{ "metapatch",	ADAPT_MP,   LC_NONE,	0, 1, 0 },
	{ "mp-lc-coda",	ADAPT_MP,   LC_SOFT,	1, 1, 0 },
	{ "ft-coda-u",	ADAPT_FT,   LC_NONE,	1, 1, 1 },
	{ "mp-lc-coda-u", ADAPT_MP, LC_SOFT,	1, 1, 1 },
	{ NULL, 0, 0, 0, 0, 0 }
};

/* What every method of one job shares. */
struct prep {
	struct dataset	 work;		/* local samples, then kept retrieved */
	struct dataset	 soft;		/* same, local labels soft-corrected */
	float		*offset;	/* work.n: LC_OFFSET logit offsets */
	float		*weight;	/* work.n: 1 local, coda-weight kept */
	uint32_t	*idx;		/* 0..work.n-1 */
	size_t		 n, ntr, nval, nkept;
	double		 r_u, val_base;
	double		 val_auc_base;	/* -1 when the slice has one class */
};

static double val_auc(struct ctr *m, const struct dataset *local,
    const struct prep *p);

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
prepare(struct device *d, struct prep *p, const struct dataset *ret)
{
	const struct deviced_conf *cf = &d->dd->cf;
	size_t n = d->local.n, nr = ret->n, *all;
	struct lc_opts lo = { LC_SOFT, d->global_ctr, (size_t)cf->lc_min_n,
		cf->lc_prior };
	float *y, *ys;

	memset(p, 0, sizeof(*p));
	dataset_init(&p->work);
	dataset_init(&p->soft);
	p->n = n;
	p->nval = (size_t)(cf->val_frac * (double)n + 0.5);
	if (p->nval == 0 && n >= 2)
		p->nval = 1;
	p->ntr = n - p->nval;
	all = xcalloc(n + nr + 1, sizeof(size_t));	/* identity indices */
	for (size_t i = 0; i < n + nr; i++)
		all[i] = i;
	dataset_append_subset(&p->work, &d->local, all, n);
	/* CoDA fine filtering over the model's sample representations. */
	if (nr > 0 && n > 0) {
		int dim = ctr_repr_dim(d->model);
		float *L = xcalloc(n * dim, sizeof(float));
		float *R = xcalloc(nr * dim, sizeof(float));
		float *pr = xcalloc(nr, sizeof(float));
		unsigned char *keep = xcalloc(nr, 1);
		uint32_t *li = xcalloc(n + nr, sizeof(uint32_t));
		struct filt_opts fo;
		size_t *ki = xcalloc(nr, sizeof(size_t));

		for (size_t i = 0; i < n + nr; i++)
			li[i] = (uint32_t)(i < n ? i : i - n);
		ctr_repr(d->model, &d->local, li, n, L);
		ctr_repr(d->model, ret, li + n, nr, R);
		filt_opts_default(&fo);
		fo.rho = cf->coda_rho;
		fo.tau = cf->coda_tau;
		filt_select(L, n, R, nr, dim, &fo, pr, keep);
		for (size_t i = 0; i < nr; i++)
			if (keep[i])
				ki[p->nkept++] = i;
		dataset_append_subset(&p->work, ret, ki, p->nkept);
		free(L); free(R); free(pr); free(keep); free(li); free(ki);
	}
	p->work.n_users = d->local.n_users;
	/* The soft-label copy: same samples; local labels corrected below. */
	dataset_append_subset(&p->soft, &p->work, all, p->work.n);
	free(all);
	/* Label correction from the training part of the local samples. */
	y = xcalloc(n + 1, sizeof(float));
	ys = xcalloc(n + 1, sizeof(float));
	for (size_t i = 0; i < n; i++)
		y[i] = p->work.s[i].label;
	p->offset = xcalloc(p->work.n + 1, sizeof(float));
	p->r_u = lc_apply(&lo, y, p->ntr, ys, NULL);
	for (size_t i = 0; i < p->ntr; i++)
		p->soft.s[i].label = ys[i];
	lo.mode = LC_OFFSET;
	lc_apply(&lo, y, p->ntr, ys, p->offset);
	free(y);
	free(ys);
	p->weight = xcalloc(p->work.n + 1, sizeof(float));
	p->idx = xcalloc(p->work.n + 1, sizeof(uint32_t));
	for (size_t i = 0; i < p->work.n; i++) {
		p->weight[i] = i < n ? 1.0f : (float)cf->coda_weight;
		p->idx[i] = (uint32_t)i;
	}
	p->val_base = 0;
	if (p->nval > 0)
		ctr_eval_logloss(d->model, &d->local, p->idx + p->ntr, p->nval,
		    &p->val_base);
	p->val_auc_base = val_auc(d->model, &d->local, p);
}

/* AUC of m on the validation slice; -1 when it lacks a class. */
static double
val_auc(struct ctr *m, const struct dataset *local, const struct prep *p)
{
	float *s, *y;
	double a;

	if (p->nval < 2)
		return -1;
	s = xcalloc(p->nval, sizeof(float));
	y = xcalloc(p->nval, sizeof(float));
	ctr_predict(m, local, p->idx + p->ntr, p->nval, s);
	for (size_t i = 0; i < p->nval; i++)
		y[i] = local->s[p->ntr + i].label >= 0.5f;
	a = metrics_auc(s, y, p->nval);
	free(s);
	free(y);
	return a == a ? a : -1;	/* NAN: one class only */
}

static void
prep_fini(struct prep *p)
{
	dataset_fini(&p->work);
	dataset_fini(&p->soft);
	free(p->offset);
	free(p->weight);
	free(p->idx);
}

/*
 * Runs one method; returns the model to serve (a new model, or a clone of
 * the cloud model when nothing is adopted). *adopted, *val_after, *secs
 * and *mem (bytes of model, gradients, optimizer state and samples) out.
 */
static struct ctr *
run(struct device *d, const struct prep *p, const struct method *m,
    int *adopted, double *val_after, double *secs, double *mem)
{
	const struct deviced_conf *cf = &d->dd->cf;
	struct ctr *c = ctr_clone(d->model);
	struct ctr_train_opts o;
	struct ctr_train_stats st;
	const struct dataset *ds = m->lc == LC_SOFT ? &p->soft : &p->work;
	uint32_t *tr = NULL;
	size_t ntr = 0;
	double t0 = now();
	int rc;

	*adopted = 0;
	*val_after = p->val_base;
	*mem = (double)ctr_num_params(c) * 4;
	if (m->adapt == ADAPT_NONE || p->n == 0)
		goto done;
	ctr_train_opts_default(&o);
	o.batch = (int)cf->batch;
	o.seed = (uint64_t)cf->seed;
	o.stop = &d->dd->stop;
	if (m->adapt == ADAPT_FT) {
		ctr_opt_default(&o.opt, CTR_OPT_ADAM, (float)cf->ft_lr);
		o.sel = CTR_SEL_ALL;
		o.epochs = (int)cf->ft_epochs;
	} else {
		ctr_opt_default(&o.opt, CTR_OPT_ADAM, (float)cf->lr);
		o.sel = CTR_SEL_METAPATCH_ONLY;
		o.epochs = (int)cf->epochs;
	}
	*mem += (double)ctr_num_params(c) * 4 * (o.opt.kind == CTR_OPT_ADAM ?
	    3 : 1) + (double)ds->n * sizeof(struct sample);
	if (!m->guard) {
		/* Plain fine-tuning: all local samples, fixed epochs. */
		rc = ctr_train(c, ds, p->idx, p->n, NULL, 0, &o, NULL);
		*adopted = rc == 0;
		goto done;
	}
	tr = xcalloc(p->work.n + 1, sizeof(uint32_t));
	for (size_t i = 0; i < p->ntr; i++)
		tr[ntr++] = (uint32_t)i;
	if (m->coda)
		for (size_t i = p->n; i < p->work.n; i++)
			tr[ntr++] = (uint32_t)i;
	o.weight = p->weight;
	o.offset = m->lc == LC_OFFSET ? p->offset : NULL;
	o.patience = 2;
	if (ntr == 0 || p->nval == 0)
		goto done;
	/* Validation on the true hard labels of the local slice. */
	rc = ctr_train(c, ds, tr, ntr, p->idx + p->ntr, p->nval, &o, &st);
	/*
	 * Adopt only what is better on the validation slice: lower logloss by
	 * the margin and, when the slice has both classes, no lower AUC. Under
	 * drift, fine-tuning fixes calibration (logloss) while it can hurt the
	 * ranking; logloss alone then adopts models that rank worse.
	 */
	if (rc == 0 && st.val_loss < p->val_base - cf->margin &&
	    val_auc(c, &d->local, p) >= p->val_auc_base) {
		*adopted = 1;
		*val_after = st.val_loss;
	}
done:
	if (!*adopted && m->adapt != ADAPT_NONE) {
		ctr_free(c);
		c = ctr_clone(d->model);
	}
	*secs = now() - t0;
	free(tr);
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
		double va, secs, mem, up, down;
		int adopted;
		struct ctr *c;

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
		c = run(d, p, m, &adopted, &va, &secs, &mem);
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
		    m->adapt == ADAPT_MP ? (double)d->b_patch : 0);
		fprintf(x, "%s,device_ms,%.3f\n%s,train_kib,%.1f\n"
		    "%s,bytes_up,%.0f\n%s,bytes_down,%.0f\n%s,adopted,%d\n",
		    m->name, secs * 1e3, m->name, mem / 1024, m->name, up,
		    m->name, down, m->name, adopted);
		fprintf(x, "%s,flops,%.0f\n", m->name, ctr_flops(c));
		ctr_free(c);
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
	struct method serve = { "serve", cf->adapt, cf->lc, cf->coda, 1, 0 };
	struct prep p;
	struct ctr *c;
	double secs, mem;
	double t0 = now();

	d->job_rc = 0;
	prepare(d, &p, &d->retrieved);
	d->kept = p.nkept;
	d->val_before = p.val_base;
	c = run(d, &p, &serve, &d->adopted, &d->val_after, &secs, &mem);
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
	if (d->job_rc == 0 && cf->eval_dir[0] != '\0' && d->test.n > 0)
		evaluate(d, &p);
	prep_fini(&p);
}
