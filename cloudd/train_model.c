/*
 * train_model: cloudd's default model shape (train_model.h).
 */
#include <string.h>

#include "cloudd/train_model.h"

void
train_model_defaults(struct ctr_config *cfg, const struct dataset *pool)
{
	memset(cfg, 0, sizeof(*cfg));
	if (pool != NULL) {
		cfg->n_users = pool->n_users;
		cfg->n_items = pool->n_items;
		cfg->n_genres = pool->n_genres;
		cfg->n_side = pool->n_side;
		memcpy(cfg->side_card, pool->side_card,
		    sizeof(cfg->side_card));
	}
	cfg->dim = TRAIN_DIM;
	cfg->hist_k = TRAIN_HIST_K;
	cfg->hidden[cfg->n_hidden++] = TRAIN_HIDDEN1;
	if (TRAIN_HIDDEN2 > 0)
		cfg->hidden[cfg->n_hidden++] = TRAIN_HIDDEN2;
	cfg->patch_rank = TRAIN_PATCH_RANK;
	cfg->interaction = TRAIN_INTERACTION;
	cfg->attention = TRAIN_ATTENTION;
}
