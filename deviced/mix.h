/*
 * mix: continuous shrinkage of an adaptation in logit space. The device
 * serves sigma(z0 + a (z1 - z0)), z0 the cloud model's logit and z1 the
 * adapted model's, with the weight a chosen by the learning job's
 * cross-validation over held-out local samples (learn.c, the "-mix"
 * rows). a = 0 is the cloud model, a = 1 the adapted one. Unlike the
 * partial step in parameter space (partial.h), the mixture is exact: the
 * order of a pair (i, j) under it is the sign of d0 + a (d1 - d0), linear
 * in a, so it flips at most once, and a small a reorders only the pairs
 * the cloud model nearly ties.
 */
#ifndef DEVICED_MIX_H
#define DEVICED_MIX_H

#include <stddef.h>

/* The weights the cross-validation tries: 0, 1/8, 1/4, 1/2, 3/4, 1. */
#define MIX_NA	6
extern const double mix_alpha[MIX_NA];

/*
 * Held-out evidence per weight, summed over CV folds: logloss gains over
 * the cloud model (their sum and sum of squares) and the net (click,
 * no-click) pairs ordered better than by the cloud model.
 */
struct mix_ev {
	int	have;
	size_t	n, pairs;
	double	gain[MIX_NA], sq[MIX_NA], rank[MIX_NA];
};

/*
 * Adds n held-out samples to e: z0 the cloud model's logits, z1 the
 * adapted model's, y the labels (>= 0.5 a click).
 */
void	mix_add(struct mix_ev *e, const float *z0, const float *z1,
	    const float *y, size_t n);

/* How mix_choose picks a weight. */
enum mix_rule {
	MIX_BY_GAIN = 0,	/* largest mean logloss gain */
	MIX_BY_RANK		/* most net pairs ordered better */
};

/*
 * The weight index by rule (ties to the smaller weight; 0 when no weight
 * beats the cloud model), its mean gain and standard error out.
 */
int	mix_choose(const struct mix_ev *e, enum mix_rule rule, double *gain,
	    double *se);

/* p1[i] = sigma(logit(p0[i]) + a (logit(p1[i]) - logit(p0[i]))). */
void	mix_probs(const float *p0, float *p1, size_t n, double a);

#endif
