/*
 * test_slice: the per-user slice (shared/ml/ctr_slice.h, protocol 7). A
 * device's slice, assembled from the shared part and its rows, predicts
 * and trains bit for bit as the full model does for that user (every
 * ctr_sel, an unknown user id too), and its patch rows are the full
 * model's; the shared part holds no user's row; a shared part or rows
 * that were altered, cut, added to or made non-finite are refused with a
 * typed error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <math.h>
#include <cmocka.h>

#include "shared/ml/ctr.h"
#include "shared/ml/ctr_io.h"
#include "shared/ml/ctr_slice.h"
#include "shared/rng.h"
#include "tests/unit/ctr_fixture.h"

#define NU	12
#define NI	40
#define NS	96

static struct ctr_config
cfg_small(void)
{
	struct ctr_config c;

	memset(&c, 0, sizeof(c));
	c.n_users = NU;
	c.n_items = NI;
	c.n_genres = 4;
	c.dim = 8;
	c.hist_k = 4;
	c.n_hidden = 2;
	c.hidden[0] = 16;
	c.hidden[1] = 8;
	c.patch_rank = 4;
	c.interaction = CTR_INTER_FM;
	c.attention = 1;
	return c;
}

/* NS samples of user u (labels from a fixed rule), over NI items. */
static void
user_data(struct dataset *ds, uint32_t u, uint64_t seed)
{
	struct rng r;

	fixture_ds_init(ds, NS, NU, NI, 4);
	rng_seed(&r, seed);
	for (size_t i = 0; i < NS; i++) {
		struct sample *s = &ds->s[i];
		s->user = u;
		s->item = rng_below(&r, NI + 3);	/* some OOV items */
		s->genres = fixture_genres(s->item);
		s->ts = 1500000000 + (int64_t)rng_below(&r, 1000000);
		s->label = (s->item % 3 == 0) ? 1.0f : 0.0f;
		fixture_hist(ds, s, rng_below(&r, 5), &r, NI);
	}
}

/* The full model, trained a little so every row differs, packed. */
static struct ctr *
full_model(uint8_t **blob, size_t *len)
{
	struct ctr_config c = cfg_small();
	struct ctr *m = new_model(&c, 11);
	struct ctr_meta meta;
	struct rng r;

	/* distinct patch rows for every user, as after distillation */
	rng_seed(&r, 5);
	for (int i = 0; i < ctr_num_tensors(m); i++) {
		const struct param_tensor *t = ctr_tensor_at(m, i);
		if (ctr_slice_user_tensor(t->name))
			for (size_t k = 0; k < t->n; k++)
				t->data[k] += 0.01f * (float)rng_below(&r, 100);
	}
	memset(&meta, 0, sizeof(meta));
	meta.version = 3;
	meta.global_ctr = 0.3;
	assert_int_equal(ctr_io_pack(m, &meta, blob, len), 0);
	return m;
}

/* The slice of user u from full (packed as the cloud serves it). */
static struct ctr *
slice_of(const uint8_t *blob, size_t len, uint32_t u, uint8_t **sh,
    size_t *shlen)
{
	Dccl__Model *full = dccl__model__unpack(NULL, len, blob);
	Dccl__Tensor t[CTR_SLICE_MAX_TENSORS], *tp[CTR_SLICE_MAX_TENSORS];
	uint32_t shape[2 * CTR_SLICE_MAX_TENSORS];
	uint8_t *out = NULL;
	size_t n, outlen;
	struct ctr *m = NULL;
	char err[256];

	assert_non_null(full);
	assert_int_equal(ctr_slice_shared(full, sh, shlen, err, sizeof(err)),
	    0);
	n = ctr_slice_rows(full, u, t, tp, shape);
	assert_int_equal(n, 4);	/* emb_user, patch_m0, patch_m1, patch_b */
	assert_int_equal(ctr_slice_assemble(*sh, *shlen, u, tp, n, &out,
	    &outlen, err, sizeof(err)), 0);
	assert_int_equal(ctr_io_unpack(&m, NULL, out, outlen, err,
	    sizeof(err)), 0);
	assert_true(ctr_config(m)->sliced);
	assert_int_equal(ctr_config(m)->slice_user, u);
	assert_int_equal(ctr_config(m)->n_users, NU);
	free(out);
	dccl__model__free_unpacked(full, NULL);
	return m;
}

static void
same_floats(const float *a, const float *b, size_t n)
{
	assert_memory_equal(a, b, n * sizeof(float));
}

/* Predictions, then training of each kind: the same bits. */
static void
check_user(uint32_t u)
{
	uint8_t *blob, *sh;
	size_t len, shlen;
	struct ctr *full = full_model(&blob, &len);
	struct ctr *sl = slice_of(blob, len, u, &sh, &shlen);
	enum ctr_sel sels[] = { CTR_SEL_ALL, CTR_SEL_METAPATCH_ONLY,
	    CTR_SEL_BIAS_ONLY };
	struct dataset ds;
	uint32_t *idx = iota(NS, 0);
	float pa[NS], pb[NS];

	user_data(&ds, u, 100 + u);
	assert_true(shlen < len);
	assert_int_equal(ctr_logits(full, &ds, idx, NS, pa), 0);
	assert_int_equal(ctr_logits(sl, &ds, idx, NS, pb), 0);
	same_floats(pa, pb, NS);
	for (size_t k = 0; k < sizeof(sels) / sizeof(sels[0]); k++) {
		struct ctr *a = ctr_clone(full), *b = ctr_clone(sl);
		struct ctr_train_opts o;
		Dccl__Tensor **ta, **tb;
		size_t na, nb;
		ctr_train_opts_default(&o);
		o.sel = sels[k];
		o.epochs = 2;
		o.batch = 16;
		assert_int_equal(ctr_train(a, &ds, idx, NS, NULL, 0, &o, NULL),
		    0);
		assert_int_equal(ctr_train(b, &ds, idx, NS, NULL, 0, &o, NULL),
		    0);
		assert_int_equal(ctr_logits(a, &ds, idx, NS, pa), 0);
		assert_int_equal(ctr_logits(b, &ds, idx, NS, pb), 0);
		same_floats(pa, pb, NS);
		/* the patch a device uploads: the same rows */
		assert_int_equal(ctr_io_patch_get(a, u, &ta, &na), 0);
		assert_int_equal(ctr_io_patch_get(b, u, &tb, &nb), 0);
		assert_int_equal(na, nb);
		for (size_t l = 0; l < na; l++)
			same_floats(ta[l]->data, tb[l]->data, ta[l]->n_data);
		ctr_io_tensors_free(ta, na);
		ctr_io_tensors_free(tb, nb);
		ctr_free(a);
		ctr_free(b);
	}
	free(idx);
	free_ds(&ds);
	free(sh);
	free(blob);
	ctr_free(sl);
	ctr_free(full);
}

static void
test_same_as_full(void **state)
{
	(void)state;
	check_user(0);
	check_user(7);
	check_user(NU - 1);
	check_user(NU + 5);	/* no row: the OOV row, as the full model */
}

/* The shared part holds no user's emb_user row; only the OOV row. */
static void
test_shared_has_no_rows(void **state)
{
	uint8_t *blob, *sh;
	size_t len, shlen;
	struct ctr *full = full_model(&blob, &len);
	Dccl__Model *fm = dccl__model__unpack(NULL, len, blob), *sm;
	const struct param_tensor *eu = ctr_tensor_find(full, "emb_user");
	char err[256];

	(void)state;
	assert_int_equal(ctr_slice_shared(fm, &sh, &shlen, err, sizeof(err)),
	    0);
	for (uint32_t u = 0; u < NU; u++) {
		const uint8_t *row = (const uint8_t *)(eu->data +
		    (size_t)u * 8);
		for (size_t i = 0; i + 32 <= shlen; i++)
			assert_true(memcmp(sh + i, row, 32) != 0);
	}
	sm = dccl__model__unpack(NULL, shlen, sh);
	assert_non_null(sm);
	assert_int_equal(sm->user_rows, CTR_IO_ROWS_SHARED);
	assert_int_equal(sm->config->n_users, NU);
	/* a shared part is not a model by itself */
	{
		struct ctr *m = NULL;
		assert_int_equal(ctr_io_unpack(&m, NULL, sh, shlen, err,
		    sizeof(err)), CTR_IO_EFORMAT);
		assert_null(m);
	}
	dccl__model__free_unpacked(sm, NULL);
	dccl__model__free_unpacked(fm, NULL);
	free(sh);
	free(blob);
	ctr_free(full);
}

/* Bad inputs: typed errors, nothing assembled. */
static void
test_refused(void **state)
{
	uint8_t *blob, *sh, *out = NULL;
	size_t len, shlen, outlen, n;
	struct ctr *full = full_model(&blob, &len);
	Dccl__Model *fm = dccl__model__unpack(NULL, len, blob);
	Dccl__Tensor t[CTR_SLICE_MAX_TENSORS], *tp[CTR_SLICE_MAX_TENSORS + 1];
	Dccl__Tensor extra;
	uint32_t shape[2 * CTR_SLICE_MAX_TENSORS], bad[2];
	float nan_row[8];
	const float *keep;
	char err[256];

	(void)state;
	assert_int_equal(ctr_slice_shared(fm, &sh, &shlen, err, sizeof(err)),
	    0);
	n = ctr_slice_rows(fm, 2, t, tp, shape);
	/* one bit of the shared part */
	sh[shlen / 2] ^= 0x10;
	assert_int_not_equal(ctr_slice_assemble(sh, shlen, 2, tp, n, &out,
	    &outlen, err, sizeof(err)), 0);
	assert_null(out);
	sh[shlen / 2] ^= 0x10;
	/* a full model is not a shared part */
	assert_int_equal(ctr_slice_assemble(blob, len, 2, tp, n, &out,
	    &outlen, err, sizeof(err)), CTR_IO_EFORMAT);
	/* a table's row missing */
	assert_int_equal(ctr_slice_assemble(sh, shlen, 2, tp, n - 1, &out,
	    &outlen, err, sizeof(err)), CTR_IO_EMISSING);
	/* rows for a user with none (shape [1, c] where [0, c] is due) */
	assert_int_equal(ctr_slice_assemble(sh, shlen, NU + 1, tp, n, &out,
	    &outlen, err, sizeof(err)), CTR_IO_ESHAPE);
	/* a wrong width */
	bad[0] = 1;
	bad[1] = 7;
	t[0].shape = bad;
	assert_int_equal(ctr_slice_assemble(sh, shlen, 2, tp, n, &out,
	    &outlen, err, sizeof(err)), CTR_IO_ESHAPE);
	t[0].shape = &shape[0];
	/* an extra tensor */
	extra = *tp[1];
	tp[n] = &extra;
	extra.name = "emb_item";
	assert_int_equal(ctr_slice_assemble(sh, shlen, 2, tp, n + 1, &out,
	    &outlen, err, sizeof(err)), CTR_IO_EUNKNOWN);
	/* a non-finite row */
	for (int i = 0; i < 8; i++)
		nan_row[i] = i == 3 ? NAN : 0.5f;
	keep = t[0].data;
	assert_string_equal(t[0].name, "emb_user");
	t[0].data = nan_row;
	assert_int_equal(ctr_slice_assemble(sh, shlen, 2, tp, n, &out,
	    &outlen, err, sizeof(err)), CTR_IO_ENONFINITE);
	t[0].data = (float *)keep;
	/* and the intact ones still assemble */
	assert_int_equal(ctr_slice_assemble(sh, shlen, 2, tp, n, &out,
	    &outlen, err, sizeof(err)), 0);
	assert_non_null(out);
	/* a slice altered after assembly fails ctr_io's checksum */
	{
		Dccl__Model *x = dccl__model__unpack(NULL, outlen, out);
		struct ctr *m = NULL;
		uint8_t *p;
		size_t pl;
		x->slice_user = 3;
		pl = dccl__model__get_packed_size(x);
		p = malloc(pl);
		dccl__model__pack(x, p);
		assert_int_equal(ctr_io_unpack(&m, NULL, p, pl, err,
		    sizeof(err)), CTR_IO_ECHECKSUM);
		free(p);
		dccl__model__free_unpacked(x, NULL);
	}
	free(out);
	dccl__model__free_unpacked(fm, NULL);
	free(sh);
	free(blob);
	ctr_free(full);
}

/* User u's slice as packed (*out, *outlen) and the shared part (*sh). */
static void
slice_blob(const uint8_t *blob, size_t len, uint32_t u, uint8_t **sh,
    size_t *shlen, uint8_t **out, size_t *outlen)
{
	Dccl__Model *full = dccl__model__unpack(NULL, len, blob);
	Dccl__Tensor t[CTR_SLICE_MAX_TENSORS], *tp[CTR_SLICE_MAX_TENSORS];
	uint32_t shape[2 * CTR_SLICE_MAX_TENSORS];
	size_t n;
	char err[256];

	assert_non_null(full);
	assert_int_equal(ctr_slice_shared(full, sh, shlen, err, sizeof(err)),
	    0);
	n = ctr_slice_rows(full, u, t, tp, shape);
	assert_int_equal(ctr_slice_assemble(*sh, *shlen, u, tp, n, out,
	    outlen, err, sizeof(err)), 0);
	dccl__model__free_unpacked(full, NULL);
}

/*
 * Every user's slice gives back the checksum of the shared part it was
 * assembled from (what a deviced keys the shared parameters by), and the
 * slices of two users over one set of shared parameters (ctr_view)
 * predict as the slices themselves.
 */
static void
test_shared_sum(void **state)
{
	uint32_t users[] = { 2, 7, NU + 3 };
	uint8_t *blob, *sh, *out, sum[32];
	size_t len, shlen, outlen;
	struct ctr *full = full_model(&blob, &len), *base = NULL;
	char err[256];

	(void)state;
	for (size_t k = 0; k < sizeof(users) / sizeof(users[0]); k++) {
		Dccl__Model *x;
		struct ctr *m = NULL, *v;
		struct dataset ds;
		float *p0, *p1;
		uint32_t *idx;

		slice_blob(blob, len, users[k], &sh, &shlen, &out, &outlen);
		x = dccl__model__unpack(NULL, shlen, sh);
		assert_non_null(x);
		assert_int_equal(ctr_slice_shared_sum(out, outlen, sum), 0);
		assert_int_equal(x->checksum.len, 32);
		assert_memory_equal(sum, x->checksum.data, 32);
		dccl__model__free_unpacked(x, NULL);
		/* not a slice: the shared part, the full model */
		assert_int_equal(ctr_slice_shared_sum(sh, shlen, sum),
		    CTR_IO_EFORMAT);
		assert_int_equal(ctr_slice_shared_sum(blob, len, sum),
		    CTR_IO_EFORMAT);
		assert_int_not_equal(ctr_slice_shared_sum(out, outlen / 2,
		    sum), 0);
		assert_int_equal(ctr_io_unpack(&m, NULL, out, outlen, err,
		    sizeof(err)), 0);
		if (base == NULL)
			base = ctr_clone(m);	/* the first user's, as deviced */
		assert_int_equal(ctr_view(&v, base, ctr_config(m), m), 0);
		{
			/* the same from the rows alone (ctr_slice_view) */
			Dccl__Model *fm = dccl__model__unpack(NULL, len, blob);
			Dccl__Tensor rt[CTR_SLICE_MAX_TENSORS];
			Dccl__Tensor *rp[CTR_SLICE_MAX_TENSORS];
			uint32_t shape[2 * CTR_SLICE_MAX_TENSORS];
			size_t nr = ctr_slice_rows(fm, users[k], rt, rp, shape);
			struct ctr *w;
			assert_int_equal(ctr_slice_view(&w, base, users[k], rp,
			    nr, err, sizeof(err)), 0);
			assert_ptr_equal(ctr_view_base(w), base);
			assert_int_equal(ctr_config(w)->slice_user, users[k]);
			for (int i = 0; i < ctr_num_tensors(m); i++) {
				const struct param_tensor *a =
				    ctr_tensor_at(m, i);
				const struct param_tensor *b =
				    ctr_tensor_at(w, i);
				assert_int_equal(a->n, b->n);
				same_floats(a->data, b->data, a->n);
			}
			ctr_free(w);
			assert_int_not_equal(ctr_slice_view(&w, base,
			    users[k], rp, nr - 1, err, sizeof(err)), 0);
			assert_null(w);
			assert_int_equal(ctr_slice_view(&w, base, users[k] <
			    NU ? NU + 1 : 1, rp, nr, err, sizeof(err)),
			    CTR_IO_ESHAPE);
			dccl__model__free_unpacked(fm, NULL);
		}
		user_data(&ds, users[k], 40 + k);
		idx = iota(ds.n, 0);
		p0 = calloc(ds.n, sizeof(float));
		p1 = calloc(ds.n, sizeof(float));
		assert_int_equal(ctr_logits(m, &ds, idx, ds.n, p0), 0);
		assert_int_equal(ctr_logits(v, &ds, idx, ds.n, p1), 0);
		same_floats(p0, p1, ds.n);
		free(p0);
		free(p1);
		free(idx);
		free_ds(&ds);
		ctr_free(v);
		ctr_free(m);
		free(out);
		free(sh);
	}
	/* another shared part, another checksum */
	ctr_params(full)[ctr_num_params(full) / 2] += 1.0f;
	{
		struct ctr_meta meta;
		uint8_t sum2[32], *b2;
		size_t l2;
		memset(&meta, 0, sizeof(meta));
		meta.version = 3;
		meta.global_ctr = 0.3;
		slice_blob(blob, len, 2, &sh, &shlen, &out, &outlen);
		assert_int_equal(ctr_slice_shared_sum(out, outlen, sum), 0);
		free(out);
		free(sh);
		assert_int_equal(ctr_io_pack(full, &meta, &b2, &l2), 0);
		slice_blob(b2, l2, 2, &sh, &shlen, &out, &outlen);
		assert_int_equal(ctr_slice_shared_sum(out, outlen, sum2), 0);
		assert_memory_not_equal(sum, sum2, 32);
		free(out);
		free(sh);
		free(b2);
	}
	ctr_free(base);
	free(blob);
	ctr_free(full);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_as_full),
		cmocka_unit_test(test_shared_has_no_rows),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_shared_sum),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
