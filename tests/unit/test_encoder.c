/*
 * test_encoder: cmocka tests for shared/ml/encoder.c (DCCL's auxiliary
 * encoder) and shared/ml/encoder_io.c on tiny synthetic data built here.
 *
 * The gradient check perturbs each encoder weight (W, c) by +-1e-2 (the
 * actual float step is the denominator) and compares central differences
 * of the model's mean BCE, with the encoder's rows in place of the user's,
 * against enc_loss_grad: |analytic - numeric| <= 2e-4 + 2e-2 |numeric|
 * (the bound test_ctr uses for the whole model, float forward).
 * enc_reg_loss_grad (encoder_distill.h) gets the same check, with a mask.
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
#include "shared/ml/encoder.h"
#include "shared/ml/encoder_distill.h"
#include "shared/ml/encoder_io.h"
#include "shared/rng.h"
#include "tests/unit/ctr_fixture.h"

void	openblas_set_num_threads(int);

/*
 * n samples over nu users and ni items (genres {i%4, (i/4)%4}, 0..3
 * history items). Even users like the first half of the catalogue, odd
 * users the second half: a user's taste is visible in their own samples
 * only through which items they clicked.
 */
static void
make_ds(struct dataset *ds, size_t n, uint32_t nu, uint32_t ni, uint64_t seed)
{
	struct rng r;

	fixture_ds_init(ds, n, nu, ni, 4);
	rng_seed(&r, seed);
	for (size_t i = 0; i < n; i++) {
		struct sample *s = &ds->s[i];
		s->user = (uint32_t)(i % nu);
		s->item = rng_below(&r, ni);
		s->ts = 1500000000 + (int64_t)i * 60;
		s->genres = fixture_genres(s->item);
		s->label = ((s->item < ni / 2) == (s->user % 2 == 0)) ? 1.0f :
		    0.0f;
		if (rng_below(&r, 10) == 0)
			s->label = 1.0f - s->label;
		fixture_hist(ds, s, rng_below(&r, 4), &r, ni);
	}
}

static struct ctr *
enc_model(uint32_t nu, uint32_t ni, int rank, uint64_t seed)
{
	struct ctr_config c = { 0 };

	c.n_users = nu;
	c.n_items = ni;
	c.n_genres = 4;
	c.dim = 4;
	c.hist_k = 3;
	c.n_hidden = 2;
	c.hidden[0] = 16;
	c.hidden[1] = 8;
	c.patch_rank = rank;
	return new_model(&c, seed);
}

static void
fill(float *p, size_t n, struct rng *r, float scale)
{
	for (size_t i = 0; i < n; i++)
		p[i] = scale * (float)rng_normal(r);
}

/* Random W, c, mu and positive sd. */
static void
randomize(struct enc *e, uint64_t seed)
{
	struct rng r;

	rng_seed(&r, seed);
	fill(e->w, (size_t)e->nin * (size_t)e->nout, &r, 0.3f);
	fill(e->c, (size_t)e->nout, &r, 0.3f);
	fill(e->mu, (size_t)e->nin, &r, 0.1f);
	for (int i = 0; i < e->nin; i++)
		e->sd[i] = 0.5f + (float)rng_unif(&r);
}

static double
loss_at(struct enc *e, struct ctr *m, uint32_t u, const float *x,
    const struct dataset *ds, const uint32_t *idx, int B)
{
	size_t nw = (size_t)e->nin * (size_t)e->nout;
	float *gw = calloc(nw, sizeof(float));
	float *gc = calloc((size_t)e->nout, sizeof(float));
	double l = NAN;

	assert_int_equal(enc_loss_grad(e, m, u, x, ds, idx, B, 1, gw, gc, &l),
	    0);
	free(gw);
	free(gc);
	return l;
}

static void
check_param(float *p, float g, struct enc *e, struct ctr *m, uint32_t u,
    const float *x, const struct dataset *ds, const uint32_t *idx, int B,
    int *checked)
{
	float v = *p, hp, hm;
	double lp, lm, num;

	*p = v + 1e-2f;
	hp = *p - v;
	lp = loss_at(e, m, u, x, ds, idx, B);
	*p = v - 1e-2f;
	hm = v - *p;
	lm = loss_at(e, m, u, x, ds, idx, B);
	*p = v;
	num = (lp - lm) / ((double)hp + hm);
	if (fabs(g - num) > 2e-4 + 2e-2 * fabs(num))
		fail_msg("grad %g numeric %g", (double)g, num);
	(*checked)++;
}

/* enc_loss_grad against central differences, every W and c entry. */
static void
test_grad_check(void **state)
{
	struct dataset ds;
	struct ctr *m = enc_model(5, 20, 3, 7);
	struct enc *e = enc_new(m);
	uint32_t idx[8], u = 2;
	float x[ENC_MAX_IN];
	size_t nw;
	float *gw, *gc;
	double l;
	int B = 0, checked = 0;

	(void)state;
	make_ds(&ds, 60, 5, 20, 3);
	for (size_t i = 0; i < ds.n && B < 8; i++)
		if (ds.s[i].user == u)
			idx[B++] = (uint32_t)i;
	assert_int_equal(B, 8);
	assert_non_null(e);
	assert_int_equal(e->nin, 2 * 4 + 2);
	assert_int_equal(e->nout, 4 + 2 * 3 + 1);
	randomize(e, 11);
	enc_features(m, &ds, idx, 4, x);
	nw = (size_t)e->nin * (size_t)e->nout;
	gw = calloc(nw, sizeof(float));
	gc = calloc((size_t)e->nout, sizeof(float));
	/* scale is applied to the accumulated gradient */
	assert_int_equal(enc_loss_grad(e, m, u, x, &ds, idx, B, 0.5f, gw, gc,
	    &l), 0);
	for (size_t i = 0; i < nw; i++)
		gw[i] *= 2;
	for (int o = 0; o < e->nout; o++)
		gc[o] *= 2;
	assert_true(isfinite(l));
	for (size_t i = 0; i < nw; i++)
		check_param(&e->w[i], gw[i], e, m, u, x, &ds, idx, B, &checked);
	for (int o = 0; o < e->nout; o++)
		check_param(&e->c[o], gc[o], e, m, u, x, &ds, idx, B, &checked);
	assert_int_equal(checked, (int)nw + e->nout);
	/* a sample of another user is refused */
	idx[0] = ds.s[0].user == u ? 1 : 0;
	assert_int_equal(enc_loss_grad(e, m, u, x, &ds, idx, B, 1, gw, gc,
	    &l), -EINVAL);
	free(gw);
	free(gc);
	enc_free(e);
	ctr_free(m);
	free_ds(&ds);
}

/* enc_reg_loss_grad against central differences; masked outputs get 0. */
static void
test_reg_grad_check(void **state)
{
	struct ctr *m = enc_model(5, 20, 3, 7);
	struct enc *e = enc_new(m);
	float x[ENC_MAX_IN], rows[ENC_MAX_OUT], *gw, *gc;
	unsigned char mask[ENC_MAX_OUT];
	size_t nw;
	struct rng r;
	int checked = 0;

	(void)state;
	assert_non_null(e);
	randomize(e, 5);
	rng_seed(&r, 9);
	fill(x, (size_t)e->nin, &r, 1);
	fill(rows, (size_t)e->nout, &r, 1);
	for (int o = 0; o < e->nout; o++)
		mask[o] = o % 3 != 1;
	nw = (size_t)e->nin * (size_t)e->nout;
	gw = calloc(nw, sizeof(float));
	gc = calloc((size_t)e->nout, sizeof(float));
	assert_true(enc_reg_loss_grad(e, x, rows, mask, 1, gw, gc) > 0);
	for (size_t i = 0; i < nw + (size_t)e->nout; i++) {
		float *p = i < nw ? &e->w[i] : &e->c[i - nw];
		float g = i < nw ? gw[i] : gc[i - nw], v = *p, hp, hm;
		double lp, lm, num;
		int o = i < nw ? (int)(i / (size_t)e->nin) : (int)(i - nw);

		*p = v + 1e-2f;
		hp = *p - v;
		lp = enc_reg_loss_grad(e, x, rows, mask, 0, NULL, NULL);
		*p = v - 1e-2f;
		hm = v - *p;
		lm = enc_reg_loss_grad(e, x, rows, mask, 0, NULL, NULL);
		*p = v;
		num = (lp - lm) / ((double)hp + hm);
		if (fabs(g - num) > 2e-4 + 2e-2 * fabs(num))
			fail_msg("entry %zu: grad %g numeric %g", i,
			    (double)g, num);
		if (!mask[o])
			assert_true(g == 0 && fabs(num) < 1e-4);
		checked++;
	}
	assert_int_equal(checked, (int)nw + e->nout);
	free(gw);
	free(gc);
	enc_free(e);
	ctr_free(m);
}

/* Pairs from a known linear map plus noise: half to fit, half to validate. */
struct reg_case {
	struct enc	*truth;
	float		*x, *rows;
	unsigned char	*mask;
	size_t		 n;
	int		 calls;
};

/* Validation: the held-out half's mean masked error. */
static double
reg_val(void *arg, const struct enc *e)
{
	struct reg_case *c = arg;
	size_t nin = (size_t)e->nin, nout = (size_t)e->nout, h = c->n / 2;
	double l = 0;

	c->calls++;
	for (size_t j = h; j < c->n; j++)
		l += enc_reg_loss_grad(e, c->x + j * nin, c->rows + j * nout,
		    c->mask + j * nout, 0, NULL, NULL);
	return l / (double)(c->n - h);
}

/*
 * enc_distill_fit recovers a linear map from the pairs: far below the
 * constant's validation error, the masked-out outputs (output 0 in every
 * pair) stay at c = 0, the kept epoch is the best one seen, and a fit on
 * no pairs is refused.
 */
static void
test_distill_fit(void **state)
{
	struct ctr *m = enc_model(5, 20, 3, 7);
	struct reg_case c;
	struct enc_pairs p;
	struct enc_fit_opts o;
	struct enc_distill_report rep;
	struct enc *e = NULL;
	struct rng r;
	size_t nin, nout;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.truth = enc_new(m);
	assert_non_null(c.truth);
	randomize(c.truth, 21);
	nin = (size_t)c.truth->nin;
	nout = (size_t)c.truth->nout;
	c.n = 400;
	c.x = calloc(c.n * nin, sizeof(float));
	c.rows = calloc(c.n * nout, sizeof(float));
	c.mask = calloc(c.n * nout, 1);
	rng_seed(&r, 4);
	for (size_t j = 0; j < c.n; j++) {
		fill(c.x + j * nin, nin, &r, 1);
		enc_apply(c.truth, c.x + j * nin, c.rows + j * nout);
		for (size_t k = 0; k < nout; k++) {
			c.rows[j * nout + k] += 0.05f * (float)rng_normal(&r);
			/* output 0 never learned; output 1 by half the pairs */
			c.mask[j * nout + k] = k != 0 && (k != 1 || j % 2);
		}
	}
	p.n = c.n / 2;
	p.x = c.x;
	p.rows = c.rows;
	p.mask = c.mask;
	enc_fit_opts_default(&o);
	o.epochs = 60;
	o.patience = 5;
	o.lr = 1e-2f;
	o.wd = 0;
	assert_int_equal(enc_distill_fit(&e, m, &p, &o, reg_val, &c, &rep),
	    0);
	assert_non_null(e);
	assert_int_equal(rep.n, c.n / 2);
	assert_true(rep.best_epoch >= 1 && rep.best_epoch <= rep.epochs);
	assert_true(rep.val <= rep.val0);
	/* noise alone: 1/2 0.05^2 per output; far below the constant */
	assert_true(rep.val < 0.1 * rep.val0);
	assert_true(rep.mse < 0.1 * rep.val0);
	assert_true(fabs(reg_val(&c, e) - rep.val) < 1e-9);
	assert_true(e->c[0] == 0);
	assert_int_equal(c.calls, rep.epochs + 2);
	enc_free(e);
	e = NULL;
	p.n = 0;
	assert_int_equal(enc_distill_fit(&e, m, &p, &o, reg_val, &c, &rep),
	    -EINVAL);
	assert_null(e);
	enc_free(c.truth);
	free(c.x);
	free(c.rows);
	free(c.mask);
	ctr_free(m);
}

/* Rows: layout, OOV row for unknown ids, the untrained test. */
static void
test_rows(void **state)
{
	struct ctr *m = enc_model(5, 20, 3, 7), *m0 = enc_model(5, 20, 0, 7);
	float r[ENC_MAX_OUT], back[ENC_MAX_OUT];
	const struct param_tensor *t;

	(void)state;
	/* m and b start at zero: every user is untrained */
	assert_true(enc_rows_untrained(m, 1));
	for (int i = 0; i < 11; i++)
		r[i] = (float)(i + 1);
	enc_rows_set(m, 1, r);
	assert_false(enc_rows_untrained(m, 1));
	assert_true(enc_rows_untrained(m, 2));
	enc_rows_get(m, 1, back);
	assert_memory_equal(r, back, 11 * sizeof(float));
	t = ctr_tensor_find(m, "patch_m1");
	assert_true(t->data[1 * 3 + 2] == 10.0f);
	t = ctr_tensor_find(m, "patch_b");
	assert_true(t->data[1] == 11.0f);
	/* ids beyond n_users are the OOV row (row 5) */
	enc_rows_set(m, 99, r);
	t = ctr_tensor_find(m, "emb_user");
	assert_true(t->data[5 * 4 + 3] == 4.0f);
	/* without a patch only the user row, and no way to tell */
	assert_false(enc_rows_untrained(m0, 1));
	ctr_free(m);
	ctr_free(m0);
}

static struct ctr *
trained_model(struct dataset *ds, uint32_t **tr, size_t *ntr, uint32_t **va,
    size_t *nva)
{
	struct ctr *m = enc_model(40, 20, 2, 5);
	struct ctr_train_opts o;

	make_ds(ds, 4000, 40, 20, 9);
	/* the last 20% in time of every user is validation */
	*tr = calloc(ds->n, sizeof(uint32_t));
	*va = calloc(ds->n, sizeof(uint32_t));
	*ntr = *nva = 0;
	for (size_t i = 0; i < ds->n; i++) {
		if (i < ds->n * 8 / 10)
			(*tr)[(*ntr)++] = (uint32_t)i;
		else
			(*va)[(*nva)++] = (uint32_t)i;
	}
	ctr_train_opts_default(&o);
	ctr_opt_default(&o.opt, CTR_OPT_ADAM, 1e-2f);
	o.epochs = 15;
	o.batch = 64;
	assert_int_equal(ctr_train(m, ds, *tr, *ntr, NULL, 0, &o, NULL), 0);
	return m;
}

/*
 * Fitting: a taste that only a user's own clicks show. The constant rows
 * cannot know it, the encoder can: its validation loss must be well below
 * the constant's, and only the model's OOV rows change.
 */
static void
test_fit(void **state)
{
	struct dataset ds;
	uint32_t *tr, *va;
	size_t ntr, nva;
	struct ctr *m = trained_model(&ds, &tr, &ntr, &va, &nva);
	struct ctr *before = ctr_clone(m);
	struct enc_fit_opts o;
	struct enc_fit_report rep;
	struct enc *e = NULL;
	float oov[ENC_MAX_OUT], r[ENC_MAX_OUT], x[ENC_MAX_IN];
	size_t np = ctr_num_params(m), diff = 0;
	const float *a = ctr_params(m), *b = ctr_params(before);
	uint32_t idx[200];
	int k = 0;

	(void)state;
	enc_fit_opts_default(&o);
	o.epochs = 20;
	assert_int_equal(enc_fit(&e, m, &ds, tr, ntr, va, nva, &o, &rep), 0);
	assert_non_null(e);
	/* a fifth of the users (seeded) only validate */
	assert_true(rep.n_users >= 20 && rep.n_users < 40);
	assert_int_equal(rep.n_users + rep.n_val_users, 40);
	assert_true(rep.val_fit < rep.val_const - 0.05);
	assert_true(rep.chosen != ENC_MODE_CONST);
	assert_true(isfinite(rep.val_rows));
	for (size_t i = 0; i < np; i++)
		diff += a[i] != b[i];
	enc_rows_get(m, 40, oov);
	/* exactly the OOV rows moved (user row, m rows, b) */
	assert_true(diff > 0 && diff <= (size_t)e->nout);
	/* the encoder tells an even user's taste from an odd one's */
	for (size_t i = 0; i < ds.n && k < 200; i++)
		if (ds.s[i].user == 3)
			idx[k++] = (uint32_t)i;
	enc_features(m, &ds, idx, (size_t)k, x);
	enc_apply(e, x, r);
	assert_memory_not_equal(r, oov, (size_t)e->nout * sizeof(float));
	/* bad arguments */
	enc_free(e);
	assert_int_equal(enc_fit(&e, m, &ds, tr, ntr, va, 0, &o, &rep),
	    -EINVAL);
	assert_null(e);
	ctr_free(m);
	ctr_free(before);
	free(tr);
	free(va);
	free_ds(&ds);
}

/* Packs, attaches, unpacks; and every refusal is typed. */
static void
test_io(void **state)
{
	struct ctr *m = enc_model(5, 20, 3, 7), *m2 = NULL;
	struct enc *e = enc_new(m), *e2 = NULL;
	uint8_t *buf = NULL, *b2;
	size_t len = 0;
	enum enc_mode mode = ENC_MODE_CONST;
	Dccl__Model *msg;
	char err[256];

	(void)state;
	randomize(e, 3);
	assert_int_equal(ctr_io_pack(m, NULL, &buf, &len), 0);
	/* format 1: no encoder, not an error */
	assert_int_equal(encoder_io_unpack(&e2, NULL, m, buf, len, err,
	    sizeof(err)), 0);
	assert_null(e2);
	assert_int_equal(encoder_io_attach(&buf, &len, e, ENC_MODE_FIT), 0);
	/* attaching twice: no longer format 1 */
	b2 = malloc(len);
	memcpy(b2, buf, len);
	assert_int_equal(encoder_io_attach(&b2, &len, e, ENC_MODE_FIT),
	    CTR_IO_EFORMAT);
	free(b2);
	assert_int_equal(ctr_io_unpack(&m2, NULL, buf, len, err, sizeof(err)),
	    0);
	assert_int_equal(encoder_io_unpack(&e2, &mode, m2, buf, len, err,
	    sizeof(err)), 0);
	assert_non_null(e2);
	assert_int_equal(mode, ENC_MODE_FIT);
	assert_memory_equal(e->w, e2->w, (size_t)e->nin * e->nout * 4);
	assert_memory_equal(e->c, e2->c, (size_t)e->nout * 4);
	assert_memory_equal(e->mu, e2->mu, (size_t)e->nin * 4);
	assert_memory_equal(e->sd, e2->sd, (size_t)e->nin * 4);
	enc_free(e2);
	e2 = NULL;

	/* tampering: each edit gives its code */
	static const int codes[] = { CTR_IO_ECHECKSUM, CTR_IO_ENONFINITE,
		CTR_IO_ESHAPE, CTR_IO_EMISSING, CTR_IO_EUNKNOWN,
		CTR_IO_EFORMAT, CTR_IO_EMISSING };
	for (int c = 0; c < 7; c++) {
		uint8_t *p;
		size_t n;
		msg = dccl__model__unpack(NULL, len, buf);
		assert_non_null(msg);
		Dccl__Tensor *t = msg->enc_tensors[2];
		char *oldname = msg->enc_tensors[3]->name;
		size_t oldn = msg->n_enc_tensors;
		switch (c) {
		case 0: t->data[0] += 1; break;
		case 1: t->data[1] = NAN; break;
		case 2: t->shape[1] += 1; break;
		case 3: msg->n_enc_tensors = 3; break;
		case 4: msg->enc_tensors[3]->name = "enc_x"; break;
		case 5: msg->format = 3; break;
		case 6: msg->n_enc_tensors = 0; break;
		}
		n = dccl__model__get_packed_size(msg);
		p = malloc(n);
		dccl__model__pack(msg, p);
		msg->enc_tensors[3]->name = oldname;
		msg->n_enc_tensors = oldn;
		dccl__model__free_unpacked(msg, NULL);
		assert_int_equal(encoder_io_unpack(&e2, NULL, m2, p, n, err,
		    sizeof(err)), codes[c]);
		assert_null(e2);
		assert_true(strncmp(err, "encoder: ", 9) == 0);
		free(p);
	}
	/* a model of another shape does not take this encoder */
	{
		struct ctr *m3 = enc_model(5, 20, 2, 7);
		uint8_t *b3 = NULL;
		size_t l3 = 0;
		assert_int_equal(ctr_io_pack(m3, NULL, &b3, &l3), 0);
		assert_int_equal(encoder_io_attach(&b3, &l3, e, ENC_MODE_FIT),
		    CTR_IO_ESHAPE);
		free(b3);
		ctr_free(m3);
	}
	free(buf);
	enc_free(e);
	ctr_free(m);
	ctr_free(m2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grad_check),
		cmocka_unit_test(test_reg_grad_check),
		cmocka_unit_test(test_distill_fit),
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_fit),
		cmocka_unit_test(test_io),
	};

	openblas_set_num_threads(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
