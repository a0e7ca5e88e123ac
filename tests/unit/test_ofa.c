/*
 * test_ofa: cmocka tests for shared/ml/ofa.c (Forward-OFA) and shared/ml/ofa_io.c.
 *
 * Gradient checks perturb each float32 parameter by +-1e-3 (the actual
 * float step is the denominator) and compare central differences of the
 * double-accumulated loss (BCE + mu * penalty) with the analytic gradient:
 * |analytic - numeric| <= 2e-4 + 2e-2 |numeric|, as in test_ctr.
 *   - soft gates (gate = sigma(c)): every tensor, controller included; in
 *     this mode the straight-through formula is the exact gradient;
 *   - hard gates: every tensor except the controller (the hard loss is flat
 *     in c); the controller gets the straight-through gradient, which is
 *     checked against sigma'(c) * dL/dgate with dL/dgate measured by
 *     finite differences through the soft model at a gate of exactly 0/1.
 *   - static backbone (OFA_GATE_STATIC): every tensor; the controller, the
 *     mapper and A, Bm must have an exactly zero gradient (and the loss
 *     must not move when they do), the rest a nonzero one.
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
#include "tests/unit/ctr_fixture.h"

void	openblas_set_num_threads(int);

static struct ofa_config
tiny_cfg(void)
{
	struct ofa_config c = { 0 };

	c.in_dim = 6;
	c.z_dim = 3;
	c.hidden = 5;
	c.inner = 4;
	c.n_blocks = 3;
	c.rank = 2;
	c.hist_k = 3;
	return c;
}

enum { GB = 6 };

#define OFA_GC_B GB
#define OFA_GC_X 6
#define OFA_GC_Z 3
#include "tests/unit/ofa_gradcheck.h"

/* Makes every parameter O(1)-ish so that all paths carry gradient. */
static void
randomize(struct ofa *m, uint64_t seed)
{
	gc_randomize(m, seed);
}

/* Tensors the static backbone must leave untouched. */
static int
static_zero(const char *name)
{
	const char *u = strchr(name, '_');

	return strncmp(name, "ctl_", 4) == 0 || (name[0] == 'b' && u != NULL &&
	    (strcmp(u, "_gw") == 0 || strcmp(u, "_gb") == 0 ||
	    strcmp(u, "_a") == 0 || strcmp(u, "_bm") == 0));
}

/* Checks the gradient of every tensor (skip_ctl: all but ctl_*). */
static int
grad_check(struct ofa *m, const struct gc *g, double mu, int skip_ctl)
{
	int stat = skip_ctl == 2;

	int total_bad = 0;
	float *an = malloc(ofa_num_params(m) * sizeof(float));

	total_loss(m, g, mu);
	memcpy(an, ofa_grads(m), ofa_num_params(m) * sizeof(float));
	for (int i = 0; i < ofa_num_tensors(m); i++) {
		const struct param_tensor *t = ofa_tensor_at(m, i);
		int bad, nonzero;
		double maxd;
		if (skip_ctl == 1 && strncmp(t->name, "ctl_", 4) == 0)
			continue;
		bad = gc_tensor(m, g, mu, an, t, &nonzero, &maxd);
		if (stat && static_zero(t->name))
			assert_true(nonzero == 0 && maxd == 0);
		else
			assert_true(nonzero > 0);
		total_bad += bad;
	}
	free(an);
	return total_bad;
}

static void
test_grad_soft(void **state)
{
	struct ofa_config c = tiny_cfg();
	struct ofa *m = NULL;
	struct gc g;

	assert_int_equal(ofa_new(&m, &c, 3), 0);
	randomize(m, 4);
	ofa_set_gate_mode(m, OFA_GATE_SOFT);
	gc_init(&g, 5);
	assert_int_equal(grad_check(m, &g, 0.3, 0), 0);
	ofa_free(m);
}

static void
test_grad_static(void **state)
{
	struct ofa_config c = tiny_cfg();
	struct ofa *m = NULL;
	struct gc g;
	float gates[GB * 3];

	assert_int_equal(ofa_new(&m, &c, 3), 0);
	randomize(m, 4);
	ofa_set_gate_mode(m, OFA_GATE_STATIC);
	gc_init(&g, 5);
	assert_int_equal(ofa_forward(m, g.x0, g.z, g.bud, GB, gates, NULL), 0);
	for (int i = 0; i < GB * 3; i++)
		assert_true(gates[i] == 1.0f);
	assert_int_equal(grad_check(m, &g, 0.3, 2), 0);
	ofa_free(m);
}

static void
test_grad_hard(void **state)
{
	struct ofa_config c = tiny_cfg();
	struct ofa *m = NULL;
	struct gc g;
	float gates[GB * 3];
	int open = 0;

	assert_int_equal(ofa_new(&m, &c, 3), 0);
	randomize(m, 4);
	/* biases that leave every block open for some sample, closed for
	 * another (budget 1/3 keeps one block, 2/3 two) */
	float *bc = (float *)ofa_tensor_find(m, "ctl_b")->data;
	bc[0] = 0.9f;
	bc[1] = 0.6f;
	bc[2] = 0.4f;
	gc_init(&g, 5);
	assert_int_equal(ofa_forward(m, g.x0, g.z, g.bud, GB, gates, NULL), 0);
	for (int i = 0; i < GB * 3; i++)
		open += gates[i] > 0.5f;
	printf("  %d of %d gates open\n", open, GB * 3);
	assert_true(open > 0 && open < GB * 3);
	/* mapper, blocks, stem, head: exact (the gates are locally fixed) */
	assert_int_equal(grad_check(m, &g, 0.3, 1), 0);
	ofa_free(m);
}

/*
 * Straight-through estimator: d c_l = sigma'(c_l) * dL/dgate_l. For an
 * assembled block (gate 1) dL/dgate is measurable: x + gate * (V h + c) is
 * linear in gate, and scaling gate by (1 + e) is scaling V_l and c_l by
 * (1 + e). So central differences over that scaling give the BCE part; the
 * penalty part is mu * cost / budget. Single-sample batches, so that the
 * ctl_b gradient is that one sample's d c_l.
 */
static void
test_ste(void **state)
{
	struct ofa_config c = tiny_cfg();
	struct ofa *m = NULL;
	struct gc g;
	float gates[3];
	int checked = 0;
	const double mu = 0.2, e = 1e-3;

	assert_int_equal(ofa_new(&m, &c, 7), 0);
	randomize(m, 8);
	gc_init(&g, 9);
	for (int b = 0; b < GB; b++) {
		double l, p, cl[3];
		float an[3];
		assert_int_equal(ofa_forward(m, g.x0 + b * 6, g.z + b * 3,
		    g.bud + b, 1, gates, NULL), 0);
		ofa_zero_grad(m);
		ofa_backward(m, g.y + b, mu, &l, &p);
		memcpy(an, ofa_tensor_find(m, "ctl_b")->grad, sizeof(an));
		/* controller logits c_l = wc . [z, b] + bc */
		const float *wc = ofa_tensor_find(m, "ctl_w")->data;
		const float *bc = ofa_tensor_find(m, "ctl_b")->data;
		for (int k = 0; k < 3; k++) {
			cl[k] = bc[k] + wc[k * 4 + 3] * g.bud[b];
			for (int j = 0; j < 3; j++)
				cl[k] += wc[k * 4 + j] * g.z[b * 3 + j];
		}
		for (int k = 0; k < 3; k++) {
			char nv[24], nc[24];
			if (gates[k] < 0.5f)
				continue;
			snprintf(nv, sizeof(nv), "b%d_v", k);
			snprintf(nc, sizeof(nc), "b%d_c", k);
			const struct param_tensor *tv = ofa_tensor_find(m, nv);
			const struct param_tensor *tc = ofa_tensor_find(m, nc);
			float *sv = malloc(tv->n * sizeof(float));
			float *sc = malloc(tc->n * sizeof(float));
			double lp, lm;
			memcpy(sv, tv->data, tv->n * sizeof(float));
			memcpy(sc, tc->data, tc->n * sizeof(float));
			for (int sgn = 1; sgn >= -1; sgn -= 2) {
				for (size_t i = 0; i < tv->n; i++)
					tv->data[i] = (float)(sv[i] * (1 + sgn * e));
				for (size_t i = 0; i < tc->n; i++)
					tc->data[i] = (float)(sc[i] * (1 + sgn * e));
				float lg;
				ofa_forward(m, g.x0 + b * 6, g.z + b * 3,
				    g.bud + b, 1, NULL, &lg);
				double zz = lg, yy = g.y[b];
				double ll = (zz > 0 ? zz : 0) - zz * yy +
				    log1p(exp(-fabs(zz)));
				if (sgn > 0)
					lp = ll;
				else
					lm = ll;
			}
			memcpy(tv->data, sv, tv->n * sizeof(float));
			memcpy(tc->data, sc, tc->n * sizeof(float));
			free(sv);
			free(sc);
			double dgate = (lp - lm) / (2 * e) + mu / 3.0 / g.bud[b];
			double sg = 1.0 / (1.0 + exp(-cl[k]));
			double want = dgate * sg * (1 - sg);
			if (fabs(want - an[k]) > 2e-4 + 2e-2 * fabs(want))
				printf("  sample %d block %d: analytic %.7f "
				    "want %.7f\n", b, k, an[k], want);
			assert_true(fabs(want - an[k]) <= 2e-4 + 2e-2 *
			    fabs(want));
			checked++;
		}
	}
	printf("  %d straight-through controller gradients checked\n",
	    checked);
	assert_true(checked > 0);
	ofa_free(m);
}

/* ---- data: a tiny CTR model for the embeddings ------------------------------ */

/*
 * Two taste groups: users < nu/2 like items < ni/2, the others the rest;
 * a sample's history holds the user's recent positives, so the behaviour
 * encoding tells the group. A deeper network is not needed for that, so
 * the cost penalty should close blocks, more so for a low budget.
 */
static void
make_ds(struct dataset *ds, size_t n, uint32_t nu, uint32_t ni, uint64_t seed)
{
	struct rng r;

	fixture_ds_init(ds, n, nu, ni, 5);
	rng_seed(&r, seed);
	for (size_t i = 0; i < n; i++) {
		struct sample *s = &ds->s[i];
		int grp;
		s->user = rng_below(&r, nu);
		s->item = rng_below(&r, ni);
		grp = s->user < nu / 2;
		s->ts = 1500000000 + (int64_t)rng_below(&r, 86400 * 14);
		s->genres = 1u << (s->item % 4);
		s->label = ((s->item < ni / 2) == grp) ? 1.0f : 0.0f;
		s->hist_off = (uint32_t)ds->hist_len;
		s->hist_n = (uint16_t)(1 + rng_below(&r, 4));
		for (int k = 0; k < s->hist_n; k++)
			ds->hist[ds->hist_len++] = grp ? rng_below(&r, ni / 2) :
			    ni / 2 + rng_below(&r, ni / 2);
	}
}

static struct ctr *
tiny_ctr(void)
{
	struct ctr_config c = { 0 };

	c.n_users = 8;
	c.n_items = 20;
	c.n_genres = 4;
	c.dim = 4;
	c.hist_k = 4;
	c.n_hidden = 1;
	c.hidden[0] = 8;
	return new_model(&c, 1);
}

/* Trains the embeddings the OFA model will use (frozen). */
static void
train_ctr(struct ctr *e, const struct dataset *ds, const uint32_t *idx)
{
	struct ctr_train_opts o;

	ctr_train_opts_default(&o);
	o.opt.lr = 1e-2f;
	o.epochs = 10;
	o.batch = 32;
	assert_int_equal(ctr_train(e, ds, idx, ds->n, NULL, 0, &o, NULL), 0);
}

static void
test_budget_blocks(void **state)
{
	struct ctr *e = tiny_ctr();
	struct ofa_config c;
	struct ofa *m = NULL;
	struct ofa_train_opts o;
	struct ofa_train_stats st;
	struct dataset ds;
	uint32_t *idx;
	double bl[OFA_N_CLASSES], before, after;
	float *p;

	make_ds(&ds, 800, 8, 20, 3);
	idx = malloc(ds.n * sizeof(*idx));
	p = malloc(ds.n * sizeof(*p));
	for (size_t i = 0; i < ds.n; i++)
		idx[i] = (uint32_t)i;
	train_ctr(e, &ds, idx);
	ofa_config_default(&c, e);
	c.hidden = 16;
	c.inner = 16;
	c.rank = 4;
	assert_int_equal(ofa_new(&m, &c, 2), 0);
	ofa_train_opts_default(&o);
	o.epochs = 30;
	o.batch = 32;
	o.lr = 3e-3f;
	o.mu = 0.002;
	o.patience = 0;
	assert_int_equal(ofa_predict(m, e, &ds, idx, ds.n, 1.0, p, NULL), 0);
	before = 0;
	for (size_t i = 0; i < ds.n; i++)
		before -= ds.s[i].label ? log(p[i]) : log(1 - p[i]);
	assert_int_equal(ofa_train(m, e, &ds, idx, ds.n, NULL, 0, &o, &st), 0);
	after = 0;
	for (int k = 0; k < OFA_N_CLASSES; k++)
		assert_int_equal(ofa_predict(m, e, &ds, idx, ds.n,
		    ofa_class_budget[k], p, &bl[k]), 0);
	for (size_t i = 0; i < ds.n; i++)
		after -= ds.s[i].label ? log(p[i]) : log(1 - p[i]);
	printf("  logloss %.4f -> %.4f; mean blocks low %.2f mid %.2f high "
	    "%.2f (of %d)\n", before / ds.n, after / ds.n, bl[0], bl[1], bl[2],
	    c.n_blocks);
	assert_true(after < before);
	assert_true(bl[0] <= 1.0 + 1e-9);	/* 0.25 of 4 blocks */
	assert_true(bl[1] <= 2.0 + 1e-9);
	assert_true(bl[0] < bl[2]);

	/* the same on the device path: one z, assemble per class */
	float z[4];
	int nlow, nhigh;
	struct ofa_assembled a;
	ofa_assembled_init(&a);
	ofa_behaviour(e, ds.hist + ds.s[0].hist_off, ds.s[0].hist_n, 4, z);
	assert_int_equal(ofa_assemble(m, z, ofa_class_budget[0], &a), 0);
	nlow = a.n_blocks;
	double flow = ofa_assembled_flops(&a);
	assert_int_equal(ofa_assemble(m, z, ofa_class_budget[2], &a), 0);
	nhigh = a.n_blocks;
	printf("  device: low %d blocks (%.0f FLOPs), high %d blocks (%.0f)\n",
	    nlow, flow, nhigh, ofa_assembled_flops(&a));
	assert_true(nlow <= nhigh);
	assert_true(flow <= ofa_assembled_flops(&a));
	ofa_assembled_fini(&a);
	ofa_free(m);
	ctr_free(e);
	free(idx);
	free(p);
	free_ds(&ds);
}

/* A low budget assembles fewer blocks than a high one, by construction. */
static void
test_budget_projection(void **state)
{
	struct ofa_config c = tiny_cfg();
	struct ofa *m = NULL;
	int mask[OFA_MAX_BLOCKS];
	float z[3] = { 0.1f, -0.2f, 0.3f };

	c.n_blocks = 4;
	assert_int_equal(ofa_new(&m, &c, 1), 0);
	/* all controllers open: c = 1 */
	assert_int_equal(ofa_select(m, z, 0.25, mask, NULL), 1);
	assert_int_equal(ofa_select(m, z, 0.5, mask, NULL), 2);
	assert_int_equal(ofa_select(m, z, 1.0, mask, NULL), 4);
	assert_int_equal(ofa_select(m, z, 0.0, mask, NULL), 0);
	/* the open blocks with the largest logits win */
	float *bc = (float *)ofa_tensor_find(m, "ctl_b")->data;
	bc[0] = 0.5f; bc[1] = 3.0f; bc[2] = -1.0f; bc[3] = 2.0f;
	assert_int_equal(ofa_select(m, z, 0.5, mask, NULL), 2);
	assert_true(!mask[0] && mask[1] && !mask[2] && mask[3]);
	/* a closed block stays closed whatever the budget */
	assert_int_equal(ofa_select(m, z, 1.0, mask, NULL), 3);
	assert_false(mask[2]);
	ofa_free(m);
}

/* The device's assembled model scores exactly as the training forward. */
static void
test_assemble_matches(void **state)
{
	struct ofa_config c = tiny_cfg();
	struct ofa *m = NULL;
	struct ofa_assembled a;
	struct gc g;
	float zrep[GB * 3], bud[GB], lf[GB], la[GB], scratch[64];

	c.n_blocks = 4;
	assert_int_equal(ofa_new(&m, &c, 11), 0);
	randomize(m, 12);
	gc_init(&g, 13);
	ofa_assembled_init(&a);
	for (int k = 0; k < OFA_N_CLASSES; k++) {
		for (int b = 0; b < GB; b++) {
			memcpy(zrep + b * 3, g.z, 3 * sizeof(float));
			bud[b] = (float)ofa_class_budget[k];
		}
		assert_int_equal(ofa_forward(m, g.x0, zrep, bud, GB, NULL, lf),
		    0);
		assert_int_equal(ofa_assemble(m, g.z, ofa_class_budget[k], &a),
		    0);
		ofa_assembled_logits(&a, g.x0, GB, la, scratch);
		for (int b = 0; b < GB; b++)
			assert_true(fabsf(lf[b] - la[b]) < 1e-4f);
		printf("  %s: %d blocks, %.0f FLOPs\n", ofa_class_name[k],
		    a.n_blocks, ofa_assembled_flops(&a));
	}
	/* a device without a block it would assemble cannot assemble */
	int mask[OFA_MAX_BLOCKS];
	assert_true(ofa_select(m, g.z, 1.0, mask, NULL) > 0);
	for (int l = 0; l < 4; l++)
		if (mask[l]) {
			ofa_set_has_block(m, l, 0);
			assert_int_equal(ofa_assemble(m, g.z, 1.0, &a), -ENOENT);
			ofa_set_has_block(m, l, 1);
			break;
		}
	ofa_assembled_fini(&a);
	ofa_free(m);
}

/* Whole and per-block round trips, merge, and refusal of altered parts. */
static void
test_io(void **state)
{
	struct ofa_config c = tiny_cfg();
	struct ofa *m = NULL, *d = NULL, *w = NULL;
	struct ofa_meta meta = { 0 }, mo;
	uint8_t *buf, *part;
	size_t len, plen, full_len;
	char err[256];

	c.n_blocks = 4;
	assert_int_equal(ofa_new(&m, &c, 21), 0);
	randomize(m, 22);
	meta.version = meta.base_version = 7;
	assert_int_equal(ofa_io_pack(m, &meta, 1, OFA_IO_ALL, &buf, &len), 0);
	full_len = len;
	assert_int_equal(ofa_io_size(m, &meta, 1, OFA_IO_ALL), len);
	assert_int_equal(ofa_io_unpack(&w, &mo, buf, len, err, sizeof(err)), 0);
	assert_memory_equal(ofa_params(w), ofa_params(m),
	    ofa_num_params(m) * sizeof(float));
	assert_int_equal(mo.base_version, 7);
	/* one flipped data byte: checksum */
	buf[len - 40] ^= 0x20;
	assert_int_equal(ofa_io_unpack(&d, NULL, buf, len, err, sizeof(err)),
	    CTR_IO_ECHECKSUM);
	assert_null(d);
	free(buf);

	/* base only, then blocks 1 and 3 merged in */
	assert_int_equal(ofa_io_pack(m, &meta, 1, 0, &buf, &len), 0);
	assert_int_equal(ofa_io_unpack(&d, NULL, buf, len, err, sizeof(err)),
	    0);
	for (int l = 0; l < 4; l++)
		assert_false(ofa_has_block(d, l));
	assert_int_equal(ofa_io_pack(m, &meta, 0, 0xa, &part, &plen), 0);
	printf("  packed: all %zu B, base %zu B, blocks {1,3} %zu B\n",
	    full_len, len, plen);
	assert_true(len + plen < full_len);
	assert_int_equal(ofa_io_merge(d, 8, part, plen, err, sizeof(err)),
	    CTR_IO_ECONFIG);	/* another base version */
	assert_int_equal(ofa_io_merge(d, 7, part, plen, err, sizeof(err)), 0);
	assert_true(ofa_has_block(d, 1) && ofa_has_block(d, 3));
	assert_false(ofa_has_block(d, 0) || ofa_has_block(d, 2));
	const struct param_tensor *a = ofa_tensor_find(m, "b3_gw");
	const struct param_tensor *b = ofa_tensor_find(d, "b3_gw");
	assert_memory_equal(a->data, b->data, a->n * sizeof(float));
	/* a part without its base cannot stand alone */
	struct ofa *x = NULL;
	assert_int_equal(ofa_io_unpack(&x, NULL, part, plen, err, sizeof(err)),
	    CTR_IO_EMISSING);
	/* an altered part is refused and leaves the model as it was */
	part[plen - 40] ^= 0x01;
	float keep = b->data[0];
	assert_int_equal(ofa_io_merge(d, 7, part, plen, err, sizeof(err)),
	    CTR_IO_ECHECKSUM);
	assert_true(b->data[0] == keep);
	/* packing a block the model does not hold */
	uint8_t *nb;
	size_t nl;
	assert_int_equal(ofa_io_pack(d, &meta, 1, 0x1, &nb, &nl), -ENOENT);
	/* garbage */
	assert_int_equal(ofa_io_unpack(&x, NULL, (const uint8_t *)"\xff\xff",
	    2, err, sizeof(err)), CTR_IO_EUNPACK);
	free(part);
	free(buf);
	ofa_free(d);
	ofa_free(w);
	ofa_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grad_soft),
		cmocka_unit_test(test_grad_hard),
		cmocka_unit_test(test_grad_static),
		cmocka_unit_test(test_ste),
		cmocka_unit_test(test_budget_projection),
		cmocka_unit_test(test_assemble_matches),
		cmocka_unit_test(test_budget_blocks),
		cmocka_unit_test(test_io),
	};

	openblas_set_num_threads(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
