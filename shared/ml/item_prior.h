/*
 * item_prior: the CTR model's fixed per-item logit offset (ctr.h, config
 * item_prior). Each item's click rate on the training samples, shrunk
 * toward the global rate by k pseudo-samples, as a logit relative to the
 * global one, times a weight w:
 *
 *   prior_i = w (logit((pos_i + k g) / (n_i + k)) - logit(g))
 *
 * so an item seen rarely sits near 0 and the OOV row is 0. Why: within
 * one user's items, the trained model orders by item evidence less than
 * a user's per-item GAUC rewards (an embedding trained on a handful of
 * samples sorts items by its random start), and the model's training
 * loss, logloss over all users, does not ask for more. So cloudd trains
 * the model with the offset at 0 (training is then exactly the model's
 * without it) and afterwards sets w from a grid by the GAUC of the
 * validation slice (train_model.c, train.item-prior): a post-hoc choice
 * on held-out samples, not a trained parameter
 * (scripts/eval-results.md, *The item prior*).
 */
#ifndef SHARED_ML_ITEM_PRIOR_H
#define SHARED_ML_ITEM_PRIOR_H

#include <stddef.h>
#include <stdint.h>

struct ctr;
struct dataset;

#define ITEM_PRIOR_K	20.0	/* pseudo-samples at the global rate */

/*
 * Sets m's item_prior tensor to w times the shrunk rates of
 * ds->s[idx[0..n)] with k pseudo-samples (k > 0). Returns 0, or -EINVAL
 * when m has no item prior or k <= 0. A set with no positives or no
 * negatives gives every item 0.
 */
int	ctr_item_prior_fit(struct ctr *m, const struct dataset *ds,
	    const uint32_t *idx, size_t n, double k, double w);

/*
 * A model of m's config without the item prior and every other tensor
 * copied from m (a format-2 model when the chosen weight is 0); NULL if m
 * has no prior.
 */
struct ctr *ctr_item_prior_drop(const struct ctr *m);

#endif
