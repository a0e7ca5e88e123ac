/*
 * learn_job: the device's learning job, the top of the learning layer.
 * learn_work_cb runs in the threadpool: learn_run (learn.c) on the
 * device's data, federated selection's grid report (fedsel.c), and with
 * deviced.eval-dir set the evaluation matrix (learn_eval.c); its result
 * waits in d->learned. learn_apply, on the loop thread (device.c's
 * learn_after_cb), moves that result into the device. Moved out of learn.c
 * so that the learning layer's calls point one way: this file calls
 * learn.c, fedsel.c and learn_eval.c, and none of them calls it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deviced/deviced.h"
#include "deviced/encoder_dev.h"
#include "deviced/fedsel.h"
#include "deviced/learn.h"
#include "shared/ml/ctr.h"
#include "shared/xmalloc.h"

/* Whether the job runs the evaluation rows (deviced.eval-dir). */
static int
evaluating(const struct device *d)
{
	return d->dd->cf.eval_dir[0] != '\0' && d->test.n > 0;
}

int
learn_wants_retrieved(const struct device *d)
{
	return d->dd->cf.coda || evaluating(d);
}

void
learn_work_cb(uv_work_t *w)
{
	struct device *d = w->data;
	const struct deviced_conf *cf = &d->dd->cf;
	struct learn_result *r = xcalloc(1, sizeof(*r));
	int eval = evaluating(d);
	struct learn_in in = { cf, d->model, &d->local, &d->retrieved,
		d->user, d->global_ctr, &d->dd->stop, d->app != NULL, eval, 0,
		d->fedsel, fedsel_dev_reports(d) };
	struct learn_memo *memo = eval || in.report ? learn_memo_new() : NULL;
	struct learn_prep p;
	struct ctr *start = NULL;	/* a cold user's encoder start */

	if (cf->encoder && d->enc != NULL &&
	    (start = encoder_dev_start(d, ENCDEV_CV, NULL)) != NULL)
		in.model = start;
	learn_run(&in, &p, start != NULL ? NULL : memo, r);
	if (r->rc == 0 && in.report)	/* federated selection (fedsel.c) */
		fedsel_dev_report(&p, start != NULL ? NULL : memo, d->version,
		    r);
	if (start != NULL) {
		/* The evaluation starts from the cloud's model. */
		learn_prep_fini(&p);
		in.model = d->model;
		if (r->rc == 0 && eval)
			learn_prep_init(&p, &in, in.retrieved);
		else
			memset(&p, 0, sizeof(p));
		ctr_free(start);
	}
	if (r->rc == 0 && eval)
		learn_eval(d, &in, &p, memo, r);
	learn_memo_free(memo);
	learn_prep_fini(&p);
	d->learned = r;
}

void
learn_apply(struct device *d)
{
	struct learn_result *r = d->learned;

	d->learned = NULL;
	if (r == NULL) {
		d->job_rc = -ECANCELED;
		snprintf(d->job_err, sizeof(d->job_err), "cancelled");
		return;
	}
	d->job_rc = r->rc;
	snprintf(d->job_err, sizeof(d->job_err), "%s", r->err);
	d->patch = r->patch;
	d->n_patch = r->n_patch;
	d->kept = r->kept;
	d->val_before = r->val_before;
	d->val_after = r->val_after;
	d->adopted = r->adopted;
	d->taught = r->taught;
	d->train_s = r->secs;
	d->job_serving = r->serving;
	fedsel_dev_after(d, r);
	r->patch = NULL;
	r->n_patch = 0;
	r->serving = NULL;
	free(r);
}
