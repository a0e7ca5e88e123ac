/*
 * test_train_fit: cloudd's learning-rate grid (cloudd/train_model.c):
 * train.lr-grid parsing, and train_model_fit keeping the model of best
 * validation GAUC, bit-identical to that rate trained alone, whatever the
 * grid's order; errors and the stop flag leave no model; the item prior's
 * weight is the validation argmax, and a model without it predicts as the
 * prior at 0 did. Synthetic data
 * built here: each user likes the items of one parity, so within-user
 * order (GAUC) is learnable and a rate too small to move the model stays
 * near chance.
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

#include "cloudd/train_model.h"
#include "shared/ml/ctr.h"
#include "shared/ml/item_prior.h"
#include "shared/ml/kern.h"
#include "shared/ml/metrics.h"
#include "shared/rng.h"
#include "tests/unit/ctr_fixture.h"

void	openblas_set_num_threads(int);

enum { NU = 40, NI = 60, N = 4000, NTR = 3200 };

struct fx {
	struct dataset	 ds;
	struct ctr_config cfg;
	uint32_t	*tri, *vai;
	struct ctr_train_opts o;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct rng r;

	rng_seed(&r, 7);
	fixture_ds_init(&f->ds, N, NU, NI, 4);
	for (size_t i = 0; i < N; i++) {
		struct sample *s = &f->ds.s[i];

		s->user = rng_below(&r, NU);
		s->item = rng_below(&r, NI);
		s->ts = 1000000 + (int64_t)i * 60;
		s->genres = fixture_genres(s->item);
		s->label = (float)((s->item % 2) == (s->user % 2));
		fixture_hist(&f->ds, s, rng_below(&r, 4), &r, NI);
	}
	train_model_defaults(&f->cfg, &f->ds);
	f->cfg.dim = 8;
	f->cfg.hidden[0] = 16;
	f->cfg.hidden[1] = 8;
	f->cfg.patch_rank = 2;
	f->tri = iota(NTR, 0);
	f->vai = iota(N - NTR, NTR);
	ctr_train_opts_default(&f->o);
	f->o.epochs = 6;
	f->o.patience = 2;
	f->o.batch = 64;
	f->o.seed = 3;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	free_ds(&f->ds);
	free(f->tri);
	free(f->vai);
	free(f);
	return 0;
}

static void
test_parse(void **state)
{
	double lr[TRAIN_LR_MAX];
	char err[128];
	int n = -1;

	(void)state;
	assert_int_equal(train_lr_grid_parse("0.001,0.003", lr, &n, err,
	    sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_true(lr[0] == 0.001 && lr[1] == 0.003);
	assert_int_equal(train_lr_grid_parse("", lr, &n, err, sizeof(err)),
	    0);
	assert_int_equal(n, 0);
	assert_int_equal(train_lr_grid_parse("1e-3", lr, &n, err,
	    sizeof(err)), 0);
	assert_int_equal(n, 1);
	static const char *bad[] = { "abc", "0", "-1e-3", "11", "1e-3,",
	    ",1e-3", "1e-3,,2e-3", "1e-3;2e-3", "nan", "inf", "1e-3 ",
	    "1,1,1,1,1,1,1,1,1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(train_lr_grid_parse(bad[i], lr, &n, err,
		    sizeof(err)), -EINVAL);
		assert_true(err[0] != '\0');
	}
}

static double
gauc_of(struct ctr *m, const struct fx *f)
{
	size_t n = N - NTR;
	float *p = calloc(n, sizeof(float)), *y = calloc(n, sizeof(float));
	uint32_t *u = calloc(n, sizeof(uint32_t));
	double g;

	assert_int_equal(ctr_predict(m, &f->ds, f->vai, n, p), 0);
	for (size_t i = 0; i < n; i++) {
		y[i] = f->ds.s[f->vai[i]].label;
		u[i] = f->ds.s[f->vai[i]].user;
	}
	g = metrics_gauc(p, y, u, n, NU, NULL, NULL, NULL);
	free(p);
	free(y);
	free(u);
	return g;
}

static int
same_params(struct ctr *a, struct ctr *b)
{
	size_t na = ctr_num_params(a), nb = ctr_num_params(b);

	return na == nb && memcmp(ctr_params(a), ctr_params(b),
	    na * sizeof(float)) == 0;
}

static void
test_keeps_best(void **state)
{
	struct fx *f = *state;
	const double up[2] = { 1e-7, 1e-2 }, down[2] = { 1e-2, 1e-7 };
	const double one[1] = { 1e-2 };
	struct train_fit r1, r2, r3;
	struct ctr *m1 = NULL, *m2 = NULL, *m3 = NULL;

	assert_int_equal(train_model_fit(&m1, &f->cfg, 5, &f->ds, f->tri, NTR,
	    f->vai, N - NTR, &f->o, up, 2, &r1), 0);
	assert_non_null(m1);
	assert_int_equal(r1.n, 2);
	assert_int_equal(r1.chosen, 1);
	assert_true(r1.val_gauc[1] > r1.val_gauc[0] + 0.1);
	assert_true(r1.val_gauc[1] > 0.7);
	assert_true(fabs(gauc_of(m1, f) - r1.val_gauc[1]) < 1e-12);
	assert_true(r1.lr[0] == 1e-7 && r1.lr[1] == 1e-2);
	assert_true(isfinite(r1.val_loss[0]) && isfinite(r1.val_loss[1]));

	assert_int_equal(train_model_fit(&m2, &f->cfg, 5, &f->ds, f->tri, NTR,
	    f->vai, N - NTR, &f->o, down, 2, &r2), 0);
	assert_int_equal(r2.chosen, 0);
	assert_true(r2.val_gauc[0] == r1.val_gauc[1]);

	assert_int_equal(train_model_fit(&m3, &f->cfg, 5, &f->ds, f->tri, NTR,
	    f->vai, N - NTR, &f->o, one, 1, &r3), 0);
	assert_int_equal(r3.chosen, 0);
	assert_int_equal(r3.st[0].epochs, r1.st[1].epochs);
	/* the kept model is that rate's run, not the last one trained */
	assert_true(same_params(m1, m3));
	assert_true(same_params(m2, m3));
	ctr_free(m1);
	ctr_free(m2);
	ctr_free(m3);
}

static void
test_errors(void **state)
{
	struct fx *f = *state;
	const double lr[2] = { 1e-3, 3e-3 };
	struct ctr_train_opts o = f->o;
	struct ctr_config bad = f->cfg;
	struct train_fit r;
	struct ctr *m = (struct ctr *)&r;	/* must come back NULL */
	atomic_int stop = 1;

	assert_int_equal(train_model_fit(&m, &f->cfg, 5, &f->ds, f->tri, NTR,
	    f->vai, N - NTR, &o, lr, 0, &r), -EINVAL);
	assert_null(m);
	m = (struct ctr *)&r;
	assert_int_equal(train_model_fit(&m, &f->cfg, 5, &f->ds, f->tri, NTR,
	    f->vai, N - NTR, &o, lr, TRAIN_LR_MAX + 1, &r), -EINVAL);
	assert_null(m);
	bad.dim = 0;
	assert_int_equal(train_model_fit(&m, &bad, 5, &f->ds, f->tri, NTR,
	    f->vai, N - NTR, &o, lr, 2, &r), -EINVAL);
	assert_null(m);
	o.stop = &stop;
	assert_int_equal(train_model_fit(&m, &f->cfg, 5, &f->ds, f->tri, NTR,
	    f->vai, N - NTR, &o, lr, 2, &r), -ECANCELED);
	assert_null(m);
	/* without a validation slice the first rate is kept */
	o.stop = NULL;
	o.patience = 0;
	o.epochs = 1;
	assert_int_equal(train_model_fit(&m, &f->cfg, 5, &f->ds, f->tri, NTR,
	    NULL, 0, &o, lr, 2, &r), 0);
	assert_non_null(m);
	assert_int_equal(r.chosen, 0);
	assert_true(isnan(r.val_gauc[0]) && isnan(r.val_gauc[1]));
	ctr_free(m);
}

/*
 * Clicks by item alone, P = 0.1 .. 0.9 by item % 5, and a model with the
 * prior trained too little to learn them: a prior with something to say.
 */
static struct ctr *
prior_model(struct fx *f)
{
	const double lr[1] = { 1e-5 };
	struct ctr_train_opts o = f->o;
	struct ctr_config c = f->cfg;
	struct train_fit r;
	struct ctr *m = NULL;
	struct rng rr;

	rng_seed(&rr, 11);
	for (size_t i = 0; i < N; i++)
		f->ds.s[i].label = (float)(rng_unif(&rr) <
		    0.1 + 0.2 * (f->ds.s[i].item % 5));
	o.epochs = 1;
	o.patience = 0;
	c.item_prior = 1;
	assert_int_equal(train_model_fit(&m, &c, 5, &f->ds, f->tri, NTR,
	    f->vai, N - NTR, &o, lr, 1, &r), 0);
	return m;
}

/* Mean validation logloss of m. */
static double
val_logloss(struct ctr *m, const struct fx *f)
{
	const size_t nv = N - NTR;
	float *z = calloc(nv, sizeof(float));
	double l = 0;

	assert_non_null(z);
	assert_int_equal(ctr_logits(m, &f->ds, f->vai, nv, z), 0);
	for (size_t i = 0; i < nv; i++)
		l += bce_logit(z[i], f->ds.s[f->vai[i]].label);
	free(z);
	return l / (double)nv;
}

/*
 * The prior trains at 0; its weight is the argmax of the validation GAUC
 * over the list (the earlier on ties), a list without 0 never gives 0,
 * and the model without the prior predicts as the prior at 0 does.
 */
static void
test_prior(void **state)
{
	struct fx *f = *state;
	const double pw[4] = { 0, 0.5, 1, 2 }, one = 1;
	const size_t nv = N - NTR;
	struct ctr *m, *m2;
	const struct param_tensor *t;
	double g[4], w, g0, gw;
	float *z0 = calloc(nv, sizeof(float)), *z2 = calloc(nv, sizeof(float));
	int best = 0;

	m = prior_model(f);
	t = ctr_tensor_find(m, "item_prior");
	for (size_t k = 0; k < t->n; k++)
		assert_true(t->data[k] == 0.0f);	/* trained at 0 */
	for (int i = 0; i < 4; i++) {
		assert_int_equal(ctr_item_prior_fit(m, &f->ds, f->tri, NTR,
		    ITEM_PRIOR_K, pw[i]), 0);
		g[i] = gauc_of(m, f);
		if (g[i] > g[best])
			best = i;
	}
	assert_int_equal(train_model_prior(m, &f->ds, f->tri, NTR, f->vai, nv,
	    pw, 4, &w, &g0, &gw), 0);
	assert_true(fabs(g0 - g[0]) < 1e-12);
	assert_true(best > 0);	/* the prior helps this under-trained model */
	assert_true(w == pw[best] && fabs(gw - g[best]) < 1e-12);
	/* left at that weight */
	assert_true(fabs(gauc_of(m, f) - g[best]) < 1e-12);
	assert_int_equal(train_model_prior(m, &f->ds, f->tri, NTR, f->vai, nv,
	    &one, 1, &w, &g0, &gw), 0);
	assert_true(w == 1 && fabs(gw - g[2]) < 1e-12);
	assert_int_equal(train_model_prior(m, &f->ds, f->tri, NTR, NULL, 0,
	    pw, 4, &w, &g0, &gw), 0);
	assert_true(w == 0);
	for (size_t k = 0; k < t->n; k++)
		assert_true(t->data[k] == 0.0f);
	assert_int_equal(ctr_logits(m, &f->ds, f->vai, nv, z0), 0);
	m2 = ctr_item_prior_drop(m);
	assert_non_null(m2);
	assert_false(ctr_config(m2)->item_prior);
	assert_null(ctr_tensor_find(m2, "item_prior"));
	assert_int_equal(ctr_logits(m2, &f->ds, f->vai, nv, z2), 0);
	assert_memory_equal(z0, z2, nv * sizeof(float));
	assert_null(ctr_item_prior_drop(m2));
	printf("  prior GAUC by weight: %.4f %.4f %.4f %.4f\n", g[0], g[1],
	    g[2], g[3]);
	ctr_free(m2);
	ctr_free(m);
	free(z0);
	free(z2);
}

/*
 * train_model_finish, cloudd's step: the weight of train_model_prior,
 * then a recalibration that keeps the validation GAUC (a > 0: every
 * user's order) and lowers the validation logloss; at weight 0 the model
 * without the prior.
 */
static void
test_finish(void **state)
{
	struct fx *f = *state;
	const double pw[4] = { 0, 0.5, 1, 2 }, zero = 0;
	const size_t nv = N - NTR;
	struct ctr *m = prior_model(f), *m0 = ctr_clone(m), *mw;
	struct train_prior p;
	double w, g0, gw, before;

	assert_non_null(m0);
	mw = ctr_clone(m);
	assert_non_null(mw);
	assert_int_equal(train_model_prior(mw, &f->ds, f->tri, NTR, f->vai,
	    nv, pw, 4, &w, &g0, &gw), 0);
	before = val_logloss(mw, f);
	assert_int_equal(train_model_finish(&m, &f->ds, f->tri, NTR, f->vai,
	    nv, pw, 4, &p), 0);
	assert_true(p.w == w && p.w > 0 && p.g == gw && p.g0 == g0);
	assert_true(p.a > 0 && isfinite(p.b) && (p.a != 1 || p.b != 0));
	assert_true(ctr_config(m)->item_prior);
	assert_true(fabs(gauc_of(m, f) - gw) < 1e-9);
	assert_true(val_logloss(m, f) < before);
	printf("  finish: weight %g, logit' = %.4f logit %+.4f, val logloss "
	    "%.4f -> %.4f\n", p.w, p.a, p.b, before, val_logloss(m, f));
	/* the default list (TRAIN_PRIOR_WEIGHTS) is pw: the same choice */
	{
		struct ctr *md = prior_model(f);
		struct train_prior pd;

		assert_int_equal(train_model_finish_default(&md, &f->ds,
		    f->tri, NTR, f->vai, nv, &pd), 0);
		assert_true(pd.w == w && pd.a == p.a && pd.b == p.b);
		ctr_free(md);
	}
	/* weight 0: replaced by the model without the prior, no recalibration */
	assert_int_equal(train_model_finish(&m0, &f->ds, f->tri, NTR,
	    f->vai, nv, &zero, 1, &p), 0);
	assert_true(p.w == 0 && p.a == 1 && p.b == 0);
	assert_false(ctr_config(m0)->item_prior);
	assert_null(ctr_tensor_find(m0, "item_prior"));
	ctr_free(mw);
	ctr_free(m0);
	ctr_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test_setup_teardown(test_keeps_best, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prior, setup, teardown),
		cmocka_unit_test_setup_teardown(test_finish, setup, teardown),
	};

	openblas_set_num_threads(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
