/*
 * test_retrieve: cloudd/coda_retrieve.c against a double-precision brute-force
 * reference. Exact search must return the reference ranking (score
 * descending, position ascending); where float and double rounding can
 * reorder near-equal scores, hits are checked by score within SCORE_TOL.
 * Integer-valued data makes every score exact, so the tie tests compare ids
 * exactly. IVF is checked for recall on clustered data (a bound that fails
 * if the quantiser or the probing breaks), exactness with every list
 * probed, determinism, and the small-n edge cases.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shared/rng.h"
#include "shared/xmalloc.h"

#include "cloudd/coda_retrieve.h"

void	openblas_set_num_threads(int);

#define SCORE_TOL	1e-4

struct ref {
	double	 s;
	uint32_t pos;
};

static int
ref_cmp(const void *a, const void *b)
{
	const struct ref *x = a, *y = b;

	if (x->s != y->s)
		return x->s > y->s ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* ref (n) = every position's double score against q, ranked. */
static size_t
brute(struct ref *ref, const float *X, const uint32_t *owner, size_t n,
    int d, const float *q, uint32_t excl)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++) {
		if (owner[i] == excl)
			continue;
		double s = 0;
		for (int j = 0; j < d; j++)
			s += (double)X[i * d + j] * q[j];
		ref[c].s = s;
		ref[c].pos = (uint32_t)i;
		c++;
	}
	qsort(ref, c, sizeof(*ref), ref_cmp);
	return c;
}

static void
gauss(float *x, size_t len, struct rng *r)
{
	for (size_t i = 0; i < len; i++)
		x[i] = (float)rng_normal(r);
}

static void
unit(float *v, int d)
{
	double ss = 0;

	for (int j = 0; j < d; j++)
		ss += (double)v[j] * v[j];
	for (int j = 0; j < d; j++)
		v[j] = (float)(v[j] / sqrt(ss));
}

/* Row ids are a bijection of positions, so tests check the mapping. */
static uint64_t
row_of(size_t pos)
{
	return (uint64_t)pos * 7 + 1000003;
}

struct data {
	float		*X;
	uint32_t	*owner;
	uint64_t	*row;
	size_t		 n;
	int		 d;
};

static void
data_init(struct data *D, size_t n, int d, uint32_t n_owners)
{
	D->n = n;
	D->d = d;
	D->X = xmalloc(n * d * sizeof(float));
	D->owner = xmalloc(n * sizeof(uint32_t));
	D->row = xmalloc(n * sizeof(uint64_t));
	for (size_t i = 0; i < n; i++) {
		D->owner[i] = (uint32_t)(i % n_owners);
		D->row[i] = row_of(i);
	}
}

static void
data_fini(struct data *D)
{
	free(D->X);
	free(D->owner);
	free(D->row);
}

/*
 * Checks hits (k slots, nf real) of query q against the reference: count,
 * padding, scores within SCORE_TOL of the reference at each rank, every hit
 * a valid non-excluded row with its true score, rows unique, and (when
 * exact_ids) the ids themselves.
 */
static void
check_hits(const struct data *D, const float *q, uint32_t excl,
    const struct retr_hit *h, size_t nf, size_t k, int exact_ids)
{
	struct ref *ref = xmalloc(D->n * sizeof(*ref));
	size_t c = brute(ref, D->X, D->owner, D->n, D->d, q, excl);
	size_t want = c < k ? c : k;

	assert_int_equal(nf, want);
	for (size_t i = 0; i < nf; i++) {
		uint64_t pos = (h[i].row - 1000003) / 7;
		assert_true(pos < D->n && row_of(pos) == h[i].row);
		assert_int_equal(h[i].owner, D->owner[pos]);
		assert_true(h[i].owner != excl);
		double s = 0;
		for (int j = 0; j < D->d; j++)
			s += (double)D->X[pos * D->d + j] * q[j];
		assert_true(fabs(s - h[i].score) <= SCORE_TOL);
		assert_true(fabs(ref[i].s - h[i].score) <= SCORE_TOL);
		if (exact_ids)
			assert_int_equal(pos, ref[i].pos);
		if (i > 0)
			assert_true(h[i].score <= h[i - 1].score);
		for (size_t j = 0; j < i; j++)
			assert_true(h[j].row != h[i].row);
	}
	for (size_t i = nf; i < k; i++) {
		assert_true(h[i].row == RETR_NO_ROW);
		assert_true(h[i].owner == RETR_NO_OWNER);
		assert_true(isinf(h[i].score) && h[i].score < 0);
	}
	free(ref);
}

static struct retr *
build(const struct data *D, enum retr_kind kind, uint32_t nlist,
    uint32_t nprobe, uint64_t seed)
{
	struct retr_opts o;
	struct retr *r;

	retr_opts_default(&o);
	o.kind = kind;
	o.nlist = nlist;
	o.nprobe = nprobe;
	o.seed = seed;
	assert_int_equal(retr_build(&r, D->X, D->owner, D->row, D->n, D->d,
	    &o), 0);
	assert_non_null(r);
	return r;
}

/* Per-query search of m queries, checked one by one. */
static void
search_check(const struct retr *r, const struct data *D, const float *Q,
    size_t m, size_t k, uint32_t excl, uint32_t nprobe, int exact_ids)
{
	struct retr_hit *h = xmalloc(m * k * sizeof(*h));
	size_t *nf = xmalloc(m * sizeof(*nf));

	assert_int_equal(retr_topk(r, Q, m, k, excl, nprobe, h, nf), 0);
	for (size_t q = 0; q < m; q++)
		check_hits(D, Q + q * D->d, excl, h + q * k, nf[q], k,
		    exact_ids);
	free(nf);
	free(h);
}

/* Random Gaussian data: float vs double ranking agrees within tolerance. */
static void
test_exact_random(void **state)
{
	struct data D;
	struct rng rng;
	size_t m = 70;

	rng_seed(&rng, 1);
	data_init(&D, 5000, 17, 13);	/* d = 17: SIMD tail path */
	gauss(D.X, D.n * D.d, &rng);
	float *Q = xmalloc(m * D.d * sizeof(float));
	gauss(Q, m * D.d, &rng);
	struct retr *r = build(&D, RETR_EXACT, 0, 0, 1);
	assert_int_equal(retr_kind(r), RETR_EXACT);
	assert_int_equal(retr_size(r), 5000);
	assert_int_equal(retr_dim(r), 17);

	search_check(r, &D, Q, 1, 50, RETR_NO_OWNER, 0, 0);	/* sgemv */
	search_check(r, &D, Q, 3, 50, RETR_NO_OWNER, 0, 0);	/* sgemm */
	search_check(r, &D, Q, m, 10, RETR_NO_OWNER, 0, 0); /* 2 blocks */
	search_check(r, &D, Q, 5, 1, RETR_NO_OWNER, 0, 0);
	search_check(r, &D, Q, 2, 4999, RETR_NO_OWNER, 0, 0);

	/* Single-query and batched paths agree. */
	struct retr_hit a[50], b[3 * 50];
	size_t na, nb[3];
	assert_int_equal(retr_topk(r, Q + 2 * D.d, 1, 50, RETR_NO_OWNER, 0,
	    a, &na), 0);
	assert_int_equal(retr_topk(r, Q, 3, 50, RETR_NO_OWNER, 0, b, nb), 0);
	for (size_t i = 0; i < 50; i++)
		assert_true(fabsf(a[i].score - b[100 + i].score) <= SCORE_TOL);
	retr_free(r);
	free(Q);
	data_fini(&D);
}

/* Small-integer data: exact scores, many ties, ids must match exactly. */
static void
test_exact_ties(void **state)
{
	struct data D;
	struct rng rng;
	size_t m = 4;

	rng_seed(&rng, 2);
	data_init(&D, 600, 8, 7);
	for (size_t i = 0; i < D.n * D.d; i++)
		D.X[i] = (float)rng_below(&rng, 3) - 1.0f;
	/* Exact duplicates too. */
	memcpy(D.X + 100 * D.d, D.X + 7 * D.d, D.d * sizeof(float));
	memcpy(D.X + 599 * D.d, D.X + 7 * D.d, D.d * sizeof(float));
	float Q[4 * 8];
	for (size_t i = 0; i < m * D.d; i++)
		Q[i] = (float)rng_below(&rng, 5) - 2.0f;
	memcpy(Q, D.X + 7 * D.d, D.d * sizeof(float));

	struct retr *r = build(&D, RETR_EXACT, 0, 0, 1);
	search_check(r, &D, Q, 1, 40, RETR_NO_OWNER, 0, 1);
	search_check(r, &D, Q, m, 40, RETR_NO_OWNER, 0, 1);
	search_check(r, &D, Q, m, 40, 3, 0, 1);
	/* IVF with every list probed: same ranking, ties included. */
	struct retr *v = build(&D, RETR_IVF, 16, 2, 1);
	assert_int_equal(retr_kind(v), RETR_IVF);
	search_check(v, &D, Q, m, 40, RETR_NO_OWNER, RETR_NPROBE_ALL, 1);
	search_check(v, &D, Q, 1, 40, 5, RETR_NPROBE_ALL, 1);
	retr_free(v);
	retr_free(r);
	data_fini(&D);
}

/* k > n: every row once, then padding; exclusion shrinks the count. */
static void
test_k_gt_n(void **state)
{
	struct data D;
	struct rng rng;
	struct retr_hit h[25];
	size_t nf;

	rng_seed(&rng, 3);
	data_init(&D, 10, 4, 4);	/* owner 1 holds rows 1, 5, 9 */
	gauss(D.X, D.n * D.d, &rng);
	float q[4];
	gauss(q, 4, &rng);
	for (int kind = RETR_EXACT; kind <= RETR_IVF; kind++) {
		struct retr *r = build(&D, kind, 3, 3, 1);
		assert_int_equal(retr_topk(r, q, 1, 25, RETR_NO_OWNER, 0, h,
		    &nf), 0);
		check_hits(&D, q, RETR_NO_OWNER, h, nf, 25, 0);
		assert_int_equal(nf, 10);
		assert_int_equal(retr_topk(r, q, 1, 25, 1, 0, h, &nf), 0);
		check_hits(&D, q, 1, h, nf, 25, 0);
		assert_int_equal(nf, 7);
		assert_int_equal(retr_search(r, q, 1, 25, 1, h, &nf), 0);
		assert_int_equal(nf, 7);
		retr_free(r);
	}
	data_fini(&D);
}

/* Merged search = rows ranked by their best score over all queries. */
static void
test_merge_dedupe(void **state)
{
	struct data D;
	struct rng rng;
	size_t m = 5, k = 30;

	rng_seed(&rng, 4);
	data_init(&D, 3000, 12, 50);
	gauss(D.X, D.n * D.d, &rng);
	float *Q = xmalloc(m * D.d * sizeof(float));
	gauss(Q, m * D.d, &rng);
	/* A repeated query and a near-duplicate force overlapping lists. */
	memcpy(Q + D.d, Q, D.d * sizeof(float));
	memcpy(Q + 2 * D.d, Q, D.d * sizeof(float));
	Q[2 * D.d] += 0.01f;

	for (int kind = RETR_EXACT; kind <= RETR_IVF; kind++) {
		struct retr *r = build(&D, kind, 20, RETR_NPROBE_ALL, 1);
		uint32_t excl = kind == RETR_EXACT ? RETR_NO_OWNER : 7;
		struct retr_hit h[30];
		size_t nf;
		assert_int_equal(retr_search(r, Q, m, k, excl, h, &nf), 0);
		assert_int_equal(nf, k);

		/* Reference: best double score per row over the queries. */
		struct ref *best = xmalloc(D.n * sizeof(*best));
		for (size_t i = 0; i < D.n; i++) {
			best[i].s = -INFINITY;
			best[i].pos = (uint32_t)i;
			if (D.owner[i] == excl)
				continue;
			for (size_t q = 0; q < m; q++) {
				double s = 0;
				for (int j = 0; j < D.d; j++)
					s += (double)D.X[i * D.d + j] *
					    Q[q * D.d + j];
				if (s > best[i].s)
					best[i].s = s;
			}
		}
		qsort(best, D.n, sizeof(*best), ref_cmp);
		for (size_t i = 0; i < nf; i++) {
			assert_true(fabs(best[i].s - h[i].score) <= SCORE_TOL);
			assert_true(h[i].owner != excl);
			for (size_t j = 0; j < i; j++)
				assert_true(h[j].row != h[i].row);
			if (i > 0)
				assert_true(h[i].score <= h[i - 1].score);
		}
		/* Rows are unique, so the duplicated query adds nothing. */
		struct retr_hit h1[30];
		size_t n1;
		float Q2[2 * 12];
		memcpy(Q2, Q, D.d * sizeof(float));
		memcpy(Q2 + D.d, Q, D.d * sizeof(float));
		assert_int_equal(retr_search(r, Q2, 2, k, excl, h1, &n1), 0);
		struct retr_hit h2[30];
		size_t n2;
		assert_int_equal(retr_topk(r, Q, 1, k, excl, 0, h2, &n2), 0);
		assert_int_equal(n1, n2);
		for (size_t i = 0; i < n1; i++)
			assert_true(h1[i].row == h2[i].row);
		free(best);
		retr_free(r);
	}
	free(Q);
	data_fini(&D);
}

/* The requester's rows never come back, even when they are the best. */
static void
test_exclude_owner(void **state)
{
	struct data D;
	struct rng rng;
	size_t k = 20;
	struct retr_hit h[3 * 20];
	size_t nf[3], n;

	rng_seed(&rng, 5);
	data_init(&D, 2000, 8, 5);
	gauss(D.X, D.n * D.d, &rng);
	for (size_t i = 0; i < D.n; i++)
		unit(D.X + i * D.d, D.d);	/* cosine: self is best */
	/* Queries are copies of owner 2's rows: their best match is self. */
	float Q[3 * 8];
	memcpy(Q, D.X + 2 * D.d, D.d * sizeof(float));
	memcpy(Q + D.d, D.X + 7 * D.d, D.d * sizeof(float));
	memcpy(Q + 2 * D.d, D.X + 12 * D.d, D.d * sizeof(float));
	for (int kind = RETR_EXACT; kind <= RETR_IVF; kind++) {
		struct retr *r = build(&D, kind, 10, 10, 1);
		assert_int_equal(retr_topk(r, Q, 3, k, RETR_NO_OWNER, 0, h,
		    nf), 0);
		assert_int_equal(h[0].owner, 2);	/* self, unexcluded */
		search_check(r, &D, Q, 3, k, 2, 0, 0);
		assert_int_equal(retr_search(r, Q, 3, k, 2, h, &n), 0);
		assert_int_equal(n, k);
		for (size_t i = 0; i < n; i++)
			assert_true(h[i].owner != 2);
		retr_free(r);
	}
	data_fini(&D);
}

/* Bad arguments and non-finite values are errors, never crashes. */
static void
test_bad_args(void **state)
{
	struct data D;
	struct rng rng;
	struct retr *r, *bad = (struct retr *)&bad;
	struct retr_hit h[8];
	struct retr_opts o;
	size_t nf;
	float q[4] = { 1, 0, 0, 0 };

	rng_seed(&rng, 6);
	data_init(&D, 16, 4, 2);
	gauss(D.X, D.n * D.d, &rng);
	r = build(&D, RETR_EXACT, 0, 0, 1);

	q[2] = NAN;
	assert_int_equal(retr_topk(r, q, 1, 8, RETR_NO_OWNER, 0, h, &nf),
	    -EDOM);
	assert_int_equal(retr_search(r, q, 1, 8, RETR_NO_OWNER, h, &nf),
	    -EDOM);
	assert_int_equal(nf, 0);
	q[2] = INFINITY;
	assert_int_equal(retr_topk(r, q, 1, 8, RETR_NO_OWNER, 0, h, &nf),
	    -EDOM);
	q[2] = -INFINITY;
	assert_int_equal(retr_search(r, q, 1, 8, RETR_NO_OWNER, h, &nf),
	    -EDOM);
	q[2] = 0;
	assert_int_equal(retr_topk(r, q, 1, 0, 0, 0, h, &nf), -EINVAL);
	assert_int_equal(retr_topk(r, q, 0, 8, 0, 0, h, &nf), -EINVAL);
	assert_int_equal(retr_topk(r, q, 1, RETR_MAX_K + 1, 0, 0, h, &nf),
	    -EINVAL);
	assert_int_equal(retr_topk(r, q, RETR_MAX_M + 1, 8, 0, 0, h, &nf),
	    -EINVAL);
	assert_int_equal(retr_topk(r, q, 100, RETR_MAX_K, 0, 0, h, &nf),
	    -E2BIG);
	assert_int_equal(retr_topk(NULL, q, 1, 8, 0, 0, h, &nf), -EINVAL);
	assert_int_equal(retr_topk(r, NULL, 1, 8, 0, 0, h, &nf), -EINVAL);
	assert_int_equal(retr_topk(r, q, 1, 8, 0, 0, NULL, &nf), -EINVAL);
	assert_int_equal(retr_search(r, q, 1, 8, 0, h, NULL), -EINVAL);
	assert_int_equal(retr_centroids(r, q), -EINVAL);

	/* Build: sizes, kinds and non-finite data. */
	assert_int_equal(retr_build(&bad, D.X, D.owner, D.row, 0, 4, NULL),
	    -EINVAL);
	assert_null(bad);
	assert_int_equal(retr_build(&bad, D.X, D.owner, D.row, 16, 0, NULL),
	    -EINVAL);
	assert_int_equal(retr_build(&bad, D.X, D.owner, D.row, 16,
	    RETR_MAX_D + 1, NULL), -EINVAL);
	assert_int_equal(retr_build(&bad, NULL, D.owner, D.row, 16, 4, NULL),
	    -EINVAL);
	assert_int_equal(retr_build(NULL, D.X, D.owner, D.row, 16, 4, NULL),
	    -EINVAL);
	retr_opts_default(&o);
	o.kind = 7;
	assert_int_equal(retr_build(&bad, D.X, D.owner, D.row, 16, 4, &o),
	    -EINVAL);
	retr_opts_default(&o);
	o.target_recall = NAN;
	assert_int_equal(retr_build(&bad, D.X, D.owner, D.row, 16, 4, &o),
	    -EINVAL);
	D.X[5] = NAN;
	assert_int_equal(retr_build(&bad, D.X, D.owner, D.row, 16, 4, NULL),
	    -EDOM);
	assert_null(bad);
	D.X[5] = INFINITY;
	assert_int_equal(retr_build(&bad, D.X, D.owner, D.row, 16, 4, NULL),
	    -EDOM);
	D.X[5] = 0;

	/* Finite but huge: scores overflow; no crash, no NaN returned. */
	float big[4] = { 3e38f, 3e38f, -3e38f, 3e38f };
	assert_int_equal(retr_topk(r, big, 1, 8, RETR_NO_OWNER, 0, h, &nf),
	    0);
	for (size_t i = 0; i < nf; i++)
		assert_false(isnan(h[i].score));

	retr_free(r);
	retr_free(NULL);
	data_fini(&D);
}

/*
 * Clustered data (a normalised Gaussian mixture): IVF with its auto-tuned
 * nprobe must reach recall@50 >= 0.90 on fresh queries while probing a
 * fraction of the lists. Fails if k-means, list layout or probing breaks.
 */
static void
test_ivf_recall(void **state)
{
	struct data D;
	struct rng rng;
	int d = 16, C = 40;
	size_t nq = 100, k = 50;

	rng_seed(&rng, 7);
	data_init(&D, 20000, d, 997);
	float *mu = xmalloc((size_t)C * d * sizeof(float));
	gauss(mu, (size_t)C * d, &rng);
	for (int c = 0; c < C; c++)
		unit(mu + c * d, d);
	float *Q = xmalloc(nq * d * sizeof(float));
	for (size_t i = 0; i < D.n + nq; i++) {
		float *x = i < D.n ? D.X + i * d : Q + (i - D.n) * d;
		uint32_t c = rng_below(&rng, C);
		for (int j = 0; j < d; j++)
			x[j] = mu[c * d + j] + (float)rng_normal(&rng) * 0.25f;
		unit(x, d);
	}
	struct retr_opts o;
	retr_opts_default(&o);
	o.ivf_min_n = 10000;	/* AUTO picks IVF */
	struct retr *r;
	assert_int_equal(retr_build(&r, D.X, D.owner, D.row, D.n, d, &o), 0);
	assert_int_equal(retr_kind(r), RETR_IVF);
	assert_int_equal(retr_nlist(r), 566);	/* round(4 sqrt(20000)) */
	assert_true(retr_nprobe(r) >= 1 && retr_nprobe(r) < 566 / 4);

	struct retr_hit *h = xmalloc(nq * k * sizeof(*h));
	struct retr_hit *e = xmalloc(nq * k * sizeof(*e));
	assert_int_equal(retr_topk(r, Q, nq, k, RETR_NO_OWNER, 0, h, NULL), 0);
	assert_int_equal(retr_topk(r, Q, nq, k, RETR_NO_OWNER,
	    RETR_NPROBE_ALL, e, NULL), 0);
	size_t hit = 0;
	for (size_t q = 0; q < nq; q++)
		for (size_t i = 0; i < k; i++)
			for (size_t j = 0; j < k; j++)
				if (h[q * k + i].row == e[q * k + j].row) {
					hit++;
					break;
				}
	double rec = (double)hit / (double)(nq * k);
	print_message("ivf recall@%zu %.4f (nlist %u, nprobe %u)\n", k, rec,
	    retr_nlist(r), retr_nprobe(r));
	assert_true(rec >= 0.90);
	/* Probing every list is the exact answer. */
	search_check(r, &D, Q, 7, k, RETR_NO_OWNER, RETR_NPROBE_ALL, 0);
	/* Single-query IVF path gives the batched answer. */
	struct retr_hit h1[50];
	size_t n1;
	assert_int_equal(retr_topk(r, Q + 5 * d, 1, k, RETR_NO_OWNER, 0, h1,
	    &n1), 0);
	for (size_t i = 0; i < n1; i++)
		assert_true(h1[i].row == h[5 * k + i].row);
	free(e);
	free(h);
	retr_free(r);
	free(Q);
	free(mu);
	data_fini(&D);
}

/* Same seed, same index and answers; another seed, other centroids. */
static void
test_determinism(void **state)
{
	struct data D;
	struct rng rng;
	int d = 8;

	rng_seed(&rng, 8);
	data_init(&D, 4000, d, 31);
	gauss(D.X, D.n * d, &rng);
	struct retr *a = build(&D, RETR_IVF, 0, 0, 42);
	struct retr *b = build(&D, RETR_IVF, 0, 0, 42);
	struct retr *c = build(&D, RETR_IVF, 0, 0, 43);
	uint32_t L = retr_nlist(a);
	assert_int_equal(L, 253);
	assert_int_equal(retr_nprobe(a), retr_nprobe(b));
	float *ca = xmalloc((size_t)L * d * sizeof(float));
	float *cb = xmalloc((size_t)L * d * sizeof(float));
	assert_int_equal(retr_centroids(a, ca), 0);
	assert_int_equal(retr_centroids(b, cb), 0);
	assert_memory_equal(ca, cb, (size_t)L * d * sizeof(float));
	assert_int_equal(retr_centroids(c, cb), 0);
	assert_memory_not_equal(ca, cb, (size_t)L * d * sizeof(float));
	float Q[5 * 8];
	gauss(Q, 5 * d, &rng);
	struct retr_hit ha[5 * 20], hb[5 * 20];
	assert_int_equal(retr_topk(a, Q, 5, 20, 3, 0, ha, NULL), 0);
	assert_int_equal(retr_topk(b, Q, 5, 20, 3, 0, hb, NULL), 0);
	assert_memory_equal(ha, hb, sizeof(ha));
	free(cb);
	free(ca);
	retr_free(c);
	retr_free(b);
	retr_free(a);
	data_fini(&D);
}

/*
 * retr_build_take (the pool's way: the index takes the vectors and orders
 * its lists in place) answers exactly as retr_build on a copy, for both
 * kinds; *X is NULL after a take and the caller's after a refusal.
 */
static void
test_take(void **state)
{
	struct data D;
	struct rng rng;
	int d = 8;
	float Q[5 * 8];

	(void)state;
	rng_seed(&rng, 9);
	data_init(&D, 3000, d, 29);
	gauss(D.X, D.n * d, &rng);
	gauss(Q, 5 * d, &rng);
	for (int kind = RETR_EXACT; kind <= RETR_IVF; kind++) {
		struct retr_opts o;
		struct retr *a, *b;
		struct retr_hit ha[5 * 20], hb[5 * 20];
		float *X = xmalloc(D.n * d * sizeof(float));
		uint32_t L;

		retr_opts_default(&o);
		o.kind = kind;
		o.seed = 5;
		memcpy(X, D.X, D.n * d * sizeof(float));
		assert_int_equal(retr_build(&a, D.X, D.owner, D.row, D.n, d,
		    &o), 0);
		assert_int_equal(retr_build_take(&b, &X, D.owner, D.row, D.n,
		    d, &o), 0);
		assert_null(X);
		assert_int_equal(retr_kind(b), kind);
		assert_int_equal(retr_nprobe(a), retr_nprobe(b));
		if ((L = retr_nlist(a)) > 0) {
			float *ca = xmalloc((size_t)L * d * sizeof(float));
			float *cb = xmalloc((size_t)L * d * sizeof(float));
			assert_int_equal(retr_centroids(a, ca), 0);
			assert_int_equal(retr_centroids(b, cb), 0);
			assert_memory_equal(ca, cb, (size_t)L * d *
			    sizeof(float));
			free(cb);
			free(ca);
		}
		assert_int_equal(retr_topk(a, Q, 5, 20, 3, 0, ha, NULL), 0);
		assert_int_equal(retr_topk(b, Q, 5, 20, 3, 0, hb, NULL), 0);
		assert_memory_equal(ha, hb, sizeof(ha));
		/* every hit's score is its own row's, so rows moved whole */
		search_check(b, &D, Q, 5, 20, 3, retr_nlist(b), 1);
		retr_free(b);
		retr_free(a);
	}
	{
		float *X = xmalloc(D.n * d * sizeof(float));
		struct retr *bad;

		memcpy(X, D.X, D.n * d * sizeof(float));
		X[7] = NAN;
		assert_int_equal(retr_build_take(&bad, &X, D.owner, D.row,
		    D.n, d, NULL), -EDOM);
		assert_non_null(X);	/* still the caller's */
		assert_null(bad);
		free(X);
	}
	data_fini(&D);
}

/* One vector; and n smaller than the requested nlist. */
static void
test_tiny(void **state)
{
	struct data D;
	struct rng rng;
	struct retr_hit h[5];
	size_t nf;
	float q[3] = { 1, 2, 3 };

	rng_seed(&rng, 9);
	data_init(&D, 1, 3, 1);
	gauss(D.X, 3, &rng);
	for (int kind = RETR_EXACT; kind <= RETR_IVF; kind++) {
		struct retr *r = build(&D, kind, 0, 0, 1);
		assert_int_equal(retr_topk(r, q, 1, 5, RETR_NO_OWNER, 0, h,
		    &nf), 0);
		check_hits(&D, q, RETR_NO_OWNER, h, nf, 5, 1);
		assert_int_equal(nf, 1);
		assert_int_equal(retr_search(r, q, 1, 5, 0, h, &nf), 0);
		assert_int_equal(nf, 0);	/* only row is excluded */
		retr_free(r);
	}
	data_fini(&D);

	data_init(&D, 50, 3, 4);
	gauss(D.X, 50 * 3, &rng);
	struct retr *r = build(&D, RETR_IVF, 200, 0, 1);
	assert_int_equal(retr_nlist(r), 50);
	assert_true(retr_nprobe(r) >= 1 && retr_nprobe(r) <= 50);
	search_check(r, &D, q, 1, 5, 2, RETR_NPROBE_ALL, 0);
	assert_int_equal(retr_topk(r, q, 1, 5, 2, 0, h, &nf), 0);
	assert_true(nf >= 1 && nf <= 5);
	retr_free(r);

	/* AUTO: below the threshold stays exact. */
	struct retr_opts o;
	retr_opts_default(&o);
	o.ivf_min_n = 51;
	assert_int_equal(retr_build(&r, D.X, D.owner, D.row, D.n, D.d, &o),
	    0);
	assert_int_equal(retr_kind(r), RETR_EXACT);
	assert_int_equal(retr_nlist(r), 0);
	retr_free(r);
	data_fini(&D);
}

/* Similar users: means of each user's samples; self never returned. */
static void
test_similar_users(void **state)
{
	struct rng rng;
	int d = 6;
	uint32_t U = 12, per = 5;
	size_t n = 10 * per;	/* users 10 and 11 have no samples */
	float *X = xmalloc(n * d * sizeof(float)), dir[12 * 6];
	uint32_t *owner = xmalloc(n * sizeof(uint32_t));
	struct retr *u;

	rng_seed(&rng, 10);
	gauss(dir, (size_t)U * d, &rng);
	memcpy(dir + d, dir, d * sizeof(float));	/* users 0, 1 alike */
	for (size_t i = 0; i < n; i++) {
		owner[i] = (uint32_t)(i / per);
		for (int j = 0; j < d; j++)
			X[i * d + j] = dir[owner[i] * d + j] +
			    0.05f * (float)rng_normal(&rng);
	}
	assert_int_equal(retr_users_build(&u, X, owner, n, d, U), 0);
	assert_int_equal(retr_size(u), 10);
	uint32_t ids[20];
	float sc[20];
	size_t nf;
	assert_int_equal(retr_similar_users(u, X, per, 0, 20, ids, sc, &nf),
	    0);
	assert_int_equal(nf, 9);
	assert_int_equal(ids[0], 1);
	assert_true(sc[0] > 0.99f);
	for (size_t i = 0; i < nf; i++) {
		assert_true(ids[i] != 0 && ids[i] < 10);
		if (i > 0)
			assert_true(sc[i] <= sc[i - 1]);
	}
	float zero[6] = { 0 };
	assert_int_equal(retr_similar_users(u, zero, 1, 0, 3, ids, sc, &nf),
	    -EDOM);
	zero[1] = NAN;
	assert_int_equal(retr_similar_users(u, zero, 1, 0, 3, ids, sc, &nf),
	    -EDOM);
	retr_free(u);
	owner[3] = U;
	assert_int_equal(retr_users_build(&u, X, owner, n, d, U), -EINVAL);
	assert_null(u);
	assert_int_equal(retr_users_build(&u, X, NULL, n, d, U), -EINVAL);
	free(owner);
	free(X);
}

/* Many threads searching one index at once get the serial answers. */
struct worker {
	const struct retr	*r;
	const float		*Q;
	size_t			 m;
	struct retr_hit		*out;
	int			 rc;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	for (int it = 0; it < 5 && w->rc == 0; it++)
		w->rc = retr_topk(w->r, w->Q, w->m, 10, 1, 0, w->out, NULL);
	return NULL;
}

static void
test_threads(void **state)
{
	struct data D;
	struct rng rng;
	size_t m = 9;
	pthread_t th[4];
	struct worker w[4];

	rng_seed(&rng, 11);
	data_init(&D, 6000, 10, 9);
	gauss(D.X, D.n * D.d, &rng);
	float *Q = xmalloc(m * D.d * sizeof(float));
	gauss(Q, m * D.d, &rng);
	for (int kind = RETR_EXACT; kind <= RETR_IVF; kind++) {
		struct retr *r = build(&D, kind, 0, 0, 1);
		struct retr_hit ref[9 * 10];
		assert_int_equal(retr_topk(r, Q, m, 10, 1, 0, ref, NULL), 0);
		for (int t = 0; t < 4; t++) {
			w[t].r = r;
			w[t].Q = Q;
			w[t].m = t % 2 ? m : 1;
			w[t].out = xmalloc(m * 10 * sizeof(struct retr_hit));
			w[t].rc = 0;
			assert_int_equal(pthread_create(&th[t], NULL,
			    worker_main, &w[t]), 0);
		}
		for (int t = 0; t < 4; t++) {
			assert_int_equal(pthread_join(th[t], NULL), 0);
			assert_int_equal(w[t].rc, 0);
			for (size_t i = 0; i < w[t].m * 10; i++)
				assert_true(w[t].out[i].row == ref[i].row);
			free(w[t].out);
		}
		retr_free(r);
	}
	free(Q);
	data_fini(&D);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_random),
		cmocka_unit_test(test_exact_ties),
		cmocka_unit_test(test_k_gt_n),
		cmocka_unit_test(test_merge_dedupe),
		cmocka_unit_test(test_exclude_owner),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_ivf_recall),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_take),
		cmocka_unit_test(test_tiny),
		cmocka_unit_test(test_similar_users),
		cmocka_unit_test(test_threads),
	};

	openblas_set_num_threads(1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
