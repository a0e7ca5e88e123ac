/*
 * coda_retrieve: top-k inner-product retrieval over the cloud's sample pool
 * (CoDA coarse matching). See coda_retrieve.h for the API contract.
 *
 * DESIGN
 *
 * Shapes: n vectors, d dims, m queries, k results, L lists (IVF nlist),
 * P probed lists. A "slot" is where a vector sits in storage; a "position"
 * is its index in the caller's build arrays. EXACT keeps position order, so
 * slot == position; IVF stores vectors in list order and keeps pos[slot].
 *
 * Exact search. Queries are taken in blocks of up to QB; the database is
 * streamed in blocks of BB rows. Each (query block x database block) pair is
 * one cblas_sgemm into a small score tile that stays in L2; a single query
 * uses cblas_sgemv instead (sgemm with M == 1 is slower in OpenBLAS). Each
 * query then scans its tile row against its own bounded min-heap of size k:
 * the scan compares 8 scores at a time against the heap's threshold (its
 * worst score) with SSE2, so almost all of the n scores per query cost one
 * vector compare and never touch the heap. This is the same algorithm as
 * faiss IndexFlatIP's BLAS path, with the tile sized for this machine.
 *
 * Ties: hits are ordered by score descending, then position ascending. The
 * heap's comparator implements exactly that order, so results are identical
 * to a brute-force sort whenever the float scores are identical.
 *
 * IVF. A spherical k-means coarse quantiser: centroids are L2-normalised
 * means, so probing by inner product with the query ranks lists by
 * direction, which is what cosine retrieval needs. Training uses a seeded
 * random sample (partial Fisher-Yates) of train_size vectors, random distinct
 * initial centroids from that sample, and BLAS for every assignment (blocked
 * sgemm + SSE argmax). Empty clusters are re-seeded from a random training
 * vector. All n vectors are then assigned and copied, with their owner, row
 * and position, into list order (stable, so positions ascend within a list)
 * so that a probed list is one contiguous read. Search: one sgemm of the
 * query block against the centroids, the nprobe best lists per query (a
 * small heap), then each list is scored in chunks with sgemv and scanned
 * into the query's heap exactly as in exact search. With nprobe = L it
 * returns the exact answer. Queries of one block that probe the same list
 * are served from one read of it (pairs grouped by list).
 *
 * IVF defaults: nlist = 4 sqrt(n) (4000 lists of ~250 vectors at 1M: list
 * scans and centroid scoring cost about the same), 32 training vectors per
 * list and 10 iterations (64 per list or more iterations bought < 0.002
 * recall for 1.6x the build time), and nprobe auto-tuned at build time to a
 * recall target on a sample of pool vectors (see coda_retrieve.h), because the
 * nprobe a recall needs varies by 10x with how clustered the vectors are.
 *
 * Merged search (the daemon's call): each query's top-k, then the m*k
 * candidates are sorted by (row, score desc), deduplicated, and re-sorted by
 * score. Because a row's best score comes from some query whose own top-k
 * must contain it if it belongs in the merged top-k, this is exact.
 *
 * Threads and memory: the index is immutable after retr_build. Every search
 * allocates its own scratch (heaps, score tiles) with xmalloc, sized by
 * bounded arguments, and frees it before returning; nothing is shared or
 * cached, so concurrent searches on one index are safe. OpenBLAS threading
 * is the caller's business (pin to 1 thread on the 2-core target).
 *
 * Untrusted input: sizes are checked against the RETR_MAX_* bounds before
 * any allocation; NaN/Inf in queries are rejected (-EDOM) before searching.
 * Build data must be finite as well. A score that still overflows to NaN
 * (finite but huge inputs) fails every >= comparison and is never returned.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define HAVE_AVX2_DISPATCH 1
#endif

#include "shared/ml/kern.h"
#include "shared/rng.h"
#include "shared/xmalloc.h"

#include "cloudd/coda_retrieve.h"

/* Tuning (see DESIGN); measured with tests/bench/bench_retrieve.sh. */
#ifndef QB
#define QB		64	/* exact/IVF: queries per block */
#endif
#ifndef TILE_FLOATS
#define TILE_FLOATS	(1u << 16)	/* exact: score tile, 256 KiB */
#endif
#ifndef BB_MIN
#define BB_MIN		1024	/* exact: min database rows per block */
#endif
#ifndef BB_ONE
#define BB_ONE		4096	/* exact: rows per block for one query */
#endif
#define LIST_CHUNK	1024	/* IVF: rows scored per sgemv */
#define ASSIGN_FLOATS	(1u << 20)	/* k-means: score tile, 4 MiB */

#define DEF_IVF_MIN_N	65536
#define DEF_ITERS	10
#define DEF_TRAIN_PER	32	/* training vectors per list */
#define DEF_RECALL	0.96	/* nprobe auto-tuning goal */
#define TUNE_Q		128	/* auto-tuning queries */
#define TUNE_K		100	/* auto-tuning recall@ */

typedef void dots_fn(float *, const float *, size_t, int, const float *);

struct retr {
	enum retr_kind	 kind;
	size_t		 n;
	int		 d;
	float		*X;	/* (n,d) by slot */
	uint32_t	*owner;	/* (n) by slot */
	uint64_t	*row;	/* (n) by slot */
	uint32_t	*pos;	/* (n) by slot; IVF only, NULL for EXACT */
	uint32_t	 nlist;
	uint32_t	 nprobe;
	float		*C;	/* (nlist,d) unit centroids; IVF only */
	size_t		*lofs;	/* (nlist+1) list offsets in slots */
	dots_fn		*dots;	/* list-scan kernel for this CPU */
};

struct cand {
	float		 s;
	uint32_t	 slot;
};

/* Bounded min-heap: a[0] is the worst kept candidate. */
struct heap {
	struct cand	*a;
	size_t		 n, cap;
	float		 thr;	/* -INF until full, then a[0].s */
	const uint32_t	*pos;	/* tie-break key by slot; NULL: slot */
	const uint32_t	*owner;
	uint32_t	 excl;
};

static inline uint32_t
key(const struct heap *h, uint32_t slot)
{
	return h->pos ? h->pos[slot] : slot;
}

/* a ranks below b: lower score, or same score and later position. */
static inline int
worse(const struct heap *h, struct cand a, struct cand b)
{
	return a.s < b.s || (a.s == b.s && key(h, a.slot) > key(h, b.slot));
}

static void
heap_init(struct heap *h, struct cand *a, size_t cap, const struct retr *r,
    uint32_t excl)
{
	h->a = a;
	h->n = 0;
	h->cap = cap;
	h->thr = -INFINITY;
	h->pos = r->pos;
	h->owner = r->owner;
	h->excl = excl;
}

static void
sift_down(struct heap *h, size_t i)
{
	struct cand x = h->a[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && worse(h, h->a[c + 1], h->a[c]))
			c++;
		if (!worse(h, h->a[c], x))
			break;
		h->a[i] = h->a[c];
		i = c;
	}
	h->a[i] = x;
}

static void
heap_offer(struct heap *h, float s, uint32_t slot)
{
	struct cand c = { s, slot };

	if (h->owner != NULL && h->owner[slot] == h->excl)
		return;
	if (h->n < h->cap) {
		size_t i = h->n++;
		while (i > 0) {
			size_t p = (i - 1) / 2;
			if (!worse(h, c, h->a[p]))
				break;
			h->a[i] = h->a[p];
			i = p;
		}
		h->a[i] = c;
		if (h->n == h->cap)
			h->thr = h->a[0].s;
		return;
	}
	if (!worse(h, h->a[0], c))
		return;
	h->a[0] = c;
	sift_down(h, 0);
	h->thr = h->a[0].s;
}

/* Empties the heap into out, best first; returns the count. */
static size_t
heap_drain(struct heap *h, struct cand *out)
{
	size_t cnt = h->n;

	while (h->n > 0) {
		out[h->n - 1] = h->a[0];
		h->a[0] = h->a[--h->n];
		if (h->n > 0)
			sift_down(h, 0);
	}
	return cnt;
}

/*
 * out (rows) = X (rows,d) . q (d). Used for IVF list scans, where lists are
 * a few hundred rows and a BLAS call per list costs more than the math.
 * dots_avx2 is picked at build time when the CPU has AVX2+FMA; its sums are
 * in a different order from sgemm, so scores may differ in the last bits.
 */
static void
dots_blas(float *out, const float *X, size_t rows, int d, const float *q)
{
	cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)rows, d, 1.0f, X, d, q,
	    1, 0.0f, out, 1);
}

#if defined(HAVE_AVX2_DISPATCH)
__attribute__((target("avx2,fma"))) static void
dots_avx2(float *out, const float *X, size_t rows, int d, const float *q)
{
	int d8 = d & ~7;
	size_t i = 0;

	for (; i + 4 <= rows; i += 4) {
		const float *x = X + i * d;
		__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
		__m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
		for (int j = 0; j < d8; j += 8) {
			__m256 qv = _mm256_loadu_ps(q + j);
			a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + j), qv, a0);
			a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + d + j), qv,
			    a1);
			a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + 2 * d + j),
			    qv, a2);
			a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + 3 * d + j),
			    qv, a3);
		}
		__m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1),
		    _mm256_hadd_ps(a2, a3));
		__m128 s4 = _mm_add_ps(_mm256_castps256_ps128(t),
		    _mm256_extractf128_ps(t, 1));
		float v[4];
		_mm_storeu_ps(v, s4);
		for (int j = d8; j < d; j++)
			for (int r = 0; r < 4; r++)
				v[r] += x[r * d + j] * q[j];
		memcpy(out + i, v, sizeof(v));
	}
	for (; i < rows; i++) {
		const float *x = X + i * d;
		__m256 a = _mm256_setzero_ps();
		for (int j = 0; j < d8; j += 8)
			a = _mm256_fmadd_ps(_mm256_loadu_ps(x + j),
			    _mm256_loadu_ps(q + j), a);
		float v[8], sum = 0;
		_mm256_storeu_ps(v, a);
		for (int j = 0; j < 8; j++)
			sum += v[j];
		for (int j = d8; j < d; j++)
			sum += x[j] * q[j];
		out[i] = sum;
	}
}
#endif

static dots_fn *
pick_dots(void)
{
#if defined(HAVE_AVX2_DISPATCH)
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		return dots_avx2;
#endif
	return dots_blas;
}

/* First j' >= j with s[j'] >= thr, or len. NaN never matches. */
static inline size_t
next_ge(const float *s, size_t j, size_t len, float thr)
{
#if defined(__SSE2__)
	__m128 t = _mm_set1_ps(thr);

	for (; j + 8 <= len; j += 8) {
		__m128 a = _mm_cmpge_ps(_mm_loadu_ps(s + j), t);
		__m128 b = _mm_cmpge_ps(_mm_loadu_ps(s + j + 4), t);
		if (_mm_movemask_ps(_mm_or_ps(a, b)) != 0)
			break;
	}
#endif
	for (; j < len; j++)
		if (s[j] >= thr)
			return j;
	return len;
}

/* Offers scores s (len), belonging to slots slot0.., to the heap. */
static void
scan(struct heap *h, const float *s, size_t len, size_t slot0)
{
	size_t j = 0;

	while ((j = next_ge(s, j, len, h->thr)) < len) {
		heap_offer(h, s[j], (uint32_t)(slot0 + j));
		j++;
	}
}

/* Index of the first maximum of s (n > 0). */
static uint32_t
argmax(const float *s, uint32_t n)
{
	float mx = s[0];
	uint32_t i = 0;

#if defined(__SSE2__)
	if (n >= 16) {
		__m128 a = _mm_loadu_ps(s), b = _mm_loadu_ps(s + 4);
		__m128 c = _mm_loadu_ps(s + 8), e = _mm_loadu_ps(s + 12);
		for (i = 16; i + 16 <= n; i += 16) {
			a = _mm_max_ps(a, _mm_loadu_ps(s + i));
			b = _mm_max_ps(b, _mm_loadu_ps(s + i + 4));
			c = _mm_max_ps(c, _mm_loadu_ps(s + i + 8));
			e = _mm_max_ps(e, _mm_loadu_ps(s + i + 12));
		}
		float v[4];
		_mm_storeu_ps(v, _mm_max_ps(_mm_max_ps(a, b), _mm_max_ps(c, e)));
		mx = v[0];
		for (int t = 1; t < 4; t++)
			if (v[t] > mx)
				mx = v[t];
	}
#endif
	for (; i < n; i++)
		if (s[i] > mx)
			mx = s[i];
	i = 0;
#if defined(__SSE2__)
	__m128 m = _mm_set1_ps(mx);
	for (; i + 8 <= n; i += 8)
		if (_mm_movemask_ps(_mm_or_ps(
		    _mm_cmpeq_ps(_mm_loadu_ps(s + i), m),
		    _mm_cmpeq_ps(_mm_loadu_ps(s + i + 4), m))) != 0)
			break;
#endif
	for (; i < n; i++)
		if (s[i] == mx)
			return i;
	return 0;
}

void
retr_opts_default(struct retr_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->kind = RETR_AUTO;
	o->ivf_min_n = DEF_IVF_MIN_N;
	o->seed = 1;
}

size_t
retr_size(const struct retr *r)
{
	return r->n;
}

int
retr_dim(const struct retr *r)
{
	return r->d;
}

enum retr_kind
retr_kind(const struct retr *r)
{
	return r->kind;
}

uint32_t
retr_nlist(const struct retr *r)
{
	return r->nlist;
}

uint32_t
retr_nprobe(const struct retr *r)
{
	return r->nprobe;
}

int
retr_centroids(const struct retr *r, float *C)
{
	if (r == NULL || C == NULL || r->kind != RETR_IVF)
		return -EINVAL;
	memcpy(C, r->C, (size_t)r->nlist * r->d * sizeof(float));
	return 0;
}

void
retr_free(struct retr *r)
{
	if (r == NULL)
		return;
	free(r->X);
	free(r->owner);
	free(r->row);
	free(r->pos);
	free(r->C);
	free(r->lofs);
	free(r);
}

/* ---------------------------------------------------------------- build */

static void
normalise(float *v, int d)
{
	double ss = 0;

	for (int j = 0; j < d; j++)
		ss += (double)v[j] * v[j];
	if (ss > 0) {
		float inv = (float)(1.0 / sqrt(ss));
		for (int j = 0; j < d; j++)
			v[j] *= inv;
	}
}

/*
 * lab (np) = index of the best centroid of each point of P (np,d) against
 * C (L,d), by inner product, first index on ties.
 */
static void
assign(uint32_t *lab, const float *P, size_t np, const float *C, uint32_t L,
    int d, float *tile)
{
	size_t ab = ASSIGN_FLOATS / L;

	if (ab < 1)
		ab = 1;
	if (ab > 1024)
		ab = 1024;
	for (size_t i0 = 0; i0 < np; i0 += ab) {
		size_t b = np - i0 < ab ? np - i0 : ab;
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)b,
		    (int)L, d, 1.0f, P + i0 * d, d, C, d, 0.0f, tile, (int)L);
		for (size_t i = 0; i < b; i++)
			lab[i0 + i] = argmax(tile + i * L, L);
	}
}

/* Spherical k-means on T (nt,d) into C (L,d); nt >= L. */
static void
kmeans(float *C, const float *T, size_t nt, uint32_t L, int d,
    uint32_t iters, struct rng *rng)
{
	size_t ab = ASSIGN_FLOATS / L;
	float *tile = xmalloc((ab < 1 ? 1 : ab > 1024 ? 1024 : ab) * L *
	    sizeof(float));
	uint32_t *lab = xmalloc(nt * sizeof(*lab));
	double *sum = xmalloc((size_t)L * d * sizeof(*sum));
	size_t *cnt = xmalloc(L * sizeof(*cnt));

	/* T is already a random sample: its first L rows are the init. */
	memcpy(C, T, (size_t)L * d * sizeof(float));
	for (uint32_t c = 0; c < L; c++)
		normalise(C + (size_t)c * d, d);
	for (uint32_t it = 0; it < iters; it++) {
		assign(lab, T, nt, C, L, d, tile);
		memset(sum, 0, (size_t)L * d * sizeof(*sum));
		memset(cnt, 0, L * sizeof(*cnt));
		for (size_t i = 0; i < nt; i++) {
			double *sc = sum + (size_t)lab[i] * d;
			const float *x = T + i * d;
			for (int j = 0; j < d; j++)
				sc[j] += x[j];
			cnt[lab[i]]++;
		}
		for (uint32_t c = 0; c < L; c++) {
			float *cc = C + (size_t)c * d;
			if (cnt[c] == 0) {
				/* Re-seed from a random training vector. */
				size_t i = (size_t)(rng_unif(rng) * nt);
				memcpy(cc, T + i * d, d * sizeof(float));
			} else {
				for (int j = 0; j < d; j++)
					cc[j] = (float)sum[(size_t)c * d + j];
			}
			normalise(cc, d);
		}
	}
	free(cnt);
	free(sum);
	free(lab);
	free(tile);
}

static void topk_ivf(const struct retr *, const float *, size_t, size_t,
    uint32_t, uint32_t, struct retr_hit *, size_t *);

/* Recall of nprobe p on the tuning queries qs against gt (nq,k). */
static double
tune_recall(const struct retr *r, const uint32_t *qs, size_t nq, size_t k,
    const struct retr_hit *gt, const size_t *gn, uint32_t p,
    struct retr_hit *res)
{
	size_t hit = 0, tot = 0, c;

	for (size_t i = 0; i < nq; i++) {
		topk_ivf(r, r->X + (size_t)qs[i] * r->d, 1, k,
		    r->owner[qs[i]], p, res, &c);
		for (size_t a = 0; a < gn[i]; a++)
			for (size_t b = 0; b < c; b++)
				if (gt[i * k + a].row == res[b].row) {
					hit++;
					break;
				}
		tot += gn[i];
	}
	return tot ? (double)hit / (double)tot : 1.0;
}

/* Smallest nprobe reaching recall@k >= target on pool-vector queries. */
static uint32_t
tune_nprobe(const struct retr *r, double target, struct rng *rng)
{
	size_t nq = r->n < TUNE_Q ? r->n : TUNE_Q;
	size_t k = r->n < TUNE_K ? r->n : TUNE_K;
	struct retr_hit *gt = xmalloc(nq * k * sizeof(*gt));
	struct retr_hit *res = xmalloc(k * sizeof(*res));
	size_t *gn = xmalloc(nq * sizeof(*gn));
	uint32_t *qs = xmalloc(nq * sizeof(*qs)), L = r->nlist, lo = 0, hi;

	for (size_t i = 0; i < nq; i++) {
		qs[i] = (uint32_t)(rng_unif(rng) * (double)r->n);
		topk_ivf(r, r->X + (size_t)qs[i] * r->d, 1, k, r->owner[qs[i]],
		    L, gt + i * k, &gn[i]);
	}
	/* Double until reached, then bisect to within 1/16. */
	for (hi = 1; hi < L; hi *= 2) {
		if (tune_recall(r, qs, nq, k, gt, gn, hi, res) >= target)
			break;
		lo = hi;
	}
	if (hi > L)
		hi = L;
	while (hi - lo > 1 && (hi - lo) * 16 > hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (tune_recall(r, qs, nq, k, gt, gn, mid, res) >= target)
			hi = mid;
		else
			lo = mid;
	}
	free(qs);
	free(gn);
	free(res);
	free(gt);
	return hi;
}

/*
 * Moves row i of X (n rows of d) to row to[i], in place: each cycle of the
 * permutation is followed once, carrying one row at a time.
 */
static void
permute_rows(float *X, const uint32_t *to, size_t n, int d)
{
	size_t rb = (size_t)d * sizeof(float);
	float *a = xmalloc(rb), *b = xmalloc(rb), *t;
	uint8_t *done = xcalloc(n + 1, 1);

	for (size_t i = 0; i < n; i++) {
		if (done[i])
			continue;
		memcpy(a, X + i * d, rb);
		for (size_t j = to[i]; ; j = to[j]) {
			memcpy(b, X + j * d, rb);
			memcpy(X + j * d, a, rb);
			done[j] = 1;
			if (j == i)
				break;
			t = a;
			a = b;
			b = t;
		}
	}
	free(done);
	free(a);
	free(b);
}

/* The IVF lists over X, which the index takes and reorders in place. */
static void
build_ivf(struct retr *r, float *X, const uint32_t *owner,
    const uint64_t *row, const struct retr_opts *o)
{
	size_t n = r->n, nt;
	int d = r->d;
	uint32_t L, *perm, *lab;
	struct rng rng;

	L = o->nlist ? o->nlist : (uint32_t)lround(4.0 * sqrt((double)n));
	if (L < 1)
		L = 1;
	if (L > RETR_MAX_NLIST)
		L = RETR_MAX_NLIST;
	if (L > n)
		L = (uint32_t)n;
	r->nlist = L;

	nt = o->train_size ? o->train_size : (size_t)DEF_TRAIN_PER * L;
	if (nt < L)
		nt = L;
	if (nt > n)
		nt = n;

	/* Seeded sample without replacement: partial Fisher-Yates. */
	rng_seed(&rng, o->seed);
	perm = xmalloc(n * sizeof(*perm));
	for (size_t i = 0; i < n; i++)
		perm[i] = (uint32_t)i;
	float *T = xmalloc(nt * d * sizeof(float));
	for (size_t i = 0; i < nt; i++) {
		size_t j = i + (size_t)(rng_unif(&rng) * (double)(n - i));
		uint32_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
		memcpy(T + i * d, X + (size_t)perm[i] * d, d * sizeof(float));
	}
	free(perm);

	r->C = xmalloc((size_t)L * d * sizeof(float));
	kmeans(r->C, T, nt, L, d, o->kmeans_iters ? o->kmeans_iters :
	    DEF_ITERS, &rng);
	free(T);

	/* Assign everything, then a stable counting sort into lists. */
	size_t ab = ASSIGN_FLOATS / L;
	float *tile = xmalloc((ab < 1 ? 1 : ab > 1024 ? 1024 : ab) * L *
	    sizeof(float));
	lab = xmalloc(n * sizeof(*lab));
	assign(lab, X, n, r->C, L, d, tile);
	free(tile);

	r->lofs = xcalloc((size_t)L + 1, sizeof(*r->lofs));
	for (size_t i = 0; i < n; i++)
		r->lofs[lab[i] + 1]++;
	for (uint32_t c = 0; c < L; c++)
		r->lofs[c + 1] += r->lofs[c];
	size_t *fill = xmalloc((size_t)L * sizeof(*fill));
	memcpy(fill, r->lofs, (size_t)L * sizeof(*fill));
	r->owner = xmalloc(n * sizeof(*r->owner));
	r->row = xmalloc(n * sizeof(*r->row));
	r->pos = xmalloc(n * sizeof(*r->pos));
	for (size_t i = 0; i < n; i++) {
		size_t s = fill[lab[i]]++;
		r->owner[s] = owner[i];
		r->row[s] = row[i];
		r->pos[s] = (uint32_t)i;
		lab[i] = (uint32_t)s;	/* from here on: row i's slot */
	}
	free(fill);
	permute_rows(X, lab, n, d);
	r->X = X;
	free(lab);

	if (o->nprobe != 0)
		r->nprobe = o->nprobe < L ? o->nprobe : L;
	else
		r->nprobe = tune_nprobe(r, o->target_recall > 0 ?
		    o->target_recall : DEF_RECALL, &rng);
}

int
retr_build_take(struct retr **out, float **Xp, const uint32_t *owner,
    const uint64_t *row, size_t n, int d, const struct retr_opts *opts)
{
	struct retr_opts def;
	struct retr *r;
	enum retr_kind kind;
	float *X = Xp ? *Xp : NULL;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	if (opts == NULL) {
		retr_opts_default(&def);
		opts = &def;
	}
	if (X == NULL || owner == NULL || row == NULL || n == 0 ||
	    n > RETR_MAX_N || d < 1 || d > RETR_MAX_D)
		return -EINVAL;
	if (opts->nlist > RETR_MAX_NLIST || !(opts->target_recall >= 0) ||
	    opts->target_recall > 1)
		return -EINVAL;
	switch (opts->kind) {
	case RETR_AUTO:
		kind = n >= (opts->ivf_min_n ? opts->ivf_min_n :
		    DEF_IVF_MIN_N) ? RETR_IVF : RETR_EXACT;
		break;
	case RETR_EXACT:
	case RETR_IVF:
		kind = opts->kind;
		break;
	default:
		return -EINVAL;
	}
	if (!kern_finite(X, n * d))
		return -EDOM;

	r = xcalloc(1, sizeof(*r));
	r->kind = kind;
	r->n = n;
	r->d = d;
	r->dots = pick_dots();
	*Xp = NULL;
	if (kind == RETR_IVF) {
		build_ivf(r, X, owner, row, opts);
	} else {
		r->X = X;
		r->owner = xmalloc(n * sizeof(*r->owner));
		memcpy(r->owner, owner, n * sizeof(*r->owner));
		r->row = xmalloc(n * sizeof(*r->row));
		memcpy(r->row, row, n * sizeof(*r->row));
	}
	*out = r;
	return 0;
}

int
retr_build(struct retr **out, const float *X, const uint32_t *owner,
    const uint64_t *row, size_t n, int d, const struct retr_opts *opts)
{
	float *c = NULL;
	int rc;

	/* Checked here too, so that no copy is made of bad sizes. */
	if (X != NULL && n > 0 && n <= RETR_MAX_N && d >= 1 &&
	    d <= RETR_MAX_D) {
		c = xmalloc(n * (size_t)d * sizeof(float));
		memcpy(c, X, n * (size_t)d * sizeof(float));
	}
	rc = retr_build_take(out, &c, owner, row, n, d, opts);
	free(c);	/* NULL when taken */
	return rc;
}

/* --------------------------------------------------------------- search */

/* Per-call IVF scratch, sized for one query block of qb queries. */
struct ivf_scratch {
	struct heap	*hs;	/* (qb) */
	struct cand	*ca;	/* (qb,cap) heap storage */
	struct cand	*tmp;	/* (max(cap,nprobe)) drain buffer */
	struct cand	*pa;	/* (nprobe) probe heap */
	float		*cs;	/* (qb,L) centroid scores */
	float		*tile;	/* (LIST_CHUNK) list scores */
	uint32_t	*probe;	/* (qb,nprobe) probed lists */
	size_t		*np;	/* (qb) probes per query */
	size_t		*gofs;	/* (L+1) pair offsets by list */
	size_t		*gfill;	/* (L) */
	uint32_t	*gq;	/* (qb*nprobe) queries grouped by list */
};

static void
emit(const struct retr *r, struct heap *h, struct cand *tmp,
    struct retr_hit *out, size_t k, size_t *nout)
{
	size_t c = heap_drain(h, tmp), i;

	for (i = 0; i < c; i++) {
		out[i].score = tmp[i].s;
		out[i].owner = r->owner[tmp[i].slot];
		out[i].row = r->row[tmp[i].slot];
	}
	for (; i < k; i++) {
		out[i].score = -INFINITY;
		out[i].owner = RETR_NO_OWNER;
		out[i].row = RETR_NO_ROW;
	}
	if (nout != NULL)
		*nout = c;
}

/* Exact: queries Q (m,d), m <= QB, into out (m,k). */
static void
search_exact(const struct retr *r, const float *Q, size_t m, size_t k,
    uint32_t excl, struct retr_hit *out, size_t *nout, struct heap *hs,
    struct cand *ca, struct cand *tmp, float *tile)
{
	size_t n = r->n, cap = k < n ? k : n, bb;
	int d = r->d;

	for (size_t q = 0; q < m; q++)
		heap_init(&hs[q], ca + q * cap, cap, r, excl);
	bb = m == 1 ? BB_ONE : TILE_FLOATS / m;
	if (bb < BB_MIN)
		bb = BB_MIN;
	for (size_t i0 = 0; i0 < n; i0 += bb) {
		size_t b = n - i0 < bb ? n - i0 : bb;
		const float *Xb = r->X + i0 * d;
		if (m == 1)
			r->dots(tile, Xb, b, d, Q);
		else
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
			    (int)m, (int)b, d, 1.0f, Q, d, Xb, d, 0.0f, tile,
			    (int)b);
		for (size_t q = 0; q < m; q++)
			scan(&hs[q], tile + q * b, b, i0);
	}
	for (size_t q = 0; q < m; q++)
		emit(r, &hs[q], tmp, out + q * k, k, nout ? nout + q : NULL);
}

/*
 * IVF: queries Q (m,d), m <= QB, into out (m,k). The block's (query, list)
 * probe pairs are grouped by list and lists are visited in storage order,
 * so a list probed by several queries of the block is read from memory
 * once and scored from cache for the others. Visiting order does not change
 * results: the heap keeps the top k under a total order.
 */
static void
search_ivf(const struct retr *r, const float *Q, size_t m, size_t k,
    uint32_t excl, uint32_t nprobe, struct retr_hit *out, size_t *nout,
    struct ivf_scratch *sc)
{
	size_t n = r->n, cap = k < n ? k : n;
	uint32_t L = r->nlist;
	int d = r->d;
	struct heap ph;

	/* cs (m,L): query-centroid scores; the nprobe best lists each. */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)L, d,
	    1.0f, Q, d, r->C, d, 0.0f, sc->cs, (int)L);
	memset(sc->gofs, 0, ((size_t)L + 1) * sizeof(*sc->gofs));
	for (size_t q = 0; q < m; q++) {
		ph.a = sc->pa;
		ph.n = 0;
		ph.cap = nprobe;
		ph.thr = -INFINITY;
		ph.pos = NULL;
		ph.owner = NULL;
		scan(&ph, sc->cs + q * L, L, 0);
		for (size_t p = 0; p < ph.n; p++) {
			sc->probe[q * nprobe + p] = ph.a[p].slot;
			sc->gofs[ph.a[p].slot + 1]++;
		}
		sc->np[q] = ph.n;
	}
	/* Group the pairs by list (counting sort, queries ascending). */
	for (uint32_t c = 0; c < L; c++)
		sc->gofs[c + 1] += sc->gofs[c];
	memcpy(sc->gfill, sc->gofs, (size_t)L * sizeof(*sc->gfill));
	for (size_t q = 0; q < m; q++)
		for (size_t p = 0; p < sc->np[q]; p++)
			sc->gq[sc->gfill[sc->probe[q * nprobe + p]]++] =
			    (uint32_t)q;

	for (size_t q = 0; q < m; q++)
		heap_init(&sc->hs[q], sc->ca + q * cap, cap, r, excl);
	for (uint32_t c = 0; c < L; c++) {
		size_t lo = r->lofs[c], hi = r->lofs[c + 1];
		for (size_t g = sc->gofs[c]; g < sc->gofs[c + 1]; g++) {
			uint32_t q = sc->gq[g];
			for (size_t i0 = lo; i0 < hi; i0 += LIST_CHUNK) {
				size_t b = hi - i0 < LIST_CHUNK ? hi - i0 :
				    LIST_CHUNK;
				r->dots(sc->tile, r->X + i0 * d, b, d,
				    Q + (size_t)q * d);
				scan(&sc->hs[q], sc->tile, b, i0);
			}
		}
	}
	for (size_t q = 0; q < m; q++)
		emit(r, &sc->hs[q], sc->tmp, out + q * k, k,
		    nout ? nout + q : NULL);
}

static int
check_query(const struct retr *r, const float *Q, size_t m, size_t k,
    const void *out)
{
	if (r == NULL || Q == NULL || out == NULL || m < 1 ||
	    m > RETR_MAX_M || k < 1 || k > RETR_MAX_K)
		return -EINVAL;
	if (m * k > RETR_MAX_CAND)
		return -E2BIG;
	if (!kern_finite(Q, m * r->d))
		return -EDOM;
	return 0;
}

static void
topk_exact(const struct retr *r, const float *Q, size_t m, size_t k,
    uint32_t excl, struct retr_hit *out, size_t *nout)
{
	size_t cap = k < r->n ? k : r->n, qb = m < QB ? m : QB, bb;
	struct heap hs[QB];
	struct cand *ca, *tmp;
	float *tile;
	int d = r->d;

	bb = qb == 1 ? BB_ONE : TILE_FLOATS / qb;
	if (bb < BB_MIN)
		bb = BB_MIN;
	tile = xmalloc(qb * bb * sizeof(float));
	ca = xmalloc(qb * cap * sizeof(*ca));
	tmp = xmalloc(cap * sizeof(*tmp));
	for (size_t q0 = 0; q0 < m; q0 += qb) {
		size_t b = m - q0 < qb ? m - q0 : qb;
		search_exact(r, Q + q0 * d, b, k, excl, out + q0 * k,
		    nout ? nout + q0 : NULL, hs, ca, tmp, tile);
	}
	free(tmp);
	free(ca);
	free(tile);
}

static void
topk_ivf(const struct retr *r, const float *Q, size_t m, size_t k,
    uint32_t excl, uint32_t nprobe, struct retr_hit *out, size_t *nout)
{
	size_t cap = k < r->n ? k : r->n, qb = m < QB ? m : QB, lim;
	uint32_t L = r->nlist;
	struct heap hs[QB];
	struct ivf_scratch sc;
	int d = r->d;

	if (nprobe == 0)
		nprobe = r->nprobe;
	if (nprobe > L)
		nprobe = L;
	/* Keep the centroid score block within ASSIGN_FLOATS. */
	lim = ASSIGN_FLOATS / L;
	if (lim < 1)
		lim = 1;
	if (qb > lim)
		qb = lim;
	sc.hs = hs;
	sc.ca = xmalloc(qb * cap * sizeof(*sc.ca));
	sc.tmp = xmalloc((cap > nprobe ? cap : nprobe) * sizeof(*sc.tmp));
	sc.pa = xmalloc(nprobe * sizeof(*sc.pa));
	sc.cs = xmalloc(qb * L * sizeof(*sc.cs));
	sc.tile = xmalloc(LIST_CHUNK * sizeof(*sc.tile));
	sc.probe = xmalloc(qb * nprobe * sizeof(*sc.probe));
	sc.np = xmalloc(qb * sizeof(*sc.np));
	sc.gofs = xmalloc(((size_t)L + 1) * sizeof(*sc.gofs));
	sc.gfill = xmalloc((size_t)L * sizeof(*sc.gfill));
	sc.gq = xmalloc(qb * nprobe * sizeof(*sc.gq));
	for (size_t q0 = 0; q0 < m; q0 += qb) {
		size_t b = m - q0 < qb ? m - q0 : qb;
		search_ivf(r, Q + q0 * d, b, k, excl, nprobe, out + q0 * k,
		    nout ? nout + q0 : NULL, &sc);
	}
	free(sc.gq);
	free(sc.gfill);
	free(sc.gofs);
	free(sc.np);
	free(sc.probe);
	free(sc.tile);
	free(sc.cs);
	free(sc.pa);
	free(sc.tmp);
	free(sc.ca);
}

int
retr_topk(const struct retr *r, const float *Q, size_t m, size_t k,
    uint32_t excl, uint32_t nprobe, struct retr_hit *out, size_t *nout)
{
	int rc;

	if ((rc = check_query(r, Q, m, k, out)) != 0)
		return rc;
	if (r->kind == RETR_IVF)
		topk_ivf(r, Q, m, k, excl, nprobe, out, nout);
	else
		topk_exact(r, Q, m, k, excl, out, nout);
	return 0;
}

static int
cmp_score_row(const void *a, const void *b)
{
	const struct retr_hit *x = a, *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	if (x->row != y->row)
		return x->row < y->row ? -1 : 1;
	return 0;
}

/*
 * Keeps the first hit of each row in a (its best score written over it),
 * in place; returns the count. An open-addressing table of indexes.
 */
static size_t
dedupe_rows(struct retr_hit *a, size_t n)
{
	size_t cap = 16, w = 0;
	uint32_t *tab;

	while (cap < 2 * n)
		cap *= 2;
	tab = xmalloc(cap * sizeof(*tab));
	memset(tab, 0xff, cap * sizeof(*tab));	/* UINT32_MAX: empty */
	for (size_t i = 0; i < n; i++) {
		uint64_t x = a[i].row * 0x9e3779b97f4a7c15ULL;
		size_t h = (size_t)(x >> 32) & (cap - 1);

		for (;; h = (h + 1) & (cap - 1)) {
			if (tab[h] == UINT32_MAX) {
				tab[h] = (uint32_t)w;
				a[w++] = a[i];
				break;
			}
			if (a[tab[h]].row == a[i].row) {
				if (a[i].score > a[tab[h]].score)
					a[tab[h]].score = a[i].score;
				break;
			}
		}
	}
	free(tab);
	return w;
}

/* a[i] ranks below a[j] in the final order (score desc, row asc). */
static int
hit_below(const struct retr_hit *a, size_t i, size_t j)
{
	return cmp_score_row(&a[i], &a[j]) > 0;
}

static void
hit_sift(struct retr_hit *a, size_t n, size_t i)
{
	for (;;) {
		size_t c = 2 * i + 1;
		struct retr_hit t;

		if (c >= n)
			return;
		if (c + 1 < n && hit_below(a, c + 1, c))
			c++;
		if (!hit_below(a, c, i))
			return;
		t = a[i];
		a[i] = a[c];
		a[c] = t;
		i = c;
	}
}

/*
 * The k best of a (n) in the final order, sorted, at its start; returns
 * min(n, k). A heap of the k best so far (its root the worst of them).
 */
static size_t
best_k(struct retr_hit *a, size_t n, size_t k)
{
	if (n > k) {
		for (size_t i = k / 2; i-- > 0;)
			hit_sift(a, k, i);
		for (size_t i = k; i < n; i++)
			if (hit_below(a, 0, i)) {
				a[0] = a[i];
				hit_sift(a, k, 0);
			}
		n = k;
	}
	qsort(a, n, sizeof(*a), cmp_score_row);
	return n;
}

int
retr_search(const struct retr *r, const float *Q, size_t m, size_t k,
    uint32_t excl, struct retr_hit *out, size_t *nout)
{
	struct retr_hit *all;
	size_t *cnt, u = 0, w = 0;
	int rc;

	if (nout == NULL)
		return -EINVAL;
	*nout = 0;
	if ((rc = check_query(r, Q, m, k, out)) != 0)
		return rc;
	all = xmalloc(m * k * sizeof(*all));
	cnt = xmalloc(m * sizeof(*cnt));
	if ((rc = retr_topk(r, Q, m, k, excl, 0, all, cnt)) != 0)
		goto done;
	/* Compact the real hits. */
	for (size_t q = 0; q < m; q++)
		for (size_t i = 0; i < cnt[q]; i++)
			all[u++] = all[q * k + i];
	/*
	 * Dedupe by row, keeping each row's best score, then the k best.
	 * A hash of the rows and a k-heap, not two sorts of all m*k hits:
	 * the sorts were 13 % of cloudd's CPU in a 2,000-device round.
	 */
	w = dedupe_rows(all, u);
	w = best_k(all, w, k);
	memcpy(out, all, w * sizeof(*out));
	*nout = w;
done:
	free(cnt);
	free(all);
	return rc;
}

/* ---------------------------------------------------------- similar users */

int
retr_users_build(struct retr **out, const float *X, const uint32_t *owner,
    size_t n, int d, uint32_t n_users)
{
	struct retr_opts o;
	double *sum;
	size_t *cnt, nu = 0;
	float *U;
	uint32_t *uo;
	uint64_t *ur;
	int rc;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	if (X == NULL || owner == NULL || n == 0 || n > RETR_MAX_N || d < 1 ||
	    d > RETR_MAX_D || n_users == 0 || n_users > RETR_MAX_N)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (owner[i] >= n_users)
			return -EINVAL;
	if (!kern_finite(X, n * d))
		return -EDOM;
	sum = xcalloc((size_t)n_users * d, sizeof(*sum));
	cnt = xcalloc(n_users, sizeof(*cnt));
	for (size_t i = 0; i < n; i++) {
		double *s = sum + (size_t)owner[i] * d;
		for (int j = 0; j < d; j++)
			s[j] += X[i * d + j];
		cnt[owner[i]]++;
	}
	U = xmalloc((size_t)n_users * d * sizeof(*U));
	uo = xmalloc(n_users * sizeof(*uo));
	ur = xmalloc(n_users * sizeof(*ur));
	for (uint32_t u = 0; u < n_users; u++) {
		if (cnt[u] == 0)
			continue;
		for (int j = 0; j < d; j++)
			U[nu * d + j] = (float)(sum[(size_t)u * d + j] /
			    (double)cnt[u]);
		normalise(U + nu * d, d);
		uo[nu] = u;
		ur[nu] = u;
		nu++;
	}
	retr_opts_default(&o);
	o.kind = RETR_EXACT;
	rc = nu ? retr_build(out, U, uo, ur, nu, d, &o) : -EINVAL;
	free(ur);
	free(uo);
	free(U);
	free(cnt);
	free(sum);
	return rc;
}

int
retr_similar_users(const struct retr *users, const float *Q, size_t m,
    uint32_t self, size_t k, uint32_t *uids, float *scores, size_t *nout)
{
	struct retr_hit *hits;
	double *mean;
	float *q;
	size_t nf = 0;
	int d, rc;

	if (nout == NULL)
		return -EINVAL;
	*nout = 0;
	if (users == NULL || Q == NULL || uids == NULL || m < 1 ||
	    m > RETR_MAX_M || k < 1 || k > RETR_MAX_K)
		return -EINVAL;
	d = users->d;
	if (!kern_finite(Q, m * d))
		return -EDOM;
	mean = xcalloc(d, sizeof(*mean));
	for (size_t i = 0; i < m; i++)
		for (int j = 0; j < d; j++)
			mean[j] += Q[i * d + j];
	q = xmalloc(d * sizeof(*q));
	double ss = 0;
	for (int j = 0; j < d; j++)
		ss += mean[j] * mean[j];
	if (ss == 0 || !isfinite(ss)) {
		free(q);
		free(mean);
		return -EDOM;
	}
	for (int j = 0; j < d; j++)
		q[j] = (float)(mean[j] / sqrt(ss));
	free(mean);
	hits = xmalloc(k * sizeof(*hits));
	rc = retr_topk(users, q, 1, k, self, 0, hits, &nf);
	if (rc == 0) {
		for (size_t i = 0; i < nf; i++) {
			uids[i] = (uint32_t)hits[i].row;
			if (scores != NULL)
				scores[i] = hits[i].score;
		}
		*nout = nf;
	}
	free(hits);
	free(q);
	return rc;
}
