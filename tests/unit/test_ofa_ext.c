/*
 * test_ofa_ext: cmocka tests for Forward-OFA's newer pieces: the base
 * model's input options (side fields, field dots, the FM term), the
 * behaviour controller (shared/ml/ofa_ctrl.c), the DUET-style generator
 * (shared/ml/ofa_duet.c) and OFA format 2 (ofa_io.c).
 *
 * Gradient checks as in test_ofa: each float32 parameter perturbed by
 * +-1e-3, central differences of the double-accumulated loss (BCE + mu *
 * penalty) against the analytic gradient, |analytic - numeric| <= 2e-4 +
 * 2e-2 |numeric|; every tensor checked must carry some gradient.
 *   - behaviour controller, soft gates (where the straight-through formula
 *     is exact), with the FM column in the input: every tensor, including
 *     the controller's standardisation, hidden and output layers;
 *   - DUET-style generator under OFA_GATE_ALL: every tensor but the
 *     controller, which must get exactly zero;
 *   - both at once under soft gates.
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
#include "shared/ml/ofa.h"
#include "shared/ml/ofa_io.h"
#include "shared/rng.h"

void	openblas_set_num_threads(int);

enum { GB = 6, C0 = 7, ZD = 3 };

static struct ofa_config
cfg(int hc, int hg)
{
	struct ofa_config c = { 0 };

	c.in_dim = C0;		/* the last column is the FM term */
	c.z_dim = ZD;
	c.hidden = 5;
	c.inner = 4;
	c.n_blocks = 3;
	c.rank = 2;
	c.hist_k = 3;
	c.interaction = CTR_INTER_FM;
	c.ctrl_hidden = hc;
	c.gen_hidden = hg;
	return c;
}

#define OFA_GC_B GB
#define OFA_GC_X C0
#define OFA_GC_Z ZD
#include "tests/unit/ofa_gradcheck.h"
#include "tests/unit/ctr_fixture.h"

static void
randomize(struct ofa *m, uint64_t seed)
{
	gc_randomize(m, seed);
	/* a standardisation scale near 1, not near 0 */
	const struct param_tensor *sc = ofa_tensor_find(m, "ctl_sc");
	for (size_t i = 0; sc != NULL && i < sc->n; i++)
		sc->data[i] = 1.0f + 0.3f * sc->data[i];
}

/* zero_ctl: the controller must get exactly zero gradient. */
static int
grad_check(struct ofa *m, const struct gc *g, double mu, int zero_ctl)
{
	int total_bad = 0;
	float *an = malloc(ofa_num_params(m) * sizeof(float));

	total_loss(m, g, mu);
	memcpy(an, ofa_grads(m), ofa_num_params(m) * sizeof(float));
	for (int i = 0; i < ofa_num_tensors(m); i++) {
		const struct param_tensor *t = ofa_tensor_at(m, i);
		int bad, nonzero;
		double maxd;
		bad = gc_tensor(m, g, mu, an, t, &nonzero, &maxd);
		if (zero_ctl && strncmp(t->name, "ctl_", 4) == 0)
			assert_true(nonzero == 0 && maxd == 0);
		else
			assert_true(nonzero > 0);
		total_bad += bad;
	}
	free(an);
	return total_bad;
}

static void
test_grad_ctrl(void **state)
{
	struct ofa_config c = cfg(4, 0);
	struct ofa *m = NULL;
	struct gc g;

	assert_int_equal(ofa_new(&m, &c, 3), 0);
	assert_non_null(ofa_tensor_find(m, "ctl_w1"));
	randomize(m, 4);
	ofa_set_gate_mode(m, OFA_GATE_SOFT);
	gc_init(&g, 5);
	assert_int_equal(grad_check(m, &g, 0.3, 0), 0);
	ofa_free(m);
}

static void
test_grad_duet(void **state)
{
	struct ofa_config c = cfg(0, 4);
	struct ofa *m = NULL;
	struct gc g;
	float gates[GB * 3];

	assert_int_equal(ofa_new(&m, &c, 3), 0);
	assert_int_equal(ofa_tensor_find(m, "b0_gw")->shape[1], 4);
	randomize(m, 6);
	ofa_set_gate_mode(m, OFA_GATE_ALL);
	gc_init(&g, 7);
	assert_int_equal(ofa_forward(m, g.x0, g.z, g.bud, GB, gates, NULL), 0);
	for (int i = 0; i < GB * 3; i++)
		assert_true(gates[i] == 1.0f);
	assert_int_equal(grad_check(m, &g, 0.3, 1), 0);
	ofa_free(m);
}

static void
test_grad_both(void **state)
{
	struct ofa_config c = cfg(3, 5);
	struct ofa *m = NULL;
	struct gc g;

	assert_int_equal(ofa_new(&m, &c, 8), 0);
	randomize(m, 9);
	ofa_set_gate_mode(m, OFA_GATE_SOFT);
	gc_init(&g, 10);
	assert_int_equal(grad_check(m, &g, 0.1, 0), 0);
	ofa_free(m);
}

/*
 * The device path (one z, materialised weights) gives the training
 * forward's logits, FM term included, for every variant and budget.
 */
static void
test_assemble_matches(void **state)
{
	static const int hc[3] = { 0, 4, 0 }, hg[3] = { 0, 0, 4 };

	for (int v = 0; v < 3; v++) {
		struct ofa_config c = cfg(hc[v], hg[v]);
		struct ofa *m = NULL;
		struct ofa_assembled a;
		struct gc g;
		float zrep[GB * ZD], bud[GB], lf[GB], la[GB], scratch[64];

		assert_int_equal(ofa_new(&m, &c, 11), 0);
		randomize(m, 12);
		if (hg[v] > 0)
			ofa_set_gate_mode(m, OFA_GATE_ALL);
		gc_init(&g, 13);
		ofa_assembled_init(&a);
		for (int k = 0; k < OFA_N_CLASSES; k++) {
			for (int b = 0; b < GB; b++) {
				memcpy(zrep + b * ZD, g.z, ZD * sizeof(float));
				bud[b] = (float)ofa_class_budget[k];
			}
			assert_int_equal(ofa_forward(m, g.x0, zrep, bud, GB,
			    NULL, lf), 0);
			assert_int_equal(ofa_assemble(m, g.z,
			    ofa_class_budget[k], &a), 0);
			assert_true(a.fm);
			ofa_assembled_logits(&a, g.x0, GB, la, scratch);
			for (int b = 0; b < GB; b++)
				assert_true(fabsf(lf[b] - la[b]) < 1e-4f);
		}
		/* the FM column reaches the logit one to one (plus the stem) */
		ofa_assembled_logits(&a, g.x0, 1, la, scratch);
		float x1[C0];
		memcpy(x1, g.x0, sizeof(x1));
		for (int j = 0; j < 5; j++)	/* stem input 0 for the column */
			a.stem_w[(size_t)j * C0 + C0 - 1] = 0.0f;
		ofa_assembled_logits(&a, x1, 1, la, scratch);
		x1[C0 - 1] += 1.5f;
		ofa_assembled_logits(&a, x1, 1, lf, scratch);
		assert_true(fabsf(lf[0] - la[0] - 1.5f) < 1e-5f);
		ofa_assembled_fini(&a);
		ofa_free(m);
	}
}

/* A tiny data set with one side field and histories. */
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
		s->side[0] = rng_below(&r, 7);	/* 5, 6: unknown */
		fixture_hist(ds, s, rng_below(&r, 5), &r, 20);
	}
}

/*
 * ofa_inputs reproduces the base model's inputs: with no hidden layer
 * and a zero output layer, the CTR model's logit is exactly its FM term
 * (side field and dots included), which must equal x0's last column.
 */
static void
test_inputs_fm(void **state)
{
	struct ctr_config cc = { 0 };
	struct ctr *e = NULL;
	struct dataset ds;
	struct ofa_config oc;
	struct ofa *m = NULL;
	enum { N = 40 };
	uint32_t idx[N];
	float lg[N], x0[N * 64], z[N * 4];
	int dim;

	cc.n_users = 8;
	cc.n_items = 20;
	cc.n_genres = 4;
	cc.dim = 4;
	cc.hist_k = 4;
	cc.n_hidden = 0;
	cc.interaction = CTR_INTER_FM;
	cc.n_side = 1;
	cc.side_card[0] = 5;
	assert_int_equal(ctr_new(&e, &cc, 1), 0);
	/* a nonzero OOV side row and FM weights away from 1 */
	{
		struct rng r;
		rng_seed(&r, 2);
		const struct param_tensor *t = ctr_tensor_find(e, "emb_side0");
		for (size_t i = 0; i < t->n; i++)
			t->data[i] = (float)(0.5 * rng_normal(&r));
		t = ctr_tensor_find(e, "fm_w");
		for (size_t i = 0; i < t->n; i++)
			t->data[i] = (float)(1 + rng_normal(&r));
		t = ctr_tensor_find(e, "out_w");
		memset(t->data, 0, t->n * sizeof(float));
		t = ctr_tensor_find(e, "out_b");
		memset(t->data, 0, t->n * sizeof(float));
	}
	make_ds(&ds, N, 3);
	for (int i = 0; i < N; i++)
		idx[i] = (uint32_t)i;
	dim = ofa_input_dim(e);
	assert_int_equal(dim, 7 * 4 + 21 + 1);
	assert_int_equal(ctr_logits(e, &ds, idx, N, lg), 0);
	ofa_inputs(e, &ds, idx, N, x0, z);
	for (int i = 0; i < N; i++) {
		assert_true(fabsf(x0[(size_t)i * dim + dim - 1] - lg[i]) <
		    1e-4f * (1 + fabsf(lg[i])));
		/* z is the behaviour slice */
		assert_memory_equal(z + i * 4, x0 + (size_t)i * dim + 20,
		    4 * sizeof(float));
	}
	/* the default config takes the base's options; a mismatch is refused */
	ofa_config_default(&oc, e);
	assert_int_equal(oc.in_dim, dim);
	assert_int_equal(oc.n_side, 1);
	assert_int_equal(oc.interaction, CTR_INTER_FM);
	assert_int_equal(ofa_new(&m, &oc, 1), 0);
	assert_int_equal(ofa_fits_ctr(m, e), 0);
	ofa_free(m);
	oc.n_side = 0;
	assert_int_equal(ofa_new(&m, &oc, 1), 0);
	assert_int_equal(ofa_fits_ctr(m, e), -EINVAL);
	float p[N];
	assert_int_equal(ofa_predict(m, e, &ds, idx, N, 1.0, p, NULL), -EINVAL);
	ofa_free(m);
	ctr_free(e);
	free_ds(&ds);
}

/* Format 2 round trip; format 1 stays format 1; a lying header is refused. */
static void
test_io_format2(void **state)
{
	struct ofa_config c = cfg(4, 3);
	struct ofa *m = NULL, *w = NULL;
	struct ofa_meta meta = { 0 };
	uint8_t *buf;
	size_t len;
	char err[256];

	assert_int_equal(ofa_new(&m, &c, 21), 0);
	randomize(m, 22);
	meta.version = meta.base_version = 3;
	assert_int_equal(ofa_io_format(&c), OFA_IO_FORMAT_2);
	assert_int_equal(ofa_io_pack(m, &meta, 1, OFA_IO_ALL, &buf, &len), 0);
	assert_int_equal(ofa_io_unpack(&w, NULL, buf, len, err, sizeof(err)), 0);
	assert_memory_equal(ofa_config(w), &c, sizeof(c));
	assert_memory_equal(ofa_params(w), ofa_params(m),
	    ofa_num_params(m) * sizeof(float));
	ofa_free(w);
	w = NULL;
	/* the format byte is field 1 (varint 2): claim format 1 */
	assert_true(buf[0] == 0x08 && buf[1] == OFA_IO_FORMAT_2);
	buf[1] = 1;
	assert_int_equal(ofa_io_unpack(&w, NULL, buf, len, err, sizeof(err)),
	    CTR_IO_EFORMAT);
	printf("  format 1 header on a format-2 model: %s\n", err);
	buf[1] = 9;
	assert_int_equal(ofa_io_unpack(&w, NULL, buf, len, err, sizeof(err)),
	    CTR_IO_EFORMAT);
	assert_null(w);
	free(buf);
	ofa_free(m);

	/* the old options: still written and read as format 1 */
	c = cfg(0, 0);
	c.interaction = 0;
	c.in_dim = 6;
	assert_int_equal(ofa_io_format(&c), CTR_IO_FORMAT);
	assert_int_equal(ofa_new(&m, &c, 23), 0);
	assert_int_equal(ofa_io_pack(m, &meta, 1, OFA_IO_ALL, &buf, &len), 0);
	assert_true(buf[0] == 0x08 && buf[1] == CTR_IO_FORMAT);
	assert_int_equal(ofa_io_unpack(&w, NULL, buf, len, err, sizeof(err)), 0);
	assert_memory_equal(ofa_config(w), &c, sizeof(c));
	free(buf);
	ofa_free(w);
	ofa_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grad_ctrl),
		cmocka_unit_test(test_grad_duet),
		cmocka_unit_test(test_grad_both),
		cmocka_unit_test(test_assemble_matches),
		cmocka_unit_test(test_inputs_fm),
		cmocka_unit_test(test_io_format2),
	};

	openblas_set_num_threads(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
