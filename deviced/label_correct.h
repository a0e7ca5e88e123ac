/*
 * label_correct: CTR-drift label correction (Ding et al. 2022). A user's
 * local CTR r_u drifts from the global CTR r_g of the cloud's training
 * data; before fine-tuning, the local labels are changed so the local prior
 * matches r_g. Two forms (shared/ml/README.md):
 *
 *  LC_SOFT   the paper's: soft labels whose mean is exactly r_g, order
 *            preserved: r_u > r_g -> positives get r_g / r_u, negatives 0;
 *            r_u < r_g -> positives 1, negatives (r_g - r_u) / (1 - r_u).
 *  LC_OFFSET hard labels, plus a fixed per-sample logit offset
 *            logit(r_u) - logit(r_g) added during fine-tuning, so the shift
 *            in prior is explained by the offset and the fine-tuned weights
 *            learn only what ranks items within the user; the offset is
 *            dropped at scoring time.
 *
 * r_g is the rate the local labels are aligned to: the global CTR (the
 * paper) or, from learn.c with learn.lc-target = model, the cloud model's
 * own mean prediction on the user's training samples.
 *
 * Edge cases, defined and tested: fewer than min_n samples -> no change
 * (r_u is too noisy); no positives or all positives -> r_u is smoothed
 * toward r_g with prior strength `prior` (pseudo-samples), which keeps
 * every value finite: with prior = 0 and no positives, LC_SOFT gives all
 * negatives r_g; with all positives, all positives r_g. Any thread.
 */
#ifndef DEVICED_LABEL_CORRECT_H
#define DEVICED_LABEL_CORRECT_H

#include <stddef.h>

enum lc_mode { LC_NONE = 0, LC_SOFT, LC_OFFSET };

struct lc_opts {
	enum lc_mode	mode;
	double		r_g;	/* target rate: global CTR or the model's */
	size_t		min_n;	/* below this many samples: no correction */
	double		prior;	/* pseudo-samples at r_g smoothing r_u */
};

/* r_u of labels y (n), smoothed with prior pseudo-samples at r_g. */
double	lc_local_ctr(const float *y, size_t n, double r_g, double prior);
/*
 * Corrects labels y (n) into out (n) per o->mode (LC_SOFT) and fills
 * offset (n, may be NULL) with the logit offset (LC_OFFSET; 0 otherwise).
 * LC_NONE and LC_OFFSET copy y unchanged. Returns the r_u used.
 */
double	lc_apply(const struct lc_opts *o, const float *y, size_t n,
	    float *out, float *offset);

#endif
