/*
 * distill: MoMoDistill, the "model over models" step of DCCL (see
 * distill.h for the loss). Who runs what:
 *
 *   loop thread   distill_start: lists the patches of the last max-age
 *                 versions from the store, picks each user's newest one and
 *                 weighs it by staleness (distill_select), copies the
 *                 current model blob and queues a train.c job carrying the
 *                 distill_job. distill_rpc answers dcctl with the counts;
 *                 distill_cron starts runs when enough patches arrived:
 *                 on the current version (distill.min-patches), or on any
 *                 base (distill.buffer, round-free); in both modes only
 *                 patches no finished run has used count (the store
 *                 keeps which, store_patch_used).
 *   worker        distill_train: unpacks the current model twice (student
 *                 and the teacher base; the student's own m table and U, V
 *                 keep training), reads older base versions for stale
 *                 patches on its own store connection, writes every
 *                 device's patch into its base's teacher (m is per user, so
 *                 one teacher per base version holds all of them), computes
 *                 the soft targets and trains (distill_fit). A fit whose
 *                 best epoch is 0 (the current weights), or whose
 *                 validation gain is below distill.accept-z standard
 *                 errors, returns TRAIN_KEPT.
 *   loop thread   train.c stores, indexes and announces the new version
 *                 as for any training, or (kept) does none of that;
 *                 step_done records the listed patches as used and frees
 *                 the job.
 *
 * Stale patches (trained on an older base than the current model) are
 * never mixed in silently: with distill.stale = drop they are not used;
 * with decay their teacher is their own base version plus the patch, and
 * their weight is lambda * decay^age, age = current - base in versions,
 * up to distill.max-age; poly weighs them lambda / (1 + age)^a instead
 * (distill.poly-a). Both counts are reported and logged.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloudd/distill.h"
#include "cloudd/rpc.h"
#include "dccl.pb-c.h"
#include "shared/clock.h"
#include "shared/data/dataset.h"
#include "shared/ml/fit.h"
#include "shared/ml/metrics.h"
#include "shared/log.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

/* ---- selection (pure) ----------------------------------------------------- */

/* A patch's sort key: qsort has no context, so the key carries its index. */
struct newest_key {
	uint64_t	 base, id;
	uint32_t	 user;
	size_t		 idx;
};

/* By user, then newest first (base, id). */
static int
cmp_newest(const void *a, const void *b)
{
	const struct newest_key *x = a, *y = b;

	if (x->user != y->user)
		return x->user < y->user ? -1 : 1;
	if (x->base != y->base)
		return x->base > y->base ? -1 : 1;
	if (x->id != y->id)
		return x->id > y->id ? -1 : 1;
	return 0;
}

int
distill_select(const struct store_patch *p, size_t n, uint64_t current,
    const struct distill_opts *o, struct distill_pick **out, size_t *nout,
    struct distill_counts *c)
{
	struct newest_key *ord;
	size_t k = 0, nu = 0;
	struct distill_pick *pk;

	memset(c, 0, sizeof(*c));
	*out = NULL;
	*nout = 0;
	if (n == 0)
		return 0;
	ord = xcalloc(n, sizeof(*ord));
	pk = xcalloc(n, sizeof(*pk));
	for (size_t i = 0; i < n; i++) {
		/* Unusable patches never shadow a usable one. */
		if (strcmp(p[i].kind, "metapatch") != 0 ||
		    p[i].base_version > current || p[i].base_version == 0)
			c->skipped++;
		else
			ord[k++] = (struct newest_key){ p[i].base_version,
			    p[i].id, p[i].user_id, i };
	}
	qsort(ord, k, sizeof(*ord), cmp_newest);
	for (size_t i = 0; i < k; i++) {
		const struct store_patch *q = &p[ord[i].idx];
		uint64_t age;

		if (i > 0 && ord[i - 1].user == q->user_id) {
			c->skipped++;	/* superseded by a newer one */
			continue;
		}
		age = current - q->base_version;
		if (age == 0) {
			c->fresh++;
		} else if (o->stale == DISTILL_STALE_DROP ||
		    age > (uint64_t)o->max_age ||
		    (o->stale == DISTILL_STALE_DECAY && o->decay <= 0)) {
			c->stale_dropped++;
			continue;
		} else {
			c->stale_used++;
		}
		pk[nu].user = q->user_id;
		pk[nu].base = q->base_version;
		pk[nu].patch = ord[i].idx;
		pk[nu].weight = (float)(o->stale == DISTILL_STALE_POLY ?
		    o->lambda / pow(1.0 + (double)age, o->poly_a) :
		    o->lambda * pow(o->decay, (double)age));
		pk[nu].teacher = 0;
		nu++;
	}
	free(ord);
	if (nu == 0) {
		free(pk);
		return 0;
	}
	*out = pk;
	*nout = nu;
	return 0;
}

/* ---- the model step (worker) ---------------------------------------------- */

int
distill_apply_patch(struct ctr *teacher, const struct store_patch *p,
    uint32_t user)
{
	Dccl__UploadPatch *up;
	int rc;

	up = dccl__upload_patch__unpack(NULL, p->size, p->blob);
	if (up == NULL)
		return -EINVAL;
	rc = ctr_io_patch_put(teacher, user, up->tensors, up->n_tensors);
	dccl__upload_patch__free_unpacked(up, NULL);
	return rc;
}

int
distill_patch_is_base(const struct ctr *teacher, const struct store_patch *p,
    uint32_t user)
{
	Dccl__UploadPatch *up;
	Dccl__Tensor **bt = NULL;
	size_t nb = 0;
	int same = 1;

	up = dccl__upload_patch__unpack(NULL, p->size, p->blob);
	if (up == NULL)
		return -EINVAL;
	if (ctr_io_patch_get(teacher, user, &bt, &nb) != 0 ||
	    up->n_tensors != nb)
		same = 0;
	for (size_t i = 0; same && i < up->n_tensors; i++) {
		const Dccl__Tensor *a = up->tensors[i], *b = NULL;
		for (size_t k = 0; k < nb && b == NULL; k++)
			if (strcmp(bt[k]->name, a->name) == 0)
				b = bt[k];
		same = b != NULL && a->n_data == b->n_data &&
		    memcmp(a->data, b->data, a->n_data * sizeof(float)) == 0;
	}
	ctr_io_tensors_free(bt, nb);
	dccl__upload_patch__free_unpacked(up, NULL);
	return same;
}

/*
 * The per-user rows of the student: its user embedding and MetaPatch m
 * tables. With them trainable the cheapest fit to a teacher f_u is to copy
 * u's patch into the student's own m_u, and the shared parameters (which
 * long-tail users would gain from) learn little; freezing them makes the
 * device knowledge enter the shared ones.
 */
static int
per_user(const struct param_tensor *t)
{
	return t->kind == CTR_T_PATCH_M || strcmp(t->name, "emb_user") == 0;
}

/*
 * Orders one user's training samples s[0..n) by (timestamp, index) and
 * sets *first to the start of the newest ceil(recent * n) (0 for all).
 * Insertion sort: a user's samples are few and usually in order already.
 */
static void
recent_first(const struct dataset *ds, uint32_t *s, size_t n, float recent,
    uint32_t *first)
{
	size_t keep;

	*first = 0;
	if (!(recent > 0 && recent < 1) || n == 0)
		return;
	for (size_t i = 1; i < n; i++) {
		uint32_t v = s[i];
		size_t j = i;
		while (j > 0 && (ds->s[s[j - 1]].ts > ds->s[v].ts ||
		    (ds->s[s[j - 1]].ts == ds->s[v].ts && s[j - 1] > v))) {
			s[j] = s[j - 1];
			j--;
		}
		s[j] = v;
	}
	keep = (size_t)ceil((double)recent * (double)n);
	*first = (uint32_t)(n - (keep < 1 ? 1 : keep > n ? n : keep));
}

/*
 * DISTILL_FIT_CENTER: t (n teacher logits of samples idx) becomes
 * s + (t - s) - mean(t - s), s the student's logits.
 */
static int
center(struct ctr *student, const struct dataset *ds, const uint32_t *idx,
    size_t n, float *t)
{
	float *s = xcalloc(n + 1, sizeof(float));
	double mean = 0;
	int rc;

	if ((rc = ctr_logits(student, ds, idx, n, s)) == 0 && n > 0) {
		for (size_t k = 0; k < n; k++)
			mean += (double)t[k] - s[k];
		mean /= (double)n;
		for (size_t k = 0; k < n; k++)
			t[k] = (float)(t[k] - mean);
	}
	free(s);
	return rc;
}

/* distill_fit's hooks for fit_run: ctr_train's step with the weights w. */
struct fit_ctx {
	struct ctr	*m;
	const struct dataset *mix, *ds;
	const uint32_t	*vai;
	size_t		 nva;
	const struct ctr_train_opts *o;
	const float	*w;
	float		*wb;		/* (batch) */
	float		*keep;		/* frozen per-user rows, or NULL */
	struct distill_stats *st;
	int		 vals;		/* validations so far */
};

static int
fit_grad(void *arg, const uint32_t *idx, int B, struct rng *rng,
    double *loss)
{
	struct fit_ctx *c = arg;
	int rc;

	for (int b = 0; b < B; b++)
		c->wb[b] = c->w[idx[b]];
	if ((rc = ctr_forward(c->m, c->mix, idx, B, NULL)) != 0)
		return rc;
	ctr_zero_grad(c->m);
	ctr_backward(c->m, c->keep != NULL ? CTR_SEL_ALL : c->o->sel, NULL,
	    c->wb, NULL, loss);
	return 0;
}

/* Copies the per-user rows between the model and keep (out: to keep). */
static void
per_user_copy(struct ctr *m, float *keep, int out)
{
	size_t at = 0;

	for (int i = 0; i < ctr_num_tensors(m); i++) {
		const struct param_tensor *t = ctr_tensor_at(m, i);
		if (!per_user(t))
			continue;
		if (out)
			memcpy(keep + at, t->data, t->n * sizeof(float));
		else
			memcpy(t->data, keep + at, t->n * sizeof(float));
		at += t->n;
	}
}

/*
 * The step; with frozen per-user rows they are put back after every
 * step, so that they neither move nor feed Adam-driven drift into later
 * batches.
 */
static int
fit_update(void *arg)
{
	struct fit_ctx *c = arg;
	int rc;

	rc = ctr_step(c->m, c->keep != NULL ? CTR_SEL_ALL : c->o->sel,
	    &c->o->opt);
	if (rc == 0 && c->keep != NULL)
		per_user_copy(c->m, c->keep, 0);
	return rc;
}

static int
fit_val(void *arg, double *loss)
{
	struct fit_ctx *c = arg;
	int rc = ctr_eval_logloss(c->m, c->ds, c->vai, c->nva, loss);

	if (rc == 0 && c->vals++ == 0)
		c->st->val_before = *loss;
	return rc;
}

static void
fit_epoch(void *arg, int epoch, double train, double val)
{
	struct fit_ctx *c = arg;

	if (c->o->progress != NULL)
		c->o->progress(c->o->progress_arg, epoch, train, val);
}

int
distill_fit(struct ctr *student, const struct dataset *ds,
    const uint32_t *tri, size_t ntr, const uint32_t *vai, size_t nva,
    struct ctr *const *teachers, const struct distill_pick *picks,
    size_t npicks, const struct ctr_train_opts *o, int flags,
    struct distill_stats *st)
{
	uint32_t nu = ds->n_users, *cnt, *off, *byu, *soft_of, *tidx, *from;
	int32_t *pick_of;
	size_t *all, n_soft = 0, nmix;
	struct dataset mix;
	float *w = NULL, *logit;
	uint32_t *idx = NULL;
	struct fit_ctx fc;
	struct fit_hooks h = { fit_grad, fit_update, NULL, NULL, fit_epoch,
	    &fc };
	struct fit_opts fo;
	struct fit_stats fs;
	int rc = 0;

	memset(st, 0, sizeof(*st));
	st->val_before = st->val_after = NAN;
	if (ntr == 0 || o == NULL || o->epochs < 1)
		return -EINVAL;
	/* The training samples of each user (counting sort). */
	cnt = xcalloc((size_t)nu + 2, sizeof(*cnt));
	off = xcalloc((size_t)nu + 2, sizeof(*off));
	byu = xcalloc(ntr + 1, sizeof(*byu));
	for (size_t i = 0; i < ntr; i++)
		if (ds->s[tri[i]].user < nu)
			cnt[ds->s[tri[i]].user]++;
	for (uint32_t u = 0; u < nu; u++)
		off[u + 1] = off[u] + cnt[u];
	memset(cnt, 0, ((size_t)nu + 2) * sizeof(*cnt));
	for (size_t i = 0; i < ntr; i++) {
		uint32_t u = ds->s[tri[i]].user;
		if (u < nu)
			byu[off[u] + cnt[u]++] = tri[i];
	}
	pick_of = xmalloc(((size_t)nu + 1) * sizeof(*pick_of));
	from = xcalloc((size_t)nu + 1, sizeof(*from));
	for (uint32_t u = 0; u <= nu; u++)
		pick_of[u] = -1;
	for (size_t i = 0; i < npicks; i++)
		if (picks[i].user < nu && picks[i].weight > 0)
			pick_of[picks[i].user] = (int32_t)i;
	for (uint32_t u = 0; u < nu; u++) {
		if (pick_of[u] < 0)
			continue;
		recent_first(ds, byu + off[u], off[u + 1] - off[u],
		    picks[pick_of[u]].recent, &from[u]);
		n_soft += off[u + 1] - off[u] - from[u];
	}

	/* The mixed set: the pool as is, then the soft copies. */
	dataset_init(&mix);
	all = xcalloc(ds->n + n_soft + 1, sizeof(*all));
	for (size_t i = 0; i < ds->n; i++)
		all[i] = i;
	dataset_append_subset(&mix, ds, all, ds->n);
	soft_of = xcalloc(n_soft + 1, sizeof(*soft_of));
	tidx = xcalloc(n_soft + 1, sizeof(*tidx));
	n_soft = 0;
	for (uint32_t u = 0; u < nu; u++)
		for (uint32_t k = off[u] + from[u]; pick_of[u] >= 0 &&
		    k < off[u + 1]; k++) {
			all[n_soft] = byu[k];
			tidx[n_soft] = (uint32_t)pick_of[u];
			soft_of[n_soft++] = byu[k];
		}
	dataset_append_subset(&mix, ds, all, n_soft);
	mix.n_users = ds->n_users;
	mix.n_items = ds->n_items;
	mix.n_genres = ds->n_genres;
	nmix = mix.n;
	w = xcalloc(nmix + 1, sizeof(*w));
	for (size_t i = 0; i < ds->n; i++)
		w[i] = 1.0f;
	/* Soft targets, one user (one teacher) at a time. */
	logit = xcalloc(n_soft + 1, sizeof(*logit));
	for (size_t i = 0; i < n_soft;) {
		size_t j = i;
		const struct distill_pick *pk = &picks[tidx[i]];
		while (j < n_soft && tidx[j] == tidx[i])
			j++;
		if ((rc = ctr_logits(teachers[pk->teacher], ds, soft_of + i,
		    j - i, logit + i)) != 0)
			goto out;
		if ((flags & DISTILL_FIT_CENTER) && (rc = center(student, ds,
		    soft_of + i, j - i, logit + i)) != 0)
			goto out;
		for (size_t k = i; k < j; k++) {
			float p = (float)(1.0 / (1.0 + exp(-(double)logit[k])));
			mix.s[ds->n + k].label = p;
			w[ds->n + k] = pk->weight;
			st->soft_mean += p;
		}
		i = j;
	}
	st->n_soft = n_soft;
	if (n_soft > 0)
		st->soft_mean /= (double)n_soft;

	idx = xcalloc(ntr + n_soft + 1, sizeof(*idx));
	memcpy(idx, tri, ntr * sizeof(*idx));
	for (size_t i = 0; i < n_soft; i++)
		idx[ntr + i] = (uint32_t)(ds->n + i);
	/*
	 * ctr_train's loop and validation rule (the initial params are a
	 * candidate too), each epoch shuffled anew from seed + epoch;
	 * Adam's moments live in the model and carry over.
	 */
	fc = (struct fit_ctx){ student, &mix, ds, vai, nva, o, w,
	    xmalloc((size_t)o->batch * sizeof(float)), NULL, st, 0 };
	if (flags & DISTILL_FIT_FREEZE_USERS) {
		size_t nkeep = 0;
		for (int i = 0; i < ctr_num_tensors(student); i++)
			if (per_user(ctr_tensor_at(student, i)))
				nkeep += ctr_tensor_at(student, i)->n;
		fc.keep = xmalloc((nkeep + 1) * sizeof(float));
		per_user_copy(student, fc.keep, 1);
	}
	if (nva > 0)
		h.val = fit_val;
	/* the seed is ctr_train's, + epoch */
	fo = (struct fit_opts){ o->epochs, o->batch, o->patience, o->seed, 1,
	    o->stop };
	rc = fit_run(ctr_params(student), ctr_num_params(student), idx,
	    ntr + n_soft, &fo, &h, &fs);
	ctr_zero_grad(student);
	st->epochs = fs.epochs;
	st->best_epoch = fs.best_epoch;
	st->val_after = fs.val_loss;
	free(fc.keep);
	free(fc.wb);
out:
	free(idx);
	free(logit);
	free(w);
	free(tidx);
	free(soft_of);
	free(all);
	dataset_fini(&mix);
	free(pick_of);
	free(from);
	free(byu);
	free(off);
	free(cnt);
	return rc;
}

static void
progress(void *arg, int epoch, double loss, double val_loss)
{
	(void)arg;
	log_info("DISTILL: epoch %d train loss %.4f val logloss %.4f", epoch,
	    loss, val_loss);
}

int
distill_val_gain(struct ctr *student, const float *p0,
    const struct dataset *ds, const uint32_t *vai, size_t nva, double *gain,
    double *se)
{
	float *p1 = xcalloc(nva + 1, sizeof(*p1));
	double *d = xcalloc(nva + 1, sizeof(*d));
	uint32_t *u = xcalloc(nva + 1, sizeof(*u));
	int rc;

	if ((rc = ctr_predict(student, ds, vai, nva, p1)) != 0)
		goto out;
	for (size_t i = 0; i < nva; i++) {
		float y = ds->s[vai[i]].label;

		d[i] = metrics_logloss(&p0[i], &y, 1) -
		    metrics_logloss(&p1[i], &y, 1);
		u[i] = ds->s[vai[i]].user;
	}
	rc = metrics_clustered_mean(d, u, nva, gain, se);
out:
	free(p1);
	free(d);
	free(u);
	return rc;
}

/*
 * Worker (the train_step's fit): builds student and teachers from the job
 * (stale bases are read on a store connection of its own), runs
 * distill_fit with the training options of cf and distill.*, and returns
 * the student in *out.
 */
static int
step_fit(void *arg, const struct dataset *ds, const uint32_t *tri,
    size_t ntr, const uint32_t *vai, size_t nva, const struct cloudd_conf *cf,
    const char *dbpath, atomic_int *stop, struct ctr **out,
    struct ctr_train_stats *stats, char *err, size_t errlen)
{
	struct distill_job *dj = arg;
	struct ctr *student = NULL, **teach;
	uint64_t *tver;
	int nt = 0, rc;
	struct store *st = NULL;
	struct ctr_train_opts o;
	double t0 = clock_now();
	float *p0 = NULL;

	*out = NULL;
	memset(stats, 0, sizeof(*stats));
	teach = xcalloc(dj->n_picks + 2, sizeof(*teach));
	tver = xcalloc(dj->n_picks + 2, sizeof(*tver));
	if ((rc = ctr_io_unpack(&student, NULL, dj->blob, dj->size, err,
	    errlen)) != 0 || (rc = ctr_io_unpack(&teach[0], NULL, dj->blob,
	    dj->size, err, errlen)) != 0)
		goto done;
	tver[nt++] = dj->base;
	for (size_t i = 0; i < dj->n_picks; i++) {
		struct distill_pick *pk = &dj->picks[i];
		int t;

		for (t = 0; t < nt && tver[t] != pk->base; t++)
			;
		if (t == nt) {
			/* A stale patch: its teacher is its own base. */
			struct store_model_info mi;
			uint8_t *b;

			if (st == NULL && (rc = store_open(&st, cf->store,
			    dbpath, (int)cf->busy_ms, err, errlen)) != 0)
				goto done;
			if (store_model_info(st, pk->base, &mi) != 0) {
				pk->weight = 0;
				dj->n_gone++;
				continue;
			}
			b = xmalloc(mi.size + 1);
			if (store_model_read(st, pk->base, 0, b, mi.size) != 0 ||
			    ctr_io_unpack(&teach[nt], NULL, b, mi.size, NULL,
			    0) != 0) {
				free(b);
				pk->weight = 0;
				dj->n_gone++;
				continue;
			}
			free(b);
			tver[nt++] = pk->base;
		}
		pk->teacher = t;
		if (pk->user < ctr_config(teach[t])->n_users &&
		    distill_patch_is_base(teach[t], &dj->patches[pk->patch],
		    pk->user) == 1) {
			pk->weight = 0;
			dj->n_same++;
			continue;
		}
		if (pk->user >= ctr_config(teach[t])->n_users ||
		    distill_apply_patch(teach[t], &dj->patches[pk->patch],
		    pk->user) != 0) {
			pk->weight = 0;
			dj->n_bad++;
		}
	}
	ctr_train_opts_default(&o);
	ctr_opt_default(&o.opt, CTR_OPT_ADAM, (float)cf->distill_lr);
	o.opt.wd = (float)cf->l2;
	o.sel = CTR_SEL_ALL;	/* U, V (and, unfrozen, the m rows) train */
	o.epochs = dj->epochs ? (int)dj->epochs : (int)cf->distill_epochs;
	o.batch = (int)cf->batch;
	o.patience = (int)cf->patience;
	o.seed = (uint64_t)cf->seed;
	o.stop = stop;
	o.progress = progress;
	log_info("DISTILL: %zu users' patches (%zu teacher model(s)), lambda "
	    "%.3g, %zu train / %zu val pool samples, %d epochs, per-user rows "
	    "%s (%zu not adopted)", dj->n_picks - dj->n_bad - dj->n_gone -
	    dj->n_same, (size_t)nt, dj->o.lambda, ntr, nva, o.epochs,
	    dj->o.freeze_users ? "frozen" : "trained", dj->n_same);
	/* The current model's validation scores, for the acceptance test. */
	if (nva > 0) {
		p0 = xcalloc(nva, sizeof(*p0));
		if ((rc = ctr_predict(student, ds, vai, nva, p0)) != 0) {
			snprintf(err, errlen, "scoring the validation slice");
			goto done;
		}
	}
	rc = distill_fit(student, ds, tri, ntr, vai, nva, teach, dj->picks,
	    dj->n_picks, &o, dj->o.freeze_users ? DISTILL_FIT_FREEZE_USERS : 0,
	    &dj->st);
	if (rc != 0) {
		snprintf(err, errlen, "%s", rc == -ECANCELED ? "stopped" :
		    "distillation diverged or failed");
		goto done;
	}
	stats->epochs = dj->st.epochs;
	stats->best_epoch = dj->st.best_epoch;
	stats->val_loss = dj->st.val_after;
	/*
	 * No epoch beat the current weights, so the student is the current
	 * model: a version of it would only send every device to download
	 * the same weights and upload the same patches again.
	 */
	if (dj->st.best_epoch == 0) {
		rc = TRAIN_KEPT;
		goto done;
	}
	/*
	 * Early stopping keeps any epoch that is lower on validation, however
	 * slightly, and runs repeated against one validation slice then let
	 * one through by chance: a new version needs its gain to stand
	 * distill.accept-z standard errors above 0.
	 */
	if (p0 != NULL) {
		if ((rc = distill_val_gain(student, p0, ds, vai, nva, &dj->gain,
		    &dj->gain_se)) != 0) {
			snprintf(err, errlen, "validation gain not finite");
			goto done;
		}
		dj->tested = 1;
		if (dj->gain - cf->distill_accept_z * dj->gain_se <= 0) {
			rc = TRAIN_KEPT;
			goto done;
		}
	}
	*out = student;
	student = NULL;
done:
	dj->seconds = clock_now() - t0;
	free(p0);
	for (int t = 0; t < nt + 1 && t < (int)dj->n_picks + 2; t++)
		ctr_free(teach[t]);
	free(teach);
	free(tver);
	ctr_free(student);
	store_close(st);
	return rc;
}

/* Worker: adds the distill_* metrics to the stored model's metadata. */
static void
step_meta(void *arg, struct ctr_meta *meta)
{
	const struct distill_job *dj = arg;
	static const char *const names[] = { "distill_lambda",
		"distill_patches", "distill_stale_used", "distill_stale_dropped",
		"distill_soft_samples", "distill_val_before" };
	double v[6];

	v[0] = dj->o.lambda;
	v[1] = (double)dj->counts.fresh;
	v[2] = (double)dj->counts.stale_used;
	v[3] = (double)dj->counts.stale_dropped;
	v[4] = (double)dj->st.n_soft;
	v[5] = dj->st.val_before;
	for (int i = 0; i < 6 && meta->n_metrics < CTR_IO_MAX_METRICS; i++) {
		snprintf(meta->metrics[meta->n_metrics].name,
		    CTR_IO_METRIC_NAME, "%s", names[i]);
		meta->metrics[meta->n_metrics++].value = v[i];
	}
}

/* ---- loop side ------------------------------------------------------------ */

static void
dj_free(void *arg)
{
	struct distill_job *dj = arg;

	if (dj == NULL)
		return;
	store_patch_free(dj->patches, dj->n_patches);
	free(dj->picks);
	free(dj->blob);
	free(dj);
}

/*
 * Loop: the result line, "model vN from vB: ..." for a new version or
 * "vB kept: ...; no new version" (the same counts either way).
 */
static void
step_log(void *arg, uint64_t version, int kept)
{
	const struct distill_job *dj = arg;
	char head[64], why[128] = "";

	if (dj->tested)
		snprintf(why, sizeof(why), "; val gain %.5f (se %.5f)%s",
		    dj->gain, dj->gain_se, kept ? " below distill.accept-z" :
		    "");
	if (kept)
		snprintf(head, sizeof(head), "v%llu kept",
		    (unsigned long long)dj->base);
	else
		snprintf(head, sizeof(head), "model v%llu from v%llu",
		    (unsigned long long)version, (unsigned long long)dj->base);
	log_info("DISTILL: %s: %zu fresh + %zu stale "
	    "patches used (%zu stale dropped, %zu unusable, %zu bases gone, "
	    "%zu not adopted), "
	    "%zu soft samples (mean target %.4f), val logloss %.4f -> %.4f "
	    "(best epoch %d of %d), %.1f s%s%s", head, dj->counts.fresh,
	    dj->counts.stale_used, dj->counts.stale_dropped, dj->n_bad,
	    dj->n_gone, dj->n_same, dj->st.n_soft, dj->st.soft_mean,
	    dj->st.val_before, dj->st.val_after, dj->st.best_epoch,
	    dj->st.epochs, dj->seconds, why, kept ? "; no new version" : "");
}

/* Loop: the job ended (res 0, TRAIN_KEPT or < 0); frees dj. */
static void
step_done(struct cloudd *cd, void *arg, int res)
{
	struct distill_job *dj = arg;

	if (res < 0) {
		/*
		 * Retried after 60 s, not at every cron tick; its patches
		 * are not recorded as used, so they still count.
		 */
		cd->distill_failed++;
		cd->distill_retry_t = clock_now() + 60;
	} else {
		/*
		 * The patches this run listed are used up, kept or not: the
		 * cron waits for others instead of re-running on them. The
		 * record is in the store, so a restart or another leader
		 * knows it too.
		 */
		uint64_t *ids = xcalloc(dj->n_patches + 1, sizeof(*ids));
		for (size_t i = 0; i < dj->n_patches; i++)
			ids[i] = dj->patches[i].id;
		if (store_patch_used(cd->st, ids, dj->n_patches, dj->base) !=
		    0) {
			log_warnx("DISTILL: recording %zu patches as used: %s",
			    dj->n_patches, store_errmsg(cd->st));
			cd->distill_retry_t = clock_now() + 60;
		}
		free(ids);
		if (res == TRAIN_KEPT)
			cd->distill_kept++;
		else
			cd->distill_new++;
	}
	cd->distill_base = 0;	/* recount */
	dj_free(dj);
}

static void
opts_from(struct distill_opts *o, const struct cloudd_conf *cf)
{
	o->lambda = cf->distill_lambda;
	o->stale = cf->distill_stale;
	o->decay = cf->distill_decay;
	o->max_age = cf->distill_max_age;
	o->freeze_users = cf->distill_freeze_users;
	o->poly_a = cf->distill_poly_a;
}

static const struct train_step distill_step = {
	"DISTILL", step_fit, step_meta, step_log, step_done, dj_free
};

int
distill_start(struct cloudd *cd, uint32_t epochs, struct distill_counts *c)
{
	struct distill_job *dj;
	uint64_t cur = cd->model.version, min;
	int rc;

	memset(c, 0, sizeof(*c));
	if (cd->training || cd->pool_loading || cd->rolling_back)
		return -EBUSY;
	if (cur == 0 || cd->model.blob == NULL)
		return -ENOENT;
	dj = xcalloc(1, sizeof(*dj));
	opts_from(&dj->o, &cd->cf);
	min = cur > (uint64_t)dj->o.max_age ? cur - (uint64_t)dj->o.max_age : 0;
	if (store_patch_list(cd->st, min, &dj->patches, &dj->n_patches) != 0) {
		log_warnx("DISTILL: listing patches: %s", store_errmsg(cd->st));
		dj_free(dj);
		return -EIO;
	}
	distill_select(dj->patches, dj->n_patches, cur, &dj->o, &dj->picks,
	    &dj->n_picks, &dj->counts);
	*c = dj->counts;
	if (dj->n_picks == 0) {
		log_warnx("DISTILL: no usable patch for v%llu (%zu stale "
		    "dropped, %zu skipped)", (unsigned long long)cur,
		    c->stale_dropped, c->skipped);
		dj_free(dj);
		return -ENOENT;
	}
	dj->blob = xmalloc(cd->model.size);
	memcpy(dj->blob, cd->model.blob, cd->model.size);
	dj->size = cd->model.size;
	dj->base = cur;
	dj->epochs = epochs;
	log_info("DISTILL: v%llu: %zu fresh patches, %zu stale used (%s "
	    "%.3g), %zu stale dropped, %zu skipped",
	    (unsigned long long)cur, c->fresh, c->stale_used,
	    dj->o.stale == DISTILL_STALE_DROP ? "drop, decay" :
	    dj->o.stale == DISTILL_STALE_POLY ? "poly, a" : "decay, decay",
	    dj->o.stale == DISTILL_STALE_POLY ? dj->o.poly_a : dj->o.decay,
	    c->stale_dropped, c->skipped);
	if ((rc = train_queue(cd, epochs, &distill_step, dj)) != 0) /* takes dj */
		return rc < 0 ? rc : -EIO;
	return 0;
}

void
distill_rpc(struct cloudd *cd, struct rpc_req *r)
{
	Dccl__Envelope e;
	Dccl__DistillStarted ds = DCCL__DISTILL_STARTED__INIT;
	struct distill_counts c;
	uint64_t base = cd->model.version;
	int rc;

	dccl__envelope__init(&e);
	rc = distill_start(cd, r->env->admin_distill->epochs, &c);
	if (rc == -EBUSY) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_BUSY, "%s is running; "
		    "retry later", cd->rolling_back ? "a rollback" :
		    cd->training ? "training" : "a pool load");
		return;
	}
	if (rc == -ENOENT) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_NOT_FOUND, base == 0 ?
		    "no model yet" : "no usable patch for v%llu (%zu stale "
		    "dropped, %zu skipped)", (unsigned long long)base,
		    c.stale_dropped, c.skipped);
		return;
	}
	if (rc != 0) {
		rpc_error(cd, r, DCCL__ERROR_CODE__E_STORAGE, "%s",
		    store_errmsg(cd->st));
		return;
	}
	e.request_id = r->env->request_id;
	e.device_id = r->env->device_id;
	ds.base_version = base;
	ds.patches = (uint32_t)c.fresh;
	ds.stale_used = (uint32_t)c.stale_used;
	ds.stale_dropped = (uint32_t)c.stale_dropped;
	ds.skipped = (uint32_t)c.skipped;
	e.body_case = DCCL__ENVELOPE__BODY_DISTILL_STARTED;
	e.distill_started = &ds;
	rpc_reply(cd, r, &e);
}

/*
 * Recounts the users with a patch no finished run has used (the store's
 * record, store_patch_used): on the current version, or with
 * distill.buffer, on any base distill_select may use. Patches a run
 * listed count no more, whether it kept the weights or not; a patch that
 * committed after the run listed its patches still counts, whatever its
 * id (several writers on PostgreSQL).
 */
static void
recount(struct cloudd *cd)
{
	uint64_t cur = cd->model.version, min = cur;
	int buffered = cd->cf.distill_buffer > 0;
	/* stale patches count only where distill_select may use them */
	int any_base = buffered && cd->cf.distill_stale != DISTILL_STALE_DROP;
	uint32_t users;
	int64_t first;

	if (any_base)
		min = cur > (uint64_t)cd->cf.distill_max_age ?
		    cur - (uint64_t)cd->cf.distill_max_age : 1;
	cd->distill_seen = cd->patches;
	cd->distill_base = cur;
	cd->distill_ready = 0;
	cd->distill_first = 0;
	if (store_patch_pending(cd->st, min, cur, &users, &first) != 0) {
		log_warnx("DISTILL: counting patches: %s", store_errmsg(cd->st));
		return;
	}
	cd->distill_ready = users;
	cd->distill_first = first;
}

void
distill_cron(struct cloudd *cd)
{
	const struct cloudd_conf *cf = &cd->cf;
	struct distill_counts c;
	int by_count, by_time;

	if ((cf->distill_min_patches == 0 && cf->distill_buffer == 0) ||
	    cd->stopping || cd->training ||
	    cd->pool_loading || cd->rolling_back || cd->model.version == 0 ||
	    clock_now() < cd->distill_retry_t)
		return;
	/* cd->patches moves with every upload, any replica's (replica.c). */
	if (cd->patches != cd->distill_seen ||
	    cd->model.version != cd->distill_base)
		recount(cd);
	if (cd->distill_ready == 0)
		return;
	by_count = cd->distill_ready >= (uint64_t)(cf->distill_buffer > 0 ?
	    cf->distill_buffer : cf->distill_min_patches);
	by_time = cf->distill_window_s > 0 && (int64_t)time(NULL) -
	    cd->distill_first >= cf->distill_window_s;
	if (!by_count && !by_time)
		return;
	log_info("DISTILL: automatic run: %u users with a %spatch on v%llu "
	    "(%s)", cd->distill_ready, cf->distill_buffer > 0 ? "new " : "",
	    (unsigned long long)cd->model.version, !by_count ?
	    "distill.window-s elapsed" : cf->distill_buffer > 0 ?
	    "distill.buffer reached" : "distill.min-patches reached");
	if (distill_start(cd, 0, &c) != 0)
		cd->distill_retry_t = clock_now() + 60;
}
