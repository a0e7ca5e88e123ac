/*
 * negatives: per-user rated-item sets and uniform sampling of never-rated
 * items, for the ranking task (dccl-data).
 */
#ifndef SCRIPTS_TOOLS_NEGATIVES_H
#define SCRIPTS_TOOLS_NEGATIVES_H

#include <stddef.h>
#include <stdint.h>

#include "shared/data/dataset.h"

/* --- ranking negatives --------------------------------------------------- */

/* Per-user sorted set of rated items, for negative sampling. */
struct dataset_rated {
	size_t	*off;			/* n_users + 1 */
	uint32_t *items;		/* sorted unique per user */
	uint32_t n_users, n_items;
};
void	dataset_rated_build(struct dataset_rated *r, const struct dataset *ds);
void	dataset_rated_fini(struct dataset_rated *r);
int	dataset_rated_has(const struct dataset_rated *r, uint32_t u,
	    uint32_t item);
/*
 * Writes n distinct items in [0, n_items) that user u never rated, uniform,
 * in draw order. Deterministic in (seed, u) and independent of call order.
 * Returns 0, or -ENOSPC if the user has fewer than n unrated items, or
 * -EINVAL if u is out of range.
 */
int	dataset_negatives(const struct dataset_rated *r, uint32_t u,
	    uint32_t n, uint64_t seed, uint32_t *out);

#endif
