/*
 * encoder_distill: DCCL's auxiliary encoder (encoder.h) distilled from the
 * device models. enc_fit learns from the pool: the cloud's own learned
 * rows of its users, or the frozen model's loss on their samples. Here the
 * targets are what devices learned. Each pair is one device: x, the
 * encoder's features of the samples its job trained on (enc_features),
 * and rows, the personal rows of the model it uploaded (the m rows of an
 * adopted patch next to the rows the cloud holds); a mask leaves out the
 * outputs no device learned (a cold user's user row and bias are the
 * untrained ones). The loss is the masked squared error
 *   1/2 sum_o mask_o (enc(x)_o - rows_o)^2
 * per pair, fitted by Adam over mini-batches of pairs; the epoch kept is
 * the one of lowest validation loss, measured by the caller's callback
 * (the logloss of held-out devices' own validation samples under the
 * encoder's rows: the encoder serves the users whose patch is missing).
 *
 * Threads: none of its own; the callback runs on the caller's thread.
 */
#ifndef SHARED_ENCODER_DISTILL_H
#define SHARED_ENCODER_DISTILL_H

#include <stddef.h>

#include "shared/ml/encoder.h"

/* n pairs, row-major: x (n x nin), rows and mask (n x nout; mask NULL:
 * every output of every pair counts). */
struct enc_pairs {
	size_t			 n;
	const float		*x;
	const float		*rows;
	const unsigned char	*mask;
};

/* The validation loss of e (lower is better; NaN stops the fit). */
typedef double (*enc_val_fn)(void *arg, const struct enc *e);

struct enc_distill_report {
	size_t	n;		/* training pairs */
	double	val0;		/* epoch 0: the masked mean rows, W = 0 */
	double	val;		/* the kept epoch's */
	int	best_epoch, epochs;
	double	mse;		/* training pairs' mean masked error there */
};

/*
 * Pair i's masked loss 1/2 |mask (enc(x_i) - rows_i)|^2; gw (nout x nin)
 * and gc (nout) get scale times its gradient added, unless gw is NULL
 * (the loss alone). Finite-difference check: tests/unit/test_encoder.c.
 */
double	enc_reg_loss_grad(const struct enc *e, const float *x,
	    const float *rows, const unsigned char *mask, float scale,
	    float *gw, float *gc);

/*
 * Fits the encoder of model m (its shapes; nothing of m is read beyond
 * them) onto the pairs: mu, sd from the pairs' x, c from their masked
 * mean rows (an output no pair covers keeps c = 0), then o->epochs of
 * Adam (o->lr, o->wd on W, o->users_per_step pairs a step, o->seed),
 * early stopping on val with o->patience. *out gets the kept encoder
 * (caller frees). Returns 0, -EINVAL (no pair, bad options, shapes),
 * -ECANCELED (o->stop) or -ERANGE (a non-finite loss or validation).
 */
int	enc_distill_fit(struct enc **out, const struct ctr *m,
	    const struct enc_pairs *p, const struct enc_fit_opts *o,
	    enc_val_fn val, void *arg, struct enc_distill_report *rep);

#endif
