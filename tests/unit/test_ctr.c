/*
 * test_ctr: cmocka tests for shared/ml/ctr.c and shared/ml/ctr_io.c on tiny
 * synthetic datasets built here.
 *
 * The whole-model gradient check perturbs each float32 parameter by
 * +-1e-3 (the actual float step is used as the denominator) and compares
 * central differences of the double-accumulated loss with the analytic
 * gradient: |analytic - numeric| <= 2e-4 + 2e-2 |numeric|. That bound
 * covers float round-off in the forward (~1e-5 here); the kernel tests
 * check each layer in double much more tightly.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model.pb-c.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/rng.h"
#include "tests/unit/ctr_fixture.h"
#include "tests/unit/ctr_gradcheck.h"

void	openblas_set_num_threads(int);

/* ---- synthetic data ------------------------------------------------------- */

/*
 * n samples over nu users, ni items, 4 genres; item i has genres
 * {i%4, (i/4)%4}; each sample gets 0..5 history items. Label: 1 when the
 * item is in the first half of the catalogue (separable through the item
 * embedding), flipped for user 0 (needs the user field).
 */
static void
make_ds(struct dataset *ds, size_t n, uint32_t nu, uint32_t ni, uint64_t seed)
{
	struct rng r;

	fixture_ds_init(ds, n, nu, ni, 5);
	rng_seed(&r, seed);
	for (size_t i = 0; i < n; i++) {
		struct sample *s = &ds->s[i];
		s->user = rng_below(&r, nu);
		s->item = rng_below(&r, ni);
		s->ts = 1500000000 + (int64_t)rng_below(&r, 86400 * 14);
		s->genres = fixture_genres(s->item);
		s->label = (s->item < ni / 2) ? 1.0f : 0.0f;
		if (s->user == 0)
			s->label = 1.0f - s->label;
		s->rating = s->label > 0.5f ? 4.5f : 2.0f;
		fixture_hist(ds, s, rng_below(&r, 6), &r, ni);
	}
}

static struct ctr_config
small_cfg(void)
{
	struct ctr_config c = { 0 };

	c.n_users = 6;
	c.n_items = 20;
	c.n_genres = 4;
	c.dim = 4;
	c.hist_k = 3;
	c.n_hidden = 2;
	c.hidden[0] = 16;	/* 8-6 can stall on the user-0 XOR */
	c.hidden[1] = 8;
	c.patch_rank = 2;
	return c;
}

/* Sets every patch m table to random values so U, V, m all get gradient. */
static void
randomize_patch(struct ctr *m, uint64_t seed)
{
	struct rng r;

	rng_seed(&r, seed);
	for (int i = 0; i < ctr_num_tensors(m); i++) {
		const struct param_tensor *t = ctr_tensor_at(m, i);
		if (t->kind == CTR_T_PATCH_M || t->kind == CTR_T_PATCH_B)
			for (size_t k = 0; k < t->n; k++)
				t->data[k] = (float)(rng_unif(&r) - 0.5);
	}
}

/* ---- gradient check ------------------------------------------------------- */

static void
test_grad_check(void **state)
{
	struct ctr_config c = small_cfg();
	struct dataset ds;
	enum { B = 8 };
	uint32_t idx[B] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	float y[B], w[B], off[B];
	struct rng r;

	c.n_users = 4;
	c.n_items = 8;
	c.dim = 3;
	c.hidden[0] = 5;
	c.hidden[1] = 4;
	make_ds(&ds, B, 5, 9, 21);	/* includes OOV user 4 and item 8 */
	rng_seed(&r, 5);
	for (int b = 0; b < B; b++) {
		y[b] = (float)rng_unif(&r);		/* soft labels */
		w[b] = (float)(0.5 + rng_unif(&r));
		off[b] = (float)(rng_unif(&r) - 0.5);
	}
	struct ctr *m = new_model(&c, 3);
	randomize_patch(m, 4);

	assert_int_equal(gradcheck_all(m, &ds, idx, B, y, w, off), 0);
	ctr_free(m);
	free_ds(&ds);
}

/* ---- training ----------------------------------------------------------------- */

static void
test_loss_falls(void **state)
{
	struct ctr_config c = small_cfg();
	struct dataset ds;
	struct ctr_train_opts o;
	struct ctr_train_stats st;
	double before, after;

	make_ds(&ds, 600, 6, 20, 1);
	uint32_t *idx = iota(ds.n, 0);
	struct ctr *m = new_model(&c, 1);
	ctr_train_opts_default(&o);
	o.opt.lr = 1e-2f;
	o.epochs = 30;
	o.batch = 32;
	assert_int_equal(ctr_eval_logloss(m, &ds, idx, ds.n, &before), 0);
	assert_int_equal(ctr_train(m, &ds, idx, ds.n, NULL, 0, &o, &st), 0);
	assert_int_equal(ctr_eval_logloss(m, &ds, idx, ds.n, &after), 0);
	printf("  logloss %.4f -> %.4f (last epoch train %.4f)\n", before,
	    after, st.train_loss);
	assert_true(before > 0.6 && after < 0.1);
	assert_int_equal(st.epochs, 30);
	assert_true(isnan(st.val_loss));

	/* SGD works too */
	struct ctr *m2 = new_model(&c, 1);
	o.opt.kind = CTR_OPT_SGD;
	o.opt.lr = 0.5f;
	assert_int_equal(ctr_train(m2, &ds, idx, ds.n, NULL, 0, &o, &st), 0);
	assert_int_equal(ctr_eval_logloss(m2, &ds, idx, ds.n, &after), 0);
	printf("  sgd: logloss -> %.4f\n", after);
	assert_true(after < 0.3);
	ctr_free(m2);
	ctr_free(m);
	free(idx);
	free_ds(&ds);
}

static void
test_determinism(void **state)
{
	struct ctr_config c = small_cfg();
	struct dataset ds;
	struct ctr_train_opts o;
	struct ctr *m[3];

	make_ds(&ds, 300, 6, 20, 2);
	uint32_t *idx = iota(ds.n, 0);
	ctr_train_opts_default(&o);
	o.epochs = 3;
	o.batch = 17;
	o.seed = 99;
	for (int i = 0; i < 3; i++) {
		m[i] = new_model(&c, i < 2 ? 7 : 8);
		assert_int_equal(ctr_train(m[i], &ds, idx, ds.n, NULL, 0, &o,
		    NULL), 0);
	}
	assert_memory_equal(ctr_params(m[0]), ctr_params(m[1]),
	    ctr_num_params(m[0]) * sizeof(float));
	assert_memory_not_equal(ctr_params(m[0]), ctr_params(m[2]),
	    ctr_num_params(m[0]) * sizeof(float));
	/* a clone trains exactly like its original */
	struct ctr *cl = ctr_clone(m[0]);
	assert_memory_equal(ctr_params(cl), ctr_params(m[0]),
	    ctr_num_params(cl) * sizeof(float));
	assert_int_equal(ctr_train(cl, &ds, idx, 50, NULL, 0, &o, NULL), 0);
	assert_int_equal(ctr_train(m[0], &ds, idx, 50, NULL, 0, &o, NULL), 0);
	assert_memory_equal(ctr_params(cl), ctr_params(m[0]),
	    ctr_num_params(cl) * sizeof(float));
	ctr_free(cl);
	for (int i = 0; i < 3; i++)
		ctr_free(m[i]);
	ctr_free(NULL);
	free(idx);
	free_ds(&ds);
}

/*
 * A model whose gradients were released (a device's installed model)
 * predicts as before, its clones train as before, and it trains itself
 * exactly like a model that kept them (the buffer comes back zeroed).
 */
static void
test_release_grads(void **state)
{
	struct ctr_config c = small_cfg();
	struct dataset ds;
	struct ctr_train_opts o;
	struct ctr *a, *b, *cl;
	float *pa, *pb;

	(void)state;
	make_ds(&ds, 200, 6, 20, 4);
	uint32_t *idx = iota(ds.n, 0);
	ctr_train_opts_default(&o);
	o.epochs = 2;
	o.batch = 16;
	o.seed = 5;
	a = new_model(&c, 3);
	b = new_model(&c, 3);
	randomize_patch(a, 1);
	randomize_patch(b, 1);
	assert_non_null(ctr_tensor_at(b, 0)->grad);
	ctr_release_grads(b);
	for (int i = 0; i < ctr_num_tensors(b); i++)
		assert_null(ctr_tensor_at(b, i)->grad);
	pa = calloc(ds.n, sizeof(float));
	pb = calloc(ds.n, sizeof(float));
	assert_non_null(pa);
	assert_non_null(pb);
	assert_int_equal(ctr_predict(a, &ds, idx, ds.n, pa), 0);
	assert_int_equal(ctr_predict(b, &ds, idx, ds.n, pb), 0);
	assert_memory_equal(pa, pb, ds.n * sizeof(float));
	cl = ctr_clone(b);
	assert_int_equal(ctr_train(cl, &ds, idx, ds.n, NULL, 0, &o, NULL), 0);
	assert_int_equal(ctr_train(a, &ds, idx, ds.n, NULL, 0, &o, NULL), 0);
	assert_memory_equal(ctr_params(cl), ctr_params(a),
	    ctr_num_params(a) * sizeof(float));
	assert_int_equal(ctr_train(b, &ds, idx, ds.n, NULL, 0, &o, NULL), 0);
	assert_memory_equal(ctr_params(b), ctr_params(a),
	    ctr_num_params(a) * sizeof(float));
	assert_non_null(ctr_tensor_at(b, 0)->grad);
	free(pa);
	free(pb);
	ctr_free(cl);
	ctr_free(a);
	ctr_free(b);
	free(idx);
	free_ds(&ds);
}

/* Compares every tensor of a and b; kind_changed selects which must differ. */
static void
check_frozen(const struct ctr *a, const struct ctr *b, enum ctr_tkind moving)
{
	for (int i = 0; i < ctr_num_tensors(a); i++) {
		const struct param_tensor *ta = ctr_tensor_at(a, i);
		const struct param_tensor *tb = ctr_tensor_at(b, i);
		/* MetaPatch training moves the per-user bias with m */
		if (ta->kind == moving || (moving == CTR_T_PATCH_M &&
		    ta->kind == CTR_T_PATCH_B))
			assert_memory_not_equal(ta->data, tb->data,
			    ta->n * sizeof(float));
		else if (ta->n > 0)
			assert_memory_equal(ta->data, tb->data,
			    ta->n * sizeof(float));
	}
}

static void
test_metapatch_only(void **state)
{
	struct ctr_config c = small_cfg();
	struct dataset ds;
	struct ctr_train_opts o;

	make_ds(&ds, 300, 6, 20, 3);
	uint32_t *idx = iota(ds.n, 0);
	struct ctr *base = new_model(&c, 5);
	ctr_train_opts_default(&o);
	o.epochs = 2;
	o.batch = 32;
	o.sel = CTR_SEL_NO_PATCH;
	assert_int_equal(ctr_train(base, &ds, idx, ds.n, NULL, 0, &o, NULL), 0);
	/* NO_PATCH on the cloud: the m tables are still exactly zero */
	const struct param_tensor *pm = ctr_tensor_find(base, "patch_m0");
	assert_non_null(pm);
	for (size_t k = 0; k < pm->n; k++)
		assert_true(pm->data[k] == 0.0f);
	pm = ctr_tensor_find(base, "patch_b");
	assert_non_null(pm);
	for (size_t k = 0; k < pm->n; k++)
		assert_true(pm->data[k] == 0.0f);

	/* device: only the m vectors move, with Adam and weight decay */
	for (int opt = 0; opt < 2; opt++) {
		struct ctr *dev = ctr_clone(base);
		o.sel = CTR_SEL_METAPATCH_ONLY;
		o.opt.kind = opt ? CTR_OPT_SGD : CTR_OPT_ADAM;
		o.opt.lr = opt ? 0.5f : 1e-2f;
		o.opt.wd = 1e-3f;
		o.epochs = 3;
		assert_int_equal(ctr_train(dev, &ds, idx, ds.n, NULL, 0, &o,
		    NULL), 0);
		check_frozen(dev, base, CTR_T_PATCH_M);
		ctr_free(dev);
	}
	/* NO_PATCH after m moved: m stays, everything else moves */
	struct ctr *dev = ctr_clone(base);
	randomize_patch(dev, 9);
	struct ctr *snap = ctr_clone(dev);
	o.sel = CTR_SEL_NO_PATCH;
	o.opt.kind = CTR_OPT_ADAM;
	assert_int_equal(ctr_train(dev, &ds, idx, ds.n, NULL, 0, &o, NULL), 0);
	for (int i = 0; i < ctr_num_tensors(dev); i++) {
		const struct param_tensor *t = ctr_tensor_at(dev, i);
		if (t->kind == CTR_T_PATCH_M || t->kind == CTR_T_PATCH_B)
			assert_memory_equal(t->data, ctr_tensor_at(snap,
			    i)->data, t->n * sizeof(float));
	}
	ctr_free(snap);
	ctr_free(dev);
	ctr_free(base);
	free(idx);
	free_ds(&ds);
}

/*
 * CTR_SEL_PATCH_UV (DCCL's second step on the cloud): the U, V gradients of
 * every patch layer, the lowest included, are the whole model's (so the
 * finite-difference check of test_grad_check covers them), nothing else
 * gets one, and training moves U and V alone.
 */
static void
test_patch_uv_only(void **state)
{
	struct ctr_config c = small_cfg();
	struct dataset ds;
	struct ctr_train_opts o;
	enum { B = 8 };
	uint32_t idx[B] = { 0, 1, 2, 3, 4, 5, 6, 7 };

	(void)state;
	make_ds(&ds, 300, 6, 20, 3);
	struct ctr *m = new_model(&c, 5);
	randomize_patch(m, 3);		/* m != 0, or U and V get no signal */
	assert_true(c.n_hidden >= 2);	/* a patch below another */
	assert_int_equal(ctr_forward(m, &ds, idx, B, NULL), 0);
	ctr_zero_grad(m);
	assert_int_equal(ctr_backward(m, CTR_SEL_ALL, NULL, NULL, NULL, NULL),
	    0);
	float *all[CTR_MAX_TENSORS] = { NULL };
	for (int i = 0; i < ctr_num_tensors(m); i++) {
		const struct param_tensor *t = ctr_tensor_at(m, i);
		all[i] = malloc(t->n * sizeof(float) + 1);
		memcpy(all[i], t->grad, t->n * sizeof(float));
	}
	assert_int_equal(ctr_forward(m, &ds, idx, B, NULL), 0);
	ctr_zero_grad(m);
	assert_int_equal(ctr_backward(m, CTR_SEL_PATCH_UV, NULL, NULL, NULL,
	    NULL), 0);
	int uv = 0;
	for (int i = 0; i < ctr_num_tensors(m); i++) {
		const struct param_tensor *t = ctr_tensor_at(m, i);
		if (t->kind == CTR_T_PATCH_UV) {
			double norm = 0;
			for (size_t k = 0; k < t->n; k++)
				norm += fabs(t->grad[k]);
			assert_true(norm > 0);
			assert_memory_equal(t->grad, all[i],
			    t->n * sizeof(float));
			uv++;
		} else
			for (size_t k = 0; k < t->n; k++)
				assert_true(t->grad[k] == 0.0f);
		free(all[i]);
	}
	assert_int_equal(uv, 2 * c.n_hidden);

	/* training: only U and V move */
	struct ctr *snap = ctr_clone(m);
	uint32_t *all_idx = iota(ds.n, 0);
	ctr_train_opts_default(&o);
	o.epochs = 1;
	o.batch = 32;
	o.sel = CTR_SEL_PATCH_UV;
	assert_int_equal(ctr_train(m, &ds, all_idx, ds.n, NULL, 0, &o, NULL),
	    0);
	check_frozen(m, snap, CTR_T_PATCH_UV);
	ctr_free(snap);
	ctr_free(m);
	free(all_idx);
	free_ds(&ds);
}

/*
 * The per-user bias: a user whose labels are all 1 gets a rising bias from
 * bias-only SGD, only that user's row moves, and the bias shifts every
 * logit of the user by the same amount (so it keeps the user's ranking).
 */
static void
test_patch_bias(void **state)
{
	struct ctr_config c = small_cfg();
	struct dataset ds;
	struct ctr_opt o;
	float before[40], after[40];
	uint32_t mine[40];
	int nm = 0;

	make_ds(&ds, 200, 6, 20, 8);
	for (size_t i = 0; i < ds.n; i++)
		if (ds.s[i].user == 2 && nm < 40) {
			ds.s[i].label = 1.0f;
			mine[nm++] = (uint32_t)i;
		}
	assert_true(nm >= 8);
	struct ctr *m = new_model(&c, 6);
	struct ctr *snap = ctr_clone(m);
	const struct param_tensor *pb = ctr_tensor_find(m, "patch_b");
	assert_non_null(pb);
	assert_int_equal(pb->kind, CTR_T_PATCH_B);
	assert_int_equal(pb->shape[0], c.n_users + 1);
	assert_int_equal(ctr_logits(m, &ds, mine, (size_t)nm, before), 0);
	ctr_opt_default(&o, CTR_OPT_SGD, 0.5f);
	for (int step = 0; step < 10; step++) {
		assert_int_equal(ctr_forward(m, &ds, mine, nm, NULL), 0);
		ctr_zero_grad(m);
		assert_int_equal(ctr_backward(m, CTR_SEL_BIAS_ONLY, NULL,
		    NULL, NULL, NULL), 0);
		assert_int_equal(ctr_step(m, CTR_SEL_BIAS_ONLY, &o), 0);
	}
	assert_true(pb->data[2] > 0.1f);
	for (uint32_t u = 0; u <= c.n_users; u++)
		if (u != 2)
			assert_true(pb->data[u] == 0.0f);
	assert_int_equal(ctr_logits(m, &ds, mine, (size_t)nm, after), 0);
	for (int i = 0; i < nm; i++)
		assert_true(fabsf(after[i] - before[i] - pb->data[2]) < 1e-5f);
	/* everything but the bias row is untouched */
	for (int i = 0; i < ctr_num_tensors(m); i++) {
		const struct param_tensor *t = ctr_tensor_at(m, i);
		if (t != pb && t->n > 0)
			assert_memory_equal(t->data, ctr_tensor_at(snap,
			    i)->data, t->n * sizeof(float));
	}
	ctr_free(snap);
	ctr_free(m);
	free_ds(&ds);
}

struct prog {
	int	 n;
	double	 val[16];
};

static void
prog_cb(void *arg, int epoch, double loss, double val)
{
	struct prog *p = arg;

	assert_int_equal(epoch, p->n + 1);
	assert_true(isfinite(loss));
	if (p->n < 16)
		p->val[p->n] = val;
	p->n++;
}

static void
test_early_stopping(void **state)
{
	struct ctr_config c = small_cfg();
	struct dataset ds;
	struct ctr_train_opts o;
	struct ctr_train_stats st;
	struct prog p = { 0 };
	double v;

	make_ds(&ds, 400, 6, 20, 4);
	/* val = the last 100 samples with flipped labels: training hurts */
	for (size_t i = 300; i < 400; i++)
		ds.s[i].label = 1.0f - ds.s[i].label;
	uint32_t *tr = iota(300, 0), *va = iota(100, 300);
	struct ctr *m = new_model(&c, 6);
	struct ctr *init = ctr_clone(m);
	ctr_train_opts_default(&o);
	o.opt.lr = 1e-2f;
	o.epochs = 10;
	o.batch = 32;
	o.patience = 2;
	o.progress = prog_cb;
	o.progress_arg = &p;
	assert_int_equal(ctr_train(m, &ds, tr, 300, va, 100, &o, &st), 0);
	printf("  flipped val: epochs %d best %d val %.4f\n", st.epochs,
	    st.best_epoch, st.val_loss);
	/* stopped by patience, well before 10 epochs */
	assert_int_equal(st.epochs, st.best_epoch + o.patience);
	assert_true(st.epochs < 10);
	assert_int_equal(p.n, st.epochs);
	assert_int_equal(ctr_eval_logloss(m, &ds, va, 100, &v), 0);
	assert_true(v == st.val_loss);
	if (st.best_epoch == 0)
		assert_memory_equal(ctr_params(m), ctr_params(init),
		    ctr_num_params(m) * sizeof(float));
	else
		assert_true(v == p.val[st.best_epoch - 1]);
	ctr_free(init);

	/* val drawn like train: the best epoch is kept, and it is restored */
	for (size_t i = 300; i < 400; i++)
		ds.s[i].label = 1.0f - ds.s[i].label;
	p.n = 0;
	o.epochs = 8;
	o.patience = 0;
	o.opt.lr = 3e-2f;
	struct ctr *m2 = new_model(&c, 6);
	assert_int_equal(ctr_train(m2, &ds, tr, 300, va, 100, &o, &st), 0);
	printf("  normal val: epochs %d best %d val %.4f\n", st.epochs,
	    st.best_epoch, st.val_loss);
	assert_int_equal(st.epochs, 8);
	assert_true(st.best_epoch >= 1);
	double best = INFINITY;
	for (int i = 0; i < p.n; i++)
		best = p.val[i] < best ? p.val[i] : best;
	assert_true(st.val_loss == best);
	assert_int_equal(ctr_eval_logloss(m2, &ds, va, 100, &v), 0);
	assert_true(v == best);

	/* stop flag: cancelled before the first batch */
	atomic_int stop = 1;
	o.stop = &stop;
	o.progress = NULL;
	assert_int_equal(ctr_train(m2, &ds, tr, 300, NULL, 0, &o, NULL),
	    -ECANCELED);
	ctr_free(m2);
	ctr_free(m);
	free(tr);
	free(va);
	free_ds(&ds);
}

static void
test_oov(void **state)
{
	struct ctr_config c = small_cfg();
	struct dataset ds;
	struct ctr_train_opts o;
	float logits[10];

	make_ds(&ds, 10, 6, 20, 5);
	ds.s[0].user = 1000000;
	ds.s[1].item = UINT32_MAX;
	ds.s[2].genres = 0xffffffffu;	/* bits >= n_genres ignored */
	ds.s[3].hist_off = 1u << 30;	/* history beyond ds->hist: empty */
	ds.s[3].hist_n = 7;
	ds.hist[ds.s[4].hist_off] = 999999;	/* OOV history item */
	ds.s[4].hist_n = ds.s[4].hist_n ? ds.s[4].hist_n : 1;
	uint32_t *idx = iota(10, 0);
	struct ctr *m = new_model(&c, 1);
	const struct param_tensor *tu = ctr_tensor_find(m, "emb_user");
	const float *oov = tu->data + (size_t)c.n_users * c.dim;
	for (int i = 0; i < c.dim; i++)
		assert_true(oov[i] == 0.0f);
	assert_int_equal(ctr_forward(m, &ds, idx, 10, logits), 0);
	for (int i = 0; i < 10; i++)
		assert_true(isfinite(logits[i]));
	ctr_train_opts_default(&o);
	o.opt.lr = 1e-2f;
	o.epochs = 3;
	o.batch = 4;
	assert_int_equal(ctr_train(m, &ds, idx, 10, NULL, 0, &o, NULL), 0);
	/* the OOV row is what the unknown user trains */
	int moved = 0;
	for (int i = 0; i < c.dim; i++)
		moved |= oov[i] != 0.0f;
	assert_true(moved);
	float rep[3 * 4 * 10], urep[8];
	ctr_repr(m, &ds, idx, 10, rep);
	ctr_user_repr(m, &ds, idx, 1, urep);
	for (int i = 0; i < 3 * 4 * 10; i++)
		assert_true(isfinite(rep[i]));
	/* bad indices are refused, not read */
	uint32_t bad = 10;
	assert_int_equal(ctr_forward(m, &ds, &bad, 1, NULL), -EINVAL);
	assert_int_equal(ctr_forward(m, &ds, idx, 0, NULL), -EINVAL);
	/* a model with no genres and no history still works */
	c.n_genres = 0;
	c.hist_k = 0;
	c.patch_rank = 0;
	struct ctr *m2 = new_model(&c, 1);
	assert_int_equal(ctr_train(m2, &ds, idx, 10, NULL, 0, &o, NULL), 0);
	ctr_free(m2);
	/* invalid configs are refused */
	struct ctr *m3 = (struct ctr *)1;
	c.dim = 0;
	assert_int_equal(ctr_new(&m3, &c, 1), -EINVAL);
	assert_null(m3);
	c.dim = 4;
	c.patch_rank = 1000;
	assert_int_equal(ctr_new(&m3, &c, 1), -EINVAL);
	ctr_free(m);
	free(idx);
	free_ds(&ds);
}

static void
test_predict_repr(void **state)
{
	struct ctr_config c = small_cfg();
	struct dataset ds;
	enum { N = 600 };

	make_ds(&ds, N, 6, 20, 6);
	uint32_t *idx = iota(N, 0);
	struct ctr *m = new_model(&c, 2);
	randomize_patch(m, 3);
	float *p = malloc(N * sizeof(float)), *z = malloc(N * sizeof(float));
	assert_int_equal(ctr_predict(m, &ds, idx, N, p), 0);
	assert_int_equal(ctr_logits(m, &ds, idx, N, z), 0);
	for (int i = 0; i < N; i += 37) {
		float one;
		assert_int_equal(ctr_forward(m, &ds, idx + i, 1, &one), 0);
		assert_true(fabsf(one - z[i]) < 1e-5f);
		assert_true(fabsf(p[i] - 1.0f / (1.0f + expf(-z[i]))) < 1e-6f);
	}
	/* repr: unit norm, and independent of user and time */
	int RD = ctr_repr_dim(m);
	assert_int_equal(RD, 3 * c.dim);
	ds.s[1] = ds.s[0];
	ds.s[1].user = (ds.s[0].user + 1) % 6;
	ds.s[1].ts += 3 * 3600;
	float *rep = malloc(2 * RD * sizeof(float));
	ctr_repr(m, &ds, idx, 2, rep);
	double nn = 0;
	for (int i = 0; i < RD; i++)
		nn += (double)rep[i] * rep[i];
	assert_true(fabs(nn - 1) < 1e-5);
	assert_memory_equal(rep, rep + RD, RD * sizeof(float));
	float urep[8];
	assert_int_equal(ctr_user_repr_dim(m), 2 * c.dim);
	ctr_user_repr(m, &ds, idx, 50, urep);
	nn = 0;
	for (int i = 0; i < 8; i++)
		nn += (double)urep[i] * urep[i];
	assert_true(fabs(nn - 1) < 1e-5);
	double f = ctr_flops(m);
	printf("  flops/prediction %.0f, params %zu\n", f,
	    ctr_num_params(m));
	assert_true(f > 2.0 * 24 * 8);
	free(rep);
	free(p);
	free(z);
	ctr_free(m);
	free(idx);
	free_ds(&ds);
}

/* ---- serialization --------------------------------------------------------- */

static struct ctr *
trained_model(struct dataset *ds)
{
	struct ctr_config c = small_cfg();
	struct ctr_train_opts o;

	make_ds(ds, 200, 6, 20, 7);
	uint32_t *idx = iota(ds->n, 0);
	struct ctr *m = new_model(&c, 11);
	randomize_patch(m, 12);
	ctr_train_opts_default(&o);
	o.epochs = 2;
	o.batch = 32;
	assert_int_equal(ctr_train(m, ds, idx, ds->n, NULL, 0, &o, NULL), 0);
	free(idx);
	return m;
}

static void
test_roundtrip(void **state)
{
	struct dataset ds;
	struct ctr *m = trained_model(&ds), *m2 = NULL;
	struct ctr_meta meta = { 0 }, meta2;
	uint8_t *buf, *buf2;
	size_t len, len2;
	char err[256];

	meta.version = 7;
	meta.parent = 6;
	meta.global_ctr = 0.49;
	meta.created = 1700000000;
	meta.n_metrics = 2;
	snprintf(meta.metrics[0].name, sizeof(meta.metrics[0].name), "auc");
	meta.metrics[0].value = 0.71;
	snprintf(meta.metrics[1].name, sizeof(meta.metrics[1].name),
	    "logloss");
	meta.metrics[1].value = 0.66;
	assert_int_equal(ctr_io_pack(m, &meta, &buf, &len), 0);
	assert_int_equal(ctr_io_unpack(&m2, &meta2, buf, len, err,
	    sizeof(err)), 0);
	assert_non_null(m2);
	assert_memory_equal(ctr_config(m), ctr_config(m2),
	    sizeof(struct ctr_config));
	assert_int_equal(ctr_num_params(m), ctr_num_params(m2));
	assert_memory_equal(ctr_params(m), ctr_params(m2),
	    ctr_num_params(m) * sizeof(float));
	assert_memory_equal(&meta, &meta2, sizeof(meta));
	/* pack(unpack(x)) == x */
	assert_int_equal(ctr_io_pack(m2, &meta2, &buf2, &len2), 0);
	assert_int_equal(len, len2);
	assert_memory_equal(buf, buf2, len);
	printf("  %zu params -> %zu bytes\n", ctr_num_params(m), len);
	/* meta may be NULL both ways */
	free(buf2);
	ctr_free(m2);
	assert_int_equal(ctr_io_pack(m, NULL, &buf2, &len2), 0);
	assert_int_equal(ctr_io_unpack(&m2, NULL, buf2, len2, NULL, 0), 0);
	assert_memory_equal(ctr_params(m), ctr_params(m2),
	    ctr_num_params(m) * sizeof(float));
	free(buf2);
	ctr_free(m2);
	free(buf);
	ctr_free(m);
	free_ds(&ds);
}

/* Unpacks buf, lets edit() change the message, repacks into *out. */
static void
edit_msg(const uint8_t *buf, size_t len, void (*edit)(Dccl__Model *),
    uint8_t **out, size_t *outlen)
{
	Dccl__Model *msg = dccl__model__unpack(NULL, len, buf);
	size_t nt;

	assert_non_null(msg);
	nt = msg->n_tensors;	/* edits only drop tensors; restore to free */
	edit(msg);
	*outlen = dccl__model__get_packed_size(msg);
	*out = malloc(*outlen);
	dccl__model__pack(msg, *out);
	msg->n_tensors = nt;
	dccl__model__free_unpacked(msg, NULL);
}

static Dccl__Tensor *
find_t(Dccl__Model *msg, const char *name)
{
	for (size_t i = 0; i < msg->n_tensors; i++)
		if (strcmp(msg->tensors[i]->name, name) == 0)
			return msg->tensors[i];
	fail();
	return NULL;
}

static void
ed_nan(Dccl__Model *m)
{
	find_t(m, "mlp1_w")->data[3] = NAN;
}

static void
ed_inf(Dccl__Model *m)
{
	find_t(m, "emb_item")->data[0] = INFINITY;
}

static void
ed_shape(Dccl__Model *m)
{
	Dccl__Tensor *t = find_t(m, "mlp0_w");
	uint32_t tmp = t->shape[0];	/* transpose: same length, wrong shape */
	t->shape[0] = t->shape[1];
	t->shape[1] = tmp;
}

static void
ed_len(Dccl__Model *m)
{
	find_t(m, "out_w")->n_data--;
}

static void
ed_missing(Dccl__Model *m)
{
	m->n_tensors--;	/* the last one: a patch m table */
}

static void
ed_unknown(Dccl__Model *m)
{
	find_t(m, "out_b")->name[0] = 'X';
}

static void
ed_dup(Dccl__Model *m)
{
	/* "emb_item" -> "emb_user": emb_user twice */
	memcpy(m->tensors[1]->name, "emb_user", 8);
}

static void
ed_kind(Dccl__Model *m)
{
	m->kind[0] = 'x';
}

static void
ed_format(Dccl__Model *m)
{
	m->format = CTR_IO_FORMAT_2 + 1;	/* no such format yet */
}

static void
ed_config(Dccl__Model *m)
{
	m->config->hidden[0] = 9;	/* tensors no longer match */
}

static void
ed_big(Dccl__Model *m)
{
	m->config->n_items = 1u << 30;
}

static void
ed_hours(Dccl__Model *m)
{
	m->config->n_hours = 25;
}

static void
ed_cksum(Dccl__Model *m)
{
	m->checksum.len = 16;
}

static void
ed_global(Dccl__Model *m)
{
	m->global_ctr = 0.9;	/* metadata is outside the checksum */
}

static void
test_corrupt(void **state)
{
	struct dataset ds;
	struct ctr *m = trained_model(&ds), *m2;
	uint8_t *buf, *bad;
	size_t len, blen;
	char err[256];
	int rc;
	static const struct {
		const char *what;
		void (*edit)(Dccl__Model *);
		int rc;
	} cases[] = {
		{ "nan", ed_nan, CTR_IO_ENONFINITE },
		{ "inf", ed_inf, CTR_IO_ENONFINITE },
		{ "shape", ed_shape, CTR_IO_ESHAPE },
		{ "length", ed_len, CTR_IO_ESHAPE },
		{ "missing", ed_missing, CTR_IO_EMISSING },
		{ "unknown", ed_unknown, CTR_IO_EUNKNOWN },
		{ "dup", ed_dup, CTR_IO_EUNKNOWN },
		{ "kind", ed_kind, CTR_IO_EKIND },
		{ "format", ed_format, CTR_IO_EFORMAT },
		{ "config", ed_config, CTR_IO_ESHAPE },
		{ "big", ed_big, CTR_IO_ETOOBIG },
		{ "hours", ed_hours, CTR_IO_ECONFIG },
		{ "cksum", ed_cksum, CTR_IO_ECHECKSUM },
		{ "global", ed_global, 0 },
	};

	assert_int_equal(ctr_io_pack(m, NULL, &buf, &len), 0);

	/* truncated */
	size_t cuts[] = { len - 1, len / 2, 10, 1 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		m2 = (struct ctr *)1;
		rc = ctr_io_unpack(&m2, NULL, buf, cuts[i], err, sizeof(err));
		printf("  cut %zu: %d %s\n", cuts[i], rc, err);
		assert_int_equal(rc, CTR_IO_EUNPACK);
		assert_null(m2);
	}
	assert_int_equal(ctr_io_unpack(&m2, NULL, buf, 0, NULL, 0),
	    CTR_IO_EUNPACK);
	uint8_t garbage[64];
	memset(garbage, 0xff, sizeof(garbage));
	assert_int_equal(ctr_io_unpack(&m2, NULL, garbage, sizeof(garbage),
	    NULL, 0), CTR_IO_EUNPACK);

	/* one flipped mantissa bit in tensor data: finite, wrong checksum */
	const struct param_tensor *t = ctr_tensor_find(m, "mlp0_w");
	size_t pos = 0;
	while (pos + 8 <= len && memcmp(buf + pos, t->data + 5, 8) != 0)
		pos++;
	assert_true(pos + 8 <= len);
	bad = malloc(len);
	memcpy(bad, buf, len);
	bad[pos] ^= 0x01;	/* little-endian: lowest mantissa bit */
	rc = ctr_io_unpack(&m2, NULL, bad, len, err, sizeof(err));
	printf("  flipped: %d %s\n", rc, err);
	assert_int_equal(rc, CTR_IO_ECHECKSUM);
	assert_null(m2);
	free(bad);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		edit_msg(buf, len, cases[i].edit, &bad, &blen);
		m2 = NULL;
		rc = ctr_io_unpack(&m2, NULL, bad, blen, err, sizeof(err));
		printf("  %-8s: %d %s\n", cases[i].what, rc, err);
		assert_int_equal(rc, cases[i].rc);
		if (rc == 0)
			assert_non_null(m2);
		else
			assert_null(m2);
		ctr_free(m2);
		free(bad);
	}
	/* every code has its own message */
	for (int a = CTR_IO_ENOPATCH; a <= CTR_IO_EUNPACK; a++)
		for (int b = a + 1; b <= CTR_IO_EUNPACK; b++)
			assert_string_not_equal(ctr_io_strerror(a),
			    ctr_io_strerror(b));
	free(buf);
	ctr_free(m);
	free_ds(&ds);
}

/* A model with a NaN or an Inf weight is refused at packing. */
static void
test_pack_nonfinite(void **state)
{
	struct dataset ds;
	struct ctr *m = trained_model(&ds);
	const float bad[2] = { NAN, INFINITY };
	uint8_t *buf = (uint8_t *)1;
	size_t len = 1;

	(void)state;
	for (int k = 0; k < 2; k++) {
		float *w = ctr_tensor_find(m, "out_b")->data;
		float keep = w[0];
		w[0] = bad[k];
		assert_int_equal(ctr_io_pack(m, NULL, &buf, &len),
		    CTR_IO_ENONFINITE);
		assert_null(buf);
		assert_int_equal(len, 0);
		w[0] = keep;
	}
	assert_int_equal(ctr_io_pack(m, NULL, &buf, &len), 0);
	free(buf);
	ctr_free(m);
	free_ds(&ds);
}

static void
test_patch_io(void **state)
{
	struct dataset ds;
	struct ctr *m = trained_model(&ds), *other;
	Dccl__Tensor **t;
	size_t n;
	int R = ctr_config(m)->patch_rank;

	other = ctr_clone(m);
	randomize_patch(other, 77);
	assert_int_equal(ctr_io_patch_get(m, 2, &t, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(t[0]->name, "patch_m0");
	assert_int_equal(t[1]->n_data, R);
	/* any order */
	Dccl__Tensor *sw[2] = { t[1], t[0] };
	assert_int_equal(ctr_io_patch_put(other, 2, sw, 2), 0);
	for (int l = 0; l < 2; l++) {
		char nm[24];
		snprintf(nm, sizeof(nm), "patch_m%d", l);
		const float *a = ctr_tensor_find(m, nm)->data + 2 * R;
		const float *b = ctr_tensor_find(other, nm)->data + 2 * R;
		assert_memory_equal(a, b, R * sizeof(float));
		/* other users untouched */
		assert_memory_not_equal(ctr_tensor_find(m, nm)->data + R,
		    ctr_tensor_find(other, nm)->data + R, R * sizeof(float));
	}
	assert_int_equal(ctr_io_patch_put(other, 2, t, 1), CTR_IO_EMISSING);
	Dccl__Tensor *dup[2] = { t[0], t[0] };
	assert_int_equal(ctr_io_patch_put(other, 2, dup, 2), CTR_IO_EUNKNOWN);
	t[1]->data[0] = NAN;
	assert_int_equal(ctr_io_patch_put(other, 2, t, 2), CTR_IO_ENONFINITE);
	t[1]->n_data = 1;
	assert_int_equal(ctr_io_patch_put(other, 2, t, 2), CTR_IO_ESHAPE);
	t[1]->n_data = R;
	ctr_io_tensors_free(t, n);

	struct ctr_config c = small_cfg();
	c.patch_rank = 0;
	struct ctr *np = new_model(&c, 1);
	assert_int_equal(ctr_io_patch_get(np, 0, &t, &n), CTR_IO_ENOPATCH);
	ctr_free(np);
	ctr_free(other);
	ctr_free(m);
	free_ds(&ds);
}

/* ---- model views ------------------------------------------------------------ */

/* Every parameter of m, tensor by tensor (views have no one buffer). */
static float *
params_of(const struct ctr *m)
{
	float *p = malloc(ctr_num_params(m) * sizeof(float)), *q = p;

	for (int i = 0; i < ctr_num_tensors(m); i++) {
		const struct param_tensor *t = ctr_tensor_at(m, i);
		memcpy(q, t->data, t->n * sizeof(float));
		q += t->n;
	}
	return p;
}

static void
assert_same_params(const struct ctr *a, const struct ctr *b)
{
	float *pa = params_of(a), *pb = params_of(b);

	assert_int_equal(ctr_num_params(a), ctr_num_params(b));
	assert_memory_equal(pa, pb, ctr_num_params(a) * sizeof(float));
	free(pa);
	free(pb);
}

static void
assert_same_preds(struct ctr *a, struct ctr *b, const struct dataset *ds,
    const uint32_t *idx)
{
	float *pa = calloc(ds->n, sizeof(float));
	float *pb = calloc(ds->n, sizeof(float));

	assert_int_equal(ctr_logits(a, ds, idx, ds->n, pa), 0);
	assert_int_equal(ctr_logits(b, ds, idx, ds->n, pb), 0);
	assert_memory_equal(pa, pb, ds->n * sizeof(float));
	free(pa);
	free(pb);
}

/* m's own tensors (the per-user tables) move, the others not. */
static void
metapatch_steps(struct ctr *m, const struct dataset *ds, const uint32_t *idx)
{
	struct ctr_opt o;

	ctr_opt_default(&o, CTR_OPT_SGD, 0.5f);
	for (int k = 0; k < 5; k++) {
		ctr_zero_grad(m);
		assert_int_equal(ctr_forward(m, ds, idx + 32 * k, 32, NULL), 0);
		assert_int_equal(ctr_backward(m, CTR_SEL_METAPATCH_ONLY, NULL,
		    NULL, NULL, NULL), 0);
		assert_int_equal(ctr_step(m, CTR_SEL_METAPATCH_ONLY, &o), 0);
	}
}

/*
 * Views (ctr_view, issue 14): two devices' models over one base predict
 * and train bit for bit as their own full copies would, and no training
 * of one writes the base or changes the other: per-user training stays in
 * the view's own rows, fine-tuning copies on write.
 */
static void
test_views(void **state)
{
	struct ctr_config c = small_cfg(), c2;
	struct dataset ds;
	struct ctr_train_opts o;
	struct ctr *base, *a, *b, *va, *vb, *vc, *x;
	float *b0, *b1;

	(void)state;
	make_ds(&ds, 300, 6, 20, 11);
	uint32_t *idx = iota(ds.n, 0);
	base = new_model(&c, 7);
	randomize_patch(base, 3);
	ctr_release_grads(base);	/* as deviced holds it */
	a = ctr_clone(base);
	randomize_patch(a, 4);
	b = ctr_clone(base);
	randomize_patch(b, 5);
	assert_int_equal(ctr_view(&va, base, ctr_config(a), a), 0);
	assert_int_equal(ctr_view(&vb, base, ctr_config(b), b), 0);
	assert_ptr_equal(ctr_view_base(va), base);
	assert_null(ctr_view_base(a));
	assert_null(ctr_params(va));
	assert_int_equal(ctr_num_params(va), ctr_num_params(a));
	assert_ptr_equal(ctr_tensor_find(va, "emb_item")->data,
	    ctr_tensor_find(base, "emb_item")->data);
	assert_ptr_not_equal(ctr_tensor_find(va, "emb_user")->data,
	    ctr_tensor_find(base, "emb_user")->data);
	assert_same_params(va, a);
	assert_same_preds(va, a, &ds, idx);
	assert_same_preds(vb, b, &ds, idx);
	b0 = params_of(base);

	/* per-user training: in the view's rows, as on the full copy */
	metapatch_steps(va, &ds, idx);
	metapatch_steps(a, &ds, idx);
	assert_ptr_equal(ctr_view_base(va), base);	/* no copy made */
	assert_same_params(va, a);
	assert_same_preds(va, a, &ds, idx);
	b1 = params_of(base);
	assert_memory_equal(b0, b1, ctr_num_params(base) * sizeof(float));
	free(b1);
	assert_same_preds(vb, b, &ds, idx);

	/* fine-tuning every weight: copy on write, the same result */
	ctr_train_opts_default(&o);
	o.epochs = 2;
	o.batch = 32;
	assert_int_equal(ctr_train(va, &ds, idx, ds.n, NULL, 0, &o, NULL), 0);
	assert_int_equal(ctr_train(a, &ds, idx, ds.n, NULL, 0, &o, NULL), 0);
	assert_null(ctr_view_base(va));
	assert_non_null(ctr_params(va));
	assert_same_params(va, a);
	b1 = params_of(base);
	assert_memory_equal(b0, b1, ctr_num_params(base) * sizeof(float));
	free(b1);
	assert_same_preds(vb, b, &ds, idx);

	/* a step of every weight, and a parameter copy, on a view */
	assert_int_equal(ctr_view(&vc, base, ctr_config(b), b), 0);
	x = ctr_clone(vc);	/* an ordinary model */
	assert_null(ctr_view_base(x));
	assert_same_params(x, b);
	{
		struct ctr_opt so;
		ctr_opt_default(&so, CTR_OPT_SGD, 0.1f);
		ctr_zero_grad(vc);
		assert_int_equal(ctr_forward(vc, &ds, idx, 64, NULL), 0);
		assert_int_equal(ctr_backward(vc, CTR_SEL_ALL, NULL, NULL,
		    NULL, NULL), 0);
		assert_int_equal(ctr_step(vc, CTR_SEL_ALL, &so), 0);
		assert_null(ctr_view_base(vc));
	}
	assert_int_equal(ctr_copy_params(x, vb), 0);
	assert_same_params(x, b);
	ctr_free(x);
	ctr_free(vc);
	assert_int_equal(ctr_view(&vc, base, ctr_config(b), b), 0);
	assert_int_equal(ctr_copy_params_sel(vc, a, CTR_SEL_METAPATCH_ONLY), 0);
	assert_ptr_equal(ctr_view_base(vc), base);
	assert_int_equal(ctr_copy_params_sel(vc, a, CTR_SEL_NO_PATCH), 0);
	assert_null(ctr_view_base(vc));
	b1 = params_of(base);
	assert_memory_equal(b0, b1, ctr_num_params(base) * sizeof(float));
	free(b1);
	ctr_free(vc);

	/* refused: another shape, a view of a view */
	c2 = c;
	c2.dim = 8;
	vc = new_model(&c2, 1);
	assert_int_equal(ctr_view(&x, base, ctr_config(vc), vc), -EINVAL);
	assert_null(x);
	ctr_free(vc);
	assert_int_equal(ctr_view(&x, vb, ctr_config(b), b), -EINVAL);

	/* the base lives as long as a view reads it */
	ctr_free(base);
	assert_same_preds(vb, b, &ds, idx);
	assert_same_params(vb, b);
	ctr_free(vb);
	ctr_free(va);
	ctr_free(a);
	ctr_free(b);
	free(b0);
	free(idx);
	free_ds(&ds);
}

/* Steps of sel on batches of 8 with plain SGD. */
static void
sgd_steps(struct ctr *m, enum ctr_sel sel, const struct dataset *ds,
    const uint32_t *idx, int steps)
{
	struct ctr_opt o;

	ctr_opt_default(&o, CTR_OPT_SGD, 0.3f);
	for (int s = 0; s < steps; s++) {
		ctr_zero_grad(m);
		assert_int_equal(ctr_forward(m, ds, idx + (s * 8) % 64, 8,
		    NULL), 0);
		assert_int_equal(ctr_backward(m, sel, NULL, NULL, NULL, NULL),
		    0);
		assert_int_equal(ctr_step(m, sel, &o), 0);
	}
}

/*
 * ctr_track / ctr_revert: a working copy goes back to its source after
 * steps of any kind. Untracked (a model of up to 2 MiB), a revert copies
 * the tensors sel names; tracked (above), only what the steps wrote: a
 * raw write to a row or tensor no step touched survives a revert, and
 * ctr_track_all makes the next one whole. A parameter copy counts as a
 * write of everything.
 */
static void
track_revert(uint32_t n_items, int tracked)
{
	struct ctr_config c = small_cfg();
	struct dataset ds;
	struct ctr *src, *w, *other;
	const struct param_tensor *ti;
	size_t np;
	float *far;

	c.n_items = n_items;	/* the samples use items < 20 */
	make_ds(&ds, 100, 6, 20, 7);
	uint32_t *idx = iota(ds.n, 0);
	src = new_model(&c, 3);
	other = new_model(&c, 4);
	randomize_patch(src, 1);
	np = ctr_num_params(src);
	w = ctr_clone(src);
	ctr_track(w);
	sgd_steps(w, CTR_SEL_ALL, &ds, idx, 6);
	assert_memory_not_equal(ctr_params(w), ctr_params(src),
	    np * sizeof(float));
	assert_int_equal(ctr_revert(w, src, CTR_SEL_ALL), 0);
	assert_memory_equal(ctr_params(w), ctr_params(src), np * sizeof(float));

	sgd_steps(w, CTR_SEL_METAPATCH_ONLY, &ds, idx, 4);
	sgd_steps(w, CTR_SEL_BIAS_ONLY, &ds, idx, 2);
	assert_int_equal(ctr_revert(w, src, CTR_SEL_METAPATCH_ONLY), 0);
	assert_memory_equal(ctr_params(w), ctr_params(src), np * sizeof(float));

	/* a tensor no step wrote and sel does not name is not copied back */
	sgd_steps(w, CTR_SEL_METAPATCH_ONLY, &ds, idx, 2);
	ctr_tensor_find(w, "mlp0_w")->data[0] += 1.0f;
	assert_int_equal(ctr_revert(w, src, CTR_SEL_METAPATCH_ONLY), 0);
	assert_memory_not_equal(ctr_params(w), ctr_params(src),
	    np * sizeof(float));
	ctr_track_all(w);
	assert_int_equal(ctr_revert(w, src, CTR_SEL_ALL), 0);
	assert_memory_equal(ctr_params(w), ctr_params(src), np * sizeof(float));

	/* tracked: rows; a raw write to a row no step touched stays */
	ti = ctr_tensor_find(w, "emb_item");
	assert_non_null(ti);
	far = ti->data + (size_t)(n_items - 1) * ti->shape[1];
	sgd_steps(w, CTR_SEL_ALL, &ds, idx, 3);
	far[0] += 1.0f;
	assert_int_equal(ctr_revert(w, src, CTR_SEL_ALL), 0);
	if (tracked)
		assert_memory_not_equal(ctr_params(w), ctr_params(src),
		    np * sizeof(float));
	else	/* the whole table went back */
		assert_memory_equal(ctr_params(w), ctr_params(src),
		    np * sizeof(float));
	far[0] += 1.0f;
	ctr_track_all(w);
	assert_int_equal(ctr_revert(w, src, CTR_SEL_ALL), 0);
	assert_memory_equal(ctr_params(w), ctr_params(src), np * sizeof(float));

	/* tracked: exact, whatever sel says */
	if (tracked) {
		sgd_steps(w, CTR_SEL_ALL, &ds, idx, 2);
		assert_int_equal(ctr_revert(w, src, CTR_SEL_BIAS_ONLY), 0);
		assert_memory_equal(ctr_params(w), ctr_params(src),
		    np * sizeof(float));
	}

	/* a copy from another model is reverted whole */
	assert_int_equal(ctr_copy_params_sel(w, other, CTR_SEL_ALL), 0);
	sgd_steps(w, CTR_SEL_ALL, &ds, idx, 2);
	assert_int_equal(ctr_revert(w, src, CTR_SEL_ALL), 0);
	assert_memory_equal(ctr_params(w), ctr_params(src), np * sizeof(float));
	assert_int_equal(ctr_copy_params(w, other), 0);
	assert_int_equal(ctr_revert(w, src, CTR_SEL_ALL), 0);
	assert_memory_equal(ctr_params(w), ctr_params(src), np * sizeof(float));
	ctr_free(w);
	ctr_free(other);
	ctr_free(src);
	free(idx);
	free_ds(&ds);
}

static void
test_track_revert(void **state)
{
	(void)state;
	track_revert(200000, 1);	/* above 2 MiB: tracked */
	track_revert(2000, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grad_check),
		cmocka_unit_test(test_loss_falls),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_release_grads),
		cmocka_unit_test(test_track_revert),
		cmocka_unit_test(test_metapatch_only),
		cmocka_unit_test(test_patch_uv_only),
		cmocka_unit_test(test_patch_bias),
		cmocka_unit_test(test_early_stopping),
		cmocka_unit_test(test_oov),
		cmocka_unit_test(test_predict_repr),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_pack_nonfinite),
		cmocka_unit_test(test_patch_io),
		cmocka_unit_test(test_views),
	};

	openblas_set_num_threads(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
