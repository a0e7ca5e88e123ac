/*
 * synth: the synthetic drift generator with each impression's true click
 * probability (dccl-data, dccl-distill, tests).
 */
#ifndef SCRIPTS_TOOLS_SYNTH_H
#define SCRIPTS_TOOLS_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "shared/data/dataset.h"

/* --- synthetic drift data ------------------------------------------------ */

struct synth_opts {
	uint32_t n_users, n_items, n_clusters, n_genres;
	uint32_t min_per_user, max_per_user;	/* samples per user */
	double	 count_tail;	/* 0: counts uniform in [min, max]; a > 0:
				   Pareto, floor(min * U^(-1/a)) capped at
				   max (heavy-tailed, DCCL's setting) */
	double	 base_ctr;	/* sets the global logit intercept */
	double	 bias_std;	/* per-user click bias ~ N(0, bias_std) (logit) */
	double	 affinity_std;	/* cluster x item affinity scale (logit) */
	double	 genre_weight;	/* share of affinity variance from genres */
	double	 drift_mean;	/* per-user bias shift in the drifted part: */
	double	 drift_std;	/*   d_u ~ N(drift_mean, drift_std) (logit) */
	double	 taste_drift;	/* P(user switches cluster in drifted part) */
	double	 drift_start;	/* drift begins at floor(drift_start*n)+; .70 */
	double	 noise;		/* per-impression logit noise std */
	double	 item_zipf;	/* item popularity exponent; 0 = uniform */
	int	 hist_k;	/* H */
	uint64_t seed;
	/*
	 * Side features (off by default, so that the default data stay as
	 * they were): a user-side "segment", the user's taste cluster, and
	 * an item-side "category", the cluster with the highest affinity for
	 * the item; each replaced by a uniform draw with probability
	 * side_noise. Drawn from streams of their own: the other data do not
	 * change.
	 */
	int	 side;
	double	 side_noise;	/* 0.3 */
};

/* Per-user ground truth. */
struct synth_truth {
	uint32_t cluster;	/* taste cluster before the drift */
	uint32_t cluster_late;	/* after (== cluster unless taste drift) */
	float	 bias;		/* b_u, logit */
	float	 drift;		/* d_u, logit shift in the drifted part */
	uint32_t n, n_early;	/* samples; those before the drift */
	float	 p_early;	/* mean true P(click) before / after drift */
	float	 p_late;
};

void	synth_opts_default(struct synth_opts *o);
/*
 * Generates a canonical dataset: P(click) = sigmoid(logit(base_ctr) + b_u +
 * [d_u if drifted] + aff(cluster_u, item) + noise * N(0,1)), where
 * aff(c, i) = affinity_std * (sqrt(1-gw) z_ci + sqrt(gw) mean_{g in i} t_cg),
 * z, t ~ N(0,1). Timestamps strictly increase per user; with drift_start =
 * the split's pool fraction the drift starts exactly at the local part.
 * Items a user sees are distinct when max_per_user <= n_items / 2.
 * ds and meta are overwritten (pass them empty); *truth (n_users entries)
 * is allocated for the caller (free()). meta gets item genres and genre
 * names "g0".. (user/item raw = dense). Deterministic in o->seed; user u's
 * samples come from their own RNG stream (seed, u).
 * Returns -EINVAL on bad options, -E2BIG if sizes exceed bounds.
 */
int	dataset_synth(struct dataset *ds, struct dataset_meta *meta,
	    struct synth_truth **truth, const struct synth_opts *o);
/*
 * Same, and when p_true != NULL also each sample's true click probability
 * (the sigmoid above, noise included: ds->n floats, allocated for the
 * caller), from which an oracle's metrics can be computed.
 */
int	dataset_synth_p(struct dataset *ds, struct dataset_meta *meta,
	    struct synth_truth **truth, float **p_true,
	    const struct synth_opts *o);

#endif
