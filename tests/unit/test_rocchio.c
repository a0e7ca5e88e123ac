/*
 * test_rocchio: cmocka tests for deviced/rocchio.c (a cold user's user
 * row from their own samples' item embeddings). No trainable piece: the
 * direction is a closed form and gamma a choice on the local samples, so
 * the tests check the closed form against a hand computation, the
 * fallback to the unknown-user rows and that the choice finds a taste the
 * item embeddings carry (and refuses one they do not).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deviced/rocchio.h"
#include "shared/ml/ctr.h"
#include "shared/ml/encoder.h"
#include "shared/rng.h"
#include "tests/unit/ctr_fixture.h"

void	openblas_set_num_threads(int);

#define NU	4
#define NI	40
#define DIM	4

static struct ctr *
fm_model(uint64_t seed)
{
	struct ctr_config c = { 0 };

	c.n_users = NU;
	c.n_items = NI;
	c.n_genres = 4;
	c.dim = DIM;
	c.hist_k = 3;
	c.n_hidden = 2;
	c.hidden[0] = 8;
	c.hidden[1] = 4;
	c.patch_rank = 2;
	c.interaction = CTR_INTER_FM;
	return new_model(&c, seed);
}

/* Item embeddings with a taste axis (fixture_taste_items). */
static void
taste_items(struct ctr *m, uint64_t seed)
{
	fixture_taste_items(m, 0.05f, seed);
}

/* n samples of user u (see fixture_taste_ds). */
static void
user_ds(struct dataset *ds, size_t n, uint32_t u, int likes, uint64_t seed)
{
	fixture_taste_ds(ds, n, NU, NI, u, likes, seed);
}

/* The direction against a hand computation, and the FM sign. */
static void
test_dir(void **state)
{
	struct ctr *m = fm_model(1);
	const struct param_tensor *t = ctr_tensor_find(m, "emb_item");
	const struct param_tensor *fm = ctr_tensor_find(m, "fm_w");
	struct dataset ds;
	uint32_t idx[4] = { 0, 1, 2, 3 };
	float dir[DIM], neg[DIM];
	double want[DIM] = { 0 }, norm = 0, rms = 0;

	(void)state;
	taste_items(m, 2);
	user_ds(&ds, 4, 1, 1, 3);
	for (int i = 0; i < 4; i++)
		ds.s[i].label = i < 2 ? 1.0f : 0.0f;	/* 2 clicks, 2 not */
	for (int i = 0; i < 4; i++)
		for (int d = 0; d < DIM; d++)
			want[d] += (i < 2 ? 0.5 : -0.5) *
			    t->data[(size_t)ds.s[i].item * t->shape[1] + d];
	for (int d = 0; d < DIM; d++)
		norm += want[d] * want[d];
	for (size_t i = 0; i < NI * (size_t)DIM; i++)
		rms += (double)t->data[i] * t->data[i];
	rms = sqrt(rms / NI);
	norm = sqrt(norm);
	assert_true(norm > 0);
	assert_true(fm->data[0] > 0);
	rocchio_dir(m, &ds, idx, 4, dir);
	for (int d = 0; d < DIM; d++)
		assert_true(fabs(dir[d] - want[d] / (norm * rms)) < 1e-5);
	fm->data[0] = -fm->data[0];	/* the user-item dot counts against */
	rocchio_dir(m, &ds, idx, 4, neg);
	for (int d = 0; d < DIM; d++)
		assert_true(fabs(neg[d] + dir[d]) < 1e-6);
	free_ds(&ds);
	ctr_free(m);
}

/* Too few samples: the unknown-user rows, gamma 0. */
static void
test_few(void **state)
{
	struct ctr *m = fm_model(4);
	struct dataset ds;
	uint32_t *idx = iota(3, 0);
	float rows[ENC_MAX_OUT], oov[ENC_MAX_OUT], got[ENC_MAX_OUT];
	int nin, nout;

	(void)state;
	taste_items(m, 5);
	user_ds(&ds, 3, 2, 1, 6);
	assert_int_equal(enc_shape(m, &nin, &nout), 0);
	enc_rows_get(m, NU, oov);
	assert_true(rocchio_rows(m, &ds, idx, 3, 2, 3, 4, rows, NULL) == 0);
	enc_rows_get(m, 2, got);
	for (int i = 0; i < nout; i++) {
		assert_true(rows[i] == oov[i]);
		assert_true(got[i] == oov[i]);
	}
	free(idx);
	free_ds(&ds);
	ctr_free(m);
}

/*
 * A user whose clicks follow the taste axis gets gamma > 0 and a row that
 * orders their items better than the unknown-user row; a user whose
 * taste switches half-way gets gamma 0: each held-out block
 * is scored with the direction of the blocks before it only.
 */
static void
test_choice(void **state)
{
	struct dataset ds;

	(void)state;
	for (uint64_t s = 0; s < 8; s++) {
		struct ctr *m = fm_model(10 + s);
		uint32_t *idx = iota(60, 0);
		float rows[ENC_MAX_OUT], *z0, *z1;
		double net = 0, g, r0 = 0, r1 = 0;

		taste_items(m, 20 + s);
		/*
		 * The logit is the user-item dot alone (MLP output weights
		 * and the other FM pairs 0; the user's and the unknown-user
		 * row 0), so the cloud model ties every item of this user:
		 * a random model of items at +-1 may already order them.
		 */
		fixture_zero(m, "fm_w");
		fixture_zero(m, "out_w");
		fixture_zero(m, "emb_user");
		ctr_tensor_find(m, "fm_w")->data[0] = 1.0f;
		user_ds(&ds, 60, 1, 1, 30 + s);
		z0 = calloc(60, sizeof(float));
		z1 = calloc(60, sizeof(float));
		ctr_logits(m, &ds, idx, 60, z0);
		g = rocchio_rows(m, &ds, idx, 60, 1, 3, 4, rows, &net);
		assert_true(g > 0);
		assert_true(net > 0);
		ctr_logits(m, &ds, idx, 60, z1);	/* the chosen rows */
		for (size_t i = 0; i < 60; i++)
			for (size_t j = 0; j < 60; j++)
				if (ds.s[i].label > 0.5f &&
				    ds.s[j].label < 0.5f) {
					r0 += z0[i] > z0[j];
					r1 += z1[i] > z1[j];
				}
		assert_true(r1 > r0);
		free_ds(&ds);
		user_ds(&ds, 60, 1, 0, 40 + s);
		g = rocchio_rows(m, &ds, idx, 60, 1, 3, 4, rows, &net);
		assert_true(g == 0);
		free_ds(&ds);
		free(z0);
		free(z1);
		free(idx);
		ctr_free(m);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dir),
		cmocka_unit_test(test_few),
		cmocka_unit_test(test_choice),
	};

	openblas_set_num_threads(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
