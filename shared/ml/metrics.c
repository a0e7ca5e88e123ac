/*
 * metrics: see metrics.h.
 *
 * AUC and GAUC share one path: each impression becomes a 64-bit key
 * (user << 32 | order-preserving bits of the score), the keys are radix
 * sorted (LSD, 16-bit digits, passes over constant digits skipped), and a
 * single scan over tie groups counts, per user, positives above negatives
 * with ties counting one half. That is O(n) after the sort and exact in
 * double for any n that fits in memory.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shared/ml/metrics.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

double
metrics_logloss(const float *p, const float *y, size_t n)
{
	double s = 0;

	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		double q = p[i], t = y[i];

		if (!(q >= METRICS_EPS))	/* also catches NaN */
			q = isnan(q) ? NAN : METRICS_EPS;
		if (q > 1 - METRICS_EPS)
			q = 1 - METRICS_EPS;
		s -= t * log(q) + (1 - t) * log(1 - q);
	}
	return s / (double)n;
}

/* Float -> uint32 that sorts like the float (-0 == +0). */
static uint32_t
fkey(float f)
{
	uint32_t b;

	if (f == 0)
		f = 0;
	memcpy(&b, &f, sizeof(b));
	return (b & 0x80000000u) ? ~b : b | 0x80000000u;
}

struct kv {
	uint64_t key;
	uint32_t pos;		/* 1 if positive */
};

static int
kv_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct kv *)a)->key, y = ((const struct kv *)b)->key;

	return x < y ? -1 : x > y;
}

/* LSD radix sort of v (n) by key, using tmp (n) as scratch; small inputs
 * (where 64K counters would dominate) use qsort. */
static void
radix_sort(struct kv *v, struct kv *tmp, size_t n)
{
	size_t *cnt;

	if (n < 4096) {
		qsort(v, n, sizeof(*v), kv_cmp);
		return;
	}
	cnt = xmalloc(65536 * sizeof(*cnt));
	for (int sh = 0; sh < 64; sh += 16) {
		uint32_t first = (uint32_t)((v[0].key >> sh) & 0xffff);
		int same = 1;
		size_t sum = 0;

		for (size_t i = 1; i < n && same; i++)
			same = ((v[i].key >> sh) & 0xffff) == first;
		if (same)
			continue;
		memset(cnt, 0, 65536 * sizeof(*cnt));
		for (size_t i = 0; i < n; i++)
			cnt[(v[i].key >> sh) & 0xffff]++;
		for (size_t d = 0; d < 65536; d++) {
			size_t c = cnt[d];

			cnt[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			tmp[cnt[(v[i].key >> sh) & 0xffff]++] = v[i];
		memcpy(v, tmp, n * sizeof(*v));
	}
	free(cnt);
}

/*
 * The shared worker: AUC per user over sorted keys. When user is NULL all
 * impressions are one group. Returns the weighted mean (GAUC) and fills the
 * optional outputs.
 */
static double
auc_core(const float *score, const float *y, const uint32_t *user, size_t n,
    uint32_t n_users, size_t *n_used, double *per_user, double *weight)
{
	struct kv *v, *tmp;
	double num = 0, den = 0;
	size_t used = 0;

	if (n_used != NULL)
		*n_used = 0;
	for (uint32_t u = 0; per_user != NULL && u < n_users; u++)
		per_user[u] = NAN;
	for (uint32_t u = 0; weight != NULL && u < n_users; u++)
		weight[u] = 0;
	if (n == 0)
		return NAN;
	for (size_t i = 0; i < n; i++)
		if (isnan(score[i]) || (user != NULL && user[i] >= n_users))
			return NAN;
	v = xmalloc(n * sizeof(*v));
	tmp = xmalloc(n * sizeof(*tmp));
	for (size_t i = 0; i < n; i++) {
		v[i].key = (uint64_t)(user ? user[i] : 0) << 32 |
		    fkey(score[i]);
		v[i].pos = y[i] >= 0.5f;
	}
	radix_sort(v, tmp, n);
	for (size_t a = 0; a < n;) {
		uint32_t u = (uint32_t)(v[a].key >> 32);
		double P = 0, N = 0, neg_below = 0, pairs = 0;
		size_t b = a;

		/* user group [a, b), scanned in ascending score */
		while (b < n && (uint32_t)(v[b].key >> 32) == u) {
			size_t c = b;
			double gp = 0, gn = 0;

			while (c < n && v[c].key == v[b].key) {
				if (v[c].pos)
					gp++;
				else
					gn++;
				c++;
			}
			pairs += gp * (neg_below + 0.5 * gn);
			neg_below += gn;
			P += gp;
			N += gn;
			b = c;
		}
		if (P > 0 && N > 0) {
			double auc = pairs / (P * N);

			num += (P + N) * auc;
			den += P + N;
			used++;
			if (per_user != NULL && u < n_users)
				per_user[u] = auc;
			if (weight != NULL && u < n_users)
				weight[u] = P + N;
		}
		a = b;
	}
	free(v);
	free(tmp);
	if (n_used != NULL)
		*n_used = used;
	return den > 0 ? num / den : NAN;
}

double
metrics_auc(const float *score, const float *y, size_t n)
{
	return auc_core(score, y, NULL, n, 1, NULL, NULL, NULL);
}

double
metrics_gauc(const float *score, const float *y, const uint32_t *user,
    size_t n, uint32_t n_users, size_t *n_used, double *per_user,
    double *weight)
{
	return auc_core(score, y, user, n, n_users, n_used, per_user, weight);
}

size_t
metrics_rank(float pos, const float *neg, size_t n_neg)
{
	size_t r = 0;

	for (size_t i = 0; i < n_neg; i++)
		r += !(neg[i] < pos);	/* ties and NaN rank above */
	return r;
}

double
metrics_hr_at(size_t rank, size_t k)
{
	return rank < k ? 1.0 : 0.0;
}

double
metrics_ndcg_at(size_t rank, size_t k)
{
	return rank < k ? 1.0 / log2((double)rank + 2.0) : 0.0;
}

static int
dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
quantile(const double *sorted, size_t n, double q)
{
	double h = q * (double)(n - 1);
	size_t i = (size_t)floor(h);

	if (i + 1 >= n)
		return sorted[n - 1];
	return sorted[i] + (h - (double)i) * (sorted[i + 1] - sorted[i]);
}

int
metrics_paired_bootstrap(const double *a, const double *b, const double *w,
    size_t n, int B, uint64_t seed, struct metrics_ci *out)
{
	double *d, *dw, *means, sw = 0, sd = 0;
	size_t m = 0, better = 0, worse = 0;
	struct rng r;

	memset(out, 0, sizeof(*out));
	out->mean = out->lo = out->hi = NAN;
	if (B < 1)
		return -EINVAL;
	d = xmalloc((n ? n : 1) * sizeof(*d));
	dw = xmalloc((n ? n : 1) * sizeof(*dw));
	for (size_t i = 0; i < n; i++) {
		double wi = w ? w[i] : 1.0;

		if (isnan(a[i]) || isnan(b[i]) || !(wi > 0) || isinf(wi))
			continue;
		d[m] = a[i] - b[i];
		dw[m] = wi;
		better += d[m] > 0;
		worse += d[m] < 0;
		sd += wi * d[m];
		sw += wi;
		m++;
	}
	if (m == 0 || m > UINT32_MAX) {
		free(d);
		free(dw);
		return -EINVAL;
	}
	out->n = m;
	out->mean = sd / sw;
	out->share_better = (double)better / (double)m;
	out->share_worse = (double)worse / (double)m;
	means = xmalloc((size_t)B * sizeof(*means));
	rng_seed(&r, seed);
	for (int k = 0; k < B; k++) {
		double s = 0, ws = 0;

		for (size_t i = 0; i < m; i++) {
			uint32_t j = rng_below(&r, (uint32_t)m);

			s += dw[j] * d[j];
			ws += dw[j];
		}
		means[k] = s / ws;
	}
	qsort(means, (size_t)B, sizeof(*means), dbl_cmp);
	out->lo = quantile(means, (size_t)B, 0.025);
	out->hi = quantile(means, (size_t)B, 0.975);
	free(means);
	free(d);
	free(dw);
	return 0;
}

struct gd {
	uint32_t g;
	double	 d;
};

static int
gd_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct gd *)a)->g, y = ((const struct gd *)b)->g;

	return x < y ? -1 : x > y;
}

int
metrics_clustered_mean(const double *d, const uint32_t *group, size_t n,
    double *mean, double *se)
{
	struct gd *v;
	double s = 0, ss = 0, m;
	size_t G = 0;

	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(d[i]))
			return -EINVAL;
		s += d[i];
	}
	m = s / (double)n;
	/* Sorted by group, each group's deviations are one run. */
	v = xmalloc(n * sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = (struct gd){ group[i], d[i] };
	qsort(v, n, sizeof(*v), gd_cmp);
	for (size_t i = 0, j; i < n; i = j) {
		double sg = 0;

		for (j = i; j < n && v[j].g == v[i].g; j++)
			sg += v[j].d - m;
		ss += sg * sg;
		G++;
	}
	free(v);
	*mean = m;
	*se = G < 2 ? INFINITY : sqrt((double)G / (double)(G - 1) * ss) /
	    (double)n;
	return 0;
}

void
metrics_mean_std(const double *x, size_t n, double *mean, double *std)
{
	double s = 0, ss = 0, mu;

	if (n == 0) {
		*mean = NAN;
		*std = NAN;
		return;
	}
	for (size_t i = 0; i < n; i++)
		s += x[i];
	mu = s / (double)n;
	for (size_t i = 0; i < n; i++)
		ss += (x[i] - mu) * (x[i] - mu);
	*mean = mu;
	*std = n > 1 ? sqrt(ss / (double)(n - 1)) : 0.0;
}
