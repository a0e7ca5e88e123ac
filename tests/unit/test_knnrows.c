/*
 * test_knnrows: cmocka tests for deviced/knnrows.c (a cold user's rows
 * averaged from trained users whose rows point along the user's click
 * direction). No trainable piece (an average and a choice on the local
 * samples): the tests check which users are averaged, that untrained
 * users and the user itself are not, and that the choice finds a taste
 * the neighbours' rows carry and refuses a switch the past cannot show.
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

#include "deviced/knnrows.h"
#include "shared/ml/ctr.h"
#include "shared/ml/encoder.h"
#include "shared/rng.h"
#include "tests/unit/ctr_fixture.h"

void	openblas_set_num_threads(int);

#define NU	52
#define NI	40
#define DIM	4
#define COLD	51	/* the cold user: rows untrained */

/* The shape of every model here. */
static void
config(struct ctr_config *c)
{
	c->n_users = NU;
	c->n_items = NI;
	c->n_genres = 4;
	c->dim = DIM;
	c->hist_k = 3;
	c->n_hidden = 2;
	c->hidden[0] = 8;
	c->hidden[1] = 4;
	c->patch_rank = 2;
}

/*
 * A model whose logit is the user-item dot alone (MLP output weights and
 * the other FM pairs 0). Items: +-1 on dimension 0 (the first half +1),
 * noise elsewhere. Users 0..24 like the first half (row +2 e0), 25..49
 * the second (-2 e0), each with a bias row 0.1 * (u + 1) (trained); user
 * 50 has a +2 e0 row but zero m and bias rows (untrained); COLD and the
 * unknown-user row are 0. More users than KNNROWS_K on each side.
 */
static struct ctr *
model(uint64_t seed)
{
	struct ctr_config c = { 0 };
	struct ctr *m;
	const struct param_tensor *ti, *tu, *tb;
	struct rng r;

	config(&c);
	c.interaction = CTR_INTER_FM;
	m = new_model(&c, seed);
	fixture_zero(m, "fm_w");
	fixture_zero(m, "out_w");
	fixture_zero(m, "emb_user");
	fixture_zero(m, "patch_b");
	for (int l = 0; l < 2; l++) {
		char nm[24];
		snprintf(nm, sizeof(nm), "patch_m%d", l);
		fixture_zero(m, nm);
	}
	ctr_tensor_find(m, "fm_w")->data[0] = 1.0f;
	ti = ctr_tensor_find(m, "emb_item");
	tu = ctr_tensor_find(m, "emb_user");
	tb = ctr_tensor_find(m, "patch_b");
	rng_seed(&r, seed + 100);
	for (uint32_t i = 0; i < NI; i++) {
		float *e = ti->data + (size_t)i * ti->shape[1];
		e[0] = i < NI / 2 ? 1.0f : -1.0f;
		for (int d = 1; d < DIM; d++)
			e[d] = 0.05f * (float)rng_normal(&r);
	}
	for (uint32_t u = 0; u <= 50; u++) {
		float *e = tu->data + (size_t)u * tu->shape[1];
		e[0] = u < 25 || u == 50 ? 2.0f : -2.0f;
		for (int d = 1; d < DIM; d++)
			e[d] = 0.05f * (float)rng_normal(&r);
		if (u < 50)
			tb->data[u] = 0.1f * (float)(u + 1);
	}
	return m;
}

/* n samples of COLD; likes 1: the first half of the items clicked, 0: so
 * for the first half of the samples, the other half after. */
static void
user_ds(struct dataset *ds, size_t n, int likes, uint64_t seed)
{
	fixture_taste_ds(ds, n, NU, NI, COLD, likes, seed);
}

/* The neighbours: the trained users along dir, never 50 or the user. */
static void
test_avg(void **state)
{
	struct ctr *m = model(1);
	float dir[DIM] = { 1, 0, 0, 0 }, avg[ENC_MAX_OUT];
	int nin, nout;

	(void)state;
	assert_int_equal(enc_shape(m, &nin, &nout), 0);
	/* 24 of users 0..24 (user 2 excluded as the asker) */
	assert_int_equal(knnrows_avg(m, dir, 2, 24, avg), 24);
	assert_true(avg[0] > 1.9f);
	assert_true(fabs(avg[nout - 1] - (0.1f * 325 - 0.3f) / 24) < 1e-4f);
	/* all trained users: 0..49, not 50 (untrained) */
	assert_int_equal(knnrows_avg(m, dir, COLD, 60, avg), 50);
	assert_true(fabs(avg[0]) < 0.01f);
	assert_true(fabs(avg[nout - 1] - 2.55f) < 1e-4f);
	/* the other direction: users 25..49 */
	dir[0] = -1;
	assert_int_equal(knnrows_avg(m, dir, COLD, 25, avg), 25);
	assert_true(avg[0] < -1.9f);
	assert_true(fabs(avg[nout - 1] - 3.8f) < 1e-4f);
	dir[0] = 0;	/* no direction: nothing averaged */
	assert_int_equal(knnrows_avg(m, dir, COLD, 5, avg), 0);
	ctr_free(m);
}

/*
 * A device's slice (protocol 7) has its own and the unknown-user rows
 * only: no neighbours, and nothing read beyond its two rows (ASan).
 */
static void
test_slice(void **state)
{
	struct ctr_config c = { 0 };
	struct ctr *m;
	float dir[DIM] = { 1, 0, 0, 0 }, avg[ENC_MAX_OUT] = { 0 };

	(void)state;
	config(&c);
	c.sliced = 1;
	c.slice_user = 3;
	m = new_model(&c, 1);
	assert_int_equal(ctr_tensor_find(m, "emb_user")->shape[0], 2);
	/* the unknown-user rows look trained, as a cloud's do */
	ctr_tensor_find(m, "emb_user")->data[DIM] = 2.0f;
	ctr_tensor_find(m, "patch_b")->data[1] = 0.5f;
	assert_int_equal(knnrows_avg(m, dir, 3, 24, avg), 0);
	assert_true(avg[0] == 0);
	ctr_free(m);
}

/* A taste the neighbours carry is taken; a switch is refused. */
static void
test_choice(void **state)
{
	(void)state;
	for (uint64_t s = 0; s < 6; s++) {
		struct ctr *m = model(10 + s);
		struct dataset ds;
		uint32_t *idx = iota(60, 0);
		float rows[ENC_MAX_OUT], *z1 = calloc(60, sizeof(float));
		double net = 0, lam, r1 = 0, np = 0;

		user_ds(&ds, 60, 1, 30 + s);
		lam = knnrows_rows(m, &ds, idx, 60, COLD, 3, 4, rows, &net);
		assert_true(lam > 0);
		assert_true(net > 0);
		assert_true(rows[0] > 0);
		ctr_logits(m, &ds, idx, 60, z1);	/* the chosen rows */
		for (size_t i = 0; i < 60; i++)
			for (size_t j = 0; j < 60; j++)
				if (ds.s[i].label > 0.5f &&
				    ds.s[j].label < 0.5f) {
					r1 += z1[i] > z1[j];
					np++;
				}
		assert_true(r1 > 0.9 * np);	/* the cloud ties them all */
		free_ds(&ds);
		user_ds(&ds, 60, 0, 40 + s);
		lam = knnrows_rows(m, &ds, idx, 60, COLD, 3, 4, rows, &net);
		assert_true(lam == 0);
		free_ds(&ds);
		free(z1);
		free(idx);
		ctr_free(m);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_avg),
		cmocka_unit_test(test_slice),
		cmocka_unit_test(test_choice),
	};

	openblas_set_num_threads(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
