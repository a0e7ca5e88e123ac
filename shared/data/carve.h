/*
 * carve: an index list of a dataset split once more in time, per user:
 * each user's newest share into one list, the rest into another. A model
 * stacked on another model's output learns from samples that model did
 * not fit, later than its own as in serving (Forward-OFA's residual on
 * the CTR model's logit: cloudd/ofa_train.c, dccl-ofa --res-val and
 * --holdout).
 *
 * Ownership: both output lists are malloc'd; the caller frees them.
 * Threads: any (reads ds).
 */
#ifndef SHARED_DATA_CARVE_H
#define SHARED_DATA_CARVE_H

#include <stddef.h>
#include <stdint.h>

#include "shared/data/sample.h"

/*
 * idx (n) lists samples of ds grouped by user, each user's oldest first
 * (dataset_carve_val's lists are). Each user's newest frac of them
 * (rounded, at least one left older) goes to *newest, the others to
 * *older, both in idx's order. Returns 0, or -EINVAL (frac outside
 * [0, 1), an index not in ds, a user's samples not contiguous or not in
 * time order); the lists are then NULL.
 */
int	carve_newest(const struct dataset *ds, const uint32_t *idx, size_t n,
	    double frac, uint32_t **older, size_t *nolder, uint32_t **newest,
	    size_t *nnewest);

#endif
