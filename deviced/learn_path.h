/*
 * learn_path: one training path of the learning job (learn.c): plain SGD
 * from the cloud model on some of the work samples, computed through the
 * whole model, from the frozen first layer (MetaPatch: the embeddings and
 * the first layer do not move, so each sample's trunk row is computed
 * once per job) or on fixed logits (the bias alone moves every logit of
 * the user by the same amount); the targets a fit trains on (label
 * correction); the reset to the cloud model. The cross-validation and
 * the final fit in learn.c run paths.
 */
#ifndef DEVICED_LEARN_PATH_H
#define DEVICED_LEARN_PATH_H

#include <stddef.h>
#include <stdint.h>

#include "deviced/learn.h"
#include "deviced/learn_rows.h"
#include "shared/ml/ctr.h"

/* How a path computes: the whole model, from the frozen trunk, or the
 * bias alone on fixed logits. */
enum { MODE_FULL = 0, MODE_TRUNK, MODE_BIAS };

/* One path's model: the working model c, and in MODE_BIAS the bias. */
struct path {
	struct ctr	*c;
	int		 mode;
	enum ctr_sel	 sel;
	float		 bias;
	float		 pair;		/* weight of the pairwise loss */
};

/* Called after steps[k] steps of a path (cross-validation). */
typedef void (*path_ckpt_fn)(void *arg, struct path *pa, int k);


/* The user's row of the per-user bias, or NULL if the model has none. */
float	*path_bias_row(const struct ctr *c, uint32_t user);
/* p->w and p->wv (learn.h), made on first use. */
struct ctr *path_w(struct learn_prep *p);
struct ctr *path_wv(struct learn_prep *p);
/* Makes p->w (p->wv) the cloud model again (only what paths changed). */
void	 path_w_clean(struct learn_prep *p);
void	 path_wv_clean(struct learn_prep *p);
/* Computes p->trunk (MODE_TRUNK) and p->zb (MODE_BIAS) once per job. */
void	 path_need_trunk(struct learn_prep *p);
void	 path_need_zb(struct learn_prep *p);
/*
 * One fit's targets y and logit offsets off (indexed like p->work): hard
 * labels, label-corrected on the local samples in tr[0..ntr) for m.
 */
void	 path_targets(const struct learn_prep *p, const struct method *m,
	    const uint32_t *tr, size_t ntr, float *y, float *off);
/* Logits of work[idx[0..n)] under the path's parameters; whether all are
 * finite. */
void	 path_logits(struct learn_prep *p, struct path *pa,
	    const uint32_t *idx, size_t n, float *z);
int	 path_finite(struct learn_prep *p, struct path *pa,
	    const uint32_t *idx, size_t n);
/*
 * Plain SGD for steps[nck - 1] steps at lr on work[tr[0..ntr)] (targets
 * y, weights w, offsets off), at(arg, pa, k) after steps[k]. Returns 0,
 * -ECANCELED (learn_in's stop) or -ERANGE (diverged).
 */
int	 path_sgd(struct learn_prep *p, struct path *pa, const uint32_t *tr,
	    size_t ntr, const float *y, const float *w, const float *off,
	    double lr, const int *steps, int nck, uint64_t seed,
	    path_ckpt_fn at, void *arg);
/* Resets the path to the cloud model's parameters. */
void	 path_reset(struct learn_prep *p, struct path *pa);

#endif
