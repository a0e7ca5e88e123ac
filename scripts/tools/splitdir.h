/*
 * splitdir: a split directory written by `dccl-data split` (meta.txt,
 * pool.csv, devices/<user>.{local,test}.csv) loaded for the offline
 * tools, with the pool's training/validation carve and the cloud model
 * trained on it as cloudd trains it (dccl-base, dccl-ofa).
 *
 * Ownership: everything in a struct splitdir is its own; splitdir_fini
 * frees it. Threads: the caller's.
 */
#ifndef SCRIPTS_TOOLS_SPLITDIR_H
#define SCRIPTS_TOOLS_SPLITDIR_H

#include <stddef.h>
#include <stdint.h>

#include "shared/data/dataset.h"
#include "shared/ml/ctr.h"

struct splitdir {
	struct dataset_meta meta;
	struct dataset	 pool, loc, tst;	/* pool: the meta's ids */
	/* (n_users+1): user u's samples are [off[u], off[u+1]) of loc, tst */
	size_t		*loff, *toff;
	uint32_t	*tri, *vai;	/* the pool's 90 % / 10 % carve */
	size_t		 ntr, nva;
};

/*
 * Loads dir into *s and carves the pool's validation slice; prog prefixes
 * the message printed to stderr on an error. Returns 0 or -1 (s is then
 * still safe to splitdir_fini).
 */
int	splitdir_load(struct splitdir *s, const char *dir, const char *prog);
void	splitdir_fini(struct splitdir *s);

/*
 * Trains m (built from train_model_defaults(), possibly changed) on the
 * pool as cloudd does with one learning rate (train.lr-grid empty): Adam
 * lr 1e-3, batch 256, up to 20 epochs, patience 2 on the validation
 * slice, shuffled with seed. Returns ctr_train's code. cloudd's grid is
 * train_model_fit (dccl-base's lrgrid).
 */
/* *co = those options (the tools change some of them). */
void	splitdir_train_opts(struct ctr_train_opts *co, uint64_t seed);
int	splitdir_train_cloud(struct ctr *m, const struct splitdir *s,
	    uint64_t seed, struct ctr_train_stats *st);

#endif
