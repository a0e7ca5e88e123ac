/*
 * test_ofa_base: Forward-OFA on its CTR model's logit (ofa_config's
 * ctr_base, OFA format 3): x0's last column is the CTR model's whole
 * logit, added to OFA's, and the head starts at 0.
 *   - a new model predicts exactly what the CTR model predicts, through
 *     ofa_predict (every class) and through the device's assembled path;
 *   - the gradient check of every tensor (test_ofa's tolerance) with the
 *     CTR logit as the last input column and the head away from 0;
 *   - training from that start does not end worse on its validation
 *     samples than the CTR model it started from (the validation rule
 *     keeps epoch 0 at worst);
 *   - format 3 round trip, and its typed errors: a format-2 header on a
 *     ctr_base model, a format-3 header without it, ctr_base without the
 *     FM base refused by the config check.
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

#include "shared/data/dataset.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ofa.h"
#include "shared/ml/ofa_io.h"
#include "shared/rng.h"

void	openblas_set_num_threads(int);

enum { GB = 6, C0 = 7, ZD = 3, N = 400 };

#define OFA_GC_B GB
#define OFA_GC_X C0
#define OFA_GC_Z ZD
#include "tests/unit/ofa_gradcheck.h"
#include "tests/unit/ctr_fixture.h"

static struct ofa_config
cfg(void)
{
	struct ofa_config c = { 0 };

	c.in_dim = C0;		/* the last column is the CTR logit */
	c.z_dim = ZD;
	c.hidden = 5;
	c.inner = 4;
	c.n_blocks = 3;
	c.rank = 2;
	c.hist_k = 3;
	c.interaction = CTR_INTER_FM;
	c.ctr_base = 1;
	return c;
}

/* A small data set with a learnable signal, one side field, histories. */
static void
make_ds(struct dataset *ds, size_t n, uint64_t seed)
{
	struct rng r;

	rng_seed(&r, seed);
	fixture_ds_init(ds, n, 8, 20, 5);
	ds->n_side = 1;
	ds->side_card[0] = 5;
	for (size_t i = 0; i < n; i++) {
		struct sample *s = &ds->s[i];
		s->user = rng_below(&r, 8);
		s->item = rng_below(&r, 20);
		s->ts = 1500000000 + (int64_t)rng_below(&r, 86400 * 14);
		s->genres = 1u << (s->item % 4);
		s->label = (s->item < 10) == (s->user < 4) ? 1.0f : 0.0f;
		if (rng_unif(&r) < 0.15)
			s->label = 1.0f - s->label;
		s->side[0] = rng_below(&r, 5);
		fixture_hist(ds, s, rng_below(&r, 5), &r, 20);
	}
}

static struct ctr *
make_ctr(uint64_t seed)
{
	struct ctr_config cc = { 0 };

	cc.n_users = 8;
	cc.n_items = 20;
	cc.n_genres = 4;
	cc.dim = 4;
	cc.hist_k = 4;
	cc.n_hidden = 1;
	cc.hidden[0] = 8;
	cc.interaction = CTR_INTER_FM;
	cc.n_side = 1;
	cc.side_card[0] = 5;
	return new_model(&cc, seed);
}

static void
test_starts_at_ctr(void **state)
{
	struct ctr *e = make_ctr(1);
	struct dataset ds;
	struct ofa_config oc;
	struct ofa *m = NULL;
	struct ofa_assembled a;
	uint32_t idx[64];
	float lg[64], p[64], pc[64], out, scratch[3 * OFA_MAX_DIM];
	float *x0, z[64 * 4];
	int dim;

	(void)state;
	make_ds(&ds, 64, 3);
	for (int i = 0; i < 64; i++)
		idx[i] = (uint32_t)i;
	ofa_config_default(&oc, e);
	assert_int_equal(oc.ctr_base, 1);	/* the default on an FM base */
	assert_int_equal(ofa_new(&m, &oc, 5), 0);
	dim = oc.in_dim;
	x0 = calloc((size_t)64 * dim, sizeof(float));
	/* the last column is the CTR model's logit */
	assert_int_equal(ctr_logits(e, &ds, idx, 64, lg), 0);
	assert_int_equal(ofa_inputs_base(m, e, &ds, idx, 64, x0, z), 0);
	for (int i = 0; i < 64; i++)
		assert_float_equal(x0[(size_t)i * dim + dim - 1], lg[i], 1e-6);
	/* and a new model is the CTR model, at every budget */
	assert_int_equal(ctr_predict(e, &ds, idx, 64, pc), 0);
	for (int k = 0; k < OFA_N_CLASSES; k++) {
		assert_int_equal(ofa_predict(m, e, &ds, idx, 64,
		    ofa_class_budget[k], p, NULL), 0);
		for (int i = 0; i < 64; i++)
			assert_float_equal(p[i], pc[i], 1e-5);
	}
	/* the device's path: assembled from one z, served on x0 */
	ofa_assembled_init(&a);
	assert_int_equal(ofa_assemble(m, z, 0.25, &a), 0);
	for (int i = 0; i < 64; i++) {
		ofa_assembled_logits(&a, x0 + (size_t)i * dim, 1, &out,
		    scratch);
		assert_float_equal(out, lg[i], 1e-5);
	}
	assert_true(ofa_in_flops(m, e) == ctr_flops(e));
	ofa_assembled_fini(&a);
	free(x0);
	ofa_free(m);
	ctr_free(e);
	free_ds(&ds);
}

static void
test_grad_base(void **state)
{
	struct ofa_config c = cfg();
	struct ofa *m = NULL;
	struct gc g;
	float *an;
	int bad = 0;

	(void)state;
	assert_int_equal(ofa_new(&m, &c, 7), 0);
	/* the head starts at 0, which would hide every gradient behind it */
	assert_true(ofa_tensor_find(m, "out_w")->data[0] == 0.0f);
	gc_randomize(m, 8);
	gc_init(&g, 9);
	ofa_set_gate_mode(m, OFA_GATE_SOFT);
	an = malloc(ofa_num_params(m) * sizeof(float));
	total_loss(m, &g, 0.05);
	memcpy(an, ofa_grads(m), ofa_num_params(m) * sizeof(float));
	for (int i = 0; i < ofa_num_tensors(m); i++) {
		int nonzero;
		double maxd;
		bad += gc_tensor(m, &g, 0.05, an, ofa_tensor_at(m, i),
		    &nonzero, &maxd);
		assert_true(nonzero > 0);
	}
	assert_int_equal(bad, 0);
	free(an);
	ofa_free(m);
}

static void
test_train_not_worse(void **state)
{
	struct ctr *e = make_ctr(11);
	struct dataset ds;
	struct ofa_config oc;
	struct ofa *m = NULL;
	struct ofa_train_opts o;
	struct ofa_train_stats st;
	uint32_t tr[N], va[N / 4];
	double ll0;

	(void)state;
	make_ds(&ds, N + N / 4, 12);
	for (uint32_t i = 0; i < N; i++)
		tr[i] = i;
	for (uint32_t i = 0; i < N / 4; i++)
		va[i] = N + i;
	ofa_config_default(&oc, e);
	assert_int_equal(ofa_new(&m, &oc, 13), 0);
	assert_int_equal(ctr_eval_logloss(e, &ds, va, N / 4, &ll0), 0);
	ofa_train_opts_default(&o);
	o.epochs = 5;
	o.batch = 32;
	o.seed = 14;
	assert_int_equal(ofa_train(m, e, &ds, tr, N, va, N / 4, &o, &st), 0);
	printf("  CTR val logloss %.4f, OFA on its logit %.4f (best epoch "
	    "%d)\n", ll0, st.val_loss, st.best_epoch);
	assert_true(isfinite(st.val_loss));
	assert_true(st.val_loss <= ll0 + 1e-6);
	ofa_free(m);
	ctr_free(e);
	free_ds(&ds);
}

static void
test_io_format3(void **state)
{
	struct ofa_config c = cfg();
	struct ofa *m = NULL, *w = NULL;
	struct ofa_meta meta = { 0 };
	uint8_t *buf;
	size_t len;
	char err[256];

	(void)state;
	assert_int_equal(ofa_new(&m, &c, 21), 0);
	gc_randomize(m, 22);
	meta.version = meta.base_version = 3;
	assert_int_equal(ofa_io_format(&c), OFA_IO_FORMAT_3);
	assert_int_equal(ofa_io_pack(m, &meta, 1, OFA_IO_ALL, &buf, &len), 0);
	assert_int_equal(ofa_io_unpack(&w, NULL, buf, len, err, sizeof(err)), 0);
	assert_memory_equal(ofa_config(w), &c, sizeof(c));
	assert_memory_equal(ofa_params(w), ofa_params(m),
	    ofa_num_params(m) * sizeof(float));
	ofa_free(w);
	w = NULL;
	/* the format is field 1 (varint): a format-2 header is refused */
	assert_true(buf[0] == 0x08 && buf[1] == OFA_IO_FORMAT_3);
	buf[1] = OFA_IO_FORMAT_2;
	assert_int_equal(ofa_io_unpack(&w, NULL, buf, len, err, sizeof(err)),
	    CTR_IO_EFORMAT);
	printf("  format-2 header on a ctr_base model: %s\n", err);
	assert_null(w);
	free(buf);
	ofa_free(m);
	/* a format-3 header on a model without ctr_base */
	c.ctr_base = 0;
	assert_int_equal(ofa_new(&m, &c, 23), 0);
	assert_int_equal(ofa_io_pack(m, &meta, 1, OFA_IO_ALL, &buf, &len), 0);
	assert_true(buf[0] == 0x08 && buf[1] == OFA_IO_FORMAT_2);
	buf[1] = OFA_IO_FORMAT_3;
	assert_int_equal(ofa_io_unpack(&w, NULL, buf, len, err, sizeof(err)),
	    CTR_IO_EFORMAT);
	printf("  format-3 header without ctr_base: %s\n", err);
	free(buf);
	ofa_free(m);
	/* ctr_base needs the FM base (its column) */
	c = cfg();
	c.interaction = CTR_INTER_MLP;
	assert_int_equal(ofa_config_check(&c), -EINVAL);
	assert_int_equal(ofa_new(&m, &c, 24), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_starts_at_ctr),
		cmocka_unit_test(test_grad_base),
		cmocka_unit_test(test_train_not_worse),
		cmocka_unit_test(test_io_format3),
	};

	openblas_set_num_threads(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
