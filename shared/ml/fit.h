/*
 * fit: the epoch loop every model trains with. Seeded Fisher-Yates shuffle
 * of the training indices each epoch, minibatches in that order, a stop
 * flag checked per batch, a non-finite loss stopping the run, and with a
 * validation loss: the loss measured before training and after each
 * epoch, the best parameters (possibly the initial ones) snapshotted and
 * restored at the end, and early stopping after `patience` epochs without
 * improvement. The model supplies only the hooks: the gradient of one
 * minibatch, the optimiser step, and the validation loss.
 *
 * Ownership: fit allocates its own permutation and snapshot and frees them
 * before it returns. Threads: the caller's; one model per call.
 */
#ifndef SHARED_ML_FIT_H
#define SHARED_ML_FIT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct rng;

struct fit_hooks {
	/*
	 * Forward and backward over idx (B) with zeroed gradients first;
	 * *loss gets the minibatch's mean loss. rng is the loop's (after the
	 * epoch's shuffle), for a model that draws per batch. Returns 0 or
	 * -errno.
	 */
	int	(*grad)(void *arg, const uint32_t *idx, int B, struct rng *rng,
		    double *loss);
	/* One optimiser step on the gradients grad left; 0 or -errno. */
	int	(*update)(void *arg);
	/* Validation loss of the current parameters; NULL = none. */
	int	(*val)(void *arg, double *loss);
	/* After a validation loss that is the best so far; may be NULL. */
	void	(*improved)(void *arg);
	/* After every epoch; val is NAN without validation. May be NULL. */
	void	(*epoch)(void *arg, int epoch, double train, double val);
	void	*arg;
};

struct fit_opts {
	int		 epochs;	/* >= 1 */
	int		 batch;		/* >= 1 */
	int		 patience;	/* 0 = run every epoch */
	uint64_t	 seed;		/* shuffling (and the model's draws) */
	int		 reseed;	/* 1: every epoch e shuffles idx anew
					   from seed + e (distillation's rule)
					   instead of reshuffling on */
	atomic_int	*stop;		/* may be NULL */
};

struct fit_stats {
	double	train_loss;	/* mean loss of the last epoch */
	double	val_loss;	/* val loss of the returned params; NAN */
	int	epochs;		/* epochs run */
	int	best_epoch;	/* 0 = the initial params were best */
};

/*
 * Trains params (n_params, the buffer the hooks' model updates) on idx (n,
 * non-empty) with the hooks. Returns 0, -ECANCELED (*stop was set),
 * -ERANGE (a minibatch loss was not finite) or a hook's error; with a
 * validation hook, params are then the best seen (after an error in the
 * first validation, as they were). st may be NULL.
 */
int	fit_run(float *params, size_t n_params, const uint32_t *idx, size_t n,
	    const struct fit_opts *o, const struct fit_hooks *h,
	    struct fit_stats *st);

#endif
