/*
 * learn_eval: the evaluation matrix. With deviced.eval-dir set, after the
 * learning job, a device runs every method of deviced.eval-methods on the
 * same prepared data and writes its held-out test predictions to
 * <eval-dir>/<device>.csv (method,user,item,label,score) and per-method
 * costs and chosen settings to <eval-dir>/<device>.extra
 * (method,column,value). Nothing here runs without an evaluation
 * directory; the daemon's job is learn.c's alone.
 *
 * The test samples are replayed as the app socket would see them and
 * scored with the app's own scoring (app.h), so the published numbers are
 * what a ranking request gets.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deviced/app.h"
#include "shared/ml/calib.h"
#include "deviced/deviced.h"
#include "deviced/encoder_dev.h"
#include "deviced/krc.h"
#include "deviced/learn.h"
#include "deviced/learn_diag.h"
#include "deviced/mix.h"
#include "deviced/ofa_dev.h"
#include "shared/ml/ctr.h"
#include "shared/data/dataset.h"
#include "shared/xmalloc.h"

/*
 * Size of the upload message this device will send (envelope, patch and
 * the four metrics device.c attaches), for the cost columns.
 */
static size_t
upload_size(const struct device *d, const struct learn_result *r)
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
	up.n_tensors = r->n_patch;
	up.tensors = r->patch;
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

/*
 * A "krc" row: the cloud model, "krc-<method>": method's model, each with
 * the kernel residual correction over the local samples (krc.h). Returns
 * the method to run, or NULL when nm is no such row.
 */
static const char *
krc_inner(const char *nm)
{
	if (strcmp(nm, "krc") == 0)
		return "cloud";
	if (strncmp(nm, "krc-", 4) == 0 && nm[4] != '\0')
		return nm + 4;
	return NULL;
}

/*
 * Corrects pr (probabilities of q under c) by the residuals of c on the
 * local samples p->work[0..p->n) (krc.h); the choice goes to *k.
 */
static void
krc_correct(struct ctr *c, const struct learn_prep *p, const struct dataset *q,
    float *pr, struct krc *k)
{
	int D = ctr_config(c)->dim;
	size_t n = p->n;
	uint32_t *idx = xcalloc(n + 1, sizeof(uint32_t));
	float *z = xcalloc(n + 1, sizeof(float));
	float *e = xcalloc(n * (size_t)D + 1, sizeof(float));
	float *eq = xcalloc(q->n * (size_t)D + 1, sizeof(float));
	float *zq = xcalloc(q->n + 1, sizeof(float));

	memset(k, 0, sizeof(*k));
	for (size_t i = 0; i < n; i++)
		idx[i] = (uint32_t)i;
	if (n > 0 && ctr_logits(c, &p->work, idx, n, z) != 0)
		goto done;
	krc_units(c, &p->work, n, e);
	krc_fit(e, D, &p->work, z, n, KRC_FOLDS, KRC_MIN_N, k);
	if (k->g == 0)
		goto done;
	krc_units(c, q, q->n, eq);
	for (size_t i = 0; i < q->n; i++) {
		double v = pr[i] < 1e-7f ? 1e-7 : pr[i] > 1 - 1e-7f ?
		    1 - 1e-7 : pr[i];

		zq[i] = (float)log(v / (1 - v));
	}
	krc_apply(k->tau, k->beta, e, &p->work, z, n, D, eq, zq, q->n);
	for (size_t i = 0; i < q->n; i++)
		pr[i] = (float)(1 / (1 + exp(-(double)zq[i])));
done:
	free(idx);
	free(z);
	free(e);
	free(eq);
	free(zq);
}

/* A "-mix" row's scores: pr mixed with the cloud model's (mix.h). */
static void
mix_cloud(const struct ctr *cloud, const struct dataset *q, float *pr,
    double a)
{
	struct ctr *c0 = ctr_clone(cloud);	/* scoring writes scratch */
	float *p0 = xcalloc(q->n + 1, sizeof(float));

	if (app_score(c0, q, p0) == 0)
		mix_probs(p0, pr, q->n, a);
	free(p0);
	ctr_free(c0);
}

void
learn_eval(struct device *d, const struct learn_in *in, struct learn_prep *p0,
    struct learn_memo *memo, struct learn_result *r)
{
	struct learn_prep pu;
	int have_pu = 0;
	const struct deviced_conf *cf = in->cf;
	size_t n = d->test.n;
	float *pr = xcalloc(n + 1, sizeof(float));
	char path[1300], *list = xstrdup(cf->eval_methods), *save = NULL, *nm;
	double b_patch = (double)upload_size(d, r);
	FILE *f, *x;
	struct dataset q;

	/* The test samples as the app socket would see them (app.h). */
	dataset_init(&q);
	app_replay(&q, &d->local, &d->test, d->user, app_hist_k(d->model));
	snprintf(path, sizeof(path), "%s/%s.csv", cf->eval_dir, d->id);
	f = fopen(path, "w");
	snprintf(path, sizeof(path), "%s/%s.extra", cf->eval_dir, d->id);
	x = fopen(path, "w");
	if (f == NULL || x == NULL) {
		snprintf(r->err, sizeof(r->err), "cannot write %.200s", path);
		goto done;
	}
	for (nm = strtok_r(list, ",", &save); nm; nm = strtok_r(NULL, ",",
	    &save)) {
		struct learn_method_info mi;
		struct learn_prep *p = p0, pe;
		double secs, mem, up, down;
		struct learn_choice ch;
		struct ctr *c;
		struct device dv;	/* an encoder row's start */
		struct learn_in ein;
		const char *run_nm = nm, *inner = NULL, *kin = krc_inner(nm);
		int est = ENCDEV_CLOUD;
		struct krc kr;

		if (learn_diag(d, in, nm, &q, f))
			continue;	/* a diagnostic row (learn_diag.h) */
		if (kin != NULL) {
			if (learn_method_info(kin, &mi) != 0)
				continue;
			run_nm = kin;
		}
		/* Encoder rows: a method run from the encoder's start. */
		if (kin == NULL && learn_method_info(nm, &mi) != 0 &&
		    (inner = encoder_dev_view(d, nm, &dv, &est)) != NULL) {
			if (learn_method_info(inner, &mi) != 0) {
				encoder_dev_view_fini(&dv);
				continue;
			}
			mi.name = nm;
			run_nm = inner;
			ein = *in;
			ein.model = dv.model;
			learn_prep_init(&pe, &ein, &d->retrieved);
			p = &pe;
		}
		/* Forward-OFA rows: no training, one forward pass. */
		if (kin == NULL && inner == NULL &&
		    learn_method_info(nm, &mi) != 0) {
			(void)ofa_dev_eval(d, nm, &q, f, x);
			continue;
		}
		if (mi.users && cf->retrieve_mode == 0) {
			/* The set fetched by similar users (device.c). */
			if (!have_pu) {
				learn_prep_init(&pu, in, &d->retrieved_u);
				have_pu = 1;
			}
			p = &pu;
		}
		/* The memo holds work on the cloud's model, not a start's. */
		c = learn_method_run(p, run_nm, inner != NULL ? NULL : memo,
		    &ch, &secs, &mem);
		(void)app_score(c, &q, pr);	/* the app socket's scoring */
		if (ch.mixed && ch.adopted && ch.alpha < 1)
			mix_cloud(p->in->model, &q, pr, ch.alpha);
		if (ch.calibrated)
			calib_probs(pr, n, ch.cal_t, ch.cal_b);
		if (kin != NULL) {
			mi.name = nm;
			krc_correct(c, p, &q, pr, &kr);
			fprintf(x, "%s,krc_tau,%g\n%s,krc_beta,%g\n"
			    "%s,krc_net,%g\n%s,krc_ll,%g\n%s,krc_pairs,%zu\n",
			    nm, kr.tau, nm, kr.beta, nm, kr.sum[kr.g], nm,
			    kr.ll[kr.g], nm, kr.pairs);
			for (int g = 1; g < KRC_NG; g++)
				fprintf(x, "%s,krc_s%d,%g\n%s,krc_l%d,%g\n",
				    nm, g, kr.sum[g], nm, g, kr.ll[g]);
		}
		for (size_t i = 0; i < n; i++) {
			const struct sample *s = &d->test.s[i];
			fprintf(f, "%s,%u,%u,%g,%.9g\n", mi.name, s->user,
			    s->item, s->label, pr[i]);
		}
		/* Traffic this method needs: download, retrieval, upload. */
		down = (double)d->b_model + (!mi.coda ? 0 : mi.users ?
		    d->b_retu_down : d->b_ret_down);
		up = (double)d->b_reg + (!mi.coda ? 0 : mi.users ?
		    d->b_retu_up : d->b_ret_up) +
		    (mi.finetune ? (double)d->dl_total :
		    mi.adapts ? b_patch : 0);
		fprintf(x, "%s,device_ms,%.3f\n%s,train_kib,%.1f\n"
		    "%s,bytes_up,%.0f\n%s,bytes_down,%.0f\n%s,adopted,%d\n",
		    mi.name, secs * 1e3, mi.name, mem / 1024, mi.name, up,
		    mi.name, down, mi.name, ch.adopted);
		fprintf(x, "%s,flops,%.0f\n", mi.name, ctr_flops(c));
		/* The setting chosen (0 when the cloud model is kept). */
		if (mi.adapts)
			fprintf(x, "%s,lr,%g\n%s,steps,%d\n%s,cv_gain,%g\n"
			    "%s,coda_kept,%zu\n%s,coda_late,%zu\n"
			    "%s,bias_only,%d\n", mi.name,
			    ch.adopted ? ch.lr : 0, mi.name, ch.adopted ?
			    ch.steps : 0, mi.name, ch.gain, mi.name,
			    mi.coda ? p->nkept : 0, mi.name,
			    mi.coda ? p->nlate : 0, mi.name, ch.fallback);
		if (mi.adapts)
			fprintf(x, "%s,cv_se,%g\n%s,cv_rank,%g\n%s,alpha,%g\n"
			    "%s,n_local,%zu\n", mi.name, ch.se, mi.name, ch.rank,
			    mi.name, ch.adopted ? ch.alpha : 0, mi.name, p->n);
		/* How far the choice reorders held-out pairs (learn.h). */
		if (mi.adapts && ch.mv > 0)
			fprintf(x, "%s,cv_mv,%g\n", mi.name, ch.mv);
		if (mi.adapts && ch.nested.have && ch.nested.mv > 0)
			fprintf(x, "%s,nv_mv,%g\n", mi.name, ch.nested.mv);
		/* The held-out (click, no-click) pairs cv_rank is net of. */
		if (mi.adapts && ch.grid.have)
			fprintf(x, "%s,cv_pairs,%zu\n", mi.name,
			    ch.grid.pairs);
		if (mi.adapts && ch.nested.have)
			fprintf(x, "%s,nv_gain,%g\n%s,nv_se,%g\n"
			    "%s,nv_rank,%g\n%s,nv_on,%zu\n%s,nv_ogain,%g\n"
			    "%s,nv_opairs,%zu\n%s,nv_orank,%g\n", mi.name,
			    ch.nested.gain, mi.name, ch.nested.se, mi.name,
			    ch.nested.rank, mi.name, ch.nested.out_n, mi.name,
			    ch.nested.out_gain, mi.name, ch.nested.out_pairs,
			    mi.name, ch.nested.out_rank);
		/* "-mix" rows: the CV's evidence per weight (mix.h). */
		if (ch.mixed)
			for (int k = 0; k < MIX_NA; k++)
				fprintf(x, "%s,mx_g%d,%g\n%s,mx_s%d,%g\n"
				    "%s,mx_r%d,%g\n", mi.name, k,
				    ch.mix.gain[k], mi.name, k, ch.mix.sq[k],
				    mi.name, k, ch.mix.rank[k]);
		if (ch.cal_have && mi.adapts)
			fprintf(x, "%s,cal_t,%g\n%s,cal_b,%g\n", mi.name,
			    ch.cal_t, mi.name, ch.cal_b);
		if (ch.nested.have_cal && mi.adapts)
			fprintf(x, "%s,nv_ocal,%g\n", mi.name,
			    ch.nested.out_cal);
		if (ch.mixed)
			fprintf(x, "%s,mx_n,%zu\n%s,mx_pairs,%zu\n", mi.name,
			    ch.mix.n, mi.name, ch.mix.pairs);
		/* "-fed" rows: 1 the cloud's choice, -1 its default. */
		if (ch.fed != 0)
			fprintf(x, "%s,fed,%d\n", mi.name, ch.fed);
		/* "-pairw" rows: the pair weight, 1 the cloud's, -1 not. */
		if (ch.pw_fed != 0)
			fprintf(x, "%s,pair_w,%g\n%s,pw_fed,%d\n", mi.name,
			    ch.pair_w, mi.name, ch.pw_fed);
		ctr_free(c);
		if (inner != NULL) {
			fprintf(x, "%s,enc_rows,%d\n", mi.name,
			    ENCDEV_USES_ENC(est));
			learn_prep_fini(&pe);
			encoder_dev_view_fini(&dv);
		}
	}
done:
	if (f != NULL && fclose(f) != 0)
		snprintf(r->err, sizeof(r->err), "write failed");
	if (x != NULL)
		fclose(x);
	if (have_pu)
		learn_prep_fini(&pu);
	free(list);
	free(pr);
	dataset_fini(&q);
}
