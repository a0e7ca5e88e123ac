/*
 * test_learn: the device learning job's fast paths against the reference
 * (deviced/learn.c), on a small trained model and one synthetic user.
 *
 * - ctr_forward_trunk gives ctr_forward's logits, and a MetaPatch-only
 *   backward after it gives the same gradients; a backward that would
 *   need the embeddings is refused.
 * - ctr_zero_grad skips the dense gradients only when no backward wrote
 *   them: a whole-model backward after MetaPatch-only steps equals a
 *   fresh model's.
 * - learn_run and every MetaPatch and bias method choose the same setting
 *   and train the same parameters with the frozen-trunk / bias-only paths
 *   as through the whole model (learn_in.reference).
 * - The evaluation's shared work (learn_memo) changes no result.
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

#include "deviced/deviced.h"
#include "deviced/learn.h"
#include "deviced/mix.h"
#include "deviced/partial.h"
#include "shared/conf.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/ml/gemm.h"
#include "shared/rng.h"
#include "tests/unit/ctr_fixture.h"
#include "cloudd/fedsel.h"
#include "deviced/fedsel.h"

void	openblas_set_num_threads(int);

#define NU	8
#define NI	40
#define USER	3

/*
 * n samples; users drawn from 0..NU-1 (or all `user` if >= 0), times
 * increasing. Label: item in the first half, flipped for odd items of
 * user USER with probability 0.7 (a taste the cloud sees rarely), with
 * 10 % noise.
 */
static void
make_ds(struct dataset *ds, size_t n, int user, uint64_t seed)
{
	struct rng r;

	fixture_ds_init(ds, n, NU, NI, 5);
	rng_seed(&r, seed);
	for (size_t i = 0; i < n; i++) {
		struct sample *s = &ds->s[i];
		s->user = user >= 0 ? (uint32_t)user : rng_below(&r, NU);
		s->item = rng_below(&r, NI);
		s->ts = 1500000000 + (int64_t)i * 3600;
		s->genres = fixture_genres(s->item);
		s->label = s->item < NI / 2 ? 1.0f : 0.0f;
		if (s->user == USER && s->item % 2 && rng_below(&r, 10) < 7)
			s->label = 1.0f - s->label;
		if (rng_below(&r, 10) == 0)
			s->label = 1.0f - s->label;
		s->rating = s->label > 0.5f ? 4.5f : 2.0f;
		fixture_hist(ds, s, rng_below(&r, 6), &r, NI);
	}
}

/* The interaction mode a test runs with (its prestate), else off. */
static int
inter_of(void **state)
{
	return *state != NULL ? *(const int *)*state : CTR_INTER_OFF;
}

/*
 * A prestate's model option: the interaction, with WITH_PRIOR the fixed
 * item prior that cloudd's models carry (non-zero values per item).
 */
#define WITH_PRIOR	0x100

/* A cloud model trained on a pool of all users. */
static struct ctr *
cloud_model(int interaction)
{
	struct ctr_config c;
	struct ctr_train_opts o;
	struct dataset pool;
	uint32_t *idx;
	struct ctr *m;

	memset(&c, 0, sizeof(c));
	c.n_users = NU;
	c.n_items = NI;
	c.n_genres = 4;
	c.dim = 8;
	c.hist_k = 5;
	c.n_hidden = 2;
	c.hidden[0] = 16;
	c.hidden[1] = 8;
	c.patch_rank = 4;
	c.interaction = interaction & ~WITH_PRIOR;
	c.item_prior = (interaction & WITH_PRIOR) != 0;
	m = new_model(&c, 7);
	make_ds(&pool, 600, -1, 11);
	idx = iota(pool.n, 0);
	ctr_train_opts_default(&o);
	ctr_opt_default(&o.opt, CTR_OPT_ADAM, 1e-2f);
	o.epochs = 3;
	o.batch = 32;
	assert_int_equal(ctr_train(m, &pool, idx, pool.n, NULL, 0, &o, NULL),
	    0);
	if (c.item_prior) {
		const struct param_tensor *t = ctr_tensor_find(m, "item_prior");
		for (size_t i = 0; i < t->n; i++)
			t->data[i] = 0.3f * (float)((int)(i % 5) - 2);
	}
	free(idx);
	free_ds(&pool);
	return m;
}

static void
defaults(struct conf *c, struct deviced_conf *cf)
{
	memset(cf, 0, sizeof(*cf));
	assert_int_equal(conf_init(c, deviced_opts, cf, stderr), 0);
}

/*
 * The job's input most tests share: default options, n samples of USER
 * drawn with seed, no retrieved samples, over the cloud model m.
 */
static struct learn_in
job_in(struct deviced_conf *cf, struct conf *c, const struct ctr *m,
    struct dataset *local, struct dataset *none, size_t n, uint64_t seed)
{
	defaults(c, cf);
	make_ds(local, n, USER, seed);
	memset(none, 0, sizeof(*none));
	return (struct learn_in){ .cf = cf, .model = m, .local = local,
	    .retrieved = none, .user = USER, .global_ctr = 0.5 };
}

/*
 * The grid report a job over p makes for methods (learn.fedsel-methods
 * for this call), unpacked; the packed bytes stay in r->report.
 */
static Dccl__SelectReport *
report_for(struct learn_prep *p, struct deviced_conf *cf,
    const char *methods, struct learn_result *r)
{
	char *keep = cf->fedsel_methods;
	Dccl__SelectReport *q;

	cf->fedsel_methods = (char *)methods;
	memset(r, 0, sizeof(*r));
	fedsel_dev_report(p, NULL, 3, r);
	cf->fedsel_methods = keep;
	assert_non_null(r->report);
	q = dccl__select_report__unpack(NULL, r->report_len, r->report);
	assert_non_null(q);
	return q;
}

/*
 * Whether fast paths must equal the reference bit for bit: where gemm.h's
 * in-place kernels run, every product a path makes is computed the same
 * way whatever its batch; cblas_sgemm alone may round by batch size.
 */
static int
exact_here(void)
{
	return gemm_small_path(0, 0, 4, 16, 16, 0);
}

/* Per tensor: a job's results may be views (ctr_view_of). */
static double
max_diff(const struct ctr *a, const struct ctr *b)
{
	double d = 0;

	assert_int_equal(ctr_num_tensors(a), ctr_num_tensors(b));
	for (int t = 0; t < ctr_num_tensors(a); t++) {
		const struct param_tensor *ta = ctr_tensor_at(a, t);
		const struct param_tensor *tb = ctr_tensor_at(b, t);
		for (size_t i = 0; i < ta->n; i++) {
			double e = fabs((double)ta->data[i] -
			    (double)tb->data[i]);
			d = e > d ? e : d;
		}
	}
	return d;
}

static void
test_trunk_forward(void **state)
{
	struct ctr *m = cloud_model(inter_of(state)), *ref = ctr_clone(m);
	struct dataset ds;
	int H = ctr_trunk_dim(m), B = 20;
	uint32_t idx[20], all[50];
	float *trunk, z1[20], z2[20];

	(void)state;
	make_ds(&ds, 50, -1, 5);
	/* hidden[0], and the FM term with fm */
	assert_int_equal(H, 16 + ((inter_of(state) & ~WITH_PRIOR) == CTR_INTER_FM));
	for (int i = 0; i < 50; i++)
		all[i] = (uint32_t)i;
	for (int b = 0; b < B; b++)
		idx[b] = (uint32_t)(49 - 2 * b);	/* any order, any rows */
	trunk = calloc(50 * (size_t)H, sizeof(float));
	assert_int_equal(ctr_trunk(m, &ds, all, 50, trunk), 0);
	/* MetaPatch rows that are not zero, so the patch path counts */
	const struct param_tensor *pm = ctr_tensor_find(m, "patch_m0");
	for (size_t i = 0; i < pm->n; i++)
		pm->data[i] = 0.1f * (float)((int)(i % 7) - 3);
	ctr_copy_params(ref, m);
	assert_int_equal(ctr_forward(ref, &ds, idx, B, z1), 0);
	assert_int_equal(ctr_forward_trunk(m, &ds, trunk, idx, B, z2), 0);
	/*
	 * Bit for bit where gemm.h's in-place kernels run: ctr_trunk
	 * computes its rows in the batches a step does. (With cblas_sgemm
	 * alone, rounding may depend on the batch.)
	 */
	if (exact_here())
		assert_memory_equal(z1, z2, sizeof(z1));
	for (int b = 0; b < B; b++)
		assert_true(fabsf(z1[b] - z2[b]) <= 1e-6f * (1 + fabsf(z1[b])));
	/* the same MetaPatch gradients */
	ctr_zero_grad(ref);
	ctr_zero_grad(m);
	assert_int_equal(ctr_backward(ref, CTR_SEL_METAPATCH_ONLY, NULL, NULL,
	    NULL, NULL), 0);
	assert_int_equal(ctr_backward(m, CTR_SEL_METAPATCH_ONLY, NULL, NULL,
	    NULL, NULL), 0);
	for (int i = 0; i < ctr_num_tensors(m); i++) {
		const struct param_tensor *a = ctr_tensor_at(ref, i);
		const struct param_tensor *b = ctr_tensor_at(m, i);
		for (size_t k = 0; k < a->n; k++)
			assert_true(exact_here() ?
			    a->grad[k] == b->grad[k] :
			    fabsf(a->grad[k] - b->grad[k]) <= 1e-6f);
	}
	/* nothing below the first patch can train from a trunk */
	assert_int_equal(ctr_backward(m, CTR_SEL_ALL, NULL, NULL, NULL, NULL),
	    -EINVAL);
	assert_int_equal(ctr_backward(m, CTR_SEL_NO_PATCH, NULL, NULL, NULL,
	    NULL), -EINVAL);
	assert_int_equal(ctr_forward_trunk(m, &ds, trunk, idx, 0, z2),
	    -EINVAL);
	idx[0] = 50;
	assert_int_equal(ctr_forward_trunk(m, &ds, trunk, idx, B, z2),
	    -EINVAL);
	/* a full forward clears the trunk state */
	assert_int_equal(ctr_forward(m, &ds, all, B, NULL), 0);
	assert_int_equal(ctr_backward(m, CTR_SEL_ALL, NULL, NULL, NULL, NULL),
	    0);
	free(trunk);
	ctr_free(ref);
	ctr_free(m);
	free_ds(&ds);
}

static void
test_zero_grad_dense(void **state)
{
	struct ctr *m = cloud_model(inter_of(state)), *fresh = ctr_clone(m);
	struct ctr_opt o;
	struct dataset ds;
	uint32_t idx[16];

	(void)state;
	make_ds(&ds, 16, USER, 9);
	for (int i = 0; i < 16; i++)
		idx[i] = (uint32_t)i;
	ctr_opt_default(&o, CTR_OPT_SGD, 0.1f);
	/* whole-model gradients, then MetaPatch-only steps */
	assert_int_equal(ctr_forward(m, &ds, idx, 16, NULL), 0);
	assert_int_equal(ctr_backward(m, CTR_SEL_ALL, NULL, NULL, NULL, NULL),
	    0);
	for (int s = 0; s < 3; s++) {
		ctr_zero_grad(m);
		assert_int_equal(ctr_forward(m, &ds, idx, 16, NULL), 0);
		assert_int_equal(ctr_backward(m, CTR_SEL_METAPATCH_ONLY, NULL,
		    NULL, NULL, NULL), 0);
		for (int i = 0; i < ctr_num_tensors(m); i++) {
			const struct param_tensor *t = ctr_tensor_at(m, i);
			if (t->sparse)
				continue;
			for (size_t k = 0; k < t->n; k++)
				assert_true(t->grad[k] == 0.0f);
		}
		assert_int_equal(ctr_step(m, CTR_SEL_METAPATCH_ONLY, &o), 0);
	}
	/* then a whole-model backward equals a fresh model's */
	ctr_copy_params(fresh, m);
	ctr_zero_grad(m);
	ctr_zero_grad(fresh);
	assert_int_equal(ctr_forward(m, &ds, idx, 16, NULL), 0);
	assert_int_equal(ctr_backward(m, CTR_SEL_ALL, NULL, NULL, NULL, NULL),
	    0);
	assert_int_equal(ctr_forward(fresh, &ds, idx, 16, NULL), 0);
	assert_int_equal(ctr_backward(fresh, CTR_SEL_ALL, NULL, NULL, NULL,
	    NULL), 0);
	for (int i = 0; i < ctr_num_tensors(m); i++) {
		const struct param_tensor *a = ctr_tensor_at(m, i);
		const struct param_tensor *b = ctr_tensor_at(fresh, i);
		assert_memory_equal(a->grad, b->grad, a->n * sizeof(float));
	}
	ctr_free(fresh);
	ctr_free(m);
	free_ds(&ds);
}

/* Runs method name with and without the reference paths; same result. */
static void
same_run(const struct learn_in *in0, const char *name, int *adopted)
{
	struct learn_in in[2] = { *in0, *in0 };
	struct learn_prep p[2];
	struct learn_choice ch[2];
	struct ctr *c[2];
	double secs, mem;

	in[1].reference = 1;
	for (int k = 0; k < 2; k++) {
		learn_prep_init(&p[k], &in[k], in[k].retrieved);
		c[k] = learn_method_run(&p[k], name, NULL, &ch[k], &secs, &mem);
		assert_non_null(c[k]);
		assert_true(secs >= 0);
	}
	assert_int_equal(ch[0].adopted, ch[1].adopted);
	assert_int_equal(ch[0].fallback, ch[1].fallback);
	assert_int_equal(ch[0].steps, ch[1].steps);
	assert_true(ch[0].lr == ch[1].lr);
	assert_true(fabs(ch[0].gain - ch[1].gain) <= 1e-6);
	assert_true(fabs(ch[0].rank - ch[1].rank) <= 1e-9);
	assert_true(max_diff(c[0], c[1]) <= (exact_here() ? 0 : 1e-5));
	*adopted += ch[0].adopted;
	for (int k = 0; k < 2; k++) {
		ctr_free(c[k]);
		learn_prep_fini(&p[k]);
	}
}

/* Every logit of a on local's 60 samples is finite. */
static void
assert_logits_finite(struct ctr *a, const struct dataset *local)
{
	float z[60];
	uint32_t idx[60];

	assert_int_equal(local->n, 60);
	for (size_t i = 0; i < 60; i++)
		idx[i] = (uint32_t)i;
	assert_int_equal(ctr_logits(a, local, idx, 60, z), 0);
	for (size_t i = 0; i < 60; i++)
		assert_true(isfinite(z[i]));
}

/*
 * A fit whose last step diverges has a finite training loss at every step
 * but a model that predicts NaN: it must not be served. One step at an
 * absurd learning rate does it, for whole-model fine-tuning and for
 * MetaPatch; with the bias fallback the device serves the cloud model or
 * its bias, and every logit it serves is finite.
 */
static void
test_diverged_not_served(void **state)
{
	static const char *const names[] = { "naive-ft", "ft-cv", "mp-cv",
		"ft-fb", "mp-fb", NULL };
	struct ctr *m = cloud_model(inter_of(state));
	struct deviced_conf cf;
	struct conf c;
	struct dataset local, none;
	struct learn_prep p;
	struct learn_choice ch;
	double secs, mem;

	struct learn_in in = job_in(&cf, &c, m, &local, &none, 60, 21);
	cf.ft_lr = 1e36;
	cf.lr = 1e36;
	cf.ft_steps = 1;
	cf.steps = 1;
	for (int k = 0; names[k] != NULL; k++) {
		learn_prep_init(&p, &in, &none);
		struct ctr *a = learn_method_run(&p, names[k], NULL, &ch,
		    &secs, &mem);
		assert_non_null(a);
		assert_logits_finite(a, &local);
		assert_false(ch.adopted && !ch.fallback);
		ctr_free(a);
		learn_prep_fini(&p);
	}
	free_ds(&local);
	conf_fini(&c);
	ctr_free(m);
}

/*
 * A learning rate of the grid that diverges is out of the choice, not the
 * whole cross-validation: at learn.ft-lr 3 (grid 1, 3, 9) the largest
 * rates blow up on this device and the CV still chooses among the rest;
 * the device reports no grid to federated selection (it is not whole).
 */
static void
test_diverged_rate_out(void **state)
{
	struct ctr *m = cloud_model(inter_of(state));
	struct deviced_conf cf;
	struct conf c;
	struct dataset local, none;
	struct learn_prep p;
	struct learn_choice ch;
	double secs, mem;

	struct learn_in in = job_in(&cf, &c, m, &local, &none, 60, 21);
	cf.ft_lr = 3;
	learn_prep_init(&p, &in, &none);
	struct ctr *a = learn_method_run(&p, "ft-cv", NULL, &ch, &secs, &mem);
	assert_true(ch.adopted);
	assert_true(ch.lr < 9 && isfinite(ch.gain) && isfinite(ch.se));
	assert_false(ch.grid.have);
	assert_logits_finite(a, &local);
	ctr_free(a);
	/*
	 * A guarded pick: of a live point, its own figures, as the
	 * restricted CV (no memo) gives them; of the diverged rate, a
	 * refusal either way.
	 */
	{
		struct learn_memo *mm = learn_memo_new();
		struct learn_choice c1, c2;
		struct fedsel_dev sel;
		struct ctr *b;

		memset(&sel, 0, sizeof(sel));
		sel.n = 1;
		snprintf(sel.c[0].method, sizeof(sel.c[0].method), "ft-guard");
		in.fed = &sel;
		cf.guard_z = 0;
		cf.guard_rank = 0;
		for (int k = 0; k < 3; k++) {
			sel.c[0].lr = 1.0;		/* ft_lr / 3 */
			sel.c[0].steps = k ? 20 : 5;
			if (k > 1)
				sel.c[0].lr = 9.0;	/* diverges */
			a = learn_method_run(&p, "ft-guard-fed", NULL, &c1,
			    &secs, &mem);
			b = learn_method_run(&p, "ft-guard-fed", mm, &c2,
			    &secs, &mem);
			assert_int_equal(c1.fed, 1);
			assert_int_equal(c1.adopted, c2.adopted);
			assert_true(c1.gain == c2.gain && c1.se == c2.se);
			assert_true(c1.lr == sel.c[0].lr &&
			    c1.steps == sel.c[0].steps);
			if (k > 1)
				assert_false(c1.adopted);
			ctr_free(a);
			ctr_free(b);
		}
		in.fed = NULL;
		learn_memo_free(mm);
	}
	learn_prep_fini(&p);
	free_ds(&local);
	conf_fini(&c);
	ctr_free(m);
}

/*
 * A method's result does not depend on the methods run before it on the
 * same prep (the evaluation runs many on one; the served job runs its
 * method, then the bias fallback): each after each other equals it alone.
 */
static void
test_order_free(void **state)
{
	static const char *const names[] = { "ft-cv", "ft-guard", "mp-cv",
		"mp-fb", "bias", "ft-lcoffm-pair3-fb", NULL };
	struct ctr *m = cloud_model(inter_of(state));
	struct deviced_conf cf;
	struct conf c;
	struct dataset local, none;
	struct learn_prep p;
	struct learn_choice ch, ch2;
	double secs, mem;

	struct learn_in in = job_in(&cf, &c, m, &local, &none, 60, 21);
	for (int b = 0; names[b] != NULL; b++) {
		struct learn_memo *mm = learn_memo_new();
		learn_prep_init(&p, &in, &none);
		struct ctr *alone = learn_method_run(&p, names[b], mm, &ch,
		    &secs, &mem);
		learn_prep_fini(&p);
		learn_memo_free(mm);
		for (int a = 0; names[a] != NULL; a++) {
			mm = learn_memo_new();
			learn_prep_init(&p, &in, &none);
			ctr_free(learn_method_run(&p, names[a], mm, &ch2,
			    &secs, &mem));
			struct ctr *after = learn_method_run(&p, names[b],
			    mm, &ch2, &secs, &mem);
			learn_prep_fini(&p);
			learn_memo_free(mm);
			if (max_diff(alone, after) != 0 ||
			    ch.adopted != ch2.adopted || ch.gain != ch2.gain)
				fail_msg("%s after %s: differs from alone "
				    "(%g)", names[b], names[a],
				    max_diff(alone, after));
			ctr_free(after);
		}
		ctr_free(alone);
	}
	free_ds(&local);
	conf_fini(&c);
	ctr_free(m);
}

static void
test_fast_equals_reference(void **state)
{
	static const char *const names[] = { "metapatch", "mp-cv", "bias",
		"mp-fb", "ft-fb", "mp-pscv", "mp-ps-fb", NULL };
	struct ctr *m = cloud_model(inter_of(state));
	struct deviced_conf cf;
	struct conf c;
	struct dataset local, none;
	int adopted = 0;

	(void)state;
	struct learn_in in = job_in(&cf, &c, m, &local, &none, 60, 21);
	for (int i = 0; names[i]; i++)
		same_run(&in, names[i], &adopted);
	assert_true(adopted >= 1);	/* mp-cv always adopts */

	/* the served job: same choice and patch */
	struct learn_in in2[2] = { in, in };
	struct learn_prep p;
	struct learn_result r[2];
	in2[1].reference = 1;
	for (int k = 0; k < 2; k++) {
		in2[k].want_serving = 1;
		learn_run(&in2[k], &p, NULL, &r[k]);
		learn_prep_fini(&p);
		assert_int_equal(r[k].rc, 0);
		assert_non_null(r[k].serving);
		assert_true(r[k].n_patch == 2);
	}
	assert_int_equal(r[0].adopted, r[1].adopted);
	assert_int_equal(r[0].steps, r[1].steps);
	assert_true(fabs(r[0].val_after - r[1].val_after) <= 1e-6);
	assert_true(max_diff(r[0].serving, r[1].serving) <=
	    (exact_here() ? 0 : 1e-5));
	for (size_t t = 0; t < r[0].n_patch; t++)
		for (size_t j = 0; j < r[0].patch[t]->n_data; j++)
			assert_true(fabs(r[0].patch[t]->data[j] -
			    r[1].patch[t]->data[j]) <=
			    (exact_here() ? 0 : 1e-5));
	learn_result_fini(&r[0]);
	learn_result_fini(&r[1]);

	/* unknown method, and a device with no samples */
	struct learn_choice ch;
	double secs, mem;
	learn_prep_init(&p, &in, &none);
	assert_null(learn_method_run(&p, "no-such-method", NULL, &ch, &secs,
	    &mem));
	learn_prep_fini(&p);
	local.n = 0;
	learn_run(&in, &p, NULL, &r[0]);
	learn_prep_fini(&p);
	assert_int_equal(r[0].rc, 0);
	assert_int_equal(r[0].adopted, 0);
	learn_result_fini(&r[0]);
	local.n = 60;

	ctr_free(m);
	free_ds(&local);
	conf_fini(&c);
}

/* The largest difference between two patches' tensors. */
static double
patch_diff(Dccl__Tensor **a, Dccl__Tensor **b, size_t n)
{
	double d = 0;

	for (size_t t = 0; t < n; t++) {
		assert_int_equal(a[t]->n_data, b[t]->n_data);
		for (size_t j = 0; j < a[t]->n_data; j++) {
			double e = fabs((double)a[t]->data[j] - b[t]->data[j]);
			d = e > d ? e : d;
		}
	}
	return d;
}

/*
 * The default served job is the preset's row, ft-lcoffm-pair3-fb, and
 * what it uploads is the "metapatch" row's m rows (a MetaPatch on the
 * frozen cloud model, MoMoDistill's teacher), not the fine-tuned
 * model's own rows, which were trained with weights that never leave
 * the device. Kept out, the upload is the cloud's rows.
 */
static void
test_finetune_uploads_metapatch(void **state)
{
	struct ctr *m = cloud_model(inter_of(state));
	struct deviced_conf cf;
	struct conf c;
	struct dataset local, none;
	struct learn_prep p, q;
	struct learn_result r;
	struct learn_choice ch[2];
	Dccl__Tensor **rows[3];
	size_t n[3];
	double secs, mem;
	int taught = 0, differ = 0;

	for (uint64_t seed = 21; seed < 25; seed++) {
		struct learn_in in = job_in(&cf, &c, m, &local, &none, 120,
		    seed);
		/* a guard that adopts, so that both rows have something */
		assert_int_equal(conf_set(&c, "learn.guard-z", "0",
		    CONF_SRC_FLAG, "test"), 0);
		in.want_serving = 1;
		learn_run(&in, &p, NULL, &r);
		assert_int_equal(r.rc, 0);
		learn_prep_init(&q, &in, &none);
		struct ctr *ft = learn_method_run(&q, "ft-lcoffm-pair3-fb",
		    NULL, &ch[0], &secs, &mem);
		struct ctr *mp = learn_method_run(&q, "metapatch", NULL,
		    &ch[1], &secs, &mem);
		/* served: the preset's row, bit for bit */
		assert_int_equal(r.adopted, ch[0].adopted);
		assert_true(max_diff(r.serving, ft) == 0);
		/* uploaded: the MetaPatch row's rows, or the cloud's */
		assert_int_equal(r.taught, ch[1].adopted);
		assert_int_equal(ctr_io_patch_get(mp, USER, &rows[0], &n[0]),
		    0);
		assert_int_equal(ctr_io_patch_get(ft, USER, &rows[1], &n[1]),
		    0);
		assert_int_equal(ctr_io_patch_get(m, USER, &rows[2], &n[2]),
		    0);
		assert_true(r.n_patch == n[0]);
		assert_true(patch_diff(r.patch, rows[0], n[0]) == 0);
		if (!r.taught)
			assert_true(patch_diff(r.patch, rows[2], n[2]) == 0);
		taught += r.taught;
		differ += r.adopted && patch_diff(rows[1], rows[0], n[0]) > 0;
		for (int k = 0; k < 3; k++)
			ctr_io_tensors_free(rows[k], n[k]);
		ctr_free(ft);
		ctr_free(mp);
		learn_prep_fini(&q);
		learn_prep_fini(&p);
		learn_result_fini(&r);
		free_ds(&local);
		conf_fini(&c);
	}
	/* the case that matters happened: a fine-tuned model whose own rows
	   are not the upload */
	assert_true(differ >= 1);
	printf("  %d of 4 jobs uploaded an adopted MetaPatch, %d served a "
	    "fine-tuned model with other rows\n", taught, differ);
	ctr_free(m);
}

static void
test_memo_same(void **state)
{
	static const char *const names[] = { "ft-cv", "ft-guard", "ft-fb",
		"naive-ft", "mp-cv", "metapatch", "mp-fb", "bias", "ft-lcoffm",
		"ft-lcoffm-fb", "ft-pscv", "mp-ps", "mp-ps-fb",
		"ft-lcoffm-pair-fb", "ft-pair-cv", "ft-pair3-cv",
		"ft-lcoffm-pair3-fb", "ft-lcoffm-pair3-cv", NULL };
	struct ctr *m = cloud_model(inter_of(state));
	struct deviced_conf cf;
	struct conf c;
	struct dataset local, none;
	struct learn_memo *memo = learn_memo_new();
	struct learn_prep p[2];

	(void)state;
	struct learn_in in = job_in(&cf, &c, m, &local, &none, 45, 33);
	in.need_coda = 1;
	learn_prep_init(&p[0], &in, &none);
	learn_prep_init(&p[1], &in, &none);
	for (int i = 0; names[i]; i++) {
		struct learn_choice ch[2];
		double secs[2], mem;
		struct ctr *a = learn_method_run(&p[0], names[i], memo, &ch[0],
		    &secs[0], &mem);
		struct ctr *b = learn_method_run(&p[1], names[i], NULL, &ch[1],
		    &secs[1], &mem);
		assert_int_equal(ch[0].adopted, ch[1].adopted);
		assert_int_equal(ch[0].fallback, ch[1].fallback);
		assert_int_equal(ch[0].steps, ch[1].steps);
		assert_true(ch[0].gain == ch[1].gain);
		assert_true(max_diff(a, b) == 0);
		assert_true(secs[0] > 0 && secs[1] > 0);
		ctr_free(a);
		ctr_free(b);
	}
	learn_prep_fini(&p[0]);
	learn_prep_fini(&p[1]);
	learn_memo_free(memo);
	learn_memo_free(NULL);
	ctr_free(m);
	free_ds(&local);
	conf_fini(&c);
}

/*
 * The partial step (deviced/partial.c): a = 0 is the cloud model, a = 1
 * the adapted one, between them the tensors the selection trains move
 * linearly and no other tensor moves. The "-pscv" rows try the whole
 * step too (with the same trajectory), so their CV gain is at least the
 * whole step's, and what they serve is cloud + alpha (adapted - cloud).
 */
static void
test_partial_step(void **state)
{
	struct ctr *m = cloud_model(inter_of(state));
	struct deviced_conf cf;
	struct conf c;
	struct dataset local, none;
	struct learn_prep p;
	struct learn_choice ch[2];
	double secs, mem;

	struct learn_in in = job_in(&cf, &c, m, &local, &none, 60, 21);
	learn_prep_init(&p, &in, &none);
	struct ctr *full = learn_method_run(&p, "mp-cv", NULL, &ch[0], &secs,
	    &mem);
	struct ctr *ps = learn_method_run(&p, "mp-pscv", NULL, &ch[1], &secs,
	    &mem);
	learn_prep_fini(&p);
	assert_non_null(full);
	assert_non_null(ps);
	assert_true(ch[0].adopted && ch[1].adopted);
	assert_true(ch[0].alpha == 1);
	assert_true(ch[1].gain >= ch[0].gain);
	assert_true(ch[1].alpha > 0 && ch[1].alpha <= 1);

	/* partial_mix itself, on the MetaPatch tables of a moved model */
	size_t np = ctr_num_params(m);
	float *save = malloc(np * sizeof(float));
	struct ctr *w = ctr_clone(m);
	for (size_t i = 0; i < np; i++)
		ctr_params(w)[i] += 0.125f;	/* every tensor moved */
	memcpy(save, ctr_params(w), np * sizeof(float));
	assert_int_equal(partial_mix(w, m, save, 0.5, CTR_SEL_METAPATCH_ONLY),
	    0);
	for (int t = 0; t < ctr_num_tensors(w); t++) {
		const struct param_tensor *a = ctr_tensor_at(w, t);
		const struct param_tensor *b = ctr_tensor_at(m, t);
		int mp = a->kind == CTR_T_PATCH_M || a->kind == CTR_T_PATCH_B;
		for (size_t j = 0; j < a->n; j++)
			assert_true(fabsf(a->data[j] - b->data[j] -
			    (mp ? 0.0625f : 0.125f)) <= 1e-6f);
	}
	assert_int_equal(partial_mix(w, m, save, 0, CTR_SEL_ALL), 0);
	assert_true(max_diff(w, m) == 0);
	assert_int_equal(partial_mix(w, m, save, 1, CTR_SEL_ALL), 0);
	for (size_t i = 0; i < np; i++)
		assert_true(fabsf(ctr_params(w)[i] - save[i]) <= 1e-6f);
	free(save);
	ctr_free(w);
	ctr_free(full);
	ctr_free(ps);
	free_ds(&local);
	ctr_free(m);
	conf_fini(&c);
}

/*
 * learn.pair-weight: the served job (MetaPatch, guarded, bias fallback)
 * with weight 1 serves what the "mp-pair-fb" row serves, and with 0 what
 * "mp-fb" serves; and the weight changes what a fit trains.
 */
static void
test_pair_weight_served(void **state)
{
	static const char *const rows[2] = { "mp-fb", "mp-pair-fb" };
	struct ctr *m = cloud_model(inter_of(state));
	struct deviced_conf cf;
	struct conf c;
	struct dataset local, none;
	double secs, mem;

	defaults(&c, &cf);
	/* the served method before the preset became the default */
	assert_int_equal(deviced_conf_metapatch(&c, "test"), 0);
	make_ds(&local, 60, USER, 21);
	memset(&none, 0, sizeof(none));
	for (int k = 0; k < 2; k++) {
		struct learn_in in = { &cf, m, &local, &none, USER, 0.5, NULL,
			1, 0, 0, NULL, 0 };
		struct learn_prep p;
		struct learn_result r;
		struct learn_choice ch;
		struct ctr *row;

		cf.pair_weight = k;
		learn_run(&in, &p, NULL, &r);
		assert_int_equal(r.rc, 0);
		assert_non_null(r.serving);
		row = learn_method_run(&p, rows[k], NULL, &ch, &secs, &mem);
		assert_int_equal(ch.adopted, r.adopted);
		assert_int_equal(ch.adopted ? ch.steps : 0, r.steps);
		assert_true(max_diff(row, r.serving) == 0);
		ctr_free(row);
		learn_prep_fini(&p);
		learn_result_fini(&r);
	}
	/* the weight changes the trained patch when the guard adopts one */
	struct learn_prep p;
	struct learn_choice ch[2];
	struct learn_in in = { &cf, m, &local, &none, USER, 0.5, NULL, 0, 0,
		0, NULL, 0 };
	learn_prep_init(&p, &in, &none);
	struct ctr *a = learn_method_run(&p, "mp-cv", NULL, &ch[0], &secs,
	    &mem);
	struct ctr *b = learn_method_run(&p, "mp-pair-cv", NULL, &ch[1], &secs,
	    &mem);
	if (ch[0].lr == ch[1].lr && ch[0].steps == ch[1].steps)
		assert_true(max_diff(a, b) > 0);
	ctr_free(a);
	ctr_free(b);
	/* "-pair3": weight 3, not 1 (the unguarded rows always adopt) */
	a = learn_method_run(&p, "ft-pair-cv", NULL, &ch[0], &secs, &mem);
	b = learn_method_run(&p, "ft-pair3-cv", NULL, &ch[1], &secs, &mem);
	assert_true(ch[0].adopted && ch[1].adopted);
	assert_true(ch[0].gain != ch[1].gain || max_diff(a, b) > 0);
	ctr_free(a);
	ctr_free(b);
	learn_prep_fini(&p);
	free_ds(&local);
	ctr_free(m);
	conf_fini(&c);
}

static void
test_fedsel_grid(void **state)
{
	struct ctr *m = cloud_model(inter_of(state)), *a, *d, *nv, *f;
	struct deviced_conf cf;
	struct conf c;
	struct dataset local, none;
	struct learn_prep p;
	struct learn_choice ch, cd, cn, cx;
	struct learn_grid g;
	struct learn_result r;
	struct fedsel_dev sel;
	Dccl__SelectReport *q;
	char err[256];
	double secs, mem;
	int b = -1;

	struct learn_in in = job_in(&cf, &c, m, &local, &none, 60, 21);
	learn_prep_init(&p, &in, &none);
	a = learn_method_run(&p, "ft-cv", NULL, &ch, &secs, &mem);
	assert_int_equal(learn_method_grid(&p, "ft-cv", -1, NULL, &g), 0);
	assert_true(g.have && g.n > 0 && g.pairs > 0);
	for (int s = 0; s < LEARN_GRID_N; s++) {
		assert_true(isfinite(g.gain[s]) && isfinite(g.dsq[s]) &&
		    isfinite(g.rank[s]) && g.dsq[s] >= 0);
		if (g.lr[s / LEARN_GRID_ST] == ch.lr &&
		    g.steps[s % LEARN_GRID_ST] == ch.steps)
			b = s;
	}
	assert_true(b >= 0);
	assert_true(fabs(g.gain[b] / (double)g.n - ch.gain) < 1e-9);
	for (int s = 0; s < LEARN_GRID_N; s++)
		assert_true(g.gain[s] <= g.gain[b]);
	assert_true(g.dsq[LEARN_GRID_DEF] == 0);
	/* -def is the default setting: naive-ft's, bit for bit. */
	d = learn_method_run(&p, "ft-cv-def", NULL, &cd, &secs, &mem);
	nv = learn_method_run(&p, "naive-ft", NULL, &cn, &secs, &mem);
	assert_true(cd.lr == cn.lr && cd.steps == cn.steps);
	assert_true(cd.lr == g.lr[1] && cd.steps == g.steps[1]);
	assert_true(max_diff(d, nv) == 0);
	/* -fed without a choice: the default. */
	f = learn_method_run(&p, "ft-cv-fed", NULL, &cx, &secs, &mem);
	assert_int_equal(cx.fed, -1);
	assert_true(max_diff(f, d) == 0);
	ctr_free(f);
	/* The cloud's choice of point 0. */
	memset(&sel, 0, sizeof(sel));
	sel.n = 1;
	snprintf(sel.c[0].method, sizeof(sel.c[0].method), "ft-cv");
	sel.c[0].lr = g.lr[0];
	sel.c[0].steps = g.steps[0];
	in.fed = &sel;
	f = learn_method_run(&p, "ft-cv-fed", NULL, &cx, &secs, &mem);
	assert_int_equal(cx.fed, 1);
	assert_true(cx.adopted && cx.lr == g.lr[0] && cx.steps == g.steps[0]);
	assert_true(max_diff(f, d) > 0);
	ctr_free(f);
	/* A choice that is not on this device's grid: the default. */
	sel.c[0].lr = 0.123;
	f = learn_method_run(&p, "ft-cv-fed", NULL, &cx, &secs, &mem);
	assert_int_equal(cx.fed, -1);
	assert_true(cx.lr == g.lr[1] && cx.steps == g.steps[1]);
	ctr_free(f);
	in.fed = NULL;
	/* The report: the cloud's check passes, the sums are the grid's. */
	q = report_for(&p, &cf, "ft-cv,nosuch,naive-ft,bias", &r);
	assert_int_equal(q->base_version, 3);
	assert_int_equal(q->n_methods, 2);	/* no grid: nosuch, naive-ft */
	assert_string_equal(q->methods[0]->method, "ft-cv");
	assert_string_equal(q->methods[1]->method, "bias");
	assert_int_equal(fedsel_check(q, err, sizeof(err)), 0);
	assert_int_equal(q->methods[0]->n, g.n);
	for (int s = 0; s < LEARN_GRID_N; s++)
		assert_true(q->methods[0]->gain_sum[s] == g.gain[s] &&
		    q->methods[0]->diff_sq[s] == g.dsq[s]);
	dccl__select_report__free_unpacked(q, NULL);
	free(r.report);
	ctr_free(a);
	ctr_free(d);
	ctr_free(nv);
	learn_prep_fini(&p);
	free_ds(&local);
	ctr_free(m);
	conf_fini(&c);
}

static int
nested_eq(const struct learn_nested *a, const struct learn_nested *b)
{
	return a->have == b->have && a->gain == b->gain && a->se == b->se &&
	    a->rank == b->rank && a->out_n == b->out_n &&
	    a->out_pairs == b->out_pairs && a->out_gain == b->out_gain &&
	    a->out_rank == b->out_rank;
}

/*
 * A guarded pick without a memo (learn.select = fed, no report): the CV
 * trains only the picked point's learning rate. At every grid point the
 * cloud may choose, the decision, its figures and the model equal those
 * read from the whole grid (a memo: what a report or the evaluation
 * runs); only the whole grid has a grid to report.
 */
static void
test_guard_pick_one_path(void **state)
{
	struct ctr *m = cloud_model(inter_of(state)), *a, *b;
	struct deviced_conf cf;
	struct conf c;
	struct dataset local, none;
	struct learn_prep p;
	struct learn_choice ca, cb;
	struct learn_grid g;
	struct learn_memo *mm = learn_memo_new();
	struct fedsel_dev sel;
	double secs, mem;
	int adopted[2] = { 0, 0 }, refused[2] = { 0, 0 };

	struct learn_in in = job_in(&cf, &c, m, &local, &none, 120, 5);
	learn_prep_init(&p, &in, &none);
	memset(&sel, 0, sizeof(sel));
	sel.n = 1;
	in.fed = &sel;
	for (int k = 0; k < 4 * LEARN_GRID_N; k++) {
		int s = k % LEARN_GRID_N, mp = k >= 2 * LEARN_GRID_N;
		const char *name = mp ? "metapatch" : "ft-guard";
		char row[32];

		snprintf(row, sizeof(row), "%s-fed", name);
		if (s == 0) {
			in.fed = NULL;
			assert_int_equal(learn_method_grid(&p, name, -1, NULL,
			    &g), 0);
			assert_true(g.have);
			in.fed = &sel;
			snprintf(sel.c[0].method, sizeof(sel.c[0].method),
			    "%s", name);
		}
		/* a lenient guard (adoptions), then a strict one (refusals) */
		cf.guard_z = k % (2 * LEARN_GRID_N) < LEARN_GRID_N ? 0 : 3;
		cf.guard_rank = cf.guard_z > 0;
		sel.c[0].lr = g.lr[s / LEARN_GRID_ST];
		sel.c[0].steps = g.steps[s % LEARN_GRID_ST];
		a = learn_method_run(&p, row, NULL, &ca, &secs, &mem);
		b = learn_method_run(&p, row, mm, &cb, &secs, &mem);
		assert_int_equal(ca.fed, 1);
		assert_int_equal(cb.fed, 1);
		assert_int_equal(ca.adopted, cb.adopted);
		assert_true(ca.lr == cb.lr && ca.steps == cb.steps);
		assert_true(ca.lr == sel.c[0].lr &&
		    ca.steps == sel.c[0].steps);
		assert_true(ca.gain == cb.gain && ca.se == cb.se &&
		    ca.rank == cb.rank);
		assert_true(!ca.grid.have && cb.grid.have);
		/* the nested validation is the picked point's */
		assert_true(ca.nested.have && cb.nested.have);
		assert_true(nested_eq(&ca.nested, &cb.nested));
		assert_true(nested_eq(&cb.nested, &cb.nested_at[s]));
		assert_true(max_diff(a, b) == 0);
		adopted[mp] += ca.adopted;
		refused[mp] += !ca.adopted;
		ctr_free(a);
		ctr_free(b);
	}
	/* Both outcomes occur for each, so the comparison covered both. */
	for (int i = 0; i < 2; i++)
		assert_true(adopted[i] > 0 && refused[i] > 0);
	in.fed = NULL;
	learn_memo_free(mm);
	learn_prep_fini(&p);
	free_ds(&local);
	ctr_free(m);
	conf_fini(&c);
}

/*
 * learn.guard-move: the guard refuses what reverses fewer than that share
 * of held-out sample pairs against the cloud model. The movement is the
 * same with and without a memo, does not change the CV's choice, is 0
 * for the bias (it moves every logit alike, so no pair turns), and the
 * threshold is inclusive: at the movement the job adopts, just above it
 * the job keeps the cloud model.
 */
static void
test_guard_move(void **state)
{
	struct ctr *m = cloud_model(inter_of(state)), *a;
	struct deviced_conf cf;
	struct conf c;
	struct dataset local, none;
	struct learn_prep p;
	struct learn_choice c0, c1;
	struct learn_memo *mm = learn_memo_new();
	double secs, mem, mv;

	struct learn_in in;

	/* a job the lenient guard adopts */
	for (uint64_t seed = 5; ; seed++) {
		assert_true(seed < 25);
		in = job_in(&cf, &c, m, &local, &none, 120, seed);
		learn_prep_init(&p, &in, &none);
		cf.guard_z = 0;
		cf.guard_rank = 0;
		cf.guard_move = 1e-9;
		a = learn_method_run(&p, "ft-guard", NULL, &c0, &secs, &mem);
		if (c0.adopted)
			break;
		ctr_free(a);
		learn_prep_fini(&p);
		free_ds(&local);
		conf_fini(&c);
	}
	assert_true(max_diff(a, m) > 0);
	ctr_free(a);
	mv = c0.mv;
	assert_true(mv > 0 && mv <= 1);
	ctr_free(learn_method_run(&p, "ft-guard", mm, &c1, &secs, &mem));
	assert_true(c1.mv == mv);
	assert_true(c1.nested.mv == c0.nested.mv && c0.nested.mv > 0);

	cf.guard_move = mv;		/* inclusive */
	a = learn_method_run(&p, "ft-guard", NULL, &c1, &secs, &mem);
	assert_true(c1.adopted && c1.mv == mv);
	ctr_free(a);
	cf.guard_move = nextafter(mv, 2);
	a = learn_method_run(&p, "ft-guard", NULL, &c1, &secs, &mem);
	assert_false(c1.adopted);
	assert_true(max_diff(a, m) == 0);	/* the cloud model */
	ctr_free(a);
	assert_true(c1.lr == c0.lr && c1.steps == c0.steps &&
	    c1.gain == c0.gain && c1.se == c0.se && c1.rank == c0.rank);

	/* the bias shifts every logit alike: nothing turns, and the
	   movement rule does not apply to it */
	cf.guard_move = 0.5;
	ctr_free(learn_method_run(&p, "bias", NULL, &c1, &secs, &mem));
	assert_true(c1.mv == 0);
	learn_memo_free(mm);
	learn_prep_fini(&p);
	free_ds(&local);
	ctr_free(m);
	conf_fini(&c);
}

/*
 * A pair-weight family (learn_pair_family, issue 17's fifth pass): a
 * "-pairw" row trains at the cloud's weight for it (the "-pairK" row's
 * fit, bit for bit), at the first candidate without a choice; the
 * report carries it once per candidate weight, each grid that weight's
 * CV, and passes the cloud's checks and aggregation; the served method
 * with learn.pair-select = fed trains at the cloud's weight for "serve".
 */
static void
test_pair_family(void **state)
{
	static const double pw[4] = { 0, 1, 3, 9 };
	struct ctr *m = cloud_model(inter_of(state)), *a, *b, *c3, *d;
	struct deviced_conf cf;
	struct conf c;
	struct dataset local, none;
	struct learn_prep p;
	struct learn_choice ca, cb, cc, cd;
	struct learn_grid g3, g0;
	struct learn_result r;
	struct fedsel_dev sel;
	struct fedsel fs;
	struct fedsel_opts fo;
	Dccl__SelectReport *q;
	char err[256];
	double secs, mem;
	int dup;

	defaults(&c, &cf);
	cf.npw = 4;
	memcpy(cf.pw, pw, sizeof(pw));
	assert_true(learn_pair_family(&cf, "ft-pairw-cv"));
	assert_true(learn_pair_family(&cf, "ft-pairw"));
	assert_false(learn_pair_family(&cf, "ft-pair3-cv"));
	assert_false(learn_pair_family(&cf, "ft-pairwise"));
	assert_false(learn_pair_family(&cf, "serve"));
	make_ds(&local, 60, USER, 21);
	memset(&none, 0, sizeof(none));
	struct learn_in in = { &cf, m, &local, &none, USER, 0.5, NULL, 0, 0,
		0, NULL, 0 };
	learn_prep_init(&p, &in, &none);
	/* No choice: the default weight 0, ft-cv's fit. */
	a = learn_method_run(&p, "ft-pairw-cv", NULL, &ca, &secs, &mem);
	b = learn_method_run(&p, "ft-cv", NULL, &cb, &secs, &mem);
	assert_int_equal(ca.pw_fed, -1);
	assert_true(ca.pair_w == 0);
	assert_int_equal(cb.pw_fed, 0);
	assert_true(max_diff(a, b) == 0);
	/* The cloud's weight 3: ft-pair3-cv's fit. */
	memset(&sel, 0, sizeof(sel));
	sel.n = 1;
	snprintf(sel.c[0].method, sizeof(sel.c[0].method), "ft-pairw-cv");
	sel.c[0].lr = 0.01;
	sel.c[0].steps = 20;
	sel.c[0].pair_weight = 3;
	in.fed = &sel;
	c3 = learn_method_run(&p, "ft-pairw-cv", NULL, &cc, &secs, &mem);
	d = learn_method_run(&p, "ft-pair3-cv", NULL, &cd, &secs, &mem);
	assert_int_equal(cc.pw_fed, 1);
	assert_true(cc.pair_w == 3 && cd.pair_w == 3);
	assert_true(cc.lr == cd.lr && cc.steps == cd.steps &&
	    cc.rank == cd.rank && cc.gain == cd.gain);
	assert_true(max_diff(c3, d) == 0);
	assert_true(max_diff(c3, b) > 0);
	ctr_free(a);
	ctr_free(b);
	ctr_free(c3);
	ctr_free(d);
	in.fed = NULL;
	/* The report: the family at 0, 1, 3, 9, then ft-cv. */
	assert_int_equal(learn_method_grid(&p, "ft-pair3-cv", -1, NULL, &g3),
	    0);
	assert_int_equal(learn_method_grid(&p, "ft-cv", -1, NULL, &g0), 0);
	q = report_for(&p, &cf, "ft-pairw-cv,ft-cv", &r);
	assert_int_equal(q->n_methods, 5);
	for (int k = 0; k < 4; k++) {
		assert_string_equal(q->methods[k]->method, "ft-pairw-cv");
		assert_true(q->methods[k]->pair_weight == pw[k]);
	}
	assert_string_equal(q->methods[4]->method, "ft-cv");
	assert_true(q->methods[4]->pair_weight == 0);
	for (int s = 0; s < LEARN_GRID_N; s++) {
		assert_true(q->methods[2]->gain_sum[s] == g3.gain[s] &&
		    q->methods[2]->rank_net[s] == g3.rank[s]);
		assert_true(q->methods[0]->gain_sum[s] == g0.gain[s]);
	}
	assert_int_equal(fedsel_check(q, err, sizeof(err)), 0);
	memset(&fo, 0, sizeof(fo));
	fo.min_devices = 1;
	fo.min_n = 1;
	fo.z = 1;
	fo.max_devices = 10;
	assert_int_equal(fedsel_pw_parse("0,1,3,9", &fo, err, sizeof(err)), 0);
	fedsel_init(&fs, &fo);
	assert_int_equal(fedsel_add(&fs, "d", FEDSEL_WARM, q, &dup, err,
	    sizeof(err)), 0);
	fedsel_fini(&fs);
	dccl__select_report__free_unpacked(q, NULL);
	free(r.report);
	/*
	 * A weight whose CV fails (a fit diverges at weight 100 with a
	 * large rate) is reported as no change: zero sums, the default
	 * weight's counts; not left out.
	 */
	cf.pw[1] = 100;
	cf.npw = 2;
	cf.ft_lr = 0.3;
	assert_int_equal(learn_method_grid(&p, "ft-cv", 100, NULL, &g3), 0);
	assert_false(g3.have);
	assert_int_equal(learn_method_grid(&p, "ft-cv", 0, NULL, &g0), 0);
	assert_true(g0.have);
	q = report_for(&p, &cf, "ft-pairw-cv", &r);
	assert_int_equal(q->n_methods, 2);
	assert_true(q->methods[1]->pair_weight == 100);
	assert_int_equal(q->methods[1]->n, q->methods[0]->n);
	assert_int_equal(q->methods[1]->pairs, q->methods[0]->pairs);
	for (int s = 0; s < LEARN_GRID_N; s++)
		assert_true(q->methods[1]->gain_sum[s] == 0 &&
		    q->methods[1]->rank_net[s] == 0 &&
		    q->methods[1]->diff_sq[s] == 0);
	assert_int_equal(fedsel_check(q, err, sizeof(err)), 0);
	dccl__select_report__free_unpacked(q, NULL);
	free(r.report);
	cf.ft_lr = 0.01;
	cf.npw = 4;
	cf.pw[1] = 1;
	learn_prep_fini(&p);
	/* The served method: learn.pair-select = fed, the weight for serve. */
	cf.pair_select = 1;
	assert_true(learn_pair_family(&cf, "serve"));
	snprintf(sel.c[0].method, sizeof(sel.c[0].method), "serve");
	sel.c[0].pair_weight = 9;
	in.fed = &sel;
	in.want_serving = 1;
	learn_run(&in, &p, NULL, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.pw_fed, 1);
	assert_true(r.pair_w == 9);
	learn_prep_fini(&p);
	learn_result_fini(&r);
	in.fed = NULL;
	cf.pair_weight = 1;
	learn_run(&in, &p, NULL, &r);
	assert_int_equal(r.pw_fed, -1);
	assert_true(r.pair_w == 1);	/* learn.pair-weight */
	learn_prep_fini(&p);
	learn_result_fini(&r);
	free_ds(&local);
	ctr_free(m);
	conf_fini(&c);
}

/*
 * Nested validation (learn.h, struct learn_nested): the inner folds' and
 * the last fold's sums add up to the CV's at the point the inner folds
 * chose; the last fold is the last block of samples; too few folds give
 * none.
 */
static void
test_nested_validation(void **state)
{
	struct ctr *m = cloud_model(CTR_INTER_OFF), *a;
	struct deviced_conf cf;
	struct conf c;
	struct dataset local, none;
	struct learn_prep p;
	struct learn_choice ch;
	struct learn_grid g;
	double secs, mem;
	int hit = 0;

	(void)state;
	struct learn_in in = job_in(&cf, &c, m, &local, &none, 60, 23);
	learn_prep_init(&p, &in, &none);
	a = learn_method_run(&p, "ft-cv", NULL, &ch, &secs, &mem);
	assert_int_equal(learn_method_grid(&p, "ft-cv", -1, NULL, &g), 0);
	const struct learn_nested *ne = &ch.nested;
	assert_true(cf.cv_folds == 3 && ne->have);
	assert_int_equal(ne->out_n, 20);	/* block 2 of 3 */
	assert_true(ne->out_pairs > 0 && ne->out_pairs < g.pairs);
	assert_true(fabs(ne->out_rank) <= (double)ne->out_pairs);
	assert_true(isfinite(ne->gain) && ne->se >= 0 &&
	    isfinite(ne->out_gain));
	for (int s = 0; s < LEARN_GRID_N; s++)
		hit |= fabs(ne->rank + ne->out_rank - g.rank[s]) < 1e-6 &&
		    fabs(ne->gain * (double)(g.n - ne->out_n) +
		    ne->out_gain * (double)ne->out_n - g.gain[s]) < 1e-6;
	assert_true(hit);
	ctr_free(a);
	learn_prep_fini(&p);
	/* Two folds: no fold left to validate on. */
	cf.cv_folds = 2;
	learn_prep_init(&p, &in, &none);
	a = learn_method_run(&p, "ft-cv", NULL, &ch, &secs, &mem);
	assert_true(ch.grid.have && !ch.nested.have);
	ctr_free(a);
	learn_prep_fini(&p);
	free_ds(&local);
	ctr_free(m);
	conf_fini(&c);
}


/*
 * learn.window: every fit reads only the newest `window` local samples
 * before its held-out block. With 60 samples, 3 folds and a window of
 * 12, the fits read samples 8..19, 28..39 and 48..59 and score 20..59,
 * so samples 0..7 are read by nothing: flipping their labels changes no
 * parameter and no CV figure, for fine-tuning and for the served
 * preset's label correction and pairwise loss. Without the window the
 * same flip changes the fit, and so does a flip inside the final window.
 */
static void
test_window_reads_newest(void **state)
{
	static const char *const names[] = { "ft-cv", "ft-lcoffm-pair3-cv",
		"mp-cv", NULL };
	struct ctr *m = cloud_model(inter_of(state));
	struct deviced_conf cf;
	struct conf c;
	struct dataset local, none;
	struct learn_prep p;
	struct learn_choice ch0, ch1;
	double secs, mem;

	struct learn_in in = job_in(&cf, &c, m, &local, &none, 60, 29);
	assert_int_equal(cf.cv_folds, 3);
	for (int k = 0; names[k] != NULL; k++) {
		for (int w = 0; w < 2; w++) {
			struct ctr *a, *b;
			cf.window = w ? 12 : 0;
			learn_prep_init(&p, &in, &none);
			a = learn_method_run(&p, names[k], NULL, &ch0, &secs,
			    &mem);
			learn_prep_fini(&p);
			for (size_t i = 0; i < 8; i++)
				local.s[i].label = 1.0f - local.s[i].label;
			learn_prep_init(&p, &in, &none);
			b = learn_method_run(&p, names[k], NULL, &ch1, &secs,
			    &mem);
			learn_prep_fini(&p);
			for (size_t i = 0; i < 8; i++)
				local.s[i].label = 1.0f - local.s[i].label;
			if (w && (max_diff(a, b) != 0 || ch0.gain != ch1.gain ||
			    ch0.rank != ch1.rank || ch0.lr != ch1.lr))
				fail_msg("%s, window 12: samples 0..7 moved the "
				    "fit (%g)", names[k], max_diff(a, b));
			if (!w && max_diff(a, b) == 0 && ch0.gain == ch1.gain)
				fail_msg("%s without a window: samples 0..7 "
				    "read by nothing", names[k]);
			ctr_free(b);
			if (w) {	/* inside the final fit's window */
				local.s[55].label = 1.0f - local.s[55].label;
				learn_prep_init(&p, &in, &none);
				b = learn_method_run(&p, names[k], NULL, &ch1,
				    &secs, &mem);
				learn_prep_fini(&p);
				local.s[55].label = 1.0f - local.s[55].label;
				if (max_diff(a, b) == 0 && ch0.gain == ch1.gain)
					fail_msg("%s: sample 55 read by nothing",
					    names[k]);
				ctr_free(b);
			}
			ctr_free(a);
		}
	}
	free_ds(&local);
	conf_fini(&c);
	ctr_free(m);
}
/*
 * A row "<method>-w<N>" is the method with a training window of N: the
 * same choice and model as the method under learn.window = N, also
 * beside the method's own row in one memo (the window is part of the
 * key), its bias fallback included.
 */
static void
test_window_rows(void **state)
{
	/* the second mp-fb's MetaPatch diverges, the bias fallback serves */
	static const char *const names[] = { "mp-fb", "ft-lcoffm-pair3-fb",
		"mp-cv", "bias", "ft-cv-fed", "mp-fb", NULL };
	struct ctr *m = cloud_model(CTR_INTER_OFF);
	struct deviced_conf cf;
	struct conf c;
	struct dataset local, none;
	struct learn_prep p;
	struct learn_choice c0, cw, cr;
	struct learn_method_info mi;
	double secs, mem;
	char nm[64];
	int fell = 0;

	(void)state;
	struct learn_in in = job_in(&cf, &c, m, &local, &none, 60, 29);
	for (int k = 0; names[k] != NULL; k++) {
		struct learn_memo *mm = learn_memo_new();
		struct ctr *a, *b, *r;
		(void)snprintf(nm, sizeof(nm), "%s-w12", names[k]);
		if (names[k + 1] == NULL) {
			cf.lr = 1e30;
			cf.guard_z = 0;
		}
		assert_int_equal(learn_method_info(nm, &mi), 0);
		assert_string_equal(mi.name, nm);
		cf.window = 0;
		learn_prep_init(&p, &in, &none);
		a = learn_method_run(&p, names[k], mm, &c0, &secs, &mem);
		b = learn_method_run(&p, nm, mm, &cw, &secs, &mem);
		learn_prep_fini(&p);
		learn_memo_free(mm);
		cf.window = 12;
		learn_prep_init(&p, &in, &none);
		r = learn_method_run(&p, names[k], NULL, &cr, &secs, &mem);
		learn_prep_fini(&p);
		if (max_diff(b, r) != 0 || cw.gain != cr.gain ||
		    cw.rank != cr.rank || cw.lr != cr.lr ||
		    cw.steps != cr.steps || cw.adopted != cr.adopted ||
		    cw.fallback != cr.fallback)
			fail_msg("%s is not %s at window 12 (%g)", nm,
			    names[k], max_diff(b, r));
		if (max_diff(a, b) == 0 && c0.gain == cw.gain)
			fail_msg("%s: the window changed nothing", nm);
		fell += cw.fallback;
		ctr_free(a);
		ctr_free(b);
		ctr_free(r);
	}
	assert_true(fell > 0);		/* a fallback was compared */
	assert_int_not_equal(learn_method_info("cloud-w12", &mi), 0);
	assert_int_not_equal(learn_method_info("mp-fb-w0", &mi), 0);
	assert_int_not_equal(learn_method_info("mp-fb-w", &mi), 0);
	free_ds(&local);
	conf_fini(&c);
	ctr_free(m);
}

/*
 * The "-mix" rows (deviced/mix.h): the fit is ft-cv's (the same setting
 * and parameters, the mixture is applied when scoring), the CV's
 * evidence at weight 1 is ft-cv's own, the weight is one of the grid's,
 * and the guarded row adopts only with the guard's evidence at its
 * weight.
 */
static void
test_mix_rows(void **state)
{
	struct ctr *m = cloud_model(CTR_INTER_OFF), *a, *b, *g;
	struct deviced_conf cf;
	struct conf c;
	struct dataset local, none;
	struct learn_prep p;
	struct learn_choice ca, cb, cg;
	double secs, mem;
	int ok = 0;

	(void)state;
	struct learn_in in = job_in(&cf, &c, m, &local, &none, 60, 29);
	struct learn_memo *mm = learn_memo_new();
	struct learn_choice c0;
	learn_prep_init(&p, &in, &none);
	/*
	 * ft-cv gathers the mixture's evidence when an evaluation may read
	 * it (a memo), not in a served job (none), which is otherwise the
	 * same: the same model and CV figures.
	 */
	b = learn_method_run(&p, "ft-cv", NULL, &c0, &secs, &mem);
	assert_false(c0.mix.have);
	a = learn_method_run(&p, "ft-cv", mm, &ca, &secs, &mem);
	assert_true(ca.gain == c0.gain && ca.rank == c0.rank &&
	    ca.lr == c0.lr && ca.steps == c0.steps && max_diff(a, b) == 0);
	ctr_free(b);
	b = learn_method_run(&p, "ft-mix-cv", NULL, &cb, &secs, &mem);
	g = learn_method_run(&p, "ft-mix", NULL, &cg, &secs, &mem);
	assert_true(ca.mix.have && cb.mixed && cg.mixed && !ca.mixed);
	assert_int_equal(cb.mix.n, ca.grid.n);
	assert_true(fabs(cb.mix.gain[MIX_NA - 1] / (double)cb.mix.n -
	    ca.gain) < 1e-4);
	assert_true(fabs(cb.mix.rank[MIX_NA - 1] - ca.rank) < 1e-9);
	assert_true(cb.mix.gain[0] == 0 && cb.mix.rank[0] == 0);
	for (int k = 0; k < MIX_NA; k++)
		ok |= cb.alpha == mix_alpha[k];
	assert_true(ok);
	if (cb.adopted) {
		assert_true(cb.alpha > 0 && cb.gain > 0);
		assert_true(cb.lr == ca.lr && cb.steps == ca.steps);
		assert_true(max_diff(a, b) == 0);	/* the same fit */
	} else
		assert_true(max_diff(b, m) == 0);
	if (cg.adopted)
		assert_true(cg.gain - cf.guard_z * cg.se > 0 && cg.rank > 0);
	else
		assert_true(max_diff(g, m) == 0);
	ctr_free(b);
	ctr_free(g);
	/* "-cal": ft-cv's fit, recalibrated when scored (calib.h) */
	b = learn_method_run(&p, "ft-cal-cv", NULL, &cb, &secs, &mem);
	assert_true(ca.cal_have && cb.cal_have && cb.calibrated &&
	    !ca.calibrated);
	assert_true(cb.cal_t == ca.cal_t && cb.cal_b == ca.cal_b &&
	    1 + cb.cal_t >= 0.1);
	assert_true(max_diff(a, b) == 0);
	/* its nested validation: fitted on the inner folds, scored on the
	   last one */
	assert_true(ca.nested.have && ca.nested.have_cal &&
	    isfinite(ca.nested.out_cal));
	ctr_free(a);
	ctr_free(b);
	learn_prep_fini(&p);
	learn_memo_free(mm);
	free_ds(&local);
	ctr_free(m);
	conf_fini(&c);
}

int
main(void)
{
	/* fm adds a term the frozen trunk has to carry (ctr_trunk_dim) */
	static int fm = CTR_INTER_FM;
	static int fm_prior = CTR_INTER_FM | WITH_PRIOR;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trunk_forward),
		cmocka_unit_test(test_zero_grad_dense),
		cmocka_unit_test(test_fast_equals_reference),
		cmocka_unit_test(test_memo_same),
		cmocka_unit_test(test_fedsel_grid),
		cmocka_unit_test(test_guard_pick_one_path),
		cmocka_unit_test(test_guard_move),
		cmocka_unit_test_prestate(test_guard_move, &fm),
		cmocka_unit_test(test_pair_family),
		cmocka_unit_test(test_nested_validation),
		cmocka_unit_test(test_partial_step),
		cmocka_unit_test(test_mix_rows),
		cmocka_unit_test(test_pair_weight_served),
		cmocka_unit_test(test_finetune_uploads_metapatch),
		cmocka_unit_test_prestate(test_finetune_uploads_metapatch,
		    &fm_prior),
		cmocka_unit_test_prestate(test_pair_weight_served, &fm),
		cmocka_unit_test_prestate(test_trunk_forward, &fm),
		cmocka_unit_test_prestate(test_trunk_forward, &fm_prior),
		cmocka_unit_test_prestate(test_fast_equals_reference, &fm),
		cmocka_unit_test_prestate(test_fast_equals_reference, &fm_prior),
		cmocka_unit_test_prestate(test_memo_same, &fm),
		cmocka_unit_test(test_diverged_not_served),
		cmocka_unit_test(test_diverged_rate_out),
		cmocka_unit_test(test_order_free),
		cmocka_unit_test(test_window_reads_newest),
		cmocka_unit_test_prestate(test_window_reads_newest, &fm),
		cmocka_unit_test(test_window_rows),
		cmocka_unit_test_prestate(test_order_free, &fm),
		cmocka_unit_test_prestate(test_order_free, &fm_prior),
		cmocka_unit_test_prestate(test_diverged_rate_out, &fm),
		cmocka_unit_test_prestate(test_diverged_not_served, &fm),
	};

	openblas_set_num_threads(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
