/*
 * synth: the synthetic drift generator (see synth.h). Each user is drawn
 * from its own RNG stream seeded by (seed, user), so a user's data does
 * not depend on how many users come after it; items and clusters come
 * from a separate stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scripts/tools/synth.h"
#include "shared/data/schema.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

#define SYNTH_MAX_USERS	10000000u
#define SYNTH_MAX_ITEMS	100000000u
#define SYNTH_MAX_AFF	(1u << 28)	/* clusters x items floats */
#define SYNTH_MAX_PER_USER 1000000u

/* ------------------------------------------------------------------------ */
/* synthetic generator                                                      */

void
synth_opts_default(struct synth_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->n_users = 1000;
	o->n_items = 2000;
	o->n_clusters = 8;
	o->n_genres = 16;
	o->min_per_user = 20;
	o->max_per_user = 200;
	o->base_ctr = 0.3;
	o->bias_std = 1.0;
	o->affinity_std = 1.5;
	o->genre_weight = 0.5;
	o->drift_mean = 0.0;
	o->drift_std = 1.0;
	o->taste_drift = 0.0;
	o->drift_start = 0.70;
	o->noise = 0.0;
	o->item_zipf = 0.8;
	o->hist_k = DATASET_HIST_DEFAULT;
	o->seed = 1;
	o->side = 0;
	o->side_noise = 0.3;
}

/* The schema of the generated data (with side fields when o->side). */
static char *
synth_schema(const struct synth_opts *o)
{
	static const char *const base[] = {
		"field user user", "field item item", "field ts ts",
		"field label label",
	};
	char buf[512], err[128];
	struct schema sc;
	char *t;
	size_t n = 0;

	n += (size_t)snprintf(buf, sizeof(buf), "dccl-schema 1\n");
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\n", base[i]);
	if (o->n_genres > 0)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "field genres "
		    "bag side=item vocab=%u\n", o->n_genres);
	if (o->side)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "field segment "
		    "cat side=user vocab=%u\nfield category cat side=item "
		    "vocab=%u\n", o->n_clusters, o->n_clusters);
	schema_init(&sc);
	if (schema_parse(&sc, buf, n, "synth", err, sizeof(err)) != 0)
		abort();	/* the text above is valid */
	t = schema_format(&sc);
	schema_fini(&sc);
	return t;
}

static double
sigmoid(double x)
{
	return 1.0 / (1.0 + exp(-x));
}

int
dataset_synth(struct dataset *ds, struct dataset_meta *meta,
    struct synth_truth **truth_out, const struct synth_opts *o)
{
	return dataset_synth_p(ds, meta, truth_out, NULL, o);
}

int
dataset_synth_p(struct dataset *ds, struct dataset_meta *meta,
    struct synth_truth **truth_out, float **p_true,
    const struct synth_opts *o)
{
	uint32_t K = o->n_clusters, I = o->n_items, G = o->n_genres;
	uint32_t H = (uint32_t)o->hist_k;
	struct synth_truth *tr;
	struct rng g;
	uint64_t sm = o->seed, total = 0;
	float *aff;
	double *cdf, *taste, b0, gw;
	uint32_t *stamp, *igen, *icat;
	float *pt = NULL;
	int distinct;

	*truth_out = NULL;
	if (p_true != NULL)
		*p_true = NULL;
	if (o->n_users == 0 || I == 0 || K == 0 || G > SAMPLE_GENRES_MAX ||
	    o->min_per_user == 0 || o->min_per_user > o->max_per_user ||
	    !(o->base_ctr > 0 && o->base_ctr < 1) || o->bias_std < 0 ||
	    o->affinity_std < 0 || o->noise < 0 || o->drift_std < 0 ||
	    !(o->genre_weight >= 0 && o->genre_weight <= 1) ||
	    !(o->taste_drift >= 0 && o->taste_drift <= 1) ||
	    !(o->drift_start >= 0 && o->drift_start <= 1) ||
	    o->item_zipf < 0 || o->item_zipf > 5 || o->hist_k < 0 ||
	    !(o->count_tail >= 0 && o->count_tail <= 100) ||
	    o->hist_k > SAMPLE_HIST_MAX || !isfinite(o->drift_mean) ||
	    !(o->side_noise >= 0 && o->side_noise <= 1) ||
	    (o->side && K > SCHEMA_CARD_MAX))
		return -EINVAL;
	if (o->n_users > SYNTH_MAX_USERS || I > SYNTH_MAX_ITEMS ||
	    (uint64_t)K * I > SYNTH_MAX_AFF ||
	    o->max_per_user > SYNTH_MAX_PER_USER ||
	    (uint64_t)o->n_users * o->max_per_user > UINT32_MAX ||
	    (uint64_t)o->n_users * o->max_per_user * H > UINT32_MAX)
		return -E2BIG;
	gw = G > 0 ? o->genre_weight : 0;
	b0 = log(o->base_ctr / (1 - o->base_ctr));

	/* Items and clusters: one stream, fixed order of draws. */
	rng_seed(&g, rng_splitmix(&sm));
	igen = xcalloc(I, sizeof(*igen));
	for (uint32_t i = 0; i < I && G > 0; i++) {
		igen[i] = 1u << rng_below(&g, G);
		if (rng_unif(&g) < 0.3)
			igen[i] |= 1u << rng_below(&g, G);
	}
	taste = xmalloc(((size_t)K * (G ? G : 1)) * sizeof(*taste));
	for (size_t j = 0; j < (size_t)K * G; j++)
		taste[j] = rng_normal(&g);
	aff = xmalloc((size_t)K * I * sizeof(*aff));
	for (uint32_t c = 0; c < K; c++) {
		for (uint32_t i = 0; i < I; i++) {
			double t = 0;
			int ng = 0;

			for (uint32_t x = igen[i]; x != 0; x &= x - 1, ng++)
				t += taste[(size_t)c * G +
				    (uint32_t)__builtin_ctz(x)];
			if (ng > 0)
				t /= sqrt((double)ng);
			aff[(size_t)c * I + i] = (float)(o->affinity_std *
			    (sqrt(1 - gw) * rng_normal(&g) + sqrt(gw) * t));
		}
	}
	free(taste);
	/* Item categories: their own stream, after everything above. */
	icat = NULL;
	if (o->side) {
		struct rng gs;
		uint64_t ss = o->seed ^ 0x51de5eed51de5eedULL;

		rng_seed(&gs, rng_splitmix(&ss));
		icat = xmalloc(I * sizeof(*icat));
		for (uint32_t i = 0; i < I; i++) {
			uint32_t best = 0;

			for (uint32_t c = 1; c < K; c++)
				if (aff[(size_t)c * I + i] >
				    aff[(size_t)best * I + i])
					best = c;
			icat[i] = rng_unif(&gs) < o->side_noise ?
			    rng_below(&gs, K) : best;
		}
	}
	/* Zipf popularity over item ids: item i has weight (i+1)^-zipf. */
	cdf = xmalloc(I * sizeof(*cdf));
	for (uint32_t i = 0; i < I; i++)
		cdf[i] = (i ? cdf[i - 1] : 0) + pow(i + 1.0, -o->item_zipf);
	for (uint32_t i = 0; i < I; i++)
		cdf[i] /= cdf[I - 1];

	tr = xcalloc(o->n_users, sizeof(*tr));
	for (uint32_t u = 0; u < o->n_users; u++) {
		uint32_t span = o->max_per_user - o->min_per_user + 1;

		if (o->count_tail > 0) {
			/* 1 - unif is in (0, 1]: the power stays finite */
			double c = o->min_per_user * pow(1.0 - rng_unif(&g),
			    -1.0 / o->count_tail);

			tr[u].n = c >= o->max_per_user ? o->max_per_user :
			    (uint32_t)c;
		} else {
			tr[u].n = o->min_per_user + rng_below(&g, span);
		}
		total += tr[u].n;
	}
	dataset_init(ds);
	dataset_reserve(ds, (size_t)total, (size_t)total * (H < 16 ? H : 16));
	stamp = xcalloc(I, sizeof(*stamp));
	distinct = o->max_per_user <= I / 2;
	if (p_true != NULL)
		pt = xmalloc((size_t)(total ? total : 1) * sizeof(*pt));

	for (uint32_t u = 0; u < o->n_users; u++) {
		struct synth_truth *t = &tr[u];
		uint64_t us = o->seed ^ (0xa0761d6478bd642fULL * (u + 1ULL));
		struct rng r;
		uint32_t ring[SAMPLE_HIST_MAX], tmp[SAMPLE_HIST_MAX];
		size_t head = 0, cnt = 0;
		double pe = 0, pl = 0;
		int64_t ts;
		uint32_t seg = 0;

		rng_seed(&r, rng_splitmix(&us));
		t->cluster = rng_below(&r, K);
		t->cluster_late = t->cluster;
		if (K > 1 && rng_unif(&r) < o->taste_drift)
			t->cluster_late = (t->cluster + 1 +
			    rng_below(&r, K - 1)) % K;
		t->bias = (float)(o->bias_std * rng_normal(&r));
		t->drift = (float)(o->drift_mean + o->drift_std *
		    rng_normal(&r));
		t->n_early = (uint32_t)floor(o->drift_start * t->n + 1e-9);
		if (o->side) {
			/* the segment's own stream: r's draws are unchanged */
			struct rng rs;
			uint64_t ss = us ^ 0x5e6e5e6e5e6e5e6eULL;

			rng_seed(&rs, rng_splitmix(&ss));
			seg = rng_unif(&rs) < o->side_noise ? rng_below(&rs, K) :
			    t->cluster;
		}
		ts = 1500000000 + (int64_t)rng_below(&r, 86400 * 365);
		for (uint32_t k = 0; k < t->n; k++) {
			struct sample s;
			int late = k >= t->n_early;
			uint32_t c = late ? t->cluster_late : t->cluster;
			uint32_t it;
			double x, p;

			for (int tries = 0;; tries++) {
				double q = rng_unif(&r);
				size_t lo = 0, hi = I - 1;

				while (lo < hi) {
					size_t mid = lo + (hi - lo) / 2;

					if (cdf[mid] <= q)
						lo = mid + 1;
					else
						hi = mid;
				}
				it = (uint32_t)lo;
				if (!distinct || stamp[it] != u + 1)
					break;
				if (tries > 64) {
					/* Heavy skew: fall back to uniform. */
					it = rng_below(&r, I);
					if (stamp[it] != u + 1)
						break;
				}
			}
			stamp[it] = u + 1;
			x = b0 + t->bias + (late ? t->drift : 0) +
			    aff[(size_t)c * I + it];
			if (o->noise > 0)
				x += o->noise * rng_normal(&r);
			p = sigmoid(x);
			if (late)
				pl += p;
			else
				pe += p;
			ts += 60 + (int64_t)rng_below(&r, 7200);
			memset(&s, 0, sizeof(s));
			s.user = u;
			s.item = it;
			s.ts = ts;
			s.label = rng_unif(&r) < p ? 1.0f : 0.0f;
			s.rating = 0;
			s.genres = igen[it];
			if (o->side) {
				s.side[0] = seg;
				s.side[1] = icat[it];
			}
			for (size_t j = 0; j < cnt; j++)
				tmp[j] = ring[(head + j) % H];
			if (pt != NULL)
				pt[ds->n] = (float)p;
			dataset_append(ds, &s, tmp, cnt);
			if (H > 0 && s.label > 0.5f) {
				if (cnt < H) {
					ring[(head + cnt) % H] = it;
					cnt++;
				} else {
					ring[head] = it;
					head = (head + 1) % H;
				}
			}
		}
		t->p_early = t->n_early ? (float)(pe / t->n_early) : 0;
		t->p_late = t->n > t->n_early ?
		    (float)(pl / (t->n - t->n_early)) : 0;
	}
	ds->n_users = o->n_users;
	ds->n_items = I;
	ds->n_genres = G;
	if (o->side) {
		ds->n_side = 2;
		ds->side_card[0] = ds->side_card[1] = K;
	}
	free(stamp);
	free(cdf);
	free(aff);

	dataset_meta_init(meta);
	meta->fmt = DATASET_FMT_AUTO;
	meta->n_users = o->n_users;
	meta->n_items = I;
	meta->n_genres = G;
	meta->item_genres = igen;
	meta->user_raw = xmalloc(o->n_users * sizeof(*meta->user_raw));
	for (uint32_t u = 0; u < o->n_users; u++)
		meta->user_raw[u] = u;
	meta->item_raw = xmalloc(I * sizeof(*meta->item_raw));
	for (uint32_t i = 0; i < I; i++)
		meta->item_raw[i] = i;
	for (uint32_t k = 0; k < G; k++)
		snprintf(meta->genre[k], sizeof(meta->genre[k]), "g%u", k);
	meta->schema = synth_schema(o);
	if (o->side) {
		meta->side_item_mask = 2;
		meta->item_side = xcalloc((size_t)I * SAMPLE_SIDE_MAX,
		    sizeof(*meta->item_side));
		for (uint32_t i = 0; i < I; i++)
			meta->item_side[(size_t)i * SAMPLE_SIDE_MAX + 1] =
			    icat[i];
	}
	free(icat);
	*truth_out = tr;
	if (p_true != NULL)
		*p_true = pt;
	return 0;
}
