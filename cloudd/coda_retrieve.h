/*
 * coda_retrieve: the cloud's sample-retrieval index (CoDA coarse matching;
 * the symbols keep their retr_ prefix). An
 * immutable index over n float32 representation vectors of dimension d, each
 * tagged with an owner (user id) and a pool row id. Search answers "the top-k
 * pool rows most similar (inner product) to these query vectors", never
 * returning the requesting user's own rows. Callers L2-normalise both sides
 * for cosine similarity.
 *
 * Two kinds: EXACT (blocked sgemm + per-query bounded heap) and IVF (spherical
 * k-means coarse quantiser, contiguous inverted lists, nprobe lists scanned).
 *
 * Threads: build on any thread. A built index is read-only: any number of
 * threads may search the same index at once (each call allocates its own
 * scratch). The caller is responsible for OpenBLAS threading; on the 2-core
 * target call openblas_set_num_threads(1) once at startup.
 *
 * Errors are negative errno values, nothing is logged: -EINVAL for bad sizes
 * or NULL arguments, -EDOM for NaN/Inf in vectors (build data or queries are
 * rejected as a whole, nothing is searched), -E2BIG when m*k exceeds
 * RETR_MAX_CAND.
 */
#ifndef CLOUDD_CODA_RETRIEVE_H
#define CLOUDD_CODA_RETRIEVE_H

#include <stddef.h>
#include <stdint.h>

#define RETR_MAX_D	4096		/* vector dimension */
#define RETR_MAX_N	(1u << 30)	/* vectors in one index */
#define RETR_MAX_K	100000		/* results per query */
#define RETR_MAX_M	65536		/* queries per call */
#define RETR_MAX_CAND	(1u << 22)	/* m * k per call */
#define RETR_MAX_NLIST	65536
#define RETR_NO_OWNER	UINT32_MAX	/* exclude_owner: exclude nothing */
#define RETR_NO_ROW	UINT64_MAX	/* padding in unfilled result slots */
#define RETR_NPROBE_ALL	UINT32_MAX	/* probe every list (exact on IVF) */

enum retr_kind {
	RETR_AUTO = 0,	/* IVF when n >= opts.ivf_min_n, else EXACT */
	RETR_EXACT,
	RETR_IVF,
};

/*
 * Zero fields mean "use the default". With nprobe == 0 an IVF build tunes
 * its default nprobe: 128 pool vectors (seeded sample) are searched with
 * their owner excluded, exactly and with nprobe = 1, 2, 4, ... then by
 * bisection, and the smallest nprobe whose recall@100 reaches target_recall
 * is kept (about 1 s on 1M x 32). This adapts to how clustered the data is;
 * fixed nprobes that suit clustered data lose half the recall on
 * unclustered data. The 0.96 default leaves room for the sampling error of
 * 128 queries against a 0.95 goal.
 */
struct retr_opts {
	enum retr_kind	kind;
	size_t		ivf_min_n;	/* AUTO threshold; default 65536 */
	uint32_t	nlist;		/* default round(4 * sqrt(n)), <= n */
	uint32_t	nprobe;		/* default: auto-tuned, see below */
	double		target_recall;	/* auto-tune goal; default 0.96 */
	uint32_t	kmeans_iters;	/* default 10 */
	uint32_t	train_size;	/* k-means sample; default 32 * nlist */
	uint64_t	seed;		/* k-means sampling; same seed, same index */
};

struct retr_hit {
	float	 score;		/* inner product; -INFINITY in padding */
	uint32_t owner;		/* RETR_NO_OWNER in padding */
	uint64_t row;		/* RETR_NO_ROW in padding */
};

struct retr;

/* Fills *o with the documented defaults (all zero but ivf_min_n, seed 1). */
void	retr_opts_default(struct retr_opts *o);

/*
 * Builds an index over X (n,d) row-major, owner (n) and row (n). The index
 * copies everything it needs; the caller keeps ownership of the inputs. opts
 * may be NULL (defaults). Deterministic for a given seed. On success *out is
 * the new index; on failure *out is NULL. Any thread.
 * Errors: -EINVAL (n == 0, n > RETR_MAX_N, d outside 1..RETR_MAX_D, NULL
 * arrays, bad kind), -EDOM (a NaN/Inf in X).
 */
int	retr_build(struct retr **out, const float *X, const uint32_t *owner,
	    const uint64_t *row, size_t n, int d, const struct retr_opts *opts);

/*
 * retr_build for a caller that no longer needs X: on success the index
 * takes *X (and may reorder it) and *X becomes NULL, so a large pool is
 * not held twice; on failure *X stays the caller's.
 */
int	retr_build_take(struct retr **out, float **X, const uint32_t *owner,
	    const uint64_t *row, size_t n, int d, const struct retr_opts *opts);

/* Frees the index; NULL is a no-op. No search may be running on it. */
void	retr_free(struct retr *r);

/* Introspection, any thread. */
size_t	retr_size(const struct retr *r);
int	retr_dim(const struct retr *r);
enum retr_kind retr_kind(const struct retr *r);	/* EXACT or IVF */
uint32_t retr_nlist(const struct retr *r);		/* 0 for EXACT */
uint32_t retr_nprobe(const struct retr *r);		/* 0 for EXACT */

/* Copies the IVF centroids into C (nlist,d); -EINVAL for EXACT. */
int	retr_centroids(const struct retr *r, float *C);

/*
 * Per-query top-k. Q (m,d) row-major. out (m,k): row i holds query i's hits,
 * best first (score descending, ties by index position ascending), and
 * nout[i] (may be NULL) how many are real; the rest are padding. Rows owned
 * by exclude_owner are skipped (RETR_NO_OWNER: skip nothing). nprobe applies
 * to IVF only: 0 = the index default, RETR_NPROBE_ALL = every list. Any
 * thread, concurrently with other searches.
 * Errors: -EINVAL, -EDOM (NaN/Inf in Q), -E2BIG (m * k > RETR_MAX_CAND).
 */
int	retr_topk(const struct retr *r, const float *Q, size_t m, size_t k,
	    uint32_t exclude_owner, uint32_t nprobe, struct retr_hit *out,
	    size_t *nout);

/*
 * Merged search for the daemon: up to k distinct rows ranked by their best
 * score over the m queries (score descending, ties by row ascending). This
 * is exact with respect to retr_topk: each query's top-k is taken, the m*k
 * candidates are deduplicated by row keeping the best score, and the k best
 * are kept. out has room for k hits; *nout gets the number filled. Uses the
 * index's default nprobe. Any thread. Errors as retr_topk.
 */
int	retr_search(const struct retr *r, const float *Q, size_t m, size_t k,
	    uint32_t exclude_owner, struct retr_hit *out, size_t *nout);

/*
 * Similar users. retr_users_build computes each user's mean vector over the
 * samples X (n,d) owned by it (owner[i] < n_users), L2-normalises it, and
 * builds an EXACT index whose owner and row are the user id; users without
 * samples are left out. Errors as retr_build, and -EINVAL when an owner id
 * is >= n_users or no user has samples.
 */
int	retr_users_build(struct retr **out, const float *X,
	    const uint32_t *owner, size_t n, int d, uint32_t n_users);

/*
 * The k users most similar to the requester, whose sample vectors are Q
 * (m,d): their normalised mean is the query. The user `self` is never
 * returned. uids (k) and scores (k, may be NULL) get the results best first;
 * *nout the number filled. Any thread. Errors as retr_topk, and -EDOM when
 * the mean of Q is zero.
 */
int	retr_similar_users(const struct retr *users, const float *Q, size_t m,
	    uint32_t self, size_t k, uint32_t *uids, float *scores,
	    size_t *nout);

#endif
