/*
 * calib: an affine recalibration of an adapted model's logits,
 * z' = (1 + t) z + b, fitted on the out-of-fold logits of the learning
 * job's cross-validation (each held-out local sample scored by a fit
 * that never saw it), for the "-cal" evaluation rows (learn.c). With
 * 1 + t > 0 it keeps the order of a user's items, so it changes logloss
 * and never per-user AUC: the pairwise loss orders a user's pairs
 * better but moves the logits' scale and offset (its validation logloss
 * gain falls), and this gives the calibration back. A ridge prior on t
 * and b, worth CALIB_PRIOR samples at p = 1/2, keeps a fit on a few
 * held-out samples near the identity. cloudd uses the same fit once per
 * model, over the whole validation slice, after setting the item prior's
 * weight (cloudd/train.c, item_prior.h), and folds it into the model
 * (ctr_logit_affine).
 */
#ifndef SHARED_ML_CALIB_H
#define SHARED_ML_CALIB_H

#include <stddef.h>

#define CALIB_PRIOR	8.0

/*
 * The objective: sum of BCE((1 + t) z[i] + b, y[i]) over n samples plus
 * (prior / 8) (t^2 + b^2); its gradient into *gt, *gb (either may be
 * NULL).
 */
double	calib_loss(const float *z, const float *y, size_t n, double prior,
	    double t, double b, double *gt, double *gb);

/*
 * Minimises calib_loss by damped Newton steps from (0, 0), keeping
 * 1 + t >= 0.1; *t, *b out (0, 0 without samples). Returns 0, or -1 if
 * it did not converge (then *t = *b = 0).
 */
int	calib_fit(const float *z, const float *y, size_t n, double prior,
	    double *t, double *b);

/* p[i] = sigma((1 + t) logit(p[i]) + b). */
void	calib_probs(float *p, size_t n, double t, double b);

#endif
