/*
 * evalagg: the evaluation aggregator behind tools/dccl-eval. It reads the
 * prediction files the devices write (deviced/learn.c), computes each
 * method's metrics per run (one run = one seed), summarizes them across
 * runs (mean and sample std) and compares every method with a baseline
 * ("cloud") by a paired per-user bootstrap. Plain data work with no global
 * state: any thread may use objects it owns. Nothing here logs; fallible
 * functions return 0 or a negative errno and put "FILE:LINE: what" (or
 * another one-line reason) into a caller buffer.
 *
 * Prediction file: one line per scored test sample, no header (a first
 * line "method,user,item,label,score" is skipped), empty lines ignored:
 *   method,user,item,label,score
 *   cloud,17,2571,1,0.734
 * method: 1..EVALAGG_NAME_MAX-1 bytes of [A-Za-z0-9_.+-]; user, item:
 * decimal ids < EVALAGG_ID_MAX; label: a number in [0, 1] (>= 0.5 counts
 * as positive); score: a finite number (a probability for logloss).
 *
 * Metrics of one method in one run (all rows of all devices pooled):
 *   GAUC      impression-weighted mean of per-user AUC over users with both
 *             classes (metrics_gauc);
 *   AUC       over all rows; logloss over all rows (NaN when any score is
 *             outside [0, 1], i.e. the method does not emit probabilities);
 *   improved  share of users whose AUC is strictly above the baseline's,
 *             among users with a defined AUC under both (users missing from
 *             either method are left out); "worse" likewise;
 *   LT-GAUC   GAUC over the long-tail users only (evalagg_tail);
 *   HR@K, NDCG@K (ranking) each positive row ranked against its block of
 *             negatives: the negative rows of the same user right before
 *             it in file order (dccl-data writes each test positive after
 *             negatives of its own); a positive right after another
 *             positive uses the last block (the older layout, one block of
 *             negatives per user, ranks every positive against it)
 *             (metrics_rank, pessimistic ties), then averaged over all
 *             ranked positives of all users; positives with no negative
 *             before them are not ranked (counted in n_unranked).
 * Across runs each metric gets the mean and the sample standard deviation
 * over the runs in which the method appears.
 *
 * Paired interval against the baseline, per user u: d_u = the mean over
 * runs of (metric_u(method) - metric_u(baseline)), taken over the runs in
 * which u's metric is defined under both; weight w_u = mean impressions
 * (GAUC: P_u + N_u) or mean positives (HR, NDCG: P_u) over those runs.
 * metrics_paired_bootstrap() then resamples users: the interval is for the
 * w-weighted mean of d_u, which is the GAUC (HR, NDCG) difference when the
 * users are the same in every run. The same for the long-tail users only
 * (LT-GAUC) and for per-user logloss (weight: rows; the overall logloss
 * difference when the users are the same in every run).
 * Family-wise rule: each comparison also gets a p-value, two-sided, from
 * the bootstrap standard error (z = mean / sd of the resampled means, the
 * same resamples as the interval), and the p-values of all comparisons of
 * one table (every method but the baseline and the reference, every
 * comparison column of the task) are Holm-adjusted together.
 */
#ifndef SHARED_EVALAGG_H
#define SHARED_EVALAGG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "shared/ml/metrics.h"

#define EVALAGG_NAME_MAX	64
#define EVALAGG_ID_MAX		(1u << 27)	/* bounds per-user arrays */
#define EVALAGG_LINE_MAX	4096

enum evalagg_task {
	EVALAGG_CTR = 0,
	EVALAGG_RANKING,
};

/* Per-run metrics; index into evalagg_stats.v and evalagg_row.mean/std. */
enum evalagg_metric {
	EVALAGG_GAUC = 0,
	EVALAGG_AUC,
	EVALAGG_LOGLOSS,
	EVALAGG_IMPROVED,	/* share of users, in [0, 1] */
	EVALAGG_WORSE,
	EVALAGG_LT_GAUC,
	EVALAGG_HR,
	EVALAGG_NDCG,
	EVALAGG_N_METRICS
};

/* Paired comparisons against the baseline. */
enum evalagg_cmp {
	EVALAGG_CMP_GAUC = 0,
	EVALAGG_CMP_HR,		/* ranking only */
	EVALAGG_CMP_NDCG,	/* ranking only */
	EVALAGG_CMP_LT_GAUC,	/* long-tail users only */
	EVALAGG_CMP_LOGLOSS,	/* per-user logloss, weight rows */
	EVALAGG_N_CMP
};

/* One method's rows of one run (struct of arrays, n rows). */
struct evalagg_rows {
	char	 method[EVALAGG_NAME_MAX];
	size_t	 n, cap;
	uint32_t *user, *item;
	float	*label, *score;
};

/* One run (seed): every method's rows, methods in order of appearance. */
struct evalagg_run {
	struct evalagg_rows *m;
	size_t	 n_m;
	uint32_t n_users;	/* largest user id seen + 1 */
	size_t	 n_files;
};

/* Per-user results of one method in one run (arrays of n_users). */
struct evalagg_stats {
	double	 v[EVALAGG_N_METRICS];	/* NaN where undefined */
	uint32_t n_users;
	double	*auc, *w;		/* per-user AUC (NaN) and P_u + N_u */
	double	*hr, *ndcg, *npos;	/* ranking: per-user means, P_u */
	double	*ll, *nrow;		/* per-user logloss (NaN), rows */
	size_t	 n_rows, n_present;	/* users with >= 1 row */
	size_t	 n_auc_users;		/* users with both classes */
	size_t	 n_lt_users;		/* tail users with both classes */
	size_t	 n_ranked, n_unranked;	/* positives (ranking) */
	size_t	 n_cmp;			/* users compared for improved */
};

struct evalagg_opts {
	enum evalagg_task task;
	const char *baseline;		/* "cloud" */
	double	 tail_frac;		/* 0.2 */
	int	 k;			/* 10: HR@k, NDCG@k */
	int	 boot;			/* 1000 resamples */
	uint64_t boot_seed;		/* 1 */
	const char *reference;		/* row outside the Holm family, e.g.
					   "oracle"; NULL: none */
};

/* Result line of one method. */
struct evalagg_row {
	char	 method[EVALAGG_NAME_MAX];
	int	 is_baseline;
	size_t	 n_runs;		/* runs in which the method appears */
	size_t	 n_users;		/* users with rows, union over runs */
	double	 mean[EVALAGG_N_METRICS], std[EVALAGG_N_METRICS];
	int	 has_ci[EVALAGG_N_CMP];
	struct metrics_ci ci[EVALAGG_N_CMP];
	double	 p[EVALAGG_N_CMP];	/* two-sided, unadjusted */
	double	 p_holm[EVALAGG_N_CMP];	/* Holm over the table; NaN: none */
};

/* Extra per-method columns (device time, memory, bytes...): means. */
struct evalagg_extra {
	char	**col;			/* n_col names, order of appearance */
	size_t	 n_col;
	char	**method;		/* n_method names */
	size_t	 n_method;
	double	*sum, *cnt;		/* n_method x n_col */
};

struct evalagg_result {
	enum evalagg_task task;
	struct evalagg_row *row;	/* baseline first */
	size_t	 n_row;
	size_t	 n_runs;
	size_t	 n_users;		/* users with baseline rows */
	size_t	 n_tail;		/* long-tail users selected */
	int	 tail_from_counts;	/* 1: --user-counts, 0: test rows */
	double	 tail_frac;
	uint32_t tail_max_count;	/* largest count inside the tail */
	int	 k, boot;
	size_t	 n_family;		/* comparisons in the Holm family */
	char	 baseline[EVALAGG_NAME_MAX];
	char	 reference[EVALAGG_NAME_MAX];
};

void	evalagg_opts_default(struct evalagg_opts *o);

/* --- reading ------------------------------------------------------------- */

void	evalagg_run_init(struct evalagg_run *r);
void	evalagg_run_fini(struct evalagg_run *r);
/*
 * Drops the rows of users u with (u < n && set[u]) == !keep_in_set: keep
 * only the users in set (keep_in_set = 1) or only those outside it (0).
 */
void	evalagg_run_filter(struct evalagg_run *r, const uint8_t *set,
	    uint32_t n, int keep_in_set);
/* Rows of method name in r, or NULL. */
struct evalagg_rows *evalagg_run_find(struct evalagg_run *r,
	    const char *name);
/*
 * Appends the prediction lines of fp (name is used in messages) to r.
 * Returns 0, or -EINVAL with "name:line: what" in err. On failure rows
 * read before the bad line stay in r (callers give up on the run).
 */
int	evalagg_read_fp(struct evalagg_run *r, FILE *fp, const char *name,
	    char *err, size_t errlen);
int	evalagg_read_file(struct evalagg_run *r, const char *path, char *err,
	    size_t errlen);
/*
 * Reads every "*.csv" file of dir in name order. -ENOENT (with a message)
 * when dir cannot be opened or holds no .csv file.
 */
/*
 * Calls fn(arg, path, name) for each file of dir whose name ends in suffix
 * (not starting with '.'), in name order, until fn returns non-zero.
 * Returns the number of files, fn's negative return, or -errno (message in
 * err) when dir cannot be opened.
 */
int	evalagg_each_file(const char *dir, const char *suffix,
	    int (*fn)(void *arg, const char *path, const char *name),
	    void *arg, char *err, size_t errlen);
int	evalagg_read_dir(struct evalagg_run *r, const char *dir, char *err,
	    size_t errlen);

/*
 * User counts file, "user,n_local" lines (a header line starting with a
 * letter and empty lines are skipped). *counts (n_users entries, UINT32_MAX
 * for users not listed) is allocated for the caller (free()).
 */
int	evalagg_read_counts(const char *path, uint32_t **counts,
	    uint32_t *n_users, char *err, size_t errlen);

/* --- metrics ------------------------------------------------------------- */

/*
 * The long-tail set: among users with present[u] != 0, the
 * round(frac * n_present) with the smallest count[u], ties broken by the
 * smaller user id (deterministic). tail (n_users) gets 1 for them. Returns
 * the number chosen; *max_count (may be NULL) the largest count chosen.
 * Users with count UINT32_MAX are never chosen (and not counted).
 */
size_t	evalagg_tail(const uint32_t *count, const uint8_t *present,
	    uint32_t n_users, double frac, uint8_t *tail,
	    uint32_t *max_count);

void	evalagg_stats_fini(struct evalagg_stats *st);
/*
 * Metrics of rows over user ids < n_users. base (may be NULL) is the
 * baseline's stats of the same run, for improved/worse; tail (may be NULL)
 * marks the long-tail users. st is overwritten (fini it afterwards).
 */
void	evalagg_stats_compute(struct evalagg_stats *st,
	    const struct evalagg_rows *rows, uint32_t n_users,
	    const struct evalagg_stats *base, const uint8_t *tail,
	    const struct evalagg_opts *o);

/*
 * The whole aggregation over runs[0..n_runs). order (n_order names, may
 * be NULL) fixes the row order after the baseline; methods not named there
 * follow alphabetically; named methods without rows are skipped. counts
 * (may be NULL; else n_runs arrays, counts[r] of n_counts[r] entries)
 * selects each run's long tail by local sample counts, else by each
 * user's number of baseline test rows (ctr) or positive test rows
 * (ranking) in that run. Returns 0, or -EINVAL (no baseline rows in some
 * run, a user missing from counts, bad options) with a message in err.
 * res is overwritten; free with evalagg_result_fini.
 */
int	evalagg_compute(struct evalagg_result *res, struct evalagg_run *runs,
	    size_t n_runs, const struct evalagg_opts *o,
	    const char *const *order, size_t n_order,
	    const uint32_t *const *counts, const uint32_t *n_counts,
	    char *err, size_t errlen);
/* Holm step-down adjustment of p[0..n) into adj (NaN entries skipped). */
void	evalagg_holm(const double *p, size_t n, double *adj);
void	evalagg_result_fini(struct evalagg_result *res);

/* --- extra columns ------------------------------------------------------- */

void	evalagg_extra_init(struct evalagg_extra *x);
void	evalagg_extra_fini(struct evalagg_extra *x);
/*
 * Adds the "method,column,value" lines of path (a first line
 * "method,column,value" and empty lines are skipped); each cell is the mean
 * of all values given for it. -EINVAL with "path:line: ..." on a bad line
 * (the lines before it stay added).
 */
int	evalagg_extra_read(struct evalagg_extra *x, const char *path,
	    char *err, size_t errlen);
/* Same for every "*.extra" file of dir (deviced writes one per device);
 * none is fine. */
int	evalagg_extra_read_dir(struct evalagg_extra *x, const char *dir,
	    char *err, size_t errlen);
/* Mean of method's column c, NaN when absent. */
double	evalagg_extra_get(const struct evalagg_extra *x, const char *method,
	    size_t c);

/* --- output -------------------------------------------------------------- */

/*
 * Markdown: a table in the evaluation protocol's layout (ctr: GAUC, AUC, logloss, users
 * improved, long-tail GAUC, ΔGAUC interval; ranking: HR@K, NDCG@K, GAUC and
 * the three intervals), extra columns appended, then notes. x may be NULL.
 */
void	evalagg_write_md(FILE *fp, const struct evalagg_result *res,
	    const struct evalagg_extra *x, const char *title);
/* CSV: a header line, then one line per method, full precision. */
void	evalagg_write_csv(FILE *fp, const struct evalagg_result *res,
	    const struct evalagg_extra *x);

#endif
