/*
 * ctr_fixture: what the model unit tests (test_ctr, test_ctr_opts,
 * test_encoder, test_learn, test_ofa, test_ofa_base, test_ofa_ext) build
 * their synthetic data and models with. Each test keeps its own sampling
 * loop, because the label rule is what the test is about; the container,
 * the genre rule, the history lists and the model constructor are here.
 * Include after <cmocka.h>; header-only, as ctr_gradcheck.h, so each test
 * binary keeps its one source file.
 */
#ifndef TESTS_CTR_FIXTURE_H
#define TESTS_CTR_FIXTURE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/data/dataset.h"
#include "shared/ml/ctr.h"
#include "shared/rng.h"

/*
 * An empty dataset with room for n samples and hist_per history items
 * each, over nu users, ni items and 4 genres. Free with free_ds.
 */
static inline void
fixture_ds_init(struct dataset *ds, size_t n, uint32_t nu, uint32_t ni,
    size_t hist_per)
{
	memset(ds, 0, sizeof(*ds));
	ds->s = calloc(n, sizeof(*ds->s));
	ds->n = ds->cap = n;
	ds->hist_cap = n * hist_per;
	ds->hist = calloc(ds->hist_cap, sizeof(uint32_t));
	ds->n_users = nu;
	ds->n_items = ni;
	ds->n_genres = 4;
}

static inline void
free_ds(struct dataset *ds)
{
	free(ds->s);
	free(ds->hist);
}

/* Item i's genres: {i%4, (i/4)%4}. */
static inline uint32_t
fixture_genres(uint32_t item)
{
	return (1u << (item % 4)) | (1u << ((item / 4) % 4));
}

/* Appends s's history: cnt items drawn below ni from r. */
static inline void
fixture_hist(struct dataset *ds, struct sample *s, uint32_t cnt,
    struct rng *r, uint32_t ni)
{
	s->hist_off = (uint32_t)ds->hist_len;
	s->hist_n = (uint16_t)cnt;
	for (int k = 0; k < s->hist_n; k++)
		ds->hist[ds->hist_len++] = rng_below(r, ni);
}

/* start, start+1, .. (n); the caller frees. */
static inline uint32_t *
iota(size_t n, uint32_t start)
{
	uint32_t *p = malloc(n * sizeof(*p));
	for (size_t i = 0; i < n; i++)
		p[i] = start + (uint32_t)i;
	return p;
}

static inline struct ctr *
new_model(const struct ctr_config *c, uint64_t seed)
{
	struct ctr *m = NULL;

	assert_int_equal(ctr_new(&m, c, seed), 0);
	assert_non_null(m);
	return m;
}

/* Zeroes tensor name of m. */
static inline void
fixture_zero(struct ctr *m, const char *name)
{
	const struct param_tensor *t = ctr_tensor_find(m, name);

	memset(t->data, 0, t->n * sizeof(float));
}

/*
 * Item embeddings with a taste axis: item i's row of m is +-1 on dimension
 * 0 (the first half of the items +1) plus noise * N(0,1) elsewhere.
 */
static inline void
fixture_taste_items(struct ctr *m, float noise, uint64_t seed)
{
	const struct param_tensor *t = ctr_tensor_find(m, "emb_item");
	uint32_t ni = ctr_config(m)->n_items;
	struct rng r;

	rng_seed(&r, seed);
	for (uint32_t i = 0; i < ni; i++) {
		float *e = t->data + (size_t)i * t->shape[1];
		e[0] = i < ni / 2 ? 1.0f : -1.0f;
		for (int d = 1; d < ctr_config(m)->dim; d++)
			e[d] = noise * (float)rng_normal(&r);
	}
}

/*
 * n samples of user u (of nu users, ni items) in time order, one a
 * minute; likes = 1: the first half of the items is clicked, 0: so for
 * the first half of the samples, the other half after (a taste switch
 * the past cannot show).
 */
static inline void
fixture_taste_ds(struct dataset *ds, size_t n, uint32_t nu, uint32_t ni,
    uint32_t u, int likes, uint64_t seed)
{
	struct rng r;

	fixture_ds_init(ds, n, nu, ni, 4);
	rng_seed(&r, seed);
	for (size_t i = 0; i < n; i++) {
		struct sample *s = &ds->s[i];
		s->user = u;
		s->item = rng_below(&r, ni);
		s->ts = 1500000000 + (int64_t)i * 60;
		s->genres = fixture_genres(s->item);
		s->label = (s->item < ni / 2) == (likes || i < n / 2) ?
		    1.0f : 0.0f;
		fixture_hist(ds, s, 0, &r, ni);
	}
}

#endif
