/*
 * learn: a device's personalization job, run in the threadpool. It reads
 * the device's local samples and downloaded cloud model (which the loop
 * leaves alone while the device is in DEV_TRAIN) and produces the patch to
 * upload.
 *
 * MetaPatch: only this user's m vectors are trained, the cloud model stays
 * frozen. The last val-frac of the local samples (by time) is held out;
 * ctr_train keeps the best parameters on it, the initial ones included, so
 * the patch can only be adopted when it does not make the held-out loss
 * worse, and it is adopted only when it beats the cloud model by margin.
 *
 * With eval-dir set, the device also scores its held-out test samples
 * (never trained on) with each method and writes them to
 * <eval-dir>/<device>.csv for scripts/eval.sh: "cloud" (the downloaded
 * model), "naive-ft" (full fine-tuning on all local samples, fixed lr and
 * epochs, no guard) and "metapatch" (the adopted result).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deviced/deviced.h"
#include "shared/ctr.h"
#include "shared/ctr_io.h"
#include "shared/log.h"
#include "shared/xmalloc.h"

static void
write_preds(FILE *f, const char *method, struct ctr *m,
    const struct dataset *ds, const uint32_t *idx, size_t n, float *p)
{
	ctr_predict(m, ds, idx, n, p);
	for (size_t i = 0; i < n; i++) {
		const struct sample *s = &ds->s[idx[i]];
		fprintf(f, "%s,%u,%u,%g,%.9g\n", method, s->user, s->item,
		    s->label, p[i]);
	}
}

static void
evaluate(struct device *d, struct ctr *patched)
{
	const struct deviced_conf *cf = &d->dd->cf;
	size_t n = d->test.n, nl = d->local.n;
	uint32_t *idx = xcalloc(n + nl + 1, sizeof(uint32_t));
	float *p = xcalloc(n + 1, sizeof(float));
	struct ctr *ft = NULL;
	struct ctr_train_opts o;
	char path[1300];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.csv", cf->eval_dir, d->id);
	if ((f = fopen(path, "w")) == NULL) {
		snprintf(d->job_err, sizeof(d->job_err), "%.200s: %s", path,
		    strerror(errno));
		goto done;
	}
	for (size_t i = 0; i < n; i++)
		idx[i] = (uint32_t)i;
	write_preds(f, "cloud", d->model, &d->test, idx, n, p);
	write_preds(f, "metapatch", patched, &d->test, idx, n, p);
	ft = ctr_clone(d->model);
	ctr_train_opts_default(&o);
	ctr_opt_default(&o.opt, CTR_OPT_ADAM, (float)cf->ft_lr);
	o.sel = CTR_SEL_ALL;
	o.epochs = (int)cf->ft_epochs;
	o.batch = (int)cf->batch;
	o.seed = (uint64_t)cf->seed;
	o.stop = &d->dd->stop;
	for (size_t i = 0; i < nl; i++)
		idx[n + i] = (uint32_t)i;
	if (nl > 0)
		ctr_train(ft, &d->local, idx + n, nl, NULL, 0, &o, NULL);
	write_preds(f, "naive-ft", ft, &d->test, idx, n, p);
	if (fclose(f) != 0)
		snprintf(d->job_err, sizeof(d->job_err), "%.200s: write failed",
		    path);
done:
	ctr_free(ft);
	free(idx);
	free(p);
}

void
learn_work_cb(uv_work_t *w)
{
	struct device *d = w->data;
	const struct deviced_conf *cf = &d->dd->cf;
	size_t n = d->local.n, nval, ntr;
	uint32_t *idx = xcalloc(n + 1, sizeof(uint32_t));
	struct ctr *pm = ctr_clone(d->model);
	struct ctr_train_opts o;
	struct ctr_train_stats stats;
	double t0 = (double)uv_hrtime() / 1e9;

	d->job_rc = 0;
	d->adopted = 0;
	for (size_t i = 0; i < n; i++)
		idx[i] = (uint32_t)i;
	/* Chronological hold-out: the last val-frac, at least one sample. */
	nval = (size_t)(cf->val_frac * (double)n + 0.5);
	if (nval == 0 && n >= 2)
		nval = 1;
	ntr = n - nval;
	d->val_before = d->val_after = 0;
	if (nval > 0)
		ctr_eval_logloss(pm, &d->local, idx + ntr, nval,
		    &d->val_before);
	if (cf->mode == 1 && ntr > 0 && nval > 0) {
		ctr_train_opts_default(&o);
		ctr_opt_default(&o.opt, CTR_OPT_ADAM, (float)cf->lr);
		o.sel = CTR_SEL_METAPATCH_ONLY;
		o.epochs = (int)cf->epochs;
		o.batch = (int)cf->batch;
		o.patience = 2;
		o.seed = (uint64_t)cf->seed;
		o.stop = &d->dd->stop;
		d->job_rc = ctr_train(pm, &d->local, idx, ntr, idx + ntr, nval,
		    &o, &stats);
		if (d->job_rc == 0) {
			d->val_after = stats.val_loss;
			d->adopted = stats.val_loss < d->val_before - cf->margin;
		} else
			snprintf(d->job_err, sizeof(d->job_err),
			    "training failed (%d)", d->job_rc);
	}
	if (!d->adopted) {
		/* Guarded adoption: keep serving the cloud model. */
		ctr_free(pm);
		pm = ctr_clone(d->model);
		d->val_after = d->val_before;
	}
	if (d->job_rc == 0 && ctr_io_patch_get(pm, d->user, &d->patch,
	    &d->n_patch) != 0) {
		d->job_rc = -EINVAL;
		snprintf(d->job_err, sizeof(d->job_err),
		    "the model has no MetaPatch");
	}
	if (d->job_rc == 0 && cf->eval_dir[0] != '\0' && d->test.n > 0)
		evaluate(d, pm);
	d->train_s = (double)uv_hrtime() / 1e9 - t0;
	ctr_free(pm);
	free(idx);
}
