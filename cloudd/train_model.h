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
/*
 * train.item-prior (shared/ml/item_prior.h): yes = after training, the
 * item prior's weight from train.item-prior-weights by validation GAUC
 * (0 included: then the model is shipped without it, format 2), then one
 * affine recalibration on validation. On by default since the ctr task's
 * validation chose weights 1-2 in every seed (scripts/eval-results.md, *The
 * item prior*). train_model_finish() is this step: cloudd, dccl-ofa
 * and dccl-distill run it; dccl-base with its "prior" token;
 * bench_train does not (it times training).
 */
#define TRAIN_ITEM_PRIOR	1
#define TRAIN_PRIOR_WEIGHTS	"0,0.5,1,2"
#define TRAIN_PRIOR_WMAX	8	/* weights in the grid */

/*
 * Learning rates cloudd tries (train.lr-grid), one model each, keeping the
 * one of highest GAUC on the pool's validation slice: scripts/eval-base.sh
 * measured the rate as the largest lever on this model (scripts/eval-results.md).
 */
#define TRAIN_LR_GRID		"0.001,0.003"
#define TRAIN_LR_MAX		8	/* rates in a grid */

#define TRAIN_STR_(x)	#x
#define TRAIN_STR(x)	TRAIN_STR_(x)

/*
 * *cfg = cloudd's default model for a pool: its ids, genres and side
 * fields (pool NULL: all zero, for the caller to fill), the shape above.
 */
void	train_model_defaults(struct ctr_config *cfg,
	    const struct dataset *pool);

/*
 * Parses a comma-separated list of learning rates in (0, 10] into
 * lr[0..*n), at most TRAIN_LR_MAX of them. "" gives *n = 0. Returns 0 or
 * -EINVAL (err gets why).
 */
int	train_lr_grid_parse(const char *s, double *lr, int *n, char *err,
	    size_t errlen);

struct train_fit {
	int	chosen;			/* index into the grid */
	int	n;			/* rates tried */
	double	lr[TRAIN_LR_MAX];
	double	val_gauc[TRAIN_LR_MAX];	/* NAN: none measurable */
	double	val_loss[TRAIN_LR_MAX];
	struct ctr_train_stats st[TRAIN_LR_MAX];
};

/*
 * Trains one model from cfg (initialised with seed) per rate of
 * lr[0..n_lr) with o's other options (o->opt.lr is ignored), each with
 * early stopping on the validation slice vai as ctr_train does, and keeps
 * the model whose GAUC on vai is highest (the first on ties or without a
 * measurable GAUC): the rate is chosen on validation, by the ranking
 * metric the evaluation reports, not by the logloss that stops each run.
 * Holds at most two models at a time. *out gets the chosen model (NULL on
 * an error), res (may be NULL) every candidate's figures. Returns 0,
 * -EINVAL, or ctr_train's error of a candidate (-ECANCELED, -ERANGE).
 */
int	train_model_fit(struct ctr **out, const struct ctr_config *cfg,
	    uint64_t seed, const struct dataset *ds, const uint32_t *tri,
	    size_t ntr, const uint32_t *vai, size_t nva,
	    const struct ctr_train_opts *o, const double *lr, int n_lr,
	    struct train_fit *res);

/*
 * The item prior of m (a model with cfg.item_prior, trained with the
 * prior at 0; any prior it holds is first set to 0) from the training
 * samples tri, at the weight of pw[0..n_pw)
 * whose GAUC on the validation slice vai is highest (the earlier on ties;
 * 0 without validation samples): *w, with the GAUC at weight 0 (*g0) and
 * at *w (*g). Returns 0 or ctr_item_prior_fit's error.
 */
int	train_model_prior(struct ctr *m, const struct dataset *ds,
	    const uint32_t *tri, size_t ntr, const uint32_t *vai, size_t nva,
	    const double *pw, int n_pw, double *w, double *g0, double *g);

/* What train_model_finish did. */
struct train_prior {
	double	w;		/* the weight kept; 0: shipped without */
	double	g0, g;		/* validation GAUC at 0 and at w */
	double	a, b;		/* recalibration: logit' = a logit + b */
};

/*
 * cloudd's step after training with train.item-prior: train_model_prior
 * on *m, then at a weight w > 0 one affine map of the logit fitted by
 * logloss on the validation slice vai (calib.h) and folded into the model
 * (the weight chosen by GAUC moves the logits' scale; the map keeps every
 * user's order); at w = 0 *m is replaced by the same model without the
 * prior (format 2). res (may be NULL) gets the figures. Returns 0 or an
 * error code (*m unchanged on -ENOMEM).
 */
int	train_model_finish(struct ctr **m, const struct dataset *ds,
	    const uint32_t *tri, size_t ntr, const uint32_t *vai, size_t nva,
	    const double *pw, int n_pw, struct train_prior *res);
/*
 * train_model_finish with train.item-prior-weights' default
 * (TRAIN_PRIOR_WEIGHTS): what the offline tools run.
 */
int	train_model_finish_default(struct ctr **m, const struct dataset *ds,
	    const uint32_t *tri, size_t ntr, const uint32_t *vai, size_t nva,
	    struct train_prior *res);

#endif
