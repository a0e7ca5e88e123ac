/*
 * ctr_repr: CoDA's representation vectors (Gu et al. 2022), computed with
 * the downloaded CTR model: per sample concat(item embedding, genre bag,
 * behaviour), per user concat(user embedding, behaviour), each
 * L2-normalised (see ctr.h). The device sends them for the cloud's coarse
 * matching (cloudd/coda_retrieve.c). Read-only over the model's public
 * tensors, so it sits beside the model rather than inside it.
 *
 * Threads: any; only reads the model.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shared/ml/ctr.h"
#include "shared/xmalloc.h"

int
ctr_repr_dim(const struct ctr *m)
{
	return 3 * ctr_config(m)->dim;
}

int
ctr_user_repr_dim(const struct ctr *m)
{
	return 2 * ctr_config(m)->dim;
}

static uint32_t
map_id(uint32_t id, uint32_t n)
{
	return id < n ? id : n;	/* row n is the OOV row */
}

/* out (D) += mean of the rows ids (cnt) of emb (V,D); nothing if cnt = 0. */
static void
pool_add(float *out, const float *emb, const uint32_t *ids, uint32_t cnt,
    uint32_t n_valid, int D, int map)
{
	if (cnt == 0)
		return;
	float inv = 1.0f / (float)cnt;
	for (uint32_t j = 0; j < cnt; j++) {
		uint32_t id = map ? map_id(ids[j], n_valid) : ids[j];
		const float *e = emb + (size_t)id * D;
		for (int i = 0; i < D; i++)
			out[i] += e[i] * inv;
	}
}

/* behaviour (D) of sample s: mean item emb of its last K history items */
static void
behaviour_vec(const struct ctr_config *c, const float *item,
    const struct dataset *ds, const struct sample *s, float *out)
{
	uint32_t cnt;
	const uint32_t *h = ctr_behaviour_ids(ds, s, c->hist_k, &cnt);

	memset(out, 0, (size_t)c->dim * sizeof(float));
	pool_add(out, item, h, cnt, c->n_items, c->dim, 1);
}

static void
l2_normalise(float *v, int n, double scale)
{
	double ss = 0.0;

	for (int i = 0; i < n; i++)
		ss += (double)v[i] * v[i];
	if (ss <= 0.0)
		return;
	double k = scale / sqrt(ss);
	for (int i = 0; i < n; i++)
		v[i] = (float)(v[i] * k);
}

void
ctr_repr(const struct ctr *m, const struct dataset *ds, const uint32_t *idx,
    size_t n, float *out)
{
	const struct ctr_config *c = ctr_config(m);
	const float *item = ctr_tensor_find(m, "emb_item")->data;
	const float *genre = ctr_tensor_find(m, "emb_genre")->data;
	int D = c->dim, RD = 3 * D;

	for (size_t i = 0; i < n; i++) {
		float *o = out + i * RD;
		memset(o, 0, (size_t)RD * sizeof(float));
		if (idx[i] >= ds->n)
			continue;
		const struct sample *s = &ds->s[idx[i]];
		uint32_t it = map_id(s->item, c->n_items), gids[32], ng = 0;
		memcpy(o, item + (size_t)it * D, (size_t)D * sizeof(float));
		for (uint32_t g = 0; g < c->n_genres; g++)
			if (s->genres & (1u << g))
				gids[ng++] = g;
		pool_add(o + D, genre, gids, ng, 0, D, 0);
		behaviour_vec(c, item, ds, s, o + 2 * D);
		l2_normalise(o, RD, 1.0);
	}
}

void
ctr_user_repr(const struct ctr *m, const struct dataset *ds,
    const uint32_t *idx, size_t n, float *out)
{
	const struct ctr_config *c = ctr_config(m);
	const float *item = ctr_tensor_find(m, "emb_item")->data;
	const float *user = ctr_tensor_find(m, "emb_user")->data;
	int D = c->dim;
	float *tmp = xmalloc((size_t)D * sizeof(float));
	size_t cnt = 0;

	memset(out, 0, 2 * (size_t)D * sizeof(float));
	for (size_t i = 0; i < n; i++) {
		if (idx[i] >= ds->n)
			continue;
		const struct sample *s = &ds->s[idx[i]];
		const float *u = user +
		    (size_t)ctr_config_user_row(c, s->user) * D;
		behaviour_vec(c, item, ds, s, tmp);
		for (int k = 0; k < D; k++) {
			out[k] += u[k];
			out[D + k] += tmp[k];
		}
		cnt++;
	}
	free(tmp);
	if (cnt == 0)
		return;
	/* Means only rescale; the per-half normalisation removes them. */
	l2_normalise(out, D, M_SQRT1_2);
	l2_normalise(out + D, D, M_SQRT1_2);
}
