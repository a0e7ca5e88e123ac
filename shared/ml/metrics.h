/*
 * metrics: evaluation measures for CTR and ranking, accumulated in double.
 * Pure functions over caller arrays; any thread. Functions that sort
 * allocate scratch with xmalloc (OOM is fatal) and free it before return.
 *
 * Labels: y >= 0.5 counts as positive for AUC/GAUC; logloss uses y as is
 * (soft labels allowed). Scores must not be NaN (NaN -> result NaN).
 */
#ifndef SHARED_METRICS_H
#define SHARED_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_EPS 1e-7	/* logloss clips p to [eps, 1 - eps] */

/* Mean binary cross-entropy of p (n) against y (n); 0 when n = 0. */
double	metrics_logloss(const float *p, const float *y, size_t n);

/*
 * Exact ROC AUC = P(score_pos > score_neg) + 0.5 P(tie), O(n log n).
 * Returns NAN when there is no positive or no negative.
 */
double	metrics_auc(const float *score, const float *y, size_t n);

/*
 * GAUC: impression-weighted mean of per-user AUC over users that have both
 * classes: sum_u n_u AUC_u / sum_u n_u. user (n) ids must be < n_users.
 * *n_used (may be NULL) gets the number of users counted.
 * per_user (may be NULL; n_users entries) gets each user's AUC, NAN for
 * users without both classes; weight (may be NULL; n_users) gets n_u for
 * counted users and 0 otherwise. Returns NAN when no user counts.
 */
double	metrics_gauc(const float *score, const float *y, const uint32_t *user,
	    size_t n, uint32_t n_users, size_t *n_used, double *per_user,
	    double *weight);

/*
 * Ranking one positive against n_neg negatives. The rank is 0-based and
 * pessimistic: rank = #{neg > pos} + #{neg == pos}, so a constant scorer
 * ranks last rather than first.
 */
size_t	metrics_rank(float pos, const float *neg, size_t n_neg);
/* 1 if rank < k else 0. */
double	metrics_hr_at(size_t rank, size_t k);
/* 1 / log2(rank + 2) if rank < k else 0. */
double	metrics_ndcg_at(size_t rank, size_t k);

struct metrics_ci {
	double	 mean;		/* (weighted) mean of d_i = a_i - b_i */
	double	 lo, hi;	/* 2.5 % and 97.5 % bootstrap percentiles */
	size_t	 n;		/* pairs used (both finite, weight > 0) */
	double	 share_better;	/* share (unweighted) of pairs with d > 0 */
	double	 share_worse;	/* ... with d < 0 */
};

/*
 * Paired bootstrap of the mean of per-user differences a_i - b_i: B
 * resamples of the n pairs with replacement, each giving the (w-weighted,
 * if w != NULL) mean; lo/hi are the 2.5/97.5 percentiles (linear
 * interpolation). Pairs with a NaN or w_i <= 0 are dropped first.
 * Deterministic in seed. Returns 0, or -EINVAL (B < 1, or no pair left).
 */
int	metrics_paired_bootstrap(const double *a, const double *b,
	    const double *w, size_t n, int B, uint64_t seed,
	    struct metrics_ci *out);

/*
 * Mean of d[0..n) and its standard error when the values come in groups
 * that are not independent (one user's samples): the cluster-robust
 * se = sqrt(G / (G - 1) * sum_g (S_g - n_g mean)^2) / n, S_g and n_g the
 * sum and count of group g, G the number of groups; INFINITY for one
 * group. Returns 0, or -EINVAL (n == 0 or a value not finite).
 */
int	metrics_clustered_mean(const double *d, const uint32_t *group,
	    size_t n, double *mean, double *se);

/* Mean and sample standard deviation (n - 1; 0 when n < 2) of x (n). */
void	metrics_mean_std(const double *x, size_t n, double *mean, double *std);

#endif
