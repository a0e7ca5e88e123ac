/*
 * test_ctr_opts: cmocka tests for the CTR model's base-model options
 * (shared/ml/ctr.c: pairwise interaction, target attention, side-field
 * embeddings) and their model format 2 (shared/ml/ctr_io.c), on tiny
 * synthetic datasets built here.
 *
 * The gradient checks are test_ctr's whole-model check (each float32
 * parameter moved by +-1e-3, central differences of the double-accumulated
 * loss, |analytic - numeric| <= 2e-4 + 2e-2 |numeric|) run on every option
 * alone and on all of them together with the MetaPatch; every tensor must
 * get some nonzero gradient, so a term that backward forgets fails.
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

#include "model.pb-c.h"
#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/rng.h"
#include "tests/unit/ctr_fixture.h"
#include "tests/unit/ctr_gradcheck.h"

void	openblas_set_num_threads(int);

enum { NSIDE = 2 };
static const uint32_t side_card[NSIDE] = { 3, 5 };

/*
 * n samples over nu users, ni items, 4 genres, 0..5 history items each,
 * NSIDE side fields whose values run one past their cardinality (the OOV
 * row). Label: 1 for the first half of the catalogue, flipped when side
 * field 0 is 1 (needs the side field or the interaction to learn).
 */
static void
make_ds(struct dataset *ds, size_t n, uint32_t nu, uint32_t ni, uint64_t seed)
{
	struct rng r;

	fixture_ds_init(ds, n, nu, ni, 5);
	rng_seed(&r, seed);
	ds->n_side = NSIDE;
	for (int f = 0; f < NSIDE; f++)
		ds->side_card[f] = side_card[f];
	for (size_t i = 0; i < n; i++) {
		struct sample *s = &ds->s[i];
		s->user = rng_below(&r, nu);
		s->item = rng_below(&r, ni);
		s->ts = 1500000000 + (int64_t)rng_below(&r, 86400 * 14);
		s->genres = fixture_genres(s->item);
		for (int f = 0; f < NSIDE; f++)
			s->side[f] = rng_below(&r, side_card[f] + 1);
		s->label = (s->item < ni / 2) ? 1.0f : 0.0f;
		if (s->side[0] == 1)
			s->label = 1.0f - s->label;
		fixture_hist(ds, s, rng_below(&r, 6), &r, ni + 1);
	}
}

static struct ctr_config
small_cfg(int inter, int att, uint32_t nside)
{
	struct ctr_config c = { 0 };

	c.n_users = 4;
	c.n_items = 8;
	c.n_genres = 4;
	c.dim = 3;
	c.hist_k = 4;
	c.n_hidden = 2;
	c.hidden[0] = 5;
	c.hidden[1] = 4;
	c.interaction = inter;
	c.attention = att;
	c.n_side = nside;
	for (uint32_t f = 0; f < nside; f++)
		c.side_card[f] = side_card[f];
	return c;
}

/*
 * Random values in the tensors that start at zero (attention W, MetaPatch
 * m and bias), so every path carries gradient in the check.
 */
static void
randomize_zero_starts(struct ctr *m, uint64_t seed)
{
	struct rng r;

	rng_seed(&r, seed);
	for (int i = 0; i < ctr_num_tensors(m); i++) {
		const struct param_tensor *t = ctr_tensor_at(m, i);
		if (t->kind == CTR_T_PATCH_M || t->kind == CTR_T_PATCH_B ||
		    strcmp(t->name, "att_w") == 0)
			for (size_t k = 0; k < t->n; k++)
				t->data[k] = (float)(2.0 * rng_unif(&r) - 1.0);
	}
}

static void
grad_check(struct ctr_config c)
{
	struct dataset ds;
	enum { B = 10 };
	uint32_t idx[B] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	float y[B], w[B], off[B];
	struct rng r;

	make_ds(&ds, B, 5, 9, 21);	/* includes OOV user 4 and item 8 */
	rng_seed(&r, 5);
	for (int b = 0; b < B; b++) {
		y[b] = (float)rng_unif(&r);		/* soft labels */
		w[b] = (float)(0.5 + rng_unif(&r));
		off[b] = (float)(rng_unif(&r) - 0.5);
	}
	struct ctr *m = new_model(&c, 3);
	randomize_zero_starts(m, 4);

	assert_int_equal(gradcheck_all(m, &ds, idx, B, y, w, off), 0);
	ctr_free(m);
	free_ds(&ds);
}

static void
test_grad_interaction(void **state)
{
	grad_check(small_cfg(1, 0, 0));
}

static void
test_grad_fm(void **state)
{
	grad_check(small_cfg(CTR_INTER_FM, 0, 0));
}

/* D = 6: the dots' backward runs its 4-wide SSE part and its tail. */
static void
test_grad_fm_wide(void **state)
{
	struct ctr_config c = small_cfg(CTR_INTER_FM, 0, 0);

	(void)state;
	c.dim = 6;
	grad_check(c);
}

static void
test_grad_attention(void **state)
{
	grad_check(small_cfg(0, 1, 0));
}

static void
test_grad_side(void **state)
{
	grad_check(small_cfg(0, 0, NSIDE));
}

static void
test_grad_all(void **state)
{
	struct ctr_config c = small_cfg(CTR_INTER_FM, 1, NSIDE);

	c.patch_rank = 2;
	grad_check(c);
}

/* Copies every tensor of src that dst has under the same name and shape. */
static void
copy_shared(struct ctr *dst, const struct ctr *src)
{
	for (int i = 0; i < ctr_num_tensors(dst); i++) {
		const struct param_tensor *t = ctr_tensor_at(dst, i);
		const struct param_tensor *s = ctr_tensor_find(src, t->name);
		if (s != NULL && s->n == t->n)
			memcpy(t->data, s->data, t->n * sizeof(float));
	}
}

/*
 * Attention with W = 0 (as it starts) is the mean pooling: the same logits
 * as the model without it. Options off leave the layout as it was.
 */
static void
test_attention_starts_as_mean(void **state)
{
	struct ctr_config c0 = small_cfg(0, 0, 0), c1 = small_cfg(0, 1, 0);
	struct dataset ds;
	float l0[20], l1[20];
	uint32_t idx[20];

	make_ds(&ds, 20, 5, 9, 7);
	for (int i = 0; i < 20; i++)
		idx[i] = (uint32_t)i;
	struct ctr *m0 = new_model(&c0, 11), *m1 = new_model(&c1, 11);
	assert_int_equal(ctr_num_tensors(m1), ctr_num_tensors(m0) + 1);
	assert_int_equal(ctr_num_params(m1),
	    ctr_num_params(m0) + (size_t)c1.dim * c1.dim);
	copy_shared(m1, m0);
	assert_int_equal(ctr_forward(m0, &ds, idx, 20, l0), 0);
	assert_int_equal(ctr_forward(m1, &ds, idx, 20, l1), 0);
	for (int i = 0; i < 20; i++)
		assert_true(fabsf(l0[i] - l1[i]) < 1e-6f);
	/* with W != 0 the weights differ from the mean for some sample
	   (W large: the embeddings start small) */
	const struct param_tensor *tw = ctr_tensor_find(m1, "att_w");
	for (size_t k = 0; k < tw->n; k++)
		tw->data[k] = (k % 2 ? 300.0f : -200.0f);
	assert_int_equal(ctr_forward(m1, &ds, idx, 20, l1), 0);
	int differ = 0;
	for (int i = 0; i < 20; i++)
		differ |= fabsf(l0[i] - l1[i]) > 1e-5f;
	assert_true(differ);
	/* options off: the same input width and layout as format 1 */
	assert_int_equal(ctr_config_input_dim(&c0), CTR_N_FIELDS * c0.dim);
	c0.interaction = 1;
	c0.n_side = NSIDE;
	c0.side_card[0] = side_card[0];
	c0.side_card[1] = side_card[1];
	assert_int_equal(ctr_config_input_dim(&c0), 8 * c0.dim + 28);
	ctr_free(m0);
	ctr_free(m1);
	free_ds(&ds);
}

/*
 * Side values at or beyond the cardinality, and side fields the data do
 * not have, read the OOV row (zero at start); invalid configs are refused.
 */
static void
test_side_oov(void **state)
{
	struct ctr_config c = small_cfg(1, 0, NSIDE);
	struct dataset ds;
	float a[2], b[2];
	uint32_t idx[2] = { 0, 1 };

	make_ds(&ds, 2, 4, 8, 3);
	struct ctr *m = new_model(&c, 5);
	const struct param_tensor *t = ctr_tensor_find(m, "emb_side1");
	assert_non_null(t);
	assert_int_equal(t->shape[0], side_card[1] + 1);
	for (int k = 0; k < c.dim; k++)
		assert_true(t->data[(size_t)side_card[1] * c.dim + k] == 0.0f);
	ds.s[0].side[1] = side_card[1];
	ds.s[1].side[1] = UINT32_MAX;
	ds.s[1].side[0] = ds.s[0].side[0];
	ds.s[1].user = ds.s[0].user;
	ds.s[1].item = ds.s[0].item;
	ds.s[1].ts = ds.s[0].ts;
	ds.s[1].genres = ds.s[0].genres;
	ds.s[1].hist_n = 0;
	ds.s[0].hist_n = 0;
	assert_int_equal(ctr_forward(m, &ds, idx, 2, a), 0);
	assert_true(a[0] == a[1]);
	/* data without side fields: every side field is unknown */
	ds.n_side = 0;
	ds.s[0].side[0] = side_card[0];
	assert_int_equal(ctr_forward(m, &ds, idx, 2, b), 0);
	ds.n_side = NSIDE;
	assert_int_equal(ctr_forward(m, &ds, idx, 2, a), 0);
	assert_true(a[0] == b[0]);
	ctr_free(m);

	struct ctr *bad = (struct ctr *)1;
	c.n_side = SAMPLE_SIDE_MAX + 1;
	assert_int_equal(ctr_new(&bad, &c, 1), -EINVAL);
	assert_null(bad);
	c.n_side = 1;
	c.side_card[0] = CTR_MAX_SIDE_CARD + 1;
	assert_int_equal(ctr_new(&bad, &c, 1), -EINVAL);
	c.side_card[0] = 3;
	c.attention = 2;
	assert_int_equal(ctr_new(&bad, &c, 1), -EINVAL);
	free_ds(&ds);
}

/* Every option together learns the side-dependent label. */
static void
test_learns(void **state)
{
	struct ctr_config c = small_cfg(CTR_INTER_FM, 1, NSIDE);
	struct ctr_train_opts o;
	struct dataset ds;
	double before, after;
	uint32_t *idx = malloc(400 * sizeof(*idx));

	c.dim = 4;
	c.hidden[0] = 16;
	c.hidden[1] = 8;
	make_ds(&ds, 400, 6, 20, 9);
	for (int i = 0; i < 400; i++)
		idx[i] = (uint32_t)i;
	struct ctr *m = new_model(&c, 2);
	assert_int_equal(ctr_eval_logloss(m, &ds, idx, 400, &before), 0);
	ctr_train_opts_default(&o);
	o.opt.lr = 1e-2f;
	o.epochs = 40;
	o.batch = 32;
	assert_int_equal(ctr_train(m, &ds, idx, 400, NULL, 0, &o, NULL), 0);
	assert_int_equal(ctr_eval_logloss(m, &ds, idx, 400, &after), 0);
	printf("  logloss %.4f -> %.4f\n", before, after);
	assert_true(after < 0.35);
	assert_true(ctr_flops(m) > 0);
	ctr_free(m);
	free(idx);
	free_ds(&ds);
}

static void
ed_to_v1(Dccl__Model *m)
{
	m->format = CTR_IO_FORMAT;
}

/*
 * Format 2 round trip; a model without options is still format 1; a
 * format-1 message with format-2 fields and oversized side tables get
 * their typed errors.
 */
static void
test_format2(void **state)
{
	struct ctr_config c = small_cfg(CTR_INTER_FM, 1, NSIDE);
	struct ctr *m, *m2 = NULL;
	uint8_t *buf, *buf2;
	size_t len, len2;
	char err[256];

	c.patch_rank = 2;
	m = new_model(&c, 4);
	randomize_zero_starts(m, 6);
	assert_int_equal(ctr_io_pack(m, NULL, &buf, &len), 0);
	Dccl__Model *msg = dccl__model__unpack(NULL, len, buf);
	assert_non_null(msg);
	assert_int_equal(msg->format, CTR_IO_FORMAT_OPTS);
	assert_int_equal(msg->config->n_side_card, NSIDE);
	dccl__model__free_unpacked(msg, NULL);
	assert_int_equal(ctr_io_unpack(&m2, NULL, buf, len, err, sizeof(err)),
	    0);
	assert_memory_equal(ctr_config(m), ctr_config(m2),
	    sizeof(struct ctr_config));
	assert_memory_equal(ctr_params(m), ctr_params(m2),
	    ctr_num_params(m) * sizeof(float));
	ctr_free(m2);
	m2 = NULL;

	/* the same bytes claiming format 1 */
	msg = dccl__model__unpack(NULL, len, buf);
	ed_to_v1(msg);
	len2 = dccl__model__get_packed_size(msg);
	buf2 = malloc(len2);
	dccl__model__pack(msg, buf2);
	assert_int_equal(ctr_io_unpack(&m2, NULL, buf2, len2, err,
	    sizeof(err)), CTR_IO_EFORMAT);
	assert_null(m2);
	free(buf2);
	/* a side table beyond the bound */
	msg->format = CTR_IO_FORMAT_OPTS;
	msg->config->side_card[0] = CTR_MAX_SIDE_CARD + 1;
	len2 = dccl__model__get_packed_size(msg);
	buf2 = malloc(len2);
	dccl__model__pack(msg, buf2);
	assert_int_equal(ctr_io_unpack(&m2, NULL, buf2, len2, err,
	    sizeof(err)), CTR_IO_ETOOBIG);
	free(buf2);
	/* a changed side cardinality no longer matches the tensors */
	msg->config->side_card[0] = side_card[0] + 1;
	len2 = dccl__model__get_packed_size(msg);
	buf2 = malloc(len2);
	dccl__model__pack(msg, buf2);
	assert_int_equal(ctr_io_unpack(&m2, NULL, buf2, len2, err,
	    sizeof(err)), CTR_IO_ESHAPE);
	free(buf2);
	/* an interaction mode that does not exist */
	msg->config->interaction = CTR_INTER_FM + 1;
	len2 = dccl__model__get_packed_size(msg);
	buf2 = malloc(len2);
	dccl__model__pack(msg, buf2);
	assert_int_equal(ctr_io_unpack(&m2, NULL, buf2, len2, err,
	    sizeof(err)), CTR_IO_ECONFIG);
	free(buf2);
	msg->config->interaction = CTR_INTER_FM;
	/* dropping the attention flag leaves att_w unknown */
	msg->config->side_card[0] = side_card[0];
	msg->config->attention = 0;
	len2 = dccl__model__get_packed_size(msg);
	buf2 = malloc(len2);
	dccl__model__pack(msg, buf2);
	assert_int_equal(ctr_io_unpack(&m2, NULL, buf2, len2, err,
	    sizeof(err)), CTR_IO_EUNKNOWN);
	free(buf2);
	dccl__model__free_unpacked(msg, NULL);
	free(buf);
	ctr_free(m);

	/* no options: format 1, loadable by a format-1 reader */
	c = small_cfg(0, 0, 0);
	m = new_model(&c, 4);
	assert_int_equal(ctr_io_pack(m, NULL, &buf, &len), 0);
	msg = dccl__model__unpack(NULL, len, buf);
	assert_int_equal(msg->format, CTR_IO_FORMAT);
	assert_false(msg->config->interaction || msg->config->attention);
	assert_int_equal(msg->config->n_side_card, 0);
	dccl__model__free_unpacked(msg, NULL);
	free(buf);
	ctr_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grad_interaction),
		cmocka_unit_test(test_grad_fm),
		cmocka_unit_test(test_grad_fm_wide),
		cmocka_unit_test(test_grad_attention),
		cmocka_unit_test(test_grad_side),
		cmocka_unit_test(test_grad_all),
		cmocka_unit_test(test_attention_starts_as_mean),
		cmocka_unit_test(test_side_oov),
		cmocka_unit_test(test_learns),
		cmocka_unit_test(test_format2),
	};

	openblas_set_num_threads(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
