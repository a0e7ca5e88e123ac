/*
 * test_krc: cmocka tests for deviced/krc.c (the kernel residual
 * correction). No trainable piece: the correction is a closed form and
 * (tau, beta) a choice on the local samples, so the tests check the form
 * against a hand computation, the unit item vectors, and that the choice
 * finds a taste the item embeddings carry and refuses what they cannot
 * show (a switch, identical items, too few samples).
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

#include "deviced/krc.h"
#include "shared/ml/ctr.h"
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
	c.n_hidden = 1;
	c.hidden[0] = 4;
	c.interaction = CTR_INTER_FM;
	return new_model(&c, seed);
}

/* Item embeddings with a taste axis (fixture_taste_items). */
static void
taste_items(struct ctr *m, uint64_t seed)
{
	fixture_taste_items(m, 0.3f, seed);
}

/* Unit rows; an unknown item reads the OOV row, which is 0. */
static void
test_units(void **state)
{
	struct ctr *m = fm_model(1);
	struct dataset ds;
	float e[3 * DIM];

	(void)state;
	taste_items(m, 2);
	fixture_taste_ds(&ds, 3, NU, NI, 1, 1, 3);
	ds.s[2].item = NI + 5;
	krc_units(m, &ds, 3, e);
	for (int i = 0; i < 2; i++) {
		double n = 0;
		for (int d = 0; d < DIM; d++)
			n += (double)e[i * DIM + d] * e[i * DIM + d];
		assert_true(fabs(n - 1) < 1e-5);
	}
	for (int d = 0; d < DIM; d++)
		assert_true(e[2 * DIM + d] == 0);
	free_ds(&ds);
	ctr_free(m);
}

/* The correction of one query against a hand computation. */
static void
test_apply(void **state)
{
	struct dataset ds;
	float e[2 * 2] = { 1, 0, 0, 1 }, z[2] = { 0, 0 };
	float eq[2 * 2] = { 1, 0, 0.6f, 0.8f }, zq[2] = { 0.25f, -1 };
	double tau = 3, beta = 2, k2 = exp(-tau), r1 = 0.5, r2 = -0.5;
	double k3 = exp(tau * (0.6 - 1)), k4 = exp(tau * (0.8 - 1));

	(void)state;
	fixture_taste_ds(&ds, 2, NU, NI, 1, 1, 4);
	ds.s[0].label = 1;
	ds.s[1].label = 0;
	krc_apply(tau, beta, e, &ds, z, 2, 2, eq, zq, 2);
	assert_true(fabs(zq[0] - (0.25 + beta * (r1 + k2 * r2) /
	    (KRC_LAMBDA + 1 + k2))) < 1e-5);
	assert_true(fabs(zq[1] - (-1 + beta * (k3 * r1 + k4 * r2) /
	    (KRC_LAMBDA + k3 + k4))) < 1e-5);
	/* beta 0 changes nothing */
	zq[0] = 0.25f;
	krc_apply(tau, 0, e, &ds, z, 2, 2, eq, zq, 1);
	assert_true(zq[0] == 0.25f);
	free_ds(&ds);
}

/*
 * A user whose clicks follow the item axis: the choice takes beta > 0
 * and the corrected logits rank the liked half above the rest; a user
 * whose taste switches half-way (which no past block can show) keeps
 * beta 0, in every seed.
 */
static void
test_choice(void **state)
{
	(void)state;
	for (uint64_t s = 0; s < 8; s++) {
		struct ctr *m = fm_model(10 + s);
		struct dataset ds, sw, q;
		float e[60 * DIM], eq[NI * DIM], z[60] = { 0 }, zq[NI] = { 0 };
		struct krc k, ks;

		taste_items(m, 20 + s);
		fixture_taste_ds(&ds, 60, NU, NI, 1, 1, 30 + s);
		krc_units(m, &ds, 60, e);
		krc_fit(e, DIM, &ds, z, 60, KRC_FOLDS, KRC_MIN_N, &k);
		assert_true(k.g > 0);
		assert_true(k.beta > 0 && k.sum[k.g] > 0);
		assert_true(k.pairs > 0);
		fixture_taste_ds(&q, NI, NU, NI, 1, 1, 40 + s);
		for (uint32_t i = 0; i < NI; i++)
			q.s[i].item = i;
		krc_units(m, &q, NI, eq);
		krc_apply(k.tau, k.beta, e, &ds, z, 60, DIM, eq, zq, NI);
		for (uint32_t i = 0; i < NI / 2; i++)
			for (uint32_t j = NI / 2; j < NI; j++)
				assert_true(zq[i] > zq[j]);

		fixture_taste_ds(&sw, 60, NU, NI, 1, 0, 30 + s);
		krc_units(m, &sw, 60, e);
		krc_fit(e, DIM, &sw, z, 60, KRC_FOLDS, KRC_MIN_N, &ks);
		assert_int_equal(ks.g, 0);
		assert_true(ks.beta == 0);
		free_ds(&ds);
		free_ds(&sw);
		free_ds(&q);
		ctr_free(m);
	}
}

/*
 * Identical items (a kernel that cannot tell them apart) and too few
 * samples: beta 0.
 */
static void
test_refuse(void **state)
{
	struct dataset ds;
	float e[60 * DIM], z[60] = { 0 };
	struct krc k;

	(void)state;
	fixture_taste_ds(&ds, 60, NU, NI, 1, 1, 7);
	for (size_t i = 0; i < 60 * DIM; i++)
		e[i] = i % DIM == 0 ? 1.0f : 0.0f;
	krc_fit(e, DIM, &ds, z, 60, KRC_FOLDS, KRC_MIN_N, &k);
	assert_int_equal(k.g, 0);
	for (int g = 1; g < KRC_NG; g++)
		assert_true(k.sum[g] == 0);
	for (size_t i = 0; i < 60 * DIM; i++)
		e[i] = (float)(i % 3) - 1;
	krc_fit(e, DIM, &ds, z, KRC_MIN_N - 1, KRC_FOLDS, KRC_MIN_N, &k);
	assert_int_equal(k.g, 0);
	assert_true(k.tau == 0 && k.beta == 0);
	free_ds(&ds);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_apply),
		cmocka_unit_test(test_choice),
		cmocka_unit_test(test_refuse),
	};

	openblas_set_num_threads(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
