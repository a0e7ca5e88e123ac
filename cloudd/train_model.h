/*
 * train_model: cloudd's default model shape in one place. cloudd.c's
 * train.* options take their defaults from these, and the offline tools
 * (dccl-base, dccl-ofa, dccl-distill) and bench_train start from
 * train_model_defaults(), so "as cloudd trains it" stays true when a
 * default changes.
 */
#ifndef CLOUDD_TRAIN_MODEL_H
#define CLOUDD_TRAIN_MODEL_H

#include "shared/data/sample.h"
#include "shared/ml/ctr.h"

#define TRAIN_DIM		16
#define TRAIN_HIST_K		20
#define TRAIN_HIDDEN1		128
#define TRAIN_HIDDEN2		64	/* 0 = one hidden layer */
#define TRAIN_PATCH_RANK	16
#define TRAIN_INTERACTION	CTR_INTER_FM
#define TRAIN_INTERACTION_NAME	"fm"	/* train.interaction's name of it */
#define TRAIN_ATTENTION		0

#define TRAIN_STR_(x)	#x
#define TRAIN_STR(x)	TRAIN_STR_(x)

/*
 * *cfg = cloudd's default model for a pool: its ids, genres and side
 * fields (pool NULL: all zero, for the caller to fill), the shape above.
 */
void	train_model_defaults(struct ctr_config *cfg,
	    const struct dataset *pool);

#endif
