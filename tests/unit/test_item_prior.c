/*
 * test_item_prior: cmocka tests for the CTR model's fixed item prior
 * (shared/ml/item_prior.c, the item_prior tensor of shared/ml/ctr.c and
 * model format 3 in shared/ml/ctr_io.c). The prior is not trained, so the
 * tests check its closed form against a hand computation, that it is
 * exactly an offset on the logit, that no gradient or step ever moves it
 * (while the gradients of everything else still match their finite
 * differences with it present), its format (round trip, and older
 * formats or a missing flag refused with typed errors), and the affine
 * recalibration folded into a model with it (ctr_logit_affine).
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

#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/ml/item_prior.h"
#include "shared/rng.h"
#include "tests/unit/ctr_fixture.h"
#include "tests/unit/ctr_gradcheck.h"

void	openblas_set_num_threads(int);

#define NU	4
#define NI	8

static struct ctr_config
cfg_prior(void)
{
	struct ctr_config c = { 0 };

	c.n_users = NU;
	c.n_items = NI;
	c.n_genres = 4;
	c.dim = 3;
	c.hist_k = 4;
	c.n_hidden = 2;
	c.hidden[0] = 5;
	c.hidden[1] = 4;
	c.patch_rank = 2;
	c.interaction = CTR_INTER_FM;
	c.item_prior = 1;
	return c;
}

/* n samples over NU users (one OOV) and NI items (one OOV). */
static void
make_ds(struct dataset *ds, size_t n, uint64_t seed)
{
	struct rng r;

	fixture_ds_init(ds, n, NU + 1, NI + 1, 3);
	rng_seed(&r, seed);
	for (size_t i = 0; i < n; i++) {
		struct sample *s = &ds->s[i];
		s->user = rng_below(&r, NU + 1);
		s->item = rng_below(&r, NI + 1);
		s->ts = 1500000000 + (int64_t)i * 60;
		s->genres = fixture_genres(s->item);
		s->label = rng_unif(&r) < (s->item < NI / 2 ? 0.7 : 0.3);
		fixture_hist(ds, s, rng_below(&r, 4), &r, NI);
	}
}

static void
random_prior(struct ctr *m, uint64_t seed)
{
	const struct param_tensor *t = ctr_tensor_find(m, "item_prior");
	struct rng r;

	rng_seed(&r, seed);
	for (size_t k = 0; k + 1 < t->n; k++)	/* the OOV row stays 0 */
		t->data[k] = (float)(2 * rng_unif(&r) - 1);
}

/* The shrunk rate as a logit against the global one, by hand. */
static void
test_fit(void **state)
{
	struct ctr_config c = cfg_prior();
	struct ctr *m = new_model(&c, 1);
	const struct param_tensor *t = ctr_tensor_find(m, "item_prior");
	struct dataset ds;
	uint32_t idx[6] = { 0, 1, 2, 3, 4, 5 };
	/* item 1: 2 of 3 clicked; item 2: 0 of 2; item NI (OOV): 1 of 1 */
	uint32_t items[6] = { 1, 1, 1, 2, 2, NI };
	float labels[6] = { 1, 1, 0, 0, 0, 1 };
	double k = 2, g = 3.0 / 6, lg = log(g / (1 - g));

	(void)state;
	assert_non_null(t);
	assert_int_equal(t->kind, CTR_T_FIXED);
	assert_int_equal(t->n, NI + 1);
	make_ds(&ds, 6, 2);
	for (int i = 0; i < 6; i++) {
		ds.s[i].item = items[i];
		ds.s[i].label = labels[i];
	}
	random_prior(m, 3);
	assert_int_equal(ctr_item_prior_fit(m, &ds, idx, 6, k, 1), 0);
	double r1 = (2 + k * g) / (3 + k), r2 = (0 + k * g) / (2 + k);
	assert_true(fabs(t->data[1] - (log(r1 / (1 - r1)) - lg)) < 1e-6);
	assert_true(fabs(t->data[2] - (log(r2 / (1 - r2)) - lg)) < 1e-6);
	assert_true(t->data[1] > 0 && t->data[2] < 0);
	for (uint32_t i = 0; i <= NI; i++)	/* unseen items and OOV: 0 */
		if (i != 1 && i != 2)
			assert_true(t->data[i] == 0.0f);
	/* all clicked: no global rate to shrink to, every item 0 */
	for (int i = 0; i < 6; i++)
		ds.s[i].label = 1;
	assert_int_equal(ctr_item_prior_fit(m, &ds, idx, 6, k, 1), 0);
	for (uint32_t i = 0; i <= NI; i++)
		assert_true(t->data[i] == 0.0f);
	assert_int_equal(ctr_item_prior_fit(m, &ds, idx, 6, 0, 1), -EINVAL);
	c.item_prior = 0;
	ctr_free(m);
	m = new_model(&c, 1);
	assert_null(ctr_tensor_find(m, "item_prior"));
	assert_int_equal(ctr_item_prior_fit(m, &ds, idx, 6, k, 1), -EINVAL);
	c.item_prior = 2;
	assert_int_equal(ctr_config_check(&c), -EINVAL);
	ctr_free(m);
	free_ds(&ds);
}

/* The prior moves each logit by exactly its item's row. */
static void
test_offset(void **state)
{
	struct ctr_config c = cfg_prior();
	struct ctr *m = new_model(&c, 4);
	const struct param_tensor *t = ctr_tensor_find(m, "item_prior");
	struct dataset ds;
	enum { N = 40 };
	uint32_t *idx = iota(N, 0);
	float z0[N], z1[N];

	(void)state;
	make_ds(&ds, N, 5);
	assert_int_equal(ctr_logits(m, &ds, idx, N, z0), 0);
	random_prior(m, 6);
	assert_int_equal(ctr_logits(m, &ds, idx, N, z1), 0);
	for (int i = 0; i < N; i++) {
		uint32_t it = ds.s[i].item < NI ? ds.s[i].item : NI;
		assert_true(fabs((z1[i] - z0[i]) - t->data[it]) < 1e-5);
	}
	free(idx);
	free_ds(&ds);
	ctr_free(m);
}

/* Every other gradient matches its finite difference; the prior gets none. */
static void
test_grad(void **state)
{
	struct ctr_config c = cfg_prior();
	struct dataset ds;
	enum { B = 10 };
	uint32_t idx[B] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	float y[B], w[B], off[B];
	struct rng r;
	struct ctr *m;

	(void)state;
	make_ds(&ds, B, 21);
	rng_seed(&r, 5);
	for (int b = 0; b < B; b++) {
		y[b] = (float)rng_unif(&r);
		w[b] = (float)(0.5 + rng_unif(&r));
		off[b] = (float)(rng_unif(&r) - 0.5);
	}
	m = new_model(&c, 3);
	random_prior(m, 7);
	for (int i = 0; i < ctr_num_tensors(m); i++) {	/* m, bias not 0 */
		const struct param_tensor *t = ctr_tensor_at(m, i);
		if (t->kind == CTR_T_PATCH_M || t->kind == CTR_T_PATCH_B)
			for (size_t k = 0; k < t->n; k++)
				t->data[k] = (float)(2 * rng_unif(&r) - 1);
	}
	assert_int_equal(gradcheck_all(m, &ds, idx, B, y, w, off), 0);
	ctr_free(m);
	free_ds(&ds);
}

/* Training everything, with weight decay, leaves the prior as it was. */
static void
test_fixed(void **state)
{
	struct ctr_config c = cfg_prior();
	struct ctr *m = new_model(&c, 8);
	const struct param_tensor *t = ctr_tensor_find(m, "item_prior");
	const struct param_tensor *e = ctr_tensor_find(m, "emb_item");
	struct ctr_train_opts o;
	struct dataset ds;
	enum { N = 200 };
	uint32_t *idx = iota(N, 0);
	float keep[NI + 1], e0;

	(void)state;
	make_ds(&ds, N, 9);
	assert_int_equal(ctr_item_prior_fit(m, &ds, idx, N, ITEM_PRIOR_K, 1), 0);
	memcpy(keep, t->data, sizeof(keep));
	e0 = e->data[0];
	ctr_train_opts_default(&o);
	o.opt.wd = 0.1f;
	o.epochs = 3;
	o.batch = 32;
	for (enum ctr_sel s = CTR_SEL_ALL; s <= CTR_SEL_BIAS_ONLY; s++) {
		o.sel = s;
		assert_int_equal(ctr_train(m, &ds, idx, N, NULL, 0, &o, NULL),
		    0);
	}
	assert_memory_equal(keep, t->data, sizeof(keep));
	assert_true(e->data[0] != e0);	/* the rest did train */
	free(idx);
	free_ds(&ds);
	ctr_free(m);
}

/*
 * ctr_logit_affine: every logit becomes a z + b (the prior, the FM term,
 * the user's bias and the MLP's output all scaled), a <= 0 refused.
 */
static void
test_affine(void **state)
{
	struct ctr_config c = cfg_prior();
	struct ctr *m = new_model(&c, 12);
	struct dataset ds;
	enum { N = 40 };
	uint32_t *idx = iota(N, 0);
	float z0[N], z1[N];
	struct rng r;

	(void)state;
	make_ds(&ds, N, 13);
	random_prior(m, 14);
	rng_seed(&r, 15);
	for (int i = 0; i < ctr_num_tensors(m); i++) {	/* bias rows not 0 */
		const struct param_tensor *t = ctr_tensor_at(m, i);
		if (t->kind == CTR_T_PATCH_M || t->kind == CTR_T_PATCH_B)
			for (size_t k = 0; k < t->n; k++)
				t->data[k] = (float)(2 * rng_unif(&r) - 1);
	}
	assert_int_equal(ctr_logits(m, &ds, idx, N, z0), 0);
	assert_int_equal(ctr_logit_affine(m, 0.7, -0.3), 0);
	assert_int_equal(ctr_logits(m, &ds, idx, N, z1), 0);
	for (int i = 0; i < N; i++)
		assert_true(fabs(z1[i] - (0.7 * z0[i] - 0.3)) < 1e-5);
	assert_int_equal(ctr_logit_affine(m, 0, 0), -EINVAL);
	assert_int_equal(ctr_logit_affine(m, -1, 0), -EINVAL);
	free(idx);
	free_ds(&ds);
	ctr_free(m);
}

/* Repacks msg into a fresh buffer and unpacks it: the result code. */
static int
repack(Dccl__Model *msg)
{
	size_t len = dccl__model__get_packed_size(msg);
	uint8_t *buf = malloc(len);
	struct ctr *m = NULL;
	char err[256];
	int rc;

	dccl__model__pack(msg, buf);
	rc = ctr_io_unpack(&m, NULL, buf, len, err, sizeof(err));
	assert_true(rc == 0 || m == NULL);
	ctr_free(m);
	free(buf);
	return rc;
}

/*
 * Format 3 round trip; the same message as format 2, or as format 3
 * without its flag, is refused (EFORMAT); as format 2 without the flag its
 * tensor is unknown (EUNKNOWN).
 */
static void
test_format3(void **state)
{
	struct ctr_config c = cfg_prior();
	struct ctr *m = new_model(&c, 10), *m2 = NULL;
	uint8_t *buf, sum1[CTR_IO_CHECKSUM_LEN], sum2[CTR_IO_CHECKSUM_LEN];
	size_t len;
	char err[256];
	Dccl__Model *msg;

	(void)state;
	random_prior(m, 11);
	assert_int_equal(ctr_io_pack(m, NULL, &buf, &len), 0);
	msg = dccl__model__unpack(NULL, len, buf);
	assert_non_null(msg);
	assert_int_equal(msg->format, CTR_IO_FORMAT_PRIOR);
	assert_true(msg->config->item_prior);
	assert_int_equal(ctr_io_unpack(&m2, NULL, buf, len, err, sizeof(err)),
	    0);
	assert_memory_equal(ctr_config(m), ctr_config(m2),
	    sizeof(struct ctr_config));
	assert_memory_equal(ctr_tensor_find(m, "item_prior")->data,
	    ctr_tensor_find(m2, "item_prior")->data, (NI + 1) * sizeof(float));
	ctr_io_checksum(m, sum1);
	ctr_free(m2);
	msg->format = CTR_IO_FORMAT_OPTS;
	assert_int_equal(repack(msg), CTR_IO_EFORMAT);
	msg->format = CTR_IO_FORMAT_PRIOR;
	msg->config->item_prior = 0;		/* format 3 is the prior's */
	assert_int_equal(repack(msg), CTR_IO_EFORMAT);
	msg->format = CTR_IO_FORMAT_OPTS;	/* then its tensor is unknown */
	assert_int_equal(repack(msg), CTR_IO_EUNKNOWN);
	msg->config->item_prior = 1;
	msg->format = 4;
	assert_int_equal(repack(msg), CTR_IO_EFORMAT);
	dccl__model__free_unpacked(msg, NULL);
	free(buf);
	ctr_free(m);
	/* without the prior: format 2 and a checksum of its own */
	c.item_prior = 0;
	m = new_model(&c, 10);
	assert_int_equal(ctr_io_pack(m, NULL, &buf, &len), 0);
	msg = dccl__model__unpack(NULL, len, buf);
	assert_int_equal(msg->format, CTR_IO_FORMAT_OPTS);
	ctr_io_checksum(m, sum2);
	assert_memory_not_equal(sum1, sum2, sizeof(sum1));
	dccl__model__free_unpacked(msg, NULL);
	free(buf);
	ctr_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fit),
		cmocka_unit_test(test_offset),
		cmocka_unit_test(test_grad),
		cmocka_unit_test(test_fixed),
		cmocka_unit_test(test_format3),
		cmocka_unit_test(test_affine),
	};

	openblas_set_num_threads(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
