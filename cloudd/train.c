/*
 * train: cloud training of the global CTR model on the pool, in the
 * threadpool. The job works on its own copy of the pool snapshot, trains
 * with Adam and early stopping on a validation slice (the last val-frac of
 * each user's pool samples, shared/ml/README.md), measures validation metrics, packs
 * the model with its r_g (share of positives in the training samples),
 * computes the pool's representation vectors and retrieval index for the
 * new version, and commits model and vectors on a connection of its own.
 * The loop then publishes the version (announce on PUB) and swaps the pool
 * snapshot. One training job at a time; SIGTERM stops it between batches.
 * Another model step (MoMoDistill, distill.c) plugs in as a struct
 * train_step: its fit produces the model from the current one, and the
 * storing, indexing and publishing below are shared. A fit that keeps the
 * current model (TRAIN_KEPT) skips all of them. train.c names no step but
 * its own.
 */
#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloudd/cloudd.h"
#include "cloudd/encoder_train.h"
#include "cloudd/ofa_train.h"
#include "cloudd/train_model.h"
#include "shared/clock.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/ml/encoder_io.h"
#include "shared/ml/calib.h"
#include "shared/ml/item_prior.h"
#include "shared/numlist.h"
#include "shared/data/dataset.h"
#include "shared/log.h"
#include "shared/ml/metrics.h"
#include "shared/xmalloc.h"

struct train_job {
	uv_work_t		 w;
	struct cloudd		*cd;
	struct pool		*src;		/* ref held; read only */
	struct pool		*np;		/* the new snapshot */
	struct cloudd_conf	 cf;
	uint32_t		 epochs;
	uint64_t		 parent;
	char			*dbpath;
	atomic_int		*stop;
	uint8_t			*blob;
	size_t			 size;
	struct store_model_info	 mi;
	struct enc		*enc;		/* encoder_train.c */
	enum enc_mode		 enc_mode;
	const struct train_step *step;	/* NULL = plain training */
	void			*arg;		/* the step's job, owned */
	struct ofa_result	 ofa;		/* Forward-OFA (ofa_train.c) */
	int			 rc;
	char			 err[256];
	double			 seconds, val_auc, val_gauc, val_loss;
};

/* One line per learning rate of the grid. */
static void
fit_log(const struct train_fit *fit, int rc)
{
	for (int k = 0; k < fit->n; k++)
		log_info("TRAIN: lr %g: %d epochs (best %d), val logloss %.4f "
		    "GAUC %.4f%s", fit->lr[k], fit->st[k].epochs,
		    fit->st[k].best_epoch, fit->val_loss[k], fit->val_gauc[k],
		    fit->n > 1 && k == fit->chosen && rc == 0 ? " (kept)" : "");
}

/*
 * train.item-prior: *m (trained with the prior at 0) gets the prior's
 * weight of best validation GAUC and the recalibration, or at weight 0 is
 * shipped without the prior (train_model_finish). Returns 0 or an error.
 */
static int
with_prior(struct train_job *j, struct ctr **m, const struct dataset *ds,
    const uint32_t *tri, size_t ntr, const uint32_t *vai, size_t nva)
{
	double pw[TRAIN_PRIOR_WMAX];
	struct train_prior p;
	int n, rc;

	if (numlist_parse(j->cf.prior_weights, pw, TRAIN_PRIOR_WMAX, 0, 100,
	    &n, j->err, sizeof(j->err)) != 0) {
		log_warnx("TRAIN: train.item-prior-weights: %s; no prior",
		    j->err);
		j->err[0] = '\0';
		n = 0;
	}
	rc = train_model_finish(m, ds, tri, ntr, vai, nva, pw, n, &p);
	log_info("TRAIN: item prior weight %g (validation GAUC %.4f, at 0 "
	    "%.4f)", p.w, p.g, p.g0);
	if (p.w != 0)
		log_info("TRAIN: recalibrated on validation: logit' = %.4f "
		    "logit %+.4f", p.a, p.b);
	return rc;
}

static void
progress(void *arg, int epoch, double loss, double val_loss)
{
	(void)arg;
	log_info("TRAIN: epoch %d train logloss %.4f val logloss %.4f", epoch,
	    loss, val_loss);
}

static uint32_t *
to_u32(const struct dataset_idx *x)
{
	uint32_t *v = xcalloc(x->n + 1, sizeof(*v));

	for (size_t i = 0; i < x->n; i++)
		v[i] = (uint32_t)x->v[i];
	return v;
}

static void
val_metrics(struct train_job *j, struct ctr *m, const struct dataset *ds,
    const uint32_t *val, size_t n)
{
	float *p = xcalloc(n + 1, sizeof(float));
	float *y = xcalloc(n + 1, sizeof(float));
	uint32_t *u = xcalloc(n + 1, sizeof(uint32_t));
	size_t used = 0;

	ctr_predict(m, ds, val, n, p);
	for (size_t i = 0; i < n; i++) {
		y[i] = ds->s[val[i]].label;
		u[i] = ds->s[val[i]].user;
	}
	j->val_loss = metrics_logloss(p, y, n);
	j->val_auc = metrics_auc(p, y, n);
	j->val_gauc = metrics_gauc(p, y, u, n, ds->n_users, &used, NULL,
	    NULL);
	free(p);
	free(y);
	free(u);
}

static void
train_work_cb(uv_work_t *w)
{
	struct train_job *j = w->data;
	const struct dataset *ds = &j->src->ds;
	struct dataset_idx all, tr, va;
	struct ctr_config cfg;
	struct ctr_train_opts o;
	struct ctr_train_stats stats;
	struct ctr_meta meta;
	struct ctr *m = NULL;
	struct store *st = NULL;
	struct store_model_info last;
	uint32_t *tri = NULL, *vai = NULL;
	double pos = 0, t0 = clock_now(), lrs[TRAIN_LR_MAX];
	struct train_fit fit;
	int nlr = 0;

	memset(&all, 0, sizeof(all));
	memset(&tr, 0, sizeof(tr));
	memset(&va, 0, sizeof(va));
	dataset_idx_all(&all, ds);
	if ((j->rc = dataset_carve_val(&tr, &va, &all, j->cf.val_frac)) != 0) {
		snprintf(j->err, sizeof(j->err), "validation split failed");
		goto done;
	}
	tri = to_u32(&tr);
	vai = to_u32(&va);
	if (j->step != NULL) {
		j->rc = j->step->fit(j->arg, ds, tri, tr.n, vai, va.n, &j->cf,
		    j->dbpath, j->stop, &m, &stats, j->err, sizeof(j->err));
		/* TRAIN_KEPT too: nothing new to store, index or announce. */
		if (j->rc != 0)
			goto done;
		goto trained;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.n_users = ds->n_users;
	cfg.n_items = ds->n_items;
	cfg.n_genres = ds->n_genres;
	cfg.dim = (int)j->cf.dim;
	cfg.hist_k = (int)j->cf.hist_k;
	cfg.hidden[cfg.n_hidden++] = (int)j->cf.hidden1;
	if (j->cf.hidden2 > 0)
		cfg.hidden[cfg.n_hidden++] = (int)j->cf.hidden2;
	cfg.patch_rank = (int)j->cf.patch_rank;
	cfg.interaction = j->cf.interaction;
	cfg.attention = j->cf.attention;
	cfg.n_side = ds->n_side;
	memcpy(cfg.side_card, ds->side_card, sizeof(cfg.side_card));
	if (ctr_config_check(&cfg) != 0) {
		j->rc = -EINVAL;
		snprintf(j->err, sizeof(j->err), "invalid model config");
		goto done;
	}
	/* "" = train.lr alone; a bad grid (a reload) too, with a warning */
	if (train_lr_grid_parse(j->cf.lr_grid, lrs, &nlr, j->err,
	    sizeof(j->err)) != 0) {
		log_warnx("TRAIN: train.lr-grid: %s; using train.lr", j->err);
		j->err[0] = '\0';
		nlr = 0;
	}
	if (nlr == 0) {
		lrs[0] = j->cf.lr;
		nlr = 1;
	}
	ctr_train_opts_default(&o);
	ctr_opt_default(&o.opt, CTR_OPT_ADAM, (float)j->cf.lr);
	o.opt.wd = (float)j->cf.l2;
	o.sel = CTR_SEL_ALL;
	o.epochs = j->epochs ? (int)j->epochs : (int)j->cf.epochs;
	o.batch = (int)j->cf.batch;
	o.patience = (int)j->cf.patience;
	o.seed = (uint64_t)j->cf.seed;
	o.stop = j->stop;
	o.progress = progress;
	log_info("TRAIN: %zu train / %zu val samples, %d epochs, %d "
	    "learning rate(s)", tr.n, va.n, o.epochs, nlr);
	cfg.item_prior = j->cf.item_prior;
	j->rc = train_model_fit(&m, &cfg, (uint64_t)j->cf.seed, ds, tri, tr.n,
	    vai, va.n, &o, lrs, nlr, &fit);
	fit_log(&fit, j->rc);
	if (j->rc == 0 && cfg.item_prior)
		j->rc = with_prior(j, &m, ds, tri, tr.n, vai, va.n);
	if (j->rc == 0) {
		stats = fit.st[fit.chosen];
		log_info("TRAIN: %zu params, lr %g", ctr_num_params(m),
		    fit.lr[fit.chosen]);
	}
	if (j->rc != 0) {
		snprintf(j->err, sizeof(j->err), "%s", j->rc == -ECANCELED ?
		    "stopped" : "training diverged or failed");
		goto done;
	}
trained:
	for (size_t i = 0; i < tr.n; i++)
		pos += ds->s[tri[i]].label;
	if (va.n > 0)
		val_metrics(j, m, ds, vai, va.n);
	/* After the metrics: it changes only the OOV rows. */
	if (j->cf.encoder)
		encoder_train(m, ds, tri, tr.n, vai, va.n, &j->cf, j->stop,
		    &j->enc, &j->enc_mode);

	if ((j->rc = store_open(&st, j->cf.store, j->dbpath,
	    (int)j->cf.busy_ms, j->err, sizeof(j->err))) != 0)
		goto done;
	memset(&meta, 0, sizeof(meta));
	meta.version = j->parent + 1;
	if (store_model_info(st, 0, &last) == 0 && last.version >= meta.version)
		meta.version = last.version + 1;
	meta.parent = j->parent;
	meta.global_ctr = tr.n ? pos / tr.n : 0;
	meta.created = time(NULL);
	snprintf(meta.metrics[0].name, CTR_IO_METRIC_NAME, "val_logloss");
	meta.metrics[0].value = j->val_loss;
	snprintf(meta.metrics[1].name, CTR_IO_METRIC_NAME, "val_auc");
	meta.metrics[1].value = j->val_auc;
	snprintf(meta.metrics[2].name, CTR_IO_METRIC_NAME, "val_gauc");
	meta.metrics[2].value = j->val_gauc;
	snprintf(meta.metrics[3].name, CTR_IO_METRIC_NAME, "epochs");
	meta.metrics[3].value = stats.epochs;
	meta.n_metrics = 4;
	if (j->step != NULL)
		j->step->meta(j->arg, &meta);
	if ((j->rc = ctr_io_pack(m, &meta, &j->blob, &j->size)) != 0) {
		snprintf(j->err, sizeof(j->err), "%s", ctr_io_strerror(j->rc));
		goto done;
	}
	if (j->enc != NULL && (j->rc = encoder_io_attach(&j->blob, &j->size,
	    j->enc, j->enc_mode)) != 0) {
		snprintf(j->err, sizeof(j->err), "%s", ctr_io_strerror(j->rc));
		goto done;
	}
	memset(&j->mi, 0, sizeof(j->mi));
	j->mi.version = meta.version;
	j->mi.parent = meta.parent;
	j->mi.created = meta.created;
	j->mi.size = j->size;
	j->mi.global_ctr = meta.global_ctr;
	crypto_generichash(j->mi.checksum, 32, j->blob, j->size, NULL, 0);

	/* The new snapshot: same samples, vectors of the new model. */
	j->np = pool_snapshot(j->src, all.v, all.n);
	if ((j->rc = store_model_put(st, &j->mi, j->blob, j->size)) != 0) {
		snprintf(j->err, sizeof(j->err), "%s", store_errmsg(st));
		goto done;
	}
	j->rc = pool_index(j->np, m, st, meta.version, &j->cf, j->err,
	    sizeof(j->err));
	/* Before the version is announced, so its OFA part is there. */
	if (j->rc == 0)
		ofa_train_run(&j->ofa, &j->cf, m, ds, tri, tr.n, vai, va.n,
		    meta.version, st, j->stop);
done:
	j->seconds = clock_now() - t0;
	store_close(st);
	ctr_free(m);
	enc_free(j->enc);
	j->enc = NULL;
	free(tri);
	free(vai);
	dataset_idx_fini(&all);
	dataset_idx_fini(&tr);
	dataset_idx_fini(&va);
}

static void
train_after_cb(uv_work_t *w, int status)
{
	struct train_job *j = w->data;
	struct cloudd *cd = j->cd;
	int res;	/* for step->done: 0, TRAIN_KEPT or < 0 */

	if (status != 0)
		res = -ECANCELED;
	else if (j->rc == TRAIN_KEPT && j->step != NULL)
		res = TRAIN_KEPT;
	else
		res = j->rc > 0 ? -EIO : j->rc;

	job_end(&cd->job, 1);
	cd->training = 0;
	pool_unref(cd, j->src);
	cd->last_train_s = j->seconds;
	if (res == TRAIN_KEPT) {
		/* The served model, snapshot and OFA part stay as they are. */
		j->step->log(j->arg, j->parent, 1);
	} else if (res != 0) {
		log_warnx("%s: no new model: %s", j->step ? j->step->name :
		    "TRAIN",
		    status ? "cancelled" : j->err);
		pool_free(j->np);
		free(j->blob);
	} else {
		log_info("TRAIN: model v%llu in %.1f s: val logloss %.4f AUC "
		    "%.4f GAUC %.4f, r_g %.4f", (unsigned long long)
		    j->mi.version, j->seconds, j->val_loss, j->val_auc,
		    j->val_gauc, j->mi.global_ctr);
		if (j->step != NULL)
			j->step->log(j->arg, j->mi.version, 0);
		ofa_train_done(cd, &j->ofa);
		model_publish(cd, &j->mi, j->blob, j->size);
		pool_unref(cd, cd->pool);
		cd->pool = j->np;
	}
	if (j->step != NULL)
		j->step->done(cd, j->arg, res);
	ofa_result_fini(&j->ofa);
	free(j);
	job_idle(&cd->job);
}

int
train_start(struct cloudd *cd, uint32_t epochs)
{
	return train_queue(cd, epochs, NULL, NULL);
}

int
train_queue(struct cloudd *cd, uint32_t epochs, const struct train_step *step,
    void *arg)
{
	struct train_job *j;

	if (cd->training || cd->pool_loading) {
		if (step != NULL)
			step->free(arg);
		return -EBUSY;
	}
	if (cd->pool == NULL || cd->pool->ds.n == 0) {
		if (step != NULL)
			step->free(arg);
		return -ENOENT;
	}
	j = xcalloc(1, sizeof(*j));
	j->cd = cd;
	j->src = cd->pool;
	cd->pool->refs++;
	j->cf = cd->cf;
	j->epochs = epochs;
	j->parent = cd->model.version;
	j->dbpath = cd->dbpath;
	j->stop = &cd->stop;
	j->w.data = j;
	j->step = step;
	j->arg = arg;
	cd->training = 1;
	job_begin(&cd->job);
	log_info("%s: started on %zu pool samples (base v%llu)", step ?
	    step->name : "TRAIN", cd->pool->ds.n,
	    (unsigned long long)cd->model.version);
	return uv_queue_work(&cd->loop, &j->w, train_work_cb, train_after_cb);
}
