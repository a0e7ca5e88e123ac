/*
 * partial: a partial step between the cloud model and an adapted one,
 * theta_a = theta_0 + a (theta_1 - theta_0), the weight a chosen by the
 * learning job's cross-validation (learn.c, the "-ps" rows). a = 1 is the
 * adapted model, a = 0 the cloud model. A shrunk step moves the logits
 * about a times as far, so it reorders only the pairs the cloud model
 * nearly ties, and its logloss gain has a smaller variance than the whole
 * step's.
 */
#ifndef DEVICED_PARTIAL_H
#define DEVICED_PARTIAL_H

#include "shared/ml/ctr.h"

/* The step weights the cross-validation tries (the last is the whole). */
#define PARTIAL_NA	3
extern const double partial_alpha[PARTIAL_NA];

/*
 * Sets c's tensors that sel trains to c0's + a (save's - c0's); save is
 * the adapted parameter buffer (ctr_num_params floats, ctr_params order).
 * c and c0 have the same config. Returns 0 or -EINVAL.
 */
int	partial_mix(struct ctr *c, const struct ctr *c0, const float *save,
	    double a, enum ctr_sel sel);

#endif
