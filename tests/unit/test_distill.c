/*
 * test_distill: cmocka tests for cloudd/distill.c (MoMoDistill).
 *
 * The synthetic set-up: 16 users, 40 items. In the pool every user
 * follows one rule (label 1 for the first half of the items). On their
 * devices, users 0..7 ("effect users") like everything in the second half
 * too (labels are flipped with probability 0.15 everywhere, so that no
 * model is certain): the pool never shows it, so the cloud model cannot know it. Each
 * effect user trains a MetaPatch on its device data (as deviced does:
 * only its m rows move), the patch is packed as an UploadPatch, and the
 * cloud distills. The distilled model's logloss on held-out device data
 * of the effect users must fall against the model before, and against a
 * control that trains the same epochs with lambda = 0 (so the gain is the
 * teachers', not extra training); these runs have no validation slice,
 * since the pool's slice cannot show the effect (with it, the base
 * weights must be kept bit for bit, or validation must have improved).
 * Teachers on the newest samples only and centred teachers are checked
 * on a pure level shift (test_distill_recent_center). The stale-patch
 * rule is tested on selection: weights for decay, nothing for drop, newest patch per user.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cloudd/distill.h"
#include "dccl.pb-c.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/rng.h"

void	openblas_set_num_threads(int);

#define NU	16
#define NI	40
#define N_EFFECT 8

/* n samples per user; dev = device data (with the effect) or pool. */
static void
make_ds(struct dataset *ds, size_t per_user, int dev, uint64_t seed)
{
	struct rng r;
	size_t n = per_user * NU;

	memset(ds, 0, sizeof(*ds));
	rng_seed(&r, seed);
	ds->s = calloc(n, sizeof(*ds->s));
	ds->n = ds->cap = n;
	ds->hist_cap = n * 3 + 1;
	ds->hist = calloc(ds->hist_cap, sizeof(uint32_t));
	ds->n_users = NU;
	ds->n_items = NI;
	ds->n_genres = 4;
	for (size_t i = 0; i < n; i++) {
		struct sample *s = &ds->s[i];
		s->user = (uint32_t)(i / per_user);
		s->item = rng_below(&r, NI);
		s->ts = 1500000000 + (int64_t)i * 3600;
		s->genres = 1u << (s->item % 4);
		s->label = s->item < NI / 2 ? 1.0f : 0.0f;
		if (dev && s->user < N_EFFECT)
			s->label = 1.0f;
		if (rng_below(&r, 100) < 15)	/* noise keeps it calibrated */
			s->label = 1.0f - s->label;
		s->hist_off = (uint32_t)ds->hist_len;
		s->hist_n = (uint16_t)rng_below(&r, 3);
		for (int k = 0; k < s->hist_n; k++)
			ds->hist[ds->hist_len++] = rng_below(&r, NI);
	}
}

static void
free_ds(struct dataset *ds)
{
	free(ds->s);
	free(ds->hist);
}

static struct ctr *
base_model(const struct dataset *pool)
{
	struct ctr_config c = { 0 };
	struct ctr_train_opts o;
	struct ctr *m = NULL;
	uint32_t *idx = calloc(pool->n, sizeof(*idx));

	c.n_users = NU;
	c.n_items = NI;
	c.n_genres = 4;
	c.dim = 4;
	c.hist_k = 3;
	c.n_hidden = 2;
	c.hidden[0] = 16;
	c.hidden[1] = 8;
	c.patch_rank = 4;
	assert_int_equal(ctr_new(&m, &c, 3), 0);
	for (size_t i = 0; i < pool->n; i++)
		idx[i] = (uint32_t)i;
	ctr_train_opts_default(&o);
	ctr_opt_default(&o.opt, CTR_OPT_ADAM, 0.01f);
	o.epochs = 15;
	o.batch = 32;
	assert_int_equal(ctr_train(m, pool, idx, pool->n, NULL, 0, &o, NULL),
	    0);
	free(idx);
	return m;
}

/* The samples of user u in ds (contiguous by construction). */
static uint32_t *
user_idx(const struct dataset *ds, uint32_t u, size_t *n)
{
	uint32_t *v = calloc(ds->n + 1, sizeof(*v));

	*n = 0;
	for (size_t i = 0; i < ds->n; i++)
		if (ds->s[i].user == u)
			v[(*n)++] = (uint32_t)i;
	return v;
}

/* A device's patch for user u, packed as the UploadPatch it uploads. */
static void
device_patch(const struct ctr *base, const struct dataset *dev, uint32_t u,
    uint64_t base_version, struct store_patch *p)
{
	struct ctr *c = ctr_clone(base);
	struct ctr_train_opts o;
	Dccl__UploadPatch up = DCCL__UPLOAD_PATCH__INIT;
	Dccl__Tensor **t = NULL;
	size_t n = 0, nt = 0;
	uint32_t *idx = user_idx(dev, u, &n);

	ctr_train_opts_default(&o);
	ctr_opt_default(&o.opt, CTR_OPT_ADAM, 0.05f);
	o.sel = CTR_SEL_METAPATCH_ONLY;
	o.epochs = 30;
	o.batch = 16;
	assert_int_equal(ctr_train(c, dev, idx, n, NULL, 0, &o, NULL), 0);
	assert_int_equal(ctr_io_patch_get(c, u, &t, &nt), 0);
	up.base_version = base_version;
	up.n_tensors = nt;
	up.tensors = t;
	up.kind = "metapatch";
	memset(p, 0, sizeof(*p));
	p->user_id = u;
	p->base_version = base_version;
	snprintf(p->kind, sizeof(p->kind), "metapatch");
	p->size = dccl__upload_patch__get_packed_size(&up);
	p->blob = malloc(p->size);
	dccl__upload_patch__pack(&up, p->blob);
	ctr_io_tensors_free(t, nt);
	ctr_free(c);
	free(idx);
}

/* Mean logloss of m over the effect users' samples of ds. */
static double
effect_loss(struct ctr *m, const struct dataset *ds)
{
	uint32_t *idx = calloc(ds->n, sizeof(*idx));
	size_t n = 0;
	double l = 0;

	for (size_t i = 0; i < ds->n; i++)
		if (ds->s[i].user < N_EFFECT)
			idx[n++] = (uint32_t)i;
	assert_int_equal(ctr_eval_logloss(m, ds, idx, n, &l), 0);
	free(idx);
	return l;
}

static void
test_distill_picks_up_device_signal(void **state)
{
	struct dataset pool, dev, test;
	struct ctr *base, *student, *control, *teacher;
	struct store_patch p[N_EFFECT];
	struct distill_pick *pk = NULL;
	struct distill_counts c;
	struct distill_opts dopt = { 3.0, DISTILL_STALE_DECAY, 0.5, 3, 0, 0 };
	struct distill_stats st, st0;
	struct ctr_train_opts o;
	uint32_t *tri, *vai;
	size_t npk = 0, ntr = 0, nva = 0;
	double before, after, after0;

	(void)state;
	make_ds(&pool, 40, 0, 11);
	make_ds(&dev, 40, 1, 12);
	make_ds(&test, 30, 1, 13);
	base = base_model(&pool);
	for (uint32_t u = 0; u < N_EFFECT; u++)
		device_patch(base, &dev, u, 1, &p[u]);
	assert_int_equal(distill_select(p, N_EFFECT, 1, &dopt, &pk, &npk, &c),
	    0);
	assert_int_equal(npk, N_EFFECT);
	assert_int_equal(c.fresh, N_EFFECT);
	/* One teacher: the frozen base with every device's patch in m. */
	teacher = ctr_clone(base);
	for (size_t i = 0; i < npk; i++) {
		assert_int_equal(distill_apply_patch(teacher, &p[pk[i].patch],
		    pk[i].user), 0);
		pk[i].teacher = 0;
	}
	/* The teachers know what the pool does not. */
	assert_true(effect_loss(teacher, &test) < effect_loss(base, &test) -
	    0.05);
	/* Pool split: the last 4 samples of each user validate. */
	tri = calloc(pool.n, sizeof(*tri));
	vai = calloc(pool.n, sizeof(*vai));
	for (size_t i = 0; i < pool.n; i++) {
		if (i % 40 >= 36)
			vai[nva++] = (uint32_t)i;
		else
			tri[ntr++] = (uint32_t)i;
	}
	ctr_train_opts_default(&o);
	ctr_opt_default(&o.opt, CTR_OPT_ADAM, 0.005f);
	o.epochs = 5;
	o.batch = 32;
	/*
	 * With the pool's validation slice, which never shows the effect,
	 * the distilled model does not beat the base there, and the rule
	 * of training keeps the base weights (best epoch 0).
	 */
	student = ctr_clone(base);
	assert_int_equal(distill_fit(student, &pool, tri, ntr, vai, nva,
	    &teacher, pk, npk, &o, 0, &st), 0);
	assert_int_equal(st.n_soft, N_EFFECT * 36);
	if (st.best_epoch == 0)
		assert_memory_equal(ctr_params(student), ctr_params(base),
		    ctr_num_params(base) * sizeof(float));
	else
		assert_true(st.val_after < st.val_before);
	ctr_free(student);
	/* Without a validation slice: the fixed epochs, as trained. */
	student = ctr_clone(base);
	assert_int_equal(distill_fit(student, &pool, tri, ntr, NULL, 0,
	    &teacher, pk, npk, &o, 0, &st), 0);
	assert_int_equal(st.best_epoch, o.epochs);
	/* Control: the same training with lambda = 0. */
	for (size_t i = 0; i < npk; i++)
		pk[i].weight = 0;
	control = ctr_clone(base);
	assert_int_equal(distill_fit(control, &pool, tri, ntr, NULL, 0,
	    &teacher, pk, npk, &o, 0, &st0), 0);
	assert_int_equal(st0.n_soft, 0);
	before = effect_loss(base, &test);
	after = effect_loss(student, &test);
	after0 = effect_loss(control, &test);
	print_message("effect users' test logloss: base %.4f, distilled %.4f, "
	    "lambda=0 control %.4f, teacher %.4f\n", before, after, after0,
	    effect_loss(teacher, &test));
	assert_true(after < before - 0.02);
	assert_true(after < after0 - 0.02);
	/*
	 * Frozen per-user rows: the student's user embedding and m tables
	 * come out bit-identical, the shared parameters move, and the soft
	 * set is the same.
	 */
	for (size_t i = 0; i < npk; i++)
		pk[i].weight = 3.0f;
	{
		struct ctr *fz = ctr_clone(base);
		struct distill_stats sf;
		int moved = 0;

		assert_int_equal(distill_fit(fz, &pool, tri, ntr, NULL, 0,
		    &teacher, pk, npk, &o, DISTILL_FIT_FREEZE_USERS, &sf), 0);
		assert_int_equal(sf.n_soft, st.n_soft);
		assert_int_equal(sf.best_epoch, o.epochs);
		for (int i = 0; i < ctr_num_tensors(base); i++) {
			const struct param_tensor *a = ctr_tensor_at(base, i);
			const struct param_tensor *b = ctr_tensor_at(fz, i);
			int same = memcmp(a->data, b->data,
			    a->n * sizeof(float)) == 0;
			if (a->kind == CTR_T_PATCH_M ||
			    strcmp(a->name, "emb_user") == 0)
				assert_true(same);
			else if (!same)
				moved++;
		}
		assert_true(moved >= 4);
		print_message("frozen per-user rows: effect users' test "
		    "logloss %.4f\n", effect_loss(fz, &test));
		ctr_free(fz);
	}
	/* Users without patches stay near the pool rule. */
	{
		uint32_t *o_idx = calloc(test.n, sizeof(*o_idx));
		size_t on = 0;
		double lb, ls;
		for (size_t i = 0; i < test.n; i++)
			if (test.s[i].user >= N_EFFECT)
				o_idx[on++] = (uint32_t)i;
		ctr_eval_logloss(base, &test, o_idx, on, &lb);
		ctr_eval_logloss(student, &test, o_idx, on, &ls);
		print_message("other users' test logloss: base %.4f, distilled "
		    "%.4f\n", lb, ls);
		assert_true(ls < lb + 0.1);
		free(o_idx);
	}
	for (int u = 0; u < N_EFFECT; u++)
		free(p[u].blob);
	free(pk);
	free(tri);
	free(vai);
	ctr_free(base);
	ctr_free(student);
	ctr_free(control);
	ctr_free(teacher);
	free_ds(&pool);
	free_ds(&dev);
	free_ds(&test);
}

/*
 * distill_pick.recent and DISTILL_FIT_CENTER. The teacher is the base
 * with +2 on the per-user logit bias of users 0..7: a pure level shift.
 * Training samples are handed over newest first. With recent = 0.25 the
 * soft copies are each user's newest 10 of 40 (by timestamp), and their
 * mean target is the teacher's there; centred, the level shift is gone
 * and the targets are the student's own probabilities on those samples.
 */
static double
mean_prob(struct ctr *m, const struct dataset *ds, int newest, float shift)
{
	uint32_t idx[N_EFFECT * 10];
	float lg[N_EFFECT * 10];
	size_t n = 0;
	double sum = 0;

	for (uint32_t u = 0; u < N_EFFECT; u++)
		for (uint32_t k = 0; k < 10; k++)
			idx[n++] = u * 40 + (newest ? 30 + k : k);
	assert_int_equal(ctr_logits(m, ds, idx, n, lg), 0);
	for (size_t i = 0; i < n; i++)
		sum += 1.0 / (1.0 + exp(-(double)(lg[i] + shift)));
	return sum / (double)n;
}

static void
test_distill_recent_center(void **state)
{
	struct dataset pool;
	struct ctr *base, *teacher, *st_m;
	struct distill_pick pk[N_EFFECT];
	struct distill_stats st;
	struct ctr_train_opts o;
	uint32_t *tri;
	double newest, oldest, shifted;

	(void)state;
	make_ds(&pool, 40, 0, 31);
	base = base_model(&pool);
	teacher = ctr_clone(base);
	for (int i = 0; i < ctr_num_tensors(teacher); i++) {
		const struct param_tensor *t = ctr_tensor_at(teacher, i);
		if (t->kind == CTR_T_PATCH_B)
			for (uint32_t u = 0; u < N_EFFECT; u++)
				t->data[u] += 2.0f;
	}
	tri = calloc(pool.n, sizeof(*tri));
	for (size_t i = 0; i < pool.n; i++)
		tri[i] = (uint32_t)(pool.n - 1 - i);	/* newest first */
	memset(pk, 0, sizeof(pk));
	for (uint32_t u = 0; u < N_EFFECT; u++) {
		pk[u].user = u;
		pk[u].weight = 1.0f;
		pk[u].recent = 0.25f;
	}
	ctr_train_opts_default(&o);
	ctr_opt_default(&o.opt, CTR_OPT_ADAM, 0.005f);
	o.epochs = 1;
	o.batch = 32;
	newest = mean_prob(base, &pool, 1, 0);
	oldest = mean_prob(base, &pool, 0, 0);
	shifted = mean_prob(base, &pool, 1, 2.0f);
	st_m = ctr_clone(base);
	assert_int_equal(distill_fit(st_m, &pool, tri, pool.n, NULL, 0,
	    &teacher, pk, N_EFFECT, &o, 0, &st), 0);
	assert_int_equal(st.n_soft, N_EFFECT * 10);
	assert_true(fabs(st.soft_mean - shifted) < 1e-5);
	ctr_free(st_m);
	st_m = ctr_clone(base);
	assert_int_equal(distill_fit(st_m, &pool, tri, pool.n, NULL, 0,
	    &teacher, pk, N_EFFECT, &o, DISTILL_FIT_CENTER, &st), 0);
	assert_int_equal(st.n_soft, N_EFFECT * 10);
	print_message("recent, centred: soft mean %.5f, student on the newest "
	    "%.5f (oldest %.5f), teacher %.5f\n", st.soft_mean, newest,
	    oldest, shifted);
	assert_true(fabs(st.soft_mean - newest) < 1e-5);
	assert_true(fabs(newest - oldest) > 1e-4);
	ctr_free(st_m);
	/* recent 0 (the default): every training sample of the user */
	for (uint32_t u = 0; u < N_EFFECT; u++)
		pk[u].recent = 0;
	st_m = ctr_clone(base);
	assert_int_equal(distill_fit(st_m, &pool, tri, pool.n, NULL, 0,
	    &teacher, pk, N_EFFECT, &o, 0, &st), 0);
	assert_int_equal(st.n_soft, N_EFFECT * 40);
	ctr_free(st_m);
	free(tri);
	ctr_free(teacher);
	ctr_free(base);
	free_ds(&pool);
}

static void
setp(struct store_patch *p, uint64_t id, uint32_t user, uint64_t base,
    const char *kind)
{
	memset(p, 0, sizeof(*p));
	p->id = id;
	p->user_id = user;
	p->base_version = base;
	snprintf(p->kind, sizeof(p->kind), "%s", kind);
}

static const struct distill_pick *
find(const struct distill_pick *pk, size_t n, uint32_t user)
{
	for (size_t i = 0; i < n; i++)
		if (pk[i].user == user)
			return &pk[i];
	return NULL;
}

/* Current version 5, lambda 2, decay 0.5, max-age 3. */
static void
stale_fixture(struct store_patch *p)
{
	setp(&p[0], 1, 1, 5, "metapatch");	/* fresh */
	setp(&p[1], 2, 2, 4, "metapatch");	/* superseded by id 3 */
	setp(&p[2], 3, 2, 5, "metapatch");	/* fresh */
	setp(&p[3], 4, 3, 3, "metapatch");	/* age 2 */
	setp(&p[4], 5, 4, 1, "metapatch");	/* age 4 > max-age */
	setp(&p[5], 6, 5, 5, "finetune-delta");	/* wrong kind */
	setp(&p[6], 7, 6, 6, "metapatch");	/* future base */
	setp(&p[7], 8, 7, 4, "metapatch");	/* age 1 */
	setp(&p[8], 9, 7, 4, "metapatch");	/* same base, newer id */
}

static void
test_stale_decay(void **state)
{
	struct store_patch p[9];
	struct distill_opts o = { 2.0, DISTILL_STALE_DECAY, 0.5, 3, 0, 0 };
	struct distill_pick *pk = NULL;
	struct distill_counts c;
	size_t n = 0;

	(void)state;
	stale_fixture(p);
	assert_int_equal(distill_select(p, 9, 5, &o, &pk, &n, &c), 0);
	assert_int_equal(n, 4);
	assert_int_equal(c.fresh, 2);
	assert_int_equal(c.stale_used, 2);
	assert_int_equal(c.stale_dropped, 1);
	assert_int_equal(c.skipped, 4);	/* superseded x2, kind, future */
	assert_float_equal(find(pk, n, 1)->weight, 2.0, 1e-6);
	assert_int_equal(p[find(pk, n, 2)->patch].id, 3);
	assert_float_equal(find(pk, n, 2)->weight, 2.0, 1e-6);
	assert_float_equal(find(pk, n, 3)->weight, 0.5, 1e-6);
	assert_int_equal(find(pk, n, 3)->base, 3);
	assert_float_equal(find(pk, n, 7)->weight, 1.0, 1e-6);
	assert_int_equal(p[find(pk, n, 7)->patch].id, 9);
	assert_null(find(pk, n, 4));
	assert_null(find(pk, n, 5));
	assert_null(find(pk, n, 6));
	for (size_t i = 1; i < n; i++)
		assert_true(pk[i - 1].user < pk[i].user);
	free(pk);
}

/* Polynomial staleness: lambda / (1 + age)^a, max-age still applies. */
static void
test_stale_poly(void **state)
{
	struct store_patch p[9];
	struct distill_opts o = { 2.0, DISTILL_STALE_POLY, 0.5, 3, 0, 0.5 };
	struct distill_pick *pk = NULL;
	struct distill_counts c;
	size_t n = 0;

	(void)state;
	stale_fixture(p);
	assert_int_equal(distill_select(p, 9, 5, &o, &pk, &n, &c), 0);
	assert_int_equal(n, 4);
	assert_int_equal(c.stale_used, 2);
	assert_int_equal(c.stale_dropped, 1);
	assert_float_equal(find(pk, n, 1)->weight, 2.0, 1e-6);
	assert_float_equal(find(pk, n, 3)->weight, 2.0 / sqrt(3.0), 1e-6);
	assert_float_equal(find(pk, n, 7)->weight, 2.0 / sqrt(2.0), 1e-6);
	free(pk);
	/* a = 0: stale patches weigh as fresh ones; decay 0 is irrelevant */
	o.poly_a = 0;
	o.decay = 0;
	assert_int_equal(distill_select(p, 9, 5, &o, &pk, &n, &c), 0);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++)
		assert_float_equal(pk[i].weight, 2.0, 1e-6);
	free(pk);
}

static void
test_stale_drop(void **state)
{
	struct store_patch p[9];
	struct distill_opts o = { 2.0, DISTILL_STALE_DROP, 0.5, 3, 0, 0 };
	struct distill_pick *pk = NULL;
	struct distill_counts c;
	size_t n = 0;

	(void)state;
	stale_fixture(p);
	assert_int_equal(distill_select(p, 9, 5, &o, &pk, &n, &c), 0);
	assert_int_equal(n, 2);
	assert_int_equal(c.fresh, 2);
	assert_int_equal(c.stale_used, 0);
	assert_int_equal(c.stale_dropped, 3);	/* users 3, 4, 7 */
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(pk[i].base, 5);
		assert_float_equal(pk[i].weight, 2.0, 1e-6);
	}
	free(pk);
	/* Only stale patches: nothing to distill. */
	assert_int_equal(distill_select(p + 3, 2, 5, &o, &pk, &n, &c), 0);
	assert_int_equal(n, 0);
	assert_null(pk);
	assert_int_equal(c.stale_dropped, 2);
	/* decay 0 drops too; an empty list is fine. */
	o.stale = DISTILL_STALE_DECAY;
	o.decay = 0;
	assert_int_equal(distill_select(p + 3, 2, 5, &o, &pk, &n, &c), 0);
	assert_int_equal(n, 0);
	assert_int_equal(distill_select(p, 0, 5, &o, &pk, &n, &c), 0);
	assert_int_equal(n, 0);
}

/*
 * A device whose guard did not adopt uploads the base's own m rows: that
 * patch is recognised (teacher = student); a trained one is not.
 */
static void
test_patch_is_base(void **state)
{
	struct dataset pool, dev;
	struct ctr *base;
	struct store_patch trained, same;
	Dccl__UploadPatch up = DCCL__UPLOAD_PATCH__INIT;
	Dccl__Tensor **t = NULL;
	size_t nt = 0;

	(void)state;
	make_ds(&pool, 40, 0, 11);
	make_ds(&dev, 40, 1, 12);
	base = base_model(&pool);
	device_patch(base, &dev, 0, 1, &trained);
	assert_int_equal(ctr_io_patch_get(base, 0, &t, &nt), 0);
	up.base_version = 1;
	up.n_tensors = nt;
	up.tensors = t;
	up.kind = "metapatch";
	memset(&same, 0, sizeof(same));
	same.user_id = 0;
	same.base_version = 1;
	snprintf(same.kind, sizeof(same.kind), "metapatch");
	same.size = dccl__upload_patch__get_packed_size(&up);
	same.blob = malloc(same.size);
	dccl__upload_patch__pack(&up, same.blob);
	assert_int_equal(distill_patch_is_base(base, &same, 0), 1);
	assert_int_equal(distill_patch_is_base(base, &trained, 0), 0);
	/* not an UploadPatch */
	memset(same.blob, 0xff, same.size);
	assert_int_equal(distill_patch_is_base(base, &same, 0), -EINVAL);
	ctr_io_tensors_free(t, nt);
	free(same.blob);
	free(trained.blob);
	ctr_free(base);
	free_ds(&pool);
	free_ds(&dev);
}

/* A patch blob that is not an UploadPatch, or has the wrong shape. */
static void
test_bad_patch(void **state)
{
	struct dataset pool;
	struct ctr *m;
	struct store_patch p;
	Dccl__UploadPatch up = DCCL__UPLOAD_PATCH__INIT;
	Dccl__Tensor t = DCCL__TENSOR__INIT, *tp = &t;
	float d[3] = { 1, 2, 3 };
	uint32_t shape[1] = { 3 };
	uint8_t junk[5] = { 0xff, 0xff, 0xff, 0xff, 0xff };

	(void)state;
	make_ds(&pool, 4, 0, 1);
	m = base_model(&pool);
	setp(&p, 1, 0, 1, "metapatch");
	p.blob = junk;
	p.size = sizeof(junk);
	assert_int_not_equal(distill_apply_patch(m, &p, 0), 0);
	t.name = "patch_m0";
	t.n_shape = 1;
	t.shape = shape;
	t.n_data = 3;
	t.data = d;
	up.n_tensors = 1;
	up.tensors = &tp;
	p.size = dccl__upload_patch__get_packed_size(&up);
	p.blob = malloc(p.size);
	dccl__upload_patch__pack(&up, p.blob);
	assert_int_not_equal(distill_apply_patch(m, &p, 0), 0);
	free(p.blob);
	ctr_free(m);
	free_ds(&pool);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_distill_picks_up_device_signal),
		cmocka_unit_test(test_distill_recent_center),
		cmocka_unit_test(test_stale_decay),
		cmocka_unit_test(test_stale_poly),
		cmocka_unit_test(test_stale_drop),
		cmocka_unit_test(test_bad_patch),
		cmocka_unit_test(test_patch_is_base),
	};

	openblas_set_num_threads(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
