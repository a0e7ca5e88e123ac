/*
 * krc: kernel residual correction (issue 17), a personalization with no
 * training: the device keeps its user's labelled samples as a memory and
 * moves each candidate's logit by how wrong the model was on the user's
 * samples of similar items,
 *
 *   z_i' = z_i + beta * sum_j k_ij r_j / (lambda + sum_j k_ij),
 *   r_j  = y_j - sigmoid(z_j),   k_ij = exp(tau (cos(e_i, e_j) - 1)),
 *
 * e the model's item embeddings (emb_item), j over the memory. It is
 * Nadaraya-Watson regression of the model's residuals on the item space,
 * shrunk toward 0 by lambda pseudo-samples: a user who rated the horror
 * films the model liked low gets lower scores for other horror films.
 * Unlike a row fitted by gradient steps (fine-tuning, MetaPatch, Rocchio's
 * linear direction) it can follow a taste that is not one direction in
 * the item space, and it costs one pass over the memory per candidate.
 *
 * (tau, beta) come from a grid (beta 0 included) by forward-chaining
 * cross-validation over the memory in time order: block f is scored with
 * the memory of blocks 0..f-1, by the net held-out (click, no-click) pairs
 * ordered right against beta 0 (ties: the smaller grid point). Fewer than
 * min_n samples, or no positive net, keeps beta 0.
 */
#ifndef DEVICED_KRC_H
#define DEVICED_KRC_H

#include <stddef.h>
#include <stdint.h>

struct ctr;
struct dataset;

#define KRC_NT		3	/* tau grid */
#define KRC_NB		4	/* beta grid (beyond 0) */
#define KRC_NG		(1 + KRC_NT * KRC_NB)
#define KRC_LAMBDA	1.0	/* pseudo-samples of residual 0 */
#define KRC_FOLDS	4	/* forward-chaining blocks */
#define KRC_MIN_N	8	/* fewer local samples: no correction */

struct krc {
	int	 g;		/* chosen grid point, 0: no correction */
	double	 tau, beta;
	double	 sum[KRC_NG];	/* CV net pairs per grid point */
	double	 ll[KRC_NG];	/* CV logloss gain per grid point */
	size_t	 pairs;		/* held-out pairs the sums count */
};

/* Grid point g's (tau, beta); g 0 is (0, 0). */
void	krc_point(int g, double *tau, double *beta);

/*
 * Chooses (tau, beta) for the memory ds[0..n) (time order) whose logits
 * under the model are z, with K folds; e are the unit item vectors of
 * the memory (n x dim, krc_units). Fills *k.
 */
void	krc_fit(const float *e, int dim, const struct dataset *ds,
	    const float *z, size_t n, int K, size_t min_n, struct krc *k);

/*
 * Unit-norm item embeddings (dim floats each) of ds's samples 0..n) under
 * model c into e (n x dim); the OOV row for unknown items (0 vector).
 */
void	krc_units(const struct ctr *c, const struct dataset *ds, size_t n,
	    float *e);

/*
 * Adds the correction of memory (e, labels of ds[0..n), logits z) at
 * (tau, beta) to the logits zq of nq queries with unit item vectors eq.
 */
void	krc_apply(double tau, double beta, const float *e,
	    const struct dataset *ds, const float *z, size_t n, int dim,
	    const float *eq, float *zq, size_t nq);

#endif
